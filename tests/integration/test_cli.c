/* test_cli.c: every binary's command line contract (SPEC §9): --help lists its variables and
 * exits 0; a missing or invalid required value exits 2 with one line naming the variable; a
 * configured binary serves /healthz and /metrics and exits 0 on SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "httpc.h"

/* The environment of a fully configured producer and worker (values need not be reachable:
 * the binaries connect lazily). */
#define BASE_ENV                                                                                   \
    "KAFKA_BROKERS=127.0.0.1:1", "REDIS_URL=redis://127.0.0.1:1/0",                                \
        "ESPOCRM_URL=http://127.0.0.1:1", "ESPOCRM_API_KEY=k", "ADVOWARE_URL=http://127.0.0.1:1",  \
        "ADVOWARE_APP_ID=a", "ADVOWARE_API_KEY=a2V5", "ADVOWARE_KANZLEI=k", "ADVOWARE_DATABASE=d", \
        "ADVOWARE_USER=u", "ADVOWARE_PASSWORD=p", "WEBHOOK_ALLOW_UNSIGNED=1", "LOG_FORMAT=text"

struct binary {
    const char *name;
    const char *must_list[4]; /* variables its --help must mention */
};

static const struct binary binaries[] = {
    {"vmh-producer", {"KAFKA_BROKERS", "WEBHOOK_SECRETS", "CRON_INTERVAL_S", "METRICS_LISTEN"}},
    {"vmh-worker", {"KAFKA_BROKERS", "ADVOWARE_API_KEY", "WORKER_CONCURRENCY", "LOCK_TTL_MS"}},
};

static void test_help(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof binaries / sizeof binaries[0]; b++) {
        char bin[512], out[16384];
        const char *argv[] = {th_bin(binaries[b].name, bin, sizeof bin), "--help", NULL};
        assert_int_equal(th_run(argv, NULL, out, sizeof out, 10000), 0);
        for (size_t i = 0; i < 4; i++)
            if (!strstr(out, binaries[b].must_list[i]))
                fail_msg("%s --help does not list %s", binaries[b].name, binaries[b].must_list[i]);
        assert_non_null(strstr(out, "_FILE"));
    }
}

static void test_unknown_argument_exits_2(void **state)
{
    (void)state;
    char bin[512], out[4096];
    const char *argv[] = {th_bin("vmh-worker", bin, sizeof bin), "--bogus", NULL};
    assert_int_equal(th_run(argv, NULL, out, sizeof out, 10000), 2);
    assert_non_null(strstr(out, "--bogus"));
}

struct bad_env {
    const char *binary;
    const char *override; /* "NAME" unsets, "NAME=value" sets */
    const char *named;    /* the variable the error line must name */
};

static void test_bad_configuration_exits_2(void **state)
{
    (void)state;
    static const struct bad_env cases[] = {
        {"vmh-worker", "KAFKA_BROKERS", "KAFKA_BROKERS"},
        {"vmh-worker", "ADVOWARE_PASSWORD", "ADVOWARE_PASSWORD"},
        {"vmh-worker", "WORKER_CONCURRENCY=0", "WORKER_CONCURRENCY"},
        {"vmh-worker", "LOCK_TTL_MS=soon", "LOCK_TTL_MS"},
        {"vmh-worker", "LOG_LEVEL=loud", "LOG_LEVEL"},
        {"vmh-worker", "ESPOCRM_API_KEY_FILE=/nonexistent/key", "ESPOCRM_API_KEY"},
        {"vmh-worker", "PHONE_DEFAULT_COUNTRY=XX", "PHONE_DEFAULT_COUNTRY"},
        {"vmh-worker", "SYNC_RETRY_BACKOFF=1m,soon", "SYNC_RETRY_BACKOFF"},
        /* issue 14: what used to start without complaint */
        {"vmh-worker", "ADVOWARE_TZ=Mars/Phobos", "ADVOWARE_TZ"},
        {"vmh-worker", "ADVOWARE_API_KEY=not base64!", "ADVOWARE_API_KEY"},
        {"vmh-worker", "ESPOCRM_URL=not-a-url", "ESPOCRM_URL"},
        {"vmh-worker", "ADVOWARE_URL=ftp://advoware.example.com", "ADVOWARE_URL"},
        {"vmh-worker", "KAFKA_CFG_PARTITION_ASSIGNMENT_STRATEGY=roundrobin",
         "KAFKA_CFG_PARTITION_ASSIGNMENT_STRATEGY"},
        {"vmh-worker", "KAFKA_CFG_ENABLE_AUTO_OFFSET_STORE=true",
         "KAFKA_CFG_ENABLE_AUTO_OFFSET_STORE"},
        {"vmh-producer", "KAFKA_CFG_PARTITIONER=random", "KAFKA_CFG_PARTITIONER"},
        {"vmh-producer", "ESPOCRM_URL=crm.example.com", "ESPOCRM_URL"},
        {"vmh-producer", "REDIS_URL", "REDIS_URL"},
        {"vmh-producer", "WEBHOOK_LISTEN=nowhere", "WEBHOOK_LISTEN"},
        {"vmh-producer", "WEBHOOK_ALLOW_UNSIGNED", "WEBHOOK_SECRETS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char bin[512], out[4096];
        const char *argv[] = {th_bin(cases[i].binary, bin, sizeof bin), NULL};
        const char *env[] = {BASE_ENV, "ESPOCRM_API_KEY_FILE", cases[i].override, NULL};
        int code = th_run(argv, env, out, sizeof out, 10000);
        if (code != 2 || !strstr(out, cases[i].named))
            fail_msg("%s with %s: exit %d, output: %s", cases[i].binary, cases[i].override, code,
                     out);
        /* one line, and it does not echo secrets */
        assert_non_null(strchr(out, '\n'));
        assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    }
}

static bool get_ok(struct httpc *c, const char *url, const char *want)
{
    struct httpc_resp r;
    char err[256];
    bool ok = httpc_request(c, "GET", url, NULL, NULL, 0, &r, err, sizeof err) == 0 &&
              r.status == 200 && strstr(r.body, want);
    httpc_resp_clear(&r);
    return ok;
}

static void test_serves_ops_and_stops_on_sigterm(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof binaries / sizeof binaries[0]; b++) {
        int port = th_free_port();
        char bin[512], listen[64], url[128];
        snprintf(listen, sizeof listen, "METRICS_LISTEN=127.0.0.1:%d", port);
        const char *argv[] = {th_bin(binaries[b].name, bin, sizeof bin), NULL};
        const char *env[] = {BASE_ENV, listen, NULL};
        struct th_proc p;
        assert_int_equal(th_proc_start(&p, argv, env, false), 0);
        struct httpc *c = httpc_new(NULL);
        bool ok;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", port);
        TH_WAIT(ok, get_ok(c, url, "ok") || !th_proc_alive(&p), 10000);
        assert_true(ok && th_proc_alive(&p));
        snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
        assert_true(get_ok(c, url, ""));
        httpc_free(c);
        assert_int_equal(th_proc_stop(&p, SIGTERM, 10000), 0);
    }
}

/* SPEC §1.1, issue 14: both programs refuse to run on topics that are missing or have unequal
 * partition counts (an entity would change partitions between topics), naming them. */
static void test_missing_topics_exit_2(void **state)
{
    (void)state;
    struct th_kafka k;
    assert_int_equal(th_kafka_start(&k, 2), 0);
    char brokers[600];
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", k.bootstrap);
    for (size_t b = 0; b < sizeof binaries / sizeof binaries[0]; b++) {
        char bin[512], out[16384], listen[64];
        snprintf(listen, sizeof listen, "METRICS_LISTEN=127.0.0.1:%d", th_free_port());
        const char *argv[] = {th_bin(binaries[b].name, bin, sizeof bin), NULL};
        const char *env[] = {BASE_ENV,
                             brokers,
                             listen,
                             "KAFKA_TOPIC_PREFIX=vmh.nirgends",
                             "WEBHOOK_LISTEN=127.0.0.1:0",
                             NULL};
        int code = th_run(argv, env, out, sizeof out, 30000);
        /* (kafka-mock creates a topic a consumer subscribes to: the worker finds the four it
         * subscribes to, and the DLQ missing) */
        if (code != 2 || !strstr(out, "must exist with one partition count") ||
            !strstr(out, "vmh.nirgends.dlq missing"))
            fail_msg("%s: exit %d, output: %s", binaries[b].name, code, out);
    }
    th_kafka_stop(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_unknown_argument_exits_2),
        cmocka_unit_test(test_bad_configuration_exits_2),
        cmocka_unit_test(test_missing_topics_exit_2),
        cmocka_unit_test(test_serves_ops_and_stops_on_sigterm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
