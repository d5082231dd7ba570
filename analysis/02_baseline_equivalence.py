"""Step 02: baseline equivalence of the analytic samples, by the WWC's rules.

Reads the shipped synthetic trial and, for the analytic sample of each of the six outcomes
(the randomized students who have that outcome), compares the program and control groups
on the baseline characteristics of the data contract: means, standard deviations and
counts by arm, the raw and the school-fixed-effect-adjusted (within-school) difference,
the WWC effect size (Hedges' g for continuous characteristics, the Cox index for binary
ones, from the within-school difference) and the WWC category (|ES| <= 0.05 satisfied;
up to 0.25 satisfied only if the impact model adjusts for the characteristic; above 0.25
not satisfied), with the share of missing values of each characteristic on its own row.
The omnibus tests ask whether the characteristics jointly predict assignment within
schools (a joint F test, its HC2-robust version and a randomization test that re-runs the
within-school lottery ``PERMUTATIONS`` times). Writes

* ``02_baseline_equivalence.csv``: one row per outcome sample and characteristic (the
  columns of ``ce.BaselineResult.to_frame`` after an ``outcome`` column);
* ``02_baseline_omnibus.csv``: the omnibus tests of each outcome sample;
* ``02_baseline_equivalence.md``: the baseline table of each outcome sample;
* ``02_baseline_equivalence.png``: Love plot of the analytic sample of ``FIGURE_OUTCOME``.

Run it alone with ``python analysis/02_baseline_equivalence.py``, or the whole pipeline with
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
SEED = 20130702  # seed of the randomization test's permutations (the same for every sample)
PERMUTATIONS = 2000  # within-school re-runs of the lottery per outcome sample
BASIS = "adjusted"  # the within-school difference decides the WWC category
FIGURE_OUTCOME = "chronic_absence"  # the Love plot's analytic sample
DPI = 150


def equivalence(students: pd.DataFrame) -> dict[str, ce.BaselineResult]:
    """Baseline equivalence of each outcome's analytic sample, in the study's outcome order."""
    return {
        o.name: ce.baseline_equivalence(
            students, outcome=o.name, basis=BASIS, sims=PERMUTATIONS, seed=SEED
        )
        for o in ce.OUTCOMES
    }


def stacked(results: dict[str, ce.BaselineResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Characteristic rows and omnibus tests of every sample, with an ``outcome`` column."""
    rows = pd.concat(
        [r.to_frame().assign(outcome=name) for name, r in results.items()], ignore_index=True
    )
    tests = pd.concat(
        [r.omnibus().assign(outcome=name) for name, r in results.items()], ignore_index=True
    )
    first = ["outcome"]
    return (
        rows[first + [c for c in rows.columns if c not in first]],
        tests[first + [c for c in tests.columns if c not in first]],
    )


def markdown(results: dict[str, ce.BaselineResult]) -> str:
    """The reader's baseline table of each outcome sample."""
    return "\n".join(r.table().to_markdown() for r in results.values())


def love_figure(result: ce.BaselineResult) -> Figure:
    """Love plot of one analytic sample, as PNG bytes."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    result.plot(ax=ax)
    # the plot's one-row legend is wider than this figure: two rows keep it inside
    legend = ax.get_legend()
    ax.legend(
        handles=legend.legend_handles,
        labels=[t.get_text() for t in legend.get_texts()],
        frameon=False,
        fontsize=7,
        ncol=2,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
    )
    ax.set_title(
        f"Baseline balance: {result.sample}\n(synthetic data; WWC lines at 0.05 and 0.25 SD)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's tables and figure into ``out``; return name -> path."""
    checked = ce.load_trial(data)
    results = equivalence(checked.students)
    rows, tests = stacked(results)
    paths = {
        "baseline_csv": ce.write_table(rows, out / "02_baseline_equivalence.csv"),
        "omnibus_csv": ce.write_table(tests, out / "02_baseline_omnibus.csv"),
        "baseline_md": ce.io.write_text(out / "02_baseline_equivalence.md", markdown(results)),
    }
    ce.write_figure(
        love_figure(results[FIGURE_OUTCOME]), out / "02_baseline_equivalence.png", dpi=DPI
    )
    paths["baseline_png"] = out / "02_baseline_equivalence.png"
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
