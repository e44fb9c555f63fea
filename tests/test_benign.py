"""The benign arm (issue 25.3): each perturbed case also runs the same policy on the same seeds
with its perturbations off, and reports what the perturbation costs, with a paired interval."""

import json

import numpy as np
import pytest

from simgate.benign import cost, paired_difference, wilson
from tests.test_end_to_end import gate


def test_the_interval_is_a_paired_difference_with_its_stated_coverage():
    # no difference at all: an interval around 0, inside [-1, 1]
    drop, low, high = paired_difference(40, 0, 0, 10)
    assert drop == 0 and -0.2 < low < 0 < high < 0.2
    # a sure loss: 40 of 40 without, 0 with
    drop, low, high = paired_difference(0, 40, 0, 0)
    assert drop == 1 and 0.8 < low < 1 and high == 1
    # swapping the arms mirrors the interval
    d1, l1, h1 = paired_difference(20, 9, 3, 8)
    d2, l2, h2 = paired_difference(20, 3, 9, 8)
    assert (d1, l1, h1) == pytest.approx((-d2, -h2, -l2))
    # pairing: strongly correlated arms give a narrower interval than the two marginal Wilson intervals would
    _, low, high = paired_difference(70, 10, 0, 20)
    l1, u1 = wilson(80, 100)
    l2, u2 = wilson(70, 100)
    assert high - low < (u1 - l2) - (l1 - u2)
    # coverage by simulation (seeded): correlated pairs, true drop 0.15
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(2000):
        base = rng.random(60) < 0.85
        hit = base & (rng.random(60) < 0.15 / 0.85)  # a perturbation that breaks some successes
        pert = base & ~hit
        arm = cost(base, pert)
        covered += arm["low"] <= 0.15 <= arm["high"]
    assert covered / 2000 >= 0.93  # Newcombe's method 10 is close to its 95 %


def test_a_perturbed_case_reports_its_benign_arm_everywhere_and_caches_it(tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "push.yaml").write_text(
        "name: push\nenv: balancebot\nepisodes: 20\nhorizon: 6.0\nseed: 4\nperturbations:\n  - kind: apply_pushes\n"
        "    params: {body: chassis, force: 14, duration: 0.1, interval: [1.0, 2.0], until: 4.0, direction: x}\n"
        "thresholds:\n  min_success_rate: 0.1\n")
    (scenarios / "flat.yaml").write_text(
        "name: flat\nenv: balancebot\nepisodes: 20\nhorizon: 6.0\nseed: 4\nthresholds:\n  min_success_rate: 0.1\n")
    args = ("-n", "2", "--scenarios", str(scenarios), "--simgate-reports", str(tmp_path / "reports"),
            "--policy", "balancebot-lqr-sluggish", "--baseline", "none")
    run = gate(*args)
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    pushed, flat = summary["cases"]["push-balancebot-lqr-sluggish"], summary["cases"]["flat-balancebot-lqr-sluggish"]
    assert flat["benign"] is None  # nothing to switch off
    arm = pushed["benign"]
    assert arm["n"] == 20 and arm["perturbed_successes"] == int(round(20 * pushed["metrics"]["success"]))
    assert arm["benign_successes"] == 20 and arm["drop"] > 0.3 and arm["low"] > 0  # pushes cost the sluggish LQR
    assert arm["lost"] + arm["both"] == arm["benign_successes"] and arm["gained"] == 0
    assert pushed["episodes_run"] == 40  # its own 20 and the benign arm's 20
    assert "perturbation costs (success without minus with" in run.stdout
    assert f"push: balancebot-lqr-sluggish {100 * arm['drop']:.0f} points" in run.stdout
    again = gate(*args)
    assert json.loads((tmp_path / "reports" / "summary.json").read_text())["cases"]["push-balancebot-lqr-sluggish"][
        "episodes_run"] == 0 and again.returncode == run.returncode  # the benign arm came from the cache too
    # a scenario may switch it off
    (scenarios / "push.yaml").write_text((scenarios / "push.yaml").read_text() + "benign: false\n")
    gate(*args)
    assert json.loads((tmp_path / "reports" / "summary.json").read_text())["cases"]["push-balancebot-lqr-sluggish"][
        "benign"] is None
