"""From a students table to the engine's shared design, one regression per outcome (private).

:func:`prepare` reads the columns once into one matrix (assignment, covariates filled with
their mean, missing-value indicators, outcomes), rows sorted by school and arm.
:func:`build` turns one outcome's specification into an engine :class:`~cis_eval._core.engine.
Problem`: its analytic sample (a row mask) and its design as combinations of the shared
columns, so no outcome copies the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._typing import BoolArray, FloatArray, IntArray
from ..errors import EstimationError
from ..outcomes import outcome_arrays
from ..schema import COLUMNS, OUTCOME_NAMES, OUTCOMES, Outcome
from . import engine as _engine

if TYPE_CHECKING:
    from .spec import ImpactSpec

__all__ = [
    "Built",
    "Prepared",
    "arm_moments",
    "assignment",
    "build",
    "factorize",
    "floats",
    "materialize",
    "numeric",
    "outcome_meta",
    "prepare",
    "stable_order",
]


def outcome_meta(name_or_outcome: str | Outcome, data: pd.DataFrame) -> Outcome:
    """The :class:`Outcome` for a name: the study's metadata, or inferred for other columns."""
    if isinstance(name_or_outcome, Outcome):
        return name_or_outcome
    name = str(name_or_outcome)
    for o in OUTCOMES:
        if o.name == name:
            return o
    if name not in data.columns:
        raise EstimationError(
            f"unknown outcome '{name}': it is neither a column of the data nor one of the "
            f"study's outcomes ({', '.join(OUTCOME_NAMES)})"
        )
    # Exact and vectorised: a column is binary when every value it has is 0 or 1. (A set of
    # the distinct values cost seconds on a million continuous values.)
    v = floats(data[name])[0]
    missing = np.isnan(v)
    binary = not missing.all() and bool(((v == 0.0) | (v == 1.0) | missing).all())
    kind: Literal["binary", "continuous"] = "binary" if binary else "continuous"
    label = COLUMNS["students"][name].label if name in COLUMNS["students"] else name
    return Outcome(name, label, kind, "higher", "other", "exploratory", "")


def floats(s: pd.Series) -> tuple[FloatArray, BoolArray | None]:
    """A column as floats (NaN when missing or not a number) and where it is not a number.

    Numeric columns are read as they are; text columns (as :func:`cis_eval.load` returns
    them), categoricals and objects are parsed, with Arrow's cast first: it reads a clean
    column of a million numbers in milliseconds and refuses the whole column on one bad
    value, which ``pandas.to_numeric`` then finds. The mask is ``None`` for numeric columns.
    """
    if not isinstance(s.dtype, pd.CategoricalDtype) and (
        pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
    ):
        return s.to_numpy(dtype=float, na_value=np.nan), None
    # On the arrays, not the Series: each Series operation deep-copies the frame's attrs.
    text = s.array.astype(pd.StringDtype())
    try:
        parsed = text.astype("Float64")
    except (ValueError, TypeError):
        parsed = pd.to_numeric(text, errors="coerce")
    out: FloatArray = np.asarray(parsed.to_numpy(dtype=np.float64, na_value=np.nan))
    bad: BoolArray = np.isnan(out) & ~pd.isna(s.array)
    return out, bad


def factorize(labels: pd.Series) -> tuple[IntArray, np.ndarray]:
    """Codes 0..k-1 of a label column of any dtype, numbered in the labels' sorted order.

    Categorical, integer and text identifiers take the same fast path: a column already
    in order (a roster listed school by school) is coded in one pass over its changes;
    others are hashed by :func:`pandas.factorize`.

    Returns
    -------
    codes : ndarray of int64
    labels : ndarray
        The distinct labels, in code order.
    """
    if isinstance(labels.dtype, pd.CategoricalDtype):
        # the category codes, renumbered over the categories that occur (as pd.factorize)
        cat_codes = labels.cat.codes.to_numpy().astype(np.int64)
        categories = labels.cat.categories
        if cat_codes.size and cat_codes.min() >= 0:
            used = np.bincount(cat_codes, minlength=len(categories)) > 0
            if used.all():
                return cat_codes, np.asarray(categories)
            return (np.cumsum(used) - 1)[cat_codes], np.asarray(categories[used])
    elif pd.api.types.is_integer_dtype(labels.dtype):
        v = labels.to_numpy()
        if v.dtype.kind in "iu" and v.size and bool(np.all(v[1:] >= v[:-1])):
            change = np.empty(v.size, dtype=bool)
            change[0] = True
            np.not_equal(v[1:], v[:-1], out=change[1:])
            return np.cumsum(change, dtype=np.int64) - 1, v[change]
    codes, uniques = pd.factorize(labels, sort=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def stable_order(key: IntArray) -> IntArray:
    """``argsort(key, kind="stable")`` for non-negative codes, fastest for small codes.

    NumPy sorts 16-bit integers stably by radix sort, in linear time: about ten times
    faster than a stable sort of 64-bit keys on a million rows. Keys up to 65,535 (school
    codes, or school-by-arm codes for up to 32,767 schools) take that path.
    """
    if key.size and int(key.max()) < 2**16:
        return np.argsort(key.astype(np.uint16), kind="stable").astype(np.int64, copy=False)
    return np.argsort(key, kind="stable").astype(np.int64, copy=False)


def numeric(data: pd.DataFrame, column: str, what: str) -> FloatArray:
    """A column as floats (NaN for missing), or an error naming the rows that are not numbers."""
    out, bad = floats(data[column])
    if bad is not None and bad.any():
        rows = ", ".join(str(int(r) + 2) for r in np.flatnonzero(bad)[:5])
        raise EstimationError(
            f"{what} '{column}' has {int(bad.sum())} value(s) that are not numbers (rows "
            f"{rows}); encode it as numbers (0/1 for yes/no)"
        )
    return out


def assignment(data: pd.DataFrame, treatment: str) -> FloatArray:
    """The 0/1 assignment, or an error naming the column and rows."""
    if treatment not in data.columns:
        raise EstimationError(
            f"the data have no treatment column '{treatment}'; name the assignment column "
            "with treatment=..."
        )
    z = numeric(data, treatment, "treatment")
    if np.isnan(z).any():
        rows = ", ".join(str(int(r) + 2) for r in np.flatnonzero(np.isnan(z))[:5])
        raise EstimationError(
            f"column '{treatment}': {int(np.isnan(z).sum())} empty value(s) (rows {rows}); "
            "every randomized student needs an assignment"
        )
    bad = ~np.isin(z, (0.0, 1.0))
    if bad.any():
        rows = ", ".join(str(int(r) + 2) for r in np.flatnonzero(bad)[:5])
        raise EstimationError(
            f"column '{treatment}': {int(bad.sum())} value(s) other than 0 or 1 (rows {rows}); "
            "expected 1 = program group, 0 = control group"
        )
    if z.min() == z.max():
        raise EstimationError(
            f"column '{treatment}': every student is in the "
            f"{'program' if z[0] == 1 else 'control'} group; both groups are needed"
        )
    return z


@dataclass(slots=True)
class Prepared:
    """The analysis columns of one data set, rows sorted by (school, assignment).

    Attributes
    ----------
    order : ndarray of int
        Row positions in the input, in sorted order.
    school, school_names, z : ndarray
        School codes, their labels, and the assignment (sorted rows).
    y : dict
        Outcomes as floats (binary outcomes in percentage points), NaN when missing.
    extra : dict
        Further per-student arrays (receipt of services, subgroups), sorted.
    cols : dict
        Column of :attr:`w` for each name (``"z"``, ``"x:<cov>"``, ``"m:<cov>"``,
        ``"zx:<cov>"``, ``"zm:<cov>"``, ``"y:<outcome>"``, ``"e:<extra>"``).
    w : ndarray
        The shared columns, centred at :attr:`center`.
    cov_mean : dict
        Mean of the observed values of each covariate (the fill value).
    """

    order: IntArray
    school: IntArray
    school_names: np.ndarray
    z: FloatArray
    y: dict[str, FloatArray]
    extra: dict[str, FloatArray]
    cols: dict[str, int]
    w: FloatArray
    center: FloatArray
    cov_mean: dict[str, float]
    cov_missing: dict[str, BoolArray]
    cluster: IntArray | None
    school_starts: IntArray
    by_arm: bool = False
    _gram: FloatArray | None = None
    _designs: dict[str, _engine.CellDesign] = field(default_factory=dict)

    def design(self, cells: Literal["school", "school_arm"]) -> _engine.CellDesign:
        """The engine design with school (or school-by-arm) cells, built once."""
        if cells not in self._designs:
            if cells == "school_arm" and not self.by_arm:
                raise ValueError("school-by-arm cells need rows sorted by arm (by_arm=True)")
            if self._gram is None:
                self._gram = self.w.T @ self.w
            codes = self.school if cells == "school" else self.school * 2 + self.z.astype(int)
            self._designs[cells] = _engine.CellDesign(
                self.w, codes, center=self.center, gram=self._gram
            )
        return self._designs[cells]

    def unit(self, name: str) -> FloatArray:
        """The combination that picks one column of :attr:`w`."""
        v = np.zeros(self.w.shape[1])
        v[self.cols[name]] = 1.0
        return v


def prepare(
    data: pd.DataFrame,
    outcomes: Sequence[Outcome],
    covariates: set[str],
    *,
    treatment: str,
    block: str,
    cluster: str | None,
    chronic_threshold: float,
    lin: bool = False,
    by_arm: bool = False,
    extra: dict[str, FloatArray] | None = None,
) -> Prepared:
    """Check the columns and read them into one sorted matrix.

    Rows are sorted by school, and by arm within school when ``by_arm`` (needed for the
    school-by-arm cells of the person- and school-weighted estimands).
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if block not in data.columns:
        raise EstimationError(f"the data have no block column '{block}'")
    if len(data) == 0:
        raise EstimationError("the data have no rows")
    z = assignment(data, treatment)
    blk = data[block]
    if blk.isna().any():
        raise EstimationError(f"column '{block}': {int(blk.isna().sum())} empty value(s)")
    codes, names = factorize(blk)
    missing_cov = sorted(c for c in covariates if c not in data.columns)
    if missing_cov:
        raise EstimationError(
            f"unknown covariate(s) {', '.join(repr(c) for c in missing_cov)}: not columns of "
            "the data"
        )
    derive = [o.name for o in outcomes if o.name not in data.columns]
    try:
        derived = outcome_arrays(data, derive, chronic_threshold=chronic_threshold)
    except KeyError as exc:
        raise EstimationError(
            f"outcome(s) {', '.join(derive)} are not columns of the data and cannot be "
            f"derived: missing raw field {exc}"
        ) from exc
    # Rows sorted by school (and by arm within school for the school-by-arm estimands).
    key = codes.astype(np.int64) * 2 + z.astype(np.int64) if by_arm else codes.astype(np.int64)
    identity = bool(np.all(key[1:] >= key[:-1]))
    order = np.arange(key.size) if identity else stable_order(key)

    def sort(a: Any) -> Any:
        return a if identity else a[order]

    zs = sort(z)
    # Each column of ``w`` with its centre: NaN (a missing outcome) counts as 0, a missing
    # covariate as the mean of the observed values (its indicator carries the difference).
    columns: list[tuple[FloatArray, float]] = [(zs, float(zs.mean()))]
    names_w = ["z"]
    ys: dict[str, FloatArray] = {}
    for o in outcomes:
        raw = derived[o.name] if o.name in derived else numeric(data, o.name, "outcome")
        # Binary outcomes in percentage points: the LPM coefficient times 100.
        y = sort(raw * 100.0 if o.type == "binary" else raw)
        ys[o.name] = y
        gaps = np.isnan(y)
        col = np.where(gaps, 0.0, y) if gaps.any() else y
        columns.append((col, float(col.mean())))
        names_w.append(f"y:{o.name}")
    cov_mean: dict[str, float] = {}
    cov_missing: dict[str, BoolArray] = {}
    for c in sorted(covariates):
        v = sort(numeric(data, c, "covariate"))
        miss = np.isnan(v)
        has_missing = bool(miss.any())
        if has_missing:
            mean = float(np.nanmean(v)) if not miss.all() else 0.0
            filled = np.where(miss, mean, v)
        else:
            mean, filled = float(v.mean()), v
        cov_mean[c], cov_missing[c] = mean, miss
        columns.append((filled, mean))
        names_w.append(f"x:{c}")
        if has_missing:
            indicator = miss.astype(float)
            columns.append((indicator, float(indicator.mean())))
            names_w.append(f"m:{c}")
        if lin:
            zx = zs * filled
            columns.append((zx, float(zx.mean())))
            names_w.append(f"zx:{c}")
            if has_missing:
                zm = zs * miss
                columns.append((zm, float(zm.mean())))
                names_w.append(f"zm:{c}")
    ex = {k: sort(np.asarray(v, dtype=float)) for k, v in (extra or {}).items()}
    for k, v in ex.items():
        col = np.where(np.isnan(v), 0.0, v)
        columns.append((col, float(col.mean())))
        names_w.append(f"e:{k}")
    center = np.array([m for _, m in columns])
    # Fill column by column in Fortran order (contiguous writes), then one copy to rows:
    # the engine's pass over chunks of rows is faster on row-major data.
    wf = np.empty((zs.size, len(columns)), order="F")
    for j, (column, m) in enumerate(columns):
        np.subtract(column, m, out=wf[:, j])
    w = np.ascontiguousarray(wf)
    del wf
    cl = None
    if cluster is not None:
        if cluster not in data.columns:
            raise EstimationError(f"the data have no cluster column '{cluster}'")
        cl = sort(pd.factorize(data[cluster], sort=True)[0].astype(np.int64))
    codes_sorted = sort(codes.astype(np.int64))
    return Prepared(
        order=order,
        school=codes_sorted,
        school_names=np.asarray(names),
        z=zs,
        y=ys,
        extra=ex,
        cols={nm: j for j, nm in enumerate(names_w)},
        w=w,
        center=center,
        cov_mean=cov_mean,
        cov_missing=cov_missing,
        cluster=cl,
        school_starts=_engine.cell_starts(codes_sorted)[0],
        by_arm=by_arm,
    )


@dataclass(frozen=True, slots=True)
class Built:
    """One outcome's regression: the engine problem and how to read its columns."""

    problem: _engine.Problem
    cells: Literal["school", "school_arm"]
    names: tuple[str, ...]
    user: tuple[bool, ...]
    offset: int
    notes: tuple[str, ...]
    n_schools: int

    @property
    def rows(self) -> BoolArray:
        """The analytic sample (a mask over the sorted rows)."""
        return self.problem.rows


def build(
    d: Prepared,
    o: Outcome,
    covs: Sequence[str],
    spec: ImpactSpec,
    *,
    restrict: BoolArray | None = None,
    y_column: str | None = None,
) -> Built:
    """The regression of one outcome: its sample, design columns, contrast and notes."""
    y = d.y[o.name]
    keep = ~np.isnan(y)
    if restrict is not None:
        keep &= restrict
    notes: list[str] = []
    n_schools = d.school_names.size
    # rows are sorted by school: per-school counts are sums over runs
    starts = d.school_starts
    n_all = np.zeros(n_schools)
    n1 = np.zeros(n_schools)
    present = d.school[starts]
    n_all[present] = np.add.reduceat(keep.astype(float), starts)
    n1[present] = np.add.reduceat(np.where(keep, d.z, 0.0), starts)
    one_arm = (n_all > 0) & ((n1 == 0) | (n1 == n_all))
    if one_arm.any():
        lost = int(n_all[one_arm].sum())
        if spec.estimand == "fixed_effects":
            notes.append(
                f"{o.label}: {int(one_arm.sum())} school(s) ({lost:,} students) have students "
                "in only one arm; they inform the covariate adjustment but not the impact"
            )
        else:
            keep &= ~one_arm[d.school]
            n_all[one_arm] = 0
            notes.append(
                f"{o.label}: {int(one_arm.sum())} school(s) with students in only one arm "
                f"dropped ({lost:,} students); the {spec.estimand.replace('_', '-')} "
                "estimand needs both arms in every school"
            )
    if not keep.any():
        raise EstimationError(f"outcome '{o.name}': no student has this outcome")
    p = d.w.shape[1]
    combos: list[FloatArray] = []
    names: list[str] = []
    user: list[bool] = []
    inter: list[FloatArray] = []
    inter_names: list[str] = []
    z_col = d.unit("z")
    n_keep = int(np.count_nonzero(keep))
    for c in covs:
        n_miss = int(np.count_nonzero(d.cov_missing[c] & keep)) if f"m:{c}" in d.cols else 0
        if n_miss == n_keep:
            notes.append(f"{o.label}: covariate '{c}' is missing for every student; left out")
            continue
        combos.append(d.unit(f"x:{c}"))
        names.append(c)
        user.append(True)
        if n_miss:
            # Any fill gives the same impact once the indicator is in the model.
            combos.append(d.unit(f"m:{c}"))
            names.append(f"{c}_missing")
            user.append(False)
        if spec.lin:
            # z * (x_s - m_s), where x_s is filled with m_s, the sample mean of the observed
            # values: z*x_global + (m_s - m_global) * z*miss - m_s * z. Indicators are not
            # interacted: one that flags a handful of students would fit them exactly.
            raw = d.w[:, d.cols[f"x:{c}"]] + d.center[d.cols[f"x:{c}"]]
            observed = keep & ~d.cov_missing[c]
            m_s = float(raw[observed].mean())
            comb = d.unit(f"zx:{c}") - m_s * z_col
            if f"zm:{c}" in d.cols:
                comb = comb + (m_s - d.cov_mean[c]) * d.unit(f"zm:{c}")
            inter.append(comb)
            inter_names.append(f"treatment:{c}")
    combos += inter
    names += inter_names
    user += [False] * len(inter)
    cell_weight = None
    if spec.estimand == "fixed_effects":
        combos = [z_col, *combos]
        r = np.zeros(len(combos))
        r[0] = 1.0
        cells: Literal["school", "school_arm"] = "school"
        offset = 1
    else:
        r = None
        cells = "school_arm"
        offset = 0
        size = n_all
        has = size > 0
        w = size / size.sum() if spec.estimand == "person_weighted" else has / has.sum()
        cell_weight = np.zeros(2 * n_schools)
        cell_weight[1::2] = w
        cell_weight[0::2] = -w
        cell_n = np.bincount(d.school[keep] * 2 + d.z[keep].astype(int), minlength=2 * n_schools)
        singles = int(((cell_n == 1) & (cell_weight != 0)).sum())
        if singles:
            raise EstimationError(
                f"outcome '{o.name}': {singles} school(s) have a single program or control "
                f"student in the analytic sample, so the {spec.estimand.replace('_', '-')} "
                "estimator's variance is undefined there; use estimand='fixed_effects' or "
                "combine small schools into blocks"
            )
    x = np.column_stack(combos) if combos else np.zeros((p, 0))
    problem = _engine.Problem(
        rows=keep,
        y=d.unit(y_column or f"y:{o.name}"),
        x=x,
        r=r,
        cell_weight=cell_weight,
    )
    return Built(
        problem,
        cells,
        tuple(names),
        tuple(user),
        offset,
        tuple(notes),
        int(np.count_nonzero(n_all)),
    )


def materialize(d: Prepared, b: Built) -> tuple[IntArray, FloatArray, FloatArray]:
    """Sample rows, outcome and covariate columns (no assignment) as arrays, for small data."""
    rows = np.flatnonzero(b.rows)
    x = d.w[rows] @ b.problem.x[:, b.offset :]
    y = d.w[rows] @ b.problem.y + float(d.center @ b.problem.y)
    return rows, y, x


def arm_moments(d: Prepared, o: Outcome, rows: BoolArray) -> dict[str, float]:
    """Means, standard deviations and counts of an outcome by arm over a sample.

    Dot products with the arm indicators, so a million-row sample costs a few passes.
    """
    y = np.where(rows, d.y[o.name], 0.0)
    yy = y * y
    out: dict[str, float] = {}
    for arm, value in (("c", 0.0), ("t", 1.0)):
        ind = (rows & (d.z == value)).astype(float)
        nj = float(ind.sum())
        mean = float(ind @ y) / nj if nj else np.nan
        var = (float(ind @ yy) - nj * mean * mean) / (nj - 1) if nj > 1 else np.nan
        out[f"n_{arm}"] = nj
        out[f"mean_{arm}"] = mean
        out[f"sd_{arm}"] = float(np.sqrt(max(var, 0.0))) if nj > 1 else np.nan
    return out
