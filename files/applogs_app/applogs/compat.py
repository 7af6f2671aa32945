"""Every difference between the Django (1.11 to 5.2) and Python (3.6 to 3.13) versions applogs runs
on, in one place; the rest of the package is written against the newest.

Importing this module imports no models and reads no settings: the handler and the filter are
built while Django configures logging.

Elsewhere, because it cannot live here: `default_app_config` in __init__.py (Django < 3.2 reads it
before importing anything else of the app); the templates use {% trans %}, which every version has
({% translate %} is 3.1+); the admin's change list template for Django < 2.1
(admin/applogs/logrecord/change_list_legacy.html); the migrations build the schema in SQL; the
writer's fork detection by pid in emit (Python 3.6 has no os.register_at_fork).
"""
import asyncio
import sys
import threading

import django

DJANGO = django.VERSION[:2]

# --- Python ---------------------------------------------------------------------------------------

try:
    from contextvars import ContextVar
except ImportError:  # Python 3.6: no contextvars; a per-thread value (Django <= 3.2 there, sync views)

    class _Token:
        __slots__ = ("old",)

        def __init__(self, old):
            self.old = old

    class ContextVar:
        _MISSING = object()

        def __init__(self, name, default=None):
            self.name = name
            self._default = default
            self._local = threading.local()

        def get(self):
            return getattr(self._local, "value", self._default)

        def set(self, value):
            token = _Token(getattr(self._local, "value", self._MISSING))
            self._local.value = value
            return token

        def reset(self, token):
            if token.old is self._MISSING:
                self._local.__dict__.pop("value", None)
            else:
                self._local.value = token.old


# --- asgiref / async middleware -------------------------------------------------------------------

try:  # asgiref 3.6+ (Django 4.2+, or a newer asgiref under 3.x)
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
except ImportError:  # Django 3.x with an older asgiref, or Django <= 2.2 without asgiref
    iscoroutinefunction = asyncio.iscoroutinefunction

    def markcoroutinefunction(func):
        # What Django 3.1-4.1 looked for to treat a middleware instance as async.
        func._is_coroutine = asyncio.coroutines._is_coroutine
        return func


# --- models and migrations ------------------------------------------------------------------------

if DJANGO >= (3, 1):
    from django.db.models import JSONField
else:  # the same jsonb column, from django.contrib.postgres (which needs not be in INSTALLED_APPS)
    from django.contrib.postgres.fields import JSONField  # noqa: F401

# --- admin ----------------------------------------------------------------------------------------

# Also in xlsexport.compat, and not imported from there: applogs must import without xlsexport
# installed, so that its system check, not an ImportError, says what is missing.
if DJANGO >= (3, 2):
    from django.contrib.admin import display
else:

    def display(function=None, boolean=None, ordering=None, description=None, empty_value=None):
        """django.contrib.admin.display: the attributes older admins read."""

        def decorator(func):
            if boolean is not None:
                func.boolean = boolean
            if ordering is not None:
                func.admin_order_field = ordering
            if description is not None:
                func.short_description = description
            if empty_value is not None:
                func.empty_value_display = empty_value
            return func

        return decorator if function is None else decorator(function)


# The "view" permission exists from Django 2.1 on; before, applogs declares view_logrecord itself
# (models.LogRecord.Meta) so the viewer's permission check means the same everywhere.
HAS_VIEW_PERMISSION = DJANGO >= (2, 1)
# Django 2.1+ looks for the admin's actions, search form and pagination templates per model.
ADMIN_MODEL_TEMPLATES = DJANGO >= (2, 1)
# The admin changelist's ?p= page number is 0-based before Django 3.1, 1-based since.
ADMIN_FIRST_PAGE = 1 if DJANGO >= (3, 1) else 0

# --- URLs -----------------------------------------------------------------------------------------

if DJANGO >= (2, 0):
    from django.urls import path, re_path  # noqa: F401
else:
    from django.conf.urls import url as re_path

    _CONVERTERS = {"int": r"[0-9]+", "str": r"[^/]+"}

    def path(route, view, kwargs=None, name=None):
        """django.urls.path for the routes applogs uses ("", "export/", "<int:pk>/")."""
        import re

        def convert(match):
            kind, _, arg = match.group(1).rpartition(":")
            return "(?P<%s>%s)" % (arg, _CONVERTERS[kind or "str"])

        regex = "^" + re.sub(r"<([^>]+)>", convert, route) + "$"
        return re_path(regex, view, kwargs, name)


# --- forms ----------------------------------------------------------------------------------------

from django import forms  # noqa: E402

if DJANGO >= (3, 1):
    DateTimeField = forms.DateTimeField
else:
    from django.forms.utils import from_current_timezone
    from django.utils.dateparse import parse_datetime

    class DateTimeField(forms.DateTimeField):
        """Reads ISO 8601 ("2024-01-10T09:00", "...Z", "...+03:00") as Django 3.1+ does."""

        def to_python(self, value):
            if isinstance(value, str) and value.strip():
                try:
                    parsed = parse_datetime(value.strip())
                except ValueError:
                    parsed = None
                if parsed is not None:
                    return parsed if parsed.tzinfo is not None else from_current_timezone(parsed)
            return super().to_python(value)




def index(fields, name, opclasses=(), condition=None):
    """models.Index for a model's Meta and the migrations' state. Django < 2.2 cannot declare
    opclasses or a condition: there the state has the plain index of the same name, and the
    migrations' SQL builds the real one on every version."""
    from django.db import models

    if DJANGO >= (2, 2):
        kwargs = {}
        if opclasses:
            kwargs["opclasses"] = list(opclasses)
        if condition is not None:
            kwargs["condition"] = condition
        return models.Index(fields=list(fields), name=name, **kwargs)
    return models.Index(fields=list(fields), name=name)


# Request context in async views: Django 3.1+ has them, and a task-local context needs Python 3.7+
# (on 3.6 the context is per thread, so async requests served at once could see each other's).
ASYNC_CONTEXT = DJANGO >= (3, 1) and sys.version_info >= (3, 7)
