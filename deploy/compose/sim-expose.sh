#!/bin/bash
# sim-expose.sh PORT PROGRAM [ARGS...]: runs a simulator of tests/sim on 127.0.0.1:PORT+10000
# and forwards 0.0.0.0:PORT to it with socat, so other containers reach it (the simulators
# listen on loopback only, SPEC §8.1). For docker-compose.yml: ends when either process ends,
# and passes SIGTERM on to both.
set -euo pipefail

port=$1
shift
inner=$((port + 10000))

"$@" --port "$inner" &
sim=$!
socat "TCP-LISTEN:$port,fork,reuseaddr" "TCP:127.0.0.1:$inner" &
fwd=$!

trap 'kill -TERM "$sim" "$fwd" 2>/dev/null || true' TERM INT
status=0
wait -n "$sim" "$fwd" || status=$?
kill -TERM "$sim" "$fwd" 2>/dev/null || true
wait "$sim" "$fwd" 2>/dev/null || true
exit "$status"
