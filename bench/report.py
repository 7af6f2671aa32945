"""Markdown tables of the last results in .cache/bench-results (what docs/benchmarks.md quotes)."""
import json
import os
import sys

from bench import common


def load(name):
    path = os.path.join(common.RESULTS_DIR, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def verdict(ok):
    return "**met**" if ok else "**not met**"


def verdicts(a, b, c, bb=None):
    rows = []
    if a:
        s = a["subjects"]["applogs"]
        rows.append(f"| handler: caller p50 ≤ 10 µs | DBLogsHandler p50 {s['p50_us']:.2f} µs (NullHandler "
                    f"{a['subjects']['null']['p50_us']:.2f} µs) | {verdict(a['target_p50_le_10us'])} |")
        if "amortised_us" in s:
            rows.append(f"| caller + writer CPU per record (amortised) ≤ 15 µs | {s['amortised_us']:.2f} µs "
                        f"(NullHandler {a['subjects']['null']['amortised_us']:.2f} µs, django-db-logger "
                        f"{a['subjects']['django-db-logger']['amortised_us']:.0f} µs) | "
                        f"{verdict(s['amortised_us'] <= 15)} |")
        rows.append(f"| handler: caller ≥ 50× cheaper than django-db-logger | {a['ratio_peer_over_applogs_p50']:.0f}× at p50 "
                    f"({a['subjects']['django-db-logger']['p50_us']:.0f} µs vs {s['p50_us']:.2f} µs) | "
                    f"{verdict(a['target_50x_cheaper'])} |")
    if b:
        med = b["median"]
        text = f"{med['as migrated']['ratio']:.0%} of raw COPY with the table as migrated"
        if "without trigram index" in med:
            w = med["without trigram index"]
            text += (f"; {w['ratio']:.0%} without the trigram index of 0003 "
                     f"({verdict(w['ratio'] >= 0.5).replace('**', '')} there)")
        rows.append(f"| handler: sustained ingest ≥ 50% of raw COPY | {text} | {verdict(b['target_ge_50pct_of_copy'])} "
                    f"(see (b)) |")
    if bb:
        m = bb["median"]["applogs"]
        rows.append(f"| unpaced burst of {bb['rows']:,}: 0 records lost | {bb['applogs_lost_total']} lost in "
                    f"{bb['reps']} runs; all committed after {m['until_committed_s']:.1f} s (producer "
                    f"{m['producer_s']:.1f} s), peak RSS +{m['peak_rss_above_start_mib']:.0f} MiB, spool peak "
                    f"{m['spool_peak_mib']:.0f} MiB | {verdict(bb['applogs_lost_total'] == 0)} |")
    if c:
        viewer = {k: v for k, v in c["scenarios"].items() if v["kind"] == "viewer" and "(extra" not in k}
        met = [k for k, v in viewer.items() if v["target_met"]]
        worst = max(viewer.items(), key=lambda kv: kv[1]["median_ms"])
        est = max(v["cpu_median_ms"] + v["sql_median_ms"] for v in viewer.values())
        rows.append(f"| viewer: every page ≤ 50 ms median | {len(met)} of {len(viewer)} pages; worst "
                    f"{worst[0]} {worst[1]['median_ms']:.0f} ms; CPU + SQL (an idle machine's estimate) at most "
                    f"{est:.0f} ms | "
                    f"{verdict(c['all_viewer_pages_met'])} |")
        r = c.get("admin_ratios", {})
        if r:
            rows.append("| viewer: admin changelist vs django-db-logger (no target) | "
                        + ", ".join(f"{k}: {v:.0f}× faster" for k, v in r.items()) + " | – |")
    return rows


def main():
    dataset = os.environ.get("BENCH_DATASET", "rows10000000")
    out = []
    a = load("handler_caller")
    if a:
        m = a["machine"]
        out.append(f"Run of {a['finished_at'][:10]} at commit {m.get('git', '?')} (plus the working tree), "
                   f"data set {dataset}.")
        out.append("")
        out.append(f"Machine: {m.get('cpu', '?')}, {m.get('cpus')} cores, {m.get('mem_gib')} GiB; Python "
                   f"{m.get('python')}, Django {m.get('django')}, PostgreSQL {m.get('postgresql')}, "
                   f"django-db-logger {m.get('django_db_logger')}, django-applogs {m.get('django_applogs')}; "
                   f"load average 1/5/15 min at the end of (a) {tuple(round(x, 1) for x in m.get('loadavg_start', ()))}.")
        out.append("")
        out.append(f"### (a) Caller-thread cost of `logger.info()` ({a['finished_at']})")
        out.append("")
        out.append(f"{a['rounds']} rounds, handlers alternating; per call, timer overhead "
                   f"({a['timer_overhead_ns']:.0f} ns) included.")
        out.append("")
        out.append("| handler | calls | p50 µs | p95 µs | p99 µs | per-round p50 range µs | amortised µs/record |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, s in a["subjects"].items():
            label = {"null": "logging.NullHandler (floor)", "applogs": "applogs DBLogsHandler",
                     "applogs+filter": "applogs DBLogsHandler + RequestContextFilter (as in a portal)",
                     "django-db-logger": "django-db-logger DatabaseLogHandler"}[name]
            am = f"{s['amortised_us']:.2f}" if "amortised_us" in s else "–"
            out.append(f"| {label} | {s['calls']} | {s['p50_us']:.2f} | {s['p95_us']:.2f} | {s['p99_us']:.2f} | "
                       f"{s['round_p50_min_us']:.2f}–{s['round_p50_max_us']:.2f} | {am} |")
        out.append("")
        out.append(f"- django-db-logger / DBLogsHandler: **{a['ratio_peer_over_applogs_p50']:.0f}×** at p50, "
                   f"{a['ratio_peer_over_applogs_p95']:.0f}× at p95; DBLogsHandler / NullHandler: "
                   f"{a['applogs_over_null_p50']:.1f}× at p50.")
        out.append(f"- Target p50 ≤ 10 µs: {verdict(a['target_p50_le_10us'])}. "
                   f"Target ≥ 50× cheaper than django-db-logger: {verdict(a['target_50x_cheaper'])}.")
        out.append(f"- Rows committed by DBLogsHandler: {a['applogs_rows_stored']} of {a['applogs_rows_expected']}.")
        out.append("")
    b = load("handler_ingest")
    if b:
        med = b["median"]
        variants = b["variants"]
        la = tuple(round(x, 1) for x in b["machine"].get("loadavg_start", ()))
        out.append(f"### (b) Sustained ingest ({b['finished_at']}, load average 1/5/15 min at its end {la})")
        out.append("")
        out.append(f"{b['rows']:,} records per repetition, median of {b['reps']} repetitions; writer defaults: queue "
                   f"{b['queue_size']}, batch {b['batch_size']}, flush interval {b['flush_interval']} s. "
                   f"Variants alternate within each repetition.")
        out.append("")
        out.append("| rows/s (median) | " + " | ".join(f"table {v}" for v in variants) + " |")
        out.append("|---|" + "---:|" * len(variants))
        for label, k in (("DBLogsHandler, logger call → committed", "handler_rps"),
                         ("raw COPY, one statement (the limit)", "copy_rps"),
                         (f"raw COPY, {b['batch_size']}-row statements, autocommit", "copy_batched_rps")):
            out.append(f"| {label} | " + " | ".join(f"{med[v][k]:,.0f}" for v in variants) + " |")
        def ratios(v):
            return ", ".join("%.0f%%" % (100 * r["ratio"]) for r in b["runs"][v])

        out.append("| **DBLogsHandler / raw COPY** (per repetition) | " + " | ".join(
            "**%.0f%%** (%s)" % (100 * med[v]["ratio"], ratios(v)) for v in variants) + " |")
        out.append("")
        out.append(f"- Target ≥ 50% of raw COPY (table as migrated): {verdict(b['target_ge_50pct_of_copy'])}.")
        out.append(f"- Every row committed in every repetition: {b['all_rows_landed']}.")
        out.append("")
    bb = load("handler_burst")
    if bb:
        la = tuple(round(x, 1) for x in bb["machine"].get("loadavg_start", ()))
        out.append(f"### (b2) Unpaced burst ({bb['finished_at']}, load average 1/5/15 min at its end {la})")
        out.append("")
        out.append(f"{bb['rows']:,} records logged from one thread without pause, each subject in a process of "
                   f"its own; median of {bb['reps']} (django-db-logger: {bb['peer_rows']:,} records, once: an "
                   f"INSERT and commit per record). Handler defaults.")
        out.append("")
        out.append("| subject | records | lost | producer s | until all committed s | records/s | CPU µs/record "
                   "| peak RSS above start MiB | spool peak MiB |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        labels = {"applogs": "applogs DBLogsHandler", "null": "logging.NullHandler (floor)",
                  "django-db-logger": "django-db-logger DatabaseLogHandler"}
        for name, m in bb["median"].items():
            out.append(f"| {labels[name]} | {m['records']:,} | {m['lost']:.0f} | {m['producer_s']:.2f} | "
                       f"{m['until_committed_s']:.2f} | {m['rate_per_s']:,.0f} | {m['cpu_us_per_record']:.1f} | "
                       f"{m['peak_rss_above_start_mib']:.0f} | {m['spool_peak_mib']:.0f} |")
        out.append("")
        out.append(f"- applogs records lost over all repetitions: {bb['applogs_lost_total']}.")
        out.append("")
    c = load(f"viewer-{dataset}")
    if c:
        la = tuple(round(x, 1) for x in c["machine"].get("loadavg_start", ()))
        out.append(f"### (c) Viewer and admin on {c['rows_loaded']:,} rows ({c['finished_at']}, load average 1/5/15 min at its end {la})")
        out.append("")
        out.append(f"Server time per request through the test Client (whole Django stack, logged-in superuser), "
                   f"median of {c['reps']} (peer admin: {c['peer_reps']}); page size {c['page_size']} "
                   f"(viewer, both admins). *min* = the fastest repetition, the closest to what an idle "
                   f"machine would show; *SQL* = time of the log table's queries in the request (median); "
                   f"*CPU* = CPU time of the Django process for the request (median).")
        out.append("")
        out.append("| page | median ms | p95 ms | min ms | SQL ms | CPU ms | rows | ≤ 50 ms (median) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, s in c["scenarios"].items():
            mark = ("met" if s["target_met"] else "**not met**") if "target_met" in s else "–"
            out.append(f"| {name} | {s['median_ms']:.1f} | {s['p95_ms']:.1f} | {s['min_ms']:.1f} | "
                       f"{s['sql_median_ms']:.1f} | "
                       f"{s['cpu_median_ms']:.1f} | {s['rows']} | {mark} |")
        out.append("")
        for label, ratio in c.get("admin_ratios", {}).items():
            out.append(f"- Admin changelist, {label}: django-db-logger / applogs = **{ratio:.0f}×**.")
        out.append(f"- Every viewer page ≤ 50 ms median: {verdict(c['all_viewer_pages_met'])}.")
        out.append("")
        out.append("<details><summary>Plans of the main queries (EXPLAIN ANALYZE, after the timed rounds)</summary>")
        out.append("")
        for name, s in c["scenarios"].items():
            if s.get("plan"):
                out.append(f"**{name}**")
                out.append("```")
                out.extend(s["plan"])
                out.append("```")
        out.append("</details>")
    results = "\n".join(out)
    v = "\n".join(verdicts(a, b, c, bb))
    print("| target | measured (median) | verdict |\n|---|---|---|\n" + v + "\n")
    print(results)
    doc = os.path.join(common.ROOT, "docs", "benchmarks.md")
    if os.environ.get("BENCH_UPDATE_DOC") == "1" and os.path.exists(doc):
        # Replace the generated blocks of docs/benchmarks.md; the prose around them is written by hand.
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        for name, body in (("verdicts", v), ("results", results)):
            begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
            if begin in text and end in text:
                head, rest = text.split(begin, 1)
                _, tail = rest.split(end, 1)
                text = head + begin + "\n" + body + "\n" + end + tail
        with open(doc, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"report: updated {os.path.relpath(doc, common.ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
