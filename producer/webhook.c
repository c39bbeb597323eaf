/* webhook.c: EspoCRM webhook ingress into Kafka, own-write echoes dropped (see webhook.h). */
#include "webhook.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "echo.h"
#include "log.h"
#include "msg.h"

struct webhook_route {
    struct webhook *wh;
    enum msg_event event;
    enum kafka_topic_kind topic;
};

struct webhook {
    struct webhook_opts o;
    struct webhook_route routes[3];
    unsigned pending;
    char sync_user[MSG_ID_MAX + 1]; /* "" until EspoCRM named it */
    struct metric *requests, *echoes;
};

/* A request waiting for Kafka's delivery reports. */
struct wh_req {
    struct webhook *wh;
    struct httpd_req *req;
    uv_timer_t timer;
    int outstanding; /* produced, not yet reported */
    int accepted;    /* distinct ids */
    int echoes;      /* records dropped as own-write echoes */
    bool failed, answered;
};

struct webhook *webhook_new(const struct webhook_opts *opts)
{
    struct webhook *wh = calloc(1, sizeof *wh);
    if (!wh)
        return NULL;
    wh->o = *opts;
    static const enum msg_event events[3] = {MSG_EVENT_CREATE, MSG_EVENT_UPDATE, MSG_EVENT_DELETE};
    static const enum kafka_topic_kind topics[3] = {KAFKA_TOPIC_CREATE, KAFKA_TOPIC_UPDATE,
                                                    KAFKA_TOPIC_DELETE};
    for (int i = 0; i < 3; i++)
        wh->routes[i] = (struct webhook_route){wh, events[i], topics[i]};
    wh->requests = metrics_counter(opts->reg, "vmh_webhook_requests_total",
                                   "Webhook requests answered, by HTTP status.", "code");
    wh->echoes = metrics_counter(opts->reg, "vmh_webhook_echoes_dropped_total",
                                 "Webhook update records dropped as the sync's own writes.", NULL);
    metric_add(wh->echoes, 0); /* a sample from the start */
    static const char *const codes[] = {"200", "400", "401", "404", "413", "503"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        metric_touch(wh->requests, codes[i]);
    return wh;
}

void webhook_free(struct webhook *wh)
{
    free(wh);
}

unsigned webhook_pending(const struct webhook *wh)
{
    return wh->pending;
}

int webhook_set_sync_user(struct webhook *wh, const char *user_id)
{
    if (!user_id || !*user_id || strlen(user_id) > MSG_ID_MAX)
        return -1;
    snprintf(wh->sync_user, sizeof wh->sync_user, "%s", user_id);
    return 0;
}

static void on_answered(const char *method, const char *route, int status, void *ud)
{
    (void)method;
    (void)route;
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    metric_inc(((struct webhook *)ud)->requests, code);
}

static void on_req_closed(uv_handle_t *h)
{
    struct wh_req *r = h->data;
    r->wh->pending--;
    free(r);
}

/* Answers once the outcome is known and frees the request once nothing refers to it. */
static void settle(struct wh_req *r)
{
    if (!r->answered && (r->failed || r->outstanding == 0)) {
        r->answered = true;
        if (r->failed) {
            httpd_respond_error(r->req, 503, "Kafka did not acknowledge; retry later");
        } else {
            metric_add(r->wh->echoes, r->echoes);
            httpd_respond_json(r->req, 200, json_pack("{s:i}", "accepted", r->accepted));
        }
        r->req = NULL;
    }
    if (r->answered && r->outstanding == 0 && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, on_req_closed);
}

static void on_delivered(void *opaque, rd_kafka_resp_err_t err)
{
    struct wh_req *r = opaque;
    r->outstanding--;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        r->failed = true;
    settle(r);
}

static void on_ack_timeout(uv_timer_t *t)
{
    struct wh_req *r = t->data;
    if (!r->answered) {
        log_warn("webhook: Kafka acknowledgement timed out; answering 503",
                 LOG_INT("outstanding", r->outstanding));
        r->failed = true;
    }
    settle(r);
}

/* The distinct ids of the records of a webhook body that are not own-write echoes, in order,
 * or NULL with why (400): every record is checked, echo or not (all or nothing per request).
 * *echoes counts the records dropped. The array holds borrowed strings of body. */
static json_t *records_to_send(const struct webhook *wh, enum msg_event event, json_t *body,
                               int *echoes, const char **why)
{
    *echoes = 0;
    if (!json_is_array(body)) {
        *why = "the body must be a JSON array of records";
        return NULL;
    }
    json_t *ids = json_array(), *seen = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(body, i, rec)
    {
        json_t *id = json_object_get(rec, "id");
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > MSG_ID_MAX) {
            *why = "every record needs a string \"id\" (1..64 characters)";
            json_decref(ids);
            json_decref(seen);
            return NULL;
        }
        enum echo_verdict v = echo_classify(event, rec, wh->sync_user);
        if (v != ECHO_KEEP) {
            log_debug("webhook: own-write echo dropped",
                      LOG_STR("entity_id", json_string_value(id)),
                      LOG_STR("echo", echo_verdict_name(v)));
            (*echoes)++;
            continue;
        }
        if (!json_object_get(seen, json_string_value(id))) {
            json_object_set_new(seen, json_string_value(id), json_true());
            json_array_append(ids, id);
        }
    }
    json_decref(seen);
    return ids;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Produces one message per id; counts what Kafka took. */
static void produce_all(struct wh_req *r, const struct webhook_route *route, json_t *ids)
{
    long long now = now_ms();
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        char err[256];
        const char *key = json_string_value(id);
        char *value = msg_encode(key, route->event, MSG_SOURCE_WEBHOOK, NULL, now);
        int rc = value ? kprod_produce(route->wh->o.kafka, route->topic, key, value, strlen(value),
                                       on_delivered, r, err, sizeof err)
                       : -1;
        free(value);
        if (rc != 0) {
            log_warn("webhook: message not accepted by the producer", LOG_STR("entity_id", key),
                     LOG_STR("error", value ? err : "encoding failed"));
            r->failed = true;
            return;
        }
        r->outstanding++;
    }
}

static void on_webhook(struct httpd_req *req, void *ud)
{
    const struct webhook_route *route = ud;
    struct webhook *wh = route->wh;
    size_t len = 0;
    const char *body = httpd_req_body(req, &len);
    if (wh->o.auth) {
        enum wauth_result a =
            wauth_verify(wh->o.auth, httpd_req_header(req, wauth_header_name(WAUTH_SIGNATURE)),
                         httpd_req_header(req, wauth_header_name(WAUTH_X_SIGNATURE)), body, len);
        if (a != WAUTH_OK) {
            log_warn("webhook rejected", LOG_STR("reason", wauth_result_name(a)),
                     LOG_STR("event", msg_event_name(route->event)),
                     LOG_STR("client", httpd_req_peer(req)));
            httpd_respond_error(req, 401, wauth_result_name(a));
            return;
        }
    }
    json_error_t je;
    json_t *doc = json_loadb(body ? body : "", len, 0, &je);
    const char *why = "the body is not valid JSON";
    int echoes = 0;
    json_t *ids = doc ? records_to_send(wh, route->event, doc, &echoes, &why) : NULL;
    json_decref(doc);
    if (!ids) {
        httpd_respond_error(req, 400, why);
        return;
    }
    struct wh_req *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(ids);
        httpd_respond_error(req, 503, "out of memory");
        return;
    }
    r->wh = wh;
    r->req = req;
    r->accepted = (int)json_array_size(ids);
    r->echoes = echoes;
    uv_timer_init(wh->o.loop, &r->timer);
    r->timer.data = r;
    wh->pending++;
    uv_timer_start(&r->timer, on_ack_timeout, wh->o.ack_timeout_ms, 0);
    produce_all(r, route, ids);
    json_decref(ids);
    log_debug("webhook accepted", LOG_STR("event", msg_event_name(route->event)),
              LOG_INT("records", r->accepted), LOG_INT("echoes", r->echoes));
    settle(r);
}

int webhook_routes(struct webhook *wh, struct httpd *srv)
{
    static const char *const paths[3] = {WEBHOOK_PATH_PREFIX "create", WEBHOOK_PATH_PREFIX "update",
                                         WEBHOOK_PATH_PREFIX "delete"};
    for (int i = 0; i < 3; i++)
        if (httpd_route(srv, "POST", paths[i], on_webhook, &wh->routes[i], wh->o.max_body) != 0)
            return -1;
    httpd_set_observer(srv, on_answered, wh);
    return 0;
}
