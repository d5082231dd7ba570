"""Outputs are safe where they are opened: no live HTML in Markdown or on the console, no
unescaped LaTeX, and no spreadsheet formula in any CSV or Excel file the package writes."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import numpy as np
import openpyxl
import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.present.safety import (
    FORMULA_TRIGGERS,
    escape_latex,
    escape_markup,
    neutralise_formula,
    neutralise_formulas,
)

SCRIPT = "<script>alert(1)</script>"
HOSTILE = [
    '=HYPERLINK("http://example.invalid","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "-2+3",
    "\tx",
    "\r=1+1",
    "=1+1",
]
# Text that is only a formatted number: a spreadsheet reads it as a number, never as a
# formula, so tables keep their signed impacts as typed.
NUMBER_TEXT = ["-0.125", "+1.250**", "-1,200", "+3.5%", "-2.5e-05", "+84 pp", "-"]


def _quoted(text: str) -> str:
    """What a hostile cell becomes: a leading quote, carriage returns as line feeds."""
    return "'" + text.replace("\r", "\n")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cis_eval.cli", *args], capture_output=True, text=True, check=False
    )


def _assert_csv_safe(text: str) -> None:
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            assert (
                not cell.startswith(FORMULA_TRIGGERS) or cell in NUMBER_TEXT or _is_number(cell)
            ), repr(cell)


def _is_number(cell: str) -> bool:
    """A formatted number (signed, starred, with a unit word) or a dash: text, not a formula."""
    if set(cell) == {"-"}:
        return True
    head, _, unit = cell.partition(" ")
    try:
        float(head.replace(",", "").rstrip("*%"))
    except ValueError:
        return False
    return unit.isalpha() or unit == ""


def _assert_xlsx_safe(path) -> list[list[object]]:
    wb = openpyxl.load_workbook(path)
    values = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_TRIGGERS) or _is_number(cell.value)
            values.append([c.value for c in row])
    return values


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("text", HOSTILE)
def test_a_formula_gets_a_leading_quote(text):
    assert neutralise_formula(text) == _quoted(text)


@pytest.mark.parametrize("text", [*NUMBER_TEXT, "plain", "", "'=already quoted", "a=b"])
def test_numbers_and_plain_text_are_unchanged(text):
    assert neutralise_formula(text) == text


def test_frame_keeps_numbers_numeric_and_does_not_touch_its_input():
    frame = pd.DataFrame(
        {
            "text": HOSTILE,
            "negative": [-1, -2, -3, -4, -5, -6, -7],
            "float": np.linspace(-1.5, 1.5, 7),
            "category": pd.Categorical(["=bad"] + ["ok"] * 6),
        }
    )
    before = frame.copy()
    out = neutralise_formulas(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert out["text"].tolist() == [_quoted(t) for t in HOSTILE]
    assert (
        out["negative"].dtype == np.int64
        and out["negative"].tolist() == before["negative"].tolist()
    )
    assert out["float"].dtype == np.float64
    assert out["category"].tolist()[0] == "'=bad"
    assert neutralise_formulas(pd.DataFrame({"=x": [1]})).columns.tolist() == ["'=x"]


def test_control_characters_excel_cannot_hold_are_replaced(tmp_path):
    frame = pd.DataFrame({"a": ["x\x01y", "ok\x1f", "tab\tand\nline"]})
    path = ce.write_table(frame, tmp_path / "c.xlsx")
    values = [row[0] for row in _assert_xlsx_safe(path)[1:]]
    assert values == ["x\ufffdy", "ok\ufffd", "tab\tand\nline"]


def test_categories_that_would_merge_are_neutralised_cell_by_cell():
    frame = pd.DataFrame({"c": pd.Categorical(["=C", "'=C", "x\ry"])})
    assert neutralise_formulas(frame)["c"].tolist() == ["'=C", "'=C", "x\ny"]


def test_markup_escape_keeps_comparisons_and_blocks_tags():
    assert escape_markup(SCRIPT) == "&lt;script>alert(1)&lt;/script>"
    assert escape_markup("p < 0.01, n > 5") == "p < 0.01, n > 5"
    assert escape_markup("&amp; &#60; <!-- c --> <?x?> <img src=x>").count("&lt;") == 3
    assert escape_markup("a\x1b[31mred\nnext") == "a [31mred next"


def test_latex_escape_handles_every_special_character_once():
    assert escape_latex("\\{}") == r"\textbackslash{}\{\}"
    assert escape_latex("~^&%$#_") == r"\textasciitilde{}\textasciicircum{}\&\%\$\#\_"


# ----------------------------------------------------------------------------- Table


def _hostile_table() -> ce.Table:
    data = pd.DataFrame(
        {
            "School": [SCRIPT, HOSTILE[0], "A|B", "x\ny"],
            "Impact": [0.5, -0.25, 1.0, 2.0],
            SCRIPT: ["a", "b", "c", "d"],
        }
    )
    return ce.Table(
        data, title=f"Title {SCRIPT}", notes=(f"note {SCRIPT}",), formats={"Impact": "+.3f"}
    )


def test_markdown_and_text_carry_no_live_html():
    t = _hostile_table()
    for text in (t.to_markdown(), t.to_text(), str(t)):
        assert "<script" not in text and "</script" not in text
        assert "&lt;script>alert(1)&lt;/script>" in text
    md = t.to_markdown()
    # one table row per data row: a line break in a cell cannot split the table
    assert sum(line.startswith("| ") for line in md.splitlines()) == 2 + 4
    assert "A\\|B" in md


def test_html_escapes_cells_headers_title_and_notes():
    h = _hostile_table().to_html()
    assert "<script" not in h
    assert h.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4


def test_latex_escapes_cells_and_keeps_comments_on_one_line():
    data = pd.DataFrame({"Name": ["50% & $x_1$ #2 {a} ~ ^ \\"]})
    t = ce.Table(data, title="two\n\\input{secret}", notes=("n1\nn2",))
    tex = t.to_latex()
    assert (
        r"50\% \& \$x\_1\$ \#2 \{a\} \textasciitilde{} \textasciicircum{} \textbackslash{}" in tex
    )
    lines = tex.splitlines()
    assert lines[0] == "% two \\input{secret}"
    assert lines[-1] == "% Note: n1 n2"


def test_table_csv_quotes_formulas_but_not_formatted_numbers():
    text = _hostile_table().to_csv()
    _assert_csv_safe(text)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[2][0] == "'" + HOSTILE[0]
    assert [r[1] for r in rows[1:]] == ["+0.500", "-0.250", "+1.000", "+2.000"]


def test_report_markdown_escapes_every_block():
    rep = ce.Report(f"Report {SCRIPT}").heading(SCRIPT).text(SCRIPT).note(f"x\n# {SCRIPT}")
    md = rep.table(_hostile_table()).to_markdown()
    assert "<script" not in md
    # a line break in a name cannot start a new Markdown heading
    assert "\n# &lt;script" not in md


# ----------------------------------------------------------------------------- files


def _hostile_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": HOSTILE,
            "score": [-1.5, -2.0, 0.0, 3.25, -0.5, 1.0, -7.0],
            "count": [-3, -2, -1, 0, 1, 2, 3],
            "date": pd.to_datetime([f"2024-01-0{i}" for i in range(1, 8)]),
        }
    )


def test_write_table_csv_has_no_formula_and_numbers_stay_numbers(tmp_path):
    path = ce.write_table(_hostile_frame(), tmp_path / "t.csv")
    text = path.read_text(encoding="utf-8")
    _assert_csv_safe(text)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["name"].tolist() == [_quoted(h) for h in HOSTILE]
    assert back["score"].tolist() == ["-1.5", "-2", "0", "3.25", "-0.5", "1", "-7"]
    assert pd.read_csv(path)["count"].dtype == np.int64


def test_write_table_excel_has_no_formula_cell_and_numbers_stay_numbers(tmp_path):
    path = ce.write_table(_hostile_frame(), tmp_path / "t.xlsx")
    values = _assert_xlsx_safe(path)
    header, *rows = values
    assert header[:3] == ["name", "score", "count"]
    assert [r[0] for r in rows] == [_quoted(h) for h in HOSTILE]
    assert [r[1] for r in rows] == [-1.5, -2.0, 0.0, 3.25, -0.5, 1.0, -7.0]
    assert all(isinstance(r[2], int) for r in rows) and rows[0][2] == -3


def test_write_table_parquet_keeps_text_exactly(tmp_path):
    path = ce.write_table(_hostile_frame(), tmp_path / "t.parquet")
    assert pd.read_parquet(path)["name"].tolist() == HOSTILE


def test_write_trial_neutralises_text_cells(tmp_path, small_trial):
    students = small_trial.students.copy()
    students["student_id"] = students["student_id"].astype(object)
    students.loc[students.index[0], "student_id"] = "=1+1"
    trial = type("Trial", (), {})()
    trial.students, trial.contacts, trial.coordinators = (
        students,
        small_trial.contacts,
        small_trial.coordinators,
    )
    paths = ce.write_trial(trial, tmp_path)
    for path in paths.values():
        _assert_csv_safe(path.read_text(encoding="utf-8"))
    assert pd.read_csv(paths["students"], dtype=str)["student_id"].iloc[0] == "'=1+1"


def test_cli_assign_xlsx_writes_no_live_formula(tmp_path):
    # (a bare carriage return is left out of the input: it is a reader's test, not this one)
    names = ([h for h in HOSTILE if "\r" not in h] * 4)[:20]
    roster = pd.DataFrame(
        {
            "student_id": [f"s{i}" for i in range(20)],
            "school_id": ["A"] * 10 + ["B"] * 10,
            "name": names,
        }
    )
    roster.to_csv(tmp_path / "roster.csv", index=False)
    out = tmp_path / "roster.xlsx"
    r = _run("assign", "--students", str(tmp_path / "roster.csv"), "--out", str(out), "--seed", "7")
    assert r.returncode == 0, r.stderr
    header, *rows = _assert_xlsx_safe(out)
    written = [row[header.index("name")] for row in rows]
    assert sorted(written) == sorted(_quoted(h) for h in names)


def test_cli_fidelity_tables_and_demo_stdout_are_safe(tmp_path, small_trial):
    """A school named like a script or a formula reaches no output live."""
    hostile = {"school": SCRIPT, "formula": '=HYPERLINK("x")'}
    data = tmp_path / "data"
    ce.write_trial(small_trial, data)
    for name in ("students", "contacts", "coordinators"):
        path = data / f"{name}.csv"
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "school_id" in frame.columns:
            ids = sorted(frame["school_id"].unique())
            frame["school_id"] = frame["school_id"].replace(
                {ids[0]: hostile["school"], ids[1]: hostile["formula"]}
            )
        frame.to_csv(path, index=False)
    tables = tmp_path / "tables"
    r = _run(
        "fidelity",
        "--students",
        str(data / "students.csv"),
        "--contacts",
        str(data / "contacts.csv"),
        "--coordinators",
        str(data / "coordinators.csv"),
        "--min-cell",
        "1",
        "--tables",
        str(tables),
        "--out",
        str(tmp_path / "report.html"),
    )
    assert r.returncode == 0, r.stderr
    school_csv = (tables / "fidelity_school.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in school_csv
    for path in tables.glob("*.csv"):
        _assert_csv_safe(path.read_text(encoding="utf-8"))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert SCRIPT not in html and "&lt;script&gt;" in html

    out = tmp_path / "demo"
    r = _run("demo", "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    for text in (r.stdout, (out / "report.md").read_text(encoding="utf-8")):
        assert "<script" not in text
        assert "&lt;script>alert(1)&lt;/script>" in text
    for path in (out / "tables").glob("*.csv"):
        _assert_csv_safe(path.read_text(encoding="utf-8"))


def test_validation_report_text_escapes_names_from_the_data(small_trial):
    students = small_trial.students.astype(str)
    first = students["school_id"].iloc[0]
    students.loc[students["school_id"] == first, "treatment"] = "1"
    students["school_id"] = students["school_id"].replace({first: SCRIPT})
    with pytest.warns(ce.errors.DesignWarning, match="only one arm"):
        report = ce.validate(students, raise_on_error=False)
    text = report.to_text()
    assert "&lt;script>alert(1)&lt;/script>" in text and "<script" not in text


# --------------------------------------------------------------------------- the console


def _console(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from cis_eval.cli.main import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_console_safe(text: str) -> None:
    assert "<script" not in text and "<i>" not in text and "<b>" not in text, text
    assert "\x1b" not in text and "\r" not in text, repr(text)
    assert all(len(line) <= 320 for line in text.splitlines()), text


def test_error_lines_escape_names_from_the_command_line(tmp_path, capsys):
    missing = str(tmp_path / "<script>alert(1)\x1b[2J.csv")  # a file name has no '/'
    code, _, err = _console(["validate", "--students", missing], capsys)
    assert code == 2 and err.startswith("error: ") and "&lt;script>alert(1)" in err, err
    _assert_console_safe(err)
    # argparse's own messages quote the value given
    code, _, err = _console(["estimate", "--alpha", SCRIPT], capsys)
    assert code == 2 and "&lt;script>" in err, err
    _assert_console_safe(err)


def test_note_and_warning_lines_escape_names_from_the_files(tmp_path, capsys):
    school, typo = "Lincoln Middle School", "Lincoln Middle School<i>"
    rows = [f"s{i},{school},x" for i in range(12)] + [f"s99,{typo},x"]
    header = f"ID,Campus,{SCRIPT}\x1b[31m"
    (tmp_path / "roster.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[roster]\nfile = "roster.csv"\n[roster.columns]\nID = "student_id"\n'
        'Campus = "school_id"\n',
        encoding="utf-8",
    )
    code, out, err = _console(["validate", "--mapping", str(mapping)], capsys)
    assert code == 0, err
    assert "note: " in err and "&lt;script>alert(1)" in err, err  # the column left out
    assert "warning: " in err and "Lincoln Middle School&lt;i>" in err, err  # a likely typo
    _assert_console_safe(err)
    _assert_console_safe(out)


def test_map_init_prints_file_and_sheet_names_escaped(tmp_path, capsys):
    book = tmp_path / "<b>export.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "<script>"
    ws.append(["Student ID", "Campus"])
    ws.append(["s1", "A"])
    wb.save(book)
    out_file = tmp_path / "<i>mapping.toml"
    code, out, err = _console(["map", "--init", str(book), "--out", str(out_file)], capsys)
    assert code == 0, err
    assert "&lt;b>export.xlsx" in out and "&lt;script>" in out and "&lt;i>mapping" in out, out
    _assert_console_safe(out)
