"""The volume chart: bucket choice, counts kept by the trigger equal to the records, the chart on
the list page and its click-through links (real PostgreSQL, real HTTP through the test client)."""
import collections
import datetime
import html
import itertools
import logging
import re

from urllib.parse import unquote

import pytest
from django.db import connections
from django.utils.dateparse import parse_datetime

from applogs import volume
from applogs.models import LogRecord
from applogs.partitions import Partitions

from .support import migrate_while_writing
from .viewer_support import BASE, UTC, make, page_ids, record, viewer, viewer_db  # noqa: F401 (fixtures)

LIST = "/applogs/"
BAR_RE = re.compile(r'<a class="bar" role="listitem" href="\?([^"]*)" data-total="(\d+)"')
M, H, D = 60, 3600, 86400


def minutes(n):
    return datetime.timedelta(minutes=n)


# --- bucket choice (no database) --------------------------------------------------------------


@pytest.mark.parametrize("span, bucket", [
    (datetime.timedelta(0), M),
    (datetime.timedelta(seconds=30), M),
    (minutes(60), M),
    (minutes(61), 2 * M),
    (minutes(300), 5 * M),
    (minutes(301), 10 * M),
    (datetime.timedelta(hours=24), 30 * M),
    (datetime.timedelta(hours=30), 30 * M),
    (datetime.timedelta(hours=31), H),
    (datetime.timedelta(days=7), 3 * H),
    (datetime.timedelta(days=30), 12 * H),
    (datetime.timedelta(days=60), D),
    (datetime.timedelta(days=90), 2 * D),
    (datetime.timedelta(days=365), 7 * D),
    (datetime.timedelta(days=3650), 30 * D),
])
def test_bucket_is_the_smallest_that_fits_sixty_bars(span, bucket):
    assert volume.choose_bucket(span) == bucket


def test_every_bucket_size_fits_and_its_grain_divides_it():
    for span_minutes in range(0, 60 * 24 * 400, 97):
        span = minutes(span_minutes)
        size = volume.choose_bucket(span)
        assert span.total_seconds() <= size * volume.MAX_BARS or size == volume.BUCKETS[-1]
        smaller = [b for b in volume.BUCKETS if b < size]
        assert not smaller or span.total_seconds() > smaller[-1] * volume.MAX_BARS
    for size in volume.BUCKETS:
        grain = volume.grain_for(size)
        assert size % grain == 0
        # The coarsest: fewest rows read.
        assert all(size % g for g in volume.GRAINS if g > grain)


def test_buckets_are_aligned_to_whole_multiples():
    t = datetime.datetime(2024, 1, 10, 12, 34, 56, tzinfo=UTC)
    assert volume.floor_to(t, 15 * M) == datetime.datetime(2024, 1, 10, 12, 30, tzinfo=UTC)
    assert volume.ceil_to(t, 15 * M) == datetime.datetime(2024, 1, 10, 12, 45, tzinfo=UTC)
    assert volume.ceil_to(volume.floor_to(t, H), H) == volume.floor_to(t, H)
    assert volume.floor_to(t, D) == datetime.datetime(2024, 1, 10, tzinfo=UTC)


# --- counts against the records ---------------------------------------------------------------


def sample():
    """300 records over five hours, levels and loggers mixed, some on bucket edges."""
    loggers = ["api", "api.orders", "apiv2", "command", "api_x"]
    rows = []
    for i in range(300):
        created = BASE + datetime.timedelta(seconds=(i * 61) % (5 * 3600))
        if i % 50 == 0:
            created = BASE + minutes(30 * (i // 50))  # exactly on a boundary
        rows.append(record(created=created, level=[10, 20, 20, 30, 40, 50][i % 6], logger=loggers[i % 5]))
    make(*rows)
    return list(LogRecord.objects.all())


def expected_counts(rows, bucket, levels=(), logger=""):
    counts = collections.defaultdict(collections.Counter)
    for r in rows:
        if levels and r.level not in levels:
            continue
        if logger and not (r.logger == logger or r.logger.startswith(logger + ".")):
            continue
        counts[volume.floor_to(r.created, bucket)][r.level] += 1
    return {k: dict(v) for k, v in counts.items()}


@viewer_db
@pytest.mark.parametrize("levels, logger", [((), ""), ((40, 50), ""), ((), "api"), ((20,), "api.orders"), ((), "api_")])
@pytest.mark.parametrize("span_hours", [1, 5, 48, 24 * 70])
def test_counts_equal_the_records(levels, logger, span_hours):
    rows = sample()
    since = BASE - minutes(7)
    until = since + datetime.timedelta(hours=span_hours)
    data = volume.volume(levels=levels, logger=logger, since=since, until=until)
    bucket = data["bucket"]
    # The range is narrowed to the minutes that have counts.
    since = max(since, volume.floor_to(min(r.created for r in rows), M))
    until = min(until, volume.floor_to(max(r.created for r in rows), M) + minutes(1))
    assert bucket == volume.choose_bucket(until - since)
    assert data["start"] == volume.floor_to(since, bucket) and data["end"] == volume.ceil_to(until, bucket)
    inside = [r for r in rows if data["start"] <= r.created < data["end"]]
    assert data["counts"] == expected_counts(inside, bucket, levels, logger)
    if not levels and not logger and span_hours >= 48:
        assert sum(sum(c.values()) for c in data["counts"].values()) == 300


@viewer_db
def test_without_a_range_the_chart_covers_what_was_counted():
    assert volume.volume() is None
    rows = sample()
    data = volume.volume()
    assert data["start"] <= BASE and data["end"] > max(r.created for r in rows)
    assert sum(sum(c.values()) for c in data["counts"].values()) == 300
    # A wide open range gets the same bars, not years of empty ones.
    wide = volume.volume(since=BASE - datetime.timedelta(days=3650), until=BASE + datetime.timedelta(days=3650))
    assert wide == data
    assert volume.volume(since=BASE + datetime.timedelta(days=1)) is None


@pytest.mark.django_db(transaction=True, databases=["default", "applogs"])
def test_records_written_by_the_handler_are_counted(logs):
    # The writer's COPY, from its own connection, passes through the trigger too.
    logger = logging.getLogger("api")
    for i in range(120):
        (logger.error if i % 3 == 0 else logger.info)("record %d", i)
    logs.flush(30)
    now = datetime.datetime.now(UTC)
    data = volume.volume(since=now - datetime.timedelta(hours=1), until=now + minutes(1))
    levels = collections.Counter()
    for counts in data["counts"].values():
        levels.update(counts)
    assert levels == collections.Counter(LogRecord.objects.values_list("level", flat=True))
    assert levels[40] == 40 and levels[20] == 80
    # Emptying the log table empties the counts.
    with connections["applogs"].cursor() as cursor:
        cursor.execute("TRUNCATE applogs_logrecord")
        cursor.execute("SELECT count(*) FROM applogs_volume")
        assert cursor.fetchone()[0] == 0


@viewer_db
def test_retention_deletes_the_counts_of_expired_buckets():
    make(*[record(created=BASE + minutes(i)) for i in range(0, 3 * 24 * 60, 10)])
    cutoff = BASE + datetime.timedelta(days=1, minutes=5)
    Partitions().expire_volume(cutoff, log=lambda message: None)
    with connections["applogs"].cursor() as cursor:
        cursor.execute("SELECT grain, min(bucket) FROM applogs_volume GROUP BY grain ORDER BY grain")
        first = dict(cursor.fetchall())
    # Only buckets wholly before the cutoff go: the one that holds it stays.
    assert first == {M: BASE + datetime.timedelta(days=1, minutes=10), H: BASE + datetime.timedelta(days=1),
                     D: datetime.datetime(2024, 1, 11, tzinfo=UTC)}


# --- the chart on the list page ---------------------------------------------------------------


def bars(response):
    return [(html.unescape(q), int(total)) for q, total in BAR_RE.findall(response.content.decode())]


@viewer_db
def test_chart_bars_link_to_their_records(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 500
    rows = sample()
    response = viewer.get(LIST, {"level": ["ERROR", "CRITICAL"], "logger": "api",
                                 "since": "2024-01-10T12:00:00Z", "until": "2024-01-10T14:59:59Z"})
    assert response.status_code == 200
    shown = bars(response)
    # Three hours in 5-minute bars.
    assert len(shown) == 36
    matching = [r for r in rows if r.level >= 40 and (r.logger == "api" or r.logger.startswith("api."))
                and r.created < BASE + datetime.timedelta(hours=3)]
    assert sum(total for _, total in shown) == len(matching)
    for query, total in shown[:8]:
        assert "level=ERROR" in query and "level=CRITICAL" in query and "logger=api" in query
        ids = page_ids(viewer.get(LIST + "?" + query))
        assert len(ids) == total
        # The bar's records: its five minutes, the same filters.
        since = dict(p.split("=", 1) for p in query.split("&"))["since"]
        start = parse_datetime(unquote(since))
        assert sorted(ids) == sorted(r.id for r in matching if start <= r.created < start + minutes(5))


@pytest.mark.parametrize("query", [
    "", "level=ERROR&level=CRITICAL&logger=api", "since=2024-01-10T12:00:00Z&logger=a+b%26c&until=x",
    "after=abc&q=%3Cscript%3E&until=2024-01-10T14:59:59Z", "before=x&level=",
])
def test_a_bars_query_is_the_lists_filters_with_its_time_range(query):
    from django.http import QueryDict

    from applogs.views import _bar_query, filter_query

    params = QueryDict(query)
    since, until = "2024-01-10T12:05:00+00:00", "2024-01-10T12:09:59.999999+00:00"
    # The same parameters with the same values (the order of different names may differ).
    assert sorted(QueryDict(_bar_query(params)(since, until)).lists()) == sorted(
        QueryDict(filter_query(params, since=since, until=until)).lists())


@viewer_db
@pytest.mark.parametrize("params", [{"q": "x"}, {"user": "alice"}, {"ip": "10.0.0.1"}, {"request_id": "r1"}])
def test_chart_says_when_it_cannot_serve_the_filter(viewer, params):
    make(record(id=1))
    content = viewer.get(LIST, params).content.decode()
    assert "The volume chart is not available" in content
    assert 'class="bar"' not in content


@viewer_db
def test_chart_reads_only_the_counts(viewer):
    from .viewer_support import QueryLog

    sample()
    with QueryLog() as queries:
        content = viewer.get(LIST, {"level": "ERROR", "logger": "api"}).content.decode()
    assert 'class="bar"' in content
    chart_sql = [q for q in queries.sql("applogs") if "applogs_volume" in q]
    assert chart_sql and all("applogs_logrecord" not in q for q in chart_sql)
    # The list itself reads the log table only (one query per window of record time it needs).
    from applogs.paginator import WINDOW_DAYS

    assert 1 <= len([q for q in queries.sql("applogs") if "applogs_volume" not in q]) <= len(WINDOW_DAYS) + 1


# --- the migration ----------------------------------------------------------------------------

COUNTS_BY_GRAIN = """
    SELECT grain, bucket, level, logger, records FROM applogs_volume ORDER BY 1, 2, 3, 4"""
COUNTS_OF_RECORDS = """
    SELECT g.grain, to_timestamp(floor(extract(epoch FROM created) / g.grain) * g.grain), level, logger, count(*)
    FROM applogs_logrecord CROSS JOIN (VALUES (60), (3600), (86400)) AS g (grain)
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""


def fetch(query):
    with connections["applogs"].cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True, databases=["default", "applogs"])
def test_migration_counts_the_existing_records_and_reverses():
    from django.core.management import call_command

    def add(n, offset):
        LogRecord.objects.bulk_create([
            record(created=BASE + minutes(offset + 7 * i), level=[10, 20, 40][i % 3], logger=["api", "command"][i % 2])
            for i in range(n)])

    add(200, 0)
    assert fetch(COUNTS_BY_GRAIN) == fetch(COUNTS_OF_RECORDS)
    call_command("migrate", "applogs", "0004", database="applogs", verbosity=0)
    assert fetch("SELECT to_regclass('applogs_volume')") == [(None,)]
    assert fetch("SELECT tgname FROM pg_trigger WHERE tgrelid = 'applogs_logrecord'::regclass "
                 "AND NOT tgisinternal") == []
    add(300, 5)  # not counted by anything yet

    # Forward again while records keep arriving: each is counted once, by the backfill or the trigger.
    offsets = itertools.count(10000)
    assert not migrate_while_writing(lambda: add(5, next(offsets)))
    assert LogRecord.objects.count() > 500
    assert fetch(COUNTS_BY_GRAIN) == fetch(COUNTS_OF_RECORDS)
    assert fetch("SELECT obj_description('applogs_volume'::regclass, 'pg_class')") == [(None,)]
