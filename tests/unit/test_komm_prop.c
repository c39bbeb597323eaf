/* test_komm_prop.c: a property test of the Kommunikation planner (worker/komm.c). Random
 * EspoCRM and Advoware lists, random edits on either side over a few runs (people add, delete
 * and change entries, retype numbers in another format, type numbers nationally or wrongly,
 * write notes into bemerkung, empty entries in Advoware), then the planner's actions applied to
 * a tiny in-memory model of both systems with their quirks: EspoCRM stores a phone as its
 * E.164 form, answers 400 for a number that is not international, an invalid address, an 11th
 * number or a type outside the entity's list (Company or Person); Advoware's GET shows kommKz 0,
 * its PUT cannot change kommKz, nothing is ever deleted by the API. After every run:
 * - EspoCRM never got a value or type it refuses, and holds at most 10 numbers;
 * - both sides hold the same set of (value, type) pairs, values compared as komm_value_key does
 *   (phones by E.164), except the entries the plan reported as skipped (EspoCRM wins under
 *   to_advoware, where EspoCRM must not change and Advoware must hold all of it);
 * - an entry EspoCRM cannot take is never written, in neither system (so never lost);
 * - every Advoware entry with a value carries a marker of it, every empty one a slot or none;
 * - the user's text in bemerkung survives;
 * - planning again changes nothing (a fixed point). */
#include "komm.h"
#include "marker.h"
#include "phone.h"

#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 48

struct espo_item {
    char value[64];
    enum komm_class cls;
    const char *type;
};

struct advo_entry {
    char tlf[64];
    int kz; /* the true kommKz (the model's GET shows 0) */
    char bem[256];
    char note[32]; /* the user's text we expect to survive ("" = none) */
    long long id;  /* Advoware's entry id (the baseline property) */
};

struct world {
    struct espo_item e[MAXN];
    size_t ne;
    struct advo_entry a[MAXN];
    size_t na;
    const char *const *types; /* the entity's phone types */
    size_t ntypes;
    const char *dflt;
    bool near_limit; /* EspoCRM holds (nearly) 10 numbers */
};

static const char *const company_types[] = {"Office", "Mobile", "Fax", "Other"};
static const char *const person_types[] = {"Mobile", "Office", "Home", "Fax", "Other"};

static unsigned long long rng = 0x2545f4914f6cdd1dULL;
static unsigned rnd(unsigned below)
{
    return th_rand(&rng, below);
}

/* strlcpy: copies (overlap allowed), truncating. */
static void put(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memmove(dst, src, n);
    dst[n] = '\0';
}

static unsigned fresh_counter;

/* A value nobody holds yet, as EspoCRM stores it: e-mails in random case, phones E.164. */
static void fresh_espo(enum komm_class cls, char *out, size_t len)
{
    unsigned n = ++fresh_counter;
    if (cls == KOMM_EMAIL)
        snprintf(out, len, rnd(2) ? "User%u@Example.com" : "user%u@example.com", n);
    else
        snprintf(out, len, "+49511%u", 100000 + n);
}

/* The same number as a person types it into Advoware. */
static void typed_phone(const char *e164, char *out, size_t len)
{
    const char *local = e164 + strlen("+49511");
    switch (rnd(5)) {
    case 0:
        snprintf(out, len, "0511/%s", local);
        break;
    case 1:
        snprintf(out, len, "0511 %s", local);
        break;
    case 2:
        snprintf(out, len, "+49 511 %s", local);
        break;
    case 3:
        snprintf(out, len, "0049511%s", local);
        break;
    default:
        snprintf(out, len, "%s", e164);
    }
}

/* A new value typed in Advoware: nationally, in any format; one in typo_odds one EspoCRM
 * refuses. */
static void fresh_typed(enum komm_class cls, char *out, size_t len, unsigned typo_odds)
{
    char v[64];
    fresh_espo(cls, v, sizeof v);
    if (rnd(typo_odds) == 0) /* a typo EspoCRM cannot take */
        snprintf(out, len, cls == KOMM_EMAIL ? "kein%u@mail" : "0511/%uab", fresh_counter);
    else if (cls == KOMM_PHONE)
        typed_phone(v, out, len);
    else
        put(out, len, v);
}

static const char *random_type(const struct world *w)
{
    return w->types[rnd((unsigned)w->ntypes)];
}

static const char *mapped_type(const struct world *w, int kz)
{
    return komm_kz_espo_type(kz, w->types, w->ntypes, w->dflt);
}

/* The model asks libphonenumber about the same few values over and over (tens of
 * microseconds a question): it remembers komm_value_key and whether EspoCRM takes a value. The
 * planner under test asks for itself. */
#define MEMO_SLOTS 8192
static struct memo {
    char value[64];
    enum komm_class cls;
    bool used, takes;
    char key[64];
} memo[MEMO_SLOTS];

static const struct memo *remember(const char *value, enum komm_class cls)
{
    unsigned h = 2166136261u + (unsigned)cls;
    for (const char *c = value; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    struct memo *m = &memo[h % MEMO_SLOTS];
    if (m->used && m->cls == cls && strcmp(m->value, value) == 0)
        return m;
    assert_true(strlen(value) < sizeof m->value);
    char *k = komm_value_key(value, cls), *v = komm_espo_value(value, cls);
    assert_non_null(k);
    assert_true(strlen(k) < sizeof m->key);
    *m = (struct memo){.cls = cls, .used = true, .takes = v != NULL};
    put(m->value, sizeof m->value, value);
    put(m->key, sizeof m->key, k);
    free(k);
    free(v);
    return m;
}

static bool takes(const char *value, enum komm_class cls)
{
    return remember(value, cls)->takes;
}

static size_t espo_phones(const struct world *w)
{
    size_t n = 0;
    for (size_t j = 0; j < w->ne; j++)
        n += w->e[j].cls == KOMM_PHONE;
    return n;
}

/* The pair a value stands for: its komm_value_key with its type. */
static void key_of(const char *value, enum komm_class cls, const char *type, char *out, size_t len)
{
    snprintf(out, len, "%s|%s", cls == KOMM_EMAIL ? "email" : type, remember(value, cls)->key);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Sorted keys of each side into ke/ka, leaving out the entries the plan skipped and the
 * EspoCRM values they still stand for (their marker's value: a change EspoCRM could not take). */
static void keys(const struct world *w, const bool *skipped, char ke[][96], size_t *nke,
                 char ka[][96], size_t *nka)
{
    static char gone[MAXN][96];
    size_t ngone = 0;
    *nke = *nka = 0;
    for (size_t i = 0; i < w->na; i++) {
        enum komm_class cls = (enum komm_class)komm_kz_class(w->a[i].kz);
        if (skipped[i]) {
            struct marker m;
            assert_int_equal(marker_parse(w->a[i].bem, &m), 0);
            if (m.kind == MARKER_VALUE)
                key_of(m.value, cls, mapped_type(w, w->a[i].kz), gone[ngone++], 96);
            marker_free(&m);
            continue;
        }
        char *t = komm_trim(w->a[i].tlf);
        if (*t)
            key_of(t, cls, mapped_type(w, w->a[i].kz), ka[(*nka)++], 96);
        free(t);
    }
    for (size_t j = 0; j < w->ne; j++) {
        char k[96];
        key_of(w->e[j].value, w->e[j].cls, w->e[j].type, k, sizeof k);
        bool drop = false;
        for (size_t g = 0; g < ngone && !drop; g++)
            drop = strcmp(gone[g], k) == 0;
        if (!drop)
            put(ke[(*nke)++], 96, k);
    }
    qsort(ke, *nke, 96, cmp_key);
    qsort(ka, *nka, 96, cmp_key);
}

static void build_in(const struct world *w, struct komm_espo *espo, struct komm_advo *advo,
                     struct komm_in *in)
{
    for (size_t j = 0; j < w->ne; j++)
        espo[j] = (struct komm_espo){w->e[j].value, w->e[j].cls, w->e[j].type};
    for (size_t i = 0; i < w->na; i++)
        advo[i] = (struct komm_advo){w->a[i].tlf, 0 /* the GET bug */, w->a[i].bem, 0};
    in->espo = espo;
    in->nespo = w->ne;
    in->advo = advo;
    in->nadvo = w->na;
    in->phone_types = w->dflt ? w->types : NULL; /* no default: no metadata, Company */
    in->nphone_types = w->dflt ? w->ntypes : 0;
    in->default_type = w->dflt;
}

/* What EspoCRM stores for a value of the final PUT; fails the test where it would answer 400. */
static void espo_store(const struct world *w, struct espo_item *e, const char *value,
                       enum komm_class cls, const char *type)
{
    e->cls = cls;
    e->type = type;
    if (cls == KOMM_EMAIL) {
        if (!takes(value, cls))
            fail_msg("EspoCRM answers 400: e-mail address \"%s\"", value);
        put(e->value, sizeof e->value, value);
        return;
    }
    char *s = phone_espo_sanitize(value);
    assert_non_null(s);
    if (!phone_espo_valid(s))
        fail_msg("EspoCRM answers 400: phone number \"%s\"", value);
    put(e->value, sizeof e->value, s);
    free(s);
    bool known = false;
    for (size_t t = 0; type && t < w->ntypes; t++)
        known |= strcmp(w->types[t], type) == 0;
    if (!known)
        fail_msg("EspoCRM answers 400: phone type %s", type ? type : "(none)");
}

static size_t limit_skips; /* entries skipped as an 11th number */

/* Applies the plan to both systems as they would: POST adds with kommKz, PUT cannot change
 * kommKz, EspoCRM's changes arrive with the final PUT. Marks the skipped entries. */
static void apply(struct world *w, const struct komm_plan *plan, bool *skipped)
{
    struct world before = *w;
    bool removed[MAXN] = {false};
    for (size_t k = 0; k < plan->n; k++) {
        const struct komm_action *x = &plan->a[k];
        switch (x->op) {
        case KOP_ADVO_POST:
            assert_true(w->na < MAXN);
            memset(&w->a[w->na], 0, sizeof w->a[0]);
            put(w->a[w->na].tlf, sizeof w->a[0].tlf, x->tlf);
            put(w->a[w->na].bem, sizeof w->a[0].bem, x->bemerkung);
            w->a[w->na++].kz = x->kz;
            break;
        case KOP_ADVO_PUT:
            /* an entry EspoCRM cannot take is the user's: never written */
            if (*before.a[x->advo].tlf &&
                !takes(before.a[x->advo].tlf, (enum komm_class)komm_kz_class(before.a[x->advo].kz)))
                fail_msg("PUT %s over \"%s\", a value EspoCRM cannot take", komm_var_name(x->var),
                         before.a[x->advo].tlf);
            put(w->a[x->advo].tlf, sizeof w->a[0].tlf, x->tlf);
            put(w->a[x->advo].bem, sizeof w->a[0].bem, x->bemerkung);
            break;
        case KOP_ESPO_SET:
            espo_store(w, &w->e[x->espo], x->value, w->e[x->espo].cls, w->e[x->espo].type);
            break;
        case KOP_ESPO_REMOVE:
            removed[x->espo] = true;
            break;
        case KOP_SKIP:
            skipped[x->advo] = true;
            limit_skips += strstr(x->value, "höchstens 10") != NULL;
            break;
        case KOP_ESPO_ADD:
        case KOP_NOTIFY:
        case KOP_CONFLICT:
            break;
        }
    }
    size_t n = 0;
    for (size_t j = 0; j < before.ne; j++) {
        if (!removed[j])
            w->e[n++] = w->e[j];
    }
    for (size_t k = 0; k < plan->n; k++) {
        const struct komm_action *x = &plan->a[k];
        if (x->op != KOP_ESPO_ADD)
            continue;
        assert_true(n < MAXN);
        espo_store(w, &w->e[n++], x->value, x->cls, x->type);
    }
    w->ne = n;
    if (espo_phones(w) > KOMM_PHONE_MAX)
        fail_msg("EspoCRM answers 400: %zu phone numbers", espo_phones(w));
    for (size_t i = 0; i < before.na; i++) { /* skipped entries stay as they are */
        if (skipped[i] && (strcmp(w->a[i].tlf, before.a[i].tlf) != 0 ||
                           strcmp(w->a[i].bem, before.a[i].bem) != 0))
            fail_msg("skipped entry %zu was written", i);
    }
}

static size_t state_changes(const struct komm_plan *plan)
{
    size_t n = 0;
    for (size_t k = 0; k < plan->n; k++)
        n += plan->a[k].op != KOP_NOTIFY && plan->a[k].op != KOP_SKIP;
    return n;
}

/* A synced entity: each item on both sides, with markers; some slots; notes here and there. In
 * Advoware the numbers are as people typed them; now and then the entity is near the limit. */
static void synced_world(struct world *w)
{
    size_t n = rnd(6) == 0 ? 9 + rnd(2) : rnd(6);
    bool near_limit = w->near_limit = n >= 9;
    for (size_t j = 0; j < n; j++) {
        struct espo_item *e = &w->e[w->ne++];
        e->cls = near_limit || rnd(2) ? KOMM_PHONE : KOMM_EMAIL;
        e->type = e->cls == KOMM_PHONE ? random_type(w) : NULL;
        fresh_espo(e->cls, e->value, sizeof e->value);
        struct advo_entry *a = &w->a[w->na++];
        a->kz = komm_kz_for(e->cls, e->type);
        if (e->cls == KOMM_PHONE && strcmp(e->type, "Fax") == 0 && rnd(2))
            a->kz = 7; /* FaxPrivat holds a Fax too */
        if (e->cls == KOMM_PHONE && strcmp(e->type, "Other") == 0 && rnd(2))
            a->kz = 6; /* TelPrivat shows as Other on a Company entity */
        if (a->kz == 6 && strcmp(mapped_type(w, 6), e->type) != 0)
            a->kz = 10;
        if (e->cls == KOMM_PHONE)
            typed_phone(e->value, a->tlf, sizeof a->tlf);
        else
            put(a->tlf, sizeof a->tlf, e->value);
        if (rnd(3) == 0)
            snprintf(a->note, sizeof a->note, "Notiz %u", rnd(100));
        char *m = marker_format(rnd(2) ? a->tlf : e->value, a->kz, a->note);
        put(a->bem, sizeof a->bem, m);
        free(m);
    }
    for (size_t s = rnd(3); s > 0; s--) {
        struct advo_entry *a = &w->a[w->na++];
        a->kz = 1 + (int)rnd(12);
        char *m = marker_format(NULL, a->kz, NULL);
        put(a->bem, sizeof a->bem, m);
        free(m);
    }
}

/* An entity that exists on both sides but never synced: overlapping values, no markers. */
static void initial_world(struct world *w)
{
    size_t n = rnd(6);
    for (size_t j = 0; j < n; j++) {
        enum komm_class cls = rnd(2) ? KOMM_EMAIL : KOMM_PHONE;
        char v[64];
        fresh_espo(cls, v, sizeof v);
        unsigned where = rnd(3); /* 0: EspoCRM only, 1: Advoware only, 2: both */
        if (where != 1) {
            struct espo_item *e = &w->e[w->ne++];
            e->cls = cls;
            e->type = cls == KOMM_PHONE ? "Office" : NULL;
            put(e->value, sizeof e->value, v);
        }
        if (where != 0) {
            struct advo_entry *a = &w->a[w->na++];
            a->kz = cls == KOMM_PHONE ? 1 : 4;
            a->tlf[0] = ' ';
            if (cls == KOMM_PHONE)
                typed_phone(v, a->tlf + 1, sizeof a->tlf - 1);
            else
                put(a->tlf + 1, sizeof a->tlf - 1, v);
            if (rnd(3) != 0)
                put(a->tlf, sizeof a->tlf, a->tlf + 1);
            if (rnd(3) == 0)
                snprintf(a->note, sizeof a->note, "alt %u", rnd(100));
            put(a->bem, sizeof a->bem, a->note);
        }
    }
}

/* Random edits by people. Returns which sides changed. */
static void edit(struct world *w, bool *espo_changed, bool *advo_changed)
{
    for (size_t k = rnd(4); k > 0; k--) {
        bool more = w->near_limit && rnd(2); /* one more number from Advoware */
        unsigned what = more ? 3 : rnd(10);
        char v[64];
        if (what == 0 && w->ne < MAXN - 8) { /* EspoCRM: add */
            enum komm_class cls = rnd(2) ? KOMM_EMAIL : KOMM_PHONE;
            if (cls == KOMM_PHONE && espo_phones(w) >= KOMM_PHONE_MAX)
                continue; /* EspoCRM would not let the person */
            struct espo_item *e = &w->e[w->ne++];
            e->cls = cls;
            e->type = e->cls == KOMM_PHONE ? random_type(w) : NULL;
            fresh_espo(e->cls, e->value, sizeof e->value);
            *espo_changed = true;
            if (rnd(4) == 0 && w->na < MAXN - 8) { /* the same value typed in Advoware too */
                struct advo_entry *a = &w->a[w->na++];
                memset(a, 0, sizeof *a);
                if (e->cls == KOMM_PHONE) { /* a type Advoware's GET (kz 0) lets us know */
                    e->type = "Office";
                    typed_phone(e->value, a->tlf, sizeof a->tlf);
                } else {
                    put(a->tlf, sizeof a->tlf, e->value);
                }
                a->kz = komm_kz_for(e->cls, e->type);
                *advo_changed = true;
            }
        } else if (what == 1 && w->ne > 0) { /* EspoCRM: delete */
            size_t j = rnd((unsigned)w->ne);
            w->e[j] = w->e[--w->ne];
            *espo_changed = true;
        } else if (what == 2 && w->ne > 0) { /* EspoCRM: change a value */
            struct espo_item *e = &w->e[rnd((unsigned)w->ne)];
            fresh_espo(e->cls, e->value, sizeof e->value);
            *espo_changed = true;
        } else if (what == 3 && w->na < MAXN - 8) { /* Advoware: add (GET will say kz 0) */
            struct advo_entry *a = &w->a[w->na++];
            memset(a, 0, sizeof *a);
            enum komm_class cls = more || rnd(3) ? KOMM_PHONE : KOMM_EMAIL;
            a->kz = cls == KOMM_PHONE ? 1 : 4; /* what the value heuristic can tell */
            fresh_typed(cls, a->tlf, sizeof a->tlf, 8);
            if (rnd(2)) {
                snprintf(a->note, sizeof a->note, "neu %u", rnd(100));
                put(a->bem, sizeof a->bem, a->note);
            }
            *advo_changed = true;
        } else if (what == 4 && w->na > 0) { /* Advoware: a person deletes an entry */
            size_t i = rnd((unsigned)w->na);
            w->a[i] = w->a[--w->na];
            *advo_changed = true;
        } else if (what == 5 && w->na > 0) { /* Advoware: change a value */
            struct advo_entry *a = &w->a[rnd((unsigned)w->na)];
            if (!*a->tlf)
                continue;
            fresh_typed((enum komm_class)komm_kz_class(a->kz), v, sizeof v, 3);
            put(a->tlf, sizeof a->tlf, v);
            *advo_changed = true;
        } else if (what == 6 && w->na > 0) { /* Advoware: empty an entry */
            struct advo_entry *a = &w->a[rnd((unsigned)w->na)];
            a->tlf[0] = '\0';
            *advo_changed = true;
        } else if (what == 7 && w->na > 0) { /* Advoware: a note after the marker */
            struct advo_entry *a = &w->a[rnd((unsigned)w->na)];
            struct marker m;
            assert_int_equal(marker_parse(a->bem, &m), 0);
            if (m.kind != MARKER_NONE && !*a->note) {
                snprintf(a->note, sizeof a->note, "Rückruf %u", rnd(100));
                size_t l = strlen(a->bem);
                a->bem[l] = ' ';
                put(a->bem + l + 1, sizeof a->bem - l - 1, a->note);
                *advo_changed = true;
            }
            marker_free(&m);
        } else if (what == 8 && w->na > 0) { /* Advoware: the same number in another format */
            struct advo_entry *a = &w->a[rnd((unsigned)w->na)];
            if (komm_kz_class(a->kz) == KOMM_PHONE && takes(a->tlf, KOMM_PHONE) &&
                strncmp(remember(a->tlf, KOMM_PHONE)->key, "+49511", 6) == 0) {
                char e164[64];
                put(e164, sizeof e164, remember(a->tlf, KOMM_PHONE)->key);
                typed_phone(e164, a->tlf, sizeof a->tlf);
                *advo_changed = true;
            }
        }
    }
}

static void check_notes(const struct world *w)
{
    for (size_t i = 0; i < w->na; i++) {
        struct marker m;
        assert_int_equal(marker_parse(w->a[i].bem, &m), 0);
        if (*w->a[i].note)
            assert_string_equal(m.user, w->a[i].note);
        marker_free(&m);
    }
}

static void check_markers(const struct world *w, const bool *skipped)
{
    for (size_t i = 0; i < w->na; i++) {
        if (skipped[i])
            continue;
        struct marker m;
        assert_int_equal(marker_parse(w->a[i].bem, &m), 0);
        char *t = komm_trim(w->a[i].tlf);
        if (*t) {
            assert_int_equal(m.kind, MARKER_VALUE);
            enum komm_class cls = (enum komm_class)komm_kz_class(m.kz);
            assert_string_equal(remember(m.value, cls)->key, remember(t, cls)->key);
            assert_int_equal(m.kz, w->a[i].kz); /* the marker knows the true kommKz */
        } else {
            assert_int_not_equal(m.kind, MARKER_VALUE);
        }
        free(t);
        marker_free(&m);
    }
}

static void dump(const struct world *w, const struct komm_plan *plan)
{
    for (size_t j = 0; j < w->ne; j++)
        print_message("  espo[%zu] %s %s\n", j, w->e[j].type ? w->e[j].type : "email",
                      w->e[j].value);
    for (size_t i = 0; i < w->na; i++)
        print_message("  advo[%zu] kz=%d tlf=%s bem=%s\n", i, w->a[i].kz, w->a[i].tlf, w->a[i].bem);
    for (size_t k = 0; plan && k < plan->n; k++)
        print_message("  action %d %s advo=%zu espo=%zu tlf=%s bem=%s value=%s\n", plan->a[k].op,
                      komm_var_name(plan->a[k].var), plan->a[k].advo, plan->a[k].espo,
                      plan->a[k].tlf ? plan->a[k].tlf : "",
                      plan->a[k].bemerkung ? plan->a[k].bemerkung : "",
                      plan->a[k].value ? plan->a[k].value : "");
}

static size_t planned_runs, planned_actions, skips, rounds_after_skip; /* what the property saw */

/* One planned run on w with the given flags, and every check. Returns whether the plan was
 * deferred (the caller then keeps the old hash: Advoware counts as changed next time). */
static bool run_round(struct world *w, int iteration, bool initial, bool espo_changed,
                      bool advo_changed, bool *skipped_before)
{
    bool to_advoware = !initial && espo_changed && advo_changed && rnd(3) == 0;
    struct komm_espo espo[MAXN];
    struct komm_advo advo[MAXN];
    struct komm_in in = {.initial = initial,
                         .espo_changed = espo_changed,
                         .advo_changed = advo_changed,
                         .dir = to_advoware ? KOMM_TO_ADVOWARE : KOMM_BOTH};
    build_in(w, espo, advo, &in);
    if (!komm_needs_plan(&in))
        return false;
    struct komm_plan plan;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    struct world before = *w;
    bool skipped[MAXN] = {false};
    planned_runs++;
    planned_actions += plan.n;
    rounds_after_skip += *skipped_before;
    if (getenv("PROP_DEBUG") && atoi(getenv("PROP_DEBUG")) == iteration) {
        print_message("flags initial=%d espo=%d advo=%d to_advoware=%d\n", initial, espo_changed,
                      advo_changed, to_advoware);
        dump(&before, &plan);
    }
    apply(w, &plan, skipped);
    if (getenv("PROP_DEBUG") && atoi(getenv("PROP_DEBUG")) == iteration)
        dump(w, NULL);
    bool deferred = plan.deferred;
    komm_plan_free(&plan);
    for (size_t i = 0; i < MAXN; i++) {
        skips += skipped[i];
        *skipped_before |= skipped[i];
    }

    static char ke[MAXN][96], ka[MAXN][96];
    size_t nke, nka;
    keys(w, skipped, ke, &nke, ka, &nka);
    if (to_advoware) {
        /* EspoCRM unchanged; everything it holds is in Advoware */
        assert_int_equal(w->ne, before.ne);
        for (size_t j = 0; j < w->ne; j++)
            assert_string_equal(w->e[j].value, before.e[j].value);
        for (size_t j = 0; j < nke; j++) {
            if (!bsearch(ke[j], ka, nka, 96, cmp_key))
                fail_msg("iteration %d: EspoCRM's %s is not in Advoware", iteration, ke[j]);
        }
    } else {
        bool same = nke == nka;
        for (size_t j = 0; same && j < nke; j++)
            same = strcmp(ke[j], ka[j]) == 0;
        if (!same) {
            for (size_t j = 0; j < nke; j++)
                print_message("espo %s\n", ke[j]);
            for (size_t j = 0; j < nka; j++)
                print_message("advo %s\n", ka[j]);
            fail_msg("iteration %d: the sides differ", iteration);
        }
        check_markers(w, skipped);
    }
    check_notes(w);

    /* A fixed point: planning again (as if everything changed) changes nothing. */
    build_in(w, espo, advo, &in);
    in.initial = false;
    in.espo_changed = in.advo_changed = true;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    if (state_changes(&plan) != 0)
        fail_msg("iteration %d: not a fixed point (%zu actions, first %s)", iteration,
                 state_changes(&plan), komm_var_name(plan.a[0].var));
    komm_plan_free(&plan);
    return deferred;
}

/* An entity through up to four runs, people editing before each. */
static void run_one(int iteration)
{
    static struct world w;
    memset(&w, 0, sizeof w);
    if (rnd(3) == 0) {
        w.types = person_types;
        w.ntypes = sizeof person_types / sizeof person_types[0];
        w.dflt = "Mobile";
    } else if (rnd(2)) {
        w.types = company_types;
        w.ntypes = sizeof company_types / sizeof company_types[0];
        w.dflt = "Office";
    } else { /* no metadata: the planner's Company default */
        w.types = company_types;
        w.ntypes = sizeof company_types / sizeof company_types[0];
    }
    bool initial = rnd(4) == 0, skipped_before = false, deferred = false;
    if (initial)
        initial_world(&w);
    else
        synced_world(&w);
    for (unsigned round = 0, rounds = 1 + rnd(4); round < rounds; round++) {
        bool espo_changed = initial, advo_changed = deferred;
        if (!initial)
            edit(&w, &espo_changed, &advo_changed);
        deferred = run_round(&w, iteration, initial, espo_changed, advo_changed, &skipped_before);
        initial = false;
    }
}

/* Entities per run: libphonenumber costs tens of microseconds a number, a hundred times that
 * under valgrind (which runs every unit test again); PROP_ITERATIONS overrides. */
static int iterations(void)
{
    if (getenv("PROP_ITERATIONS"))
        return atoi(getenv("PROP_ITERATIONS"));
#ifdef RUNNING_ON_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 150;
#endif
    return 3000;
}

static void test_property(void **state)
{
    (void)state;
    int n = iterations();
    for (int i = 0; i < n; i++)
        run_one(i);
    print_message("%zu runs of %d entities planned, %zu actions applied, %zu entries skipped "
                  "(%zu as an 11th number), %zu runs after a skip\n",
                  planned_runs, n, planned_actions, skips, limit_skips, rounds_after_skip);
    /* the property saw enough: most entities planned, and skips followed by further runs */
    assert_true(planned_runs > (size_t)n && planned_actions > 2 * (size_t)n &&
                skips > (size_t)n / 25 && limit_skips > 0 && rounds_after_skip > (size_t)n / 100);
}

/* ---- the baseline property: per entry, with a failure in every run but the last --------------
 *
 * SPEC §5.2/§5.3: whatever single call fails — an Advoware call refused (the rest run), one whose
 * effect happened but whose answer was lost (the rest stop), or the final EspoCRM PUT (every
 * Advoware write done, nothing of EspoCRM's side) — the next run converges without losing a
 * person's edit. Entities start synced with a baseline; people edit both sides; each run fails
 * at a random point until one succeeds (then, and only then, the baseline advances, as the
 * final PUT carries it). After it: both sides equal, markers right, notes kept, a fixed point,
 * and every edit a person made present (or, where the same entry was edited on both sides,
 * EspoCRM's). */

struct base_entry {
    long long id;
    int kz;
    char value[64];
    enum komm_class cls;
};

struct bworld {
    struct world w;
    struct base_entry b[MAXN];
    size_t nb;
    long long next_id;
    bool advo_moved; /* an Advoware write since the last successful run (the hash differs) */
};

struct expect {
    char key[64];
    enum komm_class cls;
    bool present;
};

static struct expect expects[4 * MAXN];
static size_t nexpects;

static void want_value(const char *value, enum komm_class cls, bool present)
{
    const char *key = remember(value, cls)->key;
    for (size_t k = 0; k < nexpects; k++) {
        if (expects[k].cls == cls && strcmp(expects[k].key, key) == 0) {
            expects[k].present = present;
            return;
        }
    }
    assert_true(nexpects < sizeof expects / sizeof expects[0]);
    expects[nexpects] = (struct expect){.cls = cls, .present = present};
    put(expects[nexpects++].key, sizeof expects[0].key, key);
}

static const struct base_entry *base_of(const struct bworld *bw, long long id)
{
    for (size_t b = 0; b < bw->nb; b++) {
        if (bw->b[b].id == id)
            return &bw->b[b];
    }
    return NULL;
}

/* Whether EspoCRM's people changed or deleted the item of key this round. */
static bool espo_touched(const char (*touched)[64], size_t n, const char *key)
{
    for (size_t k = 0; k < n; k++) {
        if (strcmp(touched[k], key) == 0)
            return true;
    }
    return false;
}

/* People edit both sides; what must come out of it goes into expects. */
static void edit_tracked(struct bworld *bw)
{
    struct world *w = &bw->w;
    static char touched[MAXN][64]; /* EspoCRM keys changed or deleted this round */
    size_t ntouched = 0;
    struct {
        long long id;
        char value[64]; /* "" = emptied or deleted */
    } advo_edit[MAXN];
    size_t nadvo_edit = 0, phones = espo_phones(w);
    nexpects = 0;
    for (size_t k = 1 + rnd(4); k > 0; k--) {
        unsigned what = rnd(7);
        char v[64];
        if (what == 0 && w->ne < MAXN - 8) { /* EspoCRM: add */
            enum komm_class cls = rnd(2) ? KOMM_EMAIL : KOMM_PHONE;
            if (cls == KOMM_PHONE && phones >= KOMM_PHONE_MAX - 1)
                continue;
            struct espo_item *e = &w->e[w->ne++];
            e->cls = cls;
            e->type = cls == KOMM_PHONE ? random_type(w) : NULL;
            fresh_espo(cls, e->value, sizeof e->value);
            phones += cls == KOMM_PHONE;
            want_value(e->value, cls, true);
        } else if ((what == 1 || what == 2) && w->ne > 0) { /* EspoCRM: delete or change */
            size_t j = rnd((unsigned)w->ne);
            struct espo_item *e = &w->e[j];
            put(touched[ntouched++], 64, remember(e->value, e->cls)->key);
            want_value(e->value, e->cls, false);
            if (what == 1) {
                phones -= e->cls == KOMM_PHONE;
                w->e[j] = w->e[--w->ne];
            } else {
                fresh_espo(e->cls, e->value, sizeof e->value);
                want_value(e->value, e->cls, true);
            }
        } else if (what == 3 && w->na < MAXN - 8) { /* Advoware: add */
            struct advo_entry *a = &w->a[w->na++];
            memset(a, 0, sizeof *a);
            enum komm_class cls = rnd(2) ? KOMM_PHONE : KOMM_EMAIL;
            a->kz = cls == KOMM_PHONE ? 1 : 4;
            a->id = bw->next_id++;
            fresh_typed(cls, a->tlf, sizeof a->tlf, 6);
            if (takes(a->tlf, cls) && (cls == KOMM_EMAIL || phones < KOMM_PHONE_MAX - 1)) {
                phones += cls == KOMM_PHONE;
                want_value(a->tlf, cls, true);
            }
            bw->advo_moved = true;
        } else if (what >= 4 && w->na > 0) { /* Advoware: change, empty or delete an entry */
            size_t i = rnd((unsigned)w->na);
            struct advo_entry *a = &w->a[i];
            if (!base_of(bw, a->id) || !*a->tlf || nadvo_edit >= MAXN)
                continue;
            advo_edit[nadvo_edit].id = a->id;
            advo_edit[nadvo_edit].value[0] = '\0';
            if (what == 4) {
                fresh_typed((enum komm_class)komm_kz_class(a->kz), v, sizeof v, 6);
                put(a->tlf, sizeof a->tlf, v);
                put(advo_edit[nadvo_edit].value, 64, v);
            } else if (what == 5) {
                a->tlf[0] = '\0';
            } else {
                w->a[i] = w->a[--w->na];
            }
            nadvo_edit++;
            bw->advo_moved = true;
        }
    }
    /* Advoware's edits of baseline entries, now that EspoCRM's are known: the same entry edited
     * on both sides goes EspoCRM's way. An entry edited twice counts by its last edit. */
    for (size_t k = nadvo_edit; k-- > 0;) {
        bool later = false;
        for (size_t l = k + 1; l < nadvo_edit && !later; l++)
            later = advo_edit[l].id == advo_edit[k].id;
        const struct base_entry *b = base_of(bw, advo_edit[k].id);
        if (later || espo_touched(touched, ntouched, remember(b->value, b->cls)->key))
            continue; /* EspoCRM's expectations stand */
        if (*advo_edit[k].value && !takes(advo_edit[k].value, b->cls))
            continue; /* a value EspoCRM cannot take: reported, EspoCRM keeps the old one */
        want_value(b->value, b->cls, false);
        if (*advo_edit[k].value)
            want_value(advo_edit[k].value, b->cls, true);
    }
}

enum fail_mode { F_NONE, F_STATUS, F_LOST, F_FINAL };

static size_t espo_phones_n(const struct world *w, size_t n)
{
    size_t phones = 0;
    for (size_t j = 0; j < n; j++)
        phones += w->e[j].cls == KOMM_PHONE;
    return phones;
}

/* Applies plan with a failure: F_STATUS, the Advoware call `at` is refused and the rest run;
 * F_LOST, its effect happens, its answer is lost and the rest stop; F_FINAL, every Advoware call
 * succeeds and the final EspoCRM PUT fails. EspoCRM's side arrives with the run's last PUT (the
 * data, or the failure's status write) for every action whose Advoware half succeeded. On
 * success the baseline becomes what the plan agreed. */
static void apply_failing(struct bworld *bw, const struct komm_plan *plan, enum fail_mode mode,
                          size_t at, bool *skipped)
{
    struct world *w = &bw->w, before = *w;
    bool ok[64] = {false}, removed[MAXN] = {false}, stopped = false;
    long long post_id[64] = {0};
    assert_true(plan->n < 64);
    for (size_t k = 0, call = 0; k < plan->n; k++) {
        const struct komm_action *x = &plan->a[k];
        if (x->op == KOP_SKIP)
            skipped[x->advo] = true;
        if (x->op != KOP_ADVO_POST && x->op != KOP_ADVO_PUT)
            continue;
        bool fails = (mode == F_STATUS || mode == F_LOST) && call++ == at;
        if (stopped || (fails && mode == F_STATUS))
            continue;
        bw->advo_moved = true;
        if (x->op == KOP_ADVO_POST) {
            assert_true(w->na < MAXN);
            struct advo_entry *a = &w->a[w->na++];
            memset(a, 0, sizeof *a);
            put(a->tlf, sizeof a->tlf, x->tlf);
            put(a->bem, sizeof a->bem, x->bemerkung);
            a->kz = x->kz;
            a->id = post_id[k] = bw->next_id++;
        } else {
            if (*before.a[x->advo].tlf &&
                !takes(before.a[x->advo].tlf, (enum komm_class)komm_kz_class(before.a[x->advo].kz)))
                fail_msg("PUT %s over \"%s\", a value EspoCRM cannot take", komm_var_name(x->var),
                         before.a[x->advo].tlf);
            put(w->a[x->advo].tlf, sizeof w->a[0].tlf, x->tlf);
            put(w->a[x->advo].bem, sizeof w->a[0].bem, x->bemerkung);
        }
        ok[k] = !fails;
        stopped = fails; /* F_LOST: no answer, the rest wait */
    }
    if (mode == F_FINAL)
        return;
    size_t n = 0;
    for (size_t k = 0; k < plan->n; k++) {
        const struct komm_action *x = &plan->a[k];
        bool half = x->after < 0 || ok[x->after];
        if (x->op == KOP_ESPO_SET && half)
            espo_store(w, &w->e[x->espo], x->value, w->e[x->espo].cls, w->e[x->espo].type);
        if (x->op == KOP_ESPO_REMOVE && half)
            removed[x->espo] = true;
    }
    for (size_t j = 0; j < before.ne; j++) {
        if (!removed[j])
            w->e[n++] = w->e[j];
    }
    for (size_t k = 0; k < plan->n; k++) {
        const struct komm_action *x = &plan->a[k];
        /* as kommsync does: never an 11th number (a removal whose half failed made no room) */
        if (x->op == KOP_ESPO_ADD && (x->after < 0 || ok[x->after]) &&
            (x->cls == KOMM_EMAIL || espo_phones_n(w, n) < KOMM_PHONE_MAX))
            espo_store(w, &w->e[n++], x->value, x->cls, x->type);
    }
    w->ne = n;
    if (espo_phones(w) > KOMM_PHONE_MAX)
        fail_msg("EspoCRM answers 400: %zu phone numbers", espo_phones(w));
    if (mode != F_NONE)
        return;
    bw->nb = 0; /* the final PUT carries the new baseline */
    for (size_t i = 0; i < plan->nagreed; i++) {
        if (plan->agreed[i]) {
            bw->b[bw->nb] = (struct base_entry){before.a[i].id, plan->agreed_kz[i], "",
                                                (enum komm_class)komm_kz_class(plan->agreed_kz[i])};
            put(bw->b[bw->nb++].value, 64, plan->agreed[i]);
        }
    }
    for (size_t k = 0; k < plan->n; k++) {
        if (plan->a[k].op == KOP_ADVO_POST && ok[k]) {
            bw->b[bw->nb] = (struct base_entry){post_id[k], plan->a[k].kz, "", plan->a[k].cls};
            put(bw->b[bw->nb++].value, 64, plan->a[k].value);
        }
    }
    bw->advo_moved = false;
}

static void build_in_base(const struct bworld *bw, struct komm_espo *espo, struct komm_advo *advo,
                          struct komm_base *base, struct komm_in *in)
{
    build_in(&bw->w, espo, advo, in);
    for (size_t i = 0; i < bw->w.na; i++)
        advo[i].id = bw->w.a[i].id;
    for (size_t b = 0; b < bw->nb; b++)
        base[b] = (struct komm_base){bw->b[b].id, bw->b[b].kz, bw->b[b].value, bw->b[b].cls};
    in->base = base;
    in->nbase = bw->nb;
    in->has_base = true;
    in->advo_changed = bw->advo_moved;
}

static size_t base_runs, base_failed_runs, base_expects;

static void check_expectations(const struct bworld *bw, const bool *skipped, int iteration)
{
    for (size_t k = 0; k < nexpects; k++) {
        const struct expect *x = &expects[k];
        bool in_espo = false, in_advo = false;
        for (size_t j = 0; j < bw->w.ne; j++)
            in_espo |= bw->w.e[j].cls == x->cls &&
                       strcmp(remember(bw->w.e[j].value, x->cls)->key, x->key) == 0;
        for (size_t i = 0; i < bw->w.na; i++)
            in_advo |= !skipped[i] && *bw->w.a[i].tlf &&
                       komm_kz_class(bw->w.a[i].kz) == (int)x->cls &&
                       strcmp(remember(bw->w.a[i].tlf, x->cls)->key, x->key) == 0;
        if (in_espo != x->present || in_advo != x->present)
            fail_msg("iteration %d: %s should be %s, EspoCRM %s, Advoware %s", iteration, x->key,
                     x->present ? "present" : "gone", in_espo ? "has it" : "has not",
                     in_advo ? "has it" : "has not");
        base_expects++;
    }
}

/* Rounds of edits, each followed by runs that fail at a random point until one succeeds. */
static void run_one_base(int iteration)
{
    static struct bworld bw;
    memset(&bw, 0, sizeof bw);
    bw.w.types = company_types;
    bw.w.ntypes = sizeof company_types / sizeof company_types[0];
    bw.w.dflt = "Office";
    synced_world(&bw.w);
    bw.w.near_limit = false;
    bw.next_id = 1;
    for (size_t i = 0; i < bw.w.na; i++) {
        bw.w.a[i].id = bw.next_id++;
        if (i < bw.w.ne) { /* synced_world pairs item i with entry i */
            bw.b[bw.nb] = (struct base_entry){bw.w.a[i].id, bw.w.a[i].kz, "", bw.w.e[i].cls};
            put(bw.b[bw.nb++].value, 64, bw.w.e[i].value);
        }
    }
    for (unsigned round = 0, rounds = 1 + rnd(3); round < rounds; round++) {
        edit_tracked(&bw);
        bool skipped[MAXN] = {false};
        for (unsigned attempt = 0;; attempt++) {
            struct komm_espo espo[MAXN];
            struct komm_advo advo[MAXN];
            struct komm_base base[MAXN];
            struct komm_in in = {.dir = KOMM_BOTH};
            build_in_base(&bw, espo, advo, base, &in);
            bool needed = komm_needs_plan(&in);
            struct komm_plan plan;
            assert_int_equal(komm_plan_make(&in, &plan), 0);
            if (!needed) { /* nothing to do; what was skipped before still is */
                memset(skipped, 0, sizeof skipped);
                for (size_t k = 0; k < plan.n; k++) {
                    if (plan.a[k].op == KOP_SKIP)
                        skipped[plan.a[k].advo] = true;
                }
                komm_plan_free(&plan);
                break;
            }
            size_t calls = 0;
            for (size_t k = 0; k < plan.n; k++)
                calls += plan.a[k].op == KOP_ADVO_POST || plan.a[k].op == KOP_ADVO_PUT;
            enum fail_mode mode = attempt >= 3 || rnd(3) == 0 ? F_NONE
                                  : calls && rnd(3)           ? (rnd(2) ? F_STATUS : F_LOST)
                                                              : F_FINAL;
            if (getenv("PROP_DEBUG") && atoi(getenv("PROP_DEBUG")) == iteration) {
                print_message("round %u attempt %u mode %d\n", round, attempt, mode);
                dump(&bw.w, &plan);
            }
            memset(skipped, 0, sizeof skipped);
            apply_failing(&bw, &plan, mode, calls ? rnd((unsigned)calls) : 0, skipped);
            komm_plan_free(&plan);
            base_runs++;
            base_failed_runs += mode != F_NONE;
            if (mode == F_NONE)
                break;
        }
        static char ke[MAXN][96], ka[MAXN][96];
        size_t nke, nka;
        keys(&bw.w, skipped, ke, &nke, ka, &nka);
        bool same = nke == nka;
        for (size_t j = 0; same && j < nke; j++)
            same = strcmp(ke[j], ka[j]) == 0;
        if (!same) {
            dump(&bw.w, NULL);
            for (size_t j = 0; j < nke; j++)
                print_message("espo %s\n", ke[j]);
            for (size_t j = 0; j < nka; j++)
                print_message("advo %s\n", ka[j]);
            fail_msg("iteration %d: the sides differ", iteration);
        }
        check_markers(&bw.w, skipped);
        check_notes(&bw.w);
        check_expectations(&bw, skipped, iteration);
        /* a fixed point: planning again against the new baseline writes nothing */
        struct komm_espo espo[MAXN];
        struct komm_advo advo[MAXN];
        struct komm_base base[MAXN];
        struct komm_in in = {.dir = KOMM_BOTH};
        build_in_base(&bw, espo, advo, base, &in);
        in.advo_changed = true;
        struct komm_plan plan;
        assert_int_equal(komm_plan_make(&in, &plan), 0);
        if (state_changes(&plan) != 0) {
            dump(&bw.w, &plan);
            fail_msg("iteration %d: not a fixed point", iteration);
        }
        komm_plan_free(&plan);
    }
}

static void test_property_baseline_with_failures(void **state)
{
    (void)state;
    int n = iterations();
#ifdef RUNNING_ON_VALGRIND
    if (RUNNING_ON_VALGRIND && !getenv("PROP_ITERATIONS"))
        n = 50; /* each entity runs several times here */
#endif
    for (int i = 0; i < n; i++)
        run_one_base(i);
    print_message("baseline: %zu runs of %d entities, %zu of them failed halfway, %zu edits "
                  "checked\n",
                  base_runs, n, base_failed_runs, base_expects);
    assert_true(base_failed_runs > (size_t)n / 2 && base_expects > (size_t)n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_property),
                                       cmocka_unit_test(test_property_baseline_with_failures)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
