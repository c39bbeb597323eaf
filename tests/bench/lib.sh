# lib.sh: what every benchmark script shares (sourced, not run). Before sourcing, a script sets
# BENCH (its name, for messages). Provides ROOT, BIN (build/bin or VMH_BIN_DIR), WORK (a scratch
# directory removed at exit), PIDS (every process started: add "$!"), stop_all, die, need,
# free_port and first_line. At exit every process in PIDS gets SIGTERM and is waited for.
# shellcheck shell=bash

# shellcheck disable=SC2034 # ROOT and BIN are for the scripts that source this
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${VMH_BIN_DIR:-$ROOT/build/bin}
WORK=$(mktemp -d)
PIDS=()

# Stops every process in PIDS (SIGTERM, then waits) and empties the list.
# shellcheck disable=SC2317 # also invoked by the trap
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

die() {
    echo "$BENCH: $*" >&2
    exit 2
}

# need TOOL...: dies naming the first tool that is missing.
need() {
    local tool
    for tool in "$@"; do command -v "$tool" >/dev/null || die "$tool not found"; done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# first_line FILE: waits up to 10 s for the first line of FILE and prints it.
first_line() {
    local deadline=$((SECONDS + 10)) line=""
    while ((SECONDS < deadline)); do
        line=$(head -n 1 "$1" 2>/dev/null || true)
        [[ -n $line ]] && { echo "$line"; return 0; }
        sleep 0.05 # polling interval
    done
    return 1
}

# start_backends: kafka-mock (12 partitions) and a private redis-server on a free port; sets
# BROKERS and REDIS_PORT.
start_backends() {
    "$BIN/kafka-mock" --partitions 12 >"$WORK/kafka.out" 2>"$WORK/kafka.err" &
    PIDS+=("$!")
    BROKERS=$(first_line "$WORK/kafka.out") || die "kafka-mock did not start"
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
    PIDS+=("$!")
}
