"""Delete log records older than N days, in small batches.

Each batch is one short DELETE in its own transaction (autocommit), picked through the
(created, id) index, so the purge never holds long locks and the writer keeps inserting meanwhile.
"""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone

from applogs import conf
from applogs.writer import TABLE


def positive_int(value):
    n = int(value)
    if n < 1:
        raise ValueError(value)
    return n


class Command(BaseCommand):
    help = "Delete applogs records older than --older-than-days days, in batches."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=positive_int, required=True,
                            help="Keep records newer than this many days (at least 1).")
        parser.add_argument("--batch-size", type=positive_int, default=5000,
                            help="Rows per DELETE (default 5000).")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")
        parser.add_argument("--database", default=None,
                            help="Database alias (default settings.APPLOGS_DATABASE).")

    def handle(self, *args, **opts):
        alias = opts["database"] or conf.get("DATABASE")
        if alias not in connections:
            raise CommandError("No database %r in settings.DATABASES." % alias)
        cutoff = timezone.now() - timedelta(days=opts["older_than_days"])
        connection = connections[alias]
        if opts["dry_run"]:
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM %s WHERE created < %%s" % TABLE, [cutoff])
                n = cur.fetchone()[0]
            self.stdout.write("Would delete %d record(s) older than %s." % (n, cutoff.isoformat()))
            return
        batch = opts["batch_size"]
        total = 0
        sql = ("DELETE FROM {t} WHERE id IN "
               "(SELECT id FROM {t} WHERE created < %s ORDER BY created, id LIMIT %s)").format(t=TABLE)
        while True:
            with connection.cursor() as cur:  # autocommit: each batch commits on its own
                cur.execute(sql, [cutoff, batch])
                n = cur.rowcount
            total += n
            if n < batch:
                break
        self.stdout.write("Deleted %d record(s) older than %s." % (total, cutoff.isoformat()))
