"""Pushes, initial-state noise, terrain and slopes, checked against the physics they claim:
momentum from impulses, noise statistics, contact heights on the height field, acceleration
down a slope; and each one through the reference engine, bit-identical for a given seed."""

import copy
import math

import numpy as np
import pytest
from pydantic import ValidationError

from simgate.engine.reference import ReferenceEngine
from simgate.envs.info import describe
from simgate.perturbations.add_initial_state_noise import AddInitialStateNoise
from simgate.perturbations.add_terrain import AddTerrain
from simgate.perturbations.apply_pushes import ApplyPushes
from simgate.perturbations.base import EpisodeContext
from simgate.perturbations.tilt_ground import TiltGround
from simgate.scenarios.case import Case

mujoco = pytest.importorskip("mujoco")

# Two free bodies in zero gravity. The puck's geom is off its body origin, so a force applied at
# the body origin instead of the centre of mass would set it spinning.
FLOATERS = """
<mujoco>
  <option gravity="0 0 0" timestep="0.002"/>
  <worldbody>
    <body name="puck" pos="0 0 1">
      <freejoint/>
      <geom type="box" size="0.1 0.2 0.05" pos="0.1 0 0" mass="2"/>
    </body>
    <body name="other" pos="2 0 1">
      <freejoint/>
      <geom type="sphere" size="0.1" mass="1"/>
    </body>
  </worldbody>
</mujoco>
"""

# A floor plane with a free hinge-and-free-joint robot on it; the ball is in geom group 1 so
# rays cast at group 0 see only the floor.
GROUND = """
<mujoco>
  <option timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" size="3 1 0.1" friction="0.7 0.01 0.001"/>
    <body name="ball" pos="0 0 1">
      <freejoint/>
      <geom name="ball" type="sphere" size="0.02" mass="0.1" group="1"/>
    </body>
  </worldbody>
</mujoco>
"""

# A frictionless block resting on the floor: on a slope it can only slide down.
BLOCK = """
<mujoco>
  <option timestep="0.001"/>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1" condim="1"/>
    <body name="block" pos="0 0 0.05">
      <freejoint/>
      <geom type="box" size="0.05 0.05 0.05" mass="1.5" condim="1"/>
    </body>
  </worldbody>
</mujoco>
"""

# A free body and a hinge, to check that noise leaves quaternion coordinates alone.
MIXED = """
<mujoco>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint name="root"/>
      <geom type="sphere" size="0.1"/>
      <body name="arm">
        <joint name="elbow" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def context(model, seed, n_steps=100, frame_skip=10, data=None, env=None, nominal=None) -> EpisodeContext:
    data = data if data is not None else mujoco.MjData(model)
    return EpisodeContext(env, model, nominal if nominal is not None else model, data, n_steps,
                          frame_skip * model.opt.timestep, frame_skip, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def env():
    from envs.balancebot.env import BalanceBot

    return BalanceBot()


@pytest.fixture(scope="module")
def info(env):
    return describe(env)


# -- pushes ------------------------------------------------------------------------------------

def pushes(**kw) -> ApplyPushes:
    params = dict(body="puck", force=7.0, interval=1.0)
    params.update(kw)
    return ApplyPushes(ApplyPushes.Params(**params))


def test_a_push_changes_momentum_by_force_times_duration_then_stops():
    model = mujoco.MjModel.from_xml_string(FLOATERS)
    data = mujoco.MjData(model)
    puck, other = model.body("puck").id, model.body("other").id
    direction = np.array([1.0, -2.0, 2.0]) / 3.0
    p = pushes(force=7.0, duration=0.1, interval=1.0, first=0.5, direction=(1.0, -2.0, 2.0))
    schedule = p.start(context(model, 0, n_steps=100))  # 2 s: pushes at 0.5 s and 1.5 s
    np.testing.assert_array_equal(schedule.start, [250, 750])
    np.testing.assert_array_equal(schedule.stop, [300, 800])
    sentinel = np.arange(1.0, 7.0)
    data.xfrc_applied[other] = sentinel
    mass = model.body_mass[puck]
    pushed, momentum = [], []
    for k in range(1000):
        p.physics(model, data, schedule, k)
        pushed.append(bool(np.any(data.xfrc_applied[puck] != 0)))
        np.testing.assert_array_equal(data.xfrc_applied[other], sentinel)  # not ours: untouched
        mujoco.mj_step(model, data)
        momentum.append(mass * data.qvel[:3].copy())
    assert [k for k, on in enumerate(pushed) if on] == [*range(250, 300), *range(750, 800)]
    impulse = 7.0 * 0.1 * direction
    np.testing.assert_array_equal(momentum[249], 0.0)  # nothing before the scheduled time
    np.testing.assert_allclose(momentum[299], impulse, rtol=1e-6)
    np.testing.assert_allclose(momentum[749], impulse, rtol=1e-6)  # and nothing between pushes
    np.testing.assert_allclose(momentum[999], 2 * impulse, rtol=1e-6)
    np.testing.assert_array_equal(data.xfrc_applied[puck], 0.0)  # switched off after the push
    assert np.max(np.abs(data.qvel[3:6])) < 1e-12  # applied at the centre of mass: no spin


def test_a_push_is_switched_off_even_if_something_else_wrote_the_entry():
    model = mujoco.MjModel.from_xml_string(FLOATERS)
    data = mujoco.MjData(model)
    p = pushes(first=0.5)
    schedule = p.start(context(model, 0))
    data.xfrc_applied[model.body("puck").id] = [9.0, 9.0, 9.0, 0.5, 0.5, 0.5]
    p.physics(model, data, schedule, 10)
    np.testing.assert_array_equal(data.xfrc_applied[model.body("puck").id], [0, 0, 0, 0.5, 0.5, 0.5])


def schedules(p, seeds, n_steps=500):
    model = mujoco.MjModel.from_xml_string(FLOATERS)
    return [p.start(context(model, s, n_steps=n_steps)) for s in seeds]


def test_lateral_pushes_are_horizontal_with_random_headings_and_sampled_magnitudes():
    forces = np.concatenate([s.force for s in schedules(pushes(force=(5.0, 10.0), direction="lateral"), range(20))])
    assert len(forces) > 50
    np.testing.assert_array_equal(forces[:, 2], 0.0)
    magnitude = np.linalg.norm(forces, axis=1)
    assert magnitude.min() >= 5.0 and magnitude.max() <= 10.0 and magnitude.std() > 0.5
    heading = np.arctan2(forces[:, 1], forces[:, 0])
    assert np.histogram(heading, bins=4, range=(-math.pi, math.pi))[0].min() > 0  # every quadrant


def test_push_directions_any_axis_and_fixed():
    anywhere = np.concatenate([s.force for s in schedules(pushes(direction="any"), range(10))])
    np.testing.assert_allclose(np.linalg.norm(anywhere, axis=1), 7.0)
    assert (anywhere[:, 2] > 0).any() and (anywhere[:, 2] < 0).any()
    along_x = np.concatenate([s.force for s in schedules(pushes(direction="x"), range(10))])
    np.testing.assert_array_equal(along_x[:, 1:], 0.0)
    assert set(along_x[:, 0]) == {-7.0, 7.0}
    along_y = np.concatenate([s.force for s in schedules(pushes(direction="y"), range(10))])
    assert set(along_y[:, 1]) == {-7.0, 7.0} and not along_y[:, [0, 2]].any()
    fixed = schedules(pushes(direction=(0.0, 3.0, 4.0)), [0])[0].force
    np.testing.assert_allclose(fixed, np.tile([0.0, 4.2, 5.6], (len(fixed), 1)))


def test_the_schedule_is_drawn_from_the_seed_only():
    p = pushes(force=(5.0, 15.0), interval=(1.0, 2.0))
    a, b, c = schedules(p, [3, 3, 4])
    for x, y in ((a.start, b.start), (a.stop, b.stop), (a.force, b.force)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.start, c.start)


def test_without_first_the_first_push_comes_one_interval_in_and_gaps_stay_in_range():
    for s in schedules(pushes(interval=(1.0, 2.0)), range(20), n_steps=1000):  # 20 s horizon
        times = s.start * 0.002
        assert 1.0 <= times[0] <= 2.0
        gaps = np.diff(times)
        assert gaps.min() >= 1.0 - 0.002 and gaps.max() <= 2.0 + 0.002
        assert times[-1] < 20.0 and times[-1] + 2.0 >= 20.0 - 0.002  # the whole horizon is covered


def test_no_push_starts_after_until():
    for s in schedules(pushes(interval=(1.0, 2.0), until=8.0), range(20), n_steps=1000):  # 20 s horizon
        times = s.start * 0.002
        assert len(times) >= 3 and times[-1] < 8.0 and times[-1] + 2.0 >= 8.0 - 0.002


# -- initial-state noise -----------------------------------------------------------------------

def test_initial_state_noise_has_the_configured_std_on_the_named_joints(env):
    model = env.build_model()
    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(0))
    qpos0, qvel0 = data.qpos.copy(), data.qvel.copy()
    p = AddInitialStateNoise(AddInitialStateNoise.Params(qpos_std=0.02, qvel_std=0.3, joints=["pitch"]))
    dq, dv = [], []
    for seed in range(4000):
        data.qpos[:], data.qvel[:] = qpos0, qvel0
        p.start(context(model, seed, data=data, env=env))
        dq.append(data.qpos - qpos0)
        dv.append(data.qvel - qvel0)
    dq, dv = np.array(dq), np.array(dv)
    pitch_q, pitch_v = model.joint("pitch").qposadr[0], model.joint("pitch").dofadr[0]
    # 4000 draws: the sample std is within 5% of the truth at more than 4 sigma
    assert dq[:, pitch_q].std() == pytest.approx(0.02, rel=0.05)
    assert dv[:, pitch_v].std() == pytest.approx(0.3, rel=0.05)
    assert abs(dq[:, pitch_q].mean()) < 0.002
    np.testing.assert_array_equal(np.delete(dq, pitch_q, axis=1), 0.0)
    np.testing.assert_array_equal(np.delete(dv, pitch_v, axis=1), 0.0)


def test_initial_state_noise_defaults_to_every_hinge_and_slide(env):
    model = env.build_model()
    data = mujoco.MjData(model)
    qpos_noise, qvel_noise = AddInitialStateNoise(AddInitialStateNoise.Params(qpos_std=0.01, qvel_std=0.01)).start(
        context(model, 1, data=data, env=env))
    assert len(qpos_noise) == len(qvel_noise) == 4  # x, z, pitch, wheel
    assert np.all(data.qpos != 0) and np.all(data.qvel != 0)


def test_initial_state_noise_skips_free_joints_even_when_named():
    model = mujoco.MjModel.from_xml_string(MIXED)
    data = mujoco.MjData(model)
    qpos0, qvel0 = data.qpos.copy(), data.qvel.copy()
    for joints in (None, ["root", "elbow"]):
        data.qpos[:], data.qvel[:] = qpos0, qvel0
        AddInitialStateNoise(AddInitialStateNoise.Params(qpos_std=0.1, qvel_std=0.1, joints=joints)).start(
            context(model, 2, data=data))
        np.testing.assert_array_equal(data.qpos[:7], qpos0[:7])  # position and unit quaternion
        np.testing.assert_array_equal(data.qvel[:6], qvel0[:6])
        assert data.qpos[7] != 0 and data.qvel[6] != 0  # the elbow


# -- terrain -----------------------------------------------------------------------------------

class GroundEnv:
    def build_spec(self):
        return mujoco.MjSpec.from_string(GROUND)


def terrain(amplitude, seed=0, **kw):
    """(model, data, Terrain, perturbation) for one episode on the ground model."""
    p = AddTerrain(AddTerrain.Params(amplitude=amplitude, size=(3.0, 1.0), **kw))
    spec = GroundEnv().build_spec()
    p.edit_spec(spec)
    nominal = spec.compile()
    model = copy.copy(nominal)
    data = mujoco.MjData(model)
    return model, data, p.start(context(model, seed, data=data, nominal=nominal)), p


def ground_height(model, data, x, y) -> float:
    """Where a ray straight down hits the floor (group 0 only: the ball is in group 1)."""
    geom = np.zeros(1, dtype=np.int32)
    groups = np.array([1, 0, 0, 0, 0, 0], dtype=np.uint8)
    dist = mujoco.mj_ray(model, data, np.array([x, y, 1.0]), np.array([0.0, 0.0, -1.0]), groups, 1, -1, geom)
    assert geom[0] == model.geom("floor").id
    return 1.0 - dist


def ball_contacts(model, data, x, y, z) -> list[float]:
    """Contact heights of the ball placed (not dropped) at (x, y, z)."""
    data.qpos[:3] = x, y, z
    data.qpos[3:7] = 1, 0, 0, 0
    mujoco.mj_forward(model, data)
    return [data.contact.pos[i][2] for i in range(data.ncon)]


def test_the_height_field_is_where_the_terrain_says_with_its_peak_at_the_amplitude():
    model, data, t, _ = terrain(0.03, seed=4)
    mujoco.mj_forward(model, data)
    assert t.heights.max() == pytest.approx(0.03, abs=1e-12) and t.heights.min() == 0.0
    rows, cols = np.meshgrid(np.arange(0, len(t.y), 7), np.arange(0, len(t.x), 11), indexing="ij")
    for r, c in zip(rows.ravel(), cols.ravel()):  # a transposed or flipped layout would not match
        assert ground_height(model, data, t.x[c], t.y[r]) == pytest.approx(t.heights[r, c], abs=1e-9)
    r, c = np.unravel_index(np.argmax(t.heights), t.heights.shape)
    assert ground_height(model, data, t.x[c], t.y[r]) == pytest.approx(0.03, abs=1e-9)


def test_the_terrain_raises_contacts_up_to_the_amplitude():
    amplitude, radius, sink = 0.02, 0.02, 1e-3
    model, data, t, _ = terrain(amplitude, seed=1)
    r, c = np.unravel_index(np.argmax(t.heights), t.heights.shape)
    peak = ball_contacts(model, data, t.x[c], t.y[r], amplitude + radius - sink)
    assert peak and max(peak) == pytest.approx(amplitude, abs=sink)
    start = ball_contacts(model, data, 0.0, 0.0, radius - sink)
    assert start and max(start) == pytest.approx(0.0, abs=sink)
    plane = mujoco.MjModel.from_xml_string(GROUND)  # the same ball over the plain floor: no contact
    assert ball_contacts(plane, mujoco.MjData(plane), t.x[c], t.y[r], amplitude + radius - sink) == []


def test_a_dropped_ball_comes_to_rest_on_the_terrain_not_on_the_old_floor():
    amplitude, radius = 0.02, 0.02
    model, data, t, _ = terrain(amplitude, seed=1)
    r, c = np.unravel_index(np.argmax(t.heights), t.heights.shape)
    data.qpos[:3] = t.x[c], t.y[r], amplitude + radius + 0.01
    lowest = math.inf
    for _ in range(100):  # 0.2 s: it lands and settles before it can roll off the summit
        mujoco.mj_step(model, data)
        lowest = min(lowest, data.qpos[2] - radius)
    assert data.qpos[2] - radius == pytest.approx(amplitude, abs=1e-3)
    assert lowest > amplitude / 2  # the landing sinks into the soft contact, nowhere near the old floor


def test_the_start_zone_is_flat_and_the_terrain_is_not():
    model, data, t, _ = terrain((0.01, 0.04), seed=2)
    mujoco.mj_forward(model, data)
    assert 0.01 <= t.amplitude <= 0.04 and t.heights.max() == pytest.approx(t.amplitude)
    zone = np.abs(t.x) <= 0.3
    np.testing.assert_array_equal(t.heights[:, zone], 0.0)
    for x in (-0.3, -0.15, 0.0, 0.2, 0.3):
        for y in (-0.9, 0.0, 0.5):
            assert ground_height(model, data, x, y) == pytest.approx(0.0, abs=1e-12)
    away = t.heights[:, np.abs(t.x) > 0.8]
    assert away.std() > 0.1 * t.amplitude  # uneven everywhere beyond the fade-in


def test_zero_amplitude_is_flat_ground():
    model, data, t, _ = terrain(0.0, seed=3)
    mujoco.mj_forward(model, data)
    assert not t.heights.any()
    for x, y in ((-2.5, 0.7), (1.3, -0.2), (2.9, 0.9)):
        assert ground_height(model, data, x, y) == pytest.approx(0.0, abs=1e-12)
        assert max(ball_contacts(model, data, x, y, 0.02 - 1e-3)) == pytest.approx(0.0, abs=1e-3)


def test_each_episode_draws_its_own_landscape_from_its_seed():
    a, b, c = (terrain(0.02, seed=s)[2].heights for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_floor_keeps_its_name_and_friction_as_a_height_field():
    model, *_ = terrain(0.02)
    plane = mujoco.MjModel.from_xml_string(GROUND)
    floor = model.geom("floor")
    assert floor.type[0] == mujoco.mjtGeom.mjGEOM_HFIELD
    np.testing.assert_array_equal(floor.friction, plane.geom("floor").friction)


def test_terrain_refuses_a_floor_that_is_not_a_plane():
    spec = mujoco.MjSpec.from_string(GROUND)
    with pytest.raises(ValueError, match="add_terrain replaces a plane, and floor 'ball' is a sphere"):
        AddTerrain(AddTerrain.Params(floor="ball", amplitude=0.01)).edit_spec(spec)


# -- slope -------------------------------------------------------------------------------------

@pytest.mark.parametrize("angle,direction,downhill", [
    (10.0, "x", (-1.0, 0.0)), (-7.0, "x", (1.0, 0.0)), (20.0, "y", (0.0, -1.0)),
    (15.0, (1.0, 1.0), (-math.sqrt(0.5), -math.sqrt(0.5))),
])
def test_a_frictionless_block_slides_down_the_slope_at_g_sin_theta(angle, direction, downhill):
    nominal = mujoco.MjModel.from_xml_string(BLOCK)
    model = copy.copy(nominal)
    p = TiltGround(TiltGround.Params(angle=angle, direction=direction))
    assert p.start(context(model, 0, nominal=nominal)) == angle
    data = mujoco.MjData(model)
    g, theta = 9.81, math.radians(abs(angle))
    for _ in range(500):  # 0.5 s
        mujoco.mj_step(model, data)
    expected = g * math.sin(theta) * 0.5 * np.array(downhill)
    np.testing.assert_allclose(data.qvel[:2], expected, rtol=1e-6, atol=1e-9)
    normal = sum(_normal_force(model, data, i) for i in range(data.ncon))
    assert normal == pytest.approx(1.5 * g * math.cos(theta), rel=1e-3)  # pressed into the slope by g·cos θ
    assert abs(data.qvel[2]) < 1e-4  # and it stays on it


def _normal_force(model, data, i) -> float:
    force = np.zeros(6)
    mujoco.mj_contactForce(model, data, i, force)
    return force[0]


def test_a_sampled_slope_gives_each_episode_its_own_angle_with_the_same_gravity_magnitude():
    nominal = mujoco.MjModel.from_xml_string(BLOCK)
    angles = []
    for seed in range(5):
        model = copy.copy(nominal)
        angles.append(TiltGround(TiltGround.Params(angle=(2.0, 5.0))).start(context(model, seed, nominal=nominal)))
        assert np.linalg.norm(model.opt.gravity) == pytest.approx(9.81)
        assert model.opt.gravity[0] == pytest.approx(-9.81 * math.sin(math.radians(angles[-1])))
    assert all(2.0 <= a <= 5.0 for a in angles) and len(set(angles)) == 5
    np.testing.assert_array_equal(nominal.opt.gravity, [0, 0, -9.81])  # the nominal model is untouched


def test_the_slope_tilts_the_gravity_earlier_model_perturbations_left():
    nominal = mujoco.MjModel.from_xml_string(BLOCK)
    model = copy.copy(nominal)
    model.opt.gravity[:] = [0.0, 0.0, -1.62]  # as a set_gravity listed before it would leave it
    TiltGround(TiltGround.Params(angle=30.0)).start(context(model, 0, nominal=nominal))
    np.testing.assert_allclose(model.opt.gravity, [-0.81, 0.0, -1.62 * math.cos(math.radians(30.0))])


# -- bad parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("cls,params,text", [
    (ApplyPushes, dict(body="chassis", force=-5.0, interval=1.0), "force should be > 0 N, received -5.0"),
    (ApplyPushes, dict(body="chassis", force=(5.0, 0.0), interval=1.0), "force should be > 0 N, received [5.0, 0.0]"),
    (ApplyPushes, dict(body="chassis", force=5.0, interval=(2.0, 1.0)),
     "a range should be [low, high] with low ≤ high, received [2.0, 1.0]"),
    (ApplyPushes, dict(body="chassis", force=5.0, interval=0.0), "interval should be > 0 s"),
    (ApplyPushes, dict(body="chassis", force=5.0, interval=1.0, duration=0.0), "duration should be > 0 s"),
    (ApplyPushes, dict(body="chassis", force=5.0, interval=1.0, first=-1.0), "first should be ≥ 0"),
    (ApplyPushes, dict(body="chassis", force=5.0, interval=1.0, direction=(0, 0, 0)), "non-zero [x, y, z]"),
    (ApplyPushes, dict(body="chassis", force=5.0, interval=1.0, direction="z"),
     "direction should be one of 'lateral', 'any', 'x', 'y' or an [x, y, z] vector, received 'z'"),
    (ApplyPushes, dict(force=5.0, interval=1.0), "body"),
    (TiltGround, dict(angle=45.0), "angle should be between -45 and 45 degrees (exclusive), received 45.0"),
    (TiltGround, dict(angle=(10.0, 50.0)), "angle should be between -45 and 45 degrees"),
    (TiltGround, dict(angle=-60.0), "received -60.0"),
    (TiltGround, dict(angle=(5.0, 2.0)), "angle should be [min, max] with min ≤ max"),
    (TiltGround, dict(angle=5.0, direction=(0.0, 0.0)), "non-zero [x, y] vector"),
    (TiltGround, dict(angle=5.0, direction="z"), "direction should be 'x', 'y' or an [x, y] vector in the ground"),
    (AddInitialStateNoise, dict(qpos_std=-0.1), "qpos_std should be ≥ 0.0, received -0.1"),
    (AddTerrain, dict(amplitude=-0.01), "amplitude should be ≥ 0.0, received -0.01"),
    (AddTerrain, dict(amplitude=0.01, roughness=0.0), "roughness should be > 0 m, received 0.0"),
    (AddTerrain, dict(amplitude=0.01, size=(10.0, -1.0)), "size should be [half x, half y] with both > 0 m"),
])
def test_bad_params_are_rejected_with_what_was_expected(cls, params, text):
    with pytest.raises(ValidationError) as exc:
        cls.Params(**params)
    assert text in str(exc.value)


@pytest.mark.parametrize("perturbation,expected", [
    (ApplyPushes(ApplyPushes.Params(body="chasis", force=5.0, interval=1.0)),
     [("body", "no body named 'chasis' in this model; did you mean 'chassis'?")]),
    (ApplyPushes(ApplyPushes.Params(body="world", force=5.0, interval=1.0)),
     [("body", "the world body is fixed and cannot be pushed; name a body of the robot")]),
    (AddInitialStateNoise(AddInitialStateNoise.Params(qpos_std=0.1, joints=["pitch", "pich"])),
     [("joints", "no joint named 'pich' in this model; did you mean 'pitch'?")]),
    (AddTerrain(AddTerrain.Params(floor="flor", amplitude=0.01)),
     [("floor", "no geom named 'flor' in this model; did you mean 'floor'?")]),
    (ApplyPushes(ApplyPushes.Params(body="chassis", force=5.0, interval=1.0)), []),
    (AddTerrain(AddTerrain.Params(amplitude=0.01)), []),
])
def test_names_are_checked_against_the_model_before_any_episode(info, perturbation, expected):
    assert perturbation.check(info) == expected


# -- through the engine on the balancebot -------------------------------------------------------

def make_case(**kw) -> Case:
    base = dict(id="t", scenario="world", source="t.yaml", env="balancebot", policy="balancebot-lqr", point={},
                perturbations=(), episodes=2, horizon=2.0, seed=11, alpha=0.05, determinism_episodes=2,
                thresholds={"min_success_rate": 0.5})
    base.update(kw)
    return Case(**base)


ENGINE_RUNS = {
    "pushes": lambda: ApplyPushes(ApplyPushes.Params(body="chassis", force=(5.0, 10.0), interval=(0.4, 0.8),
                                                     direction="x")),
    "state_noise": lambda: AddInitialStateNoise(AddInitialStateNoise.Params(qpos_std=0.03, qvel_std=0.1,
                                                                            joints=["pitch"])),
    "terrain": lambda: AddTerrain(AddTerrain.Params(amplitude=0.01, roughness=0.3)),
    "tilt": lambda: TiltGround(TiltGround.Params(angle=(2.0, 4.0))),
}


@pytest.fixture(scope="module")
def lqr(host):
    return host.registries.policies.get("balancebot-lqr").load()


@pytest.fixture(scope="module")
def nominal_run(env, lqr):
    return ReferenceEngine(env, lqr, [], 1).run(make_case(), range(2))


@pytest.mark.parametrize("name", sorted(ENGINE_RUNS))
def test_each_runs_bit_identically_for_a_seed_and_changes_the_episode(env, lqr, nominal_run, name):
    a = ReferenceEngine(env, lqr, [ENGINE_RUNS[name]()], 1).run(make_case(), range(2))
    b = ReferenceEngine(env, lqr, [ENGINE_RUNS[name]()], 1).run(make_case(), range(2))
    for x, y, n in zip(a.episodes, b.episodes, nominal_run.episodes):
        assert len(x.step_hashes) == 100
        np.testing.assert_array_equal(x.step_hashes, y.step_hashes)
        np.testing.assert_array_equal(x.actions, y.actions)
        assert not np.array_equal(x.step_hashes, n.step_hashes)  # the perturbation did something
