"""The log table's partitions: one per interval of record time (UTC), created ahead, dropped past
the retention, and given a trigram index once closed.

The table is partitioned by range of ``created`` (migration 0004): ``<table>_before`` holds every
time before the first interval, ``<table>_pYYYYMMDD[_HHMM]`` one interval each, and
``<table>_default`` whatever no partition covers, so an insert never fails when maintenance has
not run. ``maintain()`` is the one entry point (``manage.py applogs_purge``); every step checks what
is already there, so running it twice changes nothing the second time.

Every catalog change waits for its lock at most LOCK_TIMEOUT and is retried: a lock request that
waits blocks every request behind it, and the log writer must never queue behind a long query.

Text search: the trigram GIN index on UPPER(message) makes every insert several times slower
(docs/benchmarks.md), so no index that an insert must update is kept on the partitions being
written. A partition gets the index once it is closed (its interval has passed), in one build,
which costs far less per row than keeping it up to date row by row. Until then, each run of
maintenance gives the open partition a partial index of its rows before the current hour
(``WHERE created < <hour>``): the rows written since are later, so inserts pass it by, and a search
reads only the rows since that hour without an index (the viewer reads them as a window of their
own: ``indexed_until()``, applogs.paginator).
"""
import collections
import datetime
import time

from django.db import OperationalError, connections, transaction

from . import conf

UTC = datetime.timezone.utc
INTERVALS = ("hour", "day", "week", "month")
LOCK_TIMEOUT = "2s"
LOCK_ATTEMPTS = 30
# pg_try_advisory_lock key: one maintenance at a time per database (any two 64-bit numbers work).
ADVISORY_KEY = 0x6170706C6F6773  # "applogs"
DEFAULT_BATCH = 5000

Partition = collections.namedtuple("Partition", "name lower upper is_default")

# ANALYZE gives an index's expression statistics of its own, and the planner then matches a
# search's pattern against every sampled value of UPPER(message) in every partition it plans: some
# 200 matches per partition, about 4 ms of a rare word's search over 90 daily partitions. A closed
# partition is rarely analyzed after its index is built, so whether a search pays that would be
# left to chance; without the statistics the planner always takes its estimate for a pattern it
# knows nothing about (a few rows), which is what a search for a word mostly is.
NO_EXPRESSION_STATISTICS = "ALTER INDEX {i} ALTER COLUMN 1 SET STATISTICS 0"


def floor(t, interval):
    """The start (UTC) of the interval that contains ``t``."""
    t = t.astimezone(UTC)
    if interval == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - datetime.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    raise ValueError("APPLOGS_PARTITION_INTERVAL must be one of %s, not %r" % (", ".join(INTERVALS), interval))


def next_start(t, interval):
    """The start of the interval after the one that contains ``t``."""
    start = floor(t, interval)
    if interval == "hour":
        return start + datetime.timedelta(hours=1)
    if interval == "day":
        return start + datetime.timedelta(days=1)
    if interval == "week":
        return start + datetime.timedelta(days=7)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def partition_name(table, lower):
    lower = lower.astimezone(UTC)
    if (lower.hour, lower.minute) == (0, 0):
        return "%s_p%s" % (table, lower.strftime("%Y%m%d"))
    return "%s_p%s" % (table, lower.strftime("%Y%m%d_%H%M"))


def _quote(name):
    return '"%s"' % name.replace('"', '""')


def _sqlstate(exc):
    cause = exc.__cause__
    return getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)


class Partitions:
    """The partitions of the log table on one database alias."""

    def __init__(self, alias=None, table=None, interval=None):
        from .models import LogRecord

        self.alias = alias or conf.get("DATABASE")
        self.table = table or LogRecord._meta.db_table
        self.interval = interval or conf.get("PARTITION_INTERVAL")
        floor(datetime.datetime.now(UTC), self.interval)  # validates the setting
        self.connection = connections[self.alias]

    @property
    def default_name(self):
        return self.table + "_default"

    def is_partitioned(self):
        with self.connection.cursor() as cur:
            cur.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [self.table])
            row = cur.fetchone()
        return bool(row) and row[0] == "p"

    def list(self):
        """Every partition, oldest first (``lower`` None: from the beginning of time); the default
        partition last."""
        # The bounds are read back through a cast, so their text form (which follows the session's
        # TimeZone) never needs parsing here.
        with self.connection.cursor() as cur:
            cur.execute(
                r"""
                SELECT c.relname,
                       (regexp_match(b.expr, 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
                       (regexp_match(b.expr, 'TO \(''([^'']+)''\)'))[1]::timestamptz,
                       b.expr = 'DEFAULT'
                FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid
                CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS expr) b
                WHERE i.inhparent = to_regclass(%s)
                """,
                [self.table],
            )
            rows = [Partition(*row) for row in cur.fetchall()]
        far_past = datetime.datetime.min.replace(tzinfo=UTC)
        return sorted(rows, key=lambda p: (p.is_default, p.lower or far_past))

    # -- steps of maintain() -------------------------------------------------------------------

    def missing(self, now, ahead_days, cutoff=None):
        """(lower, upper) of the partitions to create so that every time up to ``now`` +
        ``ahead_days`` has one; none before ``cutoff`` (they would be dropped at once)."""
        ranged = [p for p in self.list() if not p.is_default]
        until = now + datetime.timedelta(days=ahead_days)
        start = max([p.upper for p in ranged if p.upper is not None] or [floor(now, self.interval)])
        if cutoff is not None and start < floor(cutoff, self.interval):
            start = floor(cutoff, self.interval)
        out = []
        while start < until:
            end = next_start(start, self.interval)
            out.append((start, end))
            start = end
        return out

    def create(self, lower, upper):
        """Create and attach the partition [lower, upper), moving into it the rows the default
        partition holds for that range. Returns the partition's name and the rows moved."""
        name = partition_name(self.table, lower)
        moved = [0]

        def attach(cur):
            # Inserts wait while the partition is attached: one already routed to the default
            # partition would fail once the default no longer covers its time. This lock lets
            # readers through (CREATE TABLE ... PARTITION OF would block them too) and waits only
            # for inserts in progress, which are short.
            cur.execute("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE".format(t=_quote(self.table)))
            cur.execute("CREATE TABLE {p} (LIKE {t} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)".format(
                p=_quote(name), t=_quote(self.table)))
            # Rows of this range that reached the default partition move first (the attach checks
            # that the default partition holds none).
            cur.execute("LOCK TABLE {d} IN ACCESS EXCLUSIVE MODE".format(d=_quote(self.default_name)))
            cur.execute(
                "WITH moved AS (DELETE FROM {d} WHERE created >= %s AND created < %s RETURNING *) "
                "INSERT INTO {p} SELECT * FROM moved".format(d=_quote(self.default_name), p=_quote(name)),
                [lower, upper])
            moved[0] = cur.rowcount
            cur.execute("ALTER TABLE {t} ATTACH PARTITION {p} FOR VALUES FROM (%s) TO (%s)".format(
                t=_quote(self.table), p=_quote(name)), [lower, upper])

        self._locked(attach)
        return name, moved[0]

    def expired(self, cutoff):
        """The ranged partitions whose every time is before ``cutoff``."""
        return [p for p in self.list() if not p.is_default and p.upper is not None and p.upper <= cutoff]

    def drop(self, partition):
        self._locked(lambda cur: cur.execute("DROP TABLE {p}".format(p=_quote(partition.name))))

    def delete_older(self, name, cutoff, batch=DEFAULT_BATCH):
        """Delete the rows of partition ``name`` older than ``cutoff``, in short batches."""
        sql = ("DELETE FROM {p} WHERE id IN (SELECT id FROM {p} WHERE created < %s "
               "ORDER BY created, id LIMIT %s)").format(p=_quote(name))
        total = 0
        while True:
            with self.connection.cursor() as cur:  # autocommit: each batch commits on its own
                cur.execute(sql, [cutoff, batch])
                n = cur.rowcount
            total += n
            if n < batch:
                return total

    def count_older(self, name, cutoff):
        with self.connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM {p} WHERE created < %s".format(p=_quote(name)), [cutoff])
            return cur.fetchone()[0]

    def search_indexes(self, partial=False, invalid=False):
        """(partition, index, until) of the trigram indexes on UPPER(message) of the partitions
        (only the partial ones with ``partial``; the invalid ones that an interrupted build leaves
        too with ``invalid``); ``until`` is the time before which a partial index covers the rows,
        None for an index of the whole partition."""
        # Told apart by their operator class, not by deparsing them: the viewer asks before every
        # search page.
        with self.connection.cursor() as cur:
            cur.execute(
                r"""
                SELECT c.relname, i.relname,
                       (regexp_match(pg_get_expr(x.indpred, x.indrelid), '''([^'']+)''::timestamp'))[1]::timestamptz
                FROM pg_inherits h
                JOIN pg_index x ON x.indrelid = h.inhrelid
                JOIN pg_class c ON c.oid = x.indrelid
                JOIN pg_class i ON i.oid = x.indexrelid
                WHERE h.inhparent = to_regclass(%s)
                  AND (x.indisvalid OR %s) AND (x.indpred IS NOT NULL OR NOT %s)
                  AND EXISTS (SELECT 1 FROM pg_opclass o
                              WHERE o.oid = ANY (x.indclass::oid[]) AND o.opcname = 'gin_trgm_ops')
                """,
                [self.table, invalid, partial],
            )
            return cur.fetchall()

    def indexed_until(self):
        """The newest time before which the open partitions' text is indexed (their partial
        indexes), or None when they have none. A search reads the rows from then on by time and
        the rows before it through the indexes, as two windows: a partial index serves only a query
        whose time range lies within its own."""
        times = [until for _, _, until in self.search_indexes(partial=True)]
        return max(times) if times else None

    def unindexed_closed(self, now):
        """The closed ranged partitions without a valid trigram index of all their rows."""
        closed = [p for p in self.list() if not p.is_default and p.upper is not None and p.upper <= now]
        indexed = {table for table, _, until in self.search_indexes() if until is None}
        return [p for p in closed if p.name not in indexed]

    def unindexed_open(self, now):
        """(partition, hour) for each open ranged partition whose rows before the current hour
        have no partial trigram index yet; none for partitions of an hour or less."""
        hour = floor(now, "hour")
        indexes = self.search_indexes()
        whole = {table for table, _, until in indexes if until is None}
        partial = {(table, until) for table, _, until in indexes if until is not None}
        return [(p, hour) for p in self.list()
                if not p.is_default and p.lower is not None and p.upper is not None
                and p.lower < hour and now < p.upper and p.name not in whole
                and (p.name, hour) not in partial]

    def index(self, partition):
        """Build the trigram index of a closed partition, without blocking writes to it; its
        partial indexes are dropped then."""
        self._build_search_index(partition, partition.name + "_message_trgm")

    def index_until(self, partition, until):
        """Build the partial trigram index of the rows of an open partition before ``until``,
        without blocking writes to it; its older partial indexes are dropped then."""
        name = "{0}_trgm_until_{1:%Y%m%d%H}".format(partition.name, until.astimezone(UTC))
        self._build_search_index(partition, name, until)

    def _build_search_index(self, partition, name, until=None):
        index = _quote(name)
        where = "" if until is None else " WHERE created < '{0}'::timestamptz".format(until.isoformat())
        with self.connection.cursor() as cur:
            # What an interrupted CREATE INDEX CONCURRENTLY leaves behind: an invalid index.
            cur.execute("DROP INDEX CONCURRENTLY IF EXISTS {i}".format(i=index))
            cur.execute("SET maintenance_work_mem = '128MB'")
            try:
                cur.execute("CREATE INDEX CONCURRENTLY {i} ON {p} USING gin (UPPER(message) gin_trgm_ops){w}".format(
                    i=index, p=_quote(partition.name), w=where))
            finally:
                cur.execute("RESET maintenance_work_mem")
            cur.execute(NO_EXPRESSION_STATISTICS.format(i=index))
        for table, older, _ in self.search_indexes(partial=True, invalid=True):
            if table == partition.name and older != name:
                with self.connection.cursor() as cur:
                    cur.execute("DROP INDEX CONCURRENTLY IF EXISTS {i}".format(i=_quote(older)))

    def maintain(self, retention_days=0, ahead_days=None, now=None, log=None, dry_run=False,
                 batch=DEFAULT_BATCH):
        """Create the partitions ahead, drop the expired ones (retention_days 0: keep everything),
        delete expired rows from the default partition, index the closed partitions and the rows
        of the open ones before the current hour.

        Returns False (and does nothing) when another maintenance holds the database's lock.
        """
        log = log or (lambda message: None)
        now = now or datetime.datetime.now(UTC)
        ahead_days = conf.get("PARTITION_AHEAD_DAYS") if ahead_days is None else ahead_days
        cutoff = now - datetime.timedelta(days=retention_days) if retention_days else None
        with self.connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
            if not cur.fetchone()[0]:
                log("Another partition maintenance is running on this database; nothing done.")
                return False
        try:
            for lower, upper in self.missing(now, ahead_days, cutoff):
                if dry_run:
                    log("Would create partition %s [%s, %s)." % (
                        partition_name(self.table, lower), lower.isoformat(), upper.isoformat()))
                    continue
                name, moved = self.create(lower, upper)
                log("Created partition %s [%s, %s)%s." % (
                    name, lower.isoformat(), upper.isoformat(),
                    ", moved %d record(s) into it from %s" % (moved, self.default_name) if moved else ""))
            if cutoff is not None:
                for partition in self.expired(cutoff):
                    if dry_run:
                        log("Would drop partition %s (records before %s)." % (
                            partition.name, partition.upper.isoformat()))
                        continue
                    self.drop(partition)
                    log("Dropped partition %s (records before %s)." % (partition.name, partition.upper.isoformat()))
                # Rows expire one by one only where a partition spans more than the retention:
                # the default partition, and the table converted by migration 0004 until all of
                # it has expired.
                spanning = [p.name for p in self.list() if p.is_default or p.lower is None]
                for name in spanning:
                    if dry_run:
                        log("Would delete %d record(s) older than %s from %s." % (
                            self.count_older(name, cutoff), cutoff.isoformat(), name))
                        continue
                    n = self.delete_older(name, cutoff, batch)
                    log("Deleted %d record(s) older than %s from %s." % (n, cutoff.isoformat(), name))
                self.expire_volume(cutoff, log, dry_run)
            for partition in self.unindexed_closed(now):
                if dry_run:
                    log("Would build the text search index of %s." % partition.name)
                    continue
                t = time.monotonic()
                self.index(partition)
                log("Built the text search index of %s in %.1f s." % (partition.name, time.monotonic() - t))
            for partition, until in self.unindexed_open(now):
                if dry_run:
                    log("Would build the text search index of %s before %s." % (partition.name, until.isoformat()))
                    continue
                t = time.monotonic()
                self.index_until(partition, until)
                log("Built the text search index of %s before %s in %.1f s." % (
                    partition.name, until.isoformat(), time.monotonic() - t))
        finally:
            with self.connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
        return True

    def expire_volume(self, cutoff, log, dry_run=False):
        """Delete the chart's counts (applogs/volume.py) of the buckets wholly before ``cutoff``:
        the records they count are gone, and removing rows from partitions does not pass through
        the trigger that keeps the counts."""
        from .volume import GRAINS

        with self.connection.cursor() as cur:
            cur.execute("SELECT to_regclass('applogs_volume') IS NOT NULL")
            if not cur.fetchone()[0]:
                return
            total = 0
            for grain in GRAINS:
                last = cutoff - datetime.timedelta(seconds=grain)
                if dry_run:
                    cur.execute("SELECT count(*) FROM applogs_volume WHERE grain = %s AND bucket <= %s", [grain, last])
                    total += cur.fetchone()[0]
                else:
                    cur.execute("DELETE FROM applogs_volume WHERE grain = %s AND bucket <= %s", [grain, last])
                    total += cur.rowcount
        if total:
            log("%s %d count(s) of the volume chart before %s." % (
                "Would delete" if dry_run else "Deleted", total, cutoff.isoformat()))

    def _locked(self, step):
        """Run step(cursor) in a transaction whose lock waits are bounded; retry on a timeout."""
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                with transaction.atomic(using=self.alias):
                    with self.connection.cursor() as cur:
                        cur.execute("SET LOCAL lock_timeout = '%s'" % LOCK_TIMEOUT)
                        step(cur)
                return
            except OperationalError as exc:
                if _sqlstate(exc) != "55P03" or attempt == LOCK_ATTEMPTS:  # lock_not_available
                    raise
                time.sleep(1)
