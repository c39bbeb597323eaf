/* test_doctor.c: vmhctl doctor's verdicts (ctl/doctor.c, SPEC §11) by table: the five topics
 * (missing, unequal partition counts), Redis persistence (AOF or RDB on; both off; a managed
 * Redis refusing CONFIG), the EspoCRM set-up and Message permission from the worker's own
 * check, the three webhooks; every failure says what to do; the JSON form. */
#include "doctor.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static void test_topics(void **state)
{
    (void)state;
    static const struct {
        int counts[KAFKA_TOPIC_COUNT];
        enum doctor_verdict v;
        const char *detail;
    } cases[] = {
        {{12, 12, 12, 12, 12}, DOCTOR_OK, "vmh.beteiligte.* present, 12 partitions each"},
        {{12, 12, 0, 12, 0}, DOCTOR_FAIL, "missing: vmh.beteiligte.delete, vmh.beteiligte.dlq"},
        {{12, 12, 6, 12, 12},
         DOCTOR_FAIL,
         "unequal partition counts: create 12, update 12, delete 6, sync_check 12, dlq 12"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct doctor_line l;
        doctor_topics(&l, "vmh.beteiligte", cases[i].counts);
        assert_int_equal(l.v, cases[i].v);
        assert_string_equal(l.detail, cases[i].detail);
        if (l.v == DOCTOR_FAIL)
            assert_non_null(strstr(l.fix, "partition"));
    }
}

static void test_persistence(void **state)
{
    (void)state;
    static const struct {
        enum redis_persist aof, rdb;
        enum doctor_verdict v;
    } cases[] = {
        {REDIS_PERSIST_ON, REDIS_PERSIST_OFF, DOCTOR_OK},
        {REDIS_PERSIST_OFF, REDIS_PERSIST_ON, DOCTOR_OK},
        {REDIS_PERSIST_ON, REDIS_PERSIST_UNKNOWN, DOCTOR_OK},
        {REDIS_PERSIST_OFF, REDIS_PERSIST_OFF, DOCTOR_FAIL},
        {REDIS_PERSIST_OFF, REDIS_PERSIST_UNKNOWN, DOCTOR_UNKNOWN}, /* CONFIG refused */
        {REDIS_PERSIST_UNKNOWN, REDIS_PERSIST_UNKNOWN, DOCTOR_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct doctor_line l;
        doctor_persistence(&l, cases[i].aof, cases[i].rdb);
        if (l.v != cases[i].v)
            fail_msg("case %zu: verdict %d, want %d (%s)", i, l.v, cases[i].v, l.detail);
        if (l.v != DOCTOR_OK)
            assert_true(*l.fix);
    }
}

static void test_espocrm_setup(void **state)
{
    (void)state;
    struct preflight pf = {.ntypes = 4, .default_type = "Office", .can_message = true};
    struct doctor_line l;
    doctor_setup(&l, &pf);
    assert_int_equal(l.v, DOCTOR_OK);
    doctor_message(&l, &pf);
    assert_int_equal(l.v, DOCTOR_OK);
    pf.can_message = false;
    doctor_message(&l, &pf);
    assert_int_equal(l.v, DOCTOR_FAIL);
    assert_non_null(strstr(l.fix, "Message Permission = all"));
    pf.nproblems = 2;
    snprintf(pf.problems[0], sizeof pf.problems[0],
             "CBeteiligte lacks the field betnr of type int");
    doctor_setup(&l, &pf);
    assert_int_equal(l.v, DOCTOR_FAIL);
    assert_string_equal(l.detail, "CBeteiligte lacks the field betnr of type int (and 1 more)");
    assert_non_null(strstr(l.fix, "deploy/espocrm/"));
}

static void test_webhooks(void **state)
{
    (void)state;
    struct hooks h;
    assert_int_equal(hooks_init(&h, "https://sync.example.com"), 0);
    for (size_t i = 0; i < HOOKS_N; i++)
        h.ev[i].found = h.ev[i].active = true;
    struct doctor_line l;
    doctor_webhooks(&l, &h);
    assert_int_equal(l.v, DOCTOR_OK);
    h.ev[1].active = false;
    h.ev[2].found = false;
    h.ev[2].elsewhere = 1;
    snprintf(h.ev[2].other_url, sizeof h.ev[2].other_url, "https://old/webhook/beteiligte/delete");
    doctor_webhooks(&l, &h);
    assert_int_equal(l.v, DOCTOR_FAIL);
    assert_string_equal(l.detail, "CBeteiligte.update inactive; CBeteiligte.delete missing (one "
                                  "points at https://old/webhook/beteiligte/delete)");
    assert_non_null(strstr(l.fix, "vmhctl webhooks register"));
    json_t *j = doctor_json(&l);
    assert_true(json_is_false(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "check")), "espocrm webhooks");
    json_decref(j);
    doctor_persistence(&l, REDIS_PERSIST_UNKNOWN, REDIS_PERSIST_UNKNOWN);
    j = doctor_json(&l);
    assert_true(json_is_null(json_object_get(j, "ok"))); /* unknown is not a failure */
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_espocrm_setup),
        cmocka_unit_test(test_webhooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
