/* harness.c: process, port, redis-server and kafka-mock helpers for tests (see harness.h). */
#include "harness.h"

#include "httpc.h"
#include "kafka.h"
#include "msg.h"
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef VMH_BIN_DIR
#error "VMH_BIN_DIR must be defined by the build"
#endif

const char *th_bin_dir(void)
{
    const char *env = getenv("VMH_BIN_DIR");
    return env && *env ? env : VMH_BIN_DIR;
}

const char *th_bin(const char *name, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s/%s", th_bin_dir(), name);
    return buf;
}

long long th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int th_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The child's environment, built in the parent: the current one with env's "NAME=value"
 * entries put on top, the last of a name winning ("NAME" alone removes NAME). The child must not
 * call setenv (malloc) between fork and exec: another thread of the test (librdkafka's, curl's) may
 * hold the allocator's lock at the fork, and the child would hang before it ever ran. NULL on out
 * of memory; free the array (not the strings) with free(). */
static char **child_env(const char *const *env)
{
    extern char **environ;
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (env && env[k])
        k++;
    char **out = calloc(n + k + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < k && !replaced; j++) {
            size_t len = strcspn(env[j], "=");
            replaced = strncmp(environ[i], env[j], len) == 0 && environ[i][len] == '=';
        }
        if (!replaced)
            out[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++) { /* a later entry of the same name wins */
        size_t len = strcspn(env[j], "=");
        bool later = false;
        for (size_t l = j + 1; l < k && !later; l++)
            later = strcspn(env[l], "=") == len && strncmp(env[l], env[j], len) == 0;
        if (env[j][len] == '=' && !later)
            out[m++] = (char *)env[j];
    }
    return out;
}

static int spawn(struct th_proc *p, const char *const *argv, const char *const *env, int out_mode,
                 int *merge_fd)
{
    int pipefd[2] = {-1, -1};
    memset(p, 0, sizeof *p);
    p->out_fd = -1;
    char **envp = child_env(env);
    if (!envp)
        return -1;
    if (out_mode && pipe2(pipefd, O_CLOEXEC) != 0) {
        free(envp);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        free(envp);
        if (out_mode) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        if (out_mode) {
            dup2(pipefd[1], 1);
            if (out_mode == 2)
                dup2(pipefd[1], 2);
        }
        execve(argv[0], (char *const *)argv, envp);
        static const char msg[] = "harness: exec failed\n"; /* async-signal-safe */
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        _exit(127);
    }
    free(envp);
    p->pid = pid;
    if (out_mode) {
        close(pipefd[1]);
        p->out_fd = pipefd[0];
        if (merge_fd)
            *merge_fd = pipefd[0];
    }
    return 0;
}

int th_proc_start(struct th_proc *p, const char *const *argv, const char *const *env,
                  bool capture_stdout)
{
    return spawn(p, argv, env, capture_stdout ? 1 : 0, NULL);
}

int th_proc_read_line(struct th_proc *p, char *buf, size_t buflen, long long timeout_ms)
{
    size_t n = 0;
    long long end = th_now_ms() + timeout_ms;
    if (p->out_fd < 0 || buflen == 0)
        return -1;
    while (n + 1 < buflen) {
        long long left = end - th_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char c;
        ssize_t got = read(p->out_fd, &c, 1);
        if (got <= 0)
            break;
        if (c == '\n') {
            buf[n] = '\0';
            return 0;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    return -1;
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int th_proc_wait(struct th_proc *p, long long timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    long long end = th_now_ms() + timeout_ms;
    while (!p->reaped) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            break;
        }
        if (r < 0 && errno != EINTR)
            return -1;
        if (th_now_ms() >= end)
            return -2;
        th_sleep_ms(2);
    }
    return decode_status(p->status);
}

bool th_proc_alive(struct th_proc *p)
{
    if (p->pid <= 0 || p->reaped)
        return false;
    return th_proc_wait(p, 0) == -2;
}

int th_proc_stop(struct th_proc *p, int sig, long long timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    if (!p->reaped) {
        kill(p->pid, sig);
        if (th_proc_wait(p, timeout_ms) == -2) {
            kill(p->pid, SIGKILL);
            th_proc_wait(p, 10000);
        }
    }
    if (p->out_fd >= 0) {
        close(p->out_fd);
        p->out_fd = -1;
    }
    return p->reaped ? decode_status(p->status) : -1;
}

int th_run(const char *const *argv, const char *const *env, char *out, size_t outlen,
           long long timeout_ms)
{
    struct th_proc p;
    int fd = -1;
    size_t n = 0;
    if (spawn(&p, argv, env, 2, &fd) != 0)
        return -1;
    long long end = th_now_ms() + timeout_ms;
    for (;;) {
        long long left = end - th_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char tmp[4096];
        ssize_t got = read(fd, tmp, sizeof tmp);
        if (got <= 0)
            break;
        if (out && n + 1 < outlen) {
            size_t take = (size_t)got < outlen - 1 - n ? (size_t)got : outlen - 1 - n;
            memcpy(out + n, tmp, take);
            n += take;
        }
    }
    if (out && outlen)
        out[n] = '\0';
    long long left = end - th_now_ms();
    int code = th_proc_wait(&p, left > 0 ? left : 0);
    if (code == -2)
        code = th_proc_stop(&p, SIGKILL, 1000);
    else
        th_proc_stop(&p, SIGKILL, 0);
    return code;
}

static bool redis_answers(int port, const char *password)
{
    int fd = th_tcp_connect(port);
    if (fd < 0)
        return false;
    char req[512];
    if (password)
        snprintf(req, sizeof req, "AUTH %s\r\nPING\r\n", password);
    else
        snprintf(req, sizeof req, "PING\r\n");
    bool ok = false;
    if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        char buf[256] = {0};
        size_t n = 0;
        long long end = th_now_ms() + 1000;
        while (n < sizeof buf - 1 && th_now_ms() < end) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, 100) <= 0)
                continue;
            ssize_t got = read(fd, buf + n, sizeof buf - 1 - n);
            if (got <= 0)
                break;
            n += (size_t)got;
            if (strstr(buf, "+PONG")) {
                ok = true;
                break;
            }
        }
    }
    close(fd);
    return ok;
}

/* One attempt at a redis-server on 127.0.0.1:port; 0 once it answers PING (after AUTH). */
static int redis_start_on(struct th_redis *r, int port, const char *password)
{
    memset(r, 0, sizeof *r);
    r->port = port;
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", r->port);
    const char *argv[20];
    int i = 0;
    argv[i++] = "/usr/bin/redis-server";
    argv[i++] = "--port";
    argv[i++] = port_text;
    argv[i++] = "--bind";
    argv[i++] = "127.0.0.1";
    argv[i++] = "--save";
    argv[i++] = "";
    argv[i++] = "--appendonly";
    argv[i++] = "no";
    argv[i++] = "--loglevel";
    argv[i++] = "warning";
    snprintf(r->dir, sizeof r->dir, "/tmp/vmh-redis-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    argv[i++] = "--dir";
    argv[i++] = r->dir;
    if (password) {
        argv[i++] = "--requirepass";
        argv[i++] = password;
    }
    argv[i] = NULL;
    if (th_proc_start(&r->proc, argv, NULL, true) != 0) {
        th_redis_stop(r);
        return -1;
    }
    long long end = th_now_ms() + 5000;
    while (th_now_ms() < end && th_proc_alive(&r->proc)) {
        if (redis_answers(r->port, password)) {
            if (password)
                snprintf(r->url, sizeof r->url, "redis://:%s@127.0.0.1:%d/0", password, r->port);
            else
                snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
            return 0;
        }
        th_sleep_ms(10);
    }
    th_proc_stop(&r->proc, SIGKILL, 1000);
    th_redis_stop(r); /* its directory */
    return -1;
}

int th_redis_start(struct th_redis *r, const char *password)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        if (redis_start_on(r, th_free_port(), password) == 0)
            return 0;
        /* port taken meanwhile: try another */
    }
    return -1;
}

int th_redis_start_port(struct th_redis *r, int port, const char *password)
{
    long long end = th_now_ms() + 5000;
    do { /* the old server's socket may linger a moment after it exited */
        if (redis_start_on(r, port, password) == 0)
            return 0;
        th_sleep_ms(50);
    } while (th_now_ms() < end);
    return -1;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void th_redis_stop(struct th_redis *r)
{
    th_proc_stop(&r->proc, SIGTERM, 5000);
    if (r->dir[0])
        nftw(r->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = '\0';
}

static int kafka_start(struct th_kafka *k, int partitions, bool admin)
{
    char bin[512], parts[16], line[128];
    snprintf(parts, sizeof parts, "%d", partitions);
    const char *argv[] = {th_bin("kafka-mock", bin, sizeof bin),
                          "--partitions",
                          parts,
                          admin ? "--admin-port" : NULL,
                          "0",
                          NULL};
    memset(k, 0, sizeof *k);
    if (th_proc_start(&k->proc, argv, NULL, true) != 0)
        return -1;
    if (th_proc_read_line(&k->proc, k->bootstrap, sizeof k->bootstrap, 10000) != 0 ||
        !k->bootstrap[0] ||
        (admin && (th_proc_read_line(&k->proc, line, sizeof line, 10000) != 0 ||
                   sscanf(line, "admin listening on 127.0.0.1:%d", &k->admin_port) != 1))) {
        th_proc_stop(&k->proc, SIGKILL, 1000);
        return -1;
    }
    return 0;
}

int th_kafka_start(struct th_kafka *k, int partitions)
{
    return kafka_start(k, partitions, false);
}

int th_kafka_start_admin(struct th_kafka *k, int partitions)
{
    return kafka_start(k, partitions, true);
}

int th_kafka_brokers(struct th_kafka *k, bool up)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_mock/brokers/%s", k->admin_port,
             up ? "up" : "down");
    return th_http("POST", url, NULL, NULL, NULL) == 200 ? 0 : -1;
}

int th_kafka_stop(struct th_kafka *k)
{
    return th_proc_stop(&k->proc, SIGTERM, 5000);
}

int th_sim_start(struct th_sim *s, const char *name, const char *const *args)
{
    char bin[512], line[256];
    const char *argv[64];
    int n = 0;
    memset(s, 0, sizeof *s);
    argv[n++] = th_bin(name, bin, sizeof bin);
    argv[n++] = "--port";
    argv[n++] = "0";
    for (; args && *args && n < 63; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    if (th_proc_start(&s->proc, argv, NULL, true) != 0)
        return -1;
    if (th_proc_read_line(&s->proc, line, sizeof line, 10000) != 0 ||
        sscanf(line, "listening on 127.0.0.1:%d", &s->port) != 1) {
        fprintf(stderr, "harness: %s did not report its port (got \"%s\")\n", name, line);
        th_proc_stop(&s->proc, SIGKILL, 1000);
        return -1;
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return 0;
}

int th_sim_stop(struct th_sim *s)
{
    return th_proc_stop(&s->proc, SIGTERM, 10000);
}

long th_http(const char *method, const char *url, const char *const *headers, const char *body,
             json_t **out)
{
    struct httpc_opts opts = {.timeout_ms = 30000};
    struct httpc *c = httpc_new(&opts);
    struct httpc_resp r;
    char err[256];
    long status = 0;
    if (out)
        *out = NULL;
    if (!c)
        return 0;
    if (httpc_request(c, method, url, headers, body, body ? strlen(body) : 0, &r, err,
                      sizeof err) == 0) {
        status = r.status;
        if (out && r.body_len)
            *out = json_loadb(r.body, r.body_len, 0, NULL);
    } else {
        fprintf(stderr, "harness: %s %s: %s\n", method, url, err);
    }
    httpc_resp_clear(&r);
    httpc_free(c);
    return status;
}

double th_metric(int port, const char *name, const char *labels)
{
    char url[96], err[256], pat[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    snprintf(pat, sizeof pat, "\n%s", name);
    size_t plen = strlen(pat);
    struct httpc *c = httpc_new(NULL);
    struct httpc_resp r;
    double total = 0;
    if (c && httpc_request(c, "GET", url, NULL, NULL, 0, &r, err, sizeof err) == 0) {
        for (char *p = strstr(r.body, pat); p; p = strstr(p + 1, pat)) {
            char *after = p + plen;
            if (*after == ' ' && !labels) { /* unlabelled sample */
                total += strtod(after + 1, NULL);
                continue;
            }
            if (*after != '{')
                continue;
            char *close = strchr(after, '}');
            char *hit = labels ? strstr(after, labels) : after;
            if (close && hit && hit < close)
                total += strtod(close + 2, NULL);
        }
    }
    httpc_resp_clear(&r);
    httpc_free(c);
    return total;
}

rd_kafka_t *th_kafka_reader(const char *bootstrap, const char *group, const char *topic,
                            int partitions)
{
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(bootstrap, "test-reader", err, sizeof err);
    /* assign() needs a group id but joins no group: no wait for the mock's group join */
    if (!conf || kafka_conf_set(conf, "group.id", group, err, sizeof err) != 0 ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) != 0) {
        fprintf(stderr, "harness: kafka reader: %s\n", err);
        if (conf)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (topic) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
        for (int p = 0; p < partitions; p++)
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return rk;
}

int th_kafka_read(const char *bootstrap, const char *topic, int partitions, const char *key_prefix,
                  const char *stop_key, struct th_msg *out, int want, long long timeout_ms)
{
    rd_kafka_t *rk = th_kafka_reader(bootstrap, "test-reader", topic, partitions);
    if (!rk)
        return -1;
    int n = 0;
    long long end = th_now_ms() + timeout_ms;
    while (n < want && th_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err && m->key && m->key_len < sizeof out[n].key &&
            (!key_prefix || strncmp(m->key, key_prefix, strlen(key_prefix)) == 0)) {
            snprintf(out[n].key, sizeof out[n].key, "%.*s", (int)m->key_len, (char *)m->key);
            snprintf(out[n].value, sizeof out[n].value, "%.*s", (int)m->len, (char *)m->payload);
            out[n].partition = m->partition;
            if (stop_key && strcmp(out[n].key, stop_key) == 0)
                want = n + 1;
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* ---- Kafka producer and committed offsets ---------------------------------------------- */

struct th_kprod {
    rd_kafka_t *rk;
    struct th_sent *sent;
    size_t nsent, cap;
    long long queued, reported, failed;
};

static void th_kprod_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct th_kprod *p = opaque;
    (void)rk;
    p->reported++;
    if (m->err) {
        p->failed++;
        return;
    }
    if (p->nsent == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 1024;
        p->sent = realloc(p->sent, p->cap * sizeof *p->sent);
    }
    struct th_sent *s = &p->sent[p->nsent++];
    size_t kl = m->key_len < sizeof s->key - 1 ? m->key_len : sizeof s->key - 1;
    memcpy(s->key, m->key, kl);
    s->key[kl] = '\0';
    snprintf(s->topic, sizeof s->topic, "%s", rd_kafka_topic_name(m->rkt));
    s->partition = m->partition;
    s->offset = m->offset;
}

struct th_kprod *th_kprod_new(const char *bootstrap)
{
    char err[512];
    struct th_kprod *p = calloc(1, sizeof *p);
    rd_kafka_conf_t *conf = kafka_producer_conf_new(bootstrap, "test-producer", err, sizeof err);
    if (!p || !conf) {
        fprintf(stderr, "th_kprod_new: %s\n", err);
        free(p);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, th_kprod_dr);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!p->rk) {
        fprintf(stderr, "th_kprod_new: %s\n", err);
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    return p;
}

int th_kprod_send(struct th_kprod *p, const char *topic, int partition, const char *key,
                  const char *value, size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 10);
            continue;
        }
        if (err)
            return -1;
        p->queued++;
        rd_kafka_poll(p->rk, 0);
        return 0;
    }
}

int th_kprod_send_entity(struct th_kprod *p, const char *topic, int partition, const char *key)
{
    char *v = msg_encode(key, MSG_EVENT_UPDATE, MSG_SOURCE_WEBHOOK, NULL, 1767225600000LL);
    int rc = v ? th_kprod_send(p, topic, partition, key, v, strlen(v)) : -1;
    free(v);
    return rc;
}

int th_kprod_flush(struct th_kprod *p, long long timeout_ms)
{
    long long end = th_now_ms() + timeout_ms;
    while (p->reported < p->queued && th_now_ms() < end)
        rd_kafka_poll(p->rk, 20);
    return p->reported < p->queued ? -1 : (int)p->failed;
}

size_t th_kprod_count(struct th_kprod *p)
{
    return p->nsent;
}

const struct th_sent *th_kprod_sent(struct th_kprod *p, size_t i)
{
    return i < p->nsent ? &p->sent[i] : NULL;
}

void th_kprod_free(struct th_kprod *p)
{
    if (!p)
        return;
    rd_kafka_flush(p->rk, 5000);
    rd_kafka_destroy(p->rk);
    free(p->sent);
    free(p);
}

int th_kafka_committed(const char *bootstrap, const char *group, const char *topic, int n,
                       long long *out)
{
    rd_kafka_t *rk = th_kafka_reader(bootstrap, group, NULL, 0);
    if (!rk)
        return -1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i);
    int rc = rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        out[tp->partition] = tp->err || tp->offset < 0 ? -1 : tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the worker runtime ------------------------------------------------------------------- */

int th_worker_start(struct th_worker *w, const char *bootstrap, const char *redis_url,
                    const char *const *extra_env)
{
    return th_worker_start_bin(w, "vmh-worker-rec", bootstrap, redis_url, extra_env);
}

int th_worker_start_bin(struct th_worker *w, const char *name, const char *bootstrap,
                        const char *redis_url, const char *const *extra_env)
{
    char bin[512], brokers[600], redis[400], listen[64];
    const char *env[64];
    size_t n = 0;

    memset(w, 0, sizeof *w);
    w->metrics_port = th_free_port();
    snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", bootstrap);
    snprintf(redis, sizeof redis, "REDIS_URL=%s", redis_url);
    snprintf(listen, sizeof listen, "METRICS_LISTEN=127.0.0.1:%d", w->metrics_port);
    static const char *const fixed[] = {"ESPOCRM_URL=http://127.0.0.1:9",
                                        "ESPOCRM_API_KEY=test",
                                        "ADVOWARE_URL=http://127.0.0.1:9",
                                        "ADVOWARE_APP_ID=test",
                                        "ADVOWARE_API_KEY=dGVzdA==",
                                        "ADVOWARE_KANZLEI=test",
                                        "ADVOWARE_DATABASE=test",
                                        "ADVOWARE_USER=test",
                                        "ADVOWARE_PASSWORD=test",
                                        "LOG_FORMAT=text",
                                        "KAFKA_CFG_AUTO_COMMIT_INTERVAL_MS=100",
                                        "KAFKA_CFG_SESSION_TIMEOUT_MS=6000",
                                        "KAFKA_CFG_HEARTBEAT_INTERVAL_MS=500",
                                        "KAFKA_CFG_STATISTICS_INTERVAL_MS=500",
                                        "KAFKA_CFG_RECONNECT_BACKOFF_MAX_MS=300",
                                        NULL};
    env[n++] = brokers;
    env[n++] = redis;
    env[n++] = listen;
    for (size_t i = 0; fixed[i]; i++)
        env[n++] = fixed[i];
    for (size_t i = 0; extra_env && extra_env[i] && n < 63; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    const char *argv[] = {th_bin(name, bin, sizeof bin), NULL};
    return th_proc_start(&w->proc, argv, env, false);
}

int th_proc_healthy(struct th_proc *p, int ops_port, long long timeout_ms)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", ops_port);
    bool up;
    TH_WAIT(up, th_http("GET", url, NULL, NULL, NULL) == 200 || !th_proc_alive(p), timeout_ms);
    return up && th_proc_alive(p) ? 0 : -1;
}

bool th_worker_ready(struct th_worker *w)
{
    char url[80];
    if (!th_proc_alive(&w->proc)) { /* say so once, instead of polling a port nobody opens */
        if (!w->gone_reported)
            fprintf(stderr, "harness: worker pid %d exited (wait status %d) before it was ready\n",
                    (int)w->proc.pid, w->proc.status);
        w->gone_reported = true;
        return false;
    }
    int fd = th_tcp_connect(w->metrics_port); /* not listening yet: quietly not ready */
    if (fd < 0)
        return false;
    close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", w->metrics_port);
    return th_http("GET", url, NULL, NULL, NULL) == 200;
}

/* ---- the recording handler's log --------------------------------------------------------- */

/* "key|pid|thread|start|end|t:p:o,t:p:o" → r. 0, or -1 if malformed. */
static int th_run_parse(const char *line, struct th_run *r)
{
    memset(r, 0, sizeof *r);
    const char *bar = strchr(line, '|');
    if (!bar || (size_t)(bar - line) >= sizeof r->key)
        return -1;
    memcpy(r->key, line, (size_t)(bar - line));
    int used = 0;
    if (sscanf(bar + 1, "%d|%d|%lld|%lld|%n", &r->pid, &r->thread, &r->start_us, &r->end_us,
               &used) != 4)
        return -1;
    const char *p = bar + 1 + used;
    size_t cap = 1;
    for (const char *q = p; *q; q++)
        cap += *q == ',';
    r->msgs = calloc(cap, sizeof *r->msgs);
    /* Kafka topic names hold no ':' (only [a-zA-Z0-9._-]). */
    while (r->msgs && *p) {
        struct th_run_msg *m = &r->msgs[r->n];
        if (sscanf(p, "%127[^:]:%d:%lld", m->topic, &m->partition, &m->offset) != 3)
            return -1;
        r->n++;
        p += strcspn(p, ",");
        p += *p == ',';
    }
    return r->msgs ? 0 : -1;
}

long th_rec_runs(struct redis_client *c, struct th_run **out)
{
    char err[256];
    *out = NULL;
    redisReply *rep = redis_command(c, err, sizeof err, "LRANGE rec:runs 0 -1");
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    struct th_run *runs = calloc(rep->elements + 1, sizeof *runs);
    long n = 0;
    for (size_t i = 0; runs && i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_STRING &&
            th_run_parse(rep->element[i]->str, &runs[n]) == 0) {
            n++;
            continue;
        }
        free(runs[n].msgs);
        runs[n].msgs = NULL;
        fprintf(stderr, "th_rec_runs: malformed record %zu\n", i);
    }
    freeReplyObject(rep);
    *out = runs;
    return n;
}

void th_runs_free(struct th_run *runs, long n)
{
    for (long i = 0; runs && i < n; i++)
        free(runs[i].msgs);
    free(runs);
}

long th_rec_done(struct redis_client *c)
{
    char err[256];
    redisReply *r = redis_command(c, err, sizeof err, "GET rec:count");
    long n = !r ? -1 : r->type == REDIS_REPLY_STRING ? atol(r->str) : 0;
    if (r)
        freeReplyObject(r);
    return n;
}

struct redis_client *th_redis_client(const struct th_redis *r)
{
    struct redis_url u;
    char err[256];
    if (redis_url_parse(r->url, &u, err, sizeof err) != 0)
        return NULL;
    return redis_client_new(&u, 1000, 5000);
}

/* ---- worker test stack ------------------------------------------------------------------- */

int th_wstack_start(struct th_wstack *s, int partitions)
{
    memset(s, 0, sizeof *s);
    s->partitions = partitions;
    if (th_kafka_start(&s->kafka, partitions) != 0)
        return -1;
    if (th_redis_start(&s->redis, NULL) != 0) {
        th_kafka_stop(&s->kafka);
        return -1;
    }
    s->rc = th_redis_client(&s->redis);
    s->kp = th_kprod_new(s->kafka.bootstrap);
    if (!s->rc || !s->kp) {
        th_wstack_stop(s);
        return -1;
    }
    return 0;
}

void th_wstack_stop(struct th_wstack *s)
{
    th_kprod_free(s->kp);
    redis_client_free(s->rc);
    th_redis_stop(&s->redis);
    th_kafka_stop(&s->kafka);
    s->kp = NULL;
    s->rc = NULL;
}

long th_redis_int(struct redis_client *c, const char *fmt, const char *arg)
{
    char err[256];
    redisReply *r = redis_command(c, err, sizeof err, fmt, arg);
    long v = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

bool th_rec_started(struct redis_client *c, const char *key)
{
    return th_redis_int(c, "LPOS rec:started %s", key) >= 0;
}

long long th_wstack_committed(struct th_wstack *s, const char *group, const char *topic,
                              int partition)
{
    long long offs[256];
    if (partition < 0 || partition >= s->partitions || s->partitions > 256 ||
        th_kafka_committed(s->kafka.bootstrap, group, topic, s->partitions, offs) != 0)
        return -2;
    return offs[partition];
}

long th_sim_calls(const struct th_sim *s, const char *method, const char *route, long status)
{
    char url[128];
    json_t *out = NULL, *c;
    size_t i;
    snprintf(url, sizeof url, "%s/_sim/stats", s->url);
    if (th_http("GET", url, NULL, NULL, &out) != 200) {
        json_decref(out);
        return -1;
    }
    long n = 0;
    json_array_foreach(json_object_get(out, "calls"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "method")), method) == 0 &&
            strcmp(json_string_value(json_object_get(c, "route")), route) == 0 &&
            (!status || json_integer_value(json_object_get(c, "status")) == status))
            n += (long)json_integer_value(json_object_get(c, "count"));
    }
    json_decref(out);
    return n;
}

unsigned th_rand(unsigned long long *state, unsigned below)
{
    unsigned long long x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (unsigned)(x % below);
}
