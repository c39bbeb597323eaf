/* redis.c: Redis access on hiredis' synchronous API (SPEC §4.4, §4.5, §9 REDIS_URL): URL
 * parsing, lazy connect with AUTH and SELECT, reconnect with backoff, the typed commands (GET,
 * SET, SET NX PX, DEL, EXISTS, the one compare-and-delete script) and Lua scripts by SHA with a
 * fallback to EVAL. A client owns its redisContext; raw replies belong to the caller
 * (freeReplyObject), typed results as redis.h says. Error texts name host and port, never the
 * password. */
#include "redis.h"

#include "util.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define REDIS_DEFAULT_PORT       6379
#define REDIS_CONNECT_TIMEOUT_MS 1000 /* used when the caller passes <= 0 */
#define REDIS_COMMAND_TIMEOUT_MS 5000
#define REDIS_BACKOFF_MIN_MS     100
#define REDIS_BACKOFF_MAX_MS     5000

struct redis_client {
    struct redis_url url;
    int connect_timeout_ms;
    int command_timeout_ms;
    redisContext *ctx;         /* NULL while not connected */
    long long last_attempt_ms; /* monotonic time of the last connect attempt */
    long long backoff_ms;      /* 0 after a reply; else the gap before the next attempt */
};

static struct timeval ms_to_timeval(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* ---- URL ---------------------------------------------------------------------------------- */

/* Percent-decodes [s, s+len) into out (NUL-terminated). -1 on a bad escape, an escaped NUL or
 * when the result does not fit. */
static int percent_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi = i + 2 < len ? util_hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? util_hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= outlen)
            return -1;
        out[n++] = ch;
    }
    out[n] = '\0';
    return 0;
}

/* Parses decimal digits at *p up to a non-digit; -1 if none or above max. */
static int parse_number(const char **p, long max, long *out)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    *p = s;
    *out = v;
    return 0;
}

static bool host_char_ok(char ch, bool bracketed)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        ch == '.')
        return true;
    return bracketed ? ch == ':' : (ch == '-' || ch == '_');
}

int redis_url_parse(const char *url, struct redis_url *out, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    static const char tls_scheme[] = "rediss://";
    const char *p, *at, *host_start, *host_end;
    bool bracketed;
    long num;

    util_err_reset(err, errlen);
    if (!out) {
        util_err(err, errlen, "redis url: no output struct");
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->port = REDIS_DEFAULT_PORT;
    if (!url) {
        util_err(err, errlen, "redis url: missing");
        return -1;
    }
    if (strncasecmp(url, tls_scheme, sizeof tls_scheme - 1) == 0) {
        util_err(err, errlen,
                 "redis url: rediss:// (TLS) is not supported: hiredis 0.14 has no TLS; use "
                 "redis:// (or a TLS sidecar)");
        goto fail;
    }
    if (strncasecmp(url, scheme, sizeof scheme - 1) != 0) {
        util_err(err, errlen, "redis url: must start with redis://");
        goto fail;
    }
    p = url + sizeof scheme - 1;

    /* User info ends at the last '@': nothing after it (host, port, db) may hold one, so an
     * unescaped '@' or '/' in the password still parses. */
    at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        char user[256];
        if (!colon) {
            util_err(err, errlen, "redis url: user info must be ':password' or 'user:password'");
            goto fail;
        }
        if (percent_decode(p, (size_t)(colon - p), user, sizeof user) != 0) {
            util_err(err, errlen, "redis url: bad user name (percent-escape or length)");
            goto fail;
        }
        if (user[0] && strcmp(user, "default") != 0) {
            util_err(err, errlen,
                     "redis url: ACL users other than 'default' are not supported (AUTH sends "
                     "the password only)");
            goto fail;
        }
        if (percent_decode(colon + 1, (size_t)(at - colon - 1), out->password,
                           sizeof out->password) != 0) {
            util_err(err, errlen,
                     "redis url: bad password (malformed or %%00 percent-escape, or longer than "
                     "%zu bytes)",
                     sizeof out->password - 1);
            goto fail;
        }
        p = at + 1;
    }

    bracketed = *p == '[';
    if (bracketed) { /* IPv6 literal */
        host_start = p + 1;
        host_end = strchr(host_start, ']');
        if (!host_end) {
            util_err(err, errlen, "redis url: '[' without ']' in host");
            goto fail;
        }
        p = host_end + 1;
    } else {
        host_start = p;
        while (*p && *p != ':' && *p != '/')
            p++;
        host_end = p;
    }
    if (host_end == host_start) {
        util_err(err, errlen, "redis url: empty host");
        goto fail;
    }
    for (const char *h = host_start; h < host_end; h++) {
        if (!host_char_ok(*h, bracketed)) {
            util_err(err, errlen, "redis url: invalid character in host");
            goto fail;
        }
    }
    if ((size_t)(host_end - host_start) >= sizeof out->host) {
        util_err(err, errlen, "redis url: host longer than %zu bytes", sizeof out->host - 1);
        goto fail;
    }
    memcpy(out->host, host_start, (size_t)(host_end - host_start));
    out->host[host_end - host_start] = '\0';

    if (*p == ':') {
        p++;
        if (parse_number(&p, 65535, &num) != 0 || num == 0 || (*p && *p != '/')) {
            util_err(err, errlen, "redis url: port must be a number 1..65535");
            goto fail;
        }
        out->port = (int)num;
    }
    if (*p == '/') {
        p++;
        if (*p) {
            if (parse_number(&p, INT_MAX, &num) != 0 || *p) {
                util_err(err, errlen, "redis url: db must be a number 0..%d", INT_MAX);
                goto fail;
            }
            out->db = (int)num;
        }
    }
    if (*p) {
        util_err(err, errlen, "redis url: unexpected text after the host (only [:port][/db])");
        goto fail;
    }
    return 0;

fail:
    memset(out, 0, sizeof *out); /* no half-parsed password left behind */
    out->port = REDIS_DEFAULT_PORT;
    return -1;
}

/* ---- client ------------------------------------------------------------------------------- */

struct redis_client *redis_client_new(const struct redis_url *url, int connect_timeout_ms,
                                      int command_timeout_ms)
{
    struct redis_client *c;
    if (!url)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->url = *url;
    c->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : REDIS_CONNECT_TIMEOUT_MS;
    c->command_timeout_ms = command_timeout_ms > 0 ? command_timeout_ms : REDIS_COMMAND_TIMEOUT_MS;
    return c;
}

static void drop_connection(struct redis_client *c)
{
    redisFree(c->ctx);
    c->ctx = NULL;
}

void redis_client_free(struct redis_client *c)
{
    if (!c)
        return;
    drop_connection(c);
    explicit_bzero(c->url.password, sizeof c->url.password);
    free(c);
}

bool redis_client_connected(const struct redis_client *c)
{
    return c && c->ctx;
}

void redis_client_disconnect(struct redis_client *c)
{
    if (c)
        drop_connection(c);
}

/* A failed connect or a dropped connection: the next attempt waits longer. */
static void note_failure(struct redis_client *c)
{
    if (c->backoff_ms == 0)
        c->backoff_ms = REDIS_BACKOFF_MIN_MS;
    else if (c->backoff_ms < REDIS_BACKOFF_MAX_MS)
        c->backoff_ms =
            c->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Describes why ctx failed; saved_errno is errno right after the failing hiredis call, which
 * is EAGAIN when a command ran into the socket timeout. */
static void set_ctx_err(const struct redis_client *c, const redisContext *ctx, int saved_errno,
                        const char *what, char *err, size_t errlen)
{
    bool is_command = strcmp(what, "connect") != 0;
    if (!ctx) {
        util_err(err, errlen, "redis %s:%d: %s: out of memory", c->url.host, c->url.port, what);
    } else if (is_command && ctx->err == REDIS_ERR_IO &&
               (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
        util_err(err, errlen, "redis %s:%d: %s: timed out after %d ms", c->url.host, c->url.port,
                 what, c->command_timeout_ms);
    } else {
        util_err(err, errlen, "redis %s:%d: %s: %s", c->url.host, c->url.port, what,
                 ctx->err ? ctx->errstr : "no reply");
    }
}

/* Runs one setup command (AUTH, SELECT) on a fresh context: 0 if it answered +OK. */
static int setup_command(struct redis_client *c, redisContext *ctx, const char *what, int argc,
                         const char **argv, char *err, size_t errlen)
{
    redisReply *reply = redisCommandArgv(ctx, argc, argv, NULL);
    int saved_errno = errno;
    int rc = -1;
    if (!reply) {
        set_ctx_err(c, ctx, saved_errno, what, err, errlen);
        return -1;
    }
    if (reply->type == REDIS_REPLY_STATUS && strcasecmp(reply->str, "OK") == 0)
        rc = 0;
    else if (reply->type == REDIS_REPLY_ERROR)
        util_err(err, errlen, "redis %s:%d: %s failed: %s", c->url.host, c->url.port, what,
                 reply->str);
    else
        util_err(err, errlen, "redis %s:%d: %s failed: unexpected reply type %d", c->url.host,
                 c->url.port, what, reply->type);
    freeReplyObject(reply);
    return rc;
}

static int connect_now(struct redis_client *c, char *err, size_t errlen)
{
    redisContext *ctx;
    int saved_errno;
    char dbtext[16];

    c->last_attempt_ms = util_monotonic_ms();
    ctx = redisConnectWithTimeout(c->url.host, c->url.port, ms_to_timeval(c->connect_timeout_ms));
    saved_errno = errno;
    if (!ctx || ctx->err) {
        set_ctx_err(c, ctx, saved_errno, "connect", err, errlen);
        goto fail;
    }
    if (redisSetTimeout(ctx, ms_to_timeval(c->command_timeout_ms)) != REDIS_OK) {
        set_ctx_err(c, ctx, errno, "set timeout", err, errlen);
        goto fail;
    }
    (void)redisEnableKeepAlive(ctx); /* best effort: finds dead peers of idle connections */
    if (c->url.password[0]) {
        const char *argv[] = {"AUTH", c->url.password};
        if (setup_command(c, ctx, "AUTH", 2, argv, err, errlen) != 0)
            goto fail;
    }
    if (c->url.db != 0) {
        const char *argv[] = {"SELECT", dbtext};
        snprintf(dbtext, sizeof dbtext, "%d", c->url.db);
        if (setup_command(c, ctx, "SELECT", 2, argv, err, errlen) != 0)
            goto fail;
    }
    c->ctx = ctx;
    return 0;

fail:
    redisFree(ctx);
    note_failure(c);
    return -1;
}

int redis_client_connect(struct redis_client *c, bool force, char *err, size_t errlen)
{
    util_err_reset(err, errlen);
    if (!c) {
        util_err(err, errlen, "redis: no client");
        return -1;
    }
    if (c->ctx)
        return 0;
    if (!force && c->backoff_ms > 0) {
        long long wait = c->last_attempt_ms + c->backoff_ms - util_monotonic_ms();
        if (wait > 0) {
            util_err(err, errlen,
                     "redis %s:%d: not connected; reconnect backoff, next attempt in %lld ms",
                     c->url.host, c->url.port, wait);
            return -1;
        }
    }
    return connect_now(c, err, errlen);
}

/* After a hiredis command call: a reply resets the backoff; NULL drops the connection. */
static redisReply *finish_command(struct redis_client *c, redisReply *reply, int saved_errno,
                                  char *err, size_t errlen)
{
    if (reply) {
        c->backoff_ms = 0;
        return reply;
    }
    set_ctx_err(c, c->ctx, saved_errno, "command", err, errlen);
    drop_connection(c);
    note_failure(c);
    return NULL;
}

redisReply *redis_command_argv(struct redis_client *c, int argc, const char **argv,
                               const size_t *argvlen, char *err, size_t errlen)
{
    redisReply *reply;
    util_err_reset(err, errlen);
    if (!c || argc <= 0 || !argv) {
        util_err(err, errlen, "redis: bad arguments (no client or empty command)");
        return NULL;
    }
    if (redis_client_connect(c, false, err, errlen) != 0)
        return NULL;
    reply = redisCommandArgv(c->ctx, argc, argv, argvlen);
    return finish_command(c, reply, errno, err, errlen);
}

redisReply *redis_command(struct redis_client *c, char *err, size_t errlen, const char *fmt, ...)
{
    redisReply *reply;
    va_list ap;
    util_err_reset(err, errlen);
    if (!c || !fmt) {
        util_err(err, errlen, "redis: bad arguments (no client or format)");
        return NULL;
    }
    if (redis_client_connect(c, false, err, errlen) != 0)
        return NULL;
    va_start(ap, fmt);
    reply = redisvCommand(c->ctx, fmt, ap);
    va_end(ap);
    return finish_command(c, reply, errno, err, errlen);
}

/* ---- typed commands ----------------------------------------------------------------------- */

/* The failure a reply means to typed helper `what`: REDIS_ENOREPLY for none (err is set already),
 * else REDIS_EREPLY with err naming the error reply or the unexpected reply type. */
static int reply_failure(const redisReply *reply, const char *what, char *err, size_t errlen)
{
    if (!reply)
        return REDIS_ENOREPLY;
    if (reply->type == REDIS_REPLY_ERROR)
        util_err(err, errlen, "redis %s: %s", what, reply->str);
    else
        util_err(err, errlen, "redis %s: unexpected reply type %d", what, reply->type);
    return REDIS_EREPLY;
}

static bool is_status(const redisReply *reply, const char *text)
{
    return reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, text) == 0;
}

int redis_ping(struct redis_client *c, char *err, size_t errlen)
{
    const char *argv[] = {"PING"};
    redisReply *reply = redis_command_argv(c, 1, argv, NULL, err, errlen);
    int rc = 0;
    if (!is_status(reply, "PONG")) {
        (void)reply_failure(reply, "PING", err, errlen);
        rc = -1; /* any failure: this contract predates REDIS_EREPLY */
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int redis_get(struct redis_client *c, const char *key, char **value, size_t *len, char *err,
              size_t errlen)
{
    redisReply *reply;
    int rc;

    util_err_reset(err, errlen);
    if (value)
        *value = NULL;
    if (len)
        *len = 0;
    if (!key || !value) {
        util_err(err, errlen, "redis GET: bad arguments (key, value)");
        return REDIS_ENOREPLY;
    }
    const char *argv[] = {"GET", key};
    reply = redis_command_argv(c, 2, argv, NULL, err, errlen);
    if (reply && reply->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (reply && reply->type == REDIS_REPLY_STRING) {
        *value = malloc(reply->len + 1);
        if (*value) {
            memcpy(*value, reply->str, reply->len);
            (*value)[reply->len] = '\0';
            if (len)
                *len = reply->len;
            rc = 1;
        } else {
            util_err(err, errlen, "redis GET: out of memory");
            rc = REDIS_ENOREPLY;
        }
    } else {
        rc = reply_failure(reply, "GET", err, errlen);
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int redis_set(struct redis_client *c, const char *key, const char *value, long long ttl_ms,
              char *err, size_t errlen)
{
    char ttl[24];
    redisReply *reply;
    int rc;

    util_err_reset(err, errlen);
    if (!key || !value) {
        util_err(err, errlen, "redis SET: bad arguments (key, value)");
        return REDIS_ENOREPLY;
    }
    snprintf(ttl, sizeof ttl, "%lld", ttl_ms);
    const char *argv[] = {"SET", key, value, "PX", ttl};
    reply = redis_command_argv(c, ttl_ms > 0 ? 5 : 3, argv, NULL, err, errlen);
    rc = is_status(reply, "OK") ? 0 : reply_failure(reply, "SET", err, errlen);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int redis_set_nx_px(struct redis_client *c, const char *key, const char *value, long long ttl_ms,
                    bool *acquired, char *err, size_t errlen)
{
    char ttl[24];
    redisReply *reply;
    int rc = 0;

    util_err_reset(err, errlen);
    if (acquired)
        *acquired = false;
    if (!key || !value || !acquired || ttl_ms <= 0) {
        util_err(err, errlen, "redis SET NX PX: bad arguments (key, value, ttl > 0)");
        return -1;
    }
    snprintf(ttl, sizeof ttl, "%lld", ttl_ms);
    const char *argv[] = {"SET", key, value, "NX", "PX", ttl};
    reply = redis_command_argv(c, 6, argv, NULL, err, errlen);
    if (is_status(reply, "OK"))
        *acquired = true;
    else if (!reply || reply->type != REDIS_REPLY_NIL) { /* NIL: someone else holds it */
        (void)reply_failure(reply, "SET NX PX", err, errlen);
        rc = -1; /* any failure, as redis_ping */
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* A command on one key answering an integer (DEL, EXISTS): 1 if it is > 0, 0 if not, or < 0. */
static int key_integer(struct redis_client *c, const char *what, const char *key, char *err,
                       size_t errlen)
{
    redisReply *reply;
    int rc;

    util_err_reset(err, errlen);
    if (!key) {
        util_err(err, errlen, "redis %s: no key", what);
        return REDIS_ENOREPLY;
    }
    const char *argv[] = {what, key};
    reply = redis_command_argv(c, 2, argv, NULL, err, errlen);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        rc = reply->integer > 0 ? 1 : 0;
    else
        rc = reply_failure(reply, what, err, errlen);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int redis_del(struct redis_client *c, const char *key, char *err, size_t errlen)
{
    return key_integer(c, "DEL", key, err, errlen);
}

int redis_exists(struct redis_client *c, const char *key, char *err, size_t errlen)
{
    return key_integer(c, "EXISTS", key, err, errlen);
}

int redis_pttl(struct redis_client *c, const char *key, long long *ttl_ms, char *err, size_t errlen)
{
    util_err_reset(err, errlen);
    if (ttl_ms)
        *ttl_ms = -2;
    if (!key || !ttl_ms) {
        util_err(err, errlen, "redis PTTL: bad arguments (key, ttl_ms)");
        return REDIS_ENOREPLY;
    }
    const char *argv[] = {"PTTL", key};
    redisReply *reply = redis_command_argv(c, 2, argv, NULL, err, errlen);
    int rc = 0;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        *ttl_ms = reply->integer;
    else
        rc = reply_failure(reply, "PTTL", err, errlen);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* CONFIG GET name → its value (a two-element array). 1 with the value in buf, 0 when CONFIG is
 * refused or the setting unknown, < 0 when Redis did not answer. */
static int config_get(struct redis_client *c, const char *name, char *buf, size_t len, char *err,
                      size_t errlen)
{
    const char *argv[] = {"CONFIG", "GET", name};
    redisReply *reply = redis_command_argv(c, 3, argv, NULL, err, errlen);
    if (!reply)
        return REDIS_ENOREPLY;
    int rc = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(buf, len, "%s", reply->element[1]->str);
        rc = 1;
    }
    freeReplyObject(reply);
    return rc;
}

int redis_persistence(struct redis_client *c, enum redis_persist *aof, enum redis_persist *rdb,
                      char *err, size_t errlen)
{
    char value[256];
    util_err_reset(err, errlen);
    *aof = *rdb = REDIS_PERSIST_UNKNOWN;
    int rc = config_get(c, "appendonly", value, sizeof value, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == 1)
        *aof = strcmp(value, "yes") == 0 ? REDIS_PERSIST_ON : REDIS_PERSIST_OFF;
    rc = config_get(c, "save", value, sizeof value, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == 1)
        *rdb = value[0] ? REDIS_PERSIST_ON : REDIS_PERSIST_OFF;
    if (*aof != REDIS_PERSIST_UNKNOWN)
        return 0;
    const char *argv[] = {"INFO", "persistence"}; /* CONFIG refused (a managed Redis) */
    redisReply *reply = redis_command_argv(c, 2, argv, NULL, err, errlen);
    if (!reply)
        return REDIS_ENOREPLY;
    const char *p = reply->type == REDIS_REPLY_STRING ? strstr(reply->str, "aof_enabled:") : NULL;
    if (p)
        *aof = p[strlen("aof_enabled:")] == '1' ? REDIS_PERSIST_ON : REDIS_PERSIST_OFF;
    freeReplyObject(reply);
    return 0;
}

/* ---- scripts ------------------------------------------------------------------------------ */

void redis_script_init(struct redis_script *s, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!s)
        return;
    s->src = src;
    s->sha[0] = '\0';
    if (!src || !EVP_Digest(src, strlen(src), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return; /* no SHA: redis_eval sends EVAL */
    for (unsigned int i = 0; i < mdlen; i++) {
        s->sha[2 * i] = hex[md[i] >> 4];
        s->sha[2 * i + 1] = hex[md[i] & 0x0f];
    }
    s->sha[2 * mdlen] = '\0';
}

redisReply *redis_eval(struct redis_client *c, const struct redis_script *s, int nkeys,
                       const char *const *keys, int nargs, const char *const *args, char *err,
                       size_t errlen)
{
    char nkeys_text[16];
    const char **argv = NULL;
    redisReply *reply = NULL;
    int argc;

    util_err_reset(err, errlen);
    if (!s || !s->src || nkeys < 0 || nargs < 0 || (nkeys > 0 && !keys) || (nargs > 0 && !args) ||
        nkeys > INT_MAX - 3 - nargs) {
        util_err(err, errlen, "redis EVAL: bad arguments");
        return NULL;
    }
    argc = 3 + nkeys + nargs;
    argv = calloc((size_t)argc, sizeof *argv);
    if (!argv) {
        util_err(err, errlen, "redis EVAL: out of memory");
        return NULL;
    }
    snprintf(nkeys_text, sizeof nkeys_text, "%d", nkeys);
    argv[2] = nkeys_text;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];

    if (s->sha[0]) {
        argv[0] = "EVALSHA";
        argv[1] = s->sha;
        reply = redis_command_argv(c, argc, argv, NULL, err, errlen);
        if (!reply || reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "NOSCRIPT", 8) != 0)
            goto done;
        freeReplyObject(reply); /* not cached on this server (yet): EVAL loads it */
    }
    argv[0] = "EVAL";
    argv[1] = s->src;
    reply = redis_command_argv(c, argc, argv, NULL, err, errlen);

done:
    free(argv);
    return reply;
}

/* redis_eval answering an integer; `what` names the script in err. */
static int eval_int(struct redis_client *c, const char *what, const struct redis_script *s,
                    int nkeys, const char *const *keys, int nargs, const char *const *args,
                    long long *out, char *err, size_t errlen)
{
    redisReply *reply;
    int rc = 0;

    if (out)
        *out = 0;
    if (!out) {
        util_err_reset(err, errlen);
        util_err(err, errlen, "redis %s: no output", what);
        return REDIS_ENOREPLY;
    }
    reply = redis_eval(c, s, nkeys, keys, nargs, args, err, errlen);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        *out = reply->integer;
    else
        rc = reply_failure(reply, what, err, errlen);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int redis_eval_int(struct redis_client *c, const struct redis_script *s, int nkeys,
                   const char *const *keys, int nargs, const char *const *args, long long *out,
                   char *err, size_t errlen)
{
    return eval_int(c, "EVAL", s, nkeys, keys, nargs, args, out, err, errlen);
}

/* Deletes KEYS[1] only if it holds ARGV[1]. */
static const char del_if_equal_src[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
    "else return 0 end";
static pthread_once_t del_if_equal_once = PTHREAD_ONCE_INIT;
static struct redis_script del_if_equal_script;

static void init_del_if_equal(void)
{
    redis_script_init(&del_if_equal_script, del_if_equal_src);
}

int redis_del_if_equal(struct redis_client *c, const char *key, const char *value, char *err,
                       size_t errlen)
{
    long long deleted = 0;

    util_err_reset(err, errlen);
    if (!key || !value) {
        util_err(err, errlen, "redis compare-and-delete: bad arguments (key, value)");
        return REDIS_ENOREPLY;
    }
    pthread_once(&del_if_equal_once, init_del_if_equal);
    const char *keys[] = {key}, *args[] = {value};
    int rc = eval_int(c, "compare-and-delete", &del_if_equal_script, 1, keys, 1, args, &deleted,
                      err, errlen);
    return rc < 0 ? rc : deleted > 0 ? 1 : 0;
}
