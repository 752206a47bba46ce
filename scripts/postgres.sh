#!/usr/bin/env bash
# A throwaway PostgreSQL 15 (Debian's packages) for Limen's tests.
#
#   scripts/postgres.sh start DIR          -> prints postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres.sh createdb URL NAME  -> prints the URL of database NAME on that server
#   scripts/postgres.sh stop DIR           -> stops the server and removes DIR
#
# The server trusts every local connection and runs without fsync: for tests only.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
MARKER=.limen-test-postgres # tells `stop` that DIR is ours to delete

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '4,6s/^#   //p' "$0" >&2
    exit 2
}

# PostgreSQL refuses to run as root, so root runs it as the package's `postgres` user.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_installed() {
    [ -x "$PGBIN/initdb" ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "$PGBIN/initdb is missing and installing postgresql-15 needs root"
        sudo=(sudo)
    fi
    echo "postgres.sh: installing postgresql-15" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Try without `apt-get update` first: it is slow and the lists are often fresh enough.
    if ! "${sudo[@]}" apt-get install -y -q postgresql-15 >&2; then
        "${sudo[@]}" apt-get update -q >&2
        "${sudo[@]}" apt-get install -y -q postgresql-15 >&2 ||
            "${sudo[@]}" apt-get install -y -q postgresql >&2 ||
            die "cannot install postgresql-15 with apt-get"
    fi
    [ -x "$PGBIN/initdb" ] || die "postgresql installed but $PGBIN/initdb is still missing"
}

# A TCP port nobody listens on now (the kernel's choice, or /proc when Python is absent).
free_port() {
    if command -v python3 >/dev/null &&
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null; then
        return 0
    fi
    local port hex
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 30000))
        hex=$(printf ':%04X ' "$port")
        if ! grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "cannot find a free TCP port"
}

# Whether the postmaster recorded in DATA/postmaster.pid is alive. A killed one that
# nobody has reaped yet (a container's PID 1 may be slow to) still has a /proc entry.
pg_running() {
    local pid
    pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] || return 1
    [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

url_for() {
    echo "postgres://postgres@127.0.0.1:$1/postgres"
}

start() {
    [ $# -eq 1 ] || usage
    mkdir -p "$1"
    local dir
    dir=$(cd "$1" && pwd)
    local data=$dir/data

    # Already running from an earlier `start DIR`: hand back the same URL.
    if [ -f "$dir/port" ] && pg_running "$data" &&
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres; then
        url_for "$(cat "$dir/port")"
        return 0
    fi

    ensure_installed
    local user
    user=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "the postgres system user is missing (the postgresql-15 package creates it)"
        user=postgres
    fi
    touch "$dir/$MARKER"
    chown "$user:" "$dir"
    as_pg test -w "$dir" ||
        die "user $user cannot write $dir (is a parent directory private? try a DIR under /tmp)"
    mkdir -p "$dir/sock"
    chown "$user:" "$dir/sock"

    if [ ! -f "$data/PG_VERSION" ]; then
        rm -rf "$data"
        # cd: initdb complains when it cannot read the caller's working directory.
        (cd "$dir" && as_pg "$PGBIN/initdb" -D "$data" -A trust --username=postgres \
            -E UTF8 --locale=C --no-sync --no-instructions) >"$dir/initdb.log" 2>&1 ||
            die "initdb failed; see $dir/initdb.log"
        # Durability is pointless for a throwaway server; speed is not.
        cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    fi

    # A killed postmaster's pid file blocks a new start until its zombie is reaped.
    local old_pid i
    old_pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
    if [[ $old_pid =~ ^[0-9]+$ ]] && ! pg_running "$data"; then
        for i in $(seq 100); do
            [ -e "/proc/$old_pid" ] || break
            sleep 0.1
        done
    fi

    # Another process may take the port between choosing and binding it: retry.
    local port attempt
    for attempt in 1 2 3; do
        port=$(free_port)
        if (cd "$dir" && as_pg "$PGBIN/pg_ctl" start -D "$data" -l "$dir/log" -w -t 60 \
            -o "-p $port") >/dev/null 2>&1; then
            break
        fi
        [ "$attempt" -lt 3 ] || die "pg_ctl start failed; see $dir/log"
        sleep 0.5
    done
    echo "$port" >"$dir/port"

    for i in $(seq 100); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && break
        [ "$i" -lt 100 ] || die "server on port $port not ready after 10 s; see $dir/log"
        sleep 0.1
    done
    url_for "$port"
}

psql_bin() {
    if [ -x "$PGBIN/psql" ]; then echo "$PGBIN/psql"; else echo /usr/bin/psql; fi
}

createdb() {
    [ $# -eq 2 ] || usage
    local url=$1 name=$2
    [[ $url =~ ^postgres(ql)?:// ]] || die "not a postgres:// URL: $url"
    # Names are spliced into SQL and URLs, so keep them to plain identifiers.
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "database name must match [A-Za-z_][A-Za-z0-9_]*: $name"
    local psql
    psql=$(psql_bin)
    local exists
    exists=$("$psql" "$url" -X -q -t -A -v ON_ERROR_STOP=1 \
        -c "SELECT 1 FROM pg_database WHERE datname = '$name'") ||
        die "cannot query $url"
    if [ -z "$exists" ]; then
        "$psql" "$url" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >&2 ||
            die "cannot create database $name"
    fi
    # Same server, user and query string; only the database path changes.
    local base=${url%%\?*} query=""
    [ "$base" = "$url" ] || query="?${url#*\?}"
    local authority=${base#*://}
    authority=${authority%%/*}
    echo "${url%%://*}://$authority/$name$query"
}

stop() {
    [ $# -eq 1 ] || usage
    [ -e "$1" ] || return 0
    local dir
    dir=$(cd "$1" && pwd)
    [ -f "$dir/$MARKER" ] || die "$dir was not made by 'postgres.sh start'; not removing it"
    # If pg_ctl fails, the server may have died meanwhile; only a live one is an error.
    if pg_running "$dir/data" &&
        ! (cd "$dir" && as_pg "$PGBIN/pg_ctl" stop -D "$dir/data" -m fast -w -t 60) >/dev/null 2>&1 &&
        pg_running "$dir/data"; then
        die "pg_ctl stop failed; see $dir/log"
    fi
    rm -rf "$dir"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
start) start "$@" ;;
createdb) createdb "$@" ;;
stop) stop "$@" ;;
*) usage ;;
esac
