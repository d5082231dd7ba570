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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._core import engine as _engine
from .._core.impact import Run, family_mask, impacts
from .._core.multiplicity import westfall_young
from .._core.permutation import within_block_permutations
from .._core.randomization import cells_statistic, fixed_effects_statistic
from .._core.spec import SE_TYPES, CovariateOption, ImpactSpec, SpecViews
from .._typing import Estimand, FloatArray, MTPFamily, RIStatistic, SEType, rng_from
from ..errors import DesignWarning
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.results import ResultMixin
from ..present.table import Table, records
from ..schema import Outcome
from ._format import fmt_value, stars

__all__ = ["ITTResult", "estimate_itt"]


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class ITTResult(SpecViews, ResultMixin):
    """Intent-to-treat impact estimates for several outcomes.

    The tidy frame (``to_frame()``; one row per outcome, in report order) has the columns
    ``outcome, label, domain, role, type, direction, unit, estimate, std_error, statistic,
    df, p_value, conf_low, conf_high, n, n_treatment, n_control, n_schools, control_mean,
    program_mean_adjusted, control_sd, treatment_sd, effect_size, effect_size_low,
    effect_size_high, effect_size_type, favourable, improvement_index, covariates, p_bh,
    p_holm, p_bonferroni`` and, with randomization inference, ``p_ri, p_wy``; then
    ``se_type, estimand``. ``estimate``, ``std_error``, ``statistic``, ``p_value`` and
    ``conf_int()`` read it by outcome.

    Attributes
    ----------
    spec : ImpactSpec
        The specification that produced the estimates: outcomes, columns, covariates,
        estimand, standard errors, ``alpha``, randomization-inference settings.
    n_students, n_schools : int
        Randomized students and schools in the data.
    notes : tuple of str
        What was dropped or left out, and why.
    """

    _estimates: pd.DataFrame = field(repr=False)
    spec: ImpactSpec
    n_students: int
    n_schools: int
    notes: tuple[str, ...] = ()

    @property
    def estimand(self) -> str:
        """``"fixed_effects"``, ``"person_weighted"`` or ``"school_weighted"``."""
        return self.spec.estimand

    def __repr__(self) -> str:
        return (
            f"ITTResult({len(self._estimates)} outcomes, {self.n_students:,} students, "
            f"{self.n_schools:,} schools, estimand={self.estimand}, se={self.se_type})"
        )

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
                    "Program group": fmt_value(r.program_mean_adjusted, r.type),
                    "Control group": fmt_value(r.control_mean, r.type),
                    "Difference (impact)": fmt_value(r.estimate, r.type, signed=True)
                    + stars(r.p_value),
                    "Std. error": fmt_value(r.std_error, r.type),
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
            self.spec.describe(),
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
                f"RI p-value: randomization inference from {self.spec.sims:,} "
                f"within-school permutations ({self.spec.statistic} statistic, "
                f"seed {self.spec.seed})."
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


def estimate_itt(
    students: pd.DataFrame,
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
    mtp_family: MTPFamily = "confirmatory",
    sims: int = 0,
    statistic: RIStatistic = "studentized",
    seed: int | np.random.Generator | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> ITTResult:
    r"""Estimate intent-to-treat impacts of assignment to case management.

    Parameters
    ----------
    students : pandas.DataFrame
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
        (those present in ``students``); ``None``: no covariates; a list: the same covariates
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
    sims : int, default 0
        Within-school permutations for randomization inference and Westfall-Young
        adjusted p-values (10,000 is a good choice; 0 skips it).
    statistic : {"studentized", "unstudentized"}, default "studentized"
        Randomization-inference statistic: the t statistic (robust to unequal variances)
        or the impact estimate.
    seed : int or numpy.random.Generator, optional
        Seed of the permutations; required when ``sims > 0``.
    chronic_threshold : float, default 0.10
        Absence share that counts as chronic, when chronic absence is derived here.

    Returns
    -------
    ITTResult
        Tidy estimates (``to_frame()``), an MDRC-style ``table()`` and a forest ``plot()``;
        ``spec`` holds the options as resolved (outcomes, covariates per outcome).

    Raises
    ------
    OptionError
        An option value that is not allowed (``se_type``, ``estimand``, ``alpha``, ``sims``
        without a seed, an empty or repeated outcome list).
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
        sims=sims,
        statistic=statistic,
        seed=seed,
        mtp_family=mtp_family,
    )
    run, columns, notes = impacts(students, spec)
    n_rows = len(spec.outcomes)
    if spec.sims:
        rng = rng_from(seed)  # type: ignore[arg-type]  # check_sims made sure it is given
        observed, permuted = _permute(run, rng)
        with np.errstate(invalid="ignore"):
            # ties count as extreme; a permutation whose statistic is undefined counts too
            extreme = np.abs(np.nan_to_num(permuted, nan=np.inf)) >= np.abs(observed) - 1e-12
        columns["p_ri"] = list((1.0 + extreme.sum(axis=0)) / (1.0 + spec.sims))
        in_family = family_mask(columns["role"], spec.mtp_family)
        p_wy = np.full(n_rows, np.nan)
        if in_family.any():
            fam = np.flatnonzero(in_family)
            p_wy[fam] = westfall_young(
                np.abs(observed[fam]) - 1e-12, np.abs(np.nan_to_num(permuted[:, fam], nan=np.inf))
            )
        columns["p_wy"] = list(p_wy)
    columns["se_type"] = [spec.se_type] * n_rows
    columns["estimand"] = [spec.estimand] * n_rows
    for msg in notes:
        warnings.warn(msg, DesignWarning, stacklevel=2)
    return ITTResult(
        _estimates=pd.DataFrame(columns),
        spec=spec,
        n_students=len(students),
        n_schools=int(run.d.school_names.size),
        notes=tuple(notes),
    )


def _permute(run: Run, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Observed and permuted statistics, computed by the same functions (so they match).

    One matrix product per chunk of permutations serves every outcome (see
    :mod:`cis_eval._core.randomization`).
    """
    d, spec = run.d, run.spec
    stats_ = [
        fixed_effects_statistic(d, b, spec.statistic, spec.se_type)
        if spec.estimand == "fixed_effects"
        else cells_statistic(d, b, spec.statistic)
        for b in run.builts
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
    chunks = [stats_of(zp) for zp in within_block_permutations(d.z, starts, sizes, spec.sims, rng)]
    return observed, np.vstack(chunks)
