"""Power, minimum detectable effect size (MDES) and sample size for a blocked trial.

Students are randomized within schools (the blocks). Three verbs answer the planning
questions from one design declaration:

* :func:`mdes` -- the smallest true effect the design detects with the target power;
* :func:`power` -- the probability of a significant estimate for a given true effect;
* :func:`sample_size` -- the number of schools, or of students per school, needed for a
  given effect.

Models (Dong & Maynard 2013, PowerUp!; Hunter, Miratrix & Porter, PUMP), with J schools,
n the harmonic mean of school sizes, P the share treated, g student covariates and
g2 school covariates (effects in standard deviations of the outcome):

=============  ==========  ===========  =======================  ==============================
``model``      PowerUp!    PUMP         degrees of freedom       standard error of the impact
=============  ==========  ===========  =======================  ==============================
``constant``   bira2c1     d2.1_m2fc    J(n - 1) - g - 1         sqrt[(1-ICC)(1-R2)/(P(1-P)Jn)]
``fixed``      bira2f1     d2.1_m2ff    J(n - 2) - g             as ``constant``
``random``     bira2r1     d2.1_m2fr    J - g2 - 1               sqrt[ICC w (1-R2_T)/J + (1-ICC)
                                                                 (1-R2)/(P(1-P)Jn)]
``unblocked``  ira1r1      (d1.1_m1c)   N - g - 2                sqrt[(1-R2)/(P(1-P)N)]
=============  ==========  ===========  =======================  ==============================

``R2`` is the share of the within-school variance explained by student covariates and
``ICC`` the share of the outcome variance between schools (PUMP's parameterization). With
``icc=0``, ``r2`` is PowerUp!'s ``r21`` for ``bira2c1``/``bira2f1``: the R-squared that
includes the school dummies. For ``unblocked`` (students randomized and analysed without
school blocks), ``r2`` is the share of the total variance explained and ``icc`` is unused.

The MDES is Bloom's (1995) multiplier times the standard error,
``M = t(1 - alpha/tails, df) + t(power, df)``; power counts rejections in both tails of a
central t shifted by effect / SE, the distribution PUMP simulates. Binary outcomes are
reported in percentage points as well: MDE = MDES x sqrt[pi (1 - pi)] for control rate pi.

With several outcomes and a multiple-testing procedure (Bonferroni, Holm, Benjamini-
Hochberg, Westfall-Young single-step or step-down), power is computed as in PUMP by drawing
the joint test statistics (multivariate t with the design's degrees of freedom and an
equicorrelation ``rho``), applying the procedure to every draw and counting rejections:
individual power (per outcome), d-minimal power (at least d significant) and complete power
(all significant). The MDES under a procedure is found by bisection on common draws.

Differences from the reference implementations, on purpose:

* d-minimal and complete power count the outcomes with a non-zero true effect that are
  significant *after* adjustment. PUMP computes complete power from unadjusted p-values;
  that quantity is complete power with ``mtp="none"`` here.
* The random-impacts model uses PowerUp!'s df = J - g2 - 1 (school covariates); PUMP's
  ``d2.1_m2fr`` subtracts the number of student covariates instead.
* Benjamini-Hochberg is the step-up FDR procedure (some PUMP versions ran Hochberg's
  FWER procedure under that name).
* Sample sizes are the smallest whole number that reaches the target; PowerUp!'s ``mrss``
  rounds to the nearest whole number.

The package re-exports the verbs, so ``cis_eval.power`` is the function; import the module
with ``from cis_eval.design.power import mdes, power, sample_size``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._typing import BoolArray, FloatArray, check_option, rng_from
from ..errors import DesignError
from ..present.table import Table, records

__all__ = [
    "APPROXIMATIONS",
    "MODELS",
    "MTPS",
    "POWER_DEFINITIONS",
    "PowerResult",
    "mdes",
    "power",
    "sample_size",
]

Model = Literal["constant", "fixed", "random", "unblocked"]
MTP = Literal["none", "bonferroni", "holm", "bh", "wy-ss", "wy-sd"]
PowerDefinition = Literal["individual", "minimal", "complete"]
Approximation = Literal["shifted", "noncentral"]
SolveFor = Literal["schools", "students_per_school"]
CurveBy = Literal["schools", "students_per_school"]

# The options as tuples, read off the Literals so the two cannot disagree.
MODELS: tuple[str, ...] = get_args(Model)
MTPS: tuple[str, ...] = get_args(MTP)
POWER_DEFINITIONS: tuple[str, ...] = get_args(PowerDefinition)
APPROXIMATIONS: tuple[str, ...] = get_args(Approximation)

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
class _Design:
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
    n_draws: int
    seed: int

    @property
    def m(self) -> int:
        return len(self.names)

    def with_size(self, *, schools: int | None = None, n: float | None = None) -> _Design:
        return _Design(
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
            self.n_draws,
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
    return DesignError(message)


def _number(name: str, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise _fail(f"{name} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise _fail(f"{name} must be finite, got {out}")
    return out


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise _fail(f"{name} must be a whole number, got {value!r}")
    out = int(value)
    if out < minimum:
        raise _fail(f"{name} must be at least {minimum}, got {out}")
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
        raise _fail(f"{name} must be in {lb}{low:g}, {high:g}{hb}, got {value:g}")


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
            raise _fail(f"{name} is required")
        return np.full(m, np.nan)
    if isinstance(value, (str, bytes)):
        raise _fail(f"{name} must be a number or one number per outcome, got {value!r}")
    if isinstance(value, (Sequence, np.ndarray)):
        items = list(value)
        if len(items) != m:
            raise _fail(
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


def _design(
    *,
    schools: int | None,
    students_per_school: float | Sequence[float] | None,
    share_treated: float,
    r2: float | Sequence[float],
    icc: float | Sequence[float],
    model: str,
    omega: float | Sequence[float],
    r2_school_impact: float | Sequence[float],
    n_covariates: int,
    n_school_covariates: int,
    alpha: float,
    tails: int,
    outcomes: int | Sequence[str],
    control_rate: float | Sequence[float | None] | None,
    mtp: str,
    rho: float,
    approximation: str,
    n_draws: int,
    seed: int | np.random.Generator,
    need_schools: bool = True,
    need_n: bool = True,
) -> _Design:
    check_option("model", model, MODELS)
    mtp = mtp.lower() if isinstance(mtp, str) else mtp
    check_option("mtp", mtp, MTPS)
    check_option("approximation", approximation, APPROXIMATIONS)
    if tails not in (1, 2) or isinstance(tails, bool):
        raise _fail(f"tails must be 1 (one-tailed) or 2 (two-tailed), got {tails!r}")

    # outcomes
    if isinstance(outcomes, (int, np.integer)) and not isinstance(outcomes, bool):
        m = _integer("outcomes", outcomes, 1)
        names = ("outcome",) if m == 1 else tuple(f"outcome_{i + 1}" for i in range(m))
    elif isinstance(outcomes, Sequence) and not isinstance(outcomes, (str, bytes)):
        names = tuple(str(o) for o in outcomes)
        if not names:
            raise _fail("outcomes is empty; give a number of outcomes or their names")
        if len(set(names)) != len(names):
            raise _fail("outcomes has repeated names; each outcome must be named once")
        m = len(names)
    else:
        raise _fail(f"outcomes must be a number or a list of names, got {outcomes!r}")

    # sizes
    min_schools = 1 if model == "unblocked" else 2
    sizes: tuple[float, ...] = ()
    j: int = 0
    n: float = float("nan")
    if isinstance(students_per_school, (Sequence, np.ndarray)):
        if isinstance(students_per_school, (str, bytes)):
            raise _fail("students_per_school must be a number or a list of school sizes")
        sizes = tuple(
            _number(f"students_per_school[{i}]", v) for i, v in enumerate(students_per_school)
        )
        if not sizes:
            raise _fail("students_per_school is an empty list of school sizes")
        for i, s in enumerate(sizes):
            if s <= 0:
                raise _fail(f"students_per_school[{i}] = {s:g}: school sizes must be positive")
        n = len(sizes) / sum(1.0 / s for s in sizes)
        if schools is not None and _integer("schools", schools, 1) != len(sizes):
            raise _fail(
                f"schools = {schools} but students_per_school lists {len(sizes)} school "
                "sizes; give one size per school or leave schools out"
            )
        schools = len(sizes)
    elif students_per_school is not None:
        n = _number("students_per_school", students_per_school)
        if n <= 0:
            raise _fail(f"students_per_school must be positive, got {n:g}")
    elif need_n:
        raise _fail("students_per_school is required")
    if schools is not None:
        j = _integer("schools", schools, 1)
        if j < min_schools:
            raise _fail(
                f"schools = {j}: a blocked design needs at least 2 schools (blocks); with "
                "one school use model='unblocked'"
            )
    elif need_schools:
        raise _fail("schools is required")
    if need_n and model != "unblocked" and n < 2:
        raise _fail(
            f"students_per_school = {n:g}: each school needs at least 2 students (one per arm)"
        )

    p = _number("share_treated", share_treated)
    _in_range("share_treated", p, 0.0, 1.0, low_open=True, high_open=True)
    a = _number("alpha", alpha)
    _in_range("alpha", a, 0.0, 1.0, low_open=True, high_open=True)
    g = _integer("n_covariates", n_covariates, 0)
    g2 = _integer("n_school_covariates", n_school_covariates, 0)
    r2_arr = _per_outcome("r2", r2, m, low=0.0, high=1.0, high_open=True)
    icc_arr = _per_outcome("icc", icc, m, low=0.0, high=1.0, high_open=True)
    omega_arr = _per_outcome("omega", omega, m, low=0.0, high=np.inf)
    r2t_arr = _per_outcome(
        "r2_school_impact", r2_school_impact, m, low=0.0, high=1.0, high_open=True
    )
    rate = _per_outcome(
        "control_rate",
        control_rate,
        m,
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
        allow_none=True,
    )
    r = _number("rho", rho)
    lower = -1.0 / (m - 1) if m > 1 else -1.0
    _in_range("rho", r, lower, 1.0, low_open=False, high_open=False)
    draws = _integer("n_draws", n_draws, 1000)
    # A Generator is turned into an integer once, so every evaluation (search steps, curve
    # points) reuses the same draws.
    seed_int = (
        int(rng_from(seed).integers(0, 2**63 - 1))
        if isinstance(seed, np.random.Generator)
        else _seed_int(seed)
    )
    design = _Design(
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
        str(approximation),
        draws,
        seed_int,
    )
    if j and not math.isnan(n):
        _check_df(design)
    return design


def _seed_int(seed: int) -> int:
    rng_from(seed)  # raises the project's message for a bad seed
    return int(seed)


def _check_df(d: _Design) -> float:
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
    base: FloatArray  # central multivariate t, (n_draws, m)
    wy: FloatArray | None  # Westfall-Young critical values for 1..m hypotheses
    df: float


def _draws(d: _Design, df: float) -> _Draws:
    """Common random numbers for one design: the same seed gives the same draws."""
    rng = np.random.default_rng(d.seed)
    base = _mvt(rng, d.n_draws, d.m, df, d.rho)
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
    draws: _Draws, d: _Design, target: float, definition: str, at_least: int
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
                f"{d.n_draws:,} draws; raise n_draws or lower the target"
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


def _needs_simulation(d: _Design, definition: str) -> bool:
    return d.m > 1 and (d.mtp in _SIMULATED_MTPS or definition != "individual")


def _mdes_shift(d: _Design, target: float, definition: str, at_least: int) -> tuple[float, Any]:
    """The multiplier (shift in SEs) at the MDES and, when simulated, the draws used."""
    df = _check_df(d)
    if _needs_simulation(d, definition):
        if d.approximation == "noncentral":
            raise _fail(
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
    d: _Design,
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
            raise _fail(
                "approximation='noncentral' is analytic; multiple-testing power is simulated "
                "with the shifted t (as PUMP): use approximation='shifted'"
            )
        draws = draws if draws is not None else _draws(d, df)
        rej = _reject(draws.base + shifts, d.mtp, d.alpha, df, d.tails, draws.wy)
        definitions = _definitions_frame(rej, shifts > 0, d.mtp)
        if sim_mtp:
            pw = rej.mean(axis=0)
            mc_se = np.sqrt(pw * (1 - pw) / d.n_draws)
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


# ----------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class PowerResult:
    """Minimum detectable effects, power or required sample size of a blocked trial.

    Attributes
    ----------
    kind : {"mdes", "power", "sample_size"}
        Which question the result answers.
    model : {"constant", "fixed", "random", "unblocked"}
        The impact model (see the module notes for PowerUp! and PUMP names).
    schools : int
        Number of schools J (solved for when ``solved_for == "schools"``).
    students_per_school : float
        Harmonic mean of school sizes n (solved for when
        ``solved_for == "students_per_school"``).
    school_sizes : tuple of float
        The school sizes given, if any (their harmonic mean is ``students_per_school``).
    df : float
        Degrees of freedom of the impact test.
    target_power : float
        Power the MDES or sample size aims at.
    mtp : str
        Multiple-testing procedure.
    power_definition : {"individual", "minimal", "complete"}
        Power definition the MDES or sample size aims at (``at_least`` for minimal).
    at_least : int
        d of d-minimal power.
    rho : float
        Correlation of the outcomes' test statistics (simulation only).
    n_draws : int
        Draws of the test statistics when power is simulated.
    seed : int
        Seed of those draws.
    simulated : bool
        Whether any number was simulated (multiple outcomes).
    solved_for : str or None
        ``"schools"`` or ``"students_per_school"`` for sample-size results.
    """

    kind: str
    model: str
    schools: int
    students_per_school: float
    school_sizes: tuple[float, ...]
    df: float
    target_power: float
    mtp: str
    power_definition: str
    at_least: int
    rho: float
    n_draws: int
    seed: int
    simulated: bool
    solved_for: str | None
    _frame: pd.DataFrame = field(repr=False)
    _definitions: pd.DataFrame = field(repr=False)
    _design: _Design = field(repr=False)

    def __repr__(self) -> str:
        m = len(self._frame)
        extra = f", mtp={self.mtp}" if self.mtp != "none" else ""
        return (
            f"PowerResult({self.kind}, {self.model} model, {self.schools:,} schools x "
            f"{self.students_per_school:,.1f} students, {m} outcome{'s' if m != 1 else ''}"
            f"{extra})"
        )

    # -- data ---------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome (a fresh copy).

        Columns: ``outcome, model, schools, students_per_school, n_students,
        share_treated, r2, icc, omega, r2_school_impact, control_rate, df, std_error,
        multiplier, mdes, mde_pp, effect_size, effect_pp, power, mc_std_error, alpha,
        tails, mtp``. ``mdes`` and ``std_error`` are in standard deviations of the outcome;
        ``mde_pp`` and ``effect_pp`` in percentage points for binary outcomes (NaN
        otherwise); ``power`` is each outcome's individual power at ``effect_size`` under
        the procedure, with its Monte Carlo standard error when simulated.
        """
        return self._frame.copy()

    def power_definitions(self) -> pd.DataFrame:
        """Multiple-outcome power (a fresh copy; empty for one outcome or no simulation).

        Columns ``definition`` (``individual_mean``, ``minimal``, ``complete``), ``d``,
        ``power``, ``mc_std_error``, ``mtp``. Minimal and complete power count the
        outcomes with a non-zero true effect that are significant after adjustment.
        """
        return self._definitions.copy()

    @property
    def mdes(self) -> pd.Series:
        """MDES by outcome, in standard deviations."""
        return self._frame.set_index("outcome")["mdes"].copy()

    @property
    def power(self) -> pd.Series:
        """Individual power by outcome at ``effect_size``."""
        return self._frame.set_index("outcome")["power"].copy()

    # -- presentation ---------------------------------------------------------------------

    def notes(self) -> tuple[str, ...]:
        """Footnotes: model, formula, degrees of freedom, assumptions and procedure."""
        info = _MODEL_INFO[self.model]
        d = self._design
        tails = "two-tailed" if d.tails == 2 else "one-tailed"
        out = [
            f"Model: {info['label']} (PowerUp! {info['powerup']}, PUMP {info['pump']}); "
            f"SE = {info['se']}; df = {info['df']} = {self.df:,.0f}.",
            f"{d.schools:,} schools, {self.students_per_school:,.1f} students per school, "
            f"{d.share_treated:.0%} treated; alpha = {d.alpha:g}, {tails}.",
        ]
        if self.school_sizes:
            arith = float(np.mean(self.school_sizes))
            out.append(
                f"Students per school is the harmonic mean of the {len(self.school_sizes)} "
                f"school sizes (arithmetic mean {arith:,.1f})."
            )
        if self.kind != "power":
            if _needs_simulation(d, self.power_definition):
                out.append(
                    "MDES = multiplier x SE; the multiplier is the smallest common shift of "
                    "the simulated test statistics that reaches power "
                    f"{self.target_power:.0%}."
                )
            else:
                exact = " (noncentral t solved exactly)" if d.approximation == "noncentral" else ""
                out.append(
                    "MDES = M x SE with Bloom's multiplier M = t(1 - alpha/tails, df) + "
                    f"t(power, df) at power {self.target_power:.0%}{exact}."
                )
        if self.kind == "sample_size":
            size = "schools" if self.solved_for == "schools" else "students per school"
            out.append(
                f"Solved for the smallest whole number of {size} that detects the effect "
                f"shown with {self.target_power:.0%} power."
            )
        if d.mtp != "none":
            line = f"Multiple testing: {_MTP_LABELS[d.mtp]} across {d.m} outcomes"
            if d.mtp == "bonferroni" and not self.simulated:
                line += f" (alpha/{d.m} per test)."
            else:
                line += (
                    f"; power simulated from {self.n_draws:,} draws of the test statistics "
                    f"(multivariate t, correlation {self.rho:g}, seed {self.seed})."
                )
            out.append(line)
        if self.kind != "power" and (self.power_definition != "individual"):
            what = (
                f"at least {self.at_least} of {d.m} outcomes significant"
                if self.power_definition == "minimal"
                else f"all {d.m} outcomes significant"
            )
            out.append(f"Target power definition: {what}.")
        if not np.all(np.isnan(d.control_rate)):
            out.append(
                "Binary outcomes: MDE in percentage points = MDES x sqrt[pi (1 - pi)] for "
                "control rate pi."
            )
        return tuple(out)

    def table(self) -> Table:
        """The result as a presentation table with reader labels and notes."""
        f = self._frame
        binary = bool(np.any(~np.isnan(f["control_rate"].to_numpy())))
        cols: dict[str, Any] = {"Outcome": f["outcome"]}
        formats = {
            "Std. error": ".3f",
            "df": ",.0f",
            "Multiplier": ".3f",
            "MDES (SD)": ".3f",
            "MDE (pp)": ".1f",
            "Effect (SD)": ".3f",
            "Effect (pp)": ".1f",
            "Power": ".3f",
            "Students per school": ",.1f",
            "R2": ".2f",
        }
        if self.kind == "sample_size":
            cols["Schools"] = f["schools"]
            cols["Students per school"] = f["students_per_school"]
        cols["R2"] = f["r2"]
        cols["Std. error"] = f["std_error"]
        cols["Multiplier"] = f["multiplier"]
        cols["MDES (SD)"] = f["mdes"]
        if binary:
            cols["MDE (pp)"] = f["mde_pp"]
        if self.kind != "mdes":
            cols["Effect (SD)"] = f["effect_size"]
            if binary:
                cols["Effect (pp)"] = f["effect_pp"]
        cols["Power"] = f["power"]
        data = pd.DataFrame(cols)
        if not self._definitions.empty and self.kind != "mdes":
            m = len(f)
            k = int((f["effect_size"] != 0).sum())
            of = "" if k == m else f" of the {k} with an effect"
            extra = []
            for rec in records(self._definitions):
                if rec.definition == "individual_mean":
                    label = "Mean individual power" + ("" if k == m else f" ({k} with an effect)")
                elif rec.definition == "complete":
                    label = f"All {m} significant"
                else:
                    label = f"At least {rec.d}{of} significant"
                row: dict[str, Any] = dict.fromkeys(data.columns)
                row["Outcome"] = label
                row["Power"] = rec.power
                extra.append(row)
            data = pd.concat([data, pd.DataFrame(extra, columns=data.columns)], ignore_index=True)
        titles = {
            "mdes": "Minimum detectable effect sizes",
            "power": "Statistical power",
            "sample_size": "Required sample size",
        }
        return Table(
            data,
            title=titles[self.kind],
            notes=self.notes(),
            formats={k: v for k, v in formats.items() if k in data.columns},
        )

    # -- curves ---------------------------------------------------------------------------

    def curve(
        self, *, by: CurveBy = "schools", values: Sequence[float] | None = None
    ) -> pd.DataFrame:
        """MDES by outcome over a range of numbers of schools or students per school.

        Parameters
        ----------
        by : {"schools", "students_per_school"}
            The size that varies; the other stays at this result's value.
        values : sequence of float, optional
            Sizes to evaluate. Default: about a quarter to three times the design's size.

        Returns
        -------
        pandas.DataFrame
            Columns ``by`` (the name passed), ``outcome``, ``mdes``, ``mde_pp``, ``df``.
        """
        check_option("by", by, ("schools", "students_per_school"))
        d = self._design
        if values is None:
            if by == "schools":
                lo = 1 if d.model == "unblocked" else 2
                grid = np.unique(np.round(np.geomspace(max(lo, d.schools / 4), 3 * d.schools, 12)))
            else:
                grid = np.unique(np.round(np.geomspace(max(3.0, d.n / 4), 3 * d.n, 12)))
            values = [float(v) for v in grid]
        rows = []
        for v in values:
            point = d.with_size(schools=int(v)) if by == "schools" else d.with_size(n=float(v))
            if point.df() <= 0:
                continue
            k, _ = _mdes_shift(point, self.target_power, self.power_definition, self.at_least)
            mdes_sd = k * point.se()
            pp = 100.0 * mdes_sd * np.sqrt(d.control_rate * (1.0 - d.control_rate))
            for name, m_, p_ in zip(d.names, mdes_sd, pp, strict=True):
                rows.append({by: v, "outcome": name, "mdes": m_, "mde_pp": p_, "df": point.df()})
        return pd.DataFrame(rows, columns=[by, "outcome", "mdes", "mde_pp", "df"])

    def plot(self, ax: Any = None, *, by: CurveBy = "schools") -> Any:
        """Power curve: MDES against the number of schools or students per school.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is made when omitted.
        by : {"schools", "students_per_school"}
            The size on the horizontal axis.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        curve = self.curve(by=by)
        groups: dict[tuple[float, ...], list[str]] = {}
        for name, g in curve.groupby("outcome", sort=False):
            key = tuple(np.round(g["mdes"].to_numpy(), 6))
            groups.setdefault(key, []).append(str(name))
        for names in groups.values():
            sub = curve[curve["outcome"] == names[0]]
            label = ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more"
            ax.plot(sub[by], sub["mdes"], marker="o", markersize=3, label=label)
        x0 = self.schools if by == "schools" else self.students_per_school
        ax.axvline(x0, linestyle=":", color="0.4", linewidth=1)
        ax.set_xlabel("Number of schools" if by == "schools" else "Students per school")
        ax.set_ylabel(f"MDES (SD) at {self.target_power:.0%} power")
        ax.set_title(
            f"{self.model.capitalize()} model"
            + (f", {_MTP_LABELS[self.mtp]}" if self.mtp != "none" else ""),
            fontsize="medium",
        )
        ax.set_ylim(bottom=0)
        if len(groups) > 1:
            ax.legend(frameon=False, fontsize="small")
        return ax


def _result(
    d: _Design,
    *,
    kind: str,
    target: float,
    definition: str,
    at_least: int,
    effects: FloatArray | None,
    solved_for: str | None = None,
) -> PowerResult:
    frame, definitions = _evaluate(
        d,
        target=target,
        definition=definition,
        at_least=at_least,
        effects=effects,
        simulate_definitions=(kind == "power"),
    )
    simulated = bool(not definitions.empty or (d.m > 1 and d.mtp in _SIMULATED_MTPS))
    return PowerResult(
        kind=kind,
        model=d.model,
        schools=d.schools,
        students_per_school=d.n,
        school_sizes=d.school_sizes,
        df=float(frame["df"].iloc[0]),
        target_power=target,
        mtp=d.mtp,
        power_definition=definition,
        at_least=at_least,
        rho=d.rho,
        n_draws=d.n_draws,
        seed=d.seed,
        simulated=simulated,
        solved_for=solved_for,
        _frame=frame,
        _definitions=definitions,
        _design=d,
    )


def _check_target(target: float, definition: str, at_least: int, m: int) -> tuple[float, int]:
    t = _number("power", target)
    _in_range("power", t, 0.0, 1.0, low_open=True, high_open=True)
    check_option("power_definition", definition, POWER_DEFINITIONS)
    d = _integer("at_least", at_least, 1)
    if definition == "minimal" and d > m:
        raise _fail(f"at_least = {d} but there {'is' if m == 1 else 'are'} only {m} outcomes")
    return t, d


# ----------------------------------------------------------------------------- verbs


def mdes(
    *,
    schools: int | None = None,
    students_per_school: float | Sequence[float],
    share_treated: float = 0.5,
    r2: float | Sequence[float] = 0.0,
    icc: float | Sequence[float] = 0.0,
    model: Model = "constant",
    omega: float | Sequence[float] = 0.0,
    r2_school_impact: float | Sequence[float] = 0.0,
    n_covariates: int = 0,
    n_school_covariates: int = 0,
    alpha: float = 0.05,
    power: float = 0.80,
    tails: int = 2,
    outcomes: int | Sequence[str] = 1,
    control_rate: float | Sequence[float | None] | None = None,
    mtp: MTP = "none",
    rho: float = 0.0,
    power_definition: PowerDefinition = "individual",
    at_least: int = 1,
    approximation: Approximation = "shifted",
    n_draws: int = 20_000,
    seed: int | np.random.Generator = 0,
) -> PowerResult:
    r"""Minimum detectable effect size of a blocked, individually randomized trial.

    Parameters
    ----------
    schools : int, optional
        Number of schools J (at least 2; 1 is allowed for ``model="unblocked"``). May be
        left out when ``students_per_school`` lists every school's size.
    students_per_school : float or sequence of float
        Students per school, or every school's size; a list is summarised by its harmonic
        mean (as PowerUp! and PUMP expect) and the notes say so.
    share_treated : float, default 0.5
        Share of students assigned to the program, P, in (0, 1).
    r2 : float or sequence of float, default 0
        Share of the within-school outcome variance explained by student covariates, in
        [0, 1); one value or one per outcome. With ``icc=0`` this is PowerUp!'s ``r21``.
    icc : float or sequence of float, default 0
        Intraclass correlation: share of the outcome variance between schools, in [0, 1).
    model : {"constant", "fixed", "random", "unblocked"}, default "constant"
        Impact model; see the module notes.
    omega : float or sequence of float, default 0
        Random model only: variance of school impacts over variance of school intercepts.
    r2_school_impact : float or sequence of float, default 0
        Random model only: share of the impact variance explained by school covariates.
    n_covariates, n_school_covariates : int, default 0
        Numbers of student (g) and school (g2) covariates; they only change the df.
    alpha : float, default 0.05
        Significance level (family-wise for a multiple-testing procedure).
    power : float, default 0.80
        Target power, in (0, 1).
    tails : {1, 2}, default 2
        One- or two-tailed test.
    outcomes : int or sequence of str, default 1
        Number of outcomes, or their names.
    control_rate : float or sequence of float or None, optional
        Control-group rate of binary outcomes, for the MDE in percentage points (``None``
        for continuous outcomes in a list).
    mtp : {"none", "bonferroni", "holm", "bh", "wy-ss", "wy-sd"}, default "none"
        Multiple-testing procedure across the outcomes (case-insensitive).
    rho : float, default 0
        Correlation between the outcomes' test statistics.
    power_definition : {"individual", "minimal", "complete"}, default "individual"
        What the target power refers to: each outcome, at least ``at_least`` outcomes, or
        all outcomes significant.
    at_least : int, default 1
        d of d-minimal power.
    approximation : {"shifted", "noncentral"}, default "shifted"
        ``shifted`` uses Bloom's multiplier (PowerUp!, PUMP, WWC); ``noncentral`` solves
        the noncentral-t power equation exactly (single-outcome calculations only).
    n_draws : int, default 20000
        Draws of the test statistics when power is simulated.
    seed : int or numpy.random.Generator, default 0
        Seed of the simulation (recorded in the result).

    Returns
    -------
    PowerResult
        ``to_frame()`` has the MDES per outcome, its standard error, df and multiplier.

    Raises
    ------
    DesignError
        A design that cannot be analysed (one school in a blocked design, share treated
        0 or 1, R-squared outside [0, 1), negative ICC, df <= 0, ...), naming the argument.

    See Also
    --------
    power, sample_size

    Notes
    -----
    .. math:: \mathrm{MDES} = \left[t_{1-\alpha/2}(df) + t_{1-\beta}(df)\right] SE

    with SE and df from the model (module notes). Under Bonferroni the per-test level is
    :math:`\alpha/M`. Under Holm, Benjamini-Hochberg or Westfall-Young, and for minimal or
    complete power, the multiplier is the smallest common shift of the simulated
    statistics that reaches the target power, so MDES = multiplier x SE for every outcome.

    References
    ----------
    Bloom, H. S. (1995). Minimum detectable effects. *Evaluation Review* 19(5), 547-556.
    Dong, N. & Maynard, R. (2013). PowerUp!. *JREE* 6(1), 24-67.
    Hunter, K., Miratrix, L. & Porter, K. (2024). PUMP. *Journal of Statistical Software*.
    Porter, K. E. (2018). Statistical power in evaluations that investigate effects on
    multiple outcomes. *JREE* 11(2), 267-295.

    Examples
    --------
    >>> from cis_eval.design.power import mdes
    >>> res = mdes(schools=20, students_per_school=60, r2=0.5)
    >>> round(float(res.mdes.iloc[0]), 3)
    0.114
    >>> res = mdes(schools=20, students_per_school=60, r2=0.2, control_rate=0.3)
    >>> round(float(res.to_frame()["mde_pp"].iloc[0]), 1)
    6.6
    """
    d = _design(
        schools=schools,
        students_per_school=students_per_school,
        share_treated=share_treated,
        r2=r2,
        icc=icc,
        model=model,
        omega=omega,
        r2_school_impact=r2_school_impact,
        n_covariates=n_covariates,
        n_school_covariates=n_school_covariates,
        alpha=alpha,
        tails=tails,
        outcomes=outcomes,
        control_rate=control_rate,
        mtp=mtp,
        rho=rho,
        approximation=approximation,
        n_draws=n_draws,
        seed=seed,
    )
    target, d_min = _check_target(power, power_definition, at_least, d.m)
    return _result(
        d, kind="mdes", target=target, definition=power_definition, at_least=d_min, effects=None
    )


def _effects(
    d: _Design,
    effect_size: float | Sequence[float] | None,
    effect_pp: float | Sequence[float] | None,
) -> FloatArray:
    if (effect_size is None) == (effect_pp is None):
        raise _fail("give exactly one of effect_size (SD units) or effect_pp (percentage points)")
    if effect_size is not None:
        return _per_outcome("effect_size", effect_size, d.m, low=-np.inf, high=np.inf)
    pp = _per_outcome("effect_pp", effect_pp, d.m, low=-100.0, high=100.0)
    if np.any(np.isnan(d.control_rate)):
        raise _fail("effect_pp needs control_rate for every outcome (binary outcomes)")
    return pp / (100.0 * np.sqrt(d.control_rate * (1.0 - d.control_rate)))


def power(
    *,
    effect_size: float | Sequence[float] | None = None,
    effect_pp: float | Sequence[float] | None = None,
    schools: int | None = None,
    students_per_school: float | Sequence[float],
    share_treated: float = 0.5,
    r2: float | Sequence[float] = 0.0,
    icc: float | Sequence[float] = 0.0,
    model: Model = "constant",
    omega: float | Sequence[float] = 0.0,
    r2_school_impact: float | Sequence[float] = 0.0,
    n_covariates: int = 0,
    n_school_covariates: int = 0,
    alpha: float = 0.05,
    tails: int = 2,
    outcomes: int | Sequence[str] = 1,
    control_rate: float | Sequence[float | None] | None = None,
    mtp: MTP = "none",
    rho: float = 0.0,
    approximation: Approximation = "shifted",
    n_draws: int = 20_000,
    seed: int | np.random.Generator = 0,
    target_power: float = 0.80,
) -> PowerResult:
    r"""Power of a blocked, individually randomized trial to detect a given effect.

    Parameters
    ----------
    effect_size : float or sequence of float, optional
        True effect in standard deviations of the outcome (magnitude; one-tailed tests are
        in its direction); one value or one per outcome (0 for outcomes without effect).
    effect_pp : float or sequence of float, optional
        The effect in percentage points for binary outcomes (needs ``control_rate``).
        Give exactly one of ``effect_size`` and ``effect_pp``.
    schools, students_per_school, share_treated, r2, icc, model, omega, r2_school_impact, \
n_covariates, n_school_covariates, alpha, tails, outcomes, control_rate, mtp, rho, \
approximation, n_draws, seed
        As in :func:`mdes`.
    target_power : float, default 0.80
        Power at which the MDES column (and :meth:`PowerResult.plot`) is computed.

    Returns
    -------
    PowerResult
        ``to_frame()["power"]`` is each outcome's individual power under the procedure;
        with several outcomes, ``power_definitions()`` adds mean individual, d-minimal and
        complete power, simulated with ``n_draws`` draws and ``seed``.

    Raises
    ------
    DesignError
        Invalid design or effect (see :func:`mdes`).

    See Also
    --------
    mdes, sample_size

    Notes
    -----
    With :math:`\delta = |\text{effect}| / SE` and :math:`c = t_{1-\alpha/2}(df)`,

    .. math:: \text{power} = 1 - F_{df}(c - \delta) + F_{df}(-c - \delta)

    (the shifted central t that PUMP simulates; ``approximation="noncentral"`` uses the
    noncentral t of PowerUp! and ``pwr`` instead). Because :func:`mdes` uses Bloom's
    multiplier, ``power`` at the MDES exceeds the target by the far-tail probability
    :math:`F_{df}(-2c - t_{power})`, below 0.001 for df >= 5.

    Examples
    --------
    >>> from cis_eval.design.power import power
    >>> res = power(effect_size=0.25, schools=14, students_per_school=55)
    >>> round(float(res.power.iloc[0]), 3)
    0.934
    """
    d = _design(
        schools=schools,
        students_per_school=students_per_school,
        share_treated=share_treated,
        r2=r2,
        icc=icc,
        model=model,
        omega=omega,
        r2_school_impact=r2_school_impact,
        n_covariates=n_covariates,
        n_school_covariates=n_school_covariates,
        alpha=alpha,
        tails=tails,
        outcomes=outcomes,
        control_rate=control_rate,
        mtp=mtp,
        rho=rho,
        approximation=approximation,
        n_draws=n_draws,
        seed=seed,
    )
    target, _ = _check_target(target_power, "individual", 1, d.m)
    eff = _effects(d, effect_size, effect_pp)
    return _result(d, kind="power", target=target, definition="individual", at_least=1, effects=eff)


def sample_size(
    *,
    effect_size: float | Sequence[float] | None = None,
    effect_pp: float | Sequence[float] | None = None,
    solve_for: SolveFor = "schools",
    schools: int | None = None,
    students_per_school: float | None = None,
    share_treated: float = 0.5,
    r2: float | Sequence[float] = 0.0,
    icc: float | Sequence[float] = 0.0,
    model: Model = "constant",
    omega: float | Sequence[float] = 0.0,
    r2_school_impact: float | Sequence[float] = 0.0,
    n_covariates: int = 0,
    n_school_covariates: int = 0,
    alpha: float = 0.05,
    power: float = 0.80,
    tails: int = 2,
    outcomes: int | Sequence[str] = 1,
    control_rate: float | Sequence[float | None] | None = None,
    mtp: MTP = "none",
    rho: float = 0.0,
    power_definition: PowerDefinition = "individual",
    at_least: int = 1,
    approximation: Approximation = "shifted",
    n_draws: int = 20_000,
    seed: int | np.random.Generator = 0,
) -> PowerResult:
    """Smallest number of schools, or students per school, that detects a given effect.

    Parameters
    ----------
    effect_size, effect_pp : float or sequence of float
        The effect to detect (give exactly one), as in :func:`power`.
    solve_for : {"schools", "students_per_school"}, default "schools"
        The size to solve for; the other must be given.
    schools, students_per_school : int or float
        The size held fixed (a single number).
    share_treated, r2, icc, model, omega, r2_school_impact, n_covariates, \
n_school_covariates, alpha, power, tails, outcomes, control_rate, mtp, rho, \
power_definition, at_least, approximation, n_draws, seed
        As in :func:`mdes`.

    Returns
    -------
    PowerResult
        ``schools`` or ``students_per_school`` is the smallest whole number at which every
        outcome's MDES is at most its effect (or, when simulated, the power definition
        reaches the target); ``to_frame()`` shows the MDES and power achieved there.

    Raises
    ------
    DesignError
        Invalid input, or an effect no size can reach (e.g. with random school impacts,
        adding students cannot remove the between-school impact variance).

    See Also
    --------
    mdes, power

    Notes
    -----
    PowerUp!'s ``mrss`` functions round an iterated continuous solution to the nearest
    whole number, which can fall just short of the target; here the answer is the
    smallest whole number that reaches it.

    Examples
    --------
    >>> from cis_eval.design.power import sample_size
    >>> sample_size(effect_size=0.325, students_per_school=15).schools
    20
    """
    check_option("solve_for", solve_for, ("schools", "students_per_school"))
    if solve_for == "schools":
        if schools is not None:
            raise _fail("solve_for='schools': leave schools out and give students_per_school")
        if students_per_school is None or isinstance(students_per_school, Sequence):
            raise _fail("solve_for='schools' needs students_per_school as a single number")
    else:
        if students_per_school is not None:
            raise _fail(
                "solve_for='students_per_school': leave students_per_school out and give schools"
            )
        if schools is None:
            raise _fail("solve_for='students_per_school' needs schools")
    d = _design(
        schools=schools,
        students_per_school=students_per_school,
        share_treated=share_treated,
        r2=r2,
        icc=icc,
        model=model,
        omega=omega,
        r2_school_impact=r2_school_impact,
        n_covariates=n_covariates,
        n_school_covariates=n_school_covariates,
        alpha=alpha,
        tails=tails,
        outcomes=outcomes,
        control_rate=control_rate,
        mtp=mtp,
        rho=rho,
        approximation=approximation,
        n_draws=n_draws,
        seed=seed,
        need_schools=solve_for == "students_per_school",
        need_n=solve_for == "schools",
    )
    target, d_min = _check_target(power, power_definition, at_least, d.m)
    eff = _effects(d, effect_size, effect_pp)
    if not np.any(eff != 0):
        raise _fail("effect_size is 0 for every outcome: no sample size detects a zero effect")

    def point(x: int) -> _Design:
        return d.with_size(schools=x) if solve_for == "schools" else d.with_size(n=float(x))

    simulated = _needs_simulation(d, power_definition)
    nonzero = eff != 0
    if simulated and d.approximation == "noncentral":
        raise _fail(
            "approximation='noncentral' is analytic; multiple-testing power is simulated "
            "with the shifted t (as PUMP): use approximation='shifted'"
        )

    def reaches(x: int) -> bool:
        p = point(x)
        df = p.df()
        if df <= 0:
            return False
        se = p.se()
        if simulated:
            draws = _draws(p, df)
            rej = _reject(draws.base + np.abs(eff) / se, p.mtp, p.alpha, df, p.tails, draws.wy)
            return _definition_power(rej, nonzero, power_definition, d_min) >= target
        k, _ = _mdes_shift(p, target, "individual", 1)
        return bool(np.all(k * se[nonzero] <= np.abs(eff[nonzero]) * (1 + 1e-12)))

    low = (1 if d.model == "unblocked" else 2) if solve_for == "schools" else 2
    if d.model == "random" and solve_for == "students_per_school" and not simulated:
        # adding students cannot shrink the between-school impact variance
        df = d.df()
        k = _mdes_shift(d, target, "individual", 1)[0]
        floor = k * np.sqrt(d.icc * d.omega * (1 - d.r2_t) / d.schools)
        if np.any(floor[nonzero] >= np.abs(eff[nonzero])):
            i = int(np.argmax(floor - np.abs(eff)))
            raise _fail(
                f"no number of students per school detects {abs(eff[i]):.3f} SD with "
                f"{d.schools} schools under random school impacts: the school impact "
                f"variance alone gives an MDES of {floor[i]:.3f} (df = {df:g}); add schools"
            )
    hi = low
    while not reaches(hi):
        low = hi + 1
        hi *= 2
        if hi > _MAX_SIZE:
            raise _fail(
                f"the effect is not reached with up to {_MAX_SIZE:,} "
                f"{'schools' if solve_for == 'schools' else 'students per school'}"
            )
    while low < hi:
        mid = (low + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            low = mid + 1
    final = point(hi)
    return _result(
        final,
        kind="sample_size",
        target=target,
        definition=power_definition,
        at_least=d_min,
        effects=eff,
        solved_for=solve_for,
    )
