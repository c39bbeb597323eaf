/* test_view.c: vmhctl status as a person reads it (ctl/view.c, SPEC §11): the merge shown field
 * by field (in sync, push, pull, conflict), the Kommunikation plan entry by entry (Var1..Var6,
 * Match, skip, conflict, in sync, free slot) with each side's and the baseline's value, the view
 * of a party the skip rule left unplanned, and the text: tables, values cut, control characters
 * never reaching the terminal. */
#include "view.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "marker.h"

/* The row of rows whose key k is v; fails the test when there is none. */
static const json_t *row_of(const json_t *rows, const char *k, const char *v)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *s = json_string_value(json_object_get(r, k));
        if (s && strcmp(s, v) == 0)
            return r;
    }
    fail_msg("no row with %s = %s", k, v);
    return NULL;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(null)";
}

static void test_fields_show_every_action(void **state)
{
    (void)state;
    json_t *e =
        json_pack("{s:s,s:s,s:s}", "name", "Muster GmbH", "vorname", "Moritz", "titel", "Dr.");
    json_t *a = json_pack("{s:s,s:s,s:s,s:s}", "name", "Muster GmbH", "vorname", "Max", "titel",
                          "Prof.", "zusatz", "Z");
    json_t *b = json_pack("{s:s,s:s}", "name", "Muster GmbH", "vorname", "Max");
    struct merge_fallback fb = {false, false};
    struct merge_result m;
    assert_int_equal(merge_fields(e, a, b, &fb, &m), 0);
    json_t *rows = view_fields(&m);
    assert_int_equal(json_array_size(rows), MAP_NFIELDS);
    const json_t *r = row_of(rows, "field", "vorname");
    assert_string_equal(str(r, "espocrm"), "Moritz");
    assert_string_equal(str(r, "advoware"), "Max");
    assert_string_equal(str(r, "baseline"), "Max");
    assert_string_equal(str(r, "action"), "push → Advoware");
    assert_string_equal(str(row_of(rows, "field", "titel"), "action"), "conflict: EspoCRM wins");
    assert_string_equal(str(row_of(rows, "field", "zusatz"), "action"), "pull → EspoCRM");
    r = row_of(rows, "field", "name");
    assert_string_equal(str(r, "action"), "in sync");
    assert_true(json_is_null(json_object_get(row_of(rows, "field", "anrede"), "espocrm")));
    json_decref(rows);
    merge_result_free(&m);
    json_decref(e);
    json_decref(a);
    json_decref(b);
}

/* Builds a marker bemerkung (static storage per call site is the caller's). */
static char *mark(const char *value, int kz)
{
    char *s = marker_format(value, kz, NULL);
    assert_non_null(s);
    return s;
}

/* With a baseline: one entry of each kind, decided per entry (SPEC §5.2, §5.4). */
static void test_komm_entry_by_entry(void **state)
{
    (void)state;
    char *m_same = mark("+4951112345", 1), *m_mail = mark("max@example.com", 4),
         *m_gone = mark("+49511777", 1), *m_slot = marker_format(NULL, 2, NULL),
         *m_both = mark("+49511888", 3);
    const struct komm_espo espo[] = {
        {"+4951112345", KOMM_PHONE, "Office"},  /* in sync with #1 */
        {"max@example.com", KOMM_EMAIL, NULL},  /* Advoware changed #2: Var6 */
        {"info@example.com", KOMM_EMAIL, NULL}, /* new in EspoCRM: Var1 */
        {"+49511999", KOMM_PHONE, "Other"},     /* baseline knows it, no entry: Var3 */
        {"+49511444", KOMM_PHONE, "Mobile"},    /* EspoCRM changed #6 (Var5), Advoware too */
    };
    const struct komm_advo advo[] = {
        {"+49 511 12345", 0, m_same, 1},
        {"neu@example.com", 0, m_mail, 2},
        {"", 0, m_gone, 3},       /* emptied in Advoware, EspoCRM deleted it too: nothing left */
        {"", 0, m_slot, 4},       /* a free slot */
        {"0511/555", 0, NULL, 5}, /* new in Advoware: Var4 */
        {"0511 333", 0, m_both, 6},
        {"0511/ab", 0, NULL, 7}, /* EspoCRM cannot take it: skip */
    };
    const struct komm_base base[] = {
        {1, 1, "+4951112345", KOMM_PHONE}, {2, 4, "max@example.com", KOMM_EMAIL},
        {3, 1, "+49511777", KOMM_PHONE},   {6, 3, "+49511888", KOMM_PHONE},
        {9, 10, "+49511999", KOMM_PHONE},
    };
    struct komm_in in = {.espo = espo,
                         .nespo = 5,
                         .advo = advo,
                         .nadvo = 7,
                         .advo_changed = true,
                         .base = base,
                         .nbase = 5,
                         .has_base = true};
    struct komm_plan plan;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    json_t *rows = view_komm(&in, &plan, true);
    const json_t *r = row_of(rows, "entry", "TelGesch #1");
    assert_string_equal(str(r, "espocrm"), "+4951112345");
    assert_string_equal(str(r, "advoware"), "+49 511 12345");
    assert_string_equal(str(r, "baseline"), "+4951112345");
    assert_string_equal(str(r, "action"), "in sync");
    r = row_of(rows, "entry", "MailGesch #2");
    assert_string_equal(str(r, "var"), "Var6");
    assert_string_equal(str(r, "espocrm"), "max@example.com");
    assert_string_equal(str(r, "advoware"), "neu@example.com");
    assert_string_equal(str(r, "action"), "Var6: changed in Advoware → EspoCRM");
    r = row_of(rows, "entry", "TelGesch #3");
    assert_string_equal(str(r, "var"), "Var2"); /* deleted in EspoCRM: the entry becomes a slot */
    r = row_of(rows, "entry", "FaxGesch #4");
    assert_string_equal(str(r, "action"), "free slot");
    r = row_of(rows, "entry", "TelGesch #5");
    assert_string_equal(str(r, "var"), "Var4");
    assert_true(json_is_null(json_object_get(r, "espocrm")));
    r = row_of(rows, "entry", "Mobil #6");
    assert_string_equal(str(r, "var"), "conflict");
    assert_string_equal(str(r, "espocrm"), "+49511444");
    assert_string_equal(str(r, "baseline"), "+49511888");
    assert_non_null(strstr(str(r, "action"), "conflict: EspoCRM wins (Var5)"));
    r = row_of(rows, "entry", "TelGesch #7");
    assert_string_equal(str(r, "var"), "skip");
    r = row_of(rows, "espocrm", "info@example.com");
    assert_string_equal(str(r, "entry"), "e-mail");
    assert_string_equal(str(r, "var"), "Var1");
    r = row_of(rows, "espocrm", "+49511999");
    assert_string_equal(str(r, "var"), "Var3");
    assert_string_equal(str(r, "action"), "Var3: deleted in Advoware → removed from EspoCRM");
    json_decref(rows);
    komm_plan_free(&plan);
    free(m_same);
    free(m_mail);
    free(m_gone);
    free(m_slot);
    free(m_both);
}

/* Without a baseline the markers are the baseline; Var1 into a free slot of its kommKz shows on
 * the slot's row; Var2 empties an entry EspoCRM deleted. */
static void test_komm_markers_and_slots(void **state)
{
    (void)state;
    char *m_old = mark("+49511777", 1), *m_slot = marker_format(NULL, 3, NULL);
    const struct komm_espo espo[] = {{"+491705555", KOMM_PHONE, "Mobile"}};
    const struct komm_advo advo[] = {{"+49 511 777", 0, m_old, 11}, {"", 0, m_slot, 12}};
    struct komm_in in = {.espo = espo,
                         .nespo = 1,
                         .advo = advo,
                         .nadvo = 2,
                         .espo_changed = true,
                         .advo_changed = false};
    struct komm_plan plan;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    json_t *rows = view_komm(&in, &plan, true);
    assert_int_equal(json_array_size(rows), 2); /* the EspoCRM item lives on the slot's row */
    const json_t *r = row_of(rows, "entry", "TelGesch #11");
    assert_string_equal(str(r, "var"), "Var2");
    assert_string_equal(str(r, "baseline"), "+49511777"); /* the marker's value */
    r = row_of(rows, "entry", "Mobil #12");
    assert_string_equal(str(r, "var"), "Var1");
    assert_string_equal(str(r, "espocrm"), "+491705555");
    json_decref(rows);
    komm_plan_free(&plan);
    free(m_old);
    free(m_slot);
}

/* The skip rule left nothing to plan: equal values pair by value and are in sync. */
static void test_komm_unplanned_is_in_sync(void **state)
{
    (void)state;
    char *m = mark("max@example.com", 4);
    const struct komm_espo espo[] = {{"MAX@example.com", KOMM_EMAIL, NULL}};
    const struct komm_advo advo[] = {{"max@example.com", 0, m, 1}, {"www.example.com", 0, NULL, 2}};
    struct komm_in in = {.espo = espo, .nespo = 1, .advo = advo, .nadvo = 2};
    struct komm_plan plan = {0};
    json_t *rows = view_komm(&in, &plan, false);
    assert_int_equal(json_array_size(rows), 2);
    const json_t *r = row_of(rows, "entry", "MailGesch #1");
    assert_string_equal(str(r, "espocrm"), "MAX@example.com");
    assert_string_equal(str(r, "action"), "in sync");
    assert_true(json_is_null(json_object_get(r, "var")));
    r = row_of(rows, "entry", "Internet #2");
    assert_string_equal(str(r, "action"), "Advoware only (not for EspoCRM)");
    json_decref(rows);
    free(m);
}

static char *render(const json_t *doc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    view_status_text(f, doc);
    fclose(f);
    return buf;
}

static void test_text_is_safe_and_complete(void **state)
{
    (void)state;
    json_t *doc = json_pack(
        "{s:s,s:s,s:{s:s,s:s},s:{s:b,s:s,s:i},s:n,s:s,s:s,s:[{s:s,s:s,s:s,s:n,s:s}],s:s,s:[s]}",
        "id", "e1", "name", "Evil\nName", "espocrm", "syncStatus", "failed", "syncErrorMessage",
        "Var1: 2 succeeded, Var4: 1 failed (403)", "lock", "held", 1, "holder", "w-1:7", "ttlMs",
        1234, "link", "createMark", "2026-01-01 10:00:00", "case", "merged", "fields", "field",
        "vorname", "espocrm", "Ein sehr langer Vorname, der nicht in eine Spalte passt", "advoware",
        "Max", "baseline", "action", "push → Advoware", "nextRun", "merged: Advoware PUT yes",
        "problems", "syncErrorMessage: x\x1b[31m");
    char *text = render(doc);
    assert_non_null(strstr(text, "Beteiligter e1 \"Evil?Name\""));
    assert_non_null(strstr(text, "Var1: 2 succeeded, Var4: 1 failed (403)"));
    assert_non_null(strstr(text, "Lock: held by w-1:7, 1234 ms left"));
    assert_non_null(strstr(text, "Link (Redis): none"));
    assert_non_null(strstr(text, "Create mark: since 2026-01-01 10:00:00"));
    assert_non_null(strstr(text, "Stammdaten (case merged)"));
    assert_non_null(strstr(text, "Ein sehr langer Vorname, der nicht in..."));
    assert_non_null(strstr(text, "push → Advoware"));
    assert_non_null(strstr(text, "Next run: merged: Advoware PUT yes"));
    assert_non_null(strstr(text, "Problem: syncErrorMessage: x?[31m"));
    assert_null(strchr(text, '\x1b'));
    free(text);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_show_every_action),
        cmocka_unit_test(test_komm_entry_by_entry),
        cmocka_unit_test(test_komm_markers_and_slots),
        cmocka_unit_test(test_komm_unplanned_is_in_sync),
        cmocka_unit_test(test_text_is_safe_and_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
