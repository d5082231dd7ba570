"""Fidelity measures and targets: what is measured, and what each measure is compared with.

The measures (:data:`MEASURES`) carry their reader label, direction and the statistic a
target is compared with. :class:`FidelityTargets` holds the published benchmarks of the
Communities In Schools evaluation (Corrin et al. 2015, shipped with cis_eval as package
data), the user's own targets and, optionally, the practice guide's caseload range.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, cast

import numpy as np

from .._typing import check_option
from ..errors import DataValidationError, Problem

_EPS = 1e-9  # relative: equal within rounding of a parallel sum

__all__ = [
    "COORDINATOR_FLAGS",
    "DOSAGE",
    "MEASURES",
    "PRORATED",
    "SCHOOL_FLAGS",
    "CaseloadGuide",
    "FidelityTargets",
    "Measure",
    "Target",
    "guide_explanation",
    "meaning",
    "published_targets",
    "student_column",
]

CaseloadGuide = Literal["none", "intensive", "standard"]
Direction = Literal["at_least", "at_most"]


@dataclass(frozen=True, slots=True)
class Measure:
    """One measure: reader label, direction, the statistic compared and its meaning."""

    label: str
    short: str
    direction: Direction
    statistic: Literal["mean", "median", "share"]
    digits: int
    level: Literal["student", "coordinator"]
    meaning: str


MEASURES: dict[str, Measure] = {
    "contacts": Measure(
        "Level 2 contacts per student",
        "contacts",
        "at_least",
        "mean",
        1,
        "student",
        "Logged Level 2 (case-managed) contacts in the year, per student reached. Two "
        "contacts on the same day count as two.",
    ),
    "hours": Measure(
        "Hours of Level 2 service per student",
        "hours",
        "at_least",
        "mean",
        1,
        "student",
        "Total minutes of the student's Level 2 contacts, divided by 60.",
    ),
    "weeks": Measure(
        "Weeks of service (first to last contact)",
        "weeks",
        "at_least",
        "mean",
        1,
        "student",
        "Weeks from the student's first to last Level 2 contact, breaks included; a "
        "student with a single contact has 0 weeks. The study's 30 weeks is this span.",
    ),
    "active_weeks": Measure(
        "Weeks with at least one contact",
        "active weeks",
        "at_least",
        "mean",
        1,
        "student",
        "Calendar weeks (Monday to Sunday) in which the student had at least one Level 2 "
        "contact; weeks without contacts, such as the winter break, do not count.",
    ),
    "contacts_per_month": Measure(
        "Contacts per month of service",
        "contacts per month",
        "at_least",
        "mean",
        1,
        "student",
        "Level 2 contacts divided by the months from first to last contact (a span "
        "shorter than a month counts as one month).",
    ),
    "days_to_first_contact": Measure(
        "Days from start to first contact",
        "days to first contact",
        "at_most",
        "median",
        0,
        "student",
        "Calendar days from the student's start to the first Level 2 contact (median "
        "across students: a few late starts do not dominate it).",
    ),
    "share_reached": Measure(
        "Share of program students reached",
        "share reached",
        "at_least",
        "share",
        0,
        "student",
        "Program-group students with at least one Level 2 contact, as a share of all "
        "program-group students (the caseload a school's coordinators were given).",
    ),
    "caseload": Measure(
        "Coordinator caseload per FTE (students)",
        "caseload",
        "at_most",
        "mean",
        0,
        "coordinator",
        "Students on a coordinator's Level 2 caseload as reported in the coordinators "
        "file (it may include students not on this roster); where none is reported, the "
        "program students with contacts logged by that coordinator. Divided by the "
        "coordinator's full-time equivalent (FTE), so a half-time coordinator with 40 "
        "students counts as 80 per FTE.",
    ),
    "level2_time_share": Measure(
        "Share of coordinator time on Level 2",
        "time on Level 2",
        "at_least",
        "mean",
        0,
        "coordinator",
        "Share of the coordinator's working time spent on Level 2 case management, as "
        "reported in the coordinators file.",
    ),
}
"""Measures that can carry a target: label, direction and the statistic compared."""

# Which measures are flagged against their targets at each level, and the dosage measures.
SCHOOL_FLAGS = (
    "contacts",
    "hours",
    "weeks",
    "active_weeks",
    "contacts_per_month",
    "days_to_first_contact",
    "share_reached",
)
COORDINATOR_FLAGS = ("contacts", "hours", "share_reached", "caseload", "level2_time_share")
DOSAGE = ("contacts", "hours", "weeks", "active_weeks", "contacts_per_month")
_STUDENT_COLUMN = {"weeks": "span_weeks"}  # measure -> student-level column


PRORATED = ("contacts", "hours", "weeks", "active_weeks")
"""Measures that accumulate over the year: their targets are pro-rated mid-year."""

_START_MEANING = {
    True: "the student's random assignment",
    False: "the student's start of services (from the roster's service_start)",
}


def meaning(measure: str, trial: bool) -> str:
    """The plain-language meaning of a measure, worded for a trial or a program roster.

    Parameters
    ----------
    measure : str
        A key of :data:`MEASURES`.
    trial : bool
        True when the roster has a control group (a randomized trial).

    Returns
    -------
    str
    """
    text = MEASURES[measure].meaning
    if measure == "days_to_first_contact":
        text = text.replace("the student's start", _START_MEANING[trial])
    if not trial:
        text = text.replace("program-group students", "program students").replace(
            "Program-group", "Program"
        )
    return text


def guide_explanation(low: float | None, high: float | None, value: float) -> str:
    """The practice guide's caseload range explained for one caseload, not judged.

    Parameters
    ----------
    low, high : float or None
        The guide's range (either end may be open).
    value : float
        A caseload per full-time equivalent.

    Returns
    -------
    str
        E.g. ``"under the guide's 50-100: more time for each student"``.
    """
    if value is None or not np.isfinite(value):
        return ""
    rng = f"{low:g}-{high:g}" if low is not None and high is not None else f"{high or low:g}"
    if low is not None and value < low:
        return f"under the guide's {rng}: more time for each student, or room for more students"
    if high is not None and value > high:
        return f"over the guide's {rng}: less time for each student than the guide assumes"
    return f"within the guide's {rng}"


def student_column(measure: str) -> str:
    """The student-level column holding a measure (``weeks`` is the span in weeks)."""
    return _STUDENT_COLUMN.get(measure, measure)


@dataclass(frozen=True, slots=True)
class Target:
    """One target: a minimum, a maximum or a range for one measure.

    Attributes
    ----------
    measure : str
        A key of :data:`MEASURES`.
    low, high : float or None
        The value must be at least ``low`` and at most ``high`` (either may be None).
    source : str
        Where the target comes from (shown in reports).
    prorated : float or None
        The share of the school year the target was pro-rated to (mid-year data), or
        None for a full-year target.
    """

    measure: str
    low: float | None
    high: float | None
    source: str
    prorated: float | None = None

    def describe(self) -> str:
        """The target as text, e.g. ``"at least 19"`` or ``"50 to 100"``."""
        share = self.measure in ("share_reached", "level2_time_share")

        def f(v: float) -> str:
            return f"{v:.0%}" if share else f"{v:.1f}".removesuffix(".0")

        text = self._bounds(f)
        if self.prorated is not None:
            text += f" (pro-rated to {self.prorated:.0%} of the year)"
        return text

    def _bounds(self, f: Callable[[float], str]) -> str:
        if self.low is not None and self.high is not None:
            return f"{f(self.low)} to {f(self.high)}"
        if self.low is not None:
            return f"at least {f(self.low)}"
        assert self.high is not None
        return f"at most {f(self.high)}"

    def status(self, value: float, tolerance: float) -> str:
        """``"meets"``, ``"near"`` (within ``tolerance``), ``"below"``, ``"above"`` or ``""``."""
        if value is None or not np.isfinite(value):
            return ""

        def under(a: float, bound: float) -> bool:
            # Means summed in parallel differ from run to run in the last bits; a value
            # on a boundary must be judged the same every time.
            return a < bound - _EPS * max(1.0, abs(bound))

        if self.low is not None and under(value, self.low):
            return "below" if under(value, self.low * (1 - tolerance)) else "near"
        if self.high is not None and under(self.high, value):
            return "above" if under(self.high * (1 + tolerance), value) else "near"
        return "meets"


@dataclass(frozen=True, slots=True)
class FidelityTargets:
    """The benchmarks every school and coordinator is compared with.

    Attributes
    ----------
    study : tuple of Target
        Published averages of the CIS evaluation (shipped with cis_eval).
    user : tuple of Target
        The user's own targets (they take precedence in flags).
    guide : tuple of Target
        The practice guide's caseload range, when that check is switched on.
    tolerance : float
        Values within this share of a target are "near" rather than short of it.
    name : str
        Name of the user's targets (shown in reports).
    sources : tuple of str
        Full references of the published benchmarks used.
    """

    study: tuple[Target, ...]
    user: tuple[Target, ...] = ()
    guide: tuple[Target, ...] = ()
    tolerance: float = 0.10
    name: str = "Your targets"
    sources: tuple[str, ...] = ()

    def get(self, measure: str, which: Literal["study", "user", "guide"]) -> Target | None:
        """The target of one kind for ``measure``, or None."""
        for t in getattr(self, which):
            if t.measure == measure:
                return cast(Target, t)
        return None

    def effective(self, measure: str) -> Target | None:
        """The target flags use: the user's if set, else the study's."""
        return self.get(measure, "user") or self.get(measure, "study")

    def with_user(self, mapping: Mapping[str, Any], *, source: str = "targets") -> FidelityTargets:
        """A copy with the user's targets read from a mapping (e.g. a parsed TOML file).

        Parameters
        ----------
        mapping : mapping
            ``measure = number`` (the measure's usual direction: at least, or at most for
            caseload and days to first contact) or ``measure = {min = .., max = ..}``;
            optional ``name`` and ``tolerance``. A ``[targets]`` table is also accepted.
        source : str
            File name, for error messages.

        Returns
        -------
        FidelityTargets
        """
        data = dict(mapping)
        if isinstance(data.get("targets"), Mapping):
            extra = {k: v for k, v in data.items() if k != "targets"}
            data = {**dict(data["targets"]), **extra}
        name = str(data.pop("name", self.name))
        tolerance = data.pop("tolerance", self.tolerance)
        problems = []
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, (int, float))
            or not 0 <= tolerance < 1
        ):
            problems.append(
                Problem(source, "tolerance", (), 0, f"{tolerance!r} is not allowed", "0 to 0.5")
            )
            tolerance = self.tolerance
        user = []
        for key, raw in data.items():
            if key not in MEASURES:
                problems.append(
                    Problem(
                        source,
                        str(key),
                        (),
                        0,
                        "unknown target",
                        "one of " + ", ".join(MEASURES) + ", name, tolerance",
                    )
                )
                continue
            low: Any
            high: Any
            if isinstance(raw, Mapping):
                bad = set(raw) - {"min", "max"}
                low, high = raw.get("min"), raw.get("max")
                if bad or (low is None and high is None):
                    problems.append(
                        Problem(source, key, (), 0, "not understood", "a number or {min, max}")
                    )
                    continue
            elif MEASURES[key].direction == "at_least":
                low, high = raw, None
            else:
                low, high = None, raw
            ok = True
            for v in (low, high):
                share = key in ("share_reached", "level2_time_share")
                if v is not None and (
                    isinstance(v, bool)
                    or not isinstance(v, (int, float))
                    or not math.isfinite(v)
                    or v < 0
                    or (share and v > 1)
                ):
                    expected = "a proportion between 0 and 1" if share else "a number >= 0"
                    problems.append(Problem(source, key, (), 0, f"{v!r} is not allowed", expected))
                    ok = False
            if ok and low is not None and high is not None and low > high:
                problems.append(Problem(source, key, (), 0, "min above max", "min <= max"))
                ok = False
            if ok:
                user.append(
                    Target(
                        key,
                        None if low is None else float(low),
                        None if high is None else float(high),
                        name,
                    )
                )
        if problems:
            raise DataValidationError(problems)
        return FidelityTargets(
            self.study, tuple(user), self.guide, float(tolerance), name, self.sources
        )

    def prorated(self, share: float) -> FidelityTargets:
        """A copy with the cumulative targets scaled to a share of the school year.

        Parameters
        ----------
        share : float
            Elapsed share of the school year, in (0, 1]; 1 leaves the targets as they are.

        Returns
        -------
        FidelityTargets
            Targets of :data:`PRORATED` measures multiplied by ``share`` and labelled so;
            rates, shares, caseloads and days to first contact are left unchanged.
        """
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        if share == 1:
            return self

        def scale(ts: tuple[Target, ...]) -> tuple[Target, ...]:
            return tuple(
                Target(
                    t.measure,
                    None if t.low is None else t.low * share,
                    None if t.high is None else t.high * share,
                    t.source,
                    share,
                )
                if t.measure in PRORATED
                else t
                for t in ts
            )

        return FidelityTargets(
            scale(self.study), scale(self.user), self.guide, self.tolerance, self.name, self.sources
        )

    def with_guide(self, guide: CaseloadGuide) -> FidelityTargets:
        """A copy with the practice guide's caseload range switched on (or off)."""
        check_option("caseload_guide", guide, ("none", "intensive", "standard"))
        pg = _package_targets()["practice_guide"]
        short = str(pg["short"])
        if guide == "intensive":
            g: tuple[Target, ...] = (Target("caseload", None, float(pg["intensive_max"]), short),)
        elif guide == "standard":
            g = (Target("caseload", float(pg["standard_min"]), float(pg["standard_max"]), short),)
        else:
            g = ()
        sources = tuple(s for s in self.sources if s != pg["source"])
        if g:
            sources += (str(pg["source"]),)
        return FidelityTargets(self.study, self.user, g, self.tolerance, self.name, sources)


def _package_targets() -> dict[str, Any]:
    text = (
        resources.files("cis_eval").joinpath("_resources/fidelity_targets.toml").read_text("utf-8")
    )
    return tomllib.loads(text)


def published_targets() -> FidelityTargets:
    """The published benchmarks of the CIS evaluation, shipped with cis_eval.

    Returns
    -------
    FidelityTargets
        About 19 contacts, 16 hours and 30 weeks of service per case-managed student,
        caseloads of about 84 and 44% of coordinator time on Level 2 (Corrin et al. 2015).

    Examples
    --------
    >>> import cis_eval as ce
    >>> t = ce.published_targets()
    >>> t.get("contacts", "study").describe()
    'at least 19'
    """
    data = _package_targets()
    study = data["study"]
    out = []
    for key, value in study["targets"].items():
        m = MEASURES[key]
        low, high = (float(value), None) if m.direction == "at_least" else (None, float(value))
        out.append(Target(key, low, high, str(study["short"])))
    return FidelityTargets(tuple(out), sources=(str(study["source"]),))
