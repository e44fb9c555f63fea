"""Exact tests behind the verdicts (../shared/STATS.md). Every result is PASS, FAIL or INCONCLUSIVE."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


@dataclasses.dataclass(frozen=True)
class RateTest:
    outcome: str
    k: int
    n: int
    p0: float
    alpha: float
    lower: float  # one-sided (1 - alpha) Clopper–Pearson lower bound
    upper: float  # one-sided (1 - alpha) Clopper–Pearson upper bound
    p_pass: float  # exact binomial p-value of H0: p <= p0 (small → PASS)
    p_fail: float  # exact binomial p-value of H0: p >= p0 (small → FAIL)


def success_rate(k: int, n: int, p0: float, alpha: float) -> RateTest:
    """PASS when the exact one-sided test shows p > p0 at level alpha, FAIL when it shows p < p0,
    INCONCLUSIVE (needs more episodes) otherwise."""
    from simgate.distributions import beta_ppf, binom_cdf, binom_sf

    if n <= 0:
        return RateTest(INCONCLUSIVE, k, n, p0, alpha, 0.0, 1.0, 1.0, 1.0)
    p_pass = binom_sf(k - 1, n, p0)  # P(X >= k | p0)
    p_fail = binom_cdf(k, n, p0)  # P(X <= k | p0)
    lower = 0.0 if k == 0 else beta_ppf(alpha, k, n - k + 1)
    upper = 1.0 if k == n else beta_ppf(1 - alpha, k + 1, n - k)
    if p_pass <= alpha:
        outcome = PASS
    elif p_fail <= alpha:
        outcome = FAIL
    else:
        outcome = INCONCLUSIVE
    return RateTest(outcome, k, n, p0, alpha, lower, upper, p_pass, p_fail)


@dataclasses.dataclass(frozen=True)
class MeanTest:
    outcome: str
    mean: float
    upper: float  # one-sided (1 - alpha) upper bound on the mean
    lower: float
    limit: float
    n: int


def mean_below(x: np.ndarray, limit: float, alpha: float) -> MeanTest:
    """One-sided t bounds on the mean of a per-episode statistic against ``limit``."""
    from simgate.distributions import t_ppf

    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2:  # one episode bounds nothing
        mean = float(x[0]) if n else math.nan
        return MeanTest(INCONCLUSIVE, mean, math.inf, -math.inf, limit, n)
    mean = float(np.mean(x))
    spread = float(t_ppf(1 - alpha, n - 1) * np.std(x, ddof=1) / math.sqrt(n))
    upper, lower = mean + spread, mean - spread
    outcome = PASS if upper < limit else FAIL if lower > limit else INCONCLUSIVE
    return MeanTest(outcome, mean, upper, lower, limit, n)
