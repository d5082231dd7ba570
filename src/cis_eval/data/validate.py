"""Check tables against the data contract, report every problem at once, return typed copies.

What a message may contain is fixed here (the README's "Error contract" says the same):

- the file (or table) name, the column name (the file's own name beside the contract's
  after a column map, cut to 60 characters), up to five spreadsheet row numbers with a
  count of the rest, what is wrong and what was expected;
- cell values only from category columns (``school_level``, ``service_type``, ...), and
  only when they are short codes: at most 24 characters with at most two digits; and a
  school's identifier (cut to 30 characters) where the school is the subject. A value from
  a student identifier, number, date or free-text column is never shown, nor anything
  shaped like a social-security, phone or student number, wherever it was typed.

Decisions on values a user could mean either way:

- numbers are read exactly or refused: ``.`` is the decimal mark and there is no thousands
  separator unless ``decimal``/``thousands`` declare the file's format; ``0,5``, ``1,80``,
  ``1,800``, ``45%`` and ``3 hrs`` are errors naming their rows, never read as 5, 180,
  1800, 45 or 3;
- yes/no columns (``treatment``, ``female``, ...) accept 1/0 and the words yes/no,
  true/false, y/n, t/f in any case: each is unambiguous for a yes/no column;
- a date after today (the day of the check) is an error, as is a contact more than a year
  after the student's random assignment, a contact outside the school year, and a random
  assignment after the school year ends or more than a year before it starts: a
  one-year evaluation cannot have them, and they are almost always a typing error in the
  year.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from .._typing import BoolArray, check_option
from ..errors import DataValidationError, DesignWarning, OptionError, OptionTypeError, Problem
from ..present.safety import escape_markup
from ..present.table import Table
from ..schema import (
    MODES,
    ROSTER,
    SERVICE_TYPES,
    STUDENTS,
    TABLES,
    Column,
    normalise_category,
)

__all__ = [
    "CONTRACTS",
    "DECIMAL_MARKS",
    "ROW_GAPS",
    "ROW_NOTE",
    "THOUSANDS_SEPARATORS",
    "VALIDATED",
    "Contract",
    "ValidationReport",
    "check_number_format",
    "row_numbering",
    "spreadsheet_rows",
    "validate",
]

MAX_ROWS_SHOWN = 5
ROW_NOTE = (
    "Row numbers are the rows a spreadsheet shows: a file with its column names in the "
    "first row counts the header as row 1."
)
MAX_PROBLEMS_SHOWN = 20
"""Most problems listed in a report's text or a warning; the rest are counted."""
MAX_LINE = 300
"""Longest line of a report's text or a warning (as on the command line)."""
DECIMAL_MARKS = (".", ",")
"""Decimal marks a file may declare (``decimal=``)."""
THOUSANDS_SEPARATORS = (None, ",", ".", " ", "'")
"""Thousands separators a file may declare (``thousands=``; ``None`` for none)."""
FOLLOW_UP = pd.Timedelta(days=366)
"""Longest plausible time from random assignment to a contact, and from the start of the
assignment window to the school year: the evaluation follows students for one year."""
Contract = Literal["trial", "fidelity"]
CONTRACTS: tuple[str, ...] = get_args(Contract)
"""What the students table is checked as: the trial's students, or a fidelity roster."""
ROW_GAPS = "row_gaps"
"""``DataFrame.attrs`` key of the blank rows a reader dropped below the header, as
``(first row, how many)``; with ``attrs["header_row"]`` it gives each row's spreadsheet
number (see :func:`spreadsheet_rows`)."""
VALIDATED = "cis_eval_validated"
"""``DataFrame.attrs`` key set on the typed tables of a validation without errors (its
value names the contract), so a verb given them does not check them again."""
# A fidelity check's students table: the roster's columns (only student_id and school_id
# required), then every other students column the table happens to have, checked as
# optional (a trial's students table passes as a roster with a treatment column).
_FIDELITY_STUDENTS: tuple[Column, ...] = ROSTER + tuple(
    replace(c, required=False, missing_ok=True)
    for c in STUDENTS
    if c.name not in {r.name for r in ROSTER}
)
# Values of these columns identify students; they never appear in a message.
PRIVATE = frozenset({"student_id", "contact_id"})
TRUE_WORDS = {"1", "1.0", "true", "yes", "y", "t"}
FALSE_WORDS = {"0", "0.0", "false", "no", "n", "f"}


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What :func:`validate` found, and the typed tables.

    Attributes
    ----------
    students, contacts, coordinators : pandas.DataFrame or None
        Typed copies of the inputs (IDs as text, counts as nullable integers, dates as
        datetimes, categories normalised). ``None`` for tables not given.
    problems : tuple of Problem
        Errors and warnings, in the order found.
    school_year : tuple of pandas.Timestamp or None
        The school year contact dates were checked against.
    """

    students: pd.DataFrame | None = field(repr=False)
    contacts: pd.DataFrame | None = field(repr=False)
    coordinators: pd.DataFrame | None = field(repr=False)
    problems: tuple[Problem, ...] = ()
    school_year: tuple[pd.Timestamp, pd.Timestamp] | None = None

    @property
    def errors(self) -> tuple[Problem, ...]:
        """Problems that stop an analysis."""
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """Problems that are reported but do not stop an analysis."""
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def __repr__(self) -> str:
        return f"ValidationReport({len(self.errors)} errors, {len(self.warnings)} warnings)"

    def table(self) -> Table:
        """The problems as a table (file, column, rows, what is wrong, what was expected)."""
        data = pd.DataFrame(
            [
                {
                    "Severity": p.severity,
                    "File": p.source,
                    "Column": p.column or "",
                    "Rows": ", ".join(map(str, p.rows))
                    + (f" (+{p.n_rows - len(p.rows)} more)" if p.n_rows > len(p.rows) else ""),
                    "Problem": p.message,
                    "Expected": p.expected,
                }
                for p in self.problems
            ],
            columns=["Severity", "File", "Column", "Rows", "Problem", "Expected"],
        )
        return Table(
            data,
            title="Validation report",
            notes=(ROW_NOTE,),
        )

    def to_text(self) -> str:
        """A readable report for people: a verdict line, then one line per problem."""
        lines = []
        if self.ok:
            lines.append("Validation passed: the data meet the cis_eval data contract.")
        else:
            lines.append(f"Validation failed: {len(self.errors)} error(s) must be fixed.")
        for label, group in (("Errors", self.errors), ("Warnings", self.warnings)):
            if group:
                lines.append(f"{label}:")
                lines += _bounded(group)
        for name in ("students", "contacts", "coordinators"):
            frame = getattr(self, name)
            if frame is not None:
                lines.append(f"{name}: {len(frame):,} rows checked")
        lines.append(ROW_NOTE)
        # Messages quote names from the user's files; printed, they carry no live HTML.
        return "\n".join(escape_markup(line) for line in lines)

    def raise_for_errors(self) -> None:
        """Raise :class:`DataValidationError` listing every error, if there are any."""
        if self.errors:
            raise DataValidationError(self.errors)


def check_number_format(decimal: object, thousands: object) -> None:
    """Check a declared number format: a decimal mark and a thousands separator.

    Parameters
    ----------
    decimal : {".", ","}
        The decimal mark.
    thousands : {None, ",", ".", " ", "'"}
        The thousands separator, or ``None`` for none.

    Raises
    ------
    OptionError
        If either is not allowed, or they are the same character.
    """
    check_option("decimal", decimal, DECIMAL_MARKS)
    check_option("thousands", thousands, THOUSANDS_SEPARATORS)
    if decimal == thousands:
        raise OptionError(
            f"decimal={decimal!r} and thousands={thousands!r}: the decimal mark and the "
            "thousands separator must differ"
        )


def _short(text: object, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _bounded(problems: Sequence[Problem]) -> list[str]:
    """Problems as bounded lines: at most MAX_PROBLEMS_SHOWN, each cut to MAX_LINE."""
    lines = [f"  - {_short(p, MAX_LINE)}" for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  - ... and {len(problems) - MAX_PROBLEMS_SHOWN:,} more")
    return lines


def spreadsheet_rows(
    positions: np.ndarray, header_row: int = 1, gaps: Sequence[tuple[int, int]] = ()
) -> np.ndarray:
    """Spreadsheet row numbers of a table's rows, from their 0-based positions.

    Parameters
    ----------
    positions : numpy.ndarray of int
        Positions of rows in the table (0 is the first row below the header).
    header_row : int, default 1
        The spreadsheet row of the column names (below any title rows of an export).
    gaps : sequence of (int, int)
        Blank rows left out of the table below the header, as ``(first row, how many)``
        in increasing order (:func:`cis_eval.io.read_sheet` records them).

    Returns
    -------
    numpy.ndarray of int
        The row each position has in the spreadsheet, as Excel numbers it.

    Examples
    --------
    >>> spreadsheet_rows(np.array([0, 1, 2]), header_row=4, gaps=[(6, 2)]).tolist()
    [5, 8, 9]
    """
    pos = np.asarray(positions, dtype=np.int64)
    rows = pos + header_row + 1
    if len(gaps):
        first = np.array([g[0] for g in gaps], dtype=np.int64)
        size = np.array([g[1] for g in gaps], dtype=np.int64)
        before = np.concatenate(([0], np.cumsum(size)))
        # rows of the table above each gap: a position at or past it moves down by its size
        kept_above = first - header_row - 1 - before[:-1]
        rows += before[np.searchsorted(kept_above, pos, side="right")]
    return rows


class _Checker:
    """Collects problems for one table."""

    def __init__(
        self,
        source: str,
        renamed: dict[str, str] | None = None,
        *,
        decimal: str = ".",
        thousands: str | None = None,
        header_row: int = 1,
        gaps: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.source = source
        self.renamed = renamed or {}
        self.decimal = decimal
        self.thousands = thousands
        self.header_row = header_row
        self.gaps = tuple(gaps)
        self.problems: list[Problem] = []

    def _column(self, column: str | None) -> str | None:
        # a column renamed by a column map is shown under the file's own name too
        if column in self.renamed:
            return f"{_short(self.renamed[column])} ({column})"
        return None if column is None else _short(column)

    def add(
        self,
        column: str | None,
        mask: np.ndarray | None,
        message: str,
        expected: str,
        severity: str = "error",
    ) -> None:
        column = self._column(column)
        if mask is None:
            self.problems.append(Problem(self.source, column, (), 0, message, expected, severity))
            return
        pos = np.flatnonzero(mask)
        if pos.size == 0:
            return
        # the rows Excel shows: below the header row (row 1 of a plain file), blank rows
        # that a reader dropped counted back in
        shown = spreadsheet_rows(pos[:MAX_ROWS_SHOWN], self.header_row, self.gaps)
        rows = tuple(int(r) for r in shown)
        msg = message.replace("{n}", f"{pos.size:,}")
        self.problems.append(
            Problem(self.source, column, rows, int(pos.size), msg, expected, severity)
        )


def _text(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    out = s.astype("string").str.strip()
    return out.mask(out.eq(""))


def _examples(values: pd.Series, col: Column) -> str:
    """Up to three of a category column's offending values, if they are short codes.

    Values of any other kind of column are never shown, nor values longer than 24
    characters or with more than two digits (an identifier, a date or a social-security
    number typed into the wrong column).
    """
    if col.kind != "category" or col.name in PRIVATE:
        return ""
    shown: list[str] = []
    for v in values.dropna().drop_duplicates().head(100).astype(str):
        if len(v) <= 24 and sum(ch.isdigit() for ch in v) <= 2 and v.isprintable():
            shown.append(v)
            if len(shown) == 3:
                break
    return " (e.g. " + ", ".join(repr(u) for u in shown) + ")" if shown else ""


# A number with separators, a percent sign or a unit: told apart to say what is wrong.
_NUMBERISH = r"[+-]?[\d.,'\s]*\d[\d.,'\s]*"
_SEPARATORS = re.compile(r"[.,'\s]")


def _numbers(
    txt: pd.Series, name: str, ck: _Checker, plain: str = "a number"
) -> tuple[pd.Series, BoolArray]:
    """Read text as numbers in the declared format; record every value that is not one.

    Nothing is guessed: under the default format (``.`` decimal mark, no thousands
    separator) ``0,5``, ``1,80`` and ``1,800`` are refused, not read as 5, 180 and 1800.
    A declared thousands separator must separate groups of three digits.
    """
    dec, sep = ck.decimal, ck.thousands
    work = txt
    if dec != "." or sep is not None:
        marked = txt.str.contains(r"[.,'\s]", regex=True).fillna(False).to_numpy(dtype=bool)
        if marked.any():
            sub = txt[marked]
            if sep == " ":
                sub = sub.str.replace(r"[\u00a0\u202f]", " ", regex=True)
            d = re.escape(dec)
            body = rf"(?:\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+|\d+)" if sep else r"\d+"
            ok = sub.str.fullmatch(rf"[+-]?(?:{body}(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?")
            fixed = sub.str.replace(sep, "", regex=False) if sep else sub
            if dec != ".":
                fixed = fixed.str.replace(dec, ".", regex=False)
            work = txt.copy()
            work[marked] = fixed.where(ok.fillna(False).astype(bool), "not a number")
    try:
        # Arrow's cast parses a clean column many times faster than to_numeric; it refuses
        # the whole column on one bad value, which the slower path then finds.
        num = work.astype("Float64")
    except (ValueError, TypeError):
        num = pd.to_numeric(work, errors="coerce").astype("Float64")
    bad = (num.isna() & txt.notna()).to_numpy(dtype=bool)
    if not bad.any():
        return num, bad
    where = np.flatnonzero(bad)
    orig = txt[bad]
    kinds = [
        (
            orig.str.fullmatch(_NUMBERISH),
            "{n} value(s) have a decimal comma or a thousands separator (as in 0,5 or 1,800)"
            if dec == "." and sep is None
            else "{n} value(s) do not follow the declared number format (a misplaced "
            "thousands separator, or the other decimal mark)",
            "'.' as the decimal mark and no separator, or the file's format declared "
            "(decimal=',' or thousands=','; --decimal, --thousands)"
            if dec == "." and sep is None
            else f"numbers such as {'1' + sep + '800' if sep else '1800'}{dec}5 (decimal "
            f"mark {dec!r}, "
            + (
                f"thousands separator {sep!r} between groups of three digits)"
                if sep
                else "no thousands separator)"
            ),
        ),
        (
            orig.str.fullmatch(_NUMBERISH + r"\s*%"),
            "{n} value(s) carry a percent sign",
            "a plain number (a proportion such as 0.45 where the column is a proportion)",
        ),
        (
            orig.str.fullmatch(_NUMBERISH + r"\s*[^\W\d_].*"),
            "{n} value(s) carry a unit or other text after the number",
            "a plain number, in the unit the data contract names",
        ),
    ]
    rest = np.ones(where.size, dtype=bool)
    for match, message, expected in kinds:
        hit = match.fillna(False).to_numpy(dtype=bool) & rest
        rest &= ~hit
        mask = np.zeros(bad.size, dtype=bool)
        mask[where[hit]] = True
        ck.add(name, mask, message, expected)
    mask = np.zeros(bad.size, dtype=bool)
    mask[where[rest]] = True
    ck.add(name, mask, "{n} value(s) are not numbers", plain)
    return num, bad


def _school_label(value: object) -> str:
    """A school identifier for a message: cut to 30 characters, hidden if number-like.

    A value with seven or more digits (a social-security or phone number typed into the
    school column) is not repeated.
    """
    text = _short(value, 30)
    return "(identifier not shown)" if sum(ch.isdigit() for ch in text) >= 7 else text


def _today() -> pd.Timestamp:
    """The day of the check: later dates have not happened yet."""
    return pd.Timestamp.now().normalize()


def _coerce(raw: pd.Series, col: Column, ck: _Checker) -> pd.Series:
    """Type one column, recording problems; returns the typed column."""
    name = col.name
    s = _text(raw) if col.kind in ("id", "string", "category") else raw
    missing = s.isna().to_numpy()
    if not col.missing_ok:
        ck.add(name, missing, "{n} empty cell(s)", "a value in every row")
    if col.kind in ("id", "string"):
        return s.astype("string")
    if col.kind == "category":
        # Each distinct value is normalised once: a log has millions of rows, few values.
        lookup = {v: normalise_category(v) for v in s.dropna().unique()}
        norm = s.map(lookup).astype("string")
        bad = (~norm.isin(col.categories) & norm.notna()).to_numpy()
        if bad.any():
            ck.add(
                name,
                bad,
                "{n} value(s) not allowed" + _examples(s[bad], col),
                "one of " + ", ".join(col.categories),
            )
        return norm.astype("string")
    if col.kind == "date":
        if pd.api.types.is_datetime64_any_dtype(s):
            parsed = pd.to_datetime(s)
        else:
            txt = _text(s)
            parsed = pd.to_datetime(txt, errors="coerce", format="ISO8601")
            retry = parsed.isna() & txt.notna()
            if retry.any():
                parsed[retry] = pd.to_datetime(txt[retry], errors="coerce", format="%m/%d/%Y")
            bad = (parsed.isna() & txt.notna()).to_numpy()
            ck.add(
                name,
                bad,
                "{n} value(s) are not dates",
                "a date such as 2012-09-14 (ISO 8601) or 09/14/2012",
            )
        parsed = parsed.astype("datetime64[s]")
        today = _today()
        ck.add(
            name,
            (parsed >= today + pd.Timedelta(days=1)).fillna(False).to_numpy(dtype=bool),
            "{n} date(s) are in the future",
            f"dates up to today ({today:%Y-%m-%d}, the day of this check): a future date is "
            "usually a typing error in the year",
        )
        return parsed
    # numeric kinds
    if pd.api.types.is_bool_dtype(s):
        s = s.astype("Int64")
    if pd.api.types.is_numeric_dtype(s):
        num = pd.to_numeric(s, errors="coerce").astype("Float64")
        nonnum = np.zeros(len(s), bool)
    else:
        txt = _text(s)
        if col.kind == "binary":
            low = txt.str.lower()
            txt = low.mask(low.isin(TRUE_WORDS), "1").mask(low.isin(FALSE_WORDS), "0")
        num, nonnum = _numbers(
            txt, name, ck, "0 or 1 (or yes/no, true/false)" if col.kind == "binary" else "a number"
        )
    vals = num.to_numpy(dtype=float, na_value=np.nan)
    infinite = np.isinf(vals)
    ck.add(name, infinite, "{n} value(s) are infinite", "a finite number")
    vals[infinite] = np.nan
    present = ~np.isnan(vals)
    if col.kind == "binary":
        ck.add(
            name,
            present & ~np.isin(vals, (0.0, 1.0)),
            "{n} value(s) other than 0 or 1",
            "0 or 1 (1 = yes)",
        )
        return num.round().astype("Int64") if np.isin(vals[present], (0.0, 1.0)).all() else num
    if col.kind == "integer":
        frac = present & (np.abs(vals - np.round(vals)) > 1e-9)
        ck.add(name, frac, "{n} value(s) are not whole numbers", "a whole number")
    lo, hi = col.minimum, col.maximum
    out_of_range = present & (
        ((vals < lo) if lo is not None else False) | ((vals > hi) if hi is not None else False)
    )
    if out_of_range.any():
        expected = f"a value in [{lo:g}, {hi:g}]"
        if hi == 1 and np.nanmax(vals[out_of_range]) <= 100:
            expected += ": a proportion, not a percentage"
        if name == "minutes":
            expected = (
                f"minutes between {lo:g} and {hi:g} (a contact longer than a school day "
                "is almost certainly a data-entry error)"
            )
        ck.add(name, out_of_range, "{n} value(s) outside the allowed range", expected)
    if col.kind == "integer" and not (nonnum.any()):
        ok = present & ~(np.abs(vals - np.round(vals)) > 1e-9)
        if ok.sum() == present.sum():
            return num.round().astype("Int64")
    return num


def _typed(
    frame: pd.DataFrame, table: str, ck: _Checker, contract: Contract = "trial"
) -> pd.DataFrame:
    cols = _FIDELITY_STUDENTS if contract == "fidelity" and table == "students" else TABLES[table]
    described = {c.name: c for c in cols}
    repeated = frame.columns.duplicated(keep=False)
    if repeated.any():
        # pandas allows one label twice; frame[name] would then be a table, not a column
        labels = list(frame.columns)
        for label in dict.fromkeys(c for c, r in zip(labels, repeated, strict=True) if r):
            where = [i + 1 for i, c in enumerate(labels) if c == label]
            ck.add(
                str(label),
                None,
                f"the column appears {len(where)} times (columns "
                + ", ".join(map(str, where[:5]))
                + ")",
                "each column once",
            )
        frame = frame.loc[:, ~frame.columns.duplicated(keep="first")]
    names = {c.name for c in cols}
    if len(frame.columns) and not any(str(c) in names for c in frame.columns):
        ck.add(
            None,
            None,
            "none of the columns is one of the data contract's: the first row does not look "
            "like a header row, or the file's names need a column map",
            "a header row with the contract's names ("
            + ", ".join(c.name for c in cols if c.required)
            + "), or a column map from the file's names to them",
        )
    missing = [c.name for c in cols if c.required and c.name not in frame.columns]
    for m in missing:
        ck.add(
            m,
            None,
            "required column is missing",
            f"a column named '{m}' ({described[m].description})",
        )
    out = frame.copy()
    for c in cols:
        if c.name in out.columns:
            out[c.name] = _coerce(frame[c.name], c, ck)
    return out


def _school_year(dates: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The August-to-July school year containing the median contact date."""
    med = pd.Timestamp(dates.dropna().median())
    start_year = med.year if med.month >= 8 else med.year - 1
    return pd.Timestamp(f"{start_year}-08-01"), pd.Timestamp(f"{start_year + 1}-07-31")


def _check_students(s: pd.DataFrame, ck: _Checker, contract: Contract = "trial") -> None:
    if len(s) == 0:
        who = "randomized student" if contract == "trial" else "student in the program"
        ck.add(None, None, "the table has no rows", f"one row per {who}")
        return
    cols = set(s.columns)
    # A unique column (one hash pass) has no repeats and no student in two schools: the
    # row-by-row checks, three times dearer on a network's million students, run only
    # when it is not.
    if "student_id" in cols and not s["student_id"].is_unique:
        dup = s["student_id"].duplicated(keep=False) & s["student_id"].notna()
        if "school_id" in cols:
            schools = s.groupby("student_id", dropna=True)["school_id"].nunique()
            two = s["student_id"].isin(schools.index[schools > 1]).to_numpy()
            ck.add(
                "student_id",
                two,
                "{n} row(s) place one student in two schools",
                "each student in exactly one school",
            )
            dup = dup & ~two
        ck.add(
            "student_id",
            dup.to_numpy(),
            "{n} row(s) repeat a student identifier",
            "one row per student (identifiers are not shown, for privacy)",
        )
    pairs = [
        ("days_present", "days_enrolled", "days present greater than days enrolled"),
        ("core_courses_failed", "core_courses_taken", "more core courses failed than taken"),
    ]
    for small, big, what in pairs:
        if {small, big} <= cols:
            a = s[small].to_numpy(dtype=float, na_value=np.nan)
            b = s[big].to_numpy(dtype=float, na_value=np.nan)
            ck.add(small, a > b, "{n} row(s) with " + what, f"{small} at most {big}")
    if {"grade", "school_level"} <= cols:
        g = s["grade"].to_numpy(dtype=float, na_value=np.nan)
        lvl = s["school_level"]
        odd = ((lvl.eq("middle") & (g > 8)) | (lvl.eq("high") & (g < 9))).fillna(False)
        ck.add(
            "grade",
            odd.to_numpy(),
            "{n} grade(s) do not match the school level",
            "grades 6-8 in middle schools and 9-12 in high schools",
            "warning",
        )
    if {"core_credits_earned", "school_level"} <= cols:
        mid = (s["school_level"].eq("middle") & s["core_credits_earned"].notna()).fillna(False)
        ck.add(
            "core_credits_earned",
            mid.to_numpy(),
            "{n} middle-school value(s) will be ignored",
            "core credits for high school students only",
            "warning",
        )
    # A fidelity check measures services, not an impact: schools without a control group
    # are what a program roster looks like, so there is nothing to warn about.
    if contract == "trial" and {"treatment", "school_id"} <= cols and s["treatment"].notna().all():
        arms = s.groupby("school_id")["treatment"].agg(["min", "max", "size"])
        one = arms[arms["min"] == arms["max"]]
        if len(one):
            names = ", ".join(_school_label(n) for n in one.index[:5]) + (
                " ..." if len(one) > 5 else ""
            )
            ck.add(
                "treatment",
                None,
                f"{len(one)} school(s) ({names}) have students in only one arm "
                f"({int(one['size'].sum()):,} students); estimators with school fixed "
                "effects or blocked differences drop them",
                "program and control students in every school",
                "warning",
            )


def _check_contacts(
    c: pd.DataFrame,
    ck: _Checker,
    students: pd.DataFrame | None,
    coordinators: pd.DataFrame | None,
    school_year: tuple[pd.Timestamp, pd.Timestamp] | None,
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if len(c) == 0:
        ck.add(None, None, "the contacts log has no rows", "one row per logged contact")
        return school_year
    cols = set(c.columns)
    if "contact_id" in cols and not c["contact_id"].is_unique:
        ck.add(
            "contact_id",
            (c["contact_id"].duplicated(keep=False) & c["contact_id"].notna()).to_numpy(),
            "{n} row(s) repeat a contact identifier",
            "one row per contact",
        )
    if students is not None and {"student_id"} <= cols and "student_id" in students.columns:
        known = c["student_id"].isin(students["student_id"].dropna()) | c["student_id"].isna()
        unknown = ~known.to_numpy()
        n_students = c.loc[unknown, "student_id"].nunique()
        ck.add(
            "student_id",
            unknown,
            f"{{n}} contact(s) for {n_students:,} student(s) not in the roster",
            "every contact to be for a student in the students table",
        )
    if (
        coordinators is not None
        and "coordinator_id" in cols
        and "coordinator_id" in coordinators.columns
    ):
        unk = ~(
            c["coordinator_id"].isin(coordinators["coordinator_id"].dropna())
            | c["coordinator_id"].isna()
        ).to_numpy()
        ck.add(
            "coordinator_id",
            unk,
            "{n} contact(s) by coordinators not in the coordinators table",
            "every coordinator listed in the coordinators table",
            "warning",
        )
    if "date" in cols and c["date"].notna().any():
        if school_year is None:
            school_year = _school_year(c["date"])
        lo, hi = school_year
        outside = ((c["date"] < lo) | (c["date"] > hi)).fillna(False).to_numpy()
        ck.add(
            "date",
            outside,
            "{n} date(s) outside the school year",
            f"dates from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}",
        )
        if students is not None and "assignment_date" in students.columns and "student_id" in cols:
            when = students.drop_duplicates("student_id").set_index("student_id")["assignment_date"]
            assigned = c["student_id"].map(when)
            early = (c["date"] < assigned).fillna(False).to_numpy() & (
                c["tier"].eq(2).fillna(False).to_numpy() if "tier" in cols else True
            )
            ck.add(
                "date",
                early,
                "{n} Level 2 contact(s) dated before the student's random assignment",
                "case management to start after random assignment",
                "warning",
            )
            late = (c["date"] - assigned > FOLLOW_UP).fillna(False).to_numpy(dtype=bool)
            ck.add(
                "date",
                late,
                "{n} contact(s) dated more than a year after the student's random assignment",
                "contacts in the school year that follows random assignment (check the year "
                "of these dates and of the students' assignment_date)",
            )
    return school_year


def _check_assignment_dates(
    s: pd.DataFrame, ck: _Checker, school_year: tuple[pd.Timestamp, pd.Timestamp]
) -> None:
    """Random assignment must fall in the school year or the year before it."""
    if "assignment_date" not in s.columns:
        return
    lo, hi = school_year
    when = s["assignment_date"]
    span = f"the school year checked runs from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}"
    ck.add(
        "assignment_date",
        (when > hi).fillna(False).to_numpy(dtype=bool),
        "{n} random assignment date(s) after the end of the school year",
        f"random assignment before the school year ends ({span})",
    )
    ck.add(
        "assignment_date",
        (when < lo - FOLLOW_UP).fillna(False).to_numpy(dtype=bool),
        "{n} random assignment date(s) more than a year before the school year",
        f"random assignment in the school year or the year before it ({span})",
    )


def _school_year_option(value: object) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Check ``school_year=(first day, last day)``."""
    if value is None:
        return None
    expected = (
        "school_year must be two dates (first day, last day), e.g. ('2012-08-01', '2013-07-31')"
    )
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise OptionError(f"{expected}; got {_short(repr(value))}")
    try:
        lo, hi = (pd.Timestamp(v) for v in value)
    except (ValueError, TypeError):
        raise OptionError(f"{expected}; got {_short(repr(tuple(value)))}") from None
    if pd.isna(lo) or pd.isna(hi) or hi <= lo:
        raise OptionError(f"{expected}: the last day must come after the first")
    return lo, hi


def _check_coordinators(k: pd.DataFrame, ck: _Checker, students: pd.DataFrame | None) -> None:
    if "coordinator_id" in k.columns:
        # A coordinator serving several schools has one row per school (the FTE share
        # there), so only a repeated coordinator and school is a duplicate.
        key = [c for c in ("coordinator_id", "school_id") if c in k.columns]
        ck.add(
            "coordinator_id",
            (k.duplicated(subset=key, keep=False) & k["coordinator_id"].notna()).to_numpy(),
            "{n} row(s) repeat a coordinator and school",
            "one row per coordinator and school served",
        )
    if students is not None and "school_id" in k.columns and "school_id" in students.columns:
        unk = ~(k["school_id"].isin(students["school_id"].dropna()) | k["school_id"].isna())
        ck.add(
            "school_id",
            unk.to_numpy(),
            "{n} coordinator(s) in schools with no students in the roster",
            "schools that appear in the students table",
            "warning",
        )


def row_numbering(frame: pd.DataFrame) -> dict[str, Any]:
    """Where a table's rows sit in its spreadsheet, from what its reader recorded.

    A table read through a mapping file (:func:`cis_eval.io.read_sheet`) records the
    row of its column names below any title rows, and the blank rows it dropped; any
    other table has its header in row 1 and no rows dropped.
    """
    header = frame.attrs.get("header_row", 1)
    gaps = frame.attrs.get(ROW_GAPS, ())
    try:
        header_row = int(header)
        runs = tuple(sorted((int(a), int(n)) for a, n in gaps))
    except (TypeError, ValueError):  # attrs set by hand to something else: plain numbering
        return {}
    if header_row < 1 or any(n < 1 or a <= header_row for a, n in runs):
        return {}
    return {"header_row": header_row, "gaps": runs}


def validate(
    students: pd.DataFrame | None = None,
    contacts: pd.DataFrame | None = None,
    coordinators: pd.DataFrame | None = None,
    *,
    school_year: tuple[str, str] | None = None,
    sources: Sequence[str | None] = (None, None, None),
    raise_on_error: bool = True,
    decimal: str | None = None,
    thousands: str | None = None,
    contract: Contract = "trial",
) -> ValidationReport:
    """Check the tables against the data contract and return typed copies.

    Every problem is collected before anything is raised, so a file can be fixed in one
    pass. Messages name the file, the column, up to five spreadsheet row numbers and what
    was expected; they never show student identifiers, and cell values only from category
    columns when they are short codes (see the module notes). Inputs are not modified.

    Numbers are read exactly or refused: ``0,5``, ``1,80``, ``45%`` or ``3 hrs`` are
    errors naming their rows unless ``decimal``/``thousands`` declare how the file writes
    numbers. Yes/no columns accept 1/0 and yes/no, true/false, y/n, t/f. Dates in the
    future, contacts more than a year after the student's random assignment or outside
    the school year, and random assignments after the school year or more than a year
    before it are errors.

    Parameters
    ----------
    students, contacts, coordinators : pandas.DataFrame, optional
        The tables (as read by :func:`cis_eval.load`, or already typed).
    school_year : (str, str), optional
        First and last day of the school year for checking contact dates; by default the
        August-July year containing the median contact date.
    sources : sequence of str, optional
        Names to use in messages for the three tables; by default the file name recorded
        by :func:`cis_eval.load`, else ``"students"``, ``"contacts"``, ``"coordinators"``.
    raise_on_error : bool, default True
        Raise :class:`~cis_eval.errors.DataValidationError` when there are errors.
    decimal : {".", ","}, optional
        Decimal mark of text numbers. By default each table's own, as recorded by
        :func:`cis_eval.load` (``"."`` for a table that did not come from it).
    thousands : {None, ",", ".", " ", "'"}, optional
        Thousands separator of text numbers. Giving ``decimal`` or ``thousands`` sets the
        format of every table (``decimal`` then defaults to ``"."``).
    contract : {"trial", "fidelity"}, default "trial"
        ``"fidelity"`` checks ``students`` as a program roster: only ``student_id`` and
        ``school_id`` are required (see :data:`cis_eval.schema.ROSTER`); any other
        students column present is checked as optional, and schools without a control
        group are not flagged.

    Returns
    -------
    ValidationReport
        Typed tables, errors and warnings. Warnings are also issued as one
        :class:`~cis_eval.errors.DesignWarning`.

    Raises
    ------
    DataValidationError
        When ``raise_on_error`` and any error was found; it lists them all.
    OptionError
        If ``school_year``, ``decimal`` or ``thousands`` is not valid.

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=1, n_students=200, n_schools=4)
    >>> report = ce.validate(trial.students, trial.contacts, trial.coordinators)
    >>> report.ok
    True
    """
    given = {"students": students, "contacts": contacts, "coordinators": coordinators}
    if all(v is None for v in given.values()):
        raise OptionError("give at least one table to validate")
    declared = decimal is not None or thousands is not None
    if declared:
        check_number_format(decimal or ".", thousands)
    year = _school_year_option(school_year)
    check_option("contract", contract, CONTRACTS)
    typed: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    checkers: dict[str, _Checker] = {}
    for (name, frame), src in zip(given.items(), sources, strict=True):
        if frame is None:
            typed[name] = None
            continue
        if not isinstance(frame, pd.DataFrame):
            raise OptionTypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
        dec, sep = (
            (decimal or ".", thousands)
            if declared
            else (frame.attrs.get("decimal", "."), frame.attrs.get("thousands"))
        )
        check_number_format(dec, sep)
        ck = _Checker(
            str(src or frame.attrs.get("source") or name),
            frame.attrs.get("renamed"),
            decimal=dec,
            thousands=sep,
            **row_numbering(frame),
        )
        checkers[name] = ck
        typed[name] = _typed(frame, name, ck, contract)
    if typed["students"] is not None:
        _check_students(typed["students"], checkers["students"], contract)
    if typed["contacts"] is not None:
        year = _check_contacts(
            typed["contacts"], checkers["contacts"], typed["students"], typed["coordinators"], year
        )
    if typed["students"] is not None and year is not None:
        _check_assignment_dates(typed["students"], checkers["students"], year)
    if typed["coordinators"] is not None:
        _check_coordinators(typed["coordinators"], checkers["coordinators"], typed["students"])
    for ck in checkers.values():
        problems += ck.problems
    if not any(p.severity == "error" for p in problems):
        for frame in typed.values():
            if frame is not None:
                frame.attrs[VALIDATED] = contract
    report = ValidationReport(
        typed["students"], typed["contacts"], typed["coordinators"], tuple(problems), year
    )
    if raise_on_error:
        report.raise_for_errors()
    if report.warnings:
        warnings.warn(
            "data warnings:\n" + "\n".join(_bounded(report.warnings)),
            DesignWarning,
            stacklevel=2,
        )
    return report


# Referenced so the service vocabularies stay importable from here for error messages.
_VOCABULARIES = {"service_type": SERVICE_TYPES, "mode": MODES}
