/* test_faults_fields.c: the fault-point matrix (fault_matrix.h) of the Stammdaten scenarios: a
 * party created with phones and e-mails, a field edited in EspoCRM, a field edited in Advoware
 * (SPEC §5.2, §5.3). After the first two runs a person edits another field in Advoware before
 * the recovery: a failed run's retry takes it over, no conflict. */
#include "fault_matrix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static const struct fm_scenario create = {
    .name = "create",
    .base = FM_BASE,
    .create = true,
    .later = FM_LATER,
    .expect = {.fields = "{\"name\":\"Matrix GmbH\",\"vorname\":\"Vera\",\"titel\":\"Dr.\","
                         "\"dateOfBirth\":\"1980-02-03\"}",
               .phones = FM_BASE_PHONES,
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .later_fields = FM_LATER_FIELDS},
};

static const struct fm_scenario espocrm_field = {
    .name = "espocrm_field",
    .base = FM_BASE,
    .edits = {{FM_ESPO, NULL, "{\"vorname\":\"Vanessa\"}"}},
    .later = FM_LATER,
    .expect = {.fields = "{\"vorname\":\"Vanessa\",\"titel\":\"Dr.\"}",
               .phones = FM_BASE_PHONES,
               .emails = FM_BASE_EMAILS,
               .entries = 3,
               .later_fields = FM_LATER_FIELDS},
};

static const struct fm_scenario advoware_field = {
    .name = "advoware_field",
    .base = FM_BASE,
    .edits = {{FM_ADVO_FIELDS, NULL, "{\"titel\":\"Prof.\"}"}},
    .expect = {.fields = "{\"vorname\":\"Vera\",\"titel\":\"Prof.\"}",
               .phones = FM_BASE_PHONES,
               .emails = FM_BASE_EMAILS,
               .entries = 3},
};

static void test_create(void **state)
{
    (void)state;
    fm_run_scenario(&create);
}

static void test_espocrm_field(void **state)
{
    (void)state;
    fm_run_scenario(&espocrm_field);
}

static void test_advoware_field(void **state)
{
    (void)state;
    fm_run_scenario(&advoware_field);
}

int main(void)
{
    fm_family = "fields";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_espocrm_field),
        cmocka_unit_test(test_advoware_field),
    };
    return cmocka_run_group_tests(tests, fm_setup, fm_teardown);
}
