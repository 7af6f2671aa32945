# shellcheck shell=bash
# A private, throwaway PostgreSQL cluster for the app tests (source this file, then call testpg_start).
#
#   testpg_start          the newest PostgreSQL installed on this machine
#   testpg_start 17       that major version: this machine's binaries when it has them, otherwise
#                         the server of the test host image that ships it (13: applogs-test:bullseye,
#                         15: bookworm, 17: trixie; scripts/lib/images.sh builds them), in a container
#
# Each run gets its own data directory and a free port on 127.0.0.1 (or TESTPG_PORT when set), so
# several test runs can go on at once and nothing depends on the system cluster. We are usually root, and postgres refuses to run
# as root, so the server runs as the `postgres` OS user. In a container the same cluster is made by
# `docker exec` (the container itself only sleeps), and its port is published on 127.0.0.1 only.
# Exports:
#   APPLOGS_TEST_PGHOST, APPLOGS_TEST_PGPORT, APPLOGS_TEST_PGUSER (wfm: CREATEDB, not superuser),
#   APPLOGS_TEST_PGPASSWORD, APPLOGS_TEST_PGCTL (prefix for `stop -m fast` / `start -w`),
#   APPLOGS_TEST_SPOOL_DIR (a spool directory inside the cluster's temp dir),
#   APPLOGS_TEST_PGCONTAINER (the container's name; empty when the server runs on this machine).
# The cluster (and its container) is stopped and removed on exit (trap), or explicitly with testpg_stop.

TESTPG_IMAGE_REPO="${APPLOGS_IMAGE_REPO:-applogs-test}"

_testpg_bindir() {
    local d major=${1:-}
    if [ -n "$major" ]; then
        d=/usr/lib/postgresql/$major/bin
    else
        # The newest major version.
        d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V | tail -n1)
    fi
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        echo "testpg: no PostgreSQL server binaries under /usr/lib/postgresql/${major:-*}/bin (run scripts/setup)" >&2
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

# A command as the server's OS user, where the server runs.
_testpg_as_pg() {
    if [ -n "${TESTPG_CONTAINER:-}" ]; then
        docker exec -u postgres "$TESTPG_CONTAINER" "$@"
    elif [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Appends stdin to a file of the server's OS user.
_testpg_append() {
    if [ -n "${TESTPG_CONTAINER:-}" ]; then
        docker exec -i -u postgres "$TESTPG_CONTAINER" sh -c 'cat >>"$1"' _ "$1"
    else
        cat >>"$1"
        if [ "$(id -u)" = 0 ]; then chown postgres: "$1"; fi
    fi
}

# The container that serves PostgreSQL $1 from its test host image. Its name is fixed per checkout
# and version, so what an interrupted run left behind is removed here.
_testpg_container_start() {
    local major=$1 suite name
    case $major in
        13) suite=bullseye ;;
        15) suite=bookworm ;;
        17) suite=trixie ;;
        *) echo "testpg: no test host image ships PostgreSQL $major (13, 15 or 17)" >&2; return 1 ;;
    esac
    name="applogs-testpg$major-$(printf '%s' "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)" | sha256sum | cut -c1-8)"
    if ! docker image inspect "$TESTPG_IMAGE_REPO:$suite" >/dev/null 2>&1; then
        echo "testpg: no image $TESTPG_IMAGE_REPO:$suite (PostgreSQL $major); build it with scripts/lib/images.sh $suite" >&2
        return 1
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    TESTPG_CONTAINER=$name
    # --init reaps the server's processes: pg_ctl leaves them to PID 1.
    docker run -d --init --name "$name" -p 127.0.0.1::5432 \
        "$TESTPG_IMAGE_REPO:$suite" sleep infinity >/dev/null || return 1
}

testpg_start() {
    local major=${1:-} bindir port pw dir pgdir listen
    dir=$(mktemp -d /tmp/applogs-testpg.XXXXXX)
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    pw="wfm-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    TESTPG_DIR=$dir
    TESTPG_CONTAINER=""
    TESTPG_BINDIR=""
    trap testpg_stop EXIT

    if [ -z "$major" ] || [ -x "/usr/lib/postgresql/$major/bin/initdb" ]; then
        bindir=$(_testpg_bindir "$major") || return 1
        TESTPG_BINDIR=$bindir
        pgdir=$dir
        listen=127.0.0.1
    else
        _testpg_container_start "$major" || return 1
        bindir=/usr/lib/postgresql/$major/bin
        pgdir=/var/lib/postgresql/testpg
        _testpg_as_pg mkdir -p "$pgdir" || return 1
        # Reached through docker's port forwarding, from the bridge's address.
        listen="*"
    fi

    printf '%s\n' "$pw" | _testpg_append "$pgdir/pw.tmp"
    # The superuser gets a random password too; only wfm is used by the tests.
    _testpg_as_pg "$bindir/initdb" -D "$pgdir/data" -U postgres --auth=scram-sha-256 \
        --pwfile="$pgdir/pw.tmp" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }
    if [ -n "$TESTPG_CONTAINER" ]; then
        echo "host all all all scram-sha-256" | _testpg_append "$pgdir/data/pg_hba.conf"
    fi

    for _ in 1 2 3 4 5; do
        if [ -n "$TESTPG_CONTAINER" ]; then
            port=5432
        else
            port=${TESTPG_PORT:-$(_testpg_free_port)}
        fi
        _testpg_append "$pgdir/data/postgresql.conf" <<CONF
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$pgdir'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
        if _testpg_as_pg "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" start -w -t 60 >/dev/null; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        echo "testpg: the server did not start; its log:" >&2
        _testpg_as_pg cat "$pgdir/server.log" >&2
        return 1
    fi

    _testpg_as_pg env PGPASSWORD="$pw" "$bindir/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U postgres -d postgres -c "CREATE ROLE wfm LOGIN CREATEDB PASSWORD '$pw'" >/dev/null || return 1
    _testpg_as_pg rm -f "$pgdir/pw.tmp"

    local where=$dir
    if [ -n "$TESTPG_CONTAINER" ]; then
        port=$(docker port "$TESTPG_CONTAINER" 5432/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p')
        [ -n "$port" ] || { echo "testpg: $TESTPG_CONTAINER publishes no port on 127.0.0.1" >&2; return 1; }
        where="container $TESTPG_CONTAINER"
    fi
    export APPLOGS_TEST_PGHOST=127.0.0.1
    export APPLOGS_TEST_PGPORT=$port
    export APPLOGS_TEST_PGUSER=wfm
    export APPLOGS_TEST_PGPASSWORD=$pw
    # The writer's spool for this run (shared by the test's subprocesses, removed with the cluster).
    export APPLOGS_TEST_SPOOL_DIR=$dir/spool
    export APPLOGS_TEST_PGCONTAINER=$TESTPG_CONTAINER
    if [ -n "$TESTPG_CONTAINER" ]; then
        export APPLOGS_TEST_PGCTL="docker exec -u postgres $TESTPG_CONTAINER $bindir/pg_ctl -D $pgdir/data -l $pgdir/server.log"
    elif [ "$(id -u)" = 0 ]; then
        export APPLOGS_TEST_PGCTL="runuser -u postgres -- $bindir/pg_ctl -D $pgdir/data -l $pgdir/server.log"
    else
        export APPLOGS_TEST_PGCTL="$bindir/pg_ctl -D $pgdir/data -l $pgdir/server.log"
    fi
    echo "testpg: PostgreSQL $(_testpg_as_pg "$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($where)" >&2
}

testpg_stop() {
    [ -n "${TESTPG_DIR:-}" ] || return 0
    if [ -n "${TESTPG_CONTAINER:-}" ]; then
        docker rm -f "$TESTPG_CONTAINER" >/dev/null 2>&1 || true
        TESTPG_CONTAINER=""
    elif [ -n "${TESTPG_BINDIR:-}" ] && [ -f "$TESTPG_DIR/data/postmaster.pid" ]; then
        _testpg_as_pg "$TESTPG_BINDIR/pg_ctl" -D "$TESTPG_DIR/data" stop -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$TESTPG_DIR"
    TESTPG_DIR=""
}
