"""Candidate against baseline on the same episodes (common random numbers), docs/statistics.md.

Episode i of a case meets the same seed, initial state and perturbation schedule for both
policies, so outcomes come in pairs. Only the discordant pairs carry evidence about a
difference: ``n10`` (baseline succeeded, candidate failed) and ``n01`` (the reverse).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from statistics import NormalDist

import numpy as np

from simgate.distributions import binom_sf, hypergeom_cdf, norm_sf
from simgate.stats import log_wealth_below


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
#: :func:`score_tails` scans the nuisance parameter (the candidate-only discordant rate q01) on
#: this many points, evenly spaced on the scale of :func:`_nuisance_grid`
_NUISANCE_POINTS = 120
#: the grid step for one table's p-value (:func:`_largest_tail`), in standard errors of q01 (at most);
#: 1.0 already found every supremum that a 0.02 step did, on 528 tables with n 1–1000, δ 0.01–0.29
_NUISANCE_STEP = 0.5
#: golden-section steps around each grid maximum: the bracket (two grid steps) shrinks by 0.618⁴⁰ ≈ 4e-9
_GOLDEN_STEPS = 40
#: the most local maxima of the grid that are refined, highest first
_REFINED_PEAKS = 16


def _score_z(n10, n01, n: int, margin: float):
    """The score statistic of :func:`noninferiority` (its one implementation), for one table or
    arrays of tables (n > 0, margin > 0)."""
    n10, n01 = np.asarray(n10, dtype=float), np.asarray(n01, dtype=float)
    concordant = n - n10 - n01
    b = n10 * (1 + 3 * margin) + n01 * (1 + margin) + 2 * concordant * margin
    c = n10 * margin * (1 + margin)
    q10 = np.clip((b + np.sqrt(np.maximum(b * b - 8 * n * c, 0.0))) / (4 * n), margin, (1 + margin) / 2)
    return ((n01 - n10) / n + margin) / np.sqrt(np.maximum(2 * q10 - margin - margin ** 2, 1e-300) / n)


def _nuisance_grid(n: int, margin: float, points: int | None = None, step: float | None = None) -> np.ndarray:
    """Values of the nuisance parameter q01 on the margin, from 0 to (1 − δ)/2 (both included),
    evenly spaced in φ(q) = √n·(2√(q + δ) + 2√q − 2√(1 − δ − 2q)): either ``points`` of them or as
    many as make the step ``step``. φ' = √n·(1/√(q + δ) + 1/√q + 2/√(1 − δ − 2q)) is at least the
    square root of the Fisher information of q01 in the n pairs, so a step h in φ is at most h
    standard errors: the points crowd near both ends, where the tail probabilities change fastest
    (q01 → 0, and q01 → (1 − δ)/2 where concordant pairs become rare)."""
    top = (1 - margin) / 2

    def phi(q):
        return 2 * np.sqrt(q + margin) + 2 * np.sqrt(q) - 2 * np.sqrt(np.maximum(1 - margin - 2 * q, 0.0))

    low, high = float(phi(0.0)), float(phi(top))
    if points is None:
        points = int(np.ceil(math.sqrt(n) * (high - low) / step)) + 1
    target = np.linspace(low, high, max(points, 3))
    a, b = np.zeros_like(target), np.full_like(target, top)
    for _ in range(64):  # bisection: φ increases
        mid = (a + b) / 2
        below = phi(mid) < target
        a, b = np.where(below, mid, a), np.where(below, b, mid)
    q = (a + b) / 2
    q[0], q[-1] = 0.0, top
    return q


@functools.lru_cache(maxsize=32)
def score_tails(n: int, margin: float):
    """Every table (n10, n01) of n pairs ordered by its score z, with the size of 'reject when
    Z ≥ z' and of 'reject when Z ≤ z', each the largest over the nuisance parameter on the margin
    (p_c − p_b = −δ: q10 = q01 + δ, q01 ∈ [0, (1 − δ)/2]). On the margin the two one-sided nulls
    meet, and away from it each rejection is less likely, so these are the tests' sizes, the way
    the SPRT's line is calibrated by dynamic programming. (z sorted, size ≥, size ≤).

    The whole table takes the largest over :data:`_NUISANCE_POINTS` points of
    :func:`_nuisance_grid` only (about 0.1 % below the supremum near α at n = 1000, 2–3 % on the
    former evenly and log-spaced grid); :func:`noninferiority_exact` finds the supremum itself for
    the one table it is asked about."""
    from scipy.special import gammaln, xlogy

    n10, n01 = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = n10 + n01 <= n
    n10, n01 = n10[keep].astype(float), n01[keep].astype(float)
    rest = n - n10 - n01
    z = _score_z(n10, n01, n, margin)
    order = np.argsort(-z, kind="stable")
    n10, n01, rest, z = n10[order], n01[order], rest[order], z[order]
    log_ways = gammaln(n + 1) - gammaln(n10 + 1) - gammaln(n01 + 1) - gammaln(rest + 1)
    at_least = np.zeros(len(z))
    at_most = np.zeros(len(z))
    for q in _nuisance_grid(n, margin, points=_NUISANCE_POINTS):
        # 1 − 2q − δ rounds to about −3e-17 at q = (1 − δ)/2 for some δ: xlogy would give NaN
        concordant = max(1 - 2 * q - margin, 0.0)
        pmf = np.exp(log_ways + xlogy(n10, q + margin) + xlogy(n01, q) + xlogy(rest, concordant))
        cum = np.cumsum(pmf)
        at_least = np.maximum(at_least, cum)
        at_most = np.maximum(at_most, cum[-1] - cum + pmf)
    # tied z: a test rejects all of a tie or none of it
    desc = -z
    at_least = at_least[np.searchsorted(desc, desc, side="right") - 1]
    at_most = at_most[np.searchsorted(desc, desc, side="left")]
    return z, np.minimum(at_least, 1.0), np.minimum(at_most, 1.0)


@functools.lru_cache(maxsize=4)
def _score_table(n: int, margin: float) -> np.ndarray:
    """z of every table as an (n + 1) × (n + 1) array indexed [n10, n01]; NaN where n10 + n01 > n."""
    n10, n01 = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    z = np.where(n10 + n01 <= n, _score_z(n10, n01, n, margin), np.nan)
    z.flags.writeable = False
    return z


def _row_runs(region: np.ndarray):
    """A set of tables (a boolean [n10, n01] array) as runs of consecutive n01 in each row:
    (n10, first n01, last n01), arrays."""
    padded = np.zeros((region.shape[0], region.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = region
    step = np.diff(padded, axis=1)
    rows, first = np.nonzero(step == 1)
    _, after = np.nonzero(step == -1)
    return rows, first, after - 1


def _tail_probability(q, n: int, margin: float, runs) -> np.ndarray:
    """P(the table falls in the region given by its ``runs``) at each nuisance value in ``q``, on
    the margin (q10 = q01 + δ): n10 ~ Bin(n, q10) and, given n10, n01 ~ Bin(n − n10, q01/(1 − q10)),
    so each run is a binomial probability times a binomial interval, O(rows) per q."""
    from scipy.special import bdtr, bdtrc, gammaln, xlog1py, xlogy

    rows, first, last = runs
    q = np.atleast_1d(np.asarray(q, dtype=float))[:, None]
    q10 = q + margin
    others = n - rows
    share = np.clip(q / (1 - q10), 0.0, 1.0)
    row_pmf = np.exp(gammaln(n + 1) - gammaln(rows + 1) - gammaln(others + 1)
                     + xlogy(rows, q10) + xlog1py(others, -q10))
    # interval [first, last] of Bin(others, share), without cancellation at either end
    to_end, from_start = last >= others, first <= 0
    inside = np.ones(np.broadcast_shapes(q.shape, rows.shape))
    upper = to_end & ~from_start  # P(X ≥ first)
    inside[:, upper] = bdtrc(first[upper] - 1, others[upper], share)
    lower = from_start & ~to_end  # P(X ≤ last)
    inside[:, lower] = bdtr(last[lower], others[lower], share)
    middle = ~to_end & ~from_start
    if middle.any():
        inside[:, middle] = (bdtr(last[middle], others[middle], share)
                             - bdtr(first[middle] - 1, others[middle], share))
    return np.clip(row_pmf * inside, 0.0, None).sum(axis=1)


def _largest_tail(n: int, margin: float, runs) -> float:
    """sup over q01 ∈ [0, (1 − δ)/2] of :func:`_tail_probability`: the largest value on
    :func:`_nuisance_grid` with step :data:`_NUISANCE_STEP`, then a golden-section search between
    the neighbours of each of the highest local maxima of the grid (the tail probability is not
    unimodal in q01: it ripples with the lattice of tables, most near the ends). A bracket is
    dropped once it cannot beat the best value found: with ℓ the log-likelihood of a table,
    |P''(A)| ≤ Σ p·|ℓ'' + ℓ'²| ≤ 2·I(q01) for any set of tables A, so a maximum inside [a, b] is
    at most I_max·(b − a)² above the bracket's best point."""
    if len(runs[0]) == 0:
        return 0.0
    grid = _nuisance_grid(n, margin, step=_NUISANCE_STEP)
    values = _tail_probability(grid, n, margin, runs)
    best = float(values.max())
    padded = np.concatenate([[-np.inf], values, [-np.inf]])
    peaks = np.nonzero((values >= padded[:-2]) & (values >= padded[2:]) & (values > 0))[0]
    peaks = peaks[np.argsort(-values[peaks], kind="stable")][:_REFINED_PEAKS]
    if not len(peaks):
        return min(best, 1.0)

    def information(q):  # Fisher information of q01 in n pairs on the margin; convex in q01
        with np.errstate(divide="ignore"):
            return n * (1 / (q + margin) + 1 / q + 4 / np.maximum(1 - margin - 2 * q, 0.0))

    golden = (math.sqrt(5) - 1) / 2
    a, b = grid[np.maximum(peaks - 1, 0)], grid[np.minimum(peaks + 1, len(grid) - 1)]
    c, d = b - golden * (b - a), a + golden * (b - a)
    fc, fd = _tail_probability(c, n, margin, runs), _tail_probability(d, n, margin, runs)
    best = max(best, float(fc.max()), float(fd.max()))
    for _ in range(_GOLDEN_STEPS):
        room = np.maximum(information(a), information(b)) * (b - a) ** 2
        keep = np.maximum(fc, fd) + room >= best
        if not keep.any():
            break
        a, b, c, d, fc, fd = a[keep], b[keep], c[keep], d[keep], fc[keep], fd[keep]
        left = fc >= fd  # the maximum is in [a, d]: d becomes the right end, c the new d
        a, b = np.where(left, a, c), np.where(left, d, b)
        new = np.where(left, b - golden * (b - a), a + golden * (b - a))
        f_new = _tail_probability(new, n, margin, runs)
        best = max(best, float(f_new.max()))
        c, d, fc, fd = (np.where(left, new, d), np.where(left, c, new),
                        np.where(left, f_new, fd), np.where(left, fc, f_new))
    return min(best, 1.0)


@functools.lru_cache(maxsize=4096)
def _exact_tails(n10: int, n01: int, n: int, margin: float) -> tuple[float, float]:
    """(sup P(Z ≥ z), sup P(Z ≤ z)) over the nuisance for the observed table's z (ties included)."""
    z = _score_table(n, margin)
    observed = z[n10, n01]
    with np.errstate(invalid="ignore"):  # NaN outside the triangle: in neither region
        at_least, at_most = z >= observed, z <= observed
    return _largest_tail(n, margin, _row_runs(at_least)), _largest_tail(n, margin, _row_runs(at_most))


def noninferiority_exact(n10: int, n01: int, n: int, margin: float) -> tuple[float, float, str]:
    """(p of H0: p_c − p_b ≤ −δ, p of H0: p_c − p_b ≥ −δ, how): exact p-values of the score
    statistic, the largest tail probability over the nuisance parameter (q01 on the margin), of
    the tables of n pairs whose z is at least (at most) the observed one. The tail is summed row by
    row of n10 (binomial intervals, :func:`_tail_probability`) and its supremum found on a grid of
    half a standard error of q01, refined around the grid's maxima (:func:`_largest_tail`): the
    former 120-point grid missed it (0.0498 reported where the size is 0.0504 at n = 500, δ = 0.05).
    About 0.15 s at n = 1000 (no table of all n²/2 tables is built), cached per table. n ≤ EXACT_MAX_N; beyond it the normal tails are
    multiplied by 4, a conservative choice that is not proven: up to n = 1000 the worst case
    exceeds the normal tail by at most 3× near α (docs/statistics.md)."""

    if n == 0:
        return 1.0, 1.0, "no episodes"
    if not 0 < margin < 1:
        raise ValueError(f"the non-inferiority margin should be in (0, 1), received {margin}")
    n10, n01, n = int(n10), int(n01), int(n)
    if n10 < 0 or n01 < 0 or n10 + n01 > n:
        raise ValueError(f"discordant pairs {n10} + {n01} do not fit in {n} pairs")
    if n > EXACT_MAX_N:
        z = float(_score_z(n10, n01, n, margin))
        return min(1.0, 4 * norm_sf(z)), min(1.0, 4 * norm_sf(-z)), f"normal tails × 4 (n > {EXACT_MAX_N})"
    p_at_least, p_at_most = _exact_tails(n10, n01, n, round(float(margin), 12))
    return p_at_least, p_at_most, "exact"


def unpaired_worse(baseline, candidate) -> float:
    """The same question without pairing: one-sided Fisher exact test of 'candidate succeeds
    less often' on two independent samples (what a gate without common random numbers can do)."""

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
