/* test_redis.c: common/redis.c: REDIS_URL parsing by table, then the client against real
 * redis-server processes started by the harness (ping, SET NX PX, Lua by SHA with the EVAL
 * fallback, AUTH, SELECT, reconnect after a restart, connect and command timeouts, backoff).
 * Every test starts and stops its own servers. */
#include "harness.h"
#include "redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 1000

/* The lock release of SPEC §4.4: only the holder of the token deletes. */
static const char compare_and_delete_src[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
    "else return 0 end";

/* ---- URL table ---------------------------------------------------------------------------- */

struct url_case {
    const char *url;
    int rc;
    const char *host;
    int port;
    const char *password;
    int db;
    const char *err_has; /* a bad URL's error names this */
    const char *secret;  /* a bad URL's error never contains this */
};

static const struct url_case url_cases[] = {
    {"redis://localhost", 0, "localhost", 6379, "", 0, NULL, NULL},
    {"redis://127.0.0.1:6380/2", 0, "127.0.0.1", 6380, "", 2, NULL, NULL},
    {"REDIS://Redis-1.svc_x:1", 0, "Redis-1.svc_x", 1, "", 0, NULL, NULL},
    {"redis://h/", 0, "h", 6379, "", 0, NULL, NULL},
    {"redis://h:65535/15", 0, "h", 65535, "", 15, NULL, NULL},
    {"redis://:s3cret@redis:7000/1", 0, "redis", 7000, "s3cret", 1, NULL, NULL},
    {"redis://:@h", 0, "h", 6379, "", 0, NULL, NULL},
    {"redis://default:pa%40ss%3Aw%2Frd%25%20x@h/3", 0, "h", 6379, "pa@ss:w/rd% x", 3, NULL, NULL},
    {"redis://:p@ss:w/rd@h:7/9", 0, "h", 7, "p@ss:w/rd", 9, NULL, NULL},
    {"redis://[::1]:6390/4", 0, "::1", 6390, "", 4, NULL, NULL},
    {"rediss://:topsecret@h", -1, NULL, 0, NULL, 0, "TLS", "topsecret"},
    {"http://:topsecret@h", -1, NULL, 0, NULL, 0, "redis://", "topsecret"},
    {"redis:/:topsecret@h", -1, NULL, 0, NULL, 0, "redis://", "topsecret"},
    {"", -1, NULL, 0, NULL, 0, "redis://", NULL},
    {"redis://", -1, NULL, 0, NULL, 0, "empty host", NULL},
    {"redis://:topsecret@", -1, NULL, 0, NULL, 0, "empty host", "topsecret"},
    {"redis://:topsecret@:6379", -1, NULL, 0, NULL, 0, "empty host", "topsecret"},
    {"redis://:topsecret@ho st", -1, NULL, 0, NULL, 0, "host", "topsecret"},
    {"redis://:topsecret@h?timeout=1", -1, NULL, 0, NULL, 0, "host", "topsecret"},
    {"redis://:topsecret@[::1", -1, NULL, 0, NULL, 0, "host", "topsecret"},
    {"redis://:topsecret@h:0", -1, NULL, 0, NULL, 0, "port", "topsecret"},
    {"redis://:topsecret@h:65536", -1, NULL, 0, NULL, 0, "port", "topsecret"},
    {"redis://:topsecret@h:", -1, NULL, 0, NULL, 0, "port", "topsecret"},
    {"redis://:topsecret@h:12x", -1, NULL, 0, NULL, 0, "port", "topsecret"},
    {"redis://:topsecret@h:-1", -1, NULL, 0, NULL, 0, "port", "topsecret"},
    {"redis://:topsecret@h/x", -1, NULL, 0, NULL, 0, "db", "topsecret"},
    {"redis://:topsecret@h/-1", -1, NULL, 0, NULL, 0, "db", "topsecret"},
    {"redis://:topsecret@h/1/2", -1, NULL, 0, NULL, 0, "db", "topsecret"},
    {"redis://:topsecret@h/99999999999", -1, NULL, 0, NULL, 0, "db", "topsecret"},
    {"redis://topsecret@h", -1, NULL, 0, NULL, 0, "password", "topsecret"},
    {"redis://bob:topsecret@h", -1, NULL, 0, NULL, 0, "ACL", "topsecret"},
    {"redis://:top%zzsecret@h", -1, NULL, 0, NULL, 0, "password", "secret"},
    {"redis://:topsecret%4@h", -1, NULL, 0, NULL, 0, "password", "topsecret"},
    {"redis://:top%00secret@h", -1, NULL, 0, NULL, 0, "password", "secret"},
};

static void test_url_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof url_cases / sizeof url_cases[0]; i++) {
        const struct url_case *tc = &url_cases[i];
        struct redis_url u;
        char err[256] = "stale";
        int rc = redis_url_parse(tc->url, &u, err, sizeof err);
        if (rc != tc->rc)
            fail_msg("%s: rc %d, want %d (%s)", tc->url, rc, tc->rc, err);
        if (tc->rc == 0) {
            assert_string_equal(err, "");
            assert_string_equal(u.host, tc->host);
            assert_int_equal(u.port, tc->port);
            assert_string_equal(u.password, tc->password);
            assert_int_equal(u.db, tc->db);
            continue;
        }
        if (!strstr(err, tc->err_has))
            fail_msg("%s: error \"%s\" does not name \"%s\"", tc->url, err, tc->err_has);
        if (tc->secret && strstr(err, tc->secret))
            fail_msg("%s: error \"%s\" shows the password", tc->url, err);
        assert_string_equal(u.password, ""); /* nothing half-parsed left behind */
    }
}

static void test_url_parse_rejects_overlong_password(void **state)
{
    (void)state;
    char url[600], password[300];
    memset(password, 'x', sizeof password - 1);
    password[sizeof password - 1] = '\0';
    snprintf(url, sizeof url, "redis://:%s@h", password);
    struct redis_url u;
    char err[256];
    assert_int_equal(redis_url_parse(url, &u, err, sizeof err), -1);
    assert_non_null(strstr(err, "password"));
    assert_null(strstr(err, "xxxxxxxx"));
}

static void test_url_parse_null_is_error(void **state)
{
    (void)state;
    struct redis_url u;
    char err[256];
    assert_int_equal(redis_url_parse(NULL, &u, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(redis_url_parse("redis://h", NULL, err, sizeof err), -1);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

struct fixture {
    struct th_redis redis;
    struct redis_client *client;
};

static struct redis_client *client_for(const char *url)
{
    struct redis_url u;
    char err[256];
    if (redis_url_parse(url, &u, err, sizeof err) != 0)
        fail_msg("redis_url_parse(%s): %s", url, err);
    struct redis_client *c = redis_client_new(&u, CONNECT_TIMEOUT_MS, COMMAND_TIMEOUT_MS);
    assert_non_null(c);
    return c;
}

static int setup_server(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || th_redis_start(&f->redis, NULL) != 0) {
        free(f);
        return -1;
    }
    f->client = client_for(f->redis.url);
    *state = f;
    return 0;
}

static int teardown_server(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    redis_client_free(f->client);
    th_redis_stop(&f->redis);
    free(f);
    return 0;
}

/* Runs a command given as space-separated words and checks the reply's type and, if
 * want_str, its string. */
static void command_expect(struct redis_client *c, int type, const char *want_str, const char *cmd)
{
    char err[256], words[256], *save = NULL;
    const char *argv[8];
    int argc = 0;
    snprintf(words, sizeof words, "%s", cmd);
    for (char *w = strtok_r(words, " ", &save); w && argc < 8; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    redisReply *r = redis_command_argv(c, argc, argv, NULL, err, sizeof err);
    if (!r)
        fail_msg("%s: %s", cmd, err);
    assert_int_equal(r->type, type);
    if (want_str)
        assert_string_equal(r->str, want_str);
    freeReplyObject(r);
}

static long long integer_reply(struct redis_client *c, const char *cmd, const char *key)
{
    char err[256];
    redisReply *r = redis_command(c, err, sizeof err, "%s %s", cmd, key);
    if (!r)
        fail_msg("%s %s: %s", cmd, key, err);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* calls=N of a command in INFO commandstats ("eval", "evalsha"); 0 if never called. */
static long long command_calls(struct redis_client *c, const char *name)
{
    char err[256], needle[64];
    redisReply *r = redis_command(c, err, sizeof err, "INFO commandstats");
    if (!r)
        fail_msg("INFO: %s", err);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", name);
    const char *hit = strstr(r->str, needle);
    long long calls = hit ? strtoll(hit + strlen(needle), NULL, 10) : 0;
    freeReplyObject(r);
    return calls;
}

/* ---- basic commands ----------------------------------------------------------------------- */

static void test_ping_connects_lazily(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_false(redis_client_connected(f->client));
    assert_int_equal(redis_ping(f->client, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_true(redis_client_connected(f->client));
}

static void test_error_reply_is_a_reply(void **state)
{
    struct fixture *f = *state;
    char err[256];
    const char *argv[] = {"NO-SUCH-COMMAND"};
    redisReply *r = redis_command_argv(f->client, 1, argv, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_true(redis_client_connected(f->client));
    assert_int_equal(redis_ping(f->client, err, sizeof err), 0);
}

static void test_command_formats_binary_values(void **state)
{
    struct fixture *f = *state;
    char err[256];
    const char value[] = {'a', '\0', 'b', '\r', '\n'};
    redisReply *r =
        redis_command(f->client, err, sizeof err, "SET %s %b", "bin key", value, sizeof value);
    assert_non_null(r);
    freeReplyObject(r);
    const char *argv[] = {"GET", "bin key"};
    r = redis_command_argv(f->client, 2, argv, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, sizeof value);
    assert_memory_equal(r->str, value, sizeof value);
    freeReplyObject(r);
}

static void test_set_nx_px_second_acquire_fails(void **state)
{
    struct fixture *f = *state;
    char err[256];
    bool acquired = false;
    assert_int_equal(
        redis_set_nx_px(f->client, "lock:a", "token-1", 60000, &acquired, err, sizeof err), 0);
    assert_true(acquired);
    assert_int_equal(
        redis_set_nx_px(f->client, "lock:a", "token-2", 60000, &acquired, err, sizeof err), 0);
    assert_false(acquired);
    command_expect(f->client, REDIS_REPLY_STRING, "token-1", "GET lock:a");
}

static void test_set_nx_px_sets_ttl(void **state)
{
    struct fixture *f = *state;
    char err[256];
    bool acquired = false;
    assert_int_equal(redis_set_nx_px(f->client, "lock:ttl", "t", 30000, &acquired, err, sizeof err),
                     0);
    assert_true(acquired);
    long long pttl = integer_reply(f->client, "PTTL", "lock:ttl");
    assert_true(pttl > 0 && pttl <= 30000);
}

static void test_set_nx_px_rejects_bad_ttl(void **state)
{
    struct fixture *f = *state;
    char err[256];
    bool acquired = true;
    assert_int_equal(redis_set_nx_px(f->client, "k", "v", 0, &acquired, err, sizeof err), -1);
    assert_false(acquired);
    assert_true(err[0] != '\0');
}

/* ---- scripts ------------------------------------------------------------------------------ */

static void test_script_sha_matches_script_load(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct redis_script s;
    redis_script_init(&s, compare_and_delete_src);
    assert_int_equal(strlen(s.sha), 40);
    redisReply *r =
        redis_command(f->client, err, sizeof err, "SCRIPT LOAD %s", compare_and_delete_src);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, s.sha);
    freeReplyObject(r);
}

static redisReply *compare_and_delete(struct redis_client *c, const struct redis_script *s,
                                      const char *key, const char *token)
{
    char err[256];
    const char *keys[] = {key};
    const char *args[] = {token};
    redisReply *r = redis_eval(c, s, 1, keys, 1, args, err, sizeof err);
    if (!r)
        fail_msg("redis_eval: %s", err);
    return r;
}

static void test_eval_compare_and_delete_only_holder_deletes(void **state)
{
    struct fixture *f = *state;
    char err[256];
    bool acquired = false;
    struct redis_script s;
    redis_script_init(&s, compare_and_delete_src);
    assert_int_equal(
        redis_set_nx_px(f->client, "lock:b", "mine", 60000, &acquired, err, sizeof err), 0);
    assert_true(acquired);

    redisReply *r = compare_and_delete(f->client, &s, "lock:b", "theirs");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(integer_reply(f->client, "EXISTS", "lock:b"), 1);

    r = compare_and_delete(f->client, &s, "lock:b", "mine");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(integer_reply(f->client, "EXISTS", "lock:b"), 0);
}

static void test_eval_uses_evalsha_once_cached(void **state)
{
    struct fixture *f = *state;
    struct redis_script s;
    redis_script_init(&s, compare_and_delete_src);
    freeReplyObject(compare_and_delete(f->client, &s, "k", "t")); /* loads it */
    long long evalsha = command_calls(f->client, "evalsha");
    long long eval = command_calls(f->client, "eval");

    freeReplyObject(compare_and_delete(f->client, &s, "k", "t"));
    assert_int_equal(command_calls(f->client, "evalsha"), evalsha + 1);
    assert_int_equal(command_calls(f->client, "eval"), eval);
}

static void test_eval_falls_back_to_eval_after_script_flush(void **state)
{
    struct fixture *f = *state;
    char err[256];
    bool acquired = false;
    struct redis_script s;
    redis_script_init(&s, compare_and_delete_src);
    freeReplyObject(compare_and_delete(f->client, &s, "k", "t"));
    command_expect(f->client, REDIS_REPLY_STATUS, "OK", "SCRIPT FLUSH");
    long long eval = command_calls(f->client, "eval");
    assert_int_equal(
        redis_set_nx_px(f->client, "lock:c", "mine", 60000, &acquired, err, sizeof err), 0);

    redisReply *r = compare_and_delete(f->client, &s, "lock:c", "mine");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(command_calls(f->client, "eval"), eval + 1);

    r = redis_command(f->client, err, sizeof err, "SCRIPT EXISTS %s", s.sha);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 1); /* EVAL cached it again */
    freeReplyObject(r);
}

static void test_eval_script_error_is_a_reply(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct redis_script s;
    redis_script_init(&s, "return redis.call('NO-SUCH-COMMAND')");
    redisReply *r = redis_eval(f->client, &s, 0, NULL, 0, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* ---- AUTH and SELECT ---------------------------------------------------------------------- */

#define AUTH_PASSWORD         "p@ss:w/rd%"
#define AUTH_PASSWORD_ESCAPED "p%40ss%3Aw%2Frd%25"

static int setup_password_server(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || th_redis_start(&f->redis, AUTH_PASSWORD) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static void test_auth_right_password(void **state)
{
    struct fixture *f = *state;
    char url[300], err[256];
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d", AUTH_PASSWORD_ESCAPED, f->redis.port);
    f->client = client_for(url);
    assert_int_equal(redis_ping(f->client, err, sizeof err), 0);
}

static void test_auth_wrong_password_is_error(void **state)
{
    struct fixture *f = *state;
    char url[300], err[256];
    snprintf(url, sizeof url, "redis://:wrong-pass@127.0.0.1:%d", f->redis.port);
    f->client = client_for(url);
    assert_int_equal(redis_client_connect(f->client, true, err, sizeof err), -1);
    assert_non_null(strstr(err, "AUTH"));
    assert_null(strstr(err, "wrong-pass"));
    assert_false(redis_client_connected(f->client));
}

static void test_no_password_against_auth_server_is_error(void **state)
{
    struct fixture *f = *state;
    char url[300], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", f->redis.port);
    f->client = client_for(url);
    assert_int_equal(redis_ping(f->client, err, sizeof err), -1);
    assert_non_null(strstr(err, "NOAUTH"));
}

static void test_select_db_isolates_keys(void **state)
{
    struct fixture *f = *state;
    char url[300];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/3", f->redis.port);
    struct redis_client *db3 = client_for(url);
    command_expect(db3, REDIS_REPLY_STATUS, "OK", "SET only-in-3 x");
    command_expect(db3, REDIS_REPLY_STRING, "x", "GET only-in-3");
    command_expect(f->client, REDIS_REPLY_NIL, NULL, "GET only-in-3"); /* db 0 */
    redis_client_free(db3);
}

/* ---- connection failures ------------------------------------------------------------------ */

static void assert_client_db(struct redis_client *c, int db)
{
    char err[256], want[32];
    redisReply *r = redis_command(c, err, sizeof err, "CLIENT INFO");
    if (!r)
        fail_msg("CLIENT INFO: %s", err);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(want, sizeof want, " db=%d ", db);
    if (!strstr(r->str, want))
        fail_msg("CLIENT INFO \"%s\" lacks \"%s\"", r->str, want);
    freeReplyObject(r);
}

/* Connects f->client to the password server's db 5; returns the server's port. */
static int connect_db5(struct fixture *f)
{
    char url[300], err[256];
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d/5", AUTH_PASSWORD_ESCAPED, f->redis.port);
    f->client = client_for(url);
    assert_int_equal(redis_ping(f->client, err, sizeof err), 0);
    return f->redis.port;
}

static void test_reconnects_after_server_restart(void **state)
{
    struct fixture *f = *state; /* password server */
    char err[256];
    int port = connect_db5(f);

    th_redis_stop(&f->redis);
    long long t0 = th_now_ms();
    assert_int_equal(redis_ping(f->client, err, sizeof err), -1);
    assert_true(th_now_ms() - t0 < CONNECT_TIMEOUT_MS + COMMAND_TIMEOUT_MS + 1000);
    assert_true(err[0] != '\0');
    assert_false(redis_client_connected(f->client));

    assert_int_equal(th_redis_start_port(&f->redis, port, AUTH_PASSWORD), 0);
    bool ok;
    TH_WAIT(ok, redis_ping(f->client, err, sizeof err) == 0, 10000);
    if (!ok)
        fail_msg("no reconnect: %s", err);
    assert_client_db(f->client, 5); /* AUTH and SELECT again on the new connection */
}

/* A connection that lived through a restart fails its next command; disconnecting it first
 * makes that command succeed on a fresh connection, with no backoff to wait out. */
static void test_disconnect_drops_a_connection_that_outlived_a_restart(void **state)
{
    struct fixture *f = *state; /* password server */
    char err[256];
    int port = connect_db5(f);
    th_redis_stop(&f->redis);
    assert_int_equal(th_redis_start_port(&f->redis, port, AUTH_PASSWORD), 0);
    assert_true(redis_client_connected(f->client)); /* it does not know yet */

    redis_client_disconnect(f->client);
    assert_false(redis_client_connected(f->client));
    if (redis_ping(f->client, err, sizeof err) != 0)
        fail_msg("first command after disconnect failed: %s", err);
    assert_client_db(f->client, 5);
    redis_client_disconnect(NULL); /* harmless */
}

static void test_connect_refused_fails_fast(void **state)
{
    (void)state;
    char url[64], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", th_free_port());
    struct redis_client *c = client_for(url);
    long long t0 = th_now_ms();
    assert_int_equal(redis_ping(c, err, sizeof err), -1);
    assert_true(th_now_ms() - t0 < CONNECT_TIMEOUT_MS);
    assert_non_null(strstr(err, "connect"));
    assert_false(redis_client_connected(c));
    redis_client_free(c);
}

/* A listener whose accept queue is full: the kernel drops further SYNs, so a connect to it
 * hangs until the connect timeout. The caller closes fds[0..*n). */
static int blackhole_listener(int *fds, int max, int *n)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *n = 0;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0)
        return -1;
    fds[(*n)++] = l;
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) != 0 || listen(l, 0) != 0)
        return -1;
    while (*n < max) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
        if (s < 0)
            return -1;
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { /* timed out: queue full */
            close(s);
            return ntohs(a.sin_port);
        }
        fds[(*n)++] = s;
    }
    return -1;
}

static void test_connect_timeout_when_syn_is_dropped(void **state)
{
    (void)state;
    int fds[16], n = 0;
    int port = blackhole_listener(fds, 16, &n);
    assert_true(port > 0);
    char url[64], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    struct redis_url u;
    assert_int_equal(redis_url_parse(url, &u, err, sizeof err), 0);
    struct redis_client *c = redis_client_new(&u, 300, COMMAND_TIMEOUT_MS);
    assert_non_null(c);

    long long t0 = th_now_ms();
    assert_int_equal(redis_client_connect(c, true, err, sizeof err), -1);
    long long took = th_now_ms() - t0;
    assert_true(took >= 250 && took < 15000); /* fired, did not hang */
    assert_non_null(strstr(err, "connect"));
    redis_client_free(c);
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

static void test_command_timeout_when_server_never_answers(void **state)
{
    (void)state;
    /* The kernel completes the handshake on a listener nobody accepts from; PING gets no
     * answer. */
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(listen(l, 8), 0);
    char url[64], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", ntohs(a.sin_port));
    struct redis_url u;
    assert_int_equal(redis_url_parse(url, &u, err, sizeof err), 0);
    struct redis_client *c = redis_client_new(&u, CONNECT_TIMEOUT_MS, 300);
    assert_non_null(c);

    long long t0 = th_now_ms();
    assert_int_equal(redis_ping(c, err, sizeof err), -1);
    long long took = th_now_ms() - t0;
    assert_true(took >= 250 && took < 15000); /* fired, did not hang */
    assert_non_null(strstr(err, "timed out"));
    assert_false(redis_client_connected(c)); /* a timed-out connection is not reused */
    redis_client_free(c);
    close(l);
}

static void test_backoff_spaces_reconnect_attempts(void **state)
{
    (void)state;
    char url[64], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", th_free_port());
    struct redis_client *c = client_for(url);
    assert_int_equal(redis_client_connect(c, false, err, sizeof err), -1);
    assert_null(strstr(err, "backoff")); /* the first attempt is made */

    /* Right after a failure, a call is refused without an attempt (backoff >= 100 ms); if the
     * machine is slow enough to miss that window, the next failure doubles it. */
    bool in_backoff;
    TH_WAIT(in_backoff,
            redis_client_connect(c, false, err, sizeof err) == -1 && strstr(err, "backoff"), 10000);
    assert_true(in_backoff);
    assert_int_equal(redis_client_connect(c, true, err, sizeof err), -1);
    assert_null(strstr(err, "backoff")); /* forced: attempted despite the backoff */
    redis_client_free(c);
}

/* The wait a non-forced connect reports ("next attempt in N ms"), or -1 if it attempted. */
static long long backoff_left_ms(struct redis_client *c)
{
    char err[256];
    if (redis_client_connect(c, false, err, sizeof err) == 0)
        return -1;
    const char *hit = strstr(err, "next attempt in ");
    return hit ? strtoll(hit + strlen("next attempt in "), NULL, 10) : -1;
}

static void test_backoff_doubles_up_to_5s(void **state)
{
    (void)state;
    char url[64], err[256];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", th_free_port());
    struct redis_client *c = client_for(url);
    /* Failures: 100, 200, 400, 800, 1600, 3200, then capped at 5000 ms. */
    for (int i = 0; i < 6; i++)
        assert_int_equal(redis_client_connect(c, true, err, sizeof err), -1);
    long long left = backoff_left_ms(c);
    assert_true(left > 1600 && left <= 3200);
    for (int i = 0; i < 3; i++)
        assert_int_equal(redis_client_connect(c, true, err, sizeof err), -1);
    left = backoff_left_ms(c);
    assert_true(left > 3200 && left <= 5000);
    redis_client_free(c);
}

static void test_backoff_resets_after_a_reply(void **state)
{
    (void)state;
    char url[64], err[256];
    int port = th_free_port();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    struct redis_client *c = client_for(url);
    for (int i = 0; i < 6; i++) /* backoff now 3200 ms */
        assert_int_equal(redis_client_connect(c, true, err, sizeof err), -1);
    struct th_redis r;
    assert_int_equal(th_redis_start_port(&r, port, NULL), 0);
    assert_int_equal(redis_client_connect(c, true, err, sizeof err), 0);
    assert_int_equal(redis_ping(c, err, sizeof err), 0); /* a reply: backoff back to 0 */
    th_redis_stop(&r);

    assert_int_equal(redis_ping(c, err, sizeof err), -1); /* the drop is one failure */
    long long left = backoff_left_ms(c);
    assert_true(left <= 100); /* -1: attempted at once */
    redis_client_free(c);
}

static void test_free_accepts_null(void **state)
{
    (void)state;
    redis_client_free(NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2); see redis.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse_table),
        cmocka_unit_test(test_url_parse_rejects_overlong_password),
        cmocka_unit_test(test_url_parse_null_is_error),
        cmocka_unit_test_setup_teardown(test_ping_connects_lazily, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_error_reply_is_a_reply, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_command_formats_binary_values, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_set_nx_px_second_acquire_fails, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_set_nx_px_sets_ttl, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_set_nx_px_rejects_bad_ttl, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_script_sha_matches_script_load, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_eval_compare_and_delete_only_holder_deletes,
                                        setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_eval_uses_evalsha_once_cached, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_eval_falls_back_to_eval_after_script_flush,
                                        setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_eval_script_error_is_a_reply, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_auth_right_password, setup_password_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_auth_wrong_password_is_error, setup_password_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_no_password_against_auth_server_is_error,
                                        setup_password_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_select_db_isolates_keys, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_reconnects_after_server_restart, setup_password_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_disconnect_drops_a_connection_that_outlived_a_restart,
                                        setup_password_server, teardown_server),
        cmocka_unit_test(test_connect_refused_fails_fast),
        cmocka_unit_test(test_connect_timeout_when_syn_is_dropped),
        cmocka_unit_test(test_command_timeout_when_server_never_answers),
        cmocka_unit_test(test_backoff_spaces_reconnect_attempts),
        cmocka_unit_test(test_backoff_doubles_up_to_5s),
        cmocka_unit_test(test_backoff_resets_after_a_reply),
        cmocka_unit_test(test_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
