"""The viewer's XLSX export end to end: database read + workbook, N rows (default 100,000).

Loads N rows of bench/datagen.py by COPY into a scratch applogs database, then times, in turns:
- ``read``:   the export's row generator alone (server-side cursor, 2,000-row chunks, level labels);
- ``export-1.2``: the same with xlsexport 1.2's writer (bench/export_speed.py BASELINE): the workbook
              built in a temporary file, then read in FileResponse's chunks;
- ``export``: applogs.export.export_response (rows + xlsexport.writer) and reading the whole
              streamed response, i.e. what the view does before and while the bytes go out; the
              time to its first chunk (the first byte a client could get) is printed too.
Run it against a private throwaway cluster (scripts/lib/testpg.sh exports APPLOGS_TEST_PG*):

    bash -c '. scripts/lib/testpg.sh && testpg_start && .venv/django52/bin/python bench/export_endpoint.py'

Prints medians; nothing is written to docs/.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DB_NAME = "bench_export_logs"


def setup(db_name):
    for sub in ("files/xlsexport_app", "files/applogs_app", ""):
        sys.path.insert(0, os.path.join(ROOT, sub))
    from django.conf import settings

    pg = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["APPLOGS_TEST_PGHOST"],
        "PORT": os.environ["APPLOGS_TEST_PGPORT"],
        "USER": os.environ["APPLOGS_TEST_PGUSER"],
        "PASSWORD": os.environ["APPLOGS_TEST_PGPASSWORD"],
    }
    settings.configure(
        USE_TZ=True, TIME_ZONE="Europe/Moscow", SECRET_KEY="bench",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "xlsexport", "applogs"],
        DATABASES={"default": dict(pg, NAME="postgres"), "applogs": dict(pg, NAME=db_name)},
        DATABASE_ROUTERS=["applogs.db_router.LogsDBRouter"],
        LOGGING_CONFIG=None,
    )
    import django

    django.setup()


def load(n, db_name):
    import psycopg2
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    d = settings.DATABASES["applogs"]
    params = dict(host=d["HOST"], port=d["PORT"], user=d["USER"], password=d["PASSWORD"])
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        cur.execute(f'CREATE DATABASE "{db_name}"')
    conn.close()
    call_command("migrate", "applogs", database="applogs", verbosity=0)
    connections.close_all()
    from bench.datagen import APPLOGS_COLUMNS, ChunkReader, applogs_line, generate

    t0 = time.perf_counter()
    conn = psycopg2.connect(dbname=db_name, **params)
    with conn.cursor() as cur:
        cur.copy_expert("COPY applogs_logrecord (%s) FROM STDIN" % ", ".join(f'"{c}"' for c in APPLOGS_COLUMNS),
                        ChunkReader(generate(n), applogs_line), size=1 << 20)
        cur.execute("ANALYZE applogs_logrecord")
    conn.commit()
    conn.close()
    print("loaded %d rows in %.1f s" % (n, time.perf_counter() - t0), flush=True)


def read_only(max_rows):
    """The rows export_response would write, without the workbook (same query and loop)."""
    from applogs.export import export_rows
    from applogs.models import LogRecord

    rows, _ = export_rows(LogRecord.objects.all(), None, max_rows)
    return sum(1 for _ in rows)


FIRST_BYTE = {"export": [], "export-1.2": []}


def full_export(max_rows):
    from applogs.export import export_response
    from applogs.models import LogRecord

    t0 = time.perf_counter()
    response = export_response(LogRecord.objects.all(), None, max_rows)
    size = 0
    for chunk in response.streaming_content:
        if not size:
            FIRST_BYTE["export"].append(time.perf_counter() - t0)
        size += len(chunk)
    response.close()
    return size


def full_export_12(max_rows):
    """What the view did with xlsexport 1.2: the whole workbook into a temporary file, then
    FileResponse sends it in chunks of 8 KiB."""
    import tempfile

    from applogs.export import COLUMNS, capped_notice, export_rows
    from applogs.models import LogRecord
    from bench.export_speed import baseline_writer

    writer = baseline_writer()
    t0 = time.perf_counter()
    rows, state = export_rows(LogRecord.objects.all(), None, max_rows)
    size = 0
    with tempfile.TemporaryFile(suffix=".xlsx") as fh:
        writer.write_xlsx(fh, [h for h, _, _ in COLUMNS], rows, title="Log records",
                          notice=lambda: capped_notice(max_rows) if state["capped"] else None,
                          column_widths=[w for _, _, w in COLUMNS])
        fh.seek(0)
        for chunk in iter(lambda: fh.read(8192), b""):
            if not size:
                FIRST_BYTE["export-1.2"].append(time.perf_counter() - t0)
            size += len(chunk)
    return size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    setup(DB_NAME)
    load(args.rows, DB_NAME)
    from django.db import connections

    print("rows=%d runs=%d loadavg=%s" % (args.rows, args.runs, os.getloadavg()))
    steps = (("read", read_only), ("export-1.2", full_export_12), ("export", full_export))
    times = {name: [] for name, _ in steps}
    cpu = {name: [] for name, _ in steps}
    for run in range(args.runs):
        for name, fn in steps:
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(args.rows)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            connections.close_all()
            print("  run %d %-6s %6.2f s wall %6.2f s cpu (this process)  -> %s" % (
                run + 1, name, times[name][-1], cpu[name][-1], out), flush=True)
    print()
    print("| step | median wall s | median CPU s (Python process) | median first byte s |")
    print("|---|---|---|---|")
    for name in times:
        first_byte = "%.2f" % statistics.median(FIRST_BYTE[name]) if name in FIRST_BYTE else "-"
        print("| %s | %.2f | %.2f | %s |" % (name, statistics.median(times[name]), statistics.median(cpu[name]), first_byte))


if __name__ == "__main__":
    main()
