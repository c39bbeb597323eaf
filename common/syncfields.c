/* syncfields.c: the sync's own CBeteiligte attributes and syncStatus values (see syncfields.h). */
#include "syncfields.h"

#include <string.h>

/* SPEC §6; the types as EspoCRM stored them (contracts/espocrm-9.1.5/setup_metadata.json), plus
 * advowareSyncBaseline (SPEC v2 §5.2, text). */
const struct syncfield syncfields[SYNCFIELDS_N] = {
    {SF_BETNR, "int"},
    {SF_ADVOWARE_ROW_ID, "varchar"},
    {SF_ADVOWARE_LAST_SYNC, "datetime"},
    {SF_SYNC_STATUS, "enum"},
    {SF_SYNC_RETRY_COUNT, "int"},
    {SF_SYNC_NEXT_RETRY, "datetime"},
    {SF_SYNC_AUTO_RESET_AT, "datetime"},
    {SF_SYNC_ERROR_MESSAGE, "text"},
    {SF_KOMMUNIKATION_HASH, "varchar"},
    {SF_ADVOWARE_SYNC_BASELINE, "text"},
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

bool syncfields_status_is(const char *status, const char *which)
{
    return status && which && strcmp(status, which) == 0;
}
