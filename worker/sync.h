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
#include "runtime.h"

#include <uv.h>

struct sync_conf {
    const char *espo_url, *espo_key;
    struct advo_conf advo;
    const char *notify_user_id; /* ESPOCRM_NOTIFY_USER_ID, may be NULL */
    char sync_user_id[80];      /* GET App/user, asked by the first run (user_mu) */
    uv_mutex_t user_mu;
    bool mark_syncing; /* SYNC_MARK_SYNCING */
    long timeout_ms;
    struct apistat st;
    struct metric *duration, *errors, *retries, *conflicts, *komm;
};

/* Fills conf from the configuration and registers the sync metrics. */
void sync_conf_init(struct sync_conf *conf, const struct cfg *cfg, struct metrics *reg);

/* The runtime's handler functions; ud is the struct sync_conf. */
enum wk_result sync_run(void *ud, struct wk_ctx *ctx, const char *entity_id,
                        const struct wk_event *ev, size_t n);
void *sync_thread_init(void *ud, unsigned thread);
void sync_thread_fini(void *ud, void *thread_ud);

#endif
