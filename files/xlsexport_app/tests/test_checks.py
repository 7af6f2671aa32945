import sys

from django.core import checks

from xlsexport.apps import check_xlsxwriter


def test_no_error_when_xlsxwriter_is_installed():
    assert check_xlsxwriter() == []
    assert not [e for e in checks.run_checks() if e.id == "xlsexport.E001"]


def test_error_when_xlsxwriter_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "xlsxwriter", None)  # makes `import xlsxwriter` raise ImportError
    errors = check_xlsxwriter()
    assert [e.id for e in errors] == ["xlsexport.E001"]
    assert "XlsxWriter" in errors[0].msg
    assert [e.id for e in checks.run_checks() if e.id == "xlsexport.E001"] == ["xlsexport.E001"]
