"""Reading and writing files: the only module that touches the file system.

Readers return plain DataFrames with every cell as text (so validation can point at the
exact cell that is wrong) and remember the file name in ``DataFrame.attrs["source"]``.
Writers are atomic: they write a temporary file beside the target and rename it, so an
interrupted run never leaves a half-written output, and they never touch their inputs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from .errors import CisEvalError, DataValidationError, Problem

__all__ = [
    "TABLE_NAMES",
    "atomic_write",
    "load",
    "load_trial",
    "read_table",
    "write_figure",
    "write_table",
    "write_text",
    "write_trial",
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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write text atomically (UTF-8, Unix line endings) and return the path."""
    with atomic_write(path) as fh:
        fh.write(text)
    return Path(path)


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a DataFrame atomically as CSV, Parquet or Excel, chosen by the extension.

    CSV floats are written with ``%.10g`` so files are byte-for-byte reproducible.
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

    Returns
    -------
    ValidationReport
        The typed tables (``.students``, ``.contacts``, ``.coordinators``) and any
        warnings.

    Raises
    ------
    DataValidationError
        If the folder has no students table, or the data break the contract.

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

    base = Path(folder)
    frames: dict[str, pd.DataFrame | None] = {}
    for name in TABLE_NAMES:
        found = [base / f"{name}{ext}" for ext in (".csv", ".xlsx", ".parquet")]
        path = next((f for f in found if f.is_file()), None)
        cmap = (column_map or {}).get(name)
        frames[name] = load(path, column_map=cmap) if path is not None else None
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


def _excel_text(value: Any) -> Any:
    """Render an Excel cell as the text a user typed (integral floats without '.0')."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def read_table(path: str | os.PathLike[str], *, sheet: str | int = 0) -> pd.DataFrame:
    """Read a CSV, TSV, Excel or Parquet file with every cell as text.

    Parameters
    ----------
    path : path-like
        The file.
    sheet : str or int, default 0
        Excel sheet name or position.

    Returns
    -------
    pandas.DataFrame
        Cells as strings (missing cells as NA); ``attrs["source"]`` is the file name.

    Raises
    ------
    DataValidationError
        If the file does not exist, has an unknown extension or cannot be parsed.
    """
    p = Path(path)
    name = p.name

    def fail(message: str, expected: str) -> DataValidationError:
        return DataValidationError([Problem(name, None, (), 0, message, expected)])

    if not p.is_file():
        raise fail("file not found", "an existing file")
    kind = READERS.get(p.suffix.lower())
    if kind is None:
        raise fail(f"unknown file type '{p.suffix}'", "a .csv, .tsv, .xlsx or .parquet file")
    try:
        if kind in ("csv", "tsv"):
            frame = pd.read_csv(
                p,
                dtype=str,
                sep="\t" if kind == "tsv" else ",",
                keep_default_na=False,
                na_values=NA_VALUES,
                skipinitialspace=True,
                encoding="utf-8-sig",
            )
        elif kind == "excel":
            raw = pd.read_excel(p, sheet_name=sheet, dtype=object)
            frame = raw.map(_excel_text).astype("string")
        else:
            raw = pd.read_parquet(p)
            frame = (
                raw.astype(object)
                .where(raw.notna(), None)
                .map(
                    lambda v: (
                        None
                        if v is None
                        else (v.strftime("%Y-%m-%d") if isinstance(v, pd.Timestamp) else str(v))
                    )
                )
                .astype("string")
            )
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise fail(
            f"could not be read as {kind} ({type(exc).__name__})", f"a readable {kind} file"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs["source"] = name
    return frame


def load(
    path: str | os.PathLike[str],
    *,
    column_map: Mapping[str, str] | None = None,
    sheet: str | int = 0,
) -> pd.DataFrame:
    """Read one table of the data contract from a file, renaming columns if asked.

    Parameters
    ----------
    path : path-like
        CSV, TSV, Excel (.xlsx) or Parquet file.
    column_map : mapping, optional
        The export's column names -> the contract's names, so a real export can be used
        without hand editing (e.g. ``{"StudentNumber": "student_id"}``).
    sheet : str or int, default 0
        Excel sheet.

    Returns
    -------
    pandas.DataFrame
        Cells as text, ready for :func:`cis_eval.validate`, which checks and types them.

    Examples
    --------
    >>> import tempfile, pathlib, os
    >>> import cis_eval as ce
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "roster.csv").write_text(os.linesep.join(["ID,school_id", "001,A"]))
    >>> ce.load(folder / "roster.csv", column_map={"ID": "student_id"})["student_id"].tolist()
    ['001']
    """
    frame = read_table(path, sheet=sheet)
    if column_map:
        missing = [k for k in column_map if k not in frame.columns]
        if missing:
            raise DataValidationError(
                [
                    Problem(
                        frame.attrs["source"],
                        k,
                        (),
                        0,
                        "column named in the column map is not in the file",
                        f"one of the file's columns: {', '.join(map(str, frame.columns))}",
                    )
                    for k in missing
                ]
            )
        source = frame.attrs["source"]
        frame = frame.rename(columns=dict(column_map))
        frame.attrs["source"] = source
        # validation names the user's own column beside the contract's
        frame.attrs["renamed"] = {new: old for old, new in column_map.items()}
    return frame
