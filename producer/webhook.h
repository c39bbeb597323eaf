/* webhook.h: EspoCRM webhook ingress (SPEC §3.1): POST /webhook/beteiligte/create|update|delete
 * → signature check (Signature, else X-Signature) → own-write echoes dropped (echo.h; counted in
 * vmh_webhook_echoes_dropped_total) → one Kafka message per distinct entity id of the records
 * left → 200 {"accepted":n} only after Kafka acknowledged every message of the request (n = 0
 * when every record was an echo); 503 when it does not within the ack timeout (EspoCRM
 * retries), 400/401 as the table of §3.1 says. Never 410, 502 or 504.
 *
 * Runs on the loop thread of its httpd server. The webhook keeps the pointers it is given; free
 * it only when webhook_pending() is 0. */
#ifndef VMH_WEBHOOK_H
#define VMH_WEBHOOK_H

#include <stddef.h>
#include <uv.h>

#include "httpd.h"
#include "kprod.h"
#include "metrics.h"
#include "wauth.h"

/* The webhook paths: WEBHOOK_PATH_PREFIX "create" | "update" | "delete" (msg_event_name). vmhctl
 * registers EspoCRM's webhooks at <WEBHOOK_PUBLIC_URL> WEBHOOK_PATH_PREFIX <event>. */
#define WEBHOOK_PATH_PREFIX "/webhook/beteiligte/"

struct webhook_opts {
    uv_loop_t *loop;
    struct kprod *kafka;
    const struct wauth *auth; /* NULL = unsigned webhooks accepted (WEBHOOK_ALLOW_UNSIGNED) */
    unsigned ack_timeout_ms;
    size_t max_body;
    struct metrics *reg; /* may be NULL */
};

struct webhook;

struct webhook *webhook_new(const struct webhook_opts *opts);
/* Registers the three routes on srv and counts every answer of srv in
 * vmh_webhook_requests_total{code}. 0, or -1 on out of memory. */
int webhook_routes(struct webhook *wh, struct httpd *srv);
/* The sync user's EspoCRM id (GET /api/v1/App/user), once known: from then on update records
 * whose modifiedById is that user are dropped as echoes. Call on the loop thread. Copies it;
 * 0, or -1 (ignored) for an empty id or one over 64 characters. */
int webhook_set_sync_user(struct webhook *wh, const char *user_id);
/* Requests still waiting for Kafka or for their timers. */
unsigned webhook_pending(const struct webhook *wh);
void webhook_free(struct webhook *wh);

#endif
