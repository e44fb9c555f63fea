"""Exact and distribution-free tests behind the verdicts (docs/statistics.md). Every result is PASS, FAIL or INCONCLUSIVE."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from simgate.distributions import beta_ppf, binom_cdf, binom_pmf, binom_sf, t_ppf

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


def success_rate(k: int, n: int, p0: float, alpha: float, fail_alpha: float | None = None) -> RateTest:
    """PASS when the exact one-sided test shows p > p0 at level alpha, FAIL when it shows p < p0
    (at ``fail_alpha``, default alpha), INCONCLUSIVE (needs more episodes) otherwise."""

    fail_alpha = alpha if fail_alpha is None else fail_alpha
    if n <= 0:
        return RateTest(INCONCLUSIVE, k, n, p0, alpha, 0.0, 1.0, 1.0, 1.0)
    p_pass = binom_sf(k - 1, n, p0)  # P(X >= k | p0)
    p_fail = binom_cdf(k, n, p0)  # P(X <= k | p0)
    lower = 0.0 if k == 0 else beta_ppf(alpha, k, n - k + 1)
    upper = 1.0 if k == n else beta_ppf(1 - fail_alpha, k + 1, n - k)
    if p_pass <= alpha:
        outcome = PASS
    elif p_fail <= fail_alpha:
        outcome = FAIL
    else:
        outcome = INCONCLUSIVE
    return RateTest(outcome, k, n, p0, alpha, lower, upper, p_pass, p_fail)


def exact_size(n: int, p0: float, level: float) -> float:
    """P(PASS | p = p0) of the exact test on n episodes at ``level``: below the level, because
    the binomial is discrete (0.024 for n = 100, p0 = 0.9, level 0.05)."""

    if n <= 0 or level <= 0:
        return 0.0
    tails = binom_sf(np.arange(-1, n), n, p0)  # [k] = P(X ≥ k)
    passing = np.nonzero(tails <= level)[0]
    return float(tails[passing[0]]) if len(passing) else 0.0


def exact_fail_size(n: int, p0: float, level: float) -> float:
    """P(FAIL | p = p0) of the exact test on n episodes at ``level``."""

    if n <= 0 or level <= 0:
        return 0.0
    tails = binom_cdf(np.arange(n + 1), n, p0)  # [k] = P(X ≤ k)
    failing = np.nonzero(tails <= level)[0]
    return float(tails[failing[-1]]) if len(failing) else 0.0


def extension_levels(earlier_looks: tuple[int, ...], n: int, p0: float, alpha: float) -> tuple[float, float, float]:
    """(PASS level, FAIL level, alpha the earlier looks spent on PASS) for a run of n episodes after
    INCONCLUSIVE runs of ``earlier_looks`` episodes on the same seeds (each a prefix of the next).

    The looks form a group-sequential test computed exactly: the successes at each look are the
    previous look's plus a binomial of the added episodes, so dynamic programming over the count
    gives, at p = p0, the probability of having passed at some earlier look; this run's PASS
    threshold is the smallest count that keeps P(PASS at any look) ≤ alpha, and the returned
    level is that threshold's tail probability (the exact test at this level passes exactly
    there). PASS regions grow with p, so p0 is the worst case. The FAIL side is computed the same
    way, mirrored. Ignoring the other side's stops only overstates what was spent (conservative)."""
    looks = list(earlier_looks) + [n]
    if any(b <= a for a, b in zip(looks, looks[1:])) or looks[0] <= 0:
        raise ValueError(f"earlier_looks should increase and stay below episodes ({n}), received {list(earlier_looks)}")
    pass_level, spent_pass = _spend(looks, p0, alpha)
    fail_level, _ = _spend(looks, 1 - p0, alpha)  # failures mirror successes
    return pass_level, fail_level, spent_pass


def _spend(looks: list[int], p0: float, alpha: float) -> tuple[float, float]:
    """(the last look's level, what the earlier looks spent) for PASS on 'count ≥ threshold'."""
    pmf = functools.partial(binom_pmf, p=p0)
    alive, spent, previous, level = np.array([1.0]), 0.0, 0, alpha
    for i, m in enumerate(looks):
        alive = np.convolve(alive, pmf(m - previous))
        previous = m
        tail = np.cumsum(alive[::-1])[::-1]  # [k] = P(not passed before, count ≥ k now)
        ok = np.nonzero(spent + tail <= alpha + 1e-15)[0]
        k = int(ok[0]) if len(ok) else m + 1
        if i == len(looks) - 1:
            marginal = np.cumsum(pmf(m)[::-1])[::-1]
            level = float(marginal[k]) if k <= m else 0.0
            return level, spent
        spent += float(tail[k]) if k <= m else 0.0
        alive[k:] = 0.0
    return level, spent


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


#: the betting test's cap on the bet, as a share of the largest bet that keeps wealth positive
BET_CAP = 0.95


def bet_sizes(y: np.ndarray, alpha: float) -> np.ndarray:
    """Predictable bet sizes for values in [0, 1] along the last axis (Waudby-Smith & Ramdas 2023,
    "Estimating means of bounded random variables by betting", the predictable plug-in): the bet on
    episode t uses only episodes before it, and never the total number of episodes, so a longer
    run extends the same wealth path instead of starting a new one."""
    y = np.asarray(y, dtype=float)
    t = np.arange(1, y.shape[-1] + 1)
    mean = (0.5 + np.cumsum(y, axis=-1)) / (t + 1)
    var = (0.25 + np.cumsum((y - mean) ** 2, axis=-1)) / (t + 1)
    before = np.concatenate([np.full(y.shape[:-1] + (1,), 0.25), var[..., :-1]], axis=-1)
    return np.sqrt(2 * math.log(1 / alpha) / (before * t * np.log1p(t)))


def log_wealth_below(y: np.ndarray, m, alpha: float) -> np.ndarray:
    """The largest log wealth so far of a bettor against H0: E y ≥ m (evidence that the mean is
    below m), values in [0, 1]. Under H0 the wealth is a nonnegative supermartingale, so by
    Ville's inequality it ever reaches 1/alpha with probability ≤ alpha: valid at every n, on any
    distribution in [0, 1] however skewed, and however often it is looked at."""
    y = np.asarray(y, dtype=float)
    m = np.asarray(m, dtype=float)[..., None]
    lam = np.minimum(bet_sizes(y, alpha), BET_CAP / np.maximum(1 - m, 1e-12))
    return np.maximum.accumulate(np.cumsum(np.log1p(lam * (m - y)), axis=-1), axis=-1)


@dataclasses.dataclass(frozen=True)
class BoundedMeanTest:
    outcome: str
    mean: float
    upper: float  # the smallest limit that the betting test would show the mean to be below
    lower: float  # the largest limit it would show the mean to be above
    limit: float
    n: int
    range: float  # every value lies in [0, range]: what makes the test valid without normality
    p_below: float  # anytime-valid p-value of H0: mean ≥ limit (small → PASS)
    p_above: float  # of H0: mean ≤ limit (small → FAIL)
    method: str = "betting"


def bounded_mean_below(x, limit: float, alpha: float, value_range: float) -> BoundedMeanTest:
    """'mean < limit' for values known to lie in [0, value_range] (per-episode mean |torque| lies
    in [0, the actuator's force limit]): the betting test, valid without any normality."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        return BoundedMeanTest(INCONCLUSIVE, math.nan, math.inf, -math.inf, limit, 0, value_range, 1.0, 1.0)
    y = np.clip(x / value_range, 0.0, 1.0)
    m = min(max(limit / value_range, 0.0), 1.0)
    below = float(log_wealth_below(y, m, alpha)[-1])
    above = float(log_wealth_below(1 - y, 1 - m, alpha)[-1])
    p_below, p_above = min(1.0, math.exp(-below)), min(1.0, math.exp(-above))
    outcome = PASS if p_below <= alpha else FAIL if p_above <= alpha else INCONCLUSIVE
    grid = np.linspace(0.0, 1.0, 2001)
    shown_below = log_wealth_below(np.broadcast_to(y, (len(grid), n)), grid, alpha)[:, -1] >= math.log(1 / alpha)
    shown_above = log_wealth_below(np.broadcast_to(1 - y, (len(grid), n)), 1 - grid, alpha)[:, -1] >= math.log(1 / alpha)
    upper = float(grid[np.argmax(shown_below)]) * value_range if shown_below.any() else value_range
    lower = float(grid[len(grid) - 1 - np.argmax(shown_above[::-1])]) * value_range if shown_above.any() else 0.0
    return BoundedMeanTest(outcome, float(x.mean()), upper, lower, limit, n, value_range, p_below, p_above)
