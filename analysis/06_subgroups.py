"""Step 06: impacts within subgroups of students, and tests of whether they differ.

Reads the shipped synthetic trial and estimates the impacts of step 05 (school fixed
effects, default covariates, HC2) separately within subgroups defined at baseline: school
level (middle or high school), baseline risk (two or more of the prior-year ABC warning
signs: chronic absence, a failed core course, a suspension; see ``ce.baseline_risk``) and
gender. Subgroup findings are exploratory. Writes

* ``06_subgroups.csv``: impact estimates within each subgroup (one row per split, subgroup
  and outcome; the columns of ``ce.ITTResult.to_frame`` plus ``split`` and ``subgroup``);
* ``06_subgroup_tests.csv``: per split and outcome, the test that the impacts are equal
  across subgroups;
* ``06_subgroups.md``: the three subgroup tables.

Run it alone with ``python analysis/06_subgroups.py``, or the whole pipeline with
``make analysis``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import cis_eval as ce

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "synthetic"  # the shipped synthetic trial
OUT = ROOT / "analysis" / "output"
INPUTS = tuple(DATA / f"{name}.csv" for name in ce.io.TABLE_NAMES)
SEED = None  # this step draws no random numbers
SE_TYPE = "HC2"
# split column -> reader's name; "gender" is made from the 0/1 column "female" below
SPLITS = {"school_level": "school level", "baseline_risk": "baseline risk", "gender": "gender"}


def with_gender(students: pd.DataFrame) -> pd.DataFrame:
    """A copy of the students table with a readable ``gender`` column (missing stays missing)."""
    gender = students["female"].astype("Int64").map({1: "female", 0: "male"})
    return students.assign(gender=gender.astype("string"))


def covariates(by: str) -> dict[str, list[str]]:
    """Each outcome's default covariates, less the one that is constant within the split."""
    constant = {"gender": "female"}.get(by)
    return {o.name: [c for c in ce.default_covariates(o) if c != constant] for o in ce.OUTCOMES}


def subgroups(students: pd.DataFrame) -> dict[str, ce.SubgroupResult]:
    """Subgroup impacts for every split, in the order of ``SPLITS``."""
    data = with_gender(students)
    return {
        by: ce.estimate_subgroups(data, by, covariates=covariates(by), se_type=SE_TYPE)
        for by in SPLITS
    }


def tidy(results: dict[str, ce.SubgroupResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimates and interaction tests of all splits, stacked, with a ``split`` column."""
    estimates = pd.concat(
        [r.to_frame().assign(split=by) for by, r in results.items()], ignore_index=True
    )
    tests = pd.concat([r.tests().assign(split=by) for by, r in results.items()], ignore_index=True)
    first = ["split"]
    return (
        estimates[first + [c for c in estimates.columns if c not in first]],
        tests[first + [c for c in tests.columns if c not in first]],
    )


def markdown(results: dict[str, ce.SubgroupResult]) -> str:
    """The reader's tables, one per split."""
    return "\n".join(
        r.table(title=f"Impacts by {SPLITS[by]} (exploratory)").to_markdown()
        for by, r in results.items()
    )


def main(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Write the step's tables into ``out``; return name -> path."""
    checked = ce.load_trial(data)
    results = subgroups(checked.students)
    estimates, tests = tidy(results)
    return {
        "subgroups_csv": ce.write_table(estimates, out / "06_subgroups.csv"),
        "tests_csv": ce.write_table(tests, out / "06_subgroup_tests.csv"),
        "subgroups_md": ce.io.write_text(out / "06_subgroups.md", markdown(results)),
    }


if __name__ == "__main__":
    for name, path in main().items():
        print(f"{name}: {path}")
