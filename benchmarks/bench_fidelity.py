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

Targets (issue): at most 30 s and under 4 GB peak memory for 25M contacts. The script
prints the median time of ``--repeats`` runs, the ratio to pandas and each peak RSS, and
checks that the implementations agree. ``--quick`` runs 1M contacts.

    python benchmarks/bench_fidelity.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
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
        con.register("roster", roster.assign(sid_key=contacts.roster_key(roster["student_id"])))
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


WORKERS = {"duckdb": run_duckdb, "pandas": run_pandas, "fidelity": run_fidelity}


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
        print(
            f"log: {n_contacts:,} contacts for {n_students:,} students, Parquet {size:,.0f} MB, "
            f"written in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPU(s); "
            f"median of {args.repeats} run(s) each"
        )
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in WORKERS}
        for _ in range(args.repeats):
            for name in WORKERS:  # interleaved, so drift in the machine hits all alike
                runs[name].append(measure(name, folder))
    base = statistics.median(r["seconds"] for r in runs["pandas"])
    cpu_base = statistics.median(r["cpu_seconds"] for r in runs["pandas"])
    print(
        f"{'implementation':<16}{'median s':>10}{'min s':>9}{'x pandas':>10}"
        f"{'CPU s':>9}{'x pandas':>10}{'peak RSS':>11}"
    )
    for name, rs in runs.items():
        med = statistics.median(r["seconds"] for r in rs)
        cpu = statistics.median(r["cpu_seconds"] for r in rs)
        peak = max(r["peak_mb"] for r in rs)
        print(
            f"{name:<16}{med:>10.2f}{min(r['seconds'] for r in rs):>9.2f}"
            f"{base / med:>9.1f}x{cpu:>9.1f}{cpu_base / cpu:>9.1f}x{peak / 1024:>8.2f} GB"
        )
    print(
        "x pandas: how many times faster than the pandas groupby (wall time; CPU time of the "
        "whole worker, loading included). Peak RSS: the worker's own maximum resident set."
    )
    keys = (
        "level2_contacts",
        "active_weeks",
        "students_reached",
        "coordinator_students",
        "school_reached",
    )
    agree = all(runs[name][0][key] == runs["pandas"][0][key] for name in WORKERS for key in keys)
    print("implementations agree on totals: " + ("yes" if agree else "NO"))
    for key in keys:
        print(f"  {key}: " + ", ".join(f"{n}={runs[n][0][key]:,.0f}" for n in WORKERS))
    full = runs["fidelity"]
    med = statistics.median(r["seconds"] for r in full)
    peak = max(r["peak_mb"] for r in full) / 1024
    print(
        f"fidelity() end to end: {med:.1f} s (target <= 30 s), peak {peak:.2f} GB "
        f"(target < 4 GB) for {n_contacts:,} contacts"
    )


if __name__ == "__main__":
    main()
