"""Step 08: minimum detectable effects of the study's design, and a power curve.

Takes the design of the shipped synthetic trial (its schools and their sizes, the share
assigned to the program) and the planning assumptions stated below (the share of students
with outcome data, the share of each outcome's variance explained by its covariates, the
intraclass correlation) and computes, for each of the six outcomes, the minimum detectable
effect size (MDES) at 80% power in a two-sided 5% test, with the model of the impact
analysis: students randomized within schools, school fixed effects, a constant impact.
Core credits are a high-school outcome, so their design is the high schools alone. Writes

* ``08_power.csv``: one row per outcome (``ce.PowerResult.to_frame`` columns);
* ``08_power.md``: the MDES tables with their assumptions;
* ``08_power.png``: power against the true effect for the two binary outcomes, and the MDES
  against the number of schools.

These are *design* figures: they say what the trial could detect, not what it found.
Run it alone with ``python analysis/08_power.py``, or the whole pipeline with
``make analysis``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # a bare Figure: no pyplot state, no GUI backend

import cis_eval as ce

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "synthetic"  # the shipped synthetic trial
OUT = ROOT / "analysis" / "output"
INPUTS = tuple(DATA / f"{name}.csv" for name in ce.io.TABLE_NAMES)
SEED = None  # analytic formulas: no random numbers are drawn
MODEL = "constant"  # school fixed effects, the same impact in every school
ALPHA = 0.05
TARGET_POWER = 0.80
# Planning assumptions (stated, not estimated from the outcomes):
RESPONSE_RATE = 2048 / 2230  # share with outcome data, as in the WWC review of the study
ICC = 0.10  # share of each outcome's variance between schools
N_COVARIATES = 6  # each outcome's prior-year measure plus five demographics
R2 = {  # share of the within-school variance explained by those covariates
    "chronic_absence": 0.25,
    "attendance_rate": 0.50,
    "core_course_failure": 0.10,
    "core_credits": 0.20,
    "core_gpa": 0.50,
    "suspensions": 0.25,
}
HIGH_SCHOOL_ONLY = ("core_credits",)
ILLUSTRATIVE_EFFECT_PP = 6.0  # the simulated scenario's reduction in chronic absence
DPI = 150


def design(students: pd.DataFrame) -> dict[str, object]:
    """School sizes (with outcome data expected), share treated and control-group rates."""
    outcomes = ce.derive_outcomes(students)
    control = outcomes[outcomes["treatment"] == 0]
    rates = {o.name: float(control[o.name].mean()) for o in ce.OUTCOMES if o.type == "binary"}
    sizes = students.groupby("school_id").size() * RESPONSE_RATE
    high = students.loc[students["school_level"] == "high", "school_id"].unique()
    return {
        "sizes": sizes,
        "high_sizes": sizes[sizes.index.isin(high)],
        "share_treated": float(students["treatment"].mean()),
        "control_rate": rates,
    }


def mdes(names: list[str], sizes: pd.Series, share: float, rates: dict) -> ce.PowerResult:
    """MDES of the outcomes ``names`` for schools of the given sizes."""
    return ce.mdes(
        students_per_school=sizes.tolist(),
        share_treated=share,
        r2=[R2[n] for n in names],
        icc=ICC,
        model=MODEL,
        n_covariates=N_COVARIATES,
        alpha=ALPHA,
        target_power=TARGET_POWER,
        outcomes=names,
        control_rate=[rates.get(n) for n in names],
    )


def results(students: pd.DataFrame) -> tuple[ce.PowerResult, ce.PowerResult, dict]:
    """MDES for the outcomes measured in every school, and for the high-school outcomes."""
    d = design(students)
    everywhere = [o.name for o in ce.OUTCOMES if o.name not in HIGH_SCHOOL_ONLY]
    all_schools = mdes(everywhere, d["sizes"], d["share_treated"], d["control_rate"])
    high = mdes(list(HIGH_SCHOOL_ONLY), d["high_sizes"], d["share_treated"], d["control_rate"])
    return all_schools, high, d


def assumptions_note() -> str:
    """The stated planning assumptions, as one table note."""
    r2 = ", ".join(f"{name} {value:.2f}" for name, value in R2.items())
    return (
        f"Assumptions: {RESPONSE_RATE:.1%} of randomized students with outcome data; "
        f"ICC {ICC:.2f}; {N_COVARIATES} covariates explaining R2 of the within-school "
        f"variance: {r2}. Control-group rates of binary outcomes from the synthetic trial."
    )


def markdown(all_schools: ce.PowerResult, high: ce.PowerResult) -> str:
    """The two MDES tables, titled, with the assumptions added to their notes."""
    parts = []
    for result, title in (
        (all_schools, "Minimum detectable effects: outcomes measured in every school"),
        (high, "Minimum detectable effects: core credits (high schools only)"),
    ):
        table = result.table()
        table = dataclasses.replace(table, title=title, notes=(*table.notes, assumptions_note()))
        parts.append(table.to_markdown())
    return "\n".join(parts)


def power_figure(all_schools: ce.PowerResult, d: dict) -> Figure:
    """Power against the true effect (binary outcomes) and MDES against schools, as PNG."""
    fig = Figure(figsize=(9, 3.8))
    left, right = fig.subplots(1, 2)
    effects = np.linspace(0.0, 12.0, 49)
    for name, colour in (("chronic_absence", "#00597c"), ("core_course_failure", "#a03000")):
        curve = [
            float(
                ce.power(
                    effect_pp=e,
                    students_per_school=d["sizes"].tolist(),
                    share_treated=d["share_treated"],
                    r2=R2[name],
                    icc=ICC,
                    model=MODEL,
                    n_covariates=N_COVARIATES,
                    alpha=ALPHA,
                    outcomes=[name],
                    control_rate=d["control_rate"][name],
                ).power.iloc[0]
            )
            for e in effects
        ]
        mde = float(all_schools.to_frame().set_index("outcome").loc[name, "mde_pp"])
        left.plot(effects, curve, color=colour, label=f"{name} (MDE {mde:.1f} pp)")
    left.axhline(TARGET_POWER, color="0.4", linestyle=":", linewidth=1)
    left.axvline(ILLUSTRATIVE_EFFECT_PP, color="0.4", linestyle="--", linewidth=1)
    left.set_xlabel("True impact (percentage points, either direction)")
    left.set_ylabel("Power (two-sided 5% test)")
    left.set_title("Power of the design", fontsize="medium")
    left.set_ylim(0, 1.02)
    left.legend(frameon=False, fontsize="small", loc="lower right")
    all_schools.plot(ax=right, by="schools")
    right.set_title("MDES against the number of schools", fontsize="medium")
    fig.tight_layout()
    return fig


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's table and figure into ``out``; return name -> path."""
    checked = ce.load_trial(data)
    all_schools, high, d = results(checked.students)
    frame = pd.concat([all_schools.to_frame(), high.to_frame()], ignore_index=True)
    order = {o.name: k for k, o in enumerate(ce.OUTCOMES)}
    frame = frame.sort_values("outcome", key=lambda s: s.map(order), ignore_index=True)
    paths = {
        "power_csv": ce.write_table(frame, out / "08_power.csv"),
        "power_md": ce.io.write_text(out / "08_power.md", markdown(all_schools, high)),
    }
    ce.write_figure(power_figure(all_schools, d), out / "08_power.png", dpi=DPI)
    paths["power_png"] = out / "08_power.png"
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
