#!/usr/bin/env bash
# webhook_ingest.sh: vmh-producer's webhook ingest against its own HTTP ceiling (issue 4).
# Starts kafka-mock, redis-server and vmh-producer (webhooks and ops on one listener), then runs
# wrk with keep-alive: signed single-record POSTs to /webhook/beteiligte/update (each answered
# only after Kafka acknowledged it) and, against the same server, GET /healthz (the HTTP-only
# ceiling). Prints requests/s and p99 of both and their ratio. Not part of ctest; builds nothing.
#
# Environment: VMH_BIN_DIR (build/bin), DURATION (10s), CONNS (32), PRODUCER_CPU (0), WRK_CPU (1).
set -euo pipefail

BENCH=webhook_ingest
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
PRODUCER_CPU=${PRODUCER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}

need wrk taskset curl openssl base64 redis-server
[[ -x $BIN/vmh-producer && -x $BIN/kafka-mock ]] || die "build first (make)"

start_backends
PORT=$(free_port)
BODY='[{"id":"68e4aef68d2b4fb98","name":"Mustermann"}]'
SIG=$( (printf 'wh1:'; printf %s "$BODY" | openssl dgst -sha256 -hmac s3cret -binary) | base64 -w0)

KAFKA_BROKERS=$BROKERS REDIS_URL=redis://127.0.0.1:$REDIS_PORT ESPOCRM_URL=http://127.0.0.1:1 \
ESPOCRM_API_KEY=k WEBHOOK_SECRETS=wh1:s3cret WEBHOOK_LISTEN=127.0.0.1:$PORT \
METRICS_LISTEN=127.0.0.1:$PORT CRON_INTERVAL_S=3600 CRON_RETRY_INTERVAL_S=3600 LOG_LEVEL=error \
    taskset -c "$PRODUCER_CPU" "$BIN/vmh-producer" 2>"$WORK/producer.err" &
PIDS+=("$!")
deadline=$((SECONDS + 20))
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
    ((SECONDS < deadline)) || die "vmh-producer not ready: $(cat "$WORK/producer.err")"
    sleep 0.1 # polling interval
done

cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Signature"] = "$SIG"
LUA

run() { # label url [script]: prints "label rps p99"
    local out
    out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency ${3:+-s "$3"} "$2")
    if grep -q "Non-2xx" <<<"$out"; then die "$1: non-2xx answers: $(grep Non-2xx <<<"$out")"; fi
    printf '%s %s %s\n' "$1" "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")" \
        "$(awk '$1 == "99%" {print $2}' <<<"$out")"
}

echo "vmh-producer on CPU $PRODUCER_CPU, wrk -t1 -c$CONNS -d$DURATION on CPU $WRK_CPU"
read -r _ hrps hp99 < <(run healthz "http://127.0.0.1:$PORT/healthz")
read -r _ wrps wp99 < <(run webhook "http://127.0.0.1:$PORT/webhook/beteiligte/update" "$WORK/post.lua")
printf '%-28s %12s requests/s  p99 %s\n' "GET /healthz (ceiling)" "$hrps" "$hp99"
printf '%-28s %12s requests/s  p99 %s\n' "signed webhook -> Kafka ack" "$wrps" "$wp99"
awk -v w="$wrps" -v h="$hrps" 'BEGIN { printf "ratio webhook/ceiling: %.2f\n", w / h }'
