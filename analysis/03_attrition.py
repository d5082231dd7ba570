"""Step 03: attrition by outcome and the What Works Clearinghouse rating of each finding.

Reads the shipped synthetic trial and, for each of the six outcomes, counts the randomized
students and those with the outcome by arm, computes overall attrition (percent) and
differential attrition (percentage points), and classifies them against the WWC
``BOUNDARY`` attrition boundary (cautious: the program may change who stays in the sample,
the right assumption for dropout prevention). The boundary table is cis_eval's package
data (WWC Standards Handbook Table II.1, with its provenance: the cautious boundary is
confirmed by two transcriptions; the optimistic one only up to 12% overall attrition,
which the outputs say wherever an unconfirmed row is used). Then rates each finding by the
WWC's group-design standards for a randomized trial with intact randomization: low
attrition meets standards without reservations; high attrition must show baseline
equivalence of the analytic sample on the outcome's prior-year measure and can at best
meet standards with reservations. Writes

* ``03_attrition.csv`` / ``.md``: attrition by outcome with the boundary and the
  classification (``ce.AttritionResult``);
* ``03_wwc_review.csv`` / ``.md``: the rating of each outcome with its reasons, the WWC
  effect size, improvement index and finding (``ce.WWCReview``);
* ``03_attrition.png``: overall against differential attrition of each outcome, with the
  cautious and optimistic boundaries.

Run it alone with ``python analysis/03_attrition.py``, or the whole pipeline with
``make analysis``.
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
BOUNDARY = "cautious"  # WWC attrition boundary for dropout-prevention outcomes
RANDOMIZATION_INTACT = True  # the lottery's audit trail verifies (see ce.verify_assignment)
DPI = 150


def attrition(students: pd.DataFrame) -> ce.AttritionResult:
    """Overall and differential attrition of the six outcomes."""
    return ce.attrition(students, boundary=BOUNDARY)


def review(students: pd.DataFrame) -> ce.WWCReview:
    """The WWC rating of each outcome (default impact model: school fixed effects, HC2)."""
    return ce.wwc_review(students, boundary=BOUNDARY, randomization_intact=RANDOMIZATION_INTACT)


def attrition_figure(result: ce.AttritionResult) -> Figure:
    """Each outcome's attrition against the WWC boundaries, as PNG bytes."""
    fig = Figure(figsize=(7.5, 4.4))
    ax = fig.subplots()
    result.plot(ax=ax)
    ax.set_title(
        f"Attrition by outcome and the WWC boundaries ({BOUNDARY} shaded)\n(synthetic data)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's tables and figure into ``out``; return name -> path."""
    checked = ce.load_trial(data)
    att = attrition(checked.students)
    rating = review(checked.students)
    paths = {
        "attrition_csv": ce.write_table(att.to_frame(), out / "03_attrition.csv"),
        "attrition_md": ce.io.write_text(out / "03_attrition.md", att.table().to_markdown()),
        "review_csv": ce.write_table(rating.to_frame(), out / "03_wwc_review.csv"),
        "review_md": ce.io.write_text(out / "03_wwc_review.md", rating.table().to_markdown()),
    }
    ce.write_figure(attrition_figure(att), out / "03_attrition.png", dpi=DPI)
    paths["attrition_png"] = out / "03_attrition.png"
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
