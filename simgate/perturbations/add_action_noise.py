"""AddActionNoise: Gaussian noise on every command (a noisy motor driver or DAC)."""

from __future__ import annotations

import numpy as np
from pydantic import field_validator

from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    per_action_length,
)


class AddActionNoiseParams(Params):
    #: standard deviation in action units: one value for every action, or a list by action index
    std: float | list[float]

    @field_validator("std")
    @classmethod
    def _non_negative(cls, value):
        if any(v < 0 for v in (value if isinstance(value, list) else [value])):
            raise ValueError(f"std should be ≥ 0, received {value}")
        return value


class AddActionNoise(Perturbation):
    kind = "add_action_noise"
    stage = "action"
    Params = AddActionNoiseParams

    def check(self, info):
        return per_action_length("std", self.params.std, info.action_size)

    def start(self, ctx: EpisodeContext) -> np.ndarray:
        std = np.broadcast_to(np.asarray(self.params.std, dtype=np.float64), (ctx.env.action_size,))
        # drawn up front so the noise at step t is the same whatever the policy did before t
        return ctx.rng.standard_normal((ctx.n_steps, ctx.env.action_size)) * std

    def action(self, action: np.ndarray, state: np.ndarray, step: int) -> np.ndarray:
        return action + state[step]

    def action_rows(self, actions: np.ndarray, states: list, step: int) -> np.ndarray:
        return actions + np.array([s[step] for s in states]).reshape(actions.shape)
