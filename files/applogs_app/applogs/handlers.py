"""DBLogsHandler: the `db` handler of the portals' LOGGING block.

Built while Django is still configuring logging, so importing or constructing it touches neither
models nor the database. emit() only turns the record into a tuple of plain values and puts it on
the writer's bounded queue (the QueueHandler half of CPython's QueueHandler/QueueListener); the
writer thread (applogs.listener) does the database work.
"""
import json
import logging
import os
import socket
import traceback

from . import listener
from .context import UNKNOWN, current
from .rows import truncate as _truncate
from .rows import truncate_extra

_PLAIN_RECORD = logging.LogRecord("", 0, "", 0, "", (), None).__dict__
# Attributes every LogRecord has; the rest came from `extra=` and go to the extra column.
_STANDARD = frozenset(_PLAIN_RECORD) | {
    "message", "asctime", "request", "ip", "user", "request_id", "taskName",
}
# How many attributes a record has when nothing was added to it.
_PLAIN = len(_PLAIN_RECORD)
_host = None


def _hostname():
    global _host
    if _host is None:
        try:
            _host = socket.gethostname()
        except Exception:
            _host = ""
    return _host


def safe_message(record):
    """record.getMessage() that survives a non-string msg or broken % arguments."""
    try:
        return record.getMessage()
    except Exception:
        pass
    try:
        msg = str(record.msg)
    except Exception:
        msg = _safe_repr(record.msg)
    return "%s [applogs: message arguments could not be applied: %s]" % (msg, _safe_repr(record.args))


def _safe_repr(value):
    try:
        return repr(value)
    except Exception:
        return "<unrepresentable %s>" % type(value).__name__


def _json_default(value):
    return _safe_repr(value)


def extra_json(record):
    """JSON text of the record's non-standard attributes, or None when there are none."""
    d = record.__dict__
    keys = d.keys() - _STANDARD  # set difference in C: the common case (no extra) stays cheap
    if not keys:
        return None
    extra = {k: d[k] for k in keys if not k.startswith("_")}
    if not extra:
        return None
    try:
        return json.dumps(extra, default=_json_default, allow_nan=False, ensure_ascii=False)
    except Exception:
        # NaN, circular structures, keys that are not strings...: one value at a time.
        safe = {}
        for k, v in extra.items():
            try:
                json.dumps(v, default=_json_default, allow_nan=False)
                safe[str(k)] = v
            except Exception:
                safe[str(k)] = _safe_repr(v)
        return json.dumps(safe, default=_json_default, ensure_ascii=False)


class DBLogsHandler(logging.Handler):
    """Queue records for the background writer.

    Keyword arguments (usable in LOGGING) override the APPLOGS_* settings of the same name:
    database, batch_size, flush_interval, queue_size, queue_bytes, spool_dir, spool_max_bytes,
    spool_min_free, max_message_size, exit_timeout, connect_timeout, write_timeout.
    """

    def __init__(self, level=logging.NOTSET, **kwargs):
        super(DBLogsHandler, self).__init__(level)
        unknown = set(kwargs) - set(listener.Options.__slots__)
        if unknown:
            raise TypeError("DBLogsHandler() got unexpected arguments: %s" % ", ".join(sorted(unknown)))
        # Settings are read on first use, not here: logging may be configured before they are.
        self._kwargs = kwargs
        self._options = None
        self._limit = None
        self._writer = None

    @property
    def options(self):
        if self._options is None:
            self._options = listener.Options(**self._kwargs)
        return self._options

    def _get_writer(self, pid):
        w = self._writer
        # A forked child (with or without fork hooks) gets a writer, thread and connection of
        # its own; so does a process whose writer was stopped.
        if w is None or w.pid != pid or w.stopped:
            w = self._writer = listener.get_writer(self.options)
        return w

    def handle(self, record):
        # No handler lock: emit() is thread-safe (the queue is), and the lock would make every
        # logging thread wait for the others.
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may return a new record
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record):
        if listener.in_writer_thread():
            return  # what the writer causes (SQL debug logging, driver warnings) is not logged
        try:
            # The record's own process id spares a system call per record (logging asked for it
            # when it made the record); get_writer() checks the process again.
            self._get_writer(record.process or os.getpid()).put(self.prepare(record))
        except Exception:
            # Never raise into the caller, and no handleError() traceback per record either.
            try:
                self._writer.count_drops(1)
            except Exception:
                pass

    def prepare(self, record):
        """The row tuple (rows.COLUMNS order) for a record: plain values only, message,
        traceback and extra bounded by max_message_size."""
        # This runs in the caller's thread for every record: the common case (a formatted
        # message, no traceback, no extra) takes the fewest steps.
        limit = self._limit
        if limit is None:
            limit = self._limit = self.options.max_message_size
        try:
            message = record.getMessage()
        except Exception:
            message = safe_message(record)
        if len(message) > limit:
            message = _truncate(message, limit)
        tb = ""
        if record.exc_info:
            tb = record.exc_text or "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        elif record.exc_text:
            tb = record.exc_text
        if record.stack_info:
            tb = (tb + "\n" if tb else "") + record.stack_info
        if tb:
            tb = _truncate(tb, limit)
        d = record.__dict__
        # Attributes beyond a plain record's came from `extra=` or a filter.
        extra = extra_json(record) if len(d) > _PLAIN else None
        if extra is not None and len(extra) > limit:
            extra = truncate_extra(extra, limit)
        ip = d.get("ip")
        user = d.get("user")
        request_id = d.get("request_id")
        if ip is None or user is None or request_id is None:
            # No RequestContextFilter on this handler: take the middleware's context directly.
            ctx = current()
            if ctx is not None:
                ip = ctx.ip if ip is None else ip
                user = ctx.user if user is None else user
                request_id = ctx.request_id if request_id is None else request_id
        return (
            record.created,
            record.levelno,
            str(record.name),
            str(record.module or ""),
            str(record.funcName or ""),
            record.lineno,
            message,
            tb,
            _column(ip),
            _column(user),
            str(request_id or ""),
            _hostname(),
            record.process,
            extra,
        )

    def flush(self, timeout=None):
        """Have the writer write every record emitted so far; True once they are all in the
        database, False if the database is unavailable (they are kept for later) or the timeout
        runs out first.

        logging.shutdown() and dictConfig() call flush() without a timeout: they get the bounded
        exit timeout, never an endless wait.
        """
        if self._writer is None or self._writer.pid != os.getpid():
            return True
        if timeout is None:
            timeout = self.options.exit_timeout
        return self._writer.flush(timeout)

    @property
    def dropped(self):
        """Records dropped and not yet reported (a WARNING record reports them when written)."""
        return self._writer.dropped if self._writer is not None else 0


def _column(value):
    if value is None:
        return ""
    value = str(value)
    # '--' is the formatter's "unknown"; in the table unknown is empty.
    return "" if value == UNKNOWN else value
