"""Streamed, sanitised XLSX writing shared by the admin action and other exports.

openpyxl's write-only mode writes rows to a temporary file as they are appended and stores strings
inline (no shared-string table in memory), so memory stays constant however many rows are written.
The finished workbook lives in an anonymous temporary file that FileResponse streams in chunks.
"""
import datetime
import decimal
import json
import tempfile

from django.http import FileResponse
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Spreadsheet programs treat a cell starting with one of these as a formula when it is typed in or
# imported, which is how exported log text ("=HYPERLINK(...)") turns into an attack.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
TIME_FORMAT = "hh:mm:ss"

# Excel's hard limit for the text of one cell.
MAX_CELL_LENGTH = 32767


def clean_text(value):
    """Text without the control characters XLSX forbids, cut to what a cell can hold."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)[:MAX_CELL_LENGTH]


def to_cell_value(value, tzinfo=None):
    """A value openpyxl can write: aware datetimes become naive local time in ``tzinfo``
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


class XlsxSheetWriter:
    """Appends sanitised rows to one write-only worksheet.

    Use ``write_xlsx`` or ``xlsx_response`` unless several sheets are needed.
    """

    def __init__(self, workbook, title="Export", tzinfo=None):
        self.sheet = workbook.create_sheet(title=title[:31])
        self.tzinfo = tzinfo
        self.rows_written = 0

    def cell(self, value, bold=False):
        """A WriteOnlyCell, or the plain value when it needs no type or style of its own: openpyxl
        then reuses one cell object per row, which is several times faster on big exports."""
        value = to_cell_value(value, self.tzinfo)
        styled = bold
        if isinstance(value, str):
            # openpyxl itself turns "=..." into a formula: those need an explicit string cell.
            # The quote prefix style keeps the cell text even if someone edits it in Excel.
            risky = value.startswith(FORMULA_PREFIXES)
            if not (risky or styled):
                return value
            cell = WriteOnlyCell(self.sheet, value=value)
            cell.data_type = "s"
            if risky:
                cell.quotePrefix = True
        elif isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
            cell = WriteOnlyCell(self.sheet, value=value)
            if isinstance(value, datetime.datetime):
                cell.number_format = DATETIME_FORMAT
            elif isinstance(value, datetime.date):
                cell.number_format = DATE_FORMAT
            else:
                cell.number_format = TIME_FORMAT
        elif styled:
            cell = WriteOnlyCell(self.sheet, value=value)
        else:
            return value
        if bold:
            cell.font = Font(bold=True)
        return cell

    def header(self, names):
        # Sheet views are written with the first row in write-only mode, so freeze first.
        self.sheet.freeze_panes = "A2"
        self.sheet.append([self.cell(name, bold=True) for name in names])

    def row(self, values):
        self.sheet.append([self.cell(value) for value in values])
        self.rows_written += 1

    def notice(self, text):
        """A bold line after the data, e.g. to say the export was capped."""
        self.sheet.append([])
        self.sheet.append([self.cell(text, bold=True)])


def write_xlsx(fileobj, headers, rows, title="Export", notice=None, tzinfo=None, column_widths=None):
    """Write one sheet with a bold header row, then ``rows`` (an iterable of sequences).

    ``notice`` (text, or a callable returning text or None, called after the rows were consumed)
    is written as a bold line below the data. Returns the number of data rows written.
    """
    workbook = Workbook(write_only=True)
    writer = XlsxSheetWriter(workbook, title=title, tzinfo=tzinfo)
    if column_widths:
        # Column widths must be set before the first row in write-only mode.
        from openpyxl.utils import get_column_letter

        for index, width in enumerate(column_widths, start=1):
            if width:
                writer.sheet.column_dimensions[get_column_letter(index)].width = width
    writer.header(headers)
    for values in rows:
        writer.row(values)
    if callable(notice):
        notice = notice()
    if notice:
        writer.notice(notice)
    workbook.save(fileobj)
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
    return FileResponse(fileobj, as_attachment=True, filename=filename, content_type=CONTENT_TYPE)
