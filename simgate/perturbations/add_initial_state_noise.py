"""AddInitialStateNoise: the robot starts a little off its nominal initial state."""

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


class AddInitialStateNoiseParams(Params):
    qpos_std: Sampled = 0.0  # joint units: rad for hinges, m for slides
    qvel_std: Sampled = 0.0  # rad/s or m/s
    joints: list[str] | None = None  # None: every hinge and slide joint

    ranges_ok = range_validator("qpos_std", "qvel_std")


class AddInitialStateNoise(Perturbation):
    """Adds Gaussian noise to the positions and velocities of the env's initial state (after
    its own ``reset``), so the noise comes on top of whatever spread the env already has.

    Only hinge and slide joints are perturbed: free and ball joints are skipped, named or not,
    because their positions hold unit quaternions, and adding noise to quaternion components
    gives a non-unit quaternion, i.e. no rotation at all until it is renormalised, and then
    not one of the configured size. Noise on a slide that holds the robot against the ground
    (a planar robot's height) starts it inside or above the floor, so name the joints.
    """

    kind = "add_initial_state_noise"
    stage = "state"
    Params = AddInitialStateNoiseParams

    def check(self, info):
        return unknown_names(self.params.joints, info.joints, "joint", "joints")

    def start(self, ctx: EpisodeContext) -> tuple[np.ndarray, np.ndarray]:
        """Perturbs ``ctx.data`` in place; returns the ``(qpos, qvel)`` noise it added."""
        qpos_adr, dof_adr = self._addresses(ctx.model)
        qpos_std, qvel_std = draw(self.params.qpos_std, ctx.rng), draw(self.params.qvel_std, ctx.rng)
        qpos_noise = ctx.rng.standard_normal(len(qpos_adr)) * qpos_std
        qvel_noise = ctx.rng.standard_normal(len(dof_adr)) * qvel_std
        ctx.data.qpos[qpos_adr] += qpos_noise
        ctx.data.qvel[dof_adr] += qvel_noise
        return qpos_noise, qvel_noise

    def _addresses(self, model) -> tuple[np.ndarray, np.ndarray]:
        """qpos and qvel addresses of the selected hinge and slide joints (one of each per joint)."""
        import mujoco

        # plain ints: a MuJoCo enum does not compare equal to a numpy integer inside `in`
        scalar = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        if self.params.joints is None:
            ids = range(model.njnt)
        else:  # names were checked at configure time
            ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) for name in self.params.joints]
        ids = [j for j in ids if int(model.jnt_type[j]) in scalar]
        return model.jnt_qposadr[ids], model.jnt_dofadr[ids]
