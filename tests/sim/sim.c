/* sim.c: the simulators' shared frame: options, API routes with counters, faults, fail rate and
 * latency, admin routes, run loop (see sim.h). */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIM_ADMIN_PREFIX "/_sim/"

struct sim_route {
    struct sim *sim;
    char *tmpl;
    httpd_handler_fn fn;
    void *ud;
    struct sim_route *next;
};

struct sim_stat {
    char *method, *route;
    int status;
    unsigned long count;
};

struct sim_fault {
    char *method; /* NULL = any */
    char *route;  /* NULL = any */
    int status;   /* 0 = none (delay only, or drop) */
    long count;   /* faulted calls left; < 0 = unlimited */
    long after;   /* matching calls still let through untouched */
    double rate;  /* 0 = every match */
    int delay_ms;
    bool apply;      /* the handler runs, its answer is replaced */
    bool drop;       /* the connection is closed instead of answering */
    json_t *ui_edit; /* a person's edit made right before the handler runs, or NULL */
    int kill_pid;    /* SIGKILLed once the answer is out; 0 = none */
};

/* One answered API call of GET /_sim/log: the strings are static (method) or live as long as
 * the server's routes (route). */
struct sim_logent {
    const char *method, *route;
    int status;
    long long t_us; /* when it was answered: CLOCK_MONOTONIC, comparable across processes */
};
#define SIM_LOG_MAX 200000

/* What happens to one API call: the fault that fired (or the fail rate's 503), and its latency. */
struct sim_hit {
    int status; /* 0 = the handler's own answer (unless drop) */
    int delay_ms;
    bool apply, drop;
    json_t *ui_edit; /* a reference, released once the request has been acted on */
    int kill_pid;
};

#define SIM_FAULT_MSG "fault injected by the simulator"

struct sim {
    uv_loop_t *loop;
    struct sim_opts opts;
    struct httpd *srv;
    struct sim_route *routes;
    struct sim_stat *stats;
    size_t nstats, capstats;
    struct sim_fault *faults;
    size_t nfaults;
    struct sim_logent *log; /* the answered API calls in order, at most SIM_LOG_MAX */
    size_t nlog, caplog;
    bool log_truncated;
    sim_ui_edit_fn ui_edit;
    void *ui_edit_ud;
    double fail_rate; /* now: --fail-rate until POST /_sim/faults {"fail_rate":F} */
    unsigned short rng[3];
    sim_reset_fn reset;
    void *reset_ud;
    void (*stop)(void *ud);
    void *stop_ud;
    uv_signal_t sigterm, sigint;
};

/* A request waiting for its latency. */
struct sim_delayed {
    uv_timer_t timer;
    struct httpd_req *req;
    struct sim_route *route;
    struct sim_hit hit;
};

/* ---- options ---------------------------------------------------------------------------- */

static void usage(FILE *out, const char *prog, const char *summary, const struct sim_opts *o,
                  const struct sim_opt *extra, size_t n)
{
    fprintf(out, "Usage: %s [options]\n\n%s\n\nOptions:\n", prog, summary);
    fprintf(out, "  --port N          listen on 127.0.0.1:N; 0 = a free port (default %d)\n",
            o->port);
    fprintf(out, "  --latency-ms N    added to every API answer (default %d)\n", o->latency_ms);
    fprintf(out, "  --jitter-ms N     plus a random 0..N ms (default %d)\n", o->jitter_ms);
    fprintf(out, "  --fail-rate F     fraction of API requests answered 503 (default %g)\n",
            o->fail_rate);
    fprintf(out, "  --seed N          random seed (default %ld)\n", o->seed);
    for (size_t i = 0; i < n; i++) {
        char def[128] = "";
        if (extra[i].type == SIM_OPT_INT)
            snprintf(def, sizeof def, "%d", *(int *)extra[i].target);
        else if (extra[i].type == SIM_OPT_DOUBLE)
            snprintf(def, sizeof def, "%g", *(double *)extra[i].target);
        else if (extra[i].type == SIM_OPT_MULTI)
            snprintf(def, sizeof def, "none; repeatable");
        else
            snprintf(def, sizeof def, "%s", *(const char **)extra[i].target);
        fprintf(out, "  --%-16s %s (default %s)\n", extra[i].name, extra[i].help, def);
    }
    fputs(
        "\nAdmin API (no auth): POST /_sim/reset, GET /_sim/stats, POST|GET /_sim/faults and the\n"
        "simulator's own /_sim/ routes (SPEC §8.1). POST /_sim/faults takes a rule or an array:\n"
        "  {\"method\", \"route\" (absent: any API route), \"status\", \"count\" or \"rate\",\n"
        "   \"delay_ms\", \"after\":N (the first N matching calls pass), \"apply\":true (the\n"
        "   call takes effect, then the fault answers), \"drop\":true (the connection is closed\n"
        "   instead of answering), \"kill_pid\":N (SIGKILL to N once the answer is out),\n"
        "   \"ui_edit\":{attrs} (espocrm-sim: a UI user's update of the entity lands right\n"
        "   before the call is handled)}\n"
        "{\"fail_rate\":F} changes --fail-rate while running (0 turns it off); an empty body\n"
        "clears every rule and the fail rate; POST /_sim/reset restores the --fail-rate given at\n"
        "start. GET /_sim/stats counts a faulted call under the status its client saw (0: drop);\n"
        "GET /_sim/log lists the answered API calls in order (?since=N: from the N-th on).\n",
        out);
}

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000000)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int multi_add(struct sim_multi *m, const char *value)
{
    if (m->n >= SIM_MULTI_MAX || !*value)
        return -1;
    m->v[m->n++] = value;
    return 0;
}

void sim_parse_args(int argc, char **argv, const char *prog, const char *summary,
                    struct sim_opts *opts, const struct sim_opt *extra, size_t n)
{
    enum { COMMON = 6 };
    struct option *lo = calloc(COMMON + n + 1, sizeof *lo);
    if (!lo) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    static const char *const common[COMMON] = {"port",      "latency-ms", "jitter-ms",
                                               "fail-rate", "seed",       "help"};
    for (int i = 0; i < COMMON; i++)
        lo[i] =
            (struct option){common[i], i == 5 ? no_argument : required_argument, NULL, 1000 + i};
    for (size_t i = 0; i < n; i++)
        lo[COMMON + i] = (struct option){extra[i].name, required_argument, NULL, 2000 + (int)i};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int rc = 0;
        const char *name = "?";
        int seed = 0;
        switch (c) {
        case 1000:
            rc = parse_int(optarg, &opts->port) || opts->port > 65535;
            break;
        case 1001:
            rc = parse_int(optarg, &opts->latency_ms);
            break;
        case 1002:
            rc = parse_int(optarg, &opts->jitter_ms);
            break;
        case 1003:
            rc = parse_double(optarg, &opts->fail_rate) || opts->fail_rate > 1;
            break;
        case 1004:
            rc = parse_int(optarg, &seed);
            opts->seed = seed;
            break;
        case 1005:
            usage(stdout, prog, summary, opts, extra, n);
            free(lo);
            exit(0);
        default:
            if (c >= 2000 && (size_t)(c - 2000) < n) {
                const struct sim_opt *o = &extra[c - 2000];
                if (o->type == SIM_OPT_INT)
                    rc = parse_int(optarg, o->target);
                else if (o->type == SIM_OPT_DOUBLE)
                    rc = parse_double(optarg, o->target);
                else if (o->type == SIM_OPT_MULTI)
                    rc = multi_add(o->target, optarg);
                else
                    *(const char **)o->target = optarg;
                break;
            }
            fprintf(stderr, "%s: unknown option or missing value: %s (see --help)\n", prog,
                    argv[optind - 1]);
            free(lo);
            exit(2);
        }
        if (rc) {
            for (const struct option *o = lo; o->name; o++)
                if (o->val == c)
                    name = o->name;
            fprintf(stderr, "%s: invalid value for --%s: %s\n", prog, name, optarg);
            free(lo);
            exit(2);
        }
    }
    free(lo);
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument: %s (see --help)\n", prog, argv[optind]);
        exit(2);
    }
}

/* ---- stats -------------------------------------------------------------------------------- */

static void stat_count(struct sim *sim, const char *method, const char *route, int status)
{
    for (size_t i = 0; i < sim->nstats; i++) {
        struct sim_stat *s = &sim->stats[i];
        if (s->status == status && strcmp(s->route, route) == 0 && strcmp(s->method, method) == 0) {
            s->count++;
            return;
        }
    }
    if (sim->nstats == sim->capstats) {
        size_t cap = sim->capstats ? sim->capstats * 2 : 32;
        struct sim_stat *ns = realloc(sim->stats, cap * sizeof *ns);
        if (!ns)
            return;
        sim->stats = ns;
        sim->capstats = cap;
    }
    struct sim_stat *s = &sim->stats[sim->nstats];
    s->method = strdup(method);
    s->route = strdup(route);
    if (!s->method || !s->route) {
        free(s->method);
        free(s->route);
        return;
    }
    s->status = status;
    s->count = 1;
    sim->nstats++;
}

static void stats_clear(struct sim *sim)
{
    for (size_t i = 0; i < sim->nstats; i++) {
        free(sim->stats[i].method);
        free(sim->stats[i].route);
    }
    sim->nstats = 0;
}

/* Appends an answered API call to the log (dropped, and marked truncated, beyond SIM_LOG_MAX). */
static void log_append(struct sim *sim, const char *method, const char *route, int status)
{
    if (sim->nlog == sim->caplog) {
        size_t cap = sim->caplog ? sim->caplog * 2 : 256;
        struct sim_logent *nl = cap <= SIM_LOG_MAX ? realloc(sim->log, cap * sizeof *nl) : NULL;
        if (!nl) {
            sim->log_truncated = true;
            return;
        }
        sim->log = nl;
        sim->caplog = cap;
    }
    sim->log[sim->nlog++] =
        (struct sim_logent){method, route, status, (long long)(uv_hrtime() / 1000)};
}

static void on_answered(const char *method, const char *route, int status, void *ud)
{
    if (route && strncmp(route, SIM_ADMIN_PREFIX, sizeof SIM_ADMIN_PREFIX - 1) != 0) {
        stat_count(ud, method, route, status);
        log_append(ud, method, route, status);
    }
}

/* GET /_sim/log[?since=N]: {"calls":[{"seq","method","route","status","t_us"}],"total":n,
 * "truncated":bool}, the API calls in the order they were answered, from the N-th (0-based). */
static void on_log(struct httpd_req *req, void *ud)
{
    struct sim *sim = ud;
    char buf[24];
    size_t since = 0;
    if (httpd_query_get(httpd_req_query(req), "since", buf, sizeof buf) > 0)
        since = (size_t)strtoull(buf, NULL, 10);
    json_t *calls = json_array();
    for (size_t i = since; i < sim->nlog; i++) {
        const struct sim_logent *l = &sim->log[i];
        json_array_append_new(calls, json_pack("{s:I,s:s,s:s,s:i,s:I}", "seq", (json_int_t)i,
                                               "method", l->method, "route", l->route, "status",
                                               l->status, "t_us", (json_int_t)l->t_us));
    }
    httpd_respond_json(req, 200,
                       json_pack("{s:o,s:I,s:b}", "calls", calls, "total", (json_int_t)sim->nlog,
                                 "truncated", sim->log_truncated));
}

static void log_clear(struct sim *sim)
{
    free(sim->log);
    sim->log = NULL;
    sim->nlog = sim->caplog = 0;
    sim->log_truncated = false;
}

static void on_stats(struct httpd_req *req, void *ud)
{
    struct sim *sim = ud;
    json_t *calls = json_array();
    for (size_t i = 0; i < sim->nstats; i++) {
        const struct sim_stat *s = &sim->stats[i];
        json_array_append_new(calls,
                              json_pack("{s:s,s:s,s:i,s:I}", "method", s->method, "route", s->route,
                                        "status", s->status, "count", (json_int_t)s->count));
    }
    httpd_respond_json(req, 200, json_pack("{s:o}", "calls", calls));
}

/* ---- faults ------------------------------------------------------------------------------- */

static void fault_free(struct sim_fault *f)
{
    free(f->method);
    free(f->route);
    json_decref(f->ui_edit);
}

static void faults_clear(struct sim *sim)
{
    for (size_t i = 0; i < sim->nfaults; i++)
        fault_free(&sim->faults[i]);
    free(sim->faults);
    sim->faults = NULL;
    sim->nfaults = 0;
}

/* Parses one fault rule; NULL on success, else what is wrong. */
static const char *fault_parse(const struct sim *sim, json_t *o, struct sim_fault *f)
{
    memset(f, 0, sizeof *f);
    f->count = -1;
    if (!json_is_object(o))
        return "a fault is an object";
    json_t *v;
    if ((v = json_object_get(o, "method")) && !json_is_null(v)) {
        if (!json_is_string(v))
            return "method must be a string";
        f->method = strdup(json_string_value(v));
    }
    if ((v = json_object_get(o, "route")) && !json_is_null(v)) {
        if (!json_is_string(v))
            return "route must be a string";
        f->route = strdup(json_string_value(v));
    }
    if ((v = json_object_get(o, "status"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 599)
            return "status must be an HTTP status";
        f->status = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "count"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return "count must be a positive integer";
        f->count = (long)json_integer_value(v);
    }
    if ((v = json_object_get(o, "rate"))) {
        if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1)
            return "rate must be in (0, 1]";
        f->rate = json_number_value(v);
    }
    if ((v = json_object_get(o, "delay_ms"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3600000)
            return "delay_ms must be 0..3600000";
        f->delay_ms = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "after"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return "after must be an integer >= 0";
        f->after = (long)json_integer_value(v);
    }
    if ((v = json_object_get(o, "apply"))) {
        if (!json_is_boolean(v))
            return "apply must be true or false";
        f->apply = json_is_true(v);
    }
    if ((v = json_object_get(o, "drop"))) {
        if (!json_is_boolean(v))
            return "drop must be true or false";
        f->drop = json_is_true(v);
    }
    if ((v = json_object_get(o, "kill_pid"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 2 || json_integer_value(v) > INT_MAX)
            return "kill_pid must be a process id > 1";
        f->kill_pid = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "ui_edit"))) {
        if (!sim->ui_edit)
            return "this simulator has no ui_edit";
        if (!json_is_object(v) || json_object_size(v) == 0)
            return "ui_edit must be an object of attributes";
        f->ui_edit = json_deep_copy(v);
    }
    if (json_object_get(o, "fail_rate"))
        return "fail_rate is set alone: {\"fail_rate\":F}";
    if (f->status != 0 && f->status < 100)
        return "status must be an HTTP status";
    if (f->drop && f->status != 0)
        return "a drop closes the connection: it has no status";
    if (f->apply && f->status == 0 && !f->drop)
        return "apply needs a status or drop";
    if (f->status == 0 && f->delay_ms == 0 && !f->drop && !f->kill_pid && !f->ui_edit)
        return "a fault needs a status, drop, delay_ms, kill_pid or ui_edit";
    return NULL;
}

static json_t *faults_json(const struct sim *sim)
{
    json_t *a = json_array();
    for (size_t i = 0; i < sim->nfaults; i++) {
        const struct sim_fault *f = &sim->faults[i];
        json_t *o = json_object();
        json_object_set_new(o, "method", f->method ? json_string(f->method) : json_null());
        json_object_set_new(o, "route", f->route ? json_string(f->route) : json_null());
        json_object_set_new(o, "status", json_integer(f->status));
        if (f->count >= 0)
            json_object_set_new(o, "count", json_integer(f->count));
        if (f->rate > 0)
            json_object_set_new(o, "rate", json_real(f->rate));
        json_object_set_new(o, "delay_ms", json_integer(f->delay_ms));
        json_object_set_new(o, "after", json_integer(f->after));
        json_object_set_new(o, "apply", json_boolean(f->apply));
        json_object_set_new(o, "drop", json_boolean(f->drop));
        if (f->kill_pid)
            json_object_set_new(o, "kill_pid", json_integer(f->kill_pid));
        if (f->ui_edit)
            json_object_set(o, "ui_edit", f->ui_edit);
        json_array_append_new(a, o);
    }
    return a;
}

/* The answer of POST and GET /_sim/faults: {"faults":[rules],"fail_rate":F}. */
static void faults_respond(struct httpd_req *req, const struct sim *sim)
{
    httpd_respond_json(
        req, 200, json_pack("{s:o,s:f}", "faults", faults_json(sim), "fail_rate", sim->fail_rate));
}

/* {"fail_rate":F} alone sets the fail rate: 0, or -1 after answering 400. */
static int fail_rate_set(struct sim *sim, struct httpd_req *req, json_t *body)
{
    json_t *v = json_object_get(body, "fail_rate");
    double rate = json_is_number(v) ? json_number_value(v) : -1;
    if (json_object_size(body) != 1 || !(rate >= 0 && rate <= 1)) {
        httpd_respond_error(req, 400, "fail_rate is set alone: {\"fail_rate\":F}, F in [0, 1]");
        return -1;
    }
    sim->fail_rate = rate;
    return 0;
}

static void on_faults_post(struct httpd_req *req, void *ud)
{
    struct sim *sim = ud;
    json_t *body;
    if (sim_body_json(req, &body, true) != 0)
        return;
    if (!body || (json_is_object(body) && json_object_size(body) == 0) ||
        (json_is_array(body) && json_array_size(body) == 0)) {
        faults_clear(sim); /* no faults of any kind: the fail rate too */
        sim->fail_rate = 0;
        json_decref(body);
        faults_respond(req, sim);
        return;
    }
    if (json_is_object(body) && json_object_get(body, "fail_rate")) {
        if (fail_rate_set(sim, req, body) == 0)
            faults_respond(req, sim);
        json_decref(body);
        return;
    }
    size_t n = json_is_array(body) ? json_array_size(body) : 1;
    struct sim_fault *nf = realloc(sim->faults, (sim->nfaults + n) * sizeof *nf);
    if (!nf) {
        json_decref(body);
        httpd_respond_error(req, 500, "out of memory");
        return;
    }
    sim->faults = nf;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_is_array(body) ? json_array_get(body, i) : body;
        const char *why = fault_parse(sim, o, &sim->faults[sim->nfaults + i]);
        if (why) {
            for (size_t j = 0; j <= i; j++)
                fault_free(&sim->faults[sim->nfaults + j]);
            json_decref(body);
            httpd_respond_error(req, 400, why);
            return;
        }
    }
    sim->nfaults += n;
    json_decref(body);
    faults_respond(req, sim);
}

static void on_faults_get(struct httpd_req *req, void *ud)
{
    faults_respond(req, ud);
}

/* The first fault rule that fires for this request, into *hit (its count consumed; a rule still
 * letting calls through counts this one down and the search goes on). False if none fires. */
static bool fault_fire(struct sim *sim, const char *method, const char *route, struct sim_hit *hit)
{
    for (size_t i = 0; i < sim->nfaults; i++) {
        struct sim_fault *f = &sim->faults[i];
        if ((f->method && strcmp(f->method, method) != 0) ||
            (f->route && strcmp(f->route, route) != 0))
            continue;
        if (f->after > 0) {
            f->after--;
            continue;
        }
        if (f->rate > 0 && sim_rand(sim) >= f->rate)
            continue;
        hit->status = f->status;
        hit->delay_ms = f->delay_ms;
        hit->apply = f->apply;
        hit->drop = f->drop;
        hit->ui_edit = json_incref(f->ui_edit); /* the rule may be gone below */
        hit->kill_pid = f->kill_pid;
        if (f->count > 0 && --f->count == 0) {
            fault_free(f);
            memmove(f, f + 1, (sim->nfaults - i - 1) * sizeof *f);
            sim->nfaults--;
        }
        return true;
    }
    return false;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* An "apply" fault's answer, in place of the handler's: ud carries the fault's status, 0 for a
 * drop (an integer, so nothing is allocated per request). */
static void on_applied(struct httpd_req *req, int handler_status, void *ud)
{
    (void)handler_status;
    int status = (int)(intptr_t)ud;
    if (status)
        httpd_respond_error(req, status, SIM_FAULT_MSG);
    else
        httpd_drop(req);
}

/* A "kill_pid" fault: the answer is out, now the process dies. */
static void on_kill_done(int status, void *ud)
{
    (void)status;
    kill((pid_t)(intptr_t)ud, SIGKILL);
}

/* Acts on the request as the hit says; releases the hit's ui_edit. */
static void act(struct sim *sim, struct httpd_req *req, struct sim_route *r, struct sim_hit *hit)
{
    if (hit->ui_edit) {
        sim->ui_edit(req, hit->ui_edit, sim->ui_edit_ud);
        json_decref(hit->ui_edit);
        hit->ui_edit = NULL;
    }
    if (hit->kill_pid)
        httpd_req_on_done(req, on_kill_done, (void *)(intptr_t)hit->kill_pid);
    if (hit->apply) {
        httpd_req_intercept(req, on_applied, (void *)(intptr_t)(hit->drop ? 0 : hit->status));
        r->fn(req, r->ud);
    } else if (hit->drop) {
        httpd_drop(req);
    } else if (hit->status) {
        httpd_respond_error(req, hit->status, SIM_FAULT_MSG);
    } else {
        r->fn(req, r->ud);
    }
}

static void on_delay_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delay(uv_timer_t *t)
{
    struct sim_delayed *d = t->data;
    act(d->route->sim, d->req, d->route, &d->hit);
    uv_close((uv_handle_t *)&d->timer, on_delay_closed);
}

static void dispatch(struct httpd_req *req, void *ud)
{
    struct sim_route *r = ud;
    struct sim *sim = r->sim;
    struct sim_hit hit = {0};
    if (!fault_fire(sim, httpd_req_method(req), r->tmpl, &hit) && sim->fail_rate > 0 &&
        sim_rand(sim) < sim->fail_rate)
        hit.status = 503;
    int delay = hit.delay_ms + sim->opts.latency_ms;
    if (sim->opts.jitter_ms > 0)
        delay += (int)sim_rand_below(sim, (unsigned long)sim->opts.jitter_ms + 1);
    if (delay <= 0) {
        act(sim, req, r, &hit);
        return;
    }
    struct sim_delayed *d = calloc(1, sizeof *d);
    if (!d) {
        json_decref(hit.ui_edit);
        httpd_respond_error(req, 500, "out of memory");
        return;
    }
    d->req = req;
    d->route = r;
    d->hit = hit;
    uv_timer_init(sim->loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_delay, (uint64_t)delay, 0);
}

int sim_api_route(struct sim *sim, const char *method, const char *tmpl, httpd_handler_fn fn,
                  void *ud)
{
    struct sim_route *r = calloc(1, sizeof *r);
    if (!r || !(r->tmpl = strdup(tmpl))) {
        free(r);
        return -1;
    }
    r->sim = sim;
    r->fn = fn;
    r->ud = ud;
    r->next = sim->routes;
    sim->routes = r;
    return httpd_route(sim->srv, method, tmpl, dispatch, r, 0);
}

int sim_admin_route(struct sim *sim, const char *method, const char *tmpl, httpd_handler_fn fn,
                    void *ud)
{
    return httpd_route(sim->srv, method, tmpl, fn, ud, 0);
}

int sim_register_routes(struct sim *sim, const struct sim_route_def *api, size_t napi,
                        const struct sim_route_def *admin, size_t nadmin, void *ud)
{
    for (size_t i = 0; i < napi; i++)
        if (sim_api_route(sim, api[i].method, api[i].tmpl, api[i].fn, ud) != 0)
            return -1;
    for (size_t i = 0; i < nadmin; i++)
        if (sim_admin_route(sim, admin[i].method, admin[i].tmpl, admin[i].fn, ud) != 0)
            return -1;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void on_reset(struct httpd_req *req, void *ud)
{
    struct sim *sim = ud;
    stats_clear(sim);
    log_clear(sim);
    faults_clear(sim);
    sim->fail_rate = sim->opts.fail_rate; /* back to the start-up value */
    if (sim->reset)
        sim->reset(sim->reset_ud);
    httpd_respond_json(req, 200, json_pack("{s:b}", "reset", 1));
}

struct sim *sim_new(uv_loop_t *loop, const struct sim_opts *opts, sim_reset_fn reset, void *ud)
{
    struct sim *sim = calloc(1, sizeof *sim);
    if (!sim)
        return NULL;
    sim->loop = loop;
    sim->opts = *opts;
    sim->fail_rate = opts->fail_rate;
    sim->reset = reset;
    sim->reset_ud = ud;
    sim->rng[0] = (unsigned short)(opts->seed & 0xffff);
    sim->rng[1] = (unsigned short)((opts->seed >> 16) & 0xffff);
    sim->rng[2] = 0x330e;
    /* a test tool on loopback: every client is 127.0.0.1, no budgets per client */
    struct httpd_opts hopts = {.default_max_body = 16u << 20,
                               .max_connections = 4096,
                               .max_connections_per_client = 4096,
                               .max_body_held = (size_t)1 << 30,
                               .max_body_held_per_client = (size_t)1 << 30};
    sim->srv = httpd_new(loop, &hopts);
    if (!sim->srv)
        goto err;
    httpd_set_observer(sim->srv, on_answered, sim);
    if (sim_admin_route(sim, "POST", "/_sim/reset", on_reset, sim) != 0 ||
        sim_admin_route(sim, "GET", "/_sim/stats", on_stats, sim) != 0 ||
        sim_admin_route(sim, "GET", "/_sim/log", on_log, sim) != 0 ||
        sim_admin_route(sim, "POST", "/_sim/faults", on_faults_post, sim) != 0 ||
        sim_admin_route(sim, "GET", "/_sim/faults", on_faults_get, sim) != 0)
        goto err;
    return sim;
err:
    sim_free(sim);
    return NULL;
}

void sim_free(struct sim *sim)
{
    if (!sim)
        return;
    stats_clear(sim);
    free(sim->stats);
    log_clear(sim);
    faults_clear(sim);
    for (struct sim_route *r = sim->routes, *next; r; r = next) {
        next = r->next;
        free(r->tmpl);
        free(r);
    }
    free(sim);
}

void sim_set_ui_edit(struct sim *sim, sim_ui_edit_fn fn, void *ud)
{
    sim->ui_edit = fn;
    sim->ui_edit_ud = ud;
}

void sim_set_stop(struct sim *sim, void (*fn)(void *ud), void *ud)
{
    sim->stop = fn;
    sim->stop_ud = ud;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    struct sim *sim = s->data;
    uv_close((uv_handle_t *)&sim->sigterm, NULL);
    uv_close((uv_handle_t *)&sim->sigint, NULL);
    if (sim->stop)
        sim->stop(sim->stop_ud);
    httpd_close(sim->srv);
    sim->srv = NULL;
}

int sim_run(struct sim *sim)
{
    char host_port[64], err[256];
    int port = 0;
    signal(SIGPIPE, SIG_IGN);
    snprintf(host_port, sizeof host_port, "127.0.0.1:%d", sim->opts.port);
    if (httpd_listen(sim->srv, host_port, &port, err, sizeof err) != 0) {
        fprintf(stderr, "cannot listen on %s: %s\n", host_port, err);
        /* Free the server as a signal would: close it and let the loop finish. */
        httpd_close(sim->srv);
        sim->srv = NULL;
        uv_run(sim->loop, UV_RUN_DEFAULT);
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    uv_signal_init(sim->loop, &sim->sigterm);
    uv_signal_init(sim->loop, &sim->sigint);
    sim->sigterm.data = sim->sigint.data = sim;
    uv_signal_start(&sim->sigterm, on_signal, SIGTERM);
    uv_signal_start(&sim->sigint, on_signal, SIGINT);
    uv_run(sim->loop, UV_RUN_DEFAULT);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

double sim_rand(struct sim *sim)
{
    return erand48(sim->rng);
}

unsigned long sim_rand_below(struct sim *sim, unsigned long n)
{
    return n ? (unsigned long)(sim_rand(sim) * (double)n) % n : 0;
}

int sim_body_json(struct httpd_req *req, json_t **out, bool allow_empty)
{
    size_t len = 0;
    const char *body = httpd_req_body(req, &len);
    *out = NULL;
    if (!body || len == 0) {
        if (allow_empty)
            return 0;
        httpd_respond_error(req, 400, "a JSON body is required");
        return -1;
    }
    json_error_t e;
    *out = json_loadb(body, len, 0, &e);
    if (!*out) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON: %s (line %d, column %d)", e.text, e.line,
                 e.column);
        httpd_respond_error(req, 400, msg);
        return -1;
    }
    return 0;
}

void sim_now_utc(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void sim_now_local(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
}
