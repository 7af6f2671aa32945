"""The background writer: one thread per process (per handler configuration) that moves rows from
a bounded in-memory queue into the applogs table, in batches, on its own connection.

Modelled on logging.handlers.QueueListener. Order of a row's life:
    caller thread: DBLogsHandler.emit -> queue.put (a drop is counted when the queue is full)
    writer thread: queue -> backlog (memory) -> COPY into applogs_logrecord
During an outage the backlog grows up to the queue bound, then is appended to the spool file
(JSON lines, one file per process and alias) and replayed in order once the database answers again.
Order is always: spool file, then backlog, then queue.
"""
import atexit
import glob
import io
import json
import os
import queue
import re
import sys
import threading
import time

from . import conf

# queue.SimpleQueue is Python 3.7+; Queue has the same put/get/qsize (with a lock) on 3.6.
_SimpleQueue = getattr(queue, "SimpleQueue", queue.Queue)

COLUMNS = (
    "created", "level", "logger", "module", "func", "lineno", "message", "traceback",
    "ip", "user", "request_id", "host", "process", "extra",
)
# Indices into a row tuple (same order as COLUMNS).
(CREATED, LEVEL, LOGGER, MODULE, FUNC, LINENO, MESSAGE, TRACEBACK,
 IP, USER, REQUEST_ID, HOST, PROCESS, EXTRA) = range(len(COLUMNS))
TABLE = "applogs_logrecord"
COPY_COLUMNS = ("logger", "module", "func", "message", "traceback", "ip", "user", "request_id",
                "host", "extra", "created", "level", "lineno", "process")
COPY_SQL = "COPY %s (%s) FROM STDIN" % (TABLE, ", ".join('"%s"' % c for c in COPY_COLUMNS))

# A JSON \u0000 escape that is not itself an escaped backslash: jsonb rejects it.
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")

_RETRY_MIN = 0.5
_RETRY_MAX = 10.0

_local = threading.local()


def in_writer_thread():
    """True in a writer thread: what it causes to be logged must not be queued again."""
    return getattr(_local, "is_writer", False)


class _Outage(Exception):
    def __init__(self, message, written=0):
        super().__init__(message)
        self.written = written


class _Marker:
    """Put in the queue by flush(). The writer sets it after trying to write everything queued
    before it; ok tells whether all of it is in the database (False: kept for later, outage)."""

    __slots__ = ("event", "stop", "ok")

    def __init__(self, stop=False):
        self.event = threading.Event()
        self.stop = stop
        self.ok = False


class Options:
    __slots__ = ("database", "batch_size", "flush_interval", "queue_size", "spool_dir",
                 "max_message_size", "exit_timeout")

    def __init__(self, database=None, batch_size=None, flush_interval=None, queue_size=None,
                 spool_dir=None, max_message_size=None, exit_timeout=None):
        self.database = conf.get("DATABASE", database)
        self.batch_size = max(1, int(conf.get("BATCH_SIZE", batch_size)))
        self.flush_interval = max(0.0, float(conf.get("FLUSH_INTERVAL", flush_interval)))
        self.queue_size = max(1, int(conf.get("QUEUE_SIZE", queue_size)))
        self.spool_dir = conf.get("SPOOL_DIR", spool_dir) or conf.default_spool_dir()
        self.max_message_size = max(100, int(conf.get("MAX_MESSAGE_SIZE", max_message_size)))
        self.exit_timeout = float(conf.get("EXIT_TIMEOUT", exit_timeout))

    def key(self):
        return tuple(getattr(self, name) for name in self.__slots__)


def _json_safe_text(extra):
    return _JSON_NUL.sub(r"\1", extra) if "\\u0000" in extra else extra


def _text(value):
    """A COPY text-format field; NUL is removed (PostgreSQL rejects it in text)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    # Chained str.replace is the cheapest way to escape in CPython when nothing matches.
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t").replace("\x00", ""))


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
    # COPY_COLUMNS order: the text columns first, so the common row (nothing to escape) is
    # checked and joined with a few C-level string operations.
    texts = "\t".join((logger[:255], module[:255], func[:255], message, tb, ip[:64], user[:255],
                       request_id[:64], host[:255], extra or "{}"))
    if (texts.count("\t") != 9 or "\\" in texts or "\n" in texts or "\r" in texts
            or "\x00" in texts):
        texts = "\t".join((
            _text(logger[:255]), _text(module[:255]), _text(func[:255]), _text(message), _text(tb),
            _text(ip[:64]), _text(user[:255]), _text(request_id[:64]), _text(host[:255]),
            _text(_json_safe_text(extra or "{}"))))
    return "%s\t%s\t%d\t%s\t%s\n" % (
        texts, stamps.format(created), min(max(int(level), 0), 32767),
        _int_or_null(lineno), _int_or_null(process))


def _encode(rows, on_bad_row):
    """The COPY text-format payload of rows, as UTF-8 bytes (lone surrogates replaced)."""
    out = []
    stamps = _Timestamps()
    for row in rows:
        try:
            out.append(_encode_row(row, stamps))
        except Exception:
            on_bad_row()  # e.g. a damaged spool line: dropped and counted, the batch goes on
    return "".join(out).encode("utf-8", "replace")


class Writer:
    def __init__(self, options):
        self.options = options
        # SimpleQueue (C, lock-free for the caller) with a soft bound checked by put(): a few
        # concurrent callers may overshoot it by one each, which is harmless.
        self.queue = _SimpleQueue()
        self.maxsize = options.queue_size
        # Set by callers when a full batch is waiting, and by flush(): see _collect().
        self.wakeup = threading.Event()
        self.backlog = []  # rows taken from the queue and not yet written; newer than the spool
        self.dropped = 0
        self.drop_lock = threading.Lock()
        self.conn = None
        self.driver = None
        self.outage = False
        self.retry_at = 0.0
        self.retry_delay = _RETRY_MIN
        self.spool_prefix = spool_prefix(options)
        self.spool_path = os.path.join(options.spool_dir, "%s-%d.jsonl" % (self.spool_prefix, os.getpid()))
        self.spool_offset = 0  # bytes of the spool file already written to the database
        self.spooled = False  # the spool file has rows not yet written
        self.spool_warned = False
        self.orphans_checked = False
        self.thread = None
        self.stopped = False
        self.start_lock = threading.Lock()

    # --- caller side -------------------------------------------------------------------------

    def put(self, row):
        if self.thread is None:
            self._start()
        q = self.queue
        n = q.qsize()
        if n >= self.maxsize:
            self.count_drop()
            return
        q.put(row)
        if n + 1 >= self.options.batch_size and not self.wakeup.is_set():
            self.wakeup.set()

    def count_drop(self, n=1):
        with self.drop_lock:
            self.dropped += n

    def flush(self, timeout):
        """Have the writer try to write everything queued so far; True if it is all in the
        database, False on an outage (records are kept) or when timeout runs out first."""
        if self.thread is None:
            return True
        return self._send(_Marker(), timeout)

    def shutdown(self, timeout):
        """At exit: a last write within timeout; what cannot be written goes to the spool."""
        if self.thread is None:
            return True
        return self._send(_Marker(stop=True), timeout)

    def _send(self, marker, timeout):
        deadline = time.monotonic() + timeout
        if self.stopped:
            return self.queue.empty()
        self.queue.put(marker)
        self.wakeup.set()
        # In slices: a writer that stopped (at exit) will never answer.
        while not marker.event.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            if self.stopped or time.monotonic() >= deadline:
                return False
        return marker.ok

    def _start(self):
        with self.start_lock:
            if self.thread is None:
                t = threading.Thread(target=self._run, name="applogs-writer", daemon=True)
                t.start()
                self.thread = t

    # --- writer thread ------------------------------------------------------------------------

    def _run(self):
        _local.is_writer = True
        while True:
            try:
                if self._step():
                    return
            except Exception as exc:  # a bug here must not end logging for the process
                sys.stderr.write("applogs: writer error %r\n" % (exc,))
                time.sleep(1)

    def _step(self):
        """One batch: collect, write (or keep), answer flush markers. True when stopped."""
        items, markers = self._collect()
        self.backlog.extend(items)
        if self.backlog or self.spooled or self.dropped or markers:
            # A flush retries at once; otherwise an outage waits for its backoff.
            if markers or not self.outage or time.monotonic() >= self.retry_at:
                self._drain()
        stop = any(m.stop for m in markers)
        if self.backlog and (stop or (self.outage and len(self.backlog) >= self.options.queue_size)):
            self._spill()
        done = not self.outage and not self.backlog and not self.spooled
        for m in markers:
            m.ok = done
            m.event.set()
        if stop:
            self.stopped = True
            self._close()
        return stop

    def _collect(self):
        """Up to batch_size rows, waiting at most flush_interval after the first one; a flush
        marker ends the batch early. The writer sleeps on `wakeup` rather than on the queue, so
        callers do not wake it (and hand it the GIL) once per record."""
        items, markers = [], []
        if self.outage:
            timeout = max(0.05, self.retry_at - time.monotonic())
        elif self.backlog or self.dropped:
            timeout = 0.05
        else:
            timeout = None
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return items, markers
        deadline = time.monotonic() + self.options.flush_interval
        batch_size = self.options.batch_size
        get = self.queue.get_nowait
        while True:
            if isinstance(item, _Marker):
                markers.append(item)
                return items, markers
            items.append(item)
            if len(items) >= batch_size:
                return items, markers
            try:
                item = get()
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return items, markers
            self.wakeup.clear()
            if self.queue.empty():
                self.wakeup.wait(remaining)
            try:
                item = get()
            except queue.Empty:
                return items, markers

    def _drain(self):
        """Write spool, then backlog, then the drop report; enter or leave outage mode."""
        try:
            if not self.orphans_checked:
                self._adopt_orphans()
            self._replay_spool()
            batch_size = self.options.batch_size
            while self.backlog:
                chunk = self.backlog[:batch_size]
                try:
                    self._write(chunk)
                except _Outage as exc:
                    del self.backlog[:exc.written]
                    raise
                del self.backlog[:len(chunk)]
            if self.dropped:
                with self.drop_lock:
                    n, self.dropped = self.dropped, 0
                try:
                    self._write([drop_report(n)])
                except _Outage:
                    self.count_drop(n)
                    raise
        except Exception as exc:  # _Outage, or the spool file vanished, or worse: retry later
            if not self.outage:
                self.outage = True
                reason = (str(exc).strip().splitlines() or [type(exc.__cause__ or exc).__name__])[0]
                sys.stderr.write(
                    "applogs: cannot write to database %r (%s); keeping records in memory, then in %s\n"
                    % (self.options.database, reason, self.options.spool_dir))
                sys.stderr.flush()
            else:
                self.retry_delay = min(self.retry_delay * 2, _RETRY_MAX)
            self.retry_at = time.monotonic() + self.retry_delay
            return
        self.outage = False
        self.retry_delay = _RETRY_MIN

    # --- database -----------------------------------------------------------------------------

    def _connect(self):
        from django.db import connections

        wrapper = connections[self.options.database]
        params = wrapper.get_connection_params()
        params.setdefault("connect_timeout", 10)
        params.setdefault("application_name", "applogs-writer")
        self.driver = wrapper.Database
        # A connection of our own, in autocommit: never part of a portal transaction.
        conn = wrapper.get_new_connection(params)
        conn.autocommit = True
        self.conn = conn

    def _close(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _copy(self, rows):
        if self.conn is not None:
            try:
                return self._copy_on(rows)
            except Exception as exc:
                if self._is_data_error(exc):
                    raise
                # A stale session (server restarted, backend killed): one more try on a new one.
                self._close()
        self._connect()
        self._copy_on(rows)

    def _copy_on(self, rows):
        data = _encode(rows, self.count_drop)
        with self.conn.cursor() as cur:
            if hasattr(cur, "copy_expert"):  # psycopg2
                cur.copy_expert(COPY_SQL, io.BytesIO(data))
            else:  # psycopg 3
                with cur.copy(COPY_SQL) as copy:
                    copy.write(data)

    def _write(self, rows):
        """Write rows or raise _Outage. A row the server refuses (bad data) is written again
        without its extra, then dropped and counted; it never holds back the others."""
        try:
            self._copy(rows)
            return
        except Exception as exc:
            if not self._is_data_error(exc):
                self._close()
                raise _Outage(str(exc)) from exc
        for i, row in enumerate(rows):
            try:
                self._copy([row])
            except Exception as exc:
                if not self._is_data_error(exc):
                    self._close()
                    # Rows before i are in the database: the caller must not write them again.
                    raise _Outage(str(exc), i) from exc
                try:
                    row = list(row)
                    row[EXTRA] = json.dumps({"applogs_error": str(exc)[:500]})
                    self._copy([tuple(row)])
                except Exception:
                    self.count_drop()

    def _is_data_error(self, exc):
        d = self.driver
        if d is None or self.conn is None or getattr(self.conn, "closed", True):
            return False
        return isinstance(exc, (d.DataError, d.IntegrityError))

    # --- spool --------------------------------------------------------------------------------

    def _spool_pending(self):
        return self.spooled

    def _spill(self):
        """Append the backlog (and whatever is queued) to the spool file."""
        rows = self.backlog
        self.backlog = []
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Marker):
                item.event.set()  # ok stays False: these rows are only spooled
            else:
                rows.append(item)
        if not rows:
            return
        try:
            os.makedirs(self.options.spool_dir, mode=0o700, exist_ok=True)
            with open(self.spool_path, "a", encoding="utf-8", errors="surrogatepass") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=True))
                    f.write("\n")
            self.spooled = True
        except OSError as exc:
            self.count_drop(len(rows))
            if not self.spool_warned:
                self.spool_warned = True
                sys.stderr.write("applogs: cannot write the spool file %s (%s); dropping records\n"
                                 % (self.spool_path, exc))
                sys.stderr.flush()

    def _replay_spool(self):
        if not self.spooled:
            return
        if not os.path.exists(self.spool_path):  # removed by hand: nothing left to replay
            self.spooled, self.spool_offset = False, 0
            return
        batch_size = self.options.batch_size
        with open(self.spool_path, "rb") as f:
            f.seek(self.spool_offset)
            while True:
                rows, end = [], self.spool_offset
                for line in f:
                    end += len(line)
                    try:
                        rows.append(tuple(json.loads(line.decode("utf-8", "replace"))))
                    except ValueError:
                        self.count_drop()  # a torn last line from a crash
                    if len(rows) >= batch_size:
                        break
                if not rows and end == self.spool_offset:
                    break
                if rows:
                    self._write(rows)
                self.spool_offset = end
        os.unlink(self.spool_path)
        self.spool_offset = 0
        self.spooled = False
        self.spool_warned = False

    def _adopt_orphans(self):
        """Take over the spool files of processes that died during an outage."""
        self.orphans_checked = True
        pattern = os.path.join(self.options.spool_dir, "%s-*.jsonl" % glob.escape(self.spool_prefix))
        own = re.compile(r"^%s-(\d+)(?:\.\d+)*\.jsonl$" % re.escape(self.spool_prefix))
        n = 0
        for path in sorted(glob.glob(pattern)):
            m = own.search(os.path.basename(path))
            if not m or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
                continue
            n += 1
            claimed = os.path.join(self.options.spool_dir, "%s-%d.%d.%d.jsonl" % (
                self.spool_prefix, os.getpid(), int(time.time()), n))
            try:
                os.rename(path, claimed)  # atomic: only one live process wins
            except OSError:
                continue
            self._replay_file(claimed)

    def _replay_file(self, path):
        """Write a claimed orphan spool file; on an outage it stays for a later attempt."""
        saved = (self.spool_path, self.spool_offset, self.spooled)
        self.spool_path, self.spool_offset, self.spooled = path, 0, True
        try:
            self._replay_spool()
        except _Outage:
            self.orphans_checked = False
            raise
        finally:
            self.spool_path, self.spool_offset, self.spooled = saved


def spool_prefix(options):
    """applogs-<alias>-<digest of the database's host, port and name>: several portals may share
    a spool directory, and a dead process's records must only be replayed into its own database."""
    import hashlib

    from django.conf import settings

    db = settings.DATABASES.get(options.database, {})
    where = "%s:%s/%s" % (db.get("HOST", ""), db.get("PORT", ""), db.get("NAME", ""))
    return "applogs-%s-%s" % (options.database, hashlib.sha1(where.encode("utf-8", "replace")).hexdigest()[:10])


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def drop_report(n):
    import socket

    msg = "applogs: %d log record(s) were dropped (queue full or spool unavailable)" % n
    return (time.time(), 30, "applogs", "writer", "", None, msg, "", "", "", "",
            socket.gethostname(), os.getpid(), "{}")


# --- one writer per process and configuration ------------------------------------------------

_writers = {}
_writers_lock = threading.Lock()
# Writers inherited over fork. Their connections' sockets are the parent's: the child points its
# copy of the descriptor at /dev/null, so whatever the child does with them at exit (psycopg's
# goodbye message on deallocation) never reaches the parent's session.
_inherited = []


def get_writer(options):
    key = options.key()
    w = _writers.get(key)
    if w is None:
        with _writers_lock:
            w = _writers.get(key)
            if w is None:
                w = _writers[key] = Writer(options)
    return w


def all_writers():
    return list(_writers.values())


def shutdown_all(timeout=None):
    """Flush every writer (bounded), spool what cannot be written, close connections."""
    ok = True
    for w in all_writers():
        t = w.options.exit_timeout if timeout is None else timeout
        ok = w.shutdown(t) and ok
    with _writers_lock:
        _writers.clear()
    return ok


# Bumped in a forked child, so handlers know their cached writer belongs to the parent.
generation = 0


def _after_fork_in_child():
    global _writers_lock, generation
    generation += 1
    for w in _writers.values():
        if w.conn is not None:
            try:
                nul = os.open(os.devnull, os.O_RDWR)
                try:
                    os.dup2(nul, w.conn.fileno())
                finally:
                    os.close(nul)
            except Exception:
                pass
    _inherited.extend(_writers.values())
    _writers.clear()
    _writers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
    check_fork = None
else:
    # Python 3.6 has no fork hook: the handler calls check_fork(), and the child notices the fork
    # by its pid.
    _pid = os.getpid()

    def check_fork():
        global _pid
        if os.getpid() != _pid:
            _pid = os.getpid()
            _after_fork_in_child()

# Registered after logging's own atexit hook, so it runs before logging.shutdown().
atexit.register(shutdown_all)
