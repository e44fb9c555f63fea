"""DelayActions: actuation latency, resolved at physics rate.

The ctrl applied at physics step ``k`` is the env's mapping (``env.apply_action``) of the action
commanded at the latest control step ``j`` with ``j * frame_skip <= k - d``, ``d`` being the delay
in physics steps. Before any action is that old, the robot runs on its idle control: the env's
mapping of its ``neutral_action`` (``env.idle_ctrl``), what a driver sends before any command
arrives. Not an all-zero action: under a mapping normalised to the joint range, zero commands
every joint to mid-range, a torque spike no real robot sees at start-up.

What is delayed is the ``ctrl`` the env wrote at each control step, after every control-rate
action perturbation (noise, clipping), so their order in the file does not matter.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    non_negative_validator,
)
from simgate.perturbations.timing import not_whole_message, whole_periods


class DelayActionsParams(Params):
    delay_ms: float  # milliseconds; a whole number of physics steps (checked against the env)

    delay_ok = non_negative_validator("delay_ms")


@dataclasses.dataclass
class _Latency:
    delay: int  # physics steps
    frame_skip: int
    idle: np.ndarray  # ctrl before any command is due: the env's mapping of its neutral action
    sent: np.ndarray  # (control steps, nu): the ctrl written at each control step


class DelayActions(Perturbation):
    kind = "delay_actions"
    stage = "action"
    Params = DelayActionsParams
    replaces_ctrl = True

    def check(self, info):
        if whole_periods(self.params.delay_ms / 1000, info.timestep) is None:
            return [("delay_ms", not_whole_message("delay_ms", self.params.delay_ms, info.timestep, "physics steps"))]
        return []

    def start(self, ctx: EpisodeContext) -> _Latency:
        delay = whole_periods(self.params.delay_ms / 1000, ctx.physics_dt)
        if delay is None:  # configure-time checks normally stop this first
            raise ValueError(not_whole_message("delay_ms", self.params.delay_ms, ctx.physics_dt, "physics steps"))
        idle = ctx.env.idle_ctrl(ctx.model, ctx.data)  # leaves the episode's ctrl and userdata as they are
        return _Latency(delay, ctx.frame_skip, idle, np.zeros((ctx.n_steps, ctx.model.nu)))

    def physics(self, model, data, state: _Latency, substep: int) -> None:
        if substep % state.frame_skip == 0:  # the env has just written this control step's command
            state.sent[substep // state.frame_skip] = data.ctrl
        j = (substep - state.delay) // state.frame_skip  # floor: negative until the first command is due
        data.ctrl[:] = state.sent[j] if j >= 0 else state.idle

    def physics_block(self, model, ctrl, xfrc, state: _Latency, first: int) -> None:
        fs, n = state.frame_skip, len(ctrl)
        # record first, while every row still holds the command: a step of this block reads at
        # most the control step it belongs to, so no row reads a command recorded after it
        for k in range(-first % fs, n, fs):
            state.sent[(first + k) // fs] = ctrl[k]
        k = 0
        while k < n:  # runs of steps due the same command: at most two in a control step
            lag = first + k - state.delay
            end = min(n, k + fs - lag % fs)
            ctrl[k:end] = state.sent[lag // fs] if lag >= 0 else state.idle
            k = end
