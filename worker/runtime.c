/* runtime.c: vmh-worker's runtime (SPEC §4.1–§4.4, §2, §10): worker_main — configuration,
 * metrics registration, the executor, the ops endpoint (/healthz, /readyz, /metrics), the
 * signal thread — and the teardown after the poll loop (poll.c) ended. The other jobs live in
 * consumer.c, poll.c, locked_run.c and dlq.c (runtime_int.h lists them). */
#include "runtime_int.h"

#include "kafka.h"
#include "lock.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LIVE_MARGIN_MS 60000 /* /healthz: poll loop stall allowed beyond a revoke's waits */

/* ---- health and readiness --------------------------------------------------------------- */

static bool ready_cb(void *ud, char *why, size_t whylen)
{
    struct wk_runtime *rt = ud;
    if (atomic_load(&rt->stop)) {
        snprintf(why, whylen, "shutting down");
        return false;
    }
    if (!atomic_load(&rt->joined)) {
        snprintf(why, whylen, "not a member of consumer group yet");
        return false;
    }
    if (atomic_load(&rt->redis_down)) {
        snprintf(why, whylen, "redis unreachable");
        return false;
    }
    return !locked_run__gated(rt, why, whylen);
}

/* Liveness: the poll loop went round recently. It may legitimately stand still while a revoke
 * waits for running syncs and its commit, so the allowance covers that with a margin. */
static bool live_cb(void *ud, char *why, size_t whylen)
{
    struct wk_runtime *rt = ud;
    long long stalled = util_monotonic_ms() - atomic_load(&rt->loop_beat);
    long long allowed = rt->rebalance_drain_ms + COMMIT_WAIT_MS + LIVE_MARGIN_MS;
    if (atomic_load(&rt->stop) || stalled <= allowed)
        return true;
    snprintf(why, whylen, "Kafka poll loop stalled for %lld ms", stalled);
    return false;
}

/* ---- set-up ----------------------------------------------------------------------------- */

static void register_metrics(struct wk_runtime *rt)
{
    struct metrics *r = rt->reg;
    rt->m.inflight = metrics_gauge(r, "vmh_inflight", "syncs running now", NULL);
    rt->m.queue_depth =
        metrics_gauge(r, "vmh_queue_depth", "messages queued in the executor, not started", NULL);
    rt->m.coalesced = metrics_counter(
        r, "vmh_coalesced_total", "messages completed by a run started for an earlier one", NULL);
    rt->m.lock_busy = metrics_counter(
        r, "vmh_lock_busy_total",
        "runs that found their entity lock held elsewhere (the messages wait and try again)", NULL);
    rt->m.lock_lost =
        metrics_counter(r, "vmh_lock_lost_total", "runs whose entity lock was taken over", NULL);
    rt->m.dlq = metrics_counter(r, "vmh_dlq_total", "poison messages sent to the DLQ", NULL);
    rt->m.lag = metrics_gauge(r, "vmh_consumer_lag", "messages behind the partition's end",
                              "topic,partition");
    rt->m.consumed =
        metrics_counter(r, "vmh_messages_consumed_total", "messages received", "topic");
    rt->m.done = metrics_counter(r, "vmh_messages_done_total", "messages completed by a run", NULL);
    rt->m.runs = metrics_counter(r, "vmh_runs_total", "executor runs by outcome", "result");
    rt->m.run_seconds =
        metrics_histogram(r, "vmh_run_duration_seconds", "one run incl. its lock", NULL, NULL, 0);
    rt->m.assigned = metrics_gauge(r, "vmh_partitions_assigned", "partitions owned", NULL);
    rt->m.paused = metrics_gauge(r, "vmh_consumer_paused", "1 while consumption is paused", NULL);
    rt->m.redis_up = metrics_gauge(r, "vmh_redis_up", "1 while Redis answers", NULL);
    rt->m.rebalances = metrics_counter(r, "vmh_rebalances_total", "rebalance events", "type");
    /* every series known at start has a sample from the start (SPEC §10); the lag's label
     * sets are the partitions, known once assigned */
    static const char *const runs[] = {"done", "retry", "lock_busy", "redis_down"};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        metric_touch(rt->m.runs, runs[i]);
    metric_touch(rt->m.rebalances, "assign");
    metric_touch(rt->m.rebalances, "revoke");
    for (int i = 0; i < NTOPICS; i++)
        metric_touch(rt->m.consumed, rt->topics[i]);
    metrics_build_info(r);
}

static void load_config(struct wk_runtime *rt)
{
    const char *prefix = cfg_str(rt->cfg, "KAFKA_TOPIC_PREFIX");
    char err[256];
    for (int i = 0; i < NTOPICS; i++) {
        if (kafka_topic_name(prefix, (enum kafka_topic_kind)i, rt->topics[i], TOPIC_MAX) != 0)
            goto bad_prefix;
    }
    if (kafka_topic_name(prefix, KAFKA_TOPIC_DLQ, rt->dlq_topic, TOPIC_MAX) != 0)
        goto bad_prefix;
    rt->concurrency = (unsigned)cfg_int(rt->cfg, "WORKER_CONCURRENCY");
    long long mp = cfg_int(rt->cfg, "WORKER_MAX_PENDING");
    rt->max_pending = mp > 0 ? (size_t)mp : 10u * rt->concurrency;
    rt->lock_ttl_ms = cfg_duration_ms(rt->cfg, "LOCK_TTL_MS");
    rt->lock_wait_ms = cfg_duration_ms(rt->cfg, "LOCK_WAIT_MS");
    rt->rebalance_drain_ms = cfg_duration_ms(rt->cfg, "REBALANCE_DRAIN_MS");
    rt->shutdown_drain_ms = cfg_duration_ms(rt->cfg, "SHUTDOWN_DRAIN_MS");
    if (redis_url_parse(cfg_str(rt->cfg, "REDIS_URL"), &rt->rurl, err, sizeof err) != 0) {
        fprintf(stderr, "vmh-worker: REDIS_URL: %s\n", err);
        exit(2);
    }
    return;
bad_prefix:
    fprintf(stderr, "vmh-worker: KAFKA_TOPIC_PREFIX: too long\n");
    exit(2);
}

static void signal_thread(void *arg)
{
    struct wk_runtime *rt = arg;
    int sig = ops_wait_for_signal();
    atomic_store(&rt->signal, sig);
    atomic_store(&rt->stop, true);
}

int worker_main(int argc, char **argv, const struct wk_handler *h)
{
    ops_block_signals();
    struct wk_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return 1;
    rt->h = h;
    rt->cfg = cfg_load_or_exit(argc, argv, h->summary, CFG_WORKER);
    ops_log_setup(rt->cfg);
    load_config(rt);
    rt->reg = metrics_new();
    register_metrics(rt);
    if (h->setup)
        h->setup(h->ud, rt->cfg, rt->reg);
    uv_mutex_init(&rt->mu);

    int rc = 1;
    bool closed = false;
    char err[256] = "out of memory"; /* set by whatever fails below */
    uv_thread_t sig_tid;
    uv_thread_create(&sig_tid, signal_thread, rt);
    struct ops_server *ops = NULL;

    rt->tredis = calloc(rt->concurrency, sizeof *rt->tredis);
    rt->tredis_outage = calloc(rt->concurrency, sizeof *rt->tredis_outage);
    rt->thread_ud = calloc(rt->concurrency, sizeof *rt->thread_ud);
    rt->thread_inited = calloc(rt->concurrency, sizeof *rt->thread_inited);
    rt->probe = redis_client_new(&rt->rurl, 500, 1000);
    rt->renewer = lock_renewer_start(&rt->rurl, rt->lock_ttl_ms, err, sizeof err);
    if (!rt->tredis || !rt->tredis_outage || !rt->thread_ud || !rt->thread_inited || !rt->probe ||
        !rt->renewer) {
        log_error("start-up failed", LOG_STR("error", err));
        goto out;
    }
    atomic_store(&rt->loop_beat, util_monotonic_ms());
    ops_set_liveness(live_cb, rt);
    ops = ops_server_start_cfg(rt->cfg, rt->reg, ready_cb, rt);
    if (!ops || consumer__start(rt) != 0 || dlq__start(rt) != 0)
        goto out;
    rt->ex = executor_new(rt->concurrency, locked_run__run, locked_run__done, locked_run__drop, rt);
    if (!rt->ex) {
        log_error("executor start failed");
        goto out;
    }
    log_info("vmh-worker started", LOG_INT("concurrency", rt->concurrency),
             LOG_INT("max_pending", (long long)rt->max_pending),
             LOG_STR("group", cfg_str(rt->cfg, "KAFKA_GROUP_ID")),
             LOG_STR("instance", lock_instance_id()));

    poll__loop(rt);
    if (atomic_load(&rt->fatal))
        log_error("fatal Kafka error; stopping");
    else
        log_info("vmh-worker stopping", LOG_INT("signal", atomic_load(&rt->signal)));
    atomic_store(&rt->stop, true);
    bool idle = poll__shutdown(rt, &closed);
    rc = atomic_load(&rt->fatal) ? 1 : 0;
    if (!idle || !closed) {
        /* Runs still going cannot be joined (their messages were not committed), and a consumer
         * that could not close would block rd_kafka_destroy() until its requests time out. */
        log_warn("exiting without waiting", LOG_BOOL("syncs_running", !idle),
                 LOG_BOOL("kafka_closed", closed), LOG_INT("exit_code", rc));
        _exit(rc);
    }
out:
    if (!atomic_load(&rt->signal))
        kill(getpid(), SIGTERM); /* wakes the signal thread */
    uv_thread_join(&sig_tid);
    executor_free(rt->ex);
    consumer__destroy(rt);
    dlq__destroy(rt);
    for (unsigned i = 0; rt->thread_inited && i < rt->concurrency; i++) {
        if (rt->thread_inited[i] && h->thread_fini)
            h->thread_fini(h->ud, rt->thread_ud[i]);
        redis_client_free(rt->tredis[i]);
    }
    ops_server_stop(ops);
    if (h->teardown)
        h->teardown(h->ud);
    lock_renewer_stop(rt->renewer);
    redis_client_free(rt->probe);
    free(rt->tredis);
    free(rt->tredis_outage);
    free(rt->thread_ud);
    free(rt->thread_inited);
    uv_mutex_destroy(&rt->mu);
    metrics_free(rt->reg);
    cfg_free(rt->cfg);
    free(rt);
    log_info("vmh-worker stopped", LOG_INT("exit_code", rc));
    return rc;
}
