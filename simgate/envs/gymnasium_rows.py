"""Row-wise observation and health rules of gymnasium's v5 locomotion envs.

Gymnasium computes an observation or a health check for one ``MjData`` at a time. These are the
same formulas over ``(n, ...)`` arrays, one row per simulation; tests/test_gymnasium_rows.py
checks them against gymnasium's own methods bit for bit. For an env listed here they are the
adapter's rules in both engines (the reference engine asks them on a one-row view); an env not
listed here keeps gymnasium's own methods, which the batched engine asks row by row. The
functions read the env's own settings (``self._exclude_current_...``), so gym.make keyword
arguments are honoured.
"""

from __future__ import annotations

import numpy as np


def _hopper_walker_obs(env, data) -> np.ndarray:
    position = data.qpos[:, 1:] if env._exclude_current_positions_from_observation else data.qpos
    return np.concatenate((position, np.clip(data.qvel, -10, 10)), axis=1)


def _humanoid_obs(env, data) -> np.ndarray:
    n = data.qpos.shape[0]
    parts = [data.qpos[:, 2:] if env._exclude_current_positions_from_observation else data.qpos, data.qvel]
    if env._include_cinert_in_observation is True:
        parts.append(data.cinert[:, 1:].reshape(n, -1))
    if env._include_cvel_in_observation is True:
        parts.append(data.cvel[:, 1:].reshape(n, -1))
    if env._include_qfrc_actuator_in_observation is True:
        parts.append(data.qfrc_actuator[:, 6:].reshape(n, -1))
    return np.concatenate(parts, axis=1)


def _in(low: float, values: np.ndarray, high: float) -> np.ndarray:
    return (low < values) & (values < high)


def _hopper_healthy(env, data) -> np.ndarray:
    min_state, max_state = env._healthy_state_range
    state = np.concatenate((data.qpos, data.qvel), axis=1)[:, 2:]
    return (_in(min_state, state, max_state).all(axis=1) & _in(*env._healthy_z_range[:1], data.qpos[:, 1],
            env._healthy_z_range[1]) & _in(env._healthy_angle_range[0], data.qpos[:, 2], env._healthy_angle_range[1]))


def _walker_healthy(env, data) -> np.ndarray:
    (min_z, max_z), (min_angle, max_angle) = env._healthy_z_range, env._healthy_angle_range
    return _in(min_z, data.qpos[:, 1], max_z) & _in(min_angle, data.qpos[:, 2], max_angle)


def _humanoid_healthy(env, data) -> np.ndarray:
    min_z, max_z = env._healthy_z_range
    return _in(min_z, data.qpos[:, 2], max_z)


#: gymnasium class (module, name) -> (observation rule, health rule)
RULES = {
    ("gymnasium.envs.mujoco.hopper_v5", "HopperEnv"): (_hopper_walker_obs, _hopper_healthy),
    ("gymnasium.envs.mujoco.walker2d_v5", "Walker2dEnv"): (_hopper_walker_obs, _walker_healthy),
    ("gymnasium.envs.mujoco.humanoid_v5", "HumanoidEnv"): (_humanoid_obs, _humanoid_healthy),
}


def rules_for(gym_env) -> tuple | None:
    """The (observation, health) row rules of this gymnasium env, or None."""
    cls = type(gym_env)
    if getattr(gym_env, "_include_cfrc_ext_in_observation", False):
        # contact forces, filled by an extra mj_rnePostConstraint per step: no row rule reads them
        return None
    return RULES.get((cls.__module__, cls.__name__))
