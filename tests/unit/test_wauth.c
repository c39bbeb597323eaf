/* test_wauth.c: webhook signature verification (producer/wauth.c, SPEC §3.1), first against the
 * deliveries a real EspoCRM 9.1.5 sent, read from the recording (07_webhooks.json "deliveries":
 * body_raw, both signature headers, the webhooks' secretKeys: throwaway test values kept so the
 * signatures can be checked; tests/support/recorded.h), then a table of wrong ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recorded.h"
#include "wauth.h"

/* ---- recorded: 07_webhooks.json, every delivery ------------------------------------------- */

#define MAX_RECORDED 8

struct recorded {
    json_t *c; /* the case; every delivery string points into it */
    struct rec_delivery d[MAX_RECORDED];
    size_t n;
};

static void recorded_load(struct recorded *r)
{
    r->c = rec_case("07_webhooks.json");
    r->n = rec_deliveries(r->c, r->d, MAX_RECORDED);
    assert_int_equal(r->n, 4); /* create, update, field-vorname, delete */
}

/* WEBHOOK_SECRETS as an operator would write it for the recorded webhooks, with the whitespace
 * around items that the SPEC says is ignored. */
static struct wauth *recorded_secrets(const struct recorded *r)
{
    char list[1024];
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s %s:%s\n", i ? "," : "",
                              r->d[i].webhook_id, r->d[i].secret_key);
    assert_true(n < sizeof list);
    char err[128] = "";
    struct wauth *a = wauth_parse(list, err, sizeof err);
    if (!a)
        fail_msg("WEBHOOK_SECRETS of the recording rejected: %s", err);
    return a;
}

static void test_recorded_deliveries_verify(void **state)
{
    (void)state;
    struct recorded rec;
    recorded_load(&rec);
    struct wauth *a = recorded_secrets(&rec);
    for (size_t i = 0; i < rec.n; i++) {
        const struct rec_delivery *r = &rec.d[i];
        struct {
            const char *what, *signature, *x_signature;
        } forms[] = {
            {"both headers", r->signature, r->x_signature},
            {"Signature only", r->signature, NULL},
            {"X-Signature only", NULL, r->x_signature},
            {"empty Signature, X-Signature", "", r->x_signature},
        };
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            enum wauth_result got =
                wauth_verify(a, forms[f].signature, forms[f].x_signature, r->body, r->len);
            if (got != WAUTH_OK)
                fail_msg("%s, %s: %s", r->path, forms[f].what, wauth_result_name(got));
        }
    }
    wauth_free(a);
    json_decref(rec.c);
}

/* wauth_sign computes exactly what EspoCRM sent. */
static void test_sign_reproduces_recorded_headers(void **state)
{
    (void)state;
    struct recorded rec;
    recorded_load(&rec);
    for (size_t i = 0; i < rec.n; i++) {
        const struct rec_delivery *r = &rec.d[i];
        char *sig = wauth_sign(WAUTH_SIGNATURE, r->webhook_id, r->secret_key, r->body, r->len);
        char *xsig = wauth_sign(WAUTH_X_SIGNATURE, r->webhook_id, r->secret_key, r->body, r->len);
        assert_non_null(sig);
        assert_non_null(xsig);
        assert_string_equal(sig, r->signature);
        assert_string_equal(xsig, r->x_signature);
        free(sig);
        free(xsig);
    }
    json_decref(rec.c);
}

/* Signature is taken when present: a right X-Signature does not rescue a wrong Signature. */
static void test_signature_preferred_over_x_signature(void **state)
{
    (void)state;
    struct recorded rec;
    recorded_load(&rec);
    struct wauth *a = recorded_secrets(&rec);
    struct rec_delivery upd = rec_delivery(rec.c, "/hook/update");
    struct rec_delivery del = rec_delivery(rec.c, "/hook/delete");
    /* the delete webhook's Signature over the update body: right form, wrong MAC */
    assert_int_equal(wauth_verify(a, del.signature, upd.x_signature, upd.body, upd.len),
                     WAUTH_BAD_MAC);
    /* an X-Signature value in the Signature header: raw bytes where hex belongs */
    assert_int_equal(wauth_verify(a, upd.x_signature, NULL, upd.body, upd.len), WAUTH_BAD_MAC);
    /* and a Signature value in X-Signature: hex where raw bytes belong */
    assert_int_equal(wauth_verify(a, NULL, upd.signature, upd.body, upd.len), WAUTH_BAD_MAC);
    /* one byte of the body changed */
    char *body = strdup(upd.body);
    body[3] ^= 1;
    assert_int_equal(wauth_verify(a, upd.signature, NULL, body, upd.len), WAUTH_BAD_MAC);
    assert_int_equal(wauth_verify(a, NULL, upd.x_signature, body, upd.len), WAUTH_BAD_MAC);
    free(body);
    wauth_free(a);
    json_decref(rec.c);
}

/* ---- WEBHOOK_SECRETS ---------------------------------------------------------------------- */

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"",     "nocolon", ":secret",   "id:",  "a:b,,c:d",
                                      "a:b,", " ",       "a:b, ,c:d", " :s ", "id: "};
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

static void test_whitespace_around_items_ignored(void **state)
{
    (void)state;
    static const char *const lists[] = {
        "wh1:s1,wh2:s2",
        " wh1:s1 , wh2:s2 ",
        "\twh1:s1,\n wh2:s2\n",
        "wh1:s1 ,wh2:s2\r\n",
    };
    static const char body[] = "[{\"id\":\"x\"}]";
    char *s1 = wauth_sign(WAUTH_SIGNATURE, "wh1", "s1", body, strlen(body));
    char *s2 = wauth_sign(WAUTH_SIGNATURE, "wh2", "s2", body, strlen(body));
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        struct wauth *a = wauth_parse(lists[i], NULL, 0);
        if (!a)
            fail_msg("list %zu rejected", i);
        if (wauth_verify(a, s1, NULL, body, strlen(body)) != WAUTH_OK ||
            wauth_verify(a, s2, NULL, body, strlen(body)) != WAUTH_OK)
            fail_msg("list %zu: a secret was read with its whitespace", i);
        wauth_free(a);
    }
    free(s1);
    free(s2);
}

/* ---- independent vectors and wrong signatures --------------------------------------------- */

static void test_known_vectors(void **state)
{
    (void)state;
    /* computed independently with openssl(1):
     * X-Signature: (printf 'wh1:'; printf '[]' | openssl dgst -sha256 -hmac s3cret -binary) |
     * base64 Signature:   (printf 'wh1:'; printf '[]' | openssl dgst -sha256 -hmac s3cret | cut -d'
     * ' -f2 | tr -d '\n') | base64 -w0 */
    char *xsig = wauth_sign(WAUTH_X_SIGNATURE, "wh1", "s3cret", "[]", 2);
    char *sig = wauth_sign(WAUTH_SIGNATURE, "wh1", "s3cret", "[]", 2);
    assert_string_equal(xsig, "d2gxOpIPvo2m5Rz4MVvTzltjvhQ5rEGN8M0qu/bjBOQ7ce/5");
    assert_string_equal(sig, "d2gxOjkyMGZiZThkYTZlNTFjZjgzMTViZDNjZTViNjNiZTE0MzlhYzQxOGRmMGNkMm"
                             "FiYmY2ZTMwNGU0M2I3MWVmZjk=");
    struct wauth *a = wauth_parse("wh1:s3cret", NULL, 0);
    assert_int_equal(wauth_verify(a, sig, NULL, "[]", 2), WAUTH_OK);
    assert_int_equal(wauth_verify(a, NULL, xsig, "[]", 2), WAUTH_OK);
    free(sig);
    free(xsig);
    wauth_free(a);
}

static const char BODY[] = "[{\"id\":\"68e4aef68d2b4fb98\",\"name\":\"Mustermann\"}]";

struct verify_case {
    const char *name;
    enum wauth_header header;
    const char *value; /* NULL: the right signature of signer/secret below */
    const char *signer, *secret;
    const char *body;
    enum wauth_result want;
};

static void test_verify_table(void **state)
{
    (void)state;
    static const struct verify_case cases[] = {
        {"right Signature", WAUTH_SIGNATURE, NULL, "wh1", "s1", BODY, WAUTH_OK},
        {"right X-Signature", WAUTH_X_SIGNATURE, NULL, "wh1", "s1", BODY, WAUTH_OK},
        {"second webhook", WAUTH_SIGNATURE, NULL, "wh2", "s2", BODY, WAUTH_OK},
        {"missing", WAUTH_SIGNATURE, "", NULL, NULL, BODY, WAUTH_MISSING},
        {"not base64", WAUTH_SIGNATURE, "%%%%", NULL, NULL, BODY, WAUTH_MALFORMED},
        {"no colon", WAUTH_SIGNATURE, "d2gx", NULL, NULL, BODY, WAUTH_MALFORMED}, /* "wh1" */
        {"unknown webhook", WAUTH_SIGNATURE, NULL, "wh9", "s1", BODY, WAUTH_UNKNOWN_WEBHOOK},
        {"unknown webhook (X)", WAUTH_X_SIGNATURE, NULL, "wh9", "s1", BODY, WAUTH_UNKNOWN_WEBHOOK},
        {"wrong secret", WAUTH_SIGNATURE, NULL, "wh1", "s2", BODY, WAUTH_BAD_MAC},
        {"wrong secret (X)", WAUTH_X_SIGNATURE, NULL, "wh1", "s2", BODY, WAUTH_BAD_MAC},
        {"short mac", WAUTH_SIGNATURE, "d2gxOmFiYw==", NULL, NULL, BODY, WAUTH_BAD_MAC},
        {"short mac (X)", WAUTH_X_SIGNATURE, "d2gxOmFiYw==", NULL, NULL, BODY, WAUTH_BAD_MAC},
        {"body changed", WAUTH_SIGNATURE, NULL, "wh1", "s1", "[]", WAUTH_BAD_MAC},
    };
    struct wauth *a = wauth_parse("wh1:s1,wh2:s2", NULL, 0);
    assert_non_null(a);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct verify_case *c = &cases[i];
        char *sig =
            c->value ? NULL : wauth_sign(c->header, c->signer, c->secret, BODY, strlen(BODY));
        const char *value = c->value ? c->value : sig;
        enum wauth_result got = c->header == WAUTH_SIGNATURE
                                    ? wauth_verify(a, value, NULL, c->body, strlen(c->body))
                                    : wauth_verify(a, NULL, value, c->body, strlen(c->body));
        free(sig);
        if (got != c->want)
            fail_msg("%s: got %s, want %s", c->name, wauth_result_name(got),
                     wauth_result_name(c->want));
    }
    assert_int_equal(wauth_verify(a, NULL, NULL, BODY, strlen(BODY)), WAUTH_MISSING);
    assert_int_equal(wauth_verify(a, "", "", BODY, strlen(BODY)), WAUTH_MISSING);
    wauth_free(a);
}

static void test_header_names(void **state)
{
    (void)state;
    assert_string_equal(wauth_header_name(WAUTH_SIGNATURE), "Signature");
    assert_string_equal(wauth_header_name(WAUTH_X_SIGNATURE), "X-Signature");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_deliveries_verify),
        cmocka_unit_test(test_sign_reproduces_recorded_headers),
        cmocka_unit_test(test_signature_preferred_over_x_signature),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_whitespace_around_items_ignored),
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_verify_table),
        cmocka_unit_test(test_header_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
