"""The contacts log in DuckDB: reading it, checking it, and aggregating it per student.

The log is one DuckDB view (or, for CSV, a typed temporary table) named ``log`` with
normalised columns, over a pandas DataFrame or a file opened by :func:`cis_eval.io.scan_log`,
so a network-wide log of tens of millions of contacts is never loaded into pandas. The
first pass (:func:`check_log`) counts every problem at once; the next ones build the
per-student table ``st`` that :mod:`cis_eval.fidelity.frames` summarises.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._core.receipt import id_text, require_columns
from ..data.mapping import MappedLog, mapped_columns, needs_recoding, recode_distinct
from ..data.validate import row_numbering, spreadsheet_rows
from ..errors import DataValidationError, OptionError, Problem
from ..io import duckdb_session, scan_export_log, scan_log, unreadable
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
    "fetch_ordered",
    "lit",
    "needs_trim",
    "open_log",
    "problem_rows",
    "q",
    "register_roster",
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
_AREA_BITS = 11  # per-student Level 2 contacts by area, packed into one 128-bit sum
_MODE_BITS = 21  # and by mode into one 64-bit sum
_HEAD_ROWS = 100_000  # rows of an export's log whose wordings are recoded before the pass
_DUCKDB_MEMORY = "2560MB"  # DuckDB spills to a temporary folder beyond this
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
    # Where a DataFrame's rows sit in its spreadsheet (read through a mapping file, below
    # title rows and around blank rows); empty: the header is row 1.
    numbering: dict[str, Any] = field(default_factory=dict)
    # An export's log on disk: its file and header row, to find the blank lines below the
    # header that DuckDB skips (only when rows are reported).
    export_file: tuple[str, int] | None = None

    def rows(self, numbers: Sequence[int]) -> tuple[int, ...]:
        """Spreadsheet rows of rows numbered as if no blank line were skipped."""
        out = sorted(int(r) for r in numbers)
        if self.export_file is None or not out:
            return tuple(out)
        path, header = self.export_file
        gaps = blank_lines(path, header)
        if not gaps:
            return tuple(out)
        pos = np.asarray(out, dtype=np.int64) - header - 1
        return tuple(int(v) for v in spreadsheet_rows(pos, header, gaps))

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


def blank_lines(path: str, header: int) -> tuple[tuple[int, int], ...]:
    """Runs of empty lines below the header of a CSV file, as ``(first row, how many)``.

    DuckDB skips them, so rows after one are numbered from the file here (a scan in C,
    made only when rows are reported).
    """
    import mmap
    import re

    runs: list[tuple[int, int]] = []
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return ()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            line, last = 1, 0
            for m in re.finditer(rb"\n(?:\r?\n)+", mm):
                line += mm[last : m.start()].count(b"\n") + 1
                n = m.group().count(b"\n") - 1
                last = m.end()
                if line + 1 > header:
                    runs.append((line + 1, n))
                line += n
    return tuple(runs)


def register_roster(con: duckdb.DuckDBPyConnection, roster: pd.DataFrame) -> None:
    """Copy the roster into the table ``roster`` once.

    Every pass joins it; a registered DataFrame would have its text converted again on
    each (a second per pass for a network's million students).
    """
    con.register("_roster_frame", roster)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE roster AS SELECT * FROM _roster_frame")
    finally:
        con.unregister("_roster_frame")


def fetch_ordered(
    con: duckdb.DuckDBPyConnection, table: str, position: str, exclude: tuple[str, ...] = ()
) -> pd.DataFrame:
    """A table's rows in the order of its integer column ``position`` (dropped), as pandas.

    Fetched through Arrow and put in order by NumPy: for a network's million students
    that is half the time of DuckDB's ORDER BY and DataFrame conversion. Dates arrive
    as ``datetime64[ms]`` and integer columns with gaps as floats.
    """
    drop = ", ".join(q(c) for c in (position, *exclude))
    # A relation, not an executed cursor: DuckDB then hands Arrow the rows without a copy.
    arrow = con.sql(f"SELECT {q(position)}, * EXCLUDE ({drop}) FROM {q(table)}").to_arrow_table()
    order = np.argsort(arrow.column(0).to_numpy(), kind="stable")
    frame: pd.DataFrame = arrow.drop_columns([position]).take(order).to_pandas(date_as_object=False)
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
        con,
        mlog.path,
        header_row=spec.header_row,
        expected=spec.expected_headers,
        encoding=spec.encoding,
    )
    source = f"contacts ({scan.source})"  # as the in-memory path names the table
    # blank lines are DuckDB's to skip only in text
    scan_path = scan.path if scan.kind == "csv" else None
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
    # The middle layer computes each lookup and date once; the outer one reads them.
    middle: list[str] = []
    # Cells matched as written (not trimmed: a cell with stray spaces takes the second look).
    as_written = {*looked_up, *(["date"] if sql_dates else [])}
    for c in _CONTACT_COLUMNS:
        if c in looked_up:
            lookup, bad = recode(c, head[c].dropna())
            if bad:  # wrong wordings are left to the second look, which counts every row
                wrong = {v for _, values in bad for v in values}
                lookup = lookup[~lookup["raw"].isin(wrong)]
            cast = _typed(c, [])[1]
            if not len(lookup):
                value[c], given[c] = f"CAST(NULL AS {cast})", "FALSE"
                unmatched.append(f"m.{q(c)} IS NOT NULL")
                continue
            # The known wordings become an ENUM: casting a cell to it is one hash lookup
            # (a CASE would compare the cell with every wording in turn), and the
            # wording's position picks its value and whether it was given.
            enum = q(f"_cis_wordings_{c}")
            con.execute(f"DROP TYPE IF EXISTS {enum}")
            con.execute(
                f"CREATE TYPE {enum} AS ENUM ({', '.join(lit(str(r)) for r in lookup['raw'])})"
            )
            middle.append(f"enum_code(TRY_CAST({t[c]} AS {enum})) + 1 AS {q('_i_' + c)}")
            outs = ", ".join(
                "NULL" if pd.isna(v) else lit(str(v)[:10] if cast == "DATE" else str(v))
                for v in lookup["v"]
            )
            flags = ", ".join("TRUE" if g else "NULL" for g in lookup["present"])
            i = f"m.{q('_i_' + c)}"
            value[c] = f"CAST(list_extract([{outs}], {i}) AS {cast})"
            given[c] = f"list_extract([{flags}]::BOOLEAN[], {i})"
            unmatched.append(f"(m.{q(c)} IS NOT NULL AND {i} IS NULL)")
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
            middle.append(f"CASE {' '.join(forms)} END AS _d_date")
            value[c] = "m._d_date"
            given[c] = f"m.{q(c)} IS NOT NULL"
            unmatched.append(f"(m.{q(c)} IS NOT NULL AND m._d_date IS NULL)")
        elif c in ("minutes", "tier"):
            value[c] = f"TRY_CAST(replace(m.{q(c)}, ',', '') AS DOUBLE)"
            given[c] = f"m.{q(c)} IS NOT NULL"
        else:
            value[c] = f"m.{q(c)}"
            given[c] = f"m.{q(c)} IS NOT NULL"

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
    middle_sql = f"SELECT s.*{''.join(', ' + m for m in middle)} FROM (SELECT {inner} FROM {rel}) s"
    trimmed = ", ".join(f"{text(c)} AS {q(c)}" for c in recoded)
    numbered = f"SELECT row_number() OVER () + {header - 2} AS _row, {trimmed} FROM {rel}"
    # The table keeps the file's order, so a row's position (rowid) gives its spreadsheet
    # row (header row + position) for messages, without numbering 25 million rows.
    con.execute("SET preserve_insertion_order = true")
    try:
        try:
            con.execute(
                f"CREATE TEMP TABLE log_t AS SELECT {', '.join(select)} FROM ({middle_sql}) m"
            )
        except Exception as exc:  # DuckDB's own family: a file it cannot parse
            if not type(exc).__module__.startswith(("duckdb", "_duckdb")):
                raise
            raise unreadable(exc, scan.source, "CSV") from exc
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
    out = Log(
        con,
        source,
        "csv",
        True,
        cats,  # filled below
        export_file=None if scan_path is None else (scan_path, header),
    )
    if left is not None:
        # The second look: every cell of the flagged rows, recoded as the first rows were.
        errors: list[Problem] = []
        fixed = pd.DataFrame({"_row": left["_row"].to_numpy()})
        for c in recoded:
            lookup, bad = recode(c, left[c].dropna())
            for problem, values in bad:
                rows = left.loc[left[c].isin(values), "_row"].nsmallest(5)
                errors.append(replace(problem, rows=out.rows([int(r) + 2 for r in rows])))
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
    return out


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
    if isinstance(contacts, pd.DataFrame):
        out.numbering = row_numbering(contacts)
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
        if log.export_file is not None:
            return log.rows([int(r[0]) + 2 for r in rows])
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
        if log.numbering:
            positions = np.array([int(r[0]) for r in rows], dtype=np.int64)
            return tuple(int(v) for v in spreadsheet_rows(positions, **log.numbering))
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
    *,
    staff_warning: bool = True,
) -> tuple[pd.DataFrame, tuple[pd.Timestamp, pd.Timestamp] | None, list[Problem], list[Problem]]:
    """First pass: validity counts, the date x tier x service x mode cube and arm per row.

    ``staff_warning=False`` leaves out the warning about coordinators missing from the
    coordinators table (validation has given it already).
    """
    con = log.con
    key = sid_key(log)
    too_short, too_long = f"l.minutes < {_MINUTES[0]:g}", f"l.minutes > {_MINUTES[1]:g}"
    tiers = ", ".join(str(t) for t in _TIERS)
    # Non-null counts per cell of the cube, not one filtered count per problem: they
    # cost a third as much on a long log, and every problem count follows from them
    # exactly (a value is never present when its raw cell is empty; date, tier, area
    # and mode are the cube's own keys). Whole and in-range minutes are settled by the
    # cells' extremes and fractional parts, and counted row by row only when they fail.
    cube = fetch(
        con,
        f"""
        SELECT r.treatment AS arm, l.date, l.tier, l.svc, l.mode,
            count(*) AS n,
            sum(l.minutes) AS minutes,
            count(l.student_id) AS sid_n,
            count(r.student_id) AS sid_known,
            count(l.coordinator_id) AS cid_n,
            count(l.contact_id) AS contact_n,
            count(l.raw_date) AS raw_date_n,
            count(l.raw_minutes) AS raw_minutes_n,
            count(l.minutes) AS minutes_n,
            -- flags in SQL, where NaN is greater than any number (as in the row counts)
            coalesce(min(l.minutes) < {_MINUTES[0]:g} OR max(l.minutes) > {_MINUTES[1]:g}, FALSE)
                AS minutes_out,
            coalesce(sum(abs(l.minutes - round(l.minutes))) <> 0, FALSE) AS minutes_frac,
            count(l.raw_tier) AS raw_tier_n,
            count(l.raw_svc) AS raw_svc_n,
            count(l.raw_mode) AS raw_mode_n
        FROM log l LEFT JOIN roster r ON r.sid_key = {key}
        GROUP BY ALL
        """,
    )
    n = cube["n"]
    tier_ok = cube["tier"].isin(_TIERS)
    cube = cube.assign(
        sid_missing=n - cube["sid_n"],
        sid_unknown=cube["sid_n"] - cube["sid_known"],
        cid_missing=n - cube["cid_n"],
        contact_missing=n - cube["contact_n"],
        date_missing=n - cube["raw_date_n"],
        date_bad=cube["raw_date_n"].where(cube["date"].isna(), 0),
        minutes_missing=n - cube["raw_minutes_n"],
        minutes_bad=cube["raw_minutes_n"] - cube["minutes_n"],
        tier_missing=n - cube["raw_tier_n"],
        tier_bad=cube["raw_tier_n"].where(~tier_ok, 0),
        svc_missing=n - cube["raw_svc_n"],
        svc_bad=cube["raw_svc_n"].where(cube["svc"].isna(), 0),
        mode_missing=n - cube["raw_mode_n"],
        mode_bad=cube["raw_mode_n"].where(cube["mode"].isna(), 0),
        minutes_fraction=0,
        minutes_range=0,
    )
    for column, condition, flagged in (
        ("minutes_fraction", "l.minutes <> round(l.minutes)", cube["minutes_frac"]),
        ("minutes_range", f"{too_short} OR {too_long}", cube["minutes_out"]),
    ):
        if flagged.any():
            # one total is enough: only the sum over the cube is ever read
            total_bad = con.execute(f"SELECT count(*) FROM log l WHERE {condition}").fetchall()
            cube.loc[cube.index[0], column] = int(total_bad[0][0])
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
    n_dup = _repeated_contact_ids(con)
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
    if len(coordinators) and staff_warning:
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


_BITMAP_SPAN = 1 << 28  # identifiers spanning at most this many integers use a bitmap
_ID_HASH = "hash(contact_id)"  # the first, cheap look at other identifiers


def _repeated_contact_ids(con: duckdb.DuckDBPyConnection) -> int:
    """How many non-empty contact identifiers repeat an earlier one (rows minus distinct).

    Exports number contacts with whole numbers. When every identifier is written as one
    (no sign, no leading zero, so two different texts are two different numbers), one
    bit per number in their span counts the distinct ones: a quarter of the time of
    DuckDB's ``count(DISTINCT)`` on 25 million rows. Otherwise distinct hashes are
    counted, and only when they fall short are the identifiers compared (so a hash
    collision can never be reported as a duplicate).
    """
    kind = str(con.execute("SELECT typeof(contact_id) FROM log LIMIT 1").fetchall()[0][0])
    integral = kind in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
    )
    if integral or kind == "VARCHAR":
        key = "contact_id" if integral else "TRY_CAST(contact_id AS BIGINT)"
        canonical = "TRUE" if integral else "k IS NOT NULL AND CAST(k AS VARCHAR) = contact_id"
        n, lo, hi, odd = con.execute(
            f"SELECT count(*), min(k), max(k), count(*) FILTER (WHERE NOT coalesce({canonical}, FALSE)) "
            f"FROM (SELECT contact_id, {key} AS k FROM log WHERE contact_id IS NOT NULL)"
        ).fetchall()[0]
        if n == 0:
            return 0
        if odd == 0 and lo is not None and int(hi) - int(lo) < _BITMAP_SPAN:
            return int(
                con.execute(
                    f"SELECT count(*) - bit_count(bitstring_agg(CAST({key} AS BIGINT), "
                    f"{int(lo)}, {int(hi)})) FROM log WHERE contact_id IS NOT NULL"
                ).fetchall()[0][0]
            )
    n_dup = 0
    for expr in (_ID_HASH, "contact_id"):
        n_dup = int(
            con.execute(
                f"SELECT count(*) - count(DISTINCT {expr}) FROM log WHERE contact_id IS NOT NULL"
            ).fetchall()[0][0]
        )
        if not n_dup:
            break
    return n_dup


_MONTH_BITS = 21  # contacts or minutes of a student-coordinator pair in a month
_MONTHS_PER_SUM = 128 // _MONTH_BITS  # months packed into one 128-bit sum


def _pairs_and_months(log: Log, year: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    """Level 2 contacts per student-coordinator pair (``fp``) and per coordinator-month.

    One pass per pair, with each month's contacts and minutes packed into 128-bit sums
    (21 bits a month), gives the pairs and, unpacked, the coordinators' monthly contacts,
    hours and students (a pair counts in the months it has contacts): half the time of
    grouping the log by pair and month. Exact while no pair has 2**21 minutes or more
    (four years of full school days), which is checked; otherwise the monthly table is
    grouped from the log.
    """
    con = log.con
    y0, m0 = year[0].year, year[0].month
    n_months = (year[1].year - y0) * 12 + year[1].month - m0 + 1
    month = f"((year(date) - {y0}) * 12 + month(date) - {m0})"
    size = _MONTHS_PER_SUM
    packs = []
    for p in range((n_months + size - 1) // size):
        lo, hi = p * size, p * size + size - 1
        for name, value in (("c", "1::HUGEINT"), ("m", "CAST(minutes AS HUGEINT)")):
            packs.append(
                f"sum(CASE WHEN mi BETWEEN {lo} AND {hi} THEN {value} << "
                f"({_MONTH_BITS} * (mi - {lo})) END) AS {name}{p}"
            )
    con.execute(
        f"""
        CREATE TEMP TABLE fp0 AS
        SELECT student_id AS sk, coordinator_id AS ck, count(*) AS contacts,
            sum(minutes) AS minutes, {", ".join(packs)}
        FROM (SELECT student_id, coordinator_id, minutes, {month} AS mi FROM log
            WHERE tier = 2 AND student_id IS NOT NULL AND coordinator_id IS NOT NULL)
        GROUP BY ALL
        """
    )
    ctext, cjoin = log.coordinator("g.ck")
    con.execute(
        f"""
        CREATE TEMP TABLE fp AS
        SELECT r.student_id, {ctext} AS coordinator_id, g.contacts, g.minutes / 60.0 AS hours
        FROM fp0 g JOIN roster r ON r.sid_key = {log.sid("g.sk")} {cjoin}
        """
    )
    most = con.execute("SELECT max(minutes) FROM fp0").fetchall()[0][0]
    first = f"DATE '{y0:04d}-{m0:02d}-01'"
    if most is None or most < 1 << _MONTH_BITS:
        mask = (1 << _MONTH_BITS) - 1

        def field(name: str) -> str:
            # the month's field of the pack that holds month i
            return " ".join(
                ["CASE i // " + str(size)]
                + [
                    f"WHEN {p} THEN CAST((coalesce(g.{name}{p}, 0) >> "
                    f"({_MONTH_BITS} * (i - {p * size}))) & {mask} AS BIGINT)"
                    for p in range((n_months + size - 1) // size)
                ]
                + ["END"]
            )

        con.execute(
            f"""
            CREATE TEMP TABLE fcm AS
            SELECT ck, {first} + to_months(CAST(i AS INTEGER)) AS month,
                sum(c) AS contacts, sum(m) / 60.0 AS hours, count(*) FILTER (WHERE c > 0)
                    AS students
            FROM (SELECT g.ck, i, {field("c")} AS c, {field("m")} AS m
                FROM fp0 g JOIN roster r ON r.sid_key = {log.sid("g.sk")},
                    range(0, {n_months}) t(i)
                WHERE r.treatment = 1)
            GROUP BY ALL HAVING sum(c) > 0
            """
        )
    else:
        con.execute(
            f"""
            CREATE TEMP TABLE fcm AS
            SELECT l.coordinator_id AS ck, date_trunc('month', l.date) AS month,
                count(*) AS contacts, sum(l.minutes) / 60.0 AS hours,
                count(DISTINCT l.student_id) AS students
            FROM log l JOIN roster r ON r.sid_key = {log.sid("l.student_id")}
            WHERE l.tier = 2 AND r.treatment = 1 AND l.coordinator_id IS NOT NULL
            GROUP BY ALL
            """
        )
    con.execute("DROP TABLE fp0")


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
    n_days = (year[1] - start).days + 1
    w0 = f"DATE '{week0:%Y-%m-%d}'"
    y0 = f"DATE '{start:%Y-%m-%d}'"

    def per_student(per_area: str) -> str:
        # Distinct weeks and days as bit masks: far cheaper than COUNT(DISTINCT) per student.
        return f"""
        SELECT student_id AS sid_raw,
            count(*) FILTER (WHERE tier = 2) AS contacts,
            sum(minutes) FILTER (WHERE tier = 2) AS minutes,
            min(date) FILTER (WHERE tier = 2) AS first_contact,
            max(date) FILTER (WHERE tier = 2) AS last_contact,
            bit_or(CASE WHEN wk BETWEEN 0 AND 63 THEN 1::UBIGINT << wk END)
                FILTER (WHERE tier = 2) AS weeks_mask,
            bitstring_agg(dy, 0, {n_days - 1})
                FILTER (WHERE tier = 2 AND dy BETWEEN 0 AND {n_days - 1}) AS days_mask,
            count(*) FILTER (WHERE tier = 1) AS tier1_contacts,
            sum(minutes) FILTER (WHERE tier = 1) AS tier1_minutes,
            bit_or(CASE WHEN wk BETWEEN 0 AND 63 THEN 1::UBIGINT << wk END)
                FILTER (WHERE tier = 1) AS tier1_weeks_mask,
            bit_or(1::UBIGINT << svc) FILTER (WHERE tier = 1) AS tier1_svc_mask,
            bit_or(1::UBIGINT << mode) FILTER (WHERE tier = 1) AS tier1_mode_mask,
            {per_area}
        FROM (SELECT student_id, tier, minutes, date, svc, mode, (date - {w0}) // 7 AS wk,
                (date - {y0}) AS dy FROM log WHERE student_id IS NOT NULL)
        GROUP BY student_id
        """

    # Contacts per area and per mode, packed into two sums (11 bits an area, 21 a mode)
    # rather than fourteen filtered counts: a third of the time on a long log. Exact while
    # no student has 2,048 Level 2 contacts or more, which is checked; otherwise the
    # filtered counts are taken.
    con.execute(
        "CREATE TEMP TABLE fs0 AS "
        + per_student(
            f"sum(1::HUGEINT << ({_AREA_BITS} * svc)) FILTER (WHERE tier = 2) AS svc_pack, "
            f"sum(1::BIGINT << ({_MODE_BITS} * mode)) FILTER (WHERE tier = 2) AS mode_pack"
        )
    )
    most = con.execute("SELECT max(contacts) FROM fs0").fetchall()[0][0]
    if most is None or int(most) < 1 << _AREA_BITS:
        unpacked = ", ".join(
            [
                f"CAST((svc_pack >> {_AREA_BITS * i}) & {(1 << _AREA_BITS) - 1} AS BIGINT) "
                f"AS {q('contacts_' + a)}"
                for i, a in enumerate(_SVC)
            ]
            + [
                f"CAST((mode_pack >> {_MODE_BITS * i}) & {(1 << _MODE_BITS) - 1} AS BIGINT) "
                f"AS {q('contacts_' + m)}"
                for i, m in enumerate(_MODES)
            ]
        )
        con.execute(
            f"CREATE TEMP TABLE fs AS SELECT * EXCLUDE (svc_pack, mode_pack), {unpacked} FROM fs0"
        )
    else:
        counts = ",\n".join(
            [
                f"count(*) FILTER (WHERE tier = 2 AND svc = {i}) AS {q('contacts_' + a)}"
                for i, a in enumerate(_SVC)
            ]
            + [
                f"count(*) FILTER (WHERE tier = 2 AND mode = {i}) AS {q('contacts_' + m)}"
                for i, m in enumerate(_MODES)
            ]
        )
        con.execute("CREATE TEMP TABLE fs AS " + per_student(counts))
    con.execute("DROP TABLE fs0")
    _pairs_and_months(log, year)
    svc_cols = ", ".join(
        f"coalesce(f.{q('contacts_' + s)}, 0) AS {q('contacts_' + s)}" for s in _SVC
    )
    mode_cols = ", ".join(
        f"coalesce(f.{q('contacts_' + m)}, 0) AS {q('contacts_' + m)}" for m in _MODES
    )
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
            coalesce(bit_count(f.days_mask), 0) AS contact_days,
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
