"""Impacts within subgroups of students, and tests of whether they differ.

Each subgroup is analysed on its own (the fully interacted model) with the same estimator
as the main impacts; :func:`baseline_risk` defines the study's baseline risk groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from .._core import engine as _engine
from .._core.design import Built, build, numeric
from .._core.impact import clusters, fit_all, impact_row, setup
from .._core.spec import CovariateOption, ImpactSpec, SpecViews
from .._typing import Estimand, SEType
from ..errors import EstimationError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.results import ResultMixin
from ..present.table import Table, records
from ..schema import Outcome
from ._format import fmt_value, stars

__all__ = ["RISK_FLAGS", "SubgroupResult", "baseline_risk", "estimate_subgroups"]


RISK_FLAGS: tuple[str, ...] = ("prior_chronic_absence", "prior_core_failures", "prior_suspensions")
"""Baseline ABC risk flags (attendance, course performance, behaviour) for ``baseline_risk``."""


def baseline_risk(students: pd.DataFrame) -> pd.Series:
    """Baseline risk group from the attendance, behaviour and course-performance flags.

    A student is ``"higher risk"`` with two or more of: chronically absent in the prior
    year, at least one prior core course failure, at least one prior suspension (the
    "ABC" indicators of the IES dropout-prevention practice guide); ``"lower risk"``
    otherwise; missing when a flag is missing and the count could still reach two.

    Parameters
    ----------
    students : pandas.DataFrame
        Students table with the three prior-year columns.

    Returns
    -------
    pandas.Series
        ``"higher risk"`` / ``"lower risk"`` (string dtype, may be missing), aligned to
        ``students.index`` and named ``baseline_risk``.

    Examples
    --------
    >>> import pandas as pd
    >>> from cis_eval import baseline_risk
    >>> df = pd.DataFrame({"prior_chronic_absence": [1, 0], "prior_core_failures": [2, 0],
    ...                    "prior_suspensions": [0, 0]})
    >>> baseline_risk(df).tolist()
    ['higher risk', 'lower risk']
    """
    missing = [c for c in RISK_FLAGS if c not in students.columns]
    if missing:
        raise EstimationError(f"baseline risk needs the column(s) {', '.join(missing)}")
    flags = np.column_stack([numeric(students, c, "risk flag") > 0 for c in RISK_FLAGS])
    known = np.column_stack([~np.isnan(numeric(students, c, "risk flag")) for c in RISK_FLAGS])
    count = (flags & known).sum(axis=1)
    unknown = (~known).sum(axis=1)
    label = np.where(count >= 2, "higher risk", "lower risk").astype(object)
    label[(count < 2) & (count + unknown >= 2)] = None
    return pd.Series(label, index=students.index, name="baseline_risk", dtype="string")


@dataclass(frozen=True, slots=True)
class SubgroupResult(SpecViews, ResultMixin):
    """Impacts within subgroups and tests of whether they differ.

    The tidy frame (``to_frame()``) has one row per subgroup and outcome: ``subgroup`` and
    then the columns of :class:`~cis_eval.ITTResult`; the accessors are indexed by
    ``outcome`` and ``subgroup``.

    Attributes
    ----------
    by : str
        The subgrouping variable.
    levels : tuple of str
        Subgroups, in table order.
    spec : ImpactSpec
        The specification of the impact model fitted within each subgroup.
    notes : tuple of str
        What was dropped and why.
    """

    _estimates: pd.DataFrame = field(repr=False)
    _tests: pd.DataFrame = field(repr=False)
    by: str
    levels: tuple[str, ...]
    spec: ImpactSpec
    notes: tuple[str, ...] = ()

    _keys: ClassVar[tuple[str, ...]] = ("outcome", "subgroup")

    @property
    def estimand(self) -> str:
        """The estimand, as in :class:`~cis_eval.ITTResult`."""
        return self.spec.estimand

    def __repr__(self) -> str:
        return (
            f"SubgroupResult(by={self.by!r}, {len(self.levels)} subgroups, "
            f"{self._tests.shape[0]} outcomes, se={self.se_type})"
        )

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
                    row[f"{lev}: impact"] = fmt_value(
                        r["estimate"], r["type"], signed=True
                    ) + stars(r["p_value"])
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
    students: pd.DataFrame,
    by: str,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: CovariateOption = "default",
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
    students : pandas.DataFrame
        Students table, as for :func:`~cis_eval.estimate_itt`. Not modified.
    by : str
        A column defining subgroups at baseline (e.g. ``"school_level"``, ``"female"``) or
        ``"baseline_risk"`` (see :func:`baseline_risk`). At most 10 distinct values.
    outcomes, treatment, block, covariates, estimand, lin, se_type, cluster, alpha, chronic_threshold
        As in :func:`~cis_eval.estimate_itt`.

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
    spec = ImpactSpec.build(
        students,
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
    if by == "baseline_risk" and "baseline_risk" not in students.columns:
        groups = baseline_risk(students)
    else:
        if by not in students.columns:
            raise EstimationError(f"the data have no subgroup column '{by}'")
        groups = students[by].astype("string").str.strip()
    levels = tuple(sorted(str(v) for v in groups.dropna().unique()))
    if len(levels) < 2:
        raise EstimationError(f"subgroup column '{by}' has fewer than two values")
    if len(levels) > 10:
        raise EstimationError(
            f"subgroup column '{by}' has {len(levels)} values; subgroups need at most 10 "
            "(bin a continuous measure first)"
        )
    gvals = np.asarray(groups.astype(object).where(groups.notna(), None))
    code = np.full(len(students), np.nan)
    for i, lev in enumerate(levels):
        code[gvals == lev] = i
    run = setup(students, spec, extra={"subgroup": code})
    d = run.d
    sub = d.extra["subgroup"]
    est_rows: list[dict[str, Any]] = []
    test_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    n_missing = int(np.isnan(sub).sum())
    if n_missing:
        notes.append(f"{n_missing:,} students with no value of '{by}' are left out.")
    for o in spec.outcomes:
        builts: list[tuple[str, Built]] = []
        for i, lev in enumerate(levels):
            in_level = sub == i
            if np.isnan(d.y[o.name][in_level]).all():
                notes.append(f"{o.label}: not defined for {by} = {lev}.")
                continue
            try:
                builts.append((lev, build(d, o, spec.covariates[o.name], spec, restrict=in_level)))
            except EstimationError as exc:
                notes.append(f"{o.label}, {by} = {lev}: not estimated ({exc}).")
        level_fits = fit_all(d, [b for _, b in builts], spec, keep_arrays=True)
        fits: list[tuple[str, Built, _engine.Fit]] = []
        for (lev, b), fit in zip(builts, level_fits, strict=True):
            try:
                row, n_ = impact_row(d, o, b, fit, spec)
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
        if spec.se_type.startswith("CR"):
            _, cl_codes = np.unique(clusters(d), return_inverse=True)
            g = int(cl_codes.max()) + 1
            u = np.zeros((len(fits), g))
            n_tot = sum(f.n for _, _, f in fits)
            rank = sum(f.rank for _, _, f in fits)
            for j, (_, b, f) in enumerate(fits):
                assert f.influence is not None and f.residuals is not None
                u[j] = np.bincount(cl_codes[b.rows], weights=f.influence * f.residuals, minlength=g)
            cov = u @ u.T
            if spec.se_type != "CR0":
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
    est["se_type"] = spec.se_type
    est["estimand"] = spec.estimand
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
        spec=spec,
        notes=tuple(dict.fromkeys(notes)),
    )
