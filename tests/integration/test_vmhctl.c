/* test_vmhctl.c: vmhctl end to end (SPEC §11), every subcommand as a real process against the
 * simulators, kafka-mock and redis-server on loopback:
 *   - the command line: --help lists commands and variables, usage and configuration errors exit
 *     2, secrets never appear in an answer;
 *   - resync: the partition vmhctl puts a key in is the one vmh-producer puts it in, for 200 keys
 *     over 12 partitions (both consumed back from kafka-mock), and a failed party waiting for its
 *     backoff is run at once;
 *   - webhooks register: registers, is idempotent, reactivates, and prints the WEBHOOK_SECRETS
 *     value EspoCRM's secret keys make;
 *   - doctor: one line per dependency, each failure found and told what to do; all OK on the full
 *     stack;
 *   - on the full stack (tests/support/sync_stack): status shows field by field and entry by
 *     entry what the next run would do and writes nothing; unlock frees a stuck party; reset and
 *     scan bring a party back through the cron's own scan; link and create resolve uncertain
 *     creates; dlq list and replay.
 * No sleeps as synchronisation: every wait polls for its condition with a deadline. */
#include "redis.h"
#include "sync_stack.h"
#include "wauth.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "decide.h"
#include "lock.h"
#include "merge.h"
#include "store.h"

#define OUT_MAX (512 * 1024)
#define ENV_MAX 24

/* ---- running vmhctl ------------------------------------------------------------------------ */

struct env {
    char v[ENV_MAX][700];
    const char *p[ENV_MAX + 1];
    int n;
};

static void env_add(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void env_add(struct env *e, const char *fmt, ...)
{
    assert_true(e->n < ENV_MAX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->v[e->n], sizeof e->v[0], fmt, ap);
    va_end(ap);
    e->p[e->n] = e->v[e->n];
    e->n++;
    e->p[e->n] = NULL;
}

/* Dummy settings for everything; later entries override earlier ones in the child. */
static void env_base(struct env *e)
{
    memset(e, 0, sizeof *e);
    env_add(e, "KAFKA_BROKERS=127.0.0.1:1");
    env_add(e, "REDIS_URL=redis://127.0.0.1:1/0");
    env_add(e, "ESPOCRM_URL=http://127.0.0.1:1");
    env_add(e, "ESPOCRM_API_KEY=dev-espocrm-key");
    env_add(e, "ADVOWARE_URL=http://127.0.0.1:1");
    env_add(e, "ADVOWARE_APP_ID=vmh-dev");
    env_add(e, "ADVOWARE_API_KEY=ZGV2LWFkdm93YXJlLWtleQ==");
    env_add(e, "ADVOWARE_KANZLEI=dev");
    env_add(e, "ADVOWARE_DATABASE=dev");
    env_add(e, "ADVOWARE_USER=dev");
    env_add(e, "ADVOWARE_PASSWORD=dev");
    env_add(e, "HTTP_TIMEOUT_MS=5000");
    env_add(e, "WEBHOOK_PUBLIC_URL");
    env_add(e, "LOG_LEVEL=warn");
}

/* The full stack's settings. */
static void env_stack(struct env *e)
{
    env_base(e);
    env_add(e, "KAFKA_BROKERS=%s", ss.kafka.bootstrap);
    env_add(e, "REDIS_URL=%s", ss.redis.url);
    env_add(e, "ESPOCRM_URL=%s", ss.espo.url);
    env_add(e, "ADVOWARE_URL=%s", ss.advo.url);
}

/* Runs vmhctl with the arguments (argv NULL-terminated); its stdout and stderr in *out (malloc'd,
 * the caller frees). The exit code. */
static int vmhctl_argv(const struct env *e, const char *const *args, char **out)
{
    const char *argv[260];
    char bin[512];
    int n = 0;
    argv[n++] = th_bin("vmhctl", bin, sizeof bin);
    for (; args[n - 1] && n < 259; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    *out = malloc(OUT_MAX);
    assert_non_null(*out);
    return th_run(argv, e->p, *out, OUT_MAX, 120000);
}

static int vmhctl(const struct env *e, char **out, ...)
{
    const char *args[64];
    int n = 0;
    va_list ap;
    va_start(ap, out);
    while ((args[n] = va_arg(ap, const char *)) != NULL && n < 63)
        n++;
    va_end(ap);
    args[n] = NULL;
    return vmhctl_argv(e, args, out);
}

/* The JSON document of a --json answer (its first line starting with '{'); fails the test when
 * there is none. */
static json_t *answer(const char *out)
{
    const char *p = out;
    while (p && *p != '{')
        p = (p = strchr(p, '\n')) ? p + 1 : NULL;
    if (!p)
        fail_msg("no JSON answer in: %s", out);
    json_error_t je;
    json_t *doc = json_loadb(p, strcspn(p, "\n"), 0, &je);
    if (!doc)
        fail_msg("answer not JSON (%s): %s", je.text, p);
    return doc;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The element of array a whose key k is v; NULL if none. */
static const json_t *find(const json_t *a, const char *k, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x)
    {
        if (strcmp(str(x, k), v) == 0)
            return x;
    }
    return NULL;
}

static void expect_in(const char *out, const char *what)
{
    if (!strstr(out, what))
        fail_msg("\"%s\" not in: %s", what, out);
}

/* ---- the command line ---------------------------------------------------------------------- */

static void test_help_and_usage(void **state)
{
    (void)state;
    struct env e;
    char *out;
    env_base(&e);
    assert_int_equal(vmhctl(&e, &out, "--help", NULL), 0);
    static const char *const listed[] = {"status <id>",
                                         "resync <id>",
                                         "reset <id>",
                                         "unlock <id>",
                                         "scan",
                                         "dlq list",
                                         "dlq replay",
                                         "at-least-once",
                                         "link <id> <betNr>",
                                         "create <id>",
                                         "doctor",
                                         "webhooks register",
                                         "KAFKA_BROKERS",
                                         "ADVOWARE_PASSWORD",
                                         "WEBHOOK_PUBLIC_URL",
                                         "ADVOWARE_TZ",
                                         "CRON_BATCH",
                                         "_FILE",
                                         "--json"};
    for (size_t i = 0; i < sizeof listed / sizeof listed[0]; i++)
        expect_in(out, listed[i]);
    free(out);

    static const char *const usage[][5] = {
        {NULL},
        {"bogus", NULL},
        {"status", NULL},
        {"status", "a", "b", NULL},
        {"link", "e1", NULL},
        {"link", "e1", "abc", NULL}, /* not a betNr */
        {"dlq", "purge", NULL},
        {"scan", "--now", NULL},
        {"doctor", "extra", NULL},
        {"webhooks", "register", "--url", "ftp://x"},
        {"webhooks", "register", NULL}, /* no --url and no WEBHOOK_PUBLIC_URL */
        {"resync", "0123456789012345678901234567890123456789012345678901234567890123456789",
         NULL}, /* longer than an entity id */
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        int rc = vmhctl_argv(&e, usage[i], &out);
        if (rc != 2)
            fail_msg("case %zu exited %d, want 2: %s", i, rc, out);
        free(out);
    }
    env_add(&e, "KAFKA_BROKERS"); /* unset: a configuration error names it */
    assert_int_equal(vmhctl(&e, &out, "status", "e1", NULL), 2);
    expect_in(out, "KAFKA_BROKERS");
    free(out);
    env_base(&e);
    env_add(&e, "PHONE_DEFAULT_COUNTRY=XX");
    assert_int_equal(vmhctl(&e, &out, "status", "e1", NULL), 2);
    expect_in(out, "PHONE_DEFAULT_COUNTRY");
    free(out);
}

/* Secrets never appear in an answer, also not in the errors of unreachable systems. */
static void test_no_secret_in_answers(void **state)
{
    (void)state;
    struct env e;
    char *out;
    env_base(&e);
    env_add(&e, "ESPOCRM_API_KEY=topsecret-espocrm");
    env_add(&e, "ADVOWARE_PASSWORD=topsecret-advoware");
    env_add(&e, "REDIS_URL=redis://:topsecret-redis@127.0.0.1:1/0");
    static const char *const cmds[][5] = {
        {"status", "e1", NULL},    {"reset", "e1", NULL},
        {"unlock", "e1", NULL},    {"create", "e1", NULL},
        {"link", "e1", "7", NULL}, {"webhooks", "register", "--url", "http://127.0.0.1:9"}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = vmhctl_argv(&e, cmds[i], &out);
        if (rc != 1)
            fail_msg("%s exited %d, want 1: %s", cmds[i][0], rc, out);
        if (strstr(out, "topsecret"))
            fail_msg("%s printed a secret: %s", cmds[i][0], out);
        free(out);
    }
}

/* ---- the partition proof ------------------------------------------------------------------- */

#define NKEYS 200

/* Reads topic from the beginning until every one of keys was seen (in a message whose value
 * contains `must`, if not NULL); their partitions into parts. Fails the test after 30 s. */
static void partitions_of(const char *bootstrap, const char *topic, int partitions, char keys[][40],
                          int n, const char *must, int *parts)
{
    rd_kafka_t *rk = th_kafka_reader(bootstrap, "test-vmhctl", topic, partitions);
    assert_non_null(rk);
    int seen = 0;
    for (int i = 0; i < n; i++)
        parts[i] = -1;
    long long end = th_now_ms() + 30000;
    while (seen < n && th_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        for (int i = 0; !m->err && i < n; i++) {
            if (parts[i] < 0 && m->key_len == strlen(keys[i]) &&
                memcmp(m->key, keys[i], m->key_len) == 0 &&
                (!must || memmem(m->payload, m->len, must, strlen(must)))) {
                parts[i] = m->partition;
                seen++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (seen < n)
        fail_msg("%s: %d of %d keys seen", topic, seen, n);
}

/* SPEC §11 "keyed and partitioned exactly as the producer does": vmh-producer turns a create
 * webhook for each of 200 ids into messages on <prefix>.create; vmhctl resync sends the same ids
 * to <prefix>.sync_check; read back from kafka-mock, every id is in the same partition number of
 * both topics (which is what per-entity ordering needs, SPEC §1.1). */
static void test_resync_lands_where_the_producer_puts_it(void **state)
{
    (void)state;
    struct th_kafka k;
    struct th_redis r;
    struct th_proc producer;
    assert_int_equal(th_kafka_start(&k, 12), 0);
    assert_int_equal(th_redis_start(&r, NULL), 0);
    int web = th_free_port(), ops = th_free_port();
    char bin[512], brokers[600], redis[320], weblisten[64], opslisten[64];
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", k.bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", r.url);
    snprintf(weblisten, sizeof weblisten, "WEBHOOK_LISTEN=127.0.0.1:%d", web);
    snprintf(opslisten, sizeof opslisten, "METRICS_LISTEN=127.0.0.1:%d", ops);
    const char *penv[] = {brokers,
                          redis,
                          weblisten,
                          opslisten,
                          "ESPOCRM_URL=http://127.0.0.1:1",
                          "ESPOCRM_API_KEY=k",
                          "WEBHOOK_ALLOW_UNSIGNED=1",
                          "CRON_INTERVAL_S=3600",
                          "CRON_RETRY_INTERVAL_S=3600",
                          "LOG_LEVEL=error",
                          NULL};
    const char *pargv[] = {th_bin("vmh-producer", bin, sizeof bin), NULL};
    assert_int_equal(th_proc_start(&producer, pargv, penv, false), 0);
    assert_int_equal(th_proc_healthy(&producer, ops, 30000), 0);

    static char keys[NKEYS][40];
    json_t *records = json_array();
    const char *args[NKEYS + 3] = {"--json", "resync"};
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "68e4aef%03d%07d", i, i * 7919);
        json_array_append_new(records, json_pack("{s:s}", "id", keys[i]));
        args[i + 2] = keys[i];
    }
    args[NKEYS + 2] = NULL;
    char url[128], *body = json_dumps(records, JSON_COMPACT);
    json_t *ack = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/webhook/beteiligte/create", web);
    assert_int_equal(th_http("POST", url, NULL, body, &ack), 200);
    assert_int_equal(json_integer_value(json_object_get(ack, "accepted")), NKEYS);
    json_decref(ack);
    free(body);
    json_decref(records);

    struct env e;
    char *out;
    env_base(&e);
    env_add(&e, "KAFKA_BROKERS=%s", k.bootstrap);
    assert_int_equal(vmhctl_argv(&e, args, &out), 0);
    json_t *doc = answer(out);
    json_t *sent = json_object_get(doc, "sent");
    assert_int_equal(json_array_size(sent), NKEYS);
    size_t i;
    json_t *m;
    json_array_foreach(sent, i, m)
    {
        assert_true(json_is_true(json_object_get(m, "acknowledged")));
        assert_string_equal(str(m, "topic"), "vmh.beteiligte.sync_check");
    }
    json_decref(doc);
    free(out);

    static int by_producer[NKEYS], by_vmhctl[NKEYS];
    partitions_of(k.bootstrap, "vmh.beteiligte.create", 12, keys, NKEYS, "\"source\":\"webhook\"",
                  by_producer);
    partitions_of(k.bootstrap, "vmh.beteiligte.sync_check", 12, keys, NKEYS, "\"source\":\"cli\"",
                  by_vmhctl);
    bool used[12] = {false};
    int distinct = 0;
    for (int n = 0; n < NKEYS; n++) {
        if (by_producer[n] != by_vmhctl[n])
            fail_msg("%s: vmh-producer partition %d, vmhctl partition %d", keys[n], by_producer[n],
                     by_vmhctl[n]);
        distinct += !used[by_vmhctl[n]];
        used[by_vmhctl[n]] = true;
    }
    assert_true(distinct >= 10); /* the keys spread: equality is not by accident */

    assert_int_equal(th_proc_stop(&producer, SIGTERM, 30000), 0);
    th_redis_stop(&r);
    th_kafka_stop(&k);
}

/* ---- webhooks register --------------------------------------------------------------------- */

static json_t *espo_hooks(const struct th_sim *s)
{
    char url[128];
    json_t *out = NULL;
    snprintf(url, sizeof url, "%s/_sim/webhooks", s->url);
    assert_int_equal(th_http("GET", url, NULL, NULL, &out), 200);
    json_t *list = json_incref(json_object_get(out, "webhooks"));
    json_decref(out);
    return list;
}

static void test_webhooks_register(void **state)
{
    (void)state;
    struct th_sim espo;
    assert_int_equal(th_sim_start(&espo, "espocrm-sim", NULL), 0);
    struct env e;
    char *out, err[256];
    env_base(&e);
    env_add(&e, "ESPOCRM_URL=%s", espo.url);
    env_add(&e, "WEBHOOK_PUBLIC_URL=https://sync.example.com/");

    assert_int_equal(vmhctl(&e, &out, "webhooks", "register", NULL), 0);
    expect_in(out,
              "CBeteiligte.create   registered https://sync.example.com/webhook/beteiligte/create");
    expect_in(out, "WEBHOOK_SECRETS=");
    free(out);
    json_t *hooks = espo_hooks(&espo);
    assert_int_equal(json_array_size(hooks), 3);
    assert_non_null(find(hooks, "url", "https://sync.example.com/webhook/beteiligte/delete"));
    json_decref(hooks);

    /* again: nothing new, the same value; the JSON answer carries it */
    assert_int_equal(vmhctl(&e, &out, "--json", "webhooks", "register", NULL), 0);
    json_t *doc = answer(out);
    char secrets[1024];
    snprintf(secrets, sizeof secrets, "%s", str(doc, "WEBHOOK_SECRETS"));
    assert_string_equal(str(json_array_get(json_object_get(doc, "webhooks"), 0), "action"), "kept");
    json_decref(doc);
    free(out);
    hooks = espo_hooks(&espo);
    assert_int_equal(json_array_size(hooks), 3);
    struct wauth *a = wauth_parse(secrets, err, sizeof err);
    assert_non_null(a);
    wauth_free(a);

    /* the value is what EspoCRM holds: each id with its secretKey (GET /Webhook, recorded 07) */
    char url[128];
    const char *key[] = {"X-Api-Key: dev-espocrm-key", NULL};
    json_t *listed = NULL;
    snprintf(url, sizeof url, "%s/api/v1/Webhook", espo.url);
    assert_int_equal(th_http("GET", url, key, NULL, &listed), 200);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(listed, "list"), i, w)
    {
        char item[256];
        snprintf(item, sizeof item, "%s:%s", str(w, "id"), str(w, "secretKey"));
        expect_in(secrets, item);
    }
    json_decref(listed);

    /* an inactive one is switched on, not duplicated; another URL is noted */
    char path[160];
    snprintf(url, sizeof url, "%s/api/v1/Webhook/%s", espo.url,
             str(json_array_get(hooks, 1), "id"));
    assert_int_equal(th_http("PUT", url, key, "{\"isActive\":false}", NULL), 200);
    snprintf(path, sizeof path, "%s/api/v1/Webhook", espo.url);
    assert_int_equal(th_http("POST", path, key,
                             "{\"event\":\"CBeteiligte.create\",\"url\":"
                             "\"https://old.example.com/webhook/beteiligte/create\"}",
                             NULL),
                     201);
    json_decref(hooks);
    assert_int_equal(
        vmhctl(&e, &out, "webhooks", "register", "--url", "https://sync.example.com", NULL), 0);
    expect_in(out, "activated");
    expect_in(out, "https://old.example.com/webhook/beteiligte/create");
    expect_in(out, secrets); /* same ids, same keys */
    free(out);
    hooks = espo_hooks(&espo);
    assert_int_equal(json_array_size(hooks), 4);
    json_array_foreach(hooks, i, w)
    {
        assert_true(json_is_true(json_object_get(w, "isActive")));
    }
    json_decref(hooks);
    assert_int_equal(th_sim_stop(&espo), 0);
}

/* ---- doctor -------------------------------------------------------------------------------- */

static const json_t *check_of(const json_t *doc, const char *name)
{
    const json_t *c = find(json_object_get(doc, "checks"), "check", name);
    if (!c)
        fail_msg("doctor has no line %s", name);
    return c;
}

/* Everything that can be wrong, at once: each is one FAIL line with what to do; what is right
 * says OK. */
static void test_doctor_finds_each_problem(void **state)
{
    (void)state;
    struct th_kafka k;
    struct th_redis r;
    struct th_sim espo, advo;
    static const char *const espo_args[] = {"--drop-field", "advowareSyncBaseline",
                                            "--message-permission", "no", NULL};
    assert_int_equal(th_kafka_start(&k, 4), 0);
    assert_int_equal(th_redis_start(&r, NULL), 0);
    assert_int_equal(th_sim_start(&espo, "espocrm-sim", espo_args), 0);
    assert_int_equal(th_sim_start(&advo, "advoware-sim", NULL), 0);
    struct env e;
    char *out;
    env_base(&e);
    env_add(&e, "KAFKA_BROKERS=%s", k.bootstrap);
    env_add(&e, "REDIS_URL=%s", r.url);
    env_add(&e, "ESPOCRM_URL=%s", espo.url);
    env_add(&e, "ADVOWARE_URL=%s", advo.url);
    env_add(&e, "ADVOWARE_PASSWORD=wrong");
    env_add(&e, "ADVOWARE_TZ=Mars/Phobos");
    env_add(&e, "WEBHOOK_PUBLIC_URL=https://sync.example.com");
    assert_int_equal(vmhctl(&e, &out, "doctor", "--json", NULL), 1);
    json_t *doc = answer(out);
    static const char *const ok[] = {"kafka", "kafka topics", "redis", "espocrm"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!json_is_true(json_object_get(check_of(doc, ok[i]), "ok")))
            fail_msg("%s not OK: %s", ok[i], out);
    static const struct {
        const char *check, *detail, *fix;
    } bad[] = {
        {"redis persistence", "AOF off, RDB off", "appendonly yes"},
        {"espocrm entity", "advowareSyncBaseline", "deploy/espocrm/"},
        {"espocrm messages", "Message permission", "Message Permission = all"},
        {"espocrm webhooks", "CBeteiligte.create missing", "vmhctl webhooks register"},
        {"advoware token", "401", "ADVOWARE_PASSWORD"},
        {"advoware time zone", "Mars/Phobos", "ADVOWARE_TZ"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const json_t *c = check_of(doc, bad[i].check);
        if (!json_is_false(json_object_get(c, "ok")) || !strstr(str(c, "detail"), bad[i].detail) ||
            !strstr(str(c, "fix"), bad[i].fix))
            fail_msg("%s: %s", bad[i].check, out);
    }
    assert_int_equal(json_integer_value(json_object_get(doc, "failed")), 6);
    json_decref(doc);
    free(out);
    /* the same for a person: one line each, the fix under it */
    assert_int_equal(vmhctl(&e, &out, "doctor", NULL), 1);
    expect_in(out, "FAIL  advoware token");
    expect_in(out, "OK    kafka topics       vmh.beteiligte.* present, 4 partitions each");
    expect_in(out, "→ set Message Permission = all");
    assert_null(strstr(out, "wrong")); /* the password */
    free(out);
    assert_int_equal(th_sim_stop(&espo), 0);
    assert_int_equal(th_sim_stop(&advo), 0);
    th_redis_stop(&r);
    th_kafka_stop(&k);
}

/* ---- on the full stack --------------------------------------------------------------------- */

/* vmh-producer's base URL, as the stack registered its webhooks. */
static void producer_url(char *buf, size_t len)
{
    json_t *hooks = espo_hooks(&ss.espo);
    const char *url = str(json_array_get(hooks, 0), "url");
    const char *cut = strstr(url, "/webhook/");
    assert_non_null(cut);
    snprintf(buf, len, "%.*s", (int)(cut - url), url);
    json_decref(hooks);
}

static void test_doctor_all_ok_on_the_stack(void **state)
{
    (void)state;
    struct env e;
    char *out, base[128];
    env_stack(&e);
    producer_url(base, sizeof base);
    env_add(&e, "WEBHOOK_PUBLIC_URL=%s", base);
    struct redis_client *rc = th_redis_client(&ss.redis);
    char err[256];
    redisReply *reply = redis_command(rc, err, sizeof err, "CONFIG SET appendonly yes");
    assert_non_null(reply);
    freeReplyObject(reply);
    int rcode = vmhctl(&e, &out, "doctor", NULL);
    if (rcode != 0)
        fail_msg("doctor exited %d: %s", rcode, out);
    expect_in(out, "OK    espocrm webhooks");
    expect_in(out, "OK    redis persistence  AOF on");
    free(out);
    reply = redis_command(rc, err, sizeof err, "CONFIG SET appendonly no");
    assert_non_null(reply);
    freeReplyObject(reply);
    redis_client_free(rc);
}

/* SPEC §11 status: field by field and entry by entry what EspoCRM, Advoware and the baseline hold
 * and what the next run would do, computed without writing anything; the lock holder shown; unlock
 * frees the party (the seed's "stuck party"), the waiting run syncs it, and status says so. */
static void test_status_plan_and_unlock(void **state)
{
    (void)state;
    char id[64], key[LOCK_KEY_MAX], err[256], path[160];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Status GmbH\",\"vorname\":\"Max\",\"phoneNumberData\":[{"
                     "\"phoneNumber\":\"+49 511 12345\",\"type\":\"Office\",\"primary\":true}],"
                     "\"emailAddressData\":[{\"emailAddress\":\"max@example.com\",\"primary\":"
                     "true}]}",
                     id, sizeof id, &betnr, &v);
    /* a run's lock that nobody releases (a worker killed in the middle) */
    struct redis_client *rc = th_redis_client(&ss.redis);
    assert_int_equal(lock_key(id, key, sizeof key), 0);
    assert_int_equal(redis_set(rc, key, "gone-worker-1:7", 120000, err, sizeof err), 0);
    ss_ui_update(id, "{\"vorname\":\"Moritz\",\"titel\":\"Dr.\",\"phoneNumberData\":[{"
                     "\"phoneNumber\":\"+49 511 12345\",\"type\":\"Office\",\"primary\":true},{"
                     "\"phoneNumber\":\"+49 170 5555\",\"type\":\"Mobile\"}]}");
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"zusatz\":\"Zusatz A\",\"titel\":\"Prof.\"}"));
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen", betnr);
    json_decref(ss_call(&ss.advo, "POST", path, "{\"tlf\":\"0511/999999\",\"kommKz\":3}"));
    json_t *rec = ss_advo_state(betnr), *k;
    size_t i;
    long long mail = 0;
    json_array_foreach(json_object_get(rec, "kommunikation"), i, k)
    {
        if (strcmp(ss_str(k, "tlf"), "max@example.com") == 0)
            mail = json_integer_value(json_object_get(k, "id"));
    }
    json_decref(rec);
    assert_true(mail > 0);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld/Kommunikationen/%lld", betnr, mail);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"tlf\":\"neu@example.com\"}"));

    struct ss_calls before, after;
    ss_snapshot(&before);
    struct env e;
    char *out;
    env_stack(&e);
    assert_int_equal(vmhctl(&e, &out, "status", id, "--json", NULL), 1);
    json_t *doc = answer(out);
    free(out);
    assert_string_equal(str(doc, "case"), "conflict");
    json_t *lock = json_object_get(doc, "lock");
    assert_true(json_is_true(json_object_get(lock, "held")));
    assert_string_equal(str(lock, "holder"), "gone-worker-1:7");
    json_t *fields = json_object_get(doc, "fields");
    assert_string_equal(str(find(fields, "field", "vorname"), "action"), "push → Advoware");
    assert_string_equal(str(find(fields, "field", "vorname"), "baseline"), "Max");
    assert_string_equal(str(find(fields, "field", "titel"), "action"), "conflict: EspoCRM wins");
    assert_string_equal(str(find(fields, "field", "zusatz"), "action"), "pull → EspoCRM");
    assert_string_equal(str(find(fields, "field", "name"), "action"), "in sync");
    json_t *entries = json_object_get(json_object_get(doc, "kommunikation"), "entries");
    const json_t *x = find(entries, "advoware", "neu@example.com");
    assert_non_null(x);
    assert_string_equal(str(x, "var"), "Var6");
    assert_string_equal(str(x, "espocrm"), "max@example.com");
    assert_string_equal(str(x, "baseline"), "max@example.com");
    assert_string_equal(str(find(entries, "advoware", "0511/999999"), "var"), "Var4");
    assert_string_equal(str(find(entries, "espocrm", "+491705555"), "var"), "Var1");
    assert_string_equal(str(find(entries, "espocrm", "+4951112345"), "action"), "in sync");
    json_decref(doc);
    ss_snapshot(&after); /* reads only */
    assert_int_equal(after.e_put, before.e_put);
    assert_int_equal(after.a_put, before.a_put);
    assert_int_equal(after.a_post, before.a_post);
    assert_int_equal(after.k_post, before.k_post);
    assert_int_equal(after.k_put, before.k_put);
    assert_int_equal(after.notif, before.notif);

    assert_int_equal(vmhctl(&e, &out, "status", id, NULL), 1); /* for a person */
    expect_in(out, "Lock: held by gone-worker-1:7");
    expect_in(out, "conflict: EspoCRM wins");
    expect_in(out, "Var6: changed in Advoware → EspoCRM");
    expect_in(out, "Next run: conflict: Advoware PUT yes");
    free(out);

    assert_int_equal(vmhctl(&e, &out, "unlock", id, NULL), 0);
    expect_in(out, "lock of gone-worker-1:7 released");
    free(out);
    /* gone: the waiting run may hold the key already, under its own name */
    char *holder = NULL;
    assert_true(redis_get(rc, key, &holder, NULL, err, sizeof err) >= 0);
    assert_true(!holder || strcmp(holder, "gone-worker-1:7") != 0);
    free(holder);
    json_t *ent = ss_wait_status(id, "clean", v + 1);
    assert_string_equal(ss_str(ent, "zusatz"), "Zusatz A");
    json_decref(ent);
    ss_quiesce();
    assert_int_equal(vmhctl(&e, &out, "status", id, "--json", NULL), 0);
    doc = answer(out);
    assert_true(json_is_true(json_object_get(doc, "ok")));
    assert_non_null(strstr(str(doc, "nextRun"), "nothing to write"));
    json_decref(doc);
    free(out);
    assert_int_equal(vmhctl(&e, &out, "unlock", id, NULL), 0); /* not locked: nothing to do */
    expect_in(out, "not locked");
    free(out);
    redis_client_free(rc);
}

/* A worker was killed after its Advoware PUT and before its final EspoCRM PUT; meanwhile the
 * person reverted the edit the run pushed. status decides as the next run will: with the run's
 * write-ahead baseline (Advoware holds the pushed value: it landed), the revert is an EspoCRM
 * edit to push, not an Advoware edit to pull. The run, once unlocked, does just that. */
static void test_status_uses_the_write_ahead_baseline(void **state)
{
    (void)state;
    char id[64], key[LOCK_KEY_MAX], err[256], path[160], based_on[33];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Voraus GmbH\",\"vorname\":\"Max\"}", id, sizeof id, &betnr, &v);
    struct redis_client *rc = th_redis_client(&ss.redis);
    assert_int_equal(lock_key(id, key, sizeof key), 0);
    assert_int_equal(redis_set(rc, key, "gone-worker-2:9", 120000, err, sizeof err), 0);
    /* what the killed run wrote ahead, then into Advoware: vorname Moritz */
    json_t *e = ss_espo_state(id);
    json_t *base = merge_baseline_parse(ss_str(e, "advowareSyncBaseline"));
    json_t *fields = merge_fields_of(e);
    json_object_set_new(fields, "vorname", json_string("Moritz"));
    json_t *ahead = merge_pending_make(base, fields, NULL);
    decide_based_on(e, based_on);
    assert_int_equal(store_ahead_set(rc, id, based_on, ahead, err, sizeof err), 0);
    json_decref(ahead);
    json_decref(fields);
    json_decref(base);
    json_decref(e);
    snprintf(path, sizeof path, "/_sim/ui/Beteiligte/%lld", betnr);
    json_decref(ss_call(&ss.advo, "PUT", path, "{\"vorname\":\"Moritz\"}"));
    /* the person typed Moritz (the run's reason), then went back to Max */
    ss_ui_update(id, "{\"vorname\":\"Moritz\"}");
    ss_ui_update(id, "{\"vorname\":\"Max\"}");

    struct env env;
    char *out;
    env_stack(&env);
    assert_int_equal(vmhctl(&env, &out, "status", id, "--json", NULL), 1);
    json_t *doc = answer(out);
    free(out);
    assert_non_null(strstr(str(json_object_get(doc, "baseline"), "from"), "write-ahead"));
    const json_t *vorname = find(json_object_get(doc, "fields"), "field", "vorname");
    assert_string_equal(str(vorname, "baseline"), "Moritz");
    assert_string_equal(str(vorname, "action"), "push → Advoware");
    assert_null(strstr(str(doc, "nextRun"), "overwritten"));
    json_decref(doc);

    assert_int_equal(vmhctl(&env, &out, "unlock", id, NULL), 0);
    free(out);
    json_decref(ss_wait_status(id, "clean", v + 1));
    json_t *a = ss_advo_state(betnr);
    assert_string_equal(ss_str(a, "vorname"), "Max");
    json_decref(a);
    e = ss_espo_state(id);
    assert_string_equal(ss_str(e, "vorname"), "Max");
    json_decref(e);
    redis_client_free(rc);
}

/* reset (the seed's manual reset of a permanently failed party) makes the party dirty with its
 * retry count at 0 (a PUT with X-Version-Number); vmhctl scan runs the cron's own fallback scan,
 * which finds it; the worker syncs it. */
static void test_reset_and_scan(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Reset GmbH\"}", id, sizeof id, &betnr, &v);
    struct env e;
    char *out;
    env_stack(&e);
    assert_int_equal(vmhctl(&e, &out, "reset", id, NULL), 0);
    expect_in(out, "syncStatus dirty, syncRetryCount 0");
    free(out);
    json_t *ent = ss_espo_state(id);
    assert_string_equal(ss_str(ent, "syncStatus"), "dirty");
    assert_int_equal(json_integer_value(json_object_get(ent, "syncRetryCount")), 0);
    v = json_integer_value(json_object_get(ent, "versionNumber"));
    json_decref(ent);
    assert_int_equal(vmhctl(&e, &out, "scan", "--json", NULL), 0);
    json_t *doc = answer(out);
    assert_true(json_integer_value(json_object_get(json_object_get(doc, "byReason"), "dirty")) >=
                1);
    assert_int_equal(json_integer_value(json_object_get(doc, "acknowledged")),
                     json_integer_value(json_object_get(doc, "selected")));
    json_decref(doc);
    free(out);
    json_decref(ss_wait_status(id, "clean", v));
    assert_int_equal(vmhctl(&e, &out, "scan", "--retry", NULL), 0);
    expect_in(out, "retry scan:");
    free(out);
    assert_int_equal(vmhctl(&e, &out, "reset", "no-such-party", NULL), 1);
    free(out);
}

/* A failed party waits for its backoff against webhook runs (SPEC §3.1); status says so, and
 * vmhctl resync (source cli) runs it now. */
static void test_resync_runs_a_failed_party_now(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Backoff Resync GmbH\"}", id, sizeof id, &betnr, &v);
    ss_fault(&ss.advo, "GET", A_ONE, 503, 1);
    ss_ui_update(id, "{\"vorname\":\"Erika\"}");
    json_t *ent = ss_wait_status(id, "failed", v);
    v = json_integer_value(json_object_get(ent, "versionNumber"));
    json_decref(ent);
    ss_quiesce();
    struct env e;
    char *out;
    env_stack(&e);
    assert_int_equal(vmhctl(&e, &out, "status", id, NULL), 1);
    expect_in(out, "Backoff holds until");
    expect_in(out, "push → Advoware");
    free(out);
    assert_int_equal(vmhctl(&e, &out, "resync", id, NULL), 0);
    expect_in(out, "acknowledged by Kafka");
    free(out);
    json_decref(ss_wait_status(id, "clean", v));
    json_t *rec = ss_advo_state(betnr);
    assert_string_equal(ss_str(rec, "vorname"), "Erika");
    json_decref(rec);
}

/* SPEC §5.3 uncertain creates: status names the create mark and both ways out; vmhctl create
 * allows one new POST; vmhctl link checks the betNr in Advoware and links; each ends clean with
 * exactly one Advoware record. */
static void test_link_and_create(void **state)
{
    (void)state;
    char create_id[64], link_id[64];
    long posts = ss_calls_of(&ss.advo, "POST", A_ALL);
    ss_fault(&ss.advo, "POST", A_ALL, 200, 2); /* 2xx without a betNr: outcome unknown */
    ss_ui_create("{\"name\":\"Ungewiss Create GmbH\"}", create_id, sizeof create_id);
    ss_ui_create("{\"name\":\"Ungewiss Link GmbH\"}", link_id, sizeof link_id);
    json_t *ent = ss_wait_status(create_id, "failed", 0);
    long long v1 = json_integer_value(json_object_get(ent, "versionNumber"));
    json_decref(ent);
    ent = ss_wait_status(link_id, "failed", 0);
    long long v2 = json_integer_value(json_object_get(ent, "versionNumber"));
    json_decref(ent);
    ss_quiesce();
    struct env e;
    char *out;
    env_stack(&e);
    assert_int_equal(vmhctl(&e, &out, "status", create_id, "--json", NULL), 1);
    json_t *doc = answer(out);
    assert_true(json_is_string(json_object_get(doc, "createMark")));
    expect_in(str(doc, "nextRun"), "vmhctl link");
    expect_in(str(doc, "nextRun"), "vmhctl create");
    json_decref(doc);
    free(out);

    assert_int_equal(vmhctl(&e, &out, "create", create_id, NULL), 0);
    expect_in(out, "may POST to Advoware once");
    free(out);
    ent = ss_wait_status(create_id, "clean", v1);
    assert_true(json_integer_value(json_object_get(ent, "betnr")) > 0);
    json_decref(ent);
    assert_int_equal(vmhctl(&e, &out, "create", create_id, NULL), 1); /* it has a betNr now */
    free(out);

    assert_int_equal(vmhctl(&e, &out, "link", link_id, "999999", NULL), 1);
    expect_in(out, "Advoware has no Beteiligter with betNr 999999");
    free(out);
    json_t *rec =
        ss_call(&ss.advo, "POST", "/_sim/ui/Beteiligte", "{\"name\":\"Ungewiss Link GmbH\"}");
    char betnr[32];
    snprintf(betnr, sizeof betnr, "%lld",
             (long long)json_integer_value(json_object_get(rec, "betNr")));
    json_decref(rec);
    assert_int_equal(vmhctl(&e, &out, "link", link_id, betnr, NULL), 0);
    expect_in(out, "linked to betNr");
    expect_in(out, "resync sent");
    free(out);
    ent = ss_wait_status(link_id, "clean", v2);
    assert_int_equal(json_integer_value(json_object_get(ent, "betnr")), atoll(betnr));
    json_decref(ent);
    assert_int_equal(ss_calls_of(&ss.advo, "POST", A_ALL), posts + 3);
}

/* A dead letter as an older worker wrote it: a message today's code reads (so a replay can help),
 * with the headers of worker/dlq.c. */
static void dead_letter(const char *key, const char *value, const char *topic)
{
    char err[512];
    rd_kafka_conf_t *conf =
        kafka_producer_conf_new(ss.kafka.bootstrap, "test-dlq", err, sizeof err);
    assert_non_null(conf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    assert_int_equal(
        rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC("vmh.beteiligte.dlq"), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, strlen(value)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("error", "unknown message version (v must be 1)", -1),
            RD_KAFKA_V_HEADER("topic", topic, -1), RD_KAFKA_V_HEADER("partition", "0", -1),
            RD_KAFKA_V_HEADER("offset", "17", -1), RD_KAFKA_V_END),
        0);
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

static double dlq_total(void)
{
    return th_metric(ss.w[0].metrics_port, "vmh_dlq_total", NULL) +
           th_metric(ss.w[1].metrics_port, "vmh_dlq_total", NULL);
}

/* dlq list shows each dead letter with its origin and error; replay sends the readable ones back
 * to their topic with their key (the producer's partition), skips the unreadable, and remembers
 * what it did: a second replay sends nothing. */
static void test_dlq_list_and_replay(void **state)
{
    (void)state;
    char id[64];
    long long betnr, v;
    ss_synced_entity("{\"name\":\"Dead Letter GmbH\"}", id, sizeof id, &betnr, &v);
    double dead = dlq_total();
    const char poison[] = "not json at all\n\x1b[31m";
    assert_int_equal(
        th_kprod_send(ss.kp, "vmh.beteiligte.update", -1, "poison-1", poison, sizeof poison - 1),
        0);
    assert_int_equal(th_kprod_flush(ss.kp, 10000), 0);
    bool ok;
    TH_WAIT(ok, dlq_total() >= dead + 1, 30000);
    assert_true(ok);
    char value[256];
    snprintf(value, sizeof value,
             "{\"v\":1,\"entityId\":\"%s\",\"event\":\"update\",\"source\":\"webhook\","
             "\"emittedAt\":\"2026-01-01T10:00:00.000Z\"}",
             id);
    dead_letter(id, value, "vmh.beteiligte.update");

    struct env e;
    char *out;
    env_stack(&e);
    assert_int_equal(vmhctl(&e, &out, "dlq", "list", "--json", NULL), 1);
    json_t *doc = answer(out);
    free(out);
    json_t *letters = json_object_get(doc, "letters");
    const json_t *p = find(letters, "key", "poison-1"), *l = find(letters, "key", id);
    assert_non_null(p);
    assert_non_null(l);
    assert_string_equal(str(p, "state"), "invalid");
    assert_string_equal(str(p, "topic"), "vmh.beteiligte.update");
    expect_in(str(p, "error"), "not JSON");
    assert_string_equal(str(p, "value"), "not json at all\\x0a\\x1b[31m");
    assert_string_equal(str(l, "state"), "pending");
    assert_string_equal(str(l, "replayTo"), "update");
    json_decref(doc);
    assert_int_equal(vmhctl(&e, &out, "dlq", "list", NULL), 1);
    assert_null(strchr(out, '\x1b')); /* the poison's bytes never reach a terminal raw */
    free(out);

    double done = th_metric(ss.w[0].metrics_port, "vmh_messages_done_total", NULL) +
                  th_metric(ss.w[1].metrics_port, "vmh_messages_done_total", NULL);
    assert_int_equal(vmhctl(&e, &out, "dlq", "replay", NULL), 0);
    expect_in(out, "1 letter(s) replayed");
    expect_in(out, "1 skipped");
    free(out);
    /* back on its topic, with its key and value, in the partition vmh-producer uses for it */
    static char keys[1][40];
    snprintf(keys[0], sizeof keys[0], "%.39s", id);
    int replayed = -1;
    partitions_of(ss.kafka.bootstrap, "vmh.beteiligte.update", SS_PARTITIONS, keys, 1,
                  "2026-01-01T10:00:00.000Z", &replayed);
    struct th_kprod *kp = th_kprod_new(ss.kafka.bootstrap);
    assert_int_equal(th_kprod_send_entity(kp, "vmh.beteiligte.sync_check", -1, id), 0);
    assert_int_equal(th_kprod_flush(kp, 10000), 0);
    assert_int_equal(th_kprod_sent(kp, 0)->partition, replayed);
    th_kprod_free(kp);
    ss.sent++; /* the message th_kprod sent, for ss_quiesce */
    TH_WAIT(ok,
            th_metric(ss.w[0].metrics_port, "vmh_messages_done_total", NULL) +
                    th_metric(ss.w[1].metrics_port, "vmh_messages_done_total", NULL) >=
                done + 2,
            30000);
    assert_true(ok);

    assert_int_equal(vmhctl(&e, &out, "dlq", "list", "--json", NULL), 0); /* nothing open */
    doc = answer(out);
    assert_string_equal(str(find(json_object_get(doc, "letters"), "key", id), "state"), "replayed");
    json_decref(doc);
    free(out);
    assert_int_equal(vmhctl(&e, &out, "dlq", "replay", "--json", NULL), 0);
    doc = answer(out);
    assert_int_equal(json_array_size(json_object_get(doc, "replayed")), 0);
    json_decref(doc);
    free(out);
}

int main(void)
{
    const struct CMUnitTest alone[] = {
        cmocka_unit_test(test_help_and_usage),
        cmocka_unit_test(test_no_secret_in_answers),
        cmocka_unit_test(test_resync_lands_where_the_producer_puts_it),
        cmocka_unit_test(test_webhooks_register),
        cmocka_unit_test(test_doctor_finds_each_problem),
    };
    const struct CMUnitTest stack[] = {
        cmocka_unit_test(test_doctor_all_ok_on_the_stack),
        cmocka_unit_test(test_status_plan_and_unlock),
        cmocka_unit_test(test_status_uses_the_write_ahead_baseline),
        cmocka_unit_test(test_reset_and_scan),
        cmocka_unit_test(test_resync_runs_a_failed_party_now),
        cmocka_unit_test(test_link_and_create),
        cmocka_unit_test(test_dlq_list_and_replay),
    };
    int failed = cmocka_run_group_tests_name("vmhctl", alone, NULL, NULL);
    failed += cmocka_run_group_tests_name("vmhctl on the full stack", stack, ss_setup, ss_teardown);
    return failed;
}
