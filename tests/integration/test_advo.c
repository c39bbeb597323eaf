/* test_advo.c: the Advoware client (common/advo.c, SPEC §4.5, §7.2) against a real advoware-sim
 * and redis-server: the signed token request, Beteiligte create/get/put (the PUT's array
 * unwrapped), Kommunikation POST/PUT, 404, the Rechtsformen cache, one token shared by two
 * clients, refresh after expiry and after a 401, the shared rate limit, transport errors. */
#include "advo.h"
#include "harness.h"
#include "redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_ROUTE "/api/v1/Token"
#define BET_ROUTE   "/api/v1/advonet/Beteiligte/{betNr}"

struct fx {
    struct th_sim sim;
    struct th_redis redis;
    struct redis_client *rc1, *rc2;
    struct advo_conf conf;
};

static int start(void **state, const char *const *args)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f || th_sim_start(&f->sim, "advoware-sim", args) != 0 ||
        th_redis_start(&f->redis, NULL) != 0)
        return -1;
    f->rc1 = th_redis_client(&f->redis);
    f->rc2 = th_redis_client(&f->redis);
    f->conf = (struct advo_conf){.base_url = f->sim.url,
                                 .app_id = "vmh-dev",
                                 .api_key_b64 = "ZGV2LWFkdm93YXJlLWtleQ==",
                                 .kanzlei = "dev",
                                 .database = "dev",
                                 .user = "dev",
                                 .password = "dev",
                                 .product = 64,
                                 .role = 2,
                                 .timeout_ms = 5000};
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return start(state, NULL);
}

static int setup_short_tokens(void **state)
{
    static const char *const args[] = {"--token-ttl-s", "2", NULL};
    return start(state, args);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    redis_client_free(f->rc1);
    redis_client_free(f->rc2);
    th_redis_stop(&f->redis);
    int rc = th_sim_stop(&f->sim);
    free(f);
    return rc == 0 ? 0 : -1;
}

static struct advo *client(struct fx *f, struct redis_client *rc)
{
    char err[256];
    struct advo *a = advo_new(&f->conf, rc, NULL, err, sizeof err);
    assert_non_null(a);
    return a;
}

static long long create(struct advo *a, const char *name)
{
    char err[256];
    long status = 0;
    json_t *out = NULL, *body = json_pack("{s:s,s:s}", "name", name, "vorname", "Max");
    bool maybe = true;
    assert_int_equal(advo_post_beteiligte(a, body, &status, &out, &maybe, err, sizeof err), 0);
    assert_false(maybe);
    assert_true(status == 200 || status == 201);
    long long betnr = json_integer_value(json_object_get(out, "betNr"));
    assert_true(betnr > 0);
    assert_non_null(json_object_get(out, "rowId"));
    json_decref(body);
    json_decref(out);
    return betnr;
}

static void test_token_request_signature(void **state)
{
    struct fx *f = *state;
    char err[256];
    json_t *req = advo_token_request(&f->conf, "n-1", "2026-01-01T10:00:00.000Z", err, sizeof err);
    assert_non_null(req);
    /* the signature recomputed independently */
    unsigned char mac[64], key[64];
    unsigned int maclen = 0;
    int keylen = EVP_DecodeBlock(key, (const unsigned char *)"ZGV2LWFkdm93YXJlLWtleQ==", 24) - 2;
    const char *msg = "64:vmh-dev:n-1:2026-01-01T10:00:00.000Z";
    HMAC(EVP_sha512(), key, keylen, (const unsigned char *)msg, strlen(msg), mac, &maclen);
    char sig[100];
    EVP_EncodeBlock((unsigned char *)sig, mac, (int)maclen);
    assert_string_equal(json_string_value(json_object_get(req, "HMAC512Signature")), sig);
    assert_int_equal(json_integer_value(json_object_get(req, "Product")), 64);
    assert_int_equal(json_integer_value(json_object_get(req, "Role")), 2);
    json_decref(req);
    struct advo_conf bad = f->conf;
    bad.api_key_b64 = "not base64!";
    assert_null(advo_token_request(&bad, "n", "t", err, sizeof err));
    assert_non_null(strstr(err, "base64"));
}

static void test_beteiligte_and_kommunikation(void **state)
{
    struct fx *f = *state;
    struct advo *a = client(f, f->rc1);
    char err[256];
    long status = 0;
    json_t *out = NULL;
    long long betnr = create(a, "Mustermann");
    assert_int_equal(advo_get_beteiligte(a, betnr, &status, &out, err, sizeof err), 0);
    assert_int_equal(status, 200);
    char rowid[64];
    snprintf(rowid, sizeof rowid, "%s", json_string_value(json_object_get(out, "rowId")));
    json_decref(out);
    json_t *body = json_pack("{s:s,s:s}", "name", "Musterfrau", "vorname", "Erika");
    assert_int_equal(advo_put_beteiligte(a, betnr, body, &status, &out, err, sizeof err), 0);
    assert_int_equal(status, 200);
    assert_true(json_is_object(out)); /* unwrapped */
    assert_string_equal(json_string_value(json_object_get(out, "name")), "Musterfrau");
    assert_string_not_equal(json_string_value(json_object_get(out, "rowId")), rowid);
    json_decref(out);
    json_decref(body);

    body = json_pack("{s:s,s:i,s:s,s:b}", "tlf", "+49 511 12345", "kommKz", 1, "bemerkung", "x",
                     "online", 1);
    assert_int_equal(advo_post_kommunikation(a, betnr, body, &status, &out, err, sizeof err), 0);
    assert_true(status == 200 || status == 201);
    long long kid = json_integer_value(json_object_get(out, "id"));
    json_decref(out);
    json_decref(body);
    body = json_pack("{s:s}", "tlf", "+49 511 99999");
    assert_int_equal(advo_put_kommunikation(a, betnr, kid, body, &status, &out, err, sizeof err),
                     0);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(out, "tlf")), "+49 511 99999");
    json_decref(out);
    json_decref(body);

    assert_int_equal(advo_get_beteiligte(a, 999999, &status, &out, err, sizeof err), 0);
    assert_int_equal(status, 404);
    json_decref(out);
    advo_free(a);
}

/* SPEC §5.3 "Never two Advoware records": a POST that got no answer after it was sent may have
 * created the record (maybe_created); one that was refused certainly did not. */
static void test_post_outcome_unknown_only_when_sent(void **state)
{
    struct fx *f = *state;
    char err[256], url[128];
    long status = 0;
    json_t *out = NULL, *body = json_pack("{s:s}", "name", "Ungewiss");
    bool maybe = false;

    struct advo_conf refused = f->conf; /* token from the sim, the API on a port nobody serves */
    refused.token_url = f->sim.url;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", th_free_port());
    refused.base_url = url;
    struct advo *a = advo_new(&refused, f->rc1, NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(advo_post_beteiligte(a, body, &status, &out, &maybe, err, sizeof err), -1);
    assert_false(maybe);
    advo_free(a);

    struct advo_conf slow = f->conf; /* the answer comes after the client gave up */
    slow.timeout_ms = 300;
    snprintf(url, sizeof url, "%s/_sim/faults", f->sim.url);
    assert_int_equal(th_http("POST", url, NULL,
                             "{\"method\":\"POST\",\"route\":\"/api/v1/advonet/Beteiligte\","
                             "\"delay_ms\":1500,\"count\":1}",
                             NULL),
                     200);
    a = advo_new(&slow, f->rc1, NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(advo_post_beteiligte(a, body, &status, &out, &maybe, err, sizeof err), -1);
    assert_true(maybe);
    assert_null(out);
    advo_free(a);
    json_decref(body);
}

/* A POST whose answer is lost after it took effect (apply + drop) reaches the caller as an
 * uncertain error, and is not repeated behind its back: libcurl re-sends a request whose reused
 * keep-alive connection closed without an answer, so POSTs use fresh connections. */
static void test_post_with_lost_answer_is_sent_once(void **state)
{
    struct fx *f = *state;
    struct advo *a = client(f, f->rc1);
    long long betnr = create(a, "Vorher"); /* a kept-alive connection now exists */
    assert_true(betnr > 0);
    char err[256], url[128];
    snprintf(url, sizeof url, "%s/_sim/faults", f->sim.url);
    assert_int_equal(th_http("POST", url, NULL,
                             "{\"method\":\"POST\",\"route\":\"/api/v1/advonet/Beteiligte\","
                             "\"apply\":true,\"drop\":true,\"count\":1}",
                             NULL),
                     200);
    long status = 0;
    json_t *out = NULL, *body = json_pack("{s:s}", "name", "Nur Einmal");
    bool maybe = false;
    assert_int_equal(advo_post_beteiligte(a, body, &status, &out, &maybe, err, sizeof err), -1);
    assert_true(maybe);
    json_decref(body);
    json_t *all = NULL;
    snprintf(url, sizeof url, "%s/_sim/state/Beteiligte", f->sim.url);
    assert_int_equal(th_http("GET", url, NULL, NULL, &all), 200);
    size_t i, once = 0;
    json_t *rec;
    json_array_foreach(all, i, rec)
    {
        once += strcmp(json_string_value(json_object_get(rec, "name")), "Nur Einmal") == 0;
    }
    json_decref(all);
    assert_int_equal(once, 1);
    advo_free(a);
}

static void test_rechtsformen_cached(void **state)
{
    struct fx *f = *state;
    struct advo *a = client(f, f->rc1);
    char err[256], url[128];
    snprintf(url, sizeof url, "%s/_sim/rechtsformen", f->sim.url);
    assert_int_equal(th_http("PUT", url, NULL, "[\"GmbH\",\"AG\"]", NULL), 200);
    assert_int_equal(advo_rechtsform_allowed(a, "GmbH", err, sizeof err), 1);
    assert_int_equal(advo_rechtsform_allowed(a, "Verein", err, sizeof err), 0);
    assert_int_equal(advo_rechtsform_allowed(a, "", err, sizeof err), 1);
    /* once per process, not per client: another executor thread's client asks no one */
    struct advo *b = client(f, f->rc2);
    assert_int_equal(advo_rechtsform_allowed(b, "AG", err, sizeof err), 1);
    assert_int_equal(th_sim_calls(&f->sim, "GET", "/api/v1/advonet/Rechtsformen", 0), 1);
    advo_free(b);
    advo_free(a);
    advo_rechtsformen_forget();
}

static void test_one_token_for_two_clients(void **state)
{
    struct fx *f = *state;
    struct advo *a = client(f, f->rc1), *b = client(f, f->rc2);
    long long betnr = create(a, "A");
    char err[256];
    long status = 0;
    assert_int_equal(advo_get_beteiligte(b, betnr, &status, NULL, err, sizeof err), 0);
    assert_int_equal(status, 200);
    assert_int_equal(th_sim_calls(&f->sim, "POST", TOKEN_ROUTE, 0), 1);
    assert_int_equal(th_redis_int(f->rc1, "EXISTS %s", "vmh:advoware:token"), 1);
    advo_free(a);
    advo_free(b);
}

static void test_401_refreshes_once(void **state)
{
    struct fx *f = *state;
    struct advo *a = client(f, f->rc1);
    long long betnr = create(a, "A");
    char url[128], err[256];
    snprintf(url, sizeof url, "%s/_sim/faults", f->sim.url);
    assert_int_equal(th_http("POST", url, NULL,
                             "{\"method\":\"GET\",\"route\":\"" BET_ROUTE
                             "\",\"status\":401,\"count\":1}",
                             NULL),
                     200);
    long status = 0;
    assert_int_equal(advo_get_beteiligte(a, betnr, &status, NULL, err, sizeof err), 0);
    assert_int_equal(status, 200);
    assert_int_equal(th_sim_calls(&f->sim, "GET", BET_ROUTE, 401), 1);
    assert_int_equal(th_sim_calls(&f->sim, "POST", TOKEN_ROUTE, 200), 2);
    /* two 401s in a row: the second is the answer */
    assert_int_equal(th_http("POST", url, NULL,
                             "{\"method\":\"GET\",\"route\":\"" BET_ROUTE
                             "\",\"status\":401,\"count\":2}",
                             NULL),
                     200);
    assert_int_equal(advo_get_beteiligte(a, betnr, &status, NULL, err, sizeof err), 0);
    assert_int_equal(status, 401);
    advo_free(a);
}

static void test_expired_token_is_refreshed(void **state)
{
    struct fx *f = *state;
    struct advo *a = client(f, f->rc1);
    long long betnr = create(a, "A");
    long long until = th_now_ms() + 2500;
    while (th_now_ms() < until) /* the token's lifetime passing, not synchronisation */
        th_sleep_ms(100);
    char err[256];
    long status = 0;
    assert_int_equal(advo_get_beteiligte(a, betnr, &status, NULL, err, sizeof err), 0);
    assert_int_equal(status, 200);
    assert_true(th_sim_calls(&f->sim, "POST", TOKEN_ROUTE, 200) >= 2);
    advo_free(a);
}

static void test_rate_limit_is_shared(void **state)
{
    struct fx *f = *state;
    f->conf.max_rps = 20;
    struct advo *a = client(f, f->rc1), *b = client(f, f->rc2);
    long long betnr = create(a, "A");
    char err[256];
    long status = 0;
    long long t0 = th_now_ms();
    for (int i = 0; i < 30; i++)
        assert_int_equal(advo_get_beteiligte(i % 2 ? a : b, betnr, &status, NULL, err, sizeof err),
                         0);
    long long took = th_now_ms() - t0;
    print_message("31 calls at 20/s took %lld ms\n", took);
    assert_true(took >= 500); /* lower bound only: the bucket started full (20) */
    assert_int_equal(th_redis_int(f->rc1, "EXISTS %s", "vmh:advoware:ratelimit"), 1);
    advo_free(a);
    advo_free(b);
}

static void test_transport_error(void **state)
{
    struct fx *f = *state;
    struct advo *a = client(f, f->rc1);
    long long betnr = create(a, "A");
    assert_int_equal(th_sim_stop(&f->sim), 0);
    char err[256];
    long status = 0;
    assert_int_equal(advo_get_beteiligte(a, betnr, &status, NULL, err, sizeof err), -1);
    assert_int_equal(status, 0);
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "Bearer"));
    assert_int_equal(th_sim_start(&f->sim, "advoware-sim", NULL), 0); /* for teardown */
    advo_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_request_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beteiligte_and_kommunikation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rechtsformen_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_outcome_unknown_only_when_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_with_lost_answer_is_sent_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_token_for_two_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_refreshes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_is_refreshed, setup_short_tokens,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_is_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
