"""APPLOGS_* settings with their defaults.

Read lazily: the handler is built while Django configures logging, and nothing here may need the
app registry.
"""
import os

DEFAULTS = {
    # Alias in settings.DATABASES that holds the applogs tables.
    "DATABASE": "applogs",
    # Rows per INSERT/COPY and the longest a record waits in memory before it is written (seconds).
    "BATCH_SIZE": 5000,
    "FLUSH_INTERVAL": 1.0,
    # Records held in memory, by count and by characters (message, traceback and extra, plus a few
    # hundred for the rest); past either bound records go to the spool, in order.
    "QUEUE_SIZE": 10000,
    "QUEUE_BYTES": 32 * 1024 * 1024,
    # None: $XDG_CACHE_HOME/applogs/spool or ~/.cache/applogs/spool (the portal user's own). The
    # directory must be owned by the portal's user and writable by nobody else, or it is refused
    # (records are then kept in memory only, and counted when dropped).
    "SPOOL_DIR": None,
    # Past either bound records are dropped (counted and reported): bytes of spool files of one
    # process, and the free space the spool always leaves on its file system.
    "SPOOL_MAX_BYTES": 1024 * 1024 * 1024,
    "SPOOL_MIN_FREE_BYTES": 256 * 1024 * 1024,
    # Characters of message, traceback and extra kept; the rest is replaced by a marker.
    "MAX_MESSAGE_SIZE": 64 * 1024,
    # Seconds the interpreter exit waits for pending records; what is not written by then is spooled.
    "EXIT_TIMEOUT": 5.0,
    # Seconds to connect (at most half of EXIT_TIMEOUT is used), and the longest a write may take
    # before the connection is treated as dead (also the server-side statement_timeout).
    "CONNECT_TIMEOUT": 2,
    "WRITE_TIMEOUT": 60.0,
    # Proxies in front of the portal that append to X-Forwarded-For. 1 = the document's filter F
    # (last hop); 0 = ignore the header and use REMOTE_ADDR.
    "TRUSTED_PROXIES": 1,
    # Viewer.
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
    """Inside the user's own cache directory: nobody else can create it first."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "applogs", "spool")
