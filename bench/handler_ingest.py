"""(b) Sustained ingest through DBLogsHandler against the raw COPY rate of the same rows.

Per repetition, on the scratch database's applogs_logrecord (empty, with the migrations' indexes):

1. handler: N records (realistic loggers, levels and messages from bench/datagen.py, pre-built so
   their generation is not timed) are logged from one thread through a DBLogsHandler; the clock
   stops when handler.flush() says every row is committed, and the row count is checked. The
   producer offers records as fast as the writer takes them from memory: when the writer's queue
   is three quarters full it waits a little (past the queue bound records would go through the
   spool, which is the burst benchmark's subject, not this one's).
2. the same rows, dumped from the table with COPY TO, are written back by raw COPY: once as a single
   COPY of all N rows (the limit), and once as COPYs of batch_size rows (the handler's batching, no
   Python encoding).
Each repetition runs once per variant, in alternating order: on the table as migrated, on the same
table without the trigram GIN index of migration 0003 where the table has it (the index whose
write cost is large), and without the trigger that keeps the volume chart's counts (migration
0005), so the cost of each is measured in the same run.

(The unpaced burst is bench/handler_burst.py.)

    python -m bench.handler_ingest        # BENCH_INGEST_N (200000), BENCH_INGEST_REPS (3)
"""
import io
import logging
import os
import re
import sys
import time

from bench import common, datagen

N = int(os.environ.get("BENCH_INGEST_N", "200000"))
REPS = int(os.environ.get("BENCH_INGEST_REPS", "3"))
TRGM = "applogs_message_trgm"
VOLUME_TRIGGER = "applogs_volume_insert"
COLS = ", ".join('"%s"' % c for c in datagen.APPLOGS_COLUMNS)


def _unescape(s):
    if "\\" not in s:
        return s
    return (s.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r").replace("\\\\", "\\"))


def main():
    common.setup_django("scratch")
    from django.db import connections

    from applogs import writer as writer_mod
    from applogs.handlers import DBLogsHandler

    conn = connections["applogs"]
    conn.ensure_connection()
    raw = conn.connection

    def truncate():
        with raw.cursor() as cur:
            cur.execute("TRUNCATE applogs_logrecord RESTART IDENTITY")
        raw.commit()

    def count():
        """(rows logged by the benchmark, records dropped as told by the writer's drop reports)"""
        with raw.cursor() as cur:
            cur.execute("SELECT count(*) FROM applogs_logrecord WHERE logger <> 'applogs'")
            n = cur.fetchone()[0]
            cur.execute("SELECT message FROM applogs_logrecord WHERE logger = 'applogs'")
            dropped = 0
            for (msg,) in cur.fetchall():
                m = re.search(r"(\d+) log record\(s\) were dropped", msg)
                dropped += int(m.group(1)) if m else 0
        raw.commit()
        return n, dropped

    # The records to log: (logger, level, message) from the data generator.
    parent = logging.getLogger("ingest")
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    handler = DBLogsHandler()
    parent.handlers[:] = [handler]
    loggers = {name: logging.getLogger("ingest." + name) for name in datagen.LOGGER_NAMES}
    records = [(loggers[r[2]].log, int(r[1]), _unescape(r[6])) for r in datagen.generate(N, seed=4711)]

    def flush(timeout=600.0):
        try:
            return handler.flush(timeout=timeout)
        except TypeError:
            return all(w.flush(timeout) for w in writer_mod.all_writers())

    # Warm-up: start the writer, open its connection.
    parent.info("warm-up")
    flush()
    w = writer_mod.all_writers()[0]
    qmax = w.options.queue_size
    high = int(qmax * 0.75)
    batch_size = w.options.batch_size

    def log_paced():
        waits = 0
        for i, (log, level, msg) in enumerate(records):
            if not i & 255:
                while w.count > high:
                    time.sleep(0.0005)
                    waits += 1
            log(level, msg)
        return waits

    # The table as migrated, and the same without the trigram index of migration 0003 (the one
    # index whose write cost is large), alternating per repetition so noise hits both alike.
    with raw.cursor() as cur:
        cur.execute("SELECT pg_get_indexdef(c.oid) FROM pg_class c WHERE c.relname = %s", [TRGM])
        row = cur.fetchone()
    raw.commit()
    trgm_ddl = row[0] if row else None
    # The volume chart's counts (migration 0005) are kept by a statement trigger: measured with and
    # without it, in the same alternation.
    with raw.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = 'applogs_logrecord'::regclass",
                    [VOLUME_TRIGGER])
        has_volume = cur.fetchone() is not None
    raw.commit()
    variants = (["as migrated"] + (["without trigram index"] if trgm_ddl else [])
                + (["without volume counts"] if has_volume else []))

    def set_variant(variant):
        with raw.cursor() as cur:
            cur.execute(f'DROP INDEX IF EXISTS "{TRGM}"')
            if variant == "as migrated" and trgm_ddl:
                cur.execute(trgm_ddl)
            if has_volume:
                switch = "DISABLE" if variant == "without volume counts" else "ENABLE"
                cur.execute(f"ALTER TABLE applogs_logrecord {switch} TRIGGER {VOLUME_TRIGGER}")
        raw.commit()

    def one_run():
        truncate()
        t0 = time.perf_counter()
        waits = log_paced()
        t_produced = time.perf_counter()
        ok = flush()
        t1 = time.perf_counter()
        stored, dropped = count()
        handler_s = t1 - t0

        buf = io.BytesIO()
        with raw.cursor() as cur:
            cur.copy_expert(f"COPY (SELECT {COLS} FROM applogs_logrecord WHERE logger <> 'applogs' ORDER BY id) "
                            "TO STDOUT", buf)
        raw.commit()
        data = buf.getvalue()

        truncate()
        t0 = time.perf_counter()
        with raw.cursor() as cur:
            cur.copy_expert(f"COPY applogs_logrecord ({COLS}) FROM STDIN", io.BytesIO(data), size=1 << 20)
        raw.commit()
        copy_s = time.perf_counter() - t0

        truncate()
        lines = data.splitlines(keepends=True)
        chunks = [b"".join(lines[i:i + batch_size]) for i in range(0, len(lines), batch_size)]
        raw.autocommit = True
        t0 = time.perf_counter()
        with raw.cursor() as cur:
            for chunk in chunks:
                cur.copy_expert(f"COPY applogs_logrecord ({COLS}) FROM STDIN", io.BytesIO(chunk))
        copy_batched_s = time.perf_counter() - t0
        raw.autocommit = False

        run = {
            "rows": N, "stored": stored, "flush_ok": ok, "dropped": dropped,
            "handler_s": handler_s, "producer_s": t_produced - (t1 - handler_s), "pacing_waits": waits,
            "handler_rps": stored / handler_s, "copy_s": copy_s, "copy_rps": len(lines) / copy_s,
            "copy_batched_s": copy_batched_s, "copy_batched_rps": len(lines) / copy_batched_s,
            "bytes": len(data),
        }
        run["ratio"] = run["handler_rps"] / run["copy_rps"]
        return run

    runs = {v: [] for v in variants}
    try:
        for rep in range(REPS):
            order = variants if rep % 2 == 0 else variants[::-1]
            for variant in order:
                set_variant(variant)
                run = one_run()
                runs[variant].append(run)
                print(f"handler_ingest: rep {rep + 1}/{REPS} [{variant}]: handler {run['handler_rps']:,.0f} rows/s "
                      f"({run['stored']}/{N} stored, {run['dropped']} dropped, producer {run['producer_s']:.2f} s "
                      f"of {run['handler_s']:.2f} s), raw COPY {run['copy_rps']:,.0f} rows/s, raw COPY "
                      f"x{batch_size} {run['copy_batched_rps']:,.0f} rows/s, ratio {run['ratio']:.0%}", flush=True)
    finally:
        set_variant("as migrated")

    keys = ("handler_rps", "copy_rps", "copy_batched_rps", "ratio", "handler_s", "copy_s", "producer_s")
    med = {v: {k: common.median([r[k] for r in rs]) for k in keys} for v, rs in runs.items()}
    main_v = med["as migrated"]
    result = {"rows": N, "reps": REPS, "queue_size": qmax, "batch_size": batch_size,
              "flush_interval": w.options.flush_interval, "variants": variants, "runs": runs,
              "median": med,
              "all_rows_landed": all(r["stored"] == N for rs in runs.values() for r in rs),
              "target_ge_50pct_of_copy": main_v["ratio"] >= 0.5}
    print()
    print(f"(b) sustained ingest of {N:,} rows, median of {REPS} (queue {qmax}, batch {batch_size})")
    print(f"{'rows/s':<34}" + "".join(f"{v:>24}" for v in variants))
    for label, k in (("DBLogsHandler, until committed", "handler_rps"), ("raw COPY, one statement", "copy_rps"),
                     (f"raw COPY, {batch_size}-row statements", "copy_batched_rps")):
        print(f"{label:<34}" + "".join(f"{med[v][k]:>24,.0f}" for v in variants))
    print(f"{'ratio handler / raw COPY':<34}" + "".join(f"{med[v]['ratio']:>24.0%}" for v in variants))
    print(f"target >= 50% of raw COPY (table as migrated): {'met' if result['target_ge_50pct_of_copy'] else 'NOT met'}")
    print(f"every row landed in every rep  : {result['all_rows_landed']}")
    common.save("handler_ingest", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
