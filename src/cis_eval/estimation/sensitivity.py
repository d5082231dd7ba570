"""Impacts from nonlinear models beside the linear ones: a robustness check.

Binary outcomes are re-estimated with a logit and counts with a Poisson regression, both
with school indicators and the main model's covariates; the average marginal effect of
assignment is compared with the linear estimate from the same prepared data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._core.design import materialize
from .._core.impact import fit_all, impact_row, setup
from .._core.spec import CovariateOption, ImpactSpec
from ..errors import DesignWarning, EstimationError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.results import ResultMixin
from ..present.table import Table, records
from ..schema import Outcome
from ._format import fmt_value, stars

__all__ = ["SensitivityResult", "estimate_sensitivity"]


@dataclass(frozen=True, slots=True)
class SensitivityResult(ResultMixin):
    """Impacts from nonlinear models beside the linear ones (a robustness check).

    The tidy frame (``to_frame()``; one row per outcome) has the columns ``outcome, label,
    type, linear_estimate, linear_std_error, linear_p_value, model, estimate, std_error,
    p_value, ratio, ratio_name, n, n_schools_dropped``. ``estimate`` is the average marginal
    effect of assignment (percentage points for binary outcomes), comparable with
    ``linear_estimate``; ``ratio`` is the odds ratio (logit) or rate ratio (Poisson).

    Attributes
    ----------
    spec : ImpactSpec
        The specification of the linear model (school fixed effects, HC2).
    notes : tuple of str
        How each model was fitted and what was left out.
    """

    _estimates: pd.DataFrame = field(repr=False)
    spec: ImpactSpec
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"SensitivityResult({len(self._estimates)} outcomes)"

    def table(self, *, title: str | None = None) -> Table:
        """Linear and nonlinear impact estimates side by side."""
        rows = []
        for r in records(self._estimates):
            unit = " (%)" if r.type == "binary" else ""
            rows.append(
                {
                    "Outcome": f"{r.label}{unit}",
                    "Linear model": fmt_value(r.linear_estimate, r.type, signed=True)
                    + stars(r.linear_p_value),
                    "Model": r.model,
                    "Average marginal effect": fmt_value(r.estimate, r.type, signed=True)
                    + stars(r.p_value),
                    "Std. error": fmt_value(r.std_error, r.type),
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
    students: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: CovariateOption = "default",
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> SensitivityResult:
    """Re-estimate binary and count outcomes with logit and Poisson models.

    A check that the linear probability model's impacts do not hinge on linearity: binary
    outcomes get a logit with school indicators, count outcomes (suspensions) a Poisson
    regression with school indicators, both with the same covariates as the main model.
    Continuous outcomes are left out.

    Parameters
    ----------
    students : pandas.DataFrame
        Students table, as for :func:`~cis_eval.estimate_itt`. Not modified.
    outcomes, treatment, block, covariates, chronic_threshold
        As in :func:`~cis_eval.estimate_itt`; by default the binary and count outcomes of the study.

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

    spec = ImpactSpec.build(
        students,
        outcomes=outcomes,
        treatment=treatment,
        block=block,
        covariates=covariates,
        chronic_threshold=chronic_threshold,
    )
    run = setup(students, spec)
    d = run.d
    # the linear estimates come from the same prepared data as the nonlinear ones
    chosen = [i for i, o in enumerate(spec.outcomes) if o.type in ("binary", "count")]
    if not chosen:
        raise EstimationError("no binary or count outcome to re-estimate")
    builts = [run.builts[i] for i in chosen]
    linear: list[dict[str, Any]] = []
    notes: list[str] = []
    for i, b, fit in zip(chosen, builts, fit_all(d, builts, spec), strict=True):
        row, n_ = impact_row(d, spec.outcomes[i], b, fit, spec)
        linear.append(row)
        notes += n_
    for msg in dict.fromkeys(notes):
        warnings.warn(msg, DesignWarning, stacklevel=2)
    lin = pd.DataFrame(linear)
    metas = {spec.outcomes[i].name: spec.outcomes[i] for i in chosen}
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
    return SensitivityResult(_estimates=pd.DataFrame(rows), spec=spec, notes=tuple(notes))
