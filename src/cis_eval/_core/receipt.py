"""Receipt of services: the "treatment received" indicator of a CACE (private module).

Estimation needs it to instrument receipt with random assignment, and fidelity reports
its first stage, so it lives here, below both stages: estimation never imports fidelity.
The two helpers on identifier columns are shared with fidelity's input checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataValidationError, OptionError, OptionTypeError, Problem

__all__ = ["id_text", "require_columns", "service_receipt"]


def require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """Raise one :class:`~cis_eval.errors.DataValidationError` listing every missing column.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to check; its ``attrs["source"]`` names it in messages when set.
    columns : sequence of str
        The columns it must have.
    name : str
        Name of the table when ``frame`` carries no source.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        source = str(frame.attrs.get("source", name))
        raise DataValidationError(
            [
                Problem(source, c, (), 0, "required column is missing", f"a column named '{c}'")
                for c in missing
            ]
        )


def id_text(s: pd.Series) -> pd.Series:
    """Identifiers as stripped text, whatever their dtype (categorical, numbers, strings).

    Parameters
    ----------
    s : pandas.Series
        Identifier column.

    Returns
    -------
    pandas.Series
        ``string`` dtype; empty cells are missing.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    out = s.astype("string").str.strip()
    return out.mask(out.eq(""))


def service_receipt(
    students: pd.DataFrame,
    contacts: pd.DataFrame,
    *,
    min_contacts: int = 1,
    tier: int = 2,
) -> pd.Series:
    """Whether each student received services: at least ``min_contacts`` logged contacts.

    This is the "treatment received" indicator that random assignment instruments in a
    complier average causal effect (CACE) estimate; raising ``min_contacts`` defines
    receipt as a minimum dose (e.g. 10 contacts).

    Parameters
    ----------
    students : pandas.DataFrame
        The students table; needs ``student_id``.
    contacts : pandas.DataFrame
        The contacts log; needs ``student_id`` and ``tier``.
    min_contacts : int, default 1
        Contacts of the given tier a student needs to count as served (at least 1).
    tier : {2, 1}, default 2
        2 counts Level 2 (case-managed) contacts; 1 counts school-wide contacts.

    Returns
    -------
    pandas.Series
        0/1 ``int64`` named ``received_services``, aligned to ``students.index``.
        Students with no contacts get 0.

    Raises
    ------
    OptionError
        If ``min_contacts`` is below 1 or ``tier`` is not 1 or 2
        (:class:`~cis_eval.errors.OptionTypeError` if ``min_contacts`` is not an integer).
    DataValidationError
        If a required column is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> import cis_eval as ce
    >>> students = pd.DataFrame({"student_id": ["a", "b", "c"]})
    >>> log = pd.DataFrame({"student_id": ["a", "a", "b"], "tier": [2, 2, 1]})
    >>> ce.service_receipt(students, log).tolist()
    [1, 0, 0]
    >>> ce.service_receipt(students, log, min_contacts=3).tolist()
    [0, 0, 0]
    """
    if isinstance(min_contacts, bool) or not isinstance(min_contacts, (int, np.integer)):
        raise OptionTypeError(f"min_contacts must be an integer, got {type(min_contacts).__name__}")
    if min_contacts < 1:
        raise OptionError(f"min_contacts must be at least 1, got {min_contacts}")
    if isinstance(tier, bool) or tier not in (1, 2):
        raise OptionError(f"tier={tier!r} is not an option; choose 1 or 2")
    require_columns(students, ("student_id",), "students")
    require_columns(contacts, ("student_id", "tier"), "contacts")
    tiers = pd.to_numeric(contacts["tier"], errors="coerce")
    ids = contacts["student_id"][tiers.eq(tier).fillna(False).to_numpy()]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        # Count on the codes: fast for long logs, then label with the categories as text.
        counts = ids.value_counts(sort=False)
        counts.index = id_text(pd.Series(counts.index.astype(object), dtype=object))
    else:
        counts = id_text(ids).value_counts(sort=False)
    counts = counts.groupby(level=0).sum()
    n = id_text(students["student_id"]).map(counts).fillna(0).to_numpy(dtype=np.int64)
    return pd.Series(
        (n >= min_contacts).astype(np.int64), index=students.index, name="received_services"
    )
