"""Complier average causal effects: the effect of receiving case management (2SLS).

Random assignment instruments receipt of Level 2 services, read from the contacts log or
from a column; the estimate is the intent-to-treat impact over the impact of assignment on
receipt, with school fixed effects and the ITT model's covariates.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from .._core.design import numeric
from .._core.impact import fit_all, impact_row, setup
from .._core.receipt import service_receipt
from .._core.spec import SE_TYPES, CovariateOption, ImpactSpec, SpecViews
from .._typing import SEType
from ..errors import DesignWarning, EstimationError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.results import ResultMixin
from ..present.table import Table, records
from ..schema import Outcome
from ._format import fmt_value, stars

__all__ = ["CACEResult", "estimate_cace"]


@dataclass(frozen=True, slots=True)
class CACEResult(SpecViews, ResultMixin):
    """Complier average causal effects (treatment on the treated) by two-stage least squares.

    The tidy frame (``to_frame()``; one row per outcome) has the columns ``outcome, label,
    type, unit, itt, itt_std_error, first_stage, first_stage_std_error, first_stage_f,
    receipt_treatment, receipt_control, estimate, std_error, statistic, df, p_value,
    conf_low, conf_high, n, control_mean, control_sd, se_type, estimand``. ``first_stage``
    is the impact of assignment on the share receiving services (a proportion);
    ``estimate`` is the CACE in outcome units.

    Attributes
    ----------
    spec : ImpactSpec
        The specification of the ITT model behind the first and second stages.
    receipt : str
        How receipt of services was defined.
    n_students : int
        Randomized students.
    notes : tuple of str
        Assumptions and anything left out.
    """

    _estimates: pd.DataFrame = field(repr=False)
    spec: ImpactSpec
    receipt: str
    n_students: int
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"CACEResult({len(self._estimates)} outcomes, {self.n_students:,} students, "
            f"receipt={self.receipt!r}, se={self.se_type})"
        )

    def table(self, *, title: str | None = None) -> Table:
        """Intent-to-treat and complier effects side by side, with the first stage."""
        rows = []
        for r in records(self._estimates):
            unit = " (%)" if r.type == "binary" else ""
            rows.append(
                {
                    "Outcome": f"{r.label}{unit}",
                    "ITT impact": fmt_value(r.itt, r.type, signed=True),
                    "First stage (pp)": f"{100 * float(r.first_stage):+.1f}",
                    "CACE (TOT)": fmt_value(r.estimate, r.type, signed=True) + stars(r.p_value),
                    "Std. error": fmt_value(r.std_error, r.type),
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
    students: pd.DataFrame,
    contacts: pd.DataFrame | None = None,
    *,
    received: str | None = None,
    min_contacts: int = 1,
    tier: int = 2,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: CovariateOption = "default",
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
    students : pandas.DataFrame
        Students table, as for :func:`~cis_eval.estimate_itt`. Not modified.
    contacts : pandas.DataFrame, optional
        The contacts log; needed unless ``received`` names a column of ``students``.
    received : str, optional
        Column of ``students`` with receipt (0/1), instead of deriving it from ``contacts``.
    min_contacts : int, default 1
        Contacts a student needs to count as served (a dose threshold; e.g. 10).
    tier : {2, 1}, default 2
        Tier of the contacts that count (2: case-managed Level 2 services).
    outcomes, treatment, block, covariates, se_type, cluster, alpha, chronic_threshold
        As in :func:`~cis_eval.estimate_itt` (school fixed effects estimand).

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
    spec = ImpactSpec.build(
        students,
        outcomes=outcomes,
        treatment=treatment,
        block=block,
        covariates=covariates,
        se_type=se_type,
        cluster=cluster,
        alpha=alpha,
        chronic_threshold=chronic_threshold,
    )
    if received is not None:
        if received not in students.columns:
            raise EstimationError(f"the data have no receipt column '{received}'")
        rec = numeric(students, received, "receipt")
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
        rec = service_receipt(students, contacts, min_contacts=min_contacts, tier=tier).to_numpy(
            dtype=float
        )
        receipt = (
            f"at least {min_contacts} Level {tier} contact{'s' if min_contacts > 1 else ''} "
            "in the contacts log"
        )
    run = setup(students, spec, extra={"received": rec})
    d = run.d
    received_col = d.unit("e:received")
    firsts = fit_all(
        d,
        [replace(b, problem=replace(b.problem, y=received_col)) for b in run.builts],
        spec,
    )
    itts = fit_all(d, run.builts, spec)
    ivs = []
    for b, first in zip(run.builts, firsts, strict=True):
        x = b.problem.x
        x_fit = x.copy()
        x_fit[:, 0] = x[:, list(first.kept)] @ first.coef  # fitted receipt (within schools)
        x_act = x.copy()
        x_act[:, 0] = received_col
        ivs.append(replace(b, problem=replace(b.problem, x=x_fit, x_actual=x_act)))
    iv_fits = fit_all(d, ivs, spec)
    receipt_t = float(d.extra["received"][d.z == 1].mean())
    receipt_c = float(d.extra["received"][d.z == 0].mean())
    rows = []
    notes: list[str] = []
    for o, b, first, itt_fit, iv in zip(
        spec.outcomes, run.builts, firsts, itts, iv_fits, strict=True
    ):
        itt_row, n_ = impact_row(d, o, b, itt_fit, spec)
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
        crit = float(stats.t.ppf(1 - spec.alpha / 2, iv.df))
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
                "se_type": spec.se_type,
                "estimand": "complier average causal effect (school fixed effects, 2SLS)",
            }
        )
    notes = list(dict.fromkeys(notes))
    for msg in notes:
        warnings.warn(msg, DesignWarning, stacklevel=2)
    return CACEResult(
        _estimates=pd.DataFrame(rows),
        spec=spec,
        receipt=receipt,
        n_students=len(students),
        notes=tuple(notes),
    )
