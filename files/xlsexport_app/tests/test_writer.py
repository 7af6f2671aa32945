import datetime
import decimal
import enum
import io
import sys
import tempfile
import tracemalloc
import zipfile
from xml.etree import ElementTree

import openpyxl
import pytest
from django.utils import timezone

from xlsexport.testing import libreoffice_rows, soffice_or_skip
from xlsexport.writer import CONTENT_TYPE, XlsxStream, to_cell_value, write_xlsx, xlsx_response

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
     "\x07=cmd|' /C calc'!A0", "\x00\x1b+1", "\x08@SUM(A1)", '=A1&"<b>"'],
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


def test_printable_text_has_no_character_xlsx_forbids():
    # The writer skips the removal for text that str.isprintable() passes: true on every Python
    # (and Unicode database) it runs on.
    from xlsexport.writer import ILLEGAL_CHARACTERS_RE

    assert not [c for c in range(sys.maxunicode + 1) if chr(c).isprintable() and ILLEGAL_CHARACTERS_RE.match(chr(c))]


def test_carriage_returns_read_back_as_line_feeds():
    # Not the _x000D_ escape, which Excel decodes but openpyxl and pandas would show literally.
    cell = _load(_write(["h"], [["one\r\ntwo\rthree"]]))["A2"]
    assert cell.value == "one\ntwo\nthree"


def test_sheet_title_made_valid():
    ws = _load(_write(["h"], [[1]], title="Logs [a/b]: *what?* " + "x" * 40))
    assert ws.title.startswith("Logs  a b    what   xxx")
    assert not set(ws.title) & set("[]:*?/\\")
    assert len(ws.title) == 31


@pytest.mark.parametrize("title,shown", [("", "Export"), ("[]", "Export"), ('Say "hi" & <go>', 'Say "hi" & <go>')])
def test_sheet_title_empty_or_with_markup(title, shown):
    assert _load(_write(["h"], [[1]], title=title)).title == shown


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
           datetime.time(13, 5, 7), datetime.datetime(2024, 5, 1, 13, 5, 7), datetime.time(8, 0, tzinfo=UTC)]
    ws = _load(_write(list("abcdefghijkl"), [row]))
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
    assert values[11] == datetime.time(8, 0)  # Excel has no time zones: the time as given


def test_int_subclasses_bytes_and_what_cleaning_empties():
    ws = _load(_write(list("abcd"), [[_Level.ERROR, b"a\x01b\tc", b"\x00", "x"]]))
    assert [c.value for c in ws[2]] == [40, "ab\tc", None, "x"]
    assert ws["A2"].data_type == "n"


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
    named = xlsx_response(["a"], [["x"]], "orders.xlsx")
    assert 'filename="orders.xlsx"' in named["Content-Disposition"]
    named.close()
    buf = io.BytesIO(b"".join(response.streaming_content))
    response.close()
    ws = _load(buf)
    assert [ws["A2"].value, ws["A3"].value] == ["=1", "x"]


def _mixed_content(element):
    """Elements of a part holding text beside child elements: SpreadsheetML has none, and Excel
    refuses a part that does (a lenient reader such as openpyxl skips it)."""
    found = []
    for e in element.iter():
        children = list(e)
        if children and (e.text or "").strip():
            found.append(e.tag)
        found.extend(c.tag for c in children if (c.tail or "").strip())
    return found


class _Level(enum.IntEnum):
    ERROR = 40


def test_package_is_a_valid_workbook():
    # Every kind of cell, including those of the general path (an int subclass, text that
    # cleaning empties).
    buf = _write(["a", "b"], [["x", 1], [datetime.date(2024, 1, 1), "=y"], ["a]]>b <c> & d", 2],
                              [_Level.ERROR, b"\x00"]],
                 notice="note", column_widths=[5, None])
    archive = zipfile.ZipFile(buf)
    assert archive.testzip() is None  # every member's CRC matches
    names = archive.namelist()
    assert names[0] == "[Content_Types].xml"
    for name in names:  # every part is well-formed XML, without text between its elements
        assert _mixed_content(ElementTree.fromstring(archive.read(name))) == [], name
    ns = "{http://schemas.openxmlformats.org/package/2006/content-types}"
    types = ElementTree.fromstring(archive.read("[Content_Types].xml"))
    overrides = {e.get("PartName"): e.get("ContentType") for e in types.iter(ns + "Override")}
    defaults = {e.get("Extension"): e.get("ContentType") for e in types.iter(ns + "Default")}
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml."
    assert overrides["/xl/workbook.xml"] == main + "sheet.main+xml"
    assert overrides["/xl/worksheets/sheet1.xml"] == main + "worksheet+xml"
    assert overrides["/xl/styles.xml"] == main + "styles+xml"
    for name in names[1:]:
        # Every part has a content type, and every overridden one exists.
        assert "/" + name in overrides or name.rsplit(".", 1)[1] in defaults, name
    assert {name.lstrip("/") for name in overrides} <= set(names)
    # Every relationship points at a part of the package.
    rel_ns = "{http://schemas.openxmlformats.org/package/2006/relationships}"
    for rels, base in (("_rels/.rels", ""), ("xl/_rels/workbook.xml.rels", "xl/")):
        for rel in ElementTree.fromstring(archive.read(rels)).iter(rel_ns + "Relationship"):
            assert base + rel.get("Target") in names
    ws = openpyxl.load_workbook(buf).active
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width == pytest.approx(5.71, abs=0.01)
    assert [c.value for c in ws[2]] == ["x", 1]
    assert [c.value for c in ws[4]] == ["a]]>b <c> & d", 2]


def test_libreoffice_shows_every_cell_as_written():
    """The workbook opened by LibreOffice Calc, the support staff's spreadsheet application: every
    cell reads as the export meant it, formula-like text stays text (Calc evaluates formulas), and
    what XML forbids is gone."""
    soffice = soffice_or_skip()
    formula_like = ["=1+1", '=HYPERLINK("http://evil.example","x")', "+1", "-2+3", "@SUM(A1)", "\tx",
                    "\x07=cmd|' /C calc'!A0", "\x00\x1b+1"]
    typed = [None, True, 7, -3, 1.5, decimal.Decimal("2.50"), 12345678901234, datetime.date(2024, 5, 1),
             datetime.time(13, 5, 7), datetime.datetime(2024, 1, 31, 21, 30, 15, tzinfo=UTC),
             {"b": 1, "a": "=x"}, b"\xff", "a]]>b <c> & d", "Журнал, «кавычки»", "a\x00b\x01c\x0bd",
             "l1\r\nl2\rl3", "x" * 40000]
    headers = ["Когда", "what"] + ["h%d" % i for i in range(len(typed) - 2)]
    buf = io.BytesIO()
    with timezone.override("Europe/Moscow"):
        write_xlsx(buf, headers, [typed] + [[text] for text in formula_like],
                   notice="Выгрузка обрезана")
    rows = libreoffice_rows(buf.getvalue(), soffice)
    assert rows[0] == headers
    assert rows[1] == ["", "TRUE", "7", "-3", "1.5", "2.5", "12345678901234", "2024-05-01", "13:05:07",
                       "2024-02-01 00:30:15", '{"a": "=x", "b": 1}', "\ufffd", "a]]>b <c> & d",
                       "Журнал, «кавычки»", "abcd", "l1\nl2\nl3", "x" * 32767]
    assert [row[0] for row in rows[2:2 + len(formula_like)]] == [
        "=1+1", '=HYPERLINK("http://evil.example","x")', "+1", "-2+3", "@SUM(A1)", "\tx",
        "=cmd|' /C calc'!A0", "+1"]
    assert [row[0] for row in rows[2 + len(formula_like):]] == ["", "Выгрузка обрезана"]


def test_a_column_narrower_than_a_character_keeps_its_width():
    ws = _load(_write(["a"], [["x"]], column_widths=[0.5]))
    assert ws.column_dimensions["A"].width == pytest.approx(0.5, abs=0.01)


def test_the_number_of_data_rows_is_returned():
    assert write_xlsx(io.BytesIO(), ["a"], [["x"], ["y"], ["z"]], notice="not a data row") == 3


def test_a_notice_read_after_the_view_returned_is_in_the_views_language():
    from django.utils import translation

    with translation.override("ru"):
        stream = XlsxStream(["h"], [["x"]], notice=translation.get_language)
    with translation.override("en"):
        buf = io.BytesIO(b"".join(stream))
    assert _load(buf)["A4"].value == "ru"


def test_stream_starts_before_the_rows_are_read():
    consumed = []

    def rows():
        for i in range(5000):
            consumed.append(i)
            yield ["row %d" % i, i]

    chunks = iter(XlsxStream(["text", "n"], rows()))
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04")
    # Out after the first row: the rest are read as the download goes on.
    assert len(consumed) == 1
    body = first + b"".join(chunks)
    assert len(consumed) == 5000
    ws = openpyxl.load_workbook(io.BytesIO(body), read_only=True).active
    assert list(ws.iter_rows(min_row=2, values_only=True)) == [("row %d" % i, i) for i in range(5000)]


@pytest.mark.django_db  # closing a response closes old DB connections
def test_response_reads_the_first_row_before_it_is_returned():
    def rows():
        raise RuntimeError("the query failed")
        yield

    # An error response, not a download that breaks off.
    with pytest.raises(RuntimeError):
        xlsx_response(["a"], rows(), "report")


def test_memory_does_not_grow_with_rows():
    """Rows are turned into XML and compressed as they come: the peak is about the same for
    1,000 and 10,000 rows."""

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
    """A sink so the workbook itself does not count as memory."""

    def writable(self):
        return True

    def write(self, b):
        return len(b)
