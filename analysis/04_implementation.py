"""Step 04: implementation fidelity: who got what, against the study's published benchmarks.

Reads the shipped synthetic trial, including the coordinators' monitoring log (one row per
contact) and the coordinators table, and measures with ``ce.fidelity`` the dosage of
Level 2 case management (contacts, hours, weeks of service), the service mix across the
ten CIS service areas, caseloads by school and coordinator, and the service contrast
between the program and control groups. Each figure is set against the published
averages of the CIS evaluation (Corrin et al. 2015: about 19 contacts, 16 hours and 30
weeks per case-managed student, caseloads of about 84, 44% of coordinator time on Level 2)
and caseloads also against the practice guide's 50-100 range (Rumberger et al. 2017).
Writes

* ``04_benchmarks.csv`` / ``.md``: network figures against the benchmarks;
* ``04_dosage.csv`` / ``.md``: distribution of each dosage measure (mean, quartiles);
* ``04_service_mix.csv`` / ``.md``: contacts and hours by service area and mode;
* ``04_schools.csv`` / ``.md``: dosage, reach and caseloads by school, with flags;
* ``04_coordinators.csv`` / ``.md``: caseloads and dosage by coordinator;
* ``04_service_contrast.csv`` / ``.md``: services received by research group (crossover,
  and the share with at least k contacts: the first stage of the CACE by threshold);
* ``04_implementation.png``: the contacts distribution, contacts per student by school
  against the benchmark, and Level 2 contacts per week over the school year.

The CSV files hold the unsuppressed numbers, for analysis; the Markdown tables are the
publication versions, with every cell describing fewer than ``MIN_CELL`` students
suppressed (and enough others that it cannot be worked out from the totals).

Run it alone with ``python analysis/04_implementation.py``, or the whole pipeline with
``make analysis``.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # a bare Figure: no pyplot state, no GUI backend

import cis_eval as ce

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "synthetic"  # the shipped synthetic trial
OUT = ROOT / "analysis" / "output"
INPUTS = tuple(DATA / f"{name}.csv" for name in ce.io.TABLE_NAMES)
SEED = None  # this step draws no random numbers
CASELOAD_GUIDE = "standard"  # practice guide: 50-100 students with lighter needs
THRESHOLDS = (1, 10, 19, 30)  # receipt thresholds (at least k Level 2 contacts)
MIN_CELL = 10  # smallest number of students a published cell may describe
DPI = 150
# level of ce.FidelityResult -> output name
LEVELS = {
    "benchmarks": "04_benchmarks",
    "dosage": "04_dosage",
    "service_mix": "04_service_mix",
    "school": "04_schools",
    "coordinator": "04_coordinators",
    "arm": "04_service_contrast",
}


def implementation(checked: ce.ValidationReport) -> ce.FidelityResult:
    """Dosage, service mix, caseloads and the service contrast of the trial."""
    return ce.fidelity(
        checked.students,
        checked.contacts,
        checked.coordinators,
        caseload_guide=CASELOAD_GUIDE,
        thresholds=THRESHOLDS,
        min_cell=MIN_CELL,
    )


def implementation_figure(result: ce.FidelityResult) -> Figure:
    """Three panels: contacts per student, schools against the benchmark, weekly contacts."""
    fig = Figure(figsize=(11, 6.4))
    grid = fig.add_gridspec(2, 2, width_ratios=(1.15, 1))
    dosage = fig.add_subplot(grid[0, 0])
    weekly = fig.add_subplot(grid[1, 0])
    schools = fig.add_subplot(grid[:, 1])
    result.plot("dosage", measure="contacts", ax=dosage)
    dosage.set_title("Level 2 contacts per program student reached", fontsize=10)
    result.plot("weekly", ax=weekly)
    weekly.set_title("Contacts per week over the school year", fontsize=10)
    result.plot("benchmarks", measure="contacts", ax=schools)
    schools.set_title("Mean contacts per student reached, by school", fontsize=10)
    fig.suptitle(
        "Implementation of Level 2 case management (synthetic data)", fontsize=11, x=0.01, ha="left"
    )
    fig.tight_layout()
    return fig


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's tables and figure into ``out``; return name -> path."""
    checked = ce.load_trial(data)
    result = implementation(checked)
    paths: dict[str, Path] = {}
    for level, name in LEVELS.items():
        paths[f"{level}_csv"] = ce.write_table(result.to_frame(level), out / f"{name}.csv")
        paths[f"{level}_md"] = ce.io.write_text(
            out / f"{name}.md", result.table(level).to_markdown()
        )
    ce.write_figure(implementation_figure(result), out / "04_implementation.png", dpi=DPI)
    paths["implementation_png"] = out / "04_implementation.png"
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
