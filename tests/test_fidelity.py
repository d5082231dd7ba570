"""Fidelity metrics: hand-made logs with known answers, a pandas cross-check, bad inputs."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cis_eval as ce
from cis_eval import schema
from cis_eval.errors import DataValidationError, DesignWarning, OptionError, OptionTypeError
from cis_eval.fidelity import (
    FidelityTargets,
    Target,
    fidelity,
    published_targets,
    service_receipt,
)

YEAR = ("2012-08-01", "2013-07-31")


# ----------------------------------------------------------------------------- fixtures


def roster() -> pd.DataFrame:
    """Two schools. S1: program p1-p4, control c1-c2. S2: program q1-q3, control d1."""
    ids = ["p1", "p2", "p3", "p4", "c1", "c2", "q1", "q2", "q3", "d1"]
    return pd.DataFrame(
        {
            "student_id": ids,
            "school_id": ["S1"] * 6 + ["S2"] * 4,
            "treatment": [1, 1, 1, 1, 0, 0, 1, 1, 1, 0],
            "assignment_date": pd.to_datetime(["2012-09-10"] * 10),
        }
    )


def log() -> pd.DataFrame:
    rows = [
        # p1: either side of the winter break (Thursday 20 December, Monday 7 January)
        ("p1", "K1", "2012-12-20", 30, "academics", 2, "individual"),
        ("p1", "K1", "2013-01-07", 45, "behavior", 2, "group"),
        # p2: a single contact
        ("p2", "K1", "2012-10-01", 60, "academics", 2, "individual"),
        # p3: two contacts on the same day, one school-wide contact, a second coordinator
        ("p3", "K1", "2012-11-05", 30, "mental_health", 2, "family"),
        ("p3", "K2", "2012-11-05", 30, "mental_health", 2, "individual"),
        ("p3", "K1", "2012-11-06", 90, "enrichment_motivation", 1, "group"),
        # c1: a control-group student served anyway (crossover)
        ("c1", "K1", "2012-10-15", 20, "behavior", 2, "individual"),
        # q1: Sunday then Monday: one day apart, two calendar weeks
        ("q1", "K2", "2012-10-07", 40, "basic_needs", 2, "individual"),
        ("q1", "K2", "2012-10-08", 40, "basic_needs", 2, "individual"),
    ]
    out = pd.DataFrame(
        rows,
        columns=["student_id", "coordinator_id", "date", "minutes", "service_type", "tier", "mode"],
    )
    out.insert(0, "contact_id", [f"k{i}" for i in range(len(out))])
    out["date"] = pd.to_datetime(out["date"])
    return out


def staff() -> pd.DataFrame:
    # K3 works at S2 but logged no contact: a coordinator with no students.
    return pd.DataFrame(
        {
            "coordinator_id": ["K1", "K2", "K3"],
            "school_id": ["S1", "S2", "S2"],
            "fte": [1.0, 1.0, 0.5],
            "caseload": [80, 60, 5],
            "level2_time_share": [0.5, 0.4, 0.3],
        }
    )


@pytest.fixture(scope="module")
def hand() -> ce.FidelityResult:
    # through the end of the year: full-year targets, although the log stops in January
    return fidelity(roster(), log(), staff(), school_year=YEAR, through=YEAR[1])


def student(res: ce.FidelityResult, sid: str) -> pd.Series:
    s = res.to_frame("student")
    return s.loc[s["student_id"] == sid].iloc[0]


# ----------------------------------------------------------------------------- known answers


def test_weeks_across_the_winter_break(hand):
    p1 = student(hand, "p1")
    assert p1["contacts"] == 2
    assert p1["hours"] == pytest.approx(75 / 60)
    assert p1["span_weeks"] == pytest.approx(18 / 7)  # calendar time, break included
    assert p1["active_weeks"] == 2  # only the weeks with a contact
    assert p1["contact_days"] == 2
    assert p1["days_to_first_contact"] == 101
    assert p1["contacts_per_month"] == pytest.approx(2.0)  # span under a month counts as one
    assert p1["first_contact"] == pd.Timestamp("2012-12-20")
    assert p1["last_contact"] == pd.Timestamp("2013-01-07")


def test_a_student_with_one_contact(hand):
    p2 = student(hand, "p2")
    assert (p2["contacts"], p2["active_weeks"], p2["contact_days"]) == (1, 1, 1)
    assert p2["span_weeks"] == 0
    assert p2["contacts_per_month"] == 1
    assert p2["days_to_first_contact"] == 21


def test_contacts_on_the_same_day_count_twice_but_are_one_day(hand):
    p3 = student(hand, "p3")
    assert p3["contacts"] == 2 and p3["contact_days"] == 1 and p3["active_weeks"] == 1
    assert p3["span_weeks"] == 0
    assert p3["tier1_contacts"] == 1 and p3["tier1_hours"] == pytest.approx(1.5)
    assert p3["contacts_mental_health"] == 2 and p3["contacts_enrichment_motivation"] == 0
    assert (p3["contacts_family"], p3["contacts_individual"], p3["contacts_group"]) == (1, 1, 0)
    assert p3["n_coordinators"] == 2
    assert p3["coordinator_id"] == "K1"  # ties go to the first identifier


def test_sunday_and_monday_are_two_calendar_weeks(hand):
    q1 = student(hand, "q1")
    assert q1["active_weeks"] == 2 and q1["span_weeks"] == pytest.approx(1 / 7)


def test_unserved_students_have_zero_dosage_and_no_dates(hand):
    p4 = student(hand, "p4")
    assert p4["contacts"] == 0 and p4["hours"] == 0 and p4["received"] == 0
    assert np.isnan(p4["span_weeks"]) and np.isnan(p4["days_to_first_contact"])
    assert pd.isna(p4["first_contact"])


def test_student_frame_follows_the_roster(hand):
    s = hand.to_frame("student")
    assert s["student_id"].tolist() == roster()["student_id"].tolist()
    assert s.index.equals(roster().index)


def test_schools(hand):
    s = hand.to_frame("school").set_index("school_id")
    s1, s2 = s.loc["S1"], s.loc["S2"]
    assert (s1["program_students"], s1["students_reached"]) == (4, 3)
    assert s1["share_reached"] == pytest.approx(0.75)
    assert s1["contacts_mean"] == pytest.approx(5 / 3)
    assert s1["contacts_median"] == 2
    assert (s1["contacts_q1"], s1["contacts_q3"]) == (1.5, 2.0)  # linear interpolation
    assert s1["total_contacts"] == 5  # program students only: c1's contact is not here
    assert s1["total_hours"] == pytest.approx((75 + 60 + 60) / 60)
    assert (s1["control_students"], s1["control_reached"]) == (2, 1)
    assert (s2["program_students"], s2["students_reached"]) == (3, 1)
    assert s2["coordinators"] == 2 and s2["fte"] == 1.5
    assert s2["level2_time_share"] == pytest.approx((0.4 + 0.5 * 0.3) / 1.5)  # FTE-weighted


def test_coordinator_with_no_students(hand):
    c = hand.to_frame("coordinator").set_index("coordinator_id")
    k3 = c.loc["K3"]
    assert k3["students_served"] == 0 and k3["total_hours"] == 0 and k3["share_reached"] == 0
    assert np.isnan(k3["contacts_mean"])
    k1 = c.loc["K1"]
    assert (k1["students_served"], k1["control_students_served"]) == (3, 1)
    assert k1["total_contacts"] == 4  # p1 2, p2 1, p3 1 (its other contact is K2's)
    assert k1["share_reached"] == pytest.approx(3 / 4)
    # K2 is staffed at S2 but also saw p3 at S1: one row per coordinator and school,
    # each student counted at the school they are enrolled in.
    k2 = c.loc["K2"].set_index("school_id")
    assert k2.loc["S2", "students_served"] == 1  # q1
    assert k2.loc["S2", "share_reached"] == pytest.approx(1 / 3)
    assert k2.loc["S1", "students_served"] == 1  # p3
    assert k2.loc["S1", "share_reached"] == pytest.approx(1 / 4)
    assert np.isnan(k2.loc["S1", "fte"])  # not staffed there
    assert k1["caseload"] == 80 and k1["caseload_source"] == "reported"


def test_arms_give_the_service_contrast(hand):
    a = hand.to_frame("arm").set_index("arm")
    assert (a.loc["program", "students"], a.loc["program", "received"]) == (7, 4)
    assert (a.loc["control", "students"], a.loc["control", "received"]) == (3, 1)
    assert a.loc["program", "contacts_per_student"] == pytest.approx(7 / 7)
    assert a.loc["program", "share_at_least_10"] == 0
    assert a.loc["control", "contacts_per_served"] == 1


def test_service_mix_and_weeks(hand):
    mix = hand.to_frame("service_mix")
    prog2 = mix[(mix["arm"] == "program") & (mix["tier"] == 2)].set_index(["dimension", "code"])
    assert prog2.loc[("service_area", "academics"), "contacts"] == 2
    assert prog2.loc[("service_area", "basic_needs"), "students"] == 1
    assert prog2.loc[("service_area", "academics"), "hours"] == pytest.approx(1.5)
    assert prog2.xs("service_area")["share_of_contacts"].sum() == pytest.approx(1)
    w = hand.to_frame("weekly")
    w = w[(w["arm"] == "program") & (w["tier"] == 2)].set_index("week_start")
    assert w["contacts"].sum() == 7
    assert w.loc[pd.Timestamp("2012-12-17"), "contacts"] == 1
    assert w.loc[pd.Timestamp("2013-01-07"), "contacts"] == 1
    assert w.loc[pd.Timestamp("2012-12-24"), "contacts"] == 0  # the break
    assert w.loc[pd.Timestamp("2012-11-05"), "students"] == 1  # p3 twice in one day
    assert w.loc[pd.Timestamp("2012-10-01"), "students"] == 2  # p2 and q1 (Sunday 7th)


def test_benchmarks_flags_and_targets(hand):
    b = hand.to_frame("benchmarks").set_index("measure")
    assert b.loc["contacts", "study_benchmark"] == "at least 19"
    assert b.loc["contacts", "status_study"] == "below"
    # caseloads per FTE, averaged over coordinators (K3: 5 students at half-time)
    assert b.loc["caseload", "value"] == pytest.approx((80 + 60 + 5 / 0.5) / 3)
    assert b.loc["caseload", "status_study"] == "meets"
    s = hand.to_frame("school").set_index("school_id")
    assert s.loc["S1", "status_contacts"] == "below"
    assert "contacts" in s.loc["S1", "short_of_target"]


def test_published_benchmarks_come_from_package_data():
    t = published_targets()
    got = {x.measure: (x.low, x.high) for x in t.study}
    assert got == {
        "contacts": (19, None),
        "hours": (16, None),
        "weeks": (30, None),
        "caseload": (None, 84),
        "level2_time_share": (0.44, None),
    }
    assert "Corrin" in t.sources[0] and "MDRC" in t.sources[0]
    g = t.with_guide("standard")
    assert (g.guide[0].low, g.guide[0].high) == (50, 100)
    assert any("NCEE 2017-4028" in s for s in g.sources)
    assert t.with_guide("intensive").guide[0].high == 20


def test_user_targets_override_the_study_in_flags():
    t = published_targets().with_user(
        {"contacts": 1.5, "caseload": {"max": 70}, "tolerance": 0.0, "name": "Ours"}
    )
    assert t.effective("contacts").low == 1.5 and t.effective("hours").low == 16
    res = fidelity(roster(), log(), staff(), school_year=YEAR, through=YEAR[1], targets=t)
    s = res.to_frame("school").set_index("school_id")
    assert s.loc["S1", "status_contacts"] == "meets"  # 5/3 >= 1.5
    c = res.to_frame("coordinator").set_index("coordinator_id")
    assert c.loc["K1", "status_caseload"] == "above"
    k2 = c.loc["K2"].set_index("school_id")
    assert k2.loc["S2", "status_caseload"] == "meets"
    assert k2.loc["S1", "status_caseload"] == ""  # counted in the caseload reported at S2


@pytest.mark.parametrize(
    ("target", "value", "status"),
    [
        ((19, None), 19, "meets"),
        ((19, None), 17.2, "near"),
        ((19, None), 17.0, "below"),
        ((None, 84), 90, "near"),
        ((None, 84), 93, "above"),
        ((50, 100), 75, "meets"),
        ((50, 100), 40, "below"),
        ((19, None), np.nan, ""),
    ],
)
def test_target_status(target, value, status):
    t = Target("contacts", target[0], target[1], "x")
    assert t.status(value, 0.1) == status


@pytest.mark.parametrize(
    ("mapping", "column"),
    [
        ({"contacts_per_week": 3}, "contacts_per_week"),
        ({"contacts": -1}, "contacts"),
        ({"share_reached": 90}, "share_reached"),
        ({"caseload": {"min": 100, "max": 50}}, "caseload"),
        ({"hours": {"atleast": 3}}, "hours"),
        ({"tolerance": 2}, "tolerance"),
    ],
)
def test_bad_targets_are_clear(mapping, column):
    with pytest.raises(DataValidationError) as exc:
        published_targets().with_user(mapping, source="targets.toml")
    assert exc.value.column == column and exc.value.source == "targets.toml"


def test_fidelity_targets_is_frozen_and_public():
    t = published_targets()
    assert isinstance(t, FidelityTargets)
    with pytest.raises(AttributeError):
        t.tolerance = 0.5  # type: ignore[misc]


# ----------------------------------------------------------------------------- service receipt


def test_service_receipt_signature_is_fixed():
    sig = inspect.signature(service_receipt)
    assert str(sig) == (
        "(students: 'pd.DataFrame', contacts: 'pd.DataFrame', *, min_contacts: 'int' = 1, "
        "tier: 'int' = 2) -> 'pd.Series'"
    )


def test_service_receipt_matches_fidelity_and_aligns_to_the_index(hand):
    s = roster()
    s.index = range(100, 110)
    r = service_receipt(s, log())
    assert r.name == "received_services" and r.dtype == np.int64
    assert r.index.equals(s.index)
    assert r.tolist() == hand.to_frame("student")["received"].tolist()
    assert service_receipt(s, log(), min_contacts=2).tolist() == [1, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert service_receipt(s, log(), tier=1).tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]


def test_service_receipt_on_simulated_categorical_logs(small_trial):
    r = service_receipt(small_trial.students, small_trial.contacts, min_contacts=10)
    res = fidelity(small_trial.students, small_trial.contacts)
    expect = (res.to_frame("student")["contacts"] >= 10).astype(np.int64)
    assert r.tolist() == expect.tolist()


def test_service_receipt_checks_its_arguments():
    with pytest.raises(OptionError, match="at least 1"):
        service_receipt(roster(), log(), min_contacts=0)
    with pytest.raises(OptionTypeError, match="integer"):
        service_receipt(roster(), log(), min_contacts=True)
    with pytest.raises(OptionError, match="tier"):
        service_receipt(roster(), log(), tier=3)
    with pytest.raises(DataValidationError, match="'tier'"):
        service_receipt(roster(), log().drop(columns="tier"))


# ----------------------------------------------------------------------------- cross-check


def pandas_student_metrics(students: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """An independent pandas implementation of the per-student measures."""
    c = contacts.assign(
        student_id=contacts["student_id"].astype(str),
        date=pd.to_datetime(contacts["date"]),
    )
    t2 = c[c["tier"] == 2]
    monday = t2["date"] - pd.to_timedelta(t2["date"].dt.day_of_week, unit="D")
    t2 = t2.assign(week=monday, service_type=t2["service_type"].astype(str))
    g = t2.groupby("student_id")
    out = pd.DataFrame(
        {
            "contacts": g.size(),
            "hours": g["minutes"].sum() / 60,
            "first": g["date"].min(),
            "last": g["date"].max(),
            "active_weeks": g["week"].nunique(),
            "contact_days": g["date"].nunique(),
        }
    )
    out["span_weeks"] = (out["last"] - out["first"]).dt.days / 7
    out = out.join(pd.crosstab(t2["student_id"], t2["service_type"]).add_prefix("contacts_"))
    t1 = c[c["tier"] == 1].groupby("student_id").size().rename("tier1_contacts")
    out = out.join(t1, how="outer")
    ids = students["student_id"].astype(str)
    return out.reindex(ids).fillna({"contacts": 0, "hours": 0, "tier1_contacts": 0})


def test_duckdb_aggregation_matches_pandas_on_simulated_data(small_trial):
    res = fidelity(small_trial.students, small_trial.contacts, small_trial.coordinators)
    got = res.to_frame("student").set_index("student_id")
    want = pandas_student_metrics(small_trial.students, small_trial.contacts)
    for col in ("contacts", "hours", "tier1_contacts", "span_weeks"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float))
    served = want["contacts"] > 0
    for col in ("active_weeks", "contact_days"):
        np.testing.assert_array_equal(got.loc[served, col], want.loc[served, col])
    for area in ce.SERVICE_TYPES:
        col = f"contacts_{area}"
        expect = want[col].fillna(0) if col in want else 0
        np.testing.assert_array_equal(got[col].to_numpy(), np.asarray(expect, dtype=float))
    # School quartiles against pandas' own (linear interpolation, as DuckDB's quantile_cont).
    merged = small_trial.students[["student_id", "school_id", "treatment"]].assign(
        contacts=got["contacts"].to_numpy()
    )
    prog = merged[(merged["treatment"] == 1) & (merged["contacts"] > 0)]
    q = prog.groupby("school_id")["contacts"].quantile([0.25, 0.5, 0.75]).unstack()
    sch = res.to_frame("school").set_index("school_id")
    np.testing.assert_allclose(sch.loc[q.index, "contacts_q1"], q[0.25])
    np.testing.assert_allclose(sch.loc[q.index, "contacts_median"], q[0.5])
    np.testing.assert_allclose(sch.loc[q.index, "contacts_q3"], q[0.75])


def test_frame_parquet_and_csv_inputs_agree(tmp_path, small_trial):
    c = small_trial.contacts
    c.to_parquet(tmp_path / "log.parquet")
    ce.write_table(c, tmp_path / "log.csv")
    a = fidelity(small_trial.students, c).to_frame("student")
    b = fidelity(small_trial.students, tmp_path / "log.parquet").to_frame("student")
    d = fidelity(small_trial.students, str(tmp_path / "log.csv")).to_frame("student")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, d)


def test_column_map_for_a_raw_export(tmp_path, small_trial):
    export = small_trial.contacts.rename(columns={"student_id": "StudentNumber", "minutes": "Mins"})
    export.to_parquet(tmp_path / "export.parquet")
    a = fidelity(small_trial.students, small_trial.contacts).to_frame("school")
    b = fidelity(
        small_trial.students,
        tmp_path / "export.parquet",
        column_map={"StudentNumber": "student_id", "Mins": "minutes"},
    ).to_frame("school")
    pd.testing.assert_frame_equal(a, b)


def test_results_are_deterministic_and_frames_are_copies(small_trial):
    a = fidelity(small_trial.students, small_trial.contacts, small_trial.coordinators)
    b = fidelity(small_trial.students, small_trial.contacts, small_trial.coordinators)
    for level in ("student", "school", "coordinator", "arm", "service_mix", "weekly", "dosage"):
        pd.testing.assert_frame_equal(a.to_frame(level), b.to_frame(level))
    f = a.to_frame("school")
    f.loc[:, "students_reached"] = -1
    assert (a.to_frame("school")["students_reached"] >= 0).all()
    assert repr(a).startswith("FidelityResult(600 students, 8 schools")


def test_inputs_are_not_modified(small_trial):
    s, c, k = small_trial.students, small_trial.contacts, small_trial.coordinators
    before = (s.copy(), c.copy(), k.copy())
    fidelity(s, c, k)
    for now, then in zip((s, c, k), before, strict=True):
        pd.testing.assert_frame_equal(now, then)


# ----------------------------------------------------------------------------- bad inputs


def bad(edits: dict) -> pd.DataFrame:
    out = log()
    for (row, col), value in edits.items():
        out[col] = out[col].astype(object)
        out.loc[row, col] = value
    return out


@pytest.mark.parametrize(
    ("edit", "column", "words"),
    [
        ({(2, "service_type"): "astrology"}, "service_type", "not allowed (e.g. 'astrology')"),
        ({(2, "minutes"): -15}, "minutes", "outside the allowed range"),
        ({(2, "minutes"): 9000}, "minutes", "outside the allowed range"),
        ({(2, "minutes"): 12.5}, "minutes", "not whole numbers"),
        ({(2, "date"): pd.Timestamp("2014-03-01")}, "date", "outside the school year"),
        ({(2, "date"): "someday"}, "date", "not dates"),
        ({(2, "tier"): 3}, "tier", "outside the allowed range"),
        ({(2, "mode"): "carrier pigeon"}, "mode", "not allowed"),
        ({(2, "student_id"): "SECRET-77"}, "student_id", "not in the roster"),
        ({(2, "contact_id"): "k0"}, "contact_id", "repeat a contact identifier"),
    ],
)
def test_bad_logs_give_clear_errors_without_identifiers(edit, column, words):
    with pytest.raises(DataValidationError) as exc:
        fidelity(roster(), bad(edit), school_year=YEAR)
    p = exc.value.problems[0]
    assert p.column == column and words in p.message
    assert 4 in p.rows  # the edited row (index 2) is spreadsheet row 4
    text = str(exc.value)
    for sid in [*roster()["student_id"], "SECRET-77", *log()["contact_id"]]:
        assert f"'{sid}'" not in text and f" {sid} " not in text


@pytest.mark.parametrize("to_file", [False, True])
def test_category_spellings_follow_validation(tmp_path, to_file):
    # One normaliser serves validation and the log reader: a wording one accepts, the other does.
    spelt = {0: "Academics", 1: "Behaviour", 3: "Mental-Health", 4: " mental health "}
    c = bad({(row, "service_type"): v for row, v in spelt.items()})
    c.loc[8, "service_type"] = "Social & Life Skills"
    c.loc[2, "mode"] = "INDIVIDUAL"
    report = ce.validate(contacts=c, school_year=YEAR)
    assert report.ok
    typed = report.contacts
    assert typed is not None
    assert typed.loc[8, "service_type"] == schema.normalise_category("Social & Life Skills")
    source: pd.DataFrame | Path = c
    if to_file:
        source = tmp_path / "log.csv"
        c.to_csv(source, index=False)
    raw = fidelity(roster(), source, school_year=YEAR).to_frame("service_mix")
    clean = fidelity(roster(), typed, school_year=YEAR).to_frame("service_mix")
    pd.testing.assert_frame_equal(raw, clean)


def test_contact_length_limits_come_from_the_contract():
    minutes = schema.COLUMNS["contacts"]["minutes"]
    assert minutes.minimum is not None and minutes.maximum is not None
    ok = bad({(2, "minutes"): minutes.maximum, (3, "minutes"): minutes.minimum})
    fidelity(roster(), ok, school_year=YEAR)
    with pytest.raises(DataValidationError) as exc:
        fidelity(roster(), bad({(2, "minutes"): minutes.maximum + 1}), school_year=YEAR)
    assert f"between {minutes.minimum:g} and {minutes.maximum:g}" in exc.value.problems[0].expected


def test_every_problem_is_listed_at_once():
    c = bad({(1, "minutes"): -1, (3, "service_type"): "x", (5, "student_id"): "zz"})
    with pytest.raises(DataValidationError) as exc:
        fidelity(roster(), c, school_year=YEAR)
    assert {p.column for p in exc.value.problems} == {"minutes", "service_type", "student_id"}


def test_an_empty_log_is_an_error():
    with pytest.raises(DataValidationError, match="the contacts log has no rows"):
        fidelity(roster(), log().iloc[:0])


def test_missing_columns_are_named():
    with pytest.raises(DataValidationError) as exc:
        fidelity(roster(), log().drop(columns=["minutes", "mode"]))
    assert {p.column for p in exc.value.problems} == {"minutes", "mode"}
    # A program roster needs no treatment column, but it needs the school.
    with pytest.raises(DataValidationError, match="'school_id'"):
        fidelity(roster().drop(columns="school_id"), log())


def test_bad_roster_values_are_clear():
    r = roster()
    r.loc[3, "treatment"] = 2
    r.loc[4, "student_id"] = "p1"
    with pytest.raises(DataValidationError) as exc:
        fidelity(r, log())
    msgs = str(exc.value)
    assert "'treatment'" in msgs and "repeat a student identifier" in msgs
    assert "'p1'" not in msgs


def test_warnings_are_issued_and_listed():
    c = log()
    c.loc[2, "date"] = pd.Timestamp("2012-09-03")  # before random assignment
    c.loc[3, "coordinator_id"] = "K9"  # not in the coordinators table
    with pytest.warns(DesignWarning) as rec:
        res = fidelity(roster(), c, staff(), school_year=YEAR)
    text = str(rec[0].message)
    assert "before the student's random assignment" in text
    assert "coordinators not in the coordinators table" in text
    assert len(res.warnings) == 2 and all("row" in w for w in res.warnings)


def test_validated_text_files_work_end_to_end(tmp_path):
    r, c, k = roster(), log(), staff()
    for frame, name in ((r, "students"), (c, "contacts"), (k, "coordinators")):
        ce.write_table(frame, tmp_path / f"{name}.csv")
    text = {n: ce.io.read_table(tmp_path / f"{n}.csv") for n in ("students", "contacts")}
    raw = fidelity(text["students"], text["contacts"], school_year=YEAR)
    typed = fidelity(r, c, school_year=YEAR)
    pd.testing.assert_frame_equal(
        raw.to_frame("school").drop(columns=["fte", "reported_caseload", "level2_time_share"]),
        typed.to_frame("school").drop(columns=["fte", "reported_caseload", "level2_time_share"]),
        check_dtype=False,
    )


def test_argument_checks(tmp_path):
    with pytest.raises(OptionError, match="thresholds"):
        fidelity(roster(), log(), thresholds=(0, 5))
    with pytest.raises(OptionError, match="caseload_guide"):
        fidelity(roster(), log(), caseload_guide="huge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_cell"):
        fidelity(roster(), log(), min_cell=0)
    with pytest.raises(OptionError, match="weeks"):
        fidelity(roster(), log(), school_year=("2011-08-01", "2013-07-31"))
    with pytest.raises(OptionError, match="last day is before the first"):
        fidelity(roster(), log(), school_year=("2013-07-31", "2012-08-01"))
    with pytest.raises(OptionTypeError, match="targets must be"):
        fidelity(roster(), log(), targets=20)  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="file not found"):
        fidelity(roster(), "no/such/log.parquet")
    (tmp_path / "log.xlsx").write_bytes(b"")
    with pytest.raises(DataValidationError, match=r"cannot read '\.xlsx'"):
        fidelity(roster(), tmp_path / "log.xlsx")


def test_plots_draw_on_given_axes(small_trial):
    import matplotlib.pyplot as plt

    res = fidelity(small_trial.students, small_trial.contacts, small_trial.coordinators)
    fig, axes = plt.subplots(1, 4)
    try:
        for ax, kind in zip(axes, ("dosage", "benchmarks", "weekly", "dose_response"), strict=True):
            assert res.plot(kind, ax=ax) is ax
            assert ax.has_data() or ax.texts
    finally:
        plt.close(fig)
    with pytest.raises(OptionError, match="measure"):
        res.plot("dosage", measure="shoe_size")


def test_no_warning_noise_on_clean_simulated_data(small_trial):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fidelity(small_trial.students, small_trial.contacts, small_trial.coordinators)


def test_identifiers_with_stray_spaces_in_a_parquet_log_are_trimmed(tmp_path):
    c = log()
    c["student_id"] = c["student_id"] + "  "
    c["coordinator_id"] = " " + c["coordinator_id"]
    c.to_parquet(tmp_path / "spaces.parquet")
    a = fidelity(roster(), tmp_path / "spaces.parquet", staff(), school_year=YEAR)
    b = fidelity(roster(), log(), staff(), school_year=YEAR)
    pd.testing.assert_frame_equal(a.to_frame("student"), b.to_frame("student"))
    pd.testing.assert_frame_equal(a.to_frame("coordinator"), b.to_frame("coordinator"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_errors_in_a_file_read_directly_name_the_file_and_rows(tmp_path, suffix):
    c = bad({(2, "minutes"): 9000, (5, "service_type"): "astrology"}).astype(str)
    path = tmp_path / f"log{suffix}"
    c.to_csv(path, index=False) if suffix == ".csv" else c.to_parquet(path)
    with pytest.raises(DataValidationError) as exc:
        fidelity(roster(), path, school_year=YEAR)
    got = {(p.source, p.column, p.rows) for p in exc.value.problems}
    assert got == {(path.name, "minutes", (4,)), (path.name, "service_type", (7,))}
