from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext as _, gettext_lazy


def check_xlsxwriter(app_configs=None, **kwargs):
    """xlsexport.E001: XlsxWriter is missing (e.g. the app was installed with --no-deps). Without
    this, the admin would just lose its export action and the viewer's export would fail."""
    try:
        import xlsxwriter  # noqa: F401
    except ImportError:
        return [
            checks.Error(
                _("xlsexport needs the XlsxWriter package, which cannot be imported."),
                hint=_("Install it into the same virtualenv: pip install 'XlsxWriter>=3.0'."),
                obj="xlsexport",
                id="xlsexport.E001",
            )
        ]
    return []


class XlsExportConfig(AppConfig):
    name = "xlsexport"
    verbose_name = gettext_lazy("XLSX export")

    def ready(self):
        checks.register(check_xlsxwriter)
