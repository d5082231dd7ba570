from __future__ import annotations

import re

import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.errors import DataValidationError, DesignWarning


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_trial):
    folder = tmp_path_factory.mktemp("trial")
    ce.write_trial(small_trial, folder)
    return folder


def _load(folder, name):
    return ce.load(folder / f"{name}.csv")


def _edit(frame, rows, column, value):
    out = frame.copy()
    out.loc[rows, column] = value
    out.attrs["source"] = frame.attrs.get("source", "students.csv")
    return out


def _problem(report, column, severity="error"):
    found = [p for p in report.problems if p.column == column and p.severity == severity]
    assert found, f"no {severity} for {column}: {report.problems}"
    return found[0]


def test_clean_files_pass_and_are_typed(files):
    r = ce.validate(
        _load(files, "students"), _load(files, "contacts"), _load(files, "coordinators")
    )
    assert r.ok
    assert str(r.students["days_present"].dtype) == "Int64"
    assert str(r.contacts["date"].dtype).startswith("datetime64")
    assert r.students["student_id"].dtype == "string"


def test_percentages_instead_of_proportions(files):
    s = _edit(_load(files, "students"), [16, 203, 510], "prior_attendance_rate", "85.5")
    with pytest.raises(DataValidationError) as exc:
        ce.validate(s)
    p = exc.value.problems[0]
    assert (p.source, p.column, p.rows) == ("students.csv", "prior_attendance_rate", (18, 205, 512))
    assert "a proportion, not a percentage" in p.expected
    assert "students.csv: column 'prior_attendance_rate': 3 value(s) outside" in str(exc.value)


def test_all_problems_are_reported_at_once(files):
    s = _load(files, "students")
    s = _edit(s, [0], "treatment", "2")
    s = _edit(s, [1], "grade", "seven")
    s = _edit(s, [2], "school_level", "elementary")
    s = s.drop(columns=["consent", "days_enrolled"])
    r = ce.validate(s, raise_on_error=False)
    cols = {p.column for p in r.errors}
    assert {"treatment", "grade", "school_level", "days_enrolled"} <= cols
    assert "consent" not in cols  # optional column
    assert _problem(r, "treatment").expected.startswith("0 or 1")
    assert "not numbers" in _problem(r, "grade").message
    assert "elementary" in _problem(r, "school_level").message
    assert _problem(r, "days_enrolled").message == "required column is missing"


def test_errors_never_echo_student_identifiers(files):
    s = _load(files, "students")
    dup = s.copy()
    dup.loc[5, "student_id"] = dup.loc[6, "student_id"]
    dup.loc[7, "student_id"] = ""
    c = _load(files, "contacts")
    c.loc[3, "student_id"] = "ZZ-SECRET-1"
    r = ce.validate(dup, c, raise_on_error=False)
    text = r.to_text()
    for sid in [*s["student_id"], "ZZ-SECRET-1"]:
        assert sid not in text
    messages = [p.message for p in r.errors if p.column == "student_id"]
    assert any("repeat a student identifier" in m for m in messages)
    assert any("empty cell" in m for m in messages)
    with pytest.raises(DataValidationError) as exc:
        ce.validate(dup, c)
    assert "ZZ-SECRET-1" not in str(exc.value)


def test_student_in_two_schools(files):
    s = _load(files, "students")
    extra = s.iloc[[0]].copy()
    extra["school_id"] = s.loc[s["school_id"] != s.loc[0, "school_id"], "school_id"].iloc[0]
    both = pd.concat([s, extra], ignore_index=True)
    r = ce.validate(both, raise_on_error=False)
    assert "two schools" in _problem(r, "student_id").message


def test_inconsistent_counts(files):
    s = _load(files, "students")
    s.loc[4, "days_present"] = "200"
    s.loc[4, "days_enrolled"] = "180"
    s.loc[9, "core_courses_failed"] = "9"
    s.loc[9, "core_courses_taken"] = "8"
    r = ce.validate(s, raise_on_error=False)
    assert _problem(r, "days_present").rows == (6,)
    assert "more core courses failed than taken" in _problem(r, "core_courses_failed").message


def test_school_with_one_arm_is_a_warning_naming_the_school(files):
    s = _load(files, "students")
    school = s.loc[0, "school_id"]
    s.loc[s["school_id"] == school, "treatment"] = "1"
    with pytest.warns(DesignWarning, match=re.escape(school)):
        r = ce.validate(s)
    assert r.ok
    w = _problem(r, "treatment", "warning")
    assert "only one arm" in w.message and "drop" in w.message


def test_contacts_problems(files):
    s, c, k = _load(files, "students"), _load(files, "contacts"), _load(files, "coordinators")
    c.loc[0, "minutes"] = "-10"
    c.loc[1, "minutes"] = "900"
    c.loc[2, "service_type"] = "Tutoring"
    c.loc[3, "date"] = "2031-02-30"
    c.loc[4, "date"] = "2019-03-01"
    c.loc[5, "tier"] = "3"
    c.loc[6, "student_id"] = "not-in-roster"
    c.loc[7, "contact_id"] = c.loc[8, "contact_id"]
    r = ce.validate(s, c, k, raise_on_error=False)
    assert _problem(r, "minutes").n_rows == 2
    assert "data-entry error" in _problem(r, "minutes").expected
    assert "Tutoring" in _problem(r, "service_type").message
    dates = [p for p in r.errors if p.column == "date"]
    assert any("not dates" in p.message for p in dates)
    assert any("outside the school year" in p.message for p in dates)
    assert "not in the roster" in _problem(r, "student_id").message
    assert _problem(r, "tier").rows == (7,)
    assert "repeat a contact identifier" in _problem(r, "contact_id").message


def test_explicit_school_year(files):
    c = _load(files, "contacts")
    r = ce.validate(contacts=c, school_year=("2012-10-01", "2013-05-31"), raise_on_error=False)
    assert "outside the school year" in _problem(r, "date").message
    assert "2012-10-01" in _problem(r, "date").expected


def test_empty_log_is_an_error(files):
    c = _load(files, "contacts").iloc[:0]
    with pytest.raises(DataValidationError, match="no rows"):
        ce.validate(contacts=c)


def test_friendly_spellings_are_normalised(files):
    c = _load(files, "contacts")
    c.loc[0, "service_type"] = "Behaviour"
    c.loc[1, "mode"] = "Individual"
    c.loc[2, "date"] = "09/20/2012"
    r = ce.validate(contacts=c)
    assert r.contacts.loc[0, "service_type"] == "behavior"
    assert r.contacts.loc[1, "mode"] == "individual"
    assert str(r.contacts.loc[2, "date"].date()) == "2012-09-20"


def test_coordinator_checks(files):
    k = _load(files, "coordinators")
    # one coordinator may serve two schools; the same coordinator and school twice is an error
    k.loc[1, ["coordinator_id", "school_id"]] = k.loc[0, ["coordinator_id", "school_id"]].tolist()
    k.loc[2, "fte"] = "2"
    r = ce.validate(students=_load(files, "students"), coordinators=k, raise_on_error=False)
    assert "repeat a coordinator" in _problem(r, "coordinator_id").message
    assert _problem(r, "fte").rows == (4,)


def test_inputs_are_not_modified(files):
    s, c = _load(files, "students"), _load(files, "contacts")
    s0, c0 = s.copy(), c.copy()
    ce.validate(s, c)
    pd.testing.assert_frame_equal(s, s0)
    pd.testing.assert_frame_equal(c, c0)


def test_report_table_and_usage_errors(files):
    s = _edit(_load(files, "students"), [0], "female", "maybe")
    r = ce.validate(s, raise_on_error=False)
    t = r.table()
    assert list(t.to_frame().columns) == [
        "Severity",
        "File",
        "Column",
        "Rows",
        "Problem",
        "Expected",
    ]
    assert "header as row 1" in r.to_text()
    with pytest.raises(ValueError, match="at least one table"):
        ce.validate()
    with pytest.raises(TypeError, match="DataFrame"):
        ce.validate(students=[1, 2])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- exact numbers


def test_numbers_with_commas_are_refused_not_misread(files):
    s = _load(files, "students")
    s = _edit(s, [3], "core_credits_earned", "0,5")
    s = _edit(s, [4], "days_enrolled", "1,80")
    s = _edit(s, [5], "days_present", "45%")
    s = _edit(s, [6], "suspensions_iss", "3 times")
    r = ce.validate(s, raise_on_error=False)
    comma = [p for p in r.errors if "decimal comma" in p.message]
    assert {p.column for p in comma} == {"core_credits_earned", "days_enrolled"}
    assert _problem(r, "days_enrolled").rows == (6,)
    assert "percent sign" in _problem(r, "days_present").message
    assert "unit" in _problem(r, "suspensions_iss").message
    # nothing was read as 5, 180, 45 or 3
    assert pd.isna(r.students.loc[3, "core_credits_earned"])
    assert pd.isna(r.students.loc[4, "days_enrolled"])


def test_a_declared_number_format_is_read_exactly(files):
    s = _load(files, "students")
    commas = s.copy()
    for c in s.columns:
        commas[c] = s[c].str.replace(".", ",", regex=False)
    pd.testing.assert_frame_equal(
        ce.validate(commas, decimal=",").students, ce.validate(s).students
    )
    # a point is then not a decimal mark
    t = _edit(commas, [5], "prior_core_gpa", "2.5")
    bad = ce.validate(t, decimal=",", raise_on_error=False)
    assert "declared number format" in _problem(bad, "prior_core_gpa").message
    assert bad.errors[0].rows == (7,) and "no thousands separator" in bad.errors[0].expected
    # thousands separators between groups of three digits only
    u = _edit(_load(files, "students"), [6], "days_enrolled", "1,800")
    u = _edit(u, [7], "days_present", "1,80")
    got = ce.validate(u, thousands=",", raise_on_error=False)
    assert got.students.loc[6, "days_enrolled"] == 1800
    assert _problem(got, "days_present").rows == (9,)
    assert pd.isna(got.students.loc[7, "days_present"])
    v = _edit(_load(files, "students"), [8], "prior_attendance_rate", "1.000,5")
    with pytest.raises(DataValidationError, match="outside the allowed range"):
        ce.validate(v, decimal=",", thousands=".")  # read as 1000.5, not refused as text
    with pytest.raises(ce.errors.OptionError, match="must differ"):
        ce.validate(v, decimal=".", thousands=".")


def test_yes_no_words_in_binary_columns(files):
    s = _load(files, "students")
    s = _edit(s, [0], "treatment", "Yes")
    s = _edit(s, [1], "treatment", "no")
    s = _edit(s, [2], "female", "TRUE")
    r = ce.validate(s)
    assert r.students.loc[0, "treatment"] == 1 and r.students.loc[1, "treatment"] == 0
    assert r.students.loc[2, "female"] == 1
    bad = ce.validate(_edit(s, [3], "treatment", "maybe"), raise_on_error=False)
    assert "0 or 1" in _problem(bad, "treatment").expected


def test_values_echoed_only_as_short_category_codes(files):
    ssn, name = "123-45-6789", "Jane Q. Student"
    s = _load(files, "students")
    s = _edit(s, [0], "school_level", ssn)
    s = _edit(s, [1], "school_level", "elementary")
    s = _edit(s, [2], "grade", ssn)
    s = _edit(s, [3], "assignment_date", name)
    s = _edit(s, [4], "prior_core_gpa", name)
    r = ce.validate(s, raise_on_error=False)
    text = r.to_text()
    assert ssn not in text and name not in text
    assert "'elementary'" in _problem(r, "school_level").message
    with pytest.raises(DataValidationError) as exc:
        ce.validate(s)
    assert ssn not in str(exc.value) and name not in str(exc.value)


# ----------------------------------------------------------------------------- dates


def test_dates_in_the_future_are_errors(files):
    s = _edit(_load(files, "students"), [2], "assignment_date", "2999-09-14")
    r = ce.validate(s, raise_on_error=False)
    p = _problem(r, "assignment_date")
    assert "in the future" in p.message and p.rows == (4,)
    c = _edit(_load(files, "contacts"), [0], "date", "2999-01-01")
    assert any("future" in q.message for q in ce.validate(contacts=c, raise_on_error=False).errors)


def test_dates_far_from_the_school_year_are_errors(files):
    s, c = _load(files, "students"), _load(files, "contacts")
    late = c.copy()
    when = pd.to_datetime(late["date"]) + pd.DateOffset(years=14)
    late["date"] = when.dt.strftime("%Y-%m-%d")
    r = ce.validate(s, late, raise_on_error=False)
    messages = [p.message for p in r.errors]
    assert any("more than a year after the student's random assignment" in m for m in messages)
    assert any("more than a year before the school year" in m for m in messages)
    # an explicit school year checks the assignment dates alone
    r2 = ce.validate(s, school_year=("2020-08-01", "2021-07-31"), raise_on_error=False)
    assert "more than a year before" in _problem(r2, "assignment_date").message
    r3 = ce.validate(s, school_year=("2005-08-01", "2006-07-31"), raise_on_error=False)
    assert "after the end of the school year" in _problem(r3, "assignment_date").message


def test_school_year_option_is_checked(files):
    s = _load(files, "students")
    for bad in [("abc", "def"), ("2013-07-31", "2012-08-01"), "2012", ("2012-08-01",)]:
        with pytest.raises(ce.errors.OptionError, match="school_year"):
            ce.validate(s, school_year=bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- shape and size


def test_repeated_columns_in_a_frame_are_an_error(files):
    s = _load(files, "students")
    twice = pd.concat([s, s[["treatment"]]], axis=1)
    r = ce.validate(twice, raise_on_error=False)
    assert "appears 2 times" in _problem(r, "treatment").message


def test_a_frame_without_contract_columns_says_so(files):
    s = _load(files, "students")
    s.columns = [f"c{i}" for i in range(s.shape[1])]
    r = ce.validate(s, raise_on_error=False)
    assert any("does not look like a header" in p.message for p in r.errors)


def test_reports_and_errors_are_bounded(files):
    s = _load(files, "students")
    s.columns = [f"{c}_renamed" for c in s.columns]  # every required column missing
    r = ce.validate(s, raise_on_error=False)
    assert len(r.errors) > 20
    lines = r.to_text().splitlines()
    assert any(f"and {len(r.errors) - 20:,} more" in line for line in lines)
    assert len(lines) < 30
    with pytest.raises(DataValidationError) as exc:
        ce.validate(s)
    assert len(exc.value.problems) == len(r.errors)
    assert len(str(exc.value).splitlines()) == 22
    assert max(len(line) for line in str(exc.value).splitlines()) <= len("  - ") + 300


def test_a_number_like_school_identifier_is_not_repeated(files):
    ssn = "123-45-6789"
    s = _load(files, "students")
    school = s.loc[0, "school_id"]
    s.loc[s["school_id"] == school, "school_id"] = ssn
    s.loc[s["school_id"] == ssn, "treatment"] = "1"
    with pytest.warns(DesignWarning) as caught:
        r = ce.validate(s)
    w = _problem(r, "treatment", "warning")
    assert "only one arm" in w.message and "(identifier not shown)" in w.message
    assert all(ssn not in str(c.message) for c in caught) and ssn not in r.to_text()
