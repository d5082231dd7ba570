"""Step 05: impacts on the six outcomes (intent to treat), with effect sizes and adjusted p-values.

Reads the shipped synthetic trial and estimates the impact of assignment to case management
on each outcome: OLS (a linear probability model for binary outcomes) with school fixed
effects and each outcome's default covariates (prior-year measure plus demographics,
missing values handled by missing indicators), HC2 standard errors, WWC effect sizes,
Benjamini-Hochberg (within domain), Holm, Bonferroni and Westfall-Young adjusted p-values,
and randomization-inference p-values from re-running the within-school lottery. Writes

* ``05_impacts.csv`` / ``.md``: the impact table (tidy numbers / MDRC-style table);
* ``05_impacts.png``: forest plot of effect sizes with 95% confidence intervals;
* ``05_sensitivity.csv`` / ``.md``: binary outcomes re-estimated by logit and the
  suspensions count by Poisson regression, beside the linear estimates (CSV numbers to
  ``SENSITIVITY_DIGITS`` significant digits: maximum-likelihood fits are iterative and
  their last digits change with the linear-algebra library's threading).

Run it alone with ``python analysis/05_impacts.py``, or the whole pipeline with
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
SEED = 20130701  # seed of the randomization-inference permutations
PERMUTATIONS = 10_000  # within-school re-runs of the lottery
SE_TYPE = "HC2"
ESTIMAND = "fixed_effects"
MTP_FAMILY = "confirmatory"  # Holm, Bonferroni and Westfall-Young over these outcomes
SENSITIVITY_DIGITS = 6  # significant digits kept for the iterative logit/Poisson fits
DPI = 150


def load_students(data: Path = DATA) -> ce.ValidationReport:
    """Load and validate the three tables of the trial."""
    return ce.load_trial(data)


def impacts(checked: ce.ValidationReport) -> ce.ITTResult:
    """The impact estimates, with randomization inference."""
    return ce.estimate_itt(
        checked.students,
        se_type=SE_TYPE,
        estimand=ESTIMAND,
        mtp_family=MTP_FAMILY,
        sims=PERMUTATIONS,
        seed=SEED,
    )


def significant(frame: pd.DataFrame, digits: int = SENSITIVITY_DIGITS) -> pd.DataFrame:
    """A copy with float columns rounded to ``digits`` significant digits."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = [float(f"{v:.{digits}g}") for v in out[column]]
    return out


def forest_figure(itt: ce.ITTResult) -> Figure:
    """Forest plot of effect sizes (right of zero = favourable), as PNG bytes."""
    fig = Figure(figsize=(7.5, 3.8))
    ax = fig.subplots()
    itt.plot(ax=ax)
    ax.set_title(
        "Impacts on students' outcomes: effect sizes with 95% confidence intervals\n"
        "(synthetic data; illustrative scenario)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's tables and figure into ``out``; return name -> path."""
    checked = load_students(data)
    itt = impacts(checked)
    sensitivity = ce.estimate_sensitivity(checked.students)
    paths = {
        "impacts_csv": ce.write_table(itt.to_frame(), out / "05_impacts.csv"),
        "impacts_md": ce.io.write_text(out / "05_impacts.md", itt.table().to_markdown()),
        "sensitivity_csv": ce.write_table(
            significant(sensitivity.to_frame()), out / "05_sensitivity.csv"
        ),
        "sensitivity_md": ce.io.write_text(
            out / "05_sensitivity.md", sensitivity.table().to_markdown()
        ),
    }
    ce.write_figure(forest_figure(itt), out / "05_impacts.png", dpi=DPI)
    paths["impacts_png"] = out / "05_impacts.png"
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
