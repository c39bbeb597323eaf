/* espocrm_sim.c: espocrm-sim, the EspoCRM 9.1.5 REST API simulator of SPEC §7.1, §8 and §8.1,
 * held to the recorded answers of a real EspoCRM (tests/contract/espocrm-9.1.5, replayed by
 * tests/contract/espocrm_contract.py): X-Api-Key and Basic auth, CBeteiligte with EspoCRM's
 * sanitising, validation, save rules, formula and optimistic concurrency, the list query, the
 * stream and notifications, metadata, webhooks with EspoCRM's job-style signed delivery and
 * retry rules. Built on the shared simulator frame (sim.h); answers are new JSON the server
 * frees.
 *
 * Threads: everything runs on the loop thread except the webhook job (the delivery thread),
 * which posts with a blocking HTTP client. The two share the webhook table, the event queue and
 * the job's counters under `mu`: the loop thread appends events and edits webhooks, the job
 * turns events into queue items and posts them unlocked. Webhooks are never freed before exit
 * (a deleted one is only marked), so the job's pointer stays valid across its unlocked post.
 *
 * What EspoCRM does, as recorded (file and step of tests/contract/espocrm-9.1.5):
 * - Auth: X-Api-Key = the sync user (a wrong key: 401, empty body; none: 401 with
 *   WWW-Authenticate, 01 steps 1-3); HTTP Basic: user `admin` is an admin, any other user a
 *   regular user whose id and name are the user name (04 step 5; passwords are not checked).
 * - Phones (02 steps 0-6, 03 steps 1-7): a number is sanitised (a leading '+' number in E.164)
 *   and must then be valid, else 400 for the whole request; the type must be in the template's
 *   list (Company: Office, Mobile, Fax, Other; Person adds Home), missing = the default type;
 *   at most 10 (maxCount); the primary item comes first, none marked = the first; optOut and
 *   invalid default to false on every write (03 steps 16-19). E-mails: syntax checked (03 step
 *   8), `lower` added. A plain phoneNumber/emailAddress creates a one-item list (02 step 6).
 * - Validation (03 steps 9-15): maxLength, required, enum options, pattern $noBadCharacters,
 *   in field order; 400 {"messageTranslation":{"label":"validationFailure","scope":null,
 *   "data":{"field","type"}}} with X-Status-Reason "Field validation failure; entityType: …".
 *   Unknown attributes are ignored (03 step 13).
 * - Answers: POST returns the attributes the save set plus the loaded lists and names (02 step
 *   2; emailAddress there is the primary's lower-case form); PUT returns the record as loaded
 *   before the save with the request's values over it: the …Data lists as sent (numbers
 *   sanitised, keys as given), phoneNumber updated when a new primary differs, emailAddress and
 *   the …IsOptedOut/…IsInvalid flags stale (03 steps 1, 16, 20); GET the stored record.
 * - Save (03, 08): every save bumps versionNumber and sets modifiedAt and modifiedById (even an
 *   empty PUT, 08 step 4); after a create modifiedById is null; PATCH = PUT (08 step 8).
 * - Formula (setup_metadata.json): creation → pending_sync (02 step 2); a change by anyone but
 *   the sync user of name, vorname, rechtsform, titel, anrede, bAnrede, zusatz, dateOfBirth,
 *   phoneNumber, emailAddress → dirty, v2 also of phoneNumberData/emailAddressData (10). An
 *   attribute is changed when the value sent differs from the stored one: a list sent without
 *   optOut/invalid differs (10 step 6); phoneNumber counts only when sent itself (04 step 23).
 *   v2 by default; v1 (01-09) via POST /_sim/config.
 * - Optimistic concurrency (04): X-Version-Number ≠ stored (non-numeric = 0) and a written
 *   attribute differs from its stored value → 409 {"values":{…},"versionNumber":N}, reason
 *   "modified", nothing saved; a phone list write compares phoneNumberIsOptedOut,
 *   phoneNumberIsInvalid, phoneNumber and the list (04 step 13). No header, no check.
 * - Assignment (06 step 13): the API user may assign only itself (403). A regular user's create
 *   assigns the creator when no one is given and the creator follows (07 step 10, 08 step 0).
 * - 404 (09): empty body, reason "Record <id> does not exist." (GET) or "… not found.".
 * - List (05): where types equals, notEquals, in, isNull, isNotNull, lessThan,
 *   lessThanOrEquals, greaterThan, greaterThanOrEquals, or, and (else 400 "Unknown where item
 *   type"); unknown where attribute or orderBy → 400; maxSize > 200 → 403; default order
 *   createdAt desc, ties by id; select adds id, the order attribute, createdById,
 *   assignedUserId and ignores unknown and list attributes; X-No-Total → total -1.
 * - Notifications (06, 11): POST /Notification is 403 "No create access." but for an admin;
 *   a stream Post notifies the record's followers; a Post with targetType users notifies each
 *   user (403 without the Message permission, 403 for an unknown user); GET /Notification
 *   lists newest first (total -1 more, -2 no more) and marks the listed read.
 * - Metadata (12): entityDefs as recorded (plus SPEC §6's advowareSyncBaseline); unknown key →
 *   null. --drop-field removes a field from it and makes writes of it silently ignored.
 * - Webhooks (07, 07c): registration 201 by the API user (403 for a regular user or another
 *   entity; any URL); events create, update, delete, fieldUpdate.<field>, queued on save only
 *   while an active webhook listens; skipOwn ignored before 9.2. The job turns at most 20
 *   events per run into items for the webhooks active then, and posts each webhook's due items
 *   (≤ 50) as one JSON array signed with Signature = base64(id ":" hex HMAC-SHA256) and
 *   X-Signature = base64(id ":" raw HMAC-SHA256). Create records carry the attributes the save
 *   set (lists as sent), update records the changed attributes (not modifiedAt, versionNumber)
 *   plus modifiedById/modifiedByName when they changed, then id; a save that changes nothing
 *   sends nothing (07 step 13). Answers: 2xx/3xx delivered; 0, 401, 403, 404, 405, 408, 500,
 *   503 retried after --webhook-retry-ms (4 attempts); 410 deletes the webhook; else dropped.
 *
 * Not recorded, assumed (EspoCRM's documented behaviour or SPEC): datetime, date and int values
 * are format-checked ("valid"); a retried item gives up after 4 attempts; a POST carries at most
 * 50 items; the Person template changes only the phone type list (not the name fields); Basic
 * passwords are not checked; a user exists once seen (a Basic login, X-Sim-User, an assignment)
 * or given by --user or POST /_sim/users; a stream post notifies followers only (@mentions of
 * others are not notified); the assignee of a regular user's create follows the record. */
#include "httpc.h"
#include "log.h"
#include "phone.h"
#include "sim.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG            "espocrm-sim"
#define ENTITY          "CBeteiligte"
#define LIST_MAX        200 /* recordListMaxSizeLimit (05 step 21) */
#define POST_MAX_ITEMS  50  /* webhookBatchSize: items per POST */
#define MAX_ATTEMPTS    4   /* SPEC §7.1: 4 attempts, then Failed */
#define PHONE_MAX_COUNT 10  /* phoneNumberMaxCount (03 steps 6, 7) */

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

static const char ENTITY_DEFS_JSON[] =
    "{\"fields\":{\"name\":{\"type\":\"varchar\",\"required\":true,\"pattern\":\"$noBadCharacte"
    "rs\"},\"description\":{\"type\":\"text\"},\"website\":{\"type\":\"url\",\"strip\":true},\""
    "emailAddress\":{\"type\":\"email\"},\"phoneNumber\":{\"type\":\"phone\",\"typeList\":[\"Of"
    "fice\",\"Mobile\",\"Fax\",\"Other\"],\"defaultType\":\"Office\"},\"billingAddress\":{\"typ"
    "e\":\"address\"},\"billingAddressStreet\":{\"type\":\"text\",\"maxLength\":255,\"dbType\":"
    "\"varchar\"},\"billingAddressCity\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"vie"
    "ws/fields/address-city\",\"customizationOptionsDisabled\":true,\"customizationOptionsRefer"
    "enceDisabled\":true,\"pattern\":\"$noBadCharacters\"},\"billingAddressState\":{\"type\":\""
    "varchar\",\"maxLength\":100,\"view\":\"views/fields/address-state\",\"customizationOptions"
    "Disabled\":true,\"customizationOptionsReferenceDisabled\":true,\"pattern\":\"$noBadCharact"
    "ers\"},\"billingAddressCountry\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"views/"
    "fields/address-country\",\"customizationOptionsDisabled\":true,\"customizationOptionsRefer"
    "enceDisabled\":true,\"pattern\":\"$noBadCharacters\"},\"billingAddressPostalCode\":{\"type"
    "\":\"varchar\",\"maxLength\":40,\"pattern\":\"$noBadCharacters\"},\"shippingAddress\":{\"t"
    "ype\":\"address\",\"view\":\"crm:views/account/fields/shipping-address\"},\"shippingAddres"
    "sStreet\":{\"type\":\"text\",\"maxLength\":255,\"dbType\":\"varchar\"},\"shippingAddressCi"
    "ty\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"views/fields/address-city\",\"cust"
    "omizationOptionsDisabled\":true,\"customizationOptionsReferenceDisabled\":true,\"pattern\""
    ":\"$noBadCharacters\"},\"shippingAddressState\":{\"type\":\"varchar\",\"maxLength\":100,\""
    "view\":\"views/fields/address-state\",\"customizationOptionsDisabled\":true,\"customizatio"
    "nOptionsReferenceDisabled\":true,\"pattern\":\"$noBadCharacters\"},\"shippingAddressCountr"
    "y\":{\"type\":\"varchar\",\"maxLength\":100,\"view\":\"views/fields/address-country\",\"cu"
    "stomizationOptionsDisabled\":true,\"customizationOptionsReferenceDisabled\":true,\"pattern"
    "\":\"$noBadCharacters\"},\"shippingAddressPostalCode\":{\"type\":\"varchar\",\"maxLength\""
    ":40,\"pattern\":\"$noBadCharacters\"},\"createdAt\":{\"type\":\"datetime\",\"readOnly\":tr"
    "ue},\"modifiedAt\":{\"type\":\"datetime\",\"readOnly\":true},\"createdBy\":{\"type\":\"lin"
    "k\",\"readOnly\":true,\"view\":\"views/fields/user\"},\"modifiedBy\":{\"type\":\"link\",\""
    "readOnly\":true,\"view\":\"views/fields/user\"},\"assignedUser\":{\"type\":\"link\",\"requ"
    "ired\":false,\"view\":\"views/fields/assigned-user\"},\"teams\":{\"type\":\"linkMultiple\""
    ",\"view\":\"views/fields/teams\"},\"vorname\":{\"type\":\"varchar\",\"maxLength\":30,\"isC"
    "ustom\":true},\"rechtsform\":{\"type\":\"varchar\",\"maxLength\":50,\"isCustom\":true},\"t"
    "itel\":{\"type\":\"varchar\",\"maxLength\":50,\"isCustom\":true},\"anrede\":{\"type\":\"va"
    "rchar\",\"maxLength\":35,\"isCustom\":true},\"bAnrede\":{\"type\":\"varchar\",\"maxLength"
    "\":150,\"isCustom\":true},\"zusatz\":{\"type\":\"varchar\",\"maxLength\":100,\"isCustom\":"
    "true},\"dateOfBirth\":{\"notNull\":false,\"type\":\"date\",\"isCustom\":true},\"betnr\":{"
    "\"type\":\"int\",\"isCustom\":true},\"advowareRowId\":{\"type\":\"varchar\",\"maxLength\":"
    "255,\"isCustom\":true},\"advowareLastSync\":{\"notNull\":false,\"type\":\"datetime\",\"isC"
    "ustom\":true},\"syncStatus\":{\"type\":\"enum\",\"options\":[\"pending_sync\",\"dirty\",\""
    "syncing\",\"clean\",\"failed\",\"permanently_failed\",\"deleted_in_advoware\"],\"default\""
    ":\"pending_sync\",\"maxLength\":100,\"isCustom\":true},\"syncRetryCount\":{\"type\":\"int"
    "\",\"isCustom\":true},\"syncNextRetry\":{\"notNull\":false,\"type\":\"datetime\",\"isCusto"
    "m\":true},\"syncAutoResetAt\":{\"notNull\":false,\"type\":\"datetime\",\"isCustom\":true},"
    "\"syncErrorMessage\":{\"type\":\"text\",\"isCustom\":true},\"kommunikationHash\":{\"type\""
    ":\"varchar\",\"maxLength\":16,\"isCustom\":true},\"advowareSyncBaseline\":{\"type\":\"text"
    "\",\"isCustom\":true},\"emailAddressIsOptedOut\":{\"type\":\"bool\",\"notStorable\":true,"
    "\"layoutDetailDisabled\":true,\"layoutDefaultSidePanelDisabled\":true,\"mergeDisabled\":tr"
    "ue,\"customizationDefaultDisabled\":true,\"customizationReadOnlyDisabled\":true,\"customiz"
    "ationInlineEditDisabledDisabled\":true},\"emailAddressIsInvalid\":{\"type\":\"bool\",\"not"
    "Storable\":true,\"layoutDetailDisabled\":true,\"layoutDefaultSidePanelDisabled\":true,\"me"
    "rgeDisabled\":true,\"customizationDefaultDisabled\":true,\"customizationReadOnlyDisabled\""
    ":true,\"customizationInlineEditDisabledDisabled\":true},\"phoneNumberIsOptedOut\":{\"type"
    "\":\"bool\",\"notStorable\":true,\"layoutDetailDisabled\":true,\"layoutDefaultSidePanelDis"
    "abled\":true,\"mergeDisabled\":true,\"customizationDefaultDisabled\":true,\"customizationR"
    "eadOnlyDisabled\":true,\"customizationInlineEditDisabledDisabled\":true},\"phoneNumberIsIn"
    "valid\":{\"type\":\"bool\",\"notStorable\":true,\"layoutDetailDisabled\":true,\"layoutDefa"
    "ultSidePanelDisabled\":true,\"mergeDisabled\":true,\"customizationDefaultDisabled\":true,"
    "\"customizationReadOnlyDisabled\":true,\"customizationInlineEditDisabledDisabled\":true},"
    "\"billingAddressMap\":{\"type\":\"map\",\"notStorable\":true,\"orderDisabled\":true,\"read"
    "Only\":true,\"layoutListDisabled\":true,\"provider\":\"Google\",\"height\":300,\"exportDis"
    "abled\":true,\"importDisabled\":true},\"shippingAddressMap\":{\"type\":\"map\",\"notStorab"
    "le\":true,\"orderDisabled\":true,\"readOnly\":true,\"layoutListDisabled\":true,\"provider"
    "\":\"Google\",\"height\":300,\"exportDisabled\":true,\"importDisabled\":true},\"streamUpda"
    "tedAt\":{\"type\":\"datetime\",\"readOnly\":true,\"customizationReadOnlyDisabled\":true}},"
    "\"links\":{\"createdBy\":{\"type\":\"belongsTo\",\"entity\":\"User\"},\"modifiedBy\":{\"ty"
    "pe\":\"belongsTo\",\"entity\":\"User\"},\"assignedUser\":{\"type\":\"belongsTo\",\"entity"
    "\":\"User\"},\"teams\":{\"type\":\"hasMany\",\"entity\":\"Team\",\"relationName\":\"entity"
    "Team\",\"layoutRelationshipsDisabled\":true}},\"collection\":{\"orderBy\":\"createdAt\",\""
    "order\":\"desc\",\"sortBy\":\"createdAt\",\"asc\":false},\"indexes\":{\"name\":{\"columns"
    "\":[\"name\",\"deleted\"]},\"assignedUser\":{\"columns\":[\"assignedUserId\",\"deleted\"]}"
    ",\"createdAt\":{\"columns\":[\"createdAt\"]},\"createdAtId\":{\"unique\":true,\"columns\":"
    "[\"createdAt\",\"id\"]}},\"optimisticConcurrencyControl\":true}";

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

struct espo_conf {
    const char *api_key;
    const char *sync_user;
    int webhook_retry_ms;
    const char *template_name;
    const char *version;
    const char *message_permission;
    struct sim_multi drop_fields;
    struct sim_multi users;
    int job_ms;
    int job_batch;
};

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

/* A registered webhook (guarded by espo_sim.mu). */
struct hook {
    char id[24], secret[40], event[96], url[512], type[16], field[64];
    char created_at[24], modified_at[24], created_by[128], modified_by[128];
    bool active, deleted, skip_own;
    struct item *items;
    size_t nitems;
    long posts, delivered, retried, dropped, last_status;
};

enum actor_kind { ACTOR_API, ACTOR_ADMIN, ACTOR_UI };

/* Who makes a request. */
struct actor {
    enum actor_kind kind;
    char id[128];
};

struct espo_sim {
    struct espo_conf conf;
    struct sim *sim;
    json_t *defs;          /* entityDefs.CBeteiligte, as metadata answers it */
    json_t *fields;        /* borrowed: defs.fields */
    json_t *entities;      /* id → stored record */
    json_t *notes;         /* stream notes, oldest first */
    json_t *notifications; /* oldest first */
    json_t *users;         /* id → display name */
    json_t *acl_table;
    json_t *user_template;
    char started[24];
    unsigned long next_id;
    long long note_number, notif_number;
    bool formula_v2, message_all, skip_own_honoured, person;
    bool clock_pinned;
    time_t clock;
    char *app_user_cache; /* the sync user's GET /App/user answer */
    /* the webhook job, shared with the delivery thread under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool thread_started, stop, paused;
    struct hook **hooks;
    size_t nhooks;
    struct event *events, *events_tail;
    size_t nevents;
    int run_requests; /* POST /_sim/webhooks/run not run yet */
    int runs_done;    /* runs for requests not answered yet */
    long last_events, last_posts;
    long long next_run;
    /* loop thread only */
    uv_async_t async;
    bool async_open;
    struct httpd_req **waiters;
    size_t nwaiters, capwaiters;
};

/* The record's attributes in EspoCRM's order (GET, 02 step 3). */
/* clang-format off */
static const char *const ATTRS[] = {
    "id", "name", "deleted", "description", "website", "emailAddress", "phoneNumber",
    "billingAddressStreet", "billingAddressCity", "billingAddressState", "billingAddressCountry",
    "billingAddressPostalCode", "shippingAddressStreet", "shippingAddressCity",
    "shippingAddressState", "shippingAddressCountry", "shippingAddressPostalCode", "createdAt",
    "modifiedAt", "vorname", "rechtsform", "titel", "anrede", "bAnrede", "zusatz", "dateOfBirth",
    "betnr", "advowareRowId", "advowareLastSync", "syncStatus", "syncRetryCount", "syncNextRetry",
    "syncAutoResetAt", "syncErrorMessage", "kommunikationHash", "advowareSyncBaseline",
    "emailAddressIsOptedOut", "emailAddressIsInvalid", "phoneNumberIsOptedOut",
    "phoneNumberIsInvalid", "streamUpdatedAt", "emailAddressData", "phoneNumberData",
    "createdById", "createdByName", "modifiedById", "modifiedByName", "assignedUserId",
    "assignedUserName", "teamsIds", "teamsNames", "isFollowed", "followersIds", "followersNames",
    "versionNumber"};
/* clang-format on */
#define NATTRS (sizeof ATTRS / sizeof ATTRS[0])

/* Loaded with the record, not set by a save: a POST answer adds them (02 step 2). */
static const char *const LOADED[] = {
    "emailAddressData", "phoneNumberData", "createdByName", "modifiedByName", "assignedUserName",
    "teamsIds",         "teamsNames",      "isFollowed",    "followersIds",   "followersNames"};
/* Not in list items (05 step 33). */
static const char *const NOT_LISTED[] = {"emailAddressData", "phoneNumberData", "teamsIds",
                                         "teamsNames",       "isFollowed",      "followersIds",
                                         "followersNames"};
/* Not usable in where, orderBy or select (05 step 32). */
static const char *const NOT_QUERYABLE[] = {
    "emailAddressData", "phoneNumberData", "teamsIds",      "teamsNames",     "isFollowed",
    "followersIds",     "followersNames",  "createdByName", "modifiedByName", "assignedUserName"};
/* The formula's fields (setup_metadata.json); v2 adds the two lists. */
static const char *const FORMULA_FIELDS[] = {
    "name",    "vorname", "rechtsform",  "titel",       "anrede",
    "bAnrede", "zusatz",  "dateOfBirth", "phoneNumber", "emailAddress"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}
#define IN(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool values_equal(const json_t *a, const json_t *b)
{
    if (!a || json_is_null(a))
        return !b || json_is_null(b);
    return b && json_equal((json_t *)a, (json_t *)b);
}

/* A copy of s in lower case (ASCII), or NULL on out of memory. */
static char *lower_dup(const char *s)
{
    char *out = strdup(s ? s : "");
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/* ---- clock, ids, users -------------------------------------------------------------------- */

/* Now as EspoCRM writes it (UTC), or the time pinned by POST /_sim/clock. */
static void now_text(const struct espo_sim *e, char *buf, size_t len)
{
    time_t t = e->clock_pinned ? e->clock : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* 17 hex digits as EspoCRM's ids, increasing: ordering by id is ordering by creation. */
static void new_id(struct espo_sim *e, char *buf, size_t len)
{
    unsigned long r = sim_rand_below(e->sim, 0xfffffffUL);
    snprintf(buf, len, "%010lx%07lx", ++e->next_id, r);
}

static const char *user_name(const struct espo_sim *e, const char *id)
{
    const char *n = jstr(e->users, id);
    return n ? n : id;
}

static void user_seen(struct espo_sim *e, const char *id)
{
    if (id && *id && !json_object_get(e->users, id))
        json_object_set_new(e->users, id, json_string(id));
}

static void users_init(struct espo_sim *e)
{
    json_object_clear(e->users);
    json_object_set_new(e->users, e->conf.sync_user, json_string("sync"));
    json_object_set_new(e->users, "admin", json_string("Admin"));
    json_object_set_new(e->users, "ui-user", json_string("ui-user"));
    for (size_t i = 0; i < e->conf.users.n; i++)
        user_seen(e, e->conf.users.v[i]);
}

static const char *actor_name(const struct espo_sim *e, const struct actor *a)
{
    return user_name(e, a->id);
}

static bool is_sync_user(const struct espo_sim *e, const char *id)
{
    return strcmp(id, e->conf.sync_user) == 0;
}

/* ---- answers ------------------------------------------------------------------------------ */

/* Answers with body (stolen; NULL = an empty body) and X-Status-Reason (NULL = none). */
static void respond(struct httpd_req *req, int status, const char *reason, json_t *body)
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

static void respond_not_found(struct httpd_req *req, const char *id, bool reading)
{
    char reason[256];
    snprintf(reason, sizeof reason, reading ? "Record %s does not exist." : "Record %s not found.",
             id);
    respond(req, 404, reason, NULL);
}

struct vfail {
    char field[64];
    const char *type;
};

static void respond_validation(struct httpd_req *req, const struct vfail *f)
{
    char reason[256];
    snprintf(reason, sizeof reason,
             "Field validation failure; entityType: " ENTITY ", field: %s, type: %s.", f->field,
             f->type);
    respond(req, 400, reason,
            json_pack("{s:{s:s,s:n,s:{s:s,s:s}}}", "messageTranslation", "label",
                      "validationFailure", "scope", "data", "field", f->field, "type", f->type));
}

/* The request body as a JSON object; NULL after answering 400. */
static json_t *body_object(struct httpd_req *req)
{
    json_t *body;
    if (sim_body_json(req, &body, true) != 0)
        return NULL;
    if (!body)
        return json_object();
    if (!json_is_object(body)) {
        json_decref(body);
        respond(req, 400, "Bad request: the body must be a JSON object.", NULL);
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
static bool authenticate(struct espo_sim *e, struct httpd_req *req, struct actor *a)
{
    const char *key = httpd_req_header(req, "X-Api-Key");
    if (key) {
        if (strcmp(key, e->conf.api_key) != 0) {
            respond(req, 401, NULL, NULL);
            return false;
        }
        a->kind = ACTOR_API;
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
            a->kind = strcmp(a->id, "admin") == 0 ? ACTOR_ADMIN : ACTOR_UI;
            if (a->kind == ACTOR_UI)
                user_seen(e, a->id);
            return true;
        }
    }
    if (auth) {
        respond(req, 401, NULL, NULL);
        return false;
    }
    const char *headers[] = {"WWW-Authenticate: Basic realm=\"\"", NULL};
    httpd_respond(req, 401, NULL, "", 0, headers);
    return false;
}

/* A regular user of the /_sim/ui routes (X-Sim-User, default ui-user). */
static void ui_actor(struct espo_sim *e, struct httpd_req *req, struct actor *a)
{
    const char *u = httpd_req_header(req, "X-Sim-User");
    a->kind = ACTOR_UI;
    snprintf(a->id, sizeof a->id, "%s", u && *u ? u : "ui-user");
    user_seen(e, a->id);
}

/* ---- the entity's fields ----------------------------------------------------------------- */

static bool attr_dropped(const struct espo_sim *e, const char *attr)
{
    for (size_t i = 0; i < e->conf.drop_fields.n; i++) {
        const char *f = e->conf.drop_fields.v[i];
        size_t n = strlen(f);
        if (strcmp(attr, f) == 0)
            return true;
        /* a phone or e-mail field takes its list and flags along */
        if ((strcmp(f, "phoneNumber") == 0 || strcmp(f, "emailAddress") == 0) &&
            strncmp(attr, f, n) == 0)
            return true;
    }
    return false;
}

static const char *field_type(const struct espo_sim *e, const char *name)
{
    return jstr(json_object_get(e->fields, name), "type");
}

/* Attributes a write may set; anything else is ignored (03 step 13). */
static bool writable(const struct espo_sim *e, const char *k)
{
    if (attr_dropped(e, k))
        return false;
    if (strcmp(k, "phoneNumberData") == 0 || strcmp(k, "emailAddressData") == 0 ||
        strcmp(k, "assignedUserId") == 0)
        return true;
    json_t *def = json_object_get(e->fields, k);
    const char *t = jstr(def, "type");
    if (!t || json_is_true(json_object_get(def, "readOnly")) ||
        json_is_true(json_object_get(def, "notStorable")))
        return false;
    static const char *const not_values[] = {"address", "map", "link", "linkMultiple"};
    return !IN(t, not_values);
}

static bool queryable(const struct espo_sim *e, const char *k)
{
    return in_list(k, ATTRS, NATTRS) && !attr_dropped(e, k) && !IN(k, NOT_QUERYABLE);
}

/* A stored value: an int field given as a numeric string becomes a number. New reference. */
static json_t *coerce(const struct espo_sim *e, const char *k, json_t *v)
{
    const char *t = field_type(e, k);
    if (t && strcmp(t, "int") == 0 && json_is_string(v)) {
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (end != json_string_value(v) && !*end)
            return json_integer(n);
    }
    return json_incref(v);
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static bool matches_date(const char *s, bool with_time)
{
    /* YYYY-MM-DD[ HH:MM[:SS]] */
    static const char date[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof date - 1; i++)
        if (!s[i] || (date[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != date[i]))
            return false;
    if (!with_time)
        return s[10] == '\0';
    static const char tm[] = " dd:dd";
    for (size_t i = 0; i < sizeof tm - 1; i++)
        if (!s[10 + i] || (tm[i] == 'd' ? !isdigit((unsigned char)s[10 + i]) : s[10 + i] != tm[i]))
            return false;
    const char *rest = s + 16;
    return *rest == '\0' || (rest[0] == ':' && isdigit((unsigned char)rest[1]) &&
                             isdigit((unsigned char)rest[2]) && rest[3] == '\0');
}

/* EspoCRM's e-mail check (PHP's FILTER_VALIDATE_EMAIL, in essence). */
static bool email_valid(const char *s)
{
    const char *at = strrchr(s, '@');
    size_t n = strlen(s);
    if (!at || at == s || n > 254 || (size_t)(at - s) > 64 || !at[1])
        return false;
    static const char local_ok[] = "!#$%&'*+/=?^_`{|}~.-";
    for (const char *p = s; p < at; p++)
        if (!isalnum((unsigned char)*p) && !strchr(local_ok, *p))
            return false;
    if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
        return false;
    const char *d = at + 1, *dot = strrchr(d, '.');
    if (!dot || dot == d || !dot[1])
        return false;
    for (const char *p = d; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
        if ((*p == '.' || *p == '-') && (p == d || p[1] == '\0' || p[1] == '.'))
            return false;
    }
    for (const char *p = dot + 1; *p; p++)
        if (!isalpha((unsigned char)*p))
            return false;
    return strlen(dot + 1) >= 2;
}

static bool in_json_list(const json_t *list, const char *s)
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

static int fail(struct vfail *f, const char *field, const char *type)
{
    snprintf(f->field, sizeof f->field, "%s", field);
    f->type = type;
    return -1;
}

static int validate_phones(const json_t *def, const json_t *in, struct vfail *f)
{
    json_t *list = json_object_get(in, "phoneNumberData"), *it;
    size_t i;
    if (list) {
        json_array_foreach(list, i, it)
        {
            const char *num = jstr(it, "phoneNumber"), *type = jstr(it, "type");
            if (!num || !phone_espo_valid(num))
                return fail(f, "phoneNumber", "valid");
            if (type && !in_json_list(json_object_get(def, "typeList"), type))
                return fail(f, "phoneNumber", "valid");
        }
        if (json_array_size(list) > PHONE_MAX_COUNT)
            return fail(f, "phoneNumber", "maxCount");
        return 0;
    }
    const char *num = jstr(in, "phoneNumber");
    if (num && *num && !phone_espo_valid(num))
        return fail(f, "phoneNumber", "valid");
    return 0;
}

static int validate_emails(const json_t *in, struct vfail *f)
{
    json_t *list = json_object_get(in, "emailAddressData"), *it;
    size_t i;
    if (list) {
        json_array_foreach(list, i, it)
        {
            const char *addr = jstr(it, "emailAddress");
            if (!addr || !email_valid(addr))
                return fail(f, "emailAddress", "emailAddress");
        }
        return 0;
    }
    const char *addr = jstr(in, "emailAddress");
    if (addr && *addr && !email_valid(addr))
        return fail(f, "emailAddress", "emailAddress");
    return 0;
}

/* EspoCRM's field validation of a (filtered) write, in field order. 0, or -1 with *f. */
static int validate(const struct espo_sim *e, const json_t *in, bool creating, struct vfail *f)
{
    const char *name;
    json_t *def;
    json_object_foreach(e->fields, name, def)
    {
        const char *type = jstr(def, "type");
        if (!type)
            continue;
        if (strcmp(type, "phone") == 0) {
            if (validate_phones(def, in, f) != 0)
                return -1;
            continue;
        }
        if (strcmp(type, "email") == 0) {
            if (validate_emails(in, f) != 0)
                return -1;
            continue;
        }
        json_t *v = json_object_get(in, name);
        bool empty = !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
        if (json_is_true(json_object_get(def, "required")) && empty && (creating || v))
            return fail(f, name, "required");
        if (empty)
            continue;
        const char *s = json_string_value(v);
        json_t *max = json_object_get(def, "maxLength");
        if (strcmp(type, "enum") == 0) {
            if (!s || !in_json_list(json_object_get(def, "options"), s))
                return fail(f, name, "valid");
            continue;
        }
        if (strcmp(type, "int") == 0) {
            json_t *n = coerce(e, name, v);
            bool ok = json_is_integer(n);
            json_decref(n);
            if (!ok)
                return fail(f, name, "valid");
            continue;
        }
        if ((strcmp(type, "date") == 0 || strcmp(type, "datetime") == 0) &&
            (!s || !matches_date(s, type[4] == 't')))
            return fail(f, name, "valid");
        if (s && json_is_integer(max) && (json_int_t)utf8_len(s) > json_integer_value(max))
            return fail(f, name, "maxLength");
        const char *pattern = jstr(def, "pattern");
        if (s && pattern && strcmp(pattern, "$noBadCharacters") == 0 && strpbrk(s, "<>="))
            return fail(f, name, "pattern");
    }
    return 0;
}

/* The write's attributes EspoCRM takes, sanitised: unknown ones dropped, phone numbers in their
 * stored form (list items otherwise as sent). New object. */
static json_t *filter_input(const struct espo_sim *e, const json_t *body)
{
    json_t *in = json_object(), *v;
    const char *k;
    json_object_foreach((json_t *)body, k, v)
    {
        if (!writable(e, k))
            continue;
        if (strcmp(k, "phoneNumberData") == 0 || strcmp(k, "emailAddressData") == 0) {
            json_t *list = json_array(), *it;
            size_t i;
            bool phone = k[0] == 'p';
            json_array_foreach(v, i, it)
            {
                if (!json_is_object(it))
                    continue;
                json_t *copy = json_copy(it);
                const char *num = jstr(it, "phoneNumber");
                if (phone && num) {
                    char *s = phone_espo_sanitize(num);
                    json_object_set_new(copy, "phoneNumber", json_string(s ? s : num));
                    free(s);
                }
                json_array_append_new(list, copy);
            }
            json_object_set_new(in, k, list);
        } else if (strcmp(k, "phoneNumber") == 0 && json_is_string(v)) {
            char *s = phone_espo_sanitize(json_string_value(v));
            json_object_set_new(in, k, json_string(s ? s : json_string_value(v)));
            free(s);
        } else {
            json_object_set(in, k, v);
        }
    }
    return in;
}

/* The stored form of a phone or e-mail list as sent: every item with all keys, optOut/invalid
 * false unless sent, the primary (the first marked, else the first) first. New array. */
static json_t *list_full(const struct espo_sim *e, const json_t *sent, bool phone)
{
    json_t *out = json_array(), *it;
    const char *key = phone ? "phoneNumber" : "emailAddress";
    const char *deftype = jstr(json_object_get(e->fields, "phoneNumber"), "defaultType");
    size_t i, primary = 0;
    bool found = false;
    json_array_foreach(sent, i, it)
    {
        if (!found && json_is_true(json_object_get(it, "primary"))) {
            primary = i;
            found = true;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        json_array_foreach(sent, i, it)
        {
            const char *value = jstr(it, key);
            if (!value || (pass == 0) != (i == primary))
                continue;
            json_t *full = json_object();
            json_object_set_new(full, key, json_string(value));
            if (phone) {
                const char *type = jstr(it, "type");
                json_object_set_new(full, "type", json_string(type ? type : deftype));
            } else {
                char *lower = lower_dup(value);
                json_object_set_new(full, "lower", json_string(lower ? lower : value));
                free(lower);
            }
            json_object_set_new(full, "primary", json_boolean(pass == 0));
            json_object_set_new(full, "optOut",
                                json_boolean(json_is_true(json_object_get(it, "optOut"))));
            json_object_set_new(full, "invalid",
                                json_boolean(json_is_true(json_object_get(it, "invalid"))));
            json_array_append_new(out, full);
        }
    }
    return out;
}

/* Stores a list's derived attributes: the primary's value and its optOut/invalid flags (null
 * when the list is empty). */
static void store_list(json_t *ent, json_t *full /* stolen */, bool phone)
{
    const char *key = phone ? "phoneNumber" : "emailAddress";
    json_t *primary = json_array_get(full, 0);
    char flag[40];
    json_object_set(ent, key, primary ? json_object_get(primary, key) : json_null());
    snprintf(flag, sizeof flag, "%sIsOptedOut", key);
    json_object_set(ent, flag, primary ? json_object_get(primary, "optOut") : json_null());
    snprintf(flag, sizeof flag, "%sIsInvalid", key);
    json_object_set(ent, flag, primary ? json_object_get(primary, "invalid") : json_null());
    json_object_set_new(ent, phone ? "phoneNumberData" : "emailAddressData", full);
}

static bool followed(const json_t *ent, const char *user)
{
    return in_json_list(json_object_get(ent, "followersIds"), user);
}

static void follow(struct espo_sim *e, json_t *ent, const char *user)
{
    if (!user || followed(ent, user))
        return;
    json_array_append_new(json_object_get(ent, "followersIds"), json_string(user));
    json_object_set_new(json_object_get(ent, "followersNames"), user,
                        json_string(user_name(e, user)));
}

/* The record as GET answers it to user. New object. */
static json_t *get_form(const struct espo_sim *e, const json_t *ent, const char *user)
{
    json_t *out = json_object();
    for (size_t i = 0; i < NATTRS; i++) {
        if (attr_dropped(e, ATTRS[i]))
            continue;
        if (strcmp(ATTRS[i], "isFollowed") == 0) {
            json_object_set_new(out, ATTRS[i], json_boolean(followed(ent, user)));
            continue;
        }
        json_t *v = json_object_get(ent, ATTRS[i]);
        json_object_set_new(out, ATTRS[i], v ? json_deep_copy(v) : json_null());
    }
    return out;
}

/* ---- webhook events ---------------------------------------------------------------------- */

/* Queues an event when an active webhook listens to it (07c: the create of a record while the
 * create webhook was inactive never arrived). Takes record. */
static void emit(struct espo_sim *e, const char *name, json_t *record, const char *user)
{
    char full[96];
    snprintf(full, sizeof full, ENTITY ".%s", name);
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

/* ---- stream notes and notifications ------------------------------------------------------ */

static json_t *note_new(struct espo_sim *e, const struct actor *a, const char *type,
                        const char *post, const json_t *parent, json_t *users /* stolen */,
                        json_t *data /* stolen */)
{
    char id[24], now[24];
    new_id(e, id, sizeof id);
    now_text(e, now, sizeof now);
    json_t *n = json_object();
    json_object_set_new(n, "id", json_string(id));
    json_object_set_new(n, "deleted", json_false());
    json_object_set_new(n, "post", post ? json_string(post) : json_null());
    json_object_set_new(n, "data", data ? data : json_object());
    json_object_set_new(n, "type", json_string(type));
    json_object_set_new(n, "targetType", users ? json_string("users") : json_null());
    json_object_set_new(n, "number", json_integer(++e->note_number));
    json_object_set_new(n, "isGlobal", json_false());
    json_object_set_new(n, "createdByGender", json_null());
    json_object_set_new(n, "isInternal", json_false());
    json_object_set_new(n, "isPinned", json_false());
    json_object_set_new(n, "reactionCounts", json_null());
    json_object_set_new(n, "myReactions", json_array());
    json_object_set_new(n, "createdAt", json_string(now));
    json_object_set_new(n, "modifiedAt", json_string(now));
    json_object_set_new(n, "parentId",
                        parent ? json_deep_copy(json_object_get(parent, "id")) : json_null());
    json_object_set_new(n, "parentType", parent ? json_string(ENTITY) : json_null());
    json_object_set_new(n, "parentName",
                        parent ? json_deep_copy(json_object_get(parent, "name")) : json_null());
    json_object_set_new(n, "relatedId", json_null());
    json_object_set_new(n, "relatedType", json_null());
    json_object_set_new(n, "attachmentsIds", json_array());
    json_object_set_new(n, "attachmentsNames", json_object());
    json_t *names = json_object(), *u;
    size_t i;
    json_array_foreach(users, i, u)
    {
        const char *uid = json_string_value(u);
        json_object_set_new(names, uid, json_string(user_name(e, uid)));
    }
    json_object_set_new(n, "usersIds", users ? users : json_array());
    json_object_set_new(n, "usersNames", names);
    json_object_set_new(n, "createdById", json_string(a->id));
    json_object_set_new(n, "createdByName", json_string(actor_name(e, a)));
    json_object_set_new(n, "modifiedById", json_null());
    json_object_set_new(n, "modifiedByName", json_null());
    json_object_set_new(n, "superParentId", json_null());
    json_object_set_new(n, "superParentType", json_null());
    json_object_set_new(n, "attachmentsTypes", json_object());
    json_array_append_new(e->notes, n);
    return n; /* borrowed */
}

/* A notification for user: type Note (note given) or Message. Borrowed. */
static json_t *notify(struct espo_sim *e, const char *user, const json_t *note, const char *message,
                      const char *created_by)
{
    char id[24], now[24];
    new_id(e, id, sizeof id);
    now_text(e, now, sizeof now);
    json_t *n = json_object();
    json_object_set_new(n, "id", json_string(id));
    json_object_set_new(n, "deleted", json_false());
    json_object_set_new(n, "number", json_integer(++e->notif_number));
    json_object_set_new(
        n, "data", note ? json_pack("{s:O}", "noteId", json_object_get(note, "id")) : json_null());
    json_object_set_new(n, "type", json_string(note ? "Note" : "Message"));
    json_object_set_new(n, "read", json_false());
    json_object_set_new(n, "emailIsProcessed", json_false());
    json_object_set_new(n, "createdAt", json_string(now));
    json_object_set_new(n, "message", message ? json_string(message) : json_null());
    json_object_set_new(n, "userId", json_string(user));
    json_object_set_new(n, "userName", json_string(user_name(e, user)));
    json_object_set_new(n, "relatedId",
                        note ? json_deep_copy(json_object_get(note, "id")) : json_null());
    json_object_set_new(n, "relatedType", note ? json_string("Note") : json_null());
    json_object_set_new(n, "relatedParentId",
                        note ? json_deep_copy(json_object_get(note, "parentId")) : json_null());
    json_object_set_new(n, "relatedParentType",
                        note ? json_deep_copy(json_object_get(note, "parentType")) : json_null());
    json_object_set_new(n, "createdById", created_by ? json_string(created_by) : json_null());
    json_array_append_new(e->notifications, n);
    return n;
}

/* A new object with keys of src in the given order (absent ones as null). */
static json_t *pick(const json_t *src, const char *const *keys, size_t n)
{
    json_t *out = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(src, keys[i]);
        json_object_set_new(out, keys[i], v ? json_deep_copy(v) : json_null());
    }
    return out;
}
#define PICK(src, keys) pick((src), (keys), sizeof(keys) / sizeof((keys)[0]))

/* ---- entities ---------------------------------------------------------------------------- */

static json_t *entity_blank(const struct espo_sim *e, const char *id)
{
    json_t *ent = json_object();
    for (size_t i = 0; i < NATTRS; i++)
        if (strcmp(ATTRS[i], "isFollowed") != 0)
            json_object_set_new(ent, ATTRS[i], json_null());
    json_object_set_new(ent, "id", json_string(id));
    json_object_set_new(ent, "deleted", json_false());
    json_t *def = json_object_get(json_object_get(e->fields, "syncStatus"), "default");
    json_object_set(ent, "syncStatus", def ? def : json_null());
    json_object_set_new(ent, "emailAddressData", json_array());
    json_object_set_new(ent, "phoneNumberData", json_array());
    json_object_set_new(ent, "teamsIds", json_array());
    json_object_set_new(ent, "teamsNames", json_object());
    json_object_set_new(ent, "followersIds", json_array());
    json_object_set_new(ent, "followersNames", json_object());
    return ent;
}

/* The object of `values` keys in attribute order (isFollowed as given there). */
static json_t *ordered(const struct espo_sim *e, const json_t *values)
{
    json_t *out = json_object();
    for (size_t i = 0; i < NATTRS; i++) {
        json_t *v = json_object_get(values, ATTRS[i]);
        if (v && !attr_dropped(e, ATTRS[i]))
            json_object_set(out, ATTRS[i], v);
    }
    return out;
}

enum { CREATE_QUIET = 1, CREATE_NO_ASSIGN = 2 };

/* Applies a create's phone or e-mail input to ent and the save's set attributes. */
static void create_list(const struct espo_sim *e, json_t *ent, json_t *set, const json_t *in,
                        bool phone)
{
    const char *key = phone ? "phoneNumber" : "emailAddress";
    const char *list_key = phone ? "phoneNumberData" : "emailAddressData";
    json_t *sent = json_object_get(in, list_key), *full;
    if (sent) {
        full = list_full(e, sent, phone);
        json_object_set(set, list_key, sent);
    } else if (jstr(in, key) && *jstr(in, key)) {
        json_t *one = json_pack("[{s:O,s:b}]", key, json_object_get(in, key), "primary", 1);
        full = list_full(e, one, phone);
        json_decref(one);
    } else {
        return;
    }
    json_t *primary = json_array_get(full, 0);
    if (primary) /* the answer's emailAddress is the lower-case form (02 step 2) */
        json_object_set(set, key, json_object_get(primary, phone ? key : "lower"));
    store_list(ent, full, phone);
}

/* EspoCRM's create as actor a. Answers req (if not NULL) and returns the stored record
 * (borrowed), or NULL after an error answer. */
static json_t *do_create(struct espo_sim *e, struct httpd_req *req, const json_t *body,
                         const struct actor *a, int flags)
{
    json_t *in = filter_input(e, body);
    struct vfail vf;
    if (validate(e, in, true, &vf) != 0) {
        if (req)
            respond_validation(req, &vf);
        json_decref(in);
        return NULL;
    }
    const char *assigned = jstr(in, "assignedUserId");
    if (a->kind == ACTOR_API && assigned && strcmp(assigned, a->id) != 0) {
        if (req)
            respond(req, 403, "Assignment failure: assigned user or team not allowed.", NULL);
        json_decref(in);
        return NULL;
    }
    char id[24], now[24];
    new_id(e, id, sizeof id);
    now_text(e, now, sizeof now);
    json_t *ent = entity_blank(e, id);
    json_t *set = json_pack("{s:s,s:b}", "id", id, "deleted", 0); /* what the save set */
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        static const char *const lists[] = {"phoneNumberData", "emailAddressData", "phoneNumber",
                                            "emailAddress"};
        if (IN(k, lists))
            continue;
        json_object_set_new(ent, k, coerce(e, k, v));
        json_object_set(set, k, v);
    }
    create_list(e, ent, set, in, true);
    create_list(e, ent, set, in, false);
    if (a->kind == ACTOR_UI && !(flags & CREATE_NO_ASSIGN) &&
        !json_object_get(in, "assignedUserId"))
        json_object_set_new(set, "assignedUserId", json_string(a->id));
    assigned = jstr(set, "assignedUserId");
    if (assigned) {
        user_seen(e, assigned);
        json_object_set_new(ent, "assignedUserId", json_string(assigned));
        json_object_set_new(ent, "assignedUserName", json_string(user_name(e, assigned)));
        json_object_set_new(set, "assignedUserName", json_string(user_name(e, assigned)));
    }
    if (a->kind == ACTOR_UI && !(flags & CREATE_NO_ASSIGN)) { /* creator and assignee follow */
        follow(e, ent, a->id);
        follow(e, ent, assigned);
    }
    json_object_set_new(ent, "syncStatus", json_string("pending_sync")); /* formula */
    json_object_set_new(set, "syncStatus", json_string("pending_sync"));
    static const char *const stamps[] = {"createdAt", "modifiedAt", "streamUpdatedAt"};
    for (size_t i = 0; i < 3; i++) {
        json_object_set_new(ent, stamps[i], json_string(now));
        json_object_set_new(set, stamps[i], json_string(now));
    }
    static const char *const flag_names[] = {"emailAddressIsOptedOut", "emailAddressIsInvalid",
                                             "phoneNumberIsOptedOut", "phoneNumberIsInvalid"};
    for (size_t i = 0; i < 4; i++)
        json_object_set_new(set, flag_names[i], json_false());
    json_object_set_new(ent, "createdById", json_string(a->id));
    json_object_set_new(ent, "createdByName", json_string(actor_name(e, a)));
    json_object_set_new(set, "createdById", json_string(a->id));
    json_object_set_new(ent, "versionNumber", json_integer(1));
    json_object_set_new(set, "versionNumber", json_integer(1));
    json_object_set_new(set, "isFollowed", json_boolean(followed(ent, a->id)));
    json_object_set_new(e->entities, id, ent);

    if (!(flags & CREATE_QUIET)) {
        emit(e, "create", ordered(e, set), a->id);
        json_t *data = assigned ? json_pack("{s:s,s:s}", "assignedUserId", assigned,
                                            "assignedUserName", user_name(e, assigned))
                                : json_object();
        note_new(e, a, "Create", NULL, ent, NULL, data);
    }
    if (req) { /* what the save set, and what EspoCRM loads with the record */
        for (size_t i = 0; i < sizeof LOADED / sizeof LOADED[0]; i++) {
            json_t *lv = json_object_get(ent, LOADED[i]);
            if (strcmp(LOADED[i], "isFollowed") != 0)
                json_object_set(set, LOADED[i], lv ? lv : json_null());
        }
        respond(req, 200, NULL, ordered(e, set));
    }
    json_decref(set);
    json_decref(in);
    return ent;
}

/* PHP's (int) of the X-Version-Number header: leading digits, else 0 (04 step 17). */
static long long version_header(const char *h)
{
    return strtoll(h, NULL, 10);
}

/* The stored values of the written attributes that differ from what the write sets (04): a
 * list write stands for its flags, its primary value and itself. NULL when none differ. */
static json_t *occ_values(const struct espo_sim *e, const json_t *ent, const json_t *in)
{
    json_t *values = json_object(), *v;
    const char *k;
    json_object_foreach((json_t *)in, k, v)
    {
        bool phone = strcmp(k, "phoneNumberData") == 0;
        if (phone || strcmp(k, "emailAddressData") == 0) {
            const char *key = phone ? "phoneNumber" : "emailAddress";
            json_t *full = list_full(e, v, phone), *primary = json_array_get(full, 0);
            json_t *sent_primary = NULL, *it;
            size_t i;
            json_array_foreach(v, i, it)
            {
                if (!sent_primary && json_is_true(json_object_get(it, "primary")))
                    sent_primary = it;
            }
            if (!sent_primary)
                sent_primary = json_array_get(v, 0);
            char attr[40];
            const char *flag_keys[] = {"optOut", "invalid"},
                       *flag_attrs[] = {"IsOptedOut", "IsInvalid"};
            for (int f = 0; f < 2; f++) {
                snprintf(attr, sizeof attr, "%s%s", key, flag_attrs[f]);
                json_t *sent = sent_primary ? json_object_get(sent_primary, flag_keys[f]) : NULL;
                if (!values_equal(json_object_get(ent, attr), sent))
                    json_object_set(values, attr, json_object_get(ent, attr));
            }
            json_t *pv = primary ? json_object_get(primary, key) : NULL;
            if (!values_equal(json_object_get(ent, key), pv))
                json_object_set(values, key, json_object_get(ent, key));
            if (!values_equal(json_object_get(ent, k), v))
                json_object_set(values, k, json_object_get(ent, k));
            json_decref(full);
            continue;
        }
        json_t *c = coerce(e, k, v);
        if (!values_equal(json_object_get(ent, k), c))
            json_object_set(values, k, json_object_get(ent, k));
        json_decref(c);
    }
    if (json_object_size(values) == 0) {
        json_decref(values);
        return NULL;
    }
    return values;
}

/* An update's phone or e-mail input: the answer shows the list as sent; the derived value
 * changes only with a new primary (phoneNumber) or one that differs beyond case (emailAddress:
 * the answer shows it stale otherwise, 03 step 16). Returns whether the formula sees a change. */
static bool update_list(const struct espo_sim *e, json_t *ent, json_t *ans, json_t *changed,
                        const json_t *in, bool phone)
{
    const char *key = phone ? "phoneNumber" : "emailAddress";
    const char *list_key = phone ? "phoneNumberData" : "emailAddressData";
    json_t *sent = json_object_get(in, list_key), *full;
    bool hit = false;
    if (sent) {
        json_object_set(ans, list_key, sent);
        if (!values_equal(json_object_get(ent, list_key), sent)) {
            json_object_set(changed, list_key, sent);
            hit = e->formula_v2;
        }
        full = list_full(e, sent, phone);
    } else if (json_object_get(in, key)) {
        json_t *v = json_object_get(in, key);
        json_object_set(ans, key, v);
        if (values_equal(json_object_get(ent, key), v))
            return false;
        json_object_set(changed, key, v);
        /* the primary item takes the new value; an empty one removes it */
        json_t *items = json_deep_copy(json_object_get(ent, list_key));
        if (json_array_size(items) > 0)
            json_array_remove(items, 0);
        if (json_is_string(v) && json_string_length(v) > 0) {
            json_t *first = json_pack("{s:O,s:b}", key, v, "primary", 1);
            json_t *old = json_array_get(json_object_get(ent, list_key), 0);
            if (phone && old)
                json_object_set(first, "type", json_object_get(old, "type"));
            json_array_insert_new(items, 0, first);
        }
        full = list_full(e, items, phone);
        json_decref(items);
        store_list(ent, full, phone);
        return true;
    } else {
        return false;
    }
    json_t *primary = json_array_get(full, 0);
    if (primary) {
        const char *now = jstr(primary, phone ? key : "lower");
        const char *old = jstr(ent, key);
        char *old_lower = phone ? NULL : lower_dup(old);
        bool differs = phone ? !old || strcmp(old, now) != 0
                             : !old || strcmp(old_lower ? old_lower : "", now) != 0;
        free(old_lower);
        if (differs) {
            json_object_set_new(ans, key, json_string(now));
            json_object_set_new(changed, key, json_string(now));
        }
    }
    store_list(ent, full, phone);
    return hit;
}

/* EspoCRM's update of ent as actor a (PUT and PATCH). Answers req. */
static void do_update(struct espo_sim *e, struct httpd_req *req, json_t *ent, const json_t *body,
                      const struct actor *a)
{
    json_t *in = filter_input(e, body);
    const char *header = httpd_req_header(req, "X-Version-Number");
    if (header) {
        json_int_t stored = json_integer_value(json_object_get(ent, "versionNumber"));
        json_t *values = version_header(header) != stored ? occ_values(e, ent, in) : NULL;
        if (values) {
            respond(req, 409, "modified",
                    json_pack("{s:o,s:I}", "values", values, "versionNumber", stored));
            json_decref(in);
            return;
        }
    }
    struct vfail vf;
    if (validate(e, in, false, &vf) != 0) {
        respond_validation(req, &vf);
        json_decref(in);
        return;
    }
    const char *assigned = jstr(in, "assignedUserId");
    if (a->kind == ACTOR_API && assigned && strcmp(assigned, a->id) != 0 &&
        !values_equal(json_object_get(ent, "assignedUserId"),
                      json_object_get(in, "assignedUserId"))) {
        respond(req, 403, "Assignment failure: assigned user or team not allowed.", NULL);
        json_decref(in);
        return;
    }
    json_t *ans = get_form(e, ent, a->id); /* as loaded before the save */
    json_t *changed = json_object(), *v;
    bool hit = false;
    const char *k;
    json_object_foreach(in, k, v)
    {
        static const char *const lists[] = {"phoneNumberData", "emailAddressData", "phoneNumber",
                                            "emailAddress"};
        if (IN(k, lists))
            continue;
        json_t *c = coerce(e, k, v);
        json_object_set(ans, k, v);
        if (!values_equal(json_object_get(ent, k), c)) {
            json_object_set(changed, k, c);
            json_object_set(ent, k, c);
            hit |= IN(k, FORMULA_FIELDS);
            if (strcmp(k, "assignedUserId") == 0) {
                const char *uid = json_string_value(c);
                json_t *name = uid ? json_string(user_name(e, uid)) : json_null();
                user_seen(e, uid);
                json_object_set(ent, "assignedUserName", name);
                json_object_set(ans, "assignedUserName", name);
                json_object_set(changed, "assignedUserName", name);
                json_decref(name);
            }
        }
        json_decref(c);
    }
    hit |= update_list(e, ent, ans, changed, in, true);
    hit |= update_list(e, ent, ans, changed, in, false);
    if (hit && !is_sync_user(e, a->id)) { /* the formula */
        if (strcmp(jstr(ent, "syncStatus") ? jstr(ent, "syncStatus") : "", "dirty") != 0) {
            json_object_set_new(ent, "syncStatus", json_string("dirty"));
            json_object_set_new(changed, "syncStatus", json_string("dirty"));
        }
        json_object_set_new(ans, "syncStatus", json_string("dirty"));
    }
    char now[24];
    now_text(e, now, sizeof now);
    json_int_t version = json_integer_value(json_object_get(ent, "versionNumber")) + 1;
    json_object_set_new(ent, "versionNumber", json_integer(version));
    json_object_set_new(ans, "versionNumber", json_integer(version));
    json_object_set_new(ent, "modifiedAt", json_string(now));
    json_object_set_new(ans, "modifiedAt", json_string(now));
    const char *before = jstr(ent, "modifiedById");
    if (!before || strcmp(before, a->id) != 0) {
        json_object_set_new(changed, "modifiedById", json_string(a->id));
        json_object_set_new(changed, "modifiedByName", json_string(actor_name(e, a)));
    }
    json_object_set_new(ent, "modifiedById", json_string(a->id));
    json_object_set_new(ent, "modifiedByName", json_string(actor_name(e, a)));
    json_object_set_new(ans, "modifiedById", json_string(a->id));
    json_object_set_new(ans, "modifiedByName", json_string(actor_name(e, a)));
    json_object_set_new(ans, "isFollowed", json_boolean(followed(ent, a->id)));

    if (json_object_size(changed) > 0) { /* 07: the update record, then fieldUpdate.<field> */
        json_t *record = ordered(e, changed);
        json_object_set(record, "id", json_object_get(ent, "id"));
        emit(e, "update", record, a->id);
        json_object_foreach(changed, k, v)
        {
            if (strcmp(k, "modifiedById") == 0 || strcmp(k, "modifiedByName") == 0)
                continue;
            char name[96];
            snprintf(name, sizeof name, "fieldUpdate.%s", k);
            emit(e, name, json_pack("{s:O,s:O}", "id", json_object_get(ent, "id"), k, v), a->id);
        }
    }
    json_decref(changed);
    json_decref(in);
    respond(req, 200, NULL, ans);
}

static void do_delete(struct espo_sim *e, struct httpd_req *req, const char *id,
                      const struct actor *a)
{
    if (!json_object_get(e->entities, id)) {
        respond_not_found(req, id, false);
        return;
    }
    emit(e, "delete", json_pack("{s:s}", "id", id), a->id);
    json_object_del(e->entities, id);
    respond(req, 200, NULL, json_true());
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
        json_object_foreach(v, k, item)
        {
            json_array_append(out, item);
        }
    } else if (json_is_array(v)) {
        json_array_extend(out, v);
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

/* clang-format off */
static const char *const WHERE_TYPES[] = {
    "equals", "notEquals", "in", "isNull", "isNotNull", "lessThan", "lessThanOrEquals",
    "greaterThan", "greaterThanOrEquals", "or", "and"};
/* clang-format on */

/* Checks a where item (05 steps 8, 28, 29): 0, or -1 with reason. */
static int where_check(const struct espo_sim *e, json_t *cond, char *reason, size_t len)
{
    const char *type = jstr(cond, "type");
    if (!type || !IN(type, WHERE_TYPES)) {
        snprintf(reason, len, "Unknown where item type '%s'.", type ? type : "");
        return -1;
    }
    if (strcmp(type, "or") == 0 || strcmp(type, "and") == 0) {
        json_t *subs = as_list(json_object_get(cond, "value")), *sub;
        size_t i;
        int rc = 0;
        json_array_foreach(subs, i, sub)
        {
            if (rc == 0)
                rc = where_check(e, sub, reason, len);
        }
        json_decref(subs);
        return rc;
    }
    const char *attr = jstr(cond, "attribute");
    if (!attr || !queryable(e, attr)) {
        snprintf(reason, len, "Not existing attribute '%s' in where.", attr ? attr : "");
        return -1;
    }
    return 0;
}

/* Whether ent matches cond (SQL semantics: a null stored value matches no comparison). */
static bool where_match(const json_t *ent, json_t *cond)
{
    const char *type = jstr(cond, "type");
    json_t *value = json_object_get(cond, "value");
    if (strcmp(type, "or") == 0 || strcmp(type, "and") == 0) {
        bool is_or = type[0] == 'o', result = !is_or;
        json_t *subs = as_list(value), *sub;
        size_t i;
        json_array_foreach(subs, i, sub)
        {
            bool m = where_match(ent, sub);
            if (is_or ? m : !m) {
                result = is_or;
                break;
            }
        }
        json_decref(subs);
        return result;
    }
    json_t *field = json_object_get(ent, jstr(cond, "attribute"));
    bool null = !field || json_is_null(field);
    if (strcmp(type, "isNull") == 0)
        return null;
    if (strcmp(type, "isNotNull") == 0)
        return !null;
    if (null)
        return false;
    if (strcmp(type, "in") == 0) {
        json_t *list = as_list(value), *item;
        size_t i;
        bool found = false;
        json_array_foreach(list, i, item)
        {
            found |= json_is_string(item) && compare(field, json_string_value(item)) == 0;
        }
        json_decref(list);
        return found;
    }
    const char *text = json_string_value(value);
    if (!text)
        return false;
    int c = compare(field, text);
    if (strcmp(type, "equals") == 0)
        return c == 0;
    if (strcmp(type, "notEquals") == 0)
        return c != 0;
    if (strcmp(type, "lessThan") == 0)
        return c < 0;
    if (strcmp(type, "lessThanOrEquals") == 0)
        return c <= 0;
    if (strcmp(type, "greaterThan") == 0)
        return c > 0;
    return c >= 0;
}

static const char *g_order_by; /* qsort has no user pointer; the loop is single-threaded */
static int g_order_desc;

static int by_order(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_t *fx = json_object_get(x, g_order_by), *fy = json_object_get(y, g_order_by);
    bool nx = !fx || json_is_null(fx), ny = !fy || json_is_null(fy);
    int c;
    if (nx || ny)
        c = nx && ny ? 0 : nx ? -1 : 1; /* NULL first, as MySQL sorts ascending */
    else if (json_is_number(fx) && json_is_number(fy))
        c = json_number_value(fx) < json_number_value(fy)   ? -1
            : json_number_value(fx) > json_number_value(fy) ? 1
                                                            : 0;
    else
        c = strcmp(json_is_string(fx) ? json_string_value(fx) : "",
                   json_is_string(fy) ? json_string_value(fy) : "");
    if (c == 0) /* ties by id, in the same direction (05 steps 22, 25, 26) */
        c = strcmp(jstr(x, "id"), jstr(y, "id"));
    return g_order_desc ? -c : c;
}

/* Whether the comma-separated list has item k. */
static bool in_csv(const char *list, const char *k)
{
    size_t n = strlen(k);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, k, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* A list item: every listed attribute, or with select: id, the selected ones, the order
 * attribute, createdById and assignedUserId (05 steps 9-33). */
static json_t *list_item(const struct espo_sim *e, const json_t *ent, const char *select,
                         const char *order_by)
{
    json_t *out = json_object();
    for (size_t i = 0; i < NATTRS; i++) {
        const char *k = ATTRS[i];
        if (attr_dropped(e, k) || IN(k, NOT_LISTED))
            continue;
        if (select) {
            bool want = strcmp(k, "id") == 0 || strcmp(k, order_by) == 0 ||
                        strcmp(k, "createdById") == 0 || strcmp(k, "assignedUserId") == 0;
            if (!want && !IN(k, NOT_QUERYABLE))
                want = in_csv(select, k);
            if (!want)
                continue;
        }
        json_t *v = json_object_get(ent, k);
        json_object_set_new(out, k, v ? json_deep_copy(v) : json_null());
    }
    return out;
}

static void on_list(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    json_t *q = query_tree(httpd_req_query(req));
    json_t *where = as_list(json_object_get(q, "where")), *cond;
    const char *ms = jstr(q, "maxSize"), *os = jstr(q, "offset");
    const char *order_by = jstr(q, "orderBy"), *order = jstr(q, "order");
    const char *select = jstr(q, "select");
    long max = ms ? strtol(ms, NULL, 10) : LIST_MAX, off = os ? strtol(os, NULL, 10) : 0;
    char reason[256] = "";
    size_t i;
    int bad = 0;
    if (max > LIST_MAX) {
        respond(req, 403, "Max size should not exceed 200. Use offset and limit.", NULL);
        goto out;
    }
    json_array_foreach(where, i, cond)
    {
        if (!bad)
            bad = where_check(e, cond, reason, sizeof reason);
    }
    if (!bad && order_by && !queryable(e, order_by)) {
        snprintf(reason, sizeof reason, "Order by non-existing field '%s'.", order_by);
        bad = 1;
    }
    if (bad) {
        respond(req, 400, reason, NULL);
        goto out;
    }
    size_t n = json_object_size(e->entities), count = 0;
    json_t **hits = calloc(n ? n : 1, sizeof *hits), *ent;
    const char *id;
    json_object_foreach(e->entities, id, ent)
    {
        bool all = true;
        json_array_foreach(where, i, cond)
        {
            all = all && where_match(ent, cond);
        }
        if (all)
            hits[count++] = ent;
    }
    g_order_by = order_by ? order_by : "createdAt";
    g_order_desc = order_by ? order && strcasecmp(order, "desc") == 0
                            : !(order && strcasecmp(order, "asc") == 0);
    qsort(hits, count, sizeof *hits, by_order);
    max = max <= 0 ? LIST_MAX : max;
    off = off < 0 ? 0 : off;
    json_t *list = json_array();
    for (size_t j = (size_t)off; j < count && json_array_size(list) < (size_t)max; j++)
        json_array_append_new(list, list_item(e, hits[j], select, g_order_by));
    free(hits);
    const char *no_total = httpd_req_header(req, "X-No-Total");
    json_int_t total = no_total && strcmp(no_total, "true") == 0 ? -1 : (json_int_t)count;
    respond(req, 200, NULL, json_pack("{s:I,s:o}", "total", total, "list", list));
out:
    json_decref(where);
    json_decref(q);
}

/* ---- entity handlers ---------------------------------------------------------------------- */

static void on_get(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    const char *id = httpd_req_param(req, "id");
    json_t *ent = json_object_get(e->entities, id);
    if (!ent)
        respond_not_found(req, id, true);
    else
        respond(req, 200, NULL, get_form(e, ent, a.id));
}

static void create_as(struct espo_sim *e, struct httpd_req *req, const struct actor *a)
{
    json_t *body = body_object(req);
    if (body)
        do_create(e, req, body, a, 0);
    json_decref(body);
}

static void update_as(struct espo_sim *e, struct httpd_req *req, const struct actor *a)
{
    const char *id = httpd_req_param(req, "id");
    json_t *ent = json_object_get(e->entities, id);
    if (!ent) {
        respond_not_found(req, id, false);
        return;
    }
    json_t *body = body_object(req);
    if (body)
        do_update(e, req, ent, body, a);
    json_decref(body);
}

static void on_post(struct httpd_req *req, void *ud)
{
    struct actor a;
    if (authenticate(ud, req, &a))
        create_as(ud, req, &a);
}

static void on_put(struct httpd_req *req, void *ud)
{
    struct actor a;
    if (authenticate(ud, req, &a))
        update_as(ud, req, &a);
}

static void on_delete(struct httpd_req *req, void *ud)
{
    struct actor a;
    if (authenticate(ud, req, &a))
        do_delete(ud, req, httpd_req_param(req, "id"), &a);
}

/* ---- App/user, metadata -------------------------------------------------------------------- */

static json_t *app_user(const struct espo_sim *e, const struct actor *a)
{
    json_t *u = json_deep_copy(e->user_template);
    const char *name = actor_name(e, a);
    json_object_set_new(u, "id", json_string(a->id));
    json_object_set_new(u, "name", json_string(name));
    json_object_set_new(u, "userName", json_string(a->kind == ACTOR_API ? "sync" : a->id));
    json_object_set_new(u, "lastName", json_string(name));
    json_object_set_new(u, "type",
                        json_string(a->kind == ACTOR_API     ? "api"
                                    : a->kind == ACTOR_ADMIN ? "admin"
                                                             : "regular"));
    if (a->kind != ACTOR_API)
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
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    if (a.kind != ACTOR_API) {
        respond(req, 200, NULL, app_user(e, &a));
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
        respond(req, 500, NULL, NULL);
}

/* GET /Metadata?key=a.b.c (12): the value at the path, null when there is none. */
static void on_metadata(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    char key[512] = "";
    httpd_query_get(httpd_req_query(req), "key", key, sizeof key);
    json_t *root = json_pack("{s:{s:O}}", "entityDefs", ENTITY, e->defs), *node = root;
    for (char *save = NULL, *part = strtok_r(key, ".", &save); part && node;
         part = strtok_r(NULL, ".", &save))
        node = json_object_get(node, part);
    respond(req, 200, NULL, node ? json_deep_copy(node) : json_null());
    json_decref(root);
}

/* ---- stream and notifications (06, 11) --------------------------------------------------- */

/* clang-format off */
static const char *const NOTE_ANSWER_PARENT[] = {
    "id", "deleted", "post", "data", "type", "isInternal", "reactionCounts", "myReactions",
    "createdAt", "modifiedAt", "parentId", "parentType", "parentName", "relatedName",
    "attachmentsIds", "attachmentsNames", "createdById", "createdByName", "modifiedByName",
    "attachmentsTypes"};
static const char *const NOTE_ANSWER_USERS[] = {
    "id", "deleted", "post", "data", "type", "targetType", "isInternal", "reactionCounts",
    "myReactions", "createdAt", "modifiedAt", "parentName", "relatedName", "attachmentsIds",
    "attachmentsNames", "usersIds", "usersNames", "createdById", "createdByName",
    "modifiedByName", "attachmentsTypes"};
static const char *const NOTE_DATA_PARENT[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "createdAt", "modifiedAt", "parentId",
    "parentType", "parentName", "relatedId", "relatedType", "attachmentsIds", "attachmentsNames",
    "createdById", "createdByName", "modifiedById", "modifiedByName", "superParentId",
    "superParentType", "attachmentsTypes"};
static const char *const NOTE_DATA_USERS[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "createdAt", "modifiedAt", "parentId",
    "parentType", "relatedId", "relatedType", "attachmentsIds", "attachmentsNames", "usersIds",
    "usersNames", "createdById", "createdByName", "modifiedById", "modifiedByName",
    "superParentId", "superParentType", "attachmentsTypes"};
static const char *const STREAM_POST[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "reactionCounts", "myReactions", "createdAt",
    "modifiedAt", "parentId", "parentType", "relatedId", "relatedType", "attachmentsIds",
    "attachmentsNames", "createdById", "createdByName", "modifiedById", "modifiedByName",
    "superParentId", "superParentType", "attachmentsTypes"};
static const char *const STREAM_CREATE[] = {
    "id", "deleted", "post", "data", "type", "targetType", "number", "isGlobal",
    "createdByGender", "isInternal", "isPinned", "reactionCounts", "myReactions", "createdAt",
    "modifiedAt", "parentId", "parentType", "relatedId", "relatedType", "createdById",
    "createdByName", "modifiedById", "modifiedByName", "superParentId", "superParentType"};
static const char *const NOTIFICATION_LISTED[] = {
    "id", "deleted", "number", "data", "noteData", "type", "read", "emailIsProcessed",
    "createdAt", "message", "userId", "userName", "relatedId", "relatedType", "relatedParentId",
    "relatedParentType", "createdById"};
static const char *const NOTIFICATION_CREATED[] = {
    "id", "deleted", "type", "read", "emailIsProcessed", "createdAt", "message", "userId",
    "userName", "relatedName", "relatedParentName", "createdById", "createdByName"};
/* clang-format on */

static json_t *note_find(const struct espo_sim *e, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(e->notes, i, n)
    {
        if (id && strcmp(jstr(n, "id"), id) == 0)
            return n;
    }
    return NULL;
}

/* POST /Note: a stream Post on a record (its followers are notified) or a direct message to
 * users (each is notified). */
static void on_note(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    json_t *body = authenticate(e, req, &a) ? body_object(req) : NULL;
    if (!body)
        return;
    const char *type = jstr(body, "type") ? jstr(body, "type") : "Post";
    const char *post = jstr(body, "post"), *target = jstr(body, "targetType");
    json_t *v;
    size_t i;
    if (target && strcmp(target, "users") == 0) {
        json_t *ids = json_object_get(body, "usersIds");
        if (a.kind == ACTOR_API && !e->message_all) {
            json_array_foreach(ids, i, v)
            {
                if (!json_is_string(v) || strcmp(json_string_value(v), a.id) != 0) {
                    respond(req, 403, "Not permitted to post to anybody except self.", NULL);
                    goto out;
                }
            }
        }
        json_t *users = json_array();
        json_array_foreach(ids, i, v)
        {
            if (!json_is_string(v) || !json_object_get(e->users, json_string_value(v))) {
                json_decref(users);
                respond(req, 403,
                        "Can't relate with non-existing record. entity type: Note, link: users.",
                        json_pack("{s:{s:s,s:n,s:{s:s}}}", "messageTranslation", "label",
                                  "cannotRelateNonExisting", "scope", "data", "foreignEntityType",
                                  "User"));
                goto out;
            }
            json_array_append(users, v);
        }
        json_t *note = note_new(e, &a, type, post, NULL, users, NULL);
        json_array_foreach(json_object_get(note, "usersIds"), i, v)
        {
            if (strcmp(json_string_value(v), a.id) != 0)
                notify(e, json_string_value(v), note, NULL, NULL);
        }
        respond(req, 200, NULL, PICK(note, NOTE_ANSWER_USERS));
        goto out;
    }
    const char *parent_id = jstr(body, "parentId"), *parent_type = jstr(body, "parentType");
    json_t *parent = parent_id ? json_object_get(e->entities, parent_id) : NULL;
    if (parent_id && (!parent || !parent_type || strcmp(parent_type, ENTITY) != 0)) {
        respond_not_found(req, parent_id, true);
        goto out;
    }
    json_t *note = note_new(e, &a, type, post, parent, NULL, NULL);
    json_array_foreach(json_object_get(parent, "followersIds"), i, v)
    {
        if (strcmp(json_string_value(v), a.id) != 0) /* the followers (06 steps 5-8) */
            notify(e, json_string_value(v), note, NULL, NULL);
    }
    respond(req, 200, NULL, PICK(note, NOTE_ANSWER_PARENT));
out:
    json_decref(body);
}

/* POST /Notification: only an admin may (06 steps 2, 3). */
static void on_notification_create(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    if (a.kind != ACTOR_ADMIN) {
        respond(req, 403, "No create access.", NULL);
        return;
    }
    json_t *body = body_object(req);
    if (!body)
        return;
    const char *user = jstr(body, "userId");
    if (!user) {
        struct vfail vf = {"userId", "required"};
        respond_validation(req, &vf);
    } else {
        json_t *n = notify(e, user, NULL, jstr(body, "message"), a.id);
        json_t *ans = PICK(n, NOTIFICATION_CREATED);
        json_object_set_new(ans, "createdByName", json_string(actor_name(e, &a)));
        respond(req, 200, NULL, ans);
    }
    json_decref(body);
}

static long query_long(const char *query, const char *name, long def)
{
    char buf[32];
    return httpd_query_get(query, name, buf, sizeof buf) > 0 ? strtol(buf, NULL, 10) : def;
}

/* GET /Notification: the user's, newest first; total -1 when more exist, else -2; the listed
 * ones are read afterwards (06 steps 4-14). */
static void on_notifications_list(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    long max = query_long(httpd_req_query(req), "maxSize", 20);
    long off = query_long(httpd_req_query(req), "offset", 0), seen = 0;
    json_t *list = json_array(), *marked = json_array(), *n;
    bool more = false;
    for (size_t i = json_array_size(e->notifications); i-- > 0;) {
        n = json_array_get(e->notifications, i);
        if (strcmp(jstr(n, "userId"), a.id) != 0 || seen++ < off)
            continue;
        if ((long)json_array_size(list) >= max) {
            more = true;
            break;
        }
        json_t *item = PICK(n, NOTIFICATION_LISTED);
        json_t *note = note_find(e, jstr(json_object_get(n, "data"), "noteId"));
        if (note)
            json_object_set_new(item, "noteData",
                                jstr(note, "parentId") ? PICK(note, NOTE_DATA_PARENT)
                                                       : PICK(note, NOTE_DATA_USERS));
        else
            json_object_del(item, "noteData");
        json_array_append_new(list, item);
        json_array_append(marked, n);
    }
    size_t i;
    json_array_foreach(marked, i, n)
    {
        json_object_set_new(n, "read", json_true());
    }
    json_decref(marked);
    respond(req, 200, NULL, json_pack("{s:i,s:o}", "total", more ? -1 : -2, "list", list));
}

static void on_not_read_count(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    size_t i;
    json_t *n;
    json_int_t count = 0;
    json_array_foreach(e->notifications, i, n)
    {
        count += strcmp(jstr(n, "userId"), a.id) == 0 && !json_is_true(json_object_get(n, "read"));
    }
    respond(req, 200, NULL, json_integer(count));
}

/* GET /CBeteiligte/{id}/stream: the record's notes, newest first (06 step 9). */
static void on_stream(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!authenticate(e, req, &a))
        return;
    const char *id = httpd_req_param(req, "id");
    if (!json_object_get(e->entities, id)) {
        respond_not_found(req, id, true);
        return;
    }
    long max = query_long(httpd_req_query(req), "maxSize", 20);
    json_t *list = json_array(), *n;
    json_int_t total = 0;
    for (size_t i = json_array_size(e->notes); i-- > 0;) {
        n = json_array_get(e->notes, i);
        if (!jstr(n, "parentId") || strcmp(jstr(n, "parentId"), id) != 0)
            continue;
        total++;
        if ((long)json_array_size(list) < max)
            json_array_append_new(list, strcmp(jstr(n, "type"), "Create") == 0
                                            ? PICK(n, STREAM_CREATE)
                                            : PICK(n, STREAM_POST));
    }
    respond(req, 200, NULL,
            json_pack("{s:I,s:o,s:[]}", "total", total, "list", list, "pinnedList"));
}

/* ---- webhooks: the API (07, 07c) ---------------------------------------------------------- */

/* Under mu: a live webhook by id. */
static struct hook *hook_find(const struct espo_sim *e, const char *id)
{
    for (size_t i = 0; i < e->nhooks; i++)
        if (!e->hooks[i]->deleted && id && strcmp(e->hooks[i]->id, id) == 0)
            return e->hooks[i];
    return NULL;
}

/* Under mu: the webhook as EspoCRM answers it (POST: without modifiedById). */
static json_t *hook_form(const struct espo_sim *e, const struct hook *h, bool modified_by)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(h->id));
    json_object_set_new(o, "deleted", json_false());
    json_object_set_new(o, "event", json_string(h->event));
    json_object_set_new(o, "url", json_string(h->url));
    json_object_set_new(o, "isActive", json_boolean(h->active));
    json_object_set_new(o, "entityType", json_string(ENTITY));
    json_object_set_new(o, "type", json_string(h->type));
    json_object_set_new(o, "field", h->field[0] ? json_string(h->field) : json_null());
    if (e->skip_own_honoured)
        json_object_set_new(o, "skipOwn", json_boolean(h->skip_own));
    json_object_set_new(o, "secretKey", json_string(h->secret));
    json_object_set_new(o, "createdAt", json_string(h->created_at));
    json_object_set_new(o, "modifiedAt", json_string(h->modified_at));
    json_object_set_new(o, "createdById", json_string(h->created_by));
    json_object_set_new(o, "createdByName", json_string(user_name(e, h->created_by)));
    if (modified_by)
        json_object_set_new(o, "modifiedById",
                            h->modified_by[0] ? json_string(h->modified_by) : json_null());
    json_object_set_new(o, "modifiedByName",
                        h->modified_by[0] ? json_string(user_name(e, h->modified_by))
                                          : json_null());
    return o;
}

/* Webhooks are the API user's and the admin's (07 step 6). */
static bool hook_access(struct espo_sim *e, struct httpd_req *req, struct actor *a)
{
    if (!authenticate(e, req, a))
        return false;
    if (a->kind == ACTOR_UI) {
        respond(req, 403, "No access to 'Webhook'.", NULL);
        return false;
    }
    return true;
}

static void on_webhook_register(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    json_t *body = hook_access(e, req, &a) ? body_object(req) : NULL;
    if (!body)
        return;
    const char *event = jstr(body, "event"), *url = jstr(body, "url");
    char entity[64] = "", type[32] = "", field[64] = "";
    if (event)
        sscanf(event, "%63[^.].%31[^.].%63s", entity, type, field);
    static const char *const types[] = {"create", "update", "delete"};
    struct vfail vf = {"", "required"};
    if (!event || !*event || !url || !*url || strlen(url) >= sizeof((struct hook *)0)->url) {
        snprintf(vf.field, sizeof vf.field, "%s", !event || !*event ? "event" : "url");
        respond_validation(req, &vf);
    } else if (strcmp(entity, ENTITY) != 0) {
        respond(req, 403, "Entity type is not available for Webhooks.", NULL);
    } else if (!(IN(type, types) && !field[0]) && !(strcmp(type, "fieldUpdate") == 0 && field[0])) {
        snprintf(vf.field, sizeof vf.field, "event");
        vf.type = "valid";
        respond_validation(req, &vf);
    } else {
        struct hook *h = calloc(1, sizeof *h);
        unsigned char rnd[16];
        if (!h || RAND_bytes(rnd, sizeof rnd) != 1) {
            free(h);
            respond(req, 500, NULL, NULL);
            goto out;
        }
        new_id(e, h->id, sizeof h->id);
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(h->secret + 2 * i, 3, "%02x", rnd[i]);
        snprintf(h->event, sizeof h->event, "%s", event);
        snprintf(h->url, sizeof h->url, "%s", url);
        snprintf(h->type, sizeof h->type, "%.*s", (int)sizeof h->type - 1, type);
        snprintf(h->field, sizeof h->field, "%s", field);
        now_text(e, h->created_at, sizeof h->created_at);
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
        respond(req, hooks ? 201 : 500, NULL, ans);
    }
out:
    json_decref(body);
}

static void on_webhook_get(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!hook_access(e, req, &a))
        return;
    const char *id = httpd_req_param(req, "id");
    pthread_mutex_lock(&e->mu);
    struct hook *h = hook_find(e, id);
    json_t *ans = h ? hook_form(e, h, true) : NULL;
    pthread_mutex_unlock(&e->mu);
    if (ans)
        respond(req, 200, NULL, ans);
    else
        respond_not_found(req, id, true);
}

static void on_webhook_list(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    if (!hook_access(e, req, &a))
        return;
    long max = query_long(httpd_req_query(req), "maxSize", LIST_MAX);
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
    g_order_by = "createdAt";
    g_order_desc = 1;
    qsort(items, n, sizeof *items, by_order);
    for (size_t i = 0; i < n && (long)i < max; i++)
        json_array_append(list, items[i]);
    free(items);
    json_decref(all);
    respond(req, 200, NULL, json_pack("{s:I,s:o}", "total", (json_int_t)n, "list", list));
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
static void on_webhook_update(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
    json_t *body = hook_access(e, req, &a) ? body_object(req) : NULL;
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
        const char *url = jstr(body, "url");
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
            now_text(e, h->modified_at, sizeof h->modified_at);
            snprintf(h->modified_by, sizeof h->modified_by, "%s", a.id);
        }
        ans = hook_form(e, h, true);
    }
    pthread_mutex_unlock(&e->mu);
    if (ans)
        respond(req, 200, NULL, ans);
    else
        respond_not_found(req, id, false);
    json_decref(body);
}

static void on_webhook_delete(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    struct actor a;
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
        respond(req, 200, NULL, json_true());
    else
        respond_not_found(req, id, false);
}

/* ---- webhooks: the job (delivery thread) -------------------------------------------------- */

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
    for (unsigned int i = 0; i < mlen; i++) /* Signature: lower-case hex */
        snprintf((char *)buf + idlen + 1 + 2 * i, 3, "%02x", mac[i]);
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
static void hook_book(struct espo_sim *e, struct hook *h, struct item *batch, size_t n, long status)
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
static void job_run(struct espo_sim *e, struct httpc *http)
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
    struct espo_sim *e = arg;
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
    struct espo_sim *e = async->data;
    pthread_mutex_lock(&e->mu);
    int done = e->runs_done;
    e->runs_done = 0;
    long events = e->last_events, posts = e->last_posts;
    pthread_mutex_unlock(&e->mu);
    while (done-- > 0 && e->nwaiters > 0) {
        struct httpd_req *req = e->waiters[0];
        memmove(e->waiters, e->waiters + 1, --e->nwaiters * sizeof *e->waiters);
        respond(req, 200, NULL,
                json_pack("{s:I,s:I}", "events", (json_int_t)events, "posts", (json_int_t)posts));
    }
}

/* POST /_sim/webhooks/run: runs the job now; answers {"events","posts"} once it has run. */
static void on_run_job(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    if (e->nwaiters == e->capwaiters) {
        size_t cap = e->capwaiters ? e->capwaiters * 2 : 8;
        struct httpd_req **w = realloc(e->waiters, cap * sizeof *w);
        if (!w) {
            respond(req, 500, NULL, NULL);
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

/* ---- admin handlers ----------------------------------------------------------------------- */

static void on_ui_create(struct httpd_req *req, void *ud)
{
    struct actor a;
    ui_actor(ud, req, &a);
    create_as(ud, req, &a);
}

static void on_ui_update(struct httpd_req *req, void *ud)
{
    struct actor a;
    ui_actor(ud, req, &a);
    update_as(ud, req, &a);
}

static void on_ui_delete(struct httpd_req *req, void *ud)
{
    struct actor a;
    ui_actor(ud, req, &a);
    do_delete(ud, req, httpd_req_param(req, "id"), &a);
}

/* POST /_sim/seed {"count":N}: N complete records in pending_sync, unassigned, no webhooks. */
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
    struct actor a = {.kind = ACTOR_UI, .id = "ui-user"};
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
        json_t *ent = do_create(e, NULL, attrs, &a, CREATE_QUIET | CREATE_NO_ASSIGN);
        json_decref(attrs);
        if (ent)
            json_array_append(ids, json_object_get(ent, "id"));
    }
    respond(req, 200, NULL, json_pack("{s:o}", "ids", ids));
}

/* GET /_sim/notifications: every notification, oldest first (SPEC §8.1). */
static void on_sim_notifications(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *out = json_array(), *n;
    size_t i;
    json_array_foreach(e->notifications, i, n)
    {
        json_t *note = note_find(e, jstr(json_object_get(n, "data"), "noteId"));
        const char *message = note ? jstr(note, "post") : jstr(n, "message");
        json_array_append_new(out, json_pack("{s:O,s:s?,s:s,s:O}", "userId",
                                             json_object_get(n, "userId"), "message", message,
                                             "via", note ? "note" : "notification", "createdAt",
                                             json_object_get(n, "createdAt")));
    }
    respond(req, 200, NULL, out);
}

/* GET /_sim/webhooks: webhooks and their counters; pendingEvents (not yet in a job run) and
 * queueItems (not yet delivered) as EspoCRM's two queue tables count them (07 step 20). */
static void on_sim_webhooks(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
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
    respond(req, 200, NULL, ans);
}

static void set_paused(struct espo_sim *e, struct httpd_req *req, bool paused)
{
    pthread_mutex_lock(&e->mu);
    e->paused = paused;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    respond(req, 200, NULL, json_pack("{s:b}", "paused", paused));
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
    json_t *list = json_array(), *ent;
    const char *id;
    json_object_foreach(e->entities, id, ent)
        json_array_append_new(list, get_form(e, ent, e->conf.sync_user));
    respond(req, 200, NULL, list);
}

static void on_state_one(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    const char *id = httpd_req_param(req, "id");
    json_t *ent = json_object_get(e->entities, id);
    if (ent)
        respond(req, 200, NULL, get_form(e, ent, e->conf.sync_user));
    else
        respond_not_found(req, id, true);
}

/* POST /_sim/clock {"now":"YYYY-MM-DD HH:MM:SS"} pins the time of every timestamp the
 * simulator writes (the contract test replays the recorded times); {"now":null} releases it. */
static void on_clock(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *body = body_object(req);
    if (!body)
        return;
    json_t *now = json_object_get(body, "now");
    struct tm tm = {0};
    const char *s = json_string_value(now), *end = s ? strptime(s, "%Y-%m-%d %H:%M:%S", &tm) : NULL;
    if (now && !json_is_null(now) && (!end || *end)) {
        httpd_respond_error(req, 400, "now: \"YYYY-MM-DD HH:MM:SS\" (UTC) or null");
    } else {
        e->clock_pinned = s != NULL;
        if (s)
            e->clock = timegm(&tm);
        char text[24];
        now_text(e, text, sizeof text);
        respond(req, 200, NULL, json_pack("{s:s,s:b}", "now", text, "pinned", e->clock_pinned));
    }
    json_decref(body);
}

static json_t *config_json(const struct espo_sim *e)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "formula", e->formula_v2 ? "v2" : "v1",
                     "messagePermission", e->message_all ? "all" : "no", "template",
                     e->person ? "person" : "company", "espocrmVersion", e->conf.version);
}

/* POST /_sim/config {"formula":"v1"|"v2","messagePermission":"all"|"no"}: the instance's
 * configuration of the recordings (v1 and "no" for cases 01-09). GET: the current one. */
static void on_config(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    if (strcmp(httpd_req_method(req), "POST") == 0) {
        json_t *body = body_object(req);
        if (!body)
            return;
        const char *f = jstr(body, "formula"), *m = jstr(body, "messagePermission");
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
    respond(req, 200, NULL, config_json(e));
}

/* POST /_sim/users {"id","name"}: a user the instance has (direct messages need one). */
static void on_users(struct httpd_req *req, void *ud)
{
    struct espo_sim *e = ud;
    json_t *body = body_object(req);
    if (!body)
        return;
    const char *id = jstr(body, "id"), *name = jstr(body, "name");
    if (!id || !*id) {
        httpd_respond_error(req, 400, "id required");
    } else {
        json_object_set_new(e->users, id, json_string(name ? name : id));
        respond(req, 200, NULL, json_deep_copy(e->users));
    }
    json_decref(body);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void espo_reset(void *ud)
{
    struct espo_sim *e = ud;
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
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->nhooks; i++) {
        e->hooks[i]->deleted = true;
        hook_clear(e->hooks[i]);
    }
    while (e->events) {
        struct event *ev = e->events;
        e->events = ev->next;
        free(ev->data);
        free(ev);
    }
    e->events_tail = NULL;
    e->nevents = 0;
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
    while (e->nwaiters > 0) /* the job will not run any more */
        respond(e->waiters[--e->nwaiters], 503, NULL, NULL);
    if (e->async_open)
        uv_close((uv_handle_t *)&e->async, NULL);
    e->async_open = false;
}

static void espo_free(struct espo_sim *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nhooks; i++) {
        hook_clear(e->hooks[i]);
        free(e->hooks[i]);
    }
    free(e->hooks);
    while (e->events) {
        struct event *ev = e->events;
        e->events = ev->next;
        free(ev->data);
        free(ev);
    }
    free(e->waiters);
    free(e->app_user_cache);
    json_decref(e->defs);
    json_decref(e->entities);
    json_decref(e->notes);
    json_decref(e->notifications);
    json_decref(e->users);
    json_decref(e->acl_table);
    json_decref(e->user_template);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

static const struct sim_route_def api_routes[] = {
    {"GET", ROUTE_USER, on_app_user},
    {"GET", ROUTE_ENTITIES, on_list},
    {"POST", ROUTE_ENTITIES, on_post},
    {"GET", ROUTE_STREAM, on_stream},
    {"GET", ROUTE_ENTITY, on_get},
    {"PUT", ROUTE_ENTITY, on_put},
    {"PATCH", ROUTE_ENTITY, on_put},
    {"DELETE", ROUTE_ENTITY, on_delete},
    {"GET", ROUTE_NOT_READ, on_not_read_count},
    {"GET", ROUTE_NOTIFICATIONS, on_notifications_list},
    {"POST", ROUTE_NOTIFICATIONS, on_notification_create},
    {"POST", ROUTE_NOTE, on_note},
    {"GET", ROUTE_METADATA, on_metadata},
    {"POST", ROUTE_WEBHOOKS, on_webhook_register},
    {"GET", ROUTE_WEBHOOKS, on_webhook_list},
    {"GET", ROUTE_WEBHOOK, on_webhook_get},
    {"PUT", ROUTE_WEBHOOK, on_webhook_update},
    {"DELETE", ROUTE_WEBHOOK, on_webhook_delete},
};

/* The admin routes of SPEC §8.1, and for the contract test and the option tests: POST
 * /_sim/webhooks/run (one job run now; answers when it is done), /_sim/clock, /_sim/config and
 * /_sim/users. */
static const struct sim_route_def admin_routes[] = {
    {"POST", "/_sim/ui/CBeteiligte", on_ui_create},
    {"PUT", "/_sim/ui/CBeteiligte/{id}", on_ui_update},
    {"DELETE", "/_sim/ui/CBeteiligte/{id}", on_ui_delete},
    {"POST", "/_sim/seed", on_seed},
    {"GET", "/_sim/notifications", on_sim_notifications},
    {"GET", "/_sim/webhooks", on_sim_webhooks},
    {"POST", "/_sim/webhooks/pause", on_pause},
    {"POST", "/_sim/webhooks/resume", on_resume},
    {"POST", "/_sim/webhooks/run", on_run_job},
    {"GET", "/_sim/state/CBeteiligte", on_state_all},
    {"GET", "/_sim/state/CBeteiligte/{id}", on_state_one},
    {"POST", "/_sim/clock", on_clock},
    {"GET", "/_sim/config", on_config},
    {"POST", "/_sim/config", on_config},
    {"POST", "/_sim/users", on_users},
};

/* The recorded definitions with the options applied: the template's phone types, the dropped
 * fields. 0 or -1. */
static int defs_init(struct espo_sim *e)
{
    e->defs = json_loads(ENTITY_DEFS_JSON, 0, NULL);
    e->acl_table = json_loads(ACL_TABLE_JSON, 0, NULL);
    e->user_template = json_loads(USER_TEMPLATE_JSON, 0, NULL);
    e->fields = json_object_get(e->defs, "fields");
    if (!e->fields || !e->acl_table || !e->user_template)
        return -1;
    if (e->person) /* 02 step 8: the Person template's list */
        json_object_set_new(json_object_get(e->fields, "phoneNumber"), "typeList",
                            json_pack("[s,s,s,s,s]", "Mobile", "Office", "Home", "Fax", "Other"));
    json_object_set_new(json_object_get(e->fields, "phoneNumber"), "defaultType",
                        json_string(e->person ? "Mobile" : "Office"));
    const char *name;
    json_t *def;
    void *tmp;
    json_object_foreach_safe(e->fields, tmp, name, def)
    {
        if (attr_dropped(e, name))
            json_object_del(e->fields, name);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sim_opts opts = {.port = 0, .seed = 1};
    struct espo_conf conf = {.api_key = "dev-espocrm-key",
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
    struct espo_sim *e = calloc(1, sizeof *e);
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
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    users_init(e);
    {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(e->started, sizeof e->started, "%Y-%m-%d %H:%M:%S", &tm);
    }
    httpc_global_init();
    if (defs_init(e) != 0 || !(e->sim = sim_new(&loop, &opts, espo_reset, e)) ||
        sim_register_routes(e->sim, api_routes, sizeof api_routes / sizeof api_routes[0],
                            admin_routes, sizeof admin_routes / sizeof admin_routes[0], e) != 0 ||
        uv_async_init(&loop, &e->async, on_runs_done) != 0) {
        log_error(PROG ": cannot set up the server");
        goto out;
    }
    e->async.data = e;
    e->async_open = true;
    if (pthread_create(&e->thread, NULL, delivery_thread, e) != 0) {
        log_error(PROG ": cannot start the webhook job");
        goto out;
    }
    e->thread_started = true;
    sim_set_stop(e->sim, espo_stop, e);
    rc = sim_run(e->sim);
out:
    espo_stop(e);
    uv_run(&loop, UV_RUN_DEFAULT); /* lets the async handle close */
    sim_free(e->sim);
    espo_free(e);
    uv_loop_close(&loop);
    return rc;
}
