/* test_preflight.c: the worker's start-up check of the EspoCRM side (worker/preflight.c, SPEC §6,
 * §5.5) against the recorded answers of a real EspoCRM 9.1.5 (12_metadata, 01_app_user) and
 * against the same answers with a piece missing (read through tests/support/recorded.h). */
#include "preflight.h"
#include "recorded.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

/* The recorded entityDefs with advowareSyncBaseline added (the recording predates SPEC v2). */
static json_t *defs_v2(void)
{
    json_t *defs = rec_response_body("12_metadata.json", 0);
    json_object_set_new(json_object_get(defs, "fields"), "advowareSyncBaseline",
                        json_pack("{s:s}", "type", "text"));
    return defs;
}

static bool has_problem(const struct preflight *p, const char *needle)
{
    for (size_t i = 0; i < p->nproblems; i++) {
        if (strstr(p->problems[i], needle))
            return true;
    }
    return false;
}

static void test_recorded_instance(void **state)
{
    (void)state;
    struct preflight p = {0};
    json_t *defs = rec_response_body("12_metadata.json", 0);
    preflight_check_defs(defs, &p);
    /* Recorded before SPEC v2: exactly the baseline field is missing, and named. */
    assert_int_equal(p.nproblems, 1);
    assert_non_null(strstr(p.problems[0], "advowareSyncBaseline"));
    assert_int_equal(p.ntypes, 4);
    assert_string_equal(p.types[0], "Office");
    assert_string_equal(p.types[3], "Other");
    assert_string_equal(p.default_type, "Office");
    json_decref(defs);

    memset(&p, 0, sizeof p);
    defs = defs_v2();
    preflight_check_defs(defs, &p);
    assert_int_equal(p.nproblems, 0);
    json_decref(defs);
}

static void test_missing_pieces(void **state)
{
    (void)state;
    static const char *const dropped[] = {"betnr", "syncStatus", "kommunikationHash", "vorname",
                                          "dateOfBirth"};
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++) {
        struct preflight p = {0};
        json_t *defs = defs_v2();
        json_object_del(json_object_get(defs, "fields"), dropped[i]);
        preflight_check_defs(defs, &p);
        assert_int_equal(p.nproblems, 1);
        assert_true(has_problem(&p, dropped[i]));
        json_decref(defs);
    }

    struct preflight p = {0};
    json_t *defs = defs_v2();
    json_object_set_new(defs, "optimisticConcurrencyControl", json_false());
    json_object_set_new(json_object_get(json_object_get(defs, "fields"), "betnr"), "type",
                        json_string("varchar"));
    preflight_check_defs(defs, &p);
    assert_int_equal(p.nproblems, 2);
    assert_true(has_problem(&p, "optimisticConcurrencyControl"));
    assert_true(has_problem(&p, "betnr has type varchar, needs int"));
    json_decref(defs);

    memset(&p, 0, sizeof p);
    preflight_check_defs(json_null(), &p); /* Metadata answers null for an unknown entity */
    assert_int_equal(p.nproblems, 1);
    assert_true(has_problem(&p, "no entity CBeteiligte"));
}

static void test_person_template(void **state)
{
    (void)state;
    struct preflight p = {0};
    json_t *defs = defs_v2();
    json_t *phone = json_object_get(json_object_get(defs, "fields"), "phoneNumber");
    json_object_set_new(phone, "typeList",
                        json_pack("[s,s,s,s,s]", "Mobile", "Office", "Home", "Fax", "Other"));
    json_object_set_new(phone, "defaultType", json_string("Mobile"));
    preflight_check_defs(defs, &p);
    assert_int_equal(p.nproblems, 0);
    assert_int_equal(p.ntypes, 5);
    assert_string_equal(p.types[2], "Home");
    assert_string_equal(p.default_type, "Mobile");
    json_decref(defs);
}

static void test_app_user(void **state)
{
    (void)state;
    struct preflight p = {0};
    json_t *user = rec_response_body("01_app_user.json", 0);
    preflight_check_user(user, &p);
    assert_int_equal(p.nproblems, 0);
    assert_string_equal(p.user_id, "6b0f2ac93ac0e6b02");
    assert_false(p.can_message); /* recorded with Message permission "no" (cases 01-10) */
    json_object_set_new(json_object_get(user, "acl"), "messagePermission", json_string("all"));
    preflight_check_user(user, &p);
    assert_true(p.can_message);
    json_decref(user);

    memset(&p, 0, sizeof p);
    preflight_check_user(json_null(), &p);
    assert_int_equal(p.nproblems, 1);
    assert_false(p.can_message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_instance),
        cmocka_unit_test(test_missing_pieces),
        cmocka_unit_test(test_person_template),
        cmocka_unit_test(test_app_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
