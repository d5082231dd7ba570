"""Mapping files: a hand-made affiliate export in, the data contract out.

The fixtures in tests/fixtures/affiliate/ are made by hand (make_fixtures.py), not by the
simulator; mapping.toml there is the file a user would write. Expected numbers are
computed here straight from the files with csv/openpyxl and hand-written recodes, not
through cis_eval.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import importlib.util
import shutil
import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import cis_eval as ce
from cis_eval import schema
from cis_eval.cli.main import main
from cis_eval.data.mapping import (
    TableMapping,
    apply_mapping,
    find_header_row,
    parse_mapping,
    shipped_wordings,
    wording_key,
)
from cis_eval.errors import DataValidationError, OptionError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "affiliate"
BOOK, LOG, MAPPING = "affiliate_export.xlsx", "service_log.csv", "mapping.toml"

# The affiliate's words, recoded by hand (what a person reading the export would decide).
SERVICE = {
    "Academic Support": "academics",
    "Behavior Intervention": "behavior",
    "College & Career": "college_career",
    "Colege & Career": "college_career",
    "Attendance Check-In": "other",
    "Family Engagement": "family_engagement",
    "Mental Health": "mental_health",
    "Social Skills": "social_life_skills",
    "Lunch Bunch": "social_life_skills",
    "Basic Needs": "basic_needs",
    "Enrichment": "enrichment_motivation",
    "Health & Wellness": "health_wellness",
    "Community Service": "community_service",
}
TIER = {"Tier 3 - Individualized": "2", "Tier 2 - Targeted": "2", "Tier 1 - Schoolwide": "1"}
MODE = {"1:1": "individual", "Small Group": "group", "Parent/Family": "family"}


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A copy of the fixture folder (tests write mapping files beside the export)."""
    for name in (BOOK, LOG, MAPPING):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _raw_log() -> list[dict[str, str]]:
    with (FIXTURES / LOG).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[3]  # below two title lines and a blank line
    return [dict(zip(header, r, strict=True)) for r in rows[4:]]


def _raw_sheet(name: str, header_row: int) -> list[dict[str, object]]:
    ws = openpyxl.load_workbook(FIXTURES / BOOK)[name]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    header = rows[header_row - 1]
    return [dict(zip(header, r, strict=True)) for r in rows[header_row:]]


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return path


def _mapping(folder: Path, text: str) -> Path:
    path = folder / "m.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- fixtures


def test_fixture_files_are_exactly_what_their_script_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for written in module.main(tmp_path):
        assert written.read_bytes() == (FIXTURES / written.name).read_bytes(), written.name


def test_fixture_has_the_shapes_of_a_real_export():
    roster = _raw_sheet("Roster", 4)
    staff = _raw_sheet("Staff", 2)
    log = _raw_log()
    assert len(roster) == 150 and 1900 <= len(log) <= 2100
    campuses = Counter(str(r["Campus"]) for r in roster)
    assert campuses["Cedar Creek Academy"] == 8 and campuses["Lincon Middle School"] == 1
    assert Counter(str(s["Staff Name"]) for s in staff)["Dana Whitfield"] == 2
    assert {str(s["Time at School"]) for s in staff} == {"100%", "50%"}
    assert any(str(r["Grade Level"]).endswith("th Grade") for r in roster)
    assert set(SERVICE) >= {r["Service Category"] for r in log}


# --------------------------------------------------------------------------- loading


def test_the_users_mapping_loads_the_numbers_counted_by_hand(export):
    before = _digest(export)
    loaded = ce.load_export(export / MAPPING)
    assert _digest(export) == before  # the export and the mapping are only read

    roster_raw = _raw_sheet("Roster", 4)
    roster = loaded.roster
    assert roster is not None and list(roster["student_id"]) == [
        str(r["Student ID"]) for r in roster_raw
    ]
    by_hand = Counter(
        "Lincoln Middle School" if r["Campus"] == "Lincon Middle School" else str(r["Campus"])
        for r in roster_raw
    )
    assert roster["school_id"].value_counts().to_dict() == dict(by_hand)
    assert list(roster["grade"]) == [str(r["Grade Level"]).split("th")[0] for r in roster_raw]
    assert list(roster["service_start"]) == [
        r["Program Start"].strftime("%Y-%m-%d") for r in roster_raw
    ]
    exits = [
        dt.datetime.strptime(str(r["Exit Date"]), "%m/%d/%Y").strftime("%Y-%m-%d")
        if r["Exit Date"]
        else None
        for r in roster_raw
    ]
    assert [None if pd.isna(v) else v for v in roster["exit_date"]] == exits
    assert list(roster["consent"]) == [
        "1" if r["Consent on File"] == "Yes" else "0" for r in roster_raw
    ]

    log = _raw_log()
    contacts = loaded.contacts
    assert contacts is not None and len(contacts) == len(log)
    assert list(contacts["service_type"]) == [SERVICE[r["Service Category"]] for r in log]
    assert list(contacts["tier"]) == [TIER[r["Tier"]] for r in log]
    assert list(contacts["mode"]) == [MODE[r["Format"]] for r in log]
    assert list(contacts["date"]) == [
        dt.datetime.strptime(r["Service Date"], "%m/%d/%Y").strftime("%Y-%m-%d") for r in log
    ]
    assert list(contacts["minutes"]) == [r["Duration (min)"] for r in log]

    staff = loaded.coordinators
    assert staff is not None
    dana = staff[staff["coordinator_id"] == "Dana Whitfield"]
    assert sorted(dana["school_id"]) == ["Cedar Creek Academy", "Lincoln Middle School"]
    assert set(dana["fte"].astype(float)) == {0.5}
    assert set(staff["level2_time_share"].astype(float)) == {0.45, 0.6}
    assert loaded.warnings == ()  # the campus typo is recoded by the mapping


def test_the_loaded_tables_hold_contract_columns_only(export):
    loaded = ce.load_export(export / MAPPING)
    assert set(loaded.roster.columns) == set(schema.COLUMNS["roster"]) - {"school_level"}
    assert set(loaded.contacts.columns) == set(schema.COLUMNS["contacts"])
    assert set(loaded.coordinators.columns) == set(schema.COLUMNS["coordinators"])
    assert loaded.students.equals(loaded.roster)  # one name for either kind of roster
    assert repr(loaded) == "LoadedExport(roster 150 rows, coordinators 4 rows, contacts 1,950 rows)"


def test_notes_say_which_title_rows_were_skipped_and_where_the_header_is(export):
    loaded = ce.load_export(export / MAPPING)
    roster_note = next(n for n in loaded.notes if n.startswith("roster ("))
    assert "sheet 'Roster'" in roster_note and "row 4" in roster_note
    assert "row 1: 'Lincoln County Communities In Schools'" in roster_note
    assert "row 3: blank" in roster_note
    log_note = next(n for n in loaded.notes if n.startswith("contacts ("))
    assert "service_log.csv" in log_note and "row 4" in log_note
    assert loaded.tables["contacts"].attrs["header_row"] == 4


def test_without_the_campus_recode_the_typo_is_named_with_a_suggestion(export):
    text = (
        (export / MAPPING)
        .read_text()
        .replace(
            '[roster.values.school_id]\n"Lincon Middle School" = "Lincoln Middle School"\n', ""
        )
    )
    loaded = ce.load_export(_mapping(export, text))
    (warning,) = loaded.warnings
    assert "'Lincon Middle School' (1 student(s))" in warning.message
    assert "did you mean 'Lincoln Middle School'?" in warning.message
    assert warning.severity == "warning" and len(warning.rows) == 1
    # the spreadsheet row of that student, as Excel shows it
    row = next(
        i
        for i, r in enumerate(_raw_sheet("Roster", 4), start=5)
        if r["Campus"] == "Lincon Middle School"
    )
    assert warning.rows == (row,)


# --------------------------------------------------------------------------- map --init


def test_map_init_then_the_users_edits_then_check(export, capsys):
    before = _digest(export)
    out = export / "drafted.toml"
    assert main(["map", "--init", str(export / BOOK), str(export / LOG), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "roster: affiliate_export.xlsx, sheet 'Roster' (column names in row 4)" in said
    assert "coordinators: affiliate_export.xlsx, sheet 'Staff'" in said
    assert "2 wording(s) are marked NOT KNOWN" in said
    assert {k: v for k, v in _digest(export).items() if k != out.name} == before

    draft = out.read_text()
    parsed = tomllib.loads(draft)  # a valid TOML file as written
    assert parsed["roster"]["sheet"] == "Roster" and parsed["contacts"]["file"] == LOG
    assert parsed["coordinators"]["columns"]["Time at School"] == "fte"
    assert parsed["contacts"]["dates"] == "US"
    n_attendance = Counter(r["Service Category"] for r in _raw_log())["Attendance Check-In"]
    line = f'# "Attendance Check-In" = "other"  # {n_attendance} rows; a shipped wording'
    assert line in draft
    assert '# "Lincon Middle School" = "Lincoln Middle School"' in draft

    # Loading the draft as is stops at the two wordings nobody knows yet.
    assert main(["map", "--check", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'Lunch Bunch' is not a known wording" in err
    assert "'Colege & Career' is not a known wording; did you mean 'college career'" in err

    # The user's edits: choose the two wordings, accept the suggested campus recode.
    edited = (
        draft.replace('# "Lunch Bunch" = ""', '"Lunch Bunch" = "social_life_skills"')
        .replace('# "Colege & Career" = ""', '"Colege & Career" = "college_career"')
        .replace('# "Lincon Middle School" =', '"Lincon Middle School" =')
    )
    assert edited.count('\n"') > draft.count('\n"')
    out.write_text(edited)
    assert main(["map", "--check", str(out)]) == 0
    assert "reads cleanly" in capsys.readouterr().out

    mine, theirs = ce.load_export(out), ce.load_export(export / MAPPING)
    for name in ("roster", "contacts", "coordinators"):
        pd.testing.assert_frame_equal(
            getattr(mine, name), getattr(theirs, name), check_like=True, obj=name
        )


def test_map_init_never_overwrites_without_force(export, capsys):
    out = export / MAPPING
    before = out.read_bytes()
    assert main(["map", "--init", str(export / BOOK), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["map", "--init", str(export / BOOK), "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != before
    with pytest.raises(OptionError, match="already exists"):
        ce.io.write_new_text(out, "x")


def test_map_needs_init_or_check(capsys):
    assert main(["map"]) == 2
    assert main(["map", "--init", "a.xlsx", "--check", "m.toml"]) == 2


# --------------------------------------------------------------------------- header rows


@pytest.mark.parametrize(
    ("rows", "expected", "header"),
    [
        ([["id", "school"], ["1", "A"]], (), 0),
        ([["Roster"], [None, None], ["id", "school", "grade"], ["1", "A", "8"]], (), 2),
        ([["Report", "2012"], ["id", "school", "grade"], ["1", "A", "8"]], (), 1),
        # a title row as wide as the table: the mapped names decide
        (
            [["Roster", "of", "2012"], ["ID", "Campus", "Grade"], ["1", "A", "8"]],
            ("Campus", "ID"),
            1,
        ),
    ],
)
def test_header_row_is_found_below_title_rows(rows, expected, header):
    assert find_header_row(rows, expected)[0] == header


def test_an_explicit_header_row_wins_and_a_bad_one_is_an_error(tmp_path):
    path = _write_csv(tmp_path / "r.csv", [["x", "y"], ["id", "school"], ["1", "A"]])
    frame = ce.io.read_sheet(path, header_row=2)
    assert list(frame.columns) == ["id", "school"] and list(frame.index) == [3]
    with pytest.raises(DataValidationError, match="below the last row"):
        ce.io.read_sheet(path, header_row=9)


def test_csv_rows_keep_their_spreadsheet_numbers_across_blank_lines(tmp_path):
    rows = [["Roster"], [], ["id", "school"], ["1", "A"], [], ["2", "B"]]
    frame = ce.io.read_sheet(_write_csv(tmp_path / "r.csv", rows))
    assert list(frame.index) == [4, 6] and frame.attrs["header_row"] == 3
    assert frame.attrs["skipped"] == "row 1: 'Roster'; row 2: blank"


def test_a_row_wider_than_the_header_is_an_error_not_a_silent_loss(tmp_path):
    path = _write_csv(tmp_path / "r.csv", [["id", "school"], ["1", "A", "extra"]])
    with pytest.raises(DataValidationError, match="2 cells on every row") as info:
        ce.io.read_sheet(path)
    assert info.value.rows == (2,)


def test_an_unknown_sheet_is_named_with_a_suggestion(export):
    with pytest.raises(DataValidationError) as info:
        ce.io.read_sheet(export / BOOK, sheet="Rooster")
    assert "no sheet named 'Rooster'; did you mean 'Roster'?" in str(info.value)
    assert "'Roster', 'Staff'" in str(info.value)


# --------------------------------------------------------------------------- recoding


def _apply(column: str, cells: list[str], table: str = "roster", **kw):
    raw = pd.DataFrame({"Their column": cells}, index=range(5, 5 + len(cells)), dtype="string")
    raw.attrs.update({"source": "x.xlsx", "sheet": "S", "header_row": 4})
    spec = TableMapping(table, "x.xlsx", columns={"Their column": column}, **kw)
    return apply_mapping(raw, spec)


def test_grades_percentages_and_yes_no_are_recoded():
    out, problems, _ = _apply("grade", ["8th Grade", "Grade 10", "twelfth", "9", " 6th "])
    assert problems == [] and list(out["grade"]) == ["8", "10", "12", "9", "6"]
    out, problems, _ = _apply("fte", ["45%", "100%", "0.5", "50 %"], table="coordinators")
    assert problems == [] and list(out["fte"]) == ["0.45", "1", "0.5", "0.5"]
    out, problems, _ = _apply("consent", ["Yes", "no", "Y", "signed", "0"])
    assert problems == [] and list(out["consent"]) == ["1", "0", "1", "1", "0"]


def test_service_wordings_map_onto_the_ten_areas_and_other():
    words = list(SERVICE)
    out, problems, _ = _apply(
        "service_type",
        words,
        table="contacts",
        values={
            "service_type": {
                "Lunch Bunch": "social_life_skills",
                "Colege & Career": "college_career",
            }
        },
    )
    assert problems == []
    assert list(out["service_type"]) == [SERVICE[w] for w in words]
    assert set(out["service_type"]) <= set(schema.SERVICE_AREAS)
    assert schema.OTHER_SERVICE_AREA in set(out["service_type"])


def test_the_users_wordings_win_over_the_shipped_ones():
    out, problems, _ = _apply(
        "service_type",
        ["Attendance Check-In"],
        table="contacts",
        values={"service_type": {"attendance check-in": "academics"}},
    )
    assert problems == [] and list(out["service_type"]) == ["academics"]


def test_unknown_wordings_name_table_sheet_column_rows_and_suggest():
    _, problems, _ = _apply(
        "mode", ["1:1", "Smal Group", "Smal Group", "Carrier pigeon"], table="contacts"
    )
    assert len(problems) == 2
    text = str(problems[0])
    assert text.startswith("contacts (x.xlsx, sheet 'S'): column 'Their column (mode)'")
    assert "'Smal Group' is not a known wording; did you mean 'small group' (group)?" in text
    assert "(rows 6, 7)" in text  # data start below the header in row 4 of the sheet
    assert "[contacts.values.mode]" in problems[0].expected
    assert "did you mean" not in str(problems[1]) and "(row 8)" in str(problems[1])


def test_unknown_grades_are_errors_with_their_rows():
    _, problems, _ = _apply("grade", ["8th Grade", "Kindergarten"])
    (p,) = problems
    assert p.rows == (6,) and "'Kindergarten'" in p.message and p.column == "Their column (grade)"


def test_student_identifiers_are_never_shown(tmp_path):
    raw = pd.DataFrame({"ID": ["S1"], "Mode": ["S12345 by phone"]}, index=[2], dtype="string")
    raw.attrs.update({"source": "x.csv", "sheet": None, "header_row": 1})
    spec = TableMapping("contacts", "x.csv", columns={"ID": "student_id", "Mode": "mode"})
    _, problems, _ = apply_mapping(raw, spec)
    # the mode value is shown (it is not an identifier); a student identifier never is
    assert all("S1'" not in str(p) for p in problems)


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("values", "dates", "expected"),
    [
        (["09/14/2012", "01/02/2013"], "auto", ["2012-09-14", "2013-01-02"]),
        (["2012-09-14", "2013-01-02"], "auto", ["2012-09-14", "2013-01-02"]),
        (["09/14/2012", "2013-01-02"], "auto", ["2012-09-14", "2013-01-02"]),
        (["01/02/2013", "3/4/2013"], "US", ["2013-01-02", "2013-03-04"]),
        (["2012-09-14"], "ISO", ["2012-09-14"]),
        # a time of day is dropped: contacts are counted by day
        (["2012-09-14 10:30:00", "09/14/2012 3:15 PM"], "auto", ["2012-09-14", "2012-09-14"]),
    ],
)
def test_us_and_iso_dates_are_read(values, dates, expected):
    out, problems, _ = _apply("date", values, table="contacts", dates=dates)
    assert problems == [] and list(out["date"]) == expected


@pytest.mark.parametrize(
    ("values", "dates", "says"),
    [
        (["01/02/2013", "03/04/2013"], "auto", "are ambiguous: every one could be month first"),
        (["14/09/2012", "01/02/2013"], "auto", "day first (DD/MM/YYYY)"),
        (["14/09/2012"], "US", "day first (DD/MM/YYYY)"),
        (["09/14/12"], "US", "two-digit year, which is ambiguous"),
        (["09/14/2012"], "ISO", 'the mapping says dates = "ISO"'),
        (["Sept 14, 2012"], "auto", "not dates cis-eval reads"),
        (["02/30/2013"], "US", "not real calendar dates"),
    ],
)
def test_ambiguous_and_unreadable_dates_are_errors_that_say_so(values, dates, says):
    _, problems, _ = _apply("date", values, table="contacts", dates=dates)
    assert problems and says in problems[0].message
    assert problems[0].rows[0] >= 5 and problems[0].source == "contacts (x.xlsx, sheet 'S')"


def test_ambiguous_dates_name_the_setting_that_resolves_them():
    _, problems, _ = _apply("date", ["01/02/2013"], table="contacts")
    assert 'dates = "US" in the [contacts] section' in problems[0].expected


# --------------------------------------------------------------------------- whole files


def test_every_problem_of_every_table_is_reported_at_once(tmp_path):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Kids"
    ws.append(["Program roster"])
    ws.append(["ID", "Campus", "Grade"])
    ws.append(["1", "A", "8th Grade"])
    ws.append(["2", "A", "Kindergarten"])
    book.save(tmp_path / "x.xlsx")
    _write_csv(
        tmp_path / "log.csv",
        [
            ["ID", "Student", "When", "Min", "Type", "Tier", "Mode"],
            ["c1", "1", "14/09/2012", "30", "Tutoring", "1", "1:1"],
        ],
    )
    m = _mapping(
        tmp_path,
        """
[roster]
file = "x.xlsx"
sheet = "Kids"
[roster.columns]
ID = "student_id"
Campus = "school_id"
Grade = "grade"
[contacts]
file = "log.csv"
[contacts.columns]
ID = "contact_id"
Student = "student_id"
When = "date"
Min = "minutes"
Type = "service_type"
Tier = "tier"
Mode = "mode"
""",
    )
    with pytest.raises(DataValidationError) as info:
        ce.load_export(m)
    text = str(info.value)
    assert "roster (x.xlsx, sheet 'Kids'): column 'Grade (grade)'" in text and "(row 4)" in text
    assert "contacts (log.csv): column 'When (date)'" in text and "(row 2)" in text
    assert len(info.value.problems) == 2


def test_a_missing_mapped_column_is_named_with_a_suggestion(tmp_path):
    _write_csv(tmp_path / "r.csv", [["Student ID", "Campus"], ["1", "A"]])
    m = _mapping(
        tmp_path,
        '[roster]\nfile = "r.csv"\n[roster.columns]\n"Student Id#" = "student_id"\n'
        'Campus = "school_id"\n',
    )
    with pytest.raises(DataValidationError, match="did you mean 'Student ID'"):
        ce.load_export(m)


def test_a_missing_export_file_names_the_table(tmp_path):
    m = _mapping(tmp_path, '[roster]\nfile = "gone.xlsx"\nsheet = "R"\n')
    with pytest.raises(
        DataValidationError, match=r"roster \(gone.xlsx, sheet 'R'\): file not found"
    ):
        ce.load_export(m)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[rooster]\nfile = "a.csv"\n', "did you mean 'roster'"),
        (
            '[roster]\nfile = "a.csv"\n[roster.columns]\nA = "studnet_id"\n',
            "did you mean 'student_id'",
        ),
        (
            '[roster]\nfile = "a.csv"\n[roster.columns]\nA = "treatment"\n',
            "not a column of the roster",
        ),
        (
            '[contacts]\nfile = "a.csv"\n[contacts.values.mode]\nx = "indivdual"\n',
            "did you mean 'individual'",
        ),
        ('dates = "DMY"\n[roster]\nfile = "a.csv"\n', "unknown date format"),
        ('[roster]\nfile = "a.csv"\nheader_row = 0\n', "is not a row"),
        (
            '[roster]\nfile = "a.csv"\n[students]\nfile = "b.csv"\n',
            "both a [roster] and a [students]",
        ),
        ("[roster]\n", "no file named"),
        ("", "describes no table"),
        (
            '[roster]\nfile = "a.csv"\n[roster.columns]\nA = "student_id"\nB = "student_id"\n',
            "as 'A' does",
        ),
    ],
)
def test_mapping_file_mistakes_are_reported_with_suggestions(text, says):
    with pytest.raises(DataValidationError) as info:
        parse_mapping(tomllib.loads(text), source="m.toml")
    assert says in str(info.value) and "m.toml" in str(info.value)


def test_a_mapping_that_is_not_toml_is_a_clear_error(tmp_path):
    with pytest.raises(DataValidationError, match="is not valid TOML"):
        ce.load_export(_mapping(tmp_path, "[roster\n"))


# --------------------------------------------------------------------------- shipped wordings


def test_shipped_wordings_are_unambiguous_and_map_to_allowed_codes():
    data = tomllib.loads(
        resources.files("cis_eval").joinpath("_resources/export_wordings.toml").read_text("utf-8")
    )
    allowed = {
        "service_type": set(schema.SERVICE_AREAS),
        "tier": {"1", "2"},
        "mode": set(schema.MODES),
        "school_level": {"middle", "high"},
        "binary": {"0", "1"},
    }
    for vocab, codes in data["values"].items():
        assert set(codes) == allowed[vocab], vocab
        seen: dict[str, str] = {}
        for code, words in codes.items():
            for w in words:
                assert seen.setdefault(wording_key(w), code) == code, (vocab, w)
    for col in data["columns"]:
        assert any(
            col in schema.COLUMNS[t] for t in ("roster", "students", "contacts", "coordinators")
        )
    assert len(schema.SERVICE_AREAS) == 11 and schema.OTHER_SERVICE_AREA == "other"
    assert shipped_wordings()["service_type"]["attendance check in"] == "other"


def test_shipped_wordings_are_a_fresh_copy():
    words = shipped_wordings()
    words["mode"]["1 1"] = "group"
    assert shipped_wordings()["mode"]["1 1"] == "individual"


# --------------------------------------------------------------------------- contract


def test_fidelity_roster_contract_and_coordinators_across_schools():
    assert [c.name for c in schema.ROSTER][:2] == ["student_id", "school_id"]
    assert all(not c.required for c in schema.ROSTER[2:])
    assert set(schema.FIDELITY_TABLES) == {"roster", "contacts", "coordinators"}
    assert schema.KEYS["coordinators"] == ("coordinator_id", "school_id")
    # the trial's students table is a superset of the roster
    assert set(schema.COLUMNS["roster"]) <= set(schema.COLUMNS["students"])
    dd = ce.data_dictionary()
    uses = dd[dd["table"] == "students"].set_index("column")["roster"]
    assert uses["student_id"] == "required" and uses["service_start"] == "optional"
    assert uses["treatment"] == ""
    readme = schema.render_dataset_readme(
        script="s.py", seed=1, scenario="interim", version="0", summary="x"
    )
    assert (
        "## roster (fidelity only)" in readme
        and "coordinators: coordinator_id, school_id" in readme
    )


# --------------------------------------------------------------------------- other commands


def test_validate_reads_the_tables_through_a_mapping_file(export, capsys):
    # a mapped [roster] is checked as a program roster: no treatment, no outcomes
    assert main(["validate", "--mapping", str(export / MAPPING)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Validation passed")
    assert (
        "note: roster (affiliate_export.xlsx, sheet 'Roster'): column names found in row 4" in err
    )
    assert "contacts: 1,950 rows checked" in out and "coordinators: 4 rows checked" in out


def test_mapping_and_per_table_files_do_not_mix(export, capsys):
    args = ["--mapping", str(export / MAPPING), "--students", str(export / LOG)]
    assert main(["validate", *args]) == 2
    assert "leave out --students" in capsys.readouterr().err
    assert main(["fidelity", "--out", str(export / "r.html")]) == 2
    assert "give --students and --contacts, or a --mapping file" in capsys.readouterr().err


def test_a_trial_in_contract_shape_drafts_a_students_mapping(tmp_path, small_trial):
    ce.write_trial(small_trial, tmp_path)
    files = [str(tmp_path / f"{n}.csv") for n in ("students", "contacts", "coordinators")]
    out = tmp_path / "m.toml"
    assert main(["map", "--init", *files, "--out", str(out)]) == 0
    drafted = tomllib.loads(out.read_text())
    assert set(drafted) == {"students", "contacts", "coordinators"}
    assert drafted["students"]["columns"]["treatment"] == "treatment"
    loaded = ce.load_export(out)
    pd.testing.assert_frame_equal(
        loaded.contacts.astype(str),
        small_trial.contacts.astype(str).reset_index(drop=True),
        check_dtype=False,
    )


def test_a_file_that_is_not_really_a_workbook_is_a_clear_error(tmp_path):
    fake = tmp_path / "export.xlsx"
    fake.write_text("id,school\n1,A\n")
    with pytest.raises(DataValidationError, match=r"export\.xlsx: is not an Excel workbook"):
        ce.io.read_sheet(fake)
    # a damaged legacy workbook: calamine's own error family, once an internal error
    legacy = tmp_path / "export.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x07" * 600)
    with pytest.raises(DataValidationError, match=r"export\.xls: could not be read .*damaged"):
        ce.io.read_sheet(legacy)


def test_files_in_a_drafted_mapping_are_relative_to_the_mapping_file(export):
    out = export / "mappings" / "lincoln.toml"
    out.parent.mkdir()
    assert main(["map", "--init", str(export / BOOK), str(export / LOG), "--out", str(out)]) == 0
    drafted = tomllib.loads(out.read_text())
    assert drafted["roster"]["file"] == "../affiliate_export.xlsx"
    assert drafted["contacts"]["file"] == "../service_log.csv"


def test_the_mapped_log_and_staff_pass_validation(export):
    loaded = ce.load_export(export / MAPPING)
    report = ce.validate(None, loaded.contacts, loaded.coordinators, raise_on_error=False)
    assert report.ok, report.to_text()
    assert (report.contacts["service_type"] == "other").sum() == sum(
        r["Service Category"] == "Attendance Check-In" for r in _raw_log()
    )


def test_fidelity_runs_from_the_export_through_the_mapping_file(export, capsys):
    out = export / "report.html"
    assert main(["fidelity", "--mapping", str(export / MAPPING), "--out", str(out)]) == 0
    assert "(3 schools" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    assert not any(str(r["Student ID"]) in html for r in _raw_sheet("Roster", 4))


@pytest.mark.parametrize(
    ("small", "large", "typo"),
    [
        ("SCH005800", "SCH008080", False),  # codes that differ in their numbers
        ("PS 112", "PS 121", False),
        ("Lincon Middle 2", "Lincoln Middle 2", True),  # the words differ: a typo
    ],
)
def test_only_names_that_differ_in_their_words_look_like_typos(small, large, typo):
    from cis_eval.data.mapping import school_warnings

    roster = pd.DataFrame({"student_id": range(41), "school_id": [small] + [large] * 40})
    found = [w for w in school_warnings({"roster": roster}) if "close to" in w.message]
    assert bool(found) == typo
