/* cron.h: the cron scans of SPEC §3.2. The retry scan (every CRON_RETRY_INTERVAL_S) selects
 * `failed` entities whose syncNextRetry is due; the fallback scan (every CRON_INTERVAL_S) selects
 * at most CRON_BATCH entities in priority order pending_sync > dirty > failed (due) >
 * permanently_failed with syncAutoResetAt due (auto_reset) > clean not synced for 24 h
 * (stale_clean). Entities whose Redis lock is held are skipped; deleted_in_advoware is never
 * selected. Each selected entity becomes a sync_check message with its reason.
 *
 * With several producer replicas one leader per tick: SET vmh:cron:leader:<scan> <instance> NX
 * PX <0.9 interval> (one key per scan, since the two scans tick at different intervals).
 *
 * cron_where() and cron_page_size() are pure. cron_scan() does the I/O and is blocking: the
 * scheduler runs it on the libuv thread pool, one tick at a time, so its clients are never used
 * concurrently. */
#ifndef VMH_CRON_H
#define VMH_CRON_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>
#include <uv.h>

#include "espo.h"
#include "kprod.h"
#include "metrics.h"
#include "redis.h"

enum cron_reason {
    CRON_PENDING_SYNC,
    CRON_DIRTY,
    CRON_FAILED,
    CRON_AUTO_RESET,
    CRON_STALE_CLEAN,
    CRON_REASONS
};
enum cron_scan_kind { CRON_SCAN_RETRY, CRON_SCAN_FALLBACK };

const char *cron_reason_name(enum cron_reason r); /* "pending_sync", ... */

/* EspoCRM where[] conditions selecting one reason's entities at `now` (a new reference). The
 * types are EspoCRM's spelling: lessThanOrEquals (lessThanOrEqual is a 400). */
json_t *cron_where(enum cron_reason r, time_t now);

/* maxSize of the next list call when `left` entities are still wanted: at least 50 (locked
 * entities are skipped), never above 200 (EspoCRM answers 403): a scan wanting more pages on
 * with offset. */
int cron_page_size(int left);

struct cron_deps {
    struct espo *espo;
    struct redis_client *redis;
    struct kprod *kafka;
    struct metrics *reg;     /* may be NULL */
    const char *instance;    /* leader value */
    long long queued_ttl_ms; /* the in-flight marks' lifetime (two fallback intervals); 0: none
                                (vmhctl scan: an operator's scan sends anyway) */
};

struct cron_result {
    int selected[CRON_REASONS];
    int skipped_locked;
    int skipped_queued; /* an earlier message for the party is still in flight (§3.2) */
    bool leader;        /* false: another replica has this tick */
    bool redis_down;    /* the leader key could not be taken: Redis did not answer; tick skipped */
};

/* One scan: leader check (unless !use_leader), queries, lock checks, messages. batch caps the
 * fallback scan (and the retry scan). 0, or -1 with err when EspoCRM or Redis failed (what was
 * selected before the failure is still sent). */
int cron_scan(const struct cron_deps *d, enum cron_scan_kind kind, int batch, long long interval_ms,
              bool use_leader, time_t now, struct cron_result *res, char *err, size_t errlen);

/* The scheduler: both scans on libuv timers, each tick on the thread pool. */
struct cron;
struct cron *cron_start(uv_loop_t *loop, const struct cron_deps *deps, long long retry_ms,
                        long long fallback_ms, int batch);
/* Stops the timers (no new tick starts); a running tick goes on. */
void cron_pause(struct cron *c);
/* True when no tick is running. */
bool cron_idle(const struct cron *c);
/* Closes the timers; call when cron_idle(). Freed once the loop has closed its handles. */
void cron_stop(struct cron *c);

#endif
