from __future__ import annotations

import os

import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.errors import DataValidationError
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
    with pytest.raises(DataValidationError, match="could not be read"):
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
