"""Adjusted p-values for several outcomes (private; used by the estimators).

Bonferroni, Holm (1979) and Benjamini-Hochberg (1995) work on p-values alone. The
Westfall-Young (1993) step-down min-P adjustment uses the joint permutation distribution of
the outcomes' statistics, so it keeps the correlation between outcomes (attendance rate and
chronic absence move together) and is more powerful than Holm when outcomes are correlated.
"""

from __future__ import annotations

import numpy as np

from .._typing import FloatArray

__all__ = ["benjamini_hochberg", "bonferroni", "holm", "westfall_young"]


def bonferroni(p: FloatArray) -> FloatArray:
    """Bonferroni-adjusted p-values ``min(1, m p)``."""
    p = np.asarray(p, dtype=float)
    out: FloatArray = np.minimum(1.0, p * p.size)
    return out


def holm(p: FloatArray) -> FloatArray:
    """Holm step-down adjusted p-values."""
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(1.0, stepped)
    return out


def benjamini_hochberg(p: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate)."""
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(1.0, stepped)
    return out


def _permutation_pvalues(stat_abs: FloatArray) -> FloatArray:
    """For each permutation and outcome, the share of permutations at least as extreme.

    ``stat_abs`` is (P, m); returns (P, m) with ``(1 + #{b: |T_b| >= |T_p|}) / (1 + P)``,
    the p-value each permuted data set would have had (computed by ranks, not P^2 work).
    """
    p_count = stat_abs.shape[0]
    out = np.empty_like(stat_abs)
    for j in range(stat_abs.shape[1]):
        col = stat_abs[:, j]
        srt = np.sort(col)
        # number of permutations with |T_b| >= |T_p|
        ge = p_count - np.searchsorted(srt, col, side="left")
        out[:, j] = (1.0 + ge) / (1.0 + p_count)
    return out


def westfall_young(observed_abs: FloatArray, permuted_abs: FloatArray) -> FloatArray:
    """Westfall-Young step-down min-P adjusted p-values.

    Parameters
    ----------
    observed_abs : ndarray, shape (m,)
        Absolute observed statistics.
    permuted_abs : ndarray, shape (P, m)
        Absolute statistics of the same outcomes under each permutation of the assignment
        (the same permutations for every outcome).

    Returns
    -------
    ndarray, shape (m,)
        Adjusted p-values, monotone in the order of the raw p-values.

    Notes
    -----
    Raw p-values are ``(1 + #{|T_b| >= |T_obs|}) / (1 + P)``. For the outcome with the
    ``j``-th smallest raw p-value, the adjusted value is the share of permutations whose
    smallest permutation p-value over outcomes ``j, j+1, ...`` (in that order) is at most
    the observed raw p-value, made monotone (Westfall and Young 1993, algorithm 2.8).
    """
    observed_abs = np.asarray(observed_abs, dtype=float)
    permuted_abs = np.asarray(permuted_abs, dtype=float)
    p_count, m = permuted_abs.shape
    raw = (1.0 + (permuted_abs >= observed_abs).sum(axis=0)) / (1.0 + p_count)
    perm_p = _permutation_pvalues(permuted_abs)
    order = np.argsort(raw, kind="stable")
    # successive minima from the least significant outcome upward
    q = np.minimum.accumulate(perm_p[:, order][:, ::-1], axis=1)[:, ::-1]
    adj_sorted = (1.0 + (q <= raw[order]).sum(axis=0)) / (1.0 + p_count)
    adj_sorted = np.maximum.accumulate(adj_sorted)
    out = np.empty(m)
    out[order] = np.minimum(1.0, adj_sorted)
    return out
