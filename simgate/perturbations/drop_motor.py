"""DropMotor: one actuator goes dead for a while (a driver fault or brown-out), then recovers.

During the window, resolved at physics rate (start and duration rounded to the nearest physics
step), the actuator's ``ctrl`` is 0. When the window ends between two control steps, the value
it replaced is put back, so the motor recovers at the physics step the window ends rather than
at the next command. Physics-rate hooks run in the scenario file's order: list this one after
``delay_actions``, which rewrites the whole ``ctrl`` every physics step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import field_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import EpisodeContext, Params, Perturbation, Sampled, check_range, draw

#: what this perturbation writes: zero force like +0.0, but its sign bit tells "still our value"
#: apart from a fresh +0.0 that the env or a delay wrote in the meantime
_DEAD = -0.0


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
    replaced: float = 0.0  # the live ctrl the window hides
    holding: bool = False  # ctrl holds our _DEAD unless someone rewrote it


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
        if substep < state.begin or (substep >= state.end and not state.holding):
            return
        i = state.actuator
        ours = state.holding and data.ctrl[i] == 0.0 and np.signbit(data.ctrl[i])
        if not ours:  # the env or a delay wrote a fresh command since the last physics step
            state.replaced = float(data.ctrl[i])
        if substep < state.end:
            data.ctrl[i], state.holding = _DEAD, True
        else:
            if ours:
                data.ctrl[i] = state.replaced
            state.holding = False
