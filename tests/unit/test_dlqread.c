/* test_dlqread.c: dead letters shown safely (ctl/dlqread.c dlqread_printable): a poison message
 * may hold any bytes; printable ASCII and valid UTF-8 stay as they are, control characters,
 * backslashes and invalid UTF-8 (stray continuation bytes, overlong forms, surrogates, cut
 * sequences) become \xNN, so neither a terminal nor a JSON encoder ever sees them raw. */
#include "dlqread.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static void test_printable(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"{\"v\":1}", 7, "{\"v\":1}"},
        {"Gr\xc3\xbc\xc3\x9f"
         "e \xe2\x86\x92",
         11,
         "Gr\xc3\xbc\xc3\x9f"
         "e \xe2\x86\x92"},
        {"a\nb\x1b[0m", 7, "a\\x0ab\\x1b[0m"},
        {"a\\b", 3, "a\\x5cb"},
        {"\x80\xc0\xaf", 3, "\\x80\\xc0\\xaf"}, /* stray continuation, overlong */
        {"\xed\xa0\x80", 3, "\\xed\\xa0\\x80"}, /* a surrogate */
        {"x\xe2\x86", 3, "x\\xe2\\x86"},        /* cut at the end */
        {"n\0l", 3, "n\\x00l"},
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = dlqread_printable(cases[i].in, cases[i].len);
        assert_non_null(s);
        if (strcmp(s, cases[i].want) != 0)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, s, cases[i].want);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
