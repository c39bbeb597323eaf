/* test_hooks.c: which EspoCRM webhooks are vmh-sync's (ctl/hooks.c, SPEC §3.1, §11): the URLs
 * are the producer's routes (producer/webhook.h), EspoCRM's list (the shape recorded in
 * 07_webhooks) is matched per event and URL, an active webhook beats an inactive one, webhooks of
 * another URL are counted, not taken, and the WEBHOOK_SECRETS value parses as the producer parses
 * it and verifies a signature EspoCRM would send. */
#include "hooks.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "wauth.h"

static json_t *hook(const char *id, const char *event, const char *url, bool active,
                    const char *secret)
{
    return json_pack("{s:s,s:b,s:s,s:s,s:b,s:s,s:s,s:s}", "id", id, "deleted", 0, "event", event,
                     "url", url, "isActive", active, "entityType", "CBeteiligte", "secretKey",
                     secret, "createdAt", "2026-12-01 20:16:34");
}

static void test_urls_are_the_producer_routes(void **state)
{
    (void)state;
    struct hooks h;
    assert_int_equal(hooks_init(&h, "https://sync.example.com/"), 0);
    assert_string_equal(h.ev[0].event, "CBeteiligte.create");
    assert_string_equal(h.ev[0].url, "https://sync.example.com/webhook/beteiligte/create");
    assert_string_equal(h.ev[1].url, "https://sync.example.com/webhook/beteiligte/update");
    assert_string_equal(h.ev[2].event, "CBeteiligte.delete");
    assert_int_equal(hooks_init(&h, ""), -1);
    assert_int_equal(hooks_init(&h, NULL), -1);
    assert_int_equal(hooks_secrets(&h, (char[8]){0}, 8), -1); /* nothing found */
}

static void test_match_by_event_and_url(void **state)
{
    (void)state;
    const char *base = "https://sync.example.com";
    json_t *list = json_array();
    json_array_append_new(list,
                          hook("old1", "CBeteiligte.update",
                               "https://old.example.com/webhook/beteiligte/update", true, "s-old"));
    json_array_append_new(list,
                          hook("c1", "CBeteiligte.create",
                               "https://sync.example.com/webhook/beteiligte/create", true, "s-c1"));
    json_array_append_new(list, hook("u0", "CBeteiligte.update",
                                     "https://sync.example.com/webhook/beteiligte/update", false,
                                     "s-u0"));
    json_array_append_new(list,
                          hook("u1", "CBeteiligte.update",
                               "https://sync.example.com/webhook/beteiligte/update", true, "s-u1"));
    json_array_append_new(list,
                          hook("f1", "CBeteiligte.fieldUpdate.vorname",
                               "https://sync.example.com/webhook/beteiligte/update", true, "s-f1"));
    struct hooks h;
    assert_int_equal(hooks_init(&h, base), 0);
    hooks_match(&h, list);
    assert_true(h.ev[0].found && h.ev[0].active);
    assert_string_equal(h.ev[0].id, "c1");
    assert_true(h.ev[1].found && h.ev[1].active);
    assert_string_equal(h.ev[1].id, "u1"); /* the active one */
    assert_int_equal(h.ev[1].elsewhere, 1);
    assert_string_equal(h.ev[1].other_url, "https://old.example.com/webhook/beteiligte/update");
    assert_false(h.ev[2].found);
    char buf[512];
    assert_int_equal(hooks_secrets(&h, buf, sizeof buf), -1); /* delete is missing */

    /* registering the missing one (POST 201, recorded 07) completes the value */
    json_t *created = hook("d1", "CBeteiligte.delete",
                           "https://sync.example.com/webhook/beteiligte/delete", true, "s-d1");
    assert_int_equal(hooks_take(&h, 2, created), 0);
    assert_int_equal(hooks_secrets(&h, buf, sizeof buf), 0);
    assert_string_equal(buf, "c1:s-c1,u1:s-u1,d1:s-d1");
    assert_int_equal(hooks_secrets(&h, buf, 10), -1); /* too small: nothing half written */
    assert_string_equal(buf, "");
    json_t *bad = json_pack("{s:s}", "id", "x");
    assert_int_equal(hooks_take(&h, 2, bad), -1); /* no secretKey */
    json_decref(bad);
    json_decref(created);
    json_decref(list);
}

static void test_secrets_value_is_what_the_producer_takes(void **state)
{
    (void)state;
    struct hooks h;
    char buf[512], err[256];
    assert_int_equal(hooks_init(&h, "http://127.0.0.1:8080"), 0);
    json_t *list = json_array();
    static const char *const ev[] = {"create", "update", "delete"};
    for (int i = 0; i < 3; i++) {
        char id[16], url[128], event[40], secret[40];
        snprintf(id, sizeof id, "6b0f2b22%d", i);
        snprintf(url, sizeof url, "http://127.0.0.1:8080/webhook/beteiligte/%s", ev[i]);
        snprintf(event, sizeof event, "CBeteiligte.%s", ev[i]);
        snprintf(secret, sizeof secret, "ddafa973e2867cc58212b4b503a3f2%02d", i);
        json_array_append_new(list, hook(id, event, url, true, secret));
    }
    hooks_match(&h, list);
    assert_int_equal(hooks_secrets(&h, buf, sizeof buf), 0);
    struct wauth *a = wauth_parse(buf, err, sizeof err);
    assert_non_null(a);
    const char body[] = "[{\"id\":\"e1\"}]";
    char *sig = wauth_sign(WAUTH_SIGNATURE, "6b0f2b221", "ddafa973e2867cc58212b4b503a3f201", body,
                           sizeof body - 1);
    assert_int_equal(wauth_verify(a, sig, NULL, body, sizeof body - 1), WAUTH_OK);
    free(sig);
    wauth_free(a);
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls_are_the_producer_routes),
        cmocka_unit_test(test_match_by_event_and_url),
        cmocka_unit_test(test_secrets_value_is_what_the_producer_takes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
