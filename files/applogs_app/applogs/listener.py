"""The writer: a bounded in-memory queue, the spool behind it, and one thread per process (and
configuration) that moves rows from them to the sink, in order.

Modelled on logging.handlers.QueueListener; the thread knows nothing of COPY or of files:

    caller:  put(row) -> memory queue (bounded in rows and characters)
                      -> when it is full: the spool's tail, until the thread has caught up with it
    thread:  claimed orphan files -> backlog -> memory queue -> spool tail -> drop report -> sink

so records reach the table in the order they were logged. A record is dropped only when the
spool is full (byte cap, free-disk floor) or refused; drops are counted, reported once on stderr
and by one WARNING record. At exit, what cannot be written within the exit timeout goes to the
spool's head file, to be adopted by the next process of the same user.
"""
import atexit
import collections
import hashlib
import os
import socket
import sys
import threading
import time

from . import conf, rows
from .sink import Outage, Sink
from .spool import Spool

_RETRY_MIN = 0.5
_RETRY_MAX = 10.0


class _ThreadFlags(threading.local):
    # A class default, not getattr(..., False): a missing attribute costs an exception on every
    # record of every other thread.
    is_writer = False


_local = _ThreadFlags()


def next_retry_delay(previous=None):
    """Seconds from a failed attempt to the next during an outage: 0.5 s, doubling up to 10 s."""
    return _RETRY_MIN if previous is None else min(previous * 2, _RETRY_MAX)


def in_writer_thread():
    """True in a writer thread: what it causes to be logged must not be queued again."""
    return _local.is_writer


class Options:
    __slots__ = ("database", "batch_size", "flush_interval", "queue_size", "queue_bytes",
                 "spool_dir", "spool_max_bytes", "spool_min_free", "max_message_size",
                 "exit_timeout", "connect_timeout", "write_timeout")

    def __init__(self, database=None, batch_size=None, flush_interval=None, queue_size=None,
                 queue_bytes=None, spool_dir=None, spool_max_bytes=None, spool_min_free=None,
                 max_message_size=None, exit_timeout=None, connect_timeout=None,
                 write_timeout=None):
        self.database = conf.get("DATABASE", database)
        self.batch_size = max(1, int(conf.get("BATCH_SIZE", batch_size)))
        self.flush_interval = max(0.0, float(conf.get("FLUSH_INTERVAL", flush_interval)))
        self.queue_size = max(1, int(conf.get("QUEUE_SIZE", queue_size)))
        self.queue_bytes = max(1 << 16, int(conf.get("QUEUE_BYTES", queue_bytes)))
        self.spool_dir = conf.get("SPOOL_DIR", spool_dir) or conf.default_spool_dir()
        self.spool_max_bytes = max(0, int(conf.get("SPOOL_MAX_BYTES", spool_max_bytes)))
        self.spool_min_free = max(0, int(conf.get("SPOOL_MIN_FREE_BYTES", spool_min_free)))
        self.max_message_size = max(100, int(conf.get("MAX_MESSAGE_SIZE", max_message_size)))
        self.exit_timeout = max(1.0, float(conf.get("EXIT_TIMEOUT", exit_timeout)))
        # Half the exit timeout at most: at exit an unreachable host must leave time to spool.
        self.connect_timeout = max(1, min(int(conf.get("CONNECT_TIMEOUT", connect_timeout)),
                                          int(self.exit_timeout / 2)))
        self.write_timeout = max(1.0, float(conf.get("WRITE_TIMEOUT", write_timeout)))

    def key(self):
        return tuple(getattr(self, name) for name in self.__slots__)


def spool_prefix(options):
    """applogs-<alias>-<digest of the database's host, port and name>: several portals may share
    a spool directory, and a dead process's records must only be replayed into its own database."""
    from django.conf import settings

    db = settings.DATABASES.get(options.database, {})
    where = "%s:%s/%s" % (db.get("HOST", ""), db.get("PORT", ""), db.get("NAME", ""))
    digest = hashlib.sha1(where.encode("utf-8", "replace")).hexdigest()[:10]
    return "applogs-%s-%s" % (options.database, digest)


def drop_report(dropped, skipped):
    parts = []
    if dropped:
        parts.append("%d log record(s) were dropped (spool full or unavailable)" % dropped)
    if skipped:
        parts.append("%d spool line(s) were not log records and were skipped" % skipped)
    return (time.time(), 30, "applogs", "writer", "", None, "applogs: " + "; ".join(parts), "",
            "", "", "", socket.gethostname(), os.getpid(), None)


def _say(text):
    try:
        sys.stderr.write("applogs: %s\n" % text)
        sys.stderr.flush()
    except Exception:
        pass


class Writer:
    def __init__(self, options):
        self.options = options
        self.pid = os.getpid()
        self.batch_size = options.batch_size
        self.max_rows = options.queue_size
        self.max_chars = options.queue_bytes
        # Caller side, under lock: the memory queue, its size, and the overflow switch.
        self.lock = threading.Lock()
        self.items = collections.deque()
        self.count = 0
        self.chars = 0
        self.overflow = False  # the queue was full: records go to the spool tail until caught up
        self.dropped = 0  # not yet reported
        self.spool = Spool(options.spool_dir, spool_prefix(options), options.spool_max_bytes,
                           options.spool_min_free)
        # Set by callers (first record, full batch), flush() and shutdown().
        self.wakeup = threading.Event()
        # flush(): requests numbered, answered by the thread after one attempt made after them.
        self.cond = threading.Condition()
        self.requested = 0
        self.answered = 0
        self.last_ok = True
        self.stop_at = None
        self.stopped = False
        # Thread side.
        self.sink = Sink(options, self.count_drops)
        self.backlog = []  # taken from the queue, not yet in the table
        self.claimed = None  # orphan files to replay (None: not looked for yet)
        self.tail = None  # the tail file opened for replay
        self.skipped = 0
        self.outage = False
        self.retry_at = 0.0
        self.retry_delay = next_retry_delay()
        self.warned_drops = False
        self.thread = None
        self.start_lock = threading.Lock()

    # --- caller side ---------------------------------------------------------------------------

    def put(self, row):
        """Queue a row; never blocks for longer than one buffered append to the spool."""
        if self.thread is None:
            self._start()
        # rows.size(), inlined: this is the caller's path.
        size = len(row[6]) + len(row[7]) + len(row[13] or "") + rows.ROW_OVERHEAD
        with self.lock:
            if not self.overflow:
                if self.count < self.max_rows and self.chars + size <= self.max_chars:
                    self.items.append(row)
                    self.count += 1
                    self.chars += size
                    if (self.count == 1 or self.count >= self.batch_size) and not self.wakeup.is_set():
                        self.wakeup.set()
                    return
                self.overflow = True
                self.wakeup.set()
            if not self.spool.append(rows.to_json(row)):
                self.dropped += 1

    def count_drops(self, n):
        with self.lock:
            self.dropped += n

    def flush(self, timeout):
        """Have the thread try to write everything put so far; True once it is all in the
        database, False on an outage (records are kept) or when timeout runs out first."""
        if self.thread is None:
            return True
        if self.stopped:
            return self.last_ok
        return self._request(timeout)

    def shutdown(self, timeout):
        """At exit: a last write within timeout; what cannot be written goes to the spool."""
        if self.thread is None or self.stopped:
            return not self.stopped or self.last_ok
        # The thread's own deadline leaves time to spool before the caller gives up waiting.
        self.stop_at = time.monotonic() + timeout * 0.8
        self.sink.limit(self.stop_at)
        ok = self._request(timeout)
        if not self.stopped:
            with self.lock:
                lost = self.count + len(self.backlog)
            if lost:
                _say("%d record(s) not written at exit: the writer did not answer" % lost)
        return ok

    def _request(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            self.requested += 1
            mine = self.requested
        self.wakeup.set()
        with self.cond:
            while self.answered < mine:
                remaining = deadline - time.monotonic()
                if self.stopped:
                    return self.last_ok
                if remaining <= 0:
                    return False
                self.cond.wait(min(remaining, 0.5))
            return self.last_ok

    def _start(self):
        with self.start_lock:
            if self.thread is None:
                t = threading.Thread(target=self._run, name="applogs-writer", daemon=True)
                t.start()
                self.thread = t

    # --- writer thread -------------------------------------------------------------------------

    def _run(self):
        _local.is_writer = True
        while True:
            try:
                if self._step():
                    return
            except Exception as exc:  # a bug here must not end logging for the process
                _say("writer error %r" % (exc,))
                time.sleep(1)

    def _step(self):
        """Wait for work, make one attempt, answer the requests made before it. True at the end."""
        self._wait()
        with self.cond:
            request = self.requested
        stop = self.stop_at is not None
        # _wait() returned: a stop, a flush or an outage's retry is due, or there is work.
        ok = self._drain()
        if self.dropped:
            self._warn_drops()
        if stop:
            ok = self._finish(ok)
        with self.cond:
            self.answered = request
            self.last_ok = ok
            if stop:
                self.stopped = True
            self.cond.notify_all()
        return stop

    def _wait(self):
        """Until a batch is full, the oldest record is FLUSH_INTERVAL old, the queue overflowed,
        a flush or stop is asked for, or an outage's retry is due."""
        first = None
        while True:
            self.wakeup.clear()
            if self.stop_at is not None or self.requested != self.answered:
                return
            now = time.monotonic()
            if self.outage:
                if now >= self.retry_at:
                    return
                timeout = self.retry_at - now
            else:
                with self.lock:
                    n, overflow = self.count, self.overflow
                if overflow or n >= self.batch_size or self.backlog or self.dropped or self.skipped:
                    return
                if n:
                    first = now if first is None else first
                    if now - first >= self.options.flush_interval:
                        return
                    timeout = first + self.options.flush_interval - now
                else:
                    first = timeout = None
            self.wakeup.wait(timeout)

    def _check_deadline(self):
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            raise Outage("exit timeout reached")

    def _drain(self):
        """Write orphans, backlog, queue, tail, drop report; enter or leave outage mode."""
        try:
            if self.claimed is None:
                self.claimed = self.spool.claim_orphans()
            while self.claimed:
                self._replay(self.claimed[0])
                self.claimed.pop(0).remove()
            self._write_backlog()
            with self.lock:
                n = self.count
            while n > 0:
                self._check_deadline()
                self.backlog = self._take(min(n, self.batch_size))
                n -= len(self.backlog)
                self._write_backlog()
            if self.overflow:
                # The queue is older than the tail: first all of it (during an overflow nothing
                # is added to it), then the tail.
                while True:
                    with self.lock:
                        n = self.count
                    if not n:
                        break
                    self._check_deadline()
                    self.backlog = self._take(min(n, self.batch_size))
                    self._write_backlog()
                self._catch_up()
            self._report()
        except Exception as exc:  # Outage, or a spool file that cannot be read: retry later
            if not self.outage:
                self.outage = True
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                where = ("in %s" % self.options.spool_dir if self.spool.error is None
                         else "in memory only (%s)" % self.spool.error)
                _say("cannot write to database %r (%s); keeping records in memory, then %s"
                     % (self.options.database, reason, where))
            else:
                self.retry_delay = next_retry_delay(self.retry_delay)
            self.retry_at = time.monotonic() + self.retry_delay
            return False
        self.outage = False
        self.retry_delay = next_retry_delay()
        return True

    def _take(self, n):
        with self.lock:
            popleft = self.items.popleft
            batch = [popleft() for _ in range(n)]
            self.count -= n
            if not self.count:  # the usual case: the batch is all there was
                self.chars = 0
                return batch
        size = sum(map(rows.size, batch))
        with self.lock:
            self.chars = max(0, self.chars - size) if self.count else 0
        return batch

    def _write_backlog(self):
        if not self.backlog:
            return
        try:
            self.sink.write(self.backlog)
        except Outage as exc:
            del self.backlog[:exc.written]
            raise
        self.backlog = []

    def _replay(self, f, end=None):
        """Write a spool file's rows (up to offset end) in batches, committing its position."""
        while True:
            self._check_deadline()
            got, ends, skipped = f.read(self.batch_size, self.options.queue_bytes, end)
            if not got and not skipped:
                return
            try:
                if got:
                    self.sink.write(got)
            except Outage as exc:
                if exc.written:
                    f.commit(ends[exc.written - 1])
                self.skipped += sum(1 for s in skipped if s <= f.done)
                f.rewind()
                raise
            self.skipped += len(skipped)
            f.commit(f.pos)

    def _catch_up(self):
        """Replay the tail up to what was appended so far; once nothing is left, the callers
        go back to the memory queue."""
        with self.lock:
            end = self.spool.tail_end()
        if end:
            if self.tail is None:
                self.tail = self.spool.open_tail()
            self._replay(self.tail, end)
        with self.lock:
            end = self.spool.tail_end()
            if not end or self.tail.done >= end:
                if end:
                    self.spool.drop_tail(self.tail)
                    self.tail = None
                self.overflow = False

    def _warn_drops(self):
        if not self.warned_drops:
            self.warned_drops = True
            _say("dropping records: %s" % (
                self.spool.error or "the spool reached APPLOGS_SPOOL_MAX_BYTES or the free-disk floor"))

    def _report(self):
        with self.lock:
            dropped, self.dropped = self.dropped, 0
        if dropped:
            self._warn_drops()
        skipped, self.skipped = self.skipped, 0
        if not (dropped or skipped):
            return
        try:
            self.sink.write([drop_report(dropped, skipped)])
        except Outage:
            with self.lock:
                self.dropped += dropped
            self.skipped += skipped
            raise
        self.warned_drops = False

    def _finish(self, ok):
        """The last step: what is still in memory goes to the spool's head file (the tail and
        unfinished orphan files stay where they are for the next process). True if nothing was
        left over."""
        with self.lock:
            left = self.backlog + list(self.items)
            self.items.clear()
            self.count = self.chars = 0
            self.backlog = []
            dropped, self.dropped = self.dropped, 0
            self.spool.tail_end()
        if dropped or self.skipped:
            left.append(drop_report(dropped, self.skipped))
        if left:
            written = self.spool.write_head([rows.to_json(r) for r in left])
            if written < len(left):
                _say("%d record(s) could neither be written nor spooled at exit (%s)"
                     % (len(left) - written, self.spool.error or "spool full"))
        # Its files are orphans from now on: a writer that replaces this one adopts them.
        self.spool.close()
        self.sink.close()
        return ok and not left


# --- one writer per process and configuration ------------------------------------------------

_writers = {}
_writers_lock = threading.Lock()
_pid = os.getpid()


def _forked():
    """In a child process (seen by os.register_at_fork, or by get_writer when the server forked
    without running Python's fork hooks): the parent's writers have no thread here, and their
    connections are the parent's sessions."""
    global _writers, _writers_lock, _pid
    _pid = os.getpid()
    _writers_lock = threading.Lock()
    for w in _writers.values():
        w.sink.detach()
    _writers = {}


def get_writer(options):
    if os.getpid() != _pid:
        _forked()
    key = options.key()
    w = _writers.get(key)
    if w is None or w.stopped:
        with _writers_lock:
            w = _writers.get(key)
            if w is None or w.stopped:
                w = _writers[key] = Writer(options)
    return w


def all_writers():
    return [w for w in list(_writers.values()) if not w.stopped]


def shutdown_all(timeout=None):
    """Flush every writer (bounded), spool what cannot be written, close connections."""
    if os.getpid() != _pid:
        _forked()  # a child that never logged: its writers are the parent's, nothing to wait for
    ok = True
    for w in all_writers():
        t = w.options.exit_timeout if timeout is None else timeout
        ok = w.shutdown(t) and ok
    return ok


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

# Registered after logging's own atexit hook, so it runs before logging.shutdown().
atexit.register(shutdown_all)
