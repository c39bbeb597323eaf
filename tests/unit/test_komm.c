/* test_komm.c: the Kommunikation decisions (worker/komm.c, SPEC §5.4): the kommKz table both
 * ways, the value heuristic, value comparison, validation, the hash, and the planner by table:
 * one row per variant and per seed example (the seed's own values), the initial value match,
 * slot reuse, the revert, the type change, kommKz 0 from GET, to_advoware, e-mails compared
 * without case, user text kept through every rewrite. */
#include "komm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_kz_table(void **state)
{
    (void)state;
    static const struct {
        int kz;
        const char *name;
        int cls;
        const char *type;
    } rows[] = {
        {1, "TelGesch", KOMM_PHONE, "Office"},
        {2, "FaxGesch", KOMM_PHONE, "Fax"},
        {3, "Mobil", KOMM_PHONE, "Mobile"},
        {4, "MailGesch", KOMM_EMAIL, NULL},
        {5, "Internet", KOMM_EMAIL, NULL},
        {6, "TelPrivat", KOMM_PHONE, "Home"},
        {7, "FaxPrivat", KOMM_PHONE, "Fax"},
        {8, "MailPrivat", KOMM_EMAIL, NULL},
        {9, "AutoTelefon", KOMM_PHONE, "Other"},
        {10, "Sonstige", KOMM_PHONE, "Other"},
        {11, "EPost", KOMM_EMAIL, NULL},
        {12, "Bea", KOMM_EMAIL, NULL},
        {0, NULL, -1, NULL},
        {13, NULL, -1, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].name)
            assert_string_equal(komm_kz_name(rows[i].kz), rows[i].name);
        else
            assert_null(komm_kz_name(rows[i].kz));
        assert_int_equal(komm_kz_class(rows[i].kz), rows[i].cls);
        if (rows[i].type)
            assert_string_equal(komm_kz_type(rows[i].kz), rows[i].type);
        else
            assert_null(komm_kz_type(rows[i].kz));
    }
    /* new EspoCRM items */
    assert_int_equal(komm_kz_for(KOMM_PHONE, "Office"), 1);
    assert_int_equal(komm_kz_for(KOMM_PHONE, "Fax"), 2);
    assert_int_equal(komm_kz_for(KOMM_PHONE, "Mobile"), 3);
    assert_int_equal(komm_kz_for(KOMM_PHONE, "Home"), 6);
    assert_int_equal(komm_kz_for(KOMM_PHONE, "Other"), 10);
    assert_int_equal(komm_kz_for(KOMM_PHONE, "Pager"), 10);
    assert_int_equal(komm_kz_for(KOMM_PHONE, NULL), 10);
    assert_int_equal(komm_kz_for(KOMM_EMAIL, NULL), 4);
    /* which entries hold which items */
    assert_true(komm_kz_fits(7, KOMM_PHONE, "Fax"));
    assert_true(komm_kz_fits(9, KOMM_PHONE, "Other"));
    assert_true(komm_kz_fits(10, KOMM_PHONE, "Pager"));
    assert_true(komm_kz_fits(12, KOMM_EMAIL, NULL));
    assert_false(komm_kz_fits(1, KOMM_PHONE, "Mobile"));
    assert_false(komm_kz_fits(4, KOMM_PHONE, "Office"));
    assert_false(komm_kz_fits(1, KOMM_EMAIL, NULL));
    assert_false(komm_kz_fits(0, KOMM_PHONE, "Office"));
    /* the value heuristic for unmarked entries whose GET says 0 */
    assert_int_equal(komm_kz_guess("max@example.com"), 4);
    assert_int_equal(komm_kz_guess(" https://kanzlei.de"), 5);
    assert_int_equal(komm_kz_guess("www.kanzlei.de"), 5);
    assert_int_equal(komm_kz_guess("+49 511 12345"), 1);
    assert_int_equal(komm_kz_guess(NULL), 1);
}

static void test_values(void **state)
{
    (void)state;
    char msg[200];
    assert_true(komm_value_eq("Max@Example.com", " max@example.com ", KOMM_EMAIL));
    assert_false(komm_value_eq("Max@Example.com", "max@example.com", KOMM_PHONE));
    assert_true(komm_value_eq(" +49 511 12345\t", "+49 511 12345", KOMM_PHONE));
    assert_false(komm_value_eq("+49 511 12345", "+49 511 1234", KOMM_PHONE));
    assert_true(komm_value_eq(NULL, "  ", KOMM_PHONE));

    const char *good_mail[] = {"max@example.com", "müller@büro.de", "a.b+c@x.co.uk"};
    const char *bad_mail[] = {"max",
                              "@example.com",
                              "max@",
                              "max@example",
                              "a@b@c.de",
                              "max @example.com",
                              "max@example.com.",
                              "max@.com"};
    for (size_t i = 0; i < sizeof good_mail / sizeof good_mail[0]; i++)
        assert_int_equal(komm_check_value(KOMM_EMAIL, good_mail[i], msg, sizeof msg), 0);
    for (size_t i = 0; i < sizeof bad_mail / sizeof bad_mail[0]; i++) {
        assert_int_equal(komm_check_value(KOMM_EMAIL, bad_mail[i], msg, sizeof msg), -1);
        assert_non_null(strstr(msg, "not an e-mail address"));
    }
    const char *good_phone[] = {"+49 511 12345", "0511/12345-0", "(0511) 123.45"};
    const char *bad_phone[] = {"", "call me", "+49 511 12345 ext", "---", "+49 511 12345; 2"};
    for (size_t i = 0; i < sizeof good_phone / sizeof good_phone[0]; i++)
        assert_int_equal(komm_check_value(KOMM_PHONE, good_phone[i], msg, sizeof msg), 0);
    for (size_t i = 0; i < sizeof bad_phone / sizeof bad_phone[0]; i++) {
        assert_int_equal(komm_check_value(KOMM_PHONE, bad_phone[i], msg, sizeof msg), -1);
        assert_non_null(strstr(msg, "phoneNumber"));
    }
}

static void test_hash(void **state)
{
    (void)state;
    char out[17];
    const char *none[1] = {NULL};
    assert_int_equal(komm_hash(none, 0, out), 0);
    assert_string_equal(out, "d41d8cd98f00b204"); /* MD5("") */
    const char *a[] = {"EFGH", "ABCD"}, *b[] = {"ABCD", "EFGH"};
    char ha[17], hb[17];
    komm_hash(a, 2, ha);
    komm_hash(b, 2, hb);
    assert_string_equal(ha, hb);                 /* order does not matter */
    assert_string_equal(ha, "4783e784b4fa2fba"); /* the seed: md5("".join(sorted(ids)))[:16] */
    const char *c[] = {"ABCD", "IJKL"};
    komm_hash(c, 2, out);
    assert_string_not_equal(out, ha); /* one rowId changed */
}

/* ---- the planner ---------------------------------------------------------------------------- */

#define EMAIL "@" /* an EspoCRM e-mail item in the tables */

struct e {
    const char *value, *type; /* type EMAIL for e-mails */
};
struct a {
    const char *tlf;
    int kz;
    const char *bem;
};

struct pcase {
    const char *name;
    struct e espo[4];
    struct a advo[4];
    bool initial, espo_changed, advo_changed, to_advoware;
    const char *want; /* the actions, one per line (see show()) */
};

/* One action as a line of text. */
static void show(const struct komm_action *x, char *buf, size_t len)
{
    static const char *const ops[] = {"POST", "PUT", "ADD", "SET", "REMOVE", "NOTIFY"};
    int n =
        snprintf(buf, len, "%s %s", ops[x->op], x->op == KOP_NOTIFY ? "" : komm_var_name(x->var));
    switch (x->op) {
    case KOP_ADVO_POST:
        n += snprintf(buf + n, len - (size_t)n, " kz=%d", x->kz);
        /* fall through */
    case KOP_ADVO_PUT:
        if (x->op == KOP_ADVO_PUT)
            n += snprintf(buf + n, len - (size_t)n, " #%zu", x->advo);
        n += snprintf(buf + n, len - (size_t)n, " tlf=%s bem=%s", x->tlf, x->bemerkung);
        if (x->online >= 0)
            snprintf(buf + n, len - (size_t)n, " online=%d", x->online);
        break;
    case KOP_ESPO_ADD:
        snprintf(buf + n, len - (size_t)n, " %s %s after=%d", x->type ? x->type : "email", x->value,
                 x->after);
        break;
    case KOP_ESPO_SET:
        snprintf(buf + n, len - (size_t)n, " #%zu %s after=%d", x->espo, x->value, x->after);
        break;
    case KOP_ESPO_REMOVE:
        snprintf(buf + n, len - (size_t)n, " #%zu after=%d", x->espo, x->after);
        break;
    case KOP_NOTIFY:
        snprintf(buf + n, len - (size_t)n, "%s", x->value);
        break;
    }
}

#define M_MAX     "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4]"     /* max@example.com */
#define M_OLD     "[ESPOCRM:b2xkQGV4YW1wbGUuY29t:4]"     /* old@example.com */
#define M_NEW     "[ESPOCRM:bmV3QGV4YW1wbGUuY29t:4]"     /* new@example.com */
#define M_REUSE   "[ESPOCRM:cmV1c2VAZXhhbXBsZS5jb20=:4]" /* reuse@example.com */
#define M_12345   "[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:1]"     /* +49 511 12345 */
#define M_999999  "[ESPOCRM:KzQ5IDUxMSA5OTk5OTk=:1]"     /* +49 511 999999 */
#define M_987654  "[ESPOCRM:KzQ5IDMwIDk4NzY1NA==:1]"     /* +49 30 987654 */
#define USER_TEXT " Nur vormittags erreichbar"

static const struct pcase cases[] = {
    /* Var1 */
    {"Var1: new e-mail → POST with marker (seed)",
     {{"new@example.com", EMAIL}},
     {{NULL}},
     false,
     true,
     false,
     false,
     "POST Var1 kz=4 tlf=new@example.com bem=" M_NEW " online=1"},
    {"Var1: a new e-mail reuses an empty slot of kz 4 (seed)",
     {{"reuse@example.com", EMAIL}},
     {{"", 0, "[ESPOCRM-SLOT:4]"}},
     false,
     true,
     false,
     false,
     "PUT Var1 #0 tlf=reuse@example.com bem=" M_REUSE " online=1"},
    {"Var1: a slot of another type is not reused",
     {{"+49 170 555", "Mobile"}},
     {{"", 0, "[ESPOCRM-SLOT:4]"}},
     false,
     true,
     false,
     false,
     "POST Var1 kz=3 tlf=+49 170 555 bem=[ESPOCRM:KzQ5IDE3MCA1NTU=:3] online=1"},
    {"Var1: a Fax goes into a FaxPrivat slot, which keeps kz 7 and its user text",
     {{"+49 511 77", "Fax"}},
     {{"", 0, "[ESPOCRM-SLOT:7] privat"}},
     false,
     true,
     false,
     false,
     "PUT Var1 #0 tlf=+49 511 77 bem=[ESPOCRM:KzQ5IDUxMSA3Nw==:7] privat online=1"},
    {"Var1: CREATE, every item is POSTed",
     {{"+49 511 12345", "Office"}, {"max@example.com", EMAIL}},
     {{NULL}},
     true,
     true,
     false,
     false,
     "POST Var1 kz=1 tlf=+49 511 12345 bem=" M_12345 " online=1\n"
     "POST Var1 kz=4 tlf=max@example.com bem=" M_MAX " online=1"},
    {"Var1: a value is written trimmed",
     {{"  max@example.com ", EMAIL}},
     {{NULL}},
     false,
     true,
     false,
     false,
     "POST Var1 kz=4 tlf=max@example.com bem=" M_MAX " online=1"},
    /* Var2 */
    {"Var2: deleted in EspoCRM → empty slot (seed)",
     {{NULL}},
     {{"old@example.com", 0, M_OLD}},
     false,
     true,
     false,
     false,
     "PUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:4] online=0"},
    {"Var2: the slot keeps the user text",
     {{NULL}},
     {{"old@example.com", 0, M_OLD USER_TEXT}},
     false,
     true,
     false,
     false,
     "PUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:4]" USER_TEXT " online=0"},
    {"Var2: EspoCRM deleted what Advoware changed: EspoCRM wins",
     {{NULL}},
     {{"changed@example.com", 0, M_OLD}},
     false,
     true,
     true,
     false,
     "PUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:4] online=0"},
    /* Var3 */
    {"Var3: deleted in Advoware → removed from EspoCRM",
     {{"+49 511 12345", "Office"}},
     {{NULL}},
     false,
     false,
     true,
     false,
     "REMOVE Var3 #0 after=-1"},
    {"Var3: not when EspoCRM changed too (EspoCRM wins: created again)",
     {{"+49 511 12345", "Office"}},
     {{NULL}},
     false,
     true,
     true,
     false,
     "POST Var1 kz=1 tlf=+49 511 12345 bem=" M_12345 " online=1"},
    {"Var3: to_advoware skips it (created again)",
     {{"+49 511 12345", "Office"}},
     {{NULL}},
     false,
     false,
     true,
     true,
     "POST Var1 kz=1 tlf=+49 511 12345 bem=" M_12345 " online=1"},
    {"Var3: an entry emptied in Advoware is a deletion; the entry becomes a slot",
     {{"+49 511 12345", "Office"}},
     {{"", 0, M_12345}},
     false,
     false,
     true,
     false,
     "PUT Var3 #0 tlf= bem=[ESPOCRM-SLOT:1] online=0\nREMOVE Var3 #0 after=0"},
    /* Var4 */
    {"Var4: new in Advoware → into EspoCRM, marker written back (seed; kommKz 0 from GET)",
     {{NULL}},
     {{"+49 30 987654", 0, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 30 987654 bem=" M_987654 "\nADD Var4 Office +49 30 987654 after=0"},
    {"Var4: an e-mail is recognised by its @",
     {{NULL}},
     {{"info@kanzlei.de", 0, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=info@kanzlei.de bem=[ESPOCRM:aW5mb0BrYW56bGVpLmRl:4]\n"
     "ADD Var4 email info@kanzlei.de after=0"},
    {"Var4: a web address is kz 5 (Internet)",
     {{NULL}},
     {{"www.kanzlei.de", 0, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=www.kanzlei.de bem=[ESPOCRM:d3d3LmthbnpsZWkuZGU=:5]\n"
     "ADD Var4 email www.kanzlei.de after=0"},
    {"Var4: a kommKz the GET does show is used",
     {{NULL}},
     {{"+49 170 1", 3, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 170 1 bem=[ESPOCRM:KzQ5IDE3MCAx:3]\nADD Var4 Mobile +49 170 1 after=0"},
    {"Var4: the user's text stays after the marker",
     {{NULL}},
     {{"+49 30 987654", 0, "Sekretariat"}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 30 987654 bem=" M_987654 " Sekretariat\n"
     "ADD Var4 Office +49 30 987654 after=0"},
    {"Var4: a malformed marker is user text",
     {{NULL}},
     {{"+49 1", 0, "[ESPOCRM:!!:1] Notiz"}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 1 bem=[ESPOCRM:KzQ5IDE=:1] [ESPOCRM:!!:1] Notiz\n"
     "ADD Var4 Office +49 1 after=0"},
    {"Var4: to_advoware leaves it",
     {{NULL}},
     {{"+49 30 987654", 0, NULL}},
     false,
     false,
     true,
     true,
     ""},
    {"Var4: a second Advoware entry of a value EspoCRM has is left alone",
     {{"max@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}, {"max@example.com", 0, NULL}},
     false,
     false,
     true,
     false,
     ""},
    /* Var5 */
    {"Var5: changed in EspoCRM → PUT with the new marker (seed)",
     {{"new@example.com", EMAIL}},
     {{"old@example.com", 0, M_OLD}},
     false,
     true,
     false,
     false,
     "PUT Var5 #0 tlf=new@example.com bem=" M_NEW " online=1"},
    {"Var5: changed on both sides: EspoCRM wins, user text kept",
     {{"new@example.com", EMAIL}},
     {{"other@example.com", 0, M_OLD USER_TEXT}},
     false,
     true,
     true,
     false,
     "PUT Var5 #0 tlf=new@example.com bem=" M_NEW USER_TEXT " online=1"},
    /* Var6 */
    {"Var6: changed in Advoware → EspoCRM takes it, marker updated (seed)",
     {{"+49 511 12345", "Office"}},
     {{"+49 511 999999", 0, M_12345}},
     false,
     false,
     true,
     false,
     "PUT Var6 #0 tlf=+49 511 999999 bem=" M_999999 "\nSET Var6 #0 +49 511 999999 after=0"},
    {"Var6: the user's text stays",
     {{"+49 511 12345", "Office"}},
     {{"+49 511 999999", 0, M_12345 USER_TEXT}},
     false,
     false,
     true,
     false,
     "PUT Var6 #0 tlf=+49 511 999999 bem=" M_999999 USER_TEXT "\n"
     "SET Var6 #0 +49 511 999999 after=0"},
    {"Var6 under to_advoware: reverted to EspoCRM's value (seed)",
     {{"+49 511 12345", "Office"}},
     {{"+49 511 999999", 0, M_12345 USER_TEXT}},
     false,
     true,
     true,
     true,
     "PUT Var6 #0 tlf=+49 511 12345 bem=" M_12345 USER_TEXT},
    /* in sync */
    {"in sync: nothing",
     {{"+49 511 12345", "Office"}, {"max@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}, {"+49 511 12345", 0, M_12345}},
     false,
     true,
     true,
     false,
     ""},
    {"in sync: e-mails compare without case, values trimmed",
     {{" +49 511 12345 ", "Office"}, {"Max@Example.COM", EMAIL}},
     {{"MAX@example.com", 0, M_MAX}, {"+49 511 12345", 0, M_12345}},
     false,
     true,
     true,
     false,
     ""},
    {"in sync: a slot with nothing to fill stays",
     {{NULL}},
     {{"", 0, "[ESPOCRM-SLOT:4]"}},
     false,
     true,
     true,
     false,
     ""},
    {"type change: Office → Mobile cannot reach Advoware: a notice, nothing else",
     {{"+49 511 12345", "Mobile"}},
     {{"+49 511 12345", 0, M_12345}},
     false,
     true,
     false,
     false,
     "NOTIFY Typ-Änderung nicht möglich, bitte manuell in Advoware ändern: +49 511 12345 ist in "
     "Advoware TelGesch, in EspoCRM Mobile"},
    {"the same number as Office and Fax: each entry pairs with the item of its type",
     {{"+49 511 12345", "Fax"}, {"+49 511 12345", "Office"}},
     {{"+49 511 12345", 0, M_12345}, {"+49 511 12345", 0, "[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:2]"}},
     false,
     true,
     true,
     false,
     ""},
    {"kommKz 0 from GET does not matter: the marker's kz fits",
     {{"+49 170 1", "Mobile"}},
     {{"+49 170 1", 0, "[ESPOCRM:KzQ5IDE3MCAx:3]"}},
     false,
     true,
     true,
     false,
     ""},
    /* the initial sync */
    {"initial: equal values are paired, marker only (seed)",
     {{"max@example.com", EMAIL}},
     {{"max@example.com", 0, NULL}},
     true,
     true,
     false,
     false,
     "PUT Match #0 tlf=max@example.com bem=" M_MAX},
    {"initial: a paired phone's kz comes from EspoCRM's type",
     {{"+49 170 1", "Mobile"}},
     {{"+49 170 1", 0, "Handy"}},
     true,
     true,
     false,
     false,
     "PUT Match #0 tlf=+49 170 1 bem=[ESPOCRM:KzQ5IDE3MCAx:3] Handy"},
    {"initial: different values on both sides: both kept",
     {{"a@example.com", EMAIL}},
     {{"b@example.com", 0, NULL}},
     true,
     true,
     false,
     false,
     "PUT Var4 #0 tlf=b@example.com bem=[ESPOCRM:YkBleGFtcGxlLmNvbQ==:4]\n"
     "ADD Var4 email b@example.com after=0\n"
     "POST Var1 kz=4 tlf=a@example.com bem=[ESPOCRM:YUBleGFtcGxlLmNvbQ==:4] online=1"},
    {"value pairing comes before an orphaned marker takes an EspoCRM item",
     {{"new@example.com", EMAIL}},
     {{"old@example.com", 0, M_OLD}, {"new@example.com", 0, NULL}},
     false,
     true,
     true,
     false,
     "PUT Match #1 tlf=new@example.com bem=" M_NEW
     "\nPUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:4] online=0"},
    {"a half-finished run (entry created, EspoCRM half missing) finishes without a duplicate",
     {{"+49 511 12345", "Office"}},
     {{"+49 511 12345", 0, NULL}},
     false,
     true,
     true,
     false,
     "PUT Match #0 tlf=+49 511 12345 bem=" M_12345},
};

static size_t count_e(const struct e *e)
{
    size_t n = 0;
    while (n < 4 && e[n].value)
        n++;
    return n;
}

static size_t count_a(const struct a *a)
{
    size_t n = 0;
    while (n < 4 && a[n].tlf)
        n++;
    return n;
}

static void test_planner_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct pcase *c = &cases[i];
        struct komm_espo espo[4];
        struct komm_advo advo[4];
        size_t ne = count_e(c->espo), na = count_a(c->advo);
        for (size_t j = 0; j < ne; j++) {
            bool mail = strcmp(c->espo[j].type, EMAIL) == 0;
            espo[j] = (struct komm_espo){c->espo[j].value, mail ? KOMM_EMAIL : KOMM_PHONE,
                                         mail ? NULL : c->espo[j].type};
        }
        for (size_t j = 0; j < na; j++)
            advo[j] = (struct komm_advo){c->advo[j].tlf, c->advo[j].kz, c->advo[j].bem};
        struct komm_in in = {espo,
                             ne,
                             advo,
                             na,
                             c->initial,
                             c->espo_changed,
                             c->advo_changed,
                             c->to_advoware ? KOMM_TO_ADVOWARE : KOMM_BOTH};
        struct komm_plan plan;
        assert_int_equal(komm_plan_make(&in, &plan), 0);
        char got[4096] = "", line[512];
        for (size_t k = 0; k < plan.n; k++) {
            show(&plan.a[k], line, sizeof line);
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? "\n" : "", line);
        }
        if (strcmp(got, c->want) != 0)
            fail_msg("%s\n--- want\n%s\n--- got\n%s", c->name, c->want, got);
        komm_plan_free(&plan);
    }
}

static void test_skip_and_validation(void **state)
{
    (void)state;
    struct komm_in in = {0};
    assert_false(komm_needs_plan(&in)); /* not initial, nothing changed, hash equal */
    in.initial = true;
    assert_true(komm_needs_plan(&in));
    in = (struct komm_in){.advo_changed = true};
    assert_true(komm_needs_plan(&in));
    in = (struct komm_in){.espo_changed = true};
    assert_true(komm_needs_plan(&in));

    /* values written from EspoCRM are validated; values taken from Advoware are not */
    struct komm_espo espo[] = {{"kein-mail", KOMM_EMAIL, NULL}};
    struct komm_advo advo[] = {{"www.kanzlei.de", 0, NULL}};
    in = (struct komm_in){espo, 1, NULL, 0, false, true, false, KOMM_BOTH};
    struct komm_plan plan;
    char msg[200];
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    assert_int_equal(plan.n, 1); /* the POST */
    assert_int_equal(plan.a[0].op, KOP_ADVO_POST);
    assert_int_equal(komm_plan_validate(&plan, msg, sizeof msg), -1);
    assert_string_equal(msg, "emailAddress \"kein-mail\": not an e-mail address");
    komm_plan_free(&plan);
    in = (struct komm_in){NULL, 0, advo, 1, false, false, true, KOMM_BOTH};
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    assert_int_equal(komm_plan_validate(&plan, msg, sizeof msg), 0);
    assert_false(plan.deferred);
    komm_plan_free(&plan);

    /* to_advoware leaves a new Advoware entry for the next run: the plan says so */
    in.dir = KOMM_TO_ADVOWARE;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    assert_int_equal(plan.n, 0);
    assert_true(plan.deferred);
    komm_plan_free(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kz_table),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_planner_table),
        cmocka_unit_test(test_skip_and_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
