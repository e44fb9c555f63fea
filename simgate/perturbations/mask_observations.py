"""MaskObservations: sensor channels replaced by a constant, always (proprioception ablation)
or on randomly chosen control steps (dropout of a sensor bus)."""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import field_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import EpisodeContext, Params, Perturbation


class MaskObservationsParams(Params):
    groups: list[str]  # observation groups to mask, names from the env's observation_groups
    value: float = 0.0  # what a masked channel reads
    probability: float = 1.0  # per control step; 1: masked throughout

    @field_validator("groups")
    @classmethod
    def _some(cls, value):
        if not value:
            raise ValueError(f"groups should name at least one observation group, received {value}")
        return value

    @field_validator("probability")
    @classmethod
    def _probability(cls, value):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"probability should be between 0 and 1, received {value}")
        return value


@dataclasses.dataclass
class _Mask:
    channels: list[int]
    masked: np.ndarray  # bool per control step


class MaskObservations(Perturbation):
    """All named groups drop out together on a masked step, each step independently."""

    kind = "mask_observations"
    stage = "observation"
    Params = MaskObservationsParams
    per_step_params = True  # the masked value is read per step from self.params

    def check(self, info):
        return unknown_names(self.params.groups, info.observation_groups, "observation group", "groups")

    def start(self, ctx: EpisodeContext) -> _Mask:
        groups = ctx.env.observation_groups()  # names were checked at configure time
        channels = sorted({c for g in self.params.groups for c in groups[g]})
        # drawn even at probability 1 so that the stream's use does not depend on the value
        masked = ctx.rng.random(ctx.n_steps) < self.params.probability
        return _Mask(channels, masked)

    def observation(self, obs: np.ndarray, state: _Mask, step: int) -> np.ndarray:
        if not state.masked[step]:
            return obs
        out = obs.copy()
        out[state.channels] = self.params.value
        return out

    def observation_rows(self, obs: np.ndarray, states: list, step: int) -> np.ndarray:
        rows = [i for i, s in enumerate(states) if s.masked[step]]
        if not rows:
            return obs
        out = obs.copy()
        out[np.ix_(rows, states[0].channels)] = self.params.value  # same groups, so same channels, in every episode
        return out
