"""``cis-eval validate``: check files against the data contract."""

from __future__ import annotations

import argparse
import warnings

from ._common import EXIT_OK, EXIT_USAGE, UsageError, add_school_year, add_table_args

NAME = "validate"
HELP = "check files against the data contract"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``validate``."""
    p.description = run.__doc__
    add_table_args(p)
    add_school_year(p, "first and last day of the school year (ISO dates)")


def run(args: argparse.Namespace) -> int:
    """Check files against the data contract."""
    from ..data.validate import validate
    from ._common import contract_of, read_tables

    frames = read_tables(args)
    if all(v is None for v in frames.values()):
        raise UsageError(
            "give at least one of --students, --contacts, --coordinators, or --mapping"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = validate(
            frames["students"],
            frames["contacts"],
            frames["coordinators"],
            school_year=args.school_year,
            raise_on_error=False,
            contract=contract_of(frames),
        )
    print(report.to_text())
    return EXIT_OK if report.ok else EXIT_USAGE
