"""A robot from its MJCF and YAML, driven through a policy's declarative contract.

The shipped quadruped re-expressed as ``envs/quadruped_mjcf/robot.yaml`` plus
``policies/quadruped/contract.yaml`` must be the same robot as the hand-written Python env: the
same actions at every control step (so the same observations, to the last bit, as the network
is deterministic), the same torques, work and ends, in both engines and under every
perturbation. Its own contract state (userdata slots the Python env does not have) makes the
full-state step hashes differ, so those are compared between the two engines only.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine
from simgate.engine.reference import ReferenceEngine
from tests.test_batched_engine import EVERY_KIND, ROBOTS, assert_identical, build
from tests.test_engine import make_case

PY, YAML = "quadruped", "quadruped-mjcf"


@pytest.fixture(scope="module")
def pair(host):
    from simgate.runner import build_env

    regs = host.registries
    py_spec, yaml_spec = regs.policies.get("quadruped-robust"), regs.policies.get("quadruped-robust-contract")
    return (build_env(regs.envs.get(PY), py_spec), build_env(regs.envs.get(YAML), yaml_spec), py_spec.load())


def same_robot(a, b):
    """The same episodes but for the state hashes (the YAML env carries its contract state)."""
    for x, y in zip(a.episodes, b.episodes, strict=True):
        assert (x.index, x.seed, x.length, x.terminated, x.message) == (y.index, y.seed, y.length, y.terminated, y.message)
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.mean_abs_torque, y.mean_abs_torque)
        np.testing.assert_array_equal(x.peak_abs_torque, y.peak_abs_torque)
        np.testing.assert_array_equal(x.peak_joint_speed, y.peak_joint_speed)
        assert (x.work, x.mass, x.saturation) == (y.work, y.mass, y.saturation)


def test_the_contract_reproduces_the_python_env_bit_for_bit(pair):
    py_env, yaml_env, policy = pair
    assert (yaml_env.observation_size, yaml_env.action_size, yaml_env.control_hz) == (34, 12, 50)
    case = make_case(env=PY, policy="quadruped-robust", horizon=4.0, episodes=6)
    python = ReferenceEngine(py_env, policy, [], 12).run(case, range(6))
    reference = ReferenceEngine(yaml_env, policy, [], 12).run(case, range(6))
    same_robot(python, reference)
    assert all(len(e.actions) == 200 for e in reference.episodes)  # it walked the 4 s, as in the Python env
    assert_identical(reference, BatchedEngine(yaml_env, policy, [], 12, nthread=2).run(case, range(6)))
    assert_identical(reference, BatchedEngine(yaml_env, policy, [], 12, nthread=1).run(case, range(6)))


def _kinds():
    params = {**EVERY_KIND, **ROBOTS["quadruped"]["params"]}
    return sorted(k for k, v in params.items() if v is not None), params


@pytest.mark.parametrize("kind", _kinds()[0])
def test_every_perturbation_works_on_the_yaml_robot_unchanged(host, pair, kind):
    py_env, yaml_env, policy = pair
    params = _kinds()[1][kind]
    case = make_case(env=PY, policy="quadruped-robust", horizon=1.0, episodes=4)
    python = ReferenceEngine(py_env, policy, [build(host, kind, params)], 12).run(case, range(4))
    reference = ReferenceEngine(yaml_env, policy, [build(host, kind, params)], 12).run(case, range(4))
    same_robot(python, reference)
    batched = BatchedEngine(yaml_env, policy, [build(host, kind, params)], 12, nthread=2, chunk=3).run(case, range(4))
    assert_identical(reference, batched)


def test_a_candidate_and_its_baseline_may_carry_different_contracts(host, pair):
    """The same network under another contract is another policy: a wrong filter constant walks
    differently, and each env binds its own policy's contract."""
    from simgate.robots.load import contract_file
    from simgate.runner import build_env, env_for

    _, yaml_env, policy = pair
    regs = host.registries
    spec = regs.policies.get("quadruped-robust-contract")
    data = spec.contract.contract.model_dump(exclude_none=True)
    data["action"]["filter_alpha"] = 0.5
    import tempfile
    from pathlib import Path

    import yaml

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contract.yaml"
        path.write_text(yaml.safe_dump(data))
        other = dataclasses.replace(spec, name="filtered", contract=contract_file(path, "contract.yaml"))
    filtered = env_for(yaml_env, other)
    assert filtered is not yaml_env and filtered.contract is other.contract
    assert env_for(build_env(regs.envs.get(YAML), spec), spec).contract is spec.contract
    case = make_case(env=PY, policy="quadruped-robust", horizon=1.0, episodes=2)
    a = ReferenceEngine(yaml_env, policy, [], 12).run(case, range(2))
    b = ReferenceEngine(filtered, policy, [], 12).run(case, range(2))
    assert not np.array_equal(a.episodes[0].actions[5:], b.episodes[0].actions[5:])


def test_the_hold_baseline_sends_the_neutral_action(host, pair):
    from simgate.policies import hold

    _, yaml_env, _ = pair
    policy = hold.for_env(yaml_env)
    case = make_case(env=PY, policy="hold", horizon=2.0, episodes=3)
    episodes = ReferenceEngine(yaml_env, policy, [], 12).run(case, range(3)).episodes
    assert all(np.array_equal(e.actions, np.zeros_like(e.actions)) for e in episodes)  # offset mapping: pose = 0
    assert all(e.terminated is None for e in episodes)  # holding the standing pose stands


RICH = """\
joints: [FL_abduction, FL_flexion, FL_knee, FR_abduction, FR_flexion, FR_knee,
         HL_abduction, HL_flexion, HL_knee, HR_abduction, HR_flexion, HR_knee]
observation:
  - {term: projected_gravity, source: freejoint, noise: 0.05}
  - {term: base_lin_vel, source: freejoint, frame: heading}
  - {term: base_ang_vel, source: freejoint, frame: world, history: 3}
  - {term: joint_pos_norm}
  - {term: joint_vel_norm, max_velocity: 20.0, clip: [-1, 1]}
  - {term: contact, threshold: 1.0}
  - {term: contact_forces, bodies: [trunk, HR_foot], scale: 0.01}
  - {term: last_action, which: raw, initial: default_pose, history: 2}
  - {term: velocity_commands, components: [vx, vy, yaw_rate], ranges: [[0.0, 0.4], [-0.1, 0.1], [-0.3, 0.3]]}
  - {term: gait_phase, hz: 1.5}
  - {term: constant, value: [1.0]}
  - {term: padding, size: 2}
action:
  actuators: [FL_abduction, FL_flexion, FL_knee, FR_abduction, FR_flexion, FR_knee,
              HL_abduction, HL_flexion, HL_knee, HR_abduction, HR_flexion, HR_knee]
  mapping: range
  sign: [1, 1, 1, -1, 1, 1, 1, 1, 1, -1, 1, 1]
  clip: [-1, 1]
  filter_alpha: 0.6
  delay_steps: 2
"""


class Elementwise:
    """A fixed random single-layer controller computed elementwise (the same bits for one row
    and for many), reading every observation channel."""

    def __init__(self, n_obs: int, n_act: int):
        rng = np.random.default_rng(5)
        self.w = rng.normal(0.0, 0.3 / np.sqrt(n_obs), size=(n_obs, n_act))

    def act(self, obs):
        return np.tanh(np.sum(obs[:, :, None] * self.w[None], axis=1))


def test_stateful_terms_contacts_filter_and_delay_agree_in_both_engines(host, tmp_path):
    """Contact switches and forces, history stacks, the previous action, a filter and a delay
    line: every piece of contract state travels with the simulation, so both engines give the
    same bits (contact terms need no reference-engine fallback)."""
    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    (tmp_path / "rich.yaml").write_text(RICH)
    spec = dataclasses.replace(host.registries.policies.get("quadruped-robust-contract"), name="rich",
                               contract=contract_file(tmp_path / "rich.yaml", "rich.yaml"))
    env = build_env(host.registries.envs.get(YAML), spec)
    assert env.observation_size == 3 + 3 + 9 + 12 + 12 + 4 + 2 + 24 + 3 + 2 + 1 + 2
    assert env.observation_groups()["contact"] == list(range(39, 43))
    policy = Elementwise(env.observation_size, 12)
    case = make_case(env=YAML, policy="rich", horizon=1.5, episodes=5)
    reference = ReferenceEngine(env, policy, [], 12).run(case, range(5))
    batched = BatchedEngine(env, policy, [], 12, nthread=2, chunk=3).run(case, range(5))
    assert_identical(reference, batched)
    assert type(batched).__name__ == "Rollouts" and all(e.length > 10 for e in batched.episodes)


def test_contact_and_history_terms_read_what_they_say(host, tmp_path):
    import mujoco

    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    (tmp_path / "rich.yaml").write_text(RICH)
    spec = dataclasses.replace(host.registries.policies.get("quadruped-robust-contract"), name="rich",
                               contract=contract_file(tmp_path / "rich.yaml", "rich.yaml"))
    env = build_env(host.registries.envs.get(YAML), spec)
    model, data = started(env, 1)
    mujoco.mj_step(model, data, nstep=40)  # settle on the feet
    obs = env.observe(model, data)
    assert list(obs[39:43]) == [1.0, 1.0, 1.0, 1.0]  # every foot on the floor carries > 1 N
    assert obs[43] == 0.0 and obs[44] > 0.03  # the trunk touches nothing; a foot carries ~8 N (x 0.01)
    # the first frame of a history is the current one repeated; the previous action starts at the
    # default pose in action space (range mapping: not zero), signed as the network outputs it
    np.testing.assert_array_equal(obs[9:12], obs[6:9])
    first = obs[45:57]
    assert np.count_nonzero(first) == 4 and np.array_equal(first, obs[57:69])  # the knees' pose is off-centre
    env.apply_action(model, data, np.full(12, 0.5))
    after = env.observe(model, data)
    np.testing.assert_array_equal(after[45:57], np.full(12, 0.5))
    np.testing.assert_array_equal(after[57:69], first)


def test_observation_noise_as_the_contract_states_it(host, tmp_path):
    """``add_observation_noise: {std: contract}`` adds the noise each term's ``noise:`` states,
    and none where a term states none."""
    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    (tmp_path / "rich.yaml").write_text(RICH)
    spec = dataclasses.replace(host.registries.policies.get("quadruped-robust-contract"), name="rich",
                               contract=contract_file(tmp_path / "rich.yaml", "rich.yaml"))
    env = build_env(host.registries.envs.get(YAML), spec)
    case = make_case(env=YAML, policy="rich", horizon=1.0, episodes=2)
    engine = ReferenceEngine(env, Elementwise(env.observation_size, 12), [build(host, "add_observation_noise", {"std": "contract"})], 12)
    _, _, _, states = engine.start_episode(case, 0, 50)
    (noise,) = states
    assert noise.shape == (50, env.observation_size)
    assert 0.03 < noise[:, :3].std() < 0.07 and not noise[:, 3:].any()  # projected_gravity only, std 0.05


def test_noise_stated_in_raw_units_is_scaled_into_the_observation_as_training_added_it(host, tmp_path, monkeypatch):
    """Isaac Lab's ``Unoise(-1.5, 1.5)`` on joint_vel with scale 0.05 (legged_gym: noise_scales.dof_vel
    1.5): the observation saw U(-0.075, 0.075), not N(0, 1.5²). {gaussian: s} is N(0, (s·|scale|)²)."""
    env = contract_env(host, tmp_path, "noisy", "  - {term: joint_vel, scale: 0.05, noise: {uniform: 1.5}}\n"
                       "  - {term: base_ang_vel, source: imu_gyro, scale: -0.25, noise: {gaussian: 0.2}}\n"
                       "  - {term: projected_gravity, source: freejoint, noise: 0.05}\n"
                       "  - {term: joint_pos_rel}\n", 30)
    case = make_case(env=YAML, policy="noisy", horizon=1.0, episodes=2)
    engine = ReferenceEngine(env, Elementwise(30, 12), [build(host, "add_observation_noise", {"std": "contract"})], 12)
    _, _, _, (noise,) = engine.start_episode(case, 0, 4000)
    joint_vel, gyro, gravity, joints = noise[:, :12], noise[:, 12:15], noise[:, 15:18], noise[:, 18:]
    assert np.abs(joint_vel).max() <= 0.075 and np.abs(joint_vel).max() > 0.074  # uniform, half-width 1.5·0.05
    assert abs(joint_vel.std() - 0.075 / np.sqrt(3)) < 0.002
    assert abs(gyro.std() - 0.05) < 0.002 and np.abs(gyro).max() > 0.15  # Gaussian, 0.2·|-0.25|
    assert abs(gravity.std() - 0.05) < 0.002  # a number: a Gaussian std in observation units, as before
    assert not joints.any()


def test_a_fixed_base_robot_with_no_python_equals_its_python_env(host):
    """The outside-plugin package's pendulum as YAML (tests/data/external_plugin: robots/pendulum)
    through its contract: joint terms from sensors, a torque mapping, joint-bound termination and
    success; the same episodes as its hand-written env, with and without a perturbation."""
    import sys
    from pathlib import Path

    from simgate.plugin_manager import Host
    from simgate.runner import build_env

    sys.path.insert(0, str(Path(__file__).resolve().parent / "data" / "external_plugin"))
    try:
        regs = Host(project_plugins=["acme_pendulum.plugin"], autoload=False).registries
    finally:
        sys.path.pop(0)
    python = build_env(regs.envs.get("acme-pendulum"), regs.policies.get("acme-pendulum-lqr"))
    yaml = build_env(regs.envs.get("acme-pendulum-yaml"), regs.policies.get("acme-pendulum-lqr-yaml"))
    policy = regs.policies.get("acme-pendulum-lqr").load()
    case = make_case(env="acme-pendulum", policy="acme-pendulum-lqr", horizon=2.0, episodes=6)
    for kinds in ([], [("scale_motor_strength", {"scale": 0.6})]):
        make = lambda: [build(host, k, p) for k, p in kinds]  # noqa: E731
        a = ReferenceEngine(python, policy, make(), 1).run(case, range(6))
        b = ReferenceEngine(yaml, policy, make(), 1).run(case, range(6))
        same_robot(a, b)
        assert [e.success for e in a.episodes] == [e.success for e in b.episodes]
        assert_identical(b, BatchedEngine(yaml, policy, make(), 1, nthread=2, chunk=4).run(case, range(6)))


STACKED = """\
joints: [FL_abduction, FL_flexion, FL_knee, FR_abduction, FR_flexion, FR_knee,
         HL_abduction, HL_flexion, HL_knee, HR_abduction, HR_flexion, HR_knee]
observation:
  - {term: gait_phase, hz: [1.25, 1.5], offsets: [0.0, 3.141592653589793], order: cos_sin}
  - {term: base_euler, source: "body:trunk"}
  - {term: sensor, sensors: [imu_accel, imu_gyro]}
  - {term: joint_pos_rel, history: 3, history_order: oldest_first}
  - {term: last_action, which: applied, initial: zeros}
frame_stack: {length: 3, order: oldest_first}
action:
  actuators: [FL_abduction, FL_flexion, FL_knee, FR_abduction, FR_flexion, FR_knee,
              HL_abduction, HL_flexion, HL_knee, HR_abduction, HR_flexion, HR_knee]
  mapping: offset
  scale: 0.25
"""


def started(env, seed: int):
    """``env``'s model and a fresh MjData reset as an episode with this seed starts (not stepped)."""
    import mujoco

    model = env.build_model()
    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(seed))
    return model, data


def contract_text(observation: str, action: str | None = None) -> str:
    """STACKED's joints and action (or ``action``, the text after ``action:``) with these
    observation terms (YAML list lines)."""
    return (STACKED.split("observation:")[0] + "observation:\n" + observation + "action:"
            + (STACKED.split("action:")[1] if action is None else action))


def contract_env(host, tmp_path, name: str, observation: str, size: int, action: str | None = None):
    """The YAML quadruped under a variant contract (``contract_text``) of ``size`` observations."""
    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    (tmp_path / f"{name}.yaml").write_text(contract_text(observation, action))
    spec = dataclasses.replace(host.registries.policies.get("quadruped-robust-contract"), name=name,
                               observation_size=size, contract=contract_file(tmp_path / f"{name}.yaml", f"{name}.yaml"))
    return build_env(host.registries.envs.get(YAML), spec)


def _stacked_env(host, tmp_path):
    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    (tmp_path / "stacked.yaml").write_text(STACKED)
    spec = dataclasses.replace(host.registries.policies.get("quadruped-robust-contract"), name="stacked",
                               contract=contract_file(tmp_path / "stacked.yaml", "stacked.yaml"))
    return build_env(host.registries.envs.get(YAML), spec)


def test_frame_stacks_history_orders_phases_euler_and_raw_sensors_agree_in_both_engines(host, tmp_path):
    env = _stacked_env(host, tmp_path)
    frame = 4 + 3 + 6 + 36 + 12
    assert (env.frame_size, env.observation_size) == (frame, 3 * frame)
    policy = Elementwise(env.observation_size, 12)
    case = make_case(env=YAML, policy="stacked", horizon=1.0, episodes=4)
    reference = ReferenceEngine(env, policy, [], 12).run(case, range(4))
    assert_identical(reference, BatchedEngine(env, policy, [], 12, nthread=2, chunk=3).run(case, range(4)))


def test_what_the_stacking_and_the_new_terms_read(host, tmp_path):
    import mujoco

    from simgate.robots import quat

    env = _stacked_env(host, tmp_path)
    model, data = started(env, 4)
    mujoco.mj_forward(model, data)
    first = env.observe(model, data)
    f = env.frame_size
    np.testing.assert_array_equal(first[:f], first[f:2 * f])  # before any step every frame is the first
    np.testing.assert_array_equal(first[:f], first[2 * f:])
    np.testing.assert_allclose(first[:4], [1.0, -1.0, 0.0, np.sin(np.pi)])  # cos(0), cos(π), sin(0), sin(π)
    hz = data.userdata[env.layout["gait"].start]
    assert 1.25 <= hz <= 1.5  # drawn for this episode
    w, x, y, z = data.qpos[3:7]
    np.testing.assert_allclose(first[6], quat.yaw_of(w, x, y, z), atol=1e-12)  # the trunk's yaw, from body:trunk
    accel = model.sensor("imu_accel")
    np.testing.assert_array_equal(first[7:10], data.sensordata[accel.adr[0]:accel.adr[0] + 3])
    env.apply_action(model, data, np.full(12, 0.4))
    mujoco.mj_step(model, data, nstep=4)
    second = env.observe(model, data)
    np.testing.assert_allclose(second[2 * f:2 * f + 4], np.r_[np.cos(2 * np.pi * hz * 0.02 + np.array([0, np.pi])),
                                                             np.sin(2 * np.pi * hz * 0.02 + np.array([0, np.pi]))])
    np.testing.assert_array_equal(second[f:2 * f], first[2 * f:])  # oldest first: the last frame is the newest
    np.testing.assert_array_equal(second[2 * f - 12:2 * f], np.zeros(12))  # last applied action before step 1: zeros
    np.testing.assert_array_equal(second[-12:], np.full(12, 0.4))  # ... and after it
    joints = second[2 * f + 13:2 * f + 49]  # joint_pos_rel's own history, oldest first: the newest is last
    np.testing.assert_array_equal(joints[:12], joints[12:24])  # its two oldest are still the first frame
    assert not np.array_equal(joints[24:], joints[12:24])


@pytest.mark.parametrize("sensors", [["imu_gyro"], ["imu_gyro", "imu_accel"], ["imu_accel", "imu_gyro"]])
def test_a_sensor_term_reads_one_sensor_or_several_in_any_order(host, tmp_path, sensors):
    """One sensor, or several in sensordata's own order, is a run of columns (read as a slice);
    several in another order are gathered: each reads exactly the named sensors' values."""
    import mujoco

    env = contract_env(host, tmp_path, "one", f"  - {{term: sensor, sensors: [{', '.join(sensors)}]}}\n",
                       3 * len(sensors))
    model, data = started(env, 0)
    mujoco.mj_step(model, data, nstep=3)
    expected = np.concatenate([data.sensordata[model.sensor(s).adr[0]:model.sensor(s).adr[0] + 3] for s in sensors])
    assert env.observation_size == 3 * len(sensors)
    np.testing.assert_array_equal(env.observe(model, data), expected)


def test_a_pd_loop_at_the_physics_rate_is_the_servo_the_contract_states(tmp_path):
    """unitree_rl_gym's MuJoCo deployment writes ctrl = kp·(target − q) − kd·q̇ to torque motors at
    every physics step; the contract's ``pd`` makes those actuators servos computing exactly that,
    through the motor's gear and within its ctrl range."""
    import mujoco

    from simgate.robots.env import _pd_servos
    from simgate.robots.load import read_contract

    xml = (Path(__file__).resolve().parent / "data" / "external_plugin" / "acme_pendulum" / "pendulum.xml").read_text()
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    kp, kd, target = 20.0, 1.0, 0.3
    data.qpos[0] = 0.1
    for _ in range(500):
        data.ctrl[0] = kp * (target - data.qpos[0]) - kd * data.qvel[0]  # clipped to ±1 by the motor, gear 5
        mujoco.mj_step(model, data)
    spec = mujoco.MjSpec.from_string(xml)
    contract = read_contract({"observation": [{"term": "joint_pos"}],
                              "action": {"actuators": ["motor"], "mapping": "offset", "pd": {"kp": kp, "kd": kd}}},
                             "manifest.yaml", {}, (), tmp_path)
    _pd_servos(spec, contract)
    servo_model = spec.compile()
    servo = mujoco.MjData(servo_model)
    servo.qpos[0] = 0.1
    saturated = 0
    for _ in range(500):
        servo.ctrl[0] = target
        mujoco.mj_step(servo_model, servo)
        saturated += abs(servo.actuator_force[0]) >= 1.0
    # the same loop to round-off (kd/gear·(gear·q̇) is not kd·q̇ in the last bit)
    np.testing.assert_allclose([servo.qpos[0], servo.qvel[0]], [data.qpos[0], data.qvel[0]], rtol=1e-9, atol=1e-12)
    assert saturated > 0  # the torque limit was reached, and held as the motor's was


def test_history_filled_with_zeros_starts_every_stack_empty_in_both_engines(host, tmp_path, monkeypatch):
    """humanoid-gym and Playground fill their history buffers with zeros at reset:
    ``history_fill: zeros`` shows zeros where no frame has been seen yet, then the frames."""
    import mujoco

    monkeypatch.setattr(sys.modules[__name__], "STACKED", STACKED.replace("action:", "history_fill: zeros\naction:"))
    env = _stacked_env(host, tmp_path)
    model, data = started(env, 4)
    mujoco.mj_forward(model, data)
    first = env.observe(model, data)
    f = env.frame_size
    np.testing.assert_array_equal(first[:2 * f], np.zeros(2 * f))  # oldest first: two frames not seen yet
    joints = first[2 * f + 13:2 * f + 49]  # joint_pos_rel's own history, oldest first
    np.testing.assert_array_equal(joints[:24], np.zeros(24))
    assert np.any(joints[24:] != 0)
    env.apply_action(model, data, np.full(12, 0.4))
    mujoco.mj_step(model, data, nstep=4)
    second = env.observe(model, data)
    np.testing.assert_array_equal(second[:f], np.zeros(f))
    np.testing.assert_array_equal(second[f:2 * f], first[2 * f:])
    policy = Elementwise(env.observation_size, 12)
    case = make_case(env=YAML, policy="stacked", horizon=0.5, episodes=4)
    reference = ReferenceEngine(env, policy, [], 12).run(case, range(4))
    assert_identical(reference, BatchedEngine(env, policy, [], 12, nthread=2, chunk=3).run(case, range(4)))


def test_a_gait_phase_that_lags_shows_the_phase_of_the_step_before(host, tmp_path):
    """Playground advances its phase after building the observation: at control step k the
    policy sees the phase of step k − 1 (step 0 and step 1 both see phase 0). ``lag_steps: 1``."""
    import mujoco

    seen = {}
    for extra in ("", ", lag_steps: 1"):
        env = contract_env(host, tmp_path, "clock", "  - {term: gait_phase, hz: 1.5, offsets: [0, 3.14159], "
                           f"order: cos_sin{extra}}}\n", 4)
        model, data = started(env, 0)
        mujoco.mj_forward(model, data)
        steps = []
        for _ in range(4):
            steps.append(env.observe(model, data))
            mujoco.mj_step(model, data, nstep=env.frame_skip(model))
        seen[extra] = np.array(steps)
    now, lagged = seen[""], seen[", lag_steps: 1"]
    np.testing.assert_array_equal(lagged[0], now[0])
    np.testing.assert_array_equal(lagged[1], now[0])  # still phase 0
    np.testing.assert_allclose(lagged[2:], now[1:3], atol=1e-12)
    assert not np.allclose(lagged[2], now[2])


@pytest.mark.parametrize("clip", [None, True])
def test_targets_are_sent_as_computed_unless_the_contract_clips_them_to_the_joint_range(host, tmp_path, clip):
    """Isaac Lab, legged_gym and Playground do not clip a position target to the joint's range:
    nor does a contract unless it says ``clip_to_range: true``."""
    action = STACKED.split("action:")[1].replace("scale: 0.25", "scale: 10.0")
    if clip:
        action += "  clip_to_range: true\n"
    env = contract_env(host, tmp_path, "clip", "  - {term: joint_pos_rel}\n", 12, action)
    model, data = started(env, 0)
    default = env.actions.default.copy()
    env.apply_action(model, data, np.ones(12))
    high = model.jnt_range[[model.joint(j).id for j in env.actions.joints], 1]
    expected = np.minimum(default + 10.0, high) if clip else default + 10.0
    np.testing.assert_array_equal(data.ctrl[env.actions.ids], expected)


def test_base_lin_vel_of_the_centre_of_mass_as_isaac_lab_reads_the_root(tmp_path):
    """Isaac Lab's base_lin_vel (root_lin_vel_b) and Isaac Gym's root state are the base body's
    centre-of-mass velocity; MuJoCo's free-joint qvel is its origin's. ``point: com`` gives the
    former: here the trunk's mass sits 4 cm ahead and 2 cm below its origin."""
    import mujoco

    from simgate.robots.env import MjcfEnv
    from simgate.robots.load import contract_file, read_robot

    repo = Path(__file__).resolve().parents[1]
    trunk = '<geom name="trunk" type="box" size="0.15 0.07 0.035" mass="2.0"/>'
    xml = (repo / "envs" / "quadruped" / "quadruped.xml").read_text()
    assert trunk in xml
    (tmp_path / "walker.xml").write_text(xml.replace(trunk, trunk.replace('type="box"', 'type="box" pos="0.04 0 -0.02"')))
    robot_yaml = (repo / "envs" / "quadruped_mjcf" / "robot.yaml").read_text().replace("../quadruped/quadruped.xml",
                                                                                      "walker.xml")
    (tmp_path / "robot.yaml").write_text(robot_yaml)
    robot = read_robot(tmp_path / "robot.yaml", "robot.yaml")
    seen = {}
    for point in ("origin", "com"):
        (tmp_path / f"{point}.yaml").write_text(contract_text(f"  - {{term: base_lin_vel, point: {point}}}\n"))
        env = MjcfEnv(robot, contract_file(tmp_path / f"{point}.yaml", f"{point}.yaml"))
        model, data = started(env, 0)
        data.qvel[0:6] = [0.3, 0.1, -0.2, 0.7, -1.1, 0.9]
        mujoco.mj_forward(model, data)
        trunk_id = model.body("trunk").id
        jacp = np.zeros((3, model.nv))
        mujoco.mj_jac(model, data, jacp, None, data.xipos[trunk_id], trunk_id)
        rotation = data.xmat[trunk_id].reshape(3, 3)
        seen[point] = (env.observe(model, data), rotation.T @ (jacp @ data.qvel), rotation.T @ data.qvel[0:3])
    observed, at_com, at_origin = seen["com"]
    np.testing.assert_allclose(observed, at_com, atol=1e-12)
    assert np.abs(at_com - at_origin).max() > 0.01
    np.testing.assert_allclose(seen["origin"][0], at_origin, atol=1e-12)


def test_pd_on_a_motor_with_a_tighter_force_range_keeps_the_tighter_limit(tmp_path):
    """A motor limited both by its ctrl range (±1) and by a tighter force range (±0.6): as a PD
    servo it can give no more than it could before, ±0.6."""
    import mujoco

    from simgate.robots.env import _pd_servos
    from simgate.robots.load import read_contract

    xml = (Path(__file__).resolve().parent / "data" / "external_plugin" / "acme_pendulum" / "pendulum.xml").read_text()
    motor = 'ctrllimited="true" ctrlrange="-1 1"'
    assert motor in xml
    spec = mujoco.MjSpec.from_string(xml.replace(motor, motor + ' forcelimited="true" forcerange="-0.6 0.8"'))
    contract = read_contract({"observation": [{"term": "joint_pos"}],
                              "action": {"actuators": ["motor"], "mapping": "offset", "pd": {"kp": 20, "kd": 1}}},
                             "manifest.yaml", {}, (), tmp_path)
    _pd_servos(spec, contract)
    model = spec.compile()
    np.testing.assert_array_equal(model.actuator_forcerange[0], [-0.6, 0.8])
    assert model.actuator_forcelimited[0] and not model.actuator_ctrllimited[0]


def test_a_reset_that_scales_the_pose_and_draws_the_base_velocity_as_legged_gym_does(host):
    """legged_gym and Playground start each episode from default_pose · U(0.5, 1.5) per joint
    and a base velocity U(-0.5, 0.5): ``joint_pos_scale`` and ``base_vel``, drawn in that order
    after the yaw; both engines give the same episodes."""
    import mujoco

    from simgate.robots.env import MjcfEnv
    from simgate.runner import build_env

    spec = host.registries.policies.get("quadruped-robust-contract")
    bound = build_env(host.registries.envs.get(YAML), spec)
    reset = type(bound.robot.robot.reset).model_validate({**bound.robot.robot.reset.model_dump(exclude_none=True),
                                                          "joint_pos": None, "joint_pos_scale": [0.5, 1.5],
                                                          "base_vel": {"uniform": 0.5}})
    robot = bound.robot.robot.model_copy(update={"reset": reset})
    env = MjcfEnv(dataclasses.replace(bound.robot, robot=robot), spec.contract)
    model = env.build_model()
    data = mujoco.MjData(model)
    rng = np.random.default_rng(7)
    env.reset(model, data, rng)
    mirror = np.random.default_rng(7)
    mirror.uniform(-np.pi, np.pi)  # the yaw
    key = model.key(reset.keyframe).id
    joints = env.index(model)["joints_qpos"]
    np.testing.assert_array_equal(data.qpos[joints], model.key_qpos[key][joints] * mirror.uniform(0.5, 1.5, len(joints)))
    np.testing.assert_array_equal(data.qvel[0:6], model.key_qvel[key][0:6] + mirror.uniform(-0.5, 0.5, 6))
    assert np.abs(data.qvel[0:6]).max() > 0.1
    policy = Elementwise(env.observation_size, 12)
    case = make_case(env=YAML, policy=spec.name, horizon=0.4, episodes=4)
    assert_identical(ReferenceEngine(env, policy, [], 12).run(case, range(4)),
                     BatchedEngine(env, policy, [], 12, nthread=2, chunk=3).run(case, range(4)))


def test_a_joint_leaving_an_asymmetric_range_ends_the_episode(host):
    """``terminate.joint_outside: {joint: [low, high]}`` (Playground's op3 ends an episode on any
    joint past its range): below low or above high is a fall, inside is not; a misspelt joint is
    refused with the closest name."""
    import mujoco

    from simgate.robots.env import MjcfEnv
    from simgate.robots.terms import ContractError
    from simgate.runner import build_env

    spec = host.registries.policies.get("quadruped-robust-contract")
    bound = build_env(host.registries.envs.get(YAML), spec)

    def robot_with(outside):
        terminate = type(bound.robot.robot.terminate).model_validate(
            {**bound.robot.robot.terminate.model_dump(), "joint_outside": outside})
        robot = bound.robot.robot.model_copy(update={"terminate": terminate})
        return MjcfEnv(dataclasses.replace(bound.robot, robot=robot), spec.contract)

    env = robot_with({"FL_knee": [-2.0, -0.5]})
    model, data = started(env, 0)
    adr = model.jnt_qposadr[model.joint("FL_knee").id]
    seen = []
    for q in (-2.01, -1.2, -0.49):
        data.qpos[adr] = q
        mujoco.mj_forward(model, data)
        seen.append(env.terminated(model, data))
    assert seen == ["fell", None, "fell"]
    with pytest.raises(ContractError, match="joint_outside.*no joint named 'FL_kne'.*did you mean 'FL_knee'"):
        robot_with({"FL_kne": [-2.0, -0.5]}).build_model()


def test_a_gait_phase_held_while_the_command_says_stand(host, tmp_path):
    """Playground's T1 and Apollo hold every foot's phase at π while |command| ≤ 0.01:
    ``still_phase: 3.14159`` does that when the episode's command is still, and lets the clock run
    when it is not; without a velocity_commands term the option is refused."""
    import mujoco

    from simgate.robots.terms import ContractError

    clock = "  - {term: gait_phase, hz: 1.5, offsets: [0, 3.14159], order: cos_sin, still_phase: 3.14159}\n"
    for value, size in (("[0.0, 0.0]", 6), ("[0.3, 0.0]", 6)):
        env = contract_env(host, tmp_path, "still", clock + f"  - {{term: velocity_commands, components: [vx, vy], "
                           f"value: {value}}}\n", size)
        model, data = started(env, 0)
        mujoco.mj_step(model, data, nstep=20)
        phase = 2 * np.pi * 1.5 * data.time + np.array([0.0, 3.14159])
        expected = np.full(2, 3.14159) if value == "[0.0, 0.0]" else phase
        np.testing.assert_allclose(env.observe(model, data)[:4], np.r_[np.cos(expected), np.sin(expected)], atol=1e-12)
    with pytest.raises(ContractError, match="still_phase.*no velocity_commands term"):
        contract_env(host, tmp_path, "still", clock, 4)


def test_the_new_clock_noise_and_termination_options_give_the_same_episodes_in_both_engines(host, tmp_path):
    """lag_steps, still_phase, uniform noise, point: com, history_fill and joint_outside are read by
    the same row rules in both engines: the episodes are bit-identical."""
    from simgate.robots.env import MjcfEnv

    env = contract_env(host, tmp_path, "all", "  - {term: gait_phase, hz: 1.5, offsets: [0, 3.14159], lag_steps: 1, "
                       "still_phase: 3.14159}\n  - {term: velocity_commands, components: [vx, vy], "
                       "ranges: [[-0.01, 0.3], [-0.005, 0.005]]}\n"
                       "  - {term: base_lin_vel, point: com, noise: {uniform: 0.1}}\n"
                       "  - {term: joint_pos_rel, history: 2}\nhistory_fill: zeros\n", 4 + 2 + 3 + 24)
    # the knee dips to about -1.28 rad in some episodes as the trunk settles: those end there
    terminate = type(env.robot.robot.terminate).model_validate(
        {**env.robot.robot.terminate.model_dump(), "joint_outside": {"FL_knee": [-1.285, -1.13]}})
    env = MjcfEnv(dataclasses.replace(env.robot, robot=env.robot.robot.model_copy(update={"terminate": terminate})),
                  env.contract)
    policy = Elementwise(env.observation_size, 12)
    case = make_case(env=YAML, policy="all", horizon=1.0, episodes=6)
    noise = lambda: [build(host, "add_observation_noise", {"std": "contract"})]  # noqa: E731
    reference = ReferenceEngine(env, policy, noise(), 12).run(case, range(6))
    assert_identical(reference, BatchedEngine(env, policy, noise(), 12, nthread=2, chunk=4).run(case, range(6)))
    ended = [e.length for e in reference.episodes if e.terminated == "fell"]
    assert 0 < len(ended) < 6, [(e.terminated, e.length) for e in reference.episodes]


def test_pd_on_position_actuators_sets_their_gains_and_keeps_their_limits(tmp_path):
    """MuJoCo Playground edits the MJCF's position servos in code (``modify_pd_gains``: gain kp,
    bias −kp, −kd, nothing else); on such actuators ``pd`` does exactly that: their ctrl range
    is a joint range, which must not become a torque limit."""
    import mujoco

    from simgate.robots.env import _pd_servos
    from simgate.robots.load import read_contract

    xml = Path(__file__).resolve().parents[1] / "envs" / "quadruped" / "quadruped.xml"
    nominal = mujoco.MjModel.from_xml_path(str(xml))
    spec = mujoco.MjSpec.from_file(str(xml))
    names = [nominal.actuator(i).name for i in range(nominal.nu)]
    contract = read_contract({"observation": [{"term": "joint_pos"}],
                              "action": {"actuators": names, "mapping": "offset", "pd": {"kp": 35, "kd": 0.5}}},
                             "manifest.yaml", {}, (), tmp_path)
    _pd_servos(spec, contract)
    model = spec.compile()
    playground = mujoco.MjModel.from_xml_path(str(xml))
    playground.actuator_gainprm[:, 0] = 35
    playground.actuator_biasprm[:, 1] = -35
    playground.actuator_biasprm[:, 2] = -0.5
    for field in ("actuator_gainprm", "actuator_biasprm", "actuator_forcerange", "actuator_ctrlrange",
                  "actuator_ctrllimited", "actuator_forcelimited", "actuator_gaintype", "actuator_biastype"):
        np.testing.assert_array_equal(getattr(model, field), getattr(playground, field), err_msg=field)


def test_the_physics_step_a_training_env_set_in_code(host, tmp_path):
    """Playground sets ``opt.timestep = sim_dt`` in Python, not in the MJCF: the robot states it."""
    from simgate.robots.env import MjcfEnv
    from simgate.robots.load import read_robot

    robot = (Path(__file__).resolve().parent.parent / "envs" / "quadruped_mjcf" / "robot.yaml").read_text()
    (tmp_path / "robot.yaml").write_text(robot.replace("scene: ../quadruped/quadruped.xml",
                                                       f"scene: {Path(__file__).resolve().parent.parent}/envs/quadruped/quadruped.xml")
                                         .replace("control_hz: 50", "decimation: 10\ntimestep: 0.002"))
    env = MjcfEnv(read_robot(tmp_path / "robot.yaml", "robot.yaml"))
    model = env.build_model()
    assert model.opt.timestep == 0.002 and env.control_hz == 50.0 and env.frame_skip(model) == 10


def test_the_rules_give_the_same_bits_on_all_rows_some_rows_and_one(host, tmp_path):
    """The batched engine hands a rule its lane's fields as views of the batch while every
    episode is live, and as copies once only some are; the contract's rules change their state
    (the action's slots, the history stacks, the tracking sums) in place and assign it back.
    Either way each row gets the bits the rules give its episode alone, and rows left out are
    left alone."""
    import mujoco
    from mujoco.batch import Batch

    from simgate.engine.batched import ENGINE_FIELDS, _Rows, fields_read
    from simgate.envs.base import OneRow
    from simgate.robots.env import MjcfEnv
    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    (tmp_path / "rich.yaml").write_text(RICH)
    spec = dataclasses.replace(host.registries.policies.get("quadruped-robust-contract"), name="rich",
                               contract=contract_file(tmp_path / "rich.yaml", "rich.yaml"))
    bound = build_env(host.registries.envs.get(YAML), spec)
    robot = bound.robot.robot  # velocity tracking on: the signal rule keeps its sums in userdata
    robot = robot.model_copy(update={"success": robot.success.model_copy(update={"velocity_tracking": 0.3})})
    env = MjcfEnv(dataclasses.replace(bound.robot, robot=robot), spec.contract)
    model, n, kind = env.build_model(), 5, mujoco.mjtState.mjSTATE_INTEGRATION
    starts = np.zeros((n, mujoco.mj_stateSize(model, kind)))
    for j in range(n):  # five different states, the feet on the floor
        data = mujoco.MjData(model)
        env.reset(model, data, np.random.default_rng(j))
        mujoco.mj_step(model, data, nstep=10 + 7 * j)
        mujoco.mj_getState(model, data, starts[j], kind)
    actions = np.random.default_rng(9).uniform(-1.0, 1.0, (2, n, 12))

    def alone(j):
        """Episode j's rules, one row at a time, for two control steps (no physics in between)."""
        data = mujoco.MjData(model)
        mujoco.mj_setState(model, data, starts[j], kind)
        mujoco.mj_forward(model, data)
        out = []
        for step in range(2):
            out.append((env.observe_rows(model, OneRow(data))[0],
                        env.ctrl_rows(model, OneRow(data), actions[step, j][None])[0],
                        env.signal_rows(model, OneRow(data))[0], env.terminated_rows(model, OneRow(data))[0]))
        return out, data.userdata.copy()

    batch = Batch(model, nsim=n, nthread=1)
    fields = {name: batch.bind(name) for name in sorted(fields_read(env, model) | set(ENGINE_FIELDS))}
    for rows in (np.arange(n), np.array([0, 2, 3])):
        batch.state[:] = starts
        batch.forward()
        before = fields["userdata"].copy()
        ids = slice(None) if len(rows) == n else rows  # as the engine picks: views, or copies
        got = []
        for step in range(2):
            view = _Rows(fields, ids)
            got.append((env.observe_rows(model, view), env.ctrl_rows(model, view, actions[step, rows]),
                        env.signal_rows(model, view), env.terminated_rows(model, view)))
        for row, j in enumerate(rows):
            expected, userdata = alone(j)
            for (obs, ctrl, signals, fell), (obs_j, ctrl_j, signals_j, fell_j) in zip(got, expected):
                np.testing.assert_array_equal(obs[row], obs_j)
                np.testing.assert_array_equal(ctrl[row], ctrl_j)
                np.testing.assert_array_equal(signals[row], signals_j)
                assert fell[row] == fell_j
            np.testing.assert_array_equal(fields["userdata"][j], userdata)
        left_out = np.setdiff1d(np.arange(n), rows)
        np.testing.assert_array_equal(fields["userdata"][left_out], before[left_out])
        assert not np.array_equal(fields["userdata"][rows], before[rows])  # the state did move
