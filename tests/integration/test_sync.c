/* test_sync.c: the Stammdaten sync end to end (SPEC §5.1–§5.3, §5.5, §5.6): kafka-mock,
 * redis-server, espocrm-sim (which sends the webhooks), advoware-sim, vmh-producer and two
 * vmh-worker processes. Each test acts as the outside world does — a UI user in EspoCRM, an
 * Advoware user, a cron message — and checks both simulators' final state and the exact API
 * calls from their /_sim/stats. */
#include "harness.h"
#include "msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS 4
#define ESPO_KEY   "X-Api-Key: dev-espocrm-key"
#define E_ONE      "/api/v1/CBeteiligte/{id}"
#define A_ONE      "/api/v1/advonet/Beteiligte/{betNr}"
#define A_ALL      "/api/v1/advonet/Beteiligte"

static struct {
    struct th_kafka kafka;
    struct th_redis redis;
    struct th_sim espo, advo;
    struct th_proc producer;
    struct th_worker w[2];
    struct th_kprod *kp;
} g;

/* ---- the stack ---------------------------------------------------------------------------- */

static int register_webhooks(int port, char *secrets, size_t len)
{
    static const char *const events[] = {"create", "update", "delete"};
    char url[128], body[256];
    const char *headers[] = {ESPO_KEY, NULL};
    snprintf(url, sizeof url, "%s/api/v1/Webhook", g.espo.url);
    secrets[0] = '\0';
    for (int i = 0; i < 3; i++) {
        json_t *out = NULL;
        snprintf(body, sizeof body,
                 "{\"event\":\"CBeteiligte.%s\",\"url\":\"http://127.0.0.1:%d/webhook/"
                 "beteiligte/%s\",\"skipOwn\":true}",
                 events[i], port, events[i]);
        long st = th_http("POST", url, headers, body, &out);
        if (st != 200 && st != 201)
            return -1;
        size_t n = strlen(secrets);
        snprintf(secrets + n, len - n, "%s%s:%s", n ? "," : "",
                 json_string_value(json_object_get(out, "id")),
                 json_string_value(json_object_get(out, "secretKey")));
        json_decref(out);
    }
    return 0;
}

static int start_worker(int i)
{
    char espo[96], advo[96];
    snprintf(espo, sizeof espo, "ESPOCRM_URL=%s", g.espo.url);
    snprintf(advo, sizeof advo, "ADVOWARE_URL=%s", g.advo.url);
    const char *env[] = {espo,
                         advo,
                         "ESPOCRM_API_KEY=dev-espocrm-key",
                         "ESPOCRM_NOTIFY_USER_ID=admin",
                         "ADVOWARE_APP_ID=vmh-dev",
                         "ADVOWARE_API_KEY=ZGV2LWFkdm93YXJlLWtleQ==",
                         "ADVOWARE_KANZLEI=dev",
                         "ADVOWARE_DATABASE=dev",
                         "ADVOWARE_USER=dev",
                         "ADVOWARE_PASSWORD=dev",
                         "WORKER_CONCURRENCY=4",
                         "LOG_LEVEL=warn",
                         NULL};
    return th_worker_start_bin(&g.w[i], "vmh-worker", g.kafka.bootstrap, g.redis.url, env);
}

static int setup(void **state)
{
    (void)state;
    static const char *const espo_args[] = {"--webhook-retry-ms", "1000", NULL};
    /* Tokens live 2 s (cached 1 s): every test also runs through token refreshes. */
    static const char *const advo_args[] = {"--token-ttl-s", "2", NULL};
    if (th_kafka_start(&g.kafka, PARTITIONS) != 0 || th_redis_start(&g.redis, NULL) != 0 ||
        th_sim_start(&g.espo, "espocrm-sim", espo_args) != 0 ||
        th_sim_start(&g.advo, "advoware-sim", advo_args) != 0)
        return -1;
    int web = th_free_port(), ops = th_free_port();
    char secrets[512];
    if (register_webhooks(web, secrets, sizeof secrets) != 0)
        return -1;
    char bin[512], brokers[600], redis[320], weblisten[64], opslisten[64], espo[96], sec[600];
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", g.kafka.bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", g.redis.url);
    snprintf(weblisten, sizeof weblisten, "WEBHOOK_LISTEN=127.0.0.1:%d", web);
    snprintf(opslisten, sizeof opslisten, "METRICS_LISTEN=127.0.0.1:%d", ops);
    snprintf(espo, sizeof espo, "ESPOCRM_URL=%s", g.espo.url);
    snprintf(sec, sizeof sec, "WEBHOOK_SECRETS=%s", secrets);
    const char *env[] = {brokers,
                         redis,
                         weblisten,
                         opslisten,
                         espo,
                         sec,
                         "ESPOCRM_API_KEY=dev-espocrm-key",
                         "CRON_INTERVAL_S=3600",
                         "CRON_RETRY_INTERVAL_S=3600",
                         "LOG_FORMAT=text",
                         "LOG_LEVEL=warn",
                         NULL};
    const char *argv[] = {th_bin("vmh-producer", bin, sizeof bin), NULL};
    if (th_proc_start(&g.producer, argv, env, false) != 0 || start_worker(0) != 0 ||
        start_worker(1) != 0)
        return -1;
    bool ok;
    TH_WAIT(ok, th_worker_ready(&g.w[0]) && th_worker_ready(&g.w[1]), 60000);
    g.kp = th_kprod_new(g.kafka.bootstrap);
    return ok && g.kp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    th_kprod_free(g.kp);
    for (int i = 0; i < 2; i++)
        rc |= th_proc_stop(&g.w[i].proc, SIGTERM, 30000);
    rc |= th_proc_stop(&g.producer, SIGTERM, 30000);
    rc |= th_sim_stop(&g.espo);
    rc |= th_sim_stop(&g.advo);
    th_redis_stop(&g.redis);
    th_kafka_stop(&g.kafka);
    return rc == 0 ? 0 : -1;
}

/* ---- the outside world --------------------------------------------------------------------- */

static json_t *call(const struct th_sim *s, const char *method, const char *path, const char *body)
{
    char url[256];
    json_t *out = NULL;
    snprintf(url, sizeof url, "%s%s", s->url, path);
    long st = th_http(method, url, NULL, body, &out);
    if (st < 200 || st >= 300)
        fail_msg("%s %s: %ld", method, path, st);
    return out;
}

/* A UI user creates an entity; returns its id (static buffer per call site is the caller's). */
static void ui_create(const char *attrs, char *id, size_t idlen)
{
    json_t *e = call(&g.espo, "POST", "/_sim/ui/CBeteiligte", attrs);
    snprintf(id, idlen, "%s", json_string_value(json_object_get(e, "id")));
    json_decref(e);
}

static void ui_update(const char *id, const char *attrs)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    json_decref(call(&g.espo, "PUT", path, attrs));
}

static json_t *espo_state(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/state/CBeteiligte/%s", id);
    return call(&g.espo, "GET", path, NULL);
}

static json_t *advo_state(long long betnr)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/state/Beteiligte/%lld", betnr);
    return call(&g.advo, "GET", path, NULL);
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Polls until the entity's syncStatus is `status` and its versionNumber moved past `after`
 * (a write of the sync happened); returns the entity. */
static json_t *wait_status(const char *id, const char *status, long long after)
{
    json_t *e = NULL;
    long long end = th_now_ms() + 30000;
    while (th_now_ms() < end) {
        json_decref(e);
        e = espo_state(id);
        if (strcmp(str(e, "syncStatus"), status) == 0 &&
            json_integer_value(json_object_get(e, "versionNumber")) > after)
            return e;
        th_sleep_ms(20);
    }
    fail_msg("entity %s: syncStatus %s, want %s", id, str(e, "syncStatus"), status);
    return NULL;
}

/* What a cron tick sends: sync_check for id. */
static void sync_check(const char *id, const char *reason)
{
    char *v = msg_encode(id, MSG_EVENT_SYNC_CHECK, MSG_SOURCE_CRON, reason, 1767225600000LL);
    assert_int_equal(th_kprod_send(g.kp, "vmh.beteiligte.sync_check", -1, id, v, strlen(v)), 0);
    assert_int_equal(th_kprod_flush(g.kp, 10000), 0);
    free(v);
}

/* Calls counted by both simulators, as a snapshot to diff. */
struct calls {
    long e_get, e_put, e_post_notif, a_get, a_put, a_post;
};

/* Calls of a route without those answered 401: an expired token's call and its repeat are one
 * call of the budget (token calls are excluded, SPEC §5.3). */
static long calls_of(const struct th_sim *s, const char *method, const char *route)
{
    return th_sim_calls(s, method, route, 0) - th_sim_calls(s, method, route, 401);
}

static void snapshot(struct calls *c)
{
    c->e_get = calls_of(&g.espo, "GET", E_ONE);
    c->e_put = calls_of(&g.espo, "PUT", E_ONE);
    c->e_post_notif = calls_of(&g.espo, "POST", "/api/v1/Notification");
    c->a_get = calls_of(&g.advo, "GET", A_ONE);
    c->a_put = calls_of(&g.advo, "PUT", A_ONE);
    c->a_post = calls_of(&g.advo, "POST", A_ALL);
}

/* Expects the calls since `before` (in the order of struct calls). */
static void expect_calls(const struct calls *before, long e_get, long e_put, long notif, long a_get,
                         long a_put, long a_post)
{
    struct calls now;
    snapshot(&now);
    long got[] = {now.e_get - before->e_get,
                  now.e_put - before->e_put,
                  now.e_post_notif - before->e_post_notif,
                  now.a_get - before->a_get,
                  now.a_put - before->a_put,
                  now.a_post - before->a_post};
    long want[] = {e_get, e_put, notif, a_get, a_put, a_post};
    if (memcmp(got, want, sizeof got) != 0)
        fail_msg("calls (espo GET, PUT, notifications; advo GET, PUT, POST): got %ld %ld %ld %ld "
                 "%ld %ld, want %ld %ld %ld %ld %ld %ld",
                 got[0], got[1], got[2], got[3], got[4], got[5], want[0], want[1], want[2], want[3],
                 want[4], want[5]);
}

/* Waits until the simulators' counters stop moving for a moment after a condition held (a late
 * duplicate run would show). */
static void settle(void)
{
    struct calls a, b;
    snapshot(&a);
    for (int i = 0; i < 20; i++) {
        th_sleep_ms(50); /* polling: the counters must stay put over consecutive reads */
        snapshot(&b);
        if (memcmp(&a, &b, sizeof a) == 0 && i >= 4)
            return;
        a = b;
    }
}

static long notifications_with(const char *text)
{
    json_t *list = call(&g.espo, "GET", "/_sim/notifications", NULL), *n;
    size_t i;
    long count = 0;
    json_array_foreach(list, i, n)
    {
        count += strstr(str(n, "message"), text) != NULL;
    }
    json_decref(list);
    return count;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* A synced entity: created by a UI user, synced to clean. betnr and version out. */
static void synced_entity(const char *attrs, char *id, size_t idlen, long long *betnr,
                          long long *version)
{
    ui_create(attrs, id, idlen);
    json_t *e = wait_status(id, "clean", 0);
    *betnr = json_integer_value(json_object_get(e, "betnr"));
    *version = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    settle();
}

static void test_create(void **state)
{
    (void)state;
    struct calls before;
    snapshot(&before);
    char id[80];
    ui_create("{\"name\":\"Mustermann\",\"vorname\":\"Max\",\"rechtsform\":\"GmbH\","
              "\"dateOfBirth\":\"1980-05-17\",\"assignedUserId\":\"u-anna\"}",
              id, sizeof id);
    json_t *e = wait_status(id, "clean", 0);
    long long betnr = json_integer_value(json_object_get(e, "betnr"));
    assert_true(betnr > 0);
    assert_true(str(e, "advowareRowId")[0] != '\0');
    assert_true(str(e, "advowareLastSync")[0] != '\0');
    json_t *a = advo_state(betnr);
    assert_string_equal(str(a, "name"), "Mustermann");
    assert_string_equal(str(a, "vorname"), "Max");
    assert_string_equal(str(a, "rechtsform"), "GmbH");
    assert_string_equal(str(a, "geburtsdatum"), "1980-05-17T00:00:00");
    assert_string_equal(str(a, "rowId"), str(e, "advowareRowId"));
    json_decref(a);
    json_decref(e);
    settle();
    /* SPEC §5.3 budget: EspoCRM GET, Advoware POST, EspoCRM PUT */
    expect_calls(&before, 1, 1, 0, 0, 0, 1);
}

static void test_update_espocrm_side(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    synced_entity("{\"name\":\"Schmidt\",\"vorname\":\"Eva\"}", id, sizeof id, &betnr, &version);
    struct calls before;
    snapshot(&before);
    ui_update(id, "{\"vorname\":\"Evelyn\",\"titel\":\"Dr.\"}");
    json_t *e = wait_status(id, "clean", version + 1);
    json_t *a = advo_state(betnr);
    assert_string_equal(str(a, "vorname"), "Evelyn");
    assert_string_equal(str(a, "titel"), "Dr.");
    assert_string_equal(str(a, "rowId"), str(e, "advowareRowId"));
    json_decref(a);
    json_decref(e);
    settle();
    expect_calls(&before, 1, 1, 0, 1, 1, 0); /* 4 calls */
}

static void test_update_advoware_side(void **state)
{
    (void)state;
    char id[80], path[160];
    long long betnr, version;
    synced_entity("{\"name\":\"Weber\",\"vorname\":\"Jan\",\"zusatz\":\"alt\"}", id, sizeof id,
                  &betnr, &version);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(call(&g.advo, "PUT", path, "{\"vorname\":\"Johann\",\"zusatz\":null}"));
    struct calls before;
    snapshot(&before);
    sync_check(id, "stale_clean");
    json_t *e = wait_status(id, "clean", version);
    assert_string_equal(str(e, "vorname"), "Johann");
    assert_true(json_is_null(json_object_get(e, "zusatz"))); /* a null in Advoware clears */
    assert_string_equal(str(e, "name"), "Weber");
    json_t *a = advo_state(betnr);
    assert_string_equal(str(a, "rowId"), str(e, "advowareRowId"));
    json_decref(a);
    json_decref(e);
    settle();
    expect_calls(&before, 1, 1, 0, 1, 0, 0); /* 3 calls: data and status in one PUT */
}

static void test_no_change(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    synced_entity("{\"name\":\"Fischer\"}", id, sizeof id, &betnr, &version);
    struct calls before;
    snapshot(&before);
    sync_check(id, NULL);
    /* the run is over when both GETs happened and nothing moves any more */
    bool ok;
    TH_WAIT(ok, calls_of(&g.advo, "GET", A_ONE) > before.a_get, 30000);
    assert_true(ok);
    settle();
    expect_calls(&before, 1, 0, 0, 1, 0, 0); /* 2 calls: nothing needs writing */
    json_t *e = espo_state(id);
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), version);
    json_decref(e);
}

static void test_conflict_espocrm_wins(void **state)
{
    (void)state;
    char id[80], path[160];
    long long betnr, version;
    synced_entity("{\"name\":\"Keller\",\"vorname\":\"Ina\",\"assignedUserId\":\"u-ina\"}", id,
                  sizeof id, &betnr, &version);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(call(&g.advo, "PUT", path, "{\"vorname\":\"Irene\"}"));
    ui_update(id, "{\"vorname\":\"Isa\"}");
    json_t *e = wait_status(id, "clean", version + 1);
    json_t *a = advo_state(betnr);
    assert_string_equal(str(a, "vorname"), "Isa");
    assert_string_equal(str(e, "vorname"), "Isa");
    json_decref(a);
    json_decref(e);
    settle();
    assert_int_equal(notifications_with("Konflikt gelöst: EspoCRM-Daten wurden übernommen"), 1);
}

static void test_delete_notifies_with_betnr(void **state)
{
    (void)state;
    char id[80], path[160], text[128];
    long long betnr, version;
    synced_entity("{\"name\":\"Lang\",\"assignedUserId\":\"u-lang\"}", id, sizeof id, &betnr,
                  &version);
    struct calls before;
    snapshot(&before);
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    json_decref(call(&g.espo, "DELETE", path, NULL));
    snprintf(text, sizeof text, "Bitte manuell in Advoware löschen: betNr %lld", betnr);
    bool ok;
    TH_WAIT(ok, notifications_with(text) == 1, 30000);
    assert_true(ok);
    settle();
    expect_calls(&before, 1, 0, 1, 0, 0, 0);
    assert_int_equal(th_sim_calls(&g.advo, "DELETE", A_ONE, 0), 0);
    json_t *a = advo_state(betnr); /* still there: a person deletes it */
    json_decref(a);
}

static void test_validation_error_is_permanent(void **state)
{
    (void)state;
    char id[80];
    struct calls before;
    snapshot(&before);
    ui_create("{\"name\":\"Vogel\",\"vorname\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG\"}", id,
              sizeof id);
    json_t *e = wait_status(id, "permanently_failed", 0);
    assert_non_null(strstr(str(e, "syncErrorMessage"), "vorname"));
    long long version = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    settle();
    expect_calls(&before, 1, 1, 1, 0, 0, 0);
    assert_int_equal(notifications_with("vorname: longer than 30"), 1);
    /* a later cron run that finds nothing changed keeps the failure (the data is still bad) */
    snapshot(&before);
    sync_check(id, "dirty");
    bool ok;
    TH_WAIT(ok, calls_of(&g.espo, "GET", E_ONE) > before.e_get, 30000);
    assert_true(ok);
    settle();
    e = espo_state(id);
    assert_string_equal(str(e, "syncStatus"), "permanently_failed");
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), version);
    json_decref(e);
    assert_int_equal(notifications_with("vorname: longer than 30"), 1);
}

static void test_advoware_404_is_deleted_in_advoware(void **state)
{
    (void)state;
    char id[80];
    ui_create("{\"name\":\"Graf\",\"betnr\":987654}", id, sizeof id);
    json_t *e = wait_status(id, "deleted_in_advoware", 0);
    json_decref(e);
    settle();
    assert_int_equal(notifications_with("betNr 987654"), 1);
}

static void fault(const struct th_sim *s, const char *method, const char *route, int status,
                  int count)
{
    char body[256];
    snprintf(body, sizeof body, "{\"method\":\"%s\",\"route\":\"%s\",\"status\":%d,\"count\":%d}",
             method, route, status, count);
    json_decref(call(s, "POST", "/_sim/faults", body));
}

static long long seconds(const json_t *e, const char *field)
{
    int y, mo, d, h, mi, se;
    if (sscanf(str(e, field), "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6)
        fail_msg("%s: not a datetime: \"%s\"", field, str(e, field));
    return ((long long)d * 24 + h) * 3600 + mi * 60 + se; /* enough within one month */
}

static void test_transient_failure_then_retry_scan(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    synced_entity("{\"name\":\"Roth\",\"vorname\":\"Uwe\"}", id, sizeof id, &betnr, &version);
    fault(&g.advo, "PUT", A_ONE, 503, 1);
    ui_update(id, "{\"vorname\":\"Ulf\"}");
    json_t *e = wait_status(id, "failed", version + 1);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 1);
    assert_non_null(strstr(str(e, "syncErrorMessage"), "503"));
    long long wait = seconds(e, "syncNextRetry") - seconds(e, "modifiedAt");
    assert_true(wait >= 58 && wait <= 61); /* 1 min backoff */
    long long v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    /* a minute passes (made due by a person), the retry scan (every 1 s) picks it up */
    ui_update(id, "{\"syncNextRetry\":\"2020-01-01 00:00:00\"}");
    e = wait_status(id, "clean", v + 1);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 0);
    assert_true(json_is_null(json_object_get(e, "syncErrorMessage")));
    json_t *a = advo_state(betnr);
    assert_string_equal(str(a, "vorname"), "Ulf");
    json_decref(a);
    json_decref(e);
    settle();
}

static void test_five_failures_then_auto_reset(void **state)
{
    (void)state;
    char id[80];
    long long betnr, version;
    synced_entity("{\"name\":\"Sommer\",\"assignedUserId\":\"u-som\"}", id, sizeof id, &betnr,
                  &version);
    fault(&g.advo, "GET", A_ONE, 503, 5);
    long long v = version;
    for (int i = 1; i <= 5; i++) {
        sync_check(id, i == 1 ? NULL : "failed");
        json_t *e = wait_status(id, i < 5 ? "failed" : "permanently_failed", v);
        assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), i);
        v = json_integer_value(json_object_get(e, "versionNumber"));
        if (i == 5) {
            long long reset = seconds(e, "syncAutoResetAt") - seconds(e, "modifiedAt");
            assert_true(reset >= 24 * 3600 - 2 && reset <= 24 * 3600 + 1);
        }
        json_decref(e);
    }
    settle();
    assert_int_equal(notifications_with("5-mal fehlgeschlagen"), 1);
    /* the cron's auto reset: a normal run again, from retry count 0 */
    sync_check(id, "auto_reset");
    json_t *e = wait_status(id, "clean", v);
    assert_int_equal(json_integer_value(json_object_get(e, "syncRetryCount")), 0);
    assert_true(json_is_null(json_object_get(e, "syncAutoResetAt")));
    json_decref(e);
    settle();
}

/* A UI edit lands while a run is between its GET and its final PUT (Advoware's PUT is slow):
 * EspoCRM answers the PUT with 409, the run starts over, and the edit reaches Advoware. */
static void test_edit_during_a_run_is_not_lost(void **state)
{
    (void)state;
    char id[80], body[200];
    long long betnr, version;
    synced_entity("{\"name\":\"Brandt\",\"vorname\":\"Tom\"}", id, sizeof id, &betnr, &version);
    snprintf(body, sizeof body,
             "{\"method\":\"PUT\",\"route\":\"%s\",\"delay_ms\":1500,\"count\":1}", A_ONE);
    json_decref(call(&g.advo, "POST", "/_sim/faults", body));
    long retries_before = 0;
    for (int i = 0; i < 2; i++)
        retries_before += (long)th_metric(g.w[i].metrics_port, "vmh_sync_retries_total", NULL);
    ui_update(id, "{\"vorname\":\"Timo\"}");
    /* The delay fault is taken when the run's Advoware PUT arrives (count 1): while it is in
     * flight for 1.5 s, the person edits again. */
    bool ok = false;
    long long end = th_now_ms() + 20000;
    while (!ok && th_now_ms() < end) {
        json_t *faults = call(&g.advo, "GET", "/_sim/faults", NULL);
        ok = json_array_size(json_object_get(faults, "faults")) == 0;
        json_decref(faults);
        if (!ok)
            th_sleep_ms(5);
    }
    assert_true(ok);
    ui_update(id, "{\"titel\":\"Prof.\"}");
    json_t *e = wait_status(id, "clean", version + 2);
    json_t *a = advo_state(betnr);
    assert_string_equal(str(a, "vorname"), "Timo");
    assert_string_equal(str(a, "titel"), "Prof.");
    json_decref(a);
    json_decref(e);
    settle();
    long retries = 0;
    for (int i = 0; i < 2; i++)
        retries += (long)th_metric(g.w[i].metrics_port, "vmh_sync_retries_total", NULL);
    assert_true(retries > retries_before); /* the 409 started a run over */
}

/* Whether id is one of the entities of a state dump taken before (JSON array). */
static bool existed(const json_t *before, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(before, i, e)
    {
        if (strcmp(str(e, "id"), id) == 0)
            return true;
    }
    return false;
}

/* The seeded entities (those not in before) of a fresh state dump; *all_clean says whether
 * each of them is clean. New reference. */
static json_t *seeded(const json_t *before, bool *all_clean)
{
    json_t *all = call(&g.espo, "GET", "/_sim/state/CBeteiligte", NULL), *e;
    json_t *mine = json_array();
    size_t i;
    *all_clean = true;
    json_array_foreach(all, i, e)
    {
        if (existed(before, str(e, "id")))
            continue;
        json_array_append(mine, e);
        *all_clean &= strcmp(str(e, "syncStatus"), "clean") == 0;
    }
    json_decref(all);
    return mine;
}

/* 200 entities from EspoCRM's seed, synced by two workers: all clean, both sides equal. */
static void test_200_entities(void **state)
{
    (void)state;
    json_t *before = call(&g.espo, "GET", "/_sim/state/CBeteiligte", NULL);
    json_t *records = call(&g.advo, "GET", "/_sim/state/Beteiligte", NULL);
    long advo_before = (long)json_array_size(records);
    json_decref(records);
    json_decref(call(&g.espo, "POST", "/_sim/seed", "{\"count\":200}"));
    bool clean;
    json_t *mine = seeded(before, &clean), *e;
    size_t i;
    json_array_foreach(mine, i, e)
    {
        sync_check(str(e, "id"), "pending_sync"); /* what the fallback scan sends */
    }
    assert_int_equal(json_array_size(mine), 200);
    long long end = th_now_ms() + 120000;
    while (!clean && th_now_ms() < end) {
        json_decref(mine);
        th_sleep_ms(100); /* polling interval */
        mine = seeded(before, &clean);
    }
    assert_true(clean);
    json_array_foreach(mine, i, e)
    {
        json_t *a = advo_state(json_integer_value(json_object_get(e, "betnr")));
        assert_string_equal(str(a, "name"), str(e, "name"));
        assert_string_equal(str(a, "vorname"), str(e, "vorname"));
        assert_string_equal(str(a, "rechtsform"), str(e, "rechtsform"));
        assert_string_equal(str(a, "rowId"), str(e, "advowareRowId"));
        json_decref(a);
    }
    /* every entity exactly once in Advoware */
    records = call(&g.advo, "GET", "/_sim/state/Beteiligte", NULL);
    assert_int_equal((long)json_array_size(records) - advo_before, 200);
    json_decref(records);
    json_decref(mine);
    json_decref(before);
}

/* A worker killed between the Advoware POST and the EspoCRM PUT: the redelivered message finds
 * the link and finishes it; Advoware holds exactly one record. */
static void test_kill_between_post_and_put_creates_once(void **state)
{
    (void)state;
    char body[200], id[80];
    snprintf(body, sizeof body,
             "{\"method\":\"PUT\",\"route\":\"%s\",\"delay_ms\":30000,\"count\":1}", E_ONE);
    json_decref(call(&g.espo, "POST", "/_sim/faults", body));
    long posts = calls_of(&g.advo, "POST", A_ALL);
    ui_create("{\"name\":\"Einmalig\"}", id, sizeof id);
    bool ok;
    TH_WAIT(ok, calls_of(&g.advo, "POST", A_ALL) == posts + 1, 30000);
    assert_true(ok);
    /* the run now waits for EspoCRM's slow PUT: kill its worker */
    int victim = -1;
    TH_WAIT(ok,
            (victim = th_metric(g.w[0].metrics_port, "vmh_inflight", NULL) > 0   ? 0
                      : th_metric(g.w[1].metrics_port, "vmh_inflight", NULL) > 0 ? 1
                                                                                 : -1) >= 0,
            10000);
    assert_true(ok);
    assert_int_equal(th_proc_stop(&g.w[victim].proc, SIGKILL, 5000), 128 + SIGKILL);
    json_decref(call(&g.espo, "POST", "/_sim/faults", NULL)); /* clear the delay */
    assert_int_equal(start_worker(victim), 0);
    TH_WAIT(ok, th_worker_ready(&g.w[victim]), 60000);
    assert_true(ok);
    json_t *e = wait_status(id, "clean", 0);
    long long betnr = json_integer_value(json_object_get(e, "betnr"));
    assert_true(betnr > 0);
    json_decref(e);
    settle();
    assert_int_equal(calls_of(&g.advo, "POST", A_ALL), posts + 1); /* no duplicate */
    json_t *records = call(&g.advo, "GET", "/_sim/state/Beteiligte", NULL), *r;
    size_t i, named = 0;
    json_array_foreach(records, i, r)
    {
        named += strcmp(str(r, "name"), "Einmalig") == 0;
    }
    json_decref(records);
    assert_int_equal(named, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_update_espocrm_side),
        cmocka_unit_test(test_update_advoware_side),
        cmocka_unit_test(test_no_change),
        cmocka_unit_test(test_conflict_espocrm_wins),
        cmocka_unit_test(test_delete_notifies_with_betnr),
        cmocka_unit_test(test_validation_error_is_permanent),
        cmocka_unit_test(test_advoware_404_is_deleted_in_advoware),
        cmocka_unit_test(test_transient_failure_then_retry_scan),
        cmocka_unit_test(test_five_failures_then_auto_reset),
        cmocka_unit_test(test_edit_during_a_run_is_not_lost),
        cmocka_unit_test(test_kill_between_post_and_put_creates_once),
        cmocka_unit_test(test_200_entities),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
