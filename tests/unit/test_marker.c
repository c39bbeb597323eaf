/* test_marker.c: the marker codec (worker/marker.c, SPEC §5.4) by table: the seed's own
 * markers, slots, user text around the marker, malformed markers kept as user text, non-ASCII
 * values, values with ':' or ']' inside; then a fuzz: random bytes never crash the parser and
 * every marker it writes parses back to what was written. */
#include "marker.h"

#include <jansson.h>

#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct pcase {
    const char *bemerkung;
    enum marker_kind kind;
    int kz;
    const char *value; /* MARKER_VALUE */
    const char *user;
};

static const struct pcase parse_cases[] = {
    /* the seed's examples */
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4]", MARKER_VALUE, 4, "max@example.com", ""},
    {"[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:1]", MARKER_VALUE, 1, "+49 511 12345", ""},
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4] Nur vormittags erreichbar", MARKER_VALUE, 4,
     "max@example.com", "Nur vormittags erreichbar"},
    {"[ESPOCRM:cmV1c2VAZXhhbXBsZS5jb20=:4]", MARKER_VALUE, 4, "reuse@example.com", ""},
    {"[ESPOCRM-SLOT:4]", MARKER_SLOT, 4, NULL, ""},
    {"[ESPOCRM-SLOT:12] alte Kanzlei", MARKER_SLOT, 12, NULL, "alte Kanzlei"},
    /* user text around the marker: kept byte for byte, less the one separating space */
    {"Zentrale [ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:1]", MARKER_VALUE, 1, "+49 511 12345", "Zentrale"},
    {"vorher [ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:1] nachher", MARKER_VALUE, 1, "+49 511 12345",
     "vorher nachher"},
    {"[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:1]  zwei Leerzeichen", MARKER_VALUE, 1, "+49 511 12345",
     " zwei Leerzeichen"},
    {"[ESPOCRM:KzQ5IDUxMSAxMjM0NQ==:1]direkt", MARKER_VALUE, 1, "+49 511 12345", "direkt"},
    /* non-ASCII and syntax characters inside the value: base64 protects them */
    {"[ESPOCRM:bcO8bGxlckBiw7xyby5kZQ==:4]", MARKER_VALUE, 4, "müller@büro.de", ""},
    {"[ESPOCRM:YTpiXWM=:10]", MARKER_VALUE, 10, "a:b]c", ""},
    /* the first well-formed marker counts; later ones are user text */
    {"[ESPOCRM-SLOT:2] [ESPOCRM-SLOT:7]", MARKER_SLOT, 2, NULL, "[ESPOCRM-SLOT:7]"},
    {"[ESPOCRM:!!:1] [ESPOCRM-SLOT:3]", MARKER_SLOT, 3, NULL, "[ESPOCRM:!!:1]"},
    /* malformed: no marker, all user text */
    {NULL, MARKER_NONE, 0, NULL, ""},
    {"", MARKER_NONE, 0, NULL, ""},
    {"Nur vormittags", MARKER_NONE, 0, NULL, "Nur vormittags"},
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29t:0]", MARKER_NONE, 0, NULL, "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:0]"},
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29t:13]", MARKER_NONE, 0, NULL,
     "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:13]"},
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29t:04]", MARKER_NONE, 0, NULL,
     "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:04]"},
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4", MARKER_NONE, 0, NULL, "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4"},
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29t4]", MARKER_NONE, 0, NULL, "[ESPOCRM:bWF4QGV4YW1wbGUuY29t4]"},
    {"[ESPOCRM:bWF4QGV4YW1wbGUuY29:4]", MARKER_NONE, 0, NULL, "[ESPOCRM:bWF4QGV4YW1wbGUuY29:4]"},
    {"[ESPOCRM:YQ=A:4]", MARKER_NONE, 0, NULL, "[ESPOCRM:YQ=A:4]"},
    {"[ESPOCRM:====:4]", MARKER_NONE, 0, NULL, "[ESPOCRM:====:4]"},
    {"[ESPOCRM::4]", MARKER_NONE, 0, NULL, "[ESPOCRM::4]"},
    {"[ESPOCRM:/w==:4]", MARKER_NONE, 0, NULL, "[ESPOCRM:/w==:4]"}, /* 0xff: not UTF-8 */
    {"[ESPOCRM:YQBi:4]", MARKER_NONE, 0, NULL, "[ESPOCRM:YQBi:4]"}, /* a NUL inside */
    {"[espocrm:bWF4QGV4YW1wbGUuY29t:4]", MARKER_NONE, 0, NULL, "[espocrm:bWF4QGV4YW1wbGUuY29t:4]"},
    {"[ESPOCRM-SLOT:]", MARKER_NONE, 0, NULL, "[ESPOCRM-SLOT:]"},
    {"[ESPOCRM-SLOT:4:4]", MARKER_NONE, 0, NULL, "[ESPOCRM-SLOT:4:4]"},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const struct pcase *c = &parse_cases[i];
        struct marker m;
        print_message("case %zu: %s\n", i, c->bemerkung ? c->bemerkung : "(null)");
        assert_int_equal(marker_parse(c->bemerkung, &m), 0);
        assert_int_equal(m.kind, c->kind);
        assert_int_equal(m.kz, c->kz);
        if (c->value)
            assert_string_equal(m.value, c->value);
        else
            assert_null(m.value);
        assert_string_equal(m.user, c->user);
        marker_free(&m);
    }
}

struct fcase {
    const char *value; /* NULL: a slot */
    int kz;
    const char *user;
    const char *want; /* NULL: refused */
};

static const struct fcase format_cases[] = {
    {"max@example.com", 4, NULL, "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4]"},
    {"new@example.com", 4, "", "[ESPOCRM:bmV3QGV4YW1wbGUuY29t:4]"},
    {"+49 30 987654", 1, NULL, "[ESPOCRM:KzQ5IDMwIDk4NzY1NA==:1]"},
    {"+49 511 999999", 1, NULL, "[ESPOCRM:KzQ5IDUxMSA5OTk5OTk=:1]"},
    {"max@example.com", 4, "Nur vormittags erreichbar",
     "[ESPOCRM:bWF4QGV4YW1wbGUuY29t:4] Nur vormittags erreichbar"},
    {NULL, 4, NULL, "[ESPOCRM-SLOT:4]"},
    {NULL, 10, "alt", "[ESPOCRM-SLOT:10] alt"},
    {"müller@büro.de", 4, NULL, "[ESPOCRM:bcO8bGxlckBiw7xyby5kZQ==:4]"},
    {"a:b]c", 10, NULL, "[ESPOCRM:YTpiXWM=:10]"},
    {"x", 0, NULL, NULL},
    {"x", 13, NULL, NULL},
    {"", 4, NULL, NULL},
};

static void test_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0]; i++) {
        const struct fcase *c = &format_cases[i];
        char *out = marker_format(c->value, c->kz, c->user);
        print_message("case %zu\n", i);
        if (!c->want) {
            assert_null(out);
            continue;
        }
        assert_non_null(out);
        assert_string_equal(out, c->want);
        free(out);
    }
}

/* A reproducible generator (the fuzz must fail the same way twice). */
static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned below)
{
    return th_rand(&rng, below);
}

/* Random text from an alphabet rich in marker syntax, with random (possibly broken) UTF-8. */
static void random_text(char *buf, size_t cap)
{
    static const char *const pieces[] = {
        "[ESPOCRM:", "[ESPOCRM-SLOT:", "]",        ":",    "=",    " ", "4", "12", "0",
        "YQ",        "bWF4",           "\xc3\xbc", "\xff", "\xc3", "[", "ab"};
    size_t len = 0, n = rnd(12);
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd(sizeof pieces / sizeof pieces[0])];
        if (len + strlen(p) + 1 >= cap)
            break;
        memcpy(buf + len, p, strlen(p));
        len += strlen(p);
    }
    buf[len] = '\0';
}

static void test_fuzz(void **state)
{
    (void)state;
    char text[256], value[64], user[64];
    for (int i = 0; i < 20000; i++) {
        /* 1. Any text parses; what it finds is well-formed; the user text is never longer. */
        struct marker m;
        random_text(text, sizeof text);
        assert_int_equal(marker_parse(text, &m), 0);
        assert_non_null(m.user);
        assert_true(strlen(m.user) <= strlen(text));
        if (m.kind != MARKER_NONE)
            assert_true(m.kz >= 1 && m.kz <= 12);
        if (m.kind == MARKER_NONE)
            assert_string_equal(m.user, text);
        if (m.kind == MARKER_VALUE)
            assert_true(strlen(m.value) > 0);
        marker_free(&m);

        /* 2. What we write parses back: value, kz and user text. */
        random_text(value, sizeof value);
        random_text(user, sizeof user);
        int kz = 1 + (int)rnd(12);
        bool slot = rnd(4) == 0;
        char *out = marker_format(slot ? NULL : value, kz, user);
        if (!slot && !*value) {
            assert_null(out);
            continue;
        }
        assert_non_null(out);
        assert_int_equal(marker_parse(out, &m), 0);
        json_t *utf8 = json_string(value); /* NULL: not UTF-8, the parser refuses the value */
        if (slot || utf8) {
            assert_int_equal(m.kind, slot ? MARKER_SLOT : MARKER_VALUE);
            if (!slot)
                assert_string_equal(m.value, value);
            assert_int_equal(m.kz, kz);
            assert_string_equal(m.user, user);
        }
        json_decref(utf8);
        marker_free(&m);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
