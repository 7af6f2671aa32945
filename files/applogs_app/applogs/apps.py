from django.apps import AppConfig


class ApplogsConfig(AppConfig):
    name = "applogs"
    verbose_name = "Application logs"
    default_auto_field = "django.db.models.BigAutoField"
