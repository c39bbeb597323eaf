/* test_httpc.c: tests of common/httpc.c against a common/httpd.c server running on its own uv
 * loop in a thread (stopped through uv_async + httpd_close and joined at the end of each test).
 * The server's /echo route answers with what it received, so each test can check what went over
 * the wire. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "harness.h"
#include "httpc.h"
#include "httpd.h"

#define MAX_PARKED 8

struct fx {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    bool started;
    struct httpd *srv;
    int port;
    char base[64];                        /* "http://127.0.0.1:<port>" */
    struct httpd_req *parked[MAX_PARKED]; /* loop thread only */
    int nparked;
};

static void *loop_thread(void *arg)
{
    struct fx *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    struct fx *fx = a->data;
    httpd_close(fx->srv);
    for (int i = 0; i < fx->nparked; i++) /* orphans now: answers dropped, requests freed */
        httpd_respond_error(fx->parked[i], 503, "stopping");
    fx->nparked = 0;
    uv_close((uv_handle_t *)&fx->stop, NULL);
}

static void json_set_header(json_t *j, struct httpd_req *req, const char *key, const char *name)
{
    const char *v = httpd_req_header(req, name);
    json_object_set_new(j, key, v ? json_string(v) : json_null());
}

/* Answers with what arrived: method, body, and the headers the tests look at. */
static void h_echo(struct httpd_req *req, void *ud)
{
    (void)ud;
    size_t len;
    const char *body = httpd_req_body(req, &len);
    json_t *j = json_pack("{s:s,s:s#}", "method", httpd_req_method(req), "body", body, len);
    if (j) {
        json_set_header(j, req, "content_type", "Content-Type");
        json_set_header(j, req, "content_length", "Content-Length");
        json_set_header(j, req, "accept", "Accept");
        json_set_header(j, req, "x_custom", "X-Custom");
        json_set_header(j, req, "user_agent", "User-Agent");
        json_set_header(j, req, "expect", "Expect");
    }
    httpd_respond_json(req, 200, j);
}

static void h_json(struct httpd_req *req, void *ud)
{
    (void)ud;
    httpd_respond_json(req, 200, json_pack("{s:b,s:i}", "ok", 1, "n", 42));
}

static void h_text(struct httpd_req *req, void *ud)
{
    (void)ud;
    static const char text[] = "plain text, not JSON";
    httpd_respond(req, 200, "text/plain", text, sizeof text - 1, NULL);
}

static void h_conflict(struct httpd_req *req, void *ud)
{
    (void)ud;
    httpd_respond_error(req, 409, "conflict");
}

/* Never answers while the test runs; the stop drops the answer. */
static void h_hang(struct httpd_req *req, void *ud)
{
    struct fx *fx = ud;
    if (fx->nparked < MAX_PARKED)
        fx->parked[fx->nparked++] = req;
    else
        httpd_respond_error(req, 503, "too many");
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (uv_loop_init(&fx->loop) != 0 || uv_async_init(&fx->loop, &fx->stop, on_stop) != 0)
        return -1;
    fx->stop.data = fx;
    struct httpd_opts o = {.default_max_body = 4 * 1024 * 1024};
    fx->srv = httpd_new(&fx->loop, &o);
    if (!fx->srv)
        return -1;
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (httpd_route(fx->srv, methods[i], "/echo", h_echo, fx, 0) != 0)
            return -1;
    if (httpd_route(fx->srv, "GET", "/json", h_json, fx, 0) != 0 ||
        httpd_route(fx->srv, "GET", "/text", h_text, fx, 0) != 0 ||
        httpd_route(fx->srv, "POST", "/conflict", h_conflict, fx, 0) != 0 ||
        httpd_route(fx->srv, "GET", "/hang", h_hang, fx, 0) != 0)
        return -1;
    char err[256];
    if (httpd_listen(fx->srv, "127.0.0.1:0", &fx->port, err, sizeof err) != 0)
        return -1;
    snprintf(fx->base, sizeof fx->base, "http://127.0.0.1:%d", fx->port);
    if (pthread_create(&fx->thread, NULL, loop_thread, fx) != 0)
        return -1;
    fx->started = true;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int rc = 0;
    if (fx->started) {
        uv_async_send(&fx->stop);
        pthread_join(fx->thread, NULL);
        rc = uv_loop_close(&fx->loop) == 0 ? 0 : -1;
    }
    free(fx);
    return rc;
}

static const char *url(const struct fx *fx, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", fx->base, path);
    return buf;
}

static struct httpc *client(long timeout_ms)
{
    struct httpc_opts o = {.connect_timeout_ms = 2000, .timeout_ms = timeout_ms};
    struct httpc *c = httpc_new(&o);
    assert_non_null(c);
    return c;
}

static const char *jstr(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* Local ports of this process's established connections to the server (from /proc). */
static int client_ports(int server_port, int *out, int max)
{
    FILE *f = fopen("/proc/self/net/tcp", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    if (!fgets(line, sizeof line, f)) { /* the title line */
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f) && n < max) {
        unsigned lport, rport, st;
        if (sscanf(line, " %*d: %*8x:%x %*8x:%x %x", &lport, &rport, &st) == 3 &&
            (int)rport == server_port && st == 1)
            out[n++] = (int)lport;
    }
    fclose(f);
    return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_get_json(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *out = NULL;
    char u[128], err[256];
    assert_int_equal(httpc_json(c, "GET", url(fx, "/json", u, sizeof u), NULL, NULL, &resp, &out,
                                err, sizeof err),
                     0);
    assert_int_equal(resp.status, 200);
    assert_non_null(out);
    assert_true(json_is_true(json_object_get(out, "ok")));
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 42);
    assert_true(resp.elapsed_ms >= 0.0);
    json_decref(out);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_post_json_round_trip(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *in = json_pack("{s:i,s:s,s:[i,i]}", "a", 1, "name", "M\xc3\xbcller", "list", 1, 2);
    json_t *out = NULL;
    char u[128], err[256];
    assert_int_equal(httpc_json(c, "POST", url(fx, "/echo", u, sizeof u), NULL, in, &resp, &out,
                                err, sizeof err),
                     0);
    assert_int_equal(resp.status, 200);
    assert_non_null(out);
    assert_string_equal(jstr(out, "method"), "POST");
    assert_string_equal(jstr(out, "content_type"), "application/json");
    assert_string_equal(jstr(out, "accept"), "application/json");
    json_t *back = json_loads(jstr(out, "body"), 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(back, in));
    assert_null(strchr(jstr(out, "body"), ' ')); /* compact */
    json_decref(back);
    json_decref(out);
    json_decref(in);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_put_then_get_reuses_connection_without_body(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *out = NULL;
    char u[128], err[256];
    static const char body[] = "{\"x\":1}";
    const char *const hdrs[] = {"Content-Type: application/json", NULL};
    assert_int_equal(httpc_request(c, "PUT", url(fx, "/echo", u, sizeof u), hdrs, body,
                                   sizeof body - 1, &resp, err, sizeof err),
                     0);
    assert_int_equal(resp.status, 200);
    httpc_resp_clear(&resp);
    int before[4], after[4];
    assert_int_equal(client_ports(fx->port, before, 4), 1);

    assert_int_equal(httpc_json(c, "GET", url(fx, "/echo", u, sizeof u), NULL, NULL, &resp, &out,
                                err, sizeof err),
                     0);
    assert_non_null(out);
    assert_string_equal(jstr(out, "method"), "GET");
    assert_string_equal(jstr(out, "body"), "");
    assert_true(json_is_null(json_object_get(out, "content_length")));
    assert_true(json_is_null(json_object_get(out, "content_type")));
    assert_int_equal(client_ports(fx->port, after, 4), 1);
    assert_int_equal(after[0], before[0]); /* the same connection */
    json_decref(out);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_head_and_delete(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *out = NULL;
    char u[128], err[256];
    assert_int_equal(httpc_request(c, "HEAD", url(fx, "/json", u, sizeof u), NULL, NULL, 0, &resp,
                                   err, sizeof err),
                     0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 0);
    assert_non_null(resp.body);
    httpc_resp_clear(&resp);
    assert_int_equal(httpc_json(c, "DELETE", url(fx, "/echo", u, sizeof u), NULL, NULL, &resp, &out,
                                err, sizeof err),
                     0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(jstr(out, "method"), "DELETE");
    assert_string_equal(jstr(out, "body"), "");
    json_decref(out);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_non_json_body_is_not_an_error(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *out = (json_t *)1;
    char u[128], err[256];
    assert_int_equal(httpc_json(c, "GET", url(fx, "/text", u, sizeof u), NULL, NULL, &resp, &out,
                                err, sizeof err),
                     0);
    assert_int_equal(resp.status, 200);
    assert_null(out);
    assert_string_equal(resp.body, "plain text, not JSON");
    assert_int_equal(resp.body_len, strlen("plain text, not JSON"));
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_custom_headers_delivered(void **state)
{
    struct fx *fx = *state;
    struct httpc_opts o = {.timeout_ms = 30000, .user_agent = "test-agent/1"};
    struct httpc *c = httpc_new(&o);
    assert_non_null(c);
    struct httpc_resp resp;
    json_t *out = NULL;
    char u[128], err[256];
    const char *const hdrs[] = {"X-Custom: abc 123", "Accept: application/vnd.test+json", NULL};
    assert_int_equal(httpc_json(c, "GET", url(fx, "/echo", u, sizeof u), hdrs, NULL, &resp, &out,
                                err, sizeof err),
                     0);
    assert_string_equal(jstr(out, "x_custom"), "abc 123");
    assert_string_equal(jstr(out, "accept"), "application/vnd.test+json"); /* caller's wins */
    assert_string_equal(jstr(out, "user_agent"), "test-agent/1");
    json_decref(out);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_large_body_sent_without_expect(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *out = NULL;
    char u[128], err[256];
    size_t n = 1536 * 1024;
    char *body = malloc(n);
    assert_non_null(body);
    memset(body, 'z', n);
    assert_int_equal(httpc_request(c, "POST", url(fx, "/echo", u, sizeof u), NULL, body, n, &resp,
                                   err, sizeof err),
                     0);
    assert_int_equal(resp.status, 200);
    out = json_loadb(resp.body, resp.body_len, 0, NULL);
    assert_non_null(out);
    assert_true(json_is_null(json_object_get(out, "expect")));
    assert_int_equal(json_string_length(json_object_get(out, "body")), n);
    json_decref(out);
    free(body);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_status_409_passes_through(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *in = json_pack("{s:i}", "v", 1);
    json_t *out = NULL;
    char u[128], err[256];
    assert_int_equal(httpc_json(c, "POST", url(fx, "/conflict", u, sizeof u), NULL, in, &resp, &out,
                                err, sizeof err),
                     0);
    assert_int_equal(resp.status, 409);
    assert_string_equal(jstr(out, "error"), "conflict");
    json_decref(out);
    json_decref(in);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_connection_refused(void **state)
{
    (void)state;
    int port = th_free_port();
    assert_true(port > 0);
    struct httpc *c = client(30000);
    struct httpc_resp resp;
    json_t *out = (json_t *)1;
    char u[128], err[256] = "";
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x?secret=1", port);
    assert_int_equal(httpc_json(c, "GET", u, NULL, NULL, &resp, &out, err, sizeof err), -1);
    assert_int_equal(resp.status, 0);
    assert_null(out);
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "secret")); /* the query stays out of messages */
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_total_timeout(void **state)
{
    struct fx *fx = *state;
    struct httpc *c = client(300);
    struct httpc_resp resp;
    char u[128], err[256] = "";
    long long t0 = th_now_ms();
    assert_int_equal(httpc_request(c, "GET", url(fx, "/hang", u, sizeof u), NULL, NULL, 0, &resp,
                                   err, sizeof err),
                     -1);
    long long took = th_now_ms() - t0;
    assert_int_equal(resp.status, 0);
    assert_true(took >= 250);
    assert_true(resp.elapsed_ms >= 250.0);
    assert_true(strlen(err) > 0);
    httpc_resp_clear(&resp);
    httpc_free(c);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    struct httpc *c = client(1000);
    struct httpc_resp resp;
    char err[128] = "";
    assert_int_equal(
        httpc_request(c, "GE T", "http://127.0.0.1:1/", NULL, NULL, 0, &resp, err, sizeof err), -1);
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    assert_true(strlen(err) > 0);
    httpc_resp_clear(&resp);
    httpc_resp_clear(NULL);
    httpc_free(c);
    httpc_free(NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(httpc_global_init(), 0);
    const struct CMUnitTest tests[] = {
        T(test_get_json),
        T(test_post_json_round_trip),
        T(test_put_then_get_reuses_connection_without_body),
        T(test_head_and_delete),
        T(test_non_json_body_is_not_an_error),
        T(test_custom_headers_delivered),
        T(test_large_body_sent_without_expect),
        T(test_status_409_passes_through),
        T(test_connection_refused),
        T(test_total_timeout),
        T(test_invalid_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
