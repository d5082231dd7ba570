"""``cis-eval diagnose``: diagnose a planned trial by simulation."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from ._common import (
    EXIT_OK,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    PROPORTION_BELOW_ONE,
    SEED,
    SHARE,
    NameValues,
    Number,
    UsageError,
    list_arg,
    output_folder,
    write_formats,
)

NAME = "diagnose"
HELP = "simulate a planned trial many times: bias, RMSE, power, coverage, type-S"

DIFFERENCE = Number(float, -1, 1, low_open=True, high_open=True)


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``diagnose``."""
    from .._typing import DiagnoseMode

    p.description = (run.__doc__ or "") + (
        " Design fields not given keep the study's values (28 schools, about 80 students "
        "each, the interim scenario). Writes diagnosis.csv/.md/.html, diagnosis_tidy.csv "
        "and diagnosis.png (power and coverage) with --out."
    )
    g = p.add_argument_group("design")
    g.add_argument("--schools", type=POSITIVE_INT, help="number of schools (default 28)")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--students-per-school", type=POSITIVE, help="average students per school")
    size.add_argument("--n-students", type=POSITIVE_INT, help="total students (instead)")
    g.add_argument("--share-treated", type=PROBABILITY, help="share assigned to the program")
    g.add_argument(
        "--icc", type=PROPORTION_BELOW_ONE, help="intraclass correlation of students' risk"
    )
    g.add_argument("--take-up", type=SHARE, help="share served if assigned (default 0.87)")
    g.add_argument(
        "--attrition", type=PROPORTION_BELOW_ONE, help="share missing each outcome (default 0.08)"
    )
    g.add_argument("--differential-attrition", type=DIFFERENCE, help="program minus control")
    g.add_argument(
        "--effect",
        action="append",
        type=NameValues(),
        metavar="OUTCOME=VALUE",
        help="true ITT effect (proportions for binary outcomes, e.g. chronic_absence=-0.06); "
        "repeatable; outcomes not named have no effect",
    )
    s = p.add_argument_group("simulation")
    s.add_argument(
        "--estimand",
        metavar="LIST",
        help="comma-separated estimands of estimate_itt: fixed_effects (default) or "
        "person_weighted (without covariates only)",
    )
    s.add_argument(
        "--covariates",
        metavar="LIST",
        help="'default' (each outcome's prior-year measure plus demographics), 'none', or "
        "both comma-separated to compare them (default: default)",
    )
    s.add_argument("--sims", type=POSITIVE_INT, default=1000, help="replications (default 1000)")
    s.add_argument("--seed", type=SEED, default=1, help="seed (default 1)")
    s.add_argument("--alpha", type=PROBABILITY, default=0.05, help="test level (default 0.05)")
    s.add_argument(
        "--mode", choices=get_args(DiagnoseMode), default="design", help="default design"
    )
    s.add_argument(
        "--grid",
        action="append",
        type=NameValues(many=True),
        metavar="NAME=V1,V2",
        help="values to try, e.g. schools=20,28,40 or chronic_absence=-0.03,-0.06; repeatable",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--out", type=output_folder, metavar="DIR", help="write tables and the figure here"
    )


def run(args: argparse.Namespace) -> int:
    """Diagnose a planned trial by simulation: bias, RMSE, power, coverage and type-S error."""
    from matplotlib.figure import Figure

    from ..design.diagnose import TrialDesign, diagnose
    from ..io import atomic_folder, write_figure, write_table

    given = {
        "schools": args.schools,
        "students_per_school": args.students_per_school,
        "n_students": args.n_students,
        "share_treated": args.share_treated,
        "icc": args.icc,
        "take_up": args.take_up,
        "attrition": args.attrition,
        "differential_attrition": args.differential_attrition,
    }
    kwargs: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if args.effect:
        kwargs["effects"] = {name: values[0] for name, values in args.effect}
    grid = dict(args.grid) if args.grid else None
    if args.grid and len(grid or {}) < len(args.grid):
        raise UsageError("--grid names each parameter once")
    covariates = [None if c.lower() == "none" else c for c in list_arg(args.covariates) or []]
    result = diagnose(
        TrialDesign(**kwargs),
        estimand=list_arg(args.estimand) or "fixed_effects",  # type: ignore[arg-type]
        covariates=covariates or "default",
        sims=args.sims,
        seed=args.seed,
        alpha=args.alpha,
        mode=args.mode,
        grid=grid,
        progress=False if args.no_progress else None,
    )
    print(result.table().to_text())
    if args.out:
        with atomic_folder(args.out, command=NAME) as tmp:
            write_formats(tmp, "diagnosis", result.table())
            write_table(result.to_frame(), tmp / "diagnosis_tidy.csv")
            fig = Figure(figsize=(13, 4.2), layout="constrained")
            left, right = fig.subplots(1, 2)
            result.plot(left, diagnosand="power")
            result.plot(right, diagnosand="coverage")
            write_figure(fig, tmp / "diagnosis.png", dpi=120)
        print(f"\nTables and figure written to {args.out}/")
    return EXIT_OK
