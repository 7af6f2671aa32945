"""LogsDBRouter, migrations, and the management commands."""
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.utils import ConnectionRouter

from applogs.models import LogRecord

APP_DIR = Path(__file__).resolve().parent.parent
PORTAL = "tests.portal_router.DefaultDBRouter"
OURS = "applogs.db_router.LogsDBRouter"


@pytest.mark.parametrize("order", [[PORTAL, OURS], [OURS, PORTAL], [OURS]])
def test_router_in_any_order(order):
    router = ConnectionRouter(order)
    assert router.db_for_read(LogRecord) == "applogs"
    assert router.db_for_write(LogRecord) == "applogs"
    assert router.db_for_read(Group) == "default"
    assert router.allow_migrate("applogs", "applogs") is True
    assert router.allow_migrate("default", "applogs") is False
    assert router.allow_migrate("applogs", "auth") is False
    assert router.allow_migrate("applogs", "contenttypes", model_name="contenttype") is False
    assert router.allow_migrate("default", "auth") is True


def test_relations_never_cross_into_or_out_of_the_log_database():
    from applogs.db_router import LogsDBRouter

    router = LogsDBRouter()
    log, group = LogRecord(), Group()
    assert router.allow_relation(log, LogRecord()) is True
    assert router.allow_relation(log, group) is False
    assert router.allow_relation(group, log) is False
    assert router.allow_relation(group, Group()) is None  # the portal's routers decide


def test_router_follows_the_setting(settings):
    settings.APPLOGS_DATABASE = "logs2"
    router = ConnectionRouter([OURS])
    assert router.db_for_write(LogRecord) == "logs2"
    assert router.allow_migrate("logs2", "applogs") is True
    assert router.allow_migrate("applogs", "applogs") is False


def tables(alias):
    """Tables of ``alias``, the log table's partitions counted as part of it."""
    with connections[alias].cursor() as cur:
        cur.execute("SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND NOT relispartition "
                    "AND relnamespace = 'public'::regnamespace")
        return {row[0] for row in cur.fetchall()}


@pytest.mark.django_db(databases=["default", "applogs"])
def test_migrate_only_on_the_applogs_alias():
    # The test databases were made by `migrate` on each alias, as the role does.
    assert "applogs_logrecord" not in tables("default")
    assert "auth_user" in tables("default")
    # applogs_volume: the volume chart's counts (migration 0005).
    assert tables("applogs") == {"applogs_logrecord", "applogs_volume", "django_migrations"}
    out = StringIO()
    call_command("migrate", "applogs", database="applogs", stdout=out, verbosity=1)
    assert "No migrations to apply" in out.getvalue()
    call_command("migrate", database="default", stdout=StringIO(), verbosity=0)
    assert "applogs_logrecord" not in tables("default")
    assert "applogs_volume" not in tables("default")


@pytest.mark.django_db(databases=["default", "applogs"])
def test_no_missing_migrations():
    out = StringIO()
    call_command("makemigrations", "applogs", check=True, dry_run=True, stdout=out)


@pytest.mark.django_db(databases=["default", "applogs"], transaction=True)
def test_check_ok(logs):
    out = StringIO()
    call_command("applogs_check", stdout=out)
    assert "applogs: OK" in out.getvalue()
    assert LogRecord.objects.filter(logger="applogs.check", message__startswith="applogs_check ").count() == 1


@pytest.mark.django_db(databases=["default", "applogs"], transaction=True)
def test_check_fails_on_a_database_without_the_table():
    with pytest.raises(CommandError, match="has no table applogs_logrecord"):
        call_command("applogs_check", "--database", "default", stdout=StringIO())


def run_check(**env_overrides):
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="tests.settings",
               PYTHONPATH=str(APP_DIR) + os.pathsep + env.get("PYTHONPATH", ""))
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "django", "applogs_check", "--timeout", "20"],
                          cwd=str(APP_DIR), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


@pytest.mark.django_db(databases=["default", "applogs"], transaction=True)
def test_check_exit_codes_as_a_process():
    name = connections["applogs"].settings_dict["NAME"]
    ok = run_check(APPLOGS_TEST_APPLOGS_NAME=name)
    assert ok.returncode == 0, ok.stderr
    assert "applogs: OK" in ok.stdout

    bad_pw = run_check(APPLOGS_TEST_APPLOGS_NAME=name, APPLOGS_TEST_PGPASSWORD="wrong")
    assert bad_pw.returncode == 1
    assert "cannot connect to database 'applogs'" in bad_pw.stderr

    no_db = run_check(APPLOGS_TEST_APPLOGS_NAME="no_such_database")
    assert no_db.returncode == 1
    assert "cannot connect" in no_db.stderr
