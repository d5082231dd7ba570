"""Trial-integrity stage: baseline equivalence, attrition, clustering and the WWC review.

One verb per module: :func:`baseline_equivalence` (:mod:`.baseline`), :func:`attrition`
with the WWC boundary table (:mod:`.attrition`), :func:`wwc_clustering_correction`
(:mod:`.clustering`) and :func:`wwc_review`, which combines them with the impact estimates
(:mod:`.review`). Impacts and within-school differences come from the impact core shared
with the estimation stage, never from the public estimation verbs.
"""

from .attrition import (
    BOUNDARIES,
    AttritionResult,
    attrition,
    attrition_boundaries,
    classify_attrition,
    max_differential_attrition,
)
from .baseline import BaselineResult, baseline_equivalence, wwc_category
from .clustering import ClusteringCorrection, wwc_clustering_correction
from .review import STUDY_DESIGNS, WWCReview, wwc_review

__all__ = [
    "BOUNDARIES",
    "STUDY_DESIGNS",
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
