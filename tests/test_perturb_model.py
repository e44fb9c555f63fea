"""Model-stage perturbations measured through the physics: each test fails if the perturbation
does nothing, acts relative to the wrong model, or changes the wrong thing."""

import copy

import mujoco
import numpy as np
import pytest
from pydantic import ValidationError

from simgate.engine.reference import ReferenceEngine
from simgate.envs.info import EnvInfo, describe
from simgate.perturbations.add_payload import AddPayload
from simgate.perturbations.base import EpisodeContext
from simgate.perturbations.scale_body_mass import ScaleBodyMass
from simgate.perturbations.scale_joint_damping import ScaleJointDamping
from simgate.perturbations.scale_motor_strength import ScaleMotorStrength
from simgate.perturbations.set_gravity import SetGravity
from simgate.scenarios.case import Case

# a 2 kg box resting on a floor, and a 0.5 kg ball high above it, both free
BOXES = """
<mujoco>
  <option timestep="0.001"/>
  <worldbody>
    <geom name="floor" type="plane" size="5 5 0.1"/>
    <body name="box" pos="0 0 0.1">
      <freejoint name="box"/>
      <geom type="box" size="0.1 0.1 0.1" mass="2"/>
    </body>
    <body name="ball" pos="2 0 3">
      <freejoint name="ball"/>
      <geom type="sphere" size="0.05" mass="0.5"/>
    </body>
    <body name="marker" pos="0 2 0"/>
  </worldbody>
</mujoco>
"""

# a 1 kg rod swinging about a hinge, driven by an unlimited-force motor (gear 2, ctrl ±1) and a
# force-limited one; a separate free puck, floating still, gives a joint with six dofs
PENDULUM = """
<mujoco>
  <option timestep="0.001" integrator="RK4">
    <flag energy="enable" contact="disable"/>
  </option>
  <worldbody>
    <body name="rod" pos="0 0 2">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05" armature="0.01" frictionloss="0.002"/>
      <geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.02" mass="1"/>
    </body>
    <body name="puck" pos="3 0 0" gravcomp="1">
      <joint name="puck" type="free" damping="0.1" armature="0.2" frictionloss="0.03"/>
      <geom type="cylinder" size="0.1 0.02" mass="0.3"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="motor" joint="hinge" gear="2" ctrlrange="-1 1"/>
    <motor name="limited" joint="hinge" gear="1" ctrlrange="-3 3" forcerange="-2 1.5"/>
    <motor name="unlimited" joint="hinge" gear="1"/>
  </actuator>
  <sensor>
    <actuatorfrc name="motor_force" actuator="motor"/>
  </sensor>
</mujoco>
"""

G = 9.81


def model(xml: str):
    return mujoco.MjModel.from_xml_string(xml)


@pytest.fixture(scope="module")
def env():
    from envs.balancebot.env import BalanceBot

    return BalanceBot()


@pytest.fixture(scope="module")
def bot(env):
    return env.build_model()


@pytest.fixture(scope="module")
def lqr(host):
    return host.registries.policies.get("balancebot-lqr").load()


def start(perturbation, nominal, seed=0, target=None):
    """One episode's model as the engine makes it: a fresh copy of the nominal, the
    perturbation, then the derived constants. ``target`` reuses an already-edited copy."""
    target = copy.copy(nominal) if target is None else target
    data = mujoco.MjData(target)
    ctx = EpisodeContext(None, target, nominal, data, 100, 0.02, 10, np.random.default_rng(seed))
    state = perturbation.start(ctx)
    mujoco.mj_setConst(target, data)
    return target, mujoco.MjData(target), state


def info_of(m) -> EnvInfo:
    def names(kind, count):
        return tuple(mujoco.mj_id2name(m, kind, i) or "" for i in range(count))

    return EnvInfo(name="t", timestep=m.opt.timestep, control_hz=50.0, frame_skip=1,
                   bodies=names(mujoco.mjtObj.mjOBJ_BODY, m.nbody), geoms=names(mujoco.mjtObj.mjOBJ_GEOM, m.ngeom),
                   joints=names(mujoco.mjtObj.mjOBJ_JOINT, m.njnt), actuators=names(mujoco.mjtObj.mjOBJ_ACTUATOR, m.nu),
                   observation_size=0, action_size=m.nu, observation_groups={})


def floor_force(m, d, body="box") -> float:
    """Total normal force the floor pushes ``body`` up with, summed over its contacts."""
    total, wrench, b = 0.0, np.zeros(6), m.body(body).id
    for i in range(d.ncon):
        if b not in m.geom_bodyid[[d.contact.geom1[i], d.contact.geom2[i]]]:
            continue
        mujoco.mj_contactForce(m, d, i, wrench)
        total += wrench[0]  # contact frame: normal first
    return total


def settle(m, d, seconds=1.0):
    while d.time < seconds:
        mujoco.mj_step(m, d)


# -- add_payload ------------------------------------------------------------------------------
@pytest.mark.parametrize("params,added", [({"mass": 0.4}, 0.4), ({"fraction": 0.3}, 0.3 * 1.75)])
def test_add_payload_adds_exactly_the_amount_at_the_body(bot, params, added):
    p = AddPayload(AddPayload.Params(body="chassis", **params))
    m, _, payload = start(p, bot)
    chassis = bot.body("chassis").id
    assert payload == pytest.approx(added, rel=1e-12)
    assert m.body_mass.sum() == pytest.approx(bot.body_mass.sum() + added, rel=1e-12)
    assert m.body_subtreemass[0] == pytest.approx(bot.body_subtreemass[0] + added, rel=1e-12)
    ratio = (1.5 + added) / 1.5
    np.testing.assert_allclose(m.body_inertia[chassis], bot.body_inertia[chassis] * ratio, rtol=1e-12)
    np.testing.assert_array_equal(m.body_ipos, bot.body_ipos)  # at the centre of mass: it does not move
    wheel = bot.body("wheel").id
    assert m.body_mass[wheel] == bot.body_mass[wheel] and np.array_equal(m.body_inertia[wheel], bot.body_inertia[wheel])


def test_add_payload_is_carried_as_weight_on_the_floor():
    nominal = model(BOXES)
    m, d, _ = start(AddPayload(AddPayload.Params(body="box", mass=1.5)), nominal)
    settle(m, d)
    assert floor_force(m, d) == pytest.approx((2.0 + 1.5) * G, rel=1e-3)


def test_model_perturbations_compose_in_file_order(bot):
    payload = AddPayload(AddPayload.Params(body="chassis", mass=0.4))
    heavier = ScaleBodyMass(ScaleBodyMass.Params(scale=2.0))
    m, _, _ = start(heavier, bot)
    both, _, _ = start(payload, bot, target=m)  # a heavier robot, then a payload on it
    assert both.body_mass.sum() == pytest.approx(2 * bot.body_mass.sum() + 0.4, rel=1e-12)


def test_add_payload_names_are_checked_with_a_suggestion(env):
    info = describe(env)
    [(param, message)] = AddPayload(AddPayload.Params(body="chasis", mass=1)).check(info)
    assert param == "body" and "no body named 'chasis'" in message and "did you mean 'chassis'" in message
    assert AddPayload(AddPayload.Params(body="chassis", mass=1)).check(info) == []
    [(_, message)] = AddPayload(AddPayload.Params(body="world", mass=1)).check(info)
    assert "world body is fixed" in message


def test_add_payload_on_a_massless_body_is_refused():
    with pytest.raises(ValueError, match="body 'marker' has no mass"):
        start(AddPayload(AddPayload.Params(body="marker", mass=1)), model(BOXES))


@pytest.mark.parametrize("params,text", [({}, "received neither"), ({"mass": 1, "fraction": 0.1}, "received both")])
def test_add_payload_needs_exactly_one_amount(params, text):
    with pytest.raises(ValidationError, match=f"exactly one of mass .kg. or fraction.*{text}"):
        AddPayload.Params(body="chassis", **params)


# -- scale_body_mass --------------------------------------------------------------------------
def test_scale_body_mass_scales_the_weight_on_the_floor():
    nominal = model(BOXES)
    m, d, scale = start(ScaleBodyMass(ScaleBodyMass.Params(scale=1.3, bodies=["box"])), nominal)
    settle(m, d)
    assert scale == 1.3
    assert floor_force(m, d) == pytest.approx(2.0 * 1.3 * G, rel=1e-3)
    ball = nominal.body("ball").id
    assert m.body_mass[ball] == 0.5  # not listed: untouched


def test_scale_body_mass_scales_every_robot_body_and_its_inertia(bot):
    m, _, _ = start(ScaleBodyMass(ScaleBodyMass.Params(scale=0.7)), bot)
    np.testing.assert_allclose(m.body_mass, bot.body_mass * 0.7, rtol=1e-15)
    np.testing.assert_allclose(m.body_inertia, bot.body_inertia * 0.7, rtol=1e-15)
    assert m.body_subtreemass[0] == pytest.approx(1.75 * 0.7, rel=1e-12)


def test_scale_body_mass_checks_names(env):
    [(param, message)] = ScaleBodyMass(ScaleBodyMass.Params(scale=1, bodies=["wheel", "weel"])).check(describe(env))
    assert param == "bodies" and "did you mean 'wheel'" in message


# -- scale_motor_strength ---------------------------------------------------------------------
def drive(m, ctrl: dict, seconds=0.5):
    """Measured actuator forces (N·m before the gear) while holding ``ctrl`` for ``seconds``."""
    d = mujoco.MjData(m)
    forces, sensed = [], []
    while d.time < seconds:
        for name, value in ctrl.items():
            d.actuator(name).ctrl = value
        mujoco.mj_step(m, d)
        forces.append(d.actuator_force.copy())
        sensed.append(d.sensor("motor_force").data[0] if m.nsensor else np.nan)
    return np.array(forces), np.array(sensed)


def test_force_limit_caps_the_measured_motor_force_at_the_scaled_maximum():
    nominal = model(PENDULUM)
    full, _ = drive(nominal, {"motor": 1.0})
    assert np.abs(full[:, 0]).max() == pytest.approx(1.0)  # nominal maximum: |gain| × max|ctrl|
    m, _, _ = start(ScaleMotorStrength(ScaleMotorStrength.Params(scale=0.8, actuators=["motor"])), nominal)
    forces, sensed = drive(m, {"motor": 1.0})
    assert np.abs(forces[:, 0]).max() <= 0.8 + 1e-12 and np.abs(sensed).max() <= 0.8 + 1e-12
    assert np.abs(forces[:, 0]).max() == pytest.approx(0.8, abs=1e-12)  # and reaches it
    weak, _ = drive(m, {"motor": 0.5})
    np.testing.assert_allclose(weak[:, 0], 0.5)  # below the cap, the command is unchanged


def test_force_limit_on_balancebot_caps_the_wheel_torque(bot):
    m, _, _ = start(ScaleMotorStrength(ScaleMotorStrength.Params(scale=0.8)), bot)
    d = mujoco.MjData(m)
    for _ in range(200):
        d.ctrl[0] = 1.0
        mujoco.mj_step(m, d)
        assert abs(d.sensor("wheel_torque").data[0]) <= 0.8 + 1e-12
    assert d.sensor("wheel_torque").data[0] == pytest.approx(0.8, abs=1e-12)
    wheel = bot.joint("wheel").dofadr[0]
    assert d.qfrc_actuator[wheel] == pytest.approx(0.8 * 1.5, abs=1e-12)  # at the joint: × gear


def test_force_limit_scales_an_existing_force_range():
    nominal = model(PENDULUM)
    m, _, _ = start(ScaleMotorStrength(ScaleMotorStrength.Params(scale=0.8, actuators=["limited"])), nominal)
    np.testing.assert_allclose(m.actuator("limited").forcerange, [-1.6, 1.2], rtol=1e-15)
    up, _ = drive(m, {"limited": 3.0}, 0.05)
    down, _ = drive(m, {"limited": -3.0}, 0.05)
    assert up[:, 1].max() == pytest.approx(1.2) and down[:, 1].min() == pytest.approx(-1.6)


def test_force_limit_refuses_an_actuator_without_a_maximum():
    p = ScaleMotorStrength(ScaleMotorStrength.Params(scale=0.8, actuators=["unlimited"]))
    with pytest.raises(ValueError, match="actuator 'unlimited' has neither a forcerange nor a ctrlrange"):
        start(p, model(PENDULUM))


def test_gear_mode_scales_the_joint_torque_per_unit_command():
    nominal = model(PENDULUM)
    m, d, _ = start(ScaleMotorStrength(ScaleMotorStrength.Params(scale=0.5, actuators=["motor"], mode="gear")), nominal)
    d.actuator("motor").ctrl = 0.7
    mujoco.mj_forward(m, d)
    hinge = nominal.joint("hinge").dofadr[0]
    assert d.qfrc_actuator[hinge] / 0.7 == pytest.approx(0.5 * 2.0, rel=1e-12)
    assert d.actuator("motor").force[0] == pytest.approx(0.7)  # the force itself is unchanged
    assert not m.actuator_forcelimited[0]


def test_scale_motor_strength_checks_names_and_mode(env):
    [(param, message)] = ScaleMotorStrength(ScaleMotorStrength.Params(scale=1, actuators=["wheel_motr"])).check(describe(env))
    assert param == "actuators" and "did you mean 'wheel_motor'" in message
    with pytest.raises(ValidationError, match="'force_limit' or 'gear'"):
        ScaleMotorStrength.Params(scale=1, mode="torque")


# -- scale_joint_damping ----------------------------------------------------------------------
def energy_lost(m, seconds=0.5) -> float:
    """Mechanical energy the rod loses swinging freely from horizontal."""
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    before = d.energy.sum()
    settle(m, d, seconds)
    return before - d.energy.sum()


def test_more_damping_makes_a_free_swing_lose_energy_faster():
    nominal = model(PENDULUM)
    losses = [energy_lost(start(ScaleJointDamping(ScaleJointDamping.Params(damping=s, joints=["hinge"])), nominal)[0])
              for s in (0.0, 1.0, 2.0)]
    assert 0 < losses[0] < 0.01 < losses[1]  # without damping, only the small frictionloss takes energy
    assert losses[2] > 1.5 * losses[1]  # not 2×: the slower swing has less speed to damp


def test_scale_joint_damping_multiplies_the_nominal_values_of_the_joints_dofs():
    nominal = model(PENDULUM)
    p = ScaleJointDamping(ScaleJointDamping.Params(damping=3.0, armature=0.5, frictionloss=2.0, joints=["puck"]))
    m, _, scales = start(p, nominal)
    assert scales == [3.0, 0.5, 2.0]
    puck = nominal.dof_jntid == nominal.joint("puck").id
    assert puck.sum() == 6
    for field, scale in (("dof_damping", 3.0), ("dof_armature", 0.5), ("dof_frictionloss", 2.0)):
        np.testing.assert_array_equal(getattr(m, field)[puck], getattr(nominal, field)[puck] * scale)
        np.testing.assert_array_equal(getattr(m, field)[~puck], getattr(nominal, field)[~puck])  # the hinge


def test_scale_joint_damping_checks_names():
    [(param, message)] = ScaleJointDamping(ScaleJointDamping.Params(joints=["hinj"])).check(info_of(model(PENDULUM)))
    assert param == "joints" and "did you mean 'hinge'" in message


# -- set_gravity ------------------------------------------------------------------------------
@pytest.mark.parametrize("params,expected", [({"scale": 1.62 / 9.81}, [0, 0, -1.62]), ({"vector": [1, 0, -3]}, [1, 0, -3])])
def test_a_free_falling_body_accelerates_at_the_new_gravity(params, expected):
    nominal = model(BOXES)
    m, d, _ = start(SetGravity(SetGravity.Params(**params)), nominal)
    mujoco.mj_forward(m, d)
    ball = nominal.joint("ball").dofadr[0]
    np.testing.assert_allclose(d.qacc[ball:ball + 3], expected, atol=1e-9)
    np.testing.assert_array_equal(nominal.opt.gravity, [0, 0, -G])  # the nominal is left alone


# -- sampled ranges ---------------------------------------------------------------------------
# (kind, params with one range, the range in the units start() returns, the edited model field)
RANGED = [
    (AddPayload, {"body": "box", "mass": [0.1, 0.9]}, (0.1, 0.9), lambda m: m.body_mass),
    (AddPayload, {"body": "box", "fraction": [0.1, 0.5]}, (0.25, 1.25), lambda m: m.body_mass),  # of 2.5 kg
    (ScaleBodyMass, {"scale": [0.5, 1.5]}, (0.5, 1.5), lambda m: m.body_mass),
    (ScaleMotorStrength, {"scale": [0.3, 0.9], "actuators": ["motor"]}, (0.3, 0.9), lambda m: m.actuator_forcerange),
    (ScaleMotorStrength, {"scale": [0.3, 0.9], "mode": "gear"}, (0.3, 0.9), lambda m: m.actuator_gear),
    (ScaleJointDamping, {"frictionloss": [0.5, 2]}, (0.5, 2), lambda m: m.dof_frictionloss),
    (SetGravity, {"scale": [0.1, 1.5]}, (-1.5 * G, -0.1 * G), lambda m: m.opt.gravity),
]


@pytest.mark.parametrize("cls,params,bounds,field", RANGED, ids=lambda v: getattr(v, "kind", None))
def test_ranges_are_sampled_per_episode_and_reproducible(cls, params, bounds, field):
    nominal = model(PENDULUM if cls in (ScaleMotorStrength, ScaleJointDamping) else BOXES)
    p = cls(cls.Params.model_validate(params))
    values = [np.ravel(start(p, nominal, seed)[2])[-1] for seed in range(20)]
    assert len(set(values)) == 20  # a new value each episode
    assert all(bounds[0] <= v <= bounds[1] for v in values)
    for seed in (3, 11):
        a, b = start(p, nominal, seed)[0], start(p, nominal, seed)[0]
        np.testing.assert_array_equal(field(a), field(b))
        twice = start(p, nominal, seed, target=b)[0]  # applied again to the same copy: compounds
        assert not np.array_equal(field(twice), field(a))
    assert not np.array_equal(field(start(p, nominal, 3)[0]), field(start(p, nominal, 11)[0]))


BAD = [
    (AddPayload, {"body": "b", "mass": [0.5, 0.1]}, "a range should be [low, high] with low ≤ high, received [0.5, 0.1]"),
    (AddPayload, {"body": "b", "fraction": -0.2}, "fraction should be ≥ 0.0, received -0.2"),
    (ScaleBodyMass, {"scale": [1.5, 0.5]}, "a range should be [low, high] with low ≤ high, received [1.5, 0.5]"),
    (ScaleBodyMass, {"scale": 0}, "scale should be > 0, received 0"),
    (ScaleMotorStrength, {"scale": [-0.2, 0.8]}, "scale should be > 0, received [-0.2, 0.8]"),
    (ScaleJointDamping, {"damping": -1}, "damping should be ≥ 0.0, received -1"),
    (ScaleJointDamping, {"armature": [2, 1]}, "a range should be [low, high] with low ≤ high, received [2.0, 1.0]"),
    (SetGravity, {"scale": -1}, "scale should be > 0, received -1"),
    (SetGravity, {"scale": 0.5, "vector": [0, 0, -1]}, "set_gravity should give scale or vector, not both"),
]


@pytest.mark.parametrize("cls,params,text", BAD, ids=lambda v: getattr(v, "kind", None))
def test_bad_params_are_refused_with_what_was_expected(cls, params, text):
    with pytest.raises(ValidationError) as caught:
        cls.Params.model_validate(params)
    assert text in str(caught.value)


# -- through the engine -----------------------------------------------------------------------
def make_case(**kw) -> Case:
    base = dict(id="t", scenario="t", source="t.yaml", env="balancebot", policy="balancebot-lqr", point={},
                perturbations=(), episodes=4, horizon=3.0, seed=7, alpha=0.05, determinism_episodes=2,
                thresholds={"min_success_rate": 0.5})
    base.update(kw)
    return Case(**base)


def test_model_perturbations_run_bit_identically_through_the_engine(env, lqr):
    def run(perturbations):
        return ReferenceEngine(env, lqr, perturbations, 1).run(make_case(), range(4)).episodes

    def perturbed():
        return [AddPayload(AddPayload.Params(body="chassis", fraction=[0.0, 0.3])),
                ScaleMotorStrength(ScaleMotorStrength.Params(scale=0.25)),
                ScaleJointDamping(ScaleJointDamping.Params(damping=[1, 10], joints=["wheel"])),
                SetGravity(SetGravity.Params(scale=[0.9, 1.1]))]

    a, b, nominal = run(perturbed()), run(perturbed()), run([])
    for x, y, n in zip(a, b, nominal):
        assert np.array_equal(x.step_hashes, y.step_hashes) and np.array_equal(x.actions, y.actions)
        assert not np.array_equal(x.step_hashes[:len(n.step_hashes)], n.step_hashes[:len(x.step_hashes)])
        # the engine reports torque at the joint: capped at a quarter of the nominal 1.5 N·m
        assert x.peak_abs_torque[0] <= 0.25 * 1.5 + 1e-12
    assert max(n.peak_abs_torque[0] for n in nominal) > 0.25 * 1.5  # so the cap did bind
