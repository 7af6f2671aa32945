from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApplogsConfig(AppConfig):
    name = "applogs"
    verbose_name = _("Application logs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks

        from .checks import check_xlsexport_installed

        checks.register(check_xlsexport_installed)
