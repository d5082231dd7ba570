"""Implementation fidelity from the coordinators' service log.

Dosage (contacts, hours, weeks of service), caseloads, service mix and the service
contrast between the program and control groups, measured from the monitoring log that
site coordinators keep, one row per contact. Each school and coordinator is compared
with the published averages of the Communities In Schools evaluation (Corrin et al.
2015: about 19 contacts, 16 hours and 30 weeks per case-managed student, caseloads of
about 84, 44% of coordinator time on Level 2) and with the user's own targets.

The aggregation is one set of DuckDB SQL queries that runs over a pandas DataFrame or
reads a CSV or Parquet file directly, so a network-wide log of tens of millions of
contacts is summarised without loading it into pandas. Tables meant for publication
suppress cells describing fewer than ``min_cell`` students (see :mod:`cis_eval.privacy`).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import sys
import tempfile
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import numpy as np
import pandas as pd

from .._typing import check_option
from ..errors import DataValidationError, DesignWarning, Problem
from ..outcomes import DEFAULT_CHRONIC_THRESHOLD, outcome_arrays
from ..present.privacy import DEFAULT_MIN_CELL, SUPPRESSED, check_min_cell, suppression_mask
from ..present.table import Table
from ..schema import COLUMNS, MODES, OUTCOMES, SERVICE_TYPES

if TYPE_CHECKING:
    import duckdb
    from matplotlib.axes import Axes

    from ..present.report import Report

__all__ = [
    "FidelityResult",
    "FidelityTargets",
    "Target",
    "fidelity",
    "published_targets",
    "service_receipt",
]

Level = Literal[
    "student",
    "school",
    "coordinator",
    "arm",
    "dosage",
    "benchmarks",
    "service_mix",
    "school_service_mix",
    "weekly",
    "dose_response",
]
LEVELS: tuple[str, ...] = get_args(Level)  # the same list, so the two cannot disagree
PlotKind = Literal["dosage", "benchmarks", "weekly", "dose_response"]
CaseloadGuide = Literal["none", "intensive", "standard"]
Direction = Literal["at_least", "at_most"]

_SVC: tuple[str, ...] = tuple(SERVICE_TYPES)
_MODES: tuple[str, ...] = tuple(MODES)
_CONTACT_COLUMNS = (
    "contact_id",
    "student_id",
    "coordinator_id",
    "date",
    "minutes",
    "service_type",
    "tier",
    "mode",
)
_MAX_WEEKS = 60  # one school year; the week bitmask holds 64
_DUCKDB_MEMORY = "2GB"  # DuckDB spills to a temporary folder beyond this
_LONG_LOG = 1_000_000  # rows from which a progress bar is worth showing
_DAYS_PER_MONTH = 365.25 / 12


# ----------------------------------------------------------------------------- measures


@dataclass(frozen=True, slots=True)
class _Measure:
    label: str
    short: str
    direction: Direction
    statistic: Literal["mean", "median", "share"]
    digits: int
    level: Literal["student", "coordinator"]
    meaning: str


MEASURES: dict[str, _Measure] = {
    "contacts": _Measure(
        "Level 2 contacts per student",
        "contacts",
        "at_least",
        "mean",
        1,
        "student",
        "Logged Level 2 (case-managed) contacts in the year, per student reached. Two "
        "contacts on the same day count as two.",
    ),
    "hours": _Measure(
        "Hours of Level 2 service per student",
        "hours",
        "at_least",
        "mean",
        1,
        "student",
        "Total minutes of the student's Level 2 contacts, divided by 60.",
    ),
    "weeks": _Measure(
        "Weeks of service (first to last contact)",
        "weeks",
        "at_least",
        "mean",
        1,
        "student",
        "Weeks from the student's first to last Level 2 contact, breaks included; a "
        "student with a single contact has 0 weeks. The study's 30 weeks is this span.",
    ),
    "active_weeks": _Measure(
        "Weeks with at least one contact",
        "active weeks",
        "at_least",
        "mean",
        1,
        "student",
        "Calendar weeks (Monday to Sunday) in which the student had at least one Level 2 "
        "contact; weeks without contacts, such as the winter break, do not count.",
    ),
    "contacts_per_month": _Measure(
        "Contacts per month of service",
        "contacts per month",
        "at_least",
        "mean",
        1,
        "student",
        "Level 2 contacts divided by the months from first to last contact (a span "
        "shorter than a month counts as one month).",
    ),
    "days_to_first_contact": _Measure(
        "Days from random assignment to first contact",
        "days to first contact",
        "at_most",
        "median",
        0,
        "student",
        "Calendar days from the student's random assignment to the first Level 2 "
        "contact (median across students: a few late starts do not dominate it).",
    ),
    "share_reached": _Measure(
        "Share of program students reached",
        "share reached",
        "at_least",
        "share",
        0,
        "student",
        "Program-group students with at least one Level 2 contact, as a share of all "
        "program-group students (the caseload a school's coordinators were given).",
    ),
    "caseload": _Measure(
        "Coordinator caseload (students)",
        "caseload",
        "at_most",
        "mean",
        0,
        "coordinator",
        "Students on a coordinator's Level 2 caseload as reported in the coordinators "
        "file (it includes students outside the study); where none is reported, the "
        "program students with contacts logged by that coordinator.",
    ),
    "level2_time_share": _Measure(
        "Share of coordinator time on Level 2",
        "time on Level 2",
        "at_least",
        "mean",
        0,
        "coordinator",
        "Share of the coordinator's working time spent on Level 2 case management, as "
        "reported in the coordinators file.",
    ),
}
"""Measures that can carry a target: label, direction and the statistic compared."""

_SCHOOL_FLAGS = (
    "contacts",
    "hours",
    "weeks",
    "active_weeks",
    "contacts_per_month",
    "days_to_first_contact",
    "share_reached",
)
_COORDINATOR_FLAGS = ("contacts", "hours", "share_reached", "caseload", "level2_time_share")
_DOSAGE = ("contacts", "hours", "weeks", "active_weeks", "contacts_per_month")
_STUDENT_COLUMN = {"weeks": "span_weeks"}  # measure -> student-level column


def _student_column(measure: str) -> str:
    return _STUDENT_COLUMN.get(measure, measure)


# ----------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class Target:
    """One target: a minimum, a maximum or a range for one measure.

    Attributes
    ----------
    measure : str
        A key of :data:`MEASURES`.
    low, high : float or None
        The value must be at least ``low`` and at most ``high`` (either may be None).
    source : str
        Where the target comes from (shown in reports).
    """

    measure: str
    low: float | None
    high: float | None
    source: str

    def describe(self) -> str:
        """The target as text, e.g. ``"at least 19"`` or ``"50 to 100"``."""
        share = self.measure in ("share_reached", "level2_time_share")

        def f(v: float) -> str:
            return f"{v:.0%}" if share else f"{v:g}"

        if self.low is not None and self.high is not None:
            return f"{f(self.low)} to {f(self.high)}"
        if self.low is not None:
            return f"at least {f(self.low)}"
        assert self.high is not None
        return f"at most {f(self.high)}"

    def status(self, value: float, tolerance: float) -> str:
        """``"meets"``, ``"near"`` (within ``tolerance``), ``"below"``, ``"above"`` or ``""``."""
        if value is None or not np.isfinite(value):
            return ""
        if self.low is not None and value < self.low:
            return "near" if value >= self.low * (1 - tolerance) else "below"
        if self.high is not None and value > self.high:
            return "near" if value <= self.high * (1 + tolerance) else "above"
        return "meets"


@dataclass(frozen=True, slots=True)
class FidelityTargets:
    """The benchmarks every school and coordinator is compared with.

    Attributes
    ----------
    study : tuple of Target
        Published averages of the CIS evaluation (shipped with cis_eval).
    user : tuple of Target
        The user's own targets (they take precedence in flags).
    guide : tuple of Target
        The practice guide's caseload range, when that check is switched on.
    tolerance : float
        Values within this share of a target are "near" rather than short of it.
    name : str
        Name of the user's targets (shown in reports).
    sources : tuple of str
        Full references of the published benchmarks used.
    """

    study: tuple[Target, ...]
    user: tuple[Target, ...] = ()
    guide: tuple[Target, ...] = ()
    tolerance: float = 0.10
    name: str = "Your targets"
    sources: tuple[str, ...] = ()

    def get(self, measure: str, which: Literal["study", "user", "guide"]) -> Target | None:
        """The target of one kind for ``measure``, or None."""
        for t in getattr(self, which):
            if t.measure == measure:
                return cast(Target, t)
        return None

    def effective(self, measure: str) -> Target | None:
        """The target flags use: the user's if set, else the study's."""
        return self.get(measure, "user") or self.get(measure, "study")

    def with_user(self, mapping: Mapping[str, Any], *, source: str = "targets") -> FidelityTargets:
        """A copy with the user's targets read from a mapping (e.g. a parsed TOML file).

        Parameters
        ----------
        mapping : mapping
            ``measure = number`` (the measure's usual direction: at least, or at most for
            caseload and days to first contact) or ``measure = {min = .., max = ..}``;
            optional ``name`` and ``tolerance``. A ``[targets]`` table is also accepted.
        source : str
            File name, for error messages.

        Returns
        -------
        FidelityTargets
        """
        data = dict(mapping)
        if isinstance(data.get("targets"), Mapping):
            extra = {k: v for k, v in data.items() if k != "targets"}
            data = {**dict(data["targets"]), **extra}
        name = str(data.pop("name", self.name))
        tolerance = data.pop("tolerance", self.tolerance)
        problems = []
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, (int, float))
            or not 0 <= tolerance < 1
        ):
            problems.append(
                Problem(source, "tolerance", (), 0, f"{tolerance!r} is not allowed", "0 to 0.5")
            )
            tolerance = self.tolerance
        user = []
        for key, raw in data.items():
            if key not in MEASURES:
                problems.append(
                    Problem(
                        source,
                        str(key),
                        (),
                        0,
                        "unknown target",
                        "one of " + ", ".join(MEASURES) + ", name, tolerance",
                    )
                )
                continue
            low: Any
            high: Any
            if isinstance(raw, Mapping):
                bad = set(raw) - {"min", "max"}
                low, high = raw.get("min"), raw.get("max")
                if bad or (low is None and high is None):
                    problems.append(
                        Problem(source, key, (), 0, "not understood", "a number or {min, max}")
                    )
                    continue
            elif MEASURES[key].direction == "at_least":
                low, high = raw, None
            else:
                low, high = None, raw
            ok = True
            for v in (low, high):
                share = key in ("share_reached", "level2_time_share")
                if v is not None and (
                    isinstance(v, bool)
                    or not isinstance(v, (int, float))
                    or not math.isfinite(v)
                    or v < 0
                    or (share and v > 1)
                ):
                    expected = "a proportion between 0 and 1" if share else "a number >= 0"
                    problems.append(Problem(source, key, (), 0, f"{v!r} is not allowed", expected))
                    ok = False
            if ok and low is not None and high is not None and low > high:
                problems.append(Problem(source, key, (), 0, "min above max", "min <= max"))
                ok = False
            if ok:
                user.append(
                    Target(
                        key,
                        None if low is None else float(low),
                        None if high is None else float(high),
                        name,
                    )
                )
        if problems:
            raise DataValidationError(problems)
        return FidelityTargets(
            self.study, tuple(user), self.guide, float(tolerance), name, self.sources
        )

    def with_guide(self, guide: CaseloadGuide) -> FidelityTargets:
        """A copy with the practice guide's caseload range switched on (or off)."""
        check_option("caseload_guide", guide, ("none", "intensive", "standard"))
        pg = _package_targets()["practice_guide"]
        short = str(pg["short"])
        if guide == "intensive":
            g: tuple[Target, ...] = (Target("caseload", None, float(pg["intensive_max"]), short),)
        elif guide == "standard":
            g = (Target("caseload", float(pg["standard_min"]), float(pg["standard_max"]), short),)
        else:
            g = ()
        sources = tuple(s for s in self.sources if s != pg["source"])
        if g:
            sources += (str(pg["source"]),)
        return FidelityTargets(self.study, self.user, g, self.tolerance, self.name, sources)


def _package_targets() -> dict[str, Any]:
    text = (
        resources.files("cis_eval").joinpath("_resources/fidelity_targets.toml").read_text("utf-8")
    )
    return tomllib.loads(text)


def published_targets() -> FidelityTargets:
    """The published benchmarks of the CIS evaluation, shipped with cis_eval.

    Returns
    -------
    FidelityTargets
        About 19 contacts, 16 hours and 30 weeks of service per case-managed student,
        caseloads of about 84 and 44% of coordinator time on Level 2 (Corrin et al. 2015).

    Examples
    --------
    >>> import cis_eval as ce
    >>> t = ce.published_targets()
    >>> t.get("contacts", "study").describe()
    'at least 19'
    """
    data = _package_targets()
    study = data["study"]
    out = []
    for key, value in study["targets"].items():
        m = MEASURES[key]
        low, high = (float(value), None) if m.direction == "at_least" else (None, float(value))
        out.append(Target(key, low, high, str(study["short"])))
    return FidelityTargets(tuple(out), sources=(str(study["source"]),))


# ----------------------------------------------------------------------------- input checks


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        source = str(frame.attrs.get("source", name))
        raise DataValidationError(
            [
                Problem(source, c, (), 0, "required column is missing", f"a column named '{c}'")
                for c in missing
            ]
        )


def _id_text(s: pd.Series) -> pd.Series:
    """Identifiers as stripped text, whatever their dtype (categorical, numbers, strings)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    out = s.astype("string").str.strip()
    return out.mask(out.eq(""))


def _rows(mask: np.ndarray) -> tuple[tuple[int, ...], int]:
    pos = np.flatnonzero(mask)
    return tuple(int(p) + 2 for p in pos[:5]), int(pos.size)


def _dates(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return pd.to_datetime(s).astype("datetime64[s]")
    txt = _id_text(s)
    parsed = pd.to_datetime(txt, errors="coerce", format="ISO8601")
    retry = parsed.isna() & txt.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(txt[retry], errors="coerce", format="%m/%d/%Y")
    return parsed.astype("datetime64[s]")


def _roster(students: pd.DataFrame) -> pd.DataFrame:
    """The few student columns fidelity needs, typed; problems raised together."""
    if not isinstance(students, pd.DataFrame):
        raise TypeError(f"students must be a pandas DataFrame, got {type(students).__name__}")
    _require(students, ("student_id", "school_id", "treatment"), "students")
    source = str(students.attrs.get("source", "students"))
    problems: list[Problem] = []
    sid = _id_text(students["student_id"])
    school = _id_text(students["school_id"])
    z = pd.to_numeric(students["treatment"], errors="coerce")
    for col, bad, msg, expected in (
        ("student_id", sid.isna(), "{n} empty cell(s)", "a value in every row"),
        (
            "student_id",
            sid.duplicated(keep=False) & sid.notna(),
            "{n} row(s) repeat a student identifier",
            "one row per student (identifiers are not shown, for privacy)",
        ),
        ("school_id", school.isna(), "{n} empty cell(s)", "a value in every row"),
        ("treatment", ~z.isin([0, 1]), "{n} value(s) other than 0 or 1", "0 or 1 (1 = program)"),
    ):
        rows, n = _rows(bad.to_numpy(dtype=bool, na_value=True))
        if n:
            problems.append(Problem(source, col, rows, n, msg.replace("{n}", f"{n:,}"), expected))
    if "assignment_date" in students.columns:
        when = _dates(students["assignment_date"])
        raw = students["assignment_date"]
        bad_dates = np.asarray((when.isna() & raw.notna()).to_numpy(), dtype=bool).copy()
        if not pd.api.types.is_datetime64_any_dtype(raw):
            bad_dates &= _id_text(raw).notna().to_numpy(dtype=bool, na_value=False)
        rows, n = _rows(bad_dates)
        if n:
            problems.append(
                Problem(
                    source, "assignment_date", rows, n, f"{n:,} value(s) are not dates", "a date"
                )
            )
    else:
        when = pd.Series(pd.NaT, index=students.index, dtype="datetime64[s]")
    if problems:
        raise DataValidationError(problems)
    return pd.DataFrame(
        {
            "_pos": np.arange(len(students), dtype=np.int64),
            "student_id": sid.to_numpy(dtype=object),
            "school_id": school.to_numpy(dtype=object),
            "treatment": z.to_numpy(dtype=np.int64),
            "assignment_date": when.to_numpy(),
        }
    )


def _staff(coordinators: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["coordinator_id", "school_id", "fte", "reported_caseload", "level2_time_share"]
    if coordinators is None:
        return pd.DataFrame({c: pd.Series(dtype=object if "_id" in c else float) for c in cols})
    if not isinstance(coordinators, pd.DataFrame):
        raise TypeError(
            f"coordinators must be a pandas DataFrame, got {type(coordinators).__name__}"
        )
    _require(coordinators, ("coordinator_id",), "coordinators")
    k = coordinators
    out = pd.DataFrame({"coordinator_id": _id_text(k["coordinator_id"]).to_numpy(dtype=object)})
    out["school_id"] = _id_text(k["school_id"]).to_numpy(dtype=object) if "school_id" in k else None
    for src, dst in (
        ("fte", "fte"),
        ("caseload", "reported_caseload"),
        ("level2_time_share", "level2_time_share"),
    ):
        out[dst] = (
            pd.to_numeric(k[src], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if src in k
            else np.nan
        )
    return out.dropna(subset=["coordinator_id"]).drop_duplicates("coordinator_id")


# ----------------------------------------------------------------------------- the SQL engine


def _q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _norm_category(value: str) -> str:
    """The same normalisation as validation: case, spaces and dashes, British spelling."""
    s = re.sub(r"[\s/\-&]+", "_", value.strip().lower())
    return {"behaviour": "behavior", "social_and_life_skills": "social_life_skills"}.get(s, s)


@dataclass
class _Log:
    """The contacts log as a DuckDB view ``log`` with normalised columns."""

    con: duckdb.DuckDBPyConnection
    source: str
    kind: str  # "frame", "parquet" or "csv"
    has_row: bool
    raw_categories: dict[str, dict[str, int | None]]
    sid_text: bool = True  # the log's student key is text (no cast needed to join)
    sid_codes: pd.Index | None = None  # categories, when the key is a categorical's codes
    cid_text: bool = True
    cid_codes: pd.Index | None = None
    trimmed: bool = True  # text identifiers were trimmed (or needed no trimming)

    def sid(self, expr: str) -> str:
        """SQL for a log student key, comparable with ``roster.sid_key``."""
        return expr if self.sid_text or self.sid_codes is not None else f"CAST({expr} AS VARCHAR)"

    def roster_key(self, ids: pd.Series) -> Any:
        """The roster's join key: the identifier, or its code among the log's categories."""
        if self.sid_codes is None:
            return ids.to_numpy(dtype=object)
        codes = pd.Categorical(ids, categories=self.sid_codes).codes.astype(np.int32)
        return pd.arrays.IntegerArray(codes, codes < 0)

    def coordinator(self, expr: str) -> tuple[str, str]:
        """SQL giving a coordinator key as text, and the join that provides it."""
        if self.cid_codes is not None:
            return "m.coordinator_id", f"LEFT JOIN cid_map m ON m.code = {expr}"
        return (expr if self.cid_text else f"CAST({expr} AS VARCHAR)"), ""


@contextmanager
def _engine() -> Iterator[duckdb.DuckDBPyConnection]:
    import duckdb

    tmp = tempfile.mkdtemp(prefix="cis_eval_duckdb_")
    con = duckdb.connect(
        config={
            "memory_limit": _DUCKDB_MEMORY,
            "temp_directory": tmp,
            "preserve_insertion_order": False,
        }
    )
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    frame: pd.DataFrame = con.execute(sql).df()
    return frame


def _open_log(
    con: duckdb.DuckDBPyConnection,
    contacts: pd.DataFrame | str | os.PathLike[str],
    column_map: Mapping[str, str] | None,
    *,
    trim: bool = False,
) -> _Log:
    """Make the view ``log``: one row per contact, typed and with coded categories.

    Identifiers in a Parquet file are trimmed only when ``trim`` is set: trimming 25
    million strings costs a second per pass, so :func:`_check_log` asks for it only
    when it finds keys with stray spaces (CSV text is always trimmed, once).
    """
    cmap = dict(column_map or {})
    coded: dict[str, tuple[pd.Index, np.ndarray]] = {}
    if isinstance(contacts, pd.DataFrame):
        source = str(contacts.attrs.get("source", "contacts"))
        frame = contacts.rename(columns=cmap) if cmap else contacts
        _require(frame, _CONTACT_COLUMNS, source)
        # Categorical columns go in as their integer codes with a small lookup: DuckDB
        # would otherwise rebuild an enum of every category on each pass over the log.
        cols: dict[str, Any] = {}
        for c in _CONTACT_COLUMNS:
            s = frame[c]
            if isinstance(s.dtype, pd.CategoricalDtype) and c != "contact_id":
                text = pd.Index(_id_text(pd.Series(s.cat.categories.astype(object))))
                if not (text.has_duplicates or text.hasnans):
                    codes = np.asarray(s.cat.codes, dtype=np.int32)
                    cols[c] = pd.arrays.IntegerArray(codes, codes < 0)
                    used = np.bincount(codes[codes >= 0], minlength=len(text)) > 0
                    coded[c] = (text, used)
                    continue
            cols[c] = s
        slim = pd.DataFrame(cols, index=pd.RangeIndex(len(frame)))
        con.register("contacts_src", slim)
        rel, kind, has_row = "contacts_src", "frame", False
        raw = {c: c for c in _CONTACT_COLUMNS}
    elif isinstance(contacts, (str, os.PathLike)):
        path = Path(contacts)
        source = path.name
        if not path.is_file():
            raise DataValidationError(
                [Problem(source, None, (), 0, "file not found", "an existing file")]
            )
        suffix = path.suffix.lower()
        esc = _lit(str(path))
        if suffix in (".parquet", ".pq"):
            rel, kind, has_row = f"read_parquet({esc}, file_row_number = true)", "parquet", True
        elif suffix in (".csv", ".txt", ".tsv"):
            from ..io import NA_VALUES

            nulls = ", ".join(_lit(v) for v in NA_VALUES if v)
            delim = "\\t" if suffix == ".tsv" else ","
            rel = (
                f"read_csv({esc}, all_varchar = true, header = true, delim = {_lit(delim)}, "
                f"nullstr = [{nulls}])"
            )
            kind, has_row = "csv", False
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
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        except Exception as exc:  # duckdb raises its own error family for unreadable files
            raise DataValidationError(
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
            ) from exc
        present = {str(r[0]) for r in described}
        inverse = {v: k for k, v in cmap.items()}
        missing = [k for k in cmap if k not in present]
        if missing:
            raise DataValidationError(
                [
                    Problem(
                        source,
                        k,
                        (),
                        0,
                        "column named in the column map is not in the file",
                        "one of the file's columns: " + ", ".join(sorted(present)),
                    )
                    for k in missing
                ]
            )
        raw = {c: inverse.get(c, c) for c in _CONTACT_COLUMNS}
        absent = [c for c, r in raw.items() if r not in present]
        if absent:
            raise DataValidationError(
                [
                    Problem(
                        source,
                        c,
                        (),
                        0,
                        "required column is missing",
                        f"a column named '{c}' ({COLUMNS['contacts'][c].description})",
                    )
                    for c in absent
                ]
            )
    else:
        raise TypeError(
            f"contacts must be a DataFrame or a path to a CSV or Parquet file, got "
            f"{type(contacts).__name__}"
        )
    types = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}

    def text_expr(c: str) -> str:
        col = _q(raw[c])
        if types[raw[c]] != "VARCHAR" or kind == "frame" or (kind == "parquet" and not trim):
            return col
        return f"nullif(trim({col}), '')"

    def date_expr(c: str) -> str:
        col, t = _q(raw[c]), types[raw[c]]
        if t == "DATE":
            return col
        if t.startswith("TIMESTAMP"):
            return f"CAST({col} AS DATE)"
        if t == "VARCHAR":
            s = f"trim({col})"
            return (
                f"coalesce(TRY_CAST({s} AS DATE), CAST(TRY_CAST({s} AS TIMESTAMP) AS DATE), "
                f"CAST(try_strptime({s}, '%m/%d/%Y') AS DATE))"
            )
        return "CAST(NULL AS DATE)"

    def num_expr(c: str) -> str:
        col, t = _q(raw[c]), types[raw[c]]
        if t == "VARCHAR":
            return f"TRY_CAST(replace(trim({col}), ',', '') AS DOUBLE)"
        if any(k in t for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")):
            return f"CAST({col} AS DOUBLE)"
        return "CAST(NULL AS DOUBLE)"

    cats: dict[str, dict[str, int | None]] = {}

    def cat_expr(c: str, codes: tuple[str, ...]) -> str:
        col = _q(raw[c])
        if c in coded:
            text, used = coded[c]
            norm = {i: _norm_category(str(v)) for i, v in enumerate(text)}
            to = {i: (codes.index(n) if n in codes else None) for i, n in norm.items()}
            cats[c] = {str(text[i]): to[i] for i in range(len(text)) if used[i]}
            whens = " ".join(f"WHEN {i} THEN {j}" for i, j in to.items() if j is not None)
            return f"CAST(CASE {col} {whens} END AS TINYINT)" if whens else "CAST(NULL AS TINYINT)"
        values = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT CAST({col} AS VARCHAR) FROM {rel} WHERE {col} IS NOT NULL"
            ).fetchall()
        ]
        mapping = {str(v): _norm_category(str(v)) for v in values}
        cats[c] = {v: (codes.index(n) if n in codes else None) for v, n in mapping.items()}
        whens = " ".join(
            f"WHEN {_lit(v)} THEN {i}" for v, i in sorted(cats[c].items()) if i is not None
        )
        if not whens:
            return "CAST(NULL AS TINYINT)"
        key = (
            col
            if types[raw[c]] == "VARCHAR" or types[raw[c]].startswith("ENUM")
            else (f"CAST({col} AS VARCHAR)")
        )
        return f"CAST(CASE {key} {whens} END AS TINYINT)"

    select = [
        f"{text_expr('student_id')} AS student_id",
        f"{text_expr('coordinator_id')} AS coordinator_id",
        f"{_q(raw['contact_id'])} AS contact_id",
        f"{date_expr('date')} AS date",
        f"{_q(raw['date'])} AS raw_date",
        f"{num_expr('minutes')} AS minutes",
        f"{_q(raw['minutes'])} AS raw_minutes",
        f"{num_expr('tier')} AS tier",
        f"{_q(raw['tier'])} AS raw_tier",
        f"{cat_expr('service_type', _SVC)} AS svc",
        f"{_q(raw['service_type'])} AS raw_svc",
        f"{cat_expr('mode', _MODES)} AS mode",
        f"{_q(raw['mode'])} AS raw_mode",
    ]
    if kind == "parquet":
        select.append("file_row_number AS _row")
    body = ", ".join(select) + f" FROM {rel}"
    if kind == "csv":
        # Parse the text once: every later pass reads the typed table.
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"CREATE TEMP TABLE log AS SELECT row_number() OVER () - 1 AS _row, {body}")
        con.execute("SET preserve_insertion_order = false")
        has_row = True
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW log AS SELECT {body}")
    out = _Log(con, source, kind, has_row, cats)
    out.trimmed = kind == "csv" or trim
    out.sid_text = types[raw["student_id"]] == "VARCHAR"
    out.cid_text = types[raw["coordinator_id"]] == "VARCHAR"
    if "student_id" in coded:
        out.sid_codes = coded["student_id"][0]
    if "coordinator_id" in coded:
        out.cid_codes = coded["coordinator_id"][0]
        con.register(
            "cid_map",
            pd.DataFrame(
                {
                    "code": np.arange(len(out.cid_codes), dtype=np.int32),
                    "coordinator_id": out.cid_codes.to_numpy(dtype=object),
                }
            ),
        )
    return out


def _problem_rows(log: _Log, condition: str, join: str = "") -> tuple[int, ...]:
    """Spreadsheet row numbers (header = row 1) of the first five rows meeting a condition."""
    con = log.con
    if log.has_row:
        sql = f"SELECT l._row FROM log l {join} WHERE {condition} ORDER BY l._row LIMIT 5"
        rows = con.execute(sql).fetchall()
    else:
        con.execute("SET preserve_insertion_order = true")
        try:
            sql = (
                "SELECT l._row FROM (SELECT row_number() OVER () - 1 AS _row, * FROM log) l "
                f"{join} WHERE {condition} ORDER BY l._row LIMIT 5"
            )
            rows = con.execute(sql).fetchall()
        finally:
            con.execute("SET preserve_insertion_order = false")
    return tuple(int(r[0]) + 2 for r in rows)


def _school_year_from(hist: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The August-to-July school year containing the median contact date (as validation)."""
    h = hist.dropna(subset=["date"]).groupby("date")["n"].sum().sort_index()
    cum = h.cumsum().to_numpy()
    total = int(cum[-1])
    dates = pd.to_datetime(h.index)
    lo = dates[int(np.searchsorted(cum, (total + 1) // 2))]
    hi = dates[int(np.searchsorted(cum, total // 2 + 1))]
    med = lo + (hi - lo) / 2
    start = med.year if med.month >= 8 else med.year - 1
    return pd.Timestamp(f"{start}-08-01"), pd.Timestamp(f"{start + 1}-07-31")


def _sid_key(log: _Log, alias: str = "l") -> str:
    return log.sid(f"{alias}.student_id")


def _needs_trim(log: _Log, cube: pd.DataFrame) -> bool:
    """Whether a Parquet log has identifiers with stray spaces (or empty strings)."""
    if log.trimmed or not len(cube):
        return False
    dirty = "WHERE v <> trim(v) OR v = ''"
    if log.sid_text and int(cube["sid_unknown"].sum()):
        n = log.con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT l.student_id AS v FROM log l ANTI JOIN "
            f"roster r ON r.sid_key = l.student_id WHERE l.student_id IS NOT NULL) {dirty}"
        ).fetchall()[0][0]
        if n:
            return True
    if log.cid_text:
        n = log.con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT coordinator_id AS v FROM log) {dirty}"
        ).fetchall()[0][0]
        if n:
            return True
    return False


def _check_log(
    log: _Log,
    school_year: tuple[pd.Timestamp, pd.Timestamp] | None,
    coordinators: pd.DataFrame,
) -> tuple[pd.DataFrame, tuple[pd.Timestamp, pd.Timestamp] | None, list[Problem], list[Problem]]:
    """First pass: validity counts, the date x tier x service x mode cube and arm per row."""
    con = log.con
    key = _sid_key(log)
    cube = _fetch(
        con,
        f"""
        SELECT r.treatment AS arm, l.date, l.tier, l.svc, l.mode,
            count(*) AS n,
            sum(l.minutes) AS minutes,
            count(*) FILTER (WHERE l.student_id IS NULL) AS sid_missing,
            count(*) FILTER (WHERE l.student_id IS NOT NULL AND r.student_id IS NULL)
                AS sid_unknown,
            count(*) FILTER (WHERE l.coordinator_id IS NULL) AS cid_missing,
            count(*) FILTER (WHERE l.contact_id IS NULL) AS contact_missing,
            count(*) FILTER (WHERE l.raw_date IS NULL) AS date_missing,
            count(*) FILTER (WHERE l.date IS NULL AND l.raw_date IS NOT NULL) AS date_bad,
            count(*) FILTER (WHERE l.raw_minutes IS NULL) AS minutes_missing,
            count(*) FILTER (WHERE l.minutes IS NULL AND l.raw_minutes IS NOT NULL)
                AS minutes_bad,
            count(*) FILTER (WHERE l.minutes <> round(l.minutes)) AS minutes_fraction,
            count(*) FILTER (WHERE l.minutes < 1 OR l.minutes > 480) AS minutes_range,
            count(*) FILTER (WHERE l.raw_tier IS NULL) AS tier_missing,
            count(*) FILTER (WHERE l.raw_tier IS NOT NULL AND (l.tier IS NULL
                OR l.tier NOT IN (1, 2))) AS tier_bad,
            count(*) FILTER (WHERE l.raw_svc IS NULL) AS svc_missing,
            count(*) FILTER (WHERE l.raw_svc IS NOT NULL AND l.svc IS NULL) AS svc_bad,
            count(*) FILTER (WHERE l.raw_mode IS NULL) AS mode_missing,
            count(*) FILTER (WHERE l.raw_mode IS NOT NULL AND l.mode IS NULL) AS mode_bad
        FROM log l LEFT JOIN roster r ON r.sid_key = {key}
        GROUP BY ALL
        """,
    )
    src = log.source
    errors: list[Problem] = []
    notes: list[Problem] = []
    total = int(cube["n"].sum()) if len(cube) else 0
    if total == 0:
        errors.append(
            Problem(src, None, (), 0, "the contacts log has no rows", "one row per logged contact")
        )
        return cube, school_year, errors, notes

    def add(column: str, count_col: str, condition: str, message: str, expected: str) -> None:
        n = int(cube[count_col].sum())
        if n:
            rows = _problem_rows(log, condition)
            errors.append(Problem(src, column, rows, n, message.replace("{n}", f"{n:,}"), expected))

    def shown(column: str) -> str:
        bad = sorted(v for v, i in log.raw_categories.get(column, {}).items() if i is None)
        return (" (e.g. " + ", ".join(repr(b[:30]) for b in bad[:3]) + ")") if bad else ""

    every = "a value in every row"
    add("contact_id", "contact_missing", "l.contact_id IS NULL", "{n} empty cell(s)", every)
    add("student_id", "sid_missing", "l.student_id IS NULL", "{n} empty cell(s)", every)
    add("coordinator_id", "cid_missing", "l.coordinator_id IS NULL", "{n} empty cell(s)", every)
    add("date", "date_missing", "l.raw_date IS NULL", "{n} empty cell(s)", every)
    add(
        "date",
        "date_bad",
        "l.date IS NULL AND l.raw_date IS NOT NULL",
        "{n} value(s) are not dates",
        "a date such as 2012-09-14 (ISO 8601) or 09/14/2012",
    )
    add("minutes", "minutes_missing", "l.raw_minutes IS NULL", "{n} empty cell(s)", every)
    add(
        "minutes",
        "minutes_bad",
        "l.minutes IS NULL AND l.raw_minutes IS NOT NULL",
        "{n} value(s) are not numbers",
        "a number",
    )
    add(
        "minutes",
        "minutes_fraction",
        "l.minutes <> round(l.minutes)",
        "{n} value(s) are not whole numbers",
        "a whole number",
    )
    add(
        "minutes",
        "minutes_range",
        "l.minutes < 1 OR l.minutes > 480",
        "{n} value(s) outside the allowed range",
        "minutes between 1 and 480 (a contact longer than a school day is almost "
        "certainly a data-entry error)",
    )
    add("tier", "tier_missing", "l.raw_tier IS NULL", "{n} empty cell(s)", every)
    add(
        "tier",
        "tier_bad",
        "l.raw_tier IS NOT NULL AND (l.tier IS NULL OR l.tier NOT IN (1, 2))",
        "{n} value(s) not allowed",
        "1 (school-wide) or 2 (case-managed)",
    )
    add("service_type", "svc_missing", "l.raw_svc IS NULL", "{n} empty cell(s)", every)
    add(
        "service_type",
        "svc_bad",
        "l.raw_svc IS NOT NULL AND l.svc IS NULL",
        "{n} value(s) not allowed" + shown("service_type"),
        "one of " + ", ".join(_SVC),
    )
    add("mode", "mode_missing", "l.raw_mode IS NULL", "{n} empty cell(s)", every)
    add(
        "mode",
        "mode_bad",
        "l.raw_mode IS NOT NULL AND l.mode IS NULL",
        "{n} value(s) not allowed" + shown("mode"),
        "one of " + ", ".join(_MODES),
    )
    n_unknown = int(cube["sid_unknown"].sum())
    if n_unknown:
        join = f"LEFT JOIN roster r ON r.sid_key = {_sid_key(log)}"
        rows = _problem_rows(log, "l.student_id IS NOT NULL AND r.student_id IS NULL", join)
        n_students = int(
            con.execute(
                f"SELECT count(DISTINCT l.student_id) FROM log l ANTI JOIN roster r "
                f"ON r.sid_key = {key} WHERE l.student_id IS NOT NULL"
            ).fetchall()[0][0]
        )
        errors.append(
            Problem(
                src,
                "student_id",
                rows,
                n_unknown,
                f"{n_unknown:,} contact(s) for {n_students:,} student(s) not in the roster",
                "every contact to be for a student in the students table",
            )
        )
    # Duplicate contact identifiers would count one contact twice.
    n_dup = int(
        con.execute(
            "SELECT count(*) - count(DISTINCT contact_id) FROM log WHERE contact_id IS NOT NULL"
        ).fetchall()[0][0]
    )
    if n_dup:
        cond = (
            "l.contact_id IN (SELECT contact_id FROM log WHERE contact_id IS NOT NULL "
            "GROUP BY contact_id HAVING count(*) > 1)"
        )
        rows = _problem_rows(log, cond)
        n_rows = int(
            con.execute(
                "SELECT coalesce(sum(c), 0) FROM (SELECT count(*) AS c FROM log "
                "WHERE contact_id IS NOT NULL GROUP BY contact_id HAVING count(*) > 1)"
            ).fetchall()[0][0]
        )
        errors.append(
            Problem(
                src,
                "contact_id",
                rows,
                n_rows,
                f"{n_rows:,} row(s) repeat a contact identifier",
                "one row per contact",
            )
        )
    # School year, and dates outside it.
    dated = cube.dropna(subset=["date"])
    if school_year is None and len(dated):
        school_year = _school_year_from(dated)
    if school_year is not None and len(dated):
        lo, hi = school_year
        d = pd.to_datetime(dated["date"])
        n_out = int(dated.loc[(d < lo) | (d > hi), "n"].sum())
        if n_out:
            cond = f"l.date < DATE '{lo:%Y-%m-%d}' OR l.date > DATE '{hi:%Y-%m-%d}'"
            errors.append(
                Problem(
                    src,
                    "date",
                    _problem_rows(log, cond),
                    n_out,
                    f"{n_out:,} date(s) outside the school year",
                    f"dates from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}",
                )
            )
    if len(coordinators):
        con.register("staff", coordinators)
        text, join = log.coordinator("g.ck")
        per = _fetch(
            con,
            f"SELECT g.ck, {text} AS coordinator_id, g.n FROM (SELECT coordinator_id AS ck, "
            f"count(*) AS n FROM log WHERE coordinator_id IS NOT NULL GROUP BY 1) g {join}",
        )
        unknown = per[~per["coordinator_id"].isin(coordinators["coordinator_id"])]
        n_unk = int(unknown["n"].sum())
        if n_unk:
            keys = ", ".join(
                str(int(v)) if not isinstance(v, str) else _lit(v) for v in unknown["ck"].head(200)
            )
            rows = _problem_rows(log, f"l.coordinator_id IN ({keys})")
            notes.append(
                Problem(
                    src,
                    "coordinator_id",
                    rows,
                    n_unk,
                    f"{n_unk:,} contact(s) by coordinators not in the coordinators table",
                    "every coordinator listed in the coordinators table",
                    "warning",
                )
            )
    return cube, school_year, errors, notes


def _aggregate_students(log: _Log, year: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    """Second and third passes: per student and per student-coordinator pair, then ``st``."""
    con = log.con
    start = year[0]
    week0 = start - pd.Timedelta(days=start.weekday())  # the Monday on or before
    n_weeks = (year[1] - week0).days // 7 + 1
    if n_weeks > _MAX_WEEKS:
        raise ValueError(
            f"school_year spans {n_weeks} weeks; fidelity measures one school year at a "
            f"time (at most {_MAX_WEEKS} weeks)"
        )
    svc = ",\n".join(
        f"count(*) FILTER (WHERE tier = 2 AND svc = {i}) AS {_q('contacts_' + s)}"
        for i, s in enumerate(_SVC)
    )
    modes = ",\n".join(
        f"count(*) FILTER (WHERE tier = 2 AND mode = {i}) AS {_q('contacts_' + m)}"
        for i, m in enumerate(_MODES)
    )
    # Distinct days and weeks as bit masks: far cheaper than COUNT(DISTINCT) per student.
    days = ",\n".join(
        f"bit_or(CASE WHEN dy >= {64 * w} AND dy < {64 * (w + 1)} "
        f"THEN 1::UBIGINT << (dy - {64 * w}) END) FILTER (WHERE tier = 2) AS d{w}"
        for w in range(6)
    )
    w0 = f"DATE '{week0:%Y-%m-%d}'"
    y0 = f"DATE '{start:%Y-%m-%d}'"
    con.execute(
        f"""
        CREATE TEMP TABLE fs AS
        SELECT student_id AS sid_raw,
            count(*) FILTER (WHERE tier = 2) AS contacts,
            sum(minutes) FILTER (WHERE tier = 2) AS minutes,
            min(date) FILTER (WHERE tier = 2) AS first_contact,
            max(date) FILTER (WHERE tier = 2) AS last_contact,
            bit_or(CASE WHEN wk BETWEEN 0 AND 63 THEN 1::UBIGINT << wk END)
                FILTER (WHERE tier = 2) AS weeks_mask,
            {days},
            count(*) FILTER (WHERE tier = 1) AS tier1_contacts,
            sum(minutes) FILTER (WHERE tier = 1) AS tier1_minutes,
            bit_or(CASE WHEN wk BETWEEN 0 AND 63 THEN 1::UBIGINT << wk END)
                FILTER (WHERE tier = 1) AS tier1_weeks_mask,
            bit_or(1::UBIGINT << svc) FILTER (WHERE tier = 1) AS tier1_svc_mask,
            bit_or(1::UBIGINT << mode) FILTER (WHERE tier = 1) AS tier1_mode_mask,
            {svc},
            {modes}
        FROM (SELECT student_id, tier, minutes, date, svc, mode, (date - {w0}) // 7 AS wk,
                (date - {y0}) AS dy FROM log WHERE student_id IS NOT NULL)
        GROUP BY student_id
        """
    )
    ctext, cjoin = log.coordinator("g.ck")
    con.execute(
        f"""
        CREATE TEMP TABLE fp AS
        WITH g AS (
            SELECT student_id AS sk, coordinator_id AS ck,
                count(*) AS contacts, sum(minutes) / 60.0 AS hours
            FROM log WHERE tier = 2 AND student_id IS NOT NULL AND coordinator_id IS NOT NULL
            GROUP BY ALL
        )
        SELECT r.student_id, {ctext} AS coordinator_id, g.contacts, g.hours
        FROM g JOIN roster r ON r.sid_key = {log.sid("g.sk")} {cjoin}
        """
    )
    svc_cols = ", ".join(
        f"coalesce(f.{_q('contacts_' + s)}, 0) AS {_q('contacts_' + s)}" for s in _SVC
    )
    mode_cols = ", ".join(
        f"coalesce(f.{_q('contacts_' + m)}, 0) AS {_q('contacts_' + m)}" for m in _MODES
    )
    ndays = " + ".join(f"coalesce(bit_count(f.d{w}), 0)" for w in range(6))
    con.execute(
        f"""
        CREATE TEMP TABLE st AS
        WITH f AS (
            SELECT r0.student_id, fs.* EXCLUDE (sid_raw)
            FROM fs JOIN roster r0 ON r0.sid_key = {log.sid("fs.sid_raw")}
        ),
        mc AS (
            SELECT student_id,
                first(coordinator_id ORDER BY contacts DESC, coordinator_id) AS coordinator_id,
                count(*) AS n_coordinators
            FROM fp GROUP BY student_id
        )
        SELECT r._pos, r.student_id, r.school_id, r.treatment,
            CAST(r.assignment_date AS DATE) AS assignment_date,
            coalesce(f.contacts, 0) AS contacts,
            coalesce(f.minutes, 0) / 60.0 AS hours,
            f.first_contact, f.last_contact,
            CASE WHEN f.contacts > 0 THEN (f.last_contact - f.first_contact) / 7.0 END
                AS span_weeks,
            coalesce(bit_count(f.weeks_mask), 0) AS active_weeks,
            {ndays} AS contact_days,
            CASE WHEN f.contacts > 0 THEN
                f.first_contact - CAST(r.assignment_date AS DATE) END AS days_to_first_contact,
            CASE WHEN f.contacts > 0 THEN f.contacts / greatest(
                (f.last_contact - f.first_contact) / {_DAYS_PER_MONTH}, 1.0) END
                AS contacts_per_month,
            coalesce(f.tier1_contacts, 0) AS tier1_contacts,
            coalesce(f.tier1_minutes, 0) / 60.0 AS tier1_hours,
            {svc_cols}, {mode_cols},
            mc.coordinator_id, coalesce(mc.n_coordinators, 0) AS n_coordinators,
            coalesce(f.weeks_mask, 0::UBIGINT) AS weeks_mask,
            coalesce(f.tier1_weeks_mask, 0::UBIGINT) AS tier1_weeks_mask,
            coalesce(f.tier1_svc_mask, 0::UBIGINT) AS tier1_svc_mask,
            coalesce(f.tier1_mode_mask, 0::UBIGINT) AS tier1_mode_mask
        FROM roster r
        LEFT JOIN f ON f.student_id = r.student_id
        LEFT JOIN mc ON mc.student_id = r.student_id
        """
    )


def _stats(col: str, where: str, prefix: str) -> str:
    """Mean and quartiles of a column over the rows meeting a condition (SQL)."""
    return (
        f"avg({col}) FILTER (WHERE {where}) AS {prefix}_mean, "
        f"quantile_cont({col}, 0.25) FILTER (WHERE {where}) AS {prefix}_q1, "
        f"quantile_cont({col}, 0.5) FILTER (WHERE {where}) AS {prefix}_median, "
        f"quantile_cont({col}, 0.75) FILTER (WHERE {where}) AS {prefix}_q3"
    )


_DOSE_SQL = (
    ", ".join(
        _stats(_student_column(m), "treatment = 1 AND contacts > 0", m)
        for m in ("contacts", "hours", "weeks", "active_weeks", "contacts_per_month")
    )
    + ", "
    + _stats("days_to_first_contact", "treatment = 1 AND contacts > 0", "days_to_first_contact")
)


def _school_frame(con: duckdb.DuckDBPyConnection, staff: pd.DataFrame) -> pd.DataFrame:
    schools = _fetch(
        con,
        f"""
        SELECT school_id,
            count(*) FILTER (WHERE treatment = 1) AS program_students,
            count(*) FILTER (WHERE treatment = 1 AND contacts > 0) AS students_reached,
            count(*) FILTER (WHERE treatment = 0) AS control_students,
            count(*) FILTER (WHERE treatment = 0 AND contacts > 0) AS control_reached,
            {_DOSE_SQL},
            coalesce(sum(contacts) FILTER (WHERE treatment = 1), 0) AS total_contacts,
            coalesce(sum(hours) FILTER (WHERE treatment = 1), 0) AS total_hours
        FROM st GROUP BY school_id
        """,
    )
    k = staff.copy()
    k["fte_x_share"] = k["fte"].fillna(1.0) * k["level2_time_share"]
    k["fte_for_share"] = k["fte"].fillna(1.0).where(k["level2_time_share"].notna())
    by = k.dropna(subset=["school_id"]).groupby("school_id", sort=False)
    staffing = pd.DataFrame(
        {
            "coordinators": by.size(),
            "fte": by["fte"].sum(min_count=1),
            "reported_caseload": by["reported_caseload"].sum(min_count=1),
            "level2_time_share": by["fte_x_share"].sum(min_count=1)
            / by["fte_for_share"].sum(min_count=1),
        }
    )
    out = schools.merge(staffing, left_on="school_id", right_index=True, how="outer")
    for c in ("program_students", "students_reached", "control_students", "control_reached"):
        out[c] = out[c].fillna(0).astype(np.int64)
    for c in ("total_contacts", "total_hours"):
        out[c] = out[c].fillna(0.0).astype(float)
    out["coordinators"] = out["coordinators"].fillna(0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_reached"] = np.where(
            out["program_students"] > 0,
            out["students_reached"] / out["program_students"].replace(0, 1),
            np.nan,
        )
    out = out.sort_values("school_id", kind="stable", ignore_index=True)
    lead = [
        "school_id",
        "program_students",
        "students_reached",
        "share_reached",
        "control_students",
        "control_reached",
    ]
    return out[lead + [c for c in out.columns if c not in lead]]


def _coordinator_frame(
    con: duckdb.DuckDBPyConnection, staff: pd.DataFrame, schools: pd.DataFrame
) -> pd.DataFrame:
    pairs = _fetch(
        con,
        f"""
        WITH p AS (
            SELECT fp.coordinator_id, r.school_id, r.treatment, fp.contacts, fp.hours
            FROM fp JOIN roster r ON r.student_id = fp.student_id
        ), home AS (
            SELECT coordinator_id,
                first(school_id ORDER BY n DESC, school_id) AS log_school
            FROM (SELECT coordinator_id, school_id, count(*) AS n FROM p
                  WHERE treatment = 1 GROUP BY ALL)
            GROUP BY coordinator_id
        )
        SELECT p.coordinator_id, any_value(home.log_school) AS log_school,
            count(*) FILTER (WHERE treatment = 1) AS students_served,
            count(*) FILTER (WHERE treatment = 0) AS control_students_served,
            coalesce(sum(contacts) FILTER (WHERE treatment = 1), 0) AS total_contacts,
            coalesce(sum(hours) FILTER (WHERE treatment = 1), 0) AS total_hours,
            {_stats("contacts", "treatment = 1", "contacts")},
            {_stats("hours", "treatment = 1", "hours")}
        FROM p LEFT JOIN home USING (coordinator_id)
        GROUP BY p.coordinator_id
        """,
    )
    out = staff.merge(pairs, on="coordinator_id", how="outer")
    out["school_id"] = out["school_id"].where(out["school_id"].notna(), out["log_school"])
    out = out.drop(columns=["log_school"])
    for c in ("students_served", "control_students_served"):
        out[c] = out[c].fillna(0).astype(np.int64)
    for c in ("total_contacts", "total_hours"):
        out[c] = out[c].fillna(0.0).astype(float)
    n_prog = schools.set_index("school_id")["program_students"]
    denom = out["school_id"].map(n_prog).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_reached"] = np.where(denom > 0, out["students_served"] / denom, np.nan)
    from_log = out["reported_caseload"].isna()
    out["caseload"] = out["reported_caseload"].where(~from_log, out["students_served"])
    out["caseload_source"] = np.where(from_log, "log", "reported")
    out = out.sort_values(["school_id", "coordinator_id"], kind="stable", ignore_index=True)
    lead = [
        "coordinator_id",
        "school_id",
        "fte",
        "reported_caseload",
        "caseload",
        "caseload_source",
        "level2_time_share",
        "students_served",
        "share_reached",
        "control_students_served",
    ]
    return out[lead + [c for c in out.columns if c not in lead]]


def _arm_frame(con: duckdb.DuckDBPyConnection, thresholds: Sequence[int]) -> pd.DataFrame:
    at = ", ".join(
        f"avg(CASE WHEN contacts >= {k} THEN 1.0 ELSE 0.0 END) AS share_at_least_{k}"
        for k in thresholds
    )
    arms = _fetch(
        con,
        f"""
        SELECT treatment,
            count(*) AS students,
            count(*) FILTER (WHERE contacts > 0) AS received,
            avg(CASE WHEN contacts > 0 THEN 1.0 ELSE 0.0 END) AS share_received,
            {at},
            avg(contacts) AS contacts_per_student,
            avg(hours) AS hours_per_student,
            avg(contacts) FILTER (WHERE contacts > 0) AS contacts_per_served,
            avg(hours) FILTER (WHERE contacts > 0) AS hours_per_served,
            quantile_cont(contacts, 0.5) FILTER (WHERE contacts > 0) AS contacts_median_served,
            count(*) FILTER (WHERE tier1_contacts > 0) AS tier1_received,
            avg(CASE WHEN tier1_contacts > 0 THEN 1.0 ELSE 0.0 END) AS share_tier1
        FROM st GROUP BY treatment ORDER BY treatment DESC
        """,
    )
    arms.insert(0, "arm", arms["treatment"].map({1: "program", 0: "control"}))
    return arms.drop(columns=["treatment"])


def _bits(mask: np.ndarray, n: int) -> np.ndarray:
    """How many masks have each of the first ``n`` bits set."""
    m = mask.astype(np.uint64)
    return np.array([int(((m >> np.uint64(b)) & np.uint64(1)).sum()) for b in range(n)])


def _mix_frames(
    con: duckdb.DuckDBPyConnection, cube: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    svc_sums = ", ".join(
        f"sum({_q('contacts_' + s)}) AS {_q('c_' + s)}, "
        f"count(*) FILTER (WHERE {_q('contacts_' + s)} > 0) AS {_q('n_' + s)}"
        for s in (*_SVC, *_MODES)
    )
    per_arm = _fetch(
        con,
        f"SELECT treatment, {svc_sums}, count(*) FILTER (WHERE contacts > 0) AS n_any "
        "FROM st GROUP BY treatment",
    ).set_index("treatment")
    masks = _fetch(
        con, "SELECT treatment, tier1_svc_mask, tier1_mode_mask FROM st WHERE tier1_contacts > 0"
    )
    c = cube.dropna(subset=["arm", "tier"]).copy()
    c["arm"] = c["arm"].astype(np.int64)
    rows = []
    for arm_code, arm in ((1, "program"), (0, "control")):
        sub = c[c["arm"] == arm_code]
        m = masks[masks["treatment"] == arm_code]
        for dim, codes, labels, col in (
            ("service_area", _SVC, SERVICE_TYPES, "svc"),
            ("mode", _MODES, MODES, "mode"),
        ):
            t1_students = _bits(
                m["tier1_svc_mask" if dim == "service_area" else "tier1_mode_mask"].to_numpy(),
                len(codes),
            )
            for tier in (2, 1):
                st = sub[sub["tier"] == tier]
                tot_c, tot_m = float(st["n"].sum()), float(st["minutes"].sum())
                g = st.groupby(col)[["n", "minutes"]].sum()
                for i, code in enumerate(codes):
                    n = float(g["n"].get(i, 0.0))
                    mins = float(g["minutes"].get(i, 0.0))
                    if tier == 2 and arm_code in per_arm.index:
                        students = int(_rec(per_arm, arm_code)[f"n_{code}"])
                    elif tier == 2:
                        students = 0
                    else:
                        students = int(t1_students[i])
                    rows.append(
                        {
                            "arm": arm,
                            "tier": tier,
                            "dimension": dim,
                            "code": code,
                            "label": labels[code],
                            "contacts": int(n),
                            "hours": mins / 60,
                            "students": students,
                            "share_of_contacts": n / tot_c if tot_c else np.nan,
                            "share_of_hours": mins / tot_m if tot_m else np.nan,
                        }
                    )
    mix = pd.DataFrame(rows)
    sums = ", ".join(
        f"sum({_q('contacts_' + s)}) AS {_q(s)}, "
        f"count(*) FILTER (WHERE {_q('contacts_' + s)} > 0) AS {_q('n_' + s)}"
        for s in _SVC
    )
    wide = _fetch(con, f"SELECT school_id, {sums} FROM st WHERE treatment = 1 GROUP BY school_id")
    long = []
    for r in _records(wide):
        total = sum(r[s] or 0 for s in _SVC)
        for s in _SVC:
            long.append(
                {
                    "school_id": r["school_id"],
                    "code": s,
                    "label": SERVICE_TYPES[s],
                    "contacts": int(r[s] or 0),
                    "students": int(r["n_" + s] or 0),
                    "share_of_contacts": (r[s] or 0) / total if total else np.nan,
                }
            )
    school_mix = pd.DataFrame(
        long,
        columns=["school_id", "code", "label", "contacts", "students", "share_of_contacts"],
    )
    school_mix = school_mix.sort_values(
        ["school_id", "code"], key=lambda s: s.map(_SVC.index) if s.name == "code" else s
    ).reset_index(drop=True)
    return mix, school_mix


def _weekly_frame(
    con: duckdb.DuckDBPyConnection, cube: pd.DataFrame, year: tuple[pd.Timestamp, pd.Timestamp]
) -> pd.DataFrame:
    start = year[0]
    week0 = start - pd.Timedelta(days=start.weekday())
    n_weeks = (year[1] - week0).days // 7 + 1
    weeks = [week0 + pd.Timedelta(weeks=w) for w in range(n_weeks)]
    masks = _fetch(con, "SELECT treatment, weeks_mask, tier1_weeks_mask FROM st")
    c = cube.dropna(subset=["arm", "tier", "date"]).copy()
    c["week"] = ((pd.to_datetime(c["date"]) - week0).dt.days // 7).astype(np.int64)
    rows = []
    for arm_code, arm in ((1, "program"), (0, "control")):
        m = masks[masks["treatment"] == arm_code]
        sub = c[c["arm"].astype(np.int64) == arm_code]
        for tier, col in ((2, "weeks_mask"), (1, "tier1_weeks_mask")):
            students = _bits(m[col].to_numpy(), n_weeks)
            g = sub[sub["tier"] == tier].groupby("week")[["n", "minutes"]].sum()
            for w in range(n_weeks):
                rows.append(
                    {
                        "week_start": weeks[w],
                        "arm": arm,
                        "tier": tier,
                        "contacts": int(g["n"].get(w, 0)),
                        "hours": float(g["minutes"].get(w, 0.0)) / 60,
                        "students": int(students[w]),
                    }
                )
    return pd.DataFrame(rows)


_DOSE_OUTCOMES = (
    "chronic_absence",
    "attendance_rate",
    "core_course_failure",
    "core_gpa",
    "suspensions",
)
_OUTCOME_FIELDS = {
    "chronic_absence": ("days_enrolled", "days_present"),
    "attendance_rate": ("days_enrolled", "days_present"),
    "core_course_failure": ("core_courses_taken", "core_courses_failed"),
    "core_gpa": ("core_gpa",),
    "suspensions": ("suspensions_iss", "suspensions_oss"),
}


def _outcome_frame(students: pd.DataFrame, chronic_threshold: float) -> pd.DataFrame | None:
    """The outcomes the roster has the raw fields for (for the dose-response view)."""
    names = [o for o in _DOSE_OUTCOMES if all(c in students.columns for c in _OUTCOME_FIELDS[o])]
    if not names:
        return None
    y = outcome_arrays(students, names, chronic_threshold=chronic_threshold)
    if all(np.isnan(v).all() for v in y.values()):
        return None
    return pd.DataFrame(y, index=students.index)


# ----------------------------------------------------------------------------- progress


class _Progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="fidelity", file=sys.stderr, leave=False)

    def step(self, what: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(what, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _log_rows(contacts: pd.DataFrame | str | os.PathLike[str]) -> int:
    if isinstance(contacts, pd.DataFrame):
        return len(contacts)
    try:
        return Path(contacts).stat().st_size // 40  # about 40 bytes a contact on disk
    except OSError:
        return 0


# ----------------------------------------------------------------------------- the verb


def fidelity(
    students: pd.DataFrame,
    contacts: pd.DataFrame | str | os.PathLike[str],
    coordinators: pd.DataFrame | None = None,
    *,
    targets: FidelityTargets | Mapping[str, Any] | None = None,
    caseload_guide: CaseloadGuide = "none",
    school_year: tuple[str, str] | None = None,
    thresholds: Sequence[int] = (1, 10, 19, 30),
    min_cell: int = DEFAULT_MIN_CELL,
    column_map: Mapping[str, str] | None = None,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
    progress: bool | None = None,
) -> FidelityResult:
    """Measure implementation fidelity from the service log: dosage, caseloads, service mix.

    Parameters
    ----------
    students : pandas.DataFrame
        The students table (``student_id``, ``school_id``, ``treatment``; optional
        ``assignment_date``; raw outcome fields for the exploratory dose-response view).
    contacts : pandas.DataFrame or path
        The contacts log, or the path of a CSV or Parquet file read directly by DuckDB
        (for logs too large for pandas).
    coordinators : pandas.DataFrame, optional
        The coordinators table (school, FTE, reported caseload, share of time on Level 2).
    targets : FidelityTargets or mapping, optional
        The user's targets, e.g. ``{"contacts": 20, "caseload": {"max": 80}}`` (see
        :meth:`FidelityTargets.with_user`). The published study averages are always
        included; user targets take precedence in flags.
    caseload_guide : {"none", "intensive", "standard"}, default "none"
        Also check caseloads against the practice guide: at most 20 students with
        intensive needs, or 50-100 otherwise (Rumberger et al. 2017).
    school_year : (str, str), optional
        First and last day of the year; by default the August-July year containing the
        median contact date, as in :func:`cis_eval.validate`.
    thresholds : sequence of int, default (1, 10, 19, 30)
        Receipt thresholds (at least k Level 2 contacts) reported by research group:
        the first stage of a complier average causal effect at each threshold.
    min_cell : int, default 10
        Tables and plots suppress cells describing fewer students than this.
    column_map : mapping, optional
        The log's column names -> the contract's, when ``contacts`` is a path.
    chronic_threshold : float, default 0.10
        Chronic-absence threshold for the dose-response view.
    progress : bool, optional
        Show a progress bar on stderr; by default only for logs of a million rows or more
        when stderr is a terminal.

    Returns
    -------
    FidelityResult
        Per student, school, coordinator and research group, with ``to_frame(level)``,
        ``table(level)``, ``plot(kind)`` and ``report()``.

    Raises
    ------
    DataValidationError
        For problems in the log (unknown service areas, minutes that are negative or
        longer than a school day, dates outside the school year, contacts for students
        not in the roster, an empty log), all listed at once by file, column and row.

    Notes
    -----
    Dosage counts Level 2 (tier 2) contacts. School, coordinator, dosage, service-mix and
    weekly figures describe program-group students; services to control-group students
    (crossover) appear only in the comparison by research group. Warnings (contacts by
    coordinators missing from the coordinators table, Level 2 contacts dated before random
    assignment) are issued as one :class:`~cis_eval.errors.DesignWarning` and kept in
    ``FidelityResult.warnings``.

    References
    ----------
    Corrin, W., et al. (2015). *Case Management for Students at Risk of Dropping Out.* MDRC.
    Rumberger, R., et al. (2017). *Preventing Dropout in Secondary Schools* (NCEE 2017-4028).

    Examples
    --------
    >>> from cis_eval.fidelity.verb import fidelity  # also cis_eval.fidelity
    >>> from cis_eval.data.simulate import simulate
    >>> trial = simulate(seed=5, n_students=400, n_schools=5)
    >>> fid = fidelity(trial.students, trial.contacts, trial.coordinators)
    >>> fid
    FidelityResult(400 students, 5 schools, 5 coordinators, 3,844 contacts, min_cell=10)
    >>> fid.to_frame("school").shape[0]
    5
    """
    k = check_min_cell(min_cell)
    check_option("caseload_guide", caseload_guide, ("none", "intensive", "standard"))
    ths = tuple(thresholds)
    if not ths or any(
        isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in ths
    ):
        raise ValueError(f"thresholds must be whole numbers of contacts >= 1, got {thresholds!r}")
    ths = tuple(sorted({int(t) for t in ths}))
    if targets is None:
        tgt = published_targets()
    elif isinstance(targets, FidelityTargets):
        tgt = targets
    elif isinstance(targets, Mapping):
        tgt = published_targets().with_user(targets)
    else:
        raise TypeError(
            f"targets must be a mapping or FidelityTargets, got {type(targets).__name__}"
        )
    tgt = tgt.with_guide(caseload_guide)
    year = None
    if school_year is not None:
        year = (pd.Timestamp(school_year[0]), pd.Timestamp(school_year[1]))
        if year[1] < year[0]:
            raise ValueError("school_year: the last day is before the first")
    show = (
        progress
        if progress is not None
        else (_log_rows(contacts) >= _LONG_LOG and sys.stderr.isatty())
    )
    bar = _Progress(bool(show), 7)
    try:
        roster = _roster(students)
        staff = _staff(coordinators)
        with _engine() as con:
            log = _open_log(con, contacts, column_map)
            con.register("roster", roster.assign(sid_key=log.roster_key(roster["student_id"])))
            bar.step("checking the log")
            given = year
            cube, year, errors, notes = _check_log(log, given, staff)
            if _needs_trim(log, cube):
                log = _open_log(con, contacts, column_map, trim=True)
                cube, year, errors, notes = _check_log(log, given, staff)
            if errors:
                raise DataValidationError(errors)
            # Dates were all valid and at least one exists, so the year is known.
            assert year is not None
            bar.step("per student")
            _aggregate_students(log, year)
            early = int(
                con.execute(
                    "SELECT count(*) FROM st WHERE first_contact < assignment_date"
                ).fetchall()[0][0]
            )
            if early:
                n_early = int(
                    con.execute(
                        f"SELECT count(*) FROM log l JOIN roster r ON r.sid_key = "
                        f"{_sid_key(log)} WHERE l.tier = 2 AND l.date < "
                        "CAST(r.assignment_date AS DATE)"
                    ).fetchall()[0][0]
                )
                join = f"JOIN roster r ON r.sid_key = {_sid_key(log)}"
                rows = _problem_rows(
                    log, "l.tier = 2 AND l.date < CAST(r.assignment_date AS DATE)", join
                )
                notes.append(
                    Problem(
                        log.source,
                        "date",
                        rows,
                        n_early,
                        f"{n_early:,} Level 2 contact(s) dated before the student's random "
                        "assignment",
                        "case management to start after random assignment",
                        "warning",
                    )
                )
            bar.step("schools")
            schools = _school_frame(con, staff)
            bar.step("coordinators")
            coords = _coordinator_frame(con, staff, schools)
            arms = _arm_frame(con, ths)
            bar.step("service mix")
            mix, school_mix = _mix_frames(con, cube)
            bar.step("weeks")
            weekly = _weekly_frame(con, cube, year)
            st = _fetch(con, "SELECT * EXCLUDE (_pos) FROM st ORDER BY _pos")
            n_contacts = int(cube["n"].sum())
        bar.step("dose-response")
        st = st.drop(
            columns=["weeks_mask", "tier1_weeks_mask", "tier1_svc_mask", "tier1_mode_mask"]
        )
        st.index = students.index
        for c in ("first_contact", "last_contact", "assignment_date"):
            st[c] = pd.to_datetime(st[c]).astype("datetime64[s]")
        st["days_to_first_contact"] = st["days_to_first_contact"].astype(float)
        st["received"] = (st["contacts"] > 0).astype(np.int64)
        outcomes = _outcome_frame(students, chronic_threshold)
    finally:
        bar.close()
    if notes:
        warnings.warn(
            "data warnings:\n  - " + "\n  - ".join(map(str, notes)), DesignWarning, stacklevel=2
        )
    return FidelityResult(
        _students=st,
        _schools=schools,
        _coordinators=coords,
        _arms=arms,
        _service_mix=mix,
        _school_service_mix=school_mix,
        _weekly=weekly,
        _outcomes=outcomes,
        targets=tgt,
        school_year=(pd.Timestamp(year[0]), pd.Timestamp(year[1])),
        min_cell=k,
        thresholds=ths,
        warnings=tuple(str(p) for p in notes),
        source=log.source,
        n_contacts=n_contacts,
        chronic_threshold=chronic_threshold,
    )


# ----------------------------------------------------------------------------- privacy helpers


def _band_counts(values: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """Students in each band between consecutive cuts (band i is [cuts[i-1], cuts[i]))."""
    idx = np.searchsorted(np.asarray(cuts, float), values, side="right")
    return np.bincount(idx, minlength=len(cuts) + 1)


def _publishable_cuts(values: np.ndarray, cuts: Sequence[float], k: int) -> list[float]:
    """The cuts that can be published: every band between them holds 0 or >= k students.

    Published shares above a cut (e.g. "% with 10 or more contacts") and bar heights are
    differences of band counts, so a band with 1 to k-1 students would be revealed by
    subtraction. A small band is merged with its smaller non-empty neighbour by dropping
    the cut between them, until none is left.
    """
    out = sorted({float(c) for c in cuts if np.isfinite(c)})
    while out:
        counts = _band_counts(values, out)
        small = np.flatnonzero((counts > 0) & (counts < k))
        if not small.size:
            break
        i = int(small[0])
        options = []
        if i > 0:
            options.append((int(counts[i - 1]), i - 1))
        if i < len(counts) - 1:
            options.append((int(counts[i + 1]), i))
        options.sort(key=lambda t: (t[0] == 0, t[0]))
        del out[options[0][1]]
    return out


def _target_cuts(t: Target | None) -> list[float]:
    if t is None:
        return []
    cuts = []
    if t.low is not None:
        cuts.append(t.low)
    if t.high is not None:
        cuts.append(float(np.nextafter(t.high, np.inf)))
    return cuts


def _meets(values: np.ndarray, t: Target) -> np.ndarray:
    ok = np.ones(values.size, bool)
    if t.low is not None:
        ok &= values >= t.low
    if t.high is not None:
        ok &= values <= t.high
    return ok


def _safe_histogram(
    values: np.ndarray, width: float, k: int, cuts: Sequence[float] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram whose every bar holds 0 or at least ``k`` students.

    Bars start ``width`` wide and are merged with a neighbour while small, never across a
    published cut (so bars never split a band whose total is published elsewhere).
    """
    if values.size < k or values.size == 0:
        return np.array([0.0, width]), np.array([])
    hi = float(np.ceil((values.max() + 1e-9) / width) * width)
    hi = max(hi, width)
    fixed = {float(c) for c in cuts if 0 < c < hi}
    edges = sorted(set(np.arange(0.0, hi + width / 2, width).tolist()) | fixed)
    counts = np.histogram(values, edges)[0].astype(float).tolist()
    while True:
        small = [i for i, c in enumerate(counts) if 0 < c < k]
        if not small:
            break
        i = small[0]
        left = i - 1 if i > 0 and edges[i] not in fixed else None
        right = i + 1 if i < len(counts) - 1 and edges[i + 1] not in fixed else None
        cands = [j for j in (left, right) if j is not None]
        if not cands:  # cannot happen when the cuts came from _publishable_cuts
            counts[i] = 0.0
            continue
        j = min(cands, key=lambda j: (counts[j] == 0, counts[j]))
        a, b = min(i, j), max(i, j)
        counts[a] += counts[b]
        del counts[b]
        del edges[b]
    return np.array(edges), np.array(counts)


def _band_label(lo: float, hi: float) -> str:
    if not np.isfinite(lo) or lo <= 0:
        return "No Level 2 contact"
    a = math.ceil(lo)
    if not np.isfinite(hi):
        return f"{a} or more contacts"
    b = math.ceil(hi) - 1
    return f"{a} contact{'s' if a != 1 else ''}" if a == b else f"{a}-{b} contacts"


# ----------------------------------------------------------------------------- the result


def _fmt_num(v: Any, digits: int) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{float(v):,.{digits}f}"


def _iqr(q1: Any, med: Any, q3: Any, digits: int) -> str:
    if med is None or med is pd.NA or (isinstance(med, float) and np.isnan(med)):
        return ""
    return f"{_fmt_num(med, digits)} ({_fmt_num(q1, digits)}-{_fmt_num(q3, digits)})"


def _pct(v: Any, digits: int = 0) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{float(v):.{digits}%}"


def _pp(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{100 * float(v):+.0f} pp"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dictionaries keyed by column name (plain Python access, typed)."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _rec(frame: pd.DataFrame, key: Any) -> dict[str, Any]:
    """One row (by index label) as a dictionary keyed by column name."""
    return {str(k): v for k, v in frame.loc[key].items()}


def _n(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _low(t: Target | None) -> str:
    return "" if t is None or t.low is None else f"{t.low:g}"


@dataclass(frozen=True, slots=True)
class _Masks:
    """What the school, coordinator and network rows may publish (True = suppressed)."""

    dosage: np.ndarray  # schools: students reached and their dosage
    reach: np.ndarray  # schools: program students and share reached
    share_bound: list[float | None]  # schools: a safe lower bound on the share reached
    total_dosage: bool
    total_reach: bool
    coord: np.ndarray  # coordinators: students served and their dosage
    coord_share: np.ndarray  # coordinators: share of the school's program students
    caseload: np.ndarray  # coordinators: reported caseload
    caseload_total: bool


@dataclass(frozen=True, slots=True)
class FidelityResult:
    """Implementation fidelity: dosage, caseloads, service mix and the service contrast.

    Build with :func:`fidelity`. Every accessor returns a fresh copy; :meth:`table`,
    :meth:`plot` and :meth:`report` are for publication and suppress every cell describing
    fewer than ``min_cell`` students, with complementary cells.

    Attributes
    ----------
    targets : FidelityTargets
        Published benchmarks and the user's targets.
    school_year : (Timestamp, Timestamp)
        The school year measured.
    min_cell : int
        Smallest number of students a published cell may describe.
    thresholds : tuple of int
        Receipt thresholds (at least k Level 2 contacts) reported by research group.
    warnings : tuple of str
        Data warnings found in the log (they never contain identifiers).
    source : str
        Name of the contacts log.
    n_contacts : int
        Rows in the log (both tiers, both groups).
    chronic_threshold : float
        Chronic-absence threshold used in the dose-response view.
    """

    _students: pd.DataFrame = field(repr=False)
    _schools: pd.DataFrame = field(repr=False)
    _coordinators: pd.DataFrame = field(repr=False)
    _arms: pd.DataFrame = field(repr=False)
    _service_mix: pd.DataFrame = field(repr=False)
    _school_service_mix: pd.DataFrame = field(repr=False)
    _weekly: pd.DataFrame = field(repr=False)
    _outcomes: pd.DataFrame | None = field(repr=False)
    targets: FidelityTargets = field(repr=False)
    school_year: tuple[pd.Timestamp, pd.Timestamp] = field(repr=False)
    min_cell: int = DEFAULT_MIN_CELL
    thresholds: tuple[int, ...] = (1, 10, 19, 30)
    warnings: tuple[str, ...] = ()
    source: str = "contacts"
    n_contacts: int = 0
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD

    def __repr__(self) -> str:
        return (
            f"FidelityResult({len(self._students):,} students, {len(self._schools):,} schools, "
            f"{len(self._coordinators):,} coordinators, {self.n_contacts:,} contacts, "
            f"min_cell={self.min_cell})"
        )

    # ---------------------------------------------------------------- frames

    def to_frame(self, level: Level = "school") -> pd.DataFrame:
        """The measures at one level, as a fresh DataFrame with snake_case columns.

        Parameters
        ----------
        level : str, default "school"
            ``"student"`` (one row per student of the roster, in its order and with its
            index, for merging with outcomes: never for publication), ``"school"``,
            ``"coordinator"``, ``"arm"`` (program vs control: the service contrast),
            ``"dosage"`` (distribution of each measure among program students reached),
            ``"benchmarks"`` (network figures against the targets), ``"service_mix"``,
            ``"school_service_mix"``, ``"weekly"`` or ``"dose_response"`` (exploratory;
            empty when the roster has no outcome fields).

        Returns
        -------
        pandas.DataFrame
            Unsuppressed numbers: for analysis, not for publication (see :meth:`table`).
        """
        check_option("level", level, LEVELS)
        if level == "student":
            return self._students.copy()
        if level == "school":
            return self._with_flags(self._schools, _SCHOOL_FLAGS)
        if level == "coordinator":
            return self._with_flags(self._coordinators, _COORDINATOR_FLAGS)
        if level == "arm":
            return self._arms.copy()
        if level == "dosage":
            return self._dosage()
        if level == "benchmarks":
            return self._benchmarks()
        if level == "service_mix":
            return self._service_mix.copy()
        if level == "school_service_mix":
            return self._school_service_mix.copy()
        if level == "weekly":
            return self._weekly.copy()
        cuts = [float(t) for t in self.thresholds]
        return self._dose_frame({"program": cuts, "control": []})

    def _value(self, frame: pd.DataFrame, measure: str) -> pd.Series:
        m = MEASURES[measure]
        if measure in ("share_reached", "caseload", "level2_time_share"):
            col = measure
        else:
            col = f"{measure}_{m.statistic}"
        if col not in frame.columns:
            return pd.Series(np.nan, index=frame.index)
        return frame[col].astype(float)

    def _with_flags(self, frame: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
        out = frame.copy()
        for measure in measures:
            t = self.targets.effective(measure)
            if t is None:
                continue
            vals = self._value(out, measure)
            out[f"status_{measure}"] = [t.status(v, self.targets.tolerance) for v in vals]
        if "caseload" in measures and self.targets.guide:
            g = self.targets.guide[0]
            out["status_caseload_guide"] = [g.status(v, 0.0) for v in self._value(out, "caseload")]
        out["short_of_target"] = [
            ", ".join(self._short(out.iloc[i], measures, ())) for i in range(len(out))
        ]
        return out

    def _short(self, row: pd.Series, measures: Sequence[str], hidden: Sequence[str]) -> list[str]:
        return [
            MEASURES[m].short
            for m in measures
            if m not in hidden and row.get(f"status_{m}", "") in ("below", "above")
        ]

    def _program(self) -> pd.DataFrame:
        return self._students[self._students["treatment"] == 1]

    def _served(self) -> pd.DataFrame:
        s = self._students
        return s[(s["treatment"] == 1) & (s["contacts"] > 0)]

    def _dosage(self) -> pd.DataFrame:
        served = self._served()
        rows = []
        for measure in (*_DOSAGE, "days_to_first_contact"):
            v = served[_student_column(measure)].astype(float).dropna().to_numpy()
            t = self.targets.effective(measure)
            rows.append(
                {
                    "measure": measure,
                    "label": MEASURES[measure].label,
                    "students": int(v.size),
                    "mean": float(v.mean()) if v.size else np.nan,
                    "std": float(v.std(ddof=1)) if v.size > 1 else np.nan,
                    "q1": float(np.quantile(v, 0.25)) if v.size else np.nan,
                    "median": float(np.median(v)) if v.size else np.nan,
                    "q3": float(np.quantile(v, 0.75)) if v.size else np.nan,
                    "target": t.describe() if t else "",
                    "share_meeting_target": float(_meets(v, t).mean())
                    if t is not None and v.size
                    else np.nan,
                }
            )
        return pd.DataFrame(rows)

    def _network(self, measure: str) -> float:
        """The network value of a measure: the statistic its targets are compared with."""
        if measure == "share_reached":
            p = self._program()
            return float((p["contacts"] > 0).mean()) if len(p) else np.nan
        if measure in ("caseload", "level2_time_share"):
            col = self._coordinators[measure].astype(float).dropna()
            return float(col.mean()) if len(col) else np.nan
        v = self._served()[_student_column(measure)].astype(float).dropna()
        if not len(v):
            return np.nan
        return float(v.median()) if MEASURES[measure].statistic == "median" else float(v.mean())

    def _benchmarks(self) -> pd.DataFrame:
        rows = []
        tol = self.targets.tolerance
        for measure, m in MEASURES.items():
            value = self._network(measure)
            study = self.targets.get(measure, "study")
            user = self.targets.get(measure, "user")
            guide = self.targets.get(measure, "guide")
            rows.append(
                {
                    "measure": measure,
                    "label": m.label,
                    "statistic": m.statistic,
                    "value": value,
                    "study_benchmark": study.describe() if study else "",
                    "status_study": study.status(value, tol) if study else "",
                    "target": user.describe() if user else "",
                    "status_target": user.status(value, tol) if user else "",
                    "guide": guide.describe() if guide else "",
                    "status_guide": guide.status(value, 0.0) if guide else "",
                }
            )
        return pd.DataFrame(rows)

    def _dose_frame(self, cuts: Mapping[str, Sequence[float]]) -> pd.DataFrame:
        """Outcome means by Level 2 dosage band (program) and for the control group."""
        cols = ["group", "arm", "low", "high", "students"]
        if self._outcomes is None:
            return pd.DataFrame(columns=cols)
        s = self._students
        y = self._outcomes
        groups: list[tuple[str, str, float, float, np.ndarray]] = []
        groups.append(
            ("Control group", "control", np.nan, np.nan, (s["treatment"] == 0).to_numpy())
        )
        bounds = [-np.inf, *cuts["program"], np.inf]
        contacts = s["contacts"].to_numpy(float)
        prog = (s["treatment"] == 1).to_numpy()
        for lo, hi in itertools.pairwise(bounds):
            band = prog & (contacts >= lo) & (contacts < hi)
            groups.append((_band_label(lo, hi), "program", lo, hi, band))
        rows = []
        for label, arm, lo, hi, mask in groups:
            row: dict[str, Any] = {
                "group": label,
                "arm": arm,
                "low": lo,
                "high": hi,
                "students": int(mask.sum()),
            }
            for o in y.columns:
                v = y[o].to_numpy(float)[mask]
                ok = ~np.isnan(v)
                row[f"n_{o}"] = int(ok.sum())
                row[o] = float(v[ok].mean()) if ok.any() else np.nan
            rows.append(row)
        return pd.DataFrame(rows)

    # ---------------------------------------------------------------- privacy

    def _masks(self, k: int) -> _Masks:
        """Suppression of the school, coordinator and network rows, solved together.

        Dosage cells (students reached and their dosage) form a hierarchy: coordinators
        within schools within the network. Reach cells (program students and the share
        reached) also protect the students *not* reached (N - n), which subtraction would
        otherwise reveal; a school whose dosage is hidden hides its reach too.
        """
        schools, coords = self._schools, self._coordinators
        n_c, n_s = len(coords), len(schools)
        total = n_c + n_s
        s_pos = {s: n_c + i for i, s in enumerate(schools["school_id"])}
        cons: list[tuple[int | None, list[int]]] = [(total, list(range(n_c, total)))]
        kids: dict[int, list[int]] = {}
        for i, s in enumerate(coords["school_id"]):
            if s in s_pos:
                kids.setdefault(s_pos[s], []).append(i)
        cons += list(kids.items())
        if n_c:
            cons.append((total, list(range(n_c))))
        big = schools["program_students"].to_numpy(float)
        small = schools["students_reached"].to_numpy(float)
        served = coords["students_served"].to_numpy(float)
        d_counts = np.concatenate([served, small, [small.sum()]])
        d_mask = suppression_mask(d_counts, min_cell=k, constraints=cons)
        r_counts = np.column_stack(
            [np.append(big, big.sum()), np.append(big - small, big.sum() - small.sum())]
        )
        r_mask = suppression_mask(
            r_counts,
            min_cell=k,
            constraints=[(n_s, list(range(n_s)))],
            primary=d_mask[n_c:],
        )
        bounds: list[float | None] = []
        for i in range(n_s):
            bound = None
            if r_mask[i] and not d_mask[n_c + i] and big[i] > 0:
                # Largest 5% step X with n(1/X - 1) >= k: "X or more" cannot prove that
                # fewer than k students were left unreached.
                x = math.floor(20 * small[i] / (small[i] + k)) / 20
                if x >= 0.5 and small[i] / big[i] >= x:
                    bound = x
            bounds.append(bound)
        home = coords["school_id"].map(dict(zip(schools["school_id"], r_mask[:n_s], strict=True)))
        coord_share = d_mask[:n_c] | home.fillna(True).to_numpy(dtype=bool)
        # Caseloads (reported, or else the students served) add up to the network mean
        # shown in the benchmarks; a caseload taken from the log is a count of served
        # students, hidden wherever that count is.
        caseload = coords["caseload"].to_numpy(float)
        from_log = (coords["caseload_source"] == "log").to_numpy()
        cl_counts = np.append(np.nan_to_num(caseload), np.nansum(caseload))
        cl_mask = suppression_mask(
            cl_counts,
            min_cell=k,
            constraints=[(n_c, list(range(n_c)))] if n_c else [],
            primary=np.append(from_log & d_mask[:n_c], False),
        )
        return _Masks(
            dosage=d_mask[n_c:total],
            reach=r_mask[:n_s],
            share_bound=bounds,
            total_dosage=bool(d_mask[total]),
            total_reach=bool(r_mask[n_s]),
            coord=d_mask[:n_c],
            coord_share=coord_share,
            caseload=cl_mask[:n_c],
            caseload_total=bool(cl_mask[n_c]),
        )

    def _contact_cuts(self, arm: str, k: int) -> list[float]:
        """Published cuts of Level 2 contacts for one research group (program or control).

        The same cuts serve every table and chart that splits that group by contacts (the
        receipt thresholds, the share meeting the contacts target, the dose-response
        bands, the histogram), so no difference between them isolates a small band.
        """
        s = self._students
        values = s.loc[s["treatment"] == (1 if arm == "program" else 0), "contacts"]
        cuts = [1.0, *map(float, self.thresholds)]
        if arm == "program":
            for which in ("study", "user"):
                cuts += _target_cuts(self.targets.get("contacts", which))
        return _publishable_cuts(values.to_numpy(float), cuts, k)

    def _dose_cuts(self, k: int) -> list[float]:
        """Dose-response bands: the published receipt thresholds.

        Any subset of published cuts is safe: its bands are unions of safe bands.
        """
        keep = {1.0, *map(float, self.thresholds)}
        return [c for c in self._contact_cuts("program", k) if c in keep]

    def _measure_cuts(self, measure: str, k: int) -> list[float]:
        """Published cuts of a dosage measure among program students reached."""
        if measure == "contacts":
            return self._contact_cuts("program", k)
        v = self._served()[_student_column(measure)].astype(float).dropna().to_numpy()
        cuts: list[float] = []
        for which in ("study", "user"):
            cuts += _target_cuts(self.targets.get(measure, which))
        return _publishable_cuts(v, cuts, k)

    def _network_hidden(self, k: int) -> tuple[bool, bool]:
        """(dosage hidden, reach hidden) for the network as a whole."""
        m = self._masks(k)
        return m.total_dosage, m.total_reach

    # ---------------------------------------------------------------- tables

    def table(self, level: Level = "school", *, min_cell: int | None = None) -> Table:
        """A publication table at one level, with reader labels and small cells suppressed.

        Parameters
        ----------
        level : str, default "school"
            Any level of :meth:`to_frame` except ``"student"`` (student rows are never
            published) and ``"weekly"`` (drawn by :meth:`plot`).
        min_cell : int, optional
            Override the result's ``min_cell`` (1 shows every cell: not for publication).

        Returns
        -------
        Table
            Suppressed cells show ``*``; the notes say why.

        Examples
        --------
        >>> from cis_eval.fidelity.verb import fidelity
        >>> from cis_eval.data.simulate import simulate
        >>> trial = simulate(seed=5, n_students=400, n_schools=5)
        >>> fid = fidelity(trial.students, trial.contacts, trial.coordinators)
        >>> fid.table("arm").data["Group"].tolist()
        ['Program group', 'Control group', 'Difference (program - control)']
        """
        check_option("level", level, LEVELS)
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        if level == "student":
            raise ValueError(
                "student-level rows are never published; use to_frame('student') for "
                "analysis, or a school, coordinator or arm table"
            )
        if level == "weekly":
            raise ValueError("weekly contacts are drawn by plot('weekly'); use to_frame('weekly')")
        builders: dict[str, Callable[[int], Table]] = {
            "school": self._table_school,
            "coordinator": self._table_coordinator,
            "arm": self._table_arm,
            "dosage": self._table_dosage,
            "benchmarks": self._table_benchmarks,
            "service_mix": self._table_mix,
            "school_service_mix": self._table_school_mix,
            "dose_response": self._table_dose,
        }
        return builders[level](k)

    def _privacy_note(self, k: int) -> str:
        return (
            f"{SUPPRESSED} Suppressed to protect student privacy: the figure describes fewer "
            f"than {k} students, or it is hidden as well so that such a figure cannot be "
            "worked out from the totals."
        )

    def _table_school(self, k: int) -> Table:
        s = self.to_frame("school")
        m = self._masks(k)
        rows = [
            self._school_row(r, bool(m.dosage[i]), bool(m.reach[i]), m.share_bound[i])
            for i, r in enumerate(_records(s))
        ]
        rows.append(self._school_row(self._school_total(), m.total_dosage, m.total_reach, None))
        eff = {name: self.targets.effective(name) for name in _SCHOOL_FLAGS}
        shown = [f"{MEASURES[n].short} {t.describe()}" for n, t in eff.items() if t is not None]
        notes = [
            "Program-group students. Reached: at least one Level 2 (case-managed) contact. "
            "Dosage per student reached: the mean, and the median with the middle half of "
            "students (25th to 75th percentile) in brackets.",
            "Targets: " + "; ".join(shown) + ". Below target: more than "
            f"{self.targets.tolerance:.0%} short (for days to first contact: more than "
            f"{self.targets.tolerance:.0%} over).",
        ]
        if m.dosage.any() or m.reach.any() or m.total_dosage or m.total_reach:
            notes.append(self._privacy_note(k))
        if any(b is not None for b in m.share_bound):
            notes.append(
                "'X% or more': the exact share would reveal how many students were not "
                f"reached, and that number is below {k}."
            )
        return Table(pd.DataFrame(rows), title="Dosage by school", notes=tuple(notes))

    def _school_total(self) -> dict[str, Any]:
        served = self._served()
        p = self._program()
        out: dict[str, Any] = {
            "school_id": "All schools",
            "program_students": len(p),
            "students_reached": len(served),
            "share_reached": len(served) / len(p) if len(p) else np.nan,
        }
        for name in (*_DOSAGE, "days_to_first_contact"):
            v = served[_student_column(name)].astype(float).dropna()
            out[f"{name}_mean"] = v.mean() if len(v) else np.nan
            out[f"{name}_q1"] = v.quantile(0.25) if len(v) else np.nan
            out[f"{name}_median"] = v.median() if len(v) else np.nan
            out[f"{name}_q3"] = v.quantile(0.75) if len(v) else np.nan
        flagged = self._with_flags(pd.DataFrame([out]), _SCHOOL_FLAGS)
        return cast(dict[str, Any], flagged.iloc[0].to_dict())

    def _school_row(
        self, r: dict[str, Any], hide: bool, hide_reach: bool, bound: float | None
    ) -> dict[str, Any]:
        x = SUPPRESSED
        if hide_reach:
            share = f"{bound:.0%} or more" if bound is not None else x
        else:
            share = _pct(r["share_reached"])
        short = self._short(pd.Series(r), _SCHOOL_FLAGS, ("share_reached",) if hide_reach else ())
        return {
            "School": r["school_id"],
            "Program students": x if hide_reach else f"{int(r['program_students']):,}",
            "Reached": x if hide else f"{int(r['students_reached']):,}",
            "% reached": share,
            "Contacts (mean)": x if hide else _fmt_num(r["contacts_mean"], 1),
            "Contacts: median (IQR)": x
            if hide
            else _iqr(r["contacts_q1"], r["contacts_median"], r["contacts_q3"], 0),
            "Hours (mean)": x if hide else _fmt_num(r["hours_mean"], 1),
            "Hours: median (IQR)": x
            if hide
            else _iqr(r["hours_q1"], r["hours_median"], r["hours_q3"], 1),
            "Weeks of service (mean)": x if hide else _fmt_num(r["weeks_mean"], 1),
            "Active weeks (mean)": x if hide else _fmt_num(r["active_weeks_mean"], 1),
            "Days to first contact (median)": x
            if hide
            else _fmt_num(r["days_to_first_contact_median"], 0),
            "Below target on": x if hide else (", ".join(short) or "-"),
        }

    def _table_coordinator(self, k: int) -> Table:
        c = self.to_frame("coordinator")
        m = self._masks(k)
        x = SUPPRESSED
        rows = []
        for i, d in enumerate(_records(c)):
            hide, hide_share, hide_cl = (
                bool(m.coord[i]),
                bool(m.coord_share[i]),
                bool(m.caseload[i]),
            )
            cl = d["reported_caseload"]
            hidden = ["share_reached"] if hide_share else []
            if hide_cl:
                hidden.append("caseload")
            short = self._short(pd.Series(d), _COORDINATOR_FLAGS, hidden)
            row = {
                "Coordinator": d["coordinator_id"],
                "School": d["school_id"] if isinstance(d["school_id"], str) else "",
                "FTE": _fmt_num(d["fte"], 2),
                "Reported caseload": x if hide_cl else ("" if pd.isna(cl) else f"{int(cl):,}"),
                "Time on Level 2": _pct(d["level2_time_share"]),
                "Program students served": x if hide else f"{int(d['students_served']):,}",
                "% of the school's program students": x if hide_share else _pct(d["share_reached"]),
                "Contacts per student (mean)": x if hide else _fmt_num(d["contacts_mean"], 1),
                "Contacts: median (IQR)": x
                if hide
                else _iqr(d["contacts_q1"], d["contacts_median"], d["contacts_q3"], 0),
                "Hours per student (mean)": x if hide else _fmt_num(d["hours_mean"], 1),
                "Total hours": x if hide else _fmt_num(d["total_hours"], 0),
                "Below target on": x if hide else (", ".join(short) or "-"),
            }
            if self.targets.guide:
                status = d.get("status_caseload_guide", "")
                word = {"meets": "within", "below": "below", "above": "above"}.get(status, "")
                row["Caseload guide"] = x if hide_cl else word
            rows.append(row)
        notes = [
            "Program-group students with at least one Level 2 contact logged by the "
            "coordinator; dosage counts that coordinator's contacts only. Caseload as reported "
            "in the coordinators file (it includes students outside the study).",
        ]
        if self.targets.guide:
            g = self.targets.guide[0]
            notes.append(f"Caseload guide: {g.describe()} students ({g.source}).")
        if m.coord.any() or m.caseload.any() or m.coord_share.any():
            notes.append(self._privacy_note(k))
        return Table(
            pd.DataFrame(rows), title="Caseloads and dosage by coordinator", notes=tuple(notes)
        )

    def _arm_cells(self, k: int) -> dict[str, dict[str, bool]]:
        """Which cells of each research group's row are hidden."""
        a = self._arms.set_index("arm")
        out: dict[str, dict[str, bool]] = {}
        for arm in ("program", "control"):
            if arm not in a.index:
                continue
            r = _rec(a, arm)
            n_all, got = float(r["students"]), float(r["received"])
            cuts = self._contact_cuts(arm, k)
            t1 = float(r["tier1_received"])
            cells = {
                "students": 0 < n_all < k,
                "received": 1.0 not in cuts,
                "means": 0 < got < k,
                "tier1": 0 < t1 < k or 0 < n_all - t1 < k,
            }
            for t in self.thresholds[1:]:
                cells[f"t{t}"] = float(t) not in cuts
            if cells["students"]:
                cells = dict.fromkeys(cells, True)
            out[arm] = cells
        return out

    def _table_arm(self, k: int) -> Table:
        a = self._arms.set_index("arm")
        hide = self._arm_cells(k)
        x = SUPPRESSED
        rows = []
        for arm, label in (("program", "Program group"), ("control", "Control group")):
            if arm not in a.index:
                continue
            r, h = _rec(a, arm), hide[arm]
            row: dict[str, Any] = {
                "Group": label,
                "Students": x if h["students"] else f"{int(r['students']):,}",
                "Received Level 2 services": x if h["received"] else f"{int(r['received']):,}",
                "% received": x if h["received"] else _pct(r["share_received"]),
            }
            for t in self.thresholds[1:]:
                row[f"% with {t}+ contacts"] = x if h[f"t{t}"] else _pct(r[f"share_at_least_{t}"])
            row["Contacts per student"] = (
                x if h["means"] else _fmt_num(r["contacts_per_student"], 1)
            )
            row["Hours per student"] = x if h["means"] else _fmt_num(r["hours_per_student"], 1)
            row["Contacts per student served"] = (
                x if h["means"] or h["received"] else _fmt_num(r["contacts_per_served"], 1)
            )
            row["% with a Level 1 contact"] = x if h["tier1"] else _pct(r["share_tier1"])
            rows.append(row)
        if {"program", "control"} <= set(a.index):
            p, c = _rec(a, "program"), _rec(a, "control")
            hp, hc = hide["program"], hide["control"]

            def either(key: str) -> bool:
                return hp[key] or hc[key]

            row = {"Group": "Difference (program - control)", "Students": ""}
            row["Received Level 2 services"] = ""
            row["% received"] = (
                x if either("received") else _pp(p["share_received"] - c["share_received"])
            )
            for t in self.thresholds[1:]:
                col = f"share_at_least_{t}"
                row[f"% with {t}+ contacts"] = x if either(f"t{t}") else _pp(p[col] - c[col])
            row["Contacts per student"] = (
                x
                if either("means")
                else _fmt_num(p["contacts_per_student"] - c["contacts_per_student"], 1)
            )
            row["Hours per student"] = (
                x
                if either("means")
                else _fmt_num(p["hours_per_student"] - c["hours_per_student"], 1)
            )
            row["Contacts per student served"] = ""
            row["% with a Level 1 contact"] = (
                x if either("tier1") else _pp(p["share_tier1"] - c["share_tier1"])
            )
            rows.append(row)
        notes = [
            "All randomly assigned students, by research group. The difference is the service "
            "contrast an impact estimate rests on: how much more case management the program "
            "group received than the control group (pp: percentage points).",
            "Received: at least one Level 2 contact. The difference in the share with at least "
            "k contacts is the first stage of a complier average causal effect (CACE) that "
            "defines receipt as k or more contacts; cis_eval.service_receipt(students, "
            "contacts, min_contacts=k) gives that indicator.",
        ]
        if any(any(h.values()) for h in hide.values()):
            notes.append(self._privacy_note(k))
        return Table(
            pd.DataFrame(rows),
            title="Services received by research group (the service contrast)",
            notes=tuple(notes),
        )

    def _table_dosage(self, k: int) -> Table:
        d = self._dosage()
        hidden, _ = self._network_hidden(k)
        n_served = len(self._served())
        x = SUPPRESSED
        rows = []
        for r in _records(d):
            digits = MEASURES[r["measure"]].digits
            t = self.targets.effective(r["measure"])
            n = int(r["students"])
            hide = hidden or 0 < n < k
            hide_n = hide or 0 < n_served - n < k
            meets = ""
            if t is not None:
                cuts = self._measure_cuts(r["measure"], k)
                ok = all(c in cuts for c in _target_cuts(t))
                meets = x if hide or not ok else _pct(r["share_meeting_target"])
            rows.append(
                {
                    "Measure": r["label"],
                    "Students": x if hide_n else f"{n:,}",
                    "Mean": x if hide else _fmt_num(r["mean"], digits),
                    "25th percentile": x if hide else _fmt_num(r["q1"], digits),
                    "Median": x if hide else _fmt_num(r["median"], digits),
                    "75th percentile": x if hide else _fmt_num(r["q3"], digits),
                    "Target": t.describe() if t else "",
                    "% of students meeting it": meets,
                }
            )
        notes = ["Program-group students with at least one Level 2 contact."]
        if any(v == x for row in rows for v in row.values()):
            notes.append(self._privacy_note(k))
        return Table(pd.DataFrame(rows), title="Dosage per student reached", notes=tuple(notes))

    def _table_benchmarks(self, k: int) -> Table:
        b = self._benchmarks()
        m = self._masks(k)
        x = SUPPRESSED
        rows = []
        for r in _records(b):
            meas = MEASURES[r["measure"]]
            if r["measure"] == "share_reached":
                hide = m.total_reach
            elif r["measure"] == "caseload":
                hide = m.caseload_total
            elif meas.level == "student":
                hide = m.total_dosage
            else:
                hide = False
            share = r["measure"] in ("share_reached", "level2_time_share")
            value = _pct(r["value"]) if share else _fmt_num(r["value"], meas.digits)
            study = (
                r["study_benchmark"].replace("at least ", "about ").replace("at most ", "about ")
            )
            row = {
                "Measure": meas.label,
                "This report": x if hide else value,
                "Statistic": meas.statistic,
                "Study benchmark": study,
                "Compared with the study": x if hide else r["status_study"],
            }
            if self.targets.user:
                row["Your target"] = r["target"]
                row["Compared with your target"] = x if hide else r["status_target"]
            if self.targets.guide:
                row["Practice guide"] = r["guide"]
                row["Compared with the guide"] = x if hide else r["status_guide"]
            rows.append(row)
        src = self.targets.study[0].source if self.targets.study else ""
        notes = [
            f"Study benchmarks: published averages of the Communities In Schools evaluation "
            f"({src}). Dosage is per program-group student reached; caseload and time on "
            "Level 2 are averages over coordinators.",
            f"near: within {self.targets.tolerance:.0%} of the benchmark or target.",
        ]
        if self.targets.user:
            notes.insert(1, f"Your targets: {self.targets.name}.")
        if self.targets.guide:
            notes.insert(1, f"Practice guide: {self.targets.guide[0].source}.")
        if any(v == x for row in rows for v in row.values()):
            notes.append(self._privacy_note(k))
        return Table(pd.DataFrame(rows), title="Fidelity at a glance", notes=tuple(notes))

    def _mix_masks(self, k: int) -> tuple[np.ndarray, list[str], dict[tuple[int, str], bool]]:
        """Suppression of the network mix and the school-by-area mix, solved together.

        Cells: each school's contacts by area, the school totals (hidden exactly when the
        school's dosage is, since dosage x students gives them), the network totals by
        area, by mode and for Level 1, and the network Level 2 total (published).
        """
        mix = self._service_mix[self._service_mix["arm"] == "program"]
        sm = self._school_service_mix
        schools = list(dict.fromkeys(sm["school_id"]))
        masks = self._masks(k)
        hidden = dict(zip(self._schools["school_id"], masks.dosage, strict=True))
        reached = dict(
            zip(self._schools["school_id"], self._schools["students_reached"], strict=True)
        )
        n_s, n_a, n_m = len(schools), len(_SVC), len(_MODES)
        interior = np.arange(n_s * n_a).reshape(n_s, n_a)
        rt = n_s * n_a + np.arange(n_s)
        ct = n_s * n_a + n_s + np.arange(n_a)
        g2 = n_s * n_a + n_s + n_a
        md = g2 + 1 + np.arange(n_m)
        l1 = g2 + 1 + n_m + np.arange(n_a)
        g1 = g2 + 1 + n_m + n_a
        counts = np.zeros(g1 + 1)
        primary = np.zeros(g1 + 1, bool)
        protected = np.zeros(g1 + 1, bool)
        stud = sm.pivot_table(index="school_id", columns="code", values="students", aggfunc="sum")
        for i, s in enumerate(schools):
            for j, a in enumerate(_SVC):
                counts[interior[i, j]] = float(stud.loc[s, a]) if a in stud.columns else 0.0
            primary[interior[i]] = hidden.get(s, True)
            counts[rt[i]] = float(reached.get(s, 0))
            primary[rt[i]] = hidden.get(s, True)
        protected[rt] = True
        l2 = mix[mix["tier"] == 2]
        by_area = l2[l2["dimension"] == "service_area"].set_index("code")["students"]
        by_mode = l2[l2["dimension"] == "mode"].set_index("code")["students"]
        l1_area = mix[(mix["tier"] == 1) & (mix["dimension"] == "service_area")].set_index("code")
        for j, a in enumerate(_SVC):
            counts[ct[j]] = float(by_area.get(a, 0))
            counts[l1[j]] = float(l1_area["students"].get(a, 0))
        for j, mo in enumerate(_MODES):
            counts[md[j]] = float(by_mode.get(mo, 0))
        counts[g2] = float(len(self._served()))
        primary[g2] = masks.total_dosage
        protected[g2] = True
        counts[g1] = float((self._program()["tier1_contacts"] > 0).sum())
        cons: list[tuple[int | None, list[int]]] = []
        cons += [(int(rt[i]), interior[i].tolist()) for i in range(n_s)]
        cons += [(int(ct[j]), interior[:, j].tolist()) for j in range(n_a)]
        cons += [(g2, rt.tolist()), (g2, ct.tolist()), (g2, md.tolist()), (g1, l1.tolist())]
        mask = suppression_mask(
            counts, min_cell=k, constraints=cons, primary=primary, protected=protected
        )
        net = {(2, a): bool(mask[ct[j]]) for j, a in enumerate(_SVC)}
        net.update({(1, a): bool(mask[l1[j]]) for j, a in enumerate(_SVC)})
        net.update({(2, mo): bool(mask[md[j]]) for j, mo in enumerate(_MODES)})
        net[(1, "total")] = bool(mask[g1])
        return mask[interior], schools, net

    def _table_mix(self, k: int) -> Table:
        mix = self._service_mix[self._service_mix["arm"] == "program"].set_index(
            ["tier", "dimension", "code"]
        )
        _, _, net = self._mix_masks(k)
        x = SUPPRESSED
        rows = []
        for dim, codes, labels in (("service_area", _SVC, SERVICE_TYPES), ("mode", _MODES, MODES)):
            for code in codes:
                r2 = _rec(mix, (2, dim, code))
                h2 = net.get((2, code), False)
                row: dict[str, Any] = {
                    "Service": ("Mode: " if dim == "mode" else "") + labels[code],
                    "Level 2 contacts": x if h2 else f"{int(r2['contacts']):,}",
                    "% of Level 2 contacts": x if h2 else _pct(r2["share_of_contacts"], 1),
                    "% of Level 2 hours": x if h2 else _pct(r2["share_of_hours"], 1),
                    "Students": x if h2 else f"{int(r2['students']):,}",
                    "Level 1 contacts": "",
                    "% of Level 1 contacts": "",
                }
                if dim == "service_area":
                    r1 = _rec(mix, (1, dim, code))
                    h1 = net.get((1, code), False) or net[(1, "total")]
                    row["Level 1 contacts"] = x if h1 else f"{int(r1['contacts']):,}"
                    row["% of Level 1 contacts"] = x if h1 else _pct(r1["share_of_contacts"], 1)
                rows.append(row)
        notes = [
            "Program-group students. Students: those with at least one Level 2 contact of "
            "that kind (a student can receive several). Level 1 services are school-wide.",
        ]
        if any(net.values()):
            notes.append(self._privacy_note(k))
        return Table(pd.DataFrame(rows), title="Service mix", notes=tuple(notes))

    def _table_school_mix(self, k: int) -> Table:
        sm = self._school_service_mix
        mask, schools, net = self._mix_masks(k)
        share = sm.pivot_table(index="school_id", columns="code", values="share_of_contacts")
        x = SUPPRESSED
        rows = []
        for i, s in enumerate(schools):
            row: dict[str, Any] = {"School": s}
            for j, a in enumerate(_SVC):
                v = share.loc[s, a] if a in share.columns else np.nan
                row[SERVICE_TYPES[a]] = x if mask[i, j] else _pct(v)
            rows.append(row)
        mix = self._service_mix
        l2 = mix[
            (mix["arm"] == "program") & (mix["tier"] == 2) & (mix["dimension"] == "service_area")
        ].set_index("code")
        total: dict[str, Any] = {"School": "All schools"}
        for a in _SVC:
            total[SERVICE_TYPES[a]] = x if net[(2, a)] else _pct(l2.loc[a, "share_of_contacts"])
        rows.append(total)
        notes = ["Share of each school's Level 2 contacts with program-group students, by area."]
        if mask.any() or any(net[(2, a)] for a in _SVC):
            notes.append(self._privacy_note(k))
        return Table(pd.DataFrame(rows), title="Service mix by school", notes=tuple(notes))

    def _dose_masks(self, frame: pd.DataFrame, k: int) -> pd.DataFrame:
        """Per cell: hidden or not.

        Band sizes come from published cuts, so they are safe; an outcome mean over fewer
        than k students is hidden with a complement, because the bands' means add up to
        the program group's mean.
        """
        out = pd.DataFrame(False, index=frame.index, columns=["students", *_DOSE_OUTCOMES])
        ctrl = (frame["arm"] == "control").to_numpy()
        prog = np.flatnonzero(~ctrl)
        out["students"] = (frame["students"] > 0) & (frame["students"] < k)
        for o in _DOSE_OUTCOMES:
            if f"n_{o}" not in frame.columns:
                continue
            n = frame[f"n_{o}"].to_numpy(float)
            mask = np.zeros(len(frame), bool)
            mask[ctrl] = (n[ctrl] > 0) & (n[ctrl] < k)
            cells = np.append(n[prog], n[prog].sum())
            sub = suppression_mask(
                cells, min_cell=k, constraints=[(len(prog), list(range(len(prog))))]
            )
            mask[prog] = sub[:-1]
            out[o] = mask | out["students"].to_numpy()
        return out

    def _table_dose(self, k: int) -> Table:
        title = "Outcomes by Level 2 dosage (exploratory, non-experimental)"
        if self._outcomes is None:
            return Table(
                pd.DataFrame({"Note": ["The students table has no outcome fields."]}), title=title
            )
        frame = self._dose_frame({"program": self._dose_cuts(k), "control": []})
        hide = self._dose_masks(frame, k)
        x = SUPPRESSED
        labels = {o.name: o.label for o in OUTCOMES}
        rows = []
        for i in range(len(frame)):
            r = frame.iloc[i]
            row: dict[str, Any] = {
                "Group": r["group"] if r["arm"] == "control" else f"Program: {r['group']}",
                "Students": x if hide.iloc[i]["students"] else f"{int(r['students']):,}",
            }
            for o in _DOSE_OUTCOMES:
                if o not in frame.columns:
                    continue
                binary = o in ("chronic_absence", "core_course_failure")
                shown = _pct(r[o]) if binary else _fmt_num(r[o], 2)
                row[labels[o] + (" (%)" if binary else "")] = x if hide.iloc[i][o] else shown
            rows.append(row)
        notes = [
            "EXPLORATORY AND NON-EXPERIMENTAL. Students who received more services differ "
            "from those who received fewer (in needs, engagement and attendance), so these "
            "differences are not effects of the services. The experimental comparison is "
            "program versus control. The effect of receiving services is estimated by the "
            "complier average causal effect (CACE), with random assignment as the instrument "
            "and receipt of at least k contacts (cis_eval.service_receipt) as the treatment.",
            f"Chronically absent: missed at least {self.chronic_threshold:.0%} of enrolled "
            "days. Means over students with the outcome recorded.",
        ]
        if hide.to_numpy().any():
            notes.append(self._privacy_note(k))
        return Table(pd.DataFrame(rows), title=title, notes=tuple(notes))

    # ---------------------------------------------------------------- plots

    def plot(
        self,
        kind: PlotKind = "dosage",
        *,
        measure: str = "contacts",
        ax: Axes | None = None,
        min_cell: int | None = None,
    ) -> Axes:
        """Draw one fidelity chart on ``ax`` (created if None) and return it.

        Parameters
        ----------
        kind : {"dosage", "benchmarks", "weekly", "dose_response"}, default "dosage"
            ``"dosage"``: distribution of one measure among program students reached
            (bars merged so each holds 0 or at least ``min_cell`` students);
            ``"benchmarks"``: each school's mean of one measure against the study
            benchmark and the user's target; ``"weekly"``: Level 2 and Level 1 contacts
            per week over the school year; ``"dose_response"``: an outcome by dosage band
            (exploratory, non-experimental).
        measure : str, default "contacts"
            For ``"dosage"`` and ``"benchmarks"``: contacts, hours, weeks, active_weeks
            or contacts_per_month; for ``"dose_response"``: an outcome (chronic absence
            when left at "contacts").
        ax : matplotlib.axes.Axes, optional
            Axes to draw on.
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        matplotlib.axes.Axes
        """
        check_option("kind", kind, ("dosage", "benchmarks", "weekly", "dose_response"))
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        if kind in ("dosage", "benchmarks"):
            check_option("measure", measure, _DOSAGE)
        outcome = "chronic_absence" if measure == "contacts" else measure
        if kind == "dose_response":
            check_option("measure", outcome, _DOSE_OUTCOMES)
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.4, 3.6))
        if kind == "dosage":
            return self._plot_dosage(ax, measure, k)
        if kind == "benchmarks":
            return self._plot_benchmarks(ax, measure, k)
        if kind == "weekly":
            return self._plot_weekly(ax, k)
        return self._plot_dose(ax, outcome, k)

    def _plot_dosage(self, ax: Axes, measure: str, k: int) -> Axes:
        m = MEASURES[measure]
        ax.set_xlabel(m.label, fontsize=9)
        ax.set_ylabel("Students reached", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        hidden, _ = self._network_hidden(k)
        cuts = self._measure_cuts(measure, k)
        if hidden or (measure == "contacts" and 1.0 not in cuts):
            ax.text(
                0.5,
                0.5,
                "suppressed (too few students)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
                color="#777",
            )
            return ax
        v = self._served()[_student_column(measure)].astype(float).dropna().to_numpy()
        width = {"contacts": 5.0, "hours": 4.0, "weeks": 4.0, "active_weeks": 4.0}.get(measure, 1.0)
        edges, counts = _safe_histogram(v, width, k, cuts)
        unit = {"contacts": "contacts", "hours": "hours"}.get(measure, "weeks")
        # Merged bars are wider: draw density (students per standard bar width) so that a
        # wide bar does not look like a crowd.
        ax.set_ylabel(f"Students per {width:g} {unit}", fontsize=9)
        if len(counts):
            ax.bar(
                edges[:-1],
                counts * width / np.diff(edges),
                width=np.diff(edges),
                align="edge",
                color="#5b8fa8",
                edgecolor="white",
            )
        for which, style, name in (("study", "-", "study"), ("user", "--", "target")):
            t = self.targets.get(measure, which)  # type: ignore[arg-type]
            if t is not None and t.low is not None:
                ax.axvline(
                    t.low,
                    color="#a03000",
                    linestyle=style,
                    linewidth=1.5,
                    label=f"{name}: {t.low:g}",
                )
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=8)
        return ax

    def _plot_benchmarks(self, ax: Axes, measure: str, k: int) -> Axes:
        s = self.to_frame("school")
        hidden = self._masks(k).dosage
        col = f"{measure}_{MEASURES[measure].statistic}"
        y = np.arange(len(s))[::-1]
        status = s.get(f"status_{measure}", pd.Series([""] * len(s))).tolist()
        palette = {"meets": "#2b7a3d", "near": "#c58a00", "below": "#a03000", "above": "#a03000"}
        vals = s[col].astype(float).to_numpy()
        show = ~hidden & np.isfinite(vals)
        ax.scatter(
            vals[show],
            y[show],
            c=[palette.get(st, "#555") for st, ok in zip(status, show, strict=True) if ok],
            zorder=3,
            s=22,
        )
        for yi, hid in zip(y, hidden, strict=True):
            if hid:
                ax.text(
                    0.02,
                    yi,
                    "suppressed",
                    va="center",
                    fontsize=7,
                    color="#777",
                    transform=ax.get_yaxis_transform(),
                )
        for which, style, color, name in (
            ("study", "-", "#555", "study"),
            ("user", "--", "#a03000", "target"),
        ):
            t = self.targets.get(measure, which)  # type: ignore[arg-type]
            if t is not None and t.low is not None:
                ax.axvline(
                    t.low, color=color, linestyle=style, linewidth=1, label=f"{name}: {t.low:g}"
                )
        ax.set_yticks(y)
        ax.set_yticklabels(s["school_id"].astype(str), fontsize=7 if len(s) > 20 else 8)
        ax.set_xlabel(f"{MEASURES[measure].label}", fontsize=9)
        ax.set_xlim(left=0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=7, loc="lower right")
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def _weekly_series(self, k: int) -> dict[int, pd.DataFrame]:
        """Program-group contacts per week, with weeks hidden for privacy.

        A week's contacts describe the students seen that week; the weeks add up to the
        published total, so a hidden week takes another with it.
        """
        w = self._weekly[self._weekly["arm"] == "program"]
        hidden, _ = self._network_hidden(k)
        out = {}
        for tier in (2, 1):
            d = w[w["tier"] == tier].reset_index(drop=True)
            counts = d["students"].to_numpy(float)
            if hidden or 0 < counts.sum() < k:
                mask = np.ones(len(d), bool)
            else:
                mask = suppression_mask(
                    counts, min_cell=k, constraints=[(None, list(range(len(d))))]
                )
            out[tier] = d.assign(suppressed=mask)
        return out

    def _plot_weekly(self, ax: Axes, k: int) -> Axes:
        import matplotlib.dates as mdates

        series = self._weekly_series(k)
        for tier, color, label in (
            (2, "#00597c", "Level 2 (case-managed)"),
            (1, "#8fb3c4", "Level 1 (school-wide)"),
        ):
            d = series[tier]
            y = d["contacts"].astype(float).where(~d["suppressed"])
            ax.plot(
                pd.to_datetime(d["week_start"]),
                y,
                color=color,
                label=label,
                linewidth=1.6,
                marker="o",
                markersize=2.5,
            )
        ax.set_ylabel("Contacts per week", fontsize=9)
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.xaxis.set_major_locator(mdates.MonthLocator())  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))  # type: ignore[no-untyped-call]
        return ax

    def _plot_dose(self, ax: Axes, outcome: str, k: int) -> Axes:
        label = {o.name: o.label for o in OUTCOMES}[outcome]
        ax.set_title("Exploratory, non-experimental", fontsize=9, loc="left")
        ax.spines[["top", "right"]].set_visible(False)
        if self._outcomes is None or outcome not in self._outcomes.columns:
            ax.text(0.5, 0.5, "no outcome data", ha="center", transform=ax.transAxes)
            return ax
        frame = self._dose_frame({"program": self._dose_cuts(k), "control": []})
        hide = self._dose_masks(frame, k)[outcome].to_numpy()
        prog = (frame["arm"] == "program").to_numpy()
        vals = frame[outcome].to_numpy(float)
        xs = np.arange(int(prog.sum()))
        heights = np.where(hide[prog], 0.0, np.nan_to_num(vals[prog]))
        ax.bar(xs, heights, color=np.where(hide[prog], "#dddddd", "#5b8fa8"))
        for xi, hid in zip(xs, hide[prog], strict=True):
            if hid:
                ax.text(
                    float(xi), 0, "suppressed", rotation=90, ha="center", va="bottom", fontsize=7
                )
        ctrl = np.flatnonzero(~prog)
        if ctrl.size and not hide[ctrl[0]]:
            ax.axhline(
                vals[ctrl[0]], color="#a03000", linestyle="--", linewidth=1, label="control group"
            )
            ax.legend(frameon=False, fontsize=8)
        names = [
            g.replace(" contacts", "").replace(" contact", "").replace("No Level 2", "none")
            for g in frame.loc[prog, "group"]
        ]
        ax.set_xticks(xs)
        ax.set_xticklabels(names, fontsize=8)
        ax.set_xlabel("Level 2 contacts (program group)", fontsize=9)
        ax.set_ylabel(label, fontsize=9)
        return ax

    # ---------------------------------------------------------------- report

    def summary(self, *, min_cell: int | None = None) -> list[str]:
        """Plain-language summary sentences for a program director (privacy-safe).

        Parameters
        ----------
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        list of str
        """
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        m = self._masks(k)
        p, served = self._program(), self._served()
        n_p, n_s = len(p), len(served)
        lo, hi = self.school_year
        who = f"fewer than {k}" if 0 < n_p < k else f"{n_p:,}"
        out = [
            f"This report covers Level 2 case management logged for {who} program-group "
            f"students in {_n(len(self._schools), 'school')}, served by "
            f"{_n(len(self._coordinators), 'site coordinator')}, in the school year "
            f"{lo:%B %Y} to {hi:%B %Y}."
        ]
        if m.total_dosage:
            out.append(
                f"Fewer than {k} students were reached, so dosage figures are suppressed to "
                "protect student privacy."
            )
            return out
        if m.total_reach:
            out.append(f"{n_s:,} program students had at least one Level 2 contact.")
        else:
            out.append(
                f"{n_s:,} of {n_p:,} program students ({n_s / n_p:.0%}) had at least one "
                "Level 2 contact."
            )
        c = served["contacts"].astype(float)
        h = served["hours"].astype(float)
        w = served["span_weeks"].astype(float)
        study = {name: self.targets.get(name, "study") for name in ("contacts", "hours", "weeks")}
        out.append(
            f"Students reached received on average {c.mean():.1f} contacts (the middle half "
            f"between {c.quantile(0.25):.0f} and {c.quantile(0.75):.0f}), {h.mean():.1f} hours "
            f"of service and {w.mean():.1f} weeks from first to last contact. In the CIS "
            f"evaluation, case-managed students received about {_low(study['contacts'])} "
            f"contacts, {_low(study['hours'])} hours and {_low(study['weeks'])} weeks "
            "(Corrin et al. 2015)."
        )
        sch = self.to_frame("school")
        short = []
        for i in range(len(sch)):
            if m.dosage[i]:
                continue
            hidden = ("share_reached",) if m.reach[i] else ()
            if self._short(sch.iloc[i], _SCHOOL_FLAGS, hidden):
                short.append(str(sch["school_id"].iloc[i]))
        visible = int((~m.dosage).sum())
        if visible:
            names = ", ".join(short[:8]) + (" and others" if len(short) > 8 else "")
            out.append(
                f"{len(short)} of the {visible} schools shown fall more than "
                f"{self.targets.tolerance:.0%} short of at least one target"
                + (f": {names}." if short else ".")
            )
        arms = self._arms.set_index("arm")
        if {"program", "control"} <= set(arms.index):
            cells = self._arm_cells(k)
            prog, ctrl = _rec(arms, "program"), _rec(arms, "control")
            if not cells["control"]["received"] and not cells["program"]["received"]:
                diff = prog["contacts_per_student"] - ctrl["contacts_per_student"]
                extra = (
                    f" The program group received {diff:.1f} more contacts per student."
                    if not cells["control"]["means"] and not cells["program"]["means"]
                    else ""
                )
                out.append(
                    f"In the control group, {ctrl['share_received']:.0%} of "
                    "students received Level 2 services (crossover), against "
                    f"{prog['share_received']:.0%} in the program group."
                    + extra
                    + " This service contrast is what an impact estimate rests on."
                )
            else:
                out.append(
                    "Level 2 services to the control group (crossover) involve too few "
                    "students to report."
                )
        return out

    def report(self, *, title: str | None = None, min_cell: int | None = None) -> Report:
        """The affiliate report: summary, tables per school and coordinator, charts, notes.

        Parameters
        ----------
        title : str, optional
            Report title.
        min_cell : int, optional
            Override the result's ``min_cell``.

        Returns
        -------
        Report
            ``Report.to_html()`` gives one self-contained file: charts embedded as SVG, no
            scripts and no external requests. It never shows a student identifier, and
            every figure describing fewer than ``min_cell`` students is suppressed
            together with its complements.
        """
        from ..present.report import Report

        rep = Report(title or "Implementation fidelity: Communities In Schools case management")
        return self.add_to_report(rep, min_cell=min_cell, full=True)

    def add_to_report(
        self, rep: Report, *, min_cell: int | None = None, full: bool = True
    ) -> Report:
        """Append the fidelity sections to an existing report (the demo uses this).

        Parameters
        ----------
        rep : Report
            The report to extend.
        min_cell : int, optional
            Override the result's ``min_cell``.
        full : bool, default True
            Include the coordinator, school service mix, dose-response and definitions
            sections; False gives the short version.

        Returns
        -------
        Report
            The same report.
        """
        k = self.min_cell if min_cell is None else check_min_cell(min_cell)
        lines = self.summary(min_cell=k)
        rep.heading("Implementation fidelity: summary" if not full else "Summary")
        rep.text(lines[0], lead=True)
        for line in lines[1:]:
            rep.text(line)
        rep.note(
            "Student privacy: no student identifier appears in this report. Any figure "
            f"describing fewer than {k} students is replaced by {SUPPRESSED}, and so are "
            "enough other figures that it cannot be worked out from the totals."
        )
        rep.table(self.table("benchmarks", min_cell=k))
        rep.heading("Dosage by school")
        rep.text(
            "For each school's program-group students: how many were reached, and how much "
            "case management those reached received. The chart places each school against "
            "the study's benchmark (solid line) and your target (dashed line): green meets "
            f"it, amber is within {self.targets.tolerance:.0%}, red falls short."
        )
        self._split(
            rep,
            self.table("school", min_cell=k),
            8,
            "Reach and dosage by school",
            "Timing of service by school",
        )
        rep.figure(
            self._figure_benchmarks(k), "Schools against the benchmarks (mean per student reached)."
        )
        if full:
            rep.heading("Coordinators")
            rep.text(
                "Caseloads, time on Level 2 and the dosage each coordinator logged for "
                "program-group students."
            )
            coord = self.table("coordinator", min_cell=k)
            cols = list(coord.data.columns)
            first = ["Coordinator", "School", "FTE", "Reported caseload", "Time on Level 2"]
            first += [c for c in ("Caseload guide", "Below target on") if c in cols]
            second = ["Coordinator"] + [c for c in cols if c not in first]
            rep.table(Table(coord.data[first], title="Caseloads by coordinator", notes=coord.notes))
            rep.table(Table(coord.data[second], title="Dosage by coordinator", notes=coord.notes))
        rep.heading("How much service students received")
        rep.table(self.table("dosage", min_cell=k))
        rep.figure(
            self._figure_dosage(k),
            f"Distribution among program students reached; bars with fewer than {k} students "
            "are merged with a neighbour.",
        )
        rep.heading("Contacts over the school year")
        rep.figure(
            self._figure(lambda ax: self._plot_weekly(ax, k), (8.0, 2.8)),
            "Contacts with program-group students per week (Monday to Sunday). Gaps are weeks "
            "suppressed for privacy.",
        )
        rep.heading("Service mix")
        rep.table(self.table("service_mix", min_cell=k))
        if full:
            rep.table(self.table("school_service_mix", min_cell=k))
        rep.heading("Program and control groups: the service contrast")
        rep.table(self.table("arm", min_cell=k))
        if full and self._outcomes is not None:
            rep.heading("Outcomes by dosage (exploratory, non-experimental)")
            rep.note(
                "This section is not an impact estimate. Students who received more services "
                "were not chosen at random to receive them, so their outcomes differ for "
                "other reasons too. Use it to raise questions, not to answer them."
            )
            rep.table(self.table("dose_response", min_cell=k))
            rep.figure(
                self._figure(lambda ax: self._plot_dose(ax, "chronic_absence", k), (6.4, 3.0)),
                "Chronic absence by Level 2 dosage in the program group; dashed line: the "
                "control group.",
            )
        if full:
            rep.heading("What the measures mean")
            for meas in MEASURES.values():
                rep.text(f"{meas.label}: {meas.meaning}")
            rep.text(
                "Service contrast: the difference between the program and control groups in "
                "services received. Control-group students can receive Level 2 services "
                "(crossover); the larger the contrast, the more an impact estimate says about "
                "case management."
            )
            rep.text(
                f"Status: meets (at or beyond the benchmark or target), near (within "
                f"{self.targets.tolerance:.0%}), below (or above, for caseloads and days to "
                "first contact)."
            )
            if self.warnings:
                rep.heading("Data checks")
                rep.text("The log passed validation with these warnings:")
                for w in self.warnings:
                    rep.text(w)
            rep.heading("Sources")
            for s in self.targets.sources:
                rep.text(s)
        return rep

    @staticmethod
    def _split(rep: Report, table: Table, n: int, first: str, second: str) -> None:
        """Add a wide table as two narrower ones that share the first column."""
        cols = list(table.data.columns)
        head = cols[:n] + ([cols[-1]] if cols[-1] not in cols[:n] else [])
        rest = [cols[0]] + [c for c in cols[n:] if c not in head]
        rep.table(Table(table.data[head], title=first, notes=table.notes))
        notes = table.notes[:1]
        if (table.data[rest] == SUPPRESSED).to_numpy().any():
            notes += tuple(n for n in table.notes if n.startswith(SUPPRESSED))
        rep.table(Table(table.data[rest], title=second, notes=notes))

    def _figure(self, draw: Callable[[Axes], Axes], size: tuple[float, float]) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=size)
        draw(fig.add_subplot())
        fig.tight_layout()
        return fig

    def _figure_dosage(self, k: int) -> Any:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9.0, 2.6))
        for ax, m in zip(fig.subplots(1, 3), ("contacts", "hours", "weeks"), strict=True):
            self._plot_dosage(ax, m, k)
        fig.tight_layout()
        return fig

    def _figure_benchmarks(self, k: int) -> Any:
        from matplotlib.figure import Figure

        n = len(self._schools)
        fig = Figure(figsize=(9.0, max(2.4, 0.2 * n + 1.0)))
        for ax, m in zip(
            fig.subplots(1, 3, sharey=True), ("contacts", "hours", "weeks"), strict=True
        ):
            self._plot_benchmarks(ax, m, k)
        fig.tight_layout()
        return fig


def service_receipt(
    students: pd.DataFrame,
    contacts: pd.DataFrame,
    *,
    min_contacts: int = 1,
    tier: int = 2,
) -> pd.Series:
    """Whether each student received services: at least ``min_contacts`` logged contacts.

    This is the "treatment received" indicator that random assignment instruments in a
    complier average causal effect (CACE) estimate; raising ``min_contacts`` defines
    receipt as a minimum dose (e.g. 10 contacts).

    Parameters
    ----------
    students : pandas.DataFrame
        The students table; needs ``student_id``.
    contacts : pandas.DataFrame
        The contacts log; needs ``student_id`` and ``tier``.
    min_contacts : int, default 1
        Contacts of the given tier a student needs to count as served (at least 1).
    tier : {2, 1}, default 2
        2 counts Level 2 (case-managed) contacts; 1 counts school-wide contacts.

    Returns
    -------
    pandas.Series
        0/1 ``int64`` named ``received_services``, aligned to ``students.index``.
        Students with no contacts get 0.

    Raises
    ------
    ValueError
        If ``min_contacts`` is below 1 or ``tier`` is not 1 or 2.
    DataValidationError
        If a required column is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> import cis_eval as ce
    >>> students = pd.DataFrame({"student_id": ["a", "b", "c"]})
    >>> log = pd.DataFrame({"student_id": ["a", "a", "b"], "tier": [2, 2, 1]})
    >>> ce.service_receipt(students, log).tolist()
    [1, 0, 0]
    >>> ce.service_receipt(students, log, min_contacts=3).tolist()
    [0, 0, 0]
    """
    if isinstance(min_contacts, bool) or not isinstance(min_contacts, (int, np.integer)):
        raise TypeError(f"min_contacts must be an integer, got {type(min_contacts).__name__}")
    if min_contacts < 1:
        raise ValueError(f"min_contacts must be at least 1, got {min_contacts}")
    if isinstance(tier, bool) or tier not in (1, 2):
        raise ValueError(f"tier={tier!r} is not an option; choose 1 or 2")
    _require(students, ("student_id",), "students")
    _require(contacts, ("student_id", "tier"), "contacts")
    tiers = pd.to_numeric(contacts["tier"], errors="coerce")
    ids = contacts["student_id"][tiers.eq(tier).fillna(False).to_numpy()]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        # Count on the codes: fast for long logs, then label with the categories as text.
        counts = ids.value_counts(sort=False)
        counts.index = _id_text(pd.Series(counts.index.astype(object), dtype=object))
    else:
        counts = _id_text(ids).value_counts(sort=False)
    counts = counts.groupby(level=0).sum()
    n = _id_text(students["student_id"]).map(counts).fillna(0).to_numpy(dtype=np.int64)
    return pd.Series(
        (n >= min_contacts).astype(np.int64), index=students.index, name="received_services"
    )
