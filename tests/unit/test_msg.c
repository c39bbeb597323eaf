/* test_msg.c: the Kafka message value codec (common/msg.c, SPEC §2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "msg.h"

static void test_encode_webhook(void **state)
{
    (void)state;
    char *s = msg_encode("68e4aef68d2b4fb98", MSG_EVENT_UPDATE, MSG_SOURCE_WEBHOOK, NULL,
                         1770546600123LL);
    assert_string_equal(s, "{\"v\":1,\"entityId\":\"68e4aef68d2b4fb98\",\"event\":\"update\","
                           "\"source\":\"webhook\",\"emittedAt\":\"2026-02-08T10:30:00.123Z\"}");
    free(s);
}

static void test_encode_cron_reason_and_roundtrip(void **state)
{
    (void)state;
    char *s = msg_encode("e1", MSG_EVENT_SYNC_CHECK, MSG_SOURCE_CRON, "auto_reset", 0);
    assert_non_null(strstr(s, "\"reason\":\"auto_reset\""));
    struct msg m;
    char err[128];
    assert_int_equal(msg_decode(s, strlen(s), &m, err, sizeof err), 0);
    assert_string_equal(m.entity_id, "e1");
    assert_int_equal(m.event, MSG_EVENT_SYNC_CHECK);
    assert_int_equal(m.source, MSG_SOURCE_CRON);
    assert_string_equal(m.reason, "auto_reset");
    assert_string_equal(m.emitted_at, "1970-01-01T00:00:00.000Z");
    free(s);
}

static void test_encode_rejects_bad_ids(void **state)
{
    (void)state;
    char longid[MSG_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_null(msg_encode("", MSG_EVENT_CREATE, MSG_SOURCE_CLI, NULL, 0));
    assert_null(msg_encode(NULL, MSG_EVENT_CREATE, MSG_SOURCE_CLI, NULL, 0));
    assert_null(msg_encode(longid, MSG_EVENT_CREATE, MSG_SOURCE_CLI, NULL, 0));
}

struct poison {
    const char *value;
    const char *why; /* a word the error must contain */
};

static void test_decode_poison(void **state)
{
    (void)state;
    static const struct poison cases[] = {
        {"", "empty"},
        {"not json", "JSON"},
        {"[1,2]", "object"},
        {"{\"entityId\":\"x\"}", "version"},
        {"{\"v\":2,\"entityId\":\"x\"}", "version"},
        {"{\"v\":\"1\",\"entityId\":\"x\"}", "version"},
        {"{\"v\":1}", "entityId"},
        {"{\"v\":1,\"entityId\":42}", "entityId"},
        {"{\"v\":1,\"entityId\":\"\"}", "entityId"},
        {"{\"v\":1,\"entityId\":\"a\\u0000b\"}", "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct msg m;
        char err[128] = "";
        if (msg_decode(cases[i].value, strlen(cases[i].value), &m, err, sizeof err) != -1)
            fail_msg("accepted: %s", cases[i].value);
        if (!strstr(err, cases[i].why))
            fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].value, err, cases[i].why);
    }
}

static void test_decode_tolerates_unknown_event(void **state)
{
    (void)state;
    const char *v = "{\"v\":1,\"entityId\":\"x\",\"event\":\"upsert\",\"source\":\"robot\"}";
    struct msg m;
    char err[128];
    assert_int_equal(msg_decode(v, strlen(v), &m, err, sizeof err), 0);
    assert_int_equal(m.event, MSG_EVENT_SYNC_CHECK);
    assert_string_equal(m.reason, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_webhook),
        cmocka_unit_test(test_encode_cron_reason_and_roundtrip),
        cmocka_unit_test(test_encode_rejects_bad_ids),
        cmocka_unit_test(test_decode_poison),
        cmocka_unit_test(test_decode_tolerates_unknown_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
