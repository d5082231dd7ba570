"""Sample attrition and the WWC attrition standard.

:func:`attrition` computes overall and differential attrition per outcome and classifies
it against the WWC cautious or optimistic boundary, shipped as package data with its
provenance (:func:`attrition_boundaries`); :func:`max_differential_attrition` and
:func:`classify_attrition` read the boundary for one rate.

Source: the WWC Standards Handbook v4.1 (2020) Table II.1, the same boundaries as v5.0
(2022), as transcribed independently by two R code bases (see :func:`attrition_boundaries`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd

from .._core.design import assignment
from .._core.spec import resolve_outcomes
from .._typing import AttritionBoundary, BoolArray, FloatArray, check_option
from ..errors import EstimationError, OptionError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.privacy import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell
from ..present.results import ResultMixin
from ..present.table import Table, records
from ..schema import Outcome
from ._common import TOL, cell, check_students, outcome_values, population

__all__ = [
    "BOUNDARIES",
    "AttritionResult",
    "attrition",
    "attrition_boundaries",
    "classify_attrition",
    "max_differential_attrition",
]

BOUNDARIES: dict[str, str] = {
    "cautious": "cautious (the intervention may affect who stays in the sample)",
    "optimistic": "optimistic (attrition is unlikely to be related to the intervention)",
}
"""The WWC attrition boundaries; the review protocol picks one (cautious for dropout
prevention, where the program may change who stays)."""

_BOUNDARY_FILE = "wwc_attrition_boundaries.csv"


@functools.cache
def _boundary_table() -> pd.DataFrame:
    path = resources.files("cis_eval").joinpath("_resources", _BOUNDARY_FILE)
    with path.open("r", encoding="utf-8") as fh:
        tab = pd.read_csv(fh, comment="#", keep_default_na=False, na_values=[""])
    tab["confirmed"] = tab["confirmed"].map({"yes": True, "no": False}).astype(bool)
    return tab


def attrition_boundaries(boundary: AttritionBoundary | None = None) -> pd.DataFrame:
    """The WWC attrition boundary table shipped with cis_eval, with its provenance.

    Parameters
    ----------
    boundary : {"cautious", "optimistic"}, optional
        One boundary; both by default.

    Returns
    -------
    pandas.DataFrame
        Columns ``boundary, overall_attrition`` (whole percent), ``max_differential``
        (highest differential attrition, in percentage points, that is still low attrition),
        ``confirmed`` (two independent transcriptions of the handbook table agree),
        ``source`` and ``alternative_value`` (the other transcription's value where they
        disagree). A fresh copy.

    Notes
    -----
    The table is Table II.1 of the WWC Standards Handbook (v4.1; the same boundaries are
    used in v5.0). The **cautious** boundary (overall attrition 0-57%; 58% or more is high
    attrition for any differential) is confirmed: two independent transcriptions (the
    baselinr R package and the RWWC-v.4-Group-Designs R code) agree on every row. The
    **optimistic** boundary is confirmed for 0-12% only: above 12% the transcriptions
    disagree by one row, so those rows are marked unconfirmed and hold the lower (stricter)
    value, from baselinr's transcription (which also covers 58-65%); check them against
    the official handbook before relying on the optimistic boundary above 12% attrition.

    Examples
    --------
    >>> from cis_eval import attrition_boundaries
    >>> tab = attrition_boundaries("cautious")
    >>> tab.loc[tab["overall_attrition"] == 10, "max_differential"].item()
    6.3
    >>> bool(attrition_boundaries("optimistic")["confirmed"].iloc[13])
    False
    """
    tab = _boundary_table()
    if boundary is not None:
        check_option("boundary", boundary, BOUNDARIES)
        tab = tab[tab["boundary"] == boundary].reset_index(drop=True)
    return tab.copy()


def _lookup(overall: float, boundary: str) -> tuple[float, bool, str]:
    """Maximum differential at an overall rate (%), whether confirmed, and the rows used.

    The table is by whole percent. A rate between two rows takes the smaller maximum of
    the two (the conservative reading); a rate beyond the last row has no allowance (NaN).
    """
    if not np.isfinite(overall) or overall < -TOL or overall > 100 + TOL:
        raise OptionError(f"overall attrition must be a percentage in [0, 100], got {overall!r}")
    tab = _boundary_table()
    tab = tab[tab["boundary"] == boundary].set_index("overall_attrition")
    o = max(round(float(overall), 9), 0.0)
    lo, hi = math.floor(o), math.ceil(o)
    rows = f"{lo}%" if lo == hi else f"{lo}-{hi}%"
    if hi not in tab.index:
        return np.nan, True, rows
    val = min(
        float(cast(float, tab.at[lo, "max_differential"])),
        float(cast(float, tab.at[hi, "max_differential"])),
    )
    confirmed = bool(tab.at[lo, "confirmed"]) and bool(tab.at[hi, "confirmed"])
    return val, confirmed, rows


def max_differential_attrition(
    overall: float, *, boundary: AttritionBoundary = "cautious"
) -> float:
    """Highest differential attrition (pp) that is still low attrition at an overall rate.

    Parameters
    ----------
    overall : float
        Overall attrition in percent (0-100).
    boundary : {"cautious", "optimistic"}, default "cautious"
        The WWC boundary.

    Returns
    -------
    float
        Percentage points; NaN beyond the table (58% or more under the cautious boundary,
        more than 65% under the optimistic one): high attrition for any differential.

    Notes
    -----
    The WWC table is by whole percent of overall attrition. Between two rows cis_eval uses
    the smaller of the two maxima, which is never more lenient than rounding to the nearest
    row or using either neighbour.

    Examples
    --------
    >>> from cis_eval import max_differential_attrition
    >>> max_differential_attrition(10)
    6.3
    >>> max_differential_attrition(10.4)  # between the 10% (6.3) and 11% (6.2) rows
    6.2
    """
    check_option("boundary", boundary, BOUNDARIES)
    return _lookup(overall, boundary)[0]


def classify_attrition(
    overall: float, differential: float, *, boundary: AttritionBoundary = "cautious"
) -> str:
    """Low or high attrition by the WWC boundary.

    Parameters
    ----------
    overall : float
        Overall attrition in percent (0-100).
    differential : float
        Differential attrition in percentage points (its absolute value is used).
    boundary : {"cautious", "optimistic"}, default "cautious"
        The WWC boundary.

    Returns
    -------
    str
        ``"low"`` when the differential is at or below the boundary for the overall rate
        (see :func:`max_differential_attrition`), ``"high"`` otherwise.

    Examples
    --------
    >>> from cis_eval import classify_attrition
    >>> classify_attrition(30, 4.1), classify_attrition(30, 4.2)
    ('low', 'high')
    >>> classify_attrition(30, 6.0, boundary="optimistic")
    'low'
    """
    check_option("boundary", boundary, BOUNDARIES)
    if not np.isfinite(differential):
        raise OptionError(f"differential attrition must be a number, got {differential!r}")
    limit = _lookup(overall, boundary)[0]
    return "low" if np.isfinite(limit) and abs(differential) <= limit + TOL else "high"


@dataclass(frozen=True, slots=True)
class AttritionResult(ResultMixin):
    """Overall and differential attrition per outcome, classified by a WWC boundary.

    The tidy frame (``to_frame()``) has one row per outcome and the columns ``outcome,
    label, n_randomized, n_randomized_treatment, n_randomized_control, n_analytic,
    n_analytic_treatment, n_analytic_control, attrition_treatment, attrition_control,
    overall_attrition`` (percent), ``differential_attrition`` (percentage points, absolute),
    ``boundary, boundary_rows`` (whole-percent rows of the table used), ``max_differential``
    (pp; NaN beyond the table), ``boundary_confirmed, attrition_level`` (``low``/``high``).

    Attributes
    ----------
    boundary : str
        ``"cautious"`` or ``"optimistic"``.
    notes : tuple of str
        Randomized samples that differ from the whole table, unconfirmed boundary rows.
    """

    _tidy_field: ClassVar[str] = "_rows"
    _keys: ClassVar[tuple[str, ...]] = ("outcome",)

    _rows: pd.DataFrame = field(repr=False)
    boundary: str
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        lv = self._rows["attrition_level"]
        return (
            f"AttritionResult({len(self._rows)} outcomes, boundary={self.boundary}, "
            f"{int((lv == 'low').sum())} low / {int((lv == 'high').sum())} high)"
        )

    def table(self, *, min_cell: int = DEFAULT_MIN_CELL, title: str | None = None) -> Table:
        """Attrition by outcome with the WWC classification.

        Parameters
        ----------
        min_cell : int, default 10
            When an arm lost between 1 and ``min_cell - 1`` students, that outcome's
            figures are shown as ``*`` (its classification is kept); 1 shows everything.
        title : str, optional
            Table title.
        """
        k = check_min_cell(min_cell)
        rows = []
        suppressed = False
        unconfirmed = False
        for r in records(self._rows):
            lost = (
                r.n_randomized_treatment - r.n_analytic_treatment,
                r.n_randomized_control - r.n_analytic_control,
            )
            small = any(0 < c < k for c in lost)
            suppressed |= small
            unconfirmed |= not r.boundary_confirmed
            level = f"{r.attrition_level.capitalize()}" + (
                "" if r.boundary_confirmed else " (unconfirmed boundary)"
            )
            rows.append(
                {
                    "Outcome": r.label,
                    "Randomized": f"{r.n_randomized:,}",
                    "Analytic sample": SUPPRESSED if small else f"{r.n_analytic:,}",
                    "Program attrition (%)": cell(r.attrition_treatment, small),
                    "Control attrition (%)": cell(r.attrition_control, small),
                    "Overall (%)": cell(r.overall_attrition, small),
                    "Differential (pp)": cell(r.differential_attrition, small),
                    "Boundary (pp)": SUPPRESSED
                    if small
                    else (
                        f"{r.max_differential:.1f}"
                        if np.isfinite(r.max_differential)
                        else "any is high"
                    ),
                    "Attrition": level,
                }
            )
        notes = [
            "Attrition = share of randomized students without the outcome (each outcome has "
            "its own analytic sample). Differential = |program - control| attrition.",
            f"WWC {BOUNDARIES[self.boundary]} boundary (Standards Handbook Table II.1): low "
            "attrition when the differential is at or below the boundary for the overall "
            "rate. The table is by whole percent; between two rows the smaller boundary is "
            "used (conservative)."
            + (
                " At 58% overall attrition or more every sample is high attrition."
                if self.boundary == "cautious"
                else " Beyond 65% overall attrition every sample is high attrition."
            ),
        ]
        if unconfirmed:
            notes.append(_UNCONFIRMED_NOTE)
        if suppressed:
            notes.append(
                f"{SUPPRESSED} Suppressed to protect student privacy: an arm lost fewer than "
                f"{k} students."
            )
        notes += [n for n in self.notes if n != _UNCONFIRMED_NOTE]
        return Table(
            pd.DataFrame(rows),
            title=title or "Sample attrition and the WWC attrition standard",
            notes=tuple(notes),
        )

    def plot(self, ax: Any = None, *, labels: bool = True) -> Any:
        """Overall against differential attrition with the WWC boundaries.

        The chosen boundary's low-attrition region is shaded; the unconfirmed part of the
        optimistic boundary is dotted. Each outcome has its own marker, named in the legend
        when ``labels`` is true. Returns the matplotlib axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4.2))
        tab = _boundary_table()
        for name, color in (("cautious", "#00597c"), ("optimistic", "#8a8a8a")):
            t = tab[tab["boundary"] == name]
            conf = t[t["confirmed"]]
            ax.plot(
                conf["overall_attrition"],
                conf["max_differential"],
                color=color,
                lw=1.6,
                label=f"{name} boundary",
            )
            unc = t[~t["confirmed"] | (t["overall_attrition"] == conf["overall_attrition"].max())]
            if len(unc) > 1:
                ax.plot(
                    unc["overall_attrition"],
                    unc["max_differential"],
                    color=color,
                    lw=1.2,
                    ls=":",
                    label=f"{name} (unconfirmed)",
                )
            if name == self.boundary:
                ax.fill_between(
                    t["overall_attrition"], 0, t["max_differential"], color=color, alpha=0.12, lw=0
                )
        r = self._rows
        markers = "osD^vP*Xh<>p"
        for i, row in enumerate(records(r)):
            ax.scatter(
                [row.overall_attrition],
                [row.differential_attrition],
                marker=markers[i % len(markers)],
                color="#a03000",
                zorder=3,
                label=row.label if labels else None,
            )
        ax.set_xlim(0, max(66.0, float(r["overall_attrition"].max()) + 2))
        ax.set_ylim(0, max(12.0, float(r["differential_attrition"].max()) + 1))
        ax.set_xlabel("Overall attrition (%)")
        ax.set_ylabel("Differential attrition (percentage points)")
        ax.legend(frameon=False, fontsize=8)
        return ax


_UNCONFIRMED_NOTE = (
    "The optimistic boundary above 12% overall attrition is unconfirmed: two transcriptions "
    "of the WWC table disagree by one row there, and cis_eval uses the stricter value. Check "
    "it against the official Standards Handbook before relying on it."
)


def attrition(
    students: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    boundary: AttritionBoundary = "cautious",
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> AttritionResult:
    r"""Overall and differential attrition per outcome, classified by the WWC boundary.

    Parameters
    ----------
    students : pandas.DataFrame
        One row per randomized student (every row is randomized). Not modified.
    outcomes : sequence of str or Outcome, optional
        Outcomes (columns, or the study's outcomes derived from raw fields); default the
        study's six that the data have.
    treatment : str, default "treatment"
        Assignment column: 1 = program group, 0 = control group.
    boundary : {"cautious", "optimistic"}, default "cautious"
        The WWC boundary. Cautious is the right choice when the program may affect who
        stays in the sample (dropout prevention, attendance); the review protocol decides.
        The optimistic boundary above 12% overall attrition is unconfirmed (see
        :func:`attrition_boundaries`).
    chronic_threshold : float, default 0.10
        Absence share that counts as chronic, when chronic absence is derived here.

    Returns
    -------
    AttritionResult
        ``to_frame()``, ``table()`` and ``plot()``.

    Raises
    ------
    OptionError
        A ``boundary`` that is not an option, or an empty or repeated outcome list.
    EstimationError
        A missing or non-binary assignment, or an unknown outcome.

    Notes
    -----
    Overall attrition :math:`= 100(1 - n_{analytic}/n_{randomized})`; differential
    attrition :math:`= 100|a_T - a_C|` with :math:`a` each arm's attrition. An outcome
    defined for part of the sample (core credits: high school students) uses that part as
    its randomized sample. Low attrition when the differential is at or below the boundary
    for the overall rate; the table is by whole percent and a rate between two rows takes
    the smaller of their two boundaries (conservative); beyond the last row (58% under the
    cautious boundary, 65% under the optimistic one) attrition is always high.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=800, n_schools=10)
    >>> att = ce.attrition(trial.students, outcomes=["chronic_absence"])
    >>> att.to_frame()[["outcome", "boundary"]].values.tolist()
    [['chronic_absence', 'cautious']]
    """
    students = check_students(students)
    check_option("boundary", boundary, BOUNDARIES)
    z = assignment(students, treatment)
    notes: list[str] = []
    rows = []
    for meta in resolve_outcomes(students, outcomes):
        o, y = outcome_values(students, meta, chronic_threshold)
        pop, note = population(students, o)
        if note:
            notes.append(note)
        kept = pop & ~np.isnan(y)
        row = _attrition_row(o, z, pop, kept, boundary)
        if not row["boundary_confirmed"]:
            notes.append(_UNCONFIRMED_NOTE)
        rows.append(row)
    return AttritionResult(
        _rows=pd.DataFrame(rows), boundary=boundary, notes=tuple(dict.fromkeys(notes))
    )


def _attrition_row(
    o: Outcome, z: FloatArray, randomized: BoolArray, kept: BoolArray, boundary: str
) -> dict[str, Any]:
    counts = {}
    for arm, value in (("treatment", 1.0), ("control", 0.0)):
        counts[f"n_randomized_{arm}"] = int(np.count_nonzero(randomized & (z == value)))
        counts[f"n_analytic_{arm}"] = int(np.count_nonzero(kept & (z == value)))
    for arm in ("treatment", "control"):
        if counts[f"n_randomized_{arm}"] == 0:
            raise EstimationError(
                f"outcome '{o.name}': no {'program' if arm == 'treatment' else 'control'} "
                "student was randomized for this outcome; attrition needs both groups"
            )
    n_r = counts["n_randomized_treatment"] + counts["n_randomized_control"]
    n_a = counts["n_analytic_treatment"] + counts["n_analytic_control"]
    a_t = (
        100.0
        * (counts["n_randomized_treatment"] - counts["n_analytic_treatment"])
        / counts["n_randomized_treatment"]
    )
    a_c = (
        100.0
        * (counts["n_randomized_control"] - counts["n_analytic_control"])
        / counts["n_randomized_control"]
    )
    overall = 100.0 * (n_r - n_a) / n_r
    diff = abs(a_t - a_c)
    limit, confirmed, used = _lookup(overall, boundary)
    level = "low" if np.isfinite(limit) and diff <= limit + TOL else "high"
    return {
        "outcome": o.name,
        "label": o.label,
        "n_randomized": n_r,
        "n_randomized_treatment": counts["n_randomized_treatment"],
        "n_randomized_control": counts["n_randomized_control"],
        "n_analytic": n_a,
        "n_analytic_treatment": counts["n_analytic_treatment"],
        "n_analytic_control": counts["n_analytic_control"],
        "attrition_treatment": a_t,
        "attrition_control": a_c,
        "overall_attrition": overall,
        "differential_attrition": diff,
        "boundary": boundary,
        "boundary_rows": used,
        "max_differential": limit,
        "boundary_confirmed": confirmed,
        "attrition_level": level,
    }
