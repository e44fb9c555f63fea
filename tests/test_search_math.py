"""The search's statistics: each test breaks if the math it names breaks."""

import numpy as np
import pytest
from scipy.special import expit

from simgate.search import boundary, certify, design, risk, sensitivity


def _logit(t):
    return np.log(t / (1 - t))


# design ---------------------------------------------------------------------------------------

def test_space_filling_is_in_the_cube_spread_and_deterministic():
    a = design.space_filling(100, 4, np.random.default_rng(5))
    b = design.space_filling(100, 4, np.random.default_rng(5))
    c = design.space_filling(100, 4, np.random.default_rng(6))
    assert a.shape == (100, 4) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    # each axis' quarters get ~25 points (a low-discrepancy set, not clumped)
    for j in range(4):
        counts = np.histogram(a[:, j], bins=4, range=(0, 1))[0]
        assert counts.min() >= 20
    lhs = design.space_filling(40, 3, np.random.default_rng(1), method="lhs")
    for j in range(3):  # a Latin hypercube has exactly one point per 1/40 slice per axis
        assert np.array_equal(np.sort(np.floor(lhs[:, j] * 40)), np.arange(40))


def test_focused_proposals_sit_where_the_model_is_near_the_target():
    rng = np.random.default_rng(0)
    U = design.space_filling(512, 2, rng)
    y = rng.random(512) < expit(8 - 16 * U[:, 0])  # boundary at u0 = 0.5 (p = 0.5)
    model = risk.RiskModel.fit(U, y)
    P = design.focused(model, 64, 2, np.random.default_rng(1), target=0.75)
    again = design.focused(model, 64, 2, np.random.default_rng(1), target=0.75)
    assert np.array_equal(P, again) and P.shape == (64, 2)
    lo, hi = design.effective_band(0.75)
    p = model.predict(P)
    assert np.all((p >= lo) & (p <= hi))
    # the band (0.3-0.95) lies over u0 in about 0.15-0.6: uniform points would have half of
    # them outside it, these have none or nearly none
    assert np.mean(np.abs(P[:, 0] - 0.4) < 0.25) > 0.95


# risk -----------------------------------------------------------------------------------------

def test_auc_by_hand_with_ties():
    y = np.array([True, True, False, False, True])
    p = np.array([0.9, 0.4, 0.4, 0.1, 0.7])
    # pairs (pos, neg): (.9,.4)=1 (.9,.1)=1 (.4,.4)=.5 (.4,.1)=1 (.7,.4)=1 (.7,.1)=1 -> 5.5 / 6
    assert risk.auc(y, p) == pytest.approx(5.5 / 6)
    assert risk.auc(y, -p) == pytest.approx(0.5 / 6)
    assert risk.auc(y, np.zeros(5)) == pytest.approx(0.5)
    assert risk.auc(np.ones(3, bool), [0.1, 0.2, 0.3]) is None


def test_risk_model_recovers_a_quadratic_logistic_truth_and_round_trips():
    rng = np.random.default_rng(3)
    U = rng.random((4000, 3))
    truth = 3 - 10 * (U[:, 0] - 0.2) ** 2 - 6 * U[:, 1] * U[:, 0] + 0 * U[:, 2]
    y = rng.random(4000) < expit(truth)
    model = risk.RiskModel.fit(U, y, l2=0.1, names=["f", "d", "m"])
    test = rng.random((2000, 3))
    p_true = expit(3 - 10 * (test[:, 0] - 0.2) ** 2 - 6 * test[:, 1] * test[:, 0])
    err = np.abs(model.predict(test) - p_true)
    assert np.mean(err) < 0.03 and np.max(err) < 0.15
    y_test = rng.random(2000) < p_true
    assert risk.auc(y_test, model.predict(test)) > risk.auc(y_test, -test[:, 2]) + 0.2
    data = model.to_dict()
    assert "f*d" in data["features"] and len(data["coef"]) == len(data["features"])
    again = risk.RiskModel.from_dict(data)
    assert np.allclose(again.predict(test), model.predict(test))
    # same data -> same coefficients, bit for bit (Newton, no randomness)
    assert np.array_equal(risk.RiskModel.fit(U, y, l2=0.1).coef, model.coef)


def test_risk_model_stays_finite_on_separated_data_and_finds_the_1d_crossing():
    U = np.linspace(0, 1, 50)[:, None] * np.ones((1, 2))
    U[:, 1] = 0.5
    y = U[:, 0] < 0.6
    model = risk.RiskModel.fit(U, y)  # cross-validation picks a small penalty here
    assert model.l2 <= 0.01 and np.all(np.isfinite(model.coef))
    u = model.boundary_1d(0, [0.0, 0.5], 0.75)
    assert 0.55 < u < 0.62
    assert np.all(np.isfinite(risk.RiskModel.fit(U, y, l2=1e-3).coef))
    assert model.boundary_1d(0, [0.0, 0.5], 1e-12) is None  # never that low inside the cube


# boundary -------------------------------------------------------------------------------------

def test_boundary_interval_covers_a_logistic_truth_at_about_the_stated_rate():
    rng = np.random.default_rng(2024)
    truth, slope, target = 13.0, -0.8, 0.75
    levels = np.linspace(0, 30, 11)
    trials = np.full(11, 30)
    p = expit(_logit(target) + slope * (levels - truth))
    covered, errors = 0, []
    for _ in range(200):
        k = rng.binomial(trials, p)
        b = boundary.estimate(levels, k, trials, target, low=0, high=30)
        assert b.status == "crosses" and b.side == "below"
        covered += b.low <= truth <= b.high
        errors.append(b.estimate - truth)
    assert covered >= 180  # stated 95 %; 180/200 is far below what a broken interval gives
    assert abs(np.mean(errors)) < 0.3


def test_boundary_statuses_and_an_increasing_axis():
    assert boundary.estimate([0, 10, 20, 30], [30] * 4, [30] * 4, 0.75).status == "holds_everywhere"
    assert boundary.estimate([0, 10, 20, 30], [2, 1, 0, 0], [30] * 4, 0.75).status == "fails_everywhere"
    # friction-like: success rises with the level; separated data: the crossing is in the gap
    b = boundary.estimate([0.2, 0.4, 0.6, 0.8, 1.0], [0, 0, 40, 40, 40], [40] * 5, 0.75)
    assert b.status == "crosses" and b.side == "above" and 0.4 < b.low < b.estimate < b.high < 0.6
    # a stepped axis (whole 5 ms physics steps): the interval cannot be finer than one step
    free = boundary.estimate([0, 5, 10, 15], [120, 112, 2, 0], [120] * 4, 0.75)
    stepped = boundary.estimate([0, 5, 10, 15], [120, 112, 2, 0], [120] * 4, 0.75, step=5.0)
    assert 5 < free.low < free.high < 10 and (stepped.low, stepped.high) == (5.0, 10.0)
    assert stepped.estimate == free.estimate


def test_adaptive_plan_finds_the_crossing_deterministically_within_budget():
    truth, target = 0.4, 0.8

    def run(seed):
        rng = np.random.default_rng(seed)
        seen = []

        def evaluate_axis(levels, idx):
            seen.append(np.array(idx))
            return rng.random(len(levels)) < expit(_logit(target) - 12.0 * (levels - truth))

        plan = boundary.plan_levels(evaluate_axis, 0.2, 1.0, 400, target, step=0.01)
        return plan, np.concatenate(seen)

    plan, idx = run(11)
    again, _ = run(11)
    assert plan.episodes <= 400 and plan.trials.sum() == plan.episodes
    assert len(np.unique(idx)) == len(idx)  # every row its own seed
    assert np.allclose(np.round(plan.levels / 0.01), plan.levels / 0.01)
    assert plan.boundary.status == "crosses" and abs(plan.boundary.estimate - truth) < 0.05
    assert np.array_equal(plan.successes, again.successes) and plan.boundary == again.boundary
    # later rounds are concentrated: most episodes within the coarse pass' spacing of the truth
    near = np.abs(plan.levels - truth) < 0.12
    assert plan.trials[near].sum() > 0.6 * plan.episodes
    assert set(plan.to_dict()) >= {"estimate", "low", "high", "status", "levels", "successes", "trials"}
    # the adaptive choice of levels keeps the interval honest (100 seeds gave 94 covered)
    bounds = [run(s)[0].boundary for s in range(20)]
    covered = sum(b.low <= truth <= b.high for b in bounds)
    assert covered >= 16


# sensitivity ----------------------------------------------------------------------------------

def _ishigami(U):
    X = -np.pi + 2 * np.pi * U
    return np.sin(X[..., 0]) + 7 * np.sin(X[..., 1]) ** 2 + 0.1 * X[..., 2] ** 4 * np.sin(X[..., 0])


def test_sobol_indices_of_ishigami_and_of_a_binary_outcome():
    rng = np.random.default_rng(7)
    A, B, AB = sensitivity.saltelli_design(4096, 3, rng)
    assert AB.shape == (3, 4096, 3) and np.array_equal(AB[1][:, [0, 2]], A[:, [0, 2]])
    out = sensitivity.indices(_ishigami(A), _ishigami(B), _ishigami(AB), np.random.default_rng(8))
    first = [0.3139, 0.4424, 0.0]
    total = [0.5576, 0.4424, 0.2437]
    for i in range(3):
        est, lo, hi = out["first"][i]
        assert abs(est - first[i]) < 0.05 and lo <= est <= hi
        est, lo, hi = out["total"][i]
        assert abs(est - total[i]) < 0.05 and lo <= est <= hi
    # binary: success iff u0 < 0.5 -- all of its variance is axis 0's, none is axis 1's
    f = lambda U: (U[..., 0] < 0.5).astype(float)
    A, B, AB = sensitivity.saltelli_design(1024, 2, np.random.default_rng(9))
    b = sensitivity.indices(f(A), f(B), f(AB), np.random.default_rng(10))
    assert b["first"][0][0] > 0.85 and b["total"][0][0] > 0.85
    assert abs(b["first"][1][0]) < 0.05 and b["total"][1][0] == 0.0
    same = sensitivity.indices(f(A), f(B), f(AB), np.random.default_rng(10))
    assert same == b
    flat = sensitivity.indices(np.ones(8), np.ones(8), np.ones((2, 8)), np.random.default_rng(0))
    assert flat["first"][0] == [0.0, 0.0, 0.0] and flat["variance"] == 0.0


# certify --------------------------------------------------------------------------------------

def test_covering_design_has_the_corners_and_holds_other_axes_at_nominal():
    U = certify.covering_design([[0, 0.4], [0.5, 0.5], [0.1, 0.3]], 3)
    assert U.shape == (9, 3) and np.all(U[:, 1] == 0.5)
    corners = {(a, b) for a in (0, 0.4) for b in (0.1, 0.3)}
    assert corners <= {(round(u[0], 9), round(u[2], 9)) for u in U}


def test_decide_on_constructed_counts():
    assert certify.decide([60] * 4, [60] * 4, 0.9, 0.05).status == "PASS"
    cert = certify.decide([60, 60, 30, 60], [60] * 4, 0.9, 0.05)
    assert cert.status == "FAIL" and cert.failing == [2]
    assert certify.decide([60, 60, 55, 60], [60] * 4, 0.9, 0.05).status == "INCONCLUSIVE"
    # exactness of the per-point bounds: 60/60 at level .05 -> .05 ** (1/60)
    assert cert.lower[0] == pytest.approx(0.05 ** (1 / 60))
    assert cert.level == pytest.approx(0.05 / 4) and cert.level_pass == 0.05


def test_family_wise_errors_stay_below_alpha_by_simulation():
    rng = np.random.default_rng(123)
    alpha, target, n, m = 0.05, 0.8, 60, 9
    # false FAIL: every point exactly at the target (the worst case for a FAIL claim)
    k = rng.binomial(n, target, size=(4000, m))
    false_fail = np.mean([certify.decide(row, [n] * m, target, alpha).status == "FAIL" for row in k])
    # false PASS: one point just below target, the others perfect (the worst case for PASS)
    p = np.full(m, 0.999)
    p[4] = target - 1e-9
    k = rng.binomial(n, p, size=(4000, m))
    false_pass = np.mean([certify.decide(row, [n] * m, target, alpha).status == "PASS" for row in k])
    assert false_fail <= alpha and false_pass <= alpha
    assert false_pass > 0.01  # the PASS side is not needlessly corrected: it spends its alpha


def test_sequential_certification_decides_and_keeps_its_level():
    target, alpha = 0.8, 0.05
    good = np.array([0.99] * 4)

    def make(p, seed):
        rng = np.random.default_rng(seed)
        return lambda pts, idx: rng.random(len(pts)) < p[pts]

    cert, k, n, used = certify.sequential(make(good, 0), 4, 800, target, alpha, looks=3)
    assert cert.status == "PASS" and used <= 800 and n.sum() == used
    bad = good.copy()
    bad[2] = 0.5
    cert, k, n, used = certify.sequential(make(bad, 1), 4, 800, target, alpha, looks=3)
    assert cert.status == "FAIL" and cert.failing == [2]
    # false PASS with one point at the target, over repetitions
    at = good.copy()
    at[1] = target
    passes = sum(certify.sequential(make(at, s), 4, 600, target, alpha, looks=3)[0].status == "PASS"
                 for s in range(300))
    assert passes / 300 <= alpha
