/* kprod.h: the producer's Kafka side on the libuv loop (SPEC §2, §3): an idempotent librdkafka
 * producer whose delivery reports run on the loop thread (librdkafka's queue wakes the loop
 * through a pipe), so webhook answers can wait for Kafka without blocking anything.
 *
 * kprod_produce() may be called from any thread; the delivery callback always runs on the loop
 * thread, exactly once per accepted message. The kprod owns the rd_kafka_t. */
#ifndef VMH_KPROD_H
#define VMH_KPROD_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "kafka.h"
#include "metrics.h"

struct kprod;

/* err = RD_KAFKA_RESP_ERR_NO_ERROR when Kafka acknowledged the message. */
typedef void (*kprod_delivery_fn)(void *opaque, rd_kafka_resp_err_t err);

/* NULL with err on a bad configuration. reg may be NULL. */
struct kprod *kprod_new(uv_loop_t *loop, const char *brokers, const char *topic_prefix,
                        struct metrics *reg, char *err, size_t errlen);

/* Queues one message keyed by key. 0 on success (fn runs later on the loop thread); -1 with err
 * if librdkafka refused it at once (queue full, ...): then fn never runs. */
int kprod_produce(struct kprod *p, enum kafka_topic_kind topic, const char *key, const char *value,
                  size_t len, kprod_delivery_fn fn, void *opaque, char *err, size_t errlen);

/* True when a broker answered a metadata request within timeout_ms (blocking; not on the loop
 * thread). */
bool kprod_probe(struct kprod *p, int timeout_ms);
/* The start-up check of the five topics (kafka_topics_check_or_exit): exits 2 when unequal; 1
 * checked, 0 not yet (no broker answered). */
int kprod_check_topics(struct kprod *p, int timeout_ms);

/* Flushes up to flush_ms (delivery callbacks run), then closes the loop handles. The kprod is
 * freed once they are closed: run the loop to its end afterwards. */
void kprod_close(struct kprod *p, int flush_ms);

#endif
