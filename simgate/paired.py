"""Candidate against baseline on the same episodes (common random numbers), docs/statistics.md.

Episode i of a case meets the same seed, initial state and perturbation schedule for both
policies, so outcomes come in pairs. Only the discordant pairs carry evidence about a
difference: ``n10`` (baseline succeeded, candidate failed) and ``n01`` (the reverse).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class PairedRates:
    n: int
    n10: int  # baseline succeeded, candidate failed
    n01: int  # candidate succeeded, baseline failed
    p_worse: float  # one-sided exact McNemar: small means the candidate is worse
    margin: float  # δ of the non-inferiority test
    z_noninferior: float  # score statistic of H0: p_c − p_b ≤ −δ (large means not worse by δ)
    p_noninferior: float  # exact: the largest P(Z ≥ z) over the nuisance parameter (or the fallback)
    difference: float  # observed p_c − p_b
    p_worse_by_margin: float = 1.0  # exact p-value of H0: p_c − p_b ≥ −δ (small: worse by more than δ)
    calibration: str = "exact"  # how the score test's tails were found (exact enumeration or the fallback)


def mcnemar_worse(n10: int, n01: int) -> float:
    """One-sided exact McNemar p-value of 'the candidate fails where the baseline succeeds more
    often than the reverse'."""
    from simgate.distributions import binom_sf

    if n10 + n01 == 0:
        return 1.0
    return binom_sf(n10 - 1, n10 + n01, 0.5)


def noninferiority(n10: int, n01: int, n: int, margin: float) -> tuple[float, float]:
    """Score test (Nam 1997, Tango 1998) of H0: p_c − p_b ≤ −δ on paired binary outcomes:
    (z, one-sided p). The variance is taken at the restricted maximum-likelihood estimate of
    the discordant-cell probability under the null, so it works with zero discordant pairs too.

    Under H0 (q01 = q10 − δ) the log-likelihood n10·log q10 + n01·log(q10 − δ) + m·log(1 − 2·q10 + δ)
    is concave, and its stationary point solves 2n·q² − B·q + C = 0 with
    B = n10·(1 + 3δ) + n01·(1 + δ) + 2mδ and C = n10·δ·(1 + δ): the larger root, kept inside
    the parameter range (δ, (1 + δ)/2)."""
    from simgate.distributions import norm_sf

    if n == 0:
        return 0.0, 1.0
    if margin <= 0:
        raise ValueError(f"the non-inferiority margin should be > 0, received {margin}")
    z = float(_score_z(n10, n01, n, margin))
    return z, norm_sf(z)


def compare_rates(baseline, candidate, margin: float) -> PairedRates:
    """Paired tests on two equally long boolean outcome arrays in episode order."""
    b, c = np.asarray(baseline, dtype=bool), np.asarray(candidate, dtype=bool)
    n10, n01 = int((b & ~c).sum()), int((~b & c).sum())
    z, _ = noninferiority(n10, n01, len(b), margin)
    p_ni, p_worse, how = noninferiority_exact(n10, n01, len(b), margin)
    return PairedRates(len(b), n10, n01, mcnemar_worse(n10, n01), margin, z, p_ni,
                       float(c.mean() - b.mean()) if len(b) else 0.0, p_worse, how)


#: the most episodes for which the score test's tails are found by enumeration (n²/2 tables)
EXACT_MAX_N = 1000
#: the nuisance parameter (the candidate-only discordant rate q01) is scanned on this many points
_NUISANCE_POINTS = 120


def _score_z(n10, n01, n: int, margin: float):
    """The score statistic of :func:`noninferiority` (its one implementation), for one table or
    arrays of tables (n > 0, margin > 0)."""
    n10, n01 = np.asarray(n10, dtype=float), np.asarray(n01, dtype=float)
    concordant = n - n10 - n01
    b = n10 * (1 + 3 * margin) + n01 * (1 + margin) + 2 * concordant * margin
    c = n10 * margin * (1 + margin)
    q10 = np.clip((b + np.sqrt(np.maximum(b * b - 8 * n * c, 0.0))) / (4 * n), margin, (1 + margin) / 2)
    return ((n01 - n10) / n + margin) / np.sqrt(np.maximum(2 * q10 - margin - margin ** 2, 1e-300) / n)


@functools.lru_cache(maxsize=32)
def score_tails(n: int, margin: float):
    """Every table (n10, n01) of n pairs ordered by its score z, with the exact size of 'reject when
    Z ≥ z' and of 'reject when Z ≤ z', each the largest over the nuisance parameter on the margin
    (p_c − p_b = −δ: q10 = q01 + δ, q01 ∈ [0, (1 − δ)/2]). On the margin the two one-sided nulls
    meet, and away from it each rejection is less likely, so these are the tests' exact sizes,
    the way the SPRT's line is calibrated by dynamic programming. (z sorted, size ≥, size ≤)."""
    from scipy.special import gammaln, xlogy

    n10, n01 = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = n10 + n01 <= n
    n10, n01 = n10[keep].astype(float), n01[keep].astype(float)
    rest = n - n10 - n01
    z = _score_z(n10, n01, n, margin)
    order = np.argsort(-z, kind="stable")
    n10, n01, rest, z = n10[order], n01[order], rest[order], z[order]
    log_ways = gammaln(n + 1) - gammaln(n10 + 1) - gammaln(n01 + 1) - gammaln(rest + 1)
    top = (1 - margin) / 2
    grid = np.unique(np.concatenate([np.linspace(0.0, top, _NUISANCE_POINTS // 2),
                                     np.geomspace(1e-4, top, _NUISANCE_POINTS // 2)]))
    at_least = np.zeros(len(z))
    at_most = np.zeros(len(z))
    for q in grid:
        pmf = np.exp(log_ways + xlogy(n10, q + margin) + xlogy(n01, q) + xlogy(rest, 1 - 2 * q - margin))
        cum = np.cumsum(pmf)
        at_least = np.maximum(at_least, cum)
        at_most = np.maximum(at_most, cum[-1] - cum + pmf)
    # tied z: a test rejects all of a tie or none of it
    desc = -z
    at_least = at_least[np.searchsorted(desc, desc, side="right") - 1]
    at_most = at_most[np.searchsorted(desc, desc, side="left")]
    return z, np.minimum(at_least, 1.0), np.minimum(at_most, 1.0)


def noninferiority_exact(n10: int, n01: int, n: int, margin: float) -> tuple[float, float, str]:
    """(p of H0: p_c − p_b ≤ −δ, p of H0: p_c − p_b ≥ −δ, how): exact p-values of the score
    statistic, the largest tail probability over the nuisance parameter, by enumeration of every
    table of n pairs (cached per (n, δ); n ≤ EXACT_MAX_N, about 4 s once per process at n = 1000).
    Beyond that the normal tails are multiplied by 4, a conservative choice that is not proven:
    up to n = 1000 the enumerated worst case exceeds the normal tail by at most 3× near α
    (docs/statistics.md)."""
    from simgate.distributions import norm_sf

    if n == 0:
        return 1.0, 1.0, "no episodes"
    z = float(_score_z(n10, n01, n, margin))
    if n > EXACT_MAX_N:
        return min(1.0, 4 * norm_sf(z)), min(1.0, 4 * norm_sf(-z)), f"normal tails × 4 (n > {EXACT_MAX_N})"
    zs, at_least, at_most = score_tails(n, round(float(margin), 12))
    i = int(np.argmin(np.abs(zs - z)))
    return float(at_least[i]), float(at_most[i]), "exact"


def unpaired_worse(baseline, candidate) -> float:
    """The same question without pairing: one-sided Fisher exact test of 'candidate succeeds
    less often' on two independent samples (what a gate without common random numbers can do)."""
    from simgate.distributions import hypergeom_cdf

    b, c = np.asarray(baseline, dtype=bool), np.asarray(candidate, dtype=bool)
    # the candidate's successes among all successes, drawn as the candidate's share of episodes
    successes = int(c.sum()) + int(b.sum())
    return hypergeom_cdf(int(c.sum()), len(c) + len(b), len(c), successes)


def episodes_to_flag(baseline, candidate, alpha: float, test) -> int | None:
    """The first n (episode-index order) at which ``test(b[:n], c[:n])`` falls to ``alpha`` or below."""
    for n in range(1, len(baseline) + 1):
        if test(baseline[:n], candidate[:n]) <= alpha:
            return n
    return None


def ratio_regression(candidate, baseline, share: float, value_range: float, alpha: float) -> dict:
    """Is the candidate's mean (e.g. per-episode mean |torque| of a joint) above (1 + share) × the
    baseline's? Tested directly on d_i = c_i − (1 + share)·b_i, one value per paired episode: a
    margin taken from the baseline's own sample mean and then treated as fixed is not a test of
    the ratio. Both lie in [0, value_range], so d lies in [−(1 + share)·R, R] and the betting test
    (:func:`simgate.stats.log_wealth_below`) is valid on any distribution in that range.
    ``p_regression``: anytime-valid p-value of H0: mean(d) ≤ 0 (small: up by more than the share);
    ``p_not_higher``: of H0: mean(d) ≥ 0 (small: shown within the share)."""
    from simgate.stats import log_wealth_below

    c, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    d = c - (1 + share) * b
    low, width = -(1 + share) * value_range, (2 + share) * value_range
    zero = -low / width  # d = 0 on the [0, 1] scale
    out = {"n": len(d), "mean_difference": float(d.mean()) if len(d) else 0.0, "share": share, "range": value_range,
           "baseline_mean": float(b.mean()) if len(b) else 0.0, "candidate_mean": float(c.mean()) if len(c) else 0.0,
           "p_regression": 1.0, "p_not_higher": 1.0}
    if not len(d) or not math.isfinite(width) or width <= 0:
        return out
    y = np.clip((d - low) / width, 0.0, 1.0)
    up = float(log_wealth_below(1 - y, 1 - zero, alpha)[-1])
    down = float(log_wealth_below(y, zero, alpha)[-1])
    out["p_regression"], out["p_not_higher"] = min(1.0, math.exp(-up)), min(1.0, math.exp(-down))
    return out


@functools.lru_cache(maxsize=1024)
def _mcnemar_critical(n: int, level: float) -> np.ndarray:
    """[D] = the smallest n10 out of D discordant pairs that the exact McNemar test flags at
    ``level`` (D + 1: none), by bisection on all D at once (the tail falls as n10 grows)."""
    from scipy.special import bdtrc

    d = np.arange(n + 1)
    low, high = np.zeros(n + 1, dtype=np.int64), d + 1  # flagged at high (D + 1: vacuously), maybe at low

    def flagged(k):  # P(n10 ≥ k | D) ≤ level
        tail = np.where(k <= 0, 1.0, np.where(k > d, 0.0, bdtrc(np.clip(k - 1, 0, np.maximum(d - 1, 0)), d, 0.5)))
        return tail <= level

    for _ in range(int(np.ceil(np.log2(n + 2))) + 1):
        mid = (low + high) // 2
        hit = flagged(mid)
        high, low = np.where(hit, mid, high), np.where(hit, low, mid)
    return np.where(flagged(low), low, high).astype(float)


def mcnemar_power(n: int, baseline_rate: float, drop: float, level: float) -> float:
    """Exact power of the one-sided McNemar test at ``level`` on n pairs when the candidate's rate
    is ``drop`` below the baseline's. Discordance is set by assuming the two policies fail
    independently given the seed's rate (no positive correlation): the most discordant pairs
    a non-negatively correlated pair of policies can have, hence the least power. Positively
    correlated failures (the usual case: hard seeds are hard for both) only add power."""
    from scipy.special import bdtrc, gammaln, xlog1py, xlogy

    pb = baseline_rate
    pc = max(pb - drop, 0.0)
    q10, q01 = pb * (1 - pc), (1 - pb) * pc
    q = q10 + q01
    if n <= 0 or q <= 0:
        return 0.0
    d = np.arange(n + 1)
    # xlogy/xlog1py: 0·log 0 = 0, so q = 1 (every pair discordant) gives its one certain count
    with np.errstate(divide="ignore"):
        log_pmf = gammaln(n + 1) - gammaln(d + 1) - gammaln(n - d + 1) + xlogy(d, q) + xlog1py(n - d, -q)
    k = _mcnemar_critical(n, level)
    kk = k - 1  # flagged when n10 > k - 1
    tail = np.where(kk < 0, 1.0, np.where(kk >= d, 0.0, bdtrc(np.clip(kk, 0, np.maximum(d - 1, 0)), d, q10 / q)))
    return float(np.sum(np.exp(log_pmf) * tail))


def detectable_drop(n: int, baseline_rate: float, level: float, power: float = 0.9) -> float | None:
    """The smallest drop of the success rate (in steps of 0.005) that the McNemar test at ``level``
    flags with probability ≥ ``power`` on n pairs (:func:`mcnemar_power`'s assumption); None if
    not even a drop to zero is."""
    for drop in np.arange(0.005, baseline_rate + 1e-9, 0.005):
        if mcnemar_power(n, baseline_rate, float(drop), level) >= power:
            return round(float(drop), 3)
    return None


def window_power(n: int, drop: float, baseline_rate: float, level: float) -> float:
    """The least power of the McNemar test at ``level`` over n ... n + 20 pairs (the power curve
    is saw-toothed: one n is no promise for the next)."""
    return min(mcnemar_power(m, baseline_rate, drop, level) for m in range(n, n + 21, 5))


def approximate_episodes(drop: float, power: float, baseline_rate: float, level: float) -> int:
    """About the n :func:`episodes_for` would find, from the normal approximation (Connor 1987)
    with :func:`mcnemar_power`'s discordance: cheap where the exact search is not (100,000 pairs
    cost it tens of seconds)."""
    from statistics import NormalDist

    pc = max(baseline_rate - drop, 0.0)
    psi = baseline_rate * (1 - pc) + (1 - baseline_rate) * pc  # discordant pairs' share
    delta = baseline_rate - pc
    quantile = NormalDist().inv_cdf
    z = quantile(1 - level) * math.sqrt(psi) + quantile(power) * math.sqrt(max(psi - delta ** 2, 0.0))
    return max(1, math.ceil((z / delta) ** 2))


def episodes_for(drop: float, power: float, baseline_rate: float, level: float, most: int = 20000) -> int:
    """The smallest n from which the McNemar test at ``level`` keeps power ≥ ``power`` against the
    drop over the next 20 n (the power curve is saw-toothed); doubling then bisection. ``most``
    when even it does not (see :func:`window_power`)."""
    def ok(n: int) -> bool:
        return all(mcnemar_power(m, baseline_rate, drop, level) >= power for m in range(n, n + 21, 5))

    high = 16
    while high < most and not ok(high):
        high *= 2
    high = min(high, most)
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if ok(mid) else (mid, high)
    return high


def holm(pvalues: dict[str, float], alpha: float) -> dict[str, bool]:
    """Holm's step-down: which hypotheses are rejected with family-wise error ≤ alpha."""
    order = sorted(pvalues, key=lambda k: (pvalues[k], k))
    out = dict.fromkeys(pvalues, False)
    m = len(order)
    for i, key in enumerate(order):
        if pvalues[key] > alpha / (m - i):
            break
        out[key] = True
    return out


def benjamini_hochberg(pvalues: dict[str, float], alpha: float) -> dict[str, bool]:
    """Which hypotheses Benjamini–Hochberg rejects at false-discovery rate alpha."""
    if not pvalues:
        return {}
    # reject the k smallest, k the largest rank with p_(k) <= k·alpha/m
    order = sorted(pvalues, key=lambda k: (pvalues[k], k))
    m = len(order)
    last = max((i + 1 for i, key in enumerate(order) if pvalues[key] <= (i + 1) * alpha / m), default=0)
    rejected = set(order[:last])
    return {k: k in rejected for k in pvalues}
