"""The sequential paired regression test (simgate.pairedseq): its level, its power, the cap it
plans, and the runner asking it look by look. Level and power are checked by simulation through
the same function the runner judges with, on seeds other than the planning simulation's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simgate import pairedseq
from simgate.scenarios.case import Case
from simgate.scenarios.expand import default_design, project_detect

LEVEL = 0.05  # large enough that 4,000 paths measure it
PATHS = 4000


def _design(rate=0.9, level=LEVEL, drop=0.10):
    return pairedseq.plan(drop, 0.9, level, rate, (25, 50, 75, 100), 3000)


def _outcomes(design, b, c):
    """Per path: WORSE, RULED_OUT or UNDECIDED, taken at the first look that decides, as the runner stops."""
    log_e, log_w = pairedseq.evidence(b, c, design.looks, design.drop, design.rule_out_level)
    return pairedseq.first_decisions(log_e, log_w, design.level, design.rule_out_level)[1]


def _paths(seed, rate_b, rate_c, n):
    rng = np.random.default_rng(seed)
    return rng.random((PATHS, n)) < rate_b, rng.random((PATHS, n)) < rate_c


@pytest.mark.parametrize("rate", [0.5, 0.8, 0.95])
def test_an_unchanged_policy_is_flagged_worse_at_most_at_the_level_over_every_look(rate):
    design = _design()
    b, c = _paths(11, rate, rate, design.cap)  # independent: the most discordant pairs, each a coin flip
    flagged = np.mean(_outcomes(design, b, c) == pairedseq.WORSE)
    assert flagged <= LEVEL + 3 * math.sqrt(LEVEL * (1 - LEVEL) / PATHS)


def test_a_drop_of_the_declared_size_is_ruled_out_at_most_at_its_level():
    design = _design()
    b, c = _paths(12, 0.9, 0.8, design.cap)
    ruled = np.mean(_outcomes(design, b, c) == pairedseq.RULED_OUT)
    level = design.rule_out_level
    assert ruled <= level + 3 * math.sqrt(level * (1 - level) / PATHS)


@pytest.mark.parametrize("rate", [1.0, 0.9])
def test_the_planned_cap_flags_the_declared_drop_with_the_declared_power(rate):
    design = _design(rate)
    assert design.simulated_power >= 0.9 and design.looks == tuple(range(25, design.cap + 1, 25))
    b, c = _paths(13, rate, rate - 0.10, design.cap)  # independent, other seeds than the plan's
    assert np.mean(_outcomes(design, b, c) == pairedseq.WORSE) >= 0.9 - 3 * math.sqrt(0.09 / PATHS)
    # common random numbers: the candidate fails where the baseline does, and 10 points more
    rng = np.random.default_rng(14)
    extra = rng.random((PATHS, design.cap)) < 0.10 / rate
    assert np.mean(_outcomes(design, b, b & ~extra) == pairedseq.WORSE) >= 0.9


def test_the_cap_grows_with_discordance_and_no_cap_short_of_the_power_is_accepted():
    assert _design(1.0).cap < _design(0.9).cap < _design(0.7).cap
    with pytest.raises(pairedseq.InputError, match="short of 0.9"):
        pairedseq.plan(0.02, 0.9, 0.001, 0.7, (25, 50), 200)


def test_identical_outcomes_rule_the_drop_out_at_the_second_look_and_a_regression_is_worse():
    design = _design(level=0.001)
    same = np.ones(design.cap, dtype=bool)
    assert design.state(same[:25], same[:25])[0] is None
    state, figures = design.state(same[:50], same[:50])
    assert state == pairedseq.RULED_OUT and figures["p_worse_anytime"] == 1.0
    worse = same.copy()
    worse[::4] = False  # a quarter of the episodes lost
    state, figures = design.state(same[:100], worse[:100])
    assert state == pairedseq.WORSE and figures["p_worse_anytime"] <= 0.001


def _case(**overrides):
    base = dict(id="c", scenario="s", source="s.yaml", env="e", policy="cand", point={}, perturbations=(), episodes=100,
                horizon=1.0, seed=0, alpha=0.05, determinism_episodes=2, baseline="base",
                thresholds={"min_success_rate": 0.9}, regression_family=23, family_alpha=0.05)
    base.update(overrides)
    return Case(**base)


def test_the_default_design_plans_the_paired_test_at_the_family_s_level():
    case = default_design(_case())
    block = case.paired
    assert block["level"] == pytest.approx(0.05 * 0.5 / 23) and block["baseline_rate"] == 0.9
    assert block["looks"][:6] == [25, 50, 75, 100, 125, 150] and block["drop"] == 0.10 and block["power"] == 0.9
    short = default_design(_case(episodes=50)).paired["looks"]
    assert short[:6] == [13, 25, 38, 50, 63, 76]  # the group design's looks, then on by its first
    declared = default_design(_case(detect={"drop": 0.2, "power": 0.8, "baseline_rate": 1.0, "most": 5000, "auto": False}))
    assert declared.paired["drop"] == 0.2 and declared.paired["cap"] < block["cap"]
    assert default_design(_case(), {"drop": 0.3}).paired["drop"] == 0.3  # the project's default
    assert default_design(_case(baseline="cand")).paired is None  # compared with itself
    assert default_design(_case(design="fixed")).paired is None  # one look, the fixed-size McNemar test
    # a requirement that needs a fixed size keeps one look for itself; the comparison goes on past it
    fixed = default_design(_case(thresholds={"min_success_rate": 0.9, "max_peak_torque": 1.0}))
    assert fixed.sequential is None and fixed.paired["looks"][:3] == [100, 125, 150]


def test_the_project_default_comes_from_pyproject_and_a_typo_names_the_file(tmp_path):
    assert project_detect(tmp_path) == {}
    (tmp_path / "pyproject.toml").write_text("[tool.simgate.detect]\ndrop = 0.05\npower = 0.95\n")
    assert project_detect(tmp_path) == {"drop": 0.05, "power": 0.95}
    (tmp_path / "pyproject.toml").write_text("[tool.simgate.detect]\ndorp = 0.05\n")
    with pytest.raises(pairedseq.InputError, match=r"pyproject.toml:2: \[tool.simgate.detect\]: unknown key 'dorp'.*'drop'"):
        project_detect(tmp_path)


class _Source:
    """Episodes whose success is a fixed column: what the runner reads of a rig."""

    engine = None

    def __init__(self, successes):
        self.successes, self.asked = successes, []

    def episodes(self, indices):
        indices = list(indices)
        self.asked += indices
        return [dataclasses.make_dataclass("E", ["success", "index"])(bool(self.successes[i]), i) for i in indices]

    def rollouts(self, episodes):
        return dataclasses.make_dataclass("R", ["episodes", "joint_names"])(list(episodes), [])


def test_the_runner_stops_an_unchanged_candidate_once_the_drop_is_ruled_out():
    from simgate import runner

    case = default_design(_case())
    cand, base = _Source(np.ones(2000)), _Source(np.ones(2000))
    rollouts, decision, (candidate, compared) = runner.collect(case, cand, base)
    assert decision.outcome == "PASS" and decision.n == 50
    assert len(rollouts.episodes) == len(compared.episodes) == 50 and base.asked == list(range(50))


def test_the_runner_goes_past_the_absolute_cap_while_the_comparison_is_undecided():
    from simgate import runner

    case = default_design(_case(thresholds={"min_success_rate": 0.8}))
    worse = np.ones(2000)
    worse[::20] = 0  # 5 points below a perfect baseline: the success rate passes, the comparison takes longer
    rollouts, decision, (candidate, compared) = runner.collect(case, _Source(worse), _Source(np.ones(2000)))
    # the absolute test decided within its own looks, and judges those episodes only
    assert decision.outcome == "PASS" and len(rollouts.episodes) == decision.judged <= 100
    assert len(candidate.episodes) > 100 and len(compared.episodes) == len(candidate.episodes)
    state, _ = pairedseq.design_of(case).state(np.ones(len(candidate.episodes)), worse[:len(candidate.episodes)])
    assert state == pairedseq.WORSE


def test_the_runner_stops_at_once_when_the_success_rate_fails():
    from simgate import runner

    case = default_design(_case())
    rollouts, decision, (candidate, compared) = runner.collect(case, _Source(np.zeros(2000)), _Source(np.ones(2000)))
    assert decision.outcome == "FAIL" and len(rollouts.episodes) == 25 == len(compared.episodes)


def test_a_case_of_one_look_judges_its_episodes_and_compares_on_past_them():
    from simgate import runner

    case = default_design(_case(thresholds={"min_success_rate": 0.9, "max_peak_torque": 1.0}))
    worse = np.ones(2000)
    worse[::20] = 0
    rollouts, decision, (candidate, compared) = runner.collect(case, _Source(worse), _Source(np.ones(2000)))
    assert decision is None and len(rollouts.episodes) == 100  # its requirements: on its 100 episodes, as before
    assert len(candidate.episodes) == len(compared.episodes) > 100
    same = runner.collect(case, _Source(np.ones(2000)), _Source(np.ones(2000)))
    assert len(same[0].episodes) == len(same[2][0].episodes) == 100  # identical: ruled out at its one look


def test_the_member_p_value_of_a_sequential_case_is_the_anytime_one():
    from simgate import verdict

    case = default_design(_case())
    design = pairedseq.design_of(case)

    def rollouts(column):
        episodes = [dataclasses.make_dataclass("E", ["success", "index", "mean_abs_torque"])(bool(s), i, np.zeros(0))
                    for i, s in enumerate(column)]
        return dataclasses.make_dataclass("R", ["episodes", "joint_names", "column"])(
            episodes, [], lambda name: np.array([getattr(e, name) for e in episodes]))

    b = np.ones(100)
    c = b.copy()
    c[:9] = 0  # McNemar's fixed-size p = 2^-9 ≈ 0.002; the anytime p is larger
    [req] = verdict.paired(case, "base", rollouts(b), rollouts(c), design=design)
    numbers = req["numbers"] if isinstance(req, dict) else req.numbers
    assert numbers["p_value"] == numbers["sequential"]["p_worse_anytime"] > numbers["p_worse"]
    assert numbers["detectable_drop_90"] == 0.10 and "sequential paired test" in req.observed
    # a case stopped by its own FAIL before the comparison decided says so, not "at the cap"
    [early] = verdict.paired(case, "base", rollouts(b[:25]), rollouts(c[:25]), design=design)
    assert "undecided when the case stopped at 25 of its" in early.observed
    assert early.numbers["sequential"]["state"] == pairedseq.UNDECIDED
