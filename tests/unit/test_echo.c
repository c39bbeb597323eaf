/* test_echo.c: which webhook records are the sync's own writes coming back (producer/echo.c,
 * SPEC §3.1). The records are the ones a real EspoCRM 9.1.5 delivered, read from the recording
 * (07_webhooks.json "deliveries", tests/support/recorded.h), and 07c observations; the sync
 * user the recorded API user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "echo.h"
#include "recorded.h"

#define SYNC_USER "6b0f2ac93ac0e6b02" /* 01_app_user.json: user.id of the API user "sync" */

struct echo_case {
    const char *name;
    enum msg_event event;
    const char *record;    /* JSON object */
    const char *sync_user; /* NULL: not known yet */
    enum echo_verdict want;
};

static void test_echo_table(void **state)
{
    (void)state;
    static const struct echo_case cases[] = {
        /* 07c: "an update of only syncRetryCount contains {syncRetryCount, modifiedById,
         * modifiedByName, id}" */
        {"07c: sync writes syncRetryCount", MSG_EVENT_UPDATE,
         "{\"syncRetryCount\":1,\"modifiedById\":\"6b0f2ac93ac0e6b02\",\"modifiedByName\":\"sync\","
         "\"id\":\"6b0f2b5a03c53e490\"}",
         SYNC_USER, ECHO_BY_SYNC_USER},
        {"07c before the sync user is known: sync fields only", MSG_EVENT_UPDATE,
         "{\"syncRetryCount\":1,\"modifiedById\":\"6b0f2ac93ac0e6b02\",\"modifiedByName\":\"sync\","
         "\"id\":\"6b0f2b5a03c53e490\"}",
         NULL, ECHO_SYNC_FIELDS_ONLY},
        /* the same user saving twice: modifiedById did not change, so it is not sent */
        {"status write without modifiedById", MSG_EVENT_UPDATE,
         "{\"syncStatus\":\"clean\",\"advowareLastSync\":\"2026-12-01 10:00:00\","
         "\"syncRetryCount\":0,\"syncNextRetry\":null,\"kommunikationHash\":\"0123456789abcdef\","
         "\"advowareSyncBaseline\":\"{}\",\"versionNumber\":7,\"modifiedAt\":\"2026-12-01 "
         "10:00:00\",\"id\":\"6b0f2b2286d443271\"}",
         SYNC_USER, ECHO_SYNC_FIELDS_ONLY},
        {"link write: betnr, advowareRowId", MSG_EVENT_UPDATE,
         "{\"betnr\":104860,\"advowareRowId\":\"AAAA\",\"syncAutoResetAt\":null,"
         "\"syncErrorMessage\":null,\"id\":\"x\"}",
         NULL, ECHO_SYNC_FIELDS_ONLY},
        {"sync's vorname write without modifiedById: kept (one no_change run)", MSG_EVENT_UPDATE,
         "{\"vorname\":\"Hans-Sync\",\"syncStatus\":\"clean\",\"id\":\"6b0f2b2286d443271\"}",
         SYNC_USER, ECHO_KEEP},
        {"a person's edit of only syncStatus: the rule drops it too", MSG_EVENT_UPDATE,
         "{\"syncStatus\":\"pending_sync\",\"modifiedById\":\"6b0f2ac9736e4ce24\","
         "\"modifiedByName\":\"Ui Human\",\"id\":\"x\"}",
         SYNC_USER, ECHO_SYNC_FIELDS_ONLY},
        {"nothing but the id: kept", MSG_EVENT_UPDATE, "{\"id\":\"x\"}", SYNC_USER, ECHO_KEEP},
        {"assignedUserId is a person's field", MSG_EVENT_UPDATE,
         "{\"assignedUserId\":\"u\",\"syncStatus\":\"dirty\",\"id\":\"x\"}", NULL, ECHO_KEEP},
        {"modifiedById not a string", MSG_EVENT_UPDATE,
         "{\"vorname\":\"a\",\"modifiedById\":null,\"id\":\"x\"}", SYNC_USER, ECHO_KEEP},
        {"empty sync user id is no sync user", MSG_EVENT_UPDATE,
         "{\"vorname\":\"a\",\"modifiedById\":\"\",\"id\":\"x\"}", "", ECHO_KEEP},
        /* create and delete records are never dropped */
        {"create by the sync user (07 G)", MSG_EVENT_CREATE,
         "{\"id\":\"6b0f2b27edeb454f5\",\"name\":\"Sync-Created GmbH\",\"syncStatus\":"
         "\"pending_sync\",\"createdById\":\"6b0f2ac93ac0e6b02\",\"modifiedById\":"
         "\"6b0f2ac93ac0e6b02\",\"versionNumber\":1}",
         SYNC_USER, ECHO_KEEP},
        {"create carrying sync fields only", MSG_EVENT_CREATE,
         "{\"id\":\"x\",\"syncStatus\":\"pending_sync\",\"versionNumber\":1}", SYNC_USER,
         ECHO_KEEP},
        {"delete with modifiedById", MSG_EVENT_DELETE,
         "{\"id\":\"x\",\"modifiedById\":\"6b0f2ac93ac0e6b02\"}", SYNC_USER, ECHO_KEEP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct echo_case *c = &cases[i];
        json_error_t je;
        json_t *rec = json_loads(c->record, 0, &je);
        if (!rec)
            fail_msg("%s: bad test JSON: %s", c->name, je.text);
        enum echo_verdict got = echo_classify(c->event, rec, c->sync_user);
        json_decref(rec);
        if (got != c->want)
            fail_msg("%s: got %s, want %s", c->name, echo_verdict_name(got),
                     echo_verdict_name(c->want));
    }
}

/* The records as EspoCRM delivered them (07_webhooks.json): of the update delivery the person's
 * two records stay and the sync's two are echoes; before the sync user is known nothing of it is
 * dropped, every record carrying a person's field (vorname, phoneNumberData). */
struct recorded_case {
    const char *path; /* the delivery */
    size_t record;    /* index in its body */
    const char *name;
    enum msg_event event;
    const char *sync_user; /* NULL: not known yet */
    enum echo_verdict want;
};

static void test_recorded_deliveries(void **state)
{
    (void)state;
    static const struct recorded_case cases[] = {
        /* /hook/update: B ui edits vorname, C sync writes vorname + status, E ui adds a phone,
         * F sync replaces the phone list (D, the sync's no-op PUT, sent no event: db_note) */
        {"/hook/update", 0, "B: ui edits vorname", MSG_EVENT_UPDATE, SYNC_USER, ECHO_KEEP},
        {"/hook/update", 1, "C: sync writes vorname + status", MSG_EVENT_UPDATE, SYNC_USER,
         ECHO_BY_SYNC_USER},
        {"/hook/update", 2, "E: ui adds a phone", MSG_EVENT_UPDATE, SYNC_USER, ECHO_KEEP},
        {"/hook/update", 3, "F: sync replaces the phone list", MSG_EVENT_UPDATE, SYNC_USER,
         ECHO_BY_SYNC_USER},
        {"/hook/update", 0, "B before the sync user is known", MSG_EVENT_UPDATE, NULL, ECHO_KEEP},
        {"/hook/update", 1, "C before the sync user is known: vorname is no sync field",
         MSG_EVENT_UPDATE, NULL, ECHO_KEEP},
        {"/hook/update", 2, "E before the sync user is known", MSG_EVENT_UPDATE, NULL, ECHO_KEEP},
        {"/hook/update", 3, "F before the sync user is known", MSG_EVENT_UPDATE, NULL, ECHO_KEEP},
        /* create and delete records are never dropped */
        {"/hook/delete", 1, "delete (07 J, by the sync user)", MSG_EVENT_DELETE, SYNC_USER,
         ECHO_KEEP},
    };
    json_t *c = rec_case("07_webhooks.json");
    struct rec_delivery update = rec_delivery(c, "/hook/update");
    json_t *records = json_loads(update.body, 0, NULL);
    assert_non_null(records);
    assert_int_equal(json_array_size(records), 4);
    json_decref(records);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct recorded_case *k = &cases[i];
        struct rec_delivery d = rec_delivery(c, k->path);
        json_t *body = json_loads(d.body, 0, NULL);
        json_t *rec = json_array_get(body, k->record);
        if (!json_is_object(rec))
            fail_msg("%s: %s has no record %zu", k->name, k->path, k->record);
        enum echo_verdict got = echo_classify(k->event, rec, k->sync_user);
        json_decref(body);
        if (got != k->want)
            fail_msg("%s: got %s, want %s", k->name, echo_verdict_name(got),
                     echo_verdict_name(k->want));
    }
    json_decref(c);
}

static void test_not_an_object_is_kept(void **state)
{
    (void)state;
    json_t *s = json_string("x");
    assert_int_equal(echo_classify(MSG_EVENT_UPDATE, s, SYNC_USER), ECHO_KEEP);
    assert_int_equal(echo_classify(MSG_EVENT_UPDATE, NULL, SYNC_USER), ECHO_KEEP);
    json_decref(s);
    assert_string_equal(echo_verdict_name(ECHO_KEEP), "keep");
    assert_string_equal(echo_verdict_name(ECHO_BY_SYNC_USER), "by_sync_user");
    assert_string_equal(echo_verdict_name(ECHO_SYNC_FIELDS_ONLY), "sync_fields_only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_table),
        cmocka_unit_test(test_recorded_deliveries),
        cmocka_unit_test(test_not_an_object_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
