"""AddObservationNoise: sensor noise, drawn for the whole episode at its start: Gaussian, or as a
policy's contract states it per term (Gaussian or uniform)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import field_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import EpisodeContext, Params, Perturbation


class AddObservationNoiseParams(Params):
    #: standard deviation in observation units: one value for every channel, per group
    #: (``{imu: 0.01, encoders: 0.001}``, group names from the env's observation_groups), or
    #: ``contract``: the noise the policy's training added, as its contract states it per term
    std: float | dict[str, float] | Literal["contract"]
    scale: float = 1.0  # multiplies std; a matrix sweep over it gives 1×, 3×, ...

    @field_validator("std", "scale")
    @classmethod
    def _non_negative(cls, value, info):
        if value == "contract":
            return value
        values = value.values() if isinstance(value, dict) else [value]
        if any(v < 0 for v in values):
            raise ValueError(f"{info.field_name} should be ≥ 0, received {value}")
        return value


class AddObservationNoise(Perturbation):
    kind = "add_observation_noise"
    stage = "observation"
    Params = AddObservationNoiseParams

    def check(self, info):
        if not isinstance(self.params.std, dict):
            return []
        return unknown_names(list(self.params.std), info.observation_groups, "observation group", "std")

    def start(self, ctx: EpisodeContext) -> np.ndarray:
        size = ctx.env.observation_size
        std = np.zeros(size)
        uniform = None
        if self.params.std == "contract":
            trained = getattr(ctx.env, "observation_noise", None)
            if trained is None:
                raise ValueError(f"add_observation_noise std: contract needs a YAML robot driven through a policy "
                                 f"contract (its terms' noise:); env {ctx.env.name!r} has none: give std in numbers")
            std[:], uniform = trained()
        elif isinstance(self.params.std, dict):
            groups = ctx.env.observation_groups()
            for group, value in self.params.std.items():  # names were checked at configure time
                std[groups[group]] = value
        else:
            std[:] = self.params.std
        # drawn up front so the noise at step t is the same whatever the policy did before t
        noise = ctx.rng.standard_normal((ctx.n_steps, size)) * (std * self.params.scale)
        if uniform is not None and uniform.any():  # a contract's uniform terms (Isaac Lab's Unoise)
            drawn = ctx.rng.uniform(-1.0, 1.0, (ctx.n_steps, size)) * (uniform * self.params.scale)
            noise = np.where(uniform > 0, drawn, noise)
        return noise

    def observation(self, obs: np.ndarray, state: np.ndarray, step: int) -> np.ndarray:
        return obs + state[step]

    def observation_rows(self, obs: np.ndarray, states: list, step: int) -> np.ndarray:
        return obs + np.array([s[step] for s in states]).reshape(obs.shape)
