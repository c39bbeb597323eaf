/* sync.c: one entity's sync (SPEC §5.3, §5.5, §5.6). See sync.h.
 *
 * A run: GET the entity → route by state → Advoware calls → one final EspoCRM PUT with
 * X-Version-Number (409: start over, at most SYNC_ATTEMPTS times). Failures end in a status
 * write decided by status.h. EspoCRM unreachable: the run is retried by the executor with
 * backoff (1 s, 2 s, 4 s, ... up to about a minute in all), then given up: the entity is still
 * dirty, the cron finds it. */
#include "sync.h"

#include "decide.h"
#include "espo.h"
#include "kommsync.h"
#include "log.h"
#include "mapper.h"
#include "merge.h"
#include "phone.h"
#include "queued.h"
#include "status.h"
#include "store.h"
#include "syncfields.h"
#include "synctime.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SYNC_ATTEMPTS      3 /* GET → PUT rounds when EspoCRM answers 409 */
#define ESPO_GIVE_UP_AFTER 6 /* retries of an unreachable EspoCRM: 1+2+..+32 s */

struct sync_thread {
    struct espo *espo;
    struct advo *advo;
};

/* What one run found out and must write. */
struct run {
    struct sync_conf *conf;
    struct sync_thread *t;
    struct wk_ctx *ctx;
    const char *id;
    json_t *entity;    /* the EspoCRM GET */
    long long version; /* its versionNumber */
    json_t *put;       /* the final PUT's attributes */
    const char *user;  /* who gets notifications */
    enum merge_case scase;
    json_t *agreed; /* the 8 fields both systems hold after a successful run (the baseline's) */
    json_t *agreed_komm;     /* the entries they hold (the baseline's "komm"); NULL: unknown */
    const char *cred_system; /* STEP_CREDENTIALS: "EspoCRM" or "Advoware" */
    bool deleted;            /* the run took the deletion path (EspoCRM 404) */
    json_t *link;            /* the link (store.h) of a party without betnr or without a baseline: a
                                create's final PUT may not have happened (its betnr, what it posted) */
    char based_on[33];       /* MD5 of the EspoCRM baseline's text the run started from */
    bool ahead;              /* a write-ahead baseline was used or written: cleared after the PUT */
    bool auto_reset;         /* a cron auto_reset: the retry count starts over */
    long long betnr;
    char err[512];
    char skipped[512]; /* Advoware entries EspoCRM cannot take, for syncErrorMessage */
    char since[32];    /* the time of an uncertain create's POST (UTC) */
    bool komm_planned; /* the Kommunikation was planned this run (else its skips stand) */
};

/* How a step ended. */
enum step {
    STEP_OK,
    STEP_TRANSIENT,
    STEP_PERMANENT,
    STEP_GONE,
    STEP_ESPO_DOWN,
    STEP_CONFLICT,
    STEP_UNCERTAIN,   /* a create whose outcome is unknown (SPEC §5.3) */
    STEP_LOCK_LOST,   /* the entity's lock was taken over: stop, write nothing */
    STEP_CREDENTIALS, /* EspoCRM or Advoware refused our credentials: not the party's fault */
};

/* ---- set-up -------------------------------------------------------------------------- */

static const char *const step_names[] = {"ok",        "transient", "permanent",
                                         "gone",      "espo_down", "conflict",
                                         "uncertain", "lock_lost", "credentials"};

/* Every series the sync knows has a sample from the start (SPEC §10): 0 for counters. */
static void touch_known_series(struct sync_conf *conf)
{
    for (size_t i = 1; i < sizeof step_names / sizeof step_names[0]; i++)
        if (i != STEP_CONFLICT) /* a conflict is started over, never a result */
            metric_touch(conf->errors, step_names[i]);
    static const char *const notes[] = {"sent", "failed", "not_permitted"};
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++)
        metric_touch(conf->notifications, notes[i]);
    for (int v = KVAR_1; v < KVAR_N; v++) {
        metric_touch(conf->komm, komm_var_name((enum komm_var)v), "ok");
        metric_touch(conf->komm, komm_var_name((enum komm_var)v), "failed");
    }
    for (int c = MCASE_NO_CHANGE; c <= MCASE_CONFLICT; c++)
        metric_touch(conf->duration, merge_case_name((enum merge_case)c), "ok");
}

static void preflight_start(struct sync_conf *conf);

void sync_conf_init(struct sync_conf *conf, const struct cfg *cfg, struct metrics *reg)
{
    memset(conf, 0, sizeof *conf);
    conf->espo_url = cfg_str(cfg, "ESPOCRM_URL");
    conf->espo_key = cfg_str(cfg, "ESPOCRM_API_KEY");
    conf->notify_user_id = cfg_str(cfg, "ESPOCRM_NOTIFY_USER_ID");
    conf->mark_syncing = cfg_bool(cfg, "SYNC_MARK_SYNCING");
    if (conf->mark_syncing) /* one more call per run, and a version step the run must follow */
        log_warn("SYNC_MARK_SYNCING=1 is not supported yet; runs do not write syncing");
    conf->timeout_ms = (long)cfg_duration_ms(cfg, "HTTP_TIMEOUT_MS");
    conf->advo = advo_conf_from_cfg(cfg);
    if (!st_zone_known(cfg_str(cfg, "ADVOWARE_TZ"))) { /* glibc would read it as UTC, silently */
        fprintf(stderr,
                "vmh-worker: ADVOWARE_TZ: \"%s\" is no time zone of this system's "
                "database (e.g. Europe/Berlin)\n",
                cfg_str(cfg, "ADVOWARE_TZ"));
        exit(2);
    }
    st_set_zone(cfg_str(cfg, "ADVOWARE_TZ"));
    long long backoff[STATUS_BACKOFF_MAX];
    status_set_backoff(backoff,
                       cfg_durations_ms(cfg, "SYNC_RETRY_BACKOFF", backoff, STATUS_BACKOFF_MAX));
    if (phone_set_default_region(cfg_str(cfg, "PHONE_DEFAULT_COUNTRY")) != 0) {
        fprintf(stderr, "vmh-worker: PHONE_DEFAULT_COUNTRY: not a country libphonenumber knows "
                        "(ISO 3166 alpha-2, e.g. DE)\n");
        exit(2);
    }
    conf->cred_recheck_ms = cfg_duration_ms(cfg, "CREDENTIALS_RECHECK_MS");
    apistat_init(&conf->st, reg);
    conf->duration =
        metrics_histogram(reg, "vmh_sync_duration_seconds", "one entity's sync by case and result",
                          "case,result", NULL, 0);
    conf->errors = metrics_counter(reg, "vmh_sync_errors_total", "failed syncs by type", "type");
    conf->retries = metrics_counter(reg, "vmh_sync_retries_total",
                                    "runs started over after EspoCRM answered 409", NULL);
    conf->conflicts =
        metrics_counter(reg, "vmh_sync_conflicts_total", "conflicts resolved for EspoCRM", NULL);
    conf->komm =
        metrics_counter(reg, "vmh_kommunikation_calls_total",
                        "Advoware Kommunikation calls by variant and result", "var,result");
    conf->notifications = metrics_counter(
        reg, "vmh_notifications_total",
        "direct messages to users by result (sent, failed, not_permitted)", "result");
    touch_known_series(conf);
    preflight_start(conf);
}

/* ---- the start-up check of the EspoCRM side (SPEC §6, §5.5) ------------------------------ */

#define RECHECK_MAX_MS 30000

/* Logs each problem of the check once while it stands (a re-check finding the same set says
 * nothing new). */
static void preflight_log(const struct preflight *p, const struct preflight *last)
{
    bool same = last && last->nproblems == p->nproblems;
    for (size_t i = 0; same && i < p->nproblems; i++)
        same = strcmp(p->problems[i], last->problems[i]) == 0;
    if (same)
        return;
    for (size_t i = 0; i < p->nproblems; i++)
        log_error("EspoCRM set-up incomplete; not ready", LOG_STR("problem", p->problems[i]));
}

/* The check's thread: asks EspoCRM until the set-up is right, then opens the gate. */
static void preflight_thread(void *arg)
{
    struct sync_conf *conf = arg;
    struct espo *c = espo_new(conf->espo_url, conf->espo_key, conf->timeout_ms, &conf->st);
    struct preflight *p = calloc(2, sizeof *p), *last = p ? p + 1 : NULL;
    long long wait_ms = conf->recheck_ms;
    char err[256] = "out of memory", last_err[256] = "";
    bool stop = false;
    while (c && p && !stop) {
        int rc = preflight_run(c, p, err, sizeof err);
        uv_mutex_lock(&conf->pf_mu);
        if (rc != 0) {
            snprintf(conf->why, sizeof conf->why, "EspoCRM set-up not checked yet: %.200s", err);
            if (strcmp(err, last_err) != 0)
                log_warn("EspoCRM set-up not checked; retrying", LOG_STR("error", err),
                         LOG_INT("retry_ms", wait_ms));
            snprintf(last_err, sizeof last_err, "%s", err);
        } else if (p->nproblems > 0) {
            snprintf(conf->why, sizeof conf->why, "EspoCRM set-up: %s%s", p->problems[0],
                     p->nproblems > 1 ? " (and more, see the log)" : "");
            preflight_log(p, last);
            *last = *p;
        } else {
            conf->pf = *p;
            for (size_t i = 0; i < p->ntypes; i++)
                conf->phone_types[i] = conf->pf.types[i];
            atomic_store(&conf->can_message, p->can_message);
            if (!p->can_message)
                log_error("EspoCRM: the sync role lacks the Message permission; notifications "
                          "are not sent (set Message permission = all, SPEC §5.5)");
            log_info("EspoCRM set-up checked", LOG_STR("sync_user", p->user_id),
                     LOG_INT("phone_types", (long long)p->ntypes),
                     LOG_BOOL("can_message", p->can_message));
            conf->why[0] = '\0';
            atomic_store(&conf->ready, true);
            uv_mutex_unlock(&conf->pf_mu);
            break;
        }
        if (!conf->pf_stop)
            uv_cond_timedwait(&conf->pf_cv, &conf->pf_mu, (uint64_t)wait_ms * 1000000u);
        stop = conf->pf_stop;
        uv_mutex_unlock(&conf->pf_mu);
        wait_ms = wait_ms * 2 > RECHECK_MAX_MS ? RECHECK_MAX_MS : wait_ms * 2;
    }
    if (!c || !p)
        log_error("EspoCRM set-up check could not start", LOG_STR("error", "out of memory"));
    free(p);
    espo_free(c);
}

static void preflight_start(struct sync_conf *conf)
{
    uv_mutex_init(&conf->pf_mu);
    uv_cond_init(&conf->pf_cv);
    snprintf(conf->why, sizeof conf->why, "EspoCRM set-up not checked yet");
    if (!conf->recheck_ms)
        conf->recheck_ms = 2000;
    conf->pf_started = uv_thread_create(&conf->pf_thread, preflight_thread, conf) == 0;
    if (!conf->pf_started)
        log_error("EspoCRM set-up check could not start", LOG_STR("error", "thread"));
}

void sync_conf_fini(void *ud)
{
    struct sync_conf *conf = ud;
    if (!conf->pf_started)
        return;
    uv_mutex_lock(&conf->pf_mu);
    conf->pf_stop = true;
    uv_cond_signal(&conf->pf_cv);
    uv_mutex_unlock(&conf->pf_mu);
    uv_thread_join(&conf->pf_thread);
    conf->pf_started = false;
    advo_rechtsformen_forget();
}

bool sync_ready(void *ud, char *why, size_t whylen)
{
    struct sync_conf *conf = ud;
    bool cred_wait = util_monotonic_ms() < atomic_load(&conf->cred_until);
    if (atomic_load(&conf->ready) && !cred_wait)
        return true;
    uv_mutex_lock(&conf->pf_mu);
    snprintf(why, whylen, "%s", cred_wait ? conf->cred_why : conf->why);
    uv_mutex_unlock(&conf->pf_mu);
    return false;
}

/* Credentials refused by `system` (SPEC §5.3 "Credentials rejected"): nobody's party is marked
 * or notified; the worker takes no work (the gate: consumption paused, /readyz 503) and lets one
 * run try again every CREDENTIALS_RECHECK_MS. One log line per outage. */
static void credentials_refused(struct sync_conf *conf, const char *system, const char *err)
{
    uv_mutex_lock(&conf->pf_mu);
    snprintf(conf->cred_why, sizeof conf->cred_why, "%s refused the credentials: %.100s", system,
             err);
    uv_mutex_unlock(&conf->pf_mu);
    atomic_store(&conf->cred_until, util_monotonic_ms() + conf->cred_recheck_ms);
    if (!atomic_exchange(&conf->cred_bad, true))
        log_error("credentials refused: taking no work, re-checking periodically",
                  LOG_STR("system", system), LOG_STR("error", err),
                  LOG_INT("recheck_ms", conf->cred_recheck_ms));
}

/* A run got through: credentials refused before are accepted again. */
static void credentials_accepted(struct sync_conf *conf)
{
    if (atomic_exchange(&conf->cred_bad, false))
        log_info("credentials accepted again: taking work");
}

void *sync_thread_init(void *ud, unsigned thread)
{
    struct sync_conf *conf = ud;
    (void)thread;
    struct sync_thread *t = calloc(1, sizeof *t);
    if (t)
        t->espo = espo_new(conf->espo_url, conf->espo_key, conf->timeout_ms, &conf->st);
    return t;
}

void sync_thread_fini(void *ud, void *thread_ud)
{
    struct sync_thread *t = thread_ud;
    (void)ud;
    if (!t)
        return;
    espo_free(t->espo);
    advo_free(t->advo);
    free(t);
}

/* ---- small helpers ----------------------------------------------------------------------- */

/* SPEC §5.3: a run checks that it still holds its lock before each write; one that lost it
 * stops without writing (the new holder syncs the party). A Redis error: retried. */
static enum step lock_step(struct run *r)
{
    int held = wk_lock_check(r->ctx);
    if (held > 0)
        return STEP_OK;
    snprintf(r->err, sizeof r->err, "%s",
             held == 0 ? "entity lock lost; stopped before writing"
                       : "entity lock not checked (redis); stopped before writing");
    return held == 0 ? STEP_LOCK_LOST : STEP_ESPO_DOWN;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* HTTP status (or 0 = no answer) → how the step ended. */
static enum step classify(long status)
{
    if (status == 0 || status >= 500 || status == 429 || status == 401 || status == 403)
        return STEP_TRANSIENT;
    if (status == 404)
        return STEP_GONE;
    return STEP_PERMANENT;
}

/* ---- notifications and the link --------------------------------------------------------- */

/* Notifies user (or ESPOCRM_NOTIFY_USER_ID) once per entity and text in 30 days (SPEC §5.4,
 * §5.5) by a direct message that names the party: a claim in Redis per entity and text
 * (store.h), given back if the message fails. 0 when the message went through now or earlier; -1
 * when it could not be sent (no recipient, no permission, EspoCRM failed). */
static int notify_once(struct run *r, const char *text)
{
    const char *user = r->user ? r->user : r->conf->notify_user_id;
    char err[256];
    if (!user) {
        log_warn("notification without a recipient (set ESPOCRM_NOTIFY_USER_ID)",
                 LOG_STR("entity_id", r->id), LOG_STR("text", text));
        metric_inc(r->conf->notifications, "failed");
        return -1;
    }
    if (!atomic_load(&r->conf->can_message)) { /* reported once at start, not per party */
        metric_inc(r->conf->notifications, "not_permitted");
        return -1;
    }
    int claim = store_notice_claim(r->ctx->redis, r->id, text, err, sizeof err);
    if (claim <= 0) /* sent already; Redis down: better once too few than a flood */
        return claim == 0 ? 0 : -1;
    const char *name = r->entity ? jstr(r->entity, "name") : NULL;
    char *post = NULL;
    if (asprintf(&post, "Beteiligter %s%s(%s): %s", name ? name : "", name ? " " : "", r->id,
                 text) < 0)
        post = NULL;
    long status = 0;
    int rc = post ? espo_notify(r->t->espo, user, post, &status, err, sizeof err) : -1;
    free(post);
    if (rc == 0 && status >= 200 && status < 300) {
        metric_inc(r->conf->notifications, "sent");
        return 0;
    }
    if (status == 403 && strstr(err, "Not permitted")) { /* the permission was taken away */
        if (atomic_exchange(&r->conf->can_message, false))
            log_error("EspoCRM: the sync role lost the Message permission; notifications are "
                      "not sent (set Message permission = all, SPEC §5.5)");
    } else {
        log_warn("notification failed", LOG_STR("entity_id", r->id), LOG_INT("status", status),
                 LOG_STR("error", err));
    }
    metric_inc(r->conf->notifications, "failed");
    store_notice_release(r->ctx->redis, r->id, text, err, sizeof err);
    return -1;
}

/* The link (store.h); -1 on a Redis error (never taken for "no link"). */
/* Whether text reached the user now or earlier, or never can (no recipient, no Message
 * permission: reported elsewhere); false when a retry could still send it. */
static bool notice_settled(struct run *r, const char *text)
{
    return notify_once(r, text) == 0 || (!r->user && !r->conf->notify_user_id) ||
           !atomic_load(&r->conf->can_message);
}

static int link_get(struct run *r, json_t **link)
{
    return store_link_get(r->ctx->redis, r->id, link, r->err, sizeof r->err);
}

static int link_set(struct run *r, long long betnr, bool deleted, const json_t *posted)
{
    return store_link_set(r->ctx->redis, r->id, betnr, jstr(r->entity, "name"), r->user, deleted,
                          posted, r->err, sizeof r->err);
}

/* EspoCRM changes that a failed run could not push: modifiedAt has whole seconds and the
 * failure's status write replaced syncStatus=dirty, so without this mark an edit made in the
 * same second as the last sync would look unchanged on the retry. */
static bool pending_get(struct run *r)
{
    char err[256];
    return store_pending_get(r->ctx->redis, r->id, err, sizeof err) == 1;
}

static void pending_set(struct run *r, bool on)
{
    char err[256];
    store_pending_set(r->ctx->redis, r->id, on, err, sizeof err);
}

/* ---- the steps --------------------------------------------------------------------------- */

/* EspoCRM 404: the entity was deleted. Notify once with the betNr, never DELETE in Advoware
 * (SPEC §5.3). The link is marked deleted only once the message went through: a failed one is
 * tried again (STEP_ESPO_DOWN: the executor's retry with backoff). */
/* Tells the user of a party that EspoCRM no longer has (who: its link or create mark, with name
 * and assignedUserId) text, once; notice_settled. */
static bool tell_deleted(struct run *r, const json_t *who, const char *text)
{
    r->user = jstr(who, "assignedUserId");
    json_decref(r->entity); /* the 404's body, if EspoCRM sent one */
    r->entity = json_pack("{s:s?}", "name", jstr(who, "name"));
    bool settled = notice_settled(r, text);
    r->user = NULL;
    json_decref(r->entity);
    r->entity = NULL;
    return settled;
}

/* A party deleted in EspoCRM while its create was uncertain (SPEC §5.3): Advoware may hold a
 * record nobody will link any more. Its user (from the create mark) is told once to look and
 * delete it by hand, then the mark goes. */
static enum step deleted_while_uncertain(struct run *r)
{
    json_t *mark = NULL;
    int m = store_creating_get(r->ctx->redis, r->id, &mark, r->err, sizeof r->err);
    if (m <= 0)
        return m < 0 ? STEP_ESPO_DOWN : STEP_OK; /* Redis: the run is retried */
    enum step s = STEP_OK;
    char text[320];
    snprintf(text, sizeof text,
             "Beteiligter wurde in EspoCRM gelöscht; seine Anlage in Advoware am %s UTC war "
             "ungewiss. Bitte in Advoware prüfen, ob er angelegt wurde, und ihn dann manuell "
             "löschen.",
             jstr(mark, "since") ? jstr(mark, "since") : "?");
    if (!tell_deleted(r, mark, text)) {
        snprintf(r->err, sizeof r->err, "deletion notice of an uncertain create not sent");
        s = STEP_ESPO_DOWN;
    } else if (store_clear_creating(r->ctx->redis, r->id, r->err, sizeof r->err) != 0) {
        s = STEP_ESPO_DOWN; /* the claim keeps a retry from telling twice */
    }
    json_decref(mark);
    return s;
}

static enum step deletion_path(struct run *r)
{
    json_t *link = NULL;
    if (link_get(r, &link) != 0)
        return STEP_ESPO_DOWN; /* Redis: the run is retried */
    long long betnr = json_integer_value(json_object_get(link, "betnr"));
    enum step s = STEP_OK; /* a deletion is the party's normal end, not an error */
    r->deleted = true;
    if (link && !json_is_true(json_object_get(link, "deleted")) && betnr > 0) {
        char text[256];
        snprintf(text, sizeof text,
                 "Beteiligter wurde in EspoCRM gelöscht. Bitte manuell in Advoware löschen: "
                 "betNr %lld",
                 betnr);
        if (tell_deleted(r, link, text))
            store_link_set(r->ctx->redis, r->id, betnr, jstr(link, "name"),
                           jstr(link, "assignedUserId"), true, NULL, r->err, sizeof r->err);
        else {
            snprintf(r->err, sizeof r->err, "deletion notice for betNr %lld not sent", betnr);
            s = STEP_ESPO_DOWN;
        }
    } else if (betnr <= 0) {
        s = deleted_while_uncertain(r);
    }
    json_decref(link);
    log_info("entity deleted in EspoCRM", LOG_STR("entity_id", r->id), LOG_INT("betnr", betnr));
    return s;
}

/* Validation before writing to Advoware (SPEC §5.1): fields, then rechtsform in Advoware's
 * list. */
static enum step validate(struct run *r)
{
    if (map_validate(r->entity, r->err, sizeof r->err) != 0)
        return STEP_PERMANENT;
    const char *rf = jstr(r->entity, "rechtsform");
    int ok = advo_rechtsform_allowed(r->t->advo, rf, r->err, sizeof r->err);
    if (ok < 0)
        return STEP_TRANSIENT;
    if (!ok) {
        snprintf(r->err, sizeof r->err, "rechtsform: \"%s\" ist in Advoware nicht erlaubt", rf);
        return STEP_PERMANENT;
    }
    return STEP_OK;
}

/* Advoware entries EspoCRM cannot take (SPEC §5.4): not sent, the rest syncs, the party ends
 * clean with syncErrorMessage naming them, one notification each. */
static void skipped(struct run *r, const struct ksync *ks)
{
    size_t len = strlen(r->skipped);
    for (size_t i = 0; ksync_skipped(ks, i); i++) {
        const char *text = ksync_skipped(ks, i);
        notify_once(r, text);
        log_info("Advoware entry not taken over", LOG_STR("entity_id", r->id),
                 LOG_STR("reason", text));
        int n = snprintf(r->skipped + len, sizeof r->skipped - len, "%s%s", len ? "; " : "", text);
        len = n > 0 && (size_t)n < sizeof r->skipped - len ? len + (size_t)n : len;
    }
}

/* The Kommunikation of the run (SPEC §5.4): its Advoware calls, then its EspoCRM side into the
 * final PUT, its notifications. ks was planned and validated before the run's first write. */
static enum step kommunikation(struct run *r, struct ksync *ks)
{
    bool transient = false;
    enum step s = ksync_planned(ks) ? lock_step(r) : STEP_OK;
    if (s != STEP_OK)
        return s;
    if (ksync_planned(ks) &&
        ksync_run(ks, r->t->advo, r->betnr, &transient, r->err, sizeof r->err) != 0)
        s = transient ? STEP_TRANSIENT : STEP_PERMANENT;
    r->komm_planned = ksync_planned(ks);
    ksync_count(ks, r->conf->komm);
    ksync_fill_put(ks, r->put);
    json_decref(r->agreed_komm);
    r->agreed_komm = s == STEP_OK ? ksync_baseline(ks) : NULL;
    for (size_t i = 0; ksync_note(ks, i); i++)
        notify_once(r, ksync_note(ks, i));
    skipped(r, ks);
    return s;
}

/* The conflicts of the run (SPEC §5.2: the same field or entry changed on both sides; EspoCRM
 * wins, the notification names Advoware's value), told before the run overwrites anything. A
 * notice that could not be sent stops the run before its first write (retried; the conflict is
 * found again, and a notice already sent is not repeated), so no Advoware value is replaced
 * untold, whatever fails later. */
static enum step tell_conflicts(struct run *r, const struct merge_result *m, const struct ksync *ks)
{
    size_t nk = 0;
    while (ks && ksync_conflict(ks, nk))
        nk++;
    if (!m->nconflict && !nk)
        return STEP_OK;
    enum step s = lock_step(r);
    if (s != STEP_OK)
        return s;
    metric_inc(r->conf->conflicts);
    char text[1024];
    if (m->nconflict)
        merge_conflict_text(m, text, sizeof text);
    bool told = !m->nconflict || notice_settled(r, text);
    for (size_t i = 0; told && i < nk; i++)
        told = notice_settled(r, ksync_conflict(ks, i));
    if (!told) {
        snprintf(r->err, sizeof r->err, "conflict notice not sent; retrying before any write");
        return STEP_ESPO_DOWN;
    }
    return STEP_OK;
}

/* The Kommunikation of a create (every EspoCRM item is new: the record has no entries yet),
 * validated. NULL with *s set on failure. (An update's plan comes from decide_make.) */
static struct ksync *plan_create_kommunikation(struct run *r, enum step *s)
{
    struct ksync_in in = {.entity = r->entity,
                          .create = true,
                          .espo_changed = true,
                          .phone_types = r->conf->phone_types,
                          .nphone_types = r->conf->pf.ntypes,
                          .default_type = r->conf->pf.default_type,
                          .dir = KOMM_BOTH};
    struct ksync *ks = ksync_new(&in);
    if (!ks) {
        snprintf(r->err, sizeof r->err, "Kommunikation: out of memory");
        *s = STEP_TRANSIENT;
        return NULL;
    }
    if (ksync_validate(ks, r->err, sizeof r->err) != 0) {
        ksync_free(ks);
        *s = STEP_PERMANENT;
        return NULL;
    }
    *s = STEP_OK;
    return ks;
}

/* No betnr: POST to Advoware, write the link at once, put betnr and rowId. */
static enum step create(struct run *r)
{
    r->scase = MCASE_ESPOCRM_NEWER;
    /* Never two Advoware records (SPEC §5.3): a POST whose outcome is unknown left a mark; while
     * it stands, no run POSTs again: a person resolves it (vmhctl link / vmhctl create). */
    int marked =
        store_creating(r->ctx->redis, r->id, r->since, sizeof r->since, r->err, sizeof r->err);
    if (marked < 0)
        return STEP_ESPO_DOWN; /* Redis: retried; never POST without knowing */
    if (marked)
        return STEP_UNCERTAIN;
    enum step s = validate(r);
    if (s != STEP_OK)
        return s;
    struct ksync *ks = plan_create_kommunikation(r, &s);
    if (!ks)
        return s;
    if ((s = lock_step(r)) != STEP_OK) {
        ksync_free(ks);
        return s;
    }
    st_format_espo(now_s(), r->since, sizeof r->since);
    if (store_mark_creating(r->ctx->redis, r->id, r->since, jstr(r->entity, "name"), r->user,
                            r->err, sizeof r->err) != 0) {
        ksync_free(ks);
        return STEP_ESPO_DOWN;
    }
    json_t *body = map_to_advo(r->entity), *out = NULL;
    long status = 0;
    bool maybe_created = false;
    int rc = advo_post_beteiligte(r->t->advo, body, &status, &out, &maybe_created, r->err,
                                  sizeof r->err);
    json_decref(body);
    r->betnr = rc == 0 && status >= 200 && status < 300
                   ? json_integer_value(json_object_get(out, "betNr"))
                   : 0;
    /* A 5xx may come from a proxy after Advoware created the record (the fault matrix's apply
     * + 503; SPEC §5.3 counts an error status as certain, issue 13 wants never two records):
     * only a 4xx is a certain refusal. */
    if (maybe_created || (rc == 0 && status >= 500) ||
        (rc == 0 && status >= 200 && status < 300 && r->betnr <= 0)) {
        /* the request arrived and no answer says what became of it: the mark stays */
        log_error("Advoware POST outcome unknown; not repeated", LOG_STR("entity_id", r->id),
                  LOG_INT("status", status), LOG_STR("error", r->err));
        json_decref(out);
        ksync_free(ks);
        return STEP_UNCERTAIN;
    }
    if (rc != 0 || status < 200 || status >= 300) { /* certainly not created */
        if (rc == 0)
            snprintf(r->err, sizeof r->err, "Advoware POST Beteiligte: %ld", status);
        char err[256];
        if (store_clear_creating(r->ctx->redis, r->id, err, sizeof err) != 0)
            log_warn("create mark not removed", LOG_STR("entity_id", r->id), LOG_STR("error", err));
        json_decref(out);
        ksync_free(ks);
        if (rc != 0)
            return STEP_TRANSIENT;
        return classify(status) == STEP_GONE ? STEP_PERMANENT : classify(status);
    }
    const char *rowid = jstr(out, "rowId");
    json_t *again = NULL;
    if (!rowid) { /* only if the answer lacks it: GET once */
        if (advo_get_beteiligte(r->t->advo, r->betnr, &status, &again, r->err, sizeof r->err) ==
                0 &&
            status == 200)
            rowid = jstr(again, "rowId");
    }
    /* The link first: a redelivered run finds it and finishes instead of creating again; the
     * mark goes only once the link stands. */
    r->agreed = merge_fields_of(r->entity); /* B is what was posted (SPEC §5.2) */
    if (link_set(r, r->betnr, false, r->agreed) != 0)
        log_error("link not written after an Advoware POST; the create mark stays",
                  LOG_STR("entity_id", r->id), LOG_INT("betnr", r->betnr));
    else if (store_clear_creating(r->ctx->redis, r->id, r->err, sizeof r->err) != 0)
        log_warn("create mark not removed", LOG_STR("entity_id", r->id));
    r->err[0] = '\0';
    json_object_set_new(r->put, SF_BETNR, json_integer(r->betnr));
    if (rowid)
        json_object_set_new(r->put, SF_ADVOWARE_ROW_ID, json_string(rowid));
    json_decref(out);
    json_decref(again);
    log_info("created in Advoware", LOG_STR("entity_id", r->id), LOG_INT("betnr", r->betnr));
    s = kommunikation(r, ks);
    ksync_free(ks);
    return s;
}

/* Before the run's first Advoware write: what the baseline becomes once the writes landed,
 * each item tentative until Advoware shows it (merge.h). */
static enum step write_ahead(struct run *r, const json_t *baseline, const struct ksync *ks)
{
    enum step s = lock_step(r);
    if (s != STEP_OK)
        return s;
    json_t *fields = merge_fields_of(r->entity), *tent = ks ? ksync_tentative(ks) : NULL;
    /* without a stored "komm" the markers decide; this run rewrites some of them, so what they
     * said before goes ahead (kommsync.h) */
    json_t *with = NULL;
    const json_t *prior = ks ? ksync_prior(ks) : NULL;
    if (baseline && !json_is_array(json_object_get(baseline, "komm")) && prior &&
        (with = json_deep_copy(baseline)))
        json_object_set(with, "komm", (json_t *)prior);
    json_t *ahead = fields ? merge_pending_make(with ? with : baseline, fields, tent) : NULL;
    json_decref(with);
    int rc = ahead
                 ? store_ahead_set(r->ctx->redis, r->id, r->based_on, ahead, r->err, sizeof r->err)
                 : -1;
    json_decref(fields);
    json_decref(tent);
    json_decref(ahead);
    if (rc != 0)
        return STEP_ESPO_DOWN; /* nothing written yet: retried */
    r->ahead = true;
    return STEP_OK;
}

/* betnr set: GET Advoware, compare, maybe PUT Advoware or take its fields. */
static enum step update(struct run *r)
{
    json_t *advo = NULL;
    long status = 0;
    if (advo_get_beteiligte(r->t->advo, r->betnr, &status, &advo, r->err, sizeof r->err) != 0)
        return STEP_TRANSIENT;
    if (status != 200) {
        snprintf(r->err, sizeof r->err, "Advoware GET Beteiligte %lld: %ld", r->betnr, status);
        json_decref(advo);
        return classify(status);
    }
    /* the EspoCRM-pending mark counts only for a party neither clean nor dirty (decide.h) */
    const char *st = jstr(r->entity, SF_SYNC_STATUS);
    bool espo_pending = st && !syncfields_status_is(st, SF_STATUS_DIRTY) &&
                        !syncfields_status_is(st, SF_STATUS_PENDING_SYNC) &&
                        !syncfields_status_is(st, SF_STATUS_CLEAN) && pending_get(r);
    /* SPEC §5.2: values decide, field by field, against what both systems agreed on after the
     * last successful run (after a CREATE: what was posted, even when its final PUT failed),
     * with what an earlier run wrote ahead of its failed final PUT; without a baseline the
     * fallback decides once. */
    decide_based_on(r->entity, r->based_on);
    json_t *ahead = NULL;
    if (store_ahead_get(r->ctx->redis, r->id, r->based_on, &ahead, r->err, sizeof r->err) != 0) {
        json_decref(advo);
        return STEP_ESPO_DOWN; /* Redis: never decide without what an earlier run wrote */
    }
    bool from_ahead;
    json_t *baseline = decide_baseline(r->entity, r->link, ahead, advo, &from_ahead);
    json_decref(ahead);
    if (from_ahead)
        r->ahead = true;
    /* the decisions, as vmhctl status shows them (decide.h) */
    struct decide d;
    struct decide_in din = {.entity = r->entity,
                            .advo = advo,
                            .espo_pending = espo_pending,
                            .sync_user_id = r->conf->pf.user_id,
                            .phone_types = r->conf->phone_types,
                            .nphone_types = r->conf->pf.ntypes,
                            .default_type = r->conf->pf.default_type,
                            .baseline = baseline};
    if (decide_make(&din, &d) != 0) {
        snprintf(r->err, sizeof r->err, "merge: out of memory");
        json_decref(baseline);
        json_decref(advo);
        return STEP_TRANSIENT;
    }
    struct merge_result *m = &d.m;
    struct ksync *ks = d.ks;
    r->scase = m->mcase;
    const char *rowid = jstr(advo, "rowId");
    json_t *out = NULL;
    bool push = merge_needs_push(m);
    /* Everything is validated before the first write (SPEC §5.1). */
    enum step s = push ? validate(r) : STEP_OK;
    if (s == STEP_OK && ksync_validate(ks, r->err, sizeof r->err) != 0)
        s = STEP_PERMANENT;
    if (s == STEP_OK) /* told before anything is overwritten: a run that fails after its write
                         would find both sides equal and never tell */
        s = tell_conflicts(r, m, ks);
    if (s == STEP_OK && baseline && (push || ksync_writes(ks)))
        s = write_ahead(r, baseline, ks);
    json_decref(baseline); /* ks keeps what it needs */
    if (s == STEP_OK && push)
        s = lock_step(r);
    if (s == STEP_OK && push) { /* the merged state: EspoCRM's edits, Advoware's pulled fields */
        json_t *body = merge_advo_body(m);
        int rc = body ? advo_put_beteiligte(r->t->advo, r->betnr, body, &status, &out, r->err,
                                            sizeof r->err)
                      : -1;
        json_decref(body);
        if (rc != 0) {
            s = STEP_TRANSIENT;
        } else if (status < 200 || status >= 300) {
            snprintf(r->err, sizeof r->err, "Advoware PUT Beteiligte %lld: %ld", r->betnr, status);
            s = classify(status);
        } else {
            rowid = jstr(out, "rowId"); /* the PUT's answer: no GET after PUT */
        }
    }
    if (s == STEP_OK && m->npull) {
        json_t *fields = merge_pull_attrs(m);
        json_object_update(r->put, fields);
        json_decref(fields);
    }
    if (s == STEP_OK && rowid)
        json_object_set_new(r->put, SF_ADVOWARE_ROW_ID, json_string(rowid));
    if (s == STEP_OK)
        r->agreed = merge_agreed_fields(m);
    if (s == STEP_OK)
        s = kommunikation(r, ks);
    decide_free(&d);
    json_decref(out);
    json_decref(advo);
    return s;
}

/* EspoCRM answered 401: the API key is not (or no longer) accepted (SPEC §5.3). */
static enum step espo_refused(struct run *r, const char *method)
{
    r->cred_system = "EspoCRM";
    snprintf(r->err, sizeof r->err, "EspoCRM %s: 401", method);
    return STEP_CREDENTIALS;
}

/* The final PUT (or a status write). STEP_CONFLICT on 409. */
static enum step final_put(struct run *r)
{
    long status = 0;
    json_t *out = NULL;
    char err[256];
    enum step held = lock_step(r);
    if (held != STEP_OK)
        return held;
    if (espo_put(r->t->espo, r->id, r->put, r->version, &status, &out, err, sizeof err) != 0) {
        snprintf(r->err, sizeof r->err, "EspoCRM PUT: %s", err);
        return STEP_ESPO_DOWN;
    }
    json_decref(out);
    if (status == 409)
        return STEP_CONFLICT;
    if (status == 404)
        return STEP_GONE;
    if (status == 401)
        return espo_refused(r, "PUT");
    if (status < 200 || status >= 300) {
        if (status >= 500 || status == 429 || status == 401 || status == 403) {
            snprintf(r->err, sizeof r->err, "EspoCRM PUT: %ld", status);
            return STEP_ESPO_DOWN;
        }
        snprintf(r->err, sizeof r->err, "%ld %s", status, err[0] ? err : "(no reason given)");
        return STEP_PERMANENT;
    }
    return STEP_OK;
}

static bool same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Adds the status of outcome o to the PUT (and sends its notification). */
static void add_status(struct run *r, enum outcome o)
{
    bool restart = status_retry_restarts(jstr(r->entity, SF_SYNC_STATUS), r->auto_reset);
    long long retries =
        restart ? 0 : json_integer_value(json_object_get(r->entity, SF_SYNC_RETRY_COUNT));
    struct status_result res;
    const char *msg = o != OUT_SUCCESS ? r->err : r->skipped[0] ? r->skipped : NULL;
    const char *was = jstr(r->entity, SF_SYNC_STATUS);
    if (o == OUT_SUCCESS && !msg && !r->komm_planned && syncfields_status_is(was, SF_STATUS_CLEAN))
        msg = jstr(r->entity, SF_SYNC_ERROR_MESSAGE); /* a clean party's message names skipped
                                                      entries; unplanned, they still stand */
    if (status_for(o, retries, msg, r->betnr, now_s(), &res) != 0)
        return;
    json_object_update(r->put, res.attrs);
    json_decref(res.attrs);
    const char *next = jstr(r->entity, SF_SYNC_NEXT_RETRY);
    if (o == OUT_UNCERTAIN && next && syncfields_status_is(was, SF_STATUS_FAILED) &&
        same_text(jstr(r->entity, SF_SYNC_ERROR_MESSAGE), STATUS_UNCERTAIN_TEXT))
        /* the same uncertain create again: its day-ahead look stays, nothing is written */
        json_object_set_new(r->put, SF_SYNC_NEXT_RETRY, json_string(next));
    if (res.notify)
        notify_once(r, res.text);
}

/* The baseline of SPEC §5.2 into the final PUT of a successful run, atomically with the values
 * it describes: the agreed fields, Advoware's rowId and the Kommunikation hash as the PUT leaves
 * them. Only when it differs from the stored one (a run that changes nothing writes nothing). */
static void add_baseline(struct run *r)
{
    if (!r->agreed)
        return;
    const char *rowid = jstr(r->put, SF_ADVOWARE_ROW_ID);
    const char *hash = jstr(r->put, SF_KOMMUNIKATION_HASH);
    char *text = merge_baseline_format(r->agreed, r->agreed_komm,
                                       rowid ? rowid : jstr(r->entity, SF_ADVOWARE_ROW_ID),
                                       hash ? hash : jstr(r->entity, SF_KOMMUNIKATION_HASH));
    const char *had = jstr(r->entity, SF_ADVOWARE_SYNC_BASELINE);
    if (text && (!had || strcmp(had, text) != 0))
        json_object_set_new(r->put, SF_ADVOWARE_SYNC_BASELINE, json_string(text));
    free(text);
}

/* Whether a no_change run needs no write at all (budget: 2 calls). */
static bool nothing_to_write(struct run *r, const struct wk_event *ev, size_t n)
{
    if (r->scase != MCASE_NO_CHANGE || json_object_size(r->put) != 1) /* only advowareRowId */
        return false;
    const char *st = jstr(r->entity, SF_SYNC_STATUS);
    if (!syncfields_status_is(st, SF_STATUS_CLEAN))
        return false;
    for (size_t i = 0; i < n; i++) { /* the cron asks for a fresh advowareLastSync */
        if (strcmp(ev[i].m->reason, MSG_REASON_STALE_CLEAN) == 0)
            return false;
    }
    const char *rowid = jstr(r->put, SF_ADVOWARE_ROW_ID),
               *had = jstr(r->entity, SF_ADVOWARE_ROW_ID);
    return rowid && had && strcmp(rowid, had) == 0;
}

/* A permanent failure stands until a person changes the entity (dirty) or the cron's auto
 * reset: a run that finds nothing changed must not call it clean (its data never reached
 * Advoware). */
static bool keeps_failure(struct run *r)
{
    const char *st = jstr(r->entity, SF_SYNC_STATUS);
    return r->scase == MCASE_NO_CHANGE && !r->auto_reset &&
           syncfields_status_is(st, SF_STATUS_PERMANENTLY_FAILED);
}

/* Whether the PUT would write only values the entity already has. */
static bool changes_nothing(struct run *r)
{
    const char *k;
    json_t *v;
    json_object_foreach(r->put, k, v)
    {
        json_t *had = json_object_get(r->entity, k);
        if (!json_equal(v, had ? had : json_null()))
            return false;
    }
    return true;
}

/* Empties the PUT for a status-only write; a create's betnr stays (its link). */
static void status_only(struct run *r)
{
    json_t *betnr = json_incref(json_object_get(r->put, SF_BETNR));
    json_decref(r->put);
    r->put = json_object();
    if (betnr)
        json_object_set_new(r->put, SF_BETNR, betnr);
}

/* EspoCRM refused the final PUT (400: a value it does not take; SPEC §5.3): the data stays
 * unwritten, the party gets permanently_failed with EspoCRM's reason in a status-only write, and
 * one notification. Never silently dirty. */
static enum step refused_put(struct run *r)
{
    char reason[sizeof r->err];
    snprintf(reason, sizeof reason, "EspoCRM lehnte die Daten ab: %.460s", r->err);
    log_warn("EspoCRM refused the final PUT", LOG_STR("entity_id", r->id),
             LOG_STR("error", r->err));
    snprintf(r->err, sizeof r->err, "%s", reason);
    status_only(r);
    add_status(r, OUT_PERMANENT);
    enum step w = final_put(r);
    return w == STEP_OK ? STEP_PERMANENT : w;
}

static enum outcome failure_outcome(enum step s)
{
    switch (s) {
    case STEP_PERMANENT:
        return OUT_PERMANENT;
    case STEP_GONE:
        return OUT_DELETED_IN_ADVOWARE;
    case STEP_UNCERTAIN:
        return OUT_UNCERTAIN;
    default:
        return OUT_TRANSIENT;
    }
}

/* A failure's status-only write met a person's edit (409; recorded 04_occ): re-read once and
 * write the status again on the fresh version (SPEC §5.3), without redoing the run's Advoware
 * calls. A second 409 leaves it: the edit's webhook brings the party back. Returns s, or
 * STEP_ESPO_DOWN when EspoCRM did not answer. */
static enum step status_again(struct run *r, enum step s)
{
    long status = 0;
    char err[256];
    json_t *fresh = NULL;
    if (espo_get(r->t->espo, r->id, &status, &fresh, err, sizeof err) != 0 || status >= 500) {
        json_decref(fresh);
        snprintf(r->err, sizeof r->err, "EspoCRM GET: %s", status ? "5xx" : err);
        return STEP_ESPO_DOWN;
    }
    if (status != 200 || !json_is_object(fresh)) {
        json_decref(fresh);
        return s;
    }
    json_decref(r->entity);
    r->entity = fresh;
    r->version = json_integer_value(json_object_get(fresh, "versionNumber"));
    status_only(r);
    add_status(r, failure_outcome(s));
    enum step w = final_put(r);
    if (w == STEP_ESPO_DOWN || w == STEP_LOCK_LOST)
        return w;
    if (w != STEP_OK)
        log_info("status not written: the party changed again; its webhook brings it back",
                 LOG_STR("entity_id", r->id));
    return s;
}

/* One GET → PUT round. STEP_CONFLICT: start over. */
static enum step attempt(struct run *r, const struct wk_event *ev, size_t n)
{
    long status = 0;
    char err[256];
    json_decref(r->entity);
    json_decref(r->put);
    json_decref(r->agreed);
    json_decref(r->agreed_komm);
    json_decref(r->link);
    r->link = NULL;
    r->entity = NULL;
    r->agreed = NULL;
    r->agreed_komm = NULL;
    r->put = json_object();
    r->err[0] = '\0';
    r->skipped[0] = '\0';
    r->komm_planned = false;
    if (espo_get(r->t->espo, r->id, &status, &r->entity, err, sizeof err) != 0 || status >= 500 ||
        status == 429) {
        snprintf(r->err, sizeof r->err, "EspoCRM GET: %s", status ? "5xx" : err);
        return STEP_ESPO_DOWN;
    }
    if (status == 404)
        return deletion_path(r);
    if (status == 401)
        return espo_refused(r, "GET");
    if (status != 200 || !json_is_object(r->entity)) {
        snprintf(r->err, sizeof r->err, "EspoCRM GET: %ld", status);
        return STEP_ESPO_DOWN;
    }
    r->version = json_integer_value(json_object_get(r->entity, "versionNumber"));
    r->user = jstr(r->entity, "assignedUserId");
    r->betnr = json_integer_value(json_object_get(r->entity, SF_BETNR));
    const char *st = jstr(r->entity, SF_SYNC_STATUS);
    if (syncfields_status_is(st, SF_STATUS_DELETED_IN_ADVOWARE))
        return STEP_OK; /* nothing to do until a person decides */
    bool scheduled = false;
    for (size_t i = 0; i < n; i++) {
        r->auto_reset |= strcmp(ev[i].m->reason, MSG_REASON_AUTO_RESET) == 0;
        scheduled |= ev[i].m->source != MSG_SOURCE_WEBHOOK;
    }
    long long next_retry = 0;
    const char *nr = jstr(r->entity, SF_SYNC_NEXT_RETRY);
    if (nr && st_parse_espo(nr, &next_retry) != 0)
        next_retry = 0;
    if (status_backoff_holds(st, next_retry, now_s(), scheduled)) {
        snprintf(r->err, sizeof r->err, "backoff holds until %s", nr);
        return STEP_OK; /* an echo, a duplicate or a replay never retries early (SPEC §3.1) */
    }

    enum step s;
    /* A create whose final PUT never happened: the link has its betnr (a failure's status
     * write may have carried it) and what it posted, the baseline (SPEC §5.2). */
    if (r->betnr <= 0 || !jstr(r->entity, SF_ADVOWARE_SYNC_BASELINE)) {
        if (link_get(r, &r->link) != 0)
            return STEP_ESPO_DOWN; /* a Redis error is not "no link": no second POST */
        if (r->betnr <= 0) {
            r->betnr = json_integer_value(json_object_get(r->link, "betnr"));
            if (r->betnr > 0)
                json_object_set_new(r->put, SF_BETNR, json_integer(r->betnr));
        }
    }
    s = r->betnr > 0 ? update(r) : create(r);
    if ((s == STEP_TRANSIENT || s == STEP_PERMANENT || s == STEP_GONE) &&
        advo_credentials_refused(r->t->advo)) {
        r->cred_system = "Advoware"; /* nothing is marked: not the party's fault */
        return STEP_CREDENTIALS;
    }
    switch (s) {
    case STEP_OK:
        add_baseline(r);
        if (nothing_to_write(r, ev, n))
            return STEP_OK;
        if (keeps_failure(r)) { /* the failure stands; Kommunikation changes still go in */
            if (changes_nothing(r))
                return STEP_OK;
            break;
        }
        add_status(r, OUT_SUCCESS);
        break;
    case STEP_TRANSIENT:
    case STEP_PERMANENT:
    case STEP_GONE:
    case STEP_UNCERTAIN:
        if (s == STEP_UNCERTAIN)
            snprintf(r->err, sizeof r->err, "%s", r->since);
        /* A failure writes its status only: data pulled from Advoware or EspoCRM halves of
         * Kommunikation actions go in only with the baseline that describes them (SPEC §5.2),
         * else the next run takes a pulled value for a person's edit. What this run did in
         * Advoware is found again (equal values) and finished by the next one. */
        status_only(r);
        add_status(r, failure_outcome(s));
        break;
    default:
        return s;
    }
    /* A failure before the compare (an Advoware GET answering 503) must not forget that the
     * party was dirty: the failure's status write replaces that flag. */
    const char *was = jstr(r->entity, SF_SYNC_STATUS);
    bool espo_pending = r->scase == MCASE_ESPOCRM_NEWER || r->scase == MCASE_MERGED ||
                        r->scase == MCASE_CONFLICT || syncfields_status_is(was, SF_STATUS_DIRTY) ||
                        syncfields_status_is(was, SF_STATUS_PENDING_SYNC);
    if (s == STEP_TRANSIENT && espo_pending)
        pending_set(r, true); /* before the status write that hides the dirty flag */
    if (s != STEP_OK && changes_nothing(r))
        return s; /* the same failure again: already written, and already notified */
    enum step w = final_put(r);
    if (w == STEP_PERMANENT && s != STEP_PERMANENT)
        return refused_put(r);
    if (w == STEP_CONFLICT && s != STEP_OK) /* only the status met a person's edit */
        return status_again(r, s);
    if (w != STEP_OK)
        return w;
    if (s == STEP_OK && r->ahead) { /* the final PUT carried the real baseline */
        char cerr[256];
        if (store_ahead_clear(r->ctx->redis, r->id, cerr, sizeof cerr) != 0)
            log_warn("write-ahead baseline not removed (it expires; stale anyway)",
                     LOG_STR("entity_id", r->id), LOG_STR("error", cerr));
    }
    if (s == STEP_OK) {
        if (link_set(r, r->betnr, false, NULL) != 0)
            log_warn("link not written", LOG_STR("entity_id", r->id), LOG_STR("error", r->err));
        if (was && !syncfields_status_is(was, SF_STATUS_CLEAN) && !keeps_failure(r))
            pending_set(r, false);
    }
    return s;
}

enum wk_result sync_run(void *ud, struct wk_ctx *ctx, const char *entity_id,
                        const struct wk_event *ev, size_t n)
{
    struct sync_conf *conf = ud;
    struct sync_thread *t = ctx->thread_ud;
    struct run r = {.conf = conf, .t = t, .ctx = ctx, .id = entity_id};
    long long t0 = util_monotonic_ms();
    enum step s = STEP_ESPO_DOWN;

    if (!t || !t->espo) {
        ctx->retry_after_ms = 1000;
        return WK_RETRY;
    }
    if (!atomic_load(&conf->ready)) { /* the EspoCRM side is not right: take no work */
        ctx->retry_after_ms = 5000;
        return WK_RETRY;
    }
    unsigned long calls0 = espo_calls(t->espo) + advo_calls(t->advo);
    long long cred_wait = atomic_load(&conf->cred_until) - util_monotonic_ms();
    bool probing = false; /* this run holds cred_probe: it gives it back on every way out */
    if (atomic_load(&conf->cred_bad)) {
        if (cred_wait > 0 || atomic_exchange(&conf->cred_probe, true)) {
            /* credentials refused: one run at a time tries them again, once the wait is over */
            ctx->retry_after_ms = cred_wait > 1000 ? cred_wait : 1000;
            return WK_RETRY;
        }
        probing = true;
    }
    char qerr[128]; /* the run has started: the cron may send the party again (SPEC §3.2) */
    if (queued_clear(ctx->redis, entity_id, qerr, sizeof qerr) != 0)
        log_debug("in-flight mark not cleared (it expires)", LOG_STR("entity_id", entity_id),
                  LOG_STR("error", qerr));
    if (!t->advo)
        t->advo = advo_new(&conf->advo, ctx->redis, &conf->st, r.err, sizeof r.err);
    if (!t->advo)
        goto espo_down;
    for (int i = 0; i < SYNC_ATTEMPTS; i++) {
        s = attempt(&r, ev, n);
        if (s != STEP_CONFLICT)
            break;
        metric_inc(conf->retries);
        log_info("entity changed during the run; starting over", LOG_STR("entity_id", entity_id));
    }
    const char *const *results = step_names;
    const char *result = r.deleted && s == STEP_OK ? "deleted" : results[s];
    metric_observe(conf->duration, (double)(util_monotonic_ms() - t0) / 1000.0,
                   merge_case_name(r.scase), result);
    if (probing)
        atomic_store(&conf->cred_probe, false);
    if (s == STEP_CREDENTIALS) { /* unfinished: the messages come back once the gate opens */
        credentials_refused(conf, r.cred_system, r.err);
        metric_inc(conf->errors, results[s]);
        json_decref(r.entity);
        json_decref(r.put);
        json_decref(r.agreed);
        json_decref(r.agreed_komm);
        json_decref(r.link);
        ctx->retry_after_ms = conf->cred_recheck_ms;
        return WK_RETRY;
    }
    if (s != STEP_ESPO_DOWN)
        credentials_accepted(conf);
    if (s == STEP_ESPO_DOWN)
        goto espo_down;
    if (s != STEP_OK)
        metric_inc(conf->errors, results[s]);
    log_write(s == STEP_OK || s == STEP_GONE ? LOG_INFO : LOG_WARN, "entity synced",
              LOG_STR("entity_id", entity_id), LOG_INT("betnr", r.betnr),
              LOG_STR("case", merge_case_name(r.scase)), LOG_STR("result", result),
              LOG_INT("duration_ms", util_monotonic_ms() - t0),
              LOG_INT("calls", (long long)(espo_calls(t->espo) + advo_calls(t->advo) - calls0)),
              LOG_STR("error", r.err[0] ? r.err : NULL), LOG_END);
    json_decref(r.entity);
    json_decref(r.put);
    json_decref(r.agreed);
    json_decref(r.agreed_komm);
    json_decref(r.link);
    return WK_DONE;

espo_down:
    if (probing)
        atomic_store(&conf->cred_probe, false);
    json_decref(r.entity);
    json_decref(r.put);
    json_decref(r.agreed);
    json_decref(r.agreed_komm);
    json_decref(r.link);
    metric_inc(conf->errors, "espo_down");
    if (ctx->attempt >= ESPO_GIVE_UP_AFTER) {
        log_warn("EspoCRM unreachable; giving up on the entity (the cron finds it again)",
                 LOG_STR("entity_id", entity_id), LOG_STR("error", r.err));
        return WK_DONE;
    }
    ctx->retry_after_ms = 1000LL << ctx->attempt;
    log_warn("EspoCRM unreachable; retrying", LOG_STR("entity_id", entity_id),
             LOG_INT("retry_ms", ctx->retry_after_ms), LOG_STR("error", r.err));
    return WK_RETRY;
}
