"""Certifying the operating envelope: a covering design and an exact family-wise decision.

PASS claims "success >= target at every design point", FAIL claims "success < target at some
design point". Per point i with k_i successes in n_i episodes (independent seeds):

* PASS needs every point's exact one-sided Clopper-Pearson lower bound at level alpha to be
  >= target. This is an intersection-union test (Berger 1982): if some point truly has
  p_i < target, PASS requires that point's own test to reject, which happens with probability
  <= alpha, however many points there are. No multiplicity correction is needed for PASS, and
  adding one would only cost power (as for simgate's absolute requirements).
* FAIL needs some point's exact upper bound at level alpha / m to be < target (Bonferroni over
  the m points, which is exactly what Holm's step-down rejects first). If every point truly has
  p_i >= target, a false FAIL needs one of m tests at alpha / m to reject: probability <= alpha
  under any dependence.
* Otherwise INCONCLUSIVE (the budget ran out before either was shown).

`sequential` spends a budget in `looks` rounds on the points still undecided. Every look uses
alpha / looks for both claims (Bonferroni over looks), so the probability that any look makes a
false claim stays <= alpha whatever the stopping rule, with no exact-distribution assumptions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

#: covering-design points a search may certify: levels ** (envelope axes) grows fast (9 levels
#: on 8 axes is 43 million points, gigabytes before the first episode)
MAX_DESIGN_POINTS = 100_000
#: the looks `sequential` spends its budget in
LOOKS = 3


def design_points(widths, levels: int) -> int:
    """m of :func:`covering_design` without building it: ``widths``, each envelope axis' hi - lo."""
    return math.prod(levels if width > 0 else 1 for width in widths)


def episodes_to_pass(target: float, alpha: float, looks: int = LOOKS) -> int | None:
    """The fewest episodes at one point whose PASS side can ever reach ``target``: all of them
    successes, the exact lower bound (alpha / looks) ** (1 / n) >= target. None for target 1."""
    if target >= 1:
        return None
    if target <= 0:
        return 1
    return max(1, math.ceil(math.log(alpha / looks) / math.log(target) - 1e-12))


def covering_design(envelope_unit, levels: int) -> np.ndarray:
    """(m, d) unit-cube grid: `levels` evenly spaced values per envelope axis, corners included.

    An axis whose envelope is a single value (not in the envelope: held at nominal) contributes
    that value only, so m = levels ** (number of envelope axes).
    """
    env = np.asarray(envelope_unit, dtype=float)
    if levels < 2:
        raise ValueError("covering_design: levels must be >= 2 (the corners)")
    m = design_points([hi - lo for lo, hi in env], levels)
    if m > MAX_DESIGN_POINTS:  # the loader refuses such a search; never allocate it here either
        raise ValueError(f"covering_design: {m:,} points is more than {MAX_DESIGN_POINTS:,}")
    axes = [np.linspace(lo, hi, levels) if hi > lo else np.array([lo]) for lo, hi in env]
    return np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(env))


def lower_bound(k, n, level: float) -> np.ndarray:
    """Exact one-sided Clopper-Pearson lower bound: P(X >= k | p = bound) = level (0 when k = 0)."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(all="ignore"):
        out = beta.ppf(level, k, n - k + 1)
    return np.where(k <= 0, 0.0, np.nan_to_num(out, nan=0.0))


def upper_bound(k, n, level: float) -> np.ndarray:
    """Exact one-sided Clopper-Pearson upper bound: P(X <= k | p = bound) = level (1 when k = n)."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(all="ignore"):
        out = beta.ppf(1 - level, k + 1, n - k)
    return np.where(k >= n, 1.0, np.nan_to_num(out, nan=1.0))


@dataclass
class Certificate:
    status: str                 # "PASS" | "FAIL" | "INCONCLUSIVE"
    lower: np.ndarray           # per point, at level_pass
    upper: np.ndarray           # per point, at level_fail
    level: float                # the per-point level of the FAIL side (alpha / (m * looks))
    level_pass: float           # the per-point level of the PASS side (alpha / looks)
    alpha: float
    failing: list              # indices of the points shown below target

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lower"] = [float(v) for v in self.lower]
        out["upper"] = [float(v) for v in self.upper]
        out["failing"] = [int(i) for i in self.failing]
        return out


def decide(successes, trials, target: float, alpha: float, looks: int = 1) -> Certificate:
    """PASS / FAIL / INCONCLUSIVE for the design points (see the module docstring).

    `looks` > 1: this is one of that many pre-declared looks at growing counts; each look gets
    alpha / looks so the whole sequence keeps family-wise error <= alpha.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    m = max(len(k), 1)
    level_pass = alpha / looks
    level_fail = alpha / (m * looks)
    lower = lower_bound(k, n, level_pass)
    upper = upper_bound(k, n, level_fail)
    failing = [int(i) for i in np.flatnonzero(upper < target)]
    if failing:
        status = "FAIL"
    elif len(k) and np.all(lower >= target):
        status = "PASS"
    else:
        status = "INCONCLUSIVE"
    return Certificate(status, lower, upper, level_fail, level_pass, alpha, failing)


def sequential(evaluate_points, m: int, budget: int, target: float, alpha: float,
               looks: int = LOOKS, index_start: int = 0):
    """Spend `budget` episodes over `looks` rounds on the m points not yet decided.

    evaluate_points(point_indices (r,), episode_indices (r,)) -> success (r,) bool, called once
    per look with all rows of that look. A point is decided once its lower bound (at
    alpha / looks) reaches target or its upper bound (at alpha / (m looks)) falls below it;
    the run stops at the first FAIL. Each point's episode indices are index_start + j for its
    j-th episode (the same seeds whether the run stops early or not).
    Returns (Certificate, successes (m,), trials (m,), episodes used).
    """
    k = np.zeros(m, dtype=int)
    n = np.zeros(m, dtype=int)
    used = 0
    cert = decide(k, n, target, alpha, looks)
    for look in range(looks):
        undecided = np.flatnonzero((cert.lower < target) & (cert.upper >= target))
        left = budget - used
        if undecided.size == 0 or left < undecided.size:
            break
        per = left // (undecided.size * (looks - look))
        per = max(per, 1)
        rows = np.repeat(undecided, per)
        episodes = np.concatenate([index_start + n[i] + np.arange(per) for i in undecided])
        out = np.asarray(evaluate_points(rows, episodes), dtype=bool)
        np.add.at(k, rows, out.astype(int))
        np.add.at(n, rows, 1)
        used += len(rows)
        cert = decide(k, n, target, alpha, looks)
        if cert.status == "FAIL":
            break
    return cert, k, n, used
