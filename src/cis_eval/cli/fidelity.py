"""``cis-eval fidelity``: implementation fidelity from a service log, as a report."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import (
    EXIT_OK,
    POSITIVE_INT,
    OutputFile,
    UsageError,
    add_mapping_arg,
    add_number_format_args,
    add_school_year,
    column_map,
    contract_of,
    iso_date,
    load_validated,
    output_folder,
    print_warnings,
    read_config,
)

if TYPE_CHECKING:
    from ..fidelity.result import Level

NAME = "fidelity"
HELP = "dosage, caseloads and service mix from a service log: a privacy-safe report"

# A contacts file bigger than this is aggregated by DuckDB straight from disk instead of
# being loaded and validated in pandas first (about 5 million rows of CSV).
BIG_LOG_BYTES = 200 * 1024 * 1024

TABLE_LEVELS: tuple[Level, ...] = (
    "benchmarks",
    "school",
    "coordinator",
    "dosage",
    "service_mix",
    "school_service_mix",
    "arm",
    "dose_response",
)
"""The report's tables written by ``--tables``, in order (each when the report has it)."""


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``fidelity``."""
    p.description = (run.__doc__ or "") + (
        " Compares every school and coordinator with the published averages of the CIS "
        "evaluation (about 19 contacts, 16 hours and 30 weeks per student, caseloads of "
        "about 84) and with your targets. The report is one HTML file with no student "
        "identifiers; figures describing fewer than --min-cell students are suppressed. "
        "The roster needs only student_id and school_id; with a treatment column that "
        "has a control group (a trial), the report adds the service contrast."
    )
    p.add_argument(
        "--students",
        metavar="FILE",
        help="program roster or a trial's students table (CSV, Excel, Parquet); or use --mapping",
    )
    p.add_argument(
        "--contacts", metavar="FILE", help="service log (CSV, Excel, Parquet); or use --mapping"
    )
    p.add_argument("--coordinators", metavar="FILE", help="coordinators table (optional)")
    p.add_argument(
        "--column-map",
        metavar="FILE",
        help="JSON or TOML file mapping your export's column names to the contract's, by table",
    )
    add_number_format_args(p)
    add_mapping_arg(p)
    p.add_argument(
        "--targets",
        metavar="FILE",
        help="TOML file of your targets, e.g. 'contacts = 20', 'caseload = {max = 80}'",
    )
    p.add_argument(
        "--min-cell", type=POSITIVE_INT, default=10, help="smallest group shown (default 10)"
    )
    p.add_argument(
        "--caseload-guide",
        choices=["none", "intensive", "standard"],
        default="none",
        help="also check caseloads against the practice guide: at most 20 (intensive needs) "
        "or 50-100 (standard)",
    )
    add_school_year(p, "first and last day of the school year (default: August-July of the log)")
    p.add_argument(
        "--through",
        type=iso_date,
        metavar="DATE",
        help="the date the data run through (default: the last contact); targets for "
        "contacts, hours and weeks are pro-rated to the share of the school year elapsed",
    )
    p.add_argument("--title", help="report title")
    p.add_argument(
        "--tables",
        type=output_folder,
        metavar="DIR",
        help="also write the report's tables as CSV here",
    )
    p.add_argument(
        "--xlsx",
        type=OutputFile(".xlsx"),
        metavar="FILE",
        help="also write every table of the report to this Excel workbook",
    )
    p.add_argument(
        "--follow-up",
        type=OutputFile(".xlsx"),
        metavar="FILE",
        help="also write a CONFIDENTIAL follow-up workbook for coordinators (it lists "
        "student identifiers: keep it in house): students not yet reached, below the "
        "contacts target, or without a contact in the last --follow-up-weeks weeks",
    )
    p.add_argument(
        "--follow-up-weeks",
        type=POSITIVE_INT,
        default=4,
        metavar="N",
        help="for --follow-up: list reached students without a contact in N weeks (default 4)",
    )
    p.add_argument(
        "--out",
        required=True,
        type=OutputFile(".html", ".htm"),
        metavar="FILE",
        help="report to write (.html)",
    )


def _read_targets(path: str | None) -> dict[str, Any] | None:
    """Read a targets file: TOML (or JSON) with ``measure = value`` lines."""
    if not path:
        return None
    data = read_config(path, "targets")
    if not isinstance(data, dict):
        raise UsageError(f"{Path(path).name}: expected 'measure = value' lines")
    return data


def _mapped_log_size(mapping: str) -> int:
    """Size of the CSV or Parquet contacts log a mapping file names (0 for other kinds)."""
    from ..io import _LOG_KINDS, file_size, read_mapping

    spec = read_mapping(mapping).tables.get("contacts")
    if spec is None or Path(spec.file).suffix.lower() not in _LOG_KINDS:
        return 0
    return file_size(Path(mapping).parent / spec.file)


def _load_mapped_big(args: argparse.Namespace) -> tuple[Any, Any]:
    """Roster and coordinators through the mapping, validated; the log left on disk."""
    from ..data.validate import validate
    from ..io import load_export

    export = load_export(args.mapping, log_on_disk=True)
    for note in export.notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in export.warnings:
        print(f"warning: {problem}", file=sys.stderr)
    students, staff = export.students, export.coordinators
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = validate(
            students,
            None,
            staff,
            contract=contract_of({"students": students}),
            school_year=args.school_year,
        )
    print_warnings(caught)
    return report, export.contacts_log


def run(args: argparse.Namespace) -> int:
    """Measure implementation fidelity from a service log and write a privacy-safe report."""
    from tqdm import tqdm

    from ..fidelity import fidelity, published_targets
    from ..io import atomic_folder, write_text

    out = args.out
    if not args.mapping and not (args.students and args.contacts):
        raise UsageError("give --students and --contacts, or a --mapping file that names them")
    contacts_path = Path(args.contacts or "")
    big = (
        not args.mapping
        and contacts_path.is_file()
        and contacts_path.suffix.lower() in (".parquet", ".pq", ".csv", ".tsv", ".txt")
        and contacts_path.stat().st_size > BIG_LOG_BYTES
        # DuckDB reads UTF-8 with '.' decimals: a declared number format or encoding is
        # read by the table reader, which honours it
        and (args.decimal, args.thousands, args.encoding) == (".", None, None)
    )
    # A mapped log as large is renamed and recoded by DuckDB, never loaded into pandas.
    big_mapped = bool(args.mapping) and _mapped_log_size(args.mapping) > BIG_LOG_BYTES
    show = sys.stderr.isatty() and (
        big_mapped or (contacts_path.is_file() and contacts_path.stat().st_size > 5e6)
    )
    bar = tqdm(total=3, desc="cis-eval fidelity", file=sys.stderr, leave=False, disable=not show)
    try:
        targets = published_targets()
        user = _read_targets(args.targets)
        if user:
            targets = targets.with_user(user, source=Path(args.targets).name)
        bar.set_postfix_str("reading and checking the files")
        contacts: Any
        if big_mapped:
            report, contacts = _load_mapped_big(args)
            cmap = None
        elif big:
            # Huge logs: pandas validates the roster; DuckDB reads and checks the log.
            report = load_validated(
                argparse.Namespace(**{**vars(args), "contacts": None}), contract="fidelity"
            )
            contacts = contacts_path
            cmap = column_map(args.column_map).get("contacts")
        else:
            report = load_validated(args, need_contacts=True, contract="fidelity")
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
                school_year=args.school_year,
                through=args.through,
                min_cell=args.min_cell,
                column_map=cmap,
            )
        print_warnings(caught)
        bar.update(1)
        bar.set_postfix_str("writing the report")
        html = result.report(title=args.title).to_html()
        tables = result.report_tables()
        if args.tables:
            with atomic_folder(args.tables, command=NAME) as tmp:
                for level in (*TABLE_LEVELS, "monthly"):
                    if level in tables:
                        write_text(tmp / f"fidelity_{level}.csv", tables[level].to_csv())
        if args.xlsx:
            result.to_excel(args.xlsx)
        if args.follow_up:
            result.write_follow_up(args.follow_up, weeks=args.follow_up_weeks)
        write_text(out, html)
        bar.update(1)
    finally:
        bar.close()
    n_coord = result.to_frame("coordinator")["coordinator_id"].nunique()
    print(
        f"Wrote {out} ({len(result.to_frame('school')):,} schools, "
        f"{n_coord:,} coordinators; figures describing fewer "
        f"than {args.min_cell} students suppressed)."
    )
    if args.xlsx:
        print(f"Wrote {args.xlsx}: every table of the report (no student identifiers).")
    if args.follow_up:
        print(
            f"Wrote {args.follow_up}: CONFIDENTIAL follow-up lists for coordinators. It "
            "CONTAINS STUDENT IDENTIFIERS: keep it in house, never publish it or attach it "
            "to the report."
        )
    return EXIT_OK
