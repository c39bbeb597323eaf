/* cmd_party.c: vmhctl resync, reset, unlock, link and create (SPEC §11, §5.3): the levers on one
 * party. Messages go through vmh-producer's own Kafka producer (ksend.h), the lock through
 * lock.h's key and compare-and-delete, the create mark and link through store.h. */
#include "cmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ksend.h"
#include "lock.h"
#include "msg.h"
#include "store.h"
#include "syncfields.h"
#include "util.h"

#define KAFKA_WAIT_MS 30000 /* how long vmhctl waits for Kafka's acknowledgements */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

int cmd_send_resync(struct ctl *c, char **ids, int n, json_t *sent, char *err, size_t errlen)
{
    char topic[256];
    kafka_topic_name(c->prefix, KAFKA_TOPIC_SYNC_CHECK, topic, sizeof topic);
    for (int i = 0; i < n; i++) { /* every id first: nothing is sent for a bad list */
        char *v = msg_encode(ids[i], MSG_EVENT_SYNC_CHECK, MSG_SOURCE_CLI, NULL, 0);
        if (!v) {
            util_err(err, errlen, "not an entity id: \"%.80s\" (1 to %d characters)", ids[i],
                     MSG_ID_MAX);
            return -1;
        }
        free(v);
    }
    struct ksend *s = ksend_new(c->brokers, c->prefix, err, errlen);
    if (!s)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    long *num = calloc((size_t)n + 1, sizeof *num);
    for (int i = 0; num && i < n; i++) {
        char *v = msg_encode(ids[i], MSG_EVENT_SYNC_CHECK, MSG_SOURCE_CLI, NULL, ms);
        char qerr[256] = "";
        num[i] = v ? ksend_queue(s, KAFKA_TOPIC_SYNC_CHECK, ids[i], v, strlen(v), qerr, sizeof qerr)
                   : -1;
        free(v);
    }
    ksend_wait(s, KAFKA_WAIT_MS);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char rerr[256] = "queue refused the message";
        int r = num && num[i] >= 0 ? ksend_result(s, (size_t)num[i], rerr, sizeof rerr) : -1;
        if (r == 0)
            snprintf(rerr, sizeof rerr, "not acknowledged within %d s", KAFKA_WAIT_MS / 1000);
        bad += r != 1;
        if (sent)
            json_array_append_new(sent, json_pack("{s:s,s:s,s:b,s:o}", "id", ids[i], "topic", topic,
                                                  "acknowledged", r == 1, "error",
                                                  r == 1 ? json_null() : json_string(rerr)));
    }
    free(num);
    ksend_close(s, 1000, NULL, NULL);
    return bad;
}

int cmd_resync(struct ctl *c, int argc, char **argv)
{
    char err[512];
    json_t *sent = json_array();
    int bad = cmd_send_resync(c, argv, argc, sent, err, sizeof err);
    if (bad < 0) {
        json_decref(sent);
        fprintf(stderr, "vmhctl resync: %s\n", err);
        return strncmp(err, "not an entity id", 16) == 0 ? CTL_USAGE : CTL_PROBLEM;
    }
    size_t i;
    json_t *m;
    json_array_foreach(sent, i, m)
    {
        if (json_is_true(json_object_get(m, "acknowledged")))
            ctl_say(c, "%s: sync_check sent to %s (source cli), acknowledged by Kafka\n",
                    jstr(m, "id"), jstr(m, "topic"));
        else
            ctl_say(c, "%s: NOT sent: %s (check Kafka: vmhctl doctor)\n", jstr(m, "id"),
                    jstr(m, "error"));
    }
    ctl_emit(c, json_pack("{s:o}", "sent", sent));
    return bad ? CTL_PROBLEM : CTL_OK;
}

/* GET the entity: 1 found (*e), 0 not found, -1 EspoCRM failed (said on stderr). */
static int get_entity(struct ctl *c, const char *cmd, const char *id, json_t **e)
{
    char err[256];
    long status = 0;
    *e = NULL;
    struct espo *espo = ctl_espo(c, err, sizeof err);
    if (!espo || espo_get(espo, id, &status, e, err, sizeof err) != 0) {
        fprintf(stderr, "vmhctl %s: EspoCRM unreachable: %s\n", cmd, err);
        return -1;
    }
    if (status == 404) {
        json_decref(*e);
        *e = NULL;
        return 0;
    }
    if (status != 200 || !json_is_object(*e)) {
        fprintf(stderr, "vmhctl %s: EspoCRM GET %s answered %ld%s%s\n", cmd, id, status,
                *err ? ": " : "", err);
        json_decref(*e);
        *e = NULL;
        return -1;
    }
    return 1;
}

int cmd_reset(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    const char *id = argv[0];
    char err[256];
    json_t *e = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int found = get_entity(c, "reset", id, &e);
        if (found <= 0) {
            if (found == 0)
                fprintf(stderr, "vmhctl reset: %s is not in EspoCRM (404)\n", id);
            return CTL_PROBLEM;
        }
        long long version = json_integer_value(json_object_get(e, "versionNumber"));
        json_t *put = json_pack("{s:s,s:i,s:n}", SF_SYNC_STATUS, SF_STATUS_DIRTY,
                                SF_SYNC_RETRY_COUNT, 0, SF_SYNC_NEXT_RETRY);
        long status = 0;
        int rc = espo_put(c->espo, id, put, version, &status, NULL, err, sizeof err);
        json_decref(put);
        if (rc == 0 && status == 409) { /* a person saved meanwhile: read again, once */
            json_decref(e);
            e = NULL;
            continue;
        }
        if (rc != 0 || status != 200) {
            if (rc != 0)
                fprintf(stderr, "vmhctl reset: EspoCRM PUT %s: no answer: %s\n", id, err);
            else
                fprintf(stderr, "vmhctl reset: EspoCRM PUT %s answered %ld%s%s\n", id, status,
                        *err ? ": " : "", err);
            json_decref(e);
            return CTL_PROBLEM;
        }
        const char *was = jstr(e, SF_SYNC_STATUS);
        long long retries = json_integer_value(json_object_get(e, SF_SYNC_RETRY_COUNT));
        ctl_say(c,
                "%s: syncStatus dirty, syncRetryCount 0, syncNextRetry cleared (was %s, %lld). "
                "The cron's next fallback scan picks it up; `vmhctl resync %s` runs it now.\n",
                id, was ? was : "-", retries, id);
        ctl_emit(c, json_pack("{s:s,s:s,s:o,s:I}", "id", id, "syncStatus", SF_STATUS_DIRTY, "was",
                              ctl_jstr(was), "wasRetryCount", (json_int_t)retries));
        json_decref(e);
        return CTL_OK;
    }
    fprintf(stderr, "vmhctl reset: %s changed twice while being reset (409); try again\n", id);
    return CTL_PROBLEM;
}

int cmd_unlock(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    const char *id = argv[0];
    char key[LOCK_KEY_MAX], err[256];
    char *holder = NULL;
    if (lock_key(id, key, sizeof key) != 0) {
        fprintf(stderr, "vmhctl unlock: not an entity id: \"%.80s\"\n", id);
        return CTL_USAGE;
    }
    struct redis_client *r = ctl_redis(c, err, sizeof err);
    int got = r ? redis_get(r, key, &holder, NULL, err, sizeof err) : -1;
    if (got < 0) {
        fprintf(stderr, "vmhctl unlock: Redis: %s\n", err);
        return CTL_PROBLEM;
    }
    if (got == 0) {
        ctl_say(c, "%s: not locked; nothing to do\n", id);
        ctl_emit(c, json_pack("{s:s,s:b,s:n}", "id", id, "released", 0, "holder"));
        return CTL_OK;
    }
    /* Only this holder's lock goes: a run that took it over meanwhile keeps it. */
    int del = redis_del_if_equal(r, key, holder, err, sizeof err);
    int rc = CTL_OK;
    if (del < 0) {
        fprintf(stderr, "vmhctl unlock: Redis: %s\n", err);
        rc = CTL_PROBLEM;
    } else if (del == 0) {
        ctl_say(c, "%s: the lock changed hands meanwhile (a new run holds it); not released\n", id);
        rc = CTL_PROBLEM;
    } else {
        ctl_say(c,
                "%s: lock of %s released. If that run is still alive it stops before its next "
                "write (it checks its lock, SPEC 5.3); the party is free for the next run.\n",
                id, holder);
    }
    ctl_emit(c, json_pack("{s:s,s:b,s:s}", "id", id, "released", del == 1, "holder", holder));
    free(holder);
    return rc;
}

/* betNr as a positive integer; -1 if it is none. */
static long long parse_betnr(const char *s)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || !end || *end || end == s || v <= 0 ? -1 : v;
}

/* The resync after a resolution; prints what happened. CTL_OK or CTL_PROBLEM. */
static int resync_after(struct ctl *c, const char *id, json_t *doc)
{
    char err[256];
    char *ids[] = {(char *)id};
    int bad = cmd_send_resync(c, ids, 1, NULL, err, sizeof err);
    json_object_set_new(doc, "resync", json_boolean(bad == 0));
    if (bad == 0) {
        ctl_say(c, "%s: resync sent; the next run finishes it\n", id);
        return CTL_OK;
    }
    ctl_say(c, "%s: resync NOT sent (%s): run `vmhctl resync %s` when Kafka is back\n", id,
            bad < 0 ? err : "Kafka did not acknowledge", id);
    return CTL_PROBLEM;
}

int cmd_link(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    const char *id = argv[0];
    long long betnr = parse_betnr(argv[1]);
    char err[256], since[32] = "";
    if (betnr <= 0) {
        fprintf(stderr, "vmhctl link: betNr must be a positive number, not \"%.40s\"\n", argv[1]);
        return CTL_USAGE;
    }
    json_t *e = NULL, *rec = NULL;
    int found = get_entity(c, "link", id, &e);
    if (found <= 0) {
        if (found == 0)
            fprintf(stderr, "vmhctl link: %s is not in EspoCRM (404)\n", id);
        return CTL_PROBLEM;
    }
    long long has = json_integer_value(json_object_get(e, SF_BETNR));
    json_decref(e);
    if (has > 0 && has != betnr) {
        fprintf(stderr, "vmhctl link: %s is linked to betNr %lld in EspoCRM already\n", id, has);
        return CTL_PROBLEM;
    }
    struct advo *a = ctl_advo(c, err, sizeof err);
    long status = 0;
    if (!a || advo_get_beteiligte(a, betnr, &status, &rec, err, sizeof err) != 0 || status != 200) {
        if (status == 404)
            fprintf(stderr, "vmhctl link: Advoware has no Beteiligter with betNr %lld\n", betnr);
        else
            fprintf(stderr, "vmhctl link: Advoware GET betNr %lld: %s (status %ld)\n", betnr, err,
                    status);
        json_decref(rec);
        return CTL_PROBLEM;
    }
    struct redis_client *r = ctl_redis(c, err, sizeof err);
    int marked = r ? store_creating(r, id, since, sizeof since, err, sizeof err) : -1;
    if (marked < 0 || store_resolve_link(r, id, betnr, err, sizeof err) != 0) {
        fprintf(stderr, "vmhctl link: Redis: %s\n", err);
        json_decref(rec);
        return CTL_PROBLEM;
    }
    ctl_say(c, "%s: linked to betNr %lld (Advoware: \"%s\")%s%s%s\n", id, betnr,
            jstr(rec, "name") ? jstr(rec, "name") : "", marked ? "; the create mark of " : "",
            marked ? since : "", marked ? " UTC is removed" : "");
    json_t *doc = json_pack("{s:s,s:I,s:o,s:o}", "id", id, "betnr", (json_int_t)betnr,
                            "advowareName", ctl_jstr(jstr(rec, "name")), "createMark",
                            marked ? json_string(since) : json_null());
    json_decref(rec);
    int rc = resync_after(c, id, doc);
    ctl_emit(c, doc);
    return rc;
}

int cmd_create(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    const char *id = argv[0];
    char err[256], since[32] = "";
    json_t *e = NULL;
    int found = get_entity(c, "create", id, &e);
    if (found <= 0) {
        if (found == 0)
            fprintf(stderr, "vmhctl create: %s is not in EspoCRM (404)\n", id);
        return CTL_PROBLEM;
    }
    long long has = json_integer_value(json_object_get(e, SF_BETNR));
    json_decref(e);
    if (has > 0) {
        fprintf(stderr, "vmhctl create: %s has betNr %lld already; nothing to create\n", id, has);
        return CTL_PROBLEM;
    }
    struct redis_client *r = ctl_redis(c, err, sizeof err);
    int marked = r ? store_creating(r, id, since, sizeof since, err, sizeof err) : -1;
    if (marked < 0) {
        fprintf(stderr, "vmhctl create: Redis: %s\n", err);
        return CTL_PROBLEM;
    }
    if (marked == 0) {
        fprintf(stderr,
                "vmhctl create: no uncertain create stands for %s (no create mark): nothing to "
                "resolve; a normal run creates it\n",
                id);
        return CTL_PROBLEM;
    }
    if (store_resolve_create(r, id, err, sizeof err) != 0) {
        fprintf(stderr, "vmhctl create: Redis: %s\n", err);
        return CTL_PROBLEM;
    }
    ctl_say(c, "%s: the create mark of %s UTC is removed: the next run may POST to Advoware once\n",
            id, since);
    json_t *doc = json_pack("{s:s,s:s}", "id", id, "createMark", since);
    int rc = resync_after(c, id, doc);
    ctl_emit(c, doc);
    return rc;
}
