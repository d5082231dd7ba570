"""``cis-eval estimate``: intent-to-treat impacts, complier effects and subgroups."""

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

NAME = "estimate"
HELP = "intent-to-treat impacts on the six outcomes (and CACE with a contacts log)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``estimate``."""
    from .._typing import Estimand, SEType

    p.description = (run.__doc__ or "") + (
        " Writes impacts.csv/.md/.html (an MDRC-style table), impacts_tidy.csv (every "
        "column of the estimates) and impacts.png (a forest plot of effect sizes)."
    )
    add_table_args(p)
    p.add_argument("--out", required=True, type=output_folder, metavar="DIR", help="output folder")
    p.add_argument(
        "--outcomes", metavar="LIST", help="comma-separated outcomes (default: the study's six)"
    )
    p.add_argument(
        "--covariates",
        metavar="LIST",
        help="comma-separated covariates for every outcome, or 'none' (default: each "
        "outcome's prior-year measure plus demographics)",
    )
    p.add_argument("--estimand", default="fixed_effects", choices=get_args(Estimand))
    p.add_argument("--se-type", default="HC2", choices=get_args(SEType))
    p.add_argument("--lin", action="store_true", help="interact covariates with assignment")
    p.add_argument("--alpha", type=PROBABILITY, default=0.05, help="1 - confidence level")
    p.add_argument(
        "--sims",
        type=COUNT,
        default=0,
        help="within-school permutations for randomization inference (e.g. 10000)",
    )
    p.add_argument("--seed", type=SEED, default=20130601, help="seed of the permutations")
    p.add_argument(
        "--subgroups",
        metavar="LIST",
        help="comma-separated subgroup columns, e.g. school_level,female,baseline_risk",
    )
    p.add_argument(
        "--min-contacts",
        type=POSITIVE_INT,
        default=1,
        help="Level 2 contacts that count as receiving services, for the CACE (default 1)",
    )
    p.add_argument(
        "--chronic-threshold",
        type=PROBABILITY,
        default=0.10,
        help="absence share that counts as chronic (0.10 federal; 0.20 offered)",
    )


def run(args: argparse.Namespace) -> int:
    """Estimate intent-to-treat impacts (and, with a contacts log, complier effects)."""
    import matplotlib.pyplot as plt

    from ..estimation import estimate_cace, estimate_itt, estimate_subgroups
    from ..io import atomic_folder, write_figure, write_table

    report = load_validated(args)
    if report.students is None:
        raise UsageError("give the students table: --students FILE")
    options: dict[str, Any] = {
        "outcomes": list_arg(args.outcomes),
        "covariates": covariates_arg(args.covariates),
        "se_type": args.se_type,
        "chronic_threshold": args.chronic_threshold,
        "alpha": args.alpha,
    }
    out = args.out
    with warnings.catch_warnings(record=True) as caught, atomic_folder(out, command=NAME) as tmp:
        warnings.simplefilter("always")
        itt = estimate_itt(
            report.students,
            estimand=args.estimand,
            lin=args.lin,
            sims=args.sims,
            seed=args.seed if args.sims else None,
            **options,
        )
        write_formats(tmp, "impacts", itt.table())
        write_table(itt.to_frame(), tmp / "impacts_tidy.csv")
        fig, ax = plt.subplots(figsize=(7, 4))
        itt.plot(ax=ax)
        write_figure(fig, tmp / "impacts.png")
        plt.close(fig)
        printed = [itt.table().to_text()]
        if report.contacts is not None:
            cace = estimate_cace(
                report.students, report.contacts, min_contacts=args.min_contacts, **options
            )
            write_formats(tmp, "cace", cace.table())
            printed.append(cace.table().to_text())
        for by in list_arg(args.subgroups) or []:
            sub = estimate_subgroups(
                report.students, by, estimand=args.estimand, lin=args.lin, **options
            )
            write_formats(tmp, f"subgroups_{by}", sub.table())
            printed.append(sub.table().to_text())
    # printed only once every output is in place: a failed run shows no tables
    print("\n\n".join(printed))
    print_warnings(caught)
    print(f"\nTables and figure written to {out}/")
    return EXIT_OK
