"""Describe a trial: sample sizes, baseline and outcome means by arm, service receipt."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..outcomes import DEFAULT_CHRONIC_THRESHOLD, derive_outcomes
from ..present.table import Table
from ..schema import BASELINE_COVARIATES, COLUMNS, OUTCOMES

__all__ = ["TrialSummary", "describe"]


@dataclass(frozen=True, slots=True)
class TrialSummary:
    """Descriptive summary of a randomized trial (no inference).

    Attributes
    ----------
    by_school : pandas.DataFrame
        Students, program and control counts per school.
    baseline : pandas.DataFrame
        Mean, standard deviation and count by arm for each baseline covariate.
    outcomes : pandas.DataFrame
        Mean and count by arm for each outcome (analytic sample of that outcome).
    dosage : pandas.DataFrame or None
        Level 2 receipt and dosage by arm, when a contacts log was given.
    chronic_threshold : float
        Threshold used for chronic absence.
    """

    by_school: pd.DataFrame = field(repr=False)
    baseline: pd.DataFrame = field(repr=False)
    outcomes: pd.DataFrame = field(repr=False)
    dosage: pd.DataFrame | None = field(repr=False)
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD

    def __repr__(self) -> str:
        n = int(self.by_school["students"].sum())
        return f"TrialSummary({n:,} students, {len(self.by_school):,} schools)"

    def tables(self) -> dict[str, Table]:
        """The summary as presentation tables, keyed by name."""
        totals = self.by_school.sum(numeric_only=True)
        sizes = pd.DataFrame(
            {
                "": [
                    "Students",
                    "Schools",
                    "Students per school (median)",
                    "Students per school (min-max)",
                ],
                "Program": [f"{int(totals['program']):,}", "", "", ""],
                "Control": [f"{int(totals['control']):,}", "", "", ""],
                "Total": [
                    f"{int(totals['students']):,}",
                    f"{len(self.by_school):,}",
                    f"{self.by_school['students'].median():.0f}",
                    f"{self.by_school['students'].min()}-{self.by_school['students'].max()}",
                ],
            }
        )
        out = {
            "sample": Table(sizes, title="Sample sizes by research group"),
            "baseline": Table(
                self.baseline.rename(
                    columns={
                        "label": "Characteristic",
                        "mean_program": "Program mean",
                        "mean_control": "Control mean",
                        "difference": "Difference",
                        "n_program": "N program",
                        "n_control": "N control",
                    }
                )[
                    [
                        "Characteristic",
                        "Program mean",
                        "Control mean",
                        "Difference",
                        "N program",
                        "N control",
                    ]
                ],
                title="Baseline characteristics by research group",
                formats={"Program mean": ".3f", "Control mean": ".3f", "Difference": "+.3f"},
                notes=(
                    "Unadjusted means; missing values excluded. Binary characteristics "
                    "are shares (0-1).",
                ),
            ),
            "outcomes": Table(
                self.outcomes.rename(
                    columns={
                        "label": "Outcome",
                        "mean_program": "Program mean",
                        "mean_control": "Control mean",
                        "difference": "Difference",
                        "n_program": "N program",
                        "n_control": "N control",
                    }
                )[
                    [
                        "Outcome",
                        "Program mean",
                        "Control mean",
                        "Difference",
                        "N program",
                        "N control",
                    ]
                ],
                title="Outcomes by research group (unadjusted)",
                formats={"Program mean": ".3f", "Control mean": ".3f", "Difference": "+.3f"},
                notes=(
                    f"Chronically absent: missed at least {self.chronic_threshold:.0%} of "
                    "enrolled days. Unadjusted differences are descriptive, not impact "
                    "estimates.",
                ),
            ),
        }
        if self.dosage is not None:
            out["dosage"] = Table(
                self.dosage,
                title="Level 2 services received, by group",
                formats={"Share served": ".1%", "Contacts": ".1f", "Hours": ".1f", "Weeks": ".1f"},
                notes=(
                    "Dosage among students with at least one Level 2 "
                    "(tier 2) contact; weeks = first to last contact.",
                ),
            )
        return out


def _by_arm(frame: pd.DataFrame, cols: list[str], labels: dict[str, str]) -> pd.DataFrame:
    rows = []
    for c in cols:
        v = pd.to_numeric(frame[c], errors="coerce").astype(float)
        t, k = v[frame["treatment"] == 1], v[frame["treatment"] == 0]
        rows.append(
            {
                "variable": c,
                "label": labels[c],
                "mean_program": t.mean(),
                "mean_control": k.mean(),
                "difference": t.mean() - k.mean(),
                "sd_program": t.std(),
                "sd_control": k.std(),
                "n_program": int(t.notna().sum()),
                "n_control": int(k.notna().sum()),
            }
        )
    return pd.DataFrame(rows)


def describe(
    students: pd.DataFrame,
    contacts: pd.DataFrame | None = None,
    *,
    chronic_threshold: float = DEFAULT_CHRONIC_THRESHOLD,
) -> TrialSummary:
    """Summarise a trial: who was randomized, baseline and outcome means, services received.

    Parameters
    ----------
    students : pandas.DataFrame
        A validated students table (raw outcome fields; outcomes are derived here).
    contacts : pandas.DataFrame, optional
        The contacts log, for Level 2 receipt and dosage by arm.
    chronic_threshold : float, default 0.10
        Threshold for chronic absence.

    Returns
    -------
    TrialSummary

    Examples
    --------
    >>> import cis_eval as ce
    >>> trial = ce.simulate(seed=3, n_students=300, n_schools=4)
    >>> summary = ce.describe(trial.students, trial.contacts)
    >>> int(summary.by_school["students"].sum())
    300
    """
    data = derive_outcomes(students, chronic_threshold=chronic_threshold)
    z = pd.to_numeric(data["treatment"]).astype(int)
    by_school = (
        pd.DataFrame({"school_id": data["school_id"], "program": z, "control": 1 - z})
        .groupby("school_id")[["program", "control"]]
        .sum()
    )
    by_school.insert(0, "students", by_school.sum(axis=1))
    labels = {c: COLUMNS["students"][c].label for c in BASELINE_COVARIATES}
    labels.update({o.name: o.label for o in OUTCOMES})
    baseline = _by_arm(data, [c for c in BASELINE_COVARIATES if c in data], labels)
    outcomes = _by_arm(data, [o.name for o in OUTCOMES], labels)
    dosage = None
    if contacts is not None and len(contacts):
        l2 = contacts[pd.to_numeric(contacts["tier"]) == 2]
        per = l2.groupby("student_id", observed=True).agg(
            contacts=("minutes", "size"),
            minutes=("minutes", "sum"),
            first=("date", "min"),
            last=("date", "max"),
        )
        per["weeks"] = (per["last"] - per["first"]).dt.days / 7
        rows = []
        for arm, name in ((1, "Program"), (0, "Control")):
            ids = data.loc[z == arm, "student_id"].astype(str)
            got = per[per.index.astype(str).isin(ids)]
            rows.append(
                {
                    "Group": name,
                    "Students": len(ids),
                    "Share served": len(got) / max(len(ids), 1),
                    "Contacts": got["contacts"].mean() if len(got) else np.nan,
                    "Hours": got["minutes"].sum() / 60 / len(got) if len(got) else np.nan,
                    "Weeks": got["weeks"].mean() if len(got) else np.nan,
                }
            )
        dosage = pd.DataFrame(rows)
    return TrialSummary(by_school, baseline, outcomes, dosage, chronic_threshold)
