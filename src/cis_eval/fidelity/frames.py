"""Fidelity's aggregate frames: per school, coordinator, research group, service mix, week.

The first group of functions summarises the per-student DuckDB table ``st`` built by
:func:`cis_eval.fidelity.log.aggregate_students`; the second derives the analysis frames
of a :class:`~cis_eval.fidelity.result.FidelityResult` (flags against targets, dosage,
benchmarks, dose-response). All numbers here are unsuppressed: for analysis, not for
publication (see :mod:`cis_eval.fidelity.tables`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from ..outcomes import outcome_arrays
from ..schema import MODES, OTHER_SERVICE_AREA, SERVICE_AREAS
from .log import Log, fetch, q
from .targets import DOSAGE, MEASURES, FidelityTargets, Target, student_column

if TYPE_CHECKING:
    import duckdb

    from .result import FidelityResult

_SVC: tuple[str, ...] = tuple(SERVICE_AREAS)  # the ten CIS areas and 'other'
_MODES: tuple[str, ...] = tuple(MODES)


def stats(col: str, where: str, prefix: str) -> str:
    """Mean and quartiles of a column over the rows meeting a condition (SQL)."""
    return (
        f"avg({col}) FILTER (WHERE {where}) AS {prefix}_mean, "
        f"quantile_cont({col}, 0.25) FILTER (WHERE {where}) AS {prefix}_q1, "
        f"quantile_cont({col}, 0.5) FILTER (WHERE {where}) AS {prefix}_median, "
        f"quantile_cont({col}, 0.75) FILTER (WHERE {where}) AS {prefix}_q3"
    )


_DOSE_SQL = (
    ", ".join(
        stats(student_column(m), "treatment = 1 AND contacts > 0", m)
        for m in ("contacts", "hours", "weeks", "active_weeks", "contacts_per_month")
    )
    + ", "
    + stats("days_to_first_contact", "treatment = 1 AND contacts > 0", "days_to_first_contact")
)


def school_frame(con: duckdb.DuckDBPyConnection, staff: pd.DataFrame) -> pd.DataFrame:
    """Per school: program and control students, reach, dosage and staffing."""
    schools = fetch(
        con,
        f"""
        SELECT school_id,
            count(*) FILTER (WHERE treatment = 1) AS program_students,
            count(*) FILTER (WHERE treatment = 1 AND contacts > 0) AS students_reached,
            count(*) FILTER (WHERE treatment = 0) AS control_students,
            count(*) FILTER (WHERE treatment = 0 AND contacts > 0) AS control_reached,
            {_DOSE_SQL},
            coalesce(sum(contacts) FILTER (WHERE treatment = 1), 0) AS total_contacts,
            coalesce(sum(hours) FILTER (WHERE treatment = 1), 0) AS total_hours
        FROM st GROUP BY school_id
        """,
    )
    k = staff.copy()
    k["fte_x_share"] = k["fte"].fillna(1.0) * k["level2_time_share"]
    k["fte_for_share"] = k["fte"].fillna(1.0).where(k["level2_time_share"].notna())
    by = k.dropna(subset=["school_id"]).groupby("school_id", sort=False)
    staffing = pd.DataFrame(
        {
            "coordinators": by.size(),
            "fte": by["fte"].sum(min_count=1),
            "reported_caseload": by["reported_caseload"].sum(min_count=1),
            "level2_time_share": by["fte_x_share"].sum(min_count=1)
            / by["fte_for_share"].sum(min_count=1),
        }
    )
    out = schools.merge(staffing, left_on="school_id", right_index=True, how="outer")
    for c in ("program_students", "students_reached", "control_students", "control_reached"):
        out[c] = out[c].fillna(0).astype(np.int64)
    for c in ("total_contacts", "total_hours"):
        out[c] = out[c].fillna(0.0).astype(float)
    out["coordinators"] = out["coordinators"].fillna(0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_reached"] = np.where(
            out["program_students"] > 0,
            out["students_reached"] / out["program_students"].replace(0, 1),
            np.nan,
        )
    out = out.sort_values("school_id", kind="stable", ignore_index=True)
    lead = [
        "school_id",
        "program_students",
        "students_reached",
        "share_reached",
        "control_students",
        "control_reached",
    ]
    return out[lead + [c for c in out.columns if c not in lead]]


def coordinator_frame(
    con: duckdb.DuckDBPyConnection, staff: pd.DataFrame, schools: pd.DataFrame
) -> pd.DataFrame:
    """Per coordinator and school: staffing, students served, caseload and dosage logged.

    A coordinator who serves several schools has one row per school (students are
    counted at the school they are enrolled in), so coordinator rows nest within
    schools; ``coordinator_fte`` and ``coordinator_caseload`` give the totals across
    the coordinator's schools, and ``caseload_per_fte`` the caseload per full-time
    equivalent at that school.
    """
    pairs = fetch(
        con,
        f"""
        WITH p AS (
            SELECT fp.coordinator_id, r.school_id, r.treatment, fp.contacts, fp.hours
            FROM fp JOIN roster r ON r.student_id = fp.student_id
        )
        SELECT coordinator_id, school_id,
            count(*) FILTER (WHERE treatment = 1) AS students_served,
            count(*) FILTER (WHERE treatment = 0) AS control_students_served,
            coalesce(sum(contacts) FILTER (WHERE treatment = 1), 0) AS total_contacts,
            coalesce(sum(hours) FILTER (WHERE treatment = 1), 0) AS total_hours,
            {stats("contacts", "treatment = 1", "contacts")},
            {stats("hours", "treatment = 1", "hours")}
        FROM p GROUP BY coordinator_id, school_id
        """,
    )
    k = staff.copy()
    # A staff row without a school is matched to the school where the coordinator
    # logged most contacts with program students.
    if k["school_id"].isna().any() and len(pairs):
        home = (
            pairs.sort_values(["students_served", "school_id"], ascending=[False, True])
            .drop_duplicates("coordinator_id")
            .set_index("coordinator_id")["school_id"]
        )
        k["school_id"] = k["school_id"].where(k["school_id"].notna(), k["coordinator_id"].map(home))
    out = k.merge(pairs, on=["coordinator_id", "school_id"], how="outer")
    for c in ("students_served", "control_students_served"):
        out[c] = out[c].fillna(0).astype(np.int64)
    for c in ("total_contacts", "total_hours"):
        out[c] = out[c].fillna(0.0).astype(float)
    n_prog = schools.set_index("school_id")["program_students"]
    denom = out["school_id"].map(n_prog).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_reached"] = np.where(denom > 0, out["students_served"] / denom, np.nan)
    # A caseload comes from the log only for a coordinator who reported none at any
    # school: a reported caseload already counts the students seen elsewhere.
    reported = out["reported_caseload"].notna()
    any_reported = reported.groupby(out["coordinator_id"]).transform("any").astype(bool)
    from_log = ~any_reported
    out["caseload"] = (
        out["reported_caseload"].where(reported, out["students_served"].where(from_log))
    ).astype(float)
    out["caseload_source"] = np.where(reported, "reported", np.where(from_log, "log", ""))
    fte = out["fte"].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["caseload_per_fte"] = np.where(fte > 0, out["caseload"] / fte, np.nan)
    by = out.groupby("coordinator_id", sort=False)
    out["schools_served"] = by["school_id"].transform("count").astype(np.int64)
    # sum with min_count=1, vectorised: a coordinator with no recorded FTE stays missing
    fte_known = by["fte"].transform("count") > 0
    out["coordinator_fte"] = by["fte"].transform("sum").where(fte_known)
    out["coordinator_caseload"] = by["caseload"].transform("sum")
    out = out.sort_values(["school_id", "coordinator_id"], kind="stable", ignore_index=True)
    lead = [
        "coordinator_id",
        "school_id",
        "fte",
        "reported_caseload",
        "caseload",
        "caseload_source",
        "caseload_per_fte",
        "schools_served",
        "coordinator_fte",
        "coordinator_caseload",
        "level2_time_share",
        "students_served",
        "share_reached",
        "control_students_served",
    ]
    return out[lead + [c for c in out.columns if c not in lead]]


def monthly_frame(con: duckdb.DuckDBPyConnection, log: Log) -> pd.DataFrame:
    """Per coordinator and month: Level 2 contacts, hours and program students reached."""
    text, join = log.coordinator("g.ck")
    frame = fetch(
        con,
        f"SELECT {text} AS coordinator_id, CAST(g.month AS DATE) AS month, g.contacts, "
        f"g.hours, g.students FROM fcm g {join} ORDER BY 1, 2",
    )
    frame["month"] = pd.to_datetime(frame["month"]).astype("datetime64[s]")
    frame["contacts"] = frame["contacts"].astype(np.int64)
    frame["students"] = frame["students"].astype(np.int64)
    frame["hours"] = frame["hours"].astype(float)
    return frame


def arm_frame(con: duckdb.DuckDBPyConnection, thresholds: Sequence[int]) -> pd.DataFrame:
    """Per research group: receipt of services at each threshold and mean dosage."""
    at = ", ".join(
        f"avg(CASE WHEN contacts >= {k} THEN 1.0 ELSE 0.0 END) AS share_at_least_{k}"
        for k in thresholds
    )
    arms = fetch(
        con,
        f"""
        SELECT treatment,
            count(*) AS students,
            count(*) FILTER (WHERE contacts > 0) AS received,
            avg(CASE WHEN contacts > 0 THEN 1.0 ELSE 0.0 END) AS share_received,
            {at},
            avg(contacts) AS contacts_per_student,
            avg(hours) AS hours_per_student,
            avg(contacts) FILTER (WHERE contacts > 0) AS contacts_per_served,
            avg(hours) FILTER (WHERE contacts > 0) AS hours_per_served,
            quantile_cont(contacts, 0.5) FILTER (WHERE contacts > 0) AS contacts_median_served,
            count(*) FILTER (WHERE tier1_contacts > 0) AS tier1_received,
            avg(CASE WHEN tier1_contacts > 0 THEN 1.0 ELSE 0.0 END) AS share_tier1
        FROM st GROUP BY treatment ORDER BY treatment DESC
        """,
    )
    arms.insert(0, "arm", arms["treatment"].map({1: "program", 0: "control"}))
    return arms.drop(columns=["treatment"])


def _bits(mask: np.ndarray, n: int) -> np.ndarray:
    """How many masks have each of the first ``n`` bits set."""
    m = mask.astype(np.uint64)
    return np.array([int(((m >> np.uint64(b)) & np.uint64(1)).sum()) for b in range(n)])


def mix_frames(
    con: duckdb.DuckDBPyConnection, cube: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Service mix by group, tier and area or mode; and per school, by area."""
    svc_sums = ", ".join(
        f"sum({q('contacts_' + s)}) AS {q('c_' + s)}, "
        f"count(*) FILTER (WHERE {q('contacts_' + s)} > 0) AS {q('n_' + s)}"
        for s in (*_SVC, *_MODES)
    )
    per_arm = fetch(
        con,
        f"SELECT treatment, {svc_sums}, count(*) FILTER (WHERE contacts > 0) AS n_any "
        "FROM st GROUP BY treatment",
    ).set_index("treatment")
    masks = fetch(
        con, "SELECT treatment, tier1_svc_mask, tier1_mode_mask FROM st WHERE tier1_contacts > 0"
    )
    c = cube.dropna(subset=["arm", "tier"]).copy()
    c["arm"] = c["arm"].astype(np.int64)
    rows = []
    for arm_code, arm in ((1, "program"), (0, "control")):
        sub = c[c["arm"] == arm_code]
        m = masks[masks["treatment"] == arm_code]
        for dim, codes, labels, col in (
            ("service_area", _SVC, SERVICE_AREAS, "svc"),
            ("mode", _MODES, MODES, "mode"),
        ):
            t1_students = _bits(
                m["tier1_svc_mask" if dim == "service_area" else "tier1_mode_mask"].to_numpy(),
                len(codes),
            )
            for tier in (2, 1):
                st = sub[sub["tier"] == tier]
                tot_c, tot_m = float(st["n"].sum()), float(st["minutes"].sum())
                g = st.groupby(col)[["n", "minutes"]].sum()
                for i, code in enumerate(codes):
                    n = float(g["n"].get(i, 0.0))
                    mins = float(g["minutes"].get(i, 0.0))
                    if tier == 2 and arm_code in per_arm.index:
                        students = int(rec(per_arm, arm_code)[f"n_{code}"])
                    elif tier == 2:
                        students = 0
                    else:
                        students = int(t1_students[i])
                    rows.append(
                        {
                            "arm": arm,
                            "tier": tier,
                            "dimension": dim,
                            "code": code,
                            "label": labels[code],
                            "contacts": int(n),
                            "hours": mins / 60,
                            "students": students,
                            "share_of_contacts": n / tot_c if tot_c else np.nan,
                            "share_of_hours": mins / tot_m if tot_m else np.nan,
                        }
                    )
    mix = pd.DataFrame(rows)
    sums = ", ".join(
        f"sum({q('contacts_' + s)}) AS {q(s)}, "
        f"count(*) FILTER (WHERE {q('contacts_' + s)} > 0) AS {q('n_' + s)}"
        for s in _SVC
    )
    wide = fetch(con, f"SELECT school_id, {sums} FROM st WHERE treatment = 1 GROUP BY school_id")
    long = []
    for r in records(wide):
        total = sum(r[s] or 0 for s in _SVC)
        for s in _SVC:
            long.append(
                {
                    "school_id": r["school_id"],
                    "code": s,
                    "label": SERVICE_AREAS[s],
                    "contacts": int(r[s] or 0),
                    "students": int(r["n_" + s] or 0),
                    "share_of_contacts": (r[s] or 0) / total if total else np.nan,
                }
            )
    school_mix = pd.DataFrame(
        long,
        columns=["school_id", "code", "label", "contacts", "students", "share_of_contacts"],
    )
    school_mix = school_mix.sort_values(
        ["school_id", "code"], key=lambda s: s.map(_SVC.index) if s.name == "code" else s
    ).reset_index(drop=True)
    # The "other" area is listed only when the log uses it: a trial's log never does.
    other = OTHER_SERVICE_AREA
    if not mix.loc[mix["code"] == other, "contacts"].sum():
        mix = mix[mix["code"] != other].reset_index(drop=True)
        school_mix = school_mix[school_mix["code"] != other].reset_index(drop=True)
    return mix, school_mix


def weekly_frame(
    con: duckdb.DuckDBPyConnection, cube: pd.DataFrame, year: tuple[pd.Timestamp, pd.Timestamp]
) -> pd.DataFrame:
    """Contacts, hours and students per week of the school year, by group and tier."""
    start = year[0]
    week0 = start - pd.Timedelta(days=start.weekday())
    n_weeks = (year[1] - week0).days // 7 + 1
    weeks = [week0 + pd.Timedelta(weeks=w) for w in range(n_weeks)]
    masks = fetch(con, "SELECT treatment, weeks_mask, tier1_weeks_mask FROM st")
    c = cube.dropna(subset=["arm", "tier", "date"]).copy()
    c["week"] = ((pd.to_datetime(c["date"]) - week0).dt.days // 7).astype(np.int64)
    rows = []
    for arm_code, arm in ((1, "program"), (0, "control")):
        m = masks[masks["treatment"] == arm_code]
        sub = c[c["arm"].astype(np.int64) == arm_code]
        for tier, col in ((2, "weeks_mask"), (1, "tier1_weeks_mask")):
            students = _bits(m[col].to_numpy(), n_weeks)
            g = sub[sub["tier"] == tier].groupby("week")[["n", "minutes"]].sum()
            for w in range(n_weeks):
                rows.append(
                    {
                        "week_start": weeks[w],
                        "arm": arm,
                        "tier": tier,
                        "contacts": int(g["n"].get(w, 0)),
                        "hours": float(g["minutes"].get(w, 0.0)) / 60,
                        "students": int(students[w]),
                    }
                )
    return pd.DataFrame(rows)


DOSE_OUTCOMES = (
    "chronic_absence",
    "attendance_rate",
    "core_course_failure",
    "core_gpa",
    "suspensions",
)
_OUTCOME_FIELDS = {
    "chronic_absence": ("days_enrolled", "days_present"),
    "attendance_rate": ("days_enrolled", "days_present"),
    "core_course_failure": ("core_courses_taken", "core_courses_failed"),
    "core_gpa": ("core_gpa",),
    "suspensions": ("suspensions_iss", "suspensions_oss"),
}


def outcome_frame(students: pd.DataFrame, chronic_threshold: float) -> pd.DataFrame | None:
    """The outcomes the roster has the raw fields for (for the dose-response view)."""
    names = [o for o in DOSE_OUTCOMES if all(c in students.columns for c in _OUTCOME_FIELDS[o])]
    if not names:
        return None
    y = outcome_arrays(students, names, chronic_threshold=chronic_threshold)
    if all(np.isnan(v).all() for v in y.values()):
        return None
    return pd.DataFrame(y, index=students.index)


def service_areas(res: FidelityResult) -> tuple[str, ...]:
    """The service areas a result reports: the ten CIS areas, and "other" when logged."""
    mix = res._service_mix

    def areas() -> tuple[str, ...]:
        used = set(mix.loc[mix["dimension"] == "service_area", "code"])
        return tuple(a for a in _SVC if a in used)

    # asked once per table row: worked out once
    return cast("tuple[str, ...]", res._remember(("service_areas",), (mix,), areas))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dictionaries keyed by column name (plain Python access, typed)."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def rec(frame: pd.DataFrame, key: Any) -> dict[str, Any]:
    """One row (by index label) as a dictionary keyed by column name."""
    return {str(k): v for k, v in frame.loc[key].items()}


def meets(values: np.ndarray, t: Target) -> np.ndarray:
    """Whether each value meets a target (within its minimum and maximum)."""
    ok = np.ones(values.size, bool)
    if t.low is not None:
        ok &= values >= t.low
    if t.high is not None:
        ok &= values <= t.high
    return ok


def band_label(lo: float, hi: float) -> str:
    """Reader label of a band of Level 2 contacts, ``[lo, hi)``."""
    if not np.isfinite(lo) or lo <= 0:
        return "No Level 2 contact"
    a = math.ceil(lo)
    if not np.isfinite(hi):
        return f"{a} or more contacts"
    b = math.ceil(hi) - 1
    return f"{a} contact{'s' if a != 1 else ''}" if a == b else f"{a}-{b} contacts"


# ----------------------------------------------------------------------------- result frames


def measure_values(frame: pd.DataFrame, measure: str) -> pd.Series:
    """The values of a measure in a school or coordinator frame (the compared statistic)."""
    m = MEASURES[measure]
    if measure == "caseload" and "caseload_per_fte" in frame.columns:
        # Caseloads are compared per full-time equivalent: a half-time coordinator
        # with 40 students carries the load of a full-time one with 80.
        col = "caseload_per_fte"
    elif measure in ("share_reached", "caseload", "level2_time_share"):
        col = measure
    else:
        col = f"{measure}_{m.statistic}"
    if col not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    return frame[col].astype(float)


def with_flags(
    targets: FidelityTargets, frame: pd.DataFrame, measures: Sequence[str]
) -> pd.DataFrame:
    """A copy of ``frame`` with a status column per measure and ``short_of_target``."""
    out = frame.copy()
    for measure in measures:
        t = targets.effective(measure)
        if t is None:
            continue
        vals = measure_values(out, measure)
        out[f"status_{measure}"] = [t.status(v, targets.tolerance) for v in vals]
    if "caseload" in measures and targets.guide:
        g = targets.guide[0]
        out["status_caseload_guide"] = [g.status(v, 0.0) for v in measure_values(out, "caseload")]
    # by column, not row by row: a network has thousands of schools
    status = {m: out[f"status_{m}"].to_numpy() for m in measures if f"status_{m}" in out}
    out["short_of_target"] = [
        ", ".join(MEASURES[m].short for m, s in status.items() if s[i] in ("below", "above"))
        for i in range(len(out))
    ]
    return out


def short_of(row: pd.Series, measures: Sequence[str], hidden: Sequence[str]) -> list[str]:
    """Short names of the measures a row falls short of, leaving out ``hidden`` ones."""
    return [
        MEASURES[m].short
        for m in measures
        if m not in hidden and row.get(f"status_{m}", "") in ("below", "above")
    ]


def program_rows(res: FidelityResult) -> pd.DataFrame:
    """Program-group students."""
    return res._students[res._students["treatment"] == 1]


def reached_rows(res: FidelityResult) -> pd.DataFrame:
    """Program-group students with at least one Level 2 contact."""
    s = res._students
    return s[(s["treatment"] == 1) & (s["contacts"] > 0)]


def dosage_frame(res: FidelityResult) -> pd.DataFrame:
    """Distribution of each dosage measure among program students reached."""
    served = reached_rows(res)
    rows = []
    for measure in (*DOSAGE, "days_to_first_contact"):
        v = served[student_column(measure)].astype(float).dropna().to_numpy()
        t = res.targets.effective(measure)
        rows.append(
            {
                "measure": measure,
                "label": MEASURES[measure].label,
                "students": int(v.size),
                "mean": float(v.mean()) if v.size else np.nan,
                "std": float(v.std(ddof=1)) if v.size > 1 else np.nan,
                "q1": float(np.quantile(v, 0.25)) if v.size else np.nan,
                "median": float(np.median(v)) if v.size else np.nan,
                "q3": float(np.quantile(v, 0.75)) if v.size else np.nan,
                "target": t.describe() if t else "",
                "share_meeting_target": float(meets(v, t).mean())
                if t is not None and v.size
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def network_value(res: FidelityResult, measure: str) -> float:
    """The network value of a measure: the statistic its targets are compared with."""
    if measure == "share_reached":
        p = program_rows(res)
        return float((p["contacts"] > 0).mean()) if len(p) else np.nan
    if measure == "caseload":
        return network_caseload(res)
    if measure == "level2_time_share":
        col = res._coordinators[measure].astype(float).dropna()
        return float(col.mean()) if len(col) else np.nan
    v = reached_rows(res)[student_column(measure)].astype(float).dropna()
    if not len(v):
        return np.nan
    return float(v.median()) if MEASURES[measure].statistic == "median" else float(v.mean())


def network_caseload(res: FidelityResult) -> float:
    """Mean caseload per full-time equivalent across coordinators (FTE 1 when unknown)."""
    c = res._coordinators
    if not len(c):
        return np.nan
    by = c.groupby("coordinator_id", sort=False)
    load = by["caseload"].sum(min_count=1)
    fte = by["fte"].sum(min_count=1).fillna(1.0)
    per = (load / fte.where(fte > 0)).dropna()
    return float(per.mean()) if len(per) else np.nan


def benchmarks_frame(res: FidelityResult) -> pd.DataFrame:
    """Network figures against the study benchmarks, the user's targets and the guide."""
    rows = []
    tol = res.targets.tolerance
    for measure, m in MEASURES.items():
        value = network_value(res, measure)
        study = res.targets.get(measure, "study")
        user = res.targets.get(measure, "user")
        guide = res.targets.get(measure, "guide")
        rows.append(
            {
                "measure": measure,
                "label": m.label,
                "statistic": m.statistic,
                "value": value,
                "study_benchmark": study.describe() if study else "",
                "status_study": study.status(value, tol) if study else "",
                "target": user.describe() if user else "",
                "status_target": user.status(value, tol) if user else "",
                "guide": guide.describe() if guide else "",
                "status_guide": guide.status(value, 0.0) if guide else "",
            }
        )
    return pd.DataFrame(rows)


def dose_frame(res: FidelityResult, cuts: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Outcome means by Level 2 dosage band (program) and for the control group."""
    cols = ["group", "arm", "low", "high", "students"]
    if res._outcomes is None:
        return pd.DataFrame(columns=cols)
    s = res._students
    y = res._outcomes
    groups: list[tuple[str, str, float, float, np.ndarray]] = []
    groups.append(("Control group", "control", np.nan, np.nan, (s["treatment"] == 0).to_numpy()))
    bounds = [-np.inf, *cuts["program"], np.inf]
    contacts = s["contacts"].to_numpy(float)
    prog = (s["treatment"] == 1).to_numpy()
    for lo, hi in itertools.pairwise(bounds):
        band = prog & (contacts >= lo) & (contacts < hi)
        groups.append((band_label(lo, hi), "program", lo, hi, band))
    rows = []
    for label, arm, lo, hi, mask in groups:
        row: dict[str, Any] = {
            "group": label,
            "arm": arm,
            "low": lo,
            "high": hi,
            "students": int(mask.sum()),
        }
        for o in y.columns:
            v = y[o].to_numpy(float)[mask]
            ok = ~np.isnan(v)
            row[f"n_{o}"] = int(ok.sum())
            row[o] = float(v[ok].mean()) if ok.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
