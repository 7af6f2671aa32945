__version__ = "1.3.0"

# Django < 3.2 uses the app's AppConfig subclass only when it is named here.
import django  # noqa: E402

if django.VERSION < (3, 2):
    default_app_config = "xlsexport.apps.XlsExportConfig"
