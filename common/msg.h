/* msg.h: the Kafka message value of SPEC §2, encoded and decoded (pure functions):
 * {"v":1,"entityId":"…","event":"update","source":"webhook","emittedAt":"…Z"[,"reason":"…"]}.
 *
 * msg_encode returns a malloc'd string the caller frees. msg_decode fills a struct msg whose
 * strings live inside it (fixed buffers): no ownership to track. */
#ifndef VMH_MSG_H
#define VMH_MSG_H

#include <stddef.h>

#define MSG_VERSION 1
#define MSG_ID_MAX  64

/* Events are only hints (handling is level-triggered, SPEC §1.1). */
enum msg_event { MSG_EVENT_CREATE, MSG_EVENT_UPDATE, MSG_EVENT_DELETE, MSG_EVENT_SYNC_CHECK };
enum msg_source { MSG_SOURCE_WEBHOOK, MSG_SOURCE_CRON, MSG_SOURCE_CLI };

/* The reasons of the cron's sync_check messages (SPEC §3.2): the producer sends them, the worker
 * reads auto_reset (the retry count starts over) and stale_clean (a fresh advowareLastSync). */
#define MSG_REASON_PENDING_SYNC "pending_sync"
#define MSG_REASON_DIRTY        "dirty"
#define MSG_REASON_FAILED       "failed"
#define MSG_REASON_AUTO_RESET   "auto_reset"
#define MSG_REASON_STALE_CLEAN  "stale_clean"

struct msg {
    char entity_id[MSG_ID_MAX + 1];
    enum msg_event event;
    enum msg_source source;
    char reason[32];     /* cron only; "" otherwise */
    char emitted_at[32]; /* as sent; "" if absent */
};

const char *msg_event_name(enum msg_event e);   /* "create", ..., "sync_check" */
const char *msg_source_name(enum msg_source s); /* "webhook", "cron", "cli" */
/* 0 and *out, or -1 for an unknown name. */
int msg_event_parse(const char *s, enum msg_event *out);

/* Encodes a message; emitted_at_ms is Unix time in ms; reason may be NULL. NULL on an invalid
 * entity id (empty or longer than MSG_ID_MAX) or out of memory. */
char *msg_encode(const char *entity_id, enum msg_event event, enum msg_source source,
                 const char *reason, long long emitted_at_ms);

/* Decodes and validates a value (not NUL-terminated). 0 on success; -1 with err saying why
 * (not JSON, no string entityId, unknown v, ...): such a message goes to the DLQ. Unknown
 * event or source names are tolerated (event defaults to sync_check: level-triggered). */
int msg_decode(const char *value, size_t len, struct msg *out, char *err, size_t errlen);

#endif
