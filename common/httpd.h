/* httpd.h: a small HTTP/1.1 server on libuv + http-parser, for webhooks, health, metrics and
 * the simulators (SPEC §3.1, §8, §10).
 *
 * Routing by method and path template ("/api/v1/CBeteiligte/{id}": a {name} segment matches
 * one non-empty path segment). Keep-alive and pipelining: requests of one connection are
 * answered strictly in order, even when a later handler answers first. Limits: headers
 * (request line included) 16 KiB by default (431), body per route (413, connection closed),
 * read timeout per request (408, closed) and idle timeout between requests (closed silently),
 * max connections (over the limit a new connection is closed at once). A malformed request gets
 * 400 and the connection is closed; an unknown path 404; a known path with another method 405
 * with an Allow header.
 *
 * Threading: everything runs on the loop thread given to httpd_new(); handlers are called there
 * and httpd_respond*() must be called there (from the handler, or later from a timer, an
 * uv_async callback, ...). A handler must answer every request exactly once, now or later. If
 * the client goes away first, the request stays valid until the handler answers; that answer is
 * then dropped (a client closing its side, EOF, counts as gone). Ownership: the server owns
 * requests; a request and everything it points to is freed once its answer is written or dropped.
 *
 * Answers: the server writes the status line, Content-Length (none for 1xx and 204, as HTTP
 * requires), Date and Connection itself; a HEAD request without its own route is served by the
 * GET route and gets no body. "Expect: 100-continue" is answered when nothing is queued before it.
 * httpd_new() sets SIGPIPE to ignored if it is still at its default (a write to a vanished client
 * must fail, not kill the process). */
#ifndef VMH_HTTPD_H
#define VMH_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <uv.h>

struct httpd;
struct httpd_req;

struct httpd_opts {
    size_t max_header_bytes;  /* default 16384 */
    size_t default_max_body;  /* default 1 MiB; per route overridable */
    unsigned read_timeout_ms; /* a started request must be complete within this; default 30000 */
    unsigned idle_timeout_ms; /* keep-alive idle connection closed after; default 30000 */
    unsigned max_connections; /* default 1024 */
    unsigned max_pipelined;   /* parsed-but-unanswered requests per connection before reading
                                 pauses; default 32 */
    /* Budgets before a handler has seen a request (memory and connections are bounded before
     * anything is authenticated, issue 14): connections per client address (default 256),
     * request body bytes held by all unfinished requests (default 64 MiB) and by one client
     * address's (default 16 MiB). Over a body budget a request is answered 503 (a sender
     * retries) and its connection closed; over the connection budget a connection is closed at
     * once. Behind a proxy every client is the proxy's address: size them for that. */
    unsigned max_connections_per_client;
    size_t max_body_held, max_body_held_per_client;
};

/* A handler. `ud` is the pointer given at registration. */
typedef void (*httpd_handler_fn)(struct httpd_req *req, void *ud);

/* Called after every answer is written (or dropped), on the loop thread: for request counters
 * (route = the matched template, the prefix for a fallback, or NULL for 404/405/400/...). */
typedef void (*httpd_observer_fn)(const char *method, const char *route, int status, void *ud);

/* Creates a server on `loop` (not yet listening). NULL opts = defaults. NULL on out of memory. */
struct httpd *httpd_new(uv_loop_t *loop, const struct httpd_opts *opts);

/* Registers a route. method "GET", "POST", ...; max_body 0 = the server default. Routes are
 * tried in registration order; the first template that matches the path and method wins.
 * Returns 0, or -1 on a malformed template or out of memory. */
int httpd_route(struct httpd *srv, const char *method, const char *path_template,
                httpd_handler_fn fn, void *ud, size_t max_body);

/* Handler for every path under `prefix` (any method) that no route template matched (before
 * 404; a path that a template matches with another method gets 405). Optional; several prefixes
 * may be registered and are tried in registration order. Returns 0, or -1 (prefix must start
 * with '/'; out of memory). */
int httpd_fallback(struct httpd *srv, const char *prefix, httpd_handler_fn fn, void *ud);

void httpd_set_observer(struct httpd *srv, httpd_observer_fn fn, void *ud);

/* Binds and listens on host:port ("0.0.0.0:8080", "127.0.0.1:0"). On success returns 0 and the
 * bound port in *bound_port (if not NULL). Negative libuv error code on failure, with err set. */
int httpd_listen(struct httpd *srv, const char *hostport, int *bound_port, char *err,
                 size_t errlen);

/* Stops accepting new connections; open ones go on (a graceful shutdown then waits for its
 * pending answers before httpd_close). Safe to call twice. */
void httpd_stop_listening(struct httpd *srv);

/* Stops accepting, closes every connection (pending requests stay valid until answered; their
 * answers are dropped) and frees the server once all handles are closed and every request is
 * answered. Call on the loop thread; run the loop afterwards until it has nothing left. */
void httpd_close(struct httpd *srv);

/* Number of open connections (for tests and metrics). */
unsigned httpd_connections(const struct httpd *srv);

/* Request accessors; pointers live as long as the request. */
const char *httpd_req_method(const struct httpd_req *req);
/* The client's address ("192.0.2.7", "2001:db8::1"; "" when unknown), for logs. */
const char *httpd_req_peer(const struct httpd_req *req);
const char *httpd_req_path(const struct httpd_req *req);  /* raw path, without the query */
const char *httpd_req_query(const struct httpd_req *req); /* raw query string without '?', or "" */
const char *httpd_req_route(const struct httpd_req *req); /* matched template */
/* Value of a {name} segment of the template (percent-decoded), or NULL. */
const char *httpd_req_param(const struct httpd_req *req, const char *name);
/* Header value (case-insensitive name), or NULL. Repeated headers: the first. */
const char *httpd_req_header(const struct httpd_req *req, const char *name);
const char *httpd_req_body(const struct httpd_req *req, size_t *len); /* NUL-terminated */
/* Value of a query parameter (percent-decoded, '+' as space) copied into buf; returns the
 * length, or -1 if absent or it does not fit. */
int httpd_query_get(const char *query, const char *name, char *buf, size_t buflen);

/* Percent-decodes s[0..n) ('+' as space; "%00" and broken escapes stay literal) into out,
 * NUL-terminated, truncated to outlen - 1. Returns the decoded length. */
size_t httpd_url_decode(const char *s, size_t n, char *out, size_t outlen);

/* Per-request user pointer, for handlers that answer later. */
void httpd_req_set_ud(struct httpd_req *req, void *ud);
void *httpd_req_get_ud(const struct httpd_req *req);
/* True if the client has gone away (the answer will be dropped). */
bool httpd_req_orphaned(const struct httpd_req *req);

/* Answers the request: status, content type (NULL = none), body (copied), extra header lines
 * (each "Name: value", no CRLF; NULL-terminated array, may be NULL; Content-Length, Connection,
 * Transfer-Encoding and Date lines are the server's and left out). */
void httpd_respond(struct httpd_req *req, int status, const char *content_type, const char *body,
                   size_t len, const char *const *headers);
/* Answers with compact JSON; steals the reference to `body` (NULL = "{}"). */
void httpd_respond_json(struct httpd_req *req, int status, json_t *body);
/* Answers {"error": msg} with the status. */
void httpd_respond_error(struct httpd_req *req, int status, const char *msg);

/* Answers the request by closing its connection without an answer: once every earlier answer of
 * the connection is written, the server sends FIN and reads nothing more, so the client sees its
 * connection end where this answer belonged (a transport error). Requests pipelined behind it
 * are never answered (their handlers may still answer; that is dropped). The observer sees
 * status 0. A fault injector's tool (the simulators' "drop", SPEC §8). */
void httpd_drop(struct httpd_req *req);

/* Called in place of the answer a handler gave (status 0 for httpd_drop): that answer is
 * discarded and req is still unanswered; the function must answer it (httpd_respond*(),
 * httpd_drop()), now or later. */
typedef void (*httpd_intercept_fn)(struct httpd_req *req, int status, void *ud);
/* The next answer given to req (by its handler, usually) is not written: fn is called instead,
 * once. For the simulators' "apply" faults: the handler acts, its answer is replaced. */
void httpd_req_intercept(struct httpd_req *req, httpd_intercept_fn fn, void *ud);

/* Called once when req is done: its answer handed to the socket, or dropped (httpd_drop, or the
 * client gone), with the status the observer sees (0 for a drop), just before req is freed. A
 * second call replaces the first. For the simulators' "kill_pid" fault: act once the answer is
 * out. */
typedef void (*httpd_done_fn)(int status, void *ud);
void httpd_req_on_done(struct httpd_req *req, httpd_done_fn fn, void *ud);

#endif
