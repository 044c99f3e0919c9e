#!/usr/bin/env bash
# PostgreSQL's server programs (initdb, pg_ctl, postgres) from Debian's `postgresql` package, for the
# tests that run the order store on PostgreSQL: each test session starts its own throw-away server
# (tests/postgres.py), so no cluster of the package is used or needed.
set -euo pipefail

have_server() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    # Debian keeps them out of PATH, under the server's major version.
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

if have_server; then
    exit 0
fi
echo "installing postgresql"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
have_server
