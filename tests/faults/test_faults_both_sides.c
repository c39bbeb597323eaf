/* test_faults_both_sides.c: the fault-point matrix (fault_matrix.h) of edits on both sides:
 * different fields (both survive), the same field and the same entry (EspoCRM wins, the
 * notification names the Advoware value), and an Advoware number EspoCRM cannot take (it stays
 * in Advoware, named in syncErrorMessage, the party clean) (SPEC §5.2, §5.4). */
#include "fault_matrix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static const struct fm_scenario different_fields = {
    .name = "both_different_fields",
    .base = FM_BASE,
    .edits = {{FM_ADVO_FIELDS, NULL, "{\"titel\":\"Prof.\"}"},
              {FM_ESPO, NULL, "{\"vorname\":\"Vanessa\"}"}},
    .later = FM_LATER,
    .expect = {.fields = "{\"vorname\":\"Vanessa\",\"titel\":\"Prof.\"}",
               .phones = FM_BASE_PHONES,
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .later_fields = FM_LATER_FIELDS},
};

static const struct fm_scenario same_field = {
    .name = "both_same_field",
    .base = FM_BASE,
    .edits = {{FM_ADVO_FIELDS, NULL, "{\"vorname\":\"Irene\"}"},
              {FM_ESPO, NULL, "{\"vorname\":\"Isa\"}"}},
    .expect = {.fields = "{\"vorname\":\"Isa\",\"titel\":\"Dr.\"}",
               .phones = FM_BASE_PHONES,
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .conflict = "Irene"},
};

/* The office number changed in EspoCRM (Var5) and in Advoware (Var6). */
static const struct fm_scenario same_entry = {
    .name = "both_same_entry",
    .base = FM_BASE,
    .edits = {{FM_ADVO_SET, FM_P1, "{\"tlf\":\"0511 3333333\"}"},
              {FM_ESPO, NULL,
               "{\"phoneNumberData\":[{\"phoneNumber\":\"+49 511 7654321\",\"type\":\"Office\","
               "\"primary\":true},{\"phoneNumber\":\"" FM_M1 "\",\"type\":\"Mobile\","
               "\"primary\":false}]}"}},
    .expect = {.phones = "{\"+495117654321\":\"Office\",\"" FM_M1_E "\":\"Mobile\"}",
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .conflict = "0511 3333333"},
};

static const struct fm_scenario rejected = {
    .name = "rejected_number",
    .base = FM_BASE,
    .edits = {{FM_ADVO_ADD, NULL, "{\"tlf\":\"0511/ab\",\"kommKz\":1,\"bemerkung\":\"Zentrale\"}"}},
    .expect = {.phones = FM_BASE_PHONES,
               .emails = FM_BASE_EMAILS,
               .entries = 4,
               .skipped = "0511/ab"},
};

static void test_both_different_fields(void **state)
{
    (void)state;
    fm_run_scenario(&different_fields);
}

static void test_both_same_field(void **state)
{
    (void)state;
    fm_run_scenario(&same_field);
}

static void test_both_same_entry(void **state)
{
    (void)state;
    fm_run_scenario(&same_entry);
}

static void test_rejected_number(void **state)
{
    (void)state;
    fm_run_scenario(&rejected);
}

int main(void)
{
    fm_family = "both_sides";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_different_fields),
        cmocka_unit_test(test_both_same_field),
        cmocka_unit_test(test_both_same_entry),
        cmocka_unit_test(test_rejected_number),
    };
    return cmocka_run_group_tests(tests, fm_setup, fm_teardown);
}
