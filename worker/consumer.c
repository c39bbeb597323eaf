/* consumer.c: the Kafka side of vmh-worker's runtime (SPEC §4.1, §4.3, §10): the consumer and
 * its subscription, assignment and revocation, the partitions' offsets (tracked, stored,
 * committed), consumer lag from librdkafka's statistics, and leaving the group at shutdown.
 * The partition states it hands out are reference-counted (runtime_int.h). */
#include "runtime_int.h"

#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- partitions ------------------------------------------------------------------------- */

static void part_unref_locked(struct wk_part *p)
{
    if (--p->refs == 0) {
        offtrack_free(&p->track);
        free(p);
    }
}

void consumer__part_unref(struct wk_runtime *rt, struct wk_part *p)
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

/* part_get, and the message's offset tracked (runtime_int.h). */
struct wk_part *consumer__part_track(struct wk_runtime *rt, const char *topic, int32_t partition,
                                     int64_t offset)
{
    struct wk_part *p = part_get(rt, topic, partition);
    if (!p)
        return NULL;
    uv_mutex_lock(&rt->mu);
    if (offtrack_add(&p->track, offset) != 0)
        log_warn("offset replayed or out of order; handled untracked", LOG_STR("topic", topic),
                 LOG_INT("partition", partition), LOG_INT("offset", offset));
    uv_mutex_unlock(&rt->mu);
    return p;
}

/* A message of p is finished: its offset may move the committable offset. */
void consumer__part_done(struct wk_runtime *rt, struct wk_part *p, int64_t offset)
{
    uv_mutex_lock(&rt->mu);
    if (!p->gone && offtrack_done(&p->track, offset) == 1)
        p->dirty = true;
    part_unref_locked(p);
    uv_mutex_unlock(&rt->mu);
}

/* Stores the committable offset of every partition that moved (poll thread). */
void consumer__store_offsets(struct wk_runtime *rt)
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

/* ---- rebalance -------------------------------------------------------------------------- */

static bool msg_draining(const struct ex_msg *m, void *ud)
{
    (void)ud;
    return m->part->draining;
}

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
    consumer__store_offsets(rt);
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

/* ---- start and leave -------------------------------------------------------------------- */

int consumer__start(struct wk_runtime *rt)
{
    char err[512];
    rd_kafka_conf_t *conf =
        kafka_consumer_conf_new(cfg_str(rt->cfg, "KAFKA_BROKERS"),
                                cfg_str(rt->cfg, "KAFKA_GROUP_ID"), "vmh-worker", err, sizeof err);
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

#define CLOSE_GRACE_MS 5000 /* after the drain: commit, revoke, LeaveGroup — all of it */

void consumer__leave(struct wk_runtime *rt, bool *closed)
{
    consumer__store_offsets(rt);
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
}

void consumer__destroy(struct wk_runtime *rt)
{
    if (rt->mq)
        rd_kafka_queue_destroy(rt->mq);
    if (rt->rk)
        rd_kafka_destroy(rt->rk);
}
