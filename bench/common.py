"""Shared helpers of the benchmark scripts: Django setup, the logged-in client, statistics, result
files, machine facts."""
import datetime
import json
import os
import platform
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.environ.get("BENCH_RESULTS_DIR") or os.path.join(ROOT, ".cache", "bench-results")


# Nanosecond counter; Python 3.6 has only the float one.
perf_counter_ns = getattr(time, "perf_counter_ns", None) or (lambda: int(time.perf_counter() * 1e9))


def setup_django(dataset=None):
    if dataset == "scratch":
        # bench/compat gives each Django version scratch databases of its own.
        dataset = os.environ.get("BENCH_SCRATCH", "scratch")
    if dataset:
        os.environ["BENCH_DATASET"] = dataset
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def superuser_client():
    """Django's test Client logged in as the benchmark's superuser (created on first use)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    # No setup_test_environment(): it instruments template rendering (the Client would then copy
    # every template context), which a real server does not do.
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    return client


def rows_loaded(cursor):
    """The number of rows bench/load.py recorded in bench_meta for this data set, or None."""
    cursor.execute("SELECT value FROM bench_meta WHERE key = 'rows'")
    row = cursor.fetchone()
    return int(row[0]) if row else None


def form_time(dt):
    """dt in UTC, as the viewer's filter form reads it under the benchmark's default TIME_ZONE."""
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def median(values):
    return statistics.median(values)


def machine():
    info = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024)
        info["loadavg_start"] = os.getloadavg()  # taken when the results are saved, i.e. at the end
    except OSError:
        pass
    try:
        import django

        info["django"] = django.get_version()
        try:
            from importlib.metadata import version
        except ImportError:  # Python < 3.8
            import pkg_resources

            def version(name):
                return pkg_resources.get_distribution(name).version

        info["django_db_logger"] = version("django-db-logger")
        info["django_applogs"] = version("django-applogs")
        info["psycopg2"] = version("psycopg2-binary")
    except Exception:
        pass
    try:
        from django.db import connections

        with connections["applogs"].cursor() as cur:
            cur.execute("SHOW server_version")
            info["postgresql"] = cur.fetchone()[0]
    except Exception:
        pass
    try:
        info["git"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                     stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    except OSError:
        pass
    return info


def save(name, data):
    os.makedirs(RESULTS_DIR, exist_ok=True)
    data = dict(data)
    data["benchmark"] = name
    data["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data["machine"] = machine()
    path = os.path.join(RESULTS_DIR, name + ".json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)
    print(f"{name}: results written to {os.path.relpath(path, ROOT)}", flush=True)
    return path
