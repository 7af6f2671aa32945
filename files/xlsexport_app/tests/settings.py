"""Settings for the xlsexport tests: the PostgreSQL cluster of scripts/lib/testpg.sh (APPLOGS_TEST_PG*),
so the action runs with server-side cursors as in production."""
import os

SECRET_KEY = "xlsexport-tests-not-secret"
DEBUG = False
USE_TZ = True
# Not UTC, so the tests see that times are converted.
TIME_ZONE = "Europe/Moscow"
ALLOWED_HOSTS = ["*"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("APPLOGS_TEST_PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("APPLOGS_TEST_PGPORT", "5432"),
        "USER": os.environ.get("APPLOGS_TEST_PGUSER", "wfm"),
        "PASSWORD": os.environ.get("APPLOGS_TEST_PGPASSWORD", "wfm"),
        # One name per test-matrix cell, so cells can share the server.
        "NAME": os.environ.get("XLSEXPORT_TEST_NAME", "xlsexport"),
    },
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "xlsexport",
    "tests",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
