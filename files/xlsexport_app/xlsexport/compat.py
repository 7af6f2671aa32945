"""Every difference between the Django (1.11 to 5.2) and Python (3.6 to 3.13) versions xlsexport
runs on, in one place; the rest of the package is written against the newest."""
import re
import sys
import zipfile

import django

DJANGO = django.VERSION[:2]
# Django 2.1+: the "view" permission; before, the admin (and so its actions) needs "change".
HAS_VIEW_PERMISSION = DJANGO >= (2, 1)


def iterate(queryset, chunk_size):
    """queryset.iterator(chunk_size=...): Django 2.0+; before, rows come 100 at a time (still a
    server-side cursor on PostgreSQL, so memory stays flat)."""
    if DJANGO >= (2, 0):
        return queryset.iterator(chunk_size=chunk_size)
    return queryset.iterator()


if DJANGO >= (4, 2):
    from django.utils.http import content_disposition_header

    def attachment_disposition(filename):
        return content_disposition_header(True, filename)

else:
    from urllib.parse import quote

    def attachment_disposition(filename):
        """The Content-Disposition of a download, as Django 4.2+ builds it."""
        if re.match(r"^[\t \x21-\x7e]*$", filename):
            return 'attachment; filename="%s"' % filename.replace("\\", "\\\\").replace('"', r"\"")
        return "attachment; filename*=utf-8''%s" % quote(filename)


def zip_options():
    """Deflate at level 1: on log text it makes a file about a fifth larger than the default
    level 6, in a fraction of the time. Python 3.6's zipfile has no compresslevel (level 6 there)."""
    if sys.version_info >= (3, 7):
        return {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 1}
    return {"compression": zipfile.ZIP_DEFLATED}


# --- for code (and tests) that declare models and admins ------------------------------------------

if DJANGO >= (3, 1):
    from django.db.models import JSONField
else:
    from django.contrib.postgres.fields import JSONField  # noqa: F401

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
