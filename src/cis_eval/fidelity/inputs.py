"""Fidelity's inputs: the roster and staff columns it uses, from validated tables.

:func:`cis_eval.fidelity` validates its tables with :func:`cis_eval.validate` (the
fidelity contract: a program roster needs only ``student_id`` and ``school_id``) before
it calls these functions, so nothing here coerces or drops a value: they only select the
columns fidelity uses and give them the types DuckDB joins on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._core.receipt import id_text, require_columns

__all__ = ["has_control", "roster_frame", "roster_ids", "staff_frame"]


def _dates(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.datetime64("NaT"), dtype="datetime64[s]")
    return np.asarray(pd.to_datetime(frame[column]).astype("datetime64[s]").to_numpy())


def roster_frame(students: pd.DataFrame) -> pd.DataFrame:
    """The student columns fidelity uses, from a validated roster or students table.

    Parameters
    ----------
    students : pandas.DataFrame
        The program roster (or a trial's students table), validated.

    Returns
    -------
    pandas.DataFrame
        ``_pos`` (row position), ``student_id``, ``school_id``, ``treatment`` (1 for
        every student of a roster without one: all are program students),
        ``assignment_date`` (random assignment, trials only), ``start_date`` (random
        assignment in a trial, else the start of services: what days to first contact
        count from) and ``exit_date`` (missing where the table has none).
    """
    if not isinstance(students, pd.DataFrame):
        raise TypeError(f"students must be a pandas DataFrame, got {type(students).__name__}")
    require_columns(students, ("student_id", "school_id"), "students")
    n = len(students)
    if "treatment" in students.columns:
        z = pd.to_numeric(students["treatment"]).to_numpy(dtype=np.int64, na_value=1)
    else:
        z = np.ones(n, dtype=np.int64)
    assigned = _dates(students, "assignment_date")
    start = np.where(np.isnat(assigned), _dates(students, "service_start"), assigned)
    return pd.DataFrame(
        {
            "_pos": np.arange(n, dtype=np.int64),
            "student_id": id_text(students["student_id"]).to_numpy(dtype=object),
            "school_id": id_text(students["school_id"]).to_numpy(dtype=object),
            "treatment": z,
            "assignment_date": assigned,
            "start_date": start.astype("datetime64[s]"),
            "exit_date": _dates(students, "exit_date"),
        }
    )


def roster_ids(ids: pd.Series) -> np.ndarray:
    """Identifiers as trimmed text (None where missing), as the log's keys are compared."""
    return np.asarray(id_text(ids).to_numpy(dtype=object))


def has_control(students: pd.DataFrame) -> bool:
    """Whether the table has a control group (a trial), rather than program students only."""
    if "treatment" not in students.columns:
        return False
    return bool((pd.to_numeric(students["treatment"]) == 0).any())


def staff_frame(coordinators: pd.DataFrame | None) -> pd.DataFrame:
    """The coordinators table as fidelity uses it: one row per coordinator and school.

    Parameters
    ----------
    coordinators : pandas.DataFrame or None
        The validated coordinators table, if any. A coordinator who serves several
        schools has one row per school, with the FTE share there.

    Returns
    -------
    pandas.DataFrame
        ``coordinator_id``, ``school_id``, ``fte``, ``reported_caseload`` and
        ``level2_time_share`` (empty when no table is given). No row is dropped.
    """
    cols = ["coordinator_id", "school_id", "fte", "reported_caseload", "level2_time_share"]
    if coordinators is None:
        return pd.DataFrame({c: pd.Series(dtype=object if "_id" in c else float) for c in cols})
    if not isinstance(coordinators, pd.DataFrame):
        raise TypeError(
            f"coordinators must be a pandas DataFrame, got {type(coordinators).__name__}"
        )
    require_columns(coordinators, ("coordinator_id",), "coordinators")
    k = coordinators
    out = pd.DataFrame({"coordinator_id": id_text(k["coordinator_id"]).to_numpy(dtype=object)})
    out["school_id"] = id_text(k["school_id"]).to_numpy(dtype=object) if "school_id" in k else None
    for src, dst in (
        ("fte", "fte"),
        ("caseload", "reported_caseload"),
        ("level2_time_share", "level2_time_share"),
    ):
        out[dst] = (
            pd.to_numeric(k[src]).to_numpy(dtype=float, na_value=np.nan) if src in k else np.nan
        )
    return out
