"""Step 07: the effect of receiving case management on compliers (CACE, treatment on the treated).

Reads the shipped synthetic trial, including the coordinators' contacts log, and estimates
for each outcome the intent-to-treat impact, the first stage (the impact of assignment on
receiving Level 2 case management, defined as at least ``MIN_CONTACTS`` Level 2 contacts in
the log) and the complier average causal effect by two-stage least squares, with
assignment instrumenting receipt, school fixed effects, the default covariates and HC2
standard errors. Writes

* ``07_cace.csv`` / ``.md``: ITT, first stage (with its F statistic) and CACE per outcome;
* ``07_cace.png``: ITT and CACE estimates with 95% confidence intervals for the binary
  outcomes (one unit, percentage points, on one axis).

Run it alone with ``python analysis/07_cace.py``, or the whole pipeline with
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
MIN_CONTACTS = 1  # Level 2 contacts that make a student "served"
TIER = 2  # case-managed (Level 2) contacts
SE_TYPE = "HC2"
FIGURE_OUTCOMES = tuple(o.name for o in ce.OUTCOMES if o.type == "binary")
DPI = 150


def cace(checked: ce.ValidationReport, outcomes: tuple[str, ...] | None = None) -> ce.CACEResult:
    """ITT, first stage and CACE of the outcomes (all six by default)."""
    return ce.estimate_cace(
        checked.students,
        checked.contacts,
        outcomes=None if outcomes is None else list(outcomes),
        min_contacts=MIN_CONTACTS,
        tier=TIER,
        se_type=SE_TYPE,
    )


def cace_figure(result: ce.CACEResult) -> Figure:
    """ITT and CACE estimates with confidence intervals, as PNG bytes."""
    fig = Figure(figsize=(7.5, 3.0))
    ax = fig.subplots()
    result.plot(ax=ax)
    ax.set_title(
        "Effect of the offer (ITT) and of receiving case management (CACE)\n"
        "(synthetic data; illustrative scenario)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's table and figure into ``out``; return name -> path."""
    checked = ce.load_trial(data)
    result = cace(checked)
    paths = {
        "cace_csv": ce.write_table(result.to_frame(), out / "07_cace.csv"),
        "cace_md": ce.io.write_text(out / "07_cace.md", result.table().to_markdown()),
    }
    ce.write_figure(cace_figure(cace(checked, FIGURE_OUTCOMES)), out / "07_cace.png", dpi=DPI)
    paths["cace_png"] = out / "07_cace.png"
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
