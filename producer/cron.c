/* cron.c: the cron scans and their scheduler (see cron.h). */
#include "cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lock.h"
#include "log.h"
#include "msg.h"
#include "queued.h"
#include "syncfields.h"
#include "synctime.h"
#include "util.h"

/* EspoCRM answers maxSize above 200 (its recordListMaxSizeLimit) with 403 (recorded,
 * contracts/espocrm-9.1.5/05_list.json): a scan needing more pages them with offset. */
#define CRON_PAGE_MAX  200
#define CRON_PAGE_MIN  50 /* rows asked at least, so locked ones do not cost a page each */
#define CRON_MAX_PAGES 50
#define STALE_AFTER_S  (24 * 3600)

static const char *const reason_names[CRON_REASONS] = {MSG_REASON_PENDING_SYNC, MSG_REASON_DIRTY,
                                                       MSG_REASON_FAILED, MSG_REASON_AUTO_RESET,
                                                       MSG_REASON_STALE_CLEAN};

const char *cron_reason_name(enum cron_reason r)
{
    return (unsigned)r < CRON_REASONS ? reason_names[r] : "?";
}

static json_t *cond(const char *type, const char *attr, const char *value)
{
    json_t *c = json_pack("{s:s,s:s}", "type", type, "attribute", attr);
    if (value)
        json_object_set_new(c, "value", json_string(value));
    return c;
}

static json_t *status_is(const char *status)
{
    return cond("equals", SF_SYNC_STATUS, status);
}

static json_t *either(json_t *a, json_t *b)
{
    return json_pack("{s:s,s:[o,o]}", "type", "or", "value", a, b);
}

json_t *cron_where(enum cron_reason r, time_t now)
{
    char ts[ST_DATETIME_LEN], stale[ST_DATETIME_LEN];
    st_format_espo((long long)now, ts, sizeof ts);
    st_format_espo((long long)now - STALE_AFTER_S, stale, sizeof stale);
    switch (r) {
    case CRON_PENDING_SYNC:
        return json_pack("[o]", status_is(SF_STATUS_PENDING_SYNC));
    case CRON_DIRTY:
        return json_pack("[o]", status_is(SF_STATUS_DIRTY));
    case CRON_FAILED:
        return json_pack("[o,o]", status_is(SF_STATUS_FAILED),
                         either(cond("isNull", SF_SYNC_NEXT_RETRY, NULL),
                                cond("lessThanOrEquals", SF_SYNC_NEXT_RETRY, ts)));
    case CRON_AUTO_RESET:
        return json_pack("[o,o]", status_is(SF_STATUS_PERMANENTLY_FAILED),
                         cond("lessThanOrEquals", SF_SYNC_AUTO_RESET_AT, ts));
    case CRON_STALE_CLEAN:
        return json_pack("[o,o]", status_is(SF_STATUS_CLEAN),
                         either(cond("isNull", SF_ADVOWARE_LAST_SYNC, NULL),
                                cond("lessThan", SF_ADVOWARE_LAST_SYNC, stale)));
    default:
        return NULL;
    }
}

/* SET key instance NX PX ttl: true when this replica has the tick. */
static int take_tick(const struct cron_deps *d, enum cron_scan_kind kind, long long interval_ms,
                     bool *leader, char *err, size_t errlen)
{
    char key[64];
    snprintf(key, sizeof key, "vmh:cron:leader:%s", kind == CRON_SCAN_RETRY ? "retry" : "scan");
    long long ttl = interval_ms * 9 / 10;
    return redis_set_nx_px(d->redis, key, d->instance, ttl > 0 ? ttl : 1, leader, err, errlen);
}

/* 1 if the entity's sync lock (lock.h) is held, 0 if not, -1 on a Redis error. */
static int lock_held(const struct cron_deps *d, const char *id, char *err, size_t errlen)
{
    char key[LOCK_KEY_MAX];
    if (lock_key(id, key, sizeof key) != 0) {
        util_err(err, errlen, "entity id %.64s: no lock key (empty or too long)", id);
        return -1;
    }
    int held = redis_exists(d->redis, key, err, errlen);
    return held < 0 ? -1 : held;
}

/* Sends a sync_check for id. */
static int select_entity(const struct cron_deps *d, const char *id, enum cron_reason r, char *err,
                         size_t errlen)
{
    char *value = msg_encode(id, MSG_EVENT_SYNC_CHECK, MSG_SOURCE_CRON, cron_reason_name(r),
                             (long long)time(NULL) * 1000);
    if (!value) {
        util_err(err, errlen, "entity id %.64s cannot be encoded", id);
        return -1;
    }
    int rc = kprod_produce(d->kafka, KAFKA_TOPIC_SYNC_CHECK, id, value, strlen(value), NULL, NULL,
                           err, errlen);
    free(value);
    return rc;
}

int cron_page_size(int left)
{
    return left > CRON_PAGE_MAX ? CRON_PAGE_MAX : left < CRON_PAGE_MIN ? CRON_PAGE_MIN : left;
}

/* Selects up to *left entities of one reason, page by page. */
static int scan_reason(const struct cron_deps *d, enum cron_reason r, time_t now, int *left,
                       struct cron_result *res, char *err, size_t errlen)
{
    json_t *where = cron_where(r, now);
    int rc = 0;
    for (int page = 0, offset = 0; *left > 0 && page < CRON_MAX_PAGES; page++) {
        int size = cron_page_size(*left);
        struct espo_query q = {.where = where,
                               .select = "id," SF_SYNC_STATUS,
                               .order_by = "modifiedAt",
                               .order = "asc",
                               .max_size = size,
                               .offset = offset};
        long status = 0;
        json_t *out = NULL;
        if (espo_list(d->espo, &q, &status, &out, err, errlen) != 0 || status != 200) {
            if (status != 0) {
                char reason[160];
                snprintf(reason, sizeof reason, "%s", errlen > 0 ? err : "");
                util_err(err, errlen, "EspoCRM list (%s) answered %ld%s%s", cron_reason_name(r),
                         status, reason[0] ? ": " : "", reason);
            }
            json_decref(out);
            rc = -1;
            break;
        }
        json_t *list = json_object_get(out, "list");
        size_t i, n = json_array_size(list);
        json_t *e;
        json_array_foreach(list, i, e)
        {
            const char *id = json_string_value(json_object_get(e, "id"));
            if (!id || *left == 0)
                continue;
            int held = lock_held(d, id, err, errlen);
            if (held < 0) {
                rc = -1;
                break;
            }
            if (held) {
                res->skipped_locked++;
                continue;
            }
            /* SPEC §3.2: not again while an earlier message for it is in flight */
            bool marked = true;
            if (d->queued_ttl_ms > 0 &&
                queued_mark(d->redis, id, d->queued_ttl_ms, &marked, err, errlen) != 0) {
                rc = -1;
                break;
            }
            if (!marked) {
                res->skipped_queued++;
                continue;
            }
            if (select_entity(d, id, r, err, errlen) != 0) {
                char cerr[128]; /* not sent: the mark must not hold it back */
                if (d->queued_ttl_ms > 0)
                    queued_clear(d->redis, id, cerr, sizeof cerr);
                rc = -1;
                break;
            }
            res->selected[r]++;
            (*left)--;
        }
        json_decref(out);
        if (rc != 0 || n < (size_t)size)
            break;
        offset += (int)n;
    }
    json_decref(where);
    return rc;
}

int cron_scan(const struct cron_deps *d, enum cron_scan_kind kind, int batch, long long interval_ms,
              bool use_leader, time_t now, struct cron_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    res->leader = true;
    if (use_leader && take_tick(d, kind, interval_ms, &res->leader, err, errlen) != 0) {
        res->redis_down = true;
        return -1;
    }
    if (!res->leader)
        return 0;
    int left = batch;
    if (kind == CRON_SCAN_RETRY)
        return scan_reason(d, CRON_FAILED, now, &left, res, err, errlen);
    for (int r = 0; r < CRON_REASONS && left > 0; r++)
        if (scan_reason(d, (enum cron_reason)r, now, &left, res, err, errlen) != 0)
            return -1;
    return 0;
}

/* ---- scheduler ---------------------------------------------------------------------------- */

struct cron_tick {
    struct cron *cron;
    enum cron_scan_kind kind;
    long long interval_ms;
    uv_timer_t timer;
    uv_work_t work;
    bool running;
    bool pending; /* its timer fired while the other scan ran: runs after it */
    int rc;
    char err[256];
    struct cron_result res;
};

struct cron {
    struct cron_deps deps;
    int batch;
    struct cron_tick ticks[2];
    int handles;
    struct metric *selected, *tick_total;
    bool redis_down; /* ticks are being skipped: said once */
};

static void on_work(uv_work_t *w)
{
    struct cron_tick *t = w->data;
    t->err[0] = '\0';
    t->rc = cron_scan(&t->cron->deps, t->kind, t->cron->batch, t->interval_ms, true, time(NULL),
                      &t->res, t->err, sizeof t->err);
}

static void after_work(uv_work_t *w, int status);

/* The two scans share one EspoCRM client and one Redis connection (neither is thread-safe):
 * they run one at a time; a tick due while the other scan runs follows it. */
static void start_tick(struct cron_tick *t)
{
    struct cron_tick *other = &t->cron->ticks[t == &t->cron->ticks[0] ? 1 : 0];
    if (other->running) {
        t->pending = true;
        return;
    }
    t->pending = false;
    t->running = true;
    t->work.data = t;
    if (uv_queue_work(t->timer.loop, &t->work, on_work, after_work) != 0)
        t->running = false;
}

static void after_work(uv_work_t *w, int status)
{
    struct cron_tick *t = w->data;
    struct cron *c = t->cron;
    const char *scan = t->kind == CRON_SCAN_RETRY ? "retry" : "fallback";
    t->running = false;
    struct cron_tick *other = &c->ticks[t == &c->ticks[0] ? 1 : 0];
    if (other->pending && status == 0)
        start_tick(other);
    if (status != 0)
        return;
    int total = 0;
    for (int r = 0; r < CRON_REASONS; r++) {
        metric_add(c->selected, t->res.selected[r], cron_reason_name((enum cron_reason)r));
        total += t->res.selected[r];
    }
    metric_inc(c->tick_total, scan,
               t->res.redis_down ? "redis_down"
               : t->rc != 0      ? "failed"
               : t->res.leader   ? "ok"
                                 : "not_leader");
    if (t->res.redis_down) { /* no leader without Redis: skipped, said once per outage */
        if (!c->redis_down)
            log_warn("Redis unreachable: cron ticks are skipped until it answers (webhooks are "
                     "not affected)",
                     LOG_STR("error", t->err));
        c->redis_down = true;
        return;
    }
    if (c->redis_down)
        log_info("Redis reachable again: cron ticks resume");
    c->redis_down = false;
    if (t->rc != 0)
        log_error("cron scan failed; the next tick tries again", LOG_STR("scan", scan),
                  LOG_STR("error", t->err), LOG_INT("selected", total));
    else if (t->res.leader)
        log_info("cron scan done", LOG_STR("scan", scan), LOG_INT("selected", total),
                 LOG_INT("skipped_locked", t->res.skipped_locked),
                 LOG_INT("skipped_queued", t->res.skipped_queued));
}

static void on_timer(uv_timer_t *timer)
{
    struct cron_tick *t = timer->data;
    if (t->running || t->pending)
        return; /* the previous tick is still going or waiting: skip this one */
    start_tick(t);
}

struct cron *cron_start(uv_loop_t *loop, const struct cron_deps *deps, long long retry_ms,
                        long long fallback_ms, int batch)
{
    struct cron *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->deps = *deps;
    c->batch = batch;
    c->selected = metrics_counter(deps->reg, "vmh_cron_selected_total",
                                  "Entities a cron scan sent to sync_check, by reason.", "reason");
    c->tick_total = metrics_counter(deps->reg, "vmh_cron_ticks_total",
                                    "Cron ticks by scan and result.", "scan,result");
    for (int r = 0; r < CRON_REASONS; r++) /* samples from the start (SPEC §10) */
        metric_touch(c->selected, cron_reason_name((enum cron_reason)r));
    static const char *const scans[] = {"retry", "fallback"}, *const results[] = {"ok", "failed",
                                                                                  "not_leader",
                                                                                  "redis_down"};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 4; j++)
            metric_touch(c->tick_total, scans[i], results[j]);
    const long long interval[2] = {retry_ms, fallback_ms};
    for (int i = 0; i < 2; i++) {
        struct cron_tick *t = &c->ticks[i];
        t->cron = c;
        t->kind = i == 0 ? CRON_SCAN_RETRY : CRON_SCAN_FALLBACK;
        t->interval_ms = interval[i];
        uv_timer_init(loop, &t->timer);
        t->timer.data = t;
        uv_timer_start(&t->timer, on_timer, (uint64_t)interval[i], (uint64_t)interval[i]);
        c->handles++;
    }
    return c;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct cron_tick *t = h->data;
    struct cron *c = t->cron;
    if (--c->handles == 0)
        free(c);
}

void cron_pause(struct cron *c)
{
    for (int i = 0; c && i < 2; i++) {
        uv_timer_stop(&c->ticks[i].timer);
        c->ticks[i].pending = false;
    }
}

bool cron_idle(const struct cron *c)
{
    return !c || (!c->ticks[0].running && !c->ticks[1].running);
}

void cron_stop(struct cron *c)
{
    if (!c)
        return;
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&c->ticks[i].timer, on_timer_closed);
}
