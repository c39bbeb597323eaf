/* test_worker.c: the worker runtime (SPEC §4.1–§4.4, §2) in one vmh-worker-rec process against
 * a real kafka-mock and redis-server: per-key order with concurrency across keys, coalescing,
 * offsets that never pass an unfinished message, poison messages to the DLQ, a busy entity lock
 * (waited for, never dropped) and a dead holder's lock (until it expires), lock renewal during a
 * long run, consumer lag, and SIGTERM under load committing exactly the
 * finished work. The recording handler (tests/support/worker_rec.c) logs every run in Redis. */
#include "harness.h"
#include "kafka.h"
#include "redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS 12
#define TOPIC      "vmh.beteiligte.update"
#define GROUP      "vmh-worker"

struct fx {
    struct th_wstack st;
    struct th_worker w;
    bool worker_started;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(th_wstack_start(&f->st, PARTITIONS), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->worker_started)
        th_proc_stop(&f->w.proc, SIGKILL, 5000);
    th_wstack_stop(&f->st);
    free(f);
    return 0;
}

static void start_worker(struct fx *f, const char *const *env)
{
    assert_int_equal(th_worker_start(&f->w, f->st.kafka.bootstrap, f->st.redis.url, env), 0);
    f->worker_started = true;
    bool ok;
    TH_WAIT(ok, th_worker_ready(&f->w), 30000);
    assert_true(ok);
}

/* Stops the worker with SIGTERM; returns its exit code. */
static int stop_worker(struct fx *f, long long timeout_ms)
{
    f->worker_started = false;
    return th_proc_stop(&f->w.proc, SIGTERM, timeout_ms);
}

static void redis_do(struct fx *f, const char *fmt, const char *a1, const char *a2)
{
    char err[256];
    redisReply *r = redis_command(f->st.rc, err, sizeof err, fmt, a1, a2);
    assert_non_null(r);
    freeReplyObject(r);
}

static bool started(struct fx *f, const char *key)
{
    return th_rec_started(f->st.rc, key);
}

static long redis_int(struct fx *f, const char *fmt, const char *arg)
{
    return th_redis_int(f->st.rc, fmt, arg);
}

static long long committed(struct fx *f, int partition)
{
    return th_wstack_committed(&f->st, GROUP, TOPIC, partition);
}

/* ---- ordering ------------------------------------------------------------------------- */

#define KEYS   200
#define PERKEY 50

static int key_index(const char *key)
{
    return atoi(key + 1);
}

static int by_start(const void *a, const void *b)
{
    const struct th_run *x = a, *y = b;
    return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

static void test_per_key_order_across_12_partitions(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"WORKER_CONCURRENCY=16", "REC_SLEEP_MS=1", NULL};
    long long t0 = th_now_ms();
    start_worker(f, env);
    print_message("t+%lld joined\n", th_now_ms() - t0);

    char key[16];
    for (int seq = 0; seq < PERKEY; seq++) {
        for (int k = 0; k < KEYS; k++) {
            snprintf(key, sizeof key, "e%03d", k);
            assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, -1, key), 0);
        }
    }
    assert_int_equal(th_kprod_flush(f->st.kp, 30000), 0);
    print_message("t+%lld produced\n", th_now_ms() - t0);
    bool ok;
    TH_WAIT(ok, th_rec_done(f->st.rc) >= KEYS * PERKEY, 120000);
    assert_true(ok);
    print_message("t+%lld handled\n", th_now_ms() - t0);

    struct th_run *runs;
    long n = th_rec_runs(f->st.rc, &runs);
    assert_true(n > 0);
    qsort(runs, (size_t)n, sizeof *runs, by_start);

    /* Every message exactly once (one worker, no rebalance), per key in offset order. */
    static long long last_offset[KEYS], last_end[KEYS];
    static int seen[KEYS];
    for (int k = 0; k < KEYS; k++)
        last_offset[k] = last_end[k] = -1;
    int partition_of[KEYS];
    for (size_t i = 0; i < th_kprod_count(f->st.kp); i++) {
        const struct th_sent *s = th_kprod_sent(f->st.kp, i);
        partition_of[key_index(s->key)] = s->partition;
    }
    long max_overlap = 0, total = 0;
    for (long i = 0; i < n; i++) {
        const struct th_run *r = &runs[i];
        int k = key_index(r->key);
        assert_true(k >= 0 && k < KEYS);
        /* no overlap with the key's previous run */
        assert_true(r->start_us >= last_end[k]);
        last_end[k] = r->end_us;
        for (size_t j = 0; j < r->n; j++) {
            assert_int_equal(r->msgs[j].partition, partition_of[k]);
            assert_true(r->msgs[j].offset > last_offset[k]);
            last_offset[k] = r->msgs[j].offset;
            seen[k]++;
            total++;
        }
        /* how many runs of other keys overlap this one */
        long overlap = 0;
        for (long j = i + 1; j < n && runs[j].start_us < r->end_us; j++)
            overlap++;
        if (overlap > max_overlap)
            max_overlap = overlap;
    }
    assert_int_equal(total, KEYS * PERKEY);
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(seen[k], PERKEY);
    assert_true(max_overlap >= 1); /* different keys ran concurrently */
    print_message("ordering: %ld runs for %d messages, max %ld runs overlapping one\n", n,
                  KEYS * PERKEY, max_overlap);
    th_runs_free(runs, n);

    /* Every offset stored and committed: the group is at the end of each partition. */
    long long want[PARTITIONS] = {0};
    for (size_t i = 0; i < th_kprod_count(f->st.kp); i++) {
        const struct th_sent *s = th_kprod_sent(f->st.kp, i);
        if (s->offset + 1 > want[s->partition])
            want[s->partition] = s->offset + 1;
    }
    for (int p = 0; p < PARTITIONS; p++) {
        TH_WAIT(ok, committed(f, p) == want[p], 10000);
        assert_true(ok);
    }
    print_message("t+%lld committed\n", th_now_ms() - t0);
    /* Consumer lag drops to zero once everything is committed (statistics every 500 ms). */
    TH_WAIT(ok, th_metric(f->w.metrics_port, "vmh_consumer_lag", "vmh.beteiligte.update") == 0,
            10000);
    assert_true(ok);
    assert_int_equal(stop_worker(f, 30000), 0);
}

/* ---- coalescing and lock renewal ------------------------------------------------------- */

static void test_burst_for_one_key_coalesces(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"REC_KEY_CONTROL=1", "LOCK_TTL_MS=1000", NULL};
    redis_do(f, "SET %s %s", "rec:hold:hot", "1");
    start_worker(f, env);

    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, -1, "hot"), 0);
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, started(f, "hot"), 20000);
    assert_true(ok);
    for (int i = 0; i < 49; i++)
        assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, -1, "hot"), 0);
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    TH_WAIT(ok, th_metric(f->w.metrics_port, "vmh_messages_consumed_total", NULL) == 50, 20000);
    assert_true(ok);

    /* The run outlives LOCK_TTL_MS (1 s): the renewer keeps its lock. */
    long long until = th_now_ms() + 2000;
    while (th_now_ms() < until) {
        assert_int_equal(redis_int(f, "EXISTS %s", "sync_lock:cbeteiligte:hot"), 1);
        th_sleep_ms(50);
    }
    redis_do(f, "DEL %s", "rec:hold:hot", NULL);
    TH_WAIT(ok, th_rec_done(f->st.rc) == 50, 20000);
    assert_true(ok);

    struct th_run *runs;
    long n = th_rec_runs(f->st.rc, &runs);
    assert_int_equal(n, 2);
    assert_int_equal(runs[0].n, 1);
    assert_int_equal(runs[1].n, 49);
    th_runs_free(runs, n);
    TH_WAIT(ok, th_metric(f->w.metrics_port, "vmh_coalesced_total", NULL) == 48, 5000);
    assert_true(ok);
    assert_true(th_metric(f->w.metrics_port, "vmh_lock_lost_total", NULL) == 0);
    /* the lock is released at the end of the run */
    assert_int_equal(redis_int(f, "EXISTS %s", "sync_lock:cbeteiligte:hot"), 0);
    assert_int_equal(stop_worker(f, 30000), 0);
}

/* ---- offsets never pass an unfinished message ------------------------------------------ */

static void test_commit_waits_for_slow_key_in_same_partition(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"REC_KEY_CONTROL=1", NULL};
    redis_do(f, "SET %s %s", "rec:hold:slow", "1");
    start_worker(f, env);

    /* offset 0 finishes first, so something is committed (lag is unknown before that) */
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 0, "first"), 0);
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, committed(f, 0) == 1, 20000);
    assert_true(ok);

    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 0, "slow"), 0); /* offset 1 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 0, "fast"), 0); /* 2..6 */
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    TH_WAIT(ok, th_rec_done(f->st.rc) == 6, 20000);
    assert_true(ok);

    /* fast's five are done, slow's one is not: for a while (many auto-commit intervals of
     * 100 ms) nothing past offset 1 is committed. */
    long long until = th_now_ms() + 1500;
    while (th_now_ms() < until) {
        assert_int_equal(committed(f, 0), 1);
        th_sleep_ms(100);
    }
    /* The consumer lag of partition 0 shows the six messages not committed. */
    TH_WAIT(ok,
            th_metric(f->w.metrics_port, "vmh_consumer_lag",
                      "topic=\"vmh.beteiligte.update\",partition=\"0\"") == 6,
            10000);
    assert_true(ok);
    redis_do(f, "DEL %s", "rec:hold:slow", NULL);
    TH_WAIT(ok, committed(f, 0) == 7, 20000);
    assert_true(ok);
    TH_WAIT(ok,
            th_metric(f->w.metrics_port, "vmh_consumer_lag",
                      "topic=\"vmh.beteiligte.update\",partition=\"0\"") == 0,
            10000);
    assert_true(ok);
    assert_int_equal(stop_worker(f, 30000), 0);
}

/* ---- poison messages -------------------------------------------------------------------- */

/* Reads the one message of the DLQ topic with its headers. */
static void read_dlq(struct fx *f, char *value, size_t vlen, char hdr[4][128])
{
    static const char *const names[4] = {"error", "topic", "partition", "offset"};
    rd_kafka_t *rk =
        th_kafka_reader(f->st.kafka.bootstrap, "test-dlq", "vmh.beteiligte.dlq", PARTITIONS);
    assert_non_null(rk);
    long long end = th_now_ms() + 20000;
    bool got = false;
    while (!got && th_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            snprintf(value, vlen, "%.*s", (int)m->len, (const char *)m->payload);
            rd_kafka_headers_t *h = NULL;
            assert_int_equal(rd_kafka_message_headers(m, &h), 0);
            for (int i = 0; i < 4; i++) {
                const void *v;
                size_t len;
                assert_int_equal(rd_kafka_header_get_last(h, names[i], &v, &len), 0);
                snprintf(hdr[i], 128, "%.*s", (int)len, (const char *)v);
            }
            got = true;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(rk);
    assert_true(got);
}

static void test_poison_message_goes_to_dlq_and_partition_flows(void **state)
{
    struct fx *f = *state;
    start_worker(f, NULL);

    static const char poison[] = "{\"v\":1,\"event\":\"update\"}"; /* no entityId */
    assert_int_equal(th_kprod_send(f->st.kp, TOPIC, 3, "bad", poison, strlen(poison)), 0);
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 3, "after"), 0);
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, th_rec_done(f->st.rc) == 1, 20000);
    assert_true(ok);

    char value[256], hdr[4][128];
    read_dlq(f, value, sizeof value, hdr);
    assert_string_equal(value, poison);
    assert_non_null(strstr(hdr[0], "entityId"));
    assert_string_equal(hdr[1], TOPIC);
    assert_string_equal(hdr[2], "3");
    assert_string_equal(hdr[3], "0");
    TH_WAIT(ok, committed(f, 3) == 2, 20000);
    assert_true(ok);
    assert_true(th_metric(f->w.metrics_port, "vmh_dlq_total", NULL) == 1);
    assert_int_equal(stop_worker(f, 30000), 0);
}

/* ---- busy lock ------------------------------------------------------------------------- */

#define LOCK_KEY(id) "sync_lock:cbeteiligte:" id

static double lock_busy(struct fx *f)
{
    return th_metric(f->w.metrics_port, "vmh_lock_busy_total", NULL);
}

/* A message that meets a lock held by another run is never completed without a sync: it waits
 * (its partition's offset with it) and runs once the holder releases the lock. */
static void test_busy_lock_waits_and_syncs_after_release(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"LOCK_WAIT_MS=200", NULL};
    redis_do(f, "SET %s %s", LOCK_KEY("taken"), "someone-else:1");
    start_worker(f, env);

    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 5, "taken"), 0); /* offset 0 */
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 5, "free"), 0);  /* offset 1 */
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    /* "free" ran; "taken" met the lock and came back for it at least once more. */
    TH_WAIT(ok, th_rec_done(f->st.rc) == 1 && lock_busy(f) >= 2, 30000);
    assert_true(ok);
    assert_false(started(f, "taken"));
    /* the waiting message holds its partition's offset back: nothing past offset 0 */
    assert_true(committed(f, 5) <= 0);
    /* the other holder's lock is untouched */
    assert_int_equal(redis_int(f, "EXISTS %s", LOCK_KEY("taken")), 1);

    redis_do(f, "DEL %s", LOCK_KEY("taken"), NULL); /* the holder's run ends */
    TH_WAIT(ok, started(f, "taken") && th_rec_done(f->st.rc) == 2, 30000);
    assert_true(ok);
    TH_WAIT(ok, committed(f, 5) == 2, 30000);
    assert_true(ok);
    /* the run released its own lock */
    assert_int_equal(redis_int(f, "EXISTS %s", LOCK_KEY("taken")), 0);
    assert_int_equal(stop_worker(f, 30000), 0);
}

/* A lock left by a dead holder (taken with the configured TTL, never renewed) delays the sync
 * only until it expires. LOCK_WAIT_MS far below the TTL: the message keeps waiting anyway. */
static void test_dead_holders_lock_delays_the_sync_until_it_expires(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"LOCK_TTL_MS=3000", "LOCK_WAIT_MS=100", NULL};
    start_worker(f, env);
    /* the consumer fetches: a first message went through */
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 7, "warm"), 0);
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, th_rec_done(f->st.rc) == 1, 30000);
    assert_true(ok);

    /* a worker killed in the middle of a run: its lock stays until its TTL ends */
    char err[256];
    redisReply *r = redis_command(f->st.rc, err, sizeof err, "SET %s %s PX %d", LOCK_KEY("orphan"),
                                  "dead-worker:7", 3000);
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 7, "orphan"), 0);
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    TH_WAIT(ok, lock_busy(f) >= 1, 30000);
    assert_true(ok);
    TH_WAIT(ok, started(f, "orphan") && th_rec_done(f->st.rc) == 2, 30000);
    assert_true(ok);
    TH_WAIT(ok, committed(f, 7) == 2, 30000);
    assert_true(ok);
    assert_int_equal(stop_worker(f, 30000), 0);
}

/* ---- SIGTERM under load ---------------------------------------------------------------- */

static void test_sigterm_under_load_commits_exactly_the_finished_work(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"WORKER_CONCURRENCY=8", "REC_SLEEP_MS=150",
                                      "SHUTDOWN_DRAIN_MS=10000", NULL};
    start_worker(f, env);

    char key[16];
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof key, "s%03d", i % 150);
        assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, -1, key), 0);
    }
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, th_rec_done(f->st.rc) >= 40, 30000);
    assert_true(ok);
    long long t0 = th_now_ms();
    assert_int_equal(th_proc_stop(&f->w.proc, SIGTERM, 15000), 0);
    f->worker_started = false;
    print_message("SIGTERM to exit: %lld ms\n", th_now_ms() - t0);

    /* Per partition: the finished offsets; committed == first unfinished. */
    static bool done[PARTITIONS][4096];
    struct th_run *runs;
    long n = th_rec_runs(f->st.rc, &runs);
    long finished = 0;
    for (long i = 0; i < n; i++) {
        for (size_t j = 0; j < runs[i].n; j++) {
            assert_true(runs[i].msgs[j].offset < 4096);
            done[runs[i].msgs[j].partition][runs[i].msgs[j].offset] = true;
            finished++;
        }
    }
    th_runs_free(runs, n);
    assert_true(finished < 600); /* stopped under load */
    long long offs[PARTITIONS];
    assert_int_equal(th_kafka_committed(f->st.kafka.bootstrap, GROUP, TOPIC, PARTITIONS, offs), 0);
    for (int p = 0; p < PARTITIONS; p++) {
        long long first_unfinished = 0;
        while (done[p][first_unfinished])
            first_unfinished++;
        long long want = first_unfinished ? first_unfinished : -1;
        if (offs[p] != want)
            print_error("partition %d: committed %lld, finished up to %lld\n", p, offs[p],
                        first_unfinished);
        assert_int_equal(offs[p], want);
    }
}

/* A run longer than SHUTDOWN_DRAIN_MS: the worker exits 0 when the drain time is over, and the
 * unfinished message stays uncommitted for the next owner. */
static void test_sigterm_with_a_stuck_run_exits_at_the_drain_bound(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"REC_KEY_CONTROL=1", "SHUTDOWN_DRAIN_MS=1000", NULL};
    redis_do(f, "SET %s %s", "rec:hold:stuck", "1");
    start_worker(f, env);
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 2, "before"), 0); /* offset 0 */
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 2, "stuck"), 0);  /* offset 1 */
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, started(f, "stuck") && committed(f, 2) == 1, 20000);
    assert_true(ok);

    long long t0 = th_now_ms();
    assert_int_equal(th_proc_stop(&f->w.proc, SIGTERM, 20000), 0);
    f->worker_started = false;
    long long took = th_now_ms() - t0;
    print_message("SIGTERM with a stuck run to exit: %lld ms (drain 1000 ms)\n", took);
    assert_true(took >= 1000); /* it did wait for the run */
    assert_int_equal(committed(f, 2), 1);
    redis_do(f, "DEL %s", "rec:hold:stuck", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_per_key_order_across_12_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_for_one_key_coalesces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_waits_for_slow_key_in_same_partition, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_poison_message_goes_to_dlq_and_partition_flows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_busy_lock_waits_and_syncs_after_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dead_holders_lock_delays_the_sync_until_it_expires,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_under_load_commits_exactly_the_finished_work,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_with_a_stuck_run_exits_at_the_drain_bound,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
