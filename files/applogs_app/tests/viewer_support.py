"""Shared helpers of the viewer, admin and export tests."""
import datetime
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connections
from django.test.utils import CaptureQueriesContext

from applogs.models import LogRecord

UTC = datetime.timezone.utc
BASE = datetime.datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
DATABASES = ["default", "applogs"]
viewer_db = pytest.mark.django_db(databases=DATABASES)

ROW_ID_RE = re.compile(r'data-id="(\d+)"')
NEXT_RE = re.compile(r'<a rel="next" href="([^"]+)"')


def record(**fields):
    values = {
        "created": BASE,
        "level": 20,
        "logger": "api",
        "message": "hello",
    }
    values.update(fields)
    return LogRecord(**values)


def make(*records):
    return LogRecord.objects.bulk_create(records)


def page_ids(response):
    return [int(i) for i in ROW_ID_RE.findall(response.content.decode())]


def next_link(response):
    match = NEXT_RE.search(response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


def user_with_view_permission(username="viewer"):
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="applogs", codename="view_logrecord"))
    return user


class QueryLog:
    """SQL sent to each database while the block runs."""

    def __init__(self):
        self.contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in DATABASES}

    def __enter__(self):
        for context in self.contexts.values():
            context.__enter__()
        return self

    def __exit__(self, *exc):
        for context in self.contexts.values():
            context.__exit__(*exc)

    def sql(self, alias):
        return [q["sql"] for q in self.contexts[alias].captured_queries]


@pytest.fixture
def viewer(client):
    client.force_login(user_with_view_permission())
    return client


@pytest.fixture
def nobody(client):
    client.force_login(User.objects.create_user("nobody", password="pw"))
    return client


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client
