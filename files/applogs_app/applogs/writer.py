"""The background writer, in parts (see each module):

    rows      the row tuple, its column limits, the COPY and spool encodings
    sink      the writer's own connection; COPY with bad-row fallback and a stall watchdog
    spool     private files for what memory cannot hold, replayed in order
    listener  the bounded queue and the thread that moves rows from memory and spool to the sink

This module keeps the names other parts of the app import.
"""
from .listener import (  # noqa: F401
    Options, Writer, all_writers, get_writer, in_writer_thread, shutdown_all, spool_prefix,
)
from .rows import COLUMNS  # noqa: F401

# For the management commands; the table's name is the model's (rows.table()).
TABLE = "applogs_logrecord"
