"""Exceptions and warnings raised by cis_eval.

Every error a user can cause derives from :class:`CisEvalError` and from the built-in
family it belongs to (``ValueError`` for bad values), so callers can catch either. Only
the command-line interface catches them, prints the one-line message and exits non-zero.
Messages never contain student identifiers or raw values from identifier columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CisEvalError",
    "DataValidationError",
    "DesignError",
    "DesignWarning",
    "DroppedRowsWarning",
    "EstimationError",
    "OptionError",
    "OptionTypeError",
    "Problem",
    "SmallCellWarning",
]


class CisEvalError(Exception):
    """Base class of every error cis_eval raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found while validating a table.

    Attributes
    ----------
    source : str
        File name (or table name when the data did not come from a file).
    column : str or None
        The column concerned; ``None`` for table-level problems.
    rows : tuple of int
        Up to five 1-based data row numbers (the header is not counted), for locating
        the problem in a spreadsheet without echoing any value.
    n_rows : int
        How many rows have the problem in total.
    message : str
        What is wrong.
    expected : str
        What was expected instead.
    severity : {"error", "warning"}
        Errors stop the analysis; warnings are reported and the analysis goes on.
    """

    source: str
    column: str | None
    rows: tuple[int, ...]
    n_rows: int
    message: str
    expected: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.source}: column '{self.column}'" if self.column else f"{self.source}"
        rows = ""
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows)
            more = (
                f" and {self.n_rows - len(self.rows)} more" if self.n_rows > len(self.rows) else ""
            )
            word = "row" if self.n_rows == 1 else "rows"
            rows = f" ({word} {shown}{more})"
        return f"{where}: {self.message}{rows}: expected {self.expected}"


class DataValidationError(CisEvalError, ValueError):
    """Input data break the data contract.

    Carries every problem found, not only the first, so a user can fix a file in one go.

    Attributes
    ----------
    problems : tuple of Problem
        The errors found (warnings are not included).
    """

    MAX_LISTED = 20
    """Most problems the message lists; the rest are counted (all stay in ``problems``)."""
    MAX_LINE = 300
    """Longest line of the message: a problem's text is cut with '...' beyond it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        # Bounded, so a file with a million bad rows or names still gives a readable message.
        lines = [" ".join(str(p).split()) for p in self.problems[: self.MAX_LISTED]]
        lines = [
            ln if len(ln) <= self.MAX_LINE else ln[: self.MAX_LINE - 3] + "..." for ln in lines
        ]
        rest = len(self.problems) - len(lines)
        if rest:
            lines.append(f"... and {rest:,} more problem{'s' if rest != 1 else ''}")
        n = len(self.problems)
        if n == 1:
            # One problem reads best as one line: the command line prints it as it is.
            super().__init__(lines[0])
            return
        head = f"{n} problems found in the input data"
        super().__init__(head + ":\n  - " + "\n  - ".join(lines))

    @property
    def source(self) -> str | None:
        """File of the first problem."""
        return self.problems[0].source if self.problems else None

    @property
    def column(self) -> str | None:
        """Column of the first problem."""
        return self.problems[0].column if self.problems else None

    @property
    def rows(self) -> tuple[int, ...]:
        """Row numbers of the first problem."""
        return self.problems[0].rows if self.problems else ()

    @property
    def expected(self) -> str | None:
        """What the first problem expected."""
        return self.problems[0].expected if self.problems else None


class OptionError(CisEvalError, ValueError):
    """An option (argument) value is not one cis_eval accepts.

    Raised by every option check, in the Python API and on the command line alike, so a
    bad option is always a user error: the command line maps it to exit status 2 with this
    message. The message names the option, the value given and what is allowed.
    """


class OptionTypeError(OptionError, TypeError):
    """An option has the wrong type (e.g. a seed given as text); also a ``TypeError``."""


class DesignError(CisEvalError, ValueError):
    """The design cannot support the requested analysis (e.g. no control students)."""


class EstimationError(CisEvalError, ValueError):
    """An estimator cannot be computed on these data (e.g. collinear covariates)."""


class DesignWarning(UserWarning):
    """The design is usable but weaker than it looks (e.g. a school with one arm)."""


class DroppedRowsWarning(UserWarning):
    """Rows were left out of an analysis; the message says how many and why."""


class SmallCellWarning(UserWarning):
    """A table cell was suppressed because it describes too few students."""
