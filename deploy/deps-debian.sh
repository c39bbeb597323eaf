#!/bin/sh
# deps-debian.sh [build|all]: install the Debian packages vmh-sync needs.
#   build  what compiles the project (deploy/Dockerfile's build stage uses only this)
#   all    (default) build, plus what `make test`, `make demo` and the deployment checks use
# Idempotent: when every package is present it only checks and returns (no apt-get update).
# Usable as root or through sudo.
set -eu

MODE=${1:-all}

BUILD_PACKAGES="build-essential cmake pkg-config git ca-certificates
librdkafka-dev libcurl4-openssl-dev libjansson-dev libhiredis-dev libssl-dev
libuv1-dev libhttp-parser-dev libcmocka-dev libphonenumber-dev g++"

# Tests, demo and benchmarks; then the static checks of deploy/ (tests/deploy): yamllint,
# docker-compose (`config -q` needs no engine), promtool (package prometheus), python3-yaml for
# /usr/bin/python3, which reads the rendered manifests.
TEST_PACKAGES="tzdata redis-server redis-tools kcat wrk curl clang-format valgrind python3
yamllint docker-compose prometheus python3-yaml"

case "$MODE" in
build) PACKAGES=$BUILD_PACKAGES ;;
all) PACKAGES="$BUILD_PACKAGES $TEST_PACKAGES" ;;
*)
    echo "usage: deps-debian.sh [build|all]" >&2
    exit 2
    ;;
esac

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# Tools that may come from another package than Debian's: a kubectl already on the machine
# (any recent one renders the kustomizations) and a Node.js that already brings npm are kept;
# only when the command is absent is Debian's package installed (kubernetes-client: kubectl
# 1.20 with kustomize 2.0.3, which deploy/k8s is written for; nodejs + npm).
if [ "$MODE" = all ]; then
    command -v kubectl >/dev/null 2>&1 || missing="$missing kubernetes-client"
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi

if [ -z "$missing" ]; then
    echo "deps-debian: all packages present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps-debian: missing packages:$missing; run as root or install sudo" >&2
    exit 1
fi

echo "deps-debian: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
