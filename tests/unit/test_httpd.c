/* test_httpd.c: tests of common/httpd.c. The server runs on its own uv loop in a thread; the
 * tests speak raw HTTP over plain sockets and read answers with http_parser. Every test stops the
 * server through uv_async + httpd_close and joins the loop thread; the loop must end with no
 * handle left, and ASan/valgrind check that everything was freed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "harness.h"
#include "httpd.h"

#define IO_TIMEOUT_MS 5000
#define MAX_OBS       64
#define MAX_PARKED    8
#define MAX_ANSWERS   32

/* ---- the server under test, in its own thread ------------------------------------------- */

struct obs_rec {
    char method[16];
    char route[64];
    bool has_route;
    int status;
};

struct fx {
    uv_loop_t loop;
    uv_async_t async;
    pthread_t thread;
    bool started;
    struct httpd *srv;
    int port;

    /* run_on_loop(): one call at a time, handed over under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*call)(struct fx *fx, void *arg);
    void *call_arg;
    bool call_done;

    /* written on the loop thread under mu, read by the test under mu */
    struct obs_rec obs[MAX_OBS];
    int nobs;
    int handled;
    int pending, max_pending;
    int answers[MAX_ANSWERS]; /* ids in the order handlers answered */
    int nanswers;
    int nparked;
    bool orphaned_at_answer;
    int intercepted; /* the status an intercepted handler answered with; -1 = none yet */
    int done_calls, done_status, done_nobs; /* httpd_req_on_done: calls, status, nobs then */

    /* loop thread only */
    struct httpd_req *parked[MAX_PARKED];
};

static void on_async(uv_async_t *a)
{
    struct fx *fx = a->data;
    pthread_mutex_lock(&fx->mu);
    void (*call)(struct fx *, void *) = fx->call;
    void *arg = fx->call_arg;
    pthread_mutex_unlock(&fx->mu);
    if (!call)
        return;
    call(fx, arg);
    pthread_mutex_lock(&fx->mu);
    fx->call = NULL;
    fx->call_done = true;
    pthread_cond_broadcast(&fx->cv);
    pthread_mutex_unlock(&fx->mu);
}

/* Runs call(fx, arg) on the loop thread and waits for it. */
static void run_on_loop(struct fx *fx, void (*call)(struct fx *, void *), void *arg)
{
    pthread_mutex_lock(&fx->mu);
    fx->call = call;
    fx->call_arg = arg;
    fx->call_done = false;
    pthread_mutex_unlock(&fx->mu);
    uv_async_send(&fx->async);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&fx->mu);
    int rc = 0;
    while (!fx->call_done && rc == 0)
        rc = pthread_cond_timedwait(&fx->cv, &fx->mu, &until);
    bool done = fx->call_done;
    pthread_mutex_unlock(&fx->mu);
    assert_true(done);
}

static void *loop_thread(void *arg)
{
    struct fx *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int query_id(struct httpd_req *req)
{
    char buf[32];
    if (httpd_query_get(httpd_req_query(req), "id", buf, sizeof buf) < 0)
        return 0;
    return atoi(buf);
}

static void count_handled(struct fx *fx)
{
    pthread_mutex_lock(&fx->mu);
    fx->handled++;
    pthread_mutex_unlock(&fx->mu);
}

static void answer_id(struct fx *fx, struct httpd_req *req, int id)
{
    pthread_mutex_lock(&fx->mu);
    if (fx->nanswers < MAX_ANSWERS)
        fx->answers[fx->nanswers++] = id;
    pthread_mutex_unlock(&fx->mu);
    httpd_respond_json(req, 200, json_pack("{s:i}", "id", id));
}

static void h_hello(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    httpd_respond_json(req, 200, json_pack("{s:s}", "hello", "world"));
}

static void h_peer(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    httpd_respond_json(req, 200, json_pack("{s:s}", "peer", httpd_req_peer(req)));
}

static void h_echo(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    size_t len;
    const char *body = httpd_req_body(req, &len);
    const char *x = httpd_req_header(req, "X-Test");
    json_t *j = json_pack("{s:i,s:s,s:s#,s:s}", "id", query_id(req), "method",
                          httpd_req_method(req), "body", body, len, "query", httpd_req_query(req));
    if (j && x)
        json_object_set_new(j, "x", json_string(x));
    pthread_mutex_lock(&((struct fx *)ud)->mu);
    struct fx *fx = ud;
    if (fx->nanswers < MAX_ANSWERS)
        fx->answers[fx->nanswers++] = query_id(req);
    pthread_mutex_unlock(&fx->mu);
    httpd_respond_json(req, 200, j);
}

struct delayed {
    uv_timer_t timer;
    struct fx *fx;
    struct httpd_req *req;
    int id;
};

static void on_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delayed(uv_timer_t *t)
{
    struct delayed *d = t->data;
    pthread_mutex_lock(&d->fx->mu);
    d->fx->pending--;
    pthread_mutex_unlock(&d->fx->mu);
    answer_id(d->fx, d->req, d->id);
    uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

/* Answers {"id":N} after ?ms= milliseconds, from a timer. */
static void h_delay(struct httpd_req *req, void *ud)
{
    struct fx *fx = ud;
    count_handled(fx);
    char ms[16] = "50";
    httpd_query_get(httpd_req_query(req), "ms", ms, sizeof ms);
    struct delayed *d = calloc(1, sizeof *d);
    if (!d) {
        httpd_respond_error(req, 500, "oom");
        return;
    }
    d->fx = fx;
    d->req = req;
    d->id = query_id(req);
    d->timer.data = d;
    pthread_mutex_lock(&fx->mu);
    if (++fx->pending > fx->max_pending)
        fx->max_pending = fx->pending;
    pthread_mutex_unlock(&fx->mu);
    uv_timer_init(&fx->loop, &d->timer);
    uv_timer_start(&d->timer, on_delayed, (uint64_t)atoi(ms), 0);
}

static void h_items(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    httpd_respond_json(req, 200,
                       json_pack("{s:s,s:s}", "id", httpd_req_param(req, "id"), "part",
                                 httpd_req_param(req, "part")));
}

static void h_upload(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    size_t len;
    httpd_req_body(req, &len);
    httpd_respond_json(req, 200, json_pack("{s:I}", "len", (json_int_t)len));
}

/* Never answers by itself: the test answers through answer_parked(), or the stop does. */
static void h_park(struct httpd_req *req, void *ud)
{
    struct fx *fx = ud;
    count_handled(fx);
    pthread_mutex_lock(&fx->mu);
    if (fx->nparked < MAX_PARKED)
        fx->parked[fx->nparked++] = req;
    pthread_mutex_unlock(&fx->mu);
}

static void h_fallback(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    httpd_respond_json(req, 200, json_pack("{s:s}", "fallback", httpd_req_path(req)));
}

static void h_query(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    char v[64];
    if (httpd_query_get(httpd_req_query(req), "name", v, sizeof v) < 0)
        httpd_respond_error(req, 400, "no name");
    else
        httpd_respond_json(req, 200, json_pack("{s:s}", "name", v));
}

/* Replaces the handler's answer by ?to= (0: a drop). */
static void on_intercepted(struct httpd_req *req, int status, void *ud)
{
    struct fx *fx = ud;
    char to[16] = "0";
    httpd_query_get(httpd_req_query(req), "to", to, sizeof to);
    pthread_mutex_lock(&fx->mu);
    fx->intercepted = status;
    pthread_mutex_unlock(&fx->mu);
    if (atoi(to))
        httpd_respond_error(req, atoi(to), "replaced");
    else
        httpd_drop(req);
}

/* Echoes (or with ?ms= answers from a timer) through an intercept. */
static void h_icept(struct httpd_req *req, void *ud)
{
    char ms[16];
    httpd_req_intercept(req, on_intercepted, ud);
    if (httpd_query_get(httpd_req_query(req), "ms", ms, sizeof ms) >= 0)
        h_delay(req, ud);
    else
        h_echo(req, ud);
}

static void on_req_done(int status, void *ud)
{
    struct fx *fx = ud;
    pthread_mutex_lock(&fx->mu);
    fx->done_calls++;
    fx->done_status = status;
    fx->done_nobs = fx->nobs;
    pthread_mutex_unlock(&fx->mu);
}

/* Echoes, or with ?to=0 drops, and asks to be told when done. */
static void h_done(struct httpd_req *req, void *ud)
{
    char to[16] = "";
    httpd_req_on_done(req, on_req_done, ud);
    httpd_query_get(httpd_req_query(req), "to", to, sizeof to);
    if (strcmp(to, "0") == 0)
        httpd_drop(req);
    else
        h_echo(req, ud);
}

static void h_drop(struct httpd_req *req, void *ud)
{
    count_handled(ud);
    httpd_drop(req);
}

static void on_observe(const char *method, const char *route, int status, void *ud)
{
    struct fx *fx = ud;
    pthread_mutex_lock(&fx->mu);
    if (fx->nobs < MAX_OBS) {
        struct obs_rec *o = &fx->obs[fx->nobs++];
        snprintf(o->method, sizeof o->method, "%s", method);
        o->has_route = route != NULL;
        snprintf(o->route, sizeof o->route, "%s", route ? route : "");
        o->status = status;
    }
    pthread_mutex_unlock(&fx->mu);
}

static void answer_parked(struct fx *fx, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&fx->mu);
    int n = fx->nparked;
    fx->nparked = 0;
    pthread_mutex_unlock(&fx->mu);
    for (int i = 0; i < n; i++) {
        struct httpd_req *req = fx->parked[i];
        bool orphaned = httpd_req_orphaned(req);
        pthread_mutex_lock(&fx->mu);
        fx->orphaned_at_answer = orphaned;
        pthread_mutex_unlock(&fx->mu);
        answer_id(fx, req, query_id(req));
    }
}

static void get_connections(struct fx *fx, void *arg)
{
    *(unsigned *)arg = httpd_connections(fx->srv);
}

static void stop_server(struct fx *fx, void *arg)
{
    (void)arg;
    httpd_close(fx->srv);    /* pending requests become orphans ... */
    answer_parked(fx, NULL); /* ... and their answers are dropped; then the server is freed */
    uv_close((uv_handle_t *)&fx->async, NULL);
}

static void fx_start(struct fx *fx, const struct httpd_opts *opts)
{
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->async, on_async), 0);
    fx->async.data = fx;
    fx->srv = httpd_new(&fx->loop, opts);
    assert_non_null(fx->srv);
    struct httpd *s = fx->srv;
    assert_int_equal(httpd_route(s, "GET", "/hello", h_hello, fx, 0), 0);
    assert_int_equal(httpd_route(s, "PUT", "/hello", h_hello, fx, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "/echo", h_echo, fx, 0), 0);
    assert_int_equal(httpd_route(s, "POST", "/echo", h_echo, fx, 0), 0);
    assert_int_equal(httpd_route(s, "POST", "/peer", h_peer, fx, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "/delay", h_delay, fx, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "/items/{id}/parts/{part}", h_items, fx, 0), 0);
    assert_int_equal(httpd_route(s, "POST", "/upload", h_upload, fx, 1000), 0);
    assert_int_equal(httpd_route(s, "GET", "/park", h_park, fx, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "/query", h_query, fx, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "/icept", h_icept, fx, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "/drop", h_drop, fx, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "/done", h_done, fx, 0), 0);
    assert_int_equal(httpd_fallback(s, "/fb/", h_fallback, fx), 0);
    httpd_set_observer(s, on_observe, fx);
    char err[256];
    assert_int_equal(httpd_listen(s, "127.0.0.1:0", &fx->port, err, sizeof err), 0);
    assert_true(fx->port > 0);
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_thread, fx), 0);
    fx->started = true;
}

static void fx_start_default(struct fx *fx)
{
    struct httpd_opts o = {.read_timeout_ms = 10000, .idle_timeout_ms = 10000};
    fx_start(fx, &o);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    pthread_mutex_init(&fx->mu, NULL);
    pthread_cond_init(&fx->cv, NULL);
    fx->intercepted = -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int rc = 0;
    if (fx->started) {
        run_on_loop(fx, stop_server, NULL);
        pthread_join(fx->thread, NULL);
        /* Every handle is closed: the loop ran to its end with nothing left behind. */
        rc = uv_loop_close(&fx->loop) == 0 ? 0 : -1;
    }
    pthread_cond_destroy(&fx->cv);
    pthread_mutex_destroy(&fx->mu);
    free(fx);
    return rc;
}

/* ---- a raw HTTP client ------------------------------------------------------------------ */

struct tresp {
    int status;
    char headers[4096]; /* "\nName: value" lines */
    size_t hlen;
    bool last_was_value;
    char body[16384];
    size_t body_len;
    bool done;
};

struct tcli {
    int fd;
    http_parser p;
    bool head; /* the next answer is to a HEAD request: no body */
    struct tresp *r;
    char buf[65536];
    size_t off, len;
};

static void tr_append(char *dst, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n >= cap)
        n = cap - 1 - *len;
    memcpy(dst + *len, s, n);
    *len += n;
    dst[*len] = '\0';
}

static int tc_on_header_field(http_parser *p, const char *at, size_t len)
{
    struct tresp *r = ((struct tcli *)p->data)->r;
    if (r->last_was_value || r->hlen == 0)
        tr_append(r->headers, sizeof r->headers, &r->hlen, "\n", 1);
    r->last_was_value = false;
    tr_append(r->headers, sizeof r->headers, &r->hlen, at, len);
    return 0;
}

static int tc_on_header_value(http_parser *p, const char *at, size_t len)
{
    struct tresp *r = ((struct tcli *)p->data)->r;
    if (!r->last_was_value)
        tr_append(r->headers, sizeof r->headers, &r->hlen, ": ", 2);
    r->last_was_value = true;
    tr_append(r->headers, sizeof r->headers, &r->hlen, at, len);
    return 0;
}

static int tc_on_headers_complete(http_parser *p)
{
    struct tcli *c = p->data;
    c->r->status = (int)p->status_code;
    return c->head ? 1 : 0;
}

static int tc_on_body(http_parser *p, const char *at, size_t len)
{
    struct tresp *r = ((struct tcli *)p->data)->r;
    tr_append(r->body, sizeof r->body, &r->body_len, at, len);
    return 0;
}

static int tc_on_message_complete(http_parser *p)
{
    ((struct tcli *)p->data)->r->done = true;
    http_parser_pause(p, 1); /* one answer per cli_read(); the rest stays buffered */
    return 0;
}

static const http_parser_settings tc_settings = {
    .on_header_field = tc_on_header_field,
    .on_header_value = tc_on_header_value,
    .on_headers_complete = tc_on_headers_complete,
    .on_body = tc_on_body,
    .on_message_complete = tc_on_message_complete,
};

static struct tcli *cli_connect(int port)
{
    struct tcli *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = th_tcp_connect(port);
    assert_true(c->fd >= 0);
    http_parser_init(&c->p, HTTP_RESPONSE);
    c->p.data = c;
    return c;
}

static void cli_free(struct tcli *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static void cli_sendn(struct tcli *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void cli_send(struct tcli *c, const char *s)
{
    cli_sendn(c, s, strlen(s));
}

/* Reads one whole answer into r. 0, or -1 on timeout, EOF or a parse error. */
static int cli_read(struct tcli *c, struct tresp *r, long long timeout_ms)
{
    memset(r, 0, sizeof *r);
    c->r = r;
    long long end = th_now_ms() + timeout_ms;
    for (;;) {
        if (c->off < c->len) {
            size_t n = http_parser_execute(&c->p, &tc_settings, c->buf + c->off, c->len - c->off);
            c->off += n;
            enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
            if (e == HPE_PAUSED)
                http_parser_pause(&c->p, 0);
            else if (e != HPE_OK)
                return -1;
            if (r->done)
                return 0;
        }
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
        long long left = end - th_now_ms();
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
}

/* Waits for the server to close: true if it did within timeout_ms. *got_data (may be NULL)
 * tells whether bytes came first. */
static bool cli_wait_closed(struct tcli *c, long long timeout_ms, bool *got_data)
{
    long long end = th_now_ms() + timeout_ms;
    if (got_data)
        *got_data = c->off < c->len;
    for (;;) {
        long long left = end - th_now_ms();
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return false;
        char tmp[4096];
        ssize_t n = read(c->fd, tmp, sizeof tmp);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n > 0 && got_data)
            *got_data = true;
    }
}

/* True if nothing is readable within ms (no answer, no close). */
static bool cli_quiet_for(struct tcli *c, int ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    return c->off == c->len && poll(&pfd, 1, ms) == 0;
}

static bool resp_header(const struct tresp *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *line = r->headers; line && *line; line = strchr(line + 1, '\n')) {
        const char *l = *line == '\n' ? line + 1 : line;
        if (strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
            const char *v = l + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\n");
            snprintf(out, outlen, "%.*s", (int)vl, v);
            return true;
        }
    }
    return false;
}

static json_t *resp_json(const struct tresp *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void assert_json_str(const struct tresp *r, const char *key, const char *want)
{
    json_t *j = resp_json(r);
    const char *got = json_string_value(json_object_get(j, key));
    if (!got || strcmp(got, want) != 0) {
        json_decref(j);
        fail_msg("%s: want \"%s\", body %.*s", key, want, (int)r->body_len, r->body);
    }
    json_decref(j);
}

static int json_id(const struct tresp *r)
{
    json_t *j = resp_json(r);
    int id = (int)json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    return id;
}

static int fx_handled(struct fx *fx)
{
    pthread_mutex_lock(&fx->mu);
    int n = fx->handled;
    pthread_mutex_unlock(&fx->mu);
    return n;
}

static int fx_parked(struct fx *fx)
{
    pthread_mutex_lock(&fx->mu);
    int n = fx->nparked;
    pthread_mutex_unlock(&fx->mu);
    return n;
}

static int fx_nobs(struct fx *fx)
{
    pthread_mutex_lock(&fx->mu);
    int n = fx->nobs;
    pthread_mutex_unlock(&fx->mu);
    return n;
}

static unsigned fx_connections(struct fx *fx)
{
    unsigned n = 0;
    run_on_loop(fx, get_connections, &n);
    return n;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- tests ------------------------------------------------------------------------------ */

static void test_get_json_200(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/hello"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    char v[128];
    assert_true(resp_header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_true(resp_header(&r, "Content-Length", v, sizeof v));
    assert_int_equal(atoi(v), (int)r.body_len);
    assert_false(resp_header(&r, "Connection", v, sizeof v));
    assert_json_str(&r, "hello", "world");
    cli_free(c);
}

static void test_keep_alive_two_requests(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/echo?id=1"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(json_id(&r), 1);
    cli_send(c, GET("/echo?id=2"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_id(&r), 2);
    assert_int_equal(fx_connections(fx), 1);
    cli_free(c);
}

static void stop_listening(struct fx *fx, void *arg)
{
    (void)arg;
    httpd_stop_listening(fx->srv);
}

static void test_stop_listening_keeps_open_connections(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/echo?id=1"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    run_on_loop(fx, stop_listening, NULL);
    assert_true(th_tcp_connect(fx->port) < 0); /* no new connections ... */
    cli_send(c, GET("/echo?id=2"));            /* ... the open one is still served */
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(json_id(&r), 2);
    cli_free(c);
}

static void test_post_body_delivered(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\nContent-Length: 11\r\n\r\n"
                "hello world");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_json_str(&r, "body", "hello world");
    assert_json_str(&r, "method", "POST");
    assert_json_str(&r, "x", "yes");
    cli_free(c);
}

static void test_chunked_body_within_limit_delivered(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    char chunk[300];
    memset(chunk, 'a', sizeof chunk);
    cli_send(c, "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) { /* 900 bytes, the route allows 1000 */
        cli_send(c, "12c\r\n");
        cli_sendn(c, chunk, sizeof chunk);
        cli_send(c, "\r\n");
    }
    cli_send(c, "0\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "len")), 900);
    json_decref(j);
    cli_free(c);
}

static void test_pipelined_timer_answer_keeps_order(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/delay?id=1&ms=200") GET("/echo?id=2") GET("/echo?id=3"));
    for (int id = 1; id <= 3; id++) {
        assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(json_id(&r), id);
    }
    /* The handlers answered 2 and 3 before the timer answered 1. */
    pthread_mutex_lock(&fx->mu);
    int n = fx->nanswers, a0 = fx->answers[0], a2 = fx->answers[2];
    pthread_mutex_unlock(&fx->mu);
    assert_int_equal(n, 3);
    assert_int_equal(a0, 2);
    assert_int_equal(a2, 1);
    cli_free(c);
}

static void test_pipelined_answers_wait_for_the_head(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/park?id=1") GET("/echo?id=2") GET("/echo?id=3"));
    bool ok;
    TH_WAIT(ok, fx_handled(fx) == 3, IO_TIMEOUT_MS);
    assert_true(ok);
    assert_true(cli_quiet_for(c, 50)); /* 2 and 3 are answered but wait for 1 */
    run_on_loop(fx, answer_parked, NULL);
    for (int id = 1; id <= 3; id++) {
        assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
        assert_int_equal(json_id(&r), id);
    }
    cli_free(c);
}

static void test_pipelining_pauses_at_max_pipelined(void **state)
{
    struct fx *fx = *state;
    struct httpd_opts o = {.read_timeout_ms = 10000, .idle_timeout_ms = 10000, .max_pipelined = 2};
    fx_start(fx, &o);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    char reqs[2048] = "";
    for (int i = 1; i <= 6; i++) {
        char one[128];
        snprintf(one, sizeof one, GET("/delay?id=%d&ms=20"), i);
        strcat(reqs, one);
    }
    cli_send(c, reqs);
    for (int id = 1; id <= 6; id++) {
        assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
        assert_int_equal(json_id(&r), id);
    }
    pthread_mutex_lock(&fx->mu);
    int max_pending = fx->max_pending;
    pthread_mutex_unlock(&fx->mu);
    assert_true(max_pending >= 1 && max_pending <= 2);
    cli_free(c);
}

static void test_body_over_content_length_limit_413(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    char body[1000];
    memset(body, 'b', sizeof body);
    cli_send(c, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    cli_sendn(c, body, sizeof body);
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 413);
    char v[64];
    assert_true(resp_header(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL));
    assert_int_equal(fx_handled(fx), 0);
    cli_free(c);
}

static void test_body_over_limit_chunked_413(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    char chunk[512];
    memset(chunk, 'c', sizeof chunk);
    cli_send(c, "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) { /* 1536 bytes, the route allows 1000 */
        cli_send(c, "200\r\n");
        cli_sendn(c, chunk, sizeof chunk);
        cli_send(c, "\r\n");
    }
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 413);
    char v[64];
    assert_true(resp_header(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL));
    assert_int_equal(fx_handled(fx), 0);
    cli_free(c);
}

static void test_unknown_path_404(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/nope") GET("/items//parts/x") GET("/hello"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 404); /* an empty {id} segment matches nothing */
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200); /* 404 keeps the connection */
    cli_free(c);
}

static void test_wrong_method_405_with_allow(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 405);
    char v[128];
    assert_true(resp_header(&r, "Allow", v, sizeof v));
    assert_non_null(strstr(v, "GET"));
    assert_non_null(strstr(v, "PUT"));
    assert_null(strstr(v, "DELETE"));
    assert_int_equal(fx_handled(fx), 0);
    cli_free(c);
}

static void test_head_uses_get_route_without_body(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    c->head = true;
    cli_send(c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    char v[64];
    assert_true(resp_header(&r, "Content-Length", v, sizeof v));
    assert_true(atoi(v) > 0);
    assert_int_equal(r.body_len, 0);
    c->head = false;
    cli_send(c, GET("/hello")); /* no stray body bytes in between */
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_json_str(&r, "hello", "world");
    cli_free(c);
}

static void test_huge_headers_431(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    static char big[20000];
    memset(big, 'h', sizeof big - 1);
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    cli_send(c, big);
    cli_send(c, "\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 431);
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL));
    assert_int_equal(fx_handled(fx), 0);
    cli_free(c);
}

static void test_slow_client_408_then_closed(void **state)
{
    struct fx *fx = *state;
    struct httpd_opts o = {.read_timeout_ms = 200, .idle_timeout_ms = 10000};
    fx_start(fx, &o);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    long long t0 = th_now_ms();
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\n"); /* the blank line never comes */
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    long long took = th_now_ms() - t0;
    assert_int_equal(r.status, 408);
    assert_true(took >= 190);
    assert_true(took < 15000); /* fired, did not hang */
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL));
    cli_free(c);
}

static void test_idle_keep_alive_closed_silently(void **state)
{
    struct fx *fx = *state;
    struct httpd_opts o = {.read_timeout_ms = 10000, .idle_timeout_ms = 200};
    fx_start(fx, &o);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    long long t0 = th_now_ms(); /* the server starts its idle clock after this */
    cli_send(c, GET("/hello"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    bool got_data = true;
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, &got_data));
    long long took = th_now_ms() - t0;
    assert_false(got_data);
    assert_true(took >= 190);
    assert_true(took < 15000); /* fired, did not hang */
    bool ok;
    TH_WAIT(ok, fx_connections(fx) == 0, IO_TIMEOUT_MS);
    assert_true(ok);
    cli_free(c);
}

static void test_malformed_request_400_and_closed(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, "THIS IS NOT HTTP\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 400);
    char v[64];
    assert_true(resp_header(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL));
    cli_free(c);
}

static void test_malformed_after_valid_answers_both_in_order(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/delay?id=7&ms=50") "GET /hello HTTP/1.1\r\nBroken header\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_id(&r), 7);
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 400);
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL));
    cli_free(c);
}

static void test_route_params_percent_decoded(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/items/a%20b%2Fc/parts/x%C3%A4+y"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_json_str(&r, "id", "a b/c");
    assert_json_str(&r, "part", "x\xc3\xa4+y"); /* '+' is a plus in a path */
    cli_free(c);
}

static void test_query_get_table(void **state)
{
    (void)state;
    static const struct {
        const char *query, *name, *want; /* want NULL: -1 */
    } cases[] = {
        {"a=1&b=hello+world&c=%41%42&d&e=&a=2", "a", "1"},
        {"a=1&b=hello+world&c=%41%42&d&e=&a=2", "b", "hello world"},
        {"a=1&b=hello+world&c=%41%42&d&e=&a=2", "c", "AB"},
        {"a=1&b=hello+world&c=%41%42&d&e=&a=2", "d", ""},
        {"a=1&b=hello+world&c=%41%42&d&e=&a=2", "e", ""},
        {"a=1&b=hello+world&c=%41%42&d&e=&a=2", "zz", NULL},
        {"k%20x=v%2", "k x", "v%2"},
        {"?q=%E2%82%AC", "q", "\xe2\x82\xac"},
        {"", "a", NULL},
        {"aa=1", "a", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        int n = httpd_query_get(cases[i].query, cases[i].name, buf, sizeof buf);
        if (!cases[i].want) {
            assert_int_equal(n, -1);
            continue;
        }
        assert_int_equal(n, (int)strlen(cases[i].want));
        assert_string_equal(buf, cases[i].want);
    }
    char small[4];
    assert_int_equal(httpd_query_get("a=1234", "a", small, sizeof small), -1);
    assert_int_equal(httpd_query_get("a=123", "a", small, sizeof small), 3);
}

static void test_query_reaches_handler_decoded(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/query?x=1&name=J%C3%BCrgen+M"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_json_str(&r, "name", "J\xc3\xbcrgen M");
    cli_free(c);
}

/* Issue 14: one client address may not take every connection, and body bytes held before a
 * handler ran (before any signature check) are bounded per client and in all: over a budget
 * the request is answered 503 (the sender retries) and nothing is held for it. */
static void test_client_budgets(void **state)
{
    struct fx *fx = *state;
    struct httpd_opts o = {.read_timeout_ms = 10000,
                           .idle_timeout_ms = 10000,
                           .max_connections_per_client = 2,
                           .max_body_held = 1000000,
                           .max_body_held_per_client = 5000};
    fx_start(fx, &o);
    struct tresp r;
    struct tcli *a = cli_connect(fx->port), *b = cli_connect(fx->port);
    /* a holds 3001 bytes of an unfinished body; b's 3000 more would pass the client's 5000 */
    cli_send(a, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\nabc");
    assert_true(cli_quiet_for(a, 100));
    cli_send(b, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\nabc");
    assert_int_equal(cli_read(b, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 503);
    /* a third connection from the same address is closed at once */
    struct tcli *third = cli_connect(fx->port);
    bool got_data = true;
    assert_true(cli_wait_closed(third, IO_TIMEOUT_MS, &got_data));
    assert_false(got_data);
    cli_free(third);
    /* a's request completes; its bytes are given back and a new request fits again */
    char rest[3000];
    memset(rest, 'x', sizeof rest);
    cli_sendn(a, rest, sizeof rest - 3);
    assert_int_equal(cli_read(a, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    cli_free(b);
    bool ok;
    TH_WAIT(ok, fx_connections(fx) == 1, IO_TIMEOUT_MS);
    assert_true(ok);
    struct tcli *d = cli_connect(fx->port);
    cli_send(d, "POST /peer HTTP/1.1\r\nHost: t\r\nContent-Length: 4000\r\n\r\n");
    cli_sendn(d, rest, 4000 > sizeof rest ? sizeof rest : 4000);
    cli_sendn(d, rest, 1000);
    assert_int_equal(cli_read(d, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_json_str(&r, "peer", "127.0.0.1"); /* the client's address, for logs */
    cli_free(a);
    cli_free(d);
}

static void test_max_connections(void **state)
{
    struct fx *fx = *state;
    struct httpd_opts o = {
        .read_timeout_ms = 10000, .idle_timeout_ms = 10000, .max_connections = 2};
    fx_start(fx, &o);
    struct tresp r;
    struct tcli *a = cli_connect(fx->port), *b = cli_connect(fx->port);
    cli_send(a, GET("/hello"));
    cli_send(b, GET("/hello"));
    assert_int_equal(cli_read(a, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(cli_read(b, &r, IO_TIMEOUT_MS), 0);
    struct tcli *third = cli_connect(fx->port);
    bool got_data = true;
    assert_true(cli_wait_closed(third, IO_TIMEOUT_MS, &got_data));
    assert_false(got_data);
    assert_int_equal(fx_connections(fx), 2);
    cli_free(a);
    bool ok;
    TH_WAIT(ok, fx_connections(fx) == 1, IO_TIMEOUT_MS);
    assert_true(ok);
    struct tcli *d = cli_connect(fx->port);
    cli_send(d, GET("/hello"));
    assert_int_equal(cli_read(d, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    cli_free(third);
    cli_free(b);
    cli_free(d);
}

static void test_client_gone_while_handler_pending(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    cli_send(c, GET("/park?id=5"));
    bool ok;
    TH_WAIT(ok, fx_parked(fx) == 1, IO_TIMEOUT_MS);
    assert_true(ok);
    cli_free(c);
    TH_WAIT(ok, fx_connections(fx) == 0, IO_TIMEOUT_MS);
    assert_true(ok);
    run_on_loop(fx, answer_parked, NULL); /* the answer is dropped, the request freed */
    pthread_mutex_lock(&fx->mu);
    bool orphaned = fx->orphaned_at_answer;
    int nobs = fx->nobs;
    struct obs_rec last = fx->obs[nobs > 0 ? nobs - 1 : 0];
    pthread_mutex_unlock(&fx->mu);
    assert_true(orphaned);
    assert_int_equal(nobs, 1);
    assert_string_equal(last.route, "/park");
    assert_int_equal(last.status, 200);
}

static void test_observer_sees_method_route_status(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/hello") GET("/nope") "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n" GET(
                    "/items/1/parts/2") GET("/fb/x/y"));
    for (int i = 0; i < 5; i++)
        assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    bool ok;
    TH_WAIT(ok, fx_nobs(fx) == 5, IO_TIMEOUT_MS);
    assert_true(ok);
    static const struct obs_rec want[] = {
        {"GET", "/hello", true, 200}, {"GET", "", false, 404},
        {"DELETE", "", false, 405},   {"GET", "/items/{id}/parts/{part}", true, 200},
        {"GET", "/fb/", true, 200},
    };
    pthread_mutex_lock(&fx->mu);
    struct obs_rec got[5];
    memcpy(got, fx->obs, sizeof got);
    pthread_mutex_unlock(&fx->mu);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(got[i].method, want[i].method);
        assert_string_equal(got[i].route, want[i].route);
        assert_int_equal(got[i].has_route, want[i].has_route);
        assert_int_equal(got[i].status, want[i].status);
    }
    cli_free(c);
}

static void test_fallback_prefix_handler(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, "POST /fb/any/thing?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_json_str(&r, "fallback", "/fb/any/thing");
    cli_send(c, GET("/fbx"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 404);
    cli_free(c);
}

static void test_http10_closes_unless_keep_alive(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tresp r;
    char v[64];
    struct tcli *c = cli_connect(fx->port);
    cli_send(c, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_header(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL));
    cli_free(c);

    c = cli_connect(fx->port);
    cli_send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_true(resp_header(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "keep-alive");
    cli_send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    cli_free(c);
}

static void test_connection_close_request_closes_after_answer(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" GET("/hello"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, NULL)); /* the second is never answered */
    assert_int_equal(fx_handled(fx), 1);
    cli_free(c);
}

static void test_expect_100_continue(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
                "Expect: 100-continue\r\n\r\n");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 100);
    cli_send(c, "0123456789");
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    json_t *j = resp_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "len")), 10);
    json_decref(j);
    cli_free(c);
}

static void test_route_templates_validated(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct httpd *s = httpd_new(&loop, NULL);
    assert_non_null(s);
    assert_int_equal(httpd_route(s, "GET", "/ok/{id}", h_hello, NULL, 0), 0);
    assert_int_equal(httpd_route(s, "GET", "no-slash", h_hello, NULL, 0), -1);
    assert_int_equal(httpd_route(s, "GET", "/a/{}", h_hello, NULL, 0), -1);
    assert_int_equal(httpd_route(s, "GET", "/a/x{id}", h_hello, NULL, 0), -1);
    assert_int_equal(httpd_route(s, "GET", "/a?b", h_hello, NULL, 0), -1);
    assert_int_equal(httpd_route(s, "FETCH", "/a", h_hello, NULL, 0), -1);
    char err[128];
    assert_true(httpd_listen(s, "127.0.0.1:99999", NULL, err, sizeof err) < 0);
    assert_true(strlen(err) > 0);
    httpd_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int fx_intercepted(struct fx *fx)
{
    pthread_mutex_lock(&fx->mu);
    int n = fx->intercepted;
    pthread_mutex_unlock(&fx->mu);
    return n;
}

/* The last observed status of `route`, or -1. */
static int fx_observed(struct fx *fx, const char *route)
{
    int status = -1;
    pthread_mutex_lock(&fx->mu);
    for (int i = 0; i < fx->nobs; i++)
        if (strcmp(fx->obs[i].route, route) == 0)
            status = fx->obs[i].status;
    pthread_mutex_unlock(&fx->mu);
    return status;
}

static void test_intercept_replaces_the_answer_and_keeps_alive(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/icept?id=1&to=503"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 503);
    assert_json_str(&r, "error", "replaced");
    assert_int_equal(fx_handled(fx), 1);       /* the handler ran ... */
    assert_int_equal(fx_intercepted(fx), 200); /* ... and its 200 was discarded */
    cli_send(c, GET("/echo?id=2"));            /* the connection goes on */
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_id(&r), 2);
    bool ok;
    TH_WAIT(ok, fx_nobs(fx) == 2, IO_TIMEOUT_MS);
    assert_true(ok);
    assert_int_equal(fx_observed(fx, "/icept"), 503); /* what the client saw */
    cli_free(c);
}

static void test_intercept_of_a_later_answer_keeps_pipelined_order(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/icept?id=1&ms=100&to=502") GET("/echo?id=2"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 502);
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_id(&r), 2);
    cli_free(c);
}

static void test_drop_closes_after_the_earlier_answers(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    /* the drop waits for the parked head, then closes; the request behind it is never handled */
    cli_send(c, GET("/park?id=1") GET("/drop") GET("/echo?id=3"));
    bool ok;
    TH_WAIT(ok, fx_handled(fx) == 2, IO_TIMEOUT_MS);
    assert_true(ok);
    assert_true(cli_quiet_for(c, 50)); /* not closed before the head's answer */
    run_on_loop(fx, answer_parked, NULL);
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(json_id(&r), 1);
    bool got_data = true;
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, &got_data));
    assert_false(got_data);
    assert_int_equal(fx_handled(fx), 2);
    TH_WAIT(ok, fx_observed(fx, "/drop") == 0, IO_TIMEOUT_MS); /* status 0: no answer */
    assert_true(ok);
    cli_free(c);
    TH_WAIT(ok, fx_connections(fx) == 0, IO_TIMEOUT_MS);
    assert_true(ok);
}

static void test_intercept_then_drop(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    cli_send(c, GET("/icept?id=1&to=0") GET("/echo?id=2"));
    bool got_data = true;
    assert_true(cli_wait_closed(c, IO_TIMEOUT_MS, &got_data));
    assert_false(got_data);
    assert_int_equal(fx_intercepted(fx), 200);
    assert_int_equal(fx_handled(fx), 1);
    bool ok;
    TH_WAIT(ok, fx_observed(fx, "/icept") == 0, IO_TIMEOUT_MS);
    assert_true(ok);
    cli_free(c);
    /* other connections are untouched */
    c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/hello"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    cli_free(c);
}

/* The done callback comes once per request, after the answer was written and observed, with
 * the status the client saw; for a drop with 0. */
static void test_on_done_after_the_answer(void **state)
{
    struct fx *fx = *state;
    fx_start_default(fx);
    struct tcli *c = cli_connect(fx->port);
    struct tresp r;
    cli_send(c, GET("/done?id=1"));
    assert_int_equal(cli_read(c, &r, IO_TIMEOUT_MS), 0);
    assert_int_equal(r.status, 200);
    bool ok;
    TH_WAIT(ok, fx_nobs(fx) == 1, IO_TIMEOUT_MS);
    assert_true(ok);
    pthread_mutex_lock(&fx->mu);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(fx->done_status, 200);
    assert_int_equal(fx->done_nobs, 1); /* the observer saw it first */
    pthread_mutex_unlock(&fx->mu);
    cli_send(c, GET("/done?id=2&to=0"));
    TH_WAIT(ok, fx_nobs(fx) == 2, IO_TIMEOUT_MS);
    assert_true(ok);
    pthread_mutex_lock(&fx->mu);
    assert_int_equal(fx->done_calls, 2);
    assert_int_equal(fx->done_status, 0);
    pthread_mutex_unlock(&fx->mu);
    cli_free(c);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        T(test_get_json_200),
        T(test_keep_alive_two_requests),
        T(test_stop_listening_keeps_open_connections),
        T(test_post_body_delivered),
        T(test_chunked_body_within_limit_delivered),
        T(test_pipelined_timer_answer_keeps_order),
        T(test_pipelined_answers_wait_for_the_head),
        T(test_pipelining_pauses_at_max_pipelined),
        T(test_body_over_content_length_limit_413),
        T(test_body_over_limit_chunked_413),
        T(test_unknown_path_404),
        T(test_wrong_method_405_with_allow),
        T(test_head_uses_get_route_without_body),
        T(test_huge_headers_431),
        T(test_slow_client_408_then_closed),
        T(test_idle_keep_alive_closed_silently),
        T(test_malformed_request_400_and_closed),
        T(test_malformed_after_valid_answers_both_in_order),
        T(test_route_params_percent_decoded),
        T(test_query_get_table),
        T(test_query_reaches_handler_decoded),
        T(test_max_connections),
        T(test_client_budgets),
        T(test_client_gone_while_handler_pending),
        T(test_observer_sees_method_route_status),
        T(test_fallback_prefix_handler),
        T(test_http10_closes_unless_keep_alive),
        T(test_connection_close_request_closes_after_answer),
        T(test_expect_100_continue),
        T(test_route_templates_validated),
        T(test_intercept_replaces_the_answer_and_keeps_alive),
        T(test_intercept_of_a_later_answer_keeps_pipelined_order),
        T(test_drop_closes_after_the_earlier_answers),
        T(test_intercept_then_drop),
        T(test_on_done_after_the_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
