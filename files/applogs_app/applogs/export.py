"""XLSX export of the viewer's filtered records (xlsexport.writer: streamed, sanitised)."""
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy as _

from .models import LEVEL_CHOICES
from .paginator import after_cursor

COLUMNS = [
    # (header, field, column width)
    (_("ID"), "id", 10),
    (_("Time"), "created", 20),
    (_("Level"), "level", 9),
    (_("Logger"), "logger", 22),
    (_("Message"), "message", 80),
    (_("User"), "user", 16),
    (_("IP"), "ip", 15),
    (_("Request id"), "request_id", 34),
    (_("Host"), "host", 14),
    (_("Process"), "process", 8),
    (_("Module"), "module", 16),
    (_("Function"), "func", 16),
    (_("Line"), "lineno", 6),
    (_("Traceback"), "traceback", 60),
    (_("Extra"), "extra", 40),
]


def capped_notice(max_rows):
    return gettext(
        "Export capped at %(rows)s rows (the newest). Narrow the filters, e.g. the time range, "
        "to export the rest."
    ) % {"rows": number_format(max_rows, force_grouping=True)}


def export_rows(queryset, cursor, max_rows):
    """The rows of the export (at most ``max_rows``, newest first) and the state that tells
    afterwards whether the set was capped."""
    from xlsexport.actions import capped_rows

    level_names = dict(LEVEL_CHOICES)
    fields = [field for _header, field, _width in COLUMNS]
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
        [str(header) for header, _field, _width in COLUMNS],
        rows,
        filename,
        title=gettext("Log records"),
        notice=lambda: capped_notice(max_rows) if state["capped"] else None,
        column_widths=[width for _header, _field, width in COLUMNS],
    )
