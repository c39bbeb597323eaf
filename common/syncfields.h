/* syncfields.h: the one owner of the EspoCRM CBeteiligte attributes that only the sync writes
 * (SPEC §6), their names, the EspoCRM field type each must have, and the values of syncStatus:
 * the worker's start-up metadata check, the producer's echo filter (SPEC §3.1) and cron where
 * clauses, the status policy and the writers of the final PUT all use these. Everything here is
 * static: nothing to free. */
#ifndef VMH_SYNCFIELDS_H
#define VMH_SYNCFIELDS_H

#include <stdbool.h>
#include <stddef.h>

/* The sync fields of SPEC §6 (CBeteiligte attribute names). */
#define SF_BETNR                  "betnr"
#define SF_ADVOWARE_ROW_ID        "advowareRowId"
#define SF_ADVOWARE_LAST_SYNC     "advowareLastSync"
#define SF_SYNC_STATUS            "syncStatus"
#define SF_SYNC_RETRY_COUNT       "syncRetryCount"
#define SF_SYNC_NEXT_RETRY        "syncNextRetry"
#define SF_SYNC_AUTO_RESET_AT     "syncAutoResetAt"
#define SF_SYNC_ERROR_MESSAGE     "syncErrorMessage"
#define SF_KOMMUNIKATION_HASH     "kommunikationHash"
#define SF_ADVOWARE_SYNC_BASELINE "advowareSyncBaseline"

/* The values of syncStatus (SPEC §6). EspoCRM's formula sets pending_sync and dirty, the worker
 * writes the others, the cron selects by them. */
#define SF_STATUS_PENDING_SYNC        "pending_sync"
#define SF_STATUS_DIRTY               "dirty"
#define SF_STATUS_SYNCING             "syncing"
#define SF_STATUS_CLEAN               "clean"
#define SF_STATUS_FAILED              "failed"
#define SF_STATUS_PERMANENTLY_FAILED  "permanently_failed"
#define SF_STATUS_DELETED_IN_ADVOWARE "deleted_in_advoware"

/* Whether status (a syncStatus value, may be NULL) is `which` (one of SF_STATUS_*). */
bool syncfields_status_is(const char *status, const char *which);

struct syncfield {
    const char *name; /* CBeteiligte attribute */
    const char *type; /* EspoCRM field type (entityDefs.CBeteiligte.fields.<name>.type) */
};

#define SYNCFIELDS_N 10
extern const struct syncfield syncfields[SYNCFIELDS_N];

/* Whether attr is one only the sync writes: a §6 sync field, or an attribute EspoCRM sets on
 * every save (id, versionNumber, modifiedAt, modifiedById, modifiedByName). A webhook record
 * that carries nothing else is the sync's own write coming back (SPEC §3.1). */
bool syncfields_sync_only(const char *attr);

#endif
