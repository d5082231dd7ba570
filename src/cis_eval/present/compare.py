"""Several impact results side by side, one column per model (pyfixest ``etable``, Stata ``esttab``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import OptionError, OptionTypeError
from .table import Table

__all__ = ["compare"]

_STARS = ((0.01, "***"), (0.05, "**"), (0.10, "*"))
_FOOTER = ("Students", "Estimand", "Standard errors", "Covariates")


def _spec(result: object, frame: pd.DataFrame, name: str) -> str:
    """A specification entry from the result's attributes, else its tidy frame."""
    value = getattr(result, name, None)
    if not (isinstance(value, str) and value) and name in frame.columns:
        values = frame[name].dropna().astype(str).unique()
        value = str(values[0]) if len(values) == 1 else None
    if not (isinstance(value, str) and value) and name == "estimand" and "model" in frame:
        # a result of nonlinear models (sensitivity) names its models instead
        value = "/".join(dict.fromkeys(frame["model"].dropna().astype(str)))
    if not isinstance(value, str):
        return ""
    # a described estimand ("complier average causal effect (school fixed effects, 2SLS)")
    # keeps its name; the table's notes and the result's own table give the rest
    return value.split(" (")[0]


def _students(result: object, frame: pd.DataFrame) -> str:
    n = getattr(result, "n_students", None)
    if isinstance(n, (int, np.integer)):
        return f"{int(n):,}"
    if "n" in frame.columns and frame["n"].notna().any():
        return f"{int(frame['n'].max()):,}"
    return ""


def _covariates(result: object, frame: pd.DataFrame) -> str:
    # The specification the result keeps (its ``spec``) says what the model adjusted for;
    # a result without one falls back on its tidy frame's ``covariates`` column.
    spec = getattr(result, "spec", result)
    covs = getattr(spec, "covariates", None)
    if isinstance(covs, Mapping):
        used = any(len(v) for v in covs.values())
    elif "covariates" in frame.columns:
        used = bool(frame["covariates"].fillna("").astype(str).str.len().gt(0).any())
    else:
        return ""
    if not used:
        return "No"
    return "Yes, interacted" if getattr(spec, "lin", False) is True else "Yes"


@dataclass(frozen=True)
class _Model:
    """One column of the comparison: a result's tidy frame and its cells by row key."""

    frame: pd.DataFrame
    cells: dict[tuple[tuple[str, str], ...], tuple[str, float, float, float]]
    """(key, value) pairs of the row -> label, estimate, std_error, p_value."""


def _model(result: object, position: int) -> _Model:
    to_frame = getattr(result, "to_frame", None)
    frame = to_frame() if callable(to_frame) else None
    needed = {"outcome", "estimate", "std_error"}
    if not isinstance(frame, pd.DataFrame) or not needed <= set(frame.columns):
        raise OptionTypeError(
            f"compare: argument {position} ({type(result).__name__}) is not a result with "
            "estimates by outcome (estimate_itt, estimate_cace, estimate_sensitivity, ...)"
        )
    keys = [k for k in getattr(result, "_keys", ("outcome",)) if k in frame.columns]
    if "outcome" not in keys:
        keys.insert(0, "outcome")
    labels = frame["label"] if "label" in frame.columns else frame["outcome"]
    p_values = frame["p_value"] if "p_value" in frame.columns else pd.Series(np.nan, frame.index)
    cells: dict[tuple[tuple[str, str], ...], tuple[str, float, float, float]] = {}
    for i in range(len(frame)):
        # Keys carry their column names, so an outcome's row and its subgroup rows differ.
        key = tuple((k, str(frame[k].iloc[i])) for k in keys)
        if key in cells:
            raise OptionError(
                f"compare: argument {position} ({type(result).__name__}) has several "
                f"estimates per {' and '.join(keys)}"
            )
        label = " | ".join([str(labels.iloc[i]), *(v for k, v in key if k != "outcome")])
        cells[key] = (
            label,
            float(frame["estimate"].iloc[i]),
            float(frame["std_error"].iloc[i]),
            float(p_values.iloc[i]),
        )
    return _Model(frame, cells)


def _star(p: float) -> str:
    for cut, mark in _STARS:
        if np.isfinite(p) and p < cut:
            return mark
    return ""


def compare(
    *results: Any,
    names: Sequence[str] | None = None,
    digits: int = 3,
    stars: bool = False,
    title: str = "Impact estimates compared",
) -> Table:
    """Lay several impact results side by side: one row per outcome, one column per model.

    Parameters
    ----------
    *results : ITTResult, CACEResult, SensitivityResult, ...
        Two or more results with estimates and standard errors (or one list of them).
    names : sequence of str, optional
        Column headers, one per result; default ``"(1) fixed_effects, HC2"`` and so on,
        from each result's estimand and standard-error type.
    digits : int, default 3
        Decimals of estimates and standard errors (in each outcome's units: percentage
        points for binary outcomes).
    stars : bool, default False
        Mark estimates with p < 0.10 (*), 0.05 (**) and 0.01 (***).
    title : str, optional
        Table title.

    Returns
    -------
    Table
        Each outcome takes two rows, the estimate and its standard error in parentheses
        below; the last rows give each model's students, estimand, standard errors and
        whether it adjusts for covariates. ``to_markdown()``, ``to_html()``,
        ``to_latex()`` and ``to_csv()`` export it.

    Raises
    ------
    OptionTypeError
        If an argument is not a result with estimates.
    OptionError
        If ``names`` does not give one distinct name per result, or ``digits`` is not
        between 0 and 10.

    See Also
    --------
    cis_eval.ITTResult.table : One result's full impact table.

    Examples
    --------
    >>> import cis_eval as ce
    >>> df = ce.simulate(n_schools=8, n_students=800, seed=3).students
    >>> hc2 = ce.estimate_itt(df, outcomes=["core_gpa"], se_type="HC2")
    >>> cr2 = ce.estimate_itt(df, outcomes=["core_gpa"], se_type="CR2")
    >>> ce.compare(hc2, cr2, names=["HC2", "CR2"]).to_frame().columns.tolist()
    ['', 'HC2', 'CR2']
    """
    if len(results) == 1 and isinstance(results[0], Sequence):
        results = tuple(results[0])
    if not results:
        raise OptionTypeError("compare: give at least one result")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 10:
        raise OptionError(f"digits={digits!r} is not an option; give a whole number from 0 to 10")
    items: list[Any] = list(results)
    # Each model's cells come from its tidy frame (to_frame()), the one source of its numbers.
    models = [_model(r, i) for i, r in enumerate(items, start=1)]
    if names is None:
        labels = []
        for i, (r, m) in enumerate(zip(items, models, strict=True), start=1):
            spec = [_spec(r, m.frame, "estimand"), _spec(r, m.frame, "se_type")]
            labels.append(" ".join([f"({i})", ", ".join(x for x in spec if x)]).strip())
    else:
        labels = [str(n) for n in ([names] if isinstance(names, str) else names)]
        if len(labels) != len(items):
            raise OptionError(f"names: give one name per result ({len(items)}), not {len(labels)}")
    if len(set(labels)) != len(labels) or "" in labels:
        raise OptionError(f"names must be distinct and not empty, got {labels}")

    # Rows in the order outcomes first appear (each result follows schema.OUTCOMES).
    row_labels: dict[tuple[tuple[str, str], ...], str] = {}
    for m in models:
        for key, (label, *_) in m.cells.items():
            row_labels.setdefault(key, label)

    fmt = f"{{:+.{digits}f}}"
    se_fmt = f"({{:.{digits}f}})"
    rows: list[list[str]] = []
    for key, label in row_labels.items():
        est_row, se_row = [label], [""]
        for m in models:
            _, est, se, p = m.cells.get(key, ("", np.nan, np.nan, np.nan))
            if not np.isfinite(est):  # not in this model (or not estimable)
                est_row.append("")
                se_row.append("")
                continue
            est_row.append(fmt.format(est) + (_star(p) if stars else ""))
            se_row.append(se_fmt.format(se) if np.isfinite(se) else "")
        rows += [est_row, se_row]
    frames = [m.frame for m in models]
    footer = [
        [_students(r, f) for r, f in zip(items, frames, strict=True)],
        [_spec(r, f, "estimand") for r, f in zip(items, frames, strict=True)],
        [_spec(r, f, "se_type") for r, f in zip(items, frames, strict=True)],
        [_covariates(r, f) for r, f in zip(items, frames, strict=True)],
    ]
    rows += [[name, *cells] for name, cells in zip(_FOOTER, footer, strict=True)]
    notes = [
        "Standard errors in parentheses. Binary outcomes in percentage points.",
        "Students: randomized students in the model's data, or its largest analytic sample "
        "when the result does not record them (each outcome uses the students with that "
        "outcome).",
    ]
    if stars:
        notes.append("Stars: *** p < 0.01, ** p < 0.05, * p < 0.10.")
    return Table(pd.DataFrame(rows, columns=["", *labels]), title=title, notes=tuple(notes))
