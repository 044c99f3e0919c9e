#!/usr/bin/env bash
# What `make bench` needs beyond `make setup`: wrk, the HTTP load generator, from the system's packages.
set -euo pipefail

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
fi
