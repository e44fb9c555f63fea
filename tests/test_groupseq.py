"""The default design of a gating case: the exact group-sequential test of its success rate
(simgate.groupseq), its level over all looks, and which cases get it."""

import dataclasses

import numpy as np
import pytest

from simgate.distributions import binom_cdf, binom_sf
from simgate.groupseq import GroupDesign, characteristic, decide, planned_looks
from simgate.scenarios.case import Case
from simgate.scenarios.expand import default_design


def _fixed_counts(n, p0, alpha):
    k = np.arange(n + 1)
    tails = binom_sf(k - 1, n, p0)
    up = int(np.nonzero(tails <= alpha)[0][0]) if (tails <= alpha).any() else n + 1
    cdf = binom_cdf(k, n, p0)
    down = int(np.nonzero(cdf <= alpha)[0][-1]) if (cdf <= alpha).any() else -1
    return up, down


@pytest.mark.parametrize("cap", [20, 50, 64, 100, 150, 256, 400])
@pytest.mark.parametrize("p0", [0.5, 0.75, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_every_look_together_keeps_the_level_exactly(cap, p0, alpha):
    design = GroupDesign(p0, alpha, planned_looks(cap))
    at_p0 = characteristic(design, p0)
    assert at_p0.pass_probability <= alpha * (1 + 1e-9)
    assert at_p0.fail_probability <= alpha * (1 + 1e-9)
    below = characteristic(design, p0 - 0.02 if p0 > 0.5 else p0 / 2)
    assert below.pass_probability <= at_p0.pass_probability  # p0 is the worst case
    # the last look costs at most one success against the fixed-size exact test on the cap
    up, down = _fixed_counts(cap, p0, alpha)
    assert up <= design.pass_counts[-1] <= up + 1 and down - 1 <= design.fail_counts[-1] <= down


def test_the_exact_level_agrees_with_a_simulation_through_decide():
    design = GroupDesign(0.9, 0.05, planned_looks(100))
    rng = np.random.default_rng(20261207)
    runs = 20_000
    outcomes = rng.random((runs, 100)) < 0.9
    decisions = [decide(design, row) for row in outcomes]
    passed = np.mean([d.outcome == "PASS" for d in decisions])
    exact = characteristic(design, 0.9)
    se = np.sqrt(exact.pass_probability * (1 - exact.pass_probability) / runs)
    assert abs(passed - exact.pass_probability) < 4 * se
    assert np.mean([d.n for d in decisions]) == pytest.approx(exact.expected_n, rel=0.01)


def test_a_clear_case_stops_at_half_its_episodes_and_a_clear_failure_sooner():
    design = GroupDesign(0.9, 0.05, planned_looks(100))
    assert design.looks == (25, 50, 75, 100)
    assert decide(design, [True] * 100).n == 50 and decide(design, [True] * 100).outcome == "PASS"
    failing = [i % 3 != 0 for i in range(100)]  # 67 %
    assert decide(design, failing).outcome == "FAIL" and decide(design, failing).n == 25
    assert characteristic(design, 1.0).expected_n == 50


def test_an_undecided_last_look_is_inconclusive_and_no_look_is_skipped():
    design = GroupDesign(0.9, 0.05, planned_looks(100))
    outcomes = [i % 10 != 0 for i in range(100)]  # exactly 90 %
    d = decide(design, outcomes)
    assert (d.outcome, d.n, d.look) == ("INCONCLUSIVE", 100, 3)
    assert decide(design, outcomes[:60]).outcome == "CONTINUE"


def _case(**overrides):
    base = dict(id="c", scenario="s", source="s.yaml", env="e", policy="p", point={}, perturbations=(), episodes=100,
                horizon=1.0, seed=0, alpha=0.05, determinism_episodes=2,
                thresholds={"min_success_rate": 0.9, "max_mean_torque": 1.0, "deterministic": True,
                            "regression_margin": 0.05, "torque_regression_margin": 0.1})
    base.update(overrides)
    return Case(**base)


def test_a_gating_case_judged_at_looks_gets_the_group_design():
    case = default_design(_case())
    assert case.sequential["method"] == "group" and case.sequential["default"] is True
    assert default_design(_case(baseline="p")).paired is None  # compared with itself: nothing paired
    assert default_design(_case(baseline="other")).paired["drop"] == 0.10  # the sequential paired test


@pytest.mark.parametrize("change", [
    {"design": "fixed"},
    {"gate": False},
    {"earlier_looks": (50,)},
    {"thresholds": {"min_success_rate": 0.9, "max_peak_torque": 1.0}},
    {"thresholds": {"min_success_rate": 0.9, "max_p95_torque": 1.0}},
    {"thresholds": {"max_mean_torque": 1.0}},
    {"sequential": {"method": "sprt", "p1": 0.95, "beta": 0.1, "batch": 32, "min_episodes": None, "looks": 4}},
])
def test_a_case_that_cannot_be_judged_at_looks_keeps_its_own_design(change):
    case = _case(**change)
    assert default_design(case) == case


def test_the_schema_takes_group_without_p1_and_refuses_p1_on_it():
    from pydantic import ValidationError

    from simgate.scenarios.schema import Sequential

    assert Sequential(method="group").looks == 4
    with pytest.raises(ValidationError, match="no p1"):
        Sequential(method="group", p1=0.95)
    with pytest.raises(ValidationError, match="needs p1"):
        Sequential(method="sprt")


def test_the_runner_stops_at_the_first_look_every_requirement_is_decided(monkeypatch):
    from simgate import runner

    case = default_design(_case(thresholds={"min_success_rate": 0.9}))
    calls = []

    class Source:
        engine = None

        def episodes(self, indices):
            indices = list(indices)
            calls.append((indices[0], indices[-1]))
            return [dataclasses.make_dataclass("E", ["success", "index"])(True, i) for i in indices]

        def rollouts(self, episodes):
            return dataclasses.make_dataclass("R", ["episodes", "joint_names"])(list(episodes), [])

    rollouts, decision, compared = runner.collect(case, Source())
    assert compared is None  # no baseline: nothing paired
    assert calls == [(0, 24), (25, 49)]  # two looks, nothing run past the second
    assert decision.outcome == "PASS" and decision.n == decision.judged == 50 and len(rollouts.episodes) == 50


def test_the_gate_runs_a_clear_case_to_its_second_look_and_a_fixed_one_to_the_end(tmp_path):
    from tests.test_end_to_end import gate, summary

    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    body = ("env: balancebot\nepisodes: 100\nhorizon: 3.0\nseed: 5\n"
            "thresholds: {min_success_rate: 0.9, max_mean_torque: {wheel: 0.5}}\n")
    # more determinism re-runs asked for than the episodes the case stops at: the judged ones are re-run
    (scenarios / "a.yaml").write_text("name: looks\ndeterminism_episodes: 60\n" + body.replace("}}", "}, deterministic: true}"))
    (scenarios / "b.yaml").write_text("name: one_look\ndesign: fixed\n" + body)
    run = gate("-n", "2", "--scenarios", str(scenarios), "--simgate-reports", str(tmp_path / "r"),
               "--policy", "balancebot-lqr", "--baseline", "none")
    assert run.returncode == 0, run.stdout[-3000:]
    cases = summary(tmp_path / "r")["cases"]
    looks, fixed = cases["looks-balancebot-lqr"], cases["one_look-balancebot-lqr"]
    [req] = [r for r in looks["requirements"] if r["kind"] == "success_rate"]
    assert req["outcome"] == "PASS" and req["numbers"]["method"] == "group" and req["numbers"]["look"] == 2
    assert looks["episodes"] == 50 and req["numbers"]["false_pass_at_p0"] <= 0.05
    assert "look 2 of 4" in req["observed"] and "exact false PASS" in req["bound"]
    [torque] = [r for r in looks["requirements"] if r["kind"] == "mean_torque"]
    assert torque["outcome"] == "PASS" and torque["numbers"]["n"] == 50  # judged where the case stopped
    [same] = [r for r in looks["requirements"] if r["kind"] == "determinism"]
    assert same["outcome"] == "PASS" and same["numbers"]["rerun"] == 50
    assert fixed["episodes"] == 100
    assert [r["numbers"].get("method") for r in fixed["requirements"] if r["kind"] == "success_rate"] == [None]


def test_the_plan_says_a_case_judged_at_looks_may_stop_before_its_planned_episodes():
    from simgate.study import plan_lines

    entry = {"design": {"sequential": {"method": "group"}}, "planned": {"episodes": 100, "detectable_drop_90": None,
                                                                          "baseline_rate": 0.9, "rate_source": "x"},
             "gate": True, "baseline": None, "policy": "p"}
    lines = plan_lines({"hash": "0" * 64, "cases": {"c": entry, "d": {**entry, "design": {}}}})
    assert lines[0].endswith("200 planned episodes (study 000000000000); at most: 1 case(s) judged at looks may stop "
                             "at an earlier one")
    assert "group-sequential, cap" in lines[2] and "fixed" in lines[3]
