r"""Least squares with absorbed cell fixed effects and design-aware standard errors (private).

The model for one outcome on its analytic sample is

.. math:: y_i = \alpha_{c(i)} + x_i'\theta + e_i,

with one intercept per *cell* ``c`` (a school, or a school-by-arm cell) and ``k`` further
columns ``x`` (the treatment indicator and covariates, or covariates only). The target is
one linear combination

.. math:: \tau = \sum_c \lambda_c \mu_c + r'\theta, \qquad
          \mu_c = \bar y_c - \bar x_c'\theta,

which covers every estimand cis_eval reports: ``r`` picks the treatment coefficient with
school fixed effects (``lambda = 0``); with school-by-arm cells, ``lambda`` holds
``+w_g`` and ``-w_g`` and gives the person- or school-weighted average of school effects.

How it gets fast. All outcomes share one matrix ``W`` of columns (assignment, covariates,
missing-value indicators, outcomes), rows sorted by cell; each outcome's outcome and design
columns are linear combinations of ``W``'s columns (``y = W c``, ``X = W C``), and each
outcome has its own sample (a row mask). Then

* the within-cell Gram matrix of the sample is ``W'W`` minus the rows outside the sample
  minus ``sum_c S_c S_c' / n_c`` (``S_c`` the cell sums): only the rows *outside* the
  sample are touched (about 8% of them), so coefficients for every outcome cost one pass;
* residuals, leverage and the influence vector ``a`` (``tau_hat = a'y``) come from one
  pass over cache-sized chunks of whole cells.

The influence vector gives every variance in one line. HC2 uses the exact leverage
``h_i = 1/n_c + x~_i' (X~'X~)^-1 x~_i`` of the full design including the cell dummies
(leaving out ``1/n_c`` understates the SE). CR2 uses the Bell-McCaffrey adjustment
``(I - H_gg)^{-1/2}`` with the full-design hat matrix and the Satterthwaite degrees of
freedom of Pustejovsky and Tipton (2018) under a working independence model, as R's
estimatr and clubSandwich. A student fitted exactly (leverage 1, e.g. a singleton cell) has
a zero residual; it adds nothing to the variance when it has no influence on the estimate,
and makes HC2 undefined (infinite) otherwise.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg

from .._typing import BoolArray, FloatArray, IntArray

__all__ = [
    "CellDesign",
    "Fit",
    "Problem",
    "cell_starts",
    "demean",
    "fit",
    "fit_many",
    "independent_columns",
]

# A column counts as a linear combination of the cells and the columns kept before it when
# its within-cell residual sum of squares is at most this share of its sum of squares.
COLLINEAR_TOL = 1e-10
# Eigenvalues of I - H_gg below this are treated as zero in the CR2 adjustment (estimatr).
CR2_EIGEN_TOL = 1e-12
# Leverage within this distance of 1 means the student is fitted exactly.
EXACT_TOL = 1e-10
# Rows per chunk of the residual pass (whole cells), so each chunk stays in cache.
CHUNK_ROWS = 1 << 12
# Threads for the residual pass, used from this many rows up (below, threads cost more).
WORKERS = min(2, os.cpu_count() or 1)
PARALLEL_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class Fit:
    """One estimate with its standard error and the pieces inference reuses.

    Attributes
    ----------
    estimate, std_error, df : float
        Point estimate, standard error and degrees of freedom for t-based inference.
    n, n_cells, rank : int
        Observations, cells with at least one observation, and the rank of the design
        (cells plus kept columns).
    kept : tuple of int
        Indices of the design columns kept (the others were linearly dependent).
    coef : ndarray
        Coefficients of the kept columns.
    influence, residuals, leverage : ndarray or None
        Over the sample rows in order (``estimate = influence @ y``), when asked for.
    """

    estimate: float
    std_error: float
    df: float
    n: int
    n_cells: int
    rank: int
    kept: tuple[int, ...]
    coef: FloatArray
    influence: FloatArray | None = None
    residuals: FloatArray | None = None
    leverage: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One regression on a shared :class:`CellDesign`.

    Attributes
    ----------
    rows : ndarray of bool, shape (n,)
        The analytic sample.
    y : ndarray, shape (p,)
        The outcome as a combination of the design's columns.
    x : ndarray, shape (p, k)
        The regressors as combinations of the design's columns.
    r : ndarray, shape (k,), optional
        Contrast on the regressors' coefficients.
    cell_weight : ndarray, optional
        ``lambda`` for each cell code.
    x_actual : ndarray, shape (p, k), optional
        Two-stage least squares: ``x`` holds first-stage fitted values and ``x_actual`` the
        endogenous columns themselves; coefficients and leverage come from ``x``, residuals
        from ``x_actual`` (as R's ``iv_robust``).
    """

    rows: BoolArray
    y: FloatArray
    x: FloatArray
    r: FloatArray | None = None
    cell_weight: FloatArray | None = None
    x_actual: FloatArray | None = None


def cell_starts(cells: IntArray) -> tuple[IntArray, IntArray]:
    """Start positions and sizes of the runs of equal codes in a sorted code vector."""
    n = cells.size
    if n == 0:
        empty: IntArray = np.zeros(0, dtype=np.int64)
        return empty, empty
    change = np.flatnonzero(cells[1:] != cells[:-1]) + 1
    starts: IntArray = np.concatenate(([0], change)).astype(np.int64)
    sizes: IntArray = np.diff(np.append(starts, n)).astype(np.int64)
    return starts, sizes


def demean(w: FloatArray, starts: IntArray, sizes: IntArray) -> tuple[FloatArray, FloatArray]:
    """Subtract cell means from the rows of ``w`` (rows sorted by cell).

    Returns the demeaned array and the ``(cells, columns)`` array of cell means.
    """
    means = np.add.reduceat(w, starts, axis=0) / sizes.reshape((-1,) + (1,) * (w.ndim - 1))
    out: FloatArray = w - np.repeat(means, sizes, axis=0)
    return out, means


def independent_columns(gram: FloatArray, raw_ss: FloatArray) -> list[int]:
    """Columns, in order, that are not linear combinations of the cells and earlier columns.

    ``gram`` is the Gram matrix of the demeaned columns and ``raw_ss`` their sums of
    squares before demeaning; a column is dropped when its residual sum of squares after
    the cells and the kept columns is at most ``COLLINEAR_TOL`` times its raw one (or zero).
    """
    k = gram.shape[0]
    scale_all = np.maximum(raw_ss, np.diag(gram))
    if k and np.all(scale_all > 0):
        # Usual case, full rank: the Cholesky pivots are exactly the residual sums of
        # squares of each column after the earlier ones.
        try:
            pivots = np.diag(np.linalg.cholesky(gram)) ** 2
        except np.linalg.LinAlgError:
            pivots = None
        if pivots is not None and np.all(pivots > COLLINEAR_TOL * scale_all):
            return list(range(k))
    keep: list[int] = []
    for j in range(k):
        scale = max(float(raw_ss[j]), float(gram[j, j]))
        if scale <= 0:
            continue
        resid = float(gram[j, j])
        if keep:
            sub = gram[np.ix_(keep, keep)]
            v = gram[keep, j]
            resid -= float(v @ linalg.solve(sub, v, assume_a="pos"))
        if resid > COLLINEAR_TOL * scale:
            keep.append(j)
    return keep


class CellDesign:
    """Columns shared by several regressions, rows sorted by cell, with cached totals.

    Parameters
    ----------
    w : ndarray, shape (n, p)
        The columns. They are centred at their means (the cells absorb any constant), which
        keeps the Gram-matrix arithmetic accurate.
    cells : ndarray of int, shape (n,)
        Cell codes, sorted ascending.
    center, gram : ndarray, optional
        When given, ``w`` is already centred at ``center`` and ``gram`` is its ``W'W``
        (so several designs can share one copy of the columns).
    """

    def __init__(
        self,
        w: FloatArray,
        cells: IntArray,
        *,
        center: FloatArray | None = None,
        gram: FloatArray | None = None,
    ) -> None:
        if w.ndim != 2 or cells.shape != (w.shape[0],):
            raise ValueError("w must be (n, p) and cells (n,)")
        if cells.size and np.any(cells[1:] < cells[:-1]):
            raise ValueError("rows must be sorted by cell")
        if center is None:
            center = w.mean(axis=0) if w.shape[0] else np.zeros(w.shape[1])
            w = np.ascontiguousarray(w - center, dtype=float)
        self.w: FloatArray = w
        self.center: FloatArray = center
        self.cells = cells.astype(np.int64)
        self.n_codes = int(cells.max()) + 1 if cells.size else 0
        starts, sizes = cell_starts(self.cells)
        self.starts, self.sizes = starts, sizes
        self.codes = self.cells[starts] if starts.size else starts
        self.gram = self.w.T @ self.w if gram is None else gram
        self.sums = np.zeros((self.n_codes, self.w.shape[1]))
        if starts.size:
            self.sums[self.codes] = np.add.reduceat(self.w, starts, axis=0)
        self.counts = np.zeros(self.n_codes)
        self.counts[self.codes] = sizes
        # chunks of whole cells for the residual pass: (first row, end row, first cell,
        # end cell), cells counted in the order of ``self.starts``
        first_cells = [0]
        for i, s in enumerate(starts):
            if s - starts[first_cells[-1]] >= CHUNK_ROWS:
                first_cells.append(i)
        first_cells.append(starts.size)
        self.chunks = [
            (int(starts[c0]), int(starts[c1]) if c1 < starts.size else self.w.shape[0], c0, c1)
            for c0, c1 in itertools.pairwise(first_cells)
            if c1 > c0
        ]

    def totals(self, rows: BoolArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``W'W``, cell sums and cell counts over the rows in ``rows``."""
        n = rows.size
        out_rows = np.flatnonzero(~rows)
        if out_rows.size == 0:
            return self.gram, self.sums, self.counts
        if out_rows.size <= n // 2:
            sub, sign = out_rows, -1.0
            gram0, sums0, counts0 = self.gram, self.sums, self.counts
        else:
            sub, sign = np.flatnonzero(rows), 1.0
            gram0 = np.zeros_like(self.gram)
            sums0 = np.zeros_like(self.sums)
            counts0 = np.zeros_like(self.counts)
        ws = self.w.take(sub, axis=0)  # take: several times faster than fancy indexing
        cs = self.cells.take(sub)
        st, sz = cell_starts(cs)
        gram = gram0 + sign * (ws.T @ ws)
        sums = sums0.copy()
        counts = counts0.copy()
        if st.size:
            sums[cs[st]] += sign * np.add.reduceat(ws, st, axis=0)
            counts[cs[st]] += sign * sz
        return gram, sums, counts


def _cr2(
    a: FloatArray,
    e: FloatArray,
    xt: FloatArray,
    ainv: FloatArray,
    cell_of: IntArray,
    sizes: FloatArray,
    clusters: IntArray,
) -> tuple[float, float]:
    """CR2 variance of ``a'y`` and its Bell-McCaffrey (Satterthwaite) degrees of freedom.

    ``p_g = (I - H_gg)^{-1/2} a_g`` with ``H`` the full-design hat matrix (cell dummies
    included); variance ``sum_g (p_g'e_g)^2``; degrees of freedom ``tr(Q)^2 / ||Q||_F^2``
    with ``Q_gh = 1{g=h} p_g'p_g - p_g' H_gh p_h``.
    """
    order = np.argsort(clusters, kind="stable")
    starts, csizes = cell_starts(clusters[order])
    g_count = starts.size
    p_all = np.zeros_like(a)
    u = np.zeros(g_count)
    for g, (s, m) in enumerate(zip(starts, csizes, strict=True)):
        rows = order[s : s + m]
        xg = xt[rows]
        cg = cell_of[rows]
        same = cg[:, None] == cg[None, :]
        h = np.where(same, 1.0 / sizes[cg][:, None], 0.0) + xg @ ainv @ xg.T
        vals, vecs = np.linalg.eigh(np.eye(m) - h)
        inv_sqrt = np.where(vals > CR2_EIGEN_TOL, 1.0 / np.sqrt(np.clip(vals, 1e-300, None)), 0.0)
        pg = vecs @ (inv_sqrt * (vecs.T @ a[rows]))
        p_all[rows] = pg
        u[g] = pg @ e[rows]
    var = float(u @ u)
    # Q = diag(p_g'p_g) - [cell part] - R A^-1 R', with R_g = X~_g' p_g.
    cluster_of = np.empty(a.size, dtype=np.int64)
    cluster_of[order] = np.repeat(np.arange(g_count), csizes)
    pp = np.bincount(cluster_of, weights=p_all * p_all, minlength=g_count)
    n_cells = sizes.size
    s_gc = np.zeros((g_count, n_cells))
    np.add.at(s_gc, (cluster_of, cell_of), p_all)
    r_g = np.zeros((g_count, xt.shape[1]))
    np.add.at(r_g, cluster_of, xt * p_all[:, None])
    q = np.diag(pp) - (s_gc / sizes) @ s_gc.T - r_g @ ainv @ r_g.T
    df = float(np.trace(q) ** 2 / np.sum(q * q))
    return var, df


@dataclass(frozen=True, slots=True)
class _Solved:
    """Coefficients of one problem and what its residual pass needs."""

    keep: list[int]
    theta: FloatArray
    gram_x: FloatArray
    ainv: FloatArray
    v: FloatArray
    lam: FloatArray
    means: FloatArray
    counts: FloatArray
    estimate: float
    ee: float


def _solve(design: CellDesign, pr: Problem) -> _Solved:
    """Coefficients and the estimate from the sample's within-cell Gram matrix."""
    gram, sums, counts = design.totals(pr.rows)
    used = counts > 0
    within = gram - (sums[used].T / counts[used]) @ sums[used]
    k = pr.x.shape[1]
    a_full = pr.x.T @ within @ pr.x
    raw = np.einsum("ij,ij->j", pr.x, gram @ pr.x)
    keep = independent_columns(a_full, raw) if k else []
    cx = pr.x[:, keep]
    gram_x = a_full[np.ix_(keep, keep)]
    if keep:
        chol = linalg.cho_factor(gram_x, lower=True)
        theta = linalg.cho_solve(chol, cx.T @ within @ pr.y)
        ainv = linalg.cho_solve(chol, np.eye(len(keep)))
    else:
        theta = np.zeros(0)
        ainv = np.zeros((0, 0))
    means = np.zeros_like(sums)
    means[used] = sums[used] / counts[used, None]
    lam = np.zeros(design.n_codes)
    if pr.cell_weight is not None:
        given = np.asarray(pr.cell_weight, dtype=float)[: design.n_codes]
        lam[: given.size] = given
    rk = np.zeros(len(keep)) if pr.r is None else np.asarray(pr.r, dtype=float)[keep]
    q = rk - lam @ (means @ cx)
    v = ainv @ q
    estimate = float(lam @ (means @ pr.y) + q @ theta)
    cxa = cx if pr.x_actual is None else pr.x_actual[:, keep]
    resid_comb = pr.y - cxa @ theta
    ee = float(resid_comb @ within @ resid_comb)
    return _Solved(keep, theta, gram_x, ainv, v, lam, means, counts, estimate, ee)


def _pass(
    design: CellDesign,
    problems: Sequence[Problem],
    solved: Sequence[_Solved],
    *,
    clusters: IntArray | None,
    store: bool,
) -> dict[str, Any]:
    """One pass over chunks of whole cells for every problem at once.

    For each problem the columns of one product ``W_chunk @ C`` are, before removing the
    sample's cell means: the residual combination ``y - X_actual theta``, the influence part
    ``X v`` and ``X L`` with ``L L' = A^-1`` (so the leverage is a sum of squares), plus the
    regressors themselves when arrays are kept (CR2). All problems share the product, so
    the columns are read once; the remaining work is on ``(rows, problems)`` arrays.
    """
    w = design.w
    n_prob = len(problems)
    e_cols, a_cols, u_cols, x_cols = [], [], [], []
    a_cell = np.zeros((design.codes.size, n_prob))
    inv_n_cell = np.zeros((design.codes.size, n_prob))
    blocks: list[FloatArray] = []
    for j, (pr, sv) in enumerate(zip(problems, solved, strict=True)):
        kk = len(sv.keep)
        cx = pr.x[:, sv.keep]
        cxa = cx if pr.x_actual is None else pr.x_actual[:, sv.keep]
        root = np.linalg.cholesky(sv.ainv) if kk else np.zeros((0, 0))
        inv_n = np.zeros_like(sv.counts)
        inv_n[sv.counts > 0] = 1.0 / sv.counts[sv.counts > 0]
        e_cols.append(pr.y - cxa @ sv.theta)
        a_cols.append(cx @ sv.v)
        u_cols.append(cx @ root)
        x_cols.append(cx)
        blocks.append(np.full(kk, j))
        a_cell[:, j] = (sv.lam * inv_n)[design.codes]
        inv_n_cell[:, j] = inv_n[design.codes]
    u_all = np.column_stack(u_cols) if u_cols else np.zeros((w.shape[1], 0))
    k_tot = u_all.shape[1]
    comb = np.column_stack(
        [np.column_stack(e_cols), np.column_stack(a_cols), u_all]
        + ([np.column_stack(x_cols)] if store and k_tot else [])
    )
    # the sample's cell means of every combination, stacked like ``comb``
    means_comb = np.empty((design.codes.size, comb.shape[1]))
    offs = {"e": 0, "a": n_prob, "u": 2 * n_prob, "x": 2 * n_prob + k_tot}
    ku = kx = 0
    for j, sv in enumerate(solved):
        m = sv.means[design.codes]
        kk = len(sv.keep)
        means_comb[:, offs["e"] + j] = m @ e_cols[j]
        means_comb[:, offs["a"] + j] = m @ a_cols[j]
        means_comb[:, offs["u"] + ku : offs["u"] + ku + kk] = m @ u_cols[j]
        ku += kk
        if store and k_tot:
            means_comb[:, offs["x"] + kx : offs["x"] + kx + kk] = m @ x_cols[j]
            kx += kk
    block_of_u = np.concatenate(blocks) if blocks else np.zeros(0, dtype=int)
    sum_sq = np.zeros((k_tot, n_prob))
    sum_sq[np.arange(k_tot), block_of_u] = 1.0
    rows_all: BoolArray = np.column_stack([pr.rows for pr in problems]).astype(bool)
    a_scale = np.abs(a_cell).max(axis=0) if a_cell.size else np.zeros(n_prob)
    n_clusters = 0
    cluster_of_cell = None
    if clusters is not None:
        n_clusters = int(clusters.max()) + 1
        # Clusters made of whole cells (schools clustering school or school-by-arm cells):
        # sum by cell within a chunk, then add each cell's sum to its cluster.
        cand = clusters[design.starts]
        if np.array_equal(clusters, np.repeat(cand, design.sizes)):
            cluster_of_cell = cand

    def run(chunks: Sequence[tuple[int, int, int, int]]) -> dict[str, Any]:
        """Sums over some chunks (one worker's share)."""
        hc0 = np.zeros(n_prob)
        hc2 = np.zeros(n_prob)
        exact_influential = np.zeros(n_prob, dtype=bool)
        cl_sum = np.zeros((n_clusters, n_prob)) if clusters is not None else None
        arrays: dict[str, list[list[FloatArray]]] = {
            key: [[] for _ in range(n_prob)] for key in ("a", "e", "h", "x")
        }
        for lo, hi, c0, c1 in chunks:
            mask = rows_all[lo:hi]
            if not mask.any():
                continue
            sz = design.sizes[c0:c1]
            proj = w[lo:hi] @ comb
            proj -= np.repeat(means_comb[c0:c1], sz, axis=0)
            e = np.where(mask, proj[:, :n_prob], 0.0)
            a = np.where(
                mask, proj[:, n_prob : 2 * n_prob] + np.repeat(a_cell[c0:c1], sz, axis=0), 0.0
            )
            u = proj[:, 2 * n_prob : 2 * n_prob + k_tot]
            # 1 - leverage; a matrix product sums each problem's squares
            one_minus_h = 1.0 - np.repeat(inv_n_cell[c0:c1], sz, axis=0) - np.square(u) @ sum_sq
            exact = mask & (one_minus_h < EXACT_TOL)
            if exact.any():
                e[exact] = 0.0
                for j in np.flatnonzero(exact.any(axis=0)).tolist():
                    scale = max(float(a_scale[j]), float(np.abs(a[:, j]).max()))
                    if np.abs(a[exact[:, j], j]).max() > 1e-8 * scale:
                        exact_influential[j] = True
            one_minus_h[~mask | exact] = 1.0
            ae = a * e
            a2e2 = ae * ae
            hc0 += a2e2.sum(axis=0)
            hc2 += (a2e2 / one_minus_h).sum(axis=0)
            if cl_sum is not None and clusters is not None:
                if cluster_of_cell is not None:
                    local = np.concatenate(([0], np.cumsum(sz)[:-1]))
                    np.add.at(cl_sum, cluster_of_cell[c0:c1], np.add.reduceat(ae, local, axis=0))
                else:
                    cl = clusters[lo:hi]
                    for j in range(n_prob):
                        cl_sum[:, j] += np.bincount(cl, weights=ae[:, j], minlength=n_clusters)
            if store:
                kx = 0
                for j, sv in enumerate(solved):
                    mj = mask[:, j]
                    kk = len(sv.keep)
                    arrays["a"][j].append(a[mj, j])
                    arrays["e"][j].append(e[mj, j])
                    arrays["h"][j].append(1.0 - one_minus_h[mj, j])
                    arrays["x"][j].append(proj[mj, offs["x"] + kx : offs["x"] + kx + kk])
                    kx += kk
        return {
            "hc0": hc0,
            "hc2": hc2,
            "exact_influential": exact_influential,
            "cl_sum": cl_sum,
            "arrays": arrays,
        }

    # Large data: two workers take the first and second half of the chunks (numpy releases
    # the interpreter lock in these operations); their sums are added in a fixed order,
    # so the result does not depend on timing.
    chunks = design.chunks
    workers = min(WORKERS, len(chunks)) if w.shape[0] >= PARALLEL_ROWS else 1
    if workers <= 1:
        return run(chunks)
    split = [
        chunks[i * len(chunks) // workers : (i + 1) * len(chunks) // workers]
        for i in range(workers)
    ]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(run, split))
    out = parts[0]
    for part in parts[1:]:
        out["hc0"] = out["hc0"] + part["hc0"]
        out["hc2"] = out["hc2"] + part["hc2"]
        out["exact_influential"] = out["exact_influential"] | part["exact_influential"]
        if out["cl_sum"] is not None:
            out["cl_sum"] = out["cl_sum"] + part["cl_sum"]
        for key, lists in out["arrays"].items():
            for j, more in enumerate(part["arrays"][key]):
                lists[j].extend(more)
    return out


def fit_many(
    design: CellDesign,
    problems: Sequence[Problem],
    *,
    se_type: str = "HC2",
    clusters: IntArray | None = None,
    keep_arrays: bool = False,
) -> list[Fit]:
    """Fit several regressions that share a design.

    Parameters
    ----------
    design : CellDesign
        Shared columns and cells.
    problems : sequence of Problem
        One per regression.
    se_type : {"HC2", "HC1", "HC0", "classical", "CR0", "CR1", "CR2"}
        Standard error.
    clusters : ndarray of int, optional
        Cluster codes per row of the design, for the CR types.
    keep_arrays : bool
        Return influence, residuals and leverage over each sample (always done for CR2).

    Returns
    -------
    list of Fit
    """
    if se_type.startswith("CR") and clusters is None:
        raise ValueError("cluster-robust standard errors need cluster codes")
    solved = [_solve(design, pr) for pr in problems]
    for sv in solved:
        if np.any(sv.lam[sv.counts == 1] != 0):
            raise ValueError("a cell in the contrast has a single observation")
    store = keep_arrays or se_type == "CR2"
    passed: dict[str, Any] = {}
    if problems and (se_type != "classical" or store):
        passed = _pass(
            design,
            problems,
            solved,
            clusters=clusters if se_type in ("CR0", "CR1") else None,
            store=store,
        )
    out = []
    for j, (pr, sv) in enumerate(zip(problems, solved, strict=True)):
        kk = len(sv.keep)
        n = int(pr.rows.sum())
        counts = sv.counts
        n_cells = int((counts > 0).sum())
        rank = n_cells + kk
        df_resid = n - rank
        df = float(df_resid)
        cat = {
            key: np.concatenate(val[j]) if val[j] else np.zeros(0)
            for key, val in passed.get("arrays", {}).items()
        }
        if se_type == "classical":
            inv_n = 1.0 / counts[counts > 0]
            sum_a2 = float(np.sum(sv.lam[counts > 0] ** 2 * inv_n) + sv.v @ sv.gram_x @ sv.v)
            var = sv.ee / df_resid * sum_a2 if df_resid > 0 else np.nan
        elif se_type == "HC2":
            var = np.inf if passed["exact_influential"][j] else float(passed["hc2"][j])
        elif se_type == "HC0":
            var = float(passed["hc0"][j])
        elif se_type == "HC1":
            var = float(passed["hc0"][j]) * n / df_resid if df_resid > 0 else np.nan
        elif se_type in ("CR0", "CR1"):
            assert clusters is not None
            g_count = np.unique(clusters[pr.rows]).size
            u = passed["cl_sum"][:, j]
            var = float(u @ u)
            if se_type == "CR1":
                var *= g_count * (n - 1) / ((g_count - 1) * df_resid) if df_resid > 0 else np.nan
            df = float(g_count - 1)
        elif se_type == "CR2":
            assert clusters is not None
            cell_of = np.unique(design.cells[pr.rows], return_inverse=True)[1]
            cl = np.unique(clusters[pr.rows], return_inverse=True)[1]
            x_t = cat["x"].reshape(-1, kk)
            var, df = _cr2(cat["a"], cat["e"], x_t, sv.ainv, cell_of, counts[counts > 0], cl)
        else:  # pragma: no cover - options are checked by the public verbs
            raise ValueError(f"unknown se_type {se_type!r}")
        out.append(
            Fit(
                estimate=sv.estimate,
                std_error=float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else np.inf,
                df=df,
                n=n,
                n_cells=n_cells,
                rank=rank,
                kept=tuple(sv.keep),
                coef=sv.theta,
                influence=cat["a"] if keep_arrays else None,
                residuals=cat["e"] if keep_arrays else None,
                leverage=cat["h"] if keep_arrays else None,
            )
        )
    return out


def fit(
    y: FloatArray,
    x: FloatArray,
    cells: IntArray,
    *,
    r: FloatArray | None = None,
    cell_weight: FloatArray | None = None,
    se_type: str = "HC2",
    clusters: IntArray | None = None,
    x_actual: FloatArray | None = None,
    keep_arrays: bool = True,
) -> Fit:
    """Fit one regression given as arrays (rows sorted by cell); see :func:`fit_many`."""
    n, k = x.shape
    cols = [y.reshape(-1, 1), x] + ([x_actual] if x_actual is not None else [])
    design = CellDesign(np.column_stack(cols), cells)
    p = design.w.shape[1]
    eye = np.eye(p)
    problem = Problem(
        rows=np.ones(n, dtype=bool),
        y=eye[:, 0],
        x=eye[:, 1 : 1 + k],
        r=r,
        cell_weight=None if cell_weight is None else np.asarray(cell_weight, dtype=float),
        x_actual=eye[:, 1 + k :] if x_actual is not None else None,
    )
    return fit_many(design, [problem], se_type=se_type, clusters=clusters, keep_arrays=keep_arrays)[
        0
    ]
