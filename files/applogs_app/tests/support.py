"""Shared helpers of the writer and migration tests: waiting for an event, a server that refuses
rows on demand, and a migration run while records keep arriving."""
import contextlib
import threading
import time

from django.core.management import call_command


def wait_for(predicate, timeout=60, what="the event"):
    """Poll predicate until it is true; a generous bound, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for %s" % what)
        time.sleep(0.02)


@contextlib.contextmanager
def log_table_trigger(body):
    """While the block runs, a BEFORE INSERT trigger on the log table runs body (PL/pgSQL, the row
    in NEW): the server refusing a row for its data, or failing like an outage, on demand."""
    from django.db import connections

    with connections["applogs"].cursor() as cur:
        cur.execute("CREATE FUNCTION applogs_test_trigger() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN %s RETURN NEW; END $$" % body)
        cur.execute("CREATE TRIGGER applogs_test_trigger BEFORE INSERT ON applogs_logrecord"
                    " FOR EACH ROW EXECUTE PROCEDURE applogs_test_trigger()")
    try:
        yield
    finally:
        with connections["applogs"].cursor() as cur:
            cur.execute("DROP TRIGGER applogs_test_trigger ON applogs_logrecord")
            cur.execute("DROP FUNCTION applogs_test_trigger()")


def migrate_while_writing(write):
    """Migrate applogs to its latest migration while another thread calls write() over and over on
    connections of its own; returns what write raised (nothing, when all went well)."""
    stop = threading.Event()
    errors = []

    def writer():
        from django.db import connections

        try:
            while not stop.is_set():
                write()
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        call_command("migrate", "applogs", database="applogs", verbosity=0)
    finally:
        stop.set()
        thread.join(60)
    return errors
