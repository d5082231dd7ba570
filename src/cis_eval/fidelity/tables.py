"""Fidelity's publication tables: reader labels, formatted numbers, small cells suppressed.

One builder per level of :meth:`FidelityResult.table
<cis_eval.fidelity.result.FidelityResult.table>`; each asks
:mod:`cis_eval.fidelity.suppression` which cells to hide and says why in its notes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from ..present.privacy import SUPPRESSED
from ..present.table import Table
from ..schema import MODES, OUTCOMES, SERVICE_AREAS
from .frames import (
    DOSE_OUTCOMES,
    benchmarks_frame,
    dosage_frame,
    dose_frame,
    program_rows,
    reached_rows,
    rec,
    records,
    service_areas,
    short_of,
    with_flags,
)
from .suppression import (
    arm_cells,
    dose_cuts,
    dose_masks,
    is_pooled_label,
    measure_cuts,
    mix_masks,
    network_hidden,
    pooled,
    row_masks,
    target_cuts,
)
from .targets import COORDINATOR_FLAGS, DOSAGE, MEASURES, SCHOOL_FLAGS, student_column

if TYPE_CHECKING:
    from .result import FidelityResult

__all__ = ["TABLES", "build_table"]

_SVC: tuple[str, ...] = tuple(SERVICE_AREAS)  # the ten CIS areas and "other"
_MODES: tuple[str, ...] = tuple(MODES)


def _fmt_num(v: Any, digits: int) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{float(v):,.{digits}f}"


def _iqr(q1: Any, med: Any, q3: Any, digits: int) -> str:
    if med is None or med is pd.NA or (isinstance(med, float) and np.isnan(med)):
        return ""
    return f"{_fmt_num(med, digits)} ({_fmt_num(q1, digits)}-{_fmt_num(q3, digits)})"


def _pct(v: Any, digits: int = 0) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{float(v):.{digits}%}"


def _pp(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{100 * float(v):+.0f} pp"


def _privacy_note(k: int) -> str:
    return (
        f"{SUPPRESSED} Suppressed to protect student privacy: the figure describes fewer "
        f"than {k} students, or it is hidden as well so that such a figure cannot be "
        "worked out from the totals."
    )


def _pool_note(k: int, what: str) -> str:
    return (
        f"Other {what}: {what} with fewer than {k} program students are shown together "
        "in one row, so that no small group has to hide a large one."
    )


def _table_school(res: FidelityResult, k: int) -> Table:
    s = res.to_frame("school")
    m = row_masks(res, k)
    rows = [
        _school_row(
            res,
            r,
            (bool(m.n[i]), bool(m.reached[i]), bool(m.dosage[i]), bool(m.reach[i])),
            m.share_bound[i],
        )
        for i, r in enumerate(records(s))
    ]
    total = (m.total_n, m.total_reached, m.total_dosage, m.total_reach)
    rows.append(_school_row(res, _school_total(res), total, m.total_bound))
    eff = {name: res.targets.effective(name) for name in SCHOOL_FLAGS}
    shown = [f"{MEASURES[n].short} {t.describe()}" for n, t in eff.items() if t is not None]
    notes = [
        "Program-group students. Reached: at least one Level 2 (case-managed) contact. "
        "Dosage per student reached: the mean, and the median with the middle half of "
        "students (25th to 75th percentile) in brackets.",
        "Targets: " + "; ".join(shown) + ". Below target: more than "
        f"{res.targets.tolerance:.0%} short (for days to first contact: more than "
        f"{res.targets.tolerance:.0%} over).",
    ]
    if any(is_pooled_label(v) for v in s["school_id"]):
        notes.append(_pool_note(k, "schools"))
    if m.n.any() or m.reached.any() or m.reach.any() or m.total_n or m.total_reach:
        notes.append(_privacy_note(k))
    if any(b is not None for b in [*m.share_bound, m.total_bound]):
        notes.append(
            "'X% or more': the exact share would reveal how many students were not "
            f"reached, and that number is below {k}."
        )
    return Table(pd.DataFrame(rows), title="Dosage by school", notes=tuple(notes))


def _school_total(res: FidelityResult) -> dict[str, Any]:
    served = reached_rows(res)
    p = program_rows(res)
    out: dict[str, Any] = {
        "school_id": "All schools",
        "program_students": len(p),
        "students_reached": len(served),
        "share_reached": len(served) / len(p) if len(p) else np.nan,
    }
    for name in (*DOSAGE, "days_to_first_contact"):
        v = served[student_column(name)].astype(float).dropna()
        out[f"{name}_mean"] = v.mean() if len(v) else np.nan
        out[f"{name}_q1"] = v.quantile(0.25) if len(v) else np.nan
        out[f"{name}_median"] = v.median() if len(v) else np.nan
        out[f"{name}_q3"] = v.quantile(0.75) if len(v) else np.nan
    flagged = with_flags(res.targets, pd.DataFrame([out]), SCHOOL_FLAGS)
    return cast(dict[str, Any], flagged.iloc[0].to_dict())


def _school_row(
    res: FidelityResult,
    r: dict[str, Any],
    hidden: tuple[bool, bool, bool, bool],
    bound: float | None,
) -> dict[str, Any]:
    x = SUPPRESSED
    hide_n, hide_count, hide, hide_reach = hidden
    if hide_reach:
        share = f"{bound:.0%} or more" if bound is not None else x
    else:
        share = _pct(r["share_reached"])
    short = short_of(pd.Series(r), SCHOOL_FLAGS, ("share_reached",) if hide_reach else ())
    return {
        "School": r["school_id"],
        "Program students": x if hide_n else f"{int(r['program_students']):,}",
        "Reached": x if hide_count or hide else f"{int(r['students_reached']):,}",
        "% reached": share,
        "Contacts (mean)": x if hide else _fmt_num(r["contacts_mean"], 1),
        "Contacts: median (IQR)": x
        if hide
        else _iqr(r["contacts_q1"], r["contacts_median"], r["contacts_q3"], 0),
        "Hours (mean)": x if hide else _fmt_num(r["hours_mean"], 1),
        "Hours: median (IQR)": x
        if hide
        else _iqr(r["hours_q1"], r["hours_median"], r["hours_q3"], 1),
        "Weeks of service (mean)": x if hide else _fmt_num(r["weeks_mean"], 1),
        "Active weeks (mean)": x if hide else _fmt_num(r["active_weeks_mean"], 1),
        "Days to first contact (median)": x
        if hide
        else _fmt_num(r["days_to_first_contact_median"], 0),
        "Below target on": x if hide else (", ".join(short) or "-"),
    }


def _table_coordinator(res: FidelityResult, k: int) -> Table:
    c = res.to_frame("coordinator")
    m = row_masks(res, k)
    x = SUPPRESSED
    rows = []
    for i, d in enumerate(records(c)):
        hide, hide_n, hide_share, hide_cl = (
            bool(m.coord[i]),
            bool(m.coord_count[i] or m.coord[i]),
            bool(m.coord_share[i]),
            bool(m.caseload[i]),
        )
        cl = d["reported_caseload"]
        hidden = ["share_reached"] if hide_share else []
        if hide_cl:
            hidden.append("caseload")
        short = short_of(pd.Series(d), COORDINATOR_FLAGS, hidden)
        row = {
            "Coordinator": d["coordinator_id"],
            "School": d["school_id"] if isinstance(d["school_id"], str) else "",
            "FTE": _fmt_num(d["fte"], 2),
            "Reported caseload": x if hide_cl else ("" if pd.isna(cl) else f"{int(cl):,}"),
            "Time on Level 2": _pct(d["level2_time_share"]),
            "Program students served": x if hide_n else f"{int(d['students_served']):,}",
            "% of the school's program students": x if hide_share else _pct(d["share_reached"]),
            "Contacts per student (mean)": x if hide else _fmt_num(d["contacts_mean"], 1),
            "Contacts: median (IQR)": x
            if hide
            else _iqr(d["contacts_q1"], d["contacts_median"], d["contacts_q3"], 0),
            "Hours per student (mean)": x if hide else _fmt_num(d["hours_mean"], 1),
            # total hours / mean hours = students served: hidden with the count
            "Total hours": x if hide_n else _fmt_num(d["total_hours"], 0),
            "Below target on": x if hide else (", ".join(short) or "-"),
        }
        if res.targets.guide:
            status = d.get("status_caseload_guide", "")
            word = {"meets": "within", "below": "below", "above": "above"}.get(status, "")
            row["Caseload guide"] = x if hide_cl else word
        rows.append(row)
    notes = [
        "Program-group students with at least one Level 2 contact logged by the "
        "coordinator; dosage counts that coordinator's contacts only. Caseload as reported "
        "in the coordinators file (it includes students outside the study).",
    ]
    if res.targets.guide:
        g = res.targets.guide[0]
        notes.append(f"Caseload guide: {g.describe()} students ({g.source}).")
    if any(is_pooled_label(v) for v in c["coordinator_id"]):
        notes.append(_pool_note(k, "coordinators"))
    if m.coord.any() or m.coord_count.any() or m.caseload.any() or m.coord_share.any():
        notes.append(_privacy_note(k))
    return Table(
        pd.DataFrame(rows), title="Caseloads and dosage by coordinator", notes=tuple(notes)
    )


def _table_arm(res: FidelityResult, k: int) -> Table:
    a = res._arms.set_index("arm")
    hide = arm_cells(res, k)
    x = SUPPRESSED
    rows = []
    for arm, label in (("program", "Program group"), ("control", "Control group")):
        if arm not in a.index:
            continue
        r, h = rec(a, arm), hide[arm]
        row: dict[str, Any] = {
            "Group": label,
            "Students": x if h["students"] else f"{int(r['students']):,}",
            "Received Level 2 services": x if h["received"] else f"{int(r['received']):,}",
            "% received": x if h["received"] else _pct(r["share_received"]),
        }
        for t in res.thresholds[1:]:
            row[f"% with {t}+ contacts"] = x if h[f"t{t}"] else _pct(r[f"share_at_least_{t}"])
        row["Contacts per student"] = x if h["means"] else _fmt_num(r["contacts_per_student"], 1)
        row["Hours per student"] = x if h["means"] else _fmt_num(r["hours_per_student"], 1)
        row["Contacts per student served"] = (
            x if h["means"] or h["received"] else _fmt_num(r["contacts_per_served"], 1)
        )
        row["% with a Level 1 contact"] = x if h["tier1"] else _pct(r["share_tier1"])
        rows.append(row)
    if {"program", "control"} <= set(a.index):
        p, c = rec(a, "program"), rec(a, "control")
        hp, hc = hide["program"], hide["control"]

        def either(key: str) -> bool:
            return hp[key] or hc[key]

        row = {"Group": "Difference (program - control)", "Students": ""}
        row["Received Level 2 services"] = ""
        row["% received"] = (
            x if either("received") else _pp(p["share_received"] - c["share_received"])
        )
        for t in res.thresholds[1:]:
            col = f"share_at_least_{t}"
            row[f"% with {t}+ contacts"] = x if either(f"t{t}") else _pp(p[col] - c[col])
        row["Contacts per student"] = (
            x
            if either("means")
            else _fmt_num(p["contacts_per_student"] - c["contacts_per_student"], 1)
        )
        row["Hours per student"] = (
            x if either("means") else _fmt_num(p["hours_per_student"] - c["hours_per_student"], 1)
        )
        row["Contacts per student served"] = ""
        row["% with a Level 1 contact"] = (
            x if either("tier1") else _pp(p["share_tier1"] - c["share_tier1"])
        )
        rows.append(row)
    notes = [
        "All randomly assigned students, by research group. The difference is the service "
        "contrast an impact estimate rests on: how much more case management the program "
        "group received than the control group (pp: percentage points).",
        "Received: at least one Level 2 contact. The difference in the share with at least "
        "k contacts is the first stage of a complier average causal effect (CACE) that "
        "defines receipt as k or more contacts; cis_eval.service_receipt(students, "
        "contacts, min_contacts=k) gives that indicator.",
    ]
    if any(any(h.values()) for h in hide.values()):
        notes.append(_privacy_note(k))
    return Table(
        pd.DataFrame(rows),
        title="Services received by research group (the service contrast)",
        notes=tuple(notes),
    )


def _table_dosage(res: FidelityResult, k: int) -> Table:
    d = dosage_frame(res)
    hidden, _ = network_hidden(res, k)
    count_hidden = row_masks(res, k).total_reached
    n_served = len(reached_rows(res))
    x = SUPPRESSED
    rows = []
    for r in records(d):
        digits = MEASURES[r["measure"]].digits
        t = res.targets.effective(r["measure"])
        n = int(r["students"])
        hide = hidden or 0 < n < k
        hide_n = hide or 0 < n_served - n < k or (count_hidden and n == n_served)
        meets = ""
        if t is not None:
            cuts = measure_cuts(res, r["measure"], k)
            ok = all(c in cuts for c in target_cuts(t))
            meets = x if hide or not ok else _pct(r["share_meeting_target"])
        rows.append(
            {
                "Measure": r["label"],
                "Students": x if hide_n else f"{n:,}",
                "Mean": x if hide else _fmt_num(r["mean"], digits),
                "25th percentile": x if hide else _fmt_num(r["q1"], digits),
                "Median": x if hide else _fmt_num(r["median"], digits),
                "75th percentile": x if hide else _fmt_num(r["q3"], digits),
                "Target": t.describe() if t else "",
                "% of students meeting it": meets,
            }
        )
    notes = ["Program-group students with at least one Level 2 contact."]
    if any(v == x for row in rows for v in row.values()):
        notes.append(_privacy_note(k))
    return Table(pd.DataFrame(rows), title="Dosage per student reached", notes=tuple(notes))


def _table_benchmarks(res: FidelityResult, k: int) -> Table:
    b = benchmarks_frame(res)
    m = row_masks(res, k)
    x = SUPPRESSED
    rows = []
    for r in records(b):
        meas = MEASURES[r["measure"]]
        if r["measure"] == "share_reached":
            hide = m.total_reach or m.total_dosage
        elif r["measure"] == "caseload":
            hide = m.caseload_total
        elif meas.level == "student":
            hide = m.total_dosage
        else:
            hide = False
        share = r["measure"] in ("share_reached", "level2_time_share")
        value = _pct(r["value"]) if share else _fmt_num(r["value"], meas.digits)
        bounded = r["measure"] == "share_reached" and hide and m.total_bound is not None
        if bounded:
            value, hide = f"{m.total_bound:.0%} or more", False
        study = r["study_benchmark"].replace("at least ", "about ").replace("at most ", "about ")
        row = {
            "Measure": meas.label,
            "This report": x if hide else value,
            "Statistic": meas.statistic,
            "Study benchmark": study,
            "Compared with the study": x if hide else ("" if bounded else r["status_study"]),
        }
        if res.targets.user:
            row["Your target"] = r["target"]
            row["Compared with your target"] = (
                x if hide else ("" if bounded else r["status_target"])
            )
        if res.targets.guide:
            row["Practice guide"] = r["guide"]
            row["Compared with the guide"] = x if hide else r["status_guide"]
        rows.append(row)
    src = res.targets.study[0].source if res.targets.study else ""
    notes = [
        f"Study benchmarks: published averages of the Communities In Schools evaluation "
        f"({src}). Dosage is per program-group student reached; caseload and time on "
        "Level 2 are averages over coordinators.",
        f"near: within {res.targets.tolerance:.0%} of the benchmark or target.",
    ]
    if res.targets.user:
        notes.insert(1, f"Your targets: {res.targets.name}.")
    if res.targets.guide:
        notes.insert(1, f"Practice guide: {res.targets.guide[0].source}.")
    if any(v == x for row in rows for v in row.values()):
        notes.append(_privacy_note(k))
    return Table(pd.DataFrame(rows), title="Fidelity at a glance", notes=tuple(notes))


def _table_mix(res: FidelityResult, k: int) -> Table:
    mix = res._service_mix[res._service_mix["arm"] == "program"].set_index(
        ["tier", "dimension", "code"]
    )
    _, _, net = mix_masks(res, k)
    x = SUPPRESSED
    rows = []
    areas = service_areas(res)  # "other" only when the log uses it
    for dim, codes, labels in (("service_area", areas, SERVICE_AREAS), ("mode", _MODES, MODES)):
        for code in codes:
            r2 = rec(mix, (2, dim, code))
            h2 = net.get((2, code), False)
            row: dict[str, Any] = {
                "Service": ("Mode: " if dim == "mode" else "") + labels[code],
                "Level 2 contacts": x if h2 else f"{int(r2['contacts']):,}",
                "% of Level 2 contacts": x if h2 else _pct(r2["share_of_contacts"], 1),
                "% of Level 2 hours": x if h2 else _pct(r2["share_of_hours"], 1),
                "Students": x if h2 else f"{int(r2['students']):,}",
                "Level 1 contacts": "",
                "% of Level 1 contacts": "",
            }
            if dim == "service_area":
                r1 = rec(mix, (1, dim, code))
                h1 = net.get((1, code), False) or net[(1, "total")]
                row["Level 1 contacts"] = x if h1 else f"{int(r1['contacts']):,}"
                row["% of Level 1 contacts"] = x if h1 else _pct(r1["share_of_contacts"], 1)
            rows.append(row)
    notes = [
        "Program-group students. Students: those with at least one Level 2 contact of "
        "that kind (a student can receive several). Level 1 services are school-wide.",
    ]
    if any(net.values()):
        notes.append(_privacy_note(k))
    return Table(pd.DataFrame(rows), title="Service mix", notes=tuple(notes))


def _table_school_mix(res: FidelityResult, k: int) -> Table:
    sm = res._school_service_mix
    mask, schools, net = mix_masks(res, k)
    # A school with program students but no contacts has no shares: keep its row.
    share = sm.pivot_table(index="school_id", columns="code", values="share_of_contacts")
    share = share.reindex(schools)
    x = SUPPRESSED
    rows = []
    for i, s in enumerate(schools):
        row: dict[str, Any] = {"School": s}
        for j, a in enumerate(service_areas(res)):
            v = share.loc[s, a] if a in share.columns else np.nan
            row[SERVICE_AREAS[a]] = x if mask[i, j] else _pct(v)
        rows.append(row)
    mix = res._service_mix
    l2 = mix[
        (mix["arm"] == "program") & (mix["tier"] == 2) & (mix["dimension"] == "service_area")
    ].set_index("code")
    total: dict[str, Any] = {"School": "All schools"}
    for a in service_areas(res):
        total[SERVICE_AREAS[a]] = x if net[(2, a)] else _pct(l2.loc[a, "share_of_contacts"])
    rows.append(total)
    notes = ["Share of each school's Level 2 contacts with program-group students, by area."]
    if mask.any() or any(net[(2, a)] for a in service_areas(res)):
        notes.append(_privacy_note(k))
    return Table(pd.DataFrame(rows), title="Service mix by school", notes=tuple(notes))


def _table_dose(res: FidelityResult, k: int) -> Table:
    title = "Outcomes by Level 2 dosage (exploratory, non-experimental)"
    if res._outcomes is None:
        return Table(
            pd.DataFrame({"Note": ["The students table has no outcome fields."]}), title=title
        )
    frame = dose_frame(res, {"program": dose_cuts(res, k), "control": []})
    hide = dose_masks(frame, k)
    x = SUPPRESSED
    labels = {o.name: o.label for o in OUTCOMES}
    rows = []
    for i in range(len(frame)):
        r = frame.iloc[i]
        row: dict[str, Any] = {
            "Group": r["group"] if r["arm"] == "control" else f"Program: {r['group']}",
            "Students": x if hide.iloc[i]["students"] else f"{int(r['students']):,}",
        }
        for o in DOSE_OUTCOMES:
            if o not in frame.columns:
                continue
            binary = o in ("chronic_absence", "core_course_failure")
            shown = _pct(r[o]) if binary else _fmt_num(r[o], 2)
            row[labels[o] + (" (%)" if binary else "")] = x if hide.iloc[i][o] else shown
        rows.append(row)
    notes = [
        "EXPLORATORY AND NON-EXPERIMENTAL. Students who received more services differ "
        "from those who received fewer (in needs, engagement and attendance), so these "
        "differences are not effects of the services. The experimental comparison is "
        "program versus control. The effect of receiving services is estimated by the "
        "complier average causal effect (CACE), with random assignment as the instrument "
        "and receipt of at least k contacts (cis_eval.service_receipt) as the treatment.",
        f"Chronically absent: missed at least {res.chronic_threshold:.0%} of enrolled "
        "days. Means over students with the outcome recorded.",
    ]
    if hide.to_numpy().any():
        notes.append(_privacy_note(k))
    return Table(pd.DataFrame(rows), title=title, notes=tuple(notes))


TABLES: dict[str, Callable[[FidelityResult, int], Table]] = {
    "school": _table_school,
    "coordinator": _table_coordinator,
    "arm": _table_arm,
    "dosage": _table_dosage,
    "benchmarks": _table_benchmarks,
    "service_mix": _table_mix,
    "school_service_mix": _table_school_mix,
    "dose_response": _table_dose,
}
"""The publishable levels and the builder of each."""


def build_table(res: FidelityResult, level: str, k: int) -> Table:
    """The publication table of ``res`` at ``level`` with cells under ``k`` students hidden.

    Parameters
    ----------
    res : FidelityResult
        The result to publish.
    level : str
        A key of :data:`TABLES`.
    k : int
        Smallest number of students a published cell may describe.

    Returns
    -------
    Table
    """
    # Small schools and coordinators are pooled in the tables that list them; every
    # other table describes the network, whose figures pooling must not change.
    listed = level in ("school", "coordinator", "school_service_mix")
    return TABLES[level](pooled(res, k) if listed else res, k)
