/* test_ops.c: the ops endpoint (common/ops.c, SPEC §10) on its own thread: /healthz follows the
 * liveness probe, /readyz the readiness probe (with the reason in the 503 body), /metrics
 * renders the registry. Real HTTP over loopback through libcurl. */
#include "httpc.h"
#include "metrics.h"
#include "ops.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_bool live = true, ready = false;

static bool probe_live(void *ud, char *why, size_t whylen)
{
    (void)ud;
    snprintf(why, whylen, "poll loop stalled");
    return atomic_load(&live);
}

static bool probe_ready(void *ud, char *why, size_t whylen)
{
    (void)ud;
    snprintf(why, whylen, "redis unreachable");
    return atomic_load(&ready);
}

/* GET path → status; the body into buf. */
static long get(int port, const char *path, char *buf, size_t buflen)
{
    char url[128], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct httpc *c = httpc_new(NULL);
    struct httpc_resp r;
    assert_non_null(c);
    assert_int_equal(httpc_request(c, "GET", url, NULL, NULL, 0, &r, err, sizeof err), 0);
    snprintf(buf, buflen, "%s", r.body);
    long status = r.status;
    httpc_resp_clear(&r);
    httpc_free(c);
    return status;
}

static void test_probes_and_metrics(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    struct metric *m = metrics_counter(reg, "vmh_test_total", "a counter", NULL);
    metric_add(m, 3);
    char err[256], body[4096];
    int port = 0;
    ops_set_liveness(probe_live, NULL);
    struct ops_server *s =
        ops_server_start("127.0.0.1:0", reg, probe_ready, NULL, &port, err, sizeof err);
    assert_non_null(s);
    assert_true(port > 0);

    assert_int_equal(get(port, "/healthz", body, sizeof body), 200);
    assert_int_equal(get(port, "/readyz", body, sizeof body), 503);
    assert_non_null(strstr(body, "redis unreachable"));
    atomic_store(&ready, true);
    assert_int_equal(get(port, "/readyz", body, sizeof body), 200);
    atomic_store(&live, false);
    assert_int_equal(get(port, "/healthz", body, sizeof body), 503);
    assert_non_null(strstr(body, "poll loop stalled"));
    assert_int_equal(get(port, "/metrics", body, sizeof body), 200);
    assert_non_null(strstr(body, "vmh_test_total 3"));
    assert_int_equal(get(port, "/nothing", body, sizeof body), 404);

    ops_server_stop(s);
    ops_set_liveness(NULL, NULL);
    metrics_free(reg);
}

static void test_bind_error(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    char err[256] = "";
    assert_null(ops_server_start("256.0.0.1:0", reg, NULL, NULL, NULL, err, sizeof err));
    assert_true(strlen(err) > 0);
    metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes_and_metrics),
        cmocka_unit_test(test_bind_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
