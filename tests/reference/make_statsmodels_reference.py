"""Reference values from statsmodels OLS with explicit school indicators.

A second implementation beside R's estimatr that CI can rerun: every design matrix is built
here by hand (school dummies, mean-filled covariates with missing-value indicators, centred
interactions), then fitted with ``statsmodels.OLS`` and its own HC0/HC1/HC2, classical and
cluster-robust (CR1) covariance. Rows where statsmodels' HC2 is not finite (a student of
leverage 1) are left out; the estimatr fixture covers them.

Run with ``make reference``; writes ``tests/reference/statsmodels_reference.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.api as sm

HERE = Path(__file__).resolve().parent
DESIGNS = ("shipped", "small_schools", "unbalanced")
OUTCOMES = (
    "chronic_absence",
    "attendance_rate",
    "core_course_failure",
    "core_credits",
    "core_gpa",
    "suspensions",
)
PRIOR = {
    "chronic_absence": "prior_chronic_absence",
    "attendance_rate": "prior_attendance_rate",
    "core_course_failure": "prior_core_failures",
    "core_credits": "prior_core_gpa",
    "core_gpa": "prior_core_gpa",
    "suspensions": "prior_suspensions",
}
DEMOGRAPHICS = ("female", "frpl", "ell", "special_education", "overage")


def covariates(d: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Mean-filled covariates plus an indicator for each one with missing values."""
    cols, base = {}, []
    for c in names:
        x = d[c].astype(float)
        if x.isna().all():
            continue
        base.append(c)
        if x.isna().any():
            cols[f"{c}_missing"] = x.isna().astype(float)
            x = x.fillna(x.mean())
        cols[c] = x
    return pd.DataFrame(cols, index=d.index), base


def both_arms(d: pd.DataFrame) -> pd.DataFrame:
    arms = d.groupby("school_id")["treatment"].nunique()
    return d[d["school_id"].isin(arms.index[arms == 2])]


def fit(y, x, cov, groups=None):
    model = sm.OLS(y.astype(float), x.astype(float))
    if cov == "CR1":
        return model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    return model.fit(cov_type="nonrobust" if cov == "classical" else cov)


def rows_for(design: str, data: pd.DataFrame):
    for y in OUTCOMES:
        names = list(dict.fromkeys([PRIOR[y], *DEMOGRAPHICS]))
        d = data.dropna(subset=[y])
        x, base = covariates(d, names)
        dummies = pd.get_dummies(d["school_id"], dtype=float)
        codes = pd.factorize(d["school_id"])[0]
        fe = pd.concat([d[["treatment"]], x, dummies], axis=1)
        for cov in ("HC2", "HC1", "HC0", "classical", "CR1"):
            res = fit(d[y], fe, cov, codes)
            yield design, y, f"fixed_effects/{cov}", res.params["treatment"], res.bse["treatment"]
        inter = pd.DataFrame(
            {f"zx_{c}": d["treatment"] * (x[c] - x[c].mean()) for c in base}, index=d.index
        )
        res = fit(d[y], pd.concat([fe, inter], axis=1), "HC2")
        yield design, y, "fixed_effects_lin/HC2", res.params["treatment"], res.bse["treatment"]
        # weighted estimands: assignment interacted with centred school indicators
        b = both_arms(d)
        xb, _base_b = covariates(b, names)
        dum = pd.get_dummies(b["school_id"], dtype=float).iloc[:, 1:]
        for estimand, centre in (
            ("person_weighted", dum.mean()),
            ("school_weighted", pd.Series(1 / (dum.shape[1] + 1), index=dum.columns)),
        ):
            dc = dum - centre
            zd = dc.mul(b["treatment"], axis=0).add_prefix("z_")
            exog = pd.concat(
                [pd.Series(1.0, index=b.index, name="const"), b[["treatment"]], xb, dc, zd],
                axis=1,
            )
            res = fit(b[y], exog, "HC2")
            yield design, y, f"{estimand}/HC2", res.params["treatment"], res.bse["treatment"]


def main(out: Path = HERE / "statsmodels_reference.csv") -> Path:
    rows = []
    for design in DESIGNS:
        data = pd.read_csv(HERE / "data" / f"{design}.csv")
        for r in rows_for(design, data):
            if np.isfinite(r[4]):
                rows.append(r)
    frame = pd.DataFrame(rows, columns=["design", "outcome", "estimator", "estimate", "std_error"])
    header = (
        "# Reference values from statsmodels with explicit school indicators; made by "
        "tests/reference/make_statsmodels_reference.py\n"
        f"# statsmodels {statsmodels.__version__}; binary outcomes are 0/1 here\n"
    )
    tmp = out.with_suffix(".tmp")
    tmp.write_text(header + frame.to_csv(index=False, float_format="%.17g"))
    tmp.replace(out)
    return out


if __name__ == "__main__":
    print(main())
