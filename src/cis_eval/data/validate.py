"""Check tables against the data contract, report every problem at once, return typed copies."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataValidationError, DesignWarning, Problem
from ..present.table import Table
from ..schema import COLUMNS, MODES, SERVICE_TYPES, TABLES, Column

__all__ = ["ValidationReport", "validate"]

MAX_ROWS_SHOWN = 5
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
            notes=("Row numbers count the header as row 1, as in a spreadsheet.",),
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
                lines += [f"  - {p}" for p in group]
        for name in ("students", "contacts", "coordinators"):
            frame = getattr(self, name)
            if frame is not None:
                lines.append(f"{name}: {len(frame):,} rows checked")
        lines.append("Row numbers count the header as row 1, as in a spreadsheet.")
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        """Raise :class:`DataValidationError` listing every error, if there are any."""
        if self.errors:
            raise DataValidationError(self.errors)


class _Checker:
    """Collects problems for one table."""

    def __init__(self, source: str, renamed: dict[str, str] | None = None) -> None:
        self.source = source
        self.renamed = renamed or {}
        self.problems: list[Problem] = []

    def _column(self, column: str | None) -> str | None:
        # a column renamed by a column map is shown under the file's own name too
        if column in self.renamed:
            return f"{self.renamed[column]} ({column})"
        return column

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
        rows = tuple(int(r) + 2 for r in pos[:MAX_ROWS_SHOWN])  # header is spreadsheet row 1
        msg = message.replace("{n}", f"{pos.size:,}")
        self.problems.append(
            Problem(self.source, column, rows, int(pos.size), msg, expected, severity)
        )


def _text(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    out = s.astype("string").str.strip()
    return out.mask(out.eq(""))


def _shown(values: pd.Series, column: str) -> str:
    if column in PRIVATE:
        return ""
    uniq = list(dict.fromkeys(str(v)[:30] for v in values))[:3]
    return " (e.g. " + ", ".join(repr(u) for u in uniq) + ")" if uniq else ""


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
        norm = s.str.lower().str.replace(r"[\s/\-&]+", "_", regex=True)
        norm = norm.replace(
            {"behaviour": "behavior", "social_and_life_skills": "social_life_skills"}
        )
        bad = (~norm.isin(col.categories) & norm.notna()).to_numpy()
        if bad.any():
            ck.add(
                name,
                bad,
                "{n} value(s) not allowed" + _shown(s[bad], name),
                "one of " + ", ".join(col.categories),
            )
        return norm.astype("string")
    if col.kind == "date":
        if pd.api.types.is_datetime64_any_dtype(s):
            return pd.to_datetime(s).astype("datetime64[s]")
        txt = _text(s)
        parsed = pd.to_datetime(txt, errors="coerce", format="ISO8601")
        retry = parsed.isna() & txt.notna()
        if retry.any():
            parsed[retry] = pd.to_datetime(txt[retry], errors="coerce", format="%m/%d/%Y")
        bad = (parsed.isna() & txt.notna()).to_numpy()
        ck.add(
            name,
            bad,
            "{n} value(s) are not dates" + _shown(txt[bad], name),
            "a date such as 2012-09-14 (ISO 8601) or 09/14/2012",
        )
        return parsed.astype("datetime64[s]")
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
        num = pd.to_numeric(txt.str.replace(",", "", regex=False), errors="coerce").astype(
            "Float64"
        )
        nonnum = (num.isna() & txt.notna()).to_numpy()
    if nonnum.any():
        ck.add(name, nonnum, "{n} value(s) are not numbers" + _shown(s[nonnum], name), "a number")
    vals = num.to_numpy(dtype=float, na_value=np.nan)
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


def _typed(frame: pd.DataFrame, table: str, ck: _Checker) -> pd.DataFrame:
    cols = TABLES[table]
    missing = [c.name for c in cols if c.required and c.name not in frame.columns]
    for m in missing:
        ck.add(
            m,
            None,
            "required column is missing",
            f"a column named '{m}' ({COLUMNS[table][m].description})",
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


def _check_students(s: pd.DataFrame, ck: _Checker) -> None:
    if len(s) == 0:
        ck.add(None, None, "the table has no rows", "one row per randomized student")
        return
    cols = set(s.columns)
    if "student_id" in cols:
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
    if {"treatment", "school_id"} <= cols and s["treatment"].notna().all():
        arms = s.groupby("school_id")["treatment"].agg(["min", "max", "size"])
        one = arms[arms["min"] == arms["max"]]
        if len(one):
            names = ", ".join(map(str, one.index[:5])) + (" ..." if len(one) > 5 else "")
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
    if "contact_id" in cols:
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
    return school_year


def _check_coordinators(k: pd.DataFrame, ck: _Checker, students: pd.DataFrame | None) -> None:
    if "coordinator_id" in k.columns:
        ck.add(
            "coordinator_id",
            (k["coordinator_id"].duplicated(keep=False) & k["coordinator_id"].notna()).to_numpy(),
            "{n} row(s) repeat a coordinator identifier",
            "one row per coordinator",
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


def validate(
    students: pd.DataFrame | None = None,
    contacts: pd.DataFrame | None = None,
    coordinators: pd.DataFrame | None = None,
    *,
    school_year: tuple[str, str] | None = None,
    sources: Sequence[str | None] = (None, None, None),
    raise_on_error: bool = True,
) -> ValidationReport:
    """Check the tables against the data contract and return typed copies.

    Every problem is collected before anything is raised, so a file can be fixed in one
    pass. Messages name the file, the column, up to five spreadsheet row numbers and what
    was expected; they never show student identifiers. Inputs are not modified.

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

    Returns
    -------
    ValidationReport
        Typed tables, errors and warnings. Warnings are also issued as one
        :class:`~cis_eval.errors.DesignWarning`.

    Raises
    ------
    DataValidationError
        When ``raise_on_error`` and any error was found; it lists them all.

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
        raise ValueError("give at least one table to validate")
    typed: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    checkers: dict[str, _Checker] = {}
    for (name, frame), src in zip(given.items(), sources, strict=True):
        if frame is None:
            typed[name] = None
            continue
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
        ck = _Checker(src or frame.attrs.get("source") or name, frame.attrs.get("renamed"))
        checkers[name] = ck
        typed[name] = _typed(frame, name, ck)
    year = None
    if school_year is not None:
        year = (pd.Timestamp(school_year[0]), pd.Timestamp(school_year[1]))
    if typed["students"] is not None:
        _check_students(typed["students"], checkers["students"])
    if typed["contacts"] is not None:
        year = _check_contacts(
            typed["contacts"], checkers["contacts"], typed["students"], typed["coordinators"], year
        )
    if typed["coordinators"] is not None:
        _check_coordinators(typed["coordinators"], checkers["coordinators"], typed["students"])
    for ck in checkers.values():
        problems += ck.problems
    report = ValidationReport(
        typed["students"], typed["contacts"], typed["coordinators"], tuple(problems), year
    )
    if raise_on_error:
        report.raise_for_errors()
    if report.warnings:
        warnings.warn(
            "data warnings:\n  - " + "\n  - ".join(map(str, report.warnings)),
            DesignWarning,
            stacklevel=2,
        )
    return report


# Referenced so the service vocabularies stay importable from here for error messages.
_VOCABULARIES = {"service_type": SERVICE_TYPES, "mode": MODES}
