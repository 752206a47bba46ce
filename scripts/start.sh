#!/usr/bin/env bash
# From a fresh Debian machine with the Rust toolchain to a running Limen: builds the
# release binary, bootstraps the embedded default (SQLite in ./limen-data, an admin user,
# the identity endpoint) and serves on 127.0.0.1:5000, printing how to log in.
#
#   scripts/start.sh                      admin password generated (kept in limen-data/)
#   LIMEN_ADMIN_PASSWORD=... scripts/start.sh
#   LIMEN_LISTEN=0.0.0.0:5000 LIMEN_PUBLIC_URL=https://keystone.example.com scripts/start.sh
#
# LIMEN_PUBLIC_URL is the URL clients reach Limen at (links and WWW-Authenticate are built
# on it, never on a request's Host header); default http://<listen address>.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${LIMEN_DATA_DIR:-./limen-data}
listen=${LIMEN_LISTEN:-127.0.0.1:5000}
public_url=${LIMEN_PUBLIC_URL:-http://${listen/0.0.0.0/127.0.0.1}}
mkdir -p "$data"
chmod 700 "$data"

if [ -n "${LIMEN_BIN:-}" ]; then
    bin=$LIMEN_BIN # a binary built already (the tests run this script with theirs)
else
    echo "==> building limen (release)"
    cargo build --release --quiet -p limen
    bin=target/release/limen
fi

pwfile=$data/admin-password
if [ -z "${LIMEN_ADMIN_PASSWORD:-}" ]; then
    if [ ! -s "$pwfile" ]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile")
    fi
    LIMEN_ADMIN_PASSWORD=$(cat "$pwfile")
fi
export LIMEN_ADMIN_PASSWORD

echo "==> bootstrapping $data"
"$bin" --data-dir "$data" bootstrap --public-url "$public_url/v3" |
    sed "s|OS_PASSWORD=<the admin password>|OS_PASSWORD=$LIMEN_ADMIN_PASSWORD|"
[ -f "$pwfile" ] && echo "(the admin password is kept in $pwfile)"
echo "    (no openstack CLI yet? compat/setup-venv.sh installs one into .venv/bin)"

echo "==> serving; stop with Ctrl-C"
exec "$bin" --data-dir "$data" serve --listen "$listen" --public-url "$public_url"
