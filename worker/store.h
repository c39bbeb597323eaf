/* store.h: the one owner of the sync's per-party Redis keys (SPEC §5.3, §5.4, §5.5); nothing
 * else spells them:
 *   vmh:link:{id}            the link {betnr,name,assignedUserId[,deleted]}, written right after
 *                            a create and after every successful run;
 *   vmh:creating:{id}        the create mark, written before an Advoware POST and kept 7 days,
 *                            so a POST whose outcome is unknown is never repeated automatically;
 *   vmh:notified:{id}:{md5}  a notification text sent to the party's user (30 days: once);
 *   vmh:espo_pending:{id}    EspoCRM changes a failed run could not push;
 *   vmh:ahead:{id}           the write-ahead baseline (merge.h) of a run that writes to
 *                            Advoware, with the EspoCRM baseline it started from (30 days).
 * Also the two resolutions of an uncertain create that an operator chooses (vmhctl link /
 * vmhctl create). The entity lock sync_lock:cbeteiligte:{id} is lock.h's.
 *
 * Every function answers -1 with err on a Redis error: a Redis error is never an absent key.
 * Nothing returned needs freeing except the link (json_decref). */
#ifndef VMH_STORE_H
#define VMH_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "redis.h"

#define STORE_CREATING_TTL_S (7LL * 24 * 3600)
#define STORE_NOTICE_TTL_S   (30LL * 24 * 3600) /* a notification text once per party */

/* The link of id: 0 with *out (new reference) or *out NULL when there is none (or it is not
 * readable JSON); -1 on error. */
int store_link_get(struct redis_client *c, const char *id, json_t **out, char *err, size_t errlen);
/* Writes the link. name and user may be NULL. posted (NULL: none): the 8 fields a create just
 * POSTed, the baseline of the party's next run while EspoCRM has none (its final PUT may fail:
 * SPEC §5.2 "B is what was posted"); kept as "posted". 0 or -1. */
int store_link_set(struct redis_client *c, const char *id, long long betnr, const char *name,
                   const char *user, bool deleted, const json_t *posted, char *err, size_t errlen);

/* The create mark: 1 with since (the POST's time, "YYYY-MM-DD HH:MM:SS" UTC) when it stands, 0
 * when there is none, -1 on error. */
int store_creating(struct redis_client *c, const char *id, char *since, size_t sincelen, char *err,
                   size_t errlen);
/* The same, the whole mark: 1 with *out {"since", "name"?, "assignedUserId"?} (new reference;
 * the party's name and user, so that a deletion of the party can still tell its user), 0 when
 * there is none, -1 on error. A mark of an earlier version (the time as plain text) has since
 * only. */
int store_creating_get(struct redis_client *c, const char *id, json_t **out, char *err,
                       size_t errlen);
/* Sets the mark before a POST (since: its time; name and user of the party, either may be
 * NULL). 0 or -1 (then do not POST). */
int store_mark_creating(struct redis_client *c, const char *id, const char *since, const char *name,
                        const char *user, char *err, size_t errlen);
/* Removes the mark: the POST certainly failed, or its record is linked. 0 or -1. */
int store_clear_creating(struct redis_client *c, const char *id, char *err, size_t errlen);

/* Claims the notification `text` for party id (SET NX, STORE_NOTICE_TTL_S): 1 claimed (send it
 * now), 0 sent already within the TTL, -1 on error. */
int store_notice_claim(struct redis_client *c, const char *id, const char *text, char *err,
                       size_t errlen);
/* Gives a claim back (DEL) after the notification could not be sent. 0 or -1. */
int store_notice_release(struct redis_client *c, const char *id, const char *text, char *err,
                         size_t errlen);

/* The EspoCRM-pending mark: 1 set, 0 not, -1 on error. */
int store_pending_get(struct redis_client *c, const char *id, char *err, size_t errlen);
/* Sets (no expiry) or clears the mark. 0 or -1. */
int store_pending_set(struct redis_client *c, const char *id, bool on, char *err, size_t errlen);

#define STORE_AHEAD_TTL_S (30LL * 24 * 3600)

/* The write-ahead baseline of id when it was made from the EspoCRM baseline based_on (an MD5
 * of advowareSyncBaseline's text): 0 with *out (new reference) or NULL (none, or stale: a final
 * PUT happened since); -1 on error. */
int store_ahead_get(struct redis_client *c, const char *id, const char *based_on, json_t **out,
                    char *err, size_t errlen);
/* Stores it before the run's first Advoware write. 0 or -1 (then write nothing). */
int store_ahead_set(struct redis_client *c, const char *id, const char *based_on,
                    const json_t *baseline, char *err, size_t errlen);
/* Removes it (after the final PUT carried the real baseline). 0 or -1. */
int store_ahead_clear(struct redis_client *c, const char *id, char *err, size_t errlen);

/* vmhctl link <id> <betNr>: a person found the record the uncertain POST created; the party is
 * linked to it and the mark removed. The next run finishes the link (betnr into EspoCRM). */
int store_resolve_link(struct redis_client *c, const char *id, long long betnr, char *err,
                       size_t errlen);
/* vmhctl create <id>: a person found no record; the mark is removed, the next run may POST
 * once. */
int store_resolve_create(struct redis_client *c, const char *id, char *err, size_t errlen);

#endif
