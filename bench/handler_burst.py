"""(b2) An unpaced burst: N records logged as fast as one thread can, then wait until committed.

Subjects, each run in a process of its own (so that peak memory is the subject's): applogs'
DBLogsHandler with its defaults (the memory queue holds 10,000 records; the rest goes through the
spool), logging.NullHandler (the floor: what logging itself costs), and django-db-logger's
DatabaseLogHandler (an INSERT and commit per record in the caller; on BENCH_BURST_PEER_N records,
as 200,000 of them take minutes). Repetitions alternate the order of applogs and NullHandler.

Per run: records lost (logged and not committed, whether counted in a drop report or not), the
time the producer took, the time until every record was committed, CPU time of the whole process
(caller plus writer thread) per record, peak resident memory above the level before the burst
(the kernel's high-water mark, reset before the burst), and the largest spool size seen.

    python -m bench.handler_burst          # BENCH_BURST_N (200000), BENCH_BURST_REPS (3),
                                           # BENCH_BURST_PEER_N (5000)
"""
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from bench import common, datagen

N = int(os.environ.get("BENCH_BURST_N", "200000"))
REPS = int(os.environ.get("BENCH_BURST_REPS", "3"))
PEER_N = int(os.environ.get("BENCH_BURST_PEER_N", "5000"))


def _unescape(s):
    if "\\" not in s:
        return s
    return s.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r").replace("\\\\", "\\")


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _dir_bytes(path):
    total = 0
    for name in os.listdir(path):
        try:
            total += os.stat(os.path.join(path, name)).st_size
        except OSError:
            pass
    return total


def one(subject, n):
    """One burst in this process; prints a JSON result line."""
    spool_dir = tempfile.mkdtemp(prefix="applogs-bench-burst-")
    os.environ["BENCH_SPOOL_DIR"] = spool_dir
    common.setup_django("scratch")
    from django.db import connections

    conn = connections["applogs" if subject == "applogs" else "default"]
    conn.ensure_connection()
    raw = conn.connection
    table = "applogs_logrecord" if subject == "applogs" else "django_db_logger_statuslog"
    with raw.cursor() as cur:
        cur.execute("TRUNCATE %s" % table)
    raw.commit()

    parent = logging.getLogger("burst")
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    if subject == "applogs":
        from applogs.handlers import DBLogsHandler

        handler = DBLogsHandler()
    elif subject == "django-db-logger":
        from django_db_logger.db_log_handler import DatabaseLogHandler

        handler = DatabaseLogHandler()
    else:
        handler = logging.NullHandler()
    parent.handlers[:] = [handler]
    loggers = {name: logging.getLogger("burst." + name) for name in datagen.LOGGER_NAMES}
    records = [(loggers[r[2]].log, int(r[1]), _unescape(r[6])) for r in datagen.generate(n, seed=4711)]
    if subject == "applogs":  # start the writer and its connection, as in a running portal
        logging.getLogger("burst.warmup").info("warm-up")
        handler.flush(60)
        with raw.cursor() as cur:
            cur.execute("TRUNCATE %s" % table)
        raw.commit()

    rss_before = _rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident size
    except OSError:
        pass
    spool_peak = [0]
    done = threading.Event()

    def watch_spool():
        while not done.wait(0.02):
            spool_peak[0] = max(spool_peak[0], _dir_bytes(spool_dir))

    watcher = threading.Thread(target=watch_spool, daemon=True)
    watcher.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for log, level, msg in records:
        log(level, msg)
    produced = time.perf_counter() - t0
    if subject == "applogs":
        while not handler.flush(600):
            time.sleep(0.1)
    committed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    done.set()
    watcher.join()
    spool_peak[0] = max(spool_peak[0], _dir_bytes(spool_dir))
    peak_kib = _rss_kib("VmHWM")

    dropped = 0
    with raw.cursor() as cur:
        if subject == "applogs":
            cur.execute("SELECT count(*) FROM applogs_logrecord WHERE logger <> 'applogs'")
            stored = cur.fetchone()[0]
            cur.execute("SELECT message FROM applogs_logrecord WHERE logger = 'applogs'")
            for (msg,) in cur.fetchall():
                m = re.search(r"(\d+) log record\(s\) were dropped", msg)
                dropped += int(m.group(1)) if m else 0
        elif subject == "django-db-logger":
            cur.execute("SELECT count(*) FROM django_db_logger_statuslog")
            stored = cur.fetchone()[0]
        else:
            stored = n  # nothing to store: NullHandler keeps nothing and loses nothing
        cur.execute("TRUNCATE %s" % table)
    raw.commit()
    print(json.dumps({
        "subject": subject, "records": n, "stored": stored, "lost": n - stored, "dropped_reported": dropped,
        "producer_s": produced, "until_committed_s": committed, "cpu_us_per_record": cpu / n * 1e6,
        "peak_rss_above_start_mib": (peak_kib - rss_before) / 1024.0, "spool_peak_mib": spool_peak[0] / 2.0 ** 20,
    }))
    sys.stdout.flush()
    os._exit(0)  # the result is out; no exit-time flush to measure


def run_subject(subject, n):
    proc = subprocess.run([sys.executable, "-m", "bench.handler_burst", "--one", subject, str(n)],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        return one(sys.argv[2], int(sys.argv[3]))
    runs = {"applogs": [], "null": [], "django-db-logger": []}
    for rep in range(REPS):
        order = ["applogs", "null"] if rep % 2 == 0 else ["null", "applogs"]
        for subject in order:
            r = run_subject(subject, N)
            runs[subject].append(r)
            print("handler_burst: rep %d/%d %s: lost %d, producer %.2f s, committed after %.2f s, "
                  "CPU %.1f us/record, peak RSS +%.0f MiB, spool peak %.0f MiB" % (
                      rep + 1, REPS, subject, r["lost"], r["producer_s"], r["until_committed_s"],
                      r["cpu_us_per_record"], r["peak_rss_above_start_mib"], r["spool_peak_mib"]), flush=True)
    r = run_subject("django-db-logger", PEER_N)
    runs["django-db-logger"].append(r)
    print("handler_burst: django-db-logger on %d records: lost %d, producer %.2f s, CPU %.1f us/record" % (
        PEER_N, r["lost"], r["producer_s"], r["cpu_us_per_record"]), flush=True)

    keys = ("lost", "producer_s", "until_committed_s", "cpu_us_per_record", "peak_rss_above_start_mib",
            "spool_peak_mib")
    med = {s: {k: common.median([r[k] for r in rs]) for k in keys} for s, rs in runs.items() if rs}
    for s, rs in runs.items():
        med[s]["records"] = rs[0]["records"]
        med[s]["rate_per_s"] = rs[0]["records"] / med[s]["until_committed_s"]
    result = {"rows": N, "reps": REPS, "peer_rows": PEER_N, "runs": runs, "median": med,
              "applogs_lost_total": sum(r["lost"] for r in runs["applogs"])}
    print()
    print("(b2) unpaced burst of %d records (median of %d; django-db-logger: %d records, once)" % (N, REPS, PEER_N))
    print("%-18s%9s%12s%14s%14s%14s%12s" % ("subject", "lost", "producer s", "committed s", "CPU us/rec",
                                             "peak RSS MiB", "spool MiB"))
    for s in ("applogs", "null", "django-db-logger"):
        m = med[s]
        print("%-18s%9d%12.2f%14.2f%14.1f%14.0f%12.0f" % (s, m["lost"], m["producer_s"], m["until_committed_s"],
                                                         m["cpu_us_per_record"], m["peak_rss_above_start_mib"],
                                                         m["spool_peak_mib"]))
    common.save("handler_burst", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
