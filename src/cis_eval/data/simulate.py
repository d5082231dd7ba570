"""Simulate a randomized trial of CIS Level 2 case management, with known truth.

The data-generating process is calibrated to the published figures of MDRC's evaluation
(Corrin et al. 2015; Parise et al. 2017): about 2,230 students in 28 schools, randomized
within schools (1,140 program : 1,090 control), about 19 contacts, 16 hours and 30 weeks
of service per case-managed student, caseloads of about 84 and 44% of coordinator time on
Level 2. Every other default (baseline rates, take-up, crossover, attrition, the
middle/high split) is unpublished and is a named parameter; see ``SimulationParams``.

Both potential outcomes are generated for every student, so the truth object holds the
exact sample average treatment effect of assignment (the ITT estimand) and the effect
among compliers (the CACE estimand).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np
import pandas as pd

from .._typing import FloatArray, IntArray, Scenario, check_option, rng_from
from ..design.assign import assign
from ..errors import OptionError, OptionTypeError
from ..outcomes import derive_outcomes
from ..schema import MODES, OUTCOME_NAMES, OUTCOMES, SERVICE_TYPES, Outcome

__all__ = ["SCENARIOS", "SimulatedTrial", "SimulationParams", "Truth", "simulate"]

SCENARIOS: dict[str, dict[str, float]] = {
    # Illustrative: reproduces the direction of the interim findings (a modest reduction in
    # chronic absenteeism, no effect elsewhere). Not the study's estimates.
    "interim": {
        "chronic_absence": -0.06,
        "attendance_rate": 0.0,
        "core_course_failure": 0.0,
        "core_credits": 0.0,
        "core_gpa": 0.0,
        "suspensions": 0.0,
    },
    "null": dict.fromkeys(OUTCOME_NAMES, 0.0),
}
"""Named effect scenarios: ITT effects in outcome units (proportions for binary outcomes)."""

# Base rates of the ten service areas among Level 2 contacts (unpublished; the study names
# academic assistance, behaviour and social/life skills as the main types).
SERVICE_MIX: dict[str, float] = {
    "academics": 0.34,
    "behavior": 0.18,
    "social_life_skills": 0.16,
    "basic_needs": 0.06,
    "college_career": 0.05,
    "enrichment_motivation": 0.06,
    "family_engagement": 0.06,
    "health_wellness": 0.04,
    "community_service": 0.02,
    "mental_health": 0.03,
}
MODE_MIX: dict[str, float] = {"individual": 0.70, "group": 0.22, "family": 0.08}
STATES = ("NC", "SC", "TX")
AFFILIATES = {
    "NC": ("Affiliate A", "Affiliate B"),
    "SC": ("Affiliate C",),
    "TX": ("Affiliate D", "Affiliate E"),
}


@dataclass(frozen=True, slots=True)
class SimulationParams:
    """All parameters of the data-generating process, with their sources.

    Published (Corrin et al. 2015 and the WWC review): ``n_schools`` = 28,
    ``n_students`` = 2,230, ``p_treat`` = 1,140/2,230, ``contacts_mean`` = 19,
    ``hours_mean`` = 16, ``weeks_mean`` = 30, ``caseload_mean`` = 84,
    ``level2_time_share`` = 0.44, outcome missingness about 8%.
    Unpublished (cis_eval's reasonable defaults): everything else.
    """

    n_schools: int = 28
    n_students: int = 2230
    p_treat: float = 1140 / 2230
    school_size_range: tuple[int, int] = (40, 120)
    share_high: float = 0.5
    icc: float = 0.10
    consent_rate: float = 0.93
    take_up: float = 0.87
    crossover: float = 0.03
    attrition: float = 0.08
    differential_attrition: float = 0.0
    baseline_missing: float = 0.02
    chronic_threshold: float = 0.10
    contacts_mean: float = 19.0
    hours_mean: float = 16.0
    weeks_mean: float = 30.0
    caseload_mean: float = 84.0
    level2_time_share: float = 0.44
    tier1_share: float = 0.30
    coordinators_per_school: int = 1
    school_year: tuple[str, str] = ("2012-08-27", "2013-06-07")
    contacts: bool = True

    def check(self) -> None:
        """Raise :class:`~cis_eval.errors.OptionError` naming the first parameter out of range."""
        lo, hi = self.school_size_range
        checks: list[tuple[bool, str]] = [
            (self.n_schools >= 1, "n_schools must be at least 1"),
            (
                self.n_students >= 4 * self.n_schools,
                "n_students must allow at least 4 students per school",
            ),
            (0 < self.p_treat < 1, "p_treat must be strictly between 0 and 1"),
            (2 <= lo <= hi, "school_size_range must be (low, high) with 2 <= low <= high"),
            (0 <= self.share_high <= 1, "share_high must be in [0, 1]"),
            (0 <= self.icc < 1, "icc must be in [0, 1)"),
            (0 < self.consent_rate <= 1, "consent_rate must be in (0, 1]"),
            (
                0 <= self.take_up <= self.consent_rate,
                "take_up must be in [0, consent_rate]: only consented students can be served",
            ),
            (0 <= self.crossover <= self.take_up, "crossover must be in [0, take_up]"),
            (0 <= self.attrition < 1, "attrition must be in [0, 1)"),
            (
                abs(self.differential_attrition) / 2 <= min(self.attrition, 1 - self.attrition),
                "differential_attrition is too large for the overall attrition",
            ),
            (0 <= self.baseline_missing < 1, "baseline_missing must be in [0, 1)"),
            (0 < self.chronic_threshold < 1, "chronic_threshold must be in (0, 1)"),
            (self.contacts_mean >= 1, "contacts_mean must be at least 1"),
            (self.hours_mean > 0, "hours_mean must be positive"),
            (self.weeks_mean > 0, "weeks_mean must be positive"),
            (self.caseload_mean > 0, "caseload_mean must be positive"),
            (0 < self.level2_time_share <= 1, "level2_time_share must be in (0, 1]"),
            (0 <= self.tier1_share <= 1, "tier1_share must be in [0, 1]"),
            (self.coordinators_per_school >= 1, "coordinators_per_school must be at least 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise OptionError(msg)


@dataclass(frozen=True, slots=True)
class Truth:
    """What the simulator knows and an analyst would not.

    Attributes
    ----------
    target_effects : dict
        The ITT effects asked for (outcome units; proportions for binary outcomes).
    sate : dict
        Exact sample average effect of assignment per outcome, over the randomized
        students for whom the outcome is defined, before attrition: the ITT estimand.
    cace : dict
        Exact average effect among compliers (the CACE estimand).
    complier_share : float
        Share of students who are served if and only if assigned to the program.
    potential_outcomes : pandas.DataFrame
        Per student: ``student_id``, ``compliance`` (complier / always-taker /
        never-taker) and ``y0_<outcome>``, ``y1_<outcome>`` for the six outcomes.
    """

    target_effects: dict[str, float]
    sate: dict[str, float]
    cace: dict[str, float]
    complier_share: float
    potential_outcomes: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome: target, SATE and CACE."""
        return pd.DataFrame(
            {
                "outcome": list(OUTCOME_NAMES),
                "target_effect": [self.target_effects[o] for o in OUTCOME_NAMES],
                "sate": [self.sate[o] for o in OUTCOME_NAMES],
                "cace": [self.cace[o] for o in OUTCOME_NAMES],
            }
        )


@dataclass(frozen=True, slots=True)
class SimulatedTrial:
    """A simulated trial: the three contract tables plus the truth.

    Attributes
    ----------
    students, contacts, coordinators : pandas.DataFrame
        The three tables of the data contract (raw fields; derive outcomes with
        :func:`cis_eval.derive_outcomes`). Returned frames are copy-on-write views:
        changing them never changes the trial.
    truth : Truth
        Effects the analysis should recover.
    params : SimulationParams
        Every parameter used.
    scenario : str
        Effect scenario name (``"interim"``, ``"null"`` or ``"custom"``).
    seed : int or None
        The seed (None when a Generator was passed).
    """

    _students: pd.DataFrame = field(repr=False)
    _contacts: pd.DataFrame = field(repr=False)
    _coordinators: pd.DataFrame = field(repr=False)
    truth: Truth = field(repr=False)
    params: SimulationParams = field(repr=False)
    scenario: str = "interim"
    seed: int | None = None

    @property
    def students(self) -> pd.DataFrame:
        """The students table (one row per randomized student)."""
        return self._students.copy(deep=False)

    @property
    def contacts(self) -> pd.DataFrame:
        """The contacts log (one row per contact)."""
        return self._contacts.copy(deep=False)

    @property
    def coordinators(self) -> pd.DataFrame:
        """The coordinators table."""
        return self._coordinators.copy(deep=False)

    def __repr__(self) -> str:
        n = len(self._students)
        k = int(self._students["treatment"].sum())
        return (
            f"SimulatedTrial({n:,} students ({k:,} program, {n - k:,} control), "
            f"{self._students['school_id'].nunique():,} schools, {len(self._contacts):,} "
            f"contacts, scenario={self.scenario!r}, seed={self.seed})"
        )


# --------------------------------------------------------------------------- helpers


def _masked(values: np.ndarray, missing: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Nullable Int64/Float64 array without a round trip through Python objects."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.integer):
        return pd.arrays.IntegerArray(values.astype(np.int64), missing.copy())
    return pd.arrays.FloatingArray(
        np.where(missing, 0.0, values).astype(np.float64), missing.copy()
    )


def _defined_mean(x: FloatArray) -> float:
    """Mean over the defined (non-NaN) entries; NaN when there are none.

    Core credits are undefined in a trial with no high school, and a trial may have no
    compliers: both are legitimate, so no "mean of empty slice" warning.
    """
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def _logistic(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _school_sizes(rng: np.random.Generator, p: SimulationParams) -> IntArray:
    lo, hi = p.school_size_range
    raw = rng.uniform(lo, hi, p.n_schools)
    scaled = raw * p.n_students / raw.sum()
    sizes = np.floor(scaled).astype(np.int64)
    # Largest remainder, so sizes add up to n_students exactly.
    short = p.n_students - int(sizes.sum())
    if short > 0:
        sizes[np.argsort(scaled - sizes)[::-1][:short]] += 1
    out: IntArray = np.maximum(sizes, 4)
    return out


def _stochastic_round(x: FloatArray, rng: np.random.Generator) -> IntArray:
    low = np.floor(x)
    return (low + (rng.random(x.shape) < (x - low))).astype(np.int64)


def _pick(mask: np.ndarray, k: int, rng: np.random.Generator) -> IntArray:
    """Indices of ``k`` random True entries of ``mask`` (fewer if there are not enough)."""
    idx = np.flatnonzero(mask)
    k = min(k, idx.size)
    return rng.choice(idx, size=k, replace=False) if k > 0 else idx[:0]


def _school_days(start: np.datetime64, end: np.datetime64) -> np.ndarray:
    """Weekdays of the school year, without a winter break around New Year."""
    days = np.arange(start, end + np.timedelta64(1, "D"), dtype="datetime64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    year = start.astype("datetime64[Y]").astype(int) + 1970
    brk_lo = np.datetime64(f"{year}-12-22")
    brk_hi = np.datetime64(f"{year + 1}-01-02")
    keep = (weekday < 5) & ~((days >= brk_lo) & (days <= brk_hi))
    return days[keep]


# --------------------------------------------------------------------------- the DGP


def _baseline(
    rng: np.random.Generator, n: int, risk: FloatArray, acad: FloatArray, high: np.ndarray
) -> tuple[dict[str, Any], dict[str, FloatArray]]:
    """Baseline covariates and the latent propensities the outcomes reuse."""
    absent_prop = _logistic(_logit(0.085) + 0.65 * risk + rng.normal(0, 0.35, n))
    prior_enrolled = np.full(n, 180)
    prior_absent = rng.binomial(
        prior_enrolled, _logistic(np.log(absent_prop / (1 - absent_prop)) + rng.normal(0, 0.3, n))
    )
    fail_prop = _logistic(_logit(0.035) - 1.1 * acad)
    susp_rate = np.exp(np.log(0.30) + 0.8 * risk) * rng.gamma(1.5, 1 / 1.5, n)
    gpa_center = 2.35 + 0.55 * acad
    prior_gpa = np.clip(gpa_center + rng.normal(0, 0.35, n), 0, 4).round(2)
    cov: dict[str, Any] = {
        "prior_attendance_rate": np.round(1 - prior_absent / prior_enrolled, 4),
        "prior_chronic_absence": (prior_absent >= 0.10 * prior_enrolled).astype(np.int64),
        "prior_core_gpa": prior_gpa,
        "prior_core_failures": rng.binomial(8, fail_prop),
        "prior_suspensions": rng.poisson(susp_rate),
        "female": rng.binomial(1, 0.47, n),
        "frpl": rng.binomial(1, _logistic(_logit(0.85) + 0.3 * risk)),
        "ell": rng.binomial(1, 0.12, n),
        "special_education": rng.binomial(1, _logistic(_logit(0.15) + 0.3 * risk)),
        "overage": rng.binomial(1, _logistic(_logit(0.20) + 0.5 * risk + 0.3 * high)),
    }
    latent = {
        "absent_prop": absent_prop,
        "fail_prop": fail_prop,
        "susp_rate": susp_rate,
        "gpa_center": gpa_center,
    }
    return cov, latent


def _control_outcomes(
    rng: np.random.Generator, n: int, latent: dict[str, FloatArray], high: np.ndarray
) -> dict[str, np.ndarray]:
    """Raw outcome fields under control (potential outcome Y(0))."""
    movers = rng.random(n) < 0.12
    enrolled = np.where(movers, rng.integers(90, 180, n), 180)
    absent_p = _logistic(
        np.log(latent["absent_prop"] / (1 - latent["absent_prop"])) + 0.1 + rng.normal(0, 0.35, n)
    )
    present = enrolled - rng.binomial(enrolled, absent_p)
    taken = np.where(rng.random(n) < 0.9, 8, rng.integers(6, 11, n))
    failed = rng.binomial(taken, np.clip(latent["fail_prop"] * 1.1, 0, 1))
    gpa = np.clip(latent["gpa_center"] - 0.05 + rng.normal(0, 0.35, n) - 0.08 * failed, 0, 4)
    rate = latent["susp_rate"] * 1.1
    iss = rng.poisson(rate * 0.6)
    oss = rng.poisson(rate * 0.4)
    credits = np.where(high, 0.5 * (taken - failed), np.nan)
    return {
        "days_enrolled": enrolled,
        "days_present": present,
        "core_courses_taken": taken,
        "core_courses_failed": failed,
        "core_credits_earned": credits,
        "suspensions_iss": iss,
        "suspensions_oss": oss,
        "core_gpa": gpa.round(2),
    }


def _chronic(present: np.ndarray, enrolled: np.ndarray, thr: float) -> np.ndarray:
    out: np.ndarray = (enrolled - present) >= thr * enrolled - 1e-9
    return out


def _treated_outcomes(
    rng: np.random.Generator,
    y0: dict[str, np.ndarray],
    complier: np.ndarray,
    high: np.ndarray,
    effects: Mapping[str, float],
    thr: float,
) -> dict[str, np.ndarray]:
    """Raw outcome fields under assignment to the program (potential outcome Y(1)).

    Effects act only on compliers (the exclusion restriction), with intensities chosen so
    that the sample average effect over all students equals the target ITT effect.
    """
    n = complier.size
    n_c = max(int(complier.sum()), 1)
    y1 = {k: v.copy() for k, v in y0.items()}
    e = y0["days_enrolled"]
    # Attendance rate: shift days present for compliers.
    shift = effects["attendance_rate"] * n / n_c
    delta = _stochastic_round(shift * e * complier, rng)
    y1["days_present"] = np.clip(y0["days_present"] + delta, 0, e)
    # Chronic absence: move compliers just across the threshold to hit the target.
    c0 = _chronic(y0["days_present"], e, thr)
    c1 = _chronic(y1["days_present"], e, thr)
    residual = effects["chronic_absence"] - (c1.astype(float) - c0).mean()
    k = round(abs(residual) * n)
    absent1 = e - y1["days_present"]
    cut = np.ceil(thr * e - 1e-9).astype(np.int64)  # fewest absent days that are chronic
    if residual < 0:
        near = complier & c1 & (absent1 - cut <= 0.06 * e)
        chosen = _pick(near, k, rng)
        if chosen.size < k:
            chosen = np.concatenate([chosen, _pick(complier & c1 & ~near, k - chosen.size, rng)])
        y1["days_present"][chosen] = e[chosen] - (cut[chosen] - 1)
    elif residual > 0:
        near = complier & ~c1 & (cut - absent1 <= 0.06 * e)
        chosen = _pick(near, k, rng)
        if chosen.size < k:
            chosen = np.concatenate([chosen, _pick(complier & ~c1 & ~near, k - chosen.size, rng)])
        y1["days_present"][chosen] = e[chosen] - cut[chosen]
    # Any core course failure: compliers pass everything (or fail one course).
    taken, f0 = y0["core_courses_taken"], y0["core_courses_failed"]
    k = round(abs(effects["core_course_failure"]) * n)
    if effects["core_course_failure"] < 0:
        y1["core_courses_failed"][_pick(complier & (f0 > 0), k, rng)] = 0
    elif effects["core_course_failure"] > 0:
        y1["core_courses_failed"][_pick(complier & (f0 == 0) & (taken > 0), k, rng)] = 1
    # Core credits (high school): follow the change in failures, then half-credit steps.
    cr1 = np.where(high, 0.5 * (taken - y1["core_courses_failed"]), np.nan)
    n_high = max(int(high.sum()), 1)
    residual = effects["core_credits"] - np.nansum(cr1 - y0["core_credits_earned"]) / n_high
    k = round(abs(residual) * n_high / 0.5)
    if residual > 0:
        cr1[_pick(complier & high & (cr1 <= 11.5), k, rng)] += 0.5
    elif residual < 0:
        cr1[_pick(complier & high & (cr1 >= 0.5), k, rng)] -= 0.5
    y1["core_credits_earned"] = cr1
    # Core GPA: shift for compliers, kept on the 0-4 scale.
    gshift = effects["core_gpa"] * n / n_c
    y1["core_gpa"] = np.clip(y0["core_gpa"] + gshift * complier, 0, 4).round(2)
    # Suspensions: remove (or add) individual suspension events of compliers.
    k = round(abs(effects["suspensions"]) * n)
    iss, oss = y1["suspensions_iss"], y1["suspensions_oss"]
    if effects["suspensions"] < 0:
        owners = np.repeat(np.arange(n), np.where(complier, iss + oss, 0))
        is_iss = (
            np.concatenate(
                [
                    np.r_[np.ones(a, bool), np.zeros(b, bool)]
                    for a, b in zip(iss[complier], oss[complier], strict=True)
                ]
            )
            if owners.size
            else np.zeros(0, bool)
        )
        drop = _pick(np.ones(owners.size, bool), k, rng)
        iss -= np.bincount(owners[drop[is_iss[drop]]], minlength=n)
        oss -= np.bincount(owners[drop[~is_iss[drop]]], minlength=n)
    elif effects["suspensions"] > 0:
        add = rng.choice(np.flatnonzero(complier), size=k) if complier.any() else np.zeros(0, int)
        to_iss = rng.random(add.size) < 0.6
        iss += np.bincount(add[to_iss], minlength=n)
        oss += np.bincount(add[~to_iss], minlength=n)
    return y1


def _contacts(
    rng: np.random.Generator,
    p: SimulationParams,
    served: np.ndarray,
    student_ids: np.ndarray,
    school_code: IntArray,
    assign_date: np.ndarray,
    coord_code_of_student: IntArray,
    coord_ids: np.ndarray,
) -> pd.DataFrame:
    """The service log: Level 2 contacts for served students, Level 1 for some others."""
    start = np.datetime64(p.school_year[0], "D")
    end = np.datetime64(p.school_year[1], "D")
    days = _school_days(start, end)
    day_idx_of = np.searchsorted(days, assign_date)
    srv = np.flatnonzero(served)
    m = srv.size
    # Contacts per student: negative binomial (gamma-Poisson), at least one.
    lam = rng.gamma(2.5, (p.contacts_mean - 1) / 2.5, m)
    n_contacts = 1 + rng.poisson(lam)
    # First contact a few school days after assignment; service ends before the year does.
    first = np.minimum(day_idx_of[srv] + rng.geometric(1 / 6, m) - 1, days.size - 1)
    # Calibrate the end gap so the mean first-to-last span is weeks_mean.
    avail_weeks = (days[-1] - days[first]).astype(np.int64) / 7
    gap_weeks = max(float(avail_weeks.mean() - p.weeks_mean), 0.01)
    end_date = days[-1] - (rng.exponential(gap_weeks, m) * 7).astype(np.int64).astype(
        "timedelta64[D]"
    )
    last = np.clip(np.searchsorted(days, end_date, side="right") - 1, first, days.size - 1)
    last = np.where(n_contacts == 1, first, last)
    owner = np.repeat(np.arange(m), n_contacts)
    pos = np.arange(owner.size) - np.repeat(np.cumsum(n_contacts) - n_contacts, n_contacts)
    lo, hi = first[owner], last[owner]
    idx = lo + np.floor(rng.random(owner.size) * (hi - lo + 1)).astype(np.int64)
    idx = np.where(pos == 0, lo, np.where(pos == n_contacts[owner] - 1, hi, idx))
    # Service type: each student has a primary need that takes 60% of their contacts.
    types = np.array([list(SERVICE_TYPES).index(t) for t in SERVICE_MIX])
    probs = np.array(list(SERVICE_MIX.values()))
    primary = rng.choice(types.size, size=m, p=probs / probs.sum())
    mixed = rng.choice(types.size, size=owner.size, p=probs / probs.sum())
    stype = np.where(rng.random(owner.size) < 0.6, primary[owner], mixed)
    modes = np.array([list(MODES).index(m) for m in MODE_MIX])
    mode = rng.choice(modes.size, size=owner.size, p=np.array(list(MODE_MIX.values())))
    # Minutes: per-student intensity times per-contact lognormal, calibrated to the mean.
    mean_minutes = p.hours_mean * 60 / p.contacts_mean
    raw = rng.lognormal(0, 0.25, m)[owner] * rng.lognormal(0, 0.45, owner.size)
    raw *= np.where(modes[mode] == list(MODES).index("group"), 1.25, 1.0)
    minutes = np.clip(np.round(raw * mean_minutes / raw.mean() / 5) * 5, 5, 240).astype(np.int64)
    tier2 = pd.DataFrame(
        {
            "s": srv[owner],
            "date": days[idx],
            "minutes": minutes,
            "service_type": types[stype],
            "tier": np.full(owner.size, 2, np.int64),
            "mode": modes[mode],
        }
    )
    # Level 1: school-wide services that reach students in either arm.
    t1 = np.flatnonzero(rng.random(served.size) < p.tier1_share)
    k1 = rng.integers(1, 4, t1.size)
    own1 = np.repeat(t1, k1)
    d1 = rng.integers(0, days.size, own1.size)
    t1types = np.array(
        [
            list(SERVICE_TYPES).index(t)
            for t in (
                "enrichment_motivation",
                "college_career",
                "health_wellness",
                "community_service",
            )
        ]
    )
    tier1 = pd.DataFrame(
        {
            "s": own1,
            "date": days[d1],
            "minutes": rng.choice(np.array([30, 45, 60, 90]), own1.size),
            "service_type": t1types[rng.integers(0, t1types.size, own1.size)],
            "tier": np.ones(own1.size, np.int64),
            "mode": np.full(own1.size, list(MODES).index("group")),
        }
    )
    log = pd.concat([tier2, tier1], ignore_index=True)
    log = log.sort_values(["s", "date"], kind="stable", ignore_index=True)
    s = log["s"].to_numpy()
    # Categorical columns: ten million short strings would dominate time and memory.
    return pd.DataFrame(
        {
            "contact_id": np.arange(1, len(log) + 1, dtype=np.int64),
            "student_id": pd.Categorical.from_codes(s, categories=pd.Index(student_ids, dtype=str)),
            "coordinator_id": pd.Categorical.from_codes(
                coord_code_of_student[s], categories=pd.Index(coord_ids, dtype=str)
            ),
            "date": log["date"].to_numpy(),
            "minutes": log["minutes"].to_numpy(),
            "service_type": pd.Categorical.from_codes(
                log["service_type"].to_numpy(), categories=pd.Index(list(SERVICE_TYPES))
            ),
            "tier": log["tier"].to_numpy(),
            "mode": pd.Categorical.from_codes(
                log["mode"].to_numpy(), categories=pd.Index(list(MODES))
            ),
        }
    )


def _effect_bound(o: Outcome) -> tuple[float, str] | None:
    """Largest size an effect on the outcome can have, and what the effect is."""
    if o.type == "binary" or o.unit.startswith("proportion"):
        return 1.0, "a difference of proportions (-0.06 is 6 percentage points)"
    if o.name == "core_gpa":
        return 4.0, "a difference on the 0-4 GPA scale"
    return None


def _check_effects(effects: Mapping[str, float]) -> dict[str, float]:
    """Effects by outcome as floats, refusing unknown outcomes and impossible sizes."""
    bad = set(effects) - set(OUTCOME_NAMES)
    if bad:
        raise OptionError(
            f"unknown outcome(s) in effects: {', '.join(sorted(bad))}; "
            f"known: {', '.join(OUTCOME_NAMES)}"
        )
    out: dict[str, float] = {}
    for o in OUTCOMES:
        if o.name not in effects:
            continue
        v = effects[o.name]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise OptionTypeError(f"effects[{o.name!r}] must be a number, got {v!r}")
        x = float(v)
        if not np.isfinite(x):
            raise OptionError(f"effects[{o.name!r}] must be a finite number, got {x:g}")
        # An effect beyond the width of the outcome's scale would push it outside its
        # range for every student, so the simulator could not build it.
        bound = _effect_bound(o)
        if bound is not None and abs(x) > bound[0]:
            raise OptionError(
                f"effects[{o.name!r}] = {x:g} is outside [-{bound[0]:g}, {bound[0]:g}]: "
                f"the effect is {bound[1]}"
            )
        out[o.name] = x
    return out


def simulate(
    *,
    seed: int | np.random.Generator,
    scenario: Scenario = "interim",
    effects: Mapping[str, float] | None = None,
    n_schools: int | None = None,
    n_students: int = 2230,
    **params: Any,
) -> SimulatedTrial:
    """Simulate a within-school randomized trial of CIS case management.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Seed; the same seed and parameters give identical tables.
    scenario : {"interim", "null"}, default "interim"
        ``"interim"`` is an *illustrative* scenario with the direction of the interim
        findings: a 6 percentage-point reduction in chronic absenteeism and no effect on
        the other outcomes. ``"null"`` has no effects. These are not the study's estimates.
    effects : mapping, optional
        ITT effects by outcome, in outcome units (proportions for binary outcomes, e.g.
        ``{"chronic_absence": -0.04}``); they override the scenario's values.
    n_schools : int, optional
        Number of schools (blocks); default ``round(n_students / 79.6)`` (28 for the study
        size, about 80 eligible students per school as published).
    n_students : int, default 2230
        Number of randomized students.
    **params
        Any field of :class:`SimulationParams` (e.g. ``take_up=0.8``, ``icc=0.2``,
        ``attrition=0.1``, ``differential_attrition=0.02``, ``contacts=False``).

    Returns
    -------
    SimulatedTrial
        The students, contacts and coordinators tables and the truth.

    Notes
    -----
    Students have a latent risk with a school component (share ``icc`` of its variance).
    Baseline covariates and control outcomes depend on it. Compliance types follow
    monotonicity: always-takers (share ``crossover``) are served in either arm, compliers
    (``take_up - crossover``) only if assigned to the program, never-takers never; only
    consented students can be served. Effects act on compliers alone, so
    ``CACE = ITT / (take_up - crossover)``. Outcomes are missing for about ``attrition``
    of students per outcome (three quarters of it whole-record loss, the rest
    outcome-specific), optionally differential by arm.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=2026, n_students=400, n_schools=5)
    >>> trial.students.shape[0]
    400
    >>> trial.truth.target_effects["chronic_absence"]
    -0.06
    """
    check_option("scenario", scenario, get_args(Scenario))
    unknown = set(params) - {f.name for f in dataclasses.fields(SimulationParams)}
    if unknown:
        raise OptionTypeError(f"simulate() got unknown parameter(s): {', '.join(sorted(unknown))}")
    if n_schools is None:
        n_schools = max(1, round(n_students / 79.6))
    p = SimulationParams(n_schools=n_schools, n_students=n_students, **params)
    p.check()
    target = dict(SCENARIOS[scenario])
    if effects:
        target.update(_check_effects(effects))
    label = scenario if not effects else "custom"
    rng = rng_from(seed)

    # Schools.
    sizes = _school_sizes(rng, p)
    n = int(sizes.sum())
    school_code = np.repeat(np.arange(p.n_schools), sizes)
    width = max(3, len(str(p.n_schools)))
    school_ids = np.array([f"SCH{j + 1:0{width}d}" for j in range(p.n_schools)], dtype=object)
    school_high = rng.random(p.n_schools) < p.share_high
    state = np.array(STATES, dtype=object)[rng.integers(0, len(STATES), p.n_schools)]
    affiliate = np.array(
        [AFFILIATES[s][k % len(AFFILIATES[s])] for k, s in enumerate(state)], dtype=object
    )
    high = school_high[school_code]

    # Students: latent risk with a school component, and an academic factor.
    risk = np.sqrt(p.icc) * rng.normal(size=p.n_schools)[school_code] + np.sqrt(
        1 - p.icc
    ) * rng.normal(size=n)
    acad = -0.7 * risk + rng.normal(0, 0.7, n)
    grade = np.where(high, rng.integers(9, 13, n), rng.integers(6, 9, n))
    cov, latent = _baseline(rng, n, risk, acad, high)
    sid_width = max(7, len(str(n)))
    student_ids = np.array([f"S{i:0{sid_width}d}" for i in range(1, n + 1)], dtype=object)

    # Random assignment within schools, with the package's own lottery.
    roster = pd.DataFrame({"student_id": student_ids, "school_id": school_ids[school_code]})
    z = assign(roster, seed=rng, p=p.p_treat).data["treatment"].to_numpy().astype(bool)

    # Consent and compliance types (monotone: no defiers).
    consent = rng.random(n) < p.consent_rate
    u = rng.random(n) * p.consent_rate
    always = consent & (u < p.crossover)
    complier = consent & ~always & (u < p.take_up)
    served = always | (complier & z)
    compliance = np.where(always, "always-taker", np.where(complier, "complier", "never-taker"))

    # Potential outcomes and the observed outcome.
    y0 = _control_outcomes(rng, n, latent, high)
    y1 = _treated_outcomes(rng, y0, complier, high, target, p.chronic_threshold)
    observed = {k: np.where(z, y1[k], y0[k]) for k in y0}
    frames = [
        derive_outcomes(
            pd.DataFrame({"school_level": np.where(high, "high", "middle"), **y}),
            chronic_threshold=p.chronic_threshold,
        )[list(OUTCOME_NAMES)]
        for y in (y0, y1)
    ]
    diff = frames[1].to_numpy() - frames[0].to_numpy()
    sate = {o: _defined_mean(diff[:, j]) for j, o in enumerate(OUTCOME_NAMES)}
    cace = {o: _defined_mean(diff[complier, j]) for j, o in enumerate(OUTCOME_NAMES)}
    po = pd.DataFrame({"student_id": student_ids, "compliance": compliance})
    for j, o in enumerate(OUTCOME_NAMES):
        po[f"y0_{o}"] = frames[0].iloc[:, j].to_numpy()
        po[f"y1_{o}"] = frames[1].iloc[:, j].to_numpy()

    # Attrition: whole-record loss (3/4) plus outcome-specific loss, by arm.
    a_arm = np.where(
        z, p.attrition + p.differential_attrition / 2, p.attrition - p.differential_attrition / 2
    )
    lost = rng.random(n) < 0.75 * a_arm
    item = 1 - (1 - a_arm) / (1 - 0.75 * a_arm)
    sources = {
        ("days_enrolled", "days_present"): rng.random(n) < item,
        ("core_courses_taken", "core_courses_failed"): rng.random(n) < item,
        ("core_credits_earned",): rng.random(n) < item,
        ("core_gpa",): rng.random(n) < item,
        ("suspensions_iss", "suspensions_oss"): rng.random(n) < item,
    }
    outcomes_obs: dict[str, Any] = {}
    for cols, miss in sources.items():
        gone = lost | miss
        for c in cols:
            vals = observed[c]
            outcomes_obs[c] = _masked(vals, gone | np.isnan(np.asarray(vals, float)))

    # Baseline missingness (covariates only; demographics rarely missing).
    base: dict[str, Any] = {}
    for c, vals in cov.items():
        share = p.baseline_missing if c.startswith("prior_") else p.baseline_missing / 4
        miss = rng.random(n) < share
        base[c] = _masked(vals, miss)

    # Assignment dates: each school randomizes on one day in September.
    start = np.datetime64(p.school_year[0], "D")
    school_day = start + rng.integers(7, 35, p.n_schools).astype("timedelta64[D]")
    assign_date = school_day[school_code]

    students = pd.DataFrame(
        {
            "student_id": student_ids,
            "school_id": school_ids[school_code],
            "school_level": np.where(high, "high", "middle"),
            "grade": grade.astype(np.int64),
            "state": state[school_code],
            "affiliate": affiliate[school_code],
            **base,
            "treatment": z.astype(np.int64),
            "consent": consent.astype(np.int64),
            "assignment_date": assign_date,
            **outcomes_obs,
        }
    )

    # Coordinators: one (or more) per school; caseload includes students outside the study.
    k = p.coordinators_per_school
    coord_ids = np.array([f"C{j + 1:0{width + 1}d}" for j in range(p.n_schools * k)], dtype=object)
    coord_school = np.repeat(np.arange(p.n_schools), k)
    coord_code = school_code * k + rng.integers(0, k, n)
    study_load = np.bincount(coord_code, weights=served, minlength=coord_ids.size)
    caseload = np.maximum(study_load, np.round(rng.normal(p.caseload_mean, 10, coord_ids.size)))
    a = 30 * p.level2_time_share
    coordinators = pd.DataFrame(
        {
            "coordinator_id": coord_ids,
            "school_id": school_ids[coord_school],
            "fte": np.ones(coord_ids.size),
            "caseload": caseload.astype(np.int64),
            "level2_time_share": rng.beta(a, 30 - a, coord_ids.size).round(3),
        }
    )

    if p.contacts:
        contacts = _contacts(
            rng, p, served, student_ids, school_code, assign_date, coord_code, coord_ids
        )
    else:
        contacts = pd.DataFrame(
            {
                c: pd.Series(dtype=t)  # type: ignore[call-overload]
                for c, t in [
                    ("contact_id", "int64"),
                    ("student_id", "category"),
                    ("coordinator_id", "category"),
                    ("date", "datetime64[s]"),
                    ("minutes", "int64"),
                    ("service_type", pd.CategoricalDtype(list(SERVICE_TYPES))),
                    ("tier", "int64"),
                    ("mode", pd.CategoricalDtype(list(MODES))),
                ]
            }
        )

    truth = Truth(
        target_effects=target,
        sate=sate,
        cace=cace,
        complier_share=float(complier.mean()),
        potential_outcomes=po,
    )
    return SimulatedTrial(
        _students=students,
        _contacts=contacts,
        _coordinators=coordinators,
        truth=truth,
        params=p,
        scenario=label,
        seed=None if isinstance(seed, np.random.Generator) else int(seed),
    )
