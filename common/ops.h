/* ops.h: what every long-running binary offers operators (SPEC §10): logging set up from the
 * configuration, and the /healthz, /readyz and /metrics routes on an httpd server.
 *
 * ops_routes() keeps the pointers it is given; they must outlive the server. */
#ifndef VMH_OPS_H
#define VMH_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"
#include "httpd.h"
#include "metrics.h"

/* Applies LOG_LEVEL and LOG_FORMAT (validated by cfg) to log.h, writing to stderr. */
void ops_log_setup(const struct cfg *cfg);

/* Readiness probe: true when the process can do its work (Kafka and Redis reachable, ...). */
typedef bool (*ops_ready_fn)(void *ud, char *why, size_t whylen);

/* Liveness probe for GET /healthz, for programs whose work loop is not the one serving HTTP
 * (the worker's Kafka poll loop): false makes /healthz answer 503 with the reason, so the
 * orchestrator restarts a stuck process. Set it before starting the server; NULL (the default):
 * /healthz answers 200 while the server's loop runs. */
void ops_set_liveness(ops_ready_fn live, void *ud);

/* Registers GET /healthz (200 while the loop runs and the liveness probe agrees), GET /readyz (200,
 * or 503 with the reason from ready()), GET /metrics (Prometheus text from reg). ready may be NULL
 * (always ready). 0, or -1 on out of memory. */
int ops_routes(struct httpd *srv, struct metrics *reg, ops_ready_fn ready, void *ud);

/* An ops endpoint on its own thread and libuv loop, for programs whose main thread is busy
 * elsewhere (the worker's Kafka loop). Returns NULL with err on a bind error. Stop with
 * ops_server_stop(), which joins the thread and frees everything (NULL is ignored). */
struct ops_server;
struct ops_server *ops_server_start(const char *hostport, struct metrics *reg, ops_ready_fn ready,
                                    void *ud, int *bound_port, char *err, size_t errlen);
void ops_server_stop(struct ops_server *s);
/* ops_server_start() on METRICS_LISTEN; on failure logs the reason and returns NULL. */
struct ops_server *ops_server_start_cfg(const struct cfg *cfg, struct metrics *reg,
                                        ops_ready_fn ready, void *ud);

/* Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread (call first in main, so every thread
 * started later inherits the mask) and ignores SIGPIPE. */
void ops_block_signals(void);
/* Waits for SIGTERM or SIGINT (blocked by ops_block_signals); returns the signal. */
int ops_wait_for_signal(void);

#endif
