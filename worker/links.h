/* links.h: what the sync keeps in Redis about a party's Advoware record (SPEC §5.3), the one
 * owner of those keys: the link vmh:link:{id} ({betnr,name,assignedUserId[,deleted]}, written
 * right after a create and after every successful run) and the create mark vmh:creating:{id}
 * (written before an Advoware POST, kept 7 days, so a POST whose outcome is unknown is never
 * repeated automatically). Also the two resolutions of an uncertain create that an operator
 * chooses (vmhctl link / vmhctl create).
 *
 * Every function answers -1 with err on a Redis error: a Redis error is never an absent key. */
#ifndef VMH_LINKS_H
#define VMH_LINKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "redis.h"

#define LINKS_CREATING_TTL_S (7LL * 24 * 3600)

/* The link of id: 0 with *out (new reference) or *out NULL when there is none; -1 on error. */
int links_get(struct redis_client *c, const char *id, json_t **out, char *err, size_t errlen);
/* Writes the link. name and user may be NULL. 0 or -1. */
int links_set(struct redis_client *c, const char *id, long long betnr, const char *name,
              const char *user, bool deleted, char *err, size_t errlen);

/* The create mark: 1 with since (the POST's time, "YYYY-MM-DD HH:MM:SS" UTC) when it stands, 0
 * when there is none, -1 on error. */
int links_creating(struct redis_client *c, const char *id, char *since, size_t sincelen, char *err,
                   size_t errlen);
/* Sets the mark before a POST (since: its time). 0 or -1 (then do not POST). */
int links_mark_creating(struct redis_client *c, const char *id, const char *since, char *err,
                        size_t errlen);
/* Removes the mark: the POST certainly failed, or its record is linked. 0 or -1. */
int links_clear_creating(struct redis_client *c, const char *id, char *err, size_t errlen);

/* vmhctl link <id> <betNr>: a person found the record the uncertain POST created; the party is
 * linked to it and the mark removed. The next run finishes the link (betnr into EspoCRM). */
int links_resolve_link(struct redis_client *c, const char *id, long long betnr, char *err,
                       size_t errlen);
/* vmhctl create <id>: a person found no record; the mark is removed, the next run may POST
 * once. */
int links_resolve_create(struct redis_client *c, const char *id, char *err, size_t errlen);

#endif
