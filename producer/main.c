/* main.c: vmh-producer — EspoCRM webhooks and cron ticks into Kafka (SPEC §3). One libuv loop
 * serves the webhook listener, the ops endpoint, the cron timers and Kafka's delivery reports;
 * blocking work (cron scans, readiness probes, the sync user lookup) runs on the thread pool. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cron.h"
#include "espo.h"
#include "kprod.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "redis.h"
#include "syncuser.h"
#include "util.h"
#include "wauth.h"
#include "webhook.h"

#define TOPIC_CHECK_MS 2000 /* the start-up check of the five topics (SPEC §1.1) */

static const char SUMMARY[] =
    "vmh-producer: receives EspoCRM webhooks and runs the cron scans, producing Kafka messages\n"
    "on <KAFKA_TOPIC_PREFIX>.create|update|delete|sync_check keyed by entity id.\n"
    "Webhook URLs: POST http://<WEBHOOK_LISTEN>/webhook/beteiligte/create|update|delete";

#define PROBE_INTERVAL_MS    5000
#define SYNC_USER_TIMEOUT_MS 5000 /* per App/user lookup: shutdown may wait for one */

struct producer {
    struct cfg *cfg;
    uv_loop_t *loop;
    struct metrics *reg;
    struct wauth *auth;
    struct kprod *kafka;
    struct webhook *webhook;
    struct httpd *web, *ops;
    struct cron *cron;
    struct syncuser *syncuser;
    struct redis_client *cron_redis, *probe_redis;
    struct metric *redis_up;
    struct espo *espo;
    struct apistat st;
    char instance[128];
    uv_signal_t sigterm, sigint;
    uv_timer_t probe_timer, drain_timer;
    uv_work_t probe_work;
    bool probing, ready, stopping;
    bool topics_checked; /* the five topics were found with one partition count */
    char not_ready[160];
    long long drain_deadline;
};

/* Exits 2 naming the variable for what the table cannot check. */
static void load_auth(struct producer *p)
{
    const char *secrets = cfg_str(p->cfg, "WEBHOOK_SECRETS");
    char err[256];
    if (cfg_bool(p->cfg, "WEBHOOK_ALLOW_UNSIGNED")) {
        log_warn("WEBHOOK_ALLOW_UNSIGNED=1: webhook signatures are NOT checked (development only)");
        return;
    }
    if (!secrets) {
        fprintf(stderr,
                "vmh-producer: WEBHOOK_SECRETS: required unless WEBHOOK_ALLOW_UNSIGNED=1\n");
        exit(2);
    }
    if (!(p->auth = wauth_parse(secrets, err, sizeof err))) {
        fprintf(stderr, "vmh-producer: WEBHOOK_SECRETS: %s\n", err);
        exit(2);
    }
}

static struct redis_client *redis_from_cfg(const struct cfg *cfg)
{
    struct redis_url url;
    char err[256];
    if (redis_url_parse(cfg_str(cfg, "REDIS_URL"), &url, err, sizeof err) != 0) {
        fprintf(stderr, "vmh-producer: REDIS_URL: %s\n", err);
        exit(2);
    }
    return redis_client_new(&url, 2000, 5000);
}

/* ---- readiness: what the webhooks need (Kafka), probed off the loop ----------------------
 *
 * Redis is not part of it (issue 14): a webhook never touches Redis, so a Redis outage must not
 * take the producer out of the Service. Only the cron needs Redis (its leader key); its ticks
 * are skipped meanwhile, which vmh_redis_up and vmh_cron_ticks_total{result="redis_down"} show. */

static void on_probe(uv_work_t *w)
{
    struct producer *p = w->data;
    char err[128] = "";
    bool kafka = kprod_probe(p->kafka, 2000);
    if (kafka && !p->topics_checked) /* exits 2 when they are missing or unequal */
        p->topics_checked = kprod_check_topics(p->kafka, TOPIC_CHECK_MS) == 1;
    bool redis = redis_ping(p->probe_redis, err, sizeof err) == 0;
    metric_set(p->redis_up, redis ? 1 : 0);
    p->ready = kafka;
    snprintf(p->not_ready, sizeof p->not_ready, "%s", !kafka ? "Kafka unreachable" : "");
}

static void after_probe(uv_work_t *w, int status)
{
    (void)status;
    ((struct producer *)w->data)->probing = false;
}

static void on_probe_timer(uv_timer_t *t)
{
    struct producer *p = t->data;
    if (p->probing || p->stopping)
        return;
    p->probing = true;
    p->probe_work.data = p;
    if (uv_queue_work(p->loop, &p->probe_work, on_probe, after_probe) != 0)
        p->probing = false;
}

static bool is_ready(void *ud, char *why, size_t whylen)
{
    struct producer *p = ud;
    if (!p->ready)
        snprintf(why, whylen, "%s", p->not_ready[0] ? p->not_ready : "starting");
    return p->ready && !p->stopping;
}

/* ---- start ------------------------------------------------------------------------------- */

static int listen_on(struct httpd *srv, const struct cfg *cfg, const char *var)
{
    char err[256];
    if (httpd_listen(srv, cfg_str(cfg, var), NULL, err, sizeof err) != 0) {
        log_error("cannot listen", LOG_STR("variable", var), LOG_STR("address", cfg_str(cfg, var)),
                  LOG_STR("error", err));
        return -1;
    }
    return 0;
}

static int start_http(struct producer *p)
{
    const struct cfg *cfg = p->cfg;
    struct httpd_opts web = {
        .default_max_body = (size_t)cfg_int(cfg, "WEBHOOK_MAX_BODY"),
        .max_connections = (unsigned)cfg_int(cfg, "WEBHOOK_MAX_CONNECTIONS"),
        .max_connections_per_client = (unsigned)cfg_int(cfg, "WEBHOOK_MAX_CONNECTIONS_PER_CLIENT"),
        .max_body_held = (size_t)cfg_int(cfg, "WEBHOOK_MAX_BODY_HELD"),
        .max_body_held_per_client = (size_t)cfg_int(cfg, "WEBHOOK_MAX_BODY_HELD_PER_CLIENT")};
    struct webhook_opts wo = {.loop = p->loop,
                              .kafka = p->kafka,
                              .auth = p->auth,
                              .ack_timeout_ms =
                                  (unsigned)cfg_duration_ms(cfg, "WEBHOOK_ACK_TIMEOUT_MS"),
                              .max_body = (size_t)cfg_int(cfg, "WEBHOOK_MAX_BODY"),
                              .reg = p->reg};
    if (!(p->web = httpd_new(p->loop, &web)) || !(p->webhook = webhook_new(&wo)) ||
        webhook_routes(p->webhook, p->web) != 0)
        return -1;
    /* One listener when both variables name the same address. */
    bool shared = strcmp(cfg_str(cfg, "WEBHOOK_LISTEN"), cfg_str(cfg, "METRICS_LISTEN")) == 0;
    if (shared)
        return ops_routes(p->web, p->reg, is_ready, p) != 0
                   ? -1
                   : listen_on(p->web, cfg, "WEBHOOK_LISTEN");
    if (!(p->ops = httpd_new(p->loop, NULL)) || ops_routes(p->ops, p->reg, is_ready, p) != 0)
        return -1;
    return listen_on(p->web, cfg, "WEBHOOK_LISTEN") != 0 ? -1
                                                         : listen_on(p->ops, cfg, "METRICS_LISTEN");
}

/* ---- the sync user, for dropping its own-write echoes (SPEC §3.1) ------------------------ */

static void on_sync_user(const char *user_id, void *ud)
{
    struct producer *p = ud;
    if (webhook_set_sync_user(p->webhook, user_id) != 0)
        log_warn("EspoCRM named a sync user id that cannot be used; echoes are recognised by "
                 "their attributes only");
}

static int start_sync_user(struct producer *p)
{
    long timeout = (long)cfg_duration_ms(p->cfg, "HTTP_TIMEOUT_MS");
    p->syncuser = syncuser_start(
        p->loop, cfg_str(p->cfg, "ESPOCRM_URL"), cfg_str(p->cfg, "ESPOCRM_API_KEY"),
        timeout < SYNC_USER_TIMEOUT_MS ? timeout : SYNC_USER_TIMEOUT_MS, &p->st, on_sync_user, p);
    return p->syncuser ? 0 : -1;
}

static int start(struct producer *p)
{
    char err[256];
    const struct cfg *cfg = p->cfg;
    char host[64] = "producer";
    gethostname(host, sizeof host - 1);
    snprintf(p->instance, sizeof p->instance, "%s:%d", host, (int)getpid());
    p->reg = metrics_new();
    metrics_build_info(p->reg);
    p->redis_up =
        metrics_gauge(p->reg, "vmh_redis_up", "1 while Redis answers (the cron needs it)", NULL);
    apistat_init(&p->st, p->reg);
    if (!(p->kafka = kprod_new(p->loop, cfg_str(cfg, "KAFKA_BROKERS"),
                               cfg_str(cfg, "KAFKA_TOPIC_PREFIX"), p->reg, err, sizeof err))) {
        log_error("cannot create the Kafka producer", LOG_STR("error", err));
        return -1;
    }
    p->cron_redis = redis_from_cfg(cfg);
    p->probe_redis = redis_from_cfg(cfg);
    p->espo = espo_new(cfg_str(cfg, "ESPOCRM_URL"), cfg_str(cfg, "ESPOCRM_API_KEY"),
                       (long)cfg_duration_ms(cfg, "HTTP_TIMEOUT_MS"), &p->st);
    if (!p->reg || !p->cron_redis || !p->probe_redis || !p->espo || start_http(p) != 0 ||
        start_sync_user(p) != 0)
        return -1;
    struct cron_deps deps = {.espo = p->espo,
                             .redis = p->cron_redis,
                             .kafka = p->kafka,
                             .reg = p->reg,
                             .instance = p->instance,
                             /* SPEC §3.2 says one fallback interval; two, so the next tick never
                              * races a mark's expiry (the worker's run clears it anyway; only a
                              * lost message waits the longer) */
                             .queued_ttl_ms = 2 * cfg_duration_ms(cfg, "CRON_INTERVAL_S")};
    p->cron = cron_start(p->loop, &deps, cfg_duration_ms(cfg, "CRON_RETRY_INTERVAL_S"),
                         cfg_duration_ms(cfg, "CRON_INTERVAL_S"), (int)cfg_int(cfg, "CRON_BATCH"));
    uv_timer_init(p->loop, &p->probe_timer);
    p->probe_timer.data = p;
    uv_timer_start(&p->probe_timer, on_probe_timer, 0, PROBE_INTERVAL_MS);
    return p->cron ? 0 : -1;
}

/* ---- shutdown: stop accepting, answer what is in flight, flush Kafka ---------------------- */

static void finish_shutdown(struct producer *p)
{
    uv_close((uv_handle_t *)&p->drain_timer, NULL);
    cron_stop(p->cron);
    httpd_close(p->web);
    httpd_close(p->ops);
    kprod_close(p->kafka, 5000);
    p->kafka = NULL;
    log_info("vmh-producer stopped");
}

static void on_drain_timer(uv_timer_t *t)
{
    struct producer *p = t->data;
    bool background_done = !p->probing && cron_idle(p->cron); /* they use Kafka and Redis */
    if (background_done &&
        (webhook_pending(p->webhook) == 0 || util_monotonic_ms() >= p->drain_deadline))
        finish_shutdown(p);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct producer *p = s->data;
    if (p->stopping)
        return;
    p->stopping = true;
    log_info("vmh-producer stopping", LOG_INT("signal", signum),
             LOG_INT("pending_webhooks", webhook_pending(p->webhook)));
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->sigint, NULL);
    uv_close((uv_handle_t *)&p->probe_timer, NULL);
    syncuser_stop(p->syncuser); /* freed once a lookup in flight has returned */
    p->syncuser = NULL;
    cron_pause(p->cron);
    httpd_stop_listening(p->web);
    p->drain_deadline =
        util_monotonic_ms() + cfg_duration_ms(p->cfg, "WEBHOOK_ACK_TIMEOUT_MS") + 1000;
    uv_timer_init(p->loop, &p->drain_timer);
    p->drain_timer.data = p;
    uv_timer_start(&p->drain_timer, on_drain_timer, 0, 20);
}

static void watch_signals(struct producer *p)
{
    uv_signal_init(p->loop, &p->sigterm);
    uv_signal_init(p->loop, &p->sigint);
    p->sigterm.data = p->sigint.data = p;
    uv_signal_start(&p->sigterm, on_signal, SIGTERM);
    uv_signal_start(&p->sigint, on_signal, SIGINT);
}

static void cleanup(struct producer *p)
{
    webhook_free(p->webhook);
    espo_free(p->espo);
    redis_client_free(p->cron_redis);
    redis_client_free(p->probe_redis);
    wauth_free(p->auth);
    metrics_free(p->reg);
    cfg_free(p->cfg);
}

int main(int argc, char **argv)
{
    struct producer p = {0};
    signal(SIGPIPE, SIG_IGN);
    p.cfg = cfg_load_or_exit(argc, argv, SUMMARY, CFG_PRODUCER);
    ops_log_setup(p.cfg);
    load_auth(&p);
    p.loop = uv_default_loop();
    if (start(&p) != 0) {
        log_error("vmh-producer could not start");
        return 1; /* the OS reclaims what start() had set up */
    }
    watch_signals(&p);
    log_info("vmh-producer started", LOG_STR("webhook_listen", cfg_str(p.cfg, "WEBHOOK_LISTEN")),
             LOG_STR("metrics_listen", cfg_str(p.cfg, "METRICS_LISTEN")),
             LOG_BOOL("signed", p.auth != NULL), LOG_STR("instance", p.instance));
    uv_run(p.loop, UV_RUN_DEFAULT);
    uv_loop_close(p.loop);
    cleanup(&p);
    return 0;
}
