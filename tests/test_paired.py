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


def test_paired_torque_tests_the_ratio_itself():
    base = np.linspace(1.0, 2.0, 300)
    same = paired.ratio_regression(base, base, 0.1, 3.0, 0.05)  # unchanged: 10 % below the allowed ratio
    assert same["p_regression"] == 1.0 and same["p_not_higher"] <= 0.05
    up = paired.ratio_regression(base * 1.5, base, 0.1, 3.0, 0.05)
    assert up["p_regression"] <= 0.05 and up["p_not_higher"] == 1.0
    # the boundary c = 1.1 b exactly: d = 0 everywhere, nothing is shown either way
    edge = paired.ratio_regression(base * 1.1, base, 0.1, 3.0, 0.05)
    assert edge["p_regression"] > 0.05 and edge["p_not_higher"] > 0.05


def test_exact_noninferiority_tails_are_the_worst_case_over_the_nuisance():
    """The exact tails bound the score test's rejection rate at every nuisance value on the margin
    (checked on a finer grid than the one that built them), and the asymptotic −1.645 does not."""
    from scipy.special import gammaln, xlogy

    n, margin = 150, 0.05
    zs, at_least, at_most = paired.score_tails(n, margin)
    i, j = np.arange(n + 1)[:, None], np.arange(n + 1)[None, :]
    keep = (i + j) <= n
    n10, n01 = np.broadcast_to(i, keep.shape)[keep], np.broadcast_to(j, keep.shape)[keep]
    z = paired._score_z(n10, n01, n, margin)
    worse_c = zs[at_most <= 0.05].max()  # the exact critical value of 'worse by more than δ'
    worst_exact = worst_normal = 0.0
    for q in np.linspace(0.0, (1 - margin) / 2, 700)[:-1]:
        pmf = np.exp(gammaln(n + 1) - gammaln(n10 + 1) - gammaln(n01 + 1) - gammaln(n - n10 - n01 + 1)
                     + xlogy(n10, q + margin) + xlogy(n01, q) + xlogy(n - n10 - n01, 1 - 2 * q - margin))
        worst_exact = max(worst_exact, pmf[z <= worse_c].sum())
        worst_normal = max(worst_normal, pmf[z <= -1.645].sum())
    assert worst_exact <= 0.05 + 1e-4
    assert worst_normal > 0.07  # the 0.074 at n = 150


def test_the_closed_form_restricted_mle_equals_numerical_maximisation():
    """The score test's variance rests on the restricted MLE; the closed form (a quadratic's
    root) must agree with maximising the likelihood numerically, zero discordant pairs included."""
    import math

    from scipy.optimize import minimize_scalar
    from scipy.stats import norm

    def numerical(n10, n01, n, margin):
        concordant = n - n10 - n01

        def minus_loglik(q10):
            q01 = q10 - margin
            return -(n10 * math.log(q10) + n01 * math.log(q01) + concordant * math.log(1 - q10 - q01))

        q10 = minimize_scalar(minus_loglik, bounds=(margin + 1e-12, (1 + margin) / 2 - 1e-12), method="bounded",
                              options={"xatol": 1e-12}).x
        z = ((n01 - n10) / n + margin) / math.sqrt(max(2 * q10 - margin - margin ** 2, 1e-300) / n)
        return z, norm.sf(z)

    for n10, n01, n in [(0, 0, 100), (5, 0, 30), (0, 5, 30), (12, 3, 100), (3, 12, 100), (40, 40, 100), (23, 0, 100)]:
        for margin in (0.02, 0.05, 0.1):
            z, p = paired.noninferiority(n10, n01, n, margin)
            z_ref, p_ref = numerical(n10, n01, n, margin)
            assert z == pytest.approx(z_ref, rel=1e-6, abs=1e-9) and p == pytest.approx(p_ref, rel=1e-5, abs=1e-12)


def test_fisher_and_bh_equal_scipy_stats():
    from scipy.stats import false_discovery_control, fisher_exact

    rng = np.random.default_rng(11)
    for n in (5, 40, 100):
        b, c = rng.random(n) < 0.9, rng.random(n) < 0.7
        table = [[int(c.sum()), int((~c).sum())], [int(b.sum()), int((~b).sum())]]
        assert paired.unpaired_worse(b, c) == pytest.approx(fisher_exact(table, alternative="less").pvalue, rel=1e-9)
    for _ in range(50):
        p = {f"h{i}": float(x) for i, x in enumerate(rng.random(8) ** 3)}
        keys = sorted(p)
        expected = false_discovery_control([p[k] for k in keys], method="bh") <= 0.05
        assert paired.benjamini_hochberg(p, 0.05) == dict(zip(keys, expected.tolist()))


def test_power_when_every_pair_is_discordant_is_exact_and_quiet():
    """A baseline that always succeeds against a candidate that always fails: every pair is
    discordant (q = 1), the one possible count is certain, and no NaN leaks into the power."""
    import warnings

    from simgate.paired import detectable_drop, mcnemar_power

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mcnemar_power(50, 1.0, 1.0, 0.05) == 1.0
        assert detectable_drop(50, 1.0, 0.05) is not None
