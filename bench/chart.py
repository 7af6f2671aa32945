"""The volume chart and the follow endpoint on the loaded data set (10 million rows by default).

Chart: applogs.volume.volume() (the chart's one query, on the counts table) timed directly for
the filters it serves, over the whole table's range and over shorter ones; and the list page with
the chart through Django's test Client, for the page's total. Follow: the tail endpoint's JSON
through the Client, with nothing new, with 100 new records, and with filters. Rounds as in
bench/viewer.py (every scenario once per round); medians and p95 reported, with the size of the
counts table.

    BENCH_DATASET=rows10000000 python -m bench.chart   # BENCH_CHART_REPS (25)
"""
import datetime
import os
import sys
import time
from urllib.parse import urlencode

from bench import common

REPS = int(os.environ.get("BENCH_CHART_REPS", "25"))
TARGET_MS = 100.0


def main():
    os.environ.setdefault("BENCH_DATASET", "rows10000000")
    common.setup_django()
    from django.db import connections

    from applogs import volume

    logs = connections["applogs"]
    client = common.superuser_client()

    with logs.cursor() as cur:
        rows_loaded = common.rows_loaded(cur)
        cur.execute("SELECT max(created), max(id) FROM applogs_logrecord")
        newest, max_id = cur.fetchone()
        cur.execute("SELECT grain, count(*) FROM applogs_volume GROUP BY grain ORDER BY grain")
        counts_rows = {str(g): n for g, n in cur.fetchall()}
        cur.execute("SELECT pg_total_relation_size('applogs_volume')")
        counts_bytes = cur.fetchone()[0]

    end = newest.replace(hour=0, minute=0, second=0, microsecond=0)
    day, week = end - datetime.timedelta(days=1), end - datetime.timedelta(days=7)
    hour = end - datetime.timedelta(hours=1)
    chart_scenarios = [
        ("whole range", {}),
        ("level=ERROR, whole range", {"levels": [40]}),
        ("logger=api, whole range", {"logger": "api"}),
        ("level>=WARNING + logger=api, whole range", {"levels": [30, 40, 50], "logger": "api"}),
        ("7 days", {"since": week, "until": end}),
        ("level=ERROR, 7 days", {"levels": [40], "since": week, "until": end}),
        ("1 day", {"since": day, "until": end}),
        ("logger=api, 1 day", {"logger": "api", "since": day, "until": end}),
        ("1 hour", {"since": hour, "until": end}),
    ]

    V = "/applogs/"
    page_scenarios = [
        ("list + chart, no filter", V),
        ("list + chart, level=ERROR", V + "?level=ERROR"),
        ("list + chart, logger=api, 1 day", V + "?" + urlencode({"logger": "api", "since": common.form_time(day),
                                                                 "until": common.form_time(end)})),
        ("tail: nothing new", V + "tail/?" + urlencode({"after": max_id})),
        ("tail: 100 new records", V + "tail/?" + urlencode({"after": max_id - 100})),
        ("tail: level=ERROR, 10,000 ids back", V + "tail/?" + urlencode({"after": max_id - 10000,
                                                                          "level": "ERROR"})),
        ("tail: logger=api, 1,000 ids back", V + "tail/?" + urlencode({"after": max_id - 1000, "logger": "api"})),
    ]
    times = {name: [] for name, _ in chart_scenarios + page_scenarios}
    bars = {}

    def run_chart(name, kwargs):
        t0 = time.perf_counter()
        data = volume.volume(**kwargs)
        times[name].append((time.perf_counter() - t0) * 1000)
        bars[name] = (data["bucket"], len(data["counts"]))

    def run_page(name, url):
        t0 = time.perf_counter()
        resp = client.get(url)
        times[name].append((time.perf_counter() - t0) * 1000)
        if resp.status_code != 200:
            raise SystemExit(f"chart: {name}: HTTP {resp.status_code} for {url}")
        if "tail" not in url and b'class="bar"' not in resp.content:
            raise SystemExit(f"chart: {name}: no chart on the page")

    for name, kwargs in chart_scenarios:  # warm-up
        run_chart(name, kwargs)
    for name, url in page_scenarios:
        run_page(name, url)
    for values in times.values():
        values.clear()
    for r in range(REPS):
        for name, kwargs in chart_scenarios:
            run_chart(name, kwargs)
        for name, url in page_scenarios:
            run_page(name, url)

    results = {"rows_loaded": rows_loaded, "reps": REPS, "counts_rows": counts_rows, "counts_bytes": counts_bytes,
               "scenarios": {}}
    print()
    print(f"volume chart and follow on {rows_loaded:,} rows, ms (median of {REPS}); counts table "
          f"{sum(counts_rows.values()):,} rows ({counts_rows}), {counts_bytes / 1e6:.1f} MB")
    print(f"{'scenario':<46}{'median':>9}{'p95':>9}  bucket/bars")
    for name, values in times.items():
        med = common.median(values)
        entry = {"median_ms": med, "p95_ms": common.percentile(values, 95), "n": len(values)}
        if name in bars:
            entry["bucket_s"], entry["bars_with_records"] = bars[name]
            entry["target_met"] = med <= TARGET_MS
        results["scenarios"][name] = entry
        extra = "%ds/%d" % bars[name] if name in bars else ""
        print(f"{name:<46}{med:>9.1f}{entry['p95_ms']:>9.1f}  {extra}")
    chart_ok = all(v["target_met"] for v in results["scenarios"].values() if "target_met" in v)
    results["chart_target_met"] = chart_ok
    print(f"chart query <= {TARGET_MS:.0f} ms median for every level/logger/time filter: "
          f"{'met' if chart_ok else 'NOT met'}")
    common.save(f"chart-{os.environ['BENCH_DATASET']}", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
