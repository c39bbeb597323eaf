/* redis.h: Redis access on hiredis' synchronous API (SPEC §4.4, §4.5, §9): REDIS_URL parsing,
 * connect with timeout, reconnect with backoff, SET NX PX, and Lua scripts run by SHA with a
 * fallback to EVAL.
 *
 * A struct redis_client wraps one connection and is not thread-safe: use one per thread. It
 * connects lazily and reconnects on the next command after an I/O error or a timeout (the
 * connection is dropped), at most once per backoff interval: connect attempts are spaced by the
 * backoff, which is 0 after any reply, and each failed connect or dropped connection moves it
 * 100 ms → 200 ms → … → 5 s. Replies are hiredis redisReply objects owned by the caller
 * (freeReplyObject).
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

/* PING → 0 if answered PONG, else -1 with err. */
int redis_ping(struct redis_client *c, char *err, size_t errlen);

/* SET key value NX PX ttl_ms. 0 with *acquired set, or -1 with err (and *acquired false) on a
 * connection error, an error reply or ttl_ms <= 0. */
int redis_set_nx_px(struct redis_client *c, const char *key, const char *value, long long ttl_ms,
                    bool *acquired, char *err, size_t errlen);

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

#endif
