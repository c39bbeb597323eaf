/* lock.c: the per-entity Redis sync lock of SPEC §4.4 (see lock.h): keys, instance id and
 * tokens, acquire with backoff and cancel, release by compare-and-delete (redis.h) and renewal by
 * Lua compare-and-pexpire, and the renewal thread. The renewer owns its entries, its thread and its
 * redis_client; everything is freed by lock_renewer_stop. */
#include "lock.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define LOCK_BACKOFF_MIN_MS 25
#define LOCK_BACKOFF_MAX_MS 500
#define LOCK_SLEEP_SLICE_MS 50
#define LOCK_HOSTNAME_MAX   64
#define RENEWER_MIN_WAKE_MS 10
#define RENEWER_MIN_TIMEOUT 100 /* ms, bounds of the renewer client's timeouts */
#define RENEWER_MAX_CONNECT 1000
#define RENEWER_MAX_COMMAND 5000

/* Only the holder of the token extends the lock (and deletes it: redis_del_if_equal). */
static const char renew_src[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

static uv_once_t scripts_once = UV_ONCE_INIT;
static struct redis_script renew_script;

static uv_once_t instance_once = UV_ONCE_INIT;
static char instance_id[LOCK_HOSTNAME_MAX + 40];
static atomic_ullong token_counter;

static void init_scripts(void)
{
    redis_script_init(&renew_script, renew_src);
}

/* ---- keys, instance id, tokens ------------------------------------------------------------ */

int lock_key(const char *entity_id, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return -1;
    buf[0] = '\0';
    if (!entity_id || !entity_id[0])
        return -1;
    int n = snprintf(buf, buflen, "%s%s", LOCK_KEY_PREFIX, entity_id);
    if (n < 0 || (size_t)n >= buflen) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

static void init_instance_id(void)
{
    static const char hex[] = "0123456789abcdef";
    char host[256] = "";
    unsigned char rnd[4];
    char rhex[2 * sizeof rnd + 1];

    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0'; /* gethostname need not terminate a truncated name */
    if (RAND_bytes(rnd, (int)sizeof rnd) != 1) {
        /* No entropy from OpenSSL: the clock still tells restarts of one pid apart. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint32_t v = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec;
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)(v >> (8 * i));
    }
    for (size_t i = 0; i < sizeof rnd; i++) {
        rhex[2 * i] = hex[rnd[i] >> 4];
        rhex[2 * i + 1] = hex[rnd[i] & 0x0f];
    }
    rhex[2 * sizeof rnd] = '\0';
    snprintf(instance_id, sizeof instance_id, "%.*s-%ld-%s", LOCK_HOSTNAME_MAX, host,
             (long)getpid(), rhex);
}

const char *lock_instance_id(void)
{
    uv_once(&instance_once, init_instance_id);
    return instance_id;
}

void lock_token_new(char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return;
    unsigned long long n = atomic_fetch_add(&token_counter, 1ULL) + 1ULL;
    snprintf(buf, buflen, "%s:%llu", lock_instance_id(), n);
}

/* ---- acquire, release, renew -------------------------------------------------------------- */

static void sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Sleeps until `until` (monotonic ms) in slices of at most LOCK_SLEEP_SLICE_MS, asking cancel
 * before each; true if cancel said so. */
static bool sleep_until(long long until, lock_cancel_fn cancel, void *cancel_ud)
{
    for (;;) {
        long long left = until - util_monotonic_ms();
        if (left <= 0)
            return false;
        if (cancel && cancel(cancel_ud))
            return true;
        sleep_ms(left < LOCK_SLEEP_SLICE_MS ? left : LOCK_SLEEP_SLICE_MS);
    }
}

enum lock_result lock_acquire(struct redis_client *c, const char *entity_id, long long ttl_ms,
                              long long wait_ms, lock_cancel_fn cancel, void *cancel_ud,
                              struct lock_held *out, char *err, size_t errlen)
{
    struct lock_held h;
    char rerr[256];
    long long deadline, backoff = LOCK_BACKOFF_MIN_MS;

    util_err_reset(err, errlen);
    if (out)
        memset(out, 0, sizeof *out);
    if (!c || !out || ttl_ms <= 0 || wait_ms < 0) {
        util_err(err, errlen, "lock: bad arguments (client, output, ttl > 0, wait >= 0)");
        return LOCK_ERROR;
    }
    memset(&h, 0, sizeof h);
    if (!entity_id || !entity_id[0] || strlen(entity_id) >= sizeof h.entity_id) {
        util_err(err, errlen, "lock: entity id empty or longer than %zu bytes",
                 sizeof h.entity_id - 1);
        return LOCK_ERROR;
    }
    if (lock_key(entity_id, h.key, sizeof h.key) != 0) {
        util_err(err, errlen, "lock %s: key too long", entity_id);
        return LOCK_ERROR;
    }
    memcpy(h.entity_id, entity_id, strlen(entity_id) + 1);
    lock_token_new(h.token, sizeof h.token);
    h.ttl_ms = ttl_ms;

    deadline = util_monotonic_ms() + wait_ms;
    for (;;) {
        bool acquired = false;
        if (redis_set_nx_px(c, h.key, h.token, ttl_ms, &acquired, rerr, sizeof rerr) != 0) {
            util_err(err, errlen, "lock %s: %s", entity_id, rerr);
            return LOCK_ERROR;
        }
        if (acquired) {
            *out = h;
            return LOCK_ACQUIRED;
        }
        long long now = util_monotonic_ms();
        if (now >= deadline)
            return LOCK_BUSY;
        long long until = now + backoff < deadline ? now + backoff : deadline;
        if (sleep_until(until, cancel, cancel_ud))
            return LOCK_CANCELLED;
        backoff = backoff * 2 > LOCK_BACKOFF_MAX_MS ? LOCK_BACKOFF_MAX_MS : backoff * 2;
    }
}

static bool held_ok(struct redis_client *c, const struct lock_held *h)
{
    return c && h && h->key[0] && h->token[0];
}

int lock_release(struct redis_client *c, const struct lock_held *h, char *err, size_t errlen)
{
    char rerr[256];
    util_err_reset(err, errlen);
    if (!held_ok(c, h)) {
        util_err(err, errlen, "lock release: bad arguments (client, key, token)");
        return -1;
    }
    int rc = redis_del_if_equal(c, h->key, h->token, rerr, sizeof rerr);
    if (rc < 0) {
        util_err(err, errlen, "lock %s: release: %s", h->entity_id, rerr);
        return -1;
    }
    return rc;
}

int lock_check(struct redis_client *c, const struct lock_held *h, char *err, size_t errlen)
{
    char rerr[256], *value = NULL;
    util_err_reset(err, errlen);
    if (!held_ok(c, h)) {
        util_err(err, errlen, "lock check: bad arguments (client, key, token)");
        return -1;
    }
    int rc = redis_get(c, h->key, &value, NULL, rerr, sizeof rerr);
    if (rc < 0) {
        util_err(err, errlen, "lock %s: check: %s", h->entity_id, rerr);
        return -1;
    }
    rc = rc == 1 && strcmp(value, h->token) == 0;
    free(value);
    return rc;
}

int lock_renew(struct redis_client *c, const struct lock_held *h, char *err, size_t errlen)
{
    char ttl[24], rerr[256];
    long long renewed = 0;
    util_err_reset(err, errlen);
    if (!held_ok(c, h) || h->ttl_ms <= 0) {
        util_err(err, errlen, "lock renew: bad arguments (client, key, token, ttl > 0)");
        return -1;
    }
    uv_once(&scripts_once, init_scripts);
    snprintf(ttl, sizeof ttl, "%lld", h->ttl_ms);
    const char *keys[] = {h->key}, *args[] = {h->token, ttl};
    if (redis_eval_int(c, &renew_script, 1, keys, 2, args, &renewed, rerr, sizeof rerr) != 0) {
        util_err(err, errlen, "lock %s: renew: %s", h->entity_id, rerr);
        return -1;
    }
    return renewed > 0 ? 1 : 0;
}

/* ---- renewer ------------------------------------------------------------------------------ */

struct renew_entry {
    unsigned long id;
    struct lock_held h;
    long long last_ms;   /* monotonic: registration or last successful renewal */
    unsigned long round; /* the wake that last picked it (each entry once per wake) */
    bool lost;
    struct renew_entry *next;
};

struct lock_renewer {
    uv_mutex_t mu; /* guards everything below except client and outage_logged */
    uv_cond_t wake;
    uv_thread_t thread;
    bool stopping;
    long long ttl_ms;
    unsigned long next_id;
    unsigned long round;
    struct renew_entry *entries;
    struct redis_client *client; /* the thread's alone */
    bool outage_logged;          /* the thread's alone */
};

static long long entry_ttl(const struct lock_renewer *r, const struct renew_entry *e)
{
    return e->h.ttl_ms > 0 ? e->h.ttl_ms : r->ttl_ms;
}

static struct renew_entry *find_entry(struct lock_renewer *r, unsigned long id)
{
    for (struct renew_entry *e = r->entries; e; e = e->next)
        if (e->id == id)
            return e;
    return NULL;
}

/* The next entry due for renewal in this round (mu held), marked as picked; NULL if none. */
static struct renew_entry *pick_due(struct lock_renewer *r, long long now)
{
    for (struct renew_entry *e = r->entries; e; e = e->next) {
        if (e->lost || e->round == r->round || now - e->last_ms < entry_ttl(r, e) / 3)
            continue;
        e->round = r->round;
        return e;
    }
    return NULL;
}

/* One wake: renews every due entry, without holding mu during Redis calls (add, remove and
 * lost never wait for the network). Called and returns with mu held. */
static void renew_due(struct lock_renewer *r)
{
    struct renew_entry *e;
    r->round++;
    while (!r->stopping && (e = pick_due(r, util_monotonic_ms()))) {
        unsigned long id = e->id;
        struct lock_held h = e->h;
        h.ttl_ms = entry_ttl(r, e);
        char err[512];

        uv_mutex_unlock(&r->mu);
        long long sent = util_monotonic_ms();
        int rc = lock_renew(r->client, &h, err, sizeof err);
        if (rc >= 0 && r->outage_logged) {
            log_info("entity lock renewal works again");
            r->outage_logged = false;
        } else if (rc < 0 && !r->outage_logged) {
            log_warn("entity lock renewal failed", LOG_STR("entity_id", h.entity_id),
                     LOG_STR("error", err));
            r->outage_logged = true;
        }
        uv_mutex_lock(&r->mu);

        e = find_entry(r, id); /* removed meanwhile: nothing to record */
        if (!e)
            continue;
        if (rc == 1) {
            e->last_ms = sent;
        } else if (rc == 0) {
            e->lost = true;
            log_warn("entity lock lost", LOG_STR("entity_id", h.entity_id));
        }
    }
}

static void renewer_main(void *arg)
{
    struct lock_renewer *r = arg;
    long long wake_ms = r->ttl_ms / 6 > RENEWER_MIN_WAKE_MS ? r->ttl_ms / 6 : RENEWER_MIN_WAKE_MS;

    uv_mutex_lock(&r->mu);
    while (!r->stopping) {
        (void)uv_cond_timedwait(&r->wake, &r->mu, (uint64_t)wake_ms * 1000000ULL);
        if (!r->stopping)
            renew_due(r);
    }
    uv_mutex_unlock(&r->mu);
}

static int clamp_ms(long long v, long long lo, long long hi)
{
    return (int)(v < lo ? lo : v > hi ? hi : v);
}

struct lock_renewer *lock_renewer_start(const struct redis_url *url, long long ttl_ms, char *err,
                                        size_t errlen)
{
    struct lock_renewer *r;

    util_err_reset(err, errlen);
    if (!url || ttl_ms <= 0) {
        util_err(err, errlen, "lock renewer: bad arguments (url, ttl > 0)");
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        util_err(err, errlen, "lock renewer: out of memory");
        return NULL;
    }
    r->ttl_ms = ttl_ms;
    r->client =
        redis_client_new(url, clamp_ms(ttl_ms / 3, RENEWER_MIN_TIMEOUT, RENEWER_MAX_CONNECT),
                         clamp_ms(ttl_ms / 3, RENEWER_MIN_TIMEOUT, RENEWER_MAX_COMMAND));
    if (!r->client) {
        util_err(err, errlen, "lock renewer: out of memory");
        goto fail_client;
    }
    if (uv_mutex_init(&r->mu) != 0) {
        util_err(err, errlen, "lock renewer: mutex init failed");
        goto fail_mutex;
    }
    if (uv_cond_init(&r->wake) != 0) {
        util_err(err, errlen, "lock renewer: condition init failed");
        goto fail_cond;
    }
    int rc = uv_thread_create(&r->thread, renewer_main, r);
    if (rc != 0) {
        util_err(err, errlen, "lock renewer: thread start failed: %s", uv_strerror(rc));
        goto fail_thread;
    }
    return r;

fail_thread:
    uv_cond_destroy(&r->wake);
fail_cond:
    uv_mutex_destroy(&r->mu);
fail_mutex:
    redis_client_free(r->client);
fail_client:
    free(r);
    return NULL;
}

void lock_renewer_stop(struct lock_renewer *r)
{
    if (!r)
        return;
    uv_mutex_lock(&r->mu);
    r->stopping = true;
    uv_cond_signal(&r->wake);
    uv_mutex_unlock(&r->mu);
    uv_thread_join(&r->thread);

    while (r->entries) {
        struct renew_entry *next = r->entries->next;
        free(r->entries);
        r->entries = next;
    }
    uv_cond_destroy(&r->wake);
    uv_mutex_destroy(&r->mu);
    redis_client_free(r->client);
    free(r);
}

unsigned long lock_renewer_add(struct lock_renewer *r, const struct lock_held *h)
{
    struct renew_entry *e;
    if (!r || !h)
        return 0;
    e = calloc(1, sizeof *e);
    if (!e)
        return 0;
    e->h = *h;
    e->last_ms = util_monotonic_ms();

    uv_mutex_lock(&r->mu);
    do { /* ids stay unique and > 0 even after a wrap */
        e->id = ++r->next_id;
    } while (e->id == 0 || find_entry(r, e->id));
    e->round = r->round; /* not renewed in a wake already under way */
    e->next = r->entries;
    r->entries = e;
    uv_mutex_unlock(&r->mu);
    return e->id;
}

bool lock_renewer_remove(struct lock_renewer *r, unsigned long id)
{
    bool lost = false;
    if (!r || id == 0)
        return false;
    uv_mutex_lock(&r->mu);
    for (struct renew_entry **p = &r->entries; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            struct renew_entry *e = *p;
            *p = e->next;
            lost = e->lost;
            free(e);
            break;
        }
    }
    uv_mutex_unlock(&r->mu);
    return lost;
}

bool lock_renewer_lost(struct lock_renewer *r, unsigned long id)
{
    bool lost = false;
    if (!r || id == 0)
        return false;
    uv_mutex_lock(&r->mu);
    struct renew_entry *e = find_entry(r, id);
    if (e)
        lost = e->lost;
    uv_mutex_unlock(&r->mu);
    return lost;
}
