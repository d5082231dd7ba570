"""Randomization inference: every outcome's statistic under many re-run lotteries (private).

The trial randomized students within schools, so each permuted assignment ``z_p`` keeps every
school's number of program students. For P permutations (rows of a ``P x N`` matrix ``Z``)
the statistics of all outcomes come from one matrix product ``Z @ B``, where ``B`` stacks,
for each outcome, a few fixed columns:

* school fixed effects with covariates (Frisch-Waugh-Lovell): with ``X~`` the covariates
  demeaned within school and ``e_y`` the outcome residualized on schools and covariates,
  ``tau_p = z_p'e_y / S_p`` with ``S_p = z~_p'z~_p - (X~'z_p)' A^-1 (X~'z_p)`` and
  ``z~_p'z~_p = sum_g (N1_g - N1_g^2 / n_g)`` (``N1_g`` the school's program count among
  the outcome's students): ``B`` holds ``e_y`` and ``X~``;
* weighted school-by-arm contrasts: per-school sums of the outcome and its square among
  program students.

Every outcome needs each school's program count among its own students; all outcomes share
the counts over all randomized students (``Z`` times the school indicators, computed once)
and subtract those of their few students without the outcome.

A studentized statistic divides by the standard error each permuted assignment would give;
for the fixed-effects estimator that needs the permuted regressor ``z*_p = M z~_p`` row by
row, computed in cache-sized blocks of permutations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._typing import FloatArray, IntArray
from . import engine as _engine
from .design import Built, Prepared, materialize

__all__ = ["PermutedStatistic", "cells_statistic", "fixed_effects_statistic"]

# Permutations handled at once in the element-by-element part (fits in cache).
BLOCK = 128


@dataclass(frozen=True, slots=True)
class PermutedStatistic:
    """One outcome's statistic as a function of permuted assignments.

    Attributes
    ----------
    columns : ndarray, shape (N, m)
        Columns ``B`` over all randomized students (zero outside the outcome's sample).
    finish : callable
        ``finish(zb, z, n1)`` with ``zb = Z @ B`` (``P x m``), ``Z`` (``P x N``) and ``n1``
        the program count of every school (``P x schools``) returns the ``P`` statistics.
    """

    columns: FloatArray
    finish: Callable[[FloatArray, FloatArray, FloatArray], FloatArray]


def _school_counts(
    d: Prepared, rows: IntArray
) -> tuple[IntArray, Callable[[FloatArray, FloatArray], FloatArray]]:
    """The sample's schools and a function giving their program counts among the sample.

    ``counts(z, n1_all)`` subtracts, from the counts over all randomized students, those of
    the students of these schools who are not in the sample (few, usually).
    """
    schools = np.unique(d.school[rows])
    in_school = np.isin(d.school, schools)
    in_sample = np.zeros(d.z.size, dtype=bool)
    in_sample[rows] = True
    others = np.flatnonzero(in_school & ~in_sample)
    local = np.searchsorted(schools, d.school[others])
    other_ind = np.zeros((others.size, schools.size))
    other_ind[np.arange(others.size), local] = 1.0

    def counts(z: FloatArray, n1_all: FloatArray) -> FloatArray:
        n1 = n1_all[:, schools]
        if others.size:
            n1 = n1 - z.take(others, axis=1) @ other_ind
        return n1

    return schools, counts


def _indicator(codes: IntArray, n_rows: int, rows: IntArray) -> FloatArray:
    """``n_rows x G`` indicator of ``codes`` placed at ``rows`` (zero elsewhere)."""
    g = int(codes.max()) + 1 if codes.size else 0
    out = np.zeros((n_rows, g))
    out[rows, codes] = 1.0
    return out


def fixed_effects_statistic(
    d: Prepared, b: Built, statistic: str, se_type: str
) -> PermutedStatistic:
    """The school-fixed-effects estimate (or its t statistic) of one outcome."""
    rows, y, x = materialize(d, b)
    n_all = d.z.size
    school = np.unique(d.school[rows], return_inverse=True)[1]
    starts, sizes = _engine.cell_starts(school)
    yt, _ = _engine.demean(y, starts, sizes)
    size_of = np.repeat(sizes, sizes).astype(float)
    hx = 1.0 / size_of
    if x.shape[1]:
        xt, _ = _engine.demean(x, starts, sizes)
        keep = _engine.independent_columns(xt.T @ xt, np.einsum("ij,ij->j", x, x))
        xt = xt[:, keep]
        ainv = np.linalg.inv(xt.T @ xt)
        ey = yt - xt @ (ainv @ (xt.T @ yt))
        hx = hx + np.einsum("ij,ij->i", xt @ ainv, xt)
    else:
        xt, ainv, ey = np.zeros((rows.size, 0)), np.zeros((0, 0)), yt
    k = xt.shape[1]
    n_school = sizes.size
    cols = np.zeros((n_all, 1 + k))
    cols[rows, 0] = ey
    cols[rows, 1:] = xt
    _, school_counts = _school_counts(d, rows)
    # students fitted exactly by schools and covariates (leverage 1) carry no information
    exact = 1.0 - hx < 1e-10
    c = np.where(exact, 1.0, 1.0 - hx)
    n = rows.size
    rank = n_school + k + 1
    cluster_ind = None
    if se_type.startswith("CR"):
        codes = (d.cluster if d.cluster is not None else d.school)[rows]
        cl = np.unique(codes, return_inverse=True)[1]
        cluster_ind = _indicator(cl, n, np.arange(n))
    proj = ainv @ xt.T if k else np.zeros((0, n))

    def finish(zb: FloatArray, z: FloatArray, n1_all: FloatArray) -> FloatArray:
        num = zb[:, 0]
        n1 = school_counts(z, n1_all)
        xz = zb[:, 1:]
        ss = (n1 - n1 * n1 / sizes).sum(axis=1)
        if k:
            ss -= np.einsum("ij,jk,ik->i", xz, ainv, xz)
        with np.errstate(invalid="ignore", divide="ignore"):
            tau: FloatArray = num / ss
        if statistic == "unstudentized":
            return tau
        var = np.empty(tau.size)
        for lo in range(0, tau.size, BLOCK):
            hi = min(lo + BLOCK, tau.size)
            # z* = z~ - X~ A^-1 X~'z, row by row, for a cache-sized block of permutations
            q = z[lo:hi].take(rows, axis=1)
            q -= np.repeat(n1[lo:hi] / sizes, sizes, axis=1)
            if k:
                q -= xz[lo:hi] @ proj
            q[:, exact] = 0.0
            s = ss[lo:hi, None]
            e = ey - tau[lo:hi, None] * q
            qe = q * e
            if se_type == "classical":
                var[lo:hi] = np.einsum("ij,ij->i", e, e) / (n - rank) / ss[lo:hi]
                continue
            qe /= s
            if se_type == "HC2":
                var[lo:hi] = np.einsum("ij,ij->i", qe, qe / (c - q * q / s))
            elif se_type in ("HC0", "HC1"):
                factor = n / (n - rank) if se_type == "HC1" else 1.0
                var[lo:hi] = np.einsum("ij,ij->i", qe, qe) * factor
            else:  # cluster-robust, CR1 form (a permutation test is exact for any statistic)
                assert cluster_ind is not None
                g = cluster_ind.shape[1]
                u = qe @ cluster_ind
                var[lo:hi] = (u * u).sum(axis=1) * g * (n - 1) / ((g - 1) * (n - rank))
        with np.errstate(invalid="ignore", divide="ignore"):
            out: FloatArray = tau / np.sqrt(var)
        return out

    return PermutedStatistic(cols, finish)


def cells_statistic(d: Prepared, b: Built, statistic: str) -> PermutedStatistic:
    """The weighted within-school difference in means (or its t statistic) of one outcome.

    With covariates the outcome is first residualized on school effects and covariates
    (a regression that does not involve the assignment), a valid test statistic under the
    sharp null (Rosenbaum 2002). Studentized by the blocked Neyman variance.
    """
    rows, y, x = materialize(d, b)
    n_all = d.z.size
    school_codes, school = np.unique(d.school[rows], return_inverse=True)
    g = school_codes.size
    starts, sizes = _engine.cell_starts(school)
    if x.shape[1]:
        xt, _ = _engine.demean(x, starts, sizes)
        yt, _ = _engine.demean(y, starts, sizes)
        keep = _engine.independent_columns(xt.T @ xt, np.einsum("ij,ij->j", x, x))
        xt = xt[:, keep]
        y = yt - xt @ np.linalg.lstsq(xt, yt, rcond=None)[0]
    weights = b.problem.cell_weight
    assert weights is not None
    w = weights[1::2][school_codes]
    cols = np.zeros((n_all, 2 * g))
    cols[rows, school] = y
    cols[rows, g + school] = y * y
    sum_y = np.bincount(school, weights=y, minlength=g)
    sum_yy = np.bincount(school, weights=y * y, minlength=g)
    _, school_counts = _school_counts(d, rows)

    def finish(zb: FloatArray, z: FloatArray, n1_all: FloatArray) -> FloatArray:
        n1 = school_counts(z, n1_all)
        s1 = zb[:, :g]
        n0 = sizes - n1
        s0 = sum_y - s1
        with np.errstate(invalid="ignore", divide="ignore"):
            m1, m0 = s1 / n1, s0 / n0
            tau = (m1 - m0) @ w
            if statistic == "unstudentized":
                return np.asarray(tau)
            q1 = zb[:, g:]
            q0 = sum_yy - q1
            v1 = (q1 - n1 * m1 * m1) / (n1 - 1)
            v0 = (q0 - n0 * m0 * m0) / (n0 - 1)
            out: FloatArray = tau / np.sqrt((v1 / n1 + v0 / n0) @ (w * w))
        return out

    return PermutedStatistic(cols, finish)
