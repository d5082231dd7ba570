r"""Diagnose a planned trial by simulation: bias, RMSE, power, coverage and type-S error.

A :class:`TrialDesign` declares the trial (schools, students per school, share treated, the
effects hoped for, take-up, ICC, attrition); :func:`diagnose` simulates it many times with
the calibrated simulator, where the truth is known, estimates the impacts each time and
reports DeclareDesign's diagnosands for every outcome and estimator, each with its Monte
Carlo standard error.

Two modes answer two questions:

* ``mode="design"`` (default, *design-based*): one study-sized population is simulated,
  with both potential outcomes and the baseline covariates of every student; each
  replication re-runs the within-school lottery and redraws attrition, then estimates. The
  estimand is that population's sample average treatment effect (SATE) of assignment.
  This is the finite-population question "what does this design do for *these* schools
  and students?", and it is fast: the replications are matrix operations.
* ``mode="resample"``: every replication draws a new population with
  :func:`cis_eval.simulate` (its own lottery and attrition) and estimates. Diagnosands are
  given relative to each replication's SATE and to the superpopulation target effect. It
  also averages over the variation of populations, and is slower (one simulation each).

The replications are computed in batches by :mod:`cis_eval.design._diagnose_batched`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, get_args

import numpy as np
import pandas as pd
from scipy import stats

from .._typing import (
    BoolArray,
    Diagnosand,
    DiagnoseEstimand,
    DiagnoseMode,
    FloatArray,
    IntArray,
    check_option,
    rng_from,
)
from ..data.simulate import SCENARIOS, SimulatedTrial, SimulationParams, simulate
from ..errors import OptionError, OptionTypeError
from ..present.results import ResultMixin
from ..present.table import Table
from ..schema import OUTCOME_NAMES, OUTCOMES, Outcome
from ._diagnose_batched import _N_SOURCES, _draw_into, _estimate, _Masks, _population, _Scratch

__all__ = [
    "DIAGNOSANDS",
    "DIAGNOSE_ESTIMANDS",
    "DIAGNOSE_MODES",
    "ESTIMATORS",
    "GRID_PARAMETERS",
    "DiagnosisResult",
    "TrialDesign",
    "diagnose",
]

DIAGNOSE_ESTIMANDS: tuple[str, ...] = get_args(DiagnoseEstimand)
"""Estimands diagnosed: the names of :func:`cis_eval.estimate_itt`'s ``estimand``."""

# Each estimator is an (estimand, covariates) pair, named as in estimate_itt; the keys are
# private. "default" covariates are estimate_itt's default, "none" is covariates=None.
ESTIMATORS: dict[tuple[str, str], str] = {
    ("fixed_effects", "default"): (
        "OLS with school fixed effects and baseline covariates (each outcome's prior-year "
        "measure and demographics, missing values filled plus an indicator), HC2 standard "
        "errors: the default of estimate_itt"
    ),
    ("fixed_effects", "none"): "OLS with school fixed effects, no covariates, HC2 standard errors",
    ("person_weighted", "none"): (
        "blocked difference in means, school effects weighted by school size (the "
        "person-weighted estimand without covariates), HC2 (Neyman) standard errors"
    ),
}
"""Estimators on offer, as (estimand, covariates) pairs, and what each is."""

_KEY: dict[tuple[str, str], str] = {
    ("fixed_effects", "default"): "fixed_effects",
    ("fixed_effects", "none"): "fixed_effects_none",
    ("person_weighted", "none"): "person_weighted_none",
}
_PAIR: dict[str, tuple[str, str]] = {v: k for k, v in _KEY.items()}

_SHORT: dict[str, str] = {
    "fixed_effects": "School FE + covariates",
    "fixed_effects_none": "School FE",
    "person_weighted_none": "Person-weighted",
}

DIAGNOSE_MODES: dict[str, str] = {
    "design": (
        "design-based: one simulated population, the lottery and attrition redrawn in "
        "every replication; estimand = that population's SATE"
    ),
    "resample": (
        "resampled: a new simulated population (with its own lottery and attrition) in every "
        "replication; estimand = each replication's SATE"
    ),
}
"""Simulation modes (see the module notes)."""

DIAGNOSANDS: dict[str, str] = {
    "mean_estimate": "mean of the estimates",
    "bias": "mean of (estimate - estimand)",
    "rmse": "root mean squared error, sqrt(mean((estimate - estimand)^2))",
    "power": "share of replications with p < alpha (two-sided t test)",
    "coverage": "share of 1 - alpha confidence intervals that contain the estimand",
    "type_s": "among significant estimates, share whose sign is opposite to the estimand's",
    "mean_se": "mean of the estimated standard errors",
    "sd_estimate": "standard deviation of the estimates (the true standard error)",
    "bias_target": "mean of (estimate - target effect of the superpopulation)",
    "coverage_target": "share of confidence intervals that contain the target effect",
}
"""The diagnosands reported (each with a Monte Carlo standard error ``<name>_mc_se``)."""

_DESIGN_GRID = (
    "schools",
    "students_per_school",
    "n_students",
    "share_treated",
    "icc",
    "take_up",
    "crossover",
    "attrition",
    "differential_attrition",
)
GRID_PARAMETERS: tuple[str, ...] = _DESIGN_GRID + OUTCOME_NAMES
"""What a grid may vary: a design field, or an outcome's name (its effect)."""

STUDY_STUDENTS_PER_SCHOOL = 2230 / 28
"""Published: about 2,230 students in 28 schools (Corrin et al. 2015)."""

# (replications x students) per chunk: each (chunk, students) array stays a few megabytes.
CHUNK_ELEMENTS = 1 << 18
# Replications per random stream (a chunk holds one or more whole blocks).
BLOCK = 16


def _fail(message: str) -> OptionError:
    """A value of the design or of an option out of its range or of the wrong kind."""
    return OptionError(message)


def _number(name: str, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise _fail(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise _fail(f"{name} must be finite, got {out}")
    return out


def _whole(name: str, value: object, minimum: int) -> int:
    v = _number(name, value)
    if not v.is_integer():
        raise _fail(f"{name} must be a whole number, got {value!r}")
    if v < minimum:
        raise _fail(f"{name} must be at least {minimum}, got {int(v)}")
    return int(v)


# ----------------------------------------------------------------------------- design


class _Effects(Mapping[str, float]):
    """A read-only mapping outcome -> effect that pickles (unlike ``MappingProxyType``)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, float]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> float:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return repr(self._items)


@dataclass(frozen=True, slots=True)
class TrialDesign:
    """A planned trial: the declaration every diagnosis (and grid) starts from.

    The fields map onto :func:`cis_eval.simulate` (``schools`` is ``n_schools``,
    ``share_treated`` is ``p_treat``) and keep the names of :func:`cis_eval.power` where
    they mean the same thing.

    Parameters
    ----------
    schools : int, default 28
        Number of schools (randomization blocks); at least 2.
    students_per_school : float, optional
        Average number of randomized students per school. Give this or ``n_students``
        (not both); when neither is given, the study's 2,230 / 28 (about 79.6).
    n_students : int, optional
        Total number of randomized students (instead of ``students_per_school``).
    share_treated : float, default 1140 / 2230
        Share assigned to the program in every school (strictly between 0 and 1).
    effects : mapping, optional
        True ITT effects by outcome in outcome units (proportions for binary outcomes,
        e.g. ``{"chronic_absence": -0.06}``); outcomes not named have no effect. Default:
        the illustrative ``"interim"`` scenario of :func:`cis_eval.simulate`.
    icc : float, default 0.10
        Share of the variance of the students' latent risk that lies between schools (the
        simulator's ``icc``; each outcome's own ICC follows from it and is not the
        ``icc`` input of :func:`cis_eval.power`).
    take_up : float, default 0.87
        Share of students served if assigned (at most ``consent_rate``).
    crossover : float, default 0.03
        Share served whatever their assignment (always-takers).
    consent_rate : float, default 0.93
        Share of students who consent (only they can be served).
    attrition : float, default 0.08
        Share of students missing each outcome (three quarters whole-record loss, the rest
        outcome-specific, as in the simulator).
    differential_attrition : float, default 0.0
        Program minus control attrition.
    baseline_missing : float, default 0.02
        Share of missing values of each prior-year covariate.
    chronic_threshold : float, default 0.10
        Absence share that counts as chronic.

    Raises
    ------
    DesignError
        A value out of range, naming the argument.

    Examples
    --------
    >>> from cis_eval.design.diagnose import TrialDesign
    >>> TrialDesign(schools=20, students_per_school=60, effects={"chronic_absence": -0.05})
    TrialDesign(20 schools x 60.0 students = 1,200, 51% treated, effects: chronic_absence -0.05)
    """

    schools: int = 28
    students_per_school: float | None = None
    n_students: int | None = None
    share_treated: float = 1140 / 2230
    effects: Mapping[str, float] = field(default_factory=lambda: dict(SCENARIOS["interim"]))
    icc: float = 0.10
    take_up: float = 0.87
    crossover: float = 0.03
    consent_rate: float = 0.93
    attrition: float = 0.08
    differential_attrition: float = 0.0
    baseline_missing: float = 0.02
    chronic_threshold: float = 0.10

    def __post_init__(self) -> None:
        schools = _number("schools", self.schools)
        if not schools.is_integer():
            raise _fail(f"schools must be a whole number, got {self.schools!r}")
        if schools < 2:
            raise _fail(
                f"schools = {int(schools)}: a blocked design needs at least 2 schools "
                "(students are randomized within schools)"
            )
        object.__setattr__(self, "schools", int(schools))
        if self.students_per_school is not None and self.n_students is not None:
            raise _fail("give students_per_school or n_students, not both")
        if self.n_students is not None:
            n = _whole("n_students", self.n_students, 1)
            if n < 4 * self.schools:
                raise _fail(
                    f"n_students = {n:,} is fewer than 4 per school for {self.schools} "
                    "schools; each school needs at least 4 students"
                )
            object.__setattr__(self, "n_students", n)
        else:
            sps = (
                STUDY_STUDENTS_PER_SCHOOL
                if self.students_per_school is None
                else _number("students_per_school", self.students_per_school)
            )
            if sps < 4:
                raise _fail(f"students_per_school = {sps:g}: each school needs at least 4 students")
            object.__setattr__(self, "students_per_school", sps)
        checks = {
            "share_treated": (0.0, 1.0, True, True),
            "icc": (0.0, 1.0, False, True),
            "take_up": (0.0, 1.0, False, False),
            "crossover": (0.0, 1.0, False, False),
            "consent_rate": (0.0, 1.0, True, False),
            "attrition": (0.0, 1.0, False, True),
            "differential_attrition": (-1.0, 1.0, False, False),
            "baseline_missing": (0.0, 1.0, False, True),
            "chronic_threshold": (0.0, 1.0, True, True),
        }
        for name, (lo, hi, lo_open, hi_open) in checks.items():
            v = _number(name, getattr(self, name))
            if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
                lb, hb = "(" if lo_open else "[", ")" if hi_open else "]"
                raise _fail(f"{name} must be in {lb}{lo:g}, {hi:g}{hb}, got {v:g}")
            object.__setattr__(self, name, v)
        if not isinstance(self.effects, Mapping):
            raise _fail(f"effects must be a mapping outcome -> effect, got {self.effects!r}")
        unknown = sorted(set(self.effects) - set(OUTCOME_NAMES))
        if unknown:
            raise _fail(
                f"effects: unknown outcome(s) {', '.join(map(repr, unknown))}; known: "
                f"{', '.join(OUTCOME_NAMES)}"
            )
        eff = {o: _number(f"effects[{o!r}]", self.effects.get(o, 0.0)) for o in OUTCOME_NAMES}
        for o in OUTCOMES:
            if o.type == "binary" and abs(eff[o.name]) >= 1:
                raise _fail(
                    f"effects[{o.name!r}] = {eff[o.name]:g}: binary effects are proportions "
                    "(-0.06 is 6 percentage points)"
                )
        object.__setattr__(self, "effects", _Effects(eff))
        try:
            self._params().check()
        except ValueError as exc:
            msg = str(exc).replace("p_treat", "share_treated").replace("n_schools", "schools")
            raise _fail(f"invalid design: {msg}") from exc

    @property
    def total_students(self) -> int:
        """Number of randomized students."""
        if self.n_students is not None:
            return int(self.n_students)
        return round(self.schools * float(self.students_per_school or 0.0))

    def _params(self) -> SimulationParams:
        kw = self.simulate_kwargs()
        kw.pop("effects")
        kw.pop("scenario")
        return SimulationParams(**kw)

    def simulate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`cis_eval.simulate` for one population of this design."""
        return {
            "scenario": "null",
            "effects": dict(self.effects),
            "n_schools": self.schools,
            "n_students": self.total_students,
            "p_treat": self.share_treated,
            "icc": self.icc,
            "take_up": self.take_up,
            "crossover": self.crossover,
            "consent_rate": self.consent_rate,
            "attrition": self.attrition,
            "differential_attrition": self.differential_attrition,
            "baseline_missing": self.baseline_missing,
            "chronic_threshold": self.chronic_threshold,
            "contacts": False,
        }

    def simulate(self, *, seed: int | np.random.Generator) -> SimulatedTrial:
        """One trial of this design (no contacts log), from :func:`cis_eval.simulate`."""
        return simulate(seed=seed, **self.simulate_kwargs())

    def vary(self, parameter: str, value: float) -> TrialDesign:
        """A copy with one grid parameter changed (a design field or an outcome's effect).

        Changing ``students_per_school`` keeps it and drops ``n_students`` (and the other
        way round), so the other size follows.
        """
        if parameter not in GRID_PARAMETERS:
            raise _fail(
                f"grid parameter {parameter!r} is not an option; choose one of "
                f"{', '.join(GRID_PARAMETERS)}"
            )
        changes: dict[str, Any] = {parameter: value}
        if parameter in OUTCOME_NAMES:
            changes = {"effects": {**self.effects, parameter: value}}
        elif parameter == "students_per_school":
            changes["n_students"] = None
        elif parameter == "n_students":
            changes["students_per_school"] = None
        # the checks of __post_init__ run again (a whole number of schools, ranges)
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        sps = self.total_students / self.schools
        eff = ", ".join(f"{k} {v:+g}" for k, v in self.effects.items() if v != 0) or "none"
        return (
            f"TrialDesign({self.schools} schools x {sps:.1f} students = {self.total_students:,}, "
            f"{self.share_treated:.0%} treated, effects: {eff.replace('+', '')})"
        )


# ----------------------------------------------------------------------------- diagnosands


def _inference(
    est: FloatArray, se: FloatArray, df: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """Two-sided t-test p-values and the critical values of the confidence intervals."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = est / se
        p = 2.0 * stats.t.sf(np.abs(tstat), df)
        crit = stats.t.ppf(1.0 - alpha / 2.0, df)
    return np.asarray(p, dtype=float), np.asarray(crit, dtype=float)


def _nanmean(v: FloatArray) -> float:
    """Mean of the defined values (NaN if none).

    A trial without a high school has no core credits, so no SATE for them.
    """
    ok = np.isfinite(v)
    return float(v[ok].mean()) if ok.any() else float("nan")


def _mean_se(v: FloatArray) -> tuple[float, float]:
    n = v.size
    if n == 0:
        return float("nan"), float("nan")
    sd = float(np.std(v, ddof=1)) if n > 1 else float("nan")
    return float(np.mean(v)), sd / math.sqrt(n)


def _share_se(hits: BoolArray) -> tuple[float, float]:
    n = hits.size
    if n == 0:
        return float("nan"), float("nan")
    p = float(np.mean(hits))
    return p, math.sqrt(p * (1.0 - p) / n)


def _diagnosands(
    est: FloatArray,
    se: FloatArray,
    df: FloatArray,
    estimand: FloatArray,
    target: float,
    alpha: float,
) -> dict[str, float]:
    """Diagnosands and their Monte Carlo standard errors from one set of replications.

    Replications with an undefined estimate, standard error or estimand are left out
    (counted in ``n_failed``). Monte Carlo standard errors: ``sd / sqrt(R)`` for means (mean estimate,
    bias, mean SE), ``sqrt(p (1 - p) / R)`` for shares (power, coverage; type-S over the
    significant replications), the delta method for the RMSE, ``se(MSE) / (2 RMSE)``, and
    the normal-theory ``sd / sqrt(2 (R - 1))`` for the standard deviation of the estimates.
    """
    est = np.asarray(est, dtype=float)
    estimand = np.broadcast_to(np.asarray(estimand, dtype=float), est.shape)
    ok = np.isfinite(est) & np.isfinite(se) & np.isfinite(df) & (df > 0) & np.isfinite(estimand)
    e, s, d, truth = est[ok], se[ok], df[ok], estimand[ok]
    p, crit = _inference(e, s, d, alpha)
    sig = p < alpha
    err = e - truth
    out: dict[str, float] = {"sims": float(est.size), "n_failed": float((~ok).sum())}
    out["mean_estimate"], out["mean_estimate_mc_se"] = _mean_se(e)
    out["bias"], out["bias_mc_se"] = _mean_se(err)
    mse, mse_se = _mean_se(err * err)
    rmse = math.sqrt(mse) if np.isfinite(mse) else float("nan")
    out["rmse"] = rmse
    out["rmse_mc_se"] = mse_se / (2 * rmse) if rmse > 0 else 0.0 if rmse == 0 else float("nan")
    out["power"], out["power_mc_se"] = _share_se(sig)
    out["coverage"], out["coverage_mc_se"] = _share_se(np.abs(err) <= crit * s)
    signed = sig & (truth != 0)
    out["type_s"], out["type_s_mc_se"] = _share_se(np.sign(e[signed]) != np.sign(truth[signed]))
    out["mean_se"], out["mean_se_mc_se"] = _mean_se(s)
    n = e.size
    sd = float(np.std(e, ddof=1)) if n > 1 else float("nan")
    out["sd_estimate"] = sd
    out["sd_estimate_mc_se"] = sd / math.sqrt(2 * (n - 1)) if n > 1 else float("nan")
    out["bias_target"], out["bias_target_mc_se"] = _mean_se(e - target)
    out["coverage_target"], out["coverage_target_mc_se"] = _share_se(np.abs(e - target) <= crit * s)
    return out


# ----------------------------------------------------------------------------- result


_COLUMNS = (
    "estimator",
    "covariates",
    "outcome",
    "unit",
    "estimand",
    "target_effect",
    "sims",
    "n_failed",
    "mean_estimate",
    "mean_estimate_mc_se",
    "bias",
    "bias_mc_se",
    "rmse",
    "rmse_mc_se",
    "power",
    "power_mc_se",
    "coverage",
    "coverage_mc_se",
    "type_s",
    "type_s_mc_se",
    "mean_se",
    "mean_se_mc_se",
    "sd_estimate",
    "sd_estimate_mc_se",
    "bias_target",
    "bias_target_mc_se",
    "coverage_target",
    "coverage_target_mc_se",
)


def _unit(o: Outcome) -> str:
    return o.unit or ("percentage points" if o.type == "binary" else "")


def _digits(o: Outcome) -> int:
    if o.type == "binary":
        return 2
    return 4 if o.unit.startswith("proportion") else 3


@dataclass(frozen=True, slots=True)
class DiagnosisResult(ResultMixin):
    """Diagnosands of a design (or of a grid of designs) for several estimators.

    The tidy frame (``to_frame()``) has one row per grid point, estimator and outcome, with
    the columns: the grid parameters (if any), then ``estimator, outcome, unit, estimand,
    target_effect, sims, n_failed`` and each diagnosand of :data:`DIAGNOSANDS` followed by
    its Monte Carlo standard error ``<name>_mc_se``. Estimates are in reporting units
    (percentage points for binary outcomes); ``estimand`` is the SATE (its mean over
    replications in resample mode) and ``target_effect`` the effect declared.

    Attributes
    ----------
    design : TrialDesign
        The declared design (the grid varies it).
    estimators : tuple of (str, str)
        Estimators diagnosed, as (estimand, covariates) pairs (keys of :data:`ESTIMATORS`;
        covariates ``"default"`` or ``"none"``).
    sims : int
        Replications per design.
    seed : int or None
        The seed (None when a Generator was passed).
    mode : {"design", "resample"}
        Design-based (one population) or resampled (a population per replication).
    alpha : float
        Level of the tests; confidence intervals have level ``1 - alpha``.
    grid : tuple of (str, tuple of float)
        The grid parameters and their values (empty without a grid).
    """

    design: TrialDesign
    estimators: tuple[tuple[str, str], ...]
    sims: int
    seed: int | None
    mode: str
    alpha: float
    grid: tuple[tuple[str, tuple[float, ...]], ...]
    _frame: pd.DataFrame = field(repr=False)
    _draws: pd.DataFrame = field(repr=False)
    _tidy_field: ClassVar[str] = "_frame"

    def __repr__(self) -> str:
        n_out = self._frame["outcome"].nunique()
        points = len(self._frame) // max(1, n_out * len(self.estimators))
        grid = f", {points} grid points" if self.grid else ""
        return (
            f"DiagnosisResult({n_out} outcomes, {len(self.estimators)} estimator"
            f"{'s' if len(self.estimators) != 1 else ''}, {self.sims:,} simulations, "
            f"mode={self.mode}{grid})"
        )

    def draws(self) -> pd.DataFrame:
        """Every replication's estimate (a fresh copy).

        Columns: the grid parameters (if any), ``estimator, outcome, sim, estimate,
        std_error, df, p_value, conf_low, conf_high, estimand, population_seed``; the last
        reproduces the replication's population with ``design.simulate(seed=...)`` (the
        same for every replication in design mode).
        """
        return self._draws.copy()

    def table(self, *, title: str | None = None) -> Table:
        """Diagnosands with Monte Carlo standard errors in parentheses, reader labels."""
        f = self._frame
        metas = {o.name: o for o in OUTCOMES}
        rows = []
        for rec in f.to_dict("records"):
            o = metas[rec["outcome"]]
            dg = _digits(o)

            def cell(name: str, digits: int, rec: Mapping[Any, Any] = rec) -> str:
                v, s = rec[name], rec[f"{name}_mc_se"]
                if not np.isfinite(v):
                    return ""
                return f"{v:.{digits}f} ({s:.{digits}f})"

            row: dict[str, Any] = {"Outcome": o.label}
            if len(self.estimators) > 1:
                row["Estimator"] = _SHORT[_KEY[rec["estimator"], rec["covariates"]]]
            for key, _ in self.grid:
                row[key.replace("_", " ").capitalize()] = rec[key]
            row["Estimand"] = f"{rec['estimand']:.{dg}f}"
            row["Mean estimate"] = cell("mean_estimate", dg)
            row["Bias"] = cell("bias", dg)
            row["RMSE"] = cell("rmse", dg)
            row["Mean SE"] = cell("mean_se", dg)
            row["SD of estimates"] = cell("sd_estimate", dg)
            row["Power"] = cell("power", 3)
            row["Coverage"] = cell("coverage", 3)
            row["Type S"] = cell("type_s", 3)
            if self.mode == "resample":
                row["Target"] = f"{rec['target_effect']:.{dg}f}"
                row["Bias (target)"] = cell("bias_target", dg)
                row["Coverage (target)"] = cell("coverage_target", 3)
            rows.append(row)
        d = self.design
        notes = [
            f"{self.sims:,} simulations per design, {DIAGNOSE_MODES[self.mode]}.",
            f"Design: {d!r}; take-up {d.take_up:g}, ICC {d.icc:g}, attrition {d.attrition:g}"
            + (f" (differential {d.differential_attrition:+g})" if d.differential_attrition else "")
            + ".",
            *(f"{_SHORT[_KEY[e]]}: {ESTIMATORS[e]}." for e in self.estimators),
            f"Power: share of two-sided t tests with p < {self.alpha:g}; coverage of "
            f"{1 - self.alpha:.0%} confidence intervals; type S: share of significant "
            "estimates with the wrong sign (blank when the estimand is zero).",
            "Monte Carlo standard errors in parentheses (binomial for shares, delta method "
            "for the RMSE). Binary outcomes in percentage points.",
        ]
        if self.mode == "resample":
            notes.append(
                "Estimand: the mean of the replications' SATEs; Target: the effect declared "
                "(the superpopulation's), with bias and coverage relative to it."
            )
        if self.seed is not None:
            notes.append(f"Seed {self.seed}.")
        failed = int(f["n_failed"].sum())
        if failed:
            notes.append(
                f"{failed:,} replications had no defined estimate, standard error or estimand "
                "(e.g. no high school for core credits) and were left out (n_failed)."
            )
        formats = {key.replace("_", " ").capitalize(): "g" for key, _ in self.grid}
        return Table(
            pd.DataFrame(rows),
            title=title or "Design diagnosis by simulation",
            notes=tuple(notes),
            formats=formats,
        )

    def plot(
        self,
        ax: Any = None,
        *,
        diagnosand: Diagnosand = "power",
        by: str | None = None,
        at: Mapping[str, float] | None = None,
        estimand: str | None = None,
        outcomes: Sequence[str] | None = None,
    ) -> Any:
        """Plot one diagnosand across the grid (or by outcome without a grid).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is made when omitted.
        diagnosand : str, default "power"
            A key of :data:`DIAGNOSANDS` (``"power"`` and ``"coverage"`` are the usual).
        by : str, optional
            Grid parameter on the horizontal axis (default: the first).
        at : mapping, optional
            Values of the other grid parameters (default: the first value of each).
        estimand : str, optional
            Only the estimators of this estimand (default: all, one line style each).
        outcomes : sequence of str, optional
            Only these outcomes (default: all).

        Returns
        -------
        matplotlib.axes.Axes
            Bands (or bars) are 95% Monte Carlo intervals, 1.96 Monte Carlo standard errors.
        """
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        check_option("diagnosand", diagnosand, DIAGNOSANDS)
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4))
        f = self._frame
        if estimand is not None:
            check_option("estimand", estimand, list(dict.fromkeys(e for e, _ in self.estimators)))
        ests = [p for p in self.estimators if estimand is None or p[0] == estimand]
        outs = list(outcomes) if outcomes else list(dict.fromkeys(f["outcome"]))
        for o in outs:
            check_option("outcome", o, list(dict.fromkeys(f["outcome"])))
        labels = {o.name: o.label for o in OUTCOMES}
        styles = ("-", "--", ":")
        colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        keys = [k for k, _ in self.grid]
        se_col = f"{diagnosand}_mc_se"
        if keys:
            x = by or keys[0]
            check_option("by", x, keys)
            fixed = {k: v[0] for k, v in self.grid if k != x}
            fixed.update({k: float(v) for k, v in (at or {}).items() if k != x})
            for k, v in fixed.items():
                check_option(f"at[{k!r}]", v, dict(self.grid).get(k, ()))
                f = f[f[k] == v]
            for i, o in enumerate(outs):
                for j, e in enumerate(ests):
                    sub = f[
                        (f["outcome"] == o) & (f["estimator"] == e[0]) & (f["covariates"] == e[1])
                    ].sort_values(x)
                    xs = sub[x].to_numpy(dtype=float)
                    ys = sub[diagnosand].to_numpy(dtype=float)
                    half = 1.96 * sub[se_col].to_numpy(dtype=float)
                    color = colors[i % len(colors)]
                    ax.plot(xs, ys, marker="o", markersize=3, color=color, ls=styles[j % 3])
                    ax.fill_between(xs, ys - half, ys + half, color=color, alpha=0.12, lw=0)
            ax.set_xlabel(x.replace("_", " ").capitalize())
            handles = [
                Line2D([], [], color=colors[i % len(colors)], label=labels.get(o, o))
                for i, o in enumerate(outs)
            ]
            if len(ests) > 1:
                handles += [
                    Line2D([], [], color="0.3", ls=styles[j % 3], label=_SHORT[_KEY[e]])
                    for j, e in enumerate(ests)
                ]
            ax.legend(
                handles=handles,
                frameon=False,
                fontsize="small",
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
            )
            if fixed:
                shown = ", ".join(f"{k} = {v:g}" for k, v in fixed.items())
                ax.annotate(shown, (0.01, 0.01), xycoords="axes fraction", fontsize="small")
        else:
            pos = 0
            ticks, names = [], []
            for i, o in enumerate(outs):
                for j, e in enumerate(ests):
                    rec = f[
                        (f["outcome"] == o) & (f["estimator"] == e[0]) & (f["covariates"] == e[1])
                    ].iloc[0]
                    ax.errorbar(
                        [rec[diagnosand]],
                        [-pos],
                        xerr=[1.96 * rec[se_col]],
                        marker="os^"[j % 3],
                        capsize=2,
                        color=colors[i % len(colors)],
                        linestyle="none",
                    )
                    ticks.append(-pos)
                    names.append(
                        labels.get(o, o) + (f" ({_SHORT[_KEY[e]]})" if len(ests) > 1 else "")
                    )
                    pos += 1
            ax.set_yticks(ticks, names)
        ref = {
            "power": (0.8, self.alpha),
            "coverage": (1 - self.alpha,),
            "coverage_target": (1 - self.alpha,),
            "bias": (0.0,),
            "bias_target": (0.0,),
            "type_s": (0.0,),
        }.get(diagnosand, ())
        for v in ref:
            (ax.axhline if keys else ax.axvline)(v, linestyle=":", color="0.5", linewidth=1)
        name = diagnosand.replace("_", " ")
        (ax.set_ylabel if keys else ax.set_xlabel)(name.capitalize())
        ax.set_title(f"{name.capitalize()} ({self.sims:,} simulations)", fontsize="medium")
        return ax


# ----------------------------------------------------------------------------- verb


def _estimators(estimand: object, covariates: object) -> tuple[str, ...]:
    """The estimators of every (estimand, covariates) pair asked for (private keys)."""
    ests = (estimand,) if isinstance(estimand, str) else tuple(estimand)  # type: ignore[arg-type]
    covs = (
        (covariates,) if covariates is None or isinstance(covariates, str) else tuple(covariates)  # type: ignore[arg-type]
    )
    if not ests:
        raise _fail("estimand is empty; name at least one of " + ", ".join(DIAGNOSE_ESTIMANDS))
    if not covs:
        raise _fail('covariates is empty; give "default", None or both')
    for e in ests:
        check_option("estimand", e, DIAGNOSE_ESTIMANDS)
    for c in covs:
        check_option("covariates", c, ("default", None))
    if len(set(ests)) != len(ests) or len(set(covs)) != len(covs):
        raise _fail("estimand and covariates must not repeat a value")
    keys = []
    for e in ests:
        for c in covs:
            pair = (str(e), "none" if c is None else "default")
            if pair not in _KEY:
                raise _fail(
                    f"estimand={e!r} is diagnosed without covariates only: pass "
                    "covariates=None (diagnose it in a call of its own to compare it with "
                    "covariate-adjusted fixed effects)"
                )
            keys.append(_KEY[pair])
    return tuple(keys)


def _grid(
    design: TrialDesign, grid: Mapping[str, Sequence[float]] | None
) -> tuple[tuple[tuple[str, tuple[float, ...]], ...], list[tuple[dict[str, float], TrialDesign]]]:
    if not grid:
        return (), [({}, design)]
    if not isinstance(grid, Mapping):
        raise _fail("grid must be a mapping parameter -> list of values")
    spec = []
    for key, values in grid.items():
        if key not in GRID_PARAMETERS:
            raise _fail(
                f"grid parameter {key!r} is not an option; choose one of "
                f"{', '.join(GRID_PARAMETERS)}"
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            raise _fail(f"grid[{key!r}] must be a list of values")
        vals = tuple(_number(f"grid[{key!r}]", v) for v in values)
        if not vals:
            raise _fail(f"grid[{key!r}] is empty")
        spec.append((key, vals))
    points = []
    for combo in itertools.product(*(v for _, v in spec)):
        d = design
        for (key, _), value in zip(spec, combo, strict=True):
            d = d.vary(key, value)
        points.append((dict(zip((k for k, _ in spec), combo, strict=True)), d))
    return tuple(spec), points


def _stream(base: int, *key: int) -> np.random.Generator:
    """An independent random stream for one role (population, block of replications)."""
    return np.random.default_rng(np.random.SeedSequence(base, spawn_key=key))


def _seed_of(base: int, *key: int) -> int:
    """A non-negative integer seed for :func:`cis_eval.simulate`, from its own stream."""
    state = np.random.SeedSequence(base, spawn_key=key).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


@contextmanager
def _no_pool() -> Iterator[None]:
    yield None


def _run_design(
    design: TrialDesign,
    estimators: tuple[str, ...],
    sims: int,
    base: int,
    bar: Any,
    workers: int,
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Design-based replications: (3, outcomes, estimators, sims), estimands, targets, seeds.

    Replications come in blocks of ``BLOCK``, each drawn from its own stream, so results do
    not depend on how blocks are grouped into chunks, and a run with more replications
    begins with the same ones.
    """
    pop_seed = _seed_of(base, 0)
    pop = _population(design.simulate(seed=pop_seed), covariates="fixed_effects" in estimators)
    per_chunk = max(1, CHUNK_ELEMENTS // max(pop.n, 1) // BLOCK)
    out = np.empty((3, len(pop.outcomes), len(estimators), sims))
    n_blocks = -(-sims // BLOCK)
    scratch = _Scratch()
    zr_all = np.empty((min(per_chunk, n_blocks) * BLOCK, pop.n))
    keep_all = np.empty((_N_SOURCES, zr_all.shape[0], pop.n), dtype=bool)
    with ThreadPoolExecutor(workers) if workers > 1 else _no_pool() as pool:
        for first in range(0, n_blocks, per_chunk):
            blocks = range(first, min(first + per_chunk, n_blocks))
            # whole blocks are drawn (the last one cut short): a longer run starts the same
            for j, b in enumerate(blocks):
                rows = slice(j * BLOCK, (j + 1) * BLOCK)
                rng = _stream(base, 1, b)
                _draw_into(pop, design, rng, zr_all[rows], keep_all[:, rows], scratch)
            lo = first * BLOCK
            r = min(len(blocks) * BLOCK, sims - lo)
            masks = _Masks(pop, keep_all[:, :r])
            out[..., lo : lo + r] = _estimate(pop, estimators, zr_all[:r], masks, pool, scratch)
            bar.update(r)
    sate = np.array([po.sate for po in pop.outcomes])
    target = np.array([po.target for po in pop.outcomes])
    seeds = np.full(sims, pop_seed, dtype=np.int64)
    return out, np.repeat(sate[:, None], sims, axis=1), target, seeds


def _run_resample(
    design: TrialDesign,
    estimators: tuple[str, ...],
    sims: int,
    base: int,
    bar: Any,
    workers: int,
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """A new population per replication, with its own lottery and attrition."""
    seeds = np.array([_seed_of(base, 2, i) for i in range(sims)], dtype=np.int64)
    out = np.empty((3, len(OUTCOMES), len(estimators), sims))
    sate = np.empty((len(OUTCOMES), sims))
    target = np.zeros(len(OUTCOMES))
    for i, s in enumerate(seeds):
        pop = _population(design.simulate(seed=int(s)), covariates="fixed_effects" in estimators)
        masks = [po.observed[None, :].astype(float) for po in pop.outcomes]
        out[..., i : i + 1] = _estimate(pop, estimators, pop.z[None, :], masks)
        sate[:, i] = [po.sate for po in pop.outcomes]
        target = np.array([po.target for po in pop.outcomes])
        bar.update(1)
    return out, sate, target, seeds


def diagnose(
    design: TrialDesign | None = None,
    *,
    estimand: DiagnoseEstimand | Sequence[DiagnoseEstimand] = "fixed_effects",
    covariates: str | Sequence[str | None] | None = "default",
    sims: int = 1000,
    seed: int | np.random.Generator,
    alpha: float = 0.05,
    mode: DiagnoseMode = "design",
    grid: Mapping[str, Sequence[float]] | None = None,
    progress: bool | None = None,
    workers: int | None = None,
) -> DiagnosisResult:
    r"""Diagnose a design by simulation: bias, RMSE, power, coverage and type-S error.

    Parameters
    ----------
    design : TrialDesign, optional
        The trial to diagnose (default: the study's design, :class:`TrialDesign`\ ``()``).
    estimand : {"fixed_effects", "person_weighted"} or a list of them, default "fixed_effects"
        The estimand of :func:`cis_eval.estimate_itt`: ``"fixed_effects"`` (school fixed
        effects, HC2; its default) or ``"person_weighted"`` (the blocked difference in
        means, without covariates only).
    covariates : "default", None, or a list of both, default "default"
        As in :func:`cis_eval.estimate_itt`: ``"default"`` adjusts for each outcome's
        prior-year measure and the demographics, ``None`` for nothing. Every
        (estimand, covariates) pair is diagnosed, and all see the same replications, so
        ``covariates=["default", None]`` compares the adjusted and unadjusted estimators.
    sims : int, default 1000
        Replications per design (at least 1; a few hundred give power to about 0.02).
    seed : int or numpy.random.Generator
        Seed; the same seed gives identical results. Every grid point uses the same
        random numbers (common random numbers), so curves are smooth.
    alpha : float, default 0.05
        Level of the two-sided tests; confidence intervals have level ``1 - alpha``.
    mode : {"design", "resample"}, default "design"
        ``"design"``: one population, lottery and attrition redrawn per replication
        (design-based; estimand = that population's SATE). ``"resample"``: a new population
        per replication with :func:`cis_eval.simulate` (slower; estimand = each
        replication's SATE, with bias and coverage for the target effect too).
    grid : mapping, optional
        Values to try for parameters of :data:`GRID_PARAMETERS`, e.g.
        ``{"schools": [20, 28, 40]}`` or ``{"chronic_absence": [-0.03, -0.06]}`` (an
        outcome's name varies its effect); several keys give every combination.
    progress : bool, optional
        Show a progress bar on standard error; default: only when it is a terminal.
    workers : int, optional
        Threads that estimate outcomes side by side (default: the number of CPUs, at most
        six); results do not depend on it.

    Returns
    -------
    DiagnosisResult
        ``to_frame()`` (one row per grid point, estimator and outcome), ``draws()`` (every
        replication), ``table()`` and ``plot()``.

    Raises
    ------
    DesignError
        Invalid design, estimand, covariates, grid, ``sims`` or ``alpha`` (the message
        names it).

    See Also
    --------
    cis_eval.power : analytic power and MDES for the same kind of design.

    Notes
    -----
    Estimates are those of :func:`cis_eval.estimate_itt` on each replication's data (the
    tests check this to 1e-10): binary outcomes in percentage points, HC2 standard
    errors, t-based tests and intervals with the regression's residual degrees of freedom.
    Design mode is a *finite-population* diagnosis: the potential outcomes and baseline
    covariates of one simulated population stay fixed, each replication reruns the
    within-school lottery (each school keeps its number of program students) and draws
    attrition afresh, and the estimand is the population's SATE over the students with the
    outcome defined. The fixed-effects estimator targets a precision-weighted average of
    school effects, so with effects that vary across schools it may be biased for the
    SATE; the blocked difference in means is unbiased for it (without attrition).

    Diagnosands follow DeclareDesign (Blair, Cooper, Coppock & Humphreys 2019); see
    :data:`DIAGNOSANDS`. Monte Carlo standard errors use closed forms instead of
    DeclareDesign's bootstrap: ``sd / sqrt(R)`` for means, ``sqrt(p (1 - p) / R)`` for
    shares, the delta method ``se(MSE) / (2 RMSE)`` for the RMSE, and ``sd / sqrt(2 (R -
    1))`` for the standard deviation of the estimates.

    References
    ----------
    Blair, G., Cooper, J., Coppock, A., & Humphreys, M. (2019). Declaring and diagnosing
    research designs. *American Political Science Review*, 113(3), 838-859.
    Gelman, A., & Carlin, J. (2014). Beyond power calculations: Assessing type S (sign)
    and type M (magnitude) errors. *Perspectives on Psychological Science*, 9(6), 641-651.

    Examples
    --------
    >>> from cis_eval.design.diagnose import TrialDesign, diagnose
    >>> design = TrialDesign(schools=6, students_per_school=50)
    >>> res = diagnose(design, sims=200, seed=1, progress=False)
    >>> res
    DiagnosisResult(6 outcomes, 1 estimator, 200 simulations, mode=design)
    >>> row = res.to_frame().set_index("outcome").loc["chronic_absence"]
    >>> round(float(row["estimand"]), 1), round(float(row["power"]), 2)
    (-6.0, 0.2)
    """
    design = TrialDesign() if design is None else design
    if not isinstance(design, TrialDesign):
        raise OptionTypeError(f"design must be a cis_eval.TrialDesign, got {type(design).__name__}")
    names = _estimators(estimand, covariates)
    sims = _whole("sims", sims, 1)
    a = _number("alpha", alpha)
    if not 0 < a < 1:
        raise _fail(f"alpha must be strictly between 0 and 1, got {a:g}")
    check_option("mode", mode, DIAGNOSE_MODES)
    if isinstance(seed, np.random.Generator):
        base = int(seed.integers(0, 2**63 - 1))
        used_seed: int | None = None
    else:
        rng_from(seed)  # the type and range of the seed, with the project's message
        base = used_seed = int(seed)
    n_workers = min(6, os.cpu_count() or 1) if workers is None else _whole("workers", workers, 1)
    spec, points = _grid(design, grid)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    draws: list[pd.DataFrame] = []
    run = _run_design if mode == "design" else _run_resample
    # The products are many and small: BLAS threads only add synchronisation (up to ten
    # times slower on a busy machine), so they run on one thread.
    with (
        threadpool_limits(limits=1, user_api="blas"),
        tqdm(
            total=sims * len(points),
            desc="diagnose",
            unit="sim",
            file=sys.stderr,
            leave=False,
            disable=not show,
        ) as bar,
    ):
        for values, d in points:
            out, sate, target, seeds = run(d, names, sims, base, bar, n_workers)
            for i, o in enumerate(OUTCOMES):
                for j, e in enumerate(names):
                    est, se, df = out[0, i, j], out[1, i, j], out[2, i, j]
                    diag = _diagnosands(est, se, df, sate[i], float(target[i]), a)
                    rows.append(
                        {
                            **values,
                            "estimator": _PAIR[e][0],
                            "covariates": _PAIR[e][1],
                            "outcome": o.name,
                            "unit": _unit(o),
                            "estimand": _nanmean(sate[i]),
                            "target_effect": float(target[i]),
                            **diag,
                        }
                    )
                    p, crit = _inference(est, se, df, a)
                    draws.append(
                        pd.DataFrame(
                            {
                                **{k: np.full(sims, v) for k, v in values.items()},
                                "estimator": _PAIR[e][0],
                                "covariates": _PAIR[e][1],
                                "outcome": o.name,
                                "sim": np.arange(sims),
                                "estimate": est,
                                "std_error": se,
                                "df": df,
                                "p_value": p,
                                "conf_low": est - crit * se,
                                "conf_high": est + crit * se,
                                "estimand": sate[i],
                                "population_seed": seeds,
                            }
                        )
                    )
    keys = [k for k, _ in spec]
    frame = pd.DataFrame(rows, columns=[*keys, *_COLUMNS])
    # rows in the order of the study's outcomes, then estimator, then grid point
    rank = {
        "outcome": {o: i for i, o in enumerate(OUTCOME_NAMES)},
    }
    order = {_PAIR[e]: i for i, e in enumerate(names)}
    frame["_order"] = [order[p] for p in zip(frame["estimator"], frame["covariates"], strict=True)]
    frame = frame.sort_values(
        ["outcome", "_order", *keys],
        key=lambda c: c.map(rank[str(c.name)]) if c.name in rank else c,
        kind="stable",
        ignore_index=True,
    ).drop(columns="_order")
    for c in ("sims", "n_failed"):
        frame[c] = frame[c].astype(np.int64)
    return DiagnosisResult(
        design=design,
        estimators=tuple(_PAIR[e] for e in names),
        sims=sims,
        seed=used_seed,
        mode=mode,
        alpha=a,
        grid=spec,
        _frame=frame,
        _draws=pd.concat(draws, ignore_index=True),
    )
