/* test_cron_where.c: the cron's selection conditions (producer/cron.c cron_where, SPEC §3.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cron.h"

struct where_case {
    enum cron_reason reason;
    const char *want; /* compact JSON */
};

static void test_where_per_reason(void **state)
{
    (void)state;
    /* 2026-02-08 10:30:00 UTC */
    const time_t now = 1770546600;
    static const struct where_case cases[] = {
        {CRON_PENDING_SYNC,
         "[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"pending_sync\"}]"},
        {CRON_DIRTY, "[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"dirty\"}]"},
        {CRON_FAILED,
         "[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"failed\"},"
         "{\"type\":\"or\",\"value\":[{\"type\":\"isNull\",\"attribute\":\"syncNextRetry\"},"
         "{\"type\":\"lessThanOrEqual\",\"attribute\":\"syncNextRetry\","
         "\"value\":\"2026-02-08 10:30:00\"}]}]"},
        {CRON_AUTO_RESET,
         "[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"permanently_failed\"},"
         "{\"type\":\"lessThanOrEqual\",\"attribute\":\"syncAutoResetAt\","
         "\"value\":\"2026-02-08 10:30:00\"}]"},
        {CRON_STALE_CLEAN,
         "[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"clean\"},"
         "{\"type\":\"or\",\"value\":[{\"type\":\"isNull\",\"attribute\":\"advowareLastSync\"},"
         "{\"type\":\"lessThan\",\"attribute\":\"advowareLastSync\","
         "\"value\":\"2026-02-07 10:30:00\"}]}]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *w = cron_where(cases[i].reason, now);
        char *got = json_dumps(w, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s:\n got %s\nwant %s", cron_reason_name(cases[i].reason), got,
                     cases[i].want);
        free(got);
        json_decref(w);
    }
    assert_null(cron_where(CRON_REASONS, now));
}

static void test_reason_names_are_the_message_reasons(void **state)
{
    (void)state;
    assert_string_equal(cron_reason_name(CRON_PENDING_SYNC), "pending_sync");
    assert_string_equal(cron_reason_name(CRON_DIRTY), "dirty");
    assert_string_equal(cron_reason_name(CRON_FAILED), "failed");
    assert_string_equal(cron_reason_name(CRON_AUTO_RESET), "auto_reset");
    assert_string_equal(cron_reason_name(CRON_STALE_CLEAN), "stale_clean");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_where_per_reason),
        cmocka_unit_test(test_reason_names_are_the_message_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
