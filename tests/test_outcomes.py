from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cis_eval as ce


def _rows(**cols):
    base = {
        "school_level": "high",
        "days_enrolled": 180,
        "days_present": 170,
        "core_courses_taken": 8,
        "core_courses_failed": 0,
        "core_credits_earned": 4.0,
        "core_gpa": 2.5,
        "suspensions_iss": 0,
        "suspensions_oss": 0,
    }
    n = max(len(v) for v in cols.values())
    data = {k: cols.get(k, [v] * n) for k, v in base.items()}
    return pd.DataFrame(data)


def test_chronic_absence_boundary_is_inclusive_in_days():
    # 18 of 180 days absent is exactly 10%: chronically absent; 17 is not.
    out = ce.derive_outcomes(_rows(days_present=[162, 163, 144, 145]))
    assert out["chronic_absence"].tolist() == [1.0, 0.0, 1.0, 1.0]
    out20 = ce.derive_outcomes(_rows(days_present=[162, 144, 145]), chronic_threshold=0.20)
    assert out20["chronic_absence"].tolist() == [0.0, 1.0, 0.0]


def test_attendance_rate_is_a_proportion():
    out = ce.derive_outcomes(_rows(days_enrolled=[200, 90], days_present=[150, 90]))
    np.testing.assert_allclose(out["attendance_rate"], [0.75, 1.0])


def test_failure_credits_gpa_suspensions():
    out = ce.derive_outcomes(
        _rows(
            school_level=["high", "middle", "high"],
            core_courses_failed=[0, 2, 1],
            core_credits_earned=[4.0, 3.0, 3.5],
            suspensions_iss=[1, 0, 2],
            suspensions_oss=[2, 0, 0],
            core_gpa=[3.1, 1.2, 2.0],
        )
    )
    assert out["core_course_failure"].tolist() == [0.0, 1.0, 1.0]
    # credits are defined for high school only
    assert out["core_credits"].tolist()[0] == 4.0
    assert np.isnan(out["core_credits"].iloc[1])
    assert out["suspensions"].tolist() == [3.0, 0.0, 2.0]
    assert out["core_gpa"].tolist() == [3.1, 1.2, 2.0]


def test_missing_raw_fields_give_missing_outcomes():
    raw = _rows(days_present=[170, np.nan], core_courses_taken=[8, 0])
    out = ce.derive_outcomes(raw)
    assert np.isnan(out["attendance_rate"].iloc[1])
    assert np.isnan(out["chronic_absence"].iloc[1])
    assert np.isnan(out["core_course_failure"].iloc[1])  # no course taken: undefined


def test_input_is_not_modified():
    raw = _rows(days_present=[170, 150])
    before = raw.copy()
    ce.derive_outcomes(raw)
    pd.testing.assert_frame_equal(raw, before)


@pytest.mark.parametrize("bad", [0, 1, 10, -0.1])
def test_threshold_must_be_a_share(bad):
    with pytest.raises(ValueError, match=r"0\.10"):
        ce.derive_outcomes(_rows(days_present=[170]), chronic_threshold=bad)
