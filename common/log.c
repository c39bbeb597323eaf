/* log.c: structured, thread-safe logging (see log.h). JSON lines are built with jansson, so
 * every string is escaped correctly; text lines are for people at a terminal. */
#include "log.h"

#include "synctime.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_REDACTED "[redacted]"

static struct {
    enum log_level level;
    enum log_format format;
    int fd;
    pthread_mutex_t mu;
} g_log = {LOG_INFO, LOG_JSON, 2, PTHREAD_MUTEX_INITIALIZER};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level level, enum log_format format, int fd)
{
    pthread_mutex_lock(&g_log.mu);
    g_log.level = level;
    g_log.format = format;
    g_log.fd = fd;
    pthread_mutex_unlock(&g_log.mu);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (s && strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (s && strcasecmp(s, "json") == 0)
        *out = LOG_JSON;
    else if (s && strcasecmp(s, "text") == 0)
        *out = LOG_TEXT;
    else
        return -1;
    return 0;
}

bool log_enabled(enum log_level level)
{
    return level >= g_log.level;
}

bool log_key_is_secret(const char *key)
{
    static const char *const words[] = {"key", "secret", "password", "token", "signature"};
    if (!key)
        return false;
    if (strcasecmp(key, "authorization") == 0)
        return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(key, words[i]))
            return true;
    return false;
}

static void format_ts(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    st_format_utc_ms((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, buf, len);
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return; /* a logger has nowhere to report its own failure */
        buf += n;
        len -= (size_t)n;
    }
}

/* A JSON string of s; bytes that are not UTF-8 (an id off the wire) become "\\xNN" text
 * instead of the field going missing. */
static json_t *string_json(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return json_null();
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        fprintf(f, *c >= 0x80 ? "\\x%02x" : "%c", *c);
    fclose(f);
    j = json_string(buf);
    free(buf);
    return j ? j : json_null();
}

static json_t *kv_json(const struct log_kv *kv)
{
    if (log_key_is_secret(kv->key))
        return json_string(LOG_REDACTED);
    switch (kv->type) {
    case LOG_KV_STR:
        return kv->s ? string_json(kv->s) : json_null();
    case LOG_KV_INT:
        return json_integer(kv->i);
    case LOG_KV_DBL:
        return json_real(kv->d);
    case LOG_KV_BOOL:
        return json_boolean(kv->i);
    default:
        return json_null();
    }
}

static char *line_json(const char *ts, enum log_level level, const char *msg, va_list ap)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "msg", json_string(msg ? msg : ""));
    for (;;) {
        struct log_kv kv = va_arg(ap, struct log_kv);
        if (kv.type == LOG_KV_END)
            break;
        if (kv.key)
            json_object_set_new(o, kv.key, kv_json(&kv));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;
}

/* A text line's value: bare when it is plain, else in double quotes with ", \\ and every control
 * byte escaped (\n, \r, \t, \xNN), so a value can never end the line or forge a field (an
 * entity id with a newline in it stays one line). Bytes from 0x80 pass as they are (UTF-8). */
static void text_value(FILE *f, const char *s)
{
    bool plain = *s != '\0';
    for (const unsigned char *c = (const unsigned char *)s; plain && *c; c++)
        plain = *c > ' ' && *c != '"' && *c != '\\' && *c != '=' && *c != 0x7f;
    if (plain) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c == '\r')
            fputs("\\r", f);
        else if (*c == '\t')
            fputs("\\t", f);
        else if (*c < ' ' || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

static char *line_text(const char *ts, enum log_level level, const char *msg, va_list ap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "%s %-5s %s", ts, level_names[level], msg ? msg : "");
    for (;;) {
        struct log_kv kv = va_arg(ap, struct log_kv);
        if (kv.type == LOG_KV_END)
            break;
        if (!kv.key)
            continue;
        if (log_key_is_secret(kv.key)) {
            fprintf(f, " %s=%s", kv.key, LOG_REDACTED);
            continue;
        }
        switch (kv.type) {
        case LOG_KV_STR:
            fprintf(f, " %s=", kv.key);
            if (kv.s)
                text_value(f, kv.s);
            else
                fputs("null", f);
            break;
        case LOG_KV_INT:
            fprintf(f, " %s=%lld", kv.key, kv.i);
            break;
        case LOG_KV_DBL:
            fprintf(f, " %s=%g", kv.key, kv.d);
            break;
        case LOG_KV_BOOL:
            fprintf(f, " %s=%s", kv.key, kv.i ? "true" : "false");
            break;
        default:
            break;
        }
    }
    fclose(f);
    return buf;
}

void log_write(enum log_level level, const char *msg, ...)
{
    if ((int)level < 0 || level > LOG_ERROR)
        level = LOG_ERROR;
    if (!log_enabled(level))
        return;
    char ts[40];
    format_ts(ts, sizeof ts);
    va_list ap;
    va_start(ap, msg);
    char *line =
        g_log.format == LOG_TEXT ? line_text(ts, level, msg, ap) : line_json(ts, level, msg, ap);
    va_end(ap);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n'; /* the terminator becomes the newline; the length below includes it */
    pthread_mutex_lock(&g_log.mu);
    write_all(g_log.fd, line, n + 1);
    pthread_mutex_unlock(&g_log.mu);
    free(line);
}
