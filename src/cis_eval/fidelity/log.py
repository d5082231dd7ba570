"""The contacts log in DuckDB: reading it, checking it, and aggregating it per student.

The log is one DuckDB view (or, for CSV, a typed temporary table) named ``log`` with
normalised columns, over a pandas DataFrame or a file opened by :func:`cis_eval.io.scan_log`,
so a network-wide log of tens of millions of contacts is never loaded into pandas. The
first pass (:func:`check_log`) counts every problem at once; the next ones build the
per-student table ``st`` that :mod:`cis_eval.fidelity.frames` summarises.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._core.receipt import id_text, require_columns
from ..data.mapping import MappedLog, mapped_columns, needs_recoding, recode_distinct
from ..errors import DataValidationError, OptionError, Problem
from ..io import duckdb_session, scan_export_log, scan_log
from ..schema import COLUMNS, MODES, SERVICE_AREAS, normalise_category

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DAYS_PER_MONTH",
    "Log",
    "aggregate_students",
    "check_log",
    "engine",
    "fetch",
    "lit",
    "needs_trim",
    "open_log",
    "problem_rows",
    "q",
    "sid_key",
]

_SVC: tuple[str, ...] = tuple(SERVICE_AREAS)  # the ten CIS areas and 'other'
_MODES: tuple[str, ...] = tuple(MODES)
_CONTACT_COLUMNS: tuple[str, ...] = tuple(COLUMNS["contacts"])
# The contract's allowed ranges, so the log is held to exactly what validation checks.
_MINUTES = (COLUMNS["contacts"]["minutes"].minimum, COLUMNS["contacts"]["minutes"].maximum)
_TIERS = tuple(
    range(
        int(COLUMNS["contacts"]["tier"].minimum or 1),
        int(COLUMNS["contacts"]["tier"].maximum or 2) + 1,
    )
)
_MAX_WEEKS = 60  # one school year; the week bitmask holds 64
_HEAD_ROWS = 100_000  # rows of an export's log whose wordings are recoded before the pass
_DUCKDB_MEMORY = "2GB"  # DuckDB spills to a temporary folder beyond this
DAYS_PER_MONTH = 365.25 / 12
"""Average days in a month, for contacts per month of service."""


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Log:
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
def engine() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with fidelity's memory limit (its spill folder is io's)."""
    with duckdb_session(_DUCKDB_MEMORY) as con:
        yield con


def fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """The result of a query as a pandas DataFrame."""
    frame: pd.DataFrame = con.execute(sql).df()
    return frame


def _typed(c: str, recoded: list[str | None]) -> tuple[Any, str]:
    """A recoded column's contract values, typed as the log holds them, and the SQL cast."""
    v = pd.Series(recoded, dtype=object)
    if c == "date":
        return pd.to_datetime(v, format="%Y-%m-%d"), "DATE"
    if c in ("service_type", "mode"):
        codes = _SVC if c == "service_type" else _MODES
        return pd.array([codes.index(x) if x in codes else None for x in v], "Int8"), "TINYINT"
    if c in ("minutes", "tier"):
        return pd.to_numeric(v.str.replace(",", ""), errors="coerce"), "DOUBLE"
    return v, "VARCHAR"


def _open_mapped(con: duckdb.DuckDBPyConnection, mlog: MappedLog) -> Log:
    """Make the table ``log`` from an export's log on disk, renamed and recoded in SQL.

    The file is read once, never into pandas. The wordings found in its first rows are
    recoded by :func:`cis_eval.data.mapping.recode_distinct` (exactly as the in-memory
    path recodes them) into small lookup tables that the one pass joins; dates in the
    mapping's declared form (MM/DD/YYYY for ``dates = "US"``, YYYY-MM-DD) are parsed in
    SQL. Rows with any other cell (a wording first seen further down, a date in another
    form) are flagged, and only those are read again, recoded the same way and updated:
    unknown wordings and unreadable dates are then errors naming the spreadsheet rows.
    """
    spec = mlog.spec
    scan, header = scan_export_log(
        con, mlog.path, header_row=spec.header_row, expected=spec.expected_headers
    )
    source = f"contacts ({scan.source})"  # as the in-memory path names the table
    cols, problems, _ = mapped_columns(list(scan.types), spec, source)
    problems += [
        Problem(
            source,
            c,
            (),
            0,
            "required column is missing",
            f"a column mapped to '{c}' ({COLUMNS['contacts'][c].description})",
        )
        for c in _CONTACT_COLUMNS
        if c not in cols
    ]
    if problems:
        raise DataValidationError(problems)
    rel = scan.relation

    def text(c: str) -> str:
        return f"nullif(trim(CAST({q(cols[c])} AS VARCHAR)), '')"

    def recode(c: str, values: pd.Series) -> tuple[pd.DataFrame, list[tuple[Problem, list[str]]]]:
        counts = values.value_counts()
        raw = [str(v) for v in counts.index]
        out, bad = recode_distinct(
            raw, counts.to_list(), spec, cols[c], c, scan.source, shipped=mlog.shipped
        )
        typed, _ = _typed(c, out)
        frame = pd.DataFrame({"raw": pd.Series(raw, dtype=object), "v": typed})
        frame["present"] = pd.Series(out, dtype=object).notna().to_numpy()
        return frame, bad

    recoded = [c for c in _CONTACT_COLUMNS if needs_recoding(spec, c)]
    sql_dates = "date" in recoded and not spec.values.get("date")
    looked_up = [c for c in recoded if not (c == "date" and sql_dates)]
    cats: dict[str, dict[str, int | None]] = {}
    if looked_up:
        head = fetch(
            con,
            "SELECT "
            + ", ".join(f"{text(c)} AS {q(c)}" for c in looked_up)
            + f" FROM (SELECT * FROM {rel} LIMIT {_HEAD_ROWS})",
        )
    t = {c: f"s.{q(c)}" for c in _CONTACT_COLUMNS}
    value: dict[str, str] = {}
    given: dict[str, str] = {}
    unmatched: list[str] = []
    # Cells matched as written (not trimmed: a cell with stray spaces takes the second look).
    as_written = {*looked_up, *(["date"] if sql_dates else [])}
    for c in _CONTACT_COLUMNS:
        if c in looked_up:
            lookup, bad = recode(c, head[c].dropna())
            if bad:  # wrong wordings are left to the second look, which counts every row
                wrong = {v for _, values in bad for v in values}
                lookup = lookup[~lookup["raw"].isin(wrong)]
            cast = _typed(c, [])[1]
            whens = [
                (
                    lit(str(r)),
                    "NULL" if pd.isna(v) else lit(str(v)[:10] if cast == "DATE" else str(v)),
                    bool(g),
                )
                for r, v, g in zip(lookup["raw"], lookup["v"], lookup["present"], strict=True)
            ]
            value[c] = (
                f"CAST(CASE {t[c]} {' '.join(f'WHEN {r} THEN {v}' for r, v, _ in whens)} END "
                f"AS {cast})"
                if whens
                else f"CAST(NULL AS {cast})"
            )
            given[c] = (
                f"{t[c]} IN ({', '.join(r for r, _, g in whens if g)})"
                if any(g for _, _, g in whens)
                else "FALSE"
            )
            known = ", ".join(r for r, _, _ in whens)
            unmatched.append(
                f"({t[c]} IS NOT NULL AND {t[c]} NOT IN ({known}))"
                if known
                else f"{t[c]} IS NOT NULL"
            )
        elif c == "date" and sql_dates:
            x = t[c]
            forms = [
                f"WHEN length({x}) = 10 AND substr({x}, 5, 1) = '-' AND substr({x}, 8, 1) = '-' "
                f"THEN TRY_CAST({x} AS DATE)"
            ]
            if spec.dates == "US":
                forms.append(
                    f"WHEN length({x}) = 10 AND substr({x}, 3, 1) = '/' AND substr({x}, 6, 1) = '/' "
                    f"THEN CAST(try_strptime({x}, '%m/%d/%Y') AS DATE)"
                )
            value[c] = f"CASE {' '.join(forms)} END"
            given[c] = f"{x} IS NOT NULL"
            unmatched.append(f"({x} IS NOT NULL AND ({value[c]}) IS NULL)")
        elif c in ("minutes", "tier"):
            value[c] = f"TRY_CAST(replace({t[c]}, ',', '') AS DOUBLE)"
            given[c] = f"{t[c]} IS NOT NULL"
        else:
            value[c] = t[c]
            given[c] = f"{t[c]} IS NOT NULL"

    def present(c: str) -> str:
        # Only whether a cell was given is kept: bad wordings are errors.
        return f"CASE WHEN {given[c]} THEN TRUE END"

    inner = ", ".join(
        f"{f'CAST({q(cols[c])} AS VARCHAR)' if c in as_written else text(c)} AS {q(c)}"
        for c in _CONTACT_COLUMNS
    )
    select = [
        f"{value['student_id']} AS student_id",
        f"{value['coordinator_id']} AS coordinator_id",
        f"{value['contact_id']} AS contact_id",
        f"{value['date']} AS date",
        f"{present('date')} AS raw_date",
        f"{value['minutes']} AS minutes",
        f"{present('minutes')} AS raw_minutes",
        f"{value['tier']} AS tier",
        f"{present('tier')} AS raw_tier",
        f"{value['service_type']} AS svc",
        f"{present('service_type')} AS raw_svc",
        f"{value['mode']} AS mode",
        f"{present('mode')} AS raw_mode",
        f"{' OR '.join(unmatched) or 'FALSE'} AS _unmatched",
    ]
    trimmed = ", ".join(f"{text(c)} AS {q(c)}" for c in recoded)
    numbered = f"SELECT row_number() OVER () + {header - 2} AS _row, {trimmed} FROM {rel}"
    # The table keeps the file's order, so a row's position (rowid) gives its spreadsheet
    # row (header row + position) for messages, without numbering 25 million rows.
    con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(
            f"CREATE TEMP TABLE log_t AS SELECT {', '.join(select)} FROM (SELECT {inner} FROM {rel}) s"
        )
        con.execute(f"CREATE TEMP VIEW log AS SELECT rowid + {header - 1} AS _row, * FROM log_t")
        n_left = con.execute("SELECT count(*) FROM log WHERE _unmatched").fetchall()[0][0]
        left = (
            fetch(
                con,
                f"SELECT s._row, {', '.join(t[c] for c in recoded)} FROM ({numbered}) s "
                "SEMI JOIN (SELECT _row FROM log WHERE _unmatched) u ON u._row = s._row",
            )
            if n_left
            else None
        )
    finally:
        con.execute("SET preserve_insertion_order = false")
    names = {
        "date": "date",
        "minutes": "minutes",
        "tier": "tier",
        "service_type": "svc",
        "mode": "mode",
        "student_id": "student_id",
        "coordinator_id": "coordinator_id",
        "contact_id": "contact_id",
    }
    if left is not None:
        # The second look: every cell of the flagged rows, recoded as the first rows were.
        errors: list[Problem] = []
        fixed = pd.DataFrame({"_row": left["_row"].to_numpy()})
        for c in recoded:
            lookup, bad = recode(c, left[c].dropna())
            for problem, values in bad:
                rows = left.loc[left[c].isin(values), "_row"].nsmallest(5)
                errors.append(replace(problem, rows=tuple(int(r) + 2 for r in sorted(rows))))
            got = left[[c]].merge(lookup, how="left", left_on=c, right_on="raw")
            fixed[names[c]] = got["v"].to_numpy()
            fixed["raw_" + ("svc" if c == "service_type" else names[c])] = (
                got["present"].fillna(False).astype(bool).where(left[c].notna()).to_numpy()
            )
        if errors:
            raise DataValidationError(errors)
        con.register("log_fixed", fixed)
        kinds = {names[c]: _typed(c, [])[1] for c in recoded}
        sets = ", ".join(
            f"{q(k)} = CAST(f.{q(k)} AS {'BOOLEAN' if k.startswith('raw_') else kinds[k]})"
            for k in fixed.columns
            if k != "_row"
        )
        con.execute(
            f"UPDATE log_t SET {sets} FROM log_fixed f WHERE log_t.rowid = f._row - {header - 1}"
        )
        con.unregister("log_fixed")
    for c in ("service_type", "mode"):
        if c in recoded:
            found = fetch(
                con, f"SELECT DISTINCT {q(names[c])} AS v FROM log WHERE {q(names[c])} IS NOT NULL"
            )
            codes = _SVC if c == "service_type" else _MODES
            cats[c] = {codes[int(i)]: int(i) for i in found["v"]}
    return Log(con, source, "csv", True, cats)


def open_log(
    con: duckdb.DuckDBPyConnection,
    contacts: pd.DataFrame | MappedLog | str | os.PathLike[str],
    column_map: Mapping[str, str] | None,
    *,
    trim: bool = False,
) -> Log:
    """Make the view ``log``: one row per contact, typed and with coded categories.

    Identifiers in a Parquet file are trimmed only when ``trim`` is set: trimming 25
    million strings costs a second per pass, so :func:`check_log` asks for it only
    when it finds keys with stray spaces (CSV text is always trimmed, once).
    """
    if isinstance(contacts, MappedLog):
        return _open_mapped(con, contacts)
    cmap = dict(column_map or {})
    coded: dict[str, tuple[pd.Index, np.ndarray]] = {}
    if isinstance(contacts, pd.DataFrame):
        source = str(contacts.attrs.get("source", "contacts"))
        frame = contacts.rename(columns=cmap) if cmap else contacts
        require_columns(frame, _CONTACT_COLUMNS, source)
        # Categorical columns go in as their integer codes with a small lookup: DuckDB
        # would otherwise rebuild an enum of every category on each pass over the log.
        cols: dict[str, Any] = {}
        for c in _CONTACT_COLUMNS:
            s = frame[c]
            if isinstance(s.dtype, pd.CategoricalDtype) and c != "contact_id":
                text = pd.Index(id_text(pd.Series(s.cat.categories.astype(object))))
                if not (text.has_duplicates or text.hasnans):
                    codes = np.asarray(s.cat.codes, dtype=np.int32)
                    cols[c] = pd.arrays.IntegerArray(codes, codes < 0)
                    used = np.bincount(codes[codes >= 0], minlength=len(text)) > 0
                    coded[c] = (text, used)
                    continue
            cols[c] = s.array  # by position: the frame's own index may have gaps
        slim = pd.DataFrame(cols, index=pd.RangeIndex(len(frame)))
        con.register("contacts_src", slim)
        rel, kind, has_row = "contacts_src", "frame", False
        raw = {c: c for c in _CONTACT_COLUMNS}
        described = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
        types = {str(r[0]): str(r[1]) for r in described}
    elif isinstance(contacts, (str, os.PathLike)):
        scan = scan_log(con, contacts, cmap)
        source, rel, kind, has_row = scan.source, scan.relation, scan.kind, scan.has_row
        raw, types = scan.columns, scan.types
    else:
        raise TypeError(
            f"contacts must be a DataFrame or a path to a CSV or Parquet file, got "
            f"{type(contacts).__name__}"
        )

    def text_expr(c: str) -> str:
        col = q(raw[c])
        if types[raw[c]] != "VARCHAR" or kind == "frame" or (kind == "parquet" and not trim):
            return col
        return f"nullif(trim({col}), '')"

    def date_expr(c: str) -> str:
        col, t = q(raw[c]), types[raw[c]]
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
        col, t = q(raw[c]), types[raw[c]]
        if t == "VARCHAR":
            # no comma is dropped: '12,5' (a decimal comma) and '1,200' are refused as
            # validation refuses them, never read as 125 or 1200
            return f"TRY_CAST(trim({col}) AS DOUBLE)"
        if any(k in t for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")):
            return f"CAST({col} AS DOUBLE)"
        return "CAST(NULL AS DOUBLE)"

    cats: dict[str, dict[str, int | None]] = {}

    def cat_expr(c: str, codes: tuple[str, ...]) -> str:
        col = q(raw[c])
        if c in coded:
            text, used = coded[c]
            norm = {i: normalise_category(str(v)) for i, v in enumerate(text)}
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
        mapping = {str(v): normalise_category(str(v)) for v in values}
        cats[c] = {v: (codes.index(n) if n in codes else None) for v, n in mapping.items()}
        whens = " ".join(
            f"WHEN {lit(v)} THEN {i}" for v, i in sorted(cats[c].items()) if i is not None
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
        f"{q(raw['contact_id'])} AS contact_id",
        f"{date_expr('date')} AS date",
        f"{q(raw['date'])} AS raw_date",
        f"{num_expr('minutes')} AS minutes",
        f"{q(raw['minutes'])} AS raw_minutes",
        f"{num_expr('tier')} AS tier",
        f"{q(raw['tier'])} AS raw_tier",
        f"{cat_expr('service_type', _SVC)} AS svc",
        f"{q(raw['service_type'])} AS raw_svc",
        f"{cat_expr('mode', _MODES)} AS mode",
        f"{q(raw['mode'])} AS raw_mode",
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
    out = Log(con, source, kind, has_row, cats)
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


def problem_rows(log: Log, condition: str, join: str = "") -> tuple[int, ...]:
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


def sid_key(log: Log, alias: str = "l") -> str:
    """SQL for the student key of the log rows aliased ``alias``, joinable to the roster."""
    return log.sid(f"{alias}.student_id")


def needs_trim(log: Log, cube: pd.DataFrame) -> bool:
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


def check_log(
    log: Log,
    school_year: tuple[pd.Timestamp, pd.Timestamp] | None,
    coordinators: pd.DataFrame,
) -> tuple[pd.DataFrame, tuple[pd.Timestamp, pd.Timestamp] | None, list[Problem], list[Problem]]:
    """First pass: validity counts, the date x tier x service x mode cube and arm per row."""
    con = log.con
    key = sid_key(log)
    too_short, too_long = f"l.minutes < {_MINUTES[0]:g}", f"l.minutes > {_MINUTES[1]:g}"
    tiers = ", ".join(str(t) for t in _TIERS)
    cube = fetch(
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
            count(*) FILTER (WHERE {too_short} OR {too_long}) AS minutes_range,
            count(*) FILTER (WHERE l.raw_tier IS NULL) AS tier_missing,
            count(*) FILTER (WHERE l.raw_tier IS NOT NULL AND (l.tier IS NULL
                OR l.tier NOT IN ({tiers}))) AS tier_bad,
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
            rows = problem_rows(log, condition)
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
        f"{too_short} OR {too_long}",
        "{n} value(s) outside the allowed range",
        f"minutes between {_MINUTES[0]:g} and {_MINUTES[1]:g} (a contact longer than a "
        "school day is almost certainly a data-entry error)",
    )
    add("tier", "tier_missing", "l.raw_tier IS NULL", "{n} empty cell(s)", every)
    add(
        "tier",
        "tier_bad",
        f"l.raw_tier IS NOT NULL AND (l.tier IS NULL OR l.tier NOT IN ({tiers}))",
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
        join = f"LEFT JOIN roster r ON r.sid_key = {sid_key(log)}"
        rows = problem_rows(log, "l.student_id IS NOT NULL AND r.student_id IS NULL", join)
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
        rows = problem_rows(log, cond)
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
                    problem_rows(log, cond),
                    n_out,
                    f"{n_out:,} date(s) outside the school year",
                    f"dates from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}",
                )
            )
    if len(coordinators):
        con.register("staff", coordinators)
        text, join = log.coordinator("g.ck")
        per = fetch(
            con,
            f"SELECT g.ck, {text} AS coordinator_id, g.n FROM (SELECT coordinator_id AS ck, "
            f"count(*) AS n FROM log WHERE coordinator_id IS NOT NULL GROUP BY 1) g {join}",
        )
        unknown = per[~per["coordinator_id"].isin(coordinators["coordinator_id"])]
        n_unk = int(unknown["n"].sum())
        if n_unk:
            keys = ", ".join(
                str(int(v)) if not isinstance(v, str) else lit(v) for v in unknown["ck"].head(200)
            )
            rows = problem_rows(log, f"l.coordinator_id IN ({keys})")
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


def aggregate_students(log: Log, year: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    """Second and third passes: per student and per student-coordinator pair, then ``st``."""
    con = log.con
    start = year[0]
    week0 = start - pd.Timedelta(days=start.weekday())  # the Monday on or before
    n_weeks = (year[1] - week0).days // 7 + 1
    if n_weeks > _MAX_WEEKS:
        raise OptionError(
            f"school_year spans {n_weeks} weeks; fidelity measures one school year at a "
            f"time (at most {_MAX_WEEKS} weeks)"
        )
    svc = ",\n".join(
        f"count(*) FILTER (WHERE tier = 2 AND svc = {i}) AS {q('contacts_' + s)}"
        for i, s in enumerate(_SVC)
    )
    modes = ",\n".join(
        f"count(*) FILTER (WHERE tier = 2 AND mode = {i}) AS {q('contacts_' + m)}"
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
        f"coalesce(f.{q('contacts_' + s)}, 0) AS {q('contacts_' + s)}" for s in _SVC
    )
    mode_cols = ", ".join(
        f"coalesce(f.{q('contacts_' + m)}, 0) AS {q('contacts_' + m)}" for m in _MODES
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
            CAST(r.start_date AS DATE) AS start_date,
            coalesce(f.contacts, 0) AS contacts,
            coalesce(f.minutes, 0) / 60.0 AS hours,
            f.first_contact, f.last_contact,
            CASE WHEN f.contacts > 0 THEN (f.last_contact - f.first_contact) / 7.0 END
                AS span_weeks,
            coalesce(bit_count(f.weeks_mask), 0) AS active_weeks,
            {ndays} AS contact_days,
            CASE WHEN f.contacts > 0 THEN
                f.first_contact - CAST(r.start_date AS DATE) END AS days_to_first_contact,
            CASE WHEN f.contacts > 0 THEN f.contacts / greatest(
                (f.last_contact - f.first_contact) / {DAYS_PER_MONTH}, 1.0) END
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
