"""The sink: the writer's own database connection, and writing rows through it with COPY.

Every write is one COPY in autocommit, so a batch is in the table completely or not at all. A batch
the server refuses for its data is written again row by row, a refused row once more without its
extra, and then dropped (counted); a failure that is not about the data is an Outage that tells
how many rows of the batch are already in the table. A watchdog cuts the connection when a write
takes longer than the write timeout (a server or network gone silent never answers, and TCP
keepalives do not notice a paused server), which makes it an outage like any other.
"""
import contextlib
import io
import json
import socket
import threading
import time

from . import rows


class Outage(Exception):
    """The database cannot take rows now. written: rows of the batch already in the table."""

    def __init__(self, message, written=0):
        super(Outage, self).__init__(message)
        self.written = written


class Watchdog:
    """Shuts down a socket when the operation armed for it is not over by its deadline."""

    def __init__(self):
        self.cond = threading.Condition()
        self.deadline = None
        self.cap = None  # no operation may last beyond this (set at exit)
        self.fd = None
        self.fired = False
        self.thread = None

    def arm(self, fd, seconds):
        """Cut fd after seconds, or at the cap if that comes first; returns when (monotonic)."""
        with self.cond:
            deadline = time.monotonic() + seconds
            if self.cap is not None:
                deadline = min(deadline, self.cap)
            self.fd, self.deadline, self.fired = fd, deadline, False
            if self.thread is None:
                thread = threading.Thread(target=self._run, name="applogs-watchdog", daemon=True)
                try:
                    thread.start()
                except RuntimeError:
                    # A first write at interpreter shutdown (a command that logs and exits): Python
                    # 3.12+ starts no thread then. The connection's statement timeout and keepalives
                    # still bound this write.
                    return deadline
                self.thread = thread
            self.cond.notify()
            return deadline

    def limit(self, deadline):
        """No operation may last beyond deadline, the one under way included."""
        with self.cond:
            self.cap = deadline
            if self.deadline is not None and deadline < self.deadline:
                self.deadline = deadline
                self.cond.notify()

    def disarm(self):
        """True if the watchdog cut the connection."""
        with self.cond:
            self.deadline = None
            return self.fired

    def _run(self):
        with self.cond:
            while True:
                if self.deadline is None:
                    self.cond.wait()
                    continue
                remaining = self.deadline - time.monotonic()
                if remaining > 0:
                    self.cond.wait(remaining)
                    continue
                # Still armed past the deadline, and the owner waits for the lock to disarm:
                # the descriptor is still the connection's.
                self.deadline = None
                self.fired = True
                try:
                    s = socket.fromfd(self.fd, socket.AF_INET, socket.SOCK_STREAM)
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    finally:
                        s.close()
                except OSError:
                    pass


class Sink:
    def __init__(self, options, on_drop):
        self.options = options
        self.on_drop = on_drop  # called with a number of rows dropped for their data
        self.conn = None
        self.driver = None
        self.watchdog = Watchdog()
        self.refused = ""  # the server's reason for the last refused data
        self.backend = None  # server process of the connection
        # (server process, rows) of the last COPY that failed without telling whether it
        # committed (connection lost or cut while it ran).
        self.uncertain = None

    def connect(self):
        from django.db import connections

        wrapper = connections[self.options.database]
        params = wrapper.get_connection_params()
        # Below the exit timeout, so that at exit an unreachable host leaves time to spool.
        timeout = self.options.connect_timeout
        if params.get("connect_timeout"):
            timeout = min(timeout, int(params["connect_timeout"]))
        params["connect_timeout"] = timeout
        params.setdefault("application_name", "applogs-writer")
        for key, value in (("keepalives", 1), ("keepalives_idle", 30), ("keepalives_interval", 10),
                           ("keepalives_count", 3)):
            params.setdefault(key, value)
        self.driver = wrapper.Database
        # A connection of our own, in autocommit: never part of a portal transaction.
        conn = wrapper.get_new_connection(params)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = %d" % int(self.options.write_timeout * 1000))
                cur.execute("SELECT pg_backend_pid()")
                self.backend = cur.fetchone()[0]
        except Exception:
            conn.close()
            raise
        self.conn = conn

    def close(self):
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def detach(self):
        """In a forked child: forget the parent's connection without closing it (closing it
        would end the parent's session). Deallocating it is safe: psycopg2 and psycopg close a
        connection on deallocation only in the process that opened it."""
        self.conn = None

    def limit(self, deadline):
        """At exit: no write may last beyond deadline, the one under way included (a COPY
        waiting for a lock another session holds would otherwise wait the write timeout)."""
        self.watchdog.limit(deadline)

    @contextlib.contextmanager
    def _watched(self):
        """Around an operation on the connection: when it is not over by the write timeout (or
        the exit deadline), the watchdog cuts the connection and this raises Outage. Yields the
        deadline."""
        start = time.monotonic()
        deadline = self.watchdog.arm(self.conn.fileno(), self.options.write_timeout)
        try:
            yield deadline
        finally:
            if self.watchdog.disarm():
                self.close()
                # The bound it was armed with, or less when the exit deadline came during the
                # operation (or before it: then none).
                waited = max(0.0, min(deadline, time.monotonic()) - start)
                raise Outage("no answer from the database within %.0f s" % waited)

    def _copy(self, data):
        if self.conn is None:
            self.connect()
        with self._watched(), self.conn.cursor() as cur:
            if hasattr(cur, "copy_expert"):  # psycopg2
                cur.copy_expert(rows.copy_sql(), io.BytesIO(data))
            else:  # psycopg 3
                with cur.copy(rows.copy_sql()) as copy:
                    copy.write(data)

    def _is_data_error(self, exc):
        d = self.driver
        if d is None or self.conn is None or getattr(self.conn, "closed", True):
            return False
        return isinstance(exc, (d.DataError, d.IntegrityError))

    def _attempt(self, batch, data):
        """True if written, False if refused for its data; Outage otherwise. A stale session
        (server restarted, backend killed) gets one more try on a new one."""
        for attempt in (1, 2):
            fresh = self.conn is None
            try:
                self._copy(data)
                return True
            except Exception as exc:
                if not isinstance(exc, Outage) and self._is_data_error(exc):
                    self.refused = str(exc).strip()[:500]
                    return False
                if not fresh and self.backend is not None:
                    self.uncertain = (self.backend, batch)
                self.close()
                if isinstance(exc, Outage):
                    raise
                if fresh or attempt == 2:
                    raise Outage(str(exc))
            if self._settle():
                return True
        return False

    def _settle(self):
        """Whether the uncertain COPY is in the table (all of it or none: one transaction).
        Its server process is ended first, so that it cannot commit after the answer."""
        backend, batch = self.uncertain
        if backend == self.backend:
            self.close()  # never look it up through the very session that is in doubt
        try:
            if self.conn is None:
                self.connect()
            # Watched as a write is: the look-up waits for a lock the same way (and at exit, too).
            with self._watched() as deadline, self.conn.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", [backend])
                while True:
                    cur.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend])
                    if cur.fetchone() is None:
                        break
                    if time.monotonic() > deadline:
                        raise Outage("the server process of an interrupted write is still there")
                    time.sleep(0.1)
                last = batch[-1]
                cur.execute(
                    "SELECT 1 FROM %s WHERE created = %%s::timestamptz AND logger = %%s"
                    " AND message = %%s AND process IS NOT DISTINCT FROM %%s LIMIT 1" % rows.table(),
                    [rows.timestamp(last[rows.CREATED]), rows.clean(last[rows.LOGGER][:rows.LIMITS["logger"]]),
                     rows.clean(last[rows.MESSAGE]), last[rows.PROCESS]])
                landed = cur.fetchone() is not None
        except Outage:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise Outage(str(exc))
        self.uncertain = None
        return landed

    def write(self, batch):
        """Write a batch, or raise Outage(written=k) with rows[:k] in the table (or dropped)."""
        skip = 0
        if self.uncertain is not None:
            before = self.uncertain[1]
            # The same rows come again after an outage: skip them if they made it after all
            # (compared without extra, which the bad-row fallback may have replaced).
            if (self._settle() and len(before) <= len(batch)
                    and all(a[:rows.EXTRA] == b[:rows.EXTRA] for a, b in zip(before, batch))):
                skip = len(before)
        try:
            self._write(batch[skip:])
        except Outage as exc:
            exc.written += skip
            raise

    def _write(self, batch):
        if not batch:
            return
        data, bad = rows.encode(batch)
        if self._attempt(batch, data):
            if bad:
                self.on_drop(len(bad))
            return
        for i, row in enumerate(batch):
            try:
                data, bad = rows.encode([row])
                if bad or self._attempt([row], data):
                    if bad:
                        self.on_drop(1)
                    continue
                row = row[:rows.EXTRA] + (json.dumps({"applogs_error": self.refused}),)
                if not self._attempt([row], rows.encode([row])[0]):
                    self.on_drop(1)
            except Outage as exc:
                exc.written = i  # rows before i are in the table: never again
                raise
