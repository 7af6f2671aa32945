from django.apps import AppConfig


class ApplogsConfig(AppConfig):
    name = "applogs"
    verbose_name = "Application logs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks

        from .checks import check_xlsexport_installed

        checks.register(check_xlsexport_installed)
