"""XLSX export speed: the viewer's 15-column sheet of N log rows (default 100,000), built by

- ``openpyxl``:       openpyxl write-only mode, cells typed/styled as xlsexport 1.0 did it;
- ``xlsxwriter``:     XlsxWriter with constant_memory (inline strings, one row in memory),
                      strings_to_formulas/_urls/_numbers off, explicit write_* calls;
- ``xlsexport-1.2``:  xlsexport's writer up to version 1.2 (XlsxWriter constant_memory, the workbook in
                      a temporary file that the response then streams), taken from git (``BASELINE``);
- ``pyexcelerate``:   PyExcelerate (rows sanitised as xlsexport does; it has no per-cell quote prefix);
- ``rustpy``:         rustpy-xlsxwriter, a Rust-backed XlsxWriter port (Python 3.9+ only; no per-cell
                      quote prefix either);
- ``xlsexport``:      whatever ``xlsexport.writer`` is now (the shipped code path, sanitising included).

The rows come from bench/datagen.py (the benchmark's deterministic log rows: messages of 40 B to
8 kB, tracebacks, JSON extra) shaped as applogs.export yields them, and are built in memory before
the clock starts, so only the workbook is timed. Every candidate writes to the same file object on
disk, which notes when its first byte arrives: the time to first byte (TTFB) a streamed download
could have. Each run is a fresh subprocess, so its peak RSS (VmHWM, reset after the rows are built)
is its own; a separate run per candidate measures the tracemalloc peak (slow, not timed; on
--trace-rows rows, 20,000 by default; blind to memory that Rust allocates).

    .cache/export-bench/bin/python bench/export_speed.py                 # 100,000 rows, 3 runs each
    .cache/export-bench/bin/python bench/export_speed.py --rows 20000 --runs 5 xlsxwriter xlsexport

Needs Django, openpyxl, XlsxWriter, PyExcelerate, rustpy-xlsxwriter (a candidate whose package is
missing is skipped) and files/xlsexport_app importable; the ``xlsexport-1.2`` candidate needs git.
Prints a table of medians and ratios; nothing is written to docs/.
"""
import argparse
import datetime
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CANDIDATES = ("openpyxl", "xlsxwriter", "xlsexport-1.2", "pyexcelerate", "rustpy", "xlsexport")
# The last commit whose xlsexport.writer was the XlsxWriter-based one.
BASELINE = "9dd1d56"
HEADERS = ["ID", "Time", "Level", "Logger", "Message", "User", "IP", "Request id", "Host", "Process",
           "Module", "Function", "Line", "Traceback", "Extra"]
WIDTHS = [10, 20, 9, 22, 80, 16, 15, 34, 14, 8, 16, 16, 6, 60, 40]
LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _unescape(s):
    return (s.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r").replace("\\\\", "\\"))


def build_rows(n):
    """Rows in applogs.export's column order and Python types (aware datetimes, dict extra)."""
    sys.path.insert(0, ROOT)
    from bench.datagen import generate

    utc = datetime.timezone.utc
    rows = []
    for i, r in enumerate(generate(n), start=1):
        (created, level, logger, module, func, lineno, message, traceback, ip, user, rid, host, proc,
         extra) = r
        created = datetime.datetime.strptime(created[:-3], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=utc)
        if i % 997 == 0:
            message = "=HYPERLINK(\"http://evil.example\",\"x\") " + message  # a few risky cells
        rows.append([i, created, LEVELS[int(level)], logger, _unescape(message), user, ip, rid, host,
                     int(proc), module, func, int(lineno), _unescape(traceback), json.loads(extra)])
    return rows


def setup_django():
    sys.path.insert(0, os.path.join(ROOT, "files", "xlsexport_app"))
    from django.conf import settings

    settings.configure(USE_TZ=True, TIME_ZONE="Europe/Moscow", INSTALLED_APPS=[])
    import django

    django.setup()


# --- candidate 1: openpyxl write-only, as xlsexport 1.0 (same typing, styles and sanitising) -------
def write_openpyxl(out, rows):
    from django.utils import timezone
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    tz = timezone.get_current_timezone()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title="Log records")
    for i, w in enumerate(WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w

    def cell(value, bold=False):
        if isinstance(value, datetime.datetime):
            c = WriteOnlyCell(ws, value=timezone.make_naive(value, tz))
            c.number_format = "yyyy-mm-dd hh:mm:ss"
            return c
        if isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)[:32767]
            risky = value.startswith(FORMULA_PREFIXES)
            if not (risky or bold):
                return value
            c = WriteOnlyCell(ws, value=value)
            c.data_type = "s"
            if risky:
                c.quotePrefix = True
            if bold:
                c.font = Font(bold=True)
            return c
        return value

    ws.freeze_panes = "A2"
    ws.append([cell(h, bold=True) for h in HEADERS])
    for row in rows:
        ws.append([cell(v) for v in row])
    wb.save(out)


# --- candidate 2: XlsxWriter constant_memory ---------------------------------------------------------
def write_xlsxwriter(out, rows):
    import re

    import xlsxwriter
    from django.utils import timezone

    illegal = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
    tz = timezone.get_current_timezone()
    wb = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                    "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet("Log records")
    bold = wb.add_format({"bold": True})
    quoted = wb.add_format({"quote_prefix": True})
    dt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for i, w in enumerate(WIDTHS):
        ws.set_column(i, i, w)
    ws.freeze_panes(1, 0)
    for c, h in enumerate(HEADERS):
        ws.write_string(0, c, h, bold)
    write_string, write_number, write_datetime = ws.write_string, ws.write_number, ws.write_datetime
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, datetime.datetime):
                write_datetime(r, c, timezone.make_naive(value, tz), dt)
                continue
            if isinstance(value, dict):
                value = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
            if isinstance(value, str):
                value = illegal.sub("", value)[:32767]
                write_string(r, c, value, quoted if value.startswith(FORMULA_PREFIXES) else None)
            else:
                write_number(r, c, value)
    wb.close()


# --- candidate 3: xlsexport 1.2's writer, from git ---------------------------------------------------
def baseline_writer():
    """xlsexport.writer as of BASELINE, as a module of its own."""
    import types

    source = subprocess.run(["git", "-C", ROOT, "show", BASELINE + ":files/xlsexport_app/xlsexport/writer.py"],
                            check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    # Its relative import (.compat) only brings attachment_response, which is not used here.
    source = source.replace("from .compat import attachment_response", "attachment_response = None")
    module = types.ModuleType("xlsexport_12_writer")
    exec(compile(source, "xlsexport-1.2/writer.py", "exec"), module.__dict__)
    return module


def write_xlsexport_12(out, rows):
    baseline_writer().write_xlsx(out, HEADERS, rows, title="Log records", column_widths=WIDTHS)


# --- candidate 4: PyExcelerate -----------------------------------------------------------------------
def write_pyexcelerate(out, rows):
    from pyexcelerate import Font, Style, Workbook
    from xlsexport.writer import to_cell_value

    # PyExcelerate takes the whole sheet as a list: sanitised as xlsexport does (time zone, JSON,
    # illegal characters), CR as LF; it has no quote prefix to give risky text.
    data = [HEADERS]
    for row in rows:
        data.append([v.replace("\r", "\n") if isinstance(v, str) else v
                     for v in (to_cell_value(value) for value in row)])
    wb = Workbook()
    ws = wb.new_sheet("Log records", data=data)
    ws.set_row_style(1, Style(font=Font(bold=True)))
    for i, w in enumerate(WIDTHS, start=1):
        ws.set_col_style(i, Style(size=w))
    wb.save(out)


# --- candidate 5: rustpy-xlsxwriter (rust_xlsxwriter) ------------------------------------------------
def write_rustpy(out, rows):
    import rustpy_xlsxwriter
    from xlsexport.writer import to_cell_value

    # Records as dicts (its input), sanitised as xlsexport does; no per-cell quote prefix.
    records = ({h: to_cell_value(v) for h, v in zip(HEADERS, row)} for row in rows)
    rustpy_xlsxwriter.write_worksheet(records, out, sheet_name="Log records", freeze_row=1, bold_headers=True,
                                      column_widths=WIDTHS, datetime_format="yyyy-mm-dd hh:mm:ss")


# --- candidate 6: the shipped xlsexport.writer -------------------------------------------------------
def write_xlsexport(out, rows):
    from xlsexport.writer import write_xlsx

    write_xlsx(out, HEADERS, rows, title="Log records", column_widths=WIDTHS)


WRITERS = {"openpyxl": write_openpyxl, "xlsxwriter": write_xlsxwriter, "xlsexport-1.2": write_xlsexport_12,
           "pyexcelerate": write_pyexcelerate, "rustpy": write_rustpy, "xlsexport": write_xlsexport}
MODULES = {"openpyxl": "openpyxl", "xlsxwriter": "xlsxwriter", "xlsexport-1.2": "xlsxwriter",
           "pyexcelerate": "pyexcelerate", "rustpy": "rustpy_xlsxwriter", "xlsexport": "xlsexport"}


class TimedFile:
    """A file on disk that notes when the first byte was written to it (a response could start then).
    Seekable, because the zip writers of the libraries that build a whole file seek in it."""

    def __init__(self, path):
        self.fh = open(path, "w+b")
        self.first_write = None

    def write(self, data):
        if self.first_write is None and len(data):
            self.first_write = time.perf_counter()
        return self.fh.write(data)

    def __getattr__(self, name):  # seek, tell, flush, close...
        return getattr(self.fh, name)


def _status(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def one_run(candidate, n, mode):
    """Child process: build the rows, then write one workbook; print a JSON result line."""
    setup_django()
    rows = build_rows(n)
    writer = WRITERS[candidate]
    with tempfile.TemporaryDirectory(prefix="export-speed.") as tmp:
        path = os.path.join(tmp, "out.xlsx")
        out = TimedFile(path)
        base_rss = _status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM to the current RSS
                fh.write("5")
        except OSError:
            pass
        if mode == "trace":
            tracemalloc.start()
            writer(out, rows)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            result = {"tracemalloc_peak": peak}
        else:
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            writer(out, rows)
            out.flush()
            result = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0,
                      "ttfb": out.first_write - t0, "rss_growth": _status("VmHWM") - base_rss,
                      "bytes": os.path.getsize(path)}
        out.close()
        print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("candidates", nargs="*", help="any of %s (default: all)" % ", ".join(CANDIDATES))
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--trace-rows", type=int, default=20000,
                    help="rows of the (slow, untimed) tracemalloc run; constant memory means the peak "
                         "does not depend on it (default 20000)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="time", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one_run(args.one, args.rows, args.mode)
        return
    args.candidates = args.candidates or list(CANDIDATES)
    unknown = set(args.candidates) - set(CANDIDATES)
    if unknown:
        ap.error("unknown candidates: %s" % ", ".join(sorted(unknown)))
    setup_django()
    missing = [c for c in args.candidates if importlib.util.find_spec(MODULES[c]) is None]
    for c in missing:
        print("skipped %s: %s cannot be imported" % (c, MODULES[c]))
    args.candidates = [c for c in args.candidates if c not in missing]

    def child(candidate, mode):
        rows = args.rows if mode == "time" else min(args.rows, args.trace_rows)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", candidate,
                              "--rows", str(rows), "--mode", mode],
                             check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    print("rows=%d runs=%d trace_rows=%d loadavg=%s python=%s %s" % (
        args.rows, args.runs, min(args.rows, args.trace_rows), os.getloadavg(), sys.version.split()[0],
        " ".join("%s=%s" % (c, _version(MODULES[c])) for c in args.candidates)))
    results = {}
    # Interleave the candidates so a burst of load from elsewhere hits all of them alike.
    for run in range(args.runs):
        for candidate in args.candidates:
            r = child(candidate, "time")
            results.setdefault(candidate, []).append(r)
            print("  run %d %-13s %6.2f s wall  %6.2f s to first byte  %6.2f s cpu" % (
                run + 1, candidate, r["seconds"], r["ttfb"], r["cpu_seconds"]), flush=True)
    traced = {c: child(c, "trace")["tracemalloc_peak"] for c in args.candidates}

    def median(candidate, key):
        return statistics.median(r[key] for r in results[candidate])

    base = "xlsexport-1.2" if "xlsexport-1.2" in results else None
    print()
    print("| candidate | median wall s | median first byte s | median CPU s | 1.2 wall / this wall | "
          "1.2 CPU / this CPU | peak RSS growth MiB | tracemalloc peak MiB | file MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in args.candidates:
        wall, cpu = median(c, "seconds"), median(c, "cpu_seconds")
        print("| %s | %.2f | %.2f | %.2f | %s | %s | %.1f | %.2f | %.1f |" % (
            c, wall, median(c, "ttfb"), cpu,
            "%.2f" % (median(base, "seconds") / wall) if base else "-",
            "%.2f" % (median(base, "cpu_seconds") / cpu) if base else "-",
            median(c, "rss_growth") / 2**20, traced[c] / 2**20, results[c][0]["bytes"] / 2**20))


def _version(module):
    try:
        return importlib.import_module(module).__version__
    except AttributeError:
        from importlib import metadata

        for name in (module, module.replace("_", "-")):
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
        return "?"


if __name__ == "__main__":
    main()
