/* ops.c: logging setup and the health/readiness/metrics routes (see ops.h). */
#include "ops.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "httpd_thread.h"
#include "log.h"

struct ops_ctx {
    struct metrics *reg;
    ops_ready_fn ready;
    void *ud;
};

/* One context per process is enough: every binary serves one ops endpoint. */
static struct ops_ctx g_ops;
static ops_ready_fn g_live;
static void *g_live_ud;

void ops_set_liveness(ops_ready_fn live, void *ud)
{
    g_live = live;
    g_live_ud = ud;
}

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
    char why[256] = "";
    (void)ud;
    if (g_live && !g_live(g_live_ud, why, sizeof why)) {
        httpd_respond_json(req, 503, json_pack("{s:s,s:s}", "status", "stuck", "reason", why));
        return;
    }
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
    struct httpd_thread *thread;
    struct ops_ctx ctx;
};

static int ops_setup(struct httpd *srv, void *ud)
{
    struct ops_server *s = ud;
    return ops_routes(srv, s->ctx.reg, s->ctx.ready, s->ctx.ud);
}

struct ops_server *ops_server_start(const char *hostport, struct metrics *reg, ops_ready_fn ready,
                                    void *ud, int *bound_port, char *err, size_t errlen)
{
    struct ops_server *s = reg ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ctx = (struct ops_ctx){.reg = reg, .ready = ready, .ud = ud};
    if (!(s->thread = httpd_thread_start(hostport, NULL, ops_setup, s, bound_port, err, errlen))) {
        free(s);
        return NULL;
    }
    return s;
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
    httpd_thread_stop(s->thread);
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
