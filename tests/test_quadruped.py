"""The quadruped: its physics and sensors, its task rules, the command perturbation, the engines
on it, and the shipped policies (exports agree with the trainer's numpy policy, hashes match)."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine
from simgate.engine.reference import ReferenceEngine
from simgate.perturbations.base import EpisodeContext
from simgate.perturbations.command_velocity import CommandVelocity
from simgate.scenarios.case import Case

mujoco = pytest.importorskip("mujoco")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from envs.quadruped.env import FORWARD, STAND, START_YAW, YAW_RATE, Quadruped  # noqa: E402
from policies.quadruped.linear import LinearPolicy  # noqa: E402

POLICY_DIR = REPO / "policies" / "quadruped"


@pytest.fixture(scope="module")
def env():
    return Quadruped()


@pytest.fixture(scope="module")
def model(env):
    return env.build_model()


def fresh(env, model, seed=0):
    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(seed))
    mujoco.mj_forward(model, data)
    return data


def hold(env, model, data, seconds, action=None):
    action = np.zeros(env.action_size) if action is None else action
    for _ in range(round(seconds * env.control_hz)):
        env.apply_action(model, data, action)
        for _ in range(env.frame_skip(model)):
            mujoco.mj_step(model, data)


def pose(data, yaw=0.0, roll=0.0, xy=(0.0, 0.0), z=0.2125):
    """Put the trunk at ``xy``, height ``z``, heading ``yaw`` then rolled by ``roll`` about its own x."""
    qyaw = np.array([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])
    qroll = np.array([math.cos(roll / 2), math.sin(roll / 2), 0, 0])
    q = np.empty(4)
    mujoco.mju_mulQuat(q, qyaw, qroll)
    data.qpos[0:3] = (*xy, z)
    data.qpos[3:7] = q


# -- physics and sensors ----------------------------------------------------------------------
def test_the_robot_weighs_what_its_description_says(model):
    assert model.body_mass.sum() == pytest.approx(3.24)
    assert (model.nq, model.nv, model.nu) == (19, 18, 12)
    assert np.all(model.actuator_forcerange == [-3.0, 3.0])


def test_the_standing_pose_holds_still_under_the_servos_with_zero_action(env, model):
    data = fresh(env, model)
    hold(env, model, data, 2.0)
    assert env.terminated(model, data) is None
    assert 0.19 < data.qpos[2] < 0.215  # 0.2125 m nominal, minus the servos' sag under 3.2 kg
    assert np.linalg.norm(data.qvel[0:3]) < 1e-3 and np.abs(data.qvel[6:]).max() < 1e-2
    # the knees sag by the holding torque over kp: a few hundredths of a radian, not more
    assert np.abs(data.qpos[7:] - STAND).max() < 0.1
    # and that holding torque is well inside the 3 N·m limit
    assert np.abs(data.actuator_force).max() < 1.0


def test_the_yaw_command_holds_the_commanded_heading(env, model):
    """Turned 0.2 rad right of where the command says it should face, the robot is told to turn
    left by 0.2 rad/s on top of the commanded rate; far off, the command saturates at the
    trained range instead of asking for a spin."""
    data = fresh(env, model)
    env.set_command(model, data, 0.2, 0.1)
    data.time = 2.0  # commanded heading: start + 0.2 rad
    for yaw, expected in [(0.2, 0.1), (0.0, 0.3), (0.4, -0.1), (-2.0, 0.5), (2.6, -0.5)]:
        pose(data, yaw=data.userdata[START_YAW] + yaw)
        mujoco.mj_forward(model, data)
        assert env.observe(model, data)[31] == pytest.approx(expected, abs=1e-9), yaw
    assert env.heading_gain == 1.0 and env.max_yaw_command == 0.5


def test_the_imu_reads_gravity_straight_down_when_upright_and_sideways_when_rolled(env, model):
    data = fresh(env, model)
    pose(data, yaw=1.0)
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(env.observe(model, data)[0:3], [0.0, 0.0, -1.0], atol=1e-12)
    pose(data, yaw=1.0, roll=0.3)  # rolled to the left: gravity pulls towards the body's -y
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(env.observe(model, data)[0:3], [0.0, -math.sin(0.3), -math.cos(0.3)], atol=1e-12)


def test_observation_layout_and_groups(env, model):
    data = fresh(env, model)
    data.time = 0.125  # a quarter of a 2 Hz gait cycle
    env.set_command(model, data, 0.4, -0.2)
    obs = env.observe(model, data)
    assert obs.shape == (34,)
    # the commanded heading has moved on by -0.2 · 0.125 rad while the robot kept its start heading
    np.testing.assert_allclose(obs[30:34], [0.4, -0.2 - 0.025, 1.0, 0.0], atol=1e-12)
    groups = env.observation_groups()
    assert sorted(i for g in groups.values() for i in g) == list(range(34))


def test_actions_are_offsets_from_the_standing_pose_clipped_to_the_joint_ranges(env, model):
    data = fresh(env, model)
    env.apply_action(model, data, np.zeros(12))
    np.testing.assert_array_equal(data.ctrl, STAND)
    env.apply_action(model, data, np.full(12, 5.0))  # clipped to 1 → stand + 0.5 rad, then to the ranges
    np.testing.assert_allclose(data.ctrl, np.minimum(STAND + 0.5, np.tile([0.6, 2.0, -0.3], 4)))
    rows = env.ctrl_rows(model, None, np.array([np.full(12, 5.0), np.zeros(12)]))
    np.testing.assert_array_equal(rows, [data.ctrl, STAND])


# -- task rules -------------------------------------------------------------------------------
def test_a_trunk_tilted_past_50_degrees_or_below_10_cm_has_fallen(env, model):
    data = fresh(env, model)
    for roll, expected in ((math.radians(45), None), (math.radians(55), "fell"), (math.radians(-55), "fell")):
        pose(data, yaw=2.0, roll=roll)
        assert env.terminated(model, data) == expected
    pose(data, z=0.09)
    assert env.terminated(model, data) == "fell"


def test_success_needs_the_commanded_distance_along_the_start_heading(env, model):
    data = fresh(env, model)
    yaw0 = data.userdata[START_YAW]
    assert env.command(model, data) == (0.2, 0.0)  # the default
    env.set_command(model, data, 0.3, 0.0)
    data.time = 6.0  # 0.3 m/s for 6 s: 1.8 m, give or take max(25 %, 0.1 m/s · 6 s) = 0.6 m
    for distance, expected in ((1.8, True), (1.25, True), (1.15, False), (2.35, True), (2.45, False)):
        pose(data, yaw=yaw0, xy=(distance * math.cos(yaw0), distance * math.sin(yaw0)))
        assert env.succeeded(model, data) is expected, distance
        assert env.progress(model, data) == pytest.approx(distance)
    # the same distance walked sideways is no progress at all
    pose(data, yaw=yaw0, xy=(-1.8 * math.sin(yaw0), 1.8 * math.cos(yaw0)))
    assert not env.succeeded(model, data) and env.progress(model, data) == pytest.approx(0.0, abs=1e-12)
    # walking straight, only the distance counts: arriving turned away is still the commanded walk
    pose(data, yaw=yaw0 + 0.4, xy=(1.2 * math.cos(yaw0), 1.2 * math.sin(yaw0)))
    assert env.succeeded(model, data)


def test_success_on_a_commanded_turn_follows_the_arc(env, model):
    data = fresh(env, model)
    yaw0 = data.userdata[START_YAW]
    env.set_command(model, data, 0.3, 0.4)
    data.time = 5.0  # a 2 rad turn on a circle of radius 0.75 m: the chord is 2·0.75·sin(1) = 1.262 m
    chord, heading = 2 * 0.75 * math.sin(1.0), yaw0 + 1.0
    end = (chord * math.cos(heading), chord * math.sin(heading))
    pose(data, yaw=yaw0 + 2.0, xy=end)
    assert env.succeeded(model, data) and env.progress(model, data) == pytest.approx(chord)
    pose(data, yaw=yaw0, xy=end)  # got there without turning
    assert not env.succeeded(model, data)
    pose(data, yaw=yaw0 + 2.0, xy=(1.262 * math.cos(yaw0), 1.262 * math.sin(yaw0)))  # went straight, then spun
    assert not env.succeeded(model, data)


def test_velocity_error_is_the_horizontal_velocity_against_the_command(env, model):
    data = fresh(env, model)
    pose(data, yaw=0.7)
    env.set_command(model, data, 0.3, 0.0)
    data.qvel[0:2] = (0.3 * math.cos(0.7), 0.3 * math.sin(0.7))
    assert env.velocity_error(model, data) == pytest.approx(0.0, abs=1e-15)
    data.qvel[0:2] = (0.0, 0.0)
    assert env.velocity_error(model, data) == pytest.approx(0.3)
    data.qvel[0:2] = (0.3 * math.cos(0.7 + math.pi / 2), 0.3 * math.sin(0.7 + math.pi / 2))  # sideways
    assert env.velocity_error(model, data) == pytest.approx(0.3 * math.sqrt(2))


def test_row_rules_equal_the_single_rules(env, model):
    rows = []
    for seed in range(3):
        data = fresh(env, model, seed)
        hold(env, model, data, 0.3, np.random.default_rng(seed).uniform(-1, 1, 12))
        rows.append(data)

    class Stacked:
        def __getattr__(self, name):
            return np.stack([np.asarray(getattr(d, name)) for d in rows])

    np.testing.assert_array_equal(env.observe_rows(model, Stacked()), [env.observe(model, d) for d in rows])
    np.testing.assert_array_equal(env.reward_rows(model, Stacked()), [env.reward(model, d) for d in rows])
    assert env.terminated_rows(model, Stacked()) == [env.terminated(model, d) for d in rows]


# -- the command perturbation -----------------------------------------------------------------
def command(params):
    return CommandVelocity(CommandVelocity.Params.model_validate(params))


def context(env, model, data, seed):
    return EpisodeContext(env, model, model, data, 300, 0.02, 4, np.random.default_rng(seed))


def test_command_velocity_writes_the_drawn_command(env, model):
    data = fresh(env, model)
    forward, yaw_rate = command({"forward": [0.1, 0.5], "yaw_rate": [-0.4, 0.4]}).start(context(env, model, data, 5))
    rng = np.random.default_rng(5)
    assert (forward, yaw_rate) == (rng.uniform(0.1, 0.5), rng.uniform(-0.4, 0.4))
    assert (data.userdata[FORWARD], data.userdata[YAW_RATE]) == (forward, yaw_rate)
    assert tuple(env.observe(model, data)[30:32]) == (forward, yaw_rate)
    command({"forward": -0.2}).start(context(env, model, data, 5))
    assert (data.userdata[FORWARD], data.userdata[YAW_RATE]) == (-0.2, 0.0)


def test_command_velocity_refuses_an_env_without_a_command():
    from envs.balancebot.env import BalanceBot

    bot = BalanceBot()
    model = bot.build_model()
    with pytest.raises(ValueError, match="env 'balancebot' takes no velocity command"):
        command({"forward": 0.3}).start(context(bot, model, mujoco.MjData(model), 0))


def test_command_velocity_ranges_must_be_ordered():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"low ≤ high, received \[0.5, 0.1\]"):
        command({"forward": [0.5, 0.1]})


# -- engines and shipped policies -------------------------------------------------------------
@pytest.fixture(scope="module")
def specs():
    from simgate.policies.manifest import read_manifest

    return {s.name: s for s in read_manifest(POLICY_DIR / "manifest.yaml")}


def test_manifest_sha256s_match_the_files(specs):
    assert sorted(specs) == ["quadruped-early", "quadruped-nominal", "quadruped-nominal-contract", "quadruped-robust",
                             "quadruped-robust-contract", "quadruped-robust-torchscript"]
    for spec in specs.values():
        assert spec.file_digest() == spec.sha256, spec.name
        env = "quadruped-mjcf" if spec.name.endswith("-contract") else "quadruped"  # the YAML robot, same networks
        assert (spec.env, spec.observation_size, spec.action_size) == (env, 34, 12)


def rollout_observations(env, model, policy, seconds=1.0):
    data = fresh(env, model, 3)
    out = []
    for _ in range(round(seconds * env.control_hz)):
        obs = env.observe(model, data)
        out.append(obs)
        env.apply_action(model, data, policy.act(obs[None])[0])
        for _ in range(env.frame_skip(model)):
            mujoco.mj_step(model, data)
    return np.array(out)


@pytest.mark.parametrize("name", ["robust", "nominal", "early"])
def test_exported_policies_give_the_trainers_actions(env, model, specs, name):
    numpy_policy = LinearPolicy.load(POLICY_DIR / "weights" / f"{name}.npz")
    obs = rollout_observations(env, model, numpy_policy)
    expected = numpy_policy.act(obs)
    assert np.abs(expected).max() > 0.1  # a policy that does something
    exported = [specs[f"quadruped-{name}"]] + ([specs["quadruped-robust-torchscript"]] if name == "robust" else [])
    for spec in exported:
        # float32 inside the graphs: agreement to float32 rounding of actions of order 1
        np.testing.assert_allclose(spec.load().act(obs), expected, atol=2e-5, err_msg=spec.name)


def make_case(perturbations=(), episodes=4, horizon=1.0):
    return Case(id="t", scenario="quadruped_test", source="test", env="quadruped", policy="p", point={},
                perturbations=tuple(perturbations), episodes=episodes, horizon=horizon, seed=3, alpha=0.05,
                determinism_episodes=1, thresholds={})


def test_batched_engine_equals_the_reference_bit_for_bit_on_the_quadruped(env, host, specs):
    kinds = host.registries.perturbations
    perturbations = []
    for kind, params in (("command_velocity", {"forward": [0.1, 0.5], "yaw_rate": [-0.4, 0.4]}),
                         ("scale_friction", {"sliding": [0.4, 1.0]}),
                         ("apply_pushes", {"body": "trunk", "force": 10, "interval": [0.3, 0.5], "duration": 0.2}),
                         ("add_observation_noise", {"std": {"imu": 0.02, "encoders": 0.01}})):
        cls = kinds.get(kind)
        perturbations.append(cls(cls.Params.model_validate(params)))
    policy = specs["quadruped-robust"].load()
    case = make_case()
    reference = ReferenceEngine(env, policy, perturbations, 12).run(case, range(case.episodes))
    batched = BatchedEngine(env, policy, perturbations, 12, nthread=2).run(case, range(case.episodes))
    assert len({e.state_hash for e in reference.episodes}) == case.episodes  # four different worlds
    for a, b in zip(reference.episodes, batched.episodes):
        assert (a.success, a.length, a.terminated, a.ret, a.progress) == (b.success, b.length, b.terminated, b.ret, b.progress)
        np.testing.assert_array_equal(a.step_hashes, b.step_hashes)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.mean_abs_torque, b.mean_abs_torque)
        assert (a.work, a.saturation, a.at_stops) == (b.work, b.saturation, b.at_stops)
        np.testing.assert_equal(a.signals, b.signals)
        assert set(a.signals) == {"velocity_error", "drift", "slip", "estop", "contact_force"} and a.signals["velocity_error"] >= 0 <= a.signals["slip"]
        np.testing.assert_equal(a.signal_peaks, b.signal_peaks)
        np.testing.assert_array_equal(a.peak_joint_speed, b.peak_joint_speed)


# -- the trainer ------------------------------------------------------------------------------
def test_one_ars_update_on_a_tiny_batch_is_deterministic_and_moves_the_weights():
    import argparse

    from policies.quadruped import train

    args = argparse.Namespace(directions=2, top=1, noise=0.03, step_size=0.02, horizon=0.2, seed=4, nthread=1)
    thetas = []
    for _ in range(2):
        trainer = train.Trainer("robust", args)
        trainer.warm_up()
        count = trainer.norm.count
        row = trainer.iteration(1)
        assert trainer.norm.count == count + row["env_steps"]  # every live state, and only those
        thetas.append(trainer.theta)
    assert row["env_steps"] == 2 * 2 * 10  # two directions, two signs, 0.2 s at 50 Hz
    np.testing.assert_array_equal(thetas[0], thetas[1])
    # with one direction kept, σ_R = |r+ − r−| / 2, so the step α/σ_R·(r+ − r−)·δ is exactly ±2α·δ
    delta = np.random.default_rng(4).standard_normal((2, 12, 41))
    step = (thetas[0] - train.gait_prior()) / (2 * 0.02)
    assert any(np.allclose(step, sign * d, rtol=0, atol=1e-12) for d in delta for sign in (1, -1))
