/* syncfields.c: the sync's own CBeteiligte attributes (see syncfields.h). */
#include "syncfields.h"

#include <string.h>

/* SPEC §6; the types as EspoCRM stored them (contracts/espocrm-9.1.5/setup_metadata.json), plus
 * advowareSyncBaseline (SPEC v2 §5.2, text). */
const struct syncfield syncfields[SYNCFIELDS_N] = {
    {"betnr", "int"},
    {"advowareRowId", "varchar"},
    {"advowareLastSync", "datetime"},
    {"syncStatus", "enum"},
    {"syncRetryCount", "int"},
    {"syncNextRetry", "datetime"},
    {"syncAutoResetAt", "datetime"},
    {"syncErrorMessage", "text"},
    {"kommunikationHash", "varchar"},
    {"advowareSyncBaseline", "text"},
};

/* EspoCRM sets these on every save (recorded 08_modified_at, 07_webhooks). */
static const char *const save_attrs[] = {"id", "versionNumber", "modifiedAt", "modifiedById",
                                         "modifiedByName"};

bool syncfields_sync_only(const char *attr)
{
    if (!attr)
        return false;
    for (size_t i = 0; i < SYNCFIELDS_N; i++) {
        if (strcmp(attr, syncfields[i].name) == 0)
            return true;
    }
    for (size_t i = 0; i < sizeof save_attrs / sizeof save_attrs[0]; i++) {
        if (strcmp(attr, save_attrs[i]) == 0)
            return true;
    }
    return false;
}
