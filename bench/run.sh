#!/usr/bin/env bash
# Limen against Python Keystone 30 (uWSGI, 2 workers, SQLite, with and without its
# in-memory cache) on this machine, in one run, with wrk. Prints a Markdown table of
# req/s, p99 and Limen/Keystone ratios, RSS, and the targets of issue 4, and writes it to
# bench/results/<UTC timestamp>.md. See bench/README.md.
#
#   bench/run.sh                      everything (installs wrk, Keystone, builds Limen)
#   bench/run.sh --duration 5         seconds per scenario (default 10, plus 2 s warm-up)
#   bench/run.sh --limen-only         no Keystone
#   bench/run.sh --skip-setup         no apt/pip/cargo when the tools are already there
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

limen_only=0
skip_setup=0
users=1000
assigned=100
while [ $# -gt 0 ]; do
    common_option "$@"
    if [ "$COMMON_USED" -gt 0 ]; then shift "$COMMON_USED"; continue; fi
    case $1 in
    --users) users=$2; shift ;;
    --limen-only) limen_only=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done

# Keystone's default bcrypt cost, on both sides: password issue compares like with like.
bcrypt_rounds=12
admin_pw=bench-admin-secret
work=$bench_dir/.work/run
results_dir=$bench_dir/results

trap stop_all EXIT
trap 'exit 130' INT TERM

prepare_tools

rm -rf "$work"
mkdir -p "$work/wrk" "$results_dir"
started_at=$(date -u +%Y%m%dT%H%M%SZ)
load_start=$(loadavg)

declare -A RPS P99 ERR REQ RSS_IDLE RSS_LOADED
scenarios=(validate rescope password version list_users role_assignments)
declare -A TITLE=(
    [validate]="token validation (GET /v3/auth/tokens)"
    [rescope]="rescoping issue (token → project)"
    [password]="password issue (bcrypt 12)"
    [version]="GET /v3"
    [list_users]="list users (N_USERS)"
    [role_assignments]="role assignments of a project (N_ASSIGN)"
    [flood_validate]="validation during a password-login flood"
    [flood_password]="password logins during that flood"
)

# run_scenarios TARGET BASE: every scenario against one server, with the ids and tokens
# that populate.py wrote to $work/TARGET.vars.
run_scenarios() {
    local target=$1 base=$2 s url method body headers
    # shellcheck disable=SC1090
    source "$work/$target.vars"
    for s in "${scenarios[@]}"; do
        method=GET body='' headers=$(hdr_auth "$ADMIN_TOKEN")
        case $s in
        validate)
            url=$base/v3/auth/tokens
            headers=$(hdr_validate "$ADMIN_TOKEN" "$MEMBER_PROJECT_TOKEN") ;;
        rescope)
            url=$base/v3/auth/tokens method=POST headers=''
            body=$(body_rescope "$MEMBER_UNSCOPED_TOKEN" "$PROJECT_ID") ;;
        password)
            url=$base/v3/auth/tokens method=POST headers=''
            body=$(body_password "$BENCH_USER" "$BENCH_PASSWORD" "$PROJECT_ID") ;;
        version) url=$base/v3 headers='' ;;
        list_users) url=$base/v3/users ;;
        role_assignments) url="$base/v3/role_assignments?scope.project.id=$PROJECT_ID" ;;
        esac
        log "$target: $s"
        run_wrk "$work/wrk/$target.$s" "$url" "$method" "$body" "$headers"
        RPS[$target.$s]=$R_RPS P99[$target.$s]=$R_P99 ERR[$target.$s]=$R_ERRORS REQ[$target.$s]=$R_REQUESTS
        settle "$base"
    done
}

# flood TARGET BASE: password logins on 4 connections (bcrypt saturates the cores) while
# 2 other connections validate tokens; the validations' p99 is the number that matters.
flood() {
    local target=$1 base=$2 fpid
    # shellcheck disable=SC1090
    source "$work/$target.vars"
    log "$target: validation during a password flood"
    WRK_METHOD=POST WRK_BODY=$(body_password "$BENCH_USER" "$BENCH_PASSWORD" "$PROJECT_ID") \
        wrk -t1 -c4 -d"$((wrk_duration + 2))s" --timeout 30s -s "$lua" "$base/v3/auth/tokens" \
        >"$work/wrk/$target.flood_password" 2>&1 &
    fpid=$!
    sleep 1
    local saved_warmup=$wrk_warmup
    wrk_warmup=0
    run_wrk "$work/wrk/$target.flood_validate" "$base/v3/auth/tokens" GET '' \
        "$(hdr_validate "$ADMIN_TOKEN" "$MEMBER_PROJECT_TOKEN")" 2
    wrk_warmup=$saved_warmup
    RPS[$target.flood_validate]=$R_RPS P99[$target.flood_validate]=$R_P99 ERR[$target.flood_validate]=$R_ERRORS REQ[$target.flood_validate]=$R_REQUESTS
    wait "$fpid" || die "wrk (password flood) failed"
    parse_wrk "$work/wrk/$target.flood_password"
    RPS[$target.flood_password]=$R_RPS P99[$target.flood_password]=$R_P99 ERR[$target.flood_password]=$R_ERRORS REQ[$target.flood_password]=$R_REQUESTS
    settle "$base"
}

# ---- Limen ----
limen_port=$(free_port)
LIMEN_BENCH_TOML=$(printf '[identity]\npassword_hash_rounds = %s' "$bcrypt_rounds")
log "limen: bootstrap and serve on 127.0.0.1:$limen_port"
limen_prepare "$work/limen" "$limen_port" "$admin_pw"
limen_start "$work/limen" "$limen_port"
sleep 1
RSS_IDLE[limen]=$(rss_mib "$LIMEN_PID")
log "limen: populate"
python3 "$bench_dir/populate.py" --base "http://127.0.0.1:$limen_port" --admin-password "$admin_pw" \
    --users "$users" --assigned "$assigned" >"$work/limen.vars"
run_scenarios limen "http://127.0.0.1:$limen_port"
flood limen "http://127.0.0.1:$limen_port"
RSS_LOADED[limen]=$(rss_mib "$LIMEN_PID")
stop_pid "$LIMEN_PID"

# ---- Keystone ----
# One database and key repository; two uWSGI runs over it, one per cache setting.
ks_dir=$work/keystone
ks_port=$(free_port)
if [ "$limen_only" = 0 ]; then
    keystone_setup
    for mode in cache nocache; do
        t=keystone_$mode
        if [ $mode = cache ]; then keystone_conf true; else keystone_conf false; fi
        log "$t: uWSGI on 127.0.0.1:$ks_port"
        keystone_start
        sleep 1
        RSS_IDLE[$t]=$(rss_mib "$KS_PID")
        if [ $mode = cache ]; then
            log "keystone: populate"
            python3 "$bench_dir/populate.py" --base "http://127.0.0.1:$ks_port" --admin-password "$admin_pw" \
                --users "$users" --assigned "$assigned" >"$work/keystone_cache.vars"
        else
            # Same database and Fernet keys: the tokens made for the cached run validate.
            cp "$work/keystone_cache.vars" "$work/$t.vars"
        fi
        run_scenarios "$t" "http://127.0.0.1:$ks_port"
        flood "$t" "http://127.0.0.1:$ks_port"
        RSS_LOADED[$t]=$(rss_mib "$KS_PID")
        stop_pid "$KS_PID"
    done
fi

# ---- report ----
source "$work/limen.vars"
TITLE[list_users]="list users ($N_USERS)"
TITLE[role_assignments]="role assignments of a project ($N_PROJECT_ASSIGNMENTS)"

cell() { # TARGET SCENARIO -> req/s, or why there is none
    rps_cell "${RPS[$1.$2]:-}" "${ERR[$1.$2]:-0}" "${REQ[$1.$2]:-1}"
}
p99s() {
    local t out=""
    for t in limen keystone_cache keystone_nocache; do
        out+="$(p99_cell "${P99[$t.$1]:-}" "${REQ[$t.$1]:-1}") / "
    done
    echo "${out% / }"
}
valid() { [ -n "${RPS[$1]:-}" ] && [ "${ERR[$1]}" -eq 0 ] && [ "${REQ[$1]}" -gt 0 ]; }
verdict() { if "$@"; then echo "met"; else echo "**not met**"; fi; }

out=$results_dir/$started_at.md
{
    echo "# Limen vs Keystone 30: $started_at"
    echo
    echo "- machine: $(machine_facts); load average at start $load_start, at end $(loadavg)"
    echo "- limen: $("$limen_bin" --version) (release), commit $(git -C "$repo_dir" rev-parse --short HEAD)$(git -C "$repo_dir" diff --quiet HEAD -- crates 2>/dev/null || echo '+changes'), SQLite"
    if [ "$limen_only" = 0 ]; then
        echo "- keystone: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("keystone"))') under uWSGI $("$venv/bin/uwsgi" --version) (--http11-socket, 2 processes × 1 thread), SQLite, Fernet; cache = dogpile.cache.memory"
    fi
    echo "- wrk: $wrk_threads threads, $wrk_conns connections, ${wrk_duration} s per scenario after ${wrk_warmup} s warm-up; bcrypt cost $bcrypt_rounds on both sides"
    echo
    echo "| scenario | Limen req/s | Keystone req/s (cache) | Keystone req/s (no cache) | Limen/Keystone (cache) | Limen/Keystone (no cache) | p99 ms (Limen / KS cache / KS no cache) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
    for s in "${scenarios[@]}" flood_validate flood_password; do
        echo "| ${TITLE[$s]} | $(cell limen "$s") | $(cell keystone_cache "$s") | $(cell keystone_nocache "$s") | $(ratio "${RPS[limen.$s]:-}" "${RPS[keystone_cache.$s]:-}")× | $(ratio "${RPS[limen.$s]:-}" "${RPS[keystone_nocache.$s]:-}")× | $(p99s "$s") |"
    done
    echo
    echo "| RSS (VmRSS, MiB; uWSGI: master + workers) | Limen | Keystone (cache) | Keystone (no cache) |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| idle (after start and one GET /v3) | ${RSS_IDLE[limen]} | ${RSS_IDLE[keystone_cache]:--} | ${RSS_IDLE[keystone_nocache]:--} |"
    echo "| after the load | ${RSS_LOADED[limen]} | ${RSS_LOADED[keystone_cache]:--} | ${RSS_LOADED[keystone_nocache]:--} |"
    echo
    echo "Targets (issue 4):"
    echo
    v=${RPS[limen.validate]}
    val_ks=$(ratio "$v" "${RPS[keystone_cache.validate]:-}")
    # Against the faster of the two Keystone runs, so the ratio is the conservative one.
    ks_rescope=$(awk -v a="${RPS[keystone_cache.rescope]:-0}" -v b="${RPS[keystone_nocache.rescope]:-0}" 'BEGIN { print (a > b ? a : b) }')
    resc_ks=$(ratio "${RPS[limen.rescope]}" "$ks_rescope")
    half=$(awk -v b="${RPS[limen.version]}" 'BEGIN { print b / 2 }')
    t_validate_ks() { valid limen.validate && valid keystone_cache.validate && ge "$val_ks" 50; }
    t_rescope_ks() { valid limen.rescope && valid keystone_cache.rescope && valid keystone_nocache.rescope && ge "$resc_ks" 100; }
    t_validate_v3() { valid limen.validate && valid limen.version && ge "$v" "$half"; }
    t_flood() { valid limen.flood_validate && valid limen.flood_password && ge 5 "${P99[limen.flood_validate]}"; }
    if [ "$limen_only" = 0 ]; then
        echo "- validation ≥ 50× Keystone with cache: ${val_ks}× — $(verdict t_validate_ks)"
        echo "- rescoping ≥ 100× Keystone (the faster of its two runs): ${resc_ks}× — $(verdict t_rescope_ks)"
    fi
    echo "- validation ≥ 50% of Limen's own GET /v3 rate: $(awk -v a="$v" -v b="${RPS[limen.version]}" 'BEGIN { printf "%.0f%%", 100 * a / b }') — $(verdict t_validate_v3)"
    echo "- p99 of validations during a password-login flood < 5 ms: ${P99[limen.flood_validate]} ms — $(verdict t_flood)"
    echo "- idle RSS < 30 MB: ${RSS_IDLE[limen]} MiB — $(verdict ge 30 "${RSS_IDLE[limen]}")"
    echo
    echo "Data: the same on both sides, made through the API by bench/populate.py: $N_USERS users in the"
    echo "Default domain (the filler users have no password), a project with $N_PROJECT_ASSIGNMENTS member"
    echo "assignments. Tokens: project-scoped admin token validates a project-scoped member token;"
    echo "rescoping turns the member's unscoped token into a project-scoped one. The flood: 4"
    echo "connections of password logins while 2 others validate, on each server. \"none"
    echo "completed\": not one request finished within the run (no latency to report)."
} >"$out.tmp"
publish "$out"
