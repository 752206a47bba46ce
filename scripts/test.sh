#!/usr/bin/env bash
# Runs every test Limen has, on a fresh Debian machine with the Rust toolchain:
# formatting and lints, unit tests, integration tests against a real `limen serve` on
# SQLite and on PostgreSQL (started here from Debian's packages), and the compatibility
# suite with real clients (openstack CLI, openstacksdk, Keystone's own Fernet code,
# tempest, Authlib and PyJWT) installed from PyPI into .venv, and the sign-in pages in
# Debian's headless Chromium (installed here) driven by playwright-core from npm.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    Rust tests on SQLite only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true

started=$SECONDS
step() {
    printf '\n==> %s (%ss)\n' "$*" "$((SECONDS - started))"
}

have_nextest=false
cargo nextest --version >/dev/null 2>&1 && have_nextest=true

# Runs the workspace's tests, or only the integration tests with `integration`.
run_tests() {
    if $have_nextest; then
        if [ "${1:-}" = integration ]; then
            # A filter rather than -p, so cargo keeps the workspace's features and rebuilds nothing.
            cargo nextest run --no-fail-fast --workspace -E 'package(limen-tests)'
        else
            cargo nextest run --no-fail-fast --workspace
        fi
    else
        if [ "${1:-}" = integration ]; then
            cargo test --no-fail-fast -p limen-tests
        else
            cargo test --no-fail-fast --workspace
        fi
    fi
}

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build"
cargo build --workspace --quiet

step "unit and integration tests (SQLite)"
run_tests

# nextest runs no doc tests: these show that a core write without an authorization proof
# does not compile (crates/core/src/authz.rs).
step "doc tests (limen-core)"
cargo test --quiet --doc -p limen-core

if $quick; then
    step "done (quick)"
    exit 0
fi

work=$(mktemp -d)
# PostgreSQL runs as an unprivileged user, who must be able to reach its directory.
chmod 755 "$work"
cleanup() {
    scripts/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

step "PostgreSQL"
pg_url=$(scripts/postgres.sh start "$work/pg")
echo "$pg_url"

step "integration tests (PostgreSQL)"
LIMEN_TEST_DATABASE_URL=$pg_url run_tests integration

# The compat suite uses the binary built above.
export LIMEN_BIN=$PWD/target/debug/limen

step "compatibility suite with real clients (SQLite)"
compat/run.sh

step "browser tests of the sign-in pages (headless Chromium)"
compat/browser/run.sh

step "compatibility suite with real clients (PostgreSQL)"
# On PostgreSQL the servers issue JWS tokens, so every client and tempest test also runs
# against that format (the Fernet interop part keeps Fernet).
LIMEN_TOKEN__PROVIDER=jws LIMEN_TEST_DATABASE_URL=$pg_url compat/run.sh

step "all tests passed"
