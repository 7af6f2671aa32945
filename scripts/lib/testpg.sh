# shellcheck shell=bash
# A private, throwaway PostgreSQL cluster for the app tests (source this file, then call testpg_start).
#
# Each run gets its own data directory and a free port on 127.0.0.1 (or TESTPG_PORT when set), so
# several test runs can go on at once and nothing depends on the system cluster. We are usually root, and postgres refuses to run
# as root, so the server runs as the `postgres` OS user. Exports:
#   APPLOGS_TEST_PGHOST, APPLOGS_TEST_PGPORT, APPLOGS_TEST_PGUSER (wfm: CREATEDB, not superuser),
#   APPLOGS_TEST_PGPASSWORD, APPLOGS_TEST_PGCTL (prefix for `stop -m fast` / `start -w`),
#   APPLOGS_TEST_SPOOL_DIR (a spool directory inside the cluster's temp dir).
# The cluster is stopped and removed on exit (trap), or explicitly with testpg_stop.

_testpg_bindir() {
    local d
    # Newest major version first.
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V | tail -n1)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        echo "testpg: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (run scripts/setup)" >&2
        return 1
    fi
    echo "$d"
}

_testpg_free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

_testpg_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

testpg_start() {
    local bindir port pw dir
    bindir=$(_testpg_bindir) || return 1
    dir=$(mktemp -d /tmp/applogs-testpg.XXXXXX)
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    pw="wfm-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    TESTPG_DIR=$dir
    trap testpg_stop EXIT

    printf '%s\n' "$pw" >"$dir/pw.tmp"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/pw.tmp"; fi
    # The superuser gets a random password too; only wfm is used by the tests.
    _testpg_as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 \
        --pwfile="$dir/pw.tmp" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }

    local attempt
    for attempt in 1 2 3 4 5; do
        port=${TESTPG_PORT:-$(_testpg_free_port)}
        cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
        if _testpg_as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" start -w -t 60 >/dev/null; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        echo "testpg: the server did not start; see $dir/server.log" >&2
        cat "$dir/server.log" >&2
        return 1
    fi

    PGPASSWORD=$pw _testpg_as_pg "$bindir/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U postgres -d postgres -c "CREATE ROLE wfm LOGIN CREATEDB PASSWORD '$pw'" >/dev/null || return 1
    rm -f "$dir/pw.tmp"

    export APPLOGS_TEST_PGHOST=127.0.0.1
    export APPLOGS_TEST_PGPORT=$port
    export APPLOGS_TEST_PGUSER=wfm
    export APPLOGS_TEST_PGPASSWORD=$pw
    # The writer's spool for this run (shared by the test's subprocesses, removed with the cluster).
    export APPLOGS_TEST_SPOOL_DIR=$dir/spool
    if [ "$(id -u)" = 0 ]; then
        export APPLOGS_TEST_PGCTL="runuser -u postgres -- $bindir/pg_ctl -D $dir/data -l $dir/server.log"
    else
        export APPLOGS_TEST_PGCTL="$bindir/pg_ctl -D $dir/data -l $dir/server.log"
    fi
    echo "testpg: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
}

testpg_stop() {
    [ -n "${TESTPG_DIR:-}" ] || return 0
    local bindir
    bindir=$(_testpg_bindir) || true
    if [ -n "$bindir" ] && [ -f "$TESTPG_DIR/data/postmaster.pid" ]; then
        _testpg_as_pg "$bindir/pg_ctl" -D "$TESTPG_DIR/data" stop -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$TESTPG_DIR"
    TESTPG_DIR=""
}
