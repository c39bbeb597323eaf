/* test_lock_key.c: the parts of the sync lock (common/lock.c, SPEC §4.4) that need no Redis:
 * lock keys by table, the instance id, tokens (distinct across threads), argument checks, and
 * the renewer's lifecycle and bookkeeping with nothing due for renewal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "lock.h"
#include "util.h"

/* ---- keys --------------------------------------------------------------------------------- */

struct key_case {
    const char *id;
    size_t buflen;
    int rc;
    const char *key;
};

#define PREFIX_LEN (sizeof LOCK_KEY_PREFIX - 1)

static const struct key_case key_cases[] = {
    {"68e4aef68d2b4fb98", LOCK_KEY_MAX, 0, "sync_lock:cbeteiligte:68e4aef68d2b4fb98"},
    {"x", LOCK_KEY_MAX, 0, "sync_lock:cbeteiligte:x"},
    {"", LOCK_KEY_MAX, -1, ""},
    {NULL, LOCK_KEY_MAX, -1, ""},
    {"abc", PREFIX_LEN + 4, 0, "sync_lock:cbeteiligte:abc"}, /* exactly fits */
    {"abc", PREFIX_LEN + 3, -1, ""},                         /* one byte short */
    {"abc", 1, -1, ""},
};

static void test_lock_key_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof key_cases / sizeof key_cases[0]; i++) {
        const struct key_case *tc = &key_cases[i];
        char buf[LOCK_KEY_MAX];
        memset(buf, 'z', sizeof buf);
        int rc = lock_key(tc->id, buf, tc->buflen);
        if (rc != tc->rc)
            fail_msg("case %zu (%s, %zu): rc %d, want %d", i, tc->id ? tc->id : "NULL", tc->buflen,
                     rc, tc->rc);
        assert_string_equal(buf, tc->key); /* emptied on failure */
    }
}

static void test_lock_key_rejects_too_long_id(void **state)
{
    (void)state;
    char id[LOCK_KEY_MAX + 40], buf[LOCK_KEY_MAX];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    assert_int_equal(lock_key(id, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    id[LOCK_KEY_MAX - PREFIX_LEN - 1] = '\0'; /* the longest that fits */
    assert_int_equal(lock_key(id, buf, sizeof buf), 0);
    assert_int_equal(strlen(buf), LOCK_KEY_MAX - 1);
    assert_int_equal(lock_key("a", NULL, 0), -1);
}

/* ---- instance id and tokens --------------------------------------------------------------- */

static void test_instance_id_format(void **state)
{
    (void)state;
    const char *id = lock_instance_id();
    char pid[32];
    assert_ptr_equal(id, lock_instance_id()); /* computed once */
    const char *last = strrchr(id, '-');
    assert_non_null(last);
    assert_int_equal(strlen(last + 1), 8);
    for (const char *p = last + 1; *p; p++)
        assert_true(util_hexval(*p) >= 0 && !(*p >= 'A' && *p <= 'F'));
    snprintf(pid, sizeof pid, "-%ld-", (long)getpid());
    const char *hit = strstr(id, pid);
    assert_non_null(hit);
    assert_ptr_equal(hit + strlen(pid) - 1, last); /* "<host>-<pid>-<hex>" */
    assert_true(hit > id);                         /* a host name before it */
    assert_true(strlen(id) + 1 + 20 < LOCK_TOKEN_MAX);
}

static void test_tokens_distinct_and_prefixed(void **state)
{
    (void)state;
    char a[LOCK_TOKEN_MAX], b[LOCK_TOKEN_MAX], prefix[LOCK_TOKEN_MAX];
    lock_token_new(a, sizeof a);
    lock_token_new(b, sizeof b);
    assert_string_not_equal(a, b);
    snprintf(prefix, sizeof prefix, "%s:", lock_instance_id());
    assert_int_equal(strncmp(a, prefix, strlen(prefix)), 0);
    assert_int_equal(strncmp(b, prefix, strlen(prefix)), 0);
    assert_true(strtoull(b + strlen(prefix), NULL, 10) > strtoull(a + strlen(prefix), NULL, 10));

    char tiny[4] = "xyz";
    lock_token_new(tiny, sizeof tiny); /* truncated, still terminated */
    assert_int_equal(strlen(tiny), 3);
    lock_token_new(NULL, 0);
}

#define TOKEN_THREADS     4
#define TOKENS_PER_THREAD 1000

struct token_batch {
    char tokens[TOKENS_PER_THREAD][LOCK_TOKEN_MAX];
};

static void make_tokens(void *arg)
{
    struct token_batch *b = arg;
    for (int i = 0; i < TOKENS_PER_THREAD; i++)
        lock_token_new(b->tokens[i], sizeof b->tokens[i]);
}

static int compare_strings(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void test_tokens_distinct_across_threads(void **state)
{
    (void)state;
    struct token_batch *batches = calloc(TOKEN_THREADS, sizeof *batches);
    const char **all = calloc(TOKEN_THREADS * TOKENS_PER_THREAD, sizeof *all);
    uv_thread_t threads[TOKEN_THREADS];
    assert_non_null(batches);
    assert_non_null(all);
    for (int t = 0; t < TOKEN_THREADS; t++)
        assert_int_equal(uv_thread_create(&threads[t], make_tokens, &batches[t]), 0);
    for (int t = 0; t < TOKEN_THREADS; t++)
        assert_int_equal(uv_thread_join(&threads[t]), 0);
    for (int t = 0; t < TOKEN_THREADS; t++)
        for (int i = 0; i < TOKENS_PER_THREAD; i++)
            all[t * TOKENS_PER_THREAD + i] = batches[t].tokens[i];
    qsort(all, TOKEN_THREADS * TOKENS_PER_THREAD, sizeof *all, compare_strings);
    for (int i = 1; i < TOKEN_THREADS * TOKENS_PER_THREAD; i++)
        if (strcmp(all[i - 1], all[i]) == 0)
            fail_msg("duplicate token %s", all[i]);
    free(all);
    free(batches);
}

/* ---- argument checks (no Redis traffic) --------------------------------------------------- */

/* A client for a URL nobody listens on; the calls below must fail before using it. */
static struct redis_client *unused_client(void)
{
    struct redis_url u;
    char err[256];
    assert_int_equal(redis_url_parse("redis://127.0.0.1:1", &u, err, sizeof err), 0);
    struct redis_client *c = redis_client_new(&u, 100, 100);
    assert_non_null(c);
    return c;
}

static void test_acquire_rejects_bad_arguments(void **state)
{
    (void)state;
    struct redis_client *c = unused_client();
    struct lock_held h;
    char err[256], long_id[66];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0'; /* 65 bytes: one more than entity_id holds */

    assert_int_equal(lock_acquire(c, long_id, 1000, 0, NULL, NULL, &h, err, sizeof err),
                     LOCK_ERROR);
    assert_non_null(strstr(err, "entity id"));
    assert_int_equal(lock_acquire(c, "", 1000, 0, NULL, NULL, &h, err, sizeof err), LOCK_ERROR);
    assert_int_equal(lock_acquire(c, NULL, 1000, 0, NULL, NULL, &h, err, sizeof err), LOCK_ERROR);
    assert_int_equal(lock_acquire(c, "e", 0, 0, NULL, NULL, &h, err, sizeof err), LOCK_ERROR);
    assert_int_equal(lock_acquire(c, "e", 1000, -1, NULL, NULL, &h, err, sizeof err), LOCK_ERROR);
    assert_int_equal(lock_acquire(NULL, "e", 1000, 0, NULL, NULL, &h, err, sizeof err), LOCK_ERROR);
    assert_int_equal(lock_acquire(c, "e", 1000, 0, NULL, NULL, NULL, err, sizeof err), LOCK_ERROR);
    assert_true(err[0] != '\0');
    assert_false(redis_client_connected(c));

    memset(&h, 0, sizeof h);
    assert_int_equal(lock_release(c, &h, err, sizeof err), -1); /* no key, no token */
    assert_int_equal(lock_release(c, NULL, err, sizeof err), -1);
    assert_int_equal(lock_renew(c, NULL, err, sizeof err), -1);
    snprintf(h.key, sizeof h.key, "k");
    snprintf(h.token, sizeof h.token, "t");
    assert_int_equal(lock_renew(c, &h, err, sizeof err), -1); /* ttl 0 */
    assert_true(err[0] != '\0');
    assert_false(redis_client_connected(c));
    redis_client_free(c);
}

/* ---- renewer bookkeeping ------------------------------------------------------------------ */

static void test_renewer_lifecycle_and_ids(void **state)
{
    (void)state;
    struct redis_url u;
    char err[256];
    assert_int_equal(redis_url_parse("redis://127.0.0.1:1", &u, err, sizeof err), 0);
    assert_null(lock_renewer_start(&u, 0, err, sizeof err));
    assert_true(err[0] != '\0');
    assert_null(lock_renewer_start(NULL, 1000, err, sizeof err));

    /* TTL of an hour: nothing becomes due, so no Redis traffic; the wake is 10 minutes away,
     * so a prompt stop shows the thread is woken by it. */
    struct lock_renewer *r = lock_renewer_start(&u, 3600000, err, sizeof err);
    assert_non_null(r);
    assert_string_equal(err, "");
    struct lock_held h = {
        .entity_id = "e1", .key = "sync_lock:cbeteiligte:e1", .token = "t:1", .ttl_ms = 3600000};
    unsigned long a = lock_renewer_add(r, &h);
    unsigned long b = lock_renewer_add(r, &h);
    assert_true(a > 0 && b > 0 && a != b);
    assert_int_equal(lock_renewer_add(r, NULL), 0);
    assert_int_equal(lock_renewer_add(NULL, &h), 0);
    assert_false(lock_renewer_lost(r, a));
    assert_false(lock_renewer_lost(r, 12345));
    assert_false(lock_renewer_remove(r, 12345));
    assert_false(lock_renewer_remove(r, 0));
    assert_false(lock_renewer_remove(r, a));
    assert_false(lock_renewer_remove(r, a)); /* once */
    assert_false(lock_renewer_remove(NULL, b));
    assert_false(lock_renewer_lost(NULL, b));

    long long t0 = util_monotonic_ms();
    lock_renewer_stop(r); /* b still registered: freed with it */
    assert_true(util_monotonic_ms() - t0 < 60000);
    lock_renewer_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_key_table),
        cmocka_unit_test(test_lock_key_rejects_too_long_id),
        cmocka_unit_test(test_instance_id_format),
        cmocka_unit_test(test_tokens_distinct_and_prefixed),
        cmocka_unit_test(test_tokens_distinct_across_threads),
        cmocka_unit_test(test_acquire_rejects_bad_arguments),
        cmocka_unit_test(test_renewer_lifecycle_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
