"""cis_eval: evaluate school-based case management for students at risk of dropping out.

Simulate or load randomized-assignment student data, estimate intent-to-treat effects,
check the trial's integrity and measure implementation fidelity. The verbs follow the
stages of an evaluation::

    simulate -> load / validate -> assign -> describe -> estimate -> fidelity -> report
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors, io, schema
from .assign import Assignment, assign, verify_assignment
from .describe import TrialSummary, describe
from .io import load, write_table, write_trial
from .outcomes import derive_outcomes
from .report import Report
from .results import Table
from .schema import OUTCOME_NAMES, OUTCOMES, SERVICE_TYPES, Outcome, data_dictionary
from .simulate import SimulatedTrial, Truth, simulate
from .validate import ValidationReport, validate

__all__ = [
    "OUTCOMES",
    "OUTCOME_NAMES",
    "SERVICE_TYPES",
    "Assignment",
    "Outcome",
    "Report",
    "SimulatedTrial",
    "Table",
    "TrialSummary",
    "Truth",
    "ValidationReport",
    "__version__",
    "assign",
    "data_dictionary",
    "derive_outcomes",
    "describe",
    "errors",
    "io",
    "load",
    "schema",
    "simulate",
    "validate",
    "verify_assignment",
    "write_table",
    "write_trial",
]
