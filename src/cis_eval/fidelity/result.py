"""The result of :func:`cis_eval.fidelity`: the measured data and its entry points.

:class:`FidelityResult` holds the aggregate frames and the settings they were measured
with; its methods are the entry points (``to_frame``, ``table``, ``plot``, ``summary``,
``report``), and each delegates to the module that builds that output:
:mod:`~cis_eval.fidelity.frames`, :mod:`~cis_eval.fidelity.tables`,
:mod:`~cis_eval.fidelity.plots` and :mod:`~cis_eval.fidelity.report`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import pandas as pd

from .._typing import check_option
from ..errors import OptionError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.privacy import DEFAULT_MIN_CELL, check_min_cell
from . import report
from .frames import DOSE_OUTCOMES, benchmarks_frame, dosage_frame, dose_frame, with_flags
from .plots import draw_chart
from .tables import build_table
from .targets import COORDINATOR_FLAGS, DOSAGE, SCHOOL_FLAGS, FidelityTargets

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..present.report import Report
    from ..present.table import Table

__all__ = ["LEVELS", "FidelityResult", "Level", "PlotKind"]

Level = Literal[
    "student",
    "school",
    "coordinator",
    "arm",
    "dosage",
    "benchmarks",
    "service_mix",
    "school_service_mix",
    "weekly",
    "monthly",
    "dose_response",
]
LEVELS: tuple[str, ...] = get_args(Level)  # the same list, so the two cannot disagree
PlotKind = Literal["dosage", "benchmarks", "weekly", "dose_response"]


@dataclass(frozen=True, slots=True)
class FidelityResult:
    """Implementation fidelity: dosage, caseloads, service mix and the service contrast.

    Build with :func:`~cis_eval.fidelity.verb.fidelity`. Every accessor returns a fresh
    copy; :meth:`table`, :meth:`plot` and :meth:`report` are for publication and suppress
    every cell describing fewer than ``min_cell`` students, with complementary cells.

    Attributes
    ----------
    targets : FidelityTargets
        Published benchmarks and the user's targets.
    school_year : (Timestamp, Timestamp)
        The school year measured.
    min_cell : int
        Smallest number of students a published cell may describe.
    thresholds : tuple of int
        Receipt thresholds (at least k Level 2 contacts) reported by research group.
    warnings : tuple of str
        Data warnings found in the log (they never contain identifiers).
    source : str
        Name of the contacts log.
    n_contacts : int
        Rows in the log (both tiers, both groups).
    chronic_threshold : float
        Chronic-absence threshold used in the dose-response view.
    through : Timestamp or None
        The last day the log covers (the "data through" date).
    elapsed_share : float
        Share of the school year up to ``through``; targets of measures that accumulate
        were pro-rated to it when below 1.
    has_control : bool
        Whether the roster has a control group (a trial). Without one the report
        speaks of program students and the start of services only.
    """

    _students: pd.DataFrame = field(repr=False)
    _schools: pd.DataFrame = field(repr=False)
    _coordinators: pd.DataFrame = field(repr=False)
    _arms: pd.DataFrame = field(repr=False)
    _service_mix: pd.DataFrame = field(repr=False)
    _school_service_mix: pd.DataFrame = field(repr=False)
    _weekly: pd.DataFrame = field(repr=False)
    _outcomes: pd.DataFrame | None = field(repr=False)
    _monthly: pd.DataFrame = field(repr=False)
    targets: FidelityTargets = field(repr=False)
    school_year: tuple[pd.Timestamp, pd.Timestamp] = field(repr=False)
    min_cell: int = DEFAULT_MIN_CELL
    thresholds: tuple[int, ...] = (1, 10, 19, 30)
    warnings: tuple[str, ...] = ()
    source: str = "contacts"
    n_contacts: int = 0
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD
    through: pd.Timestamp | None = None
    elapsed_share: float = 1.0
    has_control: bool = True
    # Suppression decisions, worked out once per minimum cell size: every table, chart
    # and the summary ask for the same ones, and a network has thousands of rows.
    _memo: dict[tuple[object, ...], object] = field(default_factory=dict, repr=False, compare=False)

    def _remember(
        self, key: tuple[object, ...], of: tuple[object, ...], make: Callable[[], object]
    ) -> object:
        """``make()``, worked out once per key and objects ``of``.

        The objects are kept with the value, so their identities cannot pass to others.
        """
        full = (*key, *(id(o) for o in of))
        hit = self._memo.get(full)
        if isinstance(hit, tuple) and all(a is b for a, b in zip(hit[0], of, strict=True)):
            return hit[1]
        value = make()
        self._memo[full] = (of, value)
        return value

    def __repr__(self) -> str:
        return (
            f"FidelityResult({len(self._students):,} students, {len(self._schools):,} schools, "
            f"{len(self._coordinators):,} coordinators, {self.n_contacts:,} contacts, "
            f"min_cell={self.min_cell})"
        )

    def to_frame(self, level: Level = "school") -> pd.DataFrame:
        """The measures at one level, as a fresh DataFrame with snake_case columns.

        Parameters
        ----------
        level : str, default "school"
            ``"student"`` (one row per student of the roster, in its order and with its
            index, for merging with outcomes: never for publication), ``"school"``,
            ``"coordinator"``, ``"arm"`` (program vs control: the service contrast),
            ``"dosage"`` (distribution of each measure among program students reached),
            ``"benchmarks"`` (network figures against the targets), ``"service_mix"``,
            ``"school_service_mix"``, ``"weekly"``, ``"monthly"`` (per coordinator and
            month: Level 2 contacts, hours and program students reached) or
            ``"dose_response"`` (exploratory; empty when the roster has no outcome
            fields).

        Returns
        -------
        pandas.DataFrame
            Unsuppressed numbers: for analysis, not for publication (see :meth:`table`).
        """
        check_option("level", level, LEVELS)
        if level == "student":
            return self._students.copy()
        if level == "school":
            return with_flags(self.targets, self._schools, SCHOOL_FLAGS)
        if level == "coordinator":
            return with_flags(self.targets, self._coordinators, COORDINATOR_FLAGS)
        if level == "arm":
            return self._arms.copy()
        if level == "dosage":
            return dosage_frame(self)
        if level == "benchmarks":
            return benchmarks_frame(self)
        if level == "service_mix":
            return self._service_mix.copy()
        if level == "school_service_mix":
            return self._school_service_mix.copy()
        if level == "weekly":
            return self._weekly.copy()
        if level == "monthly":
            return self._monthly.copy()
        cuts = [float(t) for t in self.thresholds]
        return dose_frame(self, {"program": cuts, "control": []})

    def table(self, level: Level = "school", *, min_cell: int | None = None) -> Table:
        """A publication table at one level, with reader labels and small cells suppressed.

        Parameters
        ----------
        level : str, default "school"
            Any level of :meth:`to_frame` except ``"student"`` (student rows are never
            published) and ``"weekly"`` (drawn by :meth:`plot`).
        min_cell : int, optional
            Override the result's ``min_cell`` (1 shows every cell: not for publication).

        Returns
        -------
        Table
            Suppressed cells show ``*``; the notes say why.

        Examples
        --------
        >>> from cis_eval.fidelity.verb import fidelity
        >>> from cis_eval.data.simulate import simulate
        >>> trial = simulate(seed=5, n_students=400, n_schools=5)
        >>> fid = fidelity(trial.students, trial.contacts, trial.coordinators)
        >>> fid.table("arm").data["Group"].tolist()
        ['Program group', 'Control group', 'Difference (program - control)']
        """
        check_option("level", level, LEVELS)
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        if level == "student":
            raise OptionError(
                "student-level rows are never published; use to_frame('student') for "
                "analysis, or a school, coordinator or arm table"
            )
        if level == "weekly":
            raise OptionError("weekly contacts are drawn by plot('weekly'); use to_frame('weekly')")
        if level == "monthly":
            return report.monthly_table(self, k)
        return build_table(self, level, k)

    def plot(
        self,
        kind: PlotKind = "dosage",
        *,
        measure: str = "contacts",
        ax: Axes | None = None,
        min_cell: int | None = None,
    ) -> Axes:
        """Draw one fidelity chart on ``ax`` (created if None) and return it.

        Parameters
        ----------
        kind : {"dosage", "benchmarks", "weekly", "dose_response"}, default "dosage"
            ``"dosage"``: distribution of one measure among program students reached
            (bars merged so each holds 0 or at least ``min_cell`` students);
            ``"benchmarks"``: each school's mean of one measure against the study
            benchmark and the user's target; ``"weekly"``: Level 2 and Level 1 contacts
            per week over the school year; ``"dose_response"``: an outcome by dosage band
            (exploratory, non-experimental).
        measure : str, default "contacts"
            For ``"dosage"`` and ``"benchmarks"``: contacts, hours, weeks, active_weeks
            or contacts_per_month; for ``"dose_response"``: an outcome (chronic absence
            when left at "contacts").
        ax : matplotlib.axes.Axes, optional
            Axes to draw on.
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        matplotlib.axes.Axes
        """
        check_option("kind", kind, ("dosage", "benchmarks", "weekly", "dose_response"))
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        if kind in ("dosage", "benchmarks"):
            check_option("measure", measure, DOSAGE)
        outcome = "chronic_absence" if measure == "contacts" else measure
        if kind == "dose_response":
            check_option("measure", outcome, DOSE_OUTCOMES)
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.4, 3.6))
        return draw_chart(self, kind, ax, outcome if kind == "dose_response" else measure, k)

    def summary(self, *, min_cell: int | None = None) -> list[str]:
        """Plain-language summary sentences for a program director (privacy-safe).

        Parameters
        ----------
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        list of str
        """
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        return report.summary(self, k)

    def report(self, *, title: str | None = None, min_cell: int | None = None) -> Report:
        """The affiliate report: summary, tables per school and coordinator, charts, notes.

        Parameters
        ----------
        title : str, optional
            Report title.
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        Report
            ``Report.to_html()`` gives one self-contained file: charts embedded as SVG, no
            scripts and no external requests. It never shows a student identifier, and
            every figure describing fewer than ``min_cell`` students is suppressed
            together with its complements.
        """
        from ..present.report import Report

        rep = Report(title or "Implementation fidelity: Communities In Schools case management")
        return self.add_to_report(rep, min_cell=min_cell, full=True)

    def add_to_report(
        self, rep: Report, *, min_cell: int | None = None, full: bool = True
    ) -> Report:
        """Append the fidelity sections to an existing report (the demo uses this).

        Parameters
        ----------
        rep : Report
            The report to extend.
        min_cell : int, optional
            Override the result's ``min_cell``.
        full : bool, default True
            Include the coordinator, school service mix, dose-response and definitions
            sections; False gives the short version.

        Returns
        -------
        Report
            The same report.
        """
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        return report.add_to_report(self, rep, k, full=full)

    def report_tables(self, *, min_cell: int | None = None) -> dict[str, Table]:
        """Every table of the report, by level, in the report's order (privacy-safe).

        Parameters
        ----------
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        dict of str to Table
            The tables :meth:`report` shows; the service contrast and dose-response
            tables only when the roster has a control group.
        """
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        return report.report_tables(self, k)

    def to_excel(self, path: str | os.PathLike[str], *, min_cell: int | None = None) -> Path:
        """Write every table of the report to an Excel workbook, one sheet each.

        Parameters
        ----------
        path : path-like
            The ``.xlsx`` file to write (through :func:`cis_eval.io.write_workbook`; text
            that a spreadsheet would run as a formula is written as text).
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        pathlib.Path
        """
        from ..io import write_workbook

        return write_workbook(path, report.table_sheets(self.report_tables(min_cell=min_cell)))

    def follow_up(self, *, weeks: int = 4) -> pd.DataFrame:
        """Program students a coordinator should follow up: CONFIDENTIAL, not for publication.

        Parameters
        ----------
        weeks : int, default 4
            A student reached but without a Level 2 contact in the last ``weeks`` weeks
            before the data-through date is listed.

        Returns
        -------
        pandas.DataFrame
            One row per student still in the program (no exit date on or before the
            data-through date) who was not yet reached, is below the (pro-rated) contacts
            target, or had no contact in the last ``weeks`` weeks: ``coordinator_id``,
            ``school_id``, ``student_id``, ``reasons``, ``contacts``, ``hours``,
            ``last_contact``, ``days_since_last_contact``. It holds student identifiers:
            for the coordinators' own follow-up, never for a report.
        """
        if isinstance(weeks, bool) or not isinstance(weeks, int) or weeks < 1:
            raise OptionError(f"weeks must be a whole number of weeks >= 1, got {weeks!r}")
        return report.follow_up_frame(self, weeks)

    def write_follow_up(self, path: str | os.PathLike[str], *, weeks: int = 4) -> Path:
        """Write :meth:`follow_up` as a workbook for coordinators, one sheet per coordinator.

        Every sheet starts with a CONFIDENTIAL banner saying it holds student identifiers.
        The workbook is never part of the report.

        Parameters
        ----------
        path : path-like
            The ``.xlsx`` file to write.
        weeks : int, default 4
            See :meth:`follow_up`.

        Returns
        -------
        pathlib.Path
        """
        from ..io import write_workbook

        frame = self.follow_up(weeks=weeks)
        return write_workbook(path, report.follow_up_sheets(self, frame, weeks))
