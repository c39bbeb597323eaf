/* test_faults_komm_advoware.c: the fault-point matrix (fault_matrix.h) of Kommunikation edits a
 * person makes in Advoware (SPEC §5.4): Var3 (an entry deleted, or emptied), Var4 (an entry
 * added, typed nationally), Var6 (an entry changed), and a number typed into an empty slot. */
#include "fault_matrix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static const struct fm_scenario var3_deleted = {
    .name = "var3_deleted_in_advoware",
    .base = FM_BASE,
    .edits = {{FM_ADVO_DELETE, FM_M1, NULL}},
    .expect = {.phones = "{\"" FM_P1_E "\":\"Office\"}", .emails = FM_BASE_EMAILS, .entries = 2},
};

static const struct fm_scenario var3_emptied = {
    .name = "var3_emptied_in_advoware",
    .base = FM_BASE,
    .edits = {{FM_ADVO_SET, FM_M1, "{\"tlf\":\"\"}"}},
    .expect = {.phones = "{\"" FM_P1_E "\":\"Office\"}",
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .slots = 1},
};

static const struct fm_scenario var4 = {
    .name = "var4_new_in_advoware",
    .base = FM_BASE,
    .edits = {{FM_ADVO_ADD, NULL,
               "{\"tlf\":\"030 9876543\",\"kommKz\":1,\"bemerkung\":\"Sekretariat\"}"}},
    .expect = {.phones = "{\"" FM_P1_E "\":\"Office\",\"" FM_M1_E "\":\"Mobile\","
                         "\"+49309876543\":\"Office\"}",
               .emails = FM_BASE_EMAILS,
               .entries = 4},
};

static const struct fm_scenario var6 = {
    .name = "var6_changed_in_advoware",
    .base = FM_BASE,
    .edits = {{FM_ADVO_SET, FM_P1, "{\"tlf\":\"0511 7777777\"}"}},
    .expect = {.phones = "{\"+495117777777\":\"Office\",\"" FM_M1_E "\":\"Mobile\"}",
               .emails = FM_BASE_EMAILS,
               .entries = 3},
};

/* The office number deleted in EspoCRM leaves [ESPOCRM-SLOT:1]; a person types a number into
 * it in Advoware: an entry added in Advoware (Var4), never free space to overwrite. */
static const struct fm_scenario slot_filled = {
    .name = "slot_filled_in_advoware",
    .base = FM_BASE,
    .prepare = {{FM_ESPO, NULL,
                 "{\"phoneNumberData\":[{\"phoneNumber\":\"" FM_M1 "\",\"type\":\"Mobile\","
                 "\"primary\":true}]}"}},
    .edits = {{FM_ADVO_SET, "", "{\"tlf\":\"0511 4440001\"}"}},
    .expect = {.phones = "{\"+495114440001\":\"Office\",\"" FM_M1_E "\":\"Mobile\"}",
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .slot_reused = true},
};

static void test_var3_deleted_in_advoware(void **state)
{
    (void)state;
    fm_run_scenario(&var3_deleted);
}

static void test_var3_emptied_in_advoware(void **state)
{
    (void)state;
    fm_run_scenario(&var3_emptied);
}

static void test_var4_new_in_advoware(void **state)
{
    (void)state;
    fm_run_scenario(&var4);
}

static void test_var6_changed_in_advoware(void **state)
{
    (void)state;
    fm_run_scenario(&var6);
}

static void test_slot_filled_in_advoware(void **state)
{
    (void)state;
    fm_run_scenario(&slot_filled);
}

int main(void)
{
    fm_family = "komm_advoware";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_var3_deleted_in_advoware),
        cmocka_unit_test(test_var3_emptied_in_advoware),
        cmocka_unit_test(test_var4_new_in_advoware),
        cmocka_unit_test(test_var6_changed_in_advoware),
        cmocka_unit_test(test_slot_filled_in_advoware),
    };
    return cmocka_run_group_tests(tests, fm_setup, fm_teardown);
}
