"""The row: what the handler makes of a log record and the writer puts in the table.

A row is a tuple of plain values in COLUMNS order. The column limits live here (and nowhere else);
a test checks them against the model. The table name is the model's, read when first needed.
Two encodings: the COPY text format (to the database) and a JSON line (to the spool).
"""
import json
import re
import time

COLUMNS = (
    "created", "level", "logger", "module", "func", "lineno", "message", "traceback",
    "ip", "user", "request_id", "host", "process", "extra",
)
(CREATED, LEVEL, LOGGER, MODULE, FUNC, LINENO, MESSAGE, TRACEBACK,
 IP, USER, REQUEST_ID, HOST, PROCESS, EXTRA) = range(len(COLUMNS))

# max_length of the model's CharFields.
LIMITS = {"logger": 255, "module": 255, "func": 255, "ip": 64, "user": 255, "request_id": 64,
          "host": 255}
_L = LIMITS
# Characters a row adds to its message, traceback and extra (the short columns, the numbers and
# the tuple itself): the unit of the queue's byte bound.
ROW_OVERHEAD = 400

# The text columns first: the common row (nothing to escape) is checked and joined with a few
# C-level string operations.
COPY_COLUMNS = ("logger", "module", "func", "message", "traceback", "ip", "user", "request_id",
                "host", "extra", "created", "level", "lineno", "process")

TRUNCATED = "\n...[truncated by applogs: %d of %d characters kept]"

# A JSON \u0000 escape that is not itself an escaped backslash: jsonb rejects it.
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def table():
    from .models import LogRecord

    return LogRecord._meta.db_table


def copy_sql():
    return "COPY %s (%s) FROM STDIN" % (table(), ", ".join('"%s"' % c for c in COPY_COLUMNS))


def truncate(text, limit):
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATED % (limit, len(text))


def truncate_extra(extra, limit):
    """extra's JSON text, or when longer than limit a JSON object holding its beginning."""
    if extra is None or len(extra) <= limit:
        return extra
    return json.dumps({"applogs_truncated": "%s [truncated by applogs: %d of %d characters kept]"
                       % (extra[:limit], limit, len(extra))}, ensure_ascii=False)


def size(row):
    """Approximate size of a row in characters (message, traceback and extra are bounded)."""
    return len(row[MESSAGE]) + len(row[TRACEBACK]) + len(row[EXTRA] or "") + ROW_OVERHEAD


# --- COPY text format ---------------------------------------------------------------------------

def _text(value):
    """A COPY text-format field; NUL is removed (PostgreSQL rejects it in text)."""
    # Chained str.replace is the cheapest way to escape in CPython when nothing matches.
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t").replace("\x00", ""))


def _json_safe_text(extra):
    return _JSON_NUL.sub(r"\1", extra) if "\\u0000" in extra else extra


def _int_or_null(value, low=0, high=2147483647):
    if value is None:
        return "\\N"
    value = int(value)
    return str(value) if low <= value <= high else "\\N"


class _Timestamps:
    """ISO timestamps of record times; the formatted second is reused across a batch."""

    def __init__(self):
        self.second = None
        self.prefix = ""

    def format(self, created):
        created = float(created)
        second = int(created)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return "%s.%06d+00" % (self.prefix, min(int((created - second) * 1000000 + 0.5), 999999))


def _encode_row(row, stamps):
    (created, level, logger, module, func, lineno, message, tb, ip, user, request_id, host,
     process, extra) = row
    texts = "\t".join((logger[:_L["logger"]], module[:_L["module"]], func[:_L["func"]], message, tb,
                       ip[:_L["ip"]], user[:_L["user"]], request_id[:_L["request_id"]],
                       host[:_L["host"]], extra or "{}"))
    if (texts.count("\t") != 9 or "\\" in texts or "\n" in texts or "\r" in texts
            or "\x00" in texts):
        texts = "\t".join((
            _text(logger[:_L["logger"]]), _text(module[:_L["module"]]), _text(func[:_L["func"]]),
            _text(message), _text(tb), _text(ip[:_L["ip"]]), _text(user[:_L["user"]]),
            _text(request_id[:_L["request_id"]]), _text(host[:_L["host"]]),
            _text(_json_safe_text(extra or "{}"))))
    return "%s\t%s\t%d\t%s\t%s\n" % (
        texts, stamps.format(created), min(max(int(level), 0), 32767),
        lineno if lineno.__class__ is int and 0 <= lineno <= 2147483647 else _int_or_null(lineno),
        process if process.__class__ is int and 0 <= process <= 2147483647 else _int_or_null(process))


def timestamp(created):
    """The created column's text for a record time."""
    return _Timestamps().format(created)


def clean(text):
    """text as the table holds it (no NUL, lone surrogates replaced)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def encode(rows):
    """(COPY text-format payload as UTF-8 bytes, indexes of rows that could not be encoded).
    Lone surrogates become '?'."""
    out = []
    bad = []
    stamps = _Timestamps()
    for i, row in enumerate(rows):
        try:
            out.append(_encode_row(row, stamps))
        except Exception:
            bad.append(i)
    return "".join(out).encode("utf-8", "replace"), bad


# --- spool lines --------------------------------------------------------------------------------

_TYPES = (
    (float, int), (int,), (str,), (str,), (str,), (int, type(None)), (str,), (str,),
    (str,), (str,), (str,), (str,), (int, type(None)), (str, type(None)),
)


def to_json(row):
    """One spool line (bytes, ending in a newline)."""
    return (json.dumps(row, ensure_ascii=True) + "\n").encode("ascii")


def from_json(line):
    """The row of a spool line; ValueError when the line is not a row (damaged or forged)."""
    row = json.loads(line.decode("utf-8", "replace"))
    if not isinstance(row, list) or len(row) != len(COLUMNS):
        raise ValueError("not a row")
    for value, types in zip(row, _TYPES):
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError("not a row")
    return tuple(row)
