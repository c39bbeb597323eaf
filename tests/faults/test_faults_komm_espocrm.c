/* test_faults_komm_espocrm.c: the fault-point matrix (fault_matrix.h) of Kommunikation edits in
 * EspoCRM (SPEC §5.4): Var1 (a number added), Var2 (an address deleted: a slot), Var5 (a number
 * changed), and slot reuse (a new address fills the empty slot of exactly its kommKz). */
#include "fault_matrix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NO_EMAILS "{\"emailAddressData\":[]}"

static const struct fm_scenario var1 = {
    .name = "var1_new_in_espocrm",
    .base = FM_BASE,
    .edits = {{FM_ESPO, NULL,
               "{\"phoneNumberData\":[{\"phoneNumber\":\"" FM_P1 "\",\"type\":\"Office\","
               "\"primary\":true},{\"phoneNumber\":\"" FM_M1 "\",\"type\":\"Mobile\","
               "\"primary\":false},{\"phoneNumber\":\"+49 171 2345678\",\"type\":\"Mobile\","
               "\"primary\":false}]}"}},
    .later = FM_LATER,
    .expect = {.phones = "{\"" FM_P1_E "\":\"Office\",\"" FM_M1_E "\":\"Mobile\","
                         "\"+491712345678\":\"Mobile\"}",
               .emails = FM_BASE_EMAILS,
               .entries = 4,
               .later_fields = FM_LATER_FIELDS},
};

static const struct fm_scenario var2 = {
    .name = "var2_deleted_in_espocrm",
    .base = FM_BASE,
    .edits = {{FM_ESPO, NULL, NO_EMAILS}},
    .later = FM_LATER,
    .expect = {.phones = FM_BASE_PHONES,
               .emails = "[]",
               .entries = 3,
               .slots = 1,
               .later_fields = FM_LATER_FIELDS},
};

static const struct fm_scenario var5 = {
    .name = "var5_changed_in_espocrm",
    .base = FM_BASE,
    .edits = {{FM_ESPO, NULL,
               "{\"phoneNumberData\":[{\"phoneNumber\":\"+49 511 7654321\",\"type\":\"Office\","
               "\"primary\":true},{\"phoneNumber\":\"" FM_M1 "\",\"type\":\"Mobile\","
               "\"primary\":false}]}"}},
    .later = FM_LATER,
    .expect = {.phones = "{\"+495117654321\":\"Office\",\"" FM_M1_E "\":\"Mobile\"}",
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .later_fields = FM_LATER_FIELDS},
};

static const struct fm_scenario slot_reuse = {
    .name = "slot_reuse",
    .base = FM_BASE,
    .prepare = {{FM_ESPO, NULL, NO_EMAILS}}, /* [ESPOCRM-SLOT:4] */
    .edits = {{FM_ESPO, NULL,
               "{\"emailAddressData\":[{\"emailAddress\":\"kanzlei@matrix-kanzlei.de\","
               "\"primary\":true}]}"}},
    .later = FM_LATER,
    .expect = {.phones = FM_BASE_PHONES,
               .emails = "[\"kanzlei@matrix-kanzlei.de\"]",
               .entries = 3,
               .slot_reused = true,
               .later_fields = FM_LATER_FIELDS},
};

static void test_var1_new_in_espocrm(void **state)
{
    (void)state;
    fm_run_scenario(&var1);
}

static void test_var2_deleted_in_espocrm(void **state)
{
    (void)state;
    fm_run_scenario(&var2);
}

static void test_var5_changed_in_espocrm(void **state)
{
    (void)state;
    fm_run_scenario(&var5);
}

static void test_slot_reuse(void **state)
{
    (void)state;
    fm_run_scenario(&slot_reuse);
}

int main(void)
{
    fm_family = "komm_espocrm";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_var1_new_in_espocrm),
        cmocka_unit_test(test_var2_deleted_in_espocrm),
        cmocka_unit_test(test_var5_changed_in_espocrm),
        cmocka_unit_test(test_slot_reuse),
    };
    return cmocka_run_group_tests(tests, fm_setup, fm_teardown);
}
