"""The exact group-sequential test of a success rate: a few planned looks, the error spent across them.

A gating case that declares a number of episodes and no design of its own is judged at a few
looks planned before the run (by default at a quarter, half, three quarters and all of its
episodes): after each look it PASSes when the successes so far reach that look's PASS count,
FAILs when they are at or below its FAIL count, and goes on otherwise; at the last look it is
INCONCLUSIVE between the two. The counts come from an exact computation, not from a normal
approximation: at p = p0 the successes at each look are the previous look's plus a binomial of
the episodes added, so dynamic programming over the count gives the probability of having
passed (or failed) by each look, and each look's count is the smallest that keeps that
probability within the error spent so far, ``alpha · (look / cap) ** RHO``. The false PASS rate
over all looks together is therefore at most ``alpha`` at p0 (and below it for p < p0: a PASS
region grows with p), whatever look the case stops at; the false FAIL rate at p0 likewise.

The spending function spends little early (``RHO`` = 3: an eighth of alpha by half the episodes), so
the last look's PASS count is the fixed-size exact test's in almost every design and a case far
from its threshold (100/100 against 0.9) stops at the first or second look.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from simgate.distributions import binom_pmf
from simgate.errors import InputError

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
#: the spending function's exponent: alpha · t ** RHO spent by the share t of the cap
RHO = 3.0
#: looks of the default design (at 1/LOOKS, 2/LOOKS, ... of the cap)
LOOKS = 4
#: the fewest episodes a first look may have: fewer cannot pass any usual threshold
FIRST_LOOK_AT_LEAST = 10


@dataclasses.dataclass(frozen=True)
class GroupDesign:
    p0: float  # the requirement: success rate above p0
    alpha: float  # false PASS rate at p0 over all looks (and false FAIL rate at p0)
    looks: tuple[int, ...]  # episodes at each look, increasing; the last is the cap
    rho: float = RHO

    def __post_init__(self):
        if not 0 < self.p0 < 1:
            raise InputError(f"a group-sequential design needs a success rate between 0 and 1, received {self.p0:g}")
        if not self.looks or self.looks[0] <= 0 or any(b <= a for a, b in zip(self.looks, self.looks[1:])):
            raise InputError(f"looks should be increasing positive episode counts, received {list(self.looks)}")

    @property
    def cap(self) -> int:
        return self.looks[-1]

    @property
    def pass_counts(self) -> tuple[int, ...]:
        """Per look, the fewest successes that PASS (look + 1 when none can)."""
        return _boundaries(self.looks, self.p0, self.alpha, self.rho)

    @property
    def fail_counts(self) -> tuple[int, ...]:
        """Per look, the most successes that FAIL (-1 when none do): failures mirror successes."""
        failures = _boundaries(self.looks, 1 - self.p0, self.alpha, self.rho)
        return tuple(n - f for n, f in zip(self.looks, failures))

    def state(self, look: int, successes: int) -> str | None:
        """PASS, FAIL or None (go on; INCONCLUSIVE at the last look) after look ``look``."""
        if successes >= self.pass_counts[look]:
            return PASS
        if successes <= self.fail_counts[look]:
            return FAIL
        return INCONCLUSIVE if look == len(self.looks) - 1 else None


def planned_looks(cap: int, looks: int = LOOKS) -> tuple[int, ...]:
    """The default looks for a cap: at k/looks of it (rounded up), none below FIRST_LOOK_AT_LEAST."""
    points = sorted({max(min(FIRST_LOOK_AT_LEAST, cap), math.ceil(cap * k / looks)) for k in range(1, looks + 1)})
    return tuple(points)


@functools.lru_cache(maxsize=256)
def _boundaries(looks: tuple[int, ...], p0: float, alpha: float, rho: float) -> tuple[int, ...]:
    """Per look, the smallest count c with P(not crossed before, count ≥ c) + spent ≤ the look's share."""
    cap = looks[-1]
    alive, spent, previous, out = np.array([1.0]), 0.0, 0, []
    for m in looks:
        alive = np.convolve(alive, binom_pmf(m - previous, p0))
        previous = m
        tail = np.cumsum(alive[::-1])[::-1]  # [c] = P(not crossed before, count ≥ c now)
        allowed = alpha * (m / cap) ** rho
        ok = np.nonzero(spent + tail <= allowed * (1 + 1e-12))[0]
        c = int(ok[0]) if len(ok) else m + 1
        if c <= m:
            spent += float(tail[c])
            alive[c:] = 0.0
        out.append(c)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Characteristic:
    p: float
    pass_probability: float
    fail_probability: float
    inconclusive_probability: float
    expected_n: float


def characteristic(design: GroupDesign, p: float) -> Characteristic:
    """Exact probabilities of each outcome and the expected episodes at true rate ``p``, both
    boundaries applied together (dynamic programming over the successes at each look)."""
    alive, previous = np.array([1.0]), 0
    passed = failed = expected = 0.0
    for look, m in enumerate(design.looks):
        alive = np.convolve(alive, binom_pmf(m - previous, p)) if p not in (0.0, 1.0) else _degenerate(alive, m - previous, p)
        previous = m
        up, down = design.pass_counts[look], design.fail_counts[look]
        now_pass = float(alive[up:].sum()) if up <= m else 0.0
        now_fail = float(alive[: down + 1].sum()) if down >= 0 else 0.0
        passed, failed = passed + now_pass, failed + now_fail
        expected += m * (now_pass + now_fail)
        if up <= m:
            alive[up:] = 0.0
        if down >= 0:
            alive[: down + 1] = 0.0
    rest = float(alive.sum())
    return Characteristic(p, passed, failed, rest, expected + design.cap * rest)


def _degenerate(alive: np.ndarray, m: int, p: float) -> np.ndarray:
    out = np.zeros(len(alive) + m)
    shift = m if p == 1.0 else 0
    out[shift: shift + len(alive)] = alive
    return out


@dataclasses.dataclass(frozen=True)
class GroupDecision:
    outcome: str  # PASS, FAIL, INCONCLUSIVE (at the cap) or CONTINUE (outcomes ran out before a look decided)
    n: int  # the look the decision was taken at
    successes: int
    look: int  # its index (0-based)


def decide(design: GroupDesign, outcomes) -> GroupDecision:
    """The decision at the last look the outcomes (bools, episode-index order) reach."""
    outcomes = list(outcomes)
    decision = GroupDecision("CONTINUE", 0, 0, -1)
    for look, m in enumerate(design.looks):
        if len(outcomes) < m:
            break
        k = int(sum(bool(o) for o in outcomes[:m]))
        state = design.state(look, k)
        decision = GroupDecision(state or "CONTINUE", m, k, look)
        if state is not None:
            break
    return decision
