"""What the commands share: checked option types, output paths, loading the tables.

Importing this module is cheap on purpose (no pandas, no numpy): ``cis-eval --help`` and
``--version`` must answer at once, so everything heavy is imported inside the functions
that need it.

Every option value is checked by its argparse ``type=`` (ranges, shapes, output paths), so
a bad value stops the run before any file is read, with argparse's usual exit status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import OptionError

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2

TABLES = ("students", "contacts", "coordinators")

# Shown values are cut to this many characters: a message stays one readable line even
# when the value is a pasted file.
_SHOWN = 40

# A message longer than this is cut: a huge column map or a file full of problems must not
# flood the terminal (each problem is already one line; the count of the rest is kept).
MAX_LINES = 25
MAX_LINE_CHARS = 300


class UsageError(OptionError):
    """Bad command-line usage (a missing table, options that do not fit together)."""


def shown(text: str) -> str:
    """``text`` quoted and cut to a readable length, for messages."""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def bounded(message: str, max_lines: int = MAX_LINES) -> str:
    r"""``message`` made safe for a terminal and cut to a readable size.

    Messages quote names from the user's files and arguments (schools, columns, sheets,
    file names), so every line goes through
    :func:`cis_eval.present.safety.escape_markup`: raw HTML is written as text and control
    characters (terminal escape sequences, carriage returns) become spaces. At most
    ``max_lines`` lines of at most :data:`MAX_LINE_CHARS` characters are kept, with a
    count of the lines left out.

    Examples
    --------
    >>> bounded("school <b>A</b>\x1b[2J")
    'school &lt;b>A&lt;/b> [2J'
    """
    lines = message.splitlines() or [""]
    cut = [one_line(line) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        cut.append(f"  ... and {len(lines) - max_lines} more line(s)")
    return "\n".join(cut)


def one_line(text: object) -> str:
    """``text`` escaped as :func:`bounded` does, on one line of at most MAX_LINE_CHARS."""
    # imported here: the safety helpers load pandas, which --help must not wait for
    from ..present.safety import escape_markup

    safe = escape_markup(str(text))  # line breaks and other control characters: spaces
    return safe if len(safe) <= MAX_LINE_CHARS else safe[: MAX_LINE_CHARS - 3] + "..."


def say(prefix: str, message: object, *, file: Any = None) -> None:
    """Print ``prefix: message`` to stderr (or ``file``), made safe and bounded by :func:`bounded`."""
    print(f"{prefix}: {bounded(str(message))}", file=file or sys.stderr)


# ----------------------------------------------------------------------------- option types


class Number:
    """An argparse ``type=`` for a finite number in a range.

    Parameters
    ----------
    kind : {int, float}
        Whole numbers or any number.
    low, high : float, optional
        Bounds; ``None`` leaves that side open-ended.
    low_open, high_open : bool, default False
        Exclude the bound itself.

    Notes
    -----
    The bounds are attributes so tests can generate values just outside them for every
    option of every command.
    """

    def __init__(
        self,
        kind: type[int | float],
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        self.kind = kind
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open
        self.__name__ = "whole number" if kind is int else "number"

    def describe(self) -> str:
        """The allowed values in words, e.g. ``a number in (0, 1)``."""
        what = "a whole number" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            lb, hb = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{what} in {lb}{self.low:g}, {self.high:g}{hb}"
        if self.low is not None:
            return f"{what} {'above' if self.low_open else 'of at least'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'below' if self.high_open else 'of at most'} {self.high:g}"
        return what

    def __call__(self, text: str) -> int | float:
        """Parse and check ``text``; raise ``argparse.ArgumentTypeError`` if it does not fit."""
        bad = argparse.ArgumentTypeError(f"expected {self.describe()}, got {shown(text)}")
        try:
            value: int | float = int(text) if self.kind is int else float(text)
        except ValueError:
            raise bad from None
        if not math.isfinite(value):
            raise bad
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise bad
        return value

    def __repr__(self) -> str:
        return f"Number({self.describe()})"


PROBABILITY = Number(float, 0, 1, low_open=True, high_open=True)
"""A share or level strictly between 0 and 1 (alpha, a share treated, a threshold)."""
SHARE = Number(float, 0, 1)
"""A share from 0 to 1 inclusive (take-up)."""
PROPORTION_BELOW_ONE = Number(float, 0, 1, high_open=True)
"""From 0 up to, not including, 1 (an R², an ICC, attrition)."""
SEED = Number(int, 0)
"""A seed: a whole number of 0 or more."""
COUNT = Number(int, 0)
"""A whole number of 0 or more."""
POSITIVE_INT = Number(int, 1)
"""A whole number of 1 or more."""
POSITIVE = Number(float, 0, low_open=True)
"""A number above 0."""
NON_NEGATIVE = Number(float, 0)
"""A number of 0 or more."""
REAL = Number(float)
"""Any finite number."""


class NameValues:
    """An argparse ``type=`` for ``NAME=VALUE`` (or ``NAME=V1,V2`` with ``many``).

    Returns ``(name, [values])`` with dashes in the name turned into underscores.
    """

    def __init__(self, *, many: bool = False) -> None:
        self.many = many
        self.__name__ = "NAME=VALUE"

    def __call__(self, text: str) -> tuple[str, list[float]]:
        """Parse ``text``; raise ``argparse.ArgumentTypeError`` if it has the wrong shape."""
        form = "NAME=VALUE[,VALUE...]" if self.many else "NAME=VALUE"
        example = "chronic_absence=-0.03,-0.06" if self.many else "chronic_absence=-0.05"
        bad = argparse.ArgumentTypeError(f"expected {form}, e.g. {example}, got {shown(text)}")
        name, sep, rest = text.partition("=")
        try:
            values = [float(v) for v in rest.split(",") if v.strip()]
        except ValueError:
            raise bad from None
        if (
            not sep
            or not name.strip()
            or not values
            or (len(values) > 1 and not self.many)
            or not all(math.isfinite(v) for v in values)
        ):
            raise bad
        return name.strip().replace("-", "_"), values

    def __repr__(self) -> str:
        return f"NameValues(many={self.many})"


def iso_date(text: str) -> str:
    """An argparse ``type=`` for a calendar date written YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2012-08-01, got {shown(text)}"
        ) from None


iso_date.__name__ = "date"


class SchoolYear(argparse.Action):
    """``--school-year FIRST LAST``: two dates, the first before the last."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Store ``(first, last)`` after checking their order."""
        if isinstance(values, str) or values is None or len(values) != 2:
            raise argparse.ArgumentError(self, "expected two dates: FIRST LAST")
        first, last = str(values[0]), str(values[1])
        if first >= last:
            raise argparse.ArgumentError(
                self, f"the school year ends ({last}) on or before it starts ({first})"
            )
        setattr(namespace, self.dest, (first, last))


def add_school_year(p: argparse.ArgumentParser, help: str) -> None:
    """Add ``--school-year FIRST LAST``."""
    p.add_argument(
        "--school-year",
        nargs=2,
        type=iso_date,
        action=SchoolYear,
        metavar=("FIRST", "LAST"),
        help=help,
    )


# ----------------------------------------------------------------------------- output paths


def _writable_parent(path: Path) -> None:
    """Raise ``ArgumentTypeError`` unless ``path`` can be created under its nearest folder."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{path}: cannot write in {parent} (permission denied)")


def output_folder(text: str) -> Path:
    """An argparse ``type=`` for an output folder: absent, or an existing writable folder."""
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{path} is a file; expected a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{path}: cannot write here (permission denied)")
    else:
        _writable_parent(path)
    return path


output_folder.__name__ = "folder"


class OutputFile:
    """An argparse ``type=`` for an output file ending in one of ``suffixes``."""

    def __init__(self, *suffixes: str) -> None:
        self.suffixes = suffixes
        self.__name__ = "file"

    def __call__(self, text: str) -> Path:
        """Check ``text`` names a file that can be written; raise ``ArgumentTypeError`` if not."""
        path = Path(text)
        if path.is_dir() or text.endswith(("/", os.sep)):
            raise argparse.ArgumentTypeError(f"{path} is a folder; expected a file name")
        if self.suffixes and path.suffix.lower() not in self.suffixes:
            raise argparse.ArgumentTypeError(
                f"{path.name}: expected a file ending in {' or '.join(self.suffixes)}"
            )
        if path.exists() and not os.access(path, os.W_OK):
            raise argparse.ArgumentTypeError(f"{path}: cannot write it (permission denied)")
        _writable_parent(path)
        return path

    def __repr__(self) -> str:
        return f"OutputFile{self.suffixes}"


# ----------------------------------------------------------------------------- tables


def list_arg(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; ``None`` stays ``None``."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def covariates_arg(text: str | None) -> Any:
    """``--covariates``: ``"default"`` when absent, ``None`` for ``none``, else a list."""
    if text is None:
        return "default"
    return None if text.strip().lower() == "none" else list_arg(text)


def add_table_args(p: argparse.ArgumentParser, *, students: bool = True) -> None:
    """Add ``--students``, ``--contacts``, ``--coordinators`` and ``--column-map``."""
    if students:
        p.add_argument("--students", metavar="FILE", help="students table (CSV, Excel, Parquet)")
    p.add_argument("--contacts", metavar="FILE", help="contacts log (CSV, Excel, Parquet)")
    p.add_argument("--coordinators", metavar="FILE", help="coordinators table")
    p.add_argument(
        "--column-map",
        metavar="FILE",
        help="JSON or TOML file mapping your export's column names to the contract's, by table",
    )
    add_number_format_args(p)
    add_mapping_arg(p)


def add_number_format_args(p: argparse.ArgumentParser) -> None:
    """Add ``--decimal``, ``--thousands`` and ``--encoding``: how the files write numbers."""
    p.add_argument(
        "--decimal",
        choices=[".", ","],
        default=".",
        metavar="MARK",
        help="decimal mark of numbers in the files: '.' (default) or ',' for files written 0,5",
    )
    p.add_argument(
        "--thousands",
        choices=[",", ".", " ", "'"],
        default=None,
        metavar="SEP",
        help="thousands separator of numbers in the files, if they have one: ',' (1,800), "
        "'.', ' ' or \"'\"; without it, a number with a separator is an error",
    )
    p.add_argument(
        "--encoding",
        metavar="NAME",
        default=None,
        help="encoding of CSV files that are not UTF-8 (e.g. cp1252 for a Windows 'CSV')",
    )


def add_mapping_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--mapping``: read the tables through a mapping file instead of one file each."""
    p.add_argument(
        "--mapping",
        metavar="FILE",
        help="mapping file (TOML) naming each table's file and sheet and recoding your "
        "wordings; draft one with `cis-eval map --init EXPORT`",
    )


def read_tables(args: argparse.Namespace) -> dict[str, pd.DataFrame | None]:
    """The tables named on the command line: through ``--mapping``, or one file each."""
    from ..io import load, load_export

    mapping = getattr(args, "mapping", None)
    if mapping:
        given = [f"--{n}" for n in TABLES if getattr(args, n, None)]
        if getattr(args, "column_map", None):
            given.append("--column-map")
        if given:
            raise UsageError(
                f"--mapping names each table's file itself; leave out {', '.join(given)}"
            )
        # the mapping's tables are read as they are (UTF-8 text, '.' decimals): a number
        # format given beside it would be ignored without a word
        formats = [
            flag
            for flag, default in (("decimal", "."), ("thousands", None), ("encoding", None))
            if getattr(args, flag, default) != default
        ]
        if formats:
            raise UsageError(
                "--mapping reads each table as its mapping file says (text files as UTF-8, "
                f"numbers with '.' decimals); leave out --{', --'.join(formats)}"
            )
        export = load_export(mapping)
        for note in export.notes:
            say("note", note)
        for problem in export.warnings:
            say("warning", problem)
        # a program roster goes where the students table goes
        return {
            "students": export.students,
            "contacts": export.contacts,
            "coordinators": export.coordinators,
        }
    cmap = column_map(getattr(args, "column_map", None))
    decimal: str = getattr(args, "decimal", ".")
    thousands: str | None = getattr(args, "thousands", None)
    encoding: str | None = getattr(args, "encoding", None)
    return {
        n: load(
            getattr(args, n),
            column_map=cmap.get(n),
            decimal=decimal,
            thousands=thousands,
            encoding=encoding,
        )
        if getattr(args, n, None)
        else None
        for n in TABLES
    }


def contract_of(frames: dict[str, pd.DataFrame | None]) -> Literal["trial", "fidelity"]:
    """``"fidelity"`` when the students table is a program roster read through a mapping."""
    students = frames.get("students")
    roster = students is not None and students.attrs.get("table") == "roster"
    return "fidelity" if roster else "trial"


def read_config(path: str, what: str) -> Any:
    """Parse a small JSON or TOML file given on the command line (a column map, targets)."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p.name}: {what} file not found")
    try:
        text = p.read_text(encoding="utf-8")
        return json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # the parser's message may quote the file; keep only its first line, cut short
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise UsageError(f"{p.name}: the {what} could not be parsed ({reason})") from None


def column_map(path: str | None) -> dict[str, dict[str, str]]:
    """Read a column map: JSON or TOML ``{table: {their_name: contract_name}}``.

    The library's reader (:func:`cis_eval.io.read_column_map`) checks it, so the API and
    the command line accept the same files and give the same bounded messages.
    """
    from ..io import read_column_map

    return read_column_map(path) if path else {}


def load_validated(
    args: argparse.Namespace,
    *,
    need_contacts: bool = False,
    contract: Literal["trial", "fidelity"] | None = None,
) -> Any:
    """Load the tables named on the command line and validate them together.

    ``contract`` says what the students table is checked as; by default a program
    roster read through a mapping file is checked as one, anything else as a trial's.
    """
    from ..data.validate import validate

    frames = read_tables(args)
    if need_contacts and frames["contacts"] is None:
        raise UsageError("this command needs a contacts log: add --contacts FILE")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = validate(
            frames["students"],
            frames["contacts"],
            frames["coordinators"],
            contract=contract or contract_of(frames),
            school_year=getattr(args, "school_year", None),
        )
    print_warnings(caught)
    return report


def print_warnings(caught: Iterable[warnings.WarningMessage]) -> None:
    """Print recorded warnings to stderr, each made safe and bounded by :func:`bounded`."""
    for w in caught:
        say("warning", w.message)


def write_formats(folder: Path, name: str, table: Any) -> None:
    """Write a table as ``name.csv``, ``name.md`` and ``name.html`` in ``folder``."""
    from ..io import write_text

    write_text(folder / f"{name}.csv", table.to_csv())
    write_text(folder / f"{name}.md", table.to_markdown())
    write_text(folder / f"{name}.html", table.to_html())
