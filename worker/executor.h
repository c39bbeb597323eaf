/* executor.h: the key-ordered executor of SPEC §4.2.
 *
 * N threads run plain blocking code. Messages carry a key (the entity id). For one key, runs
 * happen strictly one after the other, never concurrently; different keys run concurrently.
 * When a run for a key starts it takes every message queued for that key (coalescing), and all
 * of them complete together. A run may ask to be retried later (EX_RETRY), or may not have
 * started its work at all because something outside the executor was busy (EX_WAIT, e.g. an
 * entity lock held by another process): either way its messages go back to the front of the key's
 * queue, stay queued (so executor_drop() and executor_close_queue() drop them like any queued
 * message) and the key waits until the given delay has passed.
 *
 * Ownership: executor_submit() takes a message; it comes back exactly once, either through
 * done() (the run completed it) or through drop() (discarded unfinished: EX_DROP,
 * executor_drop(), executor_close_queue(), executor_free()). done() is called on an executor thread
 * while the executor's lock is held, so a waiter in executor_wait_idle() sees a message's
 * completion before it sees the run end; done() must be short and must not call back into the
 * executor. */
#ifndef VMH_EXECUTOR_H
#define VMH_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct wk_part; /* the runtime's partition state; opaque here */

struct ex_msg {
    struct ex_msg *next;  /* the executor's link */
    struct wk_part *part; /* the partition the message came from */
    int64_t offset;
    unsigned retries; /* runs of this message that answered EX_RETRY so far */
    unsigned waits;   /* runs of this message that answered EX_WAIT so far */
    struct msg m;     /* decoded value; m.entity_id is the key */
};

/* EX_DONE: the messages are finished (done()). EX_RETRY: run them again after
 * *retry_after_ms (counted in retries). EX_DROP: discard them unfinished (drop()), e.g. their
 * partition went to another consumer. EX_WAIT: like EX_RETRY, but the run could not start its
 * work (counted in waits, not in retries). */
enum ex_result { EX_DONE, EX_RETRY, EX_DROP, EX_WAIT };

/* Runs msgs[0..n-1] (all of one key, oldest first) on executor thread `thread` (0..N-1). On
 * EX_RETRY and EX_WAIT, *retry_after_ms says when to try again. */
typedef enum ex_result (*ex_run_fn)(void *ud, unsigned thread, const char *key,
                                    struct ex_msg *const *msgs, size_t n,
                                    long long *retry_after_ms);
/* A finished (done) or discarded (drop) message handed back to its owner. */
typedef void (*ex_msg_fn)(void *ud, struct ex_msg *m);
/* A predicate over messages (executor_drop, executor_wait_idle). */
typedef bool (*ex_match_fn)(const struct ex_msg *m, void *ud);

struct executor;

/* Starts nthreads threads (>= 1). NULL on failure. */
struct executor *executor_new(unsigned nthreads, ex_run_fn run, ex_msg_fn done, ex_msg_fn drop,
                              void *ud);
/* Queues m behind every earlier message of its key. After executor_close_queue() the message
 * is dropped at once. */
void executor_submit(struct executor *ex, struct ex_msg *m);

struct executor_stats {
    size_t queued;  /* messages waiting (including those waiting for a retry) */
    size_t running; /* messages in runs that have started */
    size_t runs;    /* runs going on now */
    size_t keys;    /* keys with queued or running messages */
};
void executor_stats(struct executor *ex, struct executor_stats *out);
/* queued + running messages: what backpressure counts. */
size_t executor_pending(struct executor *ex);

/* Drops every queued (not running) message that match() accepts (NULL: all). Returns how many. */
size_t executor_drop(struct executor *ex, ex_match_fn match, void *match_ud);
/* Waits until no running message matches (NULL: none runs at all) or until the monotonic
 * deadline (ms) passes. True if idle. */
bool executor_wait_idle(struct executor *ex, ex_match_fn match, void *match_ud,
                        long long deadline_ms);
/* From now on nothing new starts: queued messages, later submissions and retried messages are
 * dropped. Running runs finish. */
void executor_close_queue(struct executor *ex);
/* Closes the queue, waits for the threads to finish their runs, joins them and frees
 * everything. Only call it when no run is stuck (executor_wait_idle() returned true). */
void executor_free(struct executor *ex);

#endif
