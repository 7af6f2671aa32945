from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class XlsExportConfig(AppConfig):
    name = "xlsexport"
    verbose_name = gettext_lazy("XLSX export")
