"""Fidelity stage: implementation measures from service logs, targets and the affiliate report.

Modules, in the order the verb uses them:

- :mod:`~cis_eval.fidelity.targets`: the measures and their targets (published benchmarks,
  the user's own, the practice guide's caseload range);
- :mod:`~cis_eval.fidelity.inputs`: the roster and staff columns fidelity needs, checked;
- :mod:`~cis_eval.fidelity.log`: the contacts log in DuckDB, checked and aggregated per
  student (files are opened by :func:`cis_eval.io.scan_log`);
- :mod:`~cis_eval.fidelity.frames`: aggregate frames per school, coordinator, research
  group, service area and week;
- :mod:`~cis_eval.fidelity.verb`: the :func:`fidelity` verb;
- :mod:`~cis_eval.fidelity.result`: :class:`FidelityResult`, the data and its entry points;
- :mod:`~cis_eval.fidelity.suppression`, :mod:`~cis_eval.fidelity.tables`,
  :mod:`~cis_eval.fidelity.plots`, :mod:`~cis_eval.fidelity.report`: the privacy-safe
  tables, charts and affiliate report.

Receipt of services (:func:`service_receipt`) lives in :mod:`cis_eval._core.receipt`, below
both fidelity and estimation, and is re-exported here.
"""

from .._core.receipt import service_receipt
from .result import FidelityResult
from .targets import MEASURES, FidelityTargets, Target, published_targets
from .verb import fidelity

__all__ = [
    "MEASURES",
    "FidelityResult",
    "FidelityTargets",
    "Target",
    "fidelity",
    "published_targets",
    "service_receipt",
]
