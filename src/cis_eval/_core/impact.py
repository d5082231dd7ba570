"""The impact core: from a students table and an :class:`ImpactSpec` to tidy rows (private).

Every impact verb (:mod:`cis_eval.estimation`) and the integrity checks that need impacts
or within-school differences (:mod:`cis_eval.integrity`) call these functions directly:
:func:`setup` reads the data once and builds each outcome's regression, :func:`fit_all`
fits them on the shared design, :func:`impact_row` turns one fit into its tidy row, and
:func:`impacts` does all three plus the multiple-testing adjustments. Notes on what was
dropped are returned, never warned here: each verb decides how to report them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from .._typing import BoolArray, FloatArray, IntArray
from ..effect_sizes import COX_SCALE, favourable, improvement_index, pooled_sd, wwc_omega
from ..errors import EstimationError
from ..schema import Outcome
from . import engine as _engine
from .design import Built, Prepared, arm_moments, build, prepare
from .multiplicity import benjamini_hochberg, bonferroni, holm
from .spec import ImpactSpec

__all__ = [
    "Run",
    "clusters",
    "family_mask",
    "fit_all",
    "impact_row",
    "impacts",
    "setup",
]


@dataclass(frozen=True, slots=True)
class Run:
    """The prepared data and one regression per outcome of a spec, before fitting."""

    d: Prepared
    builts: list[Built]
    spec: ImpactSpec


def setup(
    students: pd.DataFrame, spec: ImpactSpec, *, extra: dict[str, FloatArray] | None = None
) -> Run:
    """Read the data once and build every outcome's regression.

    ``extra`` holds further per-student arrays (receipt of services, subgroup codes) that
    are sorted with the data and kept as columns of the shared design.
    """
    need = set().union(*spec.covariates.values()) if spec.covariates else set()
    d = prepare(
        students,
        spec.outcomes,
        need,
        treatment=spec.treatment,
        block=spec.block,
        cluster=spec.cluster,
        chronic_threshold=spec.chronic_threshold,
        lin=spec.lin,
        by_arm=spec.estimand != "fixed_effects",
        extra=extra,
    )
    by_school = np.bincount(d.school)
    z_school = np.bincount(d.school, weights=d.z)
    if not ((z_school > 0) & (z_school < by_school)).any():
        raise EstimationError(
            f"the assignment '{spec.treatment}' does not vary within any school: every school "
            "has only program or only control students, so no within-school impact exists"
        )
    builts = [build(d, o, spec.covariates[o.name], spec) for o in spec.outcomes]
    return Run(d, builts, spec)


def clusters(d: Prepared) -> IntArray:
    """Cluster codes of the CR standard errors: the cluster column, or the school."""
    return d.cluster if d.cluster is not None else d.school


def fit_all(
    d: Prepared, builts: Sequence[Built], spec: ImpactSpec, *, keep_arrays: bool = False
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
            clusters=clusters(d) if spec.se_type.startswith("CR") else None,
            keep_arrays=keep_arrays,
        )
        for i, f in zip(idx, out, strict=True):
            fits[i] = f
    return [f for f in fits if f is not None]


def _cox(p_t: float, p_c: float, n: int) -> float:
    if not (0 < p_t < 1 and 0 < p_c < 1):
        return float("nan")
    return wwc_omega(n) * (math.log(p_t / (1 - p_t)) - math.log(p_c / (1 - p_c))) / COX_SCALE


def _t_test(tstat: float, df: float, alpha: float) -> tuple[float, float]:
    """Two-sided p-value of a t statistic and the critical value for a 1 - alpha interval."""
    p = float(2 * special.stdtr(df, -abs(tstat))) if np.isfinite(tstat) else np.nan
    return p, float(special.stdtrit(df, 1 - alpha / 2))


def _check_fit(o: Outcome, b: Built, fit: _engine.Fit, spec: ImpactSpec) -> list[str]:
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


def impact_row(
    d: Prepared, o: Outcome, b: Built, fit: _engine.Fit, spec: ImpactSpec
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


def family_mask(roles: Sequence[str], family: str) -> BoolArray:
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
    in_family = family_mask(columns["role"], family)
    for col, fn in (("p_holm", holm), ("p_bonferroni", bonferroni)):
        adj = np.full(p.size, np.nan)
        if in_family.any():
            adj[in_family] = fn(p[in_family])
        columns[col] = list(adj)


def impacts(
    students: pd.DataFrame, spec: ImpactSpec
) -> tuple[Run, dict[str, list[Any]], list[str]]:
    """Every outcome's tidy row, as columns, with the adjusted p-values of the spec's family.

    Returns the run (for randomization inference on the same prepared data), the columns
    (one list per column, in the order of :meth:`cis_eval.ITTResult.to_frame` before the
    randomization-inference columns) and the notes on what was dropped, without repeats.
    """
    run = setup(students, spec)
    fits = fit_all(run.d, run.builts, spec)
    rows = []
    notes: list[str] = []
    for o, b, fit in zip(spec.outcomes, run.builts, fits, strict=True):
        row, n_ = impact_row(run.d, o, b, fit, spec)
        rows.append(row)
        notes += n_
    # one frame built once from columns (adding columns to a frame one by one is slow)
    columns: dict[str, list[Any]] = {key: [r[key] for r in rows] for key in rows[0]}
    _adjust(columns, spec.mtp_family)
    return run, columns, list(dict.fromkeys(notes))
