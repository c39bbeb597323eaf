/* harness.h: what tests need to run real processes: spawn and stop binaries, read their first
 * line, pick free loopback ports, start a throw-away redis-server, poll for a condition with a
 * deadline (never sleep as synchronisation).
 *
 * Every child gets PR_SET_PDEATHSIG(SIGKILL), so a crashed test leaves no process behind; tests
 * still stop every child they start. Child stderr goes to the test's stderr (ctest shows it on
 * failure). */
#ifndef VMH_TEST_HARNESS_H
#define VMH_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* build/bin, where every binary of the project lands (set by CMake). */
const char *th_bin_dir(void);
/* "<bin dir>/<name>" written into buf; returns buf. */
const char *th_bin(const char *name, char *buf, size_t buflen);

/* Monotonic milliseconds. */
long long th_now_ms(void);

/* Polls expr every few ms (a statement): sets bool `ok` to whether expr became true
 * within timeout_ms. TH_WAIT(ok, count == 3, 5000); assert_true(ok); */
#define TH_WAIT(ok, expr, timeout_ms)                                                              \
    do {                                                                                           \
        long long th__end = th_now_ms() + (timeout_ms);                                            \
        while (!((ok) = (expr)) && th_now_ms() < th__end)                                          \
            th_sleep_ms(5);                                                                        \
    } while (0)
/* Polling interval only: not a synchronisation primitive. */
void th_sleep_ms(long long ms);

/* A loopback TCP port that was free a moment ago. */
int th_free_port(void);

/* A reproducible random number below `below` (xorshift64 on *state, which must not be 0): fuzz
 * and property tests fail the same way twice. */
unsigned th_rand(unsigned long long *state, unsigned below);

struct th_proc {
    pid_t pid;
    int out_fd; /* the child's stdout (pipe), -1 if not captured */
    int status; /* wait status once reaped */
    bool reaped;
};

/* Starts argv[0] (a path) with argv; env: NULL-terminated "NAME=value" entries put into the
 * child's environment on top of the current one (a "NAME" entry without '=' removes NAME).
 * capture_stdout: stdout into p->out_fd, else inherited. 0 or -1 (errno). */
int th_proc_start(struct th_proc *p, const char *const *argv, const char *const *env,
                  bool capture_stdout);
/* Reads one line of the child's stdout (without newline) within timeout_ms. 0, or -1 on EOF
 * or timeout. */
int th_proc_read_line(struct th_proc *p, char *buf, size_t buflen, long long timeout_ms);
/* Sends sig, waits up to timeout_ms for exit, then SIGKILLs. Returns the exit code (0..255),
 * 128+signal if killed by a signal, or -1. Safe to call twice. */
int th_proc_stop(struct th_proc *p, int sig, long long timeout_ms);
/* Waits for exit up to timeout_ms without signalling; exit code as above, -2 on timeout. */
int th_proc_wait(struct th_proc *p, long long timeout_ms);
bool th_proc_alive(struct th_proc *p);

/* Runs a binary to completion, capturing stdout+stderr into out (truncated, NUL-terminated).
 * Returns the exit code as th_proc_stop. */
int th_run(const char *const *argv, const char *const *env, char *out, size_t outlen,
           long long timeout_ms);

/* A redis-server on 127.0.0.1:<free port>, no persistence, optional password. */
struct th_redis {
    struct th_proc proc;
    int port;
    char url[300];
    char dir[64]; /* its working directory (a test may switch AOF on): removed at stop */
};
int th_redis_start(struct th_redis *r, const char *password);
/* The same on a given port (e.g. to restart a stopped server where clients expect it), retried
 * for up to 5 s while the port is still taken. 0 or -1. */
int th_redis_start_port(struct th_redis *r, int port, const char *password);
void th_redis_stop(struct th_redis *r);

/* kafka-mock from the bin dir with N partitions; bootstrap string into r->bootstrap. */
struct th_kafka {
    struct th_proc proc;
    char bootstrap[512];
    int admin_port; /* 0 unless started with the admin interface */
};
int th_kafka_start(struct th_kafka *k, int partitions);
/* The same with kafka-mock's fault-injection interface (--admin-port 0). */
int th_kafka_start_admin(struct th_kafka *k, int partitions);
/* Sets every broker down (up = false) or up again. 0 on success. */
int th_kafka_brokers(struct th_kafka *k, bool up);
/* SIGTERM, then waits; returns kafka-mock's exit code as th_proc_stop (0 = clean shutdown). */
int th_kafka_stop(struct th_kafka *k);

/* A simulator (espocrm-sim, advoware-sim) from the bin dir on a free port: extra arguments
 * (NULL-terminated, may be NULL) after "--port 0"; base URL "http://127.0.0.1:<port>". */
struct th_sim {
    struct th_proc proc;
    int port;
    char url[64];
};
int th_sim_start(struct th_sim *s, const char *name, const char *const *args);
/* Stops it with SIGTERM; returns its exit code (0 expected). */
int th_sim_stop(struct th_sim *s);

/* One HTTP exchange with JSON for tests (a fresh libcurl handle each time). body: JSON text or
 * NULL; headers: NULL-terminated "Name: value" or NULL. Returns the status (0 on a transport
 * error); *out (if not NULL) gets the parsed answer or NULL (caller json_decref()s). */
long th_http(const char *method, const char *url, const char *const *headers, const char *body,
             json_t **out);

/* Calls a simulator counted for method + route template (SPEC §8.1 GET /_sim/stats), summed
 * over statuses (status 0) or for one status. -1 if the stats could not be read. */
long th_sim_calls(const struct th_sim *s, const char *method, const char *route, long status);

/* A Prometheus metric from http://127.0.0.1:<port>/metrics, summed over the label sets whose
 * text contains `labels` (NULL: all). 0 when absent or unreachable. */
double th_metric(int port, const char *name, const char *labels);

/* A message read back from Kafka. */
struct th_msg {
    char key[80];
    int partition;
    char value[1024];
};
/* Reads `topic` (partitions 0..partitions-1, from the beginning, assigned: no group join) and
 * keeps messages whose key starts with key_prefix (NULL: all), until `want` were kept, one with
 * key == stop_key (if not NULL) was kept, or timeout_ms passed. Returns how many were kept. */
int th_kafka_read(const char *bootstrap, const char *topic, int partitions, const char *key_prefix,
                  const char *stop_key, struct th_msg *out, int want, long long timeout_ms);

/* Connects a TCP socket to 127.0.0.1:port; fd or -1. */
int th_tcp_connect(int port);

/* A test producer: keyed messages to a topic, with every delivery's partition and offset kept
 * (the project's producer settings: murmur2_random, so keys land where vmh-producer puts them). */
struct th_sent {
    char key[80];
    char topic[128];
    int partition;
    long long offset;
};
struct th_kprod;
struct th_kprod *th_kprod_new(const char *bootstrap);
/* Queues one message; partition -1 = by key. 0, or -1 if librdkafka refused it. */
int th_kprod_send(struct th_kprod *p, const char *topic, int partition, const char *key,
                  const char *value, size_t len);
/* Queues a SPEC §2 message {"v":1,"entityId":key,"event":"update",...} for key. */
int th_kprod_send_entity(struct th_kprod *p, const char *topic, int partition, const char *key);
/* Waits until every queued message is delivered or failed; returns the failures (0 = all
 * delivered), -1 on timeout. */
int th_kprod_flush(struct th_kprod *p, long long timeout_ms);
/* Deliveries so far, in the order they were reported. */
size_t th_kprod_count(struct th_kprod *p);
const struct th_sent *th_kprod_sent(struct th_kprod *p, size_t i);
void th_kprod_free(struct th_kprod *p);

/* A consumer of group (joining nothing) assigned to partitions 0..partitions-1 of topic from
 * the beginning (topic NULL: assigned nothing, for rd_kafka_committed()). NULL on error. */
rd_kafka_t *th_kafka_reader(const char *bootstrap, const char *group, const char *topic,
                            int partitions);

/* The committed offsets of `group` for partitions 0..n-1 of topic into out (-1 = none
 * committed). Joins no group. 0, or -1 on error. */
int th_kafka_committed(const char *bootstrap, const char *group, const char *topic, int n,
                       long long *out);

/* vmh-worker-rec (the worker runtime with the recording handler) against bootstrap and
 * redis_url, its ops endpoint on a free port, test-friendly Kafka timings (auto commit every
 * 100 ms, 6 s session timeout, statistics every 500 ms), dummy EspoCRM/Advoware settings, then
 * extra_env ("NAME=value", NULL-terminated, may be NULL) on top. */
struct th_worker {
    struct th_proc proc;
    int metrics_port;
    bool gone_reported; /* th_worker_ready said once that the process exited */
};
int th_worker_start(struct th_worker *w, const char *bootstrap, const char *redis_url,
                    const char *const *extra_env);
/* The same for another worker binary (name in the bin dir, e.g. "vmh-worker"); extra_env
 * entries override the dummy settings. */
int th_worker_start_bin(struct th_worker *w, const char *name, const char *bootstrap,
                        const char *redis_url, const char *const *extra_env);
/* GET /readyz answered 200. */
bool th_worker_ready(struct th_worker *w);

/* Waits until p serves GET /healthz with 200 on 127.0.0.1:ops_port, or exits, or timeout_ms
 * passed. 0 when healthy, -1 otherwise. */
int th_proc_healthy(struct th_proc *p, int ops_port, long long timeout_ms);

/* The recording handler's log (vmh-worker-rec, REC_MODE=record): one struct th_run per run. */
struct th_run_msg {
    char topic[128];
    int partition;
    long long offset;
};
struct th_run {
    char key[80];
    int pid;
    int thread;
    long long start_us, end_us; /* monotonic */
    size_t n;
    struct th_run_msg *msgs;
};
struct redis_client;
/* Reads and parses rec:runs; returns the number of runs (-1 on a Redis error) and *out (free
 * with th_runs_free). */
long th_rec_runs(struct redis_client *c, struct th_run **out);
void th_runs_free(struct th_run *runs, long n);
/* Messages completed so far (rec:count, the sum of n over the runs); -1 on a Redis error. */
long th_rec_done(struct redis_client *c);
/* A client of the test's redis-server (fresh connection). */
struct redis_client *th_redis_client(const struct th_redis *r);

/* What every worker test runs against: kafka-mock (partitions), a redis-server, a client of it
 * and a test producer. */
struct th_wstack {
    struct th_kafka kafka;
    struct th_redis redis;
    struct redis_client *rc;
    struct th_kprod *kp;
    int partitions;
};
int th_wstack_start(struct th_wstack *s, int partitions);
void th_wstack_stop(struct th_wstack *s);
/* Integer reply of a one-argument command ("EXISTS %s"), -1 on error or another reply type. */
long th_redis_int(struct redis_client *c, const char *fmt, const char *arg);
/* Whether a run for key has started (vmh-worker-rec's rec:started holds it). */
bool th_rec_started(struct redis_client *c, const char *key);
/* The group's committed offset of one partition of topic (-1 none, -2 error). */
long long th_wstack_committed(struct th_wstack *s, const char *group, const char *topic,
                              int partition);

#endif
