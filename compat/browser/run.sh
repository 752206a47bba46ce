#!/usr/bin/env bash
# The browser tests of the sign-in pages: installs Debian's chromium if it is missing and
# playwright-core from npm (pinned in package-lock.json; it never downloads a browser),
# then runs them with Node's test runner. Screenshots land in target/browser-artifacts/.
#
# LIMEN_BIN: the limen binary to test [default: target/debug/limen].
# CHROMIUM: the browser [default: /usr/bin/chromium].
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "browser tests: installing chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Try without `apt-get update` first: it is slow and the lists are often fresh enough.
    if ! "${sudo[@]}" apt-get install -y -q chromium >&2; then
        "${sudo[@]}" apt-get update -q >&2
        "${sudo[@]}" apt-get install -y -q chromium >&2
    fi
fi

cd "$here"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
CHROMIUM="$chromium" npm test --silent
