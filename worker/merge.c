/* merge.c: the three-way merge of the Stammdaten (see merge.h, SPEC §5.2). */
#include "merge.h"

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
