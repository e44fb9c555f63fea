"""Sequential stopping: Wald's boundaries, the exact operating characteristic, and calibration
over hundreds of simulated gate runs (figures in docs/statistics.md)."""

import numpy as np
import pytest

from simgate.sequential import (
    Design,
    calibrated,
    decide,
    fixed_n,
    log_e_value,
    operating_characteristic,
)

SPRT = Design("sprt", 0.90, 0.95, 0.05, 0.10, 400)
ANYTIME = Design("anytime", 0.90, 0.95, 0.05, 0.10, 400)


def test_sprt_boundaries_are_walds_lines():
    # PASS if F <= 0.0724 n - 3.87, FAIL if F >= 0.0724 n + 3.01 (docs/statistics.md)
    for n in (60, 100, 200, 399):
        for f in range(0, n + 1):
            state = SPRT.state(n - f, f)
            if f <= 0.07236 * n - 3.869:
                assert state == "PASS", (n, f)
            elif f >= 0.07236 * n + 3.014:
                assert state == "FAIL", (n, f)
            else:
                assert state is None, (n, f)


def test_exact_operating_characteristic_matches_the_published_design():
    at_p0, at_p1 = operating_characteristic(SPRT, 0.90), operating_characteristic(SPRT, 0.95)
    assert at_p0.pass_probability <= 0.05  # Wald's thresholds are approximate; the exact figure is what counts
    assert at_p0.pass_probability == pytest.approx(0.0486, abs=5e-4)
    assert at_p1.pass_probability == pytest.approx(0.8996, abs=5e-4)
    total = at_p1.pass_probability + at_p1.fail_probability + at_p1.inconclusive_probability
    assert total == pytest.approx(1.0, abs=1e-12)
    # mean episodes to a decision, the published table: 43 / 149 / 92 / 63 (SPRT), 44 / 182 / 96 / 55 (anytime)
    for design, expected in ((SPRT, (43, 149, 92, 63)), (ANYTIME, (44, 182, 96, 55))):
        got = [operating_characteristic(design, p).expected_n for p in (0.85, 0.95, 0.97, 0.99)]
        np.testing.assert_allclose(got, expected, rtol=0.05)


def test_fixed_size_design_needs_the_published_episodes():
    assert fixed_n(0.90, 0.95, 0.05, 0.10) == pytest.approx(239, abs=25)
    assert fixed_n(0.90, 0.99, 0.05, 0.10) == 61  # 90 % power at true p = 0.99 needs 61


def test_e_value_closed_form_against_numerical_integration():
    from scipy.integrate import quad

    s, f, p0 = 40, 2, 0.9
    num = quad(lambda p: p ** s * (1 - p) ** f, p0, 1)[0] / (1 - p0)  # uniform prior truncated to (p0, 1]
    assert log_e_value(s, f, p0) == pytest.approx(np.log(num / (p0 ** s * (1 - p0) ** f)), rel=1e-9)


def test_decision_walks_index_order_and_stops_at_the_crossing():
    outcomes = [True] * 54 + [False] * 10
    d = decide(SPRT, outcomes)
    assert (d.outcome, d.n, d.successes) == ("PASS", 54, 54)  # the failures after the crossing do not count
    assert decide(SPRT, [False] * 4).outcome == "FAIL"
    assert decide(SPRT, [True] * 10).outcome == "CONTINUE"  # undecided and below the cap: needs more
    capped = Design("sprt", 0.90, 0.95, 0.05, 0.10, 20)
    assert decide(capped, [True] * 20).outcome == "INCONCLUSIVE"


@pytest.mark.parametrize("design", [SPRT, ANYTIME], ids=["sprt", "anytime"])
def test_calibration_over_simulated_gate_runs(design):
    """400 simulated gate runs per true rate, outcomes drawn from explicit generators."""
    runs, rng = 400, np.random.default_rng(20261129)

    def simulate(p):
        results = [decide(design, rng.random(design.max_n) < p) for _ in range(runs)]
        return np.array([r.outcome == "PASS" for r in results]), np.array([r.n for r in results])

    passed, _ = simulate(0.90)
    # false PASS at p = p0: at most alpha, allowing binomial noise of 400 runs (3 sd ≈ 0.033)
    assert passed.mean() <= design.alpha + 0.033
    passed, _ = simulate(0.95)
    assert passed.mean() >= operating_characteristic(design, 0.95).pass_probability - 0.045
    fixed = fixed_n(design.p0, design.p1, design.alpha, design.beta)
    for p in (0.85, 0.99):  # clear cases stop early
        _, used = simulate(p)
        assert used.mean() <= 0.6 * fixed, (p, used.mean(), fixed)


def test_calibration_keeps_the_exact_false_pass_rate_within_alpha():
    wald = Design("sprt", 0.90, 0.97, 0.05, 0.10, 300)
    assert operating_characteristic(wald, 0.90).pass_probability > 0.05  # Wald's line overshoots here
    fixed = calibrated(wald)
    assert operating_characteristic(fixed, 0.90).pass_probability <= 0.05
    assert fixed.boundaries()[0] - wald.boundaries()[0] <= 0.0201  # the smallest step that does it
    assert calibrated(SPRT) == SPRT  # already within alpha: unchanged
