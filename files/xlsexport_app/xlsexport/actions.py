"""``export_to_xlsx``: an admin action usable by any ModelAdmin.

Columns come from the ModelAdmin's ``xlsexport_fields`` (names as accepted by ``list_display``:
fields, model/admin methods, callables) or, failing that, from its ``list_display``. The number of
rows is capped by ``xlsexport_max_rows`` on the ModelAdmin, else the XLSEXPORT_MAX_ROWS setting
(100000); a capped file ends with a note saying so.
"""
import html

from django.conf import settings
from django.contrib.admin.utils import label_for_field, lookup_field
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.safestring import SafeData
from django.utils.formats import number_format
from django.utils.text import capfirst, slugify
from django.utils.translation import gettext, gettext_lazy

from .compat import iterate
from .writer import xlsx_response

DEFAULT_MAX_ROWS = 100000
ITERATOR_CHUNK_SIZE = 2000


def get_export_fields(modeladmin, request):
    fields = getattr(modeladmin, "xlsexport_fields", None)
    if not fields:
        fields = modeladmin.get_list_display(request)
    return [name for name in fields if name != "action_checkbox"]


def get_max_rows(modeladmin):
    value = getattr(modeladmin, "xlsexport_max_rows", None)
    if value is None:
        value = getattr(settings, "XLSEXPORT_MAX_ROWS", DEFAULT_MAX_ROWS)
    return int(value)


def _column_value(name, obj, modeladmin):
    try:
        field, attr, value = lookup_field(name, obj, modeladmin)
    except (AttributeError, ObjectDoesNotExist):
        return None
    if field is not None:
        if getattr(field, "flatchoices", None):
            # The label the admin shows ("ERROR"), not the stored value (40).
            return dict(field.flatchoices).get(value, value)
        if field.is_relation and value is not None:
            return str(value)
    if isinstance(value, SafeData):
        # Admin display methods often return HTML (format_html); the sheet wants the text.
        return html.unescape(strip_tags(value))
    return value


def capped_rows(queryset, max_rows, convert):
    """Yield ``convert(item)`` for at most ``max_rows`` items of ``queryset``; ``state['capped']``
    tells afterwards whether more existed. Shared by every export (admin action, applogs viewer)."""
    state = {"capped": False}

    def rows():
        # One row past the cap tells whether the set was capped without a COUNT(*).
        # iterator() keeps memory flat (server-side cursor on PostgreSQL).
        for index, item in enumerate(iterate(queryset[: max_rows + 1], ITERATOR_CHUNK_SIZE)):
            if index == max_rows:
                state["capped"] = True
                break
            yield convert(item)

    return rows(), state


def export_rows(queryset, fields, modeladmin, max_rows):
    """Yield at most ``max_rows`` rows; ``state['capped']`` tells afterwards whether more existed."""
    return capped_rows(queryset, max_rows, lambda obj: [_column_value(name, obj, modeladmin) for name in fields])


def capped_notice(max_rows):
    return gettext("Export capped at %(rows)s rows; narrow the selection to export the rest.") % {
        "rows": number_format(max_rows, force_grouping=True)
    }


def export_to_xlsx(modeladmin, request, queryset):
    fields = get_export_fields(modeladmin, request)
    model = queryset.model
    headers = [capfirst(str(label_for_field(name, model, modeladmin))) for name in fields]
    max_rows = get_max_rows(modeladmin)
    rows, state = export_rows(queryset, fields, modeladmin, max_rows)
    opts = model._meta
    filename = "{}-{}.xlsx".format(
        slugify(str(opts.verbose_name_plural)) or opts.model_name,
        timezone.localtime().strftime("%Y%m%d-%H%M%S"),
    )
    return xlsx_response(
        headers,
        rows,
        filename,
        title=str(opts.verbose_name_plural).capitalize(),
        notice=lambda: capped_notice(max_rows) if state["capped"] else None,
    )


export_to_xlsx.short_description = gettext_lazy("Export selected %(verbose_name_plural)s to Excel (XLSX)")
# Exporting is reading: anyone who may view the objects may export them, nobody else.
export_to_xlsx.allowed_permissions = ("view",)
