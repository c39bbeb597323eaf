/* kafka.c: librdkafka helpers (SPEC §1.1, §2, §9): topic names, configuration objects carrying
 * the project's fixed producer/consumer settings with the KAFKA_CFG_* passthrough applied last,
 * and librdkafka's logs routed into log.h.
 *
 * A conf returned here belongs to the caller (rd_kafka_conf_destroy) until rd_kafka_new() takes
 * it on success. Nothing in this file keeps state of its own. */
#include "kafka.h"

#include "util.h"

#include "cfg.h"
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One fixed setting of SPEC §2. */
struct kafka_setting {
    const char *name;
    const char *value;
};

static const struct kafka_setting producer_settings[] = {
    {"enable.idempotence", "true"},
    {"acks", "all"},
    /* The Java clients' key → partition mapping: an entity lands in the same partition number
     * of every topic (SPEC §1.1). */
    {"partitioner", "murmur2_random"},
    {"linger.ms", "1"}, /* a webhook answer waits for the ack: keep it short */
};

static const struct kafka_setting consumer_settings[] = {
    /* One worker owns partition p of every topic (SPEC §1.1). */
    {"partition.assignment.strategy", "range"},
    /* Offsets are stored only once a message is done (SPEC §4.3); auto commit sends them. */
    {"enable.auto.offset.store", "false"},
    {"enable.auto.commit", "true"},
    {"auto.offset.reset", "earliest"},
    /* The worker's backpressure stops taking messages; librdkafka then stops fetching once a
     * partition's prefetch holds this many (default 100 000: memory, not speed). */
    {"queued.min.messages", "1000"},
    /* Consumer lag per partition comes from librdkafka's statistics. */
    {"statistics.interval.ms", "5000"},
    /* A worker killed without leaving the group (OOM kill, kill -9, a lost node) holds its
     * partitions, and every rebalance of the group, until the group drops it: librdkafka's 45 s
     * default did so twice per kill in the chaos run. 10 s (a heartbeat every 3 s; Kafka's
     * group.min.session.timeout.ms is 6 s) is near LOCK_TTL_MS, which bounds the dead run's
     * lock. Heartbeats come from librdkafka's own thread: long syncs do not miss them. */
    {"session.timeout.ms", "10000"},
    {"heartbeat.interval.ms", "3000"},
};

#define KAFKA_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

const char *kafka_fixed_setting(const char *name)
{
    /* what ordering and offsets depend on (SPEC §1.1, §2); the rest of both lists are tunables
     * an operator may change through KAFKA_CFG_* */
    static const char *const design[] = {"enable.idempotence",
                                         "acks",
                                         "partitioner",
                                         "partition.assignment.strategy",
                                         "enable.auto.offset.store",
                                         "enable.auto.commit"};
    for (size_t d = 0; d < KAFKA_ARRAY_LEN(design); d++) {
        if (strcmp(name, design[d]) != 0)
            continue;
        for (size_t i = 0; i < KAFKA_ARRAY_LEN(producer_settings); i++)
            if (strcmp(name, producer_settings[i].name) == 0)
                return producer_settings[i].value;
        for (size_t i = 0; i < KAFKA_ARRAY_LEN(consumer_settings); i++)
            if (strcmp(name, consumer_settings[i].name) == 0)
                return consumer_settings[i].value;
    }
    if (strcmp(name, "bootstrap.servers") == 0)
        return "(KAFKA_BROKERS)";
    if (strcmp(name, "group.id") == 0)
        return "(KAFKA_GROUP_ID)";
    return NULL;
}

/* ---- topics ---------------------------------------------------------------------------- */

const char *kafka_topic_suffix(enum kafka_topic_kind kind)
{
    static const char *const suffixes[KAFKA_TOPIC_COUNT] = {
        [KAFKA_TOPIC_CREATE] = "create", [KAFKA_TOPIC_UPDATE] = "update",
        [KAFKA_TOPIC_DELETE] = "delete", [KAFKA_TOPIC_SYNC_CHECK] = "sync_check",
        [KAFKA_TOPIC_DLQ] = "dlq",
    };
    if ((unsigned)kind >= KAFKA_TOPIC_COUNT)
        return NULL;
    return suffixes[kind];
}

int kafka_topic_name(const char *prefix, enum kafka_topic_kind kind, char *buf, size_t buflen)
{
    const char *suffix = kafka_topic_suffix(kind);
    if (!buf || buflen == 0)
        return -1;
    buf[0] = '\0';
    if (!prefix || !suffix)
        return -1;
    int n = snprintf(buf, buflen, "%s.%s", prefix, suffix);
    if (n < 0 || (size_t)n >= buflen) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- logging --------------------------------------------------------------------------- */

/* librdkafka logs with syslog levels; <syslog.h> is not included because its LOG_* macros
 * would clash with log.h's names. 0-3 emerg..err, 4 warning, 5-6 notice/info, 7 debug. */
static enum log_level kafka_log_level(int syslog_level)
{
    if (syslog_level <= 3)
        return LOG_ERROR;
    if (syslog_level == 4)
        return LOG_WARN;
    if (syslog_level <= 6)
        return LOG_INFO;
    return LOG_DEBUG;
}

/* Runs on librdkafka's own threads (no log.queue): log_write() is thread-safe. KAFKA_CFG_*
 * applies to every handle of a binary, so a consumer property on the worker's DLQ producer is
 * expected, not worth a warning. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (fac && strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this"))
        level = 7;
    log_write(kafka_log_level(level), buf, LOG_STR("facility", fac),
              LOG_STR("client", rk ? rd_kafka_name(rk) : NULL), LOG_END);
}

void kafka_conf_set_logger(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
}

/* ---- configuration --------------------------------------------------------------------- */

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t errlen)
{
    char errstr[512];

    util_err_reset(err, errlen);
    if (!conf || !name || !value) {
        util_err(err, errlen, "kafka: conf, name and value are required");
        return -1;
    }
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr);
    if (res == RD_KAFKA_CONF_OK)
        return 0;
    /* librdkafka quotes the rejected value: keep secrets out of error lines (SPEC §10). */
    if (res == RD_KAFKA_CONF_INVALID && log_key_is_secret(name))
        util_err(err, errlen, "Invalid value for configuration property \"%s\" (value not shown)",
                 name);
    else
        util_err(err, errlen, "%s", errstr);
    return -1;
}

/* The passthrough's state for cfg_foreach_kafka(). */
struct kafka_passthrough {
    rd_kafka_conf_t *conf;
    char *err;
    size_t errlen;
};

/* "security.protocol" → "KAFKA_CFG_SECURITY_PROTOCOL", the variable it came from. */
static void kafka_env_name(const char *prop, char *buf, size_t buflen)
{
    size_t n = (size_t)snprintf(buf, buflen, "KAFKA_CFG_");
    for (; *prop && n + 1 < buflen; prop++, n++)
        buf[n] = *prop == '.' ? '_' : (char)toupper((unsigned char)*prop);
    buf[n] = '\0';
}

static int kafka_passthrough_one(const char *name, const char *value, void *ud)
{
    struct kafka_passthrough *pt = ud;
    char detail[512], var[300];

    if (kafka_conf_set(pt->conf, name, value, detail, sizeof detail) == 0)
        return 0;
    kafka_env_name(name, var, sizeof var);
    util_err(pt->err, pt->errlen, "%s: %s", var, detail);
    return -1;
}

/* bootstrap.servers, client.id and the logger: the part every conf shares. */
static rd_kafka_conf_t *kafka_conf_base(const char *brokers, const char *client_id, char *err,
                                        size_t errlen)
{
    rd_kafka_conf_t *conf = NULL;

    util_err_reset(err, errlen);
    if (!brokers || !*brokers) {
        util_err(err, errlen, "kafka: no bootstrap servers given");
        return NULL;
    }
    conf = rd_kafka_conf_new();
    if (kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen) != 0)
        goto err_conf;
    if (client_id && kafka_conf_set(conf, "client.id", client_id, err, errlen) != 0)
        goto err_conf;
    kafka_conf_set_logger(conf);
    return conf;

err_conf:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Applies the fixed settings, then every KAFKA_CFG_* variable. Takes conf: on failure it is
 * destroyed and NULL returned. */
static rd_kafka_conf_t *kafka_conf_finish(rd_kafka_conf_t *conf,
                                          const struct kafka_setting *settings, size_t nsettings,
                                          char *err, size_t errlen)
{
    struct kafka_passthrough pt = {.conf = conf, .err = err, .errlen = errlen};

    for (size_t i = 0; i < nsettings; i++) {
        if (kafka_conf_set(conf, settings[i].name, settings[i].value, err, errlen) != 0)
            goto err_conf;
    }
    if (cfg_foreach_kafka(kafka_passthrough_one, &pt, err, errlen) != 0)
        goto err_conf;
    return conf;

err_conf:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *client_id, char *err,
                                size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_base(brokers, client_id, err, errlen);
    if (!conf)
        return NULL;
    return kafka_conf_finish(conf, NULL, 0, err, errlen);
}

rd_kafka_conf_t *kafka_producer_conf_new(const char *brokers, const char *client_id, char *err,
                                         size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_base(brokers, client_id, err, errlen);
    if (!conf)
        return NULL;
    return kafka_conf_finish(conf, producer_settings, KAFKA_ARRAY_LEN(producer_settings), err,
                             errlen);
}

rd_kafka_conf_t *kafka_consumer_conf_new(const char *brokers, const char *group_id,
                                         const char *client_id, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = NULL;

    util_err_reset(err, errlen);
    if (!group_id || !*group_id) {
        util_err(err, errlen, "kafka: no consumer group id given");
        return NULL;
    }
    conf = kafka_conf_base(brokers, client_id, err, errlen);
    if (!conf)
        return NULL;
    if (kafka_conf_set(conf, "group.id", group_id, err, errlen) != 0)
        goto err_conf;
    return kafka_conf_finish(conf, consumer_settings, KAFKA_ARRAY_LEN(consumer_settings), err,
                             errlen);

err_conf:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- topics on the cluster ---------------------------------------------------------------- */

int kafka_topics_equal(const int counts[KAFKA_TOPIC_COUNT], const char *prefix, char *err,
                       size_t errlen)
{
    char list[512] = "";
    size_t len = 0;
    bool equal = true;
    for (int k = 0; k < KAFKA_TOPIC_COUNT; k++) {
        char name[256];
        kafka_topic_name(prefix, (enum kafka_topic_kind)k, name, sizeof name);
        equal &= counts[k] > 0 && counts[k] == counts[0];
        int n = counts[k] > 0 ? snprintf(list + len, sizeof list - len, "%s%s %d", len ? ", " : "",
                                         name, counts[k])
                              : snprintf(list + len, sizeof list - len, "%s%s missing",
                                         len ? ", " : "", name);
        if (n > 0 && (size_t)n < sizeof list - len)
            len += (size_t)n;
    }
    if (equal)
        return 0;
    util_err(err, errlen,
             "the five topics must exist with one partition count (SPEC §1.1): %s; create them "
             "(deploy/k8s topics Job, docker-compose kafka-topics)",
             list);
    return -1;
}

int kafka_topics_check_or_exit(rd_kafka_t *rk, const char *prog, const char *prefix, int timeout_ms)
{
    int counts[KAFKA_TOPIC_COUNT];
    char err[700];
    if (kafka_topic_partitions(rk, prefix, counts, timeout_ms, err, sizeof err) != 0)
        return 0;
    if (kafka_topics_equal(counts, prefix, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        fflush(stderr);
        _exit(2); /* a configuration error at start: nothing to drain or hand back */
    }
    log_info("Kafka topics checked", LOG_INT("partitions", counts[0]));
    return 1;
}

int kafka_topic_partitions(rd_kafka_t *rk, const char *prefix, int counts[KAFKA_TOPIC_COUNT],
                           int timeout_ms, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    char name[256];

    util_err_reset(err, errlen);
    for (int k = 0; k < KAFKA_TOPIC_COUNT; k++)
        counts[k] = 0;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_err(err, errlen, "kafka metadata: %s", rd_kafka_err2str(e));
        return -1;
    }
    for (int k = 0; k < KAFKA_TOPIC_COUNT; k++) {
        if (kafka_topic_name(prefix, (enum kafka_topic_kind)k, name, sizeof name) != 0)
            continue;
        for (int t = 0; t < md->topic_cnt; t++) {
            if (strcmp(md->topics[t].topic, name) == 0 &&
                md->topics[t].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                counts[k] = md->topics[t].partition_cnt;
        }
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}
