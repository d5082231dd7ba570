"""Intent-to-treat impacts on the study's outcomes, with design-aware inference.

The default reproduces an MDRC-style impact analysis of a trial randomized within schools:
an OLS regression (a linear probability model for binary outcomes) of each outcome on the
assignment indicator, school fixed effects and baseline covariates (the prior-year measure
of the outcome plus demographics), with HC2 standard errors. Options cover the other
standard errors (HC1, HC0, classical, CR1 and CR2 by school with Bell-McCaffrey degrees of
freedom), the person- and school-weighted estimands, Lin's (2013) interacted adjustment,
effect sizes in the What Works Clearinghouse's metrics, adjusted p-values for several
outcomes, and randomization inference that re-runs the within-school lottery.

Binary outcomes are reported in percentage points (the linear probability coefficient
times 100); their means are percentages.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from .._core import engine as _engine
from .._core.design import (
    Built,
    Prepared,
    Spec,
    arm_moments,
    build,
    materialize,
    numeric,
    outcome_meta,
    prepare,
)
from .._core.multiplicity import benjamini_hochberg, bonferroni, holm, westfall_young
from .._core.permutation import within_block_permutations
from .._core.randomization import cells_statistic, fixed_effects_statistic
from .._typing import BoolArray, FloatArray, IntArray, check_option, check_permutations, rng_from
from ..effect_sizes import COX_SCALE, favourable, improvement_index, pooled_sd, wwc_omega
from ..errors import DesignWarning, EstimationError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.table import Table, records
from ..schema import OUTCOMES, Outcome

__all__ = [
    "DEMOGRAPHICS",
    "ESTIMANDS",
    "SE_TYPES",
    "CACEResult",
    "ITTResult",
    "SensitivityResult",
    "SubgroupResult",
    "baseline_risk",
    "default_covariates",
    "estimate_cace",
    "estimate_itt",
    "estimate_sensitivity",
    "estimate_subgroups",
]

Estimand = Literal["fixed_effects", "person_weighted", "school_weighted"]
SEType = Literal["HC2", "HC1", "HC0", "classical", "CR0", "CR1", "CR2"]
Statistic = Literal["studentized", "unstudentized"]
Family = Literal["confirmatory", "all"]

ESTIMANDS: dict[str, str] = {
    "fixed_effects": "precision-weighted average of school effects (school fixed effects)",
    "person_weighted": "average effect over students (school effects weighted by school size)",
    "school_weighted": "average effect over schools (each school weighted equally)",
}
"""The estimands on offer and what each targets (named in every output)."""

SE_TYPES: dict[str, str] = {
    "HC2": "HC2 heteroskedasticity-robust (exact leverage including school effects)",
    "HC1": "HC1 heteroskedasticity-robust (n / (n - k) scaling)",
    "HC0": "HC0 heteroskedasticity-robust (no small-sample factor)",
    "classical": "classical OLS (homoskedastic)",
    "CR0": "CR0 cluster-robust by school",
    "CR1": "CR1 cluster-robust by school (Stata's small-sample factor)",
    "CR2": "CR2 cluster-robust by school with Bell-McCaffrey degrees of freedom",
}
"""Standard-error types on offer (estimatr's names; CR1 is estimatr's "stata")."""

DEMOGRAPHICS: tuple[str, ...] = ("female", "frpl", "ell", "special_education", "overage")
"""Demographic covariates added to every outcome's own prior-year measure by default."""

STARS = ((0.01, "***"), (0.05, "**"), (0.10, "*"))


# --------------------------------------------------------------------------- inputs


def default_covariates(outcome: Outcome | str, data: pd.DataFrame | None = None) -> list[str]:
    """The default covariates of one outcome: its prior-year measure plus demographics.

    Parameters
    ----------
    outcome : Outcome or str
        An outcome of :data:`cis_eval.OUTCOMES` (or its name).
    data : pandas.DataFrame, optional
        When given, covariates that are not columns of ``data`` are left out.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from cis_eval import default_covariates
    >>> default_covariates("chronic_absence")[:2]
    ['prior_chronic_absence', 'female']
    """
    o = outcome if isinstance(outcome, Outcome) else outcome_meta(outcome, pd.DataFrame())
    names = ([o.prior] if o.prior else []) + list(DEMOGRAPHICS)
    if data is not None:
        names = [c for c in names if c in data.columns]
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- one outcome


def _cox(p_t: float, p_c: float, n: int) -> float:
    if not (0 < p_t < 1 and 0 < p_c < 1):
        return float("nan")
    return wwc_omega(n) * (math.log(p_t / (1 - p_t)) - math.log(p_c / (1 - p_c))) / COX_SCALE


def _t_test(tstat: float, df: float, alpha: float) -> tuple[float, float]:
    """Two-sided p-value of a t statistic and the critical value for a 1 - alpha interval."""
    p = float(2 * special.stdtr(df, -abs(tstat))) if np.isfinite(tstat) else np.nan
    return p, float(special.stdtrit(df, 1 - alpha / 2))


def _check_fit(o: Outcome, b: Built, fit: _engine.Fit, spec: Spec) -> list[str]:
    """Raise for fits that cannot be reported; return notes on dropped covariates."""
    if spec.estimand == "fixed_effects" and 0 not in fit.kept:
        raise EstimationError(
            f"outcome '{o.name}': the assignment does not vary within any school in the "
            "analytic sample once covariates are accounted for; no impact can be estimated"
        )
    if fit.df <= 0:
        raise EstimationError(
            f"outcome '{o.name}': too few students ({fit.n:,}) for {fit.rank:,} parameters "
            "(school effects and covariates); no standard error can be computed"
        )
    if not np.isfinite(fit.std_error):
        raise EstimationError(
            f"outcome '{o.name}': the {spec.se_type} standard error is undefined because "
            "some students are fitted exactly by the school effects and covariates yet move "
            "the estimate (for example a covariate value or missing-value indicator that "
            "only they have); drop that covariate or use se_type='HC1'"
        )
    dropped = [
        b.names[j - b.offset]
        for j in range(b.offset, b.problem.x.shape[1])
        if j not in fit.kept and b.user[j - b.offset]
    ]
    return [
        f"{o.label}: covariate '{c}' is collinear with the school effects or other "
        "covariates in this sample and was left out"
        for c in dropped
    ]


def _row(
    d: Prepared, o: Outcome, b: Built, fit: _engine.Fit, spec: Spec
) -> tuple[dict[str, Any], list[str]]:
    """The tidy row of one outcome: estimate, inference, means and effect sizes."""
    notes = list(b.notes) + _check_fit(o, b, fit, spec)
    mom = arm_moments(d, o, b.rows)
    n_t, n_c = int(mom["n_t"]), int(mom["n_c"])
    if (
        (mom["sd_t"] == 0 or n_t < 2)
        and (mom["sd_c"] == 0 or n_c < 2)
        and (mom["mean_t"] == mom["mean_c"] or n_t == 0 or n_c == 0)
    ):
        raise EstimationError(
            f"outcome '{o.name}' takes a single value in its analytic sample; there is no "
            "variation to explain"
        )
    est, se, df = fit.estimate, fit.std_error, fit.df
    tstat = est / se if se > 0 else np.nan
    p, crit = _t_test(tstat, df, spec.alpha)
    lo, hi = est - crit * se, est + crit * se
    c_mean, sd_t, sd_c = mom["mean_c"], mom["sd_t"], mom["sd_c"]
    n = n_t + n_c
    if o.type == "binary":
        pc = c_mean / 100

        def to_es(v: float) -> float:
            return _cox(pc + v / 100, pc, n)

        es_type = "Cox index"
    else:
        s_pooled = pooled_sd(sd_t, sd_c, n_t, n_c)
        factor = wwc_omega(n) / s_pooled if s_pooled > 0 else np.nan

        def to_es(v: float) -> float:
            return float(v * factor)

        es_type = "Hedges' g"
    es = to_es(est)
    es_lo, es_hi = to_es(lo), to_es(hi)
    fav = favourable(es, o.direction) if np.isfinite(es) else np.nan
    kept_user = [
        nm
        for j, (nm, u) in enumerate(zip(b.names, b.user, strict=True))
        if u and (j + b.offset) in fit.kept
    ]
    row = {
        "outcome": o.name,
        "label": o.label,
        "domain": o.domain,
        "role": o.role,
        "type": o.type,
        "direction": o.direction,
        "unit": o.unit or ("percentage points" if o.type == "binary" else ""),
        "estimate": est,
        "std_error": se,
        "statistic": tstat,
        "df": df,
        "p_value": p,
        "conf_low": lo,
        "conf_high": hi,
        "n": n,
        "n_treatment": n_t,
        "n_control": n_c,
        "n_schools": b.n_schools,
        "control_mean": c_mean,
        "program_mean_adjusted": c_mean + est,
        "control_sd": sd_c,
        "treatment_sd": sd_t,
        "effect_size": es,
        "effect_size_low": min(es_lo, es_hi),
        "effect_size_high": max(es_lo, es_hi),
        "effect_size_type": es_type,
        "favourable": bool(fav > 0) if np.isfinite(fav) else False,
        "improvement_index": improvement_index(fav),
        "covariates": ", ".join(kept_user),
    }
    return row, notes


def _clusters(d: Prepared) -> IntArray:
    return d.cluster if d.cluster is not None else d.school


def _fit_all(
    d: Prepared, builts: Sequence[Built], spec: Spec, *, keep_arrays: bool = False
) -> list[_engine.Fit]:
    """Fit every outcome, grouping them by the cells of their design."""
    fits: list[_engine.Fit | None] = [None] * len(builts)
    cells: Literal["school", "school_arm"]
    for cells in ("school", "school_arm"):
        idx = [i for i, b in enumerate(builts) if b.cells == cells]
        if not idx:
            continue
        out = _engine.fit_many(
            d.design(cells),
            [builts[i].problem for i in idx],
            se_type=spec.se_type,
            clusters=_clusters(d) if spec.se_type.startswith("CR") else None,
            keep_arrays=keep_arrays,
        )
        for i, f in zip(idx, out, strict=True):
            fits[i] = f
    return [f for f in fits if f is not None]


# --------------------------------------------------------------------------- result


def _stars(p: Any) -> str:
    for cut, mark in STARS:
        if np.isfinite(p) and p < cut:
            return mark
    return ""


def _fmt_value(v: Any, o_type: Any, *, signed: bool = False) -> str:
    if not np.isfinite(v):
        return ""
    if o_type == "binary":
        spec = "+.1f" if signed else ".1f"
    elif o_type == "count":
        spec = "+.2f" if signed else ".2f"
    else:
        spec = "+.3f" if signed else ".3f"
    return format(v, spec)


@dataclass(frozen=True, slots=True)
class ITTResult:
    """Intent-to-treat impact estimates for several outcomes.

    Attributes
    ----------
    estimand : str
        ``"fixed_effects"``, ``"person_weighted"`` or ``"school_weighted"``.
    se_type : str
        Standard-error type.
    lin : bool
        Whether covariates were interacted with assignment (Lin 2013).
    alpha : float
        Significance level for confidence intervals.
    n_students, n_schools : int
        Randomized students and schools in the data.
    covariates : dict
        Covariates requested per outcome.
    permutations : int
        Permutations used for randomization inference (0: none).
    statistic : str
        Statistic used for randomization inference.
    seed : int or None
        Seed of the permutations.
    mtp_family : str
        Outcomes over which Holm, Bonferroni and Westfall-Young adjust.
    notes : tuple of str
        What was dropped or left out, and why.
    """

    _estimates: pd.DataFrame = field(repr=False)
    estimand: str
    se_type: str
    lin: bool
    alpha: float
    n_students: int
    n_schools: int
    covariates: dict[str, tuple[str, ...]] = field(repr=False)
    permutations: int = 0
    statistic: str = "studentized"
    seed: int | None = None
    mtp_family: str = "confirmatory"
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"ITTResult({len(self._estimates)} outcomes, {self.n_students:,} students, "
            f"{self.n_schools:,} schools, estimand={self.estimand}, se={self.se_type})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy estimates, one row per outcome (a fresh copy).

        Columns: ``outcome, label, domain, role, type, direction, unit, estimate,
        std_error, statistic, df, p_value, conf_low, conf_high, n, n_treatment, n_control,
        n_schools, control_mean, program_mean_adjusted, control_sd, treatment_sd,
        effect_size, effect_size_low, effect_size_high, effect_size_type, favourable,
        improvement_index, covariates, p_bh, p_holm, p_bonferroni`` and, with
        randomization inference, ``p_ri, p_wy``; then ``se_type, estimand``.
        """
        return self._estimates.copy()

    @property
    def estimate(self) -> pd.Series:
        """Impact estimates by outcome."""
        return self._estimates.set_index("outcome")["estimate"].copy()

    @property
    def std_error(self) -> pd.Series:
        """Standard errors by outcome."""
        return self._estimates.set_index("outcome")["std_error"].copy()

    @property
    def p_value(self) -> pd.Series:
        """Two-sided p-values by outcome (t distribution with the reported df)."""
        return self._estimates.set_index("outcome")["p_value"].copy()

    def conf_int(self) -> pd.DataFrame:
        """Confidence intervals (``conf_low``, ``conf_high``) by outcome."""
        return self._estimates.set_index("outcome")[["conf_low", "conf_high"]].copy()

    def table(self, *, title: str | None = None) -> Table:
        """An MDRC-style impact table: program and control means, impact, p-value, effect size.

        Binary outcomes show percentages and percentage-point impacts. Stars mark p-values
        below 0.10 (*), 0.05 (**) and 0.01 (***). Rows are grouped by outcome domain.
        """
        est = self._estimates
        has_ri = "p_ri" in est.columns
        rows = []
        for domain, grp in est.groupby("domain", sort=False):
            rows.append({"Outcome": str(domain).capitalize()})
            for r in records(grp):
                unit = " (%)" if r.type == "binary" else ""
                row = {
                    "Outcome": f"  {r.label}{unit}",
                    "Program group": _fmt_value(r.program_mean_adjusted, r.type),
                    "Control group": _fmt_value(r.control_mean, r.type),
                    "Difference (impact)": _fmt_value(r.estimate, r.type, signed=True)
                    + _stars(r.p_value),
                    "Std. error": _fmt_value(r.std_error, r.type),
                    "P-value": f"{float(r.p_value):.3f}",
                    "Effect size": f"{r.effect_size:+.3f}" if np.isfinite(r.effect_size) else "",
                    "Improvement index": f"{r.improvement_index:+.1f}"
                    if np.isfinite(r.improvement_index)
                    else "",
                }
                if has_ri:
                    row["RI p-value"] = f"{r.p_ri:.3f}"
                rows.append(row)
        frame = pd.DataFrame(rows).fillna("")
        n_t = int(est["n_treatment"].max())
        n_c = int(est["n_control"].max())
        notes = [
            f"Estimand: {ESTIMANDS[self.estimand]}. "
            + (
                "OLS (a linear probability model for binary outcomes) with school fixed effects"
                if self.estimand == "fixed_effects"
                else "Within-school differences in means weighted across schools"
            )
            + (
                ", adjusted for baseline covariates (each outcome's prior-year measure and "
                "demographics; missing values filled with the mean plus a missing indicator)"
                if any(self.covariates.values())
                else ""
            )
            + (", covariates interacted with assignment (Lin 2013)." if self.lin else "."),
            f"Standard errors: {SE_TYPES[self.se_type]}.",
            "Program group mean = control group mean + impact (regression-adjusted). "
            "Binary outcomes in percent; impacts in percentage points.",
            "Stars: *** p < 0.01, ** p < 0.05, * p < 0.10 (two-sided t test).",
            "Effect size: Hedges' g (continuous and count outcomes) or Cox index (binary), "
            "WWC definitions, same sign as the impact. Improvement index: WWC percentile "
            "points, positive = favourable (lower is better for absence, course failure "
            "and suspensions).",
            f"Sample: up to {n_t:,} program and {n_c:,} control students in "
            f"{self.n_schools:,} schools; each outcome uses the students with that outcome.",
        ]
        if has_ri:
            notes.append(
                f"RI p-value: randomization inference from {self.permutations:,} "
                f"within-school permutations ({self.statistic} statistic, seed {self.seed})."
            )
        notes += list(self.notes)
        return Table(
            frame,
            title=title or "Impacts on students' outcomes (intent to treat)",
            notes=tuple(notes),
        )

    def plot(self, ax: Any = None, *, favourable_right: bool = True) -> Any:
        """Forest plot of effect sizes with confidence intervals (matplotlib axes).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is made when omitted.
        favourable_right : bool, default True
            Sign effect sizes so that right of zero is favourable (WWC convention).

        Returns
        -------
        matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 0.45 * len(self._estimates) + 1.2))
        est = self._estimates
        sign = np.where((est["direction"] == "lower").to_numpy() & favourable_right, -1.0, 1.0)
        es = est["effect_size"].to_numpy() * sign
        lo = np.minimum(est["effect_size_low"] * sign, est["effect_size_high"] * sign)
        hi = np.maximum(est["effect_size_low"] * sign, est["effect_size_high"] * sign)
        ypos = np.arange(len(est))[::-1]
        sig = est["p_value"].to_numpy() < self.alpha
        for yv, e, lo_, hi_, sg in zip(ypos, es, lo, hi, sig, strict=True):
            color = "#00597c" if sg else "#8a8a8a"
            ax.plot([lo_, hi_], [yv, yv], color=color, lw=2)
            ax.plot([e], [yv], "o", color=color, ms=7)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ypos)
        ax.set_yticklabels(est["label"].tolist())
        xlabel = "Effect size"
        if favourable_right:
            xlabel += " (right of zero = favourable)"
        ax.set_xlabel(xlabel)
        ax.set_title(
            f"Impacts with {100 * (1 - self.alpha):.0f}% confidence intervals", fontsize=10
        )
        return ax


# --------------------------------------------------------------------------- the verb


def _resolve_covariates(
    outcomes: Sequence[Outcome],
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None,
    data: pd.DataFrame,
) -> dict[str, list[str]]:
    if covariates is None:
        return {o.name: [] for o in outcomes}
    if isinstance(covariates, str):
        if covariates != "default":
            raise ValueError(
                f"covariates={covariates!r}: give 'default', None, a list of columns or a "
                "mapping outcome -> list of columns"
            )
        return {o.name: default_covariates(o, data) for o in outcomes}
    if isinstance(covariates, Mapping):
        unknown = set(covariates) - {o.name for o in outcomes}
        if unknown:
            raise EstimationError(
                f"covariates given for outcome(s) not estimated: {', '.join(sorted(unknown))}"
            )
        return {o.name: list(dict.fromkeys(covariates.get(o.name, []))) for o in outcomes}
    return {o.name: list(dict.fromkeys(covariates)) for o in outcomes}


def _family(roles: Sequence[str], family: str) -> BoolArray:
    """Outcomes over which Holm, Bonferroni and Westfall-Young adjust."""
    if family == "confirmatory":
        return np.array([r == "confirmatory" for r in roles], dtype=bool)
    return np.ones(len(roles), dtype=bool)


def _adjust(columns: dict[str, list[Any]], family: str) -> None:
    """Add ``p_bh`` (within domain), ``p_holm`` and ``p_bonferroni`` (within the family)."""
    p = np.asarray(columns["p_value"], dtype=float)
    domain = np.asarray(columns["domain"], dtype=object)
    p_bh = np.full(p.size, np.nan)
    for dom in dict.fromkeys(domain):
        mask = domain == dom
        p_bh[mask] = benjamini_hochberg(p[mask])
    columns["p_bh"] = list(p_bh)
    in_family = _family(columns["role"], family)
    for col, fn in (("p_holm", holm), ("p_bonferroni", bonferroni)):
        adj = np.full(p.size, np.nan)
        if in_family.any():
            adj[in_family] = fn(p[in_family])
        columns[col] = list(adj)


@dataclass(frozen=True, slots=True)
class _Run:
    """The prepared data and one regression per outcome, before fitting."""

    d: Prepared
    metas: list[Outcome]
    builts: list[Built]
    spec: Spec
    cov_map: dict[str, list[str]]


def _setup(
    data: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None,
    treatment: str,
    block: str,
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None,
    estimand: str,
    lin: bool,
    se_type: str,
    cluster: str | None,
    alpha: float,
    chronic_threshold: float,
    extra: dict[str, FloatArray] | None = None,
) -> _Run:
    """Check the options, read the data once and build every outcome's regression."""
    check_option("estimand", estimand, ESTIMANDS)
    check_option("se_type", se_type, SE_TYPES)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    if outcomes is None:
        metas = [o for o in OUTCOMES if o.name in data.columns or _derivable(o, data)]
        if not metas:
            raise EstimationError(
                "the data have none of the study's outcomes (or the raw fields they are "
                "derived from); name the outcome columns with outcomes=[...]"
            )
    else:
        if isinstance(outcomes, str):
            outcomes = [outcomes]
        if not outcomes:
            raise ValueError("outcomes is empty; name at least one outcome")
        metas = [outcome_meta(o, data) for o in outcomes]
        dup = [n for n in {o.name for o in metas} if sum(o.name == n for o in metas) > 1]
        if dup:
            raise ValueError(f"outcome(s) listed twice: {', '.join(sorted(dup))}")
    cov_map = _resolve_covariates(metas, covariates, data)
    for o in metas:
        if o.name in cov_map[o.name] or treatment in cov_map[o.name]:
            raise EstimationError(
                f"outcome '{o.name}': the covariates include the outcome or the assignment"
            )
    need = set().union(*cov_map.values()) if cov_map else set()
    d = prepare(
        data,
        metas,
        need,
        treatment=treatment,
        block=block,
        cluster=cluster,
        chronic_threshold=chronic_threshold,
        lin=lin,
        by_arm=estimand != "fixed_effects",
        extra=extra,
    )
    by_school = np.bincount(d.school)
    z_school = np.bincount(d.school, weights=d.z)
    if not ((z_school > 0) & (z_school < by_school)).any():
        raise EstimationError(
            f"the assignment '{treatment}' does not vary within any school: every school has "
            "only program or only control students, so no within-school impact exists"
        )
    spec = Spec(estimand, se_type, lin, alpha)
    builts = [build(d, o, cov_map[o.name], spec) for o in metas]
    return _Run(d, metas, builts, spec, cov_map)


def estimate_itt(
    data: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None = "default",
    estimand: Estimand = "fixed_effects",
    lin: bool = False,
    se_type: SEType = "HC2",
    cluster: str | None = None,
    alpha: float = 0.05,
    mtp_family: Family = "confirmatory",
    permutations: int = 0,
    statistic: Statistic = "studentized",
    seed: int | np.random.Generator | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> ITTResult:
    r"""Estimate intent-to-treat impacts of assignment to case management.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per randomized student: the students table of the data contract (the six
        outcomes are derived from the raw fields when they are not columns already) or any
        frame with the named columns. Not modified.
    outcomes : sequence of str or Outcome, optional
        Outcomes to estimate, by name (the study's six by default, in the order of
        :data:`cis_eval.OUTCOMES`) or as :class:`cis_eval.Outcome` objects; any numeric
        column may be named.
    treatment : str, default "treatment"
        Assignment column: 1 = program group, 0 = control group.
    block : str, default "school_id"
        Randomization block (school).
    covariates : "default", None, list or mapping, default "default"
        ``"default"``: each outcome's prior-year measure plus :data:`DEMOGRAPHICS`
        (those present in ``data``); ``None``: no covariates; a list: the same covariates
        for every outcome; a mapping outcome -> list. Missing covariate values are filled
        with the sample mean and flagged by a missing-value indicator.
    estimand : {"fixed_effects", "person_weighted", "school_weighted"}
        ``"fixed_effects"`` (default): OLS with school fixed effects, a precision-weighted
        average of school effects. ``"person_weighted"``: school-by-arm cell means
        (equivalently, assignment interacted with centred school indicators), the average
        effect over students; without covariates it is the blocked difference in means.
        ``"school_weighted"``: the average over schools.
    lin : bool, default False
        Interact centred covariates with assignment (Lin 2013); missing-value indicators
        enter as main effects only.
    se_type : {"HC2", "HC1", "HC0", "classical", "CR0", "CR1", "CR2"}, default "HC2"
        Standard errors. The CR types cluster by school (or by ``cluster``); CR2 uses
        Bell-McCaffrey degrees of freedom, CR1 and CR0 use the number of clusters minus one.
    cluster : str, optional
        Cluster column for the CR types (default: ``block``).
    alpha : float, default 0.05
        Confidence intervals are at level ``1 - alpha``.
    mtp_family : {"confirmatory", "all"}, default "confirmatory"
        Outcomes over which Holm, Bonferroni and Westfall-Young adjust (the confirmatory
        ones of :data:`cis_eval.OUTCOMES`, or all). Benjamini-Hochberg always adjusts
        within each outcome domain.
    permutations : int, default 0
        Within-school permutations for randomization inference and Westfall-Young
        adjusted p-values (10,000 is a good choice; 0 skips it).
    statistic : {"studentized", "unstudentized"}, default "studentized"
        Randomization-inference statistic: the t statistic (robust to unequal variances)
        or the impact estimate.
    seed : int or numpy.random.Generator, optional
        Seed of the permutations; required when ``permutations > 0``.
    chronic_threshold : float, default 0.10
        Absence share that counts as chronic, when chronic absence is derived here.

    Returns
    -------
    ITTResult
        Tidy estimates (``to_frame()``), an MDRC-style ``table()`` and a forest ``plot()``.

    Raises
    ------
    EstimationError
        Unknown columns, a non-binary or missing assignment, an assignment that never varies
        within a school, an outcome with no variation, or too few students.

    Warns
    -----
    DesignWarning
        Schools with only one arm, or covariates dropped as collinear.

    See Also
    --------
    cis_eval.describe : unadjusted means by arm.

    Notes
    -----
    With school fixed effects the estimate is the coefficient on assignment in
    :math:`y_{is} = \alpha_s + \tau z_{is} + x_{is}'\beta + e_{is}`. HC2 uses the exact
    leverage :math:`h_{ii} = 1/n_s + \tilde x_i'(\tilde X'\tilde X)^{-1}\tilde x_i` of the
    full design (school indicators included), as R's ``estimatr::lm_robust``. Effect sizes
    follow the WWC Procedures and Standards Handbook (v5.0): Hedges' g divides the
    (adjusted) impact by the unadjusted pooled standard deviation with the small-sample
    factor; the Cox index compares the log odds of the adjusted program mean and the
    control mean, divided by 1.65.

    References
    ----------
    Lin, W. (2013). Agnostic notes on regression adjustments to experimental data.
    *Annals of Applied Statistics*, 7(1), 295-318.
    Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust
    variance estimation and hypothesis testing in fixed effects models. *Journal of
    Business & Economic Statistics*, 36(4), 672-683.
    Miratrix, L. W., Weiss, M. J., & Henderson, B. (2021). An applied researcher's guide to
    estimating effects from multisite individually randomized trials. *Journal of Research
    on Educational Effectiveness*, 14(1), 270-308.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=800, n_schools=10)
    >>> itt = ce.estimate_itt(trial.students)
    >>> itt
    ITTResult(6 outcomes, 800 students, 10 schools, estimand=fixed_effects, se=HC2)
    >>> itt.to_frame().loc[0, ["outcome", "unit"]].tolist()
    ['chronic_absence', 'percentage points']
    """
    check_option("statistic", statistic, ("studentized", "unstudentized"))
    check_option("mtp_family", mtp_family, ("confirmatory", "all"))
    check_permutations(permutations, seed, what="randomization inference")
    run = _setup(
        data,
        outcomes=outcomes,
        treatment=treatment,
        block=block,
        covariates=covariates,
        estimand=estimand,
        lin=lin,
        se_type=se_type,
        cluster=cluster,
        alpha=alpha,
        chronic_threshold=chronic_threshold,
    )
    d, metas, builts, spec, cov_map = run.d, run.metas, run.builts, run.spec, run.cov_map
    fits = _fit_all(d, builts, spec)
    rows = []
    notes: list[str] = []
    for o, b, fit in zip(metas, builts, fits, strict=True):
        row, n_ = _row(d, o, b, fit, spec)
        rows.append(row)
        notes += n_
    # one frame built once from columns (adding columns to a frame one by one is slow)
    columns: dict[str, list[Any]] = {key: [r[key] for r in rows] for key in rows[0]}
    _adjust(columns, mtp_family)
    used_seed = None
    if permutations:
        rng = rng_from(seed)  # type: ignore[arg-type]
        used_seed = None if isinstance(seed, np.random.Generator) else int(seed)  # type: ignore[arg-type]
        observed, permuted = _permute(d, builts, spec, permutations, rng, statistic)
        with np.errstate(invalid="ignore"):
            # ties count as extreme; a permutation whose statistic is undefined counts too
            extreme = np.abs(np.nan_to_num(permuted, nan=np.inf)) >= np.abs(observed) - 1e-12
        columns["p_ri"] = list((1.0 + extreme.sum(axis=0)) / (1.0 + permutations))
        in_family = _family(columns["role"], mtp_family)
        p_wy = np.full(len(rows), np.nan)
        if in_family.any():
            fam = np.flatnonzero(in_family)
            p_wy[fam] = westfall_young(
                np.abs(observed[fam]) - 1e-12, np.abs(np.nan_to_num(permuted[:, fam], nan=np.inf))
            )
        columns["p_wy"] = list(p_wy)
    columns["se_type"] = [se_type] * len(rows)
    columns["estimand"] = [estimand] * len(rows)
    frame = pd.DataFrame(columns)
    notes = list(dict.fromkeys(notes))
    for msg in notes:
        warnings.warn(msg, DesignWarning, stacklevel=2)
    return ITTResult(
        _estimates=frame,
        estimand=estimand,
        se_type=se_type,
        lin=lin,
        alpha=alpha,
        n_students=len(data),
        n_schools=int(d.school_names.size),
        covariates={k: tuple(v) for k, v in cov_map.items()},
        permutations=int(permutations),
        statistic=statistic,
        seed=used_seed,
        mtp_family=mtp_family,
        notes=tuple(notes),
    )


def _derivable(o: Outcome, data: pd.DataFrame) -> bool:
    return bool(o.raw) and all(c in data.columns for c in o.raw)


def _permute(
    d: Prepared,
    builts: Sequence[Built],
    spec: Spec,
    n_perm: int,
    rng: np.random.Generator,
    statistic: str,
) -> tuple[FloatArray, FloatArray]:
    """Observed and permuted statistics, computed by the same functions (so they match).

    One matrix product per chunk of permutations serves every outcome (see
    :mod:`cis_eval._core.randomization`).
    """
    stats_ = [
        fixed_effects_statistic(d, b, statistic, spec.se_type)
        if spec.estimand == "fixed_effects"
        else cells_statistic(d, b, statistic)
        for b in builts
    ]
    n_schools = d.school_names.size
    school_ind = np.zeros((d.z.size, n_schools))
    school_ind[np.arange(d.z.size), d.school] = 1.0
    columns = np.column_stack([school_ind] + [st_.columns for st_ in stats_])
    bounds = n_schools + np.cumsum([0] + [st_.columns.shape[1] for st_ in stats_])

    def stats_of(z: FloatArray) -> FloatArray:
        zb = z @ columns
        n1_all = zb[:, :n_schools]
        return np.column_stack(
            [
                st_.finish(zb[:, lo:hi], z, n1_all)
                for st_, lo, hi in zip(stats_, bounds[:-1], bounds[1:], strict=True)
            ]
        )

    observed = stats_of(d.z[None, :])[0]
    starts, sizes = _engine.cell_starts(d.school)
    chunks = [stats_of(zp) for zp in within_block_permutations(d.z, starts, sizes, n_perm, rng)]
    return observed, np.vstack(chunks)


# --------------------------------------------------------------------------- CACE


@dataclass(frozen=True, slots=True)
class CACEResult:
    """Complier average causal effects (treatment on the treated) by two-stage least squares.

    Attributes
    ----------
    receipt : str
        How receipt of services was defined.
    se_type : str
        Standard-error type.
    alpha : float
        Significance level for confidence intervals.
    n_students : int
        Randomized students.
    notes : tuple of str
        Assumptions and anything left out.
    """

    _estimates: pd.DataFrame = field(repr=False)
    receipt: str
    se_type: str
    alpha: float
    n_students: int
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"CACEResult({len(self._estimates)} outcomes, {self.n_students:,} students, "
            f"receipt={self.receipt!r}, se={self.se_type})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy estimates, one row per outcome (a fresh copy).

        Columns: ``outcome, label, type, unit, itt, itt_std_error, first_stage,
        first_stage_std_error, first_stage_f, receipt_treatment, receipt_control,
        estimate, std_error, statistic, df, p_value, conf_low, conf_high, n, control_mean,
        control_sd, se_type, estimand``. ``first_stage`` is the impact of assignment on the share
        receiving services (a proportion); ``estimate`` is the CACE in outcome units.
        """
        return self._estimates.copy()

    def table(self, *, title: str | None = None) -> Table:
        """Intent-to-treat and complier effects side by side, with the first stage."""
        rows = []
        for r in records(self._estimates):
            unit = " (%)" if r.type == "binary" else ""
            rows.append(
                {
                    "Outcome": f"{r.label}{unit}",
                    "ITT impact": _fmt_value(r.itt, r.type, signed=True),
                    "First stage (pp)": f"{100 * float(r.first_stage):+.1f}",
                    "CACE (TOT)": _fmt_value(r.estimate, r.type, signed=True) + _stars(r.p_value),
                    "Std. error": _fmt_value(r.std_error, r.type),
                    "P-value": f"{float(r.p_value):.3f}",
                    "First-stage F": f"{float(r.first_stage_f):,.1f}",
                }
            )
        f = self._estimates
        notes = [
            f"Receipt of services: {self.receipt}. Program group "
            f"{100 * f['receipt_treatment'].iloc[0]:.1f}%, control group "
            f"{100 * f['receipt_control'].iloc[0]:.1f}% (crossover).",
            "CACE: two-stage least squares, assignment instrumenting receipt, with school "
            "fixed effects and the same covariates as the ITT model; it equals the ITT "
            "impact divided by the first stage. It is the effect on students who receive "
            "services if and only if assigned to the program (compliers), assuming "
            "assignment affects outcomes only through services (exclusion restriction) and "
            "no student is served only when assigned to control (monotonicity).",
            f"Standard errors: {SE_TYPES[self.se_type]} (second-stage design, as estimatr's "
            "iv_robust). First-stage F: squared t statistic of assignment in the first stage.",
            "Stars: *** p < 0.01, ** p < 0.05, * p < 0.10.",
        ]
        return Table(
            pd.DataFrame(rows),
            title=title or "Effects of receiving case management on compliers (CACE)",
            notes=tuple(notes + list(self.notes)),
        )

    def plot(self, ax: Any = None) -> Any:
        """ITT and CACE estimates with confidence intervals, one row per outcome.

        Estimates are divided by the control group's standard deviation of each outcome,
        so outcomes in different units share one axis.
        """
        import matplotlib.pyplot as plt

        est = self._estimates
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 0.55 * len(est) + 1.2))
        ypos = np.arange(len(est))[::-1]
        sd = est["control_sd"].to_numpy()
        crit_itt = special.stdtrit(est["df"].to_numpy(), 1 - self.alpha / 2)
        half_itt = crit_itt * est["itt_std_error"].to_numpy()
        for off, mid, half, color, lab in (
            (0.15, est["itt"].to_numpy(), half_itt, "#8a8a8a", "ITT (assignment)"),
            (
                -0.15,
                est["estimate"].to_numpy(),
                (est["conf_high"] - est["estimate"]).to_numpy(),
                "#00597c",
                "CACE (receiving services)",
            ),
        ):
            ax.errorbar(mid / sd, ypos + off, xerr=half / sd, fmt="o", color=color, label=lab)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ypos)
        ax.set_yticklabels(est["label"].tolist())
        ax.set_xlabel("Impact in control-group standard deviations")
        ax.legend(frameon=False, fontsize=8)
        return ax


def estimate_cace(
    data: pd.DataFrame,
    contacts: pd.DataFrame | None = None,
    *,
    received: str | None = None,
    min_contacts: int = 1,
    tier: int = 2,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None = "default",
    se_type: SEType = "HC2",
    cluster: str | None = None,
    alpha: float = 0.05,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> CACEResult:
    r"""Estimate the complier average causal effect of receiving case management (2SLS).

    Random assignment instruments receipt of Level 2 services. Receipt is derived from the
    contacts log (at least ``min_contacts`` contacts of the given tier) or read from a
    column.

    Parameters
    ----------
    data : pandas.DataFrame
        Students table, as for :func:`estimate_itt`. Not modified.
    contacts : pandas.DataFrame, optional
        The contacts log; needed unless ``received`` names a column of ``data``.
    received : str, optional
        Column of ``data`` with receipt (0/1), instead of deriving it from ``contacts``.
    min_contacts : int, default 1
        Contacts a student needs to count as served (a dose threshold; e.g. 10).
    tier : {2, 1}, default 2
        Tier of the contacts that count (2: case-managed Level 2 services).
    outcomes, treatment, block, covariates, se_type, cluster, alpha, chronic_threshold
        As in :func:`estimate_itt` (school fixed effects estimand).

    Returns
    -------
    CACEResult
        ITT, first stage (with its F statistic) and CACE for each outcome.

    Notes
    -----
    The second stage regresses the outcome on fitted receipt, school fixed effects and the
    covariates; with one instrument it equals :math:`\hat\tau_{ITT} / \hat\pi`, the ITT
    impact over the impact of assignment on receipt. Standard errors use the second-stage
    design and residuals computed with actual receipt, as R's ``estimatr::iv_robust``.

    References
    ----------
    Angrist, J. D., Imbens, G. W., & Rubin, D. B. (1996). Identification of causal effects
    using instrumental variables. *Journal of the American Statistical Association*,
    91(434), 444-455.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=800, n_schools=10)
    >>> cace = ce.estimate_cace(trial.students, trial.contacts, outcomes=["chronic_absence"])
    >>> bool(cace.to_frame().loc[0, "first_stage"] > 0.5)
    True
    """
    check_option("se_type", se_type, SE_TYPES)
    if received is not None:
        if received not in data.columns:
            raise EstimationError(f"the data have no receipt column '{received}'")
        rec = numeric(data, received, "receipt")
        if np.isnan(rec).any() or not np.isin(rec, (0.0, 1.0)).all():
            raise EstimationError(
                f"column '{received}': receipt must be 0 or 1 for every student, with no "
                "empty cells"
            )
        receipt = f"column '{received}'"
    else:
        if contacts is None:
            raise EstimationError(
                "the CACE needs receipt of services: pass the contacts log or received=COLUMN"
            )
        from ..fidelity.verb import service_receipt

        rec = service_receipt(data, contacts, min_contacts=min_contacts, tier=tier).to_numpy(
            dtype=float
        )
        receipt = (
            f"at least {min_contacts} Level {tier} contact{'s' if min_contacts > 1 else ''} "
            "in the contacts log"
        )
    run = _setup(
        data,
        outcomes=outcomes,
        treatment=treatment,
        block=block,
        covariates=covariates,
        estimand="fixed_effects",
        lin=False,
        se_type=se_type,
        cluster=cluster,
        alpha=alpha,
        chronic_threshold=chronic_threshold,
        extra={"received": rec},
    )
    d, spec = run.d, run.spec
    received_col = d.unit("e:received")
    firsts = _fit_all(
        d,
        [replace(b, problem=replace(b.problem, y=received_col)) for b in run.builts],
        spec,
    )
    itts = _fit_all(d, run.builts, spec)
    ivs = []
    for b, first in zip(run.builts, firsts, strict=True):
        x = b.problem.x
        x_fit = x.copy()
        x_fit[:, 0] = x[:, list(first.kept)] @ first.coef  # fitted receipt (within schools)
        x_act = x.copy()
        x_act[:, 0] = received_col
        ivs.append(replace(b, problem=replace(b.problem, x=x_fit, x_actual=x_act)))
    iv_fits = _fit_all(d, ivs, spec)
    receipt_t = float(d.extra["received"][d.z == 1].mean())
    receipt_c = float(d.extra["received"][d.z == 0].mean())
    rows = []
    notes: list[str] = []
    for o, b, first, itt_fit, iv in zip(run.metas, run.builts, firsts, itts, iv_fits, strict=True):
        itt_row, n_ = _row(d, o, b, itt_fit, spec)
        notes += n_
        if first.estimate == 0 or not np.isfinite(first.std_error) or 0 not in first.kept:
            raise EstimationError(
                f"outcome '{o.name}': assignment does not change receipt of services, so the "
                "CACE is not identified"
            )
        if not np.isfinite(iv.std_error):
            raise EstimationError(
                f"outcome '{o.name}': the CACE standard error is undefined (students fitted "
                "exactly yet moving the estimate); use se_type='HC1'"
            )
        tstat = iv.estimate / iv.std_error
        crit = float(stats.t.ppf(1 - alpha / 2, iv.df))
        rows.append(
            {
                "outcome": o.name,
                "label": o.label,
                "type": o.type,
                "unit": itt_row["unit"],
                "itt": itt_row["estimate"],
                "itt_std_error": itt_row["std_error"],
                "first_stage": first.estimate,
                "first_stage_std_error": first.std_error,
                "first_stage_f": (first.estimate / first.std_error) ** 2,
                "receipt_treatment": receipt_t,
                "receipt_control": receipt_c,
                "estimate": iv.estimate,
                "std_error": iv.std_error,
                "statistic": tstat,
                "df": iv.df,
                "p_value": float(2 * stats.t.sf(abs(tstat), iv.df)),
                "conf_low": iv.estimate - crit * iv.std_error,
                "conf_high": iv.estimate + crit * iv.std_error,
                "n": iv.n,
                "control_mean": itt_row["control_mean"],
                "control_sd": itt_row["control_sd"],
                "se_type": se_type,
                "estimand": "complier average causal effect (school fixed effects, 2SLS)",
            }
        )
    notes = list(dict.fromkeys(notes))
    for msg in notes:
        warnings.warn(msg, DesignWarning, stacklevel=2)
    return CACEResult(
        _estimates=pd.DataFrame(rows),
        receipt=receipt,
        se_type=se_type,
        alpha=alpha,
        n_students=len(data),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- subgroups

RISK_FLAGS: tuple[str, ...] = ("prior_chronic_absence", "prior_core_failures", "prior_suspensions")
"""Baseline ABC risk flags (attendance, course performance, behaviour) for ``baseline_risk``."""


def baseline_risk(data: pd.DataFrame) -> pd.Series:
    """Baseline risk group from the attendance, behaviour and course-performance flags.

    A student is ``"higher risk"`` with two or more of: chronically absent in the prior
    year, at least one prior core course failure, at least one prior suspension (the
    "ABC" indicators of the IES dropout-prevention practice guide); ``"lower risk"``
    otherwise; missing when a flag is missing and the count could still reach two.

    Parameters
    ----------
    data : pandas.DataFrame
        Students table with the three prior-year columns.

    Returns
    -------
    pandas.Series
        ``"higher risk"`` / ``"lower risk"`` (string dtype, may be missing), aligned to
        ``data.index`` and named ``baseline_risk``.

    Examples
    --------
    >>> import pandas as pd
    >>> from cis_eval.estimation.itt import baseline_risk
    >>> df = pd.DataFrame({"prior_chronic_absence": [1, 0], "prior_core_failures": [2, 0],
    ...                    "prior_suspensions": [0, 0]})
    >>> baseline_risk(df).tolist()
    ['higher risk', 'lower risk']
    """
    missing = [c for c in RISK_FLAGS if c not in data.columns]
    if missing:
        raise EstimationError(f"baseline risk needs the column(s) {', '.join(missing)}")
    flags = np.column_stack([numeric(data, c, "risk flag") > 0 for c in RISK_FLAGS])
    known = np.column_stack([~np.isnan(numeric(data, c, "risk flag")) for c in RISK_FLAGS])
    count = (flags & known).sum(axis=1)
    unknown = (~known).sum(axis=1)
    label = np.where(count >= 2, "higher risk", "lower risk").astype(object)
    label[(count < 2) & (count + unknown >= 2)] = None
    return pd.Series(label, index=data.index, name="baseline_risk", dtype="string")


@dataclass(frozen=True, slots=True)
class SubgroupResult:
    """Impacts within subgroups and tests of whether they differ.

    Attributes
    ----------
    by : str
        The subgrouping variable.
    levels : tuple of str
        Subgroups, in table order.
    estimand, se_type : str
        As in :class:`ITTResult`.
    alpha : float
        Significance level for confidence intervals.
    notes : tuple of str
        What was dropped and why.
    """

    _estimates: pd.DataFrame = field(repr=False)
    _tests: pd.DataFrame = field(repr=False)
    by: str
    levels: tuple[str, ...]
    estimand: str
    se_type: str
    alpha: float
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"SubgroupResult(by={self.by!r}, {len(self.levels)} subgroups, "
            f"{self._tests.shape[0]} outcomes, se={self.se_type})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Estimates within each subgroup: the :class:`ITTResult` columns plus ``subgroup``."""
        return self._estimates.copy()

    def tests(self) -> pd.DataFrame:
        """One row per outcome: the test that impacts are equal across subgroups.

        Columns ``outcome, label, difference, std_error, statistic, df_num, df_den,
        p_value``; ``difference`` (first minus second subgroup) is given for two subgroups.
        """
        return self._tests.copy()

    def table(self, *, title: str | None = None) -> Table:
        """Impacts by subgroup with the p-value of the difference between subgroups."""
        est = self._estimates
        tests = self._tests.set_index("outcome")
        rows = []
        for outcome, grp in est.groupby("outcome", sort=False):
            first = grp.iloc[0]
            unit = " (%)" if first["type"] == "binary" else ""
            row: dict[str, str] = {"Outcome": f"{first['label']}{unit}"}
            for lev in self.levels:
                g = grp[grp["subgroup"] == lev]
                if len(g):
                    r = g.iloc[0]
                    row[f"{lev}: impact"] = _fmt_value(
                        r["estimate"], r["type"], signed=True
                    ) + _stars(r["p_value"])
                    row[f"{lev}: N"] = f"{int(r['n']):,}"
                else:
                    row[f"{lev}: impact"] = "n/a"
                    row[f"{lev}: N"] = ""
            p = float(tests["p_value"].get(outcome, np.nan))
            row["Difference p-value"] = f"{p:.3f}" if np.isfinite(p) else ""
            rows.append(row)
        notes = [
            f"Subgroups by '{self.by}'. Impacts estimated separately within each subgroup "
            "(a fully interacted model), same estimator as the main impacts.",
            "Difference p-value: test that impacts are equal across subgroups "
            "(t test for two subgroups, Wald F test for more).",
            "Subgroup findings are exploratory: many comparisons, less power.",
        ]
        return Table(
            pd.DataFrame(rows),
            title=title or f"Impacts by subgroup ({self.by})",
            notes=tuple(notes + list(self.notes)),
        )

    def plot(self, ax: Any = None) -> Any:
        """Impact estimates with confidence intervals by subgroup, one panel row per outcome."""
        import matplotlib.pyplot as plt

        est = self._estimates
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 0.5 * len(est) + 1.2))
        labels = [f"{r.label} | {r.subgroup}" for r in records(est)]
        ypos = np.arange(len(est))[::-1]
        ax.errorbar(
            est["effect_size"],
            ypos,
            xerr=[
                est["effect_size"] - est["effect_size_low"],
                est["effect_size_high"] - est["effect_size"],
            ],
            fmt="o",
            color="#00597c",
            capsize=2,
        )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ypos)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_xlabel("Effect size (same sign as the impact)")
        return ax


def estimate_subgroups(
    data: pd.DataFrame,
    by: str,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None = "default",
    estimand: Estimand = "fixed_effects",
    lin: bool = False,
    se_type: SEType = "HC2",
    cluster: str | None = None,
    alpha: float = 0.05,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> SubgroupResult:
    """Estimate impacts within subgroups and test whether they differ.

    Parameters
    ----------
    data : pandas.DataFrame
        Students table, as for :func:`estimate_itt`. Not modified.
    by : str
        A column defining subgroups at baseline (e.g. ``"school_level"``, ``"female"``) or
        ``"baseline_risk"`` (see :func:`baseline_risk`). At most 10 distinct values.
    outcomes, treatment, block, covariates, estimand, lin, se_type, cluster, alpha, chronic_threshold
        As in :func:`estimate_itt`.

    Returns
    -------
    SubgroupResult

    Notes
    -----
    Each subgroup is analysed on its own, which is the fully interacted model (subgroup
    by school effects, subgroup by covariate slopes). Subgroups are disjoint sets of
    students, so with heteroskedasticity-robust standard errors the estimates are
    independent and the variance of a difference is the sum of variances. With
    cluster-robust standard errors, subgroups share schools, and the covariance comes from
    the school totals of the estimates' influence (CR1 form, ``G - 1`` degrees of freedom).
    An outcome not defined in a subgroup (core credits in middle schools) is left out there.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=1200, n_schools=14)
    >>> sub = ce.estimate_subgroups(trial.students, "school_level", outcomes=["core_gpa"])
    >>> sub.levels
    ('high', 'middle')
    """
    if by == "baseline_risk" and "baseline_risk" not in data.columns:
        groups = baseline_risk(data)
    else:
        if by not in data.columns:
            raise EstimationError(f"the data have no subgroup column '{by}'")
        groups = data[by].astype("string").str.strip()
    levels = tuple(sorted(str(v) for v in groups.dropna().unique()))
    if len(levels) < 2:
        raise EstimationError(f"subgroup column '{by}' has fewer than two values")
    if len(levels) > 10:
        raise EstimationError(
            f"subgroup column '{by}' has {len(levels)} values; subgroups need at most 10 "
            "(bin a continuous measure first)"
        )
    gvals = np.asarray(groups.astype(object).where(groups.notna(), None))
    code = np.full(len(data), np.nan)
    for i, lev in enumerate(levels):
        code[gvals == lev] = i
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DesignWarning)
        run = _setup(
            data,
            outcomes=outcomes,
            treatment=treatment,
            block=block,
            covariates=covariates,
            estimand=estimand,
            lin=lin,
            se_type=se_type,
            cluster=cluster,
            alpha=alpha,
            chronic_threshold=chronic_threshold,
            extra={"subgroup": code},
        )
    d, spec = run.d, run.spec
    sub = d.extra["subgroup"]
    est_rows: list[dict[str, Any]] = []
    test_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    n_missing = int(np.isnan(sub).sum())
    if n_missing:
        notes.append(f"{n_missing:,} students with no value of '{by}' are left out.")
    for o in run.metas:
        builts: list[tuple[str, Built]] = []
        for i, lev in enumerate(levels):
            in_level = sub == i
            if np.isnan(d.y[o.name][in_level]).all():
                notes.append(f"{o.label}: not defined for {by} = {lev}.")
                continue
            try:
                builts.append((lev, build(d, o, run.cov_map[o.name], spec, restrict=in_level)))
            except EstimationError as exc:
                notes.append(f"{o.label}, {by} = {lev}: not estimated ({exc}).")
        level_fits = _fit_all(d, [b for _, b in builts], spec, keep_arrays=True)
        fits: list[tuple[str, Built, _engine.Fit]] = []
        for (lev, b), fit in zip(builts, level_fits, strict=True):
            try:
                row, n_ = _row(d, o, b, fit, spec)
            except EstimationError as exc:
                notes.append(f"{o.label}, {by} = {lev}: not estimated ({exc}).")
                continue
            notes += [f"{by} = {lev}: {m}" for m in n_]
            row["subgroup"] = lev
            est_rows.append(row)
            fits.append((lev, b, fit))
        if len(fits) < 2:
            continue
        tau = np.array([f.estimate for _, _, f in fits])
        if se_type.startswith("CR"):
            _, cl_codes = np.unique(_clusters(d), return_inverse=True)
            g = int(cl_codes.max()) + 1
            u = np.zeros((len(fits), g))
            n_tot = sum(f.n for _, _, f in fits)
            rank = sum(f.rank for _, _, f in fits)
            for j, (_, b, f) in enumerate(fits):
                assert f.influence is not None and f.residuals is not None
                u[j] = np.bincount(cl_codes[b.rows], weights=f.influence * f.residuals, minlength=g)
            cov = u @ u.T
            if se_type != "CR0":
                cov *= g * (n_tot - 1) / ((g - 1) * (n_tot - rank))
            df_den = float(g - 1)
        else:
            cov = np.diag([f.std_error**2 for _, _, f in fits])
            df_den = float(sum(f.df for _, _, f in fits))
        k = len(fits)
        contrast = np.column_stack([np.eye(k - 1), -np.ones(k - 1)])
        diff = contrast @ tau
        vd = contrast @ cov @ contrast.T
        wald = float(diff @ np.linalg.solve(vd, diff)) / (k - 1)
        p = float(stats.f.sf(wald, k - 1, df_den))
        test_rows.append(
            {
                "outcome": o.name,
                "label": o.label,
                "difference": float(diff[0]) if k == 2 else np.nan,
                "std_error": float(np.sqrt(vd[0, 0])) if k == 2 else np.nan,
                "statistic": wald,
                "df_num": k - 1,
                "df_den": df_den,
                "p_value": p,
            }
        )
    if not est_rows:
        raise EstimationError(f"no outcome could be estimated within the subgroups of '{by}'")
    est = pd.DataFrame(est_rows)
    est.insert(0, "subgroup", est.pop("subgroup"))
    est["se_type"] = se_type
    est["estimand"] = estimand
    tests = pd.DataFrame(
        test_rows,
        columns=[
            "outcome",
            "label",
            "difference",
            "std_error",
            "statistic",
            "df_num",
            "df_den",
            "p_value",
        ],
    )
    return SubgroupResult(
        _estimates=est,
        _tests=tests,
        by=by,
        levels=levels,
        estimand=estimand,
        se_type=se_type,
        alpha=alpha,
        notes=tuple(dict.fromkeys(notes)),
    )


# --------------------------------------------------------------------------- sensitivity


@dataclass(frozen=True, slots=True)
class SensitivityResult:
    """Impacts from nonlinear models beside the linear ones (a robustness check).

    Attributes
    ----------
    notes : tuple of str
        How each model was fitted and what was left out.
    """

    _estimates: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"SensitivityResult({len(self._estimates)} outcomes)"

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome (a fresh copy).

        Columns: ``outcome, label, type, linear_estimate, linear_std_error, linear_p_value,
        model, estimate, std_error, p_value, ratio, ratio_name, n, n_schools_dropped``.
        ``estimate`` is the average marginal effect of assignment (percentage points for
        binary outcomes), comparable with ``linear_estimate``; ``ratio`` is the odds ratio
        (logit) or rate ratio (Poisson).
        """
        return self._estimates.copy()

    def table(self, *, title: str | None = None) -> Table:
        """Linear and nonlinear impact estimates side by side."""
        rows = []
        for r in records(self._estimates):
            unit = " (%)" if r.type == "binary" else ""
            rows.append(
                {
                    "Outcome": f"{r.label}{unit}",
                    "Linear model": _fmt_value(r.linear_estimate, r.type, signed=True)
                    + _stars(r.linear_p_value),
                    "Model": r.model,
                    "Average marginal effect": _fmt_value(r.estimate, r.type, signed=True)
                    + _stars(r.p_value),
                    "Std. error": _fmt_value(r.std_error, r.type),
                    "Ratio": f"{float(r.ratio):.3f} ({r.ratio_name})",
                }
            )
        notes = [
            "Linear model: the main impact estimate (OLS with school fixed effects).",
            "Logit (binary outcomes) and Poisson (counts) with school indicators and the "
            "same covariates, fitted by maximum likelihood (statsmodels); average marginal "
            "effect of assignment by the delta method; Poisson standard errors robust "
            "(sandwich). Schools where every student has the same outcome are left out of "
            "the logit (their indicators predict it perfectly).",
        ]
        return Table(
            pd.DataFrame(rows),
            title=title or "Sensitivity of impacts to the model",
            notes=tuple(notes + list(self.notes)),
        )

    def plot(self, ax: Any = None) -> Any:
        """Linear and nonlinear estimates with 95% intervals, one row per outcome."""
        import matplotlib.pyplot as plt

        est = self._estimates
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 0.6 * len(est) + 1.2))
        ypos = np.arange(len(est))[::-1]
        for off, mid, se, color, lab in (
            (0.12, est["linear_estimate"], est["linear_std_error"], "#8a8a8a", "Linear"),
            (-0.12, est["estimate"], est["std_error"], "#00597c", "Nonlinear"),
        ):
            ax.errorbar(mid, ypos + off, xerr=1.96 * se, fmt="o", color=color, label=lab)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ypos)
        ax.set_yticklabels(est["label"].tolist())
        ax.legend(frameon=False, fontsize=8)
        return ax


def estimate_sensitivity(
    data: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None = "default",
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> SensitivityResult:
    """Re-estimate binary and count outcomes with logit and Poisson models.

    A check that the linear probability model's impacts do not hinge on linearity: binary
    outcomes get a logit with school indicators, count outcomes (suspensions) a Poisson
    regression with school indicators, both with the same covariates as the main model.
    Continuous outcomes are left out.

    Parameters
    ----------
    data : pandas.DataFrame
        Students table, as for :func:`estimate_itt`. Not modified.
    outcomes, treatment, block, covariates, chronic_threshold
        As in :func:`estimate_itt`; by default the binary and count outcomes of the study.

    Returns
    -------
    SensitivityResult

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=800, n_schools=10)
    >>> ce.estimate_sensitivity(trial.students, outcomes=["chronic_absence"]).to_frame()[
    ...     "model"].tolist()
    ['logit']
    """
    import statsmodels.api as sm

    run = _setup(
        data,
        outcomes=outcomes,
        treatment=treatment,
        block=block,
        covariates=covariates,
        estimand="fixed_effects",
        lin=False,
        se_type="HC2",
        cluster=None,
        alpha=0.05,
        chronic_threshold=chronic_threshold,
    )
    d = run.d
    # the linear estimates come from the same prepared data as the nonlinear ones
    chosen = [i for i, o in enumerate(run.metas) if o.type in ("binary", "count")]
    if not chosen:
        raise EstimationError("no binary or count outcome to re-estimate")
    builts = [run.builts[i] for i in chosen]
    linear: list[dict[str, Any]] = []
    notes: list[str] = []
    for i, b, fit in zip(chosen, builts, _fit_all(d, builts, run.spec), strict=True):
        row, n_ = _row(d, run.metas[i], b, fit, run.spec)
        linear.append(row)
        notes += n_
    for msg in dict.fromkeys(notes):
        warnings.warn(msg, DesignWarning, stacklevel=2)
    lin = pd.DataFrame(linear)
    metas = {run.metas[i].name: run.metas[i] for i in chosen}
    rows = []
    for r, b in zip(records(lin), builts, strict=True):
        o = metas[str(r.outcome)]
        sample_rows, y_raw, x = materialize(d, b)
        school_all = d.school[sample_rows]
        z = d.z[sample_rows]
        y = y_raw / 100.0 if o.type == "binary" else y_raw
        keep = np.ones(y.size, bool)
        dropped = 0
        if o.type == "binary":
            # schools where the outcome never varies are predicted perfectly
            school = np.unique(school_all, return_inverse=True)[1]
            mean = np.bincount(school, weights=y) / np.bincount(school)
            constant = (mean == 0) | (mean == 1)
            dropped = int(constant.sum())
            keep = ~constant[school]
        school = np.unique(school_all[keep], return_inverse=True)[1]
        dummies = np.eye(int(school.max()) + 1)[school]
        exog = np.column_stack([z[keep], x[keep], dummies])
        # drop covariate columns that are constant in this sample (collinear with schools)
        varying = np.ptp(exog, axis=0) > 0
        varying[1 + x.shape[1] :] = True
        exog = exog[:, varying]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if o.type == "binary":
                model = sm.Logit(y[keep], exog)
                res = model.fit(disp=0, maxiter=200, method="newton")
                ratio, ratio_name, name = float(np.exp(res.params[0])), "odds ratio", "logit"
            else:
                model = sm.Poisson(y[keep], exog)
                res = model.fit(disp=0, maxiter=200, method="newton", cov_type="HC0")
                ratio, ratio_name, name = float(np.exp(res.params[0])), "rate ratio", "Poisson"
            marg = res.get_margeff(at="overall", method="dydx", dummy=True)
        scale = 100.0 if o.type == "binary" else 1.0
        if dropped:
            notes.append(
                f"{o.label}: {dropped} school(s) where every student has the same outcome "
                "left out of the logit."
            )
        rows.append(
            {
                "outcome": o.name,
                "label": o.label,
                "type": o.type,
                "linear_estimate": r.estimate,
                "linear_std_error": r.std_error,
                "linear_p_value": r.p_value,
                "model": name,
                "estimate": float(marg.margeff[0]) * scale,
                "std_error": float(marg.margeff_se[0]) * scale,
                "p_value": float(marg.pvalues[0]),
                "ratio": ratio,
                "ratio_name": ratio_name,
                "n": int(keep.sum()),
                "n_schools_dropped": dropped,
            }
        )
    return SensitivityResult(_estimates=pd.DataFrame(rows), notes=tuple(notes))
