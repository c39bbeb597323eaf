/* test_decide.c: what a party's next run decides, without calls (worker/decide.c, SPEC §5.2,
 * §5.4): a create plans its entries as new; with a baseline values decide field by field and
 * entry by entry; without one the fallback decides from the status, the EspoCRM-pending mark and
 * Advoware's rowId; a conflict plans the Kommunikation towards Advoware. */
#include "decide.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "phone.h"

static json_t *entity(const char *status, const char *vorname, const char *baseline)
{
    json_t *e =
        json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:[{s:s,s:s,s:b}],s:[]}", "id", "e1", "name",
                  "Muster GmbH", "vorname", vorname, "syncStatus", status, "betnr",
                  (json_int_t)100001, "advowareRowId", "R1", "advowareLastSync",
                  "2026-01-01 10:00:00", "modifiedAt", "2026-01-01 10:00:00", "phoneNumberData",
                  "phoneNumber", "+4951112345", "type", "Office", "primary", 1, "emailAddressData");
    if (baseline)
        json_object_set_new(e, "advowareSyncBaseline", json_string(baseline));
    return e;
}

static json_t *record(const char *rowid, const char *vorname)
{
    return json_pack("{s:I,s:s,s:s,s:s,s:s,s:[{s:I,s:s,s:s,s:i,s:s}]}", "betNr", (json_int_t)100001,
                     "rowId", rowid, "geaendertAm", "2026-01-01T11:00:00", "name", "Muster GmbH",
                     "vorname", vorname, "kommunikation", "id", (json_int_t)7, "rowId", "K1", "tlf",
                     "+49 511 12345", "kommKz", 0, "bemerkung", "[ESPOCRM:KzQ5NTExMTIzNDU=:1]");
}

static char *baseline_of(const char *vorname)
{
    json_t *fields = json_pack("{s:s,s:s}", "name", "Muster GmbH", "vorname", vorname);
    json_t *komm = json_pack("[{s:I,s:i,s:s,s:s}]", "id", (json_int_t)7, "kz", 1, "value",
                             "+4951112345", "espo", "phone");
    char *text = merge_baseline_format(fields, komm, "R1", NULL);
    json_decref(fields);
    json_decref(komm);
    return text;
}

static void test_create_plans_entries_as_new(void **state)
{
    (void)state;
    json_t *e = entity("pending_sync", "Max", NULL);
    struct decide_in in = {.entity = e};
    struct decide d;
    assert_int_equal(decide_make(&in, &d), 0);
    assert_true(d.create);
    assert_true(ksync_planned(d.ks));
    const struct komm_plan *p = ksync_plan(d.ks);
    assert_int_equal(p->n, 1);
    assert_int_equal(p->a[0].op, KOP_ADVO_POST);
    assert_int_equal(p->a[0].var, KVAR_1);
    decide_free(&d);
    json_decref(e);
}

static void test_baseline_decides_by_values(void **state)
{
    (void)state;
    char *b = baseline_of("Max");
    json_t *e = entity("dirty", "Moritz", b), *a = record("R1", "Max");
    struct decide_in in = {.entity = e, .advo = a};
    struct decide d;
    assert_int_equal(decide_make(&in, &d), 0);
    assert_non_null(d.baseline);
    assert_int_equal(d.m.mcase, MCASE_ESPOCRM_NEWER);
    assert_int_equal(d.m.f[1].action, MERGE_PUSH); /* vorname */
    assert_int_equal(ksync_plan(d.ks)->n, 0);      /* entries as the baseline holds them */
    decide_free(&d);
    json_decref(e);
    json_decref(a);

    /* Advoware changed vorname too: a conflict; the entries are planned towards Advoware */
    e = entity("dirty", "Moritz", b);
    a = record("R2", "Erika");
    in = (struct decide_in){.entity = e, .advo = a};
    assert_int_equal(decide_make(&in, &d), 0);
    assert_int_equal(d.m.mcase, MCASE_CONFLICT);
    assert_int_equal(ksync_input(d.ks)->dir, KOMM_TO_ADVOWARE);
    decide_free(&d);
    json_decref(e);
    json_decref(a);
    free(b);
}

static void test_fallback_without_baseline(void **state)
{
    (void)state;
    static const struct {
        const char *status, *rowid;
        bool pending;
        enum merge_case want;
    } cases[] = {
        {"clean", "R1", false, MCASE_ESPOCRM_NEWER},  /* neither changed, values differ: master */
        {"dirty", "R1", false, MCASE_ESPOCRM_NEWER},  /* EspoCRM changed */
        {"clean", "R2", false, MCASE_ADVOWARE_NEWER}, /* Advoware's rowId moved */
        {"dirty", "R2", false, MCASE_CONFLICT},       /* both */
        {"failed", "R2", true, MCASE_CONFLICT}, /* a failed run left EspoCRM changes pending */
        {"failed", "R2", false, MCASE_ADVOWARE_NEWER},
        {"clean", "R2", true, MCASE_ADVOWARE_NEWER}, /* the mark is not read for a clean party */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *e = entity(cases[i].status, "Moritz", NULL), *a = record(cases[i].rowid, "Max");
        struct decide_in in = {.entity = e, .advo = a, .espo_pending = cases[i].pending};
        struct decide d;
        assert_int_equal(decide_make(&in, &d), 0);
        assert_null(d.baseline);
        if (d.m.mcase != cases[i].want)
            fail_msg("case %zu: %s, want %s", i, merge_case_name(d.m.mcase),
                     merge_case_name(cases[i].want));
        decide_free(&d);
        json_decref(e);
        json_decref(a);
    }
}

/* The run's baseline (decide_baseline): the entity's; else what a create posted; an earlier
 * run's write-ahead baseline resolved against Advoware replaces either; nothing without one. */
static void test_run_baseline(void **state)
{
    (void)state;
    char *text = baseline_of("Max");
    /* the link of the create: its betNr (the entity's) and what it posted; another betNr's */
    json_t *posted = json_pack("{s:I,s:{s:s,s:s}}", "betnr", (json_int_t)100001, "posted", "name",
                               "Muster GmbH", "vorname", "Gepostet");
    json_t *other = json_pack("{s:I,s:{s:s,s:s}}", "betnr", (json_int_t)100002, "posted", "name",
                              "Muster GmbH", "vorname", "Anderer");
    json_t *b0 = merge_baseline_parse(text);
    json_t *pushed = json_pack("{s:s,s:s}", "name", "Muster GmbH", "vorname", "Moritz");
    json_t *ahead = merge_pending_make(b0, pushed, NULL); /* the run pushed vorname Moritz */
    json_t *landed = record("R2", "Moritz"), *lost = record("R1", "Max");
    static const struct {
        bool base;
        int link; /* 0: none, 1: the create's, 2: another betNr's */
        bool ahead, landed;
        const char *want; /* vorname of the baseline, NULL: none */
        bool from_ahead;
    } cases[] = {
        {true, 0, false, false, "Max", false},
        {false, 1, false, false, "Gepostet", false},
        {false, 0, false, false, NULL, false},
        {false, 0, true, true, NULL, false},   /* without a baseline there is nothing ahead */
        {true, 0, true, true, "Moritz", true}, /* the push landed, its answer was lost */
        {true, 0, true, false, "Max", true},   /* it did not land: the value before stands */
        {false, 1, true, false, "Max", true},  /* the create's PUT and a run after it */
        {false, 2, false, false, NULL, false}, /* a link of another betNr */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *e = entity("failed", "Moritz", cases[i].base ? text : NULL);
        bool from;
        const json_t *link = cases[i].link == 1 ? posted : cases[i].link == 2 ? other : NULL;
        json_t *b = decide_baseline(e, link, cases[i].ahead ? ahead : NULL,
                                    cases[i].landed ? landed : lost, &from);
        const char *got =
            json_string_value(json_object_get(json_object_get(b, "fields"), "vorname"));
        if (cases[i].want ? !got || strcmp(got, cases[i].want) != 0 : b != NULL)
            fail_msg("case %zu: vorname %s, want %s", i, got ? got : "(none)",
                     cases[i].want ? cases[i].want : "(none)");
        assert_int_equal(from, cases[i].from_ahead);
        json_decref(b);
        json_decref(e);
    }
    /* the write-ahead key follows the baseline's text: a final PUT since makes it stale */
    char k1[33], k2[33], k3[33];
    json_t *e1 = entity("clean", "Max", text), *e2 = entity("clean", "Max", NULL);
    json_t *e3 = entity("clean", "Max", "{\"v\":1,\"fields\":{}}");
    decide_based_on(e1, k1);
    decide_based_on(e2, k2);
    decide_based_on(e3, k3);
    assert_int_equal(strlen(k1), 32);
    assert_string_equal(k2, "d41d8cd98f00b204e9800998ecf8427e"); /* MD5 of "" */
    assert_string_not_equal(k1, k3);
    json_decref(e1);
    json_decref(e2);
    json_decref(e3);
    json_decref(landed);
    json_decref(lost);
    json_decref(ahead);
    json_decref(pushed);
    json_decref(b0);
    json_decref(posted);
    json_decref(other);
    free(text);
}

int main(void)
{
    phone_set_default_region("DE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_plans_entries_as_new),
        cmocka_unit_test(test_baseline_decides_by_values),
        cmocka_unit_test(test_fallback_without_baseline),
        cmocka_unit_test(test_run_baseline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
