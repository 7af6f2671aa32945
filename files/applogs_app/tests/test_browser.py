"""The viewer in a real browser: headless Chromium (Debian's chromium + chromium-driver).

Logs in through the login page, applies a filter, follows the next page, opens a record, downloads
an export and reads it with openpyxl. Then clicks a bar of the volume chart, pages older and newer,
and turns on follow to see records logged after the page loaded appear; and drives the Russian and
the English UI, with a record's context.

APPLOGS_TEST_BROWSER=1 (the test matrix's browser cell) makes a missing Chromium a failure, not a
skip; =0 skips the test; unset, it runs where Chromium is installed. APPLOGS_TEST_SCREENSHOTS=1
saves the screenshots of docs/ (viewer.png and each language's list and record pages), on demand.
"""
import datetime
import hashlib
import logging
import os
import pathlib
import shutil
import tempfile

import openpyxl
import pytest

from .viewer_support import BASE, make, record, user_with_view_permission

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO_DOCS = pathlib.Path(__file__).resolve().parents[3] / "docs"
WAIT = 30  # seconds; generous for slow CI machines, never an assertion about speed

pytestmark = [
    pytest.mark.skipif(os.environ.get("APPLOGS_TEST_BROWSER") == "0",
                       reason="the test matrix runs the browser test in one cell only"),
    pytest.mark.skipif(os.environ.get("APPLOGS_TEST_BROWSER") != "1" and not os.path.exists(CHROMIUM),
                       reason="%s is missing (apt-get install chromium chromium-driver)" % CHROMIUM),
    pytest.mark.django_db(transaction=True, databases=["default", "applogs"]),
]


@pytest.fixture
def browser():
    # Only reached where the browser test must run: what it needs missing is a failure.
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        pytest.fail("%s missing: scripts/setup installs chromium and chromium-driver" % " and ".join(missing))
    # Imported here: the cells that skip the test never need selenium.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Never let Selenium Manager look for (or download) a driver or browser.
    os.environ.setdefault("SE_OFFLINE", "true")
    profile = tempfile.mkdtemp(prefix="applogs-chromium-profile-")
    downloads = tempfile.mkdtemp(prefix="applogs-chromium-downloads-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        "--user-data-dir=" + profile,
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": downloads,
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        # Headless Chromium only saves downloads where it is told to over CDP.
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
        driver.downloads = downloads
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)


def _wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(condition)


def _row_ids(driver):
    from selenium.webdriver.common.by import By

    return [int(tr.get_attribute("data-id")) for tr in driver.find_elements(By.CSS_SELECTOR, "tr[data-id]")]


@pytest.fixture
def records(settings, tmp_path):
    """The portal every browser test starts from: the admin login page as its login page, pages of
    20 rows, 300 records of every level, and the staff user `support` (password `pw`) who may view
    them. Returns the records."""
    settings.LOGIN_URL = "/admin/login/"
    settings.APPLOGS_PAGE_SIZE = 20
    # The live server serves /static/ from STATIC_ROOT; the pages need none, the admin login asks.
    settings.STATIC_ROOT = str(tmp_path)
    loggers = ["api", "api.orders", "command", "remote_service", "api.auth"]
    messages = [
        "GET /api/v1/orders/ 200",
        "Order 1842 synced to remote WMS",
        "Remote service timeout after 30 s, retrying",
        "Cannot parse shift schedule: unexpected column 'Сотрудник'",
        "Import finished: 412 rows, 3 skipped",
    ]
    rows = []
    for i in range(1, 301):
        level = [20, 20, 10, 30, 40, 20, 50 if i % 37 == 0 else 40][i % 7]
        rows.append(
            record(
                id=i,
                created=BASE + datetime.timedelta(seconds=17 * i),
                level=level,
                logger=loggers[i % len(loggers)],
                message="%s (#%d)" % (messages[i % len(messages)], i),
                user=["alice", "bob", "", "ivanov"][i % 4],
                ip="10.0.%d.%d" % (i % 3, i % 200),
                request_id=hashlib.md5(b"%d" % (i // 3)).hexdigest() if i % 5 else "",
                traceback="Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad" if level >= 40 else "",
                extra={"attempt": i % 3} if i % 4 == 0 else {},
            )
        )
    make(*rows)
    user = user_with_view_permission("support")
    # The admin login form doubles as the portal's login page here; it wants staff users.
    user.is_staff = True
    user.save()
    return rows


def test_viewer_in_chromium(browser, live_server, settings, records):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    settings.TIME_ZONE = "Europe/Moscow"

    # Anonymous: the login page, then back to the viewer.
    browser.get(live_server.url + "/applogs/")
    _wait(browser, EC.presence_of_element_located((By.NAME, "username")))
    assert "/admin/login/" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("support")
    browser.find_element(By.NAME, "password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "table.records")))
    assert browser.current_url == live_server.url + "/applogs/"
    newest = sorted(records, key=lambda r: (r.created, r.id), reverse=True)
    assert _row_ids(browser) == [r.id for r in newest[:20]]
    _screenshot(browser, "viewer.png")

    # Filter: ERROR records of the api logger and its children.
    browser.find_element(By.CSS_SELECTOR, "input[name=level][value=ERROR]").click()
    browser.find_element(By.NAME, "logger").send_keys("api")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    _wait(browser, EC.url_contains("level=ERROR"))
    assert "logger=api" in browser.current_url
    expected = [r.id for r in newest if r.level == 40 and (r.logger == "api" or r.logger.startswith("api."))]
    assert len(expected) > 20
    assert _row_ids(browser) == expected[:20]

    # Next page by the rel="next" link keeps the filter.
    browser.find_element(By.CSS_SELECTOR, 'a[rel="next"]').click()
    _wait(browser, EC.url_contains("after="))
    assert "level=ERROR" in browser.current_url
    assert _row_ids(browser) == expected[20:40]

    # A record's detail page.
    target = expected[20]
    browser.find_element(By.CSS_SELECTOR, 'tr[data-id="%d"] td.time a' % target).click()
    _wait(browser, EC.url_to_be(live_server.url + "/applogs/%d/" % target))
    message = browser.find_element(By.CSS_SELECTOR, "pre.message").text
    assert message == next(r.message for r in records if r.id == target)
    assert "ValueError: bad" in browser.find_element(By.CSS_SELECTOR, "pre.traceback").text

    # Export of the filtered list, downloaded and opened.
    browser.back()
    _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "a.export")))
    browser.find_element(By.CSS_SELECTOR, "a.export").click()

    def downloaded(_):
        done = [p for p in pathlib.Path(browser.downloads).iterdir() if p.suffix == ".xlsx"]
        return done[0] if done else False

    path = _wait(browser, downloaded)
    sheet = openpyxl.load_workbook(path).active
    exported = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [r[0] for r in exported] == expected
    assert {r[2] for r in exported} == {"ERROR"}


def _log_in(browser, live_server, username):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    browser.get(live_server.url + "/applogs/")
    _wait(browser, EC.presence_of_element_located((By.NAME, "username")))
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "table.records")))


def _screenshot(browser, name):
    # Only on request: the committed screenshots change when someone means to change them.
    if os.environ.get("APPLOGS_TEST_SCREENSHOTS") == "1" and REPO_DOCS.is_dir():
        assert browser.save_screenshot(str(REPO_DOCS / name))


# What each language shows: the filter button, the export link, the context heading, a date.
LANGUAGE_UI = {
    "ru-ru": ("Применить", "Выгрузить в Excel (XLSX)", "До и после этой записи в том же процессе", "10.01.2024"),
    "en-us": ("Filter", "Export to Excel (XLSX)", "Around this record in the same process", "01/10/2024"),
}


def test_russian_and_english_ui_with_a_records_context(browser, live_server, settings, records):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    from applogs.models import LogRecord

    settings.TIME_ZONE = "Europe/Moscow"
    # Records 120-140 come from one process of web1, the others from elsewhere.
    LogRecord.objects.filter(id__range=(120, 140)).update(host="web1", process=4242)
    LogRecord.objects.exclude(id__range=(120, 140)).update(host="web2", process=4242)
    errors = [r.id for r in sorted(records, key=lambda r: (r.created, r.id), reverse=True) if r.level == 40]

    for language, (button, export, context_heading, date) in LANGUAGE_UI.items():
        settings.LANGUAGE_CODE = language
        browser.delete_all_cookies()
        _log_in(browser, live_server, "support")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
        assert browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").text == button
        assert browser.find_element(By.CSS_SELECTOR, "a.export").text == export
        assert browser.find_element(By.CSS_SELECTOR, "tr[data-id] td.time").text.startswith(date)
        _screenshot(browser, "viewer-%s.png" % language[:2])

        # Filter in this language's form.
        browser.find_element(By.CSS_SELECTOR, "input[name=level][value=ERROR]").click()
        browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        _wait(browser, EC.url_contains("level=ERROR"))
        assert _row_ids(browser) == errors[:20]

        # A record of the web1 process, and its context.
        target = next(i for i in errors if 125 <= i <= 135)
        browser.get(live_server.url + "/applogs/%d/" % target)
        _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "table.neighbours")))
        assert context_heading in browser.page_source
        before = [int(e.get_attribute("data-id")) for e in browser.find_elements(By.CSS_SELECTOR, "tr.before")]
        after = [int(e.get_attribute("data-id")) for e in browser.find_elements(By.CSS_SELECTOR, "tr.after")]
        assert before == [i for i in range(target - 5, target) if i >= 120]
        assert after == [i for i in range(target + 1, target + 6) if i <= 140]
        permalink = browser.find_element(By.CSS_SELECTOR, ".permalink input").get_attribute("value")
        assert permalink == live_server.url + "/applogs/%d/" % target
        _screenshot(browser, "viewer-detail-%s.png" % language[:2])

        # A neighbour's link leads to that record's own page.
        browser.find_element(By.CSS_SELECTOR, "tr.after td.time a").click()
        _wait(browser, EC.url_to_be(live_server.url + "/applogs/%d/" % (target + 1)))


def test_chart_newer_older_and_follow_in_chromium(browser, live_server, records, logs):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    # The sample records have ids of their own; the writer's come after them.
    from django.db import connections

    with connections["applogs"].cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('applogs_logrecord', 'id'), 10000)")
    _log_in(browser, live_server, "support")
    browser.get(live_server.url + "/applogs/?level=ERROR")
    _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "table.records")))
    newest = sorted(records, key=lambda r: (r.created, r.id), reverse=True)
    expected = [r.id for r in newest if r.level == 40]
    assert _row_ids(browser) == expected[:20]
    assert not browser.find_elements(By.CSS_SELECTOR, 'a[rel="prev"]')

    # The volume chart: a bar narrows the list to its time, keeping the filter.
    bar = [b for b in browser.find_elements(By.CSS_SELECTOR, ".chart a.bar")
           if int(b.get_attribute("data-total")) > 0][3]
    total = int(bar.get_attribute("data-total"))
    bar.click()
    _wait(browser, EC.url_contains("since="))
    from urllib.parse import parse_qs, urlsplit

    from django.utils.dateparse import parse_datetime

    query = parse_qs(urlsplit(browser.current_url).query)
    assert query["level"] == ["ERROR"]
    since, until = parse_datetime(query["since"][0]), parse_datetime(query["until"][0])
    in_bar = [r.id for r in newest if r.level == 40 and since <= r.created <= until]
    assert 0 < total == len(in_bar)
    assert _row_ids(browser) == in_bar
    browser.get(live_server.url + "/applogs/?level=ERROR")
    _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "table.records")))

    # Two pages older, then one newer: the filter holds and the pages line up.
    for _ in range(2):
        table = browser.find_element(By.CSS_SELECTOR, "table.records")
        browser.find_element(By.CSS_SELECTOR, 'a[rel="next"]').click()
        _wait(browser, EC.staleness_of(table))
        _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "table.records")))
    assert _row_ids(browser) == expected[40:60]
    browser.find_element(By.CSS_SELECTOR, 'a[rel="prev"]').click()
    _wait(browser, EC.url_contains("before="))
    assert "level=ERROR" in browser.current_url
    assert _row_ids(browser) == expected[20:40]
    browser.find_element(By.CSS_SELECTOR, 'a[rel="prev"]').click()
    _wait(browser, lambda d: _row_ids(d) == expected[:20])
    assert not browser.find_elements(By.CSS_SELECTOR, 'a[rel="prev"]')

    # Follow: off by default; records logged after the page loaded appear on top once it is on,
    # only those matching the filter.
    toggle = browser.find_element(By.CSS_SELECTOR, "#applogs-follow input[name=follow]")
    assert not toggle.is_selected()
    logging.getLogger("api").error("Arrived after the page: <b>not bold</b>")
    logging.getLogger("api").info("Arrived too, but not an error")
    logs.flush(30)
    toggle.click()
    _wait(browser, lambda d: len(_row_ids(d)) == 21)
    first = browser.find_element(By.CSS_SELECTOR, "table.records tbody tr")
    assert first.find_element(By.CSS_SELECTOR, "td.message").text == "Arrived after the page: <b>not bold</b>"
    assert first.find_element(By.CSS_SELECTOR, "td.level").text == "ERROR"
    assert _row_ids(browser)[1:] == expected[:20]
    # And one logged while following.
    logging.getLogger("api").critical("Critical while following")
    logging.getLogger("api").error("Error while following")
    logs.flush(30)
    _wait(browser, lambda d: len(_row_ids(d)) == 22)
    assert browser.find_element(By.CSS_SELECTOR, "table.records tbody tr td.message").text == "Error while following"
    # The new row links to its detail page.
    browser.find_element(By.CSS_SELECTOR, "table.records tbody tr td.time a").click()
    _wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "pre.message")))
    assert browser.find_element(By.CSS_SELECTOR, "pre.message").text == "Error while following"
