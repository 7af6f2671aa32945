# Text search in the viewer and the admin (message__icontains, which Django turns into
# UPPER(message) LIKE UPPER('%...%')) had no index: a term that is rare in the table meant a scan of
# all of it, 16 s on 10 million rows (bench/viewer.py, docs/benchmarks.md), and the planner also
# misjudged common terms. A trigram GIN index on UPPER(message) makes the rare term a 3 ms bitmap
# scan, and the statistics ANALYZE keeps for its expression let the planner keep walking the
# (created, id) index for common terms (about 10 ms).
#
# Costs, measured on the benchmark machine: the index is about 30% of the table's size (880 MB for
# 10 million rows); raw COPY into the table is 4-7x slower with it, and the handler's sustained
# ingest per process 2-3x slower (about 12,000 instead of 20,000-33,000 rows/s). It is a migration
# of its own so that it can be left out if that trade-off is judged wrong.
#
# Plain SQL, not an AddIndex: the index is on an expression with an operator class, which Django
# can declare only through django.contrib.postgres's OpClass, and that works only with
# django.contrib.postgres in INSTALLED_APPS (the portals do not have it). RunSQL obeys the routers,
# so this runs on the applogs database only. pg_trgm ships with PostgreSQL (Debian's postgresql-NN
# package) and is a trusted extension since PostgreSQL 13: the database's owner can create it.
# CONCURRENTLY, so that applying it to a live table does not block the log writer.
from django.db import migrations


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("applogs", "0002_logger_prefix_index"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "applogs_message_trgm" ON "applogs_logrecord" '
            'USING gin (UPPER("message") gin_trgm_ops)',
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "applogs_message_trgm"',
        ),
    ]
