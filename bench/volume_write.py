"""The write cost of the volume chart's counts: the statement trigger of migration 0005, alone.

On the scratch database: 40 INSERT statements of 5,000 generated rows each (the writer's batch),
with the trigger enabled and disabled, alternating, BENCH_VOLUME_REPS times each; two spreads of
record time per statement: one minute (what a live writer's batch holds) and 83 minutes (every
row of a batch in a different minute and logger, many keys: the worst case, e.g. a spool replay).
The handler's own benchmark (bench/handler_ingest.py) measures the same trigger end to end.

    python -m bench.volume_write
"""
import os
import sys
import time

from bench import common

REPS = int(os.environ.get("BENCH_VOLUME_REPS", "6"))
STATEMENTS, ROWS = 40, 5000
INSERT = """
    INSERT INTO applogs_logrecord (created, level, logger, module, func, message, traceback, ip, "user",
                                   request_id, host, extra)
    SELECT now() - ((i + %s) %% %s) * interval '1 second', 10 * (1 + i %% 5), 'api.l' || (i %% 30), '', '',
           'message ' || i, '', '', '', '', '', '{}'
    FROM generate_series(1, %s) AS i"""


def main():
    common.setup_django("scratch")
    from django.db import connections

    conn = connections["applogs"]
    conn.ensure_connection()
    raw = conn.connection
    raw.autocommit = True
    results = {}
    with raw.cursor() as cur:
        try:
            for spread_name, spread in (("one minute per statement", 60), ("83 minutes per statement", 5000)):
                rates = {"with trigger": [], "without trigger": []}
                for rep in range(REPS):
                    order = list(rates) if rep % 2 == 0 else list(rates)[::-1]
                    for variant in order:
                        cur.execute("TRUNCATE applogs_logrecord")
                        switch = "ENABLE" if variant == "with trigger" else "DISABLE"
                        cur.execute(f"ALTER TABLE applogs_logrecord {switch} TRIGGER applogs_volume_insert")
                        t0 = time.perf_counter()
                        for n in range(STATEMENTS):
                            cur.execute(INSERT, [n * ROWS, spread, ROWS])
                        rates[variant].append(STATEMENTS * ROWS / (time.perf_counter() - t0))
                med = {v: common.median(r) for v, r in rates.items()}
                ratio = med["with trigger"] / med["without trigger"]
                results[spread_name] = {"runs": rates, "median": med, "ratio": ratio}
                print(f"volume_write [{spread_name}]: with trigger {med['with trigger']:,.0f} rows/s, without "
                      f"{med['without trigger']:,.0f} rows/s, ratio {ratio:.2f} (median of {REPS})", flush=True)
        finally:
            cur.execute("ALTER TABLE applogs_logrecord ENABLE TRIGGER applogs_volume_insert")
            cur.execute("TRUNCATE applogs_logrecord")
    common.save("volume_write", {"reps": REPS, "statements": STATEMENTS, "rows": ROWS, "spreads": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
