/* poll.c: the poll loop of vmh-worker's runtime (SPEC §4.1–§4.3): on the main thread it takes
 * messages into the executor (poison ones to the DLQ), serves Kafka's events, stores offsets,
 * pauses and resumes consumption (Redis down, backpressure, handler not ready, shutdown), probes
 * Redis and updates the gauges; at the end it drains the executor for the shutdown. It never runs
 * a sync. */
#include "runtime_int.h"

#include "kafka.h"

#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdlib.h>

#define TAKE_WAIT_MS      10 /* wait for a message, or for the executor under backpressure */
#define GAUGE_INTERVAL_MS 250
#define PROBE_UP_MS       2000 /* Redis PING while it answers */
#define PROBE_DOWN_MS     500  /* ... and while it does not */

/* ---- pause / resume --------------------------------------------------------------------- */

/* Consumption pauses while Redis is down, under backpressure and during shutdown: the poll loop
 * stops taking messages from the message queue, and librdkafka stops fetching once a
 * partition's prefetch queue holds queued.min.messages. Not rd_kafka_pause_partitions(): that
 * throws the prefetched messages away and fetches them again on resume, a stall of about half a
 * second per pause (measured: 10 000 short syncs took 31 s instead of 0.1 s). */
static void update_pause(struct wk_runtime *rt)
{
    size_t pending = executor_pending(rt->ex);
    if (!rt->backpressure && pending > rt->max_pending)
        rt->backpressure = true;
    else if (rt->backpressure && pending < rt->max_pending / 2)
        rt->backpressure = false;
    bool redis_down = atomic_load(&rt->redis_down), stop = atomic_load(&rt->stop);
    bool gated = locked_run__gated(rt, NULL, 0);
    bool want = stop || redis_down || gated || rt->backpressure;
    if (want == rt->paused)
        return;
    rt->paused = want;
    metric_set(rt->m.paused, want ? 1 : 0);
    /* Backpressure comes and goes all the time under load; the other reasons are news. */
    log_write(redis_down || stop || gated ? LOG_INFO : LOG_DEBUG,
              want ? "consumption paused" : "consumption resumed",
              LOG_BOOL("redis_down", redis_down), LOG_BOOL("backpressure", rt->backpressure),
              LOG_BOOL("handler_not_ready", gated), LOG_BOOL("stopping", stop), LOG_END);
}

/* ---- the poll loop ---------------------------------------------------------------------- */

static void on_message(struct wk_runtime *rt, rd_kafka_message_t *rkm)
{
    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return;
        log_warn("consumer error", LOG_STR("error", rd_kafka_message_errstr(rkm)));
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL)
            atomic_store(&rt->fatal, true);
        return;
    }
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct wk_part *p = consumer__part_track(rt, topic, rkm->partition, rkm->offset);
    if (!p) { /* fetched before a revoke: the partition's new owner handles it */
        log_debug("message of a partition not assigned; ignored", LOG_STR("topic", topic),
                  LOG_INT("partition", rkm->partition));
        return;
    }
    metric_inc(rt->m.consumed, topic);

    char why[160];
    struct ex_msg *m = calloc(1, sizeof *m);
    if (!m) {
        log_error("out of memory for a message");
        abort();
    }
    if (msg_decode(rkm->payload, rkm->len, &m->m, why, sizeof why) != 0) {
        free(m);
        dlq__send(rt, p, rkm, why);
        return;
    }
    m->part = p;
    m->offset = rkm->offset;
    executor_submit(rt->ex, m);
}

static void update_gauges(struct wk_runtime *rt)
{
    struct executor_stats st;
    executor_stats(rt->ex, &st);
    metric_set(rt->m.inflight, (double)st.runs);
    metric_set(rt->m.queue_depth, (double)st.queued);
    metric_set(rt->m.redis_up, atomic_load(&rt->redis_down) ? 0 : 1);
}

static void probe_redis(struct wk_runtime *rt)
{
    long long now = util_monotonic_ms();
    if (now < rt->next_probe && !atomic_exchange(&rt->probe_now, false))
        return;
    char err[256];
    bool up = redis_ping(rt->probe, err, sizeof err) == 0;
    bool was_down = atomic_exchange(&rt->redis_down, !up);
    if (up && was_down) {
        log_info("redis reachable again");
    } else if (!up && !was_down) {
        atomic_fetch_add(&rt->redis_outages, 1);
        log_warn("redis unreachable: consumption pauses", LOG_STR("error", err));
    }
    rt->next_probe = util_monotonic_ms() + (up ? PROBE_UP_MS : PROBE_DOWN_MS);
}

#define BATCH 64

/* The start-up check of the five topics (SPEC §1.1): once a broker answers, the process exits
 * 2 naming them if they are missing or unequal; until then asked every 5 s, briefly. */
static void check_topics(struct wk_runtime *rt)
{
    long long now = util_monotonic_ms();
    if (rt->topics_checked || now < rt->topics_next_ms)
        return;
    rt->topics_checked =
        kafka_topics_check_or_exit(rt->rk, "vmh-worker", cfg_str(rt->cfg, "KAFKA_TOPIC_PREFIX"),
                                   500) == 1;
    rt->topics_next_ms = now + 5000;
}

void poll__loop(struct wk_runtime *rt)
{
    rd_kafka_message_t *batch[BATCH];
    while (!atomic_load(&rt->stop) && !atomic_load(&rt->fatal)) {
        check_topics(rt);
        atomic_store(&rt->loop_beat, util_monotonic_ms());
        ssize_t n = 0;
        if (!rt->paused) { /* messages, waiting a little when there are none */
            n = rd_kafka_consume_batch_queue(rt->mq, TAKE_WAIT_MS, batch, BATCH);
            for (ssize_t i = 0; i < n; i++) {
                on_message(rt, batch[i]);
                rd_kafka_message_destroy(batch[i]);
            }
        }
        /* Events (rebalance, errors, statistics); a message only in the moment between a
         * partition's assignment and its forwarding. Waits while paused, briefly under
         * backpressure so work resumes soon after the executor drained. */
        int wait = n > 0 || !rt->paused ? 0 : rt->backpressure ? TAKE_WAIT_MS : POLL_MS;
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rt->rk, wait);
        if (rkm) {
            on_message(rt, rkm);
            rd_kafka_message_destroy(rkm);
        }
        dlq__poll(rt);
        consumer__store_offsets(rt);
        probe_redis(rt);
        update_pause(rt);
        if (util_monotonic_ms() >= rt->next_gauges) {
            update_gauges(rt);
            rt->next_gauges = util_monotonic_ms() + GAUGE_INTERVAL_MS;
        }
    }
}

bool poll__shutdown(struct wk_runtime *rt, bool *closed)
{
    rt->shutdown_deadline = util_monotonic_ms() + rt->shutdown_drain_ms;
    struct executor_stats st;
    executor_stats(rt->ex, &st);
    log_info("draining", LOG_INT("running", st.runs), LOG_INT("queued_dropped", st.queued),
             LOG_INT("drain_ms", rt->shutdown_drain_ms));
    update_pause(rt);
    executor_close_queue(rt->ex);
    bool idle = executor_wait_idle(rt->ex, NULL, NULL, rt->shutdown_deadline);
    if (!idle)
        log_warn("drain time over; unfinished syncs are repeated by the next owner");
    long long left = rt->shutdown_deadline - util_monotonic_ms();
    dlq__flush(rt, (int)(left > 1000 ? 1000 : left > 0 ? left : 0));
    consumer__leave(rt, closed);
    return idle;
}
