/* worker_rec.c: vmh-worker-rec, the worker runtime with a recording handler instead of the
 * sync engine — what the runtime tests and the benchmark run (the real runtime, real Kafka and
 * Redis; only the handler differs).
 *
 * Besides the worker's configuration it reads:
 *   REC_SLEEP_MS     every run sleeps this long (simulated API latency; default 0)
 *   REC_MODE         "record" (default): RPUSH rec:started <key> when a run starts and
 *                    RPUSH rec:runs "<key>|<pid>|<thread>|<start_us>|<end_us>|<t>:<p>:<o>,..."
 *                    when it ends (monotonic µs, comparable across processes), then
 *                    INCRBY rec:count <messages>; "count": only the INCRBY
 *   REC_KEY_CONTROL  "1": a run also sleeps GET rec:sleep:<key> ms and waits while
 *                    rec:hold:<key> exists (tests steer single keys this way) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

static const char SUMMARY[] = "vmh-worker-rec: the worker runtime with a recording test handler";

struct rec_conf {
    long long sleep_ms;
    bool count_only, key_control;
};

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ;
}

/* Runs "cmd key [arg]"; true if Redis answered without an error reply. *out (if not NULL)
 * gets an integer reply, a string reply's number, or -1 for nil. */
static bool rcmd(struct redis_client *c, long long *out, const char *cmd, const char *key,
                 const char *arg)
{
    char err[256];
    const char *argv[3] = {cmd, key, arg};
    size_t lens[3] = {strlen(cmd), strlen(key), arg ? strlen(arg) : 0};
    redisReply *r = redis_command_argv(c, arg ? 3 : 2, argv, lens, err, sizeof err);
    if (!r)
        return false;
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (out)
        *out = r->type == REDIS_REPLY_INTEGER  ? r->integer
               : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                               : -1;
    freeReplyObject(r);
    return ok;
}

static enum wk_result rec_run(void *ud, struct wk_ctx *ctx, const char *key,
                              const struct wk_event *ev, size_t n)
{
    const struct rec_conf *rc = ud;
    char buf[8192];
    long long start = now_us(), v = 0;

    if (!rc->count_only && !rcmd(ctx->redis, NULL, "RPUSH", "rec:started", key))
        goto redis_down;
    long long sleep = rc->sleep_ms;
    if (rc->key_control) {
        snprintf(buf, sizeof buf, "rec:sleep:%s", key);
        if (rcmd(ctx->redis, &v, "GET", buf, NULL) && v > 0)
            sleep += v;
        snprintf(buf, sizeof buf, "rec:hold:%s", key);
        while (rcmd(ctx->redis, &v, "EXISTS", buf, NULL) && v == 1)
            sleep_ms(10);
    }
    sleep_ms(sleep);

    if (rc->count_only)
        goto count;
    int len = snprintf(buf, sizeof buf, "%s|%d|%u|%lld|%lld|", key, (int)getpid(), ctx->thread,
                       start, now_us());
    for (size_t i = 0; i < n && len > 0 && (size_t)len < sizeof buf; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s:%" PRId32 ":%" PRId64,
                        i ? "," : "", ev[i].topic, ev[i].partition, ev[i].offset);
    if (!rcmd(ctx->redis, NULL, "RPUSH", "rec:runs", buf))
        goto redis_down;
count:
    snprintf(buf, sizeof buf, "%zu", n);
    if (!rcmd(ctx->redis, NULL, "INCRBY", "rec:count", buf))
        goto redis_down;
    return WK_DONE;

redis_down:
    ctx->retry_after_ms = 500;
    return WK_RETRY;
}

int main(int argc, char **argv)
{
    static struct rec_conf rc;
    const char *s = getenv("REC_SLEEP_MS"), *mode = getenv("REC_MODE");
    const char *kc = getenv("REC_KEY_CONTROL");
    rc.sleep_ms = s ? atoll(s) : 0;
    rc.count_only = mode && strcmp(mode, "count") == 0;
    rc.key_control = kc && strcmp(kc, "1") == 0;
    const struct wk_handler h = {.run = rec_run, .ud = &rc, .summary = SUMMARY};
    return worker_main(argc, argv, &h);
}
