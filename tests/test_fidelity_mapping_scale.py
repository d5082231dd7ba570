"""The large-log mapping path (DuckDB) gives what the in-memory path (pandas) gives.

An export's contacts log can be left on disk (``load_export(..., log_on_disk=True)``) and
renamed, recoded and checked in SQL. These tests hold it to the in-memory path, which
reads the log into pandas, recodes it and validates it: the same fidelity tables, the
same report, the same errors, on the hand-made fixture and on a larger synthetic export
written in the affiliate's shape (title rows, own column names, own wordings, US dates).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.cli import fidelity as cli_fidelity
from cis_eval.cli.main import main
from cis_eval.data.mapping import MappedLog
from cis_eval.errors import DataValidationError
from cis_eval.fidelity import log as fidelity_log

FIXTURES = Path(__file__).parent / "fixtures" / "affiliate"
LEVELS = ("student", "school", "coordinator", "arm", "weekly", "monthly", "service_mix")

# The affiliate's own wordings, each with the contract value it means.
SERVICES = {
    "Academic Support": "academics",
    "Attendance Check-In": "other",
    "Behavior Intervention": "behavior",
    "College & Career": "college_career",
    "Basic Needs": "basic_needs",
    "Lunch Bunch": "social_life_skills",  # the mapping file's own wording
    "Family Engagement": "family_engagement",
    "Counseling": "mental_health",
}
TIERS = ("Tier 1 - Schoolwide", "Tier 2 - Targeted", "Tier 3 - Individualized")
MODES = ("1:1", "Small Group", "Parent Meeting")


def _run(export: Any, contacts: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ce.fidelity(export.roster, contacts, export.coordinators)


def _both(mapping: Path) -> tuple[Any, Any]:
    """Fidelity through the in-memory path and through the on-disk (DuckDB) path."""
    memory = ce.load_export(mapping)
    disk = ce.load_export(mapping, log_on_disk=True)
    assert isinstance(disk.contacts_log, MappedLog)
    assert "contacts" not in disk.tables
    return _run(memory, memory.contacts), _run(disk, disk.contacts_log)


def _assert_same(a: Any, b: Any) -> None:
    for level in LEVELS:
        pd.testing.assert_frame_equal(a.to_frame(level), b.to_frame(level), obj=level)
    ta, tb = a.report_tables(), b.report_tables()
    assert list(ta) == list(tb)
    for name in ta:
        assert ta[name].to_csv() == tb[name].to_csv(), name
    assert (a.n_contacts, a.source, a.warnings) == (b.n_contacts, b.source, b.warnings)
    assert a.report().to_html() == b.report().to_html()


def write_export(folder: Path, n_students: int = 600, n_contacts: int = 12_000) -> Path:
    """A synthetic export in the affiliate's shape, with its mapping file."""
    rng = np.random.default_rng(7)
    schools = ["Lincoln Middle School", "Jefferson High School", "Adams Elementary"]
    staff = ["Dana Whitfield", "Luis Ortega", "Kim Park"]
    sid = [f"S{20000 + i}" for i in range(n_students)]
    school = rng.integers(0, len(schools), n_students)
    roster = pd.DataFrame(
        {
            "Student ID": sid,
            "Campus": [schools[s] for s in school],
            "Grade Level": [f"{g}th Grade" for g in rng.integers(6, 13, n_students)],
        }
    )
    (folder / "roster.csv").write_text(
        "Program Roster - Synthetic County CIS\n\n" + roster.to_csv(index=False)
    )
    who = rng.integers(0, n_students - 20, n_contacts)  # the last 20 students are not reached
    day = pd.Timestamp("2012-08-27") + pd.to_timedelta(rng.integers(0, 250, n_contacts), "D")
    services = list(SERVICES)
    dates = day.strftime("%m/%d/%Y").to_numpy(dtype=object)
    # Exports mix forms: some dates without leading zeros, some ISO (both read as US).
    dates[::50] = [f"{d.month}/{d.day}/{d.year}" for d in day[::50]]
    dates[::70] = day[::70].strftime("%Y-%m-%d")
    log = pd.DataFrame(
        {
            "Entry ID": [f"E{100000 + i}" for i in range(n_contacts)],
            "Student ID": [sid[w] for w in who],
            "Staff Name": [staff[school[w]] for w in who],
            "Service Date": dates,
            "Duration (min)": 5 * rng.integers(1, 13, n_contacts),
            "Service Category": [services[i] for i in rng.integers(0, len(services), n_contacts)],
            "Tier": [TIERS[i] for i in rng.choice(3, n_contacts, p=[0.1, 0.5, 0.4])],
            "Format": [MODES[i] for i in rng.integers(0, 3, n_contacts)],
            "Notes": "",
        }
    )
    (folder / "log.csv").write_text(
        "Service Log Report\nDate range: 08/27/2012 - 05/03/2013\n\n" + log.to_csv(index=False)
    )
    mapping = folder / "mapping.toml"
    mapping.write_text(
        'dates = "US"\n\n[roster]\nfile = "roster.csv"\n[roster.columns]\n'
        '"Student ID" = "student_id"\n"Campus" = "school_id"\n"Grade Level" = "grade"\n\n'
        '[contacts]\nfile = "log.csv"\n[contacts.columns]\n"Entry ID" = "contact_id"\n'
        '"Student ID" = "student_id"\n"Staff Name" = "coordinator_id"\n'
        '"Service Date" = "date"\n"Duration (min)" = "minutes"\n'
        '"Service Category" = "service_type"\n"Tier" = "tier"\n"Format" = "mode"\n'
        '[contacts.values.service_type]\n"Lunch Bunch" = "social_life_skills"\n'
    )
    return mapping


@pytest.mark.skipif(not (FIXTURES / "mapping.toml").is_file(), reason="no affiliate fixture")
def test_fixture_gives_the_same_tables_through_duckdb() -> None:
    a, b = _both(FIXTURES / "mapping.toml")
    assert a.n_contacts == 1950  # every row of the hand-made log is read
    _assert_same(a, b)


@pytest.mark.parametrize("head_rows", [None, 50])
def test_synthetic_export_gives_the_same_tables_through_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, head_rows: int | None
) -> None:
    if head_rows is not None:
        # wordings first seen below the rows recoded before the pass: the second look
        monkeypatch.setattr(fidelity_log, "_HEAD_ROWS", head_rows)
    a, b = _both(write_export(tmp_path))
    assert a.n_contacts == 12_000
    # Tiers 2 and 3 are both case-managed: only "Tier 1 - Schoolwide" rows are not dosage.
    assert a.to_frame("student")["contacts"].sum() > 0.8 * 12_000
    _assert_same(a, b)


def _problems(fn: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(DataValidationError) as info:
        fn()
    return sorted((p.column, p.rows, p.n_rows, p.message, p.expected) for p in info.value.problems)


def test_unknown_wordings_and_bad_dates_are_the_same_errors(tmp_path: Path) -> None:
    mapping = write_export(tmp_path, n_students=50, n_contacts=400)
    text = (tmp_path / "log.csv").read_text()
    text = text.replace("Basic Needs", "Basic Neds").replace("05/0", "13/0")
    (tmp_path / "log.csv").write_text(text)
    memory = _problems(lambda: ce.load_export(mapping))
    disk = ce.load_export(mapping, log_on_disk=True)
    on_disk = _problems(lambda: _run(disk, disk.contacts_log))
    assert {p[0] for p in memory} == {"Service Category (service_type)", "Service Date (date)"}
    assert on_disk == memory
    assert all(p[1] for p in on_disk)  # each names spreadsheet rows


def test_missing_mapped_column_is_an_error(tmp_path: Path) -> None:
    mapping = write_export(tmp_path, n_students=50, n_contacts=100)
    mapping.write_text(mapping.read_text().replace('"Format" = "mode"', '"Fmt" = "mode"'))
    disk = ce.load_export(mapping, log_on_disk=True)
    problems = _problems(lambda: _run(disk, disk.contacts_log))
    assert {p[0] for p in problems} == {"Fmt", "mode"}


def test_cli_reads_a_large_mapped_log_through_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export"
    shutil.copytree(FIXTURES, export)
    outputs = {}
    for name, limit in (("memory", cli_fidelity.BIG_LOG_BYTES), ("disk", 0)):
        monkeypatch.setattr(cli_fidelity, "BIG_LOG_BYTES", limit)
        calls: list[Any] = []
        real = ce.load_export

        def spy(*args: Any, _real: Any = real, _calls: Any = calls, **kwargs: Any) -> Any:
            _calls.append(kwargs.get("log_on_disk", False))
            return _real(*args, **kwargs)

        monkeypatch.setattr("cis_eval.io.load_export", spy)
        folder = tmp_path / name
        args = ["fidelity", "--mapping", str(export / "mapping.toml"), "--tables", str(folder)]
        assert main([*args, "--out", str(tmp_path / f"{name}.html")]) == 0
        assert calls == [name == "disk"]
        outputs[name] = {p.name: p.read_text() for p in sorted(folder.glob("*.csv"))}
    capsys.readouterr()
    assert outputs["memory"] and outputs["memory"] == outputs["disk"]
    html = [(tmp_path / f"{n}.html").read_text() for n in ("memory", "disk")]
    assert html[0] == html[1]
