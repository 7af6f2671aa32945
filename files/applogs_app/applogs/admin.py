"""Read-only admin for LogRecord, built for a table of tens of millions of rows: no COUNT(*) (the
paginator only looks one row past the page), no SELECT DISTINCT filters, no date hierarchy."""
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from . import conf
from .compat import ADMIN_FIRST_PAGE, ADMIN_MODEL_TEMPLATES, HAS_VIEW_PERMISSION, display
from .export import COLUMNS
from .models import LogRecord
from .paginator import NoCountPaginator

try:
    from xlsexport.actions import export_to_xlsx
except ImportError:  # reported by the applogs.E001 system check
    export_to_xlsx = None

HANDLER_CLASS = "applogs.handlers.DBLogsHandler"
LEVEL_COLOURS = {10: "#57606a", 20: "#0a3f73", 30: "#8a5a00", 40: "#b3141b", 50: "#7a0010"}


def configured_loggers():
    """The filter's choices come from settings, not from a DISTINCT over the table: the loggers
    that LOGGING sends to a DBLogsHandler, plus APPLOGS_ADMIN_LOGGERS."""
    config = getattr(settings, "LOGGING", None) or {}
    db_handlers = {
        name
        for name, handler in (config.get("handlers") or {}).items()
        if handler.get("class") == HANDLER_CLASS
    }
    names = {
        name
        for name, logger in (config.get("loggers") or {}).items()
        if name and db_handlers.intersection(logger.get("handlers") or ())
    }
    names.update(getattr(settings, "APPLOGS_ADMIN_LOGGERS", ()))
    return sorted(names)


class LoggerListFilter(admin.SimpleListFilter):
    title = _("logger")
    parameter_name = "logger"

    def lookups(self, request, model_admin):
        return [(name, name) for name in configured_loggers()]

    def queryset(self, request, queryset):
        value = self.value()
        if value:
            # A logger and its children, as in the viewer.
            return queryset.filter(Q(logger=value) | Q(logger__startswith=value + "."))
        return queryset


@admin.register(LogRecord)
class LogRecordAdmin(admin.ModelAdmin):
    list_display = ("created", "level_badge", "logger", "short_message", "user", "ip", "request_id")
    list_display_links = ("created",)
    # "level" has choices, so its filter lists them without querying.
    list_filter = ("level", LoggerListFilter)
    search_fields = ("message", "=request_id", "=user", "=ip")
    search_help_text = _("Text in the message, or an exact request id, user or IP.")
    ordering = ("-created", "-id")
    list_per_page = 100
    # Never "Show all" on a log table.
    list_max_show_all = 0
    show_full_result_count = False
    paginator = NoCountPaginator
    actions = [export_to_xlsx] if export_to_xlsx else []
    xlsexport_fields = tuple(field for _header, field, _width in COLUMNS)
    readonly_fields = [f.name for f in LogRecord._meta.fields]
    if not ADMIN_MODEL_TEMPLATES:
        change_list_template = "admin/applogs/logrecord/change_list_legacy.html"

    @property
    def xlsexport_max_rows(self):
        return int(conf.get("EXPORT_MAX_ROWS"))

    @display(description=_("level"), ordering="level")
    def level_badge(self, obj):
        # Inline style: the admin pages do not load the viewer's stylesheet.
        return format_html('<span style="color: {}; font-weight: 600">{}</span>',
                           LEVEL_COLOURS.get(obj.level, "inherit"), obj.get_level_display())

    @display(description=_("message"))
    def short_message(self, obj):
        return Truncator(obj.message).chars(200)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # ?p= counts from 0 before Django 3.1, from 1 since.
        try:
            page_number = int(request.GET.get(PAGE_VAR, ADMIN_FIRST_PAGE)) - ADMIN_FIRST_PAGE + 1
        except ValueError:
            page_number = 1
        return self.paginator(queryset, per_page, orphans, allow_empty_first_page, page_number=page_number)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Django < 2.1 offers "delete selected" whatever has_delete_permission says.
        actions.pop("delete_selected", None)
        return actions

    # Records are written by the logging handler only; the admin can look, never touch.
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        if HAS_VIEW_PERMISSION:
            return False
        # Before Django 2.1 the admin shows a model only to who may change it: there the view
        # permission opens it, for reading only (change_view refuses to save).
        return request.user.has_perm("applogs.view_logrecord")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not HAS_VIEW_PERMISSION:
            if request.method not in ("GET", "HEAD"):
                raise PermissionDenied
            extra_context = dict(extra_context or {}, show_save=False, show_save_and_continue=False)
        return super().change_view(request, object_id, form_url, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False
