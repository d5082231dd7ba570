"""Step 01: who was randomized, and did the groups look alike before the program began.

Reads the shipped synthetic trial, checks it against the data contract, and writes

* ``01_sample_by_school.csv`` / ``.md``: students randomized per school, by research group;
* ``01_sample_by_school.png``: the same counts as a figure;
* ``01_baseline_by_arm.csv`` / ``.md``: baseline characteristics by research group
  (unadjusted means, standard deviations and counts, from ``ce.describe``).

Run it alone with ``python analysis/01_sample_and_baseline.py``, or the whole pipeline with
``make analysis``. To use your own trial, point ``DATA`` at a folder holding
``students.csv``, ``contacts.csv`` and ``coordinators.csv``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure  # a bare Figure: no pyplot state, no GUI backend

import cis_eval as ce

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "synthetic"  # the shipped synthetic trial
OUT = ROOT / "analysis" / "output"
INPUTS = tuple(DATA / f"{name}.csv" for name in ce.io.TABLE_NAMES)
SEED = None  # this step draws no random numbers
DPI = 150
PROGRAM_COLOUR, CONTROL_COLOUR = "#00597c", "#9fc3d4"


def describe_trial(data: Path = DATA) -> ce.TrialSummary:
    """Load and validate the three tables, then describe the trial."""
    checked = ce.load_trial(data)
    return ce.describe(checked.students, checked.contacts)


def sample_frame(summary: ce.TrialSummary) -> pd.DataFrame:
    """Machine-readable counts: one row per school."""
    return summary.by_school.reset_index()[["school_id", "students", "program", "control"]]


def sample_table(frame: pd.DataFrame) -> ce.Table:
    """Reader-facing counts with a total row."""
    total = pd.DataFrame(
        {
            "school_id": ["All schools"],
            "students": [int(frame["students"].sum())],
            "program": [int(frame["program"].sum())],
            "control": [int(frame["control"].sum())],
        }
    )
    shown = pd.concat([frame, total], ignore_index=True).rename(
        columns={
            "school_id": "School",
            "students": "Students",
            "program": "Program",
            "control": "Control",
        }
    )
    return ce.Table(
        shown,
        title="Students randomized, by school and research group",
        notes=(
            "Each school is a randomization block; students were assigned within schools.",
            "Synthetic data (data/synthetic), not the study's records.",
        ),
    )


def sample_figure(frame: pd.DataFrame) -> Figure:
    """Stacked bars of program and control students per school, as PNG bytes."""
    shown = frame.sort_values(["students", "school_id"])
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    x = range(len(shown))
    ax.bar(x, shown["program"], color=PROGRAM_COLOUR, label="Program")
    ax.bar(x, shown["control"], bottom=shown["program"], color=CONTROL_COLOUR, label="Control")
    ax.set_xticks(list(x), shown["school_id"], rotation=90, fontsize=7)
    ax.set_ylabel("Students randomized")
    ax.set_title("Students randomized, by school and research group")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's tables and figure into ``out``; return name -> path."""
    summary = describe_trial(data)
    sample = sample_frame(summary)
    baseline = summary.baseline
    paths = {
        "sample_csv": ce.write_table(sample, out / "01_sample_by_school.csv"),
        "sample_md": ce.io.write_text(
            out / "01_sample_by_school.md", sample_table(sample).to_markdown()
        ),
        "baseline_csv": ce.write_table(baseline, out / "01_baseline_by_arm.csv"),
        "baseline_md": ce.io.write_text(
            out / "01_baseline_by_arm.md", summary.tables()["baseline"].to_markdown()
        ),
    }
    ce.write_figure(sample_figure(sample), out / "01_sample_by_school.png", dpi=DPI)
    paths["sample_png"] = out / "01_sample_by_school.png"
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
