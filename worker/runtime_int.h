/* runtime_int.h: what the files of vmh-worker's runtime share (SPEC §4.1–§4.4, §2, §10); private
 * to worker/, callers use runtime.h. One job per file:
 *  - runtime.c     set-up and teardown (worker_main), /healthz and /readyz, metrics registration
 *  - consumer.c    the Kafka consumer: subscription, assignment and revocation, the partitions
 *                  and their offsets (track, store, commit), consumer lag, leaving the group
 *  - poll.c        the poll loop: messages into the executor, pause/resume and backpressure, the
 *                  Redis probe, gauges, the shutdown drain
 *  - locked_run.c  one run under the entity's lock (the executor's callbacks), the handler's
 *                  gate, a busy lock
 *  - dlq.c         dead letters: poison messages to <prefix>.dlq and their delivery reports
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
#ifndef VMH_RUNTIME_INT_H
#define VMH_RUNTIME_INT_H

#include "runtime.h"

#include "executor.h"
#include "offsets.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define POLL_MS        100  /* longest wait for an event while paused, or for a commit or close */
#define COMMIT_WAIT_MS 5000 /* longest wait for a commit's answer (revoke, shutdown) */
#define NTOPICS        4    /* create, update, delete, sync_check */
#define TOPIC_MAX      256

struct dlq_item; /* dlq.c */

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
    struct dlq_item *dlq_retry; /* dlq.c; poll thread only */

    atomic_bool stop, redis_down, joined, probe_now, fatal;
    atomic_uint redis_outages; /* counts each time Redis is found unreachable */
    atomic_int signal;
    atomic_llong loop_beat;      /* monotonic ms of the poll loop's latest round */
    bool topics_checked;         /* the five topics exist with one partition count */
    long long topics_next_ms;    /* when the poll loop asks again (no broker answered yet) */
    bool paused, backpressure;   /* poll thread only */
    long long shutdown_deadline; /* 0 until shutdown begins */
    long long leave_deadline;    /* 0 until the drain is over: commit and leave by then */
    long long next_probe, next_gauges;

    struct {
        struct metric *inflight, *queue_depth, *coalesced, *lock_busy, *lock_lost, *dlq, *lag,
            *consumed, *done, *runs, *run_seconds, *assigned, *paused, *redis_up, *rebalances;
    } m;
};

/* ---- consumer.c ------------------------------------------------------------------------- */

/* The consumer, subscribed to the four topics (rt->rk; messages of assigned partitions arrive on
 * rt->mq). 0, or -1 with the reason logged. */
int consumer__start(struct wk_runtime *rt);
/* The assigned partition of a delivered message, with a new reference (handed back through
 * consumer__part_done or consumer__part_unref) and the message's offset tracked; NULL if the
 * partition is not assigned (fetched before a revoke). */
struct wk_part *consumer__part_track(struct wk_runtime *rt, const char *topic, int32_t partition,
                                     int64_t offset);
/* A message of p is finished: its offset may move the committable offset. Drops the message's
 * reference. */
void consumer__part_done(struct wk_runtime *rt, struct wk_part *p, int64_t offset);
/* Drops a reference without finishing anything (a message discarded unfinished). */
void consumer__part_unref(struct wk_runtime *rt, struct wk_part *p);
/* Stores the committable offset of every partition that moved (poll thread). */
void consumer__store_offsets(struct wk_runtime *rt);
/* The end of a shutdown (SPEC §4.3): stores and commits, then leaves the group, all within
 * CLOSE_GRACE_MS (5 s). *closed: whether the consumer left cleanly (not when Kafka is unreachable).
 */
void consumer__leave(struct wk_runtime *rt, bool *closed);
/* Frees the consumer and its message queue; fields may be NULL. */
void consumer__destroy(struct wk_runtime *rt);

/* ---- dlq.c ------------------------------------------------------------------------------ */

/* The DLQ producer (rt->prod). 0, or -1 with the reason logged. */
int dlq__start(struct wk_runtime *rt);
/* Sends a copy of the poison message rkm of p (whose reference it takes over) to the DLQ topic
 * with the reason `why`; the offset is done once Kafka holds the dead letter. */
void dlq__send(struct wk_runtime *rt, struct wk_part *p, const rd_kafka_message_t *rkm,
               const char *why);
/* Serves delivery reports and sends again what could not be queued (poll thread). */
void dlq__poll(struct wk_runtime *rt);
/* Waits up to timeout_ms for dead letters still on their way (shutdown). */
void dlq__flush(struct wk_runtime *rt, int timeout_ms);
/* Frees the producer and the dead letters never sent (their partition references too). */
void dlq__destroy(struct wk_runtime *rt);

/* ---- locked_run.c ----------------------------------------------------------------------- */

/* The executor's callbacks (executor.h): one run under the entity's lock, a finished message,
 * a message discarded unfinished. ud is the runtime. */
enum ex_result locked_run__run(void *ud, unsigned thread, const char *key,
                               struct ex_msg *const *msgs, size_t n, long long *retry_after_ms);
void locked_run__done(void *ud, struct ex_msg *m);
void locked_run__drop(void *ud, struct ex_msg *m);
/* Whether the handler keeps the worker from taking work (its set-up is not right yet); why
 * (may be NULL) gets the reason. */
bool locked_run__gated(struct wk_runtime *rt, char *why, size_t whylen);

/* ---- poll.c ----------------------------------------------------------------------------- */

/* The poll loop: runs until rt->stop or rt->fatal (main thread). */
void poll__loop(struct wk_runtime *rt);
/* SPEC §4.3: stop taking messages, let running syncs finish (bounded), commit, leave. Returns
 * whether every run finished; *closed says whether the consumer left the group cleanly (not
 * when Kafka is unreachable: then nothing more is committed and the group notices the member
 * gone after its session timeout). */
bool poll__shutdown(struct wk_runtime *rt, bool *closed);

#endif
