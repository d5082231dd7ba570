"""Fidelity suppression over whole reports: pooling, joint protection, never a crash.

Random rosters are simulated trials mutated into the shapes affiliates have: tiny and
empty schools, coordinators across schools, one-arm and all-control rosters. Every
property is checked on what the report actually publishes, read back from its tables
and summary; recoverability is decided by linear programming over all of them at once
(cis_eval.fidelity.suppression.audit). Expected numbers are recomputed here with pandas
from the input frames, not through cis_eval.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cis_eval as ce
from cis_eval.fidelity import fidelity
from cis_eval.fidelity.plots import plot_dosage
from cis_eval.fidelity.suppression import (
    audit,
    coordinator_pool_label,
    pooled,
    published_system,
    school_pool_label,
)
from cis_eval.present.privacy import SUPPRESSED, recoverable_cells, suppression_mask

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "affiliate"
LEVELS = (
    "benchmarks",
    "school",
    "coordinator",
    "arm",
    "dosage",
    "service_mix",
    "school_service_mix",
    "dose_response",
)


def _num(cell: object) -> float:
    return float(str(cell).replace(",", ""))


def run(students: pd.DataFrame, contacts: pd.DataFrame, coords: pd.DataFrame, k: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fidelity(students, contacts, coords, min_cell=k)


def mutate(trial, tiny: list[int], empty: bool, arms: str, shared: bool):
    """A simulated trial reshaped: tiny schools cut from the last school, and so on."""
    s = trial.students.copy()
    c = trial.contacts.copy()
    k = trial.coordinators.copy()
    last = max(s["school_id"].unique())
    pool = list(s.index[s["school_id"] == last])
    start = 0
    for j, size in enumerate(tiny):
        take = pool[start : start + size]
        start += size
        s.loc[take, "school_id"] = f"Tiny Campus {j}"
    if shared and tiny:
        # the last school's coordinator also works at the first tiny school
        who = k.loc[k["school_id"] == last, "coordinator_id"].iloc[0]
        extra = (
            k.loc[k["coordinator_id"] == who].iloc[[0]].assign(school_id="Tiny Campus 0", fte=0.2)
        )
        k = pd.concat([k, extra], ignore_index=True)
    if empty:
        k = pd.concat(
            [k, k.iloc[[0]].assign(coordinator_id="C9999", school_id="Empty Campus")],
            ignore_index=True,
        )
    if arms == "program only":
        s["treatment"] = 1
    elif arms == "control only":
        s["treatment"] = 0
    elif arms == "one school all control":
        s.loc[s["school_id"] == min(s["school_id"].unique()), "treatment"] = 0
    return s, c, k


def check_report(res, k: int, small_names: set[str]) -> None:
    tables = {level: res.table(level, min_cell=k) for level in LEVELS}
    summary = res.summary(min_cell=k)
    # no published count under k and nothing recoverable, over the whole report at once
    assert audit(res, k) == []
    # pooled labels never name a small school, and no small school is named at all
    text = " ".join(summary) + "".join(t.to_csv() for t in tables.values())
    for name in small_names:
        assert name not in text
    assert "Tiny" not in school_pool_label(k) + coordinator_pool_label(k)
    # a large group (3 x k or more) is never hidden because of a smaller one: its dosage
    # stays published, and at most one of its two counts (program students, reached)
    # goes, as a complementary cell when no smaller one is left
    p = pooled(res, k)
    sch = p.to_frame("school")
    table = tables["school"].data
    for i, r in enumerate(sch.itertuples()):
        row = table.iloc[i]
        assert row["School"] == r.school_id
        if r.program_students >= 3 * k:
            counts = (row["Program students"], row["Reached"])
            assert counts != (SUPPRESSED, SUPPRESSED), r.school_id
        if r.students_reached >= 3 * k:
            assert row["Contacts (mean)"] != SUPPRESSED, r.school_id
    coords = p.to_frame("coordinator")
    ct = tables["coordinator"].data
    for i, r in enumerate(coords.itertuples()):
        if r.students_served >= 3 * k:
            assert ct["Contacts per student (mean)"].iloc[i] != SUPPRESSED


def expected_school_counts(students: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """Program students and students reached per school, straight from the inputs."""
    level2 = set(contacts.loc[contacts["tier"].astype(int) == 2, "student_id"].astype(str))
    prog = students["treatment"].astype(int) == 1
    frame = pd.DataFrame(
        {
            "school_id": students["school_id"],
            "n": prog,
            "reached": prog & students["student_id"].astype(str).isin(level2),
        }
    )
    return frame.groupby("school_id")[["n", "reached"]].sum()


def check_numbers(res, k: int, students: pd.DataFrame, contacts: pd.DataFrame) -> None:
    want = expected_school_counts(students, contacts)
    small = want.index[(want["n"] > 0) & (want["n"] < k)]
    table = res.table("school", min_cell=k).data.set_index("School")
    for school, row in table.iterrows():
        if school == "All schools":
            exp = want.sum()
        elif school == school_pool_label(k):
            exp = want.loc[small].sum()
        else:  # a school on the staff sheet only has no students
            exp = want.reindex([school]).fillna(0).iloc[0]
        if row["Program students"] != SUPPRESSED:
            assert _num(row["Program students"]) == exp["n"]
        if row["Reached"] != SUPPRESSED:
            assert _num(row["Reached"]) == exp["reached"]


# Each example runs the whole fidelity pipeline: no shrinking (it would take minutes);
# a failure still prints the example that failed.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


@settings(
    max_examples=20,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10**6),
    n_schools=st.integers(1, 4),
    per_school=st.integers(25, 70),
    tiny=st.lists(st.integers(1, 12), max_size=3),
    empty=st.booleans(),
    arms=st.sampled_from(["trial", "program only", "control only", "one school all control"]),
    shared=st.booleans(),
    k=st.sampled_from([5, 10]),
)
def test_random_rosters_never_crash_and_never_reveal(
    seed, n_schools, per_school, tiny, empty, arms, shared, k
):
    trial = ce.simulate(
        seed=seed,
        n_students=n_schools * per_school + sum(tiny),
        n_schools=n_schools,
        coordinators_per_school=2 if seed % 2 else 1,
    )
    s, c, coords = mutate(trial, tiny, empty, arms, shared)
    res = run(s, c, coords, k)
    sizes = s[s["treatment"] == 1].groupby("school_id").size()
    small_names = {str(n) for n in sizes.index[(sizes > 0) & (sizes < k)]}
    check_report(res, k, small_names)
    check_numbers(res, k, s, c)


@settings(
    max_examples=25,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    sizes=st.lists(st.integers(1, 14), min_size=1, max_size=4),
    reached=st.floats(0.0, 1.0),
    k=st.sampled_from([3, 10]),
)
def test_hand_built_tiny_rosters(sizes, reached, k):
    rows, log = [], []
    for i, n in enumerate(sizes):
        for j in range(n):
            sid = f"X{i}-{j}"
            rows.append({"student_id": sid, "school_id": f"Campus {i}", "treatment": 1})
            if j < round(reached * n):
                for d in range(1 + j % 4):
                    log.append(
                        {
                            "contact_id": f"{sid}-{d}",
                            "student_id": sid,
                            "coordinator_id": f"Staff {i % 2}",
                            "date": pd.Timestamp("2012-09-03") + pd.Timedelta(days=7 * d + i),
                            "minutes": 30,
                            "service_type": "academics",
                            "tier": 2,
                            "mode": "individual",
                        }
                    )
    if not log:  # a log needs a row: one Level 1 contact
        log.append(
            {
                "contact_id": "L1",
                "student_id": rows[0]["student_id"],
                "coordinator_id": "Staff 0",
                "date": pd.Timestamp("2012-09-03"),
                "minutes": 30,
                "service_type": "academics",
                "tier": 1,
                "mode": "group",
            }
        )
    students = pd.DataFrame(rows)
    contacts = pd.DataFrame(log)
    coords = pd.DataFrame(
        {
            "coordinator_id": [f"Staff {i % 2}" for i in range(len(sizes))],
            "school_id": [f"Campus {i}" for i in range(len(sizes))],
            "fte": 0.5,
            "caseload": 40,
            "level2_time_share": 0.5,
        }
    )
    res = run(students, contacts, coords, k)
    small = {f"Campus {i}" for i, n in enumerate(sizes) if n < k}
    check_report(res, k, small)
    check_numbers(res, k, students, contacts)


# ----------------------------------------------------------------------------- the affiliate


@pytest.fixture(scope="module")
def affiliate():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = ce.load_export(FIXTURES / "mapping.toml")
        return x, fidelity(x.students, x.contacts, x.coordinators)


def test_an_8_student_school_no_longer_hides_a_70_student_one(affiliate):
    x, res = affiliate
    school = res.table("school").data.set_index("School")
    want = expected_school_counts(x.students.assign(treatment=1), x.contacts)
    assert set(want.index) >= {"Cedar Creek Academy", "Lincoln Middle School"}
    assert (
        want.loc["Cedar Creek Academy", "n"] == 8 and want.loc["Lincoln Middle School", "n"] == 70
    )
    for big in ("Lincoln Middle School", "Washington High School"):
        row = school.loc[big]
        assert row["Reached"] == f"{want.loc[big, 'reached']:,}"
        assert row["Contacts (mean)"] != SUPPRESSED
    # Lincoln's 5 students not reached: its count of program students goes (its own
    # small group), and the share is a safe lower bound
    assert want.loc["Lincoln Middle School", "reached"] == 65
    assert school.loc["Lincoln Middle School", "Program students"] == SUPPRESSED
    assert school.loc["Lincoln Middle School", "% reached"].endswith("or more")
    assert school.loc["Washington High School", "Program students"] == "72"
    assert school.loc["All schools", "Program students"] == "150"

    assert "Cedar Creek Academy" not in school.index
    assert school.loc[school_pool_label(10)].eq(SUPPRESSED).sum() >= 2
    # Washington: every student reached, so the exact count and share are safe
    assert school.loc["Washington High School", "Reached"] == "72"
    assert school.loc["Washington High School", "% reached"] == "100%"
    # mean contacts at Lincoln, recomputed from the log
    log = x.contacts[x.contacts["tier"].astype(int) == 2]
    roster = x.students.set_index("student_id")["school_id"]
    per = log.groupby("student_id").size()
    lincoln = per[per.index.map(roster) == "Lincoln Middle School"]
    assert school.loc["Lincoln Middle School", "Contacts (mean)"] == f"{lincoln.mean():.1f}"


def test_the_coordinator_at_two_schools_and_the_school_chart(affiliate):
    _, res = affiliate
    ct = res.table("coordinator").data
    assert "Cedar Creek Academy" not in ct.to_csv()
    dana = ct[ct["Coordinator"] == "Dana Whitfield"]
    assert dana["School"].tolist() == ["Lincoln Middle School"]
    assert dana["Program students served"].iloc[0] == "33"
    from matplotlib.figure import Figure

    from cis_eval.fidelity.plots import plot_benchmarks

    ax = Figure().add_subplot()
    plot_benchmarks(res, ax, "contacts", 10)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "Lincoln Middle School" in labels and "Cedar Creek Academy" not in labels
    hidden = [t.get_text() for t in ax.texts if t.get_text() == "suppressed"]
    assert len(hidden) == 1  # only the pooled row


def test_histogram_is_drawn_not_blanked_and_hides_the_count_reached(affiliate):
    _, res = affiliate
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    plot_dosage(res, ax, "contacts", 10)
    bars = [p.get_height() for p in ax.patches]
    assert bars and not any("suppressed" in t.get_text() for t in ax.texts)
    assert "%" in ax.get_ylabel()  # shares: the bars do not add up to the count reached


def test_summary_and_tables_cannot_be_combined_to_reveal_the_unreached(affiliate):
    _, res = affiliate
    text = " ".join(res.summary())
    assert "150 program students" in text  # the network's count is published...
    assert "145" not in text  # ...so the count reached is not, anywhere
    assert "90% or more had at least one Level 2 contact" in text
    for level in ("school", "arm", "dosage", "benchmarks"):
        assert "145" not in res.table(level).to_csv()
    labels, _, shown, _ = published_system(res, 10)
    assert "not reached: network" in labels
    assert not shown[labels.index("not reached: network")]
    assert audit(res) == []


def test_the_audit_catches_a_leak_between_summary_and_table():
    # the joint check sees what no single table shows: publish both totals
    values = np.array([150.0, 145.0, 5.0])
    cons = [(0, [1, 2])]
    assert recoverable_cells(values, np.array([False, False, True]), cons) == [2]
    assert recoverable_cells(values, np.array([True, False, True]), cons) == []


# ----------------------------------------------------------------------------- the engine


@settings(max_examples=60, deadline=None)
@given(
    small=st.integers(1, 9),
    others=st.lists(st.integers(0, 90), min_size=1, max_size=5),
)
def test_a_small_part_never_hides_a_large_one_while_the_total_can_go(small, others):
    k = 10
    counts = np.array([small, *others, small + sum(others)], float)
    n = len(counts) - 1
    late = np.append(counts[:-1] >= 3 * k, False)
    sup = suppression_mask(counts, min_cell=k, constraints=[(n, list(range(n)))], last_resort=late)
    assert not (sup[:-1] & late[:-1]).any()
    assert recoverable_cells(counts, sup, [(n, list(range(n)))]) == []


def test_no_complement_available_hides_the_system_instead_of_crashing():
    from cis_eval.fidelity.suppression import safe_mask

    assert safe_mask([3.0, 4.0], min_cell=10, constraints=[(None, [0, 1])]).all()


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(0.0, 60.0, allow_nan=False), min_size=0, max_size=200),
    width=st.sampled_from([1.0, 4.0, 5.0]),
    k=st.sampled_from([3, 10]),
)
def test_histograms_are_coarsened_before_they_are_blanked(values, width, k):
    from cis_eval.fidelity.suppression import publishable_cuts, safe_histogram

    v = np.array(values, float)
    cuts = publishable_cuts(v, [1.0, 10.0, 19.0], k)
    edges, counts = safe_histogram(v, width, k, cuts)
    assert all(c == 0 or c >= k for c in counts)
    if v.size >= k:
        assert counts.sum() == v.size  # every student is in a bar: nothing blanked
        assert np.all(np.diff(edges) > 0)
        assert set(cuts) <= set(edges.tolist()) | {c for c in cuts if c >= edges[-1]}


def test_the_affiliate_report_renders_without_naming_the_small_school(affiliate):
    _, res = affiliate
    html = res.report().to_html()
    assert "Lincoln Middle School" in html and school_pool_label(10) in html
    assert "Cedar Creek" not in html
