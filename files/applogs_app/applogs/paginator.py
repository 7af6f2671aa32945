"""Pagination that never runs COUNT(*) or OFFSET over the log table.

The viewer pages by keyset: rows come newest first, ordered by (created, id) descending, and the
cursor of the next page is the (created, id) of the last row shown. Each page is one index range
scan however deep it is, and rows inserted meanwhile neither shift nor repeat rows.
"""
import datetime
import re

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from .compat import ADMIN_FIRST_PAGE

CURSOR_RE = re.compile(r"^(\d{8}T\d{6}\.\d{6})Z_(\d+)$")
_CURSOR_TIME_FORMAT = "%Y%m%dT%H%M%S.%f"


def encode_cursor(created, pk):
    utc = created.astimezone(datetime.timezone.utc)
    return "%sZ_%d" % (utc.strftime(_CURSOR_TIME_FORMAT), pk)


def decode_cursor(value):
    """(created, id) from a cursor, or None when it is missing or malformed."""
    match = CURSOR_RE.match(value or "")
    if not match:
        return None
    try:
        created = datetime.datetime.strptime(match.group(1), _CURSOR_TIME_FORMAT)
    except ValueError:
        return None
    return created.replace(tzinfo=datetime.timezone.utc), int(match.group(2))


def after_cursor(queryset, cursor):
    """Rows strictly older than the cursor in (created, id) order.

    A row-value comparison, not ``created < c OR (created = c AND id < i)``: PostgreSQL turns the
    row comparison into a range bound on the (created, id) index, while the OR form makes it scan
    and discard every newer row first.
    """
    if cursor is None:
        return queryset
    table = queryset.model._meta.db_table
    return queryset.extra(
        where=['("{0}"."created", "{0}"."id") < (%s, %s)'.format(table)],
        params=list(cursor),
    )


class KeysetPage:
    def __init__(self, rows, next_cursor):
        self.rows = rows
        self.next_cursor = next_cursor

    @property
    def has_next(self):
        return self.next_cursor is not None


def keyset_page(queryset, cursor, page_size):
    """One page of ``queryset`` (any filters) after ``cursor``; fetches page_size + 1 rows to know
    whether a next page exists."""
    queryset = after_cursor(queryset, cursor).order_by("-created", "-id")
    rows = list(queryset[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        next_cursor = encode_cursor(last.created, last.pk)
    return KeysetPage(rows, next_cursor)


class NoCountPaginator(Paginator):
    """Paginator for the admin changelist that does not count the table.

    The count it reports is only what is known: the rows before the requested page plus the rows
    of that page and one more, so the admin offers "next" exactly when one more row exists. The
    page itself is still LIMIT/OFFSET (the admin's own paging); the viewer is the tool for deep
    reading.
    """

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, page_number=1):
        super().__init__(object_list, per_page, orphans=0, allow_empty_first_page=allow_empty_first_page)
        self.page_number = max(1, page_number)

    # The admin's own number of the first page (its ?p=), for the pagination template.
    first_page = ADMIN_FIRST_PAGE

    @cached_property
    def count(self):
        offset = (self.page_number - 1) * self.per_page
        window = self.object_list.values_list("pk", flat=True)[offset : offset + self.per_page + 1]
        return offset + len(window)
