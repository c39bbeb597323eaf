/* test_espo_query.c: EspoCRM list query strings (common/espo.c espo_query_string, SPEC §3.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "espo.h"

struct query_case {
    const char *where_json; /* NULL = no where */
    const char *select, *order_by, *order;
    int max_size, offset;
    const char *want;
};

static void test_query_strings(void **state)
{
    (void)state;
    static const struct query_case cases[] = {
        {NULL, NULL, NULL, NULL, 0, 0, "offset=0"},
        {"[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"dirty\"}]",
         "id,syncStatus", "modifiedAt", "asc", 100, 0,
         "offset=0&maxSize=100&orderBy=modifiedAt&order=asc&select=id%2CsyncStatus"
         "&where[0][type]=equals&where[0][attribute]=syncStatus&where[0][value]=dirty"},
        {"[{\"type\":\"lessThanOrEquals\",\"attribute\":\"syncNextRetry\","
         "\"value\":\"2026-02-08 10:30:00\"}]",
         NULL, NULL, NULL, 0, 40,
         "offset=40&where[0][type]=lessThanOrEquals&where[0][attribute]=syncNextRetry"
         "&where[0][value]=2026-02-08%2010%3A30%3A00"},
        /* 05_list.json step 14 (the retry scan's conditions, answered 200), as the cron's
         * second page of 200 (maxSize 200 is EspoCRM's limit; 201 is a 403) */
        {"[{\"type\":\"equals\",\"attribute\":\"syncStatus\",\"value\":\"failed\"},"
         "{\"type\":\"lessThanOrEquals\",\"attribute\":\"syncNextRetry\","
         "\"value\":\"2026-12-01 20:17:02\"}]",
         "id,syncStatus,syncNextRetry", NULL, NULL, 200, 200,
         "offset=200&maxSize=200&select=id%2CsyncStatus%2CsyncNextRetry"
         "&where[0][type]=equals&where[0][attribute]=syncStatus&where[0][value]=failed"
         "&where[1][type]=lessThanOrEquals&where[1][attribute]=syncNextRetry"
         "&where[1][value]=2026-12-01%2020%3A17%3A02"},
        {"[{\"type\":\"or\",\"value\":[{\"type\":\"isNull\",\"attribute\":\"advowareLastSync\"},"
         "{\"type\":\"lessThan\",\"attribute\":\"advowareLastSync\",\"value\":\"x&y=z\"}]}]",
         NULL, NULL, NULL, 0, 0,
         "offset=0&where[0][type]=or&where[0][value][0][type]=isNull"
         "&where[0][value][0][attribute]=advowareLastSync&where[0][value][1][type]=lessThan"
         "&where[0][value][1][attribute]=advowareLastSync&where[0][value][1][value]=x%26y%3Dz"},
        {"[{\"type\":\"in\",\"attribute\":\"syncStatus\",\"value\":[\"dirty\",\"failed\"]},"
         "{\"type\":\"equals\",\"attribute\":\"betnr\",\"value\":104860}]",
         NULL, NULL, NULL, 0, 0,
         "offset=0&where[0][type]=in&where[0][attribute]=syncStatus&where[0][value][0]=dirty"
         "&where[0][value][1]=failed&where[1][type]=equals&where[1][attribute]=betnr"
         "&where[1][value]=104860"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *where = cases[i].where_json ? json_loads(cases[i].where_json, 0, NULL) : NULL;
        if (cases[i].where_json)
            assert_non_null(where);
        struct espo_query q = {.where = where,
                               .select = cases[i].select,
                               .order_by = cases[i].order_by,
                               .order = cases[i].order,
                               .max_size = cases[i].max_size,
                               .offset = cases[i].offset};
        char *s = espo_query_string(&q);
        if (strcmp(s, cases[i].want) != 0)
            fail_msg("case %zu:\n got %s\nwant %s", i, s, cases[i].want);
        free(s);
        json_decref(where);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
