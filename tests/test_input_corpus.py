"""A corpus of malformed input files, fed to the Python API and to the command line.

Every file either reads exactly like its clean original or is refused with a clear
CisEvalError (exit status 2 on the command line): never a traceback, never a silently
different number. Every message is bounded, never repeats a value from a data row (a
student identifier, a name, a social-security number) and the input file is never
modified.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.errors import CisEvalError

try:  # in-process when the entry point is importable: fast and the output is captured
    from cis_eval.cli.main import main as cli_main
except ImportError:  # pragma: no cover - the command line is then run as a program
    cli_main = None

SECRET = "Zq7Secret"  # planted as a student identifier in the first data row
SSN = "123-45-6789"  # planted in non-identifier columns
MAX_LINE = 310  # characters: a problem is cut to 300, "error: " or "  - " before it
MAX_MESSAGE = 30 * MAX_LINE  # at most 20 problems listed, a head and a count of the rest


@dataclass
class Case:
    name: str
    data: bytes
    kwargs: dict[str, Any] = field(default_factory=dict)
    expect: str = ""  # a phrase of the message: the file is refused for the right reason


def _students_text() -> str:
    students = ce.simulate(seed=3, n_students=60, n_schools=4).students.copy()
    students.loc[0, "student_id"] = SECRET
    students.loc[3, "affiliate"] = "Affiliate \u00e9"  # one character beyond ASCII
    buf = io.StringIO()
    frame = students.copy()
    frame["assignment_date"] = frame["assignment_date"].dt.strftime("%Y-%m-%d")
    frame.to_csv(buf, index=False, lineterminator="\n", float_format="%.10g")
    text = buf.getvalue()
    assert '"' not in text  # the variants below split on commas
    return text


def _edit(text: str, row: int, column: str, value: str) -> str:
    """Set one cell (``row`` counts data rows from 0) of the comma-separated ``text``."""
    lines = text.split("\n")
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines)


def _xlsx(text: str) -> bytes:
    buf = io.BytesIO()
    # header=None: the header row is written as it is (pandas would rename a repeated name)
    pd.read_csv(io.StringIO(text), dtype=str, header=None).to_excel(buf, index=False, header=False)
    return buf.getvalue()


CLEAN = _students_text()


@pytest.fixture
def clean() -> str:
    return CLEAN


def _readable(clean: str) -> list[Case]:
    """Files that must read exactly like the clean one."""
    semicolons = clean.replace(",", ";")
    return [
        Case("utf8_bom.csv", b"\xef\xbb\xbf" + clean.encode()),
        Case("utf16.csv", clean.encode("utf-16")),
        Case("utf16_no_bom.csv", clean.encode("utf-16-le")),
        Case("crlf.csv", clean.replace("\n", "\r\n").encode()),
        Case("cr_only.csv", clean.replace("\n", "\r").encode()),  # classic Mac OS
        Case("semicolons.csv", semicolons.encode()),
        Case("tabs.csv", clean.replace(",", "\t").encode()),
        Case("tabs.tsv", clean.replace(",", "\t").encode()),
        Case("pipes.txt", clean.replace(",", "|").encode()),
        Case("blank_lines_at_end.csv", (clean + "\n\n\n").encode()),
        Case("latin1_declared.csv", clean.encode("latin-1"), {"encoding": "latin-1"}),
        Case(
            "decimal_comma_declared.csv",
            _decimal_commas(semicolons).encode(),
            {"decimal": ","},
        ),
        Case("workbook.xlsx", _xlsx(clean)),
    ]


def _decimal_commas(semicolon_text: str) -> str:
    lines = semicolon_text.split("\n")
    return "\n".join([lines[0]] + [ln.replace(".", ",") for ln in lines[1:]])


def _refused(clean: str) -> list[Case]:
    """Files that must be refused with a clear message."""
    xlsx = _xlsx(clean)
    ragged = clean.split("\n")
    ragged[3] += ",extra"
    ragged[7] = ragged[7].rsplit(",", 1)[0]
    header, *rows = clean.split("\n")
    headerless = "\n".join(rows)
    latin = clean.encode("latin-1")
    return [
        Case("truncated.xlsx", xlsx[: len(xlsx) // 2], expect="damaged, truncated"),
        Case(
            "not_really.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x07" * 600,
            expect="damaged, truncated",
        ),
        Case("csv_text.xls", clean.encode(), expect="is not an Excel workbook"),
        Case("csv_text.xlsx", clean.encode(), expect="is not an Excel workbook"),
        Case("workbook.csv", xlsx, expect="rename it to .xlsx"),
        Case("corrupt.parquet", b"PAR1" + bytes(range(256)) * 4, expect="damaged or truncated"),
        Case("text.parquet", clean.encode(), expect="is not a Parquet file"),
        Case("empty.csv", b"", expect="the file is empty"),
        Case("only_newlines.csv", b"\n\n\r\n", expect="the file is empty"),
        Case("binary.csv", bytes(range(256)) * 8, expect="binary data"),
        Case("latin1.csv", latin, expect="is not UTF-8 text (first at line 5)"),
        Case("unknown.json", b"{}", expect="unknown file type"),
        Case("ragged.csv", "\n".join(ragged).encode(), expect="different number of fields"),
        Case(
            "duplicate_header.csv",
            clean.replace("treatment", "consent").encode(),
            expect="'consent' in columns 17 (Q), 18 (R)",
        ),
        Case(
            "duplicate_header.xlsx",
            _xlsx(clean.replace("treatment", "consent")),
            expect="'consent' in columns 17 (Q), 18 (R)",
        ),
        Case("header_only.csv", (header + "\n").encode(), expect="no rows"),
        Case(
            "decimal_comma.csv",
            _edit(clean, 4, "core_gpa", '"2,5"').encode(),
            expect="decimal comma",
        ),
        Case(
            "thousands_misplaced.csv",
            _edit(clean, 5, "days_enrolled", '"1,80"').encode(),
            expect="thousands separator",
        ),
        Case(
            "thousands.csv",
            _edit(clean, 5, "days_enrolled", '"1,800"').encode(),
            expect="thousands separator",
        ),
        Case(
            "percent.csv",
            _edit(clean, 6, "prior_attendance_rate", "45%").encode(),
            expect="percent sign",
        ),
        Case("unit.csv", _edit(clean, 6, "days_present", "170 days").encode(), expect="unit"),
        Case(
            "ssn_in_category.csv",
            _edit(clean, 1, "school_level", SSN).encode(),
            expect="not allowed",
        ),
        Case("ssn_in_number.csv", _edit(clean, 1, "grade", SSN).encode(), expect="not numbers"),
        Case(
            "future_date.csv",
            _edit(clean, 8, "assignment_date", "2999-09-14").encode(),
            expect="in the future",
        ),
        Case(
            "not_a_date.csv", _edit(clean, 8, "assignment_date", SSN).encode(), expect="not dates"
        ),
        Case("infinite.csv", _edit(clean, 9, "core_gpa", "inf").encode(), expect="infinite"),
        Case("yes_maybe.csv", _edit(clean, 9, "treatment", "maybe").encode(), expect="0 or 1"),
        Case(
            "headerless.csv",
            headerless.encode(),
            expect="does not look like a header",
        ),
        Case(
            "headerless_mapped.csv",
            headerless.encode(),
            {"column_map": {"StudentNumber": "student_id"}},
            expect="does not look like a header",
        ),
        Case(
            "headerless_distinct_cells_mapped.csv",
            f"Jane {SECRET},Lincoln High,1\nJohn Roe,Lincoln High,0\n".encode(),
            {"column_map": {"Name": "student_id"}},
            expect="does not look like a header",
        ),
        Case(
            "huge_column_map.csv",
            clean.encode(),
            {"column_map": {f"Export column {i:06d}": f"c{i}" for i in range(50_000)}},
            expect="49,995 more",
        ),
        Case(
            "two_columns_onto_one.csv",
            clean.encode(),
            {"column_map": {"school_id": "student_id", "state": "student_id"}},
            expect="onto the same name",
        ),
        Case(
            "renamed_onto_an_existing_column.csv",
            clean.encode(),
            {"column_map": {"state": "student_id"}},
            expect="already has a column",
        ),
    ]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_message(text: str) -> None:
    assert "Traceback" not in text and "This is a bug" not in text
    assert len(text) <= MAX_MESSAGE, len(text)
    assert max(len(line) for line in text.splitlines()) <= MAX_LINE
    assert SECRET not in text and SSN not in text
    assert "S0000002" not in text  # another student's identifier


def _api(path: Path, kwargs: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ce.validate(ce.load(path, **kwargs))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    if cli_main is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = cli_main(args)
        out = capsys.readouterr()
        return code, out.out + out.err
    proc = subprocess.run(
        [sys.executable, "-m", "cis_eval.cli", *args], capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_readable_variants_read_exactly_like_the_clean_file(tmp_path, clean, capsys):
    (tmp_path / "clean.csv").write_text(clean)
    reference = _api(tmp_path / "clean.csv", {}).students
    for case in _readable(clean):
        path = tmp_path / case.name
        path.write_bytes(case.data)
        before = _digest(path)
        got = _api(path, case.kwargs).students
        pd.testing.assert_frame_equal(got, reference, obj=case.name)
        flags = [x for k, v in case.kwargs.items() for x in (f"--{k}", v)]
        code, out = _cli(["validate", "--students", str(path), *flags], capsys)
        assert code == 0, (case.name, out)
        assert _digest(path) == before, case.name


@pytest.mark.parametrize("case", _refused(CLEAN), ids=lambda c: c.name)
def test_bad_files_are_refused_clearly_by_the_api_and_the_command_line(case, tmp_path, capsys):
    path = tmp_path / case.name
    path.write_bytes(case.data)
    before = _digest(path)
    with pytest.raises(CisEvalError) as exc:
        _api(path, case.kwargs)
    _check_message(str(exc.value))
    assert case.expect in str(exc.value), (case.name, str(exc.value))
    args = ["validate", "--students", str(path)]
    if "column_map" in case.kwargs:
        cmap = tmp_path / "map.json"
        cmap.write_text(json.dumps({"students": case.kwargs["column_map"]}))
        args += ["--column-map", str(cmap)]
    code, out = _cli(args, capsys)
    assert code == 2, (case.name, out)
    _check_message(out)
    assert _digest(path) == before, case.name
    # the same file as a trial folder's students table
    ext = Path(case.name).suffix
    if ext in (".csv", ".xlsx", ".parquet"):
        folder = tmp_path / "trial"
        folder.mkdir()
        shutil.copy(path, folder / f"students{ext}")
        maps = {"students": case.kwargs["column_map"]} if "column_map" in case.kwargs else None
        with contextlib.ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            with pytest.raises(CisEvalError) as exc:
                ce.load_trial(folder, column_map=maps)
        _check_message(str(exc.value))


def test_contacts_years_away_from_their_assignment_are_refused(tmp_path, capsys):
    trial = ce.simulate(seed=5, n_students=80, n_schools=4)
    ce.write_trial(trial, tmp_path)
    contacts = pd.read_csv(tmp_path / "contacts.csv", dtype=str)
    # the whole log typed 14 years late: consistent with itself, not with the roster
    contacts["date"] = (pd.to_datetime(contacts["date"]) + pd.DateOffset(years=14)).dt.strftime(
        "%Y-%m-%d"
    )
    contacts.to_csv(tmp_path / "contacts.csv", index=False)
    with pytest.raises(CisEvalError, match="more than a year after") as exc:
        ce.load_trial(tmp_path)
    _check_message(str(exc.value))
    code, out = _cli(
        [
            "validate",
            "--students",
            str(tmp_path / "students.csv"),
            "--contacts",
            str(tmp_path / "contacts.csv"),
        ],
        capsys,
    )
    assert code == 2 and "more than a year" in out
    _check_message(out)


def test_a_million_bad_rows_give_a_bounded_message(tmp_path):
    rows = "\n".join(f"s{i},A,1,{i}%" for i in range(200_000))
    path = tmp_path / "many.csv"
    path.write_text("student_id,school_id,treatment,grade\n" + rows + "\n")
    with pytest.raises(CisEvalError) as exc:
        _api(path, {})
    _check_message(str(exc.value))
    assert "200,000 value(s) carry a percent sign" in str(exc.value)


def test_the_users_path_gives_the_benchmark_paths_numbers(tmp_path):
    """Own outcome names and school identifiers of any type: the same table, exactly."""
    from cis_eval._core.design import outcome_meta

    trial = ce.simulate(seed=8, n_students=3_000, n_schools=30, contacts=False)
    outcomes = ["attendance_rate", "chronic_absence", "core_gpa"]
    covariates = ["prior_attendance_rate", "female"]
    data = ce.derive_outcomes(trial.students)[["school_id", "treatment", *covariates, *outcomes]]
    data = data.dropna(subset=covariates).reset_index(drop=True)
    reference = ce.estimate_itt(data, outcomes=outcomes, covariates=covariates).to_frame()
    names = {o: f"y{i}" for i, o in enumerate(outcomes, start=1)}
    export = data.rename(columns=names)
    codes = pd.factorize(export["school_id"], sort=True)[0]
    export["school_id"] = [f"campus {c:03d}" for c in codes]
    path = tmp_path / "export.csv"
    export.sample(frac=1.0, random_state=2).to_csv(path, index=False)  # rows in any order
    frames = {
        "pandas": pd.read_csv(path),
        "pandas, integer schools": pd.read_csv(path).assign(
            school_id=lambda d: d["school_id"].str[-3:].astype(int)
        ),
        "cis_eval.load (text cells)": ce.load(path),
    }
    for label, frame in frames.items():
        assert outcome_meta("y2", frame).type == "binary", label
        assert outcome_meta("y1", frame).type == "continuous", label
        got = ce.estimate_itt(frame, outcomes=list(names.values()), covariates=covariates)
        table = got.to_frame()
        for col in ("estimate", "std_error", "n"):
            assert table[col].to_numpy() == pytest.approx(
                reference[col].to_numpy(), rel=1e-9, abs=1e-12
            ), (label, col)


def test_the_command_line_reads_a_declared_number_format(tmp_path, capsys):
    path = tmp_path / "students.csv"
    path.write_text(_edit(CLEAN, 5, "days_enrolled", '"1,180"'))
    code, out = _cli(["validate", "--students", str(path)], capsys)
    assert code == 2 and "thousands separator" in out
    code, out = _cli(["validate", "--students", str(path), "--thousands", ","], capsys)
    assert code == 2 and "outside the allowed range" in out  # read as 1180, not refused
    code, out = _cli(["validate", "--students", str(path), "--encoding", "no-such"], capsys)
    assert code == 2 and "encoding" in out
    _check_message(out)


def test_assign_never_writes_over_its_roster(tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,school_id\n" + "".join(f"s{i},A\n" for i in range(8)))
    before = _digest(roster)
    code, out = _cli(
        ["assign", "--students", str(roster), "--out", str(roster), "--seed", "1"], capsys
    )
    assert code == 2 and "roster itself" in out
    assert _digest(roster) == before


# --------------------------------------------------------------------------- carriage returns


def _with_cr(lineterminator: str, quote_elsewhere: bool = False) -> bytes:
    """CLEAN with a carriage return inside one value, written by pandas."""
    frame = pd.read_csv(io.StringIO(CLEAN), dtype=str, keep_default_na=False)
    frame.loc[5, "affiliate"] = "North\rSouth"
    if quote_elsewhere:
        frame.loc[8, "state"] = "a, b"  # a quoted value: the csv module splits the file
    # pandas quotes the value only when its line terminator holds a carriage return
    return frame.to_csv(index=False, lineterminator=lineterminator).encode()


def test_a_carriage_return_inside_a_quoted_value_is_read_as_part_of_it(tmp_path, capsys):
    path = tmp_path / "students.csv"
    path.write_bytes(_with_cr("\r\n"))  # how pandas writes on Windows: the value quoted
    assert b'"North\rSouth"' in path.read_bytes()
    got = _api(path, {}).students
    (tmp_path / "clean.csv").write_text(CLEAN)
    reference = _api(tmp_path / "clean.csv", {}).students
    assert got["affiliate"].iloc[5] == "North\rSouth"
    pd.testing.assert_frame_equal(got.drop(index=5), reference.drop(index=5))
    code, out = _cli(["validate", "--students", str(path)], capsys)
    assert code == 0, out


@pytest.mark.parametrize("quote_elsewhere", [False, True], ids=["no quotes", "quotes"])
def test_a_bare_carriage_return_outside_quotes_is_refused_naming_its_row(
    quote_elsewhere, tmp_path, capsys
):
    """pandas writes ``North\rSouth`` unquoted with a line-feed terminator; pandas, Excel
    and the csv module would each end the row there, shifting the values after it."""
    path = tmp_path / "students.csv"
    path.write_bytes(_with_cr("\n", quote_elsewhere))
    assert b"North\rSouth" in path.read_bytes()
    before = _digest(path)
    with pytest.raises(CisEvalError) as exc:
        _api(path, {})
    message = str(exc.value)
    assert "carriage return (CR)" in message and "(row 7)" in message  # data row 5
    _check_message(message)
    code, out = _cli(["validate", "--students", str(path)], capsys)
    assert code == 2 and "carriage return (CR)" in out, out
    _check_message(out)
    # the same file read through a mapping file
    mapping = tmp_path / "m.toml"
    mapping.write_text('[students]\nfile = "students.csv"\n[students.columns]\n')
    code, out = _cli(["validate", "--mapping", str(mapping)], capsys)
    assert code == 2 and "carriage return (CR)" in out and "(row 7)" in out, out
    _check_message(out)
    assert _digest(path) == before


# --------------------------------------------------------------------------- mapped CSV files


def _mapping_for(folder: Path, file: str) -> Path:
    path = folder / "m.toml"
    path.write_text(
        f'[roster]\nfile = "{file}"\n[roster.columns]\nID = "student_id"\nCampus = "school_id"\n',
        encoding="utf-8",
    )
    return path


ROSTER_LINES = ["Roster 2012-13", "", "ID,Campus", "s1,Caf\u00e9 High", "s2,Lincoln", "s3,Lincoln"]


def test_a_mapped_csv_is_decoded_as_the_table_reader_decodes(tmp_path):
    for name, data in {
        "utf16.csv": "\n".join(ROSTER_LINES).encode("utf-16"),
        "utf16_no_bom.csv": "\n".join(ROSTER_LINES).encode("utf-16-le"),
        "bom.csv": b"\xef\xbb\xbf" + "\n".join(ROSTER_LINES).encode(),
    }.items():
        (tmp_path / name).write_bytes(data)
        roster = ce.load_export(_mapping_for(tmp_path, name)).roster
        assert roster["school_id"].tolist() == ["Caf\u00e9 High", "Lincoln", "Lincoln"], name
    (tmp_path / "cp1252.csv").write_bytes("\n".join(ROSTER_LINES).encode("cp1252"))
    with pytest.raises(CisEvalError) as exc:
        ce.load_export(_mapping_for(tmp_path, "cp1252.csv"))
    message = str(exc.value)
    assert "is not UTF-8 text (first at line 4)" in message and "CSV UTF-8" in message
    assert "--encoding" not in message  # the mapping route has no encoding option
    _check_message(message)


def test_ragged_rows_of_a_mapped_csv_are_named_by_spreadsheet_row(tmp_path, capsys):
    lines = [*ROSTER_LINES, "s4,Lincoln,extra", "s5", "s6,Lincoln"]
    (tmp_path / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = _mapping_for(tmp_path, "roster.csv")
    with pytest.raises(CisEvalError) as exc:
        ce.load_export(mapping)
    problem = exc.value.problems[0]
    # title, blank and header rows above: the bad rows are spreadsheet rows 7 and 8
    assert problem.rows == (7, 8) and problem.n_rows == 2
    assert "2 cells on every row, as in the header (row 3)" in problem.expected
    code, out = _cli(["validate", "--mapping", str(mapping)], capsys)
    assert code == 2 and "(rows 7, 8)" in out, out
    _check_message(out)


# --------------------------------------------------------------------------- spreadsheet rows

AFFILIATE = Path(__file__).resolve().parent / "fixtures" / "affiliate"


def _affiliate_copy(folder: Path) -> Path:
    for name in ("affiliate_export.xlsx", "service_log.csv", "mapping.toml"):
        shutil.copy(AFFILIATE / name, folder / name)
    return folder / "mapping.toml"


def test_validation_names_the_excel_row_of_a_table_below_title_rows(tmp_path, capsys):
    """The roster's header is in row 4 below title rows; a blank row is added in the
    middle: every message must name the row Excel shows, not the table's position."""
    import openpyxl

    mapping = _affiliate_copy(tmp_path)
    book = tmp_path / "affiliate_export.xlsx"
    wb = openpyxl.load_workbook(book)
    ws = wb["Roster"]
    header = [c.value for c in ws[4]]
    assert header[0] == "Student ID"  # the fixture's title rows are rows 1-3
    ws.insert_rows(30)  # a blank row: the rows below it move down by one
    start, rows = header.index("Program Start") + 1, [12, 61]
    for row in rows:  # one above the blank row, one below it
        ws.cell(row, start).value = "12/01/2999"  # a typo in the year: a future date
    duplicate, lost = ws.cell(90, 1).value, ws.cell(95, 1).value
    ws.cell(95, 1).value = duplicate  # a student listed twice; the log's for one unknown
    wb.save(book)

    loaded = ce.load_export(mapping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ce.validate(
            loaded.roster,
            loaded.contacts,
            loaded.coordinators,
            contract="fidelity",
            raise_on_error=False,
        )
    roster = {p.column: p for p in report.errors if p.source.startswith("roster")}
    future = roster["Program Start (service_start)"]
    assert future.rows == tuple(rows) and "in the future" in future.message
    # read back from the workbook itself: the rows named hold what the message says
    check = openpyxl.load_workbook(book)["Roster"]
    assert all(check.cell(r, start).value == "12/01/2999" for r in future.rows)
    twice = roster["Student ID (student_id)"]
    assert set(twice.rows) <= {90, 95} and 95 in twice.rows, twice
    assert all(check.cell(r, 1).value == duplicate for r in twice.rows)
    # the log is a CSV file below two title lines and a blank line: its rows too
    (unknown,) = [p for p in report.errors if p.source.startswith("contacts")]
    with (tmp_path / "service_log.csv").open(encoding="utf-8", newline="") as fh:
        log = list(csv.reader(fh))
    column = log[3].index("Student ID")
    assert unknown.rows and all(log[r - 1][column] == lost for r in unknown.rows), unknown
    code, out = _cli(["validate", "--mapping", str(mapping)], capsys)
    assert code == 2 and "(rows 12, 61)" in out, out
    _check_message(out)


# --------------------------------------------------------------------------- a log read from disk


def test_a_log_read_from_disk_takes_its_delimiter_from_the_header(tmp_path, small_trial):
    """The large-log route (DuckDB straight from the file) reads a semicolon file as the
    table reader does, and refuses a decimal comma rather than reading 12,5 as 125."""
    contacts = small_trial.contacts.copy()
    contacts["date"] = contacts["date"].dt.strftime("%Y-%m-%d")
    contacts["minutes"] = contacts["minutes"].astype(str)
    comma, semicolons = tmp_path / "contacts.csv", tmp_path / "semicolons.csv"
    contacts.to_csv(comma, index=False)
    contacts.to_csv(semicolons, index=False, sep=";")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = [
            ce.fidelity(small_trial.students, path, small_trial.coordinators).to_frame("school")
            for path in (comma, semicolons)
        ]
    pd.testing.assert_frame_equal(tables[1], tables[0])
    contacts.loc[4, "minutes"] = "12,5"
    contacts.to_csv(semicolons, index=False, sep=";")
    with pytest.raises(CisEvalError, match="not numbers") as exc:
        ce.fidelity(small_trial.students, semicolons, small_trial.coordinators)
    _check_message(str(exc.value))


def test_a_log_read_from_disk_gives_a_bounded_column_map_message(tmp_path, small_trial):
    path = tmp_path / "contacts.csv"
    small_trial.contacts.to_csv(path, index=False)
    huge = {f"Export column {i:06d}": f"c{i}" for i in range(50_000)}
    with pytest.raises(CisEvalError) as exc:
        ce.fidelity(small_trial.students, path, column_map=huge)
    message = str(exc.value)
    _check_message(message)
    assert "50,000 column(s) named in the column map are not in the file" in message
    assert "49,995 more" in message and "'student_id'" in message  # the file's own names
    # a headerless log: its first row (a contact of a student) is never shown as its names
    path.write_text(
        "\n".join(small_trial.contacts.astype(str).apply(",".join, axis=1).head(20)) + "\n"
    )
    with pytest.raises(CisEvalError, match="does not look like a header") as exc:
        ce.fidelity(small_trial.students, path, column_map={"StudentNumber": "student_id"})
    first = small_trial.contacts.iloc[0]
    assert str(first["student_id"]) not in str(exc.value)
    _check_message(str(exc.value))
