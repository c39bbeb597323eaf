/* test_komm.c: the Kommunikation decisions (worker/komm.c, SPEC §5.4): the kommKz table both
 * ways, the value heuristic, value comparison, validation, the hash, and the planner by table:
 * one row per variant and per seed example (the seed's own values), the initial value match,
 * slot reuse, the revert, the type change, kommKz 0 from GET, to_advoware, e-mails compared
 * without case, user text kept through every rewrite; phones compared by E.164 (a difference of
 * format is in sync), E.164 to EspoCRM and international format to Advoware, the entity's phone
 * types, and the entries EspoCRM cannot take (reported, never sent, never deleted later; in
 * kommsync: reported by ksync_skipped, the hash stored, the next run plans nothing). */
#include "komm.h"
#include "kommsync.h"
#include "marker.h"

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

/* kommKz → the entity's phone type: the first of its preference the list has, else default. */
static void test_kz_espo_type(void **state)
{
    (void)state;
    static const char *const person[] = {"Mobile", "Office", "Home", "Fax", "Other"};
    static const char *const no_other[] = {"Office", "Mobile"};
    static const char *const custom[] = {"Zentrale", "Fax", "Pager"};
    static const struct {
        int kz;
        const char *const *types;
        size_t n;
        const char *dflt, *want;
    } rows[] = {
        /* Company (no list): Office, Mobile, Fax, Other; default Office */
        {1, NULL, 0, NULL, "Office"},
        {2, NULL, 0, NULL, "Fax"},
        {3, NULL, 0, NULL, "Mobile"},
        {6, NULL, 0, NULL, "Other"},
        {7, NULL, 0, NULL, "Fax"},
        {9, NULL, 0, NULL, "Other"},
        {10, NULL, 0, NULL, "Other"},
        {4, NULL, 0, NULL, NULL},
        {0, NULL, 0, NULL, NULL},
        /* Person: Home exists */
        {6, person, 5, "Mobile", "Home"},
        {10, person, 5, "Mobile", "Other"},
        {1, person, 5, "Mobile", "Office"},
        /* a list without Other or Home: the default type */
        {6, no_other, 2, "Mobile", "Mobile"},
        {9, no_other, 2, "Office", "Office"},
        {2, no_other, 2, "Office", "Office"},
        {10, no_other, 2, NULL, "Office"}, /* no default: the list's first */
        {1, custom, 3, "Zentrale", "Zentrale"},
        {7, custom, 3, "Zentrale", "Fax"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *got = komm_kz_espo_type(rows[i].kz, rows[i].types, rows[i].n, rows[i].dflt);
        if (rows[i].want)
            assert_string_equal(got, rows[i].want);
        else
            assert_null(got);
    }
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
    /* phones compare by their E.164 form (default region DE) */
    static const char *const same_number[] = {"+4951112345", "+49 511 12345",  "0511/12345",
                                              "0511 12345",  "0049 511 12345", "(0511) 123-45"};
    for (size_t i = 0; i < sizeof same_number / sizeof same_number[0]; i++) {
        assert_true(komm_value_eq(same_number[i], "+4951112345", KOMM_PHONE));
        char *key = komm_value_key(same_number[i], KOMM_PHONE);
        assert_string_equal(key, "+4951112345");
        free(key);
    }
    assert_false(komm_value_eq("0511/12345", "0511/123456", KOMM_PHONE));
    assert_false(komm_value_eq("0511/12345", "030/12345", KOMM_PHONE));
    char *key = komm_value_key(" Max@Example.COM ", KOMM_EMAIL);
    assert_string_equal(key, "max@example.com");
    free(key);
    key = komm_value_key(" 0511/ab ", KOMM_PHONE); /* letters: libphonenumber reads them */
    assert_non_null(key);
    free(key);

    /* what EspoCRM stores, or NULL where it answers 400 */
    static const struct {
        const char *value;
        enum komm_class cls;
        const char *want;
    } espo[] = {
        {"0511/12345", KOMM_PHONE, "+4951112345"},
        {" +49 511 12345 ", KOMM_PHONE, "+4951112345"},
        {"+4951112345", KOMM_PHONE, "+4951112345"},
        {"0049 511 12345", KOMM_PHONE, "+4951112345"},
        {"0511/ab", KOMM_PHONE, NULL},
        {"call me", KOMM_PHONE, NULL},
        {"", KOMM_PHONE, NULL},
        {NULL, KOMM_PHONE, NULL},
        {" Max@Example.com ", KOMM_EMAIL, "Max@Example.com"},
        {"kein@mail", KOMM_EMAIL, NULL},
        {"müller@büro.de", KOMM_EMAIL, NULL}, /* PHP's filter_var wants ASCII */
        {"", KOMM_EMAIL, NULL},
    };
    for (size_t i = 0; i < sizeof espo / sizeof espo[0]; i++) {
        char *got = komm_espo_value(espo[i].value, espo[i].cls);
        if (espo[i].want)
            assert_string_equal(got, espo[i].want);
        else if (got)
            fail_msg("komm_espo_value(\"%s\") = \"%s\", want NULL", espo[i].value, got);
        free(got);
    }

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
#define NE    12  /* items per side in a table row */

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
    struct e espo[NE];
    struct a advo[NE];
    bool initial, espo_changed, advo_changed, to_advoware;
    const char *want; /* the actions, one per line (see show()) */
};

/* One action as a line of text. */
static void show(const struct komm_action *x, char *buf, size_t len)
{
    static const char *const ops[] = {"POST",   "PUT",    "ADD",  "SET",
                                      "REMOVE", "NOTIFY", "SKIP", "CONFLICT"};
    int n = snprintf(buf, len, "%s %s", ops[x->op],
                     x->op == KOP_NOTIFY || x->op == KOP_SKIP || x->op == KOP_CONFLICT
                         ? ""
                         : komm_var_name(x->var));
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
    case KOP_CONFLICT:
        snprintf(buf + n, len - (size_t)n, "%s", x->value);
        break;
    case KOP_SKIP:
        snprintf(buf + n, len - (size_t)n, "#%zu %s", x->advo, x->value);
        break;
    }
}

#define M_MAX     "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4]"     /* max@example.com */
#define M_OLD     "[ESPOCRM:b2xkQGV4YW1wbGUuY29t:4]"     /* old@example.com */
#define M_NEW     "[ESPOCRM:bmV3QGV4YW1wbGUuY29t:4]"     /* new@example.com */
#define M_REUSE   "[ESPOCRM:cmV1c2VAZXhhbXBsZS5jb20=:4]" /* reuse@example.com */
#define M_12345   "[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:1]"     /* +49 511 12345 */
#define M_12345_6 "[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:6]"     /* +49 511 12345, TelPrivat */
#define M_N12345  "[ESPOCRM:MDUxMS8xMjM0NQ==:1]"         /* 0511/12345 (typed nationally) */
#define M_999999  "[ESPOCRM:KzQ5IDUxMSA5OTk5OTk=:1]"     /* +49 511 999999 */
#define M_N999999 "[ESPOCRM:MDUxMS85OTk5OTk=:1]"         /* 0511/999999 */
#define M_987654  "[ESPOCRM:KzQ5IDMwIDk4NzY1NA==:1]"     /* +49 30 987654 */
#define M_MOBILE  "[ESPOCRM:KzQ5IDE3MCAxMjM0NTY3:3]"     /* +49 170 1234567 */
#define M_AB      "[ESPOCRM:MDUxMS9hYg==:1]"             /* 0511/ab (version 1 wrote it) */
#define USER_TEXT " Nur vormittags erreichbar"
#define SKIP_AB                                                                                    \
    "Telefonnummer '0511/ab' aus Advoware wurde nicht übernommen: keine gültige Telefonnummer"
#define SKIP_MAIL                                                                                  \
    "E-Mail-Adresse 'kein@mail' aus Advoware wurde nicht übernommen: ungültige Adresse"

/* EspoCRM holds phones as E.164 ("+4951112345"); Advoware users type them as they like. */
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
     {{"+491701234567", "Mobile"}},
     {{"", 0, "[ESPOCRM-SLOT:4]"}},
     false,
     true,
     false,
     false,
     "POST Var1 kz=3 tlf=+49 170 1234567 bem=" M_MOBILE " online=1"},
    {"Var1: a slot is reused only by its exact kommKz: a Fax (2) never fills FaxPrivat (7)",
     {{"+4951177777", "Fax"}},
     {{"", 0, "[ESPOCRM-SLOT:7] privat"}},
     false,
     true,
     false,
     false,
     "POST Var1 kz=2 tlf=+49 511 77777 bem=[ESPOCRM:KzQ5IDUxMSA3Nzc3Nw==:2] online=1"},
    {"Var1: a new business e-mail never fills a Bea slot (kommKz is read-only after POST)",
     {{"max@example.com", EMAIL}},
     {{"", 0, "[ESPOCRM-SLOT:12]"}, {"", 0, "[ESPOCRM-SLOT:4] alt"}},
     false,
     true,
     false,
     false,
     "PUT Var1 #1 tlf=max@example.com bem=" M_MAX " alt online=1"},
    {"Var1: CREATE, every item is POSTed",
     {{"+4951112345", "Office"}, {"max@example.com", EMAIL}},
     {{NULL}},
     true,
     true,
     false,
     false,
     "POST Var1 kz=1 tlf=+49 511 12345 bem=" M_12345 " online=1\n"
     "POST Var1 kz=4 tlf=max@example.com bem=" M_MAX " online=1"},
    {"Var1: EspoCRM's +4951112345 reaches Advoware as +49 511 12345",
     {{"+4951112345", "Office"}},
     {{NULL}},
     false,
     true,
     false,
     false,
     "POST Var1 kz=1 tlf=+49 511 12345 bem=" M_12345 " online=1"},
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
    {"Var2: a national number deleted in EspoCRM",
     {{NULL}},
     {{"0511 12345", 0, M_N12345}},
     false,
     true,
     false,
     false,
     "PUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:1] online=0"},
    /* Var3 */
    {"Var3: deleted in Advoware → removed from EspoCRM",
     {{"+4951112345", "Office"}},
     {{NULL}},
     false,
     false,
     true,
     false,
     "REMOVE Var3 #0 after=-1"},
    {"Var3: not when EspoCRM changed too (EspoCRM wins: created again)",
     {{"+4951112345", "Office"}},
     {{NULL}},
     false,
     true,
     true,
     false,
     "POST Var1 kz=1 tlf=+49 511 12345 bem=" M_12345 " online=1"},
    {"Var3: to_advoware skips it (created again)",
     {{"+4951112345", "Office"}},
     {{NULL}},
     false,
     false,
     true,
     true,
     "POST Var1 kz=1 tlf=+49 511 12345 bem=" M_12345 " online=1"},
    {"Var3: an entry emptied in Advoware is a deletion; the entry becomes a slot",
     {{"+4951112345", "Office"}},
     {{"", 0, M_12345}},
     false,
     false,
     true,
     false,
     "PUT Var3 #0 tlf= bem=[ESPOCRM-SLOT:1] online=0\nREMOVE Var3 #0 after=0"},
    /* Var4 */
    {"Var4: new in Advoware → into EspoCRM as E.164, marker written back (seed; kommKz 0)",
     {{NULL}},
     {{"+49 30 987654", 0, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 30 987654 bem=" M_987654 "\nADD Var4 Office +4930987654 after=0"},
    {"Var4: a national number: EspoCRM gets E.164, Advoware keeps its text and gets the marker",
     {{NULL}},
     {{"0511/12345", 0, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=0511/12345 bem=" M_N12345 "\nADD Var4 Office +4951112345 after=0"},
    {"Var4 done: planning that state again changes nothing",
     {{"+4951112345", "Office"}},
     {{"0511/12345", 0, M_N12345}},
     false,
     true,
     true,
     false,
     ""},
    {"Var4: an e-mail is recognised by its @",
     {{NULL}},
     {{"info@kanzlei.de", 0, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=info@kanzlei.de bem=[ESPOCRM:aW5mb0BrYW56bGVpLmRl:4]\n"
     "ADD Var4 email info@kanzlei.de after=0"},
    {"Var4: a web address (kz 5) stays in Advoware only, no marker, no notice",
     {{NULL}},
     {{"www.kanzlei.de", 0, NULL}, {"https://kanzlei.de", 5, "[ESPOCRM-SLOT:5]"}},
     false,
     false,
     true,
     false,
     ""},
    {"Var4: a kommKz the GET does show is used",
     {{NULL}},
     {{"+49 170 1234567", 3, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 170 1234567 bem=" M_MOBILE "\nADD Var4 Mobile +491701234567 after=0"},
    {"Var4: TelPrivat on a Company entity (no Home) is added as Other",
     {{NULL}},
     {{"+49 511 12345", 6, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 511 12345 bem=" M_12345_6 "\nADD Var4 Other +4951112345 after=0"},
    {"Var4: the user's text stays after the marker",
     {{NULL}},
     {{"+49 30 987654", 0, "Sekretariat"}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 30 987654 bem=" M_987654 " Sekretariat\n"
     "ADD Var4 Office +4930987654 after=0"},
    {"Var4: a malformed marker is user text",
     {{NULL}},
     {{"+49 511 4711", 0, "[ESPOCRM:!!:1] Notiz"}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 511 4711 bem=[ESPOCRM:KzQ5IDUxMSA0NzEx:1] [ESPOCRM:!!:1] Notiz\n"
     "ADD Var4 Office +495114711 after=0"},
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
    {"Var4: a number EspoCRM holds is not added again when typed in another format",
     {{"+4951112345", "Office"}},
     {{"+49 511 12345", 0, M_12345}, {"0511/12345", 0, NULL}},
     false,
     false,
     true,
     false,
     ""},
    {"Var4: a slot a person filled in is a new entry, not space for Var1",
     {{"new@example.com", EMAIL}},
     {{"info@kanzlei.de", 0, "[ESPOCRM-SLOT:4] alt"}},
     false,
     true,
     true,
     false,
     "PUT Var4 #0 tlf=info@kanzlei.de bem=[ESPOCRM:aW5mb0BrYW56bGVpLmRl:4] alt\n"
     "ADD Var4 email info@kanzlei.de after=0\n"
     "POST Var1 kz=4 tlf=new@example.com bem=" M_NEW " online=1"},
    /* entries EspoCRM cannot take: reported, never sent, never written, never deleted */
    {"skip: a number no rule makes international stays in Advoware, unmarked",
     {{NULL}},
     {{"0511/ab", 0, NULL}},
     false,
     false,
     true,
     false,
     "SKIP #0 " SKIP_AB},
    {"skip: an invalid e-mail address stays in Advoware, unmarked",
     {{NULL}},
     {{"kein@mail", 0, NULL}},
     false,
     false,
     true,
     false,
     "SKIP #0 " SKIP_MAIL},
    {"skip: an address EspoCRM's check refuses (not ASCII)",
     {{NULL}},
     {{"müller@büro.de", 0, NULL}},
     false,
     false,
     true,
     false,
     "SKIP #0 E-Mail-Adresse 'müller@büro.de' aus Advoware wurde nicht übernommen: "
     "ungültige Adresse"},
    {"skip: the same text once",
     {{NULL}},
     {{"kein@mail", 0, NULL}, {" kein@mail", 0, "zweimal"}},
     false,
     false,
     true,
     false,
     "SKIP #0 " SKIP_MAIL},
    {"skip, later: EspoCRM changed, the skipped e-mail is neither deleted nor overwritten",
     {{"max@example.com", EMAIL}, {"neu@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}, {"kein@mail", 0, NULL}},
     false,
     true,
     true,
     false,
     "SKIP #1 " SKIP_MAIL "\n"
     "POST Var1 kz=4 tlf=neu@example.com bem=[ESPOCRM:bmV1QGV4YW1wbGUuY29t:4] online=1"},
    {"skip, later: only Advoware changed, EspoCRM items are paired: no Var3",
     {{"max@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}, {"kein@mail", 0, NULL}},
     false,
     false,
     true,
     false,
     "SKIP #1 " SKIP_MAIL},
    {"skip, later: a conflict (to_advoware) leaves it too",
     {{"max@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}, {"kein@mail", 0, NULL}},
     false,
     true,
     true,
     true,
     "SKIP #1 " SKIP_MAIL},
    {"skip: changed in Advoware to an invalid number: EspoCRM keeps its value, no Var3, no "
     "marker",
     {{"+4951112345", "Office"}},
     {{"0511/ab", 0, M_12345}},
     false,
     false,
     true,
     false,
     "SKIP #0 " SKIP_AB},
    {"skip: ... and a conflict does not revert what the user typed",
     {{"+4951112345", "Office"}},
     {{"0511/ab", 0, M_12345}},
     false,
     true,
     true,
     true,
     "SKIP #0 " SKIP_AB},
    {"skip: ... and EspoCRM deleting the old value does not empty the entry (no Var2)",
     {{NULL}},
     {{"0511/ab", 0, M_12345}},
     false,
     true,
     false,
     false,
     "SKIP #0 " SKIP_AB},
    {"skip: a version-1 marker of a value EspoCRM cannot hold is no baseline (no Var2)",
     {{NULL}},
     {{"0511/ab", 0, M_AB " Notiz"}},
     false,
     true,
     false,
     false,
     "SKIP #0 " SKIP_AB},
    {"skip: ... once the user fixes the value, it is a Var4 with its kz and text",
     {{NULL}},
     {{"0511/12345", 0, M_AB " Notiz"}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=0511/12345 bem=" M_N12345 " Notiz\nADD Var4 Office +4951112345 after=0"},
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
    {"Var5: a phone changed in EspoCRM reaches Advoware in international format",
     {{"+49511999999", "Office"}},
     {{"0511/12345", 0, M_N12345}},
     false,
     true,
     false,
     false,
     "PUT Var5 #0 tlf=+49 511 999999 bem=" M_999999 " online=1"},
    /* Var6 */
    {"Var6: changed in Advoware → EspoCRM takes it as E.164, marker updated (seed)",
     {{"+4951112345", "Office"}},
     {{"+49 511 999999", 0, M_12345}},
     false,
     false,
     true,
     false,
     "PUT Var6 #0 tlf=+49 511 999999 bem=" M_999999 "\nSET Var6 #0 +49511999999 after=0"},
    {"Var6: a national number: EspoCRM gets E.164, Advoware keeps the user's text",
     {{"+4951112345", "Office"}},
     {{"0511/999999", 0, M_12345}},
     false,
     false,
     true,
     false,
     "PUT Var6 #0 tlf=0511/999999 bem=" M_N999999 "\nSET Var6 #0 +49511999999 after=0"},
    {"Var6: the user's text stays",
     {{"+4951112345", "Office"}},
     {{"+49 511 999999", 0, M_12345 USER_TEXT}},
     false,
     false,
     true,
     false,
     "PUT Var6 #0 tlf=+49 511 999999 bem=" M_999999 USER_TEXT "\n"
     "SET Var6 #0 +49511999999 after=0"},
    {"Var6 under to_advoware: reverted to EspoCRM's value in international format (seed)",
     {{"+4951112345", "Office"}},
     {{"+49 511 999999", 0, M_12345 USER_TEXT}},
     false,
     true,
     true,
     true,
     "PUT Var6 #0 tlf=+49 511 12345 bem=" M_12345 USER_TEXT},
    /* in sync */
    {"in sync: nothing",
     {{"+4951112345", "Office"}, {"max@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}, {"+49 511 12345", 0, M_12345}},
     false,
     true,
     true,
     false,
     ""},
    {"in sync: e-mails compare without case, values trimmed",
     {{" +4951112345 ", "Office"}, {"Max@Example.COM", EMAIL}},
     {{"MAX@example.com", 0, M_MAX}, {"+49 511 12345", 0, M_12345}},
     false,
     true,
     true,
     false,
     ""},
    {"in sync: numbers that differ only in format (EspoCRM, tlf, marker): no write anywhere",
     {{"+4951112345", "Office"}, {"+49511999999", "Office"}},
     {{"0511 / 123 45", 0, M_12345}, {"0049 511 999999", 0, M_N999999}},
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
     {{"+4951112345", "Mobile"}},
     {{"+49 511 12345", 0, M_12345}},
     false,
     true,
     false,
     false,
     "NOTIFY Typ-Änderung nicht möglich, bitte manuell in Advoware ändern: +49 511 12345 ist in "
     "Advoware TelGesch, in EspoCRM Mobile"},
    {"type: TelPrivat shown as Other on a Company entity is no type change",
     {{"+4951112345", "Other"}},
     {{"+49 511 12345", 0, M_12345_6}},
     false,
     true,
     true,
     false,
     ""},
    {"the same number as Office and Fax: each entry pairs with the item of its type",
     {{"+4951112345", "Fax"}, {"+4951112345", "Office"}},
     {{"+49 511 12345", 0, M_12345}, {"+49 511 12345", 0, "[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:2]"}},
     false,
     true,
     true,
     false,
     ""},
    {"kommKz 0 from GET does not matter: the marker's kz fits",
     {{"+491701234567", "Mobile"}},
     {{"+49 170 1234567", 0, M_MOBILE}},
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
    {"initial: a national number is EspoCRM's E.164 number: marker only",
     {{"+4951112345", "Office"}},
     {{"0511/12345", 0, NULL}},
     true,
     true,
     false,
     false,
     "PUT Match #0 tlf=0511/12345 bem=" M_N12345},
    {"initial: a paired phone's kz comes from EspoCRM's type",
     {{"+491701234567", "Mobile"}},
     {{"+49 170 1234567", 0, "Handy"}},
     true,
     true,
     false,
     false,
     "PUT Match #0 tlf=+49 170 1234567 bem=" M_MOBILE " Handy"},
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
     {{"+4951112345", "Office"}},
     {{"+49 511 12345", 0, NULL}},
     false,
     true,
     true,
     false,
     "PUT Match #0 tlf=+49 511 12345 bem=" M_12345},
};

/* The same on a Person-based entity (phone types Mobile, Office, Home, Fax, Other). */
static const struct pcase person_cases[] = {
    {"Var4: TelPrivat on a Person entity is added as Home",
     {{NULL}},
     {{"+49 511 12345", 6, NULL}},
     false,
     false,
     true,
     false,
     "PUT Var4 #0 tlf=+49 511 12345 bem=" M_12345_6 "\nADD Var4 Home +4951112345 after=0"},
    {"type: TelPrivat as Other on a Person entity (Home exists) is one",
     {{"+4951112345", "Other"}},
     {{"+49 511 12345", 0, M_12345_6}},
     false,
     true,
     true,
     false,
     "NOTIFY Typ-Änderung nicht möglich, bitte manuell in Advoware ändern: +49 511 12345 ist in "
     "Advoware TelPrivat, in EspoCRM Other"},
};

static const char *const person_types[] = {"Mobile", "Office", "Home", "Fax", "Other"};

static size_t count_e(const struct e *e)
{
    size_t n = 0;
    while (n < NE && e[n].value)
        n++;
    return n;
}

static size_t count_a(const struct a *a)
{
    size_t n = 0;
    while (n < NE && a[n].tlf)
        n++;
    return n;
}

/* The plan for one row, as text (one action a line). */
static void plan_text(const struct pcase *c, bool person, char *got, size_t len)
{
    struct komm_espo espo[NE];
    struct komm_advo advo[NE];
    size_t ne = count_e(c->espo), na = count_a(c->advo);
    for (size_t j = 0; j < ne; j++) {
        bool mail = strcmp(c->espo[j].type, EMAIL) == 0;
        espo[j] = (struct komm_espo){c->espo[j].value, mail ? KOMM_EMAIL : KOMM_PHONE,
                                     mail ? NULL : c->espo[j].type};
    }
    for (size_t j = 0; j < na; j++)
        advo[j] = (struct komm_advo){c->advo[j].tlf, c->advo[j].kz, c->advo[j].bem, 0};
    struct komm_in in = {.espo = espo,
                         .nespo = ne,
                         .advo = advo,
                         .nadvo = na,
                         .initial = c->initial,
                         .espo_changed = c->espo_changed,
                         .advo_changed = c->advo_changed,
                         .dir = c->to_advoware ? KOMM_TO_ADVOWARE : KOMM_BOTH};
    if (person) {
        in.phone_types = person_types;
        in.nphone_types = sizeof person_types / sizeof person_types[0];
        in.default_type = "Mobile";
    }
    struct komm_plan plan;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    char line[1024];
    got[0] = '\0';
    for (size_t k = 0; k < plan.n; k++) {
        show(&plan.a[k], line, sizeof line);
        snprintf(got + strlen(got), len - strlen(got), "%s%s", k ? "\n" : "", line);
    }
    komm_plan_free(&plan);
}

static void test_planner_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[4096];
        plan_text(&cases[i], false, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s\n--- want\n%s\n--- got\n%s", cases[i].name, cases[i].want, got);
    }
    for (size_t i = 0; i < sizeof person_cases / sizeof person_cases[0]; i++) {
        char got[4096];
        plan_text(&person_cases[i], true, got, sizeof got);
        if (strcmp(got, person_cases[i].want) != 0)
            fail_msg("%s\n--- want\n%s\n--- got\n%s", person_cases[i].name, person_cases[i].want,
                     got);
    }
}

/* ---- the planner with a baseline (SPEC §5.2, §5.4): per entry, by Advoware id ---------------- */

struct b {
    long long id; /* the Advoware entry's id: in the rows, entry #k has id k + 1 */
    int kz;
    const char *value;
    bool mail;
};

struct bcase {
    const char *name;
    struct e espo[NE];
    struct a advo[NE];
    struct b base[NE];
    const char *want;
};

#define M_12345_2 "[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:2]" /* +49 511 12345, FaxGesch */
#define PHONE1                                                                                     \
    {                                                                                              \
        1, 1, "+4951112345", false                                                                 \
    } /* entry #0 held +4951112345 (Office) */
#define CONFLICT_999999                                                                            \
    "CONFLICT Konflikt gelöst: EspoCRM-Daten wurden übernommen (Telefon: Advoware hatte "        \
    "'0511/999999')"

/* Each row is a state after a person's edit or after a run that failed halfway (its Advoware
 * writes done, its final EspoCRM PUT not): the baseline still describes the run before. */
static const struct bcase base_cases[] = {
    {"in sync: nothing",
     {{"+4951112345", "Office"}},
     {{"+49 511 12345", 0, M_12345}},
     {PHONE1},
     ""},
    {"Var6: changed in Advoware → EspoCRM takes it, the marker follows",
     {{"+4951112345", "Office"}},
     {{"0511/999999", 0, M_12345}},
     {PHONE1},
     "PUT Var6 #0 tlf=0511/999999 bem=" M_N999999 "\nSET Var6 #0 +49511999999 after=0"},
    {"Var6 after a failed final PUT (marker already new): EspoCRM takes it, no revert",
     {{"+4951112345", "Office"}},
     {{"+49 511 999999", 0, M_999999}},
     {PHONE1},
     "SET Var6 #0 +49511999999 after=-1"},
    {"Var4 after a failed final PUT (marker written, not in the baseline): added, not deleted",
     {{NULL}},
     {{"+49 511 12345", 0, M_12345}},
     {{0}},
     "ADD Var4 Office +4951112345 after=-1"},
    {"Var4: a person typed a number into a slot: an addition, never free space",
     {{NULL}},
     {{"0511/12345", 0, "[ESPOCRM-SLOT:1]"}},
     {{0}},
     "PUT Var4 #0 tlf=0511/12345 bem=" M_N12345 "\nADD Var4 Office +4951112345 after=0"},
    {"Var2: deleted in EspoCRM → the entry becomes a slot",
     {{NULL}},
     {{"+49 511 12345", 0, M_12345 USER_TEXT}},
     {PHONE1},
     "PUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:1]" USER_TEXT " online=0"},
    {"Var2 after a failed final PUT (the slot is there): nothing",
     {{NULL}},
     {{"", 0, "[ESPOCRM-SLOT:1]"}},
     {PHONE1},
     ""},
    {"Var3: emptied in Advoware → EspoCRM drops it, the entry becomes a slot",
     {{"+4951112345", "Office"}},
     {{"", 0, M_12345}},
     {PHONE1},
     "PUT Var3 #0 tlf= bem=[ESPOCRM-SLOT:1] online=0\nREMOVE Var3 #0 after=0"},
    {"Var3 after a failed final PUT (the slot is there): EspoCRM drops it",
     {{"+4951112345", "Office"}},
     {{"", 0, "[ESPOCRM-SLOT:1]"}},
     {PHONE1},
     "REMOVE Var3 #0 after=-1"},
    {"Var3: a person deleted the entry in Advoware → EspoCRM drops it",
     {{"+4951112345", "Office"}, {"max@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}},
     {{2, 1, "+4951112345", false}, {1, 4, "max@example.com", true}},
     "REMOVE Var3 #0 after=-1"},
    {"Var5: changed in EspoCRM → the entry takes the new value",
     {{"+4930987654", "Office"}},
     {{"+49 511 12345", 0, M_12345}},
     {PHONE1},
     "PUT Var5 #0 tlf=+49 30 987654 bem=" M_987654 " online=1"},
    {"Var5 after a failed final PUT (both hold the new value): in sync",
     {{"+4930987654", "Office"}},
     {{"+49 30 987654", 0, M_987654}},
     {PHONE1},
     ""},
    {"the same entry changed on both sides: EspoCRM wins, the notice names Advoware's value",
     {{"+4930987654", "Office"}},
     {{"0511/999999", 0, M_12345}},
     {PHONE1},
     "PUT Var5 #0 tlf=+49 30 987654 bem=" M_987654 " online=1\n" CONFLICT_999999},
    {"deleted in EspoCRM, changed in Advoware: EspoCRM wins, the notice names Advoware's value",
     {{NULL}},
     {{"0511/999999", 0, M_12345}},
     {PHONE1},
     "PUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:1] online=0\n" CONFLICT_999999},
    {"changed the same on both sides: in sync, no conflict",
     {{"+49511999999", "Office"}},
     {{"0511/999999", 0, M_12345}},
     {PHONE1},
     "PUT Match #0 tlf=0511/999999 bem=" M_N999999},
    {"Var1: a new EspoCRM item is POSTed",
     {{"+4951112345", "Office"}, {"max@example.com", EMAIL}},
     {{"+49 511 12345", 0, M_12345}},
     {PHONE1},
     "POST Var1 kz=4 tlf=max@example.com bem=" M_MAX " online=1"},
    {"Var1 after a failed final PUT: the POSTed entry pairs by value, no second POST",
     {{"max@example.com", EMAIL}},
     {{"max@example.com", 0, M_MAX}},
     {{0}},
     ""},
    {"Var1 reuses only a slot of exactly its kommKz",
     {{"max@example.com", EMAIL}},
     {{"", 0, "[ESPOCRM-SLOT:12]"}, {"", 0, "[ESPOCRM-SLOT:4]"}},
     {{0}},
     "PUT Var1 #1 tlf=max@example.com bem=" M_MAX " online=1"},
    {"a changed value EspoCRM cannot take: reported, EspoCRM keeps its value, nothing written",
     {{"+4951112345", "Office"}},
     {{"0511/ab", 0, M_12345}},
     {PHONE1},
     "SKIP #0 " SKIP_AB},
    {"both sides deleted it: nothing", {{NULL}}, {{NULL}}, {PHONE1}, ""},
    {"an entry a person emptied before any run knew it becomes a slot",
     {{NULL}},
     {{"", 0, M_12345 " Zentrale"}},
     {{0}},
     "PUT Var2 #0 tlf= bem=[ESPOCRM-SLOT:1] Zentrale online=0"},
    {"a marker a person removed: the baseline keeps the kommKz",
     {{"+4951112345", "Fax"}},
     {{"+49 511 12345", 0, NULL}},
     {{1, 2, "+4951112345", false}},
     "PUT Match #0 tlf=+49 511 12345 bem=" M_12345_2},
    {"changed in Advoware to a value EspoCRM has elsewhere: the old item goes, no duplicate",
     {{"+4951112345", "Office"}, {"+4930987654", "Office"}},
     {{"+49 30 987654", 0, M_12345}, {"+49 30 987654", 0, M_987654}},
     {PHONE1, {2, 1, "+4930987654", false}},
     "REMOVE Var3 #0 after=-1"},
};

static void base_plan_text(const struct bcase *c, char *got, size_t len, struct komm_plan *plan)
{
    struct komm_espo espo[NE];
    struct komm_advo advo[NE];
    struct komm_base base[NE];
    size_t ne = count_e(c->espo), na = count_a(c->advo), nb = 0;
    for (size_t j = 0; j < ne; j++) {
        bool mail = strcmp(c->espo[j].type, EMAIL) == 0;
        espo[j] = (struct komm_espo){c->espo[j].value, mail ? KOMM_EMAIL : KOMM_PHONE,
                                     mail ? NULL : c->espo[j].type};
    }
    for (size_t j = 0; j < na; j++)
        advo[j] =
            (struct komm_advo){c->advo[j].tlf, c->advo[j].kz, c->advo[j].bem, (long long)j + 1};
    for (; nb < NE && c->base[nb].id; nb++)
        base[nb] = (struct komm_base){c->base[nb].id, c->base[nb].kz, c->base[nb].value,
                                      c->base[nb].mail ? KOMM_EMAIL : KOMM_PHONE};
    struct komm_in in = {.espo = espo,
                         .nespo = ne,
                         .advo = advo,
                         .nadvo = na,
                         .base = base,
                         .nbase = nb,
                         .has_base = true,
                         /* none of these may matter with a baseline */
                         .espo_changed = true,
                         .advo_changed = true,
                         .dir = KOMM_TO_ADVOWARE};
    assert_int_equal(komm_plan_make(&in, plan), 0);
    char line[1024];
    got[0] = '\0';
    for (size_t k = 0; k < plan->n; k++) {
        show(&plan->a[k], line, sizeof line);
        snprintf(got + strlen(got), len - strlen(got), "%s%s", k ? "\n" : "", line);
    }
}

static void test_planner_base_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof base_cases / sizeof base_cases[0]; i++) {
        char got[4096];
        struct komm_plan plan;
        base_plan_text(&base_cases[i], got, sizeof got, &plan);
        komm_plan_free(&plan);
        if (strcmp(got, base_cases[i].want) != 0)
            fail_msg("%s\n--- want\n%s\n--- got\n%s", base_cases[i].name, base_cases[i].want, got);
    }
}

/* The plan says what both systems hold once it succeeded: the next baseline. */
static void test_planner_agreed(void **state)
{
    (void)state;
    const struct bcase c = {
        "agreed",
        {{"+4951112345", "Office"}, {"max@example.com", EMAIL}, {"+4930987654", "Fax"}},
        {{"+49 511 12345", 0, M_12345}, {"0511/ab", 0, NULL}, {"", 0, "[ESPOCRM-SLOT:2]"}},
        {PHONE1},
        NULL};
    char got[4096];
    struct komm_plan plan;
    base_plan_text(&c, got, sizeof got, &plan);
    assert_int_equal(plan.nagreed, 3);
    assert_string_equal(plan.agreed[0], "+4951112345"); /* in sync */
    assert_int_equal(plan.agreed_kz[0], 1);
    assert_null(plan.agreed[1]);                        /* skipped: never in the baseline */
    assert_string_equal(plan.agreed[2], "+4930987654"); /* the Fax into the FaxGesch slot */
    assert_int_equal(plan.agreed_kz[2], 2);
    bool posted = false; /* the e-mail is POSTed: its action carries the value */
    for (size_t k = 0; k < plan.n; k++) {
        if (plan.a[k].op == KOP_ADVO_POST) {
            assert_string_equal(plan.a[k].value, "max@example.com");
            posted = true;
        }
    }
    assert_true(posted);
    komm_plan_free(&plan);
}

/* With a baseline the skip rule compares values: EspoCRM as the baseline left it and an equal
 * hash plan nothing, whatever the status says. */
static void test_needs_plan_base(void **state)
{
    (void)state;
    struct komm_espo espo[] = {{"+4951112345", KOMM_PHONE, "Office"},
                               {"Max@Example.com", KOMM_EMAIL, NULL}};
    struct komm_base base[] = {{1, 1, "+49 511 12345", KOMM_PHONE},
                               {2, 4, "max@example.com", KOMM_EMAIL}};
    struct komm_in in = {
        .espo = espo, .nespo = 2, .base = base, .nbase = 2, .has_base = true, .espo_changed = true};
    assert_false(komm_needs_plan(&in));
    in.advo_changed = true;
    assert_true(komm_needs_plan(&in));
    in.advo_changed = false;
    espo[0].type = "Mobile"; /* a type change: the user is told */
    assert_true(komm_needs_plan(&in));
    espo[0].type = "Office";
    in.nespo = 1; /* an item deleted */
    assert_true(komm_needs_plan(&in));
    in.nespo = 2;
    espo[1].value = "neu@example.com";
    assert_true(komm_needs_plan(&in));
}

/* EspoCRM takes at most 10 numbers: an 11th from Advoware is reported and left; what the plan
 * removes makes room. */
static void test_phone_limit(void **state)
{
    (void)state;
    static char values[NE][32], marks[NE][96];
    struct pcase c = {.name = "limit", .advo_changed = true};
    for (size_t j = 0; j < 9; j++) { /* 9 synced numbers and an e-mail */
        snprintf(values[j], sizeof values[j], "+49511100%02zu", j);
        c.espo[j] = (struct e){values[j], "Office"};
        char *m = marker_format(values[j], 1, NULL);
        snprintf(marks[j], sizeof marks[j], "%s", m);
        free(m);
        c.advo[j] = (struct a){values[j], 0, marks[j]};
    }
    c.espo[9] = (struct e){"max@example.com", EMAIL};
    c.advo[9] = (struct a){"max@example.com", 0, M_MAX};
    c.advo[10] = (struct a){"0511/20000", 0, NULL};
    c.advo[11] = (struct a){"0511/20001", 0, NULL};
    char got[4096];
    plan_text(&c, false, got, sizeof got);
    assert_string_equal(got, "PUT Var4 #10 tlf=0511/20000 bem=[ESPOCRM:MDUxMS8yMDAwMA==:1]\n"
                             "ADD Var4 Office +4951120000 after=0\n"
                             "SKIP #11 Telefonnummer '0511/20001' aus Advoware wurde nicht "
                             "übernommen: EspoCRM erlaubt höchstens 10 Telefonnummern");

    /* an e-mail is no number */
    c.advo[11] = (struct a){"neu@kanzlei.de", 0, NULL};
    plan_text(&c, false, got, sizeof got);
    assert_non_null(strstr(got, "ADD Var4 email neu@kanzlei.de"));
    assert_null(strstr(got, "SKIP"));

    /* a number emptied in Advoware (Var3) makes room */
    c.advo[11] = (struct a){"0511/20001", 0, NULL};
    c.advo[0].tlf = "";
    plan_text(&c, false, got, sizeof got);
    assert_null(strstr(got, "SKIP"));
    assert_non_null(strstr(got, "REMOVE Var3 #0"));
    assert_non_null(strstr(got, "ADD Var4 Office +4951120001"));

    /* so does one deleted in Advoware (unpaired in EspoCRM, only Advoware changed) */
    c.advo[0] = c.advo[11];
    c.advo[11] = (struct a){NULL};
    plan_text(&c, false, got, sizeof got);
    assert_null(strstr(got, "SKIP"));
    assert_non_null(strstr(got, "REMOVE Var3 #0"));
    assert_non_null(strstr(got, "ADD Var4 Office +4951120001"));

    /* but not when EspoCRM changed too (the unpaired number is Var1, it stays) */
    c.espo_changed = true;
    c.advo[11] = (struct a){"0511/20002", 0, NULL};
    plan_text(&c, false, got, sizeof got);
    assert_non_null(strstr(got, "SKIP #11 Telefonnummer '0511/20002'"));
    assert_non_null(strstr(got, "POST Var1 kz=1 tlf=+49 511 10000"));
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
    struct komm_advo advo[] = {{"+49 30 987654", 0, NULL, 0}};
    in = (struct komm_in){.espo = espo, .nespo = 1, .espo_changed = true, .dir = KOMM_BOTH};
    struct komm_plan plan;
    char msg[200];
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    assert_int_equal(plan.n, 1); /* the POST */
    assert_int_equal(plan.a[0].op, KOP_ADVO_POST);
    assert_int_equal(komm_plan_validate(&plan, msg, sizeof msg), -1);
    assert_string_equal(msg, "emailAddress \"kein-mail\": not an e-mail address");
    komm_plan_free(&plan);
    in = (struct komm_in){.advo = advo, .nadvo = 1, .advo_changed = true, .dir = KOMM_BOTH};
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

    /* an entry EspoCRM cannot take is nothing to wait for: reported, not deferred */
    struct komm_advo bad[] = {{"0511/ab", 0, NULL, 0}};
    in.advo = bad;
    assert_int_equal(komm_plan_make(&in, &plan), 0);
    assert_int_equal(plan.n, 1);
    assert_int_equal(plan.a[0].op, KOP_SKIP);
    assert_false(plan.deferred);
    assert_int_equal(komm_plan_validate(&plan, msg, sizeof msg), 0);
    komm_plan_free(&plan);
}

/* kommsync: a skipped entry is reported, sent nowhere, and the hash is stored as usual, so the
 * next run with nothing changed plans nothing. */
static void test_ksync_skip(void **state)
{
    (void)state;
    json_t *entity = json_pack("{s:s,s:[{s:s,s:s,s:b}],s:[]}", "kommunikationHash",
                               "0000000000000000", "phoneNumberData", "phoneNumber", "+4951112345",
                               "type", "Office", "primary", 1, "emailAddressData");
    json_t *advo = json_pack("[{s:i,s:s,s:s,s:i,s:s},{s:i,s:s,s:s,s:i,s:n}]", "id", 1, "rowId",
                             "AAA=", "tlf", "0511 12345", "kommKz", 0, "bemerkung", M_12345, "id",
                             2, "rowId", "BBB=", "tlf", "0511/ab", "kommKz", 0, "bemerkung");
    static const char *const types[] = {"Office", "Mobile", "Fax", "Other"};
    struct ksync_in in = {.entity = entity,
                          .advo_list = advo,
                          .dir = KOMM_BOTH,
                          .phone_types = types,
                          .nphone_types = 4,
                          .default_type = "Office"};
    struct ksync *ks = ksync_new(&in);
    assert_non_null(ks);
    assert_true(ksync_planned(ks));
    char msg[200];
    assert_int_equal(ksync_validate(ks, msg, sizeof msg), 0);
    assert_string_equal(ksync_skipped(ks, 0), SKIP_AB);
    assert_null(ksync_skipped(ks, 1));
    assert_null(ksync_note(ks, 0));
    json_t *put = json_object();
    ksync_fill_put(ks, put);
    assert_null(json_object_get(put, "phoneNumberData")); /* format only: in sync */
    const char *hash = json_string_value(json_object_get(put, "kommunikationHash"));
    assert_non_null(hash);
    json_object_set(entity, "kommunikationHash", json_object_get(put, "kommunikationHash"));
    ksync_free(ks);
    json_decref(put);

    ks = ksync_new(&in); /* the next run: nothing changed */
    assert_non_null(ks);
    assert_false(ksync_planned(ks));
    assert_null(ksync_skipped(ks, 0));
    put = json_object();
    ksync_fill_put(ks, put);
    assert_int_equal(json_object_size(put), 0);
    ksync_free(ks);
    json_decref(put);
    json_decref(advo);
    json_decref(entity);
}

/* An Advoware answer without a kommunikation array is not an empty list: nothing is planned,
 * nothing written (EspoCRM's entries are not deleted, nothing is posted again). */
static void test_ksync_missing_list(void **state)
{
    (void)state;
    json_t *entity = json_pack("{s:s,s:[{s:s,s:s,s:b}],s:[]}", "kommunikationHash",
                               "0000000000000000", "phoneNumberData", "phoneNumber", "+4951112345",
                               "type", "Office", "primary", 1, "emailAddressData");
    json_t *not_array = json_pack("{s:s}", "unexpected", "shape");
    const json_t *lists[] = {NULL, not_array};
    for (size_t i = 0; i < 2; i++) {
        struct ksync_in in = {
            .entity = entity, .advo_list = lists[i], .espo_changed = true, .dir = KOMM_BOTH};
        struct ksync *ks = ksync_new(&in);
        assert_non_null(ks);
        assert_false(ksync_planned(ks));
        json_t *put = json_object();
        ksync_fill_put(ks, put);
        assert_int_equal(json_object_size(put), 0);
        json_decref(put);
        ksync_free(ks);
    }
    json_decref(not_array);
    json_decref(entity);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kz_table),       cmocka_unit_test(test_kz_espo_type),
        cmocka_unit_test(test_values),         cmocka_unit_test(test_hash),
        cmocka_unit_test(test_planner_table),  cmocka_unit_test(test_planner_base_table),
        cmocka_unit_test(test_planner_agreed), cmocka_unit_test(test_needs_plan_base),
        cmocka_unit_test(test_phone_limit),    cmocka_unit_test(test_skip_and_validation),
        cmocka_unit_test(test_ksync_skip),     cmocka_unit_test(test_ksync_missing_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
