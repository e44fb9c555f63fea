"""Verdict logic against exact binomial values computed here from first principles."""

import math

import numpy as np
import pytest

from simgate import stats


def upper_tail(k, n, p):  # P(X >= k)
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def lower_tail(k, n, p):  # P(X <= k)
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(0, k + 1))


def test_zero_failures_certify_ninety_percent_after_29_episodes():
    # lower bound with k = n is alpha ** (1/n): 0.05 ** (1/29) = 0.9019 > 0.9, at 28 it is 0.8985
    r29 = stats.success_rate(29, 29, 0.9, 0.05)
    r28 = stats.success_rate(28, 28, 0.9, 0.05)
    assert r29.outcome == stats.PASS and r29.lower == pytest.approx(0.05 ** (1 / 29), rel=1e-9)
    assert r28.outcome == stats.INCONCLUSIVE and r28.lower == pytest.approx(0.05 ** (1 / 28), rel=1e-9)


@pytest.mark.parametrize("k,n", [(90, 100), (95, 100), (97, 100), (85, 100), (80, 100), (45, 50), (49, 50)])
def test_pass_fail_match_exact_binomial_tails(k, n):
    r = stats.success_rate(k, n, 0.9, 0.05)
    assert r.p_pass == pytest.approx(upper_tail(k, n, 0.9), rel=1e-9)
    assert r.p_fail == pytest.approx(lower_tail(k, n, 0.9), rel=1e-9)
    expected = stats.PASS if upper_tail(k, n, 0.9) <= 0.05 else stats.FAIL if lower_tail(k, n, 0.9) <= 0.05 else stats.INCONCLUSIVE
    assert r.outcome == expected


def test_observed_rate_above_threshold_is_not_enough():
    # 92/100 observed is above 90% but the exact test cannot exclude p = 0.9
    assert stats.success_rate(92, 100, 0.9, 0.05).outcome == stats.INCONCLUSIVE
    assert stats.success_rate(97, 100, 0.9, 0.05).outcome == stats.PASS
    assert stats.success_rate(83, 100, 0.9, 0.05).outcome == stats.FAIL


def test_clopper_pearson_bounds_are_the_beta_quantiles():
    from scipy.stats import beta

    r = stats.success_rate(40, 50, 0.7, 0.05)
    assert r.lower == pytest.approx(beta.ppf(0.05, 40, 11))
    assert r.upper == pytest.approx(beta.ppf(0.95, 41, 10))


def test_mean_below_uses_one_sided_t_bound():
    from scipy.stats import t

    x = np.array([1.0, 1.2, 0.8, 1.1, 0.9])
    r = stats.mean_below(x, 1.5, 0.05)
    spread = t.ppf(0.95, 4) * x.std(ddof=1) / math.sqrt(5)
    assert r.upper == pytest.approx(1.0 + spread) and r.outcome == stats.PASS
    assert stats.mean_below(x, 0.5, 0.05).outcome == stats.FAIL
    assert stats.mean_below(x, 1.1, 0.05).outcome == stats.INCONCLUSIVE
    assert stats.mean_below(np.array([1.0]), 2.0, 0.05).outcome == stats.INCONCLUSIVE


def test_p95_power_and_cost_of_transport_requirements():
    from simgate.engine.rollouts import Episode, Rollouts
    from simgate.verdict import evaluate
    from tests.test_engine import make_case

    def episode(i, torque):
        return Episode(index=i, seed=0, success=True, length=50, ret=0.0, progress=2.0, terminated=None, message=None,
                       mean_abs_torque=np.array([torque]), peak_abs_torque=np.array([torque]),
                       step_hashes=np.zeros(50, dtype=np.uint64), actions=np.zeros((50, 1)), work=10.0, mass=1.0)

    torques = np.linspace(0.5, 1.0, 80)
    rollouts = Rollouts([episode(i, t) for i, t in enumerate(torques)], ["wheel"], 0.02, 50, "m")
    case = make_case(thresholds={"max_p95_torque": 1.2, "max_mean_power": 12.0, "max_cost_of_transport": 0.4})
    reqs = {r.name: r for r in evaluate(case, rollouts)}
    assert reqs["p95 of mean |torque| [wheel]"].outcome == "PASS"  # 80 episodes all below 1.2
    assert reqs["mean power (W)"].outcome == "PASS"  # 10 J in 1 s, every episode
    assert reqs["cost of transport"].outcome == "FAIL"  # 10 / (1 * 9.81 * 2) = 0.51 > 0.4
    few = Rollouts(rollouts.episodes[:40], ["wheel"], 0.02, 50, "m")
    [p95] = evaluate(make_case(thresholds={"max_p95_torque": 1.2}), few)
    assert p95.outcome == "INCONCLUSIVE" and "59 episodes" in p95.bound  # no finite bound below 59
    [high] = evaluate(make_case(thresholds={"max_p95_torque": 0.6}), rollouts)
    assert high.outcome == "FAIL"
