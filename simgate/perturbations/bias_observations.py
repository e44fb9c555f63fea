"""BiasObservations: a constant sensor offset per episode (IMU or encoder calibration error)."""

from __future__ import annotations

import math

import numpy as np
from pydantic import field_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    check_range,
)


class BiasObservationsParams(Params):
    #: offset in observation units: one value or ``[low, high]`` for every channel, or per group
    #: (``{imu: [-0.02, 0.02]}``, group names from the env's observation_groups)
    bias: Sampled | dict[str, Sampled]

    @field_validator("bias")
    @classmethod
    def _ordered(cls, value):
        for v in value.values() if isinstance(value, dict) else [value]:
            check_range(v, -math.inf, "bias")  # an offset may be negative: only the order is checked
        return value


class BiasObservations(Perturbation):
    """Each channel draws its own offset from its range once per episode (calibration errors of
    different axes are independent); the same offset is then added at every step."""

    kind = "bias_observations"
    stage = "observation"
    Params = BiasObservationsParams

    def check(self, info):
        if not isinstance(self.params.bias, dict):
            return []
        return unknown_names(list(self.params.bias), info.observation_groups, "observation group", "bias")

    def start(self, ctx: EpisodeContext) -> np.ndarray:
        bias = np.zeros(ctx.env.observation_size)
        if isinstance(self.params.bias, dict):
            groups = ctx.env.observation_groups()
            for group, value in self.params.bias.items():  # names were checked at configure time
                bias[groups[group]] = _draw_each(value, len(groups[group]), ctx.rng)
        else:
            bias[:] = _draw_each(self.params.bias, len(bias), ctx.rng)
        return bias

    def observation(self, obs: np.ndarray, state: np.ndarray, step: int) -> np.ndarray:
        return obs + state

    def observation_rows(self, obs: np.ndarray, states: list, step: int) -> np.ndarray:
        return obs + np.array(states).reshape(obs.shape)


def _draw_each(value: Sampled, size: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(value, tuple):
        return rng.uniform(value[0], value[1], size)
    return np.full(size, float(value))
