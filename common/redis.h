/* redis.h: Redis access on hiredis' synchronous API (SPEC §4.4, §4.5, §9): REDIS_URL parsing,
 * connect with timeout, reconnect with backoff, the typed commands the sync uses (GET, SET with
 * and without NX and expiry, DEL, EXISTS, compare-and-delete), and Lua scripts run by SHA with a
 * fallback to EVAL. The only module that touches hiredis: everyone else calls the typed helpers.
 *
 * A struct redis_client wraps one connection and is not thread-safe: use one per thread. It
 * connects lazily and reconnects on the next command after an I/O error or a timeout (the
 * connection is dropped), at most once per backoff interval: connect attempts are spaced by the
 * backoff, which is 0 after any reply, and each failed connect or dropped connection moves it
 * 100 ms → 200 ms → … → 5 s. The raw commands (redis_command, redis_command_argv, redis_eval)
 * return hiredis redisReply objects owned by the caller (freeReplyObject); they are for tests and
 * for this file.
 *
 * hiredis writes with write(2): a program using this must ignore SIGPIPE (signal(SIGPIPE,
 * SIG_IGN) in main), or a write to a connection the server dropped kills it. */
#ifndef VMH_REDIS_H
#define VMH_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

struct redis_url {
    char host[256];
    int port;           /* default 6379 */
    char password[256]; /* "" = none */
    int db;             /* default 0 */
};

/* Parses redis://[[user]:password@]host[:port][/db]. Percent-escapes in the password are
 * decoded (an unescaped '@', ':' or '/' in it also parses: user info ends at the last '@').
 * user may only be empty or "default" (AUTH sends the password alone). host may be an IPv6
 * literal in brackets. rediss:// (TLS) is rejected: hiredis 0.14 has none. Returns 0, or -1
 * with err naming what is wrong; err never quotes the URL, so never the password. */
int redis_url_parse(const char *url, struct redis_url *out, char *err, size_t errlen);

struct redis_client;

/* Creates a client (no connection yet) with a copy of url. Timeouts in ms: connect, and each
 * command (<= 0: 1000 and 5000). NULL on out of memory or a NULL url. */
struct redis_client *redis_client_new(const struct redis_url *url, int connect_timeout_ms,
                                      int command_timeout_ms);
void redis_client_free(struct redis_client *c);

/* Connects now if not connected (AUTH and SELECT included). 0, or -1 with err. Respects the
 * reconnect backoff unless `force`. */
int redis_client_connect(struct redis_client *c, bool force, char *err, size_t errlen);
bool redis_client_connected(const struct redis_client *c);
/* Closes the connection without counting a failure: the next command connects afresh. For a
 * connection that outlived a server restart and would fail its next command. */
void redis_client_disconnect(struct redis_client *c);

/* Runs one command given as argv (binary-safe). Returns the reply (never a NULL on success),
 * or NULL with err set on a connection error (the connection is dropped; the next call
 * reconnects). A Redis error reply (REDIS_REPLY_ERROR) is returned as a reply, not as NULL. */
redisReply *redis_command_argv(struct redis_client *c, int argc, const char **argv,
                               const size_t *argvlen, char *err, size_t errlen);
/* printf-style convenience (hiredis format: %s, %b, %d ...). Same contract. */
redisReply *redis_command(struct redis_client *c, char *err, size_t errlen, const char *fmt, ...);

/* ---- typed commands ------------------------------------------------------------------------
 * Keys and values are NUL-terminated strings. Each resets err at entry and, unless it says
 * otherwise, fails in one of two ways, both with err set: REDIS_ENOREPLY when Redis was not asked
 * or did not answer (not connected, connection error, timeout, bad arguments, out of memory),
 * REDIS_EREPLY when it answered with an error reply (WRONGTYPE, NOAUTH, OOM, a failing script, ...)
 * or a reply of an unexpected type. A caller that treats both alike tests for < 0. */
#define REDIS_ENOREPLY (-1)
#define REDIS_EREPLY   (-2)

/* PING → 0 if answered PONG, else -1 with err (an error reply included). */
int redis_ping(struct redis_client *c, char *err, size_t errlen);

/* GET key. 1 with *value (malloc'd, NUL-terminated; the caller frees it) and, if len is not
 * NULL, *len its length in bytes; 0 when the key does not exist; < 0 on failure. *value is NULL
 * unless 1 is returned. */
int redis_get(struct redis_client *c, const char *key, char **value, size_t *len, char *err,
              size_t errlen);

/* SET key value, with PX ttl_ms when ttl_ms > 0 (no expiry otherwise). 0 or < 0. */
int redis_set(struct redis_client *c, const char *key, const char *value, long long ttl_ms,
              char *err, size_t errlen);

/* SET key value NX PX ttl_ms. 0 with *acquired set, or -1 with err (and *acquired false) on any
 * failure (an error reply included) or ttl_ms <= 0. */
int redis_set_nx_px(struct redis_client *c, const char *key, const char *value, long long ttl_ms,
                    bool *acquired, char *err, size_t errlen);

/* DEL key: the number of keys removed (1 or 0), or < 0. */
int redis_del(struct redis_client *c, const char *key, char *err, size_t errlen);

/* EXISTS key: 1 or 0, or < 0. */
int redis_exists(struct redis_client *c, const char *key, char *err, size_t errlen);

/* PTTL key: 0 with *ttl_ms = the time left in ms, -1 when the key has no expiry, -2 when it does
 * not exist; < 0 on failure (*ttl_ms then -2). */
int redis_pttl(struct redis_client *c, const char *key, long long *ttl_ms, char *err,
               size_t errlen);

/* Whether Redis keeps what it holds across a restart (the Advoware token, links, create marks;
 * vmhctl doctor): AOF (appendonly yes) and RDB snapshots (a non-empty save rule), each ON, OFF
 * or UNKNOWN. Asks CONFIG GET; a managed Redis may refuse CONFIG (an error reply): then INFO
 * persistence tells AOF (aof_enabled) and RDB stays UNKNOWN. 0, or < 0 (REDIS_ENOREPLY) when
 * Redis did not answer. */
enum redis_persist { REDIS_PERSIST_UNKNOWN, REDIS_PERSIST_OFF, REDIS_PERSIST_ON };
int redis_persistence(struct redis_client *c, enum redis_persist *aof, enum redis_persist *rdb,
                      char *err, size_t errlen);

/* The one compare-and-delete of the code base (a Lua script, atomic): deletes key only if it
 * holds value. 1 deleted, 0 not (absent, or holding something else), < 0 on failure (a key of
 * another type is an error reply: REDIS_EREPLY). Releases the entity locks and the Advoware
 * token lock, and drops a token only if it is still the shared one. */
int redis_del_if_equal(struct redis_client *c, const char *key, const char *value, char *err,
                       size_t errlen);

/* A Lua script: its source and its SHA1 (hex), computed by redis_script_init. The script
 * borrows src (usually a string literal): it must outlive the script. */
struct redis_script {
    const char *src;
    char sha[41];
};
void redis_script_init(struct redis_script *s, const char *src);

/* EVALSHA with the script's SHA; on NOSCRIPT, EVAL (which loads it). keys and args are
 * NUL-terminated strings. Returns the reply or NULL with err, as redis_command_argv. */
redisReply *redis_eval(struct redis_client *c, const struct redis_script *s, int nkeys,
                       const char *const *keys, int nargs, const char *const *args, char *err,
                       size_t errlen);
/* redis_eval for a script that answers an integer: 0 with *out, or < 0 (a reply that is not an
 * integer: REDIS_EREPLY). *out is 0 unless 0 is returned. */
int redis_eval_int(struct redis_client *c, const struct redis_script *s, int nkeys,
                   const char *const *keys, int nargs, const char *const *args, long long *out,
                   char *err, size_t errlen);

#endif
