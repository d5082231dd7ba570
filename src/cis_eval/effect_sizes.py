"""What Works Clearinghouse effect sizes: Hedges' g, the Cox index and the improvement index.

Formulas follow the WWC Procedures and Standards Handbook (v5.0, 2022; unchanged since
v4.1 for these items):

* Hedges' g = omega * (mean_T - mean_C) / S, with S the pooled within-group standard
  deviation of the *unadjusted* outcome and omega = 1 - 3 / (4N - 9) the small-sample
  correction. For covariate-adjusted impacts the numerator is the adjusted difference and
  the denominator stays the unadjusted pooled SD.
* Cox index d = omega * [logit(p_T) - logit(p_C)] / 1.65 for binary outcomes; undefined
  when a group proportion is 0 or 1.
* Improvement index = 100 * (Phi(g) - 0.5), the expected percentile-rank change of an
  average control-group student.

WWC signs effect sizes so that positive is favourable; :func:`favourable` flips the sign
for outcomes where lower is better (chronic absence, course failure, suspensions).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = [
    "cox_index",
    "favourable",
    "hedges_g",
    "hedges_g_variance",
    "improvement_index",
    "pooled_sd",
    "wwc_omega",
]

COX_SCALE = 1.65


def wwc_omega(n: float) -> float:
    """Small-sample correction omega = 1 - 3 / (4N - 9).

    Examples
    --------
    >>> round(wwc_omega(100), 4)
    0.9923
    """
    if n <= 2.25:
        raise ValueError(f"the small-sample correction needs N > 2.25, got {n}")
    return 1.0 - 3.0 / (4.0 * n - 9.0)


def pooled_sd(sd_t: float, sd_c: float, n_t: int, n_c: int) -> float:
    """Pooled within-group standard deviation."""
    if n_t + n_c <= 2:
        return float("nan")
    return math.sqrt(((n_t - 1) * sd_t**2 + (n_c - 1) * sd_c**2) / (n_t + n_c - 2))


def hedges_g(difference: float, sd_t: float, sd_c: float, n_t: int, n_c: int) -> float:
    """Hedges' g for a (possibly covariate-adjusted) difference in means.

    Parameters
    ----------
    difference : float
        Impact estimate (program minus control), adjusted or not.
    sd_t, sd_c : float
        Unadjusted outcome standard deviations by group (analytic sample).
    n_t, n_c : int
        Group sizes.

    Examples
    --------
    >>> round(hedges_g(0.5, 1.0, 1.0, 50, 50), 4)
    0.4962
    """
    s = pooled_sd(sd_t, sd_c, n_t, n_c)
    if not np.isfinite(s) or s == 0:
        return float("nan")
    return wwc_omega(n_t + n_c) * difference / s


def hedges_g_variance(g: float, n_t: int, n_c: int) -> float:
    """Large-sample variance of g (Hedges and Olkin)."""
    return (n_t + n_c) / (n_t * n_c) + g**2 / (2 * (n_t + n_c))


def cox_index(p_t: float, p_c: float, n_t: int, n_c: int) -> float:
    """Cox index for a binary outcome (with the WWC small-sample correction).

    ``p_t`` may be the control proportion plus an adjusted impact. Returns NaN when a
    proportion is 0 or 1 (the log odds are undefined).

    Examples
    --------
    >>> round(cox_index(0.40, 0.46, 1000, 1000), 4)
    -0.1485
    """
    if not (0 < p_t < 1 and 0 < p_c < 1):
        return float("nan")
    logit = math.log(p_t / (1 - p_t)) - math.log(p_c / (1 - p_c))
    return wwc_omega(n_t + n_c) * logit / COX_SCALE


def improvement_index(g: float) -> float:
    """WWC improvement index 100 * (Phi(g) - 0.5), in percentile points.

    Examples
    --------
    >>> round(improvement_index(0.25), 1)
    9.9
    """
    if not np.isfinite(g):
        return float("nan")
    return float(100.0 * (special.ndtr(g) - 0.5))


def favourable(effect_size: float, direction: str) -> float:
    """Sign an effect size so that positive is favourable (``direction`` 'lower' flips it)."""
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    return -effect_size if direction == "lower" else effect_size
