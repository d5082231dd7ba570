from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cis_eval as ce
from cis_eval.errors import DataValidationError, DesignError, OptionError, OptionTypeError


def roster(sizes):
    ids, schools = [], []
    for j, n in enumerate(sizes):
        ids += [f"id{j}-{i}" for i in range(n)]
        schools += [f"school{j}"] * n
    return pd.DataFrame({"student_id": ids, "school_id": schools})


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(2, 60), min_size=1, max_size=8),
    p=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**31),
)
def test_exactly_round_p_n_treated_in_every_block(sizes, p, seed):
    a = ce.assign(roster(sizes), p=p, seed=seed)
    got = a.data.groupby("school_id")["treatment"].sum()
    for j, n in enumerate(sizes):
        assert got[f"school{j}"] == int(np.floor(p * n + 0.5))
    # probabilities are the block shares
    probs = a.data.groupby("school_id")["assignment_probability"].first()
    np.testing.assert_allclose(probs.to_numpy(), [np.floor(p * n + 0.5) / n for n in sizes])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), shuffle=st.integers(0, 2**31))
def test_row_order_does_not_change_the_lottery(seed, shuffle):
    r = roster([7, 12, 5])
    a = ce.assign(r, p=0.5, seed=seed).data.set_index("student_id")["treatment"]
    b = ce.assign(r.sample(frac=1, random_state=shuffle % 2**32), p=0.5, seed=seed)
    b = b.data.set_index("student_id")["treatment"]
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index())


def test_same_seed_same_draw_different_seed_different_draw():
    r = roster([40, 40, 40])
    a = ce.assign(r, p=0.5, seed=1).data["treatment"]
    assert ce.assign(r, p=0.5, seed=1).data["treatment"].equals(a)
    assert not ce.assign(r, p=0.5, seed=2).data["treatment"].equals(a)


def test_every_assignment_is_equally_likely():
    # 4 students, 2 treated: 6 possible assignments, each with probability 1/6.
    r = roster([4])
    draws = pd.Series(
        ["".join(map(str, ce.assign(r, p=0.5, seed=s).data["treatment"])) for s in range(3000)]
    ).value_counts(normalize=True)
    assert len(draws) == 6
    # 3000 draws: SE of a 1/6 share is 0.0068; allow 4 SE
    assert (draws - 1 / 6).abs().max() < 4 * np.sqrt(1 / 6 * 5 / 6 / 3000)


def test_counts_per_block_and_audit_trail_verifies():
    r = roster([10, 6])
    a = ce.assign(r, p=None, n_treat={"school0": 3, "school1": 4}, seed=9)
    assert a.counts()["n_treated"].to_dict() == {"school0": 3, "school1": 4}
    audit = json.loads(a.audit_json())
    assert audit["seed"] == 9 and audit["procedure"].startswith("complete random")
    assert ce.verify_assignment(a.to_frame(), audit)
    tampered = a.to_frame()
    first_t = tampered.index[tampered["treatment"] == 1][0]
    first_c = tampered.index[tampered["treatment"] == 0][0]
    tampered.loc[[first_t, first_c], "treatment"] = [0, 1]
    assert not ce.verify_assignment(tampered, audit)
    # a roster with a student added does not match the recorded fingerprint
    extra = pd.concat(
        [
            a.to_frame(),
            pd.DataFrame({"student_id": ["new"], "school_id": ["school0"], "treatment": [0]}),
        ],
        ignore_index=True,
    )
    assert not ce.verify_assignment(extra, audit)


def test_audit_json_has_no_identifiers():
    r = roster([5, 5])
    text = ce.assign(r, seed=1).audit_json()
    assert not any(i in text for i in r["student_id"])


def test_input_not_modified_and_errors():
    r = roster([4, 4])
    before = r.copy()
    ce.assign(r, seed=3)
    pd.testing.assert_frame_equal(r, before)
    dup = pd.concat([r, r.iloc[:1]])
    with pytest.raises(DesignError, match="duplicated"):
        ce.assign(dup, seed=1)
    with pytest.raises(DesignError, match="no column 'school'"):
        ce.assign(r, seed=1, block="school")
    with pytest.raises(OptionError, match="strictly between"):
        ce.assign(r, seed=1, p=1.0)
    with pytest.raises(OptionError, match="block size"):
        ce.assign(r, seed=1, p=None, n_treat=5)
    with pytest.raises(TypeError, match="seed"):
        ce.assign(r, seed=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"p": 1.5}, OptionError, "strictly between 0 and 1"),
        ({"p": 0}, OptionError, "strictly between 0 and 1"),
        ({"p": "half"}, OptionTypeError, "p must be a number"),
        ({"seed": -3}, OptionError, "seed"),
        ({"p": None}, OptionError, "exactly one of p"),
        ({"p": None, "n_treat": {"S1": 2}}, OptionError, "no count"),
    ],
)
def test_bad_options_are_option_errors(kwargs, error, words):
    args = {"seed": 1, **kwargs}
    with pytest.raises(error, match=words):
        ce.assign(roster([4, 4]), **args)


def test_empty_roster_and_unreadable_treatment_are_clear_errors():
    with pytest.raises(DesignError, match="no students"):
        ce.assign(roster([4]).iloc[:0], seed=1)
    a = ce.assign(roster([4, 4]), seed=1)
    bad = a.to_frame()
    bad["treatment"] = bad["treatment"].astype(object)
    bad.loc[bad.index[2], "treatment"] = "yes"
    with pytest.raises(DataValidationError, match="not 0 or 1") as info:
        ce.verify_assignment(bad, a.audit)
    assert info.value.column == "treatment" and info.value.rows == (3,)
