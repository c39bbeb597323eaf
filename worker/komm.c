/* komm.c: the Kommunikation decisions of SPEC §5.4 (see komm.h).
 *
 * Values are compared by key (komm_value_key: a phone's E.164 form, an e-mail in lower case), so
 * "0511/12345" in Advoware and "+4951112345" in EspoCRM are one number and a value that differs
 * only in format is in sync: no write on either side.
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
 *   keeps the old hash and the next run takes them over.
 * - An Advoware entry with a value EspoCRM cannot take is never written, in either system:
 *   not as Var4, not as Var6 (EspoCRM keeps its value, paired with the entry so that it is no
 *   Var3), not overwritten as Var5/Var2/revert (the user's input was never synced; losing it
 *   would be worse than one reported difference). A marker whose own value EspoCRM cannot take
 *   (written by version 1) is no baseline: the entry counts as unmarked, its kz stays known.
 * - A slot whose tlf a person filled in is an entry added in Advoware (Var4), not free space. */
#include "komm.h"

#include "marker.h"
#include "phone.h"
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

const char *komm_kz_espo_type(int kz, const char *const *types, size_t n, const char *dflt)
{
    static const char *const company[] = {"Office", "Mobile", "Fax", "Other"};
    static const char *const prefs[KOMM_KZ_MAX + 1][3] = {
        [1] = {"Office"}, [2] = {"Fax"},   [3] = {"Mobile"}, [6] = {"Home", "Other"},
        [7] = {"Fax"},    [9] = {"Other"}, [10] = {"Other"},
    };
    if (!kz_valid(kz) || kz_table[kz].cls != KOMM_PHONE)
        return NULL;
    if (!types || n == 0) {
        types = company;
        n = sizeof company / sizeof company[0];
        dflt = "Office";
    }
    for (size_t k = 0; k < 3 && prefs[kz][k]; k++) {
        for (size_t t = 0; t < n; t++) {
            if (types[t] && strcmp(types[t], prefs[kz][k]) == 0)
                return types[t];
        }
    }
    return dflt ? dflt : types[0] ? types[0] : "Office";
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
    if (cls == KOMM_PHONE)
        return phone_eq(a ? a : "", b ? b : "", NULL);
    const char *pa, *pb;
    size_t la, lb;
    trimmed(a, &pa, &la);
    trimmed(b, &pb, &lb);
    return la == lb && strncasecmp(pa, pb, la) == 0;
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

char *komm_value_key(const char *value, enum komm_class cls)
{
    char *key = cls == KOMM_PHONE ? phone_e164(value ? value : "", NULL) : NULL;
    if (key)
        return key;
    if (!(key = komm_trim(value)))
        return NULL;
    for (char *c = key; cls == KOMM_EMAIL && *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return key;
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

char *komm_espo_value(const char *value, enum komm_class cls)
{
    char msg[8];
    if (cls == KOMM_PHONE) {
        /* phone characters first: libphonenumber reads letters as digits ("0511/ab") */
        if (komm_check_value(KOMM_PHONE, value, msg, sizeof msg) != 0)
            return NULL;
        char *e164 = phone_e164(value, NULL);
        if (e164 && !phone_espo_valid(e164)) {
            free(e164);
            e164 = NULL;
        }
        return e164;
    }
    if (komm_check_value(KOMM_EMAIL, value, msg, sizeof msg) != 0)
        return NULL;
    for (const char *c = value; *c; c++) { /* EspoCRM's check wants ASCII (PHP filter_var) */
        if ((unsigned char)*c >= 0x80)
            return NULL;
    }
    return komm_trim(value);
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

/* What the planner knows of one Advoware entry. */
struct entry {
    struct marker m;
    bool marked;    /* a value marker that is a baseline (EspoCRM can hold its value) */
    bool slot;      /* an empty slot: a slot marker and no tlf */
    bool has_tlf;   /* tlf is not blank */
    int kz;         /* the marker's kz, else the GET's, else a guess from tlf */
    bool kz_known;  /* kz from a marker or the GET, not a guess */
    char *tlf_key;  /* komm_value_key of tlf (has_tlf) */
    char *mark_key; /* komm_value_key of the marker's value (marked) */
    char *espo;     /* komm_espo_value of tlf: what EspoCRM would store; NULL: it cannot */
    bool web;       /* tlf is a web address: Advoware only */
    bool added;     /* the plan adds tlf to EspoCRM (Var4) */
    bool slot_used; /* a slot taken by Var1 */
    int pair;       /* the EspoCRM item, -1 */
    int base;       /* the baseline entry of the same id, -1 */
};

struct planner {
    const struct komm_in *in;
    struct komm_plan *plan;
    struct entry *a; /* per Advoware entry */
    char **espo_key; /* per EspoCRM item: komm_value_key of its value */
    int *espo_pair;  /* per EspoCRM item: the Advoware entry, -1 */
    char **base_key; /* per baseline entry: komm_value_key of its value */
    bool oom;
};

/* Whether phone type fits kz in the entity's type list (TelPrivat fits Other where there is no
 * Home; any type EspoCRM may add fits Sonstige's). */
static bool type_fits(const struct komm_in *in, int kz, const char *type)
{
    const char *t = komm_kz_espo_type(kz, in->phone_types, in->nphone_types, in->default_type);
    return t && (strcmp(t, type) == 0 ||
                 (komm_kz_for(KOMM_PHONE, type) == 10 &&
                  strcmp(t, komm_kz_espo_type(10, in->phone_types, in->nphone_types,
                                              in->default_type)) == 0));
}

/* Whether EspoCRM's items differ from the baseline's: another value, one more or less, or a
 * phone whose type no longer fits its entry's kommKz (the user is told). */
static bool espo_differs_from_base(const struct komm_in *in)
{
    if (in->nespo != in->nbase)
        return true;
    bool differs = false, *used = calloc(in->nbase + 1, sizeof *used);
    if (!used)
        return true;
    for (size_t j = 0; j < in->nespo && !differs; j++) {
        const struct komm_espo *e = &in->espo[j];
        char *key = komm_value_key(e->value, e->cls);
        bool found = false;
        for (size_t b = 0; key && b < in->nbase && !found; b++) {
            const struct komm_base *x = &in->base[b];
            if (used[b] || x->cls != e->cls)
                continue;
            char *bkey = komm_value_key(x->value, x->cls);
            found = bkey && strcmp(key, bkey) == 0;
            free(bkey);
            if (found) {
                used[b] = true;
                differs = e->cls == KOMM_PHONE && e->type && !type_fits(in, x->kz, e->type);
            }
        }
        differs |= !found;
        free(key);
    }
    free(used);
    return differs;
}

bool komm_needs_plan(const struct komm_in *in)
{
    if (in->has_base)
        return in->advo_changed || espo_differs_from_base(in);
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

static const char *espo_type(const struct planner *p, int kz)
{
    const struct komm_in *in = p->in;
    return komm_kz_espo_type(kz, in->phone_types, in->nphone_types, in->default_type);
}

/* komm_kz_fits with the entity's type list: TelPrivat fits an Other where there is no Home. */
static bool fits(const struct planner *p, int kz, enum komm_class cls, const char *type)
{
    if (!kz_valid(kz) || kz_table[kz].cls != cls)
        return false;
    return cls == KOMM_EMAIL || !type || type_fits(p->in, kz, type);
}

static enum komm_class entry_class(const struct entry *e)
{
    return (enum komm_class)kz_table[e->kz].cls;
}

/* An EspoCRM value as written to Advoware: a phone in international format with spaces
 * ("+49 511 12345"), else as EspoCRM holds it; trimmed. NULL when out of memory. */
static char *advo_value(const char *value, enum komm_class cls)
{
    char *v = cls == KOMM_PHONE ? phone_international(value, NULL) : NULL;
    return v ? v : komm_trim(value);
}

/* PUT Advoware entry i: tlf (trimmed) and the marker of (tlf, kz), or a slot when tlf is "",
 * keeping the entry's user text. Returns the action's index, -1 when out of memory. */
static int put_entry(struct planner *p, enum komm_var var, size_t i, const char *tlf, int kz,
                     int online, bool from_espo)
{
    struct komm_action *a = push(p, KOP_ADVO_PUT, var);
    if (!a)
        return -1;
    a->advo = i;
    a->online = online;
    a->from_espo = from_espo;
    a->cls = (enum komm_class)komm_kz_class(kz);
    a->tlf = komm_trim(tlf);
    a->bemerkung = a->tlf ? marker_format(*a->tlf ? a->tlf : NULL, kz, p->a[i].m.user) : NULL;
    if (!a->tlf || !a->bemerkung)
        p->oom = true;
    return p->oom ? -1 : (int)(a - p->plan->a);
}

/* PUT entry i with EspoCRM's value (Var1 into a slot, Var5, the Var6 revert). The action's index,
 * -1 when out of memory. */
static int put_espo_value(struct planner *p, enum komm_var var, size_t i, const char *value,
                          enum komm_class cls, int kz, int online)
{
    char *v = advo_value(value, cls);
    if (!v) {
        p->oom = true;
        return -1;
    }
    int k = put_entry(p, var, i, v, kz, online, true);
    free(v);
    return k;
}

/* An EspoCRM action on item j (KOP_ESPO_ADD: j unused). NULL when out of memory. */
static struct komm_action *espo_action(struct planner *p, enum komm_op op, enum komm_var var,
                                       size_t j, const char *value, enum komm_class cls,
                                       const char *type, int after)
{
    struct komm_action *a = push(p, op, var);
    if (!a)
        return NULL;
    a->espo = j;
    a->cls = cls;
    a->type = type;
    a->after = after;
    if (value && !(a->value = strdup(value)))
        p->oom = true;
    return a;
}

/* Var4: entry i's value is added to EspoCRM once its marker write k (-1: none needed) went
 * through. */
static void espo_add(struct planner *p, size_t i, enum komm_class cls, int k)
{
    struct komm_action *a = espo_action(p, KOP_ESPO_ADD, KVAR_4, 0, p->a[i].espo, cls,
                                        cls == KOMM_PHONE ? espo_type(p, p->a[i].kz) : NULL, k);
    if (a)
        a->advo = i;
}

/* Reports that entry i is not taken over into EspoCRM, once per text. */
static void skip(struct planner *p, size_t i, const char *why)
{
    const struct entry *e = &p->a[i];
    char *v = komm_trim(p->in->advo[i].tlf), text[512];
    if (!v) {
        p->oom = true;
        return;
    }
    snprintf(text, sizeof text, "%s '%.200s' aus Advoware wurde nicht übernommen: %s",
             entry_class(e) == KOMM_PHONE ? "Telefonnummer" : "E-Mail-Adresse", v, why);
    free(v);
    for (size_t k = 0; k < p->plan->n; k++) {
        if (p->plan->a[k].op == KOP_SKIP && strcmp(p->plan->a[k].value, text) == 0)
            return;
    }
    struct komm_action *a = push(p, KOP_SKIP, KVAR_N);
    if (!a)
        return;
    a->advo = i;
    a->cls = entry_class(e);
    if (!(a->value = strdup(text)))
        p->oom = true;
}

/* Reports entry i, whose value EspoCRM cannot take. */
static void skip_invalid(struct planner *p, size_t i)
{
    skip(p, i,
         entry_class(&p->a[i]) == KOMM_PHONE ? "keine gültige Telefonnummer" : "ungültige Adresse");
}

static void pair(struct planner *p, size_t i, size_t j)
{
    p->a[i].pair = (int)j;
    p->espo_pair[j] = (int)i;
}

/* Once the plan succeeded, entry i and EspoCRM hold value (EspoCRM's form) as kommKz kz.
 * holds: EspoCRM holds it already (only Advoware's side is written), so it is both systems'
 * value as soon as the entry's Advoware action landed, before the final PUT (merge.h,
 * the write-ahead baseline). */
static void agree(struct planner *p, size_t i, const char *value, int kz, bool holds)
{
    free(p->plan->agreed[i]);
    p->plan->agreed[i] = value ? strdup(value) : NULL;
    p->plan->agreed_kz[i] = kz;
    p->plan->holds[i] = holds;
    if (value && !p->plan->agreed[i])
        p->oom = true;
}

/* An unpaired EspoCRM item of class cls whose key is key, one whose type fits kz first (the same
 * number may be an Office phone and a Fax). -1 if none. */
static int find_value(const struct planner *p, const char *key, enum komm_class cls, int kz)
{
    int any = -1;
    for (size_t j = 0; j < p->in->nespo; j++) {
        const struct komm_espo *e = &p->in->espo[j];
        if (p->espo_pair[j] >= 0 || e->cls != cls || strcmp(p->espo_key[j], key) != 0)
            continue;
        if (fits(p, kz, e->cls, e->type))
            return (int)j;
        if (any < 0)
            any = (int)j;
    }
    return any;
}

/* Whether EspoCRM holds the value of key (paired or not), or the plan already adds it. */
static bool espo_has(const struct planner *p, const char *key, enum komm_class cls)
{
    for (size_t j = 0; j < p->in->nespo; j++) {
        if (p->in->espo[j].cls == cls && strcmp(p->espo_key[j], key) == 0)
            return true;
    }
    for (size_t i = 0; i < p->in->nadvo; i++) {
        if (p->a[i].added && entry_class(&p->a[i]) == cls && strcmp(p->a[i].tlf_key, key) == 0)
            return true;
    }
    return false;
}

/* Entry i holds the value of EspoCRM item e, whose phone type no longer fits the entry's kommKz
 * (read-only after POST): the user is told to change it in Advoware. */
static void type_change(struct planner *p, size_t i, const struct komm_espo *e)
{
    const struct entry *x = &p->a[i];
    if (fits(p, x->kz, e->cls, e->type))
        return;
    struct komm_action *a = push(p, KOP_NOTIFY, KVAR_N);
    if (a)
        a->advo = i;
    char text[512];
    snprintf(text, sizeof text,
             "Typ-Änderung nicht möglich, bitte manuell in Advoware ändern: %.200s "
             "ist in Advoware %s, in EspoCRM %s",
             x->m.value ? x->m.value : p->in->advo[i].tlf, komm_kz_name(x->kz),
             e->type ? e->type : "E-Mail");
    if (a && !(a->value = strdup(text)))
        p->oom = true;
}

/* Step 1: entries whose marker value EspoCRM still holds. */
static void step_marker_pairs(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        struct entry *x = &p->a[i];
        if (!x->marked)
            continue;
        enum komm_class cls = entry_class(x);
        int j = find_value(p, x->mark_key, cls, x->kz);
        if (j < 0)
            continue;
        pair(p, i, (size_t)j);
        const struct komm_espo *e = &in->espo[j];
        if (x->has_tlf && strcmp(x->tlf_key, x->mark_key) == 0) { /* in sync */
            agree(p, i, e->value, x->kz, true);
            type_change(p, i, e);
        } else if (x->has_tlf && !x->espo) { /* the user's new value stays, EspoCRM keeps v */
            agree(p, i, e->value, x->kz, false);
            if (!x->web)
                skip_invalid(p, i);
        } else if (in->dir == KOMM_TO_ADVOWARE) { /* Var6 reverted: EspoCRM wins */
            agree(p, i, e->value, x->kz, true);
            put_espo_value(p, KVAR_6, i, e->value, cls, x->kz, -1);
        } else if (!x->has_tlf) { /* emptied in Advoware: a deletion, the entry becomes a slot */
            int k = put_entry(p, KVAR_3, i, "", x->kz, 0, false);
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, (size_t)j, NULL, e->cls, NULL, k);
        } else { /* Var6: changed in Advoware */
            agree(p, i, x->espo, x->kz, false);
            int k = put_entry(p, KVAR_6, i, in->advo[i].tlf, x->kz, -1, false);
            espo_action(p, KOP_ESPO_SET, KVAR_6, (size_t)j, x->espo, e->cls, NULL, k);
        }
    }
}

/* Step 3, first half: unmarked entries holding a value an unpaired EspoCRM item has: pair,
 * write the marker only. */
static void step_value_pairs(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        struct entry *x = &p->a[i];
        if (x->marked || !x->has_tlf)
            continue;
        int j = find_value(p, x->tlf_key, entry_class(x), x->kz_known ? x->kz : 0);
        if (j < 0)
            continue;
        pair(p, i, (size_t)j);
        const struct komm_espo *e = &in->espo[j];
        if (!x->kz_known) /* GET said 0: EspoCRM's type is the better guess */
            x->kz = komm_kz_for(e->cls, e->type);
        agree(p, i, e->value, x->kz, true);
        put_entry(p, KVAR_MATCH, i, in->advo[i].tlf, x->kz, -1, false);
    }
}

/* Step 2: markers whose value EspoCRM no longer holds → Var5 onto an unpaired EspoCRM item
 * that fits the entry's kommKz, else Var2 (an empty slot). An entry whose new value EspoCRM
 * cannot take was never synced: it stays. */
static void step_orphans(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        struct entry *x = &p->a[i];
        if (!x->marked || x->pair >= 0)
            continue;
        if (x->has_tlf && !x->espo) {
            if (!x->web)
                skip_invalid(p, i);
            continue;
        }
        int found = -1;
        for (size_t j = 0; j < in->nespo && found < 0; j++) {
            if (p->espo_pair[j] < 0 && fits(p, x->kz, in->espo[j].cls, in->espo[j].type))
                found = (int)j;
        }
        if (found >= 0) {
            pair(p, i, (size_t)found);
            agree(p, i, in->espo[found].value, x->kz, true);
            put_espo_value(p, KVAR_5, i, in->espo[found].value, in->espo[found].cls, x->kz, 1);
        } else {
            put_entry(p, KVAR_2, i, "", x->kz, 0, false);
        }
    }
}

/* Whether unpaired EspoCRM items are Advoware-side deletions (Var3) rather than new (Var1). */
static bool deleted_in_advoware(const struct komm_in *in)
{
    return !in->initial && in->advo_changed && !in->espo_changed && in->dir == KOMM_BOTH;
}

/* How many phone numbers EspoCRM holds once the plan's removals are done. Pairing is final by
 * now (Var4 pairs nothing), so the Var3 removals of step 4 are known too. */
static size_t phones_left(const struct planner *p)
{
    size_t n = 0;
    for (size_t j = 0; j < p->in->nespo; j++) {
        if (p->in->espo[j].cls == KOMM_PHONE &&
            (p->espo_pair[j] >= 0 || !deleted_in_advoware(p->in)))
            n++;
    }
    for (size_t k = 0; k < p->plan->n; k++) {
        const struct komm_action *a = &p->plan->a[k];
        if (a->op == KOP_ESPO_REMOVE && p->in->espo[a->espo].cls == KOMM_PHONE)
            n--; /* step 1's removals are of paired items */
    }
    return n;
}

/* Step 3, second half: unmarked entries nobody has → Var4 (both): into EspoCRM, marker back.
 * Under to_advoware they wait: the plan is marked deferred and the hash stays old, so the next
 * run (at the latest the cron's daily check) plans them; otherwise they would hide behind an
 * equal hash until something else changed. What EspoCRM cannot take (an invalid value, an 11th
 * number) is reported and left as it is; a web address stays in Advoware only. */
static void step_new_in_advoware(struct planner *p)
{
    const struct komm_in *in = p->in;
    size_t phones = phones_left(p);
    for (size_t i = 0; i < in->nadvo; i++) {
        struct entry *x = &p->a[i];
        if (x->marked || x->pair >= 0 || !x->has_tlf)
            continue;
        enum komm_class cls = entry_class(x);
        if (espo_has(p, x->tlf_key, cls) || x->web)
            continue; /* a second entry of a value EspoCRM has: left alone */
        if (!x->espo) {
            skip_invalid(p, i);
            continue;
        }
        if (in->dir == KOMM_TO_ADVOWARE) { /* EspoCRM wins this run; the next one takes it */
            p->plan->deferred = true;
            continue;
        }
        if (cls == KOMM_PHONE && phones >= KOMM_PHONE_MAX) {
            skip(p, i, "EspoCRM erlaubt höchstens 10 Telefonnummern");
            continue;
        }
        phones += cls == KOMM_PHONE;
        x->added = true;
        agree(p, i, x->espo, x->kz, false);
        int k = put_entry(p, KVAR_4, i, in->advo[i].tlf, x->kz, -1, false);
        espo_add(p, i, cls, k);
    }
}

/* Var1: EspoCRM item j is new: into an empty slot of exactly its kommKz (SPEC §5.4: a new
 * business e-mail never fills a Bea slot, which would be permanent: kommKz is read-only after
 * POST), else POSTed. */
static void var1(struct planner *p, size_t j)
{
    const struct komm_espo *e = &p->in->espo[j];
    int kz = komm_kz_for(e->cls, e->type), slot = -1;
    for (size_t i = 0; i < p->in->nadvo && slot < 0; i++) {
        if (p->a[i].slot && !p->a[i].slot_used && p->a[i].pair < 0 && p->a[i].kz == kz)
            slot = (int)i;
    }
    if (slot >= 0) {
        p->a[slot].slot_used = true;
        agree(p, (size_t)slot, e->value, kz, true);
        int k = put_espo_value(p, KVAR_1, (size_t)slot, e->value, e->cls, kz, 1);
        if (k >= 0)
            p->plan->a[k].espo = j;
        return;
    }
    struct komm_action *a = push(p, KOP_ADVO_POST, KVAR_1);
    if (!a)
        return;
    a->espo = j;
    a->kz = kz;
    a->cls = e->cls;
    a->online = 1;
    a->from_espo = true;
    a->tlf = advo_value(e->value, e->cls);
    a->bemerkung = a->tlf ? marker_format(a->tlf, a->kz, NULL) : NULL;
    a->value = strdup(e->value);
    if (!a->tlf || !a->bemerkung || !a->value)
        p->oom = true;
}

/* Step 4: EspoCRM items still unpaired → Var3 (deleted in Advoware) or Var1 (new in EspoCRM). */
static void step_new_in_espocrm(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t j = 0; j < in->nespo; j++) {
        if (p->espo_pair[j] >= 0)
            continue;
        if (deleted_in_advoware(in))
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, j, NULL, in->espo[j].cls, NULL, -1);
        else
            var1(p, j);
    }
}

/* ---- the planner with a baseline (SPEC §5.2, §5.4) ------------------------------------------
 *
 * An entry is identified by its Advoware id; the baseline says which value both systems held
 * for it after the last successful run. Against it, each side's change is recognised per entry,
 * as §5.2 does per field: a marker written before a failed final PUT (Var4, Var6) can never turn
 * an Advoware-side change into a deletion, because the marker no longer decides. Values equal
 * on both sides are in sync, whoever wrote them: so a run that failed after some of its writes
 * finishes them without a duplicate or a revert. The steps, in order:
 *   B1  equal values pair (baseline entries still holding their value first): in sync; the
 *       marker is written where it is missing or stale (Match);
 *   B2  a baseline entry whose value EspoCRM still holds but Advoware changed → Var6 (pull);
 *       one Advoware emptied → Var3 (EspoCRM drops it; the entry becomes a slot);
 *   B3  a baseline entry whose value EspoCRM no longer holds → Var5 onto a new EspoCRM item that
 *       fits its kommKz, else Var2 (slot); if Advoware changed it too, that is a conflict: EspoCRM
 *       wins and the notification names Advoware's value;
 *   B4  EspoCRM items whose value the baseline knows but no entry holds any more: deleted in
 *       Advoware (a person may delete entries there) → Var3;
 *   B5  entries the baseline does not know, with a value → Var4 (new in Advoware, a person's
 *       number in a slot included); without one → free slots;
 *   B6  EspoCRM items the baseline does not know → Var1. */

/* Whether the baseline holds a value of key and cls. */
static bool base_knows(const struct planner *p, const char *key, enum komm_class cls)
{
    for (size_t b = 0; b < p->in->nbase; b++) {
        if (p->in->base[b].cls == cls && p->base_key[b] && strcmp(p->base_key[b], key) == 0)
            return true;
    }
    return false;
}

/* Whether entry i's bemerkung already is the marker of its tlf and kz (or a slot marker of kz
 * when tlf is empty): then no PUT is needed. */
static bool marker_right(const struct planner *p, size_t i, int kz)
{
    const struct entry *x = &p->a[i];
    if (!x->has_tlf)
        return x->m.kind == MARKER_SLOT && x->m.kz == kz;
    return x->marked && x->m.kz == kz && strcmp(x->mark_key, x->tlf_key) == 0;
}

/* PUT entry i's own tlf with its marker (or an empty slot), unless it has it already. The
 * action's index, -1 when no PUT is needed. */
static int mark(struct planner *p, enum komm_var var, size_t i, int kz)
{
    if (marker_right(p, i, kz))
        return -1;
    return put_entry(p, var, i, p->a[i].has_tlf ? p->in->advo[i].tlf : "", kz,
                     p->a[i].has_tlf ? -1 : 0, false);
}

/* The conflict notification of an entry (SPEC §5.2): EspoCRM's value won over Advoware's. */
static void conflict(struct planner *p, size_t i)
{
    char *v = komm_trim(p->in->advo[i].tlf), text[512];
    if (!v) {
        p->oom = true;
        return;
    }
    snprintf(text, sizeof text,
             "Konflikt gelöst: EspoCRM-Daten wurden übernommen (%s: Advoware "
             "hatte '%.200s')",
             entry_class(&p->a[i]) == KOMM_PHONE ? "Telefon" : "E-Mail", v);
    free(v);
    struct komm_action *a = push(p, KOP_CONFLICT, KVAR_N);
    if (a)
        a->advo = i;
    if (a && !(a->value = strdup(text)))
        p->oom = true;
}

/* B1: equal values pair; baseline entries that still hold their value go first. */
static void base_equal(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < in->nadvo; i++) {
            struct entry *x = &p->a[i];
            bool unchanged = x->base >= 0 && x->has_tlf && p->base_key[x->base] &&
                             strcmp(x->tlf_key, p->base_key[x->base]) == 0;
            if (x->pair >= 0 || !x->has_tlf || (pass == 0) != unchanged)
                continue;
            int j = find_value(p, x->tlf_key, entry_class(x), x->kz_known ? x->kz : 0);
            if (j < 0)
                continue;
            const struct komm_espo *e = &in->espo[j];
            pair(p, i, (size_t)j);
            if (!x->kz_known) /* GET said 0: EspoCRM's type is the better guess */
                x->kz = komm_kz_for(e->cls, e->type);
            agree(p, i, e->value, x->kz, true);
            if (x->base >= 0 || x->m.kind == MARKER_VALUE)
                type_change(p, i, e);
            mark(p, KVAR_MATCH, i, x->kz);
        }
    }
}

/* B2: baseline entries whose value EspoCRM still holds, changed or emptied in Advoware. */
static void base_advo_changed(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        struct entry *x = &p->a[i];
        if (x->pair >= 0 || x->base < 0 || !p->base_key[x->base])
            continue;
        enum komm_class cls = entry_class(x);
        int j = find_value(p, p->base_key[x->base], cls, x->kz);
        if (j < 0)
            continue;
        const struct komm_espo *e = &in->espo[j];
        pair(p, i, (size_t)j);
        if (!x->has_tlf) { /* emptied in Advoware: a deletion */
            int k = mark(p, KVAR_3, i, x->kz);
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, (size_t)j, NULL, e->cls, NULL, k);
        } else if (!x->espo) { /* a value EspoCRM cannot take: EspoCRM keeps the old one */
            agree(p, i, e->value, x->kz, false);
            if (!x->web)
                skip_invalid(p, i);
        } else if (espo_has(p, x->tlf_key, cls)) { /* now a value EspoCRM has elsewhere */
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, (size_t)j, NULL, e->cls, NULL, -1);
        } else { /* Var6 */
            agree(p, i, x->espo, x->kz, false);
            int k = mark(p, KVAR_6, i, x->kz);
            espo_action(p, KOP_ESPO_SET, KVAR_6, (size_t)j, x->espo, e->cls, NULL, k);
        }
    }
}

/* B3: baseline entries whose value EspoCRM no longer holds (changed or deleted there). */
static void base_espo_changed(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t i = 0; i < in->nadvo; i++) {
        struct entry *x = &p->a[i];
        if (x->pair >= 0 || x->base < 0 || !p->base_key[x->base])
            continue;
        bool advo_changed = x->has_tlf && strcmp(x->tlf_key, p->base_key[x->base]) != 0;
        if (advo_changed && !x->espo) { /* a person's input EspoCRM cannot take: it stays */
            if (!x->web)
                skip_invalid(p, i);
            continue;
        }
        int found = -1;
        for (size_t j = 0; j < in->nespo && found < 0; j++) {
            const struct komm_espo *e = &in->espo[j];
            if (p->espo_pair[j] < 0 && fits(p, x->kz, e->cls, e->type) &&
                !base_knows(p, p->espo_key[j], e->cls))
                found = (int)j;
        }
        if (found >= 0) { /* Var5 */
            const struct komm_espo *e = &in->espo[found];
            pair(p, i, (size_t)found);
            agree(p, i, e->value, x->kz, true);
            put_espo_value(p, KVAR_5, i, e->value, e->cls, x->kz, 1);
        } else if (!marker_right(p, i, x->kz) || x->has_tlf) { /* Var2 */
            put_entry(p, KVAR_2, i, "", x->kz, 0, false);
        }
        if (advo_changed)
            conflict(p, i);
    }
}

/* B4: EspoCRM items whose value the baseline knows but no entry holds: deleted in Advoware. */
static void base_gone_in_advoware(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t j = 0; j < in->nespo; j++) {
        if (p->espo_pair[j] < 0 && base_knows(p, p->espo_key[j], in->espo[j].cls)) {
            p->espo_pair[j] = (int)in->nadvo; /* handled */
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, j, NULL, in->espo[j].cls, NULL, -1);
        }
    }
}

/* How many phone numbers EspoCRM holds once the plan's removals are done. */
static size_t base_phones_left(const struct planner *p)
{
    size_t n = 0;
    for (size_t j = 0; j < p->in->nespo; j++)
        n += p->in->espo[j].cls == KOMM_PHONE;
    for (size_t k = 0; k < p->plan->n; k++) {
        const struct komm_action *a = &p->plan->a[k];
        n -= a->op == KOP_ESPO_REMOVE && p->in->espo[a->espo].cls == KOMM_PHONE;
    }
    return n;
}

/* B5: entries the baseline does not know: a value is new in Advoware (Var4), an empty one is a
 * free slot. */
static void base_new_in_advoware(struct planner *p)
{
    const struct komm_in *in = p->in;
    size_t phones = base_phones_left(p);
    for (size_t i = 0; i < in->nadvo; i++) {
        struct entry *x = &p->a[i];
        if (x->pair >= 0 || x->base >= 0)
            continue;
        if (!x->has_tlf) {
            if (x->m.kind == MARKER_VALUE) /* emptied by a person before any run knew it: it
                                              becomes a proper slot */
                put_entry(p, KVAR_2, i, "", x->kz, 0, false);
            else
                x->slot = x->m.kind == MARKER_SLOT;
            continue;
        }
        enum komm_class cls = entry_class(x);
        if (x->web || espo_has(p, x->tlf_key, cls))
            continue; /* a web address, or a second entry of a value EspoCRM has: left alone */
        if (!x->espo) {
            skip_invalid(p, i);
            continue;
        }
        if (cls == KOMM_PHONE && phones >= KOMM_PHONE_MAX) {
            skip(p, i, "EspoCRM erlaubt höchstens 10 Telefonnummern");
            continue;
        }
        phones += cls == KOMM_PHONE;
        x->added = true;
        agree(p, i, x->espo, x->kz, false);
        int k = mark(p, KVAR_4, i, x->kz);
        espo_add(p, i, cls, k);
    }
}

static void plan_with_base(struct planner *p)
{
    base_equal(p);
    base_advo_changed(p);
    base_espo_changed(p);
    base_gone_in_advoware(p);
    base_new_in_advoware(p);
    for (size_t j = 0; j < p->in->nespo; j++) { /* B6 */
        if (p->espo_pair[j] < 0)
            var1(p, j);
    }
}

/* komm_value_key of value, from what EspoCRM would store of it (espo, NULL if nothing) when
 * that is known: a phone's E.164 form is its key (libphonenumber is slow; ask it once). */
static char *value_key(const char *value, const char *espo, enum komm_class cls)
{
    return espo && cls == KOMM_PHONE ? strdup(espo) : komm_value_key(value, cls);
}

/* What the planner needs to know of entry i (keys, what EspoCRM would store). 0, or -1 when out
 * of memory. */
static int read_entry(struct planner *p, size_t i)
{
    const struct komm_advo *a = &p->in->advo[i];
    struct entry *x = &p->a[i];
    x->pair = -1;
    x->base = -1;
    for (size_t b = 0; a->id > 0 && b < p->in->nbase && x->base < 0; b++) {
        if (p->in->base[b].id == a->id && kz_valid(p->in->base[b].kz))
            x->base = (int)b;
    }
    if (marker_parse(a->bemerkung, &x->m) != 0)
        return -1;
    x->has_tlf = !empty(a->tlf);
    x->kz_known = x->m.kind != MARKER_NONE || kz_valid(a->kz) || x->base >= 0;
    x->kz = x->m.kind != MARKER_NONE ? x->m.kz
            : kz_valid(a->kz)        ? a->kz
            : x->base >= 0           ? p->in->base[x->base].kz
                                     : komm_kz_guess(a->tlf);
    enum komm_class cls = entry_class(x);
    x->slot = x->m.kind == MARKER_SLOT && !x->has_tlf;
    if (x->has_tlf) {
        x->web = cls == KOMM_EMAIL && komm_kz_guess(a->tlf) == 5;
        x->espo = x->web ? NULL : komm_espo_value(a->tlf, cls);
        if (!(x->tlf_key = value_key(a->tlf, x->espo, cls)))
            return -1;
    }
    if (x->m.kind == MARKER_VALUE) {
        /* a baseline only if EspoCRM could have held it (version 1 wrote markers of values
         * EspoCRM refused): else its absence in EspoCRM would read as a deletion */
        char *held = komm_kz_guess(x->m.value) == 5 && cls == KOMM_EMAIL
                         ? NULL
                         : komm_espo_value(x->m.value, cls);
        x->marked = held != NULL;
        if (x->marked && !(x->mark_key = value_key(x->m.value, held, cls))) {
            free(held);
            return -1;
        }
        free(held);
    }
    return 0;
}

int komm_plan_make(const struct komm_in *in, struct komm_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    size_t na = in->nadvo ? in->nadvo : 1, ne = in->nespo ? in->nespo : 1;
    size_t nb = in->has_base && in->nbase ? in->nbase : 1;
    struct planner p = {
        .in = in,
        .plan = plan,
        .a = calloc(na, sizeof *p.a),
        .espo_key = calloc(ne, sizeof *p.espo_key),
        .espo_pair = malloc(ne * sizeof *p.espo_pair),
        .base_key = calloc(nb, sizeof *p.base_key),
    };
    plan->agreed = calloc(na, sizeof *plan->agreed);
    plan->agreed_kz = calloc(na, sizeof *plan->agreed_kz);
    plan->holds = calloc(na, sizeof *plan->holds);
    plan->paired = malloc(na * sizeof *plan->paired);
    plan->nagreed = in->nadvo;
    p.oom = !p.a || !p.espo_key || !p.espo_pair || !p.base_key || !plan->agreed ||
            !plan->agreed_kz || !plan->paired || !plan->holds;
    for (size_t b = 0; !p.oom && in->has_base && b < in->nbase; b++) {
        /* a value the baseline cannot compare is no baseline of its entry */
        if (in->base[b].value && *in->base[b].value &&
            !(p.base_key[b] = komm_value_key(in->base[b].value, in->base[b].cls)))
            p.oom = true;
    }
    for (size_t i = 0; !p.oom && i < in->nadvo; i++)
        p.oom = read_entry(&p, i) != 0;
    for (size_t j = 0; !p.oom && j < in->nespo; j++) {
        p.espo_pair[j] = -1;
        p.oom = !(p.espo_key[j] = komm_value_key(in->espo[j].value, in->espo[j].cls));
    }
    if (!p.oom && in->has_base) {
        plan_with_base(&p);
    } else if (!p.oom) {
        step_marker_pairs(&p);
        step_value_pairs(&p);
        step_orphans(&p);
        step_new_in_advoware(&p);
        step_new_in_espocrm(&p);
    }
    for (size_t i = 0; p.a && plan->paired && i < in->nadvo; i++)
        plan->paired[i] = p.a[i].pair >= 0 && (size_t)p.a[i].pair < in->nespo ? p.a[i].pair : -1;
    for (size_t i = 0; p.a && i < in->nadvo; i++) {
        marker_free(&p.a[i].m);
        free(p.a[i].tlf_key);
        free(p.a[i].mark_key);
        free(p.a[i].espo);
    }
    for (size_t j = 0; p.espo_key && j < in->nespo; j++)
        free(p.espo_key[j]);
    for (size_t b = 0; p.base_key && in->has_base && b < in->nbase; b++)
        free(p.base_key[b]);
    free(p.base_key);
    free(p.a);
    free(p.espo_key);
    free(p.espo_pair);
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
    for (size_t i = 0; plan->agreed && i < plan->nagreed; i++)
        free(plan->agreed[i]);
    free(plan->agreed);
    free(plan->agreed_kz);
    free(plan->holds);
    free(plan->paired);
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
