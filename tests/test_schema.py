from __future__ import annotations

import pandas as pd
import pytest

import cis_eval as ce
from cis_eval import schema


def test_three_tables_and_unique_columns():
    assert set(schema.TABLES) == {"students", "contacts", "coordinators"}
    for cols in schema.TABLES.values():
        names = [c.name for c in cols]
        assert len(names) == len(set(names))


def test_design_columns_of_the_contract_are_present():
    s = schema.COLUMNS["students"]
    for name in [
        "student_id",
        "school_id",
        "school_level",
        "grade",
        "treatment",
        "consent",
        "days_enrolled",
        "days_present",
        "core_courses_taken",
        "core_courses_failed",
        "core_credits_earned",
        "suspensions_iss",
        "suspensions_oss",
        "core_gpa",
    ]:
        assert name in s
    assert set(schema.COLUMNS["contacts"]) == {
        "contact_id",
        "student_id",
        "coordinator_id",
        "date",
        "minutes",
        "service_type",
        "tier",
        "mode",
    }
    assert len(schema.SERVICE_TYPES) == 10


def test_outcomes_cover_the_six_published_measures():
    assert ce.OUTCOME_NAMES == (
        "chronic_absence",
        "attendance_rate",
        "core_course_failure",
        "core_credits",
        "core_gpa",
        "suspensions",
    )
    lower = {o.name for o in ce.OUTCOMES if o.direction == "lower"}
    assert lower == {"chronic_absence", "core_course_failure", "suspensions"}
    for o in ce.OUTCOMES:
        assert o.prior in schema.BASELINE_COVARIATES
        for raw in o.raw:
            assert raw in schema.COLUMNS["students"]


def test_outcome_lookup_error_lists_known_names():
    with pytest.raises(KeyError, match="chronic_absence"):
        schema.outcome("absences")


def test_data_dictionary_round_trips_the_column_specs():
    dd = ce.data_dictionary()
    assert len(dd) == sum(len(c) for c in schema.TABLES.values())
    for row in dd.itertuples():
        col = schema.COLUMNS[row.table][row.column]
        assert row.kind == col.kind
        assert row.required == col.required
        assert row.categories == "|".join(col.categories)
        if col.minimum is None:
            assert pd.isna(row.minimum)
        else:
            assert row.minimum == col.minimum


def test_shipped_dictionary_and_readme_are_rendered_from_code(synthetic_dir):
    shipped = pd.read_csv(synthetic_dir / "data_dictionary.csv", keep_default_na=False)
    assert list(shipped["column"]) == list(ce.data_dictionary()["column"])
    readme = (synthetic_dir / "README.md").read_text()
    for cols in schema.TABLES.values():
        for c in cols:
            assert f"`{c.name}`" in readme
