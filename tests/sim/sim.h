/* sim.h: what both simulators share (SPEC §8, §8.1): option parsing with the common options,
 * the HTTP server, API routes wrapped with request counters, fault injection, --fail-rate and
 * --latency-ms/--jitter-ms (on libuv timers, never by blocking), the admin routes /_sim/reset,
 * /_sim/stats, /_sim/log and /_sim/faults, a seeded random source, and the run loop with clean
 * shutdown.
 *
 * Everything runs on the simulator's single libuv loop thread. The sim owns the httpd server
 * and every request wrapper; sim_free() after the loop has ended releases them.
 *
 * Faults (SPEC §8, §8.1). POST /_sim/faults takes one rule object or an array of them:
 *   {"method":"POST","route":"/api/v1/advonet/Beteiligte", (absent or null: any API route)
 *    "status":503,    the answer instead of the handler's ({"error":"fault injected by ..."})
 *    "count":2,       faulted calls, then the rule is gone (default: unlimited)
 *    "rate":0.1,      fraction of matching calls faulted (default: every one)
 *    "delay_ms":N,    added before the answer (alone: a slow but correct answer)
 *    "after":N,       the first N matching calls pass this rule untouched (they still meet the
 *                     rules after it and the fail rate); count then counts the faulted ones
 *    "apply":true,    the handler runs and takes effect, its answer is replaced by the fault's
 *                     status (or by a drop): the caller cannot know the call happened
 *    "drop":true,     no answer: the connection is closed (FIN) where the answer belonged;
 *                     excludes "status"; with "apply" the effect happens first
 *    "kill_pid":N,    SIGKILL to process N once the answer (whatever it is) has been written
 *                     or dropped: a client that dies right after its call was answered
 *    "ui_edit":{...}} a person's edit lands right before the call is handled (the simulator
 *                     decides what that means, sim_set_ui_edit(); espocrm-sim: a UI user's
 *                     update of the entity {id}); a simulator without it refuses the rule
 * A rule needs a status, drop, delay_ms, kill_pid or ui_edit; the first rule that fires wins;
 * fired or not, the answer's latency (--latency-ms, --jitter-ms) comes on top. {"fail_rate":F}
 * (alone in the object, F in [0, 1]) replaces the --fail-rate at run time, 0 turns it off. An
 * empty body ({}, [] or none) clears every rule and sets the fail rate to 0: no faults of any
 * kind. POST /_sim/reset clears the rules and restores the --fail-rate given at start. POST and
 * GET /_sim/faults answer {"faults":[rules with what is left of count and after],"fail_rate":F}.
 * GET /_sim/stats counts a faulted call under the status its client saw: the fault's status,
 * 503 for the fail rate, 0 for a drop. GET /_sim/log[?since=N] lists the API calls in the order
 * they were answered, from the N-th (0-based) on: {"calls":[{"seq","method","route","status",
 * "t_us"}],"total":n,"truncated":bool} (t_us: when, in CLOCK_MONOTONIC microseconds, comparable
 * across processes; the first 200 000 calls since the start or the last reset). */
#ifndef VMH_SIM_H
#define VMH_SIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "httpd.h"

enum sim_opt_type { SIM_OPT_INT, SIM_OPT_STR, SIM_OPT_DOUBLE, SIM_OPT_MULTI };

/* The values of a repeatable option (SIM_OPT_MULTI), in command-line order; the strings are
 * argv's. More than SIM_MULTI_MAX values is a usage error. */
#define SIM_MULTI_MAX 32
struct sim_multi {
    size_t n;
    const char *v[SIM_MULTI_MAX];
};

/* A simulator-specific option: --name VALUE stored into *target (int, const char *, double, or
 * appended to a struct sim_multi; the default is whatever *target holds before parsing). */
struct sim_opt {
    const char *name; /* without the leading dashes */
    enum sim_opt_type type;
    void *target;
    const char *help;
};

struct sim_opts {
    int port;         /* --port, default 0 = any free port */
    int latency_ms;   /* --latency-ms */
    int jitter_ms;    /* --jitter-ms */
    double fail_rate; /* --fail-rate, 0..1, at start (POST /_sim/faults may change it) */
    long seed;        /* --seed */
};

/* Parses argv: the common options plus `extra` (n entries). --help prints usage and exits 0;
 * an unknown option or a bad value prints one line and exits 2. */
void sim_parse_args(int argc, char **argv, const char *prog, const char *summary,
                    struct sim_opts *opts, const struct sim_opt *extra, size_t n);

struct sim;

/* Called by POST /_sim/reset, after the sim's own counters and faults are cleared. */
typedef void (*sim_reset_fn)(void *ud);

struct sim *sim_new(uv_loop_t *loop, const struct sim_opts *opts, sim_reset_fn reset, void *ud);
void sim_free(struct sim *sim);
/* A "ui_edit" fault's edit (attrs borrowed), made on the loop thread right before req's handler
 * runs; req is not to be answered here. */
typedef void (*sim_ui_edit_fn)(struct httpd_req *req, const json_t *attrs, void *ud);
/* Enables "ui_edit" fault rules with fn (without it they are refused with 400). */
void sim_set_ui_edit(struct sim *sim, sim_ui_edit_fn fn, void *ud);
/* Called on the loop thread when SIGTERM/SIGINT arrives, before the server closes: the place to
 * close the simulator's own handles (timers, asyncs) so that the loop can end. */
void sim_set_stop(struct sim *sim, void (*fn)(void *ud), void *ud);

/* Registers an API route: counted in /_sim/stats under `tmpl` (write it as SPEC §7 does),
 * subject to faults, --fail-rate and latency. The handler runs after the latency has passed. */
int sim_api_route(struct sim *sim, const char *method, const char *tmpl, httpd_handler_fn fn,
                  void *ud);
/* Registers an admin route (under /_sim/): no counting, faults or latency. */
int sim_admin_route(struct sim *sim, const char *method, const char *tmpl, httpd_handler_fn fn,
                    void *ud);

/* A route of a simulator's table. */
struct sim_route_def {
    const char *method, *tmpl;
    httpd_handler_fn fn;
};
/* Registers a table of API routes and one of admin routes, all with the same ud. 0 or -1. */
int sim_register_routes(struct sim *sim, const struct sim_route_def *api, size_t napi,
                        const struct sim_route_def *admin, size_t nadmin, void *ud);

/* Listens on 127.0.0.1:<--port>, prints "listening on 127.0.0.1:<port>" as the first line on
 * stdout, runs the loop until SIGTERM/SIGINT, closes everything. Returns the exit code. */
int sim_run(struct sim *sim);

/* Seeded randomness (--seed): uniform double in [0, 1), and an integer in [0, n). */
double sim_rand(struct sim *sim);
unsigned long sim_rand_below(struct sim *sim, unsigned long n);

/* The request body as JSON: 0 and a new reference in *out; -1 after answering 400 (the handler
 * just returns). An empty body gives *out = NULL when allow_empty, else 400. */
int sim_body_json(struct httpd_req *req, json_t **out, bool allow_empty);

/* Now as "YYYY-MM-DD HH:MM:SS" in UTC (EspoCRM) or "YYYY-MM-DDTHH:MM:SS" in local time of the
 * process' TZ (Advoware); buf needs 20 bytes. */
void sim_now_utc(char *buf, size_t len);
void sim_now_local(char *buf, size_t len);

#endif
