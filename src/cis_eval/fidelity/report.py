"""The affiliate report: plain-language summary, tables and charts in reading order.

Builds on the publication tables (:mod:`cis_eval.fidelity.tables`) and charts
(:mod:`cis_eval.fidelity.plots`), so the report hides exactly what they hide. Also here:
the same tables as Excel sheets, and the coordinators' confidential follow-up lists,
which are never part of the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..present.privacy import SUPPRESSED
from ..present.table import Table
from .frames import program_rows, reached_rows, rec, records, short_of
from .plots import (
    CHART_LINES,
    CHART_ROWS,
    figure,
    figure_benchmarks,
    figure_dosage,
    monthly_series,
    plot_dose_response,
    plot_monthly,
    plot_weekly,
)
from .suppression import arm_cells, is_pooled_label, pooled, published_total_n, row_masks
from .targets import MEASURES, PRORATED, SCHOOL_FLAGS, Target, guide_explanation, meaning

if TYPE_CHECKING:
    from ..present.report import Report
    from .result import FidelityResult

__all__ = [
    "CONFIDENTIAL",
    "add_to_report",
    "follow_up_frame",
    "follow_up_sheets",
    "monthly_table",
    "report_tables",
    "summary",
    "table_sheets",
]

CONFIDENTIAL = (
    "CONFIDENTIAL: this sheet lists student identifiers. It is for the coordinators' own "
    "follow-up: do not share, publish or attach it to the fidelity report."
)
"""The banner at the top of every sheet of a follow-up workbook."""

# What each benchmark means, in a sentence a program director can act on.
PLAIN: dict[str, str] = {
    "contacts": "How often a student on the caseload was seen: the study's students had "
    "about one case-managed contact every two weeks of the school year.",
    "hours": "How much time each student received in all; short check-ins add up slowly.",
    "weeks": "How long services lasted, from the first to the last contact: case "
    "management is meant to last most of the school year.",
    "active_weeks": "In how many weeks a student was actually seen; far fewer active "
    "weeks than weeks of service means long gaps.",
    "contacts_per_month": "The pace of services while a student was served.",
    "days_to_first_contact": "How quickly services start: a long wait loses part of the year.",
    "share_reached": "How many students on the roster were seen at least once; a student "
    "never seen received no case management.",
    "caseload": "How many students each full-time coordinator carries; more students "
    "means less time for each.",
    "level2_time_share": "How much of a coordinator's working time goes to case "
    "management rather than school-wide activities.",
}


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _full(t: Target | None) -> float | None:
    """A target's full-year minimum (undoing any pro-rating)."""
    if t is None or t.low is None:
        return None
    return t.low / t.prorated if t.prorated else t.low


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}".removesuffix(".0")


def _who(res: FidelityResult) -> str:
    return "program-group students" if res.has_control else "program students"


def _period(res: FidelityResult) -> str:
    lo, hi = res.school_year
    end = res.through if res.through is not None else hi
    if res.elapsed_share < 1:
        return (
            f"from the start of the school year ({lo:%-d %B %Y}) through {end:%-d %B %Y}, "
            f"{res.elapsed_share:.0%} of the school year"
        )
    return f"in the school year {lo:%B %Y} to {hi:%B %Y}"


def summary(res: FidelityResult, k: int) -> list[str]:
    """Plain-language summary sentences for a program director (privacy-safe).

    Parameters
    ----------
    res : FidelityResult
        The result to summarise.
    k : int
        Smallest number of students a stated figure may describe.

    Returns
    -------
    list of str
    """
    p, served = program_rows(res), reached_rows(res)
    n_p, n_s = len(p), len(served)
    n_coord = int(res._coordinators["coordinator_id"].nunique())
    if n_p == 0:
        return [
            "The roster has no program students: every student on it is in the control "
            "group, so there is no program dosage, caseload or service mix to report. "
            "Check the treatment column (1 = program) or give the program roster."
        ]
    m = row_masks(res, k)
    at_least = published_total_n(res, k)
    who = f"fewer than {k}" if n_p < k else f"{n_p:,}"
    if at_least is not None and n_p >= k:
        # the exact count would reveal a hidden school by subtraction
        who = f"at least {at_least:,}" if at_least else "some"
    out = [
        f"This report covers Level 2 case management logged for {who} {_who(res)} "
        f"in {_n(len(res._schools), 'school')}, served by "
        f"{_n(n_coord, 'site coordinator')}, {_period(res)}."
    ]
    study = {name: res.targets.get(name, "study") for name in ("contacts", "hours", "weeks")}
    if res.elapsed_share < 1:
        pro = ", ".join(
            f"{_fmt(t.low)} {name}" for name, t in study.items() if t is not None and t.low
        )
        out.append(
            f"The log covers {res.elapsed_share:.0%} of the school year, so the full-year "
            f"benchmarks and targets for contacts, hours and weeks are pro-rated to "
            f"{res.elapsed_share:.0%} of their values (the study's become about {pro})."
        )
    if m.total_dosage:
        out.append(
            f"Fewer than {k} students were reached, so dosage figures are suppressed to "
            "protect student privacy."
        )
        return out
    if m.total_reach:
        # the exact count or share would reveal how many were left unreached (or a
        # hidden school); the table's safe lower bound is all that is stated
        share = f"{m.total_bound:.0%} or more" if m.total_bound is not None else "most"
        if not m.total_reached:
            out.append(f"{n_s:,} program students had at least one Level 2 contact.")
        else:
            out.append(f"Of the program students, {share} had at least one Level 2 contact.")
    else:
        out.append(
            f"{n_s:,} of {n_p:,} program students ({n_s / n_p:.0%}) had at least one "
            "Level 2 contact."
        )
    c = served["contacts"].astype(float)
    h = served["hours"].astype(float)
    w = served["span_weeks"].astype(float)
    out.append(
        f"Students reached received on average {c.mean():.1f} contacts (the middle half "
        f"between {c.quantile(0.25):.0f} and {c.quantile(0.75):.0f}), {h.mean():.1f} hours "
        f"of service and {w.mean():.1f} weeks from first to last contact. In the CIS "
        f"evaluation, case-managed students received about {_fmt(_full(study['contacts']))} "
        f"contacts, {_fmt(_full(study['hours']))} hours and {_fmt(_full(study['weeks']))} "
        "weeks over a full school year (Corrin et al. 2015)."
    )
    sch = pooled(res, k).to_frame("school")
    short = []
    for i in range(len(sch)):
        if m.dosage[i] or is_pooled_label(sch["school_id"].iloc[i]):
            continue
        hidden = ("share_reached",) if m.reach[i] else ()
        if short_of(sch.iloc[i], SCHOOL_FLAGS, hidden):
            short.append(str(sch["school_id"].iloc[i]))
    visible = int((~m.dosage).sum())
    if visible:
        names = ", ".join(short[:8]) + (" and others" if len(short) > 8 else "")
        out.append(
            f"{len(short)} of the {visible} schools shown fall more than "
            f"{res.targets.tolerance:.0%} short of at least one target"
            + (f": {names}." if short else ".")
        )
    arms = res._arms.set_index("arm")
    if res.has_control and {"program", "control"} <= set(arms.index):
        cells = arm_cells(res, k)
        prog, ctrl = rec(arms, "program"), rec(arms, "control")
        if not cells["control"]["received"] and not cells["program"]["received"]:
            diff = prog["contacts_per_student"] - ctrl["contacts_per_student"]
            extra = (
                f" The program group received {diff:.1f} more contacts per student."
                if not cells["control"]["means"] and not cells["program"]["means"]
                else ""
            )
            out.append(
                f"In the control group, {ctrl['share_received']:.0%} of "
                "students received Level 2 services (crossover), against "
                f"{prog['share_received']:.0%} in the program group."
                + extra
                + " This service contrast is what an impact estimate rests on."
            )
        else:
            out.append(
                "Level 2 services to the control group (crossover) involve too few "
                "students to report."
            )
    return out


def _benchmarks_table(res: FidelityResult, k: int) -> Table:
    """The benchmarks table with a plain-language explanation beside each benchmark."""
    t = res.table("benchmarks", min_cell=k)
    data = t.data.copy()
    data["What it tells you"] = [PLAIN[m] for m in MEASURES]
    notes = t.notes
    if res.elapsed_share < 1:
        notes = (
            *notes,
            f"Contacts, hours and weeks: targets pro-rated to {res.elapsed_share:.0%} of "
            "the school year, the share the log covers.",
        )
    if not res.has_control:
        notes = tuple(n.replace("program-group", "program") for n in notes)
    return Table(data, title=t.title, notes=notes)


def _coordinator_table(res: FidelityResult, k: int) -> Table:
    """The coordinator table with caseloads per FTE and the guide explained, not judged."""
    t = res.table("coordinator", min_cell=k)
    c = pooled(res, k).to_frame("coordinator")  # the table's rows, small ones pooled
    data = t.data.copy()
    per_fte = []
    for i in range(len(c)):
        hidden = data["Reported caseload"].iloc[i] == SUPPRESSED or (
            c["caseload_source"].iloc[i] == "log"
            and data["Program students served"].iloc[i] == SUPPRESSED
        )
        v = float(c["caseload_per_fte"].iloc[i])
        per_fte.append(SUPPRESSED if hidden else ("" if not np.isfinite(v) else f"{v:,.0f}"))
    pos = list(data.columns).index("Reported caseload") + 1
    data.insert(pos, "Caseload per FTE", per_fte)
    notes = (
        *t.notes,
        "Caseload per FTE: the caseload divided by the coordinator's full-time equivalent "
        "at that school, so a half-time coordinator with 40 students counts as 80. A "
        "coordinator serving several schools has one row per school.",
    )
    if res.targets.guide and "Caseload guide" in data.columns:
        g = res.targets.guide[0]
        data["Caseload guide"] = [
            SUPPRESSED if per_fte[i] == SUPPRESSED else guide_explanation(g.low, g.high, v)
            for i, v in enumerate(c["caseload_per_fte"].astype(float))
        ]
    if not res.has_control:
        notes = tuple(n.replace("program-group", "program") for n in notes)
    return Table(data, title=t.title, notes=notes)


def monthly_table(res: FidelityResult, k: int) -> Table:
    """Per coordinator and month: Level 2 contacts, hours and program students reached.

    Parameters
    ----------
    res : FidelityResult
        The result to publish.
    k : int
        Smallest number of students a published cell may describe.

    Returns
    -------
    Table
    """
    d = monthly_series(res, k)
    rows = []
    for r in records(d):
        hide = bool(r["suppressed"])
        rows.append(
            {
                "Coordinator": r["coordinator_id"],
                "Month": f"{pd.Timestamp(r['month']):%B %Y}",
                "Level 2 contacts": SUPPRESSED if hide else f"{int(r['contacts']):,}",
                "Hours": SUPPRESSED if hide else f"{float(r['hours']):,.1f}",
                "Students reached": SUPPRESSED if hide else f"{int(r['students']):,}",
            }
        )
    data = pd.DataFrame(
        rows, columns=["Coordinator", "Month", "Level 2 contacts", "Hours", "Students reached"]
    )
    notes = [
        f"Level 2 contacts with {_who(res)} logged by each coordinator, by calendar month. "
        "Students reached: different students seen that month."
    ]
    if res.through is not None:
        notes.append(f"Data through {res.through:%-d %B %Y}: the last month may be partial.")
    if d["suppressed"].any() if len(d) else False:
        notes.append(
            f"{SUPPRESSED} Suppressed to protect student privacy: the month describes fewer "
            f"than {k} students, or it is hidden as well so that such a figure cannot be "
            "worked out from the totals."
        )
    return Table(data, title="Monthly trends by coordinator", notes=tuple(notes))


def report_tables(res: FidelityResult, k: int) -> dict[str, Table]:
    """Every table of the report, by level, in the report's order (privacy-safe).

    Parameters
    ----------
    res : FidelityResult
        The result to publish.
    k : int
        Smallest number of students a published cell may describe.

    Returns
    -------
    dict of str to Table
    """
    if not len(program_rows(res)):
        out: dict[str, Table] = {}
    else:
        out = {
            "benchmarks": _benchmarks_table(res, k),
            "school": res.table("school", min_cell=k),
            "coordinator": _coordinator_table(res, k),
            "monthly": monthly_table(res, k),
            "dosage": res.table("dosage", min_cell=k),
            "service_mix": res.table("service_mix", min_cell=k),
            "school_service_mix": res.table("school_service_mix", min_cell=k),
        }
    if res.has_control:
        out["arm"] = res.table("arm", min_cell=k)
        if res._outcomes is not None and len(program_rows(res)):
            out["dose_response"] = res.table("dose_response", min_cell=k)
        return out
    return {level: _program_wording(t) for level, t in out.items()}


# A program roster has no research groups and no study sample: the notes the tables share
# with a trial's report are worded for program students.
_PROGRAM_WORDING = (
    ("Program-group students", "Program students"),
    ("program-group students", "program students"),
    ("(it includes students outside the study)", "(it may include students not on the roster)"),
)


def _program_wording(t: Table) -> Table:
    notes = []
    for n in t.notes:
        for old, new in _PROGRAM_WORDING:
            n = n.replace(old, new)
        notes.append(n)
    return Table(t.data, title=t.title, notes=tuple(notes), formats=t.formats, index=t.index)


def table_sheets(tables: dict[str, Table]) -> list[tuple[str, list[str], pd.DataFrame, list[str]]]:
    """The report's tables as workbook sheets: (name, title lines, table, notes).

    Parameters
    ----------
    tables : dict of str to Table
        As returned by :func:`report_tables`.

    Returns
    -------
    list of tuple
        For :func:`cis_eval.io.write_workbook`.
    """
    return [(t.title or level, [t.title], t.data, list(t.notes)) for level, t in tables.items()]


def add_to_report(res: FidelityResult, rep: Report, k: int, *, full: bool = True) -> Report:
    """Append the fidelity sections of ``res`` to ``rep``.

    Parameters
    ----------
    res : FidelityResult
        The result to report.
    rep : Report
        The report to extend.
    k : int
        Smallest number of students a published figure may describe.
    full : bool, default True
        Include the coordinator, monthly, school service mix, dose-response and
        definitions sections; False gives the short version.

    Returns
    -------
    Report
        The same report.
    """
    lines = summary(res, k)
    tables = report_tables(res, k)
    rep.heading("Implementation fidelity: summary" if not full else "Summary")
    rep.text(lines[0], lead=True)
    for line in lines[1:]:
        rep.text(line)
    rep.note(
        "Student privacy: no student identifier appears in this report. Any figure "
        f"describing fewer than {k} students is replaced by {SUPPRESSED}, and so are "
        "enough other figures that it cannot be worked out from the totals."
    )
    if "benchmarks" not in tables:
        if "arm" in tables:
            rep.heading("Services received by research group")
            rep.table(tables["arm"])
        return rep
    rep.table(tables["benchmarks"])
    rep.heading("Dosage by school")
    rep.text(
        f"For each school's {_who(res)}: how many were reached, and how much case "
        "management those reached received. The chart places each school against "
        "the study's benchmark (solid line) and your target (dashed line): green meets "
        f"it, amber is within {res.targets.tolerance:.0%}, red falls short."
    )
    _split(rep, tables["school"], 8, "Reach and dosage by school", "Timing of service by school")
    n_schools = len(pooled(res, k)._schools)  # as the figure counts them
    rep.figure(
        figure_benchmarks(res, k),
        "Schools against the benchmarks (mean per student reached)."
        if n_schools <= CHART_ROWS
        else f"How many of the {n_schools:,} schools have each mean per student reached, "
        "against the benchmarks (every school is in the table above).",
    )
    if full:
        rep.heading("Coordinators")
        rep.text(
            f"Caseloads, time on Level 2 and the dosage each coordinator logged for "
            f"{_who(res)}. Caseloads are also shown per full-time equivalent (FTE): a "
            "coordinator working half-time at a school is compared as if full-time."
        )
        guide = res.targets.guide[0] if res.targets.guide else None
        if guide is not None:
            rep.text(
                f"The practice guide ({guide.source}) suggests {guide.describe()} students "
                "per full-time coordinator. It is a planning range, not a score: a "
                "caseload under it leaves more time for each student (or room to serve "
                "more), and one over it leaves less time for each student than the guide "
                "assumes."
            )
        coord = tables["coordinator"]
        cols = list(coord.data.columns)
        first = ["Coordinator", "School", "FTE", "Reported caseload", "Caseload per FTE"]
        first += [c for c in ("Time on Level 2", "Caseload guide") if c in cols]
        second = ["Coordinator", "School"] + [c for c in cols if c not in first]
        rep.table(Table(coord.data[first], title="Caseloads by coordinator", notes=coord.notes))
        rep.table(Table(coord.data[second], title="Dosage by coordinator", notes=coord.notes))
        rep.heading("Monthly trends by coordinator")
        rep.text(
            "Level 2 contacts, hours and students reached per month: a falling line "
            "mid-year is a prompt to ask why, not a verdict."
        )
        rep.table(tables["monthly"])
        n_lines = res._monthly["coordinator_id"].nunique()
        rep.figure(
            figure(lambda ax: plot_monthly(res, ax, k), (8.0, 2.8)),
            "Level 2 contacts per month by coordinator"
            + (
                ""
                if n_lines <= CHART_LINES
                else f" (the {CHART_LINES} of {n_lines:,} coordinators with most contacts; "
                "every coordinator is in the table above)"
            )
            + ". Gaps are months suppressed for privacy.",
        )
    rep.heading("How much service students received")
    rep.table(tables["dosage"])
    rep.figure(
        figure_dosage(res, k),
        f"Distribution among {_who(res)} reached; bars with fewer than {k} students "
        "are merged with a neighbour.",
    )
    rep.heading("Contacts over the school year")
    rep.figure(
        figure(lambda ax: plot_weekly(res, ax, k), (8.0, 2.8)),
        f"Contacts with {_who(res)} per week (Monday to Sunday). Gaps are weeks "
        "suppressed for privacy.",
    )
    rep.heading("Service mix")
    rep.table(tables["service_mix"])
    if full:
        rep.table(tables["school_service_mix"])
    if "arm" in tables:
        rep.heading("Program and control groups: the service contrast")
        rep.table(tables["arm"])
    if full and "dose_response" in tables:
        rep.heading("Outcomes by dosage (exploratory, non-experimental)")
        rep.note(
            "This section is not an impact estimate. Students who received more services "
            "were not chosen at random to receive them, so their outcomes differ for "
            "other reasons too. Use it to raise questions, not to answer them."
        )
        rep.table(tables["dose_response"])
        rep.figure(
            figure(lambda ax: plot_dose_response(res, ax, "chronic_absence", k), (6.4, 3.0)),
            "Chronic absence by Level 2 dosage in the program group; dashed line: the "
            "control group.",
        )
    if full:
        rep.heading("What the measures mean")
        for name, meas in MEASURES.items():
            rep.text(f"{meas.label}: {meaning(name, res.has_control)}")
        if res.elapsed_share < 1:
            names = ", ".join(MEASURES[m].short for m in PRORATED)
            rep.text(
                f"Pro-rated targets: the log covers {res.elapsed_share:.0%} of the school "
                f"year, so targets for {names} are that share of their full-year values."
            )
        if res.has_control:
            rep.text(
                "Service contrast: the difference between the program and control groups "
                "in services received. Control-group students can receive Level 2 "
                "services (crossover); the larger the contrast, the more an impact "
                "estimate says about case management."
            )
        rep.text(
            f"Status: meets (at or beyond the benchmark or target), near (within "
            f"{res.targets.tolerance:.0%}), below (or above, for caseloads and days to "
            "first contact)."
        )
        if res.warnings:
            rep.heading("Data checks")
            rep.text("The log passed validation with these warnings:")
            for w in res.warnings:
                rep.text(w)
        rep.heading("Sources")
        for s in res.targets.sources:
            rep.text(s)
    return rep


def _split(rep: Report, table: Table, n: int, first: str, second: str) -> None:
    """Add a wide table as two narrower ones that share the first column."""
    cols = list(table.data.columns)
    head = cols[:n] + ([cols[-1]] if cols[-1] not in cols[:n] else [])
    rest = [cols[0]] + [c for c in cols[n:] if c not in head]
    rep.table(Table(table.data[head], title=first, notes=table.notes))
    notes = table.notes[:1]
    if (table.data[rest] == SUPPRESSED).to_numpy().any():
        notes += tuple(n for n in table.notes if n.startswith(SUPPRESSED))
    rep.table(Table(table.data[rest], title=second, notes=notes))


# ----------------------------------------------------------------------------- follow-up


def follow_up_frame(res: FidelityResult, weeks: int) -> pd.DataFrame:
    """Program students to follow up, per coordinator (identifiers: never published).

    Parameters
    ----------
    res : FidelityResult
        The result.
    weeks : int
        A reached student without a Level 2 contact in the last ``weeks`` weeks before
        the data-through date is listed.

    Returns
    -------
    pandas.DataFrame
        See :meth:`FidelityResult.follow_up`.
    """
    s = res._students
    through = res.through if res.through is not None else res.school_year[1]
    p = s[s["treatment"] == 1]
    exited = pd.to_datetime(p["exit_date"]) <= through
    p = p[~exited.to_numpy(dtype=bool, na_value=False)]
    t = res.targets.effective("contacts")
    target = t.low if t is not None and t.low is not None else None
    last = pd.to_datetime(p["last_contact"])
    days = (through - last).dt.days
    reached = (p["contacts"] > 0).to_numpy()
    reasons: list[str] = []
    for i in range(len(p)):
        why = []
        if not reached[i]:
            why.append("not yet reached")
        else:
            if target is not None and float(p["contacts"].iloc[i]) < target:
                why.append(f"below the contacts target ({_fmt(target)}, {t.describe()})")  # type: ignore[union-attr]
            if float(days.iloc[i]) > 7 * weeks:
                why.append(f"no contact in the last {weeks} weeks")
        reasons.append("; ".join(why))
    assigned = p.get("assigned_coordinator")
    who: Any = p["coordinator_id"]
    if assigned is not None:
        who = assigned.where(assigned.notna(), p["coordinator_id"])
    out = pd.DataFrame(
        {
            "coordinator_id": who.fillna("(no coordinator)").astype(str).to_numpy(),
            "school_id": p["school_id"].to_numpy(),
            "student_id": p["student_id"].to_numpy(),
            "reasons": reasons,
            "contacts": p["contacts"].astype(np.int64).to_numpy(),
            "hours": p["hours"].astype(float).round(1).to_numpy(),
            "last_contact": last.dt.strftime("%Y-%m-%d").to_numpy(),
            "days_since_last_contact": days.astype("Int64").to_numpy(),
        }
    )
    out = out[out["reasons"] != ""]
    return out.sort_values(
        ["coordinator_id", "school_id", "contacts", "student_id"], kind="stable", ignore_index=True
    )


def follow_up_sheets(
    res: FidelityResult, frame: pd.DataFrame, weeks: int
) -> list[tuple[str, list[str], pd.DataFrame, list[str]]]:
    """The follow-up workbook: one sheet per coordinator, each headed CONFIDENTIAL.

    Parameters
    ----------
    res : FidelityResult
        The result (for the data-through date and the target).
    frame : pandas.DataFrame
        As returned by :func:`follow_up_frame`.
    weeks : int
        The "no contact in the last N weeks" window, for the sheet's note.

    Returns
    -------
    list of tuple
        For :func:`cis_eval.io.write_workbook`.
    """
    through = res.through if res.through is not None else res.school_year[1]
    labels = {
        "student_id": "Student",
        "school_id": "School",
        "reasons": "Why follow up",
        "contacts": "Level 2 contacts so far",
        "hours": "Hours so far",
        "last_contact": "Last contact",
        "days_since_last_contact": "Days since last contact",
    }
    note = [
        f"Data through {through:%Y-%m-%d}. Listed: students still in the program who were "
        f"not yet reached, are below the contacts target, or had no Level 2 contact in the "
        f"last {weeks} weeks."
    ]
    sheets = []
    groups = list(frame.groupby("coordinator_id", sort=True)) or [("No students", frame)]
    for cid, d in groups:
        table = d.drop(columns=["coordinator_id"])[list(labels)].rename(columns=labels)
        sheets.append((str(cid), [CONFIDENTIAL, f"Follow-up list: {cid}"], table, note))
    return sheets
