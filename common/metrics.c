/* metrics.c: counters, gauges and histograms with labels, Prometheus text format (see
 * metrics.h). Each family has its own mutex and a small array of label sets, searched linearly:
 * our label cardinality is small (status codes, methods, partitions). */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_MAX_LABELS 8

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric_child {
    char **values; /* nlabels strings */
    double value;  /* counter/gauge; histogram: sum */
    unsigned long long count;
    unsigned long long *buckets; /* histogram: per bound, not cumulative */
};

struct metric {
    struct metrics *reg;
    char *name;
    char *help;
    enum metric_type type;
    char *labels[METRICS_MAX_LABELS];
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    pthread_mutex_t mu;
    struct metric_child *children;
    size_t nchildren, cap;
    struct metric *next;
};

struct metrics {
    pthread_mutex_t mu;
    struct metric *head, *tail;
};

static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,  5,     10,   30,  60};

struct metrics *metrics_new(void)
{
    struct metrics *reg = calloc(1, sizeof *reg);
    if (reg)
        pthread_mutex_init(&reg->mu, NULL);
    return reg;
}

static void child_clear(struct metric_child *c, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(c->values[i]);
    free(c->values);
    free(c->buckets);
}

static void metric_free(struct metric *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nchildren; i++)
        child_clear(&m->children[i], m->nlabels);
    free(m->children);
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->labels[i]);
    free(m->bounds);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void metrics_free(struct metrics *reg)
{
    if (!reg)
        return;
    struct metric *m = reg->head;
    while (m) {
        struct metric *next = m->next;
        metric_free(m);
        m = next;
    }
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static int valid_name(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

static int parse_labels(struct metric *m, const char *labels)
{
    if (!labels || !*labels)
        return 0;
    const char *p = labels;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (m->nlabels == METRICS_MAX_LABELS)
            return -1;
        char *l = strndup(p, n);
        if (!l)
            return -1;
        m->labels[m->nlabels++] = l;
        if (!valid_name(l) || strchr(l, ':'))
            return -1;
        p = comma ? comma + 1 : p + n;
    }
    return 0;
}

static struct metric *family(struct metrics *reg, enum metric_type type, const char *name,
                             const char *help, const char *labels, const double *bounds,
                             size_t nbounds)
{
    struct metric *m = NULL;
    if (!reg || !valid_name(name))
        return NULL;
    pthread_mutex_lock(&reg->mu);
    for (struct metric *it = reg->head; it; it = it->next) {
        if (strcmp(it->name, name) == 0) {
            pthread_mutex_unlock(&reg->mu);
            return it->type == type ? it : NULL;
        }
    }
    m = calloc(1, sizeof *m);
    if (!m)
        goto err;
    pthread_mutex_init(&m->mu, NULL);
    m->reg = reg;
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    if (!m->name || !m->help || parse_labels(m, labels) != 0)
        goto err;
    if (type == METRIC_HISTOGRAM) {
        if (!bounds || nbounds == 0) {
            bounds = default_bounds;
            nbounds = sizeof default_bounds / sizeof default_bounds[0];
        }
        for (size_t i = 1; i < nbounds; i++)
            if (!(bounds[i] > bounds[i - 1]))
                goto err;
        m->bounds = malloc(nbounds * sizeof *m->bounds);
        if (!m->bounds)
            goto err;
        memcpy(m->bounds, bounds, nbounds * sizeof *m->bounds);
        m->nbounds = nbounds;
    }
    if (reg->tail)
        reg->tail->next = m;
    else
        reg->head = m;
    reg->tail = m;
    pthread_mutex_unlock(&reg->mu);
    if (m->nlabels == 0)
        metric_touch(m); /* its one series has a sample from the start (SPEC §10) */
    return m;
err:
    pthread_mutex_unlock(&reg->mu);
    metric_free(m);
    return NULL;
}

struct metric *metrics_counter(struct metrics *reg, const char *name, const char *help,
                               const char *labels)
{
    return family(reg, METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *reg, const char *name, const char *help,
                             const char *labels)
{
    return family(reg, METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *reg, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t nbounds)
{
    return family(reg, METRIC_HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* The child for the label values in ap, created if absent (create) — under m->mu. */
static struct metric_child *child(struct metric *m, va_list ap, int create)
{
    const char *vals[METRICS_MAX_LABELS];
    for (size_t i = 0; i < m->nlabels; i++) {
        vals[i] = va_arg(ap, const char *);
        if (!vals[i])
            vals[i] = "";
    }
    for (size_t c = 0; c < m->nchildren; c++) {
        size_t i = 0;
        while (i < m->nlabels && strcmp(m->children[c].values[i], vals[i]) == 0)
            i++;
        if (i == m->nlabels)
            return &m->children[c];
    }
    if (!create)
        return NULL;
    if (m->nchildren == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4;
        struct metric_child *nc = realloc(m->children, cap * sizeof *nc);
        if (!nc)
            return NULL;
        m->children = nc;
        m->cap = cap;
    }
    struct metric_child *c = &m->children[m->nchildren];
    memset(c, 0, sizeof *c);
    c->values = calloc(m->nlabels ? m->nlabels : 1, sizeof *c->values);
    if (!c->values)
        return NULL;
    if (m->type == METRIC_HISTOGRAM && !(c->buckets = calloc(m->nbounds, sizeof *c->buckets)))
        goto fail;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!(c->values[i] = strdup(vals[i])))
            goto fail;
    m->nchildren++;
    return c;
fail:
    child_clear(c, m->nlabels);
    return NULL;
}

static void update(struct metric *m, int op, double v, va_list ap)
{
    pthread_mutex_lock(&m->mu);
    struct metric_child *c = child(m, ap, 1);
    if (c) {
        switch (op) {
        case 0: /* add */
            if (m->type != METRIC_COUNTER || v >= 0)
                c->value += v;
            break;
        case 1: /* set */
            c->value = v;
            break;
        case 2: /* observe */
            c->value += v;
            c->count++;
            for (size_t i = 0; i < m->nbounds; i++) {
                if (v <= m->bounds[i]) {
                    c->buckets[i]++;
                    break;
                }
            }
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void metric_inc(struct metric *m, ...)
{
    if (!m || m->type == METRIC_HISTOGRAM)
        return;
    va_list ap;
    va_start(ap, m);
    update(m, 0, 1, ap);
    va_end(ap);
}

void metric_add(struct metric *m, double v, ...)
{
    if (!m || m->type == METRIC_HISTOGRAM)
        return;
    va_list ap;
    va_start(ap, v);
    update(m, 0, v, ap);
    va_end(ap);
}

void metric_set(struct metric *m, double v, ...)
{
    if (!m || m->type != METRIC_GAUGE)
        return;
    va_list ap;
    va_start(ap, v);
    update(m, 1, v, ap);
    va_end(ap);
}

void metric_observe(struct metric *m, double v, ...)
{
    if (!m || m->type != METRIC_HISTOGRAM)
        return;
    va_list ap;
    va_start(ap, v);
    update(m, 2, v, ap);
    va_end(ap);
}

void metric_touch(struct metric *m, ...)
{
    if (!m)
        return;
    va_list ap;
    va_start(ap, m);
    update(m, 0, 0, ap); /* add 0 (a histogram's add is nothing): only the label set appears */
    va_end(ap);
}

void metrics_build_info(struct metrics *reg)
{
    metric_set(
        metrics_gauge(reg, "vmh_build_info", "version and commit of this build", "version,commit"),
        1, VMH_VERSION, VMH_COMMIT);
}

void metric_reset(struct metric *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nchildren; i++)
        child_clear(&m->children[i], m->nlabels);
    m->nchildren = 0;
    pthread_mutex_unlock(&m->mu);
}

double metric_value(struct metric *m, ...)
{
    if (!m)
        return 0;
    va_list ap;
    va_start(ap, m);
    pthread_mutex_lock(&m->mu);
    struct metric_child *c = child(m, ap, 0);
    double v = c ? (m->type == METRIC_HISTOGRAM ? (double)c->count : c->value) : 0;
    pthread_mutex_unlock(&m->mu);
    va_end(ap);
    return v;
}

static void put_escaped(FILE *f, const char *s, int in_help)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '"' && !in_help)
            fputs("\\\"", f);
        else
            fputc(*s, f);
    }
}

static void put_number(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, "%.0f", v);
    else
        fprintf(f, "%.17g", v);
}

/* {a="x",b="y"[,le="..."]} — nothing when there are no labels and no le. */
static void put_labels(FILE *f, const struct metric *m, const struct metric_child *c,
                       const char *le)
{
    if (m->nlabels == 0 && !le)
        return;
    fputc('{', f);
    for (size_t i = 0; i < m->nlabels; i++) {
        fprintf(f, "%s%s=\"", i ? "," : "", m->labels[i]);
        put_escaped(f, c->values[i], 0);
        fputc('"', f);
    }
    if (le)
        fprintf(f, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    fputc('}', f);
}

static void render_family(FILE *f, struct metric *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->mu);
    fprintf(f, "# HELP %s ", m->name);
    put_escaped(f, m->help, 1);
    fprintf(f, "\n# TYPE %s %s\n", m->name, types[m->type]);
    for (size_t i = 0; i < m->nchildren; i++) {
        struct metric_child *c = &m->children[i];
        if (m->type != METRIC_HISTOGRAM) {
            fputs(m->name, f);
            put_labels(f, m, c, NULL);
            fputc(' ', f);
            put_number(f, c->value);
            fputc('\n', f);
            continue;
        }
        unsigned long long cum = 0;
        for (size_t b = 0; b <= m->nbounds; b++) {
            char le[64];
            if (b < m->nbounds) {
                cum += c->buckets[b];
                snprintf(le, sizeof le, "%g", m->bounds[b]);
            } else {
                cum = c->count;
                snprintf(le, sizeof le, "+Inf");
            }
            fprintf(f, "%s_bucket", m->name);
            put_labels(f, m, c, le);
            fprintf(f, " %llu\n", cum);
        }
        fprintf(f, "%s_sum", m->name);
        put_labels(f, m, c, NULL);
        fputc(' ', f);
        put_number(f, c->value);
        fprintf(f, "\n%s_count", m->name);
        put_labels(f, m, c, NULL);
        fprintf(f, " %llu\n", c->count);
    }
    pthread_mutex_unlock(&m->mu);
}

char *metrics_render(struct metrics *reg, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    pthread_mutex_lock(&reg->mu);
    for (struct metric *m = reg->head; m; m = m->next)
        render_family(f, m);
    pthread_mutex_unlock(&reg->mu);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}
