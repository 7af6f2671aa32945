"""Django settings for the benchmarks (bench/).

Two databases on the benchmark's private cluster (bench/lib/pg.sh exports BENCH_PG*):
`default` (the portal's database: auth, sessions, and the peer django-db-logger's StatusLog) and
`applogs` (applogs_logrecord). BENCH_DATASET picks which pair of databases:
  - `rows<N>`: the loaded data set of N rows (bench/load.py), used by bench/viewer.py;
  - `scratch`: empty tables, used by the handler benchmarks (they truncate them at will).

The portal-shaped part (apps, middleware, templates, the install document's router) is the applogs
test suite's (files/applogs_app/tests/settings.py); what differs is here.
"""
import os
import tempfile

from files.applogs_app.tests.settings import (  # noqa: F401 (settings)
    DEFAULT_AUTO_FIELD,
    INSTALLED_APPS as PORTAL_APPS,
    MIDDLEWARE,
    STATIC_URL,
    TEMPLATES,
)

SECRET_KEY = "applogs-bench-not-secret"
DEBUG = False  # DEBUG=True would record every query and distort the timings.
USE_TZ = True
TIME_ZONE = os.environ.get("BENCH_TIME_ZONE", "UTC")
ALLOWED_HOSTS = ["*"]

DATASET = os.environ.get("BENCH_DATASET", "scratch")

_pg = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": os.environ.get("BENCH_PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("BENCH_PGPORT", "5432"),
    "USER": os.environ.get("BENCH_PGUSER", "wfm"),
    "PASSWORD": os.environ.get("BENCH_PGPASSWORD", "wfm-bench"),
    # Persistent connections, as a portal under a WSGI server would keep them.
    "CONN_MAX_AGE": None,
}

DATABASES = {
    "default": dict(_pg, NAME=f"bench_{DATASET}_default"),
    "applogs": dict(_pg, NAME=f"bench_{DATASET}_logs"),
}

# The install document's router with applogs in IGNORED_APPS, as a portal runs it. django_db_logger
# (the peer) is not ignored, so its StatusLog lives on `default`, as it would in a portal.
DATABASE_ROUTERS = [
    "files.applogs_app.tests.portal_router.DefaultDBRouter",
    "applogs.db_router.LogsDBRouter",
]

INSTALLED_APPS = PORTAL_APPS + ["django.contrib.staticfiles", "django_db_logger"]

ROOT_URLCONF = "bench.urls"

# Fast hashing only for creating the benchmark's superuser; login is forced, never checked.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

APPLOGS_DATABASE = "applogs"
APPLOGS_SPOOL_DIR = os.environ.get("BENCH_SPOOL_DIR") or tempfile.mkdtemp(prefix="applogs-bench-spool-")

# The handler benchmarks attach handlers to their own loggers; nothing is configured here, so
# Django's own logging does not add work to the measured calls.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
}

# The peer's admin shows 10 rows per page by default; the same 100 rows as applogs' admin, so the
# changelists compare page for page.
DJANGO_DB_LOGGER_ADMIN_LIST_PER_PAGE = 100
