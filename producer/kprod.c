/* kprod.c: librdkafka producer with delivery reports on the libuv loop (see kprod.h). */
#include "kprod.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct kprod {
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    char prefix[200];
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer; /* a safety net: polls even if a wake-up was missed */
    int handles;
    struct metric *produced, *failed;
};

/* One message in flight: what to call when Kafka answers. */
struct kprod_msg {
    kprod_delivery_fn fn;
    void *opaque;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *ud)
{
    (void)rk;
    struct kprod *p = ud;
    struct kprod_msg *km = m->_private;
    if (!km)
        return;
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        metric_inc(p->produced, topic);
    } else {
        metric_inc(p->failed, topic);
        log_warn("kafka delivery failed", LOG_STR("topic", topic),
                 LOG_STR("error", rd_kafka_err2str(m->err)));
    }
    if (km->fn)
        km->fn(km->opaque, m->err);
    free(km);
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *ud)
{
    (void)rk;
    (void)ud;
    log_warn("kafka error", LOG_STR("error", rd_kafka_err2name((rd_kafka_resp_err_t)err)),
             LOG_STR("reason", reason));
}

static void drain(struct kprod *p)
{
    char buf[256];
    while (read(p->pipefd[0], buf, sizeof buf) > 0) {
    }
    while (rd_kafka_poll(p->rk, 0) > 0) {
    }
}

static void on_wake(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    drain(h->data);
}

static void on_tick(uv_timer_t *t)
{
    drain(t->data);
}

struct kprod *kprod_new(uv_loop_t *loop, const char *brokers, const char *topic_prefix,
                        struct metrics *reg, char *err, size_t errlen)
{
    char errstr[512];
    struct kprod *p = calloc(1, sizeof *p);
    rd_kafka_conf_t *conf = NULL;
    if (!p) {
        util_err(err, errlen, "out of memory");
        return NULL;
    }
    p->pipefd[0] = p->pipefd[1] = -1;
    snprintf(p->prefix, sizeof p->prefix, "%s", topic_prefix);
    if (!(conf = kafka_producer_conf_new(brokers, "vmh-producer", err, errlen)))
        goto err;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    if (!(p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        util_err(err, errlen, "kafka producer: %s", errstr);
        goto err; /* conf is still ours */
    }
    conf = NULL; /* owned by rk now */
    if (pipe2(p->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
        util_err(err, errlen, "pipe: %s", strerror(errno));
        goto err;
    }
    p->mainq = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(p->mainq, p->pipefd[1], "k", 1);
    uv_poll_init(loop, &p->poll, p->pipefd[0]);
    uv_timer_init(loop, &p->timer);
    p->poll.data = p->timer.data = p;
    p->handles = 2;
    uv_poll_start(&p->poll, UV_READABLE, on_wake);
    uv_timer_start(&p->timer, on_tick, 100, 100);
    p->produced = metrics_counter(reg, "vmh_messages_produced_total",
                                  "Messages acknowledged by Kafka, by topic.", "topic");
    p->failed = metrics_counter(reg, "vmh_messages_failed_total",
                                "Messages Kafka did not acknowledge, by topic.", "topic");
    for (int k = KAFKA_TOPIC_CREATE; k <= KAFKA_TOPIC_SYNC_CHECK; k++) { /* samples from start */
        char topic[256];
        if (kafka_topic_name(topic_prefix, (enum kafka_topic_kind)k, topic, sizeof topic) == 0) {
            metric_touch(p->produced, topic);
            metric_touch(p->failed, topic);
        }
    }
    return p;
err:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    if (p->pipefd[0] >= 0) {
        close(p->pipefd[0]);
        close(p->pipefd[1]);
    }
    free(p);
    return NULL;
}

int kprod_produce(struct kprod *p, enum kafka_topic_kind topic, const char *key, const char *value,
                  size_t len, kprod_delivery_fn fn, void *opaque, char *err, size_t errlen)
{
    char name[256];
    if (kafka_topic_name(p->prefix, topic, name, sizeof name) != 0) {
        util_err(err, errlen, "topic name too long");
        return -1;
    }
    struct kprod_msg *km = malloc(sizeof *km);
    if (!km) {
        util_err(err, errlen, "out of memory");
        return -1;
    }
    *km = (struct kprod_msg){.fn = fn, .opaque = opaque};
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(name), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(km), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(km);
        util_err(err, errlen, "kafka: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int kprod_check_topics(struct kprod *p, int timeout_ms)
{
    return kafka_topics_check_or_exit(p->rk, "vmh-producer", p->prefix, timeout_ms);
}

bool kprod_probe(struct kprod *p, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms);
    if (md)
        rd_kafka_metadata_destroy(md);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void on_closed(uv_handle_t *h)
{
    struct kprod *p = h->data;
    if (--p->handles > 0)
        return;
    close(p->pipefd[0]);
    close(p->pipefd[1]);
    free(p);
}

void kprod_close(struct kprod *p, int flush_ms)
{
    if (!p)
        return;
    rd_kafka_flush(p->rk, flush_ms); /* serves delivery callbacks on this thread */
    /* What is still unsent fails now, while its callbacks' owners are alive. */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(p->rk, 1000);
    drain(p);
    rd_kafka_queue_destroy(p->mainq);
    rd_kafka_destroy(p->rk);
    uv_close((uv_handle_t *)&p->poll, on_closed);
    uv_close((uv_handle_t *)&p->timer, on_closed);
}
