"""Validated design points and the numerics of the power verbs (private).

A :class:`_Point` is one design with every input checked and turned into arrays (one
value per outcome). The analytic core computes standard errors, degrees of freedom,
Bloom's multiplier and t-test power; the simulation core draws the joint test statistics
once per design (common random numbers) and applies each multiple-testing procedure to
them. :mod:`cis_eval.design.power` builds the verbs and the result on top.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._typing import (
    BoolArray,
    CurveBy,
    FloatArray,
    PowerApproximation,
    PowerDefinition,
    PowerModel,
    PowerMTP,
    SolveFor,
    check_option,
    rng_from,
)
from ..errors import DesignError, OptionError

if TYPE_CHECKING:
    from .power import PowerDesign

# The options as tuples, read off the Literals so the two cannot disagree.
MODELS: tuple[str, ...] = get_args(PowerModel)
MTPS: tuple[str, ...] = get_args(PowerMTP)
POWER_DEFINITIONS: tuple[str, ...] = get_args(PowerDefinition)
APPROXIMATIONS: tuple[str, ...] = get_args(PowerApproximation)
SOLVE_FOR: tuple[str, ...] = get_args(SolveFor)
CURVE_BY: tuple[str, ...] = get_args(CurveBy)

_SIMULATED_MTPS = ("holm", "bh", "wy-ss", "wy-sd")
_NULL_DRAWS = 50_000  # Westfall-Young null draws: quantile error well below the power MC error
_MAX_SIZE = 10_000_000

_MODEL_INFO: dict[str, dict[str, str]] = {
    "constant": {
        "label": "constant school impacts, school fixed effects",
        "powerup": "bira2c1",
        "pump": "d2.1_m2fc",
        "df": "J(n - 1) - g - 1",
        "se": "sqrt[(1 - ICC)(1 - R2) / (P(1 - P) J n)]",
    },
    "fixed": {
        "label": "fixed school-specific impacts",
        "powerup": "bira2f1",
        "pump": "d2.1_m2ff",
        "df": "J(n - 2) - g",
        "se": "sqrt[(1 - ICC)(1 - R2) / (P(1 - P) J n)]",
    },
    "random": {
        "label": "random school impacts",
        "powerup": "bira2r1",
        "pump": "d2.1_m2fr",
        "df": "J - g2 - 1",
        "se": "sqrt[ICC w (1 - R2_T) / J + (1 - ICC)(1 - R2) / (P(1 - P) J n)]",
    },
    "unblocked": {
        "label": "individual randomization without school blocks",
        "powerup": "ira1r1",
        "pump": "d1.1_m1c",
        "df": "N - g - 2",
        "se": "sqrt[(1 - R2) / (P(1 - P) N)]",
    },
}

_MTP_LABELS = {
    "none": "no adjustment",
    "bonferroni": "Bonferroni",
    "holm": "Holm",
    "bh": "Benjamini-Hochberg",
    "wy-ss": "Westfall-Young single-step",
    "wy-sd": "Westfall-Young step-down",
}


# ----------------------------------------------------------------------------- design


@dataclass(frozen=True, slots=True)
class _Point:
    """Validated inputs shared by the three verbs (private)."""

    model: str
    schools: int
    n: float  # harmonic mean of school sizes
    school_sizes: tuple[float, ...]
    share_treated: float
    n_covariates: int
    n_school_covariates: int
    names: tuple[str, ...]
    r2: FloatArray
    icc: FloatArray
    omega: FloatArray
    r2_t: FloatArray
    control_rate: FloatArray  # NaN for outcomes that are not binary
    alpha: float
    tails: int
    mtp: str
    rho: float
    approximation: str
    sims: int
    seed: int | None

    @property
    def m(self) -> int:
        return len(self.names)

    def with_size(self, *, schools: int | None = None, n: float | None = None) -> _Point:
        return _Point(
            self.model,
            self.schools if schools is None else int(schools),
            self.n if n is None else float(n),
            () if (schools is not None or n is not None) else self.school_sizes,
            self.share_treated,
            self.n_covariates,
            self.n_school_covariates,
            self.names,
            self.r2,
            self.icc,
            self.omega,
            self.r2_t,
            self.control_rate,
            self.alpha,
            self.tails,
            self.mtp,
            self.rho,
            self.approximation,
            self.sims,
            self.seed,
        )

    def df(self) -> float:
        return _df(self.model, self.schools, self.n, self.n_covariates, self.n_school_covariates)

    def se(self) -> FloatArray:
        j, n, p = self.schools, self.n, self.share_treated
        within = (1.0 - self.r2) / (p * (1.0 - p) * j * n)
        if self.model == "unblocked":
            return np.sqrt(within)
        within = (1.0 - self.icc) * within
        if self.model == "random":
            return np.sqrt(self.icc * self.omega * (1.0 - self.r2_t) / j + within)
        return np.sqrt(within)

    @property
    def alpha_individual(self) -> float:
        """Per-test level of the analytic calculation (Bonferroni divides alpha by M)."""
        return self.alpha / self.m if self.mtp == "bonferroni" else self.alpha


def _df(model: str, j: float, n: float, g: int, g2: int) -> float:
    if model == "constant":
        return j * (n - 1.0) - g - 1.0
    if model == "fixed":
        return j * (n - 2.0) - g
    if model == "random":
        return j - g2 - 1.0
    return j * n - g - 2.0


def _fail(message: str) -> DesignError:
    """A design that cannot answer the question (too few schools or df, no size reaches it)."""
    return DesignError(message)


def _bad(message: str) -> OptionError:
    """An option value out of its range or of the wrong kind."""
    return OptionError(message)


def _number(name: str, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise _bad(f"{name} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise _bad(f"{name} must be finite, got {out}")
    return out


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise _bad(f"{name} must be a whole number, got {value!r}")
    out = int(value)
    if out < minimum:
        raise _bad(f"{name} must be at least {minimum}, got {out}")
    return out


def _in_range(
    name: str, value: float, low: float, high: float, *, low_open: bool, high_open: bool
) -> None:
    bad = (
        value < low or value > high or (low_open and value == low) or (high_open and value == high)
    )
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise _bad(f"{name} must be in {lb}{low:g}, {high:g}{hb}, got {value:g}")


def _per_outcome(
    name: str,
    value: float | Sequence[float | None] | None,
    m: int,
    *,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> FloatArray:
    """A scalar or one value per outcome, checked against its range."""
    if value is None:
        if not allow_none:
            raise _bad(f"{name} is required")
        return np.full(m, np.nan)
    if isinstance(value, (str, bytes)):
        raise _bad(f"{name} must be a number or one number per outcome, got {value!r}")
    if isinstance(value, (Sequence, np.ndarray)):
        items = list(value)
        if len(items) != m:
            raise _bad(
                f"{name} has {len(items)} values for {m} outcome{'s' if m != 1 else ''}; "
                "give one value, or one per outcome"
            )
    else:
        items = [value] * m
    out = np.empty(m)
    for i, v in enumerate(items):
        if v is None and allow_none:
            out[i] = np.nan
            continue
        label = name if m == 1 else f"{name}[{i}]"
        x = _number(label, v)
        _in_range(label, x, low, high, low_open=low_open, high_open=high_open)
        out[i] = x
    return out


def _validate(spec: PowerDesign) -> _Point:
    """Check every field of a design once and return the point the calculations use."""
    schools = spec.schools
    students_per_school = spec.students_per_school
    model, tails, outcomes = spec.model, spec.tails, spec.outcomes
    check_option("model", model, MODELS)
    mtp: object = spec.mtp.lower() if isinstance(spec.mtp, str) else spec.mtp
    check_option("mtp", mtp, MTPS)
    check_option("approximation", spec.approximation, APPROXIMATIONS)
    if tails not in (1, 2) or isinstance(tails, bool):
        raise _bad(f"tails must be 1 (one-tailed) or 2 (two-tailed), got {tails!r}")

    # outcomes
    if isinstance(outcomes, (int, np.integer)) and not isinstance(outcomes, bool):
        m = _integer("outcomes", outcomes, 1)
        names = ("outcome",) if m == 1 else tuple(f"outcome_{i + 1}" for i in range(m))
    elif isinstance(outcomes, Sequence) and not isinstance(outcomes, (str, bytes)):
        names = tuple(str(o) for o in outcomes)
        if not names:
            raise _bad("outcomes is empty; give a number of outcomes or their names")
        if len(set(names)) != len(names):
            raise _bad("outcomes has repeated names; each outcome must be named once")
        m = len(names)
    else:
        raise _bad(f"outcomes must be a number or a list of names, got {outcomes!r}")

    # sizes
    min_schools = 1 if model == "unblocked" else 2
    sizes: tuple[float, ...] = ()
    j: int = 0
    n: float = float("nan")
    if isinstance(students_per_school, (Sequence, np.ndarray)):
        if isinstance(students_per_school, (str, bytes)):
            raise _bad("students_per_school must be a number or a list of school sizes")
        sizes = tuple(
            _number(f"students_per_school[{i}]", v) for i, v in enumerate(students_per_school)
        )
        if not sizes:
            raise _bad("students_per_school is an empty list of school sizes")
        for i, s in enumerate(sizes):
            if s <= 0:
                raise _bad(f"students_per_school[{i}] = {s:g}: school sizes must be positive")
        n = len(sizes) / sum(1.0 / s for s in sizes)
        if schools is not None and _integer("schools", schools, 1) != len(sizes):
            raise _bad(
                f"schools = {schools} but students_per_school lists {len(sizes)} school "
                "sizes; give one size per school or leave schools out"
            )
        schools = len(sizes)
    elif students_per_school is not None:
        n = _number("students_per_school", students_per_school)
        if n <= 0:
            raise _bad(f"students_per_school must be positive, got {n:g}")
    if schools is not None:
        j = _integer("schools", schools, 1)
        if j < min_schools:
            raise _fail(
                f"schools = {j}: a blocked design needs at least 2 schools (blocks); with "
                "one school use model='unblocked'"
            )
    if not math.isnan(n) and model != "unblocked" and n < 2:
        raise _fail(
            f"students_per_school = {n:g}: each school needs at least 2 students (one per arm)"
        )

    p = _number("share_treated", spec.share_treated)
    _in_range("share_treated", p, 0.0, 1.0, low_open=True, high_open=True)
    a = _number("alpha", spec.alpha)
    _in_range("alpha", a, 0.0, 1.0, low_open=True, high_open=True)
    g = _integer("n_covariates", spec.n_covariates, 0)
    g2 = _integer("n_school_covariates", spec.n_school_covariates, 0)
    r2_arr = _per_outcome("r2", spec.r2, m, low=0.0, high=1.0, high_open=True)
    icc_arr = _per_outcome("icc", spec.icc, m, low=0.0, high=1.0, high_open=True)
    omega_arr = _per_outcome("omega", spec.omega, m, low=0.0, high=np.inf)
    r2t_arr = _per_outcome(
        "r2_school_impact", spec.r2_school_impact, m, low=0.0, high=1.0, high_open=True
    )
    rate = _per_outcome(
        "control_rate",
        spec.control_rate,
        m,
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
        allow_none=True,
    )
    r = _number("rho", spec.rho)
    lower = -1.0 / (m - 1) if m > 1 else -1.0
    _in_range("rho", r, lower, 1.0, low_open=False, high_open=False)
    design = _Point(
        model,
        j,
        n,
        sizes,
        p,
        g,
        g2,
        names,
        r2_arr,
        icc_arr,
        omega_arr,
        r2t_arr,
        rate,
        a,
        int(tails),
        str(mtp),
        r,
        str(spec.approximation),
        0,
        None,
    )
    if j and not math.isnan(n):
        _check_df(design)
    return design


def _run(point: _Point, sims: object, seed: object) -> _Point:
    """The point with its simulation settings checked (used only when power is simulated)."""
    n = _integer("sims", sims, 1000)
    if seed is None:
        seed_int = None
    elif isinstance(seed, np.random.Generator):
        # A Generator is turned into an integer once, so every evaluation (search steps,
        # curve points) reuses the same draws.
        seed_int = int(seed.integers(0, 2**63 - 1))
    else:
        rng_from(seed)  # type: ignore[arg-type]  # checks type and range, with the project's message
        seed_int = int(seed)  # type: ignore[call-overload]
    return dataclasses.replace(point, sims=n, seed=seed_int)


def _require(point: _Point, *, schools: bool = True, students: bool = True) -> None:
    """Refuse a design that leaves out a size the question needs."""
    if schools and not point.schools:
        raise _bad("schools is required")
    if students and math.isnan(point.n):
        raise _bad("students_per_school is required")


def _check_df(d: _Point) -> float:
    df = d.df()
    if df <= 0:
        info = _MODEL_INFO[d.model]
        raise _fail(
            f"degrees of freedom df = {info['df']} = {df:g} <= 0 for the {d.model} model "
            f"with {d.schools} schools, {d.n:g} students per school, "
            f"{d.n_covariates} student and {d.n_school_covariates} school covariates; "
            "add schools or students, or use fewer covariates"
        )
    return df


# ----------------------------------------------------------------------------- analytic core


def _crit(level: float | FloatArray, df: float, tails: int) -> Any:
    """Critical value of the test statistic (|t| when two-tailed) at level ``level``."""
    return stats.t.isf(np.asarray(level, dtype=float) / tails, df)


def _multiplier(df: float, alpha: float, target: float, tails: int) -> float:
    """Bloom's multiplier t(1 - alpha/tails, df) + t(power, df)."""
    return float(stats.t.isf(alpha / tails, df) + stats.t.ppf(target, df))


def _analytic_power(
    shift: FloatArray, df: float, alpha: float, tails: int, approximation: str
) -> FloatArray:
    """Power of a t test whose statistic has mean ``shift`` (in standard errors)."""
    s = np.abs(np.asarray(shift, dtype=float))
    c = float(stats.t.isf(alpha / tails, df))
    if approximation == "noncentral":
        up = stats.nct.sf(c, df, s)
        # P(T < -c | s) = P(T > c | -s): scipy's nct.cdf returns NaN deep in this tail
        low = stats.nct.sf(c, df, -s) if tails == 2 else 0.0
    else:
        up = stats.t.sf(c - s, df)
        low = stats.t.cdf(-c - s, df) if tails == 2 else 0.0
    return np.asarray(up + low, dtype=float)


def _noncentral_multiplier(df: float, alpha: float, target: float, tails: int) -> float:
    """The shift at which the noncentral-t power equals ``target`` (exact inverse)."""
    floor = float(_analytic_power(np.zeros(1), df, alpha, tails, "noncentral")[0])
    if target <= floor:
        return 0.0
    hi = _multiplier(df, alpha, target, tails) + 5.0

    def gap(s: float) -> float:
        return float(_analytic_power(np.array([s]), df, alpha, tails, "noncentral")[0]) - target

    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-12))


# ----------------------------------------------------------------------------- simulation core


def _mvt(rng: np.random.Generator, n: int, m: int, df: float, rho: float) -> FloatArray:
    """Draws of an m-variate t with equicorrelation ``rho`` (shared chi-square, like rmvt)."""
    cov = np.full((m, m), rho)
    np.fill_diagonal(cov, 1.0)
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    z = rng.standard_normal((n, m)) @ root.T
    v = rng.chisquare(df, n) / df
    return np.asarray(z / np.sqrt(v)[:, None], dtype=float)


@dataclass(frozen=True, slots=True)
class _Draws:
    base: FloatArray  # central multivariate t, (sims, m)
    wy: FloatArray | None  # Westfall-Young critical values for 1..m hypotheses
    df: float


def _draws(d: _Point, df: float) -> _Draws:
    """Common random numbers for one design: the same seed gives the same draws."""
    if d.seed is None:
        raise _bad(
            f"power for these {d.m} outcomes (mtp={d.mtp!r}) is simulated from draws of the "
            "test statistics: pass seed=... so the result can be reproduced"
        )
    rng = np.random.default_rng(d.seed)
    base = _mvt(rng, d.sims, d.m, df, d.rho)
    wy = None
    if d.mtp in ("wy-ss", "wy-sd"):
        null = _mvt(rng, _NULL_DRAWS, d.m, df, d.rho)
        stat = np.abs(null) if d.tails == 2 else null
        # by exchangeability the max over any s outcomes has the law of the max over the first s
        running = np.maximum.accumulate(stat, axis=1)
        wy = np.quantile(running, 1.0 - d.alpha, axis=0)
    return _Draws(base, wy, df)


def _reject(
    t: FloatArray, mtp: str, alpha: float, df: float, tails: int, wy: FloatArray | None
) -> BoolArray:
    """Which hypotheses each draw rejects under the procedure (rows are draws).

    Every procedure is a threshold rule on the statistics sorted from largest to smallest:
    rejecting when the adjusted p-value is at most alpha is the same as the statistic
    reaching the matching critical value.
    """
    s = np.abs(t) if tails == 2 else t
    m = s.shape[1]
    if mtp == "none":
        return np.asarray(s >= _crit(alpha, df, tails))
    if mtp == "bonferroni":
        return np.asarray(s >= _crit(alpha / m, df, tails))
    if mtp == "wy-ss":
        assert wy is not None
        return np.asarray(s >= wy[m - 1])
    order = np.argsort(-s, axis=1, kind="stable")
    ss = np.take_along_axis(s, order, axis=1)
    k = np.arange(1, m + 1)
    if mtp == "holm":
        ok = ss >= _crit(alpha / (m - k + 1), df, tails)
        r = np.cumprod(ok, axis=1).sum(axis=1)
    elif mtp == "wy-sd":
        assert wy is not None
        ok = ss >= wy[m - k]
        r = np.cumprod(ok, axis=1).sum(axis=1)
    else:  # bh: step-up, the largest k with p_(k) <= k alpha / m
        ok = ss >= _crit(k * alpha / m, df, tails)
        r = np.where(ok.any(axis=1), m - np.argmax(ok[:, ::-1], axis=1), 0)
    rej_sorted = np.arange(m)[None, :] < r[:, None]
    out: BoolArray = np.empty_like(rej_sorted)
    np.put_along_axis(out, order, rej_sorted, axis=1)
    return out


def _definition_power(rej: BoolArray, nonzero: BoolArray, definition: str, at_least: int) -> float:
    if definition == "individual":
        return float(rej[:, nonzero].mean())
    count = rej[:, nonzero].sum(axis=1)
    need = int(nonzero.sum()) if definition == "complete" else at_least
    return float((count >= need).mean())


def _definitions_frame(rej: BoolArray, nonzero: BoolArray, mtp: str) -> pd.DataFrame:
    n = rej.shape[0]
    k = int(nonzero.sum())
    m = rej.shape[1]
    rows: list[dict[str, Any]] = []

    def add(definition: str, d: int, value: float) -> None:
        rows.append(
            {
                "definition": definition,
                "d": d,
                "power": value,
                "mc_std_error": math.sqrt(max(value * (1 - value), 0.0) / n),
                "mtp": mtp,
            }
        )

    if k:
        add("individual_mean", 1, float(rej[:, nonzero].mean()))
        count = rej[:, nonzero].sum(axis=1)
        for d in range(1, k):
            add("minimal", d, float((count >= d).mean()))
        add("complete" if k == m else "minimal", k, float((count >= k).mean()))
    return pd.DataFrame(rows, columns=["definition", "d", "power", "mc_std_error", "mtp"])


def _search_shift(
    draws: _Draws, d: _Point, target: float, definition: str, at_least: int
) -> tuple[float, float]:
    """Smallest common shift (in SEs) whose simulated power reaches ``target``."""
    nonzero = np.ones(d.m, dtype=bool)

    def pw(k: float) -> float:
        rej = _reject(draws.base + k, d.mtp, d.alpha, draws.df, d.tails, draws.wy)
        return _definition_power(rej, nonzero, definition, at_least)

    lo, hi = 0.0, _multiplier(draws.df, d.alpha / d.m, target, d.tails) + 1.0
    p_hi = pw(hi)
    while p_hi < target:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:
            raise _fail(
                f"{definition} power {target:g} is not reached by any effect size with "
                f"{d.sims:,} draws; raise sims or lower the target"
            )
        p_hi = pw(hi)
    if pw(lo) >= target:
        return lo, pw(lo)
    while hi - lo > 1e-4:
        mid = 0.5 * (lo + hi)
        p_mid = pw(mid)
        if p_mid >= target:
            hi, p_hi = mid, p_mid
        else:
            lo = mid
    return hi, p_hi


# ----------------------------------------------------------------------------- evaluation


def _needs_simulation(d: _Point, definition: str) -> bool:
    return d.m > 1 and (d.mtp in _SIMULATED_MTPS or definition != "individual")


def _mdes_shift(d: _Point, target: float, definition: str, at_least: int) -> tuple[float, Any]:
    """The multiplier (shift in SEs) at the MDES and, when simulated, the draws used."""
    df = _check_df(d)
    if _needs_simulation(d, definition):
        if d.approximation == "noncentral":
            raise _bad(
                "approximation='noncentral' is analytic; multiple-testing power is simulated "
                "with the shifted t (as PUMP): use approximation='shifted'"
            )
        draws = _draws(d, df)
        k, _ = _search_shift(draws, d, target, definition, at_least)
        return k, draws
    if d.approximation == "noncentral":
        return _noncentral_multiplier(df, d.alpha_individual, target, d.tails), None
    return _multiplier(df, d.alpha_individual, target, d.tails), None


def _evaluate(
    d: _Point,
    *,
    target: float,
    definition: str,
    at_least: int,
    effects: FloatArray | None,
    simulate_definitions: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-outcome frame and power-definition frame at one design point."""
    df = _check_df(d)
    se = d.se()
    shift_k, draws = _mdes_shift(d, target, definition, at_least)
    mdes_sd = shift_k * se
    eff = mdes_sd if effects is None else effects
    shifts = np.abs(eff) / se
    mc_se = np.full(d.m, np.nan)
    definitions = pd.DataFrame(columns=["definition", "d", "power", "mc_std_error", "mtp"])
    sim_mtp = d.m > 1 and d.mtp in _SIMULATED_MTPS
    want_definitions = (
        d.m > 1 and d.approximation == "shifted" and (simulate_definitions or draws is not None)
    )
    pw = _analytic_power(shifts, df, d.alpha_individual, d.tails, d.approximation)
    if sim_mtp or want_definitions:
        if d.approximation == "noncentral":
            raise _bad(
                "approximation='noncentral' is analytic; multiple-testing power is simulated "
                "with the shifted t (as PUMP): use approximation='shifted'"
            )
        draws = draws if draws is not None else _draws(d, df)
        rej = _reject(draws.base + shifts, d.mtp, d.alpha, df, d.tails, draws.wy)
        definitions = _definitions_frame(rej, shifts > 0, d.mtp)
        if sim_mtp:
            pw = rej.mean(axis=0)
            mc_se = np.sqrt(pw * (1 - pw) / d.sims)
    sd_binary = np.sqrt(d.control_rate * (1.0 - d.control_rate))
    n_students = float(sum(d.school_sizes)) if d.school_sizes else d.schools * d.n
    frame = pd.DataFrame(
        {
            "outcome": list(d.names),
            "model": d.model,
            "schools": d.schools,
            "students_per_school": d.n,
            "n_students": n_students,
            "share_treated": d.share_treated,
            "r2": d.r2,
            "icc": d.icc,
            "omega": d.omega,
            "r2_school_impact": d.r2_t,
            "control_rate": d.control_rate,
            "df": df,
            "std_error": se,
            "multiplier": shift_k,
            "mdes": mdes_sd,
            "mde_pp": 100.0 * mdes_sd * sd_binary,
            "effect_size": eff,
            "effect_pp": 100.0 * eff * sd_binary,
            "power": pw,
            "mc_std_error": mc_se,
            "alpha": d.alpha,
            "tails": d.tails,
            "mtp": d.mtp,
        }
    )
    return frame, definitions
