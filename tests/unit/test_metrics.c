/* test_metrics.c: the metrics registry (common/metrics.c) and its Prometheus text rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void assert_contains(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("missing \"%s\" in:\n%s", want, text);
}

static void test_counter_with_labels(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    struct metric *c =
        metrics_counter(reg, "vmh_api_calls_total", "API calls by system.", "system,method,status");
    assert_non_null(c);
    metric_inc(c, "advoware", "GET", "200");
    metric_inc(c, "advoware", "GET", "200");
    metric_add(c, 3, "espocrm", "PUT", "409");
    metric_add(c, -1, "espocrm", "PUT", "409"); /* counters never go down */
    assert_true(metric_value(c, "advoware", "GET", "200") == 2);
    assert_true(metric_value(c, "nobody", "GET", "200") == 0);
    char *text = metrics_render(reg, NULL);
    assert_contains(text, "# HELP vmh_api_calls_total API calls by system.\n");
    assert_contains(text, "# TYPE vmh_api_calls_total counter\n");
    assert_contains(text,
                    "vmh_api_calls_total{system=\"advoware\",method=\"GET\",status=\"200\"} 2\n");
    assert_contains(text,
                    "vmh_api_calls_total{system=\"espocrm\",method=\"PUT\",status=\"409\"} 3\n");
    free(text);
    metrics_free(reg);
}

static void test_gauge_and_reset(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    struct metric *g = metrics_gauge(reg, "vmh_inflight", "Syncs running.", NULL);
    struct metric *lag = metrics_gauge(reg, "vmh_consumer_lag", "Lag.", "topic,partition");
    metric_set(g, 5);
    metric_add(g, -2);
    metric_set(lag, 7, "vmh.beteiligte.update", "3");
    char *text = metrics_render(reg, NULL);
    assert_contains(text, "# TYPE vmh_inflight gauge\nvmh_inflight 3\n");
    assert_contains(text, "vmh_consumer_lag{topic=\"vmh.beteiligte.update\",partition=\"3\"} 7\n");
    free(text);
    metric_reset(lag);
    text = metrics_render(reg, NULL);
    assert_null(strstr(text, "vmh_consumer_lag{"));
    assert_contains(text, "# TYPE vmh_consumer_lag gauge\n");
    free(text);
    metrics_free(reg);
}

static void test_histogram(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    static const double bounds[] = {0.1, 1, 10};
    struct metric *h =
        metrics_histogram(reg, "vmh_sync_duration_seconds", "Sync time.", "case", bounds, 3);
    metric_observe(h, 0.05, "no_change");
    metric_observe(h, 0.5, "no_change");
    metric_observe(h, 0.5, "no_change");
    metric_observe(h, 100, "no_change");
    char *text = metrics_render(reg, NULL);
    assert_contains(text, "vmh_sync_duration_seconds_bucket{case=\"no_change\",le=\"0.1\"} 1\n");
    assert_contains(text, "vmh_sync_duration_seconds_bucket{case=\"no_change\",le=\"1\"} 3\n");
    assert_contains(text, "vmh_sync_duration_seconds_bucket{case=\"no_change\",le=\"10\"} 3\n");
    assert_contains(text, "vmh_sync_duration_seconds_bucket{case=\"no_change\",le=\"+Inf\"} 4\n");
    assert_contains(text, "vmh_sync_duration_seconds_sum{case=\"no_change\"} 101.05");
    assert_contains(text, "vmh_sync_duration_seconds_count{case=\"no_change\"} 4\n");
    assert_true(metric_value(h, "no_change") == 4);
    free(text);
    metrics_free(reg);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    struct metric *c = metrics_counter(reg, "x_total", "Help with \\ and\nnewline.", "v");
    metric_inc(c, "a\"b\\c\nd");
    char *text = metrics_render(reg, NULL);
    assert_contains(text, "# HELP x_total Help with \\\\ and\\nnewline.\n");
    assert_contains(text, "x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
    free(text);
    metrics_free(reg);
}

static void test_registration_rules(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    struct metric *a = metrics_counter(reg, "same_total", "h", NULL);
    assert_ptr_equal(metrics_counter(reg, "same_total", "h", NULL), a);
    assert_null(metrics_gauge(reg, "same_total", "h", NULL)); /* type clash */
    assert_null(metrics_counter(reg, "bad-name", "h", NULL));
    assert_null(metrics_counter(reg, "9lives", "h", NULL));
    assert_null(metrics_counter(reg, "ok_total", "h", "good,bad-label"));
    static const double unsorted[] = {1, 0.5};
    assert_null(metrics_histogram(reg, "h_seconds", "h", NULL, unsorted, 2));
    metric_inc(NULL); /* ignored */
    metrics_free(reg);
    metrics_free(NULL);
}

static void *bump(void *arg)
{
    struct metric *c = arg;
    for (int i = 0; i < 10000; i++)
        metric_inc(c, i % 2 ? "odd" : "even");
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    struct metrics *reg = metrics_new();
    struct metric *c = metrics_counter(reg, "n_total", "h", "kind");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, bump, c);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(metric_value(c, "odd") == 20000);
    assert_true(metric_value(c, "even") == 20000);
    metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_with_labels), cmocka_unit_test(test_gauge_and_reset),
        cmocka_unit_test(test_histogram),           cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_registration_rules),  cmocka_unit_test(test_concurrent_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
