"""Sensor and actuator perturbations measured where they act: what the policy sees, what reaches
the motor at each physics step, and the rate the engine runs at."""

import types

import numpy as np
import pytest
from pydantic import ValidationError

from simgate.engine.reference import ReferenceEngine
from simgate.envs.base import MujocoEnv
from simgate.envs.info import describe
from simgate.perturbations.add_action_noise import AddActionNoise
from simgate.perturbations.base import EpisodeContext, Perturbation
from simgate.perturbations.bias_observations import BiasObservations
from simgate.perturbations.change_control_rate import ChangeControlRate
from simgate.perturbations.clip_actions import ClipActions
from simgate.perturbations.delay_actions import DelayActions
from simgate.perturbations.delay_observations import DelayObservations
from simgate.perturbations.drop_motor import DropMotor
from simgate.perturbations.mask_observations import MaskObservations
from simgate.scenarios.case import Case

# a 1 kg block on a frictionless rail pushed by a unit-gain motor: actuator force == ctrl, exactly
SLIDER_XML = """
<mujoco>
  <option timestep="0.002" gravity="0 0 0"/>
  <worldbody>
    <body name="block">
      <joint name="rail" type="slide" axis="1 0 0"/>
      <geom type="box" size="0.05 0.05 0.05" mass="1"/>
    </body>
  </worldbody>
  <actuator><motor name="push" joint="rail"/></actuator>
</mujoco>
"""


class Slider(MujocoEnv):
    name = "slider"
    control_hz = 50.0  # frame_skip 10
    observation_size = 2
    action_size = 1

    def build_model(self):
        import mujoco

        return mujoco.MjModel.from_xml_string(SLIDER_XML)

    def reset(self, model, data, rng):
        pass

    def observe(self, model, data):
        return np.array([data.qpos[0], data.qvel[0]])

    def observation_groups(self):
        return {"position": [0], "velocity": [1]}


class Script:
    """Commands ``command(t)`` at control step t of each episode whatever it observes, so that
    perturbed and unperturbed runs follow the same commands; keeps what it was shown."""

    def __init__(self, command, steps_per_episode):
        self.command, self.period = command, steps_per_episode
        self.seen = []

    def act(self, obs):
        t = len(self.seen) % self.period
        self.seen.append(obs[0].copy())
        return np.array([[self.command(t)]])

    @property
    def commands(self):
        return np.array([self.command(t % self.period) for t in range(len(self.seen))])


class Recorder(Perturbation):
    """Force stage, so it runs after every action-stage hook: ``ctrl[k]`` is what physics step k
    uses. ``force`` is what MuJoCo's actuators produced at each physics step, measured after
    ``mj_step`` (see ``_StepSpy``)."""

    kind, stage = "record", "force"

    def __init__(self):
        super().__init__(Perturbation.Params())
        self.ctrl, self.measured = [], []

    def physics(self, model, data, state, substep):
        self.ctrl.append(data.ctrl.copy())

    @property
    def force(self):  # force of physics steps 0 .. n-2
        return np.array(self.measured[:-1])


class _StepSpy:
    """The mujoco module, but every mj_step also reports the actuator forces it produced."""

    def __init__(self, mujoco_module, recorder):
        self._mujoco, self._recorder = mujoco_module, recorder

    def __getattr__(self, name):
        return getattr(self._mujoco, name)

    def mj_step(self, model, data):
        self._mujoco.mj_step(model, data)
        self._recorder.measured.append(data.actuator_force.copy())


def make_case(env="slider", **kw) -> Case:
    base = dict(id="t", scenario="t", source="t.yaml", env=env, policy="p", point={}, perturbations=(),
                episodes=1, horizon=1.0, seed=5, alpha=0.05, determinism_episodes=1, thresholds={})
    base.update(kw)
    return Case(**base)


def roll(env, policy, perturbations=(), **kw):
    case = make_case(env=env.name, **kw)
    engine = ReferenceEngine(env, policy, list(perturbations), env.action_size)
    for p in perturbations:
        if isinstance(p, Recorder):
            engine.mujoco = _StepSpy(engine.mujoco, p)
    return engine.run(case, range(case.episodes))


def ramp(t):
    return 0.1 * (t + 1) * (-1) ** t  # every step a distinct, non-zero command


def slider_run(perturbations=(), command=ramp, horizon=1.0, **kw):
    """(policy, recorder, rollouts) of the slider under ``perturbations``."""
    policy, recorder = Script(command, int(round(horizon * 50))), Recorder()
    rollouts = roll(Slider(), policy, [*perturbations, recorder], horizon=horizon, **kw)
    return policy, recorder, rollouts


@pytest.fixture(scope="module")
def bot():
    from envs.balancebot.env import BalanceBot

    return BalanceBot()


@pytest.fixture(scope="module")
def lqr(host):
    return host.registries.policies.get("balancebot-lqr").load()


def build(cls, **params):
    return cls(cls.Params.model_validate(params))


# -- delay_actions -----------------------------------------------------------------------------

def test_action_delay_of_50ms_applies_each_command_exactly_25_physics_steps_later():
    policy, nominal, _ = slider_run()
    ctrl = np.array(nominal.ctrl)[:, 0]
    np.testing.assert_array_equal(ctrl, np.repeat(policy.commands, 10))  # the undelayed path

    _, late, _ = slider_run([build(DelayActions, delay_ms=50)])
    delayed = np.array(late.ctrl)[:, 0]
    assert np.all(delayed[:25] == 0.0)  # nothing commanded that long ago: the initial control
    np.testing.assert_array_equal(delayed[25:], ctrl[:-25])
    np.testing.assert_array_equal(late.force[:, 0], delayed[:-1])  # and that is the force the motor made


def test_action_delay_of_10ms_switches_inside_a_control_step():
    policy, nominal, _ = slider_run()
    _, late, _ = slider_run([build(DelayActions, delay_ms=10)])
    delayed = np.array(late.ctrl)[:, 0].reshape(-1, 10)  # one row per control step
    commands = policy.commands
    assert np.all(delayed[0, :5] == 0.0)
    np.testing.assert_array_equal(delayed[1:, :5], np.repeat(commands[:-1, None], 5, axis=1))
    np.testing.assert_array_equal(delayed[:, 5:], np.repeat(commands[:, None], 5, axis=1))
    np.testing.assert_array_equal(delayed.ravel()[5:], np.array(nominal.ctrl)[:-5, 0])


def test_zero_action_delay_is_bit_identical_to_none(bot, lqr):
    plain = roll(bot, lqr, episodes=3, horizon=2.0)
    zero = roll(bot, lqr, [build(DelayActions, delay_ms=0)], episodes=3, horizon=2.0)
    assert [e.state_hash for e in plain.episodes] == [e.state_hash for e in zero.episodes]


def test_an_action_delay_that_is_not_whole_physics_steps_is_refused_with_the_values_that_work():
    info = describe(Slider())
    problems = build(DelayActions, delay_ms=3).check(info)
    assert problems == [("delay_ms", "delay_ms should be a whole number of physics steps of 2 ms, received 3; "
                                     "the nearest valid values are 2 and 4")]
    assert build(DelayActions, delay_ms=50).check(info) == []
    with pytest.raises(ValidationError, match="delay_ms should be ≥ 0, received -1"):
        DelayActions.Params(delay_ms=-1)


# -- observations ------------------------------------------------------------------------------

def test_the_policy_sees_the_observation_from_k_control_steps_ago():
    reference, _, _ = slider_run()
    current = np.array(reference.seen)
    delayed, _, _ = slider_run([build(DelayObservations, delay_ms=40)])
    seen = np.array(delayed.seen)
    k = 2  # 40 ms at 50 Hz
    np.testing.assert_array_equal(seen[k:], current[:-k])
    np.testing.assert_array_equal(seen[:k], current[[0] * k])  # before that, the first observation
    assert not np.array_equal(seen, current)


def test_observation_delay_of_some_groups_leaves_the_others_current():
    current = np.array(slider_run()[0].seen)
    seen = np.array(slider_run([build(DelayObservations, delay_ms=60, groups=["position"])])[0].seen)
    np.testing.assert_array_equal(seen[3:, 0], current[:-3, 0])
    np.testing.assert_array_equal(seen[:, 1], current[:, 1])


def test_observation_delay_checks_periods_and_groups():
    info = describe(Slider())
    assert build(DelayObservations, delay_ms=30, groups=["positon"]).check(info) == [
        ("groups", "no observation group named 'positon' in this model; did you mean 'position'?"),
        ("delay_ms", "delay_ms should be a whole number of control periods of 20 ms, received 30; "
                     "the nearest valid values are 20 and 40")]


def test_masking_replaces_exactly_the_named_groups():
    current = np.array(slider_run()[0].seen)
    seen = np.array(slider_run([build(MaskObservations, groups=["velocity"], value=-7.0)])[0].seen)
    assert np.all(seen[:, 1] == -7.0)
    np.testing.assert_array_equal(seen[:, 0], current[:, 0])


def test_masking_with_a_probability_masks_that_fraction_of_steps():
    env = Slider()
    p = build(MaskObservations, groups=["position"], probability=0.3)
    mask = p.start(EpisodeContext(env, None, None, None, 40_000, 0.02, 10, np.random.default_rng(3)))
    assert abs(mask.masked.mean() - 0.3) < 0.01  # 4 standard errors
    # and in a run, the masked steps are exactly those read 0, the others pass through
    current = np.array(slider_run(horizon=20.0)[0].seen)
    seen = np.array(slider_run([build(MaskObservations, groups=["position"], probability=0.3)], horizon=20.0)[0].seen)
    masked = seen[:, 0] != current[:, 0]
    assert np.all(seen[masked, 0] == 0.0)
    np.testing.assert_array_equal(seen[:, 1], current[:, 1])
    assert 0.25 < masked.mean() < 0.35  # 1000 steps


def test_mask_params_are_validated():
    with pytest.raises(ValidationError, match="probability should be between 0 and 1, received 1.5"):
        MaskObservations.Params(groups=["imu"], probability=1.5)
    with pytest.raises(ValidationError, match="groups should name at least one observation group"):
        MaskObservations.Params(groups=[])


def test_bias_is_constant_in_an_episode_different_across_episodes_and_reproducible():
    def offsets(seed):
        policy = slider_run(episodes=4, seed=seed)[0]
        biased = slider_run([build(BiasObservations, bias={"position": (-1.0, 1.0)})], episodes=4, seed=seed)[0]
        return (np.array(biased.seen) - np.array(policy.seen)).reshape(4, 50, 2)

    bias = offsets(5)
    assert np.all(bias[:, :, 1] == 0.0)  # velocity untouched
    np.testing.assert_allclose(bias[:, :, 0], bias[:, :1, 0].repeat(50, axis=1), atol=1e-12)
    per_episode = bias[:, 0, 0]
    assert len(set(per_episode.round(9))) == 4 and np.all(np.abs(per_episode) <= 1.0)
    np.testing.assert_array_equal(offsets(5), bias)
    assert not np.allclose(offsets(6)[:, 0, 0], per_episode)


def test_a_fixed_bias_is_added_to_every_channel():
    current = np.array(slider_run()[0].seen)
    seen = np.array(slider_run([build(BiasObservations, bias=0.25)])[0].seen)
    np.testing.assert_allclose(seen - current, 0.25, atol=1e-12)


# -- actions -----------------------------------------------------------------------------------

def test_action_noise_has_the_configured_std_per_action():
    env = types.SimpleNamespace(action_size=2)
    p = build(AddActionNoise, std=[0.1, 0.3])
    noise = p.start(EpisodeContext(env, None, None, None, 40_000, 0.02, 10, np.random.default_rng(1)))
    np.testing.assert_allclose(noise.std(axis=0), [0.1, 0.3], rtol=0.02)
    assert np.all(np.abs(noise.mean(axis=0)) < 0.005)
    assert p.check(describe(Slider())) == [("std", "std should have one value per action (1), received 2: [0.1, 0.3]")]


def test_action_noise_reaches_the_motor():
    policy, recorder, rollouts = slider_run([build(AddActionNoise, std=0.2)], command=lambda t: 0.0, horizon=40.0)
    ctrl = np.array(recorder.ctrl)[:, 0].reshape(-1, 10)
    np.testing.assert_array_equal(ctrl, np.repeat(rollouts.episodes[0].actions, 10, axis=1))
    assert np.all(ctrl == ctrl[:, :1])  # one draw per control step
    assert abs(ctrl[:, 0].std() - 0.2) < 0.02  # 2000 draws


def test_clipping_bounds_the_applied_ctrl():
    _, nominal, _ = slider_run(command=lambda t: 2.0 * (-1) ** t)
    _, clipped, _ = slider_run([build(ClipActions, low=-0.5, high=0.25)], command=lambda t: 2.0 * (-1) ** t)
    assert set(np.array(nominal.ctrl).ravel()) == {-2.0, 2.0}
    assert set(np.array(clipped.ctrl).ravel()) == {-0.5, 0.25}
    with pytest.raises(ValidationError, match=r"low should be ≤ high, received low=1.0, high=0.0"):
        ClipActions.Params(low=1.0, high=0.0)
    assert build(ClipActions, low=[-1, -1], high=1).check(describe(Slider())) == [
        ("low", "low should have one value per action (1), received 2: [-1.0, -1.0]")]


def test_a_dropped_motor_makes_no_force_inside_the_window_only():
    drop = build(DropMotor, actuator="push", start=0.106, duration=0.03)  # physics steps 53 .. 67
    _, recorder, _ = slider_run([drop], command=lambda t: 0.5)
    force = recorder.force[:, 0]
    window = np.zeros(len(force), bool)
    window[53:68] = True
    assert np.all(force[window] == 0.0)
    assert np.all(force[~window] == 0.5)  # back at step 68, mid control step, not at step 70


def test_a_dropped_motor_composes_with_an_action_delay():
    delay, drop = build(DelayActions, delay_ms=10), build(DropMotor, actuator="push", start=0.106, duration=0.03)
    _, late, _ = slider_run([delay])
    _, both, _ = slider_run([delay, drop])
    expected = late.force[:, 0].copy()
    expected[53:68] = 0.0
    np.testing.assert_array_equal(both.force[:, 0], expected)


def test_drop_motor_checks_the_actuator_name_and_its_params(bot):
    assert build(DropMotor, actuator="wheel_motr", start=1, duration=0.1).check(describe(bot)) == [
        ("actuator", "no actuator named 'wheel_motr' in this model; did you mean 'wheel_motor'?")]
    with pytest.raises(ValidationError, match="duration should be > 0 s, received 0"):
        DropMotor.Params(actuator="wheel_motor", start=1, duration=0)


def test_a_new_control_rate_sets_frame_skip_and_the_horizon_in_steps(bot, lqr):
    engine = ReferenceEngine(bot, lqr, [build(ChangeControlRate, hz=10)], 1)
    assert engine.frame_skip == 50
    rollouts = engine.run(make_case(env="balancebot", horizon=2.0), range(1))
    assert rollouts.n_steps == 20 and rollouts.control_dt == pytest.approx(0.1)
    assert build(ChangeControlRate, hz=7).check(describe(bot)) == [
        ("hz", "hz should make the control period a whole number of physics steps of 0.002 s (physics at "
               "500 Hz), received 7 (71.43 steps); rates that work nearby: 5, 10 Hz")]
    assert build(ChangeControlRate, hz=25).check(describe(bot)) == []


# -- determinism on the shipped robot ----------------------------------------------------------

EVERY_KIND = [
    (BiasObservations, {"bias": {"imu": [-0.05, 0.05]}}),
    (DelayObservations, {"delay_ms": 40}),
    (MaskObservations, {"groups": ["encoders"], "probability": 0.3}),
    (DelayActions, {"delay_ms": 30}),
    (AddActionNoise, {"std": 0.1}),
    (ClipActions, {"low": -0.03, "high": 0.03}),  # the LQR commands up to ~0.07 here
    (DropMotor, {"actuator": "wheel_motor", "start": [0.2, 0.8], "duration": 0.2}),
    (ChangeControlRate, {"hz": 25}),
]


@pytest.mark.parametrize("cls,params", EVERY_KIND, ids=[c.kind for c, _ in EVERY_KIND])
def test_each_kind_is_bit_identical_for_the_same_seed_and_changes_the_run(bot, lqr, cls, params):
    nominal = roll(bot, lqr, episodes=3, horizon=2.0)
    a = roll(bot, lqr, [build(cls, **params)], episodes=3, horizon=2.0)
    b = roll(bot, lqr, [build(cls, **params)], episodes=3, horizon=2.0)
    assert [e.state_hash for e in a.episodes] == [e.state_hash for e in b.episodes]
    assert all(x.state_hash != y.state_hash for x, y in zip(a.episodes, nominal.episodes))
