"""Candidate against baseline on the same episodes (common random numbers), ../shared/STATS.md.

Episode i of a case meets the same seed, initial state and perturbation schedule for both
policies, so outcomes come in pairs. Only the discordant pairs carry evidence about a
difference: ``n10`` (baseline succeeded, candidate failed) and ``n01`` (the reverse).
"""

from __future__ import annotations

import dataclasses
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
    p_noninferior: float
    difference: float  # observed p_c − p_b


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
    concordant = n - n10 - n01
    b = n10 * (1 + 3 * margin) + n01 * (1 + margin) + 2 * concordant * margin
    c = n10 * margin * (1 + margin)
    q10 = (b + math.sqrt(max(b * b - 8 * n * c, 0.0))) / (4 * n)
    q10 = min(max(q10, margin), (1 + margin) / 2)
    variance = max(2 * q10 - margin - margin ** 2, 1e-300) / n
    z = ((n01 - n10) / n + margin) / math.sqrt(variance)
    return float(z), norm_sf(z)


def compare_rates(baseline, candidate, margin: float) -> PairedRates:
    """Paired tests on two equally long boolean outcome arrays in episode order."""
    b, c = np.asarray(baseline, dtype=bool), np.asarray(candidate, dtype=bool)
    n10, n01 = int((b & ~c).sum()), int((~b & c).sum())
    z, p_ni = noninferiority(n10, n01, len(b), margin)
    return PairedRates(len(b), n10, n01, mcnemar_worse(n10, n01), margin, z, p_ni,
                       float(c.mean() - b.mean()) if len(b) else 0.0)


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


def paired_mean_not_higher(candidate, baseline, margin: float, alpha: float) -> tuple[str, float, float]:
    """Paired one-sided t-test of mean(c − b) < margin (e.g. torque not up by more than margin):
    (outcome, mean difference, p-value)."""
    from simgate.distributions import t_cdf

    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    if len(d) < 2:
        return "INCONCLUSIVE", float(d.mean()) if len(d) else math.nan, 1.0
    mean = float(d.mean())
    if np.ptp(d) <= 1e-12 * max(1.0, abs(mean)):  # no spread: the t statistic is undefined, the answer is not
        return ("PASS" if mean < margin else "FAIL"), mean, 0.0 if mean < margin else 1.0
    t = (mean - margin) / (float(np.std(d, ddof=1)) / math.sqrt(len(d)))
    p, worse = t_cdf(t, len(d) - 1), t_cdf(-t, len(d) - 1)
    outcome = "PASS" if p <= alpha else "FAIL" if worse <= alpha else "INCONCLUSIVE"
    return outcome, mean, p


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
