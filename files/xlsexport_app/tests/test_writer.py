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
from xlsexport.writer import (CONTENT_TYPE, XlsxStream, excel_serial, sheet_title, to_cell_value,
                              write_xlsx, xlsx_response)

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
    buf = _write(["a", "b", ""], [["x", 1], [datetime.date(2024, 1, 1), "=y"], ["a]]>b <c> & d", 2],
                                  [_Level.ERROR, b"\x00"], ["=a]]>b", True],
                                  [datetime.datetime(2024, 1, 1, 12, tzinfo=UTC), float("nan")]],
                 notice="note", column_widths=[5, None, 9])
    _check_package(buf)
    _check_package(_write(["a"], [["x"]]))  # no column widths
    ws = openpyxl.load_workbook(buf).active
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width == pytest.approx(5.71, abs=0.01)
    assert ws.column_dimensions["C"].width == pytest.approx(9.71, abs=0.01)
    assert [c.value for c in ws[2]] == ["x", 1, None]
    assert [c.value for c in ws[4]] == ["a]]>b <c> & d", 2, None]
    assert [c.value for c in ws[6]] == ["=a]]>b", True, None]


def _check_package(buf):
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


def test_column_widths_are_stored_as_excel_stores_them():
    # Whole pixels of 7-pixel digits plus 5 pixels of padding, in 1/256 of a character.
    ws = _load(_write(["a", "b", "c"], [["x"]], column_widths=[1, 1.5, 20]))
    assert [ws.column_dimensions[c].width for c in "ABC"] == [438 / 256, 585 / 256, 5302 / 256]


def test_cells_beyond_the_26th_column_are_where_they_belong():
    headers = ["h%d" % i for i in range(30)]
    ws = _load(_write(headers, [list(range(30))]))
    assert [c.value for c in ws[1]] == headers
    assert [c.value for c in ws[2]] == list(range(30))
    assert ws["AA2"].value == 26 and ws["AD2"].value == 29


def test_empty_cells_leave_the_rest_of_the_row_in_place():
    ws = _load(_write(list("abcd"), [["", "x", "\x00\x01", "y"]]))
    assert [c.value for c in ws[2]] == [None, "x", None, "y"]


def test_only_formula_like_text_is_quoted_and_only_headers_are_bold():
    ws = _load(_write(["=head", "plain", ""], [["=x", {"k": "v"}, 1.5], ["Xylophone", "\rx", 2]]))
    header, quoted, general, number = ws["A1"], ws["A2"], ws["B2"], ws["C2"]
    assert header.value == "=head" and header.font.b and header.quotePrefix
    assert ws["B1"].font.b and not ws["B1"].quotePrefix
    assert quoted.quotePrefix and not quoted.font.b
    assert general.value == '{"k": "v"}' and not general.quotePrefix and not general.font.b
    assert number.value == 1.5 and not number.font.b and number.number_format == "General"
    assert not ws["A3"].quotePrefix
    assert ws["B3"].value == "\nx" and ws["B3"].quotePrefix


def test_numbers_excel_cannot_store_become_error_cells():
    ws = _load(_write(["a", "b", "c"], [[float("nan"), float("inf"), float("-inf")]]))
    assert [c.value for c in ws[2]] == ["#NUM!", "#DIV/0!", "#DIV/0!"]
    assert [c.data_type for c in ws[2]] == ["e", "e", "e"]


def test_excel_serial_numbers_of_dates_and_times():
    assert excel_serial(datetime.date(1900, 1, 1)) == 1
    # Excel counts a 1900-02-29 that never was: the days after it are one more.
    assert excel_serial(datetime.date(1900, 2, 28)) == 59
    assert excel_serial(datetime.date(1900, 3, 1)) == 61
    assert excel_serial(datetime.date(2024, 1, 1)) == 45292
    assert excel_serial(datetime.datetime(2024, 1, 1, 6, 0, 0, 500000)) == 45292 + 21600.5 / 86400
    assert excel_serial(datetime.time(12, 0, 0, 250000)) == 43200.25 / 86400


def test_datetimes_are_written_in_the_export_time_zone():
    # Neither the settings' zone (Europe/Moscow here) nor the machine's.
    plus5 = datetime.timezone(datetime.timedelta(hours=5))
    moment = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    naive = datetime.datetime(2024, 1, 1, 12, 0)
    ws = _load(_write(["aware", "naive"], [[moment, naive]], tzinfo=plus5))
    assert [c.value for c in ws[2]] == [datetime.datetime(2024, 1, 1, 17, 0), naive]
    with timezone.override("Asia/Tokyo"):
        ws = _load(_write(["aware"], [[moment]]))
        stream = XlsxStream(["aware"], [[moment]])
    assert ws["A2"].value == datetime.datetime(2024, 1, 1, 21, 0)
    assert _load(io.BytesIO(b"".join(stream)))["A2"].value == datetime.datetime(2024, 1, 1, 21, 0)


def test_cell_values_of_other_types():
    assert to_cell_value(datetime.time(8, 0, tzinfo=UTC)) == datetime.time(8, 0)
    assert to_cell_value(datetime.time(8, 0, tzinfo=UTC)).tzinfo is None
    assert to_cell_value({"заказ": "№1"}) == '{"заказ": "№1"}'


def test_sheet_titles_lose_their_apostrophes_at_either_end():
    assert sheet_title("'Logs'") == "Logs"
    assert sheet_title("It's") == "It's"
    assert sheet_title("XLS export X") == "XLS export X"


@pytest.mark.django_db  # closing a response closes old DB connections
def test_a_workbook_without_a_title_has_a_sheet_named_export(tmp_path):
    path = str(tmp_path / "out.xlsx")
    assert write_xlsx(path, ["a"], [["x"]]) == 1
    assert openpyxl.load_workbook(path).active.title == "Export"
    response = xlsx_response(["a"], [["x"]], "report")
    buf = io.BytesIO(b"".join(response.streaming_content))
    response.close()
    assert _load(buf).title == "Export"


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
