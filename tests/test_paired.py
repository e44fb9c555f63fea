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


# -- the exact non-inferiority test: no NaN at any margin, the supremum over the nuisance itself --
def _largest_tail_by_brute_force(n, margin, region, points=2000, refined=8):
    """sup over q01 ∈ [0, (1 − δ)/2] of P(the table is in ``region``) on the margin (q10 = q01 + δ),
    independently of paired.py: the multinomial summed table by table on ``points`` evenly spaced
    q01, then scipy's bounded Brent between the neighbours of the ``refined`` highest local maxima."""
    from scipy.optimize import minimize_scalar
    from scipy.special import gammaln, xlogy

    n10, n01 = (x.astype(float) for x in np.nonzero(region))
    rest = n - n10 - n01
    log_ways = gammaln(n + 1) - gammaln(n10 + 1) - gammaln(n01 + 1) - gammaln(rest + 1)
    top = (1 - margin) / 2

    def probability(q):
        return float(np.exp(log_ways + xlogy(n10, q + margin) + xlogy(n01, q)
                            + xlogy(rest, max(1 - 2 * q - margin, 0.0))).sum())

    grid = np.linspace(0.0, top, points + 1)
    inner, counts = grid[1:-1], np.stack([n10, n01, rest], axis=1)
    values = [probability(0.0)]
    for block in np.array_split(inner, max(1, len(inner) // 100)):
        logs = np.stack([np.log(block + margin), np.log(block), np.log(1 - 2 * block - margin)])
        values.extend(np.exp(log_ways[:, None] + counts @ logs).sum(axis=0))
    values = np.array(values + [probability(top)])
    best = float(values.max())
    padded = np.concatenate([[-np.inf], values, [-np.inf]])
    peaks = np.nonzero((values >= padded[:-2]) & (values >= padded[2:]))[0]
    for k in peaks[np.argsort(-values[peaks])][:refined]:
        found = minimize_scalar(lambda q: -probability(q), bounds=(grid[max(k - 1, 0)], grid[min(k + 1, points)]),
                                method="bounded", options={"xatol": 1e-13})
        best = max(best, -found.fun)
    return best


def _score_matrix(n, margin):
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    return np.where(i + j <= n, paired._score_z(i, j, n, margin), np.nan)


def test_exact_noninferiority_has_no_nan_at_any_margin():
    """1 − 2q − δ at the last nuisance point rounded to −2.8e-17 for δ in 0.08–0.11 and 0.18–0.23,
    and the NaN of its logarithm spread to every table: identical outcomes were 'not shown'."""
    margins = [float(m) for m in np.round(np.arange(0.01, 0.30, 0.01), 2)]
    for margin in margins:
        zs, at_least, at_most = paired.score_tails(100, margin)
        assert np.isfinite(at_least).all() and np.isfinite(at_most).all(), margin
    rng = np.random.default_rng(2024)
    prone = [0.01, 0.08, 0.09, 0.11, 0.18, 0.23, 0.29]  # where the grid's last point gave NaN, and the ends
    for n in (1, 7, 40, 100, 250, 500, 1000):
        for margin in margins if n in (7, 100) else prone:
            n10 = int(rng.integers(0, n + 1))
            for table in [(0, 0), (n10, int(rng.integers(0, n - n10 + 1)))]:
                p_ni, p_worse, how = paired.noninferiority_exact(*table, n, margin)
                assert how == "exact"
                assert 0.0 <= p_ni <= 1.0 and 0.0 <= p_worse <= 1.0, (n, margin, table, p_ni, p_worse)
                # the two regions cover every table: at any q01 their probabilities add up to ≥ 1
                assert p_ni + p_worse >= 1 - 1e-9, (n, margin, table)
    # the case: 100 identical pairs are within 10 points (z = √(nδ/(1 − δ)) = 3.3)
    p_ni, p_worse, how = paired.noninferiority_exact(0, 0, 100, 0.10)
    assert p_ni < 0.01 and p_worse > 0.99 and how == "exact"
    outcomes = np.random.default_rng(5).random(100) < 0.8
    assert paired.compare_rates(outcomes, outcomes, 0.10).p_noninferior < 0.01


@pytest.mark.parametrize("n, n10, n01, margin, side", [
    (500, 50, 41, 0.05, 0),  # the 120-point grid gave 0.0498 where the supremum is 0.0504 (q01 ≈ 0.471)
    (500, 107, 122, 0.02, 0),
    (150, 20, 9, 0.10, 1),
    (1000, 70, 30, 0.05, 0),
])
def test_exact_noninferiority_p_value_is_the_supremum_over_the_nuisance(n, n10, n01, margin, side):
    """The p-value is at least the largest tail probability on a fine, independent nuisance grid
    refined by scipy (and not far above it: it is the supremum, not a bound)."""
    z = _score_matrix(n, margin)
    with np.errstate(invalid="ignore"):
        region = z >= z[n10, n01] if side == 0 else z <= z[n10, n01]
    reference = _largest_tail_by_brute_force(n, margin, region, points=2000 if n <= 500 else 600)
    p = paired.noninferiority_exact(n10, n01, n, margin)[side]
    assert p >= reference - 1e-12
    assert p <= reference + 1e-9


@pytest.mark.parametrize("n, margin", [(500, 0.05), (300, 0.02)])
def test_exact_noninferiority_holds_its_level_at_the_margin(n, margin):
    """The size of 'non-inferior when p ≤ 0.05', the largest probability of that region over the
    nuisance on the margin (exact sums, fine grid and refinement), is at most 0.05. The grid's
    critical tables had sizes 0.0504 (n 500, δ 0.05) and 0.0502 (n 300, δ 0.02)."""
    z = _score_matrix(n, margin)
    levels = np.unique(z[np.isfinite(z)])

    def p_value(level):
        n10, n01 = np.argwhere(z == level)[0]
        return paired.noninferiority_exact(int(n10), int(n01), n, margin)[0]

    low, high = 0, len(levels) - 1  # the p-value falls as z grows: bisect for the first level at α
    assert p_value(levels[high]) <= 0.05 < p_value(levels[low])
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if p_value(levels[mid]) <= 0.05 else (mid, high)
    with np.errstate(invalid="ignore"):
        size = _largest_tail_by_brute_force(n, margin, z >= levels[high])
        just_outside = _largest_tail_by_brute_force(n, margin, z >= levels[low], points=400)
    assert size <= 0.05 + 1e-12
    assert just_outside > 0.05  # the exact test uses its level: the next table would exceed it
