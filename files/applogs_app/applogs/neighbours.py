"""The records a process logged just before and just after a given record.

No index covers (host, process): one on the big table would slow every insert for a page opened
now and then. Each side is one walk of the (created, id) index away from the record, stopping at
the first ``size`` records of the same process, and bounded by ``WINDOW`` so that a process that
logged nothing else nearby costs at most that much of the table (and, partitioned, only the
partitions the window touches).
"""
import datetime

from .models import LogRecord

WINDOW = datetime.timedelta(minutes=10)


def _side(queryset, record, older):
    table = LogRecord._meta.db_table
    if older:
        where = '("{0}"."created", "{0}"."id") < (%s, %s)'.format(table)
        queryset = queryset.filter(created__gte=record.created - WINDOW, created__lte=record.created)
        order = ("-created", "-id")
    else:
        where = '("{0}"."created", "{0}"."id") > (%s, %s)'.format(table)
        queryset = queryset.filter(created__lte=record.created + WINDOW, created__gte=record.created)
        order = ("created", "id")
    return queryset.extra(where=[where], params=[record.created, record.pk]).order_by(*order)


def process_neighbours(record, size, queryset=None):
    """(before, after): at most ``size`` records each side from the record's host and process
    within WINDOW, both oldest first. Empty when the record names no process."""
    if record.process is None:
        return [], []
    if queryset is None:
        queryset = LogRecord.objects.all()
    same = queryset.filter(host=record.host, process=record.process)
    before = list(_side(same, record, older=True)[:size])
    before.reverse()
    after = list(_side(same, record, older=False)[:size])
    return before, after
