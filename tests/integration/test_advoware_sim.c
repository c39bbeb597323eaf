/* test_advoware_sim.c: advoware-sim (tests/sim/advoware_sim.c) over real HTTP, against the
 * contract of SPEC §7.2 and §8.1: the HMAC-512 token endpoint (signature, nonce, timestamp,
 * expiry), bearer checks on every API route, Beteiligte and Kommunikation with Advoware's quirks
 * (§5.1, §5.4), validation, the /_sim/ user actions and state dumps, and the shared frame's
 * faults (status, count, after, apply, drop), fail rate (also set at run time), latency, stats
 * and reset. Every test starts its own simulator and stops it
 * (exit code 0 expected); the token signature is computed here with OpenSSL. */
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
#include <time.h>

#include "harness.h"

#define SIM         "advoware-sim"
#define DEV_KEY     "ZGV2LWFkdm93YXJlLWtleQ==" /* the default --api-key */
#define OTHER_KEY   "b3RoZXIta2V5"             /* "other-key" */
#define FIRST_BETNR 100001
#define ROUTE_TOKEN "/api/v1/Token"
#define ROUTE_BET   "/api/v1/advonet/Beteiligte"
#define ROUTE_BETNR "/api/v1/advonet/Beteiligte/{betNr}"
#define ROUTE_RF    "/api/v1/advonet/Rechtsformen"
#define ROUTE_KOMMS "/api/v1/advonet/Beteiligte/{betNr}/Kommunikationen"
#define ROUTE_KOMM  "/api/v1/advonet/Beteiligte/{betNr}/Kommunikationen/{id}"
#define WAIT_MS     5000

struct fixture {
    struct th_sim sim;
    char auth[200]; /* "Authorization: Bearer <token>" once fetched */
    int nonces;
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* "YYYY-MM-DDTHH:MM:SSZ" for now + offset_s, in UTC. */
static void utc_timestamp(char *buf, size_t len, long offset_s)
{
    time_t t = time(NULL) + offset_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* base64(HMAC-SHA512(base64-decode(key_b64), msg)) into out (>= 89 bytes). */
static void sign(const char *key_b64, const char *msg, char *out)
{
    unsigned char key[256], mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t b64_len = strlen(key_b64), pad = 0;
    while (pad < b64_len && key_b64[b64_len - 1 - pad] == '=')
        pad++;
    int key_len = EVP_DecodeBlock(key, (const unsigned char *)key_b64, (int)b64_len);
    assert_true(key_len > 0);
    assert_non_null(HMAC(EVP_sha512(), key, key_len - (int)pad, (const unsigned char *)msg,
                         strlen(msg), mac, &mac_len));
    assert_true(EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len) > 0);
}

/* What a token request may vary; NULL members take the working default. */
struct token_args {
    const char *key_b64;   /* signing key; default the sim's */
    const char *nonce;     /* default a fresh one */
    const char *timestamp; /* default now */
    const char *password;  /* default "dev" */
};

/* The JSON body of POST /api/v1/Token (malloc'd). */
static char *token_body(struct fixture *f, const struct token_args *args)
{
    char nonce[64], now[32], msg[512], sig[100];
    const char *ts = args->timestamp;
    if (!args->nonce)
        snprintf(nonce, sizeof nonce, "5f0e7c2a-test-nonce-%04d", ++f->nonces);
    if (!ts) {
        utc_timestamp(now, sizeof now, 0);
        ts = now;
    }
    const char *n = args->nonce ? args->nonce : nonce;
    snprintf(msg, sizeof msg, "64:vmh-dev:%s:%s", n, ts);
    sign(args->key_b64 ? args->key_b64 : DEV_KEY, msg, sig);
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:s,s:s,s:s}", "AppID", "vmh-dev",
                             "Kanzlei", "dev", "Database", "dev", "User", "dev", "Role", 2,
                             "Product", 64, "Password", args->password ? args->password : "dev",
                             "Nonce", n, "HMAC512Signature", sig, "RequestTimeStamp", ts);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    assert_non_null(text);
    return text;
}

static long http(struct fixture *f, const char *method, const char *path,
                 const char *const *headers, const char *body, json_t **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", f->sim.url, path);
    return th_http(method, url, headers, body, out);
}

static long token_post(struct fixture *f, const char *body, json_t **out)
{
    return http(f, "POST", ROUTE_TOKEN, NULL, body, out);
}

/* Fetches a token and keeps its Authorization header in f->auth. */
static void login(struct fixture *f)
{
    struct token_args args = {0};
    char *body = token_body(f, &args);
    json_t *out;
    assert_int_equal(token_post(f, body, &out), 200);
    free(body);
    snprintf(f->auth, sizeof f->auth, "Authorization: Bearer %s",
             json_string_value(json_object_get(out, "access_token")));
    json_decref(out);
}

/* An API call with the fixture's bearer token. */
static long api(struct fixture *f, const char *method, const char *path, const char *body,
                json_t **out)
{
    const char *headers[] = {f->auth, NULL};
    return http(f, method, path, headers, body, out);
}

/* An admin (/_sim/) call, no auth. */
static long admin(struct fixture *f, const char *method, const char *path, const char *body,
                  json_t **out)
{
    return http(f, method, path, NULL, body, out);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_int_t num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* The "error" message of an answer contains `word`. */
static void assert_error_names(const json_t *answer, const char *word)
{
    const char *msg = str(answer, "error");
    assert_non_null(msg);
    if (!strstr(msg, word))
        fail_msg("error \"%s\" does not name \"%s\"", msg, word);
}

/* POSTs a Beteiligter through the API; returns its betNr. */
static json_int_t create(struct fixture *f, const char *body)
{
    json_t *out;
    assert_int_equal(api(f, "POST", ROUTE_BET, body, &out), 200);
    json_int_t betnr = num(out, "betNr");
    json_decref(out);
    return betnr;
}

/* GET of a Beteiligter through the API (new reference). */
static json_t *get(struct fixture *f, json_int_t betnr)
{
    char path[128];
    json_t *out;
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    assert_int_equal(api(f, "GET", path, NULL, &out), 200);
    return out;
}

/* The stored record with true kommKz (new reference). */
static json_t *stored_record(struct fixture *f, json_int_t betnr)
{
    char path[128];
    json_t *out;
    snprintf(path, sizeof path, "/_sim/state/Beteiligte/%lld", (long long)betnr);
    assert_int_equal(admin(f, "GET", path, NULL, &out), 200);
    return out;
}

/* POSTs a Kommunikation through the API; returns the created entry (new reference). */
static json_t *komm_create(struct fixture *f, json_int_t betnr, const char *body)
{
    char path[128];
    json_t *out;
    snprintf(path, sizeof path, ROUTE_BET "/%lld/Kommunikationen", (long long)betnr);
    assert_int_equal(api(f, "POST", path, body, &out), 200);
    return out;
}

static bool is_row_id(const char *s)
{
    if (!s || strlen(s) != 40)
        return false;
    for (; *s; s++)
        if (*s < 'A' || *s > 'P')
            return false;
    return true;
}

/* "YYYY-MM-DDTHH:MM:SS", no zone. */
static bool is_local_time(const char *s)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
    if (!s || strlen(s) != sizeof pattern - 1)
        return false;
    for (size_t i = 0; pattern[i]; i++)
        if (pattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pattern[i])
            return false;
    return true;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int start_with(void **state, const char *const *args)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || th_sim_start(&f->sim, SIM, args) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return start_with(state, NULL);
}

static int setup_logged_in(void **state)
{
    if (setup(state) != 0)
        return -1;
    login(*state);
    return 0;
}

static int setup_ttl_1s(void **state)
{
    static const char *const args[] = {"--token-ttl-s", "1", NULL};
    return start_with(state, args);
}

static int setup_fail_rate_1(void **state)
{
    static const char *const args[] = {"--fail-rate", "1", NULL};
    return start_with(state, args);
}

static int setup_latency_200(void **state)
{
    static const char *const args[] = {"--latency-ms", "200", NULL};
    return start_with(state, args);
}

/* UTC+14, no daylight saving: geaendertAm must follow --tz. */
static int setup_tz_plus14(void **state)
{
    static const char *const args[] = {"--tz", "Etc/GMT-14", NULL};
    if (start_with(state, args) != 0)
        return -1;
    login(*state);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = th_sim_stop(&f->sim);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* ---- token (SPEC §7.2) -------------------------------------------------------------------- */

static void test_token_ok(void **state)
{
    struct fixture *f = *state;
    struct token_args args = {0};
    char *body = token_body(f, &args);
    json_t *out;
    assert_int_equal(token_post(f, body, &out), 200);
    assert_true(strlen(str(out, "access_token")) >= 32);
    assert_string_equal(str(out, "token_type"), "bearer");
    assert_int_equal(num(out, "expires_in"), 3600);
    json_decref(out);
    free(body);
}

static void test_token_accepts_fraction_and_offset(void **state)
{
    struct fixture *f = *state;
    char ts[64];
    time_t t = time(NULL) + 2 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S.123456+02:00", &tm);
    struct token_args args = {.timestamp = ts};
    char *body = token_body(f, &args);
    assert_int_equal(token_post(f, body, NULL), 200);
    free(body);
}

static void test_token_wrong_signature_401(void **state)
{
    struct fixture *f = *state;
    struct token_args args = {.key_b64 = OTHER_KEY};
    char *body = token_body(f, &args);
    json_t *out;
    assert_int_equal(token_post(f, body, &out), 401);
    assert_error_names(out, "Signature");
    json_decref(out);
    free(body);
}

static void test_token_wrong_password_401(void **state)
{
    struct fixture *f = *state;
    struct token_args args = {.password = "guess"};
    char *body = token_body(f, &args);
    assert_int_equal(token_post(f, body, NULL), 401);
    free(body);
}

static void test_token_replayed_nonce_401(void **state)
{
    struct fixture *f = *state;
    struct token_args args = {.nonce = "0b5e8f3e-5d7a-4d55-9d0e-4f1c2b3a4d5e"};
    char *body = token_body(f, &args);
    json_t *out;
    assert_int_equal(token_post(f, body, NULL), 200);
    assert_int_equal(token_post(f, body, &out), 401);
    assert_error_names(out, "Nonce");
    json_decref(out);
    free(body);
}

static void test_token_stale_timestamp_401(void **state)
{
    struct fixture *f = *state;
    char ts[32];
    utc_timestamp(ts, sizeof ts, -6 * 60);
    struct token_args args = {.timestamp = ts};
    char *body = token_body(f, &args);
    json_t *out;
    assert_int_equal(token_post(f, body, &out), 401);
    assert_error_names(out, "RequestTimeStamp");
    json_decref(out);
    free(body);
}

static void test_token_future_timestamp_401(void **state)
{
    struct fixture *f = *state;
    char ts[32];
    utc_timestamp(ts, sizeof ts, 6 * 60);
    struct token_args args = {.timestamp = ts};
    char *body = token_body(f, &args);
    assert_int_equal(token_post(f, body, NULL), 401);
    free(body);
}

static void test_token_malformed_body_400(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(token_post(f, "{\"AppID\":\"vmh-dev\"}", &out), 400);
    assert_error_names(out, "Kanzlei");
    json_decref(out);
    assert_int_equal(token_post(f, "not json", NULL), 400);
}

/* Every API route refuses a request without a token or with a token it never issued. */
static void test_api_routes_need_bearer_401(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *method, *path;
    } routes[] = {
        {"GET", ROUTE_BET "/100001"},
        {"POST", ROUTE_BET},
        {"PUT", ROUTE_BET "/100001"},
        {"DELETE", ROUTE_BET "/100001"},
        {"GET", ROUTE_RF},
        {"POST", ROUTE_BET "/100001/Kommunikationen"},
        {"PUT", ROUTE_BET "/100001/Kommunikationen/88001"},
        {"DELETE", ROUTE_BET "/100001/Kommunikationen/88001"},
    };
    static const char *const garbage[] = {"Authorization: Bearer not-a-token", NULL};
    static const char *const basic[] = {"Authorization: Basic ZGV2OmRldg==", NULL};
    admin(f, "POST", "/_sim/ui/Beteiligte", "{\"name\":\"X\"}", NULL);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        json_t *out;
        assert_int_equal(http(f, routes[i].method, routes[i].path, NULL, "{}", &out), 401);
        assert_non_null(str(out, "error"));
        json_decref(out);
        assert_int_equal(http(f, routes[i].method, routes[i].path, garbage, "{}", NULL), 401);
        assert_int_equal(http(f, routes[i].method, routes[i].path, basic, "{}", NULL), 401);
    }
}

static void test_token_expires_after_ttl(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    struct token_args args = {0};
    char *body = token_body(f, &args);
    assert_int_equal(token_post(f, body, &out), 200);
    assert_int_equal(num(out, "expires_in"), 1);
    snprintf(f->auth, sizeof f->auth, "Authorization: Bearer %s", str(out, "access_token"));
    json_decref(out);
    free(body);
    long long issued = th_now_ms();
    bool expired;
    TH_WAIT(expired, api(f, "GET", ROUTE_RF, NULL, NULL) == 401, WAIT_MS);
    assert_true(expired);
    assert_true(th_now_ms() - issued >= 900); /* not before its time (clock granularity) */
}

/* ---- Beteiligte (SPEC §5.1, §7.2) --------------------------------------------------------- */

static void test_post_then_get(void **state)
{
    struct fixture *f = *state;
    json_t *created, *got;
    assert_int_equal(api(f, "POST", ROUTE_BET,
                         "{\"name\":\"Müller\",\"vorname\":\"Max\",\"rechtsform\":\"GmbH\","
                         "\"titel\":\"Dr.\",\"anrede\":\"Herr\",\"bAnrede\":\"Sehr geehrter Herr "
                         "Dr. Müller\",\"zusatz\":\"z\",\"geburtsdatum\":\"1980-02-29T00:00:00\"}",
                         &created),
                     200);
    assert_int_equal(num(created, "betNr"), FIRST_BETNR);
    assert_true(is_row_id(str(created, "rowId")));
    assert_true(is_local_time(str(created, "geaendertAm")));
    got = get(f, FIRST_BETNR);
    assert_true(json_equal(created, got));
    assert_string_equal(str(got, "name"), "Müller");
    assert_string_equal(str(got, "geburtsdatum"), "1980-02-29T00:00:00");
    assert_true(json_is_null(json_object_get(got, "registergericht")));
    assert_int_equal(json_array_size(json_object_get(got, "kommunikation")), 0);
    json_decref(created);
    json_decref(got);
}

static void test_betnr_counts_up(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(create(f, "{\"name\":\"A\"}"), FIRST_BETNR);
    assert_int_equal(create(f, "{\"name\":\"B\"}"), FIRST_BETNR + 1);
}

static void test_put_identical_twice_gives_two_row_ids_in_arrays(void **state)
{
    struct fixture *f = *state;
    const char *body = "{\"name\":\"Schmidt\",\"vorname\":\"Eva\"}";
    json_int_t betnr = create(f, body);
    json_t *before = get(f, betnr), *first, *second;
    char path[64];
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    assert_int_equal(api(f, "PUT", path, body, &first), 200);
    assert_int_equal(api(f, "PUT", path, body, &second), 200);
    assert_true(json_is_array(first) && json_array_size(first) == 1);
    assert_true(json_is_array(second) && json_array_size(second) == 1);
    const char *r0 = str(before, "rowId");
    const char *r1 = str(json_array_get(first, 0), "rowId");
    const char *r2 = str(json_array_get(second, 0), "rowId");
    assert_true(is_row_id(r1) && is_row_id(r2));
    assert_string_not_equal(r0, r1);
    assert_string_not_equal(r1, r2);
    assert_int_equal(num(json_array_get(second, 0), "betNr"), betnr);
    assert_string_equal(str(json_array_get(second, 0), "vorname"), "Eva");
    json_decref(before);
    json_decref(first);
    json_decref(second);
}

static void test_api_ignores_the_other_six_fields(void **state)
{
    struct fixture *f = *state;
    static const char six[] = "\"art\":\"a\",\"kurzname\":\"k\",\"geburtsname\":\"g\","
                              "\"familienstand\":\"f\",\"handelsRegisterNummer\":\"HRB 1\","
                              "\"registergericht\":\"AG Hannover\"";
    static const char *const names[] = {"art",
                                        "kurzname",
                                        "geburtsname",
                                        "familienstand",
                                        "handelsRegisterNummer",
                                        "registergericht"};
    char body[512], path[64];
    snprintf(body, sizeof body, "{\"name\":\"N\",%s}", six);
    json_int_t betnr = create(f, body);
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    snprintf(body, sizeof body, "{\"vorname\":\"V\",%s}", six);
    assert_int_equal(api(f, "PUT", path, body, NULL), 200);
    json_t *got = get(f, betnr);
    assert_string_equal(str(got, "vorname"), "V");
    for (size_t i = 0; i < 6; i++)
        if (!json_is_null(json_object_get(got, names[i])))
            fail_msg("%s was written through the API", names[i]);
    json_decref(got);
}

static void test_put_null_clears_absent_keeps(void **state)
{
    struct fixture *f = *state;
    char path[64];
    json_int_t betnr = create(f, "{\"name\":\"N\",\"vorname\":\"V\",\"titel\":\"Dr.\","
                                 "\"geburtsdatum\":\"1970-01-01T00:00:00\"}");
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    assert_int_equal(api(f, "PUT", path, "{\"vorname\":null,\"geburtsdatum\":null}", NULL), 200);
    json_t *got = get(f, betnr);
    assert_true(json_is_null(json_object_get(got, "vorname")));
    assert_true(json_is_null(json_object_get(got, "geburtsdatum")));
    assert_string_equal(str(got, "titel"), "Dr.");
    assert_string_equal(str(got, "name"), "N");
    json_decref(got);
}

static void test_unknown_rechtsform_400(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":\"N\",\"rechtsform\":\"Limited\"}", &out),
                     400);
    assert_error_names(out, "rechtsform");
    json_decref(out);
}

/* Each length-limited field: its maximum passes, one more character is 400 naming the field. */
static void test_field_over_its_length_400(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *field;
        int max;
    } limits[] = {{"name", 140},  {"vorname", 30},  {"rechtsform", 50}, {"titel", 50},
                  {"anrede", 35}, {"bAnrede", 150}, {"zusatz", 100}};
    json_t *rf = json_array();
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if (strcmp(limits[i].field, "rechtsform") == 0) {
            /* rechtsform must also be in the list: allow both lengths. */
            char at[60] = {0}, over[60] = {0};
            memset(at, 'R', 50);
            memset(over, 'R', 51);
            json_array_append_new(rf, json_string(at));
            json_array_append_new(rf, json_string(over));
        }
    }
    char *rf_text = json_dumps(rf, 0);
    assert_int_equal(admin(f, "PUT", "/_sim/rechtsformen", rf_text, NULL), 200);
    free(rf_text);
    json_decref(rf);
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        for (int extra = 0; extra <= 1; extra++) {
            char value[200] = {0};
            memset(value, 'x', (size_t)(limits[i].max + extra));
            if (strcmp(limits[i].field, "rechtsform") == 0)
                memset(value, 'R', (size_t)(limits[i].max + extra));
            json_t *body = strcmp(limits[i].field, "name") == 0
                               ? json_pack("{s:s}", "name", value)
                               : json_pack("{s:s,s:s}", "name", "N", limits[i].field, value);
            char *text = json_dumps(body, 0);
            json_t *out;
            long status = api(f, "POST", ROUTE_BET, text, &out);
            if (status != (extra ? 400 : 200))
                fail_msg("%s with %d characters: %ld", limits[i].field, limits[i].max + extra,
                         status);
            if (extra)
                assert_error_names(out, limits[i].field);
            json_decref(out);
            free(text);
            json_decref(body);
        }
    }
}

static void test_length_counts_characters_not_bytes(void **state)
{
    struct fixture *f = *state;
    char vorname[200] = "";
    for (int i = 0; i < 30; i++)
        strcat(vorname, "ä");
    json_t *body = json_pack("{s:s,s:s}", "name", "N", "vorname", vorname);
    char *text = json_dumps(body, 0);
    assert_int_equal(api(f, "POST", ROUTE_BET, text, NULL), 200);
    free(text);
    json_decref(body);
}

static void test_geburtsdatum_format(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *json;
        long status;
    } cases[] = {
        {"\"1980-02-29T00:00:00\"", 200},
        {"null", 200},
        {"\"1981-02-29T00:00:00\"", 400},
        {"\"1980-13-01T00:00:00\"", 400},
        {"\"1980-01-01\"", 400},
        {"\"1980-01-01T10:00:00\"", 400},
        {"\"\"", 400},
        {"19800101", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[128];
        json_t *out;
        snprintf(body, sizeof body, "{\"name\":\"N\",\"geburtsdatum\":%s}", cases[i].json);
        long status = api(f, "POST", ROUTE_BET, body, &out);
        if (status != cases[i].status)
            fail_msg("geburtsdatum %s: %ld, expected %ld", cases[i].json, status, cases[i].status);
        if (status == 400)
            assert_error_names(out, "geburtsdatum");
        json_decref(out);
    }
}

static void test_name_required_400(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    char path[64];
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"vorname\":\"V\"}", &out), 400);
    assert_error_names(out, "name");
    json_decref(out);
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    assert_int_equal(api(f, "PUT", path, "{\"name\":\"\"}", &out), 400);
    assert_error_names(out, "name");
    json_decref(out);
    assert_int_equal(api(f, "PUT", path, "{\"name\":null}", NULL), 400);
}

static void test_bad_json_400(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":", &out), 400);
    assert_error_names(out, "JSON");
    json_decref(out);
    assert_int_equal(api(f, "POST", ROUTE_BET, "[{\"name\":\"N\"}]", &out), 400);
    assert_error_names(out, "object");
    json_decref(out);
}

static void test_unknown_betnr_404(void **state)
{
    struct fixture *f = *state;
    create(f, "{\"name\":\"N\"}");
    assert_int_equal(api(f, "GET", ROUTE_BET "/100002", NULL, NULL), 404);
    assert_int_equal(api(f, "GET", ROUTE_BET "/100000", NULL, NULL), 404);
    assert_int_equal(api(f, "GET", ROUTE_BET "/abc", NULL, NULL), 404);
    assert_int_equal(api(f, "PUT", ROUTE_BET "/999999", "{\"name\":\"N\"}", NULL), 404);
    assert_int_equal(
        api(f, "POST", ROUTE_BET "/999999/Kommunikationen", "{\"tlf\":\"1\",\"kommKz\":1}", NULL),
        404);
}

static void test_delete_beteiligter_403(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    char path[64];
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    assert_int_equal(api(f, "DELETE", path, NULL, &out), 403);
    assert_non_null(str(out, "error"));
    json_decref(out);
    json_decref(get(f, betnr)); /* still there */
}

/* ---- Rechtsformen ------------------------------------------------------------------------- */

static bool list_has(const json_t *list, const char *value)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
            return true;
    }
    return false;
}

static void test_rechtsformen_get(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, &out), 200);
    assert_true(json_is_array(out));
    assert_true(list_has(out, "GmbH"));
    assert_true(list_has(out, "e.V."));
    json_decref(out);
}

static void test_rechtsformen_replaced_by_sim_route(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(admin(f, "PUT", "/_sim/rechtsformen", "[\"Genossenschaft\"]", NULL), 200);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, &out), 200);
    assert_int_equal(json_array_size(out), 1);
    assert_true(list_has(out, "Genossenschaft"));
    json_decref(out);
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":\"N\",\"rechtsform\":\"GmbH\"}", NULL),
                     400);
    create(f, "{\"name\":\"N\",\"rechtsform\":\"Genossenschaft\"}");
}

static void test_rechtsformen_put_needs_array_of_strings(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(admin(f, "PUT", "/_sim/rechtsformen", "[\"GmbH\",1]", &out), 400);
    assert_non_null(str(out, "error"));
    json_decref(out);
    assert_int_equal(admin(f, "PUT", "/_sim/rechtsformen", "{\"a\":\"b\"}", NULL), 400);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, &out), 200);
    assert_true(list_has(out, "GmbH")); /* unchanged */
    json_decref(out);
}

/* ---- Kommunikation (SPEC §5.4 quirks) ----------------------------------------------------- */

static void test_komm_kommkz_shown_as_0_but_kept(void **state)
{
    struct fixture *f = *state;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    json_t *entry = komm_create(f, betnr,
                                "{\"tlf\":\"max@example.com\",\"kommKz\":4,"
                                "\"bemerkung\":\"[ESPOCRM-SLOT:4]\",\"online\":true}");
    assert_int_equal(num(entry, "kommKz"), 4); /* the POST answer honours it */
    assert_true(num(entry, "id") > 0);
    assert_true(is_row_id(str(entry, "rowId")));
    json_t *got = get(f, betnr), *stored = stored_record(f, betnr);
    json_t *shown = json_array_get(json_object_get(got, "kommunikation"), 0);
    json_t *kept = json_array_get(json_object_get(stored, "kommunikation"), 0);
    assert_int_equal(num(shown, "kommKz"), 0);
    assert_int_equal(num(kept, "kommKz"), 4);
    assert_string_equal(str(shown, "tlf"), "max@example.com");
    assert_string_equal(str(shown, "bemerkung"), "[ESPOCRM-SLOT:4]");
    assert_true(json_is_true(json_object_get(shown, "online")));
    assert_int_equal(num(shown, "id"), num(entry, "id"));
    json_decref(entry);
    json_decref(got);
    json_decref(stored);
}

static void test_komm_post_needs_kommkz_1_to_12(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    char path[96];
    snprintf(path, sizeof path, ROUTE_BET "/%lld/Kommunikationen", (long long)betnr);
    assert_int_equal(api(f, "POST", path, "{\"tlf\":\"1\"}", &out), 400);
    assert_error_names(out, "kommKz");
    json_decref(out);
    assert_int_equal(api(f, "POST", path, "{\"tlf\":\"1\",\"kommKz\":13}", NULL), 400);
    assert_int_equal(api(f, "POST", path, "{\"tlf\":\"1\",\"kommKz\":0}", NULL), 400);
    assert_int_equal(api(f, "POST", path, "{\"tlf\":\"1\",\"kommKz\":12}", NULL), 200);
}

static void test_komm_put_ignores_kommkz_and_keeps_beteiligter_row_id(void **state)
{
    struct fixture *f = *state;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    json_t *entry = komm_create(f, betnr, "{\"tlf\":\"0511 1\",\"kommKz\":1,\"bemerkung\":\"b\"}");
    json_t *before = get(f, betnr), *updated;
    char path[128];
    snprintf(path, sizeof path, ROUTE_BET "/%lld/Kommunikationen/%lld", (long long)betnr,
             (long long)num(entry, "id"));
    assert_int_equal(
        api(f, "PUT", path, "{\"tlf\":\"0511 2\",\"kommKz\":3,\"online\":true}", &updated), 200);
    assert_true(json_is_object(updated));
    assert_int_equal(num(updated, "kommKz"), 0);
    assert_string_equal(str(updated, "tlf"), "0511 2");
    assert_string_equal(str(updated, "bemerkung"), "b"); /* absent: kept */
    assert_true(is_row_id(str(updated, "rowId")));
    assert_string_not_equal(str(updated, "rowId"), str(entry, "rowId"));
    json_t *after = get(f, betnr), *stored = stored_record(f, betnr);
    assert_string_equal(str(after, "rowId"), str(before, "rowId"));
    assert_string_equal(str(after, "geaendertAm"), str(before, "geaendertAm"));
    assert_int_equal(num(json_array_get(json_object_get(stored, "kommunikation"), 0), "kommKz"), 1);
    json_decref(entry);
    json_decref(before);
    json_decref(updated);
    json_decref(after);
    json_decref(stored);
}

static void test_komm_unknown_id_404(void **state)
{
    struct fixture *f = *state;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    char path[128];
    snprintf(path, sizeof path, ROUTE_BET "/%lld/Kommunikationen/88999", (long long)betnr);
    assert_int_equal(api(f, "PUT", path, "{\"tlf\":\"x\"}", NULL), 404);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen/88999", (long long)betnr);
    assert_int_equal(admin(f, "DELETE", path, NULL, NULL), 404);
}

static void test_komm_delete_403_for_api_allowed_for_user(void **state)
{
    struct fixture *f = *state;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    json_t *entry = komm_create(f, betnr, "{\"tlf\":\"x@y.de\",\"kommKz\":4}");
    char path[128];
    snprintf(path, sizeof path, ROUTE_BET "/%lld/Kommunikationen/%lld", (long long)betnr,
             (long long)num(entry, "id"));
    assert_int_equal(api(f, "DELETE", path, NULL, NULL), 403);
    json_t *stored = stored_record(f, betnr);
    assert_int_equal(json_array_size(json_object_get(stored, "kommunikation")), 1);
    json_decref(stored);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen/%lld", (long long)betnr,
             (long long)num(entry, "id"));
    assert_int_equal(admin(f, "DELETE", path, NULL, NULL), 200);
    stored = stored_record(f, betnr);
    assert_int_equal(json_array_size(json_object_get(stored, "kommunikation")), 0);
    json_decref(stored);
    json_decref(entry);
}

/* ---- acting as an Advoware user (/_sim/ui) ------------------------------------------------ */

static void test_ui_create_sets_any_field_and_shows_true_kommkz(void **state)
{
    struct fixture *f = *state;
    json_t *created;
    assert_int_equal(admin(f, "POST", "/_sim/ui/Beteiligte",
                           "{\"name\":\"Firma\",\"rechtsform\":\"Unbekannt\",\"art\":\"Mandant\","
                           "\"kommunikation\":[{\"tlf\":\"0171 1\",\"kommKz\":3}]}",
                           &created),
                     200);
    assert_int_equal(num(created, "betNr"), FIRST_BETNR);
    assert_string_equal(str(created, "art"), "Mandant");
    assert_string_equal(str(created, "rechtsform"), "Unbekannt"); /* no validation for users */
    assert_int_equal(num(json_array_get(json_object_get(created, "kommunikation"), 0), "kommKz"),
                     3);
    json_t *got = get(f, FIRST_BETNR);
    assert_string_equal(str(got, "art"), "Mandant");
    assert_int_equal(num(json_array_get(json_object_get(got, "kommunikation"), 0), "kommKz"), 0);
    json_decref(created);
    json_decref(got);
}

/* A user's edit: new rowId every time; geaendertAm local time without zone, later once the
 * clock's second has moved on (polled: each edit is a new change). */
static void test_ui_edit_changes_row_id_and_geaendert_am(void **state)
{
    struct fixture *f = *state;
    json_t *created, *edited = NULL;
    assert_int_equal(admin(f, "POST", "/_sim/ui/Beteiligte", "{\"name\":\"A\"}", &created), 200);
    char path[64], first_row_id[64];
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", (long long)num(created, "betNr"));
    snprintf(first_row_id, sizeof first_row_id, "%s", str(created, "rowId"));
    bool later;
    TH_WAIT(later,
            (json_decref(edited), edited = NULL,
             admin(f, "PUT", path, "{\"kurzname\":\"K\"}", &edited) == 200 &&
                 strcmp(str(edited, "geaendertAm"), str(created, "geaendertAm")) > 0),
            WAIT_MS);
    assert_true(later);
    assert_true(is_local_time(str(edited, "geaendertAm")));
    assert_true(is_row_id(str(edited, "rowId")));
    assert_string_not_equal(str(edited, "rowId"), first_row_id);
    assert_string_equal(str(edited, "kurzname"), "K");
    json_t *got = get(f, num(created, "betNr"));
    assert_string_equal(str(got, "rowId"), str(edited, "rowId"));
    json_decref(got);
    json_decref(created);
    json_decref(edited);
}

/* geaendertAm is the local time of --tz (here UTC+14). */
static void test_geaendert_am_in_sim_time_zone(void **state)
{
    struct fixture *f = *state;
    char before[32], after[32];
    utc_timestamp(before, sizeof before, 14 * 3600);
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    utc_timestamp(after, sizeof after, 14 * 3600);
    json_t *got = get(f, betnr);
    const char *t = str(got, "geaendertAm");
    before[19] = after[19] = '\0'; /* drop the Z */
    assert_true(is_local_time(t));
    if (strcmp(t, before) < 0 || strcmp(t, after) > 0)
        fail_msg("geaendertAm %s not within %s..%s (UTC+14)", t, before, after);
    json_decref(got);
}

static void test_ui_komm_edit_may_change_kommkz(void **state)
{
    struct fixture *f = *state;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    json_t *entry = komm_create(f, betnr, "{\"tlf\":\"0511 1\",\"kommKz\":1}"), *edited;
    char path[128];
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen/%lld", (long long)betnr,
             (long long)num(entry, "id"));
    assert_int_equal(admin(f, "PUT", path, "{\"tlf\":\"0511 9\",\"kommKz\":6}", &edited), 200);
    assert_int_equal(num(edited, "kommKz"), 6);
    assert_string_not_equal(str(edited, "rowId"), str(entry, "rowId"));
    json_t *stored = stored_record(f, betnr);
    json_t *kept = json_array_get(json_object_get(stored, "kommunikation"), 0);
    assert_int_equal(num(kept, "kommKz"), 6);
    assert_string_equal(str(kept, "tlf"), "0511 9");
    json_decref(entry);
    json_decref(edited);
    json_decref(stored);
}

static void test_ui_komm_add(void **state)
{
    struct fixture *f = *state;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    json_t *added;
    char path[96];
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen", (long long)betnr);
    assert_int_equal(admin(f, "POST", path, "{\"tlf\":\"+49 30 1\",\"kommKz\":1}", &added), 200);
    assert_int_equal(num(added, "kommKz"), 1);
    json_t *got = get(f, betnr);
    json_t *shown = json_array_get(json_object_get(got, "kommunikation"), 0);
    assert_string_equal(str(shown, "tlf"), "+49 30 1");
    assert_true(json_is_null(json_object_get(shown, "bemerkung")));
    json_decref(added);
    json_decref(got);
}

static void test_state_lists_every_record_by_betnr(void **state)
{
    struct fixture *f = *state;
    json_t *all;
    create(f, "{\"name\":\"A\"}");
    admin(f, "POST", "/_sim/ui/Beteiligte", "{\"name\":\"B\"}", NULL);
    create(f, "{\"name\":\"C\"}");
    assert_int_equal(admin(f, "GET", "/_sim/state/Beteiligte", NULL, &all), 200);
    assert_int_equal(json_array_size(all), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(num(json_array_get(all, i), "betNr"), FIRST_BETNR + (json_int_t)i);
    assert_string_equal(str(json_array_get(all, 1), "name"), "B");
    json_decref(all);
}

/* ---- the shared frame: faults, fail rate, latency, stats, reset ---------------------------- */

static void test_fault_rule_two_503_then_200(void **state)
{
    struct fixture *f = *state;
    json_int_t betnr = create(f, "{\"name\":\"N\"}");
    char path[64];
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    assert_int_equal(admin(f, "POST", "/_sim/faults",
                           "{\"method\":\"PUT\",\"route\":\"" ROUTE_BETNR "\",\"status\":503,"
                           "\"count\":2}",
                           NULL),
                     200);
    assert_int_equal(api(f, "GET", path, NULL, NULL), 200); /* other method: untouched */
    assert_int_equal(api(f, "PUT", path, "{\"name\":\"M\"}", NULL), 503);
    assert_int_equal(api(f, "PUT", path, "{\"name\":\"M\"}", NULL), 503);
    assert_int_equal(api(f, "PUT", path, "{\"name\":\"M\"}", NULL), 200);
    assert_int_equal(api(f, "PUT", path, "{\"name\":\"M\"}", NULL), 200);
}

static void test_fail_rate_1_answers_503(void **state)
{
    struct fixture *f = *state;
    struct token_args args = {0};
    char *body = token_body(f, &args);
    assert_int_equal(token_post(f, body, NULL), 503);
    assert_int_equal(http(f, "GET", ROUTE_RF, NULL, NULL, NULL), 503);
    assert_int_equal(admin(f, "GET", "/_sim/stats", NULL, NULL), 200); /* admin: never */
    free(body);
}

static void test_latency_delays_answers(void **state)
{
    struct fixture *f = *state;
    struct token_args args = {0};
    char *body = token_body(f, &args);
    long long start = th_now_ms();
    assert_int_equal(token_post(f, body, NULL), 200);
    assert_true(th_now_ms() - start >= 200);
    free(body);
}

struct expected_call {
    const char *method, *route;
    int status;
    int count;
};

static void test_stats_count_exactly_the_api_calls(void **state)
{
    struct fixture *f = *state;
    static const struct expected_call expected[] = {
        {"POST", ROUTE_TOKEN, 200, 1}, {"POST", ROUTE_BET, 200, 2},
        {"POST", ROUTE_BET, 400, 1},   {"GET", ROUTE_BETNR, 200, 3},
        {"GET", ROUTE_BETNR, 404, 1},  {"GET", ROUTE_BETNR, 401, 1},
        {"PUT", ROUTE_BETNR, 200, 1},  {"DELETE", ROUTE_BETNR, 403, 1},
        {"GET", ROUTE_RF, 200, 1},     {"POST", ROUTE_KOMMS, 200, 1},
        {"PUT", ROUTE_KOMM, 200, 1},   {"DELETE", ROUTE_KOMM, 403, 1},
    };
    json_t *out;
    login(f);
    create(f, "{\"name\":\"A\"}");
    create(f, "{\"name\":\"B\"}");
    api(f, "POST", ROUTE_BET, "{}", NULL);
    for (int i = 0; i < 3; i++)
        api(f, "GET", ROUTE_BET "/100001", NULL, NULL);
    api(f, "GET", ROUTE_BET "/100099", NULL, NULL);
    http(f, "GET", ROUTE_BET "/100001", NULL, NULL, NULL);
    api(f, "PUT", ROUTE_BET "/100002", "{\"vorname\":\"V\"}", NULL);
    api(f, "DELETE", ROUTE_BET "/100002", NULL, NULL);
    api(f, "GET", ROUTE_RF, NULL, NULL);
    json_decref(komm_create(f, 100001, "{\"tlf\":\"1\",\"kommKz\":1}"));
    api(f, "PUT", ROUTE_BET "/100001/Kommunikationen/88001", "{\"tlf\":\"2\"}", NULL);
    api(f, "DELETE", ROUTE_BET "/100001/Kommunikationen/88001", NULL, NULL);
    /* admin calls: never counted */
    json_decref(stored_record(f, 100001));
    admin(f, "PUT", "/_sim/ui/Beteiligte/100001", "{\"name\":\"Z\"}", NULL);
    admin(f, "GET", "/_sim/faults", NULL, NULL);

    assert_int_equal(admin(f, "GET", "/_sim/stats", NULL, &out), 200);
    json_t *calls = json_object_get(out, "calls");
    assert_int_equal(json_array_size(calls), sizeof expected / sizeof expected[0]);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        bool found = false;
        size_t j;
        json_t *c;
        json_array_foreach(calls, j, c)
        {
            if (strcmp(str(c, "method"), expected[i].method) == 0 &&
                strcmp(str(c, "route"), expected[i].route) == 0 &&
                num(c, "status") == expected[i].status) {
                found = true;
                if (num(c, "count") != expected[i].count)
                    fail_msg("%s %s %d: count %lld, expected %d", expected[i].method,
                             expected[i].route, expected[i].status, (long long)num(c, "count"),
                             expected[i].count);
            }
        }
        if (!found)
            fail_msg("no stats entry for %s %s %d", expected[i].method, expected[i].route,
                     expected[i].status);
    }
    json_decref(out);
}

static void test_reset_clears_state_tokens_and_stats(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    create(f, "{\"name\":\"A\"}");
    admin(f, "PUT", "/_sim/rechtsformen", "[\"X\"]", NULL);
    assert_int_equal(admin(f, "POST", "/_sim/reset", NULL, NULL), 200);

    assert_int_equal(admin(f, "GET", "/_sim/stats", NULL, &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "calls")), 0);
    json_decref(out);
    assert_int_equal(admin(f, "GET", "/_sim/state/Beteiligte", NULL, &out), 200);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 401); /* tokens are gone */
    login(f);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, &out), 200);
    assert_true(list_has(out, "GmbH"));
    json_decref(out);
    assert_int_equal(create(f, "{\"name\":\"B\"}"), FIRST_BETNR);
    json_t *entry = komm_create(f, FIRST_BETNR, "{\"tlf\":\"1\",\"kommKz\":1}");
    assert_int_equal(num(entry, "id"), 88001);
    json_decref(entry);
}

/* ---- faults that act (SPEC v2 §8): apply, drop, after, the fail rate at run time ---------- */

/* POSTs a fault rule (or {"fail_rate":F}); asserts the status. */
static void fault(struct fixture *f, const char *rule, long want)
{
    json_t *out = NULL;
    long got = admin(f, "POST", "/_sim/faults", rule, &out);
    if (got != want)
        fail_msg("POST /_sim/faults %s: %ld, expected %ld (%s)", rule, got, want,
                 out ? str(out, "error") : "");
    json_decref(out);
}

/* The /_sim/stats count of exactly this method, route and status (status 0 = dropped calls;
 * th_sim_calls() takes 0 for "every status"). */
static long calls_with_status(struct fixture *f, const char *method, const char *route, int status)
{
    json_t *out, *c;
    size_t i;
    long n = 0;
    assert_int_equal(admin(f, "GET", "/_sim/stats", NULL, &out), 200);
    json_array_foreach(json_object_get(out, "calls"), i, c)
    {
        if (strcmp(str(c, "method"), method) == 0 && strcmp(str(c, "route"), route) == 0 &&
            num(c, "status") == status)
            n += (long)num(c, "count");
    }
    json_decref(out);
    return n;
}

/* How many records /_sim/state holds. */
static size_t stored_count(struct fixture *f)
{
    json_t *out;
    assert_int_equal(admin(f, "GET", "/_sim/state/Beteiligte", NULL, &out), 200);
    size_t n = json_array_size(out);
    json_decref(out);
    return n;
}

static void test_fault_apply_503_creates_while_the_client_sees_503(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    fault(f,
          "{\"method\":\"POST\",\"route\":\"" ROUTE_BET "\",\"status\":503,\"apply\":true,"
          "\"count\":1}",
          200);
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":\"Angelegt\"}", &out), 503);
    assert_error_names(out, "fault");
    assert_null(json_object_get(out, "betNr")); /* nothing tells the caller it happened */
    json_decref(out);
    json_t *rec = stored_record(f, FIRST_BETNR);
    assert_string_equal(str(rec, "name"), "Angelegt");
    json_decref(rec);
    assert_int_equal(calls_with_status(f, "POST", ROUTE_BET, 503), 1);
    assert_int_equal(calls_with_status(f, "POST", ROUTE_BET, 200), 0);
    /* count 1: the next create is answered, with the next betNr */
    assert_int_equal(create(f, "{\"name\":\"Zweiter\"}"), FIRST_BETNR + 1);
}

static void test_fault_drop_closes_without_effect(void **state)
{
    struct fixture *f = *state;
    fault(f, "{\"method\":\"POST\",\"route\":\"" ROUTE_BET "\",\"drop\":true,\"count\":1}", 200);
    long long start = th_now_ms();
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":\"Nie\"}", NULL), 0); /* transport */
    assert_true(th_now_ms() - start < 2000); /* closed at once, not a timeout */
    assert_int_equal(stored_count(f), 0);
    assert_int_equal(calls_with_status(f, "POST", ROUTE_BET, 0), 1); /* status 0: none */
    assert_int_equal(create(f, "{\"name\":\"Danach\"}"), FIRST_BETNR);
    assert_int_equal(calls_with_status(f, "POST", ROUTE_BET, 200), 1);
}

static void test_fault_apply_drop_creates_while_the_client_sees_no_answer(void **state)
{
    struct fixture *f = *state;
    fault(f,
          "{\"method\":\"POST\",\"route\":\"" ROUTE_BET "\",\"drop\":true,\"apply\":true,"
          "\"count\":1}",
          200);
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":\"Verloren\"}", NULL), 0);
    assert_int_equal(stored_count(f), 1);
    json_t *rec = stored_record(f, FIRST_BETNR);
    assert_string_equal(str(rec, "name"), "Verloren");
    json_decref(rec);
    assert_int_equal(calls_with_status(f, "POST", ROUTE_BET, 0), 1);
    assert_int_equal(calls_with_status(f, "POST", ROUTE_BET, 200), 0);
}

static void test_fault_after_2_lets_two_through(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    fault(f,
          "{\"method\":\"GET\",\"route\":\"" ROUTE_RF "\",\"status\":500,\"after\":2,"
          "\"count\":2}",
          200);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 200);
    assert_int_equal(admin(f, "GET", "/_sim/faults", NULL, &out), 200);
    json_t *rule = json_array_get(json_object_get(out, "faults"), 0);
    assert_int_equal(num(rule, "after"), 1); /* what is left */
    assert_int_equal(num(rule, "count"), 2);
    json_decref(out);
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":\"X\"}", NULL), 200); /* no match */
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 200);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 500);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 500);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 200); /* count spent: rule gone */
    assert_int_equal(admin(f, "GET", "/_sim/faults", NULL, &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "faults")), 0);
    json_decref(out);
    assert_int_equal(calls_with_status(f, "GET", ROUTE_RF, 200), 3);
    assert_int_equal(calls_with_status(f, "GET", ROUTE_RF, 500), 2);
}

/* A rule without method and route matches every API call: "after":N faults the (N+1)-th call of a
 * session, whatever it is (the fault-point matrix). */
static void test_fault_after_without_route_counts_every_api_call(void **state)
{
    struct fixture *f = *state;
    fault(f, "{\"status\":503,\"after\":2,\"count\":1,\"apply\":true}", 200);
    json_int_t betnr = create(f, "{\"name\":\"Eins\"}");
    json_decref(get(f, betnr));
    char path[64];
    snprintf(path, sizeof path, ROUTE_BET "/%lld", (long long)betnr);
    assert_int_equal(admin(f, "PUT", "/_sim/rechtsformen", "[\"GmbH\"]", NULL), 200); /* admin */
    assert_int_equal(api(f, "PUT", path, "{\"name\":\"Zwei\"}", NULL), 503);          /* 3rd */
    json_t *rec = stored_record(f, betnr);
    assert_string_equal(str(rec, "name"), "Zwei"); /* applied */
    json_decref(rec);
    assert_int_equal(api(f, "PUT", path, "{\"name\":\"Drei\"}", NULL), 200);
}

static void test_fail_rate_set_and_cleared_at_runtime(void **state)
{
    struct fixture *f = *state;
    json_t *out;
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 200);
    fault(f, "{\"fail_rate\":1}", 200);
    assert_int_equal(admin(f, "GET", "/_sim/faults", NULL, &out), 200);
    assert_true(json_number_value(json_object_get(out, "fail_rate")) == 1.0);
    json_decref(out);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 503);
    assert_int_equal(api(f, "POST", ROUTE_BET, "{\"name\":\"X\"}", NULL), 503);
    assert_int_equal(stored_count(f), 0); /* the fail rate never applies */
    fault(f, "{\"fail_rate\":0}", 200);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 200);
    /* an empty body turns it off too, with every rule */
    fault(f, "{\"fail_rate\":1}", 200);
    fault(f, "{\"method\":\"GET\",\"route\":\"" ROUTE_RF "\",\"status\":500}", 200);
    fault(f, NULL, 200);
    assert_int_equal(admin(f, "GET", "/_sim/faults", NULL, &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "faults")), 0);
    assert_true(json_number_value(json_object_get(out, "fail_rate")) == 0.0);
    json_decref(out);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 200);
    assert_int_equal(calls_with_status(f, "GET", ROUTE_RF, 503), 1);
}

/* --fail-rate 1 at start: cleared at run time, restored by /_sim/reset. */
static void test_fail_rate_from_start_cleared_and_restored_by_reset(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(http(f, "GET", ROUTE_RF, NULL, NULL, NULL), 503);
    fault(f, "{\"fail_rate\":0}", 200);
    login(f);
    assert_int_equal(api(f, "GET", ROUTE_RF, NULL, NULL), 200);
    assert_int_equal(admin(f, "POST", "/_sim/reset", NULL, NULL), 200);
    assert_int_equal(http(f, "GET", ROUTE_RF, NULL, NULL, NULL), 503);
}

/* "kill_pid" (sim.h): the call is answered as usual, then the process dies; GET /_sim/log lists
 * the API calls in the order they were answered (the token call included). */
static void test_fault_kill_pid_after_the_answer_and_the_log(void **state)
{
    struct fixture *f = *state;
    struct th_proc victim;
    const char *argv[] = {"/bin/sleep", "60", NULL};
    assert_int_equal(th_proc_start(&victim, argv, NULL, false), 0);
    char rule[256];
    snprintf(rule, sizeof rule,
             "{\"method\":\"POST\",\"route\":\"" ROUTE_BET "\",\"after\":1,\"count\":1,"
             "\"kill_pid\":%d}",
             (int)victim.pid);
    fault(f, rule, 200);
    assert_int_equal(create(f, "{\"name\":\"Eins\"}"), FIRST_BETNR);
    assert_true(th_proc_alive(&victim));
    assert_int_equal(create(f, "{\"name\":\"Zwei\"}"), FIRST_BETNR + 1); /* answered ... */
    assert_int_equal(th_proc_wait(&victim, WAIT_MS), 128 + 9);           /* ... then killed */
    json_t *out;
    assert_int_equal(admin(f, "GET", "/_sim/log", NULL, &out), 200);
    json_t *calls = json_object_get(out, "calls");
    assert_int_equal(json_array_size(calls), 3);
    assert_string_equal(str(json_array_get(calls, 0), "route"), ROUTE_TOKEN);
    for (size_t i = 1; i < 3; i++) {
        json_t *c = json_array_get(calls, i);
        assert_int_equal(num(c, "seq"), (json_int_t)i);
        assert_string_equal(str(c, "method"), "POST");
        assert_string_equal(str(c, "route"), ROUTE_BET);
        assert_int_equal(num(c, "status"), 200);
    }
    json_decref(out);
    assert_int_equal(admin(f, "GET", "/_sim/log?since=2", NULL, &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "calls")), 1);
    json_decref(out);
    assert_int_equal(admin(f, "POST", "/_sim/reset", NULL, NULL), 200); /* empties the log */
    assert_int_equal(admin(f, "GET", "/_sim/log", NULL, &out), 200);
    assert_int_equal(num(out, "total"), 0);
    json_decref(out);
}

static void test_fault_shapes_refused_400(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        "{\"status\":503,\"drop\":true}",     /* a drop has no status */
        "{\"apply\":true}",                   /* apply what? */
        "{\"apply\":true,\"delay_ms\":100}",  /* still nothing to answer with */
        "{\"status\":503,\"apply\":1}",       /* booleans */
        "{\"status\":503,\"after\":-1}",      /* after >= 0 */
        "{\"fail_rate\":1.5}",                /* [0, 1] */
        "{\"fail_rate\":\"0.1\"}",            /* a number */
        "{\"fail_rate\":0.1,\"status\":503}", /* set alone */
        "[{\"fail_rate\":0.1}]",              /* not a rule */
        "{\"kill_pid\":1}",                   /* not init */
        "{\"kill_pid\":\"12\"}",              /* a number */
        "{\"ui_edit\":{\"name\":\"X\"}}",     /* espocrm-sim only */
    };
    json_t *out;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        fault(f, bad[i], 400);
    assert_int_equal(admin(f, "GET", "/_sim/faults", NULL, &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "faults")), 0); /* none half-added */
    assert_true(json_number_value(json_object_get(out, "fail_rate")) == 0.0);
    json_decref(out);
}

/* ---- command line ------------------------------------------------------------------------- */

static void test_help_exits_0(void **state)
{
    (void)state;
    char bin[512], out[8192];
    const char *argv[] = {th_bin(SIM, bin, sizeof bin), "--help", NULL};
    assert_int_equal(th_run(argv, NULL, out, sizeof out, 10000), 0);
    assert_non_null(strstr(out, "--api-key"));
    assert_non_null(strstr(out, "--token-ttl-s"));
}

static void test_bad_options_exit_2(void **state)
{
    (void)state;
    static const char *const bad[][3] = {
        {"--bogus", NULL, NULL},    {"--token-ttl-s", "abc", NULL}, {"--token-ttl-s", "0", NULL},
        {"--api-key", "!!!", NULL}, {"--port", "70000", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char bin[512], out[4096];
        const char *argv[] = {th_bin(SIM, bin, sizeof bin), bad[i][0], bad[i][1], NULL};
        int rc = th_run(argv, NULL, out, sizeof out, 10000);
        if (rc != 2)
            fail_msg("%s %s: exit %d, expected 2 (%s)", bad[i][0], bad[i][1] ? bad[i][1] : "", rc,
                     out);
    }
}

#define T(fn, setup_fn) cmocka_unit_test_setup_teardown(fn, setup_fn, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_token_ok, setup),
        T(test_token_accepts_fraction_and_offset, setup),
        T(test_token_wrong_signature_401, setup),
        T(test_token_wrong_password_401, setup),
        T(test_token_replayed_nonce_401, setup),
        T(test_token_stale_timestamp_401, setup),
        T(test_token_future_timestamp_401, setup),
        T(test_token_malformed_body_400, setup),
        T(test_api_routes_need_bearer_401, setup),
        T(test_token_expires_after_ttl, setup_ttl_1s),
        T(test_post_then_get, setup_logged_in),
        T(test_betnr_counts_up, setup_logged_in),
        T(test_put_identical_twice_gives_two_row_ids_in_arrays, setup_logged_in),
        T(test_api_ignores_the_other_six_fields, setup_logged_in),
        T(test_put_null_clears_absent_keeps, setup_logged_in),
        T(test_unknown_rechtsform_400, setup_logged_in),
        T(test_field_over_its_length_400, setup_logged_in),
        T(test_length_counts_characters_not_bytes, setup_logged_in),
        T(test_geburtsdatum_format, setup_logged_in),
        T(test_name_required_400, setup_logged_in),
        T(test_bad_json_400, setup_logged_in),
        T(test_unknown_betnr_404, setup_logged_in),
        T(test_delete_beteiligter_403, setup_logged_in),
        T(test_rechtsformen_get, setup_logged_in),
        T(test_rechtsformen_replaced_by_sim_route, setup_logged_in),
        T(test_rechtsformen_put_needs_array_of_strings, setup_logged_in),
        T(test_komm_kommkz_shown_as_0_but_kept, setup_logged_in),
        T(test_komm_post_needs_kommkz_1_to_12, setup_logged_in),
        T(test_komm_put_ignores_kommkz_and_keeps_beteiligter_row_id, setup_logged_in),
        T(test_komm_unknown_id_404, setup_logged_in),
        T(test_komm_delete_403_for_api_allowed_for_user, setup_logged_in),
        T(test_ui_create_sets_any_field_and_shows_true_kommkz, setup_logged_in),
        T(test_ui_edit_changes_row_id_and_geaendert_am, setup_logged_in),
        T(test_geaendert_am_in_sim_time_zone, setup_tz_plus14),
        T(test_ui_komm_edit_may_change_kommkz, setup_logged_in),
        T(test_ui_komm_add, setup_logged_in),
        T(test_state_lists_every_record_by_betnr, setup_logged_in),
        T(test_fault_rule_two_503_then_200, setup_logged_in),
        T(test_fail_rate_1_answers_503, setup_fail_rate_1),
        T(test_latency_delays_answers, setup_latency_200),
        T(test_stats_count_exactly_the_api_calls, setup),
        T(test_reset_clears_state_tokens_and_stats, setup_logged_in),
        T(test_fault_apply_503_creates_while_the_client_sees_503, setup_logged_in),
        T(test_fault_drop_closes_without_effect, setup_logged_in),
        T(test_fault_apply_drop_creates_while_the_client_sees_no_answer, setup_logged_in),
        T(test_fault_after_2_lets_two_through, setup_logged_in),
        T(test_fault_after_without_route_counts_every_api_call, setup_logged_in),
        T(test_fail_rate_set_and_cleared_at_runtime, setup_logged_in),
        T(test_fail_rate_from_start_cleared_and_restored_by_reset, setup_fail_rate_1),
        T(test_fault_kill_pid_after_the_answer_and_the_log, setup_logged_in),
        T(test_fault_shapes_refused_400, setup),
        cmocka_unit_test(test_help_exits_0),
        cmocka_unit_test(test_bad_options_exit_2),
    };
    return cmocka_run_group_tests_name("advoware-sim", tests, NULL, NULL);
}
