/* dlqread.c: the dead-letter topic, read to its end, with the replay group's place (see
 * dlqread.h). */
#include "dlqread.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "util.h"

#define META_TIMEOUT_MS 10000

struct dlqread {
    rd_kafka_t *rk;
    char topic[256];
    int partitions;
    long long *end; /* per partition: the offset after the last message as of the fetch */
    struct dlq_letter *v;
    size_t n, cap;
};

struct dlqread *dlqread_open(const char *brokers, const char *topic, const char *group, char *err,
                             size_t errlen)
{
    char errstr[512];
    struct dlqread *d = calloc(1, sizeof *d);
    if (!d) {
        util_err(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(d->topic, sizeof d->topic, "%s", topic);
    rd_kafka_conf_t *conf = kafka_consumer_conf_new(brokers, group, "vmhctl", err, errlen);
    if (!conf)
        goto err;
    if (!(d->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(conf);
        util_err(err, errlen, "kafka consumer: %s", errstr);
        goto err;
    }
    rd_kafka_poll_set_consumer(d->rk);
    return d;
err:
    free(d);
    return NULL;
}

static void letters_free(struct dlqread *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].key);
        free(d->v[i].value);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

void dlqread_close(struct dlqread *d)
{
    if (!d)
        return;
    if (d->rk) {
        rd_kafka_consumer_close(d->rk);
        rd_kafka_destroy(d->rk);
    }
    letters_free(d);
    free(d->end);
    free(d);
}

static void header(const rd_kafka_message_t *m, const char *name, char *buf, size_t len)
{
    rd_kafka_headers_t *h = NULL;
    const void *val = NULL;
    size_t size = 0;
    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR && val)
        snprintf(buf, len, "%.*s", (int)(size < len ? size : len - 1), (const char *)val);
}

static char *copy(const void *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        if (len)
            memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

static int keep(struct dlqread *d, const rd_kafka_message_t *m)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 32;
        struct dlq_letter *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    struct dlq_letter *l = &d->v[d->n];
    memset(l, 0, sizeof *l);
    l->key = copy(m->key, m->key_len);
    l->value = copy(m->payload, m->len);
    if (!l->key || !l->value) {
        free(l->key);
        free(l->value);
        return -1;
    }
    l->keylen = m->key_len;
    l->len = m->len;
    l->partition = m->partition;
    l->offset = m->offset;
    header(m, "error", l->error, sizeof l->error);
    header(m, "topic", l->topic, sizeof l->topic);
    header(m, "partition", l->from_partition, sizeof l->from_partition);
    header(m, "offset", l->from_offset, sizeof l->from_offset);
    d->n++;
    return 0;
}

/* The topic's partition count; 0 when it does not exist, -1 on error. */
static int partition_count(struct dlqread *d, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(d->rk, d->topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(d->rk, 0, t, &md, META_TIMEOUT_MS);
    int n = -1;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        util_err(err, errlen, "kafka metadata: %s", rd_kafka_err2str(e));
    else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        n = 0;
    else
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (t)
        rd_kafka_topic_destroy(t);
    return n;
}

/* Consumes the assigned partitions until each reached its end, or the deadline. */
static int consume(struct dlqread *d, const long long *start, long long deadline, char *err,
                   size_t errlen)
{
    long long *next = calloc((size_t)d->partitions, sizeof *next);
    if (!next) {
        util_err(err, errlen, "out of memory");
        return -1;
    }
    memcpy(next, start, (size_t)d->partitions * sizeof *next);
    int rc = 0;
    for (;;) {
        bool done = true;
        for (int p = 0; p < d->partitions; p++)
            done &= next[p] >= d->end[p];
        if (done)
            break;
        if (util_monotonic_ms() > deadline) {
            util_err(err, errlen, "kafka: %s not read to its end in time", d->topic);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(d->rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition >= 0 &&
            m->partition < d->partitions && m->offset < d->end[m->partition]) {
            if (keep(d, m) != 0) {
                util_err(err, errlen, "out of memory");
                rc = -1;
            }
            next[m->partition] = m->offset + 1;
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                   m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            util_err(err, errlen, "kafka: %s", rd_kafka_message_errstr(m));
            rc = -1;
        }
        rd_kafka_message_destroy(m);
        if (rc != 0)
            break;
    }
    free(next);
    return rc;
}

int dlqread_fetch(struct dlqread *d, long long timeout_ms, char *err, size_t errlen)
{
    long long deadline = util_monotonic_ms() + timeout_ms;
    util_err_reset(err, errlen);
    letters_free(d);
    int n = partition_count(d, err, errlen);
    if (n <= 0) {
        if (n == 0)
            util_err(err, errlen, "kafka: topic %s does not exist", d->topic);
        return -1;
    }
    d->partitions = n;
    free(d->end);
    d->end = calloc((size_t)n, sizeof *d->end);
    long long *start = calloc((size_t)n, sizeof *start), *committed = NULL;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    int rc = -1;
    if (!d->end || !start || !(committed = calloc((size_t)n, sizeof *committed))) {
        util_err(err, errlen, "out of memory");
        goto out;
    }
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(d->rk, d->topic, p, &lo, &hi, META_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            util_err(err, errlen, "kafka watermarks of %s: %s", d->topic, rd_kafka_err2str(e));
            goto out;
        }
        start[p] = lo;
        d->end[p] = hi;
        rd_kafka_topic_partition_list_add(list, d->topic, p);
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(d->rk, list, META_TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_err(err, errlen, "kafka committed offsets: %s", rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        committed[list->elems[i].partition] = list->elems[i].offset; /* < 0: none */
        list->elems[i].offset = start[list->elems[i].partition];
    }
    if ((e = rd_kafka_assign(d->rk, list)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_err(err, errlen, "kafka assign: %s", rd_kafka_err2str(e));
        goto out;
    }
    rc = consume(d, start, deadline, err, errlen);
    rd_kafka_assign(d->rk, NULL);
    for (size_t i = 0; i < d->n; i++)
        d->v[i].handled = d->v[i].offset < committed[d->v[i].partition];
out:
    rd_kafka_topic_partition_list_destroy(list);
    free(start);
    free(committed);
    return rc;
}

size_t dlqread_count(const struct dlqread *d)
{
    return d->n;
}

const struct dlq_letter *dlqread_get(const struct dlqread *d, size_t i)
{
    return i < d->n ? &d->v[i] : NULL;
}

int dlqread_commit(struct dlqread *d, char *err, size_t errlen)
{
    util_err_reset(err, errlen);
    if (d->partitions <= 0)
        return 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(d->partitions);
    for (int p = 0; p < d->partitions; p++)
        rd_kafka_topic_partition_list_add(list, d->topic, p)->offset = d->end[p];
    rd_kafka_resp_err_t e = rd_kafka_commit(d->rk, list, 0);
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_err(err, errlen, "kafka commit: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most left bytes), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf5 || n == 0 || n > left)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

char *dlqread_printable(const char *bytes, size_t len)
{
    char *out = malloc(len * 4 + 1);
    size_t n = 0;
    if (!out)
        return NULL;
    const unsigned char *s = (const unsigned char *)bytes;
    for (size_t i = 0; i < len;) {
        size_t seq = s[i] >= 0x80 ? utf8_seq(s + i, len - i) : 0;
        if (seq) {
            memcpy(out + n, s + i, seq);
            n += seq;
            i += seq;
        } else if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
            out[n++] = (char)s[i++];
        } else {
            n += (size_t)sprintf(out + n, "\\x%02x", s[i++]);
        }
    }
    out[n] = '\0';
    return out;
}
