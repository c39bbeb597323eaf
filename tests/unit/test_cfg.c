/* test_cfg.c: configuration loading (common/cfg.c): defaults, X_FILE, types and ranges,
 * missing required values, KAFKA_CFG_* passthrough, help text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

#define T CFG_WORKER
#define VAR(n, t, d, h, ...)                                                                       \
    {                                                                                              \
        .name = n, .type = t, .def = d, .users = T, .help = h, __VA_ARGS__                         \
    }

static const struct cfg_def defs[] = {
    VAR("T_STR", CFG_STR, NULL, "a required string", .required = true),
    VAR("T_OPT", CFG_STR, NULL, "an optional string"),
    VAR("T_INT", CFG_INT, "5", "an int", .min = 1, .max = 10),
    VAR("T_BOOL", CFG_BOOL, "0", "a bool"),
    VAR("T_WAIT_MS", CFG_DURATION, "250", "a duration in ms", .min = 0, .max = 3600000),
    VAR("T_EVERY_S", CFG_DURATION, "2", "a duration in s", .min = 1000, .max = 86400000),
    VAR("T_LISTEN", CFG_HOSTPORT, "0.0.0.0:8080", "an address"),
    VAR("T_RATE", CFG_DOUBLE, "0", "a number", .min = 0, .max = 100),
    VAR("T_FMT", CFG_ENUM, "json", "a choice", .choices = "json|text"),
    VAR("T_KEY", CFG_STR, NULL, "a secret", .secret = true),
    VAR("T_BACKOFF", CFG_DURATIONS, "1m,5m", "durations", .min = 1000, .max = 86400000),
    VAR("T_URL", CFG_URL, NULL, "a URL"),
    VAR("T_B64", CFG_BASE64, NULL, "base64"),
    {.name = "T_OTHER", .type = CFG_STR, .required = true, .users = CFG_PRODUCER, .help = "x"},
    {.name = NULL},
};

static const char *const all_vars[] = {"T_STR",     "T_OPT",     "T_INT",  "T_BOOL", "T_WAIT_MS",
                                       "T_EVERY_S", "T_LISTEN",  "T_RATE", "T_FMT",  "T_KEY",
                                       "T_OTHER",   "T_BACKOFF", "T_URL",  "T_B64"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++) {
        char name[64];
        unsetenv(all_vars[i]);
        snprintf(name, sizeof name, "%s_FILE", all_vars[i]);
        unsetenv(name);
    }
    static const char *const kafka[] = {"KAFKA_CFG_PARTITIONER", "KAFKA_CFG_ENABLE_AUTO_COMMIT",
                                        "KAFKA_CFG_BOOTSTRAP_SERVERS", "KAFKA_CFG_ACKS"};
    for (size_t i = 0; i < sizeof kafka / sizeof kafka[0]; i++)
        unsetenv(kafka[i]);
    setenv("T_STR", "hello", 1);
    return 0;
}

static struct cfg *load_ok(void)
{
    struct cfg *cfg = NULL;
    char err[256] = "";
    int rc = cfg_load(&cfg, defs, T, err, sizeof err);
    if (rc != 0)
        fail_msg("cfg_load: %s", err);
    return cfg;
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg *cfg = load_ok();
    assert_string_equal(cfg_str(cfg, "T_STR"), "hello");
    assert_null(cfg_str(cfg, "T_OPT"));
    assert_int_equal(cfg_int(cfg, "T_INT"), 5);
    assert_false(cfg_bool(cfg, "T_BOOL"));
    assert_int_equal(cfg_duration_ms(cfg, "T_WAIT_MS"), 250);
    assert_int_equal(cfg_duration_ms(cfg, "T_EVERY_S"), 2000);
    assert_true(cfg_double(cfg, "T_RATE") == 0.0);
    assert_int_equal(cfg_int(cfg, "T_FMT"), 0);
    char host[64];
    int port = 0;
    assert_int_equal(cfg_hostport(cfg, "T_LISTEN", host, sizeof host, &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 8080);
    cfg_free(cfg);
}

static void test_file_variant(void **state)
{
    (void)state;
    char path[] = "/tmp/vmh-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from-file\n", 10), 10);
    close(fd);
    unsetenv("T_STR");
    setenv("T_STR_FILE", path, 1);
    struct cfg *cfg = load_ok();
    assert_string_equal(cfg_str(cfg, "T_STR"), "from-file"); /* trailing newline stripped */
    cfg_free(cfg);

    /* both X and X_FILE: ambiguous, an error naming X */
    setenv("T_STR", "direct", 1);
    char err[256] = "";
    assert_int_equal(cfg_load(&cfg, defs, T, err, sizeof err), -1);
    assert_null(cfg);
    assert_non_null(strstr(err, "T_STR"));
    unsetenv("T_STR");

    /* unreadable file: an error naming the variable */
    setenv("T_STR_FILE", "/nonexistent/vmh-secret", 1);
    assert_int_equal(cfg_load(&cfg, defs, T, err, sizeof err), -1);
    assert_non_null(strstr(err, "T_STR_FILE"));
    unlink(path);
}

static void test_missing_required(void **state)
{
    (void)state;
    unsetenv("T_STR");
    struct cfg *cfg = (struct cfg *)1;
    char err[256] = "";
    assert_int_equal(cfg_load(&cfg, defs, T, err, sizeof err), -1);
    assert_null(cfg);
    assert_non_null(strstr(err, "T_STR"));
    assert_non_null(strstr(err, "required"));
}

static void test_other_users_rows_ignored(void **state)
{
    (void)state;
    /* T_OTHER is required, but only for the producer */
    struct cfg *cfg = load_ok();
    cfg_free(cfg);
}

struct bad_case {
    const char *var, *value;
};

static void test_invalid_values(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"T_INT", "0"},
        {"T_INT", "11"},
        {"T_INT", "5x"},
        {"T_INT", ""},
        {"T_INT", " 5"},
        {"T_BOOL", "maybe"},
        {"T_WAIT_MS", "-1"},
        {"T_WAIT_MS", "10 s"},
        {"T_WAIT_MS", "2d"},
        {"T_EVERY_S", "0"},
        {"T_EVERY_S", "999ms"},
        {"T_LISTEN", "8080"},
        {"T_LISTEN", ":80"},
        {"T_LISTEN", "host:99999"},
        {"T_RATE", "abc"},
        {"T_RATE", "101"},
        {"T_RATE", "nan"},
        {"T_FMT", "xml"},
        {"T_STR", ""},
        {"T_BACKOFF", ""},
        {"T_BACKOFF", "1m,,5m"},
        {"T_BACKOFF", "1m,5x"},
        {"T_BACKOFF", "500ms"},
        {"T_BACKOFF", "1m,2d"},
        {"T_BACKOFF", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"},
        {"T_URL", "not-a-url"},
        {"T_URL", "crm.example.com"},
        {"T_URL", "ftp://crm.example.com"},
        {"T_URL", "http://"},
        {"T_B64", "not base64!"},
        {"T_B64", "abc"},
        {"T_B64", "===="},
        {"KAFKA_CFG_PARTITIONER", "random"},
        {"KAFKA_CFG_ENABLE_AUTO_COMMIT", "false"},
        {"KAFKA_CFG_BOOTSTRAP_SERVERS", "elsewhere:9092"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_env(NULL);
        setenv(cases[i].var, cases[i].value, 1);
        struct cfg *cfg = NULL;
        char err[256] = "";
        if (cfg_load(&cfg, defs, T, err, sizeof err) != -1)
            fail_msg("%s=\"%s\" accepted", cases[i].var, cases[i].value);
        assert_null(cfg);
        if (!strstr(err, cases[i].var))
            fail_msg("error for %s does not name it: %s", cases[i].var, err);
    }
}

static void test_valid_values(void **state)
{
    (void)state;
    setenv("T_INT", "10", 1);
    setenv("T_BOOL", "YES", 1);
    setenv("T_WAIT_MS", "2s", 1);
    setenv("T_EVERY_S", "5m", 1);
    setenv("T_LISTEN", "[::1]:9090", 1);
    setenv("T_RATE", "12.5", 1);
    setenv("T_FMT", "TEXT", 1);
    struct cfg *cfg = load_ok();
    long long list[CFG_DURATIONS_MAX];
    assert_int_equal(cfg_durations_ms(cfg, "T_BACKOFF", list, CFG_DURATIONS_MAX), 2); /* default */
    cfg_free(cfg);
    setenv("T_BACKOFF", " 2 , 3s,1h ", 1);
    setenv("T_URL", "https://crm.example.com:8443/base", 1);
    setenv("T_B64", "ZGV2LWFkdm93YXJlLWtleQ==", 1);
    setenv("KAFKA_CFG_ACKS", "ALL", 1); /* the design's own value is no change */
    cfg = load_ok();
    assert_int_equal(cfg_durations_ms(cfg, "T_BACKOFF", list, CFG_DURATIONS_MAX), 3);
    assert_int_equal(list[0], 2000);
    assert_int_equal(list[1], 3000);
    assert_int_equal(list[2], 3600000);
    assert_int_equal(cfg_int(cfg, "T_INT"), 10);
    assert_true(cfg_bool(cfg, "T_BOOL"));
    assert_int_equal(cfg_duration_ms(cfg, "T_WAIT_MS"), 2000);
    assert_int_equal(cfg_duration_ms(cfg, "T_EVERY_S"), 300000);
    assert_true(cfg_double(cfg, "T_RATE") == 12.5);
    assert_int_equal(cfg_int(cfg, "T_FMT"), 1);
    char host[64];
    int port = 0;
    assert_int_equal(cfg_hostport(cfg, "T_LISTEN", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9090);
    cfg_free(cfg);
}

static void test_secret_value_not_echoed(void **state)
{
    (void)state;
    static const struct cfg_def sdefs[] = {
        VAR("T_KEY", CFG_INT, NULL, "a secret number", .secret = true, .max = 10),
        {.name = NULL},
    };
    setenv("T_KEY", "s3cr3t-value", 1);
    struct cfg *cfg = NULL;
    char err[256] = "";
    assert_int_equal(cfg_load(&cfg, sdefs, T, err, sizeof err), -1);
    assert_non_null(strstr(err, "T_KEY"));
    assert_null(strstr(err, "s3cr3t"));
}

static int collect(const char *name, const char *value, void *ud)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s=%s;", name, value);
    return 0;
}

static void test_kafka_passthrough(void **state)
{
    (void)state;
    char path[] = "/tmp/vmh-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "pw\n", 3), 3);
    close(fd);
    setenv("KAFKA_CFG_SECURITY_PROTOCOL", "SASL_SSL", 1);
    setenv("KAFKA_CFG_SASL_PASSWORD_FILE", path, 1);
    char out[512] = "", err[256] = "";
    assert_int_equal(cfg_foreach_kafka(collect, out, err, sizeof err), 0);
    assert_non_null(strstr(out, "security.protocol=SASL_SSL;"));
    assert_non_null(strstr(out, "sasl.password=pw;"));
    unsetenv("KAFKA_CFG_SECURITY_PROTOCOL");
    unsetenv("KAFKA_CFG_SASL_PASSWORD_FILE");
    unlink(path);
}

static void test_help_lists_variables(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_help(f, "prog", "summary", defs, T);
    fclose(f);
    assert_non_null(strstr(buf, "T_STR"));
    assert_non_null(strstr(buf, "(required)"));
    assert_non_null(strstr(buf, "(default: 5)"));
    assert_non_null(strstr(buf, "json|text"));
    assert_null(strstr(buf, "T_OTHER")); /* not this binary's */
    free(buf);
}

static void test_project_table_is_consistent(void **state)
{
    (void)state;
    for (const struct cfg_def *d = cfg_vars; d->name; d++) {
        if (d->required && d->def)
            fail_msg("%s: required with a default", d->name);
        if (d->users == 0)
            fail_msg("%s: used by no binary", d->name);
        if (d->type == CFG_ENUM && !d->choices)
            fail_msg("%s: enum without choices", d->name);
        for (const struct cfg_def *e = d + 1; e->name; e++)
            if (strcmp(d->name, e->name) == 0)
                fail_msg("%s: listed twice", d->name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_file_variant, clear_env),
        cmocka_unit_test_setup(test_missing_required, clear_env),
        cmocka_unit_test_setup(test_other_users_rows_ignored, clear_env),
        cmocka_unit_test_setup(test_invalid_values, clear_env),
        cmocka_unit_test_setup(test_valid_values, clear_env),
        cmocka_unit_test_setup(test_secret_value_not_echoed, clear_env),
        cmocka_unit_test_setup(test_kafka_passthrough, clear_env),
        cmocka_unit_test_setup(test_help_lists_variables, clear_env),
        cmocka_unit_test(test_project_table_is_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
