/* espo.h: the EspoCRM REST client (SPEC §7.1): X-Api-Key auth, CBeteiligte get/put/post, the list
 * query with where[] conditions, notifications, and App/user. Blocking, on httpc: one client per
 * thread. Every call is counted (apistat, system "espocrm").
 *
 * Contract of every call: returns 0 when EspoCRM answered (whatever the status, in *status), -1
 * on a transport error (status 0) with err set. For an answer >= 400, err holds EspoCRM's reason
 * (its X-Status-Reason header, e.g. "Field validation failure; entityType: CBeteiligte, field:
 * phoneNumber, type: valid.") or "" when it gave none. A JSON answer comes back in *out (a new
 * reference, caller json_decref()s; NULL when the body was not JSON or out is NULL). */
#ifndef VMH_ESPO_H
#define VMH_ESPO_H

#include <jansson.h>
#include <stddef.h>

#include "apistat.h"

struct espo;

/* base_url: "https://crm.example.com" (no trailing /api/v1). Copies its arguments. NULL on out
 * of memory. st may be NULL (no metrics). */
struct espo *espo_new(const char *base_url, const char *api_key, long timeout_ms,
                      const struct apistat *st);
void espo_free(struct espo *c);
/* API calls this client made so far. */
unsigned long espo_calls(const struct espo *c);

/* GET /api/v1/App/user → the user id into buf. 0 on 200 with an id; -1 with err otherwise. */
int espo_current_user(struct espo *c, char *buf, size_t buflen, char *err, size_t errlen);

int espo_get(struct espo *c, const char *id, long *status, json_t **out, char *err, size_t errlen);
/* PUT attrs; version >= 0 sends X-Version-Number (optimistic concurrency, 409 on conflict). */
int espo_put(struct espo *c, const char *id, const json_t *attrs, long long version, long *status,
             json_t **out, char *err, size_t errlen);
int espo_post(struct espo *c, const json_t *attrs, long *status, json_t **out, char *err,
              size_t errlen);

/* A list query. where: a JSON array of conditions {"type","attribute","value"} (value may be an
 * array, or for "or" an array of conditions), flattened into EspoCRM's where[i][...] parameters.
 * select: "id,syncStatus" or NULL. order_by may be NULL. */
struct espo_query {
    const json_t *where;
    const char *select;
    const char *order_by;
    const char *order; /* "asc" | "desc" | NULL */
    int max_size;      /* <= 0: EspoCRM's default */
    int offset;
};
int espo_list(struct espo *c, const struct espo_query *q, long *status, json_t **out, char *err,
              size_t errlen);

/* A direct message to user_id (SPEC §5.5, recorded 11_direct_message): POST /api/v1/Note
 * {"type":"Post","targetType":"users","usersIds":[user_id],"post":message}, which EspoCRM turns
 * into a notification. POST /Notification is 403 for API users (recorded 06). Needs the sync
 * role's Message permission; without it: 403 "Not permitted to post to anybody except self.". */
int espo_notify(struct espo *c, const char *user_id, const char *message, long *status, char *err,
                size_t errlen);

/* GET /api/v1/App/user: the whole answer ({"user":{"id",…},"acl":{"messagePermission",…},…}). */
int espo_app_user(struct espo *c, long *status, json_t **out, char *err, size_t errlen);

/* GET /api/v1/Metadata?key=<key> (e.g. "entityDefs.CBeteiligte", recorded 12_metadata): the
 * value, or JSON null for an unknown key (200 either way). */
int espo_metadata(struct espo *c, const char *key, long *status, json_t **out, char *err,
                  size_t errlen);

/* Webhooks of the API user (SPEC §7.1, recorded 07_webhooks): GET /api/v1/Webhook?maxSize&offset
 * → {"total","list":[{"id","event","url","isActive","secretKey",…}]} (max_size <= 0: EspoCRM's
 * default); POST /api/v1/Webhook {"event","url","skipOwn":true} → 201 with "id" and "secretKey";
 * PUT /api/v1/Webhook/{id} attrs (e.g. {"isActive":true}) → 200 with the webhook. */
int espo_webhook_list(struct espo *c, int max_size, int offset, long *status, json_t **out,
                      char *err, size_t errlen);
int espo_webhook_register(struct espo *c, const char *event, const char *url, long *status,
                          json_t **out, char *err, size_t errlen);
int espo_webhook_update(struct espo *c, const char *id, const json_t *attrs, long *status,
                        json_t **out, char *err, size_t errlen);

/* Builds the query string (without '?') of q: percent-encoded, PHP bracket style. A new string
 * the caller frees; NULL on out of memory. Pure: exposed for tests. */
char *espo_query_string(const struct espo_query *q);

#endif
