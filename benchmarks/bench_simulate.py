"""Benchmark: simulating a trial with its contacts log at 100,000 and 1,000,000 students.

Prints the median wall time of a few runs, rows per second, and the share of the time
spent on the contacts log (simulated again with ``contacts=False``). Run with
``make bench`` or ``python benchmarks/bench_simulate.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cis_eval as ce


def timed(repeats: int, **kwargs) -> tuple[float, ce.SimulatedTrial]:
    times, trial = [], None
    for r in range(repeats):
        t0 = time.perf_counter()
        trial = ce.simulate(seed=100 + r, **kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k only")
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    print(f"{'students':>10} {'contacts':>11} {'median s':>9} {'no log s':>9} {'log share':>9}")
    for n in sizes:
        repeats = 3 if n <= 100_000 else 2
        full, trial = timed(repeats, n_students=n)
        bare, _ = timed(repeats, n_students=n, contacts=False)
        print(
            f"{n:>10,} {len(trial.contacts):>11,} {full:>9.2f} {bare:>9.2f} "
            f"{(full - bare) / full:>9.0%}"
        )


if __name__ == "__main__":
    main()
