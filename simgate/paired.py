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
    from scipy.stats import binomtest

    if n10 + n01 == 0:
        return 1.0
    return float(binomtest(n10, n10 + n01, 0.5, alternative="greater").pvalue)


def noninferiority(n10: int, n01: int, n: int, margin: float) -> tuple[float, float]:
    """Score test (Nam 1997, Tango 1998) of H0: p_c − p_b ≤ −δ on paired binary outcomes:
    (z, one-sided p). The variance is taken at the restricted maximum-likelihood estimate of
    the discordant-cell probability under the null, so it works with zero discordant pairs too."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import norm

    if n == 0:
        return 0.0, 1.0
    if margin <= 0:
        raise ValueError(f"the non-inferiority margin should be > 0, received {margin}")
    concordant = n - n10 - n01

    def minus_loglik(q10: float) -> float:  # under H0: q01 = q10 − δ
        q01 = q10 - margin
        return -(n10 * math.log(q10) + n01 * math.log(q01) + concordant * math.log(1 - q10 - q01))

    eps = 1e-12
    q10 = minimize_scalar(minus_loglik, bounds=(margin + eps, (1 + margin) / 2 - eps), method="bounded",
                          options={"xatol": 1e-12}).x
    variance = max(2 * q10 - margin - margin ** 2, 1e-300) / n
    z = ((n01 - n10) / n + margin) / math.sqrt(variance)
    return float(z), float(norm.sf(z))


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
    from scipy.stats import fisher_exact

    b, c = np.asarray(baseline, dtype=bool), np.asarray(candidate, dtype=bool)
    table = [[int(c.sum()), int((~c).sum())], [int(b.sum()), int((~b).sum())]]
    return float(fisher_exact(table, alternative="less").pvalue)


def episodes_to_flag(baseline, candidate, alpha: float, test) -> int | None:
    """The first n (episode-index order) at which ``test(b[:n], c[:n])`` falls to ``alpha`` or below."""
    for n in range(1, len(baseline) + 1):
        if test(baseline[:n], candidate[:n]) <= alpha:
            return n
    return None


def paired_mean_not_higher(candidate, baseline, margin: float, alpha: float) -> tuple[str, float, float]:
    """Paired one-sided t-test of mean(c − b) < margin (e.g. torque not up by more than margin):
    (outcome, mean difference, p-value)."""
    from scipy.stats import ttest_1samp

    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    if len(d) < 2:
        return "INCONCLUSIVE", float(d.mean()) if len(d) else math.nan, 1.0
    mean = float(d.mean())
    if np.ptp(d) <= 1e-12 * max(1.0, abs(mean)):  # no spread: the t statistic is undefined, the answer is not
        return ("PASS" if mean < margin else "FAIL"), mean, 0.0 if mean < margin else 1.0
    p = float(ttest_1samp(d, margin, alternative="less").pvalue)
    worse = float(ttest_1samp(d, margin, alternative="greater").pvalue)
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
    from scipy.stats import false_discovery_control

    if not pvalues:
        return {}
    keys = sorted(pvalues)
    adjusted = false_discovery_control([pvalues[k] for k in keys], method="bh")
    return {k: bool(a <= alpha) for k, a in zip(keys, adjusted)}
