from django.apps import AppConfig


class XlsExportConfig(AppConfig):
    name = "xlsexport"
    verbose_name = "XLSX export"
