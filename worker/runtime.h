/* runtime.h: vmh-worker's runtime (SPEC §4.1–§4.4, §2, §10): a consumer-group member on the
 * four entity topics that turns messages into handler runs, one entity at a time.
 *
 * The handler is the plug-in point of the sync engine: it gets an entity id and every message
 * that was queued for it when its run started (coalesced, oldest first), runs with the entity's
 * Redis lock held, and answers WK_DONE (the messages are finished, whatever the sync's outcome)
 * or WK_RETRY (not finished: run again after ctx->retry_after_ms; for EspoCRM being unreachable,
 * SPEC §4.3). It runs on one of WORKER_CONCURRENCY executor threads and may block.
 *
 * worker_main() is the whole program: configuration, logs, ops endpoint, consumer, executor,
 * graceful shutdown. It returns the process exit code. */
#ifndef VMH_RUNTIME_H
#define VMH_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "lock.h"
#include "metrics.h"
#include "msg.h"
#include "redis.h"

/* One message of a run. Strings live as long as the run. */
struct wk_event {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const struct msg *m; /* event, source, reason, emitted_at */
};

struct wk_ctx {
    unsigned thread;            /* executor thread index, 0..WORKER_CONCURRENCY-1 */
    void *thread_ud;            /* what the handler's thread_init returned for this thread */
    struct redis_client *redis; /* this thread's Redis connection */
    unsigned attempt;           /* 0, or how often these messages were retried (WK_RETRY or
                                   Redis unreachable; not waits for a busy entity lock): for
                                   the handler's give-up policy */
    long long retry_after_ms;   /* set by the handler with WK_RETRY */
    struct wk_runtime *rt;
    unsigned long lock_id;
    const struct lock_held *held; /* the entity's lock this run holds */
};

enum wk_result { WK_DONE, WK_RETRY };

struct wk_handler {
    enum wk_result (*run)(void *ud, struct wk_ctx *ctx, const char *entity_id,
                          const struct wk_event *ev, size_t n);
    /* Optional per-thread state, made on the executor thread before its first run and freed
     * after the executor stopped. */
    void *(*thread_init)(void *ud, unsigned thread);
    void (*thread_fini)(void *ud, void *thread_ud);
    /* Optional: called once with the loaded configuration and the metrics registry, before any
     * run. */
    void (*setup)(void *ud, const struct cfg *cfg, struct metrics *reg);
    /* Optional: whether the handler can take work now (false: why says what is missing). While
     * it answers false the worker takes no messages and /readyz is 503 with that reason. Called
     * from the poll loop and the ops thread: must be cheap and thread-safe. */
    bool (*gate)(void *ud, char *why, size_t whylen);
    /* Optional: called once at exit, after the executor stopped. */
    void (*teardown)(void *ud);
    void *ud;
    const char *summary; /* --help text */
};

/* True once the entity's lock was found taken over during this run (it outlived LOCK_TTL_MS
 * without renewal): a careful handler checks this before its final write. */
bool wk_lock_lost(struct wk_ctx *ctx);

/* Whether the run still holds its entity's lock, asked of Redis (a run checks before each write,
 * SPEC §5.3): 1 held, 0 lost (taken over after it expired), -1 Redis error (do not write). */
int wk_lock_check(struct wk_ctx *ctx);

/* True once shutdown has begun: a long handler may give up early with WK_RETRY. */
bool wk_stopping(struct wk_ctx *ctx);

int worker_main(int argc, char **argv, const struct wk_handler *h);

#endif
