"""A workbook read the way the people who download it read it: opened by LibreOffice Calc.

For the tests of xlsexport and of the apps that export through it. openpyxl is a lenient reader;
LibreOffice is the spreadsheet application the support staff use, and it evaluates formulas, so
a formula the sanitising let through shows as its result instead of its text.

XLSEXPORT_TEST_LIBREOFFICE=1 (the test matrix's browser cell) makes a missing
LibreOffice a failure, not a skip; =0 skips; unset, the tests run where LibreOffice is installed.
"""
import csv
import io
import os
import shutil
import subprocess
import tempfile

ENV = "XLSEXPORT_TEST_LIBREOFFICE"
SOFFICE = "soffice"
# Comma, double quote, UTF-8, from line 1; each cell as Calc shows it (in its number format, a
# formula as its result).
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false"


def soffice():
    """The path of LibreOffice's soffice, or None where the tests do not open workbooks in it; a
    failure where they must and it is missing."""
    wanted = os.environ.get(ENV)
    path = shutil.which(SOFFICE) if wanted != "0" else None
    if path is None and wanted == "1":
        import pytest

        pytest.fail("soffice missing: scripts/setup installs libreoffice-calc-nogui")
    return path


def soffice_or_skip():
    """The path of LibreOffice's soffice, or the test is skipped (or failed, where it must run)."""
    path = soffice()
    if path is None:
        import pytest

        pytest.skip("LibreOffice: not opened in this cell of the test matrix, or soffice is missing"
                    " (apt-get install libreoffice-calc-nogui)")
    return path


def libreoffice_rows(data, soffice=SOFFICE, timeout=900):
    """The first sheet of the XLSX `data` (bytes) as LibreOffice Calc shows it: a list of rows,
    each a list of the cells' text. Raises AssertionError when LibreOffice cannot load the file."""
    with tempfile.TemporaryDirectory(prefix="xlsexport-libreoffice-") as tmp:
        book = os.path.join(tmp, "book.xlsx")
        with open(book, "wb") as f:
            f.write(data)
        # A profile of its own: runs side by side never share (or wait for) one.
        profile = "file://" + os.path.join(tmp, "profile")
        done = subprocess.run(
            [soffice, "-env:UserInstallation=" + profile, "--headless", "--norestore",
             "--convert-to", CSV_FILTER, "--outdir", os.path.join(tmp, "out"), book],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)
        converted = os.path.join(tmp, "out", "book.csv")
        assert os.path.exists(converted), "LibreOffice did not load the workbook: %s" % done.stdout
        with io.open(converted, encoding="utf-8", newline="") as f:
            return list(csv.reader(f))
