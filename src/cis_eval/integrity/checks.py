r"""Trial integrity by the What Works Clearinghouse's standards: equivalence, attrition, rating.

Three verbs, each usable on its own:

* :func:`baseline_equivalence` compares the program and control groups on baseline
  characteristics in the analytic sample of an outcome: means, SDs, raw and
  school-fixed-effect-adjusted differences, WWC effect sizes (Hedges' g or the Cox index) and
  the WWC category; missing values as their own rows; a joint F test and a randomization
  test that the characteristics do not predict assignment within schools.
* :func:`attrition` computes overall and differential attrition per outcome and classifies
  it against the WWC cautious or optimistic boundary, shipped as package data with its
  provenance (:func:`attrition_boundaries`).
* :func:`wwc_review` combines them with the impact estimates into a per-outcome rating
  ("Meets WWC standards without reservations", "... with reservations", "Does not meet"),
  listing the reasons.

:func:`wwc_clustering_correction` is the WWC's correction of a t statistic from an analysis
that ignores clustering, for designs that assign whole schools.

Sources: WWC Procedures and Standards Handbook, Version 5.0 (2022) and Standards Handbook
v4.1 (2020), sections on attrition, baseline equivalence, effect sizes and the clustering
correction (formulas as stable across v4.1 and v5.0). The attrition boundary table is the
handbook's Table II.1 as transcribed independently by two R code bases (see
:func:`attrition_boundaries`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from scipy import stats

from .._core import engine as _engine
from .._core.design import assignment, numeric, outcome_meta
from .._core.permutation import within_block_permutations
from .._typing import BoolArray, FloatArray, IntArray, check_option, check_permutations, rng_from
from ..effect_sizes import cox_index, favourable, hedges_g
from ..errors import DesignError, DesignWarning, EstimationError
from ..estimation.itt import default_covariates, estimate_itt
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD, outcome_arrays
from ..present.privacy import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell
from ..present.table import Table, records
from ..schema import BASELINE_COVARIATES, COLUMNS, OUTCOMES, Outcome

__all__ = [
    "BOUNDARIES",
    "DESIGNS",
    "AttritionResult",
    "BaselineResult",
    "ClusteringCorrection",
    "WWCReview",
    "attrition",
    "attrition_boundaries",
    "baseline_equivalence",
    "classify_attrition",
    "max_differential_attrition",
    "wwc_category",
    "wwc_clustering_correction",
    "wwc_review",
]

Boundary = Literal["cautious", "optimistic"]
Basis = Literal["adjusted", "raw"]
Design = Literal["rct", "cluster_rct"]

BOUNDARIES: dict[str, str] = {
    "cautious": "cautious (the intervention may affect who stays in the sample)",
    "optimistic": "optimistic (attrition is unlikely to be related to the intervention)",
}
"""The WWC attrition boundaries; the review protocol picks one (cautious for dropout
prevention, where the program may change who stays)."""

DESIGNS: dict[str, str] = {
    "rct": "students randomized within schools",
    "cluster_rct": "whole schools randomized",
}
"""Designs :func:`wwc_review` accepts."""

SATISFIED_MAX = 0.05
"""|ES| at or below this: baseline equivalence satisfied."""
ADJUSTMENT_MAX = 0.25
"""|ES| above :data:`SATISFIED_MAX` and at or below this: satisfied only with adjustment."""
SUBSTANTIVE_MIN = 0.25
"""|ES| at or above this: a substantively important finding (WWC)."""
DEFAULT_ICC = {"academic": 0.20}
"""WWC default ICCs for the clustering correction: 0.20 for achievement outcomes, 0.10 for
behavioural ones (attendance, behaviour and any other domain)."""
DEFAULT_ICC_OTHER = 0.10

# Floating-point slack when comparing with a boundary: 0.05 computed as 0.0500000001 is on
# the boundary, and a differential of 1.4 computed as 1.4000000000000001 is too.
_TOL = 1e-9
_BOUNDARY_FILE = "wwc_attrition_boundaries.csv"

RATING_WITHOUT = "Meets WWC standards without reservations"
RATING_WITH = "Meets WWC standards with reservations"
RATING_NOT = "Does not meet WWC standards"
RATING_NONE = "Not rated"

# Order of the equivalence statuses from best to worst (the verdict is the worst).
_STATUS_ORDER = ("satisfied", "satisfied by adjustment", "not computed", "not satisfied")


# ----------------------------------------------------------------------------- shared inputs


def _check_data(data: object) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise EstimationError("the data have no rows")
    return data


def _schools(data: pd.DataFrame, block: str) -> IntArray:
    if block not in data.columns:
        raise EstimationError(f"the data have no block column '{block}'")
    blk = data[block]
    if blk.isna().any():
        raise EstimationError(f"column '{block}': {int(blk.isna().sum())} empty value(s)")
    codes, _ = pd.factorize(blk, sort=True)
    return codes.astype(np.int64)


def _derivable(o: Outcome, data: pd.DataFrame) -> bool:
    return bool(o.raw) and all(c in data.columns for c in o.raw)


def _outcome_values(
    data: pd.DataFrame, outcome: str | Outcome, chronic_threshold: float
) -> tuple[Outcome, FloatArray]:
    """An outcome's metadata and values (NaN where missing), derived from raw fields if needed."""
    o = outcome_meta(outcome, data)
    if o.name in data.columns:
        return o, numeric(data, o.name, "outcome")
    if _derivable(o, data):
        return o, outcome_arrays(data, [o.name], chronic_threshold=chronic_threshold)[o.name]
    missing = [c for c in o.raw if c not in data.columns]
    raise EstimationError(
        f"outcome '{o.name}' is not a column of the data and cannot be derived"
        + (f": raw field(s) {', '.join(missing)} missing" if missing else "")
    )


def _outcome_list(
    data: pd.DataFrame, outcomes: Sequence[str | Outcome] | str | Outcome | None
) -> list[str | Outcome]:
    if outcomes is None:
        found: list[str | Outcome] = [
            o for o in OUTCOMES if o.name in data.columns or _derivable(o, data)
        ]
        if not found:
            raise EstimationError(
                "the data have none of the study's outcomes (or the raw fields they are "
                "derived from); name the outcome columns with outcomes=[...]"
            )
        return found
    if isinstance(outcomes, (str, Outcome)):
        return [outcomes]
    out = list(outcomes)
    if not out:
        raise ValueError("outcomes is empty; name at least one outcome")
    names = [o.name if isinstance(o, Outcome) else str(o) for o in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"outcome(s) listed twice: {', '.join(dup)}")
    return out


def _population(data: pd.DataFrame, o: Outcome) -> tuple[BoolArray, str | None]:
    """The randomized students for whom an outcome is defined (core credits: high school)."""
    everyone = np.ones(len(data), dtype=bool)
    if o.population == "all":
        return everyone, None
    if "school_level" not in data.columns:
        return everyone, (
            f"{o.label}: defined for {o.population} school students only, but the data have "
            "no 'school_level' column; every randomized student counts as randomized for it."
        )
    level = data["school_level"].astype("string").str.strip().str.lower()
    mask = level.eq(o.population).fillna(False).to_numpy(dtype=bool)
    return mask, (
        f"{o.label}: defined for {o.population} school students only; its randomized sample "
        f"is the {int(mask.sum()):,} {o.population} school students."
    )


def _label(column: str) -> str:
    col = COLUMNS["students"].get(column)
    return col.label if col is not None else column


def _is_binary(column: str, values: FloatArray) -> bool:
    """Binary by the data contract, or (other columns) when every value is 0 or 1."""
    obs = values[~np.isnan(values)]
    col = COLUMNS["students"].get(column)
    if col is not None and col.kind == "binary":
        if obs.size and not np.isin(obs, (0.0, 1.0)).all():
            raise EstimationError(
                f"characteristic '{column}' is binary in the data contract but has "
                f"{int((~np.isin(obs, (0.0, 1.0))).sum())} value(s) other than 0 and 1"
            )
        return True
    if col is not None:
        return False
    return bool(obs.size) and bool(np.isin(obs, (0.0, 1.0)).all())


# ----------------------------------------------------------------------------- categories


def wwc_category(effect_size: float) -> str:
    """The WWC baseline-equivalence category of one effect size.

    Parameters
    ----------
    effect_size : float
        Baseline difference in effect-size units (Hedges' g or the Cox index).

    Returns
    -------
    str
        ``"satisfied"`` when ``|ES| <= 0.05``; ``"requires adjustment"`` when
        ``0.05 < |ES| <= 0.25`` (equivalence holds only if the impact model adjusts for the
        characteristic); ``"not satisfied"`` when ``|ES| > 0.25``; ``"not computed"`` for a
        missing effect size. Values on a boundary belong to the lower category.

    Examples
    --------
    >>> from cis_eval.integrity.checks import wwc_category
    >>> [wwc_category(v) for v in (0.05, -0.12, 0.2500, 0.31)]
    ['satisfied', 'requires adjustment', 'requires adjustment', 'not satisfied']
    """
    if effect_size is None or not np.isfinite(effect_size):
        return "not computed"
    a = abs(float(effect_size))
    if a <= SATISFIED_MAX + _TOL:
        return "satisfied"
    if a <= ADJUSTMENT_MAX + _TOL:
        return "requires adjustment"
    return "not satisfied"


def _status(category: str, adjusted: bool) -> str:
    if category == "requires adjustment":
        return "satisfied by adjustment" if adjusted else "not satisfied"
    return category


def _worst(statuses: Sequence[str]) -> str:
    if not statuses:
        return "not computed"
    return max(statuses, key=_STATUS_ORDER.index)


# ----------------------------------------------------------------------------- baseline


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """Baseline equivalence of the program and control groups in an analytic sample.

    Attributes
    ----------
    outcome : str or None
        Outcome whose analytic sample was compared (``None``: every randomized student).
    sample : str
        Description of the sample.
    n_treatment, n_control, n_schools : int
        Students by arm and schools in the sample.
    adjusted_for : tuple of str
        Covariates the impact model adjusts for (decides "satisfied by adjustment").
    required : tuple of str
        Characteristics the review requires (the outcome's prior-year measure by default).
    basis : str
        Effect size that decides the category: ``"adjusted"`` (within-school difference) or
        ``"raw"``.
    permutations : int
        Permutations of the randomization test (0: not run).
    seed : int or None
        Seed of the permutations.
    notes : tuple of str
        What was left out and why.
    """

    _rows: pd.DataFrame = field(repr=False)
    _omnibus: pd.DataFrame = field(repr=False)
    outcome: str | None
    sample: str
    n_treatment: int
    n_control: int
    n_schools: int
    adjusted_for: tuple[str, ...]
    required: tuple[str, ...]
    basis: str
    permutations: int = 0
    seed: int | None = None
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        chars = self._rows[self._rows["kind"] != "missing"]
        es = chars["effect_size"].abs()
        worst = f"{es.max():.3f}" if es.notna().any() else "n/a"
        return (
            f"BaselineResult({len(chars)} characteristics, {self.sample}: "
            f"{self.n_treatment + self.n_control:,} students, max |ES| {worst})"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per characteristic, then a row per characteristic with missing values.

        Columns: ``characteristic, label, kind`` (``continuous``, ``binary`` or ``missing``:
        the share with no value), ``required, n_treatment, n_control, mean_treatment,
        mean_control, sd_treatment, sd_control, difference, difference_adjusted,
        std_error_adjusted, p_value_adjusted, effect_size_type, effect_size_raw,
        effect_size_adjusted, effect_size`` (the one on ``basis``), ``wwc_category,
        adjusted_in_model, equivalence``. Means of binary characteristics and missing shares
        are proportions; differences are in the characteristic's units. Missing-value rows
        count every student in the sample and have no effect size or category.
        """
        return self._rows.copy()

    def omnibus(self) -> pd.DataFrame:
        """Joint tests that the characteristics do not predict assignment within schools.

        Columns ``test, statistic, df_num, df_den, p_value, permutations``. Rows: the
        classical F test, the HC2-robust Wald F test and (when run) the randomization test.
        """
        return self._omnibus.copy()

    def verdict(self, characteristics: Sequence[str] | None = None) -> str:
        """Baseline equivalence over several characteristics: the worst of their statuses.

        Parameters
        ----------
        characteristics : sequence of str, optional
            Characteristics to judge; default the required ones, or every characteristic
            when none is required.

        Returns
        -------
        str
            ``"satisfied"``, ``"satisfied by adjustment"``, ``"not computed"`` (a
            characteristic is absent or its effect size undefined) or ``"not satisfied"``.
        """
        rows = self._rows[self._rows["kind"] != "missing"].set_index("characteristic")
        names = list(characteristics or self.required or rows.index)
        return _worst(
            [str(rows.at[c, "equivalence"]) if c in rows.index else "not computed" for c in names]
        )

    def table(self, *, min_cell: int = DEFAULT_MIN_CELL, title: str | None = None) -> Table:
        """An MDRC/WWC-style baseline table with N per arm, effect sizes and WWC categories.

        Parameters
        ----------
        min_cell : int, default 10
            A row whose figures describe between 1 and ``min_cell - 1`` students (an arm's
            N, or the students with or without a binary characteristic or a missing value)
            is shown as ``*``; 1 shows every row (not for publication).
        title : str, optional
            Table title.
        """
        k = check_min_cell(min_cell)
        rows = []
        suppressed = False
        for r in records(self._rows):
            binary = r.kind in ("binary", "missing")
            scale = 100.0 if binary else 1.0
            spec = ".1f" if binary else ".3f"
            if r.kind == "missing":
                name = "  Missing (%)"
            else:
                name = f"{r.label}{' (%)' if binary else ''}{' [required]' if r.required else ''}"
            small = _small_row(r, k)
            suppressed |= small
            if small:
                rows.append(
                    {
                        "Characteristic": name,
                        "Program group": SUPPRESSED,
                        "Control group": SUPPRESSED,
                        "Difference": SUPPRESSED,
                        "Adjusted difference": SUPPRESSED,
                        "Effect size": SUPPRESSED if r.kind != "missing" else "",
                        "WWC category": _category_text(r) if r.kind != "missing" else "",
                        "N program": f"{r.n_treatment:,}",
                        "N control": f"{r.n_control:,}",
                    }
                )
                continue
            rows.append(
                {
                    "Characteristic": name,
                    "Program group": _num(r.mean_treatment * scale, spec),
                    "Control group": _num(r.mean_control * scale, spec),
                    "Difference": _num(r.difference * scale, "+" + spec),
                    "Adjusted difference": _num(r.difference_adjusted * scale, "+" + spec),
                    "Effect size": _num(r.effect_size, "+.3f") if r.kind != "missing" else "",
                    "WWC category": _category_text(r) if r.kind != "missing" else "",
                    "N program": f"{r.n_treatment:,}",
                    "N control": f"{r.n_control:,}",
                }
            )
        basis = (
            "the school-fixed-effect-adjusted difference"
            if self.basis == "adjusted"
            else "the raw difference in means"
        )
        notes = [
            f"Sample: {self.sample}; {self.n_treatment:,} program and {self.n_control:,} "
            f"control students in {self.n_schools:,} schools. Means and SDs by arm are "
            "unadjusted; N is the number of students with a value.",
            "Adjusted difference: within-school difference (OLS of the characteristic on "
            "assignment and school fixed effects), the comparison the impact model makes.",
            f"Effect size (WWC): Hedges' g with the small-sample correction for continuous "
            f"characteristics, the Cox index for binary ones, computed from {basis} over the "
            "unadjusted pooled SD. Categories: |ES| <= 0.05 satisfied; 0.05 < |ES| <= 0.25 "
            "satisfied only if the impact model adjusts for the characteristic; |ES| > 0.25 "
            "not satisfied.",
            "Impact model adjusts for: "
            + (", ".join(self.adjusted_for) if self.adjusted_for else "nothing")
            + ".",
        ]
        if self.required:
            notes.append(
                "[required]: the characteristic the WWC review requires for this outcome (its "
                f"prior-year measure). Verdict on the required characteristics: {self.verdict()}."
            )
        notes.append(_omnibus_note(self._omnibus))
        if (self._rows["kind"] == "missing").any():
            notes.append(
                "Missing (%): share of the sample with no value of the characteristic above; "
                "the omnibus tests fill missing values with the mean and add a "
                "missing-value indicator."
            )
        if suppressed:
            notes.append(
                f"{SUPPRESSED} Suppressed to protect student privacy: the figure describes "
                f"fewer than {k} students."
            )
        notes += list(self.notes)
        return Table(
            pd.DataFrame(rows),
            title=title or f"Baseline equivalence: {self.sample}",
            notes=tuple(notes),
        )

    def plot(self, ax: Any = None) -> Any:
        """Love plot: effect sizes by characteristic with the WWC 0.05 and 0.25 lines.

        Filled dots are the effect sizes on the result's basis, open circles the other
        ones. Returns the matplotlib axes.
        """
        import matplotlib.pyplot as plt

        rows = self._rows[self._rows["kind"] != "missing"]
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 0.35 * len(rows) + 1.4))
        ypos = np.arange(len(rows))[::-1]
        other = "effect_size_raw" if self.basis == "adjusted" else "effect_size_adjusted"
        ax.axvspan(-SATISFIED_MAX, SATISFIED_MAX, color="#e3efe6", zorder=0)
        for x, style in ((SATISFIED_MAX, "--"), (ADJUSTMENT_MAX, "-")):
            for sign in (-1, 1):
                ax.axvline(sign * x, color="#8a8a8a", lw=0.9, ls=style, zorder=1)
        ax.axvline(0, color="black", lw=0.8, zorder=1)
        from matplotlib.lines import Line2D

        ax.scatter(rows[other], ypos, facecolors="none", edgecolors="#8a8a8a", zorder=2)
        palette = {
            "satisfied": "#2e7d32",
            "satisfied by adjustment": "#00597c",
            "not satisfied": "#a03000",
        }
        colors = [palette.get(s, "#8a8a8a") for s in rows["equivalence"]]
        ax.scatter(rows["effect_size"], ypos, c=colors, zorder=3)
        shown = "within-school" if self.basis == "adjusted" else "raw"
        hidden = "raw" if self.basis == "adjusted" else "within-school"
        handles = [
            Line2D([], [], ls="", marker="o", color=c, label=f"{shown}: {name}")
            for name, c in palette.items()
        ] + [
            Line2D([], [], ls="", marker="o", mfc="none", color="#8a8a8a", label=hidden),
        ]
        ax.legend(
            handles=handles,
            frameon=False,
            fontsize=7,
            ncol=2,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
        )
        ax.set_yticks(ypos)
        ax.set_yticklabels(rows["label"].tolist())
        finite = np.abs(rows[["effect_size", other]].to_numpy(dtype=float))
        finite = finite[np.isfinite(finite)]
        lim = max(0.3, float(finite.max()) + 0.03) if finite.size else 0.3
        ax.set_xlim(-lim, lim)
        ax.set_xlabel(
            "Baseline effect size (program minus control); dashed: 0.05, solid: 0.25 (WWC)"
        )
        ax.set_title(f"Baseline balance: {self.sample}", fontsize=10)
        return ax


def _num(v: float, spec: str) -> str:
    return format(v, spec) if v is not None and np.isfinite(v) else ""


def _cell(v: float, hide: bool, spec: str = ".1f") -> str:
    return SUPPRESSED if hide else _num(v, spec)


def _category_text(r: Any) -> str:
    if r.wwc_category == "requires adjustment":
        return "Adjustment required (" + ("adjusted)" if r.adjusted_in_model else "NOT adjusted)")
    return str(r.wwc_category).capitalize()


def _small_row(r: Any, k: int) -> bool:
    """Whether a row's figures describe between 1 and k - 1 students in an arm."""
    counts = [r.n_treatment, r.n_control]
    if r.kind in ("binary", "missing"):
        for n, m in ((r.n_treatment, r.mean_treatment), (r.n_control, r.mean_control)):
            if np.isfinite(m):
                ones = round(n * m)
                counts += [ones, n - ones]
    return any(0 < c < k for c in counts)


def _omnibus_note(om: pd.DataFrame) -> str:
    parts = []
    for r in records(om):
        if not np.isfinite(r.p_value):
            continue
        if r.test == "randomization":
            parts.append(
                f"randomization test p = {r.p_value:.3f} ({r.permutations:,} within-school "
                "permutations of assignment)"
            )
        else:
            name = "F" if r.test == "F" else "HC2-robust Wald F"
            parts.append(
                f"{name}({int(r.df_num)}, {int(r.df_den):,}) = {r.statistic:.2f}, "
                f"p = {r.p_value:.3f}"
            )
    if not parts:
        return "Omnibus test: not computed."
    return (
        "Omnibus test that the characteristics (and missing-value indicators) jointly "
        "predict assignment within schools: " + "; ".join(parts) + "."
    )


def _characteristics(
    data: pd.DataFrame,
    characteristics: Sequence[str] | str | None,
    required: Sequence[str],
    forbidden: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Characteristics to compare and notes on required ones absent from the data."""
    notes: list[str] = []
    if characteristics is None:
        chars = [c for c in BASELINE_COVARIATES if c in data.columns]
    else:
        chars = [characteristics] if isinstance(characteristics, str) else list(characteristics)
        unknown = [c for c in chars if c not in data.columns]
        if unknown:
            raise EstimationError(
                f"unknown characteristic(s) {', '.join(repr(c) for c in unknown)}: not columns "
                "of the data"
            )
    for c in required:
        if c in data.columns:
            chars.append(c)
        else:
            notes.append(f"Required characteristic '{c}' is not in the data.")
    chars = list(dict.fromkeys(chars))
    clash = [c for c in chars if c in forbidden]
    if clash:
        raise EstimationError(
            f"characteristic(s) {', '.join(repr(c) for c in clash)} are the assignment, the "
            "block or the outcome, not baseline characteristics"
        )
    if not chars:
        raise EstimationError(
            "the data have none of the baseline characteristics of the data contract; name "
            "them with characteristics=[...]"
        )
    return chars, notes


def _adjusted_differences(
    z: FloatArray, school: IntArray, columns: Mapping[str, FloatArray]
) -> tuple[dict[str, tuple[float, float, float]], list[str]]:
    """School-fixed-effect-adjusted differences via :func:`estimate_itt` (HC2).

    Every column is an "outcome" with no covariates, so the differences are exactly the
    impact machinery's within-school contrasts, each on the students with a value.
    """
    keys = {name: f"v{j}" for j, name in enumerate(columns)}
    frame = pd.DataFrame({"z": z, "school": school} | {keys[n]: v for n, v in columns.items()})
    notes: list[str] = []

    def run(names: Sequence[str]) -> pd.DataFrame:
        outs = [
            Outcome(keys[n], n, "continuous", "higher", "baseline", "exploratory", "")
            for n in names
        ]
        with warnings.catch_warnings():
            # schools with one arm only: the caller notes them once, not per characteristic
            warnings.simplefilter("ignore", DesignWarning)
            res = estimate_itt(frame, outcomes=outs, treatment="z", block="school", covariates=None)
        return res.to_frame().set_index("label")

    out: dict[str, tuple[float, float, float]] = {}
    try:
        tab = run(list(columns))
        for n in columns:
            r = cast(pd.Series, tab.loc[n])
            out[n] = (float(r["estimate"]), float(r["std_error"]), float(r["p_value"]))
    except EstimationError:
        for n in columns:
            try:
                r = cast(pd.Series, run([n]).loc[n])
                out[n] = (float(r["estimate"]), float(r["std_error"]), float(r["p_value"]))
            except EstimationError as exc:
                notes.append(f"{_label(n)}: adjusted difference not computed ({exc}).")
                out[n] = (np.nan, np.nan, np.nan)
    # estimate_itt's messages name the column by its internal key
    named = []
    for m in notes:
        for n, key in keys.items():
            m = m.replace(f"'{key}'", f"'{n}'")
        named.append(m)
    return out, named


def _omnibus(
    z: FloatArray,
    school: IntArray,
    x: FloatArray,
    permutations: int,
    rng: np.random.Generator | None,
) -> tuple[pd.DataFrame, list[str]]:
    r"""Joint tests that ``x`` predicts ``z`` given school fixed effects.

    The unrestricted model regresses assignment on the columns of ``x`` and school
    indicators; the restricted one on school indicators alone. Within-school permutations
    leave :math:`\tilde z'\tilde z` unchanged, so the F statistic is a monotone function of
    :math:`T = \|Q'z\|^2` with :math:`Q` an orthonormal basis of the school-demeaned
    columns (orthogonal to the school indicators, hence :math:`Q'\tilde z = Q'z`): all
    permutations of a chunk cost one matrix product.
    """
    cols = ["test", "statistic", "df_num", "df_den", "p_value", "permutations"]
    notes: list[str] = []
    order = np.argsort(school, kind="stable")
    zs, ss, xs = z[order], school[order], x[order]
    starts, sizes = _engine.cell_starts(ss)
    zt = zs - np.repeat(np.add.reduceat(zs, starts) / sizes, sizes)
    xt, _ = _engine.demean(xs, starts, sizes)
    keep = (
        _engine.independent_columns(xt.T @ xt, np.einsum("ij,ij->j", xs, xs)) if xs.shape[1] else []
    )
    if len(keep) < xs.shape[1]:
        notes.append(
            f"Omnibus tests: {xs.shape[1] - len(keep)} column(s) (characteristics or "
            "missing-value indicators) constant within schools or collinear with others were "
            "left out."
        )
    xk = xt[:, keep]
    q, n, g = len(keep), zs.size, sizes.size
    df = n - g - q
    nan_rows = [
        {
            "test": t,
            "statistic": np.nan,
            "df_num": q,
            "df_den": df,
            "p_value": np.nan,
            "permutations": 0,
        }
        for t in ("F", "F (HC2)")
    ]
    sst = float(zt @ zt)
    if q == 0 or df <= 0 or sst <= 0:
        notes.append("Omnibus tests not computed: too few students or no usable characteristic.")
        return pd.DataFrame(nan_rows, columns=cols), notes
    a = xk.T @ xk
    ainv = np.linalg.inv(a)
    beta = ainv @ (xk.T @ zt)
    e = zt - xk @ beta
    rss = float(e @ e)
    f_stat = ((sst - rss) / q) / (rss / df)
    p_f = float(stats.f.sf(f_stat, q, df))
    # HC2 with the exact leverage of the full design (school indicators included)
    h = np.repeat(1.0 / sizes, sizes) + np.einsum("ij,jk,ik->i", xk, ainv, xk)
    free = 1.0 - h > 1e-10
    w = np.where(free, e * e / np.where(free, 1.0 - h, 1.0), 0.0)
    v = ainv @ ((xk * w[:, None]).T @ xk) @ ainv
    wald = float(beta @ np.linalg.solve(v, beta)) / q
    p_w = float(stats.f.sf(wald, q, df))
    rows = [
        {
            "test": "F",
            "statistic": f_stat,
            "df_num": q,
            "df_den": df,
            "p_value": p_f,
            "permutations": 0,
        },
        {
            "test": "F (HC2)",
            "statistic": wald,
            "df_num": q,
            "df_den": df,
            "p_value": p_w,
            "permutations": 0,
        },
    ]
    if permutations:
        assert rng is not None
        basis, _ = np.linalg.qr(xk)
        t_obs = float(np.sum((zs @ basis) ** 2))
        extreme = 0
        for zp in within_block_permutations(zs, starts, sizes, permutations, rng):
            t_b = np.sum((zp @ basis) ** 2, axis=1)
            extreme += int(np.count_nonzero(t_b >= t_obs - _TOL * max(1.0, t_obs)))
        rows.append(
            {
                "test": "randomization",
                "statistic": f_stat,
                "df_num": q,
                "df_den": df,
                "p_value": (1.0 + extreme) / (1.0 + permutations),
                "permutations": int(permutations),
            }
        )
    return pd.DataFrame(rows, columns=cols), notes


def baseline_equivalence(
    data: pd.DataFrame,
    *,
    outcome: str | Outcome | None = None,
    characteristics: Sequence[str] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    adjusted_for: Sequence[str] | None = None,
    required: Sequence[str] | None = None,
    basis: Basis = "adjusted",
    permutations: int = 0,
    seed: int | np.random.Generator | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> BaselineResult:
    r"""Compare the program and control groups on baseline characteristics (WWC equivalence).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per randomized student (the students table of the data contract, or any
        frame with the named columns). Not modified.
    outcome : str or Outcome, optional
        Compare the students who have this outcome (its analytic sample), as the WWC
        requires; derived from the raw fields when it is not a column. Default: every
        randomized student.
    characteristics : sequence of str, optional
        Baseline columns to compare; default the data contract's baseline covariates present
        in ``data``. Binary characteristics (0/1) get the Cox index, others Hedges' g.
    treatment : str, default "treatment"
        Assignment column: 1 = program group, 0 = control group.
    block : str, default "school_id"
        Randomization block (school).
    adjusted_for : sequence of str, optional
        Covariates the impact model adjusts for; a characteristic with
        ``0.05 < |ES| <= 0.25`` is satisfied only if listed. Default: the impact model's
        default covariates for ``outcome`` (:func:`cis_eval.default_covariates`), or none
        when no outcome is given.
    required : sequence of str, optional
        Characteristics the review protocol requires; default the outcome's prior-year
        measure (``Outcome.prior``). They are added to ``characteristics``.
    basis : {"adjusted", "raw"}, default "adjusted"
        Difference that decides the WWC category: the within-school (school fixed effects)
        difference, which is what the impact model compares and accounts for assignment
        rates that differ across schools, or the raw difference in means. Both effect sizes
        are reported.
    permutations : int, default 0
        Within-school permutations for the omnibus randomization test (0 skips it; 2,000
        gives a p-value to about +/- 0.01).
    seed : int or numpy.random.Generator, optional
        Seed of the permutations; required when ``permutations > 0``.
    chronic_threshold : float, default 0.10
        Absence share that counts as chronic, when chronic absence is derived here.

    Returns
    -------
    BaselineResult
        ``to_frame()``, ``omnibus()``, ``verdict()``, an MDRC-style ``table()`` and a Love
        ``plot()``.

    Raises
    ------
    EstimationError
        A missing or non-binary assignment, an unknown characteristic or outcome, an
        outcome no student has, or a binary characteristic coded other than 0/1.

    See Also
    --------
    attrition, wwc_review

    Notes
    -----
    For each characteristic, on the sample students with a value:
    :math:`g = \omega(\bar x_T - \bar x_C)/S` with :math:`S` the pooled within-arm SD and
    :math:`\omega = 1 - 3/(4N - 9)`; for binary ones
    :math:`d_{Cox} = \omega[\mathrm{logit}(p_T) - \mathrm{logit}(p_C)]/1.65`. The adjusted
    effect size replaces the difference by the within-school difference (for the Cox
    index, :math:`p_T = p_C + \hat\tau`) and keeps the unadjusted SD, as the WWC does for
    adjusted impacts. The omnibus F tests regress assignment on every characteristic
    (missing values filled with the sample mean, plus missing-value indicators) and school
    indicators; the randomization test re-runs the within-school lottery on the sample
    (keeping each school's number of program students) and compares the same F statistic.

    References
    ----------
    What Works Clearinghouse (2022). *Procedures and Standards Handbook, Version 5.0*.
    U.S. Department of Education, Institute of Education Sciences.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=800, n_schools=10)
    >>> be = ce.baseline_equivalence(trial.students, outcome="chronic_absence")
    >>> be.required
    ('prior_chronic_absence',)
    >>> be.verdict() in ("satisfied", "satisfied by adjustment", "not satisfied")
    True
    """
    data = _check_data(data)
    check_option("basis", basis, ("adjusted", "raw"))
    check_permutations(permutations, seed, what="the randomization test")
    z_all = assignment(data, treatment)
    school_all = _schools(data, block)
    notes: list[str] = []
    o: Outcome | None = None
    if outcome is not None:
        o, y = _outcome_values(data, outcome, chronic_threshold)
        pop, _ = _population(data, o)
        sample = ~np.isnan(y) & pop
        if not sample.any():
            raise EstimationError(f"outcome '{o.name}': no student has this outcome")
        sample_text = f"analytic sample for '{o.label}'"
    else:
        sample = np.ones(len(data), dtype=bool)
        sample_text = "all randomized students"
    req = list(required) if required is not None else ([o.prior] if o and o.prior else [])
    forbidden = [treatment, block] + ([o.name] if o else [])
    chars, n_ = _characteristics(data, characteristics, req, forbidden)
    notes += n_
    if adjusted_for is None:
        adj = default_covariates(o, data) if o is not None else []
    else:
        adj = [adjusted_for] if isinstance(adjusted_for, str) else list(adjusted_for)
    z, school = z_all[sample], school_all[sample]
    if z.min() == z.max():
        raise EstimationError(
            f"the {sample_text} has students of one arm only; no comparison is possible"
        )
    n_s = np.bincount(school)
    t_s = np.bincount(school, weights=z)
    one_arm = int(((n_s > 0) & ((t_s == 0) | (t_s == n_s))).sum())
    if one_arm == int((n_s > 0).sum()):
        notes.append(
            "No school has students of both arms in this sample: within-school (adjusted) "
            "differences and the omnibus tests do not exist; use basis='raw'."
        )
    elif one_arm:
        notes.append(
            f"{one_arm} school(s) have students of one arm only in this sample; they do not "
            "inform the adjusted differences or the omnibus tests."
        )
    values = {c: numeric(data, c, "characteristic")[sample] for c in chars}
    kinds = {c: "binary" if _is_binary(c, values[c]) else "continuous" for c in chars}
    usable = [c for c in chars if (~np.isnan(values[c])).any()]
    for c in chars:
        if c not in usable:
            notes.append(f"'{c}' has no value in the {sample_text}; left out.")
    missing = [c for c in usable if np.isnan(values[c]).any()]
    to_adjust: dict[str, FloatArray] = {c: values[c] for c in usable}
    to_adjust |= {f"{c} (missing)": np.isnan(values[c]).astype(float) for c in missing}
    adjusted, n_ = _adjusted_differences(z, school, to_adjust)
    notes += n_
    rows: list[dict[str, Any]] = []
    for c in usable:
        x = values[c]
        rows.append(_characteristic_row(c, kinds[c], x, z, adjusted[c], c in req, c in adj, basis))
        if c in missing:
            rows.append(_missing_row(c, np.isnan(x).astype(float), z, adjusted[f"{c} (missing)"]))
    frame = pd.DataFrame(rows)
    # omnibus: mean-filled characteristics plus missing-value indicators
    cols = []
    for c in usable:
        x = values[c]
        miss = np.isnan(x)
        cols.append(np.where(miss, np.nanmean(x), x))
        if miss.any():
            cols.append(miss.astype(float))
    xmat = np.column_stack(cols) if cols else np.zeros((z.size, 0))
    rng = rng_from(seed) if permutations else None  # type: ignore[arg-type]
    om, n_ = _omnibus(z, school, xmat, int(permutations), rng)
    notes += n_
    return BaselineResult(
        _rows=frame,
        _omnibus=om,
        outcome=o.name if o else None,
        sample=sample_text,
        n_treatment=int((z == 1).sum()),
        n_control=int((z == 0).sum()),
        n_schools=int(np.unique(school).size),
        adjusted_for=tuple(adj),
        required=tuple(req),
        basis=basis,
        permutations=int(permutations),
        seed=int(seed) if permutations and not isinstance(seed, np.random.Generator) else None,  # type: ignore[arg-type]
        notes=tuple(dict.fromkeys(notes)),
    )


def _arm_stats(x: FloatArray, z: FloatArray) -> dict[str, float]:
    """N, mean and SD (ddof 1) of the non-missing values by arm, in the frame's column order."""
    arms = {"treatment": x[(z == 1.0) & ~np.isnan(x)], "control": x[(z == 0.0) & ~np.isnan(x)]}
    out: dict[str, float] = {}
    for arm, v in arms.items():
        out[f"n_{arm}"] = int(v.size)
    for arm, v in arms.items():
        out[f"mean_{arm}"] = float(v.mean()) if v.size else np.nan
    for arm, v in arms.items():
        out[f"sd_{arm}"] = float(v.std(ddof=1)) if v.size > 1 else np.nan
    return out


def _characteristic_row(
    name: str,
    kind: str,
    x: FloatArray,
    z: FloatArray,
    adjusted: tuple[float, float, float],
    required: bool,
    in_model: bool,
    basis: str,
) -> dict[str, Any]:
    s = _arm_stats(x, z)
    n_t, n_c = int(s["n_treatment"]), int(s["n_control"])
    diff = s["mean_treatment"] - s["mean_control"]
    adj = adjusted[0]
    ok = n_t >= 1 and n_c >= 1 and n_t + n_c >= 3
    if kind == "binary":
        es_type = "Cox index"
        p_c = s["mean_control"]
        es_raw = cox_index(s["mean_treatment"], p_c, n_t, n_c) if ok else np.nan
        es_adj = cox_index(p_c + adj, p_c, n_t, n_c) if ok and np.isfinite(adj) else np.nan
    else:
        es_type = "Hedges' g"
        sd_t = s["sd_treatment"] if n_t > 1 else 0.0
        sd_c = s["sd_control"] if n_c > 1 else 0.0
        es_raw = hedges_g(diff, sd_t, sd_c, n_t, n_c) if ok else np.nan
        es_adj = hedges_g(adj, sd_t, sd_c, n_t, n_c) if ok and np.isfinite(adj) else np.nan
    es = es_adj if basis == "adjusted" else es_raw
    category = wwc_category(es)
    return {
        "characteristic": name,
        "label": _label(name),
        "kind": kind,
        "required": required,
        **s,
        "difference": diff,
        "difference_adjusted": adj,
        "std_error_adjusted": adjusted[1],
        "p_value_adjusted": adjusted[2],
        "effect_size_type": es_type,
        "effect_size_raw": float(es_raw),
        "effect_size_adjusted": float(es_adj),
        "effect_size": float(es),
        "wwc_category": category,
        "adjusted_in_model": in_model,
        "equivalence": _status(category, in_model),
    }


def _missing_row(
    name: str, miss: FloatArray, z: FloatArray, adjusted: tuple[float, float, float]
) -> dict[str, Any]:
    s = _arm_stats(miss, z)
    return {
        "characteristic": name,
        "label": f"{_label(name)}: missing",
        "kind": "missing",
        "required": False,
        **s,
        "difference": s["mean_treatment"] - s["mean_control"],
        "difference_adjusted": adjusted[0],
        "std_error_adjusted": adjusted[1],
        "p_value_adjusted": adjusted[2],
        "effect_size_type": "",
        "effect_size_raw": np.nan,
        "effect_size_adjusted": np.nan,
        "effect_size": np.nan,
        "wwc_category": "",
        "adjusted_in_model": False,
        "equivalence": "",
    }


# ----------------------------------------------------------------------------- boundaries


@functools.cache
def _boundary_table() -> pd.DataFrame:
    path = resources.files("cis_eval").joinpath("_resources", _BOUNDARY_FILE)
    with path.open("r", encoding="utf-8") as fh:
        tab = pd.read_csv(fh, comment="#", keep_default_na=False, na_values=[""])
    tab["confirmed"] = tab["confirmed"].map({"yes": True, "no": False}).astype(bool)
    return tab


def attrition_boundaries(boundary: Boundary | None = None) -> pd.DataFrame:
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
    if not np.isfinite(overall) or overall < -_TOL or overall > 100 + _TOL:
        raise ValueError(f"overall attrition must be a percentage in [0, 100], got {overall!r}")
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


def max_differential_attrition(overall: float, *, boundary: Boundary = "cautious") -> float:
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
    overall: float, differential: float, *, boundary: Boundary = "cautious"
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
        raise ValueError(f"differential attrition must be a number, got {differential!r}")
    limit = _lookup(overall, boundary)[0]
    return "low" if np.isfinite(limit) and abs(differential) <= limit + _TOL else "high"


# ----------------------------------------------------------------------------- attrition


@dataclass(frozen=True, slots=True)
class AttritionResult:
    """Overall and differential attrition per outcome, classified by a WWC boundary.

    Attributes
    ----------
    boundary : str
        ``"cautious"`` or ``"optimistic"``.
    notes : tuple of str
        Randomized samples that differ from the whole table, unconfirmed boundary rows.
    """

    _rows: pd.DataFrame = field(repr=False)
    boundary: str
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        lv = self._rows["attrition_level"]
        return (
            f"AttritionResult({len(self._rows)} outcomes, boundary={self.boundary}, "
            f"{int((lv == 'low').sum())} low / {int((lv == 'high').sum())} high)"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome (a fresh copy).

        Columns: ``outcome, label, n_randomized, n_randomized_treatment,
        n_randomized_control, n_analytic, n_analytic_treatment, n_analytic_control,
        attrition_treatment, attrition_control, overall_attrition`` (percent),
        ``differential_attrition`` (percentage points, absolute), ``boundary,
        boundary_rows`` (whole-percent rows of the table used), ``max_differential`` (pp;
        NaN beyond the table), ``boundary_confirmed, attrition_level`` (``low``/``high``).
        """
        return self._rows.copy()

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
                    "Program attrition (%)": _cell(r.attrition_treatment, small),
                    "Control attrition (%)": _cell(r.attrition_control, small),
                    "Overall (%)": _cell(r.overall_attrition, small),
                    "Differential (pp)": _cell(r.differential_attrition, small),
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
    data: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    treatment: str = "treatment",
    boundary: Boundary = "cautious",
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> AttritionResult:
    r"""Overall and differential attrition per outcome, classified by the WWC boundary.

    Parameters
    ----------
    data : pandas.DataFrame
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
    data = _check_data(data)
    check_option("boundary", boundary, BOUNDARIES)
    z = assignment(data, treatment)
    notes: list[str] = []
    rows = []
    for spec in _outcome_list(data, outcomes):
        o, y = _outcome_values(data, spec, chronic_threshold)
        pop, note = _population(data, o)
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
    level = "low" if np.isfinite(limit) and diff <= limit + _TOL else "high"
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


# ----------------------------------------------------------------------------- clustering


@dataclass(frozen=True, slots=True)
class ClusteringCorrection:
    """A t statistic corrected for clustering the analysis ignored (WWC).

    Attributes
    ----------
    t : float
        Corrected t statistic.
    df : float
        Corrected degrees of freedom ``h``.
    p_value : float
        Two-sided p-value of ``t`` on ``df`` degrees of freedom.
    factor : float
        ``t / t_uncorrected``.
    t_uncorrected : float
        The t statistic of the analysis that ignored clustering.
    n, cluster_size, icc : float
        Total sample, average cluster size and intraclass correlation used.
    """

    t: float
    df: float
    p_value: float
    factor: float
    t_uncorrected: float
    n: float
    cluster_size: float
    icc: float

    def __repr__(self) -> str:
        return (
            f"ClusteringCorrection(t {self.t_uncorrected:.3f} -> {self.t:.3f}, "
            f"df {self.df:.1f}, p {self.p_value:.4f}, icc {self.icc:g})"
        )


def wwc_clustering_correction(
    t: float, *, n: float, cluster_size: float, icc: float
) -> ClusteringCorrection:
    r"""The WWC correction of a t statistic from a mismatched analysis (clusters ignored).

    For designs that assign whole clusters (schools, classrooms) but analyse students as
    if they were independent. It does not apply to cis_eval's default design (students
    randomized within schools, analysed with school fixed effects).

    Parameters
    ----------
    t : float
        t statistic of the analysis that ignored clustering.
    n : float
        Total number of students ``N``.
    cluster_size : float
        Average number of students per cluster ``n`` (``N`` / number of clusters).
    icc : float
        Intraclass correlation ``rho`` in [0, 1). WWC defaults when not reported: 0.20 for
        achievement outcomes, 0.10 for behavioural ones.

    Returns
    -------
    ClusteringCorrection

    Raises
    ------
    ValueError
        ``icc`` outside [0, 1), fewer than two clusters, or a sample too small for the
        correction (a non-positive numerator).

    Notes
    -----
    .. math::

        t_A = t\sqrt{\frac{(N - 2) - 2(n - 1)\rho}{(N - 2)[1 + (n - 1)\rho]}}, \qquad
        h = \frac{[(N - 2) - 2(n - 1)\rho]^2}
                 {(N - 2)(1 - \rho)^2 + n(N - 2n)\rho^2 + 2(N - 2n)\rho(1 - \rho)}.

    References
    ----------
    What Works Clearinghouse (2022). *Procedures and Standards Handbook, Version 5.0*,
    appendix E (clustering correction). Hedges, L. V. (2007). Correcting a significance
    test for clustering. *Journal of Educational and Behavioral Statistics*, 32(2),
    151-179.

    Examples
    --------
    >>> from cis_eval import wwc_clustering_correction
    >>> c = wwc_clustering_correction(2.5, n=200, cluster_size=20, icc=0.2)
    >>> round(c.t, 4), round(c.df, 2)
    (1.119, 118.5)
    """
    for name, v in (("t", t), ("n", n), ("cluster_size", cluster_size), ("icc", icc)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(v).__name__}")
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    if not 0 <= icc < 1:
        raise ValueError(f"icc must be in [0, 1), got {icc!r}")
    if cluster_size < 1:
        raise ValueError(f"cluster_size must be at least 1, got {cluster_size!r}")
    if n < 2 * cluster_size:
        raise ValueError(
            f"the correction needs at least two clusters: n = {n:g} students but clusters "
            f"of {cluster_size:g}"
        )
    num = (n - 2) - 2 * (cluster_size - 1) * icc
    if num <= 0:
        raise ValueError("too few students for the clustering correction (N - 2 <= 2(n - 1)rho)")
    factor = math.sqrt(num / ((n - 2) * (1 + (cluster_size - 1) * icc)))
    den = (
        (n - 2) * (1 - icc) ** 2
        + cluster_size * (n - 2 * cluster_size) * icc**2
        + 2 * (n - 2 * cluster_size) * icc * (1 - icc)
    )
    h = num**2 / den
    t_a = float(t) * factor
    p = float(2 * stats.t.sf(abs(t_a), h))
    return ClusteringCorrection(
        t=t_a,
        df=float(h),
        p_value=p,
        factor=factor,
        t_uncorrected=float(t),
        n=float(n),
        cluster_size=float(cluster_size),
        icc=float(icc),
    )


def _default_icc(o: Outcome) -> float:
    return DEFAULT_ICC.get(o.domain, DEFAULT_ICC_OTHER)


# ----------------------------------------------------------------------------- review


@dataclass(frozen=True, slots=True)
class WWCReview:
    """A per-outcome rating in the What Works Clearinghouse's terms, with its reasons.

    Attributes
    ----------
    design : str
        ``"rct"`` (students randomized within schools) or ``"cluster_rct"``.
    boundary : str
        Attrition boundary used.
    randomization_intact : bool
        As declared by the user.
    attrition : AttritionResult
        The attrition of every outcome.
    baseline : mapping
        :class:`BaselineResult` of each outcome's analytic sample, by outcome (read-only).
    notes : tuple of str
        Caveats (unconfirmed boundary rows, dropped schools, design warnings).
    """

    _rows: pd.DataFrame = field(repr=False)
    design: str
    boundary: str
    randomization_intact: bool
    attrition: AttritionResult = field(repr=False)
    baseline: Mapping[str, BaselineResult] = field(repr=False)
    notes: tuple[str, ...] = ()
    _reasons: Mapping[str, tuple[str, ...]] = field(repr=False, default_factory=dict)

    def __repr__(self) -> str:
        counts = self._rows["rating"].value_counts(sort=False)
        parts = "; ".join(f"{k}: {int(v)}" for k, v in counts.items())
        return f"WWCReview({len(self._rows)} outcomes; {parts})"

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome (a fresh copy).

        Columns: ``outcome, label, domain, design, boundary, overall_attrition,
        differential_attrition, max_differential, boundary_confirmed, attrition_level,
        randomization_intact, confounded, equivalence_required, required_characteristics,
        baseline_effect_size`` (largest |ES| among the required characteristics, signed),
        ``equivalence, rating, reasons`` (separated by ``"; "``), ``impact, std_error,
        p_value, p_bh, wwc_effect_size`` (positive = favourable, as the WWC reports),
        ``effect_size_type, improvement_index, favourable, wwc_finding, n_treatment,
        n_control`` and, for ``design="cluster_rct"``, ``icc, t_corrected, df_corrected,
        p_value_corrected``.
        """
        return self._rows.copy()

    def reasons(self, outcome: str) -> tuple[str, ...]:
        """The reasons behind one outcome's rating, in order."""
        if outcome not in self._reasons:
            raise KeyError(f"no outcome {outcome!r} in this review")
        return self._reasons[outcome]

    def table(self, *, min_cell: int = DEFAULT_MIN_CELL, title: str | None = None) -> Table:
        """The rating of each outcome with attrition, equivalence and the effect size.

        Parameters
        ----------
        min_cell : int, default 10
            Attrition figures of an outcome where an arm lost between 1 and
            ``min_cell - 1`` students are shown as ``*``.
        title : str, optional
            Table title.
        """
        k = check_min_cell(min_cell)
        att = self.attrition.to_frame().set_index("outcome")
        rows = []
        hidden: set[str] = set()
        for r in records(self._rows):
            a = att.loc[r.outcome]
            lost = (
                a["n_randomized_treatment"] - a["n_analytic_treatment"],
                a["n_randomized_control"] - a["n_analytic_control"],
            )
            small = any(0 < c < k for c in lost)
            if small:
                hidden.add(r.outcome)
            rows.append(
                {
                    "Outcome": r.label,
                    "Overall attrition (%)": SUPPRESSED
                    if small
                    else _num(r.overall_attrition, ".1f"),
                    "Differential (pp)": SUPPRESSED
                    if small
                    else _num(r.differential_attrition, ".1f"),
                    "Attrition": str(r.attrition_level).capitalize(),
                    "Baseline equivalence": r.equivalence,
                    "Effect size": _num(r.wwc_effect_size, "+.3f"),
                    "Improvement index": _num(r.improvement_index, "+.1f"),
                    "Finding": r.wwc_finding,
                    "WWC rating": r.rating,
                }
            )
        notes = [
            f"Design: {DESIGNS[self.design]}; randomization "
            + ("declared intact" if self.randomization_intact else "declared compromised")
            + f"; WWC {self.boundary} attrition boundary.",
            "Rules (WWC Handbook v5.0): a randomized trial with low attrition and intact "
            "randomization can meet standards without reservations; with high attrition (or "
            "compromised randomization) it must show baseline equivalence of the analytic "
            "sample on the required characteristics (the outcome's prior-year measure) and "
            "can at best meet standards with reservations. |ES| <= 0.05 is equivalent; "
            "0.05-0.25 only if the impact model adjusts for it; above 0.25 not.",
            "Effect size: Hedges' g or Cox index of the covariate-adjusted impact, signed so "
            "that positive is favourable; improvement index in percentile points. Finding: "
            "statistically significant at p < 0.05 (two-sided, unadjusted; see p_bh for the "
            "Benjamini-Hochberg adjustment within domain) or substantively important "
            "(|ES| >= 0.25), otherwise indeterminate.",
        ]
        for r in records(self._rows):
            reasons = list(self._reasons[r.outcome])
            if r.outcome in hidden:
                # the first reason quotes the attrition figures the table suppresses
                reasons[0] = (
                    f"{r.attrition_level} attrition under the {self.boundary} boundary "
                    "(figures suppressed)"
                )
            notes.append(f"{r.label}: {'; '.join(reasons)}.")
        if hidden:
            notes.append(
                f"{SUPPRESSED} Suppressed to protect student privacy: an arm lost fewer than "
                f"{k} students."
            )
        notes += list(self.notes)
        return Table(
            pd.DataFrame(rows),
            title=title or "What Works Clearinghouse standards: rating by outcome",
            notes=tuple(dict.fromkeys(notes)),
        )

    def plot(self, ax: Any = None) -> Any:
        """The outcomes' attrition against the WWC boundaries (see :meth:`AttritionResult.plot`)."""
        return self.attrition.plot(ax)


def _finding(es: float, p: float) -> str:
    if not np.isfinite(es):
        return "not computed"
    direction = "positive" if es > 0 else "negative"
    if np.isfinite(p) and p < 0.05:
        return f"statistically significant {direction}"
    if abs(es) >= SUBSTANTIVE_MIN:
        return f"substantively important {direction}"
    return "indeterminate"


def _required_map(
    metas: Sequence[Outcome], required: Sequence[str] | Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    if required is None:
        return {o.name: [o.prior] if o.prior else [] for o in metas}
    if isinstance(required, str):
        return {o.name: [required] for o in metas}
    if isinstance(required, Mapping):
        unknown = set(required) - {o.name for o in metas}
        if unknown:
            raise EstimationError(
                f"required characteristics given for outcome(s) not reviewed: "
                f"{', '.join(sorted(unknown))}"
            )
        return {o.name: list(required.get(o.name, [o.prior] if o.prior else [])) for o in metas}
    return {o.name: list(required) for o in metas}


def _fmt_es(v: float) -> str:
    return f"{v:+.3f}" if np.isfinite(v) else "undefined"


def wwc_review(
    data: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    design: Design = "rct",
    randomization_intact: bool = True,
    confounded: bool = False,
    boundary: Boundary = "cautious",
    required: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None = "default",
    treatment: str = "treatment",
    block: str = "school_id",
    basis: Basis = "adjusted",
    icc: float | Mapping[str, float] | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> WWCReview:
    """Rate each outcome's evidence by the What Works Clearinghouse group-design standards.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per randomized student. Not modified.
    outcomes : sequence of str or Outcome, optional
        Outcomes to rate; default the study's six that the data have.
    design : {"rct", "cluster_rct"}, default "rct"
        ``"rct"``: students randomized within schools (the study's design).
        ``"cluster_rct"``: whole schools randomized; the WWC then applies its cluster RCT
        standards, which cis_eval does not implement: outcomes are "Not rated", a
        :class:`~cis_eval.errors.DesignWarning` is issued, and the significance of a
        student-level analysis is corrected for clustering
        (:func:`wwc_clustering_correction`).
    randomization_intact : bool, default True
        Whether assignment was carried out as randomized (no reassignment, no students
        added or removed by arm after the lottery). ``False`` is treated like high
        attrition: baseline equivalence must be shown.
    confounded : bool, default False
        Declare a confounding factor (a component of the program perfectly aligned with
        one unit, e.g. one coordinator serving every program student). A confound is also
        detected when fewer than two schools have students of both arms in an outcome's
        analytic sample. Confounded findings do not meet standards.
    boundary : {"cautious", "optimistic"}, default "cautious"
        WWC attrition boundary (cautious for dropout-prevention outcomes).
    required : sequence of str or mapping, optional
        Baseline characteristics that must be equivalent when equivalence is required;
        default each outcome's prior-year measure (``Outcome.prior``). A mapping gives
        them per outcome.
    covariates : "default", None, list or mapping, default "default"
        The impact model's covariates, as in :func:`cis_eval.estimate_itt`; they decide
        whether a 0.05-0.25 baseline difference is adjusted for.
    treatment, block : str
        Assignment and randomization-block columns.
    basis : {"adjusted", "raw"}, default "adjusted"
        Baseline difference that decides equivalence (see :func:`baseline_equivalence`).
    icc : float or mapping, optional
        ``design="cluster_rct"`` only: intraclass correlation(s) for the clustering
        correction, one value or by outcome; default the WWC's 0.20 for academic outcomes
        and 0.10 for behavioural ones.
    chronic_threshold : float, default 0.10
        Absence share that counts as chronic.

    Returns
    -------
    WWCReview
        ``to_frame()`` (one row per outcome with the rating and its reasons), ``table()``,
        ``reasons(outcome)`` and ``plot()``; the attrition and baseline results are kept
        as attributes.

    Raises
    ------
    EstimationError
        Bad columns or outcomes (see :func:`estimate_itt`).
    DesignError
        ``design="rct"`` but no school has students of both arms.

    Warns
    -----
    DesignWarning
        ``design="cluster_rct"``.

    Notes
    -----
    Ratings, per outcome, in order: a cluster design is not rated; a confounded finding
    does not meet standards; low attrition with intact randomization meets standards
    without reservations; otherwise the analytic sample must be equivalent at baseline on
    every required characteristic (|ES| <= 0.05, or <= 0.25 with the characteristic in the
    impact model) to meet standards with reservations, else it does not meet standards.
    The effect size, improvement index and finding come from :func:`cis_eval.estimate_itt`
    with school fixed effects and ``covariates``.

    References
    ----------
    What Works Clearinghouse (2022). *Procedures and Standards Handbook, Version 5.0*.
    U.S. Department of Education, Institute of Education Sciences.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=800, n_schools=10)
    >>> review = ce.wwc_review(trial.students, outcomes=["chronic_absence"])
    >>> review.to_frame().loc[0, "rating"]
    'Meets WWC standards without reservations'
    """
    data = _check_data(data)
    check_option("design", design, DESIGNS)
    check_option("boundary", boundary, BOUNDARIES)
    check_option("basis", basis, ("adjusted", "raw"))
    if not isinstance(randomization_intact, (bool, np.bool_)):
        raise TypeError("randomization_intact must be True or False")
    if not isinstance(confounded, (bool, np.bool_)):
        raise TypeError("confounded must be True or False")
    z = assignment(data, treatment)
    school = _schools(data, block)
    mixed = _schools_with_both(school, z)
    notes: list[str] = []
    if design == "rct" and mixed == 0:
        raise DesignError(
            "no school has students of both arms: assignment looks school-level (cluster "
            "randomized), not within schools; pass design='cluster_rct'"
        )
    if design == "cluster_rct":
        msg = (
            "design='cluster_rct': the WWC reviews school-randomized trials under its cluster "
            "RCT standards (cluster-level attrition, students joining after assignment, "
            "baseline equivalence of students), which cis_eval does not check, so outcomes "
            "are not rated; significance is corrected for clustering (WWC)."
        )
        if mixed:
            msg += (
                f" Note that {mixed} school(s) have students of both arms: the data look "
                "randomized within schools."
            )
        warnings.warn(msg, DesignWarning, stacklevel=2)
        notes.append(msg)
    if design == "cluster_rct" and basis == "adjusted":
        # school effects absorb school-level assignment: only raw differences exist
        basis = "raw"
        notes.append(
            "School-level assignment: baseline differences are raw differences in means "
            "(within-school differences do not exist)."
        )
    specs = _outcome_list(data, outcomes)
    metas = [outcome_meta(s, data) for s in specs]
    req_map = _required_map(metas, required)
    att = attrition(
        data,
        outcomes=metas,
        treatment=treatment,
        boundary=boundary,
        chronic_threshold=chronic_threshold,
    )
    notes += list(att.notes)
    itt, n_ = _impacts(data, metas, design, covariates, treatment, block, chronic_threshold)
    notes += n_
    att_rows = att.to_frame().set_index("outcome")
    rows = []
    baselines: dict[str, BaselineResult] = {}
    reasons: dict[str, tuple[str, ...]] = {}
    for o in metas:
        a = cast(pd.Series, att_rows.loc[o.name])
        imp = cast(pd.Series, itt.loc[o.name])
        adj = [c.strip() for c in str(imp["covariates"]).split(",") if c.strip()]
        try:
            be = baseline_equivalence(
                data,
                outcome=o,
                treatment=treatment,
                block=block,
                adjusted_for=adj,
                required=req_map[o.name],
                basis=basis,
                chronic_threshold=chronic_threshold,
            )
            baselines[o.name] = be
        except EstimationError as exc:
            be = None
            notes.append(f"{o.label}: baseline equivalence not computed ({exc}).")
        _, y = _outcome_values(data, o, chronic_threshold)
        kept = ~np.isnan(y)
        row = _review_row(
            o,
            a,
            imp,
            be,
            req_map[o.name],
            design,
            randomization_intact,
            confounded,
            _schools_with_both(school[kept], z[kept]),
            boundary,
        )
        if design == "cluster_rct":
            extra = _cluster_columns(o, imp, icc, int(np.unique(school[kept]).size))
            row["reasons"] += extra.pop("_cluster_reason")
            row |= extra
            row["wwc_finding"] = _finding(row["wwc_effect_size"], extra["p_value_corrected"])
        reasons[o.name] = tuple(row["reasons"])
        row["reasons"] = "; ".join(row["reasons"])
        rows.append(row)
    return WWCReview(
        _rows=pd.DataFrame(rows),
        design=design,
        boundary=boundary,
        randomization_intact=bool(randomization_intact),
        attrition=att,
        baseline=MappingProxyType(baselines),
        notes=tuple(dict.fromkeys(notes)),
        _reasons=MappingProxyType(reasons),
    )


def _impacts(
    data: pd.DataFrame,
    metas: Sequence[Outcome],
    design: str,
    covariates: str | Sequence[str] | Mapping[str, Sequence[str]] | None,
    treatment: str,
    block: str,
    chronic_threshold: float,
) -> tuple[pd.DataFrame, list[str]]:
    """Impact estimates: school fixed effects (rct), or one pooled regression (cluster_rct)."""
    if design == "cluster_rct":
        # school effects are collinear with school-level assignment: the analysis that
        # ignores clustering is one pooled OLS, whose t statistic the WWC then corrects
        key = "__cis_eval_single_block__"
        frame = data.assign(**{key: 0})
        kw: dict[str, Any] = {"block": key, "se_type": "classical"}
    else:
        frame = data
        kw = {"block": block}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DesignWarning)
        res = estimate_itt(
            frame,
            outcomes=list(metas),
            treatment=treatment,
            covariates=covariates,
            chronic_threshold=chronic_threshold,
            **kw,
        )
    notes = [str(w.message) for w in caught if issubclass(w.category, DesignWarning)]
    for w in caught:
        if not issubclass(w.category, DesignWarning):  # pragma: no cover - passed on
            warnings.warn(w.message, w.category, stacklevel=3)
    return res.to_frame().set_index("outcome"), notes


def _review_row(
    o: Outcome,
    a: pd.Series,
    imp: pd.Series,
    be: BaselineResult | None,
    req: Sequence[str],
    design: str,
    intact: bool,
    confounded: bool,
    both: int,
    boundary: str,
) -> dict[str, Any]:
    reasons: list[str] = []
    level = str(a["attrition_level"])
    limit = float(a["max_differential"])
    allowed = (
        f"at most {limit:.1f} pp allowed at {a['boundary_rows']} overall"
        if np.isfinite(limit)
        else f"every differential is high at {a['overall_attrition']:.1f}% overall"
    )
    reasons.append(
        f"overall attrition {a['overall_attrition']:.1f}%, differential "
        f"{a['differential_attrition']:.1f} pp: {level} attrition under the {boundary} "
        f"boundary ({allowed}"
        + ("" if a["boundary_confirmed"] else ", a boundary row that is unconfirmed")
        + ")"
    )
    # confound: fewer than two schools with both arms in the analytic sample
    detected = design == "rct" and both < 2
    is_confounded = bool(confounded) or detected
    if confounded:
        reasons.append("a confounding factor was declared")
    if detected:
        reasons.append(
            f"only {both} school(s) have students of both arms in the analytic sample: the "
            "program's effect cannot be separated from that school and its coordinator "
            "(WWC n = 1 confound)"
        )
    if not intact:
        reasons.append("randomization declared compromised")
    need_eq = level == "high" or not intact
    # baseline equivalence of the required characteristics
    eq_rows = be.to_frame() if be is not None else pd.DataFrame()
    if not eq_rows.empty:
        eq_rows = eq_rows[eq_rows["kind"] != "missing"].set_index("characteristic")
    details = []
    statuses = []
    es_req = np.nan
    for c in req:
        if eq_rows.empty or c not in eq_rows.index:
            statuses.append("not computed")
            details.append(f"'{c}' is not in the data")
            continue
        r = cast(pd.Series, eq_rows.loc[c])
        statuses.append(str(r["equivalence"]))
        es = float(r["effect_size"])
        if np.isfinite(es) and not (np.isfinite(es_req) and abs(es_req) >= abs(es)):
            es_req = es
        adj_txt = (
            " (the impact model adjusts for it)"
            if r["adjusted_in_model"]
            else " (the impact model does not adjust for it)"
        )
        details.append(
            f"{r['label']} ES {_fmt_es(es)}: {r['wwc_category']}"
            + (adj_txt if r["wwc_category"] == "requires adjustment" else "")
        )
    verdict = _worst(statuses) if req else "not computed"
    if not req:
        details.append("no required baseline characteristic was named (pass required=...)")
    if need_eq:
        equivalence = verdict
        reasons.append(
            "baseline equivalence of the analytic sample is required: "
            + ", ".join(details)
            + f" -> {verdict}"
        )
    else:
        equivalence = "not required"
        if req:
            reasons.append(
                "baseline equivalence not required with low attrition and intact "
                "randomization (for information: " + ", ".join(details) + ")"
            )
    if design == "cluster_rct":
        rating = RATING_NONE
    elif is_confounded:
        rating = RATING_NOT
    elif not need_eq:
        rating = RATING_WITHOUT
    elif verdict in ("satisfied", "satisfied by adjustment"):
        rating = RATING_WITH
    else:
        rating = RATING_NOT
    es_wwc = (
        favourable(float(imp["effect_size"]), o.direction)
        if np.isfinite(imp["effect_size"])
        else np.nan
    )
    return {
        "outcome": o.name,
        "label": o.label,
        "domain": o.domain,
        "design": design,
        "boundary": boundary,
        "overall_attrition": float(a["overall_attrition"]),
        "differential_attrition": float(a["differential_attrition"]),
        "max_differential": limit,
        "boundary_confirmed": bool(a["boundary_confirmed"]),
        "attrition_level": level,
        "randomization_intact": bool(intact),
        "confounded": is_confounded,
        "equivalence_required": need_eq,
        "required_characteristics": ", ".join(req),
        "baseline_effect_size": es_req,
        "equivalence": equivalence,
        "rating": rating,
        "reasons": reasons,
        "impact": float(imp["estimate"]),
        "std_error": float(imp["std_error"]),
        "p_value": float(imp["p_value"]),
        "p_bh": float(imp["p_bh"]),
        "wwc_effect_size": es_wwc,
        "effect_size_type": str(imp["effect_size_type"]),
        "improvement_index": float(imp["improvement_index"]),
        "favourable": bool(np.isfinite(es_wwc) and es_wwc > 0),
        "wwc_finding": _finding(es_wwc, float(imp["p_value"])),
        "n_treatment": int(imp["n_treatment"]),
        "n_control": int(imp["n_control"]),
    }


def _cluster_columns(
    o: Outcome, imp: pd.Series, icc: float | Mapping[str, float] | None, n_clusters: int
) -> dict[str, Any]:
    if icc is None:
        rho = _default_icc(o)
    elif isinstance(icc, Mapping):
        rho = float(icc.get(o.name, _default_icc(o)))
    else:
        rho = float(icc)
    n = float(imp["n"])
    out: dict[str, Any] = {"icc": rho}
    try:
        c = wwc_clustering_correction(
            float(imp["statistic"]), n=n, cluster_size=n / n_clusters, icc=rho
        )
        out |= {"t_corrected": c.t, "df_corrected": c.df, "p_value_corrected": c.p_value}
        detail = (
            f"clustering correction (ICC {rho:.2f}, {n / n_clusters:.1f} students per school): "
            f"t {c.t_uncorrected:.2f} -> {c.t:.2f} on {c.df:.1f} df, p = {c.p_value:.3f}"
        )
    except ValueError as exc:
        out |= {"t_corrected": np.nan, "df_corrected": np.nan, "p_value_corrected": np.nan}
        detail = f"clustering correction not computed ({exc})"
    out["_cluster_reason"] = [
        "school-level assignment: the WWC cluster RCT standards apply and are not checked here",
        detail,
    ]
    return out


def _schools_with_both(school: IntArray, z: FloatArray) -> int:
    """Schools with students of both arms."""
    if school.size == 0:
        return 0
    n_s = np.bincount(school)
    t_s = np.bincount(school, weights=z)
    return int(((t_s > 0) & (t_s < n_s)).sum())
