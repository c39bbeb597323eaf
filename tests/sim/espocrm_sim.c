/* espocrm_sim.c: espocrm-sim, the EspoCRM 9.1.5 REST API simulator of SPEC §7.1, §8 and §8.1,
 * held to the recorded answers of a real EspoCRM (tests/contract/espocrm-9.1.5, replayed by
 * tests/contract/espocrm_contract.py). This file is the program: options, routes, auth, the form
 * of answers, App/user, metadata and the /_sim/ configuration routes; espocrm_sim.h lists the
 * other parts. Built on the shared simulator frame (sim.h); answers are new JSON the server frees.
 *
 * What EspoCRM does, as recorded (file and step of tests/contract/espocrm-9.1.5):
 * - Auth: X-Api-Key = the sync user (a wrong key: 401, empty body; none: 401 with
 *   WWW-Authenticate, 01 steps 1-3); HTTP Basic: user `admin` is an admin, any other user a
 *   regular user whose id and name are the user name (04 step 5; passwords are not checked).
 * - 404 (09): empty body, reason "Record <id> does not exist." (GET) or "… not found.".
 * - Metadata (12): entityDefs as recorded (plus SPEC §6's advowareSyncBaseline); unknown key →
 *   null. --drop-field removes a field from it and makes writes of it silently ignored.
 *
 * Not recorded, assumed: Basic passwords are not checked; a user exists once seen (a Basic login,
 * X-Sim-User, an assignment) or given by --user or POST /_sim/users. */
#include "espocrm_sim.h"
#include "httpc.h"
#include "log.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG        "espocrm-sim"
#define TIME_FORMAT "%Y-%m-%d %H:%M:%S" /* EspoCRM's datetime, in UTC */

#define ROUTE_USER          "/api/v1/App/user"
#define ROUTE_ENTITIES      "/api/v1/CBeteiligte"
#define ROUTE_ENTITY        "/api/v1/CBeteiligte/{id}"
#define ROUTE_STREAM        "/api/v1/CBeteiligte/{id}/stream"
#define ROUTE_NOTIFICATIONS "/api/v1/Notification"
#define ROUTE_NOT_READ      "/api/v1/Notification/action/notReadCount"
#define ROUTE_NOTE          "/api/v1/Note"
#define ROUTE_METADATA      "/api/v1/Metadata"
#define ROUTE_WEBHOOKS      "/api/v1/Webhook"
#define ROUTE_WEBHOOK       "/api/v1/Webhook/{id}"

static const char ACL_TABLE_JSON[] =
    "{\"ActionHistoryRecord\":{\"read\":\"own\",\"stream\":\"no\",\"edit\":\"no\",\"delete\":\""
    "no\",\"create\":\"no\"},\"Attachment\":{\"read\":\"own\",\"stream\":\"no\",\"edit\":\"own"
    "\",\"delete\":\"own\",\"create\":\"yes\"},\"EmailAccount\":{\"read\":\"own\",\"stream\":\""
    "no\",\"edit\":\"own\",\"delete\":\"own\",\"create\":\"yes\"},\"EmailFilter\":{\"read\":\"o"
    "wn\",\"stream\":\"no\",\"edit\":\"own\",\"delete\":\"own\",\"create\":\"yes\"},\"EmailFold"
    "er\":{\"read\":\"own\",\"stream\":\"no\",\"edit\":\"own\",\"delete\":\"own\",\"create\":\""
    "yes\"},\"GroupEmailFolder\":{\"read\":\"team\",\"stream\":\"no\",\"edit\":\"no\",\"delete"
    "\":\"no\",\"create\":\"no\"},\"Note\":{\"read\":\"own\",\"stream\":\"no\",\"edit\":\"own\""
    ",\"delete\":\"own\",\"create\":\"yes\"},\"Notification\":{\"read\":\"own\",\"stream\":\"no"
    "\",\"edit\":\"no\",\"delete\":\"own\",\"create\":\"no\"},\"Preferences\":{\"read\":\"own\""
    ",\"stream\":\"no\",\"edit\":\"own\",\"delete\":\"no\",\"create\":\"no\"},\"Stream\":true,"
    "\"Team\":{\"read\":\"team\",\"stream\":\"no\",\"edit\":\"no\",\"delete\":\"no\",\"create\""
    ":\"no\"},\"User\":{\"read\":\"all\",\"stream\":\"no\",\"edit\":\"no\",\"delete\":\"no\",\""
    "create\":\"no\"},\"Webhook\":true,\"CBeteiligte\":{\"read\":\"all\",\"stream\":\"all\",\"e"
    "dit\":\"all\",\"delete\":\"all\",\"create\":\"yes\"}}";

static const char USER_TEMPLATE_JSON[] =
    "{\"id\":\"6b0f2ac93ac0e6b02\",\"name\":\"sync\",\"deleted\":false,\"userName\":\"sync\",\""
    "type\":\"api\",\"salutationName\":null,\"firstName\":null,\"lastName\":\"sync\",\"isActive"
    "\":true,\"title\":null,\"emailAddress\":null,\"phoneNumber\":null,\"ipAddress\":\"127.0.0."
    "1\",\"avatarColor\":null,\"createdAt\":\"2026-12-01 20:15:05\",\"modifiedAt\":\"2026-12-01"
    " 20:15:05\",\"middleName\":null,\"emailAddressIsOptedOut\":null,\"emailAddressIsInvalid\":"
    "null,\"phoneNumberIsOptedOut\":null,\"phoneNumberIsInvalid\":null,\"defaultTeamId\":null,"
    "\"defaultTeamName\":null,\"teamsIds\":[],\"teamsNames\":{},\"teamsColumns\":{},\"contactId"
    "\":null,\"contactName\":null,\"avatarId\":null,\"avatarName\":null,\"createdById\":\"6b0f2"
    "a943cb3798e8\",\"createdByName\":\"Admin\",\"workingTimeCalendarId\":null,\"emailAddressLi"
    "st\":[],\"userEmailAddressList\":[],\"excludeFromReplyEmailAddressList\":[]}";

/* ---- helpers ------------------------------------------------------------------------------ */

bool esim__in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

const char *esim__jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A copy of s in lower case (ASCII), or NULL on out of memory. */
char *esim__lower_dup(const char *s)
{
    char *out = strdup(s ? s : "");
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

bool esim__in_json_list(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

long esim__query_long(const char *query, const char *name, long def)
{
    char buf[32];
    return httpd_query_get(query, name, buf, sizeof buf) > 0 ? strtol(buf, NULL, 10) : def;
}

/* ---- clock, ids, users -------------------------------------------------------------------- */

void esim__now_text(const struct esim *e, char *buf, size_t len)
{
    time_t t = e->clock_pinned ? e->clock : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, TIME_FORMAT, &tm);
}

/* 17 hex digits as EspoCRM's ids, increasing: ordering by id is ordering by creation. */
void esim__new_id(struct esim *e, char *buf, size_t len)
{
    unsigned long r = sim_rand_below(e->sim, 0xfffffffUL);
    snprintf(buf, len, "%010lx%07lx", ++e->next_id, r);
}

const char *esim__user_name(const struct esim *e, const char *id)
{
    const char *n = esim__jstr(e->users, id);
    return n ? n : id;
}

void esim__user_seen(struct esim *e, const char *id)
{
    if (id && *id && !json_object_get(e->users, id))
        json_object_set_new(e->users, id, json_string(id));
}

static void users_init(struct esim *e)
{
    json_object_clear(e->users);
    json_object_set_new(e->users, e->conf.sync_user, json_string("sync"));
    json_object_set_new(e->users, "admin", json_string("Admin"));
    json_object_set_new(e->users, "ui-user", json_string("ui-user"));
    for (size_t i = 0; i < e->conf.users.n; i++)
        esim__user_seen(e, e->conf.users.v[i]);
}

const char *esim__actor_name(const struct esim *e, const struct esim_actor *a)
{
    return esim__user_name(e, a->id);
}

/* ---- answers ------------------------------------------------------------------------------ */

void esim__respond(struct httpd_req *req, int status, const char *reason, json_t *body)
{
    char hdr[640];
    const char *headers[2] = {NULL, NULL};
    if (reason) {
        snprintf(hdr, sizeof hdr, "X-Status-Reason: %s", reason);
        headers[0] = hdr;
    }
    if (!body) {
        httpd_respond(req, status, NULL, "", 0, headers);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (text)
        httpd_respond(req, status, "application/json", text, strlen(text), headers);
    else
        httpd_respond(req, 500, NULL, "", 0, NULL);
    free(text);
}

/* 09: an empty body, the reason as recorded. */
void esim__respond_not_found(struct httpd_req *req, const char *id, bool reading)
{
    char reason[256];
    snprintf(reason, sizeof reason, reading ? "Record %s does not exist." : "Record %s not found.",
             id);
    esim__respond(req, 404, reason, NULL);
}

void esim__respond_validation(struct httpd_req *req, const struct esim_vfail *f)
{
    char reason[256];
    snprintf(reason, sizeof reason,
             "Field validation failure; entityType: " ESIM_ENTITY ", field: %s, type: %s.",
             f->field, f->type);
    esim__respond(req, 400, reason,
                  json_pack("{s:{s:s,s:n,s:{s:s,s:s}}}", "messageTranslation", "label",
                            "validationFailure", "scope", "data", "field", f->field, "type",
                            f->type));
}

/* The request body as a JSON object; NULL after answering 400. */
json_t *esim__body_object(struct httpd_req *req)
{
    json_t *body;
    if (sim_body_json(req, &body, true) != 0)
        return NULL;
    if (!body)
        return json_object();
    if (!json_is_object(body)) {
        json_decref(body);
        esim__respond(req, 400, "Bad request: the body must be a JSON object.", NULL);
        return NULL;
    }
    return body;
}

/* ---- auth --------------------------------------------------------------------------------- */

/* Decodes standard base64 into out (NUL-terminated); -1 if malformed or too long. */
static int b64_decode(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 + 1 > outlen)
        return -1;
    int len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    out[len] = '\0';
    return len;
}

/* Who the request is from (X-Api-Key: the sync user; Basic: admin or a regular user); false
 * after answering 401 (01 steps 1-3). */
bool esim__authenticate(struct esim *e, struct httpd_req *req, struct esim_actor *a)
{
    const char *key = httpd_req_header(req, "X-Api-Key");
    if (key) {
        if (strcmp(key, e->conf.api_key) != 0) {
            esim__respond(req, 401, NULL, NULL);
            return false;
        }
        a->kind = ESIM_ACTOR_API;
        snprintf(a->id, sizeof a->id, "%s", e->conf.sync_user);
        return true;
    }
    const char *auth = httpd_req_header(req, "Authorization");
    char plain[256];
    if (auth && strncasecmp(auth, "Basic ", 6) == 0 &&
        b64_decode(auth + 6, plain, sizeof plain) > 0) {
        char *colon = strchr(plain, ':');
        if (colon && colon != plain && (size_t)(colon - plain) < sizeof a->id) {
            size_t n = (size_t)(colon - plain);
            memcpy(a->id, plain, n);
            a->id[n] = '\0';
            a->kind = strcmp(a->id, "admin") == 0 ? ESIM_ACTOR_ADMIN : ESIM_ACTOR_UI;
            if (a->kind == ESIM_ACTOR_UI)
                esim__user_seen(e, a->id);
            return true;
        }
    }
    if (auth) {
        esim__respond(req, 401, NULL, NULL);
        return false;
    }
    const char *headers[] = {"WWW-Authenticate: Basic realm=\"\"", NULL};
    httpd_respond(req, 401, NULL, "", 0, headers);
    return false;
}

/* A regular user of the /_sim/ui routes (X-Sim-User, default ui-user). */
void esim__ui_actor(struct esim *e, struct httpd_req *req, struct esim_actor *a)
{
    const char *u = httpd_req_header(req, "X-Sim-User");
    a->kind = ESIM_ACTOR_UI;
    snprintf(a->id, sizeof a->id, "%s", u && *u ? u : "ui-user");
    esim__user_seen(e, a->id);
}

/* ---- App/user, metadata ------------------------------------------------------------------- */

static json_t *app_user(const struct esim *e, const struct esim_actor *a)
{
    json_t *u = json_deep_copy(e->user_template);
    const char *name = esim__actor_name(e, a);
    json_object_set_new(u, "id", json_string(a->id));
    json_object_set_new(u, "name", json_string(name));
    json_object_set_new(u, "userName", json_string(a->kind == ESIM_ACTOR_API ? "sync" : a->id));
    json_object_set_new(u, "lastName", json_string(name));
    json_object_set_new(u, "type",
                        json_string(a->kind == ESIM_ACTOR_API     ? "api"
                                    : a->kind == ESIM_ACTOR_ADMIN ? "admin"
                                                                  : "regular"));
    if (a->kind != ESIM_ACTOR_API)
        json_object_set_new(u, "ipAddress", json_null());
    json_object_set_new(u, "createdAt", json_string(e->started));
    json_object_set_new(u, "modifiedAt", json_string(e->started));
    json_object_set_new(u, "createdById", json_string("admin"));
    json_object_set_new(u, "createdByName", json_string("Admin"));
    json_t *acl = json_pack("{s:O,s:{}}", "table", e->acl_table, "fieldTable");
    static const char *const perms[] = {"assignmentPermission",
                                        "messagePermission",
                                        "mentionPermission",
                                        "userCalendarPermission",
                                        "auditPermission",
                                        "exportPermission",
                                        "massUpdatePermission",
                                        "userPermission",
                                        "portalPermission",
                                        "groupEmailAccountPermission",
                                        "followerManagementPermission",
                                        "dataPrivacyPermission"};
    for (size_t i = 0; i < sizeof perms / sizeof perms[0]; i++)
        json_object_set_new(acl, perms[i], json_string(i == 1 && e->message_all ? "all" : "no"));
    json_object_set_new(acl, "fieldTableQuickAccess", json_object());
    return json_pack("{s:o,s:o,s:{s:s},s:{s:s,s:s,s:i},s:s,s:{s:i},s:n}", "user", u, "acl", acl,
                     "preferences", "id", a->id, "settings", "version", e->conf.version, "timeZone",
                     "UTC", "recordsPerPage", 20, "language", "en_US", "appParams", "maxUploadSize",
                     8, "token");
}

static void on_app_user(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    if (a.kind != ESIM_ACTOR_API) {
        esim__respond(req, 200, NULL, app_user(e, &a));
        return;
    }
    if (!e->app_user_cache) { /* the benchmark's route (tests/bench/sim_throughput.sh) */
        json_t *au = app_user(e, &a);
        e->app_user_cache = json_dumps(au, JSON_COMPACT);
        json_decref(au);
    }
    if (e->app_user_cache)
        httpd_respond(req, 200, "application/json", e->app_user_cache, strlen(e->app_user_cache),
                      NULL);
    else
        esim__respond(req, 500, NULL, NULL);
}

/* GET /Metadata?key=a.b.c (12): the value at the path, null when there is none. */
static void on_metadata(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    struct esim_actor a;
    if (!esim__authenticate(e, req, &a))
        return;
    char key[512] = "";
    httpd_query_get(httpd_req_query(req), "key", key, sizeof key);
    json_t *root = json_pack("{s:{s:O}}", "entityDefs", ESIM_ENTITY, e->defs), *node = root;
    for (char *save = NULL, *part = strtok_r(key, ".", &save); part && node;
         part = strtok_r(NULL, ".", &save))
        node = json_object_get(node, part);
    esim__respond(req, 200, NULL, node ? json_deep_copy(node) : json_null());
    json_decref(root);
}

/* ---- /_sim/ configuration ----------------------------------------------------------------- */

/* POST /_sim/clock {"now":"YYYY-MM-DD HH:MM:SS"} pins the time of every timestamp the
 * simulator writes (the contract test replays the recorded times); {"now":null} releases it. */
static void on_clock(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    json_t *body = esim__body_object(req);
    if (!body)
        return;
    json_t *now = json_object_get(body, "now");
    struct tm tm = {0};
    const char *s = json_string_value(now), *end = s ? strptime(s, TIME_FORMAT, &tm) : NULL;
    if (now && !json_is_null(now) && (!end || *end)) {
        httpd_respond_error(req, 400, "now: \"YYYY-MM-DD HH:MM:SS\" (UTC) or null");
    } else {
        e->clock_pinned = s != NULL;
        if (s)
            e->clock = timegm(&tm);
        char text[24];
        esim__now_text(e, text, sizeof text);
        esim__respond(req, 200, NULL,
                      json_pack("{s:s,s:b}", "now", text, "pinned", e->clock_pinned));
    }
    json_decref(body);
}

static json_t *config_json(const struct esim *e)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "formula", e->formula_v2 ? "v2" : "v1",
                     "messagePermission", e->message_all ? "all" : "no", "template",
                     e->person ? "person" : "company", "espocrmVersion", e->conf.version);
}

/* POST /_sim/config {"formula":"v1"|"v2","messagePermission":"all"|"no"}: the instance's
 * configuration of the recordings (v1 and "no" for cases 01-09). GET: the current one. */
static void on_config(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    if (strcmp(httpd_req_method(req), "POST") == 0) {
        json_t *body = esim__body_object(req);
        if (!body)
            return;
        const char *f = esim__jstr(body, "formula"), *m = esim__jstr(body, "messagePermission");
        if ((f && strcmp(f, "v1") != 0 && strcmp(f, "v2") != 0) ||
            (m && strcmp(m, "all") != 0 && strcmp(m, "no") != 0)) {
            json_decref(body);
            httpd_respond_error(req, 400, "formula v1|v2, messagePermission all|no");
            return;
        }
        if (f)
            e->formula_v2 = strcmp(f, "v2") == 0;
        if (m)
            e->message_all = strcmp(m, "all") == 0;
        free(e->app_user_cache);
        e->app_user_cache = NULL;
        json_decref(body);
    }
    esim__respond(req, 200, NULL, config_json(e));
}

/* POST /_sim/users {"id","name"}: a user the instance has (direct messages need one). */
static void on_users(struct httpd_req *req, void *ud)
{
    struct esim *e = ud;
    json_t *body = esim__body_object(req);
    if (!body)
        return;
    const char *id = esim__jstr(body, "id"), *name = esim__jstr(body, "name");
    if (!id || !*id) {
        httpd_respond_error(req, 400, "id required");
    } else {
        json_object_set_new(e->users, id, json_string(name ? name : id));
        esim__respond(req, 200, NULL, json_deep_copy(e->users));
    }
    json_decref(body);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void esim_reset(void *ud)
{
    struct esim *e = ud;
    json_object_clear(e->entities);
    json_array_clear(e->notes);
    json_array_clear(e->notifications);
    users_init(e);
    e->next_id = 0;
    e->formula_v2 = true;
    e->message_all = strcmp(e->conf.message_permission, "all") == 0;
    e->clock_pinned = false;
    free(e->app_user_cache);
    e->app_user_cache = NULL;
    esim__webhooks_reset(e);
}

static void esim_stop(void *ud)
{
    esim__webhooks_stop(ud);
}

static void esim_free(struct esim *e)
{
    if (!e)
        return;
    esim__webhooks_free(e);
    free(e->app_user_cache);
    json_decref(e->defs);
    json_decref(e->entities);
    json_decref(e->notes);
    json_decref(e->notifications);
    json_decref(e->users);
    json_decref(e->acl_table);
    json_decref(e->user_template);
    free(e);
}

static const struct sim_route_def api_routes[] = {
    {"GET", ROUTE_USER, on_app_user},
    {"GET", ROUTE_ENTITIES, esim__on_list},
    {"POST", ROUTE_ENTITIES, esim__on_post},
    {"GET", ROUTE_STREAM, esim__on_stream},
    {"GET", ROUTE_ENTITY, esim__on_get},
    {"PUT", ROUTE_ENTITY, esim__on_put},
    {"PATCH", ROUTE_ENTITY, esim__on_put},
    {"DELETE", ROUTE_ENTITY, esim__on_delete},
    {"GET", ROUTE_NOT_READ, esim__on_not_read_count},
    {"GET", ROUTE_NOTIFICATIONS, esim__on_notifications_list},
    {"POST", ROUTE_NOTIFICATIONS, esim__on_notification_create},
    {"POST", ROUTE_NOTE, esim__on_note},
    {"GET", ROUTE_METADATA, on_metadata},
    {"POST", ROUTE_WEBHOOKS, esim__on_webhook_register},
    {"GET", ROUTE_WEBHOOKS, esim__on_webhook_list},
    {"GET", ROUTE_WEBHOOK, esim__on_webhook_get},
    {"PUT", ROUTE_WEBHOOK, esim__on_webhook_update},
    {"DELETE", ROUTE_WEBHOOK, esim__on_webhook_delete},
};

/* The admin routes of SPEC §8.1, and for the contract test and the option tests: POST
 * /_sim/webhooks/run (one job run now; answers when it is done), /_sim/clock, /_sim/config and
 * /_sim/users. */
static const struct sim_route_def admin_routes[] = {
    {"POST", "/_sim/ui/CBeteiligte", esim__on_ui_create},
    {"PUT", "/_sim/ui/CBeteiligte/{id}", esim__on_ui_update},
    {"DELETE", "/_sim/ui/CBeteiligte/{id}", esim__on_ui_delete},
    {"POST", "/_sim/seed", esim__on_seed},
    {"GET", "/_sim/notifications", esim__on_sim_notifications},
    {"GET", "/_sim/webhooks", esim__on_sim_webhooks},
    {"POST", "/_sim/webhooks/pause", esim__on_pause},
    {"POST", "/_sim/webhooks/resume", esim__on_resume},
    {"POST", "/_sim/webhooks/run", esim__on_run_job},
    {"GET", "/_sim/state/CBeteiligte", esim__on_state_all},
    {"GET", "/_sim/state/CBeteiligte/{id}", esim__on_state_one},
    {"POST", "/_sim/clock", on_clock},
    {"GET", "/_sim/config", on_config},
    {"POST", "/_sim/config", on_config},
    {"POST", "/_sim/users", on_users},
};

/* The recorded definitions: entityDefs (espocrm_fields.c), the ACL table and the user of App/user.
 * 0 or -1. */
static int defs_init(struct esim *e)
{
    e->acl_table = json_loads(ACL_TABLE_JSON, 0, NULL);
    e->user_template = json_loads(USER_TEMPLATE_JSON, 0, NULL);
    if (esim__fields_init(e) != 0 || !e->acl_table || !e->user_template)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct sim_opts opts = {.port = 0, .seed = 1};
    struct esim_conf conf = {.api_key = "dev-espocrm-key",
                             .sync_user = "sync-user",
                             .webhook_retry_ms = 600000,
                             .template_name = "company",
                             .version = "9.1.5",
                             .message_permission = "all",
                             .job_ms = 50,
                             .job_batch = 20};
    const struct sim_opt extra[] = {
        {"api-key", SIM_OPT_STR, &conf.api_key, "the sync user's API key (X-Api-Key)"},
        {"sync-user-id", SIM_OPT_STR, &conf.sync_user, "id of the sync user (the API's user)"},
        {"webhook-retry-ms", SIM_OPT_INT, &conf.webhook_retry_ms,
         "pause before a failed webhook delivery is retried"},
        {"template", SIM_OPT_STR, &conf.template_name,
         "the entity's template: company|person (its phone type list)"},
        {"espocrm-version", SIM_OPT_STR, &conf.version, "EspoCRM version (9.2 on: skipOwn)"},
        {"message-permission", SIM_OPT_STR, &conf.message_permission,
         "the sync role's Message permission: all|no"},
        {"drop-field", SIM_OPT_MULTI, &conf.drop_fields,
         "a field the entity lacks (metadata omits it, writes of it are ignored)"},
        {"user", SIM_OPT_MULTI, &conf.users, "a user id the instance has (besides those seen)"},
        {"webhook-job-ms", SIM_OPT_INT, &conf.job_ms,
         "how often the webhook job runs (0: only on POST /_sim/webhooks/run)"},
        {"webhook-job-batch", SIM_OPT_INT, &conf.job_batch, "events per job run"},
    };
    sim_parse_args(
        argc, argv, PROG,
        "Simulates the EspoCRM 9.1.5 REST API (SPEC §7.1, §8.1) in memory, as\n"
        "recorded in tests/contract/espocrm-9.1.5: CBeteiligte with EspoCRM's validation, save\n"
        "rules and formula, optimistic concurrency, list queries, stream notes and\n"
        "notifications, metadata, and webhooks sent by a job, signed, with EspoCRM's\n"
        "retry rules.",
        &opts, extra, sizeof extra / sizeof extra[0]);
    if ((strcmp(conf.template_name, "company") != 0 && strcmp(conf.template_name, "person") != 0) ||
        (strcmp(conf.message_permission, "all") != 0 &&
         strcmp(conf.message_permission, "no") != 0) ||
        conf.job_batch < 1) {
        fprintf(stderr, PROG ": --template company|person, --message-permission all|no, "
                             "--webhook-job-batch >= 1\n");
        return 2;
    }
    int major = 0, minor = 0;
    sscanf(conf.version, "%d.%d", &major, &minor);
    uv_loop_t loop;
    int rc = 1;
    struct esim *e = calloc(1, sizeof *e);
    if (!e || uv_loop_init(&loop) != 0) {
        fprintf(stderr, PROG ": out of memory\n");
        free(e);
        return 1;
    }
    e->conf = conf;
    e->person = strcmp(conf.template_name, "person") == 0;
    e->skip_own_honoured = major > 9 || (major == 9 && minor >= 2);
    e->formula_v2 = true;
    e->message_all = strcmp(conf.message_permission, "all") == 0;
    e->entities = json_object();
    e->notes = json_array();
    e->notifications = json_array();
    e->users = json_object();
    esim__webhooks_init(e);
    users_init(e);
    esim__now_text(e, e->started, sizeof e->started); /* the clock is not pinned yet */
    httpc_global_init();
    if (defs_init(e) != 0 || !(e->sim = sim_new(&loop, &opts, esim_reset, e)) ||
        sim_register_routes(e->sim, api_routes, sizeof api_routes / sizeof api_routes[0],
                            admin_routes, sizeof admin_routes / sizeof admin_routes[0], e) != 0 ||
        esim__webhooks_open(e, &loop) != 0) {
        log_error(PROG ": cannot set up the server");
        goto out;
    }
    if (esim__webhooks_start(e) != 0) {
        log_error(PROG ": cannot start the webhook job");
        goto out;
    }
    sim_set_stop(e->sim, esim_stop, e);
    sim_set_ui_edit(e->sim, esim__ui_edit, e);
    rc = sim_run(e->sim);
out:
    esim_stop(e);
    uv_run(&loop, UV_RUN_DEFAULT); /* lets the async handle close */
    sim_free(e->sim);
    esim_free(e);
    uv_loop_close(&loop);
    return rc;
}
