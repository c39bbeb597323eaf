/* test_merge.c: the three-way merge of the Stammdaten (worker/merge.c, SPEC §5.2) by table:
 * every row of the §5.2 table per field, several fields deciding differently in one run, the
 * fallback without a baseline, name never cleared, the Advoware body of a merged run, the
 * conflict text, and the baseline codec. */
#include "merge.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

/* One field (vorname) through every row of the table: E, A, B (NULL = empty; "-" = no
 * baseline) and the fallback's whole-side changes. */
struct row {
    const char *e, *a, *b;
    bool espo_changed, advo_changed; /* used only without a baseline */
    enum merge_action want;
    enum merge_case mcase;
};

static const struct row rows[] = {
    /* E vs B, A vs B, E vs A (SPEC §5.2) */
    {"Max", "Max", "Max", false, false, MERGE_IN_SYNC, MCASE_NO_CHANGE},
    {"Moritz", "Moritz", "Max", false, false, MERGE_IN_SYNC, MCASE_NO_CHANGE}, /* both, equal */
    {"Moritz", "Max", "Max", false, false, MERGE_PUSH, MCASE_ESPOCRM_NEWER},
    {"Max", "Moritz", "Max", false, false, MERGE_PULL, MCASE_ADVOWARE_NEWER},
    {"Erika", "Moritz", "Max", false, false, MERGE_CONFLICT, MCASE_CONFLICT},
    /* empty values are values too */
    {NULL, "Max", "Max", false, false, MERGE_PUSH, MCASE_ESPOCRM_NEWER},   /* cleared in EspoCRM */
    {"Max", NULL, "Max", false, false, MERGE_PULL, MCASE_ADVOWARE_NEWER},  /* cleared in Advoware */
    {"Max", "Moritz", NULL, false, false, MERGE_CONFLICT, MCASE_CONFLICT}, /* both filled in */
    {NULL, "Moritz", NULL, false, false, MERGE_PULL, MCASE_ADVOWARE_NEWER},
    /* the whole-side flags never matter with a baseline */
    {"Moritz", "Max", "Max", false, true, MERGE_PUSH, MCASE_ESPOCRM_NEWER},
    {"Max", "Moritz", "Max", true, false, MERGE_PULL, MCASE_ADVOWARE_NEWER},
    /* without a baseline: the fallback of §5.2 */
    {"Max", "Max", "-", true, true, MERGE_IN_SYNC, MCASE_NO_CHANGE},
    {"Moritz", "Max", "-", true, false, MERGE_PUSH, MCASE_ESPOCRM_NEWER},
    {"Moritz", "Max", "-", false, true, MERGE_PULL, MCASE_ADVOWARE_NEWER},
    {"Moritz", "Max", "-", true, true, MERGE_CONFLICT, MCASE_CONFLICT},
    {"Moritz", "Max", "-", false, false, MERGE_PUSH, MCASE_ESPOCRM_NEWER}, /* master wins */
};

static json_t *entity_with(const char *vorname)
{
    json_t *e = json_pack("{s:s,s:s,s:s}", "id", "e1", "name", "Muster GmbH", "titel", "Dr.");
    json_object_set_new(e, "vorname", vorname ? json_string(vorname) : json_null());
    return e;
}

static json_t *advo_with(const char *vorname)
{
    json_t *a = json_pack("{s:I,s:s,s:s}", "betNr", (json_int_t)1001, "name", "Muster GmbH",
                          "titel", "Dr.");
    json_object_set_new(a, "vorname", vorname ? json_string(vorname) : json_null());
    return a;
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        json_t *e = entity_with(r->e), *a = advo_with(r->a), *b = NULL;
        bool has_base = !r->b || strcmp(r->b, "-") != 0;
        if (has_base) {
            b = entity_with(r->b);
            json_object_del(b, "id");
        }
        struct merge_fallback fb = {r->espo_changed, r->advo_changed};
        struct merge_result m;
        assert_int_equal(merge_fields(e, a, b, &fb, &m), 0);
        if (m.f[1].action != r->want || m.mcase != r->mcase)
            fail_msg("row %zu: %s/%s, want %s/%s", i, merge_action_name(m.f[1].action),
                     merge_case_name(m.mcase), merge_action_name(r->want),
                     merge_case_name(r->mcase));
        assert_string_equal(m.f[1].name, "vorname");
        assert_int_equal(m.had_baseline, has_base);
        for (size_t k = 0; k < MAP_NFIELDS; k++) /* the other fields are equal on both sides */
            assert_true(k == 1 || m.f[k].action == MERGE_IN_SYNC);
        merge_result_free(&m);
        json_decref(e);
        json_decref(a);
        json_decref(b);
    }
}

/* SPEC §5.2: conflicts are per field. An Advoware edit of a field nobody touched in EspoCRM
 * survives an EspoCRM edit of another field, and the run pushes and pulls at once. */
static void test_fields_decide_alone(void **state)
{
    (void)state;
    json_t *base = json_pack("{s:s,s:s,s:s,s:s}", "name", "Muster GmbH", "vorname", "Max", "titel",
                             "Dr.", "zusatz", "alt");
    json_t *e = json_pack("{s:s,s:s,s:s,s:s}", "name", "Muster GmbH", "vorname", "Moritz", "titel",
                          "Dr.", "zusatz", "neu (EspoCRM)");
    json_t *a =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", "Muster GmbH", "vorname", "Max", "titel",
                  "Prof.", "zusatz", "neu (Advoware)", "geburtsdatum", "1970-03-01T00:00:00");
    struct merge_result m;
    assert_int_equal(merge_fields(e, a, base, NULL, &m), 0);
    assert_int_equal(m.f[1].action, MERGE_PUSH);     /* vorname: EspoCRM's edit */
    assert_int_equal(m.f[3].action, MERGE_PULL);     /* titel: Advoware's edit */
    assert_int_equal(m.f[6].action, MERGE_CONFLICT); /* zusatz: both */
    assert_int_equal(m.f[7].action, MERGE_PULL);     /* dateOfBirth: new in Advoware */
    assert_int_equal(m.mcase, MCASE_CONFLICT);
    assert_true(merge_needs_push(&m));

    json_t *pull = merge_pull_attrs(&m);
    json_t *want_pull = json_pack("{s:s,s:s}", "titel", "Prof.", "dateOfBirth", "1970-03-01");
    assert_true(json_equal(pull, want_pull));
    /* Advoware's PUT carries the merged state: its own titel stays, EspoCRM's vorname goes in */
    json_t *body = merge_advo_body(&m);
    assert_string_equal(json_string_value(json_object_get(body, "vorname")), "Moritz");
    assert_string_equal(json_string_value(json_object_get(body, "titel")), "Prof.");
    assert_string_equal(json_string_value(json_object_get(body, "zusatz")), "neu (EspoCRM)");
    assert_string_equal(json_string_value(json_object_get(body, "geburtsdatum")),
                        "1970-03-01T00:00:00");
    json_t *agreed = merge_agreed_fields(&m);
    assert_string_equal(json_string_value(json_object_get(agreed, "titel")), "Prof.");
    assert_string_equal(json_string_value(json_object_get(agreed, "zusatz")), "neu (EspoCRM)");

    char text[512];
    merge_conflict_text(&m, text, sizeof text);
    assert_string_equal(text, "Konflikt gelöst: EspoCRM-Daten wurden übernommen (zusatz: "
                              "Advoware hatte 'neu (Advoware)')");
    json_decref(agreed);
    json_decref(body);
    json_decref(want_pull);
    json_decref(pull);
    merge_result_free(&m);
    json_decref(base);
    json_decref(e);
    json_decref(a);
}

/* name is required in EspoCRM: an Advoware record without one never clears it. */
static void test_name_never_cleared(void **state)
{
    (void)state;
    json_t *base = json_pack("{s:s}", "name", "Muster GmbH");
    json_t *e = json_pack("{s:s}", "name", "Muster GmbH");
    json_t *a = json_pack("{s:n}", "name");
    struct merge_result m;
    assert_int_equal(merge_fields(e, a, base, NULL, &m), 0);
    assert_int_equal(m.f[0].action, MERGE_IN_SYNC);
    json_t *pull = merge_pull_attrs(&m);
    assert_int_equal(json_object_size(pull), 0);
    json_decref(pull);
    merge_result_free(&m);
    json_decref(base);
    json_decref(e);
    json_decref(a);
}

static void test_two_conflicts_named(void **state)
{
    (void)state;
    json_t *base = json_pack("{s:s,s:s,s:s}", "name", "N", "vorname", "A", "titel", "T");
    json_t *e = json_pack("{s:s,s:s,s:s}", "name", "N", "vorname", "B", "titel", "U");
    json_t *a = json_pack("{s:s,s:s,s:n}", "name", "N", "vorname", "C", "titel");
    struct merge_result m;
    assert_int_equal(merge_fields(e, a, base, NULL, &m), 0);
    char text[512];
    merge_conflict_text(&m, text, sizeof text);
    assert_string_equal(text, "Konflikt gelöst: EspoCRM-Daten wurden übernommen (vorname: "
                              "Advoware hatte 'C'; titel: Advoware hatte '')");
    char small[20]; /* truncation stays terminated */
    merge_conflict_text(&m, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    merge_result_free(&m);
    json_decref(base);
    json_decref(e);
    json_decref(a);
}

static void test_baseline_codec(void **state)
{
    (void)state;
    json_t *fields = json_pack("{s:s,s:n}", "name", "Muster GmbH", "vorname");
    json_t *komm = json_pack("[{s:I,s:i,s:s,s:s}]", "id", (json_int_t)7, "kz", 1, "value",
                             "+4951112345", "espo", "phone");
    char *text = merge_baseline_format(fields, komm, "R1", "0123456789abcdef");
    assert_non_null(text);
    json_t *b = merge_baseline_parse(text);
    assert_non_null(b);
    assert_true(json_equal(json_object_get(b, "fields"), fields));
    assert_true(json_equal(json_object_get(b, "komm"), komm));
    assert_string_equal(json_string_value(json_object_get(b, "rowId")), "R1");
    json_decref(b);
    free(text);
    text = merge_baseline_format(fields, NULL, NULL, NULL); /* entries unknown: no "komm" */
    b = merge_baseline_parse(text);
    assert_non_null(b);
    assert_null(json_object_get(b, "komm"));
    json_decref(b);
    free(text);

    static const char *const unreadable[] = {
        NULL,
        "",
        "not json",
        "[]",
        "{\"v\":2,\"fields\":{}}",
        "{\"v\":1}",
        "{\"v\":1,\"fields\":[]}",
        "{\"fields\":{}}",
    };
    for (size_t i = 0; i < sizeof unreadable / sizeof unreadable[0]; i++)
        assert_null(merge_baseline_parse(unreadable[i]));
    json_decref(fields);
    json_decref(komm);
}

/* The write-ahead baseline (merge.h): a tentative item Advoware holds landed, else its prev
 * stands; entries likewise (a change, a slot, a POST whose id was unknown). */
static void test_write_ahead_baseline(void **state)
{
    (void)state;
    json_t *base = json_pack(
        "{s:i,s:{s:s,s:s,s:n},s:[{s:i,s:i,s:s,s:s},{s:i,s:i,s:s,s:s},{s:i,s:i,s:s,s:s}]}", "v", 1,
        "fields", "name", "Muster GmbH", "vorname", "Ina", "titel", "komm", "id", 1, "kz", 1,
        "value", "+4951112345", "espo", "phone", "id", 2, "kz", 4, "value", "a@example.com", "espo",
        "email", "id", 3, "kz", 1, "value", "+4951100000", "espo", "phone");
    /* the run pushes vorname Isa and titel Dr.; entry 1 gets a new number (Var5), entry 2 is
     * emptied (Var2), a new e-mail is POSTed (Var1); entry 3 stands */
    json_t *fields =
        json_pack("{s:s,s:s,s:s}", "name", "Muster GmbH", "vorname", "Isa", "titel", "Dr.");
    json_t *tent = json_pack(
        "[{s:i,s:i,s:s,s:s,s:{s:i,s:i,s:s,s:s}},{s:i,s:b,s:{s:i,s:i,s:s,s:s}},{s:i,s:i,s:s,s:s,"
        "s:n}]",
        "id", 1, "kz", 1, "value", "+4930987654", "espo", "phone", "prev", "id", 1, "kz", 1,
        "value", "+4951112345", "espo", "phone", "id", 2, "removed", 1, "prev", "id", 2, "kz", 4,
        "value", "a@example.com", "espo", "email", "id", 0, "kz", 4, "value", "neu@example.com",
        "espo", "email", "prev");
    json_t *ahead = merge_pending_make(base, fields, tent);
    assert_non_null(ahead);
    /* everything landed: Advoware holds the new values (formats of its own) */
    json_t *advo = json_pack("{s:s,s:s,s:s,s:[{s:i,s:s},{s:i,s:s},{s:i,s:s},{s:i,s:s}]}", "name",
                             "Muster GmbH", "vorname", "Isa", "titel", "Dr.", "kommunikation", "id",
                             1, "tlf", "030 987654", "id", 2, "tlf", "", "id", 3, "tlf",
                             "0511/00000", "id", 9, "tlf", "Neu@Example.com");
    json_t *b = merge_pending_resolve(ahead, advo);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "fields"), "vorname")),
                        "Isa");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "fields"), "titel")),
                        "Dr.");
    char *text = json_dumps(json_object_get(b, "komm"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(strstr(text, "\"id\":1,\"kz\":1,\"value\":\"+4930987654\""));
    assert_null(strstr(text, "\"id\":2")); /* the slot landed: no entry */
    assert_non_null(strstr(text, "\"id\":3"));
    assert_non_null(strstr(text, "\"id\":9,\"kz\":4,\"value\":\"neu@example.com\""));
    free(text);
    json_decref(b);
    json_decref(advo);
    /* nothing landed (the push and every entry call failed): the baseline before */
    advo = json_pack("{s:s,s:s,s:[{s:i,s:s},{s:i,s:s},{s:i,s:s}]}", "name", "Muster GmbH",
                     "vorname", "Ina", "kommunikation", "id", 1, "tlf", "0511/12345", "id", 2,
                     "tlf", "a@example.com", "id", 3, "tlf", "+4951100000");
    b = merge_pending_resolve(ahead, advo);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "fields"), "vorname")),
                        "Ina");
    assert_true(json_is_null(json_object_get(json_object_get(b, "fields"), "titel")));
    json_t *got = json_object_get(b, "komm"), *e; /* the same entries (in any order) */
    size_t i;
    assert_int_equal(json_array_size(got), json_array_size(json_object_get(base, "komm")));
    json_array_foreach(json_object_get(base, "komm"), i, e)
    {
        bool found = false;
        for (size_t j = 0; j < json_array_size(got); j++)
            found |= json_equal(json_array_get(got, j), e);
        assert_true(found);
    }
    json_decref(b);
    json_decref(advo);
    json_decref(ahead);
    json_decref(tent);
    json_decref(fields);
    json_decref(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fields_decide_alone),
        cmocka_unit_test(test_name_never_cleared),
        cmocka_unit_test(test_two_conflicts_named),
        cmocka_unit_test(test_baseline_codec),
        cmocka_unit_test(test_write_ahead_baseline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
