/* test_producer.c: vmh-producer's webhook ingress end to end (SPEC §3.1, §2): a real kafka-mock
 * (with its fault interface), a real redis-server, the real binary; messages read back with a
 * librdkafka consumer. Cron and EspoCRM-delivered webhooks: test_producer_espo.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "httpc.h"
#include "kafka.h"
#include "log.h"
#include "wauth.h"

#define PARTITIONS 4
/* whitespace around the items is ignored (SPEC §3.1) */
#define SECRET_ENV "WEBHOOK_SECRETS= wh1:s3cret ,\twh2:other "

struct fx {
    struct th_kafka kafka;
    struct th_redis redis;
    struct th_proc producer;
    int web_port, ops_port;
};

static struct fx g;

static int start_producer(struct fx *f)
{
    char bin[512], brokers[600], redis[320], web[64], ops[64];
    f->web_port = th_free_port();
    f->ops_port = th_free_port();
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", f->kafka.bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", f->redis.url);
    snprintf(web, sizeof web, "WEBHOOK_LISTEN=127.0.0.1:%d", f->web_port);
    snprintf(ops, sizeof ops, "METRICS_LISTEN=127.0.0.1:%d", f->ops_port);
    const char *argv[] = {th_bin("vmh-producer", bin, sizeof bin), NULL};
    const char *env[] = {brokers,
                         redis,
                         web,
                         ops,
                         SECRET_ENV,
                         "ESPOCRM_URL=http://127.0.0.1:1",
                         "ESPOCRM_API_KEY=k",
                         "WEBHOOK_ACK_TIMEOUT_MS=1500",
                         "KAFKA_CFG_RECONNECT_BACKOFF_MAX_MS=300", /* heal fast after outages */
                         "WEBHOOK_MAX_BODY=1048576",
                         "CRON_INTERVAL_S=3600",
                         "CRON_RETRY_INTERVAL_S=1s", /* EspoCRM is unreachable: every tick fails */
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
    if (th_kafka_start_admin(&g.kafka, PARTITIONS) != 0 || th_redis_start(&g.redis, NULL) != 0)
        return -1;
    return start_producer(&g);
}

static int teardown(void **state)
{
    (void)state;
    int code = th_proc_stop(&g.producer, SIGTERM, 20000);
    th_redis_stop(&g.redis);
    th_kafka_stop(&g.kafka);
    if (code != 0)
        fprintf(stderr, "vmh-producer exited %d\n", code);
    return code == 0 ? 0 : -1;
}

/* POSTs body to /webhook/beteiligte/<event> with the signature header `h` (NULL: none) holding
 * sig, or wh1's right signature when sig is NULL. */
static long post_with(const char *event, const char *body, enum wauth_header *h, const char *sig,
                      json_t **out)
{
    char url[128], hdr[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/webhook/beteiligte/%s", g.web_port, event);
    char *own = h && !sig ? wauth_sign(*h, "wh1", "s3cret", body, strlen(body)) : NULL;
    if (h)
        snprintf(hdr, sizeof hdr, "%s: %s", wauth_header_name(*h), sig ? sig : own);
    const char *headers[] = {"Content-Type: application/json", h ? hdr : NULL, NULL};
    long status = th_http("POST", url, headers, body, out);
    free(own);
    return status;
}

/* POSTs body with a Signature header: wh1's unless sig is given ("" = no header at all). */
static long post(const char *event, const char *body, const char *sig, json_t **out)
{
    enum wauth_header h = WAUTH_SIGNATURE;
    return post_with(event, body, sig && !*sig ? NULL : &h, sig, out);
}

static double metric(const char *name, const char *labels)
{
    return th_metric(g.ops_port, name, labels);
}

static long produced(void)
{
    return (long)metric("vmh_messages_produced_total", NULL);
}

/* Messages of `topic` whose key starts with key_prefix (see th_kafka_read). */
static int consume(const char *topic, const char *key_prefix, struct th_msg *out, int want,
                   long long timeout_ms)
{
    return th_kafka_read(g.kafka.bootstrap, topic, PARTITIONS, key_prefix, NULL, out, want,
                         timeout_ms);
}

/* A key unique to this run and call. */
static void unique(char *buf, size_t len, const char *what)
{
    static int counter;
    snprintf(buf, len, "%s-%d-%lld-%d", what, (int)getpid(), th_now_ms(), ++counter);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_signed_webhook_becomes_message(void **state)
{
    (void)state;
    char id[64], body[256];
    unique(id, sizeof id, "one");
    snprintf(body, sizeof body, "[{\"id\":\"%s\",\"name\":\"Mustermann\"}]", id);
    json_t *out = NULL;
    assert_int_equal(post("update", body, NULL, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "accepted")), 1);
    json_decref(out);
    struct th_msg m[2];
    assert_int_equal(consume("vmh.beteiligte.update", id, m, 1, 15000), 1);
    json_t *v = json_loads(m[0].value, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(v, "v")), 1);
    assert_string_equal(json_string_value(json_object_get(v, "entityId")), id);
    assert_string_equal(json_string_value(json_object_get(v, "event")), "update");
    assert_string_equal(json_string_value(json_object_get(v, "source")), "webhook");
    assert_non_null(json_string_value(json_object_get(v, "emittedAt")));
    json_decref(v);
}

static void test_bad_signatures_401_nothing_produced(void **state)
{
    (void)state;
    long before = produced();
    const char *body = "[{\"id\":\"never\"}]";
    char *wrong = wauth_sign(WAUTH_SIGNATURE, "wh1", "not-the-secret", body, strlen(body));
    char *unknown = wauth_sign(WAUTH_SIGNATURE, "wh9", "s3cret", body, strlen(body));
    assert_int_equal(post("create", body, wrong, NULL), 401);
    assert_int_equal(post("create", body, unknown, NULL), 401);
    assert_int_equal(post("create", body, "", NULL), 401);
    assert_int_equal(post("create", body, "bm90LWEtc2lnbmF0dXJl", NULL), 401);
    free(wrong);
    free(unknown);
    /* the second secret of WEBHOOK_SECRETS works too */
    char *other = wauth_sign(WAUTH_SIGNATURE, "wh2", "other", "[]", 2);
    assert_int_equal(post("create", "[]", other, NULL), 200);
    free(other);
    assert_int_equal(produced(), before);
}

/* EspoCRM before 9.0 (and 9.x's deprecated header) signs with X-Signature only: still taken. A
 * wrong X-Signature is a 401 like a wrong Signature. */
static void test_x_signature_only_still_works(void **state)
{
    (void)state;
    char id[64], body[256];
    unique(id, sizeof id, "xsig");
    snprintf(body, sizeof body, "[{\"id\":\"%s\",\"name\":\"Mustermann\"}]", id);
    enum wauth_header x = WAUTH_X_SIGNATURE;
    json_t *out = NULL;
    assert_int_equal(post_with("update", body, &x, NULL, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "accepted")), 1);
    json_decref(out);
    struct th_msg m[2];
    assert_int_equal(consume("vmh.beteiligte.update", id, m, 1, 15000), 1);
    long before = produced();
    char *wrong = wauth_sign(WAUTH_X_SIGNATURE, "wh1", "not-the-secret", body, strlen(body));
    assert_int_equal(post_with("update", body, &x, wrong, NULL), 401);
    free(wrong);
    /* the second secret of WEBHOOK_SECRETS, read without the whitespace around it */
    char *other = wauth_sign(WAUTH_X_SIGNATURE, "wh2", "other", "[]", 2);
    assert_int_equal(post_with("update", "[]", &x, other, NULL), 200);
    free(other);
    assert_int_equal(produced(), before);
}

static void test_malformed_bodies_400_nothing_produced(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "not json",
        "{\"id\":\"x\"}",
        "[{\"id\":\"ok\"},{\"name\":\"no id\"}]",
        "[{\"id\":42}]",
        "[\"x\"]",
        "[{\"id\":\"\"}]",
        "",
    };
    long before = produced();
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *out = NULL;
        long status = post("update", bodies[i], NULL, &out);
        if (status != 400)
            fail_msg("body %s: status %ld", bodies[i], status);
        assert_non_null(json_string_value(json_object_get(out, "error")));
        json_decref(out);
    }
    assert_int_equal(produced(), before);
}

static void test_http_errors(void **state)
{
    (void)state;
    size_t big = 2u << 20;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    memcpy(body, "[{\"id\":\"big\"}", 13);
    body[big - 1] = ']';
    body[big] = '\0';
    assert_int_equal(post("update", body, NULL, NULL), 413);
    free(body);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/webhook/beteiligte/merge", g.web_port);
    assert_int_equal(th_http("POST", url, NULL, "[]", NULL), 404);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/webhook/beteiligte/update", g.web_port);
    assert_int_equal(th_http("GET", url, NULL, NULL, NULL), 405);
}

static void test_duplicates_and_a_batch_of_50(void **state)
{
    (void)state;
    char prefix[64], body[8192];
    unique(prefix, sizeof prefix, "batch");
    size_t n = (size_t)snprintf(body, sizeof body, "[");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(body + n, sizeof body - n,
                              "%s{\"id\":\"%s-%02d\"},{\"id\":\"%s-%02d\"}", i ? "," : "", prefix,
                              i, prefix, i);
    snprintf(body + n, sizeof body - n, "]");
    json_t *out = NULL;
    assert_int_equal(post("create", body, NULL, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "accepted")), 50);
    json_decref(out);
    struct th_msg m[101];
    /* exactly 50: wait for a 51st that must not come */
    assert_int_equal(consume("vmh.beteiligte.create", prefix, m, 51, 6000), 50);
}

static void test_one_key_one_partition_across_topics(void **state)
{
    (void)state;
    char id[64], body[128];
    unique(id, sizeof id, "route");
    snprintf(body, sizeof body, "[{\"id\":\"%s\"}]", id);
    static const char *const events[] = {"create", "update", "delete"};
    int partition = -1;
    for (int e = 0; e < 3; e++) {
        char topic[64];
        struct th_msg m[1];
        assert_int_equal(post(events[e], body, NULL, NULL), 200);
        snprintf(topic, sizeof topic, "vmh.beteiligte.%s", events[e]);
        assert_int_equal(consume(topic, id, m, 1, 15000), 1);
        if (partition < 0)
            partition = m[0].partition;
        assert_int_equal(m[0].partition, partition);
    }
}

static void test_kafka_down_503_then_retry_succeeds(void **state)
{
    (void)state;
    char id[64], body[128];
    unique(id, sizeof id, "outage");
    snprintf(body, sizeof body, "[{\"id\":\"%s\"}]", id);
    assert_int_equal(th_kafka_brokers(&g.kafka, false), 0);
    long long t0 = th_now_ms();
    assert_int_equal(post("update", body, NULL, NULL), 503);
    assert_true(th_now_ms() - t0 >= 1400); /* waited for the ack timeout, then gave up */
    assert_int_equal(th_kafka_brokers(&g.kafka, true), 0);
    /* EspoCRM retries the same webhook: it is accepted once Kafka is back */
    long status = 0;
    bool ok;
    TH_WAIT(ok, (status = post("update", body, NULL, NULL)) == 200, 30000);
    assert_true(ok);
    struct th_msg m[4];
    assert_true(consume("vmh.beteiligte.update", id, m, 1, 15000) >= 1);
}

static void test_espocrm_down_cron_fails_http_unaffected(void **state)
{
    (void)state;
    bool failed;
    TH_WAIT(failed, metric("vmh_cron_ticks_total", "result=\"failed\"") >= 1, 10000);
    assert_true(failed);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", g.ops_port);
    assert_int_equal(th_http("GET", url, NULL, NULL, NULL), 200);
    /* webhooks still work (polled: the previous test's Kafka outage may still be healing) */
    bool ok;
    TH_WAIT(ok, post("update", "[{\"id\":\"still-works\"}]", NULL, NULL) == 200, 30000);
    assert_true(ok);
}

/* Issue 14: webhooks do not need Redis, so a Redis outage leaves the producer ready (Kubernetes
 * keeps it in the Service) and webhooks reach Kafka; only the cron, which needs its leader key,
 * skips its ticks and says so in vmh_cron_ticks_total{result="redis_down"} and vmh_redis_up. */
static void test_redis_down_stays_ready_cron_skips(void **state)
{
    (void)state;
    int port = g.redis.port;
    th_redis_stop(&g.redis);
    bool ok;
    TH_WAIT(ok, metric("vmh_redis_up", NULL) == 0, 15000);
    assert_true(ok);
    TH_WAIT(ok, metric("vmh_cron_ticks_total", "result=\"redis_down\"") >= 1, 15000);
    assert_true(ok);
    char url[96], id[64], body[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", g.ops_port);
    assert_int_equal(th_http("GET", url, NULL, NULL, NULL), 200);
    unique(id, sizeof id, "redis-down");
    snprintf(body, sizeof body, "[{\"id\":\"%s\"}]", id);
    TH_WAIT(ok, post("update", body, NULL, NULL) == 200, 30000);
    assert_true(ok);
    struct th_msg m[4];
    assert_true(consume("vmh.beteiligte.update", id, m, 1, 15000) >= 1);
    assert_int_equal(th_redis_start_port(&g.redis, port, NULL), 0);
    TH_WAIT(ok, metric("vmh_redis_up", NULL) == 1, 15000);
    assert_true(ok);
}

/* Random and malformed requests on raw sockets: every answer is an HTTP status line. */
static void test_fuzz_requests(void **state)
{
    (void)state;
    static const char *const starts[] = {
        "POST /webhook/beteiligte/update HTTP/1.1\r\nHost: x\r\nContent-Length: ",
        "GET / HTTP/1.1\r\n",
        "POST /webhook/beteiligte/create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "\x16\x03\x01\x02\x00",
        "POST /webhook/beteiligte/delete HTTP/1.0\r\nX-Signature: ",
        "PUT /webhook/beteiligte/update HTTP/1.1\r\n\r\n",
    };
    unsigned seed = 12345;
    int answered = 0;
    for (int i = 0; i < 10000; i++) {
        int fd = th_tcp_connect(g.web_port);
        assert_true(fd >= 0);
        char req[600];
        const char *start = starts[(unsigned)rand_r(&seed) % 6];
        size_t n = (size_t)snprintf(req, sizeof req, "%s", start);
        size_t extra = (unsigned)rand_r(&seed) % 200;
        for (size_t j = 0; j < extra && n < sizeof req - 5; j++)
            req[n++] = (char)(rand_r(&seed) % 3 ? ' ' + rand_r(&seed) % 95 : rand_r(&seed) % 256);
        memcpy(req + n, "\r\n\r\n", 4);
        n += 4;
        if (write(fd, req, n) < 0) {
            close(fd);
            continue;
        }
        shutdown(fd, SHUT_WR);
        char buf[64] = "";
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 35000) == 1 && read(fd, buf, sizeof buf - 1) > 0) {
            int status = 0;
            if (sscanf(buf, "HTTP/1.1 %d", &status) != 1 || status < 200 || status > 599)
                fail_msg("request %d: not an HTTP answer: %.40s", i, buf);
            answered++;
        }
        close(fd);
    }
    assert_true(answered > 0);
    assert_true(th_proc_alive(&g.producer));
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", g.ops_port);
    assert_int_equal(th_http("GET", url, NULL, NULL, NULL), 200);
}

int main(void)
{
    log_setup(LOG_WARN, LOG_TEXT, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_webhook_becomes_message),
        cmocka_unit_test(test_bad_signatures_401_nothing_produced),
        cmocka_unit_test(test_x_signature_only_still_works),
        cmocka_unit_test(test_malformed_bodies_400_nothing_produced),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_duplicates_and_a_batch_of_50),
        cmocka_unit_test(test_one_key_one_partition_across_topics),
        cmocka_unit_test(test_kafka_down_503_then_retry_succeeds),
        cmocka_unit_test(test_espocrm_down_cron_fails_http_unaffected),
        cmocka_unit_test(test_redis_down_stays_ready_cron_skips),
        cmocka_unit_test(test_fuzz_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
