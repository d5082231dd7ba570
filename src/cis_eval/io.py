"""Reading and writing files: the only module that touches the file system.

Readers return plain DataFrames with every cell as text (so validation can point at the
exact cell that is wrong) and remember the file name in ``DataFrame.attrs["source"]``.
Writers are atomic: they write a temporary file beside the target and rename it, so an
interrupted run never leaves a half-written output, and they never touch their inputs.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from .errors import CisEvalError, DataValidationError, OptionError, OptionTypeError, Problem
from .present.safety import neutralise_formulas

__all__ = [
    "TABLE_NAMES",
    "LogScan",
    "atomic_folder",
    "atomic_write",
    "duckdb_session",
    "file_size",
    "load",
    "load_export",
    "load_trial",
    "read_column_map",
    "read_mapping",
    "read_sheet",
    "read_table",
    "scan_export_log",
    "scan_log",
    "sheet_names",
    "unreadable",
    "write_figure",
    "write_new_text",
    "write_table",
    "write_text",
    "write_trial",
    "write_workbook",
]

TABLE_NAMES = ("students", "contacts", "coordinators")
"""The three tables of the data contract, as file stems in a trial's folder."""

READERS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".xlsx": "excel",
    ".xls": "excel",
    ".xlsm": "excel",
    ".parquet": "parquet",
    ".pq": "parquet",
}
NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "."]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place on success.

    Parameters
    ----------
    path : path-like
        Final location. Its folder is created if needed.
    mode : {"w", "wb"}
        Text or binary.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        opened = (
            os.fdopen(fd, mode)
            if "b" in mode
            else os.fdopen(fd, mode, encoding="utf-8", newline="")
        )
        with opened as fh:
            yield fh
        # mkstemp creates 0600 files; give the output the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            # a full disk fails in write() with no file name: name the output for the message
            exc.filename = str(target)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write text atomically (UTF-8, Unix line endings) and return the path."""
    with atomic_write(path) as fh:
        fh.write(text)
    return Path(path)


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    # A spreadsheet runs text such as '=HYPERLINK(...)' as a formula (CSV injection): such
    # cells get a leading quote; numbers, negative ones included, stay numbers.
    out = neutralise_formulas(frame)
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a DataFrame atomically as CSV, Parquet or Excel, chosen by the extension.

    CSV floats are written with ``%.10g`` so files are byte-for-byte reproducible. In CSV
    and Excel files a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return gets a leading ``'`` (OWASP's rule against formula injection) unless it
    is a formatted number; Parquet files keep the text exactly.
    """
    target = Path(path)
    kind = READERS.get(target.suffix.lower())
    if kind == "csv":
        with atomic_write(target) as fh:
            _csv_ready(frame).to_csv(fh, index=False, float_format="%.10g", lineterminator="\n")
    elif kind == "parquet":
        with atomic_write(target, "wb") as fh:
            frame.to_parquet(fh, index=False)
    elif kind == "excel":
        with atomic_write(target, "wb") as fh:
            _csv_ready(frame).to_excel(fh, index=False)
    else:
        raise CisEvalError(
            f"{target.name}: cannot write '{target.suffix}' files; use .csv, .parquet or .xlsx"
        )
    return target


_SHEET_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", " "))


def _sheet_title(name: str, used: set[str]) -> str:
    """A valid, unique Excel sheet title: no brackets, colons, *, ?, slashes; 31 characters."""
    base = " ".join(str(name).translate(_SHEET_FORBIDDEN).split()).strip("'")[:31] or "Sheet"
    title, i = base, 2
    while title.lower() in used:
        suffix = f" ({i})"
        title, i = base[: 31 - len(suffix)] + suffix, i + 1
    used.add(title.lower())
    return title


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array in a cell is not "missing"
        return False


def write_workbook(
    path: str | os.PathLike[str],
    sheets: Sequence[tuple[str, Sequence[str], pd.DataFrame, Sequence[str]]],
) -> Path:
    """Write several tables as one Excel workbook, one sheet each, atomically.

    Parameters
    ----------
    path : path-like
        The ``.xlsx`` file to write.
    sheets : sequence of (name, lines above, table, lines below)
        Per sheet: its name (made a valid, unique Excel sheet title), lines of text
        written above the table (a title, a confidentiality banner), the table (its
        header row and rows) and lines below it (notes).

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Every text cell, column name and line goes through
    :func:`cis_eval.present.safety.neutralise_formula`: text a spreadsheet would run as
    a formula (starting with ``=``, ``+``, ``-``, ``@``) is written as text.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from .present.safety import neutralise_formula

    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        raise CisEvalError(f"{target.name}: a workbook is written as .xlsx")
    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for name, above, table, below in sheets:
        ws = wb.create_sheet(_sheet_title(name, used))
        for line in above:
            ws.append([neutralise_formula(line)])
            ws.cell(ws.max_row, 1).font = Font(bold=True)
        safe = neutralise_formulas(table)
        ws.append([neutralise_formula(str(c)) for c in safe.columns])
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)
        for row in safe.itertuples(index=False):
            ws.append([None if _missing(v) else v for v in row])
        if below:
            ws.append([])
        for line in below:
            ws.append([neutralise_formula(line)])
        for j, col in enumerate(safe.columns, start=1):
            width = max([len(str(col)), *(len(str(v)) for v in safe.iloc[:, j - 1])], default=8)
            ws.column_dimensions[ws.cell(1, j).column_letter].width = min(max(width + 2, 8), 60)
    with atomic_write(target, "wb") as fh:
        wb.save(fh)
    return target


def write_trial(trial: Any, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the three tables of a simulated trial as CSV files in ``folder``.

    Parameters
    ----------
    trial : SimulatedTrial
        Output of :func:`cis_eval.simulate`.
    folder : path-like
        Destination folder (created if needed).

    Returns
    -------
    dict
        Table name -> path written.
    """
    folder = Path(folder)
    return {name: write_table(getattr(trial, name), folder / f"{name}.csv") for name in TABLE_NAMES}


def write_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Write a matplotlib figure atomically as PNG or SVG, chosen by the extension.

    The file carries no software name or date, so it changes only when the figure does
    (committed figures and executed pages give clean diffs).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (left open; close it yourself if it came from pyplot).
    path : path-like
        A ``.png`` or ``.svg`` file.
    dpi : int, default 150
        Resolution of PNG files.

    Returns
    -------
    pathlib.Path
    """
    import matplotlib as mpl

    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise CisEvalError(f"{target.name}: figures are written as .png or .svg files")
    meta: dict[str, Any] = {"Software": None} if fmt == "png" else {"Date": None}
    with atomic_write(target, "wb") as fh, mpl.rc_context({"svg.hashsalt": "cis_eval"}):
        fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta)
    return target


def load_trial(
    folder: str | os.PathLike[str],
    *,
    column_map: Mapping[str, Mapping[str, str]] | None = None,
    school_year: tuple[str, str] | None = None,
    decimal: str = ".",
    thousands: str | None = None,
    encoding: str | None = None,
) -> Any:
    """Read and validate a trial's tables from one folder.

    Reads ``students``, ``contacts`` and ``coordinators`` (each ``.csv``, ``.xlsx`` or
    ``.parquet``; only ``students`` is required) and checks them together against the
    data contract.

    Parameters
    ----------
    folder : path-like
        Folder holding the files, e.g. ``data/synthetic``.
    column_map : mapping, optional
        Per table, the export's column names -> the contract's names.
    school_year : (str, str), optional
        First and last day of the school year, for checking contact dates.
    decimal, thousands, encoding : optional
        How the files write numbers and text; see :func:`load`.

    Returns
    -------
    ValidationReport
        The typed tables (``.students``, ``.contacts``, ``.coordinators``) and any
        warnings.

    Raises
    ------
    DataValidationError
        If the folder has no students table, a file cannot be read, or the data break the
        contract.
    OptionError
        If ``column_map``, ``decimal``, ``thousands`` or ``encoding`` is not valid.

    Examples
    --------
    >>> import tempfile
    >>> import cis_eval as ce
    >>> folder = tempfile.mkdtemp()
    >>> _ = ce.write_trial(ce.simulate(seed=1, n_students=200, n_schools=4), folder)
    >>> len(ce.load_trial(folder).students)
    200
    """
    from .data.validate import validate

    maps = _check_table_maps(column_map)
    base = Path(folder)
    frames: dict[str, pd.DataFrame | None] = {}
    for name in TABLE_NAMES:
        found = [base / f"{name}{ext}" for ext in (".csv", ".xlsx", ".parquet")]
        path = next((f for f in found if f.is_file()), None)
        frames[name] = (
            load(
                path,
                column_map=maps.get(name),
                decimal=decimal,
                thousands=thousands,
                encoding=encoding,
            )
            if path is not None
            else None
        )
    if frames["students"] is None:
        raise DataValidationError(
            [
                Problem(
                    base.name or str(base),
                    None,
                    (),
                    0,
                    "no students table in this folder",
                    "a students.csv, students.xlsx or students.parquet file",
                )
            ]
        )
    return validate(
        frames["students"], frames["contacts"], frames["coordinators"], school_year=school_year
    )


# ----------------------------------------------------------------------------- reading
#
# Every reader failure is a DataValidationError naming the file (the command line exits 2
# with it), never a parser's own exception: a user must see which file is wrong and what
# to do, not a traceback. Messages never repeat a cell of the file; header cells are named
# only when the first row is recognisably a header (see _header_is_plausible).

MAX_NAME = 60
"""Longest column or sheet name shown in a message; longer ones are cut with '...'."""
MAX_NAMES_LISTED = 12
"""Most column names listed in one message."""
MAX_COLUMN_MAP_BYTES = 1_000_000
"""A column-map file larger than this is refused (a real one is a few kilobytes)."""

_MAGIC = (
    (b"PK\x03\x04", "xlsx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
    (b"PAR1", "parquet"),
)
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_DELIMITERS = (",", ";", "\t", "|")


def _short(text: object, limit: int = MAX_NAME) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _names(names: Sequence[object], limit: int = MAX_NAMES_LISTED) -> str:
    """A bounded, quoted list of names: at most ``limit``, then how many more."""
    shown = ", ".join(repr(_short(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def _column_letter(position: int) -> str:
    """Spreadsheet letters of a 1-based column position (1 -> A, 27 -> AA)."""
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _fail(
    source: str, message: str, expected: str, rows: Sequence[int] = (), n: int = 0
) -> DataValidationError:
    return DataValidationError([Problem(source, None, tuple(rows), n, message, expected)])


def _contract_names() -> frozenset[str]:
    from .schema import COLUMNS

    return frozenset(c for table in COLUMNS.values() for c in table)


def _header_is_plausible(columns: Sequence[str], known: frozenset[str]) -> bool:
    """Whether the first row is recognisably a header: one of its cells is a known name.

    A file without a header row has a student's data in its first row; those cells must
    never be shown as if they were column names.
    """
    return any(c in known for c in columns)


def check_column_map(value: object, what: str = "column_map") -> dict[str, str]:
    """Check one table's column map and return it as a plain dict of stripped names.

    Parameters
    ----------
    value : object
        The map: the file's column names -> the contract's names.
    what : str, default "column_map"
        How to call the map in messages.

    Returns
    -------
    dict of str to str

    Raises
    ------
    OptionTypeError
        If the map is not a mapping of text to text (e.g. a nested table).
    OptionError
        If a name is empty or two columns are mapped onto one name.
    """
    if not isinstance(value, Mapping):
        raise OptionTypeError(
            f"{what} must map the file's column names to the contract's names, got "
            f"{type(value).__name__}"
        )
    bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        k = bad[0]
        raise OptionTypeError(
            f"{what}: {len(bad):,} entr{'y is' if len(bad) == 1 else 'ies are'} not text -> "
            f"text, e.g. {_short(repr(k), 40)} -> {type(value[k]).__name__}; map each of the "
            "file's column names to one contract column name"
        )
    out = {str(k).strip(): str(v).strip() for k, v in value.items()}
    if len(out) < len(value) or any(not k or not v for k, v in out.items()):
        raise OptionError(f"{what}: column names must be non-empty and distinct")
    sources: dict[str, list[str]] = {}
    for k, v in out.items():
        sources.setdefault(v, []).append(k)
    clashes = [(v, ks) for v, ks in sources.items() if len(ks) > 1]
    if clashes:
        v, ks = clashes[0]
        more = f" (and {len(clashes) - 1:,} more such name(s))" if len(clashes) > 1 else ""
        raise OptionError(
            f"{what} maps {_names(ks, 3)} onto the same name {_short(v)!r}{more}; map one "
            "column of the file onto each contract column"
        )
    return out


def _check_table_maps(value: object, what: str = "column_map") -> dict[str, dict[str, str]]:
    """Check a per-table column map ``{table: {file name: contract name}}``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise OptionTypeError(
            f"{what} must map table names (students, contacts, coordinators) to column maps, "
            f"got {type(value).__name__}"
        )
    unknown = [k for k in value if k not in TABLE_NAMES]
    if unknown:
        raise OptionError(
            f"{what}: unknown table(s) {_names([str(k) for k in unknown], 3)}; expected "
            + ", ".join(TABLE_NAMES)
        )
    return {str(k): check_column_map(v, f"{what}[{k!r}]") for k, v in value.items()}


def read_column_map(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Read a column-map file: JSON or TOML ``{table: {file's name: contract's name}}``.

    Parameters
    ----------
    path : path-like
        A ``.json`` or ``.toml`` file with sections ``students``, ``contacts`` and/or
        ``coordinators``, each a flat table of names.

    Returns
    -------
    dict
        Table name -> column map.

    Raises
    ------
    DataValidationError
        If the file is missing, too large, not UTF-8, cannot be parsed, or is not a flat
        map per table (e.g. nested, or two columns mapped onto one name). The message names
        the file and never repeats more than a few of its names.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "map.json"
    >>> _ = p.write_text('{"students": {"ID": "student_id"}}')
    >>> read_column_map(p)
    {'students': {'ID': 'student_id'}}
    """
    import json
    import tomllib

    p = Path(path)
    name = p.name
    expected = (
        "a JSON or TOML file with sections 'students', 'contacts' or 'coordinators', each "
        "mapping the file's column names to the contract's names"
    )
    if not p.is_file():
        raise _fail(name, "column map file not found", "an existing file")
    if p.stat().st_size > MAX_COLUMN_MAP_BYTES:
        raise _fail(name, "the column map is larger than 1 MB", expected)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(name, "the column map is not UTF-8 text", expected) from None
    toml = p.suffix.lower() == ".toml"
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except RecursionError:
        raise _fail(name, "the column map is nested too deeply", expected) from None
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise _fail(
            name,
            f"the column map could not be parsed as {'TOML' if toml else 'JSON'} "
            f"({_short(exc, 120)})",
            expected,
        ) from None
    try:
        return _check_table_maps(data, "the column map")
    except OptionError as exc:
        raise _fail(name, _short(exc, 400), expected) from None


def _decode(raw: bytes, name: str, encoding: str | None, *, declare: bool = True) -> str:
    """The text of a CSV file: UTF-8 (or UTF-16/32 with a byte-order mark), or ``encoding``.

    ``declare`` says whether the caller can be given an encoding (``encoding=``,
    ``--encoding``); the message of a file that is not UTF-8 suggests it only then.
    """
    if encoding is not None:
        try:
            return raw.decode(encoding).removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise _fail(
                name,
                f"is not {encoding} text (line {line:,} has bytes that are not)",
                "text in the encoding given with encoding="
                if declare
                else "text in the encoding the mapping file names",
            ) from None
    enc = next((e for bom, e in _BOMS if raw.startswith(bom)), None)
    start = next((len(bom) for bom, e in _BOMS if raw.startswith(bom)), 0)
    head = raw[:4096]
    if enc is None and b"\x00" in head:
        # UTF-16 without a byte-order mark: every other byte of ASCII text is zero.
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
            enc = "utf-16-le"
        elif even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
            enc = "utf-16-be"
        else:
            raise _fail(
                name,
                "is not a text file (it holds binary data)",
                "a CSV text file (or a workbook or Parquet file with its own extension)",
            )
    try:
        text = raw[start:].decode(enc or "utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, start + exc.start) + 1
        raise _fail(
            name,
            f"is not {'UTF-8' if enc is None else enc.upper()} text (first at line {line:,})",
            "UTF-8 text: save it as 'CSV UTF-8', or give its encoding (encoding='cp1252', "
            "--encoding cp1252 on the command line, for a Windows or Latin-1 'CSV')"
            if declare
            else "UTF-8 text: save it as 'CSV UTF-8' (or as a workbook), or name its encoding "
            "in the mapping file (encoding = \"cp1252\" for a Windows or Latin-1 'CSV')",
        ) from None
    if "\x00" in text:
        raise _fail(name, "is not a text file (it holds binary data)", "a CSV text file")
    return text


def _sniff_delimiter(text: str, default: str) -> str:
    """The delimiter of the header line: the most frequent of , ; tab | outside quotes."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    bare = "".join(first.split('"')[0::2])  # drop quoted parts
    counts = {d: bare.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == default))
    return best if counts[best] > counts[default] else default


# A carriage return that ends no line: pandas and spreadsheets start a new row there.
_BARE_CR = re.compile(r"\r(?![\r\n])")


def _line_of(text: str, position: int) -> int:
    """1-based line number of a character position (lines end at line feeds)."""
    return text.count("\n", 0, position) + 1


def _bare_cr(name: str, line: int) -> DataValidationError:
    return _fail(
        name,
        "a carriage return (CR) stands inside a value that is not in quotes: a spreadsheet "
        "would split the row there",
        "each row on one line, and a value that holds a line break in double quotes (or "
        "without the line break)",
        [line],
        1,
    )


def _unsplittable(name: str, exc: Exception, line: int) -> DataValidationError:
    """A ``csv.Error`` as a message a user can act on."""
    import csv

    text = str(exc)
    if "new-line character" in text:
        return _bare_cr(name, line)
    if "field larger" in text:
        return _fail(
            name,
            f"a value is longer than {csv.field_size_limit():,} characters (a quote may be "
            "left open)",
            "values of ordinary length, each opening quote closed",
            [line],
            1,
        )
    return _fail(
        name,
        f"a line could not be split into fields ({_short(text, 80)})",
        "a valid CSV file",
        [line],
        1,
    )


def _ragged(
    text: str, sep: str, name: str, *, header: int | None = None, rows: bool = False
) -> tuple[list[int], int, int]:
    """Lines below the header whose number of fields differs from the header's.

    Parameters
    ----------
    text : str
        The decoded file.
    sep : str
        Its delimiter.
    name : str
        The file name, for messages.
    header : int, optional
        0-based position of the header row among the file's rows, blank rows included
        (rows above it, such as titles, are not checked); by default the first row that
        is not blank.
    rows : bool, default False
        Number the lines as spreadsheet rows (a line break inside quotes does not start
        a new one) instead of lines of text.

    Returns
    -------
    tuple
        The first few 1-based line (or row) numbers, how many such lines there are, and
        the header's number of fields. Blank lines are skipped, as the CSV reader skips
        them.

    Raises
    ------
    DataValidationError
        If a carriage return that ends no line stands outside quotes (pandas and
        spreadsheets would split the row there, shifting values into the wrong columns),
        or a line cannot be split into fields at all.
    """
    # Line endings: line feeds (with or without a carriage return before them), or, in a
    # file without any line feed, bare carriage returns (classic Mac OS), as pandas reads.
    cr_only = "\r" in text and "\n" not in text
    if '"' in text:
        return _ragged_quoted(text, sep, name, header=header, rows=rows, cr_only=cr_only)
    if not cr_only:
        bare = _BARE_CR.search(text)
        if bare:
            raise _bare_cr(name, _line_of(text, bare.start()))
    # No quotes: count separators per line with array operations (fast on large files).
    buf = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    newline = 13 if cr_only else 10
    ends = np.flatnonzero(buf == newline)
    if buf.size and buf[-1] != newline:
        ends = np.append(ends, buf.size)
    starts = np.concatenate(([0], ends[:-1] + 1))
    per_line = np.bincount(
        np.searchsorted(ends, np.flatnonzero(buf == ord(sep))), minlength=ends.size
    )[: ends.size]
    length = ends - starts
    cr = (length > 0) & (buf[np.maximum(ends - 1, 0)] == 13)
    blank = (length - cr) == 0
    content = np.flatnonzero(~blank)
    if header is None:
        if content.size == 0:
            return [], 0, 0
        header = int(content[0])
    if not 0 <= header < ends.size or blank[header]:
        return [], 0, 0
    below = content[content > header]
    expected = int(per_line[header])
    wrong = below[per_line[below] != expected]
    return [int(i) + 1 for i in wrong[:5]], int(wrong.size), expected + 1


def _ragged_quoted(
    text: str, sep: str, name: str, *, header: int | None, rows: bool, cr_only: bool
) -> tuple[list[int], int, int]:
    """:func:`_ragged` for a file with quotes, which may hold separators and line breaks."""
    import csv
    from io import StringIO

    # Split lines at line feeds only (a carriage return inside quotes is part of the
    # value, and one outside them is an error the csv module reports); a file without
    # line feeds is split at its carriage returns.
    reader = csv.reader(
        StringIO(text, newline="" if cr_only else "\n"), delimiter=sep, skipinitialspace=True
    )
    expected, n_bad, line, record = -1, 0, 1, 0
    bad: list[int] = []
    try:
        for fields in reader:
            blank = not fields or (len(fields) == 1 and not fields[0].strip())
            if record == header:
                expected = -1 if blank else len(fields)
            elif header is None and expected < 0 and not blank:
                expected = len(fields)
            elif expected >= 0 and not blank and len(fields) != expected:
                n_bad += 1
                if len(bad) < 5:
                    bad.append(record + 1 if rows else line)
            record += 1
            line = reader.line_num + 1
    except csv.Error as exc:
        where = record + 1 if rows else max(reader.line_num, 1)
        raise _unsplittable(name, exc, where) from None
    return bad, n_bad, max(expected, 0)


def _cell_text(value: Any, decimal: str = ".") -> Any:
    """A workbook or Parquet cell as the text a user typed (whole floats without '.0')."""
    import datetime

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and np.isnan(value):
        return None
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, float | np.floating):
        if float(value).is_integer():
            return str(int(value))
        return str(value).replace(".", decimal)
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _kind_by_content(raw: bytes) -> str | None:
    return next((kind for magic, kind in _MAGIC if raw.startswith(magic)), None)


def _read_csv(raw: bytes, name: str, default_sep: str, encoding: str | None) -> pd.DataFrame:
    import csv
    from io import StringIO

    text = _decode(raw, name, encoding)
    if not text.strip():
        raise _fail(name, "the file is empty", "a header row naming the columns, then the data")
    sep = _sniff_delimiter(text, default_sep)
    bad, n_bad, fields = _ragged(text, sep, name)
    if n_bad:
        raise _fail(
            name,
            f"{n_bad:,} line(s) have a different number of fields than the header row",
            f"{fields} fields on every line, as in the header (a {sep!r} inside a value must "
            "be quoted)",
            bad,
            n_bad,
        )
    header = next(
        csv.reader(StringIO(text.lstrip("\r\n"), newline=""), delimiter=sep, skipinitialspace=True)
    )
    frame = pd.read_csv(
        StringIO(text),
        sep=sep,
        header=0,
        index_col=False,
        dtype=str,
        keep_default_na=False,
        na_values=NA_VALUES,
        skipinitialspace=True,
    )
    if len(header) == frame.shape[1]:
        # pandas renames repeated names ('treatment.1'); keep the file's own, checked below
        frame.columns = pd.Index(
            [h if h.strip() else f"Unnamed: {i}" for i, h in enumerate(header)], dtype=object
        )
    return frame


# Workbook readers by content: legacy .xls through calamine (pandas deprecates xlrd).
_ENGINES: dict[str | None, Literal["openpyxl", "calamine"]] = {
    "xlsx": "openpyxl",
    "xls": "calamine",
}


_SAVE_AS = "an Excel workbook: open the file in Excel (or LibreOffice) and save it as .xlsx"


def _read_excel(path: Path, raw_head: bytes, sheet: str | int, decimal: str) -> pd.DataFrame:
    name = path.name
    content = _kind_by_content(raw_head)
    save_as = _SAVE_AS
    if content not in ("xlsx", "xls"):
        looks = "text (perhaps a CSV file with an Excel name)" if content is None else content
        raise _fail(name, f"is not an Excel workbook: it looks like {looks}", save_as)
    engine = _ENGINES[content]
    try:
        raw: pd.DataFrame = pd.read_excel(
            path, sheet_name=sheet, header=None, dtype=object, engine=engine
        )
    except (ValueError, IndexError) as exc:
        if "not found" in str(exc) or (isinstance(exc, IndexError) and isinstance(sheet, int)):
            raise _fail(
                name, f"has no sheet {_short(repr(sheet))}", "the name or position of a sheet"
            ) from None
        raise _damaged(name, engine, save_as) from None
    except ImportError:
        raise  # a broken installation, not a damaged file
    except Exception as exc:  # openpyxl, zipfile and calamine raise their own families
        raise _damaged(name, engine, save_as) from exc
    if raw.shape[0] == 0:
        raise _fail(name, "the sheet is empty", "a header row naming the columns, then the data")
    header = [_cell_text(v) for v in raw.iloc[0]]
    frame = raw.iloc[1:].reset_index(drop=True).map(lambda v: _cell_text(v, decimal))
    frame.columns = pd.Index(
        [
            h.strip() if h is not None and h.strip() else f"Unnamed: {i}"
            for i, h in enumerate(header)
        ],
        dtype=object,
    )
    return frame.astype("string")


def _damaged(name: str, engine: str, save_as: str) -> DataValidationError:
    kind = ".xlsx" if engine == "openpyxl" else ".xls"
    return _fail(
        name,
        f"could not be read as an Excel {kind} workbook: it is damaged, truncated or "
        "password-protected",
        save_as,
    )


def _read_parquet(path: Path, raw_head: bytes, decimal: str) -> pd.DataFrame:
    name = path.name
    if _kind_by_content(raw_head) != "parquet":
        raise _fail(name, "is not a Parquet file", "a Parquet file written by pandas or Arrow")
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own error family for damaged files
        raise _fail(
            name, "could not be read as Parquet: it is damaged or truncated", "a Parquet file"
        ) from exc
    frame = raw.astype(object).map(lambda v: _cell_text(v, decimal))
    frame.columns = pd.Index([str(c).strip() for c in raw.columns], dtype=object)
    return frame.astype("string")


def _read(
    path: str | os.PathLike[str],
    *,
    sheet: str | int,
    decimal: str,
    thousands: str | None,
    encoding: str | None,
    known: frozenset[str],
) -> pd.DataFrame:
    """Read a file as text cells; every failure is a DataValidationError naming the file."""
    import csv

    p = Path(path)
    name = p.name
    if not p.is_file():
        raise _fail(name, "file not found", "an existing file")
    kind = READERS.get(p.suffix.lower())
    if kind is None:
        raise _fail(
            name,
            f"unknown file type {_short(repr(p.suffix))}",
            "a .csv, .tsv, .xlsx or .parquet file",
        )
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
        if not head:
            raise _fail(name, "the file is empty", "a header row naming the columns, then the data")
        if kind in ("csv", "tsv"):
            content = _kind_by_content(head)
            if content is not None:
                raise _fail(
                    name,
                    f"is a{'n Excel' if content != 'parquet' else ''} {content} file with a "
                    f"'{p.suffix}' name",
                    f"a CSV text file; rename it to .{content}",
                )
            frame = _read_csv(p.read_bytes(), name, "\t" if kind == "tsv" else ",", encoding)
        elif kind == "excel":
            frame = _read_excel(p, head, sheet, decimal)
        else:
            frame = _read_parquet(p, head, decimal)
    except OSError as exc:
        raise _fail(
            name,
            f"could not be opened ({_short(exc.strerror or type(exc).__name__)})",
            "a readable file",
        ) from None
    except (ValueError, UnicodeError, csv.Error) as exc:
        if isinstance(exc, DataValidationError):
            raise
        # the CSV parsers' own complaints: a quote left open, a value of megabytes
        raise _fail(
            name,
            f"could not be read as {kind} ({type(exc).__name__}): a quote may be left open, "
            "or a value is too long",
            f"a valid {kind} file",
        ) from exc
    columns = [str(c).strip() for c in frame.columns]
    frame.columns = pd.Index(columns, dtype=object)
    _check_header(columns, name, known)
    frame.attrs["source"] = name
    frame.attrs["decimal"] = decimal
    frame.attrs["thousands"] = thousands
    return frame


def _check_header(columns: list[str], name: str, known: frozenset[str]) -> None:
    """Refuse a header that repeats a name (pandas would silently rename the second)."""
    positions: dict[str, list[int]] = {}
    for i, c in enumerate(columns, start=1):
        positions.setdefault(c, []).append(i)
    repeated = {c: pos for c, pos in positions.items() if len(pos) > 1}
    if not repeated:
        return
    where = [", ".join(f"{i} ({_column_letter(i)})" for i in pos[:5]) for pos in repeated.values()]
    if not _header_is_plausible(columns, known):
        raise _fail(
            name,
            "the first row does not look like a header: it names none of the data contract's "
            f"columns, and its cells repeat (columns {where[0]})",
            "a header row naming each column once",
        )
    listed = "; ".join(
        f"{_short(repr(c))} in columns {w}" for c, w in list(zip(repeated, where, strict=True))[:5]
    )
    more = f"; and {len(repeated) - 5:,} more" if len(repeated) > 5 else ""
    raise _fail(
        name,
        f"{len(repeated):,} column name(s) appear more than once ({listed}{more})",
        "each column name once in the header row (rename or delete the extra column)",
    )


def read_table(
    path: str | os.PathLike[str],
    *,
    sheet: str | int = 0,
    decimal: str = ".",
    thousands: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a CSV, TSV, Excel or Parquet file with every cell as text.

    Parameters
    ----------
    path : path-like
        The file. ``.csv``/``.txt``/``.tsv`` text files are UTF-8 (UTF-16 and UTF-32 are
        recognised by their byte-order mark) with a header row; the delimiter (comma,
        semicolon, tab or ``|``) is taken from the header row. ``.xlsx``/``.xlsm`` and
        legacy ``.xls`` workbooks and ``.parquet`` files are recognised by their content,
        not only their name.
    sheet : str or int, default 0
        Excel sheet name or position.
    decimal, thousands : str, optional
        The file's decimal mark and thousands separator (see :func:`load`); numbers stored
        as numbers in a workbook or Parquet file are written out with this decimal mark.
    encoding : str, optional
        Encoding of a text file, e.g. ``"cp1252"``; by default UTF-8.

    Returns
    -------
    pandas.DataFrame
        Cells as strings (missing cells as NA); ``attrs["source"]`` is the file name and
        ``attrs["decimal"]``/``attrs["thousands"]`` the number format.

    Raises
    ------
    DataValidationError
        If the file does not exist, is empty, has an unknown extension, is damaged or
        truncated, is not in its extension's format, is not UTF-8 (without ``encoding``),
        has lines with more or fewer fields than the header (their line numbers are
        given), or repeats a column name (the positions are given).
    OptionError
        If ``decimal``, ``thousands`` or ``encoding`` is not valid.
    """
    from .data.validate import check_number_format

    check_number_format(decimal, thousands)
    _check_encoding(encoding)
    return _read(
        path,
        sheet=sheet,
        decimal=decimal,
        thousands=thousands,
        encoding=encoding,
        known=_contract_names(),
    )


def _check_encoding(encoding: object) -> None:
    import codecs

    if encoding is None:
        return
    if not isinstance(encoding, str):
        raise OptionTypeError(
            f"encoding must be text such as 'cp1252', got {type(encoding).__name__}"
        )
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise OptionError(
            f"encoding={_short(repr(encoding))} is not an encoding Python knows; e.g. 'utf-8', "
            "'cp1252' or 'latin-1'"
        ) from None


def load(
    path: str | os.PathLike[str],
    *,
    column_map: Mapping[str, str] | None = None,
    sheet: str | int = 0,
    decimal: str = ".",
    thousands: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read one table of the data contract from a file, renaming columns if asked.

    Nothing is guessed about numbers: by default a number is written with ``.`` as the
    decimal mark and no thousands separator, and :func:`cis_eval.validate` refuses any
    other spelling (``0,5``, ``1,800``, ``45%``, ``3 hrs``) naming the rows. A file that
    writes numbers otherwise says so with ``decimal`` and ``thousands``.

    Parameters
    ----------
    path : path-like
        CSV, TSV, Excel (.xlsx, or legacy .xls) or Parquet file with a header row.
    column_map : mapping, optional
        The export's column names -> the contract's names, so a real export can be used
        without hand editing (e.g. ``{"StudentNumber": "student_id"}``). Two columns may
        not be mapped onto one name.
    sheet : str or int, default 0
        Excel sheet.
    decimal : {".", ","}, default "."
        The file's decimal mark: ``","`` for files written as ``0,5``.
    thousands : {None, ",", ".", " ", "'"}, default None
        The file's thousands separator, if it has one: ``","`` reads ``1,800`` as 1800 and
        refuses a misplaced one (``1,80``). Must differ from ``decimal``.
    encoding : str, optional
        Encoding of a text file (e.g. ``"cp1252"`` for a Windows "CSV"); by default UTF-8,
        or UTF-16/UTF-32 with a byte-order mark.

    Returns
    -------
    pandas.DataFrame
        Cells as text, ready for :func:`cis_eval.validate`, which checks and types them
        (with the number format recorded in ``attrs``).

    Raises
    ------
    DataValidationError
        If the file cannot be read (see :func:`read_table`), or a column named in
        ``column_map`` is not in the file. Messages never repeat a cell of the file: when
        the first row does not look like a header (none of its cells is a contract column
        or a name in ``column_map``), it is not listed as the file's columns.
    OptionError
        If ``column_map``, ``decimal``, ``thousands`` or ``encoding`` is not valid.

    Examples
    --------
    >>> import tempfile, pathlib, os
    >>> import cis_eval as ce
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "roster.csv").write_text(os.linesep.join(["ID,school_id", "001,A"]))
    >>> ce.load(folder / "roster.csv", column_map={"ID": "student_id"})["student_id"].tolist()
    ['001']
    """
    from .data.validate import check_number_format

    check_number_format(decimal, thousands)
    _check_encoding(encoding)
    cmap = check_column_map(column_map) if column_map is not None else {}
    known = _contract_names() | frozenset(cmap)
    frame = _read(
        path, sheet=sheet, decimal=decimal, thousands=thousands, encoding=encoding, known=known
    )
    if not cmap:
        return frame
    source = frame.attrs["source"]
    columns = list(frame.columns)
    present = set(columns)
    missing = [k for k in cmap if k not in present]
    if missing:
        raise _unmapped(source, missing, list(columns), known)
    targets = set(cmap.values())
    clash = [c for c in columns if c in targets and c not in cmap]
    if clash:
        by_target = {v: k for k, v in cmap.items()}
        c = clash[0]
        raise _fail(
            source,
            f"the column map renames {_short(by_target[c])!r} to {_short(c)!r}, but the file "
            f"already has a column {_short(c)!r} (column {columns.index(c) + 1} "
            f"({_column_letter(columns.index(c) + 1)}))",
            "one column of the file for each contract column: map only one of them",
        )
    attrs = dict(frame.attrs)
    frame = frame.rename(columns=cmap)
    frame.attrs.update(attrs)
    # validation names the user's own column beside the contract's
    frame.attrs["renamed"] = {new: old for old, new in cmap.items()}
    return frame


# ----------------------------------------------------------------------------- logs for DuckDB

# DuckDB's read buffer for large CSV logs: with 64 MB, parsing a 2.5 GB log on two cores
# takes an eighth less time than with the default.
_CSV_BUFFER = 64 * 2**20
_LOG_KINDS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".txt": "csv", ".tsv": "csv"}


def _sql_text(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class LogScan:
    """A contacts log on disk, opened as a DuckDB relation and checked for its columns.

    Attributes
    ----------
    relation : str
        SQL that reads the file (``read_parquet(...)`` or ``read_csv(...)``); DuckDB
        streams it on each query, so a log larger than memory is never loaded whole.
    kind : {"parquet", "csv"}
        File format. CSV cells are all read as text (the caller types them).
    source : str
        File name, for messages.
    has_row : bool
        Whether the relation carries ``file_row_number`` (Parquet), for row numbers in
        messages.
    columns : dict of str to str
        Contract column -> the file's column (after ``column_map``).
    types : dict of str to str
        The file's column -> its DuckDB type.
    path : str
        The file DuckDB reads (a UTF-8 copy of a file in another encoding).
    """

    relation: str
    kind: str
    source: str
    has_row: bool
    columns: dict[str, str]
    types: dict[str, str]
    path: str = ""


def _log_file(path: str | os.PathLike[str]) -> tuple[Path, str, str, str | None, str]:
    """A log file's path, name (for messages), suffix, kind and SQL literal; it must exist."""
    p = Path(path)
    if not p.is_file():
        raise DataValidationError(
            [Problem(p.name, None, (), 0, "file not found", "an existing file")]
        )
    suffix = p.suffix.lower()
    return p, p.name, suffix, _LOG_KINDS.get(suffix), _sql_text(str(p))


def scan_log(
    con: Any, path: str | os.PathLike[str], column_map: Mapping[str, str] | None = None
) -> LogScan:
    """Open a CSV or Parquet contacts log as a DuckDB relation on ``con``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection that will query the log.
    path : str or path-like
        A ``.csv``/``.txt``/``.tsv`` or ``.parquet``/``.pq`` file.
    column_map : mapping, optional
        The file's column names -> the contract's.

    Returns
    -------
    LogScan

    Raises
    ------
    DataValidationError
        If the file is missing, of another format, unreadable, or lacks a contract
        column (each missing column listed), or if ``column_map`` names a column that is
        not in the file (a few of them named, with a few of the file's columns).
    OptionError
        If ``column_map`` is not a map of names (see :func:`load`).

    Notes
    -----
    A CSV file's delimiter (comma, semicolon, tab or ``|``) is taken from its header row,
    as :func:`read_table` does.
    """
    from .schema import COLUMNS

    cmap = check_column_map(column_map) if column_map is not None else {}
    p, source, suffix, kind, esc = _log_file(path)
    if kind == "parquet":
        rel, has_row = f"read_parquet({esc}, file_row_number = true)", True
    elif kind == "csv":
        nulls = ", ".join(_sql_text(v) for v in NA_VALUES if v)
        # the delimiter of the header row, as the table reader takes it (, ; tab |)
        sep = _sniff_delimiter(_head_text(p), "\t" if suffix == ".tsv" else ",")
        delim = "\\t" if sep == "\t" else sep  # DuckDB's escape for a tab
        rel = (
            f"read_csv({esc}, all_varchar = true, header = true, delim = {_sql_text(delim)}, "
            f"nullstr = [{nulls}], buffer_size = {_CSV_BUFFER})"
        )
        has_row = False
    else:
        raise DataValidationError(
            [
                Problem(
                    source,
                    None,
                    (),
                    0,
                    f"cannot read '{suffix}' files directly",
                    "a .csv or .parquet file (read Excel files with cis_eval.load first)",
                )
            ]
        )
    types = _describe(con, rel, source, kind)
    missing = [k for k in cmap if k not in types]
    if missing:
        # a few names, never a data row shown as the header
        raise _unmapped(source, missing, list(types), _contract_names() | frozenset(cmap))
    inverse = {v: k for k, v in cmap.items()}
    spec = COLUMNS["contacts"]
    raw = {c: inverse.get(c, c) for c in spec}
    absent = [c for c, r in raw.items() if r not in types]
    if absent:
        raise DataValidationError(
            [
                Problem(
                    source,
                    c,
                    (),
                    0,
                    "required column is missing",
                    f"a column named '{c}' ({spec[c].description})",
                )
                for c in absent
            ]
        )
    return LogScan(rel, kind, source, has_row, raw, types)


def _utf8_copy(path: Path, folder: str, encoding: str, name: str) -> Path:
    """A UTF-8 copy of a text file in ``encoding``, written in ``folder`` in pieces."""
    dec = codecs.getincrementaldecoder(encoding)()
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".csv")
    out = Path(tmp)
    lines = 0
    with path.open("rb") as fin, os.fdopen(fd, "w", encoding="utf-8", newline="") as fout:
        while chunk := fin.read(1 << 24):
            try:
                fout.write(dec.decode(chunk))
            except UnicodeDecodeError as exc:
                line = lines + chunk.count(b"\n", 0, max(exc.start, 0)) + 1
                raise _fail(
                    name,
                    f"is not {encoding} text (line {line:,} has bytes that are not)",
                    "text in the encoding the mapping file names",
                ) from None
            lines += chunk.count(b"\n")
        fout.write(dec.decode(b"", final=True))
    return out


_DELIMITERS = (",", ";", "\t", "|")


def export_delimiter(
    text: str, default: str, expected: Sequence[str] = (), top_rows: int = 0
) -> str:
    """The delimiter of an export's CSV text, below any title rows above its header.

    Each of ``, ; tab |`` splits the top rows; the one whose header row holds most of the
    ``expected`` column names wins (without any, the one giving the widest row), and
    ``default`` on a tie: a title row of one cell says nothing about the delimiter.
    """
    import csv
    import itertools
    from io import StringIO

    from .data.mapping import HEADER_SEARCH_ROWS, find_header_row, wording_key

    want = {wording_key(e) for e in expected if e}
    n = max(HEADER_SEARCH_ROWS, top_rows)
    best, score = default, (-1, -1)
    for sep in (default, *(d for d in _DELIMITERS if d != default)):
        try:
            reader = csv.reader(StringIO(text, newline=""), delimiter=sep)
            rows = [[c.strip() or None for c in r] for r in itertools.islice(reader, n)]
        except csv.Error:
            continue
        if not rows:
            continue
        head = rows[find_header_row(rows, expected)[0]]
        named = sum(1 for v in head if v is not None and wording_key(v) in want)
        wide = sum(v is not None for v in head)
        if (named, wide) > score and (named > 0 or wide > 1):
            best, score = sep, (named, wide)
    return best


def scan_export_log(
    con: Any,
    path: str | os.PathLike[str],
    *,
    header_row: int | None = None,
    expected: Sequence[str] = (),
    encoding: str | None = None,
) -> tuple[LogScan, int]:
    """Open an export's CSV or Parquet contacts log as a DuckDB relation, below its title rows.

    The large-log counterpart of :func:`read_sheet`: only the top rows of a CSV file are
    read here, to find the header (see :func:`cis_eval.data.mapping.find_header_row`);
    DuckDB streams the body. Columns keep the export's own names and every cell is text.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection that will query the log.
    path : str or path-like
        A ``.csv``/``.txt``/``.tsv`` or ``.parquet``/``.pq`` file.
    header_row : int, optional
        Spreadsheet row (1-based) of the column names; found by default.
    expected : sequence of str
        Column names the header should contain, to find it among title rows.
    encoding : str, optional
        Text encoding of a CSV file other than UTF-8: the file is first copied as UTF-8
        into the connection's temporary folder (DuckDB reads UTF-8), the original is left
        as it is.

    Returns
    -------
    scan : LogScan
        ``columns`` maps each of the file's columns to itself; ``has_row`` is false.
    header_row : int
        Spreadsheet row of the column names (1 for Parquet).

    Raises
    ------
    DataValidationError
        If the file is missing, of another format or unreadable.
    """
    import csv
    import itertools
    from io import StringIO

    from .data.mapping import HEADER_SEARCH_ROWS, find_header_row

    p, source, suffix, kind, esc = _log_file(path)
    head = 0
    if kind == "parquet":
        rel = f"read_parquet({esc})"
    elif kind == "csv":
        if encoding is not None and codecs.lookup(encoding).name != "utf-8":
            folder = str(con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
            p = _utf8_copy(p, folder, encoding, source)
            esc = _sql_text(str(p))
        try:
            with p.open(encoding="utf-8-sig", newline="") as fh:
                head_text = fh.read(1 << 20)  # the top rows: enough to find the header
            sep = export_delimiter(
                head_text, "\t" if suffix == ".tsv" else ",", expected, header_row or 0
            )
            reader = csv.reader(StringIO(head_text, newline=""), delimiter=sep)
            grid = [
                [c.strip() or None for c in row]
                for row in itertools.islice(reader, max(HEADER_SEARCH_ROWS, header_row or 0))
            ]
        except UnicodeDecodeError as exc:
            raise unreadable(exc, source, "CSV") from exc
        except (OSError, csv.Error) as exc:
            raise DataValidationError(
                [Problem(source, None, (), 0, f"unreadable ({type(exc).__name__})", "a CSV file")]
            ) from exc
        delim = "\\t" if sep == "\t" else sep  # DuckDB's escape for a tab
        if header_row is not None:
            head = header_row - 1
        elif grid:
            head = find_header_row(grid, expected)[0]
        # Lines above the header, as the csv module counts them (blank lines included).
        nulls = ", ".join(_sql_text(v) for v in NA_VALUES if v)
        rel = (
            f"read_csv({esc}, all_varchar = true, header = true, delim = {_sql_text(delim)}, "
            f"skip = {head}, nullstr = [{nulls}], quote = '\"', escape = '\"', "
            f"buffer_size = {_CSV_BUFFER})"
        )
    else:
        raise DataValidationError(
            [
                Problem(
                    source,
                    None,
                    (),
                    0,
                    f"cannot read '{suffix}' files directly",
                    "a .csv or .parquet file",
                )
            ]
        )
    types = _describe(con, rel, source, kind)
    return LogScan(rel, kind, source, False, {c: c for c in types}, types, str(p)), head + 1


def _head_text(path: Path, size: int = 1 << 20) -> str:
    """The first ``size`` bytes of a text file as text (undecodable bytes replaced)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(size)
    except OSError:
        return ""
    return raw.decode("utf-8-sig", errors="replace")


def file_size(path: str | os.PathLike[str]) -> int:
    """Size of a file in bytes, or 0 if it cannot be read (for progress estimates)."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


RUN_MANIFEST = ".cis-eval-run.json"
"""File listing what one run wrote into an output folder (see :func:`atomic_folder`)."""


def _manifest_files(folder: Path) -> set[str] | None:
    """Files a previous run listed in ``folder``'s manifest; ``None`` if there is none."""
    import json

    try:
        data = json.loads((folder / RUN_MANIFEST).read_text(encoding="utf-8"))
        return {str(f) for f in data["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], *, command: str = "") -> Iterator[Path]:
    """Build an output folder beside its target and move it into place as a unit.

    The caller writes every output into the yielded temporary folder. On success the run
    replaces the folder's previous run as a whole, with a manifest (``.cis-eval-run.json``)
    listing the files that belong to it; on failure the temporary folder is removed and
    the target is left as it was. So a failed run leaves no complete-looking outputs, an
    older run's files never survive beside a newer run's, and two runs never mix.

    Parameters
    ----------
    path : path-like
        The output folder. Created if needed.
    command : str, optional
        What wrote the folder, recorded in the manifest.

    Yields
    ------
    pathlib.Path
        The temporary folder to write into.

    Notes
    -----
    A folder holding files that no earlier run listed (the user's own files, or outputs
    of a version without manifests) is never deleted: the new files are moved in one by
    one, the files of the previous run listed in its manifest are removed, and the user's
    own files are kept.
    """
    import json
    import shutil

    target = Path(path).absolute()
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    # an existing folder in a folder we may not write to (``--out .`` in a shared tree) is
    # built inside itself and merged
    inside = target.is_dir() and not os.access(parent, os.W_OK | os.X_OK)
    where = target if inside else parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=where))
    try:
        yield tmp
        files = sorted(_files_under(tmp))
        manifest = {"written_by": f"cis-eval {command}".strip(), "files": files}
        (tmp / RUN_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        # mkdtemp creates 0700 folders; give the output the permissions mkdir would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        _swap_in(tmp, target, merge=inside)
    except OSError as exc:
        # name the output the user asked for, not the temporary folder
        name = str(exc.filename or "")
        if name.startswith(str(tmp)):
            exc.filename = str(Path(path) / Path(name).relative_to(tmp))
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, target: Path, *, merge: bool = False) -> None:
    """Put the finished folder ``new`` at ``target`` (see :func:`atomic_folder`)."""
    import shutil

    for _ in range(0 if merge else 5):  # another run may swap its folder in between ours
        if not target.exists():
            try:
                os.rename(new, target)
                return
            except OSError:
                continue
        previous = _manifest_files(target) or set()
        present = _files_under(target) - {RUN_MANIFEST}
        if not present <= previous or Path.cwd().resolve().is_relative_to(target.resolve()):
            break  # the folder holds files no run listed (or is where we stand): merge below
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        try:
            os.rename(target, old / "run")
        except FileNotFoundError:
            shutil.rmtree(old, ignore_errors=True)
            continue
        try:
            os.rename(new, target)
            return
        except OSError:
            continue
        finally:
            shutil.rmtree(old, ignore_errors=True)
    # merge: remove the previous run's files, move the new ones in one by one
    for stale in _manifest_files(target) or set():
        if ".." not in Path(stale).parts:
            with contextlib.suppress(OSError):
                (target / stale).unlink()
    names = [*sorted(_files_under(new) - {RUN_MANIFEST}), RUN_MANIFEST]
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new / name, dest)


# ----------------------------------------------------------------------------- affiliate exports


def _grid_text(value: Any) -> str | None:
    """A spreadsheet cell as the text the user sees (dates as ISO dates, 8.0 as 8)."""
    import datetime

    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, datetime.datetime):
        fmt = "%Y-%m-%d" if value.time() == datetime.time() else "%Y-%m-%d %H:%M:%S"
        return value.strftime(fmt)
    if isinstance(value, datetime.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _excel_engine(path: Path) -> Literal["openpyxl", "calamine"]:
    """The reader engine of a workbook, chosen by its content as :func:`read_table` does.

    openpyxl for .xlsx/.xlsm workbooks, calamine (a dependency) for legacy .xls ones; a
    file whose content is neither goes to the engine of its extension, which reports it.
    """
    try:
        with path.open("rb") as fh:
            content = _kind_by_content(fh.read(8))
    except OSError:
        content = None
    if content in _ENGINES:
        return _ENGINES[content]
    return "calamine" if path.suffix.lower() == ".xls" else "openpyxl"


def sheet_names(path: str | os.PathLike[str]) -> list[str]:
    """Names of the sheets of a workbook, in order; ``[]`` for a CSV or Parquet file.

    Raises
    ------
    DataValidationError
        If the file does not exist, is not a workbook whatever its name, or is damaged,
        truncated or password-protected.
    """
    p = Path(path)
    if not p.is_file():
        raise DataValidationError(
            [Problem(p.name, None, (), 0, "file not found", "an existing file")]
        )
    if READERS.get(p.suffix.lower()) != "excel":
        return []
    try:
        with p.open("rb") as fh:
            content = _kind_by_content(fh.read(8))
    except OSError as exc:
        raise _fail(
            p.name,
            f"could not be opened ({_short(exc.strerror or type(exc).__name__)})",
            "a readable file",
        ) from None
    if content not in ("xlsx", "xls"):
        looks = "text (perhaps a CSV file with an Excel name)" if content is None else content
        raise _fail(p.name, f"is not an Excel workbook: it looks like {looks}", _SAVE_AS)
    engine = _ENGINES[content]
    try:
        with pd.ExcelFile(p, engine=engine) as book:
            return [str(s) for s in book.sheet_names]
    except ImportError:
        raise  # a broken installation, not a damaged file
    except Exception as exc:  # openpyxl, zipfile and calamine raise their own families
        raise _damaged(p.name, engine, _SAVE_AS) from exc


def _row_gaps(index: pd.Index, header_row: int) -> tuple[tuple[int, int], ...]:
    """Runs of spreadsheet rows missing from ``index`` between the header and its last row."""
    rows = np.concatenate(([header_row], np.asarray(index, dtype=np.int64)))
    step = np.diff(rows)
    at = np.flatnonzero(step > 1)
    return tuple((int(rows[i]) + 1, int(step[i]) - 1) for i in at)


def read_sheet(
    path: str | os.PathLike[str],
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
    expected: tuple[str, ...] | list[str] = (),
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read one table of an export, finding its header row below any title rows.

    Parameters
    ----------
    path : path-like
        A workbook (.xlsx), CSV/TSV or Parquet file.
    sheet : str or int, optional
        Sheet name or 0-based position (workbooks only); the first sheet by default.
    header_row : int, optional
        Spreadsheet row (1-based) of the column names; found automatically by default
        (see :func:`cis_eval.data.mapping.find_header_row`).
    expected : sequence of str
        Column names the header should contain, to find it among title rows.
    encoding : str, optional
        Text encoding of a CSV file; UTF-8 (or UTF-16/32 with a byte-order mark) by
        default.

    Returns
    -------
    pandas.DataFrame
        Cells as text (empty cells as NA); blank rows dropped; the index is each row's
        spreadsheet row number. ``attrs``: ``source`` (file name), ``sheet``,
        ``header_row``, ``header_how``, ``skipped`` (the rows above the header) and
        ``row_gaps`` (the blank rows dropped below it, as ``(first row, how many)``).

    Raises
    ------
    DataValidationError
        If the file or sheet does not exist (the message lists the sheets) or cannot be
        read, a CSV file is not UTF-8 (or UTF-16/32 with a byte-order mark), or a CSV row
        below the header has more or fewer cells than the header (the rows are named).
    """
    import zipfile

    from .data.mapping import HEADER_SEARCH_ROWS, describe_skipped, find_header_row
    from .data.validate import ROW_GAPS

    p = Path(path)
    name = p.name

    def fail(message: str, expected_: str) -> DataValidationError:
        return DataValidationError([Problem(name, None, (), 0, message, expected_)])

    if not p.is_file():
        raise fail("file not found", "an existing file")
    kind = READERS.get(p.suffix.lower())
    if kind is None:
        raise fail(f"unknown file type '{p.suffix}'", "a .csv, .tsv, .xlsx or .parquet file")
    sheet_name: str | None = None
    # CSV: only the top rows are parsed here, to find the header; pandas reads the body.
    top_rows = max(HEADER_SEARCH_ROWS, header_row or 0)
    text = ""
    try:
        if kind == "excel":
            names = sheet_names(p)
            if isinstance(sheet, str) and sheet not in names:
                import difflib

                near = difflib.get_close_matches(sheet, names, n=1, cutoff=0.6)
                hint = f"; did you mean {_short(repr(near[0]))}?" if near else ""
                raise fail(
                    f"no sheet named {_short(repr(sheet))}{hint}",
                    "one of the sheets: " + _names(names),
                )
            if isinstance(sheet, int) and not 0 <= sheet < len(names):
                raise fail(f"no sheet number {sheet}", f"0 to {len(names) - 1}")
            sheet_name = sheet if isinstance(sheet, str) else names[sheet or 0]
            engine = _excel_engine(p)
            try:
                raw = pd.read_excel(
                    p, sheet_name=sheet_name, header=None, dtype=object, engine=engine
                )
            except ImportError:
                raise  # a broken installation, not a damaged file
            except Exception as exc:  # openpyxl, zipfile and calamine raise their own families
                raise _damaged(name, engine, _SAVE_AS) from exc
            grid = [[_grid_text(v) for v in row] for row in raw.itertuples(index=False)]
        elif kind in ("csv", "tsv"):
            import csv
            import itertools
            from io import StringIO

            # the main reader's decoding: UTF-8, or UTF-16/32 recognised by their marks
            text = _decode(p.read_bytes(), name, encoding, declare=False)
            if not text.strip():
                raise fail("the file is empty", "a header row naming the columns, then the data")
            sep = export_delimiter(text, "\t" if kind == "tsv" else ",", expected, top_rows)
            reader = csv.reader(StringIO(text, newline=""), delimiter=sep)
            try:
                grid = [
                    [c.strip() or None for c in row] for row in itertools.islice(reader, top_rows)
                ]
            except csv.Error as exc:
                raise _unsplittable(name, exc, reader.line_num) from None
        else:
            table = read_table(p)
            columns: list[str | None] = [str(c) for c in table.columns]
            grid = [
                columns,
                *(
                    [None if pd.isna(v) else str(v) for v in row]
                    for row in table.itertuples(index=False)
                ),
            ]
    except (ValueError, OSError, UnicodeDecodeError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataValidationError):
            raise
        raise fail(
            f"could not be read as {kind} ({type(exc).__name__})", f"a readable {kind} file"
        ) from exc
    if header_row is not None:
        if header_row > len(grid):
            raise fail(
                f"header_row {header_row} is below the last row ({len(grid)})",
                "a row with column names",
            )
        head, how = header_row - 1, "as the mapping file says"
    else:
        head, how = find_header_row(grid, expected)
    header = [v or "" for v in grid[head]] if grid else []
    labels: list[str] = []
    for i, h in enumerate(header):
        label = h or f"(column {i + 1})"
        while label in labels:
            label += " (2)"
        labels.append(label)
    na = set(NA_VALUES)
    if kind in ("csv", "tsv"):
        import warnings
        from io import StringIO

        # rows below the header as wide as it, or an error naming them (pandas would pad a
        # short row and drop the cells of a long one without a word)
        bad, n_bad, fields = _ragged(text, sep, name, header=head, rows=True)
        if n_bad:
            raise DataValidationError(
                [
                    Problem(
                        name,
                        None,
                        tuple(bad),
                        n_bad,
                        f"{n_bad:,} row(s) have a different number of cells than the header row",
                        f"{fields} cells on every row, as in the header (row {head + 1}); a "
                        f"{sep!r} inside a value must be quoted",
                    )
                ]
            )
        try:
            # pandas only warns, and drops cells, when a row is wider than the header
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                body = pd.read_csv(
                    StringIO(text),
                    sep=sep,
                    header=None,
                    names=labels,
                    index_col=False,
                    skiprows=head + 1,
                    dtype=str,
                    keep_default_na=False,
                    na_values=NA_VALUES,
                    skip_blank_lines=False,
                )
        except (ValueError, UnicodeDecodeError, pd.errors.ParserWarning) as exc:
            raise fail(
                f"rows below the header could not be read ({type(exc).__name__})",
                f"at most {len(labels)} cells per row, as in the header (row {head + 1})",
            ) from exc
        # the index is each row's spreadsheet row number (1-based, header included)
        body.index = pd.RangeIndex(head + 2, head + 2 + len(body))
        frame = body.astype("string").dropna(how="all")
    else:
        width = max((len(r) for r in grid), default=0)
        padded = [list(r) + [None] * (width - len(r)) for r in grid]
        rows = {
            r + 1: [None if v is None or v in na else v for v in padded[r]][: len(labels)]
            for r in range(head + 1, len(padded))
            if any(v is not None and v not in na for v in padded[r])
        }
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=labels, dtype="string")
    if frame.empty:
        frame = pd.DataFrame({c: pd.Series(dtype="string") for c in labels})
    unnamed = [c for i, c in enumerate(labels) if not header[i] and frame[c].isna().all()]
    frame = frame.drop(columns=unnamed)
    frame.attrs.update(
        {
            "source": name,
            "sheet": sheet_name,
            "header_row": head + 1,
            ROW_GAPS: _row_gaps(frame.index, head + 1),
            "header_how": how,
            "skipped": describe_skipped(grid, head) if head else "",
        }
    )
    return frame


def read_mapping(path: str | os.PathLike[str]) -> Any:
    """Read and check a mapping file (TOML); returns an :class:`~cis_eval.data.mapping.ExportMapping`.

    Raises
    ------
    DataValidationError
        If the file is missing, is not TOML, or its contents are not a valid mapping
        (every problem listed).
    """
    import tomllib

    from .data.mapping import parse_mapping

    p = Path(path)
    if not p.is_file():
        raise DataValidationError(
            [Problem(p.name, None, (), 0, "mapping file not found", "an existing file")]
        )
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            [Problem(p.name, None, (), 0, f"is not valid TOML ({exc})", "a TOML mapping file")]
        ) from exc
    return parse_mapping(data, source=p.name)


def load_export(
    mapping: str | os.PathLike[str],
    *,
    shipped_wordings: bool | None = None,
    log_on_disk: bool = False,
) -> Any:
    r"""Read an affiliate's export through its mapping file.

    Each table the mapping file describes is read from its file and sheet (title rows
    above the header skipped and reported), its columns renamed and its values recoded to
    the data contract (service areas, tiers, modes, grades, percentages, yes/no, US or
    ISO dates). Every problem of every table is collected before anything is raised.

    Parameters
    ----------
    mapping : path-like
        The mapping file (TOML); file names in it are relative to its folder. Draft one
        with ``cis-eval map --init EXPORT``.
    shipped_wordings : bool, optional
        Override the mapping file's ``shipped_wordings`` setting.
    log_on_disk : bool, default False
        Leave a contacts log kept as CSV or Parquet on disk: it is returned as
        ``.contacts_log``, which :func:`cis_eval.fidelity` renames, recodes and checks in
        DuckDB (for logs of millions of contacts; same results as reading it here).

    Returns
    -------
    LoadedExport
        ``.roster`` (or ``.students``), ``.contacts``, ``.coordinators`` as text frames
        ready for :func:`cis_eval.validate`, with ``.notes`` and ``.warnings``.

    Raises
    ------
    DataValidationError
        Listing every problem; each names the table, file, sheet, column and spreadsheet
        rows, and unknown wordings come with "did you mean" suggestions.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import cis_eval as ce
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "roster.csv").write_text("Roster 2012-13\nID,Campus,Grade\n1,A,8th Grade\n")
    >>> _ = (folder / "map.toml").write_text(
    ...     '[roster]\nfile = "roster.csv"\n'
    ...     '[roster.columns]\nID = "student_id"\nCampus = "school_id"\nGrade = "grade"\n'
    ... )
    >>> ce.load_export(folder / "map.toml").roster["grade"].tolist()
    ['8']
    """
    from dataclasses import replace

    from .data.mapping import LoadedExport, MappedLog, apply_mapping, school_warnings

    p = Path(mapping)
    spec = read_mapping(p)
    shipped = spec.shipped_wordings if shipped_wordings is None else bool(shipped_wordings)
    tables: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    notes: list[str] = []
    on_disk = None
    for name, tm in spec.tables.items():
        if log_on_disk and name == "contacts" and Path(tm.file).suffix.lower() in _LOG_KINDS:
            on_disk = MappedLog(str(p.parent / tm.file), tm, shipped)
            continue
        try:
            raw = read_sheet(
                p.parent / tm.file,
                sheet=tm.sheet,
                header_row=tm.header_row,
                expected=tm.expected_headers,
                encoding=tm.encoding,
            )
        except DataValidationError as exc:
            sheet = f", sheet {tm.sheet!r}" if tm.sheet is not None else ""
            problems += [replace(q, source=f"{name} ({q.source}{sheet})") for q in exc.problems]
            continue
        frame, found, said = apply_mapping(raw, tm, shipped=shipped)
        tables[name] = frame
        problems += found
        notes += said
    errors = [q for q in problems if q.severity == "error"]
    if errors:
        raise DataValidationError(errors)
    return LoadedExport(tables, tuple(notes), tuple(school_warnings(tables)), spec, on_disk)


def write_new_text(path: str | os.PathLike[str], text: str, *, force: bool = False) -> Path:
    """Write text atomically, refusing to replace an existing file unless ``force``.

    Raises
    ------
    OptionError
        If the file exists and ``force`` is false.
    """
    from .errors import OptionError

    target = Path(path)
    if target.exists() and not force:
        raise OptionError(
            f"{target.name} already exists; choose another name or use --force to replace it"
        )
    return write_text(target, text)


@contextlib.contextmanager
def duckdb_session(memory_limit: str) -> Iterator[Any]:
    """A DuckDB connection that spills to its own temporary folder, removed on exit.

    Parameters
    ----------
    memory_limit : str
        DuckDB's memory limit (e.g. ``"2GB"``); beyond it, DuckDB writes to the folder.

    Yields
    ------
    duckdb.DuckDBPyConnection
    """
    import shutil

    import duckdb

    tmp = tempfile.mkdtemp(prefix="cis_eval_duckdb_")
    con = duckdb.connect(
        config={
            "memory_limit": memory_limit,
            "temp_directory": tmp,
            "preserve_insertion_order": False,
        }
    )
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def unreadable(exc: Exception, source: str, kind: str) -> DataValidationError:
    """The user error for a file DuckDB could not read.

    DuckDB's own message is not shown: it may quote the file's cells.
    """
    said = str(exc).lower()
    if "unicode" in said or "utf-8" in said or "utf8" in said:
        return DataValidationError(
            [
                Problem(
                    source,
                    None,
                    (),
                    0,
                    "is not UTF-8 text",
                    "UTF-8 text: save it as 'CSV UTF-8', or name its encoding in the mapping "
                    "file (encoding = \"cp1252\" for a Windows or Latin-1 'CSV')",
                )
            ]
        )
    return DataValidationError(
        [
            Problem(
                source,
                None,
                (),
                0,
                f"could not be read ({type(exc).__name__})",
                f"a readable {kind} file",
            )
        ]
    )


def _describe(con: Any, rel: str, source: str, kind: str) -> dict[str, str]:
    """Column name -> DuckDB type of a scanned file; an unreadable file is a user error."""
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
    except Exception as exc:  # duckdb raises its own error family for unreadable files
        raise unreadable(exc, source, kind) from exc
    return {str(r[0]): str(r[1]) for r in described}


def _unmapped(
    source: str, missing: list[str], columns: list[str], known: frozenset[str]
) -> DataValidationError:
    """The error for column-map names missing from a file, bounded and free of data rows."""
    if _header_is_plausible(columns, known):
        expected = "names from the file's header row: " + _names(columns)
    else:
        expected = (
            "a header row naming the columns; the first row of this file does not look "
            "like a header (none of its cells is a column of the data contract or of the "
            "column map)"
        )
    return _fail(
        source,
        f"{len(missing):,} column(s) named in the column map are not in the file "
        f"({_names(missing, 5)})",
        expected,
    )
