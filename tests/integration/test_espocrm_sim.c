/* test_espocrm_sim.c: espocrm-sim against SPEC §7.1 and §8.1, over real HTTP: auth (API key and
 * Basic), phone and e-mail rules, validation, the save rules and the formula, optimistic
 * concurrency, list queries (also through our own client, common/espo.c), notifications, stats,
 * the options (--template, --espocrm-version, --message-permission, --drop-field,
 * --webhook-job-ms, --webhook-job-batch), and webhooks (both signatures, record shapes, skipOwn,
 * job runs, EspoCRM's retry rules) received by an HTTP server inside the test. The recorded
 * answers themselves are replayed by tests/contract/espocrm_contract.py. */
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
#include "httpc.h"
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
    json_t *posts; /* [{"raw": "...", "signature": "...", "xsignature": "..."}] */
};

static struct receiver g_rx;

static void on_hook(struct httpd_req *req, void *ud)
{
    struct receiver *rx = ud;
    size_t len;
    const char *body = httpd_req_body(req, &len);
    const char *sig = httpd_req_header(req, "Signature");
    const char *xsig = httpd_req_header(req, "X-Signature");
    pthread_mutex_lock(&rx->mu);
    json_array_append_new(rx->posts, json_pack("{s:s%,s:s,s:s}", "raw", body, len, "signature",
                                               sig ? sig : "", "xsignature", xsig ? xsig : ""));
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

/* The i-th post's body as JSON (new reference) and its X-Signature (xsig = false: Signature)
 * into sig. */
static json_t *rx_post_sig(size_t i, bool xsig, char *sig, size_t siglen, const char **raw_out,
                           char *raw, size_t rawlen)
{
    pthread_mutex_lock(&g_rx.mu);
    json_t *p = json_array_get(g_rx.posts, i);
    snprintf(sig, siglen, "%s",
             json_string_value(json_object_get(p, xsig ? "xsignature" : "signature")));
    snprintf(raw, rawlen, "%s", json_string_value(json_object_get(p, "raw")));
    pthread_mutex_unlock(&g_rx.mu);
    if (raw_out)
        *raw_out = raw;
    return json_loads(raw, 0, NULL);
}

static json_t *rx_post(size_t i, char *sig, size_t siglen, const char **raw_out, char *raw,
                       size_t rawlen)
{
    return rx_post_sig(i, true, sig, siglen, raw_out, raw, rawlen);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--webhook-retry-ms", "100", "--webhook-job-ms", "10", NULL};
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

static long call_at(const struct th_sim *sim, const char *method, const char *path,
                    const char *const *headers, const char *body, json_t **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", sim->url, path);
    return th_http(method, url, headers, body, out);
}

static long call(const char *method, const char *path, const char *const *headers, const char *body,
                 json_t **out)
{
    return call_at(&g_sim, method, path, headers, body, out);
}

/* One exchange keeping what th_http drops: X-Status-Reason (into reason, "" when none), the
 * body's length and text (into g_body, any JSON value). Returns the status. */
static char g_body[256];

static long call_raw(const char *method, const char *path, const char *const *headers,
                     const char *body, char *reason, size_t rlen, size_t *body_len)
{
    char url[512], err[256];
    snprintf(url, sizeof url, "%s%s", g_sim.url, path);
    struct httpc *c = httpc_new(NULL);
    struct httpc_resp r;
    long status = 0;
    assert_non_null(c);
    if (httpc_request(c, method, url, headers, body, body ? strlen(body) : 0, &r, err,
                      sizeof err) == 0) {
        status = r.status;
        snprintf(reason, rlen, "%s", r.reason ? r.reason : "");
        *body_len = r.body_len;
        snprintf(g_body, sizeof g_body, "%s", r.body);
        httpc_resp_clear(&r);
    }
    httpc_free(c);
    return status;
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

/* Creates an entity as the sync user; its id into id. */
static void api_create(const char *body, char *id, size_t len)
{
    json_t *out = NULL;
    assert_int_equal(call("POST", "/api/v1/CBeteiligte", api, body, &out), 200);
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

static void register_hook_at(const struct th_sim *sim, const char *event, bool skip_own,
                             char *secret, size_t len, char *id, size_t idlen)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"event\":\"CBeteiligte.%s\",\"url\":\"http://127.0.0.1:%d/hook\",\"skipOwn\":%s}",
             event, g_rx.port, skip_own ? "true" : "false");
    json_t *out = NULL;
    assert_int_equal(call_at(sim, "POST", "/api/v1/Webhook", api, body, &out), 201); /* 07 */
    snprintf(secret, len, "%s", str(out, "secretKey"));
    snprintf(id, idlen, "%s", str(out, "id"));
    json_decref(out);
}

static void register_hook(const char *event, bool skip_own, char *secret, size_t len, char *id,
                          size_t idlen)
{
    register_hook_at(&g_sim, event, skip_own, secret, len, id, idlen);
}

/* A second simulator with other options, for the option tests. */
static void sim2_start(struct th_sim *s, const char *const *args)
{
    assert_int_equal(th_sim_start(s, "espocrm-sim", args), 0);
}

static void sim2_stop(struct th_sim *s)
{
    assert_int_equal(th_sim_stop(s), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_auth_and_app_user(void **state)
{
    (void)state;
    const char *wrong[] = {"X-Api-Key: nope", NULL};
    char reason[256];
    size_t len = 1;
    /* 01 steps 1-3: 401 with an empty body */
    assert_int_equal(call_raw("GET", "/api/v1/App/user", NULL, NULL, reason, sizeof reason, &len),
                     401);
    assert_int_equal(len, 0);
    assert_int_equal(call_raw("GET", "/api/v1/App/user", wrong, NULL, reason, sizeof reason, &len),
                     401);
    assert_int_equal(len, 0);
    json_t *out = NULL;
    assert_int_equal(call("GET", "/api/v1/App/user", api, NULL, &out), 200);
    assert_string_equal(str(json_object_get(out, "user"), "id"), "sync-user");
    assert_string_equal(str(json_object_get(out, "user"), "type"), "api");
    assert_string_equal(str(json_object_get(out, "acl"), "messagePermission"), "all");
    assert_string_equal(
        str(json_object_get(json_object_get(json_object_get(out, "acl"), "table"), "CBeteiligte"),
            "edit"),
        "all");
    json_decref(out);
}

static void test_basic_auth(void **state)
{
    (void)state;
    /* admin:admin and ui:pw (the recordings' users): an admin and a regular user */
    const char *admin[] = {"Authorization: Basic YWRtaW46YWRtaW4=", NULL};
    const char *ui[] = {"Authorization: Basic dWk6cHc=", NULL};
    const char *broken[] = {"Authorization: Basic !!!", NULL};
    json_t *out = NULL;
    assert_int_equal(call("GET", "/api/v1/App/user", admin, NULL, &out), 200);
    assert_string_equal(str(json_object_get(out, "user"), "id"), "admin");
    assert_string_equal(str(json_object_get(out, "user"), "type"), "admin");
    json_decref(out);
    assert_int_equal(call("GET", "/api/v1/App/user", ui, NULL, &out), 200);
    assert_string_equal(str(json_object_get(out, "user"), "id"), "ui");
    json_decref(out);
    assert_int_equal(call("GET", "/api/v1/App/user", broken, NULL, NULL), 401);
    /* a regular user writes like X-Sim-User on /_sim/ui: modifiedById ui, the formula fires */
    char id[64], path[128];
    api_create("{\"name\":\"Basic\"}", id, sizeof id);
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    assert_int_equal(call("PUT", path, ui, "{\"vorname\":\"Uwe\"}", &out), 200);
    assert_string_equal(str(out, "modifiedById"), "ui");
    assert_string_equal(str(out, "syncStatus"), "dirty");
    json_decref(out);
    /* a regular user may not register webhooks (07 step 6) */
    assert_int_equal(call("POST", "/api/v1/Webhook", ui,
                          "{\"event\":\"CBeteiligte.update\",\"url\":\"http://127.0.0.1:1/x\"}",
                          NULL),
                     403);
}

static void test_save_rules_and_formula(void **state)
{
    (void)state;
    char id[64], path[128];
    ui_create("{\"name\":\"Mustermann\"}", id, sizeof id);
    json_t *e = get_entity(id);
    assert_string_equal(str(e, "syncStatus"), "pending_sync");
    assert_true(json_is_null(json_object_get(e, "modifiedById"))); /* after a create (02, 04) */
    assert_string_equal(str(e, "createdById"), "ui-user");
    assert_string_equal(str(e, "assignedUserId"), "ui-user"); /* the creator (07 step 10) */
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
    /* a save that changes nothing still counts (08 steps 2, 4) */
    assert_int_equal(call("PUT", path, api, "{}", &e), 200);
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), 3);
    json_decref(e);

    /* a human changes a non-synced field: stays clean */
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    const char *other[] = {"X-Sim-User: anna", NULL};
    assert_int_equal(call("PUT", path, other, "{\"description\":\"x\"}", &e), 200);
    assert_string_equal(str(e, "syncStatus"), "clean");
    assert_string_equal(str(e, "modifiedById"), "anna");
    json_decref(e);
    /* ... and a synced one: dirty */
    assert_int_equal(call("PUT", path, NULL, "{\"vorname\":\"Moritz\"}", &e), 200);
    assert_string_equal(str(e, "syncStatus"), "dirty");
    json_decref(e);
    /* unknown attributes are ignored (03 step 13) */
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    assert_int_equal(call("PUT", path, api, "{\"noSuchField\":1}", &e), 200);
    assert_null(json_object_get(e, "noSuchField"));
    json_decref(e);
    /* unknown id: 404 with an empty body and the reason (09) */
    char reason[256];
    size_t len = 1;
    assert_int_equal(
        call_raw("GET", "/api/v1/CBeteiligte/nope", api, NULL, reason, sizeof reason, &len), 404);
    assert_string_equal(reason, "Record nope does not exist.");
    assert_int_equal(len, 0);
    assert_int_equal(
        call_raw("PUT", "/api/v1/CBeteiligte/nope", api, "{}", reason, sizeof reason, &len), 404);
    assert_string_equal(reason, "Record nope not found.");
    /* the API user may assign only itself (06 step 13) */
    assert_int_equal(call("PUT", path, api, "{\"assignedUserId\":\"anna\"}", NULL), 403);
    /* create through the API needs a name */
    assert_int_equal(call("POST", "/api/v1/CBeteiligte", api, "{\"vorname\":\"x\"}", NULL), 400);
}

static void test_phone_and_email_rules(void **state)
{
    (void)state;
    char reason[256], id[64], path[128];
    size_t len;
    /* a national number is a 400 for the whole request (02 steps 0, 1) */
    assert_int_equal(
        call_raw("POST", "/api/v1/CBeteiligte", api,
                 "{\"name\":\"P\",\"phoneNumberData\":[{\"phoneNumber\":\"0511/12345\","
                 "\"type\":\"Office\"}]}",
                 reason, sizeof reason, &len),
        400);
    assert_string_equal(reason, "Field validation failure; entityType: CBeteiligte, field: "
                                "phoneNumber, type: valid.");
    /* sanitised to E.164, default type, primary first, flags and lower (02 steps 2, 4) */
    json_t *out = NULL;
    assert_int_equal(
        call("POST", "/api/v1/CBeteiligte", api,
             "{\"name\":\"P\",\"phoneNumberData\":[{\"phoneNumber\":\"+49 511 55555\"},"
             "{\"phoneNumber\":\"+49 (511) 98-765\",\"primary\":true}],"
             "\"emailAddressData\":[{\"emailAddress\":\"Max@Example.COM\"}]}",
             &out),
        200);
    assert_string_equal(str(out, "phoneNumber"), "+4951198765");
    assert_string_equal(str(out, "emailAddress"), "max@example.com");
    snprintf(id, sizeof id, "%s", str(out, "id"));
    json_decref(out);
    json_t *e = get_entity(id);
    json_t *p0 = json_array_get(json_object_get(e, "phoneNumberData"), 0);
    json_t *p1 = json_array_get(json_object_get(e, "phoneNumberData"), 1);
    assert_string_equal(str(p0, "phoneNumber"), "+4951198765");
    assert_true(json_is_true(json_object_get(p0, "primary")));
    assert_string_equal(str(p1, "type"), "Office");
    assert_true(json_is_false(json_object_get(p1, "optOut")));
    json_t *m0 = json_array_get(json_object_get(e, "emailAddressData"), 0);
    assert_string_equal(str(m0, "lower"), "max@example.com");
    assert_string_equal(str(e, "emailAddress"), "Max@Example.COM");
    json_decref(e);
    /* Home is not a Company type; 11 numbers; a bad e-mail (03 steps 3, 6, 8) */
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    assert_int_equal(call_raw("PUT", path, api,
                              "{\"phoneNumberData\":[{\"phoneNumber\":\"+49 30 1\",\"type\":"
                              "\"Home\"}]}",
                              reason, sizeof reason, &len),
                     400);
    char eleven[2048] = "{\"phoneNumberData\":[";
    for (int i = 0; i < 11; i++)
        snprintf(eleven + strlen(eleven), sizeof eleven - strlen(eleven),
                 "%s{\"phoneNumber\":\"+49 511 1234%d\"}", i ? "," : "", i);
    strcat(eleven, "]}");
    assert_int_equal(call_raw("PUT", path, api, eleven, reason, sizeof reason, &len), 400);
    assert_string_equal(reason, "Field validation failure; entityType: CBeteiligte, field: "
                                "phoneNumber, type: maxCount.");
    assert_int_equal(call("PUT", path, api,
                          "{\"emailAddressData\":[{\"emailAddress\":\"not-an-email\"}]}", &out),
                     400);
    assert_string_equal(
        str(json_object_get(json_object_get(out, "messageTranslation"), "data"), "type"),
        "emailAddress");
    json_decref(out);
    /* maxLength, enum, required, pattern (03 steps 9-15) */
    static const char *const bad[][2] = {
        {"{\"vorname\":\"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"}", "maxLength"},
        {"{\"syncStatus\":\"bogus\"}", "valid"},
        {"{\"name\":\"\"}", "required"},
        {"{\"name\":\"Bad <name>\"}", "pattern"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(call("PUT", path, api, bad[i][0], &out), 400);
        assert_string_equal(
            str(json_object_get(json_object_get(out, "messageTranslation"), "data"), "type"),
            bad[i][1]);
        json_decref(out);
    }
    /* the PUT answer echoes the list as sent and keeps the derived flags stale (03 step 16) */
    assert_int_equal(call("PUT", path, api,
                          "{\"phoneNumberData\":[{\"phoneNumber\":\"+49 30 1234567\",\"type\":"
                          "\"Mobile\",\"primary\":true,\"optOut\":true}]}",
                          &out),
                     200);
    json_t *echo = json_array_get(json_object_get(out, "phoneNumberData"), 0);
    assert_string_equal(str(echo, "phoneNumber"), "+49301234567");
    assert_null(json_object_get(echo, "invalid"));
    assert_true(json_is_false(json_object_get(out, "phoneNumberIsOptedOut")));
    json_decref(out);
    e = get_entity(id);
    assert_true(json_is_true(json_object_get(e, "phoneNumberIsOptedOut")));
    json_decref(e);
}

static void test_optimistic_concurrency(void **state)
{
    (void)state;
    char id[64], path[128], ui[128];
    ui_create("{\"name\":\"Alt\",\"vorname\":\"Eva\",\"phoneNumberData\":[{\"phoneNumber\":"
              "\"+49 511 111\"}]}",
              id, sizeof id);
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    snprintf(ui, sizeof ui, "/_sim/ui/CBeteiligte/%s", id);
    /* the sync read version 1; a human edits name meanwhile (version 2) */
    assert_int_equal(call("PUT", ui, NULL, "{\"name\":\"Neu\"}", NULL), 200);
    const char *stale[] = {KEY, "X-Version-Number: 1", NULL};
    json_t *out = NULL;
    assert_int_equal(call("PUT", path, stale, "{\"name\":\"Alt\",\"syncStatus\":\"clean\"}", &out),
                     409);
    /* 04: {"values":{<stored values of the conflicting attributes>},"versionNumber":N} */
    assert_string_equal(str(json_object_get(out, "values"), "name"), "Neu");
    assert_string_equal(str(json_object_get(out, "values"), "syncStatus"), "dirty");
    assert_int_equal(json_integer_value(json_object_get(out, "versionNumber")), 2);
    json_decref(out);
    json_t *e = get_entity(id);
    assert_string_equal(str(e, "name"), "Neu"); /* nothing saved */
    assert_string_equal(str(e, "syncStatus"), "dirty");
    json_decref(e);
    /* status-only and phone-list writes conflict too (04 steps 12, 13) */
    assert_int_equal(call("PUT", path, stale, "{\"syncStatus\":\"failed\"}", NULL), 409);
    assert_int_equal(
        call("PUT", path, stale, "{\"phoneNumberData\":[{\"phoneNumber\":\"+49 511 222\"}]}", &out),
        409);
    assert_string_equal(str(json_object_get(out, "values"), "phoneNumber"), "+49511111");
    json_decref(out);
    /* a non-numeric header counts as 0 (04 step 17) */
    const char *garbage[] = {KEY, "X-Version-Number: abc", NULL};
    assert_int_equal(call("PUT", path, garbage, "{\"vorname\":\"Eve\"}", NULL), 409);
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
        /* the formula sets pending_sync on creation (02 step 2): the status is a second write */
        char body[256], path[128];
        snprintf(body, sizeof body, "{\"name\":\"L%d\"}", i);
        api_create(body, ids[i], 64);
        snprintf(body, sizeof body, "{\"syncStatus\":\"%s\",\"syncNextRetry\":%s}", statuses[i],
                 i == 3 ? "\"2026-01-01 10:00:00\"" : "null");
        snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", ids[i]);
        assert_int_equal(call("PUT", path, api, body, NULL), 200);
    }
    /* through our own client: in, select, order, maxSize, offset */
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
    json_t *item = json_array_get(list, 0);
    assert_null(json_object_get(item, "vorname")); /* select: id, selected, order, ACL ones */
    assert_string_equal(str(item, "name"), "L2");
    assert_non_null(json_object_get(item, "createdById"));
    json_decref(out);
    json_decref(where);
    /* or + isNull + lessThanOrEquals: failed and due, or dirty */
    where = json_loads("[{\"type\":\"or\",\"value\":[{\"type\":\"equals\",\"attribute\":"
                       "\"syncStatus\",\"value\":\"dirty\"},{\"type\":\"lessThanOrEquals\","
                       "\"attribute\":\"syncNextRetry\",\"value\":\"2026-02-01 00:00:00\"}]},"
                       "{\"type\":\"isNull\",\"attribute\":\"betnr\"}]",
                       0, NULL);
    q = (struct espo_query){.where = where};
    assert_int_equal(espo_list(c, &q, &status, &out, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "total")), 2);
    /* no orderBy: createdAt desc, ties by id (05 step 22) */
    assert_string_equal(str(json_array_get(json_object_get(out, "list"), 0), "id"), ids[3]);
    json_decref(out);
    json_decref(where);
    /* the SPEC's old spelling lessThanOrEqual, an unknown type, an unknown attribute: 400 */
    static const char *const bad[] = {
        "[{\"type\":\"lessThanOrEqual\",\"attribute\":\"syncNextRetry\",\"value\":\"x\"}]",
        "[{\"type\":\"like\",\"attribute\":\"name\",\"value\":\"L\"}]",
        "[{\"type\":\"equals\",\"attribute\":\"noSuchAttr\",\"value\":\"x\"}]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        where = json_loads(bad[i], 0, NULL);
        q = (struct espo_query){.where = where};
        assert_int_equal(espo_list(c, &q, &status, &out, err, sizeof err), 0);
        assert_int_equal(status, 400);
        json_decref(out);
        json_decref(where);
    }
    assert_string_equal(err, "Not existing attribute 'noSuchAttr' in where.");
    /* maxSize over 200: 403 (05 step 21) */
    q = (struct espo_query){.max_size = 201};
    assert_int_equal(espo_list(c, &q, &status, &out, err, sizeof err), 0);
    assert_int_equal(status, 403);
    json_decref(out);
    espo_free(c);
    /* X-No-Total: total -1 (05 step 30) */
    const char *no_total[] = {KEY, "X-No-Total: true", NULL};
    assert_int_equal(call("GET", "/api/v1/CBeteiligte?select=id&maxSize=2", no_total, NULL, &out),
                     200);
    assert_int_equal(json_integer_value(json_object_get(out, "total")), -1);
    assert_int_equal(json_array_size(json_object_get(out, "list")), 2);
    json_decref(out);
}

static void test_notifications_in_order(void **state)
{
    (void)state;
    /* a direct message needs an existing user: u1 and u2 are made known */
    assert_int_equal(call("POST", "/_sim/users", NULL, "{\"id\":\"u1\"}", NULL), 200);
    assert_int_equal(call("POST", "/_sim/users", NULL, "{\"id\":\"u2\"}", NULL), 200);
    struct espo *c = espo_new(g_sim.url, "dev-espocrm-key", 5000, NULL);
    long status = 0;
    char err[128];
    assert_int_equal(espo_notify(c, "u1", "Konflikt gelöst: EspoCRM-Daten wurden übernommen",
                                 &status, err, sizeof err),
                     0);
    assert_int_equal(status, 200);
    assert_int_equal(espo_notify(c, "u2", "zweite", &status, err, sizeof err), 0);
    assert_int_equal(status, 200);
    /* an unknown user: 403 (11 step 2) */
    assert_int_equal(espo_notify(c, "nobody-here", "x", &status, err, sizeof err), 0);
    assert_int_equal(status, 403);
    espo_free(c);
    /* POST /Notification: 403 for the API user, fine for an admin (06 steps 2, 3) */
    const char *admin[] = {"Authorization: Basic YWRtaW46YWRtaW4=", NULL};
    const char *body = "{\"type\":\"Message\",\"message\":\"vom Admin\",\"userId\":\"u1\"}";
    assert_int_equal(call("POST", "/api/v1/Notification", api, body, NULL), 403);
    assert_int_equal(call("POST", "/api/v1/Notification", admin, body, NULL), 200);
    json_t *out = NULL;
    assert_int_equal(call("GET", "/_sim/notifications", NULL, NULL, &out), 200);
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(str(json_array_get(out, 0), "message"),
                        "Konflikt gelöst: EspoCRM-Daten wurden übernommen");
    assert_string_equal(str(json_array_get(out, 0), "userId"), "u1");
    assert_string_equal(str(json_array_get(out, 0), "via"), "note");
    assert_string_equal(str(json_array_get(out, 1), "message"), "zweite");
    assert_string_equal(str(json_array_get(out, 2), "via"), "notification");
    json_decref(out);
    /* u1 reads its notifications: newest first, then read (06 steps 4-8) */
    const char *u1[] = {"Authorization: Basic dTE6cHc=", NULL};
    char reason[128];
    size_t len;
    assert_int_equal(call_raw("GET", "/api/v1/Notification/action/notReadCount", u1, NULL, reason,
                              sizeof reason, &len),
                     200);
    assert_string_equal(g_body, "2");
    assert_int_equal(call("GET", "/api/v1/Notification?maxSize=10", u1, NULL, &out), 200);
    assert_string_equal(str(json_array_get(json_object_get(out, "list"), 0), "type"), "Message");
    assert_int_equal(json_integer_value(json_object_get(out, "total")), -2);
    json_decref(out);
    assert_int_equal(call_raw("GET", "/api/v1/Notification/action/notReadCount", u1, NULL, reason,
                              sizeof reason, &len),
                     200);
    assert_string_equal(g_body, "0");
}

static bool signature_valid(const char *hook_id, const char *secret, const char *raw,
                            const char *sig, bool hex)
{
    unsigned char buf[256], mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    size_t idlen = strlen(hook_id), n;
    memcpy(buf, hook_id, idlen);
    buf[idlen] = ':';
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)raw, strlen(raw), mac,
         &mlen);
    if (hex) {
        for (unsigned int i = 0; i < mlen; i++)
            snprintf((char *)buf + idlen + 1 + 2 * i, 3, "%02x", mac[i]);
        n = idlen + 1 + 2 * mlen;
    } else {
        memcpy(buf + idlen + 1, mac, mlen);
        n = idlen + 1 + mlen;
    }
    char want[512];
    EVP_EncodeBlock((unsigned char *)want, buf, (int)n);
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
        assert_true(signature_valid(hook[i], secret[i], raw, sig, false)); /* X-Signature */
        assert_false(signature_valid(hook[i], "wrong", raw, sig, false));
        json_decref(body);
        body = rx_post_sig(i, false, sig, sizeof sig, NULL, raw, sizeof raw);
        assert_true(signature_valid(hook[i], secret[i], raw, sig, true)); /* Signature: hex */
        json_t *rec = json_array_get(body, 0);
        assert_string_equal(str(rec, "id"), id);
        if (i == 0) { /* create: what the save set */
            assert_string_equal(str(rec, "name"), "Hook");
            assert_string_equal(str(rec, "syncStatus"), "pending_sync");
            assert_int_equal(json_integer_value(json_object_get(rec, "versionNumber")), 1);
        }
        if (i == 1) { /* update: what changed, the formula's status, the modifier; id last */
            assert_string_equal(str(rec, "vorname"), "Erika");
            assert_string_equal(str(rec, "syncStatus"), "dirty");
            assert_string_equal(str(rec, "modifiedById"), "ui-user");
            assert_null(json_object_get(rec, "name"));
            assert_null(json_object_get(rec, "versionNumber"));
            char last[96]; /* id comes last (07 deliveries) */
            snprintf(last, sizeof last, "\"id\":\"%s\"}]", id);
            assert_string_equal(raw + strlen(raw) - strlen(last), last);
        }
        if (i == 2) /* delete: the id only */
            assert_int_equal(json_object_size(rec), 1);
        json_decref(body);
    }
    /* skipOwn is ignored before 9.2 (07 step 0): the sync user's change comes back */
    char id2[64];
    ui_create("{\"name\":\"Own\"}", id2, sizeof id2);
    TH_WAIT(ok, rx_count() == 4, 10000);
    assert_true(ok);
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id2);
    assert_int_equal(call("PUT", path, api, "{\"vorname\":\"Sync\"}", NULL), 200);
    TH_WAIT(ok, rx_count() == 5, 10000);
    assert_true(ok);
    json_t *body = rx_post(4, sig, sizeof sig, NULL, raw, sizeof raw);
    assert_string_equal(str(json_array_get(body, 0), "modifiedById"), "sync-user");
    json_decref(body);
    /* a save that changes nothing sends nothing (07 step 13) */
    assert_int_equal(call("PUT", path, api, "{\"vorname\":\"Sync\"}", NULL), 200);
    TH_WAIT(ok, queued_total() == 0, 10000);
    assert_true(ok);
    assert_int_equal(rx_count(), 5);
}

static void test_job_runs_20_events(void **state)
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
    /* 07c: each run turns at most 20 events into items, one POST per webhook and run */
    bool ok;
    TH_WAIT(ok, rx_count() == 6, 10000);
    assert_true(ok);
    char sig[256], raw[200000];
    for (size_t i = 0; i < 6; i++) {
        json_t *body = rx_post(i, sig, sizeof sig, NULL, raw, sizeof raw);
        assert_int_equal(json_array_size(body), 20);
        json_decref(body);
    }
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
    assert_int_equal(strncmp(str(e, "phoneNumber"), "+49511", 6), 0); /* stored sanitised */
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

/* The /_sim/stats count of exactly this method, route and status (status 0 = dropped calls;
 * th_sim_calls() takes 0 for "every status"). */
static long calls_with_status(const char *method, const char *route, int status)
{
    json_t *out = NULL, *c;
    size_t i;
    long n = 0;
    assert_int_equal(call("GET", "/_sim/stats", NULL, NULL, &out), 200);
    json_array_foreach(json_object_get(out, "calls"), i, c)
    {
        if (strcmp(str(c, "method"), method) == 0 && strcmp(str(c, "route"), route) == 0 &&
            json_integer_value(json_object_get(c, "status")) == status)
            n += (long)json_integer_value(json_object_get(c, "count"));
    }
    json_decref(out);
    return n;
}

/* The shared frame's acting faults on EspoCRM's PUT (SPEC §8): "apply" saves (a new version, the
 * webhook-relevant state changed) while the sync sees 503; "drop" saves nothing and answers
 * nothing; both counted under the status the client saw. */
static void test_fault_apply_and_drop_on_put(void **state)
{
    (void)state;
    char id[64], path[128], rule[256];
    api_create("{\"name\":\"Vorher\"}", id, sizeof id);
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    json_t *e = get_entity(id);
    json_int_t version = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    snprintf(rule, sizeof rule,
             "{\"method\":\"PUT\",\"route\":\"/api/v1/CBeteiligte/{id}\",\"status\":503,"
             "\"apply\":true,\"count\":1}");
    assert_int_equal(call("POST", "/_sim/faults", NULL, rule, NULL), 200);
    assert_int_equal(call("PUT", path, api, "{\"name\":\"Nachher\"}", NULL), 503);
    e = get_entity(id);
    assert_string_equal(str(e, "name"), "Nachher");
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), version + 1);
    json_decref(e);

    snprintf(rule, sizeof rule,
             "{\"method\":\"PUT\",\"route\":\"/api/v1/CBeteiligte/{id}\",\"drop\":true,"
             "\"count\":1}");
    assert_int_equal(call("POST", "/_sim/faults", NULL, rule, NULL), 200);
    assert_int_equal(call("PUT", path, api, "{\"name\":\"Nie\"}", NULL), 0);
    e = get_entity(id);
    assert_string_equal(str(e, "name"), "Nachher");
    assert_int_equal(json_integer_value(json_object_get(e, "versionNumber")), version + 1);
    json_decref(e);
    assert_int_equal(calls_with_status("PUT", "/api/v1/CBeteiligte/{id}", 503), 1);
    assert_int_equal(calls_with_status("PUT", "/api/v1/CBeteiligte/{id}", 0), 1);
    assert_int_equal(call("PUT", path, api, "{\"name\":\"Wieder\"}", NULL), 200);
}

/* The "ui_edit" fault (sim.h): a UI user's edit lands right before the sync's PUT, exactly as
 * PUT /_sim/ui/CBeteiligte/{id} (the formula sets dirty, an update webhook is queued), so the
 * PUT with the version it read meets EspoCRM's 409 of optimistic concurrency (04). GET
 * /_sim/log lists the API calls in the order they were answered. */
static void test_fault_ui_edit_lands_before_the_put(void **state)
{
    (void)state;
    char secret[64], hook[64], id[64], path[128], rule[256], version[64];
    register_hook("update", true, secret, sizeof secret, hook, sizeof hook);
    api_create("{\"name\":\"Vorher\",\"vorname\":\"Ina\"}", id, sizeof id);
    json_t *e = get_entity(id);
    json_int_t v = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    snprintf(rule, sizeof rule,
             "{\"method\":\"PUT\",\"route\":\"/api/v1/CBeteiligte/{id}\",\"after\":1,"
             "\"count\":1,\"ui_edit\":{\"zusatz\":\"Von Hand\"}}");
    assert_int_equal(call("POST", "/_sim/faults", NULL, rule, NULL), 200);
    snprintf(version, sizeof version, "X-Version-Number: %lld", (long long)v);
    const char *occ[] = {KEY, version, NULL};
    /* the first PUT passes (after 1); the second meets the person's edit */
    assert_int_equal(call("PUT", path, occ, "{\"vorname\":\"Isa\"}", NULL), 200);
    snprintf(version, sizeof version, "X-Version-Number: %lld", (long long)v + 1);
    json_t *out = NULL;
    assert_int_equal(call("PUT", path, occ, "{\"vorname\":\"Ute\",\"syncStatus\":\"clean\"}", &out),
                     409);
    assert_int_equal(json_integer_value(json_object_get(out, "versionNumber")), v + 2);
    assert_string_equal(str(json_object_get(out, "values"), "syncStatus"), "dirty");
    json_decref(out);
    e = get_entity(id);
    assert_string_equal(str(e, "zusatz"), "Von Hand");
    assert_string_equal(str(e, "vorname"), "Isa");
    assert_string_equal(str(e, "syncStatus"), "dirty");
    assert_string_equal(str(e, "modifiedById"), "ui-user");
    json_decref(e);
    /* the person's edit is delivered as an update webhook (in one post with the sync user's
     * save or in a post of its own, as the job's runs fall) */
    bool ok;
    json_t *edit = NULL;
    char sig[256], raw[8192];
    long long end = th_now_ms() + 10000;
    while (!edit && th_now_ms() < end) {
        for (size_t i = 0; !edit && i < rx_count(); i++) {
            json_t *body = rx_post(i, sig, sizeof sig, NULL, raw, sizeof raw), *rec;
            size_t j;
            json_array_foreach(body, j, rec)
            {
                if (!edit && json_object_get(rec, "zusatz"))
                    edit = json_incref(rec);
            }
            json_decref(body);
        }
        if (!edit)
            th_sleep_ms(10);
    }
    assert_non_null(edit);
    assert_string_equal(str(edit, "zusatz"), "Von Hand");
    assert_string_equal(str(edit, "modifiedById"), "ui-user");
    json_decref(edit);
    TH_WAIT(ok, queued_total() == 0, 10000);
    assert_true(ok);
    /* the rule is spent */
    assert_int_equal(call("GET", "/_sim/faults", NULL, NULL, &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "faults")), 0);
    json_decref(out);
    /* the answered API calls in order: Webhook POST, create, GET, PUT 200, PUT 409, GET */
    assert_int_equal(call("GET", "/_sim/log?since=3", NULL, NULL, &out), 200);
    json_t *calls = json_object_get(out, "calls");
    assert_int_equal(json_array_size(calls), 3);
    assert_int_equal(json_integer_value(json_object_get(out, "total")), 6);
    json_t *c = json_array_get(calls, 1);
    assert_int_equal(json_integer_value(json_object_get(c, "seq")), 4);
    assert_string_equal(str(c, "method"), "PUT");
    assert_string_equal(str(c, "route"), "/api/v1/CBeteiligte/{id}");
    assert_int_equal(json_integer_value(json_object_get(c, "status")), 409);
    json_decref(out);
    /* a rule with an edit that is not an object is refused */
    assert_int_equal(call("POST", "/_sim/faults", NULL, "{\"ui_edit\":[1]}", NULL), 400);
}

static void test_metadata_and_clock(void **state)
{
    (void)state;
    json_t *out = NULL;
    assert_int_equal(call("GET", "/api/v1/Metadata?key=entityDefs.CBeteiligte.fields.phoneNumber",
                          api, NULL, &out),
                     200);
    assert_int_equal(json_array_size(json_object_get(out, "typeList")), 4); /* Company, 12 */
    assert_string_equal(str(out, "defaultType"), "Office");
    json_decref(out);
    assert_int_equal(call("GET", "/api/v1/Metadata?key=entityDefs.CBeteiligte", api, NULL, &out),
                     200);
    assert_true(json_is_true(json_object_get(out, "optimisticConcurrencyControl")));
    assert_non_null(json_object_get(json_object_get(out, "fields"), "advowareSyncBaseline"));
    json_decref(out);
    char reason[128];
    size_t len;
    assert_int_equal(call_raw("GET", "/api/v1/Metadata?key=entityDefs.CNichtDa", api, NULL, reason,
                              sizeof reason, &len),
                     200);
    assert_string_equal(g_body, "null"); /* 12 step 2 */
    /* a pinned clock stamps every save */
    assert_int_equal(call("POST", "/_sim/clock", NULL, "{\"now\":\"2026-12-01 20:15:43\"}", NULL),
                     200);
    char id[64];
    api_create("{\"name\":\"Zeit\"}", id, sizeof id);
    json_t *e = get_entity(id);
    assert_string_equal(str(e, "createdAt"), "2026-12-01 20:15:43");
    json_decref(e);
    assert_int_equal(call("POST", "/_sim/clock", NULL, "{\"now\":null}", NULL), 200);
}

static void test_option_template_person(void **state)
{
    (void)state;
    struct th_sim s;
    const char *args[] = {"--template", "person", NULL};
    sim2_start(&s, args);
    json_t *out = NULL;
    assert_int_equal(call_at(&s, "GET",
                             "/api/v1/Metadata?key=entityDefs.CBeteiligte.fields.phoneNumber", api,
                             NULL, &out),
                     200);
    assert_string_equal(str(out, "defaultType"), "Mobile");
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "typeList"), 2)),
                        "Home");
    json_decref(out);
    assert_int_equal(call_at(&s, "POST", "/api/v1/CBeteiligte", api,
                             "{\"name\":\"P\",\"phoneNumberData\":[{\"phoneNumber\":\"+49 30 1\","
                             "\"type\":\"Home\"},{\"phoneNumber\":\"+49 30 2\"}]}",
                             &out),
                     200);
    assert_string_equal(str(json_array_get(json_object_get(out, "phoneNumberData"), 1), "type"),
                        "Mobile");
    json_decref(out);
    sim2_stop(&s);
    /* the default (Company) refuses Home */
    assert_int_equal(call("POST", "/api/v1/CBeteiligte", api,
                          "{\"name\":\"C\",\"phoneNumberData\":[{\"phoneNumber\":\"+49 30 1\","
                          "\"type\":\"Home\"}]}",
                          NULL),
                     400);
}

static void test_option_espocrm_version(void **state)
{
    (void)state;
    struct th_sim s;
    const char *args[] = {"--espocrm-version", "9.2.0", "--webhook-job-ms", "10", NULL};
    sim2_start(&s, args);
    char secret[64], hook[64], id[64], path[128];
    register_hook_at(&s, "update", true, secret, sizeof secret, hook, sizeof hook);
    json_t *out = NULL;
    snprintf(path, sizeof path, "/api/v1/Webhook/%s", hook);
    assert_int_equal(call_at(&s, "GET", path, api, NULL, &out), 200);
    assert_true(json_is_true(json_object_get(out, "skipOwn")));
    json_decref(out);
    assert_int_equal(call_at(&s, "POST", "/_sim/ui/CBeteiligte", NULL, "{\"name\":\"V\"}", &out),
                     200);
    snprintf(id, sizeof id, "%s", str(out, "id"));
    json_decref(out);
    /* 9.2: skipOwn hides the sync user's change; a person's still arrives */
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", id);
    assert_int_equal(call_at(&s, "PUT", path, api, "{\"vorname\":\"Sync\"}", NULL), 200);
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    assert_int_equal(call_at(&s, "PUT", path, NULL, "{\"vorname\":\"Mensch\"}", NULL), 200);
    bool ok;
    TH_WAIT(ok, rx_count() == 1, 10000);
    assert_true(ok);
    char sig[256], raw[8192];
    json_t *body = rx_post(0, sig, sizeof sig, NULL, raw, sizeof raw);
    assert_int_equal(json_array_size(body), 1);
    assert_string_equal(str(json_array_get(body, 0), "vorname"), "Mensch");
    json_decref(body);
    sim2_stop(&s);
}

static void test_option_message_permission(void **state)
{
    (void)state;
    struct th_sim s;
    const char *args[] = {"--message-permission", "no", NULL};
    sim2_start(&s, args);
    struct espo *c = espo_new(s.url, "dev-espocrm-key", 5000, NULL);
    long status = 0;
    char err[256];
    assert_int_equal(espo_notify(c, "admin", "x", &status, err, sizeof err), 0);
    assert_int_equal(status, 403);
    assert_string_equal(err, "Not permitted to post to anybody except self.");
    json_t *out = NULL;
    assert_int_equal(espo_app_user(c, &status, &out, err, sizeof err), 0);
    assert_string_equal(str(json_object_get(out, "acl"), "messagePermission"), "no");
    json_decref(out);
    espo_free(c);
    sim2_stop(&s);
}

static void test_option_drop_field(void **state)
{
    (void)state;
    struct th_sim s;
    const char *args[] = {"--drop-field", "advowareSyncBaseline", "--drop-field", "vorname", NULL};
    sim2_start(&s, args);
    json_t *out = NULL;
    assert_int_equal(
        call_at(&s, "GET", "/api/v1/Metadata?key=entityDefs.CBeteiligte", api, NULL, &out), 200);
    assert_null(json_object_get(json_object_get(out, "fields"), "vorname"));
    assert_null(json_object_get(json_object_get(out, "fields"), "advowareSyncBaseline"));
    assert_non_null(json_object_get(json_object_get(out, "fields"), "titel"));
    json_decref(out);
    /* writes of a missing field are silently ignored (03 step 13) */
    assert_int_equal(call_at(&s, "POST", "/api/v1/CBeteiligte", api,
                             "{\"name\":\"D\",\"vorname\":\"weg\",\"advowareSyncBaseline\":\"{}\"}",
                             &out),
                     200);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/CBeteiligte/%s", str(out, "id"));
    json_decref(out);
    assert_int_equal(call_at(&s, "GET", path, api, NULL, &out), 200);
    assert_null(json_object_get(out, "vorname"));
    assert_null(json_object_get(out, "advowareSyncBaseline"));
    json_decref(out);
    assert_int_equal(call_at(&s, "GET",
                             "/api/v1/CBeteiligte?where%5B0%5D%5Btype%5D=isNull&where%5B0%5D%5B"
                             "attribute%5D=vorname",
                             api, NULL, NULL),
                     400);
    sim2_stop(&s);
}

static void test_option_webhook_job(void **state)
{
    (void)state;
    struct th_sim s;
    /* the job only on demand, 60 events per run */
    const char *args[] = {"--webhook-job-ms", "0", "--webhook-job-batch", "60", NULL};
    sim2_start(&s, args);
    char secret[64], hook[64];
    register_hook_at(&s, "create", false, secret, sizeof secret, hook, sizeof hook);
    for (int i = 0; i < 120; i++)
        assert_int_equal(
            call_at(&s, "POST", "/_sim/ui/CBeteiligte", NULL, "{\"name\":\"Job\"}", NULL), 200);
    json_t *out = NULL;
    assert_int_equal(call_at(&s, "GET", "/_sim/webhooks", NULL, NULL, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "pendingEvents")), 120);
    json_decref(out);
    assert_int_equal(rx_count(), 0);
    /* three runs: 60 events each become items; a POST carries at most 50 */
    static const int want[] = {50, 50, 20};
    for (int run = 0; run < 3; run++) {
        assert_int_equal(call_at(&s, "POST", "/_sim/webhooks/run", NULL, "{}", &out), 200);
        assert_int_equal(json_integer_value(json_object_get(out, "posts")), 1);
        json_decref(out);
        assert_int_equal(rx_count(), (size_t)run + 1); /* answered after the run's POST */
        char sig[256], raw[200000];
        json_t *body = rx_post((size_t)run, sig, sizeof sig, NULL, raw, sizeof raw);
        assert_int_equal(json_array_size(body), want[run]);
        json_decref(body);
    }
    assert_int_equal(call_at(&s, "GET", "/_sim/webhooks", NULL, NULL, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "pendingEvents")), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "queueItems")), 0);
    json_decref(out);
    sim2_stop(&s);
}

static void test_command_line(void **state)
{
    (void)state;
    char bin[512], out[8192];
    const char *help[] = {th_bin("espocrm-sim", bin, sizeof bin), "--help", NULL};
    assert_int_equal(th_run(help, NULL, out, sizeof out, 10000), 0);
    static const char *const opts[] = {
        "--webhook-retry-ms", "--template",    "--espocrm-version", "--message-permission",
        "--drop-field",       "--user",        "--webhook-job-ms",  "--webhook-job-batch",
        "--api-key",          "--sync-user-id"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        assert_non_null(strstr(out, opts[i]));
    const char *bad[] = {bin, "--bogus", NULL};
    assert_int_equal(th_run(bad, NULL, out, sizeof out, 10000), 2);
    const char *bad_template[] = {bin, "--template", "robot", NULL};
    assert_int_equal(th_run(bad_template, NULL, out, sizeof out, 10000), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_auth_and_app_user, reset),
        cmocka_unit_test_setup(test_basic_auth, reset),
        cmocka_unit_test_setup(test_save_rules_and_formula, reset),
        cmocka_unit_test_setup(test_phone_and_email_rules, reset),
        cmocka_unit_test_setup(test_optimistic_concurrency, reset),
        cmocka_unit_test_setup(test_list_queries, reset),
        cmocka_unit_test_setup(test_notifications_in_order, reset),
        cmocka_unit_test_setup(test_webhook_signature_and_records, reset),
        cmocka_unit_test_setup(test_job_runs_20_events, reset),
        cmocka_unit_test_setup(test_retry_rules, reset),
        cmocka_unit_test_setup(test_seed_and_stats, reset),
        cmocka_unit_test_setup(test_fault_apply_and_drop_on_put, reset),
        cmocka_unit_test_setup(test_fault_ui_edit_lands_before_the_put, reset),
        cmocka_unit_test_setup(test_metadata_and_clock, reset),
        cmocka_unit_test_setup(test_option_template_person, reset),
        cmocka_unit_test_setup(test_option_espocrm_version, reset),
        cmocka_unit_test_setup(test_option_message_permission, reset),
        cmocka_unit_test_setup(test_option_drop_field, reset),
        cmocka_unit_test_setup(test_option_webhook_job, reset),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
