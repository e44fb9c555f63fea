"""The batched engine reproduces the reference engine bit for bit: every shipped robot (and
gymnasium's Hopper through the adapter), every perturbation kind it can take, 1 and 2 threads."""

import os

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine, NotBatchable
from simgate.engine.reference import ReferenceEngine
from tests.test_engine import Broken, make_case

#: one use of every perturbation kind on the balancebot, strong enough to change the episodes
EVERY_KIND = {
    "scale_friction": {"sliding": [0.2, 1.25]},
    "add_payload": {"body": "chassis", "fraction": [0.0, 0.5]},
    "scale_body_mass": {"scale": [0.5, 1.5]},
    "scale_motor_strength": {"scale": 0.3},
    "scale_joint_damping": {"damping": 5.0},
    "set_gravity": {"scale": [0.8, 1.2]},
    "tilt_ground": {"angle": [-2.0, 2.0]},
    "add_terrain": {"amplitude": 0.02, "size": [3, 0.5]},
    "add_initial_state_noise": {"qpos_std": 0.05, "qvel_std": 0.1, "joints": ["pitch"]},
    "apply_pushes": {"body": "chassis", "force": [5, 20], "interval": [0.3, 0.6], "direction": "x"},
    "add_observation_noise": {"std": {"imu": 0.02, "encoders": 0.01}},
    "bias_observations": {"bias": [-0.05, 0.05]},
    "delay_observations": {"delay_ms": 20},
    "mask_observations": {"groups": ["encoders"], "probability": 0.2},
    "add_action_noise": {"std": 0.1},
    "clip_actions": {"low": -0.3, "high": 0.3},
    "delay_actions": {"delay_ms": 30},
    "drop_motor": {"actuator": "wheel_motor", "start": [0.2, 1.0], "duration": 0.3},
    "change_control_rate": {"hz": 25},
}


@pytest.fixture(scope="module")
def bot():
    from envs.balancebot.env import BalanceBot

    return BalanceBot()


def build(host, kind, params):
    cls = host.registries.perturbations.get(kind)
    return cls(cls.Params.model_validate(params))


def assert_identical(reference, batched):
    assert [e.index for e in reference.episodes] == [e.index for e in batched.episodes]
    for a, b in zip(reference.episodes, batched.episodes):
        assert (a.seed, a.success, a.length, a.terminated, a.message) == (b.seed, b.success, b.length, b.terminated, b.message)
        assert a.ret == b.ret and (a.progress == b.progress or (np.isnan(a.progress) and np.isnan(b.progress)))
        np.testing.assert_array_equal(a.step_hashes, b.step_hashes)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.mean_abs_torque, b.mean_abs_torque)
        np.testing.assert_array_equal(a.peak_abs_torque, b.peak_abs_torque)
        assert (a.work, a.mass) == (b.work, b.mass) and a.work > 0
        assert (a.saturation, a.at_stops) == (b.saturation, b.at_stops)
        np.testing.assert_equal(a.signals, b.signals)
        np.testing.assert_equal(a.signal_peaks, b.signal_peaks)
        np.testing.assert_array_equal(a.peak_joint_speed, b.peak_joint_speed)


#: what changes per robot: the names a kind points at, and kinds a robot cannot take
ROBOTS = {
    "balancebot": {"policy": "balancebot-lqr-onnx", "actions": 1, "horizon": 3.0, "episodes": 6, "params": {}},
    "arm7-reach": {
        "policy": "arm7-ik", "actions": 7, "horizon": 1.0, "episodes": 4,
        "params": {
            "add_payload": {"body": "link7", "mass": [0.0, 1.5]},
            "add_terrain": None,  # a fixed-base arm has no floor to roughen
            "tilt_ground": None,
            "add_initial_state_noise": {"qpos_std": 0.05, "qvel_std": 0.1, "joints": ["j2", "j4"]},
            "apply_pushes": {"body": "link7", "force": [5, 20], "interval": [0.2, 0.4], "direction": "x"},
            "add_observation_noise": {"std": {"joint_pos": 0.002, "joint_vel": 0.02, "target": 0.005}},
            "mask_observations": {"groups": ["joint_vel"], "probability": 0.2},
            "drop_motor": {"actuator": "j2", "start": [0.2, 0.5], "duration": 0.3},
        },
    },
    "quadruped": {
        "policy": "quadruped-robust", "actions": 12, "horizon": 1.0, "episodes": 4,
        "params": {
            "add_payload": {"body": "trunk", "mass": [0.0, 0.8]},
            "add_initial_state_noise": {"qpos_std": 0.05, "qvel_std": 0.1, "joints": ["FL_knee", "HR_flexion"]},
            "apply_pushes": {"body": "trunk", "force": [5, 20], "interval": [0.2, 0.4], "direction": "x"},
            "mask_observations": {"groups": ["encoders"], "probability": 0.2},
            "drop_motor": {"actuator": "FL_knee", "start": [0.2, 0.5], "duration": 0.3},
            "command_velocity": {"forward": [0.1, 0.5], "yaw_rate": [-0.4, 0.4]},
        },
    },
    # gymnasium's Hopper through the adapter: its actuators have no names and it has no
    # observation groups, so the kinds that point at those cannot be written for it
    "Hopper-v5": {
        "policy": None, "actions": 3, "horizon": 1.0, "episodes": 4,
        "params": {
            "add_payload": {"body": "torso", "mass": [0.0, 2.0]},
            "add_initial_state_noise": {"qpos_std": 0.05, "qvel_std": 0.1, "joints": ["thigh_joint"]},
            "apply_pushes": {"body": "torso", "force": [20, 60], "interval": [0.2, 0.4], "direction": "x"},
            "add_observation_noise": {"std": 0.05},
            "delay_observations": {"delay_ms": 16},  # two of its 8 ms control periods
            # the swaying test policy's commands stay inside 30 % of the range
            "clip_actions": {"low": -0.05, "high": 0.05},
            "scale_motor_strength": {"scale": 0.5, "mode": "gear"},
            "mask_observations": None,
            "drop_motor": None,
        },
    },
}


class Sway:
    """A closed-loop, state-dependent command for the Hopper, the same for any batch size."""

    def act(self, obs):
        return np.tanh(np.stack([obs[:, 1], -obs[:, 2], obs[:, 3]], axis=1))


#: legal but inert: the arm touches nothing, so contact friction never enters its physics
NO_EFFECT = {("arm7-reach", "scale_friction")}


def kind_params(robot: str, kind: str):
    """This kind's parameters on this robot (None: the robot cannot take it)."""
    params = ROBOTS[robot]["params"]
    return params[kind] if kind in params else EVERY_KIND.get(kind)


def robot_kinds():
    for robot in ROBOTS:
        for kind in sorted(set(EVERY_KIND) | set(ROBOTS[robot]["params"])):
            if kind_params(robot, kind) is not None:
                yield robot, kind


def test_every_kind_is_covered(host):
    assert sorted({kind for _, kind in robot_kinds()}) == host.registries.perturbations.names()
    # and every kind on every robot, but for those a robot lacks the parts for
    skipped = {(robot, kind) for robot in ROBOTS for kind in host.registries.perturbations.names()} - set(robot_kinds())
    assert skipped == {("balancebot", "command_velocity"), ("arm7-reach", "command_velocity"),
                       ("arm7-reach", "add_terrain"), ("arm7-reach", "tilt_ground"),
                       ("Hopper-v5", "command_velocity"), ("Hopper-v5", "mask_observations"),
                       ("Hopper-v5", "drop_motor")}


@pytest.fixture(scope="module")
def robots(host):
    from simgate.runner import build_env

    def policy(name):
        return Sway() if name is None else host.registries.policies.get(name).load()

    return {name: (build_env(host.registries.envs.get(name)), policy(spec["policy"])) for name, spec in ROBOTS.items()}


@pytest.mark.parametrize("robot,kind", list(robot_kinds()))
@pytest.mark.parametrize("nthread", [1, 2])
def test_batched_equals_reference_under_every_perturbation(host, robots, robot, kind, nthread):
    spec, (env, policy) = ROBOTS[robot], robots[robot]
    n = spec["episodes"]
    case = make_case(env=robot, policy=spec["policy"], horizon=spec["horizon"], episodes=n)
    make = lambda: [build(host, kind, kind_params(robot, kind))]  # noqa: E731
    reference = ReferenceEngine(env, policy, make(), spec["actions"]).run(case, range(n))
    batched = BatchedEngine(env, policy, make(), spec["actions"], nthread=nthread, chunk=n // 2 + 1).run(case, range(n))  # 2 chunks
    assert_identical(reference, batched)
    assert len({e.state_hash for e in batched.episodes}) == n
    # the kind took effect on this robot: some episode left the unperturbed trajectory
    if (robot, kind) in NO_EFFECT:
        return
    nominal = unperturbed(robots, robot)
    assert any(not np.array_equal(a.step_hashes, b.step_hashes) for a, b in zip(nominal.episodes, batched.episodes))


_UNPERTURBED = {}


def unperturbed(robots, robot):
    if robot not in _UNPERTURBED:
        spec, (env, policy) = ROBOTS[robot], robots[robot]
        case = make_case(env=robot, policy=spec["policy"], horizon=spec["horizon"], episodes=spec["episodes"])
        _UNPERTURBED[robot] = BatchedEngine(env, policy, [], spec["actions"]).run(case, range(spec["episodes"]))
    return _UNPERTURBED[robot]


def test_all_kinds_at_once(host, bot):
    policy = host.registries.policies.get("balancebot-lqr").load()
    make = lambda: [build(host, k, v) for k, v in EVERY_KIND.items() if k != "change_control_rate"]  # noqa: E731
    case = make_case(horizon=3.0, episodes=5)
    reference = ReferenceEngine(bot, policy, make(), 1).run(case, range(5))
    assert_identical(reference, BatchedEngine(bot, policy, make(), 1, nthread=2).run(case, range(5)))
    assert {e.terminated for e in reference.episodes} & {"fell", None}


@pytest.mark.parametrize("mode", ["raise", "nan", "shape"])
def test_policy_errors_match_the_reference(bot, mode):
    case = make_case(episodes=3)
    reference = ReferenceEngine(bot, Broken(mode), [], 1).run(case, range(3))
    batched = BatchedEngine(bot, Broken(mode), [], 1).run(case, range(3))
    assert [e.message for e in reference.episodes] == [e.message for e in batched.episodes]
    assert all(e.terminated == "policy_error" for e in batched.episodes)


def test_divergence_ends_only_that_episode(host, bot, tmp_path, monkeypatch):
    from simgate.perturbations.scale_joint_damping import ScaleJointDamping

    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory

    class SometimesExplode(ScaleJointDamping):
        def start(self, ctx):
            if ctx.rng.uniform() < 0.5:
                ctx.model.dof_damping[:] = -1e4  # negative damping feeds energy in

    policy = host.registries.policies.get("balancebot-lqr-onnx").load()
    case = make_case(episodes=8, horizon=2.0)
    make = lambda: [SometimesExplode(SometimesExplode.Params())]  # noqa: E731
    reference = ReferenceEngine(bot, policy, make(), 1).run(case, range(8))
    batched = BatchedEngine(bot, policy, make(), 1, nthread=2).run(case, range(8))
    ends = [e.terminated for e in batched.episodes]
    assert "diverged" in ends and None in ends
    assert ends == [e.terminated for e in reference.episodes]
    assert [e.length for e in batched.episodes] == [e.length for e in reference.episodes]


@pytest.mark.parametrize("spin", [2e4, float("nan")])
def test_a_runaway_joint_ends_only_that_episode_without_any_mujoco_warning(host, bot, spin):
    """The cheap all-rows stability check must not wave through a speed above the limit or a
    non-finite state that MuJoCo itself does not warn about."""
    from simgate.perturbations.add_initial_state_noise import AddInitialStateNoise

    class Spin(AddInitialStateNoise):
        def start(self, ctx):
            if ctx.rng.uniform() < 0.4:
                ctx.data.qvel[-1] = spin

    policy = host.registries.policies.get("balancebot-lqr").load()
    case = make_case(episodes=8, horizon=0.5)
    make = lambda: [Spin(Spin.Params())]  # noqa: E731
    reference = ReferenceEngine(bot, policy, make(), 1).run(case, range(8))
    batched = BatchedEngine(bot, policy, make(), 1, nthread=2).run(case, range(8))
    ends = [e.terminated for e in batched.episodes]
    assert "diverged" in ends and None in ends
    assert ends == [e.terminated for e in reference.episodes]
    assert [e.message for e in batched.episodes] == [e.message for e in reference.episodes]
    assert [e.length for e in batched.episodes] == [e.length for e in reference.episodes]


def test_an_env_reading_contacts_is_not_batchable_and_auto_falls_back(bot, host):
    from envs.balancebot.env import BalanceBot
    from simgate.engine import make_engine
    from simgate.envs.base import MujocoEnv

    class Touchy(BalanceBot):
        # contacts are no batch field: the rule is written per episode, replacing the row rule
        terminated_rows = MujocoEnv.terminated_rows

        def terminated(self, model, data):
            return "fell" if len(data.contact) > 5 else None

    policy = host.registries.policies.get("balancebot-lqr").load()
    with pytest.raises(NotBatchable, match="contact"):
        BatchedEngine(Touchy(), policy, [], 1)
    assert isinstance(make_engine(Touchy(), policy, [], 1), ReferenceEngine)
    assert isinstance(make_engine(bot, policy, [], 1), BatchedEngine)
    assert isinstance(make_engine(bot, policy, [], 1, "reference"), ReferenceEngine)


def test_torch_policy_rows_do_not_depend_on_how_the_case_is_split(host, bot):
    """torch's results may depend on the batch size; the batch size is fixed by the case."""
    policy = host.registries.policies.get("balancebot-lqr-torchscript").load()
    case = make_case(episodes=10, horizon=2.0, thresholds={"deterministic": True})
    engine = BatchedEngine(bot, policy, [], 1, nthread=2)
    full = engine.run(case, range(10))
    first_two = engine.run(case, range(2))  # the determinism re-run: fewer episodes, same layout
    for a, b in zip(full.episodes, first_two.episodes):
        np.testing.assert_array_equal(a.step_hashes, b.step_hashes)


def test_engine_threads_follow_the_environment_variable(monkeypatch):
    from simgate.engine import THREADS_VAR, threads_per_worker

    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "1")
    monkeypatch.setenv(THREADS_VAR, "3")
    assert threads_per_worker() == 3
    monkeypatch.setenv(THREADS_VAR, "0")
    with pytest.raises(ValueError, match="whole number ≥ 1, received '0'"):
        threads_per_worker()
    monkeypatch.delenv(THREADS_VAR)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(10 * (os.cpu_count() or 1)))
    assert threads_per_worker() == 1  # more workers than cores: one thread each, never zero


def test_lanes_are_fixed_by_the_case_not_the_threads():
    from simgate.engine.batched import lane_size

    assert [lane_size(n) for n in (1, 2, 5, 16, 64, 100, 1000)] == [1, 1, 3, 8, 32, 32, 32]
    assert lane_size(512, most=512) == 256  # two lanes: both cores busy whatever the episode count
