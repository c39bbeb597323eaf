/* test_phone.c: phone numbers (common/phone.cc, SPEC §5.4) by table: every value of the recorded
 * EspoCRM 9.1.5 answers (contracts 02, 03, 10) through sanitiser and validator, the E.164 form
 * of national German numbers, the international form written to Advoware, equality across
 * formats, the default region, and garbage that must give NULL / false without crashing. */
#include "phone.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What EspoCRM stores for a sent value, or NULL for a 400 (sanitise, then validate). */
static char *espo_stores(const char *sent)
{
    char *s = phone_espo_sanitize(sent);
    if (s && !phone_espo_valid(s)) {
        free(s);
        return NULL;
    }
    return s;
}

static void test_recorded(void **state)
{
    (void)state;
    static const struct {
        const char *sent;
        const char *stored; /* NULL: 400 field phoneNumber, type valid */
    } rows[] = {
        /* 02_create_phone_email.json */
        {"+49 511 12345", "+4951112345"},
        {"0511/12345", NULL},
        {"0511 12345", NULL},
        {"+49 (511) 98-765", "+4951198765"},
        {"+49 511 55555", "+4951155555"},
        {"+4930 1234567", "+49301234567"},
        {"+49 40 1111", "+49401111"},
        /* 03_put_phone_email_validation.json */
        {"+49 30 1234567", "+49301234567"},
        {"+49 511 12340", "+4951112340"},
        {"+49 511 12349", "+4951112349"},
        {"+49 511 123410", "+49511123410"},
        /* 10_formula_phone_dirty.json */
        {"+49 511 1", "+495111"},
        {"+495111", "+495111"},
        {"+49 511 2", "+495112"},
        {"+49 511 7", "+495117"},
        /* SPEC §5.4 */
        {"+49 511/987654", "+49511987654"},
        /* stored values sent back unchanged */
        {"+4951112345", "+4951112345"},
        {"  +49 511 12345\t", "+4951112345"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *got = espo_stores(rows[i].sent);
        if (rows[i].stored) {
            if (!got || strcmp(got, rows[i].stored) != 0)
                fail_msg("row %zu '%s': stored '%s', want '%s'", i, rows[i].sent,
                         got ? got : "(rejected)", rows[i].stored);
        } else if (got) {
            fail_msg("row %zu '%s': stored '%s', want rejected", i, rows[i].sent, got);
        }
        free(got);
    }
}

static void test_sanitize(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } rows[] = {
        /* not starting with '+': trimmed, otherwise as given */
        {"0511/12345", "0511/12345"},
        {" 0511 12345 ", "0511 12345"},
        {"abc", "abc"},
        {"", ""},
        {"   ", ""},
        /* '+' that libphonenumber cannot parse: as given */
        {"+", "+"},
        {"+abc", "+abc"},
        /* libphonenumber's own reading, which EspoCRM shares: the extension is dropped (EspoCRM
         * splits extensions off only with phoneNumberExtensions), letters are keypad digits */
        {"+49 511 12345 ext. 12", "+4951112345"},
        {"+49 511 CALLME", "+49511225563"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *got = phone_espo_sanitize(rows[i].in);
        assert_non_null(got);
        assert_string_equal(got, rows[i].out);
        free(got);
    }
    assert_null(phone_espo_sanitize(NULL));
}

static void test_valid(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool ok;
    } rows[] = {
        {"+4951112345", true},
        {"+495111", true},
        {"+49301234567", true},
        {"+49 511 12345", false}, /* not sanitised: E.164 form differs */
        {"0511/12345", false},    /* '/' and not international */
        {"0511 12345", false},    /* not international */
        {"+4951112345/", false},
        {"+49", false},
        {"+", false},
        {"", false},
        {"abc", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (phone_espo_valid(rows[i].value) != rows[i].ok)
            fail_msg("row %zu '%s': want %s", i, rows[i].value ? rows[i].value : "(null)",
                     rows[i].ok ? "valid" : "invalid");
    }
}

static void test_e164(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *region;
        const char *out;
    } rows[] = {
        {"0511/12345", "DE", "+4951112345"},
        {"0511 12345", "DE", "+4951112345"},
        {"(0511) 12345", "DE", "+4951112345"},
        {"0511-12345", NULL, "+4951112345"},
        {"00495111234", "DE", "+495111234"},
        {"0049 511 12345", "de", "+4951112345"},
        {"+49 511 12345", "DE", "+4951112345"},
        {"+49 (511) 98-765", NULL, "+4951198765"},
        {"+4951112345", "XX", "+4951112345"},        /* unknown region: '+' still works */
        {"0041 44 668 18 00", "US", "+41446681800"}, /* "00" even where IDD is 011 */
        {" 030 1234567 ", "DE", "+49301234567"},
        {"0511/12345", "XX", NULL}, /* national, but no region */
        {"abc", "DE", NULL},
        {"", "DE", NULL},
        {"   ", "DE", NULL},
        {"+", "DE", NULL},
        {"0", "DE", NULL},
        {"\xff\xfe", "DE", NULL},
        {NULL, "DE", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *got = phone_e164(rows[i].in, rows[i].region);
        if (rows[i].out ? !got || strcmp(got, rows[i].out) != 0 : got != NULL)
            fail_msg("row %zu '%s' (%s): got '%s', want '%s'", i,
                     rows[i].in ? rows[i].in : "(null)",
                     rows[i].region ? rows[i].region : "default", got ? got : "(null)",
                     rows[i].out ? rows[i].out : "(null)");
        /* what phone_e164 answers EspoCRM stores unchanged */
        if (got)
            assert_true(phone_espo_valid(got));
        free(got);
    }
}

static void test_international(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } rows[] = {
        {"+4951112345", "+49 511 12345"},
        {"0511/12345", "+49 511 12345"},
        {"+49301234567", "+49 30 1234567"},
        {"+4951198765", "+49 511 98765"},
        {"abc", NULL},
        {"", NULL},
        {NULL, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *got = phone_international(rows[i].in, "DE");
        if (rows[i].out ? !got || strcmp(got, rows[i].out) != 0 : got != NULL)
            fail_msg("row %zu: got '%s', want '%s'", i, got ? got : "(null)",
                     rows[i].out ? rows[i].out : "(null)");
        if (got) {
            /* and it comes back to the same E.164 form */
            char *back = phone_e164(got, "DE");
            char *fwd = phone_e164(rows[i].in, "DE");
            assert_non_null(back);
            assert_non_null(fwd);
            assert_string_equal(back, fwd);
            free(back);
            free(fwd);
        }
        free(got);
    }
}

static void test_eq(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        bool eq;
    } rows[] = {
        {"0511/12345", "+4951112345", true},
        {"0511/12345", "+49 511 12345", true},
        {"(0511) 12345", "0049 511 12345", true},
        {"+49 (511) 98-765", "0511 98765", true},
        {"0511/12345", "0511/12346", false},
        {"+4951112345", "+4351112345", false},
        {"abc", " abc ", true}, /* no E.164 form: trimmed */
        {"abc", "abd", false},
        {"+4951112345", "abc", false},
        {"", "", true},
        {NULL, "+4951112345", false},
        {"+4951112345", NULL, false},
        {NULL, NULL, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (phone_eq(rows[i].a, rows[i].b, "DE") != rows[i].eq)
            fail_msg("row %zu '%s' vs '%s': want %s", i, rows[i].a ? rows[i].a : "(null)",
                     rows[i].b ? rows[i].b : "(null)", rows[i].eq ? "equal" : "different");
    }
}

static void test_default_region(void **state)
{
    (void)state;
    assert_string_equal(phone_default_region(), "DE");
    assert_int_equal(phone_set_default_region("XX"), -1);
    assert_int_equal(phone_set_default_region(""), -1);
    assert_int_equal(phone_set_default_region("DEU"), -1);
    assert_int_equal(phone_set_default_region(NULL), -1);
    assert_string_equal(phone_default_region(), "DE");

    assert_int_equal(phone_set_default_region("at"), 0);
    assert_string_equal(phone_default_region(), "AT");
    char *got = phone_e164("01 5880000", NULL);
    assert_non_null(got);
    assert_string_equal(got, "+4315880000");
    free(got);
    assert_false(phone_eq("0511/12345", "+4951112345", NULL));

    assert_int_equal(phone_set_default_region("DE"), 0);
    assert_true(phone_eq("0511/12345", "+4951112345", NULL));
}

static void test_garbage(void **state)
{
    (void)state;
    size_t n = 100000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    const char fill[] = {'1', '+', 'a', ' '};
    for (size_t f = 0; f < sizeof fill; f++) {
        memset(big, fill[f], n);
        big[0] = '+';
        big[n] = '\0';
        char *s = phone_espo_sanitize(big);
        assert_non_null(s); /* EspoCRM keeps what it cannot parse; its maxLength rejects it */
        assert_false(phone_espo_valid(s));
        free(s);
        assert_false(phone_espo_valid(big));
        assert_null(phone_e164(big, "DE"));
        assert_null(phone_international(big, "DE"));
        assert_false(phone_eq(big, "+4951112345", "DE"));
    }
    free(big);

    static const char *junk[] = {"abc",
                                 "",
                                 "+",
                                 "++49",
                                 "+49",
                                 "00",
                                 "0",
                                 "#",
                                 "\xff",
                                 "+4951112345\n",
                                 "+49 511 12345 ext. 12",
                                 "tel:+4951112345",
                                 "+49\x01"
                                 "511"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        char *s = phone_espo_sanitize(junk[i]);
        assert_non_null(s);
        free(s);
        (void)phone_espo_valid(junk[i]);
        free(phone_e164(junk[i], "DE"));
        free(phone_international(junk[i], NULL));
        (void)phone_eq(junk[i], junk[i], "DE");
    }
    assert_false(phone_espo_valid("+4951112345\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded),       cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_valid),          cmocka_unit_test(test_e164),
        cmocka_unit_test(test_international),  cmocka_unit_test(test_eq),
        cmocka_unit_test(test_default_region), cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
