"""DelayActions: actuation latency, resolved at physics rate.

The ctrl applied at physics step ``k`` is the env's mapping (``env.apply_action``) of the action
commanded at the latest control step ``j`` with ``j * frame_skip <= k - d``, ``d`` being the delay
in physics steps. Before any action is that old, the robot runs on its initial control: the env's
mapping of an all-zero action (a driver that has not yet received a command).

Physics-rate hooks run in the scenario file's order and this one rewrites the whole ``ctrl``
every physics step, so list it after the action perturbations whose output it should delay
(it delays what it receives) and before ``drop_motor`` (which would otherwise be overwritten).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from pydantic import field_validator

from simgate.perturbations.base import EpisodeContext, Params, Perturbation


def whole_periods(seconds: float, period: float) -> int | None:
    """``seconds`` as a count of ``period``, or None when it is not a whole number of them."""
    count = seconds / period
    # float noise only: 0.05 / 0.002 is 25.000000000000004
    return round(count) if abs(count - round(count)) < 1e-6 else None


def not_whole_message(param: str, ms: float, period: float, what: str) -> str:
    """Why ``ms`` is refused, with the two nearest values that would work."""
    count = ms / 1000 / period
    below, above = (n * period * 1000 for n in (math.floor(count), math.ceil(count)))
    return (f"{param} should be a whole number of {what} of {period * 1000:g} ms, received {ms:g}; "
            f"the nearest valid values are {below:g} and {above:g}")


class DelayActionsParams(Params):
    delay_ms: float  # milliseconds; a whole number of physics steps (checked against the env)

    @field_validator("delay_ms")
    @classmethod
    def _non_negative(cls, value):
        if value < 0:
            raise ValueError(f"delay_ms should be ≥ 0, received {value}")
        return value


@dataclasses.dataclass
class _Latency:
    delay: int  # physics steps
    frame_skip: int
    apply: object  # the env's action → ctrl mapping
    commanded: list  # the action of each control step, filled as the episode runs


class DelayActions(Perturbation):
    kind = "delay_actions"
    stage = "action"
    Params = DelayActionsParams

    def check(self, info):
        if whole_periods(self.params.delay_ms / 1000, info.timestep) is None:
            return [("delay_ms", not_whole_message("delay_ms", self.params.delay_ms, info.timestep, "physics steps"))]
        return []

    def start(self, ctx: EpisodeContext) -> _Latency:
        delay = whole_periods(self.params.delay_ms / 1000, ctx.physics_dt)
        if delay is None:  # configure-time checks normally stop this first
            raise ValueError(not_whole_message("delay_ms", self.params.delay_ms, ctx.physics_dt, "physics steps"))
        return _Latency(delay, ctx.frame_skip, ctx.env.apply_action, [None] * ctx.n_steps)

    def action(self, action: np.ndarray, state: _Latency, step: int) -> np.ndarray:
        state.commanded[step] = np.array(action, dtype=np.float64)  # a copy: the caller may reuse its array
        return action

    def physics(self, model, data, state: _Latency, substep: int) -> None:
        j = (substep - state.delay) // state.frame_skip  # floor: negative until the first command is due
        # step 0's action is recorded before the first physics step, so it gives the zero action's shape
        action = state.commanded[j] if j >= 0 else np.zeros_like(state.commanded[0])
        state.apply(model, data, action)
