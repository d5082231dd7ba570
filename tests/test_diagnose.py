"""Design diagnosis by simulation: the batched estimators against estimate_itt, the engine
and statsmodels on each replication's data; diagnosands against hand formulas; known truth
(null effects, exact enumeration); grids, seeds, the result object and the CLI."""

from __future__ import annotations

import dataclasses
import itertools
import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import cis_eval as ce
from cis_eval._core import engine as _engine
from cis_eval.cli import main
from cis_eval.design._diagnose_batched import _draw, _estimate, _inverse, _masks, _population
from cis_eval.design.diagnose import (
    _KEY,
    _PAIR,
    DiagnosisResult,
    TrialDesign,
    _diagnosands,
)
from cis_eval.errors import DesignWarning, OptionError
from cis_eval.schema import OUTCOME_NAMES, OUTCOMES

ALL = tuple(_PAIR)  # the batched estimators' private keys
# estimate_itt options of each estimator: the same estimand and covariates
OPTIONS = {
    "fixed_effects": {},
    "fixed_effects_none": {"covariates": None},
    "person_weighted_none": {"estimand": "person_weighted", "covariates": None},
}
RTOL = 1e-10


def _sorted(trial):
    """Students and potential outcomes in the population's row order (by school)."""
    codes = pd.factorize(trial.students["school_id"], sort=True)[0]
    order = np.argsort(codes, kind="stable")
    students = trial.students.iloc[order].reset_index(drop=True)
    po = trial.truth.potential_outcomes.iloc[order].reset_index(drop=True)
    return students, po


def _replication(students, po, z, masks):
    """The data an analyst would see in one replication: assignment and observed outcomes."""
    data = students.copy()
    data["treatment"] = z.astype(np.int64)
    for i, o in enumerate(OUTCOME_NAMES):
        y = np.where(z > 0, po[f"y1_{o}"], po[f"y0_{o}"])
        data[o] = np.where(masks[i] > 0, y, np.nan)
    return data


def _diagnose_all(design, **kwargs):
    """Frame and draws of every estimator; the same seed gives the same replications.

    Person-weighted estimates are diagnosed without covariates only, so they take a call
    of their own.
    """
    a = ce.diagnose(design, estimand="fixed_effects", covariates=["default", None], **kwargs)
    b = ce.diagnose(design, estimand="person_weighted", covariates=None, **kwargs)
    frame = pd.concat([a.to_frame(), b.to_frame()], ignore_index=True)
    draws = pd.concat([a.draws(), b.draws()], ignore_index=True)
    for f in (frame, draws):
        f["key"] = [_KEY[p] for p in zip(f["estimator"], f["covariates"], strict=True)]
    return a, frame, draws


def _itt(data, estimator, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        res = ce.estimate_itt(data, **OPTIONS[estimator], **kwargs)
    return res.to_frame().set_index("outcome")


def _draws(design, *, seed=5, r=3, rng_seed=11):
    trial = design.simulate(seed=seed)
    pop = _population(trial, covariates=True)
    zr, keep = _draw(pop, design, np.random.default_rng(rng_seed), r)
    return trial, pop, zr, _masks(pop, keep)


DESIGNS = {
    "study-like": TrialDesign(schools=6, students_per_school=60),
    "differential-attrition": TrialDesign(
        schools=5, students_per_school=50, attrition=0.15, differential_attrition=0.06
    ),
    "small-schools-missing": TrialDesign(
        schools=8, students_per_school=12, attrition=0.3, baseline_missing=0.15
    ),
    "unbalanced": TrialDesign(schools=4, students_per_school=40, share_treated=0.3),
}


# ----------------------------------------------------------------------------- estimators


@pytest.mark.parametrize("name", list(DESIGNS))
def test_batched_estimates_equal_estimate_itt(name):
    design = DESIGNS[name]
    trial, pop, zr, masks = _draws(design)
    out = _estimate(pop, ALL, zr, masks)
    students, po = _sorted(trial)
    refused = 0
    for r in range(zr.shape[0]):
        data = _replication(students, po, zr[r], [m[r] for m in masks])
        for j, est in enumerate(ALL):
            for i, o in enumerate(OUTCOME_NAMES):
                try:
                    ref = _itt(data, est, outcomes=[o])
                except ce.errors.EstimationError:
                    # e.g. a school-by-arm cell with one student: no variance, so NaN here
                    assert np.isnan(out[1, i, j, r])
                    refused += 1
                    continue
                for q, col in enumerate(("estimate", "std_error", "df")):
                    assert out[q, i, j, r] == pytest.approx(ref.loc[o, col], rel=RTOL), (
                        r,
                        est,
                        o,
                        col,
                    )
    assert refused == 0 or name == "small-schools-missing"


def test_batched_estimates_equal_engine_and_statsmodels():
    """One replication, school fixed effects with covariates, HC2: the engine given plain
    arrays, and statsmodels OLS with explicit school dummies (a second implementation)."""
    design = DESIGNS["study-like"]
    trial, pop, zr, masks = _draws(design, r=2)
    out = _estimate(pop, ("fixed_effects",), zr, masks)
    students, po = _sorted(trial)
    codes = pd.factorize(students["school_id"], sort=True)[0]
    for r in range(2):
        data = _replication(students, po, zr[r], [m[r] for m in masks])
        for i, o in enumerate(OUTCOMES):
            y = data[o.name].to_numpy(dtype=float) * (100.0 if o.type == "binary" else 1.0)
            cols = [data["treatment"].to_numpy(dtype=float)]
            for c in ce.default_covariates(o, students):
                v = students[c].to_numpy(dtype=float, na_value=np.nan)
                miss = np.isnan(v)
                cols.append(np.where(miss, np.nanmean(v), v))
                if miss.any():
                    cols.append(miss.astype(float))
            x = np.column_stack(cols)
            ok = ~np.isnan(y)
            fit = _engine.fit(y[ok], x[ok], codes[ok], r=np.eye(x.shape[1])[0], se_type="HC2")
            assert out[0, i, 0, r] == pytest.approx(fit.estimate, rel=RTOL)
            assert out[1, i, 0, r] == pytest.approx(fit.std_error, rel=RTOL)
            assert out[2, i, 0, r] == fit.df
            # statsmodels needs a design of full rank and no leverage of 1: an indicator
            # nobody in the sample has drops out, and one that flags a single student goes
            # with that student (who is fitted exactly and moves nothing else)
            rows = ok.copy()
            cols = np.ones(x.shape[1], dtype=bool)
            for j in range(1, x.shape[1]):
                flagged = np.flatnonzero(rows & (x[:, j] == 1.0))
                if set(np.unique(x[:, j])) <= {0.0, 1.0} and flagged.size <= 1:
                    cols[j] = False
                    rows[flagged] = False
            present = np.unique(codes[rows])
            dummies = (codes[rows][:, None] == present[None, 1:]).astype(float)
            exog = np.column_stack([np.ones(rows.sum()), x[rows][:, cols], dummies])
            assert np.linalg.matrix_rank(exog) == exog.shape[1]
            sm_fit = sm.OLS(y[rows], exog).fit(cov_type="HC2")
            assert out[0, i, 0, r] == pytest.approx(sm_fit.params[1], rel=1e-8)
            assert out[1, i, 0, r] == pytest.approx(sm_fit.bse[1], rel=1e-8)


def test_collinear_and_exactly_fitted_students_match_estimate_itt():
    """A missing-value indicator whose students have all left the sample is collinear (zero
    in the sample) and dropped; one that flags a single student fits that student exactly
    (leverage 1, no influence). Both as estimate_itt."""
    design = TrialDesign(schools=4, students_per_school=60, baseline_missing=0.05)
    trial, pop, zr, masks = _draws(design, r=2)
    i = OUTCOME_NAMES.index("chronic_absence")
    students, po = _sorted(trial)
    flags = students["prior_chronic_absence"].isna().to_numpy()
    assert flags.sum() >= 2
    masks[i] = masks[i].copy()
    masks[i][0, flags] = 0.0  # replication 0: every flagged student lost
    masks[i][1, flags] = 0.0
    masks[i][1, np.flatnonzero(flags)[0]] = 1.0  # replication 1: exactly one kept
    out = _estimate(pop, ("fixed_effects",), zr, masks)
    for r in range(2):
        ref = _itt(_replication(students, po, zr[r], [m[r] for m in masks]), "fixed_effects")
        for q, col in enumerate(("estimate", "std_error", "df")):
            assert out[q, i, 0, r] == pytest.approx(ref.loc["chronic_absence", col], rel=RTOL)


def test_inverse_drops_collinear_columns_like_the_engine():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    x = np.column_stack([x, x[:, 1] + x[:, 2], np.zeros(50)])  # a combination and a zero
    w = (x.T @ x)[None]
    raw = np.einsum("ij,ij->j", x, x)[None]
    inv, rank = _inverse(w, raw)
    assert rank[0] == 4
    np.testing.assert_allclose(w[0] @ inv[0] @ w[0], w[0], atol=1e-9)  # a generalized inverse
    assert _engine.independent_columns(w[0], raw[0]) == [0, 1, 2, 3]


def test_blocked_difference_in_means_is_exactly_unbiased_over_every_assignment():
    """Exact enumeration of the within-school lottery: the mean of the person-weighted
    estimates over all assignments is the SATE (no attrition)."""
    design = TrialDesign(schools=2, n_students=8, attrition=0.0, effects={"core_gpa": 0.3})
    trial = design.simulate(seed=3)
    pop = _population(trial, covariates=False)
    per_school = []
    for s, m in zip(pop.starts, pop.sizes, strict=True):
        k = int(pop.z[s : s + m].sum())
        rows = []
        for treated in itertools.combinations(range(m), k):
            z = np.zeros(m)
            z[list(treated)] = 1.0
            rows.append(z)
        per_school.append(rows)
    zr = np.array([np.concatenate(c) for c in itertools.product(*per_school)])
    masks = [np.broadcast_to(po.defined, zr.shape).astype(float) for po in pop.outcomes]
    out = _estimate(pop, ("person_weighted_none",), zr, masks)
    i = OUTCOME_NAMES.index("core_gpa")
    assert zr.shape[0] == math.prod(
        math.comb(m, int(pop.z[s : s + m].sum()))
        for s, m in zip(pop.starts, pop.sizes, strict=True)
    )
    assert out[0, i, 0].mean() == pytest.approx(pop.outcomes[i].sate, abs=1e-12)
    assert pop.outcomes[i].sate != 0


def test_resample_mode_estimates_each_simulated_trial():
    design = TrialDesign(schools=4, students_per_school=40)
    res, _, draws = _diagnose_all(design, sims=2, seed=4, mode="resample", progress=False)
    seeds = draws["population_seed"].unique()
    assert seeds.size == 2
    assert "Coverage (target)" in res.table().data.columns
    for seed in seeds:
        trial = design.simulate(seed=int(seed))
        for est in ALL:
            ref = _itt(trial.students, est)
            got = draws[(draws["population_seed"] == seed) & (draws["key"] == est)]
            got = got.set_index("outcome")
            for o in OUTCOMES:
                assert got.loc[o.name, "estimate"] == pytest.approx(
                    ref.loc[o.name, "estimate"], rel=RTOL
                )
                assert got.loc[o.name, "std_error"] == pytest.approx(
                    ref.loc[o.name, "std_error"], rel=RTOL
                )
                scale = 100.0 if o.type == "binary" else 1.0
                assert got.loc[o.name, "estimand"] == pytest.approx(
                    trial.truth.sate[o.name] * scale, rel=1e-12
                )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schools=st.integers(2, 5),
    per_school=st.integers(10, 40),
    attrition=st.floats(0.0, 0.3),
    share=st.sampled_from([0.3, 0.5, 0.6]),
    seed=st.integers(0, 10_000),
)
def test_property_batched_equals_estimate_itt(schools, per_school, attrition, share, seed):
    design = TrialDesign(
        schools=schools, students_per_school=per_school, attrition=attrition, share_treated=share
    )
    trial, pop, zr, masks = _draws(design, seed=seed, r=1, rng_seed=seed + 1)
    out = _estimate(pop, ("fixed_effects", "fixed_effects_none"), zr, masks)
    students, po = _sorted(trial)
    data = _replication(students, po, zr[0], [m[0] for m in masks])
    for j, est in enumerate(("fixed_effects", "fixed_effects_none")):
        try:
            ref = _itt(data, est)
        except ce.errors.EstimationError:
            continue  # estimate_itt refuses (e.g. no variation); the batch gives NaN or a value
        for i, o in enumerate(OUTCOME_NAMES):
            if np.isfinite(ref.loc[o, "std_error"]):
                assert out[0, i, j, 0] == pytest.approx(ref.loc[o, "estimate"], rel=1e-9)
                assert out[1, i, j, 0] == pytest.approx(ref.loc[o, "std_error"], rel=1e-9)


# ----------------------------------------------------------------------------- draws


def test_lottery_keeps_each_schools_program_count_and_attrition_rates():
    design = TrialDesign(
        schools=6, students_per_school=80, attrition=0.2, differential_attrition=0.1
    )
    trial = design.simulate(seed=1)
    pop = _population(trial, covariates=False)
    zr, keep = _draw(pop, design, np.random.default_rng(2), 400)
    counts = np.add.reduceat(zr, pop.starts, axis=1)
    np.testing.assert_array_equal(counts, np.add.reduceat(pop.z, pop.starts)[None].repeat(400, 0))
    assert not np.all(zr == zr[0])
    # share kept per source and arm: 1 - attrition of the arm (program 0.25, control 0.15)
    for arm, a in ((1, 0.25), (0, 0.15)):
        sel = zr == arm
        kept = keep[:, sel].mean(axis=1)
        se = math.sqrt(a * (1 - a) / sel.sum())
        np.testing.assert_array_less(np.abs(kept - (1 - a)), 4 * se)
    # whole-record loss is shared: losing one source makes losing another more likely
    lost = ~keep
    both = (lost[0] & lost[1]).mean()
    assert both > lost[0].mean() * lost[1].mean() * 2


# ----------------------------------------------------------------------------- diagnosands


def test_diagnosands_equal_hand_formulas():
    est = np.array([1.0, 3.0, -2.0, 0.5, 4.0, np.nan])
    se = np.array([0.5, 1.0, 0.5, 1.0, 1.0, 1.0])
    df = np.full(6, 20.0)
    truth = 1.0
    got = _diagnosands(est, se, df, np.full(6, truth), 2.0, 0.05)
    e, s = est[:5], se[:5]
    crit = stats.t.ppf(0.975, 20)
    sig = np.abs(e / s) > crit
    assert got["n_failed"] == 1 and got["sims"] == 6
    assert got["mean_estimate"] == pytest.approx(e.mean())
    assert got["mean_estimate_mc_se"] == pytest.approx(e.std(ddof=1) / math.sqrt(5))
    assert got["bias"] == pytest.approx(e.mean() - truth)
    assert got["rmse"] == pytest.approx(math.sqrt(np.mean((e - truth) ** 2)))
    sq = (e - truth) ** 2
    assert got["rmse_mc_se"] == pytest.approx(
        sq.std(ddof=1) / math.sqrt(5) / (2 * math.sqrt(sq.mean()))
    )
    assert got["power"] == pytest.approx(sig.mean())
    assert got["power_mc_se"] == pytest.approx(math.sqrt(sig.mean() * (1 - sig.mean()) / 5))
    covered = (e - crit * s <= truth) & (truth <= e + crit * s)
    assert got["coverage"] == pytest.approx(covered.mean())
    wrong = np.sign(e[sig]) != np.sign(truth)
    assert got["type_s"] == pytest.approx(wrong.mean())
    assert got["type_s_mc_se"] == pytest.approx(math.sqrt(wrong.mean() * (1 - wrong.mean()) / 3))
    assert got["mean_se"] == pytest.approx(s.mean())
    assert got["sd_estimate"] == pytest.approx(e.std(ddof=1))
    assert got["sd_estimate_mc_se"] == pytest.approx(e.std(ddof=1) / math.sqrt(8))
    assert got["bias_target"] == pytest.approx(e.mean() - 2.0)
    assert got["coverage_target"] == pytest.approx(
        ((e - crit * s <= 2.0) & (e + crit * s >= 2.0)).mean()
    )
    # type S is undefined when the estimand is zero
    assert math.isnan(_diagnosands(est, se, df, np.zeros(6), 0.0, 0.05)["type_s"])


def test_rmse_mc_se_agrees_with_a_bootstrap():
    rng = np.random.default_rng(1)
    est = rng.normal(0.3, 1.0, 2000)
    got = _diagnosands(est, np.ones(2000), np.full(2000, 100.0), np.zeros(2000), 0.0, 0.05)
    boot = [math.sqrt(np.mean(rng.choice(est, est.size) ** 2)) for _ in range(400)]
    assert got["rmse_mc_se"] == pytest.approx(np.std(boot), rel=0.15)


@settings(max_examples=40, deadline=None)
@given(
    est=st.lists(st.floats(-5, 5), min_size=3, max_size=30),
    shift=st.floats(-3, 3),
    scale=st.floats(1.1, 4.0),
)
def test_property_diagnosands_invariances(est, shift, scale):
    e = np.array(est)
    se = np.full(e.size, 1.0)
    df = np.full(e.size, 30.0)
    base = _diagnosands(e, se, df, np.full(e.size, 0.7), 0.7, 0.05)
    moved = _diagnosands(e + shift, se, df, np.full(e.size, 0.7 + shift), 0.7 + shift, 0.05)
    for k in ("bias", "rmse", "coverage", "sd_estimate"):
        assert moved[k] == pytest.approx(base[k], abs=1e-9)
    wider = _diagnosands(e, se * scale, df, np.full(e.size, 0.7), 0.7, 0.05)
    assert wider["coverage"] >= base["coverage"]
    assert wider["power"] <= base["power"]


# ----------------------------------------------------------------------------- known truth


@pytest.mark.slow
def test_null_effects_power_is_alpha_and_coverage_is_nominal():
    design = TrialDesign(schools=12, students_per_school=80, effects={})
    n = 2000
    _, f, _ = _diagnose_all(design, sims=n, seed=2026, progress=False)
    band = 3 * math.sqrt(0.05 * 0.95 / n)
    assert (f["estimand"] == 0).all()
    assert (f["n_failed"] == 0).all()
    np.testing.assert_array_less(np.abs(f["power"] - 0.05), band)
    np.testing.assert_array_less(np.abs(f["coverage"] - 0.95), band)
    np.testing.assert_array_less(np.abs(f["bias"]), 3 * f["bias_mc_se"])
    # the HC2 standard error estimates the spread of the estimates
    np.testing.assert_array_less(np.abs(f["mean_se"] / f["sd_estimate"] - 1), 0.06)


@pytest.mark.slow
def test_with_an_effect_the_estimators_are_unbiased_for_the_sate():
    design = TrialDesign(schools=10, students_per_school=80, attrition=0.0)
    n = 2000
    _, f, _ = _diagnose_all(design, sims=n, seed=7, progress=False)
    f = f.set_index(["outcome", "key"])
    row = f.loc[("chronic_absence", "person_weighted_none")]
    assert row["estimand"] == pytest.approx(-6.0, abs=0.5)
    np.testing.assert_array_less(np.abs(f["bias"]), 3 * f["bias_mc_se"] + 1e-12)
    # without covariates the HC2 (Neyman) variance is conservative for the SATE
    band = 3 * math.sqrt(0.0475 / n)
    plain = f.xs("person_weighted_none", level="key")["coverage"]
    np.testing.assert_array_less(0.95 - band, plain)
    # with a dozen covariates in a few hundred students HC2 is only approximately so
    adjusted = f.xs("fixed_effects", level="key")["coverage"]
    np.testing.assert_array_less(np.abs(adjusted - 0.95), 0.03)
    # covariates buy precision: lower RMSE than without them
    for o in ("chronic_absence", "core_gpa", "attendance_rate"):
        assert f.loc[(o, "fixed_effects"), "rmse"] < f.loc[(o, "fixed_effects_none"), "rmse"]


@pytest.mark.slow
def test_design_and_resample_modes_agree_on_power_and_coverage():
    design = TrialDesign(schools=8, students_per_school=60)
    a = ce.diagnose(design, sims=400, seed=3, progress=False).to_frame()
    b = ce.diagnose(design, sims=400, seed=3, mode="resample", progress=False).to_frame()
    for col in ("power", "coverage"):
        gap = np.abs(a[col] - b[col])
        np.testing.assert_array_less(
            gap, 3.5 * np.hypot(a[f"{col}_mc_se"], b[f"{col}_mc_se"]) + 1e-9
        )


def test_power_grows_with_the_number_of_schools_and_the_effect():
    design = TrialDesign(schools=8, students_per_school=50)
    res = ce.diagnose(design, sims=300, seed=9, grid={"schools": [3, 6, 12, 24]}, progress=False)
    f = res.to_frame()
    power = f[f["outcome"] == "chronic_absence"].sort_values("schools")["power"].to_numpy()
    assert np.all(np.diff(power) > 0), power
    res = ce.diagnose(
        design,
        sims=300,
        seed=9,
        grid={"chronic_absence": [-0.02, -0.05, -0.10]},
        progress=False,
    )
    f = res.to_frame()
    sub = f[f["outcome"] == "chronic_absence"].sort_values("chronic_absence", ascending=False)
    assert np.all(np.diff(sub["power"].to_numpy()) > 0)
    assert sub["target_effect"].tolist() == pytest.approx([-2.0, -5.0, -10.0])


@settings(max_examples=6, deadline=None)
@given(small=st.integers(3, 6), factor=st.integers(3, 5), seed=st.integers(0, 1000))
def test_property_power_monotone_in_students_per_school(small, factor, seed):
    design = TrialDesign(schools=small, students_per_school=30, effects={"core_gpa": 0.15})
    res = ce.diagnose(
        design,
        covariates=None,
        sims=200,
        seed=seed,
        grid={"students_per_school": [30, 30 * factor]},
        progress=False,
    )
    f = res.to_frame()
    p = f[f["outcome"] == "core_gpa"].sort_values("students_per_school")["power"].to_numpy()
    assert p[1] > p[0]


# ----------------------------------------------------------------------------- the verb


def test_same_seed_same_result_and_other_seed_differs():
    design = TrialDesign(schools=4, students_per_school=30)
    a = ce.diagnose(design, sims=50, seed=12, progress=False)
    b = ce.diagnose(design, sims=50, seed=12, progress=False)
    c = ce.diagnose(design, sims=50, seed=13, progress=False)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    pd.testing.assert_frame_equal(a.draws(), b.draws())
    assert not a.draws()["estimate"].equals(c.draws()["estimate"])
    g = ce.diagnose(design, sims=5, seed=np.random.default_rng(1), progress=False)
    assert g.seed is None and a.seed == 12


def test_results_do_not_depend_on_chunking_and_more_sims_extend_the_run(monkeypatch):
    import sys

    module = sys.modules["cis_eval.design.diagnose"]
    design = TrialDesign(schools=4, students_per_school=30)
    a = ce.diagnose(design, sims=40, seed=1, progress=False).draws()
    monkeypatch.setattr(module, "CHUNK_ELEMENTS", 1)  # one block of replications at a time
    b = ce.diagnose(design, sims=40, seed=1, progress=False).draws()
    pd.testing.assert_frame_equal(a, b)
    longer = ce.diagnose(design, sims=70, seed=1, progress=False).draws()
    first = longer[longer["sim"] < 40].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, a)
    for workers in (1, 3):
        c = ce.diagnose(design, sims=40, seed=1, progress=False, workers=workers).draws()
        pd.testing.assert_frame_equal(c, a)


def test_result_object():
    design = TrialDesign(schools=4, students_per_school=30)
    res = ce.diagnose(design, covariates=["default", None], sims=30, seed=1, progress=False)
    assert isinstance(res, DiagnosisResult)
    assert repr(res) == "DiagnosisResult(6 outcomes, 2 estimators, 30 simulations, mode=design)"
    frame = res.to_frame()
    assert list(frame["outcome"].unique()) == list(OUTCOME_NAMES)
    assert len(frame) == 12 and frame["sims"].eq(30).all()
    assert res.estimators == (("fixed_effects", "default"), ("fixed_effects", "none"))
    assert list(frame["covariates"].unique()) == ["default", "none"]
    assert (frame["estimator"] == "fixed_effects").all()
    frame.loc[0, "power"] = 99.0
    assert res.to_frame().loc[0, "power"] != 99.0
    draws = res.draws()
    assert len(draws) == 30 * 12
    assert {"estimate", "std_error", "p_value", "conf_low", "conf_high"} <= set(draws.columns)
    table = res.table()
    assert table.title == "Design diagnosis by simulation"
    assert "Power" in table.data.columns and "Estimator" in table.data.columns
    assert any("Monte Carlo" in n for n in table.notes)
    text = table.to_text()
    assert "Chronically absent" in text and " (0." in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.sims = 3  # type: ignore[misc]
    back = pickle.loads(pickle.dumps(res))
    pd.testing.assert_frame_equal(back.to_frame(), res.to_frame())
    assert back.design == res.design


def test_plots_draw_on_given_axes():
    import matplotlib.pyplot as plt

    design = TrialDesign(schools=4, students_per_school=30)
    res = ce.diagnose(design, sims=20, seed=1, grid={"schools": [3, 4]}, progress=False)
    _fig, (a1, a2) = plt.subplots(1, 2)
    assert res.plot(a1) is a1
    assert res.plot(a2, diagnosand="coverage", outcomes=["chronic_absence"]) is a2
    assert a1.get_xlabel() == "Schools" and a2.get_ylabel() == "Coverage"
    with pytest.raises(ValueError, match="diagnosand"):
        res.plot(a1, diagnosand="nonsense")  # type: ignore[arg-type]
    flat = ce.diagnose(design, sims=20, seed=1, progress=False)
    ax = flat.plot(diagnosand="bias")
    assert len(ax.get_yticks()) == 6
    plt.close("all")


def test_progress_bar_goes_to_stderr_only_when_asked(capsys):
    design = TrialDesign(schools=3, students_per_school=20)
    ce.diagnose(design, sims=5, seed=1, progress=False)
    assert capsys.readouterr().err == ""
    ce.diagnose(design, sims=5, seed=1, progress=True)
    captured = capsys.readouterr()
    assert "diagnose" in captured.err and captured.out == ""


def test_design_declaration():
    d = TrialDesign()
    assert d.schools == 28 and d.total_students == 2230
    assert d.effects["chronic_absence"] == -0.06 and d.effects["core_gpa"] == 0.0
    with pytest.raises(TypeError):
        d.effects["core_gpa"] = 1.0  # type: ignore[index]
    assert TrialDesign(n_students=1000).vary("schools", 40).total_students == 1000
    assert TrialDesign(students_per_school=50).vary("schools", 40).total_students == 2000
    assert TrialDesign().vary("students_per_school", 10).n_students is None
    assert TrialDesign().vary("core_gpa", 0.2).effects["core_gpa"] == 0.2
    trial = TrialDesign(schools=3, students_per_school=20, take_up=0.5).simulate(seed=1)
    assert trial.params.n_schools == 3 and trial.params.take_up == 0.5
    assert len(trial.contacts) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schools": 1}, "schools = 1: a blocked design needs at least 2 schools"),
        ({"schools": 2.5}, "schools must be a whole number"),
        ({"share_treated": 0.0}, r"share_treated must be in \(0, 1\)"),
        ({"share_treated": 1.0}, r"share_treated must be in \(0, 1\)"),
        ({"icc": -0.1}, r"icc must be in \[0, 1\)"),
        ({"students_per_school": 3}, "students_per_school = 3"),
        ({"n_students": 20, "schools": 10}, "n_students = 20"),
        ({"n_students": 400, "students_per_school": 40}, "not both"),
        ({"effects": {"dropout": 0.1}}, "unknown outcome"),
        ({"effects": {"chronic_absence": -6}}, "binary effects are proportions"),
        ({"take_up": 0.99}, "take_up must be in"),
        ({"attrition": 1.0}, r"attrition must be in \[0, 1\)"),
    ],
)
def test_bad_design_is_a_clear_error(kwargs, match):
    with pytest.raises(OptionError, match=match):
        TrialDesign(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sims": 0}, "sims must be at least 1"),
        ({"sims": 2.5}, "sims must be a whole number"),
        ({"estimand": "ols"}, "estimand='ols' is not an option"),
        ({"estimand": "blocked_dim"}, "estimand='blocked_dim' is not an option"),
        ({"estimand": []}, "estimand is empty"),
        ({"covariates": "none"}, "covariates='none' is not an option"),
        ({"estimand": "person_weighted"}, "without covariates only"),
        ({"alpha": 1.5}, "alpha must be strictly between 0 and 1"),
        ({"mode": "bootstrap"}, "mode='bootstrap' is not an option"),
        ({"grid": {"dropout": [1]}}, "grid parameter 'dropout' is not an option"),
        ({"grid": {"schools": []}}, r"grid\['schools'\] is empty"),
        ({"grid": {"schools": [1, 2]}}, "at least 2 schools"),
        ({"seed": -1}, "seed must be a whole number of 0 or more"),
        ({"workers": 0}, "workers must be at least 1"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    args = {"sims": 5, "seed": 1, "progress": False, **kwargs}
    with pytest.raises(OptionError, match=match):
        ce.diagnose(TrialDesign(schools=3, students_per_school=20), **args)


def test_cli_diagnose(tmp_path, capsys):
    out = tmp_path / "diag"
    code = main(
        [
            "diagnose",
            "--schools",
            "4",
            "--students-per-school",
            "30",
            "--effect",
            "chronic_absence=-0.08",
            "--sims",
            "40",
            "--seed",
            "3",
            "--grid",
            "schools=3,4",
            "--estimand",
            "fixed_effects,person_weighted",
            "--covariates",
            "none",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Design diagnosis by simulation" in captured.out
    for name in ("diagnosis.csv", "diagnosis.md", "diagnosis.html", "diagnosis_tidy.csv"):
        assert (out / name).is_file()
    assert (out / "diagnosis.png").read_bytes()[:4] == b"\x89PNG"
    tidy = pd.read_csv(out / "diagnosis_tidy.csv")
    assert set(tidy["schools"]) == {3, 4} and len(tidy) == 2 * 2 * 6


@pytest.mark.parametrize(
    "argv",
    [
        ["--schools", "1"],
        ["--share-treated", "1"],
        ["--icc", "-0.2"],
        ["--sims", "0"],
        ["--estimand", "ols"],
        ["--covariates", "age"],
        ["--effect", "chronic_absence"],
        ["--effect", "chronic_absence=-0.1,-0.2"],
        ["--grid", "schools=a,b"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, capsys):
    code = main(["diagnose", "--sims", "5", "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_estimand_names_are_those_of_estimate_itt():
    from cis_eval.design.diagnose import DIAGNOSE_ESTIMANDS, ESTIMATORS

    assert set(DIAGNOSE_ESTIMANDS) <= set(ce.ESTIMANDS)
    assert {e for e, _ in ESTIMATORS} == set(DIAGNOSE_ESTIMANDS)
    assert {c for _, c in ESTIMATORS} == {"default", "none"}
