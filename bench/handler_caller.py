"""(a) Caller-thread cost of logger.info() per call.

Four loggers, one handler each: logging.NullHandler (the floor: the cost of logging itself),
applogs.handlers.DBLogsHandler bare, the same with the RequestContextFilter (as the role
configures the `db` handler in a portal; outside a request here), and the peer
django_db_logger.db_log_handler.DatabaseLogHandler (an INSERT per record, on the default database,
as the peer is meant to be used). Each call is timed on its own with perf_counter_ns; the subjects
run in rounds, the order rotating each round, so machine noise hits all of them alike. The targets
are judged on the bare DBLogsHandler. Between batches the DBLogsHandler writers are flushed
(untimed): a batch is kept below the queue bound so the measured path is the normal one (enqueue),
not the queue-full drop path. The writer thread runs concurrently with the timed calls and
competes for the GIL, which is part of the real cost.

    python -m bench.handler_caller            # BENCH_CALLER_ROUNDS, BENCH_CALLER_N, BENCH_CALLER_PEER_N
"""
import gc
import logging
import os
import sys
import time

from bench import common

ROUNDS = int(os.environ.get("BENCH_CALLER_ROUNDS", "9"))
N = int(os.environ.get("BENCH_CALLER_N", "4000"))  # calls per batch (null, applogs)
PEER_N = int(os.environ.get("BENCH_CALLER_PEER_N", "400"))  # calls per batch (peer: an INSERT each)


def flush_applogs(handler, timeout=120.0):
    """Wait until everything the DBLogsHandler queued is committed."""
    try:
        ok = handler.flush(timeout=timeout)
    except TypeError:
        from applogs import writer

        ok = all(w.flush(timeout) for w in writer.all_writers())
    return ok is not False


def timer_overhead():
    pc = common.perf_counter_ns
    samples = []
    for _ in range(20000):
        t0 = pc()
        t1 = pc()
        samples.append(t1 - t0)
    return common.median(samples)


def run_batch(logger, n, samples):
    pc = common.perf_counter_ns
    info = logger.info
    append = samples.append
    for i in range(n):
        t0 = pc()
        info("Order %s synced with %d items for store %d", i, 7, 12)
        t1 = pc()
        append(t1 - t0)


def main():
    common.setup_django("scratch")
    from django.db import connections
    from django_db_logger.db_log_handler import DatabaseLogHandler
    from django_db_logger.models import StatusLog

    from applogs.handlers import DBLogsHandler
    from applogs.models import LogRecord

    LogRecord.objects.all().delete()
    StatusLog.objects.all().delete()

    def make(name, handler):
        lg = logging.getLogger("bench.caller." + name)
        lg.handlers[:] = [handler]
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
        return lg

    from applogs.filters import RequestContextFilter

    applogs_handler = DBLogsHandler()
    # As the role configures it in a portal: the `db` handler with the RequestContextFilter.
    filtered = DBLogsHandler()
    filtered.addFilter(RequestContextFilter())
    subjects = {
        "null": (make("null", logging.NullHandler()), N),
        "applogs": (make("applogs", applogs_handler), N),
        "applogs+filter": (make("applogs_filter", filtered), N),
        "django-db-logger": (make("peer", DatabaseLogHandler()), PEER_N),
    }
    samples = {k: [] for k in subjects}
    per_round_p50 = {k: [] for k in subjects}

    # Warm-up: connections, the writer thread, code paths.
    for name, (lg, n) in subjects.items():
        run_batch(lg, min(n, 200), [])
    flush_applogs(applogs_handler)
    flush_applogs(filtered)

    overhead = timer_overhead()
    names = list(subjects)
    t_start = time.time()
    for r in range(ROUNDS):
        k = r % len(names)
        order = names[k:] + names[:k]
        for name in order:
            lg, n = subjects[name]
            s = []
            gc.collect()
            run_batch(lg, n, s)
            samples[name].extend(s)
            per_round_p50[name].append(common.median(s) / 1000)
            # Untimed: let the writer commit, for every subject alike.
            flush_applogs(applogs_handler)
            flush_applogs(filtered)
        print(f"handler_caller: round {r + 1}/{ROUNDS}: "
              + ", ".join(f"{k} p50 {per_round_p50[k][-1]:.2f} us" for k in names), flush=True)
    elapsed = time.time() - t_start

    expected = 2 * (ROUNDS * N + min(N, 200))
    stored = LogRecord.objects.count()
    result = {"rounds": ROUNDS, "calls_per_batch": {k: v[1] for k, v in subjects.items()},
              "timer_overhead_ns": overhead, "elapsed_s": round(elapsed, 1),
              "applogs_rows_expected": expected, "applogs_rows_stored": stored,
              "peer_rows_stored": StatusLog.objects.count(), "subjects": {}}
    for name in names:
        s = samples[name]
        result["subjects"][name] = {
            "calls": len(s),
            "p50_us": common.percentile(s, 50) / 1000,
            "p95_us": common.percentile(s, 95) / 1000,
            "p99_us": common.percentile(s, 99) / 1000,
            "mean_us": sum(s) / len(s) / 1000,
            "round_p50_min_us": min(per_round_p50[name]),
            "round_p50_max_us": max(per_round_p50[name]),
        }
    a = result["subjects"]["applogs"]
    p = result["subjects"]["django-db-logger"]
    z = result["subjects"]["null"]
    result["ratio_peer_over_applogs_p50"] = p["p50_us"] / a["p50_us"]
    result["ratio_peer_over_applogs_p95"] = p["p95_us"] / a["p95_us"]
    result["applogs_over_null_p50"] = a["p50_us"] / z["p50_us"]
    result["target_p50_le_10us"] = a["p50_us"] <= 10
    result["target_50x_cheaper"] = result["ratio_peer_over_applogs_p50"] >= 50

    print()
    print(f"(a) caller cost of logger.info() per call, {ROUNDS} rounds, timer overhead {overhead} ns included")
    print(f"{'handler':<18}{'calls':>8}{'p50 us':>10}{'p95 us':>10}{'p99 us':>10}{'round p50 range':>22}")
    for name in names:
        s = result["subjects"][name]
        print(f"{name:<18}{s['calls']:>8}{s['p50_us']:>10.2f}{s['p95_us']:>10.2f}{s['p99_us']:>10.2f}"
              f"{s['round_p50_min_us']:>11.2f} - {s['round_p50_max_us']:.2f}")
    print(f"django-db-logger / applogs: p50 {result['ratio_peer_over_applogs_p50']:.0f}x, "
          f"p95 {result['ratio_peer_over_applogs_p95']:.0f}x; applogs / NullHandler p50 "
          f"{result['applogs_over_null_p50']:.1f}x")
    print(f"target p50 <= 10 us: {'met' if result['target_p50_le_10us'] else 'NOT met'}; "
          f">= 50x cheaper than django-db-logger: {'met' if result['target_50x_cheaper'] else 'NOT met'}")
    print(f"rows stored by DBLogsHandler: {stored} of {expected}")
    common.save("handler_caller", result)
    for c in connections.all():
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
