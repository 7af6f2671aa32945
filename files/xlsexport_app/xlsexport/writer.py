"""Sanitised XLSX writing shared by the admin action and other exports.

Built on XlsxWriter's ``constant_memory`` mode: each row is written out (strings inline, no
shared-string table) as soon as the next one starts, so memory stays constant however many rows
are written. XlsxWriter keeps the sheet XML in a temporary file and zips the workbook when it is
closed; the finished workbook lives in an anonymous temporary file that FileResponse streams in
chunks, so the first byte goes out when the workbook is complete. XlsxWriter needs about 40% less
CPU than openpyxl's write-only mode for the same sheet (bench/export_speed.py).

Text never becomes a formula or a link: every string is written with ``write_string`` (and the
workbook's ``strings_to_formulas``/``strings_to_urls``/``strings_to_numbers`` are off anyway).
"""
import datetime
import decimal
import json
import re
import tempfile

import xlsxwriter
from django.utils import timezone

from .compat import attachment_response

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Spreadsheet programs treat a cell starting with one of these as a formula when it is typed in or
# imported, which is how exported log text ("=HYPERLINK(...)") turns into an attack.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
TIME_FORMAT = "hh:mm:ss"

# Excel's hard limit for the text of one cell.
MAX_CELL_LENGTH = 32767

# Characters XML 1.0 (and so XLSX) cannot hold: C0 controls other than tab, LF and CR; lone
# surrogates (they cannot even be encoded as UTF-8); U+FFFE and U+FFFF.
ILLEGAL_CHARACTERS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Characters Excel does not allow in a sheet name.
_SHEET_TITLE_RE = re.compile(r"[\[\]:*?/\\]")

_WORKBOOK_OPTIONS = {
    "constant_memory": True,
    # Only explicit write_* calls are made, but never let text turn into a formula, URL or number.
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    # NaN/inf cannot be stored as numbers: #NUM! instead of an exception halfway through an export.
    "nan_inf_to_errors": True,
}


def clean_text(value):
    """Text without the control characters XLSX forbids, cut to what a cell can hold."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)[:MAX_CELL_LENGTH]


def to_cell_value(value, tzinfo=None):
    """A value a cell can hold: aware datetimes become naive local time in ``tzinfo``
    (default: the current Django time zone) because Excel has no time zones."""
    if value is None or isinstance(value, (bool, int, float, decimal.Decimal)):
        return value
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.make_naive(value, tzinfo or timezone.get_current_timezone())
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        if isinstance(value, datetime.time) and value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        return value
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    elif isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif not isinstance(value, str):
        value = str(value)
    return clean_text(value)


def sheet_title(title):
    """A sheet name Excel accepts: no []:*?/\\, no leading/trailing apostrophe, at most 31 characters."""
    title = _SHEET_TITLE_RE.sub(" ", clean_text(str(title))).strip().strip("'")[:31].strip()
    return title or "Export"


class XlsxSheetWriter:
    """Appends sanitised rows to one constant_memory worksheet of an ``xlsxwriter.Workbook``
    (create it with ``new_workbook``). Rows can only be appended, never revisited.

    Use ``write_xlsx`` or ``xlsx_response`` unless several sheets are needed.
    """

    def __init__(self, workbook, title="Export", tzinfo=None):
        self.workbook = workbook
        self.sheet = workbook.add_worksheet(sheet_title(title))
        self.tzinfo = tzinfo
        self.rows_written = 0
        self.next_row = 0
        self._formats = {}

    def _format(self, bold=False, quote_prefix=False, num_format=None):
        key = (bold, quote_prefix, num_format)
        if not any(key):
            return None
        fmt = self._formats.get(key)
        if fmt is None:
            props = {}
            if bold:
                props["bold"] = True
            if quote_prefix:
                # Excel/LibreOffice keep the cell text even when someone edits it.
                props["quote_prefix"] = True
            if num_format:
                props["num_format"] = num_format
            fmt = self._formats[key] = self.workbook.add_format(props)
        return fmt

    def write_cell(self, row, col, value, bold=False):
        value = to_cell_value(value, self.tzinfo)
        sheet = self.sheet
        if isinstance(value, str):
            risky = value.startswith(FORMULA_PREFIXES)
            fmt = self._format(bold, risky) if (risky or bold) else None
            if "\r" in value:
                # XlsxWriter would store CR as the escape _x000D_, which Excel decodes but openpyxl,
                # pandas and others show literally. Every XML parser reads a raw CR as LF (and CR LF
                # as one LF), so this is what the cell held before, whatever the reader.
                value = value.replace("\r\n", "\n").replace("\r", "\n")
            if value:
                sheet.write_string(row, col, value, fmt)
            elif fmt is not None:
                sheet.write_blank(row, col, None, fmt)
        elif value is None:
            if bold:
                sheet.write_blank(row, col, None, self._format(bold))
        elif isinstance(value, bool):
            sheet.write_boolean(row, col, value, self._format(bold))
        elif isinstance(value, (int, float)):
            sheet.write_number(row, col, value, self._format(bold))
        elif isinstance(value, decimal.Decimal):
            sheet.write_number(row, col, float(value), self._format(bold))
        else:  # datetime, date or time (naive)
            if isinstance(value, datetime.datetime):
                num_format = DATETIME_FORMAT
            elif isinstance(value, datetime.date):
                num_format = DATE_FORMAT
            else:
                num_format = TIME_FORMAT
            sheet.write_datetime(row, col, value, self._format(bold, False, num_format))

    def _append(self, values, bold=False):
        row = self.next_row
        if bold:
            for col, value in enumerate(values):
                self.write_cell(row, col, value, bold=True)
        else:
            # The hot loop of big exports: plain text and integers, the bulk of the cells, take a
            # short path with the same result as write_cell().
            write_cell = self.write_cell
            write_string = self.sheet.write_string
            write_number = self.sheet.write_number
            illegal_sub = ILLEGAL_CHARACTERS_RE.sub
            for col, value in enumerate(values):
                kind = type(value)
                if kind is str:
                    value = illegal_sub("", value)
                    if len(value) > MAX_CELL_LENGTH:
                        value = value[:MAX_CELL_LENGTH]
                    if value and "\r" not in value and not value.startswith(FORMULA_PREFIXES):
                        write_string(row, col, value)
                        continue
                elif kind is int:
                    write_number(row, col, value)
                    continue
                elif value is None:
                    continue
                write_cell(row, col, value)
        self.next_row = row + 1

    def header(self, names):
        self.sheet.freeze_panes(1, 0)
        self._append(names, bold=True)

    def row(self, values):
        self._append(values)
        self.rows_written += 1

    def notice(self, text):
        """A bold line after the data (and an empty row), e.g. to say the export was capped."""
        self.next_row += 1
        self._append([text], bold=True)


def new_workbook(fileobj, tmpdir=None):
    """An ``xlsxwriter.Workbook`` writing to ``fileobj`` (a path or a binary file object), with the
    options every export uses. ``tmpdir``: where XlsxWriter keeps the sheet data until ``close()``."""
    options = dict(_WORKBOOK_OPTIONS)
    if tmpdir:
        options["tmpdir"] = tmpdir
    return xlsxwriter.Workbook(fileobj, options)


def write_xlsx(fileobj, headers, rows, title="Export", notice=None, tzinfo=None, column_widths=None):
    """Write one sheet with a bold header row, then ``rows`` (an iterable of sequences).

    ``notice`` (text, or a callable returning text or None, called after the rows were consumed)
    is written as a bold line below the data. Returns the number of data rows written.
    """
    # XlsxWriter keeps the sheet data in named temporary files that it removes only when the
    # workbook is closed: a private folder makes sure they go even if ``rows`` raises.
    with tempfile.TemporaryDirectory(prefix="xlsexport-") as tmpdir:
        workbook = new_workbook(fileobj, tmpdir=tmpdir)
        writer = XlsxSheetWriter(workbook, title=title, tzinfo=tzinfo)
        for index, width in enumerate(column_widths or ()):
            if width:
                writer.sheet.set_column(index, index, width)
        writer.header(headers)
        for values in rows:
            writer.row(values)
        if callable(notice):
            notice = notice()
        if notice:
            writer.notice(notice)
        workbook.close()
    return writer.rows_written


def xlsx_response(headers, rows, filename, **kwargs):
    """A FileResponse streaming the workbook from an anonymous temporary file (removed on close)."""
    fileobj = tempfile.TemporaryFile(suffix=".xlsx")
    try:
        write_xlsx(fileobj, headers, rows, **kwargs)
        fileobj.seek(0)
    except BaseException:
        fileobj.close()
        raise
    if not filename.endswith(".xlsx"):
        filename += ".xlsx"
    return attachment_response(fileobj, filename, CONTENT_TYPE)
