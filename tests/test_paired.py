"""Candidate against baseline: exact McNemar, the paired non-inferiority score test, multiplicity."""

import numpy as np
import pytest

from simgate import paired


def test_mcnemar_counts_only_discordant_pairs():
    assert paired.mcnemar_worse(0, 0) == 1.0
    assert paired.mcnemar_worse(5, 0) == pytest.approx(0.5 ** 5)
    assert paired.mcnemar_worse(3, 3) == pytest.approx(0.65625)  # P(X >= 3), X ~ Bin(6, 1/2)


def test_a_policy_compared_with_itself_is_never_flagged():
    rng = np.random.default_rng(1)
    for n in (5, 30, 100, 400):
        outcomes = rng.random(n) < 0.8
        r = paired.compare_rates(outcomes, outcomes, 0.05)
        assert (r.n10, r.n01, r.p_worse, r.difference) == (0, 0, 1.0, 0.0)
        assert paired.episodes_to_flag(outcomes, outcomes, 0.05, paired.unpaired_worse) is None
    # enough identical pairs show non-inferiority within 5 points: z = sqrt(n δ / (1 − δ))
    z, p = paired.noninferiority(0, 0, 100, 0.05)
    assert z == pytest.approx(np.sqrt(100 * 0.05 / 0.95), rel=1e-4) and p < 0.05


def test_noninferiority_score_test_holds_its_level_at_the_margin():
    """Monte Carlo at the boundary p_c − p_b = −δ with correlated pairs: rejection rate ≈ alpha."""
    rng, runs, n, rejected = np.random.default_rng(7), 3000, 200, 0
    for _ in range(runs):
        u = rng.random(n)
        base = u < 0.90
        cand = np.where(rng.random(n) < 0.7, u, rng.random(n)) < 0.85  # 0.7 shared randomness
        z, p = paired.noninferiority(int((base & ~cand).sum()), int((~base & cand).sum()), n, 0.05)
        rejected += p <= 0.05
    assert rejected / runs == pytest.approx(0.05, abs=0.015)


def test_pairing_flags_a_correlated_regression_with_fewer_episodes():
    """The candidate fails on the baseline's failures plus some more (same seeds, same worlds)."""
    rng = np.random.default_rng(3)
    u = rng.random(400)
    base, cand = u < 0.92, u < 0.80
    n_paired = paired.episodes_to_flag(base, cand, 0.05, lambda b, c: paired.mcnemar_worse(int((b & ~c).sum()), int((~b & c).sum())))
    n_unpaired = paired.episodes_to_flag(base, cand, 0.05, paired.unpaired_worse)
    assert n_paired is not None and n_unpaired is not None and n_paired < n_unpaired


def test_holm_and_benjamini_hochberg():
    p = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5}
    assert paired.holm(p, 0.05) == {"a": True, "b": False, "c": False, "d": False}  # 0.01 <= 0.05/4; 0.03 > 0.05/3
    assert paired.benjamini_hochberg(p, 0.05) == {"a": True, "b": False, "c": False, "d": False}
    assert paired.benjamini_hochberg({"a": 0.01, "b": 0.04, "c": 0.03}, 0.05) == {"a": True, "b": True, "c": True}


def test_paired_torque_comparison():
    base = np.linspace(1.0, 2.0, 30)
    assert paired.paired_mean_not_higher(base, base, 0.1, 0.05)[0] == "PASS"  # unchanged: no increase at all
    assert paired.paired_mean_not_higher(base + 0.5, base, 0.1, 0.05)[0] == "FAIL"
    noisy = base + np.random.default_rng(0).normal(0.0, 0.01, 30)
    assert paired.paired_mean_not_higher(noisy, base, 0.1, 0.05)[0] == "PASS"
