/* queued.c: the cron's in-flight mark (see queued.h). */
#include "queued.h"

#include "util.h"

#include <stdio.h>

#define QUEUED_PREFIX "vmh:queued:"

static int key_of(char *key, size_t len, const char *id, char *err, size_t errlen)
{
    int n = id && *id ? snprintf(key, len, QUEUED_PREFIX "%s", id) : -1;
    if (n < 0 || (size_t)n >= len) {
        util_err(err, errlen, "redis key " QUEUED_PREFIX "<id>: id empty or too long");
        return -1;
    }
    return 0;
}

int queued_mark(struct redis_client *c, const char *id, long long ttl_ms, bool *marked, char *err,
                size_t errlen)
{
    char key[200];
    *marked = false;
    if (key_of(key, sizeof key, id, err, errlen) != 0)
        return -1;
    return redis_set_nx_px(c, key, "1", ttl_ms > 0 ? ttl_ms : 1, marked, err, errlen);
}

int queued_clear(struct redis_client *c, const char *id, char *err, size_t errlen)
{
    char key[200];
    if (key_of(key, sizeof key, id, err, errlen) != 0)
        return -1;
    return redis_del(c, key, err, errlen) < 0 ? -1 : 0;
}
