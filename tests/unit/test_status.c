/* test_status.c: the status policy (worker/status.c, SPEC §5.6) by table: success, the backoff
 * of transient failures, the 5th failure, permanent errors, deleted in Advoware. */
#include "status.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#define NOW 1767261600LL /* 2026-01-01 10:00:00 UTC */

struct scase {
    enum outcome o;
    long long retry_count;
    const char *want; /* the attributes, JSON */
    bool notify;
    const char *text_has;
};

static const struct scase cases[] = {
    {OUT_SUCCESS, 3,
     "{\"syncStatus\":\"clean\",\"syncRetryCount\":0,\"syncNextRetry\":null,"
     "\"syncErrorMessage\":null,\"syncAutoResetAt\":null,"
     "\"advowareLastSync\":\"2026-01-01 10:00:00\"}",
     false, NULL},
    {OUT_TRANSIENT, 0,
     "{\"syncStatus\":\"failed\",\"syncRetryCount\":1,\"syncNextRetry\":\"2026-01-01 10:01:00\","
     "\"syncErrorMessage\":\"503\"}",
     false, NULL},
    {OUT_TRANSIENT, 1,
     "{\"syncStatus\":\"failed\",\"syncRetryCount\":2,\"syncNextRetry\":\"2026-01-01 10:05:00\","
     "\"syncErrorMessage\":\"503\"}",
     false, NULL},
    {OUT_TRANSIENT, 2,
     "{\"syncStatus\":\"failed\",\"syncRetryCount\":3,\"syncNextRetry\":\"2026-01-01 10:15:00\","
     "\"syncErrorMessage\":\"503\"}",
     false, NULL},
    {OUT_TRANSIENT, 3,
     "{\"syncStatus\":\"failed\",\"syncRetryCount\":4,\"syncNextRetry\":\"2026-01-01 11:00:00\","
     "\"syncErrorMessage\":\"503\"}",
     false, NULL},
    {OUT_TRANSIENT, 4,
     "{\"syncStatus\":\"permanently_failed\",\"syncRetryCount\":5,\"syncNextRetry\":null,"
     "\"syncAutoResetAt\":\"2026-01-02 10:00:00\",\"syncErrorMessage\":\"503\"}",
     true, "5-mal fehlgeschlagen"},
    {OUT_PERMANENT, 0,
     "{\"syncStatus\":\"permanently_failed\",\"syncNextRetry\":null,"
     "\"syncAutoResetAt\":null,\"syncErrorMessage\":\"503\"}",
     true, "bitte Daten korrigieren: 503"},
    {OUT_DELETED_IN_ADVOWARE, 0,
     "{\"syncStatus\":\"deleted_in_advoware\",\"syncNextRetry\":null,"
     "\"syncErrorMessage\":\"Beteiligter in Advoware nicht gefunden (404)\"}",
     true, "betNr 1001"},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct scase *c = &cases[i];
        struct status_result r;
        const char *msg = c->o == OUT_SUCCESS ? NULL : "503";
        assert_int_equal(status_for(c->o, c->retry_count, msg, 1001, NOW, &r), 0);
        json_t *want = json_loads(c->want, 0, NULL);
        assert_non_null(want);
        if (!json_equal(r.attrs, want)) {
            char *got = json_dumps(r.attrs, JSON_SORT_KEYS);
            fail_msg("case %zu: got %s\nwant %s", i, got, c->want);
        }
        assert_int_equal(r.notify, c->notify);
        if (c->text_has)
            assert_non_null(strstr(r.text, c->text_has));
        json_decref(want);
        json_decref(r.attrs);
    }
}

/* SYNC_RETRY_BACKOFF replaces the table (seconds in tests and chaos runs); the last entry holds
 * for every later failure. */
static void test_backoff_configured(void **state)
{
    (void)state;
    static const long long ms[] = {1000, 2500, 4000};
    assert_int_equal(status_set_backoff(ms, 3), 0);
    assert_int_equal(status_backoff_s(1), 1);
    assert_int_equal(status_backoff_s(2), 3); /* rounded up */
    assert_int_equal(status_backoff_s(3), 4);
    assert_int_equal(status_backoff_s(9), 4);
    struct status_result r;
    assert_int_equal(status_for(OUT_TRANSIENT, 1, "503", 1001, NOW, &r), 0);
    assert_string_equal(json_string_value(json_object_get(r.attrs, "syncNextRetry")),
                        "2026-01-01 10:00:03");
    json_decref(r.attrs);
    assert_int_equal(status_set_backoff(ms, 0), -1);
    static const long long spec[] = {60000, 300000, 900000, 3600000, 14400000};
    assert_int_equal(status_set_backoff(spec, 5), 0); /* back to SPEC §5.6 for the others */
    assert_int_equal(status_backoff_s(4), 3600);
}

/* A success that left Advoware entries behind (SPEC §5.4) is clean and says which. */
static void test_success_with_skips(void **state)
{
    (void)state;
    struct status_result r;
    const char *text = "Telefonnummer '0511/ab' aus Advoware wurde nicht übernommen";
    assert_int_equal(status_for(OUT_SUCCESS, 2, text, 1001, NOW, &r), 0);
    assert_string_equal(json_string_value(json_object_get(r.attrs, "syncStatus")), "clean");
    assert_string_equal(json_string_value(json_object_get(r.attrs, "syncErrorMessage")), text);
    assert_int_equal(json_integer_value(json_object_get(r.attrs, "syncRetryCount")), 0);
    assert_false(r.notify);
    json_decref(r.attrs);
}

static void test_backoff(void **state)
{
    (void)state;
    static const long long want[] = {60, 60, 300, 900, 3600, 14400, 14400};
    for (long long n = 0; n <= 6; n++)
        assert_int_equal(status_backoff_s(n), want[n]);
}

/* SPEC §3.1 "Backoff holds": only a failed party whose retry lies ahead waits, and only for
 * runs nobody scheduled (webhook echoes, duplicates, replays). */
static void test_backoff_holds(void **state)
{
    (void)state;
    static const struct {
        const char *status;
        long long next_retry;
        bool scheduled, holds;
    } rows[] = {
        {"failed", NOW + 60, false, true}, /* an echo of the failure's status write */
        {"failed", NOW + 60, true, false}, /* the retry scan or vmhctl resync */
        {"failed", NOW, false, false},     /* due */
        {"failed", NOW - 1, false, false}, /* overdue */
        {"failed", 0, false, false},       /* no next retry recorded */
        {"dirty", NOW + 60, false, false}, /* a person edited it since */
        {"clean", NOW + 60, false, false}, /* a stale syncNextRetry means nothing */
        {"permanently_failed", NOW + 60, false, false},
        {NULL, NOW + 60, false, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (status_backoff_holds(rows[i].status, rows[i].next_retry, NOW, rows[i].scheduled) !=
            rows[i].holds)
            fail_msg("row %zu", i);
    }
}

static void test_retry_restarts(void **state)
{
    (void)state;
    assert_true(status_retry_restarts("dirty", false));
    assert_true(status_retry_restarts("permanently_failed", true));
    assert_true(status_retry_restarts("failed", true));
    assert_false(status_retry_restarts("failed", false));
    assert_false(status_retry_restarts("pending_sync", false));
    assert_false(status_retry_restarts(NULL, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_success_with_skips),
        cmocka_unit_test(test_backoff_configured),
        cmocka_unit_test(test_backoff_holds),
        cmocka_unit_test(test_retry_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
