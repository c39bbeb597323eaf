#!/usr/bin/env bash
# sim_throughput.sh: checks SPEC §8's throughput promise for the simulators: at least 20 000
# simple keep-alive GETs per second on one core, so that benchmarks measure vmh-sync and not
# the simulator. Not part of ctest; builds nothing (expects build/bin, or VMH_BIN_DIR).
#
# Each simulator is pinned to CPU $SIM_CPU, wrk (one thread, $CONNS connections, $DURATION) to
# CPU $WRK_CPU:
#   advoware-sim: fetches a token (HMAC-SHA512 signature computed with the openssl CLI), creates
#                 one Beteiligter, then GET /api/v1/advonet/Beteiligte/{betNr} with the bearer.
#   espocrm-sim:  GET /api/v1/App/user with X-Api-Key.
# Prints requests/s for each and whether it meets $TARGET. Everything it starts it stops (trap).
#
# Usage: tests/bench/sim_throughput.sh            (both simulators)
#        SIMS=advoware tests/bench/sim_throughput.sh
# Environment: VMH_BIN_DIR, SIMS ("advoware espocrm"), DURATION (5s), CONNS (32),
#              TARGET (20000), SIM_CPU (0), WRK_CPU (1).
# Exit: 0 every simulator meets the target, 1 one does not (or answered errors), 2 setup failed.
set -euo pipefail

BENCH=sim_throughput
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIMS=${SIMS:-"advoware espocrm"}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
TARGET=${TARGET:-20000}
SIM_CPU=${SIM_CPU:-0}
WRK_CPU=${WRK_CPU:-1}

# The simulators' defaults (SPEC §8.1).
ADVO_APP_ID=vmh-dev
ADVO_API_KEY=ZGV2LWFkdm93YXJlLWtleQ==
ESPO_API_KEY=dev-espocrm-key

need wrk taskset curl openssl base64 od

# start_sim NAME [ARGS...]: starts build/bin/NAME pinned to SIM_CPU on a free port; sets PORT.
start_sim() {
    local name=$1 line="" deadline
    shift
    [[ -x $BIN/$name ]] || die "$BIN/$name not found: build it first (make)"
    taskset -c "$SIM_CPU" "$BIN/$name" --port 0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=("$!")
    deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        line=$(head -n 1 "$WORK/$name.out" 2>/dev/null || true)
        [[ $line == "listening on 127.0.0.1:"* ]] && break
        sleep 0.05 # polling interval while waiting for the first line
    done
    [[ $line == "listening on 127.0.0.1:"* ]] || die "$name did not report its port: $(cat "$WORK/$name.err")"
    PORT=${line##*:}
}

# advoware_token URL: prints a fresh access token (SPEC §7.2 signature).
advoware_token() {
    local url=$1 nonce ts key_hex sig body
    nonce=$(cat /proc/sys/kernel/random/uuid)
    ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    key_hex=$(printf %s "$ADVO_API_KEY" | base64 -d | od -An -v -tx1 | tr -d ' \n')
    sig=$(printf %s "64:$ADVO_APP_ID:$nonce:$ts" |
        openssl dgst -sha512 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64 -w0)
    body=$(printf '{"AppID":"%s","Kanzlei":"dev","Database":"dev","User":"dev","Role":2,"Product":64,"Password":"dev","Nonce":"%s","HMAC512Signature":"%s","RequestTimeStamp":"%s"}' \
        "$ADVO_APP_ID" "$nonce" "$sig" "$ts")
    curl -sf -X POST "$url/api/v1/Token" -H 'Content-Type: application/json' -d "$body" |
        sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

# measure LABEL URL HEADER: runs wrk, prints the result line; returns 1 below target or on errors.
measure() {
    local label=$1 url=$2 header=$3 out rps non2xx verdict
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "$header" "$url") == 200 ]] ||
        die "$label: $url does not answer 200"
    out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" -H "$header" "$url")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
    [[ -n $rps ]] || die "$label: no result from wrk: $out"
    if [[ -n $non2xx ]]; then
        verdict="FAIL ($non2xx non-2xx answers)"
    elif awk -v r="$rps" -v t="$TARGET" 'BEGIN { exit !(r >= t) }'; then
        verdict="ok (>= $TARGET/s)"
    else
        verdict="FAIL (< $TARGET/s)"
    fi
    printf '%-14s %12s requests/s  %s\n' "$label" "$rps" "$verdict"
    [[ $verdict == ok* ]]
}

bench_advoware() {
    local url token auth betnr
    start_sim advoware-sim
    url=http://127.0.0.1:$PORT
    token=$(advoware_token "$url")
    [[ -n $token ]] || die "advoware-sim: no token"
    auth="Authorization: Bearer $token"
    betnr=$(curl -sf -X POST "$url/api/v1/advonet/Beteiligte" -H "$auth" \
        -d '{"name":"Mustermann","vorname":"Max","rechtsform":"GmbH"}' |
        sed -n 's/.*"betNr":\([0-9]*\).*/\1/p')
    [[ -n $betnr ]] || die "advoware-sim: could not create a Beteiligter"
    measure advoware-sim "$url/api/v1/advonet/Beteiligte/$betnr" "$auth"
}

bench_espocrm() {
    start_sim espocrm-sim
    measure espocrm-sim "http://127.0.0.1:$PORT/api/v1/App/user" "X-Api-Key: $ESPO_API_KEY"
}

echo "sims on CPU $SIM_CPU, wrk -t1 -c$CONNS -d$DURATION on CPU $WRK_CPU, target $TARGET requests/s"
rc=0
for sim in $SIMS; do
    case $sim in
    advoware) bench_advoware || rc=1 ;;
    espocrm) bench_espocrm || rc=1 ;;
    *) die "unknown simulator in SIMS: $sim" ;;
    esac
done
exit $rc
