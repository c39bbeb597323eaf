/* cmd_doctor.c: vmhctl doctor (SPEC §11): every dependency checked with the configured
 * credentials, one line each with what to do when it fails: Kafka and the five topics, Redis and
 * its persistence, EspoCRM's key, entity set-up (worker/preflight), Message permission and
 * webhooks, Advoware's token and Rechtsformen, ADVOWARE_TZ. The verdicts are doctor.h's. */
#include "cmd.h"

#include <string.h>

#include "doctor.h"
#include "synctime.h"
#include "util.h"

#define KAFKA_TIMEOUT_MS 10000
#define MAX_LINES        12

struct doc {
    struct ctl *c;
    struct doctor_line lines[MAX_LINES];
    size_t n;
};

static struct doctor_line *next_line(struct doc *d)
{
    return d->n < MAX_LINES ? &d->lines[d->n++] : &d->lines[MAX_LINES - 1];
}

static void check_kafka(struct doc *d)
{
    char err[512];
    int counts[KAFKA_TOPIC_COUNT];
    rd_kafka_conf_t *conf = kafka_conf_new(d->c->brokers, "vmhctl", err, sizeof err);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err) : NULL;
    if (conf && !rk)
        rd_kafka_conf_destroy(conf);
    if (!rk ||
        kafka_topic_partitions(rk, d->c->prefix, counts, KAFKA_TIMEOUT_MS, err, sizeof err) != 0) {
        doctor_set(next_line(d), "kafka", DOCTOR_FAIL,
                   "check KAFKA_BROKERS and KAFKA_CFG_* (security.protocol, sasl.*), and that "
                   "this host reaches the brokers",
                   "not reachable at %s: %s", d->c->brokers, err);
    } else {
        doctor_set(next_line(d), "kafka", DOCTOR_OK, NULL, "reachable at %s", d->c->brokers);
        doctor_topics(next_line(d), d->c->prefix, counts);
    }
    if (rk)
        rd_kafka_destroy(rk);
}

static void check_redis(struct doc *d)
{
    char err[256];
    enum redis_persist aof, rdb;
    struct redis_client *r = ctl_redis(d->c, err, sizeof err);
    if (!r || redis_ping(r, err, sizeof err) != 0) {
        doctor_set(next_line(d), "redis", DOCTOR_FAIL,
                   "check REDIS_URL (host, port, password) and that this host reaches it",
                   "not reachable: %s", err);
        return;
    }
    doctor_set(next_line(d), "redis", DOCTOR_OK, NULL, "reachable");
    if (redis_persistence(r, &aof, &rdb, err, sizeof err) != 0)
        doctor_set(next_line(d), "redis persistence", DOCTOR_UNKNOWN, "run vmhctl doctor again",
                   "not asked: %s", err);
    else
        doctor_persistence(next_line(d), aof, rdb);
}

/* The webhooks as EspoCRM lists them, against WEBHOOK_PUBLIC_URL. */
static void check_webhooks(struct doc *d)
{
    char err[256];
    const char *base = cfg_str(d->c->cfg, "WEBHOOK_PUBLIC_URL");
    struct hooks h;
    if (!base || hooks_init(&h, base) != 0) {
        doctor_set(next_line(d), "espocrm webhooks", DOCTOR_FAIL,
                   "set WEBHOOK_PUBLIC_URL to vmh-producer's URL as EspoCRM reaches it",
                   "WEBHOOK_PUBLIC_URL is not set: the webhooks cannot be checked");
        return;
    }
    long status = 0;
    json_t *out = NULL;
    if (espo_webhook_list(d->c->espo, 200, 0, &status, &out, err, sizeof err) != 0 ||
        status != 200) {
        doctor_set(next_line(d), "espocrm webhooks", DOCTOR_FAIL,
                   status == 403 ? "give the sync role access to Webhooks (deploy/espocrm/role.md)"
                                 : "run vmhctl doctor again",
                   "EspoCRM did not list them (status %ld%s%s)", status, *err ? ": " : "", err);
        json_decref(out);
        return;
    }
    hooks_match(&h, json_object_get(out, "list"));
    json_decref(out);
    doctor_webhooks(next_line(d), &h);
}

static void check_espocrm(struct doc *d)
{
    char err[256];
    struct preflight pf;
    struct espo *espo = ctl_espo(d->c, err, sizeof err);
    long status = 0;
    json_t *user = NULL;
    if (!espo || espo_app_user(espo, &status, &user, err, sizeof err) != 0 || status != 200) {
        bool refused = status == 401 || status == 403;
        doctor_set(next_line(d), "espocrm", DOCTOR_FAIL,
                   refused ? "ESPOCRM_API_KEY: the API user's key (Administration → API Users)"
                           : "check ESPOCRM_URL and that this host reaches EspoCRM",
                   "%s (status %ld%s%s)", refused ? "the API key was refused" : "not reachable",
                   status, *err ? ": " : "", err);
        json_decref(user);
        return;
    }
    json_decref(user);
    doctor_set(next_line(d), "espocrm", DOCTOR_OK, NULL, "API key accepted");
    if (preflight_run(espo, &pf, err, sizeof err) != 0) {
        doctor_set(next_line(d), "espocrm entity", DOCTOR_FAIL, "run vmhctl doctor again",
                   "metadata not readable: %s", err);
        return;
    }
    doctor_setup(next_line(d), &pf);
    doctor_message(next_line(d), &pf);
    check_webhooks(d);
}

static void check_advoware(struct doc *d)
{
    char err[256];
    struct advo *a = ctl_advo(d->c, err, sizeof err);
    if (!a || advo_token_check(a, err, sizeof err) != 0) {
        doctor_set(next_line(d), "advoware token", DOCTOR_FAIL,
                   "check ADVOWARE_TOKEN_URL (or ADVOWARE_URL), ADVOWARE_APP_ID, ADVOWARE_API_KEY, "
                   "ADVOWARE_KANZLEI, ADVOWARE_DATABASE, ADVOWARE_USER, ADVOWARE_PASSWORD",
                   "not obtained: %s", err);
        return;
    }
    doctor_set(next_line(d), "advoware token", DOCTOR_OK, NULL, "obtained");
    advo_rechtsformen_forget(); /* ask Advoware now, not a cache */
    if (advo_rechtsform_allowed(a, "\x01vmhctl", err, sizeof err) < 0)
        doctor_set(next_line(d), "advoware data", DOCTOR_FAIL,
                   "check ADVOWARE_URL and the Advoware user's rights",
                   "Rechtsformen not readable: %s", err);
    else
        doctor_set(next_line(d), "advoware data", DOCTOR_OK, NULL, "Rechtsformen readable");
}

static void check_zone(struct doc *d)
{
    const char *tz = cfg_str(d->c->cfg, "ADVOWARE_TZ");
    if (st_zone_known(tz))
        doctor_set(next_line(d), "advoware time zone", DOCTOR_OK, NULL, "ADVOWARE_TZ %s known", tz);
    else
        doctor_set(next_line(d), "advoware time zone", DOCTOR_FAIL,
                   "set ADVOWARE_TZ to the zone of Advoware's server, e.g. Europe/Berlin (and "
                   "install tzdata)",
                   "ADVOWARE_TZ \"%.100s\" is not a known time zone: times would be read as UTC",
                   tz ? tz : "");
}

int cmd_doctor(struct ctl *c, int argc, char **argv)
{
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "vmhctl doctor: takes no arguments\n");
        return CTL_USAGE;
    }
    struct doc d = {.c = c};
    check_kafka(&d);
    check_redis(&d);
    check_espocrm(&d);
    check_advoware(&d);
    check_zone(&d);
    json_t *lines = json_array();
    size_t failed = 0;
    for (size_t i = 0; i < d.n; i++) {
        failed += d.lines[i].v == DOCTOR_FAIL;
        if (!c->json)
            doctor_print(c->out, &d.lines[i]);
        json_array_append_new(lines, doctor_json(&d.lines[i]));
    }
    ctl_say(c, "%s\n",
            failed ? "Problems found: fix the FAIL lines, then run vmhctl doctor again."
                   : "Everything vmh-sync depends on answered as it should.");
    ctl_emit(c, json_pack("{s:o,s:I}", "checks", lines, "failed", (json_int_t)failed));
    return failed ? CTL_PROBLEM : CTL_OK;
}
