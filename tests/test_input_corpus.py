"""A corpus of malformed input files, fed to the Python API and to the command line.

Every file either reads exactly like its clean original or is refused with a clear
CisEvalError (exit status 2 on the command line): never a traceback, never a silently
different number. Every message is bounded, never repeats a value from a data row (a
student identifier, a name, a social-security number) and the input file is never
modified.
"""

from __future__ import annotations

import contextlib
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
