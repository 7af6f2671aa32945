"""The read-only log viewer: list (filters + keyset pages), detail, XLSX export.

Every query on LogRecord goes to the applogs database through the router; the default database is
only touched by authentication (session, user, permissions).
"""
import functools
import html
import json
import os
from urllib.parse import quote, urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Case, Q, Value, When
from django.db.models.functions import Substr
from django.http import QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from . import conf
from .compat import DateTimeField
from .export import export_response
from .models import LEVEL_CHOICES, LogRecord
from .neighbours import WINDOW as NEIGHBOURS_WINDOW, process_neighbours
from .paginator import decode_cursor, keyset_page
from .partitions import Partitions
from .tail import newest_id, parse_id, tail_response
from .volume import chart_context

PERMISSION = "applogs.view_logrecord"
LEVEL_BY_NAME = {name: number for number, name in LEVEL_CHOICES}
# Records of one request shown on the detail page; the list filtered by request id has them all.
RELATED_LIMIT = 200
# Records of the same process shown before and after a record on its detail page.
NEIGHBOURS = 5
FILTER_PARAMS = ("level", "logger", "q", "user", "ip", "request_id", "since", "until")
# Characters of the message a list row shows; the detail page has the rest.
MESSAGE_HEAD = 400


def summary_queryset():
    """Records for lists: the head of the message only, and no traceback or extra, which can be
    tens of kilobytes each."""
    return LogRecord.objects.only("id", "created", "level", "logger", "user", "ip", "request_id").annotate(
        message_head=Substr("message", 1, MESSAGE_HEAD + 1),
        has_traceback=Case(When(traceback="", then=Value(False)), default=Value(True), output_field=BooleanField()),
    )


def viewer_view(view):
    """Login first (anonymous users go to LOGIN_URL), then the permission (403); GET/HEAD only."""

    @functools.wraps(view)
    def check_permission(request, *args, **kwargs):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return require_safe(login_required(check_permission))


class LevelField(forms.MultipleChoiceField):
    def to_python(self, value):
        return [name.upper() for name in super().to_python(value)]


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(attrs={"step": "1"}, format="%Y-%m-%dT%H:%M:%S")


class LogFilterForm(forms.Form):
    level = LevelField(
        label=_("Level"),
        choices=[(name, name) for _, name in LEVEL_CHOICES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    logger = forms.CharField(required=False, label=_("Logger"), max_length=255,
                             help_text=_("also matches its children"))
    q = forms.CharField(required=False, label=_("Message contains"), max_length=1000)
    user = forms.CharField(required=False, label=_("User"), max_length=255)
    ip = forms.CharField(required=False, label=_("IP"), max_length=64)
    request_id = forms.CharField(required=False, label=_("Request id"), max_length=64)
    # Naive values are read in the current time zone (the portal's TIME_ZONE) by DateTimeField.
    since = DateTimeField(required=False, label=_("Since"), widget=LocalDateTimeInput())
    until = DateTimeField(required=False, label=_("Until"), widget=LocalDateTimeInput())

    def filter(self, queryset):
        """Apply the valid filters; an invalid one is reported on the form and ignored."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        self._show_times_in_time_zone(data)
        levels = [LEVEL_BY_NAME[name] for name in data.get("level") or ()]
        if levels:
            queryset = queryset.filter(level__in=levels)
        logger = (data.get("logger") or "").strip()
        if logger:
            # "api" is the api logger and its children ("api.orders"), not "apiv2".
            queryset = queryset.filter(Q(logger=logger) | Q(logger__startswith=logger + "."))
        if data.get("q"):
            queryset = queryset.filter(message__icontains=data["q"])
        for name in ("user", "ip", "request_id"):
            value = (data.get(name) or "").strip()
            if value:
                queryset = queryset.filter(**{name: value})
        if data.get("since"):
            queryset = queryset.filter(created__gte=data["since"])
        if data.get("until"):
            queryset = queryset.filter(created__lte=data["until"])
        return queryset


    def _show_times_in_time_zone(self, data):
        # "2024-01-10T09:00Z" in a shared URL is shown in the form as the portal's local time.
        shown = {
            name: timezone.localtime(data[name]).strftime("%Y-%m-%dT%H:%M:%S")
            for name in ("since", "until")
            if data.get(name)
        }
        if shown:
            self.data = self.data.copy()
            for name, value in shown.items():
                self.data[name] = value


def filter_query(params, **changes):
    """The filter part of a query string, with ``changes`` applied (None removes a key)."""
    query = QueryDict(mutable=True)
    for name in FILTER_PARAMS:
        values = [v for v in params.getlist(name) if v != ""]
        if values:
            query.setlist(name, values)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return query.urlencode()


@functools.lru_cache(maxsize=None)
def _static_text(name):
    # Inlined so the pages work without collectstatic, a CDN or a second request.
    path = os.path.join(os.path.dirname(__file__), "static", "applogs", name)
    with open(path, encoding="utf-8") as f:
        return mark_safe(f.read())


def _stylesheet():
    return _static_text("applogs.css")


def _context(request, **extra):
    context = {
        "stylesheet": _stylesheet(),
        "time_zone": timezone.get_current_timezone_name(),
        "level_names": dict(LEVEL_CHOICES),
    }
    context.update(extra)
    return context


def _prepare_rows(rows):
    """What list.html shows per row, computed once in Python: the template's `date`, `url` and
    `truncatechars` per row were most of the page's CPU time (docs/benchmarks.md, (c)). Times in
    the current time zone, the date in the active language's SHORT_DATE_FORMAT (formatted by Django
    once per day on the page), the time of day on the 24-hour clock with seconds as in every
    language's log; the detail URL; the message head cut to MESSAGE_HEAD characters with "…"
    (summary_queryset fetches MESSAGE_HEAD + 1). _rows_html escapes them; the follow mode sets them as text."""
    detail_prefix = reverse("applogs:list")  # detail is "<pk>/" under the list (urls.py)
    dates = {}
    for r in rows:
        t = r.created
        if timezone.is_aware(t):
            t = timezone.localtime(t)
        day = t.date()
        date_text = dates.get(day)
        if date_text is None:
            date_text = dates[day] = date_format(day, "SHORT_DATE_FORMAT")
        r.time_text = "%s %02d:%02d:%02d" % (date_text, t.hour, t.minute, t.second)
        r.time_title = "%s.%06d" % (r.time_text, t.microsecond)
        r.detail_url = "%s%d/" % (detail_prefix, r.pk)
        head = r.message_head
        if len(head) > MESSAGE_HEAD:
            r.message_head = head[: MESSAGE_HEAD - 1] + "…"
    return rows


_ROW = ('<tr class="lvl-%(css)s" data-id="%(id)d">'
        '<td class="time"><a href="%(url)s" title="%(time_title)s">%(time)s</a></td>'
        '<td class="level"><span class="badge">%(level)s</span></td>'
        '<td class="logger"><a href="?logger=%(logger_query)s" title="%(logger_title)s">%(logger)s</a></td>'
        '<td class="message"><a href="%(url)s">%(message)s</a>%(traceback)s</td>'
        '<td class="user">%(user)s</td>'
        '<td class="ip">%(ip)s</td>'
        '<td class="request">%(request)s</td></tr>\n')


def _rows_html(rows):
    """The list's rows (after _prepare_rows) as HTML, every value escaped. Written here rather than
    in list.html: a template loop resolving twenty variables per row was most of a page's CPU
    time (docs/benchmarks.md, "Python CPU per page")."""
    level_names = dict(LEVEL_CHOICES)
    esc = html.escape
    logger_title = esc(str(_("Records of this logger and its children")))
    request_title = esc(str(_("All records of this request")))
    traceback = ' <span class="has-tb" title="%s">[%s]</span>' % (
        esc(str(_("has a traceback"))), esc(str(_("traceback"))))
    out = []
    for r in rows:
        level = str(level_names.get(r.level, r.level))
        request_id = r.request_id
        if request_id:
            shown = request_id if len(request_id) <= 13 else request_id[:12] + "…"
            request = '<a href="?request_id=%s" title="%s">%s</a>' % (
                esc(quote(request_id, safe="/")), request_title, esc(shown))
        else:
            request = ""
        out.append(_ROW % {
            "css": esc(level.lower()),
            "id": r.pk,
            "url": esc(r.detail_url),
            "time_title": esc(r.time_title),
            "time": esc(r.time_text),
            "level": esc(level),
            "logger_query": esc(quote(r.logger, safe="/")),
            "logger_title": logger_title,
            "logger": esc(r.logger),
            "message": esc(r.message_head),
            "traceback": traceback if r.has_traceback else "",
            "user": esc(r.user),
            "ip": esc(r.ip),
            "request": request,
        })
    return mark_safe("".join(out))


def _bar_query(params):
    """A chart bar's list query: the list's filters with the bar's since and until. What
    filter_query(params, since=..., until=...) gives, with the filters encoded once per page
    rather than once per bar (since and until come last there too)."""
    filters = filter_query(params, since=None, until=None)
    prefix = filters + "&" if filters else ""
    return lambda since, until: prefix + urlencode([("since", since), ("until", until)])


@viewer_view
def log_list(request):
    form = LogFilterForm(request.GET)
    queryset = form.filter(summary_queryset())
    before = decode_cursor(request.GET.get("before"))
    after = None if before else decode_cursor(request.GET.get("after"))
    # A text search reads the open partition's rows since its partial index by time, and the
    # rows before through the indexes: two windows, never one across that time.
    edge = Partitions(queryset.db).indexed_until() if getattr(form, "cleaned_data", {}).get("q") else None
    page = keyset_page(queryset, after, int(conf.get("PAGE_SIZE")), before=before, edge=edge)
    _prepare_rows(page.rows)
    query = filter_query(request.GET)
    is_first_page = not page.has_prev
    context = _context(
        request,
        form=form,
        records=page.rows,
        records_html=_rows_html(page.rows),
        next_query=filter_query(request.GET, after=page.next_cursor) if page.has_next else None,
        prev_query=filter_query(request.GET, before=page.prev_cursor) if page.has_prev else None,
        query=query,
        is_first_page=is_first_page,
        # Follow mode (newest page only) shows the matching records with a larger id than any shown:
        # those written since the page was read (ids grow in the order records are written).
        tail_after=max([r.pk for r in page.rows] or [0]) if is_first_page else None,
        tail_script=_static_text("tail.js") if is_first_page else None,
        chart=chart_context(form, dict(LEVEL_CHOICES), _bar_query(request.GET)),
        export_max_rows=number_format(int(conf.get("EXPORT_MAX_ROWS")), force_grouping=True),
    )
    return render(request, "applogs/list.html", context)


@viewer_view
def log_tail(request):
    """Follow mode's JSON: the records matching the list's filters written after ``after``."""
    after_id = parse_id(request.GET.get("after"))
    if after_id is None:
        after_id = newest_id()
    form = LogFilterForm(request.GET)
    queryset = form.filter(summary_queryset())
    return tail_response(queryset, after_id, _prepare_rows, dict(LEVEL_CHOICES))


@viewer_view
def log_detail(request, pk):
    record = get_object_or_404(LogRecord, pk=pk)
    related = []
    if record.request_id:
        related = list(
            summary_queryset().filter(request_id=record.request_id).order_by("created", "id")[: RELATED_LIMIT + 1]
        )
    before, after = process_neighbours(record, NEIGHBOURS, summary_queryset())
    _prepare_rows(before)
    _prepare_rows(after)
    context = _context(
        request,
        record=record,
        before=before,
        after=after,
        neighbours_window_minutes=int(NEIGHBOURS_WINDOW.total_seconds() // 60),
        permalink=request.build_absolute_uri(reverse("applogs:detail", args=[record.pk])),
        extra_json=json.dumps(record.extra, indent=2, ensure_ascii=False, sort_keys=True, default=str),
        related=related[:RELATED_LIMIT],
        related_more=len(related) > RELATED_LIMIT,
        request_query=filter_query(QueryDict(), request_id=record.request_id) if record.request_id else "",
    )
    return render(request, "applogs/detail.html", context)


@viewer_view
def log_export(request):
    form = LogFilterForm(request.GET)
    queryset = form.filter(LogRecord.objects.all())
    return export_response(queryset, decode_cursor(request.GET.get("after")), int(conf.get("EXPORT_MAX_ROWS")))
