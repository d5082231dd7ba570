"""Power, minimum detectable effect size (MDES) and sample size for a blocked trial.

Students are randomized within schools (the blocks). Three verbs answer the planning
questions from one design declaration, a :class:`PowerDesign` (built and checked once,
passed to any verb, or given as keywords, and stored on every :class:`PowerResult`):

* :func:`mdes` -- the smallest true effect the design detects with the target power;
* :func:`power` -- the probability of a significant estimate for a given true effect;
* :func:`sample_size` -- the number of schools, or of students per school, needed for a
  given effect.

Models (Dong & Maynard 2013, PowerUp!; Hunter, Miratrix & Porter, PUMP), with J schools,
n the harmonic mean of school sizes, P the share treated, g student covariates and
g2 school covariates (effects in standard deviations of the outcome):

=============  ==========  ===========  =======================  ==============================
``model``      PowerUp!    PUMP         degrees of freedom       standard error of the impact
=============  ==========  ===========  =======================  ==============================
``constant``   bira2c1     d2.1_m2fc    J(n - 1) - g - 1         sqrt[(1-ICC)(1-R2)/(P(1-P)Jn)]
``fixed``      bira2f1     d2.1_m2ff    J(n - 2) - g             as ``constant``
``random``     bira2r1     d2.1_m2fr    J - g2 - 1               sqrt[ICC w (1-R2_T)/J + (1-ICC)
                                                                 (1-R2)/(P(1-P)Jn)]
``unblocked``  ira1r1      (d1.1_m1c)   N - g - 2                sqrt[(1-R2)/(P(1-P)N)]
=============  ==========  ===========  =======================  ==============================

``R2`` is the share of the within-school variance explained by student covariates and
``ICC`` the share of the outcome variance between schools (PUMP's parameterization). With
``icc=0``, ``r2`` is PowerUp!'s ``r21`` for ``bira2c1``/``bira2f1``: the R-squared that
includes the school dummies. For ``unblocked`` (students randomized and analysed without
school blocks), ``r2`` is the share of the total variance explained and ``icc`` is unused.

The MDES is Bloom's (1995) multiplier times the standard error,
``M = t(1 - alpha/tails, df) + t(power, df)``; power counts rejections in both tails of a
central t shifted by effect / SE, the distribution PUMP simulates. Binary outcomes are
reported in percentage points as well: MDE = MDES x sqrt[pi (1 - pi)] for control rate pi.

With several outcomes and a multiple-testing procedure (Bonferroni, Holm, Benjamini-
Hochberg, Westfall-Young single-step or step-down), power is computed as in PUMP by drawing
the joint test statistics (multivariate t with the design's degrees of freedom and an
equicorrelation ``rho``), applying the procedure to every draw and counting rejections:
individual power (per outcome), d-minimal power (at least d significant) and complete power
(all significant). The MDES under a procedure is found by bisection on common draws.

Differences from the reference implementations, on purpose:

* d-minimal and complete power count the outcomes with a non-zero true effect that are
  significant *after* adjustment. PUMP computes complete power from unadjusted p-values;
  that quantity is complete power with ``mtp="none"`` here.
* The random-impacts model uses PowerUp!'s df = J - g2 - 1 (school covariates); PUMP's
  ``d2.1_m2fr`` subtracts the number of student covariates instead.
* Benjamini-Hochberg is the step-up FDR procedure (some PUMP versions ran Hochberg's
  FWER procedure under that name).
* Sample sizes are the smallest whole number that reaches the target; PowerUp!'s ``mrss``
  rounds to the nearest whole number.

Only simulated power draws random numbers, so only then is ``seed`` required. The
numerics live in :mod:`cis_eval.design._power_core`. The package re-exports the verbs, so
``cis_eval.power`` is the function; import the module with
``from cis_eval.design.power import mdes, power, sample_size``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict, TypeVar, Unpack

import numpy as np
import pandas as pd

from .._typing import (
    CurveBy,
    FloatArray,
    PowerApproximation,
    PowerDefinition,
    PowerModel,
    PowerMTP,
    SolveFor,
    check_option,
)
from ..errors import OptionTypeError
from ..present.results import ResultMixin
from ..present.table import Table, records
from ._power_core import (
    _MAX_SIZE,
    _MODEL_INFO,
    _MTP_LABELS,
    _SIMULATED_MTPS,
    APPROXIMATIONS,
    CURVE_BY,
    MODELS,
    MTPS,
    POWER_DEFINITIONS,
    SOLVE_FOR,
    _bad,
    _definition_power,
    _draws,
    _evaluate,
    _fail,
    _in_range,
    _integer,
    _mdes_shift,
    _needs_simulation,
    _number,
    _per_outcome,
    _Point,
    _reject,
    _require,
    _run,
    _validate,
)

__all__ = [
    "APPROXIMATIONS",
    "MODELS",
    "MTPS",
    "POWER_DEFINITIONS",
    "PowerDesign",
    "PowerDesignFields",
    "PowerResult",
    "mdes",
    "power",
    "sample_size",
]

# The options as tuples, read off the Literals so the two cannot disagree.


# ----------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class PowerResult(ResultMixin):
    """Minimum detectable effects, power or required sample size of a blocked trial.

    The tidy frame (``to_frame()``; one row per outcome) has the columns ``outcome, model,
    schools, students_per_school, n_students, share_treated, r2, icc, omega,
    r2_school_impact, control_rate, df, std_error, multiplier, mdes, mde_pp, effect_size,
    effect_pp, power, mc_std_error, alpha, tails, mtp``. ``mdes`` and ``std_error`` are in
    standard deviations of the outcome; ``mde_pp`` and ``effect_pp`` in percentage points
    for binary outcomes (NaN otherwise); ``power`` is each outcome's individual power at
    ``effect_size`` under the procedure, with its Monte Carlo standard error when
    simulated. ``mdes``, ``power`` and ``std_error`` give those columns by outcome.

    Attributes
    ----------
    kind : {"mdes", "power", "sample_size"}
        Which question the result answers.
    model : {"constant", "fixed", "random", "unblocked"}
        The impact model (see the module notes for PowerUp! and PUMP names).
    schools : int
        Number of schools J (solved for when ``solved_for == "schools"``).
    students_per_school : float
        Harmonic mean of school sizes n (solved for when
        ``solved_for == "students_per_school"``).
    school_sizes : tuple of float
        The school sizes given, if any (their harmonic mean is ``students_per_school``).
    df : float
        Degrees of freedom of the impact test.
    target_power : float
        Power the MDES or sample size aims at.
    mtp : str
        Multiple-testing procedure.
    power_definition : {"individual", "minimal", "complete"}
        Power definition the MDES or sample size aims at (``at_least`` for minimal).
    at_least : int
        d of d-minimal power.
    rho : float
        Correlation of the outcomes' test statistics (simulation only).
    sims : int
        Draws of the test statistics when power is simulated.
    seed : int or None
        Seed of those draws (``None`` when nothing was simulated and no seed was given).
    simulated : bool
        Whether any number was simulated (multiple outcomes).
    solved_for : str or None
        ``"schools"`` or ``"students_per_school"`` for sample-size results.
    design : PowerDesign
        The design the numbers describe (for sample-size results, with the size solved
        for filled in).
    """

    kind: str
    model: str
    schools: int
    students_per_school: float
    school_sizes: tuple[float, ...]
    df: float
    target_power: float
    mtp: str
    power_definition: str
    at_least: int
    rho: float
    sims: int
    seed: int | None
    simulated: bool
    solved_for: str | None
    design: PowerDesign = field(repr=False)
    _frame: pd.DataFrame = field(repr=False)
    _definitions: pd.DataFrame = field(repr=False)
    _point: _Point = field(repr=False)
    _tidy_field: ClassVar[str] = "_frame"

    def __repr__(self) -> str:
        m = len(self._frame)
        extra = f", mtp={self.mtp}" if self.mtp != "none" else ""
        return (
            f"PowerResult({self.kind}, {self.model} model, {self.schools:,} schools x "
            f"{self.students_per_school:,.1f} students, {m} outcome{'s' if m != 1 else ''}"
            f"{extra})"
        )

    # -- data ---------------------------------------------------------------------------

    def power_definitions(self) -> pd.DataFrame:
        """Multiple-outcome power (a fresh copy; empty for one outcome or no simulation).

        Columns ``definition`` (``individual_mean``, ``minimal``, ``complete``), ``d``,
        ``power``, ``mc_std_error``, ``mtp``. Minimal and complete power count the
        outcomes with a non-zero true effect that are significant after adjustment.
        """
        return self._definitions.copy()

    @property
    def mdes(self) -> pd.Series:
        """MDES by outcome, in standard deviations."""
        return self._column("mdes")

    @property
    def power(self) -> pd.Series:
        """Individual power by outcome at ``effect_size``."""
        return self._column("power")

    # -- presentation ---------------------------------------------------------------------

    def notes(self) -> tuple[str, ...]:
        """Footnotes: model, formula, degrees of freedom, assumptions and procedure."""
        info = _MODEL_INFO[self.model]
        d = self._point
        tails = "two-tailed" if d.tails == 2 else "one-tailed"
        out = [
            f"Model: {info['label']} (PowerUp! {info['powerup']}, PUMP {info['pump']}); "
            f"SE = {info['se']}; df = {info['df']} = {self.df:,.0f}.",
            f"{d.schools:,} schools, {self.students_per_school:,.1f} students per school, "
            f"{d.share_treated:.0%} treated; alpha = {d.alpha:g}, {tails}.",
        ]
        if self.school_sizes:
            arith = float(np.mean(self.school_sizes))
            out.append(
                f"Students per school is the harmonic mean of the {len(self.school_sizes)} "
                f"school sizes (arithmetic mean {arith:,.1f})."
            )
        if self.kind != "power":
            if _needs_simulation(d, self.power_definition):
                out.append(
                    "MDES = multiplier x SE; the multiplier is the smallest common shift of "
                    "the simulated test statistics that reaches power "
                    f"{self.target_power:.0%}."
                )
            else:
                exact = " (noncentral t solved exactly)" if d.approximation == "noncentral" else ""
                out.append(
                    "MDES = M x SE with Bloom's multiplier M = t(1 - alpha/tails, df) + "
                    f"t(power, df) at power {self.target_power:.0%}{exact}."
                )
        if self.kind == "sample_size":
            size = "schools" if self.solved_for == "schools" else "students per school"
            out.append(
                f"Solved for the smallest whole number of {size} that detects the effect "
                f"shown with {self.target_power:.0%} power."
            )
        if d.mtp != "none":
            line = f"Multiple testing: {_MTP_LABELS[d.mtp]} across {d.m} outcomes"
            if d.mtp == "bonferroni" and not self.simulated:
                line += f" (alpha/{d.m} per test)."
            else:
                line += (
                    f"; power simulated from {self.sims:,} draws of the test statistics "
                    f"(multivariate t, correlation {self.rho:g}, seed {self.seed})."
                )
            out.append(line)
        if self.kind != "power" and (self.power_definition != "individual"):
            what = (
                f"at least {self.at_least} of {d.m} outcomes significant"
                if self.power_definition == "minimal"
                else f"all {d.m} outcomes significant"
            )
            out.append(f"Target power definition: {what}.")
        if not np.all(np.isnan(d.control_rate)):
            out.append(
                "Binary outcomes: MDE in percentage points = MDES x sqrt[pi (1 - pi)] for "
                "control rate pi."
            )
        return tuple(out)

    def table(self) -> Table:
        """The result as a presentation table with reader labels and notes."""
        f = self._frame
        binary = bool(np.any(~np.isnan(f["control_rate"].to_numpy())))
        cols: dict[str, Any] = {"Outcome": f["outcome"]}
        formats = {
            "Std. error": ".3f",
            "df": ",.0f",
            "Multiplier": ".3f",
            "MDES (SD)": ".3f",
            "MDE (pp)": ".1f",
            "Effect (SD)": ".3f",
            "Effect (pp)": ".1f",
            "Power": ".3f",
            "Students per school": ",.1f",
            "R2": ".2f",
        }
        if self.kind == "sample_size":
            cols["Schools"] = f["schools"]
            cols["Students per school"] = f["students_per_school"]
        cols["R2"] = f["r2"]
        cols["Std. error"] = f["std_error"]
        cols["Multiplier"] = f["multiplier"]
        cols["MDES (SD)"] = f["mdes"]
        if binary:
            cols["MDE (pp)"] = f["mde_pp"]
        if self.kind != "mdes":
            cols["Effect (SD)"] = f["effect_size"]
            if binary:
                cols["Effect (pp)"] = f["effect_pp"]
        cols["Power"] = f["power"]
        data = pd.DataFrame(cols)
        if not self._definitions.empty and self.kind != "mdes":
            m = len(f)
            k = int((f["effect_size"] != 0).sum())
            of = "" if k == m else f" of the {k} with an effect"
            extra = []
            for rec in records(self._definitions):
                if rec.definition == "individual_mean":
                    label = "Mean individual power" + ("" if k == m else f" ({k} with an effect)")
                elif rec.definition == "complete":
                    label = f"All {m} significant"
                else:
                    label = f"At least {rec.d}{of} significant"
                row: dict[str, Any] = dict.fromkeys(data.columns)
                row["Outcome"] = label
                row["Power"] = rec.power
                extra.append(row)
            data = pd.concat([data, pd.DataFrame(extra, columns=data.columns)], ignore_index=True)
        titles = {
            "mdes": "Minimum detectable effect sizes",
            "power": "Statistical power",
            "sample_size": "Required sample size",
        }
        return Table(
            data,
            title=titles[self.kind],
            notes=self.notes(),
            formats={k: v for k, v in formats.items() if k in data.columns},
        )

    # -- curves ---------------------------------------------------------------------------

    def curve(
        self, *, by: CurveBy = "schools", values: Sequence[float] | None = None
    ) -> pd.DataFrame:
        """MDES by outcome over a range of numbers of schools or students per school.

        Parameters
        ----------
        by : {"schools", "students_per_school"}
            The size that varies; the other stays at this result's value.
        values : sequence of float, optional
            Sizes to evaluate. Default: about a quarter to three times the design's size.

        Returns
        -------
        pandas.DataFrame
            Columns ``by`` (the name passed), ``outcome``, ``mdes``, ``mde_pp``, ``df``.
        """
        check_option("by", by, CURVE_BY)
        d = self._point
        if values is None:
            if by == "schools":
                lo = 1 if d.model == "unblocked" else 2
                grid = np.unique(np.round(np.geomspace(max(lo, d.schools / 4), 3 * d.schools, 12)))
            else:
                grid = np.unique(np.round(np.geomspace(max(3.0, d.n / 4), 3 * d.n, 12)))
            values = [float(v) for v in grid]
        rows = []
        for v in values:
            point = d.with_size(schools=int(v)) if by == "schools" else d.with_size(n=float(v))
            if point.df() <= 0:
                continue
            k, _ = _mdes_shift(point, self.target_power, self.power_definition, self.at_least)
            mdes_sd = k * point.se()
            pp = 100.0 * mdes_sd * np.sqrt(d.control_rate * (1.0 - d.control_rate))
            for name, m_, p_ in zip(d.names, mdes_sd, pp, strict=True):
                rows.append({by: v, "outcome": name, "mdes": m_, "mde_pp": p_, "df": point.df()})
        return pd.DataFrame(rows, columns=[by, "outcome", "mdes", "mde_pp", "df"])

    def plot(self, ax: Any = None, *, by: CurveBy = "schools") -> Any:
        """Power curve: MDES against the number of schools or students per school.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is made when omitted.
        by : {"schools", "students_per_school"}
            The size on the horizontal axis.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        curve = self.curve(by=by)
        groups: dict[tuple[float, ...], list[str]] = {}
        for name, g in curve.groupby("outcome", sort=False):
            key = tuple(np.round(g["mdes"].to_numpy(), 6))
            groups.setdefault(key, []).append(str(name))
        for names in groups.values():
            sub = curve[curve["outcome"] == names[0]]
            label = ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more"
            ax.plot(sub[by], sub["mdes"], marker="o", markersize=3, label=label)
        x0 = self.schools if by == "schools" else self.students_per_school
        ax.axvline(x0, linestyle=":", color="0.4", linewidth=1)
        ax.set_xlabel("Number of schools" if by == "schools" else "Students per school")
        ax.set_ylabel(f"MDES (SD) at {self.target_power:.0%} power")
        ax.set_title(
            f"{self.model.capitalize()} model"
            + (f", {_MTP_LABELS[self.mtp]}" if self.mtp != "none" else ""),
            fontsize="medium",
        )
        ax.set_ylim(bottom=0)
        if len(groups) > 1:
            ax.legend(frameon=False, fontsize="small")
        return ax


def _result(
    d: _Point,
    spec: PowerDesign,
    *,
    kind: str,
    target: float,
    definition: str,
    at_least: int,
    effects: FloatArray | None,
    solved_for: str | None = None,
) -> PowerResult:
    frame, definitions = _evaluate(
        d,
        target=target,
        definition=definition,
        at_least=at_least,
        effects=effects,
        simulate_definitions=(kind == "power"),
    )
    simulated = bool(not definitions.empty or (d.m > 1 and d.mtp in _SIMULATED_MTPS))
    return PowerResult(
        kind=kind,
        model=d.model,
        schools=d.schools,
        students_per_school=d.n,
        school_sizes=d.school_sizes,
        df=float(frame["df"].iloc[0]),
        target_power=target,
        mtp=d.mtp,
        power_definition=definition,
        at_least=at_least,
        rho=d.rho,
        sims=d.sims,
        seed=d.seed,
        simulated=simulated,
        solved_for=solved_for,
        design=spec,
        _frame=frame,
        _definitions=definitions,
        _point=d,
    )


def _check_target(target: float, definition: str, at_least: int, m: int) -> tuple[float, int]:
    t = _number("target_power", target)
    _in_range("target_power", t, 0.0, 1.0, low_open=True, high_open=True)
    check_option("power_definition", definition, POWER_DEFINITIONS)
    d = _integer("at_least", at_least, 1)
    if definition == "minimal" and d > m:
        raise _bad(f"at_least = {d} but there {'is' if m == 1 else 'are'} only {m} outcomes")
    return t, d


# ----------------------------------------------------------------------------- verbs

# The parameters every verb shares are documented once, here, and written into the
# docstrings of PowerDesign and of the three verbs.
_DESIGN_PARAMETERS = """\
    schools : int, optional
        Number of schools J (at least 2; 1 is allowed for ``model="unblocked"``). May be
        left out when ``students_per_school`` lists every school's size, and is left out
        by :func:`sample_size` when it solves for it.
    students_per_school : float or sequence of float, optional
        Students per school, or every school's size; a list is summarised by its harmonic
        mean (as PowerUp! and PUMP expect) and the notes say so. Required by :func:`mdes`
        and :func:`power`.
    share_treated : float, default 0.5
        Share of students assigned to the program, P, in (0, 1).
    r2 : float or sequence of float, default 0
        Share of the within-school outcome variance explained by student covariates, in
        [0, 1); one value or one per outcome. With ``icc=0`` this is PowerUp!'s ``r21``.
    icc : float or sequence of float, default 0
        Intraclass correlation: share of the outcome variance between schools, in [0, 1).
    model : {"constant", "fixed", "random", "unblocked"}, default "constant"
        Impact model; see the module notes.
    omega : float or sequence of float, default 0
        Random model only: variance of school impacts over variance of school intercepts.
    r2_school_impact : float or sequence of float, default 0
        Random model only: share of the impact variance explained by school covariates.
    n_covariates, n_school_covariates : int, default 0
        Numbers of student (g) and school (g2) covariates; they only change the df.
    alpha : float, default 0.05
        Significance level (family-wise for a multiple-testing procedure).
    tails : {1, 2}, default 2
        One- or two-tailed test.
    outcomes : int or sequence of str, default 1
        Number of outcomes, or their names.
    control_rate : float or sequence of float or None, optional
        Control-group rate of binary outcomes, for the MDE in percentage points (``None``
        for continuous outcomes in a list).
    mtp : {"none", "bonferroni", "holm", "bh", "wy-ss", "wy-sd"}, default "none"
        Multiple-testing procedure across the outcomes (case-insensitive).
    rho : float, default 0
        Correlation between the outcomes' test statistics.
    approximation : {"shifted", "noncentral"}, default "shifted"
        ``shifted`` uses Bloom's multiplier (PowerUp!, PUMP, WWC); ``noncentral`` solves
        the noncentral-t power equation exactly (single-outcome calculations only)."""

_RUN_PARAMETERS = """\
    sims : int, default 20000
        Draws of the test statistics when power is simulated (at least 1,000).
    seed : int or numpy.random.Generator, optional
        Seed of the simulation, recorded in the result. Required whenever power is
        simulated (several outcomes under Holm, Benjamini-Hochberg or Westfall-Young, a
        minimal or complete power definition, or :func:`power` with several outcomes);
        not needed for analytic results."""

_TARGET_PARAMETERS = """\
    target_power : float, default 0.80
        Target power, in (0, 1).
    power_definition : {"individual", "minimal", "complete"}, default "individual"
        What the target power refers to: each outcome, at least ``at_least`` outcomes, or
        all outcomes significant.
    at_least : int, default 1
        d of d-minimal power."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _document(obj: _F) -> _F:
    """Write the shared parameter blocks into a docstring (one source for all verbs)."""
    doc = obj.__doc__ or ""
    obj.__doc__ = (
        doc.replace("    {design_parameters}\n", _DESIGN_PARAMETERS + "\n")
        .replace("    {run_parameters}\n", _RUN_PARAMETERS + "\n")
        .replace("    {target_parameters}\n", _TARGET_PARAMETERS + "\n")
    )
    return obj


@_document
@dataclass(frozen=True, slots=True)
class PowerDesign:
    """A planned blocked trial, as :func:`mdes`, :func:`power` and :func:`sample_size` read it.

    Built and checked once; every verb accepts it (or its fields as keywords) and stores it
    on the result. Change one field with :func:`dataclasses.replace`, or pass the field
    to the verb with the design: ``mdes(design, schools=40)``.

    Parameters
    ----------
    {design_parameters}

    Raises
    ------
    OptionError
        A value out of range or of the wrong kind, naming the argument.
    DesignError
        A design that cannot be analysed (one school in a blocked design, df <= 0).

    Examples
    --------
    >>> from cis_eval.design.power import PowerDesign, mdes
    >>> design = PowerDesign(schools=20, students_per_school=60, r2=0.5)
    >>> round(float(mdes(design).mdes.iloc[0]), 3)
    0.114
    >>> mdes(design, schools=40).design.schools
    40
    """

    schools: int | None = None
    students_per_school: float | Sequence[float] | None = None
    share_treated: float = 0.5
    r2: float | Sequence[float] = 0.0
    icc: float | Sequence[float] = 0.0
    model: PowerModel = "constant"
    omega: float | Sequence[float] = 0.0
    r2_school_impact: float | Sequence[float] = 0.0
    n_covariates: int = 0
    n_school_covariates: int = 0
    alpha: float = 0.05
    tails: int = 2
    outcomes: int | Sequence[str] = 1
    control_rate: float | Sequence[float | None] | None = None
    mtp: PowerMTP = "none"
    rho: float = 0.0
    approximation: PowerApproximation = "shifted"
    _point: _Point = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # lists become tuples so the design is immutable and hashable
        for name in ("students_per_school", "r2", "icc", "omega", "r2_school_impact"):
            value = getattr(self, name)
            if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
                object.__setattr__(self, name, tuple(value))
        for name in ("outcomes", "control_rate"):
            value = getattr(self, name)
            if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.mtp, str):
            object.__setattr__(self, "mtp", self.mtp.lower())
        object.__setattr__(self, "_point", _validate(self))


class PowerDesignFields(TypedDict, total=False):
    """The fields of :class:`PowerDesign`, accepted as keywords by every power verb."""

    schools: int | None
    students_per_school: float | Sequence[float] | None
    share_treated: float
    r2: float | Sequence[float]
    icc: float | Sequence[float]
    model: PowerModel
    omega: float | Sequence[float]
    r2_school_impact: float | Sequence[float]
    n_covariates: int
    n_school_covariates: int
    alpha: float
    tails: int
    outcomes: int | Sequence[str]
    control_rate: float | Sequence[float | None] | None
    mtp: PowerMTP
    rho: float
    approximation: PowerApproximation


def _spec(design: PowerDesign | None, fields: PowerDesignFields) -> PowerDesign:
    """The design of a call: the object given, with any fields given as keywords replaced."""
    if design is None:
        return PowerDesign(**fields)
    if not isinstance(design, PowerDesign):
        raise OptionTypeError(
            f"design must be a cis_eval.PowerDesign, got {type(design).__name__}; or give "
            "its fields as keywords (schools=..., students_per_school=..., ...)"
        )
    return dataclasses.replace(design, **fields) if fields else design


@_document
def mdes(
    design: PowerDesign | None = None,
    /,
    *,
    target_power: float = 0.80,
    power_definition: PowerDefinition = "individual",
    at_least: int = 1,
    sims: int = 20_000,
    seed: int | np.random.Generator | None = None,
    **fields: Unpack[PowerDesignFields],
) -> PowerResult:
    r"""Minimum detectable effect size of a blocked, individually randomized trial.

    Parameters
    ----------
    design : PowerDesign, optional
        The trial. Instead (or to change some of its fields), give the fields as keywords:
    {design_parameters}
    {target_parameters}
    {run_parameters}

    Returns
    -------
    PowerResult
        ``to_frame()`` has the MDES per outcome, its standard error, df and multiplier.

    Raises
    ------
    OptionError
        A value out of range or of the wrong kind (share treated 0 or 1, R-squared
        outside [0, 1), negative ICC, a simulation without a seed, ...), naming the
        argument.
    DesignError
        A design that cannot be analysed (one school in a blocked design, df <= 0).

    See Also
    --------
    power, sample_size, PowerDesign

    Notes
    -----
    .. math:: \mathrm{MDES} = \left[t_{1-\alpha/2}(df) + t_{1-\beta}(df)\right] SE

    with SE and df from the model (module notes). Under Bonferroni the per-test level is
    :math:`\alpha/M`. Under Holm, Benjamini-Hochberg or Westfall-Young, and for minimal or
    complete power, the multiplier is the smallest common shift of the simulated
    statistics that reaches the target power, so MDES = multiplier x SE for every outcome.

    References
    ----------
    Bloom, H. S. (1995). Minimum detectable effects. *Evaluation Review* 19(5), 547-556.
    Dong, N. & Maynard, R. (2013). PowerUp!. *JREE* 6(1), 24-67.
    Hunter, K., Miratrix, L. & Porter, K. (2024). PUMP. *Journal of Statistical Software*.
    Porter, K. E. (2018). Statistical power in evaluations that investigate effects on
    multiple outcomes. *JREE* 11(2), 267-295.

    Examples
    --------
    >>> from cis_eval.design.power import mdes
    >>> res = mdes(schools=20, students_per_school=60, r2=0.5)
    >>> round(float(res.mdes.iloc[0]), 3)
    0.114
    >>> res = mdes(schools=20, students_per_school=60, r2=0.2, control_rate=0.3)
    >>> round(float(res.to_frame()["mde_pp"].iloc[0]), 1)
    6.6
    """
    spec = _spec(design, fields)
    d = _run(spec._point, sims, seed)
    _require(d)
    target, d_min = _check_target(target_power, power_definition, at_least, d.m)
    return _result(
        d,
        spec,
        kind="mdes",
        target=target,
        definition=power_definition,
        at_least=d_min,
        effects=None,
    )


def _effects(
    d: _Point,
    effect_size: float | Sequence[float] | None,
    effect_pp: float | Sequence[float] | None,
) -> FloatArray:
    if (effect_size is None) == (effect_pp is None):
        raise _bad("give exactly one of effect_size (SD units) or effect_pp (percentage points)")
    if effect_size is not None:
        return _per_outcome("effect_size", effect_size, d.m, low=-np.inf, high=np.inf)
    pp = _per_outcome("effect_pp", effect_pp, d.m, low=-100.0, high=100.0)
    if np.any(np.isnan(d.control_rate)):
        raise _bad("effect_pp needs control_rate for every outcome (binary outcomes)")
    return pp / (100.0 * np.sqrt(d.control_rate * (1.0 - d.control_rate)))


@_document
def power(
    design: PowerDesign | None = None,
    /,
    *,
    effect_size: float | Sequence[float] | None = None,
    effect_pp: float | Sequence[float] | None = None,
    target_power: float = 0.80,
    sims: int = 20_000,
    seed: int | np.random.Generator | None = None,
    **fields: Unpack[PowerDesignFields],
) -> PowerResult:
    r"""Power of a blocked, individually randomized trial to detect a given effect.

    Parameters
    ----------
    design : PowerDesign, optional
        The trial. Instead (or to change some of its fields), give the fields as keywords:
    {design_parameters}
    effect_size : float or sequence of float, optional
        True effect in standard deviations of the outcome (magnitude; one-tailed tests are
        in its direction); one value or one per outcome (0 for outcomes without effect).
    effect_pp : float or sequence of float, optional
        The effect in percentage points for binary outcomes (needs ``control_rate``).
        Give exactly one of ``effect_size`` and ``effect_pp``.
    target_power : float, default 0.80
        Power at which the MDES column (and :meth:`PowerResult.plot`) is computed.
    {run_parameters}

    Returns
    -------
    PowerResult
        ``to_frame()["power"]`` is each outcome's individual power under the procedure;
        with several outcomes, ``power_definitions()`` adds mean individual, d-minimal and
        complete power, simulated with ``sims`` draws and ``seed``.

    Raises
    ------
    OptionError, DesignError
        Invalid design or effect (see :func:`mdes`).

    See Also
    --------
    mdes, sample_size, PowerDesign

    Notes
    -----
    With :math:`\delta = |\text{effect}| / SE` and :math:`c = t_{1-\alpha/2}(df)`,

    .. math:: \text{power} = 1 - F_{df}(c - \delta) + F_{df}(-c - \delta)

    (the shifted central t that PUMP simulates; ``approximation="noncentral"`` uses the
    noncentral t of PowerUp! and ``pwr`` instead). Because :func:`mdes` uses Bloom's
    multiplier, ``power`` at the MDES exceeds the target by the far-tail probability
    :math:`F_{df}(-2c - t_{power})`, below 0.001 for df >= 5.

    Examples
    --------
    >>> from cis_eval.design.power import power
    >>> res = power(effect_size=0.25, schools=14, students_per_school=55)
    >>> round(float(res.power.iloc[0]), 3)
    0.934
    """
    spec = _spec(design, fields)
    d = _run(spec._point, sims, seed)
    _require(d)
    target, _ = _check_target(target_power, "individual", 1, d.m)
    eff = _effects(d, effect_size, effect_pp)
    return _result(
        d, spec, kind="power", target=target, definition="individual", at_least=1, effects=eff
    )


@_document
def sample_size(
    design: PowerDesign | None = None,
    /,
    *,
    effect_size: float | Sequence[float] | None = None,
    effect_pp: float | Sequence[float] | None = None,
    solve_for: SolveFor = "schools",
    target_power: float = 0.80,
    power_definition: PowerDefinition = "individual",
    at_least: int = 1,
    sims: int = 20_000,
    seed: int | np.random.Generator | None = None,
    **fields: Unpack[PowerDesignFields],
) -> PowerResult:
    """Smallest number of schools, or students per school, that detects a given effect.

    Parameters
    ----------
    design : PowerDesign, optional
        The trial, without the size solved for. Instead (or to change some of its
        fields), give the fields as keywords:
    {design_parameters}
    effect_size, effect_pp : float or sequence of float
        The effect to detect (give exactly one), as in :func:`power`.
    solve_for : {"schools", "students_per_school"}, default "schools"
        The size to solve for; leave it out of the design and give the other one as a
        single number.
    {target_parameters}
    {run_parameters}

    Returns
    -------
    PowerResult
        ``schools`` or ``students_per_school`` is the smallest whole number at which every
        outcome's MDES is at most its effect (or, when simulated, the power definition
        reaches the target); ``to_frame()`` shows the MDES and power achieved there.

    Raises
    ------
    OptionError
        Invalid input (see :func:`mdes`).
    DesignError
        An effect no size can reach (e.g. with random school impacts, adding students
        cannot remove the between-school impact variance).

    See Also
    --------
    mdes, power, PowerDesign

    Notes
    -----
    PowerUp!'s ``mrss`` functions round an iterated continuous solution to the nearest
    whole number, which can fall just short of the target; here the answer is the
    smallest whole number that reaches it.

    Examples
    --------
    >>> from cis_eval.design.power import sample_size
    >>> sample_size(effect_size=0.325, students_per_school=15).schools
    20
    """
    check_option("solve_for", solve_for, SOLVE_FOR)
    spec = _spec(design, fields)
    if solve_for == "schools":
        if spec.schools is not None:
            raise _bad("solve_for='schools': leave schools out and give students_per_school")
        if spec.students_per_school is None or isinstance(spec.students_per_school, Sequence):
            raise _bad("solve_for='schools' needs students_per_school as a single number")
    else:
        if spec.students_per_school is not None:
            raise _bad(
                "solve_for='students_per_school': leave students_per_school out and give schools"
            )
        if spec.schools is None:
            raise _bad("solve_for='students_per_school' needs schools")
    d = _run(spec._point, sims, seed)
    target, d_min = _check_target(target_power, power_definition, at_least, d.m)
    eff = _effects(d, effect_size, effect_pp)
    if not np.any(eff != 0):
        raise _fail("effect_size is 0 for every outcome: no sample size detects a zero effect")

    def point(x: int) -> _Point:
        return d.with_size(schools=x) if solve_for == "schools" else d.with_size(n=float(x))

    simulated = _needs_simulation(d, power_definition)
    nonzero = eff != 0
    if simulated and d.approximation == "noncentral":
        raise _bad(
            "approximation='noncentral' is analytic; multiple-testing power is simulated "
            "with the shifted t (as PUMP): use approximation='shifted'"
        )

    def reaches(x: int) -> bool:
        p = point(x)
        df = p.df()
        if df <= 0:
            return False
        se = p.se()
        if simulated:
            draws = _draws(p, df)
            rej = _reject(draws.base + np.abs(eff) / se, p.mtp, p.alpha, df, p.tails, draws.wy)
            return _definition_power(rej, nonzero, power_definition, d_min) >= target
        k, _ = _mdes_shift(p, target, "individual", 1)
        return bool(np.all(k * se[nonzero] <= np.abs(eff[nonzero]) * (1 + 1e-12)))

    low = (1 if d.model == "unblocked" else 2) if solve_for == "schools" else 2
    if d.model == "random" and solve_for == "students_per_school" and not simulated:
        # adding students cannot shrink the between-school impact variance
        df = d.df()
        k = _mdes_shift(d, target, "individual", 1)[0]
        floor = k * np.sqrt(d.icc * d.omega * (1 - d.r2_t) / d.schools)
        if np.any(floor[nonzero] >= np.abs(eff[nonzero])):
            i = int(np.argmax(floor - np.abs(eff)))
            raise _fail(
                f"no number of students per school detects {abs(eff[i]):.3f} SD with "
                f"{d.schools} schools under random school impacts: the school impact "
                f"variance alone gives an MDES of {floor[i]:.3f} (df = {df:g}); add schools"
            )
    hi = low
    while not reaches(hi):
        low = hi + 1
        hi *= 2
        if hi > _MAX_SIZE:
            raise _fail(
                f"the effect is not reached with up to {_MAX_SIZE:,} "
                f"{'schools' if solve_for == 'schools' else 'students per school'}"
            )
    while low < hi:
        mid = (low + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            low = mid + 1
    final = point(hi)
    solved = (
        dataclasses.replace(spec, schools=hi)
        if solve_for == "schools"
        else dataclasses.replace(spec, students_per_school=hi)
    )
    return _result(
        final,
        solved,
        kind="sample_size",
        target=target,
        definition=power_definition,
        at_least=d_min,
        effects=eff,
        solved_for=solve_for,
    )
