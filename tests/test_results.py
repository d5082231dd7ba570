from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import pandas as pd
import pytest

from cis_eval import Table, describe
from cis_eval.present.results import ResultMixin, one_line


def _table():
    data = pd.DataFrame({"Outcome": ["A|B", "C_d"], "Impact": [0.0123, -1.5], "N": [1200, 35]})
    return Table(data, title="Impacts", notes=("HC2 standard errors.",), formats={"Impact": "+.3f"})


def test_exports_are_deterministic_and_formatted():
    t = _table()
    md = t.to_markdown()
    assert "| A\\|B | +0.012 | 1,200 |" in md
    assert "*Note:* HC2 standard errors." in md
    assert md == _table().to_markdown()
    html = t.to_html()
    assert "<caption>Impacts</caption>" in html and "+0.012" in html
    assert "C\\_d" in t.to_latex() and "\\toprule" in t.to_latex()
    assert t.to_csv().splitlines()[1] == 'A|B,+0.012,"1,200"'
    assert "Note: HC2" in t.to_text()
    assert t._repr_html_() == html
    assert repr(t) == "Table('Impacts', 2 rows x 3 columns)"


def test_to_frame_is_a_copy():
    t = _table()
    f = t.to_frame()
    f.loc[0, "Impact"] = 99
    assert t.to_frame().loc[0, "Impact"] == 0.0123


def test_describe_counts_and_means(small_trial):
    s = small_trial.students
    d = describe(s, small_trial.contacts)
    assert int(d.by_school["program"].sum()) == int(s["treatment"].sum())
    row = d.baseline.set_index("variable").loc["female"]
    expect = pd.to_numeric(s.loc[s["treatment"] == 1, "female"]).mean()
    assert row["mean_program"] == expect
    dos = d.dosage.set_index("Group")
    assert 0.8 < dos.loc["Program", "Share served"] < 0.95
    assert set(d.tables()) == {"sample", "baseline", "outcomes", "dosage"}


# ----------------------------------------------------------------------------- the mixin


def _tidy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "outcome": ["gpa", "suspended"],
            "label": ["GPA", "Suspended"],
            "estimate": [0.1, -2.0],
            "std_error": [0.05, 1.0],
            "p_value": [0.04, 0.05],
            "conf_low": [0.0, -4.0],
            "conf_high": [0.2, 0.0],
        }
    )


@dataclass(frozen=True, slots=True)
class _Toy(ResultMixin):
    _estimates: pd.DataFrame


@dataclass(frozen=True, slots=True)
class _Keyed(ResultMixin):
    _frame: pd.DataFrame
    _tidy_field: ClassVar[str] = "_frame"
    _keys: ClassVar[tuple[str, ...]] = ("outcome", "subgroup")
    _accessor_columns: ClassVar[Mapping[str, str]] = MappingProxyType({"estimate": "difference"})


def test_mixin_accessors_are_views_of_the_tidy_frame():
    toy = _Toy(_tidy())
    frame = toy.to_frame()
    pd.testing.assert_series_equal(
        toy.estimate, frame.set_index("outcome")["estimate"], check_names=True
    )
    assert toy.std_error.to_dict() == {"gpa": 0.05, "suspended": 1.0}
    assert toy.p_value.name == "p_value"
    assert toy.conf_int().columns.tolist() == ["conf_low", "conf_high"]
    assert toy.conf_int().loc["suspended"].tolist() == [-4.0, 0.0]


def test_mixin_returns_copies_and_the_result_stays_unchanged():
    toy = _Toy(_tidy())
    frame = toy.to_frame()
    frame.loc[0, "estimate"] = 99.0
    est, ci = toy.estimate, toy.conf_int()
    est.iloc[0] = 99.0
    ci.iloc[0, 0] = 99.0
    assert toy.to_frame().loc[0, "estimate"] == 0.1
    assert toy.conf_int().iloc[0, 0] == 0.0
    with pytest.raises(AttributeError):
        toy._estimates = _tidy()  # type: ignore[misc]
    assert not hasattr(toy, "__dict__")  # slots: the mixin adds no instance dict


def test_mixin_keys_columns_and_missing_accessors():
    frame = pd.DataFrame(
        {"outcome": ["gpa", "gpa"], "subgroup": ["a", "b"], "difference": [1.0, 2.0]}
    )
    keyed = _Keyed(frame)
    assert keyed.estimate.to_dict() == {("gpa", "a"): 1.0, ("gpa", "b"): 2.0}
    assert keyed.estimate.name == "estimate"
    with pytest.raises(AttributeError, match="no 'std_error'"):
        _ = keyed.std_error
    assert not hasattr(keyed, "p_value")
    with pytest.raises(AttributeError, match="conf_low"):
        keyed.conf_int()


def test_one_line_repr():
    assert one_line("X", "2 outcomes", se="HC2") == "X(2 outcomes, se=HC2)"


# ----------------------------------------------------------------------------- every result


@pytest.fixture(scope="module")
def impact_results(small_trial):
    import cis_eval as ce

    s, c = small_trial.students, small_trial.contacts
    outcomes = ["core_gpa", "chronic_absence", "suspensions"]
    return {
        "itt": ce.estimate_itt(s, outcomes=outcomes),
        "cace": ce.estimate_cace(s, c, outcomes=outcomes),
        "subgroups": ce.estimate_subgroups(s, "school_level", outcomes=outcomes),
        "sensitivity": ce.estimate_sensitivity(s, outcomes=["chronic_absence", "suspensions"]),
    }


@pytest.mark.parametrize("kind", ["itt", "cace", "subgroups", "sensitivity"])
def test_every_impact_result_shares_the_accessors(impact_results, kind):
    res = impact_results[kind]
    assert isinstance(res, ResultMixin)
    frame = res.to_frame()
    keys = [k for k in ("outcome", "subgroup") if k in frame.columns and k in res._keys]
    indexed = frame.set_index(keys)
    for name in ("estimate", "std_error", "p_value"):
        got = getattr(res, name)
        assert got.index.names == keys
        assert got.to_numpy().tolist() == indexed[name].to_numpy().tolist(), name
    if "conf_low" in frame.columns:
        ci = res.conf_int()
        assert ci["conf_low"].tolist() == frame["conf_low"].tolist()
        assert (ci["conf_low"] <= res.estimate).all() and (res.estimate <= ci["conf_high"]).all()
    else:
        assert not hasattr(res, "statistic")
    # a fresh copy every time: changing what came back leaves the result as it was
    before = res.to_frame()
    changed = res.to_frame()
    changed["estimate"] = 0.0
    est = res.estimate
    est.iloc[:] = 0.0
    pd.testing.assert_frame_equal(res.to_frame(), before)
    with pytest.raises(AttributeError):
        res.notes = ()  # frozen
    assert "\n" not in repr(res) and " at 0x" not in repr(res)


def test_baseline_result_accessors_are_the_adjusted_differences(small_trial):
    import cis_eval as ce

    res = ce.baseline_equivalence(small_trial.students, outcome="core_gpa")
    assert isinstance(res, ResultMixin)
    frame = res.to_frame()
    chars = frame[frame["kind"] != "missing"].set_index("characteristic")
    assert res.estimate.index.name == "characteristic"
    assert res.estimate.tolist() == chars["difference_adjusted"].tolist()
    assert res.std_error.tolist() == chars["std_error_adjusted"].tolist()
    assert res.p_value.tolist() == chars["p_value_adjusted"].tolist()
    assert not hasattr(res, "statistic")


def test_power_result_accessors(small_trial):
    import cis_eval as ce

    res = ce.mdes(schools=20, students_per_school=60, r2=0.5, outcomes=2)
    assert isinstance(res, ResultMixin)
    frame = res.to_frame().set_index("outcome")
    assert res.mdes.tolist() == frame["mdes"].tolist()
    assert res.power.tolist() == frame["power"].tolist()
    assert res.std_error.tolist() == frame["std_error"].tolist()
    assert isinstance(res.df, float)  # the design's degrees of freedom, one number
    assert not hasattr(res, "estimate")
    changed = res.to_frame()
    changed["mdes"] = 0.0
    assert res.to_frame()["mdes"].gt(0).all()


def test_diagnosis_result_frame_is_a_copy():
    import cis_eval as ce

    design = ce.TrialDesign(schools=4, students_per_school=20)
    res = ce.diagnose(design, sims=20, seed=1, progress=False)
    assert isinstance(res, ResultMixin)
    changed = res.to_frame()
    changed["bias"] = 99.0
    assert not res.to_frame()["bias"].eq(99.0).any()
