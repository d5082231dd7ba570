"""cis_eval: evaluate school-based case management for students at risk of dropping out.

Simulate or load randomized-assignment student data, estimate intent-to-treat effects,
check the trial's integrity and measure implementation fidelity. The verbs follow the
stages of an evaluation::

    simulate -> load / validate -> assign -> describe -> estimate -> fidelity -> report
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors, io, schema
from .data.describe import TrialSummary, describe
from .data.simulate import SimulatedTrial, Truth, simulate
from .data.validate import ValidationReport, validate
from .design.assign import Assignment, assign, verify_assignment
from .design.diagnose import Design, DiagnosisResult, diagnose
from .design.power import PowerResult, mdes, power, sample_size
from .estimation.itt import (
    DEMOGRAPHICS,
    ESTIMANDS,
    SE_TYPES,
    CACEResult,
    ITTResult,
    SensitivityResult,
    SubgroupResult,
    baseline_risk,
    default_covariates,
    estimate_cace,
    estimate_itt,
    estimate_sensitivity,
    estimate_subgroups,
)
from .fidelity.verb import (
    FidelityResult,
    FidelityTargets,
    fidelity,
    published_targets,
    service_receipt,
)
from .integrity.checks import (
    AttritionResult,
    BaselineResult,
    ClusteringCorrection,
    WWCReview,
    attrition,
    attrition_boundaries,
    baseline_equivalence,
    classify_attrition,
    max_differential_attrition,
    wwc_clustering_correction,
    wwc_review,
)
from .io import load, load_trial, write_figure, write_table, write_trial
from .outcomes import derive_outcomes
from .present import privacy
from .present.privacy import suppress
from .present.report import Report
from .present.table import Table
from .schema import OUTCOME_NAMES, OUTCOMES, SERVICE_TYPES, Outcome, data_dictionary

__all__ = [
    "DEMOGRAPHICS",
    "ESTIMANDS",
    "OUTCOMES",
    "OUTCOME_NAMES",
    "SERVICE_TYPES",
    "SE_TYPES",
    "Assignment",
    "AttritionResult",
    "BaselineResult",
    "CACEResult",
    "ClusteringCorrection",
    "Design",
    "DiagnosisResult",
    "FidelityResult",
    "FidelityTargets",
    "ITTResult",
    "Outcome",
    "PowerResult",
    "Report",
    "SensitivityResult",
    "SimulatedTrial",
    "SubgroupResult",
    "Table",
    "TrialSummary",
    "Truth",
    "ValidationReport",
    "WWCReview",
    "__version__",
    "assign",
    "attrition",
    "attrition_boundaries",
    "baseline_equivalence",
    "baseline_risk",
    "classify_attrition",
    "data_dictionary",
    "default_covariates",
    "derive_outcomes",
    "describe",
    "diagnose",
    "errors",
    "estimate_cace",
    "estimate_itt",
    "estimate_sensitivity",
    "estimate_subgroups",
    "fidelity",
    "io",
    "load",
    "load_trial",
    "max_differential_attrition",
    "mdes",
    "power",
    "privacy",
    "published_targets",
    "sample_size",
    "schema",
    "service_receipt",
    "simulate",
    "suppress",
    "validate",
    "verify_assignment",
    "write_figure",
    "write_table",
    "write_trial",
    "wwc_clustering_correction",
    "wwc_review",
]
