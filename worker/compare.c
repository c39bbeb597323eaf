/* compare.c: change detection (SPEC §5.2). */
#include "compare.h"

#include <string.h>

static bool present(const char *s)
{
    return s && *s;
}

bool cmp_espo_changed(const struct cmp_input *in)
{
    if (!in->has_last_sync || in->dirty)
        return true;
    if (in->modified_at <= in->last_sync)
        return false;
    bool own = present(in->modified_by) && present(in->sync_user_id) &&
               strcmp(in->modified_by, in->sync_user_id) == 0 &&
               in->modified_at <= in->last_sync + OWN_WRITE_TOLERANCE_S;
    return !own;
}

bool cmp_advo_changed(const struct cmp_input *in)
{
    if (present(in->advo_rowid) && present(in->entity_rowid))
        return strcmp(in->advo_rowid, in->entity_rowid) != 0;
    if (!in->has_geaendert)
        return false;
    return !in->has_last_sync || in->geaendert_am > in->last_sync;
}
