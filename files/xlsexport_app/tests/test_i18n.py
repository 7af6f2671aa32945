"""The admin action and the capped-file notice in the portal's language (Russian or English)."""
import pytest

from .test_actions import _post_action, _rows, _sheet, items  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language,action,notice", [
    ("ru-ru", "Выгрузить выбранные", "Выгрузка ограничена: не более 2 строк."),
    ("en-us", "Export selected", "Export capped at 2 rows;"),
])
def test_action_and_notice_in_the_portals_language(admin_client, items, settings, language, action, notice):
    settings.LANGUAGE_CODE = language
    settings.XLSEXPORT_MAX_ROWS = 2
    changelist = admin_client.get("/admin/tests/item/").content.decode()
    assert action in changelist
    rows = _rows(_sheet(_post_action(admin_client, "admin:tests_item_changelist", [i.pk for i in items])))
    assert rows[-1][0].startswith(notice)
