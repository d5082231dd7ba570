"""cis_eval: evaluate school-based case management for students at risk of dropping out.

Simulate or load randomized-assignment student data, estimate intent-to-treat effects,
check the trial's integrity and measure implementation fidelity. The verbs follow the
stages of an evaluation::

    simulate -> load / validate -> assign -> check the trial -> estimate -> fidelity -> plan -> report

Each stage has its own subpackage (``data``, ``design``, ``integrity``, ``estimation``,
``fidelity``, ``present``); every public verb is also here, on the package.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API, loaded on first use (PEP 562): ``import cis_eval`` and the command line's
# ``--help`` stay instant instead of importing pandas, SciPy and statsmodels up front.
# To add a public name: list it under its module here, in the ``TYPE_CHECKING`` block
# below (for type checkers and IDEs) and in ``__all__``; a test checks the three agree.
_EXPORTS: dict[str, tuple[str, ...]] = {
    ".data.describe": ("TrialSummary", "describe"),
    ".data.mapping": ("LoadedExport", "MappedLog"),
    ".data.simulate": ("SimulatedTrial", "Truth", "simulate"),
    ".data.validate": ("ValidationReport", "validate"),
    ".design.assign": ("Assignment", "assign", "verify_assignment"),
    ".design.diagnose": ("DiagnosisResult", "TrialDesign", "diagnose"),
    ".design.power": ("PowerDesign", "PowerResult", "mdes", "power", "sample_size"),
    ".estimation": (
        "DEMOGRAPHICS",
        "ESTIMANDS",
        "SE_TYPES",
        "CACEResult",
        "ITTResult",
        "SensitivityResult",
        "SubgroupResult",
        "baseline_risk",
        "default_covariates",
        "estimate_cace",
        "estimate_itt",
        "estimate_sensitivity",
        "estimate_subgroups",
    ),
    ".fidelity": (
        "FidelityResult",
        "FidelityTargets",
        "fidelity",
        "published_targets",
        "service_receipt",
    ),
    ".integrity": (
        "AttritionResult",
        "BaselineResult",
        "ClusteringCorrection",
        "WWCReview",
        "attrition",
        "attrition_boundaries",
        "baseline_equivalence",
        "classify_attrition",
        "max_differential_attrition",
        "wwc_clustering_correction",
        "wwc_review",
    ),
    ".io": ("load", "load_export", "load_trial", "write_figure", "write_table", "write_trial"),
    ".outcomes": ("derive_outcomes",),
    ".present.compare": ("compare",),
    ".present.privacy": ("suppress",),
    ".present.report": ("Report",),
    ".present.table": ("Table",),
    ".schema": ("OUTCOMES", "OUTCOME_NAMES", "SERVICE_TYPES", "Outcome", "data_dictionary"),
}
"""Module (relative to this package) -> the public names it defines."""

_MODULES: dict[str, str] = {
    "errors": ".errors",
    "io": ".io",
    "schema": ".schema",
    "privacy": ".present.privacy",
}
"""Public names that are modules themselves -> the module."""

_WHERE: dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from . import errors, io, schema
    from .data.describe import TrialSummary, describe
    from .data.mapping import LoadedExport, MappedLog
    from .data.simulate import (
        SimulatedTrial,
        Truth,
        simulate,
    )
    from .data.validate import ValidationReport, validate
    from .design.assign import (
        Assignment,
        assign,
        verify_assignment,
    )
    from .design.diagnose import (
        DiagnosisResult,
        TrialDesign,
        diagnose,
    )
    from .design.power import (
        PowerDesign,
        PowerResult,
        mdes,
        power,
        sample_size,
    )
    from .estimation import (
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
    from .fidelity import (
        FidelityResult,
        FidelityTargets,
        fidelity,
        published_targets,
        service_receipt,
    )
    from .integrity import (
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
    from .io import (
        load,
        load_export,
        load_trial,
        write_figure,
        write_table,
        write_trial,
    )
    from .outcomes import derive_outcomes
    from .present import privacy
    from .present.compare import compare
    from .present.privacy import suppress
    from .present.report import Report
    from .present.table import Table
    from .schema import (
        OUTCOME_NAMES,
        OUTCOMES,
        SERVICE_TYPES,
        Outcome,
        data_dictionary,
    )

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
    "DiagnosisResult",
    "FidelityResult",
    "FidelityTargets",
    "ITTResult",
    "LoadedExport",
    "MappedLog",
    "Outcome",
    "PowerDesign",
    "PowerResult",
    "Report",
    "SensitivityResult",
    "SimulatedTrial",
    "SubgroupResult",
    "Table",
    "TrialDesign",
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
    "compare",
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
    "load_export",
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


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used."""
    if name in _MODULES:
        value: Any = importlib.import_module(_MODULES[name], __name__)
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later uses are plain attribute look-ups
    return value


def __dir__() -> list[str]:
    """The public names and what is already loaded."""
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Module type of this package: a public name wins over a subpackage of the same name.

    Importing ``cis_eval.fidelity.verb`` makes the import system bind the subpackage
    ``cis_eval.fidelity`` as an attribute of this package, which would hide the function
    ``cis_eval.fidelity``. Such bindings are skipped, so ``ce.fidelity`` is always the
    function, as it was with eager imports; ``import cis_eval.fidelity.x`` and
    ``from cis_eval.fidelity import x`` work as usual through ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
