"""DropMotor: one actuator goes dead for a while (a driver fault or brown-out), then recovers.

During the window, resolved at physics rate (start and duration rounded to the nearest physics
step), the actuator's ``ctrl`` is 0 at every physics step. The engines rewrite the command at
every physics step, so the motor recovers at the exact step the window ends; a latency
(``delay_actions``) is applied first, whatever the order in the file.
"""

from __future__ import annotations

import dataclasses

from pydantic import field_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    check_range,
    draw,
)


class DropMotorParams(Params):
    actuator: str  # actuator name in the model
    start: Sampled  # seconds from the episode start at which the motor dies
    duration: Sampled  # seconds it stays dead

    @field_validator("start")
    @classmethod
    def _start(cls, value):
        return check_range(value, 0.0, "start")

    @field_validator("duration")
    @classmethod
    def _duration(cls, value):
        bounds = value if isinstance(value, tuple) else (value,)
        if any(b <= 0 for b in bounds):
            raise ValueError(f"duration should be > 0 s, received {value}")
        return check_range(value, 0.0, "duration")  # for the order of a range


@dataclasses.dataclass
class _Window:
    actuator: int
    begin: int  # first dead physics step
    end: int  # first physics step after the window


class DropMotor(Perturbation):
    kind = "drop_motor"
    stage = "action"
    Params = DropMotorParams

    def check(self, info):
        return unknown_names([self.params.actuator], info.actuators, "actuator", "actuator")

    def start(self, ctx: EpisodeContext) -> _Window:
        import mujoco

        actuator = mujoco.mj_name2id(ctx.model, mujoco.mjtObj.mjOBJ_ACTUATOR, self.params.actuator)
        begin = round(draw(self.params.start, ctx.rng) / ctx.physics_dt)
        length = max(1, round(draw(self.params.duration, ctx.rng) / ctx.physics_dt))
        return _Window(actuator, begin, begin + length)

    def physics(self, model, data, state: _Window, substep: int) -> None:
        if state.begin <= substep < state.end:
            data.ctrl[state.actuator] = 0.0

    def physics_block(self, model, ctrl, xfrc, state: _Window, first: int) -> None:
        begin, end = max(state.begin - first, 0), min(state.end - first, len(ctrl))
        if begin < end:
            ctrl[begin:end, state.actuator] = 0.0
