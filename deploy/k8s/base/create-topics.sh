#!/bin/sh
# create-topics.sh: creates the five topics of vmh-sync (SPEC §2) with equal partition counts,
# and fails when one exists with another count. Used by the Kubernetes Job (topics-job.yaml)
# and by docker-compose.yml, in the apache/kafka image.
#
# Environment: KAFKA_BROKERS, KAFKA_TOPIC_PREFIX (as the programs read them, default
# vmh.beteiligte), TOPIC_PARTITIONS (12), TOPIC_REPLICATION_FACTOR (3), KAFKA_BIN (the folder
# of kafka-topics.sh, /opt/kafka/bin), KAFKA_ADMIN_CONFIG (optional: a client properties file
# for SASL/TLS, passed as --command-config).
#
# Partitions are never added to an existing topic: that moves keys to other partitions and
# breaks per-entity ordering while old messages are still queued. Change the count only on
# empty topics (README, "Scaling").
set -eu

: "${KAFKA_BROKERS:?KAFKA_BROKERS is required}"
prefix=${KAFKA_TOPIC_PREFIX:-vmh.beteiligte}
partitions=${TOPIC_PARTITIONS:-12}
replication=${TOPIC_REPLICATION_FACTOR:-3}
bin=${KAFKA_BIN:-/opt/kafka/bin}

kt() {
    if [ -n "${KAFKA_ADMIN_CONFIG:-}" ]; then
        "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" \
            --command-config "$KAFKA_ADMIN_CONFIG" "$@"
    else
        "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" "$@"
    fi
}

bad=0
for kind in create update delete sync_check dlq; do
    topic="$prefix.$kind"
    kt --create --if-not-exists --topic "$topic" --partitions "$partitions" \
        --replication-factor "$replication" >/dev/null
    count=$(kt --describe --topic "$topic" | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' |
        head -n 1)
    if [ "$count" != "$partitions" ]; then
        echo "create-topics: $topic has ${count:-no} partitions, expected $partitions" >&2
        bad=1
    else
        echo "create-topics: $topic: $count partitions"
    fi
done
exit "$bad"
