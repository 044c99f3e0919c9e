#!/usr/bin/env bash
# Debian's Chromium at /usr/bin/chromium, for the dashboard's browser test (tests/e2e/test_browser.py).
# Playwright drives this browser; its own browser download (`playwright install`) is never used.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
echo "installing chromium"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
/usr/bin/chromium --version
