/* kafka.h: librdkafka helpers shared by producer, worker and tools (SPEC §1.1, §2, §9):
 * topic names, configuration objects with the project's fixed settings plus KAFKA_CFG_*
 * passthrough, and librdkafka's logs routed into log.h.
 *
 * Ownership follows librdkafka: a conf returned here belongs to the caller until it is handed
 * to rd_kafka_new(), which takes it on success. */
#ifndef VMH_KAFKA_H
#define VMH_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

enum kafka_topic_kind {
    KAFKA_TOPIC_CREATE = 0,
    KAFKA_TOPIC_UPDATE,
    KAFKA_TOPIC_DELETE,
    KAFKA_TOPIC_SYNC_CHECK,
    KAFKA_TOPIC_DLQ,
    KAFKA_TOPIC_COUNT
};

/* "create", "update", "delete", "sync_check", "dlq"; NULL for an unknown kind. */
const char *kafka_topic_suffix(enum kafka_topic_kind kind);

/* "<prefix>.<suffix>" into buf. Returns 0, or -1 if it does not fit. */
int kafka_topic_name(const char *prefix, enum kafka_topic_kind kind, char *buf, size_t buflen);

/* Sets name=value on conf; -1 with err (librdkafka's message) on an unknown property or bad
 * value. For a secret-looking name (log_key_is_secret) the value is never repeated in err. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t errlen);

/* Routes librdkafka's logs of every handle made from conf into log.h (syslog levels 0-3 error,
 * 4 warn, 5-6 info, 7 debug; keys "facility" and "client"). For handles that need no other
 * project setting, such as the mock cluster's. */
void kafka_conf_set_logger(rd_kafka_conf_t *conf);

/* A new conf with bootstrap.servers = brokers, client.id (NULL keeps librdkafka's default),
 * librdkafka logs into log.h, and every KAFKA_CFG_* variable of the environment applied last
 * (so operators can override anything). NULL with err on a bad setting; an error from a
 * KAFKA_CFG_* variable names the variable. */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *client_id, char *err,
                                size_t errlen);

/* The producer settings of SPEC §2 (idempotence, acks=all, murmur2_random, small linger) on top
 * of kafka_conf_new(). */
rd_kafka_conf_t *kafka_producer_conf_new(const char *brokers, const char *client_id, char *err,
                                         size_t errlen);

/* The consumer settings of SPEC §2 (group.id, range assignor, no auto offset store, auto
 * commit) on top of kafka_conf_new(). */
rd_kafka_conf_t *kafka_consumer_conf_new(const char *brokers, const char *group_id,
                                         const char *client_id, char *err, size_t errlen);

/* The value the design fixes for librdkafka property name (SPEC §1.1, §2: idempotence, acks,
 * the partitioner, the range assignor, offsets stored only when done, auto commit; the brokers
 * and group come from their own variables), or NULL when a KAFKA_CFG_* may set it. */
const char *kafka_fixed_setting(const char *name);

/* Whether the topics of prefix exist with one partition count (SPEC §1.1: an entity keeps its
 * partition number in every topic). counts as kafka_topic_partitions gives them. 0, or -1 with
 * err naming the topics and their counts. Pure. */
int kafka_topics_equal(const int counts[KAFKA_TOPIC_COUNT], const char *prefix, char *err,
                       size_t errlen);
/* The start-up check of the five topics: asks rk (waiting at most timeout_ms) and exits the
 * process with 2, one line on stderr naming the topics, when they are missing or unequal. 1
 * when they are right, 0 when no broker answered (Kafka may come later: check again). */
int kafka_topics_check_or_exit(rd_kafka_t *rk, const char *prog, const char *prefix,
                               int timeout_ms);

/* The partition count of each of the five topics of prefix (SPEC §1.1: all equal), from one
 * metadata request of rk within timeout_ms: counts[kind] = partitions, 0 when the topic does not
 * exist. 0, or -1 with err when no broker answered. */
int kafka_topic_partitions(rd_kafka_t *rk, const char *prefix, int counts[KAFKA_TOPIC_COUNT],
                           int timeout_ms, char *err, size_t errlen);

#endif
