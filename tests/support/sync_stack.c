/* sync_stack.c: the full stack of the end-to-end sync tests (see sync_stack.h). */
#include "sync_stack.h"

#include "msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ESPO_KEY "X-Api-Key: dev-espocrm-key"

struct sync_stack ss;

/* ---- the stack ---------------------------------------------------------------------------- */

static int register_webhooks(int port, char *secrets, size_t len)
{
    static const char *const events[] = {"create", "update", "delete"};
    char url[128], body[256];
    const char *headers[] = {ESPO_KEY, NULL};
    snprintf(url, sizeof url, "%s/api/v1/Webhook", ss.espo.url);
    secrets[0] = '\0';
    for (int i = 0; i < 3; i++) {
        json_t *out = NULL;
        snprintf(body, sizeof body,
                 "{\"event\":\"CBeteiligte.%s\",\"url\":\"http://127.0.0.1:%d/webhook/"
                 "beteiligte/%s\",\"skipOwn\":true}",
                 events[i], port, events[i]);
        long st = th_http("POST", url, headers, body, &out);
        if (st != 200 && st != 201)
            return -1;
        size_t n = strlen(secrets);
        snprintf(secrets + n, len - n, "%s%s:%s", n ? "," : "",
                 json_string_value(json_object_get(out, "id")),
                 json_string_value(json_object_get(out, "secretKey")));
        json_decref(out);
    }
    return 0;
}

int ss_start_worker(int i)
{
    char espo[96], advo[96];
    snprintf(espo, sizeof espo, "ESPOCRM_URL=%s", ss.espo.url);
    snprintf(advo, sizeof advo, "ADVOWARE_URL=%s", ss.advo.url);
    const char *env[] = {espo,
                         advo,
                         "ESPOCRM_API_KEY=dev-espocrm-key",
                         "ESPOCRM_NOTIFY_USER_ID=admin",
                         "ADVOWARE_APP_ID=vmh-dev",
                         "ADVOWARE_API_KEY=ZGV2LWFkdm93YXJlLWtleQ==",
                         "ADVOWARE_KANZLEI=dev",
                         "ADVOWARE_DATABASE=dev",
                         "ADVOWARE_USER=dev",
                         "ADVOWARE_PASSWORD=dev",
                         "WORKER_CONCURRENCY=4",
                         "LOG_LEVEL=warn",
                         NULL};
    return th_worker_start_bin(&ss.w[i], "vmh-worker", ss.kafka.bootstrap, ss.redis.url, env);
}

int ss_setup(void **state)
{
    (void)state;
    static const char *const espo_args[] = {"--webhook-retry-ms", "1000", NULL};
    /* Tokens live 2 s (cached 1 s): every test also runs through token refreshes. */
    static const char *const advo_args[] = {"--token-ttl-s", "2", NULL};
    if (th_kafka_start(&ss.kafka, SS_PARTITIONS) != 0 || th_redis_start(&ss.redis, NULL) != 0 ||
        th_sim_start(&ss.espo, "espocrm-sim", espo_args) != 0 ||
        th_sim_start(&ss.advo, "advoware-sim", advo_args) != 0)
        return -1;
    int web = th_free_port(), ops = th_free_port();
    ss.producer_metrics_port = ops;
    char secrets[512];
    if (register_webhooks(web, secrets, sizeof secrets) != 0)
        return -1;
    char bin[512], brokers[600], redis[320], weblisten[64], opslisten[64], espo[96], sec[600];
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", ss.kafka.bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", ss.redis.url);
    snprintf(weblisten, sizeof weblisten, "WEBHOOK_LISTEN=127.0.0.1:%d", web);
    snprintf(opslisten, sizeof opslisten, "METRICS_LISTEN=127.0.0.1:%d", ops);
    snprintf(espo, sizeof espo, "ESPOCRM_URL=%s", ss.espo.url);
    snprintf(sec, sizeof sec, "WEBHOOK_SECRETS=%s", secrets);
    const char *env[] = {brokers,
                         redis,
                         weblisten,
                         opslisten,
                         espo,
                         sec,
                         "ESPOCRM_API_KEY=dev-espocrm-key",
                         "CRON_INTERVAL_S=3600",
                         "CRON_RETRY_INTERVAL_S=3600",
                         "LOG_FORMAT=text",
                         "LOG_LEVEL=warn",
                         NULL};
    const char *argv[] = {th_bin("vmh-producer", bin, sizeof bin), NULL};
    if (th_proc_start(&ss.producer, argv, env, false) != 0 || ss_start_worker(0) != 0 ||
        ss_start_worker(1) != 0)
        return -1;
    bool ok;
    TH_WAIT(ok, th_worker_ready(&ss.w[0]) && th_worker_ready(&ss.w[1]), 60000);
    ss.kp = th_kprod_new(ss.kafka.bootstrap);
    return ok && ss.kp ? 0 : -1;
}

int ss_teardown(void **state)
{
    (void)state;
    int rc = 0;
    th_kprod_free(ss.kp);
    for (int i = 0; i < 2; i++)
        rc |= th_proc_stop(&ss.w[i].proc, SIGTERM, 30000);
    rc |= th_proc_stop(&ss.producer, SIGTERM, 30000);
    rc |= th_sim_stop(&ss.espo);
    rc |= th_sim_stop(&ss.advo);
    th_redis_stop(&ss.redis);
    th_kafka_stop(&ss.kafka);
    return rc == 0 ? 0 : -1;
}

/* ---- the outside world --------------------------------------------------------------------- */

json_t *ss_call(const struct th_sim *s, const char *method, const char *path, const char *body)
{
    char url[256];
    json_t *out = NULL;
    snprintf(url, sizeof url, "%s%s", s->url, path);
    long st = th_http(method, url, NULL, body, &out);
    if (st < 200 || st >= 300)
        fail_msg("%s %s: %ld", method, path, st);
    return out;
}

/* A UI user creates an entity; returns its id (static buffer per call site is the caller's). */
void ss_ui_create(const char *attrs, char *id, size_t idlen)
{
    json_t *e = ss_call(&ss.espo, "POST", "/_sim/ui/CBeteiligte", attrs);
    snprintf(id, idlen, "%s", json_string_value(json_object_get(e, "id")));
    json_decref(e);
}

void ss_ui_update(const char *id, const char *attrs)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", id);
    json_decref(ss_call(&ss.espo, "PUT", path, attrs));
}

json_t *ss_espo_state(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/state/CBeteiligte/%s", id);
    return ss_call(&ss.espo, "GET", path, NULL);
}

json_t *ss_advo_state(long long betnr)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/state/Beteiligte/%lld", betnr);
    return ss_call(&ss.advo, "GET", path, NULL);
}

const char *ss_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Polls until the entity's syncStatus is `status` and its versionNumber moved past `after`
 * (a write of the sync happened); returns the entity. */
json_t *ss_wait_status(const char *id, const char *status, long long after)
{
    json_t *e = NULL;
    long long end = th_now_ms() + 30000;
    while (th_now_ms() < end) {
        json_decref(e);
        e = ss_espo_state(id);
        if (strcmp(ss_str(e, "syncStatus"), status) == 0 &&
            json_integer_value(json_object_get(e, "versionNumber")) > after)
            return e;
        th_sleep_ms(20);
    }
    fail_msg("entity %s: syncStatus %s, want %s", id, ss_str(e, "syncStatus"), status);
    return NULL;
}

/* What a cron tick sends: sync_check for id. */
void ss_sync_check(const char *id, const char *reason)
{
    char *v = msg_encode(id, MSG_EVENT_SYNC_CHECK, MSG_SOURCE_CRON, reason, 1767225600000LL);
    assert_int_equal(th_kprod_send(ss.kp, "vmh.beteiligte.sync_check", -1, id, v, strlen(v)), 0);
    assert_int_equal(th_kprod_flush(ss.kp, 10000), 0);
    ss.sent++;
    free(v);
}

void ss_quiesce(void)
{
    long long end = th_now_ms() + 30000;
    double produced = 0, done = 0;
    json_int_t queued = 0;
    while (th_now_ms() < end) {
        /* In this order. A job run requested now starts after the one in flight (one delivery
         * thread) and answers once its POSTs were answered: the queue counters alone miss a
         * POST in flight. A webhook is answered (and counted as produced) only once Kafka holds
         * it, and a message is produced before a worker can complete it. */
        json_decref(ss_call(&ss.espo, "POST", "/_sim/webhooks/run", NULL));
        json_t *w = ss_call(&ss.espo, "GET", "/_sim/webhooks", NULL);
        queued = json_integer_value(json_object_get(w, "pendingEvents")) +
                 json_integer_value(json_object_get(w, "queueItems"));
        json_decref(w);
        produced = th_metric(ss.producer_metrics_port, "vmh_messages_produced_total", NULL);
        done = th_metric(ss.w[0].metrics_port, "vmh_messages_done_total", NULL) +
               th_metric(ss.w[1].metrics_port, "vmh_messages_done_total", NULL);
        if (queued == 0 && done >= produced + (double)ss.sent) {
            ss_settle();
            return;
        }
        th_sleep_ms(20);
    }
    fail_msg("not quiet: %lld webhooks queued, %.0f of %.0f messages done", (long long)queued, done,
             produced + (double)ss.sent);
}

/* Calls of a route without those answered 401: an expired token's call and its repeat are one
 * call of the budget (token calls are excluded, SPEC §5.3). */
long ss_calls_of(const struct th_sim *s, const char *method, const char *route)
{
    return th_sim_calls(s, method, route, 0) - th_sim_calls(s, method, route, 401);
}

void ss_snapshot(struct ss_calls *c)
{
    c->e_get = ss_calls_of(&ss.espo, "GET", E_ONE);
    c->e_put = ss_calls_of(&ss.espo, "PUT", E_ONE);
    c->notif = ss_calls_of(&ss.espo, "POST", "/api/v1/Note");
    c->a_get = ss_calls_of(&ss.advo, "GET", A_ONE);
    c->a_put = ss_calls_of(&ss.advo, "PUT", A_ONE);
    c->a_post = ss_calls_of(&ss.advo, "POST", A_ALL);
    c->k_post = ss_calls_of(&ss.advo, "POST", A_KOMMS);
    c->k_put = ss_calls_of(&ss.advo, "PUT", A_KOMM);
}

void ss_expect_calls(const struct ss_calls *before, struct ss_calls want)
{
    ss_settle(); /* a late duplicate run would still be counted */
    struct ss_calls now;
    ss_snapshot(&now);
    struct ss_calls got = {now.e_get - before->e_get,   now.e_put - before->e_put,
                           now.notif - before->notif,   now.a_get - before->a_get,
                           now.a_put - before->a_put,   now.a_post - before->a_post,
                           now.k_post - before->k_post, now.k_put - before->k_put};
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("calls (espo GET PUT notifications, advo GET PUT POST, komm POST PUT): got %ld "
                 "%ld %ld, %ld %ld %ld, %ld %ld; want %ld %ld %ld, %ld %ld %ld, %ld %ld",
                 got.e_get, got.e_put, got.notif, got.a_get, got.a_put, got.a_post, got.k_post,
                 got.k_put, want.e_get, want.e_put, want.notif, want.a_get, want.a_put, want.a_post,
                 want.k_post, want.k_put);
}

/* Waits until the simulators' counters stop moving for a moment after a condition held (a late
 * duplicate run would show): five reads 50 ms apart with the same totals. */
void ss_settle(void)
{
    long last = -1;
    int same = 0;
    for (int i = 0; i < 40 && same < 5; i++) {
        th_sleep_ms(50); /* polling: the counters must stay put over consecutive reads */
        long now = ss_total_calls(&ss.espo) + ss_total_calls(&ss.advo);
        same = now == last ? same + 1 : 0;
        last = now;
    }
}

long ss_total_calls(const struct th_sim *s)
{
    char url[128];
    json_t *out = NULL, *c;
    size_t i;
    long n = 0;
    snprintf(url, sizeof url, "%s/_sim/stats", s->url);
    if (th_http("GET", url, NULL, NULL, &out) == 200) {
        json_array_foreach(json_object_get(out, "calls"), i, c)
        {
            n += (long)json_integer_value(json_object_get(c, "count"));
        }
    }
    json_decref(out);
    return n;
}

long ss_notifications_with(const char *text)
{
    json_t *list = ss_call(&ss.espo, "GET", "/_sim/notifications", NULL), *n;
    size_t i;
    long count = 0;
    json_array_foreach(list, i, n)
    {
        count += strstr(ss_str(n, "message"), text) != NULL;
    }
    json_decref(list);
    return count;
}

/* A synced entity: created by a UI user, synced to clean. betnr and version out. */
void ss_synced_entity(const char *attrs, char *id, size_t idlen, long long *betnr,
                      long long *version)
{
    ss_ui_create(attrs, id, idlen);
    json_t *e = ss_wait_status(id, "clean", 0);
    *betnr = json_integer_value(json_object_get(e, "betnr"));
    *version = json_integer_value(json_object_get(e, "versionNumber"));
    json_decref(e);
    ss_settle();
}

void ss_fault(const struct th_sim *s, const char *method, const char *route, int status, int count)
{
    char body[256];
    snprintf(body, sizeof body, "{\"method\":\"%s\",\"route\":\"%s\",\"status\":%d,\"count\":%d}",
             method, route, status, count);
    json_decref(ss_call(s, "POST", "/_sim/faults", body));
}
