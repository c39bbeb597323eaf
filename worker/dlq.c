/* dlq.c: dead letters of vmh-worker's runtime (SPEC §2): a message that is not JSON, lacks a
 * string entityId or has an unknown "v" goes unchanged to <prefix>.dlq with the headers error,
 * topic, partition and offset; its offset is done once Kafka holds it, so a poison message never
 * blocks its partition. The runtime owns the producer (rt->prod); this file owns the dead
 * letters on their way (freed on delivery or by dlq__destroy). */
#include "runtime_int.h"

#include "kafka.h"
#include "log.h"
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A poison message on its way to the DLQ; its offset is done once Kafka holds it. */
struct dlq_item {
    struct dlq_item *next;
    struct wk_part *part;
    int64_t offset;
    char *key, *value;
    size_t keylen, valuelen;
    char error[200];
};

static void dlq_free(struct dlq_item *d)
{
    free(d->key);
    free(d->value);
    free(d);
}

static void dlq_produce(struct wk_runtime *rt, struct dlq_item *d)
{
    char pstr[16], ostr[24];
    snprintf(pstr, sizeof pstr, "%" PRId32, d->part->partition);
    snprintf(ostr, sizeof ostr, "%" PRId64, d->offset);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rt->prod, RD_KAFKA_V_TOPIC(rt->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(d->key, d->keylen), RD_KAFKA_V_VALUE(d->value, d->valuelen),
        RD_KAFKA_V_HEADER("error", d->error, -1), RD_KAFKA_V_HEADER("topic", d->part->topic, -1),
        RD_KAFKA_V_HEADER("partition", pstr, -1), RD_KAFKA_V_HEADER("offset", ostr, -1),
        RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (err) { /* queue full or similar: the poll loop tries again */
        d->next = rt->dlq_retry;
        rt->dlq_retry = d;
    }
}

void dlq__send(struct wk_runtime *rt, struct wk_part *p, const rd_kafka_message_t *rkm,
               const char *why)
{
    struct dlq_item *d = calloc(1, sizeof *d);
    if (!d || !(d->key = malloc(rkm->key_len + 1)) || !(d->value = malloc(rkm->len + 1))) {
        log_error("out of memory for a dead letter");
        abort();
    }
    if (rkm->key_len)
        memcpy(d->key, rkm->key, rkm->key_len);
    if (rkm->len)
        memcpy(d->value, rkm->payload, rkm->len);
    d->keylen = rkm->key_len;
    d->valuelen = rkm->len;
    d->part = p;
    d->offset = rkm->offset;
    snprintf(d->error, sizeof d->error, "%s", why);
    log_warn("poison message to the dead-letter topic", LOG_STR("topic", p->topic),
             LOG_INT("partition", p->partition), LOG_INT("offset", rkm->offset),
             LOG_STR("error", why));
    dlq_produce(rt, d);
}

static void dlq_retry_all(struct wk_runtime *rt)
{
    struct dlq_item *d = rt->dlq_retry;
    rt->dlq_retry = NULL;
    while (d) {
        struct dlq_item *next = d->next;
        dlq_produce(rt, d);
        d = next;
    }
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct wk_runtime *rt = opaque;
    struct dlq_item *d = rkm->_private;
    (void)rk;
    if (rkm->err) {
        log_warn("dead letter not delivered; retrying",
                 LOG_STR("error", rd_kafka_err2str(rkm->err)));
        d->next = rt->dlq_retry;
        rt->dlq_retry = d;
        return;
    }
    metric_inc(rt->m.dlq);
    consumer__part_done(rt, d->part, d->offset);
    dlq_free(d);
}

int dlq__start(struct wk_runtime *rt)
{
    char err[512];
    rd_kafka_conf_t *conf = kafka_producer_conf_new(cfg_str(rt->cfg, "KAFKA_BROKERS"),
                                                    "vmh-worker-dlq", err, sizeof err);
    if (!conf)
        goto conf_err;
    rd_kafka_conf_set_opaque(conf, rt);
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
    rt->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rt->prod) {
        rd_kafka_conf_destroy(conf);
        goto conf_err;
    }
    return 0;
conf_err:
    log_error("kafka set-up failed", LOG_STR("error", err));
    return -1;
}

void dlq__poll(struct wk_runtime *rt)
{
    rd_kafka_poll(rt->prod, 0);
    dlq_retry_all(rt);
}

void dlq__flush(struct wk_runtime *rt, int timeout_ms)
{
    rd_kafka_flush(rt->prod, timeout_ms);
    rd_kafka_poll(rt->prod, 0);
}

void dlq__destroy(struct wk_runtime *rt)
{
    if (rt->prod)
        rd_kafka_destroy(rt->prod);
    while (rt->dlq_retry) {
        struct dlq_item *d = rt->dlq_retry;
        rt->dlq_retry = d->next;
        consumer__part_unref(rt, d->part);
        dlq_free(d);
    }
}
