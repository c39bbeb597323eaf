/* apistat.c: outbound API call metrics (see apistat.h). */
#include "apistat.h"

#include <stdio.h>
#include <string.h>

void apistat_init(struct apistat *st, struct metrics *reg)
{
    memset(st, 0, sizeof *st);
    if (!reg)
        return;
    st->calls =
        metrics_counter(reg, "vmh_api_calls_total",
                        "Outbound API calls by system, method and HTTP status (0 = no answer).",
                        "system,method,status");
    st->latency = metrics_histogram(reg, "vmh_api_latency_seconds", "Outbound API call latency.",
                                    "system,method", NULL, 0);
}

void apistat_record(struct apistat *st, const char *system, const char *method, long status,
                    double elapsed_ms)
{
    st->made++;
    char code[16];
    snprintf(code, sizeof code, "%ld", status);
    metric_inc(st->calls, system, method, code);
    metric_observe(st->latency, elapsed_ms / 1000.0, system, method);
}
