/* links.c: the party's Advoware link and create mark in Redis (see links.h). */
#include "links.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_PREFIX     "vmh:link:"
#define CREATING_PREFIX "vmh:creating:"

static void key_of(char *key, size_t len, const char *prefix, const char *id)
{
    snprintf(key, len, "%s%s", prefix, id);
}

/* A reply that is an error (or none) is a Redis error: -1 with err. */
static int failed(redisReply *rep, char *err, size_t errlen)
{
    if (rep && rep->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "redis: %s", rep->str);
    return !rep || rep->type == REDIS_REPLY_ERROR ? -1 : 0;
}

int links_get(struct redis_client *c, const char *id, json_t **out, char *err, size_t errlen)
{
    char key[200];
    *out = NULL;
    key_of(key, sizeof key, LINK_PREFIX, id);
    redisReply *rep = redis_command(c, err, errlen, "GET %s", key);
    int rc = failed(rep, err, errlen);
    if (rc == 0 && rep->type == REDIS_REPLY_STRING)
        *out = json_loads(rep->str, 0, NULL); /* unreadable: as if none */
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int links_set(struct redis_client *c, const char *id, long long betnr, const char *name,
              const char *user, bool deleted, char *err, size_t errlen)
{
    char key[200];
    key_of(key, sizeof key, LINK_PREFIX, id);
    json_t *link = json_pack("{s:I,s:s?,s:s?}", "betnr", (json_int_t)betnr, "name", name,
                             "assignedUserId", user);
    if (link && deleted)
        json_object_set_new(link, "deleted", json_true());
    char *text = link ? json_dumps(link, JSON_COMPACT) : NULL;
    json_decref(link);
    if (!text) {
        snprintf(err, errlen, "link: out of memory");
        return -1;
    }
    redisReply *rep = redis_command(c, err, errlen, "SET %s %s", key, text);
    free(text);
    int rc = failed(rep, err, errlen);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int links_creating(struct redis_client *c, const char *id, char *since, size_t sincelen, char *err,
                   size_t errlen)
{
    char key[200];
    key_of(key, sizeof key, CREATING_PREFIX, id);
    redisReply *rep = redis_command(c, err, errlen, "GET %s", key);
    int rc = failed(rep, err, errlen);
    if (rc == 0 && rep->type == REDIS_REPLY_STRING) {
        snprintf(since, sincelen, "%s", rep->str);
        rc = 1;
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int links_mark_creating(struct redis_client *c, const char *id, const char *since, char *err,
                        size_t errlen)
{
    char key[200];
    key_of(key, sizeof key, CREATING_PREFIX, id);
    redisReply *rep =
        redis_command(c, err, errlen, "SET %s %s EX %lld", key, since, LINKS_CREATING_TTL_S);
    int rc = failed(rep, err, errlen);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int links_clear_creating(struct redis_client *c, const char *id, char *err, size_t errlen)
{
    char key[200];
    key_of(key, sizeof key, CREATING_PREFIX, id);
    redisReply *rep = redis_command(c, err, errlen, "DEL %s", key);
    int rc = failed(rep, err, errlen);
    if (rep)
        freeReplyObject(rep);
    return rc;
}

int links_resolve_link(struct redis_client *c, const char *id, long long betnr, char *err,
                       size_t errlen)
{
    if (betnr <= 0) {
        snprintf(err, errlen, "betNr must be a positive number");
        return -1;
    }
    if (links_set(c, id, betnr, NULL, NULL, false, err, errlen) != 0)
        return -1;
    return links_clear_creating(c, id, err, errlen);
}

int links_resolve_create(struct redis_client *c, const char *id, char *err, size_t errlen)
{
    return links_clear_creating(c, id, err, errlen);
}
