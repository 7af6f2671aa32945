"""Languages: the catalogues of both apps, and the viewer, export, admin and checks in Russian and
English, chosen by LANGUAGE_CODE or, where the portal uses LocaleMiddleware, by the browser.

The catalogue tests use GNU gettext's tools (msgfmt, msgattrib, msgcmp; xgettext through
makemessages), which scripts/setup installs.
"""
import gettext
import glob
import io
import os
import shutil
import site
import subprocess

import django
import openpyxl
import pytest
from django.core.management import call_command
from django.utils import translation

import applogs
import xlsexport

from .viewer_support import (  # noqa: F401 (fixtures)
    BASE,
    make,
    record,
    superuser_client,
    viewer,
    viewer_db,
)

APPS = {"applogs": os.path.dirname(applogs.__file__), "xlsexport": os.path.dirname(xlsexport.__file__)}
LANGUAGES = ("ru", "en")
CATALOGUES = [(app, lang) for app in APPS for lang in LANGUAGES]
LOCALE_MIDDLEWARE = "django.middleware.locale.LocaleMiddleware"

pytestmark = viewer_db


def po_path(app, lang):
    return os.path.join(APPS[app], "locale", lang, "LC_MESSAGES", "django.po")


def gettext_tool(*args):
    tool = args[0]
    assert shutil.which(tool), "%s is missing: install Debian's gettext package (scripts/setup does)" % tool
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def load_mo(path):
    with open(path, "rb") as f:
        return gettext.GNUTranslations(f)._catalog


# --- catalogues -----------------------------------------------------------------------------


@pytest.mark.parametrize("app,lang", CATALOGUES)
def test_catalogue_is_complete(app, lang):
    po = po_path(app, lang)
    gettext_tool("msgfmt", "--check", "-o", os.devnull, po)
    # msgattrib prints the matching messages (and the header, when there are any).
    assert gettext_tool("msgattrib", "--untranslated", po) == "", "untranslated messages in %s" % po
    assert gettext_tool("msgattrib", "--only-fuzzy", "--no-obsolete", po) == "", "fuzzy messages in %s" % po


@pytest.mark.parametrize("app,lang", CATALOGUES)
def test_compiled_catalogue_matches_its_source(app, lang, tmp_path):
    po = po_path(app, lang)
    fresh = str(tmp_path / "django.mo")
    gettext_tool("msgfmt", "--check", "-o", fresh, po)
    assert load_mo(po[:-3] + ".mo") == load_mo(fresh), (
        "%s.mo is stale: run compilemessages (docs/architecture.md, Languages)" % po[:-3])


@pytest.mark.parametrize("app", sorted(APPS))
def test_catalogue_holds_exactly_the_strings_of_the_code(app, tmp_path, monkeypatch):
    # makemessages extracts into a copy of the package, so the committed catalogue stays as it is.
    copy = tmp_path / app
    shutil.copytree(APPS[app], str(copy), ignore=shutil.ignore_patterns("locale", "__pycache__", "*.pyc"))
    (copy / "locale").mkdir()
    monkeypatch.chdir(str(copy))
    call_command("makemessages", locale=["ru"], no_location=True, verbosity=0)
    extracted = str(copy / "locale" / "ru" / "LC_MESSAGES" / "django.po")
    committed = po_path(app, "ru")
    # Every string of the code is in the catalogue, and the catalogue has none the code lost.
    gettext_tool("msgcmp", committed, extracted)
    gettext_tool("msgcmp", "--use-untranslated", extracted, committed)


def installed_files(distribution):
    """The files pip installed for ``distribution`` (its RECORD), or None when it is not installed
    (tests run from the source tree; the test matrix also installs the wheels)."""
    for directory in site.getsitepackages():
        for record_path in glob.glob(os.path.join(directory, distribution + "-*.dist-info", "RECORD")):
            with open(record_path, encoding="utf-8") as f:
                return {line.split(",")[0] for line in f}
    return None


@pytest.mark.parametrize("app", sorted(APPS))
def test_installed_wheel_ships_the_catalogues(app):
    files = installed_files("django_" + app)
    if files is None:
        pytest.skip("django-%s is not installed as a wheel here" % app)
    for lang in LANGUAGES:
        for ext in ("po", "mo"):
            assert "%s/locale/%s/LC_MESSAGES/django.%s" % (app, lang, ext) in files


# --- pages in Russian and English -----------------------------------------------------------

RUSSIAN = ["Журнал приложения", "Применить", "Выгрузить в Excel (XLSX)", "Сообщение содержит", "Пользователь"]
ENGLISH = ["Application logs", ">Filter<", "Export to Excel (XLSX)", "Message contains", "User"]


def list_page(client, **headers):
    make(record(id=1, created=BASE, level=40))
    response = client.get("/applogs/", **headers)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language,texts,other_language,date,cap", [
    # The date in Russian order, the cap with Russian digit grouping (a no-break space).
    ("ru-ru", RUSSIAN, "Export to Excel", "10.01.2024 12:00:00", "не более 100\xa0000 записей"),
    ("en-us", ENGLISH, "Применить", "01/10/2024 12:00:00", "at most 100,000 records"),
], ids=["ru", "en"])
def test_list_in_the_language_of_language_code(viewer, settings, language, texts, other_language, date, cap):
    settings.LANGUAGE_CODE = language
    content = list_page(viewer)
    assert '<html lang="%s">' % language in content
    for text in texts:
        assert text in content
    assert other_language not in content
    assert date in content
    assert cap in content


@pytest.mark.parametrize("portal_language", ["en-us", "ru-ru"])
def test_browser_language_decides_with_locale_middleware(viewer, settings, portal_language):
    settings.LANGUAGE_CODE = portal_language
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1, LOCALE_MIDDLEWARE)
    settings.MIDDLEWARE = middleware
    make(record(id=1, created=BASE))
    russian = viewer.get("/applogs/", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5").content.decode()
    english = viewer.get("/applogs/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").content.decode()
    for text in RUSSIAN:
        assert text in russian
    for text in ENGLISH:
        assert text in english
    assert "Применить" not in english


def test_browser_language_ignored_without_locale_middleware(viewer, settings):
    settings.LANGUAGE_CODE = "ru-ru"
    content = list_page(viewer, HTTP_ACCEPT_LANGUAGE="en")
    assert "Применить" in content


def test_detail_in_russian(viewer, settings):
    settings.LANGUAGE_CODE = "ru-ru"
    make(record(id=1, created=BASE, request_id="req-1", host="web1", process=7),
         record(id=2, created=BASE, host="web1", process=7))
    content = viewer.get("/applogs/1/").content.decode()
    for text in ("Постоянная ссылка", "Все записи этого запроса", "До и после этой записи в том же процессе",
                 "Записи этого запроса", "10.01.2024 12:00:00.000000"):
        assert text in content


def test_filter_error_in_russian(viewer, settings):
    settings.LANGUAGE_CODE = "ru-ru"
    content = viewer.get("/applogs/", {"level": "LOUD"}).content.decode()
    assert "Уровень: " in content and "(фильтр не применён)" in content


def export_rows(response):
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize("language,headers,notice", [
    ("ru-ru", ["ID", "Время", "Уровень", "Логгер", "Сообщение"], "Выгрузка ограничена: не более 1\xa0000 строк"),
    ("en-us", ["ID", "Time", "Level", "Logger", "Message"], "Export capped at 1,000 rows"),
], ids=["ru", "en"])
def test_export_headers_and_notice_in_the_portals_language(viewer, settings, language, headers, notice):
    settings.LANGUAGE_CODE = language
    settings.APPLOGS_EXPORT_MAX_ROWS = 1000
    make(*[record(id=i, created=BASE) for i in range(1, 1003)])
    rows = export_rows(viewer.get("/applogs/export/"))
    assert rows[0][:5] == headers
    assert rows[-1][0].startswith(notice)


def test_admin_in_russian(superuser_client, settings):
    settings.LANGUAGE_CODE = "ru-ru"
    make(record(id=1, created=BASE))
    content = superuser_client.get("/admin/applogs/logrecord/").content.decode()
    for text in ("Журнал приложения", "Записи журнала", "Выгрузить выбранные записи журнала в Excel (XLSX)",
                 "Время", "Уровень", "Сообщение", "ID запроса", "логгер",
                 "1 запись журнала на этой странице"):
        assert text in content, text
    if django.VERSION >= (4, 0):  # the admin shows search_help_text since 4.0
        assert "Текст сообщения либо точный ID запроса, пользователь или IP." in content
    rows = export_rows(superuser_client.post(
        "/admin/applogs/logrecord/", {"action": "export_to_xlsx", "_selected_action": ["1"], "index": "0"}))
    assert rows[0][:3] == ["ID", "Время", "Уровень"]


def test_system_check_in_russian(settings):
    from applogs.checks import check_xlsexport_installed

    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "xlsexport"]
    with translation.override("ru"):
        (error,) = check_xlsexport_installed()
    assert error.msg == "Для applogs нужно приложение 'xlsexport', но его нет в INSTALLED_APPS."
    assert error.hint == "Добавьте 'xlsexport' в INSTALLED_APPS рядом с 'applogs'."
