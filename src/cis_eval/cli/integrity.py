"""``cis-eval integrity``: baseline equivalence, attrition and the WWC rating."""

from __future__ import annotations

import argparse
import warnings
from typing import Any, get_args

from ._common import (
    COUNT,
    EXIT_OK,
    POSITIVE_INT,
    PROBABILITY,
    SEED,
    UsageError,
    add_table_args,
    covariates_arg,
    list_arg,
    load_validated,
    output_folder,
    print_warnings,
    write_formats,
)

NAME = "integrity"
HELP = "baseline equivalence, attrition and a WWC-standards rating of each outcome"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``integrity``."""
    from .._typing import AttritionBoundary, StudyDesign

    p.description = (run.__doc__ or "") + (
        " Prints three tables: baseline equivalence in the analytic sample of the first "
        "outcome (with --out, one per outcome), attrition against the WWC boundary, and the "
        "rating with its reasons. With --out also writes love_plot.png and attrition.png. "
        "Figures describing fewer than --min-cell students are suppressed."
    )
    add_table_args(p)
    p.add_argument(
        "--out",
        type=output_folder,
        metavar="DIR",
        help="write the tables (.csv/.md/.html) and figures",
    )
    p.add_argument(
        "--outcomes", metavar="LIST", help="comma-separated outcomes (default: the study's six)"
    )
    p.add_argument(
        "--boundary",
        default="cautious",
        choices=get_args(AttritionBoundary),
        help="WWC attrition boundary (default cautious, for dropout-prevention outcomes; the "
        "optimistic boundary above 12%% attrition is unconfirmed)",
    )
    p.add_argument(
        "--design",
        default="rct",
        choices=get_args(StudyDesign),
        help="rct: students randomized within schools (default); cluster_rct: whole schools",
    )
    p.add_argument(
        "--compromised",
        action="store_true",
        help="randomization was compromised (reassignment, students added after the lottery)",
    )
    p.add_argument(
        "--covariates",
        metavar="LIST",
        help="the impact model's covariates, comma-separated, or 'none' (default: each "
        "outcome's prior-year measure plus demographics)",
    )
    p.add_argument(
        "--sims",
        type=COUNT,
        default=2000,
        help="within-school permutations for the omnibus randomization test (0 skips it)",
    )
    p.add_argument("--seed", type=SEED, default=20130601, help="seed of the permutations")
    p.add_argument(
        "--min-cell", type=POSITIVE_INT, default=10, help="smallest group shown (default 10)"
    )
    p.add_argument(
        "--chronic-threshold",
        type=PROBABILITY,
        default=0.10,
        help="absence share that counts as chronic (0.10 federal; 0.20 offered)",
    )


def _results(students: Any, args: argparse.Namespace) -> Any:
    """The review of every outcome and the baseline table of the first one."""
    from ..integrity import baseline_equivalence, wwc_review

    review = wwc_review(
        students,
        outcomes=list_arg(args.outcomes),
        study_design=args.design,
        randomization_intact=not args.compromised,
        boundary=args.boundary,
        covariates=covariates_arg(args.covariates),
        chronic_threshold=args.chronic_threshold,
    )
    first = review.to_frame()["outcome"].iloc[0]
    # the printed table adds the randomization test to the review's own comparison
    baseline = baseline_equivalence(
        students,
        outcome=first,
        covariates=review.baseline[first].covariates if first in review.baseline else None,
        basis="raw" if args.design == "cluster_rct" else "adjusted",
        sims=args.sims,
        seed=args.seed if args.sims else None,
        chronic_threshold=args.chronic_threshold,
    )
    return review, baseline, first


def run(args: argparse.Namespace) -> int:
    """Baseline equivalence, attrition and a WWC-standards rating of each outcome."""
    import matplotlib.pyplot as plt

    from ..errors import CisEvalError
    from ..io import atomic_folder, write_figure
    from ..present.privacy import check_min_cell

    min_cell = check_min_cell(args.min_cell)
    report = load_validated(args)
    if report.students is None:
        raise UsageError("give the students table: --students FILE")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            review, baseline, first = _results(report.students, args)
        except ValueError as exc:
            if isinstance(exc, CisEvalError):
                raise
            raise UsageError(str(exc)) from exc
    tables = {
        "baseline_equivalence": baseline.table(min_cell=min_cell),
        "attrition": review.attrition.table(min_cell=min_cell),
        "wwc_review": review.table(min_cell=min_cell),
    }
    for table in tables.values():
        print(table.to_text())
        print()
    if args.out:
        with atomic_folder(args.out, command=NAME) as tmp:
            for name, table in tables.items():
                write_formats(tmp, name, table)
            for outcome, result in review.baseline.items():
                if outcome != first:
                    write_formats(
                        tmp, f"baseline_equivalence_{outcome}", result.table(min_cell=min_cell)
                    )
            for name, draw in (("love_plot", baseline.plot), ("attrition", review.attrition.plot)):
                fig, ax = plt.subplots(figsize=(7, 4.5))
                draw(ax=ax)
                write_figure(fig, tmp / f"{name}.png")
                plt.close(fig)
        print(f"Tables and figures written to {args.out}/")
    print_warnings(caught)
    return EXIT_OK
