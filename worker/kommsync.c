/* kommsync.c: one run's Kommunikation effects (see kommsync.h). */
#include "kommsync.h"

#include "log.h"
#include "marker.h"
#include "syncfields.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum done { NOT_RUN, DONE_OK, DONE_FAILED };

struct ksync {
    const json_t *entity, *advo_list;
    struct komm_espo *espo;
    size_t nespo;
    size_t *espo_index; /* per item: its index in phoneNumberData or emailAddressData */
    struct komm_advo *advo;
    size_t nadvo;
    json_t *base_komm; /* the stored baseline's entries (a reference), NULL */
    json_t *prior;     /* without them: the entries the markers name (ksync_prior) */
    struct komm_base *base;
    size_t nbase;
    char **types; /* the entity's phone types (copies) */
    size_t ntypes;
    char *default_type;
    struct komm_in in;
    struct komm_plan plan;
    bool planned;
    const char *stored_hash;
    /* after ksync_run */
    enum done *done;   /* per action */
    long *status;      /* per action: HTTP status, 0 = no answer */
    char **rowid;      /* per Advoware entry: its rowId after the run (malloc'd or NULL) */
    char **new_rowids; /* rowIds of POSTed entries */
    size_t nnew;
    long long *new_id; /* per action: the id a POST answered with */
    bool all_ok;
};

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *const list_key[] = {
    [KOMM_PHONE] = "phoneNumberData", [KOMM_EMAIL] = "emailAddressData"};
static const char *const value_key[] = {
    [KOMM_PHONE] = "phoneNumber", [KOMM_EMAIL] = "emailAddress"};

/* The EspoCRM items with a value, phones first. */
static int read_espo(struct ksync *ks)
{
    size_t cap = json_array_size(json_object_get(ks->entity, list_key[KOMM_PHONE])) +
                 json_array_size(json_object_get(ks->entity, list_key[KOMM_EMAIL])) + 1;
    ks->espo = calloc(cap, sizeof *ks->espo);
    ks->espo_index = calloc(cap, sizeof *ks->espo_index);
    if (!ks->espo || !ks->espo_index)
        return -1;
    for (int c = KOMM_PHONE; c <= KOMM_EMAIL; c++) {
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(ks->entity, list_key[c]), i, item)
        {
            const char *v = jstr(item, value_key[c]);
            if (!v || !*v)
                continue;
            ks->espo[ks->nespo] =
                (struct komm_espo){.value = v,
                                   .cls = (enum komm_class)c,
                                   .type = c == KOMM_PHONE ? jstr(item, "type") : NULL};
            ks->espo_index[ks->nespo++] = i;
        }
    }
    return 0;
}

static int read_advo(struct ksync *ks)
{
    size_t n = json_array_size(ks->advo_list);
    ks->advo = calloc(n + 1, sizeof *ks->advo);
    ks->rowid = calloc(n + 1, sizeof *ks->rowid);
    if (!ks->advo || !ks->rowid)
        return -1;
    ks->nadvo = n; /* before the strdups: ksync_free frees what got copied */
    size_t i;
    json_t *e;
    json_array_foreach(ks->advo_list, i, e)
    {
        ks->advo[i] =
            (struct komm_advo){.tlf = jstr(e, "tlf"),
                               .kz = (int)json_integer_value(json_object_get(e, "kommKz")),
                               .bemerkung = jstr(e, "bemerkung"),
                               .id = json_integer_value(json_object_get(e, "id"))};
        const char *r = jstr(e, "rowId");
        if (r && !(ks->rowid[i] = strdup(r)))
            return -1;
    }
    return 0;
}

static const char *const base_class[] = {[KOMM_PHONE] = "phone", [KOMM_EMAIL] = "email"};

/* The baseline's entries; one that is not {"id":int,"kz":int,"value":str,"espo":"phone"|
 * "email"} is left out (its Advoware entry then counts as new: nothing is deleted for it). */
static int read_base(struct ksync *ks, const json_t *komm)
{
    if (!json_is_array(komm))
        return 0;
    ks->base_komm = json_incref((json_t *)komm);
    ks->base = calloc(json_array_size(komm) + 1, sizeof *ks->base);
    if (!ks->base)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(komm, i, e)
    {
        const char *espo = jstr(e, "espo"), *value = jstr(e, "value");
        json_t *id = json_object_get(e, "id"), *kz = json_object_get(e, "kz");
        if (!espo || !value || !json_is_integer(id) || !json_is_integer(kz))
            continue;
        enum komm_class cls = strcmp(espo, "email") == 0 ? KOMM_EMAIL : KOMM_PHONE;
        if (strcmp(espo, base_class[cls]) != 0 ||
            komm_kz_class((int)json_integer_value(kz)) != (int)cls)
            continue;
        ks->base[ks->nbase++] = (struct komm_base){.id = json_integer_value(id),
                                                   .kz = (int)json_integer_value(kz),
                                                   .value = value,
                                                   .cls = cls};
    }
    return 0;
}

static int add_base(json_t *out, long long id, int kz, const char *value);

/* Without a stored baseline: the entries whose markers say both systems held a value
 * (ksync_prior). NULL when out of memory. */
static json_t *markers_prior(const struct ksync *ks)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(ks->advo_list, i, e)
    {
        struct marker m;
        if (!out || marker_parse(jstr(e, "bemerkung"), &m) != 0) {
            json_decref(out);
            return NULL;
        }
        int rc = m.kind == MARKER_VALUE && m.value && *m.value
                     ? add_base(out, json_integer_value(json_object_get(e, "id")), m.kz, m.value)
                     : 0;
        marker_free(&m);
        if (rc != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* kommunikationHash of the rowIds as they are now (the GET's, PUT answers, POSTed entries). */
static int current_hash(const struct ksync *ks, char out[17])
{
    const char **all = malloc((ks->nadvo + ks->nnew + 1) * sizeof *all);
    if (!all)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < ks->nadvo; i++)
        all[n++] = ks->rowid[i] ? ks->rowid[i] : "";
    for (size_t i = 0; i < ks->nnew; i++)
        all[n++] = ks->new_rowids[i];
    int rc = komm_hash(all, n, out);
    free(all);
    return rc;
}

/* Copies the phone type list (the plan's actions point into it). */
static int copy_types(struct ksync *ks, const struct ksync_in *in)
{
    size_t n = in->phone_types ? in->nphone_types : 0;
    ks->types = calloc(n + 1, sizeof *ks->types);
    if (!ks->types)
        return -1;
    for (; ks->ntypes < n; ks->ntypes++) {
        const char *t = in->phone_types[ks->ntypes];
        if (!(ks->types[ks->ntypes] = strdup(t ? t : "")))
            return -1;
    }
    if (in->default_type && !(ks->default_type = strdup(in->default_type)))
        return -1;
    return 0;
}

struct ksync *ksync_new(const struct ksync_in *in)
{
    struct ksync *ks = calloc(1, sizeof *ks);
    if (!ks)
        return NULL;
    ks->entity = in->entity;
    ks->advo_list = in->advo_list;
    ks->stored_hash = jstr(in->entity, SF_KOMMUNIKATION_HASH);
    if (ks->stored_hash && !*ks->stored_hash)
        ks->stored_hash = NULL;
    char hash[17];
    if (copy_types(ks, in) != 0 || read_espo(ks) != 0 || read_advo(ks) != 0 ||
        read_base(ks, in->base_komm) != 0 || current_hash(ks, hash) != 0 ||
        (!ks->base_komm && !in->create && json_is_array(in->advo_list) &&
         !(ks->prior = markers_prior(ks)))) {
        ksync_free(ks);
        return NULL;
    }
    ks->in = (struct komm_in){
        .espo = ks->espo,
        .nespo = ks->nespo,
        .advo = ks->advo,
        .nadvo = ks->nadvo,
        .initial = in->create || !ks->stored_hash,
        .espo_changed = in->espo_changed,
        .advo_changed = !ks->stored_hash || strcmp(hash, ks->stored_hash) != 0,
        .dir = in->dir,
        .phone_types = (const char *const *)ks->types,
        .nphone_types = ks->ntypes,
        .default_type = ks->default_type,
        .base = ks->base,
        .nbase = ks->nbase,
        .has_base = ks->base_komm != NULL && !in->create,
    };
    /* An Advoware answer without a kommunikation list (missing or not an array) says nothing
     * about the entries: the Kommunikation part is skipped, nothing is deleted or added
     * (issue 13; a create has no entries yet by definition). */
    ks->planned = (in->create || json_is_array(in->advo_list)) && komm_needs_plan(&ks->in);
    if (ks->planned && komm_plan_make(&ks->in, &ks->plan) != 0) {
        ksync_free(ks);
        return NULL;
    }
    ks->done = calloc(ks->plan.n + 1, sizeof *ks->done);
    ks->status = calloc(ks->plan.n + 1, sizeof *ks->status);
    ks->new_rowids = calloc(ks->plan.n + 1, sizeof *ks->new_rowids);
    ks->new_id = calloc(ks->plan.n + 1, sizeof *ks->new_id);
    if (!ks->done || !ks->status || !ks->new_rowids || !ks->new_id) {
        ksync_free(ks);
        return NULL;
    }
    ks->all_ok = true;
    return ks;
}

void ksync_free(struct ksync *ks)
{
    if (!ks)
        return;
    komm_plan_free(&ks->plan);
    for (size_t i = 0; ks->rowid && i < ks->nadvo; i++)
        free(ks->rowid[i]);
    for (size_t i = 0; i < ks->nnew; i++)
        free(ks->new_rowids[i]);
    free(ks->rowid);
    free(ks->new_rowids);
    free(ks->espo);
    free(ks->espo_index);
    free(ks->advo);
    free(ks->done);
    free(ks->status);
    free(ks->new_id);
    free(ks->base);
    json_decref(ks->base_komm);
    json_decref(ks->prior);
    for (size_t i = 0; ks->types && i < ks->ntypes; i++)
        free(ks->types[i]);
    free(ks->types);
    free(ks->default_type);
    free(ks);
}

bool ksync_writes(const struct ksync *ks)
{
    for (size_t k = 0; ks && ks->planned && k < ks->plan.n; k++)
        if (ks->plan.a[k].op == KOP_ADVO_POST || ks->plan.a[k].op == KOP_ADVO_PUT)
            return true;
    return false;
}

bool ksync_planned(const struct ksync *ks)
{
    return ks->planned;
}

const struct komm_in *ksync_input(const struct ksync *ks)
{
    return &ks->in;
}

const struct komm_plan *ksync_plan(const struct ksync *ks)
{
    return &ks->plan;
}

int ksync_validate(const struct ksync *ks, char *msg, size_t msglen)
{
    return komm_plan_validate(&ks->plan, msg, msglen);
}

/* Whether an HTTP status of a failed call is worth a retry (everything but a client error). */
static bool transient_status(long status)
{
    return status == 0 || status >= 500 || status == 401 || status == 403 || status == 404 ||
           status == 408 || status == 409 || status == 429;
}

/* Appends to msg (truncating). */
static void append(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *msg, size_t msglen, const char *fmt, ...)
{
    size_t len = strlen(msg);
    if (len + 1 >= msglen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + len, msglen - len, fmt, ap);
    va_end(ap);
}

static bool is_call(const struct komm_action *a)
{
    return a->op == KOP_ADVO_POST || a->op == KOP_ADVO_PUT;
}

/* "Var1: 2 succeeded, Var5: 1 failed (503)" (+ ", 3 not tried" after a call without answer). */
static void report(const struct ksync *ks, char *msg, size_t msglen)
{
    size_t untried = 0;
    msg[0] = '\0';
    for (int v = KVAR_1; v < KVAR_N; v++) {
        size_t ok = 0, failed = 0;
        char statuses[64] = "";
        for (size_t k = 0; k < ks->plan.n; k++) {
            const struct komm_action *a = &ks->plan.a[k];
            if ((int)a->var != v || !is_call(a))
                continue;
            ok += ks->done[k] == DONE_OK;
            untried += ks->done[k] == NOT_RUN;
            if (ks->done[k] != DONE_FAILED)
                continue;
            failed++;
            char one[16] = "no answer";
            if (ks->status[k])
                snprintf(one, sizeof one, "%ld", ks->status[k]);
            if (!strstr(statuses, one))
                append(statuses, sizeof statuses, "%s%s", *statuses ? ", " : "", one);
        }
        if (!ok && !failed)
            continue;
        append(msg, msglen, "%s%s: ", *msg ? ", " : "", komm_var_name((enum komm_var)v));
        if (ok)
            append(msg, msglen, "%zu succeeded%s", ok, failed ? ", " : "");
        if (failed)
            append(msg, msglen, "%zu failed (%s)", failed, statuses);
    }
    if (untried)
        append(msg, msglen, "%s%zu not tried", *msg ? ", " : "", untried);
}

int ksync_run(struct ksync *ks, struct advo *a, long long betnr, bool *transient, char *msg,
              size_t msglen)
{
    bool stop = false;
    *transient = false;
    for (size_t k = 0; k < ks->plan.n && !stop; k++) {
        const struct komm_action *act = &ks->plan.a[k];
        if (!is_call(act))
            continue;
        json_t *body = json_pack("{s:s,s:s}", "tlf", act->tlf, "bemerkung", act->bemerkung);
        if (act->online >= 0)
            json_object_set_new(body, "online", json_boolean(act->online));
        json_t *out = NULL;
        long status = 0;
        char err[256];
        int rc;
        if (act->op == KOP_ADVO_POST) {
            json_object_set_new(body, "kommKz", json_integer(act->kz));
            rc = advo_post_kommunikation(a, betnr, body, &status, &out, err, sizeof err);
        } else {
            json_int_t id =
                json_integer_value(json_object_get(json_array_get(ks->advo_list, act->advo), "id"));
            rc = advo_put_kommunikation(a, betnr, id, body, &status, &out, err, sizeof err);
        }
        json_decref(body);
        const char *rowid = jstr(out, "rowId");
        if (rc == 0 && status >= 200 && status < 300) {
            ks->done[k] = DONE_OK;
            char *copy = rowid ? strdup(rowid) : NULL;
            if (act->op == KOP_ADVO_POST) {
                ks->new_id[k] = json_integer_value(json_object_get(out, "id"));
                if (copy)
                    ks->new_rowids[ks->nnew++] = copy;
            } else {
                free(ks->rowid[act->advo]);
                ks->rowid[act->advo] = copy;
            }
        } else {
            ks->done[k] = DONE_FAILED;
            ks->status[k] = rc == 0 ? status : 0;
            ks->all_ok = false;
            *transient |= transient_status(ks->status[k]);
            stop = rc != 0; /* no answer: Advoware is away, the rest would only wait too */
            if (rc != 0)
                log_warn("Advoware Kommunikation call got no answer", LOG_INT("betnr", betnr),
                         LOG_STR("var", komm_var_name(act->var)), LOG_STR("error", err));
            else
                log_warn("Advoware Kommunikation call failed", LOG_INT("betnr", betnr),
                         LOG_STR("var", komm_var_name(act->var)), LOG_INT("status", status));
        }
        json_decref(out);
    }
    for (size_t k = 0; k < ks->plan.n; k++) {
        if (ks->done[k] == NOT_RUN && is_call(&ks->plan.a[k])) {
            ks->all_ok = false;
            *transient = true;
        }
    }
    if (ks->all_ok)
        return 0;
    report(ks, msg, msglen);
    return -1;
}

/* Whether EspoCRM action k may be written: its Advoware half (if any) succeeded. */
static bool espo_ok(const struct ksync *ks, const struct komm_action *a)
{
    return a->after < 0 || ks->done[a->after] == DONE_OK;
}

/* The new array of class c, or NULL when nothing changes. */
static json_t *new_list(const struct ksync *ks, enum komm_class c)
{
    const json_t *old = json_object_get(ks->entity, list_key[c]);
    size_t n = json_array_size(old);
    bool changed = false;
    json_t *out = json_array();
    bool *drop = calloc(n + 1, sizeof *drop);
    const char **set = calloc(n + 1, sizeof *set);
    for (size_t k = 0; drop && set && k < ks->plan.n; k++) {
        const struct komm_action *a = &ks->plan.a[k];
        if (!espo_ok(ks, a))
            continue;
        if ((a->op == KOP_ESPO_SET || a->op == KOP_ESPO_REMOVE) && ks->espo[a->espo].cls == c) {
            size_t idx = ks->espo_index[a->espo];
            if (a->op == KOP_ESPO_REMOVE)
                drop[idx] = true;
            else
                set[idx] = a->value;
            changed = true;
        }
    }
    for (size_t i = 0; drop && set && i < n; i++) {
        if (drop[i])
            continue;
        json_t *item = json_deep_copy(json_array_get(old, i));
        if (set[i])
            json_object_set_new(item, value_key[c], json_string(set[i]));
        json_array_append_new(out, item);
    }
    for (size_t k = 0; drop && set && k < ks->plan.n; k++) {
        const struct komm_action *a = &ks->plan.a[k];
        if (a->op != KOP_ESPO_ADD || a->cls != c || !espo_ok(ks, a))
            continue;
        /* The plan made room by removals; one whose Advoware half failed did not happen, and
         * an 11th number would make EspoCRM refuse the whole write (recorded 03). The addition
         * waits for the next run, which plans it again. */
        if (c == KOMM_PHONE && json_array_size(out) >= KOMM_PHONE_MAX)
            continue;
        json_t *item = json_pack("{s:s,s:b}", value_key[c], a->value, "primary", 0);
        if (c == KOMM_PHONE) /* the planner names a type of the entity's list */
            json_object_set_new(
                item, "type",
                json_string(a->type ? a->type
                                    : komm_kz_espo_type(10, ks->in.phone_types, ks->in.nphone_types,
                                                        ks->in.default_type)));
        json_array_append_new(out, item);
        changed = true;
    }
    bool primary = false; /* primary flags stay; a list without one gets its first item */
    size_t i;
    json_t *item;
    json_array_foreach(out, i, item) primary |= json_is_true(json_object_get(item, "primary"));
    if (!primary && json_array_size(out) > 0)
        json_object_set_new(json_array_get(out, 0), "primary", json_true());
    free(drop);
    free(set);
    if (!changed) {
        json_decref(out);
        return NULL;
    }
    return out;
}

void ksync_fill_put(const struct ksync *ks, json_t *put)
{
    if (!ks->planned)
        return;
    for (int c = KOMM_PHONE; c <= KOMM_EMAIL; c++) {
        json_t *list = new_list(ks, (enum komm_class)c);
        if (list)
            json_object_set_new(put, list_key[c], list);
    }
    char hash[17];
    if (ks->all_ok && !ks->plan.deferred && current_hash(ks, hash) == 0 &&
        (!ks->stored_hash || strcmp(hash, ks->stored_hash) != 0))
        json_object_set_new(put, SF_KOMMUNIKATION_HASH, json_string(hash));
}

const char *ksync_note(const struct ksync *ks, size_t i)
{
    for (size_t k = 0; k < ks->plan.n; k++) {
        if (ks->plan.a[k].op == KOP_NOTIFY && i-- == 0)
            return ks->plan.a[k].value;
    }
    return NULL;
}

/* The baseline's entry of id as JSON; NULL when it has none. */
static json_t *base_entry(const struct ksync *ks, long long id)
{
    for (size_t b = 0; id > 0 && b < ks->nbase; b++) {
        if (ks->base[b].id == id)
            return json_pack("{s:I,s:i,s:s,s:s}", "id", (json_int_t)id, "kz", ks->base[b].kz,
                             "value", ks->base[b].value, "espo", base_class[ks->base[b].cls]);
    }
    size_t i;
    json_t *e;
    json_array_foreach(ks->prior, i, e) /* no stored baseline: what the markers say */
    {
        if (id > 0 && json_integer_value(json_object_get(e, "id")) == id)
            return json_deep_copy(e);
    }
    return NULL;
}

const json_t *ksync_prior(const struct ksync *ks)
{
    return ks->base_komm ? ks->base_komm : ks->prior;
}

json_t *ksync_tentative(const struct ksync *ks)
{
    if (!ks->planned)
        return NULL;
    json_t *out = json_array();
    for (size_t i = 0; out && i < ks->plan.nagreed; i++) {
        long long id = ks->advo[i].id;
        int put = -1;
        for (size_t k = 0; k < ks->plan.n; k++)
            if (ks->plan.a[k].op == KOP_ADVO_PUT && ks->plan.a[k].advo == i)
                put = (int)k;
        json_t *prev = base_entry(ks, id);
        if (ks->plan.agreed[i] && ks->plan.holds[i]) {
            int kz = ks->plan.agreed_kz[i];
            json_t *e =
                json_pack("{s:I,s:i,s:s,s:s}", "id", (json_int_t)id, "kz", kz, "value",
                          ks->plan.agreed[i], "espo", base_class[komm_kz_class(kz) == KOMM_EMAIL]);
            if (e && put >= 0) /* tentative until Advoware holds it */
                json_object_set(e, "prev", prev ? prev : json_null());
            json_array_append_new(out, e);
        } else if (put >= 0 && ks->plan.a[put].var == KVAR_2 && prev) {
            /* Var2: EspoCRM lost it already; the slot makes it gone on both sides. (Var3's slot
             * is not: EspoCRM drops the value only in the final PUT, the baseline keeps it.) */
            json_t *e = json_pack("{s:I,s:b}", "id", (json_int_t)id, "removed", 1);
            json_object_set(e, "prev", prev);
            json_array_append_new(out, e);
        }
        json_decref(prev);
    }
    for (size_t k = 0; out && k < ks->plan.n; k++) {
        const struct komm_action *a = &ks->plan.a[k];
        if (a->op == KOP_ADVO_POST)
            json_array_append_new(out,
                                  json_pack("{s:i,s:i,s:s,s:s,s:n}", "id", 0, "kz", a->kz, "value",
                                            a->value, "espo", base_class[a->cls], "prev"));
    }
    return out;
}

const char *ksync_conflict(const struct ksync *ks, size_t i)
{
    for (size_t k = 0; k < ks->plan.n; k++) {
        if (ks->plan.a[k].op == KOP_CONFLICT && i-- == 0)
            return ks->plan.a[k].value;
    }
    return NULL;
}

static int add_base(json_t *out, long long id, int kz, const char *value)
{
    enum komm_class cls = (enum komm_class)komm_kz_class(kz);
    if (id <= 0 || !value || komm_kz_class(kz) < 0)
        return 0; /* an entry whose id Advoware did not say counts as new next time */
    return json_array_append_new(out, json_pack("{s:I,s:i,s:s,s:s}", "id", (json_int_t)id, "kz", kz,
                                                "value", value, "espo", base_class[cls]));
}

json_t *ksync_baseline(const struct ksync *ks)
{
    if (!ks->planned)
        return ks->base_komm ? json_deep_copy(ks->base_komm) : NULL;
    if (!ks->all_ok || ks->plan.deferred)
        return NULL;
    json_t *out = json_array();
    int rc = out ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < ks->plan.nagreed; i++) {
        if (ks->plan.agreed[i])
            rc = add_base(
                out, json_integer_value(json_object_get(json_array_get(ks->advo_list, i), "id")),
                ks->plan.agreed_kz[i], ks->plan.agreed[i]);
    }
    for (size_t k = 0; rc == 0 && k < ks->plan.n; k++) {
        const struct komm_action *a = &ks->plan.a[k];
        if (a->op == KOP_ADVO_POST && ks->done[k] == DONE_OK)
            rc = add_base(out, ks->new_id[k], a->kz, a->value);
    }
    if (rc != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

const char *ksync_skipped(const struct ksync *ks, size_t i)
{
    for (size_t k = 0; k < ks->plan.n; k++) {
        if (ks->plan.a[k].op == KOP_SKIP && i-- == 0)
            return ks->plan.a[k].value;
    }
    return NULL;
}

void ksync_count(const struct ksync *ks, struct metric *m)
{
    for (size_t k = 0; k < ks->plan.n; k++) {
        if (is_call(&ks->plan.a[k]) && ks->done[k] != NOT_RUN)
            metric_inc(m, komm_var_name(ks->plan.a[k].var),
                       ks->done[k] == DONE_OK ? "ok" : "failed");
    }
}
