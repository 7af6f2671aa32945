# The viewer's logger filter is `logger = 'x' OR logger LIKE 'x.%'` (a logger and its children).
# Under any collation but "C" a plain btree cannot serve the LIKE, so for a rare logger PostgreSQL
# walked the whole (created, id) index: 270-300 ms on 10 million rows (bench/viewer.py, see
# docs/benchmarks.md). With varchar_pattern_ops on the leading column one index serves both the
# equality (still ordered by created, id) and the prefix range: about 10-20 ms. It replaces the
# plain (logger, created, id) index, so ingest keeps the same number of indexes.
#
# Built concurrently so that applying it to a live table does not block the log writer. In SQL
# (AddIndexConcurrently is Django 3.0+, opclasses 2.2+) so every Django version builds the same.
from django.db import migrations

from applogs.compat import index


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("applogs", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'CREATE INDEX CONCURRENTLY "applogs_logger_prefix" ON "applogs_logrecord" '
                    '("logger" varchar_pattern_ops, "created" timestamptz_ops, "id" int8_ops)',
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "applogs_logger_prefix"',
                ),
                migrations.RunSQL(
                    'DROP INDEX CONCURRENTLY IF EXISTS "applogs_logger_created"',
                    reverse_sql='CREATE INDEX CONCURRENTLY "applogs_logger_created" ON "applogs_logrecord" '
                    '("logger", "created", "id")',
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="logrecord",
                    index=index(["logger", "created", "id"], "applogs_logger_prefix",
                                opclasses=["varchar_pattern_ops", "timestamptz_ops", "int8_ops"]),
                ),
                migrations.RemoveIndex(model_name="logrecord", name="applogs_logger_created"),
            ],
        ),
    ]
