/* syncuser.h: the sync user's EspoCRM id for echo dropping (SPEC §3.1): asks
 * GET /api/v1/App/user at start, on the libuv thread pool with its own EspoCRM client, and
 * again with backoff (1 s doubling to 30 s) until EspoCRM answers with an id; nothing waits for
 * it meanwhile (webhooks are taken in as usual). The callback runs once, on the loop thread.
 *
 * The syncuser owns its client and timer; syncuser_stop() ends it and frees it once the loop
 * has closed its timer and any lookup in flight has returned (run the loop to its end). */
#ifndef VMH_SYNCUSER_H
#define VMH_SYNCUSER_H

#include <uv.h>

#include "apistat.h"

/* user_id lives only during the call. */
typedef void (*syncuser_fn)(const char *user_id, void *ud);

struct syncuser;

/* Starts the first lookup at once. st may be NULL. NULL on out of memory (fn never runs). */
struct syncuser *syncuser_start(uv_loop_t *loop, const char *espo_url, const char *api_key,
                                long timeout_ms, const struct apistat *st, syncuser_fn fn,
                                void *ud);
/* No further lookups; fn will not run. NULL is ignored. */
void syncuser_stop(struct syncuser *s);

#endif
