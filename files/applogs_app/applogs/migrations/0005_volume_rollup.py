# Record counts per minute, hour and day of record time (UTC), per level and logger, for the
# viewer's volume chart (applogs/volume.py): the chart reads a few thousand of these rows instead of
# counting the log table.
#
# A statement-level trigger on the (partitioned) log table adds each INSERT or COPY's rows to the
# counts, from its transition table: one grouped upsert per statement, not per row. The keys are
# upserted in one order, so two writers adding to the same counts wait for each other instead of
# deadlocking. Rows moved between partitions by maintenance, and rows deleted from a partition
# directly, do not pass through the parent's trigger: retention deletes the expired counts itself
# (applogs/partitions.py). TRUNCATE of the log table empties the counts.
#
# Existing records are counted after the trigger is in place: under a short lock (which waits for
# inserts in progress) the trigger is created and the newest id noted; then the records up to that
# id are counted without blocking anyone, those after it being counted by the trigger.
from django.db import migrations

GRAINS = (60, 3600, 86400)

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS applogs_volume (
    grain integer NOT NULL,
    bucket timestamp with time zone NOT NULL,
    level smallint NOT NULL,
    logger varchar(255) NOT NULL,
    records bigint NOT NULL,
    CONSTRAINT applogs_volume_pkey PRIMARY KEY (grain, bucket, level, logger)
)
"""

# to_timestamp(floor(epoch / grain) * grain): the bucket in UTC whatever the session's TimeZone
# (date_trunc on a timestamptz follows it).
COUNT_ROWS = """
    INSERT INTO applogs_volume AS v (grain, bucket, level, logger, records)
    SELECT g.grain, to_timestamp(floor(extract(epoch FROM r.created) / g.grain) * g.grain), r.level, r.logger,
           count(*)
    FROM {rows} r CROSS JOIN (VALUES {grains}) AS g (grain)
    {where}
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (grain, bucket, level, logger) DO UPDATE SET records = v.records + EXCLUDED.records
"""

GRAIN_VALUES = ", ".join("(%d)" % g for g in GRAINS)

FUNCTIONS = """
CREATE OR REPLACE FUNCTION applogs_volume_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{count};
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION applogs_volume_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE applogs_volume;
    RETURN NULL;
END
$$;
""".format(count=COUNT_ROWS.format(rows="applogs_new_rows", grains=GRAIN_VALUES, where=""))

# The trigger and the id up to which the existing records are to be counted (kept in the table's
# comment until they are), under a lock that waits for the inserts in progress and is retried.
TRIGGERS = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'applogs_volume_insert'
                   AND tgrelid = 'applogs_logrecord'::regclass) THEN
        FOR attempt IN 1..30 LOOP
            BEGIN
                PERFORM set_config('lock_timeout', '2s', true);
                LOCK TABLE applogs_logrecord IN SHARE ROW EXCLUSIVE MODE;
                EXIT;
            EXCEPTION WHEN lock_not_available THEN
                IF attempt = 30 THEN
                    RAISE;
                END IF;
                PERFORM pg_sleep(1);
            END;
        END LOOP;
        PERFORM set_config('lock_timeout', '0', true);
        CREATE TRIGGER applogs_volume_insert AFTER INSERT ON applogs_logrecord
            REFERENCING NEW TABLE AS applogs_new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION applogs_volume_add();
        CREATE TRIGGER applogs_volume_truncate AFTER TRUNCATE ON applogs_logrecord
            FOR EACH STATEMENT EXECUTE FUNCTION applogs_volume_empty();
        EXECUTE format('COMMENT ON TABLE applogs_volume IS %L',
                       (SELECT coalesce(max(id), 0) FROM applogs_logrecord)::text);
    END IF;
END
$$
"""

BACKFILL = """
DO $$
DECLARE
    upto bigint := obj_description('applogs_volume'::regclass, 'pg_class')::bigint;
BEGIN
    IF upto IS NOT NULL THEN
        IF upto > 0 THEN
{count};
        END IF;
        COMMENT ON TABLE applogs_volume IS NULL;
    END IF;
END
$$
""".format(count=COUNT_ROWS.format(rows="applogs_logrecord", grains=GRAIN_VALUES, where="WHERE r.id <= upto"))

DROP = """
DROP TRIGGER IF EXISTS applogs_volume_insert ON applogs_logrecord;
DROP TRIGGER IF EXISTS applogs_volume_truncate ON applogs_logrecord;
DROP FUNCTION IF EXISTS applogs_volume_add();
DROP FUNCTION IF EXISTS applogs_volume_empty();
DROP TABLE IF EXISTS applogs_volume;
"""


class Migration(migrations.Migration):

    # Each statement commits on its own: the backfill must not hold the trigger's lock.
    atomic = False

    dependencies = [
        ("applogs", "0004_partition_by_created"),
    ]

    operations = [
        migrations.RunSQL([CREATE_TABLE, FUNCTIONS, TRIGGERS, BACKFILL], reverse_sql=[DROP]),
    ]
