"""Small-cell suppression for published tables, with complementary suppression.

Student records are protected by FERPA, so a table meant for publication must not show a
cell that describes only a handful of students, and must not let a reader work such a
cell out from what is shown. The rules applied here:

1. **Primary suppression.** A cell describing between 1 and ``min_cell - 1`` students
   (default 10) is suppressed. A cell describing no student (a count of 0) is shown: it
   says nothing about any individual.
2. **Complementary suppression.** Published totals are linear constraints (a row of a
   table sums to its total; the schools sum to the network; the shares of a distribution
   sum to 100%). In every such line with a suppressed cell, at least two cells are
   suppressed, and when the line's total is published the suppressed cells together
   describe at least ``min_cell`` students, so subtraction reveals neither a cell nor a
   small aggregate.
3. **No exact recovery.** After the line rules, the whole system of constraints is
   checked: a suppressed cell whose value is fixed by the published cells and totals
   (it lies in the row space of the constraints restricted to the suppressed cells) gets
   a further complementary cell, until none is.

Complementary cells are chosen among the smallest counts of the line, to lose as little
information as possible; cells marked ``last_resort`` (large groups) are taken only when
neither a smaller part nor the line's total is available.
:func:`recoverable_cells` checks a result independently of the engine, with linear
programming: the smallest and largest value of each suppressed cell that is consistent
with everything published and with non-negative counts. The engine, :func:`suppression_mask`, takes any set of additive
constraints (one-way tables with a total, hierarchies such as coordinators within schools
within a network, two-way tables with both margins); :func:`suppress` applies it to a
two-way table of counts and adds the margins.

References
----------
National Center for Education Statistics (2010). *Statistical Methods for Protecting
Personally Identifiable Information in Aggregate Reporting* (SLDS Technical Brief 3,
NCES 2011-603). The default minimum of 10 follows common state practice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._typing import check_option
from ..errors import OptionError, OptionTypeError

__all__ = [
    "DEFAULT_MIN_CELL",
    "SUPPRESSED",
    "check_min_cell",
    "feasible_range",
    "recoverable_cells",
    "suppress",
    "suppression_mask",
]

DEFAULT_MIN_CELL = 10
"""Default minimum number of students a published cell may describe."""

SUPPRESSED = "*"
"""Marker shown in place of a suppressed cell."""

Constraint = tuple[int | None, Sequence[int]]
"""``(total, parts)``: cell ``total`` equals the sum of cells ``parts``; ``total=None``
means the total is known without being a cell (e.g. shares that sum to 100%)."""

Totals = Literal["none", "rows", "columns", "both"]
_TOL = 1e-9


def check_min_cell(min_cell: object) -> int:
    """Return ``min_cell`` as an int; raise if it is not a whole number of at least 1.

    Parameters
    ----------
    min_cell : int
        Smallest number of students a published cell may describe; 1 turns suppression off.

    Returns
    -------
    int
        The checked value.
    """
    if isinstance(min_cell, bool) or not isinstance(min_cell, (int, np.integer)):
        raise OptionTypeError(f"min_cell must be a whole number, got {min_cell!r}")
    if min_cell < 1:
        raise OptionError(f"min_cell must be at least 1 (1 turns suppression off), got {min_cell}")
    return int(min_cell)


def _as_counts(counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(counts, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError("counts must be one count per cell, or a 2-D array (cells x counts)")
    arr = np.nan_to_num(arr, nan=0.0)
    if (arr < 0).any():
        raise ValueError("counts of students cannot be negative")
    out: npt.NDArray[np.float64] = np.asarray(arr, dtype=np.float64)
    return out


def _small(c: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_] = (c > 0) & (c < k)
    return out


_MAX_BLOCK = 2_000
"""Most suppressed cells linked by totals that :func:`_determined` checks at once."""


def _determined(
    sup: npt.NDArray[np.bool_], constraints: Sequence[Constraint]
) -> npt.NDArray[np.bool_]:
    """Suppressed cells whose value the published cells and the constraints fix exactly.

    Each constraint restricted to the suppressed cells is a linear equation with a known
    right-hand side. A suppressed cell is fixed exactly when every solution of the
    homogeneous system leaves it unchanged, i.e. its column of the null-space basis is
    zero. Solved per connected block of suppressed cells, so large tables stay cheap.
    """
    out = np.zeros(sup.size, bool)
    eqs: list[dict[int, float]] = []
    for total, parts in constraints:
        row = {int(p): -1.0 for p in parts if sup[p]}
        if total is not None and sup[total]:
            row[int(total)] = row.get(int(total), 0.0) + 1.0
        if row:
            eqs.append(row)
    if not eqs:
        return out
    # Union-find over suppressed cells that share an equation.
    parent = {c: c for eq in eqs for c in eq}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for eq in eqs:
        cells = list(eq)
        for c in cells[1:]:
            parent[find(c)] = find(cells[0])
    blocks: dict[int, list[int]] = {}
    for c in parent:
        blocks.setdefault(find(c), []).append(c)
    eq_block = [find(next(iter(eq))) for eq in eqs]
    for root, cells in blocks.items():
        if len(cells) > _MAX_BLOCK:
            # A dense null space of tens of thousands of linked cells needs gigabytes; a
            # table that large cannot be checked cell by cell, so it is not published.
            raise ValueError(
                f"{len(cells):,} suppressed cells are linked by the table's totals, more "
                f"than the {_MAX_BLOCK:,} that can be checked; suppress the whole table instead"
            )
        pos = {c: j for j, c in enumerate(cells)}
        rows = [eq for eq, b in zip(eqs, eq_block, strict=True) if b == root]
        m = np.zeros((len(rows), len(cells)))
        for i, eq in enumerate(rows):
            for c, v in eq.items():
                m[i, pos[c]] = v
        _, s, vh = np.linalg.svd(m)
        rank = int((s > _TOL * max(1.0, s[0] if s.size else 1.0)).sum())
        null = vh[rank:]
        fixed = np.all(np.abs(null) < 1e-8, axis=0) if null.size else np.ones(len(cells), bool)
        for c, f in zip(cells, fixed, strict=True):
            out[c] = bool(f)
    return out


def determined_sum(
    sup: npt.ArrayLike, constraints: Sequence[Constraint], cells: Sequence[int]
) -> bool:
    """Whether the published cells and the constraints fix the sum of ``cells`` exactly.

    A group of suppressed cells can be recovered together even when none of them can
    be alone (two schools' program students from the network's total, say). The sum is
    fixed when every solution of the homogeneous system over the suppressed cells leaves
    it unchanged: its weights are orthogonal to the null space. Published cells in
    ``cells`` are known and add nothing.

    Raises
    ------
    ValueError
        When more than ``_MAX_BLOCK`` suppressed cells would have to be checked together.
    """
    hidden = np.asarray(sup, bool)
    want = sorted({int(c) for c in cells if hidden[c]})
    if not want:
        return True
    eqs: list[dict[int, float]] = []
    for total, parts in constraints:
        row = {int(p): -1.0 for p in parts if hidden[p]}
        if total is not None and hidden[total]:
            row[int(total)] = row.get(int(total), 0.0) + 1.0
        if row:
            eqs.append(row)
    cols = sorted({c for eq in eqs for c in eq} | set(want))
    if len(cols) > _MAX_BLOCK:
        raise ValueError(
            f"{len(cols):,} suppressed cells are linked by the table's totals, more than the "
            f"{_MAX_BLOCK:,} that can be checked; suppress the whole table instead"
        )
    pos = {c: j for j, c in enumerate(cols)}
    m = np.zeros((max(len(eqs), 1), len(cols)))
    for i, eq in enumerate(eqs):
        for c, v in eq.items():
            m[i, pos[c]] = v
    _, sv, vh = np.linalg.svd(m)
    rank = int((sv > _TOL * max(1.0, sv[0] if sv.size else 1.0)).sum())
    null = vh[rank:]
    w = np.zeros(len(cols))
    w[[pos[c] for c in want]] = 1.0
    return bool(np.all(np.abs(null @ w) < 1e-8)) if null.size else True


def suppression_mask(
    counts: npt.ArrayLike,
    *,
    min_cell: int = DEFAULT_MIN_CELL,
    constraints: Sequence[Constraint] = (),
    primary: npt.ArrayLike | None = None,
    protected: npt.ArrayLike | None = None,
    last_resort: npt.ArrayLike | None = None,
) -> npt.NDArray[np.bool_]:
    """Which cells to suppress: primary small cells plus complementary cells.

    Parameters
    ----------
    counts : array-like
        Number of students each cell describes, one per cell; or a 2-D array (cells x
        counts) when a cell describes several groups (e.g. students reached and students
        not reached), any of which may be small.
    min_cell : int, default 10
        Smallest number of students a published cell may describe (1 turns it off).
    constraints : sequence of (total, parts)
        Published additive relations between cells: ``total`` (a cell index, or None for
        a total known without being a cell) equals the sum of the cells ``parts``.
    primary : array-like of bool, optional
        Cells to suppress in any case (e.g. suppressed in a linked table).
    protected : array-like of bool, optional
        Cells already published elsewhere, never chosen as complementary cells.
    last_resort : array-like of bool, optional
        Cells chosen as complementary cells only when no other part of the line, nor its
        total, is available (e.g. large groups, so that a small group never hides one).

    Returns
    -------
    numpy.ndarray of bool
        True for cells to suppress.

    Raises
    ------
    ValueError
        If counts are negative, ``min_cell`` is below 1, or no complementary cell can be
        found without touching a protected cell.

    Examples
    --------
    Four schools and a published network total; one school has 4 students, so a second
    school (the smallest other one) is suppressed with it:

    >>> from cis_eval.present.privacy import suppression_mask
    >>> counts = [60, 4, 35, 22, 121]  # four schools, then the total
    >>> suppression_mask(counts, constraints=[(4, [0, 1, 2, 3])]).tolist()
    [False, True, False, True, False]
    """
    k = check_min_cell(min_cell)
    c = _as_counts(counts)
    m = c.shape[0]
    sup: npt.NDArray[np.bool_] = np.asarray(_small(c, k).any(axis=1), dtype=bool)
    if primary is not None:
        sup |= np.asarray(primary, bool).reshape(m)
    prot = np.zeros(m, bool) if protected is None else np.asarray(protected, bool).reshape(m)
    late = np.zeros(m, bool) if last_resort is None else np.asarray(last_resort, bool).reshape(m)
    cons = [(None if t is None else int(t), [int(p) for p in parts]) for t, parts in constraints]
    for t, parts in cons:
        for i in [*parts, *([] if t is None else [t])]:
            if not 0 <= i < m:
                raise ValueError(f"constraint refers to cell {i}, but there are {m} cells")
    if k <= 1:
        return sup
    size = c[:, 0]

    def pick1(cands: list[int], late_ok: bool) -> int | None:
        # Only cells describing at least one student make useful complements: a hidden
        # zero in a line whose remainder is zero is pinned by non-negativity. With every
        # hidden cell positive, "not fixed by the linear constraints" implies "not
        # recoverable" even when counts are known to be non-negative.
        free = [
            i
            for i in cands
            if not sup[i] and not prot[i] and c[i].sum() > 0 and (late_ok or not late[i])
        ]
        if not free:
            return None
        return min(free, key=lambda i: (size[i], c[i].sum(), i))

    def pick_line(t: int | None, parts: list[int]) -> int | None:
        # Smaller parts first, then the line's total, then large groups.
        for cands, late_ok in ((parts, False), ([] if t is None else [t], False), (parts, True)):
            j = pick1(cands, late_ok)
            if j is not None:
                return j
        return None if t is None else pick1([t], True)

    def fix_line(t: int | None, parts: list[int]) -> bool:
        members = parts + ([] if t is None else [t])
        n_sup = int(sup[members].sum())
        if n_sup == 0:
            return False
        total_known = t is None or not sup[t]
        comb = c[[p for p in parts if sup[p]]].sum(axis=0) if n_sup else np.zeros(c.shape[1])
        small = bool(total_known and _small(comb, k).any())
        if n_sup >= 2 and not small:
            return False
        j = pick_line(t, parts)
        if j is None:
            raise ValueError(
                "no complementary cell is available for a line of the table; suppress the "
                "whole table instead"
            )
        sup[j] = True
        return True

    for _ in range(10 * m + 10):
        changed = False
        for t, parts in cons:
            while fix_line(t, parts):
                changed = True
        if changed:
            continue
        fixed = np.flatnonzero(_determined(sup, cons))
        if fixed.size == 0:
            return sup
        j = int(fixed[0])
        lines = [(t, p) for t, p in cons if j in p or t == j]
        for t, parts in sorted(lines, key=lambda tp: len(tp[1])):
            cand = pick_line(t, parts)
            if cand is not None:
                sup[cand] = True
                break
        else:
            # Every line through the cell is exhausted: widen the search to any line
            # that touches a suppressed cell (the smallest such cell breaks the chain).
            near = [
                i
                for t, parts in cons
                if sup[[*parts, *([] if t is None else [t])]].any()
                for i in [*parts, *([] if t is None else [t])]
            ]
            cand = pick1(near, False)
            cand = pick1(near, True) if cand is None else cand
            if cand is not None:
                sup[cand] = True
                continue
            raise ValueError(
                "a suppressed cell could be recovered from the totals and no further "
                "complementary cell is available; suppress the whole table instead"
            )
    raise RuntimeError("complementary suppression did not settle")  # pragma: no cover


def feasible_range(
    values: npt.ArrayLike,
    suppressed: npt.ArrayLike,
    constraints: Sequence[Constraint],
    cell: int,
) -> tuple[float, float]:
    """Smallest and largest value of a suppressed cell consistent with what is published.

    Solves two linear programmes over the suppressed cells (non-negative unknowns) with
    every constraint whose published cells are moved to the right-hand side.

    Parameters
    ----------
    values : array-like
        True value of every cell (only the published ones are used as known).
    suppressed : array-like of bool
        True for cells that are not published.
    constraints : sequence of (total, parts)
        Additive relations, as for :func:`suppression_mask`; ``total=None`` means the
        total is known (the sum of the true values of the parts).
    cell : int
        A suppressed cell.

    Returns
    -------
    (float, float)
        The range; the upper end is ``inf`` when unbounded.
    """
    from scipy.optimize import linprog

    vals = np.nan_to_num(np.asarray(values, float))
    sup = np.asarray(suppressed, bool)
    unknown = np.flatnonzero(sup)
    pos = {int(c): i for i, c in enumerate(unknown)}
    if int(cell) not in pos:
        raise ValueError(f"cell {cell} is published, so its value is known")
    a_eq: list[npt.NDArray[np.float64]] = []
    b_eq: list[float] = []
    for total, parts in constraints:
        row = np.zeros(unknown.size)
        rhs = 0.0
        members = [(int(p), -1.0) for p in parts]
        members += [] if total is None else [(int(total), 1.0)]
        for c, coef in members:
            if c in pos:
                row[pos[c]] += coef
            else:
                rhs -= coef * vals[c]
        if total is None:
            rhs -= float(sum(vals[int(p)] for p in parts))
        if np.any(row != 0):
            a_eq.append(row)
            b_eq.append(rhs)
    obj = np.zeros(unknown.size)
    obj[pos[int(cell)]] = 1.0
    kw: dict[str, npt.NDArray[np.float64]] = (
        {"A_eq": np.array(a_eq), "b_eq": np.array(b_eq)} if a_eq else {}
    )
    lo = linprog(obj, bounds=(0, None), method="highs", **kw)
    hi = linprog(-obj, bounds=(0, None), method="highs", **kw)
    if lo.status != 0:
        raise ValueError("the published cells contradict the constraints")
    return float(lo.fun), (np.inf if hi.status == 3 else float(-hi.fun))


def recoverable_cells(
    values: npt.ArrayLike,
    suppressed: npt.ArrayLike,
    constraints: Sequence[Constraint],
    *,
    tol: float = 0.5,
) -> list[int]:
    """Suppressed cells a reader could work out exactly from what is published.

    An independent check of :func:`suppression_mask` (linear programming rather than the
    engine's linear algebra): a suppressed cell describing at least one student is
    recoverable when its feasible range (:func:`feasible_range`) is narrower than
    ``tol``. Hidden zeros are left out: a zero describes no student.

    Parameters
    ----------
    values, suppressed, constraints
        As for :func:`feasible_range`.
    tol : float, default 0.5
        Width under which a range pins a count down.

    Returns
    -------
    list of int
        The recoverable cells (empty when the publication is safe).
    """
    vals = np.nan_to_num(np.asarray(values, float))
    sup = np.asarray(suppressed, bool)
    out = []
    for j in np.flatnonzero(sup & (vals > 0)):
        lo, hi = feasible_range(vals, sup, constraints, int(j))
        if hi - lo < tol:
            out.append(int(j))
    return out


def suppress(
    table: pd.DataFrame,
    counts: pd.DataFrame | None = None,
    *,
    min_cell: int = DEFAULT_MIN_CELL,
    totals: Totals = "both",
    marker: str = SUPPRESSED,
    total_label: str = "Total",
) -> pd.DataFrame:
    """Publishable copy of a two-way table of counts: small cells and their complements hidden.

    Parameters
    ----------
    table : pandas.DataFrame
        Cells to publish (counts, or any values whose row and column sums are published).
    counts : pandas.DataFrame, optional
        Students each cell describes, same shape as ``table``; by default ``table`` itself.
    min_cell : int, default 10
        Smallest number of students a published cell may describe.
    totals : {"both", "rows", "columns", "none"}, default "both"
        Margins to add and publish: a total column (``"rows"``: each row's sum), a total
        row (``"columns"``), both (with the grand total), or none.
    marker : str, default "*"
        Text shown in place of a suppressed cell.
    total_label : str, default "Total"
        Label of the added margins.

    Returns
    -------
    pandas.DataFrame
        Object-dtype copy with margins added and suppressed cells replaced by ``marker``.
        ``attrs["suppressed"]`` holds the boolean mask (same shape).

    Examples
    --------
    >>> import pandas as pd
    >>> from cis_eval.present.privacy import suppress
    >>> t = pd.DataFrame(
    ...     {"Individual": [40, 35, 50], "Group": [25, 30, 20], "Family": [12, 3, 15]},
    ...     index=["A", "B", "C"],
    ... )
    >>> suppress(t, totals="rows")
       Individual Group Family  Total
    A          40    25     12     77
    B          35     *      *     68
    C          50    20     15     85
    >>> suppress(t)  # with column totals too, more cells must go
           Individual Group Family  Total
    A              40     *      *     77
    B              35     *      *     68
    C              50     *      *     85
    Total         125    75     30    230
    """
    check_option("totals", totals, ("none", "rows", "columns", "both"))
    if counts is None:
        counts = table
    if counts.shape != table.shape:
        raise ValueError(f"counts has shape {counts.shape}, table has shape {table.shape}")
    nr, nc = table.shape
    cnt = _as_counts(counts.to_numpy(dtype=float).reshape(-1))[:, 0].reshape(nr, nc)
    vals = table.to_numpy(dtype=float)
    row_tot = totals in ("rows", "both")
    col_tot = totals in ("columns", "both")
    # Cell layout: interior (row-major), then row totals, column totals, grand total.
    idx = np.arange(nr * nc).reshape(nr, nc)
    n_cells = nr * nc
    rt = np.arange(n_cells, n_cells + nr) if row_tot else None
    n_cells += nr if row_tot else 0
    ct = np.arange(n_cells, n_cells + nc) if col_tot else None
    n_cells += nc if col_tot else 0
    gt = n_cells if (row_tot and col_tot) else None
    n_cells += 1 if gt is not None else 0
    cell_counts = np.zeros(n_cells)
    cell_counts[: nr * nc] = cnt.reshape(-1)
    cons: list[Constraint] = []
    if rt is not None:
        cell_counts[rt] = cnt.sum(axis=1)
        cons += [(int(rt[i]), idx[i].tolist()) for i in range(nr)]
    if ct is not None:
        cell_counts[ct] = cnt.sum(axis=0)
        cons += [(int(ct[j]), idx[:, j].tolist()) for j in range(nc)]
    if gt is not None:
        assert rt is not None and ct is not None
        cell_counts[gt] = cnt.sum()
        cons += [(gt, rt.tolist()), (gt, ct.tolist())]
    mask = suppression_mask(cell_counts, min_cell=min_cell, constraints=cons)
    out = table.astype(object).copy()
    smask = pd.DataFrame(mask[: nr * nc].reshape(nr, nc), index=table.index, columns=table.columns)
    if rt is not None:
        out[total_label] = vals.sum(axis=1)
        smask[total_label] = mask[rt]
    if ct is not None:
        extra = list(vals.sum(axis=0)) + ([vals.sum()] if gt is not None else [])
        out.loc[total_label] = extra
        smask.loc[total_label] = list(mask[ct]) + ([bool(mask[gt])] if gt is not None else [])
    out = out.astype(object)
    for col in out.columns:
        out[col] = [
            marker if s else (int(v) if float(v).is_integer() else v)
            for v, s in zip(out[col], smask[col], strict=True)
        ]
    out.attrs["suppressed"] = smask.astype(bool)
    return out
