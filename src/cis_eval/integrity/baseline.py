r"""Baseline equivalence of the program and control groups, by the WWC's standards.

:func:`baseline_equivalence` compares the groups on baseline characteristics in the
analytic sample of an outcome: means, SDs, raw and school-fixed-effect-adjusted
differences, WWC effect sizes (Hedges' g or the Cox index) and the WWC category; missing
values as their own rows; a joint F test and a randomization test that the characteristics
do not predict assignment within schools. The adjusted differences come from the impact
core (:mod:`cis_eval._core.impact`), the same within-school contrasts the impact model makes.

Source: WWC Procedures and Standards Handbook, Version 5.0 (2022), baseline equivalence and
effect sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, cast, get_args

import numpy as np
import pandas as pd
from scipy import stats

from .._core import engine as _engine
from .._core.design import assignment, numeric
from .._core.impact import impacts
from .._core.permutation import within_block_permutations
from .._core.spec import ImpactSpec, default_covariates
from .._typing import EquivalenceBasis, FloatArray, IntArray, check_option, check_sims, rng_from
from ..effect_sizes import cox_index, hedges_g
from ..errors import EstimationError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.privacy import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell
from ..present.results import ResultMixin
from ..present.table import Table, records
from ..schema import BASELINE_COVARIATES, COLUMNS, Outcome
from ._common import (
    TOL,
    check_students,
    label,
    num,
    outcome_values,
    population,
    school_codes,
)

__all__ = [
    "ADJUSTMENT_MAX",
    "SATISFIED_MAX",
    "BaselineResult",
    "baseline_equivalence",
    "worst_status",
    "wwc_category",
]

SATISFIED_MAX = 0.05
"""|ES| at or below this: baseline equivalence satisfied."""
ADJUSTMENT_MAX = 0.25
"""|ES| above :data:`SATISFIED_MAX` and at or below this: satisfied only with adjustment."""

# Order of the equivalence statuses from best to worst (the verdict is the worst).
_STATUS_ORDER = ("satisfied", "satisfied by adjustment", "not computed", "not satisfied")

# Column names of the assignment and the school in the frame handed to the impact core;
# the other columns are the characteristics, named as the user named them.
_Z = "__cis_eval_assignment__"
_SCHOOL = "__cis_eval_school__"


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
    >>> from cis_eval.integrity import wwc_category
    >>> [wwc_category(v) for v in (0.05, -0.12, 0.2500, 0.31)]
    ['satisfied', 'requires adjustment', 'requires adjustment', 'not satisfied']
    """
    if effect_size is None or not np.isfinite(effect_size):
        return "not computed"
    a = abs(float(effect_size))
    if a <= SATISFIED_MAX + TOL:
        return "satisfied"
    if a <= ADJUSTMENT_MAX + TOL:
        return "requires adjustment"
    return "not satisfied"


def _status(category: str, adjusted: bool) -> str:
    if category == "requires adjustment":
        return "satisfied by adjustment" if adjusted else "not satisfied"
    return category


def worst_status(statuses: Sequence[str]) -> str:
    """The worst of several equivalence statuses (``"not computed"`` for none)."""
    if not statuses:
        return "not computed"
    return max(statuses, key=_STATUS_ORDER.index)


@dataclass(frozen=True, slots=True)
class BaselineResult(ResultMixin):
    """Baseline equivalence of the program and control groups in an analytic sample.

    The tidy frame (``to_frame()``) has one row per characteristic, then a row per
    characteristic with missing values, and the columns ``characteristic, label, kind``
    (``continuous``, ``binary`` or ``missing``: the share with no value), ``required,
    n_treatment, n_control, mean_treatment, mean_control, sd_treatment, sd_control,
    difference, difference_adjusted, std_error_adjusted, p_value_adjusted, effect_size_type,
    effect_size_raw, effect_size_adjusted, effect_size`` (the one on ``basis``),
    ``wwc_category, adjusted_in_model, equivalence``. Means of binary characteristics and
    missing shares are proportions; differences are in the characteristic's units.
    Missing-value rows count every student in the sample and have no effect size or
    category.

    Attributes
    ----------
    outcome : str or None
        Outcome whose analytic sample was compared (``None``: every randomized student).
    sample : str
        Description of the sample.
    n_treatment, n_control, n_schools : int
        Students by arm and schools in the sample.
    covariates : tuple of str
        Covariates the impact model adjusts for (decides "satisfied by adjustment").
    required : tuple of str
        Characteristics the review requires (the outcome's prior-year measure by default).
    basis : str
        Effect size that decides the category: ``"adjusted"`` (within-school difference) or
        ``"raw"``.
    sims : int
        Permutations of the randomization test (0: not run).
    seed : int or None
        Seed of the permutations.
    notes : tuple of str
        What was left out and why.
    """

    _tidy_field: ClassVar[str] = "_rows"
    _keys: ClassVar[tuple[str, ...]] = ("characteristic",)
    # the accessors read the within-school (adjusted) differences of the characteristics
    _accessor_columns: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "estimate": "difference_adjusted",
            "std_error": "std_error_adjusted",
            "p_value": "p_value_adjusted",
        }
    )

    _rows: pd.DataFrame = field(repr=False)
    _omnibus: pd.DataFrame = field(repr=False)
    outcome: str | None
    sample: str
    n_treatment: int
    n_control: int
    n_schools: int
    covariates: tuple[str, ...]
    required: tuple[str, ...]
    basis: str
    sims: int = 0
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

    def _accessor_rows(self) -> pd.DataFrame:
        """The characteristics' rows (the missing-value rows have no comparison of their own)."""
        return self._rows[self._rows["kind"] != "missing"]

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
        return worst_status(
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
                    "Program group": num(r.mean_treatment * scale, spec),
                    "Control group": num(r.mean_control * scale, spec),
                    "Difference": num(r.difference * scale, "+" + spec),
                    "Adjusted difference": num(r.difference_adjusted * scale, "+" + spec),
                    "Effect size": num(r.effect_size, "+.3f") if r.kind != "missing" else "",
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
            + (", ".join(self.covariates) if self.covariates else "nothing")
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
    students: pd.DataFrame,
    characteristics: Sequence[str] | str | None,
    required: Sequence[str],
    forbidden: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Characteristics to compare and notes on required ones absent from the data."""
    notes: list[str] = []
    if characteristics is None:
        chars = [c for c in BASELINE_COVARIATES if c in students.columns]
    else:
        chars = [characteristics] if isinstance(characteristics, str) else list(characteristics)
        unknown = [c for c in chars if c not in students.columns]
        if unknown:
            raise EstimationError(
                f"unknown characteristic(s) {', '.join(repr(c) for c in unknown)}: not columns "
                "of the data"
            )
    for c in required:
        if c in students.columns:
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
    """School-fixed-effect-adjusted differences from the impact core (HC2, no covariates).

    Every column is an "outcome" with no covariates, so the differences are exactly the
    impact model's within-school contrasts, each on the students with a value.
    """
    frame = pd.DataFrame({_Z: z, _SCHOOL: school} | dict(columns))
    notes: list[str] = []

    def run(names: Sequence[str]) -> pd.DataFrame:
        outs = [Outcome(n, n, "continuous", "higher", "baseline", "exploratory", "") for n in names]
        spec = ImpactSpec.build(frame, outcomes=outs, treatment=_Z, block=_SCHOOL, covariates=None)
        # schools with one arm only: the caller notes them once, not per characteristic
        _, cols, _ = impacts(frame, spec)
        return pd.DataFrame(cols).set_index("outcome")

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
                notes.append(f"{label(n)}: adjusted difference not computed ({exc}).")
                out[n] = (np.nan, np.nan, np.nan)
    return out, notes


def _omnibus(
    z: FloatArray,
    school: IntArray,
    x: FloatArray,
    sims: int,
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
    if sims:
        assert rng is not None
        basis, _ = np.linalg.qr(xk)
        t_obs = float(np.sum((zs @ basis) ** 2))
        extreme = 0
        for zp in within_block_permutations(zs, starts, sizes, sims, rng):
            t_b = np.sum((zp @ basis) ** 2, axis=1)
            extreme += int(np.count_nonzero(t_b >= t_obs - TOL * max(1.0, t_obs)))
        rows.append(
            {
                "test": "randomization",
                "statistic": f_stat,
                "df_num": q,
                "df_den": df,
                "p_value": (1.0 + extreme) / (1.0 + sims),
                "permutations": sims,
            }
        )
    return pd.DataFrame(rows, columns=cols), notes


def baseline_equivalence(
    students: pd.DataFrame,
    *,
    outcome: str | Outcome | None = None,
    characteristics: Sequence[str] | None = None,
    treatment: str = "treatment",
    block: str = "school_id",
    covariates: Sequence[str] | None = None,
    required: Sequence[str] | None = None,
    basis: EquivalenceBasis = "adjusted",
    sims: int = 0,
    seed: int | np.random.Generator | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> BaselineResult:
    r"""Compare the program and control groups on baseline characteristics (WWC equivalence).

    Parameters
    ----------
    students : pandas.DataFrame
        One row per randomized student (the students table of the data contract, or any
        frame with the named columns). Not modified.
    outcome : str or Outcome, optional
        Compare the students who have this outcome (its analytic sample), as the WWC
        requires; derived from the raw fields when it is not a column. Default: every
        randomized student.
    characteristics : sequence of str, optional
        Baseline columns to compare; default the data contract's baseline covariates present
        in ``students``. Binary characteristics (0/1) get the Cox index, others Hedges' g.
    treatment : str, default "treatment"
        Assignment column: 1 = program group, 0 = control group.
    block : str, default "school_id"
        Randomization block (school).
    covariates : sequence of str, optional
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
    sims : int, default 0
        Within-school permutations for the omnibus randomization test (0 skips it; 2,000
        gives a p-value to about +/- 0.01).
    seed : int or numpy.random.Generator, optional
        Seed of the permutations; required when ``sims > 0``.
    chronic_threshold : float, default 0.10
        Absence share that counts as chronic, when chronic absence is derived here.

    Returns
    -------
    BaselineResult
        ``to_frame()``, ``omnibus()``, ``verdict()``, an MDRC-style ``table()`` and a Love
        ``plot()``.

    Raises
    ------
    OptionError
        A ``basis`` that is not an option, or ``sims`` without a seed.
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
    students = check_students(students)
    check_option("basis", basis, get_args(EquivalenceBasis))
    sims = check_sims(sims, seed, what="the randomization test")
    z_all = assignment(students, treatment)
    school_all = school_codes(students, block)
    notes: list[str] = []
    o: Outcome | None = None
    if outcome is not None:
        o, y = outcome_values(students, outcome, chronic_threshold)
        pop, _ = population(students, o)
        sample = ~np.isnan(y) & pop
        if not sample.any():
            raise EstimationError(f"outcome '{o.name}': no student has this outcome")
        sample_text = f"analytic sample for '{o.label}'"
    else:
        sample = np.ones(len(students), dtype=bool)
        sample_text = "all randomized students"
    req = list(required) if required is not None else ([o.prior] if o and o.prior else [])
    forbidden = [treatment, block] + ([o.name] if o else [])
    chars, n_ = _characteristics(students, characteristics, req, forbidden)
    notes += n_
    if covariates is None:
        adj = default_covariates(o, students) if o is not None else []
    else:
        adj = [covariates] if isinstance(covariates, str) else list(covariates)
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
    values = {c: numeric(students, c, "characteristic")[sample] for c in chars}
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
    rng = rng_from(seed) if sims else None  # type: ignore[arg-type]  # checked above
    om, n_ = _omnibus(z, school, xmat, sims, rng)
    notes += n_
    return BaselineResult(
        _rows=frame,
        _omnibus=om,
        outcome=o.name if o else None,
        sample=sample_text,
        n_treatment=int((z == 1).sum()),
        n_control=int((z == 0).sum()),
        n_schools=int(np.unique(school).size),
        covariates=tuple(adj),
        required=tuple(req),
        basis=basis,
        sims=sims,
        seed=int(seed) if sims and not isinstance(seed, np.random.Generator) else None,  # type: ignore[arg-type]
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
        "label": label(name),
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
        "label": f"{label(name)}: missing",
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
