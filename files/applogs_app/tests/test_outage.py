"""Database outages: the portal keeps working, nothing is lost, order is kept."""
import logging
import os
import shlex
import subprocess
import sys
import threading

import pytest
from django.db import connections, transaction

from applogs.models import LogRecord

pytestmark = pytest.mark.django_db(databases=["default", "applogs"], transaction=True)


def pgctl(*args):
    cmd = shlex.split(os.environ["APPLOGS_TEST_PGCTL"]) + list(args)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=120)


def rows(**filters):
    return LogRecord.objects.using("applogs").filter(**filters)


def spool_lines(path):
    with open(path) as f:
        return sum(1 for _ in f)


def close_django_connections():
    # After a server restart Django's own connections are dead; the test's queries need new ones.
    for alias in ("default", "applogs"):
        connections[alias].close()


@pytest.mark.needs_server_alone
def test_server_stopped_then_back_loses_nothing_and_keeps_order(make_logger, logs, tmp_path, capfd):
    logger, handler = make_logger("outage", queue_size=50, batch_size=10, spool_dir=str(tmp_path))
    logger.info("seq 0")
    assert handler.flush(30)  # connected
    spool = handler._writer.spool_path
    assert os.path.dirname(spool) == str(tmp_path)

    pgctl("stop", "-m", "fast", "-w")
    try:
        n = 1
        for chunk in range(8):
            # 40 at a time stay under the queue bound of 50; each flush lets the writer take them.
            for _ in range(40):
                logger.info("seq %d", n)
                n += 1
            assert handler.flush(30) is False  # the server is down: kept, not written
        # Past the memory bound the writer spilled to the spool file.
        assert os.path.exists(spool) and spool_lines(spool) >= 50
        assert handler.dropped == 0
    finally:
        pgctl("start", "-w")
    close_django_connections()

    logger.info("seq %d", n)
    assert handler.flush(60)
    got = list(rows(logger="applogs.tests.outage").order_by("id").values_list("message", flat=True))
    assert got == ["seq %d" % i for i in range(n + 1)]
    assert not os.path.exists(spool)
    # One stderr line for the whole outage, not one per record or per retry.
    err = capfd.readouterr().err
    assert err.count("applogs: cannot write to database 'applogs'") == 1, err


@pytest.mark.needs_server_alone  # changes the password of the login every cell uses
def test_wrong_password_then_fixed(make_logger, logs, tmp_path, capfd):
    logger, handler = make_logger("password", spool_dir=str(tmp_path))
    logger.info("pw 0")
    assert handler.flush(30)
    w = handler._writer
    user = os.environ["APPLOGS_TEST_PGUSER"]
    password = os.environ["APPLOGS_TEST_PGPASSWORD"]
    with connections["applogs"].cursor() as cur:
        cur.execute("ALTER ROLE %s PASSWORD 'not-the-configured-one'" % user)
        # Drop the writer's session: it must log in again, with the now wrong password.
        cur.execute("SELECT pg_terminate_backend(%s)", [w.conn.get_backend_pid()])
    try:
        for i in range(1, 21):
            logger.info("pw %d", i)
        assert handler.flush(30) is False
        assert "password authentication failed" in capfd.readouterr().err
    finally:
        with connections["applogs"].cursor() as cur:  # this session is still logged in
            cur.execute("ALTER ROLE %s PASSWORD %%s" % user, [password])
    logger.info("pw 21")
    assert handler.flush(30)
    got = list(rows(logger="applogs.tests.password").order_by("id").values_list("message", flat=True))
    assert got == ["pw %d" % i for i in range(22)]


def test_not_migrated_yet_then_migrated(make_logger, logs, tmp_path):
    logger, handler = make_logger("nomigrate", spool_dir=str(tmp_path))
    logger.info("nm 0")
    assert handler.flush(30)
    with connections["applogs"].cursor() as cur:
        cur.execute("ALTER TABLE applogs_logrecord RENAME TO applogs_logrecord_away")
    try:
        logger.info("nm 1")
        assert handler.flush(30) is False
    finally:
        with connections["applogs"].cursor() as cur:
            cur.execute("ALTER TABLE applogs_logrecord_away RENAME TO applogs_logrecord")
    logger.info("nm 2")
    assert handler.flush(30)
    assert list(rows(logger="applogs.tests.nomigrate").order_by("id").values_list("message", flat=True)) == [
        "nm 0", "nm 1", "nm 2"]


def test_full_queue_drops_are_counted_and_reported_once(make_logger, logs, tmp_path):
    # The writer is stuck behind a table lock, so the caller's queue fills up: emit() must not
    # block, the drops are counted, and one WARNING record reports them when writing resumes.
    logger, handler = make_logger("drops", queue_size=5, batch_size=1, spool_dir=str(tmp_path))
    logger.info("d warmup")
    assert handler.flush(30)
    locker_ready = threading.Event()
    release = threading.Event()

    def hold_lock():
        with transaction.atomic(using="applogs"):
            with connections["applogs"].cursor() as cur:
                cur.execute("LOCK TABLE applogs_logrecord IN ACCESS EXCLUSIVE MODE")
            locker_ready.set()
            release.wait(60)
        connections["applogs"].close()

    t = threading.Thread(target=hold_lock)
    t.start()
    try:
        assert locker_ready.wait(30)
        for i in range(30):
            logger.info("d %d", i)
        dropped = handler.dropped
        assert dropped >= 30 - 5 - 2  # queue bound, plus what the writer took before blocking
    finally:
        release.set()
        t.join()
    assert handler.flush(30)
    written = rows(logger="applogs.tests.drops", message__startswith="d ").exclude(message="d warmup").count()
    assert written + dropped == 30
    report = rows(logger="applogs", level=logging.WARNING).get()
    assert report.message == "applogs: %d log record(s) were dropped (queue full or spool unavailable)" % dropped
    assert handler.dropped == 0


def test_orphan_spool_of_a_dead_process_is_replayed(make_logger, logs, tmp_path):
    import json
    import time

    from applogs.writer import COLUMNS, Options, spool_prefix

    # A process that died during an outage left its spool file behind (pid 2**22+1 never exists
    # on Linux's default pid_max... but check, to be safe).
    dead = 4194305
    assert not os.path.exists("/proc/%d" % dead)
    path = tmp_path / ("%s-%d.jsonl" % (spool_prefix(Options(spool_dir=str(tmp_path))), dead))
    # Another portal's spool (same alias, other database) in the same directory is left alone.
    other = tmp_path / ("applogs-applogs-0123456789-%d.jsonl" % dead)
    other.write_text("[]\n")
    with open(str(path), "w") as f:
        for i in range(3):
            row = [time.time(), 20, "applogs.tests.orphan", "m", "f", 1, "orphan %d" % i, "",
                   "", "", "", "h", dead, None]
            assert len(row) == len(COLUMNS)
            f.write(json.dumps(row) + "\n")
    logger, handler = make_logger("orphan-adopter", spool_dir=str(tmp_path))
    logger.info("adopter")
    assert handler.flush(30)
    got = list(rows(logger="applogs.tests.orphan").order_by("id").values_list("message", flat=True))
    assert got == ["orphan 0", "orphan 1", "orphan 2"]
    assert list(tmp_path.iterdir()) == [other]


@pytest.mark.needs_server_alone
def test_process_that_exits_during_an_outage_loses_nothing(logs, settings):
    # A command logs and exits while the server is down: its records go to its spool file at
    # exit, and the next process that writes adopts and replays them, in order.
    from tests.test_handler import APP_DIR, _subprocess_env

    def command(text):
        code = "import logging\nlog = logging.getLogger('command')\n" + text
        proc = subprocess.run([sys.executable, "-m", "django", "shell", "-c", code],
                              cwd=str(APP_DIR), env=_subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc

    pgctl("stop", "-m", "fast", "-w")
    try:
        down = command("for i in range(30): log.info('down %d', i)\n")
        assert down.stderr.count("applogs: cannot write to database") == 1
        spooled = [p for p in os.listdir(settings.APPLOGS_SPOOL_DIR) if p.endswith(".jsonl")]
        assert len(spooled) == 1
    finally:
        pgctl("start", "-w")
    close_django_connections()
    command("log.info('back')\n")
    got = list(rows(logger="command").order_by("id").values_list("message", flat=True))
    assert got == ["down %d" % i for i in range(30)] + ["back"]
    assert [p for p in os.listdir(settings.APPLOGS_SPOOL_DIR) if p.endswith(".jsonl")] == []


def test_unwritable_spool_counts_drops_and_reports_them(make_logger, logs, tmp_path, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    logger, handler = make_logger("nospool", queue_size=5, spool_dir=str(blocker / "spool"))
    logger.info("ns warmup")
    assert handler.flush(30)
    with connections["applogs"].cursor() as cur:
        cur.execute("ALTER TABLE applogs_logrecord RENAME TO applogs_logrecord_away")
    try:
        for chunk in range(5):
            for i in range(4):
                logger.info("ns %d", chunk * 4 + i)
            assert handler.flush(30) is False
        dropped = handler.dropped
        assert dropped > 0
    finally:
        with connections["applogs"].cursor() as cur:
            cur.execute("ALTER TABLE applogs_logrecord_away RENAME TO applogs_logrecord")
    assert handler.flush(30)
    err = capfd.readouterr().err
    assert err.count("cannot write the spool file") == 1, err
    written = rows(logger="applogs.tests.nospool").exclude(message="ns warmup").count()
    assert written + dropped == 20
    report = rows(logger="applogs", level=logging.WARNING).get()
    assert report.message.startswith("applogs: %d log record(s) were dropped" % dropped)


def test_unknown_database_alias_never_raises_into_the_caller(make_logger, logs, tmp_path, capfd):
    logger, handler = make_logger("noalias", database="no_such_alias", spool_dir=str(tmp_path))
    logger.error("goes nowhere yet")  # must not raise
    assert handler.flush(10) is False
    assert "cannot write to database 'no_such_alias'" in capfd.readouterr().err
