"""Benchmark: aggregating a network-wide service log (25 million contacts, 1.3 million
students) to student, coordinator and school level.

Three implementations run side by side on the same Parquet file, each in its own
subprocess so its peak memory (resident set size) is its own:

* ``duckdb``   -- cis_eval's aggregation engine (DuckDB SQL reading the Parquet file):
  per student (contacts, hours, first and last contact, active weeks, contact days,
  Level 1 contacts, contacts by service area and mode), per student-coordinator pair,
  per school and per coordinator (counts, sums, quartiles);
* ``pandas``   -- a plain pandas groupby computing the core of the same (contacts, hours,
  first/last contact, active weeks, Level 1 contacts, contacts by service area per
  student; students, contacts and hours per coordinator; students reached, contacts and
  median contacts per school);
* ``fidelity`` -- the public call ``cis_eval.fidelity(students, "contacts.parquet")`` end
  to end: everything above plus validation of the log (unknown categories, ranges,
  dates, unknown students, duplicate contact ids), service mix and weekly series.

The same contacts are also written as an affiliate's export: a CSV log with title rows
above the header, the affiliate's own column names and wordings ("Tier 3 -
Individualized", "1:1", "College & Career") and US dates, a program roster (CSV, own
names) and a mapping file. Two more implementations read it:

* ``mapped``        -- the affiliate's path end to end, files in and result out:
  ``cis_eval.load_export(mapping, log_on_disk=True)`` (roster through pandas, the log
  left on disk) and ``cis_eval.fidelity(...)`` (DuckDB renames, recodes, checks and
  aggregates the CSV in one pass); ``result.report_tables()`` is then timed apart (its
  joint suppression grows with the number of schools, not with the log);
* ``pandas_mapped`` -- plain pandas on the same export: ``read_csv`` of the log,
  wordings recoded through category lookups, US dates parsed, then the pandas groupby.

Targets (issue): at most 30 s and under 4 GB peak memory for 25M contacts, through the
mapping and recoding path. The script prints the median time of ``--repeats`` runs, the
ratio to its pandas baseline and each peak RSS, and checks that the implementations
agree. ``--quick`` runs 1M contacts.

    python benchmarks/bench_fidelity.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHOOL_YEAR = ("2012-08-01", "2013-07-31")


# ----------------------------------------------------------------------------- data


def make_log(folder: Path, n_students: int, n_contacts: int, seed: int = 2013) -> None:
    """A synthetic network log written with numpy and pyarrow (fast; not the simulator)."""
    from cis_eval.schema import MODES, SERVICE_TYPES

    rng = np.random.default_rng(seed)
    n_schools = max(1, n_students // 80)
    school = np.sort(rng.integers(0, n_schools, n_students))
    sid = np.char.add("S", np.char.zfill(np.arange(1, n_students + 1).astype(str), 8))
    schools = np.char.add("SCH", np.char.zfill(np.arange(n_schools).astype(str), 6))
    coords = np.char.add("C", np.char.zfill(np.arange(n_schools).astype(str), 6))
    z = rng.integers(0, 2, n_students)
    pd.DataFrame(
        {
            "student_id": sid,
            "school_id": schools[school],
            "treatment": z,
            "assignment_date": pd.Timestamp("2012-09-10"),
        }
    ).to_parquet(folder / "students.parquet", index=False)
    # Program students get most Level 2 contacts; about 3% of controls cross over.
    weight = np.where(z == 1, 1.0, 0.03)
    owner = np.sort(rng.choice(n_students, n_contacts, p=weight / weight.sum()))
    start = np.datetime64("2012-09-10")
    day = start + rng.integers(0, 270, n_contacts).astype("timedelta64[D]")
    tier = np.where(rng.random(n_contacts) < 0.9, 2, 1).astype(np.int64)

    def dictionary(codes: np.ndarray, values: np.ndarray) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(values))

    table = pa.table(
        {
            "contact_id": np.arange(1, n_contacts + 1, dtype=np.int64),
            "student_id": dictionary(owner, sid),
            "coordinator_id": dictionary(school[owner], coords),
            "date": pa.array(day.astype("datetime64[D]")),
            "minutes": (5 * rng.integers(1, 25, n_contacts)).astype(np.int64),
            "service_type": dictionary(
                rng.integers(0, 10, n_contacts), np.array(list(SERVICE_TYPES))
            ),
            "tier": tier,
            "mode": dictionary(rng.integers(0, 3, n_contacts), np.array(list(MODES))),
        }
    )
    pq.write_table(table, folder / "contacts.parquet", row_group_size=1_000_000)
    write_export(folder, table, sid, schools[school])


# The affiliate's own wordings of each contract code (several per code, as exports mix them).
WORDINGS = {
    "academics": ("Academic Support", "Tutoring"),
    "behavior": ("Behavior Intervention",),
    "social_life_skills": ("Social Skills", "Lunch Bunch"),
    "basic_needs": ("Basic Needs",),
    "college_career": ("College & Career",),
    "enrichment_motivation": ("Enrichment",),
    "family_engagement": ("Family Engagement", "Home Visit"),
    "health_wellness": ("Health & Wellness",),
    "community_service": ("Service Learning",),
    "mental_health": ("Counseling",),
    "other": ("Attendance Check-In",),
}
TIER_WORDS = {1: ("Tier 1 - Schoolwide",), 2: ("Tier 2 - Targeted", "Tier 3 - Individualized")}
MODE_WORDS = {"individual": ("1:1",), "group": ("Small Group",), "family": ("Parent Meeting",)}
MAPPING = """\
# Synthetic County CIS: how to read our case-management export.
dates = "US"

[roster]
file = "roster.csv"

[roster.columns]
"Student ID" = "student_id"
"Campus" = "school_id"
"Grade" = "grade"

[contacts]
file = "service_log.csv"

[contacts.columns]
"Entry ID" = "contact_id"
"Student ID" = "student_id"
"Staff Name" = "coordinator_id"
"Service Date" = "date"
"Duration (min)" = "minutes"
"Service Category" = "service_type"
"Tier" = "tier"
"Format" = "mode"

[contacts.values.service_type]
"Lunch Bunch" = "social_life_skills"
"""
TITLE = "Service Log Report - Synthetic County CIS\nDate range: 09/10/2012 - 06/06/2013\n\n"


def write_export(folder: Path, table: pa.Table, sid: np.ndarray, school: np.ndarray) -> None:
    """The same contacts as an affiliate's export: CSV with title rows, own words, US dates.

    Every student is a program student in the roster (an affiliate has no control group).
    """
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from cis_eval.schema import MODES, SERVICE_TYPES

    rng = np.random.default_rng(7)
    pd.DataFrame({"Student ID": sid, "Campus": school, "Grade": "9th Grade"}).to_csv(
        folder / "roster.csv", index=False
    )
    (folder / "mapping.toml").write_text(MAPPING)

    def words(codes: np.ndarray, options: list[tuple[str, ...]]) -> pa.Array:
        # one of the code's wordings at random, as a dictionary (cheap to write)
        flat = [w for opts in options for w in opts]
        first = np.cumsum([0] + [len(o) for o in options[:-1]])
        pick = first[codes] + (
            rng.random(len(codes)) * np.array([len(o) for o in options])[codes]
        ).astype(int)
        return pa.DictionaryArray.from_arrays(
            pa.array(pick.astype(np.int32)), pa.array(flat)
        ).dictionary_decode()

    svc_opts = [WORDINGS[s] for s in SERVICE_TYPES]
    mode_opts = [MODE_WORDS[m] for m in MODES]
    with open(folder / "service_log.csv", "wb") as fh:
        fh.write(TITLE.encode())
        options = pcsv.WriteOptions(include_header=True, quoting_style="needed")
        with pcsv.CSVWriter(
            fh,
            pa.schema(
                [
                    ("Entry ID", pa.int64()),
                    ("Student ID", pa.string()),
                    ("Staff Name", pa.string()),
                    ("Service Date", pa.string()),
                    ("Duration (min)", pa.int64()),
                    ("Service Category", pa.string()),
                    ("Tier", pa.string()),
                    ("Format", pa.string()),
                ]
            ),
            write_options=options,
        ) as writer:
            for batch in table.to_batches(max_chunksize=1_000_000):
                b = pa.Table.from_batches([batch])
                svc = b["service_type"].combine_chunks()
                svc_codes = np.asarray(svc.indices)
                mode = b["mode"].combine_chunks()
                tier = np.asarray(b["tier"])
                writer.write_table(
                    pa.table(
                        {
                            "Entry ID": b["contact_id"],
                            "Student ID": b["student_id"].combine_chunks().dictionary_decode(),
                            "Staff Name": pc.replace_substring(
                                b["coordinator_id"].combine_chunks().dictionary_decode(),
                                "C",
                                "Staff ",
                            ),
                            "Service Date": pc.strftime(
                                b["date"].cast(pa.timestamp("s")), format="%m/%d/%Y"
                            ),
                            "Duration (min)": b["minutes"],
                            "Service Category": words(svc_codes, svc_opts),
                            "Tier": words(tier - 1, [TIER_WORDS[1], TIER_WORDS[2]]),
                            "Format": words(np.asarray(mode.indices), mode_opts),
                        }
                    )
                )


# ----------------------------------------------------------------------------- workers


def run_duckdb(folder: Path) -> dict[str, float]:
    """cis_eval's aggregation engine on the Parquet file (no validation passes)."""
    from cis_eval.fidelity import frames, inputs, log

    students = pd.read_parquet(folder / "students.parquet")
    roster = inputs.roster_frame(students)
    staff = inputs.staff_frame(None)
    year = (pd.Timestamp(SCHOOL_YEAR[0]), pd.Timestamp(SCHOOL_YEAR[1]))
    t0 = time.perf_counter()
    with log.engine() as con:
        contacts = log.open_log(con, folder / "contacts.parquet", None)
        log.register_roster(con, roster.assign(sid_key=contacts.roster_key(roster["student_id"])))
        log.aggregate_students(contacts, year)
        schools = frames.school_frame(con, staff)
        coords = frames.coordinator_frame(con, staff, schools)
        st = log.fetch(con, "SELECT * EXCLUDE (_pos) FROM st ORDER BY _pos")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "level2_contacts": float(st["contacts"].sum()),
        "active_weeks": float(st["active_weeks"].sum()),
        "students_reached": float((st["contacts"] > 0).sum()),
        "coordinator_students": float(
            coords["students_served"].sum() + coords["control_students_served"].sum()
        ),
        "school_reached": float(schools["students_reached"].sum()),
    }


def run_pandas(folder: Path) -> dict[str, float]:
    """A plain pandas groupby implementation of the core aggregation."""
    students = pd.read_parquet(folder / "students.parquet")
    t0 = time.perf_counter()
    columns = ["student_id", "coordinator_id", "date", "minutes", "service_type", "tier"]
    # Dictionary columns arrive as categoricals and dates as datetime64: pandas at its best.
    log = pq.read_table(folder / "contacts.parquet", columns=columns).to_pandas(
        date_as_object=False
    )
    return pandas_aggregate(log, students, t0)


def pandas_aggregate(log: pd.DataFrame, students: pd.DataFrame, t0: float) -> dict[str, float]:
    """The pandas groupby of :func:`run_pandas` on a log with contract columns."""
    start = pd.Timestamp(SCHOOL_YEAR[0])
    week0 = start - pd.Timedelta(days=start.weekday())
    t2 = log[log["tier"] == 2]
    t2 = t2.assign(week=(t2["date"] - week0).dt.days // 7)
    by = t2.groupby("student_id", observed=True)
    per = by.agg(
        contacts=("minutes", "size"),
        minutes=("minutes", "sum"),
        first=("date", "min"),
        last=("date", "max"),
        active_weeks=("week", "nunique"),
    )
    per["tier1_contacts"] = (
        log[log["tier"] == 1].groupby("student_id", observed=True).size().reindex(per.index)
    )
    mix = t2.groupby(["student_id", "service_type"], observed=True).size().unstack(fill_value=0)
    per = per.join(mix)
    per.index = per.index.astype(str)
    st = students.merge(per, left_on="student_id", right_index=True, how="left")
    st["contacts"] = st["contacts"].fillna(0)
    coords = t2.groupby("coordinator_id", observed=True).agg(
        students=("student_id", "nunique"), contacts=("minutes", "size"), minutes=("minutes", "sum")
    )
    served = st[st["contacts"] > 0]
    program = st["treatment"] == 1
    schools = (
        st[program]
        .assign(reached=st["contacts"] > 0)
        .groupby("school_id")
        .agg(reached=("reached", "sum"), contacts=("contacts", "sum"))
    )
    schools["median_contacts"] = (
        served[served["treatment"] == 1].groupby("school_id")["contacts"].median()
    )
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "level2_contacts": float(st["contacts"].sum()),
        "active_weeks": float(st["active_weeks"].fillna(0).sum()),
        "students_reached": float((st["contacts"] > 0).sum()),
        "coordinator_students": float(coords["students"].sum()),
        "school_reached": float(schools["reached"].sum()),
    }


def run_pandas_mapped(folder: Path) -> dict[str, float]:
    """Plain pandas on the affiliate's export: read the CSV, recode, then the groupby."""
    import tomllib

    from cis_eval.data.mapping import shipped_wordings, wording_key

    t0 = time.perf_counter()
    spec = tomllib.loads((folder / "mapping.toml").read_text())
    roster = pd.read_csv(folder / "roster.csv", dtype=str).rename(columns=spec["roster"]["columns"])
    students = roster.assign(treatment=1)  # a program roster: every student in the program
    names = spec["contacts"]["columns"]
    log = pd.read_csv(
        folder / "service_log.csv",
        skiprows=TITLE.count("\n"),
        usecols=[k for k, v in names.items() if v != "contact_id"],
        dtype={k: "category" for k in names if k not in ("Duration (min)", "Entry ID")},
    ).rename(columns=names)
    words = shipped_wordings()
    user = {wording_key(k): v for k, v in spec["contacts"]["values"]["service_type"].items()}

    def recode(col: str, vocab: dict[str, str]) -> pd.Categorical:
        # per distinct wording, then by code: several wordings share a contract value
        s = log[col]
        target = [vocab[wording_key(str(c))] for c in s.cat.categories]
        uniq = sorted(set(target))
        lookup = np.array([uniq.index(t) for t in target])
        return pd.Categorical.from_codes(lookup[s.cat.codes.to_numpy()], categories=uniq)

    log["service_type"] = recode("service_type", {**words["service_type"], **user})
    log["mode"] = recode("mode", words["mode"])
    tiers = np.array([int(words["tier"][wording_key(str(c))]) for c in log["tier"].cat.categories])
    log["tier"] = tiers[log["tier"].cat.codes.to_numpy()]
    # US dates, parsed once per distinct date
    days = log["date"].cat.categories
    parsed = pd.to_datetime(pd.Series(days), format="%m/%d/%Y").to_numpy()
    log["date"] = parsed[log["date"].cat.codes.to_numpy()]
    return pandas_aggregate(log, students, t0)


def run_mapped(folder: Path) -> dict[str, float]:
    """The affiliate's path: export and mapping file in, fidelity measured (then its tables)."""
    import warnings

    import cis_eval as ce

    t0 = time.perf_counter()
    export = ce.load_export(folder / "mapping.toml", log_on_disk=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data warnings are the report's business here
        result = ce.fidelity(
            export.roster, export.contacts_log, export.coordinators, school_year=SCHOOL_YEAR
        )
    seconds = time.perf_counter() - t0
    # The report's tables are timed apart: their joint suppression grows with the number
    # of schools and coordinators, not with the log.
    t1 = time.perf_counter()
    try:
        tables_ok = "school" in result.report_tables()
    except MemoryError:
        tables_ok = False
    tables_seconds = time.perf_counter() - t1 if tables_ok else float("nan")
    st = result.to_frame("student")
    coords = result.to_frame("coordinator")
    return {
        "seconds": seconds,
        "report_tables_seconds": tables_seconds,
        "level2_contacts": float(st["contacts"].sum()),
        "active_weeks": float(st["active_weeks"].sum()),
        "students_reached": float((st["contacts"] > 0).sum()),
        "coordinator_students": float(
            coords["students_served"].sum() + coords["control_students_served"].sum()
        ),
        "school_reached": float(result.to_frame("school")["students_reached"].sum()),
    }


def run_fidelity(folder: Path) -> dict[str, float]:
    """The public verb end to end, reading the Parquet file directly."""
    import cis_eval as ce

    students = pd.read_parquet(folder / "students.parquet")
    t0 = time.perf_counter()
    result = ce.fidelity(students, folder / "contacts.parquet", school_year=SCHOOL_YEAR)
    seconds = time.perf_counter() - t0
    st = result.to_frame("student")
    coords = result.to_frame("coordinator")
    return {
        "seconds": seconds,
        "level2_contacts": float(st["contacts"].sum()),
        "active_weeks": float(st["active_weeks"].sum()),
        "students_reached": float((st["contacts"] > 0).sum()),
        "coordinator_students": float(
            coords["students_served"].sum() + coords["control_students_served"].sum()
        ),
        "school_reached": float(result.to_frame("school")["students_reached"].sum()),
    }


WORKERS = {
    "duckdb": run_duckdb,
    "pandas": run_pandas,
    "fidelity": run_fidelity,
    "mapped": run_mapped,
    "pandas_mapped": run_pandas_mapped,
}
BASELINE = {"mapped": "pandas_mapped", "pandas_mapped": "pandas_mapped"}
"""Each implementation's pandas baseline (the Parquet pandas groupby unless named)."""


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(name: str, folder: Path) -> None:
    cpu0 = cpu_seconds()
    out = WORKERS[name](folder)
    # CPU time of the whole worker (data loading included): a check on the wall times when
    # other jobs share the machine.
    out["cpu_seconds"] = cpu_seconds() - cpu0
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(out))


def measure(name: str, folder: Path) -> dict[str, float]:
    """Run one implementation in a fresh interpreter; its peak RSS is its own."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--dir", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M contacts for 52,000 students")
    parser.add_argument("--contacts", type=int, help="number of contacts (default 25M)")
    parser.add_argument("--students", type=int, help="number of students (default 1.3M)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per implementation")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.dir))
        return
    n_contacts = args.contacts or (1_000_000 if args.quick else 25_000_000)
    n_students = args.students or (52_000 if args.quick else 1_300_000)
    with tempfile.TemporaryDirectory(prefix="bench_fidelity_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        make_log(folder, n_students, n_contacts)
        size = (folder / "contacts.parquet").stat().st_size / 2**20
        csv_size = (folder / "service_log.csv").stat().st_size / 2**20
        print(
            f"log: {n_contacts:,} contacts for {n_students:,} students, Parquet {size:,.0f} MB, "
            f"affiliate CSV export {csv_size:,.0f} MB, load average {os.getloadavg()[0]:.1f}, "
            f"written in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPU(s); "
            f"median of {args.repeats} run(s) each"
        )
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in WORKERS}
        for _ in range(args.repeats):
            for name in WORKERS:  # interleaved, so drift in the machine hits all alike
                runs[name].append(measure(name, folder))
    print(
        f"{'implementation':<16}{'median s':>10}{'min s':>9}{'x pandas':>10}"
        f"{'CPU s':>9}{'x pandas':>10}{'peak RSS':>11}"
    )
    for name, rs in runs.items():
        base_runs = runs[BASELINE.get(name, "pandas")]
        base = statistics.median(r["seconds"] for r in base_runs)
        cpu_base = statistics.median(r["cpu_seconds"] for r in base_runs)
        med = statistics.median(r["seconds"] for r in rs)
        cpu = statistics.median(r["cpu_seconds"] for r in rs)
        peak = max(r["peak_mb"] for r in rs)
        print(
            f"{name:<16}{med:>10.2f}{min(r['seconds'] for r in rs):>9.2f}"
            f"{base / med:>9.1f}x{cpu:>9.1f}{cpu_base / cpu:>9.1f}x{peak / 1024:>8.2f} GB"
        )
    print(
        "x pandas: how many times faster than the pandas groupby (wall time; CPU time of the "
        "whole worker, loading included); mapped and pandas_mapped against pandas_mapped, "
        "which reads and recodes the same CSV export. Peak RSS: the worker's own maximum "
        "resident set."
    )
    keys = (
        "level2_contacts",
        "active_weeks",
        "students_reached",
        "coordinator_students",
        "school_reached",
    )
    # The export's roster has every student in the program, so its schools count the
    # crossover (control) students the trial's Parquet roster leaves out; the rest agree.
    agree = all(
        runs[name][0][key] == runs[BASELINE.get(name, "pandas")][0][key]
        and (key == "school_reached" or runs[name][0][key] == runs["pandas"][0][key])
        for name in WORKERS
        for key in keys
    )
    print("implementations agree on totals: " + ("yes" if agree else "NO"))
    for key in keys:
        print(f"  {key}: " + ", ".join(f"{n}={runs[n][0][key]:,.0f}" for n in WORKERS))
    for name, what in (
        ("fidelity", "fidelity() on the Parquet log"),
        ("mapped", "mapping path (CSV export + mapping file -> FidelityResult)"),
    ):
        med = statistics.median(r["seconds"] for r in runs[name])
        peak = max(r["peak_mb"] for r in runs[name]) / 1024
        print(
            f"{what} end to end: {med:.1f} s (target <= 30 s), peak {peak:.2f} GB "
            f"(target < 4 GB) for {n_contacts:,} contacts"
        )
    rt = statistics.median(r["report_tables_seconds"] for r in runs["mapped"])
    print(
        f"then result.report_tables(): {rt:.1f} s"
        + (" (nan: failed, out of memory in the joint suppression)" if math.isnan(rt) else "")
    )


if __name__ == "__main__":
    main()
