/* espocrm_webhooks.c: EspoCRM 9.1.5's webhooks (SPEC §3.1, §7.1, §8.1; recordings 07 and 07c of
 * tests/contract/espocrm-9.1.5): registration through the API, the event queue a save feeds, and
 * the ProcessWebhookQueue job on its own thread that posts signed batches with EspoCRM's retry
 * rules; the /_sim/webhooks routes watch and drive it. Locking is described at struct esim.
 *
 * What EspoCRM does, as recorded (07, 07c): registration 201 by the API user (403 for a regular
 * user or another entity; any URL); events create, update, delete, fieldUpdate.<field>, queued on
 * save only while an active webhook listens; skipOwn ignored before 9.2. The job turns at most 20
 * events per run into items for the webhooks active then, and posts each webhook's due items
 * (≤ 50) as one JSON array signed with Signature = base64(id ":" hex HMAC-SHA256) and
 * X-Signature = base64(id ":" raw HMAC-SHA256). Answers: 2xx/3xx delivered; 0, 401, 403, 404,
 * 405, 408, 500, 503 retried after --webhook-retry-ms (4 attempts); 410 deletes the webhook; else
 * dropped.
 *
 * Not recorded, assumed: a retried item gives up after 4 attempts; a POST carries at most 50
 * items. */
#include "espocrm_sim.h"
#include "httpc.h"
#include "log.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POST_MAX_ITEMS 50 /* webhookBatchSize: items per POST */
#define MAX_ATTEMPTS   4  /* SPEC §7.1: 4 attempts, then Failed */

/* A webhook queue item: one record for one webhook (delivery thread side, under mu). */
struct item {
    char *data;
    int attempts;
    long long process_at; /* monotonic ms */
    struct item *next;
};

/* An event of a save, waiting for the job to turn it into items. */
struct event {
    char name[96];
    char user[128];
    char *data;
    struct event *next;
};

/* A registered webhook (guarded by esim.mu). */
struct hook {
    char id[24], secret[40], event[96], url[512], type[16], field[64];
    char created_at[24], modified_at[24], created_by[128], modified_by[128];
    bool active, deleted, skip_own;
    struct item *items;
    size_t nitems;
    long posts, delivered, retried, dropped, last_status;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes n bytes as lower-case hex and a NUL into out (2 * n + 1 bytes). */
static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void events_clear(struct esim *e)
{
    while (e->events) {
        struct event *ev = e->events;
        e->events = ev->next;
        free(ev->data);
        free(ev);
    }
    e->events_tail = NULL;
    e->nevents = 0;
}

/* ---- events ------------------------------------------------------------------------------- */

/* Queues an event when an active webhook listens to it (07c: the create of a record while the
 * create webhook was inactive never arrived). Takes record. */
void esim__emit(struct esim *e, const char *name, json_t *record, const char *user)
{
    char full[96];
    snprintf(full, sizeof full, ESIM_ENTITY ".%s", name);
    bool wanted = false;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks && !wanted; i++)
        wanted =
            !e->hooks[i]->deleted && e->hooks[i]->active && strcmp(e->hooks[i]->event, full) == 0;
    struct event *ev = wanted ? calloc(1, sizeof *ev) : NULL;
    if (ev && (ev->data = json_dumps(record, JSON_COMPACT)) != NULL) {
        snprintf(ev->name, sizeof ev->name, "%s", full);
        snprintf(ev->user, sizeof ev->user, "%s", user);
        if (e->events_tail)
            e->events_tail->next = ev;
        else
            e->events = ev;
        e->events_tail = ev;
        e->nevents++;
    } else {
        free(ev);
    }
    pthread_mutex_unlock(&e->mu);
    json_decref(record);
}

/* ---- the API (07, 07c) -------------------------------------------------------------------- */

/* Under mu: a live webhook by id. */
static struct hook *hook_find(const struct esim *e, const char *id)
{
    for (size_t i = 0; i < e->nhooks; i++)
        if (!e->hooks[i]->deleted && id && strcmp(e->hooks[i]->id, id) == 0)
            return e->hooks[i];
    return NULL;
}

/* Under mu: the webhook as EspoCRM answers it (POST: without modifiedById). */
static json_t *hook_form(const struct esim *e, const struct hook *h, bool modified_by)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(h->id));
    json_object_set_new(o, "deleted", json_false());
    json_object_set_new(o, "event", json_string(h->event));
    json_object_set_new(o, "url", json_string(h->url));
    json_object_set_new(o, "isActive", json_boolean(h->active));
    json_object_set_new(o, "entityType", json_string(ESIM_ENTITY));
    json_object_set_new(o, "type", json_string(h->type));
    json_object_set_new(o, "field", h->field[0] ? json_string(h->field) : json_null());
    if (e->skip_own_honoured)
        json_object_set_new(o, "skipOwn", json_boolean(h->skip_own));
    json_object_set_new(o, "secretKey", json_string(h->secret));
    json_object_set_new(o, "createdAt", json_string(h->created_at));
    json_object_set_new(o, "modifiedAt", json_string(h->modified_at));
    json_object_set_new(o, "createdById", json_string(h->created_by));
    json_object_set_new(o, "createdByName", json_string(esim__user_name(e, h->created_by)));
    if (modified_by)
        json_object_set_new(o, "modifiedById",
                            h->modified_by[0] ? json_string(h->modified_by) : json_null());
    json_object_set_new(o, "modifiedByName",
                        h->modified_by[0] ? json_string(esim__user_name(e, h->modified_by))
                                          : json_null());
    return o;
}

/* Webhooks are the API user's and the admin's (07 step 6). */
static bool hook_access(struct esim *e, struct httpd_req *req, struct esim_actor *a)
{
    if (!esim__authenticate(e, req, a))
        return false;
    if (a->kind == ESIM_ACTOR_UI) {
        esim__respond(req, 403, "No access to 'Webhook'.", NULL);
        return false;
    }
    return true;
}

void esim__on_webhook_register(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    json_t *body = hook_access(e, req, &a) ? esim__body_object(req) : NULL;
    if (!body)
        return;
    const char *event = esim__jstr(body, "event"), *url = esim__jstr(body, "url");
    char entity[64] = "", type[32] = "", field[64] = "";
    if (event)
        sscanf(event, "%63[^.].%31[^.].%63s", entity, type, field);
    static const char *const types[] = {"create", "update", "delete"};
    struct esim_vfail vf = {"", "required"};
    if (!event || !*event || !url || !*url || strlen(url) >= sizeof((struct hook *)0)->url) {
        snprintf(vf.field, sizeof vf.field, "%s", !event || !*event ? "event" : "url");
        esim__respond_validation(req, &vf);
    } else if (strcmp(entity, ESIM_ENTITY) != 0) {
        esim__respond(req, 403, "Entity type is not available for Webhooks.", NULL);
    } else if (!(ESIM_IN(type, types) && !field[0]) &&
               !(strcmp(type, "fieldUpdate") == 0 && field[0])) {
        snprintf(vf.field, sizeof vf.field, "event");
        vf.type = "valid";
        esim__respond_validation(req, &vf);
    } else {
        struct hook *h = calloc(1, sizeof *h);
        unsigned char rnd[16];
        if (!h || RAND_bytes(rnd, sizeof rnd) != 1) {
            free(h);
            esim__respond(req, 500, NULL, NULL);
            goto out;
        }
        esim__new_id(e, h->id, sizeof h->id);
        hex_encode(rnd, sizeof rnd, h->secret);
        snprintf(h->event, sizeof h->event, "%s", event);
        snprintf(h->url, sizeof h->url, "%s", url);
        snprintf(h->type, sizeof h->type, "%.*s", (int)sizeof h->type - 1, type);
        snprintf(h->field, sizeof h->field, "%s", field);
        esim__now_text(e, h->created_at, sizeof h->created_at);
        snprintf(h->modified_at, sizeof h->modified_at, "%s", h->created_at);
        snprintf(h->created_by, sizeof h->created_by, "%s", a.id);
        h->active = true;
        h->skip_own = e->skip_own_honoured && json_is_true(json_object_get(body, "skipOwn"));
        pthread_mutex_lock(&e->mu);
        struct hook **hooks = realloc(e->hooks, (e->nhooks + 1) * sizeof *hooks);
        if (hooks) {
            e->hooks = hooks;
            e->hooks[e->nhooks++] = h;
        }
        json_t *ans = hooks ? hook_form(e, h, false) : NULL;
        pthread_mutex_unlock(&e->mu);
        if (!hooks)
            free(h);
        esim__respond(req, hooks ? 201 : 500, NULL, ans);
    }
out:
    json_decref(body);
}

void esim__on_webhook_get(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!hook_access(e, req, &a))
        return;
    const char *id = httpd_req_param(req, "id");
    pthread_mutex_lock(&e->mu);
    struct hook *h = hook_find(e, id);
    json_t *ans = h ? hook_form(e, h, true) : NULL;
    pthread_mutex_unlock(&e->mu);
    if (ans)
        esim__respond(req, 200, NULL, ans);
    else
        esim__respond_not_found(req, id, true);
}

void esim__on_webhook_list(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!hook_access(e, req, &a))
        return;
    long max = esim__query_long(httpd_req_query(req), "maxSize", ESIM_LIST_MAX);
    json_t *all = json_array(), *list = json_array();
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks; i++)
        if (!e->hooks[i]->deleted)
            json_array_append_new(all, hook_form(e, e->hooks[i], true));
    pthread_mutex_unlock(&e->mu);
    size_t n = json_array_size(all);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(all, i);
    esim__sort_records(items, n, "createdAt", true);
    for (size_t i = 0; i < n && (long)i < max; i++)
        json_array_append(list, items[i]);
    free(items);
    json_decref(all);
    esim__respond(req, 200, NULL, json_pack("{s:I,s:o}", "total", (json_int_t)n, "list", list));
}

static void items_free(struct item *it)
{
    while (it) {
        struct item *next = it->next;
        free(it->data);
        free(it);
        it = next;
    }
}

/* Under mu. */
static void hook_clear(struct hook *h)
{
    items_free(h->items);
    h->items = NULL;
    h->nitems = 0;
}

/* PUT /Webhook/{id}: isActive and url (skipOwn from 9.2); a write that changes nothing saves
 * nothing (07 step 9). */
void esim__on_webhook_update(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    json_t *body = hook_access(e, req, &a) ? esim__body_object(req) : NULL;
    if (!body)
        return;
    const char *id = httpd_req_param(req, "id");
    pthread_mutex_lock(&e->mu);
    struct hook *h = hook_find(e, id);
    json_t *ans = NULL;
    if (h) {
        bool changed = false;
        json_t *v = json_object_get(body, "isActive");
        if (json_is_boolean(v) && json_is_true(v) != h->active) {
            h->active = json_is_true(v);
            changed = true;
        }
        const char *url = esim__jstr(body, "url");
        if (url && *url && strlen(url) < sizeof h->url && strcmp(url, h->url) != 0) {
            snprintf(h->url, sizeof h->url, "%s", url);
            changed = true;
        }
        v = json_object_get(body, "skipOwn");
        if (e->skip_own_honoured && json_is_boolean(v) && json_is_true(v) != h->skip_own) {
            h->skip_own = json_is_true(v);
            changed = true;
        }
        if (changed) {
            esim__now_text(e, h->modified_at, sizeof h->modified_at);
            snprintf(h->modified_by, sizeof h->modified_by, "%s", a.id);
        }
        ans = hook_form(e, h, true);
    }
    pthread_mutex_unlock(&e->mu);
    if (ans)
        esim__respond(req, 200, NULL, ans);
    else
        esim__respond_not_found(req, id, false);
    json_decref(body);
}

void esim__on_webhook_delete(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!hook_access(e, req, &a))
        return;
    const char *id = httpd_req_param(req, "id");
    pthread_mutex_lock(&e->mu);
    struct hook *h = hook_find(e, id);
    if (h) {
        h->deleted = true;
        hook_clear(h);
    }
    pthread_mutex_unlock(&e->mu);
    if (h)
        esim__respond(req, 200, NULL, json_true());
    else
        esim__respond_not_found(req, id, false);
}

/* ---- the job (delivery thread) ------------------------------------------------------------ */

static bool retried_status(long status)
{
    static const long retried[] = {0, 401, 403, 404, 405, 408, 500, 503};
    for (size_t i = 0; i < sizeof retried / sizeof retried[0]; i++)
        if (status == retried[i])
            return true;
    return false;
}

/* Under mu: appends an item (takes data). */
static void hook_append(struct hook *h, char *data)
{
    struct item *it = data ? calloc(1, sizeof *it) : NULL;
    if (!it) {
        free(data);
        return;
    }
    it->data = data;
    struct item **pp = &h->items;
    while (*pp)
        pp = &(*pp)->next;
    *pp = it;
    h->nitems++;
}

/* The two signature headers of SPEC §3.1 (recorded 07 deliveries). */
static void sign(const char *id, const char *secret, const char *body, char *sig, char *xsig,
                 size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE], buf[256];
    unsigned int mlen = 0;
    size_t idlen = strlen(id);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body), mac,
         &mlen);
    memcpy(buf, id, idlen);
    buf[idlen] = ':';
    memcpy(buf + idlen + 1, mac, mlen); /* X-Signature: raw bytes */
    snprintf(xsig, len, "X-Signature: ");
    EVP_EncodeBlock((unsigned char *)xsig + 13, buf, (int)(idlen + 1 + mlen));
    hex_encode(mac, mlen, (char *)buf + idlen + 1); /* Signature: lower-case hex */
    snprintf(sig, len, "Signature: ");
    EVP_EncodeBlock((unsigned char *)sig + 11, buf, (int)(idlen + 1 + 2 * mlen));
}

static long deliver(struct httpc *http, const char *url, const char *body, const char *sig,
                    const char *xsig)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return 0; /* as curl's failure for the ftp:// webhook (07 db_note) */
    const char *headers[] = {"Content-Type: application/json", sig, xsig, NULL};
    struct httpc_resp resp;
    char err[256];
    long status = 0;
    if (httpc_request(http, "POST", url, headers, body, strlen(body), &resp, err, sizeof err) == 0)
        status = resp.status;
    httpc_resp_clear(&resp);
    return status;
}

/* Under mu: books the answer to a post of batch (n items; SPEC §7.1 retry rules). */
static void hook_book(struct esim *e, struct hook *h, struct item *batch, size_t n, long status)
{
    h->posts++;
    h->last_status = status;
    if (h->deleted) {
        items_free(batch);
    } else if (status >= 200 && status < 400) {
        h->delivered += (long)n;
        items_free(batch);
    } else if (status == 410) { /* EspoCRM deletes the webhook (07c run 1) */
        h->deleted = true;
        h->dropped += (long)n;
        items_free(batch);
        hook_clear(h);
        log_info("webhook deleted after 410", LOG_STR("webhook", h->id));
    } else if (!retried_status(status)) {
        h->dropped += (long)n;
        items_free(batch);
    } else {
        h->retried++;
        long long due = mono_ms() + e->conf.webhook_retry_ms;
        struct item *keep = NULL, **kt = &keep;
        while (batch) {
            struct item *it = batch;
            batch = it->next;
            it->next = NULL;
            if (++it->attempts >= MAX_ATTEMPTS) {
                h->dropped++;
                items_free(it);
                continue;
            }
            it->process_at = due;
            *kt = it;
            kt = &it->next;
            h->nitems++;
        }
        *kt = h->items; /* the oldest stay first */
        h->items = keep;
    }
}

/* Under mu (released around each post): one run of EspoCRM's ProcessWebhookQueue job: at most
 * job_batch events become items of the webhooks active now, then each webhook's due items (at
 * most 50) go out as one signed POST (07c). */
static void job_run(struct esim *e, struct httpc *http)
{
    long events = 0, posts = 0;
    while (e->events && events < e->conf.job_batch) {
        struct event *ev = e->events;
        e->events = ev->next;
        if (!e->events)
            e->events_tail = NULL;
        e->nevents--;
        for (size_t i = 0; i < e->nhooks; i++) {
            struct hook *h = e->hooks[i];
            bool own = e->skip_own_honoured && h->skip_own && strcmp(h->created_by, ev->user) == 0;
            if (!h->deleted && h->active && !own && strcmp(h->event, ev->name) == 0)
                hook_append(h, strdup(ev->data));
        }
        free(ev->data);
        free(ev);
        events++;
    }
    for (size_t i = 0; i < e->nhooks; i++) {
        struct hook *h = e->hooks[i];
        if (h->deleted || !h->active || !h->items)
            continue;
        long long now = mono_ms();
        struct item *batch = NULL, **bt = &batch, **pp = &h->items;
        size_t n = 0, len = 3;
        while (*pp && n < POST_MAX_ITEMS) {
            struct item *it = *pp;
            if (it->process_at > now) {
                pp = &it->next;
                continue;
            }
            *pp = it->next;
            it->next = NULL;
            *bt = it;
            bt = &it->next;
            n++;
            len += strlen(it->data) + 1;
        }
        if (n == 0)
            continue;
        h->nitems -= n;
        char *body = malloc(len), url[sizeof h->url], sig[256], xsig[256];
        if (!body) {
            hook_book(e, h, batch, n, 0);
            continue;
        }
        char *p = body;
        *p++ = '[';
        for (struct item *it = batch; it; it = it->next) {
            size_t l = strlen(it->data);
            memcpy(p, it->data, l);
            p += l;
            *p++ = it->next ? ',' : ']';
        }
        *p = '\0';
        snprintf(url, sizeof url, "%s", h->url);
        sign(h->id, h->secret, body, sig, xsig, sizeof sig);
        pthread_mutex_unlock(&e->mu);
        long status = deliver(http, url, body, sig, xsig);
        pthread_mutex_lock(&e->mu);
        hook_book(e, h, batch, n, status);
        free(body);
        posts++;
    }
    e->last_events = events;
    e->last_posts = posts;
}

static void *delivery_thread(void *arg)
{
    struct esim *e = arg;
    struct httpc_opts opts = {.timeout_ms = 5000, .connect_timeout_ms = 2000};
    struct httpc *http = httpc_new(&opts);
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        long long now = mono_ms();
        bool requested = e->run_requests > 0;
        bool periodic = e->conf.job_ms > 0 && !e->paused && now >= e->next_run;
        if (!requested && !periodic) {
            long long wait = e->conf.job_ms > 0 && !e->paused ? e->next_run - now : 1000;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long long ns = ts.tv_nsec + wait * 1000000LL;
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            continue;
        }
        if (requested)
            e->run_requests--;
        job_run(e, http);
        if (e->conf.job_ms > 0)
            e->next_run = mono_ms() + e->conf.job_ms;
        if (requested) {
            e->runs_done++;
            uv_async_send(&e->async);
        }
    }
    pthread_mutex_unlock(&e->mu);
    httpc_free(http);
    return NULL;
}

/* Loop thread: answers the POST /_sim/webhooks/run requests whose run is done. */
static void on_runs_done(uv_async_t *async)
{
    struct esim *e = async->data;
    pthread_mutex_lock(&e->mu);
    int done = e->runs_done;
    e->runs_done = 0;
    long events = e->last_events, posts = e->last_posts;
    pthread_mutex_unlock(&e->mu);
    while (done-- > 0 && e->nwaiters > 0) {
        struct httpd_req *req = e->waiters[0];
        memmove(e->waiters, e->waiters + 1, --e->nwaiters * sizeof *e->waiters);
        esim__respond(
            req, 200, NULL,
            json_pack("{s:I,s:I}", "events", (json_int_t)events, "posts", (json_int_t)posts));
    }
}

/* POST /_sim/webhooks/run: runs the job now; answers {"events","posts"} once it has run. */
void esim__on_run_job(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    if (e->nwaiters == e->capwaiters) {
        size_t cap = e->capwaiters ? e->capwaiters * 2 : 8;
        struct httpd_req **w = realloc(e->waiters, cap * sizeof *w);
        if (!w) {
            esim__respond(req, 500, NULL, NULL);
            return;
        }
        e->waiters = w;
        e->capwaiters = cap;
    }
    e->waiters[e->nwaiters++] = req;
    pthread_mutex_lock(&e->mu);
    e->run_requests++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

/* GET /_sim/webhooks: webhooks and their counters; pendingEvents (not yet in a job run) and
 * queueItems (not yet delivered) as EspoCRM's two queue tables count them (07 step 20). */
void esim__on_sim_webhooks(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    json_t *list = json_array();
    json_int_t items = 0;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks; i++) {
        const struct hook *h = e->hooks[i];
        if (h->deleted)
            continue;
        size_t waiting = 0;
        for (const struct event *ev = e->events; ev; ev = ev->next)
            waiting += strcmp(ev->name, h->event) == 0;
        items += (json_int_t)h->nitems;
        json_array_append_new(
            list,
            json_pack("{s:s,s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "id", h->id, "event",
                      h->event, "url", h->url, "isActive", h->active, "skipOwn", h->skip_own,
                      "queued", (json_int_t)(h->nitems + waiting), "posts", (json_int_t)h->posts,
                      "delivered", (json_int_t)h->delivered, "retried", (json_int_t)h->retried,
                      "dropped", (json_int_t)h->dropped, "lastStatus", (json_int_t)h->last_status));
    }
    json_t *ans = json_pack("{s:o,s:b,s:I,s:I}", "webhooks", list, "paused", e->paused,
                            "pendingEvents", (json_int_t)e->nevents, "queueItems", items);
    pthread_mutex_unlock(&e->mu);
    esim__respond(req, 200, NULL, ans);
}

static void set_paused(struct esim *e, struct httpd_req *req, bool paused)
{
    pthread_mutex_lock(&e->mu);
    e->paused = paused;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    esim__respond(req, 200, NULL, json_pack("{s:b}", "paused", paused));
}

void esim__on_pause(struct httpd_req *req, void *ud)
{
    set_paused(ud, req, true);
}

void esim__on_resume(struct httpd_req *req, void *ud)
{
    set_paused(ud, req, false);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

void esim__webhooks_init(struct esim *e)
{
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
}

int esim__webhooks_open(struct esim *e, uv_loop_t *loop)
{
    if (uv_async_init(loop, &e->async, on_runs_done) != 0)
        return -1;
    e->async.data = e;
    e->async_open = true;
    return 0;
}

int esim__webhooks_start(struct esim *e)
{
    if (pthread_create(&e->thread, NULL, delivery_thread, e) != 0)
        return -1;
    e->thread_started = true;
    return 0;
}

void esim__webhooks_reset(struct esim *e)
{
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks; i++) {
        e->hooks[i]->deleted = true;
        hook_clear(e->hooks[i]);
    }
    events_clear(e);
    e->paused = false;
    pthread_mutex_unlock(&e->mu);
}

void esim__webhooks_stop(struct esim *e)
{
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->thread_started)
        pthread_join(e->thread, NULL);
    e->thread_started = false;
    while (e->nwaiters > 0) /* the job will not run any more */
        esim__respond(e->waiters[--e->nwaiters], 503, NULL, NULL);
    if (e->async_open)
        uv_close((uv_handle_t *)&e->async, NULL);
    e->async_open = false;
}

void esim__webhooks_free(struct esim *e)
{
    for (size_t i = 0; i < e->nhooks; i++) {
        hook_clear(e->hooks[i]);
        free(e->hooks[i]);
    }
    free(e->hooks);
    events_clear(e);
    free(e->waiters);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
}
