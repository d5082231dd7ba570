"""Which published fidelity figures must be hidden so no small group can be recovered.

Every table, chart and the summary of a :class:`~cis_eval.fidelity.result.FidelityResult`
ask these functions what to hide, so one decision holds across the whole report:

1. **Pooling first** (:func:`pooled`). Schools with fewer than ``min_cell`` program
   students share one row, "Other schools (fewer than N students)", and coordinators
   serving fewer than ``min_cell`` students one "Other coordinators" row per school. A
   small school then hides only itself instead of forcing a large one out.
2. **One system of counts** (:func:`row_masks`): students reached, not reached and in the
   program, per coordinator, school and network, solved together with
   :func:`cis_eval.present.privacy.suppression_mask`. Large groups (at least 3 x
   ``min_cell``) are complementary cells only when no smaller part and no total is
   available, and then only their count goes, never their dosage. The network's figures
   in the summary, the research-group table and the dosage table come from the same
   decision, so a total stated in one cannot be subtracted from rows of another.
3. **Distributions coarsened, not blanked**: bands and histogram bars are merged until
   each holds 0 or at least ``min_cell`` students; a histogram whose total is hidden is
   drawn as shares.
4. **Checked as a whole** (:func:`audit`): every count the report states is read back
   from its tables and summary, and linear programming confirms that no hidden count
   can be worked out from all of them together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from ..present.privacy import determined_sum, recoverable_cells, suppression_mask
from ..schema import MODES, SERVICE_AREAS
from .frames import DOSE_OUTCOMES, program_rows, reached_rows, rec, records, service_areas
from .targets import Target, student_column

if TYPE_CHECKING:
    from .result import FidelityResult

_SVC: tuple[str, ...] = tuple(SERVICE_AREAS)  # the ten CIS areas and "other"
_MODES: tuple[str, ...] = tuple(MODES)


def _band_counts(values: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """Students in each band between consecutive cuts (band i is [cuts[i-1], cuts[i]))."""
    idx = np.searchsorted(np.asarray(cuts, float), values, side="right")
    return np.bincount(idx, minlength=len(cuts) + 1)


def publishable_cuts(values: np.ndarray, cuts: Sequence[float], k: int) -> list[float]:
    """The cuts that can be published: every band between them holds 0 or >= k students.

    Published shares above a cut (e.g. "% with 10 or more contacts") and bar heights are
    differences of band counts, so a band with 1 to k-1 students would be revealed by
    subtraction. A small band is merged with its smaller non-empty neighbour by dropping
    the cut between them, until none is left.
    """
    out = sorted({float(c) for c in cuts if np.isfinite(c)})
    while out:
        counts = _band_counts(values, out)
        small = np.flatnonzero((counts > 0) & (counts < k))
        if not small.size:
            break
        i = int(small[0])
        options = []
        if i > 0:
            options.append((int(counts[i - 1]), i - 1))
        if i < len(counts) - 1:
            options.append((int(counts[i + 1]), i))
        options.sort(key=lambda t: (t[0] == 0, t[0]))
        del out[options[0][1]]
    return out


def target_cuts(t: Target | None) -> list[float]:
    """The cuts a target publishes: its minimum, and just above its maximum."""
    if t is None:
        return []
    cuts = []
    if t.low is not None:
        cuts.append(t.low)
    if t.high is not None:
        cuts.append(float(np.nextafter(t.high, np.inf)))
    return cuts


def safe_histogram(
    values: np.ndarray, width: float, k: int, cuts: Sequence[float] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram whose every bar holds 0 or at least ``k`` students.

    Bars start ``width`` wide and are merged with a neighbour while small (coarsened
    rather than blanked), never across a published cut (so bars never split a band whose
    total is published elsewhere). Only fewer than ``k`` students in all leave no bar.
    """
    if values.size < k or values.size == 0:
        return np.array([0.0, width]), np.array([])
    hi = float(np.ceil((values.max() + 1e-9) / width) * width)
    hi = max(hi, width)
    fixed = {float(c) for c in cuts if 0 < c < hi}
    edges = sorted(set(np.arange(0.0, hi + width / 2, width).tolist()) | fixed)
    counts = np.histogram(values, edges)[0].astype(float).tolist()
    while True:
        small = [i for i, c in enumerate(counts) if 0 < c < k]
        if not small:
            break
        i = small[0]
        left = i - 1 if i > 0 and edges[i] not in fixed else None
        right = i + 1 if i < len(counts) - 1 and edges[i + 1] not in fixed else None
        cands = [j for j in (left, right) if j is not None]
        if not cands:
            # Cannot happen with cuts from publishable_cuts; were it to, the bar is
            # widened across the cut (coarser, still safe) rather than blanked.
            cands = [j for j in (i - 1, i + 1) if 0 <= j < len(counts)]
        if not cands:
            counts[i] = 0.0
            continue
        j = min(cands, key=lambda j: (counts[j] == 0, counts[j]))
        a, b = min(i, j), max(i, j)
        counts[a] += counts[b]
        del counts[b]
        del edges[b]
    return np.array(edges), np.array(counts)


def school_pool_label(k: int) -> str:
    """Label of the row pooling schools with fewer than ``k`` program students."""
    return f"Other schools (fewer than {k} students)"


def coordinator_pool_label(k: int) -> str:
    """Label of the row pooling coordinators with fewer than ``k`` students served."""
    return f"Other coordinators (fewer than {k} students)"


_DOSE_STATS = ("contacts", "hours", "weeks", "active_weeks", "contacts_per_month")


def _quartiles(v: pd.Series, prefix: str) -> dict[str, float]:
    v = v.astype(float).dropna()
    if not len(v):
        return dict.fromkeys((f"{prefix}_{q}" for q in ("mean", "q1", "median", "q3")), np.nan)
    return {
        f"{prefix}_mean": float(v.mean()),
        f"{prefix}_q1": float(v.quantile(0.25)),
        f"{prefix}_median": float(v.median()),
        f"{prefix}_q3": float(v.quantile(0.75)),
    }


def _weighted_share(rows: pd.DataFrame) -> float:
    w = rows["fte"].astype(float).fillna(1.0)
    sh = rows["level2_time_share"].astype(float)
    ok = sh.notna()
    return float((w[ok] * sh[ok]).sum() / w[ok].sum()) if ok.any() and w[ok].sum() > 0 else np.nan


def _pooled_school(res: FidelityResult, rows: pd.DataFrame, label: str) -> dict[str, Any]:
    s = res._students[res._students["school_id"].isin(set(rows["school_id"]))]
    prog = s[s["treatment"] == 1]
    reached = prog[prog["contacts"] > 0]
    ctrl = s[s["treatment"] == 0]
    out: dict[str, Any] = {
        "school_id": label,
        "program_students": len(prog),
        "students_reached": len(reached),
        "share_reached": len(reached) / len(prog) if len(prog) else np.nan,
        "control_students": len(ctrl),
        "control_reached": int((ctrl["contacts"] > 0).sum()),
    }
    for m in _DOSE_STATS:
        out.update(_quartiles(reached[student_column(m)], m))
    out.update(_quartiles(reached["days_to_first_contact"], "days_to_first_contact"))
    out["total_contacts"] = float(prog["contacts"].sum())
    out["total_hours"] = float(prog["hours"].sum())
    out["coordinators"] = int(rows["coordinators"].sum())
    out["fte"] = rows["fte"].sum(min_count=1)
    out["reported_caseload"] = rows["reported_caseload"].sum(min_count=1)
    share = rows["level2_time_share"].astype(float)
    w = rows["fte"].astype(float).fillna(1.0)
    ok = share.notna()
    out["level2_time_share"] = (
        float((w[ok] * share[ok]).sum() / w[ok].sum()) if ok.any() and w[ok].sum() > 0 else np.nan
    )
    return out


def _pooled_coordinator(
    rows: pd.DataFrame, label: str, school: str, n_prog: float
) -> dict[str, Any]:
    served = int(rows["students_served"].sum())
    fte = rows["fte"].sum(min_count=1)
    caseload = float(rows["caseload"].sum())
    out: dict[str, Any] = {
        "coordinator_id": label,
        "school_id": school,
        "fte": fte,
        "reported_caseload": rows["reported_caseload"].sum(min_count=1),
        "caseload": caseload,
        "caseload_source": "log" if (rows["caseload_source"] == "log").any() else "reported",
        "caseload_per_fte": caseload / fte if pd.notna(fte) and fte > 0 else np.nan,
        "schools_served": np.nan,
        "coordinator_fte": np.nan,
        "coordinator_caseload": np.nan,
        "level2_time_share": _weighted_share(rows),
        "students_served": served,
        "share_reached": served / n_prog if n_prog > 0 else np.nan,
        "control_students_served": int(rows["control_students_served"].sum()),
        "total_contacts": float(rows["total_contacts"].sum()),
        "total_hours": float(rows["total_hours"].sum()),
    }
    # Medians cannot be pooled from rows; the means can (totals over students served).
    for m in ("contacts", "hours"):
        out[f"{m}_mean"] = out[f"total_{m}"] / served if served else np.nan
        out.update({f"{m}_{q}": np.nan for q in ("q1", "median", "q3")})
    return out


def pooled(res: FidelityResult, k: int) -> FidelityResult:
    """``res`` with small schools and coordinators pooled into "other" rows.

    Schools with 1 to ``k - 1`` program students become one row, "Other schools (fewer
    than k students)", and their coordinator rows one "Other coordinators" row under it.
    In the other schools, coordinator rows serving 1 to ``k - 1`` program students are
    pooled per school. Pooling before suppression means a small group hides only itself
    (and, when the pooled row is still small, the smallest complementary cell) instead
    of taking a large school with it. Pooled labels never name a pooled school.

    Parameters
    ----------
    res : FidelityResult
        The result to publish.
    k : int
        Smallest number of students a published figure may describe.

    Returns
    -------
    FidelityResult
        A copy whose school, coordinator and school-service-mix frames are pooled (the
        same object when nothing needs pooling).
    """
    schools, coords = res._schools, res._coordinators
    if k <= 1 or schools.attrs.get("pooled_k") == k:
        return res
    frames = (schools, coords, res._school_service_mix)
    return cast("FidelityResult", res._remember(("pooled", k), frames, lambda: _pooled(res, k)))


def _pooled(res: FidelityResult, k: int) -> FidelityResult:
    schools, coords = res._schools, res._coordinators
    n = schools["program_students"].to_numpy()
    small = (n > 0) & (n < k)
    s_label = school_pool_label(k)
    c_label = coordinator_pool_label(k)
    small_ids = set(schools.loc[small, "school_id"])
    new_schools = schools.loc[~small].copy()
    if small.any():
        row = _pooled_school(res, schools.loc[small], s_label)
        new_schools = pd.concat([new_schools, pd.DataFrame([row])], ignore_index=True)
    n_prog = dict(zip(new_schools["school_id"], new_schools["program_students"], strict=True))
    in_small = coords["school_id"].isin(small_ids).to_numpy()
    served = coords["students_served"].to_numpy()
    tiny = ~in_small & (served > 0) & (served < k)
    keep = coords.loc[~in_small & ~tiny]
    extra = []
    if in_small.any():
        extra.append(_pooled_coordinator(coords.loc[in_small], c_label, s_label, n_prog[s_label]))
    for school, rows in coords.loc[tiny].groupby("school_id", sort=True):
        extra.append(_pooled_coordinator(rows, c_label, str(school), n_prog.get(school, 0)))
    new_coords = pd.concat([keep, pd.DataFrame(extra)], ignore_index=True) if extra else keep
    new_coords = new_coords.reset_index(drop=True)
    sm = res._school_service_mix
    new_sm = sm
    if small.any():
        part = sm[sm["school_id"].isin(small_ids)]
        agg = part.groupby(["code", "label"], sort=False, as_index=False)[
            ["contacts", "students"]
        ].sum()
        tot = float(agg["contacts"].sum())
        agg["share_of_contacts"] = agg["contacts"] / tot if tot else np.nan
        agg.insert(0, "school_id", s_label)
        new_sm = pd.concat([sm[~sm["school_id"].isin(small_ids)], agg], ignore_index=True)
    for frame in (new_schools, new_coords, new_sm):
        frame.attrs["pooled_k"] = k
    return replace(res, _schools=new_schools, _coordinators=new_coords, _school_service_mix=new_sm)


def is_pooled_label(label: object) -> bool:
    """Whether a row label is a pooled "other" row."""
    return isinstance(label, str) and label.startswith(("Other schools (", "Other coordinators ("))


@dataclass(frozen=True, slots=True)
class Masks:
    """What the school, coordinator and network rows may publish (True = suppressed).

    A large group is never hidden for the sake of a smaller one when a smaller part or a
    total can be hidden instead; when only its count must go (a complement), its dosage
    figures stay.
    """

    n: np.ndarray  # schools: program students
    reached: np.ndarray  # schools: the count of students reached
    dosage: np.ndarray  # schools: dosage of students reached (and the count)
    reach: np.ndarray  # schools: share reached (exact)
    share_bound: list[float | None]  # schools: a safe lower bound on the share reached
    total_n: bool
    total_reached: bool
    total_dosage: bool
    total_reach: bool
    total_bound: float | None
    coord_count: np.ndarray  # coordinators: students served (and total hours)
    coord: np.ndarray  # coordinators: dosage of the students served
    coord_share: np.ndarray  # coordinators: share of the school's program students
    caseload: np.ndarray  # coordinators: reported caseload
    caseload_total: bool


def safe_mask(
    counts: Any,
    *,
    min_cell: int,
    constraints: Sequence[tuple[int | None, Sequence[int]]] = (),
    primary: Any = None,
    protected: Any = None,
    last_resort: Any = None,
) -> np.ndarray:
    """:func:`~cis_eval.present.privacy.suppression_mask` that never fails.

    When no complementary cell can be found, every cell of the system is hidden: the
    report loses that table's figures rather than crash or reveal a small group.
    """
    try:
        return suppression_mask(
            counts,
            min_cell=min_cell,
            constraints=constraints,
            primary=primary,
            protected=protected,
            last_resort=last_resort,
        )
    except ValueError:
        m = np.asarray(counts, float).shape[0]
        return np.ones(m, bool)


def _bound(reached: float, n: float, k: int) -> float | None:
    """Largest 5% step X with n(1/X - 1) >= k, when the share is at least X.

    "X or more" then cannot prove that fewer than k students were left unreached.
    """
    if n <= 0 or reached <= 0:
        return None
    x = math.floor(20 * reached / (reached + k)) / 20
    return x if x >= 0.5 and reached / n >= x else None


def row_system(
    res: FidelityResult, k: int
) -> tuple[np.ndarray, list[tuple[int | None, list[int]]], dict[str, Any]]:
    """The joint system of counts behind the school, coordinator and network rows.

    Cells: coordinator rows (students served); per school row and for the network, the
    students reached, the program students and the students not reached (published
    exactly when both others are). ``res`` must be pooled.

    Returns
    -------
    counts : numpy.ndarray
    constraints : list of (total, parts)
    index : dict of cell positions (``coord``, ``reached``, ``total_reached``, ``n``,
        ``total_n``, ``unreached``, ``total_unreached``)
    """
    schools, coords = res._schools, res._coordinators
    n_c, n_s = len(coords), len(schools)
    coord = np.arange(n_c)
    reached = n_c + np.arange(n_s)
    r_tot = n_c + n_s
    n_cells = r_tot + 1 + np.arange(n_s)
    n_tot = r_tot + 1 + n_s
    u_cells = n_tot + 1 + np.arange(n_s)
    u_tot = n_tot + 1 + n_s
    big = schools["program_students"].to_numpy(float)
    got = schools["students_reached"].to_numpy(float)
    counts = np.zeros(u_tot + 1)
    counts[coord] = coords["students_served"].to_numpy(float)
    counts[reached] = got
    counts[r_tot] = got.sum()
    counts[n_cells] = big
    counts[n_tot] = big.sum()
    counts[u_cells] = big - got
    counts[u_tot] = big.sum() - got.sum()
    pos = {s: int(reached[i]) for i, s in enumerate(schools["school_id"])}
    kids: dict[int, list[int]] = {}
    for i, s in enumerate(coords["school_id"]):
        if s in pos:
            kids.setdefault(pos[s], []).append(i)
    cons: list[tuple[int | None, list[int]]] = [(r_tot, reached.tolist())]
    cons += list(kids.items())
    if n_c:
        cons.append((r_tot, coord.tolist()))
    cons.append((n_tot, n_cells.tolist()))
    cons.append((u_tot, u_cells.tolist()))
    cons += [(int(n_cells[i]), [int(reached[i]), int(u_cells[i])]) for i in range(n_s)]
    cons.append((n_tot, [r_tot, u_tot]))
    index = {
        "coord": coord,
        "reached": reached,
        "total_reached": r_tot,
        "n": n_cells,
        "total_n": n_tot,
        "unreached": u_cells,
        "total_unreached": u_tot,
    }
    return counts, cons, index


def _protect_groups(
    counts: np.ndarray,
    cons: list[tuple[int | None, list[int]]],
    ix: dict[str, Any],
    mask: np.ndarray,
    primary: np.ndarray,
    last: np.ndarray,
    k: int,
) -> np.ndarray:
    """Widen ``mask`` until no group of schools hidden together can be counted exactly.

    Cell by cell nothing hidden is recoverable, but the schools whose program students
    are hidden (or whose count reached is) form a group whose totals follow from the
    network's: with their counts reached published, their students not reached follow
    too. For each such group (the schools with hidden program students, those with a
    hidden count reached, and both together), every count of the group that the
    published figures fix must be zero or at least ``k``; otherwise the program count of
    one more school (the one with most students not reached) joins the hidden ones.
    """
    n_s = len(ix["n"])
    for _ in range(n_s + 1):
        h_n = np.flatnonzero(mask[ix["n"]])
        h_r = np.flatnonzero(mask[ix["reached"]])
        leak = False
        for group in {tuple(h_n), tuple(h_r), tuple(np.union1d(h_n, h_r))}:
            if not group:
                continue
            g = list(group)
            for kind in ("n", "reached", "unreached"):
                cells = ix[kind][g].tolist()
                total = float(counts[cells].sum())
                try:
                    fixed = determined_sum(mask, cons, cells)
                except ValueError:  # too many linked cells to check: publish none
                    return np.ones_like(mask)
                if 0 < total < k and fixed:
                    leak = True
        if not leak:
            return mask
        shown = np.flatnonzero(~mask[ix["n"]] & (counts[ix["n"]] > 0))
        if not shown.size:
            primary[ix["total_n"]] = True
        else:
            unreached = counts[ix["unreached"]][shown]
            primary[ix["n"][shown[int(np.argmax(unreached))]]] = True
        mask = safe_mask(counts, min_cell=k, constraints=cons, primary=primary, last_resort=last)
    return mask


def row_masks(res: FidelityResult, k: int) -> Masks:
    """Suppression of the school, coordinator and network rows (see :func:`_row_masks`)."""
    p = pooled(res, k)
    return cast(Masks, res._remember(("row_masks", k), (p,), lambda: _row_masks(p, k)))


def _row_masks(res: FidelityResult, k: int) -> Masks:
    """Suppression of the school, coordinator and network rows, solved together.

    One system holds every count of these rows (see :func:`row_system`): coordinators
    within schools within the network for students reached, the schools' program
    students within the network's, and the students not reached (N - n) of each. When a
    school's students not reached are few, its count of program students is hidden (its
    count reached, on which the coordinators and the dosage build, stays); when the
    network's are few, the network's count reached is hidden in every table and the
    summary. Large groups (at least 3 x ``k``) are complementary cells only when no
    smaller part and no total is available. ``res`` is pooled first.
    """
    res = pooled(res, k)
    schools, coords = res._schools, res._coordinators
    n_c, n_s = len(coords), len(schools)
    counts, cons, ix = row_system(res, k)
    big = schools["program_students"].to_numpy(float)
    got = schools["students_reached"].to_numpy(float)
    served = coords["students_served"].to_numpy(float)
    primary = np.zeros(len(counts), bool)
    small_n = (big > 0) & (big < k)
    primary[ix["reached"]] = small_n
    # A few students not reached: hide the school's count of program students rather
    # than its count reached, which the coordinators' rows and the dosage build on.
    primary[ix["n"]] |= (big - got > 0) & (big - got < k)
    n_all = float(big.sum())
    if 0 < n_all < k:
        primary[:] = True
    # The network's count reached is the number at the cut "1 or more contacts": when the
    # research-group table cannot publish that cut (a small band beside it), no table may
    # publish the count.
    if 1.0 not in contact_cuts(res, "program", k):
        primary[ix["total_reached"]] = True
    # A zero describes no student: hiding it protects nothing and, alone in a line (a
    # pooled school nobody reached), would leave no complementary cell to find.
    primary &= counts > 0
    last = np.zeros(len(counts), bool)
    parts = np.concatenate([ix["coord"], ix["reached"], ix["n"], ix["unreached"]])
    last[parts] = counts[parts] >= 3 * k
    mask = safe_mask(counts, min_cell=k, constraints=cons, primary=primary, last_resort=last)
    # Where hiding the count of program students took the count reached with it (e.g.
    # a single school, whose counts are the network's), hide the count reached instead.
    lost = mask[ix["n"]] & mask[ix["reached"]] & (big >= k) & (got >= k)
    swap = lost & primary[ix["n"]]
    if swap.any():
        primary[ix["n"][swap]] = False
        primary[ix["reached"][swap]] = True
        mask = safe_mask(counts, min_cell=k, constraints=cons, primary=primary, last_resort=last)
    mask = _protect_groups(counts, cons, ix, mask, primary, last, k)
    n_mask = mask[ix["n"]]
    r_mask = mask[ix["reached"]]
    dosage = ((got > 0) & (got < k)) | small_n
    r_tot, n_tot = float(got.sum()), n_all
    total_dosage = 0 < r_tot < k
    total_n = bool(mask[ix["total_n"]])
    total_reached = bool(mask[ix["total_reached"]])
    reach = r_mask | n_mask
    bounds = [_bound(got[i], big[i], k) if reach[i] and not dosage[i] else None for i in range(n_s)]
    total_reach = total_reached or total_n
    total_bound = _bound(r_tot, n_tot, k) if total_reach and not total_dosage else None
    c_count = mask[ix["coord"]]
    c_dose = (served > 0) & (served < k)
    home_n = coords["school_id"].map(dict(zip(schools["school_id"], n_mask, strict=True)))
    coord_share = c_count | home_n.fillna(True).to_numpy(dtype=bool)
    # Caseloads (reported, or else the students served) add up to the network mean
    # shown in the benchmarks; a caseload taken from the log is a count of served
    # students, hidden wherever that count is.
    caseload = coords["caseload"].to_numpy(float)
    from_log = (coords["caseload_source"] == "log").to_numpy()
    cl_counts = np.append(np.nan_to_num(caseload), np.nansum(caseload))
    cl_mask = safe_mask(
        cl_counts,
        min_cell=k,
        constraints=[(n_c, list(range(n_c)))] if n_c else [],
        primary=np.append(from_log & c_count, False),
    )
    return Masks(
        n=n_mask,
        reached=r_mask,
        dosage=dosage,
        reach=reach,
        share_bound=bounds,
        total_n=total_n,
        total_reached=total_reached,
        total_dosage=bool(total_dosage),
        total_reach=bool(total_reach),
        total_bound=total_bound,
        coord_count=c_count,
        coord=c_dose,
        coord_share=coord_share,
        caseload=cl_mask[:n_c],
        caseload_total=bool(cl_mask[n_c]),
    )


def contact_cuts(res: FidelityResult, arm: str, k: int) -> list[float]:
    """Published cuts of Level 2 contacts for one research group (program or control).

    The same cuts serve every table and chart that splits that group by contacts (the
    receipt thresholds, the share meeting the contacts target, the dose-response
    bands, the histogram), so no difference between them isolates a small band.
    """
    s = res._students
    values = s.loc[s["treatment"] == (1 if arm == "program" else 0), "contacts"]
    cuts = [1.0, *map(float, res.thresholds)]
    if arm == "program":
        for which in ("study", "user"):
            cuts += target_cuts(res.targets.get("contacts", which))
    return publishable_cuts(values.to_numpy(float), cuts, k)


def dose_cuts(res: FidelityResult, k: int) -> list[float]:
    """Dose-response bands: the published receipt thresholds.

    Any subset of published cuts is safe: its bands are unions of safe bands.
    """
    keep = {1.0, *map(float, res.thresholds)}
    return [c for c in contact_cuts(res, "program", k) if c in keep]


def measure_cuts(res: FidelityResult, measure: str, k: int) -> list[float]:
    """Published cuts of a dosage measure among program students reached."""
    if measure == "contacts":
        return contact_cuts(res, "program", k)
    v = reached_rows(res)[student_column(measure)].astype(float).dropna().to_numpy()
    cuts: list[float] = []
    for which in ("study", "user"):
        cuts += target_cuts(res.targets.get(measure, which))
    return publishable_cuts(v, cuts, k)


def network_hidden(res: FidelityResult, k: int) -> tuple[bool, bool]:
    """(dosage hidden, reach hidden) for the network as a whole."""
    m = row_masks(res, k)
    return m.total_dosage, m.total_reach


def arm_cells(res: FidelityResult, k: int) -> dict[str, dict[str, bool]]:
    """Which cells of each research group's row are hidden."""
    a = res._arms.set_index("arm")
    m = row_masks(res, k)
    out: dict[str, dict[str, bool]] = {}
    for arm in ("program", "control"):
        if arm not in a.index:
            continue
        r = rec(a, arm)
        n_all, got = float(r["students"]), float(r["received"])
        cuts = contact_cuts(res, arm, k)
        t1 = float(r["tier1_received"])
        cells = {
            "students": 0 < n_all < k,
            "received": 1.0 not in cuts,
            "means": 0 < got < k,
            "tier1": 0 < t1 < k or 0 < n_all - t1 < k,
        }
        for t in res.thresholds[1:]:
            cells[f"t{t}"] = float(t) not in cuts
        if arm == "program":
            # The same counts as the school table's network row, decided there.
            cells["received"] = cells["received"] or m.total_reached or m.total_dosage
            cells["students"] = cells["students"] or m.total_n
            cells["means"] = cells["means"] or m.total_dosage
        if cells["students"]:
            # Every share and mean per student divides by the hidden count, and with the
            # count received it would give the count back: the row goes with its total.
            cells = dict.fromkeys(cells, True)
        out[arm] = cells
    return out


def mix_masks(
    res: FidelityResult, k: int
) -> tuple[np.ndarray, list[str], dict[tuple[int, str], bool]]:
    """Suppression of the network and school-by-area service mix (see :func:`_mix_masks`)."""
    p = pooled(res, k)
    out = res._remember(("mix_masks", k), (p,), lambda: _mix_masks(p, k))
    return cast("tuple[np.ndarray, list[str], dict[tuple[int, str], bool]]", out)


def _mix_masks(
    res: FidelityResult, k: int
) -> tuple[np.ndarray, list[str], dict[tuple[int, str], bool]]:
    """Suppression of the network mix and the school-by-area mix, solved together.

    Cells: each school's contacts by area, the school totals (hidden exactly when the
    school's dosage is, since dosage x students gives them), the network totals by
    area, by mode and for Level 1, and the network Level 2 total (published).
    """
    res = pooled(res, k)
    mix = res._service_mix[res._service_mix["arm"] == "program"]
    sm = res._school_service_mix
    schools = list(dict.fromkeys(sm["school_id"]))
    masks = row_masks(res, k)
    hidden = dict(zip(res._schools["school_id"], masks.dosage, strict=True))
    count_hidden = dict(zip(res._schools["school_id"], masks.reached, strict=True))
    reached = dict(zip(res._schools["school_id"], res._schools["students_reached"], strict=True))
    svc = service_areas(res)  # "other" only when the log uses it
    n_s, n_a, n_m = len(schools), len(svc), len(_MODES)
    interior = np.arange(n_s * n_a).reshape(n_s, n_a)
    rt = n_s * n_a + np.arange(n_s)
    ct = n_s * n_a + n_s + np.arange(n_a)
    g2 = n_s * n_a + n_s + n_a
    md = g2 + 1 + np.arange(n_m)
    l1 = g2 + 1 + n_m + np.arange(n_a)
    g1 = g2 + 1 + n_m + n_a
    counts = np.zeros(g1 + 1)
    primary = np.zeros(g1 + 1, bool)
    protected = np.zeros(g1 + 1, bool)
    stud = sm.pivot_table(index="school_id", columns="code", values="students", aggfunc="sum")
    for i, s in enumerate(schools):
        for j, a in enumerate(svc):
            counts[interior[i, j]] = float(stud.loc[s, a]) if a in stud.columns else 0.0
        primary[interior[i]] = hidden.get(s, True)
        counts[rt[i]] = float(reached.get(s, 0))
        primary[rt[i]] = count_hidden.get(s, True)
    protected[rt] = True
    l2 = mix[mix["tier"] == 2]
    by_area = l2[l2["dimension"] == "service_area"].set_index("code")["students"]
    by_mode = l2[l2["dimension"] == "mode"].set_index("code")["students"]
    l1_area = mix[(mix["tier"] == 1) & (mix["dimension"] == "service_area")].set_index("code")
    for j, a in enumerate(svc):
        counts[ct[j]] = float(by_area.get(a, 0))
        counts[l1[j]] = float(l1_area["students"].get(a, 0))
    for j, mo in enumerate(_MODES):
        counts[md[j]] = float(by_mode.get(mo, 0))
    counts[g2] = float(len(reached_rows(res)))
    primary[g2] = masks.total_reached or masks.total_dosage
    protected[g2] = True
    counts[g1] = float((program_rows(res)["tier1_contacts"] > 0).sum())
    cons: list[tuple[int | None, list[int]]] = []
    cons += [(int(rt[i]), interior[i].tolist()) for i in range(n_s)]
    # A school's shares add up to 100% whether or not its count reached is published.
    cons += [(None, interior[i].tolist()) for i, s in enumerate(schools) if not hidden.get(s, True)]
    cons += [(int(ct[j]), interior[:, j].tolist()) for j in range(n_a)]
    cons += [(g2, rt.tolist()), (g2, ct.tolist()), (g2, md.tolist()), (g1, l1.tolist())]
    last = np.zeros(g1 + 1, bool)
    last[interior] = counts[interior] >= 3 * k
    mask = safe_mask(
        counts,
        min_cell=k,
        constraints=cons,
        primary=primary,
        protected=protected,
        last_resort=last,
    )
    net = {(2, a): bool(mask[ct[j]]) for j, a in enumerate(svc)}
    net.update({(1, a): bool(mask[l1[j]]) for j, a in enumerate(svc)})
    net.update({(2, mo): bool(mask[md[j]]) for j, mo in enumerate(_MODES)})
    net[(1, "total")] = bool(mask[g1])
    return mask[interior], schools, net


def dose_masks(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per cell: hidden or not.

    Band sizes come from published cuts, so they are safe; an outcome mean over fewer
    than k students is hidden with a complement, because the bands' means add up to
    the program group's mean.
    """
    out = pd.DataFrame(False, index=frame.index, columns=["students", *DOSE_OUTCOMES])
    ctrl = (frame["arm"] == "control").to_numpy()
    prog = np.flatnonzero(~ctrl)
    out["students"] = (frame["students"] > 0) & (frame["students"] < k)
    for o in DOSE_OUTCOMES:
        if f"n_{o}" not in frame.columns:
            continue
        n = frame[f"n_{o}"].to_numpy(float)
        mask = np.zeros(len(frame), bool)
        mask[ctrl] = (n[ctrl] > 0) & (n[ctrl] < k)
        cells = np.append(n[prog], n[prog].sum())
        sub = safe_mask(cells, min_cell=k, constraints=[(len(prog), list(range(len(prog))))])
        mask[prog] = sub[:-1]
        out[o] = mask | out["students"].to_numpy()
    return out


def weekly_series(res: FidelityResult, k: int) -> dict[int, pd.DataFrame]:
    """Program-group contacts per week, with weeks hidden for privacy.

    A week's contacts describe the students seen that week; the weeks add up to the
    published total, so a hidden week takes another with it.
    """
    w = res._weekly[res._weekly["arm"] == "program"]
    hidden, _ = network_hidden(res, k)
    out = {}
    for tier in (2, 1):
        d = w[w["tier"] == tier].reset_index(drop=True)
        counts = d["students"].to_numpy(float)
        if hidden or 0 < counts.sum() < k:
            mask = np.ones(len(d), bool)
        else:
            mask = safe_mask(counts, min_cell=k, constraints=[(None, list(range(len(d))))])
        out[tier] = d.assign(suppressed=mask)
    return out


def coordinator_rows_hidden(res: FidelityResult, k: int) -> np.ndarray:
    """Per row of ``res``'s own (unpooled) coordinator frame: not published on its own.

    True for a row pooled into an "other coordinators" row, and for a row whose count or
    dosage the coordinator table hides; for figures drawn per coordinator (e.g. monthly
    trends), which must not show what the table hides.
    """
    p = pooled(res, k)
    m = row_masks(p, k)
    shown = p._coordinators
    hidden = dict(
        zip(
            zip(shown["coordinator_id"], shown["school_id"], strict=True),
            m.coord_count | m.coord,
            strict=True,
        )
    )
    own = res._coordinators
    keys = zip(own["coordinator_id"], own["school_id"], strict=True)
    return np.array([bool(hidden.get(key, True)) for key in keys], dtype=bool)


def published_total_n(res: FidelityResult, k: int) -> int | None:
    """A lower bound on the network's program students that the school table already gives.

    When the network's count of program students is hidden, the summary states "at
    least" the sum of the published school counts, rounded down to a multiple of 10.
    """
    p = pooled(res, k)
    m = row_masks(p, k)
    if not m.total_n:
        return None
    shown = p._schools["program_students"].to_numpy(float)[~m.n].sum()
    return int(shown // 10 * 10)


def _num(cell: object) -> float | None:
    """The number a published table cell states, or None when it states none."""
    if not isinstance(cell, str):
        value = float(cast(float, cell)) if isinstance(cell, (int, float, np.number)) else None
        return None if value is None or not np.isfinite(value) else value
    text = cell.replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        return None


def published_system(
    res: FidelityResult, k: int
) -> tuple[list[str], np.ndarray, np.ndarray, list[tuple[int | None, list[int]]]]:
    """Every count of students the report states, read back from what it publishes.

    One system over the summary and every table: program students, students reached and
    not reached per school, per coordinator and for the network; the program group's
    students by Level 2 contacts between the published thresholds (from the research
    group table's shares and its count of students). A cell counts as published when
    any table or the summary states it (an exact share and its published denominator
    state the numerator too). Relations that hold in the data are the constraints.

    Parameters
    ----------
    res : FidelityResult
        The result reported.
    k : int
        Smallest number of students a published figure may describe.

    Returns
    -------
    labels : list of str
    values : numpy.ndarray
        The true counts.
    published : numpy.ndarray of bool
    constraints : list of (total, parts)
    """
    p = pooled(res, k)
    schools, coords = p._schools, p._coordinators
    labels: list[str] = []
    values: list[float] = []
    shown: list[bool] = []

    def cell(label: str, value: float, published: bool = False) -> int:
        labels.append(label)
        values.append(float(value))
        shown.append(published)
        return len(labels) - 1

    st = res.table("school", min_cell=k).data.set_index("School")
    ct = res.table("coordinator", min_cell=k).data
    arm = res.table("arm", min_cell=k).data.set_index("Group")
    dosage = res.table("dosage", min_cell=k).data
    text = " ".join(res.summary(min_cell=k))

    def stated(frame: pd.DataFrame, row: str, col: str) -> bool:
        if row not in frame.index or col not in frame.columns:
            return False
        return _num(frame.loc[row, col]) is not None

    cons: list[tuple[int | None, list[int]]] = []
    r_cells, n_cells = [], []
    for s_id, n_i, r_i in zip(
        schools["school_id"], schools["program_students"], schools["students_reached"], strict=True
    ):
        n = cell(f"program students: {s_id}", n_i, stated(st, s_id, "Program students"))
        r = cell(f"reached: {s_id}", r_i, stated(st, s_id, "Reached"))
        u = cell(f"not reached: {s_id}", n_i - r_i, shown[n] and shown[r])
        exact = _num(str(st.loc[s_id, "% reached"]).rstrip("%")) is not None
        if exact and (shown[n] or shown[r]):
            shown[n] = shown[r] = shown[u] = True
        cons.append((n, [r, u]))
        r_cells.append(r)
        n_cells.append(n)
    prog = program_rows(res)
    n_all, r_all = len(prog), int((prog["contacts"] > 0).sum())
    tot = "All schools"
    summary_pair = re.search(r"([\d,]+) of ([\d,]+) program", text)
    n_stated = (
        stated(st, tot, "Program students")
        or stated(arm, "Program group", "Students")
        or bool(summary_pair)
        or bool(re.search(rf"for {n_all:,} program", text))
    )
    r_stated = (
        stated(st, tot, "Reached")
        or stated(arm, "Program group", "Received Level 2 services")
        or bool(summary_pair)
        or bool(re.search(rf"(?<![\d,]){r_all:,} program students had", text))
        or any(_num(v) == r_all for v in dosage["Students"])
    )
    n_tot = cell("program students: network", n_all, n_stated)
    r_tot = cell("reached: network", r_all, r_stated)
    u_tot = cell("not reached: network", n_all - r_all, n_stated and r_stated)
    if _num(str(st.loc[tot, "% reached"]).rstrip("%")) is not None and (n_stated or r_stated):
        shown[n_tot] = shown[r_tot] = shown[u_tot] = True
    cons += [(n_tot, [r_tot, u_tot]), (n_tot, n_cells), (r_tot, r_cells)]
    # Coordinators within schools: a relation only where every student reached was
    # served by one coordinator there (otherwise the rows overlap and do not add up).
    c_cells: dict[str, list[int]] = {}
    for i, d in enumerate(records(coords)):
        pub = _num(ct["Program students served"].iloc[i]) is not None
        j = cell(f"served: {d['coordinator_id']} at {d['school_id']}", d["students_served"], pub)
        c_cells.setdefault(str(d["school_id"]), []).append(j)
    for s_id, r in zip(schools["school_id"], r_cells, strict=True):
        kids = c_cells.get(str(s_id), [])
        if kids and sum(values[j] for j in kids) == values[r]:
            cons.append((r, kids))
    # The program group by Level 2 contacts: bands between the thresholds; a share of
    # students with at least t contacts states a count when the group's size is stated.
    cuts = sorted({1.0, *map(float, res.thresholds)})
    contacts = prog["contacts"].to_numpy(float)
    band = np.searchsorted(np.asarray(cuts), contacts, side="right")
    # band 0 (no Level 2 contact) is the network's count not reached
    bands = [u_tot] + [
        cell(f"program students with {lo:g} to under {hi:g} contacts", float((band == b).sum()))
        for b, (lo, hi) in enumerate(zip(cuts, [*cuts[1:], np.inf], strict=True), start=1)
    ]
    cons.append((n_tot, bands))
    for b, t in enumerate(cuts, start=1):
        if t == 1.0:
            cons.append((r_tot, bands[1:]))
            continue
        col = f"% with {int(t)}+ contacts"
        pub = shown[n_tot] and stated_share(arm, "Program group", col)
        g = cell(f"program with {int(t)}+ contacts", float((contacts >= t).sum()), pub)
        cons.append((g, bands[b:]))
    return labels, np.array(values), np.array(shown, dtype=bool), cons


def stated_share(frame: pd.DataFrame, row: str, col: str) -> bool:
    """Whether a table states an exact share (e.g. "71%") in a cell."""
    if row not in frame.index or col not in frame.columns:
        return False
    return _num(str(frame.loc[row, col]).rstrip("%")) is not None


def audit(res: FidelityResult, k: int | None = None) -> list[str]:
    """Problems with the privacy of everything the report publishes (empty when safe).

    Reads back every count the summary and the tables state (:func:`published_system`)
    and checks, over the whole system at once: no published count describes 1 to
    ``k - 1`` students, and no hidden count can be worked out exactly by linear
    programming from the published ones (:func:`~cis_eval.present.privacy.recoverable_cells`).

    Parameters
    ----------
    res : FidelityResult
        The result reported.
    k : int, optional
        Smallest number of students a published figure may describe (default: the
        result's ``min_cell``).

    Returns
    -------
    list of str
        One line per problem, naming the figure (never a student).
    """
    k = res.min_cell if k is None else k
    labels, values, shown, cons = published_system(res, k)
    small = (values > 0) & (values < k)
    out = [f"published count under {k}: {labels[i]}" for i in np.flatnonzero(shown & small)]
    # A figure some table hides must stay hidden; a count no table states (students not
    # reached, contact bands) may follow from the others, as long as it is not small.
    derived = np.array([lab.startswith(("not reached", "program students with")) for lab in labels])
    for j in recoverable_cells(values, ~shown, cons):
        if small[j] or not derived[j]:
            out.append(f"recoverable: {labels[j]}")
    return out
