"""The accessors every result shares, defined once over the result's tidy frame.

A result class is a frozen dataclass that holds one tidy frame (one row per outcome, or per
outcome and subgroup, with broom/estimatr column names). :class:`ResultMixin` turns that frame
into the public accessors, so ``estimate``, ``std_error``, ``statistic``, ``p_value`` and
``conf_int`` mean the same thing on every result and cannot drift from ``to_frame()`` (pyfixest's accessor
mixin, linearmodels' results properties)::

    @dataclass(frozen=True, slots=True)
    class ITTResult(ResultMixin):
        _estimates: pd.DataFrame
        ...

A class whose frame lives under another attribute name, is keyed by something other than
the outcome, or stores an accessor under another column name says so with the class
variables ``_tidy_field``, ``_keys`` and ``_accessor_columns``. An accessor whose column the
frame does not have raises :class:`AttributeError` (so ``hasattr`` is false). Degrees of
freedom are a column of ``to_frame()``, not an accessor: ``PowerResult.df`` already names the
design's (one number).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

import pandas as pd

__all__ = ["ResultMixin", "one_line"]


def one_line(name: str, *parts: str, **options: object) -> str:
    """The one-line ``repr`` of a result: its class, counts and options, no object id.

    Parameters
    ----------
    name : str
        Class name.
    *parts : str
        Counts, already formatted (``"6 outcomes"``).
    **options : object
        Options shown as ``key=value``.

    Returns
    -------
    str

    Examples
    --------
    >>> one_line("ITTResult", "6 outcomes", "2,400 students", se="HC2")
    'ITTResult(6 outcomes, 2,400 students, se=HC2)'
    """
    items = [*parts, *(f"{k}={v}" for k, v in options.items())]
    return f"{name}({', '.join(items)})"


class ResultMixin:
    """Accessors over a result's tidy frame: ``to_frame``, ``estimate``, ``std_error``, ...

    Every accessor returns a fresh object, so changing what it returns never changes the
    result. Series and frames are indexed by the frame's key columns (``outcome`` for most
    results; ``outcome`` and ``subgroup`` for subgroup impacts).
    """

    __slots__ = ()

    _tidy_field: ClassVar[str] = "_estimates"
    """Name of the attribute holding the tidy frame."""
    _keys: ClassVar[tuple[str, ...]] = ("outcome",)
    """Columns that identify a row; the accessors' index."""
    _accessor_columns: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Accessor name -> column, where the frame names a quantity differently."""

    def _tidy(self) -> pd.DataFrame:
        frame = getattr(self, self._tidy_field)
        if not isinstance(frame, pd.DataFrame):  # a wiring mistake in a result class
            raise TypeError(f"{type(self).__name__}.{self._tidy_field} is not a DataFrame")
        return frame

    def _accessor_rows(self) -> pd.DataFrame:
        """The rows the accessors describe (all of them unless a class leaves some out)."""
        return self._tidy()

    def to_frame(self) -> pd.DataFrame:
        """The result's tidy frame (a fresh copy; the class docstring lists its columns).

        Returns
        -------
        pandas.DataFrame
        """
        return self._tidy().copy()

    def _column(self, name: str) -> pd.Series:
        """One column of the tidy frame, indexed by the key columns (a fresh copy)."""
        column = self._accessor_columns.get(name, name)
        rows = self._accessor_rows()
        if column not in rows.columns:
            raise AttributeError(
                f"{type(self).__name__} has no {name!r}: its tidy frame (to_frame()) has no "
                f"{column!r} column"
            )
        keys = [k for k in self._keys if k in rows.columns]
        out = rows.set_index(keys)[column].copy()
        out.name = name
        return out

    @property
    def estimate(self) -> pd.Series:
        """Point estimates by outcome."""
        return self._column("estimate")

    @property
    def std_error(self) -> pd.Series:
        """Standard errors by outcome."""
        return self._column("std_error")

    @property
    def statistic(self) -> pd.Series:
        """Test statistics (estimate over standard error) by outcome."""
        return self._column("statistic")

    @property
    def p_value(self) -> pd.Series:
        """Two-sided p-values by outcome."""
        return self._column("p_value")

    def conf_int(self) -> pd.DataFrame:
        """Confidence intervals by outcome: columns ``conf_low`` and ``conf_high``.

        Returns
        -------
        pandas.DataFrame
        """
        return pd.concat([self._column("conf_low"), self._column("conf_high")], axis=1)
