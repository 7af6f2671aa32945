"""The volume chart above the list: records per time bucket over the filtered range, by level.

Counted from applogs_volume (migration 0005), which a trigger keeps per minute, hour and day of
record time, level and logger; the chart reads the coarsest of those that divides its bucket, a few
thousand rows at most, never the log table. Filters the counts do not carry (message text, user,
IP, request) get no chart, and the page says so.

Buckets are whole multiples of their size since 1970-01-01 UTC, so counts per bucket are exact; a
range that starts or ends inside a bucket is widened to whole buckets.
"""
import datetime
import html

from django.db import connections
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from . import conf

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# Bucket sizes, in seconds, smallest first.
BUCKETS = (
    MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
    DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY,
)
GRAINS = (DAY, HOUR, MINUTE)  # the counts kept, coarsest first
MAX_BARS = 60
# Filters the counts can serve; any other one set means no chart.
SERVED = ("level", "logger", "since", "until")


def choose_bucket(span, max_bars=MAX_BARS):
    """The smallest bucket size (seconds) that covers ``span`` (a timedelta) in at most ``max_bars``
    buckets; the largest size for longer spans."""
    seconds = max(span.total_seconds(), 0)
    for size in BUCKETS:
        if seconds <= size * max_bars:
            return size
    return BUCKETS[-1]


def grain_for(bucket):
    """The coarsest kept grain that divides ``bucket`` seconds."""
    for grain in GRAINS:
        if bucket % grain == 0:
            return grain
    raise ValueError("bucket of %r s is not a whole number of minutes" % bucket)


def floor_to(t, size):
    seconds = int((t - EPOCH).total_seconds() // size) * size
    return EPOCH + datetime.timedelta(seconds=seconds)


def ceil_to(t, size):
    start = floor_to(t, size)
    return start if start == t else start + datetime.timedelta(seconds=size)


class Unavailable(Exception):
    """The chart cannot be drawn from the counts for these filters."""


def _known_range(cursor):
    # The first and last minute counted: one step at each end of the key's index.
    cursor.execute(
        "SELECT (SELECT bucket FROM applogs_volume WHERE grain = %s ORDER BY bucket LIMIT 1), "
        "(SELECT bucket FROM applogs_volume WHERE grain = %s ORDER BY bucket DESC LIMIT 1)",
        [MINUTE, MINUTE])
    return cursor.fetchone()


def volume(levels=(), logger="", since=None, until=None, alias=None):
    """Counts per bucket and level for the filters, as a dict:
    ``bucket`` (seconds), ``start`` and ``end`` (aware UTC datetimes, whole buckets),
    ``counts``: {bucket start: {level: records}} of the buckets that have records.
    None when nothing has been counted in the range."""
    alias = alias or conf.get("DATABASE")
    with connections[alias].cursor() as cursor:
        # The range, narrowed to the minutes that have counts: a range given as "since 1970" or
        # "until next year" gets bars where records are, not hundreds of empty ones.
        first, last = _known_range(cursor)
        if first is None:
            return None
        last += datetime.timedelta(seconds=MINUTE)
        since = first if since is None else max(since, first)
        until = last if until is None else min(until, last)
        if until < since:
            return None
        bucket = choose_bucket(until - since)
        start, end = floor_to(since, bucket), ceil_to(until, bucket)
        if end == start:
            end = start + datetime.timedelta(seconds=bucket)
        grain = grain_for(bucket)
        where = ["grain = %s", "bucket >= %s", "bucket < %s"]
        params = [grain, start, end]
        if levels:
            where.append("level = ANY(%s)")
            params.append(list(levels))
        if logger:
            # The logger and its children, as the list filters them; LIKE's wildcards escaped.
            escaped = logger.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(logger = %s OR logger LIKE %s)")
            params += [logger, escaped + ".%"]
        cursor.execute(
            "SELECT floor(extract(epoch FROM bucket) / %s)::bigint, level, sum(records)::bigint "
            "FROM applogs_volume WHERE " + " AND ".join(where) + " GROUP BY 1, 2",
            [bucket] + params,
        )
        counts = {}
        for index, level, records in cursor.fetchall():
            at = EPOCH + datetime.timedelta(seconds=index * bucket)
            counts.setdefault(at, {})[level] = records
    return {"bucket": bucket, "start": start, "end": end, "counts": counts}


class Bar:
    """One bucket of the chart, as the template draws it."""

    def __init__(self, start, end, counts, level_names, scale, query):
        self.start = start
        self.end = end
        self.total = sum(counts.values())
        self.query = query
        # The most severe on top; heights in percent of the tallest bar.
        self.segments = [
            (level_names[level].lower(), level_names[level], counts[level], 100.0 * counts[level] / scale)
            for level in sorted(counts, reverse=True) if counts[level]
        ]
        self.height = 100.0 * self.total / scale if scale else 0


def _local_text(t, bucket):
    from django.utils import timezone

    t = timezone.localtime(t)
    if bucket % DAY == 0:
        return t.strftime("%Y-%m-%d %H:%M") if (t.hour, t.minute) != (0, 0) else t.strftime("%Y-%m-%d")
    return t.strftime("%Y-%m-%d %H:%M")


def chart(data, level_names, link_query):
    """The bars of ``volume()``'s result; link_query(since, until) is a bar's list query."""
    size = datetime.timedelta(seconds=data["bucket"])
    starts = []
    t = data["start"]
    while t < data["end"]:
        starts.append(t)
        t += size
    tallest = max([sum(c.values()) for c in data["counts"].values()] or [0])
    bars = []
    for start in starts:
        end = start + size
        # until is inclusive: the bar's last microsecond.
        query = link_query(start.isoformat(), (end - datetime.timedelta(microseconds=1)).isoformat())
        bar = Bar(start, end, data["counts"].get(start, {}), level_names, tallest, query)
        bar.label = _local_text(start, data["bucket"])
        bar.end_label = _local_text(end, data["bucket"])
        # Composed here rather than in the template: the per-bar template work was most of the
        # chart's cost.
        bar.title = "".join(
            [gettext("%(start)s to %(end)s: %(total)s") % {"start": bar.label, "end": bar.end_label,
                                                           "total": bar.total}]
            + [", %s %d" % (name, n) for _, name, n, _ in bar.segments])
        bars.append(bar)
    return {
        "bars_html": _bars_html(bars),
        "tallest": tallest,
        "total": sum(b.total for b in bars),
        "bucket": data["bucket"],
        "first_label": bars[0].label if bars else "",
        "last_label": bars[-1].end_label if bars else "",
    }


_BAR = ('<a class="bar" role="listitem" href="?%s" data-total="%d" title="%s">'
        '<span class="stack" style="height: %.3f%%">%s</span></a>')
_SEGMENT = '<span class="seg lvl-%s" style="flex-grow: %d"></span>'


def _bars_html(bars):
    """The bars as HTML, every text escaped. Written here rather than in _chart.html: the
    template's loop over sixty bars and their segments was most of the chart's CPU time."""
    esc = html.escape
    return mark_safe("".join(
        _BAR % (esc(bar.query), bar.total, esc(bar.title), bar.height,
                "".join(_SEGMENT % (esc(css), n) for css, _, n, _ in bar.segments))
        for bar in bars))


def bucket_text(seconds):
    from django.utils.translation import ngettext

    for unit, name in ((DAY, "day"), (HOUR, "hour"), (MINUTE, "minute")):
        if seconds % unit == 0:
            n = seconds // unit
            if name == "day":
                return ngettext("%(n)d day per bar", "%(n)d days per bar", n) % {"n": n}
            if name == "hour":
                return ngettext("%(n)d hour per bar", "%(n)d hours per bar", n) % {"n": n}
            return ngettext("%(n)d minute per bar", "%(n)d minutes per bar", n) % {"n": n}
    return ""


def chart_context(form, level_names, link_query):
    """What _chart.html needs for a filled-in LogFilterForm: {"unavailable": True} for filters
    the counts cannot serve, None when nothing was counted, else chart() plus the bucket's text."""
    data = getattr(form, "cleaned_data", {})
    if any(data.get(name) not in (None, "", []) for name in data if name not in SERVED):
        return {"unavailable": True}
    by_name = {name: number for number, name in level_names.items()}
    counts = volume(
        levels=[by_name[name] for name in data.get("level") or ()],
        logger=(data.get("logger") or "").strip(),
        since=data.get("since"),
        until=data.get("until"),
    )
    if counts is None:
        return None
    result = chart(counts, level_names, link_query)
    result["bucket_text"] = bucket_text(counts["bucket"])
    return result
