"""Create, migrate and fill the benchmark databases (idempotent).

    BENCH_DATASET=rows10000000 python -m bench.load 10000000

Creates bench_<dataset>_default and bench_<dataset>_logs on the benchmark cluster, migrates both
aliases, and -- unless bench_meta says the same rows are already there -- loads N rows by COPY into
applogs_logrecord (applogs database) and the same logical rows into the peer's
django_db_logger_statuslog (default database, where a portal would have it). Secondary indexes are
dropped before the COPY and rebuilt after it (what an operator would do for a bulk load), then
VACUUM ANALYZE. A dataset of 0 rows (`scratch`) only creates and migrates.
"""
import hashlib
import os
import sys
import tempfile
import time

import django

GEN_VERSION = "1"


def _db_params(alias):
    from django.conf import settings

    d = settings.DATABASES[alias]
    return dict(host=d["HOST"], port=d["PORT"], user=d["USER"], password=d["PASSWORD"], dbname=d["NAME"])


def initial_migration_hash():
    """Hash of applogs' 0001 migration: if it is edited in place, the loaded databases are stale."""
    import applogs.migrations

    path = os.path.join(os.path.dirname(applogs.migrations.__file__), "0001_initial.py")
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def ensure_databases():
    import psycopg2
    from django.conf import settings

    params = _db_params("default")
    params["dbname"] = "postgres"
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    names = [settings.DATABASES[alias]["NAME"] for alias in ("default", "applogs")]
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [names[1]])
        if cur.fetchone():
            logs = psycopg2.connect(**_db_params("applogs"))
            with logs.cursor() as lc:
                meta = _meta(lc)
            logs.commit()
            logs.close()
            if meta.get("initial_migration", initial_migration_hash()) != initial_migration_hash():
                print("load: applogs 0001_initial changed since the load: dropping the databases", flush=True)
                for name in names:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        for name in names:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if not cur.fetchone():
                cur.execute(f'CREATE DATABASE "{name}"')
                print(f"load: created database {name}", flush=True)
    conn.close()


def migrate():
    from django.core.management import call_command

    call_command("migrate", database="default", verbosity=0)
    call_command("migrate", database="applogs", verbosity=0)


def _meta(cur):
    cur.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
    cur.execute("SELECT key, value FROM bench_meta")
    return dict(cur.fetchall())


def _secondary_indexes(cur, table):
    """(name, definition) of the indexes that do not back a constraint."""
    cur.execute(
        """
        -- "ON ONLY" is how pg_get_indexdef shows an index of a partitioned table; run as such it
        -- would build no index on the partitions (and stay invalid).
        SELECT i.relname, replace(pg_get_indexdef(i.oid), ' ON ONLY ', ' ON ')
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = %s
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
        ORDER BY i.relname
        """,
        [table],
    )
    return cur.fetchall()


def _copy(conn, table, columns, reader, drop_indexes=True):
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        idx = _secondary_indexes(cur, table) if drop_indexes else []
        cur.execute(f"TRUNCATE {table} RESTART IDENTITY")
        for name, _ in idx:
            cur.execute(f'DROP INDEX "{name}"')
        cols = ", ".join('"%s"' % c for c in columns)
        cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN", reader, size=1 << 20)
        t1 = time.perf_counter()
        print(f"load: {table}: COPY {getattr(reader, 'count', '?')} rows in {t1 - t0:.0f} s", flush=True)
        for name, ddl in idx:
            t = time.perf_counter()
            cur.execute(ddl)
            print(f"load: {table}: {name} built in {time.perf_counter() - t:.0f} s", flush=True)
    conn.commit()


def load(n):
    import psycopg2

    from bench import datagen

    logs = psycopg2.connect(**_db_params("applogs"))
    peer = psycopg2.connect(**_db_params("default"))
    with logs.cursor() as cur:
        meta = _meta(cur)
    logs.commit()
    if meta.get("rows") == str(n) and meta.get("gen_version") == GEN_VERSION:
        print(f"load: {n} rows already loaded (bench_meta); skipping", flush=True)
        return False

    cache = os.environ.get("BENCH_PG_DIR") or tempfile.gettempdir()
    peer_path = os.path.join(cache, "peer-rows.copy")
    # One generator pass: applogs rows stream into COPY; the peer's rows go to a file on the side.
    with open(peer_path, "w", encoding="utf-8") as side:

        rows = datagen.generate(n)

        def tee(rows):
            buf = []
            for row in rows:
                buf.append(datagen.peer_line(row))
                if len(buf) >= 20000:
                    side.write("".join(buf))
                    buf = []
                yield row
            side.write("".join(buf))

        reader = datagen.ChunkReader(tee(rows), datagen.applogs_line)
        _copy(logs, "applogs_logrecord", datagen.APPLOGS_COLUMNS, reader)
    with open(peer_path, "rb") as f:

        class Counting:
            count = n

            def read(self, size=-1):
                return f.read(1 << 20)

        _copy(peer, "django_db_logger_statuslog", datagen.PEER_COLUMNS, Counting())
    os.unlink(peer_path)

    for conn, table in ((logs, "applogs_logrecord"), (peer, "django_db_logger_statuslog")):
        conn.autocommit = True
        t = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(f"VACUUM ANALYZE {table}")
        print(f"load: VACUUM ANALYZE {table} in {time.perf_counter() - t:.0f} s", flush=True)
    with logs.cursor() as cur:
        for k, v in (("rows", str(n)), ("gen_version", GEN_VERSION), ("initial_migration", initial_migration_hash()),
                     ("loaded_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))):
            cur.execute("INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [k, v])
    logs.close()
    peer.close()
    return True


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    ensure_databases()
    t = time.perf_counter()
    migrate()
    print(f"load: migrated both aliases in {time.perf_counter() - t:.1f} s", flush=True)
    if n:
        t = time.perf_counter()
        if load(n):
            print(f"load: {n} rows loaded into both tables in {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv)
