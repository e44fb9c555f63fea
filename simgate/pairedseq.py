"""The sequential paired regression test: candidate against baseline on the same episodes, judged at looks.

Each look adds episodes that both policies ran on the same seeds. Two anytime-valid statistics
are kept, so a case may stop at any look without changing what they guarantee:

- **worse**: the discordant pairs (baseline-only successes n10, candidate-only n01) are, under
  "the candidate is not worse" (P(10) ≤ P(01)), each a 10 with probability at most 1/2. The
  likelihood ratio of a uniform mixture over (1/2, 1] against 1/2 (:func:`simgate.sequential.log_e_value`)
  is then a nonnegative supermartingale, so its largest value so far, E, gives the p-value 1/E,
  valid at whatever look the case stopped (Ville's inequality). That p-value joins the
  candidate's Holm family as the McNemar p-value of a fixed-size case does.
- **drop ruled out**: on d_i = b_i − c_i in {−1, 0, 1} (mean: the drop), the betting test of
  "the drop is at least ``drop``" (:func:`simgate.stats.log_wealth_below`); crossing at level
  ``rule_out_level`` says a drop that large is ruled out, so an unchanged policy stops early. A
  policy that did drop by ``drop`` is ruled out with probability ≤ ``rule_out_level``.

The case stops at the first look where one of them decides, or at the cap. The cap is planned
before the run, by simulation through :func:`evidence` (the code the runner judges with): the
fewest looks at which a drop of ``drop`` is flagged with probability ≥ ``power``, counting a
wrongly ruled-out drop and an undecided cap as misses, with the two policies' outcomes
independent at the planned baseline rate. Independence is the least favourable case: common
random numbers make paired outcomes agree more often, and fewer discordant pairs that point the
same way decide sooner; so the power under the correlation a run measures is at least the planned one.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from simgate.errors import InputError
from simgate.seeds import derived_rng
from simgate.sequential import log_e_value
from simgate.stats import log_wealth_below

WORSE, RULED_OUT, UNDECIDED = "worse", "ruled_out", "undecided"
#: the share of the miss rate (1 − power) given to ruling out a drop that did happen; the rest is
#: what the cap may leave undecided
RULE_OUT_SHARE = 0.5
#: simulated paths that plan a cap (the power's standard error at 0.9: 0.007)
PATHS = 2000
#: paths simulated at a time (memory: PATHS_AT_ONCE × the most episodes, a few float arrays)
PATHS_AT_ONCE = 250
#: the baseline success rate a cap is planned at when the scenario declares none (neither
#: ``detect.baseline_rate`` nor ``thresholds.min_success_rate``)
ASSUMED_RATE = 0.9
#: the planned power must exceed the target by this much in the simulation (its sampling error)
POWER_MARGIN = 0.01


@dataclasses.dataclass(frozen=True)
class PairedDesign:
    drop: float  # the drop in success rate to detect
    power: float  # the probability of flagging it
    level: float  # the case's level in its family (Holm's first step): p ≤ level is confirmed
    looks: tuple[int, ...]  # paired episodes at each look; the last is the cap
    baseline_rate: float  # the baseline success rate the cap was planned at
    simulated_power: float  # at the cap, in the planning simulation

    @property
    def cap(self) -> int:
        return self.looks[-1]

    @property
    def rule_out_level(self) -> float:
        return (1 - self.power) * RULE_OUT_SHARE

    def state(self, baseline, candidate) -> tuple[str | None, dict]:
        """After the look that ends at ``len(candidate)`` episodes: WORSE, RULED_OUT or None (go
        on; UNDECIDED at the cap), with the figures the report shows."""
        b, c = np.asarray(baseline, dtype=bool), np.asarray(candidate, dtype=bool)
        looks = tuple(n for n in self.looks if n <= len(c))
        log_e, log_w = evidence(b[None, :looks[-1]], c[None, :looks[-1]], looks, self.drop, self.rule_out_level)
        best_e, best_w = float(log_e[0, -1]), float(log_w[0, -1])
        figures = {"p_worse_anytime": min(1.0, math.exp(-best_e)), "log_e_worse": best_e,
                   "p_drop_at_least": min(1.0, math.exp(-best_w)), "look": len(looks), "n": looks[-1]}
        first, what = first_decisions(log_e, log_w, self.level, self.rule_out_level)  # as the plan simulated it
        if int(first[0]) < len(looks):
            return str(what[0]), figures
        return (UNDECIDED if looks[-1] >= self.cap else None), figures

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "looks": list(self.looks), "cap": self.cap, "rule_out_level": self.rule_out_level}


def evidence(baseline: np.ndarray, candidate: np.ndarray, looks, drop: float, rule_out_level: float):
    """Per path (leading axis) and look: the largest log e-value of 'the candidate is worse' at the
    looks so far, and the largest log wealth against 'the drop is at least ``drop``' over every
    episode so far. ``baseline``, ``candidate``: bool arrays (paths, episodes) in episode order."""
    b, c = np.asarray(baseline, dtype=bool), np.asarray(candidate, dtype=bool)
    at = np.asarray(looks, dtype=int) - 1
    n10 = np.cumsum(b & ~c, axis=-1)[..., at]
    n01 = np.cumsum(~b & c, axis=-1)[..., at]
    log_e = np.maximum.accumulate(log_e_value(n10, n01, 0.5), axis=-1)
    y = (b.astype(float) - c.astype(float) + 1) / 2  # the drop on [0, 1]: mean (D + 1) / 2
    log_w = log_wealth_below(y, (drop + 1) / 2, rule_out_level)[..., at]
    return log_e, log_w


def first_decisions(log_e: np.ndarray, log_w: np.ndarray, level: float, rule_out_level: float):
    """Per path, from :func:`evidence`: the look that first decided it (the number of looks when
    none did) and what it decided (WORSE, RULED_OUT or UNDECIDED); a look that shows both is
    WORSE, as :meth:`PairedDesign.state` judges it first."""
    worse, ruled = log_e >= math.log(1 / level), log_w >= math.log(1 / rule_out_level)
    k = log_e.shape[-1]
    first_worse = np.where(worse.any(-1), worse.argmax(-1), k)
    first_ruled = np.where(ruled.any(-1), ruled.argmax(-1), k)
    what = np.where((first_worse <= first_ruled) & (first_worse < k), WORSE, np.where(first_ruled < k, RULED_OUT, UNDECIDED))
    return np.minimum(first_worse, first_ruled), what


def looks_from(first: tuple[int, ...], most: int, step: int) -> tuple[int, ...]:
    """The looks a paired test may take: the case's own looks (``first``: its group design's, or
    its one look), then on by ``step`` episodes up to ``most``."""
    return tuple(first) + tuple(range(first[-1] + step, max(most, first[-1]) + 1, step))


@functools.lru_cache(maxsize=64)
def plan(drop: float, power: float, level: float, baseline_rate: float, first: tuple[int, ...], most: int,
         step: int | None = None) -> PairedDesign:
    """The paired design for a drop: the looks ``first`` and then every ``step`` (default
    ``first[0]``) episodes, up to the cap the simulation finds (InputError when no cap up to
    ``most`` reaches the power)."""
    if not 0 < drop < 1 or not 0 < baseline_rate <= 1:
        raise InputError(f"a paired design needs a drop and a baseline rate in (0, 1], received {drop:g}, {baseline_rate:g}")
    candidate_rate = max(baseline_rate - drop, 0.0)
    rule_out = (1 - power) * RULE_OUT_SHARE
    step = step or first[0]
    every = looks_from(tuple(first), most, step)
    horizon = max(8 * step, first[-1])
    while True:  # a short horizon first: most designs are decided long before ``most``
        looks = tuple(n for n in every if n <= horizon) or every[:1]
        reached = _simulated_power(looks, drop, power, level, baseline_rate, candidate_rate, rule_out)
        enough = np.flatnonzero(reached >= power + POWER_MARGIN)
        if len(enough) or looks[-1] >= every[-1]:
            break
        horizon *= 2
    if not len(enough):
        raise InputError(f"a drop of {drop:g} from a baseline success rate of {baseline_rate:g} is flagged with power "
                         f"{reached[-1]:.2f} within {looks[-1]:,} paired episodes (simulated at level {level:.3g}), "
                         f"short of {power:g}")
    k = int(enough[0])
    return PairedDesign(drop, power, level, looks[:k + 1], baseline_rate, float(reached[k]))


def _simulated_power(looks, drop, power, level, baseline_rate, candidate_rate, rule_out) -> np.ndarray:
    """Per look, the share of simulated paths flagged WORSE by then (before any RULED_OUT)."""
    rng = derived_rng("paired design", drop, power, level, baseline_rate, looks)
    flagged = np.zeros(len(looks))
    for start in range(0, PATHS, PATHS_AT_ONCE):
        size = min(PATHS_AT_ONCE, PATHS - start)
        b = rng.random((size, looks[-1])) < baseline_rate
        c = rng.random((size, looks[-1])) < candidate_rate
        first, what = first_decisions(*evidence(b, c, looks, drop, rule_out), level, rule_out)
        flagged += np.bincount(first[what == WORSE], minlength=len(looks))
    return np.cumsum(flagged) / PATHS


def design_of(case) -> PairedDesign | None:
    """A case's sequential paired test against its baseline, as planned when it was loaded
    (:func:`simgate.scenarios.expand.default_design`); None for a case without one."""
    block = getattr(case, "paired", None)
    if not block:
        return None
    fields = {f.name for f in dataclasses.fields(PairedDesign)}
    return PairedDesign(**{**{k: v for k, v in block.items() if k in fields}, "looks": tuple(block["looks"])})
