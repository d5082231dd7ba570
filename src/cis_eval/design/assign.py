"""Random assignment: complete randomization within blocks (schools), with an audit trail."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._typing import rng_from
from ..errors import DataValidationError, DesignError, OptionError, OptionTypeError, Problem

__all__ = ["Assignment", "assign", "verify_assignment"]

PROCEDURE = "complete random assignment within blocks"


def _digest(*columns: pd.Series) -> str:
    """Order-free fingerprint of rows (hashes only, so no identifier is stored).

    Each row is hashed with pandas' fixed-key hash, the row hashes are sorted and the
    sorted bytes are hashed with SHA-256: the same rows in any order give the same digest.
    """
    frame = pd.concat([c.astype(str).reset_index(drop=True) for c in columns], axis=1)
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(np.sort(rows).tobytes()).hexdigest()


def _treated_counts(
    sizes: pd.Series, p: float | None, n_treat: int | Mapping[Any, int] | None
) -> pd.Series:
    if (p is None) == (n_treat is None):
        raise OptionError("give exactly one of p (share treated) or n_treat (count per block)")
    if p is not None:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.number)):
            raise OptionTypeError(f"p must be a number (the share treated), got {p!r}")
        if not 0 < p < 1:
            raise OptionError(
                f"p must be strictly between 0 and 1 (the share treated in each block), got {p!r}"
            )
        # Round half up, so the count is deterministic and documented: floor(p*n + 0.5).
        counts: pd.Series = np.floor(sizes * p + 0.5).astype(int)
        return counts
    if isinstance(n_treat, Mapping):
        missing = [b for b in sizes.index if b not in n_treat]
        if missing:
            raise OptionError(f"n_treat has no count for {len(missing)} block(s)")
        counts = pd.Series({b: int(n_treat[b]) for b in sizes.index})
    else:
        counts = pd.Series(int(n_treat), index=sizes.index)  # type: ignore[arg-type]
    bad = (counts < 0) | (counts > sizes)
    if bad.any():
        raise OptionError(
            f"n_treat must lie between 0 and the block size; {int(bad.sum())} block(s) break this"
        )
    return counts


@dataclass(frozen=True, slots=True)
class Assignment:
    """Result of :func:`assign`: the assigned roster and the audit trail of the lottery.

    Attributes
    ----------
    data : pandas.DataFrame
        The input roster with ``treatment`` (0/1) and ``assignment_probability`` added.
    audit : dict
        Seed, procedure, block column, share or counts, per-block counts and fingerprints
        of the roster and of the result. Save it with the roster; :func:`verify_assignment`
        re-runs the lottery from it.
    """

    data: pd.DataFrame = field(repr=False)
    audit: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        n = len(self.data)
        k = int(self.data["treatment"].sum())
        return f"Assignment({n:,} students, {k:,} treated, {self.audit['n_blocks']} blocks)"

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the assigned roster."""
        return self.data.copy()

    def counts(self) -> pd.DataFrame:
        """Per-block counts: students, treated, control and the assignment probability."""
        return pd.DataFrame(self.audit["blocks"]).set_index("block")

    def audit_json(self) -> str:
        """The audit trail as deterministic JSON text (sorted keys, no timestamps)."""
        return json.dumps(self.audit, sort_keys=True, indent=2)


def assign(
    students: pd.DataFrame,
    *,
    seed: int | np.random.Generator,
    block: str = "school_id",
    p: float | None = 0.5,
    n_treat: int | Mapping[Any, int] | None = None,
    id_column: str = "student_id",
    treatment: str = "treatment",
) -> Assignment:
    """Randomly assign students to program or control within each block.

    Complete random assignment: in each block of ``n`` students exactly
    ``floor(p * n + 0.5)`` (or the given ``n_treat``) are assigned to the program, every
    such set being equally likely. The draw depends only on the seed and on the set of
    (block, student ID) pairs, not on row order, so the lottery can be re-run and checked.

    Parameters
    ----------
    students : pandas.DataFrame
        Roster with one row per eligible student. Not modified.
    seed : int or numpy.random.Generator
        Seed of the lottery; record it (it is stored in the audit trail).
    block : str, default "school_id"
        Column naming the randomization block.
    p : float, default 0.5
        Share assigned to the program in each block. Set ``p=None`` to use ``n_treat``.
    n_treat : int or mapping, optional
        Number to treat in every block, or a mapping block -> number.
    id_column : str, default "student_id"
        Column with unique student identifiers.
    treatment : str, default "treatment"
        Name of the assignment column written.

    Returns
    -------
    Assignment
        The roster with ``treatment`` and ``assignment_probability`` and the audit trail.

    Raises
    ------
    OptionError
        ``p`` outside (0, 1), counts outside 0 to the block size, a bad seed, or both or
        neither of ``p`` and ``n_treat``.
    DesignError
        If the roster is empty, identifiers repeat or a block is too small to have both
        arms.

    See Also
    --------
    verify_assignment : re-run a lottery from its audit trail.

    Examples
    --------
    >>> import pandas as pd
    >>> from cis_eval import assign
    >>> roster = pd.DataFrame({"student_id": [f"s{i}" for i in range(10)],
    ...                        "school_id": ["A"] * 6 + ["B"] * 4})
    >>> a = assign(roster, p=0.5, seed=7)
    >>> a.counts()["n_treated"].tolist()
    [3, 2]
    """
    for col in (block, id_column):
        if col not in students.columns:
            raise DesignError(f"the roster has no column '{col}'")
    if len(students) == 0:
        raise DesignError("the roster has no students: there is no one to assign")
    if students[block].isna().any():
        raise DesignError(f"column '{block}': {int(students[block].isna().sum())} empty value(s)")
    if students[id_column].duplicated().any():
        raise DesignError(
            f"column '{id_column}': {int(students[id_column].duplicated().sum())} duplicated "
            "student identifier(s); each student may be randomized once"
        )
    if p is not None and n_treat is not None:
        p = None  # an explicit count wins over the default share
    rng = rng_from(seed)
    block_str = students[block].astype(str).reset_index(drop=True)
    id_str = students[id_column].astype(str).reset_index(drop=True)
    # Canonical order (block, then a fixed-key hash of the ID), so row order cannot matter.
    id_hash = pd.util.hash_pandas_object(id_str, index=False).to_numpy()
    block_codes, _ = pd.factorize(block_str, sort=True)
    order = np.lexsort((id_hash, block_codes))
    codes, uniques = pd.factorize(block_str.to_numpy()[order], sort=False)
    sizes = pd.Series(np.bincount(codes), index=uniques)
    counts = _treated_counts(sizes, p, n_treat)
    u = rng.random(len(order))
    # Rank students within block by a uniform key: the first k are treated.
    within = np.lexsort((u, codes))
    rank = np.empty(len(order), dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes.to_numpy())[:-1]))
    rank[within] = np.arange(len(order)) - np.repeat(starts, sizes.to_numpy())
    treated_sorted = rank < counts.to_numpy()[codes]
    z = np.empty(len(order), dtype=np.int64)
    z[order] = treated_sorted
    prob = np.empty(len(order))
    prob[order] = (counts / sizes).to_numpy()[codes]
    out = students.copy()
    out[treatment] = z
    out["assignment_probability"] = prob
    blocks = [
        {
            "block": str(b),
            "n": int(sizes[b]),
            "n_treated": int(counts[b]),
            "n_control": int(sizes[b] - counts[b]),
            "probability": float(counts[b] / sizes[b]),
        }
        for b in uniques
    ]
    audit: dict[str, Any] = {
        "procedure": PROCEDURE,
        "seed": int(seed) if not isinstance(seed, np.random.Generator) else None,
        "rng": "numpy.random.default_rng (PCG64)",
        "block": block,
        "id_column": id_column,
        "p": p,
        "n_treat": None
        if n_treat is None
        else (dict(n_treat) if isinstance(n_treat, Mapping) else int(n_treat)),
        "rounding": "floor(p * n + 0.5)" if p is not None else "given counts",
        "n_students": len(students),
        "n_blocks": len(uniques),
        "n_treated": int(z.sum()),
        "roster_sha256": _digest(block_str, id_str),
        "assignment_sha256": _digest(id_str, pd.Series(z)),
        "blocks": blocks,
    }
    return Assignment(data=out, audit=audit)


def verify_assignment(students: pd.DataFrame, audit: Mapping[str, Any]) -> bool:
    """Re-run a lottery from its audit trail and check it gives the recorded assignment.

    Parameters
    ----------
    students : pandas.DataFrame
        The roster as randomized, including the recorded ``treatment`` column.
    audit : mapping
        The audit trail saved from :attr:`Assignment.audit`.

    Returns
    -------
    bool
        True when the roster matches the recorded fingerprint and re-running the lottery
        with the recorded seed reproduces every student's assignment.

    Examples
    --------
    >>> import pandas as pd
    >>> from cis_eval import assign, verify_assignment
    >>> roster = pd.DataFrame({"student_id": list("abcdef"), "school_id": list("AAABBB")})
    >>> a = assign(roster, p=0.5, seed=3)
    >>> verify_assignment(a.to_frame(), a.audit)
    True
    """
    if audit.get("seed") is None:
        raise OptionError(
            "this audit trail was made with a Generator, not a seed; it cannot be re-run"
        )
    block, id_column = audit["block"], audit["id_column"]
    n_treat = audit.get("n_treat")
    rerun = assign(
        students.drop(columns=["treatment", "assignment_probability"], errors="ignore"),
        seed=int(audit["seed"]),
        block=block,
        p=audit.get("p"),
        n_treat=n_treat,
        id_column=id_column,
    )
    same_roster = rerun.audit["roster_sha256"] == audit["roster_sha256"]
    same_draw = rerun.audit["assignment_sha256"] == audit["assignment_sha256"]
    if "treatment" in students.columns:
        # a roster read back from a file has the assignment as text ("1"/"0")
        recorded = pd.to_numeric(students["treatment"].astype("string"), errors="coerce")
        if recorded.isna().any():
            rows = tuple(int(i) + 1 for i in np.flatnonzero(recorded.isna().to_numpy())[:5])
            raise DataValidationError(
                [
                    Problem(
                        source="roster",
                        column="treatment",
                        rows=rows,
                        n_rows=int(recorded.isna().sum()),
                        message="value(s) are not 0 or 1, so the recorded assignment cannot "
                        "be checked",
                        expected="0 (control) or 1 (program)",
                    )
                ]
            )
        same_draw = same_draw and bool(
            np.array_equal(recorded.to_numpy(dtype=float), rerun.data["treatment"].to_numpy())
        )
    return bool(same_roster and same_draw)
