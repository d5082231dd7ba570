"""Shared type aliases, every ``Literal`` option type, and the helpers that check options (private).

Each option of the package is spelled once, as a ``Literal`` here; the modules derive their
tuples of allowed values from it with :func:`typing.get_args`, so the type and the check
cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from .errors import OptionError, OptionTypeError

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]

# --- data.simulate
Scenario = Literal["interim", "null"]

# --- design.power
PowerModel = Literal["constant", "fixed", "random", "unblocked"]
PowerMTP = Literal["none", "bonferroni", "holm", "bh", "wy-ss", "wy-sd"]
PowerDefinition = Literal["individual", "minimal", "complete"]
PowerApproximation = Literal["shifted", "noncentral"]
SolveFor = Literal["schools", "students_per_school"]
CurveBy = Literal["schools", "students_per_school"]

# --- design.diagnose
DiagnoseEstimand = Literal["fixed_effects", "person_weighted"]
DiagnoseMode = Literal["design", "resample"]
Diagnosand = Literal[
    "mean_estimate",
    "bias",
    "rmse",
    "power",
    "coverage",
    "type_s",
    "mean_se",
    "sd_estimate",
    "bias_target",
    "coverage_target",
]

# --- estimation (and the integrity checks that reuse its core)
Estimand = Literal["fixed_effects", "person_weighted", "school_weighted"]
SEType = Literal["HC2", "HC1", "HC0", "classical", "CR0", "CR1", "CR2"]
RIStatistic = Literal["studentized", "unstudentized"]
MTPFamily = Literal["confirmatory", "all"]

# --- integrity
AttritionBoundary = Literal["cautious", "optimistic"]
EquivalenceBasis = Literal["adjusted", "raw"]
StudyDesign = Literal["rct", "cluster_rct"]


def check_option(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise :class:`~cis_eval.errors.OptionError` naming the argument and the allowed values if ``value`` is not one.

    Parameters
    ----------
    name : str
        Argument name, shown in the message.
    value : object
        Value passed by the user.
    allowed : iterable
        The allowed values.
    """
    allowed = tuple(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise OptionError(f"{name}={value!r} is not an option; choose one of {shown}")


def rng_from(seed: int | np.random.Generator) -> np.random.Generator:
    """Return a Generator from an integer seed or pass a Generator through.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        The seed. ``None`` is refused on purpose: every random verb must be reproducible.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise OptionTypeError(
            f"seed must be an int or numpy.random.Generator, got {type(seed).__name__}; "
            "every random step in cis_eval takes an explicit seed so results can be reproduced"
        )
    if seed < 0:
        raise OptionError(f"seed must be a whole number of 0 or more, got {seed}")
    return np.random.default_rng(int(seed))


def check_sims(sims: object, seed: object, *, what: str) -> int:
    """Check a number of replications (``sims``) and that a seed comes with it; return it.

    Parameters
    ----------
    sims : object
        Number of replications asked for (permutations, simulations; 0 for none).
    seed : object
        The seed given with it.
    what : str
        What the replications are for, for the message (e.g. "randomization inference").
    """
    if isinstance(sims, bool) or not isinstance(sims, (int, np.integer)):
        raise OptionTypeError(f"sims must be a whole number, got {type(sims).__name__}")
    if sims < 0:
        raise OptionError(f"sims must be 0 or more, got {sims}")
    if sims and seed is None:
        raise OptionError(f"{what} needs a seed: pass seed=... to reproduce it")
    return int(sims)
