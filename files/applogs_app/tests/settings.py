"""Settings for the applogs test suite.

The PostgreSQL server comes from scripts/lib/testpg.sh (APPLOGS_TEST_PG* variables): a private
throwaway cluster per run, never SQLite, never mocks.
"""
import os
import tempfile

import django

SECRET_KEY = "applogs-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
if django.VERSION < (4, 0):
    # Set by every portal's settings (startproject's default); the default since Django 4.0.
    USE_L10N = True
ALLOWED_HOSTS = ["*"]

_pg = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": os.environ.get("APPLOGS_TEST_PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("APPLOGS_TEST_PGPORT", "5432"),
    "USER": os.environ.get("APPLOGS_TEST_PGUSER", "wfm"),
    "PASSWORD": os.environ.get("APPLOGS_TEST_PGPASSWORD", "wfm"),
}

# A subprocess started by a test (manage-style command) is pointed at the test databases by
# these two variables.
DATABASES = {
    "default": dict(_pg, NAME=os.environ.get("APPLOGS_TEST_DEFAULT_NAME", "out_db")),
    "applogs": dict(_pg, NAME=os.environ.get("APPLOGS_TEST_APPLOGS_NAME", "app_logs")),
}

# The portal's router first, as the install document orders them.
DATABASE_ROUTERS = [
    "tests.portal_router.DefaultDBRouter",
    "applogs.db_router.LogsDBRouter",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "xlsexport",
    "applogs",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "applogs.middleware.RequestContextMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

# Small batches and a short interval so the tests exercise batching; a per-run spool directory
# (from testpg.sh) so concurrent test runs never share spool files.
APPLOGS_DATABASE = "applogs"
APPLOGS_BATCH_SIZE = 500
APPLOGS_FLUSH_INTERVAL = 0.2
APPLOGS_SPOOL_DIR = os.environ.get("APPLOGS_TEST_SPOOL_DIR") or os.path.join(
    tempfile.gettempdir(), "applogs-test-spool")
if os.environ.get("APPLOGS_TEST_EXIT_TIMEOUT"):
    APPLOGS_EXIT_TIMEOUT = float(os.environ["APPLOGS_TEST_EXIT_TIMEOUT"])

# The document's LOGGING block, with the working filter in place of F.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "main": {"()": "applogs.filters.RequestContextFilter"},
    },
    "formatters": {
        "stamp": {
            "format": '%(levelname)s [%(asctime)s] %(ip)s "%(user)s" %(name)s.%(module)s %(message)s',
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "stamp",
            "filters": ["main"],
            "level": "WARNING",
        },
        "db": {
            "class": "applogs.handlers.DBLogsHandler",
            "filters": ["main"],
        },
    },
    "loggers": {
        "command": {"handlers": ["db", "console"], "level": "DEBUG", "propagate": False},
        "api": {"handlers": ["db", "console"], "level": "DEBUG", "propagate": False},
        "remote_service": {"handlers": ["db", "console"], "level": "DEBUG", "propagate": False},
    },
}
