"""``cis-eval power``: minimum detectable effect, power or sample size of a blocked trial."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from ._common import (
    COUNT,
    EXIT_OK,
    NON_NEGATIVE,
    POSITIVE_INT,
    PROBABILITY,
    PROPORTION_BELOW_ONE,
    REAL,
    SEED,
    Number,
    UsageError,
    output_folder,
    shown,
)

NAME = "power"
HELP = "minimum detectable effect, power or sample size of a blocked trial"

CORRELATION = Number(float, -1, 1)


def school_sizes(text: str) -> float | list[float]:
    """``80`` -> 80.0; ``75,82,90`` -> every school's size (the harmonic mean is used)."""
    bad = argparse.ArgumentTypeError(
        "expected a number or comma-separated school sizes above 0, e.g. 80 or 75,82,90; "
        f"got {shown(text)}"
    )
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise bad from None
    if not values or not all(0 < v < float("inf") for v in values):
        raise bad
    return values[0] if len(values) == 1 and "," not in text else values


school_sizes.__name__ = "school sizes"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``power``."""
    from .._typing import PowerDefinition, PowerModel, PowerMTP

    p.description = (run.__doc__ or "") + (
        " Without --effect-size: the MDES. With it: power, or with --solve-for the "
        "number of schools or students per school needed."
    )
    g = p.add_argument_group("design")
    g.add_argument("--schools", type=POSITIVE_INT, help="number of schools (blocks)")
    g.add_argument(
        "--students-per-school",
        type=school_sizes,
        metavar="N[,N...]",
        help="students per school, or every school's size separated by commas "
        "(their harmonic mean is used)",
    )
    g.add_argument("--share-treated", type=PROBABILITY, default=0.5, help="default 0.5")
    g.add_argument(
        "--model",
        choices=get_args(PowerModel),
        default="constant",
        help="impact model: constant (PowerUp! bira2c1), fixed (bira2f1), random (bira2r1) "
        "or unblocked; default constant",
    )
    g.add_argument(
        "--r2", type=PROPORTION_BELOW_ONE, default=0.0, help="within-school R2 of covariates"
    )
    g.add_argument("--icc", type=PROPORTION_BELOW_ONE, default=0.0, help="intraclass correlation")
    g.add_argument(
        "--omega", type=NON_NEGATIVE, default=0.0, help="random model: impact variability"
    )
    g.add_argument(
        "--r2-school-impact", type=PROPORTION_BELOW_ONE, default=0.0, help="random model: R2_T"
    )
    g.add_argument("--covariates", type=COUNT, default=0, help="number of student covariates")
    g.add_argument("--school-covariates", type=COUNT, default=0, help="school covariates (random)")
    g.add_argument(
        "--binary-control-rate", type=PROBABILITY, help="control rate of a binary outcome (for pp)"
    )
    t = p.add_argument_group("test")
    t.add_argument("--alpha", type=PROBABILITY, default=0.05, help="default 0.05")
    t.add_argument(
        "--target-power", type=PROBABILITY, default=0.80, help="target power, default 0.80"
    )
    t.add_argument("--one-tailed", action="store_true", help="one-tailed tests")
    t.add_argument("--outcomes", type=POSITIVE_INT, default=1, help="number of outcomes tested")
    t.add_argument(
        "--mtp", choices=get_args(PowerMTP), default="none", help="multiple-testing procedure"
    )
    t.add_argument(
        "--rho", type=CORRELATION, default=0.0, help="correlation of the test statistics"
    )
    t.add_argument("--power-definition", choices=get_args(PowerDefinition), default="individual")
    t.add_argument("--at-least", type=POSITIVE_INT, default=1, help="d of d-minimal power")
    t.add_argument(
        "--sims", type=POSITIVE_INT, default=20_000, help="simulation draws (several outcomes)"
    )
    t.add_argument("--seed", type=SEED, default=20130601, help="seed of the simulation")
    q = p.add_argument_group("question")
    q.add_argument("--effect-size", type=REAL, help="effect in SD units: report power")
    q.add_argument("--effect-pp", type=REAL, help="effect in percentage points (binary)")
    q.add_argument(
        "--solve-for",
        choices=["schools", "students-per-school"],
        help="solve for the sample size that detects the effect",
    )
    p.add_argument(
        "--out",
        type=output_folder,
        metavar="DIR",
        help="write power.csv and power_curve.png here",
    )


def run(args: argparse.Namespace) -> int:
    """Minimum detectable effect, power or required sample size of a blocked trial."""
    from matplotlib.figure import Figure

    from ..design.power import mdes, power, sample_size
    from ..io import atomic_folder, write_figure, write_table

    sizes = args.students_per_school
    common: dict[str, Any] = {
        "share_treated": args.share_treated,
        "r2": args.r2,
        "icc": args.icc,
        "model": args.model,
        "omega": args.omega,
        "r2_school_impact": args.r2_school_impact,
        "n_covariates": args.covariates,
        "n_school_covariates": args.school_covariates,
        "alpha": args.alpha,
        "tails": 1 if args.one_tailed else 2,
        "outcomes": args.outcomes,
        "control_rate": args.binary_control_rate,
        "mtp": args.mtp,
        "rho": args.rho,
    }
    effect = {"effect_size": args.effect_size, "effect_pp": args.effect_pp}
    given = args.effect_size is not None or args.effect_pp is not None
    target = {"power_definition": args.power_definition, "at_least": args.at_least}
    run_options = {"target_power": args.target_power, "sims": args.sims, "seed": args.seed}
    if args.solve_for:
        if not given:
            raise UsageError("--solve-for needs the effect to detect: --effect-size or --effect-pp")
        if args.solve_for == "schools":
            if isinstance(sizes, list):
                raise UsageError("--solve-for schools needs a single --students-per-school")
            result = sample_size(
                **effect,
                solve_for="schools",
                students_per_school=sizes,
                **target,
                **run_options,
                **common,
            )
        else:
            result = sample_size(
                **effect,
                solve_for="students_per_school",
                schools=args.schools,
                **target,
                **run_options,
                **common,
            )
    elif sizes is None:
        raise UsageError("give --students-per-school (and --schools)")
    elif given:
        result = power(
            **effect,
            schools=args.schools,
            students_per_school=sizes,
            **run_options,
            **common,
        )
    else:
        result = mdes(
            schools=args.schools,
            students_per_school=sizes,
            **target,
            **run_options,
            **common,
        )
    print(result.table().to_text())
    if args.out:
        out = args.out
        names = ["power.csv"]
        with atomic_folder(out, command=NAME) as tmp:
            write_table(result.to_frame(), tmp / "power.csv")
            if not result.power_definitions().empty:
                write_table(result.power_definitions(), tmp / "power_definitions.csv")
                names.append("power_definitions.csv")
            fig = Figure(figsize=(9, 3.6), layout="constrained")
            left, right = fig.subplots(1, 2)
            result.plot(left, by="schools")
            result.plot(right, by="students_per_school")
            write_figure(fig, tmp / "power_curve.png", dpi=120)
            names.append("power_curve.png")
        print("Wrote " + ", ".join(str(out / n) for n in names) + ".")
    return EXIT_OK
