"""Database-backed application logging for the Django portals."""

__version__ = "1.1.0"
