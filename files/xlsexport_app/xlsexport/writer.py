"""Sanitised XLSX writing shared by the admin action and other exports.

The workbook is produced as a stream of bytes while the rows are read: the package's small parts
(content types, relationships, workbook, styles) are written first, then the sheet's XML row by
row into a deflated zip entry, then the zip's central directory. The first bytes go out as soon as
the first row has been read and memory stays flat however many rows follow (one block of rows and
zlib's window). ``zipfile`` of the standard library writes to a stream that cannot seek (a data
descriptor after each entry), so there is nothing to install.

Why not a workbook library: XlsxWriter, openpyxl, PyExcelerate and the Rust-backed writers all zip
the workbook when it is closed, i.e. after the last row, so the first byte waits for the whole
file; and spending 2-3 times less CPU than XlsxWriter's ``constant_memory`` mode comes from writing
the few kinds of cells an export has straight into the sheet's XML (bench/export_speed.py).

Text never becomes a formula: every string is an inline string cell (``t="inlineStr"``), never a
``<f>``; text that spreadsheet programs would read as a formula once edited also gets a cell style
with ``quotePrefix``.
"""
import datetime
import decimal
import itertools
import json
import math
import re
import zipfile

from django.http import StreamingHttpResponse
from django.utils import timezone, translation

from .compat import attachment_disposition, zip_options

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Spreadsheet programs treat a cell starting with one of these as a formula when it is typed in or
# imported, which is how exported log text ("=HYPERLINK(...)") turns into an attack.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST = "".join(FORMULA_PREFIXES)  # each prefix is one character

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

# Sheet XML is handed to zlib in blocks of about this many characters, and the response sends
# the compressed bytes in chunks of about this size.
_BLOCK_SIZE = 1 << 16


def clean_text(value):
    """Text without the control characters XLSX forbids, cut to what a cell can hold."""
    # Printable text has none of them (isprintable() is much cheaper than the regex).
    if not value.isprintable():
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return value[:MAX_CELL_LENGTH]


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


# --- the sheet's XML ----------------------------------------------------------------------------------

# Cell styles: indexes into <cellXfs> of STYLES_XML.
STYLE_BOLD = 1
STYLE_QUOTED = 2
STYLE_BOLD_QUOTED = 3
STYLE_DATETIME = 4
STYLE_DATE = 5
STYLE_TIME = 6

_EXCEL_EPOCH = datetime.datetime(1899, 12, 31)
_SECONDS_PER_DAY = 86400.0


def excel_serial(value):
    """Excel's number for a naive datetime, date or time (days since 1900-01-00, with Excel's
    1900-02-29 that never was; a time alone is a fraction of a day), as XlsxWriter computes it."""
    if isinstance(value, datetime.time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / _SECONDS_PER_DAY
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    delta = value - _EXCEL_EPOCH
    serial = delta.days + (delta.seconds + delta.microseconds / 1e6) / _SECONDS_PER_DAY
    return serial + 1 if serial > 59 else serial


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _column_name(index):
    """0 -> A, 25 -> Z, 26 -> AA."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _text_cell(ref, text, bold=False):
    """The XML of a text cell (``text`` already cleaned), or "" for an empty plain one."""
    quoted = text.startswith(FORMULA_PREFIXES)
    # A CR is written as it is: XML parsers read it (and CR LF) as LF. The _x000D_ escape would be
    # decoded by Excel only, and shown literally by openpyxl, pandas and others.
    style = (STYLE_BOLD_QUOTED if quoted else STYLE_BOLD) if bold else (STYLE_QUOTED if quoted else 0)
    if not text:
        return '<c r="%s" s="%d"/>' % (ref, style) if style else ""
    return '<c r="%s"%s t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>' % (
        ref, ' s="%d"' % style if style else "", _escape(text))


def _number_cell(ref, number, style=0):
    style_attr = ' s="%d"' % style if style else ""
    if math.isfinite(number):
        return '<c r="%s"%s><v>%r</v></c>' % (ref, style_attr, number)
    # Not a number Excel can store: an error cell rather than an exception halfway through.
    return '<c r="%s"%s t="e"><v>%s</v></c>' % (ref, style_attr, "#NUM!" if math.isnan(number) else "#DIV/0!")


def _cell(ref, value, tzinfo):
    """The XML of one data cell of any type (the general path of ``_SheetRows.row``)."""
    value = to_cell_value(value, tzinfo)  # not None: row() leaves None cells out
    if isinstance(value, str):
        return _text_cell(ref, value)
    if isinstance(value, bool):
        return '<c r="%s" t="b"><v>%d</v></c>' % (ref, value)
    if isinstance(value, int):
        return '<c r="%s"><v>%d</v></c>' % (ref, value)
    if isinstance(value, (float, decimal.Decimal)):
        return _number_cell(ref, float(value))
    # datetime, date or time (naive)
    if isinstance(value, datetime.datetime):
        style = STYLE_DATETIME
    elif isinstance(value, datetime.date):
        style = STYLE_DATE
    else:
        style = STYLE_TIME
    return _number_cell(ref, excel_serial(value), style)


class _SheetRows:
    """Turns rows of values into the <row> elements of the sheet's XML, sanitising every cell."""

    def __init__(self, tzinfo):
        self.tzinfo = tzinfo
        self.next_row = 1
        self._columns = []

    def _refs(self, count):
        while len(self._columns) < count:
            self._columns.append(_column_name(len(self._columns)))
        return self._columns

    def row(self, values):
        number = self.next_row
        self.next_row = number + 1
        suffix = str(number)
        tzinfo = self.tzinfo
        illegal_sub = ILLEGAL_CHARACTERS_RE.sub
        parts = ['<row r="%s">' % suffix]
        append = parts.append
        # The hot loop of big exports: plain text, integers and aware datetimes, the bulk of the
        # cells, take a short path with the same result as _cell().
        for column, value in zip(self._refs(len(values)), values):
            kind = type(value)
            if kind is str:
                if not value:
                    continue
                if not value.isprintable():
                    value = illegal_sub("", value)
                    if not value:
                        continue
                if len(value) > MAX_CELL_LENGTH:
                    value = value[:MAX_CELL_LENGTH]
                if value[0] in FORMULA_FIRST:
                    append(_text_cell(column + suffix, value))
                else:
                    append('<c r="%s%s" t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>' % (
                        column, suffix, value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")))
            elif kind is int:
                append('<c r="%s%s"><v>%d</v></c>' % (column, suffix, value))
            elif kind is datetime.datetime and value.tzinfo is not None:
                # timezone.make_naive(), without its checks
                value = value.astimezone(tzinfo).replace(tzinfo=None)
                append('<c r="%s%s" s="%d"><v>%r</v></c>' % (column, suffix, STYLE_DATETIME, excel_serial(value)))
            elif value is not None:
                append(_cell(column + suffix, value, tzinfo))
        append("</row>")
        return "".join(parts)

    def bold_row(self, texts):
        """A row of bold text cells (the header, a notice)."""
        number = self.next_row
        self.next_row = number + 1
        cells = [_text_cell("%s%d" % (column, number), clean_text(str(text)), bold=True)
                 for column, text in zip(self._refs(len(texts)), texts) if text is not None]
        return '<row r="%d">%s</row>' % (number, "".join(cells))

    def skip_row(self):
        self.next_row += 1


def _column_width(width):
    """The stored width of a column ``width`` characters wide (Calibri 11: 7-pixel digits and
    5 pixels of padding), as Excel and XlsxWriter store it."""
    if width < 1:
        return int(width * 12 + 0.5) / 12.0
    return int((int(width * 7 + 0.5) + 5) / 7.0 * 256) / 256.0


def _sheet_head(column_widths):
    cols = "".join(
        '<col min="%d" max="%d" width="%r" customWidth="1"/>' % (index, index, _column_width(width))
        for index, width in enumerate(column_widths or (), start=1) if width
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        # The header row stays in view (frozen) while scrolling.
        '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        + ("<cols>%s</cols>" % cols if cols else "")
        + "<sheetData>"
    )


SHEET_TAIL = (
    '</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
    "</worksheet>"
)

# --- the package's other parts ------------------------------------------------------------------------

CONTENT_TYPES_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    "</Types>"
)

ROOT_RELS_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
    'Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" '
    'Target="docProps/app.xml"/>'
    "</Relationships>"
)

APP_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>Microsoft Excel</Application></Properties>"
)

CORE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<dcterms:created xsi:type="dcterms:W3CDTF">%s</dcterms:created>'
    "</cp:coreProperties>"
)

WORKBOOK_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<bookViews><workbookView/></bookViews>'
    '<sheets><sheet name="%s" sheetId="1" r:id="rId1"/></sheets>'
    "</workbook>"
)

WORKBOOK_RELS_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/>'
    "</Relationships>"
)

# The <cellXfs> are the STYLE_* indexes above.
STYLES_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="3">'
    '<numFmt numFmtId="164" formatCode="' + DATETIME_FORMAT + '"/>'
    '<numFmt numFmtId="165" formatCode="' + DATE_FORMAT + '"/>'
    '<numFmt numFmtId="166" formatCode="' + TIME_FORMAT + '"/>'
    "</numFmts>"
    '<fonts count="2">'
    '<font><sz val="11"/><color rgb="FF000000"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><color rgb="FF000000"/><name val="Calibri"/><family val="2"/></font>'
    "</fonts>"
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" quotePrefix="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0"/>'
    "</styleSheet>"
)


class _Chunks:
    """The file zipfile writes to: it only appends, and the stream takes what has piled up."""

    def __init__(self):
        self._parts = []
        self.size = 0

    def write(self, data):
        if data:
            self._parts.append(bytes(data))
            self.size += len(data)
        return len(data)

    def flush(self):
        pass

    def take(self):
        data = b"".join(self._parts)
        self._parts = []
        self.size = 0
        return data


class XlsxStream:
    """One workbook of one sheet as an iterable of ``bytes`` chunks: a bold header row, then
    ``rows`` (an iterable of sequences) read as the chunks are taken, then ``notice``.

    ``notice`` (text, or a callable returning text or None, called after the rows were consumed)
    is written as a bold line below the data (after an empty row). ``tzinfo``: the time zone aware
    datetimes are written in (default: the current one when the stream is made).
    ``column_widths``: widths in characters, None to leave a column as it is.
    ``rows_written`` counts the data rows once the stream has been read.
    """

    def __init__(self, headers, rows, title="Export", notice=None, tzinfo=None, column_widths=None):
        self.headers = list(headers)
        self.rows = rows
        self.title = sheet_title(title)
        self.notice = notice
        # Taken now: the stream may be read after the view has returned (and its time zone and
        # language have been deactivated).
        self.tzinfo = tzinfo or timezone.get_current_timezone()
        self.language = translation.get_language()
        self.column_widths = column_widths
        self.rows_written = 0

    def _parts(self):
        created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            ("[Content_Types].xml", CONTENT_TYPES_XML),
            ("_rels/.rels", ROOT_RELS_XML),
            ("docProps/app.xml", APP_XML),
            ("docProps/core.xml", CORE_XML % created),
            ("xl/workbook.xml", WORKBOOK_XML % _escape(self.title).replace('"', "&quot;")),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS_XML),
            ("xl/styles.xml", STYLES_XML),
        )

    def __iter__(self):
        out = _Chunks()
        sheet_rows = _SheetRows(self.tzinfo)
        with zipfile.ZipFile(out, "w", **zip_options()) as archive:
            for name, text in self._parts():
                archive.writestr(name, text.encode("utf-8"))
            with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
                block = [_sheet_head(self.column_widths), sheet_rows.bold_row(self.headers)]
                block_size = 0
                first = True
                row = sheet_rows.row
                for values in self.rows:
                    text = row(values)
                    block.append(text)
                    block_size += len(text)
                    self.rows_written += 1
                    if first or block_size >= _BLOCK_SIZE:
                        sheet.write("".join(block).encode("utf-8"))
                        block = []
                        block_size = 0
                        if first or out.size >= _BLOCK_SIZE:
                            # The first row is out: the download starts (the package's small
                            # parts and the start of the sheet).
                            first = False
                            yield out.take()
                notice = self.notice
                if callable(notice):
                    with translation.override(self.language):
                        notice = notice()
                if notice:
                    sheet_rows.skip_row()
                    block.append(sheet_rows.bold_row([notice]))
                block.append(SHEET_TAIL)
                sheet.write("".join(block).encode("utf-8"))
        yield out.take()


def write_xlsx(fileobj, headers, rows, title="Export", notice=None, tzinfo=None, column_widths=None):
    """Write the workbook of ``XlsxStream(headers, rows, ...)`` to ``fileobj`` (a binary file
    object, or a path). Returns the number of data rows written."""
    stream = XlsxStream(headers, rows, title=title, notice=notice, tzinfo=tzinfo, column_widths=column_widths)
    if isinstance(fileobj, str):
        with open(fileobj, "wb") as fh:
            for chunk in stream:
                fh.write(chunk)
    else:
        for chunk in stream:
            fileobj.write(chunk)
    return stream.rows_written


def xlsx_response(headers, rows, filename, **kwargs):
    """A StreamingHttpResponse sending the workbook as it is made (keyword arguments: those of
    ``XlsxStream``).

    The first row is read here, in the view, so that a failing query (or anything else before the
    first row) is an error response and not a download cut short."""
    rows = iter(rows)
    first = next(rows, None)
    if first is not None:
        rows = itertools.chain([first], rows)
    if not filename.endswith(".xlsx"):
        filename += ".xlsx"
    # The generator itself, so that closing the response closes it.
    response = StreamingHttpResponse(iter(XlsxStream(headers, rows, **kwargs)), content_type=CONTENT_TYPE)
    response["Content-Disposition"] = attachment_disposition(filename)
    return response
