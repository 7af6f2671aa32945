"""The partitioned log table: routing, maintenance, retention, conversion and paging across
partitions, on the real PostgreSQL server.

Maintenance takes the current time as an argument, so these tests run it "days later" on partitions
created for the days after the conversion bound (the tables of a fresh test database hold every
real time in applogs_logrecord_before).
"""
import os
import re
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from applogs.models import LogRecord
from applogs.paginator import decode_cursor, encode_cursor, keyset_page
from applogs.partitions import Partitions

from .support import migrate_while_writing
from .viewer_support import page_ids, viewer  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(databases=["default", "applogs"], transaction=True)

BEFORE = "applogs_logrecord_before"
DEFAULT = "applogs_logrecord_default"
# Rows for the conversion test: small enough for every cell of the matrix; the conversion of
# millions of rows is run with APPLOGS_TEST_CONVERSION_ROWS=3000000 and in bench/partitions.py.
CONVERSION_ROWS = int(os.environ.get("APPLOGS_TEST_CONVERSION_ROWS", "300000"))


def sql(query, params=None):
    with connections["applogs"].cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else cur.rowcount


def partition_of(pk):
    return sql("SELECT tableoid::regclass::text FROM applogs_logrecord WHERE id = %s", [pk])[0][0]


def names(part):
    return [p.name for p in part.list()]


def add(*times, **fields):
    rows = [LogRecord(created=t, level=20, logger="part", message=fields.get("message", "row %d" % i))
            for i, t in enumerate(times)]
    LogRecord.objects.bulk_create(rows)
    return [r.pk for r in rows]


@pytest.fixture
def part():
    """Partitions() on the applogs test database, put back afterwards as migrations left it
    (applogs_logrecord_before and applogs_logrecord_default only), so tests/test_schema.py still
    sees the migrated schema."""
    part = Partitions("applogs")
    yield part
    sql("TRUNCATE applogs_logrecord")
    for p in part.list():
        if p.name not in (BEFORE, DEFAULT):
            sql('DROP TABLE "%s"' % p.name)
    if BEFORE not in names(part):
        call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
        call_command("migrate", "applogs", database="applogs", verbosity=0)


@pytest.fixture
def t0(part):
    """The first time after applogs_logrecord_before: where the daily partitions begin."""
    (before,) = [p for p in part.list() if p.name == BEFORE]
    assert before.lower is None and before.upper.hour == 0
    return before.upper


def test_rows_land_in_their_partition_and_the_default_catches_the_rest(part, t0):
    part.maintain(now=t0, ahead_days=3)
    assert names(part) == [BEFORE] + ["applogs_logrecord_p" + (t0 + timedelta(days=d)).strftime("%Y%m%d")
                                      for d in range(3)] + [DEFAULT]
    day = timedelta(days=1)
    pks = add(t0 - timedelta(microseconds=1), t0, t0 + day - timedelta(microseconds=1), t0 + 2 * day + timedelta(hours=5),
              t0 + 3 * day, t0 + 400 * day, timezone.now())
    assert [partition_of(pk) for pk in pks] == [
        BEFORE, part.list()[1].name, part.list()[1].name, part.list()[3].name, DEFAULT, DEFAULT, BEFORE]


def test_maintenance_is_idempotent(part, t0):
    out = StringIO()
    part.maintain(now=t0, ahead_days=2, log=out.write)
    first = names(part)
    assert out.getvalue().count("Created partition") == 2
    out = StringIO()
    part.maintain(now=t0, ahead_days=2, log=out.write)
    assert out.getvalue() == ""
    assert names(part) == first
    # The command with the real time: partitions up to a week ahead, then nothing more to do.
    call_command("applogs_purge", stdout=StringIO())
    out = StringIO()
    call_command("applogs_purge", stdout=out)
    assert "Created" not in out.getvalue() and "Dropped" not in out.getvalue()


def test_rows_in_the_default_partition_move_into_the_partition_created_for_them(part, t0):
    later = t0 + timedelta(days=10, hours=3)
    pks = add(later, later, later + timedelta(days=1))
    assert {partition_of(pk) for pk in pks} == {DEFAULT}
    out = StringIO()
    part.maintain(now=later, ahead_days=0, log=out.write)
    assert "moved 2 record(s)" in out.getvalue()
    assert [partition_of(pk) for pk in pks] == ["applogs_logrecord_p" + later.strftime("%Y%m%d")] * 2 + [DEFAULT]
    assert sql("SELECT count(*), count(DISTINCT id) FROM applogs_logrecord") == [(3, 3)]


def test_retention_drops_exactly_the_expired_partitions(part, t0):
    day = timedelta(days=1)
    part.maintain(now=t0, ahead_days=6)
    # One row in every hour of every day, in the conversion partition and in the default one too.
    times = [t0 + timedelta(hours=h) for h in range(-24, 6 * 24)] + [t0 + 30 * day]
    add(*times)
    now = t0 + 5 * day + timedelta(hours=1)

    part.maintain(now=now, retention_days=0, ahead_days=0)
    assert sql("SELECT count(*) FROM applogs_logrecord") == [(len(times),)]

    out = StringIO()
    part.maintain(now=now, retention_days=2, ahead_days=0, log=out.write)
    # Whole days before the cutoff go; the day that contains the cutoff stays whole.
    assert names(part) == ["applogs_logrecord_p" + (t0 + d * day).strftime("%Y%m%d") for d in (3, 4, 5)] + [DEFAULT]
    assert out.getvalue().count("Dropped partition") == 4
    kept = sorted(t for t in times if t >= t0 + 3 * day)
    assert [r.created for r in LogRecord.objects.order_by("created")] == kept


def test_retention_deletes_expired_rows_of_the_converted_table_and_the_default_partition(part, t0):
    now = timezone.now()
    ages = [0, 1, 5, 29, 31, 40, 40, 100, 365, 400]
    add(*[now - timedelta(days=d, minutes=1) for d in ages])
    far = t0 + timedelta(days=3000)
    add(far, message="default")

    out = StringIO()
    call_command("applogs_purge", "--older-than-days", "30", "--dry-run", stdout=out)
    assert "Would delete 6 record(s)" in out.getvalue()
    assert LogRecord.objects.count() == 11
    assert names(part) == [BEFORE, DEFAULT]

    out = StringIO()
    with CaptureQueriesContext(connections["applogs"]) as queries:
        call_command("applogs_purge", "--older-than-days", "30", "--batch-size", "4", stdout=out)
    assert "Deleted 6 record(s)" in out.getvalue()
    # In batches of at most 4: the converted table's 6 rows as 4, then 2 (the short batch ends
    # the loop); the default partition's none in one.
    deletes = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith("DELETE") and "applogs_volume" not in q["sql"]]
    assert all("LIMIT 4" in sql for sql in deletes)
    assert len([sql for sql in deletes if sql.startswith('DELETE FROM "%s"' % BEFORE)]) == 2
    assert len(deletes) == 3
    assert LogRecord.objects.count() == 5
    # A record far in the future: moved from the default partition into its own, then dropped.
    part.maintain(now=far + timedelta(days=1), retention_days=1, ahead_days=0)
    assert LogRecord.objects.count() == 1
    part.maintain(now=far + timedelta(days=2, hours=1), retention_days=1, ahead_days=0)
    assert LogRecord.objects.count() == 0


@pytest.mark.parametrize("days", ["-3", "x"])
def test_purge_refuses_a_negative_retention(days):
    with pytest.raises(CommandError):
        call_command("applogs_purge", "--older-than-days", days)


def test_maintenance_while_rows_are_written(part, t0):
    """A writer inserts rows over the coming days (some land in the default partition first)
    while maintenance creates, fills and attaches partitions: every row is there exactly once, in
    the partition of its time, and no insert failed."""
    stop = threading.Event()
    written, errors = [], []

    def writer():
        import psycopg2

        s = connections["applogs"].settings_dict
        conn = psycopg2.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"],
                                dbname=s["NAME"])
        conn.autocommit = True
        i = 0
        try:
            with conn.cursor() as cur:
                while not stop.is_set() or i < 2000:
                    batch = [(t0 + timedelta(minutes=37 * (i + k)), "w %d" % (i + k)) for k in range(20)]
                    cur.execute(
                        "INSERT INTO applogs_logrecord (created, level, logger, module, func, message, traceback,"
                        " ip, \"user\", request_id, host, extra) SELECT c, 20, 'w', '', '', m, '', '', '', '', '',"
                        " '{}' FROM unnest(%s::timestamptz[], %s::text[]) AS u(c, m) RETURNING id",
                        [[b[0] for b in batch], [b[1] for b in batch]])
                    written.extend(row[0] for row in cur.fetchall())
                    i += 20
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for d in range(0, 40, 2):
            part.maintain(now=t0 + timedelta(days=d), ahead_days=1)
    finally:
        stop.set()
        thread.join(120)
    assert not errors
    assert len(written) >= 2000
    assert sql("SELECT count(*), count(DISTINCT id) FROM applogs_logrecord WHERE logger = 'w'") == [
        (len(written), len(written))]
    # Every row whose day has a partition is in it; the others are in the default partition.
    misplaced = sql("""
        SELECT count(*) FROM applogs_logrecord r
        WHERE r.tableoid::regclass::text <> CASE
            WHEN r.created < %s THEN %s
            WHEN to_regclass('applogs_logrecord_p' || to_char(r.created AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NOT NULL
            THEN 'applogs_logrecord_p' || to_char(r.created AT TIME ZONE 'UTC', 'YYYYMMDD')
            ELSE %s END""", [t0, BEFORE, DEFAULT])
    assert misplaced == [(0,)]


def test_keyset_paging_crosses_partition_boundaries(part, t0):
    part.maintain(now=t0, ahead_days=3)
    day = timedelta(days=1)
    times = []
    for boundary in (t0, t0 + day, t0 + 2 * day, t0 + 3 * day):  # the last one: into the default
        times += [boundary - timedelta(microseconds=1)] * 3 + [boundary] * 4 + [boundary + timedelta(seconds=1)]
    add(*times)
    assert len({partition_of(r.pk) for r in LogRecord.objects.all()}) == 5
    expected = list(LogRecord.objects.order_by("-created", "-id").values_list("pk", flat=True))

    seen, cursor = [], None
    while True:
        page = keyset_page(LogRecord.objects.all(), cursor, 5)
        seen += [r.pk for r in page.rows]
        if not page.has_next:
            break
        cursor = decode_cursor(page.next_cursor)
    assert seen == expected


def test_a_page_is_planned_over_the_partitions_of_its_window_only(part, t0):
    # Planning costs time per partition: a page the last day before its cursor fills must not
    # open every older partition.
    day = timedelta(days=1)
    part.maintain(now=t0 + 12 * day, ahead_days=0)
    add(*[t0 + d * day + timedelta(hours=h) for d in range(12) for h in range(0, 24, 3)])
    cursor = (t0 + 10 * day + timedelta(hours=12), 10 ** 9)
    with CaptureQueriesContext(connections["applogs"]) as queries:
        page = keyset_page(LogRecord.objects.all(), cursor, 5)
    assert [r.created for r in page.rows] == [t0 + 10 * day + timedelta(hours=h) for h in (12, 9, 6, 3, 0)]
    (query,) = [q["sql"] for q in queries.captured_queries if "applogs_logrecord" in q["sql"]]
    plan = " ".join(row[0] for row in sql("EXPLAIN (COSTS OFF) " + query))
    opened = set(re.findall(r"applogs_logrecord_(?:p\d{8}|before|default)\b", plan))
    assert opened <= {"applogs_logrecord_p" + (t0 + d * day).strftime("%Y%m%d") for d in (9, 10)}, plan


def test_closed_partitions_get_the_search_index_and_search_reads_every_partition(part, t0):
    part.maintain(now=t0, ahead_days=3)
    day = timedelta(days=1)
    add(t0 - day, t0 + timedelta(hours=1), t0 + day + timedelta(hours=1), t0 + 2 * day + timedelta(hours=1),
        t0 + 9 * day, message="needle in a haystack")
    add(t0 + timedelta(hours=2), message="hay only")
    part.maintain(now=t0 + 2 * day, ahead_days=0)
    trigram = {row[0] for row in sql(
        "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid "
        "WHERE x.indisvalid AND pg_get_indexdef(x.indexrelid) LIKE '%%gin_trgm_ops%%'")}
    p = ["applogs_logrecord_p" + (t0 + d * day).strftime("%Y%m%d") for d in range(3)]
    # Closed: the converted table (it kept its index) and the first two days; open: the rest.
    assert trigram == {BEFORE, p[0], p[1]}
    assert LogRecord.objects.filter(message__icontains="NEEDLE").count() == 5


def test_the_search_indexes_keep_no_statistics_for_the_planner_to_match_a_search_against(part, t0):
    day, hour = timedelta(days=1), timedelta(hours=1)
    part.maintain(now=t0, ahead_days=2)
    add(*[t0 + timedelta(minutes=i) for i in range(300)], message="closed day")
    add(*[t0 + day + timedelta(minutes=i) for i in range(300)], message="open day")
    part.maintain(now=t0 + day + 6 * hour, ahead_days=1)
    built = {(table, index) for table, index, _ in part.search_indexes() if table != BEFORE}
    assert {table for table, _ in built} == {day_name(t0), day_name(t0 + day)}
    sql("ANALYZE applogs_logrecord")
    analyzed = {row[0] for row in sql("SELECT tablename FROM pg_stats WHERE attname = 'message'")}
    assert {day_name(t0), day_name(t0 + day)} <= analyzed
    assert sql("SELECT tablename FROM pg_stats WHERE tablename = ANY(%s)", [[i for _, i in built]]) == []


def partial_indexes(part):
    return sorted((table, until) for table, _, until in part.search_indexes() if until is not None)


def day_name(t):
    return "applogs_logrecord_p" + t.strftime("%Y%m%d")


def test_the_open_partition_gets_a_search_index_of_its_rows_before_the_hour(part, t0):
    hour = timedelta(hours=1)
    part.maintain(now=t0, ahead_days=1)
    assert partial_indexes(part) == []  # no rows before the day's first hour
    out = StringIO()
    part.maintain(now=t0 + 10 * hour + timedelta(minutes=30), ahead_days=1, log=out.write, dry_run=True)
    assert "Would build the text search index of %s before %s." % (
        day_name(t0), (t0 + 10 * hour).isoformat()) in out.getvalue()
    assert partial_indexes(part) == []
    part.maintain(now=t0 + 10 * hour + timedelta(minutes=30), ahead_days=1)
    assert partial_indexes(part) == [(day_name(t0), t0 + 10 * hour)]
    assert part.indexed_until() == t0 + 10 * hour
    out = StringIO()
    part.maintain(now=t0 + 10 * hour + timedelta(minutes=59), ahead_days=1, log=out.write)
    assert out.getvalue() == ""
    # The next hour's index replaces the previous one.
    part.maintain(now=t0 + 11 * hour, ahead_days=1)
    assert partial_indexes(part) == [(day_name(t0), t0 + 11 * hour)]
    # Closed, the partition gets the index of all its rows instead; the new day's first hour has
    # no rows before it to index.
    part.maintain(now=t0 + 24 * hour + timedelta(minutes=30), ahead_days=1)
    assert partial_indexes(part) == []
    assert part.indexed_until() is None
    assert day_name(t0) in {table for table, _, until in part.search_indexes() if until is None}


def test_an_interrupted_partial_index_build_is_cleaned_up(part, t0):
    hour = timedelta(hours=1)
    part.maintain(now=t0, ahead_days=1)
    (open_day,) = [p for p in part.list() if p.name == day_name(t0)]
    # A build cut short while it waits for a writer's transaction leaves an invalid index, as an
    # interrupted CREATE INDEX CONCURRENTLY does.
    holding, release = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic(using="applogs"):
                add(t0 + hour)
                holding.set()
                release.wait(30)
        finally:
            connections["applogs"].close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(30)
    try:
        sql("SET statement_timeout = '2s'")
        with pytest.raises(OperationalError):
            part.index_until(open_day, t0 + 10 * hour)
    finally:
        sql("RESET statement_timeout")
        release.set()
        thread.join()
    (name,) = [name for _, name, _ in part.search_indexes(partial=True, invalid=True)]
    assert part.indexed_until() is None  # an invalid index is never relied on
    part.maintain(now=t0 + 11 * hour, ahead_days=1)
    assert partial_indexes(part) == [(day_name(t0), t0 + 11 * hour)]
    assert not sql("SELECT 1 FROM pg_class WHERE relname = %s", [name])


def test_rows_written_after_the_hour_of_the_partial_index_do_not_enter_it(part, t0):
    hour = timedelta(hours=1)
    part.maintain(now=t0 + 10 * hour, ahead_days=1)
    (index,) = [name for _, name, until in part.search_indexes() if until is not None]

    def size():
        return sql("SELECT pg_relation_size(%s::regclass)", [index])[0][0]

    empty = size()
    add(*[t0 + 10 * hour + timedelta(seconds=i) for i in range(3000)], message="written later, passed by")
    assert size() == empty
    add(*[t0 + timedelta(seconds=i) for i in range(3000)], message="written late for an earlier hour")
    assert size() > empty


def uses_partial_index(query):
    """Whether the plan of ``query`` reads an open partition's partial search index when it may
    use bitmap scans only (the other plans of a small test table would hide whether it can)."""
    with connections["applogs"].cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("SET enable_indexscan = off")
        try:
            cur.execute("EXPLAIN (COSTS OFF) " + query)
            plan = " ".join(row[0] for row in cur.fetchall())
        finally:
            cur.execute("RESET enable_seqscan")
            cur.execute("RESET enable_indexscan")
    return "_trgm_until_" in plan


@pytest.fixture
def needles(part, t0):
    """An open partition with a partial index until t0 + 10 h, hay on both sides of that hour,
    and needles (newest first) before and after it."""
    hour = timedelta(hours=1)
    part.maintain(now=t0, ahead_days=1)
    add(*[t0 + timedelta(seconds=i) for i in range(0, 12 * 3600, 3)], message="hay only")
    pks = add(t0 + hour, t0 + 9 * hour, t0 + 10 * hour, t0 + 10 * hour + timedelta(minutes=5),
              message="a needle in the hay")
    part.maintain(now=t0 + 10 * hour, ahead_days=1)
    sql("ANALYZE applogs_logrecord")
    sql('ANALYZE "%s"' % day_name(t0))
    return pks[::-1]


def test_a_search_reads_the_rows_before_the_hour_through_the_partial_index(part, t0, needles):
    queryset = LogRecord.objects.filter(message__icontains="NEEDLE")
    cursor = (t0 + timedelta(hours=12), 10 ** 9)
    edge = part.indexed_until()
    with CaptureQueriesContext(connections["applogs"]) as queries:
        page = keyset_page(queryset, cursor, 3, edge=edge)
    assert [r.pk for r in page.rows] == needles[:3]
    windows = [q["sql"] for q in queries.captured_queries if '"applogs_logrecord"."created"' in q["sql"]]
    # The rows since the hour, then the rows before it (a window the partial index serves).
    assert len(windows) == 2 and not uses_partial_index(windows[0]) and uses_partial_index(windows[1])

    seen, cursor = [], None
    while True:
        page = keyset_page(queryset, cursor or (t0 + timedelta(hours=12), 10 ** 9), 1, edge=edge)
        seen += [r.pk for r in page.rows]
        if not page.has_next:
            break
        cursor = decode_cursor(page.next_cursor)
    assert seen == needles


def test_a_newer_page_of_a_search_reads_the_rows_before_the_hour_through_the_partial_index(part, t0, needles):
    queryset = LogRecord.objects.filter(message__icontains="NEEDLE")
    oldest = LogRecord.objects.get(pk=needles[-1])
    edge = part.indexed_until()
    with CaptureQueriesContext(connections["applogs"]) as queries:
        page = keyset_page(queryset, None, 2, before=(oldest.created, oldest.pk), edge=edge)
    assert [r.pk for r in page.rows] == needles[1:3]
    windows = [q["sql"] for q in queries.captured_queries if '"applogs_logrecord"."created"' in q["sql"]]
    # The rows up to the hour (through the partial index), then the rows from it.
    assert len(windows) == 2 and uses_partial_index(windows[0]) and not uses_partial_index(windows[1])


def test_the_viewer_searches_with_the_partial_index(part, t0, needles, viewer):  # noqa: F811
    after = encode_cursor(t0 + timedelta(hours=12), 10 ** 9)
    with CaptureQueriesContext(connections["applogs"]) as queries:
        response = viewer.get("/applogs/", {"q": "needle", "after": after})
    assert page_ids(response) == needles
    assert any(uses_partial_index(q["sql"]) for q in queries.captured_queries
               if '"applogs_logrecord"."created"' in q["sql"])


@pytest.mark.heavy
def test_conversion_of_a_populated_table_loses_nothing_and_reverses(part):
    """migrate back to a plain table, fill it, convert it while a writer inserts, convert back."""
    call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
    assert sql("SELECT relkind FROM pg_class WHERE relname = 'applogs_logrecord'") == [("r",)]
    sql("""
        INSERT INTO applogs_logrecord (created, level, logger, module, func, message, traceback, ip, "user",
                                       request_id, host, extra)
        SELECT now() - mod(i, 2000000) * interval '3 seconds', 20, 'conv', '', '', 'm' || mod(i, 1000), '', '', '',
               '', '', '{}'
        FROM generate_series(1, %s) AS i""", [CONVERSION_ROWS])
    fingerprint = "SELECT count(*), count(DISTINCT id), sum(id), max(id), sum(hashtext(message || created::text)) " \
                  "FROM applogs_logrecord WHERE logger = %s"
    before = sql(fingerprint, ["conv"])
    assert before[0][0] == CONVERSION_ROWS

    written = []
    assert not migrate_while_writing(lambda: written.extend(add(timezone.now(), message="during")))
    assert sql("SELECT relkind FROM pg_class WHERE relname = 'applogs_logrecord'") == [("p",)]
    assert names(part) == [BEFORE, DEFAULT]
    assert sql(fingerprint, ["conv"]) == before
    assert sql("SELECT count(*), count(DISTINCT id) FROM applogs_logrecord WHERE logger = 'part'") == [
        (len(written), len(written))]
    # The identity goes on from where the old table's sequence was.
    (new_pk,) = add(timezone.now())
    assert new_pk > max([before[0][3]] + written)

    call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
    assert sql("SELECT relkind FROM pg_class WHERE relname = 'applogs_logrecord'") == [("r",)]
    assert sql(fingerprint, ["conv"]) == before
    assert sql("SELECT count(*) FROM applogs_logrecord WHERE logger = 'part'") == [(len(written) + 1,)]
    (newer_pk,) = add(timezone.now())
    assert newer_pk > new_pk
    call_command("migrate", "applogs", database="applogs", verbosity=0)
    assert sql(fingerprint, ["conv"]) == before


def test_conversion_interrupted_after_its_swap_completes_when_migrate_runs_again(part):
    """The swap is done but Django never recorded 0004 (the process was killed): migrate again."""
    import importlib

    conversion = importlib.import_module("applogs.migrations.0004_partition_by_created")
    call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
    (kept,) = add(timezone.now(), message="before the interruption")
    with connections["applogs"].cursor() as cur:
        for statement in (conversion.ADD_BOUND, conversion.VALIDATE_BOUND, conversion.BUILD_KEY,
                          conversion.SWAP):
            cur.execute(statement)
    assert sql("SELECT relkind FROM pg_class WHERE relname = 'applogs_logrecord'") == [("p",)]
    call_command("migrate", "applogs", database="applogs", verbosity=0)
    assert names(part) == [BEFORE, DEFAULT]
    assert list(LogRecord.objects.values_list("id", "message")) == [(kept, "before the interruption")]
    (newer,) = add(timezone.now())
    assert newer > kept


def test_conversion_reverses_after_retention_dropped_the_converted_table(part, t0):
    part.maintain(now=t0, ahead_days=2)
    add(t0 + timedelta(hours=30), message="kept")
    part.maintain(now=t0 + timedelta(days=1, hours=1), retention_days=1, ahead_days=0)
    assert BEFORE not in names(part)
    call_command("migrate", "applogs", "0003", database="applogs", verbosity=0)
    assert list(LogRecord.objects.values_list("message", flat=True)) == ["kept"]
    call_command("migrate", "applogs", "zero", database="applogs", verbosity=0)
    assert sql("SELECT to_regclass('applogs_logrecord')") == [(None,)]
    call_command("migrate", "applogs", database="applogs", verbosity=0)
    assert names(part) == [BEFORE, DEFAULT]
