"""Deployment checks: inference latency, safety limits, frequency response, MCAP logs."""

import dataclasses
import time

import numpy as np
import pytest

from simgate import latency, stats, verdict
from simgate.policies.spec import PolicySpec
from simgate.runner import run_case
from tests.test_engine import make_case


class Sleepy:
    """A balance controller that takes 10 ms per call: too slow for a 5 ms budget."""

    def act(self, obs):
        time.sleep(0.010)
        return np.zeros((len(obs), 1))


def sleepy(spec=None):
    return Sleepy()


def _register(host, name, entry, env="balancebot", sizes=(4, 1)):
    if name not in host.registries.policies.names():
        host.registries.policies.add(name, PolicySpec(name=name, env=env, format="scripted", observation_size=sizes[0],
                                                      action_size=sizes[1], entry=entry))


@pytest.fixture
def few_calls(monkeypatch):
    # a sleeping policy at the default 3200 calls would take 32 s; 60 calls show the same thing
    monkeypatch.setattr(latency, "CALLS", 60)
    monkeypatch.setattr(latency, "WARMUP", 5)
    monkeypatch.setattr(latency, "EPISODES", 1)


def _latency(result):
    [req] = [r for r in result.requirements if r.kind == verdict.INFERENCE_LATENCY]
    return req


def test_a_policy_sleeping_10ms_fails_a_5ms_p99(host, few_calls):
    _register(host, "sleepy", "tests.test_deployment:sleepy")
    case = make_case(policy="sleepy", episodes=1, horizon=0.2,
                     thresholds={"min_success_rate": 0.5, "max_inference_ms": {"p99": 5.0}})
    result = run_case(case, host, "auto", None)
    req = _latency(result)
    assert req.outcome == stats.FAIL and result.outcome == stats.FAIL
    assert req.numbers["p99_ms"] >= 10.0 and req.numbers["over"] == ["p99"]
    assert req.numbers["calls"] == 60 and req.numbers["policy"] == "sleepy"


def test_the_quadruped_onnx_policy_passes_5ms(host):
    from simgate.scenarios.expand import load_cases
    from tests.conftest import REPO

    [case] = [c for c in load_cases(REPO / "scenarios", REPO, host.registries, ["quadruped-robust"], [], None)
              if c.scenario == "quadruped_flat"]
    case = dataclasses.replace(case, episodes=2, baseline=None,
                               thresholds={"min_success_rate": 0.5, "max_inference_ms": {"p50": 5.0, "p99": 5.0}})
    result = run_case(case, host, "auto", None)
    req = _latency(result)
    assert req.outcome == stats.PASS, req.observed
    assert req.numbers["calls"] == latency.CALLS and req.numbers["observations"] == 2 * 300  # two episodes of 6 s at 50 Hz
    assert 0 < req.numbers["p50_ms"] <= req.numbers["p99_ms"] < 5.0


def test_the_latency_requirement_compares_the_quantiles_it_is_given():
    m = latency.Latency(p50_ms=1.0, p99_ms=6.0, max_ms=9.0, calls=100, warmup=10, observations=50, repeats=2, raw_p99_ms=7.0)
    assert verdict.latency_requirement(m, {"p50": 2.0}, "p").outcome == stats.PASS
    failed = verdict.latency_requirement(m, {"p50": 2.0, "p99": 5.0}, "p")
    assert failed.outcome == stats.FAIL and failed.numbers["over"] == ["p99"]


def test_latency_thresholds_need_a_limit():
    from pydantic import ValidationError

    from simgate.scenarios.schema import Thresholds

    with pytest.raises(ValidationError, match="p50, p99"):
        Thresholds.model_validate({"max_inference_ms": {}})
    assert Thresholds.model_validate({"max_inference_ms": {"p99": 5}}).requires_something()


def test_safety_limits_on_the_quadruped(host):
    """The quadruped's e-stop and contact-force signals and the engines' joint speeds reach the
    three safety requirements; tight limits fail them and name the failure modes."""
    from simgate.scenarios.expand import load_cases
    from tests.conftest import REPO

    [case] = [c for c in load_cases(REPO / "scenarios", REPO, host.registries, ["quadruped-robust"], [], None)
              if c.scenario == "quadruped_flat"]
    loose = {"max_estop_share": 0.9, "max_joint_speed": 15.0, "max_contact_force": 100.0}
    result = run_case(dataclasses.replace(case, episodes=4, baseline=None, thresholds=loose), host, "auto", None)
    kinds = {r.kind: r for r in result.requirements}
    assert {verdict.ESTOP_SHARE, verdict.CONTACT_FORCE, verdict.JOINT_SPEED} <= set(kinds)
    assert all(r.outcome == stats.PASS for r in result.requirements), [r.observed for r in result.requirements]
    assert 30.0 < kinds[verdict.CONTACT_FORCE].numbers["max"] < 100.0  # a foot carries the robot's weight at least
    speeds = [r.numbers["max"] for r in result.requirements if r.kind == verdict.JOINT_SPEED]
    assert len(speeds) == 12 and 1.0 < max(speeds) < 15.0
    tight = {"min_success_rate": 0.5, "max_joint_speed": 1.0, "max_contact_force": 5.0}
    result = run_case(dataclasses.replace(case, episodes=2, baseline=None, thresholds=tight), host, "auto", None)
    assert result.outcome == stats.FAIL
    assert {r.outcome for r in result.requirements if r.kind in (verdict.CONTACT_FORCE, verdict.JOINT_SPEED)} == {stats.FAIL}


def _episode(**kw):
    from simgate.engine.rollouts import Episode

    base = dict(index=0, seed=1, success=False, length=3, ret=0.0, progress=0.0, terminated="fell", message=None,
                mean_abs_torque=np.zeros(2), peak_abs_torque=np.zeros(2), step_hashes=np.zeros(3, np.uint64),
                actions=np.zeros((3, 2)), peak_joint_speed=np.array([1.0, 2.0]))
    base.update(kw)
    return Episode(**base)


def _marked(case, *episodes):
    """The episodes as the runner hands them to the classifiers (overspeed marked by the verdict's rule)."""
    from simgate.engine.rollouts import Rollouts
    from simgate.runner import _mark_overspeed

    _mark_overspeed(case, Rollouts(list(episodes), ["hip", "knee"], 0.02, 3))
    return episodes


def test_the_safety_failure_modes(host):
    case = make_case(thresholds={"min_success_rate": 0.5, "max_joint_speed": 1.5, "max_contact_force": 50.0})
    estop, impact, fast, calm = _marked(case, _episode(signal_peaks={"estop": 1.0, "contact_force": 80.0}),
                                        _episode(signal_peaks={"estop": 0.0, "contact_force": 80.0}),
                                        _episode(signal_peaks={"estop": 0.0, "contact_force": 10.0}),
                                        _episode(signal_peaks={"estop": 0.0, "contact_force": 10.0},
                                                 peak_joint_speed=np.array([1.0, 1.0])))
    assert host.classify(case, estop) == "estop"
    assert host.classify(case, impact) == "impact"
    assert host.classify(case, fast) == "overspeed"
    assert host.classify(case, calm) == "fell"


def test_overspeed_uses_each_joints_own_limit(host):
    """A per-joint table: the knee at 10 rad/s is within its 20, only a hip above its 5 is overspeed,
    exactly as the max_joint_speed requirement judges them."""
    case = make_case(thresholds={"min_success_rate": 0.5, "max_joint_speed": {"hip": 5.0, "knee": 20.0}})
    knee_fast, hip_fast = _marked(case, _episode(peak_joint_speed=np.array([1.0, 10.0])),
                                  _episode(peak_joint_speed=np.array([6.0, 1.0])))
    assert host.classify(case, knee_fast) == "fell" and host.classify(case, hip_fast) == "overspeed"


def test_the_estop_share_is_an_exact_binomial_bound():
    from simgate.engine.rollouts import Rollouts

    def share(hits, n, limit):
        eps = [_episode(index=i, signal_peaks={"estop": float(i < hits)}) for i in range(n)]
        return verdict.estop_requirement(Rollouts(eps, ["a", "b"], 0.02, 3), limit, 0.05)

    assert share(0, 100, 0.05).outcome == stats.PASS  # upper bound 2.95 %
    assert share(0, 50, 0.05).outcome == stats.INCONCLUSIVE  # upper bound 5.8 %
    assert share(30, 100, 0.05).outcome == stats.FAIL


def test_a_safety_limit_on_a_signal_the_env_lacks_is_named():
    from simgate.engine.rollouts import Rollouts

    eps = [_episode(signal_peaks={"abs_pitch": 0.1})]
    with pytest.raises(ValueError, match="'estop'"):
        verdict.estop_requirement(Rollouts(eps, ["a", "b"], 0.02, 3), 0.1, 0.05)


@pytest.mark.parametrize("env_name, policy", [("quadruped", "quadruped-robust"), ("balancebot", "balancebot-lqr-onnx")])
def test_the_safety_peaks_are_bit_identical_across_engines(host, env_name, policy):
    from simgate.engine.batched import BatchedEngine
    from simgate.engine.reference import ReferenceEngine
    from simgate.runner import build_env

    env = build_env(host.registries.envs.get(env_name))
    spec = host.registries.policies.get(policy)
    case = make_case(env=env_name, policy=policy, episodes=4, horizon=1.0)
    ref = ReferenceEngine(env, spec.load(), [], spec.action_size).run(case, range(4))
    bat = BatchedEngine(env, spec.load(), [], spec.action_size, nthread=2).run(case, range(4))
    for a, b in zip(ref.episodes, bat.episodes):
        np.testing.assert_array_equal(a.peak_joint_speed, b.peak_joint_speed)
        np.testing.assert_equal(a.signal_peaks, b.signal_peaks)
        assert len(a.peak_joint_speed) == spec.action_size and a.peak_joint_speed.max() > 0
    if env_name == "quadruped":
        assert set(ref.episodes[0].signal_peaks) >= {"estop", "contact_force"}


def test_an_episode_written_as_mcap_reads_back(host, tmp_path):
    pytest.importorskip("mcap")
    import json as js

    from mcap.reader import make_reader

    from simgate.engine.reference import ReferenceEngine
    from simgate.reporting.mcap import Trajectory, write_mcap
    from simgate.runner import build_env

    env = build_env(host.registries.envs.get("quadruped"))
    spec = host.registries.policies.get("quadruped-robust")
    engine = ReferenceEngine(env, spec.load(), [], spec.action_size)
    trajectory = Trajectory()
    case = make_case(env="quadruped", policy="quadruped-robust", episodes=1, horizon=0.2)
    episode = engine.run_episode(case, 0, 10, observer=trajectory.record)
    trajectory.actions = episode.actions
    path = write_mcap(tmp_path / "episode.mcap", trajectory)
    with open(path, "rb") as stream:
        messages = [(channel.topic, schema.name, js.loads(message.data), message.log_time)
                    for schema, channel, message in make_reader(stream).iter_messages()]
    topics = {}
    for topic, *_ in messages:
        topics[topic] = topics.get(topic, 0) + 1
    assert topics == {"/tf": 11, "/joint_states": 11, "/torques": 11, "/actions": 10}  # the start + 10 steps
    tf = next(m for t, s, m, _ in messages if t == "/tf" and s == "foxglove.FrameTransforms")
    assert tf["transforms"][0]["child_frame_id"] == "trunk" and tf["transforms"][0]["translation"]["z"] > 0.15
    joints = next(m for t, _, m, _ in messages if t == "/joint_states")
    assert "FL_knee" in joints["name"] and len(joints["position"]) == 12
    last_action = [m for t, _, m, _ in messages if t == "/actions"][-1]
    assert last_action["value"] == pytest.approx(episode.actions[-1].tolist())


class FirstOrderLag:
    """action = low-pass of observation 0 (one pole at 1 Hz at 50 Hz): a policy with memory."""

    def __init__(self):
        self.y = 0.0
        self.a = np.exp(-2 * np.pi * 1.0 / 50.0)

    def act(self, obs):
        self.y = self.a * self.y + (1 - self.a) * float(obs[0, 0])
        return np.array([[self.y]])


def test_the_frequency_response_of_a_low_pass_rolls_off_and_lags():
    from simgate.frequency import response

    r = response(FirstOrderLag(), np.zeros(4), 0, 0, 0.1, [0.1, 1.0, 10.0], 50.0, cycles=4, settle=3)
    assert r["gain"][0] > 0.95 and 0.6 < r["gain"][1] < 0.8 and r["gain"][2] < 0.2
    assert -10 < r["phase_deg"][0] < 0 and -55 < r["phase_deg"][1] < -35 and r["phase_deg"][2] < -45  # discrete pole: -52° at 10 Hz
    with pytest.raises(ValueError, match="Nyquist"):
        response(FirstOrderLag(), np.zeros(4), 0, 0, 0.1, [30.0], 50.0)


def test_the_shipped_frequency_response_scenario_reports_a_bode_plot(host):
    from simgate.reporting.bode import bode
    from simgate.scenarios.expand import load_cases
    from tests.conftest import REPO

    [case] = [c for c in load_cases(REPO / "scenarios", REPO, host.registries, ["quadruped-robust"], [], None)
              if c.scenario == "quadruped_frequency_response"]
    assert case.gate is False
    result = run_case(case, host, "auto", None)
    [req] = [r for r in result.requirements if r.kind == verdict.FREQUENCY_RESPONSE]
    assert req.outcome == stats.PASS and len(req.numbers["gain"]) == 7
    # a linear memoryless policy: flat gain, phase 0 or 180°
    gain = np.array(req.numbers["gain"])
    assert gain.min() > 0 and gain.max() / gain.min() < 1.01, req.observed
    assert all(min(abs(p), abs(abs(p) - 180)) < 1 for p in req.numbers["phase_deg"])
    result.to_dict()  # the contract knows the kind
    assert bode(req.numbers)[:8] == b"\x89PNG\r\n\x1a\n"
