"""DelayObservations: the policy sees stale sensor readings (bus or filter latency).

At control step ``t`` the policy sees the observation of step ``t - k``, ``k`` being the delay in
control periods. Before step ``k`` no reading is that old, so it sees the episode's first
observation (a sensor that reports its first sample until the pipeline fills). ``groups``
delays only those channels; the others stay current.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    non_negative_validator,
)
from simgate.perturbations.timing import not_whole_message, whole_periods


class DelayObservationsParams(Params):
    delay_ms: float  # milliseconds; a whole number of control periods (checked against the env)
    groups: list[str] | None = None  # observation groups to delay; None: every channel

    delay_ok = non_negative_validator("delay_ms")


@dataclasses.dataclass
class _Pipeline:
    channels: list[int] | slice
    readings: collections.deque  # the last delay + 1 observations, oldest first


class DelayObservations(Perturbation):
    kind = "delay_observations"
    stage = "observation"
    Params = DelayObservationsParams

    def check(self, info):
        problems = unknown_names(self.params.groups, info.observation_groups, "observation group", "groups")
        # the nominal rate: a change_control_rate in the same case is caught when the episode starts
        if whole_periods(self.params.delay_ms / 1000, 1 / info.control_hz) is None:
            problems.append(("delay_ms", not_whole_message("delay_ms", self.params.delay_ms, 1 / info.control_hz,
                                                           "control periods")))
        return problems

    def start(self, ctx: EpisodeContext) -> _Pipeline:
        delay = whole_periods(self.params.delay_ms / 1000, ctx.control_dt)
        if delay is None:
            raise ValueError(not_whole_message("delay_ms", self.params.delay_ms, ctx.control_dt, "control periods"))
        channels = slice(None)
        if self.params.groups is not None:  # names were checked at configure time
            groups = ctx.env.observation_groups()
            channels = sorted({c for g in self.params.groups for c in groups[g]})
        return _Pipeline(channels, collections.deque(maxlen=delay + 1))

    def observation(self, obs: np.ndarray, state: _Pipeline, step: int) -> np.ndarray:
        if not state.readings:  # the first reading stands in for those from before the episode
            state.readings.extend([obs.copy()] * (state.readings.maxlen - 1))
        state.readings.append(obs.copy())
        out = obs.copy()
        out[state.channels] = state.readings[0][state.channels]
        return out
