"""The ``cis-eval`` command line: a thin layer over the library's verbs.

Exit codes: 0 success, 2 bad input or usage (one clear message, no traceback),
1 internal error (a bug: please report it; ``--debug`` shows the traceback).
Messages never contain student identifiers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..errors import CisEvalError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


class UsageError(CisEvalError, ValueError):
    """Bad command-line usage (a missing file, a bad option value)."""


# ----------------------------------------------------------------------------- helpers


def _load_validated(args: argparse.Namespace, *, need_contacts: bool = False) -> Any:
    """Load the tables named on the command line and validate them together."""
    from ..data.validate import validate
    from ..io import load

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
    from ..data.describe import describe
    from ..io import write_text

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

# Planning assumptions of the demo's MDES table: share of the within-school variance of
# each outcome explained by its prior-year measure (stated, not estimated).
DEMO_R2 = {
    "chronic_absence": 0.30,
    "attendance_rate": 0.50,
    "core_course_failure": 0.20,
    "core_credits": 0.30,
    "core_gpa": 0.50,
    "suspensions": 0.15,
}
DEMO_ICC = 0.10


def _demo_power(ctx: DemoContext) -> None:
    from ..design.power import mdes
    from ..io import write_text
    from ..outcomes import derive_outcomes
    from ..present.table import Table
    from ..schema import OUTCOMES

    students = ctx.students
    data = derive_outcomes(students)
    share = float(students["treatment"].mean())
    control = data[data["treatment"] == 0]
    rows, frames = [], {}
    for o in OUTCOMES:
        pop = (
            students
            if o.population == "all"
            else students[students["school_level"] == o.population]
        )
        sizes = pop.groupby("school_id", observed=True).size().astype(float).tolist()
        binary = o.type == "binary"
        res = mdes(
            students_per_school=sizes,
            share_treated=share,
            r2=DEMO_R2[o.name],
            icc=DEMO_ICC,
            n_covariates=1,
            outcomes=[o.name],
            control_rate=float(control[o.name].mean()) if binary else None,
        )
        f = res.to_frame().iloc[0]
        frames[o.name] = f
        natural = f["mde_pp"] if binary else f["mdes"] * float(control[o.name].std())
        rows.append(
            {
                "Outcome": o.label,
                "Schools": int(f["schools"]),
                "Students per school": f["students_per_school"],
                "R2 (assumed)": DEMO_R2[o.name],
                "MDES (SD)": f["mdes"],
                "MDE": f"{natural:.1f} pp" if binary else f"{natural:.3f} {o.unit}",
            }
        )
    confirmatory = [o.name for o in OUTCOMES if o.role == "confirmatory" and o.population == "all"]
    all_sizes = students.groupby("school_id", observed=True).size().astype(float).tolist()
    holm = mdes(
        students_per_school=all_sizes,
        share_treated=share,
        icc=DEMO_ICC,
        n_covariates=1,
        r2=[DEMO_R2[n] for n in confirmatory],
        outcomes=confirmatory,
        mtp="holm",
        rho=0.3,
        seed=ctx.seed,
    )
    m0 = float(frames[confirmatory[0]]["multiplier"])
    m1 = float(holm.to_frame()["multiplier"].iloc[0])
    table = Table(
        pd.DataFrame(rows),
        title="Minimum detectable effects of the trial's design (80% power, two-tailed 5%)",
        formats={"Students per school": ".1f", "R2 (assumed)": ".2f", "MDES (SD)": ".3f"},
        notes=(
            "Blocked design with constant impacts (PowerUp! bira2c1, PUMP d2.1_m2fc); "
            "students per school is the harmonic mean of the schools' sizes.",
            f"Assumed: ICC {DEMO_ICC:.2f} and the R2 of the prior-year measure shown. MDE "
            "in outcome units: percentage points at the control group's rate for binary "
            "outcomes, the control group's standard deviation otherwise.",
            "Core credits is defined for high-school students only.",
        ),
    )
    ctx.report.heading("What the trial can detect")
    ctx.report.text(
        "The smallest true effects the randomized design detects with 80% power, given "
        "its schools, their sizes and the share assigned to the program."
    )
    ctx.report.table(table)
    ctx.report.note(
        f"Testing the {len(confirmatory)} confirmatory outcomes with Holm's procedure "
        f"(test statistics correlated 0.3) raises the multiplier from {m0:.2f} to {m1:.2f}: "
        f"each MDES grows by {m1 / m0 - 1:.0%}."
    )
    write_text(ctx.out / "tables" / "mdes.csv", table.to_csv())


DEMO_SECTIONS.append(_demo_power)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the main job on the shipped synthetic trial and write a report."""
    from ..io import load_trial, write_text
    from ..present.report import Report

    data = Path(args.data)
    if not (data / "students.csv").is_file():
        raise UsageError(
            f"{data}: no students.csv here; pass --data with the folder of the "
            "synthetic trial (data/synthetic in the repository)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        valid = load_trial(data)
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
    from ..data.validate import validate
    from ..io import load

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
    from ..design.assign import assign
    from ..io import load, write_table, write_text

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
    from ..data.simulate import simulate
    from ..io import write_trial

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


# ----------------------------------------------------------------------------- power


def _school_sizes(text: str | None) -> float | list[float] | None:
    """``80`` -> 80.0; ``75,82,90`` -> every school's size (the harmonic mean is used)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise UsageError(
            "--students-per-school takes a number or comma-separated school sizes, "
            "e.g. 80 or 75,82,90"
        ) from exc
    if not values:
        raise UsageError("--students-per-school is empty")
    return values[0] if len(values) == 1 and "," not in text else values


def cmd_power(args: argparse.Namespace) -> int:
    """Minimum detectable effect, power or required sample size of a blocked trial."""
    from matplotlib.figure import Figure

    from ..design.power import mdes, power, sample_size
    from ..io import write_figure, write_table

    sizes = _school_sizes(args.students_per_school)
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
        "n_draws": args.draws,
        "seed": args.seed,
    }
    effect = {"effect_size": args.effect_size, "effect_pp": args.effect_pp}
    given = args.effect_size is not None or args.effect_pp is not None
    target = {"power_definition": args.power_definition, "at_least": args.at_least}
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
                power=args.power,
                **target,
                **common,
            )
        else:
            result = sample_size(
                **effect,
                solve_for="students_per_school",
                schools=args.schools,
                power=args.power,
                **target,
                **common,
            )
    elif sizes is None:
        raise UsageError("give --students-per-school (and --schools)")
    elif given:
        result = power(
            **effect,
            schools=args.schools,
            students_per_school=sizes,
            target_power=args.power,
            **common,
        )
    else:
        result = mdes(
            schools=args.schools,
            students_per_school=sizes,
            power=args.power,
            **target,
            **common,
        )
    print(result.table().to_text())
    if args.out:
        out = Path(args.out)
        paths = [write_table(result.to_frame(), out / "power.csv")]
        if not result.power_definitions().empty:
            paths.append(write_table(result.power_definitions(), out / "power_definitions.csv"))
        fig = Figure(figsize=(9, 3.6), layout="constrained")
        left, right = fig.subplots(1, 2)
        result.plot(left, by="schools")
        result.plot(right, by="students_per_school")
        paths.append(write_figure(fig, out / "power_curve.png", dpi=120))
        print("Wrote " + ", ".join(str(p) for p in paths) + ".")
    return EXIT_OK


def _register_power(sub: Any) -> None:
    from ..design.power import MODELS, MTPS, POWER_DEFINITIONS

    p = sub.add_parser(
        "power",
        help="minimum detectable effect, power or sample size of a blocked trial",
        description=(cmd_power.__doc__ or "")
        + " Without --effect-size: the MDES. With it: power, or with --solve-for the "
        "number of schools or students per school needed.",
    )
    g = p.add_argument_group("design")
    g.add_argument("--schools", type=int, help="number of schools (blocks)")
    g.add_argument(
        "--students-per-school",
        metavar="N[,N...]",
        help="students per school, or every school's size separated by commas "
        "(their harmonic mean is used)",
    )
    g.add_argument("--share-treated", type=float, default=0.5, help="default 0.5")
    g.add_argument(
        "--model",
        choices=MODELS,
        default="constant",
        help="impact model: constant (PowerUp! bira2c1), fixed (bira2f1), random (bira2r1) "
        "or unblocked; default constant",
    )
    g.add_argument("--r2", type=float, default=0.0, help="within-school R2 of covariates")
    g.add_argument("--icc", type=float, default=0.0, help="intraclass correlation")
    g.add_argument("--omega", type=float, default=0.0, help="random model: impact variability")
    g.add_argument("--r2-school-impact", type=float, default=0.0, help="random model: R2_T")
    g.add_argument("--covariates", type=int, default=0, help="number of student covariates")
    g.add_argument("--school-covariates", type=int, default=0, help="school covariates (random)")
    g.add_argument(
        "--binary-control-rate", type=float, help="control rate of a binary outcome (for pp)"
    )
    t = p.add_argument_group("test")
    t.add_argument("--alpha", type=float, default=0.05, help="default 0.05")
    t.add_argument("--power", type=float, default=0.80, help="target power, default 0.80")
    t.add_argument("--one-tailed", action="store_true", help="one-tailed tests")
    t.add_argument("--outcomes", type=int, default=1, help="number of outcomes tested")
    t.add_argument("--mtp", choices=MTPS, default="none", help="multiple-testing procedure")
    t.add_argument("--rho", type=float, default=0.0, help="correlation of the test statistics")
    t.add_argument("--power-definition", choices=POWER_DEFINITIONS, default="individual")
    t.add_argument("--at-least", type=int, default=1, help="d of d-minimal power")
    t.add_argument("--draws", type=int, default=20_000, help="simulation draws (several outcomes)")
    t.add_argument("--seed", type=int, default=20130601, help="seed of the simulation")
    q = p.add_argument_group("question")
    q.add_argument("--effect-size", type=float, help="effect in SD units: report power")
    q.add_argument("--effect-pp", type=float, help="effect in percentage points (binary)")
    q.add_argument(
        "--solve-for",
        choices=["schools", "students-per-school"],
        help="solve for the sample size that detects the effect",
    )
    p.add_argument("--out", metavar="DIR", help="write power.csv and power_curve.png here")
    p.set_defaults(func=cmd_power)


REGISTRARS.append(_register_power)


# ----------------------------------------------------------------------------- fidelity

# A contacts file bigger than this is aggregated by DuckDB straight from disk instead of
# being loaded and validated in pandas first (about 5 million rows of CSV).
BIG_LOG_BYTES = 200 * 1024 * 1024


def _read_targets(path: str | None) -> dict[str, Any] | None:
    """Read a targets file: TOML (or JSON) with ``measure = value`` lines."""
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p.name}: targets file not found")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p.name}: the targets file could not be parsed ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{p.name}: expected 'measure = value' lines")
    return data


def cmd_fidelity(args: argparse.Namespace) -> int:
    """Measure implementation fidelity from a service log and write a privacy-safe report."""
    from tqdm import tqdm

    from ..fidelity.verb import fidelity, published_targets
    from ..io import write_text

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {out.name}: the report is an HTML file; end the name in .html")
    if args.min_cell < 1:
        raise UsageError(f"--min-cell must be at least 1, got {args.min_cell}")
    year: tuple[str, str] | None = None
    if args.school_year:
        try:
            first, last = (str(pd.Timestamp(d).date()) for d in args.school_year)
            year = (first, last)
        except ValueError as exc:
            raise UsageError("--school-year takes two dates such as 2012-08-01 2013-07-31") from exc
    contacts_path = Path(args.contacts)
    big = (
        contacts_path.is_file()
        and contacts_path.suffix.lower() in (".parquet", ".pq", ".csv", ".tsv", ".txt")
        and contacts_path.stat().st_size > BIG_LOG_BYTES
    )
    show = sys.stderr.isatty() and contacts_path.is_file() and contacts_path.stat().st_size > 5e6
    bar = tqdm(total=3, desc="cis-eval fidelity", file=sys.stderr, leave=False, disable=not show)
    try:
        targets = published_targets()
        user = _read_targets(args.targets)
        if user:
            targets = targets.with_user(user, source=Path(args.targets).name)
        bar.set_postfix_str("reading and checking the files")
        if big:
            # Huge logs: pandas validates the roster; DuckDB reads and checks the log.
            report = _load_validated(argparse.Namespace(**{**vars(args), "contacts": None}))
            contacts: Any = contacts_path
            cmap = _column_map(args.column_map).get("contacts")
        else:
            report = _load_validated(args, need_contacts=True)
            contacts, cmap = report.contacts, None
        bar.update(1)
        bar.set_postfix_str("measuring")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fidelity(
                report.students,
                contacts,
                report.coordinators,
                targets=targets,
                caseload_guide=args.caseload_guide,
                school_year=year,
                min_cell=args.min_cell,
                column_map=cmap,
            )
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        bar.update(1)
        bar.set_postfix_str("writing the report")
        html = result.report(title=args.title).to_html()
        write_text(out, html)
        if args.tables:
            folder = Path(args.tables)
            for level in (
                "benchmarks",
                "school",
                "coordinator",
                "dosage",
                "service_mix",
                "school_service_mix",
                "arm",
                "dose_response",
            ):
                write_text(folder / f"fidelity_{level}.csv", result.table(level).to_csv())
        bar.update(1)
    finally:
        bar.close()
    print(
        f"Wrote {out} ({len(result.to_frame('school')):,} schools, "
        f"{len(result.to_frame('coordinator')):,} coordinators; figures describing fewer "
        f"than {args.min_cell} students suppressed)."
    )
    return EXIT_OK


def _demo_fidelity(ctx: DemoContext) -> None:
    from ..fidelity.verb import fidelity
    from ..io import write_text

    if ctx.contacts is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # data warnings are listed in the report itself
        result = fidelity(ctx.students, ctx.contacts, ctx.coordinators)
    result.add_to_report(ctx.report, full=False)
    ctx.report.text(
        "The full affiliate report (schools, coordinators, service mix, outcomes by dosage) "
        "is in fidelity_report.html beside this report; cis-eval fidelity writes it for an "
        "affiliate's own files."
    )
    for level in ("benchmarks", "school", "arm"):
        write_text(ctx.out / "tables" / f"fidelity_{level}.csv", result.table(level).to_csv())
    write_text(ctx.out / "fidelity_report.html", result.report().to_html())


DEMO_SECTIONS.append(_demo_fidelity)


def _register_fidelity(sub: Any) -> None:
    p = sub.add_parser(
        "fidelity",
        help="dosage, caseloads and service mix from a service log: a privacy-safe report",
        description=(cmd_fidelity.__doc__ or "")
        + " Compares every school and coordinator with the published averages of the CIS "
        "evaluation (about 19 contacts, 16 hours and 30 weeks per student, caseloads of "
        "about 84) and with your targets. The report is one HTML file with no student "
        "identifiers; figures describing fewer than --min-cell students are suppressed.",
    )
    p.add_argument("--students", required=True, metavar="FILE", help="roster (CSV, Excel, Parquet)")
    p.add_argument(
        "--contacts", required=True, metavar="FILE", help="service log (CSV, Excel, Parquet)"
    )
    p.add_argument("--coordinators", metavar="FILE", help="coordinators table (optional)")
    p.add_argument(
        "--column-map",
        metavar="FILE",
        help="JSON or TOML file mapping your export's column names to the contract's, by table",
    )
    p.add_argument(
        "--targets",
        metavar="FILE",
        help="TOML file of your targets, e.g. 'contacts = 20', 'caseload = {max = 80}'",
    )
    p.add_argument("--min-cell", type=int, default=10, help="smallest group shown (default 10)")
    p.add_argument(
        "--caseload-guide",
        choices=["none", "intensive", "standard"],
        default="none",
        help="also check caseloads against the practice guide: at most 20 (intensive needs) "
        "or 50-100 (standard)",
    )
    p.add_argument(
        "--school-year",
        nargs=2,
        metavar=("FIRST", "LAST"),
        help="first and last day of the school year (default: August-July of the log)",
    )
    p.add_argument("--title", help="report title")
    p.add_argument("--tables", metavar="DIR", help="also write the report's tables as CSV here")
    p.add_argument("--out", required=True, metavar="FILE", help="report to write (.html)")
    p.set_defaults(func=cmd_fidelity)


REGISTRARS.append(_register_fidelity)


# ----------------------------------------------------------------------------- estimate


def _write_table(folder: Path, name: str, table: Any) -> None:
    from ..io import write_text

    write_text(folder / f"{name}.csv", table.to_csv())
    write_text(folder / f"{name}.md", table.to_markdown())
    write_text(folder / f"{name}.html", table.to_html())


def _list_arg(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items


def cmd_estimate(args: argparse.Namespace) -> int:
    """Estimate intent-to-treat impacts (and, with a contacts log, complier effects)."""
    import matplotlib.pyplot as plt

    from ..estimation.itt import estimate_cace, estimate_itt, estimate_subgroups
    from ..io import write_figure, write_table

    report = _load_validated(args)
    if report.students is None:
        raise UsageError("give the students table: --students FILE")
    covariates: Any = "default"
    if args.covariates is not None:
        covariates = (
            None if args.covariates.strip().lower() == "none" else _list_arg(args.covariates)
        )
    options: dict[str, Any] = {
        "outcomes": _list_arg(args.outcomes),
        "covariates": covariates,
        "se_type": args.se_type,
        "chronic_threshold": args.chronic_threshold,
        "alpha": args.alpha,
    }
    out = Path(args.out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        itt = estimate_itt(
            report.students,
            estimand=args.estimand,
            lin=args.lin,
            permutations=args.permutations,
            seed=args.seed if args.permutations else None,
            **options,
        )
        _write_table(out, "impacts", itt.table())
        write_table(itt.to_frame(), out / "impacts_tidy.csv")
        fig, ax = plt.subplots(figsize=(7, 4))
        itt.plot(ax=ax)
        write_figure(fig, out / "impacts.png")
        plt.close(fig)
        print(itt.table().to_text())
        if report.contacts is not None:
            cace = estimate_cace(
                report.students, report.contacts, min_contacts=args.min_contacts, **options
            )
            _write_table(out, "cace", cace.table())
            print()
            print(cace.table().to_text())
        for by in _list_arg(args.subgroups) or []:
            sub = estimate_subgroups(
                report.students, by, estimand=args.estimand, lin=args.lin, **options
            )
            _write_table(out, f"subgroups_{by}", sub.table())
            print()
            print(sub.table().to_text())
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"\nTables and figure written to {out}/")
    return EXIT_OK


def _demo_impacts(ctx: DemoContext) -> None:
    import matplotlib.pyplot as plt

    from ..estimation.itt import estimate_cace, estimate_itt
    from ..io import write_text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes are printed under the tables
        itt = estimate_itt(ctx.students, permutations=2000, seed=ctx.seed)
        cace = estimate_cace(ctx.students, ctx.contacts) if ctx.contacts is not None else None
    ctx.report.heading("Impacts")
    chronic = itt.to_frame().set_index("outcome").loc["chronic_absence"]
    ctx.report.text(
        f"Assignment to case management changed the share of students who were chronically "
        f"absent by {chronic['estimate']:+.1f} percentage points (control group "
        f"{chronic['control_mean']:.1f}%, p = {chronic['p_value']:.3f}). The table gives "
        "every outcome; the figure shows effect sizes, right of zero favourable.",
        lead=True,
    )
    ctx.report.table(itt.table())
    fig, ax = plt.subplots(figsize=(7, 4))
    itt.plot(ax=ax)
    ctx.report.figure(fig, "Effect sizes with 95% confidence intervals.")
    write_text(ctx.out / "tables" / "impacts.csv", itt.table().to_csv())
    if cace is not None:
        ctx.report.table(cace.table())
        write_text(ctx.out / "tables" / "cace.csv", cace.table().to_csv())


DEMO_SECTIONS.append(_demo_impacts)


def _register_estimate(sub: Any) -> None:
    from ..estimation.itt import ESTIMANDS, SE_TYPES

    p = sub.add_parser(
        "estimate",
        help="intent-to-treat impacts on the six outcomes (and CACE with a contacts log)",
        description=(cmd_estimate.__doc__ or "")
        + " Writes impacts.csv/.md/.html (an MDRC-style table), impacts_tidy.csv (every "
        "column of the estimates) and impacts.png (a forest plot of effect sizes).",
    )
    _add_table_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--outcomes", metavar="LIST", help="comma-separated outcomes (default: the study's six)"
    )
    p.add_argument(
        "--covariates",
        metavar="LIST",
        help="comma-separated covariates for every outcome, or 'none' (default: each "
        "outcome's prior-year measure plus demographics)",
    )
    p.add_argument("--estimand", default="fixed_effects", choices=list(ESTIMANDS))
    p.add_argument("--se-type", default="HC2", choices=list(SE_TYPES))
    p.add_argument("--lin", action="store_true", help="interact covariates with assignment")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level")
    p.add_argument(
        "--permutations",
        type=int,
        default=0,
        help="within-school permutations for randomization inference (e.g. 10000)",
    )
    p.add_argument("--seed", type=int, default=20130601, help="seed of the permutations")
    p.add_argument(
        "--subgroups",
        metavar="LIST",
        help="comma-separated subgroup columns, e.g. school_level,female,baseline_risk",
    )
    p.add_argument(
        "--min-contacts",
        type=int,
        default=1,
        help="Level 2 contacts that count as receiving services, for the CACE (default 1)",
    )
    p.add_argument(
        "--chronic-threshold",
        type=float,
        default=0.10,
        help="absence share that counts as chronic (0.10 federal; 0.20 offered)",
    )
    p.set_defaults(func=cmd_estimate)


REGISTRARS.append(_register_estimate)


# ----------------------------------------------------------------------------- integrity


def _integrity_results(students: pd.DataFrame, args: argparse.Namespace, covariates: Any) -> Any:
    """The review of every outcome and the baseline table of the first one."""
    from ..integrity.checks import baseline_equivalence, wwc_review

    review = wwc_review(
        students,
        outcomes=_list_arg(args.outcomes),
        design=args.design,
        randomization_intact=not args.compromised,
        boundary=args.boundary,
        covariates=covariates,
        chronic_threshold=args.chronic_threshold,
    )
    first = review.to_frame()["outcome"].iloc[0]
    # the printed table adds the randomization test to the review's own comparison
    baseline = baseline_equivalence(
        students,
        outcome=first,
        adjusted_for=review.baseline[first].adjusted_for if first in review.baseline else None,
        basis="raw" if args.design == "cluster_rct" else "adjusted",
        permutations=args.permutations,
        seed=args.seed if args.permutations else None,
        chronic_threshold=args.chronic_threshold,
    )
    return review, baseline, first


def cmd_integrity(args: argparse.Namespace) -> int:
    """Baseline equivalence, attrition and a WWC-standards rating of each outcome."""
    import matplotlib.pyplot as plt

    from ..io import write_figure
    from ..present.privacy import check_min_cell

    try:
        min_cell = check_min_cell(args.min_cell)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--min-cell: {exc}") from exc
    report = _load_validated(args)
    if report.students is None:
        raise UsageError("give the students table: --students FILE")
    covariates: Any = "default"
    if args.covariates is not None:
        covariates = (
            None if args.covariates.strip().lower() == "none" else _list_arg(args.covariates)
        )
    if args.permutations < 0:
        raise UsageError(f"--permutations must be 0 or more, got {args.permutations}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            review, baseline, first = _integrity_results(report.students, args, covariates)
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
        out = Path(args.out)
        for name, table in tables.items():
            _write_table(out, name, table)
        for outcome, result in review.baseline.items():
            if outcome != first:
                _write_table(
                    out, f"baseline_equivalence_{outcome}", result.table(min_cell=min_cell)
                )
        for name, draw in (("love_plot", baseline.plot), ("attrition", review.attrition.plot)):
            fig, ax = plt.subplots(figsize=(7, 4.5))
            draw(ax=ax)
            write_figure(fig, out / f"{name}.png")
            plt.close(fig)
        print(f"Tables and figures written to {out}/")
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return EXIT_OK


def _demo_integrity(ctx: DemoContext) -> None:
    import matplotlib.pyplot as plt

    from ..integrity.checks import baseline_equivalence, wwc_review
    from ..io import write_text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes are printed under the tables
        review = wwc_review(ctx.students)
        baseline = baseline_equivalence(
            ctx.students, outcome="chronic_absence", permutations=2000, seed=ctx.seed
        )
    ratings = review.to_frame()["rating"].value_counts()
    ctx.report.heading("Does the evidence hold up? (What Works Clearinghouse standards)")
    ctx.report.text(
        "Before reading impacts, check that the randomized groups stayed comparable: how "
        "many students each outcome lost (attrition), whether the program and control "
        "groups with outcome data looked alike before random assignment (baseline "
        "equivalence), and what the What Works Clearinghouse's standards make of it. "
        + "; ".join(f"{int(n)} outcome(s): {r}" for r, n in ratings.items())
        + ".",
        lead=True,
    )
    ctx.report.table(baseline.table())
    fig, ax = plt.subplots(figsize=(7, 4.5))
    baseline.plot(ax=ax)
    ctx.report.figure(
        fig, "Baseline effect sizes (Love plot) with the WWC's 0.05 and 0.25 thresholds."
    )
    ctx.report.table(review.attrition.table())
    ctx.report.table(review.table())
    for name, table in (
        ("baseline_equivalence", baseline.table()),
        ("attrition", review.attrition.table()),
        ("wwc_review", review.table()),
    ):
        write_text(ctx.out / "tables" / f"{name}.csv", table.to_csv())


# right after the description of the trial: integrity comes before impacts
DEMO_SECTIONS.insert(DEMO_SECTIONS.index(_demo_describe) + 1, _demo_integrity)


def _register_integrity(sub: Any) -> None:
    from ..integrity.checks import BOUNDARIES, DESIGNS

    p = sub.add_parser(
        "integrity",
        help="baseline equivalence, attrition and a WWC-standards rating of each outcome",
        description=(cmd_integrity.__doc__ or "")
        + " Prints three tables: baseline equivalence in the analytic sample of the first "
        "outcome (with --out, one per outcome), attrition against the WWC boundary, and the "
        "rating with its reasons. With --out also writes love_plot.png and attrition.png. "
        "Figures describing fewer than --min-cell students are suppressed.",
    )
    _add_table_args(p)
    p.add_argument("--out", metavar="DIR", help="write the tables (.csv/.md/.html) and figures")
    p.add_argument(
        "--outcomes", metavar="LIST", help="comma-separated outcomes (default: the study's six)"
    )
    p.add_argument(
        "--boundary",
        default="cautious",
        choices=list(BOUNDARIES),
        help="WWC attrition boundary (default cautious, for dropout-prevention outcomes; the "
        "optimistic boundary above 12%% attrition is unconfirmed)",
    )
    p.add_argument(
        "--design",
        default="rct",
        choices=list(DESIGNS),
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
        "--permutations",
        type=int,
        default=2000,
        help="within-school permutations for the omnibus randomization test (0 skips it)",
    )
    p.add_argument("--seed", type=int, default=20130601, help="seed of the permutations")
    p.add_argument("--min-cell", type=int, default=10, help="smallest group shown (default 10)")
    p.add_argument(
        "--chronic-threshold",
        type=float,
        default=0.10,
        help="absence share that counts as chronic (0.10 federal; 0.20 offered)",
    )
    p.set_defaults(func=cmd_integrity)


REGISTRARS.append(_register_integrity)


# ----------------------------------------------------------------------------- diagnose


def _name_values(items: Sequence[str] | None, option: str) -> dict[str, list[float]]:
    """``NAME=V1,V2`` options -> ``{"NAME": [V1, V2]}``; a usage error names the option."""
    out: dict[str, list[float]] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not sep or not name.strip() or not values:
            raise UsageError(f"{option} takes NAME=VALUE[,VALUE...], got {item!r}")
        out[name.strip().replace("-", "_")] = values
    return out


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Diagnose a planned trial by simulation: bias, RMSE, power, coverage and type-S error."""
    from matplotlib.figure import Figure

    from ..design.diagnose import Design, diagnose
    from ..io import write_figure, write_table

    effects = _name_values(args.effect, "--effect")
    if any(len(v) != 1 for v in effects.values()):
        raise UsageError("--effect takes one value per outcome; try several with --grid")
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
    if effects:
        kwargs["effects"] = {k: v[0] for k, v in effects.items()}
    estimators: Any = _list_arg(args.estimator) or ["fixed_effects"]  # checked by diagnose
    result = diagnose(
        Design(**kwargs),
        estimator=estimators,
        n_sims=args.sims,
        seed=args.seed,
        alpha=args.alpha,
        mode=args.mode,
        grid=_name_values(args.grid, "--grid") or None,
        progress=False if args.no_progress else None,
    )
    print(result.table().to_text())
    if args.out:
        out = Path(args.out)
        _write_table(out, "diagnosis", result.table())
        write_table(result.to_frame(), out / "diagnosis_tidy.csv")
        fig = Figure(figsize=(13, 4.2), layout="constrained")
        left, right = fig.subplots(1, 2)
        result.plot(left, diagnosand="power")
        result.plot(right, diagnosand="coverage")
        write_figure(fig, out / "diagnosis.png", dpi=120)
        print(f"\nTables and figure written to {out}/")
    return EXIT_OK


def _register_diagnose(sub: Any) -> None:
    from ..design.diagnose import ESTIMATORS, MODES

    p = sub.add_parser(
        "diagnose",
        help="simulate a planned trial many times: bias, RMSE, power, coverage, type-S",
        description=(cmd_diagnose.__doc__ or "")
        + " Design fields not given keep the study's values (28 schools, about 80 students "
        "each, the interim scenario). Writes diagnosis.csv/.md/.html, diagnosis_tidy.csv "
        "and diagnosis.png (power and coverage) with --out.",
    )
    g = p.add_argument_group("design")
    g.add_argument("--schools", type=int, help="number of schools (default 28)")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--students-per-school", type=float, help="average students per school")
    size.add_argument("--n-students", type=int, help="total students (instead)")
    g.add_argument("--share-treated", type=float, help="share assigned to the program")
    g.add_argument("--icc", type=float, help="intraclass correlation of students' risk")
    g.add_argument("--take-up", type=float, help="share served if assigned (default 0.87)")
    g.add_argument("--attrition", type=float, help="share missing each outcome (default 0.08)")
    g.add_argument("--differential-attrition", type=float, help="program minus control")
    g.add_argument(
        "--effect",
        action="append",
        metavar="OUTCOME=VALUE",
        help="true ITT effect (proportions for binary outcomes, e.g. chronic_absence=-0.06); "
        "repeatable; outcomes not named have no effect",
    )
    s = p.add_argument_group("simulation")
    s.add_argument(
        "--estimator",
        metavar="LIST",
        help=f"comma-separated, of {', '.join(ESTIMATORS)} (default fixed_effects)",
    )
    s.add_argument("--sims", type=int, default=1000, help="replications (default 1000)")
    s.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    s.add_argument("--alpha", type=float, default=0.05, help="test level (default 0.05)")
    s.add_argument("--mode", choices=list(MODES), default="design", help="default design")
    s.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2",
        help="values to try, e.g. schools=20,28,40 or chronic_absence=-0.03,-0.06; repeatable",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", metavar="DIR", help="write tables and the figure here")
    p.set_defaults(func=cmd_diagnose)


REGISTRARS.append(_register_diagnose)


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
