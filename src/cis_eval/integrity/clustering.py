r"""The WWC correction of a t statistic from an analysis that ignored clustering.

For designs that assign whole schools but analyse students as if independent; it does not
apply to cis_eval's default design (students randomized within schools, analysed with
school fixed effects).

Sources: WWC Procedures and Standards Handbook, Version 5.0 (2022), appendix E; Hedges
(2007).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import OptionError, OptionTypeError
from ..schema import Outcome

__all__ = [
    "DEFAULT_ICC",
    "DEFAULT_ICC_OTHER",
    "ClusteringCorrection",
    "default_icc",
    "wwc_clustering_correction",
]

DEFAULT_ICC = {"academic": 0.20}
"""WWC default ICCs for the clustering correction: 0.20 for achievement outcomes, 0.10 for
behavioural ones (attendance, behaviour and any other domain)."""
DEFAULT_ICC_OTHER = 0.10


@dataclass(frozen=True, slots=True)
class ClusteringCorrection:
    """A t statistic corrected for clustering the analysis ignored (WWC).

    Attributes
    ----------
    t : float
        Corrected t statistic.
    df : float
        Corrected degrees of freedom ``h``.
    p_value : float
        Two-sided p-value of ``t`` on ``df`` degrees of freedom.
    factor : float
        ``t / t_uncorrected``.
    t_uncorrected : float
        The t statistic of the analysis that ignored clustering.
    n, cluster_size, icc : float
        Total sample, average cluster size and intraclass correlation used.
    """

    t: float
    df: float
    p_value: float
    factor: float
    t_uncorrected: float
    n: float
    cluster_size: float
    icc: float

    def __repr__(self) -> str:
        return (
            f"ClusteringCorrection(t {self.t_uncorrected:.3f} -> {self.t:.3f}, "
            f"df {self.df:.1f}, p {self.p_value:.4f}, icc {self.icc:g})"
        )


def wwc_clustering_correction(
    t: float, *, n: float, cluster_size: float, icc: float
) -> ClusteringCorrection:
    r"""The WWC correction of a t statistic from a mismatched analysis (clusters ignored).

    For designs that assign whole clusters (schools, classrooms) but analyse students as
    if they were independent. It does not apply to cis_eval's default design (students
    randomized within schools, analysed with school fixed effects).

    Parameters
    ----------
    t : float
        t statistic of the analysis that ignored clustering.
    n : float
        Total number of students ``N``.
    cluster_size : float
        Average number of students per cluster ``n`` (``N`` / number of clusters).
    icc : float
        Intraclass correlation ``rho`` in [0, 1). WWC defaults when not reported: 0.20 for
        achievement outcomes, 0.10 for behavioural ones.

    Returns
    -------
    ClusteringCorrection

    Raises
    ------
    OptionError
        ``icc`` outside [0, 1), fewer than two clusters, or a sample too small for the
        correction (a non-positive numerator).

    Notes
    -----
    .. math::

        t_A = t\sqrt{\frac{(N - 2) - 2(n - 1)\rho}{(N - 2)[1 + (n - 1)\rho]}}, \qquad
        h = \frac{[(N - 2) - 2(n - 1)\rho]^2}
                 {(N - 2)(1 - \rho)^2 + n(N - 2n)\rho^2 + 2(N - 2n)\rho(1 - \rho)}.

    References
    ----------
    What Works Clearinghouse (2022). *Procedures and Standards Handbook, Version 5.0*,
    appendix E (clustering correction). Hedges, L. V. (2007). Correcting a significance
    test for clustering. *Journal of Educational and Behavioral Statistics*, 32(2),
    151-179.

    Examples
    --------
    >>> from cis_eval import wwc_clustering_correction
    >>> c = wwc_clustering_correction(2.5, n=200, cluster_size=20, icc=0.2)
    >>> round(c.t, 4), round(c.df, 2)
    (1.119, 118.5)
    """
    for name, v in (("t", t), ("n", n), ("cluster_size", cluster_size), ("icc", icc)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise OptionTypeError(f"{name} must be a number, got {type(v).__name__}")
        if not np.isfinite(v):
            raise OptionError(f"{name} must be finite, got {v!r}")
    if not 0 <= icc < 1:
        raise OptionError(f"icc must be in [0, 1), got {icc!r}")
    if cluster_size < 1:
        raise OptionError(f"cluster_size must be at least 1, got {cluster_size!r}")
    if n < 2 * cluster_size:
        raise OptionError(
            f"the correction needs at least two clusters: n = {n:g} students but clusters "
            f"of {cluster_size:g}"
        )
    num = (n - 2) - 2 * (cluster_size - 1) * icc
    if num <= 0:
        raise OptionError("too few students for the clustering correction (N - 2 <= 2(n - 1)rho)")
    factor = math.sqrt(num / ((n - 2) * (1 + (cluster_size - 1) * icc)))
    den = (
        (n - 2) * (1 - icc) ** 2
        + cluster_size * (n - 2 * cluster_size) * icc**2
        + 2 * (n - 2 * cluster_size) * icc * (1 - icc)
    )
    h = num**2 / den
    t_a = float(t) * factor
    p = float(2 * stats.t.sf(abs(t_a), h))
    return ClusteringCorrection(
        t=t_a,
        df=float(h),
        p_value=p,
        factor=factor,
        t_uncorrected=float(t),
        n=float(n),
        cluster_size=float(cluster_size),
        icc=float(icc),
    )


def default_icc(o: Outcome) -> float:
    """The WWC default ICC of an outcome's domain."""
    return DEFAULT_ICC.get(o.domain, DEFAULT_ICC_OTHER)
