"""Derive the six analysis outcomes from the raw outcome fields of the students table."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ._typing import FloatArray
from .schema import OUTCOME_NAMES

__all__ = ["DEFAULT_CHRONIC_THRESHOLD", "derive_outcomes", "outcome_arrays"]

DEFAULT_CHRONIC_THRESHOLD = 0.10
"""Missing at least 10% of enrolled days: the common federal definition."""


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def derive_outcomes(
    students: pd.DataFrame, *, chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD
) -> pd.DataFrame:
    """Add the six analysis outcomes to a copy of a students table.

    Parameters
    ----------
    students : pandas.DataFrame
        A students table with the raw outcome fields of the data contract.
    chronic_threshold : float, default 0.10
        A student is chronically absent when absent for at least this share of enrolled
        days. 0.10 is the common federal definition; MDRC's early project page used 0.20.

    Returns
    -------
    pandas.DataFrame
        A copy of ``students`` with the columns ``chronic_absence``, ``attendance_rate``,
        ``core_course_failure``, ``core_credits``, ``core_gpa`` and ``suspensions``.
        An outcome is missing (NaN) where any raw field it needs is missing.

    Notes
    -----
    * attendance rate = days present / days enrolled (a proportion);
    * chronically absent = 1 if (days enrolled - days present) / days enrolled
      >= ``chronic_threshold``;
    * failed any core course = 1 if at least one core course was failed (missing when no
      core course was taken);
    * core credits = core credits earned, defined for high school students only (credits
      are not awarded in middle school, so the value is set to missing there);
    * core GPA = average core course mark on the 0-4 scale;
    * suspensions = in-school + out-of-school suspensions.

    Examples
    --------
    >>> import pandas as pd
    >>> from cis_eval import derive_outcomes
    >>> raw = pd.DataFrame({"school_level": ["high"], "days_enrolled": [180],
    ...     "days_present": [160], "core_courses_taken": [8], "core_courses_failed": [1],
    ...     "core_credits_earned": [3.5], "core_gpa": [2.1], "suspensions_iss": [1],
    ...     "suspensions_oss": [0]})
    >>> out = derive_outcomes(raw)
    >>> float(round(out.loc[0, "attendance_rate"], 3)), float(out.loc[0, "chronic_absence"])
    (0.889, 1.0)
    """
    derived = outcome_arrays(students, chronic_threshold=chronic_threshold)
    out = students.copy()
    for name in OUTCOME_NAMES:
        out[name] = derived[name]
    return out


def outcome_arrays(
    students: pd.DataFrame,
    names: Iterable[str] = OUTCOME_NAMES,
    *,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> dict[str, FloatArray]:
    """Derive some of the six outcomes as float arrays (NaN where undefined), without a copy.

    The estimators call this so a million-row table is not copied to add six columns.
    See :func:`derive_outcomes` for the definitions.
    """
    if not 0 < chronic_threshold < 1:
        raise ValueError(
            f"chronic_threshold must be a share of days strictly between 0 and 1, got "
            f"{chronic_threshold!r} (10% is written 0.10)"
        )
    out: dict[str, FloatArray] = {}
    for name in names:
        if name in ("chronic_absence", "attendance_rate"):
            enrolled = _num(students, "days_enrolled")
            present = _num(students, "days_present")
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = np.where(enrolled > 0, present / enrolled, np.nan)
                # Compare in days, not rates, so 18 of 180 days is exactly 10%.
                chronic = np.where(
                    np.isnan(rate),
                    np.nan,
                    ((enrolled - present) >= chronic_threshold * enrolled - 1e-9) * 1.0,
                )
            out[name] = chronic if name == "chronic_absence" else rate
        elif name == "core_course_failure":
            taken = _num(students, "core_courses_taken")
            failed = _num(students, "core_courses_failed")
            out[name] = np.where(
                np.isnan(taken) | np.isnan(failed) | (taken <= 0), np.nan, failed > 0
            ).astype(float)
        elif name == "core_credits":
            credits = _num(students, "core_credits_earned")
            if "school_level" in students.columns:
                high = students["school_level"].astype("string").eq("high").fillna(False)
                credits = np.where(high.to_numpy(dtype=bool), credits, np.nan)
            out[name] = credits
        elif name == "core_gpa":
            out[name] = _num(students, "core_gpa")
        elif name == "suspensions":
            out[name] = _num(students, "suspensions_iss") + _num(students, "suspensions_oss")
        else:
            raise KeyError(f"unknown outcome {name!r}; known outcomes: {', '.join(OUTCOME_NAMES)}")
    return out
