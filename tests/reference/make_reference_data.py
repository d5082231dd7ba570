"""Write the analysis-ready designs that the reference scripts estimate on.

Three designs: the shipped synthetic trial (28 schools, 2,230 students), a design of many
small schools (4-8 students, so 2-4 per arm) and an unbalanced design (40% treated, a high
intra-class correlation, differential attrition). Each file holds the school, the
assignment, receipt of Level 2 services, the six outcomes (derived by cis_eval, binary
outcomes as 0/1) and the raw baseline covariates with their missing values, so the
reference implementations build the missing-value indicators themselves.

Run with ``make reference`` (which then runs the R and statsmodels scripts).
"""

from __future__ import annotations

from pathlib import Path

import cis_eval as ce

HERE = Path(__file__).resolve().parent
SHIPPED = HERE.parents[1] / "data" / "synthetic"

DESIGNS = {
    "small_schools": {
        "seed": 7,
        "n_students": 240,
        "n_schools": 40,
        "school_size_range": (4, 8),
        "attrition": 0.0,
        "baseline_missing": 0.0,
    },
    "unbalanced": {
        "seed": 11,
        "n_students": 1500,
        "n_schools": 20,
        "p_treat": 0.4,
        "icc": 0.25,
        "attrition": 0.12,
        "differential_attrition": 0.04,
    },
}
KEEP = ["student_id", "school_id", "school_level", "treatment"]


def frame(students, contacts):
    out = ce.derive_outcomes(students)
    out["received"] = ce.service_receipt(students, contacts)
    cols = [*KEEP, "received", *ce.OUTCOME_NAMES, *ce.schema.BASELINE_COVARIATES]
    return out[cols]


def main(out: Path = HERE / "data") -> dict[str, Path]:
    paths = {}
    checked = ce.validate(
        *(ce.load(SHIPPED / f"{n}.csv") for n in ("students", "contacts", "coordinators"))
    )
    paths["shipped"] = ce.write_table(
        frame(checked.students, checked.contacts), out / "shipped.csv"
    )
    for name, kwargs in DESIGNS.items():
        trial = ce.simulate(**kwargs)
        paths[name] = ce.write_table(frame(trial.students, trial.contacts), out / f"{name}.csv")
    return paths


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
