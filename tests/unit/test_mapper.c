/* test_mapper.c: the 8 Stammdaten fields (worker/mapper.c, SPEC §5.1): mapping both ways with
 * the null rules and the date conversion, equality, and validation by table. */
#include "mapper.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", s, e.text);
    return j;
}

/* json_equal of got (taken) against the JSON text want. */
static void expect(json_t *got, const char *want)
{
    json_t *w = parse(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        fail_msg("got %s\nwant %s", g, want);
    }
    json_decref(w);
    json_decref(got);
}

static void test_to_advo(void **state)
{
    (void)state;
    json_t *e = parse("{\"id\":\"e1\",\"name\":\"Müller\",\"vorname\":\"Anna\",\"rechtsform\":\"\","
                      "\"titel\":null,\"anrede\":\"Frau\",\"bAnrede\":\"Sehr geehrte Frau "
                      "Müller\",\"dateOfBirth\":\"1980-05-17\",\"syncStatus\":\"dirty\","
                      "\"art\":\"Person\"}");
    expect(map_to_advo(e), "{\"name\":\"Müller\",\"vorname\":\"Anna\",\"rechtsform\":null,"
                           "\"titel\":null,\"anrede\":\"Frau\",\"bAnrede\":\"Sehr geehrte Frau "
                           "Müller\",\"zusatz\":null,\"geburtsdatum\":\"1980-05-17T00:00:00\"}");
    json_decref(e);
    e = parse("{\"name\":\"X\",\"dateOfBirth\":\"17.05.1980\"}");
    assert_null(map_to_advo(e));
    json_decref(e);
}

static void test_to_espo(void **state)
{
    (void)state;
    json_t *a = parse("{\"betNr\":1001,\"rowId\":\"r9\",\"name\":\"GmbH & Co. KG\","
                      "\"vorname\":null,\"rechtsform\":\"GmbH\",\"titel\":\"Dr.\",\"anrede\":\"\","
                      "\"zusatz\":\"Abt. 3\",\"geburtsdatum\":\"1970-01-02T00:00:00\","
                      "\"kurzname\":\"never\",\"kommunikation\":[]}");
    expect(map_to_espo(a), "{\"name\":\"GmbH & Co. KG\",\"vorname\":null,\"rechtsform\":\"GmbH\","
                           "\"titel\":\"Dr.\",\"anrede\":null,\"bAnrede\":null,"
                           "\"zusatz\":\"Abt. 3\",\"dateOfBirth\":\"1970-01-02\"}");
    json_decref(a);
    /* a null name never clears EspoCRM's required name */
    a = parse("{\"name\":null,\"vorname\":\"Bo\"}");
    json_t *e = map_to_espo(a);
    assert_null(json_object_get(e, "name"));
    assert_string_equal(json_string_value(json_object_get(e, "vorname")), "Bo");
    json_decref(e);
    json_decref(a);
}

static void test_equal(void **state)
{
    (void)state;
    json_t *e = parse("{\"name\":\"A\",\"vorname\":\"\",\"dateOfBirth\":\"1980-05-17\"}");
    json_t *a = parse("{\"name\":\"A\",\"vorname\":null,\"geburtsdatum\":\"1980-05-17T00:00:00\","
                      "\"rowId\":\"x\"}");
    assert_true(map_equal(e, a));
    json_object_set_new(a, "geburtsdatum", json_string("1980-05-17T00:00:00.000"));
    assert_true(map_equal(e, a));
    json_object_set_new(a, "zusatz", json_string("neu"));
    assert_false(map_equal(e, a));
    json_object_set_new(a, "zusatz", json_null());
    json_object_set_new(a, "name", json_string("a"));
    assert_false(map_equal(e, a)); /* case matters in names */
    json_decref(e);
    json_decref(a);
}

struct vcase {
    const char *entity;
    const char *msg; /* NULL = valid */
};

static const struct vcase vcases[] = {
    {"{\"name\":\"Müller\"}", NULL},
    {"{\"name\":\"\"}", "name: required"},
    {"{\"vorname\":\"A\"}", "name: required"},
    {"{\"name\":\"A\",\"vorname\":\"123456789012345678901234567890\"}", NULL},
    {"{\"name\":\"A\",\"vorname\":\"1234567890123456789012345678901\"}",
     "vorname: longer than 30 characters"},
    /* 30 umlauts are 60 bytes but 30 characters */
    {"{\"name\":\"A\",\"vorname\":\"ääääääääääääääääääääääääääääää\"}", NULL},
    {"{\"name\":\"A\",\"anrede\":\"123456789012345678901234567890123456\"}",
     "anrede: longer than 35 characters"},
    {"{\"name\":\"A\",\"dateOfBirth\":\"1980-13-01\"}", "dateOfBirth: not a date (YYYY-MM-DD)"},
    {"{\"name\":\"A\",\"dateOfBirth\":null}", NULL},
    {"{\"name\":\"A\",\"titel\":5}", "titel: not a text"},
};

static void test_validate(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vcases / sizeof vcases[0]; i++) {
        json_t *e = parse(vcases[i].entity);
        char msg[128] = "";
        int rc = map_validate(e, msg, sizeof msg);
        if (vcases[i].msg ? rc != -1 || strcmp(msg, vcases[i].msg) != 0 : rc != 0)
            fail_msg("%s: rc %d msg \"%s\", want \"%s\"", vcases[i].entity, rc, msg,
                     vcases[i].msg ? vcases[i].msg : "(valid)");
        json_decref(e);
    }
    char name[200];
    memset(name, 'x', 141);
    name[141] = '\0';
    json_t *e = json_pack("{s:s}", "name", name);
    char msg[128];
    assert_int_equal(map_validate(e, msg, sizeof msg), -1);
    assert_string_equal(msg, "name: longer than 140 characters");
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_advo),
        cmocka_unit_test(test_to_espo),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
