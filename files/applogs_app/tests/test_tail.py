"""Newer pages (rel="prev") and follow mode's JSON endpoint, against real PostgreSQL over HTTP."""
import datetime
import json
import re

import pytest
from django.utils.formats import date_format

from .viewer_support import (  # noqa: F401 (fixtures)
    BASE,
    make,
    next_link,
    nobody,
    page_ids,
    record,
    viewer,
    viewer_db,
)

pytestmark = viewer_db
LIST = "/applogs/"
TAIL = "/applogs/tail/"
PREV_RE = re.compile(r'<a rel="prev" href="([^"]+)"')
AFTER_RE = re.compile(r'data-after="(\d+)"')


def prev_link(response):
    match = PREV_RE.search(response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def get(client, url):
    response = client.get(url if url.startswith("/") else LIST + url)
    assert response.status_code == 200
    return response


def tail(client, **params):
    response = client.get(TAIL, params)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content.decode())


def seconds(n):
    return BASE + datetime.timedelta(seconds=n)


# --- newer pages ----------------------------------------------------------------------------


def test_newer_link_walks_back_to_the_newest_page(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 10
    # 95 rows, 3 to a timestamp, ids not in time order: page edges fall inside groups of equal times.
    rows = [record(id=i, created=seconds((i * 37 % 95) // 3)) for i in range(1, 96)]
    make(*rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created, r.id), reverse=True)]

    first = get(viewer, LIST)
    assert prev_link(first) is None, "the newest page has no newer page"
    older_pages = [page_ids(first)]
    url = next_link(first)
    while url:
        response = get(viewer, url)
        older_pages.append(page_ids(response))
        url = next_link(response)
    assert sum(older_pages, []) == expected
    assert len(older_pages) == 10

    # From the oldest page back by rel="prev": the same pages, in reverse.
    response = get(viewer, LIST + "?" + older_pages_url(viewer, len(older_pages) - 1))
    newer_pages = [page_ids(response)]
    url = prev_link(response)
    while url:
        response = get(viewer, url)
        newer_pages.append(page_ids(response))
        url = prev_link(response)
    assert newer_pages == older_pages[::-1]


def older_pages_url(client, depth):
    """The query of the page ``depth`` steps older than the first."""
    url = LIST
    for _ in range(depth):
        url = next_link(get(client, url))
    return url.lstrip("?")


def test_newer_and_older_keep_the_filters(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 5
    rows = [record(id=i, created=seconds(i), level=40 if i % 2 else 20, logger="api.x" if i % 3 else "command")
            for i in range(1, 101)]
    make(*rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created, r.id), reverse=True)
                if r.level == 40 and r.logger.startswith("api")]
    second = get(viewer, next_link(get(viewer, LIST + "?level=ERROR&logger=api")))
    assert page_ids(second) == expected[5:10]
    newer = prev_link(second)
    assert "level=ERROR" in newer and "logger=api" in newer and "before=" in newer and "after=" not in newer
    third = get(viewer, next_link(get(viewer, next_link(second))))
    back = get(viewer, prev_link(third))
    assert page_ids(back) == expected[10:15]
    older = next_link(back)
    assert "level=ERROR" in older and "logger=api" in older and "before=" not in older
    assert page_ids(get(viewer, older)) == expected[15:20]


def test_newer_pages_under_inserts_neither_skip_nor_repeat(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 4
    make(*[record(id=i, created=seconds(i)) for i in range(1, 21)])
    deep = get(viewer, LIST)
    for _ in range(3):
        deep = get(viewer, next_link(deep))
    assert page_ids(deep) == [8, 7, 6, 5]
    # Records arrive while the reader pages newer: newer and older than what is on screen.
    make(record(id=21, created=seconds(30)), record(id=22, created=seconds(10) + datetime.timedelta(microseconds=1)))
    page = get(viewer, prev_link(deep))
    # The four rows just newer than row 8, the one written meanwhile among them.
    assert page_ids(page) == [11, 22, 10, 9]
    make(record(id=23, created=seconds(31)))
    page = get(viewer, prev_link(page))
    assert page_ids(page) == [15, 14, 13, 12]
    page = get(viewer, prev_link(page))
    assert page_ids(page) == [19, 18, 17, 16]
    # Fewer than a page of newer rows left: the newest page, with the rows written meanwhile.
    page = get(viewer, prev_link(page))
    assert page_ids(page) == [23, 21, 20, 19]
    assert prev_link(page) is None
    assert page_ids(get(viewer, next_link(page))) == [18, 17, 16, 15]


def test_bad_before_cursor_shows_the_first_page(viewer):
    make(record(id=1), record(id=2, created=seconds(1)))
    assert page_ids(get(viewer, "?before=nonsense")) == [2, 1]


# --- follow mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"after": "5", "level": "ERROR"}])
def test_tail_anonymous_goes_to_login(client, settings, params):
    settings.LOGIN_URL = "/portal/login/"
    response = client.get(TAIL, params)
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login/?next=")


def test_tail_without_permission_is_403(nobody):
    make(record(id=1))
    response = nobody.get(TAIL, {"after": "0"})
    assert response.status_code == 403
    assert b"hello" not in response.content


def test_tail_is_read_only(viewer):
    make(record(id=1))
    for method in ("post", "put", "delete"):
        assert getattr(viewer, method)(TAIL + "?after=0").status_code == 405


def test_tail_returns_newer_records_oldest_first(viewer):
    make(*[record(id=i, created=seconds(i), message="m%d" % i, request_id="r%d" % i, user="u", ip="10.0.0.1")
           for i in range(1, 6)])
    data = tail(viewer, after="2")
    assert [r["id"] for r in data["records"]] == [3, 4, 5]
    assert data["after"] == 5 and data["more"] is False
    first = data["records"][0]
    assert first["message"] == "m3" and first["level"] == "INFO" and first["logger"] == "api"
    assert first["url"] == "/applogs/3/" and first["request_id"] == "r3" and first["user"] == "u"
    # The list's time text: the active language's short date, then the 24-hour time.
    assert first["time"] == date_format(datetime.date(2024, 1, 10), "SHORT_DATE_FORMAT") + " 12:00:03"
    assert tail(viewer, after="5") == {"records": [], "after": 5, "more": False}
    # A record whose own time is old but that was written now is new to a follower.
    make(record(id=6, created=seconds(-3600)))
    assert [r["id"] for r in tail(viewer, after="5")["records"]] == [6]


def test_tail_applies_the_list_filters(viewer):
    make(
        record(id=1, level=40, logger="api.orders", message="sync FAILED"),
        record(id=2, level=20, logger="api.orders", message="sync failed"),
        record(id=3, level=40, logger="apiv2", message="sync failed"),
        record(id=4, level=40, logger="api", message="ok", user="alice"),
        record(id=5, level=50, logger="api", message="sync failed", user="alice"),
    )
    assert [r["id"] for r in tail(viewer, after="0", level="ERROR")["records"]] == [1, 3, 4]
    assert [r["id"] for r in tail(viewer, after="0", level=["ERROR", "CRITICAL"], logger="api")["records"]] == [1, 4, 5]
    assert [r["id"] for r in tail(viewer, after="0", q="failed")["records"]] == [1, 2, 3, 5]
    assert [r["id"] for r in tail(viewer, after="0", user="alice", q="sync")["records"]] == [5]
    # Nothing matched: the next question starts after the newest id, not again at 0.
    assert tail(viewer, after="0", logger="nothing") == {"records": [], "after": 5, "more": False}


def test_tail_answers_are_bounded(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 10
    make(*[record(id=i, created=seconds(i)) for i in range(1, 26)])
    data = tail(viewer, after="0")
    assert [r["id"] for r in data["records"]] == list(range(1, 11))
    assert data["more"] is True and data["after"] == 10
    data = tail(viewer, after=str(data["after"]))
    assert [r["id"] for r in data["records"]] == list(range(11, 21))
    data = tail(viewer, after=str(data["after"]))
    assert [r["id"] for r in data["records"]] == list(range(21, 26))
    assert data["more"] is False


def test_tail_without_a_valid_id_starts_at_the_newest(viewer):
    make(record(id=1), record(id=2))
    for after in (None, "x", "-3"):
        data = tail(viewer, **({} if after is None else {"after": after}))
        assert data == {"records": [], "after": 2, "more": False}


def test_follow_is_offered_on_the_newest_page_only(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 2
    make(record(id=1, created=seconds(1), level=40), record(id=7, created=seconds(2)),
         record(id=3, created=seconds(3), level=40))
    content = get(viewer, "?level=ERROR").content.decode()
    # The newest id the page shows, and the same filters for the endpoint.
    assert AFTER_RE.search(content).group(1) == "3"
    assert 'data-url="/applogs/tail/?level=ERROR"' in content
    assert 'name="follow"' in content and "checked" not in content.split('name="follow"')[1][:40]
    assert "<script>" in content
    older = get(viewer, next_link(get(viewer, LIST))).content.decode()
    assert 'id="applogs-follow"' not in older and "<script" not in older
    # An empty list follows from 0: anything that ever matches is new.
    assert AFTER_RE.search(get(viewer, "?logger=none").content.decode()).group(1) == "0"
