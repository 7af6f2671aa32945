import datetime
import decimal
import io
import tempfile
import tracemalloc
import zipfile

import openpyxl
import pytest
from django.utils import timezone

from xlsexport.writer import CONTENT_TYPE, to_cell_value, write_xlsx, xlsx_response

UTC = datetime.timezone.utc


def _load(fileobj):
    fileobj.seek(0)
    return openpyxl.load_workbook(fileobj).active


def _write(headers, rows, **kwargs):
    buf = io.BytesIO()
    write_xlsx(buf, headers, rows, **kwargs)
    return buf


@pytest.mark.parametrize(
    "payload",
    ["=1+1", '=HYPERLINK("http://evil.example","x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\r=1", "\rx",
     # A prefix revealed once the control characters XLSX forbids are removed.
     "\x07=cmd|' /C calc'!A0", "\x00\x1b+1", "\x08@SUM(A1)"],
)
def test_formula_like_text_is_stored_as_text(payload):
    buf = _write(["h"], [[payload]])
    cell = _load(buf)["A2"]
    # CR is stored as LF (what XML parsers made of a literal CR anyway); the cell is still text.
    assert cell.value == payload.replace("\r", "\n").lstrip("\x00\x07\x08\x1b")
    assert cell.data_type == "s"
    # Quote prefix: Excel/LibreOffice keep it text even when the cell is edited.
    assert cell.quotePrefix is True
    sheet_xml = zipfile.ZipFile(buf).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml


def test_plain_text_has_no_quote_prefix():
    cell = _load(_write(["h"], [["hello = world"]]))["A2"]
    assert cell.value == "hello = world"
    assert not cell.quotePrefix


def test_illegal_characters_removed():
    cell = _load(_write(["h"], [["a\x00b\x01c\x0bd\x1fe\tf\ng"]]))["A2"]
    # Tab and newline are legal inside a cell and stay.
    assert cell.value == "abcde\tf\ng"


def test_carriage_returns_read_back_as_line_feeds():
    # Not XlsxWriter's _x000D_ escape, which openpyxl and pandas would show literally.
    cell = _load(_write(["h"], [["one\r\ntwo\rthree"]]))["A2"]
    assert cell.value == "one\ntwo\nthree"


def test_sheet_title_made_valid():
    ws = _load(_write(["h"], [[1]], title="Logs [a/b]: *what?* " + "x" * 40))
    assert ws.title.startswith("Logs  a b    what   xxx")
    assert not set(ws.title) & set("[]:*?/\\")
    assert len(ws.title) == 31


def test_temporary_files_removed_when_rows_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def rows():
        yield ["fine"]
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        _write(["h"], rows())
    assert list(tmp_path.iterdir()) == []


def test_long_text_cut_to_cell_limit():
    cell = _load(_write(["h"], [["x" * 40000]]))["A2"]
    assert len(cell.value) == 32767


def test_aware_datetime_written_in_time_zone():
    moment = datetime.datetime(2024, 1, 31, 21, 30, 15, tzinfo=UTC)
    with timezone.override("Europe/Moscow"):
        cell = _load(_write(["when"], [[moment]]))["A2"]
    assert cell.is_date
    assert cell.value == datetime.datetime(2024, 2, 1, 0, 30, 15)
    assert cell.number_format == "yyyy-mm-dd hh:mm:ss"


def test_explicit_time_zone():
    moment = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    tz = datetime.timezone(datetime.timedelta(hours=5))
    assert to_cell_value(moment, tz) == datetime.datetime(2024, 1, 1, 17, 0)


def test_other_types():
    row = [None, True, 7, 1.5, decimal.Decimal("2.50"), datetime.date(2024, 5, 1), {"b": 1, "a": "=x"}, b"\xff", object,
           datetime.time(13, 5, 7), datetime.datetime(2024, 5, 1, 13, 5, 7)]
    ws = _load(_write(list("abcdefghijk"), [row]))
    values = [c.value for c in ws[2]]
    assert values[:5] == [None, True, 7, 1.5, 2.5]
    assert values[5] == datetime.datetime(2024, 5, 1)
    assert ws["F2"].number_format == "yyyy-mm-dd"
    assert values[6] == '{"a": "=x", "b": 1}'
    assert values[7] == "\ufffd"
    assert values[8] == str(object)
    assert values[9] == datetime.time(13, 5, 7) and ws["J2"].number_format == "hh:mm:ss"
    assert values[10] == datetime.datetime(2024, 5, 1, 13, 5, 7)
    assert ws["K2"].number_format == "yyyy-mm-dd hh:mm:ss"


def test_header_bold_and_notice():
    ws = _load(_write(["one", "two"], [[1, 2]], notice=lambda: "capped here", title="My sheet"))
    assert ws.title == "My sheet"
    assert ws["A1"].font.b
    assert [c.value for c in ws[2]] == [1, 2]
    assert ws["A4"].value == "capped here"
    assert ws["A4"].font.b


def test_no_notice_when_callable_returns_none():
    ws = _load(_write(["one"], [[1]], notice=lambda: None))
    assert ws.max_row == 2


@pytest.mark.django_db  # closing a response closes old DB connections
def test_response_streams_a_file():
    response = xlsx_response(["a"], [["=1"], ["x"]], "report")
    assert response.streaming
    assert response["Content-Type"] == CONTENT_TYPE
    assert CONTENT_TYPE == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="report.xlsx"' in response["Content-Disposition"]
    buf = io.BytesIO(b"".join(response.streaming_content))
    response.close()
    ws = _load(buf)
    assert [ws["A2"].value, ws["A3"].value] == ["=1", "x"]


def test_memory_does_not_grow_with_rows():
    """constant_memory mode with inline strings: the peak is about the same for 1,000 and 10,000 rows."""

    def peak(count):
        rows = (["message number %d with some text" % i, i, timezone.now()] for i in range(count))
        tracemalloc.start()
        try:
            write_xlsx(_NullFile(), ["m", "n", "t"], rows)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small = peak(1000)
    large = peak(10000)
    assert large < small * 2 + 1024 * 1024


class _NullFile(io.RawIOBase):
    """A seekable sink so the zip archive itself does not count as memory."""

    def __init__(self):
        self.pos = 0
        self.size = 0

    def writable(self):
        return True

    def seekable(self):
        return True

    def write(self, b):
        self.pos += len(b)
        self.size = max(self.size, self.pos)
        return len(b)

    def seek(self, offset, whence=0):
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self):
        return self.pos
