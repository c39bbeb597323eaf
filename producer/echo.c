/* echo.c: own-write echo detection (see echo.h). */
#include "echo.h"

#include <string.h>

#include "syncfields.h"

enum echo_verdict echo_classify(enum msg_event event, const json_t *record,
                                const char *sync_user_id)
{
    if (event != MSG_EVENT_UPDATE || !json_is_object(record))
        return ECHO_KEEP;
    const char *by = json_string_value(json_object_get(record, "modifiedById"));
    if (sync_user_id && *sync_user_id && by && strcmp(by, sync_user_id) == 0)
        return ECHO_BY_SYNC_USER;
    size_t others = 0;
    const char *name;
    json_t *value;
    /* json_object_foreach wants a non-const object; it only reads here. */
    json_object_foreach((json_t *)record, name, value)
    {
        (void)value;
        if (!syncfields_sync_only(name))
            return ECHO_KEEP;
        others += strcmp(name, "id") != 0;
    }
    return others > 0 ? ECHO_SYNC_FIELDS_ONLY : ECHO_KEEP;
}

const char *echo_verdict_name(enum echo_verdict v)
{
    switch (v) {
    case ECHO_BY_SYNC_USER:
        return "by_sync_user";
    case ECHO_SYNC_FIELDS_ONLY:
        return "sync_fields_only";
    default:
        return "keep";
    }
}
