#!/bin/sh
# deps-debian.sh: install the Debian packages vmh-sync needs to build, test and demo.
# Idempotent: when every package is present it only checks and returns (no apt-get update).
# Usable as root or through sudo.
set -eu

PACKAGES="build-essential cmake pkg-config git tzdata
librdkafka-dev libcurl4-openssl-dev libjansson-dev libhiredis-dev libssl-dev
libuv1-dev libhttp-parser-dev libcmocka-dev libphonenumber-dev g++
redis-server redis-tools kcat wrk curl ca-certificates clang-format valgrind python3"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

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
