"""Inputs and number formats shared by the integrity checks (private)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._core.design import numeric, outcome_meta
from .._core.spec import derivable
from .._typing import BoolArray, FloatArray, IntArray
from ..errors import EstimationError, OptionTypeError
from ..outcomes import outcome_arrays
from ..present.privacy import SUPPRESSED
from ..schema import COLUMNS, Outcome

__all__ = [
    "TOL",
    "cell",
    "check_students",
    "label",
    "num",
    "outcome_values",
    "population",
    "school_codes",
    "schools_with_both",
]

TOL = 1e-9
"""Floating-point slack when comparing with a boundary: 0.05 computed as 0.0500000001 is on
the boundary, and a differential of 1.4 computed as 1.4000000000000001 is too."""


def check_students(students: object) -> pd.DataFrame:
    """The students table, or an error for a non-frame or an empty one."""
    if not isinstance(students, pd.DataFrame):
        raise OptionTypeError(f"students must be a pandas DataFrame, got {type(students).__name__}")
    if len(students) == 0:
        raise EstimationError("the data have no rows")
    return students


def school_codes(students: pd.DataFrame, block: str) -> IntArray:
    """Integer codes of the randomization blocks, or an error naming the column."""
    if block not in students.columns:
        raise EstimationError(f"the data have no block column '{block}'")
    blk = students[block]
    if blk.isna().any():
        raise EstimationError(f"column '{block}': {int(blk.isna().sum())} empty value(s)")
    codes, _ = pd.factorize(blk, sort=True)
    return codes.astype(np.int64)


def outcome_values(
    students: pd.DataFrame, outcome: str | Outcome, chronic_threshold: float
) -> tuple[Outcome, FloatArray]:
    """An outcome's metadata and values (NaN where missing), derived from raw fields if needed."""
    o = outcome_meta(outcome, students)
    if o.name in students.columns:
        return o, numeric(students, o.name, "outcome")
    if derivable(o, students):
        return o, outcome_arrays(students, [o.name], chronic_threshold=chronic_threshold)[o.name]
    missing = [c for c in o.raw if c not in students.columns]
    raise EstimationError(
        f"outcome '{o.name}' is not a column of the data and cannot be derived"
        + (f": raw field(s) {', '.join(missing)} missing" if missing else "")
    )


def population(students: pd.DataFrame, o: Outcome) -> tuple[BoolArray, str | None]:
    """The randomized students for whom an outcome is defined (core credits: high school)."""
    everyone = np.ones(len(students), dtype=bool)
    if o.population == "all":
        return everyone, None
    if "school_level" not in students.columns:
        return everyone, (
            f"{o.label}: defined for {o.population} school students only, but the data have "
            "no 'school_level' column; every randomized student counts as randomized for it."
        )
    level = students["school_level"].astype("string").str.strip().str.lower()
    mask = level.eq(o.population).fillna(False).to_numpy(dtype=bool)
    return mask, (
        f"{o.label}: defined for {o.population} school students only; its randomized sample "
        f"is the {int(mask.sum()):,} {o.population} school students."
    )


def schools_with_both(school: IntArray, z: FloatArray) -> int:
    """Schools with students of both arms."""
    if school.size == 0:
        return 0
    n_s = np.bincount(school)
    t_s = np.bincount(school, weights=z)
    return int(((t_s > 0) & (t_s < n_s)).sum())


def label(column: str) -> str:
    """A column's label in the data contract, or its name."""
    col = COLUMNS["students"].get(column)
    return col.label if col is not None else column


def num(v: float, spec: str) -> str:
    """A number in a format, or empty when missing."""
    return format(v, spec) if v is not None and np.isfinite(v) else ""


def cell(v: float, hide: bool, spec: str = ".1f") -> str:
    """A table cell: the suppression mark when hidden, else the number."""
    return SUPPRESSED if hide else num(v, spec)
