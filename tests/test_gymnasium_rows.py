"""The row-wise rules for gymnasium envs equal gymnasium's own per-env methods, bit for bit."""

import numpy as np
import pytest

from simgate.engine.state_hash import state_hashes

gymnasium = pytest.importorskip("gymnasium")


class _Stacked:
    """MjData fields of several simulations as (n, ...) arrays."""

    def __init__(self, datas):
        self._datas = datas

    def __getattr__(self, name):
        return np.stack([np.array(getattr(d, name)) for d in self._datas])


def _states(env_id, kwargs, n=6, steps=40):
    """n MjData of one env after random actions, some of them fallen over."""
    import mujoco

    from simgate.envs.gymnasium_adapter import GymnasiumEnv

    env = GymnasiumEnv(env_id, **kwargs)
    model, rng, datas = env.build_model(), np.random.default_rng(7), []
    for i in range(n):
        data = mujoco.MjData(model)
        env.reset(model, data, np.random.default_rng(i))
        for _ in range(steps * i // 2):  # episodes of different lengths: healthy and unhealthy states
            data.ctrl[:] = rng.uniform(-1, 1, model.nu)
            mujoco.mj_step(model, data, 4)
        mujoco.mj_forward(model, data)
        datas.append(data)
    return env, model, datas


CASES = [
    ("Hopper-v5", {}),
    ("Hopper-v5", {"exclude_current_positions_from_observation": False}),
    ("Walker2d-v5", {}),
    ("Humanoid-v5", {"include_cfrc_ext_in_observation": False}),
    ("Humanoid-v5", {"include_cfrc_ext_in_observation": False, "include_cinert_in_observation": False}),
]


def _gymnasium_says(env, model, data):
    """Gymnasium's own observation and termination for one MjData, from its own methods."""
    import mujoco

    with env._bound(model, data) as gym_env:
        if getattr(gym_env, "_include_cfrc_ext_in_observation", False):
            mujoco.mj_rnePostConstraint(model, data)  # as gymnasium does after each step
        healthy = gym_env.is_healthy
        return np.asarray(gym_env._get_obs(), dtype=np.float64), None if healthy else "fell"


@pytest.mark.parametrize("env_id,kwargs", CASES)
def test_rows_equal_gymnasium(env_id, kwargs):
    from simgate.envs.gymnasium_adapter import GymnasiumRowsEnv

    env, model, datas = _states(env_id, kwargs)
    assert isinstance(env, GymnasiumRowsEnv)
    rows = env.observe_rows(model, _Stacked(datas))
    reasons = env.terminated_rows(model, _Stacked(datas))
    for row, data in enumerate(datas):
        obs, reason = _gymnasium_says(env, model, data)
        assert np.array_equal(rows[row], obs) and reasons[row] == reason
        # and the per-episode forms both engines' reference side asks are these rules on one row
        assert np.array_equal(env.observe(model, data), obs) and env.terminated(model, data) == reason
    assert "fell" in reasons and None in reasons  # both branches of the health rule were compared


def test_contact_forces_in_the_observation_keep_gymnasiums_own_rules():
    from simgate.envs.base import row_rule
    from simgate.envs.gymnasium_adapter import GymnasiumEnv, GymnasiumRowsEnv

    env, model, datas = _states("Humanoid-v5", {}, n=1, steps=0)
    assert type(env) is GymnasiumEnv and not isinstance(env, GymnasiumRowsEnv)
    assert row_rule(env, "observe") is None and row_rule(env, "terminated") is None
    obs, reason = _gymnasium_says(env, model, datas[0])
    assert np.array_equal(env.observe(model, datas[0]), obs) and env.terminated(model, datas[0]) == reason


def test_envs_without_rules_are_asked_row_by_row():
    from simgate.envs.base import row_rule

    env, model, datas = _states("InvertedPendulum-v5", {}, n=2, steps=4)
    assert row_rule(env, "observe") is None and row_rule(env, "terminated") is None
    hopper, _, _ = _states("Hopper-v5", {}, n=1, steps=0)
    assert row_rule(hopper, "observe") == hopper.observe_rows


def test_state_fingerprint_sees_every_bit_and_position():
    states = np.random.default_rng(0).standard_normal((3, 50))
    base = state_hashes(states)
    assert len(set(base.tolist())) == 3
    assert np.array_equal(base[1:2], state_hashes(states[1:2]))  # a row's fingerprint does not depend on the others
    for position in (0, 17, 49):
        for bit in (0, 31, 32, 52, 63):  # lowest mantissa bit, both halves of the word, exponent, sign
            flipped = states.copy()
            flipped.view(np.uint64)[0, position] ^= np.uint64(1) << np.uint64(bit)
            assert state_hashes(flipped)[0] != base[0], (position, bit)
    swapped = states.copy()
    swapped[0, [3, 4]] = swapped[0, [4, 3]]
    assert state_hashes(swapped)[0] != base[0]
    mirrored = states.copy()  # x and -x trade places: the words differ in the sign bit alone
    mirrored[0, 4] = -mirrored[0, 3]
    again = mirrored.copy()
    again[0, [3, 4]] = again[0, [4, 3]]
    assert state_hashes(again)[0] != state_hashes(mirrored)[0]
    assert state_hashes(np.zeros((1, 4)))[0] != state_hashes(np.zeros((1, 5)))[0]
