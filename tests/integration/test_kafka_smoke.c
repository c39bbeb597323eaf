/* test_kafka_smoke.c: common/kafka.c against kafka-mock (SPEC §1.1, §2, §8, §9). Keyed
 * messages produced with the project's producer settings reach a consumer group member intact;
 * one key lands on the same partition number in every topic, by the Java clients' murmur2
 * mapping; KAFKA_CFG_* variables reach the conf last; kafka-mock's command line. */
#include "harness.h"
#include "kafka.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARTITIONS   12
#define TOPIC_PREFIX "vmh.beteiligte"
#define DEADLINE_MS  20000
#define MAX_MESSAGES 64

/* ---- helpers --------------------------------------------------------------------------- */

/* A conf property as text ("" if unknown), read back the way librdkafka will see it. */
static const char *conf_get(rd_kafka_conf_t *conf, const char *name, char *buf, size_t buflen)
{
    size_t size = buflen;
    if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK)
        buf[0] = '\0';
    return buf;
}

/* Every KAFKA_CFG_* variable a test sets; unset again by the teardown. */
static const char *const test_env_vars[] = {
    "KAFKA_CFG_STATISTICS_INTERVAL_MS", "KAFKA_CFG_LINGER_MS", "KAFKA_CFG_AUTO_OFFSET_RESET",
    "KAFKA_CFG_NO_SUCH_PROPERTY",       "KAFKA_CFG_ACKS",
};

static int unset_test_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof test_env_vars / sizeof test_env_vars[0]; i++)
        unsetenv(test_env_vars[i]);
    return 0;
}

/* ---- topic names ----------------------------------------------------------------------- */

static void test_topic_names(void **state)
{
    static const struct {
        enum kafka_topic_kind kind;
        const char *name;
    } cases[] = {
        {KAFKA_TOPIC_CREATE, "vmh.beteiligte.create"},
        {KAFKA_TOPIC_UPDATE, "vmh.beteiligte.update"},
        {KAFKA_TOPIC_DELETE, "vmh.beteiligte.delete"},
        {KAFKA_TOPIC_SYNC_CHECK, "vmh.beteiligte.sync_check"},
        {KAFKA_TOPIC_DLQ, "vmh.beteiligte.dlq"},
    };
    char buf[64];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(kafka_topic_name(TOPIC_PREFIX, cases[i].kind, buf, sizeof buf), 0);
        assert_string_equal(buf, cases[i].name);
    }
    /* "vmh.beteiligte.dlq" needs 19 bytes. */
    assert_int_equal(kafka_topic_name(TOPIC_PREFIX, KAFKA_TOPIC_DLQ, buf, 18), -1);
    assert_string_equal(buf, "");
    assert_int_equal(kafka_topic_name(TOPIC_PREFIX, KAFKA_TOPIC_DLQ, buf, 19), 0);
    assert_null(kafka_topic_suffix(KAFKA_TOPIC_COUNT));
}

/* ---- configuration --------------------------------------------------------------------- */

static void test_fixed_settings(void **state)
{
    static const struct {
        bool consumer;
        const char *name, *value;
    } cases[] = {
        {false, "bootstrap.servers", "127.0.0.1:9"},
        {false, "client.id", "smoke"},
        {false, "enable.idempotence", "true"},
        {false, "acks", "-1"}, /* librdkafka's spelling of "all" */
        {false, "partitioner", "murmur2_random"},
        {false, "linger.ms", "1"},
        {true, "group.id", "smoke-group"},
        {true, "partition.assignment.strategy", "range"},
        {true, "enable.auto.offset.store", "false"},
        {true, "enable.auto.commit", "true"},
        {true, "auto.offset.reset", "smallest"}, /* librdkafka's spelling of "earliest" */
        {true, "session.timeout.ms", "10000"},
        {true, "heartbeat.interval.ms", "3000"},
    };
    char err[512], buf[256];
    (void)state;

    rd_kafka_conf_t *producer = kafka_producer_conf_new("127.0.0.1:9", "smoke", err, sizeof err);
    assert_non_null(producer);
    rd_kafka_conf_t *consumer =
        kafka_consumer_conf_new("127.0.0.1:9", "smoke-group", "smoke", err, sizeof err);
    assert_non_null(consumer);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rd_kafka_conf_t *conf = cases[i].consumer ? consumer : producer;
        assert_string_equal(conf_get(conf, cases[i].name, buf, sizeof buf), cases[i].value);
    }
    rd_kafka_conf_destroy(producer);
    rd_kafka_conf_destroy(consumer);
}

static void test_passthrough_reaches_conf(void **state)
{
    char err[512], buf[256];
    (void)state;

    setenv("KAFKA_CFG_STATISTICS_INTERVAL_MS", "1234", 1);
    rd_kafka_conf_t *conf = kafka_conf_new("127.0.0.1:9", "smoke", err, sizeof err);
    assert_non_null(conf);
    assert_string_equal(conf_get(conf, "statistics.interval.ms", buf, sizeof buf), "1234");
    rd_kafka_conf_destroy(conf);
}

/* Operators can override the project's own settings: the passthrough comes last. */
static void test_passthrough_overrides_fixed_settings(void **state)
{
    char err[512], buf[256];
    (void)state;

    setenv("KAFKA_CFG_LINGER_MS", "50", 1);
    setenv("KAFKA_CFG_AUTO_OFFSET_RESET", "latest", 1);
    rd_kafka_conf_t *producer = kafka_producer_conf_new("127.0.0.1:9", "smoke", err, sizeof err);
    assert_non_null(producer);
    assert_string_equal(conf_get(producer, "linger.ms", buf, sizeof buf), "50");
    rd_kafka_conf_destroy(producer);

    rd_kafka_conf_t *consumer =
        kafka_consumer_conf_new("127.0.0.1:9", "smoke-group", "smoke", err, sizeof err);
    assert_non_null(consumer);
    assert_string_equal(conf_get(consumer, "auto.offset.reset", buf, sizeof buf), "largest");
    rd_kafka_conf_destroy(consumer);
}

static void test_passthrough_unknown_property_is_named(void **state)
{
    char err[512];
    (void)state;

    setenv("KAFKA_CFG_NO_SUCH_PROPERTY", "1", 1);
    assert_null(kafka_conf_new("127.0.0.1:9", "smoke", err, sizeof err));
    assert_non_null(strstr(err, "KAFKA_CFG_NO_SUCH_PROPERTY"));
    assert_null(kafka_producer_conf_new("127.0.0.1:9", "smoke", err, sizeof err));
    assert_non_null(strstr(err, "KAFKA_CFG_NO_SUCH_PROPERTY"));
}

static void test_passthrough_invalid_value_is_named(void **state)
{
    char err[512];
    (void)state;

    setenv("KAFKA_CFG_ACKS", "sometimes", 1);
    assert_null(kafka_producer_conf_new("127.0.0.1:9", "smoke", err, sizeof err));
    assert_non_null(strstr(err, "KAFKA_CFG_ACKS"));
}

static void test_conf_requires_brokers_and_group(void **state)
{
    char err[512];
    (void)state;

    assert_null(kafka_conf_new("", "smoke", err, sizeof err));
    assert_string_not_equal(err, "");
    assert_null(kafka_consumer_conf_new("127.0.0.1:9", NULL, "smoke", err, sizeof err));
    assert_string_not_equal(err, "");
}

/* ---- produce and consume through kafka-mock -------------------------------------------- */

/* One produced message and what became of it. */
struct smoke_msg {
    enum kafka_topic_kind kind;
    char topic[64];
    char key[64];
    char value[256];
    bool delivered;
    rd_kafka_resp_err_t dr_err;
    int32_t dr_partition;
    bool received;
};

struct smoke {
    struct th_kafka kafka;
    bool kafka_started;
    rd_kafka_t *producer;
    rd_kafka_t *consumer;
    struct smoke_msg msgs[MAX_MESSAGES];
    size_t nmsgs;
};

/* Keys with a known Java murmur2 hash (librdkafka's rdmurmur2.c test vectors, taken from the
 * Java client) pin the mapping to what a Java producer would pick. */
static const struct {
    const char *key;
    uint32_t java_murmur2;
} java_keys[] = {
    {"kafka", 0xd067cf64},
    {"giberish123456789", 0x8f552b0c},
    {"1234", 0x9fc97b14},
    {"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c},
};
#define ENTITY_KEYS 12

static const enum kafka_topic_kind smoke_topics[] = {KAFKA_TOPIC_UPDATE, KAFKA_TOPIC_SYNC_CHECK};
#define SMOKE_TOPICS (sizeof smoke_topics / sizeof smoke_topics[0])

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct smoke_msg *msg = m->_private;
    (void)rk;
    (void)opaque;
    msg->delivered = true;
    msg->dr_err = m->err;
    msg->dr_partition = m->partition;
}

static int smoke_setup(void **state)
{
    struct smoke *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    if (th_kafka_start(&s->kafka, PARTITIONS) != 0) {
        fprintf(stderr, "kafka-mock did not start\n");
        free(s);
        return -1;
    }
    *state = s;
    s->kafka_started = true;

    size_t nkeys = sizeof java_keys / sizeof java_keys[0] + ENTITY_KEYS;
    for (size_t t = 0; t < SMOKE_TOPICS; t++) {
        for (size_t i = 0; i < nkeys; i++) {
            struct smoke_msg *msg = &s->msgs[s->nmsgs++];
            char key[64];
            if (i < sizeof java_keys / sizeof java_keys[0])
                snprintf(key, sizeof key, "%s", java_keys[i].key);
            else
                snprintf(key, sizeof key, "68e4aef68d2b4fb%02zu", i);
            msg->kind = smoke_topics[t];
            msg->dr_partition = -1;
            kafka_topic_name(TOPIC_PREFIX, msg->kind, msg->topic, sizeof msg->topic);
            snprintf(msg->key, sizeof msg->key, "%s", key);
            snprintf(msg->value, sizeof msg->value,
                     "{\"v\":1,\"entityId\":\"%s\",\"event\":\"%s\",\"source\":\"cli\","
                     "\"emittedAt\":\"2026-02-08T10:30:00.123Z\"}",
                     key, kafka_topic_suffix(msg->kind));
        }
    }
    return 0;
}

static int smoke_teardown(void **state)
{
    struct smoke *s = *state;
    int rc = 0;

    if (!s)
        return 0;
    if (s->consumer) {
        rd_kafka_consumer_close(s->consumer);
        rd_kafka_destroy(s->consumer);
    }
    if (s->producer) {
        rd_kafka_flush(s->producer, 5000);
        rd_kafka_destroy(s->producer);
    }
    if (rd_kafka_wait_destroyed(5000) != 0) {
        fprintf(stderr, "librdkafka handles outlived their destroy\n");
        rc = -1;
    }
    if (s->kafka_started) {
        int code = th_kafka_stop(&s->kafka);
        if (code != 0) {
            fprintf(stderr, "kafka-mock exited with %d, not 0\n", code);
            rc = -1;
        }
    }
    free(s);
    return rc;
}

static size_t count_delivered(const struct smoke *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nmsgs; i++)
        n += s->msgs[i].delivered;
    return n;
}

static size_t count_received(const struct smoke *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nmsgs; i++)
        n += s->msgs[i].received;
    return n;
}

static void produce_all(struct smoke *s)
{
    char err[512];

    rd_kafka_conf_t *conf =
        kafka_producer_conf_new(s->kafka.bootstrap, "smoke-producer", err, sizeof err);
    assert_non_null(conf);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!s->producer)
        rd_kafka_conf_destroy(conf);
    assert_non_null(s->producer); /* on success the handle owns conf */

    for (size_t i = 0; i < s->nmsgs; i++) {
        struct smoke_msg *msg = &s->msgs[i];
        rd_kafka_resp_err_t perr = rd_kafka_producev(
            s->producer, RD_KAFKA_V_TOPIC(msg->topic), RD_KAFKA_V_KEY(msg->key, strlen(msg->key)),
            RD_KAFKA_V_VALUE(msg->value, strlen(msg->value)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(msg), RD_KAFKA_V_END);
        assert_int_equal(perr, RD_KAFKA_RESP_ERR_NO_ERROR);
    }

    long long end = th_now_ms() + DEADLINE_MS;
    while (count_delivered(s) < s->nmsgs && th_now_ms() < end)
        rd_kafka_poll(s->producer, 100);
    assert_int_equal(count_delivered(s), s->nmsgs);
    for (size_t i = 0; i < s->nmsgs; i++) {
        if (s->msgs[i].dr_err)
            fail_msg("%s key %s: %s", s->msgs[i].topic, s->msgs[i].key,
                     rd_kafka_err2str(s->msgs[i].dr_err));
        assert_in_range(s->msgs[i].dr_partition, 0, PARTITIONS - 1);
    }
}

static struct smoke_msg *find_msg(struct smoke *s, const char *topic, const void *key,
                                  size_t keylen)
{
    for (size_t i = 0; i < s->nmsgs; i++) {
        struct smoke_msg *msg = &s->msgs[i];
        if (strcmp(msg->topic, topic) == 0 && strlen(msg->key) == keylen &&
            memcmp(msg->key, key, keylen) == 0)
            return msg;
    }
    return NULL;
}

/* Checks one consumed message against what was produced; the message is destroyed first so a
 * failed assertion leaks nothing. */
static void receive_one(struct smoke *s, rd_kafka_message_t *m)
{
    if (m->err) {
        fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return;
    }
    struct smoke_msg *msg = find_msg(s, rd_kafka_topic_name(m->rkt), m->key, m->key_len);
    bool value_ok =
        msg && m->len == strlen(msg->value) && memcmp(m->payload, msg->value, m->len) == 0;
    int32_t partition = m->partition;
    rd_kafka_message_destroy(m);

    assert_non_null(msg);
    assert_true(value_ok);
    assert_false(msg->received); /* exactly once: a fresh group, idempotent producer */
    assert_int_equal(partition, msg->dr_partition);
    msg->received = true;
}

static void consume_all(struct smoke *s)
{
    char err[512];

    rd_kafka_conf_t *conf = kafka_consumer_conf_new(s->kafka.bootstrap, "smoke-group",
                                                    "smoke-consumer", err, sizeof err);
    assert_non_null(conf);
    s->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!s->consumer)
        rd_kafka_conf_destroy(conf);
    assert_non_null(s->consumer);
    rd_kafka_poll_set_consumer(s->consumer);

    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(SMOKE_TOPICS);
    for (size_t t = 0; t < SMOKE_TOPICS; t++) {
        char topic[64];
        kafka_topic_name(TOPIC_PREFIX, smoke_topics[t], topic, sizeof topic);
        rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(s->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    assert_int_equal(serr, RD_KAFKA_RESP_ERR_NO_ERROR);

    long long end = th_now_ms() + DEADLINE_MS;
    while (count_received(s) < s->nmsgs && th_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 100);
        if (m)
            receive_one(s, m);
    }
    assert_int_equal(count_received(s), s->nmsgs);
}

static void test_keyed_messages_round_trip(void **state)
{
    struct smoke *s = *state;
    size_t per_topic = s->nmsgs / SMOKE_TOPICS;
    bool used[PARTITIONS] = {false};
    int distinct = 0;

    long long t0 = th_now_ms();
    produce_all(s);
    long long t1 = th_now_ms();
    consume_all(s);
    long long t2 = th_now_ms();
    print_message("produced+delivered %zu messages in %lld ms, consumed in %lld ms\n", s->nmsgs,
                  t1 - t0, t2 - t1);

    /* Same key, same partition number in both topics; and it is the Java mapping. */
    for (size_t i = 0; i < per_topic; i++) {
        const struct smoke_msg *update = &s->msgs[i];
        const struct smoke_msg *check = &s->msgs[per_topic + i];
        assert_string_equal(update->key, check->key);
        assert_int_equal(update->dr_partition, check->dr_partition);

        int32_t expected;
        if (i < sizeof java_keys / sizeof java_keys[0])
            expected = (int32_t)((java_keys[i].java_murmur2 & 0x7fffffff) % PARTITIONS);
        else
            expected = rd_kafka_msg_partitioner_murmur2(NULL, update->key, strlen(update->key),
                                                        PARTITIONS, NULL, NULL);
        assert_int_equal(update->dr_partition, expected);
        if (!used[update->dr_partition]) {
            used[update->dr_partition] = true;
            distinct++;
        }
    }
    assert_true(distinct > 1); /* keys spread: not everything on one partition */
}

/* ---- kafka-mock's command line --------------------------------------------------------- */

static void test_kafka_mock_help(void **state)
{
    char bin[512], out[4096];
    const char *argv[] = {th_bin("kafka-mock", bin, sizeof bin), "--help", NULL};
    (void)state;

    assert_int_equal(th_run(argv, NULL, out, sizeof out, 10000), 0);
    assert_non_null(strstr(out, "--partitions"));
    assert_non_null(strstr(out, "--brokers"));
    assert_non_null(strstr(out, "--topic-prefix"));
}

static void test_kafka_mock_bad_usage(void **state)
{
    static const char *const bad[][3] = {
        {"--no-such-option", NULL, NULL},
        {"--partitions", "0", NULL},
        {"--partitions", "12x", NULL},
        {"--brokers", "-1", NULL},
        {"--partitions", NULL, NULL}, /* value missing */
        {"stray", NULL, NULL},
    };
    char bin[512], out[4096];
    (void)state;

    th_bin("kafka-mock", bin, sizeof bin);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {bin, bad[i][0], bad[i][1], NULL};
        int code = th_run(argv, NULL, out, sizeof out, 10000);
        if (code != 2)
            fail_msg("kafka-mock %s %s: exit %d, want 2; output: %s", bad[i][0],
                     bad[i][1] ? bad[i][1] : "", code, out);
        /* One line, naming the problem. */
        char *nl = strchr(out, '\n');
        assert_non_null(nl);
        assert_string_equal(nl + 1, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test_teardown(test_fixed_settings, unset_test_env),
        cmocka_unit_test_teardown(test_passthrough_reaches_conf, unset_test_env),
        cmocka_unit_test_teardown(test_passthrough_overrides_fixed_settings, unset_test_env),
        cmocka_unit_test_teardown(test_passthrough_unknown_property_is_named, unset_test_env),
        cmocka_unit_test_teardown(test_passthrough_invalid_value_is_named, unset_test_env),
        cmocka_unit_test(test_conf_requires_brokers_and_group),
        cmocka_unit_test_setup_teardown(test_keyed_messages_round_trip, smoke_setup,
                                        smoke_teardown),
        cmocka_unit_test(test_kafka_mock_help),
        cmocka_unit_test(test_kafka_mock_bad_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
