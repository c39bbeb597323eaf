/* executor.c: the key-ordered executor (SPEC §4.2) on libuv threads, one mutex and two
 * condition variables.
 *
 * Every key with queued or running messages has a struct ex_key in a chained hash table. A key
 * with queued messages and no run going is "scheduled": on the ready list (FIFO) or, when a
 * retry asked for a delay, on the delayed list. A thread takes the first ready key, takes all
 * its queued messages (coalescing), runs them without the lock, and afterwards completes them
 * (or requeues them at the front on EX_RETRY and EX_WAIT). A key never sits on a list while it
 * runs, which is what keeps one key's runs sequential. */
#include "executor.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct ex_key {
    struct ex_key *hnext; /* hash chain */
    struct ex_key *lnext; /* ready or delayed list */
    char key[MSG_ID_MAX + 1];
    struct ex_msg *head, *tail; /* queued */
    size_t nqueued;
    struct ex_msg *running; /* the current run's messages (a list), NULL if none */
    size_t nrunning;
    bool scheduled;
    long long not_before; /* monotonic ms; 0 = now */
};

struct executor {
    uv_mutex_t mu;
    uv_cond_t work;    /* a key became ready, or stop */
    uv_cond_t settled; /* a run ended or messages were dropped */
    ex_run_fn run;
    ex_msg_fn done, drop;
    void *ud;

    struct ex_key **buckets;
    size_t nbuckets, nkeys;
    struct ex_key *ready_head, *ready_tail;
    struct ex_key *delayed; /* unsorted; short */

    size_t queued, running, runs;
    bool closed;  /* no new work starts */
    bool joining; /* threads exit when idle */

    unsigned nthreads;
    uv_thread_t *threads;
    struct ex_thread_arg *args;
};

struct ex_thread_arg {
    struct executor *ex;
    unsigned index;
};

/* ---- key table -------------------------------------------------------------------------- */

static size_t key_hash(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct ex_key *key_find(struct executor *ex, const char *key)
{
    for (struct ex_key *k = ex->buckets[key_hash(key) & (ex->nbuckets - 1)]; k; k = k->hnext) {
        if (strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

static void key_table_grow(struct executor *ex)
{
    size_t n = ex->nbuckets * 2;
    struct ex_key **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < ex->nbuckets; i++) {
        struct ex_key *k = ex->buckets[i], *next;
        for (; k; k = next) {
            next = k->hnext;
            size_t j = key_hash(k->key) & (n - 1);
            k->hnext = b[j];
            b[j] = k;
        }
    }
    free(ex->buckets);
    ex->buckets = b;
    ex->nbuckets = n;
}

/* The key's state, created if absent; NULL on out of memory. */
static struct ex_key *key_get(struct executor *ex, const char *key)
{
    struct ex_key *k = key_find(ex, key);
    if (k)
        return k;
    k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    memcpy(k->key, key, strnlen(key, MSG_ID_MAX));
    if (ex->nkeys >= ex->nbuckets)
        key_table_grow(ex);
    size_t j = key_hash(key) & (ex->nbuckets - 1);
    k->hnext = ex->buckets[j];
    ex->buckets[j] = k;
    ex->nkeys++;
    return k;
}

/* Frees a key with nothing queued, running or scheduled. */
static void key_release_if_idle(struct executor *ex, struct ex_key *k)
{
    if (k->nqueued || k->running || k->scheduled)
        return;
    struct ex_key **pp = &ex->buckets[key_hash(k->key) & (ex->nbuckets - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    ex->nkeys--;
    free(k);
}

/* ---- scheduling ------------------------------------------------------------------------- */

static void schedule(struct executor *ex, struct ex_key *k)
{
    if (k->scheduled || k->running || k->nqueued == 0)
        return;
    k->scheduled = true;
    k->lnext = NULL;
    if (k->not_before > util_monotonic_ms()) {
        k->lnext = ex->delayed;
        ex->delayed = k;
    } else if (ex->ready_tail) {
        ex->ready_tail->lnext = k;
        ex->ready_tail = k;
    } else {
        ex->ready_head = ex->ready_tail = k;
    }
    uv_cond_signal(&ex->work);
}

/* Moves delayed keys whose time has come to the ready list; returns the earliest remaining
 * not_before, or 0 if none waits. */
static long long promote_delayed(struct executor *ex)
{
    long long now = util_monotonic_ms(), earliest = 0;
    struct ex_key **pp = &ex->delayed;
    while (*pp) {
        struct ex_key *k = *pp;
        if (k->not_before <= now) {
            *pp = k->lnext;
            k->lnext = NULL;
            if (ex->ready_tail)
                ex->ready_tail->lnext = k;
            else
                ex->ready_head = k;
            ex->ready_tail = k;
        } else {
            if (!earliest || k->not_before < earliest)
                earliest = k->not_before;
            pp = &k->lnext;
        }
    }
    return earliest;
}

static struct ex_key *pop_ready(struct executor *ex)
{
    struct ex_key *k = ex->ready_head;
    if (k) {
        ex->ready_head = k->lnext;
        if (!ex->ready_head)
            ex->ready_tail = NULL;
        k->lnext = NULL;
        k->scheduled = false;
    }
    return k;
}

/* Drops a list of messages (lock held). */
static void drop_list(struct executor *ex, struct ex_msg *m)
{
    while (m) {
        struct ex_msg *next = m->next;
        m->next = NULL;
        ex->drop(ex->ud, m);
        m = next;
    }
}

/* Removes every queued message of k that match() accepts, unscheduling k if it empties. */
static size_t drop_from_key(struct executor *ex, struct ex_key *k, ex_match_fn match, void *mud)
{
    size_t n = 0;
    struct ex_msg **pp = &k->head, *dropped = NULL, **dtail = &dropped;
    k->tail = NULL;
    while (*pp) {
        struct ex_msg *m = *pp;
        if (!match || match(m, mud)) {
            *pp = m->next;
            m->next = NULL;
            *dtail = m;
            dtail = &m->next;
            n++;
        } else {
            k->tail = m;
            pp = &m->next;
        }
    }
    k->nqueued -= n;
    ex->queued -= n;
    drop_list(ex, dropped);
    return n;
}

/* Takes a key off the ready/delayed list if it is on one. */
static void unschedule(struct executor *ex, struct ex_key *k)
{
    if (!k->scheduled)
        return;
    struct ex_key **pp = &ex->ready_head, *prev = NULL;
    for (; *pp && *pp != k; pp = &(*pp)->lnext)
        prev = *pp;
    if (*pp) {
        *pp = k->lnext;
        if (ex->ready_tail == k)
            ex->ready_tail = prev;
    } else {
        for (pp = &ex->delayed; *pp != k; pp = &(*pp)->lnext)
            ;
        *pp = k->lnext;
    }
    k->lnext = NULL;
    k->scheduled = false;
}

/* ---- threads ---------------------------------------------------------------------------- */

static void run_key(struct executor *ex, unsigned index, struct ex_key *k)
{
    struct ex_msg *batch[64], **msgs = batch;
    size_t n = k->nqueued;

    k->running = k->head;
    k->nrunning = n;
    k->head = k->tail = NULL;
    k->nqueued = 0;
    ex->queued -= n;
    ex->running += n;
    ex->runs++;
    if (n > sizeof batch / sizeof batch[0]) {
        msgs = malloc(n * sizeof *msgs);
        if (!msgs) { /* run them one at a time instead: put all but the first back */
            struct ex_msg *rest = k->running->next;
            k->running->next = NULL;
            k->head = rest;
            for (k->tail = rest; k->tail && k->tail->next;)
                k->tail = k->tail->next;
            k->nqueued = n - 1;
            ex->queued += n - 1;
            ex->running -= n - 1;
            k->nrunning = n = 1;
            msgs = batch;
        }
    }
    size_t i = 0;
    for (struct ex_msg *m = k->running; m; m = m->next)
        msgs[i++] = m;

    uv_mutex_unlock(&ex->mu);
    long long retry_after = 0;
    enum ex_result res = ex->run(ex->ud, index, k->key, msgs, n, &retry_after);
    uv_mutex_lock(&ex->mu);

    if (msgs != batch)
        free(msgs);
    struct ex_msg *list = k->running;
    k->running = NULL;
    k->nrunning = 0;
    ex->running -= n;
    ex->runs--;
    if ((res == EX_RETRY || res == EX_WAIT) && !ex->closed) {
        struct ex_msg *last = list;
        for (;; last = last->next) {
            if (res == EX_RETRY)
                last->retries++;
            else
                last->waits++;
            if (!last->next)
                break;
        }
        last->next = k->head;
        if (!k->head)
            k->tail = last;
        k->head = list;
        k->nqueued += n;
        ex->queued += n;
        k->not_before = util_monotonic_ms() + (retry_after > 0 ? retry_after : 0);
    } else {
        ex_msg_fn fn = res == EX_DONE ? ex->done : ex->drop;
        while (list) {
            struct ex_msg *next = list->next;
            list->next = NULL;
            fn(ex->ud, list);
            list = next;
        }
        k->not_before = 0;
    }
    if (ex->closed)
        drop_from_key(ex, k, NULL, NULL);
    schedule(ex, k);
    key_release_if_idle(ex, k);
    uv_cond_broadcast(&ex->settled);
}

static void thread_main(void *arg)
{
    struct ex_thread_arg *a = arg;
    struct executor *ex = a->ex;

    uv_mutex_lock(&ex->mu);
    for (;;) {
        long long earliest = promote_delayed(ex);
        struct ex_key *k = ex->closed ? NULL : pop_ready(ex);
        if (k) {
            run_key(ex, a->index, k);
            continue;
        }
        if (ex->joining)
            break;
        if (earliest && !ex->closed) {
            long long wait = earliest - util_monotonic_ms();
            if (wait > 0)
                uv_cond_timedwait(&ex->work, &ex->mu, (uint64_t)wait * 1000000ULL);
        } else {
            uv_cond_wait(&ex->work, &ex->mu);
        }
    }
    uv_mutex_unlock(&ex->mu);
}

/* ---- API -------------------------------------------------------------------------------- */

struct executor *executor_new(unsigned nthreads, ex_run_fn run, ex_msg_fn done, ex_msg_fn drop,
                              void *ud)
{
    if (nthreads < 1 || !run || !done || !drop)
        return NULL;
    struct executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return NULL;
    ex->run = run;
    ex->done = done;
    ex->drop = drop;
    ex->ud = ud;
    ex->nbuckets = 256;
    ex->buckets = calloc(ex->nbuckets, sizeof *ex->buckets);
    ex->threads = calloc(nthreads, sizeof *ex->threads);
    ex->args = calloc(nthreads, sizeof *ex->args);
    if (!ex->buckets || !ex->threads || !ex->args || uv_mutex_init(&ex->mu) != 0) {
        free(ex->buckets);
        free(ex->threads);
        free(ex->args);
        free(ex);
        return NULL;
    }
    uv_cond_init(&ex->work);
    uv_cond_init(&ex->settled);
    for (unsigned i = 0; i < nthreads; i++) {
        ex->args[i] = (struct ex_thread_arg){.ex = ex, .index = i};
        if (uv_thread_create(&ex->threads[i], thread_main, &ex->args[i]) != 0)
            break;
        ex->nthreads++;
    }
    if (ex->nthreads != nthreads) {
        executor_free(ex);
        return NULL;
    }
    return ex;
}

void executor_submit(struct executor *ex, struct ex_msg *m)
{
    m->next = NULL;
    uv_mutex_lock(&ex->mu);
    struct ex_key *k = ex->closed ? NULL : key_get(ex, m->m.entity_id);
    if (!k) {
        ex->drop(ex->ud, m);
        uv_mutex_unlock(&ex->mu);
        return;
    }
    if (k->tail)
        k->tail->next = m;
    else
        k->head = m;
    k->tail = m;
    k->nqueued++;
    ex->queued++;
    schedule(ex, k);
    uv_mutex_unlock(&ex->mu);
}

void executor_stats(struct executor *ex, struct executor_stats *out)
{
    uv_mutex_lock(&ex->mu);
    *out = (struct executor_stats){
        .queued = ex->queued, .running = ex->running, .runs = ex->runs, .keys = ex->nkeys};
    uv_mutex_unlock(&ex->mu);
}

size_t executor_pending(struct executor *ex)
{
    uv_mutex_lock(&ex->mu);
    size_t n = ex->queued + ex->running;
    uv_mutex_unlock(&ex->mu);
    return n;
}

/* Calls fn on every key (lock held); fn may free the key. */
static void each_key(struct executor *ex, void (*fn)(struct executor *, struct ex_key *, void *),
                     void *arg)
{
    for (size_t i = 0; i < ex->nbuckets; i++) {
        struct ex_key *k = ex->buckets[i], *next;
        for (; k; k = next) {
            next = k->hnext;
            fn(ex, k, arg);
        }
    }
}

struct drop_arg {
    ex_match_fn match;
    void *ud;
    size_t n;
};

static void drop_key_cb(struct executor *ex, struct ex_key *k, void *arg)
{
    struct drop_arg *d = arg;
    if (!k->nqueued)
        return;
    d->n += drop_from_key(ex, k, d->match, d->ud);
    if (!k->nqueued)
        unschedule(ex, k);
    key_release_if_idle(ex, k);
}

size_t executor_drop(struct executor *ex, ex_match_fn match, void *match_ud)
{
    struct drop_arg d = {.match = match, .ud = match_ud};
    uv_mutex_lock(&ex->mu);
    each_key(ex, drop_key_cb, &d);
    uv_cond_broadcast(&ex->settled);
    uv_mutex_unlock(&ex->mu);
    return d.n;
}

struct busy_arg {
    ex_match_fn match;
    void *ud;
    bool busy;
};

static void busy_key_cb(struct executor *ex, struct ex_key *k, void *arg)
{
    (void)ex;
    struct busy_arg *b = arg;
    for (struct ex_msg *m = k->running; m && !b->busy; m = m->next)
        b->busy = !b->match || b->match(m, b->ud);
}

bool executor_wait_idle(struct executor *ex, ex_match_fn match, void *match_ud,
                        long long deadline_ms)
{
    bool idle;
    uv_mutex_lock(&ex->mu);
    for (;;) {
        struct busy_arg b = {.match = match, .ud = match_ud};
        if (!match)
            b.busy = ex->runs > 0;
        else
            each_key(ex, busy_key_cb, &b);
        idle = !b.busy;
        long long left = deadline_ms - util_monotonic_ms();
        if (idle || left <= 0)
            break;
        uv_cond_timedwait(&ex->settled, &ex->mu, (uint64_t)left * 1000000ULL);
    }
    uv_mutex_unlock(&ex->mu);
    return idle;
}

void executor_close_queue(struct executor *ex)
{
    struct drop_arg d = {0};
    uv_mutex_lock(&ex->mu);
    ex->closed = true;
    each_key(ex, drop_key_cb, &d);
    uv_cond_broadcast(&ex->work);
    uv_cond_broadcast(&ex->settled);
    uv_mutex_unlock(&ex->mu);
}

void executor_free(struct executor *ex)
{
    if (!ex)
        return;
    executor_close_queue(ex);
    uv_mutex_lock(&ex->mu);
    ex->joining = true;
    uv_cond_broadcast(&ex->work);
    uv_mutex_unlock(&ex->mu);
    for (unsigned i = 0; i < ex->nthreads; i++)
        uv_thread_join(&ex->threads[i]);
    for (size_t i = 0; i < ex->nbuckets; i++) {
        struct ex_key *k = ex->buckets[i], *next;
        for (; k; k = next) {
            next = k->hnext;
            drop_list(ex, k->head);
            free(k);
        }
    }
    uv_cond_destroy(&ex->work);
    uv_cond_destroy(&ex->settled);
    uv_mutex_destroy(&ex->mu);
    free(ex->buckets);
    free(ex->threads);
    free(ex->args);
    free(ex);
}
