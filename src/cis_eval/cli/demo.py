"""``cis-eval demo``: the main job on the shipped synthetic trial, as one report.

The report is built from :data:`DEMO_SECTIONS`, in that order: a section is a function
taking a :class:`DemoContext` that adds headings, text, tables and figures to the report
and writes its tables beside it.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import EXIT_OK, SEED, UsageError, output_folder

if TYPE_CHECKING:
    import pandas as pd

NAME = "demo"
HELP = "run the main job on the shipped synthetic trial"


@dataclass
class DemoContext:
    """What each demo section needs: the validated data, the report and the output folder."""

    students: pd.DataFrame
    contacts: pd.DataFrame | None
    coordinators: pd.DataFrame | None
    out: Path
    report: Any
    seed: int


def describe_section(ctx: DemoContext) -> None:
    """The trial: students, schools and the tables of :func:`cis_eval.describe`."""
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


def integrity_section(ctx: DemoContext) -> None:
    """Attrition, baseline equivalence and the WWC rating, before any impact."""
    import matplotlib.pyplot as plt

    from ..integrity import baseline_equivalence, wwc_review
    from ..io import write_text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes are printed under the tables
        review = wwc_review(ctx.students)
        baseline = baseline_equivalence(
            ctx.students, outcome="chronic_absence", sims=2000, seed=ctx.seed
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


def impacts_section(ctx: DemoContext) -> None:
    """Intent-to-treat impacts (and complier effects with a contacts log)."""
    import matplotlib.pyplot as plt

    from ..estimation import estimate_cace, estimate_itt
    from ..io import write_text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes are printed under the tables
        itt = estimate_itt(ctx.students, sims=2000, seed=ctx.seed)
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


def power_section(ctx: DemoContext) -> None:
    """Minimum detectable effects of the trial's own design."""
    import pandas as pd

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


def fidelity_section(ctx: DemoContext) -> None:
    """Implementation fidelity, and the full affiliate report beside the demo's."""
    from ..fidelity import fidelity
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


DEMO_SECTIONS: tuple[Callable[[DemoContext], None], ...] = (
    describe_section,
    integrity_section,  # the trial's soundness comes before its impacts
    impacts_section,
    power_section,
    fidelity_section,
)
"""Sections of the demo report, in order."""


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``demo``."""
    p.description = run.__doc__
    p.add_argument(
        "--data",
        default="data/synthetic",
        help="folder with students.csv, contacts.csv, coordinators.csv (default: data/synthetic)",
    )
    p.add_argument(
        "--out",
        type=output_folder,
        default="output/demo",
        help="output folder (default: output/demo)",
    )
    p.add_argument("--seed", type=SEED, default=20130601, help="seed for random steps")


def run(args: argparse.Namespace) -> int:
    """Run the main job on the shipped synthetic trial and write a report."""
    from ..io import atomic_folder, load_trial, write_text
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
    out = args.out
    report = Report("cis_eval demo: a synthetic Communities In Schools trial")
    report.note(
        "All numbers come from synthetic data simulated by cis_eval to resemble the "
        "structure of MDRC's evaluation. They are not the study's results."
    )
    if valid.students is None:
        raise UsageError(f"{data}: students.csv could not be read")
    with atomic_folder(out, command=NAME) as tmp:
        ctx = DemoContext(
            valid.students, valid.contacts, valid.coordinators, tmp, report, args.seed
        )
        for section in DEMO_SECTIONS:
            section(ctx)
        write_text(tmp / "report.html", report.to_html())
        write_text(tmp / "report.md", report.to_markdown())
    print(report.to_markdown())
    print(f"Report written to {out / 'report.html'} (and report.md, tables/).")
    return EXIT_OK
