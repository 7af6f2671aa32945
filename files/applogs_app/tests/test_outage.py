"""Database outages: the portal keeps working, nothing is lost, order is kept."""
import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connections, transaction

from applogs.listener import get_writer
from applogs.models import LogRecord

from .support import log_table_trigger, wait_for

pytestmark = pytest.mark.django_db(databases=["default", "applogs"], transaction=True)


def pgctl(*args):
    cmd = shlex.split(os.environ["APPLOGS_TEST_PGCTL"]) + list(args)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=120)


def rows(**filters):
    return LogRecord.objects.using("applogs").filter(**filters)


def spool_files(directory):
    return sorted(p for p in os.listdir(str(directory)) if p.endswith(".jsonl"))


def spool_rows(directory):
    """Rows in the spool files of a directory (header lines left out)."""
    out = []
    for name in spool_files(directory):
        with open(os.path.join(str(directory), name)) as f:
            out.extend(json.loads(line) for line in f if not line.startswith("#"))
    return out


def run_command(text, env=None):
    """manage.py-style: a Django process that logs to the `command` logger and exits."""
    from tests.test_handler import APP_DIR, _subprocess_env

    code = "import logging\nlog = logging.getLogger('command')\n" + text
    proc = subprocess.run([sys.executable, "-m", "django", "shell", "-c", code],
                          cwd=str(APP_DIR), env=dict(_subprocess_env(), **(env or {})),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def writer_copies():
    """Server processes of applogs writers running a COPY now."""
    with connections["default"].cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'applogs-writer'"
                    " AND state = 'active' AND query LIKE 'COPY%%'")
        return [pid for (pid,) in cur.fetchall()]


def sequence(logger_name):
    """The numbers n of the 'seq <n>' messages of a logger, in table order."""
    got = rows(logger=logger_name).order_by("id").values_list("message", flat=True)
    return [int(m.split()[-1]) for m in got]


def close_django_connections():
    # After a server restart Django's own connections are dead; the test's queries need new ones.
    for alias in ("default", "applogs"):
        connections[alias].close()


@pytest.mark.heavy
@pytest.mark.needs_server_alone
def test_server_stopped_then_back_loses_nothing_and_keeps_order(make_logger, logs, tmp_path, capfd):
    logger, handler = make_logger("outage", queue_size=50, batch_size=10, spool_dir=str(tmp_path))
    logger.info("seq 0")
    assert handler.flush(30)  # connected

    pgctl("stop", "-m", "fast", "-w")
    try:
        n = 1
        for chunk in range(8):
            # 40 at a time stay under the queue bound of 50; each flush lets the writer take them.
            for _ in range(40):
                logger.info("seq %d", n)
                n += 1
            assert handler.flush(30) is False  # the server is down: kept, not written
        # Past the memory bound the records went to the spool, in order.
        spooled = [r[6] for r in spool_rows(tmp_path)]
        assert len(spooled) >= 320 - 50 - 10
        assert spooled == sorted(spooled, key=lambda m: int(m.split()[1]))
        assert handler.dropped == 0
    finally:
        pgctl("start", "-w")
    close_django_connections()

    logger.info("seq %d", n)
    assert handler.flush(60)
    got = list(rows(logger="applogs.tests.outage").order_by("id").values_list("message", flat=True))
    assert got == ["seq %d" % i for i in range(n + 1)]
    assert spool_files(tmp_path) == []
    # One stderr line for the whole outage, not one per record or per retry.
    err = capfd.readouterr().err
    assert err.count("applogs: cannot write to database 'applogs'") == 1, err


@pytest.mark.heavy
@pytest.mark.needs_server_alone  # changes the password of the login every cell uses
def test_wrong_password_then_fixed(make_logger, logs, tmp_path, capfd):
    logger, handler = make_logger("password", spool_dir=str(tmp_path))
    logger.info("pw 0")
    assert handler.flush(30)
    user = os.environ["APPLOGS_TEST_PGUSER"]
    password = os.environ["APPLOGS_TEST_PGPASSWORD"]
    with connections["applogs"].cursor() as cur:
        cur.execute("ALTER ROLE %s PASSWORD 'not-the-configured-one'" % user)
        # Drop the writer's session: it must log in again, with the now wrong password.
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'applogs-writer'")
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


def test_a_killed_writer_session_is_replaced_without_an_outage(make_logger, logs, tmp_path, capfd):
    # A server process ended under the writer (an administrator, a pooler, an idle timeout) costs
    # one more try on a new session: no outage, no spool, nothing announced.
    logger, handler = make_logger("stale", spool_dir=str(tmp_path))
    logger.info("st 0")
    assert handler.flush(30)
    with connections["applogs"].cursor() as cur:
        # Only this database's writers: other cells use other databases of the same server.
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'applogs-writer' AND datname = current_database()")
        assert cur.fetchall()
    logger.info("st 1")
    assert handler.flush(30) is True
    got = list(rows(logger="applogs.tests.stale").order_by("id").values_list("message", flat=True))
    assert got == ["st 0", "st 1"]
    assert "cannot write" not in capfd.readouterr().err
    assert spool_files(tmp_path) == []


@contextlib.contextmanager
def table_away():
    """The log table renamed while the block runs: every write fails as on an unmigrated
    database; put back afterwards whatever happens."""
    with connections["applogs"].cursor() as cur:
        cur.execute("ALTER TABLE applogs_logrecord RENAME TO applogs_logrecord_away")
    try:
        yield
    finally:
        with connections["applogs"].cursor() as cur:
            cur.execute("ALTER TABLE applogs_logrecord_away RENAME TO applogs_logrecord")


def test_not_migrated_yet_then_migrated(make_logger, logs, tmp_path):
    logger, handler = make_logger("nomigrate", spool_dir=str(tmp_path))
    logger.info("nm 0")
    assert handler.flush(30)
    with table_away():
        logger.info("nm 1")
        assert handler.flush(30) is False
    logger.info("nm 2")
    assert handler.flush(30)
    assert list(rows(logger="applogs.tests.nomigrate").order_by("id").values_list("message", flat=True)) == [
        "nm 0", "nm 1", "nm 2"]


def test_each_outage_is_announced_once_on_stderr(make_logger, logs, tmp_path, capfd):
    # One line per outage, however many retries it takes; a later outage is announced again.
    logger, handler = make_logger("twice", spool_dir=str(tmp_path))
    logger.info("tw 0")
    assert handler.flush(30)
    for outage in (1, 2):
        with table_away():
            for attempt in range(3):
                logger.info("tw %d.%d", outage, attempt)
                assert handler.flush(30) is False
        assert handler.flush(30)
        err = capfd.readouterr().err
        assert err.count("applogs: cannot write to database 'applogs'") == 1, (outage, err)
    assert rows(logger="applogs.tests.twice").count() == 7


def test_full_queue_overflows_to_the_spool_in_order(make_logger, logs, tmp_path):
    # The writer is stuck behind a table lock, so the memory queue fills up: emit() does not
    # block and drops nothing; the rest goes to the spool and lands after, in order.
    logger, handler = make_logger("overflow", queue_size=5, batch_size=1, spool_dir=str(tmp_path))
    logger.info("seq 0")
    assert handler.flush(30)
    with hold_table_lock():
        for i in range(1, 31):
            logger.info("seq %d", i)
        assert handler.dropped == 0
        assert len(spool_rows(tmp_path)) >= 30 - 5 - 2  # queue bound, what the writer holds
    assert handler.flush(30)
    assert sequence("applogs.tests.overflow") == list(range(31))
    assert spool_files(tmp_path) == []
    assert not rows(logger="applogs").exists()


def test_the_memory_queue_holds_exactly_queue_size_records(make_logger, logs, tmp_path):
    from tests.test_handler import writers_waiting_for_a_lock

    logger, handler = make_logger("qexact", queue_size=5, batch_size=1, spool_dir=str(tmp_path))
    logger.info("seq 0")
    assert handler.flush(30)
    with hold_table_lock():
        logger.info("seq 1")
        # The writer holds record 1 in its COPY, stuck behind the lock: the queue is empty.
        wait_for(writers_waiting_for_a_lock, what="the writer to wait for the lock")
        for i in range(2, 12):
            logger.info("seq %d", i)
        # Five in memory, the other five in the spool.
        assert [r[6] for r in spool_rows(tmp_path)] == ["seq %d" % i for i in range(7, 12)]
    assert handler.flush(30)
    assert sequence("applogs.tests.qexact") == list(range(12))


def test_records_kept_in_an_outage_land_when_it_ends_without_a_flush(make_logger, logs, tmp_path):
    # Nobody flushes and nothing more is logged: the writer's own retries bring them in.
    logger, handler = make_logger("outage_ends", spool_dir=str(tmp_path), flush_interval=0.2)
    logger.info("oe 0")
    assert handler.flush(30)
    with table_away():
        logger.info("oe 1")
        assert handler.flush(30) is False  # the writer is in its outage
    wait_for(lambda: rows(logger="applogs.tests.outage_ends").count() == 2, what="the kept record")


def test_memory_queue_is_bounded_in_characters_too(make_logger, logs, tmp_path):
    # Large records fill the queue's character bound long before its record bound.
    logger, handler = make_logger("qbytes", queue_size=10000, queue_bytes=65536, batch_size=1,
                                  spool_dir=str(tmp_path))
    logger.info("seq 0")
    assert handler.flush(30)
    with hold_table_lock():
        for i in range(1, 41):  # the bound counts message and extra alike
            if i % 2:
                logger.info("%s seq %d", "q" * 10000, i)
            else:
                logger.info("seq %d", i, extra={"pad": "q" * 10000})
        assert len(spool_rows(tmp_path)) >= 40 - 6 - 2  # 65536 characters, what the writer holds
    assert handler.flush(30)
    assert [int(m.rsplit(" ", 1)[1]) for m in
            rows(logger="applogs.tests.qbytes").order_by("id").values_list("message", flat=True)] == list(range(41))


class hold_table_lock:
    """The applogs table locked by another session while the block runs."""

    def __enter__(self):
        self.ready, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)
        self.thread.start()
        assert self.ready.wait(30)

    def _hold(self):
        with transaction.atomic(using="applogs"):
            with connections["applogs"].cursor() as cur:
                cur.execute("LOCK TABLE applogs_logrecord IN ACCESS EXCLUSIVE MODE")
            self.ready.set()
            self.release.wait(120)
        connections["applogs"].close()

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join()


def test_full_spool_drops_are_counted_and_reported_once(make_logger, logs, tmp_path, capfd):
    # Past the spool's byte cap (here: no room at all) records are dropped, counted, reported
    # once on stderr and by one WARNING record when writing resumes.
    logger, handler = make_logger("drops", queue_size=5, batch_size=1, spool_dir=str(tmp_path),
                                  spool_max_bytes=0)
    logger.info("d warmup")
    assert handler.flush(30)
    with hold_table_lock():
        for i in range(30):
            logger.info("d %d", i)
        dropped = handler.dropped
        assert dropped >= 30 - 5 - 2
    assert handler.flush(30)
    written = rows(logger="applogs.tests.drops", message__startswith="d ").exclude(message="d warmup").count()
    assert written + dropped == 30
    report = rows(logger="applogs", level=logging.WARNING).get()
    assert report.message == "applogs: %d log record(s) were dropped (spool full or unavailable)" % dropped
    assert handler.dropped == 0
    err = capfd.readouterr().err
    assert err.count("applogs: dropping records") == 1, err


def test_each_episode_of_drops_is_warned_once_on_stderr(make_logger, logs, tmp_path, capfd):
    logger, handler = make_logger("drops2", queue_size=5, batch_size=1, spool_dir=str(tmp_path),
                                  spool_max_bytes=0)
    logger.info("d warmup")
    assert handler.flush(30)
    dropped = []
    for episode in (1, 2):
        with hold_table_lock():
            for i in range(30):
                logger.info("d %d", i)
            dropped.append(handler.dropped)
        assert handler.flush(30)
        err = capfd.readouterr().err
        assert err.count("applogs: dropping records") == 1, (episode, err)
    reports = rows(logger="applogs", level=logging.WARNING).order_by("id")
    assert [r.message for r in reports] == [
        "applogs: %d log record(s) were dropped (spool full or unavailable)" % n for n in dropped]
    assert {(r.module, r.func, r.lineno, r.traceback, r.ip, r.user, r.request_id) for r in reports} \
        == {("writer", "", None, "", "", "", "")}


def _orphan_row(name, i, pid):
    return [time.time(), 20, name, "m", "f", 1, "orphan %d" % i, "", "", "", "", "h", pid, None]


def test_orphans_of_dead_writers_are_replayed_and_others_are_left_alone(make_logger, logs, tmp_path):
    from applogs.listener import Options, spool_prefix

    prefix = spool_prefix(Options(spool_dir=str(tmp_path)))
    # 2**22+1 is above Linux's largest pid: a process that died during an outage.
    dead = 4194305
    assert not os.path.exists("/proc/%d" % dead)
    name = "applogs.tests.orphan"

    def plant(filename, lines, owner=None):
        path = tmp_path / filename
        path.write_text("".join(line + "\n" for line in lines))
        if owner is not None:
            os.chown(str(path), owner, owner)
        return path

    # A dead writer's head (what it held at exit) and tail; the head has a line that is valid
    # JSON but not a row, and the tail's first row was already written (its header says so).
    head = [json.dumps(_orphan_row(name, 0, dead)), "5", json.dumps(_orphan_row(name, 1, dead))]
    plant("%s-%d-1.1.jsonl" % (prefix, dead), head)
    done_row = json.dumps(_orphan_row(name, 99, dead))
    header = "#applogs-spool v1 done=%016d" % (40 + len(done_row) + 1)
    plant("%s-%d-1.2.jsonl" % (prefix, dead),
          [header, done_row, json.dumps(_orphan_row(name, 2, dead))])
    # Left alone: a live process's file, another database's, and one planted by another user.
    kept = [
        plant("%s-%d-1.2.jsonl" % (prefix, os.getppid()), [json.dumps(_orphan_row("x.live", 0, 1))]),
        plant("applogs-applogs-0123456789-%d.jsonl" % dead, [json.dumps(_orphan_row("x.other", 0, 1))]),
    ]
    if os.geteuid() == 0:
        kept.append(plant("%s-%d-2.1.jsonl" % (prefix, dead + 1),
                          [json.dumps(_orphan_row("x.forged", 0, 1))], owner=65534))

    logger, handler = make_logger("orphan-adopter", spool_dir=str(tmp_path))
    get_writer(handler.options).count_drops(2)  # as emit() does: one report tells both
    logger.info("adopter")
    assert handler.flush(30)
    got = list(rows(logger=name).order_by("id").values_list("message", flat=True))
    assert got == ["orphan 0", "orphan 1", "orphan 2"]
    report = rows(logger="applogs").get()
    assert report.message == ("applogs: 2 log record(s) were dropped (spool full or unavailable); "
                              "1 spool line(s) were not log records and were skipped")
    assert (report.level, report.module) == (logging.WARNING, "writer")
    assert not rows(logger__startswith="x.").exists()
    assert sorted(tmp_path.iterdir()) == sorted(kept)


@pytest.mark.heavy
@pytest.mark.needs_server_alone
def test_process_that_exits_during_an_outage_loses_nothing(logs, settings):
    # A command logs and exits while the server is down: its records go to its spool file at
    # exit, and the next process that writes adopts and replays them, in order.
    command = run_command

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
    with table_away():
        for chunk in range(5):
            for i in range(4):
                logger.info("ns %d", chunk * 4 + i)
            assert handler.flush(30) is False
        dropped = handler.dropped
        assert dropped > 0
    assert handler.flush(30)
    err = capfd.readouterr().err
    assert err.count("applogs: dropping records: ") == 1, err
    # The outage says where the records wait: not in a spool it cannot use.
    assert "; keeping records in memory, then in memory only (" in err, err
    written = rows(logger="applogs.tests.nospool").exclude(message="ns warmup").count()
    assert written + dropped == 20
    report = rows(logger="applogs", level=logging.WARNING).get()
    assert report.message.startswith("applogs: %d log record(s) were dropped" % dropped)


def test_writer_that_could_not_write_at_exit_says_so_every_time_it_is_asked(logs, tmp_path):
    from applogs.listener import Options, Writer

    writer = Writer(Options(database="no_such_alias", spool_dir=str(tmp_path)))
    writer.put(_orphan_row("applogs.tests.exit", 0, os.getpid()))
    assert writer.shutdown(5) is False
    assert writer.shutdown(5) is False
    assert writer.flush(5) is False
    assert [r[6] for r in spool_rows(tmp_path)] == ["orphan 0"]


def test_a_second_shutdown_reports_what_the_first_did(logs, tmp_path):
    # atexit and a server's own shutdown hook may both stop the writer.
    from applogs.listener import Options, Writer

    writer = Writer(Options(spool_dir=str(tmp_path)))
    writer.put(_orphan_row("applogs.tests.shutdown_twice", 0, os.getpid()))
    assert writer.shutdown(10) is True
    assert writer.shutdown(10) is True
    assert rows(logger="applogs.tests.shutdown_twice").count() == 1
    assert writer.dropped == 0  # nothing left to report


def test_a_writer_never_given_a_record_has_nothing_to_write(logs, tmp_path):
    # A process that never logs starts no thread and opens no connection.
    from applogs.listener import Options, Writer

    writer = Writer(Options(spool_dir=str(tmp_path)))
    assert writer.flush(5) is True
    assert writer.shutdown(5) is True
    assert writer.thread is None
    assert spool_files(tmp_path) == []


def test_the_memory_queue_holds_exactly_queue_bytes_characters(logs, tmp_path):
    # A record's size is its message, traceback and extra plus a fixed overhead: two records that
    # make exactly queue_bytes stay in memory, the next one goes to the spool.
    from applogs import rows as row_type
    from applogs.listener import Options, Writer

    def row(i, message, tb="", extra=None):
        return (time.time(), 20, "applogs.tests.qexact", "m", "f", 1, "%s %d" % (message, i), tb,
                "127.0.0.1", "", "", "h", os.getpid(), extra)

    first = row(0, "a" * 3000, tb="t" * 2000)
    extra = '{"k": "%s"}' % ("e" * 1000)
    size = 65536 - row_type.size(first) - row_type.ROW_OVERHEAD - len(extra)
    second = row(1, "b" * (size - 2), extra=extra)  # "b...b 1": size characters
    assert row_type.size(first) + row_type.size(second) == 65536
    writer = Writer(Options(spool_dir=str(tmp_path), queue_bytes=65536, queue_size=100,
                            batch_size=100, flush_interval=3600))
    with hold_table_lock():  # the writer's COPY waits: what went to the spool stays there
        for r in (first, second, row(2, "c")):
            writer.put(r)
        assert [r[6] for r in spool_rows(tmp_path)] == ["c 2"]
    assert writer.flush(30)
    assert [m.split()[-1] for m in
            rows(logger="applogs.tests.qexact").order_by("id").values_list("message", flat=True)] == ["0", "1", "2"]
    writer.shutdown(10)


def test_exit_with_nowhere_to_put_the_records_says_how_many_and_why(logs, tmp_path, capfd):
    from applogs.listener import Options, Writer

    writer = Writer(Options(database="no_such_alias", spool_dir=str(tmp_path), spool_max_bytes=0))
    for i in range(3):
        writer.put(_orphan_row("applogs.tests.exit", i, os.getpid()))
    assert writer.shutdown(5) is False
    err = capfd.readouterr().err
    assert "applogs: 3 record(s) could neither be written nor spooled at exit (spool full)" in err, err
    assert spool_rows(tmp_path) == []


def test_unknown_database_alias_never_raises_into_the_caller(make_logger, logs, tmp_path, capfd):
    logger, handler = make_logger("noalias", database="no_such_alias", spool_dir=str(tmp_path))
    logger.error("goes nowhere yet")  # must not raise
    assert handler.flush(10) is False
    err = capfd.readouterr().err.splitlines()
    said = [line for line in err if line.startswith("applogs: cannot write to database 'no_such_alias'")]
    assert said and said[0].endswith("keeping records in memory, then in %s" % tmp_path), err


@pytest.mark.parametrize("problem", ["other owner", "writable by others", "symlink"])
def test_unsafe_spool_directory_is_refused(make_logger, logs, tmp_path, capfd, problem):
    # The records that do not fit in memory are then dropped and counted; the directory is
    # never written to, and the caller never sees an exception.
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    if problem == "other owner":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the directory away")
        os.chown(str(spool), 65534, 65534)
    elif problem == "writable by others":
        os.chmod(str(spool), 0o777)
    else:
        target, spool = spool, tmp_path / "link"
        spool.symlink_to(target)
    logger, handler = make_logger("refused", queue_size=5, batch_size=1, spool_dir=str(spool))
    logger.info("r warmup")
    assert handler.flush(30)
    with hold_table_lock():
        for i in range(20):
            logger.info("r %d", i)
        dropped = handler.dropped
        assert dropped > 0
    assert handler.flush(30)
    assert os.listdir(str(spool)) == []
    written = rows(logger="applogs.tests.refused").exclude(message="r warmup").count()
    assert written + dropped == 20
    err = capfd.readouterr().err
    assert err.count("applogs: dropping records: ") == 1, err
    reason = {"other owner": "owned by uid 65534", "writable by others": "writable by others (mode 777)",
              "symlink": "is a symlink"}[problem]
    assert reason in err, err


@pytest.mark.heavy
@pytest.mark.needs_server_alone
def test_burst_during_a_30_second_outage_lands_completely_in_order(make_logger, logs, tmp_path):
    n = 200000
    logger, handler = make_logger("burst-outage", batch_size=5000, spool_dir=str(tmp_path))
    logger.info("seq 0")
    assert handler.flush(30)
    pgctl("stop", "-m", "fast", "-w")
    down_at = time.monotonic()
    try:
        for i in range(1, n + 1):
            logger.info("seq %d", i)
        assert handler.dropped == 0
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        assert handler.flush(10) is False
    finally:
        pgctl("start", "-w")
    close_django_connections()
    wait_for(lambda: handler.flush(30), timeout=600, what="the burst to be written")
    assert sequence("applogs.tests.burst-outage") == list(range(n + 1))
    assert not rows(logger="applogs").exists()  # nothing dropped
    assert spool_files(tmp_path) == []


def _big_records(logger, n, width=2000):
    pad = "x" * width
    for i in range(n):
        logger.info("%s seq %d", pad, i)


def _big_sequence(logger_name):
    got = rows(logger=logger_name).order_by("id").values_list("message", flat=True)
    return [int(m.rsplit(" ", 1)[1]) for m in got.iterator()]


@pytest.mark.heavy
@pytest.mark.needs_server_alone  # ends every writer's COPY on the server
def test_connection_cut_mid_copy_loses_nothing_and_duplicates_nothing(make_logger, logs, tmp_path):
    n = 20000
    logger, handler = make_logger("cut", batch_size=n, queue_size=n, queue_bytes=200 * 1024 * 1024,
                                  flush_interval=600, spool_dir=str(tmp_path))
    logger.info("warmup 0")
    assert handler.flush(30)
    rows(logger="applogs.tests.cut").delete()
    killed = []

    def killer():
        wait_for(lambda: writer_copies(), timeout=120, what="the writer's COPY")
        with connections["default"].cursor() as cur:
            for pid in writer_copies():
                cur.execute("SELECT pg_terminate_backend(%s)", [pid])
                killed.append(cur.fetchone()[0])
        connections["default"].close()

    t = threading.Thread(target=killer)
    t.start()
    _big_records(logger, n)  # the n-th record fills the batch: the writer starts one big COPY
    t.join()
    assert killed and all(killed)
    assert handler.flush(120)
    assert _big_sequence("applogs.tests.cut") == list(range(n))


def _postgres_processes():
    args = shlex.split(os.environ["APPLOGS_TEST_PGCTL"])
    with open(os.path.join(args[args.index("-D") + 1], "postmaster.pid")) as f:
        postmaster = int(f.readline())
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == postmaster:
                children.append(int(entry))
    return [postmaster] + children


@pytest.mark.heavy
@pytest.mark.needs_server_alone  # pauses the whole server
@pytest.mark.skipif(bool(os.environ.get("APPLOGS_TEST_PGCONTAINER")),
                    reason="the server runs in a container (scripts/test-apps --postgres): the process ids "
                           "in its postmaster.pid are the container's, not this machine's")
def test_server_that_stops_answering_mid_copy_loses_nothing_and_duplicates_nothing(
        make_logger, logs, tmp_path, capfd):
    # Every PostgreSQL process paused while the writer's COPY runs: TCP stays up, nothing answers.
    n = 5000
    logger, handler = make_logger("paused", batch_size=n, queue_size=n, flush_interval=600,
                                  write_timeout=5, spool_dir=str(tmp_path))
    logger.info("warmup 0")
    assert handler.flush(30)
    rows(logger="applogs.tests.paused").delete()
    close_django_connections()
    paused = []

    def pause():
        wait_for(lambda: writer_copies(), timeout=120, what="the writer's COPY")
        connections["default"].close()
        for pid in _postgres_processes():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:  # a backend that ended meanwhile (the closed connection's)
                continue
            paused.append(pid)

    t = threading.Thread(target=pause)
    t.start()
    try:
        _big_records(logger, n)
        t.join()
        assert paused
        # The watchdog ends the stalled COPY and the reconnect times out: an outage.
        assert handler.flush(120) is False
    finally:
        t.join()
        for pid in paused:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:  # it was already on its way out when it was stopped
                pass
    close_django_connections()
    wait_for(lambda: handler.flush(30), timeout=300, what="the records to be written")
    assert _big_sequence("applogs.tests.paused") == list(range(n))
    assert "cannot write to database 'applogs' (no answer from the database within 5 s)" in capfd.readouterr().err


def test_partial_write_then_outage_replays_without_duplicates(make_logger, logs, tmp_path):
    # A trigger makes the server refuse one record for its data and fail another like an
    # outage (on demand): the spooled batch is written row by row up to the outage, then the
    # replay goes on after the rows already written.
    with connections["applogs"].cursor() as cur:
        cur.execute("CREATE TABLE applogs_test_fail (outage boolean)")
        cur.execute("INSERT INTO applogs_test_fail VALUES (true)")
    try:
        with log_table_trigger("""
                IF NEW.message LIKE 'bad data%' THEN
                    RAISE EXCEPTION 'refused' USING ERRCODE = '22023';
                END IF;
                IF NEW.message LIKE 'outage%' AND (SELECT outage FROM applogs_test_fail) THEN
                    RAISE EXCEPTION 'gone' USING ERRCODE = '08006';
                END IF;"""):
            logger, handler = make_logger("partial", queue_size=1, batch_size=100, spool_dir=str(tmp_path))
            with hold_table_lock():  # everything after the first record goes to the spool
                for message in ("ok 0", "ok 1", "bad data 2", "ok 3", "outage 4", "ok 5"):
                    logger.info(message)
                assert len(spool_rows(tmp_path)) >= 4
            assert handler.flush(30) is False  # the outage
            with connections["applogs"].cursor() as cur:
                cur.execute("UPDATE applogs_test_fail SET outage = false")
            assert handler.flush(30)
    finally:
        with connections["applogs"].cursor() as cur:
            cur.execute("DROP TABLE applogs_test_fail")
    got = list(rows(logger="applogs.tests.partial").order_by("id").values_list("message", flat=True))
    assert got == ["ok 0", "ok 1", "ok 3", "outage 4", "ok 5"]
    assert rows(logger="applogs").get().message == \
        "applogs: 1 log record(s) were dropped (spool full or unavailable)"


def test_exit_with_the_database_host_unreachable_spools_everything(logs, tmp_path):
    # A server that accepts the connection and never says a word (a listening socket nobody
    # serves): connecting takes the connect timeout, which is below the exit timeout, so at exit
    # every record is in the spool's head file.
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    spool = tmp_path / "spool"
    try:
        proc = run_command(
            "from django.db import connections\n"
            "connections['applogs'].settings_dict.update(HOST='127.0.0.1', PORT=%d)\n"
            "for i in range(50): log.info('unreachable %%d', i)\n" % silent.getsockname()[1],
            env={"APPLOGS_TEST_SPOOL_DIR": str(spool)})
    finally:
        silent.close()
    # psycopg2 < 2.9 says only "timeout expired"; later releases prefix the server's address.
    assert "timeout expired" in proc.stderr, proc.stderr
    assert "not written at exit" not in proc.stderr
    assert "could neither be written nor spooled" not in proc.stderr
    assert [r[6] for r in spool_rows(spool)] == ["unreachable %d" % i for i in range(50)]


def test_interrupted_write_is_checked_before_it_is_written_again(logs):
    # A COPY whose answer was lost (connection cut after the commit): the sink ends its server
    # process, looks the batch up, and writes only what is not in the table yet.
    from applogs.listener import Options
    from applogs.sink import Sink

    def row(i):
        return (time.time(), 20, "applogs.tests.settle", "m", "f", 1, "settle %d" % i, "", "", "",
                "", "h", os.getpid(), None)

    sink = Sink(Options(), on_drop=lambda n: None)
    committed = [row(0), row(1), row(2)]
    sink.write(committed)
    backend = sink.backend
    sink.close()
    sink.uncertain = (backend, committed)
    sink.write(committed + [row(3)])
    lost = [row(4)]  # this one never reached the table
    backend = sink.backend
    sink.close()
    sink.uncertain = (backend, lost)
    sink.write(lost + [row(5)])
    sink.close()
    got = list(rows(logger="applogs.tests.settle").order_by("id").values_list("message", flat=True))
    assert got == ["settle %d" % i for i in range(6)]


def test_rows_the_server_refuses_fall_back_one_by_one(make_logger, logs, tmp_path):
    # One batch: a row whose extra the server refuses (not JSON), a row it refuses whatever its
    # extra (a CHECK constraint), and good rows around them. The good rows and the first bad one
    # (with its extra replaced by the server's reason) land; the other is dropped and reported.
    logger, handler = make_logger("refused", batch_size=100, flush_interval=60, spool_dir=str(tmp_path))
    logger.info("warmup")
    assert handler.flush(30)

    def row(message, extra=None):
        record = logging.LogRecord(logger.name, logging.INFO, __file__, 1, message, (), None)
        return handler.prepare(record)[:-1] + (extra,)

    with connections["applogs"].cursor() as cur:
        cur.execute("ALTER TABLE applogs_logrecord ADD CONSTRAINT applogs_test_refused"
                    " CHECK (message <> 'refused whatever its extra')")
    try:
        writer = get_writer(handler.options)
        for r in (row("good 1"), row("bad extra", "{not json"),
                  row("refused whatever its extra", '{"a": 1}'), row("good 2")):
            writer.put(r)
        assert handler.flush(30)
    finally:
        with connections["applogs"].cursor() as cur:
            cur.execute("ALTER TABLE applogs_logrecord DROP CONSTRAINT applogs_test_refused")
    got = list(rows(logger=logger.name).order_by("id").values_list("message", "extra"))
    assert [m for m, _ in got] == ["warmup", "good 1", "bad extra", "good 2"]
    assert got[1][1] == {} and got[3][1] == {}
    assert "json" in got[2][1]["applogs_error"]
    report = rows(logger="applogs").get()
    assert report.message == "applogs: 1 log record(s) were dropped (spool full or unavailable)"
    assert handler.dropped == 0


def test_a_torn_spool_line_is_counted_once_across_an_outage(make_logger, logs, tmp_path):
    # A dead process's spool file whose last line was cut short (the process died mid-write).
    # Its rows land, and the torn line is reported once, though the first replay fails.
    from applogs.listener import Options, spool_prefix

    prefix = spool_prefix(Options(spool_dir=str(tmp_path)))
    dead = 4194305  # above Linux's largest pid
    name = "applogs.tests.torn"
    lines = [json.dumps(_orphan_row(name, i, dead)) for i in range(3)]
    (tmp_path / ("%s-%d-1.1.jsonl" % (prefix, dead))).write_text(
        "\n".join(lines) + "\n" + lines[0][:25])
    with table_away():
        logger, handler = make_logger("torn-adopter", spool_dir=str(tmp_path))
        logger.info("adopter")
        assert handler.flush(30) is False
        assert handler.flush(30) is False
    assert handler.flush(30)
    assert list(rows(logger=name).order_by("id").values_list("message", flat=True)) == [
        "orphan 0", "orphan 1", "orphan 2"]
    report = rows(logger="applogs").get()
    assert report.message == "applogs: 1 spool line(s) were not log records and were skipped"
    assert spool_files(tmp_path) == []


def test_drop_count_survives_an_outage_while_the_report_is_written(make_logger, logs, tmp_path):
    # The server takes log records but refuses the drop report (a trigger raising a server error,
    # not a data error): the count is kept and reported once the report can be written.
    logger, handler = make_logger("dropcount", spool_dir=str(tmp_path))
    logger.info("warmup")
    assert handler.flush(30)
    with log_table_trigger("IF NEW.logger = 'applogs' THEN RAISE EXCEPTION 'not now'; END IF;"):
        for n in (2, 1):  # as emit() does for each record it could not queue
            get_writer(handler.options).count_drops(n)
        logger.info("before the report")
        assert handler.flush(30) is False
        assert handler.dropped == 3
        assert not rows(logger="applogs").exists()
    assert handler.flush(30)
    assert handler.dropped == 0
    assert rows(logger="applogs").get().message == \
        "applogs: 3 log record(s) were dropped (spool full or unavailable)"
    assert rows(logger=logger.name, message="before the report").count() == 1


def test_drops_counted_while_the_report_is_written_are_kept_when_it_fails(make_logger, logs, tmp_path):
    # Records dropped while the drop report is on its way to the server (which then fails it)
    # are added to the count kept for the next report, not lost from it.
    from tests.test_handler import writers_waiting_for_a_lock

    logger, handler = make_logger("dropcount-late", spool_dir=str(tmp_path))
    logger.info("warmup")
    assert handler.flush(30)
    writer = get_writer(handler.options)
    with connections["applogs"].cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(4711)")
    locked = True
    try:
        # The report waits for the test's advisory lock, then fails like an outage.
        with log_table_trigger("IF NEW.logger = 'applogs' THEN"
                               " PERFORM pg_advisory_xact_lock(4711); RAISE EXCEPTION 'not now';"
                               " END IF;"):
            writer.count_drops(3)
            answers = []
            flushing = threading.Thread(target=lambda: answers.append(handler.flush(60)))
            flushing.start()
            wait_for(writers_waiting_for_a_lock, what="the drop report to wait for the lock")
            writer.count_drops(2)  # as emit() does, while the report is being written
            with connections["applogs"].cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(4711)")
            locked = False
            flushing.join(60)
            assert answers == [False]
            assert handler.dropped == 5
    finally:
        if locked:
            with connections["applogs"].cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(4711)")
    assert handler.flush(30)
    assert rows(logger="applogs").get().message == \
        "applogs: 5 log record(s) were dropped (spool full or unavailable)"


def test_skipped_spool_lines_of_every_file_are_reported_across_an_outage(make_logger, logs, tmp_path):
    # Two dead processes' spool files: the first has a line that is not a row and is replayed,
    # the second meets an outage. The first file's skipped line is reported once the outage ends.
    from applogs.listener import Options, spool_prefix

    prefix = spool_prefix(Options(spool_dir=str(tmp_path)))
    dead = 4194305  # above Linux's largest pid, as the next one
    (tmp_path / ("%s-%d-1.1.jsonl" % (prefix, dead))).write_text(
        json.dumps(_orphan_row("applogs.tests.first", 0, dead)) + "\n5\n")
    (tmp_path / ("%s-%d-1.1.jsonl" % (prefix, dead + 1))).write_text(
        json.dumps(_orphan_row("applogs.tests.second", 0, dead + 1)) + "\n")
    with log_table_trigger("IF NEW.logger = 'applogs.tests.second' THEN"
                           " RAISE EXCEPTION 'not now'; END IF;"):
        logger, handler = make_logger("two-orphans", spool_dir=str(tmp_path))
        logger.info("adopter")
        assert handler.flush(30) is False
        assert rows(logger="applogs.tests.first").count() == 1
    assert handler.flush(30)
    assert rows(logger="applogs.tests.second").count() == 1
    assert rows(logger="applogs").get().message == \
        "applogs: 1 spool line(s) were not log records and were skipped"
    assert spool_files(tmp_path) == []


def test_exit_with_no_time_left_spools_everything_and_says_so(logs, tmp_path, capfd):
    # A process that gives the writer no time at exit: the caller stops waiting at once and
    # says how many records the writer still held; the writer, past its deadline before the
    # first write, puts them all in the spool for the next process.
    from applogs.listener import Options, Writer

    writer = Writer(Options(spool_dir=str(tmp_path), flush_interval=3600))
    for i in range(3):
        writer.put(_orphan_row("applogs.tests.no_time", i, os.getpid()))
    assert writer.shutdown(0) is False
    wait_for(lambda: writer.stopped, what="the writer to stop")
    err = capfd.readouterr().err
    assert "applogs: 3 record(s) not written at exit: the writer did not answer\n" in err, err
    assert ("applogs: cannot write to database 'applogs' (exit timeout reached); keeping records"
            " in memory, then in %s\n" % tmp_path) in err, err
    assert [r[6] for r in spool_rows(tmp_path)] == ["orphan 0", "orphan 1", "orphan 2"]
    assert not rows(logger="applogs.tests.no_time").exists()


def test_exit_while_a_write_waits_counts_the_rows_it_holds_and_those_queued(logs, tmp_path, capfd):
    # The caller stops waiting at once while the writer's COPY of a first batch waits for a lock
    # and more records wait in the queue: its count is of both, and all of them are spooled.
    from applogs.listener import Options, Writer
    from tests.test_handler import writers_waiting_for_a_lock

    writer = Writer(Options(spool_dir=str(tmp_path), batch_size=3, flush_interval=3600))
    with hold_table_lock():
        for i in range(3):
            writer.put(_orphan_row("applogs.tests.held", i, os.getpid()))
        wait_for(writers_waiting_for_a_lock, what="the writer's COPY to wait for the lock")
        for i in range(3, 5):
            writer.put(_orphan_row("applogs.tests.held", i, os.getpid()))
        assert writer.shutdown(0) is False
        wait_for(lambda: writer.stopped, what="the writer to stop")
    err = capfd.readouterr().err
    assert "applogs: 5 record(s) not written at exit: the writer did not answer\n" in err, err
    assert [r[6] for r in spool_rows(tmp_path)] == ["orphan %d" % i for i in range(5)]
    assert not rows(logger="applogs.tests.held").exists()


def test_a_bug_in_the_writer_is_reported_and_the_writer_goes_on(logs, tmp_path, capfd, monkeypatch):
    # A bug of the writer's own (here: closing its connection raises once) must not end logging
    # for the process: the writer says so on stderr and takes its next step.
    from applogs.listener import Options, Writer

    writer = Writer(Options(spool_dir=str(tmp_path), flush_interval=3600))
    close, closes = writer.sink.close, []

    def close_with_a_bug_once():
        closes.append(1)
        if len(closes) == 1:
            raise RuntimeError("a bug")
        close()

    monkeypatch.setattr(writer.sink, "close", close_with_a_bug_once)
    writer.put(_orphan_row("applogs.tests.bug", 0, os.getpid()))
    assert writer.shutdown(10) is True
    assert len(closes) == 2
    assert "applogs: writer error %r\n" % (RuntimeError("a bug"),) in capfd.readouterr().err
    assert rows(logger="applogs.tests.bug").count() == 1


def test_a_writer_that_replaces_a_stopped_one_replays_what_it_spooled(logs, tmp_path):
    # In one process: a writer stopped during an outage spools what it held; the writer made
    # after it (same database, same spool) adopts those files and writes them first.
    from applogs.listener import Options, Writer

    first = Writer(Options(spool_dir=str(tmp_path), flush_interval=3600))
    with table_away():
        first.put(_orphan_row("applogs.tests.replaced", 0, os.getpid()))
        assert first.shutdown(5) is False
    assert [r[6] for r in spool_rows(tmp_path)] == ["orphan 0"]
    second = Writer(Options(spool_dir=str(tmp_path), flush_interval=3600))
    second.put(_orphan_row("applogs.tests.replaced", 1, os.getpid()))
    assert second.flush(30)
    assert list(rows(logger="applogs.tests.replaced").order_by("id").values_list("message", flat=True)) \
        == ["orphan 0", "orphan 1"]
    assert spool_files(tmp_path) == []
    assert second.shutdown(10)


def test_shutdown_all_answers_whether_every_writer_wrote_everything(logs, tmp_path):
    from applogs.listener import Options, get_writer, shutdown_all

    shutdown_all(timeout=10)  # the writers of earlier tests, whatever they hold
    good = get_writer(Options(spool_dir=str(tmp_path / "good")))
    good.put(_orphan_row("applogs.tests.all", 0, os.getpid()))
    cut_off = get_writer(Options(database="no_such_alias", spool_dir=str(tmp_path / "cut-off")))
    cut_off.put(_orphan_row("applogs.tests.all", 1, os.getpid()))
    assert shutdown_all(timeout=10) is False
    assert [r[6] for r in spool_rows(tmp_path / "cut-off")] == ["orphan 1"]
    again = get_writer(Options(spool_dir=str(tmp_path / "good")))
    again.put(_orphan_row("applogs.tests.all", 2, os.getpid()))
    assert shutdown_all(timeout=10) is True
    assert list(rows(logger="applogs.tests.all").order_by("id").values_list("message", flat=True)) \
        == ["orphan 0", "orphan 2"]


def test_exit_while_the_database_waits_for_a_lock(logs, tmp_path):
    # A command logs and exits while another session holds a lock on the log table: the COPY
    # waits (no error, no refusal). The exit is bounded by the exit timeout, every record is in
    # the spool, and the next process writes them once the lock is gone: nothing is lost.
    from tests.test_handler import APP_DIR, _subprocess_env, writers_waiting_for_a_lock

    spool = tmp_path / "spool"
    env = dict(_subprocess_env(), APPLOGS_TEST_SPOOL_DIR=str(spool), APPLOGS_TEST_EXIT_TIMEOUT="5")
    # The flush returns False after 2 s: the writer's COPY is waiting for the lock when the
    # command exits (a write under way at exit, not one that starts after it).
    code = ("import logging\nlog = logging.getLogger('command')\n"
            "for i in range(50): log.info('locked %d', i)\n"
            "assert not [h for h in log.handlers if hasattr(h, 'dropped') and h.flush(2)]\n")
    with hold_table_lock():
        proc = subprocess.Popen([sys.executable, "-m", "django", "shell", "-c", code],
                                cwd=str(APP_DIR), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True)
        try:
            wait_for(lambda: writers_waiting_for_a_lock() or proc.poll() is not None,
                     what="the command's writer to wait for the lock")
            # A bound far above the exit timeout: the test fails only if the exit is not bounded.
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "not written at exit" not in err, err
        assert [r[6] for r in spool_rows(spool)] == ["locked %d" % i for i in range(50)]
    run_command("log.info('after the lock')\n", env={"APPLOGS_TEST_SPOOL_DIR": str(spool)})
    got = list(rows(logger="command").order_by("id").values_list("message", flat=True))
    assert got == ["locked %d" % i for i in range(50)] + ["after the lock"]
    assert spool_files(spool) == []
