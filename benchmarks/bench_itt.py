"""Benchmark: the six-outcome impact table against statsmodels, linearmodels and pyfixest.

Same data, same model for everyone: each of six outcomes regressed on assignment, five
covariates and school fixed effects, with heteroskedasticity-robust and cluster-robust (by
school) standard errors, at 2,000 students (24 schools), 100,000 (1,000 schools) and
1,000,000 (10,000 schools). cis_eval computes HC2 (and CR1); linearmodels and pyfixest offer
no HC2 with fixed effects, so they compute their closest robust type (HC1 / CRV1);
statsmodels with explicit school dummies computes HC2 where its dense design fits (2,000
students). The script checks that every package gives the same coefficients, prints median
wall times and the ratios to cis_eval, cis_eval's extra memory against the data size, and
the time of randomization inference (10,000 within-school permutations, six outcomes, 2,000
students).

Run with ``make bench`` or ``python benchmarks/bench_itt.py [--quick]`` (``--quick``: the two
smaller sizes, fewer repeats). Timings on shared machines are noisy: compare the ratios,
which are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
import warnings

import pandas as pd

import cis_eval as ce

OUTCOMES = list(ce.OUTCOME_NAMES)
COVARIATES = ["prior_attendance_rate", "female", "frpl", "ell", "special_education"]
SIZES = [(2_000, 24), (100_000, 1_000), (1_000_000, 10_000)]


def make_data(n: int, schools: int) -> pd.DataFrame:
    trial = ce.simulate(
        seed=n, n_students=n, n_schools=schools, contacts=False, baseline_missing=0.0
    )
    data = ce.derive_outcomes(trial.students)
    keep = ["school_id", "treatment", *COVARIATES, *OUTCOMES]
    out = data[keep].copy()
    for c in ["treatment", *COVARIATES, *OUTCOMES]:
        out[c] = pd.to_numeric(out[c]).astype(float)
    out["school_id"] = out["school_id"].astype("category")
    return out


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run_cis_eval(data, se_type):
    return ce.estimate_itt(data, outcomes=OUTCOMES, covariates=COVARIATES, se_type=se_type)


def run_pyfixest(data, vcov):
    import pyfixest as pf

    fml = " + ".join(OUTCOMES) + " ~ treatment + " + " + ".join(COVARIATES) + " | school_id"
    fit = pf.feols(fml, data=data, vcov=vcov)
    return {
        o: fit.fetch_model(i, print_fml=False).coef()["treatment"] for i, o in enumerate(OUTCOMES)
    }


def run_linearmodels(data, cov_type):
    from linearmodels.iv.absorbing import AbsorbingLS

    out = {}
    for o in OUTCOMES:
        d = data[[o, "treatment", *COVARIATES, "school_id"]].dropna()
        kw = {"clusters": d["school_id"].cat.codes} if cov_type == "clustered" else {}
        res = AbsorbingLS(d[o], d[["treatment", *COVARIATES]], absorb=d[["school_id"]]).fit(
            cov_type=cov_type, **kw
        )
        out[o] = res.params["treatment"]
    return out


def run_statsmodels(data, cov_type):
    import statsmodels.api as sm

    out = {}
    for o in OUTCOMES:
        d = data[[o, "treatment", *COVARIATES, "school_id"]].dropna()
        exog = pd.concat(
            [d[["treatment", *COVARIATES]], pd.get_dummies(d["school_id"], dtype=float)], axis=1
        )
        kw = {"cov_kwds": {"groups": d["school_id"].cat.codes}} if cov_type == "cluster" else {}
        res = sm.OLS(d[o], exog).fit(cov_type=cov_type, **kw)
        out[o] = res.params["treatment"]
    return out


def extra_memory(data):
    """Peak memory cis_eval allocates (numpy and pandas, via tracemalloc) / data size."""
    size = data.memory_usage(deep=True).sum()
    gc.collect()
    tracemalloc.start()
    run_cis_eval(data, "HC2")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / size


def bench_size(n, schools, quick):
    data = make_data(n, schools)
    reps = 5 if n <= 100_000 else 3
    peer_reps = 3 if n <= 100_000 else 1
    if quick:
        reps, peer_reps = 3, 1
    rows = []
    ours = {}
    for se in ("HC2", "CR1"):
        run_cis_eval(data, se)  # warm
        t, res = timed(lambda se=se: run_cis_eval(data, se), reps)
        ours[se] = res.estimate
        rows.append(("cis_eval", se, t))
    peers = [
        ("pyfixest", "hetero (HC1)", lambda: run_pyfixest(data, "hetero")),
        ("pyfixest", "CRV1", lambda: run_pyfixest(data, {"CRV1": "school_id"})),
        ("linearmodels", "robust (HC1)", lambda: run_linearmodels(data, "robust")),
        ("linearmodels", "clustered", lambda: run_linearmodels(data, "clustered")),
    ]
    if n <= 2_000:
        peers.append(("statsmodels dummies", "HC2", lambda: run_statsmodels(data, "HC2")))
        peers.append(("statsmodels dummies", "cluster", lambda: run_statsmodels(data, "cluster")))
    agree = True
    for name, se, fn in peers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "pyfixest":
                fn()  # warm the compiled code once
            t, coefs = timed(fn, peer_reps)
        gap = max(
            abs(
                coefs[o]
                - ours["HC2"][o] / (100 if o in ("chronic_absence", "core_course_failure") else 1)
            )
            for o in OUTCOMES
        )
        agree &= gap < 1e-6
        rows.append((name, se, t))
    mem = extra_memory(data)
    base = {se: t for name, se, t in rows if name == "cis_eval"}
    print(f"\n{n:,} students, {schools:,} schools (six outcomes, five covariates)")
    print(f"  {'package':22s} {'standard errors':15s} {'median s':>10s} {'x cis_eval':>11s}")
    for name, se, t in rows:
        ref = base["CR1" if ("CR" in se or "clust" in se) else "HC2"]
        print(f"  {name:22s} {se:15s} {t:10.4f} {t / ref:11.1f}")
    print(f"  coefficients agree across packages: {'yes' if agree else 'NO'}")
    print(f"  cis_eval peak extra memory: {mem:.1f} x the data size")
    return agree


def bench_ri(quick):
    trial = ce.simulate(seed=5, n_students=2_000, n_schools=24, contacts=False)
    s = trial.students
    print(
        "\nRandomization inference: 10,000 within-school permutations, six outcomes, 2,000 students"
    )
    for stat in ("studentized", "unstudentized"):
        ce.estimate_itt(s, permutations=1000, seed=1, statistic=stat)
        t, _ = timed(
            lambda stat=stat: ce.estimate_itt(s, permutations=10_000, seed=1, statistic=stat),
            2 if quick else 3,
        )
        print(f"  {stat:14s} {t:8.3f} s (including the impact table itself)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="two smaller sizes, fewer repeats")
    args = parser.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    ok = all(bench_size(n, g, args.quick) for n, g in sizes)
    bench_ri(args.quick)
    if not ok:
        raise SystemExit("coefficients differ between packages")


if __name__ == "__main__":
    main()
