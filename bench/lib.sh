# Shared by bench/run.sh and bench/scale.sh (sourced, not run): installing what the
# benchmarks need, starting and stopping servers, measuring RSS, running wrk.
# shellcheck shell=bash
# shellcheck disable=SC2034  # R_* and the wrk settings are read by the sourcing scripts

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
venv=$bench_dir/.venv
lua=$bench_dir/wrk/request.lua

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---- installing ----

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages for the load generator and the populate step.
ensure_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3 python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} (apt)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# bench/.venv with bench/requirements.txt (Keystone 30, uWSGI). Idempotent: reinstalls
# only when the venv is missing or the requirements changed (their hash is kept inside).
ensure_venv() {
    local req=$bench_dir/requirements.txt want stamp=$venv/.bench-requirements.sha256
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ -x $venv/bin/uwsgi && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    # uWSGI compiles from source: it needs a C compiler and Python's headers.
    if ! command -v cc >/dev/null || ! python3 -c 'import sysconfig,os,sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"]+"/Python.h"))'; then
        log "installing build-essential python3-dev (apt) for uWSGI"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential python3-dev >/dev/null
    fi
    log "installing Keystone and uWSGI into $venv (pip; uWSGI compiles, a few minutes)"
    [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
}

# prepare_tools: what a benchmark needs (apt tools, the release build, and Keystone's venv
# unless $limen_only is 1), skipping installs with $skip_setup = 1 where they are there.
prepare_tools() {
    ensure_tools
    if [ "$skip_setup" = 0 ] || [ ! -x "$limen_bin" ]; then ensure_limen; fi
    if [ "${limen_only:-0}" = 0 ] && { [ "$skip_setup" = 0 ] || [ ! -x "$venv/bin/uwsgi" ]; }; then ensure_venv; fi
}

# publish FILE: moves FILE.tmp (a finished report) into place and prints it.
publish() {
    mv "$1.tmp" "$1"
    echo
    cat "$1"
    echo
    log "written to ${1#"$repo_dir"/}"
}

# The release binary (one build; cargo makes it a no-op when nothing changed).
limen_bin=${LIMEN_BIN:-${CARGO_TARGET_DIR:-$repo_dir/target}/release/limen}
ensure_limen() {
    command -v cargo >/dev/null || die "cargo is needed to build Limen (install the Rust toolchain)"
    log "building limen (release)"
    (cd "$repo_dir" && cargo build --release --quiet -p limen)
}

# ---- processes ----

started_pids=()

# Starts a command in its own session (so its whole process tree can be ended through
# its id) with output to a log file; sets BG_PID. Not to be called in $(…): the pid must
# reach started_pids in this shell, for the exit trap.
start_bg() {
    local logfile=$1
    shift
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    BG_PID=$!
    started_pids+=("$BG_PID")
}

# Ends one process group we started: TERM, then KILL after 15 s.
stop_pid() {
    local pid=$1 i
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for i in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Forget it, so that the exit trap never signals a reused id.
    local keep=() p
    for p in "${started_pids[@]}"; do
        [ "$p" = "$pid" ] || keep+=("$p")
    done
    started_pids=("${keep[@]}")
}

stop_all() {
    local pid
    for pid in "${started_pids[@]}"; do
        stop_pid "$pid"
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL answers 200 (at most $2 seconds, default 60) while $3 (a pid) lives.
wait_http() {
    local url=$1 secs=${2:-60} pid=${3:-} i
    for i in $(seq 1 $((secs * 10))); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ]; then
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# Resident memory (VmRSS, MiB with one decimal) of a process and all its descendants:
# for uWSGI the master plus its workers. Shared pages count once per process, as VmRSS
# does.
rss_mib() {
    local pids=("$1") all=() kb=0 p v
    while [ ${#pids[@]} -gt 0 ]; do
        p=${pids[0]}
        pids=("${pids[@]:1}")
        all+=("$p")
        # shellcheck disable=SC2207
        pids+=($(pgrep -P "$p" || true))
    done
    for p in "${all[@]}"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        kb=$((kb + ${v:-0}))
    done
    awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }'
}

# ---- load ----

# wrk settings, the same for every server and scenario.
wrk_threads=${WRK_THREADS:-2}
wrk_conns=${WRK_CONNECTIONS:-4}
wrk_duration=${WRK_DURATION:-10}
wrk_warmup=${WRK_WARMUP:-2}

# common_option ARGS...: reads the options both scripts take (the wrk settings and
# --skip-setup) at the front of ARGS; sets COMMON_USED to the words it took (0: the
# option is not one of them).
common_option() {
    COMMON_USED=2
    case $1 in
    --duration) wrk_duration=$2 ;;
    --warmup) wrk_warmup=$2 ;;
    --connections) wrk_conns=$2 ;;
    --threads) wrk_threads=$2 ;;
    --skip-setup) skip_setup=1 COMMON_USED=1 ;;
    *) COMMON_USED=0 ;;
    esac
}

# run_wrk OUTFILE URL [METHOD BODY HEADERS [CONNECTIONS [DURATION]]]: a warm-up run
# (discarded), then the measured one. Sets R_RPS R_P50 R_P99 R_ERRORS R_REQUESTS from
# request.lua's RESULT line; R_ERRORS counts non-2xx answers and socket errors.
run_wrk() {
    local out=$1 url=$2 method=${3:-GET} body=${4:-} headers=${5:-}
    local conns=${6:-$wrk_conns} dur=${7:-$wrk_duration} threads=$wrk_threads
    [ "$conns" -lt "$threads" ] && threads=$conns
    if [ "$wrk_warmup" -gt 0 ]; then
        WRK_METHOD=$method WRK_BODY=$body WRK_HEADERS=$headers \
            wrk -t"$threads" -c"$conns" -d"${wrk_warmup}s" --timeout 30s -s "$lua" "$url" >"$out.warmup" 2>&1 || true
    fi
    WRK_METHOD=$method WRK_BODY=$body WRK_HEADERS=$headers \
        wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 30s --latency -s "$lua" "$url" >"$out" 2>&1 ||
        die "wrk failed on $url: $(tail -3 "$out")"
    parse_wrk "$out"
}

# settle BASE: waits until the server has worked off what the last scenario left queued
# (uWSGI still runs requests whose connections wrk closed at the end), so that it does
# not slow down the next scenario: a GET /v3 answers only after them.
settle() {
    curl -s -m 600 -o /dev/null "$1/v3" || true
}

parse_wrk() {
    local line
    line=$(grep '^RESULT ' "$1" | tail -1) || die "no RESULT line in $1"
    R_RPS=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
    R_P50=$(sed -E 's/.* p50_ms=([0-9.]+).*/\1/' <<<"$line")
    R_P99=$(sed -E 's/.* p99_ms=([0-9.]+).*/\1/' <<<"$line")
    R_REQUESTS=$(sed -E 's/.* requests=([0-9]+).*/\1/' <<<"$line")
    local non2xx sock
    non2xx=$(sed -E 's/.* non2xx=([0-9]+).*/\1/' <<<"$line")
    sock=$(sed -E 's/.* socket_errors=([0-9]+).*/\1/' <<<"$line")
    R_ERRORS=$((non2xx + sock))
    if [ "$R_ERRORS" -gt 0 ]; then
        log "  $(basename "$1"): $R_ERRORS errors: $(grep '^FIRST_ERROR' "$1" | head -1)"
    fi
}

# Request bodies and headers of the scenarios (Keystone's API, identical for both sides).
body_password() { # USER PASSWORD PROJECT_ID
    printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"id":"%s"}}}}' "$1" "$2" "$3"
}
body_rescope() { # TOKEN PROJECT_ID
    printf '{"auth":{"identity":{"methods":["token"],"token":{"id":"%s"}},"scope":{"project":{"id":"%s"}}}}' "$1" "$2"
}
hdr_auth() { printf 'X-Auth-Token: %s' "$1"; }
hdr_validate() { printf 'X-Auth-Token: %s\nX-Subject-Token: %s' "$1" "$2"; }

# ---- numbers ----

# ratio A B: A/B with one decimal ("-" when either is missing or B is 0).
ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else if (a / b < 1) printf "%.2g", a / b; else printf "%.1f", a / b }'
}
# ge A B: exit 0 when A >= B.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
fmt_rps() { awk -v a="${1:-}" 'BEGIN { if (a == "" || a == "-") print "-"; else if (a < 10) printf "%.1f", a; else printf "%.0f", a }'; }

# rps_cell RPS ERRORS REQUESTS: a table cell; a run with errors is marked invalid, and one
# in which no request completed says so (wrk then reports 0 req/s and no latency).
rps_cell() {
    if [ -z "${1:-}" ]; then
        echo "-"
    elif [ "${2:-0}" -gt 0 ]; then
        echo "$(fmt_rps "$1") (INVALID: $2 errors)"
    elif [ "${3:-1}" -eq 0 ]; then
        echo "0 (none completed)"
    else
        fmt_rps "$1"
    fi
}
# p99_cell P99 REQUESTS
p99_cell() {
    if [ -z "${1:-}" ]; then echo "-"; elif [ "${2:-1}" -eq 0 ]; then echo "n/a"; else echo "$1"; fi
}

machine_facts() {
    local cpu mem
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
    echo "$(nproc) cores ($cpu), $mem, $(uname -sr)"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- Limen ----

# limen_prepare DIR PORT ADMIN_PASSWORD [DATABASE_URL]: writes DIR/limen.toml (from
# $LIMEN_BENCH_TOML) and bootstraps (idempotent) the database, SQLite in DIR by default.
limen_prepare() {
    local dir=$1 port=$2 pw=$3 db=${4:-sqlite://$1/limen.db}
    mkdir -p "$dir"
    printf '%s\n' "${LIMEN_BENCH_TOML:-}" >"$dir/limen.toml"
    "$limen_bin" --config "$dir/limen.toml" --data-dir "$dir" --database-url "$db" \
        bootstrap --admin-password "$pw" --public-url "http://127.0.0.1:$port/v3" \
        >"$dir/bootstrap.log" 2>&1 || die "limen bootstrap failed: $(tail -5 "$dir/bootstrap.log")"
}

# limen_start DIR PORT [DATABASE_URL]: serves in the background; sets LIMEN_PID.
limen_start() {
    local dir=$1 port=$2 db=${3:-sqlite://$1/limen.db}
    start_bg "$dir/serve.log" "$limen_bin" --config "$dir/limen.toml" \
        --data-dir "$dir" --database-url "$db" serve --listen "127.0.0.1:$port"
    LIMEN_PID=$BG_PID
    wait_http "http://127.0.0.1:$port/v3" 60 "$LIMEN_PID" ||
        die "limen serve did not come up: $(tail -5 "$dir/serve.log")"
}

# ---- Keystone ----
# The sourcing script sets ks_dir, ks_port, admin_pw and bcrypt_rounds.

# keystone_conf CACHE(true|false): writes $ks_dir/keystone.conf.
keystone_conf() {
    cat >"$ks_dir/keystone.conf" <<EOF
[DEFAULT]
# INFO (debug off) to a file: Keystone's normal production logging.
debug = false
log_file = $ks_dir/keystone.log

[database]
connection = sqlite:///$ks_dir/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = $ks_dir/fernet-keys

[credential]
key_repository = $ks_dir/credential-keys

[identity]
password_hash_rounds = $bcrypt_rounds

[cache]
enabled = $1
backend = dogpile.cache.memory
EOF
}

# keystone_start: serves $ks_dir's Keystone under uWSGI on $ks_port; sets KS_PID.
keystone_start() {
    # As Keystone's and devstack's uWSGI settings: master, 2 worker processes of one
    # thread, apps loaded after the fork; uWSGI logs one line per request to its log (as
    # Limen logs one per request).
    start_bg "$ks_dir/uwsgi.log" env OS_KEYSTONE_CONFIG_DIR="$ks_dir" \
        "$venv/bin/uwsgi" --home "$venv" --http11-socket "127.0.0.1:$ks_port" \
        --master --processes 2 --threads 1 --lazy-apps --enable-threads --need-app \
        --die-on-term --buffer-size 65535 --module keystone.wsgi.api:application
    KS_PID=$BG_PID
    wait_http "http://127.0.0.1:$ks_port/v3" 120 "$KS_PID" ||
        die "keystone did not come up: $(tail -5 "$ks_dir/uwsgi.log")"
}

# keystone_setup: a fresh Keystone in $ks_dir for $ks_port (database, Fernet and
# credential keys, the admin with $admin_pw), configured with its cache on.
keystone_setup() {
    mkdir -p "$ks_dir"
    keystone_conf true
    km() { "$venv/bin/keystone-manage" --config-file "$ks_dir/keystone.conf" "$@" >>"$ks_dir/manage.log" 2>&1; }
    log "keystone: db_sync, fernet_setup, credential_setup, bootstrap"
    km db_sync
    km fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    km credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    km bootstrap --bootstrap-password "$admin_pw" --bootstrap-region-id RegionOne \
        --bootstrap-public-url "http://127.0.0.1:$ks_port/v3"
}
