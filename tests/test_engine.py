"""The reference engine on the shipped robot: determinism, perturbations that really act,
policy failures that stay inside their episode."""

import dataclasses

import numpy as np
import pytest

from simgate.engine.reference import ReferenceEngine
from simgate.perturbations.add_observation_noise import AddObservationNoise
from simgate.perturbations.base import EpisodeContext
from simgate.perturbations.scale_friction import ScaleFriction
from simgate.runner import run_case
from simgate.scenarios.case import Case


def make_case(**kw) -> Case:
    base = dict(id="t", scenario="t", source="t.yaml", env="balancebot", policy="balancebot-lqr", point={},
                perturbations=(), episodes=4, horizon=2.0, seed=5, alpha=0.05, determinism_episodes=2,
                thresholds={"min_success_rate": 0.5})
    base.update(kw)
    return Case(**base)


@pytest.fixture(scope="module")
def env():
    from envs.balancebot.env import BalanceBot

    return BalanceBot()


@pytest.fixture(scope="module")
def lqr(host):
    return host.registries.policies.get("balancebot-lqr").load()


def run(env, policy, perturbations=(), **kw):
    return ReferenceEngine(env, policy, list(perturbations), 1).run(make_case(**kw), range(kw.get("episodes", 4)))


def test_same_case_gives_bit_identical_trajectories(env, lqr):
    a, b = run(env, lqr), run(env, lqr)
    for x, y in zip(a.episodes, b.episodes):
        assert np.array_equal(x.step_hashes, y.step_hashes) and len(x.step_hashes) == 100
        assert np.array_equal(x.mean_abs_torque, y.mean_abs_torque)
    assert len({e.state_hash for e in a.episodes}) == 4  # different seeds, different episodes


def test_scaling_friction_to_zero_makes_the_wheel_slip(env, lqr):
    slip = ScaleFriction(ScaleFriction.Params(sliding=0.0))
    nominal, icy = run(env, lqr, episodes=3, horizon=6.0), run(env, lqr, [slip], episodes=3, horizon=6.0)
    assert all(e.success for e in nominal.episodes)
    assert not any(e.success for e in icy.episodes)


def test_scale_friction_multiplies_the_nominal_coefficients(env):
    import copy

    nominal = env.build_model()
    model = copy.copy(nominal)
    p = ScaleFriction(ScaleFriction.Params(sliding=(0.4, 0.6), rolling=2.0))
    scales = p.start(EpisodeContext(env, model, nominal, None, 10, 0.02, 10, np.random.default_rng(0)))
    assert 0.4 <= scales[0] <= 0.6
    np.testing.assert_array_equal(model.geom_friction, nominal.geom_friction * scales)
    assert scales[2] == 2.0


def test_observation_noise_has_the_configured_std_per_group(env):
    p = AddObservationNoise(AddObservationNoise.Params(std={"imu": 0.01, "encoders": 0.002}, scale=3))
    noise = p.start(EpisodeContext(env, None, None, None, 40_000, 0.02, 10, np.random.default_rng(1)))
    groups = env.observation_groups()
    # 40,000 draws: the sample std is within 2% of the truth with overwhelming probability
    np.testing.assert_allclose(noise[:, groups["imu"]].std(axis=0), 0.03, rtol=0.02)
    np.testing.assert_allclose(noise[:, groups["encoders"]].std(axis=0), 0.006, rtol=0.02)
    assert abs(noise.mean()) < 1e-3


def test_onnx_torchscript_and_scripted_controllers_agree(host, env, lqr):
    obs = np.random.default_rng(0).normal(scale=0.2, size=(64, env.observation_size))
    ref = lqr.act(obs)
    for name in ("balancebot-lqr-onnx", "balancebot-lqr-torchscript"):
        np.testing.assert_allclose(host.registries.policies.get(name).load().act(obs), ref, atol=1e-5)


class Broken:
    def __init__(self, mode):
        self.mode = mode

    def act(self, obs):
        if self.mode == "raise":
            raise RuntimeError("boom")
        if self.mode == "nan":
            return np.full((1, 1), np.nan)
        return np.zeros((1, 3))


@pytest.mark.parametrize("mode,text", [("raise", "policy raised RuntimeError: boom"),
                                       ("nan", "non-finite action"), ("shape", "returned shape (3,), expected (1,)")])
def test_policy_errors_end_the_episode_with_a_named_failure(env, mode, text):
    episodes = run(env, Broken(mode), episodes=2).episodes
    assert all(e.terminated == "policy_error" and text in e.message and not e.success for e in episodes)


def test_diverging_physics_is_diverged_not_a_crash(env, lqr, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory
    class Explode(ScaleFriction):
        def start(self, ctx):
            ctx.model.dof_damping[:] = -1e4  # negative damping feeds energy in: exponential blow-up

    episodes = run(env, lqr, [Explode(Explode.Params())], episodes=2).episodes
    assert all(e.terminated == "diverged" for e in episodes), [e.terminated for e in episodes]


def test_a_corrupt_onnx_file_fails_its_case_only(host, tmp_path):
    spec = host.registries.policies.get("balancebot-lqr-onnx")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not a protobuf")
    host.registries.policies._entries["corrupt"] = dataclasses.replace(spec, name="corrupt", file=bad, sha256=None)
    try:
        result = run_case(make_case(policy="corrupt"), host)
    finally:
        del host.registries.policies._entries["corrupt"]
    assert result.outcome == "ERROR" and result.error.startswith("policy_error: policy 'corrupt' (onnx")
    assert result.failure_modes == {"policy_error": 4}


def test_a_policy_file_that_does_not_match_its_manifest_is_refused(host, tmp_path):
    spec = host.registries.policies.get("balancebot-lqr-onnx")
    copy = tmp_path / "lqr.onnx"
    copy.write_bytes(spec.file.read_bytes() + b"\0")
    host.registries.policies._entries["tampered"] = dataclasses.replace(spec, name="tampered", file=copy)
    try:
        result = run_case(make_case(policy="tampered"), host)
    finally:
        del host.registries.policies._entries["tampered"]
    assert result.outcome == "ERROR" and "does not match the sha256" in result.error


def test_wrong_observation_size_is_a_setup_error(host):
    spec = host.registries.policies.get("balancebot-lqr")
    host.registries.policies._entries["wide"] = dataclasses.replace(spec, name="wide", observation_size=7)
    try:
        result = run_case(make_case(policy="wide"), host)
    finally:
        del host.registries.policies._entries["wide"]
    assert result.outcome == "ERROR"
    assert "setup_error: policy 'wide' has observation size 7" in result.error and "env 'balancebot' has 4" in result.error


def test_run_case_decides_and_classifies(host):
    case = make_case(perturbations=({"kind": "scale_friction", "params": {"sliding": 0.0}},),
                     thresholds={"min_success_rate": 0.9, "deterministic": True}, episodes=6)
    result = run_case(case, host)
    assert result.outcome == "INCONCLUSIVE" or result.outcome == "FAIL"
    # on ice the wheel spins freely: the controller saturates its motor and the robot falls within 0.3 s
    assert sum(result.failure_modes.values()) == 6 and set(result.failure_modes) <= {"saturated", "fell"}
    det = [r for r in result.requirements if r.name == "determinism"][0]
    assert det.outcome == "PASS" and det.observed == "2/2 re-run episodes identical"


def test_gymnasium_env_runs_through_the_adapter(host):
    from simgate.envs.gymnasium_adapter import GymnasiumEnv

    class Zero:
        def act(self, obs):
            return np.zeros((1, 3))

    hopper = GymnasiumEnv("Hopper-v5")
    rollouts = ReferenceEngine(hopper, Zero(), [], 3).run(make_case(env="Hopper-v5", horizon=4.0), range(3))
    assert all(e.terminated == "fell" for e in rollouts.episodes)  # an unactuated hopper falls over
    again = ReferenceEngine(hopper, Zero(), [], 3).run(make_case(env="Hopper-v5", horizon=4.0), range(3))
    assert [e.state_hash for e in rollouts.episodes] == [e.state_hash for e in again.episodes]


def test_a_gymnasium_env_keeps_its_nominal_model_after_perturbed_episodes():
    """The adapter points one gymnasium object at each episode's model in turn; an engine built
    afterwards (the next case of a worker) must still start from the unperturbed model."""
    from simgate.envs.gymnasium_adapter import GymnasiumEnv

    class Zero:
        def act(self, obs):
            return np.zeros((len(obs), 3))

    hopper = GymnasiumEnv("Hopper-v5")
    nominal = hopper.build_model().geom_friction.copy()
    slippery = lambda: [ScaleFriction(ScaleFriction.Params(sliding=0.2))]  # noqa: E731
    ReferenceEngine(hopper, Zero(), slippery(), 3).run(make_case(env="Hopper-v5", horizon=0.5), range(2))
    np.testing.assert_array_equal(hopper.build_model().geom_friction, nominal)
    assert hopper.gym.model is hopper.build_model()
    second = ReferenceEngine(hopper, Zero(), slippery(), 3)
    np.testing.assert_array_equal(second.nominal.geom_friction, nominal)


def test_two_policies_meet_the_same_world(host, env, lqr):
    """Common random numbers: sampled physics, initial state and noise depend on the episode,
    never on the policy that runs it."""
    degraded = host.registries.policies.get("balancebot-lqr-degraded").load()
    perturbations = lambda: [ScaleFriction(ScaleFriction.Params(sliding=(0.3, 1.2))),  # noqa: E731
                             AddObservationNoise(AddObservationNoise.Params(std=0.01))]
    case = make_case()
    a = ReferenceEngine(env, lqr, perturbations(), 1)
    b = ReferenceEngine(env, degraded, perturbations(), 1)
    frictions = set()
    for i in range(3):
        _, model_a, data_a, states_a = a.start_episode(case, i, 100)
        _, model_b, data_b, states_b = b.start_episode(case, i, 100)
        np.testing.assert_array_equal(model_a.geom_friction, model_b.geom_friction)
        np.testing.assert_array_equal(data_a.qpos, data_b.qpos)
        np.testing.assert_array_equal(data_a.qvel, data_b.qvel)
        np.testing.assert_array_equal(states_a[1], states_b[1])  # the whole episode's noise
        frictions.add(float(model_a.geom_friction[0, 0]))
    assert len(frictions) == 3  # and each episode draws its own
