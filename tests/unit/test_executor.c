/* test_executor.c: the key-ordered executor (worker/executor.c, SPEC §4.2) with real threads
 * and a recording run function: per-key order with concurrency across keys, coalescing, retry
 * with delay, EX_DROP, dropping queued messages by predicate, waiting for idle with a deadline,
 * closing the queue, freeing with work queued, and EX_WAIT (requeued like a retry, counted
 * apart). Runs block on a gate the test opens, so no
 * sleep is used as synchronisation (a run may sleep to simulate work). */
#include "executor.h"

#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define KEYS   50
#define PERKEY 40
#define MAXRUN 4096

struct run_rec {
    char key[16];
    size_t n;
    int64_t first, last;
    unsigned retries_first, retries_last, waits_first;
    long long start_ms, end_ms;
};

struct rec {
    uv_mutex_t mu;
    uv_cond_t cond;
    /* behaviour */
    bool gate_open;     /* runs of gated_key block until open */
    char gated_key[16]; /* "" = none */
    int work_ms;        /* every run sleeps this long */
    int retry_first_ms; /* > 0: the first run of each key answers EX_RETRY */
    bool wait_instead;  /* ... EX_WAIT instead */
    bool drop_all;      /* runs answer EX_DROP */
    /* observations */
    struct run_rec runs[MAXRUN];
    size_t nruns;
    int64_t last_offset[KEYS + 2];
    bool retried[KEYS + 2];
    atomic_int active[KEYS + 2];
    atomic_int running, max_running;
    bool overlap_same_key, order_violation;
    size_t done, dropped;
    bool entered_gate; /* a gated run is waiting */
};

static int key_slot(const char *key)
{
    if (key[0] == 'k')
        return atoi(key + 1);
    return key[0] == 'A' ? KEYS : KEYS + 1;
}

static enum ex_result run(void *ud, unsigned thread, const char *key, struct ex_msg *const *msgs,
                          size_t n, long long *retry_after_ms)
{
    struct rec *r = ud;
    (void)thread;
    int slot = key_slot(key);
    if (atomic_fetch_add(&r->active[slot], 1) != 0)
        r->overlap_same_key = true;
    int now_running = atomic_fetch_add(&r->running, 1) + 1;
    int seen = atomic_load(&r->max_running);
    while (now_running > seen && !atomic_compare_exchange_weak(&r->max_running, &seen, now_running))
        ;
    long long start = th_now_ms();

    uv_mutex_lock(&r->mu);
    if (strcmp(key, r->gated_key) == 0) {
        r->entered_gate = true;
        uv_cond_broadcast(&r->cond);
        while (!r->gate_open)
            uv_cond_wait(&r->cond, &r->mu);
    }
    bool retry = r->retry_first_ms > 0 && !r->retried[slot];
    r->retried[slot] = true;
    uv_mutex_unlock(&r->mu);
    if (r->work_ms)
        th_sleep_ms(r->work_ms); /* simulated work */

    uv_mutex_lock(&r->mu);
    if (!retry && !r->drop_all) {
        for (size_t i = 0; i < n; i++) {
            if (msgs[i]->offset <= r->last_offset[slot])
                r->order_violation = true;
            r->last_offset[slot] = msgs[i]->offset;
        }
    }
    if (r->nruns < MAXRUN) {
        struct run_rec *rr = &r->runs[r->nruns++];
        snprintf(rr->key, sizeof rr->key, "%s", key);
        rr->n = n;
        rr->first = msgs[0]->offset;
        rr->last = msgs[n - 1]->offset;
        rr->retries_first = msgs[0]->retries;
        rr->retries_last = msgs[n - 1]->retries;
        rr->waits_first = msgs[0]->waits;
        rr->start_ms = start;
        rr->end_ms = th_now_ms();
    }
    uv_mutex_unlock(&r->mu);
    atomic_fetch_sub(&r->running, 1);
    atomic_fetch_sub(&r->active[slot], 1);
    if (retry) {
        *retry_after_ms = r->retry_first_ms;
        return r->wait_instead ? EX_WAIT : EX_RETRY;
    }
    return r->drop_all ? EX_DROP : EX_DONE;
}

/* done/drop are called with the executor's lock held, on an executor thread (or the caller's
 * for executor_drop / executor_free). */
static void on_done(void *ud, struct ex_msg *m)
{
    struct rec *r = ud;
    uv_mutex_lock(&r->mu);
    r->done++;
    uv_cond_broadcast(&r->cond);
    uv_mutex_unlock(&r->mu);
    free(m);
}

static void on_drop(void *ud, struct ex_msg *m)
{
    struct rec *r = ud;
    uv_mutex_lock(&r->mu);
    r->dropped++;
    uv_cond_broadcast(&r->cond);
    uv_mutex_unlock(&r->mu);
    free(m);
}

static struct rec *rec_new(void)
{
    struct rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    uv_mutex_init(&r->mu);
    uv_cond_init(&r->cond);
    for (int i = 0; i < KEYS + 2; i++)
        r->last_offset[i] = -1;
    return r;
}

static void rec_free(struct rec *r)
{
    uv_cond_destroy(&r->cond);
    uv_mutex_destroy(&r->mu);
    free(r);
}

static void submit(struct executor *ex, const char *key, int64_t offset)
{
    struct ex_msg *m = calloc(1, sizeof *m);
    assert_non_null(m);
    snprintf(m->m.entity_id, sizeof m->m.entity_id, "%s", key);
    m->offset = offset;
    executor_submit(ex, m);
}

static size_t count_of(struct rec *r, const size_t *field)
{
    uv_mutex_lock(&r->mu);
    size_t v = *field;
    uv_mutex_unlock(&r->mu);
    return v;
}

/* Waits (condition variable, deadline) until done + dropped reaches want. */
static bool wait_settled(struct rec *r, size_t want)
{
    long long end = th_now_ms() + 20000;
    uv_mutex_lock(&r->mu);
    while (r->done + r->dropped < want && th_now_ms() < end)
        uv_cond_timedwait(&r->cond, &r->mu, 50 * 1000000ULL);
    bool ok = r->done + r->dropped >= want;
    uv_mutex_unlock(&r->mu);
    return ok;
}

static void wait_gate_entered(struct rec *r)
{
    long long end = th_now_ms() + 20000;
    uv_mutex_lock(&r->mu);
    while (!r->entered_gate && th_now_ms() < end)
        uv_cond_timedwait(&r->cond, &r->mu, 50 * 1000000ULL);
    bool ok = r->entered_gate;
    uv_mutex_unlock(&r->mu);
    assert_true(ok);
}

static void open_gate(struct rec *r)
{
    uv_mutex_lock(&r->mu);
    r->gate_open = true;
    uv_cond_broadcast(&r->cond);
    uv_mutex_unlock(&r->mu);
}

static void gate(struct rec *r, const char *key)
{
    snprintf(r->gated_key, sizeof r->gated_key, "%s", key);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_per_key_order_and_concurrency(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    r->work_ms = 1;
    struct executor *ex = executor_new(4, run, on_done, on_drop, r);
    assert_non_null(ex);
    char key[16];
    /* In rounds, each submitted once as many messages finished as the rounds before the
     * previous one hold: many runs per key, some coalesced. */
    for (int seq = 0; seq < PERKEY; seq++) {
        for (int k = 0; k < KEYS; k++) {
            snprintf(key, sizeof key, "k%d", k);
            submit(ex, key, seq);
        }
        assert_true(wait_settled(r, (size_t)(seq > 0 ? seq - 1 : 0) * KEYS));
    }
    assert_true(wait_settled(r, KEYS * PERKEY));
    print_message("%zu runs for %d messages\n", r->nruns, KEYS * PERKEY);
    assert_int_equal(r->done, KEYS * PERKEY);
    assert_int_equal(r->dropped, 0);
    assert_false(r->overlap_same_key);
    assert_false(r->order_violation);
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(r->last_offset[k], PERKEY - 1);
    assert_true(atomic_load(&r->max_running) > 1);
    struct executor_stats st;
    executor_stats(ex, &st);
    assert_int_equal(st.queued + st.running + st.keys, 0);
    executor_free(ex);
    rec_free(r);
}

static void test_coalescing_takes_everything_queued(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    gate(r, "A");
    struct executor *ex = executor_new(1, run, on_done, on_drop, r);
    submit(ex, "A", 0);
    wait_gate_entered(r);
    for (int i = 1; i <= 20; i++)
        submit(ex, "A", i);
    struct executor_stats st;
    executor_stats(ex, &st);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.queued, 20);
    assert_int_equal(st.runs, 1);
    assert_int_equal(st.keys, 1);
    assert_int_equal(executor_pending(ex), 21);
    open_gate(r);
    assert_true(wait_settled(r, 21));
    assert_int_equal(r->nruns, 2);
    assert_int_equal(r->runs[0].n, 1);
    assert_int_equal(r->runs[1].n, 20);
    assert_int_equal(r->runs[1].first, 1);
    assert_int_equal(r->runs[1].last, 20);
    executor_free(ex);
    rec_free(r);
}

static void test_retry_runs_again_after_delay_with_later_messages_behind(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    r->retry_first_ms = 30;
    gate(r, "A");
    struct executor *ex = executor_new(2, run, on_done, on_drop, r);
    submit(ex, "A", 0);
    wait_gate_entered(r);
    submit(ex, "A", 1); /* queued while the first run goes on */
    submit(ex, "A", 2);
    open_gate(r);
    assert_true(wait_settled(r, 3));
    assert_int_equal(r->done, 3);
    assert_int_equal(r->nruns, 2);
    assert_int_equal(r->runs[0].n, 1);
    assert_int_equal(r->runs[1].n, 3); /* the retried ones first, then the newer one */
    assert_int_equal(r->runs[1].first, 0);
    assert_int_equal(r->runs[1].last, 2);
    assert_int_equal(r->runs[1].retries_first, 1); /* retried once */
    assert_int_equal(r->runs[1].retries_last, 0);  /* queued meanwhile: its first run */
    assert_true(r->runs[1].start_ms - r->runs[0].end_ms >= 25); /* lower bound only */
    assert_false(r->order_violation);
    executor_free(ex);
    rec_free(r);
}

/* EX_WAIT requeues like EX_RETRY (later messages coalesce behind) but counts in waits: the run's
 * give-up policy, which reads retries, does not see it. */
static void test_wait_runs_again_without_counting_a_retry(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    r->retry_first_ms = 30;
    r->wait_instead = true;
    gate(r, "A");
    struct executor *ex = executor_new(2, run, on_done, on_drop, r);
    submit(ex, "A", 0);
    wait_gate_entered(r);
    submit(ex, "A", 1);
    open_gate(r);
    assert_true(wait_settled(r, 2));
    assert_int_equal(r->done, 2);
    assert_int_equal(r->nruns, 2);
    assert_int_equal(r->runs[1].n, 2);
    assert_int_equal(r->runs[1].first, 0);
    assert_int_equal(r->runs[1].retries_first, 0);
    assert_int_equal(r->runs[1].waits_first, 1);
    executor_free(ex);
    rec_free(r);
}

/* A message waiting after EX_WAIT is queued, not running: a revoke's executor_drop() takes it
 * and nobody waits for it. */
static void test_waiting_message_is_dropped_as_queued(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    r->retry_first_ms = 60000;
    r->wait_instead = true;
    struct executor *ex = executor_new(1, run, on_done, on_drop, r);
    submit(ex, "k4", 0);
    bool ok;
    TH_WAIT(ok, count_of(r, &r->nruns) == 1 && executor_wait_idle(ex, NULL, NULL, 0), 20000);
    assert_true(ok);
    struct executor_stats st;
    executor_stats(ex, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.running, 0);
    assert_int_equal(executor_drop(ex, NULL, NULL), 1);
    assert_int_equal(count_of(r, &r->dropped), 1);
    assert_int_equal(count_of(r, &r->done), 0);
    assert_int_equal(executor_pending(ex), 0);
    executor_free(ex);
    rec_free(r);
}

static void test_ex_drop_hands_messages_to_drop(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    r->drop_all = true;
    struct executor *ex = executor_new(2, run, on_done, on_drop, r);
    for (int i = 0; i < 5; i++)
        submit(ex, "k1", i);
    assert_true(wait_settled(r, 5));
    assert_int_equal(r->done, 0);
    assert_int_equal(r->dropped, 5);
    executor_free(ex);
    rec_free(r);
}

static bool odd_offset(const struct ex_msg *m, void *ud)
{
    (void)ud;
    return m->offset % 2 == 1;
}

static bool key_is_A(const struct ex_msg *m, void *ud)
{
    (void)ud;
    return strcmp(m->m.entity_id, "A") == 0;
}

static void test_drop_by_predicate_and_wait_idle(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    gate(r, "A");
    struct executor *ex = executor_new(1, run, on_done, on_drop, r);
    submit(ex, "A", 100); /* blocks the only thread */
    wait_gate_entered(r);
    for (int i = 0; i < 10; i++)
        submit(ex, "k3", i);
    assert_int_equal(executor_drop(ex, odd_offset, NULL), 5);
    assert_int_equal(count_of(r, &r->dropped), 5);
    assert_int_equal(count_of(r, &r->done), 0);
    /* A's run is still going: not idle by the deadline */
    assert_false(executor_wait_idle(ex, key_is_A, NULL, th_now_ms() + 50));
    assert_true(executor_wait_idle(ex, odd_offset, NULL, th_now_ms() + 50)); /* none running */
    open_gate(r);
    assert_true(executor_wait_idle(ex, key_is_A, NULL, th_now_ms() + 20000));
    assert_true(wait_settled(r, 11));
    assert_int_equal(r->done, 6); /* A and k3's even offsets */
    for (size_t i = 0; i < r->nruns; i++) {
        if (strcmp(r->runs[i].key, "k3") == 0)
            assert_int_equal(r->runs[i].first % 2, 0);
    }
    assert_true(executor_wait_idle(ex, NULL, NULL, th_now_ms() + 20000));
    executor_free(ex);
    rec_free(r);
}

static void test_close_queue_drops_queued_and_later_work(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    gate(r, "A");
    struct executor *ex = executor_new(1, run, on_done, on_drop, r);
    submit(ex, "A", 0);
    wait_gate_entered(r);
    submit(ex, "A", 1);
    submit(ex, "k7", 0);
    executor_close_queue(ex);
    assert_int_equal(count_of(r, &r->dropped), 2);
    submit(ex, "k8", 0); /* after close: dropped at once */
    assert_int_equal(count_of(r, &r->dropped), 3);
    open_gate(r);
    assert_true(wait_settled(r, 4));
    assert_int_equal(r->done, 1); /* the running one finished */
    executor_free(ex);
    rec_free(r);
}

static void test_retry_after_close_is_dropped(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    r->retry_first_ms = 10;
    gate(r, "A");
    struct executor *ex = executor_new(1, run, on_done, on_drop, r);
    submit(ex, "A", 0);
    wait_gate_entered(r);
    executor_close_queue(ex);
    open_gate(r);
    assert_true(wait_settled(r, 1));
    assert_int_equal(r->dropped, 1);
    assert_int_equal(r->done, 0);
    executor_free(ex);
    rec_free(r);
}

static void test_free_with_queued_work_drops_it(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    r->retry_first_ms = 60000; /* every key waits a minute after its first run */
    struct executor *ex = executor_new(2, run, on_done, on_drop, r);
    for (int i = 0; i < 30; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 10);
        submit(ex, key, i);
    }
    bool ok;
    TH_WAIT(ok, count_of(r, &r->nruns) >= 10 && executor_wait_idle(ex, NULL, NULL, 0), 20000);
    assert_true(ok);
    assert_int_equal(executor_pending(ex), 30);
    executor_free(ex); /* no leak: everything comes back through drop */
    assert_int_equal(r->dropped, 30);
    assert_int_equal(r->done, 0);
    rec_free(r);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    struct rec *r = rec_new();
    assert_null(executor_new(0, run, on_done, on_drop, r));
    assert_null(executor_new(1, NULL, on_done, on_drop, r));
    assert_null(executor_new(1, run, NULL, on_drop, r));
    assert_null(executor_new(1, run, on_done, NULL, r));
    executor_free(NULL);
    rec_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_key_order_and_concurrency),
        cmocka_unit_test(test_coalescing_takes_everything_queued),
        cmocka_unit_test(test_retry_runs_again_after_delay_with_later_messages_behind),
        cmocka_unit_test(test_wait_runs_again_without_counting_a_retry),
        cmocka_unit_test(test_waiting_message_is_dropped_as_queued),
        cmocka_unit_test(test_ex_drop_hands_messages_to_drop),
        cmocka_unit_test(test_drop_by_predicate_and_wait_idle),
        cmocka_unit_test(test_close_queue_drops_queued_and_later_work),
        cmocka_unit_test(test_retry_after_close_is_dropped),
        cmocka_unit_test(test_free_with_queued_work_drops_it),
        cmocka_unit_test(test_invalid_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
