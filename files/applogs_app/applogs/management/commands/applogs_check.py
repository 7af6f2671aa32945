"""Exit 0 only when the applogs database is reachable, migrated, and a record written through
DBLogsHandler reads back. The role's last step runs it."""
import logging
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from applogs import conf
from applogs.handlers import DBLogsHandler


class Command(BaseCommand):
    help = "Check that applogs can write to and read from its database."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=None,
                            help="Database alias (default settings.APPLOGS_DATABASE).")
        parser.add_argument("--timeout", type=float, default=30.0,
                            help="Seconds to wait for the test record (default 30).")

    def handle(self, *args, **opts):
        alias = opts["database"] or conf.get("DATABASE")
        if alias not in connections:
            raise CommandError("applogs: no database %r in settings.DATABASES." % alias)
        connection = connections[alias]
        try:
            connection.ensure_connection()
        except Exception as exc:
            raise CommandError("applogs: cannot connect to database %r: %s" % (alias, exc))

        from applogs.writer import TABLE

        # Not introspection.table_names(): before Django 2.2 it does not list partitioned tables.
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [TABLE])
            exists = cursor.fetchone()[0]
        if not exists:
            raise CommandError(
                "applogs: database %r has no table %s; run "
                "'manage.py migrate applogs --database %s'." % (alias, TABLE, alias))
        loader = MigrationLoader(connection)
        missing = [
            name for app, name in loader.graph.leaf_nodes("applogs")
            if (app, name) not in loader.applied_migrations
        ]
        if missing:
            raise CommandError(
                "applogs: database %r is not migrated (missing %s); run "
                "'manage.py migrate applogs --database %s'." % (alias, ", ".join(missing), alias))

        token = "applogs_check %s" % uuid.uuid4().hex
        handler = DBLogsHandler(database=alias)
        record = logging.LogRecord("applogs.check", logging.INFO, __file__, 0, token, (), None)
        handler.handle(record)
        if not handler.flush(opts["timeout"]):
            raise CommandError(
                "applogs: the test record was not written to database %r within %ss "
                "(see the 'applogs:' line on stderr)." % (alias, opts["timeout"]))

        from applogs.models import LogRecord

        if not LogRecord.objects.using(alias).filter(message=token).exists():
            raise CommandError("applogs: the test record did not read back from database %r." % alias)
        self.stdout.write("applogs: OK (database %r reachable, migrated, write and read back)." % alias)
