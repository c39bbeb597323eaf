/* fault_matrix.c: the fault-point matrix (see fault_matrix.h): the stack, one cell (reset, the
 * starting state, the fault, the person's edits, the run, recovery as in production, the
 * checks), the reference run that yields the calls, and the report. */
#include "fault_matrix.h"

#include "harness.h"
#include "store.h"
#include "marker.h"
#include "msg.h"
#include "phone.h"
#include "redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FM_PARTITIONS 2
#define FM_GROUP      "vmh-worker"
#define E_ONE         "/api/v1/CBeteiligte/{id}"
#define TOKEN_ROUTE   "/api/v1/Token"
#define UI_EDIT_ATTRS "{\"zusatz\":\"Nachtrag von Hand\"}"
#define UI_EDIT_FIELD "zusatz"
#define UI_EDIT_VALUE "Nachtrag von Hand"
#define WAIT_MS       30000
#define MAX_CALLS     64

const char *fm_family = "faults";

static const char *const topics[] = {"vmh.beteiligte.create", "vmh.beteiligte.update",
                                     "vmh.beteiligte.delete", "vmh.beteiligte.sync_check"};

/* ---- the stack ---------------------------------------------------------------------------- */

static struct {
    struct th_kafka kafka;
    struct th_redis redis;
    struct th_sim espo, advo;
    struct th_proc producer;
    struct th_worker worker;
    struct th_kprod *kp;
    struct redis_client *rc;
    rd_kafka_t *reader; /* the workers' group: committed offsets and watermarks */
    int web_port;
    int session_ms; /* the group's session.timeout.ms: the last joiner's */
    int cells, failed, kills;
    long long t0;
    char failures[32768]; /* the failed cells' lines, for the summary */
} fm;

/* Starts the worker with a Kafka session of session_ms and waits up to wait_ms until it is ready
 * (joined the group, EspoCRM checked). 0, or -1 (the worker may still run: stop it). */
static int start_worker(int session_ms, long long wait_ms)
{
    char espo[96], advo[96], session[64];
    snprintf(espo, sizeof espo, "ESPOCRM_URL=%s", fm.espo.url);
    snprintf(advo, sizeof advo, "ADVOWARE_URL=%s", fm.advo.url);
    snprintf(session, sizeof session, "KAFKA_CFG_SESSION_TIMEOUT_MS=%d", session_ms);
    const char *lv = getenv("VMH_FAULTS_LOG_LEVEL"); /* e.g. info, to see every run */
    char level[48];
    snprintf(level, sizeof level, "LOG_LEVEL=%s", lv && *lv ? lv : "error");
    /* Fast as the matrix needs it: backoff of seconds (the retry scan waits for it), a dead
     * holder's lock gone after 1.5 s, consumption without fetch waits. */
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
                         "WORKER_CONCURRENCY=2",
                         "SYNC_RETRY_BACKOFF=1s,1s,1s,1s,1s",
                         "LOCK_TTL_MS=1500",
                         "LOCK_WAIT_MS=200",
                         session,
                         "KAFKA_CFG_HEARTBEAT_INTERVAL_MS=250",
                         "KAFKA_CFG_FETCH_WAIT_MAX_MS=10",
                         level,
                         NULL};
    if (th_worker_start_bin(&fm.worker, "vmh-worker", fm.kafka.bootstrap, fm.redis.url, env) != 0)
        return -1;
    bool ok;
    TH_WAIT(ok, th_worker_ready(&fm.worker) || !th_proc_alive(&fm.worker.proc), wait_ms);
    if (!ok || !th_proc_alive(&fm.worker.proc))
        return -1;
    fm.session_ms = session_ms;
    return 0;
}

/* librdkafka's mock group coordinator (2.0.2) decides how long a restart after kill -9 takes:
 * a member that joins an empty group waits 3 s; a join into a non-empty group waits the group's
 * session.timeout.ms - 1 s, the session being the last joiner's; the dead member leaves when its
 * session has passed (checked every second); and a member whose own session passes while it
 * waits is dropped, so it never joins. So the first worker needs a session above 3 s; a worker
 * started after a kill joins while the dead member is still in the group and may lower the
 * session by less than 1 s a time, down to 1.5 s: the dead member is then gone within 1.5-2.5 s
 * instead of 4-5. Should the group have become empty meanwhile (the short session cannot
 * survive the 3 s), the worker starts again with the long one. */
#define FM_SESSION_FIRST_MS 3500
#define FM_SESSION_MIN_MS   1500

static int restart_worker(void)
{
    int session = fm.session_ms - 800 > FM_SESSION_MIN_MS ? fm.session_ms - 800 : FM_SESSION_MIN_MS;
    if (start_worker(session, session + 3500) == 0)
        return 0;
    th_proc_stop(&fm.worker.proc, SIGKILL, 5000);
    return start_worker(FM_SESSION_FIRST_MS, 60000);
}

int fm_setup(void **state)
{
    (void)state;
    static const char *const espo_args[] = {"--webhook-retry-ms", "200", "--webhook-job-ms", "5",
                                            NULL};
    fm.t0 = th_now_ms();
    if (th_kafka_start(&fm.kafka, FM_PARTITIONS) != 0 || th_redis_start(&fm.redis, NULL) != 0 ||
        th_sim_start(&fm.espo, "espocrm-sim", espo_args) != 0 ||
        th_sim_start(&fm.advo, "advoware-sim", NULL) != 0)
        return -1;
    fm.web_port = th_free_port();
    char bin[512], brokers[600], redis[320], web[64], ops[64], espo[96];
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", fm.kafka.bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", fm.redis.url);
    snprintf(web, sizeof web, "WEBHOOK_LISTEN=127.0.0.1:%d", fm.web_port);
    snprintf(ops, sizeof ops, "METRICS_LISTEN=127.0.0.1:%d", th_free_port());
    snprintf(espo, sizeof espo, "ESPOCRM_URL=%s", fm.espo.url);
    /* Unsigned: espocrm-sim's reset between cells deletes the webhooks, and their new secrets
     * would need a new producer; signatures are not what the matrix is about. */
    const char *env[] = {brokers,
                         redis,
                         web,
                         ops,
                         espo,
                         "WEBHOOK_ALLOW_UNSIGNED=1",
                         "ESPOCRM_API_KEY=dev-espocrm-key",
                         "CRON_INTERVAL_S=3600",
                         "CRON_RETRY_INTERVAL_S=3600",
                         "LOG_FORMAT=text",
                         "LOG_LEVEL=error",
                         NULL};
    const char *argv[] = {th_bin("vmh-producer", bin, sizeof bin), NULL};
    if (th_proc_start(&fm.producer, argv, env, false) != 0 ||
        start_worker(FM_SESSION_FIRST_MS, 60000) != 0)
        return -1;
    fm.kp = th_kprod_new(fm.kafka.bootstrap);
    fm.rc = th_redis_client(&fm.redis);
    fm.reader = th_kafka_reader(fm.kafka.bootstrap, FM_GROUP, NULL, 0);
    return fm.kp && fm.rc && fm.reader ? 0 : -1;
}

int fm_teardown(void **state)
{
    (void)state;
    int rc = 0;
    printf("fault matrix %s: %d cells, %d failed, %d worker kills, wall time %.1f s\n", fm_family,
           fm.cells, fm.failed, fm.kills, (double)(th_now_ms() - fm.t0) / 1000.0);
    if (fm.failed)
        printf("failed cells:\n%s", fm.failures);
    fflush(stdout);
    if (fm.reader)
        rd_kafka_destroy(fm.reader);
    redis_client_free(fm.rc);
    th_kprod_free(fm.kp);
    rc |= th_proc_stop(&fm.worker.proc, SIGTERM, 30000);
    rc |= th_proc_stop(&fm.producer, SIGTERM, 30000);
    rc |= th_sim_stop(&fm.espo);
    rc |= th_sim_stop(&fm.advo);
    th_redis_stop(&fm.redis);
    th_kafka_stop(&fm.kafka);
    return rc == 0 ? 0 : -1;
}

/* ---- talking to the stack ----------------------------------------------------------------- */

static long sim_http(const struct th_sim *s, const char *method, const char *path,
                     const char *const *headers, const char *body, json_t **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    return th_http(method, url, headers, body, out);
}

/* A simulator call that must answer 2xx (else the stack is broken: the test fails). */
static json_t *must(const struct th_sim *s, const char *method, const char *path, const char *body)
{
    json_t *out = NULL;
    long st = sim_http(s, method, path, NULL, body, &out);
    if (st < 200 || st >= 300)
        fail_msg("%s %s %s: %ld", s == &fm.espo ? "espocrm-sim" : "advoware-sim", method, path, st);
    return out;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static long long jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static json_t *espo_state(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/state/CBeteiligte/%s", id);
    json_t *out = NULL;
    return sim_http(&fm.espo, "GET", path, NULL, NULL, &out) == 200 ? out
                                                                    : (json_decref(out), NULL);
}

static json_t *advo_state(long long betnr)
{
    char path[128];
    snprintf(path, sizeof path, "/_sim/state/Beteiligte/%lld", betnr);
    json_t *out = NULL;
    return sim_http(&fm.advo, "GET", path, NULL, NULL, &out) == 200 ? out
                                                                    : (json_decref(out), NULL);
}

/* Both simulators and Redis as new, the webhooks registered again. */
static void reset_all(void)
{
    json_decref(must(&fm.espo, "POST", "/_sim/reset", NULL));
    json_decref(must(&fm.advo, "POST", "/_sim/reset", NULL));
    char err[256];
    redisReply *r = redis_command(fm.rc, err, sizeof err, "FLUSHALL");
    if (!r)
        fail_msg("redis FLUSHALL: %s", err);
    freeReplyObject(r);
    static const char *const events[] = {"create", "update", "delete"};
    const char *headers[] = {"X-Api-Key: dev-espocrm-key", NULL};
    for (int i = 0; i < 3; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"event\":\"CBeteiligte.%s\",\"url\":\"http://127.0.0.1:%d/webhook/beteiligte/"
                 "%s\",\"skipOwn\":true}",
                 events[i], fm.web_port, events[i]);
        long st = sim_http(&fm.espo, "POST", "/api/v1/Webhook", headers, body, NULL);
        if (st != 200 && st != 201)
            fail_msg("webhook registration: %ld", st);
    }
}

static long log_total(const struct th_sim *s)
{
    json_t *out = must(s, "GET", "/_sim/log?since=1000000000", NULL);
    long n = (long)jint(out, "total");
    json_decref(out);
    return n;
}

/* Whether the workers' group has committed every message of every topic; *total gets the sum of
 * the high watermarks (how many messages there are). */
static bool all_committed(long long *total)
{
    size_t n = sizeof topics / sizeof topics[0];
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new((int)(n * FM_PARTITIONS));
    for (size_t t = 0; t < n; t++)
        for (int p = 0; p < FM_PARTITIONS; p++)
            rd_kafka_topic_partition_list_add(parts, topics[t], p);
    bool done = rd_kafka_committed(fm.reader, parts, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    *total = 0;
    for (int i = 0; done && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(fm.reader, tp->topic, tp->partition, &lo, &hi, 5000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            done = false;
            break;
        }
        int64_t committed = tp->err || tp->offset < 0 ? lo : tp->offset;
        done = committed >= hi;
        *total += hi;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return done;
}

/* Quiet, an explicit signal in two consecutive rounds with the same number of messages: the
 * workers' group committed every message (the committed offset never passes an unfinished one,
 * a killed worker's included, and every run comes from a message), then espocrm-sim's webhook
 * job delivered every queued event (a job run on request: a webhook is answered only once Kafka
 * holds it). A run that ended between the rounds left its echo in the queue or its message in
 * the count. 0, or -1 with why. */
static int quiesce(char *why, size_t len)
{
    long long end = th_now_ms() + WAIT_MS, last = -1, total = 0;
    long queued = -1;
    bool committed = false;
    while (th_now_ms() < end) {
        committed = all_committed(&total);
        json_decref(must(&fm.espo, "POST", "/_sim/webhooks/run", NULL));
        json_t *w = must(&fm.espo, "GET", "/_sim/webhooks", NULL);
        queued = (long)(jint(w, "pendingEvents") + jint(w, "queueItems"));
        json_decref(w);
        if (committed && queued == 0 && total == last)
            return 0;
        last = committed && queued == 0 ? total : -1;
        th_sleep_ms(5);
    }
    snprintf(why, len, "not quiet after %d s: %ld webhooks queued, messages %s", WAIT_MS / 1000,
             queued, committed ? "committed" : "not committed");
    return -1;
}

/* What a cron tick sends: sync_check for id. */
static void sync_check(const char *id, const char *reason)
{
    char *v = msg_encode(id, MSG_EVENT_SYNC_CHECK, MSG_SOURCE_CRON, reason, 1767225600000LL);
    assert_int_equal(th_kprod_send(fm.kp, "vmh.beteiligte.sync_check", -1, id, v, strlen(v)), 0);
    assert_int_equal(th_kprod_flush(fm.kp, 10000), 0);
    free(v);
}

/* Polls until the party is clean with a version past after; the entity or NULL. */
static json_t *wait_clean(const char *id, long long after)
{
    long long end = th_now_ms() + WAIT_MS;
    while (th_now_ms() < end) {
        json_t *e = espo_state(id);
        if (e && strcmp(jstr(e, "syncStatus"), "clean") == 0 && jint(e, "versionNumber") > after)
            return e;
        json_decref(e);
        th_sleep_ms(10);
    }
    return NULL;
}

/* ---- one cell ----------------------------------------------------------------------------- */

enum fault { F_NONE, F_503, F_APPLY_503, F_APPLY_DROP, F_KILL, F_UI_EDIT };
static const char *const fault_names[] = {"none",       "503",     "apply+503",
                                          "apply+drop", "kill -9", "ui edit (409)"};

/* One API call of the reference run. */
struct call {
    bool espo; /* else Advoware */
    char method[8];
    char route[96];
    int status;
    long long t_us;
    int after; /* earlier calls of the same sim, method and route since the mark */
};

struct cell {
    const struct fm_scenario *sc;
    const struct call *k; /* NULL: the reference */
    int kno;              /* k's number, 1-based */
    enum fault fault;
    char id[64];
    long long betnr;
    long long slot_id;
    bool later_done; /* the scenario's later edits were made */
    char diffs[6144];
    size_t ndiffs;
    long long t0;
};

static void differ(struct cell *c, const char *fmt, ...)
{
    size_t used = strlen(c->diffs);
    if (used + 8 >= sizeof c->diffs)
        return;
    if (c->ndiffs++ > 0) {
        snprintf(c->diffs + used, sizeof c->diffs - used, "; ");
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->diffs + used, sizeof c->diffs - used, fmt, ap);
    va_end(ap);
}

/* The Advoware entry of rec whose tlf is tlf (borrowed), or NULL. */
static json_t *entry_with(const json_t *rec, const char *tlf)
{
    size_t i;
    json_t *en;
    json_array_foreach(json_object_get(rec, "kommunikation"), i, en)
    {
        if (strcmp(jstr(en, "tlf"), tlf) == 0)
            return en;
    }
    return NULL;
}

/* A person's move (see enum fm_op_kind). false with a diff when its target is missing. */
static bool person(struct cell *c, const struct fm_op *op)
{
    char path[192];
    if (op->kind == FM_ESPO) {
        snprintf(path, sizeof path, "/_sim/ui/CBeteiligte/%s", c->id);
        json_decref(must(&fm.espo, "PUT", path, op->body));
        return true;
    }
    if (op->kind == FM_ADVO_FIELDS) {
        snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", c->betnr);
        json_decref(must(&fm.advo, "PUT", path, op->body));
        return true;
    }
    if (op->kind == FM_ADVO_ADD) {
        snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen", c->betnr);
        json_decref(must(&fm.advo, "POST", path, op->body));
        return true;
    }
    json_t *rec = advo_state(c->betnr);
    json_t *en = rec ? entry_with(rec, op->entry) : NULL;
    long long eid = en ? jint(en, "id") : 0;
    json_decref(rec);
    if (!eid) {
        differ(c, "starting state: no Advoware entry '%s' to edit", op->entry);
        return false;
    }
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen/%lld", c->betnr, eid);
    json_decref(must(&fm.advo, op->kind == FM_ADVO_SET ? "PUT" : "DELETE", path,
                     op->kind == FM_ADVO_SET ? op->body : NULL));
    return true;
}

/* The starting state: the party created by a UI user and synced, the scenario's preparation,
 * each synced to clean, all quiet. false with a diff. */
static bool starting_state(struct cell *c)
{
    char why[256];
    json_t *e = must(&fm.espo, "POST", "/_sim/ui/CBeteiligte", c->sc->base);
    snprintf(c->id, sizeof c->id, "%s", jstr(e, "id"));
    json_decref(e);
    long long version = 0;
    for (int i = -1; i < FM_MAX_OPS; i++) {
        const struct fm_op *op = i < 0 ? NULL : &c->sc->prepare[i];
        if (op && op->kind == FM_END)
            break;
        if (op) {
            if (!person(c, op))
                return false;
            if (op->kind != FM_ESPO)
                sync_check(c->id, "stale_clean");
        }
        if (!(e = wait_clean(c->id, version))) {
            differ(c, "starting state never clean");
            return false;
        }
        version = jint(e, "versionNumber");
        c->betnr = jint(e, "betnr");
        json_decref(e);
    }
    if (quiesce(why, sizeof why) != 0) {
        differ(c, "starting state: %s", why);
        return false;
    }
    if (c->sc->expect.slot_reused) {
        json_t *rec = advo_state(c->betnr);
        json_t *slot = rec ? entry_with(rec, "") : NULL;
        c->slot_id = slot ? jint(slot, "id") : 0;
        json_decref(rec);
        if (!c->slot_id) {
            differ(c, "starting state: no slot");
            return false;
        }
    }
    return true;
}

/* Arms the cell's fault on call k. */
static void arm(const struct cell *c)
{
    char rule[512], extra[128];
    switch (c->fault) {
    case F_503:
        snprintf(extra, sizeof extra, "\"status\":503");
        break;
    case F_APPLY_503:
        snprintf(extra, sizeof extra, "\"status\":503,\"apply\":true");
        break;
    case F_APPLY_DROP:
        snprintf(extra, sizeof extra, "\"drop\":true,\"apply\":true");
        break;
    case F_KILL:
        snprintf(extra, sizeof extra, "\"kill_pid\":%d", (int)fm.worker.proc.pid);
        break;
    default:
        snprintf(extra, sizeof extra, "\"ui_edit\":" UI_EDIT_ATTRS);
        break;
    }
    snprintf(rule, sizeof rule, "{\"method\":\"%s\",\"route\":\"%s\",\"after\":%d,\"count\":1,%s}",
             c->k->method, c->k->route, c->k->after, extra);
    json_decref(must(c->k->espo ? &fm.espo : &fm.advo, "POST", "/_sim/faults", rule));
}

/* Whether the armed rule has fired (the simulator holds no rule any more). */
static bool fired(const struct cell *c)
{
    json_t *out = must(c->k->espo ? &fm.espo : &fm.advo, "GET", "/_sim/faults", NULL);
    bool gone = json_array_size(json_object_get(out, "faults")) == 0;
    json_decref(out);
    return gone;
}

/* A person looks into Advoware after an uncertain create (README, "An uncertain create is never
 * repeated") and links the party to the record the POST made, or allows one new POST. */
static void resolve_uncertain_create(struct cell *c)
{
    json_t *all = must(&fm.advo, "GET", "/_sim/state/Beteiligte", NULL);
    char err[256];
    int rc;
    if (json_array_size(all) > 0)
        rc = store_resolve_link(fm.rc, c->id, jint(json_array_get(all, 0), "betNr"), err,
                                sizeof err);
    else
        rc = store_resolve_create(fm.rc, c->id, err, sizeof err);
    json_decref(all);
    if (rc != 0)
        differ(c, "resolving the uncertain create: %s", err);
}

/* "YYYY-MM-DD HH:MM:SS" in UTC as Unix seconds; 0 when unreadable. */
static long long espo_time(const char *s)
{
    struct tm tm = {0};
    if (!s || sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm);
}

/* Recovery as in production, each step followed by quiet: the cron's retry scan sends
 * sync_check for a failed party once its syncNextRetry is due, its fallback scan for a dirty or
 * pending one, a person resolves an uncertain create; then a final resync. */
static void recover(struct cell *c)
{
    char why[256];
    for (int round = 0; round < 6; round++) {
        if (quiesce(why, sizeof why) != 0) {
            differ(c, "%s", why);
            return;
        }
        json_t *e = espo_state(c->id);
        if (!e) {
            differ(c, "the EspoCRM entity is gone");
            return;
        }
        char st[32];
        snprintf(st, sizeof st, "%s", jstr(e, "syncStatus"));
        if (strcmp(st, "failed") == 0) {
            if (strstr(jstr(e, "syncErrorMessage"), "Anlage in Advoware ungewiss")) {
                resolve_uncertain_create(c);
            } else {
                long long due = espo_time(jstr(e, "syncNextRetry"));
                long long end = th_now_ms() + 10000;
                while ((long long)time(NULL) < due && th_now_ms() < end)
                    th_sleep_ms(20); /* the retry scan's condition: syncNextRetry <= now */
            }
            sync_check(c->id, "failed");
        } else if (strcmp(st, "dirty") == 0 || strcmp(st, "pending_sync") == 0) {
            sync_check(c->id, st);
        } else {
            json_decref(e);
            break;
        }
        json_decref(e);
    }
    sync_check(c->id, "stale_clean"); /* the final resync */
    if (quiesce(why, sizeof why) != 0)
        differ(c, "%s", why);
}

/* ---- the checks --------------------------------------------------------------------------- */

static bool is_phone_kz(long long kz)
{
    return kz == 1 || kz == 2 || kz == 3 || kz == 6 || kz == 7 || kz == 9 || kz == 10;
}

/* The EspoCRM phone type of a kommKz (SPEC §5.4) for the company template (no Home). */
static const char *phone_type(long long kz)
{
    switch (kz) {
    case 1:
        return "Office";
    case 2:
    case 7:
        return "Fax";
    case 3:
        return "Mobile";
    default:
        return "Other";
    }
}

/* s without surrounding blanks into buf. */
static const char *trimmed(const char *s, char *buf, size_t len)
{
    while (isspace((unsigned char)*s))
        s++;
    snprintf(buf, len, "%s", s);
    size_t n = strlen(buf);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    return buf;
}

/* Values compare as SPEC §5.4 says: phones by E.164, e-mails trimmed and case-insensitively. */
static bool same_value(bool phone, const char *a, const char *b)
{
    char ta[256], tb[256];
    trimmed(a, ta, sizeof ta);
    trimmed(b, tb, sizeof tb);
    return phone ? phone_eq(ta, tb, "DE") : strcasecmp(ta, tb) == 0;
}

/* Whether text names value (as typed, in E.164 or in international format). */
static bool names_value(const char *text, const char *value)
{
    if (strstr(text, value))
        return true;
    char *e164 = phone_e164(value, "DE"), *intl = phone_international(value, "DE");
    bool hit = (e164 && strstr(text, e164)) || (intl && strstr(text, intl));
    free(e164);
    free(intl);
    return hit;
}

static void check_fields(struct cell *c, const json_t *e, const json_t *a)
{
    static const char *const pairs[][2] = {
        {"name", "name"},
        {"vorname", "vorname"},
        {"rechtsform", "rechtsform"},
        {"titel", "titel"},
        {"anrede", "anrede"},
        {"bAnrede", "bAnrede"},
        {"zusatz", "zusatz"},
        {"dateOfBirth", "geburtsdatum"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char ev[256], av[256];
        trimmed(jstr(e, pairs[i][0]), ev, sizeof ev);
        trimmed(jstr(a, pairs[i][1]), av, sizeof av);
        if (strcmp(pairs[i][0], "dateOfBirth") == 0)
            av[strlen(av) > 10 ? 10 : strlen(av)] = '\0'; /* YYYY-MM-DDT00:00:00 */
        if (strcmp(ev, av) != 0)
            differ(c, "%s: EspoCRM '%s', Advoware '%s'", pairs[i][0], ev, av);
    }
    json_t *want = json_loads(c->sc->expect.fields ? c->sc->expect.fields : "{}", 0, NULL);
    if (!want)
        fail_msg("%s: expect.fields is not JSON", c->sc->name);
    if (c->fault == F_UI_EDIT)
        json_object_set_new(want, UI_EDIT_FIELD, json_string(UI_EDIT_VALUE));
    json_t *later = c->later_done ? json_loads(c->sc->expect.later_fields, 0, NULL) : NULL;
    if (c->later_done && !later)
        fail_msg("%s: expect.later_fields is not JSON", c->sc->name);
    json_object_update(want, later);
    json_decref(later);
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        if (strcmp(jstr(e, k), json_string_value(v)) != 0)
            differ(c, "%s: '%s', a person made it '%s'", k, jstr(e, k), json_string_value(v));
    }
    json_decref(want);
}

/* The party's EspoCRM list against the expected exact set: phones {E.164: type}, e-mails [..]. */
static void check_expected_list(struct cell *c, const json_t *e, bool phone)
{
    const char *spec = phone ? c->sc->expect.phones : c->sc->expect.emails;
    json_t *want = json_loads(spec ? spec : (phone ? "{}" : "[]"), 0, NULL);
    if (!want)
        fail_msg("%s: expect.%s is not JSON", c->sc->name, phone ? "phones" : "emails");
    json_t *list = json_object_get(e, phone ? "phoneNumberData" : "emailAddressData"), *it;
    size_t nwant = phone ? json_object_size(want) : json_array_size(want), i;
    int *seen = calloc(nwant + 1, sizeof *seen);
    const char *key = phone ? "phoneNumber" : "emailAddress";
    json_array_foreach(list, i, it)
    {
        const char *v = jstr(it, key);
        size_t j = 0, hit = nwant;
        if (phone) {
            const char *wk;
            json_t *wt;
            json_object_foreach(want, wk, wt)
            {
                if (hit == nwant && same_value(true, wk, v)) {
                    hit = j;
                    if (strcmp(jstr(it, "type"), json_string_value(wt)) != 0)
                        differ(c, "EspoCRM phone %s is %s, expected %s", v, jstr(it, "type"),
                               json_string_value(wt));
                }
                j++;
            }
        } else {
            json_t *w;
            json_array_foreach(want, j, w)
            {
                if (hit == nwant && same_value(false, json_string_value(w), v))
                    hit = j;
            }
        }
        if (hit == nwant)
            differ(c, "EspoCRM has %s %s that nobody made", phone ? "phone" : "e-mail", v);
        else if (seen[hit]++)
            differ(c, "EspoCRM has %s %s twice", phone ? "phone" : "e-mail", v);
    }
    size_t j = 0;
    if (phone) {
        const char *wk;
        json_t *wt;
        json_object_foreach(want, wk, wt)
        {
            if (!seen[j++])
                differ(c, "EspoCRM lacks phone %s", wk);
        }
    } else {
        json_t *w;
        json_array_foreach(want, j, w)
        {
            if (!seen[j])
                differ(c, "EspoCRM lacks e-mail %s", json_string_value(w));
        }
    }
    free(seen);
    json_decref(want);
}

/* Every Advoware entry against EspoCRM's lists: value, type, marker; slots; duplicates. */
static void check_komm(struct cell *c, const json_t *e, const json_t *a)
{
    const struct fm_expect *x = &c->sc->expect;
    json_t *lists[2] = {json_object_get(e, "phoneNumberData"),
                        json_object_get(e, "emailAddressData")};
    size_t nlist[2] = {json_array_size(lists[0]), json_array_size(lists[1])};
    bool *used[2] = {calloc(nlist[0] + 1, 1), calloc(nlist[1] + 1, 1)};
    int entries = 0, slots = 0;
    bool skipped_seen = false, slot_reused = !x->slot_reused;
    size_t i;
    json_t *en;
    json_array_foreach(json_object_get(a, "kommunikation"), i, en)
    {
        char t[256];
        const char *bem = jstr(en, "bemerkung");
        long long kz = jint(en, "kommKz");
        trimmed(jstr(en, "tlf"), t, sizeof t);
        struct marker m;
        if (marker_parse(bem, &m) != 0)
            fail_msg("out of memory");
        entries++;
        if (x->slot_reused && jint(en, "id") == c->slot_id && *t)
            slot_reused = true;
        if (!*t) {
            slots++;
            if (m.kind != MARKER_SLOT)
                differ(c, "Advoware entry %lld is empty without a slot marker ('%s')",
                       jint(en, "id"), bem);
            else if (m.kz != kz)
                differ(c, "slot %lld: marker kommKz %d, entry %lld", jint(en, "id"), m.kz, kz);
        } else if (x->skipped && strcmp(t, x->skipped) == 0) {
            skipped_seen = true;
            if (m.kind != MARKER_NONE)
                differ(c, "'%s' (EspoCRM cannot take it) was changed in Advoware: '%s'", t, bem);
        } else {
            int p = is_phone_kz(kz) ? 0 : 1;
            size_t j, hit = nlist[p];
            bool dup = false;
            json_t *it;
            json_array_foreach(lists[p], j, it)
            {
                if (hit == nlist[p] &&
                    same_value(p == 0, jstr(it, p ? "emailAddress" : "phoneNumber"), t)) {
                    if (used[p][j])
                        dup = true;
                    else
                        hit = j;
                }
            }
            if (hit < nlist[p]) {
                used[p][hit] = true;
                const char *type = jstr(json_array_get(lists[p], hit), "type");
                if (p == 0 && strcmp(type, phone_type(kz)) != 0)
                    differ(c, "'%s': EspoCRM type %s, Advoware kommKz %lld", t, type, kz);
            } else if (dup) {
                differ(c, "'%s' twice in Advoware", t);
            } else {
                differ(c, "Advoware has '%s' (kommKz %lld), EspoCRM not", t, kz);
            }
            if (m.kind != MARKER_VALUE)
                differ(c, "Advoware entry '%s' without a value marker ('%s')", t, bem);
            else if (!same_value(p == 0, m.value, t))
                differ(c, "Advoware entry '%s': its marker says '%s'", t, m.value);
            else if (m.kz != kz)
                differ(c, "Advoware entry '%s': marker kommKz %d, entry %lld", t, m.kz, kz);
        }
        marker_free(&m);
    }
    for (int p = 0; p < 2; p++) {
        json_t *it;
        json_array_foreach(lists[p], i, it)
        {
            if (!used[p][i])
                differ(c, "EspoCRM has '%s', Advoware not",
                       jstr(it, p ? "emailAddress" : "phoneNumber"));
        }
        free(used[p]);
    }
    if (entries != x->entries)
        differ(c, "Advoware holds %d entries, expected %d", entries, x->entries);
    if (slots != x->slots)
        differ(c, "Advoware holds %d slots, expected %d", slots, x->slots);
    if (!slot_reused)
        differ(c, "the slot (entry %lld) was not reused", c->slot_id);
    if (x->skipped && !skipped_seen)
        differ(c, "'%s' is no longer in Advoware", x->skipped);
    if (x->skipped && !strstr(jstr(e, "syncErrorMessage"), x->skipped))
        differ(c, "syncErrorMessage '%s' does not name '%s'", jstr(e, "syncErrorMessage"),
               x->skipped);
}

static void check_notifications(struct cell *c)
{
    const char *conflict = c->sc->expect.conflict;
    json_t *list = must(&fm.espo, "GET", "/_sim/notifications", NULL), *n;
    size_t i;
    int named = 0;
    json_array_foreach(list, i, n)
    {
        const char *msg = jstr(n, "message");
        if (!strstr(msg, "Konflikt gelöst"))
            continue;
        if (conflict && names_value(msg, conflict))
            named++;
        else
            differ(c, "false conflict notification: \"%s\"", msg);
    }
    if (conflict && !named)
        differ(c, "no conflict notification names the overwritten '%s'", conflict);
    json_decref(list);
}

static void check(struct cell *c)
{
    if (!th_proc_alive(&fm.worker.proc)) {
        differ(c, "the worker died (exit %d)", th_proc_wait(&fm.worker.proc, 1000));
        if (restart_worker() != 0)
            fail_msg("the worker does not start again");
    }
    json_t *e = c->id[0] ? espo_state(c->id) : NULL;
    if (!e) {
        differ(c, "no EspoCRM entity");
        return;
    }
    if (strcmp(jstr(e, "syncStatus"), "clean") != 0)
        differ(c, "syncStatus %s (%s)", jstr(e, "syncStatus"), jstr(e, "syncErrorMessage"));
    json_t *all = must(&fm.advo, "GET", "/_sim/state/Beteiligte", NULL);
    if (json_array_size(all) != 1)
        differ(c, "%zu Advoware records for one party", json_array_size(all));
    json_decref(all);
    json_t *a = jint(e, "betnr") > 0 ? advo_state(jint(e, "betnr")) : NULL;
    if (!a) {
        differ(c, "no Advoware record linked (betnr %lld)", jint(e, "betnr"));
    } else {
        check_fields(c, e, a);
        check_komm(c, e, a);
    }
    check_expected_list(c, e, true);
    check_expected_list(c, e, false);
    check_notifications(c);
    json_decref(a);
    json_decref(e);
}

/* ---- the reference's calls ---------------------------------------------------------------- */

/* The calls since the marks, in the order they were answered across both simulators (token
 * calls and 401s left out; "after" counts every earlier call of the same sim, method and route,
 * as a fault rule does), up to and including the first EspoCRM PUT of the entity answered 2xx:
 * the calls of the run under test. */
static size_t collect(long mark_e, long mark_a, struct call *out, size_t max)
{
    struct call all[2][MAX_CALLS];
    size_t n[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        char path[64];
        snprintf(path, sizeof path, "/_sim/log?since=%ld", s == 0 ? mark_e : mark_a);
        json_t *log = must(s == 0 ? &fm.espo : &fm.advo, "GET", path, NULL), *l;
        size_t i;
        json_array_foreach(json_object_get(log, "calls"), i, l)
        {
            if (strcmp(jstr(l, "route"), TOKEN_ROUTE) == 0)
                continue;
            int after = 0;
            size_t j;
            json_t *p;
            json_array_foreach(json_object_get(log, "calls"), j, p)
            {
                if (j >= i)
                    break;
                after += strcmp(jstr(p, "method"), jstr(l, "method")) == 0 &&
                         strcmp(jstr(p, "route"), jstr(l, "route")) == 0;
            }
            if (jint(l, "status") == 401 || n[s] >= MAX_CALLS)
                continue;
            struct call *c = &all[s][n[s]++];
            c->espo = s == 0;
            snprintf(c->method, sizeof c->method, "%s", jstr(l, "method"));
            snprintf(c->route, sizeof c->route, "%s", jstr(l, "route"));
            c->status = (int)jint(l, "status");
            c->t_us = jint(l, "t_us");
            c->after = after;
        }
        json_decref(log);
    }
    size_t k = 0, ie = 0, ia = 0;
    while (k < max && (ie < n[0] || ia < n[1])) {
        bool take_e = ia >= n[1] || (ie < n[0] && all[0][ie].t_us <= all[1][ia].t_us);
        out[k] = take_e ? all[0][ie++] : all[1][ia++];
        struct call *c = &out[k++];
        if (c->espo && strcmp(c->method, "PUT") == 0 && strcmp(c->route, E_ONE) == 0 &&
            c->status >= 200 && c->status < 300)
            break;
    }
    return k;
}

/* ---- the matrix --------------------------------------------------------------------------- */

/* The scenario's later edits: people edit in Advoware after the run under test ended (a failed
 * run's retry, or the next resync, must take them over). Made only when the party's betNr is
 * known: EspoCRM's, or the link's of a create whose final PUT did not happen. */
static void later_edits(struct cell *c)
{
    char why[256], err[256];
    if (c->sc->later[0].kind == FM_END)
        return;
    if (quiesce(why, sizeof why) != 0) {
        differ(c, "%s", why);
        return;
    }
    json_t *e = espo_state(c->id), *link = NULL;
    c->betnr = e ? jint(e, "betnr") : 0;
    json_decref(e);
    if (c->betnr <= 0) {
        if (store_link_get(fm.rc, c->id, &link, err, sizeof err) != 0) {
            differ(c, "link: %s", err);
            return;
        }
        c->betnr = jint(link, "betnr");
        json_decref(link);
    }
    if (c->betnr <= 0)
        return; /* no record known (a create that failed or is uncertain): nobody edits it */
    for (int i = 0; i < FM_MAX_OPS && c->sc->later[i].kind != FM_END; i++)
        if (!person(c, &c->sc->later[i]))
            return;
    c->later_done = true;
}

/* Runs one cell (c->k NULL: the reference, whose calls go to calls/ncalls). */
static void run_cell(struct cell *c, struct call *calls, size_t *ncalls)
{
    char why[256];
    c->t0 = th_now_ms();
    reset_all();
    if (!c->sc->create && !starting_state(c))
        return;
    long mark_e = log_total(&fm.espo), mark_a = log_total(&fm.advo);
    if (c->k)
        arm(c);
    bool espo_edit = false;
    for (int pass = 0; pass < 2; pass++) { /* Advoware's edits first: EspoCRM's starts the run */
        for (int i = 0; i < FM_MAX_OPS && c->sc->edits[i].kind != FM_END; i++) {
            const struct fm_op *op = &c->sc->edits[i];
            if ((op->kind == FM_ESPO) != (pass == 1))
                continue;
            if (!person(c, op))
                return;
            espo_edit |= op->kind == FM_ESPO;
        }
    }
    if (c->sc->create) {
        json_t *e = must(&fm.espo, "POST", "/_sim/ui/CBeteiligte", c->sc->base);
        snprintf(c->id, sizeof c->id, "%s", jstr(e, "id"));
        json_decref(e);
    } else if (!espo_edit) {
        sync_check(c->id, "stale_clean"); /* the cron finds what changed in Advoware */
    }
    if (c->k) {
        bool ok;
        TH_WAIT(ok, fired(c), WAIT_MS);
        if (!ok) {
            differ(c, "call %d was never made", c->kno);
            json_decref(must(c->k->espo ? &fm.espo : &fm.advo, "POST", "/_sim/faults", "{}"));
        } else if (c->fault == F_KILL) {
            int rc = th_proc_wait(&fm.worker.proc, 10000);
            if (rc != 128 + SIGKILL) {
                differ(c, "the worker was not killed (%d)", rc);
                th_proc_stop(&fm.worker.proc, SIGKILL, 5000);
            }
            fm.kills++;
            if (restart_worker() != 0) /* Kafka redelivers what it had not committed */
                fail_msg("the worker does not start again");
        }
    } else {
        if (quiesce(why, sizeof why) != 0)
            differ(c, "%s", why);
        *ncalls = collect(mark_e, mark_a, calls, MAX_CALLS);
    }
    later_edits(c);
    recover(c);
}

static void report(const struct cell *c)
{
    char line[sizeof c->diffs + 512];
    if (c->k)
        snprintf(line, sizeof line, "%s × call %d (%s %s %s) × %s → %s%s", c->sc->name, c->kno,
                 c->k->method, c->k->espo ? "espocrm" : "advoware", c->k->route,
                 fault_names[c->fault], c->ndiffs ? "FAILED: " : "ok", c->diffs);
    else
        snprintf(line, sizeof line, "%s × no fault (reference run) → %s%s", c->sc->name,
                 c->ndiffs ? "FAILED: " : "ok", c->diffs);
    fm.cells++;
    if (c->ndiffs) {
        fm.failed++;
        size_t used = strlen(fm.failures);
        snprintf(fm.failures + used, sizeof fm.failures - used, "  %s\n", line);
    }
    printf("%s (%.1f s)\n", line, (double)(th_now_ms() - c->t0) / 1000.0);
    fflush(stdout);
}

void fm_run_scenario(const struct fm_scenario *sc)
{
    static struct call calls[MAX_CALLS];
    static struct cell c;
    size_t n = 0;
    int cells = fm.cells, failed = fm.failed;
    long long t0 = th_now_ms();
    memset(&c, 0, sizeof c);
    c.sc = sc;
    run_cell(&c, calls, &n);
    check(&c);
    if (n == 0)
        differ(&c, "the reference run made no call: no matrix");
    report(&c);
    printf("%s: the reference run's %zu calls:", sc->name, n);
    for (size_t i = 0; i < n; i++)
        printf(" %zu %s %s %s%s", i + 1, calls[i].method, calls[i].espo ? "espocrm" : "advoware",
               calls[i].route, i + 1 < n ? "," : "\n");
    fflush(stdout);
    for (size_t i = 0; i < n; i++) {
        bool final_put = i == n - 1 && calls[i].espo && strcmp(calls[i].method, "PUT") == 0 &&
                         strcmp(calls[i].route, E_ONE) == 0;
        for (int f = F_503; f <= F_UI_EDIT; f++) {
            if (f == F_UI_EDIT && !final_put)
                continue;
            memset(&c, 0, sizeof c);
            c.sc = sc;
            c.k = &calls[i];
            c.kno = (int)i + 1;
            c.fault = (enum fault)f;
            run_cell(&c, NULL, NULL);
            check(&c);
            report(&c);
        }
    }
    printf("%s: %d cells (%zu calls), %d failed, %.1f s\n", sc->name, fm.cells - cells, n,
           fm.failed - failed, (double)(th_now_ms() - t0) / 1000.0);
    fflush(stdout);
    if (fm.failed > failed)
        fail_msg("%s: %d of %d cells failed (see the lines above)", sc->name, fm.failed - failed,
                 fm.cells - cells);
}
