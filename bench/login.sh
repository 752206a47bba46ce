#!/usr/bin/env bash
# What a kubectl command waits for before its first request, with Limen and with
# k8s-keystone-auth's way, in one run. Limen: `limen login` as kubectl runs it (release
# build, KUBERNETES_EXEC_INFO set, one fresh parent process per run) answering from its
# cache, and renewing the cluster token from the cached login (a token exchange).
# k8s-keystone-auth's client plugin keeps no cache: every kubectl command is a password
# login to Keystone, measured here against Keystone 30 (uWSGI, bcrypt cost 12, its
# default). Prints a Markdown table with the ratio and writes it to
# bench/results/login-<UTC timestamp>.md. See bench/README.md.
#
#   bench/login.sh                 everything (installs Keystone, builds Limen)
#   bench/login.sh --runs 500      cached runs (default 300; renewals and Keystone logins: a tenth)
#   bench/login.sh --limen-only    no Keystone
#   bench/login.sh --skip-setup    no apt/pip/cargo when the tools are already there
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

runs=300
limen_only=0
skip_setup=0
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift ;;
    --limen-only) limen_only=1 ;;
    --skip-setup) skip_setup=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done
few=$(( runs / 10 > 10 ? runs / 10 : 10 ))

bcrypt_rounds=12
admin_pw=bench-admin-secret
work=$bench_dir/.work/login
results_dir=$bench_dir/results
timing=$bench_dir/login_timing.py

trap stop_all EXIT
trap 'exit 130' INT TERM

prepare_tools

rm -rf "$work"
mkdir -p "$work" "$results_dir"
started_at=$(date -u +%Y%m%dT%H%M%SZ)
load_start=$(loadavg)
# "p50_ms=1.2 ..." -> the value of one key
field() { sed -E "s/.*$2=([0-9.]+).*/\1/" <<<"$1"; }

# ---- Limen ----
port=$(free_port)
issuer=http://127.0.0.1:$port
LIMEN_BENCH_TOML=$(printf '[identity]\npassword_hash_rounds = %s\n[oidc]\nissuer = "%s"' "$bcrypt_rounds" "$issuer")
log "limen: bootstrap, OpenID Provider keys, serve on 127.0.0.1:$port"
limen_prepare "$work/limen" "$port" "$admin_pw"
"$limen_bin" --config "$work/limen/limen.toml" --data-dir "$work/limen" \
    --database-url "sqlite://$work/limen/limen.db" keys oidc setup >"$work/keys.log" 2>&1 ||
    die "limen keys oidc setup failed: $(tail -3 "$work/keys.log")"
limen_start "$work/limen" "$port"
wait_http "$issuer/oauth2/jwks" 10 "$LIMEN_PID" || die "no OpenID Provider keys"
python3 "$bench_dir/populate.py" --base "$issuer" --admin-password "$admin_pw" \
    --users 10 --assigned 1 >"$work/limen.vars"
# shellcheck disable=SC1091
source "$work/limen.vars"
python3 "$bench_dir/login_setup.py" --base "$issuer" --admin-token "$ADMIN_TOKEN" \
    --user-id "$USER_ID" --member-token "$MEMBER_PROJECT_TOKEN" >"$work/login.vars"
# shellcheck disable=SC1091
source "$work/login.vars"

export LIMEN_CACHE_DIR=$work/cache
export LIMEN_APPLICATION_CREDENTIAL_ID=$APP_CRED_ID LIMEN_APPLICATION_CREDENTIAL_SECRET=$APP_CRED_SECRET
export KUBERNETES_EXEC_INFO="{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\",\"spec\":{\"interactive\":false,\"cluster\":{\"server\":\"https://k8s.bench.example:6443\",\"config\":{\"issuer\":\"$issuer\",\"audience\":\"$AUDIENCE\",\"client_id\":\"$CLIENT_ID\"}}}}"
login=("$limen_bin" login --account bench)
"${login[@]}" >"$work/first-login.json" 2>"$work/first-login.err" ||
    die "limen login failed: $(cat "$work/first-login.err")"
log "limen login: $runs runs answered from the cache"
cached=$(python3 "$timing" exec --runs "$runs" -- "${login[@]}")
log "limen login: $few runs renewing the cluster token from the cached login"
renewing=$(python3 "$timing" exec --runs "$few" --forget "$LIMEN_CACHE_DIR/account-*/cluster-*.json" -- "${login[@]}")
stop_pid "$LIMEN_PID"

# ---- Keystone ----
keystone=""
if [ "$limen_only" = 0 ]; then
    ks_dir=$work/keystone
    ks_port=$(free_port)
    keystone_setup
    keystone_start
    python3 "$bench_dir/populate.py" --base "http://127.0.0.1:$ks_port" --admin-password "$admin_pw" \
        --users 10 --assigned 1 >"$work/keystone.vars"
    # shellcheck disable=SC1091
    source "$work/keystone.vars"
    log "keystone: $few password logins, a new connection each"
    keystone=$(python3 "$timing" post --runs "$few" "http://127.0.0.1:$ks_port/v3/auth/tokens" \
        "$(body_password "$BENCH_USER" "$BENCH_PASSWORD" "$PROJECT_ID")")
    stop_pid "$KS_PID"
fi

# ---- report ----
row() { # TITLE SUMMARY
    if [ -z "$2" ]; then echo "| $1 | - | - | - | - | - |"; return; fi
    echo "| $1 | $(field "$2" runs) | $(field "$2" p50_ms) | $(field "$2" p90_ms) | $(field "$2" p99_ms) | $(field "$2" max_ms) |"
}
cached_p99=$(field "$cached" p99_ms)
out=$results_dir/login-$started_at.md
{
    echo "# What a kubectl command waits for: $started_at"
    echo
    echo "- machine: $(machine_facts); load average at start $load_start, at end $(loadavg)"
    echo "- limen: $("$limen_bin" --version) (release), commit $(git -C "$repo_dir" rev-parse --short HEAD)$(git -C "$repo_dir" diff --quiet HEAD -- crates 2>/dev/null || echo '+changes'), SQLite, issuer on loopback http"
    if [ "$limen_only" = 0 ]; then
        echo "- keystone: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("keystone"))') under uWSGI (2 processes × 1 thread), SQLite, Fernet, cache on, bcrypt cost $bcrypt_rounds"
    fi
    echo
    echo "| per kubectl command | runs | p50 ms | p90 ms | p99 ms | max ms |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    row "limen login, cluster token from the cache" "$cached"
    row "limen login, cluster token renewed from the cached login (token exchange)" "$renewing"
    row "k8s-keystone-auth's way: a password login to Keystone" "$keystone"
    echo
    if [ -n "$keystone" ]; then
        echo "- Keystone password login / limen login from the cache (p50): $(ratio "$(field "$keystone" p50_ms)" "$(field "$cached" p50_ms)")×"
    fi
    echo "- target: a cached credential in < 5 ms (p99): $cached_p99 ms — $(if ge 5 "$cached_p99"; then echo met; else echo "**not met**"; fi)"
    echo
    echo "Each limen run is a process of its own started from a fresh parent, as kubectl starts"
    echo "the plugin, timed from spawn to exit; it reads KUBERNETES_EXEC_INFO, takes the"
    echo "account's lock, checks and records the cached entry and prints the ExecCredential."
    echo "The renewal runs remove the cached cluster token first (outside the timing), so each"
    echo "does one token exchange with the issuer. Keystone logins are timed from connect to"
    echo "the end of the answer, one new connection each, as a plugin without a cache logs in."
} >"$out.tmp"
publish "$out"
