/* locked_run.c: one run of vmh-worker's runtime under the entity's Redis lock (SPEC §4.2, §4.4):
 * the executor's run/done/drop callbacks, the lock's acquire, renewal and release around the
 * handler, a busy lock (the messages wait in the executor and try again, never dropped), the
 * handler's gate, and the lock queries of runtime.h (wk_lock_lost, wk_lock_check, wk_stopping).
 * The messages belong to the executor; done and drop free them. */
#include "runtime_int.h"

#include "lock.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdlib.h>

#define REDIS_RETRY_MS     1000 /* a run that found Redis down tries again after this */
#define LOCK_BUSY_FIRST_MS 50   /* a run that found its entity lock busy tries again after this */

/* Whether the handler keeps the worker from taking work (its set-up is not right yet). */
bool locked_run__gated(struct wk_runtime *rt, char *why, size_t whylen)
{
    char none[1];
    return rt->h->gate && !rt->h->gate(rt->h->ud, why ? why : none, why ? whylen : sizeof none);
}

/* ---- executor callbacks ----------------------------------------------------------------- */

void locked_run__done(void *ud, struct ex_msg *m)
{
    struct wk_runtime *rt = ud;
    consumer__part_done(rt, m->part, m->offset);
    free(m);
}

void locked_run__drop(void *ud, struct ex_msg *m)
{
    consumer__part_unref(ud, m->part);
    free(m);
}

/* Whether a run still matters here: false once every message's partition is being revoked
 * (the new owner repeats them). Only messages requeued (a retry, a busy lock) can get here after
 * their partition's queued messages were dropped. */
static bool run_wanted(struct wk_runtime *rt, struct ex_msg *const *msgs, size_t n)
{
    bool wanted = false;
    uv_mutex_lock(&rt->mu);
    for (size_t i = 0; i < n && !wanted; i++)
        wanted = !msgs[i]->part->draining;
    uv_mutex_unlock(&rt->mu);
    return wanted;
}

/* How long messages that met a busy entity lock wait in the executor before they try again:
 * LOCK_BUSY_FIRST_MS doubling with each wait, at most LOCK_WAIT_MS (but never less than the
 * first step, so LOCK_WAIT_MS=0 cannot make a busy loop). `waits`: the most any of the messages
 * waited so far. */
static long long lock_busy_delay(const struct wk_runtime *rt, struct ex_msg *const *msgs, size_t n)
{
    unsigned waits = 0;
    for (size_t i = 0; i < n; i++)
        waits = msgs[i]->waits > waits ? msgs[i]->waits : waits;
    long long cap = rt->lock_wait_ms > LOCK_BUSY_FIRST_MS ? rt->lock_wait_ms : LOCK_BUSY_FIRST_MS;
    long long delay = LOCK_BUSY_FIRST_MS;
    for (unsigned i = 0; i < waits && delay < cap; i++)
        delay *= 2;
    return delay < cap ? delay : cap;
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
enum ex_result locked_run__run(void *ud, unsigned thread, const char *key,
                               struct ex_msg *const *msgs, size_t n, long long *retry_after_ms)
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
    long long t0 = util_monotonic_ms();
    /* One attempt: a busy lock is waited for in the executor (EX_WAIT), not on this thread. */
    switch (lock_acquire(rc, key, rt->lock_ttl_ms, 0, NULL, NULL, &held, err, sizeof err)) {
    case LOCK_ACQUIRED:
        break;
    case LOCK_BUSY:
        /* Held by another run (or left by a dead one, expiring within LOCK_TTL_MS). The messages
         * are never completed unsynced (issue 13: for a clean entity nothing would bring the
         * work back): they wait in the executor and try again. They stay in flight meanwhile,
         * so their partition's stored offset does not pass them; a revoke or shutdown drops
         * them like any queued message. */
        *retry_after_ms = lock_busy_delay(rt, msgs, n);
        metric_inc(rt->m.lock_busy);
        metric_inc(rt->m.runs, "lock_busy");
        log_write(msgs[0]->waits == 0 ? LOG_INFO : LOG_DEBUG, "entity lock busy; will retry",
                  LOG_STR("entity_id", key), LOG_INT("messages", n),
                  LOG_INT("retry_ms", *retry_after_ms), LOG_END);
        return EX_WAIT;
    case LOCK_CANCELLED: /* not without a cancel probe */
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
