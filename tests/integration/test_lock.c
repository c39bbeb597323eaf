/* test_lock.c: the per-entity sync lock (common/lock.c, SPEC §4.4) against real redis-server
 * processes started by the harness: acquire and compare-and-delete release, waiting with
 * backoff (busy, success after a release or an expiry, cancel), renewal and its thread (keeps a
 * lock alive, stops after remove, marks a taken-over lock lost, survives an outage), expired
 * locks, Redis errors and reconnect. Every test starts and stops its own server. */
#include "harness.h"
#include "lock.h"
#include "log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 1000
#define LONG_TTL_MS        60000

/* ---- fixtures and helpers ----------------------------------------------------------------- */

struct fixture {
    struct th_redis redis;
    struct redis_url url;
    struct redis_client *client; /* the test thread's */
    int log_fd;                  /* -1 unless capture_logs() */
};

static struct redis_client *client_for(const struct redis_url *u)
{
    struct redis_client *c = redis_client_new(u, CONNECT_TIMEOUT_MS, COMMAND_TIMEOUT_MS);
    assert_non_null(c);
    return c;
}

static int setup_server(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    if (!f)
        return -1;
    f->log_fd = -1;
    if (th_redis_start(&f->redis, NULL) != 0 ||
        redis_url_parse(f->redis.url, &f->url, err, sizeof err) != 0) {
        th_redis_stop(&f->redis);
        free(f);
        return -1;
    }
    f->client = client_for(&f->url);
    *state = f;
    return 0;
}

static int teardown_server(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    if (f->log_fd >= 0) {
        log_setup(LOG_INFO, LOG_JSON, 2);
        close(f->log_fd);
    }
    redis_client_free(f->client);
    th_redis_stop(&f->redis);
    free(f);
    return 0;
}

/* Sends the log into a temporary file that logged() reads back. */
static void capture_logs(struct fixture *f)
{
    char path[] = "/tmp/vmh-lock-log-XXXXXX";
    f->log_fd = mkstemp(path);
    assert_true(f->log_fd >= 0);
    unlink(path);
    log_setup(LOG_INFO, LOG_JSON, f->log_fd);
}

/* How many log lines so far contain both needle and (if not NULL) also. */
static int logged(const struct fixture *f, const char *needle, const char *also)
{
    static char buf[65536];
    ssize_t n = pread(f->log_fd, buf, sizeof buf - 1, 0);
    int count = 0;
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (char *line = buf, *end; *line; line = end) {
        end = strchr(line, '\n');
        end = end ? end + 1 : line + strlen(line);
        char saved = *end;
        *end = '\0';
        if (strstr(line, needle) && (!also || strstr(line, also)))
            count++;
        *end = saved;
    }
    return count;
}

/* GET key: the value into buf ("" when the key is missing). */
static const char *get_value(struct redis_client *c, const char *key, char *buf, size_t buflen)
{
    char err[256];
    redisReply *r = redis_command(c, err, sizeof err, "GET %s", key);
    if (!r)
        fail_msg("GET %s: %s", key, err);
    if (r->type == REDIS_REPLY_NIL)
        snprintf(buf, buflen, "%s", "");
    else if (r->type == REDIS_REPLY_STRING)
        snprintf(buf, buflen, "%s", r->str);
    else
        fail_msg("GET %s: reply type %d", key, r->type);
    freeReplyObject(r);
    return buf;
}

static bool key_exists(struct redis_client *c, const char *key)
{
    return th_redis_int(c, "EXISTS %s", key) == 1;
}

static bool key_holds(struct redis_client *c, const char *key, const char *token)
{
    char value[LOCK_TOKEN_MAX];
    return strcmp(get_value(c, key, value, sizeof value), token) == 0;
}

static void acquire_ok(struct redis_client *c, const char *id, long long ttl_ms,
                       struct lock_held *out)
{
    char err[256];
    enum lock_result rc = lock_acquire(c, id, ttl_ms, 0, NULL, NULL, out, err, sizeof err);
    if (rc != LOCK_ACQUIRED)
        fail_msg("lock_acquire(%s): %d (%s)", id, rc, err);
}

/* ---- acquire and release ------------------------------------------------------------------ */

static void test_acquire_sets_key_and_release_deletes_it(void **state)
{
    struct fixture *f = *state;
    struct lock_held h;
    char err[256] = "stale", key[LOCK_KEY_MAX];
    acquire_ok(f->client, "68e4aef68d2b4fb98", LONG_TTL_MS, &h);

    assert_int_equal(lock_key("68e4aef68d2b4fb98", key, sizeof key), 0);
    assert_string_equal(h.key, key);
    assert_string_equal(h.entity_id, "68e4aef68d2b4fb98");
    assert_int_equal(h.ttl_ms, LONG_TTL_MS);
    assert_int_equal(strncmp(h.token, lock_instance_id(), strlen(lock_instance_id())), 0);
    assert_true(key_holds(f->client, key, h.token));
    long long pttl = th_redis_int(f->client, "PTTL %s", key);
    assert_true(pttl > 0 && pttl <= LONG_TTL_MS);

    assert_int_equal(lock_release(f->client, &h, err, sizeof err), 1);
    assert_string_equal(err, "");
    assert_false(key_exists(f->client, key));
    assert_int_equal(lock_release(f->client, &h, err, sizeof err), 0); /* gone: not ours */
}

static void test_only_the_token_holder_releases_or_renews(void **state)
{
    struct fixture *f = *state;
    struct lock_held mine, theirs;
    char err[256];
    acquire_ok(f->client, "e-other-token", LONG_TTL_MS, &mine);
    theirs = mine;
    lock_token_new(theirs.token, sizeof theirs.token);
    assert_string_not_equal(theirs.token, mine.token);

    assert_int_equal(lock_release(f->client, &theirs, err, sizeof err), 0);
    assert_true(key_holds(f->client, mine.key, mine.token));
    theirs.ttl_ms = 10 * LONG_TTL_MS;
    assert_int_equal(lock_renew(f->client, &theirs, err, sizeof err), 0);
    assert_true(th_redis_int(f->client, "PTTL %s", mine.key) <= LONG_TTL_MS);

    assert_int_equal(lock_renew(f->client, &mine, err, sizeof err), 1);
    assert_int_equal(lock_release(f->client, &mine, err, sizeof err), 1);
}

static void test_renew_extends_ttl(void **state)
{
    struct fixture *f = *state;
    struct lock_held h;
    char err[256];
    acquire_ok(f->client, "e-renew", 1000, &h);
    h.ttl_ms = LONG_TTL_MS;
    assert_int_equal(lock_renew(f->client, &h, err, sizeof err), 1);
    assert_true(th_redis_int(f->client, "PTTL %s", h.key) > 1000);
}

/* ---- waiting ------------------------------------------------------------------------------ */

static void test_busy_after_wait(void **state)
{
    struct fixture *f = *state;
    struct lock_held holder, waiter;
    char err[256] = "stale";
    acquire_ok(f->client, "e-busy", LONG_TTL_MS, &holder);

    long long t0 = th_now_ms();
    assert_int_equal(
        lock_acquire(f->client, "e-busy", LONG_TTL_MS, 200, NULL, NULL, &waiter, err, sizeof err),
        LOCK_BUSY);
    assert_true(th_now_ms() - t0 >= 199); /* lower bound only */
    assert_string_equal(err, "");
    assert_string_equal(waiter.key, ""); /* out reset */
    assert_true(key_holds(f->client, holder.key, holder.token));

    assert_int_equal(
        lock_acquire(f->client, "e-busy", LONG_TTL_MS, 0, NULL, NULL, &waiter, err, sizeof err),
        LOCK_BUSY); /* wait 0: one attempt */
}

/* A cancel probe that counts its calls and says "give up" from call number `cancel_at` on
 * (0: never). */
struct probe {
    atomic_int calls;
    int cancel_at;
};

static bool probe_cancel(void *ud)
{
    struct probe *p = ud;
    int n = atomic_fetch_add(&p->calls, 1) + 1;
    return p->cancel_at > 0 && n >= p->cancel_at;
}

struct releaser {
    const struct redis_url *url;
    const struct lock_held *h;
    struct probe *waiting; /* released once the waiter has probed (it is waiting) */
    int rc;
};

static void releaser_main(void *arg)
{
    struct releaser *rl = arg;
    struct redis_client *c = redis_client_new(rl->url, CONNECT_TIMEOUT_MS, COMMAND_TIMEOUT_MS);
    char err[256];
    bool waiting;
    TH_WAIT(waiting, atomic_load(&rl->waiting->calls) > 0, 5000);
    rl->rc = waiting && c ? lock_release(c, rl->h, err, sizeof err) : -2;
    redis_client_free(c);
}

static void test_waiting_acquire_gets_lock_after_release(void **state)
{
    struct fixture *f = *state;
    struct lock_held holder, waiter;
    struct probe probe = {.cancel_at = 0};
    char err[256];
    acquire_ok(f->client, "e-handover", LONG_TTL_MS, &holder);

    struct releaser rl = {.url = &f->url, .h = &holder, .waiting = &probe, .rc = -3};
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, releaser_main, &rl), 0);
    enum lock_result rc = lock_acquire(f->client, "e-handover", LONG_TTL_MS, 5000, probe_cancel,
                                       &probe, &waiter, err, sizeof err);
    assert_int_equal(uv_thread_join(&t), 0);
    assert_int_equal(rl.rc, 1);
    assert_int_equal(rc, LOCK_ACQUIRED);
    assert_string_not_equal(waiter.token, holder.token);
    assert_true(key_holds(f->client, waiter.key, waiter.token));
}

static void test_waiting_acquire_gets_lock_after_expiry(void **state)
{
    struct fixture *f = *state;
    struct lock_held holder, waiter;
    char err[256];
    acquire_ok(f->client, "e-expiry", 300, &holder);
    assert_int_equal(lock_acquire(f->client, "e-expiry", LONG_TTL_MS, 5000, NULL, NULL, &waiter,
                                  err, sizeof err),
                     LOCK_ACQUIRED);
    assert_true(key_holds(f->client, waiter.key, waiter.token));
}

static void test_cancel_gives_up_promptly(void **state)
{
    struct fixture *f = *state;
    struct lock_held holder, waiter;
    struct probe now = {.cancel_at = 1};
    char err[256] = "stale";
    acquire_ok(f->client, "e-cancel", LONG_TTL_MS, &holder);

    long long t0 = th_now_ms();
    assert_int_equal(lock_acquire(f->client, "e-cancel", LONG_TTL_MS, 30000, probe_cancel, &now,
                                  &waiter, err, sizeof err),
                     LOCK_CANCELLED);
    assert_true(th_now_ms() - t0 < 5000); /* not the 30 s wait */
    assert_int_equal(atomic_load(&now.calls), 1);
    assert_string_equal(err, "");
    assert_string_equal(waiter.key, "");

    /* Asked between sleep slices: a probe turning true later is heard at its next call. */
    struct probe later = {.cancel_at = 5};
    assert_int_equal(lock_acquire(f->client, "e-cancel", LONG_TTL_MS, 30000, probe_cancel, &later,
                                  &waiter, err, sizeof err),
                     LOCK_CANCELLED);
    assert_int_equal(atomic_load(&later.calls), 5);
    assert_true(key_holds(f->client, holder.key, holder.token));
}

/* ---- expiry and errors -------------------------------------------------------------------- */

static void test_renew_and_release_of_expired_lock_return_0(void **state)
{
    struct fixture *f = *state;
    struct lock_held h;
    char err[256] = "stale";
    bool gone;
    acquire_ok(f->client, "e-expired", 100, &h);
    TH_WAIT(gone, !key_exists(f->client, h.key), 5000);
    assert_true(gone);
    assert_int_equal(lock_renew(f->client, &h, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_false(key_exists(f->client, h.key)); /* PEXPIRE did not bring it back */
    assert_int_equal(lock_release(f->client, &h, err, sizeof err), 0);
    assert_string_equal(err, "");
}

static void test_error_reply_is_lock_error(void **state)
{
    struct fixture *f = *state;
    struct lock_held h;
    char err[256];
    acquire_ok(f->client, "e-wrongtype", LONG_TTL_MS, &h);
    redisReply *r = redis_command(f->client, err, sizeof err, "DEL %s", h.key);
    assert_non_null(r);
    freeReplyObject(r);
    r = redis_command(f->client, err, sizeof err, "RPUSH %s x", h.key);
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(lock_release(f->client, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "WRONGTYPE"));
    assert_int_equal(lock_renew(f->client, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "WRONGTYPE"));
}

static void test_noauth_is_lock_error(void **state)
{
    (void)state;
    struct th_redis secured;
    struct redis_url u;
    struct lock_held h;
    char err[256];
    assert_int_equal(th_redis_start(&secured, "s3cret"), 0);
    assert_int_equal(redis_url_parse(secured.url, &u, err, sizeof err), 0);
    u.password[0] = '\0';
    struct redis_client *c = client_for(&u);
    assert_int_equal(
        lock_acquire(c, "e-noauth", LONG_TTL_MS, 1000, NULL, NULL, &h, err, sizeof err),
        LOCK_ERROR);
    assert_non_null(strstr(err, "NOAUTH"));
    assert_non_null(strstr(err, "e-noauth"));
    redis_client_free(c);
    th_redis_stop(&secured);
}

static void test_redis_down_is_lock_error_then_reconnects(void **state)
{
    struct fixture *f = *state;
    struct lock_held h;
    char err[256];
    acquire_ok(f->client, "e-down", LONG_TTL_MS, &h);
    int port = f->redis.port;

    th_redis_stop(&f->redis);
    assert_int_equal(
        lock_acquire(f->client, "e-down-2", LONG_TTL_MS, 1000, NULL, NULL, &h, err, sizeof err),
        LOCK_ERROR);
    assert_true(err[0] != '\0');
    assert_string_equal(h.key, "");
    assert_int_equal(
        lock_acquire(f->client, "e-down-2", LONG_TTL_MS, 0, NULL, NULL, &h, err, sizeof err),
        LOCK_ERROR); /* still down (or in the reconnect backoff) */
    assert_true(err[0] != '\0');

    assert_int_equal(th_redis_start_port(&f->redis, port, NULL), 0);
    bool ok;
    TH_WAIT(ok,
            lock_acquire(f->client, "e-down-2", LONG_TTL_MS, 0, NULL, NULL, &h, err, sizeof err) ==
                LOCK_ACQUIRED,
            10000);
    if (!ok)
        fail_msg("no reconnect: %s", err);
    assert_true(key_holds(f->client, h.key, h.token));
}

/* ---- renewer ------------------------------------------------------------------------------ */

static struct lock_renewer *renewer_for(struct fixture *f, long long ttl_ms)
{
    char err[256];
    struct lock_renewer *r = lock_renewer_start(&f->url, ttl_ms, err, sizeof err);
    if (!r)
        fail_msg("lock_renewer_start: %s", err);
    return r;
}

static void test_renewer_keeps_lock_alive_until_removed(void **state)
{
    struct fixture *f = *state;
    struct lock_renewer *r = renewer_for(f, 600);
    struct lock_held h;
    acquire_ok(f->client, "e-renewed", 600, &h);
    unsigned long id = lock_renewer_add(r, &h);
    assert_true(id > 0);

    /* Three TTLs pass; the lock holds our token all along. */
    long long end = th_now_ms() + 2000;
    bool held = true;
    while (held && th_now_ms() < end) {
        held = key_holds(f->client, h.key, h.token);
        th_sleep_ms(20);
    }
    assert_true(held);
    assert_true(th_redis_int(f->client, "PTTL %s", h.key) > 0);
    assert_false(lock_renewer_lost(r, id));

    assert_false(lock_renewer_remove(r, id));
    bool gone;
    TH_WAIT(gone, !key_exists(f->client, h.key), 3000); /* no more renewal: it expires */
    assert_true(gone);
    assert_false(lock_renewer_remove(r, id)); /* unknown now */
    lock_renewer_stop(r);
}

static void test_renewer_marks_taken_over_lock_lost(void **state)
{
    struct fixture *f = *state;
    capture_logs(f);
    struct lock_renewer *r = renewer_for(f, 600);
    struct lock_held h, other;
    char err[256];
    acquire_ok(f->client, "e-taken", 600, &h);
    acquire_ok(f->client, "e-kept", 600, &other);
    unsigned long id = lock_renewer_add(r, &h);
    unsigned long other_id = lock_renewer_add(r, &other);
    assert_true(id > 0 && other_id > 0 && id != other_id);
    assert_false(lock_renewer_lost(r, id));

    redisReply *reply = redis_command(f->client, err, sizeof err, "SET %s intruder", h.key);
    assert_non_null(reply);
    freeReplyObject(reply);

    bool lost;
    TH_WAIT(lost, lock_renewer_lost(r, id), 5000);
    assert_true(lost);
    assert_false(lock_renewer_lost(r, other_id));
    assert_int_equal(logged(f, "entity lock lost", "e-taken"), 1);
    assert_int_equal(logged(f, "entity lock lost", "e-kept"), 0);
    assert_int_equal(logged(f, h.token, NULL), 0); /* logs stay short */
    assert_true(key_holds(f->client, h.key, "intruder"));

    assert_true(lock_renewer_remove(r, id));
    assert_false(lock_renewer_remove(r, other_id));
    assert_false(lock_renewer_lost(r, id)); /* unknown now */
    lock_renewer_stop(r);
}

static void test_renewer_survives_outage(void **state)
{
    struct fixture *f = *state;
    capture_logs(f);
    struct lock_renewer *r = renewer_for(f, 600);
    struct lock_held h;
    acquire_ok(f->client, "e-outage", 600, &h);
    unsigned long id = lock_renewer_add(r, &h);
    int port = f->redis.port;

    th_redis_stop(&f->redis);
    bool failed;
    TH_WAIT(failed, logged(f, "entity lock renewal failed", "e-outage") > 0, 5000);
    assert_true(failed);
    assert_false(lock_renewer_lost(r, id)); /* an error is not a loss */

    /* The new server is empty: the next renewal that reaches it finds the lock gone. */
    assert_int_equal(th_redis_start_port(&f->redis, port, NULL), 0);
    bool lost;
    TH_WAIT(lost, lock_renewer_lost(r, id), 10000);
    assert_true(lost);
    assert_int_equal(logged(f, "entity lock renewal failed", NULL), 1); /* once per outage */
    assert_int_equal(logged(f, "entity lock renewal works again", NULL), 1);
    assert_true(lock_renewer_remove(r, id));
    lock_renewer_stop(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2); see redis.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acquire_sets_key_and_release_deletes_it, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_only_the_token_holder_releases_or_renews, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_renew_extends_ttl, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_busy_after_wait, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_waiting_acquire_gets_lock_after_release, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_waiting_acquire_gets_lock_after_expiry, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_cancel_gives_up_promptly, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_renew_and_release_of_expired_lock_return_0,
                                        setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_error_reply_is_lock_error, setup_server,
                                        teardown_server),
        cmocka_unit_test(test_noauth_is_lock_error),
        cmocka_unit_test_setup_teardown(test_redis_down_is_lock_error_then_reconnects, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_renewer_keeps_lock_alive_until_removed, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_renewer_marks_taken_over_lock_lost, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_renewer_survives_outage, setup_server,
                                        teardown_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
