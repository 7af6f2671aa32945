"""XLSX export of the viewer (<prefix>export/ with the list's query string)."""
import datetime
import io

import openpyxl

from .viewer_support import (  # noqa: F401 (fixtures)
    BASE,
    UTC,
    QueryLog,
    make,
    nobody,
    record,
    superuser_client,
    viewer,
    viewer_db,
)

pytestmark = viewer_db
EXPORT = "/applogs/export/"


def workbook(response):
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].startswith('attachment; filename="applogs-')
    assert response.streaming
    body = b"".join(response.streaming_content)
    return openpyxl.load_workbook(io.BytesIO(body)).active


def rows_of(ws):
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_export_holds_the_filtered_rows(viewer, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    make(
        record(id=1, level=40, logger="api.orders", message="first error", user="alice", ip="10.0.0.1",
               request_id="r1", extra={"a": 1}, lineno=7, created=datetime.datetime(2024, 1, 10, 21, 30, tzinfo=UTC)),
        record(id=2, level=20, logger="api", message="info only"),
        record(id=3, level=40, logger="command", message="other logger"),
        record(id=4, level=50, logger="api", message="critical", created=BASE + datetime.timedelta(hours=1)),
    )
    ws = workbook(viewer.get(EXPORT, {"level": ["ERROR", "CRITICAL"], "logger": "api"}))
    rows = rows_of(ws)
    header = rows[0]
    assert header[:5] == ["ID", "Time", "Level", "Logger", "Message"]
    assert ws["A1"].font.b
    assert [r[0] for r in rows[1:]] == [1, 4]
    first = dict(zip(header, rows[1]))
    # 21:30 UTC is 00:30 next day in Moscow, a real (naive) Excel datetime.
    assert first["Time"] == datetime.datetime(2024, 1, 11, 0, 30)
    assert ws["B2"].is_date
    assert first["Level"] == "ERROR"
    assert first["Logger"] == "api.orders"
    assert first["User"] == "alice"
    assert first["Request id"] == "r1"
    assert first["Line"] == 7
    assert first["Extra"] == '{"a": 1}'
    assert len(rows) == 3


def test_formulas_neutralised_and_illegal_characters_removed(viewer):
    payloads = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+1", "-2", "@SUM(A1)", "\t=1",
                "\r=1", "\x07=cmd|' /C calc'!A0", "\x1b+1"]
    make(*[record(id=i + 1, message=p, user=p, created=BASE + datetime.timedelta(seconds=i))
           for i, p in enumerate(payloads)])
    make(record(id=100, message="bell\x07 escape\x1b[31m vt\x0bend", created=BASE - datetime.timedelta(1)))
    ws = workbook(viewer.get(EXPORT))
    cells = {ws.cell(row=r, column=1).value: (ws.cell(row=r, column=5), ws.cell(row=r, column=6))
             for r in range(2, ws.max_row + 1)}
    for i, payload in enumerate(payloads):
        message, user = cells[i + 1]
        for cell in (message, user):
            # Control characters removed (what XLSX cannot hold), CR read back as LF.
            assert cell.value == payload.replace("\r", "\n").replace("\x07", "").replace("\x1b", "")
            assert cell.data_type == "s"
            assert cell.quotePrefix
    assert cells[100][0].value == "bell escape[31m vtend"


def test_export_capped_with_visible_note(viewer, settings):
    settings.APPLOGS_EXPORT_MAX_ROWS = 5
    make(*[record(id=i, created=BASE + datetime.timedelta(seconds=i)) for i in range(1, 9)])
    with QueryLog() as queries:
        rows = rows_of(workbook(viewer.get(EXPORT)))
    assert [r[0] for r in rows[1:6]] == [8, 7, 6, 5, 4]
    assert rows[6][0] is None
    assert rows[7][0].startswith("Export capped at 5 rows")
    assert len(rows) == 8
    assert "COUNT(" not in " ".join(queries.sql("applogs")).upper()
    # The list page tells about the cap before anyone downloads.
    assert "at most 5 records" in viewer.get("/applogs/").content.decode()


def test_export_exactly_at_the_cap_has_no_note(viewer, settings):
    settings.APPLOGS_EXPORT_MAX_ROWS = 3
    make(*[record(id=i, created=BASE + datetime.timedelta(seconds=i)) for i in range(1, 4)])
    rows = rows_of(workbook(viewer.get(EXPORT)))
    assert len(rows) == 4


def test_export_link_carries_the_list_query(viewer):
    content = viewer.get("/applogs/", {"level": "ERROR", "q": "a b", "after": "20240101T000000.000000Z_5"}).content.decode()
    assert 'href="/applogs/export/?level=ERROR&amp;q=a+b"' in content


def test_export_follows_the_cursor(viewer):
    make(*[record(id=i, created=BASE + datetime.timedelta(seconds=i)) for i in range(1, 6)])
    rows = rows_of(workbook(viewer.get(EXPORT, {"after": "20240110T120003.000000Z_3"})))
    assert [r[0] for r in rows[1:]] == [2, 1]


def test_empty_export_has_the_header(viewer):
    rows = rows_of(workbook(viewer.get(EXPORT, {"user": "nobody-at-all"})))
    assert len(rows) == 1 and rows[0][0] == "ID"


def test_superuser_may_export(superuser_client):
    make(record(id=1))
    assert rows_of(workbook(superuser_client.get(EXPORT)))[1][0] == 1


def test_export_requires_permission(nobody, client):
    assert nobody.get(EXPORT).status_code == 403


def test_export_access_anonymous(client):
    assert client.get(EXPORT).status_code == 302
