/* ops.c: logging setup and the health/readiness/metrics routes (see ops.h). */
#include "ops.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "log.h"

struct ops_ctx {
    struct metrics *reg;
    ops_ready_fn ready;
    void *ud;
};

/* One context per process is enough: every binary serves one ops endpoint. */
static struct ops_ctx g_ops;

void ops_log_setup(const struct cfg *cfg)
{
    enum log_level level = LOG_INFO;
    enum log_format format = LOG_JSON;
    log_level_parse(cfg_str(cfg, "LOG_LEVEL"), &level);
    log_format_parse(cfg_str(cfg, "LOG_FORMAT"), &format);
    log_setup(level, format, 2);
}

static void on_healthz(struct httpd_req *req, void *ud)
{
    (void)ud;
    httpd_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void on_readyz(struct httpd_req *req, void *ud)
{
    struct ops_ctx *ctx = ud;
    char why[256] = "";
    if (ctx->ready && !ctx->ready(ctx->ud, why, sizeof why)) {
        httpd_respond_json(req, 503, json_pack("{s:s,s:s}", "status", "not ready", "reason", why));
        return;
    }
    httpd_respond_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

static void on_metrics(struct httpd_req *req, void *ud)
{
    struct ops_ctx *ctx = ud;
    size_t len = 0;
    char *text = metrics_render(ctx->reg, &len);
    if (!text) {
        httpd_respond_error(req, 500, "out of memory");
        return;
    }
    httpd_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
    free(text);
}

int ops_routes(struct httpd *srv, struct metrics *reg, ops_ready_fn ready, void *ud)
{
    g_ops = (struct ops_ctx){.reg = reg, .ready = ready, .ud = ud};
    if (httpd_route(srv, "GET", "/healthz", on_healthz, &g_ops, 0) != 0 ||
        httpd_route(srv, "GET", "/readyz", on_readyz, &g_ops, 0) != 0 ||
        httpd_route(srv, "GET", "/metrics", on_metrics, &g_ops, 0) != 0)
        return -1;
    return 0;
}

struct ops_server {
    uv_loop_t loop;
    uv_async_t stop;
    struct httpd *srv;
    pthread_t thread;
};

static void on_stop(uv_async_t *a)
{
    struct ops_server *s = a->data;
    httpd_close(s->srv);
    uv_close((uv_handle_t *)&s->stop, NULL);
}

static void *ops_thread(void *arg)
{
    struct ops_server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct ops_server *ops_server_start(const char *hostport, struct metrics *reg, ops_ready_fn ready,
                                    void *ud, int *bound_port, char *err, size_t errlen)
{
    struct ops_server *s = reg ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (uv_loop_init(&s->loop) != 0) {
        snprintf(err, errlen, "uv_loop_init failed");
        goto err_free;
    }
    s->srv = httpd_new(&s->loop, NULL);
    if (!s->srv || ops_routes(s->srv, reg, ready, ud) != 0) {
        snprintf(err, errlen, "out of memory");
        goto err_loop;
    }
    if (httpd_listen(s->srv, hostport, bound_port, err, errlen) != 0)
        goto err_loop;
    s->stop.data = s;
    uv_async_init(&s->loop, &s->stop, on_stop);
    if (pthread_create(&s->thread, NULL, ops_thread, s) != 0) {
        snprintf(err, errlen, "cannot start the ops thread");
        uv_close((uv_handle_t *)&s->stop, NULL);
        goto err_loop;
    }
    return s;
err_loop:
    if (s->srv)
        httpd_close(s->srv);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
err_free:
    free(s);
    return NULL;
}

struct ops_server *ops_server_start_cfg(const struct cfg *cfg, struct metrics *reg,
                                        ops_ready_fn ready, void *ud)
{
    char err[256] = "";
    const char *listen = cfg_str(cfg, "METRICS_LISTEN");
    struct ops_server *s = ops_server_start(listen, reg, ready, ud, NULL, err, sizeof err);
    if (!s)
        log_error("cannot start the ops endpoint", LOG_STR("listen", listen),
                  LOG_STR("error", err));
    return s;
}

void ops_server_stop(struct ops_server *s)
{
    if (!s)
        return;
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    uv_loop_close(&s->loop);
    free(s);
}

void ops_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int ops_wait_for_signal(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}
