"""Viewer list and detail against real PostgreSQL (default + applogs databases)."""
import datetime
import html
import re

import pytest
from django.urls import reverse

from applogs.models import LogRecord
from applogs.paginator import WINDOW_DAYS, decode_cursor, encode_cursor

from .viewer_support import (  # noqa: F401 (fixtures)
    BASE,
    UTC,
    QueryLog,
    make,
    next_link,
    nobody,
    page_ids,
    record,
    superuser_client,
    viewer,
    viewer_db,
)

pytestmark = viewer_db
LIST = "/applogs/"


def ids_for(client, **params):
    response = client.get(LIST, params)
    assert response.status_code == 200
    return page_ids(response)


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/applogs/", "/applogs/1/", "/applogs/export/"])
def test_anonymous_goes_to_the_portal_login(client, settings, url):
    settings.LOGIN_URL = "/portal/login/"
    response = client.get(url + "?level=ERROR")
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login/?next=")
    assert "applogs" in response["Location"]


@pytest.mark.parametrize("url", ["/applogs/", "/applogs/1/", "/applogs/export/"])
def test_logged_in_without_permission_gets_403(nobody, url):
    make(record(id=1))
    assert nobody.get(url).status_code == 403


def test_permission_and_superuser_pass(viewer, superuser_client):
    make(record(id=1))
    for client in (viewer, superuser_client):
        assert client.get(LIST).status_code == 200
        assert client.get("/applogs/1/").status_code == 200


def test_staff_flag_alone_is_not_enough(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    assert client.get(LIST).status_code == 403


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_viewer_is_read_only(viewer, method):
    make(record(id=1))
    for url in ("/applogs/", "/applogs/1/", "/applogs/export/"):
        assert getattr(viewer, method)(url).status_code == 405
    assert LogRecord.objects.filter(id=1).exists()


def test_url_names():
    assert reverse("applogs:list") == "/applogs/"
    assert reverse("applogs:detail", args=[5]) == "/applogs/5/"
    assert reverse("applogs:export") == "/applogs/export/"


# --- list and filters -----------------------------------------------------------------------


def test_newest_first_with_ties_by_id(viewer):
    make(
        record(id=1, created=BASE),
        record(id=2, created=BASE + datetime.timedelta(seconds=5)),
        record(id=3, created=BASE),
        record(id=4, created=BASE - datetime.timedelta(seconds=5)),
    )
    assert ids_for(viewer) == [2, 3, 1, 4]


def test_level_filter_by_names_repeatable(viewer):
    make(record(id=1, level=10), record(id=2, level=20), record(id=3, level=30), record(id=4, level=40),
         record(id=5, level=50))
    assert ids_for(viewer, level="ERROR") == [4]
    assert ids_for(viewer, level=["WARNING", "CRITICAL"]) == [5, 3]
    # Names are case-insensitive; an unknown name is reported and the filter ignored.
    assert ids_for(viewer, level="debug") == [1]
    response = viewer.get(LIST, {"level": "LOUD"})
    assert page_ids(response) == [5, 4, 3, 2, 1]
    assert "filter ignored" in response.content.decode()


def test_logger_matches_children_only(viewer):
    make(record(id=1, logger="api"), record(id=2, logger="api.orders"), record(id=3, logger="apiv2"),
         record(id=4, logger="api.orders.sync"), record(id=5, logger="command"), record(id=6, logger="api_x"))
    assert ids_for(viewer, logger="api") == [4, 2, 1]
    assert ids_for(viewer, logger="api.orders") == [4, 2]
    # LIKE wildcards in the name are literal.
    assert ids_for(viewer, logger="api%") == []
    assert ids_for(viewer, logger="api_") == []


def test_text_user_ip_request_filters(viewer):
    make(
        record(id=1, message="Order 17 FAILED to sync", user="alice", ip="10.0.0.1", request_id="r1"),
        record(id=2, message="order 18 synced", user="bob", ip="10.0.0.2", request_id="r1"),
        record(id=3, message="50% done", user="alice", ip="10.0.0.2", request_id="r2"),
    )
    assert ids_for(viewer, q="failed") == [1]
    assert ids_for(viewer, q="ORDER") == [2, 1]
    assert ids_for(viewer, q="50%") == [3]
    assert ids_for(viewer, user="alice") == [3, 1]
    assert ids_for(viewer, ip="10.0.0.2") == [3, 2]
    assert ids_for(viewer, request_id="r1") == [2, 1]
    assert ids_for(viewer, user="alice", ip="10.0.0.2") == [3]


def test_since_until_in_portal_time_zone(viewer, settings):
    settings.TIME_ZONE = "Europe/Moscow"  # UTC+3
    make(
        record(id=1, created=datetime.datetime(2024, 1, 10, 8, 59, 59, tzinfo=UTC)),
        record(id=2, created=datetime.datetime(2024, 1, 10, 9, 0, 0, tzinfo=UTC)),
        record(id=3, created=datetime.datetime(2024, 1, 10, 10, 0, 0, tzinfo=UTC)),
        record(id=4, created=datetime.datetime(2024, 1, 10, 10, 0, 1, tzinfo=UTC)),
    )
    # 12:00 and 13:00 Moscow are 09:00 and 10:00 UTC; both ends are inclusive.
    assert ids_for(viewer, since="2024-01-10T12:00", until="2024-01-10T13:00:00") == [3, 2]
    assert ids_for(viewer, since="2024-01-10 12:00:00") == [4, 3, 2]
    # An explicit offset is honoured.
    assert ids_for(viewer, until="2024-01-10T09:00:00+00:00") == [2, 1]
    # Shown in the portal's time zone too.
    content = viewer.get(LIST).content.decode()
    assert "01/10/2024 13:00:01" in content
    assert "Europe/Moscow" in content
    # The form shows an explicit offset in the portal's time zone; links keep the query as given.
    response = viewer.get(LIST, {"since": "2024-01-10T09:00:00+00:00"})
    assert 'name="since" value="2024-01-10T12:00:00"' in response.content.decode()
    response = viewer.get(LIST, {"since": "yesterday"})
    assert page_ids(response) == [4, 3, 2, 1]
    assert "filter ignored" in response.content.decode()


def test_filter_form_keeps_values_and_uses_datetime_local(viewer):
    content = viewer.get(LIST, {"logger": "api", "level": ["ERROR"], "since": "2024-01-10T12:00"}).content.decode()
    assert 'type="datetime-local"' in content
    assert 'name="logger" value="api"' in content
    assert checked_levels(content) == {"ERROR"}
    content = viewer.get(LIST, {"level": ["WARNING", "CRITICAL"]}).content.decode()
    assert checked_levels(content) == {"WARNING", "CRITICAL"}
    assert checked_levels(viewer.get(LIST).content.decode()) == set()


def checked_levels(content):
    """The values of the level checkboxes that are checked, read from the page's HTML."""
    from html.parser import HTMLParser

    found = set()

    class Inputs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "input" and attrs.get("name") == "level" and "checked" in attrs:
                found.add(attrs["value"])

        handle_startendtag = handle_starttag

    Inputs().feed(content)
    return found


def test_request_id_link_shows_the_whole_request(viewer):
    make(
        record(id=1, request_id="req-42", level=40, logger="api"),
        record(id=2, request_id="req-42", level=10, logger="command"),
        record(id=3, request_id="other"),
    )
    response = viewer.get(LIST, {"level": "ERROR"})
    assert 'href="?request_id=req-42"' in response.content.decode()
    assert ids_for(viewer, request_id="req-42") == [2, 1]


def test_empty_list(viewer):
    response = viewer.get(LIST)
    assert "No records match." in response.content.decode()
    assert next_link(response) is None


# --- keyset pagination ----------------------------------------------------------------------


def test_cursor_round_trip():
    created = datetime.datetime(2024, 1, 10, 12, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(created, 77)) == (created, 77)
    assert decode_cursor("garbage") is None
    assert decode_cursor("20241399T000000.000000Z_1") is None
    assert decode_cursor(None) is None


def test_keyset_paging_visits_every_row_once(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 100
    # 3,000 rows, 7 to a timestamp so page boundaries fall inside groups of equal times; ids are not
    # in time order, so only the (created, id) key keeps the order.
    rows = [
        record(id=i, created=BASE + datetime.timedelta(seconds=(i * 37 % 3000) // 7), level=10 + 10 * (i % 5))
        for i in range(1, 3001)
    ]
    make(*rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created, r.id), reverse=True)]

    seen = []
    url = LIST
    pages = 0
    with QueryLog() as queries:
        while url:
            response = viewer.get(url if url.startswith("/") else LIST + url)
            assert response.status_code == 200
            ids = page_ids(response)
            assert 0 < len(ids) <= 100
            seen.extend(ids)
            url = next_link(response)
            pages += 1
            assert pages <= 30, "paging does not end"
    assert pages == 30
    assert seen == expected

    applogs_sql = " ".join(queries.sql("applogs")).upper()
    assert "OFFSET" not in applogs_sql
    assert "COUNT(" not in applogs_sql
    # One row more than a page tells whether there is a next page; no more is read.
    log_sql = [sql for sql in queries.sql("applogs") if '"applogs_logrecord"' in sql]
    assert log_sql and all(int(n) <= 101 for sql in log_sql for n in re.findall(r" LIMIT (\d+)", sql.upper()))
    # The default database only serves authentication.
    for sql in queries.sql("default"):
        assert "applogs" not in sql
        assert "django_session" in sql or "auth_" in sql or "django_content_type" in sql, sql


def test_keyset_paging_with_filters_keeps_them(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 50
    rows = [
        record(id=i, created=BASE + datetime.timedelta(seconds=i // 3), level=40 if i % 2 else 20,
               logger="api.orders" if i % 3 else "command")
        for i in range(1, 1201)
    ]
    make(*rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created, r.id), reverse=True)
                if r.level == 40 and r.logger.startswith("api")]
    seen = []
    url = "?level=ERROR&logger=api"
    while url:
        response = viewer.get(LIST + url)
        seen.extend(page_ids(response))
        url = next_link(response)
        if url:
            assert "level=ERROR" in url and "logger=api" in url and "after=" in url
    assert seen == expected


def test_paging_through_records_of_every_age_reads_each_once(viewer, settings):
    # The list reads windows of record time that widen (a day, a week, a month, the rest): rows on
    # both sides of every window's edge, in the future and years old, each appear once, in order.
    settings.APPLOGS_PAGE_SIZE = 2
    now = datetime.datetime.now(UTC)
    ages = [-3600, 60, 86399, 86401, 3 * 86400, 7 * 86400 - 1, 7 * 86400 + 1, 20 * 86400,
            31 * 86400 - 1, 31 * 86400 + 1, 400 * 86400, 400 * 86400]
    rows = [record(id=i, created=now - datetime.timedelta(seconds=age)) for i, age in enumerate(ages, 1)]
    make(*rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created, r.id), reverse=True)]
    seen, url = [], LIST
    while url:
        response = viewer.get(url if url.startswith("/") else LIST + url)
        ids = page_ids(response)
        assert 0 < len(ids) <= 2
        seen.extend(ids)
        url = next_link(response)
        assert len(seen) <= len(rows)
    assert seen == expected


def test_a_page_the_last_day_fills_is_one_query_bounded_to_that_day(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 5
    now = datetime.datetime.now(UTC)
    make(*[record(id=i, created=now - datetime.timedelta(minutes=i)) for i in range(1, 11)],
         record(id=11, created=now - datetime.timedelta(days=30)))
    with QueryLog() as queries:
        assert ids_for(viewer) == [1, 2, 3, 4, 5]
    log_sql = [sql for sql in queries.sql("applogs") if '"applogs_logrecord"' in sql]
    assert len(log_sql) == 1
    assert '"applogs_logrecord"."created" >=' in log_sql[0]


def test_rows_added_meanwhile_do_not_shift_pages(viewer, settings):
    settings.APPLOGS_PAGE_SIZE = 2
    make(*[record(id=i, created=BASE + datetime.timedelta(seconds=i)) for i in range(1, 6)])
    first = viewer.get(LIST)
    assert page_ids(first) == [5, 4]
    make(record(id=6, created=BASE + datetime.timedelta(seconds=10)))
    second = viewer.get(LIST + next_link(first))
    assert page_ids(second) == [3, 2]
    assert "Newest" in second.content.decode()


def test_bad_cursor_shows_first_page(viewer):
    make(record(id=1))
    assert ids_for(viewer, after="nonsense") == [1]


# --- detail ---------------------------------------------------------------------------------


def test_detail_shows_everything(viewer, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    long_message = "line one\nline two " + "x" * 5000
    make(
        record(id=10, created=BASE, message=long_message, traceback="Traceback (most recent call last):\n  boom",
               extra={"order": 17, "items": [1, 2], "name": "заказ"}, request_id="req-1", user="alice",
               ip="10.1.1.1", module="views", func="post", lineno=42, host="web1", process=1234, level=40),
        record(id=11, created=BASE + datetime.timedelta(seconds=1), request_id="req-1", message="second"),
        record(id=12, created=BASE, request_id="req-2", message="unrelated"),
    )
    response = viewer.get("/applogs/10/")
    assert response.status_code == 200
    content = response.content.decode()
    assert html.escape(long_message) in content
    assert "boom" in content
    assert html.escape('"items": [\n    1,\n    2\n  ]') in content
    assert "заказ" in content
    assert "01/10/2024 15:00:00" in content
    assert "views.post:42" in content
    assert 'href="/applogs/11/"' in content
    assert 'href="/applogs/12/"' not in content
    assert 'href="/applogs/?request_id=req-1"' in content


def test_detail_missing_is_404(viewer):
    assert viewer.get("/applogs/999999/").status_code == 404


# --- escaping -------------------------------------------------------------------------------

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "<svg onload=alert(3)>",
]


def test_xss_payloads_render_escaped(viewer):
    make(
        record(id=1, message=XSS[0], logger=XSS[1], user=XSS[2], request_id='"><b>r', ip="<i>ip",
               traceback=XSS[0], extra={"k": "</pre><script>alert(4)</script>"}),
    )
    for url in ("/applogs/", "/applogs/1/", "/applogs/?q=%3Cscript%3E&logger=%22%3E%3Cimg"):
        content = viewer.get(url).content.decode()
        for payload in XSS + ["<script>alert(4)", "<b>r", "<i>ip"]:
            assert payload not in content, (url, payload)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content or "&lt;script&gt;" in content


def test_pages_are_self_contained(viewer):
    make(record(id=1))
    for url in ("/applogs/", "/applogs/1/"):
        # The detail page's permalink is the one absolute URL: the page's own.
        content = viewer.get(url).content.decode().replace("http://testserver/applogs/1/", "")
        assert "<style>" in content and ".lvl-error" in content
        # The list's follow script is inlined; nothing is loaded from elsewhere.
        assert "<script src" not in content and content.count("<script") == (url == "/applogs/")
        assert "http://" not in content and "https://" not in content


def test_list_reads_only_the_head_of_big_records(viewer):
    make(record(id=1, message="m" * 20000, traceback="t" * 20000, extra={"big": "e" * 20000}))
    with QueryLog() as queries:
        response = viewer.get(LIST)
    content = response.content.decode()
    assert "m" * 399 + "…" in content and "m" * 401 not in content
    assert "[traceback]" in content
    assert "e" * 100 not in content
    # One query on the log table (the record is old: one per window of record time), none of
    # them for a single record; the volume chart reads its own counts.
    log_sql = [q for q in queries.sql("applogs") if "applogs_volume" not in q]
    assert len(log_sql) == len(WINDOW_DAYS) + 1
    assert all(" LIMIT 101" in q for q in log_sql)
