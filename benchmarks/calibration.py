"""Calibration of simgate's verdicts: seeded outcomes fed through simgate's own test functions.

    python benchmarks/calibration.py            # the figures README quotes (about a minute)
    python benchmarks/calibration.py --quick    # fewer Monte Carlo runs

Exact sums where the test allows it (the success test, the score test's tails, the extension
rule, the default group-sequential design's looks), vectorised numpy Monte Carlo elsewhere,
every Generator seeded explicitly. The last line reads
``suite_false_block=<x> worst_level=<y> power_10pt=<z>``: the 60-case suite's false-block rate at
the worst of its settings, the largest level measured for any single test, and the power of
``episodes: auto`` for a declared 10-point drop (the worst of its settings).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simgate import groupseq, paired, pairedseq, stats  # noqa: E402
from simgate.reporting.promotion import case_p_value  # noqa: E402
from simgate.verdict import SUCCESS_SHARE  # noqa: E402

ALPHA = 0.05


def _rng(*key) -> np.random.Generator:
    import hashlib

    digest = hashlib.sha256(repr(("calibration",) + key).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


# -- vectorised copies of simgate's per-case p-values, checked against the originals -------------
def mcnemar_p(n10: np.ndarray, n01: np.ndarray) -> np.ndarray:
    """simgate.paired.mcnemar_worse on arrays (P(X ≥ n10), X ~ Bin(n10 + n01, 1/2))."""
    from scipy.special import bdtrc

    d = n10 + n01
    return np.where(d == 0, 1.0, np.where(n10 <= 0, 1.0, bdtrc(np.maximum(n10 - 1, 0), np.maximum(d, 1), 0.5)))


def ratio_p(c: np.ndarray, b: np.ndarray, share: float, value_range: float) -> np.ndarray:
    """simgate.paired.ratio_regression's p_regression along the last axis."""
    d = c - (1 + share) * b
    low, width = -(1 + share) * value_range, (2 + share) * value_range
    y = np.clip((d - low) / width, 0.0, 1.0)
    zero = -low / width
    up = stats.log_wealth_below(1 - y, np.full(y.shape[:-1], 1 - zero), ALPHA)[..., -1]
    return np.minimum(1.0, np.exp(-up))


def case_p(p_success: np.ndarray, p_torque: np.ndarray | None) -> np.ndarray:
    """simgate.reporting.promotion.case_p_value with one joint."""
    if p_torque is None:
        return p_success
    return np.minimum(1.0, np.minimum(p_success / SUCCESS_SHARE, p_torque / (1 - SUCCESS_SHARE)))


def holm_any(p: np.ndarray, alpha: float) -> np.ndarray:
    """Whether Holm rejects anything, per row (it does iff the smallest p ≤ alpha / m)."""
    return p.min(axis=-1) <= alpha / p.shape[-1]


def holm_rejects(p: np.ndarray, alpha: float) -> np.ndarray:
    """simgate.paired.holm on each row: the rejected hypotheses."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    ok = np.cumprod(sorted_p <= alpha / (m - np.arange(m)), axis=-1).astype(bool)
    out = np.zeros_like(ok)
    np.put_along_axis(out, order, ok, axis=-1)
    return out


def check_vectorised(seed: int = 1) -> None:
    """The vectorised copies equal simgate's own functions on random inputs."""
    rng = _rng("check", seed)
    n10, n01 = rng.integers(0, 30, 200), rng.integers(0, 30, 200)
    np.testing.assert_allclose(mcnemar_p(n10, n01), [paired.mcnemar_worse(int(a), int(b)) for a, b in zip(n10, n01)],
                               rtol=1e-9, atol=1e-300)
    c, b = rng.uniform(0, 1.5, (5, 40)), rng.uniform(0, 1.5, (5, 40))
    np.testing.assert_allclose(ratio_p(c, b, 0.1, 1.5),
                               [paired.ratio_regression(ci, bi, 0.1, 1.5, ALPHA)["p_regression"] for ci, bi in zip(c, b)],
                               rtol=1e-9)
    for ps, pt in rng.random((50, 2)):
        reqs = [{"kind": "not_worse", "numbers": {"p_worse": ps}},
                {"kind": "torque_vs_baseline", "numbers": {"joints": {"j": {"p_regression": pt}}}}]
        assert math.isclose(case_p_value(reqs), float(case_p(np.array(ps), np.array(pt))), rel_tol=1e-12)
    p = rng.random((30, 12)) ** 4
    for row, mine in zip(p, holm_rejects(p, ALPHA)):
        theirs = paired.holm({str(i): float(x) for i, x in enumerate(row)}, ALPHA)
        assert [theirs[str(i)] for i in range(len(row))] == mine.tolist()


# -- outcomes -----------------------------------------------------------------------------------
def paired_outcomes(rng, reps: int, cases: int, n: int, rate_b: float, rate_c: float, within: float, across: float):
    """(baseline, candidate) success arrays (reps, cases, n): a Gaussian copula with correlation
    ``within`` between the two policies on one seed and ``across`` between cases (a shared
    per-episode factor: a suite whose cases fail together)."""
    from scipy.special import ndtri

    shared = rng.standard_normal((reps, 1, n))
    own = rng.standard_normal((reps, cases, n))
    zb = math.sqrt(across) * shared + math.sqrt(1 - across) * own
    other = rng.standard_normal((reps, cases, n))
    zc = within * zb + math.sqrt(1 - within ** 2) * other
    return zb < ndtri(rate_b), zc < ndtri(rate_c)


def torque_pair(rng, shape, value_range: float = 1.5):
    """Skewed per-episode mean |torque| (lognormal, σ 0.5, a few saturated episodes) for an
    unchanged policy on different seeds: baseline and candidate from the same distribution."""
    def draw():
        x = 0.3 * rng.lognormal(0.0, 0.5, shape)
        x = np.where(rng.random(shape) < 0.03, value_range, x)
        return np.clip(x, 0, value_range)
    return draw(), draw()


# -- the guarantees -----------------------------------------------------------------------------
def suite_false_block(rate: float, within: float, across: float, reps: int, cases: int = 60, n: int = 100,
                      torque: bool = True) -> float:
    """P(an unchanged policy is blocked by a regression finding) over a suite of ``cases`` cases."""
    rng = _rng("suite", rate, within, across, reps, cases, n)
    b, c = paired_outcomes(rng, reps, cases, n, rate, rate, within, across)
    p_s = mcnemar_p((b & ~c).sum(-1), (~b & c).sum(-1))
    p_t = ratio_p(*torque_pair(rng, (reps, cases, n)), 0.1, 1.5) if torque else None
    return float(holm_any(case_p(p_s, p_t), ALPHA).mean())


def suite_false_block_sequential(rate: float, within: float, across: float, reps: int, cases: int = 23) -> float:
    """The same for a suite of cases compared by the sequential paired test (simgate.pairedseq),
    each run to its cap: every look's evidence counted, the most any stopping rule could see. The
    member p-value is the anytime one, through :func:`simgate.pairedseq.evidence` itself."""
    level = ALPHA * SUCCESS_SHARE / cases
    design = pairedseq.plan(0.10, 0.9, level, rate, groupseq.planned_looks(100), 5000, 25)
    rng = _rng("suite sequential", rate, within, across, reps, cases)
    blocked = []
    for start in range(0, reps, 50):
        size = min(50, reps - start)
        b, c = paired_outcomes(rng, size, cases, design.cap, rate, rate, within, across)
        log_e, _ = pairedseq.evidence(b, c, design.looks, design.drop, design.rule_out_level)
        p = np.minimum(1.0, np.exp(-log_e[..., -1]))
        blocked.append(holm_any(case_p(p, None), ALPHA))
    return float(np.concatenate(blocked).mean())


def noninferiority_worst(n: int, margin: float = 0.05) -> float:
    """The exact worst-case size (over the nuisance, a 400-point grid) of both score tests at α."""
    from scipy.special import gammaln, xlogy

    zs, at_least, at_most = paired.score_tails(n, margin)
    c_ni, c_worse = zs[at_least <= ALPHA].min(), zs[at_most <= ALPHA].max()
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    n10, n01 = i[keep].astype(float), j[keep].astype(float)
    z = paired._score_z(n10, n01, n, margin)
    worst = 0.0
    for q in np.linspace(0.0, (1 - margin) / 2, 400)[:-1]:
        pmf = np.exp(gammaln(n + 1) - gammaln(n10 + 1) - gammaln(n01 + 1) - gammaln(n - n10 - n01 + 1)
                     + xlogy(n10, q + margin) + xlogy(n01, q) + xlogy(n - n10 - n01, 1 - 2 * q - margin))
        worst = max(worst, pmf[z >= c_ni].sum(), pmf[z <= c_worse].sum())
    return float(worst)


def success_worst(ns=range(10, 401)) -> float:
    """The exact test's largest P(PASS | p0) and P(FAIL | p0) over n (exact sums)."""
    return max(max(stats.exact_size(n, p0, ALPHA), stats.exact_fail_size(n, p0, ALPHA))
               for n in ns for p0 in (0.8, 0.9, 0.95))


def torque_level(kind: str, n: int, reps: int, value_range: float = 1.5) -> float:
    """P(PASS) of the mean-torque test with the true mean exactly at the limit, skewed data."""
    rng = _rng("torque", kind, n, reps)
    if kind == "lognormal":  # σ 0.5
        x = rng.lognormal(0.0, 0.5, (reps, n))
        x *= 0.4 / math.exp(0.125)
    elif kind == "saturated":  # 3 % of episodes at the force limit
        x = np.where(rng.random((reps, n)) < 0.03, value_range, rng.uniform(0.2, 0.3, (reps, n)))
    else:  # 10 % high-torque failures
        x = np.where(rng.random((reps, n)) < 0.10, rng.uniform(0.9, 1.2, (reps, n)), rng.normal(0.3, 0.03, (reps, n)))
    limit = {"lognormal": 0.4, "saturated": 0.03 * value_range + 0.97 * 0.25, "failures": 0.1 * 1.05 + 0.9 * 0.3}[kind]
    y = np.clip(x / value_range, 0, 1)
    up = stats.log_wealth_below(y, np.full(reps, limit / value_range), ALPHA)[:, -1]
    return float((up >= math.log(1 / ALPHA)).mean())


def ratio_level(n: int, reps: int, value_range: float = 1.5) -> float:
    """P(a torque-ratio regression is flagged) when the candidate's mean is exactly 1.1 × the baseline's."""
    rng = _rng("ratio", n, reps)
    b = np.clip(0.3 * rng.lognormal(0.0, 0.5, (reps, n)), 0, value_range / 1.2)
    c = np.clip(1.1 * 0.3 * rng.lognormal(0.0, 0.5, (reps, n)), 0, value_range)
    c *= (1.1 * b.mean()) / c.mean()  # the population boundary, up to Monte Carlo noise
    return float((ratio_p(c, b, 0.1, value_range) <= ALPHA).mean())


def extension_false_pass(looks: tuple[int, ...], reps: int, p0: float = 0.9) -> float:
    """P(PASS at any look) at p = p0 following the documented extension: each run raises
    ``episodes`` on the same seeds and lists the earlier counts under ``earlier_looks``."""
    rng = _rng("extension", looks, reps)
    counts, previous, passed = np.zeros(reps, dtype=np.int64), 0, np.zeros(reps, dtype=bool)
    for i, n in enumerate(looks):
        counts += rng.binomial(n - previous, p0, reps)
        previous = n
        level, _, _ = stats.extension_levels(tuple(looks[:i]), n, p0, ALPHA)
        threshold = _pass_threshold(n, p0, level if i else ALPHA)
        passed |= counts >= threshold
    return float(passed.mean())


def _pass_threshold(n: int, p0: float, level: float) -> int:
    from simgate.distributions import binom_sf

    ok = np.nonzero(binom_sf(np.arange(-1, n), n, p0) <= level)[0]
    return int(ok[0]) if len(ok) else n + 1


def extension_exact(looks: tuple[int, ...], p0: float = 0.9) -> float:
    """The same, exactly (dynamic programming over the success count)."""
    from scipy.stats import binom

    alive, previous, passed = np.array([1.0]), 0, 0.0
    for i, n in enumerate(looks):
        alive = np.convolve(alive, binom.pmf(np.arange(n - previous + 1), n - previous, p0))
        previous = n
        level = stats.extension_levels(tuple(looks[:i]), n, p0, ALPHA)[0] if i else ALPHA
        k = _pass_threshold(n, p0, level)
        passed += alive[k:].sum()
        alive[k:] = 0.0
    return float(passed)


def group_exact(cap: int, p0: float) -> float:
    """The default group-sequential design's false PASS rate over all its looks at p = p0, exactly."""
    design = groupseq.GroupDesign(p0, ALPHA, groupseq.planned_looks(cap))
    return groupseq.characteristic(design, p0).pass_probability


def group_simulated(cap: int, p0: float, reps: int) -> float:
    """The same by simulation through :func:`simgate.groupseq.decide`, which walks the looks with
    :meth:`~simgate.groupseq.GroupDesign.state`, the rule the runner asks at each look (the exact
    sum above is computed from the design's counts, not from decide)."""
    design = groupseq.GroupDesign(p0, ALPHA, groupseq.planned_looks(cap))
    outcomes = _rng("group", cap, p0, reps).random((reps, cap)) < p0
    return float(np.mean([groupseq.decide(design, row).outcome == "PASS" for row in outcomes]))


def auto_power(rate: float, within: float, reps: int, cases: int = 10, drop: float = 0.10) -> tuple[float, int]:
    """(P(the regressed case is Holm-confirmed), n): ``episodes: auto`` for a 10-point drop at power
    0.9 in a suite of ``cases`` cases, one of which dropped by ``drop``."""
    level = ALPHA * SUCCESS_SHARE / cases
    n = paired.episodes_for(drop, 0.9, rate, level)
    rng = _rng("auto", rate, within, reps, cases)
    b, c = paired_outcomes(rng, reps, cases, n, rate, rate, within, 0.0)
    bd, cd = paired_outcomes(rng, reps, 1, n, rate, rate - drop, within, 0.0)
    b[:, :1], c[:, :1] = bd, cd
    p = case_p(mcnemar_p((b & ~c).sum(-1), (~b & c).sum(-1)), ratio_p(*torque_pair(rng, (reps, cases, n)), 0.1, 1.5))
    return float(holm_rejects(p, ALPHA)[:, 0].mean()), n


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer Monte Carlo runs (larger standard errors)")
    args = ap.parse_args(argv)
    reps = 500 if args.quick else 4000
    check_vectorised()
    print("per-case p-values: vectorised copies equal simgate's functions")
    blocks = {}
    for rate in (0.80, 0.90):
        for label, within, across in (("independent", 0.0, 0.0), ("correlated", 0.5, 0.5)):
            blocks[(rate, label)] = suite_false_block(rate, within, across, reps)
            print(f"60-case suite, n=100, baseline {rate:.2f}, {label}: false block {blocks[(rate, label)]:.4f}")
    for rate in (0.80, 0.90):
        for label, within, across in (("independent", 0.0, 0.0), ("correlated", 0.5, 0.5)):
            blocks[(rate, label, "sequential")] = suite_false_block_sequential(rate, within, across, reps // 4)
            print(f"23-case suite, sequential paired test to its cap, baseline {rate:.2f}, {label}: false block "
                  f"{blocks[(rate, label, 'sequential')]:.4f}")
    levels = {"success (exact, n 10-400)": success_worst()}
    for n in (50, 100, 150, 200):
        levels[f"score tests n={n} (exact)"] = noninferiority_worst(n)
    for kind in ("lognormal", "saturated", "failures"):
        for n in (20, 100):
            levels[f"mean torque {kind} n={n}"] = torque_level(kind, n, reps)
    for n in (20, 100):
        levels[f"torque ratio n={n}"] = ratio_level(n, reps)
    for looks in ((100, 200), (100, 200, 400), (50, 100, 150, 200, 250, 300)):
        levels[f"extension {'→'.join(map(str, looks))} (exact)"] = extension_exact(looks)
    for cap in (30, 64, 100, 150, 256, 400):
        levels[f"group-sequential cap={cap}, every look (exact, worst p0)"] = max(
            group_exact(cap, p0) for p0 in (0.5, 0.8, 0.9, 0.95, 0.99))
    levels["group-sequential cap=100, p0 0.9 (simulated through decide)"] = group_simulated(100, 0.9, 5 * reps)
    for name, value in levels.items():
        print(f"level {name}: {value:.4f}")
    powers = {}
    for rate in (0.90, 0.95):
        n = paired.episodes_for(0.10, 0.9, rate, ALPHA * SUCCESS_SHARE / 10)
        # exact: the Bonferroni step alone, under independent failures (the planning assumption and
        # the least favourable non-negative correlation); Holm and correlation only add to it
        powers[rate] = paired.mcnemar_power(n, rate, 0.10, ALPHA * SUCCESS_SHARE / 10)
        print(f"episodes: auto, 10-point drop, baseline {rate:.2f}, 10 cases: n={n}, exact power {powers[rate]:.4f}")
        for within in (0.0, 0.5):
            power, _ = auto_power(rate, within, reps)
            print(f"  simulated (Holm, one regressed case among 10, within-pair correlation {within}): flagged {power:.4f}")
    for rate in (0.90, 0.95):
        print(f"episodes: auto cost at baseline {rate:.2f}: " + ", ".join(
            f"{k} case(s) {paired.episodes_for(0.10, 0.9, rate, ALPHA * SUCCESS_SHARE / k)}" for k in (1, 10, 60)))
    print(f"suite_false_block={max(blocks.values()):.4f} worst_level={max(levels.values()):.4f} "
          f"power_10pt={min(powers.values()):.4f}")


if __name__ == "__main__":
    main()
