"""Gymnasium's MuJoCo environments by id, run by simgate's engines.

The engine owns the model, the data and the loop; the adapter points the gymnasium env at the
engine's ``(model, data)`` and reuses its observation, reset distribution and health rule. The
task is survival: success is reaching the horizon without a termination.

Each rule has one implementation, as :class:`~simgate.envs.base.MujocoEnv` requires. For most
tasks it is gymnasium's own per-episode method (``_get_obs``, ``is_healthy``), which the batched
engine asks row by row. For the tasks with row rules in :mod:`simgate.envs.gymnasium_rows`
(Hopper, Walker2d, Humanoid without contact forces) the adapter is a :class:`GymnasiumRowsEnv`,
whose rules are those row rules only: both engines compute them, never gymnasium's methods.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from simgate.envs.base import MujocoEnv
from simgate.envs.gymnasium_rows import rules_for


class GymnasiumEnv(MujocoEnv):
    """A gymnasium MuJoCo task by id; its per-step rules are gymnasium's per-episode methods.
    Built for a task with row rules, the object is a :class:`GymnasiumRowsEnv` instead."""

    progress_unit = "m"  # progress is the root's forward displacement

    def __init__(self, env_id: str, **kwargs):
        import gymnasium as gym

        self.name = env_id
        self.gym = gym.make(env_id, **kwargs).unwrapped
        self.observation_size = int(self.gym.observation_space.shape[0])
        self.action_size = int(self.gym.action_space.shape[0])
        self.control_hz = 1.0 / self.gym.dt
        self.rows = rules_for(self.gym)
        self._lock = threading.RLock()
        # kept apart from the gymnasium object, which is pointed at each episode's (perturbed)
        # model in turn: an engine built after another ran must still get the nominal one
        self._nominal = self.gym.model
        if self.rows is not None and type(self) is GymnasiumEnv:
            # the task's rules exist over rows: then they are its only implementation (the
            # per-episode methods of GymnasiumEnv would be a second one)
            self.__class__ = GymnasiumRowsEnv

    def build_model(self):
        return self._nominal

    def build_spec(self):
        import mujoco

        return mujoco.MjSpec.from_file(self.gym.fullpath)

    def frame_skip(self, model) -> int:
        return int(self.gym.frame_skip)

    @contextlib.contextmanager
    def _bound(self, model, data):
        """The gymnasium env pointed at this (model, data). One gymnasium object serves every
        episode, and the batched engine runs lanes in threads: the lock keeps one binding at a time."""
        with self._lock:
            before = self.gym.model, self.gym.data
            self.gym.model, self.gym.data = model, data
            try:
                yield self.gym
            finally:
                self.gym.model, self.gym.data = before

    def reset(self, model, data, rng: np.random.Generator) -> None:
        with self._bound(model, data) as gym_env:
            gym_env.np_random = rng
            gym_env.reset_model()

    def observe(self, model, data) -> np.ndarray:
        import mujoco

        with self._bound(model, data) as gym_env:
            if getattr(gym_env, "_include_cfrc_ext_in_observation", False):
                mujoco.mj_rnePostConstraint(model, data)  # gymnasium fills cfrc_ext this way after each step
            return np.asarray(gym_env._get_obs(), dtype=np.float64)

    def terminated(self, model, data) -> str | None:
        if hasattr(type(self.gym), "is_healthy"):  # on the class: hasattr on the instance evaluates it
            # the flag first: is_healthy costs more than the rest of a control step's bookkeeping
            if not getattr(self.gym, "_terminate_when_unhealthy", True):
                return None
            with self._bound(model, data) as gym_env:
                return None if gym_env.is_healthy else "fell"
        if self.name.startswith("InvertedPendulum"):
            return "fell" if abs(data.qpos[1]) > 0.2 else None
        if self.name.startswith("InvertedDoublePendulum"):
            return "fell" if data.site_xpos[0][2] <= 1 else None
        return None

    def progress(self, model, data) -> float:
        return float(data.qpos[0] - self.gym.init_qpos[0])


class GymnasiumRowsEnv(GymnasiumEnv):
    """A gymnasium task whose observation and health rules exist over rows
    (:mod:`simgate.envs.gymnasium_rows`, checked against gymnasium's methods bit for bit): those
    are its rules, in both engines; the per-episode forms are derived from them."""

    observe = MujocoEnv.observe
    terminated = MujocoEnv.terminated

    def observe_rows(self, model, data) -> np.ndarray:
        return self.rows[0](self.gym, data)

    def terminated_rows(self, model, data) -> list[str | None]:
        if not getattr(self.gym, "_terminate_when_unhealthy", True):
            return [None] * len(data.qpos)
        return [None if healthy else "fell" for healthy in self.rows[1](self.gym, data)]
