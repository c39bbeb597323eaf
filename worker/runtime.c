/* runtime.c: vmh-worker's runtime (SPEC §4.1–§4.4, §2, §10).
 *
 * Threads:
 *  - the main thread runs the Kafka poll loop: messages into the executor, rebalances, offset
 *    stores, backpressure, the Redis probe, DLQ delivery reports, gauges. It never runs a sync.
 *  - WORKER_CONCURRENCY executor threads run the handler, each with its own Redis connection;
 *    a run holds the entity's lock (lock.h), renewed by the renewer thread.
 *  - a signal thread turns SIGTERM/SIGINT into the stop flag; the ops endpoint has its own.
 *
 * Locks: the executor's lock may be held while rt->mu is taken (done/drop callbacks), never the
 * other way round; the poll thread calls the executor without holding rt->mu.
 *
 * Partition state (struct wk_part) is reference-counted under rt->mu: one reference for the
 * assignment, one per message in the executor or in DLQ delivery. After a revoke it is "gone":
 * late completions no longer move its offsets. */
#include "runtime.h"

#include "executor.h"
#include "kafka.h"
#include "lock.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"
#include "ops.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define POLL_MS           100 /* longest wait for an event while paused */
#define TAKE_WAIT_MS      10  /* wait for a message, or for the executor under backpressure */
#define GAUGE_INTERVAL_MS 250
#define PROBE_UP_MS       2000  /* Redis PING while it answers */
#define PROBE_DOWN_MS     500   /* ... and while it does not */
#define REDIS_RETRY_MS    1000  /* a run that found Redis down tries again after this */
#define LIVE_MARGIN_MS    60000 /* /healthz: poll loop stall allowed beyond a revoke's waits */
#define NTOPICS           4     /* create, update, delete, sync_check */
#define TOPIC_MAX         256

struct wk_part {
    struct wk_part *next; /* rt->parts */
    char topic[TOPIC_MAX];
    int32_t partition;
    struct offtrack track;
    int refs;
    bool draining; /* being revoked: queued messages dropped, running ones awaited */
    bool gone;     /* revoked: completions no longer count */
    bool dirty;    /* committable moved since the last store */
};

/* A poison message on its way to the DLQ; its offset is done once Kafka holds it. */
struct dlq_item {
    struct dlq_item *next;
    struct wk_part *part;
    int64_t offset;
    char *key, *value;
    size_t keylen, valuelen;
    char error[200];
};

struct wk_runtime {
    const struct wk_handler *h;
    struct cfg *cfg;
    struct metrics *reg;
    char topics[NTOPICS][TOPIC_MAX], dlq_topic[TOPIC_MAX];
    unsigned concurrency;
    size_t max_pending;
    long long lock_ttl_ms, lock_wait_ms, rebalance_drain_ms, shutdown_drain_ms;

    rd_kafka_t *rk, *prod;
    rd_kafka_queue_t *mq; /* every assigned partition's messages */
    struct executor *ex;
    struct redis_url rurl;
    struct redis_client **tredis; /* per executor thread */
    unsigned *tredis_outage;      /* per thread: the outage its connection was made after */
    void **thread_ud;
    bool *thread_inited;
    struct redis_client *probe;
    struct lock_renewer *renewer;

    uv_mutex_t mu; /* parts and their trackers */
    struct wk_part *parts;
    struct dlq_item *dlq_retry; /* poll thread only */

    atomic_bool stop, redis_down, joined, probe_now, fatal;
    atomic_uint redis_outages; /* counts each time Redis is found unreachable */
    atomic_int signal;
    atomic_llong loop_beat;      /* monotonic ms of the poll loop's latest round */
    bool paused, backpressure;   /* poll thread only */
    long long shutdown_deadline; /* 0 until shutdown begins */
    long long leave_deadline;    /* 0 until the drain is over: commit and leave by then */
    long long next_probe, next_gauges;

    struct {
        struct metric *inflight, *queue_depth, *coalesced, *lock_busy, *lock_lost, *dlq, *lag,
            *consumed, *done, *runs, *run_seconds, *assigned, *paused, *redis_up, *rebalances;
    } m;
};

/* ---- partitions ------------------------------------------------------------------------- */

static void part_unref_locked(struct wk_part *p)
{
    if (--p->refs == 0) {
        offtrack_free(&p->track);
        free(p);
    }
}

static void part_unref(struct wk_runtime *rt, struct wk_part *p)
{
    uv_mutex_lock(&rt->mu);
    part_unref_locked(p);
    uv_mutex_unlock(&rt->mu);
}

/* The assigned partition (with a new reference), or NULL. */
static struct wk_part *part_get(struct wk_runtime *rt, const char *topic, int32_t partition)
{
    uv_mutex_lock(&rt->mu);
    struct wk_part *p = rt->parts;
    while (p && (p->partition != partition || strcmp(p->topic, topic) != 0))
        p = p->next;
    if (p)
        p->refs++;
    uv_mutex_unlock(&rt->mu);
    return p;
}

/* A message of p is finished: its offset may move the committable offset. */
static void part_done(struct wk_runtime *rt, struct wk_part *p, int64_t offset)
{
    uv_mutex_lock(&rt->mu);
    if (!p->gone && offtrack_done(&p->track, offset) == 1)
        p->dirty = true;
    part_unref_locked(p);
    uv_mutex_unlock(&rt->mu);
}

/* Stores the committable offset of every partition that moved (poll thread). */
static void store_offsets(struct wk_runtime *rt)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    uv_mutex_lock(&rt->mu);
    for (struct wk_part *p = rt->parts; p; p = p->next) {
        if (!p->dirty || p->gone)
            continue;
        p->dirty = false;
        rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset =
            offtrack_committable(&p->track);
    }
    uv_mutex_unlock(&rt->mu);
    if (list->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(rt->rk, list);
        if (err)
            log_warn("storing offsets failed", LOG_STR("error", rd_kafka_err2str(err)));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* ---- pause / resume --------------------------------------------------------------------- */

/* Whether the handler keeps the worker from taking work (its set-up is not right yet). */
static bool handler_gated(struct wk_runtime *rt, char *why, size_t whylen)
{
    char none[1];
    return rt->h->gate && !rt->h->gate(rt->h->ud, why ? why : none, why ? whylen : sizeof none);
}

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
    bool gated = handler_gated(rt, NULL, 0);
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

/* ---- rebalance -------------------------------------------------------------------------- */

static bool msg_draining(const struct ex_msg *m, void *ud)
{
    (void)ud;
    return m->part->draining;
}

#define COMMIT_WAIT_MS 5000 /* longest wait for a commit's answer (revoke, shutdown) */

/* Commits the stored offsets and waits for the broker's answer, at most COMMIT_WAIT_MS (and
 * never past the shutdown deadline's grace): the next owner starts where this one ended, and a
 * dead cluster cannot hold a revoke or a shutdown forever (rd_kafka_commit() has no timeout). */
static void commit_bounded(struct wk_runtime *rt, const char *when)
{
    long long deadline = util_monotonic_ms() + COMMIT_WAIT_MS;
    if (rt->leave_deadline && rt->leave_deadline < deadline)
        deadline = rt->leave_deadline;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rt->rk);
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(rt->rk, NULL, q, NULL, NULL);
    bool answered = err != RD_KAFKA_RESP_ERR_NO_ERROR;
    while (!answered) {
        long long left = deadline - util_monotonic_ms();
        if (left <= 0)
            break;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)(left < POLL_MS ? left : POLL_MS));
        if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
            err = rd_kafka_event_error(ev);
            answered = true;
        }
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    if (!answered)
        log_warn("offset commit not answered in time", LOG_STR("when", when),
                 LOG_INT("wait_ms", COMMIT_WAIT_MS));
    else if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("offset commit failed", LOG_STR("when", when),
                 LOG_STR("error", rd_kafka_err2str(err)));
}

static void on_assign(struct wk_runtime *rt, rd_kafka_topic_partition_list_t *parts)
{
    uv_mutex_lock(&rt->mu);
    for (int i = 0; i < parts->cnt; i++) {
        struct wk_part *p = calloc(1, sizeof *p);
        if (!p) {
            log_error("out of memory on partition assignment");
            abort();
        }
        snprintf(p->topic, sizeof p->topic, "%s", parts->elems[i].topic);
        p->partition = parts->elems[i].partition;
        offtrack_init(&p->track);
        p->refs = 1;
        p->next = rt->parts;
        rt->parts = p;
    }
    uv_mutex_unlock(&rt->mu);
    /* Messages go to rt->mq, events stay on the consumer queue: the poll loop can stop taking
     * messages and still serve rebalances (see update_pause). */
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_queue_t *pq =
            rd_kafka_queue_get_partition(rt->rk, parts->elems[i].topic, parts->elems[i].partition);
        if (pq) {
            rd_kafka_queue_forward(pq, rt->mq);
            rd_kafka_queue_destroy(pq);
        }
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rt->rk, parts);
    if (err)
        log_error("assign failed", LOG_STR("error", rd_kafka_err2str(err)));
    atomic_store(&rt->joined, true);
    metric_inc(rt->m.rebalances, "assign");
    metric_set(rt->m.assigned, parts->cnt);
    log_info("partitions assigned", LOG_INT("count", parts->cnt));
}

/* SPEC §4.3: drop what has not started, wait for what runs, store, commit, unassign. */
static void on_revoke(struct wk_runtime *rt, rd_kafka_topic_partition_list_t *parts)
{
    uv_mutex_lock(&rt->mu);
    for (int i = 0; i < parts->cnt; i++) {
        for (struct wk_part *p = rt->parts; p; p = p->next) {
            if (p->partition == parts->elems[i].partition &&
                strcmp(p->topic, parts->elems[i].topic) == 0)
                p->draining = true;
        }
    }
    uv_mutex_unlock(&rt->mu);

    size_t dropped = executor_drop(rt->ex, msg_draining, NULL);
    long long deadline = util_monotonic_ms() + rt->rebalance_drain_ms;
    if (rt->shutdown_deadline && rt->shutdown_deadline < deadline)
        deadline = rt->shutdown_deadline;
    bool idle = executor_wait_idle(rt->ex, msg_draining, NULL, deadline);
    if (!idle)
        log_warn("revoke: running syncs did not finish in time; the new owner repeats them",
                 LOG_INT("drain_ms", rt->rebalance_drain_ms));
    store_offsets(rt);
    commit_bounded(rt, "revoke");
    uv_mutex_lock(&rt->mu);
    struct wk_part **pp = &rt->parts;
    while (*pp) {
        struct wk_part *p = *pp;
        if (p->draining) {
            *pp = p->next;
            p->gone = true;
            part_unref_locked(p);
        } else {
            pp = &p->next;
        }
    }
    uv_mutex_unlock(&rt->mu);
    rd_kafka_assign(rt->rk, NULL);
    metric_inc(rt->m.rebalances, "revoke");
    metric_set(rt->m.assigned, 0);
    log_info("partitions revoked", LOG_INT("count", parts->cnt), LOG_INT("dropped", dropped),
             LOG_BOOL("drained", idle));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct wk_runtime *rt = opaque;
    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(rt, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(rt, parts);
    } else {
        log_error("rebalance error", LOG_STR("error", rd_kafka_err2str(err)));
        on_revoke(rt, parts);
    }
}

/* ---- statistics: consumer lag ----------------------------------------------------------- */

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct wk_runtime *rt = opaque;
    (void)rk;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *topics = json_object_get(root, "topics"), *t;
    const char *tname;
    metric_reset(rt->m.lag);
    json_object_foreach(topics, tname, t)
    {
        json_t *parts = json_object_get(t, "partitions"), *p;
        const char *pkey;
        json_object_foreach(parts, pkey, p)
        {
            json_int_t part = json_integer_value(json_object_get(p, "partition"));
            json_t *lag = json_object_get(p, "consumer_lag");
            if (part < 0 || !json_is_integer(lag) || json_integer_value(lag) < 0)
                continue;
            char pstr[24];
            snprintf(pstr, sizeof pstr, "%" JSON_INTEGER_FORMAT, part);
            metric_set(rt->m.lag, (double)json_integer_value(lag), tname, pstr);
        }
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

/* ---- dead letters ----------------------------------------------------------------------- */

static void dlq_free(struct dlq_item *d)
{
    free(d->key);
    free(d->value);
    free(d);
}

static void dlq_produce(struct wk_runtime *rt, struct dlq_item *d)
{
    char pstr[16], ostr[24];
    snprintf(pstr, sizeof pstr, "%" PRId32, d->part->partition);
    snprintf(ostr, sizeof ostr, "%" PRId64, d->offset);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rt->prod, RD_KAFKA_V_TOPIC(rt->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(d->key, d->keylen), RD_KAFKA_V_VALUE(d->value, d->valuelen),
        RD_KAFKA_V_HEADER("error", d->error, -1), RD_KAFKA_V_HEADER("topic", d->part->topic, -1),
        RD_KAFKA_V_HEADER("partition", pstr, -1), RD_KAFKA_V_HEADER("offset", ostr, -1),
        RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (err) { /* queue full or similar: the poll loop tries again */
        d->next = rt->dlq_retry;
        rt->dlq_retry = d;
    }
}

static void dlq_send(struct wk_runtime *rt, struct wk_part *p, const rd_kafka_message_t *rkm,
                     const char *why)
{
    struct dlq_item *d = calloc(1, sizeof *d);
    if (!d || !(d->key = malloc(rkm->key_len + 1)) || !(d->value = malloc(rkm->len + 1))) {
        log_error("out of memory for a dead letter");
        abort();
    }
    if (rkm->key_len)
        memcpy(d->key, rkm->key, rkm->key_len);
    if (rkm->len)
        memcpy(d->value, rkm->payload, rkm->len);
    d->keylen = rkm->key_len;
    d->valuelen = rkm->len;
    d->part = p;
    d->offset = rkm->offset;
    snprintf(d->error, sizeof d->error, "%s", why);
    log_warn("poison message to the dead-letter topic", LOG_STR("topic", p->topic),
             LOG_INT("partition", p->partition), LOG_INT("offset", rkm->offset),
             LOG_STR("error", why));
    dlq_produce(rt, d);
}

static void dlq_retry_all(struct wk_runtime *rt)
{
    struct dlq_item *d = rt->dlq_retry;
    rt->dlq_retry = NULL;
    while (d) {
        struct dlq_item *next = d->next;
        dlq_produce(rt, d);
        d = next;
    }
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct wk_runtime *rt = opaque;
    struct dlq_item *d = rkm->_private;
    (void)rk;
    if (rkm->err) {
        log_warn("dead letter not delivered; retrying",
                 LOG_STR("error", rd_kafka_err2str(rkm->err)));
        d->next = rt->dlq_retry;
        rt->dlq_retry = d;
        return;
    }
    metric_inc(rt->m.dlq);
    part_done(rt, d->part, d->offset);
    dlq_free(d);
}

/* ---- executor callbacks ----------------------------------------------------------------- */

static void ex_done(void *ud, struct ex_msg *m)
{
    struct wk_runtime *rt = ud;
    part_done(rt, m->part, m->offset);
    free(m);
}

static void ex_drop(void *ud, struct ex_msg *m)
{
    part_unref(ud, m->part);
    free(m);
}

/* Whether a run still matters here: false once every message's partition is being revoked
 * (the new owner repeats them). Only messages requeued for a retry can get here after their
 * partition's queued messages were dropped. */
static bool run_wanted(struct wk_runtime *rt, struct ex_msg *const *msgs, size_t n)
{
    bool wanted = false;
    uv_mutex_lock(&rt->mu);
    for (size_t i = 0; i < n && !wanted; i++)
        wanted = !msgs[i]->part->draining;
    uv_mutex_unlock(&rt->mu);
    return wanted;
}

struct run_state {
    struct wk_runtime *rt;
    struct ex_msg *const *msgs;
    size_t n;
};

/* Stops waiting for a busy lock at shutdown or when the partition goes to another worker. */
static bool lock_cancelled(void *ud)
{
    struct run_state *rs = ud;
    return atomic_load(&rs->rt->stop) || !run_wanted(rs->rt, rs->msgs, rs->n);
}

bool wk_lock_lost(struct wk_ctx *ctx)
{
    return lock_renewer_lost(ctx->rt->renewer, ctx->lock_id);
}

int wk_lock_check(struct wk_ctx *ctx)
{
    if (wk_lock_lost(ctx))
        return 0;
    if (!ctx->held)
        return 1;
    char err[256];
    int rc = lock_check(ctx->redis, ctx->held, err, sizeof err);
    if (rc < 0)
        log_warn("entity lock could not be checked", LOG_STR("error", err));
    return rc;
}

bool wk_stopping(struct wk_ctx *ctx)
{
    return atomic_load(&ctx->rt->stop);
}

/* One run: the entity's lock, the handler, the lock's release (SPEC §4.4). */
static enum ex_result ex_run(void *ud, unsigned thread, const char *key, struct ex_msg *const *msgs,
                             size_t n, long long *retry_after_ms)
{
    struct wk_runtime *rt = ud;
    const struct wk_handler *h = rt->h;
    char err[256];

    if (!rt->thread_inited[thread]) {
        rt->thread_ud[thread] = h->thread_init ? h->thread_init(h->ud, thread) : NULL;
        rt->thread_inited[thread] = true;
    }
    if (!rt->tredis[thread] && !(rt->tredis[thread] = redis_client_new(&rt->rurl, 1000, 5000))) {
        *retry_after_ms = REDIS_RETRY_MS;
        return EX_RETRY;
    }
    if (!run_wanted(rt, msgs, n))
        return EX_DROP; /* revoked meanwhile: the new owner runs them */
    struct redis_client *rc = rt->tredis[thread];
    /* A connection idle through an outage is dead without knowing it (Redis restarted): its
     * next command would fail and report a second outage. Connect afresh instead. */
    unsigned outages = atomic_load(&rt->redis_outages);
    if (rt->tredis_outage[thread] != outages) {
        redis_client_disconnect(rc);
        rt->tredis_outage[thread] = outages;
    }
    struct lock_held held;
    struct run_state rs = {.rt = rt, .msgs = msgs, .n = n};
    long long t0 = util_monotonic_ms();
    switch (lock_acquire(rc, key, rt->lock_ttl_ms, rt->lock_wait_ms, lock_cancelled, &rs, &held,
                         err, sizeof err)) {
    case LOCK_ACQUIRED:
        break;
    case LOCK_BUSY:
        /* The holder (or the cron later) covers the entity: it is still dirty in EspoCRM. */
        metric_inc(rt->m.lock_busy);
        metric_inc(rt->m.runs, "lock_busy");
        log_info("entity lock busy; messages completed without a sync", LOG_STR("entity_id", key),
                 LOG_INT("messages", n));
        return EX_DONE;
    case LOCK_CANCELLED: /* shutdown or revoked: unfinished, the next owner runs them */
        return EX_DROP;
    case LOCK_ERROR:
    default:
        if (!atomic_exchange(&rt->redis_down, true)) {
            atomic_fetch_add(&rt->redis_outages, 1);
            log_warn("redis unreachable: runs wait, consumption pauses", LOG_STR("error", err));
        }
        atomic_store(&rt->probe_now, true);
        metric_inc(rt->m.runs, "redis_down");
        *retry_after_ms = REDIS_RETRY_MS;
        return EX_RETRY;
    }

    struct wk_event evbuf[16], *ev = n <= 16 ? evbuf : malloc(n * sizeof *ev);
    if (!ev) {
        lock_release(rc, &held, err, sizeof err);
        *retry_after_ms = REDIS_RETRY_MS;
        return EX_RETRY;
    }
    unsigned attempt = 0;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i]->retries > attempt)
            attempt = msgs[i]->retries;
        ev[i] = (struct wk_event){.topic = msgs[i]->part->topic,
                                  .partition = msgs[i]->part->partition,
                                  .offset = msgs[i]->offset,
                                  .m = &msgs[i]->m};
    }
    struct wk_ctx ctx = {.thread = thread,
                         .thread_ud = rt->thread_ud[thread],
                         .redis = rc,
                         .attempt = attempt,
                         .rt = rt,
                         .lock_id = lock_renewer_add(rt->renewer, &held),
                         .held = &held};
    enum wk_result r = h->run(h->ud, &ctx, key, ev, n);
    if (ev != evbuf)
        free(ev);

    bool lost = ctx.lock_id && lock_renewer_remove(rt->renewer, ctx.lock_id);
    int rel = lock_release(rc, &held, err, sizeof err);
    if (lost || rel == 0) {
        metric_inc(rt->m.lock_lost);
        log_warn("entity lock was lost during the run", LOG_STR("entity_id", key));
    } else if (rel < 0) {
        log_warn("entity lock release failed; it expires by itself", LOG_STR("entity_id", key),
                 LOG_STR("error", err));
    }
    metric_observe(rt->m.run_seconds, (double)(util_monotonic_ms() - t0) / 1000.0);
    if (r == WK_DONE) {
        metric_add(rt->m.coalesced, (double)(n - 1));
        metric_add(rt->m.done, (double)n);
        metric_inc(rt->m.runs, "done");
        return EX_DONE;
    }
    metric_inc(rt->m.runs, "retry");
    *retry_after_ms = ctx.retry_after_ms;
    return EX_RETRY;
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
    struct wk_part *p = part_get(rt, topic, rkm->partition);
    if (!p) { /* fetched before a revoke: the partition's new owner handles it */
        log_debug("message of a partition not assigned; ignored", LOG_STR("topic", topic),
                  LOG_INT("partition", rkm->partition));
        return;
    }
    uv_mutex_lock(&rt->mu);
    if (offtrack_add(&p->track, rkm->offset) != 0)
        log_warn("offset replayed or out of order; handled untracked", LOG_STR("topic", topic),
                 LOG_INT("partition", rkm->partition), LOG_INT("offset", rkm->offset));
    uv_mutex_unlock(&rt->mu);
    metric_inc(rt->m.consumed, topic);

    char why[160];
    struct ex_msg *m = calloc(1, sizeof *m);
    if (!m) {
        log_error("out of memory for a message");
        abort();
    }
    if (msg_decode(rkm->payload, rkm->len, &m->m, why, sizeof why) != 0) {
        free(m);
        dlq_send(rt, p, rkm, why);
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

static void poll_loop(struct wk_runtime *rt)
{
    rd_kafka_message_t *batch[BATCH];
    while (!atomic_load(&rt->stop) && !atomic_load(&rt->fatal)) {
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
        rd_kafka_poll(rt->prod, 0);
        dlq_retry_all(rt);
        store_offsets(rt);
        probe_redis(rt);
        update_pause(rt);
        if (util_monotonic_ms() >= rt->next_gauges) {
            update_gauges(rt);
            rt->next_gauges = util_monotonic_ms() + GAUGE_INTERVAL_MS;
        }
    }
}

#define CLOSE_GRACE_MS 5000 /* after the drain: commit, revoke, LeaveGroup — all of it */

/* SPEC §4.3: stop taking messages, let running syncs finish (bounded), commit, leave. Returns
 * whether every run finished; *closed says whether the consumer left the group cleanly (not
 * when Kafka is unreachable: then nothing more is committed and the group notices the member
 * gone after its session timeout). */
static bool shutdown_consumer(struct wk_runtime *rt, bool *closed)
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
    rd_kafka_flush(rt->prod, (int)(left > 1000 ? 1000 : left > 0 ? left : 0));
    rd_kafka_poll(rt->prod, 0);
    store_offsets(rt);
    rt->leave_deadline = util_monotonic_ms() + CLOSE_GRACE_MS;
    commit_bounded(rt, "shutdown"); /* while still a stable member of the group */

    /* The close revokes (on_revoke: store, commit) and leaves the group; served here with a
     * deadline instead of rd_kafka_consumer_close(), which waits forever for a dead cluster. */
    long long close_deadline = rt->leave_deadline;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rt->rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(rt->rk, q);
    if (error) {
        log_warn("consumer close", LOG_STR("error", rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
    }
    while (!error && !rd_kafka_consumer_closed(rt->rk) && util_monotonic_ms() < close_deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, POLL_MS);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            rebalance_cb(rt->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         rt);
        rd_kafka_event_destroy(ev);
    }
    *closed = !error && rd_kafka_consumer_closed(rt->rk);
    rd_kafka_queue_destroy(q);
    if (!*closed)
        log_warn("could not leave the consumer group cleanly (Kafka unreachable?)",
                 LOG_INT("grace_ms", CLOSE_GRACE_MS));
    atomic_store(&rt->joined, false);
    return idle;
}

/* ---- set-up ----------------------------------------------------------------------------- */

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
    return !handler_gated(rt, why, whylen);
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

static void register_metrics(struct wk_runtime *rt)
{
    struct metrics *r = rt->reg;
    rt->m.inflight = metrics_gauge(r, "vmh_inflight", "syncs running now", NULL);
    rt->m.queue_depth =
        metrics_gauge(r, "vmh_queue_depth", "messages queued in the executor, not started", NULL);
    rt->m.coalesced = metrics_counter(
        r, "vmh_coalesced_total", "messages completed by a run started for an earlier one", NULL);
    rt->m.lock_busy = metrics_counter(r, "vmh_lock_busy_total",
                                      "runs that gave up waiting for a busy entity lock", NULL);
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

/* The consumer (subscribed) and the DLQ producer. 0, or -1 with the reason logged. */
static int kafka_start(struct wk_runtime *rt)
{
    char err[512];
    const char *brokers = cfg_str(rt->cfg, "KAFKA_BROKERS");
    rd_kafka_conf_t *conf = kafka_consumer_conf_new(brokers, cfg_str(rt->cfg, "KAFKA_GROUP_ID"),
                                                    "vmh-worker", err, sizeof err);
    if (!conf)
        goto conf_err;
    rd_kafka_conf_set_opaque(conf, rt);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rt->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rt->rk) {
        rd_kafka_conf_destroy(conf);
        goto conf_err;
    }
    rd_kafka_poll_set_consumer(rt->rk);
    rt->mq = rd_kafka_queue_new(rt->rk);

    conf = kafka_producer_conf_new(brokers, "vmh-worker-dlq", err, sizeof err);
    if (!conf)
        goto conf_err;
    rd_kafka_conf_set_opaque(conf, rt);
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
    rt->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rt->prod) {
        rd_kafka_conf_destroy(conf);
        goto conf_err;
    }

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(NTOPICS);
    for (int i = 0; i < NTOPICS; i++)
        rd_kafka_topic_partition_list_add(subs, rt->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rt->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        log_error("subscribe failed", LOG_STR("error", rd_kafka_err2str(e)));
        return -1;
    }
    return 0;
conf_err:
    log_error("kafka set-up failed", LOG_STR("error", err));
    return -1;
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
    if (!ops || kafka_start(rt) != 0)
        goto out;
    rt->ex = executor_new(rt->concurrency, ex_run, ex_done, ex_drop, rt);
    if (!rt->ex) {
        log_error("executor start failed");
        goto out;
    }
    log_info("vmh-worker started", LOG_INT("concurrency", rt->concurrency),
             LOG_INT("max_pending", (long long)rt->max_pending),
             LOG_STR("group", cfg_str(rt->cfg, "KAFKA_GROUP_ID")),
             LOG_STR("instance", lock_instance_id()));

    poll_loop(rt);
    if (atomic_load(&rt->fatal))
        log_error("fatal Kafka error; stopping");
    else
        log_info("vmh-worker stopping", LOG_INT("signal", atomic_load(&rt->signal)));
    atomic_store(&rt->stop, true);
    bool idle = shutdown_consumer(rt, &closed);
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
    if (rt->mq)
        rd_kafka_queue_destroy(rt->mq);
    if (rt->rk)
        rd_kafka_destroy(rt->rk);
    if (rt->prod)
        rd_kafka_destroy(rt->prod);
    for (unsigned i = 0; rt->thread_inited && i < rt->concurrency; i++) {
        if (rt->thread_inited[i] && h->thread_fini)
            h->thread_fini(h->ud, rt->thread_ud[i]);
        redis_client_free(rt->tredis[i]);
    }
    while (rt->dlq_retry) {
        struct dlq_item *d = rt->dlq_retry;
        rt->dlq_retry = d->next;
        part_unref(rt, d->part);
        dlq_free(d);
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
