# The viewer's logger filter is `logger = 'x' OR logger LIKE 'x.%'` (a logger and its children).
# Under any collation but "C" a plain btree cannot serve the LIKE, so for a rare logger PostgreSQL
# walked the whole (created, id) index: 270-300 ms on 10 million rows (bench/viewer.py, see
# docs/benchmarks.md). With varchar_pattern_ops on the leading column one index serves both the
# equality (still ordered by created, id) and the prefix range: about 10-20 ms. It replaces the
# plain (logger, created, id) index, so ingest keeps the same number of indexes.
#
# Built concurrently so that applying it to a live table does not block the log writer.
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("applogs", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="logrecord",
            index=models.Index(
                fields=["logger", "created", "id"],
                name="applogs_logger_prefix",
                opclasses=["varchar_pattern_ops", "timestamptz_ops", "int8_ops"],
            ),
        ),
        RemoveIndexConcurrently(
            model_name="logrecord",
            name="applogs_logger_created",
        ),
    ]
