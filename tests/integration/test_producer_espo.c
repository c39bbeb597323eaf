/* test_producer_espo.c: vmh-producer against espocrm-sim (SPEC §3.1, §3.2): the simulator
 * delivers its own signed webhooks (and retries them while Kafka is down: no webhook lost), the
 * sync user's own writes come back and are dropped, and the cron selects entities by status in
 * priority order, capped, skipping locked ones, with one scan per tick across two replicas,
 * paging with offset when a batch is over EspoCRM's 200 rows per call. Real kafka-mock,
 * redis-server, espocrm-sim, vmh-producer; the simulator answers as the recorded EspoCRM 9.1.5
 * (contracts/espocrm-9.1.5/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "httpc.h"
#include "kafka.h"
#include "log.h"

#define PARTITIONS 4
#define ESPO_KEY   "X-Api-Key: dev-espocrm-key"

struct fx {
    struct th_kafka kafka;
    struct th_redis redis;
    struct th_sim espo;
};

static struct fx g;

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--webhook-retry-ms", "1500", NULL};
    if (th_kafka_start_admin(&g.kafka, PARTITIONS) != 0 || th_redis_start(&g.redis, NULL) != 0 ||
        th_sim_start(&g.espo, "espocrm-sim", args) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = th_sim_stop(&g.espo);
    th_redis_stop(&g.redis);
    th_kafka_stop(&g.kafka);
    return rc == 0 ? 0 : -1;
}

static int reset_sim(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "%s/_sim/reset", g.espo.url);
    return th_http("POST", url, NULL, NULL, NULL) == 200 ? 0 : -1;
}

/* Starts a producer; extra: NULL-terminated "NAME=value" entries. Fills *web and *ops ports. */
static int producer_start(struct th_proc *p, int web, int ops, const char *const *extra)
{
    char bin[512], brokers[600], redis[320], weblisten[64], opslisten[64], espo[96];
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", g.kafka.bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", g.redis.url);
    snprintf(weblisten, sizeof weblisten, "WEBHOOK_LISTEN=127.0.0.1:%d", web);
    snprintf(opslisten, sizeof opslisten, "METRICS_LISTEN=127.0.0.1:%d", ops);
    snprintf(espo, sizeof espo, "ESPOCRM_URL=%s", g.espo.url);
    const char *env[32] = {brokers, redis, weblisten, opslisten, espo,
                           "ESPOCRM_API_KEY=dev-espocrm-key", "WEBHOOK_ACK_TIMEOUT_MS=1000",
                           /* reconnect fast once the brokers are back */
                           "KAFKA_CFG_RECONNECT_BACKOFF_MAX_MS=300", "LOG_FORMAT=text",
                           "LOG_LEVEL=warn"};
    int n = 10;
    for (; extra && *extra && n < 31; extra++)
        env[n++] = *extra;
    env[n] = NULL;
    const char *argv[] = {th_bin("vmh-producer", bin, sizeof bin), NULL};
    if (th_proc_start(p, argv, env, false) != 0)
        return -1;
    return th_proc_healthy(p, ops, 10000);
}

static double metric(int ops_port, const char *name, const char *labels)
{
    return th_metric(ops_port, name, labels);
}

/* A message read back, with the cron reason of its value. */
struct got {
    char key[80];
    char reason[32];
};

/* Every message of a topic, until `want`, stop_key (if not NULL) or timeout_ms. */
static int consume_until(const char *topic, const char *stop_key, struct got *out, int want,
                         long long timeout_ms)
{
    struct th_msg *m = calloc((size_t)want, sizeof *m);
    int n =
        th_kafka_read(g.kafka.bootstrap, topic, PARTITIONS, NULL, stop_key, m, want, timeout_ms);
    for (int i = 0; i < n; i++) {
        json_t *v = json_loads(m[i].value, 0, NULL);
        const char *reason = json_string_value(json_object_get(v, "reason"));
        snprintf(out[i].key, sizeof out[i].key, "%s", m[i].key);
        snprintf(out[i].reason, sizeof out[i].reason, "%s", reason ? reason : "");
        json_decref(v);
    }
    free(m);
    return n;
}

static int consume(const char *topic, struct got *out, int want, long long timeout_ms)
{
    return consume_until(topic, NULL, out, want, timeout_ms);
}

static bool has_key(const struct got *m, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m[i].key, key) == 0)
            return true;
    return false;
}

/* Registers a webhook for event at the producer's port; secret into "id:secret". skipOwn is
 * asked for as vmhctl does; EspoCRM 9.1.5 ignores it (recorded 07), so own writes come back. */
static void register_webhook(const char *event, int port, char *pair, size_t len)
{
    char url[128], body[256];
    snprintf(url, sizeof url, "%s/api/v1/Webhook", g.espo.url);
    snprintf(body, sizeof body,
             "{\"event\":\"CBeteiligte.%s\",\"url\":\"http://127.0.0.1:%d/webhook/beteiligte/%s\","
             "\"skipOwn\":true}",
             event, port, event);
    const char *headers[] = {ESPO_KEY, NULL};
    json_t *out = NULL;
    long status = th_http("POST", url, headers, body, &out);
    if (status != 201 && status != 200) /* 201 recorded (07); 200 from older simulators */
        fail_msg("webhook registration answered %ld", status);
    snprintf(pair, len, "%s:%s", json_string_value(json_object_get(out, "id")),
             json_string_value(json_object_get(out, "secretKey")));
    json_decref(out);
}

/* Creates an entity as a UI user; its id into buf. */
static void ui_create(const char *name, char *id, size_t len)
{
    char url[128], body[128];
    snprintf(url, sizeof url, "%s/_sim/ui/CBeteiligte", g.espo.url);
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    json_t *out = NULL;
    assert_int_equal(th_http("POST", url, NULL, body, &out), 200);
    snprintf(id, len, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
}

static void test_sim_webhooks_reach_kafka_and_survive_an_outage(void **state)
{
    (void)state;
    int web = th_free_port(), ops = th_free_port();
    char create[128], update[128], secrets[512];
    register_webhook("create", web, create, sizeof create);
    register_webhook("update", web, update, sizeof update);
    snprintf(secrets, sizeof secrets, "WEBHOOK_SECRETS=%s,%s", create, update);
    const char *extra[] = {secrets, NULL};
    struct th_proc p;
    assert_int_equal(producer_start(&p, web, ops, extra), 0);

    /* a UI create: espocrm-sim signs and delivers it; it lands on the create topic */
    char id[64];
    ui_create("Webhook Weg", id, sizeof id);
    struct got m[16];
    int n = consume_until("vmh.beteiligte.create", id, m, 16, 15000);
    assert_true(has_key(m, n, id));

    /* Kafka down: the producer answers 503, the simulator retries, nothing is lost */
    assert_int_equal(th_kafka_brokers(&g.kafka, false), 0);
    char url[160];
    snprintf(url, sizeof url, "%s/_sim/ui/CBeteiligte/%s", g.espo.url, id);
    assert_int_equal(th_http("PUT", url, NULL, "{\"vorname\":\"Erika\"}", NULL), 200);
    bool refused;
    TH_WAIT(refused, metric(ops, "vmh_webhook_requests_total", "code=\"503\"") >= 1, 15000);
    assert_true(refused);
    assert_int_equal(th_kafka_brokers(&g.kafka, true), 0);
    bool delivered;
    TH_WAIT(delivered, metric(ops, "vmh_webhook_requests_total", "code=\"200\"") >= 2, 20000);
    assert_true(delivered);
    n = consume_until("vmh.beteiligte.update", id, m, 16, 15000);
    assert_true(has_key(m, n, id));
    assert_int_equal(th_proc_stop(&p, SIGTERM, 20000), 0);
}

/* The sync user's own writes come back as update webhooks (skipOwn is ignored before 9.2): the
 * producer, which asked App/user who the sync user is, drops them; a person's edit is a
 * message. */
static void test_own_writes_dropped_person_edits_sent(void **state)
{
    (void)state;
    int web = th_free_port(), ops = th_free_port();
    char create[128], update[128], secrets[512];
    register_webhook("create", web, create, sizeof create);
    register_webhook("update", web, update, sizeof update);
    /* whitespace around the items, as an operator might write it */
    snprintf(secrets, sizeof secrets, "WEBHOOK_SECRETS= %s ,\n %s ", create, update);
    const char *extra[] = {secrets, NULL};
    struct th_proc p;
    assert_int_equal(producer_start(&p, web, ops, extra), 0);
    assert_true(metric(ops, "vmh_webhook_echoes_dropped_total", NULL) == 0);
    /* the producer has learned the sync user once the simulator answered App/user */
    bool asked;
    TH_WAIT(asked, th_sim_calls(&g.espo, "GET", "/api/v1/App/user", 200) >= 1, 15000);
    assert_true(asked);

    char id[64];
    ui_create("Echo GmbH", id, sizeof id);
    struct got m[16];
    assert_true(has_key(m, consume_until("vmh.beteiligte.create", id, m, 16, 15000), id));

    /* the sync writes a synced field and the status, as a run does */
    char url[160];
    snprintf(url, sizeof url, "%s/api/v1/CBeteiligte/%s", g.espo.url, id);
    const char *headers[] = {ESPO_KEY, NULL};
    assert_int_equal(
        th_http("PUT", url, headers, "{\"vorname\":\"Sync\",\"syncStatus\":\"clean\"}", NULL), 200);
    bool dropped;
    TH_WAIT(dropped, metric(ops, "vmh_webhook_echoes_dropped_total", NULL) >= 1, 20000);
    assert_true(dropped);
    assert_true(metric(ops, "vmh_messages_produced_total", "vmh.beteiligte.update") == 0);

    /* a person edits: a message */
    snprintf(url, sizeof url, "%s/_sim/ui/CBeteiligte/%s", g.espo.url, id);
    assert_int_equal(th_http("PUT", url, NULL, "{\"vorname\":\"Erika\"}", NULL), 200);
    assert_true(has_key(m, consume_until("vmh.beteiligte.update", id, m, 16, 15000), id));
    assert_true(metric(ops, "vmh_messages_produced_total", "vmh.beteiligte.update") == 1);
    assert_true(metric(ops, "vmh_webhook_requests_total", "code=\"401\"") == 0);
    assert_int_equal(th_proc_stop(&p, SIGTERM, 20000), 0);
}

/* Creates an entity through the API as the sync user with the given sync fields. */
static void api_create(const char *fields, char *id, size_t len)
{
    char url[128], body[512];
    snprintf(url, sizeof url, "%s/api/v1/CBeteiligte", g.espo.url);
    snprintf(body, sizeof body, "{\"name\":\"Cron\",%s}", fields);
    const char *headers[] = {ESPO_KEY, NULL};
    json_t *out = NULL;
    long status = th_http("POST", url, headers, body, &out);
    if (status != 200 && status != 201)
        fail_msg("create %s: %ld", fields, status);
    snprintf(id, len, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
    /* EspoCRM's formula makes every new record pending_sync whatever the create sent (recorded
     * 02): the sync user's PUT sets the state the test wants (no dirty: it is the sync user). */
    snprintf(url, sizeof url, "%s/api/v1/CBeteiligte/%s", g.espo.url, id);
    snprintf(body, sizeof body, "{%s}", fields);
    status = th_http("PUT", url, headers, body, &out);
    json_decref(out);
    if (status != 200)
        fail_msg("put %s: %ld", fields, status);
}

static void espo_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void test_cron_priority_cap_and_locks(void **state)
{
    (void)state;
    char past[32], future[32], old[32], fresh[32], f[256];
    time_t now = time(NULL);
    espo_time(now - 600, past, sizeof past);
    espo_time(now + 3600, future, sizeof future);
    espo_time(now - 2 * 86400, old, sizeof old);
    espo_time(now - 600, fresh, sizeof fresh);
    char pending[2][64], dirty[2][64], failed_due[64], failed_later[64], reset_due[64],
        reset_later[64], stale[64], clean_fresh[64], gone[64];
    for (int i = 0; i < 2; i++) {
        api_create("\"syncStatus\":\"pending_sync\"", pending[i], 64);
        api_create("\"syncStatus\":\"dirty\"", dirty[i], 64);
    }
    snprintf(f, sizeof f, "\"syncStatus\":\"failed\",\"syncNextRetry\":\"%s\"", past);
    api_create(f, failed_due, 64);
    snprintf(f, sizeof f, "\"syncStatus\":\"failed\",\"syncNextRetry\":\"%s\"", future);
    api_create(f, failed_later, 64);
    snprintf(f, sizeof f, "\"syncStatus\":\"permanently_failed\",\"syncAutoResetAt\":\"%s\"", past);
    api_create(f, reset_due, 64);
    snprintf(f, sizeof f, "\"syncStatus\":\"permanently_failed\",\"syncAutoResetAt\":\"%s\"",
             future);
    api_create(f, reset_later, 64);
    snprintf(f, sizeof f, "\"syncStatus\":\"clean\",\"advowareLastSync\":\"%s\"", old);
    api_create(f, stale, 64);
    snprintf(f, sizeof f, "\"syncStatus\":\"clean\",\"advowareLastSync\":\"%s\"", fresh);
    api_create(f, clean_fresh, 64);
    api_create("\"syncStatus\":\"deleted_in_advoware\"", gone, 64);

    /* dirty[1] is being synced right now: its lock is held */
    char lockcmd[160];
    snprintf(lockcmd, sizeof lockcmd, "sync_lock:cbeteiligte:%s", dirty[1]);
    char port[16];
    snprintf(port, sizeof port, "%d", g.redis.port);
    const char *argv[] = {"/usr/bin/redis-cli", "-p", port, "SET", lockcmd, "other-worker", NULL};
    char out[256];
    assert_int_equal(th_run(argv, NULL, out, sizeof out, 5000), 0);

    /* batch 5: pending ×2, dirty ×1 (the other locked), failed due, auto_reset — stale_clean
     * and everything not due stay out */
    int web = th_free_port(), ops = th_free_port();
    const char *extra[] = {"WEBHOOK_ALLOW_UNSIGNED=1", "CRON_INTERVAL_S=2s",
                           "CRON_RETRY_INTERVAL_S=1h", "CRON_BATCH=5", NULL};
    struct th_proc p;
    assert_int_equal(producer_start(&p, web, ops, extra), 0);
    /* two ticks and no worker: the second finds the first five still in flight (SPEC §3.2:
     * vmh:queued marks) and takes the next in line, the stale one; nothing twice */
    bool ticked;
    TH_WAIT(ticked, metric(ops, "vmh_cron_ticks_total", "result=\"ok\"") >= 2, 15000);
    assert_true(ticked);
    assert_int_equal(th_proc_stop(&p, SIGTERM, 20000), 0);

    struct got m[64];
    int n = consume("vmh.beteiligte.sync_check", m, 64, 5000);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (strcmp(m[a].key, m[b].key) == 0)
                fail_msg("%s sent twice while its first message was in flight", m[a].key);
    struct {
        const char *id, *reason;
        bool want;
    } expect[] = {
        {pending[0], "pending_sync", true},  {pending[1], "pending_sync", true},
        {dirty[0], "dirty", true},           {dirty[1], "dirty", false},
        {failed_due, "failed", true},        {failed_later, "failed", false},
        {reset_due, "auto_reset", true},     {reset_later, "auto_reset", false},
        {stale, "stale_clean", true}, /* the second tick's */
        {clean_fresh, "stale_clean", false}, {gone, "", false},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        bool found = false;
        for (int j = 0; j < n; j++) {
            if (strcmp(m[j].key, expect[i].id) == 0) {
                found = true;
                assert_string_equal(m[j].reason, expect[i].reason);
            }
        }
        if (found != expect[i].want)
            fail_msg("entity %zu (%s): selected %d, expected %d", i, expect[i].reason, found,
                     expect[i].want);
    }
}

static void test_retry_scan_selects_due_failures_only(void **state)
{
    (void)state;
    char past[32], future[32], f[256], due[64], later[64], dirty[64];
    time_t now = time(NULL);
    espo_time(now - 60, past, sizeof past);
    espo_time(now + 3600, future, sizeof future);
    snprintf(f, sizeof f, "\"syncStatus\":\"failed\",\"syncNextRetry\":\"%s\"", past);
    api_create(f, due, sizeof due);
    snprintf(f, sizeof f, "\"syncStatus\":\"failed\",\"syncNextRetry\":\"%s\"", future);
    api_create(f, later, sizeof later);
    api_create("\"syncStatus\":\"dirty\"", dirty, sizeof dirty);
    const char *extra[] = {"WEBHOOK_ALLOW_UNSIGNED=1", "CRON_INTERVAL_S=1h",
                           "CRON_RETRY_INTERVAL_S=1s", NULL};
    int ops = th_free_port();
    struct th_proc p;
    assert_int_equal(producer_start(&p, th_free_port(), ops, extra), 0);
    bool ticked;
    TH_WAIT(ticked, metric(ops, "vmh_cron_ticks_total", "scan=\"retry\",result=\"ok\"") >= 1,
            15000);
    assert_true(ticked);
    assert_int_equal(th_proc_stop(&p, SIGTERM, 20000), 0);
    struct got m[64];
    int n = consume("vmh.beteiligte.sync_check", m, 64, 3000);
    bool found_due = false;
    for (int i = 0; i < n; i++) {
        if (strcmp(m[i].key, due) == 0) {
            found_due = true;
            assert_string_equal(m[i].reason, "failed");
        }
        assert_string_not_equal(m[i].key, later);
        assert_string_not_equal(m[i].key, dirty);
    }
    assert_true(found_due);
}

static void test_two_producers_one_scan_per_tick(void **state)
{
    (void)state;
    const char *extra[] = {"WEBHOOK_ALLOW_UNSIGNED=1", "CRON_INTERVAL_S=1s",
                           "CRON_RETRY_INTERVAL_S=1h", NULL};
    struct th_proc a, b;
    int ops_a = th_free_port(), ops_b = th_free_port();
    assert_int_equal(producer_start(&a, th_free_port(), ops_a, extra), 0);
    assert_int_equal(producer_start(&b, th_free_port(), ops_b, extra), 0);
    bool enough;
    TH_WAIT(enough,
            metric(ops_a, "vmh_cron_ticks_total", "scan=\"fallback\"") >= 4 &&
                metric(ops_b, "vmh_cron_ticks_total", "scan=\"fallback\"") >= 4,
            20000);
    assert_true(enough);
    double ok_a = metric(ops_a, "vmh_cron_ticks_total", "result=\"ok\"");
    double ok_b = metric(ops_b, "vmh_cron_ticks_total", "result=\"ok\"");
    double ticks_a = metric(ops_a, "vmh_cron_ticks_total", "scan=\"fallback\"");
    double ticks_b = metric(ops_b, "vmh_cron_ticks_total", "scan=\"fallback\"");
    double follower = metric(ops_a, "vmh_cron_ticks_total", "not_leader") +
                      metric(ops_b, "vmh_cron_ticks_total", "not_leader");
    assert_int_equal(th_proc_stop(&a, SIGTERM, 20000), 0);
    assert_int_equal(th_proc_stop(&b, SIGTERM, 20000), 0);
    /* one scan per tick: together they scanned about as often as one of them ticked */
    if (ok_a + ok_b > (ticks_a > ticks_b ? ticks_a : ticks_b) + 1)
        fail_msg("scans %g + %g for %g/%g ticks", ok_a, ok_b, ticks_a, ticks_b);
    assert_true(follower >= 3);
}

/* CRON_BATCH 250 is more than EspoCRM lists in one call (maxSize over 200 is a 403, recorded
 * 05): the scan pages with offset and selects all 250. */
static void test_batch_over_200_pages_with_offset(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "%s/_sim/seed", g.espo.url);
    assert_int_equal(th_http("POST", url, NULL, "{\"count\":250}", NULL), 200);
    const char *extra[] = {"WEBHOOK_ALLOW_UNSIGNED=1", "CRON_INTERVAL_S=2s",
                           "CRON_RETRY_INTERVAL_S=1h", "CRON_BATCH=250", NULL};
    struct th_proc p;
    int ops = th_free_port();
    assert_int_equal(producer_start(&p, th_free_port(), ops, extra), 0);
    bool ticked;
    TH_WAIT(ticked, metric(ops, "vmh_cron_ticks_total", "scan=\"fallback\",result=\"ok\"") >= 1,
            15000);
    assert_true(ticked);
    /* counted per tick, after it: whole ticks of 250 (a second tick may have run) */
    double selected = metric(ops, "vmh_cron_selected_total", "pending_sync");
    assert_int_equal(th_proc_stop(&p, SIGTERM, 20000), 0);
    if (selected < 250 || (long)selected % 250 != 0)
        fail_msg("selected %g pending_sync entities, want whole ticks of 250", selected);
    assert_int_equal(th_sim_calls(&g.espo, "GET", "/api/v1/CBeteiligte", 403), 0);
    assert_int_equal(th_sim_calls(&g.espo, "GET", "/api/v1/CBeteiligte", 400), 0);
    assert_true(th_sim_calls(&g.espo, "GET", "/api/v1/CBeteiligte", 200) >= 2); /* 200 + 50 */
}

/* Both scans due every second: they share one EspoCRM client and one Redis connection, so they
 * must take turns (they once ran at the same time and crashed the producer). */
static void test_both_scans_every_second_take_turns(void **state)
{
    (void)state;
    const char *extra[] = {"WEBHOOK_ALLOW_UNSIGNED=1", "CRON_INTERVAL_S=1s",
                           "CRON_RETRY_INTERVAL_S=1s", NULL};
    char url[128];
    snprintf(url, sizeof url, "%s/_sim/seed", g.espo.url);
    assert_int_equal(th_http("POST", url, NULL, "{\"count\":50}", NULL), 200);
    struct th_proc p;
    int ops = th_free_port();
    assert_int_equal(producer_start(&p, th_free_port(), ops, extra), 0);
    bool enough;
    TH_WAIT(enough,
            metric(ops, "vmh_cron_ticks_total", "scan=\"fallback\",result=\"ok\"") >= 5 &&
                metric(ops, "vmh_cron_ticks_total", "scan=\"retry\",result=\"ok\"") >= 5,
            30000);
    assert_true(enough);
    assert_true(metric(ops, "vmh_cron_ticks_total", "result=\"failed\"") == 0);
    assert_true(th_proc_alive(&p));
    assert_int_equal(th_proc_stop(&p, SIGTERM, 20000), 0);
}

int main(void)
{
    log_setup(LOG_WARN, LOG_TEXT, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sim_webhooks_reach_kafka_and_survive_an_outage, reset_sim),
        cmocka_unit_test_setup(test_own_writes_dropped_person_edits_sent, reset_sim),
        cmocka_unit_test_setup(test_cron_priority_cap_and_locks, reset_sim),
        cmocka_unit_test_setup(test_retry_scan_selects_due_failures_only, reset_sim),
        cmocka_unit_test_setup(test_two_producers_one_scan_per_tick, reset_sim),
        cmocka_unit_test_setup(test_batch_over_200_pages_with_offset, reset_sim),
        cmocka_unit_test_setup(test_both_scans_every_second_take_turns, reset_sim),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
