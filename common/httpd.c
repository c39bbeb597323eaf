/* httpd.c: HTTP/1.1 server on libuv + http-parser (see httpd.h; SPEC §3.1, §8, §10).
 *
 * One struct conn per TCP connection. Its requests wait in a FIFO in arrival order and answers
 * are written strictly from the head, so an answer given out of order waits for its turn. The
 * server owns connections and requests: a request is freed once its answer is written or
 * dropped, a connection in the close callback of its last handle, the server once its own
 * handles and every connection are closed and no orphaned request is left unanswered. */
#include "httpd.h"

#include "util.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTPD_READ_BUF      (64 * 1024)
#define HTTPD_LINGER_MS     2000 /* discarding the client's rest after a closing answer */
#define HTTPD_MAX_PARAMS    16
#define HTTPD_INLINE_HEAD   768 /* URL and headers of a typical request need no extra malloc */
#define HTTPD_INLINE_HDRS   16
#define HTTPD_REQ_LINE_COST 16 /* method, spaces, version, CRLF of the request line */

static const struct httpd_opts httpd_defaults = {
    .max_header_bytes = 16384,
    .default_max_body = 1024 * 1024,
    .read_timeout_ms = 30000,
    .idle_timeout_ms = 30000,
    .max_connections = 1024,
    .max_connections_per_client = 256,
    .max_body_held = 64 * 1024 * 1024,
    .max_body_held_per_client = 16 * 1024 * 1024,
    .max_pipelined = 32,
};

struct route_seg {
    const char *text; /* literal text, or the parameter name (NUL-terminated) */
    size_t len;
    bool param;
};

/* A route, or a fallback (prefix set, no segments). Allocated one by one: requests point at
 * them, so they never move. */
struct route {
    int method;  /* enum http_method; -1 for a fallback (any method) */
    char *tmpl;  /* as registered: the route name requests and the observer see */
    char *names; /* copy of tmpl holding the NUL-terminated parameter names */
    struct route_seg *segs;
    size_t nsegs;
    httpd_handler_fn fn;
    void *ud;
    size_t max_body;
};

enum req_state { REQ_PARSING, REQ_HANDLING, REQ_ANSWERED };

struct req_hdr {
    size_t name, value; /* offsets into req->buf, NUL-terminated */
};

struct req_param {
    const char *name; /* into the route */
    size_t value;     /* offset into req->buf */
};

/* A response ready to write: one allocation holding the write request and the bytes. */
struct wbuf {
    uv_write_t w; /* first: the write callback casts back */
    struct conn *conn;
    size_t len;
    char data[];
};

struct httpd_req {
    struct httpd *srv;
    struct conn *conn; /* NULL once orphaned */
    struct httpd_req *next;
    enum req_state state;
    int method; /* enum http_method, -1 while unknown */
    const struct route *route;
    const char *route_name; /* template, fallback prefix, or NULL */
    int auto_status;        /* 404/405 answered by the server itself */
    bool keep_alive;
    bool http10;
    bool drop; /* answered by closing the connection (httpd_drop) */
    bool url_done, in_field, in_value, head_done;
    void *ud;
    int status;
    struct wbuf *resp;
    httpd_intercept_fn intercept;
    void *intercept_ud;
    httpd_done_fn done;
    void *done_ud;

    char *buf; /* url \0 names and values \0 path \0 query \0 decoded params \0 */
    size_t len, cap;
    size_t url_len, path, query;
    size_t head_bytes;
    struct req_hdr *hdrs;
    size_t nhdrs, hdrs_cap;
    struct req_param params[HTTPD_MAX_PARAMS];
    size_t nparams;

    char *body;
    size_t body_len, body_cap, max_body;
    struct peer *peer;  /* its connection's client while it holds body bytes */
    size_t held;        /* body bytes counted against the budgets */
    char peer_addr[46]; /* INET6_ADDRSTRLEN */

    char inline_buf[HTTPD_INLINE_HEAD];
    struct req_hdr inline_hdrs[HTTPD_INLINE_HDRS];
};

enum timer_kind { TIMER_IDLE, TIMER_READ, TIMER_LINGER };

/* One client address: its connections and the body bytes its unfinished requests hold. Freed
 * when both are 0. */
struct peer {
    struct peer *next;
    unsigned conns;
    size_t held;
    char addr[46];
};

struct conn {
    struct httpd *srv;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    http_parser parser;
    struct conn *prev, *next;          /* every connection of the server */
    struct conn *rprev, *rnext;        /* connections waiting to resume parsing */
    struct httpd_req *q_head, *q_tail; /* parsed or parsing, not yet written */
    struct httpd_req *cur;             /* the request being parsed */
    unsigned q_len;
    char *leftover; /* unparsed bytes while parsing is paused */
    size_t leftover_len;
    uint64_t deadline, armed; /* loop time; deadline 0 = none */
    enum timer_kind kind;
    int handles;       /* open libuv handles (tcp, timer) */
    int err_status;    /* set by a parser callback before it fails */
    bool counted;      /* counted in srv->nconns */
    struct peer *peer; /* its client, counted in peer->conns */
    bool reading, paused, draining, lingering, shut_done, peer_eof, closing, in_execute;
    bool resume_queued;
};

struct httpd {
    uv_loop_t *loop;
    struct httpd_opts opts;
    uv_tcp_t listener;
    uv_idle_t resume_idle;
    struct route **routes;
    size_t nroutes, routes_cap;
    struct route **fallbacks;
    size_t nfallbacks, fallbacks_cap;
    httpd_observer_fn obs;
    void *obs_ud;
    struct conn *conns;
    struct conn *resume_head;
    struct peer *peers;
    size_t held; /* body bytes of every unfinished request */
    unsigned nconns;
    unsigned handles; /* listener, resume_idle, connections until closed */
    size_t orphans;
    bool closing;
    bool listener_closed;
    time_t date_sec;
    char date[64];
    char rbuf[HTTPD_READ_BUF];
};

static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_fail(struct conn *c, int status);
static void respond_error_hdrs(struct httpd_req *req, int status, const char *msg,
                               const char *const *headers);

/* ---- server lifetime ---------------------------------------------------------------------- */

static void route_free(struct route *r)
{
    if (!r)
        return;
    free(r->tmpl);
    free(r->names);
    free(r->segs);
    free(r);
}

static void server_free(struct httpd *srv)
{
    while (srv->peers) {
        struct peer *p = srv->peers;
        srv->peers = p->next;
        free(p);
    }
    for (size_t i = 0; i < srv->nroutes; i++)
        route_free(srv->routes[i]);
    for (size_t i = 0; i < srv->nfallbacks; i++)
        route_free(srv->fallbacks[i]);
    free(srv->routes);
    free(srv->fallbacks);
    free(srv);
}

static void server_maybe_free(struct httpd *srv)
{
    if (srv->closing && srv->handles == 0 && srv->orphans == 0)
        server_free(srv);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    struct httpd *srv = h->data;
    srv->handles--;
    server_maybe_free(srv);
}

static void on_resume_idle(uv_idle_t *h);

struct httpd *httpd_new(uv_loop_t *loop, const struct httpd_opts *opts)
{
    if (!loop)
        return NULL;
    struct httpd *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    /* libuv writes with write(2): a client gone away must be an EPIPE, not a dead process. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    srv->loop = loop;
    srv->opts = opts ? *opts : httpd_defaults;
    if (!srv->opts.max_header_bytes)
        srv->opts.max_header_bytes = httpd_defaults.max_header_bytes;
    if (!srv->opts.default_max_body)
        srv->opts.default_max_body = httpd_defaults.default_max_body;
    if (!srv->opts.read_timeout_ms)
        srv->opts.read_timeout_ms = httpd_defaults.read_timeout_ms;
    if (!srv->opts.idle_timeout_ms)
        srv->opts.idle_timeout_ms = httpd_defaults.idle_timeout_ms;
    if (!srv->opts.max_connections)
        srv->opts.max_connections = httpd_defaults.max_connections;
    if (!srv->opts.max_pipelined)
        srv->opts.max_pipelined = httpd_defaults.max_pipelined;
    if (!srv->opts.max_connections_per_client)
        srv->opts.max_connections_per_client = httpd_defaults.max_connections_per_client;
    if (!srv->opts.max_body_held)
        srv->opts.max_body_held = httpd_defaults.max_body_held;
    if (!srv->opts.max_body_held_per_client)
        srv->opts.max_body_held_per_client = httpd_defaults.max_body_held_per_client;
    /* Neither init can fail on unix for a valid loop; they allocate nothing. */
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    uv_idle_init(loop, &srv->resume_idle);
    srv->resume_idle.data = srv;
    srv->handles = 2;
    return srv;
}

void httpd_stop_listening(struct httpd *srv)
{
    if (!srv || srv->listener_closed)
        return;
    srv->listener_closed = true;
    uv_close((uv_handle_t *)&srv->listener, on_server_handle_closed);
}

void httpd_close(struct httpd *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    httpd_stop_listening(srv);
    uv_close((uv_handle_t *)&srv->resume_idle, on_server_handle_closed);
    for (struct conn *c = srv->conns; c; c = c->next)
        conn_close(c);
}

unsigned httpd_connections(const struct httpd *srv)
{
    return srv ? srv->nconns : 0;
}

void httpd_set_observer(struct httpd *srv, httpd_observer_fn fn, void *ud)
{
    if (!srv)
        return;
    srv->obs = fn;
    srv->obs_ud = ud;
}

/* ---- routes ------------------------------------------------------------------------------- */

static int method_from_name(const char *name)
{
#define HTTPD_METHOD_CASE(num, sym, string)                                                        \
    if (strcmp(name, #string) == 0)                                                                \
        return num;
    HTTP_METHOD_MAP(HTTPD_METHOD_CASE)
#undef HTTPD_METHOD_CASE
    return -1;
}

static bool param_name_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Splits "/a/{b}/c" into segments; the names of {x} segments point into r->names. */
static int route_parse(struct route *r)
{
    const char *t = r->tmpl;
    if (t[0] != '/' || strchr(t, '?') || strchr(t, '#'))
        return -1;
    size_t nsegs = 1;
    for (const char *s = t + 1; *s; s++)
        nsegs += *s == '/';
    r->segs = calloc(nsegs, sizeof *r->segs);
    if (!r->segs)
        return -1;
    size_t nparams = 0;
    char *s = r->names + 1;
    for (size_t i = 0; i < nsegs; i++) {
        char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        struct route_seg *seg = &r->segs[i];
        if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
            if (!param_name_ok(s + 1, len - 2) || ++nparams > HTTPD_MAX_PARAMS)
                return -1;
            s[len - 1] = '\0';
            seg->text = s + 1;
            seg->len = len - 2;
            seg->param = true;
        } else {
            if (memchr(s, '{', len) || memchr(s, '}', len))
                return -1;
            seg->text = s;
            seg->len = len;
        }
        s += len + 1;
    }
    r->nsegs = nsegs;
    return 0;
}

static struct route *route_new(const char *tmpl, httpd_handler_fn fn, void *ud, size_t max_body)
{
    struct route *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->tmpl = strdup(tmpl);
    r->names = strdup(tmpl);
    if (!r->tmpl || !r->names)
        goto err;
    r->fn = fn;
    r->ud = ud;
    r->max_body = max_body;
    return r;
err:
    route_free(r);
    return NULL;
}

static int route_push(struct route ***arr, size_t *n, size_t *cap, struct route *r)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct route **na = realloc(*arr, ncap * sizeof *na);
        if (!na)
            return -1;
        *arr = na;
        *cap = ncap;
    }
    (*arr)[(*n)++] = r;
    return 0;
}

int httpd_route(struct httpd *srv, const char *method, const char *path_template,
                httpd_handler_fn fn, void *ud, size_t max_body)
{
    if (!srv || !method || !path_template || !fn)
        return -1;
    int m = method_from_name(method);
    if (m < 0)
        return -1;
    struct route *r = route_new(path_template, fn, ud, max_body);
    if (!r)
        return -1;
    r->method = m;
    if (route_parse(r) != 0)
        goto err;
    if (route_push(&srv->routes, &srv->nroutes, &srv->routes_cap, r) != 0)
        goto err;
    return 0;
err:
    route_free(r);
    return -1;
}

int httpd_fallback(struct httpd *srv, const char *prefix, httpd_handler_fn fn, void *ud)
{
    if (!srv || !prefix || prefix[0] != '/' || !fn)
        return -1;
    struct route *r = route_new(prefix, fn, ud, 0);
    if (!r)
        return -1;
    r->method = -1;
    if (route_push(&srv->fallbacks, &srv->nfallbacks, &srv->fallbacks_cap, r) != 0)
        goto err;
    return 0;
err:
    route_free(r);
    return -1;
}

struct span {
    size_t off, len;
};

/* Matches path (starting with '/') against the route's segments; spans of {x} values out. */
static bool route_match(const struct route *r, const char *path, size_t plen, struct span *out)
{
    if (plen == 0 || path[0] != '/')
        return false;
    size_t pos = 1, k = 0;
    for (size_t i = 0; i < r->nsegs; i++) {
        const struct route_seg *seg = &r->segs[i];
        const char *s = path + pos;
        const char *slash = memchr(s, '/', plen - pos);
        size_t slen = slash ? (size_t)(slash - s) : plen - pos;
        if (seg->param) {
            if (slen == 0)
                return false;
            out[k].off = pos;
            out[k].len = slen;
            k++;
        } else if (slen != seg->len || memcmp(s, seg->text, slen) != 0) {
            return false;
        }
        if (i + 1 < r->nsegs) {
            if (!slash)
                return false;
            pos += slen + 1;
        } else if (slash) {
            return false;
        }
    }
    return true;
}

/* ---- percent-decoding --------------------------------------------------------------------- */

/* Decodes the character of s[0..n) at *i and advances *i past it. "%00" and broken escapes stay
 * literal, so a decoded value never holds a NUL. */
static char decode_at(const char *s, size_t n, size_t *i, bool plus_space)
{
    char ch = s[*i];
    if (ch == '%' && n - *i >= 3) {
        int hi = util_hexval(s[*i + 1]), lo = util_hexval(s[*i + 2]);
        if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
            *i += 3;
            return (char)(hi * 16 + lo);
        }
    }
    (*i)++;
    return plus_space && ch == '+' ? ' ' : ch;
}

size_t httpd_url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen;)
        out[o++] = decode_at(s, n, &i, true);
    if (outlen)
        out[o] = '\0';
    return o;
}

static bool query_key_equals(const char *k, size_t kn, const char *name, size_t nn)
{
    size_t i = 0, j = 0;
    while (i < kn && j < nn)
        if (decode_at(k, kn, &i, true) != name[j++])
            return false;
    return i == kn && j == nn;
}

int httpd_query_get(const char *query, const char *name, char *buf, size_t buflen)
{
    if (!query || !name || !buf || buflen == 0)
        return -1;
    if (*query == '?')
        query++;
    size_t nlen = strlen(name);
    const char *p = query;
    for (;;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if (kend > p && query_key_equals(p, (size_t)(kend - p), name, nlen)) {
            const char *v = eq ? eq + 1 : end;
            size_t vn = (size_t)(end - v), i = 0, o = 0;
            while (i < vn) {
                if (o + 1 >= buflen)
                    return -1;
                buf[o++] = decode_at(v, vn, &i, true);
            }
            if (o > INT32_MAX)
                return -1;
            buf[o] = '\0';
            return (int)o;
        }
        if (!amp)
            return -1;
        p = amp + 1;
    }
}

/* ---- request storage ---------------------------------------------------------------------- */

static int req_reserve(struct httpd_req *req, size_t extra)
{
    if (req->len + extra <= req->cap)
        return 0;
    size_t ncap = req->cap * 2;
    while (ncap < req->len + extra)
        ncap *= 2;
    char *nb;
    if (req->buf == req->inline_buf) {
        nb = malloc(ncap);
        if (nb)
            memcpy(nb, req->buf, req->len);
    } else {
        nb = realloc(req->buf, ncap);
    }
    if (!nb)
        return -1;
    req->buf = nb;
    req->cap = ncap;
    return 0;
}

static int req_append(struct httpd_req *req, const char *s, size_t n)
{
    if (req_reserve(req, n) != 0)
        return -1;
    memcpy(req->buf + req->len, s, n);
    req->len += n;
    return 0;
}

static int req_push_hdr(struct httpd_req *req)
{
    if (req->nhdrs == req->hdrs_cap) {
        size_t ncap = req->hdrs_cap * 2;
        struct req_hdr *nh;
        if (req->hdrs == req->inline_hdrs) {
            nh = malloc(ncap * sizeof *nh);
            if (nh)
                memcpy(nh, req->hdrs, req->nhdrs * sizeof *nh);
        } else {
            nh = realloc(req->hdrs, ncap * sizeof *nh);
        }
        if (!nh)
            return -1;
        req->hdrs = nh;
        req->hdrs_cap = ncap;
    }
    req->hdrs[req->nhdrs].name = req->len;
    req->hdrs[req->nhdrs].value = req->len;
    req->nhdrs++;
    return 0;
}

static struct httpd_req *req_new(struct conn *c)
{
    struct httpd_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->srv = c->srv;
    req->conn = c;
    req->method = -1;
    req->buf = req->inline_buf;
    req->cap = sizeof req->inline_buf;
    req->hdrs = req->inline_hdrs;
    req->hdrs_cap = HTTPD_INLINE_HDRS;
    req->max_body = c->srv->opts.default_max_body;
    req->head_bytes = HTTPD_REQ_LINE_COST;
    req->peer = c->peer;
    if (c->peer)
        snprintf(req->peer_addr, sizeof req->peer_addr, "%s", c->peer->addr);
    return req;
}

/* ---- client budgets ---------------------------------------------------------------------- */

static struct peer *peer_get(struct httpd *srv, const char *addr)
{
    for (struct peer *p = srv->peers; p; p = p->next)
        if (strcmp(p->addr, addr) == 0)
            return p;
    struct peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    p->next = srv->peers;
    srv->peers = p;
    return p;
}

/* Frees p once it has neither connections nor held bytes. */
static void peer_put(struct httpd *srv, struct peer *p)
{
    if (!p || p->conns || p->held)
        return;
    for (struct peer **pp = &srv->peers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            free(p);
            return;
        }
    }
}

/* Counts add more body bytes for req against the budgets; false when one would be exceeded. */
static bool body_reserve(struct httpd_req *req, size_t add)
{
    struct httpd *srv = req->srv;
    struct peer *p = req->peer;
    if (srv->held + add > srv->opts.max_body_held ||
        (p && p->held + add > srv->opts.max_body_held_per_client))
        return false;
    srv->held += add;
    req->held += add;
    if (p)
        p->held += add;
    return true;
}

static void body_release(struct httpd_req *req)
{
    if (!req->held)
        return; /* (a request that held nothing may outlive its peer) */
    req->srv->held -= req->held;
    if (req->peer) {
        req->peer->held -= req->held;
        peer_put(req->srv, req->peer);
    }
    req->held = 0;
}

static void req_free(struct httpd_req *req)
{
    if (!req)
        return;
    body_release(req);
    if (req->buf != req->inline_buf)
        free(req->buf);
    if (req->hdrs != req->inline_hdrs)
        free(req->hdrs);
    free(req->body);
    free(req->resp);
    free(req);
}

/* The answer is written or dropped: tell the observer, free the request. */
static void req_done(struct httpd_req *req)
{
    struct httpd *srv = req->srv;
    if (srv->obs)
        srv->obs(httpd_req_method(req), req->route_name, req->status, srv->obs_ud);
    if (req->done)
        req->done(req->status, req->done_ud);
    req_free(req);
}

static void conn_enqueue(struct conn *c, struct httpd_req *req)
{
    if (c->q_tail)
        c->q_tail->next = req;
    else
        c->q_head = req;
    c->q_tail = req;
    c->q_len++;
}

/* ---- connection lifetime and timers ------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct httpd *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    srv->handles--;
    server_maybe_free(srv);
}

static void resume_unlink(struct conn *c)
{
    if (!c->resume_queued)
        return;
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        c->srv->resume_head = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    c->rprev = c->rnext = NULL;
    c->resume_queued = false;
}

/* Closes at once. Requests still with their handler become orphans (the server counts them
 * until they are answered); answered but unwritten ones are dropped, a half-parsed one freed. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct httpd *srv = c->srv;
    if (c->counted) {
        srv->nconns--;
        c->counted = false;
    }
    if (c->peer) {
        struct peer *p = c->peer;
        c->peer = NULL;
        p->conns--;
        for (struct httpd_req *q = c->q_head; q; q = q->next)
            if (!q->held)
                q->peer = NULL; /* only a request holding bytes keeps the peer */
        if (c->cur && !c->cur->held)
            c->cur->peer = NULL;
        peer_put(srv, p);
    }
    resume_unlink(c);
    free(c->leftover);
    c->leftover = NULL;
    c->leftover_len = 0;
    struct httpd_req *req = c->q_head;
    c->q_head = c->q_tail = c->cur = NULL;
    c->q_len = 0;
    while (req) {
        struct httpd_req *next = req->next;
        req->next = NULL;
        if (req->state == REQ_HANDLING) {
            req->conn = NULL;
            srv->orphans++;
        } else if (req->state == REQ_ANSWERED) {
            req_done(req);
        } else {
            req_free(req);
        }
        req = next;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_conn_timer(uv_timer_t *t);

/* One timer per connection, re-armed lazily: moving a deadline later costs nothing, the timer
 * notices when it fires early and sleeps again. */
static void conn_arm(struct conn *c, enum timer_kind kind, unsigned ms)
{
    uint64_t now = uv_now(c->srv->loop);
    c->kind = kind;
    c->deadline = now + ms;
    if (!uv_is_active((uv_handle_t *)&c->timer) || c->armed > c->deadline) {
        uv_timer_start(&c->timer, on_conn_timer, ms, 0);
        c->armed = c->deadline;
    }
}

static void conn_disarm(struct conn *c)
{
    c->deadline = 0;
}

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->closing || c->deadline == 0)
        return;
    uint64_t now = uv_now(c->srv->loop);
    if (now < c->deadline) {
        uv_timer_start(&c->timer, on_conn_timer, c->deadline - now, 0);
        c->armed = c->deadline;
        return;
    }
    c->deadline = 0;
    if (c->kind == TIMER_READ && c->cur)
        conn_fail(c, 408);
    else
        conn_close(c); /* idle, or done lingering */
}

/* ---- writing ------------------------------------------------------------------------------ */

static void on_write(uv_write_t *w, int status)
{
    struct wbuf *b = (struct wbuf *)w;
    struct conn *c = b->conn;
    free(b);
    if (status < 0)
        conn_close(c);
}

/* Writes and takes w: straight to the socket when it is free, else queued behind earlier writes
 * (libuv keeps their order). 0 or a libuv error. */
static int conn_write(struct conn *c, struct wbuf *w)
{
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int n = uv_try_write(s, &b, 1);
    if (n >= 0 && (size_t)n == w->len) {
        free(w);
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN) {
        free(w);
        return n;
    }
    size_t off = n > 0 ? (size_t)n : 0;
    b = uv_buf_init(w->data + off, (unsigned)(w->len - off));
    w->conn = c;
    int r = uv_write(&w->w, s, &b, 1, on_write);
    if (r != 0)
        free(w);
    return r;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    /* Parsing copies what it keeps, so every connection shares one read buffer. */
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

static void conn_read_start(struct conn *c)
{
    if (c->reading || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void conn_read_stop(struct conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct conn *c = sr->data;
    c->shut_done = true;
    if (status < 0 || c->peer_eof)
        conn_close(c);
}

/* After the last answer: send FIN once it is written and read (discarding) until the client
 * closes too, so a client still sending does not get a reset that eats our answer. */
static void conn_linger(struct conn *c)
{
    if (c->closing || c->lingering)
        return;
    c->lingering = true;
    c->draining = true;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    conn_arm(c, TIMER_LINGER, HTTPD_LINGER_MS);
    conn_read_start(c);
}

static void conn_schedule_resume(struct conn *c);

/* Writes every answer at the head of the queue that is ready, in order. */
static void conn_flush(struct conn *c)
{
    struct httpd *srv = c->srv;
    while (!c->closing && !c->lingering && c->q_head && c->q_head->state == REQ_ANSWERED) {
        struct httpd_req *req = c->q_head;
        c->q_head = req->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->q_len--;
        if (req->drop) {
            /* FIN after the earlier answers; the requests behind wait for conn_close(). */
            req_done(req);
            conn_linger(c);
            return;
        }
        bool last = !req->keep_alive;
        struct wbuf *w = req->resp;
        req->resp = NULL;
        int r = w ? conn_write(c, w) : UV_ENOMEM;
        req_done(req);
        if (r < 0) {
            conn_close(c);
            return;
        }
        if (last) {
            conn_linger(c);
            return;
        }
    }
    if (c->closing || c->lingering)
        return;
    if (!c->q_head && !c->draining)
        conn_arm(c, TIMER_IDLE, srv->opts.idle_timeout_ms);
    if (c->paused && !c->in_execute && c->q_len < srv->opts.max_pipelined)
        conn_schedule_resume(c);
}

/* ---- reading and parsing ------------------------------------------------------------------ */

/* Parsing resumes from the loop, never from inside an answer: a handler answering later must not
 * find the next request's handler running inside its own httpd_respond(). */
static void conn_schedule_resume(struct conn *c)
{
    struct httpd *srv = c->srv;
    if (c->resume_queued || c->closing || srv->closing)
        return;
    c->rprev = NULL;
    c->rnext = srv->resume_head;
    if (srv->resume_head)
        srv->resume_head->rprev = c;
    srv->resume_head = c;
    c->resume_queued = true;
    uv_idle_start(&srv->resume_idle, on_resume_idle);
}

static void conn_parse(struct conn *c, const char *data, size_t len)
{
    c->in_execute = true;
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
    c->in_execute = false;
    if (c->closing)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        if (c->draining) {
            /* After the last request of the connection: the rest is dropped. */
            if (!c->lingering)
                conn_read_stop(c);
            return;
        }
        conn_read_stop(c);
        if (n < len) {
            c->leftover = malloc(len - n);
            if (!c->leftover) {
                conn_close(c);
                return;
            }
            memcpy(c->leftover, data + n, len - n);
            c->leftover_len = len - n;
        }
        c->paused = true;
        if (c->q_len < c->srv->opts.max_pipelined)
            conn_schedule_resume(c);
        return;
    }
    if (e != HPE_OK) {
        int status = c->err_status;
        if (!status)
            status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
        conn_fail(c, status);
        return;
    }
    if (c->parser.upgrade && !c->lingering) {
        /* The rest would be another protocol: answer what came, then close. */
        c->draining = true;
        conn_read_stop(c);
    }
}

static void conn_resume(struct conn *c)
{
    if (c->closing || c->draining)
        return; /* draining: after a closing answer or a drop nothing more is parsed */
    char *data = c->leftover;
    size_t len = c->leftover_len;
    c->leftover = NULL;
    c->leftover_len = 0;
    c->paused = false;
    http_parser_pause(&c->parser, 0);
    if (data)
        conn_parse(c, data, len);
    free(data);
    if (!c->closing && !c->paused && !c->draining)
        conn_read_start(c);
}

static void on_resume_idle(uv_idle_t *h)
{
    struct httpd *srv = h->data;
    struct conn *c;
    /* Terminates: a connection queues itself again only after parsing at least one request. */
    while ((c = srv->resume_head)) {
        resume_unlink(c);
        conn_resume(c);
    }
    if (!uv_is_closing((uv_handle_t *)h))
        uv_idle_stop(h);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (c->lingering && !c->shut_done) {
            /* The client is done sending; let our last answer drain before closing. */
            c->peer_eof = true;
            conn_read_stop(c);
            return;
        }
        conn_close(c); /* EOF or error: the client has gone away */
        return;
    }
    if (c->lingering || c->draining)
        return; /* discarding */
    conn_parse(c, buf->base, (size_t)nread);
}

/* A request the server answers itself with an error and then closes: the one being parsed, or
 * a new entry when the failure came before a request began. */
static void conn_fail(struct conn *c, int status)
{
    struct httpd_req *req = c->cur;
    c->cur = NULL;
    c->draining = true;
    conn_disarm(c);
    conn_read_stop(c);
    if (!req) {
        req = req_new(c);
        if (!req) {
            conn_close(c);
            return;
        }
        conn_enqueue(c, req);
    }
    req->keep_alive = false;
    req->route = NULL;
    req->route_name = NULL;
    req->auto_status = status;
    req->state = REQ_HANDLING;
    respond_error_hdrs(req, status, http_status_str((enum http_status)status), NULL);
}

/* ---- parser callbacks --------------------------------------------------------------------- */

static int req_fail(struct conn *c, int status)
{
    c->err_status = status;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    if (c->closing || c->draining)
        return -1;
    struct httpd_req *req = req_new(c);
    if (!req)
        return req_fail(c, 503);
    conn_enqueue(c, req);
    c->cur = req;
    conn_arm(c, TIMER_READ, c->srv->opts.read_timeout_ms);
    return 0;
}

static int head_account(struct conn *c, struct httpd_req *req, size_t len)
{
    req->head_bytes += len;
    if (req->head_bytes > c->srv->opts.max_header_bytes)
        return req_fail(c, 431);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct httpd_req *req = c->cur;
    req->method = (int)p->method;
    if (head_account(c, req, len) != 0)
        return -1;
    if (req_append(req, at, len) != 0)
        return req_fail(c, 503);
    req->url_len += len;
    return 0;
}

static int req_end_url(struct conn *c, struct httpd_req *req)
{
    if (req->url_done)
        return 0;
    req->url_done = true;
    if (req_append(req, "", 1) != 0)
        return req_fail(c, 503);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct httpd_req *req = c->cur;
    if (req_end_url(c, req) != 0)
        return -1;
    size_t cost = len;
    if (!req->in_field) {
        if (req->in_value && req_append(req, "", 1) != 0)
            return req_fail(c, 503);
        req->in_value = false;
        req->in_field = true;
        if (req_push_hdr(req) != 0)
            return req_fail(c, 503);
        cost += 4; /* ": " and CRLF count against the limit too */
    }
    if (head_account(c, req, cost) != 0)
        return -1;
    if (req_append(req, at, len) != 0)
        return req_fail(c, 503);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct httpd_req *req = c->cur;
    if (!req->in_value) {
        if (req_append(req, "", 1) != 0)
            return req_fail(c, 503);
        req->hdrs[req->nhdrs - 1].value = req->len;
        req->in_field = false;
        req->in_value = true;
    }
    if (head_account(c, req, len) != 0)
        return -1;
    if (req_append(req, at, len) != 0)
        return req_fail(c, 503);
    return 0;
}

/* NUL-terminates the URL and the last header (a name without value gets ""). */
static int req_end_head(struct conn *c, struct httpd_req *req)
{
    if (req_end_url(c, req) != 0)
        return -1;
    if (req->in_field) {
        if (req_append(req, "", 1) != 0)
            return req_fail(c, 503);
        req->hdrs[req->nhdrs - 1].value = req->len;
        req->in_value = true;
    }
    if (req->in_value && req_append(req, "", 1) != 0)
        return req_fail(c, 503);
    req->in_field = req->in_value = false;
    return 0;
}

/* Copies url[off, off+len) to the end of the buffer as a string; returns its offset. */
static size_t req_copy_part(struct httpd_req *req, size_t off, size_t len)
{
    size_t at = req->len;
    memcpy(req->buf + req->len, req->buf + off, len);
    req->len += len;
    req->buf[req->len++] = '\0';
    return at;
}

/* Finds the route: a template and method, GET for HEAD, 405 when only the method differs, a
 * fallback prefix, or 404. Decodes {x} values into the request. */
static int req_dispatch(struct httpd_req *req, size_t plen)
{
    struct httpd *srv = req->srv;
    struct span spans[HTTPD_MAX_PARAMS];
    const struct route *found = NULL, *head_get = NULL;
    bool path_known = false;
    const char *path = req->buf + req->path;
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *r = srv->routes[i];
        if (!route_match(r, path, plen, spans))
            continue;
        path_known = true;
        if (r->method == req->method) {
            found = r;
            break;
        }
        if (req->method == HTTP_HEAD && r->method == HTTP_GET && !head_get)
            head_get = r;
    }
    if (!found)
        found = head_get;
    if (found) {
        route_match(found, path, plen, spans);
        req->route = found;
        req->route_name = found->tmpl;
        if (found->max_body)
            req->max_body = found->max_body;
        size_t need = 0, k = 0;
        for (size_t i = 0; i < found->nsegs; i++)
            if (found->segs[i].param)
                need += spans[k++].len + 1;
        if (req_reserve(req, need) != 0)
            return -1;
        path = req->buf + req->path;
        k = 0;
        for (size_t i = 0; i < found->nsegs; i++) {
            if (!found->segs[i].param)
                continue;
            const char *v = path + spans[k].off;
            req->params[k].name = found->segs[i].text;
            req->params[k].value = req->len;
            for (size_t j = 0; j < spans[k].len;)
                req->buf[req->len++] = decode_at(v, spans[k].len, &j, false);
            req->buf[req->len++] = '\0';
            k++;
        }
        req->nparams = k;
        return 0;
    }
    if (path_known) {
        req->auto_status = 405;
        return 0;
    }
    for (size_t i = 0; i < srv->nfallbacks; i++) {
        const struct route *r = srv->fallbacks[i];
        if (strncmp(path, r->tmpl, strlen(r->tmpl)) == 0) {
            req->route = r;
            req->route_name = r->tmpl;
            return 0;
        }
    }
    req->auto_status = 404;
    return 0;
}

static struct wbuf *wbuf_new(size_t len)
{
    struct wbuf *w = malloc(sizeof *w + len);
    if (w)
        w->len = len;
    return w;
}

/* "Expect: 100-continue": invite the body, unless an earlier answer still has to go first. */
static int req_expect_continue(struct conn *c, struct httpd_req *req)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (req->auto_status || c->q_head != req || c->parser.http_major != 1 ||
        c->parser.http_minor < 1)
        return 0;
    const char *v = httpd_req_header(req, "Expect");
    if (!v || strcasecmp(v, "100-continue") != 0)
        return 0;
    struct wbuf *w = wbuf_new(sizeof cont - 1);
    if (!w)
        return req_fail(c, 503);
    memcpy(w->data, cont, sizeof cont - 1);
    if (conn_write(c, w) != 0) {
        conn_close(c);
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct httpd_req *req = c->cur;
    req->method = (int)p->method;
    if (req_end_head(c, req) != 0)
        return -1;
    if (req->url_len > UINT16_MAX)
        return req_fail(c, 414); /* http_parser_url offsets are 16 bits */
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(req->buf, req->url_len, p->method == HTTP_CONNECT, &u) != 0)
        return req_fail(c, 400);
    size_t poff = 0, plen = 0, qoff = 0, qlen = 0;
    if (u.field_set & (1 << UF_PATH)) {
        poff = u.field_data[UF_PATH].off;
        plen = u.field_data[UF_PATH].len;
    }
    if (u.field_set & (1 << UF_QUERY)) {
        qoff = u.field_data[UF_QUERY].off;
        qlen = u.field_data[UF_QUERY].len;
    }
    if (req_reserve(req, plen + qlen + 2) != 0)
        return req_fail(c, 503);
    req->path = req_copy_part(req, poff, plen);
    req->query = req_copy_part(req, qoff, qlen);
    req->head_done = true;
    req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    req->http10 = p->http_major == 1 && p->http_minor == 0;
    if (req_dispatch(req, plen) != 0)
        return req_fail(c, 503);
    if (p->flags & F_CONTENTLENGTH) {
        if (p->content_length > req->max_body)
            return req_fail(c, 413);
        if (p->content_length > 0 && !req->auto_status) {
            if (!body_reserve(req, (size_t)p->content_length + 1))
                return req_fail(c, 503); /* a budget before authentication: retried later */
            req->body = malloc((size_t)p->content_length + 1);
            if (!req->body)
                return req_fail(c, 503);
            req->body_cap = (size_t)p->content_length + 1;
        }
    }
    return req_expect_continue(c, req);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct httpd_req *req = c->cur;
    if (len > req->max_body - req->body_len)
        return req_fail(c, 413);
    if (req->auto_status) {
        req->body_len += len; /* counted against the limit, not kept */
        return 0;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t ncap = req->body_cap ? req->body_cap * 2 : 1024;
        if (ncap < req->body_len + len + 1)
            ncap = req->body_len + len + 1;
        if (ncap > req->max_body + 1)
            ncap = req->max_body + 1;
        if (!body_reserve(req, ncap - req->body_cap))
            return req_fail(c, 503);
        char *nb = realloc(req->body, ncap);
        if (!nb)
            return req_fail(c, 503);
        req->body = nb;
        req->body_cap = ncap;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    return 0;
}

static void respond_405(struct httpd_req *req)
{
    struct httpd *srv = req->srv;
    struct span spans[HTTPD_MAX_PARAMS];
    char allow[512] = "Allow: ";
    size_t n = strlen(allow), plen = strlen(req->buf + req->path);
    uint64_t seen = 0;
    bool get = false, head = false;
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *r = srv->routes[i];
        if (r->method >= 64 || (seen >> r->method & 1) ||
            !route_match(r, req->buf + req->path, plen, spans))
            continue;
        seen |= (uint64_t)1 << r->method;
        get |= r->method == HTTP_GET;
        head |= r->method == HTTP_HEAD;
        const char *m = http_method_str((enum http_method)r->method);
        size_t ml = strlen(m);
        if (n + ml + 3 >= sizeof allow)
            break;
        if (n > 7)
            memcpy(allow + n, ", ", 2), n += 2;
        memcpy(allow + n, m, ml);
        n += ml;
    }
    if (get && !head && n + 7 < sizeof allow)
        memcpy(allow + n, ", HEAD", 6), n += 6;
    allow[n] = '\0';
    const char *hdrs[] = {allow, NULL};
    respond_error_hdrs(req, 405, "method not allowed", hdrs);
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct httpd_req *req = c->cur;
    struct httpd *srv = c->srv;
    c->cur = NULL;
    conn_disarm(c);
    req->state = REQ_HANDLING;
    if (req->body)
        req->body[req->body_len] = '\0';
    if (!req->keep_alive) {
        c->draining = true;
        http_parser_pause(p, 1);
    }
    if (req->auto_status == 405)
        respond_405(req);
    else if (req->auto_status)
        respond_error_hdrs(req, req->auto_status, "not found", NULL);
    else
        req->route->fn(req, req->route->ud);
    /* req may be gone: answered, written and freed. */
    if (c->closing)
        return -1;
    /* Draining: e.g. the handler dropped its request (httpd_drop), nothing after it is parsed. */
    if (c->draining || c->q_len >= srv->opts.max_pipelined)
        http_parser_pause(p, 1);
    return 0;
}

/* ---- accepting ---------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *ls, int status)
{
    struct httpd *srv = ls->data;
    if (status < 0 || srv->closing)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->handles++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 || srv->nconns >= srv->opts.max_connections) {
        conn_close(c); /* over the limit: closed at once */
        return;
    }
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    char addr[46] = "";
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
        if (sa.ss_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)&sa, addr, sizeof addr);
        else
            uv_ip4_name((const struct sockaddr_in *)&sa, addr, sizeof addr);
    }
    struct peer *p = peer_get(srv, addr);
    if (!p || p->conns >= srv->opts.max_connections_per_client) {
        peer_put(srv, p);
        conn_close(c); /* one client may not take every connection */
        return;
    }
    p->conns++;
    c->peer = p;
    c->counted = true;
    srv->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    conn_arm(c, TIMER_IDLE, srv->opts.idle_timeout_ms);
    conn_read_start(c);
}

int httpd_listen(struct httpd *srv, const char *hostport, int *bound_port, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    int r = UV_EINVAL;
    if (bound_port)
        *bound_port = 0;
    if (err && errlen)
        err[0] = '\0';
    if (!srv || !hostport || srv->closing)
        goto fail;
    const char *sep;
    size_t hlen;
    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (!end || end[1] != ':')
            goto fail;
        hlen = (size_t)(end - hostport - 1);
        memcpy(host, hostport + 1, hlen < sizeof host ? hlen : 0);
        sep = end + 1;
    } else {
        sep = strrchr(hostport, ':');
        if (!sep)
            goto fail;
        hlen = (size_t)(sep - hostport);
        memcpy(host, hostport, hlen < sizeof host ? hlen : 0);
    }
    if (hlen >= sizeof host)
        goto fail;
    host[hlen] = '\0';
    if (hlen == 0 || strcmp(host, "*") == 0)
        strcpy(host, "0.0.0.0");
    port = sep + 1;
    char *pend;
    long pn = strtol(port, &pend, 10);
    if (*port == '\0' || *pend != '\0' || pn < 0 || pn > 65535)
        goto fail;

    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    uv_getaddrinfo_t gai;
    r = uv_getaddrinfo(srv->loop, &gai, NULL, host, port, &hints); /* NULL cb: synchronous */
    if (r != 0)
        goto fail;
    r = uv_tcp_bind(&srv->listener, gai.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(gai.addrinfo);
    if (r != 0)
        goto fail;
    r = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (r != 0)
        goto fail;
    if (bound_port) {
        struct sockaddr_storage ss;
        int sslen = sizeof ss;
        r = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &sslen);
        if (r != 0)
            goto fail;
        if (ss.ss_family == AF_INET6)
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        else
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
fail:
    if (err && errlen)
        snprintf(err, errlen, "httpd: listen on %s: %s", hostport ? hostport : "(null)",
                 uv_strerror(r));
    return r;
}

/* ---- request accessors -------------------------------------------------------------------- */

const char *httpd_req_peer(const struct httpd_req *req)
{
    return req ? req->peer_addr : "";
}

const char *httpd_req_method(const struct httpd_req *req)
{
    if (!req || req->method < 0)
        return "";
    return http_method_str((enum http_method)req->method);
}

const char *httpd_req_path(const struct httpd_req *req)
{
    return req && req->head_done ? req->buf + req->path : "";
}

const char *httpd_req_query(const struct httpd_req *req)
{
    return req && req->head_done ? req->buf + req->query : "";
}

const char *httpd_req_route(const struct httpd_req *req)
{
    return req ? req->route_name : NULL;
}

const char *httpd_req_param(const struct httpd_req *req, const char *name)
{
    if (!req || !name)
        return NULL;
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->buf + req->params[i].value;
    return NULL;
}

const char *httpd_req_header(const struct httpd_req *req, const char *name)
{
    if (!req || !name || !req->head_done)
        return NULL;
    for (size_t i = 0; i < req->nhdrs; i++)
        if (strcasecmp(req->buf + req->hdrs[i].name, name) == 0)
            return req->buf + req->hdrs[i].value;
    return NULL;
}

const char *httpd_req_body(const struct httpd_req *req, size_t *len)
{
    if (len)
        *len = req && req->body ? req->body_len : 0;
    return req && req->body ? req->body : "";
}

void httpd_req_set_ud(struct httpd_req *req, void *ud)
{
    if (req)
        req->ud = ud;
}

void *httpd_req_get_ud(const struct httpd_req *req)
{
    return req ? req->ud : NULL;
}

bool httpd_req_orphaned(const struct httpd_req *req)
{
    return !req || !req->conn;
}

/* ---- answers ------------------------------------------------------------------------------ */

static const char *server_date(struct httpd *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_sec = now;
    }
    return srv->date;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_str(char *p, const char *s)
{
    return put(p, s, strlen(s));
}

static char *put_uint(char *p, unsigned long long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Framing headers are the server's: a handler's Content-Length, Transfer-Encoding, Connection or
 * Date is left out, and so is a line that would split the response. */
static bool header_line_ok(const char *h)
{
    static const char *const own[] = {
        "content-length:", "transfer-encoding:", "connection:", "date:"};
    if (!*h || strpbrk(h, "\r\n"))
        return false;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strncasecmp(h, own[i], strlen(own[i])) == 0)
            return false;
    return true;
}

static struct wbuf *build_response(struct httpd *srv, const struct httpd_req *req, int status,
                                   const char *ctype, const char *body, size_t len,
                                   const char *const *headers)
{
    const char *reason = http_status_str((enum http_status)status);
    if (strcmp(reason, "<unknown>") == 0)
        reason = "Unknown";
    bool no_length = status < 200 || status == 204; /* RFC 9110 8.6: never a Content-Length */
    bool send_body = !no_length && status != 304 && req->method != HTTP_HEAD;
    const char *date = server_date(srv);
    size_t need = 32 + strlen(reason) + 8 + strlen(date) + 40 + 32;
    if (ctype)
        need += 16 + strlen(ctype);
    for (const char *const *h = headers; h && *h; h++)
        need += strlen(*h) + 2;
    if (send_body) {
        if (len > UINT32_MAX - need)
            return NULL;
        need += len;
    }
    struct wbuf *w = wbuf_new(need);
    if (!w)
        return NULL;
    char *p = w->data;
    p = put_str(p, "HTTP/1.1 ");
    p = put_uint(p, (unsigned)status);
    *p++ = ' ';
    p = put_str(p, reason);
    p = put_str(p, "\r\nDate: ");
    p = put_str(p, date);
    p = put_str(p, "\r\n");
    if (!no_length) {
        p = put_str(p, "Content-Length: ");
        p = put_uint(p, len);
        p = put_str(p, "\r\n");
    }
    if (ctype && *ctype && !strpbrk(ctype, "\r\n")) {
        p = put_str(p, "Content-Type: ");
        p = put_str(p, ctype);
        p = put_str(p, "\r\n");
    }
    for (const char *const *h = headers; h && *h; h++) {
        if (!header_line_ok(*h))
            continue;
        p = put_str(p, *h);
        p = put_str(p, "\r\n");
    }
    if (!req->keep_alive)
        p = put_str(p, "Connection: close\r\n");
    else if (req->http10)
        p = put_str(p, "Connection: keep-alive\r\n");
    p = put_str(p, "\r\n");
    if (send_body && len)
        p = put(p, body, len);
    w->len = (size_t)(p - w->data);
    return w;
}

/* The common start of an answer (status 0: a drop). Returns the connection to write to, or NULL
 * when there is nothing to write: not ours to answer (yet) or answered already, intercepted, or
 * the client is gone (the request is then done and freed). */
static struct conn *answer_begin(struct httpd_req *req, int status)
{
    if (!req || req->state != REQ_HANDLING)
        return NULL;
    if (req->intercept) {
        httpd_intercept_fn fn = req->intercept;
        req->intercept = NULL;
        fn(req, status, req->intercept_ud); /* answers req, now or later */
        return NULL;
    }
    req->status = status;
    struct conn *c = req->conn;
    if (!c) {
        struct httpd *srv = req->srv;
        req_done(req); /* the client is gone: drop the answer */
        srv->orphans--;
        server_maybe_free(srv);
    }
    return c;
}

static void respond(struct httpd_req *req, int status, const char *content_type, const char *body,
                    size_t len, const char *const *headers)
{
    if (status < 100 || status > 999)
        status = 500;
    if (!body)
        len = 0;
    struct conn *c = answer_begin(req, status);
    if (!c)
        return;
    /* NULL on out of memory: conn_flush() then closes the connection. */
    req->resp = build_response(req->srv, req, status, content_type, body, len, headers);
    req->state = REQ_ANSWERED;
    conn_flush(c);
}

void httpd_respond(struct httpd_req *req, int status, const char *content_type, const char *body,
                   size_t len, const char *const *headers)
{
    respond(req, status, content_type, body, len, headers);
}

void httpd_drop(struct httpd_req *req)
{
    struct conn *c = answer_begin(req, 0);
    if (!c)
        return;
    req->drop = true;
    req->state = REQ_ANSWERED;
    c->draining = true; /* what comes after a drop is never parsed */
    conn_read_stop(c);
    conn_flush(c);
}

void httpd_req_on_done(struct httpd_req *req, httpd_done_fn fn, void *ud)
{
    if (!req)
        return;
    req->done = fn;
    req->done_ud = ud;
}

void httpd_req_intercept(struct httpd_req *req, httpd_intercept_fn fn, void *ud)
{
    if (!req || req->state != REQ_HANDLING)
        return;
    req->intercept = fn;
    req->intercept_ud = ud;
}

static void respond_json_hdrs(struct httpd_req *req, int status, json_t *body,
                              const char *const *headers)
{
    static const char fallback[] = "{\"error\":\"response encoding failed\"}";
    char stack[1024];
    char *heap = NULL;
    const char *out = "{}";
    size_t n = 2;
    if (body) {
        size_t need = json_dumpb(body, stack, sizeof stack, JSON_COMPACT | JSON_ENCODE_ANY);
        if (need > 0 && need <= sizeof stack) {
            out = stack;
            n = need;
        } else if (need > 0 && (heap = malloc(need)) &&
                   json_dumpb(body, heap, need, JSON_COMPACT | JSON_ENCODE_ANY) == need) {
            out = heap;
            n = need;
        } else {
            status = 500;
            out = fallback;
            n = sizeof fallback - 1;
        }
    }
    respond(req, status, "application/json", out, n, headers);
    free(heap);
    json_decref(body);
}

void httpd_respond_json(struct httpd_req *req, int status, json_t *body)
{
    respond_json_hdrs(req, status, body, NULL);
}

static void respond_error_hdrs(struct httpd_req *req, int status, const char *msg,
                               const char *const *headers)
{
    /* NULL (out of memory) still answers, with "{}". */
    respond_json_hdrs(req, status, json_pack("{s:s}", "error", msg ? msg : ""), headers);
}

void httpd_respond_error(struct httpd_req *req, int status, const char *msg)
{
    respond_error_hdrs(req, status, msg, NULL);
}
