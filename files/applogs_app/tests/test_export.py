"""XLSX export of the viewer (<prefix>export/ with the list's query string)."""
import datetime
import io
import json
import os

import openpyxl
import pytest
from django.db import connections

from xlsexport.testing import libreoffice_rows, soffice

from applogs.export import COLUMNS
from applogs.models import LEVEL_CHOICES

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


def _open_cursors():
    with connections["applogs"].cursor() as cursor:
        cursor.execute("SELECT name FROM pg_cursors")
        return [row[0] for row in cursor.fetchall()]


def test_first_bytes_go_out_while_the_rows_are_being_read(viewer):
    make(*[record(id=i, message="m%d" % i, created=BASE + datetime.timedelta(seconds=i)) for i in range(1, 6)])
    response = viewer.get(EXPORT)
    assert response.status_code == 200
    assert response.streaming
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04")
    # The export's server-side cursor is still open: the first bytes were sent before the rows had
    # all been read (a workbook built before the response would have read them all).
    assert _open_cursors()
    # (The test client closes the response when its content has been read.)
    rest = b"".join(chunks)
    assert _open_cursors() == []
    ws = openpyxl.load_workbook(io.BytesIO(first + rest)).active
    assert [row[0].value for row in ws.iter_rows(min_row=2)] == [5, 4, 3, 2, 1]


# --- 100,000 rows, read back cell by cell --------------------------------------------------------------

BIG = int(os.environ.get("APPLOGS_TEST_EXPORT_ROWS", "100000"))
LEVELS = [level for level, _ in LEVEL_CHOICES]
LEVEL_NAMES = dict(LEVEL_CHOICES)


def _big_record(i):
    """Record i of the big export: every kind of cell the viewer's export has, with text that must be
    neutralised (formulas), cleaned (control characters) or escaped (XML), and empty fields."""
    if i % 997 == 0:
        message = '=HYPERLINK("http://evil.example/%d","click")' % i
    elif i % 501 == 0:
        message = "bell\x07 escape\x1b[31m vt\x0b form\x0c %d" % i
    elif i % 333 == 0:
        message = "line one\r\nline two\rline three %d" % i
    elif i % 101 == 0:
        message = "+-@"[i % 3] + "%d" % i
    elif i % 50 == 0:
        message = ("long %d " % i) * 1000
    else:
        message = "  message %d <b>&amp;</b> \"q\" \u043f\u0440\u0438\u0432\u0435\u0442 \u00e9\t\u2603  " % i
    return {
        "id": i,
        "created": BASE + datetime.timedelta(seconds=i, milliseconds=i % 1000),
        "level": LEVELS[i % 5],
        "logger": "api.orders.%d" % (i % 7),
        "module": "views" if i % 3 else "",
        "func": "handle_%d" % (i % 11),
        "lineno": None if i % 4 == 0 else i % 5000,
        "message": message,
        "traceback": "" if i % 9 else 'Traceback (most recent call last):\n  File "x.py", line %d\nValueError: =bad' % i,
        "ip": "10.%d.%d.%d" % (i % 256, i // 256 % 256, i % 7),
        "user": "" if i % 6 == 0 else "user%d" % (i % 13),
        "request_id": "%032x" % (i * 2654435761),
        "host": "web%d" % (i % 4),
        "process": None if i % 5 == 0 else 1000 + i % 50,
        "extra": {} if i % 8 else {"i": i, "k": "=x", "u": "\u00fc"},
    }


# C0 controls other than tab, LF and CR (the test data has no other characters XML forbids).
_CONTROL_CHARACTERS = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")


def _expected_cells(rec):
    """(value, quote prefix) of each column as the export must write them."""
    def text(value):
        value = value.translate(_CONTROL_CHARACTERS)
        quoted = value.startswith(("=", "+", "-", "@", "\t", "\r"))
        return (value.replace("\r\n", "\n").replace("\r", "\n") or None), quoted

    moscow = datetime.timezone(datetime.timedelta(hours=3))  # Europe/Moscow has no DST since 2014
    return [
        (rec["id"], False),
        (rec["created"].astimezone(moscow).replace(tzinfo=None), False),
        (LEVEL_NAMES[rec["level"]], False),
        text(rec["logger"]),
        text(rec["message"]),
        text(rec["user"]),
        text(rec["ip"]),
        text(rec["request_id"]),
        text(rec["host"]),
        (rec["process"], False),
        text(rec["module"]),
        text(rec["func"]),
        (rec["lineno"], False),
        text(rec["traceback"]),
        text(json.dumps(rec["extra"], ensure_ascii=False, sort_keys=True)),
    ]


def _insert_big():
    records = [_big_record(i) for i in range(1, BIG + 1)]
    columns = ["id", "created", "level", "logger", "module", "func", "lineno", "message", "traceback", "ip",
               "user", "request_id", "host", "process", "extra"]
    types = ["bigint", "timestamptz", "smallint", "text", "text", "text", "integer", "text", "text", "text",
             "text", "text", "text", "integer", "jsonb"]
    arrays = [[json.dumps(r[c]) if c == "extra" else r[c] for r in records] for c in columns]
    with connections["applogs"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO applogs_logrecord (%s) SELECT * FROM unnest(%s)" % (
                ", ".join('"%s"' % c for c in columns),
                ", ".join("%%s::%s[]" % t for t in types)),
            arrays)
    return records


@pytest.mark.heavy
def test_export_of_100000_rows_read_back_cell_by_cell(viewer, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    settings.APPLOGS_EXPORT_MAX_ROWS = BIG
    records = _insert_big()
    response = viewer.get(EXPORT)
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content)
    ws = openpyxl.load_workbook(io.BytesIO(body), read_only=True).active
    rows = ws.iter_rows()
    assert [c.value for c in next(rows)] == [header for header, _, _ in COLUMNS]
    count = 0
    # Newest first: record BIG down to 1.
    for rec, row in zip(reversed(records), rows):
        count += 1
        cells = {cell.column: cell for cell in row if cell.value is not None}
        for column, (value, quoted) in enumerate(_expected_cells(rec), start=1):
            cell = cells.pop(column, None)
            where = "record %d column %d" % (rec["id"], column)
            if value is None:
                assert cell is None, where
                continue
            assert cell is not None, where
            if column == 2:
                assert cell.is_date and abs(cell.value - value) < datetime.timedelta(milliseconds=1), where
                continue
            assert cell.value == value, where
            assert cell.data_type == ("s" if isinstance(value, str) else "n"), where
            assert bool(cell.style_array.quotePrefix) == quoted, where
        assert not cells, "record %d: extra cells %r" % (rec["id"], cells)
    assert count == BIG
    assert next(rows, None) is None  # no notice: not capped

    # The same file in LibreOffice Calc, where the tests open workbooks in it (one cell of the matrix).
    office = soffice()
    if office:
        shown = libreoffice_rows(body, office)
        assert shown[0] == [header for header, _, _ in COLUMNS]
        assert len(shown) == BIG + 1
        for rec, row in zip(reversed(records), shown[1:]):
            expected = [_shown(column, value) for column, (value, _) in enumerate(_expected_cells(rec), start=1)]
            # Calc shows whole seconds (rounded): the time is checked to the second.
            when = datetime.datetime.strptime(row[1], "%Y-%m-%d %H:%M:%S")
            assert abs(when - expected[1]) <= datetime.timedelta(seconds=1), "record %d: %s" % (rec["id"], row[1])
            assert row[:1] + row[2:] == expected[:1] + expected[2:], "record %d" % rec["id"]


def _shown(column, value):
    """A cell of the big export as LibreOffice's CSV shows it (the time column kept as datetime)."""
    if value is None:
        return ""
    return value if column == 2 else str(value)
