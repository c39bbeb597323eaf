/* test_advo_token.c: the signed token request of the Advoware client (advo_token_request in
 * common/advo.c, SPEC §7.2), pure: the body's fields and its HMAC512Signature, recomputed here
 * with OpenSSL's HMAC() from the raw key and the documented message, and bad API keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "advo.h"

#define NONCE "3f2b8c1e-9a4d-4e5f-8b6a-0c1d2e3f4a5b"
#define STAMP "2026-01-01T10:00:00.000Z"

static struct advo_conf conf_with_key(const char *key_b64, int product)
{
    return (struct advo_conf){.base_url = "http://127.0.0.1:1",
                              .app_id = "vmh-dev",
                              .api_key_b64 = key_b64,
                              .kanzlei = "kanzlei-k",
                              .database = "db-d",
                              .user = "user-u",
                              .password = "pw-p",
                              .product = product,
                              .role = 2};
}

/* base64(HMAC-SHA512(raw_key, "{product}:vmh-dev:NONCE:STAMP")), computed independently. */
static void expected_signature(const char *raw_key, int product, char *out, size_t outlen)
{
    char msg[256];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    snprintf(msg, sizeof msg, "%d:vmh-dev:" NONCE ":" STAMP, product);
    assert_non_null(HMAC(EVP_sha512(), raw_key, (int)strlen(raw_key), (const unsigned char *)msg,
                         strlen(msg), mac, &maclen));
    assert_int_equal(maclen, 64);
    assert_true(outlen > 4 * ((maclen + 2) / 3));
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
}

/* ---- good keys: the raw key and its base64 form (none, one and two padding characters) ----- */

struct key_case {
    const char *raw, *b64;
    int product;
};

static const struct key_case key_cases[] = {
    {"dev-advoware-key", "ZGV2LWFkdm93YXJlLWtleQ==", 64}, /* advoware-sim's default */
    {"dev-advoware-key", "ZGV2LWFkdm93YXJlLWtleQ==", 1},  /* Product is signed */
    {"abc", "YWJj", 64},
    {"abcd", "YWJjZA==", 64},
    {"abcde", "YWJjZGU=", 64},
    {"a", "YQ==", 64},
};

static void test_token_request_signature_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof key_cases / sizeof key_cases[0]; i++) {
        const struct key_case *c = &key_cases[i];
        struct advo_conf conf = conf_with_key(c->b64, c->product);
        char err[256], sig[128];
        expected_signature(c->raw, c->product, sig, sizeof sig);
        json_t *req = advo_token_request(&conf, NONCE, STAMP, err, sizeof err);
        assert_non_null(req);
        assert_string_equal(err, "");
        assert_string_equal(json_string_value(json_object_get(req, "HMAC512Signature")), sig);
        assert_int_equal(json_integer_value(json_object_get(req, "Product")), c->product);
        json_decref(req);
    }
}

static void test_token_request_fields(void **state)
{
    (void)state;
    struct advo_conf conf = conf_with_key("ZGV2LWFkdm93YXJlLWtleQ==", 64);
    char err[256];
    json_t *req = advo_token_request(&conf, NONCE, STAMP, err, sizeof err);
    assert_non_null(req);
    static const char *const strings[][2] = {
        {"AppID", "vmh-dev"},        {"Kanzlei", "kanzlei-k"}, {"Database", "db-d"},
        {"User", "user-u"},          {"Password", "pw-p"},     {"Nonce", NONCE},
        {"RequestTimeStamp", STAMP},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        json_t *v = json_object_get(req, strings[i][0]);
        assert_true(json_is_string(v));
        assert_string_equal(json_string_value(v), strings[i][1]);
    }
    assert_true(json_is_integer(json_object_get(req, "Role")));
    assert_int_equal(json_integer_value(json_object_get(req, "Role")), 2);
    assert_true(json_is_integer(json_object_get(req, "Product")));
    assert_int_equal(json_integer_value(json_object_get(req, "Product")), 64);
    assert_true(json_is_string(json_object_get(req, "HMAC512Signature")));
    assert_int_equal(json_object_size(req), 10); /* exactly the fields of SPEC §7.2 */
    json_decref(req);
}

/* ---- bad keys: NULL, an error naming the setting, and never the key itself ------------------ */

static const char *const bad_keys[] = {
    "not base64!", /* not a multiple of 4, not the alphabet */
    "YWJ",         /* truncated */
    "YW!j",        /* a character outside the alphabet */
    "====",        /* padding only */
    "A===",        /* more padding than base64 has */
    "YQ=A",        /* padding inside */
    "",            /* no key at all */
    NULL,
};

static void test_token_request_bad_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        struct advo_conf conf = conf_with_key(bad_keys[i], 64);
        char err[256] = "";
        assert_null(advo_token_request(&conf, NONCE, STAMP, err, sizeof err));
        assert_non_null(strstr(err, "ADVOWARE_API_KEY"));
        if (bad_keys[i] && bad_keys[i][0])
            assert_null(strstr(err, bad_keys[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_request_signature_table),
        cmocka_unit_test(test_token_request_fields),
        cmocka_unit_test(test_token_request_bad_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
