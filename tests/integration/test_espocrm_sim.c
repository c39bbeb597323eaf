/* test_espocrm_sim.c: espocrm-sim against SPEC §7.1 and §8.1, over real HTTP: auth, the save
 * rules and the formula, optimistic concurrency, list queries (also through our own client,
 * common/espo.c), notifications, stats, and webhooks (signature, record shapes, skipOwn, batches
 * of 50, EspoCRM's retry rules) received by an HTTP server inside the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "espo.h"
#include "harness.h"
#include "httpd.h"
#include "httpd_thread.h"

#define KEY "X-Api-Key: dev-espocrm-key"

static struct th_sim g_sim;

/* ---- a webhook receiver on its own loop thread ------------------------------------------- */

struct receiver {
    struct httpd_thread *thread;
    int port;
    pthread_mutex_t mu;
    int status;    /* what to answer */
    int fail_next; /* answer 503 to this many posts first */
    json_t *posts; /* [{"raw": "...", "signature": "..."}] */
};

static struct receiver g_rx;

static void on_hook(struct httpd_req *req, void *ud)
{
    struct receiver *rx = ud;
    size_t len;
    const char *body = httpd_req_body(req, &len);
    const char *sig = httpd_req_header(req, "X-Signature");
    pthread_mutex_lock(&rx->mu);
    json_array_append_new(rx->posts,
                          json_pack("{s:s%,s:s}", "raw", body, len, "signature", sig ? sig : ""));
    int status = rx->fail_next > 0 ? 503 : rx->status;
    if (rx->fail_next > 0)
        rx->fail_next--;
    pthread_mutex_unlock(&rx->mu);
    httpd_respond_json(req, status, NULL);
}

static int rx_routes(struct httpd *srv, void *ud)
{
    return httpd_route(srv, "POST", "/hook", on_hook, ud, 0);
}

static void rx_start(struct receiver *rx)
{
    char err[128];
    pthread_mutex_init(&rx->mu, NULL);
    rx->posts = json_array();
    rx->status = 200;
    rx->thread = httpd_thread_start("127.0.0.1:0", NULL, rx_routes, rx, &rx->port, err, sizeof err);
    assert_non_null(rx->thread);
}

static void rx_stop(struct receiver *rx)
{
    httpd_thread_stop(rx->thread);
    json_decref(rx->posts);
    pthread_mutex_destroy(&rx->mu);
}

static void rx_reset(int status)
{
    pthread_mutex_lock(&g_rx.mu);
    json_array_clear(g_rx.posts);
    g_rx.status = status;
    g_rx.fail_next = 0;
    pthread_mutex_unlock(&g_rx.mu);
}

static size_t rx_count(void)
{
    pthread_mutex_lock(&g_rx.mu);
    size_t n = json_array_size(g_rx.posts);
    pthread_mutex_unlock(&g_rx.mu);
    return n;
}

/* The i-th post's body as JSON (new reference) and its signature into sig. */
static json_t *rx_post(size_t i, char *sig, size_t siglen, const char **raw_out, char *raw,
                       size_t rawlen)
{
    pthread_mutex_lock(&g_rx.mu);
    json_t *p = json_array_get(g_rx.posts, i);
    snprintf(sig, siglen, "%s", json_string_value(json_object_get(p, "signature")));
    snprintf(raw, rawlen, "%s", json_string_value(json_object_get(p, "raw")));
    pthread_mutex_unlock(&g_rx.mu);
    if (raw_out)
        *raw_out = raw;
    return json_loads(raw, 0, NULL);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--webhook-retry-ms", "100", "--webhook-batch-ms", "10", NULL};
    if (th_sim_start(&g_sim, "espocrm-sim", args) != 0)
        return -1;
    rx_start(&g_rx);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rx_stop(&g_rx);
    return th_sim_stop(&g_sim) == 0 ? 0 : -1;
}

static int reset(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "%s/_sim/reset", g_sim.url);
    rx_reset(200);
    return th_http("POST", url, NULL, NULL, NULL) == 200 ? 0 : -1;
}

static long call(const char *method, const char *path, const char *const *headers, const char *body,
                 json_t **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", g_sim.url, path);
    return th_http(method, url, headers, body, out);
}

static const char *const api[] = {KEY, NULL};

/* Creates an entity as a UI user; its id into id. */
static void ui_create(const char *body, char *id, size_t len)
{
    json_t *out = NULL;
    assert_int_equal(call("POST", "/_sim/ui/CBeteiligte", NULL, body, &out), 200);
    snprintf(id, len, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
}

static json_t *get_entity(const char *id)
{
    char path[128];
    json_t *out = NULL;
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    assert_int_equal(call("GET", path, api, NULL, &out), 200);
    return out;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(null)";
}

static void register_hook(const char *event, bool skip_own, char *secret, size_t len, char *id,
                          size_t idlen)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"event\":\"CBeteiligte.%s\",\"url\":\"http://127.0.0.1:%d/hook\",\"skipOwn\":%s}",
             event, g_rx.port, skip_own ? "true" : "false");
    json_t *out = NULL;
    assert_int_equal(call("POST", "/api/v1/Webhook", api, body, &out), 200);
    snprintf(secret, len, "%s", str(out, "secretKey"));
    snprintf(id, idlen, "%s", str(out, "id"));
    json_decref(out);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_auth_and_app_user(void **state)
{
    (void)state;
    const char *wrong[] = {"X-Api-Key: nope", NULL};
    assert_int_equal(call("GET", "/api/v1/App/user", NULL, NULL, NULL), 401);
    assert_int_equal(call("GET", "/api/v1/App/user", wrong, NULL, NULL), 401);
    json_t *out = NULL;
    assert_int_equal(call("GET", "/api/v1/App/user", api, NULL, &out), 200);
    assert_string_equal(str(json_object_get(out, "user"), "id"), "sync-user");
    json_decref(out);
}

static void test_save_rules_and_formula(void **state)
{
    (void)state;
    char id[64], path[128];
    ui_create("{\"name\":\"Mustermann\"}", id, sizeof id);
    json_t *e = get_entity(id);
    assert_string_equal(str(e, "syncStatus"), "pending_sync");
    assert_string_equal(str(e, "modifiedById"), "ui-user");
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), 1);
    assert_int_equal(strlen(str(e, "modifiedAt")), 19);
    json_decref(e);

    /* the sync user writes: not dirty, version bumped, modifiedById the sync user */
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    assert_int_equal(call("PUT", path, api, "{\"syncStatus\":\"clean\",\"vorname\":\"Max\"}", &e),
                     200);
    assert_string_equal(str(e, "syncStatus"), "clean");
    assert_string_equal(str(e, "modifiedById"), "sync-user");
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), 2);
    json_decref(e);

    /* a human changes a non-synced field: stays clean */
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    const char *other[] = {"X-Sim-User: anna", NULL};
    assert_int_equal(call("PUT", path, other, "{\"assignedUserId\":\"anna\"}", &e), 200);
    assert_string_equal(str(e, "syncStatus"), "clean");
    assert_string_equal(str(e, "modifiedById"), "anna");
    json_decref(e);
    /* ... and a synced one: dirty */
    assert_int_equal(call("PUT", path, NULL, "{\"vorname\":\"Moritz\"}", &e), 200);
    assert_string_equal(str(e, "syncStatus"), "dirty");
    json_decref(e);
    /* unknown id */
    assert_int_equal(call("GET", "/api/v1/CBeteiligte/nope", api, NULL, NULL), 404);
    /* create through the API needs a name */
    assert_int_equal(call("POST", "/api/v1/CBeteiligte", api, "{\"vorname\":\"x\"}", NULL), 400);
}

static void test_optimistic_concurrency(void **state)
{
    (void)state;
    char id[64], path[128], ui[128];
    ui_create("{\"name\":\"Alt\",\"vorname\":\"Eva\"}", id, sizeof id);
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    snprintf(ui, sizeof ui, "/_sim/ui/CBeteiligte/%s", id);
    /* the sync read version 1; a human edits name meanwhile (version 2) */
    assert_int_equal(call("PUT", ui, NULL, "{\"name\":\"Neu\"}", NULL), 200);
    const char *stale[] = {KEY, "X-Version-Number: 1", NULL};
    json_t *out = NULL;
    assert_int_equal(call("PUT", path, stale, "{\"name\":\"Alt\",\"syncStatus\":\"clean\"}", &out),
                     409);
    assert_string_equal(str(json_object_get(out, "fields"), "name"), "Neu");
    json_decref(out);
    json_t *e = get_entity(id);
    assert_string_equal(str(e, "name"), "Neu"); /* nothing saved */
    assert_string_equal(str(e, "syncStatus"), "dirty");
    json_decref(e);
    /* stale, but writing only values equal to the stored ones: succeeds */
    assert_int_equal(call("PUT", path, stale, "{\"name\":\"Neu\",\"vorname\":\"Eva\"}", NULL), 200);
    /* no header: no check */
    assert_int_equal(call("PUT", path, api, "{\"name\":\"Letzt\"}", NULL), 200);
}

static void test_list_queries(void **state)
{
    (void)state;
    static const char *const statuses[] = {"pending_sync", "dirty", "clean", "failed", "clean"};
    char ids[5][64];
    for (int i = 0; i < 5; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"name\":\"L%d\",\"syncStatus\":\"%s\",\"syncNextRetry\":%s}",
                 i, statuses[i], i == 3 ? "\"2026-01-01 10:00:00\"" : "null");
        json_t *out = NULL;
        assert_int_equal(call("POST", "/api/v1/CBeteiligte", api, body, &out), 200);
        snprintf(ids[i], 64, "%s", str(out, "id"));
        json_decref(out);
    }
    /* through our own client: equals, select, order, maxSize, offset */
    struct espo *c = espo_new(g_sim.url, "dev-espocrm-key", 5000, NULL);
    json_t *where = json_loads(
        "[{\"type\":\"in\",\"attribute\":\"syncStatus\",\"value\":[\"clean\",\"dirty\"]}]", 0,
        NULL);
    struct espo_query q = {.where = where,
                           .select = "id,syncStatus",
                           .order_by = "name",
                           .order = "desc",
                           .max_size = 2,
                           .offset = 1};
    long status = 0;
    json_t *out = NULL;
    char err[256];
    assert_int_equal(espo_list(c, &q, &status, &out, err, sizeof err), 0);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(out, "total")), 3);
    json_t *list = json_object_get(out, "list");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(str(json_array_get(list, 0), "id"), ids[2]); /* L4, [L2], [L1] */
    assert_string_equal(str(json_array_get(list, 1), "id"), ids[1]);
    assert_null(json_object_get(json_array_get(list, 0), "name")); /* select */
    json_decref(out);
    json_decref(where);
    /* or + isNull + lessThanOrEqual: failed and due, or dirty */
    where = json_loads("[{\"type\":\"or\",\"value\":[{\"type\":\"equals\",\"attribute\":"
                       "\"syncStatus\",\"value\":\"dirty\"},{\"type\":\"lessThanOrEqual\","
                       "\"attribute\":\"syncNextRetry\",\"value\":\"2026-02-01 00:00:00\"}]},"
                       "{\"type\":\"isNull\",\"attribute\":\"betnr\"}]",
                       0, NULL);
    q = (struct espo_query){.where = where};
    assert_int_equal(espo_list(c, &q, &status, &out, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "total")), 2);
    json_decref(out);
    json_decref(where);
    /* an unknown condition type is a 400 */
    where = json_loads("[{\"type\":\"like\",\"attribute\":\"name\",\"value\":\"L\"}]", 0, NULL);
    q = (struct espo_query){.where = where};
    assert_int_equal(espo_list(c, &q, &status, &out, err, sizeof err), 0);
    assert_int_equal(status, 400);
    json_decref(out);
    json_decref(where);
    espo_free(c);
}

static void test_notifications_in_order(void **state)
{
    (void)state;
    struct espo *c = espo_new(g_sim.url, "dev-espocrm-key", 5000, NULL);
    long status = 0;
    char err[128];
    assert_int_equal(espo_notify(c, "u1", "Konflikt gelöst: EspoCRM-Daten wurden übernommen",
                                 &status, err, sizeof err),
                     0);
    assert_int_equal(status, 200);
    assert_int_equal(espo_notify(c, "u2", "zweite", &status, err, sizeof err), 0);
    espo_free(c);
    json_t *out = NULL;
    assert_int_equal(call("GET", "/_sim/notifications", NULL, NULL, &out), 200);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(str(json_array_get(out, 0), "message"),
                        "Konflikt gelöst: EspoCRM-Daten wurden übernommen");
    assert_string_equal(str(json_array_get(out, 0), "userId"), "u1");
    assert_string_equal(str(json_array_get(out, 1), "message"), "zweite");
    json_decref(out);
}

static bool signature_valid(const char *hook_id, const char *secret, const char *raw,
                            const char *sig)
{
    unsigned char buf[256], mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    size_t idlen = strlen(hook_id);
    memcpy(buf, hook_id, idlen);
    buf[idlen] = ':';
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)raw, strlen(raw), mac,
         &mlen);
    memcpy(buf + idlen + 1, mac, mlen);
    char want[512];
    EVP_EncodeBlock((unsigned char *)want, buf, (int)(idlen + 1 + mlen));
    return strcmp(want, sig) == 0;
}

/* Records queued in all webhooks, -1 if the sim did not answer. */
static long queued_total(void)
{
    json_t *hooks = NULL, *h;
    size_t i;
    long n = 0;
    if (call("GET", "/_sim/webhooks", NULL, NULL, &hooks) != 200)
        n = -1;
    json_array_foreach(json_object_get(hooks, "webhooks"), i, h)
    {
        n += (long)json_integer_value(json_object_get(h, "queued"));
    }
    json_decref(hooks);
    return n;
}

static void test_webhook_signature_and_records(void **state)
{
    (void)state;
    char secret[3][64], hook[3][64];
    register_hook("create", true, secret[0], 64, hook[0], 64);
    register_hook("update", true, secret[1], 64, hook[1], 64);
    register_hook("delete", true, secret[2], 64, hook[2], 64);
    char id[64], path[128];
    ui_create("{\"name\":\"Hook\",\"vorname\":\"Eva\"}", id, sizeof id);
    bool ok;
    TH_WAIT(ok, rx_count() == 1, 10000);
    assert_true(ok);
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    assert_int_equal(call("PUT", path, NULL, "{\"vorname\":\"Erika\"}", NULL), 200);
    TH_WAIT(ok, rx_count() == 2, 10000);
    assert_true(ok);
    assert_int_equal(call("DELETE", path, NULL, NULL, NULL), 200);
    TH_WAIT(ok, rx_count() == 3, 10000);
    assert_true(ok);
    char sig[256], raw[8192];
    for (size_t i = 0; i < 3; i++) {
        json_t *body = rx_post(i, sig, sizeof sig, NULL, raw, sizeof raw);
        assert_true(signature_valid(hook[i], secret[i], raw, sig));
        assert_false(signature_valid(hook[i], "wrong", raw, sig));
        json_t *rec = json_array_get(body, 0);
        assert_string_equal(str(rec, "id"), id);
        if (i == 0) /* create: every attribute */
            assert_string_equal(str(rec, "name"), "Hook");
        if (i == 1) { /* update: id and what changed */
            assert_string_equal(str(rec, "vorname"), "Erika");
            assert_null(json_object_get(rec, "name"));
        }
        if (i == 2) /* delete: the id only */
            assert_int_equal(json_object_size(rec), 1);
        json_decref(body);
    }
    /* skipOwn: the sync user's own change sends nothing */
    char id2[64];
    ui_create("{\"name\":\"Own\"}", id2, sizeof id2);
    TH_WAIT(ok, rx_count() == 4, 10000);
    assert_true(ok);
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id2);
    assert_int_equal(call("PUT", path, api, "{\"vorname\":\"Sync\"}", NULL), 200);
    /* Nothing left in any queue (the create's delivery may still be finishing: poll), and
     * nothing more arrived: the sync user's change was never queued. */
    TH_WAIT(ok, queued_total() == 0, 10000);
    assert_true(ok);
    assert_int_equal(rx_count(), 4);
}

static void test_120_changes_arrive_as_3_posts(void **state)
{
    (void)state;
    char secret[64], hook[64];
    register_hook("create", true, secret, sizeof secret, hook, sizeof hook);
    assert_int_equal(call("POST", "/_sim/webhooks/pause", NULL, NULL, NULL), 200);
    for (int i = 0; i < 120; i++) {
        char id[64];
        ui_create("{\"name\":\"Batch\"}", id, sizeof id);
    }
    assert_int_equal(call("POST", "/_sim/webhooks/resume", NULL, NULL, NULL), 200);
    bool ok;
    TH_WAIT(ok, rx_count() == 3, 10000);
    assert_true(ok);
    char sig[256], raw[200000];
    size_t sizes[3];
    for (size_t i = 0; i < 3; i++) {
        json_t *body = rx_post(i, sig, sizeof sig, NULL, raw, sizeof raw);
        sizes[i] = json_array_size(body);
        json_decref(body);
    }
    assert_int_equal(sizes[0], 50);
    assert_int_equal(sizes[1], 50);
    assert_int_equal(sizes[2], 20);
}

/* A counter of the first registered webhook (-1 when there is none). */
static long hook_counter(const char *name)
{
    json_t *out = NULL;
    assert_int_equal(call("GET", "/_sim/webhooks", NULL, NULL, &out), 200);
    json_t *h = json_array_get(json_object_get(out, "webhooks"), 0);
    long v = h ? (long)json_integer_value(json_object_get(h, name)) : -1;
    json_decref(out);
    return v;
}

static void test_retry_rules(void **state)
{
    (void)state;
    char secret[64], hook[64], id[64];
    register_hook("create", true, secret, sizeof secret, hook, sizeof hook);
    /* 503 twice: retried (100 ms apart), delivered by the third attempt */
    rx_reset(200);
    pthread_mutex_lock(&g_rx.mu);
    g_rx.fail_next = 2;
    pthread_mutex_unlock(&g_rx.mu);
    ui_create("{\"name\":\"Retry\"}", id, sizeof id);
    bool ok;
    TH_WAIT(ok, hook_counter("delivered") == 1, 10000);
    assert_true(ok);
    assert_int_equal(hook_counter("retried"), 2);
    assert_int_equal(rx_count(), 3);
    /* 400: dropped at once, not retried */
    rx_reset(400);
    ui_create("{\"name\":\"Drop\"}", id, sizeof id);
    TH_WAIT(ok, hook_counter("dropped") == 1, 10000);
    assert_true(ok);
    assert_int_equal(rx_count(), 1);
    /* 410: the webhook is deleted */
    rx_reset(410);
    ui_create("{\"name\":\"Gone\"}", id, sizeof id);
    TH_WAIT(ok, hook_counter("posts") == -1, 10000);
    assert_true(ok);
}

static void test_seed_and_stats(void **state)
{
    (void)state;
    json_t *out = NULL;
    assert_int_equal(call("POST", "/_sim/seed", NULL, "{\"count\":3}", &out), 200);
    char first[64];
    snprintf(first, sizeof first, "%s",
             json_string_value(json_array_get(json_object_get(out, "ids"), 0)));
    json_decref(out);
    json_t *e = get_entity(first);
    assert_string_equal(str(e, "syncStatus"), "pending_sync");
    static const char *const fields[] = {"name",        "vorname",     "rechtsform",
                                         "anrede",      "bAnrede",     "zusatz",
                                         "dateOfBirth", "phoneNumber", "emailAddress"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        assert_true(strlen(str(e, fields[i])) > 0);
    json_decref(e);
    assert_int_equal(call("GET", "/api/v1/CBeteiligte/nope", api, NULL, NULL), 404);
    assert_int_equal(call("GET", "/api/v1/App/user", NULL, NULL, NULL), 401);
    /* stats: exactly the API calls since the reset (GET entity 200, GET 404, App/user 401) */
    assert_int_equal(call("GET", "/_sim/stats", NULL, NULL, &out), 200);
    json_t *calls = json_object_get(out, "calls");
    assert_int_equal(json_array_size(calls), 3);
    json_t *c;
    size_t i;
    int total = 0;
    json_array_foreach(calls, i, c)
    {
        assert_int_equal(strncmp(str(c, "route"), "/api/v1/", 8), 0);
        total += (int)json_integer_value(json_object_get(c, "count"));
        if (json_integer_value(json_object_get(c, "status")) == 404)
            assert_string_equal(str(c, "route"), "/api/v1/CBeteiligte/{id}");
    }
    assert_int_equal(total, 3);
    json_decref(out);
}

static void test_command_line(void **state)
{
    (void)state;
    char bin[512], out[8192];
    const char *help[] = {th_bin("espocrm-sim", bin, sizeof bin), "--help", NULL};
    assert_int_equal(th_run(help, NULL, out, sizeof out, 10000), 0);
    assert_non_null(strstr(out, "--webhook-retry-ms"));
    const char *bad[] = {bin, "--bogus", NULL};
    assert_int_equal(th_run(bad, NULL, out, sizeof out, 10000), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_auth_and_app_user, reset),
        cmocka_unit_test_setup(test_save_rules_and_formula, reset),
        cmocka_unit_test_setup(test_optimistic_concurrency, reset),
        cmocka_unit_test_setup(test_list_queries, reset),
        cmocka_unit_test_setup(test_notifications_in_order, reset),
        cmocka_unit_test_setup(test_webhook_signature_and_records, reset),
        cmocka_unit_test_setup(test_120_changes_arrive_as_3_posts, reset),
        cmocka_unit_test_setup(test_retry_rules, reset),
        cmocka_unit_test_setup(test_seed_and_stats, reset),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
