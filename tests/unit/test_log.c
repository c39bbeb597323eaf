/* test_log.c: structured logging (common/log.c): JSON and text lines, level filter, redaction,
 * escaping, and whole lines under concurrent writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Logs go into a temporary file; read_all() returns its content (caller frees). */
static int g_fd = -1;

static int open_sink(void **state)
{
    (void)state;
    char path[] = "/tmp/vmh-log-XXXXXX";
    g_fd = mkstemp(path);
    assert_true(g_fd >= 0);
    unlink(path);
    log_setup(LOG_DEBUG, LOG_JSON, g_fd);
    return 0;
}

static int close_sink(void **state)
{
    (void)state;
    log_setup(LOG_INFO, LOG_JSON, 2);
    close(g_fd);
    return 0;
}

static char *read_all(void)
{
    off_t len = lseek(g_fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(pread(g_fd, buf, (size_t)len, 0), len);
    return buf;
}

static json_t *only_line(void)
{
    char *text = read_all();
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0'); /* exactly one line */
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    if (!o)
        fail_msg("not JSON: %s (%s)", text, e.text);
    free(text);
    return o;
}

static void test_json_line_fields(void **state)
{
    (void)state;
    log_info("sync done", LOG_STR("entity_id", "abc\"\n"), LOG_INT("calls", 3),
             LOG_DBL("duration_ms", 1.5), LOG_BOOL("ok", 1), LOG_STR("betnr", NULL));
    json_t *o = only_line();
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "sync done");
    assert_string_equal(json_string_value(json_object_get(o, "entity_id")), "abc\"\n");
    assert_int_equal(json_integer_value(json_object_get(o, "calls")), 3);
    assert_true(json_real_value(json_object_get(o, "duration_ms")) == 1.5);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_true(json_is_null(json_object_get(o, "betnr")));
    const char *ts = json_string_value(json_object_get(o, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-11-23T00:00:00.000Z */
    assert_int_equal(ts[23], 'Z');
    json_decref(o);
}

static void test_level_filter(void **state)
{
    (void)state;
    log_setup(LOG_WARN, LOG_JSON, g_fd);
    log_debug("hidden");
    log_info("hidden too");
    log_warn("shown");
    json_t *o = only_line();
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "shown");
    json_decref(o);
}

static void test_redaction(void **state)
{
    (void)state;
    static const char *const secret_keys[] = {"api_key",        "ESPOCRM_API_KEY", "secret",
                                              "webhook_secret", "password",        "access_token",
                                              "Authorization",  "signature"};
    for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++) {
        assert_int_equal(ftruncate(g_fd, 0), 0);
        assert_int_equal(lseek(g_fd, 0, SEEK_SET), 0);
        assert_int_equal(lseek(g_fd, 0, SEEK_SET), 0);
        log_info("x", LOG_STR(secret_keys[i], "hunter2"));
        char *text = read_all();
        if (strstr(text, "hunter2"))
            fail_msg("key %s leaked its value: %s", secret_keys[i], text);
        assert_non_null(strstr(text, "[redacted]"));
        free(text);
    }
    assert_false(log_key_is_secret("entity_id"));
    assert_false(log_key_is_secret("betnr"));
}

static void test_text_format(void **state)
{
    (void)state;
    log_setup(LOG_INFO, LOG_TEXT, g_fd);
    log_error("boom", LOG_STR("entity_id", "e1"), LOG_STR("why", "two words"),
              LOG_STR("token", "t0ps3cret"), LOG_INT("n", 7));
    char *text = read_all();
    assert_non_null(strstr(text, "error boom entity_id=e1 why=\"two words\""));
    assert_non_null(strstr(text, "token=[redacted] n=7\n"));
    assert_null(strstr(text, "t0ps3cret"));
    free(text);
}

/* A value can never end its line or forge a field: an id with a newline (issue 14), quotes,
 * backslashes, '=' and control bytes are escaped; JSON keeps a value that is not UTF-8. */
static void test_text_escaping(void **state)
{
    (void)state;
    log_setup(LOG_INFO, LOG_TEXT, g_fd);
    log_info("x", LOG_STR("entity_id", "e1\n2026-01-01 error forged=1"), LOG_STR("q", "a\"b\\c"),
             LOG_STR("eq", "k=v"), LOG_STR("ctl", "\x01\t"), LOG_STR("empty", ""),
             LOG_STR("utf8", "Müller"));
    char *text = read_all();
    assert_non_null(strchr(text, '\n'));
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1); /* one line */
    assert_non_null(strstr(text, "entity_id=\"e1\\n2026-01-01 error forged=1\""));
    assert_non_null(strstr(text, "q=\"a\\\"b\\\\c\""));
    assert_non_null(strstr(text, "eq=\"k=v\""));
    assert_non_null(strstr(text, "ctl=\"\\x01\\t\""));
    assert_non_null(strstr(text, "empty=\"\""));
    assert_non_null(strstr(text, "utf8=Müller"));
    free(text);
    assert_int_equal(ftruncate(g_fd, 0), 0);
    assert_int_equal(lseek(g_fd, 0, SEEK_SET), 0);
    log_setup(LOG_INFO, LOG_JSON, g_fd);
    log_info("x", LOG_STR("entity_id", "ab\xff\xfe"));
    json_t *o = only_line();
    assert_string_equal(json_string_value(json_object_get(o, "entity_id")), "ab\\xff\\xfe");
    json_decref(o);
}

static void test_parse(void **state)
{
    (void)state;
    enum log_level l;
    enum log_format f;
    assert_int_equal(log_level_parse("WARN", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse("verbose", &l), -1);
    assert_int_equal(log_format_parse("text", &f), 0);
    assert_int_equal(f, LOG_TEXT);
    assert_int_equal(log_format_parse("xml", &f), -1);
}

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 500; i++)
        log_info("concurrent line with some padding to make it longer than a few bytes",
                 LOG_INT("i", i),
                 LOG_STR("pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    return NULL;
}

static void test_threads_whole_lines(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *text = read_all();
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            fail_msg("torn line: %s", line);
        json_decref(o);
        lines++;
    }
    assert_int_equal(lines, 2000);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_line_fields, open_sink, close_sink),
        cmocka_unit_test_setup_teardown(test_level_filter, open_sink, close_sink),
        cmocka_unit_test_setup_teardown(test_redaction, open_sink, close_sink),
        cmocka_unit_test_setup_teardown(test_text_format, open_sink, close_sink),
        cmocka_unit_test_setup_teardown(test_text_escaping, open_sink, close_sink),
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_threads_whole_lines, open_sink, close_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
