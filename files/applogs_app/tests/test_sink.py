"""The sink through its public methods, on the test server: its session, and a write cut short."""
import os
import re
import threading
import time

import pytest
from django.db import connections

from applogs.listener import Options
from applogs.models import LogRecord
from applogs.sink import Outage, Sink
from tests.support import log_table_trigger, wait_for
from tests.test_handler import writers_waiting_for_a_lock
from tests.test_outage import hold_table_lock

pytestmark = pytest.mark.django_db(databases=["default", "applogs"], transaction=True)


def row(i):
    return (time.time(), 20, "applogs.tests.sink", "m", "f", 1, "sink %d" % i, "", "", "", "", "h",
            os.getpid(), None)


def given(outage):
    """The seconds an Outage of a cut write says the write was given."""
    said = re.match(r"no answer from the database within (\d+) s$", str(outage))
    assert said, str(outage)
    return int(said.group(1))


def messages():
    return list(LogRecord.objects.using("applogs").filter(logger="applogs.tests.sink")
                .order_by("id").values_list("message", flat=True))


def test_sink_session_is_its_own_and_bounded(logs):
    # Its own name (what a DBA sees in pg_stat_activity), keepalives against a silent network,
    # the write timeout as statement timeout, and the connect timeout of the options.
    sink = Sink(Options(connect_timeout=4, exit_timeout=60, write_timeout=7), on_drop=None)
    sink.write([row(0)])
    try:
        params = sink.conn.get_dsn_parameters()
        assert params["application_name"] == "applogs-writer"
        assert [params[k] for k in ("keepalives", "keepalives_idle", "keepalives_interval",
                                    "keepalives_count")] == ["1", "30", "10", "3"]
        assert params["connect_timeout"] == "4"
        with connections["default"].cursor() as cur:
            cur.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", [sink.backend])
            assert cur.fetchone() == ("applogs-writer",)
        with sink.conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone() == ("7s",)
        # The watchdog never keeps the process from exiting.
        watchdogs = [t for t in threading.enumerate() if t.name == "applogs-watchdog"]
        assert watchdogs and all(t.daemon for t in watchdogs)
    finally:
        sink.close()
    assert sink.conn is None

    def session_gone():
        with connections["default"].cursor() as cur:
            cur.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [sink.backend])
            return cur.fetchone() is None

    wait_for(session_gone, what="the closed session to end")
    assert messages() == ["sink 0"]


def test_sink_connect_timeout_of_the_database_settings_wins_when_shorter(logs):
    settings_dict = connections["applogs"].settings_dict
    old = settings_dict.get("OPTIONS")
    settings_dict["OPTIONS"] = dict(old or {}, connect_timeout=2)
    try:
        for asked, used in ((1, "1"), (4, "2")):
            sink = Sink(Options(connect_timeout=asked, exit_timeout=60), on_drop=None)
            sink.write([row(asked)])
            assert sink.conn.get_dsn_parameters()["connect_timeout"] == used
            sink.close()
    finally:
        settings_dict["OPTIONS"] = old
    assert messages() == ["sink 1", "sink 4"]


def test_sink_has_one_watchdog_thread_whatever_the_number_of_writes(logs):
    def watchdogs():
        return [t for t in threading.enumerate() if t.name == "applogs-watchdog"]

    before = len(watchdogs())
    sink = Sink(Options(), on_drop=None)
    sink.write([row(0)])
    assert len(watchdogs()) == before + 1
    for i in range(1, 4):
        sink.write([row(i)])
    assert len(watchdogs()) == before + 1
    assert messages() == ["sink 0", "sink 1", "sink 2", "sink 3"]


def test_sink_write_under_way_is_cut_at_the_exit_deadline(logs):
    # At exit the COPY under way, waiting for a lock, is cut at the deadline set while it waits
    # (the watchdog ends the connection), long before the statement timeout; nothing of it is in
    # the table.
    sink = Sink(Options(write_timeout=120), on_drop=None)
    sink.write([row(0)])
    outcome = []

    def write():
        try:
            sink.write([row(1), row(2)])
        except Outage as exc:
            outcome.append(exc)

    with hold_table_lock():
        thread = threading.Thread(target=write)
        thread.start()
        wait_for(lambda: sink.backend in writers_waiting_for_a_lock(), what="the COPY to wait")
        sink.limit(time.monotonic() + 1)
        wait_for(lambda: outcome, what="the COPY to be cut")
    thread.join()
    (exc,) = outcome
    assert str(exc).startswith("no answer from the database within")
    assert exc.written == 0
    assert messages() == ["sink 0"]


def test_sink_write_started_after_the_exit_deadline_is_cut_at_it(logs):
    sink = Sink(Options(write_timeout=30), on_drop=None)
    sink.write([row(0)])
    with hold_table_lock():
        sink.limit(time.monotonic() + 1)
        with pytest.raises(Outage) as raised:
            sink.write([row(1)])
        # Cut at the exit deadline, a second after it was set, not after the write timeout's 30 s.
        assert 0 < given(raised.value) < 30
        # The watchdog goes on after a cut: a write that starts past the deadline is cut at once.
        with pytest.raises(Outage) as raised:
            sink.write([row(2)])
        assert given(raised.value) == 0
    assert messages() == ["sink 0"]


def test_sink_watches_a_write_that_follows_an_idle_wait(logs):
    # The watchdog thread outlives its first operation: after waiting unarmed it still cuts the
    # next write that does not end (here at the exit deadline, long before the 30 s statement
    # timeout would end it).
    sink = Sink(Options(write_timeout=30), on_drop=None)
    sink.limit(time.monotonic() + 3)
    sink.write([row(0)])
    time.sleep(3.5)  # past the first write's deadline: the watchdog now waits unarmed
    with hold_table_lock():
        sink.limit(time.monotonic() + 1)
        with pytest.raises(Outage) as raised:
            sink.write([row(1)])
    assert given(raised.value) < 30
    assert messages() == ["sink 0"]


def test_sink_puts_a_refusal_cut_to_500_characters_in_the_rows_extra(logs):
    # A row the server refuses for its extra lands with the server's reason in its place, cut to
    # a bounded length (the reason can quote any amount of the row).
    dropped = []
    sink = Sink(Options(), on_drop=dropped.append)
    with log_table_trigger("IF NEW.extra ? 'refuse' THEN RAISE EXCEPTION '%', repeat('r', 600)"
                           " USING ERRCODE = '22023'; END IF;"):
        sink.write([row(0)[:-1] + ('{"refuse": 1}',)])
    reason = LogRecord.objects.using("applogs").get(logger="applogs.tests.sink").extra["applogs_error"]
    assert len(reason) == 500 and "r" * 450 in reason
    assert dropped == []


def test_sink_outage_after_rows_found_committed_counts_them_as_written(logs):
    # A write whose answer was lost is found committed; the rows after it then meet an outage.
    # The Outage counts the committed rows as written, so that the listener never writes them
    # again.
    sink = Sink(Options(), on_drop=None)
    committed = [row(0), row(1), row(2)]
    sink.write(committed)
    backend = sink.backend
    sink.close()
    sink.uncertain = (backend, committed)
    with log_table_trigger("IF NEW.message = 'sink 4' THEN RAISE EXCEPTION 'not now'; END IF;"):
        with pytest.raises(Outage) as raised:
            sink.write(committed + [row(3), row(4)])
    assert raised.value.written == 3
    assert messages() == ["sink 0", "sink 1", "sink 2"]
