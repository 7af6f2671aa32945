"""Follow mode: the records written after a given id that match the list's filters, as JSON.

The list page holds the table's newest id when it was rendered; its script (static/applogs/tail.js)
asks for what came after it, shows it on top of the list and asks again with the newest id it got.
Ids grow in the order the writers insert, so "newer than an id" means "written since", whatever time
the record itself carries.
"""
from django.db.models import Max
from django.http import JsonResponse

from . import conf
from .models import LogRecord

# The most records one answer holds; with more waiting the answer says so and the script asks again
# at once.
TAIL_LIMIT = 200


def newest_id():
    """The largest id in the table (0 when empty): one backward step on each partition's key."""
    return LogRecord.objects.aggregate(newest=Max("id"))["newest"] or 0


def parse_id(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def tail_rows(queryset, after_id, limit):
    """Up to ``limit`` rows of ``queryset`` with an id above ``after_id``, oldest first; whether
    more are waiting; and the id to ask after next time.

    The newest id is read first and bounds the question, so that when nothing (or not everything)
    matched the filters the next question starts there instead of reading the same unmatched rows
    again."""
    upto = newest_id()
    rows = list(queryset.filter(id__gt=after_id, id__lte=upto).order_by("id")[: limit + 1])
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, True, rows[-1].pk
    return rows, False, max(after_id, upto)


def row_json(r, level_names):
    """What tail.js needs to build a list row; the same texts list.html shows (views._prepare_rows)."""
    return {
        "id": r.pk,
        "time": r.time_text,
        "time_title": r.time_title,
        "level": level_names.get(r.level, str(r.level)),
        "logger": r.logger,
        "message": r.message_head,
        "has_traceback": bool(r.has_traceback),
        "user": r.user,
        "ip": r.ip,
        "request_id": r.request_id,
        "url": r.detail_url,
    }


def tail_response(queryset, after_id, prepare, level_names):
    limit = min(TAIL_LIMIT, int(conf.get("PAGE_SIZE")))
    rows, more, next_after = tail_rows(queryset, after_id, limit)
    prepare(rows)
    return JsonResponse({
        "records": [row_json(r, level_names) for r in rows],
        "after": next_after,
        "more": more,
    })
