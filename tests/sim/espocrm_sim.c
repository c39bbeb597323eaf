/* espocrm_sim.c: espocrm-sim, the EspoCRM REST API simulator of SPEC §7.1, §8 and §8.1: X-Api-Key
 * auth for the sync user, CBeteiligte CRUD with EspoCRM's save rules (modifiedAt, modifiedById,
 * versionNumber) and the formula (creation → pending_sync, a human's change of a synced field →
 * dirty), optimistic concurrency (X-Version-Number → 409), the list query with where[],
 * notifications, and webhooks delivered in signed batches of ≤ 50 with EspoCRM's retry rules
 * (SPEC §3.1). Built on the shared simulator frame (sim.h).
 *
 * Threads: everything runs on the loop thread except the webhook delivery thread, which posts
 * batches with a blocking HTTP client. The two share only the webhook table, under `mu`: the
 * loop thread appends records, the delivery thread takes batches as serialised text, posts
 * them unlocked and books the result. Webhook entries are never freed before exit (a deleted
 * one is only marked), so the delivery thread's pointer stays valid across its unlocked post.
 *
 * Decisions where the SPEC is silent:
 * - Unknown attributes in a write are stored as given (EspoCRM would ignore them).
 * - POST /api/v1/CBeteiligte needs a non-empty name (400), as EspoCRM's required field does.
 * - An update that changes nothing still saves (modifiedAt, versionNumber) but sends no webhook.
 * - Events gather for --webhook-batch-ms before a batch leaves; POST /_sim/webhooks/pause holds
 *   every delivery until /_sim/webhooks/resume (so a test can see exact batch sizes).
 * - 409 body: {"error":"conflict","versionNumber":<stored>,"fields":{<field>:<stored value>}}. */
#include "httpc.h"
#include "log.h"
#include "sim.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG         "espocrm-sim"
#define BATCH_MAX    50
#define MAX_ATTEMPTS 4
#define LIST_DEFAULT 20
#define LIST_MAX     200

#define ROUTE_USER         "/api/v1/App/user"
#define ROUTE_ENTITIES     "/api/v1/CBeteiligte"
#define ROUTE_ENTITY       "/api/v1/CBeteiligte/{id}"
#define ROUTE_NOTIFICATION "/api/v1/Notification"
#define ROUTE_WEBHOOK      "/api/v1/Webhook"

struct espo_conf {
    const char *api_key;
    const char *sync_user;
    int webhook_retry_ms;
    int webhook_batch_ms;
};

/* A registered webhook and its delivery state (guarded by espo_sim.mu). */
struct hook {
    char id[24], secret[40], event[40], url[512];
    bool skip_own, deleted;
    json_t *queue;      /* records not yet in a batch */
    long long first_at; /* when the oldest queued record arrived (monotonic ms) */
    char *batch;        /* serialised batch being delivered, or NULL */
    size_t batch_n;     /* records in it */
    int attempts;       /* of this batch */
    long long next_at;  /* not before (monotonic ms) */
    long posts, delivered, retried, dropped;
    long last_status;
};

struct espo_sim {
    struct espo_conf conf;
    struct sim *sim;
    json_t *entities;      /* id → entity, in creation order */
    json_t *notifications; /* array, oldest first */
    unsigned long next_id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop, paused, thread_started;
    struct hook **hooks;
    size_t nhooks;
};

/* Attributes a person edits that the sync carries (SPEC §5.1, §5.4): a human's change → dirty. */
static const char *const synced_fields[] = {
    "name",        "vorname",     "rechtsform",  "titel",           "anrede",
    "bAnrede",     "zusatz",      "dateOfBirth", "phoneNumberData", "emailAddressData",
    "phoneNumber", "emailAddress"};
static const char *const read_only[] = {"id",          "createdAt",    "createdById",
                                        "modifiedAt",  "modifiedById", "versionNumber",
                                        "phoneNumber", "emailAddress"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}
#define IN(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- entities ----------------------------------------------------------------------------- */

static void new_id(struct espo_sim *e, char *buf, size_t len)
{
    unsigned long r = sim_rand_below(e->sim, 0xfffffffUL);
    snprintf(buf, len, "%010lx%07lx", ++e->next_id, r);
}

/* phoneNumber / emailAddress: the primary entry's value, as EspoCRM exposes it. */
static void derive_primary(json_t *ent, const char *list, const char *value_key, const char *out)
{
    json_t *arr = json_object_get(ent, list), *item, *chosen = NULL;
    size_t i;
    json_array_foreach(arr, i, item)
    {
        if (!chosen || json_is_true(json_object_get(item, "primary")))
            chosen = item;
        if (json_is_true(json_object_get(item, "primary")))
            break;
    }
    json_t *v = chosen ? json_object_get(chosen, value_key) : NULL;
    json_object_set_new(ent, out, json_is_string(v) ? json_incref(v) : json_null());
}

/* Applies attrs to ent as `user` and runs EspoCRM's save rules and the formula. Returns the
 * attributes that changed (a new object: the update webhook's record). */
static json_t *entity_save(struct espo_sim *e, json_t *ent, const json_t *attrs, const char *user,
                           bool creating)
{
    json_t *changed = json_object();
    const char *k;
    json_t *v;
    bool synced_change = false;
    json_object_foreach((json_t *)attrs, k, v)
    {
        if (IN(k, read_only))
            continue;
        json_t *old = json_object_get(ent, k);
        if (old && json_equal(old, v))
            continue;
        json_object_set(ent, k, v);
        json_object_set(changed, k, v);
        synced_change |= IN(k, synced_fields);
    }
    bool sync_user = strcmp(user, e->conf.sync_user) == 0;
    char now[24];
    sim_now_utc(now, sizeof now);
    if (creating) {
        if (!(sync_user && json_object_get(attrs, "syncStatus")))
            json_object_set_new(ent, "syncStatus", json_string("pending_sync"));
        json_object_set_new(ent, "createdAt", json_string(now));
        json_object_set_new(ent, "createdById", json_string(user));
        json_object_set_new(ent, "versionNumber", json_integer(1));
    } else {
        if (!sync_user && synced_change) {
            json_object_set_new(ent, "syncStatus", json_string("dirty"));
            json_object_set_new(changed, "syncStatus", json_string("dirty"));
        }
        json_int_t version = json_integer_value(json_object_get(ent, "versionNumber"));
        json_object_set_new(ent, "versionNumber", json_integer(version + 1));
    }
    json_object_set_new(ent, "modifiedAt", json_string(now));
    json_object_set_new(ent, "modifiedById", json_string(user));
    derive_primary(ent, "phoneNumberData", "phoneNumber", "phoneNumber");
    derive_primary(ent, "emailAddressData", "emailAddress", "emailAddress");
    return changed;
}

static json_t *entity_new(struct espo_sim *e)
{
    char id[24];
    new_id(e, id, sizeof id);
    json_t *ent = json_pack("{s:s,s:[],s:[]}", "id", id, "phoneNumberData", "emailAddressData");
    static const char *const nulls[] = {
        "name",          "vorname",         "rechtsform",       "titel",
        "anrede",        "bAnrede",         "zusatz",           "dateOfBirth",
        "betnr",         "advowareRowId",   "advowareLastSync", "syncRetryCount",
        "syncNextRetry", "syncAutoResetAt", "syncErrorMessage", "kommunikationHash",
        "assignedUserId"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        json_object_set_new(ent, nulls[i], json_null());
    json_object_set_new(ent, "syncRetryCount", json_integer(0));
    json_object_set_new(e->entities, id, ent);
    return ent; /* borrowed: e->entities holds it */
}

/* ---- webhooks ----------------------------------------------------------------------------- */

/* Queues a record for every webhook of `event` (create|update|delete) unless skipOwn hides it. */
static void hooks_enqueue(struct espo_sim *e, const char *event, const json_t *record,
                          const char *user)
{
    char full[48];
    snprintf(full, sizeof full, "CBeteiligte.%s", event);
    bool own = strcmp(user, e->conf.sync_user) == 0;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks; i++) {
        struct hook *h = e->hooks[i];
        if (h->deleted || strcmp(h->event, full) != 0 || (own && h->skip_own))
            continue;
        if (json_array_size(h->queue) == 0)
            h->first_at = mono_ms();
        json_array_append_new(h->queue, json_deep_copy(record));
    }
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static char *signature(const struct hook *h, const char *body)
{
    unsigned char raw[64 + EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    size_t idlen = strlen(h->id);
    memcpy(raw, h->id, idlen);
    raw[idlen] = ':';
    HMAC(EVP_sha256(), h->secret, (int)strlen(h->secret), (const unsigned char *)body, strlen(body),
         raw + idlen + 1, &mlen);
    size_t rlen = idlen + 1 + mlen;
    char *out = malloc(4 * ((rlen + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, raw, (int)rlen);
    return out;
}

/* Under mu: the hook whose next step is due, or NULL and *wait_ms until the earliest one. */
static struct hook *hook_due(struct espo_sim *e, long long now, long long *wait_ms)
{
    *wait_ms = 1000;
    if (e->paused)
        return NULL;
    for (size_t i = 0; i < e->nhooks; i++) {
        struct hook *h = e->hooks[i];
        if (h->deleted)
            continue;
        if (!h->batch && json_array_size(h->queue) > 0) {
            long long due = h->first_at + e->conf.webhook_batch_ms;
            if (due > now) {
                *wait_ms = due - now < *wait_ms ? due - now : *wait_ms;
                continue;
            }
            json_t *batch = json_array();
            while (json_array_size(batch) < BATCH_MAX && json_array_size(h->queue) > 0) {
                json_array_append(batch, json_array_get(h->queue, 0));
                json_array_remove(h->queue, 0);
            }
            h->first_at = now;
            h->batch = json_dumps(batch, JSON_COMPACT | JSON_PRESERVE_ORDER);
            h->batch_n = json_array_size(batch);
            h->attempts = 0;
            h->next_at = now;
            json_decref(batch);
        }
        if (h->batch) {
            if (h->next_at <= now)
                return h;
            *wait_ms = h->next_at - now < *wait_ms ? h->next_at - now : *wait_ms;
        }
    }
    return NULL;
}

static bool retried_status(long status)
{
    static const long retried[] = {0, 401, 403, 404, 405, 408, 500, 503};
    for (size_t i = 0; i < sizeof retried / sizeof retried[0]; i++)
        if (status == retried[i])
            return true;
    return false;
}

/* Under mu: books the answer to a batch (SPEC §3.1 retry rules). */
static void hook_book(struct espo_sim *e, struct hook *h, long status)
{
    h->posts++;
    h->attempts++;
    h->last_status = status;
    bool done = true;
    if (h->deleted) {
        /* reset meanwhile: forget the batch */
    } else if (status >= 200 && status < 400) {
        h->delivered += (long)h->batch_n;
    } else if (status == 410) {
        h->deleted = true; /* EspoCRM deletes the webhook */
        log_info("webhook deleted after 410", LOG_STR("webhook", h->id));
    } else if (retried_status(status) && h->attempts < MAX_ATTEMPTS) {
        h->retried++;
        h->next_at = mono_ms() + e->conf.webhook_retry_ms;
        done = false;
    } else {
        h->dropped += (long)h->batch_n;
    }
    if (done) {
        free(h->batch);
        h->batch = NULL;
        h->batch_n = 0;
    }
}

static void *delivery_thread(void *arg)
{
    struct espo_sim *e = arg;
    struct httpc_opts opts = {.timeout_ms = 5000, .connect_timeout_ms = 2000};
    struct httpc *http = httpc_new(&opts);
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        long long wait_ms;
        struct hook *h = hook_due(e, mono_ms(), &wait_ms);
        if (!h) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long long ns = ts.tv_nsec + wait_ms * 1000000LL;
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            continue;
        }
        char *body = strdup(h->batch), *sig = signature(h, h->batch), url[512], hdr[256];
        snprintf(url, sizeof url, "%s", h->url);
        snprintf(hdr, sizeof hdr, "X-Signature: %s", sig ? sig : "");
        pthread_mutex_unlock(&e->mu);
        const char *headers[] = {hdr, "Content-Type: application/json", NULL};
        struct httpc_resp resp;
        char err[256];
        long status = 0;
        if (body && httpc_request(http, "POST", url, headers, body, strlen(body), &resp, err,
                                  sizeof err) == 0)
            status = resp.status;
        httpc_resp_clear(&resp);
        free(body);
        free(sig);
        pthread_mutex_lock(&e->mu);
        hook_book(e, h, status);
    }
    pthread_mutex_unlock(&e->mu);
    httpc_free(http);
    return NULL;
}

/* ---- HTTP helpers ------------------------------------------------------------------------- */

static bool authorized(struct espo_sim *e, struct httpd_req *req)
{
    const char *key = httpd_req_header(req, "X-Api-Key");
    if (key && strcmp(key, e->conf.api_key) == 0)
        return true;
    httpd_respond_error(req, 401, "missing or wrong X-Api-Key");
    return false;
}

static const char *ui_user(struct httpd_req *req)
{
    const char *u = httpd_req_header(req, "X-Sim-User");
    return u && *u ? u : "ui-user";
}

/* The request body as a JSON object, or NULL after answering 400. */
static json_t *body_object(struct httpd_req *req)
{
    json_t *body;
    if (sim_body_json(req, &body, false) != 0)
        return NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        httpd_respond_error(req, 400, "the body must be a JSON object");
        return NULL;
    }
    return body;
}

static json_t *entity_param(struct espo_sim *e, struct httpd_req *req)
{
    json_t *ent = json_object_get(e->entities, httpd_req_param(req, "id"));
    if (!ent)
        httpd_respond_error(req, 404, "no such CBeteiligte");
    return ent;
}

/* ---- entity operations shared by the API (sync user) and the UI routes ------------------- */

static void do_create(struct espo_sim *e, struct httpd_req *req, const char *user)
{
    json_t *body = body_object(req);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    if (!name || !*name) {
        json_decref(body);
        httpd_respond_error(req, 400, "name: required");
        return;
    }
    json_t *ent = entity_new(e);
    json_decref(entity_save(e, ent, body, user, true));
    json_decref(body);
    hooks_enqueue(e, "create", ent, user);
    httpd_respond_json(req, 200, json_deep_copy(ent));
}

/* 409 body when a stale X-Version-Number writes values that differ from the stored ones. */
static json_t *version_conflict(const json_t *ent, const json_t *attrs, const char *header)
{
    char *end;
    long long given = strtoll(header, &end, 10);
    json_int_t stored = json_integer_value(json_object_get(ent, "versionNumber"));
    if (end == header || given == stored)
        return NULL;
    json_t *fields = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)attrs, k, v)
    {
        json_t *old = json_object_get(ent, k);
        if (!IN(k, read_only) && !(old ? json_equal(old, v) : json_is_null(v)))
            json_object_set(fields, k, old ? old : json_null());
    }
    if (json_object_size(fields) == 0) {
        json_decref(fields);
        return NULL;
    }
    return json_pack("{s:s,s:I,s:o}", "error", "conflict", "versionNumber", stored, "fields",
                     fields);
}

static void do_update(struct espo_sim *e, struct httpd_req *req, const char *user)
{
    json_t *ent = entity_param(e, req);
    json_t *body = ent ? body_object(req) : NULL;
    if (!body)
        return;
    const char *version = httpd_req_header(req, "X-Version-Number");
    json_t *conflict = version ? version_conflict(ent, body, version) : NULL;
    if (conflict) {
        json_decref(body);
        httpd_respond_json(req, 409, conflict);
        return;
    }
    json_t *changed = entity_save(e, ent, body, user, false);
    json_decref(body);
    if (json_object_size(changed) > 0) {
        json_object_set(changed, "id", json_object_get(ent, "id"));
        hooks_enqueue(e, "update", changed, user);
    }
    json_decref(changed);
    httpd_respond_json(req, 200, json_deep_copy(ent));
}

static void do_delete(struct espo_sim *e, struct httpd_req *req, const char *user)
{
    json_t *ent = entity_param(e, req);
    if (!ent)
        return;
    json_t *record = json_pack("{s:O}", "id", json_object_get(ent, "id"));
    json_object_del(e->entities, httpd_req_param(req, "id"));
    hooks_enqueue(e, "delete", record, user);
    json_decref(record);
    httpd_respond_json(req, 200, json_true());
}

/* ---- the list query ----------------------------------------------------------------------- */

/* Puts value at the bracket path of key ("where[0][value][]") into tree. */
static void tree_put(json_t *tree, const char *key, const char *value)
{
    char seg[256];
    const char *p = key;
    size_t n = strcspn(p, "[");
    json_t *node = tree;
    snprintf(seg, sizeof seg, "%.*s", (int)n, p);
    p += n;
    while (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close)
            break;
        json_t *child = json_object_get(node, seg);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(node, seg, child);
        }
        node = child;
        if (close == p + 1)
            snprintf(seg, sizeof seg, "%zu", json_object_size(node)); /* "[]": append */
        else
            snprintf(seg, sizeof seg, "%.*s", (int)(close - p - 1), p + 1);
        p = close + 1;
    }
    json_object_set_new(node, seg, json_string(value));
}

static json_t *query_tree(const char *query)
{
    json_t *tree = json_object();
    while (query && *query) {
        size_t len = strcspn(query, "&");
        const char *eq = memchr(query, '=', len);
        size_t klen = eq ? (size_t)(eq - query) : len;
        char key[512], value[2048];
        httpd_url_decode(query, klen, key, sizeof key);
        httpd_url_decode(eq ? eq + 1 : "", eq ? len - klen - 1 : 0, value, sizeof value);
        if (*key)
            tree_put(tree, key, value);
        query += len + (query[len] == '&');
    }
    return tree;
}

/* The values of an object-as-array ({"0":a,"1":b}), an array, or a scalar (one value). */
static json_t *as_list(json_t *v)
{
    json_t *out = json_array();
    if (json_is_object(v)) {
        const char *k;
        json_t *item;
        json_object_foreach(v, k, item) json_array_append(out, item);
    } else if (v) {
        json_array_append(out, v);
    }
    return out;
}

/* <0, 0, >0 comparing a stored value with a query value (always text). */
static int compare(const json_t *field, const char *text)
{
    if (json_is_number(field)) {
        double a = json_number_value(field), b = strtod(text, NULL);
        return a < b ? -1 : a > b;
    }
    if (json_is_boolean(field))
        return (json_is_true(field) ? 1 : 0) -
               (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 ? 1 : 0);
    return strcmp(json_is_string(field) ? json_string_value(field) : "", text);
}

/* 1 match, 0 no match, -1 bad condition (msg set). */
static int matches(const json_t *ent, json_t *cond, char *msg, size_t msglen)
{
    const char *type = json_string_value(json_object_get(cond, "type"));
    const char *attr = json_string_value(json_object_get(cond, "attribute"));
    json_t *value = json_object_get(cond, "value");
    if (!type) {
        snprintf(msg, msglen, "where: a condition without type");
        return -1;
    }
    if (strcmp(type, "or") == 0 || strcmp(type, "and") == 0) {
        bool is_or = type[0] == 'o';
        json_t *subs = as_list(value);
        int result = is_or ? 0 : 1;
        size_t i;
        json_t *sub;
        json_array_foreach(subs, i, sub)
        {
            int m = matches(ent, sub, msg, msglen);
            if (m < 0) {
                result = -1;
                break;
            }
            if (is_or ? m : !m)
                result = is_or;
        }
        json_decref(subs);
        return result;
    }
    if (!attr) {
        snprintf(msg, msglen, "where: %s needs an attribute", type);
        return -1;
    }
    json_t *field = json_object_get(ent, attr);
    bool null = !field || json_is_null(field);
    const char *text = json_string_value(value);
    if (strcmp(type, "isNull") == 0)
        return null;
    if (strcmp(type, "isNotNull") == 0)
        return !null;
    if (strcmp(type, "in") == 0) {
        json_t *list = as_list(value);
        int found = 0;
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) if (!null && json_is_string(item) &&
                                              compare(field, json_string_value(item)) == 0) found =
            1;
        json_decref(list);
        return found;
    }
    static const char *const binary[] = {"equals",          "notEquals",   "lessThan",
                                         "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"};
    int op = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(type, binary[i]) == 0)
            op = i;
    if (op < 0) {
        snprintf(msg, msglen, "where: unknown type \"%s\"", type);
        return -1;
    }
    if (null || !text)
        return 0;
    int c = compare(field, text);
    switch (op) {
    case 0:
        return c == 0;
    case 1:
        return c != 0;
    case 2:
        return c < 0;
    case 3:
        return c <= 0;
    case 4:
        return c > 0;
    default:
        return c >= 0;
    }
}

static const char *g_order_by; /* qsort has no user pointer; the loop is single-threaded */
static int g_order_desc;

static int by_order(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = 0;
    if (g_order_by) {
        json_t *fx = json_object_get(x, g_order_by), *fy = json_object_get(y, g_order_by);
        bool nx = !fx || json_is_null(fx), ny = !fy || json_is_null(fy);
        if (nx || ny)
            c = nx && ny ? 0 : nx ? -1 : 1;
        else if (json_is_string(fy))
            c = compare(fx, json_string_value(fy));
        else if (json_is_number(fy))
            c = json_number_value(fx) < json_number_value(fy)   ? -1
                : json_number_value(fx) > json_number_value(fy) ? 1
                                                                : 0;
        if (g_order_desc)
            c = -c;
    }
    if (c == 0)
        c = strcmp(json_string_value(json_object_get(x, "id")),
                   json_string_value(json_object_get(y, "id")));
    return c;
}

static json_t *project(const json_t *ent, const char *select)
{
    if (!select || !*select)
        return json_deep_copy(ent);
    json_t *out = json_pack("{s:O}", "id", json_object_get(ent, "id"));
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", select);
    for (char *save = NULL, *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        json_t *v = json_object_get(ent, f);
        json_object_set(out, f, v ? v : json_null());
    }
    return out;
}

static void on_list(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    if (!authorized(e, req))
        return;
    json_t *q = query_tree(httpd_req_query(req));
    json_t *where = as_list(json_object_get(q, "where"));
    size_t n = json_object_size(e->entities), count = 0;
    json_t **hits = calloc(n ? n : 1, sizeof *hits);
    char msg[200] = "";
    const char *id;
    json_t *ent;
    int bad = 0;
    json_object_foreach(e->entities, id, ent)
    {
        int all = 1;
        size_t i;
        json_t *cond;
        json_array_foreach(where, i, cond)
        {
            int m = matches(ent, cond, msg, sizeof msg);
            if (m < 0)
                bad = 1;
            if (m <= 0) {
                all = 0;
                break;
            }
        }
        if (bad)
            break;
        if (all)
            hits[count++] = ent;
    }
    if (bad) {
        httpd_respond_error(req, 400, msg);
    } else {
        g_order_by = json_string_value(json_object_get(q, "orderBy"));
        const char *order = json_string_value(json_object_get(q, "order"));
        g_order_desc = order && strcmp(order, "desc") == 0;
        qsort(hits, count, sizeof *hits, by_order);
        const char *ms = json_string_value(json_object_get(q, "maxSize"));
        const char *os = json_string_value(json_object_get(q, "offset"));
        long max = ms ? strtol(ms, NULL, 10) : LIST_DEFAULT, off = os ? strtol(os, NULL, 10) : 0;
        max = max <= 0 ? LIST_DEFAULT : max > LIST_MAX ? LIST_MAX : max;
        off = off < 0 ? 0 : off;
        json_t *list = json_array();
        const char *select = json_string_value(json_object_get(q, "select"));
        for (size_t i = (size_t)off; i < count && json_array_size(list) < (size_t)max; i++)
            json_array_append_new(list, project(hits[i], select));
        httpd_respond_json(req, 200,
                           json_pack("{s:I,s:o}", "total", (json_int_t)count, "list", list));
    }
    free(hits);
    json_decref(where);
    json_decref(q);
}

/* ---- API handlers ------------------------------------------------------------------------- */

static void on_app_user(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    if (authorized(e, req))
        httpd_respond_json(
            req, 200,
            json_pack("{s:{s:s,s:s}}", "user", "id", e->conf.sync_user, "userName", "sync"));
}

static void on_get(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *ent = authorized(e, req) ? entity_param(e, req) : NULL;
    if (ent)
        httpd_respond_json(req, 200, json_deep_copy(ent));
}

static void on_post(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    if (authorized(e, req))
        do_create(e, req, e->conf.sync_user);
}

static void on_put(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    if (authorized(e, req))
        do_update(e, req, e->conf.sync_user);
}

static void on_delete(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    if (authorized(e, req))
        do_delete(e, req, e->conf.sync_user);
}

static void on_notification(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *body = authorized(e, req) ? body_object(req) : NULL;
    if (!body)
        return;
    char id[24], now[24];
    new_id(e, id, sizeof id);
    sim_now_utc(now, sizeof now);
    json_object_set_new(body, "id", json_string(id));
    json_object_set_new(body, "createdAt", json_string(now));
    json_array_append(e->notifications, body);
    httpd_respond_json(req, 200, body);
}

static void on_webhook_register(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *body = authorized(e, req) ? body_object(req) : NULL;
    if (!body)
        return;
    const char *event = json_string_value(json_object_get(body, "event"));
    const char *url = json_string_value(json_object_get(body, "url"));
    static const char *const events[] = {"CBeteiligte.create", "CBeteiligte.update",
                                         "CBeteiligte.delete"};
    if (!event || !IN(event, events) || !url || !*url || strlen(url) >= 512) {
        json_decref(body);
        httpd_respond_error(req, 400, "event (CBeteiligte.create|update|delete) and url required");
        return;
    }
    struct hook *h = calloc(1, sizeof *h);
    struct hook **hooks = h ? realloc(e->hooks, (e->nhooks + 1) * sizeof *hooks) : NULL;
    unsigned char rnd[16];
    if (!hooks || RAND_bytes(rnd, sizeof rnd) != 1) {
        free(h);
        json_decref(body);
        httpd_respond_error(req, 500, "out of memory");
        return;
    }
    new_id(e, h->id, sizeof h->id);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(h->secret + 2 * i, 3, "%02x", rnd[i]);
    snprintf(h->event, sizeof h->event, "%s", event);
    snprintf(h->url, sizeof h->url, "%s", url);
    h->skip_own = !json_is_false(json_object_get(body, "skipOwn"));
    h->queue = json_array();
    pthread_mutex_lock(&e->mu);
    e->hooks = hooks;
    e->hooks[e->nhooks++] = h;
    pthread_mutex_unlock(&e->mu);
    json_decref(body);
    httpd_respond_json(req, 200,
                       json_pack("{s:s,s:s,s:s,s:s,s:b}", "id", h->id, "secretKey", h->secret,
                                 "event", h->event, "url", h->url, "skipOwn", h->skip_own));
}

/* ---- admin handlers ----------------------------------------------------------------------- */

static void on_ui_create(struct httpd_req *req, void *ud)
{
    do_create(ud, req, ui_user(req));
}

static void on_ui_update(struct httpd_req *req, void *ud)
{
    do_update(ud, req, ui_user(req));
}

static void on_ui_delete(struct httpd_req *req, void *ud)
{
    do_delete(ud, req, ui_user(req));
}

static void on_seed(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *body = body_object(req);
    if (!body)
        return;
    json_int_t count = json_integer_value(json_object_get(body, "count"));
    json_decref(body);
    if (count < 1 || count > 100000) {
        httpd_respond_error(req, 400, "count must be 1..100000");
        return;
    }
    static const char *const names[] = {"Mustermann", "Schmidt", "Müller", "Weber", "Fischer"};
    static const char *const vornamen[] = {"Max", "Erika", "Jürgen", "Anna", "Lena"};
    static const char *const formen[] = {"GmbH", "AG", "KG", "Privatperson"};
    json_t *ids = json_array();
    for (json_int_t i = 0; i < count; i++) {
        unsigned long r = sim_rand_below(e->sim, 1000000);
        char dob[16], phone[32], mail[96], zusatz[32];
        snprintf(dob, sizeof dob, "%04lu-%02lu-%02lu", 1940 + r % 60, 1 + r % 12, 1 + r % 28);
        snprintf(phone, sizeof phone, "+49 511 %06lu", r);
        snprintf(mail, sizeof mail, "seed%lld.%lu@example.com", (long long)i, r);
        snprintf(zusatz, sizeof zusatz, "Seed %lld", (long long)i);
        json_t *attrs =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:b}],s:[{s:s,s:b}]}", "name",
                      names[r % 5], "vorname", vornamen[(r / 5) % 5], "rechtsform", formen[r % 4],
                      "titel", r % 3 ? "" : "Dr.", "anrede", r % 2 ? "Herr" : "Frau", "bAnrede",
                      r % 2 ? "Sehr geehrter Herr" : "Sehr geehrte Frau", "zusatz", zusatz,
                      "dateOfBirth", dob, "phoneNumberData", "phoneNumber", phone, "type", "Office",
                      "primary", 1, "emailAddressData", "emailAddress", mail, "primary", 1);
        json_t *ent = entity_new(e);
        json_decref(entity_save(e, ent, attrs, "ui-user", true)); /* no webhooks */
        json_decref(attrs);
        json_array_append(ids, json_object_get(ent, "id"));
    }
    httpd_respond_json(req, 200, json_pack("{s:o}", "ids", ids));
}

static void on_notifications(struct httpd_req *req, void *ud)
{
    httpd_respond_json(req, 200, json_deep_copy(((struct espo_sim *)ud)->notifications));
}

static void on_webhooks(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *list = json_array();
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks; i++) {
        const struct hook *h = e->hooks[i];
        if (h->deleted)
            continue;
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "id", h->id, "event",
                            h->event, "url", h->url, "skipOwn", h->skip_own, "queued",
                            (json_int_t)(json_array_size(h->queue) + h->batch_n), "posts",
                            (json_int_t)h->posts, "delivered", (json_int_t)h->delivered, "retried",
                            (json_int_t)h->retried, "dropped", (json_int_t)h->dropped, "lastStatus",
                            (json_int_t)h->last_status));
    }
    bool paused = e->paused;
    pthread_mutex_unlock(&e->mu);
    httpd_respond_json(req, 200, json_pack("{s:o,s:b}", "webhooks", list, "paused", paused));
}

static void set_paused(struct espo_sim *e, struct httpd_req *req, bool paused)
{
    pthread_mutex_lock(&e->mu);
    e->paused = paused;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    httpd_respond_json(req, 200, json_pack("{s:b}", "paused", paused));
}

static void on_pause(struct httpd_req *req, void *ud)
{
    set_paused(ud, req, true);
}

static void on_resume(struct httpd_req *req, void *ud)
{
    set_paused(ud, req, false);
}

static void on_state_all(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *list = json_array();
    const char *id;
    json_t *ent;
    json_object_foreach(e->entities, id, ent) json_array_append_new(list, json_deep_copy(ent));
    httpd_respond_json(req, 200, list);
}

static void on_state_one(struct httpd_req *req, void *ud)
{
    json_t *ent = entity_param(ud, req);
    if (ent)
        httpd_respond_json(req, 200, json_deep_copy(ent));
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void espo_reset(void *ud)
{
    struct espo_sim *e = ud;
    json_object_clear(e->entities);
    json_array_clear(e->notifications);
    e->next_id = 0;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks; i++) {
        e->hooks[i]->deleted = true;
        json_array_clear(e->hooks[i]->queue);
    }
    e->paused = false;
    pthread_mutex_unlock(&e->mu);
}

static void espo_stop(void *ud)
{
    struct espo_sim *e = ud;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->thread_started)
        pthread_join(e->thread, NULL);
    e->thread_started = false;
}

static void espo_free(struct espo_sim *e)
{
    if (!e)
        return;
    espo_stop(e);
    for (size_t i = 0; i < e->nhooks; i++) {
        json_decref(e->hooks[i]->queue);
        free(e->hooks[i]->batch);
        free(e->hooks[i]);
    }
    free(e->hooks);
    json_decref(e->entities);
    json_decref(e->notifications);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

static const struct sim_route_def api_routes[] = {
    {"GET", ROUTE_USER, on_app_user},
    {"GET", ROUTE_ENTITIES, on_list},
    {"POST", ROUTE_ENTITIES, on_post},
    {"GET", ROUTE_ENTITY, on_get},
    {"PUT", ROUTE_ENTITY, on_put},
    {"DELETE", ROUTE_ENTITY, on_delete},
    {"POST", ROUTE_NOTIFICATION, on_notification},
    {"POST", ROUTE_WEBHOOK, on_webhook_register},
};

static const struct sim_route_def admin_routes[] = {
    {"POST", "/_sim/ui/CBeteiligte", on_ui_create},
    {"PUT", "/_sim/ui/CBeteiligte/{id}", on_ui_update},
    {"DELETE", "/_sim/ui/CBeteiligte/{id}", on_ui_delete},
    {"POST", "/_sim/seed", on_seed},
    {"GET", "/_sim/notifications", on_notifications},
    {"GET", "/_sim/webhooks", on_webhooks},
    {"POST", "/_sim/webhooks/pause", on_pause},
    {"POST", "/_sim/webhooks/resume", on_resume},
    {"GET", "/_sim/state/CBeteiligte", on_state_all},
    {"GET", "/_sim/state/CBeteiligte/{id}", on_state_one},
};

int main(int argc, char **argv)
{
    struct sim_opts opts = {.port = 0, .seed = 1};
    struct espo_conf conf = {.api_key = "dev-espocrm-key",
                             .sync_user = "sync-user",
                             .webhook_retry_ms = 600000,
                             .webhook_batch_ms = 20};
    const struct sim_opt extra[] = {
        {"api-key", SIM_OPT_STR, &conf.api_key, "the sync user's API key (X-Api-Key)"},
        {"sync-user-id", SIM_OPT_STR, &conf.sync_user, "id of the sync user (the API's user)"},
        {"webhook-retry-ms", SIM_OPT_INT, &conf.webhook_retry_ms,
         "pause before a failed webhook batch is retried"},
        {"webhook-batch-ms", SIM_OPT_INT, &conf.webhook_batch_ms,
         "how long events gather before a batch is sent"},
    };
    sim_parse_args(argc, argv, PROG,
                   "Simulates the EspoCRM REST API (SPEC §7.1, §8.1) in memory: CBeteiligte with\n"
                   "the save rules and formula, optimistic concurrency, list queries,\n"
                   "notifications and signed webhooks with EspoCRM's retry rules.",
                   &opts, extra, sizeof extra / sizeof extra[0]);
    uv_loop_t loop;
    int rc = 1;
    struct espo_sim *e = calloc(1, sizeof *e);
    if (!e || uv_loop_init(&loop) != 0) {
        fprintf(stderr, PROG ": out of memory\n");
        free(e);
        return 1;
    }
    e->conf = conf;
    e->entities = json_object();
    e->notifications = json_array();
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    httpc_global_init();
    if (!(e->sim = sim_new(&loop, &opts, espo_reset, e)) ||
        sim_register_routes(e->sim, api_routes, sizeof api_routes / sizeof api_routes[0],
                            admin_routes, sizeof admin_routes / sizeof admin_routes[0], e) != 0 ||
        pthread_create(&e->thread, NULL, delivery_thread, e) != 0) {
        log_error(PROG ": cannot set up the server");
        goto out;
    }
    e->thread_started = true;
    sim_set_stop(e->sim, espo_stop, e);
    rc = sim_run(e->sim);
out:
    espo_stop(e);
    sim_free(e->sim);
    espo_free(e);
    uv_loop_close(&loop);
    return rc;
}
