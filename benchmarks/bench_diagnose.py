"""Benchmark: design diagnosis of the study-sized trial, 1,000 replications.

Two ways to diagnose the study's design (about 2,230 students in 28 schools, six outcomes,
school fixed effects with each outcome's default covariates, HC2 standard errors):

* ``cis_eval.diagnose`` -- design-based: one simulated population; each replication
  reruns the within-school lottery and attrition, and every replication's estimates and
  HC2 standard errors come from batched matrix products;
* ``naive loop`` -- each replication simulates a trial with ``cis_eval.simulate`` and fits
  every outcome with statsmodels OLS with explicit school dummies, ``cov_type="HC2"``.

Targets (issue): at most 1 s for 1,000 replications and at least 50 times faster than the
naive loop, with the same power and coverage within Monte Carlo error. The script prints
both timings (median of ``--repeats`` runs of the fast path; the naive loop once, per
1,000 replications), the ratio, power and coverage side by side with their Monte Carlo
standard errors, and the checks. It also runs ``diagnose(mode="resample")`` on the naive
loop's first populations to show that the two compute the same estimates.

BLAS runs on one thread (as ``make bench`` sets it), the fairest setting for the naive
loop's small regressions; ``diagnose`` limits BLAS to one thread itself and estimates the
outcomes in parallel threads.

    python benchmarks/bench_diagnose.py [--sims 1000] [--naive-sims 1000] [--repeats 5]
    python benchmarks/bench_diagnose.py --quick     # 200 naive replications
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import math
import statistics
import time
import warnings

import numpy as np
import statsmodels.api as sm
from scipy import stats

import cis_eval as ce
from cis_eval.design.diagnose import TrialDesign, _seed_of
from cis_eval.schema import OUTCOMES

ALPHA = 0.05


def naive_replication(design: TrialDesign, seed: int) -> list[tuple[float, float, float, float]]:
    """One replication the plain way: (estimate, std. error, df, SATE) per outcome."""
    trial = design.simulate(seed=seed)
    students = ce.derive_outcomes(trial.students, chronic_threshold=design.chronic_threshold)
    school = students["school_id"].to_numpy()
    treat = students["treatment"].to_numpy(dtype=float)
    out = []
    for o in OUTCOMES:
        scale = 100.0 if o.type == "binary" else 1.0
        y = students[o.name].to_numpy(dtype=float) * scale
        cols = [treat]
        for c in ce.default_covariates(o, students):
            v = students[c].to_numpy(dtype=float, na_value=np.nan)
            miss = np.isnan(v)
            cols.append(np.where(miss, np.nanmean(v), v))  # as estimate_itt: mean + indicator
            if miss.any():
                cols.append(miss.astype(float))
        x = np.column_stack(cols)
        rows = ~np.isnan(y)
        keep = np.ones(x.shape[1], dtype=bool)
        for j in range(1, x.shape[1]):
            flagged = np.flatnonzero(rows & (x[:, j] == 1.0))
            # an indicator nobody (or one student) in the sample has: out, with that student
            if set(np.unique(x[:, j])) <= {0.0, 1.0} and flagged.size <= 1:
                keep[j] = False
                rows[flagged] = False
        present = np.unique(school[rows])
        dummies = (school[rows][:, None] == present[None, 1:]).astype(float)
        exog = np.column_stack([np.ones(rows.sum()), x[rows][:, keep], dummies])
        fit = sm.OLS(y[rows], exog).fit(cov_type="HC2")
        out.append(
            (
                float(fit.params[1]),
                float(fit.bse[1]),
                float(fit.df_resid),
                trial.truth.sate[o.name] * scale,
            )
        )
    return out


def naive_loop(design: TrialDesign, seeds: list[int]) -> tuple[np.ndarray, float, float]:
    """(replications, outcomes, 4) array; wall and CPU seconds."""
    w0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = [naive_replication(design, s) for s in seeds]
    return np.array(res), time.perf_counter() - w0, time.process_time() - c0


def shares(est, se, df, truth) -> dict[str, float]:
    """Power and coverage of a set of replications (independent of cis_eval's code)."""
    crit = stats.t.ppf(1 - ALPHA / 2, df)
    return {
        "power": float(np.mean(np.abs(est / se) > crit)),
        "coverage": float(np.mean(np.abs(est - truth) <= crit * se)),
    }


def two_proportion_z(a: float, n_a: int, b: float, n_b: int) -> float:
    """z statistic of the difference of two shares, with the pooled binomial variance."""
    pooled = (a * n_a + b * n_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return (a - b) / se if se > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=1000, help="replications of the fast path")
    parser.add_argument("--naive-sims", type=int, default=1000, help="naive replications")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the fast path")
    parser.add_argument("--seed", type=int, default=2015)
    parser.add_argument("--quick", action="store_true", help="200 naive replications")
    args = parser.parse_args()
    naive_n = 200 if args.quick else args.naive_sims
    design = TrialDesign()
    print(f"design: {design!r}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    # fast path: the public call end to end (population, replications, diagnosands)
    ce.diagnose(design, sims=50, seed=args.seed, progress=False)  # imports and caches
    walls, cpus, result = [], [], None
    for _ in range(args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = ce.diagnose(design, sims=args.sims, seed=args.seed, progress=False)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    assert result is not None
    fast_wall = statistics.median(walls)
    fast_per_1000 = fast_wall * 1000 / args.sims

    # naive loop: a new trial per replication and statsmodels with school dummies
    seeds = [_seed_of(args.seed, 2, i) for i in range(naive_n)]
    naive, naive_wall, naive_cpu = naive_loop(design, seeds)
    naive_per_1000 = naive_wall * 1000 / naive_n

    # the same estimator: diagnose's resample mode on the naive loop's first populations
    k = min(naive_n, 30)
    w0 = time.perf_counter()
    resampled = ce.diagnose(design, sims=k, seed=args.seed, mode="resample", progress=False)
    resample_per_1000 = (time.perf_counter() - w0) * 1000 / k
    draws = resampled.draws()
    worst = 0.0
    for i, o in enumerate(OUTCOMES):
        d = draws[draws["outcome"] == o.name].sort_values("sim")
        for col, q in (("estimate", 0), ("std_error", 1)):
            worst = max(worst, float(np.max(np.abs(d[col].to_numpy() / naive[:k, i, q] - 1))))

    print()
    print(f"{'':34}{'wall s':>9}{'CPU s':>9}{'per 1,000':>11}")
    print(
        f"{'cis_eval.diagnose (' + f'{args.sims:,} sims)':34}{fast_wall:9.3f}"
        f"{statistics.median(cpus):9.3f}{fast_per_1000:11.3f}"
    )
    print(
        f"{'naive loop (' + f'{naive_n:,} sims)':34}{naive_wall:9.2f}{naive_cpu:9.2f}{naive_per_1000:11.2f}"
    )
    print(f"{'diagnose, resample mode':34}{'':18}{resample_per_1000:11.2f}")
    ratio = naive_per_1000 / fast_per_1000
    print(f"\nratio naive / diagnose (per 1,000 replications): {ratio:,.0f}x")
    print(f"fast-path runs (wall s): {', '.join(f'{w:.3f}' for w in walls)}")
    print(
        f"resample mode vs naive loop, first {k} replications: largest relative difference "
        f"of estimates and standard errors {worst:.1e}"
    )

    f = result.to_frame().set_index("outcome")
    print(f"\n{'outcome':22}{'':10}{'diagnose':>16}{'naive':>16}{'z':>7}  (two-proportion z test)")
    agree = True
    for i, o in enumerate(OUTCOMES):
        ns = shares(naive[:, i, 0], naive[:, i, 1], naive[:, i, 2], naive[:, i, 3])
        for name in ("power", "coverage"):
            a, sa = f.loc[o.name, name], f.loc[o.name, f"{name}_mc_se"]
            b = ns[name]
            sb = math.sqrt(b * (1 - b) / naive_n)
            z = two_proportion_z(a, args.sims, b, naive_n)
            agree &= abs(z) < 3
            print(f"{o.name:22}{name:10}{a:9.3f} ({sa:.3f}){b:9.3f} ({sb:.3f}){z:7.2f}")
    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    checks = {
        f"diagnose: {fast_per_1000:.3f} s per 1,000 replications (target <= 1 s)": fast_per_1000
        <= 1.0,
        f"{ratio:,.0f}x faster than the naive loop (target >= 50x)": ratio >= 50,
        "power and coverage agree within Monte Carlo error (|z| < 3 for every outcome)": agree,
        f"same estimates as the naive loop (relative difference {worst:.1e} < 1e-8)": worst < 1e-8,
    }
    for label, ok in checks.items():
        print(f"[{'PASS' if ok else 'FAIL'}] {label}")


if __name__ == "__main__":
    main()
