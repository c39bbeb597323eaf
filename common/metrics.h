/* metrics.h: a registry of counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format (SPEC §10). Thread-safe: any thread may update any metric
 * while another renders.
 *
 * The registry owns its metric families and their label sets; families live until
 * metrics_free(). Label values are passed as strings, one per label name declared at
 * registration, and are copied on first use. */
#ifndef VMH_METRICS_H
#define VMH_METRICS_H

#include <stddef.h>

struct metrics;
struct metric;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *reg);

/* Registers a family. `labels` is a comma-separated list of label names ("system,method") or
 * NULL for none. Registering an existing name of the same type returns the existing family.
 * Returns NULL on a bad name, a type clash or out of memory. */
struct metric *metrics_counter(struct metrics *reg, const char *name, const char *help,
                               const char *labels);
struct metric *metrics_gauge(struct metrics *reg, const char *name, const char *help,
                             const char *labels);
/* `bounds` are the upper bounds of the buckets, ascending; +Inf is added. NULL/0 = the
 * default latency buckets (5 ms .. 60 s). */
struct metric *metrics_histogram(struct metrics *reg, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t nbounds);

/* Updates. The variadic arguments are the label values (const char *), exactly as many as the
 * family has labels. A NULL metric is ignored, so optional metrics need no checks. */
void metric_inc(struct metric *m, ...);               /* counter += 1 */
void metric_add(struct metric *m, double v, ...);     /* counter += v (v >= 0), gauge += v */
void metric_set(struct metric *m, double v, ...);     /* gauge = v */
void metric_observe(struct metric *m, double v, ...); /* histogram */
/* Creates the label set with zero (a histogram: empty) if it is not there yet, so a series the
 * program knows has a sample from the start (SPEC §10). Families without labels have theirs
 * from registration. */
void metric_touch(struct metric *m, ...);
/* Registers vmh_build_info{version,commit} = 1 (SPEC §10). */
void metrics_build_info(struct metrics *reg);
/* Removes every label set of a family (for gauges that are recomputed, e.g. per-partition lag). */
void metric_reset(struct metric *m);
/* Current value of a counter or gauge (histogram: its count); 0 when the label set is absent. */
double metric_value(struct metric *m, ...);

/* Renders every family, in registration order. Returns a NUL-terminated string the caller
 * frees with free(), and its length in *len (if len is not NULL); NULL on out of memory. */
char *metrics_render(struct metrics *reg, size_t *len);

#endif
