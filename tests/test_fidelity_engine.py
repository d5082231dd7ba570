"""The aggregation engine's shortcuts give exactly what direct counts give.

On a long log the engine avoids the obvious, slow SQL: problems are counted from
non-null counts per cell of the cube, repeated contact identifiers with a bitmap over
whole numbers, contacts per area and per month packed into wide sums. Each shortcut is
held here to the direct computation, on dirty logs and on the cases where it must fall
back (identifiers that are not whole numbers, a student with thousands of contacts).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cis_eval as ce
from cis_eval.errors import DataValidationError
from cis_eval.fidelity import Target
from cis_eval.fidelity import log as engine_log
from cis_eval.fidelity.inputs import roster_frame, staff_frame

YEAR = (pd.Timestamp("2012-08-01"), pd.Timestamp("2013-07-31"))

# The direct definition of every problem count: one filtered count per problem.
DIRECT = """
SELECT
    count(*) FILTER (WHERE l.student_id IS NULL) AS sid_missing,
    count(*) FILTER (WHERE l.student_id IS NOT NULL AND r.student_id IS NULL) AS sid_unknown,
    count(*) FILTER (WHERE l.coordinator_id IS NULL) AS cid_missing,
    count(*) FILTER (WHERE l.contact_id IS NULL) AS contact_missing,
    count(*) FILTER (WHERE l.raw_date IS NULL) AS date_missing,
    count(*) FILTER (WHERE l.date IS NULL AND l.raw_date IS NOT NULL) AS date_bad,
    count(*) FILTER (WHERE l.raw_minutes IS NULL) AS minutes_missing,
    count(*) FILTER (WHERE l.minutes IS NULL AND l.raw_minutes IS NOT NULL) AS minutes_bad,
    count(*) FILTER (WHERE l.minutes <> round(l.minutes)) AS minutes_fraction,
    count(*) FILTER (WHERE l.minutes < 1 OR l.minutes > 480) AS minutes_range,
    count(*) FILTER (WHERE l.raw_tier IS NULL) AS tier_missing,
    count(*) FILTER (WHERE l.raw_tier IS NOT NULL AND (l.tier IS NULL OR l.tier NOT IN (1, 2)))
        AS tier_bad,
    count(*) FILTER (WHERE l.raw_svc IS NULL) AS svc_missing,
    count(*) FILTER (WHERE l.raw_svc IS NOT NULL AND l.svc IS NULL) AS svc_bad,
    count(*) FILTER (WHERE l.raw_mode IS NULL) AS mode_missing,
    count(*) FILTER (WHERE l.raw_mode IS NOT NULL AND l.mode IS NULL) AS mode_bad
FROM log l LEFT JOIN roster r ON r.sid_key = l.student_id
"""


def _roster(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "student_id": [f"s{i}" for i in range(n)],
            "school_id": ["A" if i % 2 else "B" for i in range(n)],
            "treatment": 1,
        }
    )


def _clean_log(rng: np.random.Generator, n: int, n_students: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": np.arange(1, n + 1),
            "student_id": [f"s{i}" for i in rng.integers(0, n_students, n)],
            "coordinator_id": rng.choice(["K1", "K2"], n),
            "date": pd.Timestamp("2012-09-10") + pd.to_timedelta(rng.integers(0, 250, n), "D"),
            "minutes": rng.integers(1, 90, n).astype(float),
            "service_type": rng.choice(list(ce.SERVICE_TYPES), n),
            "tier": rng.choice([1, 2], n, p=[0.2, 0.8]),
            "mode": rng.choice(["individual", "group", "family"], n),
        }
    )


DIRTY = {
    "student_id": [None, "nobody"],
    "coordinator_id": [None],
    "contact_id": [None],
    "date": [None, "not a date"],
    "minutes": [None, "ten", 2.5, 0.0, 9000.0, float("nan"), float("inf")],
    "tier": [None, 3, 1.5, "two"],
    "service_type": [None, "astrology"],
    "mode": [None, "pigeon"],
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(1, 60), share=st.floats(0.0, 0.5))
def test_problem_counts_equal_the_direct_counts_on_dirty_logs(seed, n, share):
    rng = np.random.default_rng(seed)
    log = _clean_log(rng, n, 8).astype(object)
    for column, values in DIRTY.items():
        hit = rng.random(n) < share
        for i in np.flatnonzero(hit):
            log.at[i, column] = values[int(rng.integers(0, len(values)))]
    roster = roster_frame(_roster(8))
    with engine_log.engine() as con:
        contacts = engine_log.open_log(con, log, None)
        engine_log.register_roster(
            con, roster.assign(sid_key=contacts.roster_key(roster["student_id"]))
        )
        cube, _, _, _ = engine_log.check_log(contacts, YEAR, staff_frame(None))
        direct = con.execute(DIRECT).df().iloc[0]
    for column, want in direct.items():
        assert int(cube[column].sum()) == int(want), column


@pytest.mark.parametrize(
    ("ids", "repeated"),
    [
        (list(range(1, 41)), 0),  # whole numbers: the bitmap
        ([*range(1, 40), 7], 1),
        ([str(i) for i in range(1, 41)], 0),  # whole numbers written as text
        ([*(str(i) for i in range(1, 40)), "7"], 1),
        ([*(str(i) for i in range(1, 40)), "007"], 0),  # "007" is not "7": compared as text
        ([*(f"A{i}" for i in range(1, 40)), "A7"], 1),  # not numbers: hashes, then text
        ([*(i * 10**9 for i in range(1, 40)), 7 * 10**9], 1),  # too wide a span for a bitmap
        ([-5, *range(1, 40)], 0),
        ([*range(1, 39), 3, 3], 2),
    ],
)
def test_repeated_contact_identifiers_are_counted_exactly(ids, repeated, tmp_path):
    rng = np.random.default_rng(1)
    log = _clean_log(rng, len(ids), 8)
    log["contact_id"] = pd.Series(ids, dtype=object if isinstance(ids[-1], str) else "int64")
    # A file: the engine checks it (a DataFrame is validated in pandas first).
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    if not repeated:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ce.fidelity(_roster(8), path, school_year=("2012-08-01", "2013-07-31"))
        return
    with pytest.raises(DataValidationError) as exc:
        ce.fidelity(_roster(8), path, school_year=("2012-08-01", "2013-07-31"))
    (p,) = [p for p in exc.value.problems if p.column == "contact_id"]
    assert "repeat a contact identifier" in p.message
    # rows repeating one, the first occurrence included
    counts = pd.Series(ids).value_counts()
    assert p.n_rows == int(counts[counts > 1].sum())


def test_a_hash_collision_is_never_a_repeated_identifier(tmp_path, monkeypatch):
    # A "hash" that collides for every identifier of the same length: only the exact
    # comparison that follows a shortfall keeps distinct identifiers distinct.
    monkeypatch.setattr(engine_log, "_ID_HASH", "length(contact_id)")
    log = _clean_log(np.random.default_rng(2), 30, 8)
    log["contact_id"] = [f"A{i}" for i in range(10, 40)]
    log.to_parquet(tmp_path / "log.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ce.fidelity(_roster(8), tmp_path / "log.parquet", school_year=("2012-08-01", "2013-07-31"))


def _result(students: pd.DataFrame, contacts: pd.DataFrame) -> ce.FidelityResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ce.fidelity(students, contacts, school_year=("2012-08-01", "2013-07-31"))


def test_packed_sums_fall_back_to_direct_counts(small_trial, monkeypatch):
    fast = _result(small_trial.students, small_trial.contacts)
    # Fields too narrow for any student: both packed sums must give way to direct counts.
    monkeypatch.setattr(engine_log, "_AREA_BITS", 1)
    monkeypatch.setattr(engine_log, "_MONTH_BITS", 2)
    slow = _result(small_trial.students, small_trial.contacts)
    for level in ("student", "school", "coordinator", "monthly", "service_mix"):
        pd.testing.assert_frame_equal(fast.to_frame(level), slow.to_frame(level))


def test_a_student_with_thousands_of_contacts_is_counted_exactly():
    # 4,400 full-day contacts: more than an area's 11 bits and a pair's 2**21 minutes a month
    n = 4_400
    rng = np.random.default_rng(3)
    log = _clean_log(rng, n, 1)
    log["coordinator_id"] = "K1"
    log["tier"] = 2
    log["minutes"] = 480.0
    log["date"] = pd.Timestamp("2012-10-01") + pd.to_timedelta(np.arange(n) % 20, "D")
    res = _result(_roster(1), log)
    st_ = res.to_frame("student").iloc[0]
    want = log["service_type"].value_counts()
    for area in ce.SERVICE_TYPES:
        assert st_[f"contacts_{area}"] == want.get(area, 0)
    assert st_["contacts"] == n and st_["contact_days"] == 20
    month = res.to_frame("monthly")
    assert month["contacts"].tolist() == [n] and month["hours"].tolist() == [n * 8.0]
    assert month["students"].tolist() == [1]


@pytest.mark.parametrize("noise", [-2e-15, 0.0, 2e-15])
def test_a_mean_on_a_boundary_is_judged_the_same_every_time(noise):
    # 27 is exactly 10% short of 30; a parallel sum may land a bit either side of it
    assert Target("weeks", 30, None, "x").status(27.0 + noise, 0.1) == "near"
    assert Target("caseload", None, 100, "x").status(110.0 + noise * 4, 0.1) == "near"


def test_a_large_network_gets_readable_charts():
    from matplotlib.figure import Figure

    from cis_eval.fidelity import plots

    sim = ce.simulate(seed=5, n_students=4_000, n_schools=60)
    res = _result(sim.students, sim.contacts)
    n = len(res.to_frame("school"))
    assert n > plots.CHART_ROWS
    fig = plots.figure_benchmarks(res, 10)
    assert fig.get_size_inches()[1] < 4  # not one row per school
    assert [ax.get_ylabel() for ax in fig.axes] == ["Schools"] * 3
    drawn = plots.charted_coordinators(res)
    assert len(drawn) == plots.CHART_LINES
    totals = res.to_frame("monthly").groupby("coordinator_id")["contacts"].sum()
    assert set(drawn) == set(totals.sort_values(ascending=False).index[: plots.CHART_LINES])
    ax = Figure().add_subplot()
    plots.plot_monthly(res, ax, 10)
    assert len(ax.get_lines()) == plots.CHART_LINES
    html = res.report().to_html()
    assert f"How many of the {n:,} schools" in html
    assert f"the {plots.CHART_LINES} of" in html


def test_a_small_network_keeps_one_row_per_school(small_trial):
    from cis_eval.fidelity import plots

    res = _result(small_trial.students, small_trial.contacts)
    fig = plots.figure_benchmarks(res, 10)
    assert fig.axes[0].get_ylabel() != "Schools"
    assert (
        len(plots.charted_coordinators(res)) == res.to_frame("monthly")["coordinator_id"].nunique()
    )
