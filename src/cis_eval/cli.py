"""The ``cis-eval`` command line: a thin layer over the library's verbs.

Exit codes: 0 success, 2 bad input or usage (one clear message, no traceback),
1 internal error (a bug: please report it; ``--debug`` shows the traceback).
Messages never contain student identifiers.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .errors import CisEvalError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


class UsageError(CisEvalError, ValueError):
    """Bad command-line usage (a missing file, a bad option value)."""


# ----------------------------------------------------------------------------- helpers


def _load_validated(args: argparse.Namespace, *, need_contacts: bool = False) -> Any:
    """Load the tables named on the command line and validate them together."""
    from .io import load
    from .validate import validate

    cmap = _column_map(getattr(args, "column_map", None))
    frames: dict[str, pd.DataFrame | None] = {}
    for name in ("students", "contacts", "coordinators"):
        path = getattr(args, name, None)
        frames[name] = load(path, column_map=cmap.get(name)) if path else None
    if need_contacts and frames["contacts"] is None:
        raise UsageError("this command needs a contacts log: add --contacts FILE")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = validate(frames["students"], frames["contacts"], frames["coordinators"])
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return report


def _column_map(path: str | None) -> dict[str, dict[str, str]]:
    """Read a column map: JSON or TOML ``{table: {their_name: contract_name}}``."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p.name}: column map file not found")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(p.read_text(encoding="utf-8"))
        else:
            data = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{p.name}: the column map could not be parsed ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(
            f"{p.name}: expected sections 'students', 'contacts' or "
            "'coordinators', each mapping export names to contract names"
        )
    unknown = set(data) - {"students", "contacts", "coordinators"}
    if unknown:
        raise UsageError(
            f"{p.name}: unknown section(s) {', '.join(sorted(unknown))}; expected "
            "students, contacts or coordinators"
        )
    return {k: {str(a): str(b) for a, b in v.items()} for k, v in data.items()}


# ----------------------------------------------------------------------------- demo


@dataclass
class DemoContext:
    """What each demo section needs: the validated data, the report and the output folder."""

    students: pd.DataFrame
    contacts: pd.DataFrame | None
    coordinators: pd.DataFrame | None
    out: Path
    report: Any
    seed: int


def _demo_describe(ctx: DemoContext) -> None:
    from .describe import describe
    from .io import write_text

    summary = describe(ctx.students, ctx.contacts)
    ctx.report.heading("The trial")
    n = int(summary.by_school["students"].sum())
    ctx.report.text(
        f"{n:,} students in {len(summary.by_school):,} schools were randomly assigned, within "
        "each school, to case management (program group) or to a control group.",
        lead=True,
    )
    for name, table in summary.tables().items():
        ctx.report.table(table)
        write_text(ctx.out / "tables" / f"{name}.csv", table.to_csv())


DEMO_SECTIONS: list[Callable[[DemoContext], None]] = [_demo_describe]
"""Sections of the demo report, in order. Each capability appends its own."""


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the main job on the shipped synthetic trial and write a report."""
    from .io import load, write_text
    from .report import Report
    from .validate import validate

    data = Path(args.data)
    if not (data / "students.csv").is_file():
        raise UsageError(
            f"{data}: no students.csv here; pass --data with the folder of the "
            "synthetic trial (data/synthetic in the repository)"
        )
    frames = {
        n: load(data / f"{n}.csv") if (data / f"{n}.csv").is_file() else None
        for n in ("students", "contacts", "coordinators")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        valid = validate(frames["students"], frames["contacts"], frames["coordinators"])
    out = Path(args.out)
    report = Report("cis_eval demo: a synthetic Communities In Schools trial")
    report.note(
        "All numbers come from synthetic data simulated by cis_eval to resemble the "
        "structure of MDRC's evaluation. They are not the study's results."
    )
    assert valid.students is not None  # checked above: students.csv exists
    ctx = DemoContext(valid.students, valid.contacts, valid.coordinators, out, report, args.seed)
    for section in DEMO_SECTIONS:
        section(ctx)
    write_text(out / "report.html", report.to_html())
    write_text(out / "report.md", report.to_markdown())
    print(report.to_markdown())
    print(f"Report written to {out / 'report.html'} (and report.md, tables/).")
    return EXIT_OK


# ----------------------------------------------------------------------------- validate


def cmd_validate(args: argparse.Namespace) -> int:
    """Check files against the data contract."""
    from .io import load
    from .validate import validate

    cmap = _column_map(args.column_map)
    frames = {
        n: load(getattr(args, n), column_map=cmap.get(n)) if getattr(args, n) else None
        for n in ("students", "contacts", "coordinators")
    }
    if all(v is None for v in frames.values()):
        raise UsageError("give at least one of --students, --contacts, --coordinators")
    year = (args.school_year[0], args.school_year[1]) if args.school_year else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = validate(
            frames["students"],
            frames["contacts"],
            frames["coordinators"],
            school_year=year,
            raise_on_error=False,
        )
    print(report.to_text())
    return EXIT_OK if report.ok else EXIT_USAGE


# ----------------------------------------------------------------------------- assign


def cmd_assign(args: argparse.Namespace) -> int:
    """Run a within-school lottery on a roster."""
    from .assign import assign
    from .io import load, write_table, write_text

    roster = load(args.students)
    if args.n_treat is not None:
        result = assign(roster, seed=args.seed, block=args.block, p=None, n_treat=args.n_treat)
    else:
        result = assign(roster, seed=args.seed, block=args.block, p=args.p)
    out = Path(args.out)
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


# ----------------------------------------------------------------------------- simulate


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate a trial and write its three tables."""
    from .io import write_trial
    from .simulate import simulate

    effects = dict(kv.split("=", 1) for kv in args.effect) if args.effect else None
    try:
        eff = {k: float(v) for k, v in effects.items()} if effects else None
    except ValueError as exc:
        raise UsageError("--effect takes OUTCOME=VALUE, e.g. chronic_absence=-0.05") from exc
    try:
        trial = simulate(
            seed=args.seed,
            scenario=args.scenario,
            effects=eff,
            n_students=args.n_students,
            n_schools=args.n_schools,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc
    paths = write_trial(trial, args.out)
    print(repr(trial))
    for p in paths.values():
        print(f"wrote {p}")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def _add_table_args(p: argparse.ArgumentParser, *, students: bool = True) -> None:
    if students:
        p.add_argument("--students", metavar="FILE", help="students table (CSV, Excel, Parquet)")
    p.add_argument("--contacts", metavar="FILE", help="contacts log (CSV, Excel, Parquet)")
    p.add_argument("--coordinators", metavar="FILE", help="coordinators table")
    p.add_argument(
        "--column-map",
        metavar="FILE",
        help="JSON or TOML file mapping your export's column names to the contract's, by table",
    )


Registrar = Callable[[Any], None]


def _register_core(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="run the main job on the shipped synthetic trial", description=cmd_demo.__doc__
    )
    p.add_argument(
        "--data",
        default="data/synthetic",
        help="folder with students.csv, contacts.csv, coordinators.csv (default: data/synthetic)",
    )
    p.add_argument("--out", default="output/demo", help="output folder (default: output/demo)")
    p.add_argument("--seed", type=int, default=20130601, help="seed for random steps")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "validate", help="check files against the data contract", description=cmd_validate.__doc__
    )
    _add_table_args(p)
    p.add_argument(
        "--school-year",
        nargs=2,
        metavar=("FIRST", "LAST"),
        help="first and last day of the school year (ISO dates)",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "assign", help="run a within-school lottery on a roster", description=cmd_assign.__doc__
    )
    p.add_argument("--students", required=True, metavar="FILE", help="roster to randomize")
    p.add_argument("--out", required=True, metavar="FILE", help="assigned roster to write")
    p.add_argument("--seed", required=True, type=int, help="lottery seed (record it)")
    p.add_argument("--block", default="school_id", help="blocking column (default school_id)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--p", type=float, default=0.5, help="share treated per block (default 0.5)")
    g.add_argument("--n-treat", type=int, help="number treated in every block")
    p.set_defaults(func=cmd_assign)

    p = sub.add_parser(
        "simulate", help="simulate a trial and write its tables", description=cmd_simulate.__doc__
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--scenario", default="interim", choices=["interim", "null"])
    p.add_argument(
        "--effect",
        action="append",
        metavar="OUTCOME=VALUE",
        help="ITT effect for one outcome (repeatable)",
    )
    p.add_argument("--n-students", type=int, default=2230)
    p.add_argument("--n-schools", type=int)
    p.set_defaults(func=cmd_simulate)


REGISTRARS: list[Registrar] = [_register_core]
"""Functions that add subcommands; each capability appends its own."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="cis-eval",
        description="Evaluate school-based case management: simulate or load trial data, "
        "estimate impacts, check fidelity.",
    )
    parser.add_argument("--version", action="version", version=f"cis-eval {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cis-eval``; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except CisEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"internal error ({type(exc).__name__}). This is a bug in cis-eval; rerun with "
            "--debug for details and report it.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
