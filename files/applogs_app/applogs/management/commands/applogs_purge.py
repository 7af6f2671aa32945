"""Partition maintenance of the log table, run hourly by the purge timer (or cron job).

Creates the partitions of the coming days, drops the partitions whose records are all older than
--older-than-days (0 keeps everything), deletes the expired records that landed in the default
partition, builds the text search index of the partitions that have closed and that of the open
partitions' records before the current hour. One call into applogs.partitions; running it again,
or while the portal writes, is safe.
"""
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from applogs import conf
from applogs.partitions import Partitions


def non_negative_int(value):
    n = int(value)
    if n < 0:
        raise ValueError(value)
    return n


class Command(BaseCommand):
    help = ("Maintain the applogs partitions: create those ahead, drop those older than "
            "--older-than-days, index the closed ones and the open ones' records before the "
            "current hour for text search.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=non_negative_int, default=0,
                            help="Keep records newer than this many days; 0 (the default) keeps everything.")
        parser.add_argument("--batch-size", type=non_negative_int, default=5000,
                            help="Rows per DELETE in the default partition (default 5000).")
        parser.add_argument("--dry-run", action="store_true", help="Only say what would be done.")
        parser.add_argument("--database", default=None,
                            help="Database alias (default settings.APPLOGS_DATABASE).")

    def handle(self, *args, **opts):
        alias = opts["database"] or conf.get("DATABASE")
        if alias not in connections:
            raise CommandError("No database %r in settings.DATABASES." % alias)
        try:
            partitions = Partitions(alias)
        except ValueError as exc:
            raise CommandError(str(exc))
        if not partitions.is_partitioned():
            raise CommandError("%s is not partitioned on %r: run `manage.py migrate applogs --database %s` first."
                               % (partitions.table, alias, alias))
        partitions.maintain(
            retention_days=opts["older_than_days"],
            batch=opts["batch_size"] or 5000,
            log=self.stdout.write,
            dry_run=opts["dry_run"],
        )
