import logging
import os

import pytest

from applogs import writer
from applogs.compat import DJANGO
from applogs.handlers import DBLogsHandler

if not os.environ.get("APPLOGS_TEST_PGPORT"):
    raise pytest.UsageError(
        "APPLOGS_TEST_PG* are not set: run the tests through scripts/test-apps, which starts "
        "a private PostgreSQL cluster (scripts/lib/testpg.sh).")


if DJANGO < (2, 2):
    # Before Django 2.2 a test case knows no `databases` (which the django_db marks name): it
    # flushes and wraps every database only with multi_db.
    from django.test import TransactionTestCase

    TransactionTestCase.multi_db = True


@pytest.fixture(autouse=True)
def _empty_the_partitioned_log_table(request, django_db_blocker):
    """Before Django 2.2 introspection does not list partitioned tables, so the flush after a
    transactional test leaves the rows of applogs_logrecord to the next test: empty it here."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    if DJANGO < (2, 2) and transactional:
        from django.db import connections

        with django_db_blocker.unblock():
            with connections["applogs"].cursor() as cursor:
                cursor.execute("TRUNCATE applogs_logrecord")


def pytest_collection_modifyitems(config, items):
    # Several cells of the test matrix share one PostgreSQL server; stopping it, or changing the
    # password of its login, would break the others. scripts/test-apps runs these tests once the
    # parallel cells are done (APPLOGS_TEST_SERVER_ALONE=later while they run, =only afterwards).
    mode = os.environ.get("APPLOGS_TEST_SERVER_ALONE", "")
    if mode == "later":
        skip = pytest.mark.skip(reason="stops the shared server: run after the parallel cells")
        for item in items:
            if "needs_server_alone" in item.keywords:
                item.add_marker(skip)
    elif mode == "only":
        kept = [item for item in items if "needs_server_alone" in item.keywords]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _stop_writers_before_teardown(django_db_setup):
    # The writers' own connections would keep the test databases from being dropped.
    yield
    writer.shutdown_all(timeout=10)


def configured_handler():
    """The `db` handler of tests.settings.LOGGING (on the `api` logger)."""
    for h in logging.getLogger("api").handlers:
        if isinstance(h, DBLogsHandler):
            return h
    raise AssertionError("no DBLogsHandler on the api logger")


@pytest.fixture
def logs(transactional_db, django_db_blocker):
    """Both test databases, committed for real (the writer reads from its own connection).

    Yields the configured handler; every writer is flushed before the tables are emptied, so no
    record of one test lands in the next.
    """
    handler = configured_handler()
    yield handler
    for w in writer.all_writers():
        w.flush(30)


@pytest.fixture
def make_logger(request):
    """A private logger with its own DBLogsHandler(**kwargs) (own writer, own options)."""
    made = []

    def make(name, **kwargs):
        handler = DBLogsHandler(**kwargs)
        logger = logging.getLogger("applogs.tests." + name)
        logger.handlers = [handler]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        made.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in made:
        handler.flush(30)
        logger.handlers = []
