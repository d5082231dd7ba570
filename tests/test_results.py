from __future__ import annotations

import pandas as pd

from cis_eval import Table, describe


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
