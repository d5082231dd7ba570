from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.errors import DataValidationError, OptionError, OptionTypeError
from cis_eval.io import atomic_write


def test_csv_excel_parquet_round_trip(tmp_path, small_trial):
    s = small_trial.students
    for ext in ("csv", "xlsx", "parquet"):
        path = ce.write_table(s.head(50), tmp_path / f"students.{ext}")
        back = ce.load(path)
        assert back.attrs["source"] == f"students.{ext}"
        report = ce.validate(back)
        typed = report.students
        assert typed["student_id"].tolist() == s["student_id"].head(50).tolist()
        pd.testing.assert_series_equal(
            typed["days_present"].reset_index(drop=True),
            s["days_present"].head(50).reset_index(drop=True),
            check_names=False,
        )


def test_leading_zeros_in_ids_survive(tmp_path):
    (tmp_path / "r.csv").write_text("student_id,school_id\n00123,007\n")
    assert ce.load(tmp_path / "r.csv")["student_id"].iloc[0] == "00123"


def test_column_map_renames_and_reports_unknown_columns(tmp_path):
    (tmp_path / "x.csv").write_text("StudentNumber,Campus\n1,A\n")
    got = ce.load(
        tmp_path / "x.csv", column_map={"StudentNumber": "student_id", "Campus": "school_id"}
    )
    assert list(got.columns) == ["student_id", "school_id"]
    assert got.attrs["source"] == "x.csv"
    with pytest.raises(DataValidationError, match="column map"):
        ce.load(tmp_path / "x.csv", column_map={"Pupil": "student_id"})


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataValidationError, match=r"nope\.csv: file not found"):
        ce.load(tmp_path / "nope.csv")
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(DataValidationError, match="unknown file type"):
        ce.load(tmp_path / "a.json")
    (tmp_path / "bad.xlsx").write_text("not a workbook")
    with pytest.raises(DataValidationError, match=r"bad\.xlsx: is not an Excel workbook"):
        ce.load(tmp_path / "bad.xlsx")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def interrupted():
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        interrupted()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_written_files_are_readable_by_others(tmp_path):
    path = ce.io.write_text(tmp_path / "r.md", "x")
    assert oct(path.stat().st_mode & 0o044) == oct(0o044)


def test_messages_name_the_exports_own_column_after_a_column_map(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("ID,School,Grade Level,Assigned\ns1,A,6,1\ns2,A,13,0\n")
    frame = ce.load(
        path,
        column_map={
            "ID": "student_id",
            "School": "school_id",
            "Grade Level": "grade",
            "Assigned": "treatment",
        },
    )
    report = ce.validate(frame, raise_on_error=False)
    grade = next(p for p in report.errors if p.column and "grade" in p.column)
    assert grade.column == "Grade Level (grade)" and grade.rows == (3,)
    assert "export.csv: column 'Grade Level (grade)'" in str(grade)


def test_verify_assignment_accepts_a_roster_read_back_from_a_file(tmp_path):
    roster = pd.DataFrame({"student_id": list("abcdefgh"), "school_id": list("AAAABBBB")})
    lottery = ce.assign(roster, seed=4)
    ce.write_table(lottery.to_frame(), tmp_path / "assigned.csv")
    back = ce.load(tmp_path / "assigned.csv")
    assert ce.verify_assignment(back, lottery.audit)
    tampered = back.copy()
    tampered.loc[0, "treatment"] = "0" if tampered.loc[0, "treatment"] == "1" else "1"
    assert not ce.verify_assignment(tampered, lottery.audit)


def test_write_figure_is_atomic_and_deterministic(tmp_path):
    from matplotlib.figure import Figure

    def draw():
        fig = Figure(figsize=(3, 2))
        fig.subplots().plot([0, 1, 2], [1, 0, 1])
        return fig

    a = ce.write_figure(draw(), tmp_path / "a.png")
    b = ce.write_figure(draw(), tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes() and a.read_bytes()[:4] == b"\x89PNG"
    assert b"matplotlib" not in a.read_bytes()  # no software name in the file
    svg = ce.write_figure(draw(), tmp_path / "c.svg").read_text()
    assert "<svg" in svg and "<dc:date>" not in svg
    with pytest.raises(ce.errors.CisEvalError, match=r"\.png or \.svg"):
        ce.write_figure(draw(), tmp_path / "d.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.svg"]


def test_load_trial_reads_a_folder_and_names_a_missing_roster(tmp_path, small_trial):
    ce.write_trial(small_trial, tmp_path)
    checked = ce.load_trial(tmp_path)
    assert len(checked.students) == len(small_trial.students)
    assert len(checked.contacts) == len(small_trial.contacts)
    (tmp_path / "students.csv").unlink()
    with pytest.raises(DataValidationError, match="no students table in this folder"):
        ce.load_trial(tmp_path)


# ----------------------------------------------------------------------------- reading edge cases

LEGACY_XLS = Path(__file__).parent / "reference" / "data" / "legacy_roster.xls"
# Written once with xlwt (Excel 97-2003 format): four students, a date column, a 0.925.


def test_legacy_xls_workbooks_are_read(tmp_path):
    frame = ce.load(LEGACY_XLS)
    assert frame["student_id"].tolist() == ["L001", "L002", "L003", "L004"]
    assert frame["prior_attendance_rate"].tolist() == ["0.925", "0.88", "0.5", "1"]
    assert frame["assignment_date"].tolist() == ["2012-09-14"] * 2 + ["2012-09-20"] * 2
    # read by content, not name: the same workbook named .xlsx still reads
    renamed = tmp_path / "roster.xlsx"
    renamed.write_bytes(LEGACY_XLS.read_bytes())
    pd.testing.assert_frame_equal(ce.load(renamed), frame)
    # a decimal comma file says so, and workbook numbers follow it
    assert ce.load(LEGACY_XLS, decimal=",")["prior_attendance_rate"].iloc[0] == "0,925"


def test_text_files_in_other_encodings(tmp_path):
    text = "student_id,school_id,affiliate\ns1,A,Caf\u00e9\n"
    (tmp_path / "u16.csv").write_bytes(text.encode("utf-16"))
    assert ce.load(tmp_path / "u16.csv")["affiliate"].iloc[0] == "Caf\u00e9"
    (tmp_path / "cp.csv").write_bytes(text.encode("cp1252"))
    with pytest.raises(
        DataValidationError, match=r"cp\.csv: is not UTF-8 text \(first at line 2\)"
    ):
        ce.load(tmp_path / "cp.csv")
    assert ce.load(tmp_path / "cp.csv", encoding="cp1252")["affiliate"].iloc[0] == "Caf\u00e9"
    with pytest.raises(OptionError, match="encoding"):
        ce.load(tmp_path / "cp.csv", encoding="no-such-codec")


def test_delimiter_is_taken_from_the_header(tmp_path):
    (tmp_path / "semi.csv").write_text("student_id;school_id;note\ns1;A;a, b\n")
    got = ce.load(tmp_path / "semi.csv")
    assert list(got.columns) == ["student_id", "school_id", "note"]
    assert got["note"].iloc[0] == "a, b"


def test_ragged_lines_are_named_even_inside_quotes(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('student_id,school_id,note\ns1,A,"two\nlines"\ns2,B\ns3,C,x,y\n')
    with pytest.raises(DataValidationError) as exc:
        ce.load(path)
    problem = exc.value.problems[0]
    # line 4 is the short row (the quoted note spans lines 2-3); line 5 has a field too many
    assert problem.rows == (4, 5) and problem.n_rows == 2
    assert "3 fields on every line" in problem.expected


def test_repeated_column_names_are_refused_with_their_positions(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("student_id,treatment,school_id,treatment\ns1,1,A,0\n")
    with pytest.raises(DataValidationError, match=r"'treatment' in columns 2 \(B\), 4 \(D\)"):
        ce.load(path)
    # pandas itself would have renamed the second one 'treatment.1' and moved on
    assert "treatment.1" in pd.read_csv(path).columns


def test_column_maps_are_checked(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("ID,Campus,Other\n1,A,z\n")
    with pytest.raises(OptionError, match="onto the same name 'student_id'"):
        ce.load(path, column_map={"ID": "student_id", "Campus": "student_id"})
    with pytest.raises(OptionTypeError, match="not text -> text"):
        ce.load(path, column_map={"ID": {"nested": "student_id"}})  # type: ignore[dict-item]
    with pytest.raises(OptionTypeError):
        ce.load(path, column_map=["ID", "student_id"])  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="already has a column 'Campus'"):
        ce.load(path, column_map={"Other": "Campus"})
    # a huge map gives a short message
    huge = {f"Name{i}": f"c{i}" for i in range(100_000)}
    with pytest.raises(DataValidationError) as exc:
        ce.load(path, column_map=huge)
    assert len(str(exc.value)) < 1_000 and "99,995 more" in str(exc.value)


def test_a_headerless_file_never_shows_its_first_row_as_columns(tmp_path):
    path = tmp_path / "noheader.csv"
    path.write_text("Jane Doe,Lincoln High,1\nJohn Roe,Lincoln High,0\n")
    with pytest.raises(DataValidationError) as exc:
        ce.load(path, column_map={"Name": "student_id"})
    assert "does not look like a header" in str(exc.value)
    assert "Jane" not in str(exc.value) and "Lincoln" not in str(exc.value)
    # with a real header the file's columns are listed, to find the typo
    (tmp_path / "header.csv").write_text("Name,School,Assigned\nJane Doe,Lincoln High,1\n")
    with pytest.raises(DataValidationError, match="'Name', 'School', 'Assigned'"):
        ce.load(tmp_path / "header.csv", column_map={"Name": "student_id", "Pupil": "grade"})


def test_read_column_map_files(tmp_path):
    good = tmp_path / "map.toml"
    good.write_text('[students]\nID = "student_id"\n')
    assert ce.io.read_column_map(good) == {"students": {"ID": "student_id"}}
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataValidationError, match=r"deep\.json: the column map is nested too"):
        ce.io.read_column_map(deep)
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"students": {"ID": {"to": "student_id"}}}))
    with pytest.raises(DataValidationError, match=r"nested\.json: .*not text -> text"):
        ce.io.read_column_map(nested)
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"students": {"A": "student_id", "B": "student_id"}}))
    with pytest.raises(DataValidationError, match="onto the same name"):
        ce.io.read_column_map(twice)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"pupils": {"A": "student_id"}}))
    with pytest.raises(DataValidationError, match="unknown table"):
        ce.io.read_column_map(unknown)


def test_damaged_files_are_named(tmp_path, small_trial):
    good = ce.write_table(small_trial.students.head(20), tmp_path / "good.xlsx")
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(good.read_bytes()[:1500])
    with pytest.raises(DataValidationError, match=r"cut\.xlsx: could not be read as an Excel"):
        ce.load(cut)
    pq = ce.write_table(small_trial.students.head(20), tmp_path / "good.parquet")
    (tmp_path / "cut.parquet").write_bytes(pq.read_bytes()[:300])
    with pytest.raises(DataValidationError, match=r"cut\.parquet: could not be read as Parquet"):
        ce.load(tmp_path / "cut.parquet")
    (tmp_path / "book.csv").write_bytes(good.read_bytes())
    with pytest.raises(DataValidationError, match=r"rename it to \.xlsx"):
        ce.load(tmp_path / "book.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataValidationError, match="the file is empty"):
        ce.load(tmp_path / "empty.csv")
    with pytest.raises(DataValidationError, match=r"good\.xlsx: has no sheet 'Nope'"):
        ce.load(good, sheet="Nope")
    (tmp_path / "open.csv").write_text('student_id,note\ns1,"never closed\ns2,x\n')
    with pytest.raises(DataValidationError, match="a quote may be left open"):
        ce.load(tmp_path / "open.csv")


def test_number_format_options_are_checked(tmp_path):
    (tmp_path / "a.csv").write_text("student_id\ns1\n")
    with pytest.raises(OptionError, match="decimal"):
        ce.load(tmp_path / "a.csv", decimal=";")
    with pytest.raises(OptionError, match="must differ"):
        ce.load(tmp_path / "a.csv", decimal=",", thousands=",")
    frame = ce.load(tmp_path / "a.csv", decimal=",", thousands=".")
    assert (frame.attrs["decimal"], frame.attrs["thousands"]) == (",", ".")
