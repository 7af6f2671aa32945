"""The migrations build the same tables, columns, constraints and indexes on every Django version.

Every cell of the test matrix dumps the schema its migrations built (the test databases are made
by running them) and compares it with one committed file, schema.txt. That file was taken from a
database migrated on Django 5.2, which is what the portals installed before older Django versions
were supported; to change the schema on purpose, change the migrations and then the file
(APPLOGS_WRITE_SCHEMA=1 writes it), and say why in the commit. scripts/test also runs this on
PostgreSQL 13 and 17, the oldest and newest the product supports.
"""
import io
import os
import re

import pytest
from django.db import connections

EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.txt")

pytestmark = pytest.mark.django_db(databases=["default", "applogs"])

QUERIES = [
    ("table", """
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_name LIKE 'applogs%%' ORDER BY 1"""),
    ("column", """
        SELECT table_name, column_name, data_type, coalesce(character_maximum_length::text, '-'),
               is_nullable, coalesce(column_default, '-'), is_identity, coalesce(identity_generation, '-')
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name LIKE 'applogs%%' ORDER BY 1, 2"""),
    ("constraint", """
        SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname LIKE 'applogs%%' ORDER BY 1, 2"""),
    ("index", """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename LIKE 'applogs%%' ORDER BY 1, 2"""),
    ("trigger", """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname LIKE 'applogs%%' AND NOT t.tgisinternal ORDER BY 1, 2"""),
    ("extension", "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1"),
]


def schema_of(alias):
    """A canonical text dump of what the migrations built on the database ``alias``."""
    lines = []
    with connections[alias].cursor() as cursor:
        for kind, sql in QUERIES:
            cursor.execute(sql)
            for row in cursor.fetchall():
                lines.append(" | ".join([kind] + [str(value) for value in row]))
    return "".join(line + "\n" for line in lines)


def server_version(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0])


def expected_on(version, committed):
    """The committed schema (PostgreSQL 13 and 15 print it alike) as PostgreSQL ``version`` reports
    it. From 17 on, a partition's column is the partitioned table's identity column (inserts into a
    partition draw from the one sequence), so information_schema calls every partition's id an
    identity: a change in PostgreSQL, not in what the migrations build. Nothing else differs."""
    if version < 170000:
        return committed
    return re.sub(r"^(column \| applogs_logrecord_\w+ \| id \| bigint \| .*) \| NO \| -$",
                  r"\1 | YES | BY DEFAULT", committed, flags=re.M)


def test_migrations_build_the_committed_schema():
    actual = schema_of("applogs")
    version = server_version("applogs")
    if os.environ.get("APPLOGS_WRITE_SCHEMA") == "1":
        assert version < 170000, "write schema.txt on PostgreSQL 13 or 15 (see expected_on)"
        with open(EXPECTED, "w") as f:
            f.write(actual)
    with open(EXPECTED) as f:
        expected = expected_on(version, f.read())
    assert actual == expected


def test_nothing_of_applogs_in_the_default_database():
    # The router keeps the applogs tables (and their indexes) out of the portal's database.
    assert [line for line in schema_of("default").splitlines() if not line.startswith("extension")] == []


def test_models_match_the_migrations():
    # The migrations' state operations describe models.py exactly, on every Django version:
    # makemigrations finds nothing to write.
    from django.core.management import call_command

    out = io.StringIO()
    try:
        call_command("makemigrations", "applogs", "--check", "--dry-run", stdout=out)
    except SystemExit as exit:
        raise AssertionError("makemigrations would write a migration:\n" + out.getvalue()) from exit
