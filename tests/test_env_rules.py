"""Every env rule has one implementation, over rows, so the two engines cannot disagree in the
last bit whatever kernels the CPU's BLAS picks; and the batched engine's lanes stop when the
caller stops waiting for them."""

import signal
import threading

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine
from simgate.engine.reference import ReferenceEngine
from simgate.envs.base import ROW_RULES, MujocoEnv, OneRow, row_rule
from tests.test_batched_engine import assert_identical
from tests.test_engine import make_case

SHIPPED = ("balancebot", "arm7-reach", "arm7-reach-far", "quadruped")


def _overridden(cls: type, rule: str) -> bool:
    return getattr(cls, rule) is not getattr(MujocoEnv, rule)


# -- one implementation per rule ------------------------------------------------------------------
def test_no_registered_env_has_two_implementations_of_a_rule(host):
    from simgate.envs.gymnasium_adapter import GymnasiumEnv, GymnasiumRowsEnv
    from simgate.runner import build_env

    names = host.registries.envs.names()
    assert set(SHIPPED) <= set(names) and "Hopper-v5" in names and "InvertedPendulum-v5" in names
    classes = {type(build_env(host.registries.envs.get(name))) for name in names}
    assert {GymnasiumEnv, GymnasiumRowsEnv} <= classes  # both kinds of gymnasium task were built
    for cls in classes:
        for episode, rows in ROW_RULES.items():
            assert not (_overridden(cls, episode) and _overridden(cls, rows)), (cls, episode)


def test_shipped_envs_write_every_rule_over_rows_only(host):
    from simgate.runner import build_env

    for name in SHIPPED:
        env = build_env(host.registries.envs.get(name))
        for episode, rows in ROW_RULES.items():
            assert not _overridden(type(env), episode), (name, episode)
            assert row_rule(env, episode) == getattr(env, rows)  # what the batched engine asks
        assert _overridden(type(env), "observe_rows") and _overridden(type(env), "terminated_rows")


def test_an_env_defining_a_rule_both_ways_is_refused_at_class_definition():
    with pytest.raises(TypeError, match=r"Both has two implementations of one rule: reward .* and reward_rows"):
        class Both(MujocoEnv):
            def reward(self, model, data):
                return 0.0

            def reward_rows(self, model, data):
                return np.zeros(len(data.time))


def test_a_per_episode_rule_over_an_inherited_row_rule_is_refused_too():
    from envs.balancebot.env import BalanceBot

    with pytest.raises(TypeError, match=r"terminated \(defined in .*Late\) and terminated_rows \(defined in "
                                        r"BalanceBot\).*set terminated_rows = MujocoEnv.terminated_rows"):
        class Late(BalanceBot):
            def terminated(self, model, data):
                return None

    class PerEpisode(BalanceBot):  # the fix the message names: the per-episode rule is then the only one
        terminated_rows = MujocoEnv.terminated_rows

        def terminated(self, model, data):
            return None

    assert row_rule(PerEpisode(), "terminated") is None and row_rule(PerEpisode(), "observe") is not None


def test_an_older_env_with_per_episode_rules_only_still_runs_on_both_engines(host):
    """The batched engine asks such an env row by row: still one implementation."""
    from envs.balancebot.env import BalanceBot

    class Old(MujocoEnv):
        name, xml_path, control_hz = "old", BalanceBot.xml_path, 50.0
        observation_size, action_size = 4, 1
        bot = BalanceBot()

        def reset(self, model, data, rng):
            self.bot.reset(model, data, rng)

        def observe(self, model, data):
            return self.bot.observe(model, data)

        def apply_action(self, model, data, action):
            data.ctrl[:] = np.clip(action, -1.0, 1.0)

        def reward(self, model, data):
            return -abs(float(data.qpos[0]) - 1.0) / 50.0

    assert all(row_rule(Old(), rule) is None for rule in ("observe", "apply_action", "reward"))
    policy = host.registries.policies.get("balancebot-lqr").load()
    case = make_case(episodes=4, horizon=1.0)
    reference = ReferenceEngine(Old(), policy, [], 1).run(case, range(4))
    assert_identical(reference, BatchedEngine(Old(), policy, [], 1, nthread=2).run(case, range(4)))
    assert all(e.ret < 0 for e in reference.episodes)


# -- one row views ----------------------------------------------------------------------------------
def test_a_row_rule_writes_state_back_through_every_view():
    """The arm's success latch is state a row rule writes: through a one-row view of an MjData,
    and through the batched engine's view of some rows (an index array: copies, written back)."""
    import mujoco

    from envs.arm7.env import REACHED, REACHED_AT, Arm7Reach
    from simgate.engine.batched import _Rows

    env = Arm7Reach()
    model = env.build_model()
    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(0))
    mujoco.mj_forward(model, data)
    data.mocap_pos[0] = data.site_xpos[model.site("fingertip").id]  # the target under the fingertip
    data.time = 0.5
    env.terminated(model, data)
    assert (data.userdata[REACHED], data.userdata[REACHED_AT]) == (1.0, 0.5)

    fields = {name: np.stack([np.array(getattr(data, name))] * 3) for name in
              ("site_xpos", "mocap_pos", "sensordata", "userdata", "time")}
    fields["userdata"][:, REACHED] = 0.0
    fields["mocap_pos"][1] += 0.5  # row 1 is far from its target
    assert env.terminated_rows(model, _Rows(fields, np.array([1, 2]))) == [None, None]
    np.testing.assert_array_equal(fields["userdata"][:, REACHED], [0.0, 0.0, 1.0])  # row 0 was not asked
    np.testing.assert_array_equal(fields["userdata"][:, REACHED_AT], [0.5, 0.5, 0.5])


def test_one_row_views_are_writable_views_of_the_data():
    import mujoco

    from envs.balancebot.env import BalanceBot

    model = BalanceBot().build_model()
    data = mujoco.MjData(model)
    row = OneRow(data)
    assert row.qpos.shape == (1, model.nq) and row.time.shape == (1,)
    row.qpos[0, 1] = 0.25
    row.qvel = np.full((1, model.nv), 2.0)
    assert data.qpos[1] == 0.25 and (data.qvel == 2.0).all()


# -- a CPU whose BLAS rounds one vector differently from rows ---------------------------------------
def _last_bit_off(x):
    """One ulp up: what another BLAS kernel may give for the same sum."""
    return np.nextafter(x, np.inf)


@pytest.fixture
def blas_of_another_cpu(monkeypatch):
    """``np.linalg.norm`` and ``np.dot`` of a single vector one ulp off, as a SkylakeX OpenBLAS
    kernel is against a Haswell one for 2,144 of 20,000 rows; rows (``axis=``) and matrices are
    untouched, as they do not take the same kernel."""
    norm, dot = np.linalg.norm, np.dot
    calls = {"norm": 0, "dot": 0}

    def vector_norm(x, ord=None, axis=None, keepdims=False):
        out = norm(x, ord=ord, axis=axis, keepdims=keepdims)
        if axis is None and np.ndim(x) == 1:
            calls["norm"] += 1
            return _last_bit_off(out)
        return out

    def vector_dot(a, b, out=None):
        result = dot(a, b, out=out)
        if np.ndim(a) == 1 and np.ndim(b) == 1 and np.result_type(a, b).kind == "f":
            calls["dot"] += 1
            return _last_bit_off(result)
        return result

    monkeypatch.setattr(np.linalg, "norm", vector_norm)
    monkeypatch.setattr(np, "dot", vector_dot)
    return calls


def test_the_engines_agree_on_the_arm_whatever_blas_does_with_one_vector(host, blas_of_another_cpu):
    from simgate.runner import build_env

    # the patch is live: a rule computing a length with norm of one vector would be one ulp off
    assert np.linalg.norm(np.array([3.0, 4.0])) != 5.0 and blas_of_another_cpu["norm"] == 1
    env = build_env(host.registries.envs.get("arm7-reach"))
    policy = host.registries.policies.get("arm7-ik").load()
    case = make_case(env="arm7-reach", policy="arm7-ik", horizon=1.0, episodes=4)
    reference = ReferenceEngine(env, policy, [], 7).run(case, range(4))
    batched = BatchedEngine(env, policy, [], 7, nthread=2, lane_max=3).run(case, range(4))
    assert_identical(reference, batched)
    assert any(e.success for e in reference.episodes)  # the latch rule was exercised, and agrees


# -- lanes that stop --------------------------------------------------------------------------------
@pytest.fixture
def bot_engine(host):
    from envs.balancebot.env import BalanceBot

    policy = host.registries.policies.get("balancebot-lqr").load()
    return BatchedEngine(BalanceBot(), policy, [], 1, nthread=2)


def test_an_exception_in_the_waiting_caller_cancels_the_daemon_lanes(bot_engine):
    """Whatever ends the caller's wait (here Ctrl-C's kind of exception, raised by a signal
    handler while the main thread waits), the lanes are told to stop, and they are daemons."""
    seen = {"cancelled": [], "daemon": []}
    started = threading.Barrier(2)  # both lanes are running before the signal arrives

    def work(lane, cancel):
        seen["daemon"].append(threading.current_thread().daemon)
        started.wait()
        if lane == 0:
            signal.raise_signal(signal.SIGUSR1)  # handled in the main thread, inside its wait
        seen["cancelled"].append(cancel.wait(timeout=60))  # bounded: a broken cancel fails, never hangs

    def interrupt(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGUSR1, interrupt)
    before = set(threading.enumerate())
    try:
        with pytest.raises(Interrupted):
            bot_engine._run_lanes(work, [0, 1])
    finally:
        signal.signal(signal.SIGUSR1, previous)
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=60)  # no signal arrives here: join is reliable
    assert seen == {"cancelled": [True, True], "daemon": [True, True]}


class Interrupted(BaseException):
    """An exception in the caller of the lanes."""


def test_a_cancelled_lane_returns_at_its_next_control_step(bot_engine):
    cancel = threading.Event()
    calls = []

    class CancelOnThirdCall:
        def act(self, obs):
            calls.append(len(obs))
            if len(calls) == 3:
                cancel.set()
            return np.zeros((len(obs), 1))

    bot_engine.policy = CancelOnThirdCall()
    case = make_case(episodes=4, horizon=10.0)
    assert bot_engine._run_lane(case, [0, 1], 500, 2, cancel) is None
    assert len(calls) == 3  # not one control step more


def test_an_exception_in_a_lane_reaches_the_caller(bot_engine, monkeypatch):
    run_lane = bot_engine._run_lane

    def failing(case, indices, n_steps, rows, cancel=None, overrides=None):
        if 2 in indices:
            raise RuntimeError("lane broke")
        return run_lane(case, indices, n_steps, rows, cancel, overrides)

    monkeypatch.setattr(bot_engine, "_run_lane", failing)
    with pytest.raises(RuntimeError, match="lane broke"):
        bot_engine.run(make_case(episodes=4, horizon=0.2), range(4))
