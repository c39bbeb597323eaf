/* sync.h: the sync of one entity (SPEC §5.3, §5.5, §5.6): the handler vmh-worker's runtime
 * runs with the entity's lock held. It reads EspoCRM, routes by state (deleted, new, linked),
 * decides with compare.h, writes Advoware, and finishes with one EspoCRM PUT carrying the data
 * and the status (optimistic concurrency: a 409 starts over, at most 3 times).
 *
 * Decisions live in pure modules (compare, mapper, status); this file holds the effects. */
#ifndef VMH_SYNC_H
#define VMH_SYNC_H

#include "advo.h"
#include "apistat.h"
#include "cfg.h"
#include "metrics.h"
#include "preflight.h"
#include "runtime.h"

#include <stdatomic.h>

#include <uv.h>

struct sync_conf {
    const char *espo_url, *espo_key;
    struct advo_conf advo;
    const char *notify_user_id; /* ESPOCRM_NOTIFY_USER_ID, may be NULL */
    bool mark_syncing;          /* SYNC_MARK_SYNCING */
    long timeout_ms;
    struct apistat st;
    struct metric *duration, *errors, *retries, *conflicts, *komm, *notifications;

    /* The start-up check of the EspoCRM side (preflight.h), run by its own thread until it
     * passes. pf is written once, before ready turns true, and only read after that. */
    struct preflight pf;
    const char *phone_types[PREFLIGHT_MAX_TYPES]; /* pf.types as the planner takes them */
    atomic_bool ready;
    atomic_bool can_message; /* the sync role may send direct messages (SPEC §5.5) */
    long long recheck_ms;    /* first re-check interval of a failed check (doubles up to 30 s) */
    uv_mutex_t pf_mu;        /* guards why, stop; with pf_cv */
    uv_cond_t pf_cv;
    char why[256]; /* why not ready */
    bool pf_stop, pf_started;
    uv_thread_t pf_thread;

    /* Credentials rejected (SPEC §5.3): not a party's fault. The gate stays shut until
     * cred_until (monotonic ms), then one run tries again (every CREDENTIALS_RECHECK_MS). */
    atomic_llong cred_until;
    atomic_bool cred_bad;
    atomic_bool cred_probe; /* one run is trying the credentials again */
    long long cred_recheck_ms;
    char cred_why[160]; /* under pf_mu */
};

/* Fills conf from the configuration, registers the sync metrics and starts the start-up check
 * of the EspoCRM side (SPEC §6) on its own thread. */
void sync_conf_init(struct sync_conf *conf, const struct cfg *cfg, struct metrics *reg);
/* Stops the check's thread. */
void sync_conf_fini(void *ud);
/* The runtime's gate: true once the EspoCRM side was checked and found right. */
bool sync_ready(void *ud, char *why, size_t whylen);

/* The runtime's handler functions; ud is the struct sync_conf. */
enum wk_result sync_run(void *ud, struct wk_ctx *ctx, const char *entity_id,
                        const struct wk_event *ev, size_t n);
void *sync_thread_init(void *ud, unsigned thread);
void sync_thread_fini(void *ud, void *thread_ud);

#endif
