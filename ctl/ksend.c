/* ksend.c: vmh-producer's kprod used blocking, on a private loop (see ksend.h). */
#include "ksend.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "metrics.h"
#include "util.h"

/* One queued message: its delivery report lands here (on the loop thread, i.e. ours). */
struct kmsg {
    int state; /* 0 waiting, 1 acknowledged, -1 failed */
    rd_kafka_resp_err_t err;
};

struct ksend {
    uv_loop_t loop;
    struct metrics *reg; /* kprod's counters: vmh_messages_produced|failed_total{topic} */
    struct kprod *kp;
    char prefix[200];
    struct kmsg **msgs;
    size_t n, cap;
};

static void on_delivery(void *opaque, rd_kafka_resp_err_t err)
{
    struct kmsg *m = opaque;
    m->err = err;
    m->state = err == RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : -1;
}

struct ksend *ksend_new(const char *brokers, const char *prefix, char *err, size_t errlen)
{
    struct ksend *s = calloc(1, sizeof *s);
    if (!s || uv_loop_init(&s->loop) != 0) {
        free(s);
        util_err(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
    if (!(s->reg = metrics_new())) {
        util_err(err, errlen, "out of memory");
        goto err_loop;
    }
    if (!(s->kp = kprod_new(&s->loop, brokers, prefix, s->reg, err, errlen)))
        goto err_reg;
    return s;

err_reg:
    metrics_free(s->reg);
err_loop:
    uv_loop_close(&s->loop);
    free(s);
    return NULL;
}

long ksend_queue(struct ksend *s, enum kafka_topic_kind topic, const char *key, const char *value,
                 size_t len, char *err, size_t errlen)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct kmsg **m = realloc(s->msgs, cap * sizeof *m);
        if (!m) {
            util_err(err, errlen, "out of memory");
            return -1;
        }
        s->msgs = m;
        s->cap = cap;
    }
    struct kmsg *m = calloc(1, sizeof *m);
    if (!m) {
        util_err(err, errlen, "out of memory");
        return -1;
    }
    if (kprod_produce(s->kp, topic, key, value, len, on_delivery, m, err, errlen) != 0) {
        free(m);
        return -1;
    }
    s->msgs[s->n] = m;
    return (long)s->n++;
}

static size_t unacknowledged(const struct ksend *s, size_t *waiting)
{
    size_t n = 0;
    *waiting = 0;
    for (size_t i = 0; i < s->n; i++) {
        n += s->msgs[i]->state != 1;
        *waiting += s->msgs[i]->state == 0;
    }
    return n;
}

size_t ksend_wait(struct ksend *s, long long timeout_ms)
{
    long long end = util_monotonic_ms() + timeout_ms;
    size_t waiting, bad = unacknowledged(s, &waiting);
    /* kprod's loop handles wake us for every report and at least every 100 ms */
    while (waiting > 0 && util_monotonic_ms() < end) {
        uv_run(&s->loop, UV_RUN_ONCE);
        bad = unacknowledged(s, &waiting);
    }
    return bad;
}

int ksend_result(const struct ksend *s, size_t n, char *err, size_t errlen)
{
    util_err_reset(err, errlen);
    if (n >= s->n) {
        util_err(err, errlen, "no such message");
        return -1;
    }
    const struct kmsg *m = s->msgs[n];
    if (m->state < 0)
        util_err(err, errlen, "%s", rd_kafka_err2str(m->err));
    return m->state;
}

struct kprod *ksend_kprod(struct ksend *s)
{
    return s->kp;
}

void ksend_close(struct ksend *s, int flush_ms, long *acked, long *failed)
{
    if (acked)
        *acked = 0;
    if (failed)
        *failed = 0;
    if (!s)
        return;
    kprod_close(s->kp, flush_ms); /* reports of what is left arrive now */
    uv_run(&s->loop, UV_RUN_DEFAULT);
    struct metric *ok = metrics_counter(s->reg, "vmh_messages_produced_total", "", "topic");
    struct metric *bad = metrics_counter(s->reg, "vmh_messages_failed_total", "", "topic");
    for (int k = 0; k < KAFKA_TOPIC_COUNT; k++) {
        char topic[256];
        if (kafka_topic_name(s->prefix, (enum kafka_topic_kind)k, topic, sizeof topic) != 0)
            continue;
        if (acked)
            *acked += (long)metric_value(ok, topic);
        if (failed)
            *failed += (long)metric_value(bad, topic);
    }
    uv_loop_close(&s->loop);
    metrics_free(s->reg);
    for (size_t i = 0; i < s->n; i++)
        free(s->msgs[i]);
    free(s->msgs);
    free(s);
}
