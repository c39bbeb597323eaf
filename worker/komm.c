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
};

struct planner {
    const struct komm_in *in;
    struct komm_plan *plan;
    struct entry *a; /* per Advoware entry */
    char **espo_key; /* per EspoCRM item: komm_value_key of its value */
    int *espo_pair;  /* per EspoCRM item: the Advoware entry, -1 */
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
    if (cls == KOMM_EMAIL || !type)
        return true;
    const char *t = espo_type(p, kz);
    return strcmp(t, type) == 0 ||
           (komm_kz_for(cls, type) == 10 && strcmp(t, espo_type(p, 10)) == 0);
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

/* PUT entry i with EspoCRM's value (Var1 into a slot, Var5, the Var6 revert). */
static void put_espo_value(struct planner *p, enum komm_var var, size_t i, const char *value,
                           enum komm_class cls, int kz, int online)
{
    char *v = advo_value(value, cls);
    if (!v) {
        p->oom = true;
        return;
    }
    put_entry(p, var, i, v, kz, online, true);
    free(v);
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
    if (value && !(a->value = strdup(value)))
        p->oom = true;
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
            if (!fits(p, x->kz, e->cls, e->type)) { /* kommKz is read-only after POST */
                struct komm_action *a = push(p, KOP_NOTIFY, KVAR_N);
                char text[512];
                snprintf(text, sizeof text,
                         "Typ-Änderung nicht möglich, bitte manuell in Advoware ändern: %.200s "
                         "ist in Advoware %s, in EspoCRM %s",
                         x->m.value, komm_kz_name(x->kz), e->type ? e->type : "E-Mail");
                if (a && !(a->value = strdup(text)))
                    p->oom = true;
            }
        } else if (x->has_tlf && !x->espo) { /* the user's new value stays, EspoCRM keeps v */
            if (!x->web)
                skip_invalid(p, i);
        } else if (in->dir == KOMM_TO_ADVOWARE) { /* Var6 reverted: EspoCRM wins */
            put_espo_value(p, KVAR_6, i, e->value, cls, x->kz, -1);
        } else if (!x->has_tlf) { /* emptied in Advoware: a deletion, the entry becomes a slot */
            int k = put_entry(p, KVAR_3, i, "", x->kz, 0, false);
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, (size_t)j, NULL, e->cls, NULL, k);
        } else { /* Var6: changed in Advoware */
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
        int k = put_entry(p, KVAR_4, i, in->advo[i].tlf, x->kz, -1, false);
        espo_action(p, KOP_ESPO_ADD, KVAR_4, 0, x->espo, cls,
                    cls == KOMM_PHONE ? espo_type(p, x->kz) : NULL, k);
    }
}

/* Step 4: EspoCRM items still unpaired → Var3 (deleted in Advoware) or Var1 (new in EspoCRM:
 * into an empty slot that fits, else POST). */
static void step_new_in_espocrm(struct planner *p)
{
    const struct komm_in *in = p->in;
    for (size_t j = 0; j < in->nespo; j++) {
        const struct komm_espo *e = &in->espo[j];
        if (p->espo_pair[j] >= 0)
            continue;
        if (deleted_in_advoware(in)) {
            espo_action(p, KOP_ESPO_REMOVE, KVAR_3, j, NULL, e->cls, NULL, -1);
            continue;
        }
        int slot = -1;
        for (size_t i = 0; i < in->nadvo && slot < 0; i++) {
            if (p->a[i].slot && !p->a[i].slot_used && fits(p, p->a[i].kz, e->cls, e->type))
                slot = (int)i;
        }
        if (slot >= 0) {
            p->a[slot].slot_used = true;
            put_espo_value(p, KVAR_1, (size_t)slot, e->value, e->cls, p->a[slot].kz, 1);
            continue;
        }
        struct komm_action *a = push(p, KOP_ADVO_POST, KVAR_1);
        if (!a)
            return;
        a->kz = komm_kz_for(e->cls, e->type);
        a->cls = e->cls;
        a->online = 1;
        a->from_espo = true;
        a->tlf = advo_value(e->value, e->cls);
        a->bemerkung = a->tlf ? marker_format(a->tlf, a->kz, NULL) : NULL;
        if (!a->tlf || !a->bemerkung)
            p->oom = true;
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
    if (marker_parse(a->bemerkung, &x->m) != 0)
        return -1;
    x->has_tlf = !empty(a->tlf);
    x->kz_known = x->m.kind != MARKER_NONE || kz_valid(a->kz);
    x->kz = x->m.kind != MARKER_NONE ? x->m.kz : kz_valid(a->kz) ? a->kz : komm_kz_guess(a->tlf);
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
    struct planner p = {
        .in = in,
        .plan = plan,
        .a = calloc(na, sizeof *p.a),
        .espo_key = calloc(ne, sizeof *p.espo_key),
        .espo_pair = malloc(ne * sizeof *p.espo_pair),
    };
    p.oom = !p.a || !p.espo_key || !p.espo_pair;
    for (size_t i = 0; !p.oom && i < in->nadvo; i++)
        p.oom = read_entry(&p, i) != 0;
    for (size_t j = 0; !p.oom && j < in->nespo; j++) {
        p.espo_pair[j] = -1;
        p.oom = !(p.espo_key[j] = komm_value_key(in->espo[j].value, in->espo[j].cls));
    }
    if (!p.oom) {
        step_marker_pairs(&p);
        step_value_pairs(&p);
        step_orphans(&p);
        step_new_in_advoware(&p);
        step_new_in_espocrm(&p);
    }
    for (size_t i = 0; p.a && i < in->nadvo; i++) {
        marker_free(&p.a[i].m);
        free(p.a[i].tlf_key);
        free(p.a[i].mark_key);
        free(p.a[i].espo);
    }
    for (size_t j = 0; p.espo_key && j < in->nespo; j++)
        free(p.espo_key[j]);
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
