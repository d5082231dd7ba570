"""``cis-eval map``: draft and check the mapping file that reads an affiliate's export.

``cis-eval map --init EXPORT...`` reads every sheet of the export files, recognises the
roster, staff and contacts tables from their headers, and writes a commented mapping file
for the user to edit: the header row found below any title rows, a column map, the
affiliate's wordings with the contract value each one is read as, the wordings nobody
knows yet, and school names that look like typos. ``cis-eval map --check MAPPING`` reads
the export through the edited file and lists what it did and anything still wrong.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ._common import EXIT_OK, OutputFile, one_line

NAME = "map"
HELP = "draft (--init) or check (--check) the mapping file that reads your export"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``map``."""
    p.description = (run.__doc__ or "") + (
        " The mapping file (TOML) names each table's file and sheet, finds the header row "
        "below title rows, renames columns and recodes your wordings (service types, "
        "tiers, modes, grades such as '8th Grade', shares such as '45%', yes/no, US or "
        "ISO dates) to the data contract."
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--init",
        nargs="+",
        metavar="EXPORT",
        help="export files (workbooks, CSV) to draft a mapping file from; every sheet is read",
    )
    g.add_argument(
        "--check",
        metavar="MAPPING",
        help="read the export through this mapping file and report what was done",
    )
    p.add_argument(
        "--out",
        type=OutputFile(".toml"),
        default=Path("mapping.toml"),
        help="mapping file to write with --init (default: mapping.toml)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace the --out file if it already exists"
    )


def run(args: argparse.Namespace) -> int:
    """Draft a mapping file from an export (--init), or check one (--check)."""
    if args.check:
        return _check(Path(args.check))
    return _init([Path(e) for e in args.init], Path(args.out), force=bool(args.force))


def _init(exports: list[Path], out: Path, *, force: bool) -> int:
    from ..data.mapping import draft_mapping, guess_table
    from ..io import read_sheet, sheet_names, write_new_text

    frames = []
    files: dict[str, str] = {}
    for path in exports:
        sheets: list[str | None] = list(sheet_names(path)) or [None]
        frames += [read_sheet(path, sheet=s) for s in sheets]
        # file names in the mapping are relative to the mapping file's folder
        files[path.name] = Path(os.path.relpath(path.absolute(), out.absolute().parent)).as_posix()
    text = draft_mapping(frames, files=files)
    write_new_text(out, text, force=force)
    found = []
    for f in frames:
        table = guess_table(map(str, f.columns))
        where = f"{f.attrs['source']}" + (
            f", sheet {f.attrs['sheet']!r}" if f.attrs["sheet"] else ""
        )
        found.append(
            f"  {table or 'not recognised'}: {where} (column names in row {f.attrs['header_row']})"
        )
    unknown = text.count("NOT KNOWN")
    # file and sheet names are the user's: printed escaped and bounded, like messages
    shown = one_line(out)
    print(f"Wrote {shown}, a draft mapping for:")
    print("\n".join(one_line(line) for line in found))
    if unknown:
        print(f"{unknown} wording(s) are marked NOT KNOWN: choose a value for each.")
    print(f"Check every section, then run: cis-eval map --check {shown}")
    return EXIT_OK


def _check(mapping: Path) -> int:
    from ..io import load_export

    export = load_export(mapping)
    print(export.to_text())
    print("The export reads cleanly through the mapping file.")
    return EXIT_OK
