r"""Diagnose a planned trial by simulation: bias, RMSE, power, coverage and type-S error.

A :class:`Design` declares the trial (schools, students per school, share treated, the
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

How it gets fast. In design mode the potential outcomes ``y0``, ``y1`` and covariates
``x`` are fixed, and a replication only changes the assignment ``z`` and the analytic
sample (a 0/1 mask ``m``), so ``y = y0 + z (y1 - y0)``. Every quantity the estimators need
is then a product of the ``(replications, students)`` arrays ``m`` and ``m z`` with fixed
per-student features: school-by-arm sums (one small matrix product per school), the
covariates' Gram matrix (one product with the packed ``x x'`` columns), and, for HC2 with
covariates, the exact leverage of the full design (school dummies included) through
Frisch-Waugh-Lovell:

.. math:: z^* = \tilde z - \tilde X \beta, \quad \hat\tau = z^{*\prime} \tilde y /
          z^{*\prime} z^*, \quad h_i = 1/n_s + \tilde x_i'(\tilde X'\tilde X)^{-1}
          \tilde x_i + z_i^{*2} / z^{*\prime} z^*,

where tildes are within-school deviations on the replication's sample. The covariates'
part of the leverage is a quadratic form evaluated for all replications at once as one
matrix product with the packed ``x_i x_i'`` features; products with the missing-value
indicators are non-zero for the few students with a missing baseline value only, and are
summed over those students alone. Replications are processed in chunks so memory stays
bounded, the six outcomes of a chunk in parallel threads (matrix products and array
arithmetic release the interpreter lock) with BLAS itself on one thread. Random numbers
come in blocks of replications with their own streams, so results depend on the seed
alone, not on chunking or threads.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
from scipy import stats

from .._core import engine as _engine
from .._core.design import numeric
from .._typing import BoolArray, FloatArray, IntArray, check_option
from ..data.simulate import SCENARIOS, SimulatedTrial, SimulationParams, simulate
from ..errors import DesignError
from ..estimation.itt import default_covariates
from ..outcomes import outcome_arrays
from ..present.table import Table
from ..schema import OUTCOME_NAMES, OUTCOMES, Outcome

__all__ = [
    "DIAGNOSANDS",
    "ESTIMATORS",
    "GRID_PARAMETERS",
    "MODES",
    "Design",
    "DiagnosisResult",
    "diagnose",
]

EstimatorName = Literal["fixed_effects", "fixed_effects_unadjusted", "blocked_dim"]
Mode = Literal["design", "resample"]
Diagnosand = Literal[
    "mean_estimate",
    "bias",
    "rmse",
    "power",
    "coverage",
    "type_s",
    "mean_se",
    "sd_estimate",
    "bias_target",
    "coverage_target",
]

ESTIMATORS: dict[str, str] = {
    "fixed_effects": (
        "OLS with school fixed effects and baseline covariates (each outcome's prior-year "
        "measure and demographics, missing values filled plus an indicator), HC2 standard "
        "errors: the default of estimate_itt"
    ),
    "fixed_effects_unadjusted": "OLS with school fixed effects, no covariates, HC2 standard errors",
    "blocked_dim": (
        "blocked difference in means, school effects weighted by school size (the "
        "person-weighted estimand), HC2 (Neyman) standard errors"
    ),
}
"""Estimators on offer and what each is (named in every output)."""

_SHORT: dict[str, str] = {
    "fixed_effects": "School FE + covariates",
    "fixed_effects_unadjusted": "School FE",
    "blocked_dim": "Blocked DiM",
}

MODES: dict[str, str] = {
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
# A covariate whose within-school sum of squares is at most this share of its raw sum of
# squares is collinear with the school effects in that sample and is dropped (as the
# engine does); Cholesky pivots below it send the replication to the engine's exact check.
COLLINEAR_TOL = _engine.COLLINEAR_TOL
# Leverage within this distance of 1 means the student is fitted exactly (as the engine).
EXACT_TOL = _engine.EXACT_TOL
# Attrition source of each outcome: the simulator loses raw fields in these groups.
_SOURCE = {
    "chronic_absence": 0,
    "attendance_rate": 0,
    "core_course_failure": 1,
    "core_credits": 2,
    "core_gpa": 3,
    "suspensions": 4,
}
_N_SOURCES = 5


def _fail(message: str) -> DesignError:
    return DesignError(message)


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
class Design:
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
    >>> from cis_eval.design.diagnose import Design
    >>> Design(schools=20, students_per_school=60, effects={"chronic_absence": -0.05})
    Design(20 schools x 60.0 students = 1,200, 51% treated, effects: chronic_absence -0.05)
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

    def vary(self, parameter: str, value: float) -> Design:
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
            f"Design({self.schools} schools x {sps:.1f} students = {self.total_students:,}, "
            f"{self.share_treated:.0%} treated, effects: {eff.replace('+', '')})"
        )


# ----------------------------------------------------------------------------- population


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One outcome of a population, rows sorted by school (private).

    ``y0``/``y1`` are in reporting units (percentage points for binary outcomes), centred
    by the population's school means of ``y0`` and zero where the outcome is undefined.
    The covariate columns ``x`` are the dense covariates, centred within school, then the
    missing-value indicators, left as 0/1 so they stay sparse: products involving an
    indicator are non-zero only for the few *flagged* students with a missing value, and
    are summed over those students alone. Centring by any school constant leaves every
    fixed-effects quantity unchanged and keeps sums of squares accurate.
    """

    meta: Outcome
    defined: BoolArray
    observed: BoolArray
    y0: FloatArray
    diff: FloatArray  # y1 - y0
    k: int
    kd: int  # dense covariates (the first kd columns of x); the rest are indicators
    feat_m: FloatArray  # (n, 3 + k): defined, y0, y0^2, x  (summed by school, weights m)
    feat_mz: FloatArray  # (n, 5): defined, y0, y1, y0^2, y1^2  (summed by school, weights m z)
    glob_m: FloatArray  # (n, pd + kd): packed dense products, xd * y0  (weighted by m)
    glob_mz: FloatArray  # (n, 2 kd): xd, xd * (y1 - y0)  (weighted by m z)
    lin_t: FloatArray  # (kd + S + 1, n): xd, the school indicators and y0, transposed
    quad_t: FloatArray  # (pd + S, n): packed dense products and the school indicators
    xd_t: FloatArray  # (kd, n): the dense covariates, transposed
    tri: tuple[IntArray, IntArray]  # the packed upper triangle's (row, column) indices
    tri_weight: FloatArray  # 1 on the diagonal, 2 off it: x'Cx from packed products
    dense_pos: IntArray  # positions of the dense products in the packed upper triangle
    rest_pos: IntArray  # positions of the products involving an indicator
    flagged: IntArray  # students with any indicator set
    school_f: IntArray  # their schools
    ind_f: FloatArray  # (flagged, k - kd): their indicators
    rest_f: FloatArray  # (flagged, len(rest_pos)): their products involving an indicator
    glob_m_f: FloatArray  # (flagged, len(rest_pos) + k - kd): rest_f, indicators * y0
    glob_mz_f: FloatArray  # (flagged, 2 (k - kd)): indicators, indicators * (y1 - y0)
    sate: float
    target: float


@dataclass(frozen=True, slots=True)
class _Population:
    """A population: its schools, its lottery and its outcomes (private)."""

    school: IntArray
    starts: IntArray
    sizes: IntArray
    z: FloatArray
    outcomes: tuple[_Outcome, ...]

    @property
    def n(self) -> int:
        return int(self.z.size)


def _school_means(v: FloatArray, school: IntArray, weight: FloatArray, s: int) -> FloatArray:
    tot = np.bincount(school, weights=v * weight, minlength=s)
    cnt = np.bincount(school, weights=weight, minlength=s)
    out: FloatArray = np.divide(tot, cnt, out=np.zeros(s), where=cnt > 0)
    return out


def _covariates(
    students: pd.DataFrame,
    names: Sequence[str],
    order: IntArray,
    starts: IntArray,
    sizes: IntArray,
) -> tuple[FloatArray, int]:
    """Covariates as estimate_itt fills them: dense columns (centred) then indicators."""
    dense, flags = [], []
    for name in names:
        v = numeric(students, name, "covariate")[order]
        miss = np.isnan(v)
        # fill with the mean of the observed values and flag the missing ones
        fill = float(v[~miss].mean()) if (~miss).any() else 0.0
        dense.append(np.where(miss, fill, v))
        if miss.any():
            flags.append(miss.astype(float))
    n = order.size
    xd = np.column_stack(dense) if dense else np.zeros((n, 0))
    if xd.shape[1]:
        xd = xd - np.repeat(np.add.reduceat(xd, starts, axis=0) / sizes[:, None], sizes, 0)
    x = np.column_stack([xd, *flags]) if flags else xd
    return np.ascontiguousarray(x), xd.shape[1]


def _population(trial: SimulatedTrial, *, covariates: bool) -> _Population:
    """Arrays of one simulated trial for the estimators (rows sorted by school)."""
    students = trial.students
    po = trial.truth.potential_outcomes
    codes, _ = pd.factorize(students["school_id"], sort=True)
    order = np.argsort(codes, kind="stable")
    school = codes[order].astype(np.int64)
    starts, sizes = _engine.cell_starts(school)
    s_count = sizes.size
    n = school.size
    onehot = np.zeros((n, s_count))
    onehot[np.arange(n), school] = 1.0
    z = students["treatment"].to_numpy(dtype=float)[order]
    observed_all = outcome_arrays(students, chronic_threshold=trial.params.chronic_threshold)
    cov_cache: dict[tuple[str, ...], tuple[FloatArray, int]] = {}
    outs = []
    for o in OUTCOMES:
        scale = 100.0 if o.type == "binary" else 1.0
        y0 = po[f"y0_{o.name}"].to_numpy(dtype=float)[order] * scale
        y1 = po[f"y1_{o.name}"].to_numpy(dtype=float)[order] * scale
        defined = ~np.isnan(y0) & ~np.isnan(y1)
        observed = defined & ~np.isnan(observed_all[o.name][order])
        c = _school_means(np.nan_to_num(y0), school, defined.astype(float), s_count)[school]
        y0c = np.where(defined, y0 - c, 0.0)
        y1c = np.where(defined, y1 - c, 0.0)
        names = tuple(default_covariates(o, students)) if covariates else ()
        if names not in cov_cache:
            cov_cache[names] = _covariates(students, names, order, starts, sizes)
        x, kd = cov_cache[names]
        k = x.shape[1]
        iu0, iu1 = np.triu_indices(k)
        dense = (iu0 < kd) & (iu1 < kd)
        dense_pos = np.flatnonzero(dense)
        rest_pos = np.flatnonzero(~dense)
        flagged = np.flatnonzero(np.any(x[:, kd:] != 0, axis=1))
        packed_d = x[:, iu0[dense]] * x[:, iu1[dense]]
        xf = x[flagged]
        rest_f = xf[:, iu0[~dense]] * xf[:, iu1[~dense]]
        ind_f = xf[:, kd:]
        d = y1c - y0c
        xd = x[:, :kd]
        outs.append(
            _Outcome(
                meta=o,
                defined=defined,
                observed=observed,
                y0=y0c,
                diff=d,
                k=k,
                kd=kd,
                feat_m=np.ascontiguousarray(np.column_stack([defined, y0c, y0c**2, x])),
                feat_mz=np.ascontiguousarray(np.column_stack([defined, y0c, y1c, y0c**2, y1c**2])),
                glob_m=np.ascontiguousarray(np.column_stack([packed_d, xd * y0c[:, None]])),
                glob_mz=np.ascontiguousarray(np.column_stack([xd, xd * d[:, None]])),
                lin_t=np.ascontiguousarray(np.column_stack([xd, onehot, y0c]).T),
                quad_t=np.ascontiguousarray(np.column_stack([packed_d, onehot]).T),
                xd_t=np.ascontiguousarray(xd.T),
                tri=(iu0, iu1),
                tri_weight=np.where(iu0 == iu1, 1.0, 2.0),
                dense_pos=dense_pos,
                rest_pos=rest_pos,
                flagged=flagged,
                school_f=school[flagged],
                ind_f=np.ascontiguousarray(ind_f),
                rest_f=np.ascontiguousarray(rest_f),
                glob_m_f=np.ascontiguousarray(
                    np.column_stack([rest_f, ind_f * y0c[flagged, None]])
                ),
                glob_mz_f=np.ascontiguousarray(np.column_stack([ind_f, ind_f * d[flagged, None]])),
                sate=float(trial.truth.sate[o.name]) * scale,
                target=float(trial.truth.target_effects[o.name]) * scale,
            )
        )
    return _Population(school, starts, sizes, z, tuple(outs))


# ----------------------------------------------------------------------------- draws


class _Scratch:
    """Work arrays reused across chunks and outcomes, one set per thread.

    A large numpy temporary is fresh memory from the operating system each time: one page
    fault per 4 KB, which costs more than the arithmetic done on it. The per-student
    arrays are therefore allocated once per thread and filled in place.
    """

    def __init__(self) -> None:
        self._sets: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _get(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        ident = threading.get_ident()
        arrays = self._sets.get(ident)
        if arrays is None:
            with self._lock:
                arrays = self._sets.setdefault(ident, {})
        a = arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = arrays[name] = np.empty(shape, dtype)
        return a

    def floats(self, name: str, shape: tuple[int, ...]) -> FloatArray:
        out: FloatArray = self._get(name, shape, np.float64)
        return out

    def bools(self, name: str, shape: tuple[int, ...]) -> BoolArray:
        out: BoolArray = self._get(name, shape, np.bool_)
        return out


def _draw_into(
    pop: _Population,
    design: Design,
    rng: np.random.Generator,
    zr: FloatArray,
    keep: BoolArray,
    scratch: _Scratch,
) -> None:
    """Fill ``zr`` (r, n) with lotteries and ``keep`` (sources, r, n) with the students kept.

    Each school keeps its number of program students, permuted within the school.
    Attrition follows the simulator: a share ``0.75 a`` of students lose their whole record
    and each group of raw fields is lost with probability ``1 - (1 - a) / (1 - 0.75 a)``,
    with ``a`` the attrition of the student's arm.
    """
    r, n = zr.shape
    for s, m in zip(pop.starts, pop.sizes, strict=True):
        view = zr[:, s : s + m]
        view[:] = pop.z[s : s + m]
        rng.permuted(view, axis=1, out=view)
    u = scratch.floats("u", (_N_SOURCES + 1, r, n))
    rng.random(out=u)
    a1 = design.attrition + design.differential_attrition / 2
    a0 = design.attrition - design.differential_attrition / 2
    lost1, lost0 = 0.75 * a1, 0.75 * a0
    item1, item0 = 1 - (1 - a1) / (1 - lost1), 1 - (1 - a0) / (1 - lost0)
    lost = scratch.bools("lost", (r, n))
    if a1 == a0:
        np.less(u[0], lost0, out=lost)
        np.greater_equal(u[1:], item0, out=keep)
    else:
        thr = scratch.floats("thr", (r, n))
        np.multiply(zr, lost1 - lost0, out=thr)
        thr += lost0
        np.less(u[0], thr, out=lost)
        np.multiply(zr, item1 - item0, out=thr)
        thr += item0
        np.greater_equal(u[1:], thr, out=keep)
    np.logical_not(lost, out=lost)
    keep &= lost


def _draw(
    pop: _Population, design: Design, rng: np.random.Generator, r: int
) -> tuple[FloatArray, BoolArray]:
    """``r`` replications of the lottery and of attrition, in new arrays (see _draw_into)."""
    zr = np.empty((r, pop.n))
    keep = np.empty((_N_SOURCES, r, pop.n), dtype=bool)
    _draw_into(pop, design, rng, zr, keep, _Scratch())
    return zr, keep


# ----------------------------------------------------------------------------- estimators


@dataclass(frozen=True, slots=True)
class _Sums:
    """School-by-arm sums of one outcome for a chunk of replications, shape (r, S)."""

    n: FloatArray
    n1: FloatArray
    sum1: FloatArray
    sum0: FloatArray
    sq1: FloatArray
    sq0: FloatArray
    sx: FloatArray  # (r, S, k)


def _sums(po: _Outcome, pop: _Population, m: FloatArray, mz: FloatArray, k: int) -> _Sums:
    """Small matrix products per school of ``m`` and ``m z`` with the outcome's features."""
    r = m.shape[0]
    s_count = pop.sizes.size
    a = np.empty((r, s_count, 3 + k))
    b = np.empty((r, s_count, 5))
    fm = po.feat_m[:, : 3 + k]
    for j, (s, size) in enumerate(zip(pop.starts, pop.sizes, strict=True)):
        np.matmul(m[:, s : s + size], fm[s : s + size], out=a[:, j, :])
        np.matmul(mz[:, s : s + size], po.feat_mz[s : s + size], out=b[:, j, :])
    return _Sums(
        n=a[..., 0],
        n1=b[..., 0],
        sum1=b[..., 2],
        sum0=a[..., 1] - b[..., 1],
        sq1=b[..., 4],
        sq0=a[..., 2] - b[..., 3],
        sx=a[..., 3 : 3 + k],
    )


def _safe_div(a: FloatArray, b: FloatArray) -> FloatArray:
    out: FloatArray = np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)
    return out


def _blocked_dim(t: _Sums) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Person-weighted blocked difference in means with the Neyman (= HC2) variance.

    Schools with one arm in the sample are left out (as estimate_itt does); a school with a
    single student in an arm makes the variance undefined (NaN).
    """
    n0 = t.n - t.n1
    both = (t.n1 > 0) & (n0 > 0)
    size = np.where(both, t.n, 0.0)
    w = _safe_div(size, size.sum(axis=1, keepdims=True))
    m1, m0 = _safe_div(t.sum1, t.n1), _safe_div(t.sum0, n0)
    tau = np.sum(w * (m1 - m0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        v1 = (t.sq1 - t.n1 * m1 * m1) / (t.n1 - 1) / t.n1
        v0 = (t.sq0 - n0 * m0 * m0) / (n0 - 1) / n0
        var = np.sum(np.where(both, w * w * (v1 + v0), 0.0), axis=1)
        single = np.any(both & ((t.n1 == 1) | (n0 == 1)), axis=1)
    var = np.where(single | ~both.any(axis=1), np.nan, var)
    df = size.sum(axis=1) - 2.0 * both.sum(axis=1)
    return tau, np.sqrt(np.maximum(var, 0.0)), df


def _fixed_effects_unadjusted(t: _Sums) -> tuple[FloatArray, FloatArray, FloatArray]:
    """School fixed effects without covariates; HC2 from school-by-arm sums.

    Without covariates the leverage ``1/n_s + (z - zbar_s)^2 / ss`` and the influence are
    constant within a school-by-arm cell, so the HC2 sum needs only each cell's sum of
    squared residuals: its sum of squares about the cell mean plus ``n`` times the squared
    mean residual.
    """
    n0 = t.n - t.n1
    inv_n = _safe_div(np.ones_like(t.n), t.n)
    zbar = t.n1 * inv_n
    wgt = t.n1 * n0 * inv_n
    ss = wgt.sum(axis=1)
    m1, m0 = _safe_div(t.sum1, t.n1), _safe_div(t.sum0, n0)
    delta = np.where((t.n1 > 0) & (n0 > 0), m1 - m0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.sum(wgt * delta, axis=1) / ss
        gap = delta - tau[:, None]
        sse1 = (t.sq1 - t.n1 * m1 * m1) + t.n1 * ((1 - zbar) * gap) ** 2
        sse0 = (t.sq0 - n0 * m0 * m0) + n0 * (zbar * gap) ** 2
        a1 = (1 - zbar) / ss[:, None]
        a0 = zbar / ss[:, None]
        omh1 = 1 - inv_n - (1 - zbar) ** 2 / ss[:, None]
        omh0 = 1 - inv_n - zbar**2 / ss[:, None]
    var = np.zeros_like(tau)
    exact_influential = np.zeros(tau.shape, dtype=bool)
    for a, sse, omh, cnt in ((a1, sse1, omh1, t.n1), (a0, sse0, omh0, n0)):
        live = (cnt > 0) & (a != 0)
        exact = live & (omh < EXACT_TOL)
        exact_influential |= exact.any(axis=1)
        good = live & ~exact
        var += np.sum(np.where(good, a * a * sse / np.where(good, omh, 1.0), 0.0), axis=1)
    var = np.where(exact_influential, np.inf, var)
    var = np.where(ss > 0, var, np.nan)
    df = t.n.sum(axis=1) - (t.n > 0).sum(axis=1) - 1.0
    return tau, np.sqrt(np.maximum(var, 0.0)), df


def _unpack(packed: FloatArray, k: int, tri: tuple[IntArray, IntArray]) -> FloatArray:
    """(r, k(k+1)/2) upper-triangle entries -> (r, k, k) symmetric matrices."""
    out = np.empty((packed.shape[0], k, k))
    out[:, tri[0], tri[1]] = packed
    out[:, tri[1], tri[0]] = packed
    return out


def _inverse(w: FloatArray, raw: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Generalized inverse of within-school Gram matrices, dropping collinear columns.

    A column whose within sum of squares is at most ``COLLINEAR_TOL`` of its raw one is
    dropped (a missing-value indicator whose students all left the sample). The rest is
    scaled to unit diagonal and factorized; a replication whose Cholesky pivots show
    further collinearity is redone with the engine's own column selection.
    Returns the inverses (zero rows and columns for dropped columns) and the ranks.
    """
    r, k, _ = w.shape
    d = np.einsum("rii->ri", w)
    keep = (d > COLLINEAR_TOL * np.maximum(raw, d)) & (d > 0)
    s = np.where(keep, 1.0 / np.sqrt(np.where(keep, d, 1.0)), 0.0)
    scaled = w * s[:, :, None] * s[:, None, :]
    idx = np.arange(k)
    scaled[:, idx, idx] = np.where(keep, scaled[:, idx, idx], 1.0)
    redo = np.zeros(r, dtype=bool)
    try:
        chol = np.linalg.cholesky(scaled)
        pivots = np.einsum("rii->ri", chol) ** 2
        redo = np.any(pivots < COLLINEAR_TOL, axis=1)
        inv = np.linalg.inv(np.where(redo[:, None, None], np.eye(k), scaled))
    except np.linalg.LinAlgError:
        redo[:] = True
        inv = np.zeros_like(w)
    inv = inv * s[:, :, None] * s[:, None, :]
    rank = keep.sum(axis=1).astype(float)
    for i in np.flatnonzero(redo):
        cols = _engine.independent_columns(w[i], np.maximum(raw[i], d[i]))
        inv[i] = 0.0
        if cols:
            inv[i][np.ix_(cols, cols)] = np.linalg.inv(w[i][np.ix_(cols, cols)])
        rank[i] = len(cols)
    return inv, rank


def _fixed_effects(
    po: _Outcome,
    pop: _Population,
    t: _Sums,
    m: FloatArray,
    mz: FloatArray,
    zr: FloatArray,
    scratch: _Scratch,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """School fixed effects with covariates and HC2, for a chunk of replications.

    Frisch-Waugh-Lovell on each replication's sample: the covariates' within Gram matrix
    (packed products), the coefficients of ``z`` and ``y`` on the covariates, then one
    pass over the ``(r, n)`` arrays for residuals and the exact leverage. Dense covariates
    go through matrix products over every student; the missing-value indicators, through
    products over the flagged students only.
    """
    k, kd = po.k, po.kd
    ki = k - kd
    r = m.shape[0]
    s_count = pop.sizes.size
    kp = k * (k + 1) // 2
    pd_ = po.dense_pos.size
    flagged = po.flagged
    sparse = flagged.size > 0 and ki > 0
    n0 = t.n - t.n1
    sy = t.sum0 + t.sum1
    inv_n = _safe_div(np.ones_like(t.n), t.n)
    # global sums: sum m x x' (packed), sum m x y0, sum m z x, sum m z x (y1 - y0)
    gm = m @ po.glob_m
    gmz = mz @ po.glob_mz
    packed = np.zeros((r, kp))
    packed[:, po.dense_pos] = gm[:, :pd_]
    szx = np.zeros((r, k))
    sxy = np.zeros((r, k))
    szx[:, :kd] = gmz[:, :kd]
    sxy[:, :kd] = gm[:, pd_:] + gmz[:, kd:]
    if sparse:
        gm_f = m[:, flagged] @ po.glob_m_f
        gmz_f = mz[:, flagged] @ po.glob_mz_f
        packed[:, po.rest_pos] = gm_f[:, : po.rest_pos.size]
        szx[:, kd:] = gmz_f[:, :ki]
        sxy[:, kd:] = gm_f[:, po.rest_pos.size :] + gmz_f[:, ki:]
    gxx = _unpack(packed, k, po.tri)
    xbar = t.sx * inv_n[:, :, None]
    xbar_t = xbar.transpose(0, 2, 1)
    zbar = t.n1 * inv_n
    ybar = sy * inv_n
    wxx = gxx - xbar_t @ t.sx
    # the z and y columns of the within cross-products, side by side
    wxzy = np.stack([szx, sxy], axis=2) - xbar_t @ np.stack([t.n1, sy], axis=2)
    wzz = np.sum(t.n1 * n0 * inv_n, axis=1)
    wzy = t.sum1.sum(axis=1) - np.sum(zbar * sy, axis=1)
    cinv, rank = _inverse(wxx, np.einsum("rii->ri", gxx))
    bg = cinv @ wxzy  # (r, k, 2): coefficients of z and of y on the covariates
    ss = wzz - np.einsum("ri,ri->r", wxzy[:, :, 0], bg[:, :, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = (wzy - np.einsum("ri,ri->r", wxzy[:, :, 0], bg[:, :, 1])) / ss
        inv_ss = 1.0 / ss
    tau_ok = np.where(np.isfinite(tau), tau, 0.0)
    # z* = z - zbar_s - (x - xbar_s)'beta, and the residual
    # e = y0 - ybar_s - (x - xbar_s)'gamma - tau z* + z (y1 - y0): one matrix product for
    # the parts that do not involve z, whose coefficients are (r, kd + S + 1)
    at_means = xbar @ bg  # (r, S, 2)
    cz = np.empty((r, kd + s_count + 1))
    cz[:, :kd] = -bg[:, :kd, 0]
    cz[:, kd:-1] = at_means[:, :, 0] - zbar
    cz[:, -1] = 0.0
    ce = np.empty((r, kd + s_count + 1))
    ce[:, :kd] = -bg[:, :kd, 1]
    ce[:, kd:-1] = at_means[:, :, 1] - ybar
    ce[:, -1] = 1.0
    ce -= tau_ok[:, None] * cz
    n = zr.shape[1]
    lin = np.matmul(np.concatenate([cz, ce]), po.lin_t, out=scratch.floats("lin", (2 * r, n)))
    if sparse:
        cf = np.concatenate([-bg[:, kd:, 0], -bg[:, kd:, 1] + tau_ok[:, None] * bg[:, kd:, 0]])
        lin[:, flagged] += cf @ po.ind_f.T
    zs = lin[:r]
    zs += zr
    e = lin[r:]
    step = np.subtract(po.diff, tau_ok[:, None], out=scratch.floats("step", (r, n)))
    step *= zr
    e += step
    # 1 - h, h = 1/n_s + x~'C x~ + z*^2/ss, x~'C x~ = x'Cx - 2 x'C xbar_s + xbar_s'C xbar_s
    v = xbar @ cinv  # C xbar_s (C is symmetric)
    cpack = po.tri_weight * cinv[:, po.tri[0], po.tri[1]]
    quad = np.empty((r, pd_ + s_count))
    quad[:, :pd_] = -cpack[:, po.dense_pos]
    quad[:, pd_:] = 1.0 - inv_n - np.einsum("rsi,rsi->rs", v, xbar)
    omh = np.matmul(quad, po.quad_t, out=scratch.floats("omh", (r, n)))
    for j, (s, size) in enumerate(zip(pop.starts, pop.sizes, strict=True)):
        omh[:, s : s + size] += (2.0 * v[:, j, :kd]) @ po.xd_t[:, s : s + size]
    if sparse:
        vf = v[:, po.school_f, kd:]  # (r, flagged, ki)
        omh[:, flagged] += 2.0 * np.einsum("rfi,fi->rf", vf, po.ind_f)
        omh[:, flagged] -= cpack[:, po.rest_pos] @ po.rest_f.T
    # HC2: sum of a^2 e^2 / (1 - h) with a = z*/ss; q = z*^2/ss is both a^2 ss^2 / ss and
    # the assignment's share of the leverage
    q = np.multiply(zs, zs, out=scratch.floats("q", (r, n)))
    q *= inv_ss[:, None]
    omh -= q
    num = e
    num *= e
    num *= q
    num *= m
    influential = np.zeros(r, dtype=bool)
    if omh.min() < EXACT_TOL:
        exact = omh < EXACT_TOL
        hit = exact & (m > 0)
        scale = np.abs(zs * m).max(axis=1, keepdims=True)
        influential = np.any(hit & (np.abs(zs) > 1e-8 * scale), axis=1)
        omh[exact] = 1.0
        num[exact] = 0.0
    num /= omh
    with np.errstate(divide="ignore", invalid="ignore"):
        var = num.sum(axis=1) * inv_ss
    var = np.where(influential, np.inf, var)
    var = np.where(ss > COLLINEAR_TOL * np.maximum(wzz, 1e-300), var, np.nan)
    tau = np.where(np.isfinite(var) | influential, tau, np.nan)
    df = t.n.sum(axis=1) - (t.n > 0).sum(axis=1) - rank - 1.0
    return tau, np.sqrt(np.maximum(var, 0.0)), df


def _estimate_outcome(
    pop: _Population,
    i: int,
    estimators: Sequence[str],
    zr: FloatArray,
    masks: Sequence[FloatArray],
    scratch: _Scratch,
) -> FloatArray:
    """Estimates, standard errors and df of one outcome: array (3, estimators, r)."""
    po = pop.outcomes[i]
    out = np.empty((3, len(estimators), zr.shape[0]))
    m = masks.fill(i, scratch) if isinstance(masks, _Masks) else masks[i]
    mz = np.multiply(m, zr, out=scratch.floats("mz", m.shape))
    t = _sums(po, pop, m, mz, po.k if "fixed_effects" in estimators else 0)
    for j, name in enumerate(estimators):
        # an outcome nobody has (no high school in the trial) or an assignment without
        # variation gives NaN, counted as a failed replication
        with np.errstate(divide="ignore", invalid="ignore"):
            if name == "blocked_dim":
                res = _blocked_dim(t)
            elif name == "fixed_effects_unadjusted" or po.k == 0:
                res = _fixed_effects_unadjusted(t)
            else:
                res = _fixed_effects(po, pop, t, m, mz, zr, scratch)
        for q in range(3):
            out[q, j] = res[q]
    return out


def _estimate(
    pop: _Population,
    estimators: Sequence[str],
    zr: FloatArray,
    masks: Sequence[FloatArray],
    pool: ThreadPoolExecutor | None = None,
    scratch: _Scratch | None = None,
) -> FloatArray:
    """Estimates, standard errors and df: array (3, outcomes, estimators, r).

    With a thread pool the outcomes are estimated side by side: the work is in matrix
    products and array arithmetic, which release the interpreter lock.
    """
    work = _Scratch() if scratch is None else scratch

    def one(i: int) -> FloatArray:
        return _estimate_outcome(pop, i, estimators, zr, masks, work)

    idx = range(len(pop.outcomes))
    parts = [one(i) for i in idx] if pool is None else list(pool.map(one, idx))
    return np.stack(parts, axis=1)


class _Masks(Sequence[FloatArray]):
    """Each outcome's analytic sample (0/1 floats), made when asked for (in its thread)."""

    def __init__(self, pop: _Population, keep: BoolArray) -> None:
        self.pop, self.keep = pop, keep

    def __len__(self) -> int:
        return len(self.pop.outcomes)

    def fill(self, i: int, scratch: _Scratch) -> FloatArray:
        """Outcome ``i``'s sample in the thread's work array."""
        po = self.pop.outcomes[i]
        src = self.keep[_SOURCE[po.meta.name]]
        out = scratch.floats("m", src.shape)
        np.multiply(src, po.defined, out=out)
        return out

    @overload
    def __getitem__(self, i: int) -> FloatArray: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[FloatArray]: ...
    def __getitem__(self, i: int | slice) -> FloatArray | Sequence[FloatArray]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        return self.fill(i, _Scratch()).copy()


def _masks(pop: _Population, keep: BoolArray) -> list[FloatArray]:
    """Every outcome's analytic sample at once (see :class:`_Masks`)."""
    return list(_Masks(pop, keep))


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
    out: dict[str, float] = {"n_sims": float(est.size), "n_failed": float((~ok).sum())}
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
    "outcome",
    "unit",
    "estimand",
    "target_effect",
    "n_sims",
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
class DiagnosisResult:
    """Diagnosands of a design (or of a grid of designs) for several estimators.

    Attributes
    ----------
    design : Design
        The declared design (the grid varies it).
    estimators : tuple of str
        Estimators diagnosed (keys of :data:`ESTIMATORS`).
    n_sims : int
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

    design: Design
    estimators: tuple[str, ...]
    n_sims: int
    seed: int | None
    mode: str
    alpha: float
    grid: tuple[tuple[str, tuple[float, ...]], ...]
    _frame: pd.DataFrame = field(repr=False)
    _draws: pd.DataFrame = field(repr=False)

    def __repr__(self) -> str:
        n_out = self._frame["outcome"].nunique()
        points = len(self._frame) // max(1, n_out * len(self.estimators))
        grid = f", {points} grid points" if self.grid else ""
        return (
            f"DiagnosisResult({n_out} outcomes, {len(self.estimators)} estimator"
            f"{'s' if len(self.estimators) != 1 else ''}, {self.n_sims:,} simulations, "
            f"mode={self.mode}{grid})"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per grid point, estimator and outcome (a fresh copy).

        Columns: the grid parameters (if any), then ``estimator, outcome, unit, estimand,
        target_effect, n_sims, n_failed`` and each diagnosand of :data:`DIAGNOSANDS` followed
        by its Monte Carlo standard error ``<name>_mc_se``. Estimates are in reporting
        units (percentage points for binary outcomes); ``estimand`` is the SATE (its mean
        over replications in resample mode) and ``target_effect`` the effect declared.
        """
        return self._frame.copy()

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
                row["Estimator"] = _SHORT[rec["estimator"]]
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
            f"{self.n_sims:,} simulations per design, {MODES[self.mode]}.",
            f"Design: {d!r}; take-up {d.take_up:g}, ICC {d.icc:g}, attrition {d.attrition:g}"
            + (f" (differential {d.differential_attrition:+g})" if d.differential_attrition else "")
            + ".",
            *(f"{_SHORT[e]}: {ESTIMATORS[e]}." for e in self.estimators),
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
        estimator: str | None = None,
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
        estimator : str, optional
            Only this estimator (default: all, one line style each).
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
        ests = [estimator] if estimator else list(self.estimators)
        for e in ests:
            check_option("estimator", e, self.estimators)
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
                    sub = f[(f["outcome"] == o) & (f["estimator"] == e)].sort_values(x)
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
                    Line2D([], [], color="0.3", ls=styles[j % 3], label=_SHORT[e])
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
                    rec = f[(f["outcome"] == o) & (f["estimator"] == e)].iloc[0]
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
                    names.append(labels.get(o, o) + (f" ({_SHORT[e]})" if len(ests) > 1 else ""))
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
        ax.set_title(f"{name.capitalize()} ({self.n_sims:,} simulations)", fontsize="medium")
        return ax


# ----------------------------------------------------------------------------- verb


def _estimators(estimator: str | Sequence[str]) -> tuple[str, ...]:
    names = (estimator,) if isinstance(estimator, str) else tuple(estimator)
    if not names:
        raise _fail("estimator is empty; name at least one of " + ", ".join(ESTIMATORS))
    for e in names:
        try:
            check_option("estimator", e, ESTIMATORS)
        except ValueError as exc:
            raise _fail(str(exc)) from exc
    if len(set(names)) != len(names):
        raise _fail("estimator lists the same estimator twice")
    return names


def _grid(
    design: Design, grid: Mapping[str, Sequence[float]] | None
) -> tuple[tuple[tuple[str, tuple[float, ...]], ...], list[tuple[dict[str, float], Design]]]:
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
    design: Design,
    estimators: tuple[str, ...],
    n_sims: int,
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
    out = np.empty((3, len(pop.outcomes), len(estimators), n_sims))
    n_blocks = -(-n_sims // BLOCK)
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
            r = min(len(blocks) * BLOCK, n_sims - lo)
            masks = _Masks(pop, keep_all[:, :r])
            out[..., lo : lo + r] = _estimate(pop, estimators, zr_all[:r], masks, pool, scratch)
            bar.update(r)
    sate = np.array([po.sate for po in pop.outcomes])
    target = np.array([po.target for po in pop.outcomes])
    seeds = np.full(n_sims, pop_seed, dtype=np.int64)
    return out, np.repeat(sate[:, None], n_sims, axis=1), target, seeds


def _run_resample(
    design: Design,
    estimators: tuple[str, ...],
    n_sims: int,
    base: int,
    bar: Any,
    workers: int,
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """A new population per replication, with its own lottery and attrition."""
    seeds = np.array([_seed_of(base, 2, i) for i in range(n_sims)], dtype=np.int64)
    out = np.empty((3, len(OUTCOMES), len(estimators), n_sims))
    sate = np.empty((len(OUTCOMES), n_sims))
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
    design: Design | None = None,
    *,
    estimator: EstimatorName | Sequence[EstimatorName] = "fixed_effects",
    n_sims: int = 1000,
    seed: int | np.random.Generator,
    alpha: float = 0.05,
    mode: Mode = "design",
    grid: Mapping[str, Sequence[float]] | None = None,
    progress: bool | None = None,
    workers: int | None = None,
) -> DiagnosisResult:
    r"""Diagnose a design by simulation: bias, RMSE, power, coverage and type-S error.

    Parameters
    ----------
    design : Design, optional
        The trial to diagnose (default: the study's design, :class:`Design`\ ``()``).
    estimator : str or sequence of str, default "fixed_effects"
        One or several of :data:`ESTIMATORS`: ``"fixed_effects"`` (school fixed effects
        with covariates, HC2: :func:`cis_eval.estimate_itt`'s default),
        ``"fixed_effects_unadjusted"`` (no covariates) and ``"blocked_dim"`` (the
        person-weighted blocked difference in means). All see the same replications.
    n_sims : int, default 1000
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
        Invalid design, estimator, grid, ``n_sims`` or ``alpha`` (the message names it).

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
    >>> from cis_eval.design.diagnose import Design, diagnose
    >>> design = Design(schools=6, students_per_school=50)
    >>> res = diagnose(design, n_sims=200, seed=1, progress=False)
    >>> res
    DiagnosisResult(6 outcomes, 1 estimator, 200 simulations, mode=design)
    >>> row = res.to_frame().set_index("outcome").loc["chronic_absence"]
    >>> round(float(row["estimand"]), 1), round(float(row["power"]), 2)
    (-6.0, 0.2)
    """
    design = Design() if design is None else design
    if not isinstance(design, Design):
        raise _fail(f"design must be a cis_eval.Design, got {type(design).__name__}")
    names = _estimators(estimator)
    sims = _whole("n_sims", n_sims, 1)
    a = _number("alpha", alpha)
    if not 0 < a < 1:
        raise _fail(f"alpha must be strictly between 0 and 1, got {a:g}")
    try:
        check_option("mode", mode, MODES)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if isinstance(seed, np.random.Generator):
        base = int(seed.integers(0, 2**63 - 1))
        used_seed: int | None = None
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _fail(f"seed must be a non-negative int or numpy.random.Generator, got {seed!r}")
    else:
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
            out, estimand, target, seeds = run(d, names, sims, base, bar, n_workers)
            for i, o in enumerate(OUTCOMES):
                for j, e in enumerate(names):
                    est, se, df = out[0, i, j], out[1, i, j], out[2, i, j]
                    diag = _diagnosands(est, se, df, estimand[i], float(target[i]), a)
                    rows.append(
                        {
                            **values,
                            "estimator": e,
                            "outcome": o.name,
                            "unit": _unit(o),
                            "estimand": _nanmean(estimand[i]),
                            "target_effect": float(target[i]),
                            **diag,
                        }
                    )
                    p, crit = _inference(est, se, df, a)
                    draws.append(
                        pd.DataFrame(
                            {
                                **{k: np.full(sims, v) for k, v in values.items()},
                                "estimator": e,
                                "outcome": o.name,
                                "sim": np.arange(sims),
                                "estimate": est,
                                "std_error": se,
                                "df": df,
                                "p_value": p,
                                "conf_low": est - crit * se,
                                "conf_high": est + crit * se,
                                "estimand": estimand[i],
                                "population_seed": seeds,
                            }
                        )
                    )
    keys = [k for k, _ in spec]
    frame = pd.DataFrame(rows, columns=[*keys, *_COLUMNS])
    # rows in the order of the study's outcomes, then estimator, then grid point
    rank = {
        "outcome": {o: i for i, o in enumerate(OUTCOME_NAMES)},
        "estimator": {e: i for i, e in enumerate(names)},
    }
    frame = frame.sort_values(
        ["outcome", "estimator", *keys],
        key=lambda c: c.map(rank[str(c.name)]) if c.name in rank else c,
        kind="stable",
        ignore_index=True,
    )
    for c in ("n_sims", "n_failed"):
        frame[c] = frame[c].astype(np.int64)
    return DiagnosisResult(
        design=design,
        estimators=names,
        n_sims=sims,
        seed=used_seed,
        mode=mode,
        alpha=a,
        grid=spec,
        _frame=frame,
        _draws=pd.concat(draws, ignore_index=True),
    )
