"""The What Works Clearinghouse review: a rating per outcome, with its reasons.

:func:`wwc_review` combines attrition (:mod:`.attrition`), baseline equivalence
(:mod:`.baseline`) and the impact estimates (from the impact core) into a per-outcome rating
("Meets WWC standards without reservations", "... with reservations", "Does not meet"),
listing the reasons; for school-randomized designs it applies the clustering correction
(:mod:`.clustering`).

Source: WWC Procedures and Standards Handbook, Version 5.0 (2022), group designs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, cast, get_args

import numpy as np
import pandas as pd

from .._core.design import assignment
from .._core.impact import impacts
from .._core.spec import CovariateOption, ImpactSpec, resolve_outcomes
from .._typing import (
    AttritionBoundary,
    EquivalenceBasis,
    SEType,
    StudyDesign,
    check_option,
)
from ..effect_sizes import favourable
from ..errors import DesignError, DesignWarning, EstimationError, OptionTypeError
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD
from ..present.privacy import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell
from ..present.results import ResultMixin
from ..present.table import Table, records
from ..schema import Outcome
from ._common import (
    check_students,
    num,
    outcome_values,
    school_codes,
    schools_with_both,
)
from .attrition import BOUNDARIES, AttritionResult, attrition
from .baseline import BaselineResult, baseline_equivalence, worst_status
from .clustering import default_icc, wwc_clustering_correction

__all__ = [
    "RATING_NONE",
    "RATING_NOT",
    "RATING_WITH",
    "RATING_WITHOUT",
    "STUDY_DESIGNS",
    "SUBSTANTIVE_MIN",
    "WWCReview",
    "wwc_review",
]

STUDY_DESIGNS: dict[str, str] = {
    "rct": "students randomized within schools",
    "cluster_rct": "whole schools randomized",
}
"""Study designs :func:`wwc_review` accepts (``study_design=``)."""

SUBSTANTIVE_MIN = 0.25
"""|ES| at or above this: a substantively important finding (WWC)."""

RATING_WITHOUT = "Meets WWC standards without reservations"
RATING_WITH = "Meets WWC standards with reservations"
RATING_NOT = "Does not meet WWC standards"
RATING_NONE = "Not rated"


@dataclass(frozen=True, slots=True)
class WWCReview(ResultMixin):
    """A per-outcome rating in the What Works Clearinghouse's terms, with its reasons.

    The tidy frame (``to_frame()``) has one row per outcome and the columns ``outcome,
    label, domain, design, boundary, overall_attrition, differential_attrition,
    max_differential, boundary_confirmed, attrition_level, randomization_intact, confounded,
    equivalence_required, required_characteristics, baseline_effect_size`` (largest |ES|
    among the required characteristics, signed), ``equivalence, rating, reasons`` (separated
    by ``"; "``), ``impact, std_error, p_value, p_bh, wwc_effect_size`` (positive =
    favourable, as the WWC reports), ``effect_size_type, improvement_index, favourable,
    wwc_finding, n_treatment, n_control`` and, for ``study_design="cluster_rct"``, ``icc,
    t_corrected, df_corrected, p_value_corrected``.

    Attributes
    ----------
    study_design : str
        ``"rct"`` (students randomized within schools) or ``"cluster_rct"``.
    boundary : str
        Attrition boundary used.
    randomization_intact : bool
        As declared by the user.
    attrition : AttritionResult
        The attrition of every outcome.
    baseline : mapping
        :class:`BaselineResult` of each outcome's analytic sample, by outcome (read-only).
    spec : ImpactSpec
        The specification of the impact estimates behind the effect sizes and findings.
    notes : tuple of str
        Caveats (unconfirmed boundary rows, dropped schools, design warnings).
    """

    _tidy_field: ClassVar[str] = "_rows"
    _keys: ClassVar[tuple[str, ...]] = ("outcome",)
    _accessor_columns: ClassVar[Mapping[str, str]] = MappingProxyType({"estimate": "impact"})

    _rows: pd.DataFrame = field(repr=False)
    study_design: str
    boundary: str
    randomization_intact: bool
    attrition: AttritionResult = field(repr=False)
    baseline: Mapping[str, BaselineResult] = field(repr=False)
    spec: ImpactSpec = field(repr=False)
    notes: tuple[str, ...] = ()
    _reasons: Mapping[str, tuple[str, ...]] = field(repr=False, default_factory=dict)

    def __repr__(self) -> str:
        counts = self._rows["rating"].value_counts(sort=False)
        parts = "; ".join(f"{k}: {int(v)}" for k, v in counts.items())
        return f"WWCReview({len(self._rows)} outcomes; {parts})"

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
                    else num(r.overall_attrition, ".1f"),
                    "Differential (pp)": SUPPRESSED
                    if small
                    else num(r.differential_attrition, ".1f"),
                    "Attrition": str(r.attrition_level).capitalize(),
                    "Baseline equivalence": r.equivalence,
                    "Effect size": num(r.wwc_effect_size, "+.3f"),
                    "Improvement index": num(r.improvement_index, "+.1f"),
                    "Finding": r.wwc_finding,
                    "WWC rating": r.rating,
                }
            )
        notes = [
            f"Design: {STUDY_DESIGNS[self.study_design]}; randomization "
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
    students: pd.DataFrame,
    *,
    outcomes: Sequence[str | Outcome] | None = None,
    study_design: StudyDesign = "rct",
    randomization_intact: bool = True,
    confounded: bool = False,
    boundary: AttritionBoundary = "cautious",
    required: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    covariates: CovariateOption = "default",
    treatment: str = "treatment",
    block: str = "school_id",
    basis: EquivalenceBasis = "adjusted",
    icc: float | Mapping[str, float] | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> WWCReview:
    """Rate each outcome's evidence by the What Works Clearinghouse group-design standards.

    Parameters
    ----------
    students : pandas.DataFrame
        One row per randomized student. Not modified.
    outcomes : sequence of str or Outcome, optional
        Outcomes to rate; default the study's six that the data have.
    study_design : {"rct", "cluster_rct"}, default "rct"
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
        ``study_design="cluster_rct"`` only: intraclass correlation(s) for the clustering
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
    OptionError
        An option value that is not allowed (``study_design``, ``boundary``, ``basis``).
    EstimationError
        Bad columns or outcomes (see :func:`~cis_eval.estimate_itt`).
    DesignError
        ``study_design="rct"`` but no school has students of both arms.

    Warns
    -----
    DesignWarning
        ``study_design="cluster_rct"``.

    Notes
    -----
    Ratings, per outcome, in order: a cluster design is not rated; a confounded finding
    does not meet standards; low attrition with intact randomization meets standards
    without reservations; otherwise the analytic sample must be equivalent at baseline on
    every required characteristic (|ES| <= 0.05, or <= 0.25 with the characteristic in the
    impact model) to meet standards with reservations, else it does not meet standards.
    The effect size, improvement index and finding are the impact estimates of
    :func:`cis_eval.estimate_itt` with school fixed effects and ``covariates`` (computed by
    the same impact core; the specification is kept as ``spec``).

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
    students = check_students(students)
    check_option("study_design", study_design, STUDY_DESIGNS)
    check_option("boundary", boundary, BOUNDARIES)
    check_option("basis", basis, get_args(EquivalenceBasis))
    if not isinstance(randomization_intact, (bool, np.bool_)):
        raise OptionTypeError("randomization_intact must be True or False")
    if not isinstance(confounded, (bool, np.bool_)):
        raise OptionTypeError("confounded must be True or False")
    z = assignment(students, treatment)
    school = school_codes(students, block)
    mixed = schools_with_both(school, z)
    notes: list[str] = []
    if study_design == "rct" and mixed == 0:
        raise DesignError(
            "no school has students of both arms: assignment looks school-level (cluster "
            "randomized), not within schools; pass study_design='cluster_rct'"
        )
    if study_design == "cluster_rct":
        msg = (
            "study_design='cluster_rct': the WWC reviews school-randomized trials under its "
            "cluster RCT standards (cluster-level attrition, students joining after "
            "assignment, baseline equivalence of students), which cis_eval does not check, so "
            "outcomes are not rated; significance is corrected for clustering (WWC)."
        )
        if mixed:
            msg += (
                f" Note that {mixed} school(s) have students of both arms: the data look "
                "randomized within schools."
            )
        warnings.warn(msg, DesignWarning, stacklevel=2)
        notes.append(msg)
    if study_design == "cluster_rct" and basis == "adjusted":
        # school effects absorb school-level assignment: only raw differences exist
        basis = "raw"
        notes.append(
            "School-level assignment: baseline differences are raw differences in means "
            "(within-school differences do not exist)."
        )
    metas = resolve_outcomes(students, outcomes)
    req_map = _required_map(metas, required)
    att = attrition(
        students,
        outcomes=metas,
        treatment=treatment,
        boundary=boundary,
        chronic_threshold=chronic_threshold,
    )
    notes += list(att.notes)
    itt, spec, n_ = _impacts(
        students, metas, study_design, covariates, treatment, block, chronic_threshold
    )
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
                students,
                outcome=o,
                treatment=treatment,
                block=block,
                covariates=adj,
                required=req_map[o.name],
                basis=basis,
                chronic_threshold=chronic_threshold,
            )
            baselines[o.name] = be
        except EstimationError as exc:
            be = None
            notes.append(f"{o.label}: baseline equivalence not computed ({exc}).")
        _, y = outcome_values(students, o, chronic_threshold)
        kept = ~np.isnan(y)
        row = _review_row(
            o,
            a,
            imp,
            be,
            req_map[o.name],
            study_design,
            randomization_intact,
            confounded,
            schools_with_both(school[kept], z[kept]),
            boundary,
        )
        if study_design == "cluster_rct":
            extra = _cluster_columns(o, imp, icc, int(np.unique(school[kept]).size))
            row["reasons"] += extra.pop("_cluster_reason")
            row |= extra
            row["wwc_finding"] = _finding(row["wwc_effect_size"], extra["p_value_corrected"])
        reasons[o.name] = tuple(row["reasons"])
        row["reasons"] = "; ".join(row["reasons"])
        rows.append(row)
    return WWCReview(
        _rows=pd.DataFrame(rows),
        study_design=study_design,
        boundary=boundary,
        randomization_intact=bool(randomization_intact),
        attrition=att,
        baseline=MappingProxyType(baselines),
        spec=spec,
        notes=tuple(dict.fromkeys(notes)),
        _reasons=MappingProxyType(reasons),
    )


def _impacts(
    students: pd.DataFrame,
    metas: Sequence[Outcome],
    study_design: str,
    covariates: CovariateOption,
    treatment: str,
    block: str,
    chronic_threshold: float,
) -> tuple[pd.DataFrame, ImpactSpec, list[str]]:
    """Impact estimates: school fixed effects (rct), or one pooled regression (cluster_rct).

    The impact core returns its notes (covariates dropped, one-arm schools); they become
    the review's notes rather than warnings.
    """
    frame = students
    se_type: SEType = "HC2"
    if study_design == "cluster_rct":
        # school effects are collinear with school-level assignment: the analysis that
        # ignores clustering is one pooled OLS, whose t statistic the WWC then corrects
        block = "__cis_eval_single_block__"
        frame = students.assign(**{block: 0})
        se_type = "classical"
    spec = ImpactSpec.build(
        frame,
        outcomes=list(metas),
        treatment=treatment,
        block=block,
        covariates=covariates,
        se_type=se_type,
        chronic_threshold=chronic_threshold,
    )
    _, columns, notes = impacts(frame, spec)
    return pd.DataFrame(columns).set_index("outcome"), spec, notes


def _review_row(
    o: Outcome,
    a: pd.Series,
    imp: pd.Series,
    be: BaselineResult | None,
    req: Sequence[str],
    study_design: str,
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
    detected = study_design == "rct" and both < 2
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
    verdict = worst_status(statuses) if req else "not computed"
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
    if study_design == "cluster_rct":
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
        "design": study_design,
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
        rho = default_icc(o)
    elif isinstance(icc, Mapping):
        rho = float(icc.get(o.name, default_icc(o)))
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
