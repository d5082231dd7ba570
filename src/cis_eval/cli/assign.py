"""``cis-eval assign``: run a within-school lottery on a roster."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import EXIT_OK, POSITIVE_INT, PROBABILITY, SEED, OutputFile, UsageError

NAME = "assign"
HELP = "run a within-school lottery on a roster"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``assign``."""
    p.description = run.__doc__
    p.add_argument("--students", required=True, metavar="FILE", help="roster to randomize")
    p.add_argument(
        "--out",
        required=True,
        type=OutputFile(".csv", ".parquet", ".pq", ".xlsx"),
        metavar="FILE",
        help="assigned roster to write (.csv, .parquet or .xlsx)",
    )
    p.add_argument("--seed", required=True, type=SEED, help="lottery seed (record it)")
    p.add_argument("--block", default="school_id", help="blocking column (default school_id)")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--p", type=PROBABILITY, default=0.5, help="share treated per block (default 0.5)"
    )
    g.add_argument("--n-treat", type=POSITIVE_INT, help="number treated in every block")


def run(args: argparse.Namespace) -> int:
    """Run a within-school lottery on a roster."""
    from ..design.assign import assign
    from ..io import load, write_table, write_text

    if args.out.resolve() == Path(args.students).resolve():
        # the roster is the record of who was eligible: never replace it with the lottery
        raise UsageError(f"--out {args.out.name} is the roster itself; write to a new file")
    roster = load(args.students)
    if args.n_treat is not None:
        result = assign(roster, seed=args.seed, block=args.block, p=None, n_treat=args.n_treat)
    else:
        result = assign(roster, seed=args.seed, block=args.block, p=args.p)
    out = args.out
    write_table(result.data, out)
    audit = out.with_name(out.stem + ".audit.json")
    write_text(audit, result.audit_json() + "\n")
    counts = result.counts()
    print(
        f"Assigned {int(counts['n_treated'].sum()):,} of {int(counts['n'].sum()):,} students "
        f"to the program in {len(counts):,} block(s) (seed {args.seed})."
    )
    print(f"Wrote {out} and the audit trail {audit}.")
    return EXIT_OK
