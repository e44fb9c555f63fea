"""ScaleMotorStrength: weaker (or stronger) motors, per episode."""

from __future__ import annotations

from typing import Literal

import numpy as np

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    positive_validator,
)


class ScaleMotorStrengthParams(Params):
    scale: Sampled
    actuators: list[str] | None = None  # None: every actuator
    #: ``force_limit``: the motor saturates at scale × its nominal maximum force (a worn or
    #: under-powered motor: full strength for small commands, less at the peak);
    #: ``gear``: every command gives scale × the nominal torque (a wrong gear ratio)
    mode: Literal["force_limit", "gear"] = "force_limit"

    scale_ok = positive_validator("scale")


class ScaleMotorStrength(Perturbation):
    """``force_limit`` caps ``actuator_force`` (before the gear), so the torque at the joint,
    force × gear, can never exceed scale × the nominal maximum. The nominal maximum is the
    ``forcerange`` of a force-limited actuator, else ``|gain| × max|ctrlrange|``, which is exact
    for a motor; a servo whose force depends on its position error needs a ``forcerange``."""

    kind = "scale_motor_strength"
    stage = "model"
    Params = ScaleMotorStrengthParams

    def check(self, info):
        return unknown_names(self.params.actuators, info.actuators, "actuator", "actuators")

    def start(self, ctx: EpisodeContext) -> float:
        scale = draw(self.params.scale, ctx.rng)
        ids = self._ids(ctx.model)
        if self.params.mode == "gear":
            ctx.model.actuator_gear[ids] = ctx.model.actuator_gear[ids] * scale
        else:
            ctx.model.actuator_forcerange[ids] = force_range(ctx.model, ids) * scale
            ctx.model.actuator_forcelimited[ids] = True
        return scale

    def _ids(self, model) -> list[int]:
        import mujoco

        if self.params.actuators is None:
            return list(range(model.nu))
        # names were checked at configure time
        return [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name) for name in self.params.actuators]


def force_range(model, ids: list[int]) -> np.ndarray:
    """``[low, high]`` force of each actuator as the model stands, one row per id."""
    out = np.empty((len(ids), 2))
    for row, i in enumerate(ids):
        if model.actuator_forcelimited[i]:
            out[row] = model.actuator_forcerange[i]
        elif model.actuator_ctrllimited[i]:
            peak = abs(model.actuator_gainprm[i, 0]) * np.abs(model.actuator_ctrlrange[i]).max()
            out[row] = (-peak, peak)
        else:
            # without either limit there is no maximum to scale, and a zero cap would silently
            # switch the motor off
            raise ValueError(f"scale_motor_strength: actuator {model.actuator(i).name!r} has neither a "
                             "forcerange nor a ctrlrange, so its nominal maximum force is unknown; give it "
                             "one, or use mode: gear")
    return out
