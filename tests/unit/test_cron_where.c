/* test_cron_where.c: the cron's selection conditions and page sizes (producer/cron.c cron_where,
 * cron_page_size; SPEC §3.2), held to what a real EspoCRM 9.1.5 accepts
 * (contracts/espocrm-9.1.5/05_list.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
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
         "{\"type\":\"lessThanOrEquals\",\"attribute\":\"syncNextRetry\","
         "\"value\":\"2026-02-08 10:30:00\"}]}]"},
        {CRON_AUTO_RESET,
         "[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"permanently_failed\"},"
         "{\"type\":\"lessThanOrEquals\",\"attribute\":\"syncAutoResetAt\","
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

/* Every where type the cron sends is one EspoCRM 9.1.5 answered 200 in 05_list.json
 * (lessThanOrEqual and greaterThanOrEqual, without the s, were 400 "Unknown where item type"). */
static int check_types(const json_t *conds, const char **bad)
{
    static const char *const accepted[] = {"equals",
                                           "notEquals",
                                           "in",
                                           "isNull",
                                           "isNotNull",
                                           "lessThan",
                                           "lessThanOrEquals",
                                           "greaterThan",
                                           "greaterThanOrEquals",
                                           "or",
                                           "and"};
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        bool ok = false;
        for (size_t k = 0; type && k < sizeof accepted / sizeof accepted[0]; k++)
            ok = ok || strcmp(type, accepted[k]) == 0;
        if (!ok) {
            *bad = type ? type : "(none)";
            return -1;
        }
        json_t *inner = json_object_get(c, "value");
        if ((strcmp(type, "or") == 0 || strcmp(type, "and") == 0) && check_types(inner, bad) != 0)
            return -1;
    }
    return 0;
}

static void test_where_types_are_espocrm_spellings(void **state)
{
    (void)state;
    for (int r = 0; r < CRON_REASONS; r++) {
        json_t *w = cron_where((enum cron_reason)r, 1770546600);
        const char *bad = NULL;
        if (check_types(w, &bad) != 0)
            fail_msg("%s: where type \"%s\" is a 400 in EspoCRM",
                     cron_reason_name((enum cron_reason)r), bad);
        json_decref(w);
    }
}

/* maxSize above 200 is a 403 ("Max size should not exceed 200. Use offset and limit."): a batch
 * of more pages on with offset. */
static void test_page_size_never_above_200(void **state)
{
    (void)state;
    static const struct {
        int left, want;
    } cases[] = {{1, 50},    {5, 50},    {50, 50},    {100, 100},    {199, 199},
                 {200, 200}, {201, 200}, {1000, 200}, {1 << 30, 200}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cron_page_size(cases[i].left) != cases[i].want)
            fail_msg("left %d: page %d, want %d", cases[i].left, cron_page_size(cases[i].left),
                     cases[i].want);
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
        cmocka_unit_test(test_where_types_are_espocrm_spellings),
        cmocka_unit_test(test_page_size_never_above_200),
        cmocka_unit_test(test_reason_names_are_the_message_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
