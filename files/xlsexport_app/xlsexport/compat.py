"""Every difference between the Django (1.11 to 5.2) and Python (3.6 to 3.13) versions xlsexport
runs on, in one place; the rest of the package is written against the newest."""
import django
from django.http import FileResponse

DJANGO = django.VERSION[:2]
# Django 2.1+: the "view" permission; before, the admin (and so its actions) needs "change".
HAS_VIEW_PERMISSION = DJANGO >= (2, 1)


def iterate(queryset, chunk_size):
    """queryset.iterator(chunk_size=...): Django 2.0+; before, rows come 100 at a time (still a
    server-side cursor on PostgreSQL, so memory stays flat)."""
    if DJANGO >= (2, 0):
        return queryset.iterator(chunk_size=chunk_size)
    return queryset.iterator()


if DJANGO >= (2, 1):

    def attachment_response(fileobj, filename, content_type):
        return FileResponse(fileobj, as_attachment=True, filename=filename, content_type=content_type)

else:
    from urllib.parse import quote

    def attachment_response(fileobj, filename, content_type):
        """FileResponse(as_attachment=True, filename=...) as Django 2.1+ builds it."""
        response = FileResponse(fileobj, content_type=content_type)
        try:
            filename.encode("ascii")
            disposition = 'attachment; filename="%s"' % filename.replace("\\", "\\\\").replace('"', r"\"")
        except UnicodeEncodeError:
            disposition = "attachment; filename*=utf-8''%s" % quote(filename)
        response["Content-Disposition"] = disposition
        return response


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
