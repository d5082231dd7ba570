"""Impact estimation: reference values from R's estimatr and statsmodels, known truth,
invariances, and every bad-input path."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

import cis_eval as ce
from cis_eval._core import engine as _engine
from cis_eval._core.multiplicity import benjamini_hochberg, bonferroni, holm, westfall_young
from cis_eval.errors import DesignWarning, EstimationError, OptionError, OptionTypeError

DESIGNS = ("shipped", "small_schools", "unbalanced")

# estimatr estimator name -> cis_eval options
CONFIGS = {
    "fixed_effects/HC2": {},
    "fixed_effects/HC1": {"se_type": "HC1"},
    "fixed_effects/HC0": {"se_type": "HC0"},
    "fixed_effects/classical": {"se_type": "classical"},
    "fixed_effects/CR2": {"se_type": "CR2"},
    "fixed_effects/CR1": {"se_type": "CR1"},
    "fixed_effects/CR0": {"se_type": "CR0"},
    "fixed_effects_nocov/HC2": {"covariates": None},
    "fixed_effects_lin/HC2": {"lin": True},
    "person_weighted_nocov/HC2": {"estimand": "person_weighted", "covariates": None},
    "person_weighted/HC2": {"estimand": "person_weighted"},
    "person_weighted_lin/HC2": {"estimand": "person_weighted", "lin": True},
    "person_weighted_lin_manual/HC2": {"estimand": "person_weighted", "lin": True},
    "school_weighted/HC2": {"estimand": "school_weighted"},
    "school_weighted_lin/HC2": {"estimand": "school_weighted", "lin": True},
}
# Agreement required with the reference implementations (relative).
RTOL = 1e-8


def _reference(root, name):
    return pd.read_csv(
        root / "tests" / "reference" / name,
        comment="#",
        skipinitialspace=True,
        keep_default_na=False,
        na_values=["NaN", "NA"],
    )


@pytest.fixture(scope="module")
def designs(root):
    return {d: pd.read_csv(root / "tests" / "reference" / "data" / f"{d}.csv") for d in DESIGNS}


@pytest.fixture(scope="module")
def ours(designs):
    """cis_eval's estimates for every (design, configuration), computed once."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        for d, data in designs.items():
            for name, kw in CONFIGS.items():
                out[d, name] = ce.estimate_itt(data, **kw).to_frame().set_index("outcome")
            for se in ("HC2", "HC1"):
                out[d, f"cace/{se}"] = (
                    ce.estimate_cace(data, received="received", se_type=se)
                    .to_frame()
                    .set_index("outcome")
                )
    return out


def _estimatr_rows(root):
    ref = _reference(root, "estimatr_reference.csv")
    return [r._asdict() for r in ref.itertuples(index=False)]


_ROOT = Path(__file__).resolve().parents[1]
ESTIMATR = _estimatr_rows(_ROOT)


@pytest.mark.parametrize(
    "ref", ESTIMATR, ids=[f"{r['design']}-{r['outcome']}-{r['estimator']}" for r in ESTIMATR]
)
def test_matches_estimatr(ref, ours):
    design, estimator = ref["design"], ref["estimator"]
    if estimator.startswith("first_stage"):
        got = ours[design, "cace/HC2"].loc[ref["outcome"]]
        est, se = got["first_stage"], got["first_stage_std_error"]
        scale = 1.0
        df = None
    else:
        got = ours[design, estimator].loc[ref["outcome"]]
        est, se = got["estimate"], got["std_error"]
        # cis_eval reports binary outcomes in percentage points; estimatr in proportions
        scale = 100.0 if got["type"] == "binary" else 1.0
        df = got["df"]
    assert est / scale == pytest.approx(ref["estimate"], rel=RTOL, abs=1e-12)
    assert se / scale == pytest.approx(ref["std_error"], rel=RTOL)
    # "refit" rows were re-estimated by estimatr without students of leverage 1 (estimatr
    # reports NaN for them); cis_eval keeps those students in the counts, so only the
    # estimate and standard error are comparable there.
    if df is not None and ref["note"] != "refit":
        assert df == pytest.approx(ref["df"], rel=RTOL)


def test_every_estimator_and_design_has_reference_values():
    seen = {(r["design"], r["estimator"]) for r in ESTIMATR}
    for d in DESIGNS:
        for name in CONFIGS:
            if name == "person_weighted_lin_manual/HC2" and d != "small_schools":
                continue  # only the design without missing-value indicators runs lm_lin
            assert (d, name) in seen
        assert (d, "cace/HC2") in seen


STATSMODELS = [r._asdict() for r in _reference(_ROOT, "statsmodels_reference.csv").itertuples()]


@pytest.mark.parametrize(
    "ref",
    STATSMODELS,
    ids=[f"{r['design']}-{r['outcome']}-{r['estimator']}" for r in STATSMODELS],
)
def test_matches_statsmodels_with_explicit_dummies(ref, ours):
    got = ours[ref["design"], ref["estimator"]].loc[ref["outcome"]]
    scale = 100.0 if got["type"] == "binary" else 1.0
    assert got["estimate"] / scale == pytest.approx(ref["estimate"], rel=RTOL, abs=1e-12)
    assert got["std_error"] / scale == pytest.approx(ref["std_error"], rel=RTOL)


def test_cace_matches_linearmodels_iv2sls(designs):
    from linearmodels.iv import IV2SLS

    data = designs["unbalanced"].copy()
    data[["female", "frpl"]] = data[["female", "frpl"]].fillna(0)  # no missing-value indicators
    got = (
        ce.estimate_cace(
            data, received="received", outcomes=["core_gpa"], covariates=["female", "frpl"]
        )
        .to_frame()
        .iloc[0]
    )
    hc1 = (
        ce.estimate_cace(
            data,
            received="received",
            outcomes=["core_gpa"],
            covariates=["female", "frpl"],
            se_type="HC1",
        )
        .to_frame()
        .iloc[0]
    )
    d = data.dropna(subset=["core_gpa"])
    dummies = pd.get_dummies(d["school_id"], dtype=float)
    exog = pd.concat([d[["female", "frpl"]].astype(float), dummies], axis=1)
    res = IV2SLS(d["core_gpa"], exog, d[["received"]].astype(float), d[["treatment"]]).fit(
        cov_type="robust", debiased=True
    )
    assert got["estimate"] == pytest.approx(res.params["received"], rel=1e-10)
    # linearmodels' debiased robust covariance is HC1
    assert hc1["std_error"] == pytest.approx(res.std_errors["received"], rel=1e-10)


def test_cace_is_itt_over_first_stage(small_trial):
    cace = ce.estimate_cace(small_trial.students, small_trial.contacts).to_frame()
    np.testing.assert_allclose(cace["estimate"], cace["itt"] / cace["first_stage"], rtol=1e-10)
    assert (cace["first_stage_f"] > 100).all()


# ----------------------------------------------------------------- the engine by itself


def _random_design(seed, n_schools=6, lo=6, hi=14, k=2):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(lo, hi, n_schools)
    g = np.repeat(np.arange(n_schools), sizes)
    z = np.concatenate([rng.permutation(np.arange(m) < m // 2) for m in sizes]).astype(float)
    x = rng.normal(size=(g.size, k))
    y = 0.3 * z + x @ np.arange(1, k + 1) + g / 3 + rng.normal(size=g.size) * (1 + z)
    return y, z, x, g


@pytest.mark.parametrize("se", ["HC2", "HC1", "HC0", "classical"])
def test_engine_equals_statsmodels_with_dummies(se):
    y, z, x, g = _random_design(1)
    dummies = (g[:, None] == np.unique(g)).astype(float)
    ref = sm.OLS(y, np.column_stack([z, x, dummies])).fit(
        cov_type="nonrobust" if se == "classical" else se
    )
    fit = _engine.fit(y, np.column_stack([z, x]), g, r=np.array([1.0, 0, 0]), se_type=se)
    assert fit.estimate == pytest.approx(ref.params[0], rel=1e-12)
    assert fit.std_error == pytest.approx(ref.bse[0], rel=1e-12)


def test_hc2_leverage_includes_the_school_effects():
    # the exact leverage is 1/n_s + demeaned part; without 1/n_s the SE is too small
    y, z, x, g = _random_design(2)
    fit = _engine.fit(y, np.column_stack([z, x]), g, r=np.array([1.0, 0, 0]))
    dummies = (g[:, None] == np.unique(g)).astype(float)
    full = np.column_stack([z, x, dummies])
    h_full = np.einsum("ij,ji->i", full, np.linalg.pinv(full))
    np.testing.assert_allclose(fit.leverage, h_full, rtol=1e-10)


def test_chunked_pass_does_not_change_results(monkeypatch):
    y, z, x, g = _random_design(3, n_schools=40)
    base = _engine.fit(y, np.column_stack([z, x]), g, r=np.array([1.0, 0, 0]))
    monkeypatch.setattr(_engine, "CHUNK_ROWS", 16)
    small = _engine.fit(y, np.column_stack([z, x]), g, r=np.array([1.0, 0, 0]))
    assert small.std_error == pytest.approx(base.std_error, rel=1e-12)
    np.testing.assert_allclose(small.influence, base.influence, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("se", ["HC2", "CR1", "CR2"])
def test_two_workers_give_the_same_result_as_one(monkeypatch, small_trial, se):
    base = ce.estimate_itt(small_trial.students, se_type=se).to_frame()
    monkeypatch.setattr(_engine, "PARALLEL_ROWS", 0)
    monkeypatch.setattr(_engine, "WORKERS", 2)
    monkeypatch.setattr(_engine, "CHUNK_ROWS", 64)
    split = ce.estimate_itt(small_trial.students, se_type=se).to_frame()
    for col in ("estimate", "std_error", "df"):
        np.testing.assert_allclose(split[col], base[col], rtol=1e-12)


def test_a_student_flagged_alone_adds_nothing_to_hc2():
    # A missing-value indicator that flags one student fits that student exactly (leverage
    # 1). HC2 is then the HC2 of the data without that student and that indicator.
    y, z, x, g = _random_design(4)
    flag = np.zeros(y.size)
    flag[5] = 1.0
    with_flag = _engine.fit(y, np.column_stack([z, x, flag]), g, r=np.array([1.0, 0, 0, 0]))
    keep = np.arange(y.size) != 5
    without = _engine.fit(y[keep], np.column_stack([z, x])[keep], g[keep], r=np.array([1.0, 0, 0]))
    assert with_flag.estimate == pytest.approx(without.estimate, rel=1e-10)
    assert with_flag.std_error == pytest.approx(without.std_error, rel=1e-10)


# ----------------------------------------------------------------- multiplicity


@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=12))
def test_adjustments_match_statsmodels(p):
    p = np.array(p)
    for ours_fn, method in (
        (bonferroni, "bonferroni"),
        (holm, "holm"),
        (benjamini_hochberg, "fdr_bh"),
    ):
        np.testing.assert_allclose(ours_fn(p), multipletests(p, method=method)[1], rtol=1e-12)


def test_westfall_young_is_between_raw_and_bonferroni():
    rng = np.random.default_rng(0)
    cov = 0.6 * np.ones((4, 4)) + 0.4 * np.eye(4)
    perm = np.abs(rng.multivariate_normal(np.zeros(4), cov, size=5000))
    obs = np.array([3.0, 2.2, 1.0, 0.2])
    adj = westfall_young(obs, perm)
    raw = (1 + (perm >= obs).sum(axis=0)) / 5001
    assert np.all(adj >= raw - 1e-12)
    assert np.all(adj <= np.minimum(1, 4 * raw) + 0.01)
    # monotone in the order of the raw p-values
    order = np.argsort(raw)
    assert np.all(np.diff(adj[order]) >= -1e-12)


def test_westfall_young_with_one_outcome_is_the_permutation_p_value():
    rng = np.random.default_rng(1)
    perm = np.abs(rng.normal(size=(999, 1)))
    adj = westfall_young(np.array([1.7]), perm)
    assert adj[0] == pytest.approx((1 + (perm[:, 0] >= 1.7).sum()) / 1000)


def test_adjusted_p_values_follow_the_declared_families(small_trial):
    f = ce.estimate_itt(small_trial.students).to_frame().set_index("outcome")
    conf = f[f["role"] == "confirmatory"]
    np.testing.assert_allclose(conf["p_holm"], holm(conf["p_value"].to_numpy()))
    assert f.loc[f["role"] == "exploratory", "p_holm"].isna().all()
    for _, grp in f.groupby("domain"):
        np.testing.assert_allclose(grp["p_bh"], benjamini_hochberg(grp["p_value"].to_numpy()))
    all_ = ce.estimate_itt(small_trial.students, mtp_family="all").to_frame()
    assert all_["p_holm"].notna().all()


# ----------------------------------------------------------------- known truth


def _tiny():
    """Three schools of 4, 5 and 6 students with fixed potential outcomes."""
    rng = np.random.default_rng(5)
    sizes = [4, 5, 6]
    treated = [2, 2, 4]
    school = np.repeat(["A", "B", "C"], sizes)
    y0 = rng.normal(size=sum(sizes)) + np.repeat([0.0, 1.0, 2.0], sizes)
    y1 = y0 + rng.normal(0.5, 1.0, size=y0.size)
    return sizes, treated, school, y0, y1


def test_person_weighted_estimator_is_unbiased_by_exact_enumeration():
    sizes, treated, school, y0, y1 = _tiny()
    starts = np.cumsum([0, *sizes[:-1]])
    per_school = [
        list(itertools.combinations(range(m), k)) for m, k in zip(sizes, treated, strict=True)
    ]
    estimates = []
    for choice in itertools.product(*per_school):
        z = np.zeros(y0.size)
        for s, picked in zip(starts, choice, strict=True):
            z[[s + i for i in picked]] = 1
        frame = pd.DataFrame({"school_id": school, "treatment": z, "y": np.where(z == 1, y1, y0)})
        est = ce.estimate_itt(
            frame, outcomes=["y"], estimand="person_weighted", covariates=None
        ).to_frame()
        estimates.append(est.loc[0, "estimate"])
    assert len(estimates) == 6 * 10 * 15
    assert np.mean(estimates) == pytest.approx(np.mean(y1 - y0), abs=1e-12)


def _monte_carlo(n_rep, **kwargs):
    est, se, low, high, truth = [], [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        for r in range(n_rep):
            trial = ce.simulate(
                seed=1000 + r, n_students=900, n_schools=10, contacts=False, **kwargs
            )
            f = ce.estimate_itt(trial.students, outcomes=["chronic_absence", "core_gpa"])
            f = f.to_frame().set_index("outcome")
            est.append(f["estimate"].to_numpy())
            se.append(f["std_error"].to_numpy())
            low.append(f["conf_low"].to_numpy())
            high.append(f["conf_high"].to_numpy())
            truth.append([100 * trial.truth.sate["chronic_absence"], trial.truth.sate["core_gpa"]])
    return (np.array(a) for a in (est, se, low, high, truth))


@pytest.mark.slow
def test_monte_carlo_bias_and_coverage():
    n_rep = 300
    est, se, low, high, truth = _monte_carlo(n_rep, effects={"core_gpa": 0.1})
    err = est - truth
    mc_se = err.std(axis=0, ddof=1) / np.sqrt(n_rep)
    assert np.all(np.abs(err.mean(axis=0)) < 3 * mc_se)
    cover = ((low <= truth) & (truth <= high)).mean(axis=0)
    band = 3 * np.sqrt(0.95 * 0.05 / n_rep)
    assert np.all(np.abs(cover - 0.95) < band), cover
    # HC2 standard errors track the spread of the estimates
    assert np.all(np.abs(se.mean(axis=0) / est.std(axis=0) - 1) < 0.15)


@pytest.mark.slow
def test_randomization_p_values_are_uniform_under_the_null():
    pvals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        for r in range(200):
            trial = ce.simulate(
                seed=5000 + r, scenario="null", n_students=300, n_schools=5, contacts=False
            )
            f = ce.estimate_itt(trial.students, outcomes=["core_gpa"], sims=199, seed=r).to_frame()
            pvals.append(f.loc[0, "p_ri"])
    pvals = np.array(pvals)
    for cut in (0.1, 0.25, 0.5):
        rate = (pvals <= cut).mean()
        assert abs(rate - cut) < 3 * np.sqrt(cut * (1 - cut) / pvals.size) + 0.01, (cut, rate)


def test_randomization_inference_is_seeded_and_finds_a_large_effect():
    trial = ce.simulate(seed=2, n_students=600, n_schools=6, effects={"core_gpa": 0.4})
    a = ce.estimate_itt(trial.students, outcomes=["core_gpa"], sims=500, seed=3)
    b = ce.estimate_itt(trial.students, outcomes=["core_gpa"], sims=500, seed=3)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert a.to_frame().loc[0, "p_ri"] == pytest.approx(1 / 501)


@pytest.mark.parametrize("statistic", ["studentized", "unstudentized"])
@pytest.mark.parametrize("estimand", ["fixed_effects", "person_weighted"])
def test_randomization_statistic_of_the_observed_assignment_is_the_estimate(
    statistic, estimand, small_trial
):
    # the permutation machinery, applied to the real assignment, reproduces the estimate
    from cis_eval._core import randomization as R
    from cis_eval._core.impact import setup
    from cis_eval._core.spec import ImpactSpec

    spec = ImpactSpec.build(
        small_trial.students, outcomes=["core_gpa"], covariates=None, estimand=estimand
    )
    run = setup(small_trial.students, spec)

    st_ = (
        R.fixed_effects_statistic(run.d, run.builts[0], statistic, "HC2")
        if estimand == "fixed_effects"
        else R.cells_statistic(run.d, run.builts[0], statistic)
    )
    z = run.d.z[None, :]
    n1_all = np.bincount(run.d.school, weights=run.d.z)[None, :]
    got = st_.finish(z @ st_.columns, z, n1_all)[0]
    est = ce.estimate_itt(
        small_trial.students, outcomes=["core_gpa"], covariates=None, estimand=estimand
    ).to_frame()
    want = est.loc[0, "statistic" if statistic == "studentized" else "estimate"]
    assert got == pytest.approx(want, rel=1e-10)


# ----------------------------------------------------------------- invariances


def _frame(seed):
    rng = np.random.default_rng(seed)
    n_schools = 5
    sizes = rng.integers(8, 16, n_schools)
    school = np.repeat([f"s{i}" for i in range(n_schools)], sizes)
    z = np.concatenate([rng.permutation(np.arange(m) < (m + 1) // 2) for m in sizes]).astype(int)
    x = rng.normal(size=school.size)
    y = 0.5 * z + x + rng.normal(size=school.size)
    return pd.DataFrame({"school_id": school, "treatment": z, "x": x, "y": y})


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _est(frame, **kw):
    return ce.estimate_itt(frame, outcomes=["y"], covariates=["x"], **kw).to_frame().iloc[0]


@SETTINGS
@given(seed=st.integers(0, 10_000), shuffle=st.integers(0, 10_000))
def test_row_order_and_school_labels_do_not_matter(seed, shuffle):
    f = _frame(seed)
    base = _est(f)
    g = f.sample(frac=1, random_state=shuffle).reset_index(drop=True)
    g["school_id"] = g["school_id"].map({s: f"renamed-{s[::-1]}" for s in f["school_id"].unique()})
    other = _est(g)
    for col in ("estimate", "std_error", "df", "p_value"):
        assert other[col] == pytest.approx(base[col], rel=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000), shift=st.floats(-1e3, 1e3), scale=st.floats(0.01, 100))
def test_location_and_scale_of_the_outcome(seed, shift, scale):
    f = _frame(seed)
    base = _est(f, se_type="CR2")
    g = f.assign(y=f["y"] + shift)
    moved = _est(g, se_type="CR2")
    assert moved["estimate"] == pytest.approx(base["estimate"], rel=1e-7, abs=1e-9)
    assert moved["std_error"] == pytest.approx(base["std_error"], rel=1e-7)
    h = f.assign(y=-scale * f["y"])
    scaled = _est(h, se_type="CR2")
    assert scaled["estimate"] == pytest.approx(-scale * base["estimate"], rel=1e-9)
    assert scaled["std_error"] == pytest.approx(scale * base["std_error"], rel=1e-9)
    assert scaled["df"] == pytest.approx(base["df"], rel=1e-9)


def test_missing_indicator_method_equals_manual_indicators():
    f = _frame(7)
    f.loc[[2, 9, 15], "x"] = np.nan
    got = _est(f)
    manual = f.assign(x_missing=f["x"].isna().astype(float), x=f["x"].fillna(123.0))
    want = ce.estimate_itt(manual, outcomes=["y"], covariates=["x", "x_missing"]).to_frame()
    assert got["estimate"] == pytest.approx(want.loc[0, "estimate"], rel=1e-10)
    assert got["std_error"] == pytest.approx(want.loc[0, "std_error"], rel=1e-10)


def test_inputs_are_not_modified(small_trial):
    s = small_trial.students
    before = s.copy()
    ce.estimate_itt(s, estimand="person_weighted", lin=True)
    ce.estimate_cace(s, small_trial.contacts)
    pd.testing.assert_frame_equal(s, before)


# ----------------------------------------------------------------- the result


def test_result_is_immutable_and_hands_out_copies(small_trial):
    itt = ce.estimate_itt(small_trial.students)
    frame = itt.to_frame()
    frame.loc[:, "estimate"] = 0.0
    assert (itt.to_frame()["estimate"] != 0).any()
    with pytest.raises(AttributeError):
        itt.spec = itt.spec  # type: ignore[misc]
    assert list(itt.estimate.index) == list(ce.OUTCOME_NAMES)


def test_tidy_columns_and_units(small_trial):
    f = ce.estimate_itt(small_trial.students).to_frame()
    for col in (
        "outcome", "estimate", "std_error", "statistic", "df", "p_value", "conf_low",
        "conf_high", "n_treatment", "n_control", "control_mean", "program_mean_adjusted",
        "effect_size", "effect_size_type", "improvement_index", "p_bh", "p_holm",
        "p_bonferroni", "se_type", "estimand",
    ):  # fmt: skip
        assert col in f.columns
    binary = f[f["type"] == "binary"]
    assert (binary["unit"] == "percentage points").all()
    assert binary["control_mean"].between(0, 100).all()
    assert set(f["effect_size_type"]) == {"Cox index", "Hedges' g"}
    # program mean is the control mean plus the impact
    np.testing.assert_allclose(f["program_mean_adjusted"], f["control_mean"] + f["estimate"])


def test_effect_sizes_follow_the_wwc_formulas(small_trial):
    from cis_eval.effect_sizes import cox_index, hedges_g, improvement_index

    f = ce.estimate_itt(small_trial.students).to_frame().set_index("outcome")
    g = f.loc["core_gpa"]
    want = hedges_g(
        g["estimate"], g["treatment_sd"], g["control_sd"], g["n_treatment"], g["n_control"]
    )
    assert g["effect_size"] == pytest.approx(want, rel=1e-12)
    c = f.loc["chronic_absence"]
    pc = c["control_mean"] / 100
    want = cox_index(pc + c["estimate"] / 100, pc, c["n_treatment"], c["n_control"])
    assert c["effect_size"] == pytest.approx(want, rel=1e-12)
    # lower is better for chronic absence: the improvement index flips the sign
    assert c["improvement_index"] == pytest.approx(improvement_index(-c["effect_size"]))


def test_table_exports_are_deterministic(small_trial):
    a = ce.estimate_itt(small_trial.students).table()
    b = ce.estimate_itt(small_trial.students).table()
    assert a.to_markdown() == b.to_markdown()
    html = a.to_html()
    assert "Chronically absent (%)" in html and "HC2" in html
    assert "\\begin{tabular}" in a.to_latex()
    assert a.to_csv().splitlines()[0].startswith("Outcome,Program group,Control group")
    for text in (a.to_markdown(), html):
        assert "0x" not in text and "2026" not in text  # no object ids or dates


def test_plot_draws_on_given_axes(small_trial):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    itt = ce.estimate_itt(small_trial.students)
    assert itt.plot(ax=ax) is ax
    assert len(ax.get_yticklabels()) == 6
    plt.close(fig)


def test_repr_is_one_line(small_trial):
    text = repr(ce.estimate_itt(small_trial.students))
    assert "\n" not in text and text.startswith("ITTResult(6 outcomes, 600 students, 8 schools")


# ----------------------------------------------------------------- subgroups, sensitivity


def test_subgroup_estimates_are_separate_regressions(small_trial):
    s = small_trial.students
    covs = ["prior_core_gpa", "frpl"]
    sub = ce.estimate_subgroups(s, "female", outcomes=["core_gpa"], covariates=covs)
    est = sub.to_frame().set_index("subgroup")
    for level in ("0", "1"):
        part = s[s["female"].astype("string") == level]
        alone = ce.estimate_itt(part, outcomes=["core_gpa"], covariates=covs).to_frame().iloc[0]
        assert est.loc[level, "estimate"] == pytest.approx(alone["estimate"], rel=1e-10)
        assert est.loc[level, "std_error"] == pytest.approx(alone["std_error"], rel=1e-10)
    t = sub.tests().iloc[0]
    want = np.hypot(est.loc["0", "std_error"], est.loc["1", "std_error"])
    assert t["std_error"] == pytest.approx(want, rel=1e-10)
    assert t["difference"] == pytest.approx(est.loc["0", "estimate"] - est.loc["1", "estimate"])


def test_subgroups_with_three_levels_and_clusters():
    trial = ce.simulate(seed=9, n_students=1500, n_schools=12)
    s = trial.students.assign(band=lambda f: pd.cut(f["grade"], [5, 7, 9, 12]).astype(str))
    sub = ce.estimate_subgroups(s, "band", outcomes=["core_gpa"], se_type="CR1")
    t = sub.tests().iloc[0]
    assert t["df_num"] == 2 and t["df_den"] == 11
    assert 0 <= t["p_value"] <= 1
    assert "Difference p-value" in sub.table().to_markdown()


def test_subgroup_outcome_not_defined_is_left_out(small_trial):
    sub = ce.estimate_subgroups(small_trial.students, "school_level", outcomes=["core_credits"])
    assert set(sub.to_frame()["subgroup"]) == {"high"}
    assert any("not defined" in n for n in sub.notes)


def test_baseline_risk_groups():
    df = pd.DataFrame(
        {
            "prior_chronic_absence": [1, 1, 0, np.nan, np.nan],
            "prior_core_failures": [1, 0, 0, 2, 1],
            "prior_suspensions": [0, 0, 0, 1, 0],
        }
    )
    risk = ce.baseline_risk(df)
    assert risk[:4].tolist() == ["higher risk", "lower risk", "lower risk", "higher risk"]
    assert risk.isna().tolist() == [False, False, False, False, True]  # could be either


def test_sensitivity_models_agree_with_statsmodels(small_trial):
    res = ce.estimate_sensitivity(small_trial.students, covariates=None).to_frame()
    row = res.set_index("outcome").loc["chronic_absence"]
    d = ce.derive_outcomes(small_trial.students).dropna(subset=["chronic_absence"])
    dummies = pd.get_dummies(d["school_id"], dtype=float)
    exog = pd.concat([d["treatment"].astype(float), dummies], axis=1)
    fit = sm.Logit(d["chronic_absence"].astype(float), exog).fit(disp=0)
    ame = fit.get_margeff(at="overall", dummy=True)
    assert row["estimate"] == pytest.approx(100 * ame.margeff[0], rel=1e-6)
    assert row["ratio"] == pytest.approx(np.exp(fit.params.iloc[0]), rel=1e-6)
    assert set(res["model"]) == {"logit", "Poisson"}


# ----------------------------------------------------------------- bad input


@pytest.fixture
def frame():
    return _frame(3)


def test_unknown_outcome_and_covariate(frame):
    with pytest.raises(EstimationError, match="unknown outcome 'dropout'"):
        ce.estimate_itt(frame, outcomes=["dropout"])
    with pytest.raises(EstimationError, match="unknown covariate"):
        ce.estimate_itt(frame, outcomes=["y"], covariates=["gpa_2011"])


def test_non_binary_and_missing_treatment(frame):
    bad = frame.assign(treatment=frame["treatment"] * 2)
    with pytest.raises(EstimationError, match="other than 0 or 1"):
        ce.estimate_itt(bad, outcomes=["y"])
    gap = frame.astype({"treatment": float})
    gap.loc[4, "treatment"] = np.nan
    with pytest.raises(EstimationError, match="rows 6"):
        ce.estimate_itt(gap, outcomes=["y"])


def test_treatment_constant_within_every_school(frame):
    const = frame.assign(treatment=(frame["school_id"] < "s2").astype(int))
    with pytest.raises(EstimationError, match="does not vary within any school"):
        ce.estimate_itt(const, outcomes=["y"])


def test_covariate_collinear_with_school_effects_is_dropped_with_a_warning(frame):
    f = frame.assign(size=frame.groupby("school_id")["y"].transform("size"))
    with pytest.warns(DesignWarning, match="'size' is collinear"):
        res = ce.estimate_itt(f, outcomes=["y"], covariates=["x", "size"])
    assert res.to_frame().loc[0, "covariates"] == "x"


def test_outcome_without_variance(frame):
    with pytest.raises(EstimationError, match="single value"):
        ce.estimate_itt(frame.assign(y=1.0), outcomes=["y"])


def test_too_few_students():
    tiny = pd.DataFrame({"school_id": ["a"] * 4, "treatment": [0, 1, 0, 1], "y": [1.0, 2, 3, 5]})
    tiny["x1"], tiny["x2"] = [0.1, 0.4, 0.2, 0.9], [1.0, 0.0, 2.0, 1.0]
    with pytest.raises(EstimationError, match="too few students"):
        ce.estimate_itt(tiny, outcomes=["y"], covariates=["x1", "x2"])


def test_one_arm_school_is_reported(frame):
    f = frame.copy()
    f.loc[f["school_id"] == "s0", "treatment"] = 1
    with pytest.warns(DesignWarning, match="only one arm"):
        ce.estimate_itt(f, outcomes=["y"])
    with pytest.warns(DesignWarning, match="dropped"):
        res = ce.estimate_itt(f, outcomes=["y"], estimand="person_weighted")
    assert res.to_frame().loc[0, "n_schools"] == 4


def test_single_student_per_arm_blocks_the_weighted_estimand():
    f = pd.DataFrame(
        {
            "school_id": ["a"] * 3 + ["b"] * 4,
            "treatment": [1, 0, 0, 1, 1, 0, 0],
            "y": [1.0, 2.0, 2.5, 3.0, 4.0, 1.0, 0.5],
        }
    )
    with pytest.raises(EstimationError, match="single program or control student"):
        ce.estimate_itt(f, outcomes=["y"], estimand="person_weighted")
    # the fixed-effects estimator is fine with it
    assert np.isfinite(ce.estimate_itt(f, outcomes=["y"]).to_frame().loc[0, "std_error"])


def test_options_are_checked(frame):
    with pytest.raises(ValueError, match="se_type='HC4' is not an option"):
        ce.estimate_itt(frame, outcomes=["y"], se_type="HC4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="estimand"):
        ce.estimate_itt(frame, outcomes=["y"], estimand="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a seed"):
        ce.estimate_itt(frame, outcomes=["y"], sims=100)
    with pytest.raises(ValueError, match="alpha"):
        ce.estimate_itt(frame, outcomes=["y"], alpha=1.5)


def test_cace_needs_receipt(small_trial):
    with pytest.raises(EstimationError, match="contacts log"):
        ce.estimate_cace(small_trial.students)
    with pytest.raises(EstimationError, match="no receipt column"):
        ce.estimate_cace(small_trial.students, received="served")


# ----------------------------------------------------------------- the specification


def test_every_result_keeps_the_spec_that_produced_it(small_trial):
    s = small_trial.students
    itt = ce.estimate_itt(s, outcomes=["core_gpa"], se_type="CR2", sims=50, seed=4)
    spec = itt.spec
    assert [o.name for o in spec.outcomes] == ["core_gpa"]
    assert spec.covariates["core_gpa"] == tuple(ce.default_covariates("core_gpa", s))
    assert (spec.se_type, spec.sims, spec.seed, spec.alpha) == ("CR2", 50, 4, 0.05)
    assert itt.se_type == "CR2" and itt.estimand == "fixed_effects"
    assert "sims=50" in repr(spec) and "\n" not in repr(spec)
    cace = ce.estimate_cace(s, small_trial.contacts, outcomes=["core_gpa"], covariates=None)
    assert cace.spec.covariates["core_gpa"] == () and cace.se_type == "HC2"
    sub = ce.estimate_subgroups(s, "female", outcomes=["core_gpa"], lin=True)
    assert sub.spec.lin and sub.alpha == 0.05
    sens = ce.estimate_sensitivity(s, outcomes=["chronic_absence"])
    assert [o.name for o in sens.spec.outcomes] == ["chronic_absence"]


def test_the_spec_is_read_only(small_trial):
    spec = ce.estimate_itt(small_trial.students, outcomes=["core_gpa"]).spec
    with pytest.raises(AttributeError):
        spec.se_type = "HC1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.covariates["core_gpa"] = ()  # type: ignore[index]


def test_a_generator_seed_is_not_recorded(small_trial):
    itt = ce.estimate_itt(
        small_trial.students, outcomes=["core_gpa"], sims=20, seed=np.random.default_rng(1)
    )
    assert itt.spec.seed is None and itt.spec.sims == 20


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"se_type": "HC4"}, "se_type='HC4' is not an option"),
        ({"estimand": "median"}, "estimand='median' is not an option"),
        ({"statistic": "max"}, "statistic='max' is not an option"),
        ({"mtp_family": "some"}, "mtp_family='some' is not an option"),
        ({"alpha": 0.0}, "alpha must be strictly between 0 and 1"),
        ({"sims": -1, "seed": 1}, "sims must be 0 or more"),
        ({"sims": 10}, "needs a seed"),
        ({"covariates": "all"}, "covariates='all'"),
        ({"outcomes": []}, "outcomes is empty"),
        ({"outcomes": ["y", "y"]}, "listed twice"),
    ],
)
def test_bad_options_raise_option_error(frame, kw, message):
    kw = {"outcomes": ["y"]} | kw
    with pytest.raises(OptionError, match=message):
        ce.estimate_itt(frame, **kw)


def test_bad_options_of_the_other_verbs_raise_option_error(frame):
    with pytest.raises(OptionError, match="se_type"):
        ce.estimate_cace(frame, received="treatment", outcomes=["y"], se_type="HC9")
    with pytest.raises(OptionError, match="estimand"):
        ce.estimate_subgroups(frame, "school_id", outcomes=["y"], estimand="x")
    with pytest.raises(OptionTypeError, match="students must be a pandas DataFrame"):
        ce.estimate_sensitivity([1, 2, 3])  # type: ignore[arg-type]


def test_the_described_options_are_the_literal_options():
    from typing import get_args

    from cis_eval._typing import Estimand, SEType

    assert tuple(ce.ESTIMANDS) == get_args(Estimand)
    assert tuple(ce.SE_TYPES) == get_args(SEType)
