/* log.h: structured, thread-safe logging (SPEC §10): one JSON object per line
 * (ts, level, msg, then key/values) or a text line, filtered by level.
 *
 * Values of keys that look secret (containing "key", "secret", "password", "token", or equal to
 * "authorization", case-insensitively) are replaced by "[redacted]". Each line is written with
 * one write(2) under a mutex, so lines of different threads never interleave. The logger owns
 * nothing the caller passes; strings are copied into the line. */
#ifndef VMH_LOG_H
#define VMH_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
enum log_format { LOG_JSON = 0, LOG_TEXT = 1 };

enum log_kv_type { LOG_KV_END = 0, LOG_KV_STR, LOG_KV_INT, LOG_KV_DBL, LOG_KV_BOOL };

struct log_kv {
    enum log_kv_type type;
    const char *key;
    const char *s;
    long long i;
    double d;
};

#define LOG_STR(k, v)  ((struct log_kv){.type = LOG_KV_STR, .key = (k), .s = (v)})
#define LOG_INT(k, v)  ((struct log_kv){.type = LOG_KV_INT, .key = (k), .i = (long long)(v)})
#define LOG_DBL(k, v)  ((struct log_kv){.type = LOG_KV_DBL, .key = (k), .d = (double)(v)})
#define LOG_BOOL(k, v) ((struct log_kv){.type = LOG_KV_BOOL, .key = (k), .i = (v) ? 1 : 0})
#define LOG_END        ((struct log_kv){.type = LOG_KV_END})

/* Sets level, format and the output file descriptor (default: LOG_INFO, LOG_JSON, 2). */
void log_setup(enum log_level level, enum log_format format, int fd);
/* Parses "debug|info|warn|error" and "json|text"; 0 on success, -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
bool log_enabled(enum log_level level);
/* True if a value under this key must never be logged. */
bool log_key_is_secret(const char *key);

/* Writes one line; the variadic arguments are struct log_kv values ending with LOG_END. Use
 * the macros: log_info("synced", LOG_STR("entity_id", id), LOG_INT("calls", 3)). A NULL
 * string value is written as null. */
void log_write(enum log_level level, const char *msg, ...);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__, LOG_END)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__, LOG_END)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__, LOG_END)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__, LOG_END)

#endif
