import datetime
import io

import openpyxl
import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from xlsexport.compat import HAS_VIEW_PERMISSION

from tests.models import Category, Item

UTC = datetime.timezone.utc
pytestmark = pytest.mark.django_db


def _post_action(client, url_name, ids, select_across=False):
    data = {"action": "export_to_xlsx", "_selected_action": [str(i) for i in ids], "index": "0"}
    if select_across:
        data["select_across"] = "1"
    return client.post(reverse(url_name), data)


def _sheet(response):
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    return openpyxl.load_workbook(io.BytesIO(body)).active


def _rows(ws):
    return [[c.value for c in row] for row in ws.iter_rows()]


@pytest.fixture
def items():
    cat = Category.objects.create(name="Tools")
    created = datetime.datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    return [
        Item.objects.create(name="=cmd|' /C calc'!A0", status=1, created=created, category=cat, amount="1.50"),
        Item.objects.create(name="plain\x07bell", status=2, created=created, data={"k": [1, 2]}),
        Item.objects.create(name="third", status=2, created=created),
    ]


def test_columns_from_list_display(admin_client, items):
    ws = _sheet(_post_action(admin_client, "admin:tests_item_changelist", [items[0].pk, items[1].pk]))
    rows = _rows(ws)
    assert rows[0] == ["Name", "Status", "Created", "Category", "Amount", "Loud name"]
    assert rows[1] == [
        "=cmd|' /C calc'!A0",
        "Open",
        # TIME_ZONE is Europe/Moscow (UTC+3), written as a naive Excel datetime.
        datetime.datetime(2024, 3, 1, 12, 0),
        "Tools",
        1.5,
        "=CMD|' /C CALC'!A0",
    ]
    assert ws["A2"].data_type == "s" and ws["A2"].quotePrefix
    assert ws["F2"].data_type == "s" and ws["F2"].quotePrefix
    assert not ws["A3"].quotePrefix and not ws["F3"].quotePrefix
    assert ws["C2"].is_date
    assert rows[2] == ["plainbell", "Closed", datetime.datetime(2024, 3, 1, 12, 0), None, 0, "PLAINBELL"]
    assert len(rows) == 3


@pytest.mark.parametrize("name", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\x07=cmd|' /C calc'!A0",
                                  "\x1b\x08-1"])
def test_action_keeps_formula_like_text_as_text(admin_client, name):
    item = Item.objects.create(name=name, status=1, created=datetime.datetime(2024, 3, 1, tzinfo=UTC))
    ws = _sheet(_post_action(admin_client, "admin:tests_item_changelist", [item.pk]))
    for cell in (ws["A2"], ws["F2"]):  # the field, and a method of the admin (upper case)
        assert cell.data_type == "s"
        assert cell.quotePrefix, repr(name)
    assert ws["A2"].value == name.replace("\r", "\n").lstrip("\x07\x08\x1b")


def test_xlsexport_fields_and_cap(admin_client, items):
    extra = [Item.objects.create(name="n%d" % i, created=items[0].created) for i in range(3)]
    ids = [i.pk for i in items + extra]
    rows = _rows(_sheet(_post_action(admin_client, "admin:tests_itemproxy_changelist", ids, select_across=True)))
    assert rows[0] == ["ID", "Name", "Data"]
    # xlsexport_max_rows = 3: three rows, an empty row, then the note.
    assert [r[0] for r in rows[1:4]] == ids[:3]
    assert rows[2][2] == '{"k": [1, 2]}'
    assert rows[4] == [None, None, None]
    assert rows[5][0].startswith("Export capped at 3 rows")
    assert len(rows) == 6


def test_not_capped_has_no_note(admin_client, items):
    rows = _rows(_sheet(_post_action(admin_client, "admin:tests_itemproxy_changelist", [items[0].pk])))
    assert len(rows) == 2


def test_setting_caps_rows(admin_client, items, settings):
    settings.XLSEXPORT_MAX_ROWS = 2
    rows = _rows(_sheet(_post_action(admin_client, "admin:tests_item_changelist", [i.pk for i in items])))
    assert len(rows) == 1 + 2 + 2
    assert rows[-1][0].startswith("Export capped at 2 rows")


@pytest.mark.skipif(not HAS_VIEW_PERMISSION, reason="Django < 2.1 has no view permission")
def test_view_permission_is_enough(client, items):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_item"))
    client.force_login(user)
    rows = _rows(_sheet(_post_action(client, "admin:tests_item_changelist", [items[2].pk])))
    assert rows[1][0] == "third"


def test_staff_without_permission_cannot_export(client, items):
    user = User.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    response = _post_action(client, "admin:tests_item_changelist", [items[2].pk])
    assert response.status_code == 403


def test_action_listed_on_changelist(admin_client, items):
    response = admin_client.get(reverse("admin:tests_item_changelist"))
    assert b"export_to_xlsx" in response.content


def _open_cursors(alias="default"):
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT name FROM pg_cursors")
        return [row[0] for row in cursor.fetchall()]


def test_first_bytes_go_out_while_the_rows_are_being_read(admin_client, items):
    response = _post_action(admin_client, "admin:tests_item_changelist", [i.pk for i in items])
    assert response.status_code == 200
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04")
    # The export's server-side cursor is still open: the first bytes were sent before the rows had
    # all been read (a workbook built before the response would have read them all).
    assert _open_cursors()
    # (The test client closes the response when its content has been read.)
    rest = b"".join(chunks)
    assert _open_cursors() == []
    rows = _rows(openpyxl.load_workbook(io.BytesIO(first + rest)).active)
    assert [r[0] for r in rows[1:]] == [i.name.replace("\x07", "") for i in items]
