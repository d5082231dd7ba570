"""Small-cell suppression: no published small cell, no suppressed cell recoverable.

Recoverability is checked independently of the engine's own linear algebra: for every
suppressed cell a linear programme finds the smallest and largest value consistent with
everything published (cells and totals) and non-negative counts. A cell is recoverable
by subtraction exactly when the two coincide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from cis_eval.present.privacy import (
    SUPPRESSED,
    check_min_cell,
    recoverable_cells,
    suppress,
    suppression_mask,
)
from cis_eval.present.privacy import (
    feasible_range as published_range,
)

K = 10

# Counts with many small cells, zeros and large ones: the cases that matter.
count = st.one_of(st.integers(0, 12), st.integers(0, 80))


def feasible_range(values, sup, constraints, j):
    """Smallest and largest value of cell j given published cells and the constraints."""
    unknown = np.flatnonzero(sup)
    pos = {c: i for i, c in enumerate(unknown)}
    a_eq, b_eq = [], []
    for total, parts in constraints:
        row = np.zeros(unknown.size)
        rhs = 0.0
        members = [(p, -1.0) for p in parts] + ([] if total is None else [(total, 1.0)])
        for c, coef in members:
            if c in pos:
                row[pos[c]] += coef
            else:
                rhs -= coef * values[c]
        if total is None:
            rhs -= sum(values[p] for p in parts)  # the known total moves to the right
        if np.any(row != 0):
            a_eq.append(row)
            b_eq.append(rhs)
    obj = np.zeros(unknown.size)
    obj[pos[j]] = 1.0
    kw = {"A_eq": np.array(a_eq), "b_eq": np.array(b_eq)} if a_eq else {}
    lo = linprog(obj, bounds=(0, None), method="highs", **kw)
    hi = linprog(-obj, bounds=(0, None), method="highs", **kw)
    assert lo.status == 0 and hi.status in (0, 3)
    return lo.fun, (np.inf if hi.status == 3 else -hi.fun)


def check_safe(values, counts, sup, constraints, k=K):
    counts = np.asarray(counts, float)
    if counts.ndim == 1:
        counts = counts[:, None]
    small = ((counts > 0) & (counts < k)).any(axis=1)
    # 1. no published cell describes between 1 and k-1 students
    assert not (small & ~sup).any()
    # 2. no suppressed cell can be worked out from what is published (a hidden zero may
    #    be: zeros describe no student and would have been published anyway)
    for j in np.flatnonzero(sup & (np.asarray(values) > 0)):
        lo, hi = feasible_range(values, sup, constraints, j)
        assert hi - lo > 0.5, f"cell {j} recoverable: [{lo}, {hi}]"
    # 3. every line with a published total hides a combined count of 0 or >= k
    for total, parts in constraints:
        if total is not None and sup[total]:
            continue
        hidden = counts[[p for p in parts if sup[p]]].sum(axis=0)
        assert not ((hidden > 0) & (hidden < k)).any()


def two_way(table):
    """Cells, counts and constraints of a table with both margins, as suppress() builds it."""
    nr, nc = table.shape
    idx = np.arange(nr * nc).reshape(nr, nc)
    rt, ct, gt = nr * nc + np.arange(nr), nr * nc + nr + np.arange(nc), nr * nc + nr + nc
    values = np.concatenate([table.ravel(), table.sum(1), table.sum(0), [table.sum()]])
    cons = [(int(rt[i]), idx[i].tolist()) for i in range(nr)]
    cons += [(int(ct[j]), idx[:, j].tolist()) for j in range(nc)]
    cons += [(gt, rt.tolist()), (gt, ct.tolist())]
    return values, cons


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 6).flatmap(
        lambda nr: st.integers(1, 5).flatmap(
            lambda nc: st.lists(count, min_size=nr * nc, max_size=nr * nc).map(
                lambda v: np.array(v, float).reshape(nr, nc)
            )
        )
    )
)
def test_two_way_table_with_margins_is_safe(table):
    out = suppress(pd.DataFrame(table), min_cell=K)
    mask = out.attrs["suppressed"].to_numpy()
    nr, nc = table.shape
    sup = np.concatenate([mask[:nr, :nc].ravel(), mask[:nr, nc], mask[nr, :nc], [mask[nr, nc]]])
    values, cons = two_way(table)
    check_safe(values, values, sup, cons)
    # what is shown is the data, and every hidden cell shows the marker
    shown = out.to_numpy()
    assert all(v == SUPPRESSED for v in shown[mask])
    visible = np.concatenate([shown[:nr, :nc].ravel(), shown[:nr, nc], shown[nr, :nc]])
    expect = values[: nr * nc + nr + nc]
    keep = ~sup[: nr * nc + nr + nc]
    assert np.allclose(visible[keep].astype(float), expect[keep])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(count, min_size=1, max_size=4), min_size=1, max_size=6),
)
def test_hierarchy_coordinators_in_schools_in_network_is_safe(schools):
    # cells: coordinators..., schools..., network total
    coords = [c for s in schools for c in s]
    n_c = len(coords)
    school_cells = list(range(n_c, n_c + len(schools)))
    total = n_c + len(schools)
    values = np.array(coords + [sum(s) for s in schools] + [sum(coords)], float)
    cons, start = [], 0
    for i, s in enumerate(schools):
        cons.append((school_cells[i], list(range(start, start + len(s)))))
        start += len(s)
    cons.append((total, school_cells))
    sup = suppression_mask(values, min_cell=K, constraints=cons)
    check_safe(values, values, sup, cons)


@settings(max_examples=100, deadline=None)
@given(st.lists(count, min_size=1, max_size=12))
def test_distribution_with_known_total_is_safe(parts):
    # e.g. shares of contacts by service area: they sum to 100%, a total always known
    assume(sum(parts) == 0 or sum(parts) >= K)  # a known total under K is never published
    values = np.array(parts, float)
    cons = [(None, list(range(values.size)))]
    sup = suppression_mask(values, min_cell=K, constraints=cons)
    check_safe(values, values, sup, cons)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=8))
def test_reached_and_not_reached_are_both_protected(rows):
    # N program students per school, n of them reached: n and N - n must both be safe
    n = np.array([r[0] for r in rows] + [sum(r[0] for r in rows)], float)
    not_n = np.array([r[1] for r in rows] + [sum(r[1] for r in rows)], float)
    counts = np.column_stack([n, not_n])
    cons = [(len(rows), list(range(len(rows))))]
    sup = suppression_mask(counts, min_cell=K, constraints=cons)
    check_safe(n, counts, sup, cons)
    check_safe(not_n, counts, sup, cons)


def test_one_small_school_takes_the_smallest_other_with_it():
    counts = [60, 4, 35, 22, 121]
    assert suppression_mask(counts, constraints=[(4, [0, 1, 2, 3])]).tolist() == [
        False,
        True,
        False,
        True,
        False,
    ]


def test_two_small_cells_that_add_up_to_less_than_k_need_a_third():
    counts = [3, 4, 30, 50, 87]
    sup = suppression_mask(counts, constraints=[(4, [0, 1, 2, 3])])
    assert sup.tolist() == [True, True, True, False, False]


def test_zero_cells_are_published_and_min_cell_1_turns_suppression_off():
    assert not suppression_mask([0, 0, 50, 50], constraints=[(3, [0, 1, 2])]).any()
    assert not suppression_mask([1, 2, 3, 6], min_cell=1, constraints=[(3, [0, 1, 2])]).any()


def test_a_small_total_is_suppressed_with_everything_under_it():
    sup = suppression_mask([2, 3, 5], constraints=[(2, [0, 1])])
    assert sup.all()


def test_linked_primary_cells_and_protected_cells_are_respected():
    counts = [40, 30, 25, 95]
    cons = [(3, [0, 1, 2])]
    sup = suppression_mask(counts, constraints=cons, primary=[True, False, False, False])
    assert sup.tolist() == [True, False, True, False]
    sup = suppression_mask(
        counts, constraints=cons, primary=[True, False, False, False], protected=[0, 0, 1, 0]
    )
    assert sup.tolist() == [True, True, False, False]


def test_cycle_in_a_two_way_table_is_not_recoverable_but_a_bridge_would_be():
    # Two suppressed blocks joined by one cell: the engine must not leave a bridge.
    table = np.array([[3, 40, 50, 60], [40, 3, 50, 60], [50, 60, 3, 40], [60, 50, 40, 3]], float)
    out = suppress(pd.DataFrame(table))
    mask = out.attrs["suppressed"].to_numpy()
    nr, nc = table.shape
    sup = np.concatenate([mask[:nr, :nc].ravel(), mask[:nr, nc], mask[nr, :nc], [mask[nr, nc]]])
    values, cons = two_way(table)
    check_safe(values, values, sup, cons)


def test_a_known_total_under_k_cannot_be_protected():
    with pytest.raises(ValueError, match="suppress the whole table"):
        suppression_mask([3, 4], constraints=[(None, [0, 1])])


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="at least 1"):
        suppression_mask([1, 2], min_cell=0)
    with pytest.raises(TypeError, match="whole number"):
        check_min_cell(2.5)
    with pytest.raises(ValueError, match="negative"):
        suppression_mask([-1, 2])
    with pytest.raises(ValueError, match="refers to cell 7"):
        suppression_mask([1, 2], constraints=[(7, [0, 1])])
    with pytest.raises(ValueError, match="totals="):
        suppress(pd.DataFrame([[1]]), totals="diagonal")


def test_suppress_does_not_modify_its_input():
    t = pd.DataFrame({"a": [1, 20], "b": [30, 40]})
    before = t.copy()
    suppress(t)
    pd.testing.assert_frame_equal(t, before)


def test_a_chain_with_no_complement_in_its_own_lines_borrows_a_neighbouring_cell():
    # Found by Hypothesis: every line through the recoverable cell was used up; the
    # engine used to give up with an error instead of hiding one more nearby cell.
    table = np.array([[0, 0, 7], [0, 1, 0], [1, 9, 0], [0, 0, 3]], float)
    out = suppress(pd.DataFrame(table))
    mask = out.attrs["suppressed"].to_numpy()
    nr, nc = table.shape
    sup = np.concatenate([mask[:nr, :nc].ravel(), mask[:nr, nc], mask[nr, :nc], [mask[nr, nc]]])
    values, cons = two_way(table)
    check_safe(values, values, sup, cons)


def test_the_linear_programme_check_is_public_and_sees_subtraction():
    values = np.array([150.0, 145.0, 5.0])
    cons = [(0, [1, 2])]
    assert recoverable_cells(values, np.array([False, False, True]), cons) == [2]
    assert published_range(values, np.array([True, False, True]), cons, 2) == (0.0, np.inf)
    assert recoverable_cells(values, np.array([True, False, True]), cons) == []


def test_large_groups_are_the_last_resort():
    counts = [60, 4, 35, 22, 121]
    cons = [(4, [0, 1, 2, 3])]
    late = [True, False, True, False, False]
    assert suppression_mask(counts, constraints=cons, last_resort=late).tolist() == [
        False,
        True,
        False,
        True,
        False,
    ]
    # with only large groups beside the small one, the total goes instead
    late = [True, False, True, True, False]
    sup = suppression_mask(counts, constraints=cons, last_resort=late)
    assert sup.tolist() == [False, True, False, False, True]


def test_a_table_too_large_to_check_is_refused_not_run_out_of_memory():
    # 3,000 rows of two small cells each under one grand total: every suppressed cell is
    # linked to every other through the column totals, one block too large to check.
    n = 3_000
    counts = np.full(2 * n + 2, 3.0)
    parts_a, parts_b = list(range(0, 2 * n, 2)), list(range(1, 2 * n, 2))
    cons = [(2 * n, parts_a), (2 * n + 1, parts_b)]
    cons += [(None, [2 * i, 2 * i + 1]) for i in range(n)]
    with pytest.raises(ValueError, match="more than the 2,000 that can be checked"):
        suppression_mask(counts, min_cell=5, constraints=cons)
