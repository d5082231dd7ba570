"""ce.compare: several impact results side by side, values taken from each result's tidy frame."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import cis_eval as ce
from cis_eval.errors import OptionError, OptionTypeError

OUTCOMES = ["core_gpa", "chronic_absence", "suspensions"]


@pytest.fixture(scope="module")
def results(small_trial):
    data = small_trial.students
    hc2 = ce.estimate_itt(data, outcomes=OUTCOMES, se_type="HC2")
    cr2 = ce.estimate_itt(data, outcomes=OUTCOMES, se_type="CR2")
    return hc2, cr2


def _number(cell: str) -> float:
    return float(re.sub(r"[()*]", "", cell))


def test_values_equal_each_results_tidy_frame(results):
    hc2, cr2 = results
    table = ce.compare(hc2, cr2, digits=6)
    cells = table.to_frame()
    labels = cells.columns.tolist()
    assert labels == ["", "(1) fixed_effects, HC2", "(2) fixed_effects, CR2"]
    for res, col in zip(results, labels[1:], strict=True):
        tidy = res.to_frame().set_index("outcome")
        for i, outcome in enumerate(OUTCOMES):
            est, se = cells.iloc[2 * i][col], cells.iloc[2 * i + 1][col]
            assert cells.iloc[2 * i][""] == tidy.at[outcome, "label"]
            assert _number(est) == pytest.approx(tidy.at[outcome, "estimate"], abs=5e-7)
            assert _number(se) == pytest.approx(tidy.at[outcome, "std_error"], abs=5e-7)
            assert se.startswith("(") and se.endswith(")")
    # the two models share their estimates and differ in their standard errors
    assert cells.iloc[0, 1] == cells.iloc[0, 2]
    assert cells.iloc[1, 1] != cells.iloc[1, 2]


def test_footer_describes_each_model(results):
    hc2, cr2 = results
    cells = ce.compare(hc2, cr2, names=["HC2", "CR2"]).to_frame().set_index("")
    assert cells.loc["Students"].tolist() == [f"{hc2.n_students:,}"] * 2
    assert cells.loc["Estimand"].tolist() == ["fixed_effects", "fixed_effects"]
    assert cells.loc["Standard errors"].tolist() == ["HC2", "CR2"]
    assert cells.loc["Covariates"].tolist() == ["Yes", "Yes"] or cells.loc[
        "Covariates"
    ].tolist() == ["No", "No"]


def test_covariates_footer_follows_the_specification(small_trial):
    data = small_trial.students
    bare = ce.estimate_itt(data, outcomes=["core_gpa"], covariates=None)
    adjusted = ce.estimate_itt(data, outcomes=["core_gpa"])
    cells = ce.compare(bare, adjusted, names=["bare", "adjusted"]).to_frame().set_index("")
    assert cells.loc["Covariates", "bare"] == "No"
    assert cells.loc["Covariates", "adjusted"] == "Yes"


def test_stars_are_off_by_default_and_follow_p_values(results):
    hc2, _ = results
    plain = ce.compare(hc2, names=["m"]).to_frame()["m"]
    assert not plain.str.contains(r"\*").any()
    starred = ce.compare(hc2, names=["m"], stars=True).to_frame()["m"]
    p = hc2.p_value.reindex(OUTCOMES).to_numpy()
    expected = np.select([p < 0.01, p < 0.05, p < 0.10], ["***", "**", "*"], "")
    got = [re.sub(r"[^*]", "", starred.iloc[2 * i]) for i in range(len(OUTCOMES))]
    assert got == expected.tolist()


def test_exports_and_a_list_argument(results):
    table = ce.compare(list(results), names=["HC2", "CR2"])
    assert isinstance(table, ce.Table)
    md = table.to_markdown()
    assert md.splitlines()[2].startswith("|  | HC2 | CR2 |")
    assert "Standard errors in parentheses" in md
    assert "<table" in table.to_html() and "\\toprule" in table.to_latex()
    rows = table.to_csv().splitlines()
    assert rows[0] == ",HC2,CR2"
    assert len(rows) == 1 + 2 * len(OUTCOMES) + 4


def test_outcomes_missing_from_a_model_are_blank(small_trial):
    data = small_trial.students
    a = ce.estimate_itt(data, outcomes=["core_gpa"])
    b = ce.estimate_itt(data, outcomes=["core_gpa", "suspensions"])
    cells = ce.compare(a, b, names=["a", "b"]).to_frame()
    assert cells["a"].iloc[2:4].tolist() == ["", ""]
    assert cells["b"].iloc[2] != ""


def test_bad_arguments_are_option_errors(results):
    hc2, cr2 = results
    with pytest.raises(OptionTypeError, match=r"argument 2 \(DataFrame\) is not a result"):
        ce.compare(hc2, pd.DataFrame())
    with pytest.raises(OptionTypeError, match="at least one"):
        ce.compare()
    with pytest.raises(OptionError, match="one name per result"):
        ce.compare(hc2, cr2, names=["only one"])
    with pytest.raises(OptionError, match="distinct"):
        ce.compare(hc2, cr2, names=["x", "x"])
    with pytest.raises(OptionError, match="digits"):
        ce.compare(hc2, digits=-1)


def test_cace_and_subgroup_results_sit_beside_the_itt(small_trial, results):
    hc2, _ = results
    data = small_trial.students
    cace = ce.estimate_cace(data, small_trial.contacts, outcomes=OUTCOMES)
    sub = ce.estimate_subgroups(data, "school_level", outcomes=["core_gpa"])
    cells = ce.compare(hc2, cace, sub, names=["ITT", "CACE", "By level"], digits=6).to_frame()
    tidy = cace.to_frame().set_index("outcome")
    for i, outcome in enumerate(OUTCOMES):
        assert _number(cells["CACE"].iloc[2 * i]) == pytest.approx(
            tidy.at[outcome, "estimate"], abs=5e-7
        )
    assert cells.set_index("").loc["Estimand", "CACE"] == "complier average causal effect"
    # subgroup estimates get rows of their own, never the outcome's overall row
    assert cells["By level"].iloc[: 2 * len(OUTCOMES)].eq("").all()
    levels = sub.to_frame()
    for lev, est in zip(levels["subgroup"], levels["estimate"], strict=True):
        row = cells[cells[""] == f"{levels['label'].iloc[0]} | {lev}"].index[0]
        assert _number(cells.at[row, "By level"]) == pytest.approx(est, abs=5e-7)
