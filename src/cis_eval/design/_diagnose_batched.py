r"""Batched estimators of the design diagnosis (private).

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

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd

from .._core import engine as _engine
from .._core.design import numeric
from .._core.spec import default_covariates
from .._typing import BoolArray, FloatArray, IntArray
from ..data.simulate import SimulatedTrial
from ..outcomes import outcome_arrays
from ..schema import OUTCOMES, Outcome

if TYPE_CHECKING:
    from .diagnose import TrialDesign

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
    design: TrialDesign,
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
    pop: _Population, design: TrialDesign, rng: np.random.Generator, r: int
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


def _person_weighted(t: _Sums) -> tuple[FloatArray, FloatArray, FloatArray]:
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


def _fixed_effects_no_covariates(t: _Sums) -> tuple[FloatArray, FloatArray, FloatArray]:
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
            if name == "person_weighted_none":
                res = _person_weighted(t)
            elif name == "fixed_effects_none" or po.k == 0:
                res = _fixed_effects_no_covariates(t)
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
