/* queued.h: the cron's in-flight mark (SPEC §3.2): vmh:queued:{id}, set by the producer's cron
 * when it sends a sync_check for the party and cleared by the worker's run of it, so the cron
 * does not send the same party again while an earlier message for it still waits in Kafka (a
 * backlog never multiplies). The key's one owner; the producer and the worker both use it. */
#ifndef VMH_QUEUED_H
#define VMH_QUEUED_H

#include <stdbool.h>
#include <stddef.h>

#include "redis.h"

/* SET NX PX ttl_ms: *marked true when this call set it (send the message), false when an earlier
 * message is still in flight. 0, or -1 with err (Redis). */
int queued_mark(struct redis_client *c, const char *id, long long ttl_ms, bool *marked, char *err,
                size_t errlen);
/* Removes the mark (the run has started: a later change needs a new message). 0 or -1. */
int queued_clear(struct redis_client *c, const char *id, char *err, size_t errlen);

#endif
