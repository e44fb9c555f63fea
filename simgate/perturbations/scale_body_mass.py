"""ScaleBodyMass: a heavier (or lighter) robot, per episode."""

from __future__ import annotations

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    positive_validator,
)


class ScaleBodyMassParams(Params):
    scale: Sampled
    bodies: list[str] | None = None  # None: every body but the world

    scale_ok = positive_validator("scale")


class ScaleBodyMass(Perturbation):
    """Multiplies the mass and inertia of the bodies by one factor: each body becomes
    uniformly denser, so its centre of mass and its radius of gyration stay where they were."""

    kind = "scale_body_mass"
    stage = "model"
    Params = ScaleBodyMassParams

    def check(self, info):
        return unknown_names(self.params.bodies, info.bodies, "body", "bodies")

    def start(self, ctx: EpisodeContext) -> float:
        import mujoco

        scale = draw(self.params.scale, ctx.rng)
        ids = slice(1, None)  # body 0 is the world: it has no mass to scale
        if self.params.bodies is not None:  # names were checked at configure time
            ids = [mujoco.mj_name2id(ctx.model, mujoco.mjtObj.mjOBJ_BODY, name) for name in self.params.bodies]
        ctx.model.body_mass[ids] = ctx.model.body_mass[ids] * scale
        ctx.model.body_inertia[ids] = ctx.model.body_inertia[ids] * scale
        return scale
