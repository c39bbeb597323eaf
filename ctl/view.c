/* view.c: vmhctl status rows and their text (see view.h). */
#include "view.h"

#include <stdlib.h>
#include <string.h>

#include "mapper.h"
#include "marker.h"

#define CELL_MAX 40 /* characters of a table cell; longer values are cut with "..." */

const char *view_field_action(enum merge_action a)
{
    switch (a) {
    case MERGE_IN_SYNC:
        return "in sync";
    case MERGE_PUSH:
        return "push → Advoware";
    case MERGE_PULL:
        return "pull → EspoCRM";
    case MERGE_CONFLICT:
        return "conflict: EspoCRM wins";
    }
    return "?";
}

static json_t *jstr_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *view_fields(const struct merge_result *m)
{
    json_t *rows = json_array();
    for (size_t i = 0; rows && i < MAP_NFIELDS; i++) {
        const struct merge_field *f = &m->f[i];
        json_array_append_new(
            rows, json_pack("{s:s,s:o,s:o,s:o,s:s}", "field", f->name, "espocrm",
                            jstr_or_null(f->espo), "advoware", jstr_or_null(f->advo), "baseline",
                            jstr_or_null(f->base), "action", view_field_action(f->action)));
    }
    return rows;
}

/* ---- Kommunikation ------------------------------------------------------------------------ */

static const char *var_action(enum komm_var v, bool revert)
{
    switch (v) {
    case KVAR_1:
        return "Var1: new in EspoCRM → Advoware";
    case KVAR_2:
        return "Var2: deleted in EspoCRM → emptied in Advoware (kept as a slot)";
    case KVAR_3:
        return "Var3: deleted in Advoware → removed from EspoCRM";
    case KVAR_4:
        return "Var4: new in Advoware → EspoCRM";
    case KVAR_5:
        return "Var5: changed in EspoCRM → Advoware";
    case KVAR_6:
        return revert ? "Var6: changed in Advoware, set back (EspoCRM wins)"
                      : "Var6: changed in Advoware → EspoCRM";
    case KVAR_MATCH:
        return "Match: same value, marker written";
    default:
        return "?";
    }
}

/* What the plan does about one row. */
struct row_plan {
    enum komm_var var; /* KVAR_N: none */
    bool revert, skip, conflict, notify;
};

static void note(struct row_plan *r, const struct komm_action *a)
{
    switch (a->op) {
    case KOP_SKIP:
        r->skip = true;
        return;
    case KOP_CONFLICT:
        r->conflict = true;
        return;
    case KOP_NOTIFY:
        r->notify = true;
        return;
    default:
        break;
    }
    if (r->var == KVAR_N)
        r->var = a->var;
    if (a->op == KOP_ADVO_PUT && a->var == KVAR_6 && a->from_espo)
        r->revert = true;
}

static json_t *row(const char *entry, const char *espo, const char *advo, const char *base,
                   const struct row_plan *r, const char *idle)
{
    char action[200];
    const char *var = NULL;
    if (r->conflict) {
        var = "conflict";
        snprintf(action, sizeof action, "conflict: EspoCRM wins%s%s%s",
                 r->var != KVAR_N ? " (" : "", r->var != KVAR_N ? komm_var_name(r->var) : "",
                 r->var != KVAR_N ? ")" : "");
    } else if (r->var != KVAR_N) {
        var = komm_var_name(r->var);
        snprintf(action, sizeof action, "%s", var_action(r->var, r->revert));
    } else if (r->skip) {
        var = "skip";
        snprintf(action, sizeof action, "skip: EspoCRM cannot take it (the user is told)");
    } else if (r->notify) {
        snprintf(action, sizeof action, "in sync; type changed in EspoCRM: change it in Advoware");
    } else {
        snprintf(action, sizeof action, "%s", idle);
    }
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:s}", "entry", entry, "espocrm", jstr_or_null(espo),
                     "advoware", jstr_or_null(advo), "baseline", jstr_or_null(base), "var",
                     jstr_or_null(var), "action", action);
}

static bool blank(const char *s)
{
    while (s && (*s == ' ' || *s == '\t'))
        s++;
    return !s || !*s;
}

/* The EspoCRM item entry i holds: the plan's pairing, a Var1 slot fill, or (nothing planned)
 * the first item of an equal value not shown yet. -1 if none. */
static int espo_of(const struct komm_in *in, const struct komm_plan *plan, bool planned, size_t i,
                   enum komm_class cls, const bool *shown)
{
    if (planned) {
        if (plan->paired && i < plan->nagreed && plan->paired[i] >= 0)
            return plan->paired[i];
        for (size_t k = 0; k < plan->n; k++) {
            const struct komm_action *a = &plan->a[k];
            if (a->op == KOP_ADVO_PUT && a->var == KVAR_1 && a->advo == i && a->espo < in->nespo)
                return (int)a->espo;
        }
        return -1;
    }
    for (size_t j = 0; !blank(in->advo[i].tlf) && j < in->nespo; j++) {
        if (!shown[j] && in->espo[j].cls == cls &&
            komm_value_eq(in->espo[j].value, in->advo[i].tlf, cls))
            return (int)j;
    }
    return -1;
}

/* The baseline's value of entry i: by id when the party has a baseline, else its marker's. */
static const char *base_of(const struct komm_in *in, size_t i, const struct marker *m)
{
    if (!in->has_base)
        return m->kind == MARKER_VALUE ? m->value : NULL;
    for (size_t b = 0; in->advo[i].id > 0 && b < in->nbase; b++) {
        if (in->base[b].id == in->advo[i].id)
            return in->base[b].value;
    }
    return NULL;
}

static int entry_kz(const struct komm_in *in, size_t i, const struct marker *m)
{
    const struct komm_advo *a = &in->advo[i];
    if (m->kind != MARKER_NONE)
        return m->kz;
    if (komm_kz_name(a->kz))
        return a->kz;
    for (size_t b = 0; in->has_base && a->id > 0 && b < in->nbase; b++) {
        if (in->base[b].id == a->id && komm_kz_name(in->base[b].kz))
            return in->base[b].kz;
    }
    return komm_kz_guess(a->tlf);
}

json_t *view_komm(const struct komm_in *in, const struct komm_plan *plan, bool planned)
{
    json_t *rows = json_array();
    bool *shown = calloc(in->nespo + 1, sizeof *shown);
    if (!rows || !shown) {
        free(shown);
        json_decref(rows);
        return NULL;
    }
    for (size_t i = 0; i < in->nadvo; i++) {
        struct marker m;
        if (marker_parse(in->advo[i].bemerkung, &m) != 0)
            continue;
        int kz = entry_kz(in, i, &m);
        enum komm_class cls = komm_kz_class(kz) == KOMM_EMAIL ? KOMM_EMAIL : KOMM_PHONE;
        int j = espo_of(in, plan, planned, i, cls, shown);
        if (j >= 0)
            shown[j] = true;
        struct row_plan r = {.var = KVAR_N};
        for (size_t k = 0; planned && k < plan->n; k++) {
            const struct komm_action *a = &plan->a[k];
            bool on_entry = (a->op == KOP_ADVO_PUT || a->op == KOP_ESPO_ADD || a->op == KOP_SKIP ||
                             a->op == KOP_NOTIFY || a->op == KOP_CONFLICT) &&
                            a->advo == i;
            bool on_item = (a->op == KOP_ESPO_SET || a->op == KOP_ESPO_REMOVE) && j >= 0 &&
                           a->espo == (size_t)j;
            if (on_entry || on_item)
                note(&r, a);
        }
        char entry[64];
        snprintf(entry, sizeof entry, "%s #%lld", komm_kz_name(kz) ? komm_kz_name(kz) : "?",
                 in->advo[i].id);
        const char *tlf = blank(in->advo[i].tlf) ? NULL : in->advo[i].tlf;
        const char *idle = j >= 0 ? "in sync"
                           : !tlf ? (m.kind == MARKER_SLOT ? "free slot" : "empty entry")
                                  : "Advoware only (not for EspoCRM)";
        json_array_append_new(
            rows, row(entry, j >= 0 ? in->espo[j].value : NULL, tlf, base_of(in, i, &m), &r, idle));
        marker_free(&m);
    }
    for (size_t j = 0; j < in->nespo; j++) {
        if (shown[j])
            continue;
        struct row_plan r = {.var = KVAR_N};
        for (size_t k = 0; planned && k < plan->n; k++) {
            const struct komm_action *a = &plan->a[k];
            if (a->espo == j &&
                (a->op == KOP_ADVO_POST || a->op == KOP_ESPO_SET || a->op == KOP_ESPO_REMOVE))
                note(&r, a);
        }
        char entry[64];
        snprintf(entry, sizeof entry, "%s%s%s", in->espo[j].cls == KOMM_EMAIL ? "e-mail" : "phone",
                 in->espo[j].type ? " " : "", in->espo[j].type ? in->espo[j].type : "");
        json_array_append_new(rows, row(entry, in->espo[j].value, NULL, NULL, &r,
                                        planned ? "EspoCRM only" : "in sync"));
    }
    free(shown);
    return rows;
}

/* ---- text --------------------------------------------------------------------------------- */

/* s for the terminal: control characters as '?', at most max characters (cut with "..."). */
static void clean(const char *s, char *buf, size_t len, size_t max)
{
    size_t n = 0, chars = 0;
    bool cut = map_utf8_len(s) > max;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 4 < len; p++) {
        bool start = (*p & 0xc0) != 0x80;
        if (cut && start && chars == max - 3) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        chars += start;
        buf[n++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    }
    buf[n] = '\0';
}

static void cell(const char *s, char *buf, size_t len)
{
    clean(s, buf, len, CELL_MAX);
}

static const char *text_of(const json_t *v, char *num, size_t len)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(num, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return num;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "yes" : "no";
    return "-";
}

void view_table(FILE *out, const json_t *rows, const char *const *keys, const char *const *headers,
                size_t ncols)
{
    size_t width[8] = {0};
    char buf[256], num[32];
    if (ncols > 8)
        ncols = 8;
    for (size_t c = 0; c < ncols; c++)
        width[c] = map_utf8_len(headers[c]);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        for (size_t c = 0; c < ncols; c++) {
            cell(text_of(json_object_get(r, keys[c]), num, sizeof num), buf, sizeof buf);
            size_t w = map_utf8_len(buf);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (size_t c = 0; c < ncols; c++)
        fprintf(out, "  %s%*s", headers[c],
                c + 1 < ncols ? (int)(width[c] - map_utf8_len(headers[c])) : 0, "");
    fputc('\n', out);
    json_array_foreach(rows, i, r)
    {
        for (size_t c = 0; c < ncols; c++) {
            cell(text_of(json_object_get(r, keys[c]), num, sizeof num), buf, sizeof buf);
            fprintf(out, "  %s%*s", buf, c + 1 < ncols ? (int)(width[c] - map_utf8_len(buf)) : 0,
                    "");
        }
        fputc('\n', out);
    }
}

/* "key value" lines of an object's members, in order. */
static void members(FILE *out, const char *title, const json_t *o)
{
    char buf[1024], num[32];
    const char *k;
    json_t *v;
    if (!json_is_object(o))
        return;
    fprintf(out, "%s\n", title);
    json_object_foreach((json_t *)o, k, v)
    {
        clean(text_of(v, num, sizeof num), buf, sizeof buf, 300);
        fprintf(out, "  %-20s %s\n", k, buf);
    }
}

static const char *sget(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : dflt;
}

void view_status_text(FILE *out, const json_t *doc)
{
    char buf[1024], num[32];
    cell(sget(doc, "id", "?"), buf, sizeof buf);
    fprintf(out, "Beteiligter %s", buf);
    if (json_is_string(json_object_get(doc, "name"))) {
        cell(sget(doc, "name", ""), buf, sizeof buf);
        fprintf(out, " \"%s\"", buf);
    }
    fputc('\n', out);
    members(out, "EspoCRM", json_object_get(doc, "espocrm"));
    const json_t *lock = json_object_get(doc, "lock");
    if (json_is_true(json_object_get(lock, "held"))) {
        cell(sget(lock, "holder", "?"), buf, sizeof buf);
        fprintf(out, "Lock: held by %s, %s ms left\n", buf,
                text_of(json_object_get(lock, "ttlMs"), num, sizeof num));
    } else if (lock) {
        fprintf(out, "Lock: free\n");
    }
    const json_t *link = json_object_get(doc, "link");
    if (json_is_object(link))
        members(out, "Link (Redis)", link);
    else
        fprintf(out, "Link (Redis): none\n");
    const json_t *mark = json_object_get(doc, "createMark");
    if (json_is_string(mark))
        fprintf(out, "Create mark: since %s UTC (an Advoware POST whose outcome is unknown)\n",
                json_string_value(mark));
    if (json_is_true(json_object_get(doc, "espoPending")))
        fprintf(out, "EspoCRM changes pending: yes (a failed run could not push them)\n");
    members(out, "Advoware", json_object_get(doc, "advoware"));
    members(out, "Baseline", json_object_get(doc, "baseline"));
    const json_t *fields = json_object_get(doc, "fields");
    if (json_array_size(fields)) {
        static const char *const keys[] = {"field", "espocrm", "advoware", "baseline", "action"};
        static const char *const heads[] = {"field", "EspoCRM", "Advoware", "baseline", "next run"};
        fprintf(out, "Stammdaten (case %s)\n", sget(doc, "case", "-"));
        view_table(out, fields, keys, heads, 5);
    }
    const json_t *komm = json_object_get(doc, "kommunikation");
    if (json_is_object(komm)) {
        static const char *const keys[] = {"entry", "espocrm", "advoware", "baseline", "action"};
        static const char *const heads[] = {"entry", "EspoCRM", "Advoware", "baseline", "next run"};
        const json_t *rows = json_object_get(komm, "entries");
        fprintf(out, "Kommunikation (%s)\n",
                json_is_true(json_object_get(komm, "planned"))
                    ? "planned"
                    : "not planned: nothing changed since the last run");
        if (json_array_size(rows))
            view_table(out, rows, keys, heads, 5);
        else
            fprintf(out, "  (no entries)\n");
    }
    clean(sget(doc, "nextRun", "-"), buf, sizeof buf, 600);
    fprintf(out, "Next run: %s\n", buf);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "problems"), i, p)
    {
        clean(json_string_value(p) ? json_string_value(p) : "", buf, sizeof buf, 600);
        fprintf(out, "Problem: %s\n", buf);
    }
}
