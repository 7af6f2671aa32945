"""XLSX export of the viewer's filtered records (xlsexport.writer: streamed, sanitised)."""
from django.utils import timezone

from .models import LEVEL_CHOICES
from .paginator import after_cursor

COLUMNS = [
    # (header, field, column width)
    ("ID", "id", 10),
    ("Time", "created", 20),
    ("Level", "level", 9),
    ("Logger", "logger", 22),
    ("Message", "message", 80),
    ("User", "user", 16),
    ("IP", "ip", 15),
    ("Request id", "request_id", 34),
    ("Host", "host", 14),
    ("Process", "process", 8),
    ("Module", "module", 16),
    ("Function", "func", 16),
    ("Line", "lineno", 6),
    ("Traceback", "traceback", 60),
    ("Extra", "extra", 40),
]


def capped_notice(max_rows):
    return (
        "Export capped at {:,} rows (the newest). Narrow the filters, e.g. the time range, "
        "to export the rest.".format(max_rows)
    )


def export_rows(queryset, cursor, max_rows):
    """The rows of the export (at most ``max_rows``, newest first) and the state that tells
    afterwards whether the set was capped."""
    from xlsexport.actions import capped_rows

    level_names = dict(LEVEL_CHOICES)
    fields = [field for _, field, _ in COLUMNS]
    level_index = fields.index("level")
    queryset = after_cursor(queryset, cursor).order_by("-created", "-id").values_list(*fields)

    def convert(row):
        row = list(row)
        row[level_index] = level_names.get(row[level_index], row[level_index])
        return row

    return capped_rows(queryset, max_rows, convert)


def export_response(queryset, cursor, max_rows):
    # Imported here so a missing xlsexport is reported by the system check, not by an ImportError
    # while the URLconf loads.
    from xlsexport.writer import xlsx_response

    rows, state = export_rows(queryset, cursor, max_rows)
    filename = "applogs-%s.xlsx" % timezone.localtime().strftime("%Y%m%d-%H%M%S")
    return xlsx_response(
        [header for header, _, _ in COLUMNS],
        rows,
        filename,
        title="Log records",
        notice=lambda: capped_notice(max_rows) if state["capped"] else None,
        column_widths=[width for _, _, width in COLUMNS],
    )
