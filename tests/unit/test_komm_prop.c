/* test_komm_prop.c: a property test of the Kommunikation planner (worker/komm.c). Random
 * EspoCRM and Advoware lists, random edits on either side (people add, delete and change
 * entries, write notes into bemerkung, empty entries in Advoware), then the planner's actions
 * applied to a tiny in-memory model of both systems, Advoware's quirks included (GET shows
 * kommKz 0, PUT cannot change kommKz, nothing is ever deleted by the API). Afterwards:
 * - both sides hold the same set of (value, type) pairs (EspoCRM wins under to_advoware, where
 *   EspoCRM must not change and Advoware must hold all of it);
 * - every Advoware entry with a value carries a marker, every empty one a slot marker or none;
 * - the user's text in bemerkung survives;
 * - planning again changes nothing (a fixed point). */
#include "komm.h"
#include "marker.h"

#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
};

struct world {
    struct espo_item e[MAXN];
    size_t ne;
    struct advo_entry a[MAXN];
    size_t na;
};

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
static const char *const phone_types[] = {"Office", "Fax", "Mobile", "Home", "Other"};

/* A value nobody holds yet; e-mails in random case. */
static void fresh_value(enum komm_class cls, char *out, size_t len)
{
    unsigned n = ++fresh_counter;
    if (cls == KOMM_EMAIL)
        snprintf(out, len, rnd(2) ? "User%u@Example.com" : "user%u@example.com", n);
    else
        snprintf(out, len, "+49 511 %u", 100000 + n);
}

/* The pair a value stands for: trimmed, e-mails lower case, with its type. */
static void key_of(const char *value, enum komm_class cls, const char *type, char *out, size_t len)
{
    char *t = komm_trim(value);
    for (char *p = t; cls == KOMM_EMAIL && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(out, len, "%s|%s", cls == KOMM_EMAIL ? "email" : type, t);
    free(t);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Sorted keys of each side into ke/ka; returns counts. */
static void keys(const struct world *w, char ke[][96], size_t *nke, char ka[][96], size_t *nka)
{
    *nke = *nka = 0;
    for (size_t j = 0; j < w->ne; j++)
        key_of(w->e[j].value, w->e[j].cls, w->e[j].type, ke[(*nke)++], 96);
    for (size_t i = 0; i < w->na; i++) {
        char *t = komm_trim(w->a[i].tlf);
        if (*t)
            key_of(t, (enum komm_class)komm_kz_class(w->a[i].kz), komm_kz_type(w->a[i].kz),
                   ka[(*nka)++], 96);
        free(t);
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
        advo[i] = (struct komm_advo){w->a[i].tlf, 0 /* the GET bug */, w->a[i].bem};
    in->espo = espo;
    in->nespo = w->ne;
    in->advo = advo;
    in->nadvo = w->na;
}

/* Applies the plan to both systems as they would: POST adds with kommKz, PUT cannot change
 * kommKz, EspoCRM's changes arrive with the final PUT. */
static void apply(struct world *w, const struct komm_plan *plan)
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
            put(w->a[x->advo].tlf, sizeof w->a[0].tlf, x->tlf);
            put(w->a[x->advo].bem, sizeof w->a[0].bem, x->bemerkung);
            break;
        case KOP_ESPO_SET:
            put(w->e[x->espo].value, sizeof w->e[0].value, x->value);
            break;
        case KOP_ESPO_REMOVE:
            removed[x->espo] = true;
            break;
        case KOP_ESPO_ADD:
        case KOP_NOTIFY:
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
        put(w->e[n].value, sizeof w->e[0].value, x->value);
        w->e[n].cls = x->cls;
        w->e[n++].type = x->type;
    }
    w->ne = n;
}

static size_t state_changes(const struct komm_plan *plan)
{
    size_t n = 0;
    for (size_t k = 0; k < plan->n; k++)
        n += plan->a[k].op != KOP_NOTIFY;
    return n;
}

/* A synced entity: each item on both sides, with markers; some slots; notes here and there. */
static void synced_world(struct world *w)
{
    memset(w, 0, sizeof *w);
    size_t n = rnd(6);
    for (size_t j = 0; j < n; j++) {
        struct espo_item *e = &w->e[w->ne++];
        e->cls = rnd(2) ? KOMM_EMAIL : KOMM_PHONE;
        e->type = e->cls == KOMM_PHONE ? phone_types[rnd(5)] : NULL;
        fresh_value(e->cls, e->value, sizeof e->value);
        struct advo_entry *a = &w->a[w->na++];
        a->kz = komm_kz_for(e->cls, e->type);
        if (e->cls == KOMM_PHONE && e->type && strcmp(e->type, "Fax") == 0 && rnd(2))
            a->kz = 7; /* FaxPrivat holds a Fax too */
        put(a->tlf, sizeof a->tlf, e->value);
        if (rnd(3) == 0)
            snprintf(a->note, sizeof a->note, "Notiz %u", rnd(100));
        char *m = marker_format(e->value, a->kz, a->note);
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
    memset(w, 0, sizeof *w);
    size_t n = rnd(6);
    for (size_t j = 0; j < n; j++) {
        enum komm_class cls = rnd(2) ? KOMM_EMAIL : KOMM_PHONE;
        char v[64];
        fresh_value(cls, v, sizeof v);
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
        unsigned what = rnd(9);
        char v[64];
        if (what == 0 && w->ne < MAXN - 8) { /* EspoCRM: add */
            struct espo_item *e = &w->e[w->ne++];
            e->cls = rnd(2) ? KOMM_EMAIL : KOMM_PHONE;
            e->type = e->cls == KOMM_PHONE ? phone_types[rnd(5)] : NULL;
            fresh_value(e->cls, e->value, sizeof e->value);
            *espo_changed = true;
            if (rnd(4) == 0 && w->na < MAXN - 8) { /* the same value typed in Advoware too */
                struct advo_entry *a = &w->a[w->na++];
                memset(a, 0, sizeof *a);
                if (e->cls == KOMM_PHONE) /* a type Advoware's GET (kz 0) lets us know */
                    e->type = "Office";
                a->kz = komm_kz_for(e->cls, e->type);
                put(a->tlf, sizeof a->tlf, e->value);
                *advo_changed = true;
            }
        } else if (what == 1 && w->ne > 0) { /* EspoCRM: delete */
            size_t j = rnd((unsigned)w->ne);
            w->e[j] = w->e[--w->ne];
            *espo_changed = true;
        } else if (what == 2 && w->ne > 0) { /* EspoCRM: change a value */
            struct espo_item *e = &w->e[rnd((unsigned)w->ne)];
            fresh_value(e->cls, e->value, sizeof e->value);
            *espo_changed = true;
        } else if (what == 3 && w->na < MAXN - 8) { /* Advoware: add (GET will say kz 0) */
            struct advo_entry *a = &w->a[w->na++];
            memset(a, 0, sizeof *a);
            enum komm_class cls = rnd(2) ? KOMM_EMAIL : KOMM_PHONE;
            a->kz = cls == KOMM_PHONE ? 1 : 4; /* what the value heuristic can tell */
            fresh_value(cls, a->tlf, sizeof a->tlf);
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
            fresh_value((enum komm_class)komm_kz_class(a->kz), v, sizeof v);
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

static void check_markers(const struct world *w)
{
    for (size_t i = 0; i < w->na; i++) {
        struct marker m;
        assert_int_equal(marker_parse(w->a[i].bem, &m), 0);
        char *t = komm_trim(w->a[i].tlf);
        if (*t) {
            assert_int_equal(m.kind, MARKER_VALUE);
            assert_true(komm_value_eq(m.value, t, (enum komm_class)komm_kz_class(m.kz)));
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

static size_t planned_runs, planned_actions; /* how much the property saw */

static void run_one(int iteration)
{
    struct world w;
    bool initial = rnd(4) == 0;
    bool espo_changed = initial, advo_changed = false;
    if (initial)
        initial_world(&w);
    else
        synced_world(&w);
    if (!initial)
        edit(&w, &espo_changed, &advo_changed);
    bool to_advoware = !initial && espo_changed && advo_changed && rnd(3) == 0;

    struct komm_espo espo[MAXN];
    struct komm_advo advo[MAXN];
    struct komm_in in = {.initial = initial,
                         .espo_changed = espo_changed,
                         .advo_changed = advo_changed,
                         .dir = to_advoware ? KOMM_TO_ADVOWARE : KOMM_BOTH};
    build_in(&w, espo, advo, &in);
    if (!komm_needs_plan(&in))
        return;
    struct komm_plan plan;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    struct world before = w;
    planned_runs++;
    planned_actions += plan.n;
    apply(&w, &plan);
    if (getenv("PROP_DEBUG") && atoi(getenv("PROP_DEBUG")) == iteration) {
        print_message("flags initial=%d espo=%d advo=%d to_advoware=%d\n", initial, espo_changed,
                      advo_changed, to_advoware);
        dump(&before, &plan);
        dump(&w, NULL);
    }
    komm_plan_free(&plan);

    static char ke[MAXN][96], ka[MAXN][96];
    size_t nke, nka;
    keys(&w, ke, &nke, ka, &nka);
    if (to_advoware) {
        /* EspoCRM unchanged; everything it holds is in Advoware */
        assert_int_equal(w.ne, before.ne);
        for (size_t j = 0; j < w.ne; j++)
            assert_string_equal(w.e[j].value, before.e[j].value);
        for (size_t j = 0; j < nke; j++)
            assert_non_null(bsearch(ke[j], ka, nka, 96, cmp_key));
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
        check_markers(&w);
    }
    check_notes(&w);

    /* A fixed point: planning again (as if everything changed) changes nothing. */
    build_in(&w, espo, advo, &in);
    in.initial = false;
    in.espo_changed = in.advo_changed = true;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    if (state_changes(&plan) != 0)
        fail_msg("iteration %d: not a fixed point (%zu actions, first %s)", iteration,
                 state_changes(&plan), komm_var_name(plan.a[0].var));
    komm_plan_free(&plan);
}

static void test_property(void **state)
{
    (void)state;
    for (int i = 0; i < 20000; i++)
        run_one(i);
    print_message("%zu of 20000 entities planned, %zu actions applied\n", planned_runs,
                  planned_actions);
    assert_true(planned_runs > 10000 && planned_actions > 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_property)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
