"""The data contract: three tables, their columns, and the six analysis outcomes.

This module is the data dictionary as code. Validation, the simulator, the shipped
``data/synthetic/data_dictionary.csv`` and the book all read it, so they cannot disagree.

Tables
------
students
    One row per randomized student: identifiers, the school (the randomization block),
    baseline covariates, the assignment, consent and the raw outcome fields.
contacts
    The coordinators' service log, one row per contact (a monitoring log, not totals).
coordinators
    One row per site coordinator and school served, with the FTE share there and optional
    caseload and time-use fields.
roster (fidelity only)
    An affiliate's program roster: a student identifier and a school, plus whatever
    optional columns the affiliate has. The trial's students table is a superset of it.

Sources: the table layout follows the cis_eval design notes; outcome definitions follow
Corrin et al. (2015) and Parise et al. (2017) as summarised in the package documentation;
the ten service areas are those of Communities In Schools' Level 2 model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

import pandas as pd

__all__ = [
    "BASELINE_COVARIATES",
    "CHRONIC_THRESHOLDS",
    "COLUMNS",
    "CONTACTS",
    "COORDINATORS",
    "DOMAINS",
    "FIDELITY_TABLES",
    "KEYS",
    "MODES",
    "OTHER_SERVICE_AREA",
    "OUTCOMES",
    "OUTCOME_NAMES",
    "ROSTER",
    "SERVICE_AREAS",
    "SERVICE_TYPES",
    "STUDENTS",
    "TABLES",
    "Column",
    "Outcome",
    "data_dictionary",
    "normalise_category",
    "outcome",
    "render_dataset_readme",
]

Kind = Literal["id", "string", "category", "binary", "integer", "float", "date"]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the data contract.

    Attributes
    ----------
    name : str
        Column name as it must appear in the file.
    kind : {"id", "string", "category", "binary", "integer", "float", "date"}
        Logical type. ``id`` columns are identifiers: never printed in messages or reports.
    label : str
        Short human label used in tables.
    description : str
        What the column holds, with its unit.
    required : bool
        Whether the column must be present.
    missing_ok : bool
        Whether empty cells are allowed (e.g. outcomes, since attrition happens).
    minimum, maximum : float or None
        Inclusive allowed range for numeric columns.
    categories : tuple of str
        Allowed values of a ``category`` column.
    role : str
        ``id``, ``block``, ``design``, ``baseline``, ``assignment``, ``raw_outcome``,
        ``service`` or ``staff``.
    """

    name: str
    kind: Kind
    label: str
    description: str
    required: bool = True
    missing_ok: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    role: str = "design"


SERVICE_TYPES: dict[str, str] = {
    "academics": "Academic assistance",
    "behavior": "Behaviour interventions",
    "social_life_skills": "Social and life skills",
    "basic_needs": "Basic needs",
    "college_career": "College and career preparation",
    "enrichment_motivation": "Enrichment and motivation",
    "family_engagement": "Family outreach and engagement",
    "health_wellness": "Health and physical wellness",
    "community_service": "Community service",
    "mental_health": "Mental health",
}
"""The ten CIS service areas: code -> label."""

OTHER_SERVICE_AREA = "other"
"""Code for services outside the ten areas (e.g. attendance check-ins) in affiliate exports."""

SERVICE_AREAS: dict[str, str] = {
    **SERVICE_TYPES,
    OTHER_SERVICE_AREA: "Other (outside the ten CIS areas)",
}
"""The ten CIS service areas plus an explicit "other" area, onto which export wordings map."""

MODES: dict[str, str] = {
    "individual": "Individual",
    "group": "Group",
    "family": "Family",
}
"""Contact modes: code -> label."""

CHRONIC_THRESHOLDS: dict[str, float] = {
    "federal (missed at least 10% of enrolled days)": 0.10,
    "MDRC early definition (missed at least 20%)": 0.20,
}
"""Documented chronic-absence thresholds; any share in (0, 1) may be used."""

STUDENTS: tuple[Column, ...] = (
    Column(
        "student_id", "id", "Student ID", "Unique student identifier (never reported).", role="id"
    ),
    Column(
        "school_id", "id", "School", "School identifier; the randomization block.", role="block"
    ),
    Column(
        "school_level",
        "category",
        "School level",
        "Middle (grades 6-8) or high (9-12).",
        categories=("middle", "high"),
        role="design",
    ),
    Column(
        "grade",
        "integer",
        "Grade",
        "Grade at random assignment.",
        minimum=6,
        maximum=12,
        role="design",
    ),
    Column(
        "state",
        "string",
        "State",
        "State of the school (design label).",
        required=False,
        missing_ok=True,
        role="design",
    ),
    Column(
        "affiliate",
        "string",
        "CIS affiliate",
        "Local CIS affiliate serving the school.",
        required=False,
        missing_ok=True,
        role="design",
    ),
    Column(
        "prior_attendance_rate",
        "float",
        "Prior attendance rate",
        "Days present / days enrolled in the year before random assignment (proportion).",
        missing_ok=True,
        minimum=0,
        maximum=1,
        role="baseline",
    ),
    Column(
        "prior_chronic_absence",
        "binary",
        "Prior chronic absence",
        "1 if chronically absent in the prior year.",
        missing_ok=True,
        role="baseline",
    ),
    Column(
        "prior_core_gpa",
        "float",
        "Prior core GPA",
        "Average core course mark in the prior year, 0-4 scale.",
        missing_ok=True,
        minimum=0,
        maximum=4,
        role="baseline",
    ),
    Column(
        "prior_core_failures",
        "integer",
        "Prior core failures",
        "Number of core courses failed in the prior year.",
        missing_ok=True,
        minimum=0,
        maximum=20,
        role="baseline",
    ),
    Column(
        "prior_suspensions",
        "integer",
        "Prior suspensions",
        "Number of suspensions (in- and out-of-school) in the prior year.",
        missing_ok=True,
        minimum=0,
        maximum=100,
        role="baseline",
    ),
    Column("female", "binary", "Female", "1 if female.", missing_ok=True, role="baseline"),
    Column(
        "frpl",
        "binary",
        "Free/reduced-price lunch",
        "1 if eligible for free or reduced-price lunch.",
        missing_ok=True,
        role="baseline",
    ),
    Column(
        "ell",
        "binary",
        "English learner",
        "1 if an English language learner.",
        missing_ok=True,
        role="baseline",
    ),
    Column(
        "special_education",
        "binary",
        "Special education",
        "1 if receiving special education services.",
        missing_ok=True,
        role="baseline",
    ),
    Column(
        "overage",
        "binary",
        "Over-age for grade",
        "1 if older than expected for grade.",
        missing_ok=True,
        role="baseline",
    ),
    Column(
        "treatment",
        "binary",
        "Assigned to program",
        "1 = assigned to case management (program group), 0 = control.",
        role="assignment",
    ),
    Column(
        "consent",
        "binary",
        "Parental consent",
        "1 if a parent consented to case management.",
        required=False,
        missing_ok=True,
        role="assignment",
    ),
    Column(
        "assignment_date",
        "date",
        "Random assignment date",
        "Date of random assignment (ISO 8601).",
        required=False,
        missing_ok=True,
        role="assignment",
    ),
    Column(
        "service_start",
        "date",
        "Start of services",
        "Date the student started receiving program services.",
        required=False,
        missing_ok=True,
        role="program",
    ),
    Column(
        "exit_date",
        "date",
        "Exit date",
        "Date the student left the program (empty while still served).",
        required=False,
        missing_ok=True,
        role="program",
    ),
    Column(
        "coordinator_id",
        "id",
        "Assigned coordinator",
        "Site coordinator the student is assigned to.",
        required=False,
        missing_ok=True,
        role="program",
    ),
    Column(
        "days_enrolled",
        "integer",
        "Days enrolled",
        "Days enrolled in the follow-up school year.",
        missing_ok=True,
        minimum=1,
        maximum=250,
        role="raw_outcome",
    ),
    Column(
        "days_present",
        "integer",
        "Days present",
        "Days present in the follow-up year (at most days enrolled).",
        missing_ok=True,
        minimum=0,
        maximum=250,
        role="raw_outcome",
    ),
    Column(
        "core_courses_taken",
        "integer",
        "Core courses taken",
        "Core course enrolments (ELA, maths, science, social studies; semester courses).",
        missing_ok=True,
        minimum=0,
        maximum=20,
        role="raw_outcome",
    ),
    Column(
        "core_courses_failed",
        "integer",
        "Core courses failed",
        "Core courses failed in the follow-up year (at most courses taken).",
        missing_ok=True,
        minimum=0,
        maximum=20,
        role="raw_outcome",
    ),
    Column(
        "core_credits_earned",
        "float",
        "Core credits earned",
        "Core credits earned in the follow-up year (high school only; empty for middle school).",
        missing_ok=True,
        minimum=0,
        maximum=12,
        role="raw_outcome",
    ),
    Column(
        "suspensions_iss",
        "integer",
        "In-school suspensions",
        "Number of in-school suspensions in the follow-up year.",
        missing_ok=True,
        minimum=0,
        maximum=100,
        role="raw_outcome",
    ),
    Column(
        "suspensions_oss",
        "integer",
        "Out-of-school suspensions",
        "Number of out-of-school suspensions in the follow-up year.",
        missing_ok=True,
        minimum=0,
        maximum=100,
        role="raw_outcome",
    ),
    Column(
        "core_gpa",
        "float",
        "Core GPA",
        "Average core course mark in the follow-up year, 0-4 scale.",
        missing_ok=True,
        minimum=0,
        maximum=4,
        role="raw_outcome",
    ),
)

CONTACTS: tuple[Column, ...] = (
    Column("contact_id", "id", "Contact ID", "Unique identifier of the logged contact.", role="id"),
    Column("student_id", "id", "Student ID", "Student served (must be in the roster).", role="id"),
    Column(
        "coordinator_id", "id", "Coordinator", "Site coordinator who logged the contact.", role="id"
    ),
    Column("date", "date", "Date", "Date of the contact (ISO 8601).", role="service"),
    Column(
        "minutes",
        "integer",
        "Minutes",
        "Length of the contact in minutes.",
        minimum=1,
        maximum=480,
        role="service",
    ),
    Column(
        "service_type",
        "category",
        "Service area",
        "One of the ten CIS service areas, or other (e.g. attendance check-ins).",
        categories=tuple(SERVICE_AREAS),
        role="service",
    ),
    Column(
        "tier",
        "integer",
        "Tier",
        "1 = school-wide (Level 1) service, 2 = targeted, case-managed (Level 2).",
        minimum=1,
        maximum=2,
        role="service",
    ),
    Column(
        "mode",
        "category",
        "Mode",
        "Individual, group or family contact.",
        categories=tuple(MODES),
        role="service",
    ),
)

COORDINATORS: tuple[Column, ...] = (
    Column("coordinator_id", "id", "Coordinator", "Site coordinator identifier.", role="id"),
    Column(
        "school_id",
        "id",
        "School",
        "School the coordinator serves; a coordinator serving several schools has one row "
        "per school.",
        role="block",
    ),
    Column(
        "fte",
        "float",
        "FTE",
        "Full-time equivalent at this school (0-1], e.g. 0.5 for half-time there.",
        minimum=0.05,
        maximum=1,
        role="staff",
    ),
    Column(
        "caseload",
        "integer",
        "Reported Level 2 caseload",
        "Students on the coordinator's Level 2 caseload over the year, including any "
        "outside the study.",
        required=False,
        missing_ok=True,
        minimum=0,
        maximum=1000,
        role="staff",
    ),
    Column(
        "level2_time_share",
        "float",
        "Share of time on Level 2",
        "Share of the coordinator's time spent on Level 2 case management (proportion).",
        required=False,
        missing_ok=True,
        minimum=0,
        maximum=1,
        role="staff",
    ),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "students": STUDENTS,
    "contacts": CONTACTS,
    "coordinators": COORDINATORS,
}
"""The three tables of the contract by name."""

ROSTER_REQUIRED: tuple[str, ...] = ("student_id", "school_id")
ROSTER_OPTIONAL: tuple[str, ...] = (
    "grade",
    "school_level",
    "service_start",
    "exit_date",
    "coordinator_id",
    "consent",
)

ROSTER: tuple[Column, ...] = tuple(
    replace(c, required=True, missing_ok=False)
    if c.name in ROSTER_REQUIRED
    else replace(c, required=False, missing_ok=True)
    for name in (*ROSTER_REQUIRED, *ROSTER_OPTIONAL)
    for c in STUDENTS
    if c.name == name
)
"""The program roster of a fidelity check: the students columns it uses, in that order.

Only ``student_id`` and ``school_id`` are required; there is no assignment and no outcome.
"""

FIDELITY_TABLES: dict[str, tuple[Column, ...]] = {
    "roster": ROSTER,
    "contacts": CONTACTS,
    "coordinators": COORDINATORS,
}
"""The tables of a fidelity check (no trial) by name."""

KEYS: dict[str, tuple[str, ...]] = {
    "students": ("student_id",),
    "roster": ("student_id",),
    "contacts": ("contact_id",),
    "coordinators": ("coordinator_id", "school_id"),
}
"""The columns that identify a row of each table (one row per coordinator and school)."""

COLUMNS: dict[str, dict[str, Column]] = {
    t: {c.name: c for c in cols} for t, cols in {**TABLES, "roster": ROSTER}.items()
}
"""Column lookup: ``COLUMNS[table][name]`` (tables of the trial and ``"roster"``)."""

BASELINE_COVARIATES: tuple[str, ...] = tuple(c.name for c in STUDENTS if c.role == "baseline")
"""Baseline covariates in contract order."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """An analysis outcome derived from the raw fields.

    Attributes
    ----------
    name : str
        Column name of the derived outcome.
    label : str
        Name used in tables (the study's wording).
    type : {"binary", "continuous", "count"}
        Binary outcomes are analysed as linear probability models (percentage points).
    direction : {"lower", "higher"}
        Which direction is favourable; WWC effect sizes are signed so positive is favourable.
    domain : str
        Outcome domain, for multiplicity adjustments within domain.
    role : {"confirmatory", "exploratory"}
        Pre-specified role of the test.
    prior : str
        Baseline covariate that is the prior-year measure of this outcome.
    population : {"all", "high"}
        Students for whom the outcome is defined (core credits: high school only).
    unit : str
        Unit of the impact as reported.
    raw : tuple of str
        Raw fields it is derived from.
    """

    name: str
    label: str
    type: Literal["binary", "continuous", "count"]
    direction: Literal["lower", "higher"]
    domain: str
    role: Literal["confirmatory", "exploratory"]
    prior: str
    population: Literal["all", "high"] = "all"
    unit: str = ""
    raw: tuple[str, ...] = field(default_factory=tuple)


OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        "chronic_absence",
        "Chronically absent",
        "binary",
        "lower",
        "attendance",
        "confirmatory",
        "prior_chronic_absence",
        unit="percentage points",
        raw=("days_enrolled", "days_present"),
    ),
    Outcome(
        "attendance_rate",
        "Attendance rate",
        "continuous",
        "higher",
        "attendance",
        "exploratory",
        "prior_attendance_rate",
        unit="proportion of days",
        raw=("days_enrolled", "days_present"),
    ),
    Outcome(
        "core_course_failure",
        "Failed any core course",
        "binary",
        "lower",
        "academic",
        "confirmatory",
        "prior_core_failures",
        unit="percentage points",
        raw=("core_courses_taken", "core_courses_failed"),
    ),
    Outcome(
        "core_credits",
        "Core credits earned",
        "continuous",
        "higher",
        "academic",
        "exploratory",
        "prior_core_gpa",
        population="high",
        unit="credits",
        raw=("core_credits_earned",),
    ),
    Outcome(
        "core_gpa",
        "Core course marks (GPA)",
        "continuous",
        "higher",
        "academic",
        "exploratory",
        "prior_core_gpa",
        unit="GPA points (0-4)",
        raw=("core_gpa",),
    ),
    Outcome(
        "suspensions",
        "Number of suspensions",
        "count",
        "lower",
        "behavior",
        "confirmatory",
        "prior_suspensions",
        unit="suspensions",
        raw=("suspensions_iss", "suspensions_oss"),
    ),
)
"""The six outcomes of the interim report, in the order tables show them.

Roles and domains are cis_eval's pre-specification (the report's own confirmatory set is
not in the public record); change them by passing your own ``Outcome`` objects.
"""

OUTCOME_NAMES: tuple[str, ...] = tuple(o.name for o in OUTCOMES)
DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(o.domain for o in OUTCOMES))


def outcome(name: str) -> Outcome:
    """Return the :class:`Outcome` called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`OUTCOME_NAMES`.

    Returns
    -------
    Outcome

    Raises
    ------
    KeyError
        If the name is unknown; the message lists the known outcomes.

    Examples
    --------
    >>> from cis_eval.schema import outcome
    >>> outcome("chronic_absence").direction
    'lower'
    """
    for o in OUTCOMES:
        if o.name == name:
            return o
    raise KeyError(f"unknown outcome {name!r}; known outcomes: {', '.join(OUTCOME_NAMES)}")


def data_dictionary() -> pd.DataFrame:
    """Return the data dictionary of all three tables as a DataFrame.

    Returns
    -------
    pandas.DataFrame
        One row per column of the trial's tables with ``table, column, kind, label,
        description, required, missing_ok, minimum, maximum, categories, role, roster``;
        ``roster`` says whether a fidelity check's program roster needs the students
        column (``required``), may have it (``optional``) or does not use it (empty).

    Examples
    --------
    >>> from cis_eval.schema import data_dictionary
    >>> dd = data_dictionary()
    >>> sorted(dd["table"].unique())
    ['contacts', 'coordinators', 'students']
    """
    rows = []
    for table, cols in TABLES.items():
        for c in cols:
            rows.append(
                {
                    "table": table,
                    "column": c.name,
                    "kind": c.kind,
                    "label": c.label,
                    "description": c.description,
                    "required": c.required,
                    "missing_ok": c.missing_ok,
                    "minimum": c.minimum,
                    "maximum": c.maximum,
                    "categories": "|".join(c.categories),
                    "role": c.role,
                    "roster": _roster_use(table, c.name),
                }
            )
    return pd.DataFrame(rows)


def _roster_use(table: str, column: str) -> str:
    if table != "students":
        return ""
    if column in ROSTER_REQUIRED:
        return "required"
    return "optional" if column in ROSTER_OPTIONAL else ""


def render_dataset_readme(
    *, script: str, seed: int, scenario: str, version: str, summary: str
) -> str:
    """Markdown README for a folder of data in the contract, with the data dictionary.

    Parameters
    ----------
    script : str
        Script that wrote the data.
    seed : int
        Seed it used.
    scenario : str
        Effect scenario.
    version : str
        cis_eval version.
    summary : str
        One-line description of the trial.

    Returns
    -------
    str
        The README text; the dictionary tables are rendered from this module.
    """
    lines = [
        "# Synthetic Communities In Schools trial",
        "",
        "**These data are synthetic.** They were simulated by cis_eval to have the structure "
        "of MDRC's randomized evaluation of Communities In Schools case management (students "
        "randomized within schools). They contain no real student and are not the study's "
        "results.",
        "",
        f"- Written by `{script}` with cis_eval {version}",
        f"- Seed: `{seed}`; scenario: `{scenario}` (illustrative: a modest reduction in chronic "
        "absenteeism, no effect on the other outcomes)",
        f"- {summary}",
        "- Regenerate with `make data`; a test checks the files match the code byte for byte.",
        "",
        "Files: `students.csv`, `contacts.csv`, `coordinators.csv` (the three tables of the "
        "data contract), `data_dictionary.csv` (this dictionary, machine-readable) and "
        "`truth.csv` (the effects the simulation built in, for checking estimators).",
        "",
    ]
    for table, cols in TABLES.items():
        lines += [
            f"## {table}",
            "",
            "| column | type | required | allowed | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in cols:
            if c.categories:
                allowed = ", ".join(c.categories)
            elif c.kind == "binary":
                allowed = "0, 1"
            elif c.minimum is not None or c.maximum is not None:
                allowed = f"{c.minimum:g} to {c.maximum:g}"
            else:
                allowed = ""
            req = "yes" if c.required else "no"
            if c.missing_ok:
                req += " (may be empty)"
            lines.append(f"| `{c.name}` | {c.kind} | {req} | {allowed} | {c.description} |")
        lines.append("")
    lines += [
        "## roster (fidelity only)",
        "",
        "A fidelity check without a trial needs only a program roster: "
        + ", ".join(f"`{n}`" for n in ROSTER_REQUIRED)
        + " (required) and any of "
        + ", ".join(f"`{n}`" for n in ROSTER_OPTIONAL)
        + " (optional), defined as in the students table. No assignment and no outcomes.",
        "",
        "Rows are identified by: "
        + "; ".join(f"{t}: {', '.join(k)}" for t, k in KEYS.items())
        + ".",
        "",
        "## Derived outcomes",
        "",
        "| outcome | label | type | favourable | domain | role | from |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for o in OUTCOMES:
        lines.append(
            f"| `{o.name}` | {o.label} | {o.type} | {o.direction} | {o.domain} | "
            f"{o.role} | {', '.join(o.raw)} |"
        )
    lines.append("")
    return "\n".join(lines)


_CATEGORY_ALIASES = {"behaviour": "behavior", "social_and_life_skills": "social_life_skills"}


def normalise_category(value: str) -> str:
    """A category value as the contract spells it: lower case, ``_`` for spaces and dashes.

    Validation and the fidelity log reader both use it, so a value is accepted by one
    exactly when it is accepted by the other.

    Parameters
    ----------
    value : str
        A category as written in the data, e.g. ``"Mental Health"`` or ``"Behaviour"``.

    Returns
    -------
    str
        The normalised value (British spellings mapped to the contract's); it may still not
        be one of the column's categories.

    Examples
    --------
    >>> normalise_category(" Social & Life Skills ")
    'social_life_skills'
    >>> normalise_category("Behaviour")
    'behavior'
    """
    s = re.sub(r"[\s/\-&]+", "_", value.strip().lower())
    return _CATEGORY_ALIASES.get(s, s)
