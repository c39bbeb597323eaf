#!/usr/bin/env bash
# worker_throughput.sh: the worker runtime against its physical limit (issue 5).
# A handler that sleeps L ms (simulated API latency) can finish at most concurrency / L messages
# per second. For each WORKER_CONCURRENCY setting this starts a fresh kafka-mock and
# redis-server, produces a backlog of M messages with M distinct keys (no coalescing: one run
# each, each with its Redis lock taken and released), starts vmh-worker-rec (the real runtime with
# a counting handler), waits until it joined the group, and measures messages/s from the first
# finished message to the last. Prints the limit, the measured rate, their ratio and the
# worker's peak RSS. Not part of ctest; builds nothing.
#
# Environment: VMH_BIN_DIR (build/bin), L (20 ms), SETTINGS ("1 8 32 128"), SECONDS_PER (4:
# the backlog is sized for about this many seconds at the limit; 200 .. 20 000 messages).
set -euo pipefail

BENCH=worker_throughput
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
L=${L:-20}
SETTINGS=${SETTINGS:-"1 8 32 128"}
SECONDS_PER=${SECONDS_PER:-4}

need kcat curl redis-server redis-cli python3
[[ -x $BIN/vmh-worker-rec && -x $BIN/kafka-mock ]] || die "build first (make)"

now() { date +%s.%N; }

# one CONCURRENCY: prints "concurrency limit measured ratio rss_mib runs"
one() {
    local conc=$1 limit m mport wpid count t_first="" c_first=0 t_end deadline
    limit=$((conc * 1000 / L))
    m=$((limit * SECONDS_PER))
    ((m < 200)) && m=200
    ((m > 20000)) && m=20000

    start_backends
    python3 - "$m" >"$WORK/msgs" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    k = "b%06d" % i
    print('%s:{"v":1,"entityId":"%s","event":"update","source":"webhook"}' % (k, k))
PY
    kcat -P -b "$BROKERS" -t vmh.beteiligte.update -K: -l "$WORK/msgs" || die "kcat failed"

    mport=$(free_port)
    KAFKA_BROKERS=$BROKERS REDIS_URL=redis://127.0.0.1:$REDIS_PORT METRICS_LISTEN=127.0.0.1:$mport \
    ESPOCRM_URL=http://127.0.0.1:9 ESPOCRM_API_KEY=k ADVOWARE_URL=http://127.0.0.1:9 \
    ADVOWARE_APP_ID=a ADVOWARE_API_KEY=a2V5 ADVOWARE_KANZLEI=k ADVOWARE_DATABASE=d \
    ADVOWARE_USER=u ADVOWARE_PASSWORD=p LOG_LEVEL=warn REC_MODE=count REC_SLEEP_MS=$L \
    WORKER_CONCURRENCY=$conc "$BIN/vmh-worker-rec" 2>"$WORK/worker.err" &
    wpid=$!
    PIDS+=("$wpid")

    deadline=$((SECONDS + 30 + 10 * SECONDS_PER))
    while :; do
        ((SECONDS < deadline)) || die "concurrency $conc: timed out ($(cat "$WORK/worker.err"))"
        count=$(redis-cli -p "$REDIS_PORT" GET rec:count 2>/dev/null || true)
        count=${count:-0}
        if [[ -z $t_first && $count -gt 0 ]]; then t_first=$(now); c_first=$count; fi
        if ((count >= m)); then t_end=$(now); break; fi
        sleep 0.02 # polling interval
    done
    local rss runs cpu
    rss=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$wpid/status")
    # utime + stime of the whole worker life (joining included), in clock ticks
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$wpid/stat")
    runs=$(curl -s "http://127.0.0.1:$mport/metrics" | awk '/^vmh_runs_total\{result="done"\}/ {print $2}')
    stop_all
    python3 - "$conc" "$limit" "$m" "$c_first" "$t_first" "$t_end" "$rss" "$runs" "$cpu" <<'PY'
import sys
conc, limit, m, c_first = (int(x) for x in sys.argv[1:5])
t_first, t_end = float(sys.argv[5]), float(sys.argv[6])
rate = (m - c_first) / max(t_end - t_first, 1e-9)
cpu_us = float(sys.argv[9]) * 1e6 / m
print(f"| {conc} | {limit} | {rate:.0f} | {rate / limit:.2f} | {sys.argv[7]} | {cpu_us:.0f} "
      f"| {m} / {sys.argv[8]} |")
PY
}

echo "worker runtime vs concurrency / L, L = $L ms, $(nproc) cores"
echo
echo "| concurrency | limit msg/s | measured msg/s | ratio | peak RSS MiB | worker CPU µs/msg | messages / runs |"
echo "|---|---|---|---|---|---|---|"
for c in $SETTINGS; do one "$c"; done
