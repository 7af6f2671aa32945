"""The detail page's context: the same process's records around a record, the link to its
request, `extra` as readable JSON, the permalink."""
import datetime
import html
import re

from applogs.models import LogRecord
from applogs.neighbours import WINDOW, process_neighbours

from .viewer_support import BASE, QueryLog, make, record, viewer, viewer_db  # noqa: F401 (fixtures)

pytestmark = viewer_db
SECOND = datetime.timedelta(seconds=1)


def at(seconds):
    return BASE + seconds * SECOND


def ids(records):
    return [r.pk for r in records]


def neighbour_rows(content, side):
    return [int(i) for i in re.findall(r'<tr class="lvl-\w+ %s" data-id="(\d+)"' % side, content)]


def test_neighbours_come_from_the_same_host_and_process_only_in_order():
    make(
        record(id=1, created=at(-3), host="web1", process=7),
        record(id=2, created=at(-2), host="web1", process=8),  # another process
        record(id=3, created=at(-2), host="web2", process=7),  # the same pid on another host
        record(id=4, created=at(-1), host="web1", process=7),
        record(id=5, created=at(0), host="web1", process=7),  # the record
        record(id=6, created=at(0), host="web1", process=7),  # same time, later id: after it
        record(id=7, created=at(1), host="web2", process=7),
        record(id=8, created=at(2), host="web1", process=7),
    )
    target = LogRecord.objects.get(pk=5)
    before, after = process_neighbours(target, 5)
    assert ids(before) == [1, 4]
    assert ids(after) == [6, 8]


def test_neighbours_are_the_nearest_few_within_the_window():
    make(*[record(id=i, created=at(i), host="web1", process=7) for i in range(1, 21)])
    make(record(id=100, created=at(10) - WINDOW - SECOND, host="web1", process=7),
         record(id=101, created=at(10) + WINDOW + SECOND, host="web1", process=7))
    target = LogRecord.objects.get(pk=10)
    before, after = process_neighbours(target, 3)
    assert ids(before) == [7, 8, 9]
    assert ids(after) == [11, 12, 13]
    # Past the window nothing is looked for: a quiet process costs at most the window's rows.
    before, after = process_neighbours(target, 50)
    assert ids(before) == list(range(1, 10))
    assert ids(after) == list(range(11, 21))


def test_a_quiet_process_costs_at_most_scan_rows(monkeypatch):
    from applogs import neighbours

    monkeypatch.setattr(neighbours, "SCAN_ROWS", 4)
    make(
        record(id=1, created=at(-5), host="web1", process=7),  # 5th row back: past the scan
        *[record(id=i, created=at(i - 10), host="web1", process=8) for i in (6, 7, 8)],
        record(id=9, created=at(-1), host="web1", process=7),
        record(id=10, created=at(0), host="web1", process=7),
        record(id=11, created=at(1), host="web1", process=7),
    )
    before, after = process_neighbours(LogRecord.objects.get(pk=10), 5)
    assert ids(before) == [9]
    assert ids(after) == [11]
    monkeypatch.setattr(neighbours, "SCAN_ROWS", 5)
    before, after = process_neighbours(LogRecord.objects.get(pk=10), 5)
    assert ids(before) == [1, 9]


def test_no_neighbours_without_a_process():
    make(record(id=1, created=at(0), process=None), record(id=2, created=at(1), process=None))
    assert process_neighbours(LogRecord.objects.get(pk=1), 5) == ([], [])


def test_detail_page_shows_the_neighbours_with_links(viewer):
    make(
        record(id=1, created=at(-1), host="web1", process=7, message="before it"),
        record(id=2, created=at(0), host="web1", process=7, message="the record"),
        record(id=3, created=at(1), host="web1", process=7, message="after it"),
        record(id=4, created=at(1), host="web1", process=9, message="another process"),
    )
    with QueryLog() as queries:
        content = viewer.get("/applogs/2/").content.decode()
    assert neighbour_rows(content, "before") == [1]
    assert neighbour_rows(content, "after") == [3]
    assert 'href="/applogs/1/"' in content and 'href="/applogs/3/"' in content
    assert "another process" not in content
    assert 'class="lvl-info current" data-id="2"' in content
    # The record, the ids of both sides in one bounded query, their rows.
    assert len(queries.sql("applogs")) == 3


def test_detail_links_to_all_records_of_its_request(viewer):
    make(record(id=1, created=at(0), request_id="req 1/x"), record(id=2, created=at(1), request_id="req 1/x"))
    content = viewer.get("/applogs/1/").content.decode()
    assert '<a class="request-link" href="/applogs/?request_id=req+1%2Fx">' in content
    listed = viewer.get("/applogs/", {"request_id": "req 1/x"}).content.decode()
    assert [int(i) for i in re.findall(r'data-id="(\d+)"', listed)] == [2, 1]


def test_extra_is_pretty_json(viewer):
    make(record(id=1, extra={"order": {"id": 17, "lines": [1, 2]}, "name": "заказ"}))
    content = html.unescape(viewer.get("/applogs/1/").content.decode())
    pretty = '{\n  "name": "заказ",\n  "order": {\n    "id": 17,\n    "lines": [\n      1,\n      2\n    ]\n  }\n}'
    assert '<pre class="extra">' + pretty + "</pre>" in content


def test_permalink_is_the_absolute_detail_url(viewer):
    make(record(id=42))
    content = viewer.get("/applogs/42/", HTTP_HOST="portal.example").content.decode()
    assert 'value="http://portal.example/applogs/42/"' in content
    assert '<a rel="bookmark" href="http://portal.example/applogs/42/">' in content
