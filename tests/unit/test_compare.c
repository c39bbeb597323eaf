/* test_compare.c: change detection (worker/compare.c, SPEC §5.2) by table, including the
 * pitfalls of the own-write rule, and the time formats it relies on (common/synctime.c). */
#include "compare.h"
#include "synctime.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#define T0   1767261600LL /* 2026-01-01 10:00:00 UTC */
#define SYNC "sync-user"
#define UI   "ui-user"

struct ccase {
    const char *name;
    struct cmp_input in;
    bool espo, advo;
};

#define LAST(t) .has_last_sync = true, .last_sync = (t)

static const struct ccase cases[] = {
    {"initial: no lastSync",
     {.modified_at = T0, .modified_by = UI, .sync_user_id = SYNC, .advo_rowid = "r1"},
     true,
     false},
    {"initial even if Advoware has data",
     {.modified_at = T0,
      .modified_by = UI,
      .sync_user_id = SYNC,
      .advo_rowid = "r1",
      .has_geaendert = true,
      .geaendert_am = T0 + 100},
     true,
     true},
    {"nothing changed",
     {LAST(T0), .modified_at = T0, .modified_by = SYNC, .sync_user_id = SYNC, .entity_rowid = "r1",
      .advo_rowid = "r1"},
     false,
     false},
    {"own write a second later is not a change",
     {LAST(T0), .modified_at = T0 + 1, .modified_by = SYNC, .sync_user_id = SYNC,
      .entity_rowid = "r1", .advo_rowid = "r1"},
     false,
     false},
    {"own write at the tolerance edge",
     {LAST(T0), .modified_at = T0 + OWN_WRITE_TOLERANCE_S, .modified_by = SYNC,
      .sync_user_id = SYNC, .entity_rowid = "r1", .advo_rowid = "r1"},
     false,
     false},
    {"a failed run's status write (sync user, minutes later) keeps a pending change",
     {LAST(T0), .modified_at = T0 + 300, .modified_by = SYNC, .sync_user_id = SYNC,
      .entity_rowid = "r1", .advo_rowid = "r1"},
     true,
     false},
    {"human edit right after a sync",
     {LAST(T0), .modified_at = T0 + 1, .modified_by = UI, .sync_user_id = SYNC,
      .entity_rowid = "r1", .advo_rowid = "r1"},
     true,
     false},
    {"Advoware rowId moved",
     {LAST(T0), .modified_at = T0 + 1, .modified_by = SYNC, .sync_user_id = SYNC,
      .entity_rowid = "r1", .advo_rowid = "r2"},
     false,
     true},
    {"both changed: conflict",
     {LAST(T0), .modified_at = T0 + 60, .modified_by = UI, .sync_user_id = SYNC,
      .entity_rowid = "r1", .advo_rowid = "r2"},
     true,
     true},
    {"no rowId stored: geaendertAm after lastSync",
     {LAST(T0), .modified_at = T0, .modified_by = SYNC, .sync_user_id = SYNC, .advo_rowid = "r1",
      .has_geaendert = true, .geaendert_am = T0 + 5},
     false,
     true},
    {"no rowId stored: geaendertAm before lastSync",
     {LAST(T0), .modified_at = T0, .modified_by = SYNC, .sync_user_id = SYNC, .advo_rowid = "r1",
      .has_geaendert = true, .geaendert_am = T0 - 5},
     false,
     false},
    {"rowIds equal win over a newer geaendertAm",
     {LAST(T0), .modified_at = T0, .modified_by = SYNC, .sync_user_id = SYNC, .entity_rowid = "r1",
      .advo_rowid = "r1", .has_geaendert = true, .geaendert_am = T0 + 500},
     false,
     false},
    {"human edit in the same second as the sync: dirty tells",
     {LAST(T0), .modified_at = T0, .modified_by = UI, .sync_user_id = SYNC, .entity_rowid = "r1",
      .advo_rowid = "r1", .dirty = true},
     true,
     false},
    {"dirty and Advoware changed: conflict",
     {LAST(T0), .modified_at = T0, .modified_by = UI, .sync_user_id = SYNC, .entity_rowid = "r1",
      .advo_rowid = "r2", .dirty = true},
     true,
     true},
    {"unknown modifier counts as a human",
     {LAST(T0), .modified_at = T0 + 2, .sync_user_id = SYNC, .entity_rowid = "r1",
      .advo_rowid = "r1"},
     true,
     false},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct ccase *c = &cases[i];
        bool espo = cmp_espo_changed(&c->in), advo = cmp_advo_changed(&c->in);
        if (espo != c->espo || advo != c->advo)
            fail_msg("\"%s\": espo %d advo %d; want %d %d", c->name, espo, advo, c->espo, c->advo);
    }
}

static void test_espo_times(void **state)
{
    (void)state;
    long long t;
    char buf[ST_DATETIME_LEN];
    assert_int_equal(st_parse_espo("2026-01-01 10:00:00", &t), 0);
    assert_int_equal(t, T0);
    st_format_espo(T0 + 61, buf, sizeof buf);
    assert_string_equal(buf, "2026-01-01 10:01:01");
    static const char *const bad[] = {"",
                                      "2026-01-01",
                                      "2026-01-01T10:00:00",
                                      "2026-02-30 10:00:00",
                                      "2026-01-01 24:00:00",
                                      "2026-01-01 10:00:00Z",
                                      "2026-1-01 10:00:00",
                                      "20x6-01-01 10:00:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(st_parse_espo(bad[i], &t), -1);
    assert_int_equal(st_parse_espo("2024-02-29 00:00:00", &t), 0); /* leap day */
}

static void test_advoware_local_times(void **state)
{
    (void)state;
    long long t;
    st_set_zone("Europe/Berlin");
    /* winter: UTC+1; summer: UTC+2 */
    assert_int_equal(st_parse_advo("2026-01-01T11:00:00", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(st_parse_advo("2026-01-01T11:00:00.123", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(st_parse_advo("2026-07-01T12:00:00", &t), 0);
    long long summer;
    assert_int_equal(st_parse_espo("2026-07-01 10:00:00", &summer), 0);
    assert_int_equal(t, summer);
    assert_int_equal(st_parse_advo("2026-07-01 12:00:00", &t), -1);
    assert_int_equal(st_parse_advo("2026-07-01T12:00:00+02:00", &t), -1);
}

static void test_dates(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(st_date_to_advo("1980-05-17", buf, sizeof buf), 0);
    assert_string_equal(buf, "1980-05-17T00:00:00");
    assert_int_equal(st_date_from_advo("1980-05-17T00:00:00", buf, sizeof buf), 0);
    assert_string_equal(buf, "1980-05-17");
    assert_int_equal(st_date_from_advo("1980-05-17T00:00:00.000", buf, sizeof buf), 0);
    assert_string_equal(buf, "1980-05-17");
    assert_int_equal(st_date_to_advo("1980-02-30", buf, sizeof buf), -1);
    assert_int_equal(st_date_to_advo("17.05.1980", buf, sizeof buf), -1);
    assert_int_equal(st_date_to_advo("1980-05-17 ", buf, sizeof buf), -1);
    assert_int_equal(st_date_from_advo("1980-05-17", buf, sizeof buf), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_espo_times),
        cmocka_unit_test(test_advoware_local_times),
        cmocka_unit_test(test_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
