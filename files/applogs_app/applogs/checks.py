from django.apps import apps
from django.core.checks import Error
from django.utils.translation import gettext as _


def check_xlsexport_installed(app_configs=None, **kwargs):
    # Export goes through xlsexport (the install document makes it a requirement of applogs).
    if apps.is_installed("xlsexport"):
        return []
    try:
        import xlsexport  # noqa: F401
    except ImportError:
        hint = _("Install it (pip install django-xlsexport) and add 'xlsexport' to INSTALLED_APPS next to 'applogs'.")
    else:
        hint = _("Add 'xlsexport' to INSTALLED_APPS next to 'applogs'.")
    return [
        Error(
            _("applogs requires the 'xlsexport' app, which is not in INSTALLED_APPS."),
            hint=hint,
            obj="applogs",
            id="applogs.E001",
        )
    ]
