/* test_producer_echo.c: vmh-producer drops the sync's own writes coming back as update webhooks
 * (SPEC §3.1) and takes both signature headers, end to end: the real binary, kafka-mock,
 * redis-server, and a stand-in EspoCRM on this test's thread that answers GET /api/v1/App/user
 * as the recorded 9.1.5 did (contracts/espocrm-9.1.5/01_app_user.json). It starts only later,
 * so the producer first runs without knowing the sync user.
 *
 * The webhooks posted are the deliveries a real EspoCRM 9.1.5 sent, byte for byte, with their
 * recorded Signature / X-Signature headers, read from the recording (07_webhooks.json
 * "deliveries"; the webhooks' secretKeys are the recording's throwaway values;
 * tests/support/recorded.h), plus hand-signed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "httpc.h"
#include "httpd_thread.h"
#include "log.h"
#include "recorded.h"
#include "wauth.h"

#define PARTITIONS 4
#define API_KEY    "echo-test-key"
#define SYNC_USER  "6b0f2ac93ac0e6b02" /* 01_app_user.json user.id ("sync", type api) */
#define UI_USER    "6b0f2ac9736e4ce24" /* 07_webhooks.json: "Ui Human" */

/* ---- the stand-in EspoCRM: GET /api/v1/App/user only ------------------------------------- */

struct espo_stub {
    struct httpd_thread *t;
    int port;
    int calls, bad_key; /* updated on the stub's thread */
};

static void on_app_user(struct httpd_req *req, void *ud)
{
    struct espo_stub *s = ud;
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
    const char *key = httpd_req_header(req, "X-Api-Key");
    if (!key || strcmp(key, API_KEY) != 0) { /* 01_app_user: 401, empty body */
        __atomic_add_fetch(&s->bad_key, 1, __ATOMIC_SEQ_CST);
        httpd_respond(req, 401, NULL, "", 0, NULL);
        return;
    }
    httpd_respond_json(req, 200,
                       json_pack("{s:{s:s,s:s,s:s,s:s,s:b},s:{s:{}},s:{}}", "user", "id", SYNC_USER,
                                 "name", "sync", "userName", "sync", "type", "api", "isActive", 1,
                                 "acl", "table", "preferences"));
}

static int stub_routes(struct httpd *srv, void *ud)
{
    return httpd_route(srv, "GET", "/api/v1/App/user", on_app_user, ud, 0);
}

static int stub_start(struct espo_stub *s)
{
    char addr[64], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port);
    for (int i = 0; i < 50 && !s->t; i++) { /* the port was free a moment ago */
        s->t = httpd_thread_start(addr, NULL, stub_routes, s, NULL, err, sizeof err);
        if (!s->t)
            th_sleep_ms(100);
    }
    if (!s->t)
        fprintf(stderr, "espo stub: %s\n", err);
    return s->t ? 0 : -1;
}

/* ---- fixture ------------------------------------------------------------------------------ */

struct fx {
    struct th_kafka kafka;
    struct th_redis redis;
    struct th_proc producer;
    struct espo_stub espo;
    int web_port, ops_port;
    /* The recorded deliveries (07_webhooks.json), their strings borrowed from `recorded`.
     * upd: B ui edits vorname, C sync writes vorname and status, E ui adds a phone, F sync
     * replaces the phone list, all for entity E1; del: E2 deleted by ui, E3 by sync; cre: only
     * its webhook's id and secretKey are used. */
    json_t *recorded;
    struct rec_delivery upd, del, cre;
};

static struct fx g;

static int start_producer(struct fx *f)
{
    char bin[512], brokers[600], redis[320], web[64], ops[64], espo[96], secrets[512];
    f->web_port = th_free_port();
    f->ops_port = th_free_port();
    f->espo.port = th_free_port(); /* nothing listens there yet */
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", f->kafka.bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->redis.url);
    snprintf(web, sizeof web, "WEBHOOK_LISTEN=127.0.0.1:%d", f->web_port);
    snprintf(ops, sizeof ops, "METRICS_LISTEN=127.0.0.1:%d", f->ops_port);
    snprintf(espo, sizeof espo, "ESPOCRM_URL=http://127.0.0.1:%d", f->espo.port);
    /* As an operator might write it: whitespace around the items (SPEC §3.1: ignored). */
    snprintf(secrets, sizeof secrets, "WEBHOOK_SECRETS= %s:%s ,\t%s:%s , %s:%s ", f->upd.webhook_id,
             f->upd.secret_key, f->cre.webhook_id, f->cre.secret_key, f->del.webhook_id,
             f->del.secret_key);
    const char *argv[] = {th_bin("vmh-producer", bin, sizeof bin), NULL};
    const char *env[] = {brokers,
                         redis,
                         web,
                         ops,
                         espo,
                         secrets,
                         "ESPOCRM_API_KEY=" API_KEY,
                         "WEBHOOK_ACK_TIMEOUT_MS=5000",
                         "CRON_INTERVAL_S=3600",
                         "CRON_RETRY_INTERVAL_S=3600",
                         "LOG_FORMAT=text",
                         "LOG_LEVEL=error",
                         NULL};
    if (th_proc_start(&f->producer, argv, env, false) != 0)
        return -1;
    return th_proc_healthy(&f->producer, f->ops_port, 10000);
}

static int setup(void **state)
{
    (void)state;
    g.recorded = rec_case("07_webhooks.json");
    g.upd = rec_delivery(g.recorded, "/hook/update");
    g.del = rec_delivery(g.recorded, "/hook/delete");
    g.cre = rec_delivery(g.recorded, "/hook/create");
    if (th_kafka_start(&g.kafka, PARTITIONS) != 0 || th_redis_start(&g.redis, NULL) != 0)
        return -1;
    return start_producer(&g);
}

static int teardown(void **state)
{
    (void)state;
    int code = th_proc_stop(&g.producer, SIGTERM, 20000);
    httpd_thread_stop(g.espo.t);
    th_redis_stop(&g.redis);
    th_kafka_stop(&g.kafka);
    json_decref(g.recorded);
    if (code != 0)
        fprintf(stderr, "vmh-producer exited %d\n", code);
    return code == 0 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* POSTs body to /webhook/beteiligte/<event> with the given signature headers (NULL = left out).
 * Returns the status; *accepted gets "accepted" of a 200 answer (-1 otherwise). */
static long post(const char *event, const char *body, const char *signature,
                 const char *x_signature, long *accepted)
{
    char url[128], h1[512], h2[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/webhook/beteiligte/%s", g.web_port, event);
    const char *headers[4] = {"Content-Type: application/json"};
    int n = 1;
    if (signature) {
        snprintf(h1, sizeof h1, "Signature: %s", signature);
        headers[n++] = h1;
    }
    if (x_signature) {
        snprintf(h2, sizeof h2, "X-Signature: %s", x_signature);
        headers[n++] = h2;
    }
    headers[n] = NULL;
    json_t *out = NULL;
    long status = th_http("POST", url, headers, body, &out);
    if (accepted) {
        json_t *a = json_object_get(out, "accepted");
        *accepted = status == 200 && json_is_integer(a) ? (long)json_integer_value(a) : -1;
    }
    json_decref(out);
    return status;
}

/* POSTs body signed by hand with the update webhook's secret, Signature header only. */
static long post_signed(const char *event, const char *body, long *accepted)
{
    char *sig = wauth_sign(WAUTH_SIGNATURE, g.upd.webhook_id, g.upd.secret_key, body, strlen(body));
    long status = post(event, body, sig, NULL, accepted);
    free(sig);
    return status;
}

static double echoes(void)
{
    return th_metric(g.ops_port, "vmh_webhook_echoes_dropped_total", NULL);
}

/* Every message vmh-producer had acknowledged by Kafka (a 200 answer comes only after that). */
static double produced(void)
{
    return th_metric(g.ops_port, "vmh_messages_produced_total", NULL);
}

static void unique(char *buf, size_t len, const char *what)
{
    static int counter;
    snprintf(buf, len, "%s-%d-%lld-%d", what, (int)getpid(), th_now_ms(), ++counter);
}

/* A record the sync user wrote: vorname + status (like the recorded C). */
static void sync_write(char *body, size_t len, const char *id)
{
    snprintf(body, len,
             "[{\"vorname\":\"Hans-Sync\",\"advowareLastSync\":\"2026-12-01 10:00:00\","
             "\"syncStatus\":\"clean\",\"modifiedById\":\"" SYNC_USER "\","
             "\"modifiedByName\":\"sync\",\"id\":\"%s\"}]",
             id);
}

/* ---- tests, in order: first without the sync user, then with it --------------------------- */

static void test_echo_counter_has_a_sample_from_the_start(void **state)
{
    (void)state;
    char url[96], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", g.ops_port);
    struct httpc *c = httpc_new(NULL);
    struct httpc_resp r;
    assert_int_equal(httpc_request(c, "GET", url, NULL, NULL, 0, &r, err, sizeof err), 0);
    assert_non_null(strstr(r.body, "\nvmh_webhook_echoes_dropped_total 0\n"));
    httpc_resp_clear(&r);
    httpc_free(c);
}

/* EspoCRM is not there yet: webhooks are taken in all the same; only records made of sync
 * fields alone can be told apart. */
static void test_before_the_sync_user_is_known(void **state)
{
    (void)state;
    double e0 = echoes(), p0 = produced();
    long accepted = -1;
    /* the recorded update delivery with its recorded Signature: every record carries a
     * person's field (vorname, phoneNumberData), so all stay: one message for E1 */
    assert_int_equal(post("update", g.upd.body, g.upd.signature, NULL, &accepted), 200);
    assert_int_equal(accepted, 1);
    assert_true(echoes() == e0);
    /* sync fields only (07c: an update of syncRetryCount alone): dropped */
    char id[80], body[512];
    unique(id, sizeof id, "retrycount");
    snprintf(body, sizeof body,
             "[{\"syncRetryCount\":1,\"modifiedById\":\"" SYNC_USER "\",\"modifiedByName\":"
             "\"sync\",\"id\":\"%s\"}]",
             id);
    assert_int_equal(post_signed("update", body, &accepted), 200);
    assert_int_equal(accepted, 0);
    assert_true(echoes() == e0 + 1);
    assert_true(produced() == p0 + 1); /* E1's message only */
    /* a sync write with a person's field cannot be told apart yet: it becomes a message */
    unique(id, sizeof id, "early");
    sync_write(body, sizeof body, id);
    assert_int_equal(post_signed("update", body, &accepted), 200);
    assert_int_equal(accepted, 1);
    struct th_msg m[2];
    assert_int_equal(
        th_kafka_read(g.kafka.bootstrap, "vmh.beteiligte.update", PARTITIONS, id, id, m, 2, 15000),
        1);
}

/* EspoCRM comes up: the producer, still retrying, learns the sync user; from then on the
 * recorded update delivery yields only the person's edits. */
static void test_sync_user_learned_then_its_writes_dropped(void **state)
{
    (void)state;
    assert_int_equal(stub_start(&g.espo), 0);
    /* the signal: a sync write is answered {"accepted":0} (each probe a new id) */
    char id[80], body[512];
    long accepted = -1;
    bool learned;
    TH_WAIT(learned,
            (unique(id, sizeof id, "probe"), sync_write(body, sizeof body, id),
             post_signed("update", body, &accepted) == 200 && accepted == 0),
            45000);
    assert_true(learned);
    assert_true(__atomic_load_n(&g.espo.calls, __ATOMIC_SEQ_CST) >= 1);
    assert_int_equal(__atomic_load_n(&g.espo.bad_key, __ATOMIC_SEQ_CST), 0);

    /* the recorded delivery: B and E (ui) stay, C and F (sync) are echoes: one message */
    double e0 = echoes(), p0 = produced();
    assert_int_equal(post("update", g.upd.body, g.upd.signature, NULL, &accepted), 200);
    assert_int_equal(accepted, 1);
    assert_true(echoes() == e0 + 2);
    assert_true(produced() == p0 + 1);
}

/* A request of echoes only: 200 {"accepted":0}, no Kafka message, the counter moves; the same
 * entity's next edit by a person is a message. */
static void test_echo_only_request_then_ui_edit(void **state)
{
    (void)state;
    char id[80], body[1024];
    unique(id, sizeof id, "echo");
    double e0 = echoes(), p0 = produced();
    long accepted = -1;
    /* by the sync user, and sync fields only without modifiedById, in one request */
    snprintf(body, sizeof body,
             "[{\"vorname\":\"Hans-Sync\",\"syncStatus\":\"clean\",\"modifiedById\":\"" SYNC_USER
             "\",\"modifiedByName\":\"sync\",\"id\":\"%s\"},"
             "{\"syncStatus\":\"clean\",\"advowareLastSync\":\"2026-12-01 10:00:00\","
             "\"kommunikationHash\":\"0123456789abcdef\",\"advowareSyncBaseline\":\"{}\","
             "\"id\":\"%s\"}]",
             id, id);
    assert_int_equal(post_signed("update", body, &accepted), 200);
    assert_int_equal(accepted, 0);
    assert_true(echoes() == e0 + 2);
    assert_true(produced() == p0);

    snprintf(body, sizeof body,
             "[{\"vorname\":\"Hans-UI\",\"syncStatus\":\"dirty\",\"modifiedById\":\"" UI_USER
             "\",\"modifiedByName\":\"Ui Human\",\"id\":\"%s\"}]",
             id);
    assert_int_equal(post_signed("update", body, &accepted), 200);
    assert_int_equal(accepted, 1);
    assert_true(echoes() == e0 + 2);
    assert_true(produced() == p0 + 1);
    struct th_msg m[2];
    assert_int_equal(
        th_kafka_read(g.kafka.bootstrap, "vmh.beteiligte.update", PARTITIONS, id, id, m, 2, 15000),
        1);
}

/* Create and delete records are never dropped, whoever made them. */
static void test_create_and_delete_never_dropped(void **state)
{
    (void)state;
    char id[80], body[512], *sig;
    unique(id, sizeof id, "created-by-sync");
    snprintf(body, sizeof body,
             "[{\"id\":\"%s\",\"name\":\"Sync-Created GmbH\",\"syncStatus\":\"pending_sync\","
             "\"createdById\":\"" SYNC_USER "\",\"modifiedById\":\"" SYNC_USER
             "\",\"versionNumber\":1}]",
             id);
    double e0 = echoes();
    long accepted = -1;
    sig = wauth_sign(WAUTH_SIGNATURE, g.cre.webhook_id, g.cre.secret_key, body, strlen(body));
    assert_int_equal(post("create", body, sig, NULL, &accepted), 200);
    free(sig);
    assert_int_equal(accepted, 1);
    /* the recorded delete delivery (E3 was deleted by the sync user) */
    assert_int_equal(post("delete", g.del.body, g.del.signature, NULL, &accepted), 200);
    assert_int_equal(accepted, 2);
    assert_true(echoes() == e0);
    struct th_msg m[2];
    assert_int_equal(
        th_kafka_read(g.kafka.bootstrap, "vmh.beteiligte.create", PARTITIONS, id, id, m, 2, 15000),
        1);
}

/* X-Signature alone still works; with both, Signature is the one checked. */
static void test_signature_headers(void **state)
{
    (void)state;
    long accepted = -1;
    double e0 = echoes();
    assert_int_equal(post("update", g.upd.body, NULL, g.upd.x_signature, &accepted), 200);
    assert_int_equal(accepted, 1);
    assert_true(echoes() == e0 + 2);
    assert_int_equal(post("update", g.upd.body, g.upd.signature, g.upd.x_signature, &accepted),
                     200);
    /* a wrong Signature is not rescued by a right X-Signature */
    assert_int_equal(post("update", g.upd.body, g.del.signature, g.upd.x_signature, NULL), 401);
    /* and an echo-only request with a wrong signature is a 401, not a silent drop */
    char body[512];
    sync_write(body, sizeof body, "never");
    char *wrong = wauth_sign(WAUTH_SIGNATURE, g.upd.webhook_id, "not-the-key", body, strlen(body));
    assert_int_equal(post("update", body, wrong, NULL, NULL), 401);
    free(wrong);
    assert_int_equal(post("update", body, NULL, NULL, NULL), 401);
}

int main(void)
{
    log_setup(LOG_WARN, LOG_TEXT, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_counter_has_a_sample_from_the_start),
        cmocka_unit_test(test_before_the_sync_user_is_known),
        cmocka_unit_test(test_sync_user_learned_then_its_writes_dropped),
        cmocka_unit_test(test_echo_only_request_then_ui_edit),
        cmocka_unit_test(test_create_and_delete_never_dropped),
        cmocka_unit_test(test_signature_headers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
