"""The arm7 reach task and its damped-least-squares controller: kinematics against MuJoCo, the
2 cm success latch, gravity compensation, the damped pseudo-inverse at a singularity, the
reachability check, the controller's success rate, and the batched engine equal to the
reference engine bit for bit."""

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine
from simgate.engine.reference import ReferenceEngine
from tests.test_batched_engine import assert_identical, build
from tests.test_engine import make_case

mujoco = pytest.importorskip("mujoco")


@pytest.fixture(scope="module")
def env():
    from envs.arm7.env import Arm7Reach

    return Arm7Reach()


@pytest.fixture(scope="module")
def model(env):
    return env.build_model()


@pytest.fixture(scope="module")
def ik(host):
    return host.registries.policies.get("arm7-ik").load()


def controller(env, posture, **gains):
    from policies.arm7_ik.controller import DlsReachController, load_gains

    return DlsReachController(env.build_model(), {**load_gains(), **gains}, posture)


def at_rest(model, q, target=None):
    """MjData at configuration ``q``, at rest, the target on ``target`` (default: the fingertip)."""
    data = mujoco.MjData(model)
    data.qpos[:] = q
    mujoco.mj_forward(model, data)
    data.mocap_pos[0] = data.site_xpos[model.site("fingertip").id] if target is None else target
    mujoco.mj_forward(model, data)
    return data


def hold(env, model, data, policy, seconds: float) -> float:
    """Largest joint excursion (rad) from the start while ``policy`` (None: zero torque) acts."""
    start, worst = data.qpos.copy(), 0.0
    for _ in range(int(seconds * env.control_hz)):
        torque = np.zeros(7) if policy is None else policy.act(env.observe(model, data)[None])[0]
        env.apply_action(model, data, torque)
        for _ in range(env.frame_skip(model)):
            mujoco.mj_step(model, data)
        worst = max(worst, float(np.abs(data.qpos - start).max()))
    return worst


# -- model and observation ------------------------------------------------------------------------
def test_numpy_kinematics_equal_mujoco(model):
    from envs.arm7.kinematics import HingeChain

    chain = HingeChain.from_model(model, "fingertip")
    q = np.random.default_rng(3).uniform(chain.lower, chain.upper, (20, 7))
    tips, jacs = chain.site(q, jacobian=True)
    data, jac = mujoco.MjData(model), np.zeros((3, 7))
    for qi, tip, jac_np in zip(q, tips, jacs):
        data.qpos[:] = qi
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_jacSite(model, data, jac, None, model.site("fingertip").id)
        np.testing.assert_allclose(tip, data.site_xpos[model.site("fingertip").id], rtol=0, atol=1e-12)
        np.testing.assert_allclose(jac_np, jac, rtol=0, atol=1e-12)


def test_outstretched_reach_and_shoulder_load(model):
    data = at_rest(model, [0, np.pi / 2, 0, 0, 0, 0, 0])  # held out horizontally, in front
    np.testing.assert_allclose(data.site_xpos[model.site("fingertip").id], [1.0, 0.0, 0.34], atol=1e-12)
    # gravity load at the shoulder: 5.35 kg·m of moving mass-moment (arm7.xml) × 9.81
    assert data.qfrc_bias[1] == pytest.approx(-52.49, abs=0.01)
    assert model.actuator_ctrlrange[1, 1] == 80.0


def test_observation_is_encoders_and_target_in_base_frame(env, model):
    q = np.array([0.1, -0.3, 0.2, 1.5, -0.1, 0.9, 0.3])
    data = at_rest(model, q, target=[0.5, -0.2, 0.4])
    data.qvel[:] = np.arange(7) * 0.1
    mujoco.mj_forward(model, data)
    obs = env.observe(model, data)
    np.testing.assert_array_equal(obs, np.concatenate([q, np.arange(7) * 0.1, [0.5, -0.2, 0.4]]))
    assert sorted(i for g in env.observation_groups().values() for i in g) == list(range(17))


def test_reset_draws_a_target_in_the_zone_and_notes_its_distance(env, model):
    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(0))
    target = data.mocap_pos[0]
    assert np.all(target >= env.zone_low) and np.all(target <= env.zone_high)
    mujoco.mj_forward(model, data)
    assert data.userdata[1] == pytest.approx(env._distance(model, data), abs=1e-12)
    assert data.userdata[1] > 0.09  # the ready pose's fingertip is 9 cm short of the zone


# -- the success rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize("offset, speed, reached", [(0.019, 0.0, True), (0.021, 0.0, False), (0.019, 0.1, False)])
def test_success_needs_2_cm_and_nearly_still(env, model, offset, speed, reached):
    from envs.arm7.env import READY

    data = at_rest(model, READY)
    tip = data.site_xpos[model.site("fingertip").id].copy()
    data.mocap_pos[0] = tip + [0.0, offset, 0.0]
    data.qvel[0] = speed / np.hypot(tip[0], tip[1])  # base yaw moves the fingertip at ``speed``
    mujoco.mj_forward(model, data)
    assert env.terminated(model, data) is None  # never ends the episode
    assert env.succeeded(model, data) is reached


def test_success_latches_once_reached(env, model):
    from envs.arm7.env import READY

    data = at_rest(model, READY)
    data.time = 1.23
    env.terminated(model, data)
    data.mocap_pos[0] += [0.5, 0.0, 0.0]  # the fingertip is now far from the target
    mujoco.mj_forward(model, data)
    env.terminated(model, data)
    assert env.succeeded(model, data)
    assert data.userdata[2] == 1.23  # when it was first there


def test_progress_is_the_fraction_of_the_distance_closed(env, model):
    from envs.arm7.env import READY

    data = at_rest(model, READY)
    tip = data.site_xpos[model.site("fingertip").id].copy()
    data.userdata[1] = 0.4
    data.mocap_pos[0] = tip + [0.1, 0.0, 0.0]
    mujoco.mj_forward(model, data)
    assert env.progress(model, data) == pytest.approx(0.75, abs=1e-12)


# -- the controller ------------------------------------------------------------------------------------
def test_gravity_compensation_holds_a_loaded_pose_still(env, model):
    q = np.array([0.3, 0.6, 0.0, 1.2, 0.0, 0.8, 0.0])  # leaning out: 40 N·m at the shoulder
    assert hold(env, model, at_rest(model, q), None, 0.5) > 0.3  # without torque it falls
    # zero Cartesian command (target on the fingertip), posture = this pose: only gravity remains
    assert hold(env, model, at_rest(model, q), controller(env, q), 2.0) < 1e-9


def test_dls_stays_bounded_at_the_outstretched_singularity(env, model):
    from policies.arm7_ik.controller import load_gains

    gains = load_gains()
    ctl = controller(env, np.zeros(7), dq_max=np.inf)  # no joint speed clip: the DLS bound alone
    bound = gains["v_max"] / (2 * gains["dls_damping"])  # max of σ/(σ²+λ²) times the speed
    for q in (np.zeros(7), [0, 1e-4, 0, 1e-4, 0, 0, 0], [0, np.pi / 2, 0, 1e-3, 0, 0, 0]):
        q = np.asarray(q, dtype=float)
        ctl._model_at(q, np.zeros(7))
        jac = ctl._jac.copy()
        for direction in ([0, 0, 1], [1, 0, 0], [0.6, 0, 0.8]):
            error = 2.0 * np.asarray(direction, dtype=float)  # 2 m away: far beyond the reach
            dq = ctl.joint_velocity(q, jac, error, q)  # posture = q: the task term alone
            assert np.all(np.isfinite(dq)) and np.linalg.norm(dq) <= bound + 1e-9
    # the undamped pseudo-inverse is unbounded there: 1e-4 rad off straight up it asks for
    # ten times the bound
    ctl._model_at(np.array([0, 1e-4, 0, 1e-4, 0, 0, 0]), np.zeros(7))
    v = np.array([0.0, 0.0, gains["v_max"]])
    assert np.linalg.norm(np.linalg.pinv(ctl._jac) @ v) > 10 * bound


def test_reaching_beyond_the_workspace_stays_calm(env, model, ik):
    from envs.arm7.env import READY

    data = at_rest(model, READY, target=[1.6, 0.0, 0.34])  # 1.6 m from the shoulder
    peak = 0.0
    for _ in range(int(3.0 * env.control_hz)):
        env.apply_action(model, data, ik.act(env.observe(model, data)[None])[0])
        for _ in range(env.frame_skip(model)):
            mujoco.mj_step(model, data)
            peak = max(peak, float(np.abs(data.qvel).max()))
    assert peak < 3.0  # rad/s: the 2 rad/s command limit plus tracking overshoot
    assert env._distance(model, data) == pytest.approx(0.6, abs=0.01)  # outstretched toward it


def test_ik_reaches_nominal_targets(env, ik):
    case = make_case(env="arm7-reach", policy="arm7-ik", episodes=20, horizon=3.0, seed=7)
    rollouts = BatchedEngine(env, ik, [], 7).run(case, range(20))
    assert rollouts.column("success").mean() >= 0.95
    assert np.all(rollouts.column("progress") > 0.95)


# -- can it be done at all ---------------------------------------------------------------------------
def test_reachability_of_the_nominal_zone_is_full(env, model):
    assert env.reachability(model, np.random.default_rng(0), samples=500) == 1.0
    assert env.configuration_share(model, np.random.default_rng(0)) > 0.01


def test_reachability_of_the_far_zone_matches_the_reach_sphere():
    from envs.arm7.env import Arm7ReachFar

    far = Arm7ReachFar()
    model = far.build_model()
    share = far.reachability(model, np.random.default_rng(1), samples=1000)
    # geometry: reachable within 1.0 m (+2 cm tolerance) of the shoulder at (0, 0, 0.34)
    targets = np.random.default_rng(2).uniform(far.zone_low, far.zone_high, (200_000, 3))
    sphere = np.mean(np.linalg.norm(targets - [0, 0, 0.34], axis=1) <= 1.02)
    assert share == pytest.approx(sphere, abs=0.03)
    assert 0.3 < share < 0.7


def test_on_the_far_zone_the_controller_fails_exactly_the_unreachable_targets(host):
    from envs.arm7.env import Arm7ReachFar

    far = Arm7ReachFar()
    ik = host.registries.policies.get("arm7-ik-far").load()
    case = make_case(env=far.name, policy="arm7-ik-far", episodes=12, horizon=3.0, seed=4)
    engine = BatchedEngine(far, ik, [], 7)
    success = engine.run(case, range(12)).column("success")
    targets = [engine.ref.start_episode(case, i, 1)[2].mocap_pos[0].copy() for i in range(12)]
    reachable = far.reachable(engine.ref.nominal, np.array(targets), np.random.default_rng(0))
    assert 0 < reachable.sum() < 12  # both kinds among these episodes
    np.testing.assert_array_equal(success, reachable)


def test_reachability_names_an_impossible_zone():
    from envs.arm7.env import Arm7Reach

    class OutOfReach(Arm7Reach):
        zone_low, zone_high = (1.5, -0.2, 0.2), (1.8, 0.2, 0.6)

    env = OutOfReach()
    model = env.build_model()
    assert env.reachability(model, np.random.default_rng(0), samples=200) == 0.0
    assert env.configuration_share(model, np.random.default_rng(0)) == 0.0


def test_reachability_is_reproducible(env, model):
    from envs.arm7.env import Arm7ReachFar

    far = Arm7ReachFar()
    a = far.reachability(model, np.random.default_rng(5), samples=300)
    assert far.reachability(model, np.random.default_rng(5), samples=300) == a


# -- engines --------------------------------------------------------------------------------------------
PERTURBED = {
    "add_payload": {"body": "link7", "mass": [0.0, 1.5]},
    "add_observation_noise": {"std": {"joint_pos": 0.002, "joint_vel": 0.02, "target": 0.005}},
    "delay_actions": {"delay_ms": 10},
    "scale_motor_strength": {"scale": 0.6},
}


@pytest.mark.parametrize("env_name", ["arm7-reach", "arm7-reach-far"])
@pytest.mark.parametrize("perturbed", [False, True])
def test_batched_equals_reference(host, ik, env_name, perturbed):
    from simgate.runner import build_env

    env = build_env(host.registries.envs.get(env_name))
    make = lambda: [build(host, k, v) for k, v in PERTURBED.items()] if perturbed else []  # noqa: E731
    case = make_case(env=env_name, policy="arm7-ik", episodes=5, horizon=1.5, seed=3)
    reference = ReferenceEngine(env, ik, make(), 7).run(case, range(5))
    batched = BatchedEngine(env, ik, make(), 7, nthread=2, chunk=3).run(case, range(5))  # 2 chunks
    assert_identical(reference, batched)
    assert len({e.state_hash for e in batched.episodes}) == 5
    if env_name == "arm7-reach" and not perturbed:
        assert any(e.success for e in batched.episodes)  # the latch travelled with the rows
