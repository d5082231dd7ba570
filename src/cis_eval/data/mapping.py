"""Mapping files: from an affiliate's case-management export to the data contract.

A mapping file (TOML) says, for each table of the contract, where the table is in the
export (file and sheet), which row holds the column names, which of the export's columns
is which contract column, and what the export's own wordings mean (values recoded to the
contract's codes). It is written once per affiliate, drafted by ``cis-eval map --init``
from the export itself (:func:`draft_mapping`), and then read with
:func:`cis_eval.load_export`.

This module is pure: it parses mappings and applies them to frames. Files are opened
only by :mod:`cis_eval.io`.

A mapping file looks like this::

    file = "export.xlsx"        # default file of every table (relative to this file)
    dates = "US"                # "auto", "US" (MM/DD/YYYY) or "ISO" (YYYY-MM-DD)
    encoding = "cp1252"         # of CSV files not saved as UTF-8 (optional)

    [roster]
    sheet = "Roster"
    header_row = "auto"         # or the spreadsheet row of the column names
    [roster.columns]            # the export's column = the contract's column
    "Student ID" = "student_id"
    "Campus" = "school_id"
    [roster.values.school_id]   # the export's wording = the contract's value
    "Lincon Middle School" = "Lincoln Middle School"

Values are recoded in this order: the mapping file's own wordings, then the shipped
common wordings (``_resources/export_wordings.toml``: service areas, tiers, modes,
school levels, yes/no), then the column's kind: grades such as ``"8th Grade"`` become
``8``, shares such as ``"45%"`` become ``0.45``, and US or ISO dates become ISO dates.
"""

from __future__ import annotations

import codecs
import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from ..errors import DataValidationError, Problem
from ..present.safety import escape_markup
from ..schema import COLUMNS, SERVICE_AREAS, Column

__all__ = [
    "MAPPED_TABLES",
    "ExportMapping",
    "LoadedExport",
    "MappedLog",
    "TableMapping",
    "apply_mapping",
    "draft_mapping",
    "find_header_row",
    "mapped_columns",
    "needs_recoding",
    "parse_mapping",
    "recode_distinct",
    "shipped_wordings",
]

DateFormat = Literal["auto", "US", "ISO"]
DATE_FORMATS: tuple[str, ...] = get_args(DateFormat)

MAPPED_TABLES: tuple[str, ...] = ("roster", "students", "contacts", "coordinators")
"""Tables a mapping file can describe: a fidelity roster or a trial's students, and the rest."""

HEADER_SEARCH_ROWS = 30  # title blocks above a header are a few rows, never pages
MAX_ROWS_SHOWN = 5
_SHOWN = 40
# Identifier values are never shown in messages (privacy); other values may be.
_PRIVATE = frozenset({"student_id", "contact_id"})
# Columns whose wordings are recoded through the shipped vocabulary, by vocabulary name.
_VOCABULARY = {
    "service_type": "service_type",
    "tier": "tier",
    "mode": "mode",
    "school_level": "school_level",
}
_TABLE_KEYS = frozenset({"file", "sheet", "header_row", "dates", "encoding", "columns", "values"})
_TOP_KEYS = frozenset({"file", "dates", "encoding", "shipped_wordings"})
_ORDINALS = {
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "freshman": 9,
    "sophomore": 10,
    "junior": 11,
    "senior": 12,
}
# A time of day after the date is allowed and dropped: contacts are counted by day.
_TIME = r"(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?)?"
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME + "$")
_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})" + _TIME + "$")
_PERCENT = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*%$")
_NUMBER_LIKE = re.compile(r"^[\d.,/%:+-]+$")
_GRADE = re.compile(r"(?<!\d)(\d{1,2})(?!\d)")


def _shown(text: object) -> str:
    s = str(text)
    return repr(s if len(s) <= _SHOWN else s[:_SHOWN] + "...")


def wording_key(text: str) -> str:
    """A wording as it is matched: lower case, punctuation and the word "and" dropped.

    ``"College & Career"``, ``"college and career"`` and ``"COLLEGE/CAREER"`` all give
    ``"college career"``; ``"1:1"`` gives ``"1 1"``.
    """
    words = re.sub(r"[^0-9a-z]+", " ", text.casefold().replace("&", " and ")).split()
    return " ".join(w for w in words if w != "and")


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class TableMapping:
    """How to read one table of the contract from an export.

    Attributes
    ----------
    table : {"roster", "students", "contacts", "coordinators"}
        The contract table.
    file : str
        The export file, relative to the mapping file's folder.
    sheet : str or int or None
        Sheet name (or 0-based position) of a workbook; ``None`` for the first sheet.
    header_row : int or None
        Spreadsheet row (1-based, as Excel shows it) of the column names; ``None`` finds
        it below any title rows.
    columns : dict of str to str
        The export's column -> the contract's column; ``""`` leaves a column out.
    values : dict of str to dict of str to str
        Per contract column, the export's wording -> the contract's value.
    dates : {"auto", "US", "ISO"}
        How dates are written: ``"US"`` is MM/DD/YYYY; ``"auto"`` accepts ISO dates and
        US dates that cannot be read another way.
    encoding : str or None
        Text encoding of a CSV file (e.g. ``"cp1252"`` for a Windows "CSV" saved by
        Excel); ``None`` reads UTF-8 (or UTF-16/32 with a byte-order mark).
    """

    table: str
    file: str
    sheet: str | int | None = None
    header_row: int | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    dates: DateFormat = "auto"
    encoding: str | None = None

    @property
    def expected_headers(self) -> tuple[str, ...]:
        """Column names the header row should contain (the mapped ones)."""
        return tuple(self.columns)


@dataclass(frozen=True, slots=True)
class ExportMapping:
    """A parsed mapping file: one :class:`TableMapping` per table it describes.

    Attributes
    ----------
    tables : dict of str to TableMapping
        By contract table, in the order of the file.
    source : str
        Name of the mapping file, for messages.
    shipped_wordings : bool
        Whether the shipped common wordings are used besides the file's own.
    """

    tables: dict[str, TableMapping]
    source: str = "mapping"
    shipped_wordings: bool = True

    def __repr__(self) -> str:
        return f"ExportMapping({self.source}: {', '.join(self.tables)})"


@dataclass(frozen=True, slots=True)
class LoadedExport:
    """The tables of an export, renamed and recoded to the contract, as text.

    Pass them to :func:`cis_eval.validate` (or a verb, which validates) to check and type
    them. Each frame's ``attrs["source"]`` names the table, file and sheet, and
    ``attrs["header_row"]`` the spreadsheet row of its column names.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        By contract table name.
    notes : tuple of str
        What was done that a user should know (title rows skipped, columns left out).
    warnings : tuple of Problem
        Things that look wrong but were not changed (e.g. a school name that is close to
        another one: a likely typo).
    mapping : ExportMapping
        The mapping that was applied.
    contacts_log : MappedLog or None
        The contacts log left on disk (``load_export(..., log_on_disk=True)``), for
        :func:`cis_eval.fidelity` to read through DuckDB; ``tables`` then has no contacts.
    """

    tables: dict[str, pd.DataFrame] = field(repr=False)
    notes: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()
    mapping: ExportMapping | None = field(default=None, repr=False)
    contacts_log: MappedLog | None = field(default=None, repr=False)

    def _get(self, name: str) -> pd.DataFrame | None:
        frame = self.tables.get(name)
        return None if frame is None else frame.copy()

    @property
    def roster(self) -> pd.DataFrame | None:
        """The program roster (or the trial's students table when that was mapped)."""
        return self._get("roster") if "roster" in self.tables else self._get("students")

    @property
    def students(self) -> pd.DataFrame | None:
        """The students table (or the program roster when that was mapped)."""
        return self._get("students") if "students" in self.tables else self._get("roster")

    @property
    def contacts(self) -> pd.DataFrame | None:
        """The contacts log."""
        return self._get("contacts")

    @property
    def coordinators(self) -> pd.DataFrame | None:
        """The coordinators table (one row per coordinator and school)."""
        return self._get("coordinators")

    def __repr__(self) -> str:
        parts = [f"{name} {len(frame):,} rows" for name, frame in self.tables.items()]
        return f"LoadedExport({', '.join(parts)})"

    def to_text(self) -> str:
        """What was read, the notes and the warnings, for people."""
        lines = [repr(self)]
        lines += [f"  - {n}" for n in self.notes]
        lines += [f"  - warning: {w}" for w in self.warnings]
        # Notes quote wordings from the user's export; printed, they carry no live HTML.
        return "\n".join(escape_markup(line) for line in lines)


@dataclass(frozen=True, slots=True)
class MappedLog:
    """A contacts log left on disk, read through its mapping by DuckDB.

    :func:`cis_eval.load_export` returns one (as ``LoadedExport.contacts_log``) when asked
    to leave a large CSV or Parquet log on disk; :func:`cis_eval.fidelity` accepts it as
    ``contacts`` and renames, recodes and checks the log in SQL, with the same results as
    the log read into pandas and validated.

    Attributes
    ----------
    path : str
        The log file (CSV or Parquet).
    spec : TableMapping
        The ``[contacts]`` section of the mapping file.
    shipped : bool
        Whether the shipped common wordings are used besides the mapping's own.
    """

    path: str
    spec: TableMapping
    shipped: bool = True

    def __repr__(self) -> str:
        return f"MappedLog({self.spec.file})"


# ----------------------------------------------------------------------------- parsing


def _mapping_error(source: str, message: str, expected: str) -> DataValidationError:
    return DataValidationError([Problem(source, None, (), 0, message, expected)])


def _suggest(word: str, options: Iterable[str]) -> str:
    near = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(_shown(n) for n in near)}?" if near else ""


def parse_mapping(data: Mapping[str, Any], *, source: str = "mapping") -> ExportMapping:
    """Check a mapping file's contents and build an :class:`ExportMapping`.

    Parameters
    ----------
    data : mapping
        The parsed TOML document.
    source : str, default "mapping"
        Name of the mapping file, for messages.

    Returns
    -------
    ExportMapping

    Raises
    ------
    DataValidationError
        Listing every problem of the file: unknown sections or keys (with "did you
        mean" suggestions), columns mapped to names the contract does not have, values
        recoded to codes a column does not allow, a table without a file.

    Examples
    --------
    >>> m = parse_mapping(
    ...     {"file": "export.xlsx", "roster": {"sheet": "Roster",
    ...      "columns": {"Student ID": "student_id", "Campus": "school_id"}}}
    ... )
    >>> m.tables["roster"].columns["Campus"]
    'school_id'
    """
    problems: list[Problem] = []

    def bad(where: str, message: str, expected: str) -> None:
        problems.append(Problem(source, where or None, (), 0, message, expected))

    for key in data:
        if key not in _TOP_KEYS and key not in MAPPED_TABLES:
            bad(
                "",
                f"unknown section or key {_shown(key)}{_suggest(key, [*MAPPED_TABLES, *_TOP_KEYS])}",
                "tables " + ", ".join(MAPPED_TABLES) + " and keys " + ", ".join(sorted(_TOP_KEYS)),
            )
    if "roster" in data and "students" in data:
        bad("", "both a [roster] and a [students] section", "one of them")
    default_file = data.get("file")
    default_dates = data.get("dates", "auto")
    if default_dates not in DATE_FORMATS:
        bad("dates", f"unknown date format {_shown(default_dates)}", "auto, US or ISO")
        default_dates = "auto"

    def encoding_of(where: str, value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return codecs.lookup(value).name
            except LookupError:
                pass
        bad(where, f"unknown text encoding {_shown(value)}", 'a codec name such as "cp1252"')
        return None

    default_encoding = encoding_of("encoding", data.get("encoding"))
    shipped = data.get("shipped_wordings", True)
    if not isinstance(shipped, bool):
        bad("shipped_wordings", "not true or false", "true or false")
        shipped = True
    tables: dict[str, TableMapping] = {}
    for name in (k for k in data if k in MAPPED_TABLES):
        spec = data[name]
        if not isinstance(spec, Mapping):
            bad(name, "is not a section", f"a [{name}] section")
            continue
        contract = COLUMNS[name]
        for key in spec:
            if key not in _TABLE_KEYS:
                bad(
                    f"[{name}] {key}",
                    f"unknown key{_suggest(str(key), _TABLE_KEYS)}",
                    "one of " + ", ".join(sorted(_TABLE_KEYS)),
                )
        file = spec.get("file", default_file)
        if not isinstance(file, str) or not file:
            bad(f"[{name}] file", "no file named for this table", 'file = "export.xlsx"')
            file = ""
        sheet = spec.get("sheet")
        if sheet is not None and not isinstance(sheet, str | int):
            bad(f"[{name}] sheet", "not a sheet name or number", 'sheet = "Roster"')
            sheet = None
        header = spec.get("header_row", "auto")
        if header == "auto":
            header = None
        elif not isinstance(header, int) or isinstance(header, bool) or header < 1:
            bad(f"[{name}] header_row", f"{_shown(header)} is not a row", '"auto" or a row >= 1')
            header = None
        encoding = (
            encoding_of(f"[{name}] encoding", spec["encoding"])
            if "encoding" in spec
            else default_encoding
        )
        dates = spec.get("dates", default_dates)
        if dates not in DATE_FORMATS:
            bad(f"[{name}] dates", f"unknown date format {_shown(dates)}", "auto, US or ISO")
            dates = "auto"
        columns: dict[str, str] = {}
        raw_cols = spec.get("columns", {})
        if not isinstance(raw_cols, Mapping):
            bad(f"[{name}.columns]", "is not a section", '"Your column" = "contract_column"')
            raw_cols = {}
        targets: dict[str, str] = {}
        for theirs, ours in raw_cols.items():
            if not isinstance(ours, str):
                bad(f"[{name}.columns] {theirs}", "is not a column name", "a contract column")
                continue
            if ours and ours not in contract:
                bad(
                    f"[{name}.columns] {theirs}",
                    f"{_shown(ours)} is not a column of the {name} table"
                    + _suggest(ours, contract),
                    "one of " + ", ".join(contract) + ' (or "" to leave the column out)',
                )
                continue
            if ours and ours in targets:
                bad(
                    f"[{name}.columns] {theirs}",
                    f"maps to {ours!r}, as {_shown(targets[ours])} does",
                    "each contract column mapped from one export column",
                )
                continue
            if ours:
                targets[ours] = str(theirs)
            columns[str(theirs)] = ours
        values: dict[str, dict[str, str]] = {}
        raw_values = spec.get("values", {})
        if not isinstance(raw_values, Mapping):
            bad(f"[{name}.values]", "is not a section", f"[{name}.values.COLUMN] sections")
            raw_values = {}
        for col, recodes in raw_values.items():
            where = f"[{name}.values.{col}]"
            if col not in contract:
                bad(
                    where,
                    f"{_shown(col)} is not a column{_suggest(col, contract)}",
                    "a contract column",
                )
                continue
            if not isinstance(recodes, Mapping):
                bad(where, "is not a section", '"your wording" = "contract value"')
                continue
            allowed = _allowed_codes(contract[col])
            out: dict[str, str] = {}
            for theirs, ours in recodes.items():
                code = (
                    str(ours)
                    if isinstance(ours, str | int) and not isinstance(ours, bool)
                    else None
                )
                if code is None:
                    bad(f"{where} {theirs}", "is not text or a whole number", "a contract value")
                    continue
                if allowed and code and code not in allowed:
                    bad(
                        f"{where} {theirs}",
                        f"{_shown(code)} is not allowed{_suggest(code, allowed)}",
                        "one of " + ", ".join(allowed) + ' (or "" for an empty cell)',
                    )
                    continue
                out[str(theirs)] = code
            values[str(col)] = out
        tables[name] = TableMapping(
            name,
            file,
            sheet,
            header,
            columns,
            values,
            dates,
            encoding,
        )
    if not tables and not problems:
        bad("", "describes no table", "a [roster] or [students] section, and [contacts]")
    if problems:
        raise DataValidationError(problems)
    return ExportMapping(tables, source, bool(shipped))


def _allowed_codes(col: Column) -> tuple[str, ...]:
    """The values a recode may produce for ``col`` (empty: any text)."""
    if col.name == "service_type":
        return tuple(SERVICE_AREAS)
    if col.categories:
        return col.categories
    if col.kind == "binary":
        return ("0", "1")
    if (
        col.kind == "integer"
        and col.minimum is not None
        and col.maximum is not None
        and col.maximum - col.minimum <= 20
    ):
        return tuple(str(i) for i in range(int(col.minimum), int(col.maximum) + 1))
    return ()


# ----------------------------------------------------------------------------- wordings


@cache
def _shipped() -> dict[str, Any]:
    text = (
        resources.files("cis_eval").joinpath("_resources/export_wordings.toml").read_text("utf-8")
    )
    return tomllib.loads(text)


def shipped_wordings() -> dict[str, dict[str, str]]:
    """The shipped common wordings: vocabulary -> wording key -> contract value.

    Vocabularies are ``service_type`` (the ten CIS areas and ``"other"``), ``tier``,
    ``mode``, ``school_level`` and ``binary``; each contract code is also a wording of
    itself. The keys are matched through :func:`wording_key`.

    Returns
    -------
    dict
        A fresh copy; changing it changes nothing.

    Examples
    --------
    >>> shipped_wordings()["service_type"]["college career"]
    'college_career'
    >>> shipped_wordings()["mode"]["1 1"]
    'individual'
    """
    out: dict[str, dict[str, str]] = {}
    for vocab, codes in _shipped()["values"].items():
        words: dict[str, str] = {}
        for code, wordings in codes.items():
            for w in (code, *wordings):
                words.setdefault(wording_key(str(w)), str(code))
        out[vocab] = words
    return out


def column_wordings() -> dict[str, tuple[str, ...]]:
    """Shipped header wordings: contract column -> wording keys (for drafting a mapping)."""
    return {
        col: tuple(wording_key(w) for w in (col, *words))
        for col, words in _shipped()["columns"].items()
    }


# ----------------------------------------------------------------------------- header row


def _cell_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def find_header_row(rows: Sequence[Sequence[Any]], expected: Iterable[str] = ()) -> tuple[int, str]:
    """Find the row of column names in the top rows of a sheet.

    Parameters
    ----------
    rows : sequence of sequences
        The first rows of the sheet, cells as read (``None`` for empty cells).
    expected : iterable of str
        Column names the header should contain (e.g. from a mapping file). The row with
        most of them wins; without any, the first row filled at least 60% as wide as the
        widest top row is the header (title rows fill one or two cells).

    Returns
    -------
    index : int
        0-based position of the header in ``rows``.
    how : str
        How it was chosen, for the user.

    Examples
    --------
    >>> find_header_row([["Student roster 2012-13"], [], ["ID", "Campus", "Grade"], ["1", "A", "8"]])
    (2, 'the first row filled across the table')
    """
    top = [[_cell_text(v) for v in r] for r in rows[:HEADER_SEARCH_ROWS]]
    want = {wording_key(e) for e in expected if e}
    if want:
        scores = [sum(1 for v in r if v is not None and wording_key(v) in want) for r in top]
        best = max(scores, default=0)
        if best > 0:
            return scores.index(best), f"the row with {best} of the mapped column names"
    filled = [sum(v is not None for v in r) for r in top]
    widest = max(filled, default=0)
    # column names are words: a row with a bare number or date in it is data or a title
    wordy = [not any(v is not None and _NUMBER_LIKE.match(v) for v in r) for r in top]
    for i, n in enumerate(filled):
        if n >= max(2, math.ceil(0.8 * widest)) and wordy[i]:
            return i, "the first row filled across the table"
    for i, n in enumerate(filled):
        if n >= 2 and wordy[i]:
            return i, "the first row of several words"
    first = next((i for i, n in enumerate(filled) if n), 0)
    return first, "the first row that is not blank (no row looked like column names)"


def describe_skipped(rows: Sequence[Sequence[Any]], header: int) -> str:
    """Describe the rows above the header, e.g. ``row 1: 'Lincoln County CIS...'; row 2: blank``."""
    parts = []
    for i in range(header):
        texts = [t for t in (_cell_text(v) for v in rows[i]) if t]
        parts.append(f"row {i + 1}: {_shown(' '.join(texts)) if texts else 'blank'}")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- applying


@dataclass
class _Where:
    """Names a table for messages: table, file and sheet."""

    table: str
    file: str
    sheet: str | None

    @property
    def source(self) -> str:
        sheet = f", sheet {self.sheet!r}" if self.sheet else ""
        return f"{self.table} ({self.file}{sheet})"


def _rows_of(
    index: pd.Index, mask: Any, weights: np.ndarray | None = None
) -> tuple[tuple[int, ...], int]:
    """The first rows of ``index`` under ``mask``, and how many rows (or their weight).

    With ``weights``, ``index`` holds distinct values, not rows: all of them are returned,
    for the caller to find the rows that hold them.
    """
    hit = index[mask]
    if weights is not None:
        return tuple(int(r) for r in hit), int(np.asarray(weights)[np.asarray(mask)].sum())
    return tuple(int(r) for r in hit[:MAX_ROWS_SHOWN]), len(hit)


def _parse_date(text: str, fmt: DateFormat) -> tuple[str | None, str]:
    """One date cell -> (ISO text or None, kind) with kind iso/us/dayfirst/ambiguous/..."""
    m = _ISO.match(text)
    if m:
        try:
            return pd.Timestamp(int(m[1]), int(m[2]), int(m[3])).strftime("%Y-%m-%d"), "iso"
        except ValueError:
            return None, "invalid"
    m = _SLASHED.match(text)
    if not m:
        return None, "unknown"
    a, b, y = int(m[1]), int(m[2]), m[3]
    if len(y) == 2:
        return None, "two_digit_year"
    if fmt == "ISO":
        return None, "slashed_in_iso"
    if a > 12:
        return None, "dayfirst"
    try:
        iso = pd.Timestamp(int(y), a, b).strftime("%Y-%m-%d")
    except ValueError:
        return None, "invalid"
    return iso, ("us" if b > 12 or fmt == "US" else "either")


def _by_value(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each cell's position among the distinct values (-1 for empty), and those values.

    Recoding works on the distinct values only: a log has millions of rows, few wordings.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return np.asarray(codes), [str(u) for u in uniques]


def _from_codes(codes: np.ndarray, values: Sequence[str | None], index: pd.Index) -> pd.Series:
    """Cells from their positions among ``values`` (-1 gives an empty cell)."""
    lookup = np.array([*values, None], dtype=object)  # position -1 picks the trailing None
    return pd.Series(lookup[codes], index=index, dtype="string")


def _recode_dates(
    s: pd.Series,
    fmt: DateFormat,
    where: _Where,
    column: str,
    problems: list[Problem],
    weights: np.ndarray | None = None,
) -> pd.Series:
    codes, uniques = _by_value(s)
    parsed = [_parse_date(v, fmt) for v in uniques]
    kinds = {k for _, k in parsed}
    messages = {
        "unknown": (
            "{n} value(s) are not dates cis-eval reads",
            "a US date (MM/DD/YYYY) or an ISO date (YYYY-MM-DD)",
        ),
        "invalid": ("{n} value(s) are not real calendar dates", "a valid date"),
        "two_digit_year": (
            "{n} date(s) have a two-digit year, which is ambiguous",
            "four-digit years (MM/DD/YYYY or YYYY-MM-DD)",
        ),
        "slashed_in_iso": (
            '{n} date(s) are written with slashes but the mapping says dates = "ISO"',
            'ISO dates (YYYY-MM-DD), or dates = "US" for MM/DD/YYYY',
        ),
        "dayfirst": (
            "{n} date(s) start with a number above 12, so they are day first (DD/MM/YYYY), "
            "which cis-eval does not read because it is ambiguous with US dates",
            "US dates (MM/DD/YYYY) or ISO dates (YYYY-MM-DD): convert this column",
        ),
    }
    if fmt == "auto" and "us" not in kinds:
        # no date in the column has a day above 12 in second place: nothing says US
        messages["either"] = (
            "{n} date(s) are ambiguous: every one could be month first (US, MM/DD/YYYY) "
            "or day first (DD/MM/YYYY)",
            f'dates = "US" in the [{where.table}] section if they are month first, or ISO '
            "dates (YYYY-MM-DD)",
        )
    for kind, (message, expected) in messages.items():
        bad = [i for i, (_, k) in enumerate(parsed) if k == kind]
        if not bad:
            continue
        mask = np.isin(codes, bad)
        rows, n = _rows_of(s.index, mask, weights)
        example = sorted(uniques[i] for i in bad)[:2]
        problems.append(
            Problem(
                where.source,
                column,
                rows,
                n,
                message.replace("{n}", f"{n:,}") + f" (e.g. {', '.join(map(_shown, example))})",
                expected,
            )
        )
    values = [iso if kind not in messages else None for iso, kind in parsed]
    return _from_codes(codes, values, s.index)


def _grade(text: str) -> str | None:
    m = _GRADE.search(text)
    if m:
        return str(int(m[1]))
    words = text.casefold().split()
    for w in words:
        if w.rstrip(".") in _ORDINALS:
            return str(_ORDINALS[w.rstrip(".")])
    return None


def _percent(text: str) -> str | None:
    m = _PERCENT.match(text.replace(",", "."))
    if m:
        return f"{float(m[1]) / 100:.10g}"
    return text


def _recode_values(
    s: pd.Series,
    col: Column,
    user: Mapping[str, str],
    words: Mapping[str, str] | None,
    where: _Where,
    column: str,
    problems: list[Problem],
    weights: np.ndarray | None = None,
) -> pd.Series:
    """Recode one column: the user's wordings, the shipped ones, then the column's kind.

    ``weights`` (one per row of ``s``) count each row as that many rows: ``s`` then holds
    a log's distinct values, and messages count the log's rows.
    """
    grade = col.name == "grade"
    share = col.kind == "float" and col.maximum == 1
    if not user and words is None and not grade and not share:
        return s.astype("string")  # identifiers and plain numbers are left as written
    codes, uniques = _by_value(s)
    user_keys = {wording_key(k): v for k, v in user.items()}
    values: list[str | None] = []
    unknown: list[int] = []
    for i, v in enumerate(uniques):
        key = wording_key(v) if (user_keys or words is not None) else v
        if v in user or key in user_keys:
            values.append(user.get(v, user_keys.get(key)) or None)
        elif words is not None:
            values.append(words.get(key, v))
            if key not in words:
                unknown.append(i)
        elif grade:
            g = _grade(v)
            values.append(v if g is None else g)
            if g is None:
                unknown.append(i)
        else:
            values.append(_percent(v) if share else v)
    if unknown:
        counts = np.bincount(
            codes[codes >= 0],
            weights=None if weights is None else np.asarray(weights)[codes >= 0],
            minlength=len(uniques),
        )
        vocab = {**(words or {}), **user_keys}
        allowed = _allowed_codes(col)
        for i in sorted(unknown, key=lambda u: -counts[u]):
            v = uniques[i]
            rows, n = _rows_of(s.index, codes == i, weights)
            near = difflib.get_close_matches(wording_key(v), list(vocab), n=6, cutoff=0.6)
            # one suggestion per contract value: two wordings of one code say the same
            near = list({vocab[w]: w for w in reversed(near)}.values())[::-1][:2]
            hint = (
                "; did you mean " + " or ".join(f"{_shown(w)} ({vocab[w]})" for w in near) + "?"
                if near
                else ""
            )
            shown = "a value" if col.name in _PRIVATE else _shown(v)
            if grade:
                expected = "a grade such as 8, '8th Grade' or 'Grade 8'"
            else:
                expected = (
                    f"a known wording: add it under [{where.table}.values.{col.name}] in the "
                    "mapping file as one of " + ", ".join(allowed)
                )
            problems.append(
                Problem(
                    where.source,
                    column,
                    rows,
                    n,
                    f"{shown} is not a known wording{hint}",
                    expected,
                )
            )
    return _from_codes(codes, values, s.index)


def _recode_column(
    s: pd.Series,
    spec: TableMapping,
    theirs: str,
    ours: str,
    words_all: Mapping[str, Mapping[str, str]],
    where: _Where,
    problems: list[Problem],
    weights: np.ndarray | None = None,
) -> pd.Series:
    """One column's cells (trimmed text, empty as NA) recoded to the contract's values."""
    col = COLUMNS[spec.table][ours]
    label = f"{theirs} ({ours})" if theirs != ours else ours
    user = spec.values.get(ours, {})
    if col.kind == "date":
        if user:
            s = s.map(lambda v, u=user: u.get(v, v) if isinstance(v, str) else v)
        return _recode_dates(s, spec.dates, where, label, problems, weights)
    vocab: Mapping[str, str] | None = None
    if ours in _VOCABULARY:
        vocab = dict(words_all.get(_VOCABULARY[ours], {}))
        vocab.update({wording_key(c): c for c in _allowed_codes(col)})
    elif col.kind == "binary":
        vocab = dict(words_all.get("binary", {}))
        vocab.update({"0": "0", "1": "1"})
    return _recode_values(s, col, user, vocab, where, label, problems, weights)


def needs_recoding(spec: TableMapping, ours: str) -> bool:
    """Whether a column's cells can change when recoded (not identifiers or plain numbers)."""
    col = COLUMNS[spec.table][ours]
    return bool(
        spec.values.get(ours)
        or col.kind in ("date", "binary")
        or ours in _VOCABULARY
        or ours == "grade"
        or (col.kind == "float" and col.maximum == 1)
    )


def mapped_columns(
    columns: Sequence[str], spec: TableMapping, source: str
) -> tuple[dict[str, str], list[Problem], list[str]]:
    """Which of a file's columns is which contract column, as :func:`apply_mapping` decides.

    Returns the contract column -> the file's column, the problems (columns named in the
    mapping but not in the file) and the notes (columns left out).
    """
    contract = COLUMNS[spec.table]
    problems = [
        Problem(
            source,
            c,
            (),
            0,
            "column named in the mapping file is not in the header row"
            + _suggest(c, map(str, columns)),
            "one of the sheet's columns: " + ", ".join(map(_shown, columns)),
        )
        for c in spec.columns
        if c not in columns
    ]
    renames = {k: v for k, v in spec.columns.items() if v and k in columns}
    keep = {c: c for c in columns if c in contract and c not in renames.values()}
    keep.update(renames)
    left_out = [c for c in columns if c not in keep]
    notes = (
        [
            f"{source}: left out {len(left_out)} column(s) the mapping does not use: "
            + ", ".join(map(_shown, left_out))
        ]
        if left_out
        else []
    )
    return {ours: theirs for theirs, ours in keep.items()}, problems, notes


def recode_distinct(
    values: Sequence[str],
    counts: Sequence[int],
    spec: TableMapping,
    theirs: str,
    ours: str,
    source: str,
    *,
    shipped: bool = True,
) -> tuple[list[str | None], list[tuple[Problem, list[str]]]]:
    """Recode a large log's distinct values of one column, as :func:`apply_mapping` would.

    Parameters
    ----------
    values : sequence of str
        The column's distinct non-empty cells, trimmed.
    counts : sequence of int
        How many rows hold each value (messages count rows).
    spec : TableMapping
        The table's mapping.
    theirs, ours : str
        The file's column name and the contract's.
    source : str
        The table, file and sheet, for messages.
    shipped : bool, default True
        Use the shipped common wordings besides the mapping's own.

    Returns
    -------
    recoded : list of str or None
        The contract's value of each distinct value (``None``: empty, or not readable).
    problems : list of (Problem, list of str)
        Each error with all the distinct values it is about; its ``rows`` are left for
        the caller to find in the file.
    """
    where = _Where(spec.table, source, None)
    s = pd.Series(list(values), dtype="string")
    found: list[Problem] = []
    words_all = shipped_wordings() if shipped else {}
    out = _recode_column(
        s, spec, theirs, ours, words_all, where, found, np.asarray(counts, dtype=np.int64)
    )
    # Rows are positions among the distinct values here: the caller finds the file's rows.
    fixed = [(replace(p, rows=()), [str(values[int(i)]) for i in p.rows]) for p in found]
    return [None if pd.isna(v) else str(v) for v in out], fixed


def apply_mapping(
    frame: pd.DataFrame,
    spec: TableMapping,
    *,
    shipped: bool = True,
) -> tuple[pd.DataFrame, list[Problem], list[str]]:
    """Rename and recode one table read from an export.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as read by :func:`cis_eval.io.read_sheet`: cells as text, the index the
        spreadsheet row numbers, ``attrs`` naming the file, sheet and header row.
    spec : TableMapping
        How to map it.
    shipped : bool, default True
        Use the shipped common wordings besides the mapping's own.

    Returns
    -------
    frame : pandas.DataFrame
        Contract columns only, cells as text, a fresh 0-based index; ``attrs["source"]``
        names the table, file and sheet.
    problems : list of Problem
        Errors, each naming the table, file, sheet, column and spreadsheet rows.
    notes : list of str
        Columns left out, title rows skipped.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"Type": ["College & Career", "1:1 tutoring"]}, index=[3, 4])
    >>> spec = TableMapping("contacts", "log.csv", columns={"Type": "service_type"},
    ...                     values={"service_type": {"1:1 tutoring": "academics"}})
    >>> out, problems, _ = apply_mapping(raw, spec)
    >>> out["service_type"].tolist(), problems
    (['college_career', 'academics'], [])
    """
    where = _Where(spec.table, str(frame.attrs.get("source", spec.file)), frame.attrs.get("sheet"))
    contract = COLUMNS[spec.table]
    problems: list[Problem] = []
    notes: list[str] = []
    missing = [c for c in spec.columns if c not in frame.columns]
    for c in missing:
        problems.append(
            Problem(
                where.source,
                c,
                (),
                0,
                "column named in the mapping file is not in the header row"
                + _suggest(c, map(str, frame.columns)),
                "one of the sheet's columns: " + ", ".join(map(_shown, frame.columns)),
            )
        )
    renames = {k: v for k, v in spec.columns.items() if v and k in frame.columns}
    # Columns already named as the contract names them are kept without a mapping line.
    keep = {c: c for c in frame.columns if c in contract and c not in renames.values()}
    keep.update(renames)
    left_out = [c for c in frame.columns if c not in keep]
    if left_out:
        notes.append(
            f"{where.source}: left out {len(left_out)} column(s) the mapping does not use: "
            + ", ".join(map(_shown, left_out))
        )
    out = pd.DataFrame(index=frame.index)
    renamed: dict[str, str] = {}
    words_all = shipped_wordings() if shipped else {}
    for theirs, ours in keep.items():
        if theirs != ours:
            renamed[ours] = theirs
        s = frame[theirs].astype("string").str.strip()
        s = s.mask(s.eq(""))
        out[ours] = _recode_column(s, spec, theirs, ours, words_all, where, problems)
    out.attrs["source"] = where.source
    out.attrs["table"] = spec.table  # a program roster is checked against its own contract
    out.attrs["renamed"] = renamed
    out.attrs["header_row"] = int(frame.attrs.get("header_row", 1))
    # blank rows read_sheet dropped: validation counts them back to name spreadsheet rows
    out.attrs["row_gaps"] = tuple(frame.attrs.get("row_gaps", ()))
    if frame.attrs.get("skipped"):
        notes.append(
            f"{where.source}: column names found in row {out.attrs['header_row']} "
            f"({frame.attrs.get('header_how', 'detected')}); skipped the rows above: "
            f"{frame.attrs['skipped']}"
        )
    return out.reset_index(drop=True), problems, notes


_DIGITS = re.compile(r"\D")  # removes all but the digits


def school_warnings(tables: Mapping[str, pd.DataFrame]) -> list[Problem]:
    """Warn about school names that are probably typos of another school's name.

    A school named in the roster (or contacts) but not in the coordinators table, or one
    with very few students whose name is close to a larger school's, is reported with
    the name it probably means. Nothing is changed: the user decides, with a recode.
    """
    roster = tables.get("roster", tables.get("students"))
    staff = tables.get("coordinators")
    out: list[Problem] = []
    if roster is None or "school_id" not in roster.columns:
        return out
    counts = roster["school_id"].dropna().value_counts()
    known = (
        set(staff["school_id"].dropna()) if staff is not None and "school_id" in staff else set()
    )
    names = [str(o) for o in counts.index]
    larger = -counts.to_numpy()  # value_counts puts the largest school first
    for name, n in counts.items():
        # The schools more than twice as large are a prefix of ``names``: a network of
        # thousands of schools is not compared pair by pair.
        others = names[: int(np.searchsorted(larger, -2 * n, side="left"))]
        seen = set(others)
        others += [k for k in known if k != name and k not in seen]
        # Names that differ in their numbers are different schools ("SCH005800" and
        # "SCH008080", "PS 121" and "PS 112"): a typo is in the words.
        digits = _DIGITS.sub("", str(name))
        near = [
            o
            for o in difflib.get_close_matches(str(name), others, n=5, cutoff=0.8)
            if _DIGITS.sub("", o) == digits
        ][:1]
        if (known and name not in known) or near:
            mask = roster["school_id"].eq(str(name)).fillna(False).to_numpy()
            rows, k = _rows_of(
                pd.RangeIndex(len(roster)) + roster.attrs.get("header_row", 1) + 1, mask
            )
            hint = f"; did you mean {_shown(near[0])}?" if near else ""
            where = (
                "not in the coordinators table"
                if known and name not in known
                else "close to a larger school's name"
            )
            out.append(
                Problem(
                    roster.attrs.get("source", "roster"),
                    "school_id",
                    rows,
                    k,
                    f"school {_shown(name)} ({int(n)} student(s)) is {where}{hint}",
                    "one name per school: if it is a typo, recode it under "
                    "[roster.values.school_id] in the mapping file",
                    "warning",
                )
            )
    return out


# ----------------------------------------------------------------------------- drafting


def guess_column(header: str) -> str | None:
    """The contract column an export header probably means, or ``None``."""
    key = wording_key(header)
    for col, words in column_wordings().items():
        if key in words:
            return col
    # a column already named as the contract names it
    exact = {wording_key(c): c for cols in COLUMNS.values() for c in cols}
    return exact.get(key)


def guess_table(columns: Iterable[str]) -> str | None:
    """The contract table a sheet probably holds, from its guessed columns."""
    guessed = {guess_column(c) for c in columns} - {None}
    if {"date", "student_id"} <= guessed or {"service_type", "minutes"} & guessed:
        return "contacts"
    if {"fte", "level2_time_share", "caseload"} & guessed:
        return "coordinators"
    if {"student_id", "school_id"} <= guessed:
        # a trial's students table has the assignment; a program roster does not
        return "students" if "treatment" in guessed else "roster"
    if {"coordinator_id", "school_id"} <= guessed:
        return "coordinators"
    return None


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def draft_mapping(sheets: Sequence[pd.DataFrame], *, files: Mapping[str, str] | None = None) -> str:
    """Draft a mapping file from the tables of an export, with comments for the user.

    Parameters
    ----------
    sheets : sequence of pandas.DataFrame
        Tables as read by :func:`cis_eval.io.read_sheet` (``attrs`` name the file, sheet
        and header row).
    files : mapping of str to str, optional
        File name -> the path to write in the mapping (relative to the mapping file).

    Returns
    -------
    str
        TOML text. Recognised headers are mapped; wordings the shipped vocabulary knows
        are listed as comments; unknown wordings and likely school-name typos are
        commented lines for the user to complete.
    """
    files = dict(files or {})
    lines = [
        "# cis-eval mapping file: how to read this affiliate's export.",
        "# Drafted by `cis-eval map --init` from the export itself: check every section.",
        "# Then: cis-eval map --check THIS_FILE",
        "#",
        '# [TABLE]            file, sheet, header_row ("auto" or the row number) and dates',
        '#                    ("US" = MM/DD/YYYY, "ISO" = YYYY-MM-DD, "auto" = either when clear)',
        '# [TABLE.columns]    "your column" = "contract column"  ("" leaves a column out)',
        '# [TABLE.values.COL] "your wording" = "contract value"  (adds to the shipped wordings)',
        "",
    ]
    used: set[str] = set()
    words_all = shipped_wordings()
    for frame in sheets:
        file = str(frame.attrs.get("source", "export"))
        sheet = frame.attrs.get("sheet")
        table = guess_table(map(str, frame.columns))
        where = f"{file}" + (f", sheet {sheet!r}" if sheet else "")
        if table is None or table in used:
            lines += [
                f"# {where}: not recognised as a table of the contract "
                + ("(a second sheet like an earlier one)" if table else "")
                + "; copy a section below to use it.",
                "",
            ]
            continue
        used.add(table)
        contract = COLUMNS[table]
        lines += [f"# ---- {table}: {where}, {len(frame):,} rows", f"[{table}]"]
        lines.append(f"file = {_toml_str(files.get(file, file))}")
        if sheet:
            lines.append(f"sheet = {_toml_str(str(sheet))}")
        header = int(frame.attrs.get("header_row", 1))
        skipped = frame.attrs.get("skipped")
        lines.append(
            'header_row = "auto"  # '
            + (f"found in row {header}, below {skipped}" if skipped else f"found in row {header}")
        )
        date_cols: list[str] = []
        lines += ["", f"[{table}.columns]"]
        taken: set[str] = set()
        mapped: dict[str, str] = {}
        for c in map(str, frame.columns):
            g = guess_column(c)
            if g is not None and g in contract and g not in taken:
                taken.add(g)
                mapped[c] = g
                note = ""
                if contract[g].kind == "date":
                    date_cols.append(c)
                lines.append(f"{_toml_str(c)} = {_toml_str(g)}{note}")
            else:
                lines.append(
                    f'{_toml_str(c)} = ""  # not used; or one of: '
                    + ", ".join(n for n in contract if n not in taken)
                )
        required = [c.name for c in contract.values() if c.required and c.name not in taken]
        if required:
            lines.append("# still needed: " + ", ".join(required))
        if date_cols:
            kinds: set[str] = set()
            for c in date_cols:
                for v in frame[c].dropna().unique()[:5000]:
                    kinds.add(_parse_date(str(v), "auto")[1])
            dates = "US" if "us" in kinds else "auto"
            said = {
                "iso": "ISO (YYYY-MM-DD)",
                "us": "US (MM/DD/YYYY with a day above 12)",
                "either": "MM/DD or DD/MM (both numbers at most 12)",
                "dayfirst": "DD/MM/YYYY (cis-eval does not read these)",
                "two_digit_year": "two-digit years",
            }
            seen = [said.get(k, "other text") for k in sorted(kinds)]
            lines.insert(
                lines.index(f"[{table}.columns]") - 1,
                f'dates = "{dates}"  # dates seen: ' + "; ".join(dict.fromkeys(seen)),
            )
        for theirs, ours in mapped.items():
            lines += _draft_values(frame[theirs], table, contract[ours], words_all)
        lines.append("")
    if "contacts" not in used:
        lines.append("# no sheet looked like a contacts log (date, student, service type, minutes)")
    return "\n".join(lines).rstrip("\n") + "\n"


def _rows_word(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _draft_values(
    column: pd.Series, table: str, col: Column, words_all: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """The commented ``[TABLE.values.COLUMN]`` section of a drafted mapping file."""
    values = column.dropna().astype(str).str.strip()
    counts = values[values.ne("")].value_counts()
    section = f"[{table}.values.{col.name}]"
    lines: list[str] = []
    if col.name in _VOCABULARY or col.kind == "binary":
        allowed = _allowed_codes(col)
        vocab = dict(words_all[_VOCABULARY.get(col.name, "binary")])
        vocab.update({wording_key(c): c for c in allowed})
        lines += ["", section, "# allowed values: " + ", ".join(allowed)]
        for v, n in counts.items():
            key = wording_key(str(v))
            if key in vocab:
                lines.append(
                    f"# {_toml_str(str(v))} = {_toml_str(vocab[key])}  "
                    f"# {_rows_word(int(n))}; a shipped wording"
                )
                continue
            near = difflib.get_close_matches(key, list(vocab), n=1, cutoff=0.6)
            hint = f", like {_shown(near[0])} ({vocab[near[0]]})" if near else ""
            lines.append(
                f'# {_toml_str(str(v))} = ""  # {_rows_word(int(n))}; NOT KNOWN{hint}: '
                "remove the leading '#' and choose an allowed value"
            )
    elif col.name == "school_id":
        lines += ["", section]
        for v, n in counts.items():
            bigger = [str(o) for o in counts.index if o != v and counts[o] > 2 * n]
            near = difflib.get_close_matches(str(v), bigger, n=1, cutoff=0.8)
            if near:
                lines.append(
                    f"# {_toml_str(str(v))} = {_toml_str(near[0])}  # {_rows_word(int(n))}; "
                    f"a typo of {near[0]!r} ({_rows_word(int(counts[near[0]]))})?"
                )
        if lines[-1] == section:
            lines.append("# no school name looks like a typo of another")
    return lines


def raise_for_problems(problems: Sequence[Problem]) -> None:
    """Raise :class:`DataValidationError` for the errors among ``problems``, if any."""
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DataValidationError(errors)
