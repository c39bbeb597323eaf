/* cmd_status.c: vmhctl status <id> (SPEC §11): "why is party X not synced?" in one command. Reads
 * (never writes) EspoCRM's entity and the sync user's set-up, the lock, link and marks in Redis
 * and the Advoware record, routes by state as a run does (sync.c), and shows field by field and
 * entry by entry what each side and the baseline hold and what the next run would do: the merge
 * and the Kommunikation plan come from worker/decide.h, the table from view.h. */
#include "cmd.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decide.h"
#include "lock.h"
#include "mapper.h"
#include "preflight.h"
#include "status.h"
#include "store.h"
#include "syncfields.h"
#include "synctime.h"
#include "view.h"

/* What status found out. */
struct look {
    struct ctl *c;
    const char *id;
    json_t *doc;      /* the answer */
    json_t *problems; /* borrowed from doc */
    json_t *entity;   /* EspoCRM GET */
    json_t *link;     /* store.h */
    json_t *advo;     /* Advoware GET */
    long advo_status;
    char since[32]; /* the create mark */
    bool marked, pending;
    struct preflight pf;
    bool pf_ok;
    const char *types[PREFLIGHT_MAX_TYPES];
    bool trouble; /* exit 1 */
};

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

static void problem(struct look *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct look *l, const char *fmt, ...)
{
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(l->problems, json_string(buf));
    l->trouble = true;
}

/* The EspoCRM status fields (SPEC §6) as the entity holds them. */
static json_t *status_fields(const json_t *e)
{
    static const char *const keys[] = {
        SF_SYNC_STATUS,        SF_SYNC_RETRY_COUNT,   SF_SYNC_NEXT_RETRY,
        SF_SYNC_AUTO_RESET_AT, SF_SYNC_ERROR_MESSAGE, SF_BETNR,
        SF_ADVOWARE_ROW_ID,    SF_ADVOWARE_LAST_SYNC, SF_KOMMUNIKATION_HASH,
        "versionNumber",       "modifiedAt",          "assignedUserId"};
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(e, keys[i]);
        json_object_set_new(o, keys[i], v ? json_incref(v) : json_null());
    }
    return o;
}

/* Lock holder and TTL, link, create mark, EspoCRM-pending mark. */
static void look_redis(struct look *l)
{
    char err[256], key[LOCK_KEY_MAX];
    struct redis_client *r = ctl_redis(l->c, err, sizeof err);
    char *holder = NULL;
    long long ttl = -2;
    if (!r || lock_key(l->id, key, sizeof key) != 0 ||
        redis_get(r, key, &holder, NULL, err, sizeof err) < 0 ||
        redis_pttl(r, key, &ttl, err, sizeof err) < 0 ||
        store_link_get(r, l->id, &l->link, err, sizeof err) != 0) {
        problem(l, "Redis: %s (lock, link and marks unknown)", err);
        free(holder);
        return;
    }
    json_object_set_new(l->doc, "lock",
                        json_pack("{s:b,s:o,s:I}", "held", holder != NULL, "holder",
                                  ctl_jstr(holder), "ttlMs", (json_int_t)(holder ? ttl : 0)));
    free(holder);
    json_object_set(l->doc, "link", l->link ? l->link : json_null());
    int m = store_creating(r, l->id, l->since, sizeof l->since, err, sizeof err);
    int p = store_pending_get(r, l->id, err, sizeof err);
    l->marked = m == 1;
    l->pending = p == 1;
    json_object_set_new(l->doc, "createMark", l->marked ? json_string(l->since) : json_null());
    json_object_set_new(l->doc, "espoPending", json_boolean(l->pending));
    if (m < 0 || p < 0)
        problem(l, "Redis: %s", err);
}

/* The sync user and the phone type list (the planner needs them), as the worker's check. */
static void look_setup(struct look *l)
{
    char err[256];
    l->pf_ok = preflight_run(l->c->espo, &l->pf, err, sizeof err) == 0;
    if (!l->pf_ok) {
        problem(l, "EspoCRM set-up not readable: %s (the Company phone types are assumed)", err);
        return;
    }
    for (size_t i = 0; i < l->pf.ntypes; i++)
        l->types[i] = l->pf.types[i];
    for (size_t i = 0; i < l->pf.nproblems; i++)
        problem(l, "EspoCRM set-up: %s (workers are not ready: vmhctl doctor)", l->pf.problems[i]);
}

/* Validation before any write to Advoware (SPEC §5.1), as the run does. */
static void look_validation(struct look *l, const struct ksync *ks, char *why, size_t len)
{
    char err[256];
    why[0] = '\0';
    if (map_validate(l->entity, why, len) != 0)
        return;
    const char *rf = jstr(l->entity, "rechtsform");
    struct advo *a = ctl_advo(l->c, err, sizeof err);
    int ok = a ? advo_rechtsform_allowed(a, rf, err, sizeof err) : -1;
    if (ok < 0)
        problem(l, "Advoware Rechtsformen not readable: %s", err);
    else if (!ok)
        snprintf(why, len, "rechtsform: \"%s\" ist in Advoware nicht erlaubt", rf);
    else if (ks && ksync_validate(ks, why, len) != 0)
        return;
}

/* Counts the plan's calls: Advoware (POST/PUT) and EspoCRM-side changes. */
static void plan_counts(const struct ksync *ks, size_t *advo, size_t *espo)
{
    const struct komm_plan *p = ksync_plan(ks);
    *advo = *espo = 0;
    for (size_t k = 0; ksync_planned(ks) && k < p->n; k++) {
        enum komm_op op = p->a[k].op;
        *advo += op == KOP_ADVO_POST || op == KOP_ADVO_PUT;
        *espo += op == KOP_ESPO_ADD || op == KOP_ESPO_SET || op == KOP_ESPO_REMOVE;
    }
}

static void komm_rows(struct look *l, const struct ksync *ks)
{
    json_t *rows = view_komm(ksync_input(ks), ksync_plan(ks), ksync_planned(ks));
    json_object_set_new(l->doc, "kommunikation",
                        json_pack("{s:b,s:o}", "planned", ksync_planned(ks), "entries",
                                  rows ? rows : json_array()));
}

static struct decide_in decide_input(struct look *l, const json_t *advo)
{
    return (struct decide_in){.entity = l->entity,
                              .advo = advo,
                              .espo_pending = l->pending,
                              .sync_user_id = l->pf_ok ? l->pf.user_id : NULL,
                              .phone_types = l->pf_ok ? l->types : NULL,
                              .nphone_types = l->pf_ok ? l->pf.ntypes : 0,
                              .default_type = l->pf_ok ? l->pf.default_type : NULL};
}

/* No betNr anywhere: the run creates the party in Advoware (or waits for a person). */
static void next_create(struct look *l, char *next, size_t len)
{
    if (l->marked) {
        snprintf(next, len,
                 "nothing: an Advoware POST of %s UTC had no certain outcome. Look in Advoware: "
                 "found → vmhctl link %s <betNr>; not found → vmhctl create %s",
                 l->since, l->id, l->id);
        problem(l, "uncertain create since %s UTC: a person decides (vmhctl link / create)",
                l->since);
        return;
    }
    struct decide d;
    struct decide_in in = decide_input(l, NULL);
    if (decide_make(&in, &d) != 0) {
        snprintf(next, len, "unknown (out of memory)");
        return;
    }
    char why[300];
    look_validation(l, d.ks, why, sizeof why);
    size_t calls, espo;
    plan_counts(d.ks, &calls, &espo);
    komm_rows(l, d.ks);
    json_object_set_new(l->doc, "case", json_string("create"));
    if (*why) {
        snprintf(next, len, "permanently_failed: %s (nothing is written to Advoware)", why);
        problem(l, "validation: %s", why);
    } else {
        snprintf(next, len,
                 "CREATE: POST to Advoware, link written, %zu Kommunikation call(s), one EspoCRM "
                 "PUT (betnr, status clean)",
                 calls);
    }
    decide_free(&d);
}

/* betNr known: the run reads Advoware and merges. */
static void next_update(struct look *l, long long betnr, bool from_link, char *next, size_t len)
{
    char err[256];
    struct advo *a = ctl_advo(l->c, err, sizeof err);
    if (!a || advo_get_beteiligte(a, betnr, &l->advo_status, &l->advo, err, sizeof err) != 0) {
        snprintf(next, len, "unknown: Advoware did not answer (%s)", err);
        problem(l, "Advoware: %s", err);
        return;
    }
    if (l->advo_status == 404) {
        json_object_set_new(l->doc, "advoware",
                            json_pack("{s:I,s:b}", "betnr", (json_int_t)betnr, "found", 0));
        snprintf(next, len, "deleted_in_advoware: Advoware has no betNr %lld (one notification)",
                 betnr);
        problem(l, "Advoware has no betNr %lld", betnr);
        return;
    }
    if (l->advo_status != 200 || !json_is_object(l->advo)) {
        snprintf(next, len, "failed: Advoware GET betNr %lld answered %ld", betnr, l->advo_status);
        problem(l, "Advoware GET betNr %lld answered %ld", betnr, l->advo_status);
        return;
    }
    json_object_set_new(
        l->doc, "advoware",
        json_pack("{s:I,s:b,s:o,s:o,s:I}", "betnr", (json_int_t)betnr, "found", 1, "rowId",
                  ctl_jstr(jstr(l->advo, "rowId")), "geaendertAm",
                  ctl_jstr(jstr(l->advo, "geaendertAm")), "entries",
                  (json_int_t)json_array_size(json_object_get(l->advo, "kommunikation"))));
    /* the run's baseline (decide.h): with what the create posted and an earlier run's
     * write-ahead baseline */
    char based_on[33], err2[256];
    json_t *ahead = NULL;
    struct redis_client *r = ctl_redis(l->c, err2, sizeof err2);
    decide_based_on(l->entity, based_on);
    if (!r || store_ahead_get(r, l->id, based_on, &ahead, err2, sizeof err2) != 0) {
        snprintf(next, len, "unknown: Redis did not answer (%s)", err2);
        problem(l, "Redis: %s (the write-ahead baseline is unknown)", err2);
        return;
    }
    bool from_ahead;
    json_t *run_base = decide_baseline(l->entity, l->link, ahead, l->advo, &from_ahead);
    json_decref(ahead);
    struct decide d;
    struct decide_in in = decide_input(l, l->advo);
    in.baseline = run_base;
    int made = decide_make(&in, &d);
    json_decref(run_base);
    if (made != 0) {
        snprintf(next, len, "unknown (out of memory)");
        return;
    }
    json_t *base = d.baseline;
    json_object_set_new(
        l->doc, "baseline",
        base
            ? json_pack("{s:b,s:s,s:o,s:o,s:I}", "present", 1, "from",
                        from_ahead ? "write-ahead (an earlier run's final PUT did not happen)"
                        : jstr(l->entity, SF_ADVOWARE_SYNC_BASELINE)
                            ? "EspoCRM"
                            : "link (what the create posted)",
                        "rowId", ctl_jstr(jstr(base, "rowId")), "kommHash",
                        ctl_jstr(jstr(base, "kommHash")), "entries",
                        (json_int_t)json_array_size(json_object_get(base, "komm")))
            : json_pack("{s:b,s:s,s:b,s:b}", "present", 0, "decides", "fallback (SPEC 5.2)",
                        "espocrmChanged", d.fb.espo_changed, "advowareChanged", d.fb.advo_changed));
    json_object_set_new(l->doc, "case", json_string(merge_case_name(d.m.mcase)));
    json_object_set_new(l->doc, "fields", view_fields(&d.m));
    komm_rows(l, d.ks);
    char why[300] = "";
    bool push = merge_needs_push(&d.m);
    if (push)
        look_validation(l, d.ks, why, sizeof why);
    else if (ksync_validate(d.ks, why, sizeof why) != 0 && !*why)
        snprintf(why, sizeof why, "Kommunikation: invalid value");
    size_t calls, espo;
    plan_counts(d.ks, &calls, &espo);
    bool writes = push || d.m.npull || calls || espo || from_link;
    const char *st = jstr(l->entity, SF_SYNC_STATUS);
    if (*why) {
        snprintf(next, len, "permanently_failed: %s (nothing is written)", why);
        problem(l, "validation: %s", why);
    } else if (!writes && syncfields_status_is(st, SF_STATUS_PERMANENTLY_FAILED)) {
        snprintf(next, len,
                 "nothing to write (no_change); the failure stands until a person edits the "
                 "party or the auto reset (syncAutoResetAt)");
    } else if (!writes) {
        snprintf(next, len, "nothing to write (%s)", merge_case_name(d.m.mcase));
    } else {
        snprintf(next, len,
                 "%s: %sAdvoware PUT %s, %zu field(s) into EspoCRM, %zu Kommunikation call(s) to "
                 "Advoware, %zu EspoCRM entry change(s), one EspoCRM PUT%s",
                 merge_case_name(d.m.mcase), from_link ? "finishes the link (betnr), " : "",
                 push ? "yes" : "no", d.m.npull, calls, espo,
                 d.m.nconflict ? "; the user is told which Advoware values were overwritten" : "");
    }
    if (writes || *why)
        l->trouble = true;
    decide_free(&d);
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
    (void)argc;
    struct look l = {.c = c, .id = argv[0], .doc = json_object()};
    char err[256], next[768] = "";
    long status = 0;
    json_object_set_new(l.doc, "id", json_string(l.id));
    json_object_set_new(l.doc, "problems", json_array());
    l.problems = json_object_get(l.doc, "problems");
    struct espo *espo = ctl_espo(c, err, sizeof err);
    if (!espo || espo_get(espo, l.id, &status, &l.entity, err, sizeof err) != 0 ||
        (status != 200 && status != 404)) {
        fprintf(stderr, "vmhctl status: EspoCRM GET %s: %s (status %ld)\n", l.id,
                *err ? err : "failed", status);
        json_decref(l.entity);
        json_decref(l.doc);
        return CTL_PROBLEM;
    }
    look_redis(&l);
    if (status == 404) {
        json_object_set_new(l.doc, "espocrm", json_pack("{s:b}", "found", 0));
        long long betnr = json_integer_value(json_object_get(l.link, "betnr"));
        if (betnr > 0 && !json_is_true(json_object_get(l.link, "deleted")))
            snprintf(
                next, sizeof next,
                "deletion: one notification \"Bitte manuell in Advoware löschen: betNr %lld\", "
                "Advoware untouched",
                betnr);
        else
            snprintf(next, sizeof next, "nothing (deleted in EspoCRM%s)",
                     betnr > 0 ? "; the deletion was told" : "; never synced");
        problem(&l, "not in EspoCRM (404)");
        goto out;
    }
    json_object_set_new(l.doc, "name",
                        json_string(jstr(l.entity, "name") ? jstr(l.entity, "name") : ""));
    json_object_set_new(l.doc, "espocrm", status_fields(l.entity));
    look_setup(&l);
    const char *st = jstr(l.entity, SF_SYNC_STATUS);
    long long betnr = json_integer_value(json_object_get(l.entity, SF_BETNR)), next_retry = 0;
    bool from_link = false;
    if (betnr <= 0 && l.link) {
        betnr = json_integer_value(json_object_get(l.link, "betnr"));
        from_link = betnr > 0;
    }
    if (syncfields_status_is(st, SF_STATUS_DELETED_IN_ADVOWARE)) {
        snprintf(next, sizeof next, "nothing until a person decides (deleted_in_advoware)");
        problem(&l, "deleted_in_advoware: the Advoware record is gone");
        goto out;
    }
    if (betnr > 0)
        next_update(&l, betnr, from_link, next, sizeof next);
    else
        next_create(&l, next, sizeof next);
    const char *nr = jstr(l.entity, SF_SYNC_NEXT_RETRY);
    if (nr && st_parse_espo(nr, &next_retry) == 0 &&
        status_backoff_holds(st, next_retry, (long long)time(NULL), false)) {
        size_t n = strlen(next);
        snprintf(next + n, sizeof next - n,
                 ". Backoff holds until %s UTC: a webhook run stops at once; the retry scan then "
                 "(or vmhctl resync now) runs it",
                 nr);
    }
    if (!syncfields_status_is(st, SF_STATUS_CLEAN))
        l.trouble = true;
    if (jstr(l.entity, SF_SYNC_ERROR_MESSAGE) && !syncfields_status_is(st, SF_STATUS_CLEAN))
        problem(&l, "syncErrorMessage: %s", jstr(l.entity, SF_SYNC_ERROR_MESSAGE));
out:
    json_object_set_new(l.doc, "nextRun", json_string(next));
    json_object_set_new(l.doc, "ok", json_boolean(!l.trouble));
    if (!c->json)
        view_status_text(c->out, l.doc);
    ctl_emit(c, l.doc);
    json_decref(l.entity);
    json_decref(l.link);
    json_decref(l.advo);
    return l.trouble ? CTL_PROBLEM : CTL_OK;
}
