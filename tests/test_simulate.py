from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cis_eval as ce
from cis_eval.errors import OptionError, OptionTypeError


@pytest.fixture(scope="module")
def big():
    # Large enough that calibration targets are measured with little noise.
    return ce.simulate(seed=2024, n_students=60_000)


def test_same_seed_identical_tables_different_seed_different():
    a = ce.simulate(seed=5, n_students=500, n_schools=6)
    b = ce.simulate(seed=5, n_students=500, n_schools=6)
    c = ce.simulate(seed=6, n_students=500, n_schools=6)
    for name in ("students", "contacts", "coordinators"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.students.equals(c.students)
    assert a.truth.sate == b.truth.sate


def test_default_design_matches_the_published_sample():
    t = ce.simulate(seed=1)
    s = t.students
    assert len(s) == 2230
    assert s["school_id"].nunique() == 28
    # 1,140 program : 1,090 control, up to per-school rounding
    assert abs(int(s["treatment"].sum()) - 1140) <= 14
    sizes = s.groupby("school_id").size()
    assert sizes.min() >= 30 and sizes.max() <= 150


def test_simulated_tables_meet_the_data_contract(small_trial):
    report = ce.validate(small_trial.students, small_trial.contacts, small_trial.coordinators)
    assert report.ok and not report.warnings


def test_calibration_to_published_implementation_benchmarks(big):
    c = big.contacts
    l2 = c[c["tier"] == 2]
    per = l2.groupby("student_id", observed=True).agg(
        n=("minutes", "size"),
        minutes=("minutes", "sum"),
        first=("date", "min"),
        last=("date", "max"),
    )
    # Published: about 19 contacts, 16 hours, 30 weeks per case-managed student.
    assert per["n"].mean() == pytest.approx(19, abs=0.5)
    assert per["minutes"].mean() / 60 == pytest.approx(16, abs=0.5)
    assert ((per["last"] - per["first"]).dt.days / 7).mean() == pytest.approx(30, abs=1.0)
    k = big.coordinators
    assert k["caseload"].mean() == pytest.approx(84, abs=2)
    assert k["level2_time_share"].mean() == pytest.approx(0.44, abs=0.02)
    # service mix led by academics, behaviour, social/life skills
    top3 = l2["service_type"].value_counts().index[:3].tolist()
    assert set(top3) == {"academics", "behavior", "social_life_skills"}


def test_take_up_crossover_and_attrition_rates(big):
    s = big.students
    served = set(big.contacts.loc[big.contacts["tier"] == 2, "student_id"].astype(str))
    is_served = s["student_id"].astype(str).isin(served)
    z = s["treatment"] == 1
    assert is_served[z].mean() == pytest.approx(0.87, abs=0.01)
    assert is_served[~z].mean() == pytest.approx(0.03, abs=0.005)
    assert not is_served[s["consent"] == 0].any()  # service needs consent
    out = ce.derive_outcomes(s)
    for o in ["chronic_absence", "core_course_failure", "core_gpa", "suspensions"]:
        assert out[o].isna().mean() == pytest.approx(0.08, abs=0.006)


def test_differential_attrition_parameter():
    t = ce.simulate(seed=3, n_students=40_000, attrition=0.10, differential_attrition=0.04)
    out = ce.derive_outcomes(t.students)
    miss = out["core_gpa"].isna().groupby(out["treatment"]).mean()
    assert miss[1] - miss[0] == pytest.approx(0.04, abs=0.01)


@pytest.mark.parametrize("scenario", ["interim", "null"])
def test_truth_matches_the_target_effects(scenario):
    t = ce.simulate(seed=8, n_students=20_000, scenario=scenario)
    for o in ce.OUTCOME_NAMES:
        # the attendance mechanism moves a few days, so allow 0.5 pp there
        tol = 0.005 if o == "attendance_rate" else 0.002
        assert t.truth.sate[o] == pytest.approx(t.truth.target_effects[o], abs=tol), o
    if scenario == "null":
        assert all(v == 0 for v in t.truth.sate.values())


def test_user_effects_are_realised_and_cace_scales_by_compliers():
    eff = {
        "core_course_failure": -0.05,
        "core_gpa": 0.1,
        "suspensions": -0.1,
        "core_credits": 0.2,
        "attendance_rate": 0.01,
    }
    t = ce.simulate(seed=4, n_students=30_000, effects=eff)
    assert t.scenario == "custom"
    for o, v in eff.items():
        assert t.truth.sate[o] == pytest.approx(v, rel=0.1), o
    po = t.truth.potential_outcomes
    share = (po["compliance"] == "complier").mean()
    assert t.truth.complier_share == pytest.approx(share)
    assert t.truth.cace["core_gpa"] == pytest.approx(t.truth.sate["core_gpa"] / share, rel=1e-6)


def test_observed_outcomes_are_the_assigned_potential_outcomes(small_trial):
    s = ce.derive_outcomes(small_trial.students)
    po = small_trial.truth.potential_outcomes
    z = s["treatment"].to_numpy() == 1
    for o in ce.OUTCOME_NAMES:
        expect = np.where(z, po[f"y1_{o}"], po[f"y0_{o}"])
        seen = s[o].to_numpy(dtype=float)
        ok = ~np.isnan(seen)
        np.testing.assert_allclose(seen[ok], expect[ok])


def test_difference_in_means_recovers_the_effect_in_a_large_trial():
    t = ce.simulate(seed=12, n_students=80_000)
    s = ce.derive_outcomes(t.students)
    diff = s.groupby("treatment")["chronic_absence"].mean().diff().iloc[-1]
    # SE of a difference in proportions with n = 40,000 per arm is about 0.0035
    assert diff == pytest.approx(t.truth.sate["chronic_absence"], abs=4 * 0.0035)


def test_bad_parameters_are_named():
    with pytest.raises(OptionError, match="take_up"):
        ce.simulate(seed=1, take_up=0.99, consent_rate=0.9)
    with pytest.raises(OptionError, match="icc"):
        ce.simulate(seed=1, icc=1.2)
    with pytest.raises(OptionTypeError, match="unknown parameter"):
        ce.simulate(seed=1, n_classrooms=3)
    with pytest.raises(OptionError, match="unknown outcome"):
        ce.simulate(seed=1, effects={"dropout": -0.1})
    with pytest.raises(OptionError, match="scenario"):
        ce.simulate(seed=1, scenario="final")
    with pytest.raises(OptionError, match="seed"):
        ce.simulate(seed=-3)
    with pytest.raises(TypeError, match="seed"):
        ce.simulate(seed="abc")  # type: ignore[arg-type]


def test_returned_tables_cannot_change_the_trial(small_trial):
    s = small_trial.students
    s.loc[:, "treatment"] = 0
    assert small_trial.students["treatment"].sum() > 0


def test_contacts_can_be_turned_off():
    t = ce.simulate(seed=2, n_students=300, n_schools=3, contacts=False)
    assert len(t.contacts) == 0
    assert list(t.contacts.columns) == [c.name for c in ce.schema.CONTACTS]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(40, 400))
def test_any_seed_and_size_reproduces_exactly_and_meets_the_contract(seed, n):
    a = ce.simulate(seed=seed, n_students=n, n_schools=max(1, n // 40))
    b = ce.simulate(seed=seed, n_students=n, n_schools=max(1, n // 40))
    pd.testing.assert_frame_equal(a.students, b.students)
    pd.testing.assert_frame_equal(a.contacts, b.contacts)
    assert len(a.students) == n
    assert ce.validate(a.students, a.contacts, a.coordinators, raise_on_error=False).ok


@pytest.mark.parametrize(
    ("effects", "words"),
    [
        ({"chronic_absence": 5}, r"outside \[-1, 1\]: the effect is a difference of proportions"),
        ({"attendance_rate": -1.5}, r"outside \[-1, 1\]"),
        ({"core_course_failure": 1.01}, r"outside \[-1, 1\]"),
        ({"core_gpa": 4.5}, r"outside \[-4, 4\]"),
        ({"suspensions": float("nan")}, "finite"),
    ],
)
def test_effects_outside_the_outcome_range_are_refused(effects, words):
    with pytest.raises(OptionError, match=words):
        ce.simulate(seed=1, n_students=200, effects=effects)
    with pytest.raises(OptionTypeError, match="must be a number"):
        ce.simulate(seed=1, n_students=200, effects={"core_gpa": "big"})


def test_scenario_names_are_the_literal_options():
    from typing import get_args

    from cis_eval._typing import Scenario
    from cis_eval.data.simulate import SCENARIOS

    assert tuple(SCENARIOS) == get_args(Scenario)
