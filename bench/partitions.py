"""The partitioned log table: load, write cost of the search index designs, retention, conversion.

    python -m bench.partitions load N      dataset part<N>: N rows in daily partitions (bench/datagen.py)
    python -m bench.partitions write       COPY rate, size and rare-word search of each index design
    python -m bench.partitions retention   one day's partition: DROP against the batched DELETE purge
    python -m bench.partitions convert N   migration 0004 on a plain table of N rows, with a writer

`load` builds what a portal has after 90 days on the partitioned table: one partition per day of
the data set (the converted table long dropped by retention), seven days ahead, the trigram index
on every closed day, and the newest day open (no trigram index), as if it were today. The viewer
benchmark (bench/viewer.py with BENCH_DATASET=part<N>) then runs on it unchanged. Results go to
.cache/bench-results/partitions-*.json; docs/benchmarks.md reads them.
"""
import datetime
import os
import sys
import threading
import time

from bench import common

UTC = datetime.timezone.utc
DAY = datetime.timedelta(days=1)
WRITE_ROWS = int(os.environ.get("BENCH_PART_WRITE_ROWS", "200000"))
WRITE_REPS = int(os.environ.get("BENCH_PART_WRITE_REPS", "3"))


def _raw(alias="applogs"):
    import psycopg2
    from django.db import connections

    s = connections[alias].settings_dict
    return psycopg2.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"])


def _lines(n):
    from bench import datagen

    return [datagen.applogs_line(row) for row in datagen.generate(n)]


class _ListReader:
    """A file-like COPY source over prepared lines (generation is not what is measured)."""

    def __init__(self, lines):
        self._data = "".join(lines).encode()
        self._pos = 0
        self.count = len(lines)

    def read(self, size=-1):
        size = len(self._data) if size < 0 else size
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk


def _data_days(start_epoch=None):
    from bench import datagen

    start = datetime.datetime.fromtimestamp(start_epoch or datagen.START_EPOCH, UTC)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    return first, first + (datagen.SPAN_DAYS + 2) * DAY


def _live_start():
    """A start for the data set whose newest rows are about now: the viewer's pages then read
    the windows of record time ("the last day", "the last week") as on a live portal."""
    from bench import datagen

    return int(time.time()) // 3600 * 3600 - datagen.SPAN_DAYS * 86400


def _empty(conn, part, restart_identity=False):
    """The log table with no rows and no partition but the default one."""
    existing = part.list()
    with conn.cursor() as cur:
        cur.execute("TRUNCATE applogs_logrecord" + (" RESTART IDENTITY" if restart_identity else ""))
        for p in existing:
            if not p.is_default:
                cur.execute('DROP TABLE "%s"' % p.name)


def load(n):
    from bench import datagen
    from bench import load as bench_load

    common.setup_django("part%d" % n)
    from applogs.partitions import NO_EXPRESSION_STATISTICS, Partitions

    bench_load.ensure_databases()
    bench_load.migrate()
    conn = _raw()
    with conn.cursor() as cur:
        meta = bench_load._meta(cur)
    conn.commit()
    if (meta.get("rows") == str(n) and meta.get("gen_version") == bench_load.GEN_VERSION
            and "start_epoch" in meta):
        print("partitions: %d rows already loaded (newest day %s)" % (n, meta.get("today")), flush=True)
        return
    part = Partitions("applogs")
    _empty(conn, part, restart_identity=True)
    conn.commit()
    start_epoch = _live_start()
    first, last = _data_days(start_epoch)
    day = first
    while day < last:
        part.create(day, day + DAY)
        day += DAY
    t = time.perf_counter()
    reader = datagen.ChunkReader(datagen.generate(n, start_epoch=start_epoch), datagen.applogs_line)
    bench_load._copy(conn, "applogs_logrecord", datagen.APPLOGS_COLUMNS, reader)
    print("partitions: loaded %d rows in %.0f s" % (n, time.perf_counter() - t), flush=True)
    # The definitions _copy read back say "ON ONLY" for a partitioned table: that made empty,
    # invalid parent indexes. Built again on every partition.
    with conn.cursor() as cur:
        cur.execute("""SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                       WHERE x.indrelid = 'applogs_logrecord'::regclass AND NOT x.indisvalid""")
        for name, ddl in cur.fetchall():
            t = time.perf_counter()
            cur.execute('DROP INDEX "%s"' % name)
            cur.execute(ddl.replace(" ON ONLY ", " ON "))
            conn.commit()
            print("partitions: %s built in %.0f s" % (name, time.perf_counter() - t), flush=True)
    with conn.cursor() as cur:
        cur.execute("SELECT max(created) FROM applogs_logrecord")
        newest = cur.fetchone()[0]
    conn.commit()
    # "Today" is the newest day of the data: everything before it is closed and gets its index.
    today = newest.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    t = time.perf_counter()
    # What maintenance builds CONCURRENTLY on a live table, built plainly here (a bulk load).
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '512MB'")
        for p in part.unindexed_closed(today):
            cur.execute('CREATE INDEX "{p}_message_trgm" ON "{p}" USING gin (UPPER(message) gin_trgm_ops)'.format(
                p=p.name))
            cur.execute(NO_EXPRESSION_STATISTICS.format(i='"%s_message_trgm"' % p.name))
            conn.commit()
    part.maintain(now=today, ahead_days=7, log=lambda m: print("partitions: " + m, flush=True))
    print("partitions: maintenance (trigram indexes of the closed days) in %.0f s" % (time.perf_counter() - t),
          flush=True)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS applogs_logrecord_before")
    conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE applogs_logrecord")
        # A partitioned table's own statistics are gathered only by an explicit ANALYZE.
        cur.execute("ANALYZE applogs_logrecord")
        for k, v in (("rows", str(n)), ("gen_version", bench_load.GEN_VERSION),
                     ("initial_migration", bench_load.initial_migration_hash()), ("today", today.isoformat()),
                     ("start_epoch", str(start_epoch))):
            cur.execute("INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        [k, v])
    sizes(conn, "partitions-sizes-part%d" % n)
    conn.close()


def sizes(conn, name):
    with conn.cursor() as cur:
        cur.execute("""
            SELECT count(*), sum(pg_table_size(c.oid))::float8, sum(pg_indexes_size(c.oid))::float8,
                   (SELECT coalesce(sum(pg_relation_size(x.indexrelid)), 0)::float8 FROM pg_index x
                    JOIN pg_inherits j ON j.inhrelid = x.indrelid
                    WHERE j.inhparent = 'applogs_logrecord'::regclass
                      AND pg_get_indexdef(x.indexrelid) LIKE '%%gin_trgm_ops%%')
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'applogs_logrecord'::regclass""")
        parts, table, indexes, trgm = cur.fetchone()
        cur.execute("SELECT count(*) FROM applogs_logrecord")
        rows = cur.fetchone()[0]
    mb = 1024.0 * 1024
    out = {"rows": rows, "partitions": parts, "table_mb": table / mb, "indexes_mb": indexes / mb,
           "trigram_mb": (trgm or 0) / mb,
           "per_million_mb": {"table": table / mb / (rows / 1e6), "indexes": indexes / mb / (rows / 1e6),
                              "trigram": (trgm or 0) / mb / (rows / 1e6)}}
    print("partitions: sizes %s" % out, flush=True)
    common.save(name, out)
    return out


# The column list and the btree indexes of the table (migrations 0001-0002), for the plain tables
# of the write benchmark.
PLAIN = """
CREATE TABLE {t} (
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, created timestamptz NOT NULL,
  level smallint NOT NULL, logger varchar(255) NOT NULL, module varchar(255) NOT NULL,
  func varchar(255) NOT NULL, lineno integer, message text NOT NULL, traceback text NOT NULL,
  ip varchar(64) NOT NULL, "user" varchar(255) NOT NULL, request_id varchar(64) NOT NULL,
  host varchar(255) NOT NULL, process integer, extra jsonb NOT NULL);
CREATE INDEX ON {t} (created, id);
CREATE INDEX ON {t} (level, created, id);
CREATE INDEX ON {t} (logger varchar_pattern_ops, created, id);
CREATE INDEX ON {t} (request_id) WHERE request_id <> '';
"""
TRGM = "CREATE INDEX ON {t} USING gin (UPPER(message) gin_trgm_ops)"
DESIGNS = [
    # (name, extra DDL, search condition)
    ("no text index (the floor)", "", "UPPER(message) LIKE UPPER(%(like)s)"),
    ("trigram GIN, as migration 0003 (fastupdate, 4 MB pending list)", TRGM,
     "UPPER(message) LIKE UPPER(%(like)s)"),
    ("trigram GIN, 64 MB pending list", TRGM + " WITH (gin_pending_list_limit = 65536)",
     "UPPER(message) LIKE UPPER(%(like)s)"),
    ("full-text GIN, to_tsvector('simple', message)", "CREATE INDEX ON {t} USING gin (to_tsvector('simple', message))",
     "to_tsvector('simple', message) @@ plainto_tsquery('simple', %(word)s)"),
]


def write():
    """COPY of the same rows into an empty table per design (median of WRITE_REPS), its size, and
    a rare-word search on it; then the partitioned table, rows into an open partition."""
    from bench import datagen

    common.setup_django("scratch")
    from bench import load as bench_load

    bench_load.ensure_databases()
    bench_load.migrate()
    lines = _lines(WRITE_ROWS)
    conn = _raw()
    conn.autocommit = True
    results = {"rows": WRITE_ROWS, "reps": WRITE_REPS, "designs": {}}
    needle = datagen.NEEDLE_TOKEN

    def copy_rate(table):
        rates = []
        for _ in range(WRITE_REPS):
            with conn.cursor() as cur:
                cur.execute("TRUNCATE %s" % table)
                cols = ", ".join('"%s"' % c for c in datagen.APPLOGS_COLUMNS)
                t = time.perf_counter()
                cur.copy_expert("COPY %s (%s) FROM STDIN" % (table, cols), _ListReader(lines), size=1 << 20)
                rates.append(WRITE_ROWS / (time.perf_counter() - t))
        with conn.cursor() as cur:
            cur.execute("ANALYZE %s" % table)
        return rates

    def search(table, cond, params):
        with conn.cursor() as cur:
            sql = "SELECT id FROM %s WHERE %s ORDER BY created DESC, id DESC LIMIT 101" % (table, cond)
            times = []
            for _ in range(7):
                t = time.perf_counter()
                cur.execute(sql, params)
                cur.fetchall()
                times.append((time.perf_counter() - t) * 1000)
            return common.median(times[1:])

    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # Maintenance's partial index of an open partition covers the rows before the current hour:
    # every row written is later than that, as here, where it covers the time before the data.
    first, last = _data_days()
    designs = DESIGNS + [
        ("open partition's partial trigram GIN (rows before the hour, kept)",
         TRGM + " WHERE created < '%s'" % first.isoformat(), "UPPER(message) LIKE UPPER(%(like)s)")]
    for name, ddl, cond in designs:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_design")
            cur.execute(PLAIN.format(t="bench_design"))
            if ddl:
                cur.execute(ddl.format(t="bench_design"))
        rates = copy_rate("bench_design")
        with conn.cursor() as cur:
            cur.execute("SELECT pg_total_relation_size('bench_design')")
            size = cur.fetchone()[0]
        ms = search("bench_design", cond, {"like": "%" + needle + "%", "word": needle.lower()})
        results["designs"][name] = {"rows_per_s": common.median(rates), "all": rates,
                                    "mb_per_million": size / 1048576.0 / (WRITE_ROWS / 1e6), "search_ms": ms}
        print("write: %-66s %9.0f rows/s  %7.0f MB/M rows  search %8.1f ms" % (
            name, common.median(rates), size / 1048576.0 / (WRITE_ROWS / 1e6), ms), flush=True)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_design")

    # The partitioned table as migrated, its partitions for the rows' days created by maintenance:
    # they are open (no trigram index yet), which is where every write lands.
    from applogs.partitions import Partitions

    part = Partitions("applogs")
    _empty(conn, part)
    day = first
    while day < last:
        part.create(day, day + DAY)
        day += DAY
    name = "partitioned, open partition (kept: trigram index built when the partition closes)"
    rates = copy_rate("applogs_logrecord")
    ms = search("applogs_logrecord", "UPPER(message) LIKE UPPER(%(like)s)", {"like": "%" + needle + "%"})
    with conn.cursor() as cur:
        cur.execute("""SELECT sum(pg_total_relation_size(inhrelid))::float8 FROM pg_inherits
                       WHERE inhparent = 'applogs_logrecord'::regclass""")
        size = cur.fetchone()[0]
    # Closing: the trigram index of every partition built at once, as maintenance does.
    t = time.perf_counter()
    part.maintain(now=last, ahead_days=0)
    build_s = time.perf_counter() - t
    ms_closed = search("applogs_logrecord", "UPPER(message) LIKE UPPER(%(like)s)", {"like": "%" + needle + "%"})
    results["designs"][name] = {"rows_per_s": common.median(rates), "all": rates,
                                "mb_per_million": size / 1048576.0 / (WRITE_ROWS / 1e6), "search_ms": ms,
                                "index_build_s": build_s, "index_build_rows_per_s": WRITE_ROWS / build_s,
                                "search_closed_ms": ms_closed}
    print("write: %-66s %9.0f rows/s  %7.0f MB/M rows  search %8.1f ms (open) %6.1f ms (closed); "
          "index build %.0f rows/s" % (name, common.median(rates), size / 1048576.0 / (WRITE_ROWS / 1e6), ms,
                                       ms_closed, WRITE_ROWS / build_s), flush=True)
    _empty(conn, part)
    # Today's partition, open, for the handler's ingest benchmark (bench/handler_ingest.py) to
    # write into, as a portal's writer does.
    part.maintain(ahead_days=1)
    conn.close()
    common.save("partitions-write", results)


def retention(n):
    """Two copies of the oldest day, each in a partition of its own with the closed-day indexes:
    one emptied by the batched DELETE of the old purge, the other dropped."""
    common.setup_django("part%d" % n)
    from applogs.partitions import Partitions

    part = Partitions("applogs")
    ranged = [p for p in part.list() if not p.is_default]
    oldest = ranged[0]
    conn = _raw()
    conn.autocommit = True
    out = {}
    for k, method in ((1, "delete"), (2, "drop")):
        lower = oldest.lower + 2000 * DAY + k * DAY
        for p in part.list():
            if p.lower == lower:
                part.drop(p)
        part.create(lower, lower + DAY)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO applogs_logrecord SELECT * FROM {p}".format(p='"%s"' % oldest.name).replace(
                "SELECT *", "SELECT id + 1000000000000 * %d, created + interval '%d days', level, logger, module, "
                "func, lineno, message, traceback, ip, \"user\", request_id, host, process, extra" % (k, 2000 + k)))
            rows = cur.rowcount
        (new,) = [p for p in part.list() if p.lower == lower]
        part.index(new)
        with conn.cursor() as cur:
            cur.execute('VACUUM ANALYZE "%s"' % new.name)
        t = time.perf_counter()
        if method == "delete":
            n_deleted = part.delete_older(new.name, lower + DAY, 5000)
            assert n_deleted == rows
        else:
            part.drop(new)
        seconds = time.perf_counter() - t
        out[method] = {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}
        print("retention: %s of one day (%d rows): %.3f s" % (method, rows, seconds), flush=True)
    for p in part.list():
        if p.lower is not None and p.lower > oldest.lower + 1000 * DAY:
            part.drop(p)
    per_day = 100 * 86400
    out["projection_8_6M"] = {"delete_s": per_day / out["delete"]["rows_per_s"], "drop_s": out["drop"]["seconds"]}
    print("retention: at 100 records/s (8.64 M rows a day): DELETE ~%.0f s, DROP %.3f s" % (
        out["projection_8_6M"]["delete_s"], out["drop"]["seconds"]), flush=True)
    common.save("partitions-retention", out)
    conn.close()


def convert(n):
    """Migration 0004 on a plain table of n rows (as migration 0003 left it) while a writer inserts
    one row at a time: the time of each step and the writer's longest wait."""
    from django.core.management import call_command

    from bench import datagen
    from bench import load as bench_load

    common.setup_django("conv%d" % n)
    bench_load.ensure_databases()
    # Whatever state a previous run left: recorded as converted if it is, then back to the plain
    # table.
    call_command("migrate", database="default", verbosity=0)
    call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
    conn = _raw()
    with conn.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE relname = 'applogs_logrecord'")
        if cur.fetchone()[0] == "p":
            call_command("migrate", "applogs", "0004", fake=True, database="applogs", verbosity=0)
            call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
    conn.close()
    conn = _raw()
    with conn.cursor() as cur:
        meta = bench_load._meta(cur)
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE relname = 'applogs_logrecord'")
        kind = cur.fetchone()[0]
    conn.commit()
    if meta.get("rows") != str(n) or kind != "r":
        reader = datagen.ChunkReader(datagen.generate(n), datagen.applogs_line)
        bench_load._copy(conn, "applogs_logrecord", datagen.APPLOGS_COLUMNS, reader)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO bench_meta VALUES ('rows', %s) ON CONFLICT (key) DO UPDATE SET value = %s",
                        [str(n), str(n)])
        conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE applogs_logrecord")
        cur.execute("SELECT count(*), sum(id) FROM applogs_logrecord")
        fingerprint = cur.fetchone()

    stop = threading.Event()
    waits = []

    def writer():
        w = _raw()
        w.autocommit = True
        with w.cursor() as cur:
            while not stop.is_set():
                t = time.perf_counter()
                cur.execute("INSERT INTO applogs_logrecord (created, level, logger, module, func, message, traceback,"
                            " ip, \"user\", request_id, host, extra) VALUES (now(), 20, 'bench.writer', '', '', 'x',"
                            " '', '', '', '', '', '{}')")
                waits.append(time.perf_counter() - t)
                time.sleep(0.01)
        w.close()

    from applogs.migrations import __path__ as mig_path  # noqa: F401
    import importlib

    mig = importlib.import_module("applogs.migrations.0004_partition_by_created")
    thread = threading.Thread(target=writer)
    thread.start()
    steps = {}
    try:
        for label, sql in (("add NOT VALID bound", mig.ADD_BOUND), ("validate bound", mig.VALIDATE_BOUND),
                           ("build (id, created) key concurrently", mig.BUILD_KEY), ("swap (locked)", mig.SWAP)):
            t = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(sql)
            steps[label] = time.perf_counter() - t
            print("convert: %s: %.2f s" % (label, steps[label]), flush=True)
    finally:
        stop.set()
        thread.join()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) - %s, sum(id) FILTER (WHERE logger <> 'bench.writer') FROM applogs_logrecord",
                    [fingerprint[0]])
        extra, id_sum = cur.fetchone()
    out = {"rows": n, "steps_s": steps, "writer_inserts": len(waits), "writer_rows_added": extra,
           "rows_intact": id_sum == fingerprint[1] and extra == len(waits),
           "writer_longest_wait_s": max(waits), "writer_median_wait_ms": common.median(waits) * 1000}
    print("convert: %s" % out, flush=True)
    # Back to the plain table (the reverse), so the next run converts again.
    call_command("migrate", "applogs", "0004", fake=True, database="applogs", verbosity=0)
    t = time.perf_counter()
    call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
    out["reverse_s"] = time.perf_counter() - t
    with conn.cursor() as cur:
        cur.execute("DELETE FROM applogs_logrecord WHERE logger = 'bench.writer'")
        cur.execute("SELECT count(*), sum(id) FROM applogs_logrecord")
        out["rows_intact_after_reverse"] = tuple(cur.fetchone()) == tuple(fingerprint)
    print("convert: reverse %.1f s, rows intact: %s" % (out["reverse_s"], out["rows_intact_after_reverse"]), flush=True)
    common.save("partitions-convert", out)
    conn.close()


def main(argv):
    what = argv[1] if len(argv) > 1 else ""
    n = int(argv[2]) if len(argv) > 2 else int(os.environ.get("BENCH_ROWS", "10000000"))
    if what == "load":
        load(n)
    elif what == "write":
        write()
    elif what == "retention":
        retention(n)
    elif what == "convert":
        convert(n)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
