/* store.c: the sync's per-party keys in Redis (see store.h). */
#include "store.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_PREFIX     "vmh:link:"
#define CREATING_PREFIX "vmh:creating:"
#define NOTICE_PREFIX   "vmh:notified:"
#define PENDING_PREFIX  "vmh:espo_pending:"
#define AHEAD_PREFIX    "vmh:ahead:"
#define KEY_MAX         200

/* prefix + id (+ ":" + suffix) into key; 0, or -1 with err if it does not fit or id is empty. */
static int key_of(char *key, const char *prefix, const char *id, const char *suffix, char *err,
                  size_t errlen)
{
    int n = id && *id ? snprintf(key, KEY_MAX, "%s%s%s%s", prefix, id, suffix ? ":" : "",
                                 suffix ? suffix : "")
                      : -1;
    if (n < 0 || n >= KEY_MAX) {
        util_err(err, errlen, "redis key %s<id>: id empty or too long", prefix);
        return -1;
    }
    return 0;
}

/* vmh:notified:{id}:{md5 of text}. */
static int notice_key(char *key, const char *id, const char *text, char *err, size_t errlen)
{
    char hex[33];
    util_md5_hex(text, strlen(text), hex, 32);
    return key_of(key, NOTICE_PREFIX, id, hex, err, errlen);
}

int store_link_get(struct redis_client *c, const char *id, json_t **out, char *err, size_t errlen)
{
    char key[KEY_MAX], *text = NULL;
    *out = NULL;
    if (key_of(key, LINK_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    int rc = redis_get(c, key, &text, NULL, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 1)
        *out = json_loads(text, 0, NULL); /* unreadable: as if none */
    free(text);
    return 0;
}

/* Stores doc (stolen; NULL: out of memory) under key as compact JSON, with a TTL (0: none).
 * 0, or -1 with err naming what. */
static int set_json(struct redis_client *c, const char *key, json_t *doc, long long ttl_ms,
                    const char *what, char *err, size_t errlen)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        util_err(err, errlen, "%s: out of memory", what);
        return -1;
    }
    int rc = redis_set(c, key, text, ttl_ms, err, errlen);
    free(text);
    return rc < 0 ? -1 : 0;
}

int store_link_set(struct redis_client *c, const char *id, long long betnr, const char *name,
                   const char *user, bool deleted, const json_t *posted, char *err, size_t errlen)
{
    char key[KEY_MAX];
    if (key_of(key, LINK_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    json_t *link = json_pack("{s:I,s:s?,s:s?}", "betnr", (json_int_t)betnr, "name", name,
                             "assignedUserId", user);
    if (link && deleted)
        json_object_set_new(link, "deleted", json_true());
    if (link && posted)
        json_object_set(link, "posted", (json_t *)posted);
    return set_json(c, key, link, 0, "link", err, errlen);
}

int store_creating_get(struct redis_client *c, const char *id, json_t **out, char *err,
                       size_t errlen)
{
    char key[KEY_MAX], *value = NULL;
    *out = NULL;
    if (key_of(key, CREATING_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    int rc = redis_get(c, key, &value, NULL, err, errlen);
    if (rc != 1) {
        free(value);
        return rc < 0 ? -1 : 0;
    }
    json_t *mark = json_loads(value, 0, NULL);
    if (!json_is_object(mark) || !json_is_string(json_object_get(mark, "since"))) {
        json_decref(mark); /* an earlier version's mark: the time only */
        mark = json_pack("{s:s}", "since", value);
    }
    free(value);
    if (!mark) {
        util_err(err, errlen, "create mark: out of memory");
        return -1;
    }
    *out = mark;
    return 1;
}

int store_creating(struct redis_client *c, const char *id, char *since, size_t sincelen, char *err,
                   size_t errlen)
{
    json_t *mark = NULL;
    int rc = store_creating_get(c, id, &mark, err, errlen);
    if (rc == 1)
        snprintf(since, sincelen, "%s", json_string_value(json_object_get(mark, "since")));
    json_decref(mark);
    return rc;
}

int store_mark_creating(struct redis_client *c, const char *id, const char *since, const char *name,
                        const char *user, char *err, size_t errlen)
{
    char key[KEY_MAX];
    if (key_of(key, CREATING_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    return set_json(
        c, key, json_pack("{s:s,s:s?,s:s?}", "since", since, "name", name, "assignedUserId", user),
        STORE_CREATING_TTL_S * 1000, "create mark", err, errlen);
}

int store_clear_creating(struct redis_client *c, const char *id, char *err, size_t errlen)
{
    char key[KEY_MAX];
    if (key_of(key, CREATING_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    return redis_del(c, key, err, errlen) < 0 ? -1 : 0;
}

int store_notice_claim(struct redis_client *c, const char *id, const char *text, char *err,
                       size_t errlen)
{
    char key[KEY_MAX];
    bool fresh = false;
    if (notice_key(key, id, text, err, errlen) != 0)
        return -1;
    if (redis_set_nx_px(c, key, "1", STORE_NOTICE_TTL_S * 1000, &fresh, err, errlen) != 0)
        return -1;
    return fresh ? 1 : 0;
}

int store_notice_release(struct redis_client *c, const char *id, const char *text, char *err,
                         size_t errlen)
{
    char key[KEY_MAX];
    if (notice_key(key, id, text, err, errlen) != 0)
        return -1;
    return redis_del(c, key, err, errlen) < 0 ? -1 : 0;
}

int store_pending_get(struct redis_client *c, const char *id, char *err, size_t errlen)
{
    char key[KEY_MAX];
    if (key_of(key, PENDING_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    int rc = redis_exists(c, key, err, errlen);
    return rc < 0 ? -1 : rc;
}

int store_pending_set(struct redis_client *c, const char *id, bool on, char *err, size_t errlen)
{
    char key[KEY_MAX];
    if (key_of(key, PENDING_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    int rc = on ? redis_set(c, key, "1", 0, err, errlen) : redis_del(c, key, err, errlen);
    return rc < 0 ? -1 : 0;
}

int store_ahead_get(struct redis_client *c, const char *id, const char *based_on, json_t **out,
                    char *err, size_t errlen)
{
    char key[KEY_MAX], *text = NULL;
    *out = NULL;
    if (key_of(key, AHEAD_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    int rc = redis_get(c, key, &text, NULL, err, errlen);
    if (rc < 0)
        return -1;
    json_t *doc = rc == 1 ? json_loads(text, 0, NULL) : NULL;
    free(text);
    const char *was = json_string_value(json_object_get(doc, "basedOn"));
    if (was && strcmp(was, based_on) == 0) /* else the final PUT happened since: stale */
        *out = json_incref(json_object_get(doc, "baseline"));
    json_decref(doc);
    return 0;
}

int store_ahead_set(struct redis_client *c, const char *id, const char *based_on,
                    const json_t *baseline, char *err, size_t errlen)
{
    char key[KEY_MAX];
    if (key_of(key, AHEAD_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    return set_json(c, key, json_pack("{s:s,s:O}", "basedOn", based_on, "baseline", baseline),
                    STORE_AHEAD_TTL_S * 1000, "write-ahead baseline", err, errlen);
}

int store_ahead_clear(struct redis_client *c, const char *id, char *err, size_t errlen)
{
    char key[KEY_MAX];
    if (key_of(key, AHEAD_PREFIX, id, NULL, err, errlen) != 0)
        return -1;
    return redis_del(c, key, err, errlen) < 0 ? -1 : 0;
}

int store_resolve_link(struct redis_client *c, const char *id, long long betnr, char *err,
                       size_t errlen)
{
    if (betnr <= 0) {
        util_err(err, errlen, "betNr must be a positive number");
        return -1;
    }
    if (store_link_set(c, id, betnr, NULL, NULL, false, NULL, err, errlen) != 0)
        return -1;
    return store_clear_creating(c, id, err, errlen);
}

int store_resolve_create(struct redis_client *c, const char *id, char *err, size_t errlen)
{
    return store_clear_creating(c, id, err, errlen);
}
