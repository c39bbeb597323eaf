/* test_worker_group.c: several vmh-worker-rec processes in one consumer group (SPEC §4.1,
 * §4.3, §4.4) against a real kafka-mock and redis-server: a worker killed with SIGKILL in the
 * middle of a run is taken over without losing a message and without a commit past unfinished
 * work; a group scaled 2 → 3 → 1 while messages flow loses nothing; Redis going away pauses
 * consumption and turns /readyz false, and everything is handled once it is back. */
#include "harness.h"
#include "redis.h"

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
#include <uv.h>

#define PARTITIONS 12
#define TOPIC      "vmh.beteiligte.update"
#define GROUP      "vmh-worker"
#define MAXOFF     8192

struct fx {
    struct th_wstack st;
    struct th_worker w[3];
    bool running[3];
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
    for (int i = 0; i < 3; i++) {
        if (f->running[i])
            th_proc_stop(&f->w[i].proc, SIGKILL, 5000);
    }
    th_wstack_stop(&f->st);
    free(f);
    return 0;
}

static void start(struct fx *f, int i, const char *const *env)
{
    assert_int_equal(th_worker_start(&f->w[i], f->st.kafka.bootstrap, f->st.redis.url, env), 0);
    f->running[i] = true;
}

static int stop(struct fx *f, int i, int sig)
{
    f->running[i] = false;
    return th_proc_stop(&f->w[i].proc, sig, 30000);
}

static double assigned(struct fx *f, int i)
{
    return th_metric(f->w[i].metrics_port, "vmh_partitions_assigned", NULL);
}

/* Marks every message of rec:runs finished in done[partition][offset]; returns the runs. */
static long collect_done(struct fx *f, bool (*done)[MAXOFF])
{
    struct th_run *runs;
    long n = th_rec_runs(f->st.rc, &runs);
    for (long i = 0; i < n; i++) {
        for (size_t j = 0; j < runs[i].n; j++) {
            const struct th_run_msg *m = &runs[i].msgs[j];
            if (strcmp(m->topic, TOPIC) == 0 && m->offset < MAXOFF)
                done[m->partition][m->offset] = true;
        }
    }
    th_runs_free(runs, n);
    return n;
}

/* How many messages the test producer delivered are not yet in rec:runs. */
static size_t missing(struct fx *f, struct th_kprod *kp)
{
    static bool done[PARTITIONS][MAXOFF];
    memset(done, 0, sizeof done);
    collect_done(f, done);
    size_t miss = 0;
    for (size_t i = 0; i < th_kprod_count(kp); i++) {
        const struct th_sent *s = th_kprod_sent(kp, i);
        assert_true(s->offset < MAXOFF);
        miss += !done[s->partition][s->offset];
    }
    return miss;
}

/* Reads the committed offsets; true if any partition has one. */
static bool committed_any(struct fx *f, long long *offs)
{
    if (th_kafka_committed(f->st.kafka.bootstrap, GROUP, TOPIC, PARTITIONS, offs) != 0)
        return false;
    for (int p = 0; p < PARTITIONS; p++) {
        if (offs[p] > 0)
            return true;
    }
    return false;
}

/* ---- kill -9 in the middle of a run ------------------------------------------------------- */

static void test_kill9_mid_run_is_taken_over_without_loss(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"REC_KEY_CONTROL=1", "LOCK_TTL_MS=2000",
                                      "WORKER_CONCURRENCY=4", NULL};
    char err[256];
    redisReply *r = redis_command(f->st.rc, err, sizeof err, "SET rec:hold:x 1");
    assert_non_null(r);
    freeReplyObject(r);
    start(f, 0, env);
    bool ok;
    TH_WAIT(ok, th_worker_ready(&f->w[0]), 30000);
    assert_true(ok);

    char key[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, -1, key), 0);
    }
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, -1, "x"), 0);
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    TH_WAIT(ok, th_rec_started(f->st.rc, "x") && th_rec_done(f->st.rc) == 40, 30000);
    assert_true(ok);
    /* Auto commit (every 100 ms) has sent the finished work of some partition. */
    long long offs[PARTITIONS];
    TH_WAIT(ok, committed_any(f, offs), 10000);
    assert_true(ok);

    /* Kill while x's run sleeps in its handler, holding x's lock. */
    assert_int_equal(stop(f, 0, SIGKILL), 128 + SIGKILL);
    static bool done[PARTITIONS][MAXOFF];
    collect_done(f, done);
    assert_int_equal(th_kafka_committed(f->st.kafka.bootstrap, GROUP, TOPIC, PARTITIONS, offs), 0);
    int x_partition = -1;
    long long x_offset = -1;
    for (size_t i = 0; i < th_kprod_count(f->st.kp); i++) {
        const struct th_sent *s = th_kprod_sent(f->st.kp, i);
        if (strcmp(s->key, "x") == 0) {
            x_partition = s->partition;
            x_offset = s->offset;
        }
    }
    /* No partition is committed past a message that was not finished. */
    for (int p = 0; p < PARTITIONS; p++) {
        long long first_unfinished = 0;
        while (first_unfinished < MAXOFF && done[p][first_unfinished])
            first_unfinished++;
        assert_true(offs[p] <= first_unfinished);
    }
    assert_true(offs[x_partition] <= x_offset);
    assert_int_equal(th_redis_int(f->st.rc, "EXISTS %s", "sync_lock:cbeteiligte:x"), 1);

    /* A second worker takes over once the group drops the dead member (session timeout 6 s)
     * and x's lock expires (no renewal any more: LOCK_TTL_MS 2 s). */
    r = redis_command(f->st.rc, err, sizeof err, "DEL rec:hold:x");
    assert_non_null(r);
    freeReplyObject(r);
    start(f, 1, env);
    TH_WAIT(ok, missing(f, f->st.kp) == 0, 60000);
    assert_true(ok);
    struct th_run *runs;
    long n = th_rec_runs(f->st.rc, &runs);
    bool x_by_second = false;
    for (long i = 0; i < n; i++)
        x_by_second |= strcmp(runs[i].key, "x") == 0 && runs[i].pid == (int)f->w[1].proc.pid;
    th_runs_free(runs, n);
    assert_true(x_by_second);
    assert_int_equal(stop(f, 1, SIGTERM), 0);
}

/* ---- scale 2 → 3 → 1 while messages flow --------------------------------------------------- */

struct feeder {
    struct th_kprod *kp;
    atomic_bool stop;
    long sent;
};

static void feed(void *arg)
{
    struct feeder *fd = arg;
    char key[16];
    while (!atomic_load(&fd->stop)) {
        for (int i = 0; i < 10; i++, fd->sent++) {
            snprintf(key, sizeof key, "g%03ld", fd->sent % 300);
            th_kprod_send_entity(fd->kp, TOPIC, -1, key);
        }
        th_kprod_flush(fd->kp, 0);
        th_sleep_ms(50); /* the feed's rate, not synchronisation */
    }
    th_kprod_flush(fd->kp, 20000);
}

static void test_scale_2_3_1_while_messages_flow_loses_nothing(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"WORKER_CONCURRENCY=4", "REC_SLEEP_MS=2", NULL};
    bool ok;
    start(f, 0, env);
    start(f, 1, env);
    TH_WAIT(ok, assigned(f, 0) > 0 && assigned(f, 1) > 0 && assigned(f, 0) + assigned(f, 1) == 48,
            60000);
    assert_true(ok);
    print_message("2 workers: %.0f + %.0f partitions\n", assigned(f, 0), assigned(f, 1));

    struct feeder fd = {.kp = th_kprod_new(f->st.kafka.bootstrap)};
    assert_non_null(fd.kp);
    uv_thread_t tid;
    assert_int_equal(uv_thread_create(&tid, feed, &fd), 0);

    start(f, 2, env);
    TH_WAIT(ok, assigned(f, 2) > 0 && assigned(f, 0) + assigned(f, 1) + assigned(f, 2) == 48,
            60000);
    assert_true(ok);
    print_message("3 workers: %.0f + %.0f + %.0f partitions\n", assigned(f, 0), assigned(f, 1),
                  assigned(f, 2));
    assert_int_equal(stop(f, 1, SIGTERM), 0);
    assert_int_equal(stop(f, 2, SIGTERM), 0);
    TH_WAIT(ok, assigned(f, 0) == 48, 60000);
    assert_true(ok);

    atomic_store(&fd.stop, true);
    uv_thread_join(&tid);
    print_message("fed %ld messages\n", fd.sent);
    assert_int_equal((long)th_kprod_count(fd.kp), fd.sent);
    TH_WAIT(ok, missing(f, fd.kp) == 0, 60000);
    if (!ok)
        print_error("%zu messages never handled\n", missing(f, fd.kp));
    assert_true(ok);
    th_kprod_free(fd.kp);
    assert_int_equal(stop(f, 0, SIGTERM), 0);
}

/* ---- Redis outage ------------------------------------------------------------------------ */

static void test_redis_outage_pauses_and_resumes_without_loss(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"WORKER_CONCURRENCY=4", NULL};
    bool ok;
    start(f, 0, env);
    TH_WAIT(ok, th_worker_ready(&f->w[0]), 30000);
    assert_true(ok);

    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "r%02d", i);
        assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, -1, key), 0);
    }
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    TH_WAIT(ok, th_rec_done(f->st.rc) == 20, 20000);
    assert_true(ok);

    int port = f->st.redis.port;
    redis_client_free(f->st.rc);
    th_redis_stop(&f->st.redis);
    TH_WAIT(ok, !th_worker_ready(&f->w[0]), 20000);
    assert_true(ok);
    TH_WAIT(ok, th_metric(f->w[0].metrics_port, "vmh_consumer_paused", NULL) == 1, 20000);
    assert_true(ok);

    /* Messages arriving now wait: nothing runs without the lock. */
    struct th_kprod *kp2 = th_kprod_new(f->st.kafka.bootstrap);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "s%02d", i);
        assert_int_equal(th_kprod_send_entity(kp2, TOPIC, -1, key), 0);
    }
    assert_int_equal(th_kprod_flush(kp2, 10000), 0);
    double done_before = th_metric(f->w[0].metrics_port, "vmh_messages_done_total", NULL);
    assert_true(done_before == 20);

    /* Redis back on the same port (empty: it keeps no data) → ready, everything handled. */
    assert_int_equal(th_redis_start_port(&f->st.redis, port, NULL), 0);
    f->st.rc = th_redis_client(&f->st.redis);
    TH_WAIT(ok, th_worker_ready(&f->w[0]), 30000);
    assert_true(ok);
    TH_WAIT(ok, missing(f, kp2) == 0, 30000);
    assert_true(ok);
    /* The record is written inside the run, the counter after it returns: wait for both. */
    TH_WAIT(ok, th_metric(f->w[0].metrics_port, "vmh_messages_done_total", NULL) == 40, 10000);
    assert_true(ok);
    TH_WAIT(ok, th_metric(f->w[0].metrics_port, "vmh_consumer_paused", NULL) == 0, 10000);
    assert_true(ok);
    /* One outage, reported once: no run after it tried a connection that died with Redis. */
    assert_true(th_metric(f->w[0].metrics_port, "vmh_runs_total", "result=\"redis_down\"") == 0);
    th_kprod_free(kp2);
    assert_int_equal(stop(f, 0, SIGTERM), 0);
}

/* ---- a revoke that cannot wait for a run ------------------------------------------------- */

/* x's run outlives REBALANCE_DRAIN_MS when a second worker joins: the revoke gives up on it,
 * nothing is committed past x, and x runs again at its partition's owner once the first run
 * let go of the entity lock. */
static void test_revoke_gives_up_on_a_long_run_and_the_owner_repeats_it(void **state)
{
    struct fx *f = *state;
    static const char *const env[] = {"REC_KEY_CONTROL=1", "REBALANCE_DRAIN_MS=1000",
                                      "WORKER_CONCURRENCY=2", NULL};
    char err[256];
    redisReply *r = redis_command(f->st.rc, err, sizeof err, "SET rec:hold:x 1");
    assert_non_null(r);
    freeReplyObject(r);
    start(f, 0, env);
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 0, "x"), 0); /* offset 0 */
    assert_int_equal(th_kprod_send_entity(f->st.kp, TOPIC, 0, "y"), 0); /* offset 1 */
    assert_int_equal(th_kprod_flush(f->st.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, th_rec_started(f->st.rc, "x") && th_rec_done(f->st.rc) == 1, 30000);
    assert_true(ok);

    start(f, 1, env);
    TH_WAIT(ok, assigned(f, 1) > 0 && assigned(f, 0) + assigned(f, 1) == 48, 60000);
    assert_true(ok);
    assert_true(th_wstack_committed(&f->st, GROUP, TOPIC, 0) <= 0);

    r = redis_command(f->st.rc, err, sizeof err, "DEL rec:hold:x");
    assert_non_null(r);
    freeReplyObject(r);
    TH_WAIT(ok, th_wstack_committed(&f->st, GROUP, TOPIC, 0) == 2, 60000);
    assert_true(ok);
    struct th_run *runs;
    long n = th_rec_runs(f->st.rc, &runs), x_runs = 0;
    for (long i = 0; i < n; i++)
        x_runs += strcmp(runs[i].key, "x") == 0;
    th_runs_free(runs, n);
    assert_true(x_runs >= 2); /* the given-up run and the owner's */
    assert_int_equal(stop(f, 1, SIGTERM), 0);
    assert_int_equal(stop(f, 0, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_mid_run_is_taken_over_without_loss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scale_2_3_1_while_messages_flow_loses_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_outage_pauses_and_resumes_without_loss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoke_gives_up_on_a_long_run_and_the_owner_repeats_it,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
