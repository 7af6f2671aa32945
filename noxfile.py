"""The apps' test matrix: every Django LTS on every Python it supports that the machine has.

Run through scripts/test-apps, which starts the shared PostgreSQL server (scripts/lib/testpg.sh)
and picks the cells; `nox -l` lists them. Each cell is one session `tests-<python>(django='<x.y>')`
in its own virtualenv, made by the interpreter's own `venv` module (virtualenv can no longer make
Python 3.6 environments). Interpreters are found in pyenv (`pyenv root`/versions/*/bin) first,
then on PATH; a cell whose interpreter is missing is reported as skipped, with its name.

The apps are installed as the wheels the controller builds (session `wheels`), so every cell also
proves that pip on that Python accepts them; the tests themselves run from the source tree.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import nox

ROOT = os.path.dirname(os.path.abspath(__file__))
APPS = ("xlsexport", "applogs")
WHEELS = os.path.join(ROOT, ".nox", "wheels")

# Django LTS -> the Pythons it supports (oldest first). Django 1.11 also on 3.9: Debian bullseye's
# Python, which the legacy portals' hosts run it on, though 1.11 was released for 3.4-3.7.
MATRIX = {
    "1.11": ("3.6", "3.7", "3.9"),
    "2.2": ("3.6", "3.7", "3.8", "3.9"),
    "3.2": ("3.6", "3.7", "3.8", "3.9", "3.10"),
    "4.2": ("3.8", "3.9", "3.10", "3.11", "3.12"),
    "5.2": ("3.10", "3.11", "3.12", "3.13"),
}
# The one cell that also runs the headless Chromium test (selenium 4 needs Python 3.8+) and opens
# exports in LibreOffice.
BROWSER_CELL = ("5.2", "3.13")
# The cells that also run the load tests (marker `heavy`): the oldest and the newest Python.
HEAVY_CELLS = (("1.11", "3.6"), ("5.2", "3.13"))

# What each Django needs besides the apps' own dependencies. psycopg2 2.9 breaks Django < 3.1.
DJANGO_PINS = {
    "1.11": ["Django>=1.11,<2.0", "psycopg2-binary>=2.7,<2.9"],
    "2.2": ["Django>=2.2,<3.0", "psycopg2-binary>=2.8,<2.9"],
    "3.2": ["Django>=3.2,<4.0", "psycopg2-binary>=2.8"],
    "4.2": ["Django>=4.2,<5.0", "psycopg2-binary>=2.9"],
    "5.2": ["Django>=5.2,<6.0", "psycopg2-binary>=2.9"],
}

# The last pip releases for the old Pythons.
PIP = {"3.6": "pip>=21.3,<22", "3.7": "pip>=23,<24.1"}

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]


def _pyenv_bins():
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        try:
            root = subprocess.check_output(["pyenv", "root"], universal_newlines=True).strip()
        except (OSError, subprocess.CalledProcessError):
            root = None
    if not root:
        return []
    return sorted(glob.glob(os.path.join(root, "versions", "*", "bin")))


# nox looks interpreters (python3.6 ...) up on PATH: pyenv's real binaries before its shims.
os.environ["PATH"] = os.pathsep.join(_pyenv_bins() + [os.environ.get("PATH", "")])


def _cells():
    for django, pythons in MATRIX.items():
        for python in pythons:
            tags = ["all"]
            if python in (pythons[0], pythons[-1]):
                tags.append("ci")
            if (django, python) == BROWSER_CELL:
                tags.append("browser")
            yield nox.param(python, django, tags=tags)


@nox.session(python=False)
def wheels(session):
    """Build both apps as py3-none-any wheels with the controller's Python, as the role does."""
    os.makedirs(WHEELS, exist_ok=True)
    # Built aside and moved in, so a run that is installing them meanwhile sees whole files.
    with tempfile.TemporaryDirectory(dir=WHEELS) as tmp:
        for app in APPS:
            # Without build isolation (setuptools from requirements-dev.txt): a fresh build
            # environment per app costs more than the build itself.
            session.run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", tmp, os.path.join(ROOT, "files", app + "_app"), external=True)
        built = sorted(os.listdir(tmp))
        for name in built:
            if not name.endswith("-py3-none-any.whl"):
                session.error("%s is not a pure-Python py3-none-any wheel" % name)
            os.replace(os.path.join(tmp, name), os.path.join(WHEELS, name))
    for old in os.listdir(WHEELS):
        if old.endswith(".whl") and old not in built:
            os.remove(os.path.join(WHEELS, old))
    session.log("built %s" % ", ".join(built))


def _wheel(app):
    found = glob.glob(os.path.join(WHEELS, "django_%s-*-py3-none-any.whl" % app))
    if len(found) != 1:
        raise RuntimeError("no wheel of %s in %s: run `nox -s wheels` first" % (app, WHEELS))
    return found[0]


@nox.session
@nox.parametrize("python,django", list(_cells()))
def tests(session, django):
    """One cell of the matrix: both apps against the shared PostgreSQL."""
    if not os.environ.get("APPLOGS_TEST_PGPORT"):
        session.error("APPLOGS_TEST_PG* are not set: run scripts/test-apps (it starts PostgreSQL)")
    heavy = (django, session.python) in HEAVY_CELLS
    if os.environ.get("APPLOGS_TEST_SERVER_ALONE") == "only" and not heavy:
        session.skip("the tests that need the server alone are load tests: they run in %s"
                     % ", ".join("Django %s on Python %s" % cell for cell in HEAVY_CELLS))
    # Newest pip the interpreter can run (21.3.x on 3.6), as a portal's virtualenv has. Named
    # explicitly: the pip that 3.6's venv bundles does not skip releases that need a newer Python.
    session.install("-q", "--upgrade", PIP.get(session.python, "pip"))
    wheels = [_wheel("xlsexport"), _wheel("applogs")]
    session.install("-q", wheels[0], wheels[1] + "[test]", *DJANGO_PINS[django])
    # The same version number may have been installed from an older build.
    session.install("-q", "--force-reinstall", "--no-deps", *wheels)

    # One PostgreSQL server for every cell of a run; each cell has its own databases (and spool),
    # so cells can run side by side.
    cell = "dj%s_py%s" % (django.replace(".", ""), session.python.replace(".", ""))
    env = {
        "APPLOGS_TEST_DEFAULT_NAME": "out_db_" + cell,
        "APPLOGS_TEST_APPLOGS_NAME": "app_logs_" + cell,
        "XLSEXPORT_TEST_NAME": "xlsexport_" + cell,
        "APPLOGS_TEST_SPOOL_DIR": os.path.join(os.environ.get("APPLOGS_TEST_SPOOL_DIR", "/tmp"), cell),
        # The browser test runs in one cell only (it is slow); there a missing Chromium fails it.
        "APPLOGS_TEST_BROWSER": "1" if (django, session.python) == BROWSER_CELL else "0",
        # So do the tests that open exports in LibreOffice (xlsexport.testing).
        "XLSEXPORT_TEST_LIBREOFFICE": "1" if (django, session.python) == BROWSER_CELL else "0",
        # The 100,000-row export read back cell by cell takes minutes of CPU: at that size in the
        # browser's cell, at 10,000 rows in the other load-test cell.
        "APPLOGS_TEST_EXPORT_ROWS": "100000" if (django, session.python) == BROWSER_CELL else "10000",
        # The caller may ask for the load tests in another cell too (scripts/test: on PostgreSQL 13).
        "APPLOGS_TEST_HEAVY": os.environ.get("APPLOGS_TEST_HEAVY") or ("1" if heavy else "0"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    session.log("Django %s on Python %s (%s)" % (
        django, session.python,
        session.run("python", "-c", "import django, sys; print(django.get_version(), sys.version.split()[0])",
                    silent=True).strip()))
    only = os.environ.get("APPLOGS_TEST_APPS")
    if os.environ.get("APPLOGS_TEST_SERVER_ALONE") == "only":
        only = "applogs"  # the tests that need the server alone (see tests/conftest.py)
    for app in APPS:
        if only and app != only:
            continue
        with session.chdir(os.path.join(ROOT, "files", app + "_app")):
            session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=5",
                        *session.posargs, env=env)
