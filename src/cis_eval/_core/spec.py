"""The impact specification: every option of the impact verbs, checked once (private).

:class:`ImpactSpec` is built from the options of :func:`cis_eval.estimate_itt` (and of the
other impact verbs, and the integrity checks that reuse them) and the students table they
apply to: the outcomes are resolved to :class:`~cis_eval.schema.Outcome` objects and the
covariates to one tuple per outcome, so nothing downstream re-reads or re-checks an option.
Every result keeps the spec that produced it, as a linearmodels model keeps its
specification.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import get_args

import numpy as np
import pandas as pd

from .._typing import (
    Estimand,
    MTPFamily,
    RIStatistic,
    SEType,
    check_option,
    check_sims,
)
from ..errors import EstimationError, OptionError, OptionTypeError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..schema import OUTCOMES, Outcome
from .design import outcome_meta

__all__ = [
    "DEMOGRAPHICS",
    "ESTIMANDS",
    "SE_TYPES",
    "CovariateOption",
    "ImpactSpec",
    "default_covariates",
    "derivable",
    "resolve_outcomes",
]

CovariateOption = str | Sequence[str] | Mapping[str, Sequence[str]] | None
"""``"default"``, ``None``, one list of columns, or a mapping outcome -> list of columns."""

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


def derivable(o: Outcome, students: pd.DataFrame) -> bool:
    """Whether the raw fields an outcome is derived from are all columns of ``students``."""
    return bool(o.raw) and all(c in students.columns for c in o.raw)


def resolve_outcomes(
    students: pd.DataFrame, outcomes: Sequence[str | Outcome] | str | Outcome | None
) -> list[Outcome]:
    """The outcomes to analyse: the study's outcomes the data have, or the ones named.

    Raises :class:`~cis_eval.errors.OptionError` for an empty or repeated list and
    :class:`~cis_eval.errors.EstimationError` when the data have none of the study's
    outcomes or a named outcome is unknown.
    """
    if outcomes is None:
        found = [o for o in OUTCOMES if o.name in students.columns or derivable(o, students)]
        if not found:
            raise EstimationError(
                "the data have none of the study's outcomes (or the raw fields they are "
                "derived from); name the outcome columns with outcomes=[...]"
            )
        return found
    if isinstance(outcomes, (str, Outcome)):
        outcomes = [outcomes]
    if not outcomes:
        raise OptionError("outcomes is empty; name at least one outcome")
    names = [o.name if isinstance(o, Outcome) else str(o) for o in outcomes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise OptionError(f"outcome(s) listed twice: {', '.join(dup)}")
    return [outcome_meta(o, students) for o in outcomes]


def default_covariates(outcome: Outcome | str, students: pd.DataFrame | None = None) -> list[str]:
    """The default covariates of one outcome: its prior-year measure plus demographics.

    Parameters
    ----------
    outcome : Outcome or str
        An outcome of :data:`cis_eval.OUTCOMES` (or its name).
    students : pandas.DataFrame, optional
        When given, covariates that are not columns of ``students`` are left out.

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
    if students is not None:
        names = [c for c in names if c in students.columns]
    return list(dict.fromkeys(names))


def _resolve_covariates(
    outcomes: Sequence[Outcome], covariates: CovariateOption, students: pd.DataFrame
) -> dict[str, tuple[str, ...]]:
    if covariates is None:
        return {o.name: () for o in outcomes}
    if isinstance(covariates, str):
        if covariates != "default":
            raise OptionError(
                f"covariates={covariates!r}: give 'default', None, a list of columns or a "
                "mapping outcome -> list of columns"
            )
        return {o.name: tuple(default_covariates(o, students)) for o in outcomes}
    if isinstance(covariates, Mapping):
        unknown = set(covariates) - {o.name for o in outcomes}
        if unknown:
            raise EstimationError(
                f"covariates given for outcome(s) not estimated: {', '.join(sorted(unknown))}"
            )
        return {o.name: tuple(dict.fromkeys(covariates.get(o.name, []))) for o in outcomes}
    return {o.name: tuple(dict.fromkeys(covariates)) for o in outcomes}


def _check_alpha(alpha: object) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise OptionTypeError(f"alpha must be a number, got {type(alpha).__name__}")
    if not 0 < alpha < 1:
        raise OptionError(f"alpha must be strictly between 0 and 1, got {alpha!r}")


@dataclass(frozen=True, slots=True)
class ImpactSpec:
    """What an impact analysis estimates and how: resolved outcomes and checked options.

    Build it with :meth:`build`, which resolves the outcomes and covariates against the
    students table; constructing it directly checks the options only.

    Attributes
    ----------
    outcomes : tuple of Outcome
        The outcomes, in report order.
    covariates : mapping
        Covariates requested for each outcome (read-only; a collinear or empty covariate
        may still be left out of the fit, as the result's notes say).
    treatment, block : str
        Assignment and randomization-block columns.
    cluster : str or None
        Cluster column of the CR standard errors (``None``: the block).
    estimand, se_type : str
        See :data:`ESTIMANDS` and :data:`SE_TYPES`.
    lin : bool
        Covariates interacted with assignment (Lin 2013).
    alpha : float
        Confidence intervals are at level ``1 - alpha``.
    chronic_threshold : float
        Absence share that counts as chronic when chronic absence is derived.
    sims : int
        Within-school permutations for randomization inference (0: none).
    statistic : str
        Randomization-inference statistic.
    seed : int or None
        Seed of the permutations (``None`` without them, or when a Generator was passed).
    mtp_family : str
        Outcomes over which Holm, Bonferroni and Westfall-Young adjust.
    """

    outcomes: tuple[Outcome, ...]
    covariates: Mapping[str, tuple[str, ...]] = field(repr=False)
    treatment: str = "treatment"
    block: str = "school_id"
    cluster: str | None = None
    estimand: Estimand = "fixed_effects"
    se_type: SEType = "HC2"
    lin: bool = False
    alpha: float = 0.05
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD
    sims: int = 0
    statistic: RIStatistic = "studentized"
    seed: int | None = None
    mtp_family: MTPFamily = "confirmatory"

    def __post_init__(self) -> None:
        check_option("estimand", self.estimand, ESTIMANDS)
        check_option("se_type", self.se_type, SE_TYPES)
        check_option("statistic", self.statistic, get_args(RIStatistic))
        check_option("mtp_family", self.mtp_family, get_args(MTPFamily))
        _check_alpha(self.alpha)
        # Only the count: a Generator passed as the seed is used but not recorded, so a spec
        # with permutations may hold no seed (build() checked that one was given).
        if isinstance(self.sims, bool) or not isinstance(self.sims, int) or self.sims < 0:
            raise OptionError(f"sims must be a whole number of 0 or more, got {self.sims!r}")
        # a read-only view, so a frozen spec cannot be changed through its mapping
        object.__setattr__(
            self, "covariates", MappingProxyType({k: tuple(v) for k, v in self.covariates.items()})
        )

    @classmethod
    def build(
        cls,
        students: pd.DataFrame,
        *,
        outcomes: Sequence[str | Outcome] | str | Outcome | None = None,
        treatment: str = "treatment",
        block: str = "school_id",
        covariates: CovariateOption = "default",
        estimand: Estimand = "fixed_effects",
        lin: bool = False,
        se_type: SEType = "HC2",
        cluster: str | None = None,
        alpha: float = 0.05,
        chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
        sims: int = 0,
        statistic: RIStatistic = "studentized",
        seed: int | np.random.Generator | None = None,
        mtp_family: MTPFamily = "confirmatory",
    ) -> ImpactSpec:
        """Check the options and resolve outcomes and covariates against ``students``.

        Parameters are those of :func:`cis_eval.estimate_itt`.
        """
        check_option("statistic", statistic, get_args(RIStatistic))
        check_option("mtp_family", mtp_family, get_args(MTPFamily))
        sims = check_sims(sims, seed, what="randomization inference")
        check_option("estimand", estimand, ESTIMANDS)
        check_option("se_type", se_type, SE_TYPES)
        if not isinstance(students, pd.DataFrame):
            raise OptionTypeError(
                f"students must be a pandas DataFrame, got {type(students).__name__}"
            )
        _check_alpha(alpha)
        metas = resolve_outcomes(students, outcomes)
        cov_map = _resolve_covariates(metas, covariates, students)
        for o in metas:
            if o.name in cov_map[o.name] or treatment in cov_map[o.name]:
                raise EstimationError(
                    f"outcome '{o.name}': the covariates include the outcome or the assignment"
                )
        recorded = None if (not sims or isinstance(seed, np.random.Generator)) else seed
        return cls(
            outcomes=tuple(metas),
            covariates=cov_map,
            treatment=treatment,
            block=block,
            cluster=cluster,
            estimand=estimand,
            se_type=se_type,
            lin=bool(lin),
            alpha=float(alpha),
            chronic_threshold=chronic_threshold,
            sims=sims,
            statistic=statistic,
            seed=int(recorded) if recorded is not None else None,
            mtp_family=mtp_family,
        )

    @property
    def adjusted(self) -> bool:
        """Whether any outcome is adjusted for covariates."""
        return any(self.covariates.values())

    def describe(self) -> str:
        """The estimand and the estimator in one sentence (the impact table's first note)."""
        text = f"Estimand: {ESTIMANDS[self.estimand]}. " + (
            "OLS (a linear probability model for binary outcomes) with school fixed effects"
            if self.estimand == "fixed_effects"
            else "Within-school differences in means weighted across schools"
        )
        if self.adjusted:
            text += (
                ", adjusted for baseline covariates (each outcome's prior-year measure and "
                "demographics; missing values filled with the mean plus a missing indicator)"
            )
        return text + (", covariates interacted with assignment (Lin 2013)." if self.lin else ".")

    def __repr__(self) -> str:
        ri = f", sims={self.sims:,}, seed={self.seed}" if self.sims else ""
        return (
            f"ImpactSpec({len(self.outcomes)} outcomes, treatment={self.treatment!r}, "
            f"block={self.block!r}, estimand={self.estimand}, se={self.se_type}"
            f"{', lin' if self.lin else ''}, alpha={self.alpha:g}{ri})"
        )


class SpecViews:
    """Read-only views of a result's standard errors and level, from its :class:`ImpactSpec`.

    A mixin for the frozen result classes of the impact verbs, so each reads them from the
    one specification that produced it. (The estimand is not here: a complier effect's
    estimand is not the specification's intent-to-treat estimand.)
    """

    __slots__ = ()
    spec: ImpactSpec

    @property
    def se_type(self) -> str:
        """Standard-error type."""
        return self.spec.se_type

    @property
    def alpha(self) -> float:
        """Significance level of the confidence intervals."""
        return self.spec.alpha
