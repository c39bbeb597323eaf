/* dlqread.h: reading the dead-letter topic <prefix>.dlq (SPEC §2; the worker's worker/dlq.c
 * writes it: the poison message's key and value unchanged, headers error, topic, partition and
 * offset) from its beginning to its end as of now, and remembering which letters were replayed.
 * Kafka cannot delete a message, so vmhctl keeps its place in a consumer group of its own:
 * letters below the group's committed offset were handled by an earlier replay.
 *
 * A struct dlqread owns its consumer and the letters it read (dlqread_close). Not thread-safe. */
#ifndef VMH_DLQREAD_H
#define VMH_DLQREAD_H

#include <stdbool.h>
#include <stddef.h>

struct dlq_letter {
    int partition;
    long long offset;
    char *key, *value; /* as stored (NUL-terminated copies; may hold any bytes) */
    size_t keylen, len;
    char error[256]; /* the headers worker/dlq.c wrote ("" when absent) */
    char topic[256];
    char from_partition[16];
    char from_offset[24];
    bool handled; /* below the replay group's committed offset */
};

struct dlqread;

/* A consumer of topic in group (which joins nothing: partitions are assigned). NULL with err. */
struct dlqread *dlqread_open(const char *brokers, const char *topic, const char *group, char *err,
                             size_t errlen);
/* Reads every partition from its first to its last message as of now, within timeout_ms. 0, or
 * -1 with err (no broker, the topic missing, a read that did not finish). */
int dlqread_fetch(struct dlqread *d, long long timeout_ms, char *err, size_t errlen);
size_t dlqread_count(const struct dlqread *d);
const struct dlq_letter *dlqread_get(const struct dlqread *d, size_t i);
/* Records every letter read as handled: commits each partition's end for the group. 0 or -1. */
int dlqread_commit(struct dlqread *d, char *err, size_t errlen);
void dlqread_close(struct dlqread *d);

/* bytes as text a terminal and JSON take: printable ASCII and valid UTF-8 as they are, every
 * other byte as \xNN. malloc'd; NULL when out of memory. */
char *dlqread_printable(const char *bytes, size_t len);

#endif
