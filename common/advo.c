/* advo.c: the Advoware REST client (see advo.h).
 *
 * Token: this client's copy first, then Redis vmh:advoware:token (TTL = expires_in - 60 s);
 * on a miss one worker takes vmh:advoware:token:lock and fetches while the others poll the
 * key. A 401 drops the token (in Redis only if it is still the one that failed) and repeats the
 * call once with a fresh one. Rate limit: one Lua token bucket in Redis for every worker. */
#include "advo.h"

#include "cfg.h"
#include "httpc.h"
#include "synctime.h"
#include "util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <uv.h>

#define SYSTEM             "advoware"
#define TOKEN_KEY          "vmh:advoware:token"
#define TOKEN_LOCK_KEY     "vmh:advoware:token:lock"
#define TOKEN_LOCK_MS      10000
#define TOKEN_POLL_MS      50
#define TOKEN_MARGIN_S     60 /* the cached token expires this much before Advoware's */
#define RATE_KEY           "vmh:advoware:ratelimit"
#define RECHTSFORMEN_TTL_S 3600

struct advo {
    struct advo_conf conf; /* strings below are copies */
    char *strs[9];
    struct httpc *http;
    struct redis_client *redis;
    struct apistat st;
    char token[2048];
    bool last_sent; /* the last call's request left this host (httpc_resp.sent) */
    bool refused;   /* the last call failed because Advoware refused the credentials */
};

/* Token bucket: KEYS[1] hash {tokens, ts}; ARGV rate/s, capacity, now ms. 0 = taken, else the
 * ms to wait. */
static const char bucket_src[] =
    "local rate = tonumber(ARGV[1]) local cap = tonumber(ARGV[2]) local now = tonumber(ARGV[3]) "
    "local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts') "
    "local tokens = tonumber(s[1]) or cap local ts = tonumber(s[2]) or now "
    "if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate / 1000) ts = now end "
    "local wait = 0 "
    "if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end "
    "redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts) "
    "redis.call('PEXPIRE', KEYS[1], math.ceil(cap * 1000 / rate) + 1000) "
    "return wait";

static uv_once_t scripts_once = UV_ONCE_INIT;
static struct redis_script bucket_script;

static void init_scripts(void)
{
    redis_script_init(&bucket_script, bucket_src);
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- set-up ------------------------------------------------------------------------------- */

struct advo_conf advo_conf_from_cfg(const struct cfg *cfg)
{
    return (struct advo_conf){
        .base_url = cfg_str(cfg, "ADVOWARE_URL"),
        .token_url = cfg_str(cfg, "ADVOWARE_TOKEN_URL"),
        .app_id = cfg_str(cfg, "ADVOWARE_APP_ID"),
        .api_key_b64 = cfg_str(cfg, "ADVOWARE_API_KEY"),
        .kanzlei = cfg_str(cfg, "ADVOWARE_KANZLEI"),
        .database = cfg_str(cfg, "ADVOWARE_DATABASE"),
        .user = cfg_str(cfg, "ADVOWARE_USER"),
        .password = cfg_str(cfg, "ADVOWARE_PASSWORD"),
        .product = (int)cfg_int(cfg, "ADVOWARE_PRODUCT"),
        .role = (int)cfg_int(cfg, "ADVOWARE_ROLE"),
        .timeout_ms = (long)cfg_duration_ms(cfg, "HTTP_TIMEOUT_MS"),
        .max_rps = cfg_double(cfg, "ADVOWARE_MAX_RPS"),
    };
}

struct advo *advo_new(const struct advo_conf *conf, struct redis_client *redis,
                      const struct apistat *st, char *err, size_t errlen)
{
    util_err_reset(err, errlen);
    uv_once(&scripts_once, init_scripts);
    struct advo *a = calloc(1, sizeof *a);
    struct httpc_opts o = {.timeout_ms = conf->timeout_ms};
    if (!a || !(a->http = httpc_new(&o))) {
        free(a);
        util_err(err, errlen, "advoware: out of memory");
        return NULL;
    }
    a->conf = *conf;
    const char **fields[] = {&a->conf.base_url,    &a->conf.token_url, &a->conf.app_id,
                             &a->conf.api_key_b64, &a->conf.kanzlei,   &a->conf.database,
                             &a->conf.user,        &a->conf.password};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = *fields[i] ? *fields[i] : "";
        a->strs[i] = strdup(v);
        *fields[i] = a->strs[i] ? a->strs[i] : "";
    }
    if (!a->conf.token_url[0])
        a->conf.token_url = a->conf.base_url;
    a->redis = redis;
    if (st)
        a->st = *st;
    return a;
}

void advo_free(struct advo *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < sizeof a->strs / sizeof a->strs[0]; i++)
        free(a->strs[i]);
    httpc_free(a->http);
    OPENSSL_cleanse(a->token, sizeof a->token);
    free(a);
}

/* ---- token -------------------------------------------------------------------------------- */

json_t *advo_token_request(const struct advo_conf *conf, const char *nonce, const char *timestamp,
                           char *err, size_t errlen)
{
    const char *b64 = conf->api_key_b64 ? conf->api_key_b64 : "";
    size_t len = strlen(b64);
    unsigned char key[1024], mac[EVP_MAX_MD_SIZE];
    char msg[512], sig[4 * EVP_MAX_MD_SIZE / 3 + 8];
    unsigned int maclen = 0;

    util_err_reset(err, errlen);
    if (!conf->app_id || !conf->kanzlei || !conf->database || !conf->user || !conf->password) {
        util_err(err, errlen, "advoware token: incomplete configuration");
        return NULL;
    }
    int keylen = util_b64_decode(b64, len, key, sizeof key);
    if (keylen <= 0) {
        util_err(err, errlen, "ADVOWARE_API_KEY: not base64");
        return NULL;
    }
    snprintf(msg, sizeof msg, "%d:%s:%s:%s", conf->product, conf->app_id, nonce, timestamp);
    bool signed_ok = HMAC(EVP_sha512(), key, keylen, (const unsigned char *)msg, strlen(msg), mac,
                          &maclen) != NULL;
    OPENSSL_cleanse(key, sizeof key);
    if (!signed_ok) {
        util_err(err, errlen, "advoware token: HMAC-SHA512 failed");
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)sig, mac, (int)maclen);
    json_t *req =
        json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:s,s:s,s:s,s:s}", "AppID", conf->app_id, "Kanzlei",
                  conf->kanzlei, "Database", conf->database, "User", conf->user, "Role", conf->role,
                  "Product", conf->product, "Password", conf->password, "Nonce", nonce,
                  "HMAC512Signature", sig, "RequestTimeStamp", timestamp);
    if (!req)
        util_err(err, errlen, "advoware token: request not built (text not UTF-8?)");
    return req;
}

/* A fresh UUID (version 4) and the ISO-8601 UTC time with milliseconds (synctime.h). */
static void nonce_and_time(char *nonce, size_t nlen, char *ts, size_t tlen)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        memset(b, 0, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(nonce, nlen, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    st_format_utc_ms((long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, ts, tlen);
}

/* POST {token_url}/api/v1/Token; on success the token into a->token and Redis. */
static int fetch_token(struct advo *a, char *err, size_t errlen)
{
    char nonce[40], ts[64], url[1024];
    nonce_and_time(nonce, sizeof nonce, ts, sizeof ts);
    json_t *body = advo_token_request(&a->conf, nonce, ts, err, errlen), *out = NULL;
    if (!body)
        return -1;
    snprintf(url, sizeof url, "%s/api/v1/Token", a->conf.token_url);
    struct httpc_resp r;
    char herr[256];
    int rc = httpc_json(a->http, "POST", url, NULL, body, &r, &out, herr, sizeof herr);
    json_decref(body);
    apistat_record(&a->st, SYSTEM, "POST", r.status, r.elapsed_ms);
    const char *tok = json_string_value(json_object_get(out, "access_token"));
    long long ttl = json_integer_value(json_object_get(out, "expires_in"));
    int ok = rc == 0 && r.status == 200 && tok && strlen(tok) < sizeof a->token;
    if (ok) {
        snprintf(a->token, sizeof a->token, "%s", tok);
        long long px = (ttl - TOKEN_MARGIN_S) * 1000;
        if (px < 1000)
            px = ttl > 1 ? (ttl - 1) * 1000 : 1000;
        (void)redis_set(a->redis, TOKEN_KEY, a->token, px, herr, sizeof herr); /* best effort */
    } else if (rc != 0) {
        util_err(err, errlen, "advoware token: %s", herr);
    } else {
        /* 400/401/403: these credentials get no token (SPEC §5.3 "Credentials rejected") */
        a->refused = r.status == 400 || r.status == 401 || r.status == 403;
        util_err(err, errlen, "advoware token: answered %ld", r.status);
    }
    json_decref(out);
    httpc_resp_clear(&r);
    return ok ? 0 : -1;
}

/* The shared token from Redis into a->token; 1 found, 0 none (an error reply or a token too
 * long counts as none: this worker fetches one), -1 when Redis did not answer. */
static int cached_token(struct advo *a, char *err, size_t errlen)
{
    char rerr[256], *tok = NULL;
    size_t len = 0;
    util_err_reset(err, errlen);
    int rc = redis_get(a->redis, TOKEN_KEY, &tok, &len, rerr, sizeof rerr);
    if (rc == REDIS_ENOREPLY) {
        util_err(err, errlen, "%s", rerr);
        return -1;
    }
    int found = rc == 1 && len < sizeof a->token;
    if (found)
        snprintf(a->token, sizeof a->token, "%s", tok);
    free(tok);
    return found;
}

/* Makes sure a->token holds a token (SPEC §4.5). 0, or -1 with err. */
static int ensure_token(struct advo *a, char *err, size_t errlen)
{
    if (a->token[0])
        return 0;
    int c = cached_token(a, err, errlen);
    if (c != 0)
        return c > 0 ? 0 : -1;
    char lock[40], ts[64];
    nonce_and_time(lock, sizeof lock, ts, sizeof ts);
    bool mine = false;
    if (redis_set_nx_px(a->redis, TOKEN_LOCK_KEY, lock, TOKEN_LOCK_MS, &mine, err, errlen) != 0)
        return -1;
    if (mine) {
        int rc = fetch_token(a, err, errlen);
        char rerr[128];
        (void)redis_del_if_equal(a->redis, TOKEN_LOCK_KEY, lock, rerr, sizeof rerr);
        return rc;
    }
    /* Another worker fetches: wait for its token, then fetch ourselves. */
    for (long long waited = 0; waited < TOKEN_LOCK_MS; waited += TOKEN_POLL_MS) {
        sleep_ms(TOKEN_POLL_MS);
        c = cached_token(a, err, errlen);
        if (c != 0)
            return c > 0 ? 0 : -1;
    }
    return fetch_token(a, err, errlen);
}

unsigned long advo_calls(const struct advo *a)
{
    return a ? a->st.made : 0;
}

bool advo_credentials_refused(const struct advo *a)
{
    return a->refused;
}

int advo_token_check(struct advo *a, char *err, size_t errlen)
{
    util_err_reset(err, errlen);
    return fetch_token(a, err, errlen);
}

/* A 401 answered to `token`: forget it here and in Redis (if it is still the shared one). */
static void drop_token(struct advo *a)
{
    char err[128];
    (void)redis_del_if_equal(a->redis, TOKEN_KEY, a->token, err, sizeof err);
    OPENSSL_cleanse(a->token, sizeof a->token);
}

/* ---- calls -------------------------------------------------------------------------------- */

/* Waits for a request slot of ADVOWARE_MAX_RPS (all workers together). 0, or -1 with err when
 * Redis did not answer; a bucket Redis refuses (an error reply) lets the call through. */
static int rate_limit(struct advo *a, char *err, size_t errlen)
{
    if (a->conf.max_rps <= 0)
        return 0;
    char rate[32], cap[32], now[32];
    snprintf(rate, sizeof rate, "%.6f", a->conf.max_rps);
    snprintf(cap, sizeof cap, "%.6f", a->conf.max_rps < 1 ? 1.0 : a->conf.max_rps);
    for (;;) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        snprintf(now, sizeof now, "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
        const char *keys[] = {RATE_KEY}, *args[] = {rate, cap, now};
        char rerr[256];
        long long wait = 0;
        util_err_reset(err, errlen);
        int rc =
            redis_eval_int(a->redis, &bucket_script, 1, keys, 3, args, &wait, rerr, sizeof rerr);
        if (rc == REDIS_ENOREPLY) {
            util_err(err, errlen, "%s", rerr);
            return -1;
        }
        if (wait <= 0) /* also on an error reply: wait is 0 */
            return 0;
        sleep_ms(wait);
    }
}

static int call(struct advo *a, const char *method, const char *path, const json_t *body,
                long *status, json_t **out, char *err, size_t errlen)
{
    char url[1024], auth[2100], herr[256];
    snprintf(url, sizeof url, "%s/api/v1/advonet%s", a->conf.base_url, path);
    util_err_reset(err, errlen);
    *status = 0;
    a->last_sent = false;
    a->refused = false;
    if (out)
        *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (rate_limit(a, err, errlen) != 0 || ensure_token(a, err, errlen) != 0) {
            *status = 0; /* no answer to this call (a 401 before it is not the answer) */
            return -1;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", a->token);
        const char *headers[] = {auth, NULL};
        struct httpc_resp r;
        json_t *o = NULL;
        int rc = httpc_json(a->http, method, url, headers, body, &r, &o, herr, sizeof herr);
        OPENSSL_cleanse(auth, sizeof auth);
        apistat_record(&a->st, SYSTEM, method, r.status, r.elapsed_ms);
        *status = r.status;
        a->last_sent = r.sent;
        httpc_resp_clear(&r);
        if (rc != 0) {
            util_err(err, errlen, "advoware %s %s: %s", method, path, herr);
            return -1;
        }
        if (*status == 401 && attempt == 0) { /* expired or revoked: once more, fresh */
            json_decref(o);
            drop_token(a);
            continue;
        }
        a->refused = *status == 401; /* a fresh token refused too */
        if (out)
            *out = o;
        else
            json_decref(o);
        return 0;
    }
    return 0;
}

int advo_get_beteiligte(struct advo *a, long long betnr, long *status, json_t **out, char *err,
                        size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "/Beteiligte/%lld", betnr);
    return call(a, "GET", path, NULL, status, out, err, errlen);
}

/* Hands o to *out (or drops it) as one record: Advoware answers a PUT, and may answer a POST,
 * with an array of one object (SPEC §7.2, §5.3); any other shape stays as it came. */
static void one_record(json_t *o, json_t **out)
{
    if (json_is_array(o) && json_array_size(o) == 1) {
        json_t *first = json_incref(json_array_get(o, 0));
        json_decref(o);
        o = first;
    }
    if (out)
        *out = o;
    else
        json_decref(o);
}

int advo_post_beteiligte(struct advo *a, const json_t *body, long *status, json_t **out,
                         bool *maybe_created, char *err, size_t errlen)
{
    json_t *o = NULL;
    int rc = call(a, "POST", "/Beteiligte", body, status, &o, err, errlen);
    *maybe_created = rc != 0 && a->last_sent;
    one_record(o, out);
    return rc;
}

int advo_put_beteiligte(struct advo *a, long long betnr, const json_t *body, long *status,
                        json_t **out, char *err, size_t errlen)
{
    char path[64];
    json_t *o = NULL;
    snprintf(path, sizeof path, "/Beteiligte/%lld", betnr);
    int rc = call(a, "PUT", path, body, status, &o, err, errlen);
    one_record(o, out);
    return rc;
}

int advo_post_kommunikation(struct advo *a, long long betnr, const json_t *body, long *status,
                            json_t **out, char *err, size_t errlen)
{
    char path[80];
    snprintf(path, sizeof path, "/Beteiligte/%lld/Kommunikationen", betnr);
    return call(a, "POST", path, body, status, out, err, errlen);
}

int advo_put_kommunikation(struct advo *a, long long betnr, long long kommid, const json_t *body,
                           long *status, json_t **out, char *err, size_t errlen)
{
    char path[96];
    snprintf(path, sizeof path, "/Beteiligte/%lld/Kommunikationen/%lld", betnr, kommid);
    return call(a, "PUT", path, body, status, out, err, errlen);
}

/* Advoware's Rechtsformen, fetched at most once an hour per process (SPEC §5.1) and shared by
 * every client of the same base URL: one GET per process, not per executor thread. */
static struct {
    uv_mutex_t mu;
    char *base_url;
    json_t *list;
    long long at; /* monotonic ms */
} rf_cache;
static uv_once_t rf_once = UV_ONCE_INIT;

static void rf_init(void)
{
    uv_mutex_init(&rf_cache.mu);
}

int advo_rechtsform_allowed(struct advo *a, const char *value, char *err, size_t errlen)
{
    util_err_reset(err, errlen);
    if (!value || !*value)
        return 1;
    uv_once(&rf_once, rf_init);
    uv_mutex_lock(&rf_cache.mu);
    long long now = util_monotonic_ms();
    int rc = 0;
    bool same = rf_cache.base_url && strcmp(rf_cache.base_url, a->conf.base_url) == 0;
    if (!same || !rf_cache.list || now - rf_cache.at > RECHTSFORMEN_TTL_S * 1000LL) {
        long status = 0;
        json_t *list = NULL;
        char *url = strdup(a->conf.base_url);
        if (!url || call(a, "GET", "/Rechtsformen", NULL, &status, &list, err, errlen) != 0) {
            if (!url)
                util_err(err, errlen, "out of memory");
            free(url);
            rc = -1;
            goto out;
        }
        if (status != 200 || !json_is_array(list)) {
            json_decref(list);
            free(url);
            util_err(err, errlen, "advoware GET Rechtsformen: %ld", status);
            rc = -1;
            goto out;
        }
        json_decref(rf_cache.list);
        free(rf_cache.base_url);
        rf_cache.list = list;
        rf_cache.base_url = url;
        rf_cache.at = now;
    }
    size_t i;
    json_t *v;
    json_array_foreach(rf_cache.list, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v)
                                          : json_string_value(json_object_get(v, "name"));
        if (s && strcmp(s, value) == 0) {
            rc = 1;
            break;
        }
    }
out:
    uv_mutex_unlock(&rf_cache.mu);
    return rc;
}

void advo_rechtsformen_forget(void)
{
    uv_once(&rf_once, rf_init);
    uv_mutex_lock(&rf_cache.mu);
    json_decref(rf_cache.list);
    free(rf_cache.base_url);
    rf_cache.list = NULL;
    rf_cache.base_url = NULL;
    uv_mutex_unlock(&rf_cache.mu);
}
