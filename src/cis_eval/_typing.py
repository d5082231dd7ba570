"""Shared type aliases and the one helper that checks ``Literal`` options (private)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from .errors import OptionError, OptionTypeError

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Seed: TypeAlias = "int | np.random.Generator"

Scenario = Literal["interim", "null"]
SchoolLevel = Literal["middle", "high"]
OutcomeType = Literal["binary", "continuous", "count"]
Direction = Literal["lower", "higher"]


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


def check_permutations(permutations: object, seed: object, *, what: str) -> int:
    """Check a number of permutations and that a seed comes with it; return the number.

    Parameters
    ----------
    permutations : object
        Number of permutations asked for (0 for none).
    seed : object
        The seed given with it.
    what : str
        What the permutations are for, for the message (e.g. "randomization inference").
    """
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)):
        raise OptionTypeError("permutations must be a whole number")
    if permutations < 0:
        raise OptionError(f"permutations must be 0 or more, got {permutations}")
    if permutations and seed is None:
        raise OptionError(f"{what} needs a seed: pass seed=... to reproduce it")
    return int(permutations)
