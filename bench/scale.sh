#!/usr/bin/env bash
# Limen on a small and a large dataset, same machine, same run: password auth, token
# validation and paginated lists, with wrk. The data comes from bench/datagen (bulk
# inserts); the default sizes are 1,000 users / 100 projects / 10,000 role assignments
# against 100,000 / 10,000 / 1,000,000, each user holding 10 project roles and each project
# 100 members in both, so only the size differs. Prints a Markdown table (large/small
# ratios) and writes it to bench/results/scale-<UTC timestamp>.md. See bench/README.md.
#
#   bench/scale.sh                          both datasets on SQLite
#   bench/scale.sh --duration 5             seconds per scenario (default 10, + 2 s warm-up)
#   bench/scale.sh --large 20000,2000,200000   other large sizes (users,projects,assignments)
#   bench/scale.sh --postgres               on PostgreSQL: a throwaway PostgreSQL 15 from
#                                           scripts/postgres.sh (Debian's; fsync off)
#   bench/scale.sh --postgres-url URL       on that PostgreSQL server: a new database per
#                                           dataset is created there (limen_scale_*)
#   bench/scale.sh --skip-setup             no apt/cargo when the tools are already there
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

small=1000,100,10000
large=100000,10000,1000000
skip_setup=0
postgres=
while [ $# -gt 0 ]; do
    common_option "$@"
    if [ "$COMMON_USED" -gt 0 ]; then shift "$COMMON_USED"; continue; fi
    case $1 in
    --small) small=$2; shift ;;
    --large) large=$2; shift ;;
    --postgres) postgres=throwaway ;;
    --postgres-url) postgres=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done

# bcrypt cost 4 for the shared password: auth is then bound by the lookups that grow with
# the data, not by a constant 250 ms of hashing that would hide them (run.sh measures
# cost 12).
rounds=4
admin_pw=scale-admin-secret
work=$bench_dir/.work/scale
results_dir=$bench_dir/results
datagen_bin=${CARGO_TARGET_DIR:-$repo_dir/target}/release/limen-datagen

trap stop_all EXIT
trap 'exit 130' INT TERM

ensure_tools
if [ "$skip_setup" = 0 ] || [ ! -x "$limen_bin" ] || [ ! -x "$datagen_bin" ]; then
    ensure_limen
    log "building limen-datagen (release)"
    (cd "$repo_dir" && cargo build --release --quiet -p limen-datagen)
fi

rm -rf "$work"
mkdir -p "$work/wrk" "$results_dir"
if [ "$postgres" = throwaway ]; then
    # PostgreSQL refuses directories its user cannot reach: /tmp, not the work tree.
    pg_dir=$(mktemp -d /tmp/limen-bench-pg.XXXXXX)
    trap '"$repo_dir/scripts/postgres.sh" stop "$pg_dir" >/dev/null 2>&1 || true; stop_all' EXIT
    log "starting a throwaway PostgreSQL in $pg_dir"
    postgres=$("$repo_dir/scripts/postgres.sh" start "$pg_dir")
fi
started_at=$(date -u +%Y%m%dT%H%M%SZ)
load_start=$(loadavg)

declare -A RPS P99 ERR REQ ONE INFO
scenarios=(password validate users_first users_deep projects_first ra_user ra_project)
declare -A TITLE=(
    [password]="password auth, project-scoped (bcrypt 4)"
    [validate]="token validation"
    [users_first]="GET /v3/users?limit=100"
    [users_deep]="GET /v3/users?limit=100&marker=(id at 90%)"
    [projects_first]="GET /v3/projects?limit=100"
    [ra_user]="GET /v3/role_assignments?user.id=U (10)"
    [ra_project]="GET /v3/role_assignments?scope.project.id=P (100)"
)

issue_token() { # BASE BODY -> the X-Subject-Token
    curl -s -D - -o /dev/null -H 'Content-Type: application/json' -d "$2" "$1/v3/auth/tokens" |
        awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }'
}

# one_request URL METHOD BODY HEADERS -> milliseconds (or "timeout" after 300 s)
one_request() {
    local args=(-s -o /dev/null -m 300 -w '%{http_code} %{time_total}' -X "$2") line
    [ -n "$3" ] && args+=(-H 'Content-Type: application/json' -d "$3")
    while IFS= read -r line; do
        [ -n "$line" ] && args+=(-H "$line")
    done <<<"$4"
    read -r code secs < <(curl "${args[@]}" "$1" || true)
    case $code in
    2??) awk -v s="$secs" 'BEGIN { printf "%.1f", s * 1000 }' ;;
    000) echo "timeout" ;;
    *) echo "HTTP $code" ;;
    esac
}

# dataset NAME USERS,PROJECTS,ASSIGNMENTS
dataset() {
    local name=$1 users projects assignments dir db port base t0 t1 s url method body headers
    IFS=, read -r users projects assignments <<<"$2"
    dir=$work/$name
    mkdir -p "$dir"
    if [ -n "$postgres" ]; then
        # A new database per dataset and run.
        db=$("$repo_dir/scripts/postgres.sh" createdb "$postgres" "limen_scale_${name}_$(date +%s)")
    else
        db=sqlite://$dir/limen.db
    fi
    port=$(free_port)
    base=http://127.0.0.1:$port
    LIMEN_BENCH_TOML=$(printf '[identity]\npassword_hash_rounds = %s' "$rounds")
    log "$name: bootstrap, then $users users, $projects projects, $assignments role assignments"
    limen_prepare "$dir" "$port" "$admin_pw" "$db"
    t0=$(date +%s.%N)
    "$datagen_bin" --database-url "$db" --users "$users" --projects "$projects" \
        --assignments "$assignments" --rounds "$rounds" >"$dir/data.vars" 2>"$dir/datagen.log" ||
        die "datagen failed: $(tail -5 "$dir/datagen.log")"
    t1=$(date +%s.%N)
    INFO[$name.load_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    # shellcheck disable=SC1090
    source "$dir/data.vars"
    limen_start "$dir" "$port" "$db"
    sleep 1
    INFO[$name.rss_idle]=$(rss_mib "$LIMEN_PID")
    if [ -z "$postgres" ]; then
        INFO[$name.db_mib]=$(du -cm "$dir"/limen.db* | tail -1 | cut -f1)
    fi

    local admin user_token
    admin=$(issue_token "$base" '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"'"$admin_pw"'"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}')
    user_token=$(issue_token "$base" "$(body_password "$SCALE_USER" "$SCALE_PASSWORD" "$SCALE_PROJECT_ID")")
    if [ -z "$admin" ] || [ -z "$user_token" ]; then die "$name: could not log in"; fi

    for s in "${scenarios[@]}"; do
        method=GET body='' headers=$(hdr_auth "$admin")
        case $s in
        password)
            url=$base/v3/auth/tokens method=POST headers=''
            body=$(body_password "$SCALE_USER" "$SCALE_PASSWORD" "$SCALE_PROJECT_ID") ;;
        validate)
            url=$base/v3/auth/tokens headers=$(hdr_validate "$admin" "$user_token") ;;
        users_first) url="$base/v3/users?limit=100" ;;
        users_deep) url="$base/v3/users?limit=100&marker=$SCALE_DEEP_MARKER" ;;
        projects_first) url="$base/v3/projects?limit=100" ;;
        ra_user) url="$base/v3/role_assignments?user.id=$SCALE_USER_ID" ;;
        ra_project) url="$base/v3/role_assignments?scope.project.id=$SCALE_PROJECT_ID" ;;
        esac
        log "$name: $s"
        # One request alone first: its latency is the answer when a request takes longer
        # than the whole wrk run.
        ONE[$name.$s]=$(one_request "$url" "$method" "$body" "$headers")
        run_wrk "$work/wrk/$name.$s" "$url" "$method" "$body" "$headers"
        RPS[$name.$s]=$R_RPS P99[$name.$s]=$R_P99 ERR[$name.$s]=$R_ERRORS REQ[$name.$s]=$R_REQUESTS
        settle "$base"
    done
    INFO[$name.rss_loaded]=$(rss_mib "$LIMEN_PID")
    INFO[$name.sizes]="$users users, $projects projects, $assignments assignments"
    stop_pid "$LIMEN_PID"
}

dataset small "$small"
dataset large "$large"

cell() { rps_cell "${RPS[$1.$2]}" "${ERR[$1.$2]}" "${REQ[$1.$2]}"; }
flat() { # large/small throughput ratio -> verdict (within 20% counts as flat)
    if [ "${ERR[small.$1]}" -gt 0 ] || [ "${ERR[large.$1]}" -gt 0 ] || [ "${REQ[small.$1]}" -eq 0 ]; then
        echo "invalid"
    elif ge "$(ratio "${RPS[large.$1]}" "${RPS[small.$1]}")" 0.8; then
        echo "flat"
    else
        echo "**not flat**"
    fi
}

out=$results_dir/scale-$started_at.md
backend=SQLite
[ -n "$postgres" ] && backend=PostgreSQL
{
    echo "# Limen at scale ($backend): $started_at"
    echo
    echo "- machine: $(machine_facts); load average at start $load_start, at end $(loadavg)"
    echo "- limen: $("$limen_bin" --version) (release), commit $(git -C "$repo_dir" rev-parse --short HEAD)$(git -C "$repo_dir" diff --quiet HEAD -- crates 2>/dev/null || echo '+changes'), $backend"
    echo "- wrk: $wrk_threads threads, $wrk_conns connections, ${wrk_duration} s per scenario after ${wrk_warmup} s warm-up"
    echo "- small: ${INFO[small.sizes]}; large: ${INFO[large.sizes]}"
    echo
    echo "| scenario | small req/s | large req/s | large/small | p99 ms small / large | one request alone, ms small / large | |"
    echo "| --- | ---: | ---: | ---: | --- | --- | --- |"
    for s in "${scenarios[@]}"; do
        echo "| ${TITLE[$s]} | $(cell small "$s") | $(cell large "$s") | $(ratio "${RPS[large.$s]}" "${RPS[small.$s]}") | $(p99_cell "${P99[small.$s]}" "${REQ[small.$s]}") / $(p99_cell "${P99[large.$s]}" "${REQ[large.$s]}") | ${ONE[small.$s]} / ${ONE[large.$s]} | $(flat "$s") |"
    done
    echo
    echo "| | small | large |"
    echo "| --- | ---: | ---: |"
    echo "| data generation (s) | ${INFO[small.load_s]} | ${INFO[large.load_s]} |"
    if [ -z "$postgres" ]; then
        echo "| database size (MiB) | ${INFO[small.db_mib]} | ${INFO[large.db_mib]} |"
    fi
    echo "| RSS idle / after the load (MiB) | ${INFO[small.rss_idle]} / ${INFO[small.rss_loaded]} | ${INFO[large.rss_idle]} / ${INFO[large.rss_loaded]} |"
    echo
    echo "\"flat\": the large dataset keeps at least 80% of the small one's throughput."
} >"$out.tmp"
publish "$out"
