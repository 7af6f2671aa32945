"""The viewer's XLSX export end to end: database read + workbook, N rows (default 100,000).

Loads N rows of bench/datagen.py by COPY into a scratch applogs database, then times, in turns:
- ``read``:   the export's row generator alone (server-side cursor, 2,000-row chunks, level labels);
- ``export``: applogs.export.export_response (rows + xlsexport.writer) and reading the whole
              FileResponse, i.e. what the view does before and while the first byte goes out.
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


def full_export(max_rows):
    from applogs.export import export_response
    from applogs.models import LogRecord

    response = export_response(LogRecord.objects.all(), None, max_rows)
    size = sum(len(chunk) for chunk in response.streaming_content)
    response.close()
    return size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    setup(DB_NAME)
    load(args.rows, DB_NAME)
    from django.db import connections

    import xlsxwriter

    print("rows=%d runs=%d loadavg=%s XlsxWriter=%s" % (args.rows, args.runs, os.getloadavg(), xlsxwriter.__version__))
    times = {"read": [], "export": []}
    cpu = {"read": [], "export": []}
    for run in range(args.runs):
        for name, fn in (("read", read_only), ("export", full_export)):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(args.rows)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            connections.close_all()
            print("  run %d %-6s %6.2f s wall %6.2f s cpu (this process)  -> %s" % (
                run + 1, name, times[name][-1], cpu[name][-1], out), flush=True)
    print()
    print("| step | median wall s | median CPU s (Python process) |")
    print("|---|---|---|")
    for name in times:
        print("| %s | %.2f | %.2f |" % (name, statistics.median(times[name]), statistics.median(cpu[name])))


if __name__ == "__main__":
    main()
