/* apistat.h: counting and timing every outbound API call (SPEC §10):
 * vmh_api_calls_total{system,method,status} and vmh_api_latency_seconds{system,method}.
 * Shared by the EspoCRM and Advoware clients; the metrics belong to the registry. */
#ifndef VMH_APISTAT_H
#define VMH_APISTAT_H

#include "metrics.h"

struct apistat {
    struct metric *calls;
    struct metric *latency;
    unsigned long made; /* calls recorded through this copy (each client holds its own) */
};

/* Registers (or finds) the two families in reg; reg may be NULL (nothing is recorded). */
void apistat_init(struct apistat *st, struct metrics *reg);
/* status 0 = no answer (transport error). */
void apistat_record(struct apistat *st, const char *system, const char *method, long status,
                    double elapsed_ms);

#endif
