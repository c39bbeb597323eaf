/* ksend.h: vmhctl's Kafka producer (SPEC §2, §11): vmh-producer's own kprod (producer/kprod.h:
 * the configuration of common/kafka.h, so the same murmur2_random partitioner and KAFKA_CFG_*
 * settings, and the same produce call) on a private libuv loop, used blocking: queue messages,
 * then wait for Kafka's delivery reports. A key therefore lands in exactly the partition the
 * producer puts it in.
 *
 * A struct ksend owns its loop and producer; ksend_free() flushes what is left and releases
 * everything. Not thread-safe. */
#ifndef VMH_KSEND_H
#define VMH_KSEND_H

#include <stdbool.h>
#include <stddef.h>

#include "kafka.h"
#include "kprod.h"

struct ksend;

/* NULL with err on a bad configuration or out of memory. */
struct ksend *ksend_new(const char *brokers, const char *prefix, char *err, size_t errlen);

/* Queues value for topic keyed by key. Returns the message's number (0, 1, ... in the order
 * queued), or -1 with err when librdkafka refused it at once. */
long ksend_queue(struct ksend *s, enum kafka_topic_kind topic, const char *key, const char *value,
                 size_t len, char *err, size_t errlen);

/* Runs the loop until every queued message has its delivery report or timeout_ms passed.
 * Returns how many messages are not acknowledged (failed or still waiting). */
size_t ksend_wait(struct ksend *s, long long timeout_ms);

/* Message n's outcome: 1 acknowledged, 0 still waiting, -1 failed (err names Kafka's error). */
int ksend_result(const struct ksend *s, size_t n, char *err, size_t errlen);

/* The producer, for code that produces on it directly (the cron scan); its messages are counted
 * by ksend_close(). */
struct kprod *ksend_kprod(struct ksend *s);

/* Flushes for up to flush_ms and closes; *acked and *failed (may be NULL) count every message the
 * producer handled, by its delivery reports (what is still unsent fails). Then frees s. */
void ksend_close(struct ksend *s, int flush_ms, long *acked, long *failed);

#endif
