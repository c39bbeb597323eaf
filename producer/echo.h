/* echo.h: own-write echoes (SPEC §3.1). Before EspoCRM 9.2 `skipOwn` is ignored, so every save
 * of the sync user comes back as an update webhook. echo_classify() decides, purely, whether
 * one webhook record is such an echo; the webhook handler drops those (no Kafka message) and
 * counts them in vmh_webhook_echoes_dropped_total. Which attributes only the sync writes is
 * common/syncfields.h's to say (syncfields_sync_only), not this file's. */
#ifndef VMH_ECHO_H
#define VMH_ECHO_H

#include <jansson.h>

#include "msg.h"

enum echo_verdict {
    ECHO_KEEP = 0,         /* a change someone else may have made: becomes a message */
    ECHO_BY_SYNC_USER,     /* modifiedById is the sync user */
    ECHO_SYNC_FIELDS_ONLY, /* every attribute it carries is one only the sync writes */
};

/* The verdict for one record of a webhook for `event`. Create and delete records are always
 * ECHO_KEEP. An update record is an echo when its modifiedById equals sync_user_id (NULL or ""
 * while the sync user is not known yet: this rule is skipped), or when it carries at least one
 * attribute besides "id" and all of them are sync-only (syncfields_sync_only: the SPEC §6 sync
 * fields, id, versionNumber, modifiedAt, modifiedById, modifiedByName). A record carrying nothing
 * but its id is kept: nothing shows it is the sync's. */
enum echo_verdict echo_classify(enum msg_event event, const json_t *record,
                                const char *sync_user_id);

/* "by_sync_user", "sync_fields_only", "keep" (for logs). */
const char *echo_verdict_name(enum echo_verdict v);

#endif
