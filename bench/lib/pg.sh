# shellcheck shell=bash
# The benchmark's private PostgreSQL cluster. Source this file, then call bench_pg_start.
#
# Unlike scripts/lib/testpg.sh (a throwaway cluster per test run), the benchmark keeps its cluster in
# .cache/bench-pg (git-ignored) so that the 10-million-row load is done once and reused by reruns.
# The system cluster is never touched. Exports BENCH_PGHOST, BENCH_PGPORT, BENCH_PGUSER (wfm, CREATEDB,
# not superuser, like a portal's user), BENCH_PGPASSWORD, and BENCH_PGCTL (a command prefix for pg_ctl).

BENCH_ROOT=${BENCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BENCH_PG_DIR=${BENCH_PG_DIR:-$BENCH_ROOT/.cache/bench-pg}
BENCH_PG_BIN=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}

_bench_pg_as() {
    # Run a command as the postgres OS user when we are root (initdb refuses root).
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_bench_pg_free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

bench_pg_start() {
    local data="$BENCH_PG_DIR/data" sock="$BENCH_PG_DIR/sock"
    mkdir -p "$BENCH_PG_DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$BENCH_PG_DIR"; fi
    _bench_pg_as mkdir -p "$sock"
    if [ ! -s "$data/PG_VERSION" ]; then
        echo "bench: initdb $data" >&2
        _bench_pg_as "$BENCH_PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        # A modest server for a 2-core, 24 GiB machine shared with other work; close to what a
        # portal's database host would run, not tuned for the benchmark.
        _bench_pg_as tee -a "$data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
shared_buffers = 2GB
effective_cache_size = 8GB
maintenance_work_mem = 512MB
work_mem = 16MB
max_wal_size = 8GB
checkpoint_timeout = 15min
random_page_cost = 1.1
max_parallel_workers_per_gather = 2
log_min_messages = warning
logging_collector = off
EOF
        echo "host all all 127.0.0.1/32 scram-sha-256" | _bench_pg_as tee "$data/pg_hba.conf.new" >/dev/null
        echo "local all all trust" | _bench_pg_as tee -a "$data/pg_hba.conf.new" >/dev/null
        _bench_pg_as mv "$data/pg_hba.conf.new" "$data/pg_hba.conf"
    fi
    BENCH_PGCTL="$BENCH_PG_BIN/pg_ctl -D $data"
    if [ "$(id -u)" = 0 ]; then BENCH_PGCTL="runuser -u postgres -- $BENCH_PGCTL"; fi
    if ! $BENCH_PGCTL status >/dev/null 2>&1; then
        local port
        port=$(_bench_pg_free_port)
        echo "$port" | _bench_pg_as tee "$BENCH_PG_DIR/port" >/dev/null
        $BENCH_PGCTL -l "$BENCH_PG_DIR/server.log" -o "-p $port" -w start >/dev/null
    fi
    BENCH_PGPORT=$(cat "$BENCH_PG_DIR/port")
    BENCH_PGHOST=127.0.0.1
    BENCH_PGUSER=wfm
    BENCH_PGPASSWORD=wfm-bench
    _bench_pg_as "$BENCH_PG_BIN/psql" -h "$sock" -p "$BENCH_PGPORT" -U postgres -d postgres -qAt \
        -v ON_ERROR_STOP=1 >/dev/null <<EOF
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wfm') THEN
        CREATE ROLE wfm;
    END IF;
END
\$\$;
ALTER ROLE wfm WITH LOGIN CREATEDB NOSUPERUSER PASSWORD '$BENCH_PGPASSWORD';
EOF
    export BENCH_PGHOST BENCH_PGPORT BENCH_PGUSER BENCH_PGPASSWORD BENCH_PGCTL BENCH_PG_DIR
    echo "bench: PostgreSQL 15 on 127.0.0.1:$BENCH_PGPORT (data $data)" >&2
}

bench_pg_stop() {
    local data="$BENCH_PG_DIR/data"
    local ctl="$BENCH_PG_BIN/pg_ctl -D $data"
    if [ "$(id -u)" = 0 ]; then ctl="runuser -u postgres -- $ctl"; fi
    $ctl status >/dev/null 2>&1 && $ctl -m fast -w stop >/dev/null
    return 0
}

# psql as the cluster's superuser over the private socket (for the loader's ANALYZE, stats, etc.).
bench_psql() {
    _bench_pg_as "$BENCH_PG_BIN/psql" -h "$BENCH_PG_DIR/sock" -p "$BENCH_PGPORT" -U postgres "$@"
}
