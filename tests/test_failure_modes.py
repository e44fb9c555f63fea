"""Every failure mode of the taxonomy produced for real, by a shipped policy and scenario or a
deliberately broken test policy, and classified as such."""

import numpy as np
import pytest

from simgate.classify.oscillating import high_band_share
from simgate.policies.spec import PolicySpec
from simgate.runner import run_case
from tests.test_engine import make_case


def _register(host, name, entry, env="balancebot", sizes=(4, 1)):
    if name not in host.registries.policies.names():
        host.registries.policies.add(name, PolicySpec(name=name, env=env, format="scripted", observation_size=sizes[0],
                                                      action_size=sizes[1], entry=entry))


def _modes(host, policy, **kw):
    kw.setdefault("thresholds", {"min_success_rate": 0.9})
    return run_case(make_case(policy=policy, **kw), host, "auto", None)


def test_a_policy_slamming_its_motor_is_saturated(host):
    _register(host, "bang", "tests.test_failure_modes:bang")
    result = _modes(host, "bang", episodes=4, horizon=2.0)
    assert result.failure_modes == {"saturated": 4}


def test_a_chattering_policy_is_oscillating(host):
    _register(host, "chatter", "tests.test_failure_modes:chatter")
    # 2 s is too short to reach the target: the plain LQR times out, the chattering one is named for its chatter
    assert _modes(host, "balancebot-lqr", episodes=4, horizon=2.0).failure_modes == {"timeout": 4}
    result = _modes(host, "chatter", episodes=4, horizon=2.0)
    assert result.failure_modes == {"oscillating": 4}, result.failure_modes


def test_the_arm_pinned_at_its_stops_is_joint_limit(host):
    _register(host, "pin", "tests.test_failure_modes:pin", env="arm7-reach", sizes=(17, 7))
    result = _modes(host, "pin", env="arm7-reach", episodes=3, horizon=2.0, scenario="reach")
    assert result.failure_modes == {"joint_limit": 3}, result.failure_modes


def test_ice_makes_the_lqr_fall_without_saturating_when_its_motor_is_strong_enough(host):
    case_kw = dict(episodes=4, horizon=6.0, perturbations=(
        {"kind": "apply_pushes", "params": {"body": "chassis", "force": 25, "duration": 0.2, "interval": 1.0,
                                             "direction": "x"}},))
    result = _modes(host, "balancebot-lqr", **case_kw)
    assert set(result.failure_modes) <= {"fell", "timeout"} and "fell" in result.failure_modes


def test_a_nondeterministic_policy_is_named(host):
    _register(host, "dice", "tests.test_failure_modes:dice")
    result = _modes(host, "dice", episodes=4, horizon=2.0,
                    thresholds={"min_success_rate": 0.9, "deterministic": True}, determinism_episodes=2)
    [det] = [r for r in result.requirements if r.name == "determinism"]
    assert det.outcome == "FAIL"
    assert result.failure_modes.get("nondeterministic", 0) >= 1


def test_drift_reads_the_envs_drift_signal():
    from simgate.classify import drift
    from simgate.engine.rollouts import Episode

    ep = Episode(index=0, seed=0, success=False, length=10, ret=0.0, progress=1.0, terminated=None, message=None,
                 mean_abs_torque=np.zeros(1), peak_abs_torque=np.zeros(1), step_hashes=np.zeros(10, dtype=np.uint64),
                 actions=np.zeros((10, 1)), signals={"drift": 0.5})
    case = make_case(classify={"drift_bound": 0.3})
    assert drift.classify(case, ep) == "drift"
    assert drift.classify(make_case(classify={"drift_bound": 0.6}), ep) is None  # configurable per scenario


def test_high_band_share_separates_chatter_from_smooth_commands():
    t = np.arange(200)
    assert high_band_share(np.sin(2 * np.pi * t / 100)[:, None]) < 0.01
    assert high_band_share(((-1.0) ** t)[:, None]) > 0.99


@pytest.mark.parametrize("mode", ["saturated", "joint_limit", "oscillating", "drift", "nondeterministic", "slipped"])
def test_every_mode_is_in_the_built_in_order(mode):
    from simgate.classify import ORDER

    assert f"simgate.classify.{mode}" in ORDER


# -- deliberately broken test policies ---------------------------------------------------------
class _Bang:
    def act(self, obs):
        return np.ones((len(obs), 1))


class _Chatter:
    """The LQR plus a large command flipping sign every step (a derivative term gone wrong)."""

    def __init__(self):
        from policies.balancebot_lqr.controller import make_policy

        self.inner, self.step = make_policy(), 0

    def act(self, obs):
        self.step += 1
        return np.clip(self.inner.act(obs) + 0.5 * (-1.0) ** self.step, -1, 1)


class _Pin:
    """80 % of every motor's torque (so none saturates), one way: each joint swings onto its stop
    and stays there."""

    def __init__(self):
        from envs.arm7.env import Arm7Reach

        self.torque = 0.8 * Arm7Reach().build_model().actuator_ctrlrange[:, 1]

    def act(self, obs):
        return np.tile(self.torque, (len(obs), 1))


class _Dice:
    """Reads the wall clock: a policy with a hidden input, as a nondeterministic one does."""

    def act(self, obs):
        import time

        from policies.balancebot_lqr.controller import make_policy

        return make_policy().act(obs) + 1e-3 * (time.perf_counter_ns() % 1000) / 1000


def bang():
    return _Bang()


def chatter():
    return _Chatter()


def pin():
    return _Pin()


def dice():
    return _Dice()


def test_limits_are_read_from_the_model():
    import mujoco

    from simgate.engine.limits import actuator_limits, at_stops, joint_stops

    m = mujoco.MjModel.from_xml_string(
        '<mujoco><compiler angle="radian"/><worldbody><body><joint name="j" type="hinge" range="-1 1"/><geom size=".1"/>'
        '<body><joint name="k" type="hinge"/><geom size=".1"/></body></body></worldbody>'
        '<actuator><motor joint="j" ctrlrange="-2 2" gear="3"/><position joint="j" kp="10" forcerange="-5 5"/>'
        '<position joint="k" kp="10"/></actuator></mujoco>')
    np.testing.assert_array_equal(actuator_limits(m), [2.0, 5.0, np.inf])  # a motor's force is gain x ctrl, before the gear
    stops = joint_stops(m)
    assert stops[0].tolist() == [0]  # only the limited joint
    assert at_stops(np.array([[0.99, 5.0], [0.5, 5.0], [-1.2, 0.0]]), stops).tolist() == [True, False, True]


def test_the_early_quadruped_checkpoint_drifts_off_its_heading(host):
    """Drift for real: the shipped early checkpoint on the shipped flat scenario shuffles, but
    not where it was told to (its heading wanders past the bound, heading hold or not)."""
    import dataclasses
    from pathlib import Path

    from simgate.scenarios.expand import load_cases

    repo = Path(__file__).resolve().parents[1]
    [case] = [c for c in load_cases(repo / "scenarios", repo, host.registries, ["quadruped-early"], [], None)
              if c.scenario == "quadruped_flat"]
    result = run_case(dataclasses.replace(case, episodes=6, baseline=None), host, "auto", None)
    assert result.failure_modes == {"drift": 3, "timeout": 3}, result.failure_modes  # seeded: always these
    drifts = [d for d, m in zip(result.table["signal[drift]"], result.table["failure_mode"]) if m == "drift"]
    assert min(drifts) > case.classify["drift_bound"]


def test_the_nominal_quadruped_slips_on_ice_and_is_not_called_slipped_when_pushed_over(host):
    """Slipped for real: on the shipped ice case (µ × 0.03) the nominal policy's feet slide at
    0.37-0.39 m/s and its failures are `slipped`; pushed over on a grippy floor, its feet barely
    slide (under 0.1 m/s) and no failure is called a slip."""
    import dataclasses
    from pathlib import Path

    from simgate.scenarios.expand import load_cases

    repo = Path(__file__).resolve().parents[1]
    cases = load_cases(repo / "scenarios", repo, host.registries, ["quadruped-nominal"], [], None)
    [ice] = [c for c in cases if c.scenario == "quadruped_slippery_sensitivity" and c.point["friction"] == 0.03]
    result = run_case(dataclasses.replace(ice, episodes=8, baseline=None), host, "auto", None)
    assert result.failure_modes == {"slipped": 6}, result.failure_modes  # seeded: always these
    slips = [s for s, m in zip(result.table["signal[slip]"], result.table["failure_mode"]) if m == "slipped"]
    assert min(slips) > ice.classify["slip_bound"]
    [pushes] = [c for c in cases if c.scenario == "quadruped_pushes"]
    pushed = run_case(dataclasses.replace(pushes, episodes=20, baseline=None), host, "auto", None)
    assert pushed.failure_modes and "slipped" not in pushed.failure_modes, pushed.failure_modes
