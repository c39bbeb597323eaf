/* lock.h: the per-entity sync lock of SPEC §4.4 on Redis: key "sync_lock:cbeteiligte:<id>" (the
 * one owner of that key: the cron asks lock_key() too), value a process-unique token, SET NX PX to
 * take it, compare-and-delete (redis_del_if_equal) to release it, Lua compare-and-pexpire to renew
 * it, and a renewal thread that keeps the locks of long runs alive.
 *
 * Nothing here allocates what the caller must free except the renewer (lock_renewer_stop).
 * A struct lock_held is a plain value the caller owns; the functions that take a struct
 * redis_client use it from the calling thread only (a client is not thread-safe). */
#ifndef VMH_LOCK_H
#define VMH_LOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "redis.h"

#define LOCK_KEY_PREFIX "sync_lock:cbeteiligte:"
#define LOCK_KEY_MAX    160
#define LOCK_TOKEN_MAX  160

/* "sync_lock:cbeteiligte:<entity_id>" into buf; 0, or -1 (buf emptied if buflen > 0) if it
 * does not fit or the id is empty or NULL. */
int lock_key(const char *entity_id, char *buf, size_t buflen);

/* The process-unique instance id "<hostname>-<pid>-<8 random hex chars>" (hostname cut to 64
 * bytes, randomness from OpenSSL RAND_bytes), computed once, thread-safe. The string is static:
 * never freed, valid for the life of the process. */
const char *lock_instance_id(void);

/* A fresh token "<instance id>:<counter>" into buf (the counter is atomic: tokens are distinct
 * across threads and calls). LOCK_TOKEN_MAX bytes always suffice; a smaller buf truncates. */
void lock_token_new(char *buf, size_t buflen);

/* A lock this process holds (or held): a plain value, copied freely. */
struct lock_held {
    char entity_id[65];
    char key[LOCK_KEY_MAX];
    char token[LOCK_TOKEN_MAX];
    long long ttl_ms;
};

enum lock_result { LOCK_ACQUIRED, LOCK_BUSY, LOCK_CANCELLED, LOCK_ERROR };

/* A cancel probe checked between waits: returns true when the caller wants to give up
 * (shutdown). NULL = never. */
typedef bool (*lock_cancel_fn)(void *ud);

/* Takes the lock of entity_id: SET key token NX PX ttl_ms. While someone else holds it, tries
 * again with backoff (25 ms doubling up to 500 ms, never sleeping past the deadline) for up to
 * wait_ms in all (0: one attempt), checking cancel before every sleep slice of at most 50 ms.
 * Blocks the calling thread.
 *
 * LOCK_ACQUIRED: *out filled (a fresh token from lock_token_new). LOCK_BUSY: still held by
 * someone else after wait_ms. LOCK_CANCELLED: cancel said so. LOCK_ERROR with err: a Redis
 * connection error or error reply, or bad arguments (an entity id longer than 64 bytes
 * included); the caller must not sync without the lock. *out is zeroed unless LOCK_ACQUIRED;
 * err is empty unless LOCK_ERROR. */
enum lock_result lock_acquire(struct redis_client *c, const char *entity_id, long long ttl_ms,
                              long long wait_ms, lock_cancel_fn cancel, void *cancel_ud,
                              struct lock_held *out, char *err, size_t errlen);

/* Compare-and-delete (redis_del_if_equal): deletes h->key only if it still holds h->token. 1
 * released, 0 not ours any more (expired or taken over), -1 with err on a Redis error or bad
 * arguments. */
int lock_release(struct redis_client *c, const struct lock_held *h, char *err, size_t errlen);

/* Whether h->key still holds h->token (a run checks before each write, SPEC §5.3): 1 held, 0 not
 * ours any more, -1 with err on a Redis error or bad arguments. */
int lock_check(struct redis_client *c, const struct lock_held *h, char *err, size_t errlen);

/* Lua compare-and-pexpire of h->key to h->ttl_ms: 1 renewed, 0 not ours any more, -1 with err
 * on a Redis error or bad arguments. */
int lock_renew(struct redis_client *c, const struct lock_held *h, char *err, size_t errlen);

/* The renewal thread: keeps registered locks alive while their runs go on. One thread with its
 * own redis_client (made from a copy of url), waking every ttl/6 (or at once on stop), renews
 * each registered lock whose registration or last renewal is at least ttl/3 old (ttl: the
 * lock's own ttl_ms, or the renewer's if that is <= 0). A renewal answered 0 marks the entry
 * lost (log_warn "entity lock lost" with entity_id) and it is not renewed again; a Redis error
 * is logged once per outage and tried again at the next wake.
 *
 * NULL with err on bad arguments (ttl_ms <= 0), out of memory or a failed thread start. All
 * functions may be called from any thread. */
struct lock_renewer;
struct lock_renewer *lock_renewer_start(const struct redis_url *url, long long ttl_ms, char *err,
                                        size_t errlen);
/* Stops the thread (joins it) and frees everything, registered entries included; NULL ignored.
 * No other call on r may run concurrently or follow. */
void lock_renewer_stop(struct lock_renewer *r);
/* Registers a copy of h, counting its age from now; returns a handle id > 0, or 0 on out of
 * memory or a NULL argument. */
unsigned long lock_renewer_add(struct lock_renewer *r, const struct lock_held *h);
/* Unregisters; returns true if the lock was found lost meanwhile. Unknown id → false. A
 * renewal in flight at that moment may still extend the lock once; release it after this. */
bool lock_renewer_remove(struct lock_renewer *r, unsigned long id);
/* Whether the registered lock was found lost so far (a long run checks this before its final
 * write). Unknown id → false. */
bool lock_renewer_lost(struct lock_renewer *r, unsigned long id);

#endif
