"""Deterministic, realistic log rows for the benchmarks.

One generator feeds both tables (applogs_logrecord and the peer's django_db_logger_statuslog) and
the ingest benchmark, so every side sees the same logical rows:

- levels mostly INFO/DEBUG, some WARNING, few ERROR/CRITICAL (django.db.backends is all DEBUG;
  overall about DEBUG 33%, INFO 55%, WARNING 7.6%, ERROR 3.4%, CRITICAL 0.4%);
- 30 logger names with dotted children (api, api.orders, api.orders.sync, ...), Zipf-like weights,
  one rare one (django.security);
- work arrives in units: a request (a 32-hex request id shared by 1-12 rows, one ip and user) or a
  background job (command.*, celery.*: no request id);
- messages of varied length: mostly 40-120 characters, some payload dumps of 0.3-1.5 kB, a few of
  2-8 kB; tracebacks on a share of ERROR/CRITICAL rows;
- timestamps non-decreasing over 90 days, with runs of equal timestamps inside requests;
- search targets: the word "timeout" in about 1% of rows, and the token NEEDLE_TOKEN in exactly three
  rows (early, middle, late) -- the worst case for a newest-first text search.

Rows come out as tuples of strings already escaped for COPY's text format (the only characters that
need escaping, in tracebacks and payloads, are escaped once when the pools are built).
"""
import json
import random
import time as _time

START_EPOCH = 1785542400  # 2026-08-01 00:00:00 UTC
SPAN_DAYS = 90
NEEDLE_TOKEN = "ZX-NEEDLE-4711"
COMMON_TERM = "timeout"

APPLOGS_COLUMNS = (
    "created", "level", "logger", "module", "func", "lineno", "message", "traceback", "ip", "user",
    "request_id", "host", "process", "extra",
)
PEER_COLUMNS = ("logger_name", "level", "msg", "trace", "create_datetime")

# (name, weight, bound to a request)
LOGGERS = [
    ("api", 8, True), ("api.orders", 10, True), ("api.orders.sync", 4, True), ("api.auth", 6, True),
    ("api.reports", 3, True), ("api.schedule", 7, True), ("api.schedule.publish", 2, True),
    ("api.employees", 5, True), ("api.timesheets", 5, True),
    ("remote_service", 4, True), ("remote_service.sms", 3, True), ("remote_service.mail", 2, True),
    ("remote_service.payroll", 1.5, True), ("remote_service.hr", 1.5, True),
    ("django.request", 3, True), ("django.db.backends", 6, True), ("django.security", 0.05, True),
    ("wfm.schedule", 5, True), ("wfm.schedule.solver", 3, True), ("wfm.forecast", 2, True),
    ("wfm.notifications", 3, True), ("wfm.auth", 2, True),
    ("command", 2, False), ("command.purge", 0.3, False), ("command.import_shifts", 1, False),
    ("command.sync_employees", 1, False), ("celery.task", 4, False), ("celery.worker", 1, False),
    ("django.server", 1, False), ("py.warnings", 0.2, False),
]
LOGGER_NAMES = [name for name, _, _ in LOGGERS]

# Cumulative level thresholds: DEBUG 30%, INFO 58%, WARNING 8%, ERROR 3.6%, CRITICAL 0.4%.
LEVELS = ((0.30, 10), (0.88, 20), (0.96, 30), (0.996, 40), (1.0, 50))
FUNCS = ["get", "post", "dispatch", "handle", "run", "sync", "publish", "send", "process", "validate",
         "build", "execute", "_call", "retry", "save"]
SERVICES = ["payroll", "hr-core", "sms-gw", "smtp", "1c-exchange", "ldap", "geo", "billing"]
PATHS = ["/api/v1/orders/", "/api/v1/schedule/", "/api/v1/employees/", "/api/v1/timesheets/",
         "/api/v1/reports/daily/", "/api/v1/auth/token/", "/api/v1/shifts/publish/", "/portal/home/"]
WORDS = ("shift employee store week forecast demand plan slot break overtime approve reject manager "
         "request swap vacation sick absence template export import position department region "
         "budget hours rate target").split()


def _escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _tracebacks(rnd):
    out = []
    for i in range(8):
        frames = []
        for j in range(rnd.randint(3, 14)):
            mod = rnd.choice(["wfm/api/views.py", "wfm/schedule/solver.py", "django/core/handlers/base.py",
                              "django/db/backends/utils.py", "requests/adapters.py", "wfm/remote/client.py"])
            frames.append(f'  File "/opt/portal/{mod}", line {rnd.randint(10, 2000)}, in '
                          f'{rnd.choice(FUNCS)}\n    {rnd.choice(WORDS)} = self.{rnd.choice(FUNCS)}'
                          f'({rnd.choice(WORDS)}, {rnd.choice(WORDS)}={rnd.randint(0, 99)})\n')
        exc = rnd.choice(["ConnectionError: HTTPSConnectionPool(host='payroll', port=443): Read timed out.",
                          "KeyError: 'employee_id'", "ValueError: invalid literal for int() with base 10: 'x'",
                          "django.db.utils.OperationalError: could not serialize access",
                          "TimeoutError: remote service did not answer in 30 s"])
        out.append(_escape("Traceback (most recent call last):\n" + "".join(frames) + exc))
    return out


def _payloads(rnd, n, lo, hi):
    out = []
    for _ in range(n):
        items = []
        size = rnd.randint(lo, hi)
        while sum(len(x) for x in items) < size:
            items.append(json.dumps({"id": rnd.randint(1, 10**6), "name": rnd.choice(WORDS),
                                     "note": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 12)))},
                                    ensure_ascii=False))
        out.append(_escape(("[" + ", ".join(items) + "]")[:size]))
    return out


def generate(n, seed=20261127, start_epoch=START_EPOCH):
    """Yield n rows as tuples in APPLOGS_COLUMNS order, COPY-text-escaped, oldest first.

    The rows span SPAN_DAYS from start_epoch (seconds); only their times depend on it.
    """
    rnd = random.Random(seed)
    rr = rnd.random
    ri = rnd.randint
    ch = rnd.choice
    expo = rnd.expovariate
    gb = rnd.getrandbits

    req_loggers = [(nm, w) for nm, w, bound in LOGGERS if bound]
    job_loggers = [(nm, w) for nm, w, bound in LOGGERS if not bound]

    def cum(pairs):
        total = sum(w for _, w in pairs)
        acc, out = 0.0, []
        for nm, w in pairs:
            acc += w / total
            out.append((acc, nm))
        return out

    req_cum, job_cum = cum(req_loggers), cum(job_loggers)

    def pick(cumlist):
        x = rr()
        for c, nm in cumlist:
            if x <= c:
                return nm
        return cumlist[-1][1]

    tracebacks = _tracebacks(rnd)
    mid_payloads = _payloads(rnd, 64, 300, 1500)
    big_payloads = _payloads(rnd, 16, 2000, 8000)
    users = ["--"] + [f"{ch(['ivanov', 'petrova', 'smith', 'kim', 'garcia', 'nowak', 'sidorov'])}.{i}"
                      for i in range(500)]
    ips = [f"10.{ri(0, 40)}.{ri(0, 255)}.{ri(1, 254)}" for _ in range(2000)]
    hosts = ["portal-app-1", "portal-app-2", "portal-app-3"]
    procs = {h: [str(ri(1000, 60000)) for _ in range(8)] for h in hosts}
    needle_at = {n // 7, n // 2, n - n // 10}

    mean_gap_us = SPAN_DAYS * 86400e6 / max(n, 1)
    t = start_epoch * 1_000_000
    last_sec, prefix = None, ""
    remaining = 0
    rid = ip = user = host = proc = ""
    bound = False
    for i in range(n):
        if remaining == 0:
            bound = rr() < 0.7
            if bound:
                remaining = 1 + min(int(expo(1 / 2.5)), 11)
                rid = "%032x" % gb(128)
                ip = ch(ips)
                user = ch(users) if rr() < 0.9 else "--"
            else:
                remaining = ri(1, 5)
                rid = ip = user = ""
            host = ch(hosts)
            proc = ch(procs[host])
            # The unit starts after a gap; rows inside it follow closely, sometimes at the same instant.
            t += int(expo(1 / (mean_gap_us * remaining)))
        else:
            if rr() >= 0.3:
                t += ri(0, 3000)
        remaining -= 1

        sec = t // 1_000_000
        if sec != last_sec:
            last_sec = sec
            prefix = _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(sec))
        created = f"{prefix}.{t % 1_000_000:06d}+00"

        logger = pick(req_cum) if bound else pick(job_cum)
        if logger == "django.db.backends":
            level = 10
        else:
            x = rr()
            level = 50
            for c, lv in LEVELS:
                if x <= c:
                    level = lv
                    break

        fam = logger.split(".", 1)[0]
        x = rr()
        if fam == "api":
            if x < 0.5:
                msg = f"{ch(['GET', 'POST', 'PATCH'])} {ch(PATHS)}{ri(1, 99999)}/ {ch(['200', '200', '201', '400', '404'])} {ri(2, 900)}ms"
            elif x < 0.9:
                msg = f"Order {ri(1, 9999999)} {ch(['synced', 'created', 'updated', 'validated'])} with {ri(1, 40)} items for store {ri(1, 900)}"
            else:
                msg = f"Payload for {ch(PATHS)}: {ch(mid_payloads)}"
        elif fam == "remote_service":
            if x < 0.06:
                msg = f"Timeout after {ri(5, 60)}s calling {ch(SERVICES)}; retry {ri(1, 5)}/5"
            elif x < 0.7:
                msg = f"Remote call to {ch(SERVICES)} took {ri(3, 4000)} ms (status {ch(['200', '200', '202', '500', '503'])})"
            elif x < 0.97:
                msg = f"Response from {ch(SERVICES)}: {ch(mid_payloads)}"
            else:
                msg = f"Full exchange with {ch(SERVICES)}: {ch(big_payloads)}"
        elif logger == "django.db.backends":
            msg = f"({ri(0, 300) / 1000:.3f}) SELECT \"wfm_{ch(WORDS)}\".\"id\" FROM \"wfm_{ch(WORDS)}\" WHERE \"wfm_{ch(WORDS)}\".\"id\" = {ri(1, 10**6)}; args=({ri(1, 10**6)},); alias=default"
        elif fam == "wfm":
            k = ri(2, 14)
            msg = " ".join(ch(WORDS) for _ in range(k)).capitalize() + f" (employee {ri(1, 200000)}, week {ri(1, 52)})"
        elif fam == "command" or fam == "celery":
            if x < 0.02:
                msg = f"Task {ch(FUNCS)} hit a timeout after {ri(60, 600)} s"
            else:
                msg = f"{ch(['Imported', 'Synced', 'Purged', 'Processed'])} {ri(1, 50000)} {ch(WORDS)} rows in {ri(1, 90000)} ms"
        else:
            msg = f"{ch(['Bad request', 'Not Found', 'Invalid HTTP_HOST header', 'Suspicious operation'])}: {ch(PATHS)}"
        if i in needle_at:
            msg = f"Payment gateway rejected token {NEEDLE_TOKEN} for order {ri(1, 9999999)}"

        tb = ch(tracebacks) if level >= 40 and rr() < 0.4 else ""
        if rr() < 0.85:
            extra = "{}"
        elif rr() < 0.5:
            extra = f'{{"order_id": {ri(1, 9999999)}}}'
        else:
            extra = f'{{"duration_ms": {ri(1, 90000) / 10}, "status": {ch([200, 201, 400, 500])}}}'
        yield (created, str(level), logger, logger.rsplit(".", 1)[-1], ch(FUNCS), str(ri(10, 900)), msg,
               tb, ip, user, rid, host, proc, extra)


def applogs_line(row):
    return "\t".join(row) + "\n"


def peer_line(row):
    # logger_name, level, msg, trace (NULL when empty, as the peer stores it), create_datetime
    return f"{row[2]}\t{row[1]}\t{row[6]}\t{row[7] or chr(92) + 'N'}\t{row[0]}\n"


class ChunkReader:
    """A file-like object for cursor.copy_expert that pulls COPY text from a row generator."""

    def __init__(self, rows, line, chunk_rows=20000):
        self._rows = iter(rows)
        self._line = line
        self._chunk = chunk_rows
        self.count = 0

    def read(self, size=-1):
        lines = []
        line = self._line
        for row in self._rows:
            lines.append(line(row))
            if len(lines) >= self._chunk:
                break
        self.count += len(lines)
        return "".join(lines).encode()

    readline = read
