import gc
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

import pytest
from django.db import connections, transaction

from applogs.handlers import DBLogsHandler
from applogs.listener import next_retry_delay
from applogs.models import LogRecord

from .support import wait_for

pytestmark = pytest.mark.django_db(databases=["default", "applogs"], transaction=True)

APP_DIR = Path(__file__).resolve().parent.parent


def rows(**filters):
    return LogRecord.objects.using("applogs").filter(**filters)


def test_construction_does_no_database_work(django_db_blocker):
    # As during dictConfig: no models imported, no connection opened, no thread started.
    threads = threading.active_count()
    with django_db_blocker.block():
        handler = DBLogsHandler(batch_size=7, database="applogs")
        assert handler.flush(1) is True  # nothing emitted, nothing to wait for
        assert handler.dropped == 0
    assert threading.active_count() == threads


def test_record_lands_with_its_fields(logs):
    token = uuid.uuid4().hex
    logger = logging.getLogger("api")
    logger.warning("hello %s %d", token, 42, extra={"order": 7, "tags": ["a", "b"]})
    assert logs.flush(30)

    row = rows(message="hello %s 42" % token).get()
    assert row.level == logging.WARNING
    assert row.logger == "api"
    assert row.module == "test_handler"
    assert row.func == "test_record_lands_with_its_fields"
    assert row.lineno > 0
    assert row.process == os.getpid()
    assert row.host
    assert row.extra == {"order": 7, "tags": ["a", "b"]}
    assert row.traceback == ""
    # No request being served: unknown ip/user are empty in the table ('--' only in text logs).
    assert (row.ip, row.user, row.request_id) == ("", "", "")
    assert row.created.tzinfo is not None


def test_host_without_a_name_is_asked_once_and_records_land_with_an_empty_host(logs, monkeypatch):
    # socket.gethostname() can fail (a container without a host name): the records still land,
    # with an empty host, and the name is not asked for again on every record.
    import socket

    from applogs import handlers

    asked = []

    def gethostname():
        asked.append(1)
        raise OSError("no host name")

    monkeypatch.setattr(socket, "gethostname", gethostname)
    monkeypatch.setattr(handlers, "_host", None)
    for i in range(3):
        logging.getLogger("api").info("nameless %d", i)
    assert logs.flush(30)
    assert list(rows(message__startswith="nameless ").values_list("host", flat=True)) == ["", "", ""]
    assert len(asked) == 1


def test_created_is_the_record_time_not_insert_time(logs):
    from datetime import datetime, timezone

    for name, created in (("old one", 1000000000.25), ("precise", 1700000000.123456)):
        record = logging.LogRecord("api", logging.INFO, __file__, 1, name, (), None)
        record.created = created
        logs.handle(record)
    assert logs.flush(30)
    assert rows(message="old one").get().created == datetime(2001, 9, 9, 1, 46, 40, 250000, timezone.utc)
    assert rows(message="precise").get().created == datetime(2023, 11, 14, 22, 13, 20, 123456, timezone.utc)


def test_rows_land_only_in_the_applogs_database(logs):
    logging.getLogger("command").info("routed")
    assert logs.flush(30)
    assert rows(message="routed").count() == 1
    assert LogRecord.objects.count() == 1  # the router sends plain queries to applogs too
    with connections["default"].cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'applogs_logrecord'")
        assert cur.fetchone()[0] == 0


def test_exception_and_stack_go_to_traceback(logs):
    logger = logging.getLogger("api")
    try:
        {}["missing"]
    except KeyError:
        logger.exception("it failed")
    logger.info("where am I", stack_info=True)
    assert logs.flush(30)
    tb = rows(message="it failed").get().traceback
    assert "Traceback (most recent call last)" in tb and "KeyError: 'missing'" in tb
    assert "Stack (most recent call last)" in rows(message="where am I").get().traceback


def writers_waiting_for_a_lock():
    """Server processes of writers to this run's log database that wait for a lock (other cells of
    the test matrix share the server)."""
    with connections["applogs"].cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'applogs-writer'"
                    " AND wait_event_type = 'Lock' AND datname = current_database()")
        return [pid for (pid,) in cur.fetchall()]


def test_ten_thousand_records_from_eight_threads_land_exactly_once(make_logger, logs, tmp_path):
    # The queue holds 1,000 records and the writer is held up by a lock while 10,000 are logged:
    # 9,000 must go through the spool, and none may be dropped.
    logger, handler = make_logger("threads", queue_size=1000, spool_dir=str(tmp_path))
    per_thread = 1250
    run = uuid.uuid4().hex[:8]

    def work(t):
        for i in range(per_thread):
            logger.info("r %s %d %d", run, t, i, extra={"t": t, "i": i})

    from tests.test_outage import hold_table_lock

    with hold_table_lock():
        logger.info("first, to start the writer")
        wait_for(lambda: writers_waiting_for_a_lock(), what="the writer to wait for the lock")
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert handler.dropped == 0
        assert [p for p in os.listdir(str(tmp_path)) if p.endswith(".jsonl")]
    assert handler.flush(60)
    assert handler.dropped == 0

    got = list(rows(message__startswith="r %s " % run).values_list("message", "extra", "level", "logger"))
    assert len(got) == 8 * per_thread
    seen = set()
    for message, extra, level, name in got:
        _, _, t, i = message.split()
        assert extra == {"t": int(t), "i": int(i)}
        assert (level, name) == (logging.INFO, "applogs.tests.threads")
        seen.add((int(t), int(i)))
    assert seen == {(t, i) for t in range(8) for i in range(per_thread)}
    # No drop report either.
    assert not rows(logger="applogs", message__contains="dropped").exists()


def test_rollback_on_default_keeps_the_logs(logs):
    from django.contrib.auth.models import Group

    with pytest.raises(RuntimeError):
        with transaction.atomic(using="default"):
            Group.objects.create(name="doomed")
            logging.getLogger("api").error("logged inside a rolled back transaction")
            assert logs.flush(30)  # written while the transaction is still open
            raise RuntimeError("roll back")
    assert not Group.objects.filter(name="doomed").exists()
    assert rows(message="logged inside a rolled back transaction").count() == 1


def test_atomic_on_applogs_alias_does_not_capture_writer(logs):
    # Even a transaction on the applogs alias itself is not the writer's: its own connection.
    with pytest.raises(RuntimeError):
        with transaction.atomic(using="applogs"):
            logging.getLogger("api").error("outside the applogs transaction")
            assert logs.flush(30)
            raise RuntimeError("roll back")
    assert rows(message="outside the applogs transaction").count() == 1


def test_nul_characters_and_oversized_messages(make_logger, logs):
    logger, handler = make_logger("sanitise", max_message_size=1000)
    logger.info("a\x00b %s", "c\x00d", extra={"nul": "x\x00y", "k\x00": 1})
    logger.info("x" * 5000)
    try:
        raise ValueError("boom\x00" + "y" * 3000)
    except ValueError:
        logger.exception("with a big traceback")
    assert handler.flush(30)

    assert rows(message="ab cd").get().extra == {"nul": "xy", "k": 1}
    big = rows(message__startswith="xxx").get().message
    assert big.startswith("x" * 1000)
    assert "[truncated by applogs: 1000 of 5000 characters kept]" in big
    assert len(big) < 1100
    tb = rows(message="with a big traceback").get().traceback
    assert "truncated by applogs" in tb and "\x00" not in tb


class Unprintable:
    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")


def test_bad_records_never_poison_a_batch(make_logger, logs):
    logger, handler = make_logger("bad", batch_size=100, flush_interval=5)
    logger.info("before")
    logger.info("broken %d %s", "not a number")  # wrong type and too few arguments
    logger.info({"a": 1})  # non-string msg
    logger.info(Unprintable())
    logger.info("odd extra", extra={"obj": object(), "nan": float("nan"), "set": {1}, "u": Unprintable()})
    logger.info("x", extra={"deep": {"inner": float("inf")}})
    logger.log(999999, "custom level beyond smallint")
    logging.getLogger("applogs.tests.bad").info("surrogate \udcff here")
    logger.info("after")
    assert handler.flush(30)

    msgs = list(rows(logger="applogs.tests.bad").order_by("id").values_list("message", flat=True))
    assert len(msgs) == 9
    assert msgs[0] == "before" and msgs[-1] == "after"
    assert msgs[1].startswith("broken %d %s [applogs: message arguments could not be applied")
    assert msgs[2] == "{'a': 1}"
    assert msgs[3].startswith("<unrepresentable Unprintable>")
    odd = rows(message="odd extra").get().extra
    assert odd["obj"].startswith("<object object")
    assert odd["nan"] == "nan" and odd["set"] == "{1}" and odd["u"] == "<unrepresentable Unprintable>"
    assert rows(message="x").get().extra == {"deep": "{'inner': inf}"}
    assert rows(message="custom level beyond smallint").get().level == 32767
    assert rows(message__startswith="surrogate").get().message == "surrogate ? here"
    assert handler.dropped == 0


def test_a_full_batch_is_written_at_once_without_a_flush(make_logger, logs):
    # The flush interval is an hour: only the full batch waking the writer can bring these in.
    logger, handler = make_logger("full_batch", batch_size=10, flush_interval=3600)
    logger.info("batch 0")
    time.sleep(0.5)  # the writer wakes for the first record, then sleeps for the interval
    for i in range(1, 10):
        logger.info("batch %d", i)
    wait_for(lambda: rows(logger="applogs.tests.full_batch").count() == 10, what="the full batch")


def test_records_wait_for_their_batch_or_the_flush_interval(make_logger, logs):
    # One record of a batch of 100 waits for more (one COPY per batch, not per record) until the
    # flush interval, here an hour; flush() brings it in at once.
    logger, handler = make_logger("batched", batch_size=100, flush_interval=3600)
    logger.info("alone")
    cpu = time.process_time()
    time.sleep(1)  # the writer has been woken by the first record: give it time to misbehave
    assert not rows(logger="applogs.tests.batched").exists()
    # ... and it waits asleep: the whole process spent a fraction of that second on the CPU (a
    # writer polling its queue spends all of it).
    assert time.process_time() - cpu < 0.5
    assert handler.flush(30)
    assert rows(logger="applogs.tests.batched").count() == 1


def test_a_lone_record_lands_after_the_flush_interval_without_a_flush(make_logger, logs):
    # Nothing more is logged and nobody flushes: the first record starts the flush interval.
    logger, handler = make_logger("lone", batch_size=100, flush_interval=0.5)
    logger.info("lone")
    wait_for(lambda: rows(logger="applogs.tests.lone").exists(), what="the lone record")


def test_the_writer_thread_is_named_for_thread_dumps(make_logger, logs):
    # What py-spy or faulthandler shows of a portal's process names the thread.
    logger, handler = make_logger("named", batch_size=3)
    logger.info("named")
    assert "applogs-writer" in [t.name for t in threading.enumerate()]


def test_handlers_with_the_same_options_share_one_writer():
    # One thread and one connection per database and options in a process, however many
    # handlers a LOGGING dict declares.
    from applogs.listener import Options, get_writer

    options = Options(batch_size=17)
    assert get_writer(options) is get_writer(options)
    assert get_writer(Options(batch_size=18)) is not get_writer(options)


def test_retries_during_an_outage_back_off_from_half_a_second_to_ten():
    delays = [next_retry_delay()]
    for _ in range(6):
        delays.append(next_retry_delay(delays[-1]))
    assert delays == [0.5, 1, 2, 4, 8, 10, 10]


def test_handler_kwargs_win_over_settings(settings):
    settings.APPLOGS_BATCH_SIZE = 11
    settings.APPLOGS_QUEUE_SIZE = 22
    h = DBLogsHandler(batch_size=33)
    assert (h.options.batch_size, h.options.queue_size) == (33, 22)
    assert h.options.database == "applogs"


def test_options_are_bounded():
    from applogs.listener import Options

    low = Options(batch_size=0, flush_interval=-1, queue_size=0, queue_bytes=0, spool_max_bytes=-1,
                  spool_min_free=-1, max_message_size=0, exit_timeout=0, connect_timeout=0,
                  write_timeout=0)
    assert [getattr(low, name) for name in low.__slots__[1:]] == [
        1, 0.0, 1, 65536, low.spool_dir, 0, 0, 100, 1.0, 1, 1.0]
    # The connect timeout is at most half the exit timeout: at exit an unreachable host must
    # leave time to spool.
    assert Options(connect_timeout=10, exit_timeout=7).connect_timeout == 3
    assert Options(connect_timeout=2, exit_timeout=60).connect_timeout == 2


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_spool_files_of_each_database_have_their_own_prefix(settings):
    # Several portals may share a spool directory: a dead process's records are replayed only
    # into the database (host, port and name) they were meant for.
    import re

    from applogs.listener import Options, spool_prefix

    original = settings.DATABASES

    def prefix(**changes):
        settings.DATABASES = dict(original, applogs=dict(original["applogs"], **changes))
        return spool_prefix(Options())

    got = [prefix(), prefix(HOST="db2.example"), prefix(PORT="5499"), prefix(NAME="elsewhere")]
    assert len(set(got)) == 4
    assert got[0] == prefix()
    assert all(re.match(r"^applogs-applogs-[0-9a-f]{10}$", p) for p in got), got
    # The names stay the same from one release to the next: after an upgrade, the new release
    # adopts the spool files that the old one's processes left.
    assert prefix(HOST="db.example", PORT="5432", NAME="app_logs") == "applogs-applogs-23e2452a7e"


def test_logging_config_kwargs():
    from logging.config import dictConfig

    dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"dbx": {"class": "applogs.handlers.DBLogsHandler", "batch_size": 5,
                             "spool_dir": "/tmp/applogs-x", "max_message_size": 200}},
        "loggers": {"applogs.tests.cfg": {"handlers": ["dbx"], "propagate": False}},
    })
    h = logging.getLogger("applogs.tests.cfg").handlers[0]
    assert (h.options.batch_size, h.options.spool_dir, h.options.max_message_size) == (5, "/tmp/applogs-x", 200)
    logging.getLogger("applogs.tests.cfg").handlers = []


class LineLoggedByTheWriter(object):
    """A record's line number that logs when the writer thread converts it: the writer's own work
    causes a log record, as a driver warning or SQL debug logging would."""

    def __init__(self, n):
        self.n = n

    def __int__(self):
        if threading.current_thread().name == "applogs-writer":
            logging.getLogger("api").warning("logged by the writer")
        return self.n

    __index__ = __int__


def test_what_the_writer_thread_logs_is_not_queued_again(logs):
    record = logging.LogRecord("api", logging.INFO, __file__, 0, "odd line number", (), None)
    record.lineno = LineLoggedByTheWriter(77)
    logging.getLogger("api").handle(record)
    assert logs.flush(30)
    assert rows(message="odd line number").get().lineno == 77
    for _ in range(3):  # however long the writer runs
        logging.getLogger("api").info("more work for the writer")
        assert logs.flush(30)
    assert not rows(message="logged by the writer").exists()


def test_sql_debug_logging_routed_to_the_db_handler(make_logger, logs, settings):
    # django.db.backends at DEBUG to a DBLogsHandler: the portal's queries are logged; the
    # writer's are not (its connection is its own, with no debug cursor).
    handler = DBLogsHandler()
    sql_logger = logging.getLogger("django.db.backends")
    old = (sql_logger.level, sql_logger.handlers[:], sql_logger.propagate)
    sql_logger.setLevel(logging.DEBUG)
    sql_logger.handlers = [handler]
    sql_logger.propagate = False
    try:
        from django.contrib.auth.models import Group

        connections["default"].force_debug_cursor = True
        try:
            list(Group.objects.filter(name="sql-debug-probe"))
        finally:
            connections["default"].force_debug_cursor = False
        logging.getLogger("api").info("some record for the writer")
        assert handler.flush(30)
        assert logs.flush(30)
        first = rows(logger="django.db.backends").count()
        # Only the one query of ours; then nothing more, however long the writer runs.
        assert first == 1
        assert "sql-debug-probe" in rows(logger="django.db.backends").get().message
        for _ in range(3):
            logging.getLogger("api").info("more work for the writer")
            assert handler.flush(30) and logs.flush(30)
        assert rows(logger="django.db.backends").count() == first
    finally:
        sql_logger.setLevel(old[0])
        sql_logger.handlers = old[1]
        sql_logger.propagate = old[2]


def _live_backends():
    with connections["applogs"].cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity")
        return {pid for (pid,) in cur.fetchall()}


def _fork_child_logs(logs, fork, token):
    """Fork with `fork`; the child logs 100 records, flushes and exits with 0 if all landed."""
    logger = logging.getLogger("api")
    pid = fork()
    if pid == 0:  # child: no pytest machinery from here on
        code = 1
        try:
            for i in range(100):
                logger.info("child %s %d", token, i)
            code = 0 if logs.flush(30) else 3
            gc.collect()  # the parent's writers, forgotten at the fork, are deallocated here
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return pid, os.WEXITSTATUS(status)


# Python 3.12+ warns about forking a threaded process; prefork servers do exactly that.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
@pytest.mark.parametrize("fork", ["os.fork", "libc fork without Python's fork hooks"])
def test_forked_child_records_land(logs, fork):
    logger = logging.getLogger("api")
    logger.info("parent before fork")
    assert logs.flush(30)  # the parent's writer thread and connection exist now
    backend = logs._writer.sink.backend  # the server session of this process's writer
    token = uuid.uuid4().hex
    if fork == "os.fork":
        forker = os.fork
    else:
        # As a server that forks in C (and so runs none of os.register_at_fork's hooks).
        import ctypes

        forker = ctypes.CDLL(None, use_errno=True).fork
    pid, code = _fork_child_logs(logs, forker, token)
    assert code == 0
    child_rows = rows(message__startswith="child %s " % token)
    assert child_rows.count() == 100
    assert set(child_rows.values_list("process", flat=True)) == {pid}
    # The parent's writer still works on the same sessions: the child did not end them.
    logger.info("parent after fork %s", token)
    assert logs.flush(30)
    assert rows(message="parent after fork %s" % token).get().process == os.getpid()
    assert logs._writer.sink.backend == backend
    assert backend in _live_backends()


def _subprocess_env():
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["PYTHONPATH"] = str(APP_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    env["APPLOGS_TEST_DEFAULT_NAME"] = connections["default"].settings_dict["NAME"]
    env["APPLOGS_TEST_APPLOGS_NAME"] = connections["applogs"].settings_dict["NAME"]
    return env


def test_management_command_last_record_lands_after_exit(logs, tmp_path):
    token = uuid.uuid4().hex
    code = (
        "import logging\n"
        "log = logging.getLogger('command')\n"
        "for i in range(50): log.info('cmd %s %%d', i)\n"
        "log.info('last line %s')\n" % (token, token)
    )
    # The process exits right after its last line: only the atexit flush can write it. Its own
    # spool (no other process's leftovers to replay first) and an exit bound that a loaded test
    # machine cannot run out of: records not written in time would be spooled, not lost.
    env = dict(_subprocess_env(), APPLOGS_TEST_SPOOL_DIR=str(tmp_path / "spool"),
               APPLOGS_TEST_EXIT_TIMEOUT="60")
    proc = subprocess.run([sys.executable, "-m", "django", "shell", "-c", code],
                          cwd=str(APP_DIR), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert rows(message="last line %s" % token).count() == 1, proc.stderr
    assert rows(message__startswith="cmd %s " % token).count() == 50
    assert rows(message="last line %s" % token).get().logger == "command"


def test_extra_is_valid_json_in_the_table(logs):
    logging.getLogger("api").info("json check", extra={"when": __import__("datetime").date(2020, 1, 2)})
    assert logs.flush(30)
    with connections["applogs"].cursor() as cur:
        cur.execute("SELECT extra::text FROM applogs_logrecord WHERE message = 'json check'")
        assert json.loads(cur.fetchone()[0]) == {"when": "datetime.date(2020, 1, 2)"}


def test_copy_special_characters_round_trip(make_logger, logs):
    logger, handler = make_logger("esc\tname")
    tricky = "tab\there back\\slash \\N new\nline cr\r end \\t literal"
    logger.info(tricky, extra={"path": "C:\\temp\\new", "q": 'say "hi"\t'})
    logger.info("plain")
    assert handler.flush(30)
    row = rows(message=tricky).get()
    assert row.logger == "applogs.tests.esc\tname"
    assert row.extra == {"path": "C:\\temp\\new", "q": 'say "hi"\t'}
    assert rows(message="plain").get().extra == {}


@pytest.mark.heavy
def test_unpaced_burst_of_200000_records_lands_completely_in_order(make_logger, logs, tmp_path):
    # Far more than the memory queue holds, logged as fast as the caller can: what does not fit
    # goes through the spool, and everything lands, in order, with nothing dropped.
    n = 200000
    logger, handler = make_logger("burst", batch_size=5000, spool_dir=str(tmp_path))
    for i in range(n):
        logger.info("seq %d", i)
    assert handler.dropped == 0
    assert handler.flush(600)
    got = rows(logger="applogs.tests.burst").order_by("id").values_list("message", flat=True)
    assert [int(m[4:]) for m in got.iterator()] == list(range(n))
    assert not rows(logger="applogs").exists()  # no drop report
    assert [p for p in os.listdir(str(tmp_path)) if p.endswith(".jsonl")] == []


def test_column_limits_are_the_models(logs):
    from applogs import rows as row_type

    for name, limit in row_type.LIMITS.items():
        assert LogRecord._meta.get_field(name).max_length == limit
    assert [f.name for f in LogRecord._meta.concrete_fields if f.name != "id"] == list(row_type.COLUMNS)


def test_extra_is_bounded_like_the_message(make_logger, logs):
    logger, handler = make_logger("bigextra", max_message_size=1000)
    logger.info("big extra", extra={"blob": "z" * 5000, "n": 1})
    logger.info("small extra", extra={"n": 2})
    assert handler.flush(30)
    extra = rows(message="big extra").get().extra
    assert list(extra) == ["applogs_truncated"]
    assert extra["applogs_truncated"].startswith('{"')
    assert "[truncated by applogs: 1000 of " in extra["applogs_truncated"]
    assert len(extra["applogs_truncated"]) < 1100
    assert rows(message="small extra").get().extra == {"n": 2}


def test_standard_and_private_attributes_stay_out_of_extra(make_logger, logs):
    # What the logging machinery and the request filter put on a record (a formatter's message
    # and asctime, Django's request, the filter's ip/user/request_id, Python 3.12's taskName)
    # has its own columns or none; attributes starting with "_" are private to their filter.
    logger, handler = make_logger("standard")
    record = logging.LogRecord(logger.name, logging.INFO, __file__, 1, "standard only", (), None)
    logging.Formatter("%(asctime)s %(message)s").format(record)  # as a handler before ours does
    record.request = object()
    record.ip, record.user, record.request_id = "10.0.0.1", "alice", "req-1"
    record.taskName = "Task-7"
    record._private = "hidden"
    handler.handle(record)
    logger.info("one of each", extra={"_private": "hidden", "kept": 1})
    handler.handle(logging.LogRecord(logger.name, logging.INFO, "", 0, "made by hand", (), None))
    assert handler.flush(30)
    assert rows(message="made by hand").values_list("module", "func", "ip", "user").get() == ("", "", "", "")
    row = rows(message="standard only").get()
    assert row.extra == {}
    assert (row.ip, row.user, row.request_id) == ("10.0.0.1", "alice", "req-1")
    assert rows(message="one of each").get().extra == {"kept": 1}


def test_request_context_without_the_filter(make_logger, logs):
    # A handler without RequestContextFilter takes what the record lacks from the middleware's
    # context; the formatter's "unknown" (--) is empty in the table.
    from applogs.context import RequestContext, activate, deactivate

    logger, handler = make_logger("nofilter")
    token = activate(RequestContext(ip="10.0.0.9", request_id="req-9", user="bob"))
    try:
        logger.info("from the context")
        logger.info("the record's own ip", extra={"ip": "10.0.0.1"})
        logger.info("the record's own user and id", extra={"user": "carol", "request_id": "req-1"})
        logger.info("the record's own ip and id", extra={"ip": "10.0.0.1", "request_id": "req-1"})
        logger.info("the record's own ip and user", extra={"ip": "10.0.0.1", "user": "carol"})
    finally:
        deactivate(token)
    token = activate(RequestContext(user="--"))
    try:
        logger.info("unknown")
    finally:
        deactivate(token)
    assert handler.flush(30)
    got = {m: (ip, user, request_id) for m, ip, user, request_id in
           rows(logger=logger.name).values_list("message", "ip", "user", "request_id")}
    assert got == {
        "from the context": ("10.0.0.9", "bob", "req-9"),
        "the record's own ip": ("10.0.0.1", "bob", "req-9"),
        "the record's own user and id": ("10.0.0.9", "carol", "req-1"),
        "the record's own ip and id": ("10.0.0.1", "bob", "req-1"),
        "the record's own ip and user": ("10.0.0.1", "carol", "req-9"),
        "unknown": ("", "", ""),
    }


def test_extra_is_bounded_in_characters_as_written(make_logger, logs):
    # Non-ASCII text in extra counts as one character each (not as a \uXXXX escape), with or
    # without a value that needs the one-value-at-a-time fallback.
    logger, handler = make_logger("accents", max_message_size=1000)
    logger.info("accents", extra={"t": "\u00e9" * 900})
    logger.info("accents and nan", extra={"t": "\u00e9" * 900, "nan": float("nan")})
    assert handler.flush(30)
    assert rows(message="accents").get().extra == {"t": "\u00e9" * 900}
    assert rows(message="accents and nan").get().extra == {"t": "\u00e9" * 900, "nan": "nan"}


def test_unknown_handler_arguments_are_refused():
    with pytest.raises(TypeError) as raised:
        DBLogsHandler(batch_size=5, bogus=1, other=2)
    assert str(raised.value) == "DBLogsHandler() got unexpected arguments: bogus, other"


def test_traceback_column_is_the_formatted_exception_then_the_stack(make_logger, logs):
    # Exactly what a formatter prints, without the last newline (an exception text that ends in
    # an X too), and the stack on the next line.
    logger, handler = make_logger("tbtext")
    try:
        raise ValueError("bad value X")
    except ValueError:
        expected = "".join(traceback.format_exception(*sys.exc_info())).rstrip("\n")
        logger.error("failed, with its stack", exc_info=True, stack_info=True)
    logger.info("only a stack", stack_info=True)
    # A record formatted elsewhere (received from a queue or a socket): its text as it came.
    record = logging.LogRecord(logger.name, logging.ERROR, __file__, 1, "formatted elsewhere", (), None)
    record.exc_text = "Traceback (most recent call last):\nRemoteError: far away"
    handler.handle(record)
    assert handler.flush(30)
    tb = rows(message="failed, with its stack").get().traceback
    assert tb.startswith(expected + "\nStack (most recent call last):\n")
    assert rows(message="only a stack").get().traceback.startswith("Stack (most recent call last):\n")
    assert rows(message="formatted elsewhere").get().traceback == record.exc_text


def test_record_that_cannot_become_a_row_is_counted_as_dropped(make_logger, logs):
    logger, handler = make_logger("unrowable")
    logger.info("before")
    record = logging.LogRecord(logger.name, logging.INFO, __file__, 1, "nameless", (), None)
    record.name = Unprintable()
    handler.handle(record)  # never raises into the caller
    logger.info("after")
    assert handler.flush(30)
    assert list(rows(logger=logger.name).order_by("id").values_list("message", flat=True)) == [
        "before", "after"]
    assert rows(logger="applogs").get().message == \
        "applogs: 1 log record(s) were dropped (spool full or unavailable)"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="a filter returns a record from Python 3.12")
def test_a_filter_may_return_a_new_record(make_logger, logs):
    logger, handler = make_logger("newrecord")

    def replace(record):
        new = logging.makeLogRecord(record.__dict__)
        new.msg, new.args = "replaced", ()
        return new

    handler.addFilter(replace)
    logger.info("original")
    assert handler.flush(30)
    assert list(rows(logger=logger.name).values_list("message", flat=True)) == ["replaced"]
