"""The ``fidelity`` verb: implementation fidelity measured from the coordinators' service log.

Dosage (contacts, hours, weeks of service), caseloads, service mix and the service
contrast between the program and control groups, measured from the monitoring log that
site coordinators keep, one row per contact. Each school and coordinator is compared
with the published averages of the Communities In Schools evaluation (Corrin et al.
2015: about 19 contacts, 16 hours and 30 weeks per case-managed student, caseloads of
about 84, 44% of coordinator time on Level 2) and with the user's own targets.

The verb checks the inputs (:mod:`~cis_eval.fidelity.inputs`), reads and checks the log
in DuckDB (:mod:`~cis_eval.fidelity.log`), summarises it
(:mod:`~cis_eval.fidelity.frames`) and returns a
:class:`~cis_eval.fidelity.result.FidelityResult`. A network-wide log of tens of millions
of contacts, given as a CSV or Parquet file, is summarised without loading it into pandas.
Tables meant for publication suppress cells describing fewer than ``min_cell`` students
(see :mod:`cis_eval.present.privacy`).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._typing import check_option
from ..data.mapping import MappedLog
from ..data.validate import VALIDATED
from ..errors import DataValidationError, DesignWarning, OptionError, OptionTypeError, Problem
from ..io import file_size
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.privacy import DEFAULT_MIN_CELL, check_min_cell
from .frames import (
    arm_frame,
    coordinator_frame,
    mix_frames,
    monthly_frame,
    outcome_frame,
    school_frame,
    weekly_frame,
)
from .inputs import has_control, roster_frame, roster_ids, staff_frame
from .log import (
    Log,
    aggregate_students,
    check_log,
    engine,
    fetch_ordered,
    needs_trim,
    open_log,
    problem_rows,
    register_roster,
    sid_key,
)
from .result import FidelityResult
from .targets import CaseloadGuide, FidelityTargets, published_targets

__all__ = ["fidelity"]

_LONG_LOG = 1_000_000  # rows from which a progress bar is worth showing
FULL_YEAR = pd.Timedelta(weeks=10)
"""A log whose last contact falls in the last ten weeks of the school year (the summer
break of an August-July year) covers the whole year: its targets are not pro-rated
unless ``through=`` says otherwise."""


class _Progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="fidelity", file=sys.stderr, leave=False)

    def step(self, what: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(what, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _log_rows(contacts: pd.DataFrame | MappedLog | str | os.PathLike[str]) -> int:
    if isinstance(contacts, pd.DataFrame):
        return len(contacts)
    if isinstance(contacts, MappedLog):
        return file_size(contacts.path) // 40
    return file_size(contacts) // 40  # about 40 bytes a contact on disk


def _validated(
    students: pd.DataFrame,
    contacts: pd.DataFrame | MappedLog | str | os.PathLike[str],
    coordinators: pd.DataFrame | None,
    school_year: tuple[str, str] | None,
) -> tuple[pd.DataFrame, pd.DataFrame | MappedLog | str | os.PathLike[str], pd.DataFrame | None]:
    """The tables checked by :func:`cis_eval.validate` (the fidelity contract).

    Tables that a validation without errors returned are used as they are; otherwise
    every table given as a frame is validated (together, so contacts are checked against
    the roster), and nothing is coerced or dropped silently: a value that is not what the
    contract expects is an error naming its table, column and rows.
    """
    from ..data.validate import validate

    if not isinstance(students, pd.DataFrame):
        raise TypeError(f"students must be a pandas DataFrame, got {type(students).__name__}")
    frames = [f for f in (students, contacts, coordinators) if isinstance(f, pd.DataFrame)]
    if all(VALIDATED in f.attrs for f in frames):
        return students, contacts, coordinators
    log = contacts if isinstance(contacts, pd.DataFrame) else None
    with warnings.catch_warnings():
        # The log's own checks below report the same warnings once, with the rest.
        warnings.simplefilter("ignore", DesignWarning)
        report = validate(students, log, coordinators, school_year=school_year, contract="fidelity")
    assert report.students is not None  # given, so returned
    typed_log = report.contacts if report.contacts is not None else contacts
    return report.students, typed_log, report.coordinators


def _through_date(value: object) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        out = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise OptionError(f"through must be a date such as '2013-01-31', got {value!r}") from None
    if pd.isna(out):
        raise OptionError(f"through must be a date such as '2013-01-31', got {value!r}")
    return out.normalize()


def fidelity(
    students: pd.DataFrame,
    contacts: pd.DataFrame | MappedLog | str | os.PathLike[str],
    coordinators: pd.DataFrame | None = None,
    *,
    targets: FidelityTargets | Mapping[str, Any] | None = None,
    caseload_guide: CaseloadGuide = "none",
    school_year: tuple[str, str] | None = None,
    through: str | pd.Timestamp | None = None,
    thresholds: Sequence[int] = (1, 10, 19, 30),
    min_cell: int = DEFAULT_MIN_CELL,
    column_map: Mapping[str, str] | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
    progress: bool | None = None,
) -> FidelityResult:
    """Measure implementation fidelity from the service log: dosage, caseloads, service mix.

    Parameters
    ----------
    students : pandas.DataFrame
        The program roster: ``student_id`` and ``school_id``, with optional
        ``service_start``, ``exit_date``, grade, school level, assigned coordinator and
        consent (:data:`cis_eval.schema.ROSTER`). A trial's students table works too:
        with a ``treatment`` column that has a control group, the report adds the
        service contrast between program and control (days to first contact then count
        from ``assignment_date``), and raw outcome fields give the exploratory
        dose-response view. Frames not returned by :func:`cis_eval.validate` are
        validated first.
    contacts : pandas.DataFrame, MappedLog or path
        The contacts log, or the path of a CSV or Parquet file read directly by DuckDB
        (for logs too large for pandas), or an export's log left on disk by
        ``cis_eval.load_export(mapping, log_on_disk=True)`` (``.contacts_log``), renamed
        and recoded by DuckDB through its mapping.
    coordinators : pandas.DataFrame, optional
        The coordinators table (school, FTE, reported caseload, share of time on Level 2).
    targets : FidelityTargets or mapping, optional
        The user's targets, e.g. ``{"contacts": 20, "caseload": {"max": 80}}`` (see
        :meth:`FidelityTargets.with_user`). The published study averages are always
        included; user targets take precedence in flags.
    caseload_guide : {"none", "intensive", "standard"}, default "none"
        Also check caseloads against the practice guide: at most 20 students with
        intensive needs, or 50-100 otherwise (Rumberger et al. 2017).
    school_year : (str, str), optional
        First and last day of the year; by default the August-July year containing the
        median contact date, as in :func:`cis_eval.validate`.
    through : str or Timestamp, optional
        The "data through" date of a mid-year log; by default the last contact. When it
        falls before the end of the school year, the targets of measures that accumulate
        (contacts, hours, weeks) are pro-rated to the elapsed share of the year (days
        from its first day to ``through``, both counted, over the year's days), and the
        report says so. By default a log whose last contact falls in the year's last ten
        weeks (:data:`FULL_YEAR`: the summer break) is taken as a full year. Contacts
        dated after ``through`` are an error.
    thresholds : sequence of int, default (1, 10, 19, 30)
        Receipt thresholds (at least k Level 2 contacts) reported by research group:
        the first stage of a complier average causal effect at each threshold.
    min_cell : int, default 10
        Tables and plots suppress cells describing fewer students than this.
    column_map : mapping, optional
        The log's column names -> the contract's, when ``contacts`` is a path.
    chronic_threshold : float, default 0.10
        Chronic-absence threshold for the dose-response view.
    progress : bool, optional
        Show a progress bar on stderr; by default only for logs of a million rows or more
        when stderr is a terminal.

    Returns
    -------
    FidelityResult
        Per student, school, coordinator and research group, with ``to_frame(level)``,
        ``table(level)``, ``plot(kind)`` and ``report()``.

    Raises
    ------
    OptionError
        For a bad option value (thresholds, caseload guide, a school year that ends before
        it starts or spans more than one year, a ``through`` date outside the school
        year; :class:`~cis_eval.errors.OptionTypeError` for targets of the wrong type).
    DataValidationError
        For problems in the roster or coordinators table (see :func:`cis_eval.validate`),
        or in the log (unknown service areas, minutes that are negative or
        longer than a school day, dates outside the school year, contacts for students
        not in the roster, an empty log), all listed at once by file, column and row.

    Notes
    -----
    Dosage counts Level 2 (tier 2) contacts. School, coordinator, dosage, service-mix and
    weekly figures describe program students; in a trial, services to control-group
    students (crossover) appear only in the comparison by research group. Warnings
    (contacts by coordinators missing from the coordinators table, Level 2 contacts
    dated before the student's start) are issued as one
    :class:`~cis_eval.errors.DesignWarning` and kept in ``FidelityResult.warnings``.

    References
    ----------
    Corrin, W., et al. (2015). *Case Management for Students at Risk of Dropping Out.* MDRC.
    Rumberger, R., et al. (2017). *Preventing Dropout in Secondary Schools* (NCEE 2017-4028).

    Examples
    --------
    >>> from cis_eval.fidelity.verb import fidelity  # also cis_eval.fidelity
    >>> from cis_eval.data.simulate import simulate
    >>> trial = simulate(seed=5, n_students=400, n_schools=5)
    >>> fid = fidelity(trial.students, trial.contacts, trial.coordinators)
    >>> fid
    FidelityResult(400 students, 5 schools, 5 coordinators, 3,844 contacts, min_cell=10)
    >>> fid.to_frame("school").shape[0]
    5
    """
    k = check_min_cell(min_cell)
    until = _through_date(through)
    check_option("caseload_guide", caseload_guide, ("none", "intensive", "standard"))
    ths = tuple(thresholds)
    if not ths or any(
        isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in ths
    ):
        raise OptionError(f"thresholds must be whole numbers of contacts >= 1, got {thresholds!r}")
    ths = tuple(sorted({int(t) for t in ths}))
    if targets is None:
        tgt = published_targets()
    elif isinstance(targets, FidelityTargets):
        tgt = targets
    elif isinstance(targets, Mapping):
        tgt = published_targets().with_user(targets)
    else:
        raise OptionTypeError(
            f"targets must be a mapping or FidelityTargets, got {type(targets).__name__}"
        )
    tgt = tgt.with_guide(caseload_guide)
    year = None
    if school_year is not None:
        year = (pd.Timestamp(school_year[0]), pd.Timestamp(school_year[1]))
        if year[1] < year[0]:
            raise OptionError("school_year: the last day is before the first")
    show = (
        progress
        if progress is not None
        else (_log_rows(contacts) >= _LONG_LOG and sys.stderr.isatty())
    )
    bar = _Progress(bool(show), 7)
    try:
        # A log validated by the caller has had its warnings given: the ones validation
        # also checks are not repeated below.
        seen = isinstance(contacts, pd.DataFrame) and VALIDATED in contacts.attrs
        students, contacts, coordinators = _validated(students, contacts, coordinators, school_year)
        trial = has_control(students)
        roster = roster_frame(students)
        staff = staff_frame(coordinators)
        with engine() as con:
            log = open_log(con, contacts, column_map)
            register_roster(con, roster.assign(sid_key=log.roster_key(roster["student_id"])))
            bar.step("checking the log")
            given = year
            cube, year, errors, notes = check_log(log, given, staff, staff_warning=not seen)
            if needs_trim(log, cube):
                log = open_log(con, contacts, column_map, trim=True)
                cube, year, errors, notes = check_log(log, given, staff, staff_warning=not seen)
            if errors:
                raise DataValidationError(errors)
            # Dates were all valid and at least one exists, so the year is known.
            assert year is not None
            bar.step("per student")
            aggregate_students(log, year)
            # validation checks contacts against random assignment, not a start of services
            early_note = (
                None
                if seen and "assignment_date" in students.columns
                else _early_contacts(log, trial)
            )
            if early_note is not None:
                notes.append(early_note)
            last = con.execute("SELECT max(date) FROM log").fetchall()[0][0]
            end = pd.Timestamp(last) if until is None else until
            if until is not None:
                if not year[0] <= until <= year[1]:
                    raise OptionError(
                        f"through={until:%Y-%m-%d} is outside the school year "
                        f"{year[0]:%Y-%m-%d} to {year[1]:%Y-%m-%d}"
                    )
                _check_through(log, until)
            bar.step("schools")
            schools = school_frame(con, staff)
            bar.step("coordinators")
            coords = coordinator_frame(con, staff, schools)
            arms = arm_frame(con, ths)
            bar.step("service mix")
            mix, school_mix = mix_frames(con, cube)
            bar.step("weeks")
            weekly = weekly_frame(con, cube, year)
            monthly = monthly_frame(con, log)
            # The roster's own columns are taken from the roster, in the same order,
            # rather than converted back from DuckDB.
            from_roster = ("student_id", "school_id", "treatment", "assignment_date", "start_date")
            st = fetch_ordered(
                con,
                "st",
                "_pos",
                exclude=(
                    *from_roster,
                    "weeks_mask",
                    "tier1_weeks_mask",
                    "tier1_svc_mask",
                    "tier1_mode_mask",
                ),
            )
            n_contacts = int(cube["n"].sum())
        bar.step("dose-response")
        for i, c in enumerate(from_roster):
            st.insert(i, c, roster[c].array)
        st.index = students.index
        for c in ("first_contact", "last_contact", "assignment_date", "start_date"):
            st[c] = pd.to_datetime(st[c]).astype("datetime64[s]")
        st["days_to_first_contact"] = st["days_to_first_contact"].astype(float)
        st["exit_date"] = roster["exit_date"].to_numpy()
        st["assigned_coordinator"] = (
            roster_ids(students["coordinator_id"]) if "coordinator_id" in students else None
        )
        st["received"] = (st["contacts"] > 0).astype(np.int64)
        outcomes = outcome_frame(students, chronic_threshold)
    finally:
        bar.close()
    if notes:
        warnings.warn(
            "data warnings:\n  - " + "\n  - ".join(map(str, notes)), DesignWarning, stacklevel=2
        )
    # Without a through date, a log that reaches the summer break is a full year's.
    full = until is None and end >= year[1] - FULL_YEAR
    elapsed = 1.0 if full else elapsed_share(year, end)
    return FidelityResult(
        _students=st,
        _schools=schools,
        _coordinators=coords,
        _arms=arms,
        _service_mix=mix,
        _school_service_mix=school_mix,
        _weekly=weekly,
        _outcomes=outcomes,
        _monthly=monthly,
        targets=tgt.prorated(elapsed),
        school_year=(pd.Timestamp(year[0]), pd.Timestamp(year[1])),
        through=pd.Timestamp(end),
        elapsed_share=elapsed,
        has_control=trial,
        min_cell=k,
        thresholds=ths,
        warnings=tuple(str(p) for p in notes),
        source=log.source,
        n_contacts=n_contacts,
        chronic_threshold=chronic_threshold,
    )


def elapsed_share(year: tuple[pd.Timestamp, pd.Timestamp], through: pd.Timestamp) -> float:
    """Share of the school year's days from its first day to ``through`` (both counted).

    Parameters
    ----------
    year : (Timestamp, Timestamp)
        First and last day of the school year.
    through : Timestamp
        The last day the data cover.

    Returns
    -------
    float
        In (0, 1]; 1 when ``through`` is the last day of the year or later.
    """
    total = (year[1] - year[0]).days + 1
    done = (min(through, year[1]) - year[0]).days + 1
    return float(min(max(done, 1), total) / total)


def _early_contacts(log: Log, trial: bool) -> Problem | None:
    """The warning for Level 2 contacts dated before the student's start, if any."""
    con = log.con
    n_students = int(
        con.execute("SELECT count(*) FROM st WHERE first_contact < start_date").fetchall()[0][0]
    )
    if not n_students:
        return None
    cond = "l.tier = 2 AND l.date < CAST(r.start_date AS DATE)"
    join = f"JOIN roster r ON r.sid_key = {sid_key(log)}"
    n = int(con.execute(f"SELECT count(*) FROM log l {join} WHERE {cond}").fetchall()[0][0])
    start = "random assignment" if trial else "start of services"
    return Problem(
        log.source,
        "date",
        problem_rows(log, cond, join),
        n,
        f"{n:,} Level 2 contact(s) dated before the student's {start}",
        f"case management to start after {start}",
        "warning",
    )


def _check_through(log: Log, through: pd.Timestamp) -> None:
    """Contacts dated after the "data through" date are an error."""
    cond = f"l.date > DATE '{through:%Y-%m-%d}'"
    n = int(log.con.execute(f"SELECT count(*) FROM log l WHERE {cond}").fetchall()[0][0])
    if n:
        raise DataValidationError(
            [
                Problem(
                    log.source,
                    "date",
                    problem_rows(log, cond),
                    n,
                    f"{n:,} contact(s) dated after the data-through date {through:%Y-%m-%d}",
                    "contacts up to the data-through date (or a later through=)",
                )
            ]
        )
