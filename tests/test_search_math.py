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


# confirm --------------------------------------------------------------------------------------

def test_the_confirmation_brackets_the_interval_widened_on_the_boundarys_sides():
    from simgate.search import confirm

    force = {"status": "crosses", "estimate": 11.3, "low": 10.8, "high": 11.7, "side": "below"}
    assert confirm.bracket(force, 1, 30) == pytest.approx((10.8 - confirm.MARGIN * 0.9, 11.7 + confirm.MARGIN * 0.9))
    # success above the crossing (friction): the safe level is the high end
    grip = {"status": "crosses", "estimate": 0.45, "low": 0.4, "high": 0.5, "side": "above"}
    safe, failing = confirm.bracket(grip, 0.2, 1.0)
    assert safe > 0.5 and failing < 0.4
    # clipped to the range, and out to whole steps on a stepped axis
    delay = {"status": "crosses", "estimate": 7.1, "low": 5.0, "high": 10.0, "side": "below"}
    assert confirm.bracket(delay, 0, 12, step=5.0) == (0.0, 10.0)
    assert confirm.bracket({"status": "crosses", "low": 6.0, "high": 7.0, "side": "below"}, 0, 30, step=5.0) == (5.0, 10.0)
    for entry in ({"status": "holds_everywhere", "low": 3.0, "high": 5.0, "side": "below"}, {"status": "not_run"}, {}):
        assert confirm.bracket(entry, 0, 30) is None
    # Bonferroni over the axes put to confirmation and over the looks; contradiction over both sides too
    assert confirm.levels(0.05, 3) == pytest.approx((0.05 / 9, 0.05 / 18))


def _truth_at(target, crossing, slope):
    return lambda x: expit(_logit(target) + slope * (np.asarray(x) - crossing))


def _confirm(entry, truth, budget, seed, low=1.0, high=30.0, target=0.75, family=1):
    from simgate.search import confirm

    pair = confirm.bracket(entry, low, high)
    p = truth(np.array(pair))[None, :]
    rng = np.random.default_rng(seed)
    return confirm.sequential(lambda c, s, nth: rng.random(len(c)) < p[c, s], 1, budget, target, 0.05, family=family)


def test_a_right_boundary_is_confirmed_and_a_wrong_one_never_is():
    """A push-force-like truth (crossing 11.5 N, slope -1.37/N, target 0.75): its boundary, fitted by
    the plan on 200 episodes, is confirmed on 150 fresh ones; a boundary fitted on data 3 N too kind
    (the seeds of a lucky stage, say), or one claimed by hand where the truth is not, is never
    confirmed on the true curve: contradicted, or at worst left unconfirmed."""
    target = 0.75
    truth = _truth_at(target, 11.5, -1.37)
    confirmed = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        plan = boundary.plan_levels(lambda x, idx: rng.random(len(x)) < truth(x), 1, 30, 200, target)
        k, n, _, _, sides, axes, used = _confirm(plan.boundary.to_dict(), truth, 150, 100 + seed, family=3)
        confirmed += axes[0] == "confirmed"
        assert axes[0] != "contradicted" and used <= 150 and n.sum() == used
        kind = _truth_at(target, 14.5, -1.37)  # the boundary stage saw a policy 3 N better than it is
        plan = boundary.plan_levels(lambda x, idx: rng.random(len(x)) < kind(x), 1, 30, 200, target)
        assert abs(plan.boundary.estimate - 14.5) < 1.0
        assert _confirm(plan.boundary.to_dict(), truth, 150, 200 + seed)[5][0] != "confirmed"
        for low, high in ((16.0, 17.0), (5.0, 6.0), (12.0, 12.4)):  # too high, too low, a little too high
            wrong = {"status": "crosses", "estimate": (low + high) / 2, "low": low, "high": high, "side": "below"}
            assert _confirm(wrong, truth, 150, 300 + seed)[5][0] != "confirmed"
    assert confirmed >= 8
    # far off, the fresh episodes say so: the safe level fails, or the failing level holds
    far = {"status": "crosses", "estimate": 16.5, "low": 16.0, "high": 17.0, "side": "below"}
    k, n, lower, upper, sides, axes, _ = _confirm(far, truth, 150, 7)
    assert axes[0] == "contradicted" and sides[0, 0] == "contradicted" and upper[0, 0] < target


def test_false_confirmation_stays_below_alpha_at_the_least_favourable_truth():
    """Simulated as 20,000 claims of one run (each side's schedule depends only on the others'
    outcomes, so each claim is judged as if alone), with the family set to one axis: a claim whose
    failing level sits exactly at the target (its safe level always succeeds) is confirmed at most
    alpha of the time, and so is one whose safe level sits just below the target; a true claim
    at the edge (safe level exactly at the target, failing just below) is contradicted at most
    alpha of the time."""
    from simgate.search import confirm

    alpha, target, claims, each = 0.05, 0.75, 20_000, 60
    se = 3 * np.sqrt(alpha * (1 - alpha) / claims)
    for p_safe, p_failing, wrong in ((1.0, target, "confirmed"), (target - 1e-9, 0.0, "confirmed"),
                                     (target, target - 1e-9, "contradicted")):
        p = np.array([p_safe, p_failing])
        rng = np.random.default_rng(42)
        k, n, _, _, _, axes, used = confirm.sequential(lambda c, s, nth: rng.random(len(c)) < p[s], claims,
                                                       claims * each, target, alpha, family=1)
        rate = np.mean(axes == wrong)
        assert alpha / 10 < rate <= alpha + se, (p, wrong, rate)  # below alpha, yet not a test that never decides
        assert used <= claims * each
    # the family: three axes share alpha, each at a third of it
    p = np.array([1.0, target])
    rng = np.random.default_rng(43)
    axes = confirm.sequential(lambda c, s, nth: rng.random(len(c)) < p[s], claims, claims * each, target, alpha,
                              family=3)[5]
    assert np.mean(axes == "confirmed") <= alpha / 3 + 3 * np.sqrt(alpha / 3 / claims)
