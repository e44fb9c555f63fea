"""The few distribution functions the verdicts need, on ``scipy.special``.

``scipy.stats`` would give the same numbers, but importing it costs about 1.5 s of CPU and
``scipy.special`` about 0.5 s; every pytest-xdist worker pays the import once, so on a suite of
a few cases the difference is a visible share of the run. The functions are checked against
``scipy.stats`` in ``tests/test_stats.py``. Rare paths (the p95 order-statistic test, the
report's plots) still use ``scipy.stats``.
"""

from __future__ import annotations

import math

import numpy as np


def binom_sf(k, n: int, p: float):
    """P(X > k) for X ~ Binomial(n, p); ``k`` may be an array."""
    from scipy.special import bdtrc

    k = np.asarray(k)
    out = np.where(k < 0, 1.0, np.where(k >= n, 0.0, bdtrc(np.clip(k, 0, max(n - 1, 0)), n, p)))
    return float(out) if out.ndim == 0 else out


def binom_pmf(m: int, p: float) -> np.ndarray:
    """P(X = x) for x = 0..m, X ~ Binomial(m, p), 0 < p < 1 (in logs: exact for large m)."""
    from scipy.special import gammaln

    x = np.arange(m + 1)
    return np.exp(gammaln(m + 1) - gammaln(x + 1) - gammaln(m - x + 1) + x * math.log(p) + (m - x) * math.log1p(-p))


def binom_cdf(k, n: int, p: float):
    """P(X <= k) for X ~ Binomial(n, p)."""
    from scipy.special import bdtr

    k = np.asarray(k)
    out = np.where(k < 0, 0.0, np.where(k >= n, 1.0, bdtr(np.clip(k, 0, max(n - 1, 0)), n, p)))
    return float(out) if out.ndim == 0 else out


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b)."""
    from scipy.special import betaincinv

    return float(betaincinv(a, b, q))


def t_ppf(q: float, df: int) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def t_cdf(x: float, df: int) -> float:
    from scipy.special import stdtr

    return float(stdtr(df, x))


def norm_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    from scipy.special import ndtr

    return float(ndtr(-z))


def norm_isf(q: float) -> float:
    """The z with P(Z > z) = q."""
    from scipy.special import ndtri

    return float(-ndtri(q))


def hypergeom_cdf(x: int, total: int, marked: int, drawn: int) -> float:
    """P(X <= x) for the number X of marked items among ``drawn`` taken without replacement from
    ``total`` of which ``marked`` are marked. Exact: integer binomial coefficients, one division."""
    low = max(0, drawn - (total - marked))
    if x < low:
        return 0.0
    ways = sum(math.comb(marked, i) * math.comb(total - marked, drawn - i) for i in range(low, min(x, drawn, marked) + 1))
    return min(1.0, ways / math.comb(total, drawn))
