"""Read-only LogRecordAdmin: no COUNT(*), no SELECT DISTINCT, export action, system check."""
import datetime
import io

import openpyxl
import pytest
from django.contrib.auth.models import User
from django.core.checks import Error
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from applogs.admin import LogRecordAdmin, configured_loggers
from applogs.checks import check_xlsexport_installed
from applogs.compat import ADMIN_FIRST_PAGE

from .viewer_support import BASE, QueryLog, make, record, user_with_view_permission, viewer_db

pytestmark = viewer_db
CHANGELIST = "/admin/applogs/logrecord/"


@pytest.fixture
def staff_viewer(client):
    user = user_with_view_permission("staffviewer")
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


def page(n):
    """The changelist's query for page n (counted from 1): ?p= counts from 0 before Django 3.1."""
    return "?p=%d" % (n - 1 + ADMIN_FIRST_PAGE)


def changelist_ids(response):
    content = response.content.decode()
    return [int(part.split("/")[0]) for part in content.split('href="/admin/applogs/logrecord/')[1:]
            if part.split("/")[0].isdigit()]


def test_changelist_without_count_or_distinct(admin_client):
    make(*[record(id=i, created=BASE + datetime.timedelta(seconds=i), level=10 * (1 + i % 5),
                  logger="api.orders" if i % 2 else "command") for i in range(1, 251)])
    for query in ("", "?level__exact=40", "?logger=api", "?q=hello", page(2), page(3)):
        with QueryLog() as queries:
            response = admin_client.get(CHANGELIST + query)
        assert response.status_code == 200, query
        sql = " ".join(queries.sql("applogs")).upper()
        assert "COUNT(" not in sql, query
        assert "DISTINCT" not in sql, query
        for statement in queries.sql("default"):
            assert "applogs_logrecord" not in statement


def test_changelist_pages_forward(admin_client):
    make(*[record(id=i, created=BASE + datetime.timedelta(seconds=i)) for i in range(1, 251)])
    first = admin_client.get(CHANGELIST)
    ids = changelist_ids(first)
    assert ids[:3] == [250, 249, 248] and len(set(ids)) == 100
    assert 'href="%s"' % page(2) in first.content.decode()
    third = admin_client.get(CHANGELIST + page(3))
    assert sorted(set(changelist_ids(third))) == list(range(1, 51))
    assert 'href="%s"' % page(4) not in third.content.decode()
    assert 'href="%s"' % page(1) in third.content.decode()  # the way back to the first page
    assert "50 log records on this page" in third.content.decode()
    # Nothing pretends to know the total.
    content = first.content.decode()
    assert "Select all matching log records" in content
    assert "results (" not in content and "Select all 101" not in content and "101 log records" not in content


def test_no_count_paginator_knows_the_rows_before_its_page_and_one_more():
    from applogs.models import LogRecord
    from applogs.paginator import NoCountPaginator

    make(*[record(id=i, created=BASE + datetime.timedelta(seconds=i)) for i in range(1, 251)])
    queryset = LogRecord.objects.order_by("-created", "-id")
    assert NoCountPaginator(queryset, 100).count == 101
    assert [NoCountPaginator(queryset, 100, page_number=n).count for n in (0, 1, 2, 3)] == [101, 101, 201, 250]


def test_filters_and_search(admin_client):
    make(
        record(id=1, level=40, logger="api", message="boom one"),
        record(id=2, level=20, logger="api.orders", message="fine", request_id="req-9"),
        record(id=3, level=40, logger="apiv2", message="boom two"),
    )
    assert set(changelist_ids(admin_client.get(CHANGELIST + "?level__exact=40"))) == {1, 3}
    assert set(changelist_ids(admin_client.get(CHANGELIST + "?logger=api"))) == {1, 2}
    assert set(changelist_ids(admin_client.get(CHANGELIST + "?q=boom"))) == {1, 3}
    assert set(changelist_ids(admin_client.get(CHANGELIST + "?q=req-9"))) == {2}


def test_logger_filter_choices_come_from_settings(settings):
    # tests.settings.LOGGING sends command, api and remote_service to the db handler.
    assert configured_loggers() == ["api", "command", "remote_service"]
    settings.APPLOGS_ADMIN_LOGGERS = ["payments"]
    assert "payments" in configured_loggers()


def test_read_only(admin_client):
    make(record(id=1))
    assert admin_client.get("/admin/applogs/logrecord/add/").status_code == 403
    assert admin_client.post("/admin/applogs/logrecord/1/delete/", {"post": "yes"}).status_code == 403
    change = admin_client.get("/admin/applogs/logrecord/1/change/")
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    admin_client.post("/admin/applogs/logrecord/1/change/", {"message": "changed"})
    response = admin_client.get(CHANGELIST)
    assert "delete_selected" not in response.content.decode()
    assert "export_to_xlsx" in response.content.decode()
    from applogs.models import LogRecord

    assert LogRecord.objects.get(id=1).message == "hello"


def test_export_action(staff_viewer, settings):
    settings.APPLOGS_EXPORT_MAX_ROWS = 2
    make(
        record(id=1, message="=1+2", level=40, created=BASE),
        record(id=2, message="second", created=BASE + datetime.timedelta(seconds=1)),
        record(id=3, message="third", created=BASE + datetime.timedelta(seconds=2)),
    )
    response = staff_viewer.post(CHANGELIST, {"action": "export_to_xlsx", "_selected_action": ["1", "2", "3"],
                                              "index": "0"})
    assert response.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0][:4] == ["ID", "Time", "Level", "Logger"]
    assert [r[0] for r in rows[1:3]] == [3, 2]
    assert rows[-1][0].startswith("Export capped at 2 rows")
    settings.APPLOGS_EXPORT_MAX_ROWS = 10
    response = staff_viewer.post(CHANGELIST, {"action": "export_to_xlsx", "_selected_action": ["1"], "index": "0"})
    ws = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert ws["E2"].value == "=1+2" and ws["E2"].data_type == "s" and ws["E2"].quotePrefix
    assert ws["C2"].value == "ERROR"


def test_staff_without_permission_is_refused(client):
    client.force_login(User.objects.create_user("staffonly", password="pw", is_staff=True))
    assert client.get(CHANGELIST).status_code == 403


def test_admin_options():
    assert LogRecordAdmin.show_full_result_count is False
    assert LogRecordAdmin.date_hierarchy is None


def test_check_passes_with_xlsexport():
    assert check_xlsexport_installed() == []
    call_command("check")


def test_check_fails_without_xlsexport(settings):
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "xlsexport"]
    errors = check_xlsexport_installed()
    assert len(errors) == 1 and isinstance(errors[0], Error)
    assert errors[0].id == "applogs.E001"
    assert "'xlsexport'" in errors[0].msg and "INSTALLED_APPS" in errors[0].msg
    with pytest.raises(SystemCheckError, match="applogs requires the 'xlsexport' app"):
        call_command("check")


def test_changelist_escapes(admin_client):
    make(record(id=1, message="<script>alert(1)</script>", logger="<img src=x onerror=alert(2)>",
                user="<svg onload=alert(3)>"))
    for url in (CHANGELIST, "/admin/applogs/logrecord/1/change/"):
        content = admin_client.get(url).content.decode()
        assert "<script>alert(1)" not in content and "<img src=x" not in content and "<svg onload" not in content
        assert "&lt;script&gt;alert(1)" in content


SCRIPT_WITHOUT_XLSEXPORT = """
import sys

# As if django-xlsexport were not installed: importing it fails.
sys.modules["xlsexport"] = None
import django
from django.conf import settings
import tests.settings as base
options = {k: getattr(base, k) for k in dir(base) if k.isupper()}
options["INSTALLED_APPS"] = [a for a in base.INSTALLED_APPS if a != "xlsexport"]
settings.configure(**options)
django.setup()
from django.core.management import call_command
from django.core.management.base import SystemCheckError
try:
    call_command("check")
except SystemCheckError as error:
    print(error)
    sys.exit(3)
"""


def test_check_without_the_package(tmp_path):
    """Not even installed: the check says what to do, instead of an ImportError at startup."""
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", SCRIPT_WITHOUT_XLSEXPORT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=120)
    # 3: the check failed; an ImportError during setup would exit with 1 and a traceback.
    assert result.returncode == 3, result.stderr
    assert "applogs.E001" in result.stdout
    assert "pip install django-xlsexport" in result.stdout
