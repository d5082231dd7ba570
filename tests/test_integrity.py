"""Trial integrity: baseline equivalence, attrition, the WWC rating and the clustering
correction.

Reference values come from a second implementation computed here (statsmodels OLS with
explicit school dummies for the adjusted differences and the joint F tests; plain pandas
and the WWC formulas for the effect sizes and attrition), the boundary table is checked row
by row against an independent transcription typed into this file, and every rating branch
is exercised on constructed data.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import cis_eval as ce
from cis_eval.cli.demo import DEMO_SECTIONS
from cis_eval.cli.main import main
from cis_eval.errors import DesignError, DesignWarning, EstimationError, OptionError
from cis_eval.integrity import review as I_review
from cis_eval.integrity import wwc_category

# --------------------------------------------------------------------------- transcriptions
# WWC Standards Handbook Table II.1, typed in independently of the package data: the
# cautious column (two transcriptions agree) and the two transcriptions of the optimistic
# column, which disagree by one row above 12% overall attrition.
CAUTIOUS = [
    5.7, 5.8, 5.9, 5.9, 6.0, 6.1, 6.2, 6.3, 6.3, 6.3,
    6.3, 6.2, 6.2, 6.1, 6.0, 5.9, 5.9, 5.8, 5.7, 5.5,
    5.4, 5.3, 5.2, 5.1, 4.9, 4.8, 4.7, 4.5, 4.4, 4.3,
    4.1, 4.0, 3.8, 3.6, 3.5, 3.3, 3.2, 3.1, 2.9, 2.8,
    2.6, 2.5, 2.3, 2.1, 2.0, 1.8, 1.6, 1.5, 1.3, 1.2,
    1.0, 0.9, 0.7, 0.6, 0.4, 0.3, 0.2, 0.0,
]  # fmt: skip
OPTIMISTIC_A = [  # R code citing Standards Handbook v4.0 Table II.1 (0-57%)
    10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.7, 10.8, 10.9, 10.9,
    10.9, 10.9, 10.9, 10.9, 10.8, 10.8, 10.7, 10.6, 10.5, 10.3,
    10.2, 10.0, 9.9, 9.7, 9.5, 9.4, 9.2, 9.0, 8.8, 8.6,
    8.4, 8.2, 8.0, 7.8, 7.6, 7.4, 7.2, 7.0, 6.7, 6.5,
    6.3, 6.0, 5.8, 5.6, 5.3, 5.1, 4.9, 4.6, 4.4, 4.2,
    3.9, 3.7, 3.5, 3.2, 3.0, 2.8, 2.6, 2.3,
]  # fmt: skip
OPTIMISTIC_B = [  # baselinr, citing Standards Handbook v4.1 Table II.1 (0-65%)
    10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.7, 10.8, 10.9, 10.9,
    10.9, 10.9, 10.9, 10.8, 10.8, 10.7, 10.6, 10.5, 10.3, 10.2,
    10.0, 9.9, 9.7, 9.5, 9.4, 9.2, 9.0, 8.8, 8.6, 8.4,
    8.2, 8.0, 7.8, 7.6, 7.4, 7.2, 7.0, 6.7, 6.5, 6.3,
    6.0, 5.8, 5.6, 5.3, 5.1, 4.9, 4.6, 4.4, 4.2, 3.9,
    3.7, 3.5, 3.2, 3.0, 2.8, 2.6, 2.3, 2.1, 1.9, 1.6,
    1.4, 1.1, 0.9, 0.7, 0.5, 0.3,
]  # fmt: skip
# Spot values of each transcription, quoted separately from the lists (a typing check).
QUOTED_A = {13: 10.9, 14: 10.8, 15: 10.8, 20: 10.2, 25: 9.4, 30: 8.4, 35: 7.4, 40: 6.3,
            45: 5.1, 50: 3.9, 55: 2.8, 57: 2.3}  # fmt: skip
QUOTED_B = {13: 10.8, 15: 10.7, 20: 10.0, 25: 9.2, 30: 8.2, 35: 7.2, 40: 6.0, 45: 4.9,
            50: 3.7, 55: 2.6, 60: 1.4, 65: 0.3}  # fmt: skip

RTOL = 1e-8


# --------------------------------------------------------------------------- data


def make_trial(
    *,
    n_schools=6,
    per_school=60,
    seed=0,
    lost_t=0.0,
    lost_c=0.0,
    shift=0.0,
    missing_pretest=0,
):
    """Students randomized half and half within schools, a pretest, a 0/1 trait and a score.

    ``shift`` moves the program group's pretest (a baseline imbalance); ``lost_*`` are the
    shares of each arm whose score is missing (attrition).
    """
    rng = np.random.default_rng(seed)
    n = n_schools * per_school
    school = np.repeat([f"S{i:02d}" for i in range(n_schools)], per_school)
    half = np.r_[np.ones(per_school // 2), np.zeros(per_school - per_school // 2)]
    z = np.concatenate([rng.permutation(half) for _ in range(n_schools)])
    pretest = rng.normal(size=n) + shift * z
    trait = (rng.random(n) < 0.4).astype(float)
    score = 0.6 * pretest + rng.normal(size=n)
    lose = rng.random(n) < np.where(z == 1, lost_t, lost_c)
    score[lose] = np.nan
    if missing_pretest:
        pretest[rng.choice(n, missing_pretest, replace=False)] = np.nan
    return pd.DataFrame(
        {"school_id": school, "treatment": z.astype(int), "pretest": pretest,
         "trait": trait, "score": score}
    )  # fmt: skip


@pytest.fixture(scope="module")
def shipped(synthetic_dir):
    return pd.read_csv(synthetic_dir / "students.csv")


@pytest.fixture(scope="module")
def shipped_be(shipped):
    return ce.baseline_equivalence(shipped, outcome="chronic_absence", sims=500, seed=7)


@pytest.fixture(scope="module")
def high_attrition():
    return ce.simulate(seed=5, attrition=0.3, differential_attrition=0.1).students


# --------------------------------------------------------------------------- boundary table


def test_boundary_file_has_provenance_columns():
    tab = ce.attrition_boundaries()
    assert list(tab.columns) == [
        "boundary",
        "overall_attrition",
        "max_differential",
        "confirmed",
        "source",
        "alternative_value",
    ]
    assert tab["source"].str.len().min() > 20
    assert set(tab["boundary"]) == {"cautious", "optimistic"}
    assert tab["confirmed"].dtype == bool


def test_cautious_boundary_matches_the_transcription_row_by_row():
    tab = ce.attrition_boundaries("cautious")
    assert tab["overall_attrition"].tolist() == list(range(58))
    np.testing.assert_array_equal(tab["max_differential"].to_numpy(), CAUTIOUS)
    assert tab["confirmed"].all()
    assert tab["alternative_value"].isna().all()


def test_optimistic_boundary_confirmed_only_where_transcriptions_agree():
    tab = ce.attrition_boundaries("optimistic").set_index("overall_attrition")
    assert tab.index.tolist() == list(range(66))
    for k in range(66):
        a = OPTIMISTIC_A[k] if k < len(OPTIMISTIC_A) else None
        b = OPTIMISTIC_B[k]
        agree = a == b
        # the transcriptions agree exactly on 0-12% and nowhere is the stricter value lost
        assert bool(tab.at[k, "confirmed"]) == (k <= 12), k
        assert tab.at[k, "max_differential"] == (min(a, b) if a is not None else b), k
        if not agree and a is not None:
            assert tab.at[k, "alternative_value"] == a
    assert not any(OPTIMISTIC_A[k] == OPTIMISTIC_B[k] for k in (13, 20, 30, 40, 50))


def test_transcriptions_in_this_file_match_the_quoted_values():
    assert all(OPTIMISTIC_A[k] == v for k, v in QUOTED_A.items())
    assert all(OPTIMISTIC_B[k] == v for k, v in QUOTED_B.items())
    # they differ by a one-row offset above 12%
    assert OPTIMISTIC_A[13:58] == OPTIMISTIC_B[12:57]


@pytest.mark.parametrize("k", range(58))
def test_every_cautious_row_is_the_lookup(k):
    assert ce.max_differential_attrition(k) == CAUTIOUS[k]
    assert ce.classify_attrition(k, CAUTIOUS[k]) == "low"
    assert ce.classify_attrition(k, CAUTIOUS[k] + 0.01) == "high"


@pytest.mark.parametrize("k", range(66))
def test_every_optimistic_row_is_the_lookup(k):
    expected = min(OPTIMISTIC_B[k], OPTIMISTIC_A[k]) if k < 58 else OPTIMISTIC_B[k]
    assert ce.max_differential_attrition(k, boundary="optimistic") == expected
    assert ce.classify_attrition(k, expected, boundary="optimistic") == "low"
    assert ce.classify_attrition(k, expected + 0.01, boundary="optimistic") == "high"


def test_between_rows_the_smaller_boundary_is_used():
    # 10% -> 6.3 and 11% -> 6.2: rounding 10.4 to the nearest row would allow 6.3
    assert ce.max_differential_attrition(10.4) == 6.2
    assert ce.classify_attrition(10.4, 6.25) == "high"
    # 3% -> 5.9 and 4% -> 6.0 (increasing part): the floor row is the smaller one
    assert ce.max_differential_attrition(3.7) == 5.9
    # 57% -> 0.0 and 58% -> beyond the cautious table: high for any differential
    assert ce.max_differential_attrition(57) == 0.0
    assert ce.classify_attrition(57, 0.0) == "low"
    assert math.isnan(ce.max_differential_attrition(57.3))
    assert ce.classify_attrition(57.3, 0.0) == "high"
    assert ce.classify_attrition(58, 0.0) == "high"
    assert ce.max_differential_attrition(65, boundary="optimistic") == 0.3
    assert ce.classify_attrition(65.2, 0.0, boundary="optimistic") == "high"
    assert ce.classify_attrition(100, 0.0) == "high"


def test_on_the_boundary_is_low_despite_floating_point():
    assert ce.classify_attrition(30, 4.1) == "low"
    assert ce.classify_attrition(30, 4.1 + 1e-6) == "high"
    assert ce.classify_attrition(30, -4.1) == "low"  # sign of the differential is ignored
    # from counts: 2,000 per arm, 263 and 137 lost -> 10.0% overall, exactly 6.3 pp apart
    n = 2000
    z = np.r_[np.ones(n), np.zeros(n)]
    y = np.ones(2 * n)
    y[:263] = np.nan
    y[n : n + 137] = np.nan
    df = pd.DataFrame({"treatment": z, "y": y})
    row = ce.attrition(df, outcomes=["y"]).to_frame().iloc[0]
    assert row["overall_attrition"] == pytest.approx(10.0)
    assert row["differential_attrition"] == pytest.approx(6.3)
    assert row["max_differential"] == 6.3
    assert row["attrition_level"] == "low"
    y[263] = np.nan  # one more program student lost: 10.025% overall, 6.35 pp
    row = ce.attrition(df.assign(y=y), outcomes=["y"]).to_frame().iloc[0]
    assert row["max_differential"] == 6.2
    assert row["attrition_level"] == "high"


@given(
    overall=st.floats(0, 100, allow_nan=False),
    boundary=st.sampled_from(["cautious", "optimistic"]),
)
def test_lookup_is_never_more_lenient_than_a_neighbouring_row(overall, boundary):
    table = ce.attrition_boundaries(boundary).set_index("overall_attrition")["max_differential"]
    limit = ce.max_differential_attrition(overall, boundary=boundary)
    lo, hi = math.floor(overall), math.ceil(overall)
    if hi not in table.index:
        assert math.isnan(limit)  # beyond the table: high attrition for any differential
    else:
        assert limit == min(table[lo], table[hi])
        assert limit <= table[round(overall)]  # never more lenient than rounding


@given(
    overall=st.floats(0, 100, allow_nan=False),
    d1=st.floats(0, 15, allow_nan=False),
    d2=st.floats(0, 15, allow_nan=False),
    boundary=st.sampled_from(["cautious", "optimistic"]),
)
def test_classification_monotone_in_the_differential(overall, d1, d2, boundary):
    lo, hi = sorted((d1, d2))
    if ce.classify_attrition(overall, hi, boundary=boundary) == "low":
        assert ce.classify_attrition(overall, lo, boundary=boundary) == "low"


def test_boundary_bad_input():
    with pytest.raises(ValueError, match="choose one of 'cautious', 'optimistic'"):
        ce.classify_attrition(10, 1, boundary="liberal")
    with pytest.raises(ValueError, match="boundary='lenient'"):
        ce.attrition_boundaries("lenient")
    with pytest.raises(ValueError, match=r"percentage in \[0, 100\]"):
        ce.classify_attrition(120, 1)
    with pytest.raises(ValueError, match="differential"):
        ce.classify_attrition(10, float("nan"))


def test_boundary_table_is_a_copy():
    tab = ce.attrition_boundaries()
    tab.loc[0, "max_differential"] = 99.0
    assert ce.attrition_boundaries().loc[0, "max_differential"] == 5.7


# --------------------------------------------------------------------------- attrition


def test_attrition_by_hand():
    z = np.r_[np.ones(100), np.zeros(80)]
    y = np.arange(180.0)
    y[:20] = np.nan  # 20 of 100 program students lost
    y[100:108] = np.nan  # 8 of 80 control students lost
    df = pd.DataFrame({"treatment": z, "y": y, "w": np.ones(180)})
    res = ce.attrition(df, outcomes=["y", "w"])
    f = res.to_frame().set_index("outcome")
    r = f.loc["y"]
    assert (r["n_randomized"], r["n_analytic"]) == (180, 152)
    assert (r["n_analytic_treatment"], r["n_analytic_control"]) == (80, 72)
    assert r["attrition_treatment"] == pytest.approx(20.0)
    assert r["attrition_control"] == pytest.approx(10.0)
    assert r["overall_attrition"] == pytest.approx(100 * 28 / 180)
    assert r["differential_attrition"] == pytest.approx(10.0)
    # 15.6% overall: rows 15 (5.9) and 16 (5.9)
    assert r["boundary_rows"] == "15-16%"
    assert r["max_differential"] == 5.9
    assert r["attrition_level"] == "high"
    w = f.loc["w"]
    assert w["overall_attrition"] == 0 and w["attrition_level"] == "low"
    assert repr(res) == "AttritionResult(2 outcomes, boundary=cautious, 1 low / 1 high)"


def test_attrition_derives_outcomes_and_uses_the_high_school_sample(shipped):
    res = ce.attrition(shipped)
    f = res.to_frame().set_index("outcome")
    assert f.index.tolist() == list(ce.OUTCOME_NAMES)
    derived = ce.derive_outcomes(shipped)
    for name in ce.OUTCOME_NAMES:
        pop = derived if name != "core_credits" else derived[derived["school_level"] == "high"]
        kept = pop[name].notna()
        assert f.loc[name, "n_randomized"] == len(pop)
        assert f.loc[name, "n_analytic"] == int(kept.sum())
        lost = pop.loc[~kept, "treatment"]
        a_t = 100 * (lost == 1).sum() / (pop["treatment"] == 1).sum()
        a_c = 100 * (lost == 0).sum() / (pop["treatment"] == 0).sum()
        assert f.loc[name, "differential_attrition"] == pytest.approx(abs(a_t - a_c))
    assert (f["attrition_level"] == "low").all()
    assert any("high school students only" in n for n in res.notes)


def test_simulated_high_attrition_is_high(high_attrition):
    f = ce.attrition(high_attrition).to_frame()
    assert (f["overall_attrition"] > 25).all()
    assert (f["attrition_level"] == "high").all()


def test_optimistic_boundary_flags_unconfirmed_rows(high_attrition):
    res = ce.attrition(high_attrition, boundary="optimistic")
    f = res.to_frame()
    assert (~f["boundary_confirmed"]).all()
    assert any("unconfirmed" in n for n in res.notes)
    text = res.table().to_text()
    assert "(unconfirmed boundary)" in text and "is unconfirmed" in text


@settings(max_examples=40, deadline=None)
@given(
    n_t=st.integers(2, 60),
    n_c=st.integers(2, 60),
    data=st.data(),
)
def test_attrition_properties(n_t, n_c, data):
    lost_t = data.draw(st.integers(0, n_t - 1))
    lost_c = data.draw(st.integers(0, n_c - 1))
    z = np.r_[np.ones(n_t), np.zeros(n_c)]
    y = np.ones(n_t + n_c)
    y[:lost_t] = np.nan
    y[n_t : n_t + lost_c] = np.nan
    df = pd.DataFrame({"treatment": z, "y": y})
    r = ce.attrition(df, outcomes=["y"]).to_frame().iloc[0]
    for col in ("attrition_treatment", "attrition_control", "overall_attrition"):
        assert 0 <= r[col] <= 100
    assert 0 <= r["differential_attrition"] <= 100
    # the arm labels do not matter
    s = ce.attrition(df.assign(treatment=1 - z), outcomes=["y"]).to_frame().iloc[0]
    assert s["overall_attrition"] == pytest.approx(r["overall_attrition"])
    assert s["differential_attrition"] == pytest.approx(r["differential_attrition"])
    assert s["attrition_level"] == r["attrition_level"]
    # nor the row order
    perm = np.random.default_rng(n_t * 100 + n_c).permutation(len(df))
    u = ce.attrition(df.iloc[perm], outcomes=["y"]).to_frame().iloc[0]
    assert u["differential_attrition"] == pytest.approx(r["differential_attrition"])


def test_attrition_table_suppresses_small_losses():
    df = make_trial(lost_c=0.3, seed=3)
    program = np.flatnonzero(df["treatment"].to_numpy() == 1)
    df.loc[program[:4], "score"] = np.nan  # 4 program students lost
    res = ce.attrition(df, outcomes=["score"])
    text = res.table().to_text()
    assert "*" in text and "Suppressed to protect student privacy" in text
    assert "*" not in res.table(min_cell=1).to_csv()


def test_attrition_does_not_modify_input(shipped):
    before = shipped.copy()
    ce.attrition(shipped)
    pd.testing.assert_frame_equal(shipped, before)


def test_attrition_bad_input(shipped):
    df = make_trial()
    with pytest.raises(EstimationError, match="no treatment column 'arm'"):
        ce.attrition(df, outcomes=["score"], treatment="arm")
    with pytest.raises(EstimationError, match="other than 0 or 1"):
        ce.attrition(df.assign(treatment=df["treatment"] + 1), outcomes=["score"])
    with pytest.raises(EstimationError, match="empty value"):
        ce.attrition(df.assign(treatment=np.where(df.index == 3, np.nan, df["treatment"])),
                     outcomes=["score"])  # fmt: skip
    with pytest.raises(EstimationError, match="unknown outcome 'nope'"):
        ce.attrition(df, outcomes=["nope"])
    with pytest.raises(EstimationError, match="cannot be derived: raw field"):
        ce.attrition(shipped.drop(columns=["days_present"]), outcomes=["chronic_absence"])
    with pytest.raises(EstimationError, match="both groups are needed"):
        ce.attrition(df.assign(treatment=1), outcomes=["score"])
    with pytest.raises(ValueError, match="boundary="):
        ce.attrition(df, outcomes=["score"], boundary="liberal")
    with pytest.raises(TypeError, match="DataFrame"):
        ce.attrition(df.to_numpy(), outcomes=["score"])
    with pytest.raises(EstimationError, match="none of the study's outcomes"):
        ce.attrition(df[["treatment", "school_id"]])


# --------------------------------------------------------------------------- categories


def test_wwc_category_boundaries():
    assert ce.integrity.wwc_category(0.0) == "satisfied"
    assert wwc_category(0.05) == "satisfied"
    assert wwc_category(-0.05) == "satisfied"
    assert wwc_category(0.0500001) == "requires adjustment"
    assert wwc_category(0.25) == "requires adjustment"
    assert wwc_category(-0.25) == "requires adjustment"
    assert wwc_category(0.2500001) == "not satisfied"
    assert wwc_category(float("nan")) == "not computed"


@given(a=st.floats(-2, 2, allow_nan=False), b=st.floats(-2, 2, allow_nan=False))
def test_category_monotone_in_absolute_effect_size(a, b):
    order = ["satisfied", "requires adjustment", "not satisfied"]
    small, large = sorted((a, b), key=abs)
    assert order.index(wwc_category(small)) <= order.index(wwc_category(large))
    assert wwc_category(a) == wwc_category(-a)


# --------------------------------------------------------------------------- baseline


def _analytic(shipped, outcome="chronic_absence"):
    d = ce.derive_outcomes(shipped)
    return d[d[outcome].notna()].reset_index(drop=True)


def test_baseline_adjusted_differences_match_statsmodels(shipped, shipped_be):
    d = _analytic(shipped)
    f = shipped_be.to_frame()
    chars = f[f["kind"] != "missing"].set_index("characteristic")
    for c in ce.schema.BASELINE_COVARIATES:
        sub = d[d[c].notna()]
        dummies = pd.get_dummies(sub["school_id"], dtype=float)
        x = pd.concat([sub["treatment"].astype(float), dummies], axis=1)
        res = sm.OLS(sub[c].astype(float), x).fit(cov_type="HC2")
        assert chars.at[c, "difference_adjusted"] == pytest.approx(
            res.params["treatment"], rel=RTOL, abs=1e-12
        ), c
        assert chars.at[c, "std_error_adjusted"] == pytest.approx(res.bse["treatment"], rel=1e-6)
    # the missing-value rows: the indicator as the outcome, every analytic-sample student
    miss = f[f["kind"] == "missing"].set_index("characteristic")
    for c in miss.index:
        ind = d[c].isna().astype(float)
        x = pd.concat(
            [d["treatment"].astype(float), pd.get_dummies(d["school_id"], dtype=float)], axis=1
        )
        res = sm.OLS(ind, x).fit()
        assert miss.at[c, "difference_adjusted"] == pytest.approx(
            res.params["treatment"], rel=RTOL, abs=1e-12
        )
        assert miss.at[c, "mean_treatment"] == pytest.approx(ind[d["treatment"] == 1].mean())


def test_baseline_effect_sizes_by_the_wwc_formulas(shipped, shipped_be):
    d = _analytic(shipped)
    f = shipped_be.to_frame()
    f = f[f["kind"] != "missing"].set_index("characteristic")
    for c in ce.schema.BASELINE_COVARIATES:
        sub = d[d[c].notna()]
        xt, xc = sub.loc[sub["treatment"] == 1, c], sub.loc[sub["treatment"] == 0, c]
        nt, nc = len(xt), len(xc)
        omega = 1 - 3 / (4 * (nt + nc) - 9)
        assert f.at[c, "n_treatment"] == nt and f.at[c, "n_control"] == nc
        assert f.at[c, "mean_treatment"] == pytest.approx(xt.mean())
        assert f.at[c, "sd_control"] == pytest.approx(xc.std())
        adj = f.at[c, "difference_adjusted"]
        if f.at[c, "kind"] == "binary":
            pt, pc = xt.mean(), xc.mean()

            def cox(p1, p0, omega=omega):
                return omega * (math.log(p1 / (1 - p1)) - math.log(p0 / (1 - p0))) / 1.65

            assert f.at[c, "effect_size_type"] == "Cox index"
            assert f.at[c, "effect_size_raw"] == pytest.approx(cox(pt, pc), rel=1e-10)
            assert f.at[c, "effect_size_adjusted"] == pytest.approx(cox(pc + adj, pc), rel=1e-10)
        else:
            s = math.sqrt(((nt - 1) * xt.var() + (nc - 1) * xc.var()) / (nt + nc - 2))
            assert f.at[c, "effect_size_type"] == "Hedges' g"
            assert f.at[c, "effect_size_raw"] == pytest.approx(
                omega * (xt.mean() - xc.mean()) / s, rel=1e-10
            )
            assert f.at[c, "effect_size_adjusted"] == pytest.approx(omega * adj / s, rel=1e-10)
        assert f.at[c, "effect_size"] == f.at[c, "effect_size_adjusted"]
        assert f.at[c, "wwc_category"] == wwc_category(f.at[c, "effect_size"])


def _omnibus_design(d, chars):
    cols = {}
    for c in chars:
        x = d[c].astype(float)
        if x.isna().any():
            cols[f"{c}_missing"] = x.isna().astype(float)
        cols[c] = x.fillna(x.mean())
    return pd.DataFrame(cols, index=d.index)


def test_omnibus_f_tests_match_statsmodels(shipped, shipped_be):
    d = _analytic(shipped)
    xc = _omnibus_design(d, ce.schema.BASELINE_COVARIATES)
    dummies = pd.get_dummies(d["school_id"], dtype=float)
    res = sm.OLS(d["treatment"].astype(float), pd.concat([xc, dummies], axis=1)).fit()
    r = np.zeros((xc.shape[1], xc.shape[1] + dummies.shape[1]))
    r[:, : xc.shape[1]] = np.eye(xc.shape[1])
    classical = res.f_test(r)
    robust = sm.OLS(d["treatment"].astype(float), pd.concat([xc, dummies], axis=1)).fit(
        cov_type="HC2"
    )
    hc2 = robust.wald_test(r, use_f=True, scalar=True)
    om = shipped_be.omnibus().set_index("test")
    assert om.at["F", "statistic"] == pytest.approx(float(classical.fvalue), rel=1e-8)
    assert om.at["F", "p_value"] == pytest.approx(float(classical.pvalue), rel=1e-7)
    assert om.at["F", "df_num"] == xc.shape[1]
    assert om.at["F", "df_den"] == res.df_resid
    assert om.at["F (HC2)", "statistic"] == pytest.approx(float(hc2.statistic), rel=1e-8)
    assert om.at["F (HC2)", "p_value"] == pytest.approx(float(hc2.pvalue), rel=1e-7)
    ri = om.loc["randomization"]
    assert ri["permutations"] == 500 and 0 < ri["p_value"] <= 1


def test_randomization_test_equals_the_naive_loop():
    """The vectorised statistic equals statsmodels' F refitted on each permuted assignment."""
    d = make_trial(n_schools=4, per_school=30, seed=2, missing_pretest=7)
    chars = ["pretest", "trait"]
    n_perm, seed = 80, 11
    be = ce.baseline_equivalence(d, characteristics=chars, sims=n_perm, seed=seed)
    om = be.omnibus().set_index("test")
    xc = _omnibus_design(d, chars)
    x = pd.concat([xc, pd.get_dummies(d["school_id"], dtype=float)], axis=1).to_numpy()
    r = np.zeros((xc.shape[1], x.shape[1]))
    r[:, : xc.shape[1]] = np.eye(xc.shape[1])

    def f_of(z):
        return float(sm.OLS(z, x).fit().f_test(r).fvalue)

    z = d["treatment"].to_numpy(float)
    f_obs = f_of(z)
    assert om.at["randomization", "statistic"] == pytest.approx(f_obs, rel=1e-9)
    # the same within-school permutations, drawn as the library draws them (rows are
    # already sorted by school here)
    from cis_eval._core.engine import cell_starts
    from cis_eval._core.permutation import within_block_permutations

    codes = pd.factorize(d["school_id"], sort=True)[0]
    starts, sizes = cell_starts(codes)
    perms = np.vstack(
        list(within_block_permutations(z, starts, sizes, n_perm, np.random.default_rng(seed)))
    )
    f_perm = np.array([f_of(zp) for zp in perms])
    for zp in perms:  # really within schools: the same count per school
        assert np.array_equal(np.bincount(codes, weights=zp), np.bincount(codes, weights=z))
    p_naive = (1 + np.sum(f_perm >= f_obs * (1 - 1e-9))) / (1 + n_perm)
    assert om.at["randomization", "p_value"] == p_naive


def test_randomization_test_is_reproducible():
    d = make_trial(seed=4)
    kw = {"characteristics": ["pretest", "trait"], "sims": 300}
    a = ce.baseline_equivalence(d, seed=5, **kw).omnibus()
    b = ce.baseline_equivalence(d, seed=5, **kw).omnibus()
    c = ce.baseline_equivalence(d, seed=6, **kw).omnibus()
    pd.testing.assert_frame_equal(a, b)
    assert a["p_value"].iloc[2] != c["p_value"].iloc[2]
    gen = ce.baseline_equivalence(d, seed=np.random.default_rng(5), **kw)
    assert gen.seed is None and gen.omnibus()["p_value"].iloc[2] == a["p_value"].iloc[2]


@pytest.mark.slow
def test_omnibus_p_values_uniform_under_random_assignment():
    rng = np.random.default_rng(2024)
    n_s, m, reps = 6, 50, 400
    n = n_s * m
    base = pd.DataFrame(
        {
            "school_id": np.repeat([f"S{i}" for i in range(n_s)], m),
            "x1": rng.normal(size=n) + np.repeat(rng.normal(size=n_s), m),
            "x2": (rng.random(n) < 0.3).astype(float),
            "x3": rng.exponential(size=n),
        }
    )
    half = np.r_[np.ones(m // 2), np.zeros(m - m // 2)]
    ps = []
    for i in range(reps):
        z = np.concatenate([rng.permutation(half) for _ in range(n_s)])
        be = ce.baseline_equivalence(
            base.assign(treatment=z), characteristics=["x1", "x2", "x3"], sims=199,
            seed=i,
        )  # fmt: skip
        ps.append(be.omnibus()["p_value"].to_numpy())
    ps = np.array(ps)
    se_mean = math.sqrt(1 / 12 / reps)
    for j, name in enumerate(("F", "F (HC2)", "randomization")):
        p = ps[:, j]
        assert abs(p.mean() - 0.5) < 3.5 * se_mean, name
        for level in (0.05, 0.10, 0.25):
            se = math.sqrt(level * (1 - level) / reps)
            assert abs((p <= level).mean() - level) < 3.5 * se + 1 / 200, (name, level)


def test_required_and_adjustment_decide_the_status(shipped):
    # English learners differ by about 0.13 SD (Cox) in the shipped trial's analytic sample
    with_ell = ce.baseline_equivalence(
        shipped, outcome="chronic_absence", covariates=["ell"], required=["ell"]
    )
    without = ce.baseline_equivalence(
        shipped, outcome="chronic_absence", covariates=[], required=["ell"]
    )

    def row_of(result, name):
        f = result.to_frame()
        return f[f["kind"] != "missing"].set_index("characteristic").loc[name]

    row = row_of(with_ell, "ell")
    assert row["wwc_category"] == "requires adjustment"
    assert row["equivalence"] == "satisfied by adjustment"
    assert bool(row["required"])
    assert with_ell.verdict() == "satisfied by adjustment"
    assert row_of(without, "ell")["equivalence"] == "not satisfied"
    assert without.verdict() == "not satisfied"
    assert without.verdict(["female"]) == "satisfied"
    assert without.verdict(["not_a_column"]) == "not computed"
    assert "Adjustment required (NOT adjusted)" in without.table().to_text()


def test_default_adjustment_and_required_come_from_the_outcome(shipped_be):
    assert shipped_be.required == ("prior_chronic_absence",)
    assert shipped_be.covariates == tuple(ce.default_covariates("chronic_absence"))
    assert shipped_be.outcome == "chronic_absence"


def test_analytic_sample_and_whole_sample(shipped):
    whole = ce.baseline_equivalence(shipped, characteristics=["female"])
    assert whole.n_treatment + whole.n_control == len(shipped)
    assert whole.sample == "all randomized students"
    assert whole.required == () and whole.covariates == ()
    gpa = ce.baseline_equivalence(shipped, outcome="core_credits", characteristics=["female"])
    d = ce.derive_outcomes(shipped)
    assert gpa.n_treatment + gpa.n_control == int(d["core_credits"].notna().sum())
    assert gpa.required == ("prior_core_gpa",)  # added to the characteristics
    assert "prior_core_gpa" in gpa.to_frame()["characteristic"].tolist()


def test_missing_rows_only_where_values_are_missing():
    d = make_trial(missing_pretest=12, seed=8)
    f = ce.baseline_equivalence(d, characteristics=["pretest", "trait"]).to_frame()
    assert f["kind"].tolist() == ["continuous", "missing", "binary"]
    miss = f.iloc[1]
    z = d["treatment"]
    assert miss["mean_treatment"] == pytest.approx(d.loc[z == 1, "pretest"].isna().mean())
    assert miss["difference"] == pytest.approx(
        d.loc[z == 1, "pretest"].isna().mean() - d.loc[z == 0, "pretest"].isna().mean()
    )
    assert miss["n_treatment"] == (z == 1).sum()  # every sample student counts
    assert np.isnan(miss["effect_size"]) and miss["wwc_category"] == ""


def test_swapping_arms_flips_signs_and_keeps_categories():
    d = make_trial(shift=0.12, seed=9, missing_pretest=5)
    a = ce.baseline_equivalence(d, characteristics=["pretest", "trait"]).to_frame()
    b = ce.baseline_equivalence(
        d.assign(treatment=1 - d["treatment"]), characteristics=["pretest", "trait"]
    ).to_frame()
    for col in ("difference", "difference_adjusted", "effect_size_raw", "effect_size"):
        np.testing.assert_allclose(a[col], -b[col], rtol=1e-9, atol=1e-12)
    assert a["wwc_category"].tolist() == b["wwc_category"].tolist()
    # the omnibus tests do not depend on the labels either
    np.testing.assert_allclose(
        ce.baseline_equivalence(d, characteristics=["pretest", "trait"]).omnibus()["statistic"],
        ce.baseline_equivalence(
            d.assign(treatment=1 - d["treatment"]), characteristics=["pretest", "trait"]
        ).omnibus()["statistic"],
        rtol=1e-9,
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shift=st.floats(-0.5, 0.5))
def test_baseline_invariant_to_row_order_and_school_labels(seed, shift):
    d = make_trial(n_schools=3, per_school=24, seed=seed, shift=shift)
    a = ce.baseline_equivalence(d, characteristics=["pretest", "trait"])
    perm = np.random.default_rng(seed).permutation(len(d))
    e = d.iloc[perm].assign(school_id=d["school_id"].iloc[perm].map(lambda s: "X" + s[::-1]))
    b = ce.baseline_equivalence(e, characteristics=["pretest", "trait"])
    cols = ["difference", "difference_adjusted", "effect_size", "std_error_adjusted"]
    np.testing.assert_allclose(a.to_frame()[cols], b.to_frame()[cols], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        a.omnibus()["statistic"], b.omnibus()["statistic"], rtol=1e-9, atol=1e-12
    )


def test_baseline_table_plot_and_copies(shipped_be):
    t = shipped_be.table()
    assert list(t.data.columns) == [
        "Characteristic",
        "Program group",
        "Control group",
        "Difference",
        "Adjusted difference",
        "Effect size",
        "WWC category",
        "N program",
        "N control",
    ]
    text = t.to_text()
    assert "Prior chronic absence (%) [required]" in text
    assert "randomization test p =" in text and "HC2-robust Wald F" in text
    # small missing-value cells (fewer than 10 students in an arm) are suppressed
    assert "Suppressed to protect student privacy" in text
    assert "*" not in shipped_be.table(min_cell=1).to_csv()
    fig, ax = plt.subplots()
    assert shipped_be.plot(ax=ax) is ax
    assert len(ax.get_yticklabels()) == 10
    plt.close(fig)
    frame = shipped_be.to_frame()
    frame.loc[0, "effect_size"] = 99.0
    assert shipped_be.to_frame().loc[0, "effect_size"] != 99.0
    assert repr(shipped_be).startswith("BaselineResult(10 characteristics")


def test_raw_basis(shipped):
    be = ce.baseline_equivalence(shipped, outcome="core_gpa", basis="raw")
    f = be.to_frame()
    f = f[f["kind"] != "missing"]
    np.testing.assert_array_equal(f["effect_size"], f["effect_size_raw"])
    assert "raw difference in means" in be.table().to_text()


def test_baseline_does_not_modify_input(shipped):
    before = shipped.copy()
    ce.baseline_equivalence(shipped, outcome="chronic_absence")
    pd.testing.assert_frame_equal(shipped, before)


def test_one_arm_schools_are_noted():
    d = make_trial(seed=1)
    d.loc[d["school_id"] == "S00", "treatment"] = 1
    be = ce.baseline_equivalence(d, characteristics=["pretest"])
    assert any("1 school(s) have students of one arm only" in n for n in be.notes)


def test_baseline_bad_input(shipped):
    d = make_trial()
    with pytest.raises(EstimationError, match="unknown characteristic"):
        ce.baseline_equivalence(d, characteristics=["pretest", "iq"])
    with pytest.raises(EstimationError, match="not baseline characteristics"):
        ce.baseline_equivalence(d, characteristics=["treatment"])
    with pytest.raises(EstimationError, match="no treatment column"):
        ce.baseline_equivalence(d.drop(columns=["treatment"]), characteristics=["pretest"])
    with pytest.raises(EstimationError, match="other than 0 or 1"):
        ce.baseline_equivalence(d.assign(treatment=d["treatment"] * 2), characteristics=["trait"])
    with pytest.raises(EstimationError, match="no block column"):
        ce.baseline_equivalence(d, characteristics=["trait"], block="campus")
    with pytest.raises(EstimationError, match="unknown outcome"):
        ce.baseline_equivalence(d, outcome="nope", characteristics=["trait"])
    with pytest.raises(EstimationError, match="none of the baseline characteristics"):
        ce.baseline_equivalence(d)
    with pytest.raises(ValueError, match="needs a seed"):
        ce.baseline_equivalence(d, characteristics=["trait"], sims=10)
    with pytest.raises(ValueError, match="basis="):
        ce.baseline_equivalence(d, characteristics=["trait"], basis="both")
    with pytest.raises(EstimationError, match="binary in the data contract"):
        ce.baseline_equivalence(shipped.assign(female=shipped["female"] + 1))
    with pytest.raises(EstimationError, match="no student has this outcome"):
        ce.baseline_equivalence(d.assign(score=np.nan), outcome="score",
                                characteristics=["trait"])  # fmt: skip


# --------------------------------------------------------------------------- clustering


def test_clustering_correction_by_hand():
    # N = 200, n = 20, rho = 0.2, t = 2.5, written out from the WWC formulas
    num = (200 - 2) - 2 * (20 - 1) * 0.2  # 190.4
    factor = math.sqrt(190.4 / (198 * (1 + 19 * 0.2)))  # sqrt(190.4 / 950.4)
    h = 190.4**2 / (198 * 0.8**2 + 20 * (200 - 40) * 0.2**2 + 2 * (200 - 40) * 0.2 * 0.8)
    assert num == pytest.approx(190.4)
    assert h == pytest.approx(36252.16 / 305.92)
    c = ce.wwc_clustering_correction(2.5, n=200, cluster_size=20, icc=0.2)
    assert c.t == pytest.approx(2.5 * factor, rel=1e-12)
    assert c.df == pytest.approx(h, rel=1e-12)
    assert c.p_value == pytest.approx(2 * stats.t.sf(2.5 * factor, h), rel=1e-12)
    assert c.factor == pytest.approx(factor)
    assert "ClusteringCorrection(t 2.500 -> 1.119" in repr(c)
    # the form in the R code of one transcription (clusters M = N / n)
    n_, m_, rho = 200, 10, 0.2
    declust = math.sqrt(
        ((n_ - 2) - 2 * (n_ / m_ - 1) * rho) / ((n_ - 2) * (1 + (n_ / m_ - 1) * rho))
    )
    assert c.factor == pytest.approx(declust)


def test_clustering_correction_without_icc_changes_nothing():
    c = ce.wwc_clustering_correction(-1.7, n=150, cluster_size=15, icc=0.0)
    assert c.t == pytest.approx(-1.7) and c.df == pytest.approx(148)


@given(
    t=st.floats(-10, 10, allow_nan=False),
    icc=st.floats(0, 0.9),
    clusters=st.integers(2, 60),
    size=st.integers(2, 100),
)
def test_clustering_correction_never_strengthens_evidence(t, icc, clusters, size):
    n = clusters * size
    try:
        c = ce.wwc_clustering_correction(t, n=n, cluster_size=size, icc=icc)
    except ValueError:
        return
    assert abs(c.t) <= abs(t) + 1e-12
    assert 0 < c.df <= n - 2 + 1e-9


def test_clustering_correction_bad_input():
    with pytest.raises(ValueError, match=r"icc must be in \[0, 1\)"):
        ce.wwc_clustering_correction(2, n=100, cluster_size=10, icc=1.0)
    with pytest.raises(ValueError, match="at least two clusters"):
        ce.wwc_clustering_correction(2, n=100, cluster_size=80, icc=0.1)
    with pytest.raises(TypeError, match="t must be a number"):
        ce.wwc_clustering_correction("2", n=100, cluster_size=10, icc=0.1)


# --------------------------------------------------------------------------- review


def _shift_prior(data, prior, outcome, target):
    """Move the program group's prior so its adjusted baseline effect size is ``target``."""
    be = ce.baseline_equivalence(data, outcome=outcome, characteristics=[prior])
    f = be.to_frame()
    r = f[f["kind"] != "missing"].set_index("characteristic").loc[prior]
    nt, nc = r["n_treatment"], r["n_control"]
    s = math.sqrt(
        ((nt - 1) * r["sd_treatment"] ** 2 + (nc - 1) * r["sd_control"] ** 2) / (nt + nc - 2)
    )
    omega = 1 - 3 / (4 * (nt + nc) - 9)
    delta = (target - r["effect_size"]) * s / omega
    out = data.copy()
    out.loc[out["treatment"] == 1, prior] += delta
    return out


def test_review_low_attrition_meets_without_reservations(shipped):
    review = ce.wwc_review(shipped)
    f = review.to_frame()
    assert (f["rating"] == "Meets WWC standards without reservations").all()
    assert (f["equivalence"] == "not required").all()
    assert f["outcome"].tolist() == list(ce.OUTCOME_NAMES)
    # effect sizes and improvement indices are estimate_itt's, signed favourable-positive
    itt = ce.estimate_itt(shipped).to_frame().set_index("outcome")
    for r in f.itertuples(index=False):
        sign = -1 if ce.schema.outcome(r.outcome).direction == "lower" else 1
        assert r.wwc_effect_size == pytest.approx(sign * itt.loc[r.outcome, "effect_size"])
        assert r.improvement_index == pytest.approx(itt.loc[r.outcome, "improvement_index"])
        assert r.impact == pytest.approx(itt.loc[r.outcome, "estimate"])
        assert r.favourable == (r.wwc_effect_size > 0)
    chronic = f.set_index("outcome").loc["chronic_absence"]
    assert chronic["favourable"] and chronic["wwc_finding"] == "statistically significant positive"
    assert "low attrition" in review.reasons("chronic_absence")[0]
    assert set(review.baseline) == set(ce.OUTCOME_NAMES)
    assert repr(review) == ("WWCReview(6 outcomes; Meets WWC standards without reservations: 6)")


def test_review_high_attrition_equivalent_meets_with_reservations(high_attrition):
    f = ce.wwc_review(high_attrition, outcomes=["chronic_absence", "core_gpa"]).to_frame()
    assert (f["attrition_level"] == "high").all()
    assert (f["equivalence_required"]).all()
    assert (f["equivalence"].isin(["satisfied", "satisfied by adjustment"])).all()
    assert (f["rating"] == "Meets WWC standards with reservations").all()


def test_review_requires_adjustment_branch(high_attrition):
    data = _shift_prior(high_attrition, "prior_core_gpa", "core_gpa", 0.15)
    adjusted = ce.wwc_review(data, outcomes=["core_gpa"])
    r = adjusted.to_frame().iloc[0]
    assert r["baseline_effect_size"] == pytest.approx(0.15, abs=1e-9)
    assert r["equivalence"] == "satisfied by adjustment"
    assert r["rating"] == "Meets WWC standards with reservations"
    assert "the impact model adjusts for it" in r["reasons"]
    # the same imbalance with an impact model that ignores the prior
    unadjusted = ce.wwc_review(data, outcomes=["core_gpa"], covariates=None).to_frame().iloc[0]
    assert unadjusted["equivalence"] == "not satisfied"
    assert unadjusted["rating"] == "Does not meet WWC standards"
    assert "does not adjust for it" in unadjusted["reasons"]


def test_review_large_imbalance_does_not_meet(high_attrition):
    data = _shift_prior(high_attrition, "prior_core_gpa", "core_gpa", 0.30)
    r = ce.wwc_review(data, outcomes=["core_gpa"]).to_frame().iloc[0]
    assert r["baseline_effect_size"] == pytest.approx(0.30, abs=1e-9)
    assert r["equivalence"] == "not satisfied"
    assert r["rating"] == "Does not meet WWC standards"
    # with low attrition the same imbalance does not matter to the WWC
    low = _shift_prior(ce.simulate(seed=5).students, "prior_core_gpa", "core_gpa", 0.30)
    r = ce.wwc_review(low, outcomes=["core_gpa"]).to_frame().iloc[0]
    assert r["rating"] == "Meets WWC standards without reservations"
    assert "for information" in r["reasons"]


def test_review_compromised_randomization_needs_equivalence(shipped):
    f = ce.wwc_review(shipped, outcomes=["core_gpa"], randomization_intact=False).to_frame()
    r = f.iloc[0]
    assert r["attrition_level"] == "low" and r["equivalence_required"]
    assert r["rating"] == "Meets WWC standards with reservations"
    assert "randomization declared compromised" in r["reasons"]
    bad = _shift_prior(shipped, "prior_core_gpa", "core_gpa", 0.4)
    r = ce.wwc_review(bad, outcomes=["core_gpa"], randomization_intact=False).to_frame().iloc[0]
    assert r["rating"] == "Does not meet WWC standards"


def test_review_declared_and_detected_confounds(shipped):
    r = ce.wwc_review(shipped, outcomes=["core_gpa"], confounded=True).to_frame().iloc[0]
    assert r["confounded"] and r["rating"] == "Does not meet WWC standards"
    # one school with both arms, two schools with one arm each: n = 1 confound
    d = make_trial(n_schools=3, seed=6)
    d.loc[d["school_id"] == "S01", "treatment"] = 1
    d.loc[d["school_id"] == "S02", "treatment"] = 0
    review = ce.wwc_review(d, outcomes=["score"], required=["pretest"])
    r = review.to_frame().iloc[0]
    assert r["confounded"] and r["rating"] == "Does not meet WWC standards"
    assert any("n = 1 confound" in x for x in review.reasons("score"))


def test_review_custom_outcome_needs_a_named_baseline_measure():
    d = make_trial(lost_t=0.45, lost_c=0.1, seed=12)
    r = ce.wwc_review(d, outcomes=["score"]).to_frame().iloc[0]
    assert r["attrition_level"] == "high"
    assert r["rating"] == "Does not meet WWC standards"
    assert "no required baseline characteristic was named" in r["reasons"]
    ok = ce.wwc_review(
        d, outcomes=["score"], required={"score": ["pretest"]}, covariates=["pretest"]
    )
    assert ok.to_frame().loc[0, "rating"] == "Meets WWC standards with reservations"


def test_review_required_characteristic_missing_from_data(high_attrition):
    data = high_attrition.drop(columns=["prior_core_gpa"])
    r = ce.wwc_review(data, outcomes=["core_gpa"]).to_frame().iloc[0]
    assert r["equivalence"] == "not computed"
    assert r["rating"] == "Does not meet WWC standards"
    assert "'prior_core_gpa' is not in the data" in r["reasons"]


def test_review_optimistic_boundary_changes_the_rating():
    # about 20% overall and 8 pp differential: high if cautious, low if optimistic
    d = make_trial(n_schools=10, per_school=100, lost_t=0.24, lost_c=0.16, seed=21)
    cautious = ce.wwc_review(d, outcomes=["score"], required=["pretest"]).to_frame().iloc[0]
    optimistic = ce.wwc_review(d, outcomes=["score"], required=["pretest"], boundary="optimistic")
    o = optimistic.to_frame().iloc[0]
    assert 5.5 < cautious["differential_attrition"] < 9.5
    assert cautious["attrition_level"] == "high" and o["attrition_level"] == "low"
    assert o["rating"] == "Meets WWC standards without reservations"
    assert not o["boundary_confirmed"]
    assert "unconfirmed" in o["reasons"]
    assert any("unconfirmed" in n for n in optimistic.notes)


def test_review_cluster_design_is_not_rated_and_corrected(shipped):
    d = shipped.copy()
    schools = sorted(d["school_id"].unique())
    d["treatment"] = d["school_id"].isin(schools[::2]).astype(int)
    with pytest.raises(DesignError, match="study_design='cluster_rct'"):
        ce.wwc_review(d)
    with pytest.warns(DesignWarning, match="cluster RCT standards"):
        review = ce.wwc_review(
            d, study_design="cluster_rct", outcomes=["core_gpa", "chronic_absence"]
        )
    f = review.to_frame().set_index("outcome")
    assert (f["rating"] == "Not rated").all()
    assert f.loc["core_gpa", "icc"] == 0.20 and f.loc["chronic_absence", "icc"] == 0.10
    # the correction applied to the pooled (student-level) t statistic
    itt = ce.estimate_itt(
        d.assign(one=0), outcomes=["core_gpa"], block="one", se_type="classical"
    ).to_frame().iloc[0]  # fmt: skip
    derived = ce.derive_outcomes(d)
    clusters = derived.loc[derived["core_gpa"].notna(), "school_id"].nunique()
    c = ce.wwc_clustering_correction(
        itt["statistic"], n=itt["n"], cluster_size=itt["n"] / clusters, icc=0.2
    )
    assert f.loc["core_gpa", "t_corrected"] == pytest.approx(c.t)
    assert f.loc["core_gpa", "p_value_corrected"] == pytest.approx(c.p_value)
    assert "cluster RCT standards apply" in f.loc["core_gpa", "reasons"]
    # school-level assignment: the baseline comparison falls back to raw differences
    assert review.baseline["core_gpa"].basis == "raw"


def test_review_cluster_design_warns_when_data_look_individual(shipped):
    with pytest.warns(DesignWarning, match="look randomized within schools"):
        review = ce.wwc_review(shipped, study_design="cluster_rct", outcomes=["core_gpa"], icc=0.05)
    assert review.to_frame().loc[0, "icc"] == 0.05


def test_review_table_and_plot(shipped):
    review = ce.wwc_review(shipped, outcomes=["chronic_absence", "suspensions"])
    t = review.table()
    assert t.data.columns.tolist() == [
        "Outcome",
        "Overall attrition (%)",
        "Differential (pp)",
        "Attrition",
        "Baseline equivalence",
        "Effect size",
        "Improvement index",
        "Finding",
        "WWC rating",
    ]
    text = t.to_text()
    assert "Chronically absent: overall attrition" in text
    fig, ax = plt.subplots()
    assert review.plot(ax) is ax
    plt.close(fig)
    with pytest.raises(KeyError, match="no outcome 'gpa'"):
        review.reasons("gpa")


def test_review_table_hides_small_attrition_figures_in_the_reasons_too():
    d = make_trial(lost_c=0.3, seed=3)
    program = np.flatnonzero(d["treatment"].to_numpy() == 1)
    d.loc[program[:4], "score"] = np.nan  # 4 program students lost
    review = ce.wwc_review(d, outcomes=["score"], required=["pretest"])
    r = review.to_frame().iloc[0]
    shown = review.table().to_text()
    assert f"{r['overall_attrition']:.1f}%" not in shown
    assert f"{r['differential_attrition']:.1f} pp" not in shown
    assert "(figures suppressed)" in shown
    assert f"{r['overall_attrition']:.1f}%" in review.reasons("score")[0]
    assert f"{r['overall_attrition']:.1f}%" in review.table(min_cell=1).to_text()


def test_finding_vocabulary():
    assert I_review._finding(0.3, 0.01) == "statistically significant positive"
    assert I_review._finding(-0.1, 0.01) == "statistically significant negative"
    assert I_review._finding(0.3, 0.2) == "substantively important positive"
    assert I_review._finding(-0.25, 0.2) == "substantively important negative"
    assert I_review._finding(0.1, 0.2) == "indeterminate"


def test_review_bad_input(shipped):
    with pytest.raises(OptionError, match="study_design="):
        ce.wwc_review(shipped, study_design="quasi")
    with pytest.raises(ValueError, match="boundary="):
        ce.wwc_review(shipped, boundary="liberal")
    with pytest.raises(TypeError, match="randomization_intact"):
        ce.wwc_review(shipped, randomization_intact="yes")
    with pytest.raises(EstimationError, match="no treatment column"):
        ce.wwc_review(shipped.drop(columns=["treatment"]))
    with pytest.raises(EstimationError, match="not reviewed"):
        ce.wwc_review(shipped, outcomes=["core_gpa"], required={"chronic_absence": ["ell"]})
    with pytest.raises(ValueError, match="listed twice"):
        ce.wwc_review(shipped, outcomes=["core_gpa", "core_gpa"])


def test_review_does_not_modify_input(shipped):
    before = shipped.copy()
    ce.wwc_review(shipped, outcomes=["chronic_absence"])
    pd.testing.assert_frame_equal(shipped, before)


# --------------------------------------------------------------------------- command line


def test_cli_integrity_writes_three_tables(tmp_path, synthetic_dir, capsys):
    out = tmp_path / "integrity"
    code = main(
        [
            "integrity",
            "--students",
            str(synthetic_dir / "students.csv"),
            "--out",
            str(out),
            "--sims",
            "200",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for title in (
        "Baseline equivalence: analytic sample for 'Chronically absent'",
        "Sample attrition and the WWC attrition standard",
        "What Works Clearinghouse standards: rating by outcome",
    ):
        assert title in captured.out
    for name in ("baseline_equivalence", "attrition", "wwc_review"):
        for ext in ("csv", "md", "html"):
            assert (out / f"{name}.{ext}").is_file()
    assert (out / "baseline_equivalence_core_gpa.csv").is_file()
    assert (out / "love_plot.png").read_bytes()[:4] == b"\x89PNG"
    students = pd.read_csv(synthetic_dir / "students.csv", dtype=str)
    text = "".join(p.read_text() for p in out.glob("*.csv")) + captured.out
    assert not any(sid in text for sid in students["student_id"])


def test_cli_integrity_user_errors(tmp_path, synthetic_dir, capsys):
    assert main(["integrity", "--students", str(tmp_path / "none.csv")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["integrity", "--students", str(synthetic_dir / "students.csv"),
                 "--boundary", "liberal"]) == 2  # fmt: skip
    capsys.readouterr()
    assert main(["integrity", "--students", str(synthetic_dir / "students.csv"),
                 "--outcomes", "nope", "--sims", "0"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("error:") and "unknown outcome 'nope'" in err
    assert main(["integrity", "--students", str(synthetic_dir / "students.csv"),
                 "--min-cell", "0"]) == 2  # fmt: skip
    assert main(["integrity", "--students", str(synthetic_dir / "students.csv"),
                 "--sims", "-5"]) == 2  # fmt: skip
    capsys.readouterr()
    assert main(["integrity", "--students", str(synthetic_dir / "students.csv"),
                 "--outcomes", "core_gpa,core_gpa", "--sims", "0"]) == 2  # fmt: skip
    assert "listed twice" in capsys.readouterr().err


def test_demo_shows_integrity_right_after_the_description():
    names = [f.__name__ for f in DEMO_SECTIONS]
    assert names[names.index("describe_section") + 1] == "integrity_section"


def test_integrity_uses_the_impact_core_not_the_public_verb(shipped, monkeypatch):
    import cis_eval.estimation.itt as itt_module

    def refuse(*args, **kwargs):
        raise AssertionError("integrity must not call the public estimate_itt")

    monkeypatch.setattr(itt_module, "estimate_itt", refuse)
    monkeypatch.setattr(ce, "estimate_itt", refuse, raising=False)
    review = ce.wwc_review(shipped, outcomes=["chronic_absence"], covariates=None)
    assert review.spec.covariates["chronic_absence"] == ()
    assert review.spec.se_type == "HC2" and review.study_design == "rct"
    be = ce.baseline_equivalence(shipped, outcome="chronic_absence")
    assert be.to_frame()["difference_adjusted"].notna().all()


def test_adjusted_difference_notes_name_the_characteristic():
    # a characteristic with one value has no within-school difference: the note names the
    # characteristic as the user did, not the key the impact core sees
    d = make_trial(seed=5).assign(same_for_all=1.0)
    be = ce.baseline_equivalence(d, characteristics=["same_for_all", "pretest"])
    note = next(n for n in be.notes if "adjusted difference not computed" in n)
    assert note.startswith("same_for_all: ") and "outcome 'same_for_all'" in note
    assert "__cis_eval" not in " ".join(be.notes)


def test_review_accessors_read_the_impact_columns(shipped):
    review = ce.wwc_review(shipped, outcomes=["chronic_absence", "core_gpa"])
    frame = review.to_frame().set_index("outcome")
    pd.testing.assert_series_equal(review.estimate, frame["impact"].rename("estimate"))
    pd.testing.assert_series_equal(review.p_value, frame["p_value"])
    frame.loc[:, "impact"] = 0.0  # a returned frame is a copy
    assert (review.to_frame()["impact"] != 0).all()
    with pytest.raises(AttributeError, match="no 'estimate'"):
        _ = ce.attrition(shipped).estimate
