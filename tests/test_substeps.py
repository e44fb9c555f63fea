"""A control step planned in whole blocks (``physics_block``) equals the per-step plan bit for
bit: every shipped physics-rate kind alone and together, pushes that cross control steps,
overlap or never come, latencies shorter and longer than a control step, on real robots whose
episode states come from each perturbation's own ``start``."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simgate.engine.substeps import has_block, physics_hooks, plan, plan_per_step
from simgate.perturbations.apply_pushes import ApplyPushes
from simgate.perturbations.delay_actions import DelayActions
from simgate.perturbations.drop_motor import DropMotor
from tests.test_perturb_world import context

mujoco = pytest.importorskip("mujoco")


@pytest.fixture(scope="module")
def quadruped():
    from envs.quadruped.env import Quadruped

    env = Quadruped()
    return env, env.build_model()


@pytest.fixture(scope="module")
def bot():
    from envs.balancebot.env import BalanceBot

    env = BalanceBot()
    return env, env.build_model()


def build(cls, **params):
    return cls(cls.Params.model_validate(params))


class Stepwise:
    """A hook as a third-party plugin writes it: ``physics`` only, so ``plan`` steps."""

    def __init__(self, inner):
        self.inner, self.stage, self.replaces_ctrl = inner, inner.stage, inner.replaces_ctrl

    def physics(self, model, data, state, substep):
        self.inner.physics(model, data, state, substep)


def started(robot, perturbations, seed, n_steps):
    """Each perturbation's episode state, from its own ``start`` on a fresh copy of the model."""
    env, nominal = robot
    model = nominal.__copy__()
    data = mujoco.MjData(model)
    ctx = context(model, seed, n_steps=n_steps, frame_skip=env.frame_skip(model), data=data, env=env, nominal=nominal)
    return model, [(p, p.start(ctx)) for p in perturbations]


def both_plans(robot, perturbations, seed=0, n_steps=60, offset=0):
    """Plan every control step of an episode twice (block path, per-step path), each from its own
    episode states, carrying the applied forces over as an engine does; return both sequences.
    ``offset``: blocks that start that many physics steps into a control step (the engines'
    blocks are control steps, but the contract is any run of ``frame_skip`` steps)."""
    env, nominal = robot
    fs = env.frame_skip(nominal)
    model, block_states = started(robot, perturbations, seed, n_steps)
    _, step_states = started(robot, perturbations, seed, n_steps)
    block_hooks, step_hooks = physics_hooks(block_states), physics_hooks(step_states)
    assert block_hooks and all(has_block(p) for p, _ in block_hooks)
    rng = np.random.default_rng(seed + 1000)
    # forces another source left on every body (the pushed body's torque part included): a hook
    # must leave what it does not own, and switch off what it does
    xfrc = rng.normal(size=(model.nbody, 6))
    block_xfrc, step_xfrc, out = xfrc, xfrc.copy(), []
    for c in range(n_steps - (offset > 0)):
        command = rng.normal(size=model.nu)  # a distinct command at every control step
        a = plan(block_hooks, model, command.copy(), block_xfrc, fs, c * fs + offset)
        b = plan_per_step(step_hooks, model, command.copy(), step_xfrc, fs, c * fs + offset)
        block_xfrc, step_xfrc = a[1][-1].copy(), b[1][-1].copy()
        out.append((a, b))
    return out


def assert_same(plans):
    for c, ((ctrl_a, xfrc_a), (ctrl_b, xfrc_b)) in enumerate(plans):
        assert ctrl_a.shape == ctrl_b.shape and xfrc_a.shape == xfrc_b.shape
        assert np.array_equal(ctrl_a, ctrl_b), f"ctrl differs at control step {c}"
        assert np.array_equal(xfrc_a, xfrc_b), f"xfrc_applied differs at control step {c}"


def pushes(body, **kw):
    params = dict(body=body, force=[5.0, 20.0], interval=[0.05, 0.3], duration=0.013, direction="any")
    params.update(kw)
    return build(ApplyPushes, **params)


# -- each kind alone ---------------------------------------------------------------------------

@pytest.mark.parametrize("delay_ms", [0, 6, 20, 28, 50, 54])  # balancebot: 2 ms steps, 10 per control step
def test_delay_blocks_equal_steps_shorter_and_longer_than_a_control_step(bot, delay_ms):
    plans = both_plans(bot, [build(DelayActions, delay_ms=delay_ms)])
    assert_same(plans)
    ctrl = np.concatenate([a[0] for a, _ in plans])[:, 0]
    delay = delay_ms // 2
    assert len(np.unique(ctrl[delay:])) == len(plans) - delay // 10  # every command that came due
    assert np.all(ctrl[:delay] == ctrl[0])  # the idle control before the first command is due


def test_delay_blocks_on_twelve_actuators_longer_than_a_control_step(quadruped):
    assert_same(both_plans(quadruped, [build(DelayActions, delay_ms=25)]))  # 5 steps of 5 ms, 4 per control step


@pytest.mark.parametrize("start,duration", [(0.0, 0.005), (0.013, 0.004), (0.1, 0.3), ([0.0, 0.5], [0.005, 0.1])])
def test_drop_motor_blocks_equal_steps(quadruped, start, duration):
    drop = build(DropMotor, actuator="FR_knee", start=start, duration=duration)
    for seed in range(4):
        plans = both_plans(quadruped, [drop], seed=seed)
        assert_same(plans)
        ctrl = np.concatenate([a[0] for a, _ in plans])
        assert np.any(ctrl[:, 5] == 0.0) and not np.any(ctrl[:, 4] == 0.0)  # only its actuator dies


def test_pushes_blocks_equal_steps_across_control_steps_and_overlapping(quadruped):
    # 13 ms pushes (2.6 physics steps, rounded to 3) every 50-300 ms: pushes starting inside a
    # control step, ending in the next one, and (interval < duration) overlapping ones
    for seed in range(6):
        plans = both_plans(quadruped, [pushes("trunk"), pushes("trunk", interval=[0.005, 0.02], until=0.1)], seed=seed)
        assert_same(plans)
        forces = np.concatenate([a[1] for a, _ in plans])[:, 1, :3]
        assert np.any(forces != 0.0, axis=1).sum() > 10 and np.any(np.all(forces == 0.0, axis=1))


def test_an_episode_without_pushes_switches_the_force_off_in_both_forms(quadruped):
    never = pushes("trunk", first=100.0)  # after the horizon: an empty schedule
    _, [(_, schedule)] = started(quadruped, [never], 0, 10)
    assert schedule.start.size == 0 and schedule.force.shape == (0, 3)
    plans = both_plans(quadruped, [never], n_steps=10)
    assert_same(plans)
    assert np.all(plans[0][0][1][:, 1, :3] == 0.0)  # the trunk's starting force, switched off
    assert np.all(plans[0][0][1][:, 1, 3:] == plans[0][0][1][0, 1, 3:])  # its torque left alone


def test_a_long_push_spans_several_whole_control_steps(bot):
    plans = both_plans(bot, [pushes("chassis", duration=0.067, interval=0.2, direction="x")])
    assert_same(plans)
    on = np.any(np.concatenate([a[1] for a, _ in plans])[:, 1, :3] != 0.0, axis=1)
    assert on.sum() == 34 * 5  # 0.2 s intervals over 1.2 s: pushes at 0.2 .. 1.0 s, 34 steps each


# -- together ------------------------------------------------------------------------------------

def test_delay_drop_and_two_pushes_on_one_body_together(quadruped):
    # listed in no particular order: physics_hooks sorts them (latency, then the dead motor, then forces)
    kinds = [pushes("trunk"), build(DropMotor, actuator="HL_flexion", start=[0.05, 0.6], duration=[0.01, 0.2]),
             pushes("trunk", force=3.0, interval=[0.02, 0.1], direction="lateral"), pushes("FL_calf", duration=0.02),
             build(DelayActions, delay_ms=35)]
    for seed in range(5):
        assert_same(both_plans(quadruped, kinds, seed=seed, n_steps=80))


def test_two_latencies_and_a_dead_motor_on_the_balancebot(bot):
    kinds = [build(DropMotor, actuator="wheel_motor", start=[0.0, 0.5], duration=[0.002, 0.05]),
             build(DelayActions, delay_ms=14), build(DelayActions, delay_ms=22)]
    for seed in range(4):
        assert_same(both_plans(bot, kinds, seed=seed))


@pytest.mark.parametrize("offset", [1, 3])
def test_blocks_that_straddle_two_control_steps(quadruped, offset):
    kinds = [build(DelayActions, delay_ms=15), build(DropMotor, actuator="FR_flexion", start=0.1, duration=0.013),
             pushes("trunk")]
    for seed in range(3):
        assert_same(both_plans(quadruped, kinds, seed=seed, offset=offset))


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=st.integers(0, 14), begin=st.floats(0.0, 0.5), length=st.floats(0.001, 0.2),
       duration=st.floats(0.001, 0.06), interval=st.floats(0.004, 0.2), seed=st.integers(0, 2**16),
       with_delay=st.booleans(), with_drop=st.booleans())
def test_any_mix_of_the_shipped_kinds_plans_the_same_bits(quadruped, delay, begin, length, duration, interval, seed,
                                                            with_delay, with_drop):
    kinds = [pushes("trunk", duration=duration, interval=[interval, 2 * interval]),
             pushes("trunk", duration=duration * 2, interval=interval * 3, first=0.0)]
    if with_delay:
        kinds.append(build(DelayActions, delay_ms=5 * delay))
    if with_drop:
        kinds.append(build(DropMotor, actuator="FL_knee", start=begin, duration=length))
    assert_same(both_plans(quadruped, kinds, seed=seed, n_steps=40))


# -- which path plan takes -----------------------------------------------------------------------

def test_plan_steps_when_any_hook_lacks_a_block_form(quadruped):
    """A hook with ``physics`` only makes the whole row step by step, and its result is still
    what the block form of the others would give."""
    kinds = [build(DelayActions, delay_ms=15), pushes("trunk", interval=[0.02, 0.05])]
    model, states = started(quadruped, kinds, 3, 30)
    _, mixed_states = started(quadruped, kinds, 3, 30)
    mixed = physics_hooks([(Stepwise(kinds[0]), mixed_states[0][1]), mixed_states[1]])
    assert not has_block(mixed[0][0]) and has_block(mixed[1][0])
    hooks, fs = physics_hooks(states), 4
    xfrc, rng = np.zeros((model.nbody, 6)), np.random.default_rng(0)
    mixed_xfrc = xfrc.copy()
    for c in range(30):
        command = rng.normal(size=model.nu)
        ctrl, forces = plan(hooks, model, command, xfrc, fs, c * fs)
        ctrl_m, forces_m = plan(mixed, model, command, mixed_xfrc, fs, c * fs)
        assert np.array_equal(ctrl, ctrl_m) and np.array_equal(forces, forces_m)
        xfrc, mixed_xfrc = forces[-1], forces_m[-1]


def test_a_subclass_overriding_physics_alone_does_not_inherit_the_block_form():
    class Gentler(ApplyPushes):
        def physics(self, model, data, state, substep):
            super().physics(model, data, state, substep)
            data.xfrc_applied[state.body, :3] *= 0.5

    class Faster(Gentler):
        def physics_block(self, model, ctrl, xfrc, state, first):
            ApplyPushes.physics_block(self, model, ctrl, xfrc, state, first)
            xfrc[:, state.body, :3] *= 0.5

    params = ApplyPushes.Params(body="trunk", force=1.0, interval=1.0)
    assert has_block(ApplyPushes(params)) and has_block(DelayActions(DelayActions.Params(delay_ms=0)))
    assert not has_block(Gentler(params)) and has_block(Faster(params))
    assert not has_block(Stepwise(ApplyPushes(params)))


def test_a_hook_breaking_the_rule_is_caught_by_the_comparison(quadruped):
    """The comparison above can fail: a push that writes its entry only while it acts (relying on
    the value persisting) plans differently in blocks."""

    class Lazy(ApplyPushes):
        def physics(self, model, data, state, substep):
            i = int(np.searchsorted(state.start, substep, side="right")) - 1
            if i >= 0 and substep < state.stop[i]:
                data.xfrc_applied[state.body, :3] = state.force[i] * (substep - state.start[i] + 1)

        def physics_block(self, model, ctrl, xfrc, state, first):
            for k in range(len(xfrc)):
                self.physics(model, type("V", (), {"xfrc_applied": xfrc[k]})(), state, first + k)

    plans = both_plans(quadruped, [Lazy(Lazy.Params(body="trunk", force=5.0, interval=0.1, duration=0.013))])
    with pytest.raises(AssertionError):
        assert_same(plans)


# -- end to end ----------------------------------------------------------------------------------

def test_engines_planning_in_blocks_run_the_episodes_the_per_step_plan_runs(host, monkeypatch):
    """The quadruped walking under a latency, a dead motor and pushes: the batched engine (block
    path) runs, bit for bit, the episodes the reference engine runs when made to plan step by step."""
    import simgate.engine.reference as reference
    from simgate.engine.batched import BatchedEngine
    from simgate.runner import build_env
    from tests.test_batched_engine import assert_identical
    from tests.test_engine import make_case

    env, policy = build_env(host.registries.envs.get("quadruped")), host.registries.policies.get("quadruped-robust").load()

    def make(ms=10):  # 2 physics steps: the robust policy walks through it
        return [pushes("trunk", force=[2.0, 6.0], interval=[0.1, 0.3], duration=0.033, direction="lateral"),
                pushes("trunk", force=4.0, interval=0.45, duration=0.2, direction="x"),
                build(DropMotor, actuator="FL_knee", start=[0.2, 1.0], duration=[0.013, 0.1]),
                build(DelayActions, delay_ms=ms)]

    case = make_case(env="quadruped", policy="quadruped-robust", horizon=1.5, episodes=4)
    blocks, original = [], DelayActions.physics_block
    monkeypatch.setattr(DelayActions, "physics_block", lambda self, *a: (blocks.append(a[-1]), original(self, *a)))
    batched = BatchedEngine(env, policy, make(), 12, nthread=1).run(case, range(4))
    assert len(blocks) == sum(e.length for e in batched.episodes)  # every control step took the block path
    monkeypatch.setattr(reference, "plan", plan_per_step)
    stepped = reference.ReferenceEngine(env, policy, make(), 12).run(case, range(4))
    assert_identical(stepped, batched)
    nominal = BatchedEngine(env, policy, [], 12, nthread=1).run(case, range(4))
    assert all(not np.array_equal(a.step_hashes, b.step_hashes) for a, b in zip(nominal.episodes, batched.episodes))
