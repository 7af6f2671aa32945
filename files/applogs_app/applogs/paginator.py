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
    and discard every newer row first. The redundant ``created <= c`` is for the partitioned table:
    partition pruning does not read row comparisons, and with it the partitions newer than the
    cursor are not even opened.
    """
    if cursor is None:
        return queryset
    table = queryset.model._meta.db_table
    return queryset.extra(
        where=['"{0}"."created" <= %s AND ("{0}"."created", "{0}"."id") < (%s, %s)'.format(table)],
        params=[cursor[0]] + list(cursor),
    )


def before_cursor(queryset, cursor):
    """Rows strictly newer than the cursor in (created, id) order: the mirror of after_cursor."""
    table = queryset.model._meta.db_table
    return queryset.extra(
        where=['"{0}"."created" >= %s AND ("{0}"."created", "{0}"."id") > (%s, %s)'.format(table)],
        params=[cursor[0]] + list(cursor),
    )


# The older direction reads windows of record time, newest first, that widen: a day, a week, a
# month back from the cursor (or from now), then the rest. A page that the newest records fill is
# then planned and read over the few partitions of its window, not over every partition of the
# table (planning alone costs milliseconds per partition); a filter that matches little goes on
# through the wider windows, each row range read once.
WINDOW_DAYS = (1, 7, 31)


def _in_window(queryset, lower, upper):
    """Rows with lower <= created < upper (None: no bound on that side)."""
    table = queryset.model._meta.db_table
    where, params = [], []
    if lower is not None:
        where.append('"{0}"."created" >= %s'.format(table))
        params.append(lower)
    if upper is not None:
        where.append('"{0}"."created" < %s'.format(table))
        params.append(upper)
    return queryset.extra(where=where, params=params) if where else queryset


def _window_edges(base, edge=None):
    """The lower bounds of the windows read back from ``base``, newest first; ``edge`` (a time
    before which the rows are read through other indexes than after it) becomes one more."""
    edges = [base - datetime.timedelta(days=days) for days in WINDOW_DAYS]
    if edge is not None and edge < base and edge not in edges:
        edges = sorted(edges + [edge], reverse=True)
    return edges


def _older_rows(queryset, cursor, limit, edge=None):
    """The first ``limit`` rows older than ``cursor`` (all rows without one), newest first."""
    # Aware and passed as they are (as the cursor is): right whatever the portal's USE_TZ.
    base = cursor[0] if cursor is not None else datetime.datetime.now(datetime.timezone.utc)
    queryset = after_cursor(queryset, cursor).order_by("-created", "-id")
    rows = []
    upper = None
    for lower in _window_edges(base, edge) + [None]:
        rows.extend(_in_window(queryset, lower, upper)[: limit - len(rows)])
        if len(rows) >= limit:
            break
        upper = lower
    return rows


def _newer_rows(queryset, cursor, limit, edge=None):
    """The first ``limit`` rows newer than ``cursor``, oldest first; read in two windows, before
    ``edge`` and from it, when the cursor is older than ``edge``."""
    queryset = before_cursor(queryset, cursor).order_by("created", "id")
    if edge is None or edge <= cursor[0]:
        return list(queryset[:limit])
    rows = list(_in_window(queryset, None, edge)[:limit])
    if len(rows) < limit:
        rows.extend(_in_window(queryset, edge, None)[: limit - len(rows)])
    return rows


class KeysetPage:
    def __init__(self, rows, next_cursor, prev_cursor=None):
        self.rows = rows
        self.next_cursor = next_cursor
        # The cursor of the newer page (its rows are newer than the first row here); None on the
        # newest page.
        self.prev_cursor = prev_cursor

    @property
    def has_next(self):
        return self.next_cursor is not None

    @property
    def has_prev(self):
        return self.prev_cursor is not None


def _cursor_of(row):
    return encode_cursor(row.created, row.pk)


def keyset_page(queryset, cursor, page_size, before=None, edge=None):
    """One page of ``queryset`` (any filters), newest first: the rows after (older than)
    ``cursor``, or with ``before`` the page_size rows just newer than that cursor. Fetches
    page_size + 1 rows to know whether a further page exists in the direction read. ``edge``: a
    time no query may read across (see applogs.partitions.indexed_until).

    A newer page that would not be full is the newest page: it is read as the first page, so that
    paging newer always ends on the page a fresh visit shows."""
    if before is not None:
        newer = _newer_rows(queryset, before, page_size + 1, edge)
        if len(newer) > page_size:
            rows = newer[:page_size][::-1]
            # Older rows exist: at least the row the cursor was taken from.
            return KeysetPage(rows, _cursor_of(rows[-1]), _cursor_of(rows[0]))
        cursor = None
    rows = _older_rows(queryset, cursor, page_size + 1, edge)
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = _cursor_of(rows[-1])
    # Past the first page, newer rows exist: at least those of the page the cursor came from.
    prev_cursor = _cursor_of(rows[0]) if cursor is not None and rows else None
    return KeysetPage(rows, next_cursor, prev_cursor)


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
