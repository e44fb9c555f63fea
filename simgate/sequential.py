"""Sequential success-rate tests: stop a case as soon as its requirement is decided.

Two designs (docs/statistics.md), both walked over the outcomes in episode-index order (never
completion order), so the decision does not depend on worker timing:

- ``sprt``: Wald's SPRT of H0 p = p0 against H1 p = p1. Wald's boundaries are approximate, so
  :func:`operating_characteristic` computes the design's exact pass / fail / inconclusive
  probabilities and expected episodes by dynamic programming over (n, failures); the report
  quotes those, not Wald's nominal α and β.
- ``anytime``: the Beta-mixture e-process for H0 p ≤ p0 (PASS when E ≥ 1/α, valid however often
  it is looked at, and a later run may extend it), with the likelihood-ratio futility stop
  against p1 (stop when the evidence for p0 over p1 reaches 1/β; the verdict reports that stop as
  "stopped: p1 not reached", INCONCLUSIVE, not as evidence that p < p0).

A case runs episodes in batches, so a decision may be reached before the batch's last episode:
the episodes after it were run but do not count (``n`` is where the boundary was crossed).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from simgate.distributions import binom_sf
from simgate.errors import InputError
from simgate.groupseq import LOOKS, GroupDesign, planned_looks

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
METHODS = ("sprt", "anytime")


@dataclasses.dataclass(frozen=True)
class Design:
    method: str  # "sprt" or "anytime"
    p0: float  # the requirement: success rate above p0
    p1: float  # the rate a good policy should pass quickly at (p1 > p0)
    alpha: float  # false PASS rate at p = p0
    beta: float  # false FAIL rate at p = p1
    max_n: int  # the episode cap: INCONCLUSIVE if undecided by then
    prior: tuple[float, float] = (1.0, 1.0)  # the anytime design's Beta(a, b) mixing prior
    pass_bound: float | None = None  # the SPRT's PASS threshold on the log LR; None: Wald's

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"sequential method should be one of {', '.join(METHODS)}, received {self.method!r}")
        if not 0 < self.p0 < self.p1 < 1:
            raise InputError(f"sequential p1 should lie between the required rate {self.p0:g} and 1, received {self.p1:g}")

    @property
    def step_success(self) -> float:
        """Log-likelihood ratio (p1 vs p0) added by a success."""
        return math.log(self.p1 / self.p0)

    @property
    def step_failure(self) -> float:
        return math.log((1 - self.p1) / (1 - self.p0))

    def boundaries(self) -> tuple[float, float]:
        """(pass, fail) thresholds on the log-likelihood ratio of p1 against p0."""
        if self.method == "sprt":
            upper = self.pass_bound if self.pass_bound is not None else math.log((1 - self.beta) / self.alpha)
            return upper, math.log(self.beta / (1 - self.alpha))
        return math.log(1 / self.alpha), -math.log(1 / self.beta)  # pass on the e-value, fail on the LR

    def state(self, successes: int, failures: int) -> str | None:
        """PASS, FAIL or None (go on) after this many successes and failures."""
        llr = successes * self.step_success + failures * self.step_failure
        upper, lower = self.boundaries()
        if self.method == "sprt":
            if llr >= upper:
                return PASS
            return FAIL if llr <= lower else None
        if log_e_value(successes, failures, self.p0, *self.prior) >= upper:
            return PASS
        return FAIL if llr <= lower else None


@dataclasses.dataclass(frozen=True)
class Decision:
    outcome: str
    n: int  # episodes the decision rests on (index order)
    successes: int
    statistic: float  # log-likelihood ratio (sprt) or log e-value (anytime) at n
    threshold: str  # the boundary that decided, for a person
    #: the pre-declared number of episodes every other requirement is judged on (set by the runner)
    judged: int | None = None


def decide(design: Design, outcomes) -> Decision:
    """Walk the outcomes (bools, episode-index order) until a boundary is crossed."""
    successes = failures = 0
    for n, ok in enumerate(outcomes, start=1):
        successes += bool(ok)
        failures += not ok
        verdict = design.state(successes, failures)
        if verdict is not None or n >= design.max_n:
            return _decision(design, verdict or INCONCLUSIVE, successes, failures)
    return _decision(design, None, successes, failures)


def _decision(design: Design, verdict: str | None, s: int, f: int) -> Decision:
    """``verdict`` None: the outcomes ran out before the cap (more episodes are needed)."""
    upper, lower = design.boundaries()
    if design.method == "sprt":
        statistic = s * design.step_success + f * design.step_failure
        rule = f"log LR {statistic:.3f} vs [{lower:.3f}, {upper:.3f}]"
    else:
        statistic = log_e_value(s, f, design.p0, *design.prior)
        rule = f"log e-value {statistic:.3f} vs {upper:.3f} (pass); log LR futility bound {lower:.3f}"
    return Decision(verdict or "CONTINUE", s + f, s, float(statistic), rule)


def log_e_value(successes, failures, p0: float, a: float = 1.0, b: float = 1.0):
    """log E_n of the Beta(a, b) mixture truncated to (p0, 1] against the point p0 (arrays welcome)."""
    from scipy.special import betaincc, betaln

    s, f = np.asarray(successes, dtype=float), np.asarray(failures, dtype=float)
    with np.errstate(divide="ignore"):  # a tail that underflows is evidence of nothing: log 0 = -inf
        out = (betaln(a + s, b + f) + np.log(betaincc(a + s, b + f, p0)) - betaln(a, b) - np.log(betaincc(a, b, p0))
               - s * math.log(p0) - f * math.log1p(-p0))
    return float(out) if out.ndim == 0 else out


@dataclasses.dataclass(frozen=True)
class OperatingCharacteristic:
    p: float
    pass_probability: float
    fail_probability: float
    inconclusive_probability: float
    expected_n: float


def operating_characteristic(design: Design, p: float) -> OperatingCharacteristic:
    """Exact probabilities of each outcome and the expected episodes at true rate ``p``, by dynamic
    programming over the number of failures after each episode."""
    table = _stop_table(design)
    alive = np.zeros(design.max_n + 1)
    alive[0] = 1.0  # probability of being undecided with f failures so far
    passed = failed = expected = 0.0
    for n in range(1, design.max_n + 1):
        nxt = np.zeros_like(alive)
        nxt[: n] += alive[: n] * p  # a success keeps f
        nxt[1: n + 1] += alive[: n] * (1 - p)  # a failure adds one
        stops = table[n]
        passed += float(nxt[stops == 1].sum())
        failed += float(nxt[stops == -1].sum())
        stopped = stops != 0
        expected += n * float(nxt[stopped].sum())
        nxt[stopped] = 0.0
        alive = nxt
    rest = float(alive.sum())
    return OperatingCharacteristic(p, passed, failed, rest, expected + design.max_n * rest)


@functools.lru_cache(maxsize=64)
def _stop_table(design: Design) -> np.ndarray:
    """[n, f] = 1 PASS, -1 FAIL, 0 go on, after n episodes with f failures."""
    table = np.zeros((design.max_n + 1, design.max_n + 1), dtype=np.int8)
    upper, lower = design.boundaries()
    for n in range(1, design.max_n + 1):
        f = np.arange(n + 1)
        llr = (n - f) * design.step_success + f * design.step_failure
        evidence = llr if design.method == "sprt" else log_e_value(n - f, f, design.p0, *design.prior)
        table[n, : n + 1] = np.where(evidence >= upper, 1, np.where(llr <= lower, -1, 0))
    return table


@functools.lru_cache(maxsize=64)
def calibrated(design: Design) -> Design:
    """The design with its false PASS rate at p0 exactly at most alpha. Wald's PASS threshold is
    an approximation that can overshoot (0.0504 for p0 = 0.9, p1 = 0.97); raise it in steps of
    0.01 until the exact operating characteristic is within alpha. The anytime design needs no
    such step: Ville's inequality bounds it whatever the number of looks."""
    if design.method != "sprt":
        return design
    current = design
    while operating_characteristic(current, current.p0).pass_probability > current.alpha:
        current = dataclasses.replace(current, pass_bound=round(current.boundaries()[0] + 0.01, 6))
    return current


def sequential_design(case) -> Design:
    """A case's sequential design (its ``sequential`` block, ``min_success_rate``, ``alpha`` and
    episode cap), its PASS boundary calibrated so the exact false PASS rate is ≤ alpha."""
    seq = case.sequential
    return calibrated(Design(seq["method"], case.thresholds["min_success_rate"], seq["p1"], case.alpha, seq["beta"],
                             case.episodes))


def group_design(case) -> GroupDesign:
    """A case's group-sequential design: its success threshold and alpha, looks at equal shares
    of its episodes (:mod:`simgate.groupseq`)."""
    return GroupDesign(case.thresholds["min_success_rate"], case.alpha,
                       planned_looks(case.episodes, case.sequential.get("looks") or LOOKS))


def fixed_n(p0: float, p1: float, alpha: float, beta: float, most: int = 5000) -> int:
    """Episodes a fixed-size exact binomial test needs for power 1 − β at p1 (the smallest n from
    which power stays ≥ 1 − β over the next 50 n: the power curve is saw-toothed)."""

    def power(n: int) -> float:
        k = int(np.argmax(binom_sf(np.arange(n + 1), n, p0) <= alpha))  # smallest k with P(X > k | p0) <= alpha
        return binom_sf(k, n, p1)  # PASS when successes > k

    n = 1
    while n < most:
        if power(n) >= 1 - beta and all(power(m) >= 1 - beta for m in range(n + 1, n + 51)):
            return n
        n += 1
    return most
