/* komm.c: the Kommunikation decisions of SPEC §5.4 (see komm.h).
 *
 * The planner follows the four steps of §5.4. Where the SPEC is silent or its literal order
 * would make duplicates, it does this (each case has a row in tests/unit/test_komm.c):
 * - Unmarked Advoware entries are paired with EspoCRM items of the same value before step 2
 *   hands unpaired EspoCRM items to orphaned markers (Var5); otherwise a value both sides hold
 *   could be written over one entry and then added again as Var4.
 * - That value pairing happens on every planned run, not only the initial one: a run that
 *   failed halfway (an entry created, its EspoCRM half not written) finishes without a second
 *   entry, and so does a value a user added on both sides.
 * - Var4 does not add a value EspoCRM already holds (a duplicate entry a user made in
 *   Advoware; Advoware cannot delete it, EspoCRM keeps one).
 * - A marker pairs with the EspoCRM item whose type fits its kommKz first (one number may be an
 *   Office phone and a Fax).
 * - An entry a user emptied in Advoware (marker kept, tlf "") is a deletion there: Var3, and the
 *   entry becomes a slot, rather than Var6 writing an empty value into EspoCRM.
 * - Under to_advoware, Var4 candidates wait and the plan says so (deferred), so that the caller
 *   keeps the old hash and the next run takes them over. */
#include "komm.h"

#include "marker.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the kommKz table ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    enum komm_class cls;
    const char *type;
} kz_table[KOMM_KZ_MAX + 1] = {
    [1] = {"TelGesch", KOMM_PHONE, "Office"},   [2] = {"FaxGesch", KOMM_PHONE, "Fax"},
    [3] = {"Mobil", KOMM_PHONE, "Mobile"},      [4] = {"MailGesch", KOMM_EMAIL, NULL},
    [5] = {"Internet", KOMM_EMAIL, NULL},       [6] = {"TelPrivat", KOMM_PHONE, "Home"},
    [7] = {"FaxPrivat", KOMM_PHONE, "Fax"},     [8] = {"MailPrivat", KOMM_EMAIL, NULL},
    [9] = {"AutoTelefon", KOMM_PHONE, "Other"}, [10] = {"Sonstige", KOMM_PHONE, "Other"},
    [11] = {"EPost", KOMM_EMAIL, NULL},         [12] = {"Bea", KOMM_EMAIL, NULL},
};

static bool kz_valid(int kz)
{
    return kz >= 1 && kz <= KOMM_KZ_MAX;
}

const char *komm_kz_name(int kz)
{
    return kz_valid(kz) ? kz_table[kz].name : NULL;
}

int komm_kz_class(int kz)
{
    return kz_valid(kz) ? (int)kz_table[kz].cls : -1;
}

const char *komm_kz_type(int kz)
{
    return kz_valid(kz) ? kz_table[kz].type : NULL;
}

int komm_kz_for(enum komm_class cls, const char *type)
{
    static const struct {
        const char *type;
        int kz;
    } phones[] = {{"Office", 1}, {"Fax", 2}, {"Mobile", 3}, {"Home", 6}, {"Other", 10}};
    if (cls == KOMM_EMAIL)
        return 4;
    for (size_t i = 0; type && i < sizeof phones / sizeof phones[0]; i++) {
        if (strcmp(type, phones[i].type) == 0)
            return phones[i].kz;
    }
    return 10;
}

bool komm_kz_fits(int kz, enum komm_class cls, const char *type)
{
    if (!kz_valid(kz) || kz_table[kz].cls != cls)
        return false;
    return cls == KOMM_EMAIL || !type || strcmp(kz_table[kz].type, type) == 0 ||
           (komm_kz_for(cls, type) == 10 && strcmp(kz_table[kz].type, "Other") == 0);
}

int komm_kz_guess(const char *value)
{
    const char *v = value ? value : "";
    while (isspace((unsigned char)*v))
        v++;
    if (strchr(v, '@'))
        return 4;
    if (strncasecmp(v, "http", 4) == 0 || strncasecmp(v, "www.", 4) == 0)
        return 5;
    return 1;
}

/* ---- values ------------------------------------------------------------------------------ */

static void trimmed(const char *s, const char **start, size_t *len)
{
    s = s ? s : "";
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    *start = s;
    *len = n;
}

bool komm_value_eq(const char *a, const char *b, enum komm_class cls)
{
    const char *pa, *pb;
    size_t la, lb;
    trimmed(a, &pa, &la);
    trimmed(b, &pb, &lb);
    if (la != lb)
        return false;
    return cls == KOMM_EMAIL ? strncasecmp(pa, pb, la) == 0 : memcmp(pa, pb, la) == 0;
}

char *komm_trim(const char *s)
{
    const char *p;
    size_t n;
    trimmed(s, &p, &n);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
    return out;
}

static bool empty(const char *s)
{
    const char *p;
    size_t n;
    trimmed(s, &p, &n);
    return n == 0;
}

int komm_check_value(enum komm_class cls, const char *value, char *msg, size_t msglen)
{
    const char *v;
    size_t n;
    trimmed(value, &v, &n);
    if (cls == KOMM_EMAIL) {
        /* local@domain.tld: one '@', no blanks or controls, a dot inside the domain. */
        const char *at = memchr(v, '@', n);
        const char *dot = at ? memchr(at + 1, '.', n - (size_t)(at + 1 - v)) : NULL;
        bool ok = n <= 254 && at && at > v && !memchr(at + 1, '@', n - (size_t)(at + 1 - v)) &&
                  dot && dot > at + 1 && v[n - 1] != '.';
        for (size_t i = 0; ok && i < n; i++)
            ok = !isspace((unsigned char)v[i]) && !iscntrl((unsigned char)v[i]);
        if (!ok) {
            util_err(msg, msglen, "emailAddress \"%.*s\": not an e-mail address",
                     (int)(n > 80 ? 80 : n), v);
            return -1;
        }
        return 0;
    }
    bool digit = false, ok = n > 0 && n <= 100;
    for (size_t i = 0; ok && i < n; i++) {
        digit |= isdigit((unsigned char)v[i]) != 0;
        ok = isdigit((unsigned char)v[i]) || strchr(" +-/().", v[i]);
    }
    if (!ok || !digit) {
        util_err(msg, msglen, "phoneNumber \"%.*s\": only digits, blanks and + - / ( ) . allowed",
                 (int)(n > 80 ? 80 : n), v);
        return -1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int komm_hash(const char **rowids, size_t n, char out[17])
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(rowids[i] ? rowids[i] : "");
    char *all = malloc(len + 1), *p = all;
    if (!all)
        return -1;
    qsort(rowids, n, sizeof *rowids, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(rowids[i] ? rowids[i] : "");
        memcpy(p, rowids[i] ? rowids[i] : "", l);
        p += l;
    }
    util_md5_hex(all, len, out, 16);
    free(all);
    return 0;
}

/* ---- the planner --------------------------------------------------------------------------- */

struct planner {
    const struct komm_in *in;
    struct komm_plan *plan;
    struct marker *m; /* per Advoware entry */
    int *advo_pair;   /* per Advoware entry: the EspoCRM item, -1 */
    int *espo_pair;   /* per EspoCRM item: the Advoware entry, -1 */
    bool *slot_used;  /* per Advoware entry: a slot taken by Var1 */
    bool oom;
};

bool komm_needs_plan(const struct komm_in *in)
{
    return in->initial || in->espo_changed || in->advo_changed;
}

static struct komm_action *push(struct planner *p, enum komm_op op, enum komm_var var)
{
    struct komm_plan *plan = p->plan;
    if (p->oom)
        return NULL;
    if (plan->n == plan->cap) {
        size_t cap = plan->cap ? plan->cap * 2 : 8;
        struct komm_action *a = realloc(plan->a, cap * sizeof *a);
        if (!a) {
            p->oom = true;
            return NULL;
        }
        plan->a = a;
        plan->cap = cap;
    }
    struct komm_action *a = &plan->a[plan->n++];
    memset(a, 0, sizeof *a);
    a->op = op;
    a->var = var;
    a->online = -1;
    a->after = -1;
    return a;
}

/* PUT Advoware entry i: tlf (trimmed copy) and the marker of (value, kz) or a slot (value NULL),
 * keeping the entry's user text. Returns the action's index, -1 when out of memory. */
static int put_entry(struct planner *p, enum komm_var var, size_t i, const char *tlf,
                     const char *value, int kz, int online, bool from_espo)
{
    struct komm_action *a = push(p, KOP_ADVO_PUT, var);
    if (!a)
        return -1;
    a->advo = i;
    a->online = online;
    a->from_espo = from_espo;
    a->cls = (enum komm_class)komm_kz_class(kz);
    char *v = value ? komm_trim(value) : NULL;
    a->tlf = komm_trim(tlf);
    a->bemerkung = marker_format(v, kz, p->m[i].user);
    if (!a->tlf || !a->bemerkung || (value && !v))
        p->oom = true;
    free(v);
    return p->oom ? -1 : (int)(a - p->plan->a);
}

static void espo_action(struct planner *p, enum komm_op op, enum komm_var var, size_t j,
                        const char *value, enum komm_class cls, const char *type, int after)
{
    struct komm_action *a = push(p, op, var);
    if (!a)
        return;
    a->espo = j;
    a->cls = cls;
    a->type = type;
    a->after = after;
    if (value && !(a->value = komm_trim(value)))
        p->oom = true;
}

static void pair(struct planner *p, size_t i, size_t j)
{
    p->advo_pair[i] = (int)j;
    p->espo_pair[j] = (int)i;
}

/* An unpaired EspoCRM item of class cls holding value, one whose type fits kz first (the same
 * number may be an Office phone and a Fax). -1 if none. */
static int find_value(const struct planner *p, const char *value, enum komm_class cls, int kz)
{
    int any = -1;
    for (size_t j = 0; j < p->in->nespo; j++) {
        const struct komm_espo *e = &p->in->espo[j];
        if (p->espo_pair[j] >= 0 || e->cls != cls || !komm_value_eq(e->value, value, cls))
            continue;
        if (komm_kz_fits(kz, e->cls, e->type))
            return (int)j;
        if (any < 0)
            any = (int)j;
    }
    return any;
}

/* Whether EspoCRM holds value (paired or not), or the plan already adds it. */
static bool espo_has(const struct planner *p, const char *value, enum komm_class cls)
{
    for (size_t j = 0; j < p->in->nespo; j++) {
        if (p->in->espo[j].cls == cls && komm_value_eq(p->in->espo[j].value, value, cls))
            return true;
    }
    for (size_t k = 0; k < p->plan->n; k++) {
        const struct komm_action *a = &p->plan->a[k];
        if (a->op == KOP_ESPO_ADD && a->cls == cls && komm_value_eq(a->value, value, cls))
            return true;
    }
    return false;
}

/* Step 1: entries whose marker value EspoCRM still holds. */
static void step_marker_pairs(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        const struct marker *m = &p->m[i];
        if (m->kind != MARKER_VALUE)
            continue;
        enum komm_class cls = (enum komm_class)komm_kz_class(m->kz);
        int j = find_value(p, m->value, cls, m->kz);
        if (j < 0)
            continue;
        pair(p, i, (size_t)j);
        const struct komm_espo *e = &in->espo[j];
        const char *tlf = in->advo[i].tlf;
        if (komm_value_eq(tlf, m->value, cls)) {
            if (!komm_kz_fits(m->kz, e->cls, e->type)) { /* kommKz is read-only after POST */
                struct komm_action *a = push(p, KOP_NOTIFY, KVAR_N);
                char text[512];
                snprintf(text, sizeof text,
                         "Typ-Änderung nicht möglich, bitte manuell in Advoware ändern: %.200s "
                         "ist in Advoware %s, in EspoCRM %s",
                         m->value, komm_kz_name(m->kz), e->type ? e->type : "E-Mail");
                if (a && !(a->value = strdup(text)))
                    p->oom = true;
            }
        } else if (in->dir == KOMM_TO_ADVOWARE) { /* Var6 reverted: EspoCRM wins */
            put_entry(p, KVAR_6, i, e->value, e->value, m->kz, -1, true);
        } else if (empty(tlf)) { /* emptied in Advoware: a deletion, the entry becomes a slot */
            int k = put_entry(p, KVAR_3, i, "", NULL, m->kz, 0, false);
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, (size_t)j, NULL, e->cls, NULL, k);
        } else { /* Var6: changed in Advoware */
            int k = put_entry(p, KVAR_6, i, tlf, tlf, m->kz, -1, false);
            espo_action(p, KOP_ESPO_SET, KVAR_6, (size_t)j, tlf, e->cls, NULL, k);
        }
    }
}

/* The kommKz of an unmarked entry: the GET's if Advoware ever fixes its bug, else a guess. */
static int unmarked_kz(const struct komm_advo *a)
{
    return kz_valid(a->kz) ? a->kz : komm_kz_guess(a->tlf);
}

/* Step 3, first half: unmarked entries holding a value an unpaired EspoCRM item has: pair,
 * write the marker only. */
static void step_value_pairs(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        const struct komm_advo *a = &in->advo[i];
        if (p->m[i].kind != MARKER_NONE || empty(a->tlf))
            continue;
        int kz = unmarked_kz(a);
        int j = find_value(p, a->tlf, (enum komm_class)komm_kz_class(kz), a->kz);
        if (j < 0)
            continue;
        pair(p, i, (size_t)j);
        const struct komm_espo *e = &in->espo[j];
        if (!kz_valid(a->kz)) /* GET said 0: EspoCRM's type is the better guess */
            kz = komm_kz_for(e->cls, e->type);
        put_entry(p, KVAR_MATCH, i, a->tlf, e->value, kz, -1, false);
    }
}

/* Step 2: markers whose value EspoCRM no longer holds → Var5 onto an unpaired EspoCRM item
 * that fits the entry's kommKz, else Var2 (an empty slot). */
static void step_orphans(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        const struct marker *m = &p->m[i];
        if (m->kind != MARKER_VALUE || p->advo_pair[i] >= 0)
            continue;
        int found = -1;
        for (size_t j = 0; j < in->nespo && found < 0; j++) {
            if (p->espo_pair[j] < 0 && komm_kz_fits(m->kz, in->espo[j].cls, in->espo[j].type))
                found = (int)j;
        }
        if (found >= 0) {
            pair(p, i, (size_t)found);
            const char *v = in->espo[found].value;
            put_entry(p, KVAR_5, i, v, v, m->kz, 1, true);
        } else {
            put_entry(p, KVAR_2, i, "", NULL, m->kz, 0, false);
        }
    }
}

/* Step 3, second half: unmarked entries nobody has → Var4 (both): into EspoCRM, marker back.
 * Under to_advoware they wait: the plan is marked deferred and the hash stays old, so the next
 * run (at the latest the cron's daily check) plans them; otherwise they would hide behind an
 * equal hash until something else changed. */
static void step_new_in_advoware(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        const struct komm_advo *a = &in->advo[i];
        if (p->m[i].kind != MARKER_NONE || p->advo_pair[i] >= 0 || empty(a->tlf))
            continue;
        int kz = unmarked_kz(a);
        enum komm_class cls = (enum komm_class)komm_kz_class(kz);
        if (espo_has(p, a->tlf, cls))
            continue;                      /* a second entry of a value EspoCRM has: left alone */
        if (in->dir == KOMM_TO_ADVOWARE) { /* EspoCRM wins this run; the next one takes it */
            p->plan->deferred = true;
            continue;
        }
        int k = put_entry(p, KVAR_4, i, a->tlf, a->tlf, kz, -1, false);
        espo_action(p, KOP_ESPO_ADD, KVAR_4, 0, a->tlf, cls, komm_kz_type(kz), k);
    }
}

/* Step 4: EspoCRM items still unpaired → Var3 (deleted in Advoware) or Var1 (new in EspoCRM:
 * into an empty slot that fits, else POST). */
static void step_new_in_espocrm(struct planner *p)
{
    const struct komm_in *in = p->in;
    bool deleted_in_advoware =
        !in->initial && in->advo_changed && !in->espo_changed && in->dir == KOMM_BOTH;
    for (size_t j = 0; j < in->nespo; j++) {
        const struct komm_espo *e = &in->espo[j];
        if (p->espo_pair[j] >= 0)
            continue;
        if (deleted_in_advoware) {
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, j, NULL, e->cls, NULL, -1);
            continue;
        }
        int slot = -1;
        for (size_t i = 0; i < in->nadvo && slot < 0; i++) {
            if (p->m[i].kind == MARKER_SLOT && !p->slot_used[i] &&
                komm_kz_fits(p->m[i].kz, e->cls, e->type))
                slot = (int)i;
        }
        if (slot >= 0) {
            p->slot_used[slot] = true;
            put_entry(p, KVAR_1, (size_t)slot, e->value, e->value, p->m[slot].kz, 1, true);
            continue;
        }
        struct komm_action *a = push(p, KOP_ADVO_POST, KVAR_1);
        if (!a)
            return;
        a->kz = komm_kz_for(e->cls, e->type);
        a->cls = e->cls;
        a->online = 1;
        a->from_espo = true;
        a->tlf = komm_trim(e->value);
        a->bemerkung = a->tlf ? marker_format(a->tlf, a->kz, NULL) : NULL;
        if (!a->tlf || !a->bemerkung)
            p->oom = true;
    }
}

int komm_plan_make(const struct komm_in *in, struct komm_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    size_t na = in->nadvo ? in->nadvo : 1, ne = in->nespo ? in->nespo : 1;
    struct planner p = {
        .in = in,
        .plan = plan,
        .m = calloc(na, sizeof *p.m),
        .advo_pair = malloc(na * sizeof *p.advo_pair),
        .espo_pair = malloc(ne * sizeof *p.espo_pair),
        .slot_used = calloc(na, sizeof *p.slot_used),
    };
    p.oom = !p.m || !p.advo_pair || !p.espo_pair || !p.slot_used;
    for (size_t i = 0; !p.oom && i < in->nadvo; i++) {
        p.advo_pair[i] = -1;
        p.oom = marker_parse(in->advo[i].bemerkung, &p.m[i]) != 0;
    }
    for (size_t j = 0; !p.oom && j < in->nespo; j++)
        p.espo_pair[j] = -1;
    if (!p.oom) {
        step_marker_pairs(&p);
        step_value_pairs(&p);
        step_orphans(&p);
        step_new_in_advoware(&p);
        step_new_in_espocrm(&p);
    }
    for (size_t i = 0; p.m && i < in->nadvo; i++)
        marker_free(&p.m[i]);
    free(p.m);
    free(p.advo_pair);
    free(p.espo_pair);
    free(p.slot_used);
    if (p.oom) {
        komm_plan_free(plan);
        return -1;
    }
    return 0;
}

void komm_plan_free(struct komm_plan *plan)
{
    for (size_t k = 0; k < plan->n; k++) {
        free(plan->a[k].tlf);
        free(plan->a[k].bemerkung);
        free(plan->a[k].value);
    }
    free(plan->a);
    memset(plan, 0, sizeof *plan);
}

int komm_plan_validate(const struct komm_plan *plan, char *msg, size_t msglen)
{
    for (size_t k = 0; k < plan->n; k++) {
        const struct komm_action *a = &plan->a[k];
        if ((a->op == KOP_ADVO_POST || a->op == KOP_ADVO_PUT) && a->from_espo &&
            komm_check_value(a->cls, a->tlf, msg, msglen) != 0)
            return -1;
    }
    return 0;
}

const char *komm_var_name(enum komm_var v)
{
    static const char *const names[] = {"",     "Var1", "Var2", "Var3",
                                        "Var4", "Var5", "Var6", "Match"};
    return v >= KVAR_1 && v < KVAR_N ? names[v] : "?";
}
