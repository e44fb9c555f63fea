"""Confirming a per-axis boundary on fresh seeds, with an exact test and a stated error rate.

The boundary stage (boundary.plan_levels) chooses its levels from the outcomes it has seen and
fits its crossing to those same episodes, so a boundary it reports rests on one set of seeds. The
confirmation reruns the claim on episodes whose indices no other stage uses (a disjoint seed set)
before the boundary is reported as confirmed.

The claim. Along an axis whose boundary crosses the target, with interval [low, high], take two
levels: the interval widened by MARGIN times its width on each side, clipped to the range and, on
a stepped axis, taken out to whole steps. ``x_safe`` is the end where the boundary says success
holds (side "below": the low end), ``x_failing`` the other end. The boundary is confirmed when

    p(x_safe) >= target   and   p(x_failing) < target

are both shown on fresh episodes; success being continuous along the axis, the crossing then lies
between the two levels. The widening is there because at the interval's own ends, by
construction, the episodes that made the interval could barely tell success from the target: a
test there would need about as many fresh episodes as found the boundary (docs/search.md has the
measured power of each choice).

The test. Per side, exact one-sided Clopper-Pearson bounds (certify.lower_bound / upper_bound).
"Confirmed" needs the lower bound at x_safe >= target and the upper bound at x_failing < target:
an intersection-union test (Berger 1982), whose error is that of its worse half, so no
correction between the two sides. Over the m axes put to confirmation, Bonferroni: each axis at
alpha / m. The episodes come in ``looks`` rounds (the sides already decided stop) and every look
judges at its share (Bonferroni over looks, as certify.sequential), so each bound is taken at

    level = alpha / (m * looks)

and the chance that any axis is reported confirmed while its claim is false is <= alpha, under
any stopping. "Contradicted" is the opposite claim on a side (the upper bound at x_safe < target,
or the lower bound at x_failing >= target): 2 m sides over the looks, each at
alpha / (2 m looks), so a boundary whose claim is true is contradicted anywhere with probability
<= alpha. Neither by the end of the budget: "unconfirmed".
"""

from __future__ import annotations

import math

import numpy as np

from simgate.search.certify import lower_bound, upper_bound

#: the looks the confirmation spends its episodes in (each judged at its share of alpha)
LOOKS = 3
#: the levels tested: the boundary's interval widened by this times its width on each side
MARGIN = 1.0
#: the two sides of a claim, in the order of the arrays below
SIDES = ("safe", "failing")
CONFIRMED, CONTRADICTED, UNCONFIRMED, NOT_APPLICABLE = "confirmed", "contradicted", "unconfirmed", "not applicable"


def bracket(entry: dict, low: float, high: float, step: float | None = None) -> tuple[float, float] | None:
    """(x_safe, x_failing) of a per-axis boundary dict (boundary.Boundary.to_dict), or None when
    it claims no crossing inside [low, high] (holds or fails everywhere, not run)."""
    a, b, side = entry.get("low"), entry.get("high"), entry.get("side")
    if entry.get("status") != "crosses" or a is None or b is None or side not in ("below", "above"):
        return None
    width = b - a
    lo, hi = max(low, a - MARGIN * width), min(high, b + MARGIN * width)
    if step:  # outward to whole steps: no episode runs between two
        lo = max(math.ceil(low / step - 1e-9) * step, math.floor(lo / step + 1e-9) * step)
        hi = min(math.floor(high / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step)
    if not hi > lo:
        return None
    return (float(lo), float(hi)) if side == "below" else (float(hi), float(lo))


def levels(alpha: float, family: int, looks: int = LOOKS) -> tuple[float, float]:
    """(level of a confirming bound, level of a contradicting bound) per look, for ``family``
    axes put to confirmation (see the module docstring)."""
    family = max(int(family), 1)
    return alpha / (family * looks), alpha / (2 * family * looks)


def judge(k, n, target: float, level: float, against: float):
    """Bounds and statuses of (m, 2) counts, column 0 the safe side, 1 the failing side.

    Returns (lower, upper, sides, axes): lower and upper (m, 2), each the confirming bound at
    ``level`` where it confirms (lower at the safe side, upper at the failing side) and the
    contradicting one at ``against`` elsewhere; sides (m, 2) and axes (m,) as status strings."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    lower = lower_bound(k, n, np.array([level, against]))
    upper = upper_bound(k, n, np.array([against, level]))
    confirmed = np.stack([lower[:, 0] >= target, upper[:, 1] < target], axis=1)
    contradicted = np.stack([upper[:, 0] < target, lower[:, 1] >= target], axis=1)
    sides = np.where(confirmed, CONFIRMED, np.where(contradicted, CONTRADICTED, UNCONFIRMED))
    axes = np.where(contradicted.any(axis=1), CONTRADICTED, np.where(confirmed.all(axis=1), CONFIRMED, UNCONFIRMED))
    return lower, upper, sides, axes


def sequential(evaluate, m: int, budget: int, target: float, alpha: float, looks: int = LOOKS,
               family: int | None = None):
    """Spend ``budget`` episodes over ``looks`` rounds on the sides of m claims still undecided.

    evaluate(claims (r,), sides (r,), nth (r,)) -> success (r,) bool, once per look with every row
    of the look; ``nth`` is the row's episode number on its side (0, 1, ... over the looks), so a
    side's episodes are the same whether the run stops early or not. ``family``: the axes the
    Bonferroni correction is over (default m). Returns (successes (m, 2), trials (m, 2), lower,
    upper, sides, axes as :func:`judge`, episodes used)."""
    k = np.zeros((m, 2), dtype=int)
    n = np.zeros((m, 2), dtype=int)
    level, against = levels(alpha, m if family is None else family, looks)
    used = 0
    state = judge(k, n, target, level, against)
    for look in range(looks):
        _, _, sides, axes = state
        claims, which = np.nonzero((sides == UNCONFIRMED) & (axes == UNCONFIRMED)[:, None])
        left = budget - used
        if claims.size == 0 or left < claims.size:
            break
        # the same share for every open side: which sides are open depends on the others' data,
        # never on a side's own future, so each side's looks stay at their level
        per = max(left // (claims.size * (looks - look)), 1)
        rows_c, rows_s = np.repeat(claims, per), np.repeat(which, per)
        nth = (n[claims, which][:, None] + np.arange(per)[None, :]).reshape(-1)
        out = np.asarray(evaluate(rows_c, rows_s, nth), dtype=bool)
        np.add.at(k, (rows_c, rows_s), out.astype(int))
        np.add.at(n, (rows_c, rows_s), 1)
        used += len(rows_c)
        state = judge(k, n, target, level, against)
    return (k, n, *state, used)
