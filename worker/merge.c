/* merge.c: the three-way merge of the Stammdaten (see merge.h, SPEC §5.2). */
#include "merge.h"

#include "komm.h"
#include "synctime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A field's value in EspoCRM's form: a non-empty string, or NULL. */
static const char *text(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : NULL;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    *oom |= d == NULL;
    return d;
}

/* The decision for one field whose values E and A differ. */
static enum merge_action decide(const char *e, const char *a, const char *b, bool has_base,
                                const struct merge_fallback *fb)
{
    if (has_base) {
        bool e_changed = !same(e, b), a_changed = !same(a, b);
        if (e_changed && a_changed)
            return MERGE_CONFLICT;
        return a_changed ? MERGE_PULL : MERGE_PUSH;
    }
    /* Without a baseline (SPEC §5.2 fallback): whole-side changes decide; neither side
     * changed but the values differ (a party the old system left unequal): EspoCRM, the
     * master, is pushed. */
    if (fb && fb->espo_changed && fb->advo_changed)
        return MERGE_CONFLICT;
    if (fb && fb->advo_changed)
        return MERGE_PULL;
    return MERGE_PUSH;
}

int merge_fields(const json_t *entity, const json_t *advo, const json_t *base_fields,
                 const struct merge_fallback *fb, struct merge_result *out)
{
    memset(out, 0, sizeof *out);
    json_t *a_espo = map_to_espo(advo); /* Advoware's values in EspoCRM's form */
    bool oom = a_espo == NULL;
    bool has_base = json_is_object(base_fields);
    out->had_baseline = has_base;
    for (size_t i = 0; !oom && i < MAP_NFIELDS; i++) {
        struct merge_field *f = &out->f[i];
        f->name = map_fields[i].espo;
        const char *e = text(entity, f->name), *b = has_base ? text(base_fields, f->name) : NULL;
        /* map_to_espo leaves name out when Advoware has none: it is never cleared in EspoCRM,
         * so an empty Advoware name counts as EspoCRM's */
        const char *a = json_object_get(a_espo, f->name) ? text(a_espo, f->name) : e;
        f->espo = dup_or_null(e, &oom);
        f->advo = dup_or_null(a, &oom);
        f->base = dup_or_null(b, &oom);
        f->action = same(e, a) ? MERGE_IN_SYNC : decide(e, a, b, has_base, fb);
        out->npush += f->action == MERGE_PUSH;
        out->npull += f->action == MERGE_PULL;
        out->nconflict += f->action == MERGE_CONFLICT;
    }
    json_decref(a_espo);
    if (oom) {
        merge_result_free(out);
        return -1;
    }
    out->mcase = out->nconflict             ? MCASE_CONFLICT
                 : out->npush && out->npull ? MCASE_MERGED
                 : out->npush               ? MCASE_ESPOCRM_NEWER
                 : out->npull               ? MCASE_ADVOWARE_NEWER
                                            : MCASE_NO_CHANGE;
    return 0;
}

void merge_result_free(struct merge_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < MAP_NFIELDS; i++) {
        free(r->f[i].espo);
        free(r->f[i].advo);
        free(r->f[i].base);
        r->f[i].espo = r->f[i].advo = r->f[i].base = NULL;
    }
}

const char *merge_case_name(enum merge_case c)
{
    static const char *const names[] = {"no_change", "espocrm_newer", "advoware_newer", "merged",
                                        "conflict"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "unknown";
}

const char *merge_action_name(enum merge_action a)
{
    static const char *const names[] = {"in sync", "push", "pull", "conflict"};
    return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "unknown";
}

json_t *merge_pull_attrs(const struct merge_result *r)
{
    json_t *out = json_object();
    for (size_t i = 0; out && i < MAP_NFIELDS; i++) {
        const struct merge_field *f = &r->f[i];
        if (f->action != MERGE_PULL)
            continue;
        if (!f->advo && strcmp(f->name, "name") == 0)
            continue; /* required in EspoCRM: never cleared */
        if (json_object_set_new(out, f->name, f->advo ? json_string(f->advo) : json_null()) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

bool merge_needs_push(const struct merge_result *r)
{
    return r->npush + r->nconflict > 0;
}

json_t *merge_fields_of(const json_t *entity)
{
    json_t *out = json_object();
    for (size_t i = 0; out && i < MAP_NFIELDS; i++) {
        const char *v = text(entity, map_fields[i].espo);
        if (json_object_set_new(out, map_fields[i].espo, v ? json_string(v) : json_null()) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *merge_agreed_fields(const struct merge_result *r)
{
    json_t *out = json_object();
    for (size_t i = 0; out && i < MAP_NFIELDS; i++) {
        const struct merge_field *f = &r->f[i];
        const char *v = f->action == MERGE_PULL ? f->advo : f->espo;
        if (json_object_set_new(out, f->name, v ? json_string(v) : json_null()) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *merge_advo_body(const struct merge_result *r)
{
    json_t *merged = merge_agreed_fields(r);
    json_t *body = merged ? map_to_advo(merged) : NULL;
    json_decref(merged);
    return body;
}

void merge_conflict_text(const struct merge_result *r, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    if (!r->nconflict)
        return;
    size_t n = (size_t)snprintf(buf, len, "Konflikt gelöst: EspoCRM-Daten wurden übernommen (");
    const char *sep = "";
    for (size_t i = 0; i < MAP_NFIELDS && n < len; i++) {
        const struct merge_field *f = &r->f[i];
        if (f->action != MERGE_CONFLICT)
            continue;
        n += (size_t)snprintf(buf + n, len - n, "%s%s: Advoware hatte '%s'", sep, f->name,
                              f->advo ? f->advo : "");
        sep = "; ";
    }
    if (n < len)
        snprintf(buf + n, len - n, ")");
}

json_t *merge_baseline_parse(const char *text)
{
    if (!text || !*text)
        return NULL;
    json_t *b = json_loads(text, 0, NULL);
    if (!json_is_object(b) || json_integer_value(json_object_get(b, "v")) != 1 ||
        !json_is_object(json_object_get(b, "fields"))) {
        json_decref(b);
        return NULL;
    }
    return b;
}

char *merge_baseline_format(const json_t *fields, const json_t *komm, const char *rowid,
                            const char *komm_hash)
{
    json_t *b = json_pack("{s:i,s:O,s:O*,s:s?,s:s?}", "v", 1, "fields", fields, "komm", komm,
                          "rowId", rowid, "kommHash", komm_hash);
    char *text = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(b);
    return text;
}

/* ---- the write-ahead baseline -------------------------------------------------------------- */

json_t *merge_pending_make(const json_t *base, const json_t *fields, const json_t *komm)
{
    json_t *old = json_object_get(base, "fields"), *prev = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v)
    {
        json_t *was = json_object_get(old, k);
        if (!json_equal(v, was ? was : json_null()))
            json_object_set_new(prev, k, was ? json_incref(was) : json_null());
    }
    /* entries of base no tentative entry is about: they stand */
    json_t *entries = json_array();
    size_t i, j;
    json_t *e, *t;
    json_array_foreach(json_object_get(base, "komm"), i, e)
    {
        bool touched = false;
        json_array_foreach((json_t *)komm, j, t)
        {
            touched |= json_integer_value(json_object_get(t, "id")) ==
                           json_integer_value(json_object_get(e, "id")) &&
                       json_integer_value(json_object_get(t, "id")) > 0;
        }
        if (!touched)
            json_array_append(entries, e);
    }
    json_array_foreach((json_t *)komm, j, t) json_array_append(entries, t);
    json_t *p =
        json_pack("{s:i,s:O,s:o,s:o}", "v", 1, "fields", fields, "prev", prev, "komm", entries);
    if (p && json_object_get(base, "rowId"))
        json_object_set(p, "rowId", json_object_get(base, "rowId"));
    if (p && !json_is_array(json_object_get(base, "komm")))
        json_object_del(p, "komm"); /* entries unknown before: the markers decide next time */
    return p;
}

/* The entry of advo's kommunikation with id; NULL if none. */
static const json_t *advo_entry(const json_t *advo, json_int_t id)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(advo, "kommunikation"), i, e)
    {
        if (json_integer_value(json_object_get(e, "id")) == id)
            return e;
    }
    return NULL;
}

/* Whether Advoware's entry holds value (EspoCRM's form) as its class compares. */
static bool entry_holds(const json_t *a, const char *value, const char *espo)
{
    enum komm_class cls = espo && strcmp(espo, "email") == 0 ? KOMM_EMAIL : KOMM_PHONE;
    return a && komm_value_eq(json_string_value(json_object_get(a, "tlf")), value, cls);
}

/* Whether id is already an entry of list. */
static bool listed(const json_t *list, json_int_t id)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (json_integer_value(json_object_get(e, "id")) == id)
            return true;
    }
    return false;
}

/* A tentative entry t resolved against advo: into out, the entry that stands. */
static void resolve_entry(const json_t *t, const json_t *advo, json_t *out)
{
    json_int_t id = json_integer_value(json_object_get(t, "id"));
    const char *value = json_string_value(json_object_get(t, "value"));
    const char *espo = json_string_value(json_object_get(t, "espo"));
    json_t *prev = json_object_get(t, "prev");
    bool landed;
    if (json_is_true(json_object_get(t, "removed"))) {
        const json_t *a = advo_entry(advo, id);
        const char *tlf = json_string_value(json_object_get(a, "tlf"));
        landed = !a || !tlf || !*tlf;
        if (!landed && json_is_object(prev))
            json_array_append(out, prev);
        return;
    }
    if (id <= 0) { /* a POST: the entry nobody else is, holding its value */
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(advo, "kommunikation"), i, a)
        {
            json_int_t aid = json_integer_value(json_object_get(a, "id"));
            if (aid > 0 && !listed(out, aid) && entry_holds(a, value, espo)) {
                json_t *e = json_deep_copy(t);
                json_object_del(e, "prev");
                json_object_set_new(e, "id", json_integer(aid));
                json_array_append_new(out, e);
                return;
            }
        }
        return;
    }
    landed = entry_holds(advo_entry(advo, id), value, espo);
    if (landed) {
        json_t *e = json_deep_copy(t);
        json_object_del(e, "prev");
        json_array_append_new(out, e);
    } else if (json_is_object(prev)) {
        json_array_append(out, prev);
    }
}

json_t *merge_pending_resolve(const json_t *pending, const json_t *advo)
{
    json_t *fields = json_object_get(pending, "fields");
    if (!json_is_object(fields))
        return NULL;
    json_t *a_espo = map_to_espo(advo);
    json_t *out = json_pack("{s:i,s:O}", "v", 1, "fields", fields);
    if (!a_espo || !out) {
        json_decref(a_espo);
        json_decref(out);
        return NULL;
    }
    json_t *f = json_object_get(out, "fields");
    const char *k;
    json_t *prev;
    json_object_foreach(json_object_get(pending, "prev"), k, prev)
    {
        const char *want = text(fields, k);
        /* name: Advoware without one counts as EspoCRM's (merge_fields) */
        const char *has = json_object_get(a_espo, k) ? text(a_espo, k) : want;
        if (!same(want, has)) /* the write did not land: the value before stands */
            json_object_set(f, k, prev);
    }
    json_decref(a_espo);
    json_t *komm = json_object_get(pending, "komm");
    if (json_is_array(komm)) {
        json_t *list = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(komm, i, e)
        {
            if (json_object_get(e, "prev") || json_object_get(e, "removed"))
                resolve_entry(e, advo, list);
            else
                json_array_append(list, e);
        }
        json_object_set_new(out, "komm", list);
    }
    if (json_object_get(pending, "rowId"))
        json_object_set(out, "rowId", json_object_get(pending, "rowId"));
    return out;
}
