/* test_wauth.c: webhook signature verification (producer/wauth.c, SPEC §3.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "wauth.h"

static const char BODY[] = "[{\"id\":\"68e4aef68d2b4fb98\",\"name\":\"Mustermann\"}]";

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "nocolon", ":secret", "id:", "a:b,,c:d", "a:b,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        struct wauth *a = wauth_parse(bad[i], err, sizeof err);
        if (a)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(strlen(err) > 0);
    }
    char err[128] = "";
    assert_null(wauth_parse("wh1:topsecret,broken", err, sizeof err));
    assert_null(strstr(err, "topsecret")); /* errors never quote a secret */
}

static void test_known_vector(void **state)
{
    (void)state;
    /* base64("wh1:" + HMAC-SHA256("[]", "s3cret")), computed independently with openssl(1):
     * (printf 'wh1:'; printf '[]' | openssl dgst -sha256 -hmac s3cret -binary) | base64 */
    char *sig = wauth_sign("wh1", "s3cret", "[]", 2);
    assert_non_null(sig);
    assert_string_equal(sig, "d2gxOpIPvo2m5Rz4MVvTzltjvhQ5rEGN8M0qu/bjBOQ7ce/5");
    struct wauth *a = wauth_parse("wh1:s3cret", NULL, 0);
    assert_int_equal(wauth_verify(a, sig, "[]", 2), WAUTH_OK);
    free(sig);
    wauth_free(a);
}

struct verify_case {
    const char *name;
    const char *header; /* NULL: use the right signature of signer/secret below */
    const char *signer, *secret;
    const char *body;
    enum wauth_result want;
};

static void test_verify_table(void **state)
{
    (void)state;
    static const struct verify_case cases[] = {
        {"right signature", NULL, "wh1", "s1", BODY, WAUTH_OK},
        {"second webhook", NULL, "wh2", "s2", BODY, WAUTH_OK},
        {"missing", "", NULL, NULL, BODY, WAUTH_MISSING},
        {"not base64", "%%%%", NULL, NULL, BODY, WAUTH_MALFORMED},
        {"no colon", "d2gx", NULL, NULL, BODY, WAUTH_MALFORMED}, /* "wh1" */
        {"unknown webhook", NULL, "wh9", "s1", BODY, WAUTH_UNKNOWN_WEBHOOK},
        {"wrong secret", NULL, "wh1", "s2", BODY, WAUTH_BAD_MAC},
        {"short mac", "d2gxOmFiYw==", NULL, NULL, BODY, WAUTH_BAD_MAC}, /* "wh1:abc" */
        {"body changed", NULL, "wh1", "s1", "[]", WAUTH_BAD_MAC},
    };
    struct wauth *a = wauth_parse("wh1:s1,wh2:s2", NULL, 0);
    assert_non_null(a);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct verify_case *c = &cases[i];
        char *sig = c->header ? NULL : wauth_sign(c->signer, c->secret, BODY, strlen(BODY));
        enum wauth_result got =
            wauth_verify(a, c->header ? c->header : sig, c->body, strlen(c->body));
        free(sig);
        if (got != c->want)
            fail_msg("%s: got %s, want %s", c->name, wauth_result_name(got),
                     wauth_result_name(c->want));
    }
    assert_int_equal(wauth_verify(a, NULL, BODY, strlen(BODY)), WAUTH_MISSING);
    wauth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_verify_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
