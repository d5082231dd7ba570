"""``cis-eval simulate``: simulate a trial and write its three tables."""

from __future__ import annotations

import argparse
from typing import get_args

from ._common import EXIT_OK, POSITIVE_INT, SEED, NameValues, UsageError, output_folder

NAME = "simulate"
HELP = "simulate a trial and write its tables"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``simulate``."""
    from .._typing import Scenario

    p.description = run.__doc__
    p.add_argument("--out", required=True, type=output_folder, help="output folder")
    p.add_argument("--seed", required=True, type=SEED)
    p.add_argument("--scenario", default="interim", choices=get_args(Scenario))
    p.add_argument(
        "--effect",
        action="append",
        type=NameValues(),
        metavar="OUTCOME=VALUE",
        help="ITT effect for one outcome (repeatable)",
    )
    p.add_argument("--n-students", type=POSITIVE_INT, default=2230)
    p.add_argument("--n-schools", type=POSITIVE_INT)


def run(args: argparse.Namespace) -> int:
    """Simulate a trial and write its three tables."""
    from ..data.simulate import simulate
    from ..io import atomic_folder, write_trial

    effects = {name: values[0] for name, values in args.effect} if args.effect else None
    try:
        trial = simulate(
            seed=args.seed,
            scenario=args.scenario,
            effects=effects,
            n_students=args.n_students,
            n_schools=args.n_schools,
        )
    except (ValueError, TypeError) as exc:
        # simulate checks its arguments together (e.g. more schools than students)
        raise UsageError(str(exc)) from exc
    with atomic_folder(args.out, command=NAME) as tmp:
        written = write_trial(trial, tmp)
    print(repr(trial))
    for name in written:
        print(f"wrote {args.out / f'{name}.csv'}")
    return EXIT_OK
