"""APPLOGS_* settings with their defaults.

Read lazily: the handler is built while Django configures logging, and nothing here may need the
app registry.
"""
import os
import tempfile

DEFAULTS = {
    # Alias in settings.DATABASES that holds the applogs tables.
    "DATABASE": "applogs",
    # Rows per INSERT/COPY and the longest a record waits in memory before it is written (seconds).
    "BATCH_SIZE": 5000,
    "FLUSH_INTERVAL": 1.0,
    # Records held in memory; past it the writer spills to the spool (outage) or counts drops.
    "QUEUE_SIZE": 10000,
    # None: tempfile.gettempdir()/applogs-spool-<uid>.
    "SPOOL_DIR": None,
    # Characters of message (and traceback) kept; the rest is replaced by a marker.
    "MAX_MESSAGE_SIZE": 64 * 1024,
    # Seconds the interpreter exit waits for pending records.
    "EXIT_TIMEOUT": 5.0,
    # Proxies in front of the portal that append to X-Forwarded-For. 1 = the document's filter F
    # (last hop); 0 = ignore the header and use REMOTE_ADDR.
    "TRUSTED_PROXIES": 1,
    # Viewer (#5).
    "EXPORT_MAX_ROWS": 100000,
    "PAGE_SIZE": 100,
    # Partitions of the log table (applogs/partitions.py): one per "hour", "day", "week" or
    # "month" of record time (UTC), created this many days ahead by `manage.py applogs_purge`.
    "PARTITION_INTERVAL": "day",
    "PARTITION_AHEAD_DAYS": 7,
}


def get(name, override=None):
    """APPLOGS_<name>, unless an explicit (handler argument) override is given."""
    if override is not None:
        return override
    from django.conf import settings

    return getattr(settings, "APPLOGS_" + name, DEFAULTS[name])


def default_spool_dir():
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), "applogs-spool-%s" % uid)
