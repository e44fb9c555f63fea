"""Per-axis failure boundary: where success crosses the target, with a profile-likelihood interval.

Model: along one axis (others at nominal), logit p(x) = logit(target) + b (z - z*), with
z = (x - low) / (high - low). z* is the crossing, b the slope (either sign: success may fall
with a push's force or rise with friction). Both are fitted by maximum likelihood from the
binomial counts at each level, b bounded by |b| <= B_MAX so separated data (every episode below
some level succeeds, every one above fails) still has a maximum.

Interval for z*: the profile-likelihood set {z*: 2 (l_hat - max_b l(z*, b)) <= chi2_1(conf)}.
It is invariant to reparametrisation, needs no delta-method normal approximation of a ratio
(which Fieller would fix only for a linear model) and stays one-sided-open when the data cannot
bound the crossing. Coverage is checked by simulation in tests/test_search_math.py and reported
in docs/search.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

import numpy as np

B_MAX = 200.0          # slope bound in logits per axis range (10 %-90 % over 2 % of the range)
_WINDOW = (-1.0, 2.0)  # crossing values scanned, in range units: the range itself is [0, 1]
_GRID = 601


@dataclass(frozen=True)
class Boundary:
    """estimate / low / high in axis units (None when undefined; see `estimate`)."""

    estimate: float | None
    low: float | None
    high: float | None
    status: str                 # "crosses" | "holds_everywhere" | "fails_everywhere"
    side: str | None = None     # "below": success >= target below the crossing; "above": above it
    clipped: bool = False       # the interval reached the end of the range (it is open there)
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)


def _chi2_crit(confidence: float) -> float:
    from scipy.stats import chi2

    return float(chi2.ppf(confidence, 1))


def _loglik(eta, k, n):
    return np.sum(k * eta - n * np.logaddexp(0.0, eta), axis=-1)


def _profile(zstars: np.ndarray, z, k, n, c: float, bmax: float = B_MAX):
    """max over |b| <= bmax of the log-likelihood at each crossing z* (vectorised bisection).

    For fixed z* the log-likelihood is concave in b, so its derivative is decreasing and
    bisection on the derivative's sign finds the maximiser exactly (no step-size tuning).
    """
    D = z[None, :] - zstars[:, None]
    lo = np.full(len(zstars), -bmax)
    hi = np.full(len(zstars), bmax)
    for _ in range(44):
        mid = 0.5 * (lo + hi)
        p = 0.5 * (1.0 + np.tanh(0.5 * (c + mid[:, None] * D)))
        slope = np.sum((k - n * p) * D, axis=1)
        up = slope > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    b = 0.5 * (lo + hi)
    return _loglik(c + b[:, None] * D, k, n), b


def _to_steps(b: Boundary, step: float | None, lo_x: float, hi_x: float) -> Boundary:
    """Widen the interval to whole steps: on a stepped axis (a delay in whole physics steps) no
    run can land between two steps, so the data cannot place the crossing more finely than that,
    and an interval inside one step would only repeat the logistic curve's shape."""
    if not step or b.low is None or b.high is None:
        return b
    low = max(lo_x, math.floor(b.low / step + 1e-9) * step)
    high = min(hi_x, math.ceil(b.high / step - 1e-9) * step)
    return dataclasses.replace(b, low=float(low), high=float(high))


def estimate(levels, successes, trials, target: float, confidence: float = 0.95,
             low: float | None = None, high: float | None = None, step: float | None = None) -> Boundary:
    """Crossing of `target` along one axis from counts per level (described at `_estimate`);
    with `step`, the interval widened to whole steps (`_to_steps`)."""
    return _to_steps(_estimate(levels, successes, trials, target, confidence, low, high),
                     step, *_range(levels, low, high))


def _range(levels, low, high):
    x = np.asarray(levels, dtype=float)
    return (float(np.min(x)) if low is None else float(low)), (float(np.max(x)) if high is None else float(high))


def _estimate(levels, successes, trials, target: float, confidence: float = 0.95,
              low: float | None = None, high: float | None = None) -> Boundary:
    """Crossing of `target` along one axis from counts per level.

    `low`/`high` give the axis range (default: the smallest/largest level); statuses refer to
    it: "holds_everywhere" = the fitted success stays >= target over the whole range ("holds up
    to the end of the range"), "fails_everywhere" = below target over the whole range. For
    those, estimate is None and low/high bound the crossings inside the range that the data
    cannot exclude at `confidence` (None, None when none can). `step`: the axis only takes
    values on multiples of step (see `_to_steps`); the interval is widened to whole steps.
    """
    x = np.asarray(levels, dtype=float)
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    keep = n > 0
    x, k, n = x[keep], k[keep], n[keep]
    lo_x = float(np.min(x)) if low is None else float(low)
    hi_x = float(np.max(x)) if high is None else float(high)
    if x.size == 0 or hi_x <= lo_x:
        raise ValueError("boundary.estimate needs trials at two or more distinct levels")
    span = hi_x - lo_x
    z = (x - lo_x) / span
    t = min(max(target, 1e-9), 1 - 1e-9)
    c = math.log(t / (1 - t))

    grid = np.linspace(*_WINDOW, _GRID)
    prof, slopes = _profile(grid, z, k, n, c)
    best = float(prof.max())
    crit = _chi2_crit(confidence)
    inside = 2.0 * (best - prof) <= crit
    # a plateau of maxima (separated data): its middle, so the estimate sits in the gap
    top = np.flatnonzero(prof >= best - 1e-9)
    i_hat = int(top[len(top) // 2]) if np.all(np.diff(top) == 1) else int(top[0])
    z_hat, b_hat = float(grid[i_hat]), float(slopes[i_hat])
    if len(top) == 1 and 0 < i_hat < _GRID - 1:
        # a single maximum: polish it between the grid neighbours
        from scipy.optimize import minimize_scalar

        res = minimize_scalar(lambda v: -float(_profile(np.array([v]), z, k, n, c)[0][0]),
                              bounds=(float(grid[i_hat - 1]), float(grid[i_hat + 1])),
                              method="bounded", options={"xatol": 1e-7})
        value, slope = _profile(np.array([res.x]), z, k, n, c)
        if float(value[0]) >= best:
            z_hat, b_hat, best = float(res.x), float(slope[0]), float(value[0])

    def to_x(v):
        return float(lo_x + v * span)

    def refine(i_in: int, i_out: int) -> float:
        """The interval end between a grid point inside the set and its neighbour outside."""
        from scipy.optimize import brentq

        def g(v):
            value, _ = _profile(np.array([v]), z, k, n, c)
            return 2.0 * (best - float(value[0])) - crit

        a, b = float(grid[i_in]), float(grid[i_out])
        try:
            return float(brentq(g, a, b, xtol=1e-7))
        except ValueError:
            return a

    in_range = inside & (grid >= 0.0) & (grid <= 1.0)
    if 0.0 <= z_hat <= 1.0 and abs(b_hat) > 0:
        status = "crosses"
        side = "below" if b_hat < 0 else "above"
        idx = np.flatnonzero(inside)
        first, last = int(idx[0]), int(idx[-1])
        z_lo = refine(first, first - 1) if first > 0 else _WINDOW[0]
        z_hi = refine(last, last + 1) if last < _GRID - 1 else _WINDOW[1]
        clipped = z_lo < 0.0 or z_hi > 1.0
        return Boundary(estimate=to_x(z_hat), low=to_x(max(z_lo, 0.0)), high=to_x(min(z_hi, 1.0)),
                        status=status, side=side, clipped=bool(clipped), confidence=confidence)
    # no crossing inside the range: which side of the target is the fitted curve on?
    eta_mid = c + b_hat * (0.5 - z_hat)
    status = "holds_everywhere" if eta_mid >= c else "fails_everywhere"
    side = None if b_hat == 0 else ("below" if b_hat < 0 else "above")
    if not in_range.any():
        return Boundary(None, None, None, status, side, False, confidence)
    idx = np.flatnonzero(in_range)
    return Boundary(None, to_x(float(grid[idx[0]])), to_x(float(grid[idx[-1]])), status, side,
                    False, confidence)


@dataclass
class AxisPlan:
    """What `plan_levels` ran on one axis and what it concluded."""

    levels: np.ndarray
    successes: np.ndarray
    trials: np.ndarray
    boundary: Boundary
    episodes: int
    next_index: int
    rounds: list = field(default_factory=list)   # levels run in each round (for the report)

    def to_dict(self) -> dict:
        out = self.boundary.to_dict()
        out.update(levels=[float(v) for v in self.levels],
                   successes=[int(v) for v in self.successes],
                   trials=[int(v) for v in self.trials])
        return out


def _aggregate(xs, ys):
    levels, inverse = np.unique(np.asarray(xs, dtype=float), return_inverse=True)
    k = np.bincount(inverse, weights=np.asarray(ys, dtype=float), minlength=len(levels))
    n = np.bincount(inverse, minlength=len(levels))
    return levels, np.rint(k).astype(int), n.astype(int)


def _quantise(values, low, high, step):
    values = np.clip(np.asarray(values, dtype=float), low, high)
    if step:
        values = low + np.round((values - low) / step) * step
        values = np.clip(values, low, high)
    return np.unique(np.round(values, 12))


def plan_levels(evaluate_axis, low: float, high: float, budget: int, target: float,
                confidence: float = 0.95, coarse: int = 8, rounds: int = 3,
                first_share: float = 0.4, focus_levels: int = 6, step: float | None = None,
                index_start: int = 0, prior: AxisPlan | None = None) -> AxisPlan:
    """Adaptive levels along one axis: a coarse even pass, then rounds near the crossing.

    evaluate_axis(levels (m,), episode_indices (m,)) -> success (m,) bool; it is called once per
    round with every row of the round (one batch). Every row gets its own episode index
    (index_start, index_start + 1, ...), so no two rows share a seed: the binomial likelihood
    needs independent rows, and common seeds across levels would make the interval too narrow.

    Round 0 spends `first_share` of the budget evenly on `coarse` levels over [low, high]. Each
    later round spends an equal part of the rest on `focus_levels` levels spread over the
    current interval, widened by half its width on each side (when no crossing is in the
    range, over the confidence set inside the range, or the weakest end). `step` rounds every
    level to low + j * step (e.g. whole physics steps of a delay). Deterministic: no randomness.

    `prior`: an earlier plan of this axis (its coarse pass, say) to continue: its rows count in
    every fit, not in `budget`, the coarse pass is not run again and episode indices go on from
    its `next_index`; the returned plan holds both, its `episodes` only the new rows.
    """
    budget = int(budget)
    xs: list[float] = []
    ys: list[bool] = []
    index = int(index_start)
    if prior is not None:
        for level, k, n in zip(prior.levels, prior.successes, prior.trials):
            xs += [float(level)] * int(n)
            ys += [True] * int(k) + [False] * int(n - k)
        index = int(prior.next_index)
    spent = len(xs)  # rows of the prior plan: not this call's budget
    spacing = (high - low) / max(coarse - 1, 1)
    rounds_run = []

    def run(levels, per):
        nonlocal index
        if per <= 0 or len(levels) == 0:
            return
        rows = np.repeat(np.asarray(levels, dtype=float), per)
        idx = np.arange(index, index + len(rows))
        index += len(rows)
        out = np.asarray(evaluate_axis(rows, idx), dtype=bool)
        xs.extend(rows.tolist())
        ys.extend(out.tolist())
        rounds_run.append([float(v) for v in levels])

    if prior is None:
        first = _quantise(np.linspace(low, high, coarse), low, high, step)
        per0 = max(1, int(first_share * budget) // len(first)) if rounds > 1 else max(1, budget // len(first))
        run(first, min(per0, max(budget // len(first), 0)))
    for r in range(1, rounds):
        left = budget - (len(xs) - spent)
        share = left // (rounds - r)
        if share <= 0:
            break
        levels, k, n = _aggregate(xs, ys)
        b = estimate(levels, k, n, target, confidence, low, high, step)
        if b.low is not None and b.high is not None:
            width = max(b.high - b.low, spacing / 2)
            a, z = b.low - width / 2, b.high + width / 2
        else:
            rates = k / np.maximum(n, 1)
            weak = low if rates[0] <= rates[-1] else high
            a, z = weak - spacing, weak + spacing
        a, z = max(a, low), min(z, high)
        levels_r = _quantise(np.linspace(a, z, focus_levels), low, high, step)
        per = share // len(levels_r)
        if per == 0:
            levels_r = levels_r[np.round(np.linspace(0, len(levels_r) - 1, share)).astype(int)]
            per = 1
        run(levels_r, per)
    levels, k, n = _aggregate(xs, ys)
    final = estimate(levels, k, n, target, confidence, low, high, step)
    if prior is not None:
        rounds_run = list(prior.rounds) + rounds_run
    return AxisPlan(levels=levels, successes=k, trials=n, boundary=final, episodes=len(xs) - spent,
                    next_index=index, rounds=rounds_run)
