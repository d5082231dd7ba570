"""Estimation stage: intent-to-treat, complier, subgroup and sensitivity estimates.

One verb per module: :func:`estimate_itt` (:mod:`.itt`), :func:`estimate_cace`
(:mod:`.cace`), :func:`estimate_subgroups` (:mod:`.subgroups`) and
:func:`estimate_sensitivity` (:mod:`.sensitivity`). Their options are checked once into an
impact specification (``cis_eval._core.spec.ImpactSpec``), which every result keeps as
``result.spec``.
"""

from .._core.spec import DEMOGRAPHICS, ESTIMANDS, SE_TYPES, ImpactSpec, default_covariates
from .cace import CACEResult, estimate_cace
from .itt import ITTResult, estimate_itt
from .sensitivity import SensitivityResult, estimate_sensitivity
from .subgroups import SubgroupResult, baseline_risk, estimate_subgroups

__all__ = [
    "DEMOGRAPHICS",
    "ESTIMANDS",
    "SE_TYPES",
    "CACEResult",
    "ITTResult",
    "ImpactSpec",
    "SensitivityResult",
    "SubgroupResult",
    "baseline_risk",
    "default_covariates",
    "estimate_cace",
    "estimate_itt",
    "estimate_sensitivity",
    "estimate_subgroups",
]
