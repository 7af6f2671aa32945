"""(c) Viewer pages and admin changelists on the loaded data set (10 million rows by default).

Requests go through Django's test Client in-process (the whole stack: middleware, session and
user lookup on the default database, the view, the query on the applogs database, the template),
logged in as a superuser. The scenarios run in rounds, every scenario once per round, so machine
noise spreads over all of them; the peer's changelists, which take seconds, run in the first
BENCH_VIEWER_PEER_REPS rounds only. Reported per scenario: the median and p95 server time of the
request, the median time of its SQL on the log table's database, rows shown, and the plan of the
main query (EXPLAIN (ANALYZE, BUFFERS), run once after the timed rounds).

The page 1,000 pages deep is reached by keyset: the cursor of its predecessor's last row is
computed once in SQL (OFFSET, untimed) and encoded with the viewer's own encode_cursor; the
request for that page is what is timed, and its first row is checked against SQL.

    BENCH_DATASET=rows10000000 python -m bench.viewer   # BENCH_VIEWER_REPS (25), BENCH_VIEWER_PEER_REPS (5)

BENCH_VIEWER_ONE_QUERY=1 adds every viewer page read the way it was before the windows of record
time (one query over the whole table), in the same rounds.
"""
import datetime
import os
import re
import sys
import time
from urllib.parse import urlencode

from bench import common, datagen

REPS = int(os.environ.get("BENCH_VIEWER_REPS", "25"))
PEER_REPS = int(os.environ.get("BENCH_VIEWER_PEER_REPS", "5"))
DEEP_PAGES = int(os.environ.get("BENCH_VIEWER_DEEP_PAGES", "1000"))
TARGET_MS = 50.0
ONE_QUERY = " [one query]"


class SQLTimer:
    """execute_wrapper that records (sql, params, seconds) of each query on one connection."""

    def __init__(self):
        self.queries = []

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((sql, params, time.perf_counter() - t0))


def main():
    os.environ.setdefault("BENCH_DATASET", "rows10000000")
    common.setup_django()
    from django.conf import settings
    from django.db import connections

    from applogs import conf, paginator
    from applogs.paginator import encode_cursor

    logs = connections["applogs"]
    peer_db = connections["default"]
    page_size = int(conf.get("PAGE_SIZE"))
    client = common.superuser_client()

    with logs.cursor() as cur:
        rows_loaded = common.rows_loaded(cur)
        cur.execute("SELECT max(created), min(created) FROM applogs_logrecord")
        newest, oldest = cur.fetchone()
        cur.execute("SELECT max(id) FROM applogs_logrecord")
        max_id = cur.fetchone()[0]
        # A request id from the middle of the table.
        cur.execute("SELECT request_id FROM applogs_logrecord WHERE id >= %s AND request_id <> '' "
                    "ORDER BY id LIMIT 1", [max_id // 2])
        request_id = cur.fetchone()[0]
        cur.execute("SELECT \"user\" FROM applogs_logrecord WHERE id >= %s AND \"user\" <> '' "
                    "ORDER BY id LIMIT 1", [max_id // 3])
        some_user = cur.fetchone()[0]
        # Page DEEP_PAGES: its predecessor's last row is at offset (DEEP_PAGES - 1) * page_size - 1.
        cur.execute("SELECT created, id FROM applogs_logrecord ORDER BY created DESC, id DESC "
                    "OFFSET %s LIMIT 2", [(DEEP_PAGES - 1) * page_size - 1])
        (deep_c, deep_i), (deep_first_c, deep_first_id) = cur.fetchall()
    deep_cursor = encode_cursor(deep_c, deep_i)

    end = newest.replace(hour=0, minute=0, second=0, microsecond=0)
    since = common.form_time(end - datetime.timedelta(days=7))
    until = common.form_time(end - datetime.timedelta(days=1))
    V = "/applogs/"

    def q(**params):
        return V + "?" + urlencode(params, doseq=True)

    # (name, url, kind) kind: viewer | applogs-admin | peer-admin
    scenarios = [
        ("first page", V, "viewer"),
        (f"page {DEEP_PAGES} (keyset cursor)", q(after=deep_cursor), "viewer"),
        ("level=ERROR, 6-day range", q(level="ERROR", since=since, until=until), "viewer"),
        ("level>=WARNING (3 levels), 6-day range",
         q(level=["WARNING", "ERROR", "CRITICAL"], since=since, until=until), "viewer"),
        ("level=CRITICAL, whole table", q(level="CRITICAL"), "viewer"),
        ("logger=api (prefix, common)", q(logger="api"), "viewer"),
        ("logger=remote_service.payroll (leaf)", q(logger="remote_service.payroll"), "viewer"),
        ("logger=django.security (rare)", q(logger="django.security"), "viewer"),
        (f"q={datagen.COMMON_TERM} (common word)", q(q=datagen.COMMON_TERM), "viewer"),
        (f"q={datagen.NEEDLE_TOKEN} (3 rows in the table)", q(q=datagen.NEEDLE_TOKEN), "viewer"),
        ("request_id", q(request_id=request_id), "viewer"),
        ("user (extra: not one of the targets)", q(user=some_user), "viewer"),
        ("applogs admin: first page", "/admin/applogs/logrecord/", "applogs-admin"),
        ("applogs admin: level=ERROR", "/admin/applogs/logrecord/?level__exact=40", "applogs-admin"),
        ("applogs admin: search timeout", "/admin/applogs/logrecord/?q=timeout", "applogs-admin"),
        ("peer admin: first page", "/admin/django_db_logger/statuslog/", "peer-admin"),
        ("peer admin: level=ERROR", "/admin/django_db_logger/statuslog/?level__exact=40", "peer-admin"),
        ("peer admin + search_fields=msg: search timeout", "/peeradmin/django_db_logger/statuslog/?q=timeout",
         "peer-admin"),
    ]
    only = os.environ.get("BENCH_VIEWER_ONLY")
    if only:
        scenarios = [s for s in scenarios if re.search(only, s[0])]
    if os.environ.get("BENCH_VIEWER_ONE_QUERY") == "1":
        # Side by side in the same rounds: each viewer page also read as one query over the
        # whole table, without the windows of record time (paginator.WINDOW_DAYS = ()).
        scenarios += [(name + ONE_QUERY, url, kind) for name, url, kind in scenarios if kind == "viewer"]

    timers = {"applogs": SQLTimer(), "default": SQLTimer()}
    stats = {name: {"url": url, "kind": kind, "ms": [], "cpu_ms": [], "sql_ms": [], "rows": None, "sql": None}
             for name, url, kind in scenarios}

    def request(name, url, kind):
        windows = paginator.WINDOW_DAYS
        if name.endswith(ONE_QUERY):
            paginator.WINDOW_DAYS = ()
        try:
            return timed_request(name, url, kind)
        finally:
            paginator.WINDOW_DAYS = windows

    def timed_request(name, url, kind):
        alias = "default" if kind == "peer-admin" else "applogs"
        timer = timers[alias]
        timer.queries = []
        with logs.execute_wrapper(timers["applogs"]), peer_db.execute_wrapper(timers["default"]):
            timers["applogs"].queries = []
            timers["default"].queries = []
            c0 = time.process_time()
            t0 = time.perf_counter()
            resp = client.get(url)
            ms = (time.perf_counter() - t0) * 1000
            cpu_ms = (time.process_time() - c0) * 1000
        if resp.status_code != 200:
            raise SystemExit(f"viewer: {name}: HTTP {resp.status_code} for {url}")
        table = "django_db_logger_statuslog" if kind == "peer-admin" else "applogs_logrecord"
        qs = [x for x in timer.queries if table in x[0]]
        s = stats[name]
        s["ms"].append(ms)
        s["cpu_ms"].append(cpu_ms)
        s["sql_ms"].append(sum(x[2] for x in qs) * 1000)
        s["queries"] = len(qs)
        if s["sql"] is None and qs:
            # The main query: the one that selects the page (the slowest on the table).
            main_q = max(qs, key=lambda x: x[2])
            s["sql"] = (main_q[0], main_q[1])
            s["all_sql"] = [x[0] for x in qs]
        body = resp.content.decode()
        if kind == "viewer":
            ids = re.findall(r'data-id="(\d+)"', body)
        else:
            ids = re.findall(r'name="_selected_action" value="(\d+)"', body) or re.findall(
                r'<tr[^>]*>\s*<t[dh] class="field-', body)
        s["rows"] = len(ids)
        if name.startswith(f"page {DEEP_PAGES}") and ids and int(ids[0]) != deep_first_id:
            raise SystemExit(f"viewer: deep page starts at id {ids[0]}, SQL says {deep_first_id}")
        return ms

    # Warm-up: one request each (plans, caches; the peer's pages once).
    for name, url, kind in scenarios:
        request(name, url, kind)
    for s in stats.values():
        s["ms"].clear()
        s["cpu_ms"].clear()
        s["sql_ms"].clear()

    t_start = time.time()
    for r in range(REPS):
        order = scenarios[r % len(scenarios):] + scenarios[:r % len(scenarios)]
        for name, url, kind in order:
            if kind == "peer-admin" and r >= PEER_REPS:
                continue
            request(name, url, kind)
        print(f"viewer: round {r + 1}/{REPS} done ({time.time() - t_start:.0f} s)", flush=True)

    # Plans of the main queries (untimed).
    for name, s in stats.items():
        if not s["sql"]:
            continue
        conn = peer_db if s["kind"] == "peer-admin" else logs
        sql, params = s["sql"]
        with conn.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = [x[0] for x in cur.fetchall()]
        s["plan"] = plan

    results = {"rows_loaded": rows_loaded, "page_size": page_size, "reps": REPS, "peer_reps": PEER_REPS,
               "peer_list_per_page": getattr(settings, "DJANGO_DB_LOGGER_ADMIN_LIST_PER_PAGE", 10),
               "newest": newest, "oldest": oldest, "scenarios": {}}
    print()
    print(f"(c) viewer and admin on {rows_loaded:,} rows: server time per request, ms "
          f"(median of {REPS}; peer admin median of {PEER_REPS})")
    print(f"{'scenario':<50}{'median':>9}{'p95':>9}{'SQL':>9}{'Py CPU':>9}{'rows':>6}  verdict")
    for name, s in stats.items():
        if not s["ms"]:
            continue
        med = common.median(s["ms"])
        entry = {
            "url": s["url"], "kind": s["kind"], "n": len(s["ms"]), "median_ms": med,
            "p95_ms": common.percentile(s["ms"], 95), "min_ms": min(s["ms"]), "max_ms": max(s["ms"]),
            "sql_median_ms": common.median(s["sql_ms"]), "cpu_median_ms": common.median(s["cpu_ms"]), "rows": s["rows"], "queries": s.get("queries"),
            "sql": s["sql"][0] if s["sql"] else None, "params": s["sql"][1] if s["sql"] else None,
            "all_sql": s.get("all_sql"), "plan": s.get("plan"),
        }
        if s["kind"] == "viewer":
            entry["target_met"] = med <= TARGET_MS
        results["scenarios"][name] = entry
        verdict = ("met" if entry["target_met"] else "NOT met") if "target_met" in entry else ""
        print(f"{name[:49]:<50}{med:>9.1f}{entry['p95_ms']:>9.1f}{entry['sql_median_ms']:>9.1f}"
              f"{entry['cpu_median_ms']:>9.1f}{s['rows']:>6}  {verdict}")
    sc = results["scenarios"]
    pairs = [("first page", "applogs admin: first page", "peer admin: first page"),
             ("level=ERROR", "applogs admin: level=ERROR", "peer admin: level=ERROR"),
             ("search", "applogs admin: search timeout", "peer admin + search_fields=msg: search timeout")]
    results["admin_ratios"] = {}
    for label, a, p in pairs:
        if a in sc and p in sc:
            ratio = sc[p]["median_ms"] / sc[a]["median_ms"]
            results["admin_ratios"][label] = ratio
            print(f"admin {label}: django-db-logger {sc[p]['median_ms']:.0f} ms / applogs "
                  f"{sc[a]['median_ms']:.1f} ms = {ratio:.0f}x")
    viewer = [v for k, v in sc.items() if v["kind"] == "viewer" and "(extra" not in k and ONE_QUERY not in k]
    results["all_viewer_pages_met"] = all(v["target_met"] for v in viewer)
    print(f"every viewer page <= {TARGET_MS:.0f} ms median: "
          f"{'met' if results['all_viewer_pages_met'] else 'NOT met'}")
    print()
    for name, v in sc.items():
        if v.get("plan"):
            top = [line for line in v["plan"] if "Scan" in line or "Sort" in line][:3]
            exe = [line for line in v["plan"] if line.startswith("Execution Time")]
            print(f"plan {name}: {' | '.join(x.strip() for x in top)} | {exe[0] if exe else ''}")
    common.save(f"viewer-{os.environ['BENCH_DATASET']}", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
