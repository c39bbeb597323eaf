/* espocrm_sim.h: what the files of espocrm-sim (SPEC §7.1, §8, §8.1) share: the simulator's state
 * and the esim__ functions one part offers the others. Internal to tests/sim/espocrm_*.c.
 * Answers passed to esim__respond are stolen; other JSON returned here is a new reference the
 * caller frees, unless a comment says borrowed.
 *
 * The parts: espocrm_sim.c (the program: options, auth, answers, App/user, metadata, routes),
 * espocrm_fields.c (the entity's fields: sanitising, validation, phone and e-mail lists),
 * espocrm_entity.c (CBeteiligte's create, update, delete, formula and optimistic concurrency),
 * espocrm_list.c (the list query), espocrm_notes.c (stream notes and notifications),
 * espocrm_webhooks.c (webhook registration, the event queue and the delivery job). */
#ifndef VMH_ESPOCRM_SIM_H
#define VMH_ESPOCRM_SIM_H

#include "sim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

#define ESIM_ENTITY   "CBeteiligte"
#define ESIM_LIST_MAX 200 /* recordListMaxSizeLimit (05 step 21) */

struct esim_conf {
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

enum esim_actor_kind { ESIM_ACTOR_API, ESIM_ACTOR_ADMIN, ESIM_ACTOR_UI };

/* Who makes a request. */
struct esim_actor {
    enum esim_actor_kind kind;
    char id[128];
};

/* A field validation failure: the field and EspoCRM's failure type ("required", "valid", …). */
struct esim_vfail {
    char field[64];
    const char *type;
};

struct hook;  /* a registered webhook (espocrm_webhooks.c) */
struct event; /* a save's event waiting for the job (espocrm_webhooks.c) */

/* Threads: everything runs on the loop thread except the webhook job (the delivery thread),
 * which posts with a blocking HTTP client. The two share the webhook table, the event queue and
 * the job's counters under `mu`: the loop thread appends events and edits webhooks, the job
 * turns events into queue items and posts them unlocked. Webhooks are never freed before exit
 * (a deleted one is only marked), so the job's pointer stays valid across its unlocked post. */
struct esim {
    struct esim_conf conf;
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

/* ---- espocrm_sim.c: helpers, clock, ids, users, answers, auth ------------------------------ */

bool esim__in_list(const char *s, const char *const *list, size_t n);
#define ESIM_IN(s, list) esim__in_list((s), (list), sizeof(list) / sizeof((list)[0]))
/* The string value of o[k], or NULL. Borrowed. */
const char *esim__jstr(const json_t *o, const char *k);
/* Whether the JSON array has the string s. */
bool esim__in_json_list(const json_t *list, const char *s);
/* A copy of s in lower case (ASCII), or NULL on out of memory; the caller frees it. */
char *esim__lower_dup(const char *s);
/* The query parameter name as a number, def when absent. */
long esim__query_long(const char *query, const char *name, long def);

/* Now as EspoCRM writes it (UTC), or the time pinned by POST /_sim/clock; buf needs 20 bytes. */
void esim__now_text(const struct esim *e, char *buf, size_t len);
/* A new id (17 hex digits, increasing) into buf (18 bytes). */
void esim__new_id(struct esim *e, char *buf, size_t len);
/* A user's display name (the id for a user without one). Borrowed. */
const char *esim__user_name(const struct esim *e, const char *id);
/* Makes the user known to the instance. */
void esim__user_seen(struct esim *e, const char *id);
const char *esim__actor_name(const struct esim *e, const struct esim_actor *a);

/* Answers with body (stolen; NULL = an empty body) and X-Status-Reason (NULL = none). */
void esim__respond(struct httpd_req *req, int status, const char *reason, json_t *body);
/* 404 with EspoCRM's reason: "Record <id> does not exist." when reading, else "… not found.". */
void esim__respond_not_found(struct httpd_req *req, const char *id, bool reading);
/* 400 with EspoCRM's validationFailure answer for f. */
void esim__respond_validation(struct httpd_req *req, const struct esim_vfail *f);
/* The request body as a JSON object (an empty body: {}); NULL after answering 400. */
json_t *esim__body_object(struct httpd_req *req);
/* Who the request is from (X-Api-Key: the sync user; Basic: admin or a regular user); false
 * after answering 401. */
bool esim__authenticate(struct esim *e, struct httpd_req *req, struct esim_actor *a);
/* A regular user of the /_sim/ui routes (X-Sim-User, default ui-user). */
void esim__ui_actor(struct esim *e, struct httpd_req *req, struct esim_actor *a);

/* ---- espocrm_fields.c: the entity's attributes and fields ------------------------------------ */

/* The record's attributes in EspoCRM's order (GET, 02 step 3). */
extern const char *const esim__attrs[];
extern const size_t esim__nattrs;

/* Loads the recorded entityDefs into e->defs and e->fields with the options applied (the
 * template's phone types, the dropped fields). 0 or -1. */
int esim__fields_init(struct esim *e);
/* Whether --drop-field removed the attribute (a phone or e-mail field with its list, flags). */
bool esim__attr_dropped(const struct esim *e, const char *attr);
/* A stored value: an int field given as a numeric string becomes a number. New reference. */
json_t *esim__coerce(const struct esim *e, const char *k, json_t *v);
/* The write's attributes EspoCRM takes, sanitised. New object. */
json_t *esim__filter_input(const struct esim *e, const json_t *body);
/* EspoCRM's field validation of a (filtered) write, in field order. 0, or -1 with *f. */
int esim__validate(const struct esim *e, const json_t *in, bool creating, struct esim_vfail *f);
/* The index of a sent list's primary item: the first marked, else 0. */
size_t esim__list_primary(const json_t *sent);
/* The stored form of a phone or e-mail list as sent. New array. */
json_t *esim__list_full(const struct esim *e, const json_t *sent, bool phone);
/* Stores a list (full, stolen) and its derived attributes in ent. */
void esim__store_list(json_t *ent, json_t *full, bool phone);

/* ---- espocrm_entity.c: CBeteiligte's API and admin routes ----------------------------------- */

void esim__on_get(struct httpd_req *req, void *ud);
void esim__on_post(struct httpd_req *req, void *ud);
void esim__on_put(struct httpd_req *req, void *ud);
void esim__on_delete(struct httpd_req *req, void *ud);
void esim__on_ui_create(struct httpd_req *req, void *ud);
void esim__on_ui_update(struct httpd_req *req, void *ud);
void esim__on_ui_delete(struct httpd_req *req, void *ud);
/* The "ui_edit" fault rule's edit (sim_set_ui_edit): a UI user's update of the entity {id}. */
void esim__ui_edit(struct httpd_req *req, const json_t *attrs, void *ud);
void esim__on_seed(struct httpd_req *req, void *ud);
void esim__on_state_all(struct httpd_req *req, void *ud);
void esim__on_state_one(struct httpd_req *req, void *ud);

/* ---- espocrm_list.c: the list query --------------------------------------------------------- */

void esim__on_list(struct httpd_req *req, void *ud);
/* Sorts records by order_by (NULL first ascending, ties by id in the same direction). */
void esim__sort_records(json_t **items, size_t n, const char *order_by, bool desc);

/* ---- espocrm_notes.c: stream notes and notifications ---------------------------------------- */

/* A stream note by a on parent (a record, or NULL) or to users (stolen, or NULL), with data
 * (stolen, NULL = {}); stored in e->notes. Borrowed. */
json_t *esim__note_new(struct esim *e, const struct esim_actor *a, const char *type,
                       const char *post, const json_t *parent, json_t *users, json_t *data);
void esim__on_note(struct httpd_req *req, void *ud);
void esim__on_notification_create(struct httpd_req *req, void *ud);
void esim__on_notifications_list(struct httpd_req *req, void *ud);
void esim__on_not_read_count(struct httpd_req *req, void *ud);
void esim__on_stream(struct httpd_req *req, void *ud);
void esim__on_sim_notifications(struct httpd_req *req, void *ud);

/* ---- espocrm_webhooks.c: webhooks and the job that delivers them ---------------------------- */

/* Queues the event <entity>.name of a save by user when an active webhook listens to it. Takes
 * record. */
void esim__emit(struct esim *e, const char *name, json_t *record, const char *user);
/* The job's lock and condition; undone by esim__webhooks_free. */
void esim__webhooks_init(struct esim *e);
/* The loop's async handle the job wakes for POST /_sim/webhooks/run answers. 0 or -1. */
int esim__webhooks_open(struct esim *e, uv_loop_t *loop);
/* Starts the delivery thread. 0 or -1. */
int esim__webhooks_start(struct esim *e);
/* POST /_sim/reset: every webhook deleted, the event queue emptied, the job resumed. */
void esim__webhooks_reset(struct esim *e);
/* Stops and joins the job, answers waiting run requests 503, closes the async handle. */
void esim__webhooks_stop(struct esim *e);
/* Frees webhooks, items, events and waiters (after stop). */
void esim__webhooks_free(struct esim *e);
void esim__on_webhook_register(struct httpd_req *req, void *ud);
void esim__on_webhook_get(struct httpd_req *req, void *ud);
void esim__on_webhook_list(struct httpd_req *req, void *ud);
void esim__on_webhook_update(struct httpd_req *req, void *ud);
void esim__on_webhook_delete(struct httpd_req *req, void *ud);
void esim__on_sim_webhooks(struct httpd_req *req, void *ud);
void esim__on_pause(struct httpd_req *req, void *ud);
void esim__on_resume(struct httpd_req *req, void *ud);
void esim__on_run_job(struct httpd_req *req, void *ud);

#endif
