#!/usr/bin/env bash
# A throwaway PostgreSQL server on localhost for the tests that share a tuning study.
#
#   tests/postgres_server.sh start DIR   # prints the database URL on stdout
#   tests/postgres_server.sh stop DIR
#
# Uses Debian's postgresql packages (installed with apt-get if missing and we are root). The
# cluster lives in DIR (trust authentication, listening on 127.0.0.1 only, a free port) and
# is deleted by stop. As root, the server runs as the postgres user, since it refuses root.
set -euo pipefail

cmd=${1:?start or stop}
dir=${2:?a folder for the cluster}

find_bin() {
    local found
    found=$(command -v pg_ctl 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$found" ] && dirname "$(readlink -f "$found")"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    bin=$(find_bin || true)
    if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing postgresql from Debian's packages" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
        bin=$(find_bin || true)
    fi
    [ -n "$bin" ] || { echo "PostgreSQL not found (apt-get install postgresql)" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=50" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres warmstart_test
    echo "$port" >"$dir/port"
    echo "postgresql+psycopg2://postgres@127.0.0.1:$port/warmstart_test"
    ;;
stop)
    bin=$(find_bin || true)
    if [ -n "$bin" ] && [ -d "$dir/data" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
