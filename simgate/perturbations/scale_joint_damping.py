"""ScaleJointDamping: stiffer or looser joints (worn bearings, cold grease), per episode."""

from __future__ import annotations

import numpy as np

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    range_validator,
)


class ScaleJointDampingParams(Params):
    damping: Sampled = 1.0
    armature: Sampled = 1.0
    frictionloss: Sampled = 1.0
    joints: list[str] | None = None  # None: every joint

    ranges_ok = range_validator("damping", "armature", "frictionloss")


class ScaleJointDamping(Perturbation):
    """Multiplies this episode's ``dof_damping``, ``dof_armature`` and ``dof_frictionloss`` of every
    degree of freedom of the joints (a free joint has six, a ball joint three)."""

    kind = "scale_joint_damping"
    stage = "model"
    Params = ScaleJointDampingParams

    def check(self, info):
        return unknown_names(self.params.joints, info.joints, "joint", "joints")

    def start(self, ctx: EpisodeContext) -> list[float]:
        scales = [draw(getattr(self.params, field), ctx.rng) for field in ("damping", "armature", "frictionloss")]
        dofs = self._dofs(ctx.model)
        for field, scale in zip(("dof_damping", "dof_armature", "dof_frictionloss"), scales):
            getattr(ctx.model, field)[dofs] = getattr(ctx.model, field)[dofs] * scale
        return scales

    def _dofs(self, model) -> np.ndarray | slice:
        import mujoco

        if self.params.joints is None:
            return slice(None)
        # names were checked at configure time
        joints = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) for name in self.params.joints]
        return np.flatnonzero(np.isin(model.dof_jntid, joints))
