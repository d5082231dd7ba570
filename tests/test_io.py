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
