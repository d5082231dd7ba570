"""Exports not saved as UTF-8, and warnings that name the export's own rows once.

A "CSV" saved by Excel on Windows is cp1252 text. The mapping file names it
(``encoding = "cp1252"``), and both ways of reading a log (into pandas, or left on disk
for DuckDB) then read the same names; without it the message says what to do.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.cli.main import main
from cis_eval.errors import DataValidationError, DesignWarning

FIXTURES = Path(__file__).parent / "fixtures" / "affiliate"
ACCENTED = "María López"


def _export(tmp_path: Path, *, encoding: str | None, write_as: str = "cp1252") -> Path:
    for f in ("affiliate_export.xlsx", "mapping.toml"):
        shutil.copy(FIXTURES / f, tmp_path / f)
    text = (FIXTURES / "service_log.csv").read_text(encoding="utf-8")
    assert "Maria Lopez" in text
    (tmp_path / "service_log.csv").write_bytes(
        text.replace("Maria Lopez", ACCENTED).encode(write_as)
    )
    mapping = tmp_path / "mapping.toml"
    if encoding is not None:
        m = mapping.read_text(encoding="utf-8")
        mapping.write_text(
            m.replace("[contacts]\n", f'[contacts]\nencoding = "{encoding}"\n', 1),
            encoding="utf-8",
        )
    return mapping


def _coordinators(mapping: Path, *, on_disk: bool) -> pd.DataFrame:
    export = ce.load_export(mapping, log_on_disk=on_disk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ce.fidelity(
            export.roster,
            export.contacts_log if on_disk else export.contacts,
            export.coordinators,
        )
    return res.to_frame("coordinator")


@pytest.mark.parametrize("on_disk", [False, True])
def test_a_cp1252_log_is_read_when_the_mapping_names_it(tmp_path, on_disk):
    mapping = _export(tmp_path, encoding="cp1252")
    before = (tmp_path / "service_log.csv").read_bytes()
    coords = _coordinators(mapping, on_disk=on_disk)
    assert ACCENTED in set(coords["coordinator_id"])
    assert (tmp_path / "service_log.csv").read_bytes() == before  # the input is untouched


def test_both_ways_of_reading_agree_on_a_cp1252_log(tmp_path):
    mapping = _export(tmp_path, encoding="windows-1252")  # an alias of the same codec
    pd.testing.assert_frame_equal(
        _coordinators(mapping, on_disk=False), _coordinators(mapping, on_disk=True)
    )


@pytest.mark.parametrize("on_disk", [False, True])
def test_without_the_key_the_message_says_what_to_do(tmp_path, on_disk):
    mapping = _export(tmp_path, encoding=None)
    with pytest.raises(DataValidationError) as exc:
        _coordinators(mapping, on_disk=on_disk)
    text = str(exc.value)
    assert "service_log.csv" in text and "UTF-8" in text and 'encoding = "cp1252"' in text


def test_bytes_that_are_not_the_named_encoding_are_an_error_with_a_line(tmp_path):
    # UTF-8 bytes declared as ASCII: the first accented name is on line 7
    mapping = _export(tmp_path, encoding="ascii", write_as="utf-8")
    for on_disk in (False, True):
        with pytest.raises(DataValidationError) as exc:
            _coordinators(mapping, on_disk=on_disk)
        assert "is not ascii text (line 7" in str(exc.value)


def test_a_late_byte_of_another_encoding_is_a_user_error_on_disk(tmp_path):
    # past the rows read to find the header: DuckDB meets it while reading the log
    mapping = _export(tmp_path, encoding=None, write_as="utf-8")
    raw = (tmp_path / "service_log.csv").read_bytes()
    at = raw.index(ACCENTED.encode("utf-8"), len(raw) // 2)
    (tmp_path / "service_log.csv").write_bytes(
        raw[:at] + ACCENTED.encode("cp1252") + raw[at + len(ACCENTED.encode("utf-8")) :]
    )
    with pytest.raises(DataValidationError, match="is not UTF-8 text"):
        _coordinators(mapping, on_disk=True)
    out = tmp_path / "r.html"
    assert main(["fidelity", "--mapping", str(mapping), "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.parametrize("value", ['"klingon"', "12", "true"])
def test_an_unknown_encoding_names_the_key(tmp_path, value):
    mapping = _export(tmp_path, encoding=None)
    m = mapping.read_text(encoding="utf-8")
    mapping.write_text(
        m.replace("[contacts]\n", f"[contacts]\nencoding = {value}\n", 1), encoding="utf-8"
    )
    assert main(["map", "--check", str(mapping)]) == 2
    with pytest.raises(DataValidationError, match=r"\[contacts\] encoding.*unknown text encoding"):
        ce.load_export(mapping)


def test_a_warning_names_the_exports_rows_once(tmp_path, capsys):
    # Contacts by a coordinator missing from the staff sheet, first in spreadsheet rows
    # 7, 10, 15, 18 and 31 of a log with three title rows: said once, with those rows.
    mapping = _export(tmp_path, encoding="cp1252")
    out = tmp_path / "report.html"
    assert main(["fidelity", "--mapping", str(mapping), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "not in the coordinators table" in x]
    assert len(lines) == 1, err
    assert "(rows 7, 10, 15, 18, 31 and " in lines[0]
    # and the same rows through the Python API on the in-memory log
    export = ce.load_export(mapping)
    with pytest.warns(DesignWarning, match=r"rows 7, 10, 15, 18, 31 "):
        ce.fidelity(export.roster, export.contacts, export.coordinators)


# ----------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_an_export_with_another_delimiter_reads_as_with_commas(tmp_path, sep):
    # Excel in some locales saves ";" and other systems tabs or pipes; title rows above
    # the header hold no delimiter at all, so the header row decides.
    for f in ("affiliate_export.xlsx", "mapping.toml", "service_log.csv"):
        shutil.copy(FIXTURES / f, tmp_path / f)
    text = (FIXTURES / "service_log.csv").read_text(encoding="utf-8")
    assert '"' not in text  # no quoted commas: swapping the delimiter keeps every cell
    (tmp_path / "other.csv").write_text(text.replace(",", sep), encoding="utf-8")
    m = (tmp_path / "mapping.toml").read_text(encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text(m.replace('"service_log.csv"', '"other.csv"'), encoding="utf-8")
    want = _coordinators(tmp_path / "mapping.toml", on_disk=False)
    for on_disk in (False, True):
        pd.testing.assert_frame_equal(_coordinators(other, on_disk=on_disk), want)
    assert main(["map", "--check", str(other)]) == 0
    draft = tmp_path / "draft.toml"
    args = ["map", "--init", str(tmp_path / "affiliate_export.xlsx"), str(tmp_path / "other.csv")]
    assert main([*args, "--out", str(draft)]) == 0
    assert '"Service Category" = "service_type"' in draft.read_text(encoding="utf-8")


def test_the_delimiter_is_the_one_that_splits_the_header():
    from cis_eval.io import export_delimiter

    text = "Report title; with a semicolon\n\nID,Name,Minutes\n1,A;B,30\n2,C,45\n"
    assert export_delimiter(text, ",") == ","
    assert export_delimiter(text, ",", ["ID", "Minutes"]) == ","
    assert export_delimiter(text.replace(",", "\t"), ",", ["ID", "Minutes"]) == "\t"
    assert export_delimiter("one cell only\n", ",") == ","  # nothing to go on: the default


# ----------------------------------------------------------------------------- rows


def _problem_rows(folder: Path, on_disk: bool) -> dict[str, tuple[int, ...]]:
    """Rows named by each column's problem, wherever the route finds it."""
    try:
        export = ce.load_export(folder / "mapping.toml", log_on_disk=on_disk)
        log = export.contacts_log if on_disk else export.contacts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ce.fidelity(export.roster, log, export.coordinators)
    except DataValidationError as exc:
        return {str(p.column): p.rows for p in exc.problems}
    raise AssertionError("no problem found")


@pytest.mark.parametrize("bad", [(5, "Astrology"), (4, "9000")])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_rows_below_blank_lines_are_the_spreadsheets(tmp_path, bad, newline):
    # Blank lines in the body of the log (DuckDB skips them): the row named after them is
    # still the row a spreadsheet shows, on disk as in memory.
    for f in ("affiliate_export.xlsx", "mapping.toml"):
        shutil.copy(FIXTURES / f, tmp_path / f)
    lines = (FIXTURES / "service_log.csv").read_text(encoding="utf-8").split("\n")
    field, value = bad
    cells = lines[30].split(",")
    cells[field] = value
    lines[30] = ",".join(cells)
    lines[25:25] = ["", ""]  # two blank lines above the bad row
    lines.insert(10, "")  # and one more higher up
    (tmp_path / "service_log.csv").write_bytes(newline.join(lines).encode("utf-8"))
    row = next(i + 1 for i, x in enumerate(lines) if f",{value}," in x)
    for on_disk in (False, True):
        found = _problem_rows(tmp_path, on_disk)
        assert [r for r in found.values() if row in r], (on_disk, found, row)
