"""ScaleFriction: a slippery (or grippier) world, per episode."""

from __future__ import annotations

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    range_validator,
)


class ScaleFrictionParams(Params):
    sliding: Sampled = 1.0
    torsional: Sampled = 1.0
    rolling: Sampled = 1.0
    geoms: list[str] | None = None  # None: every geom

    ranges_ok = range_validator("sliding", "torsional", "rolling")


class ScaleFriction(Perturbation):
    """Multiplies the ``geom_friction`` columns. MuJoCo combines a contact's two geoms by
    taking the larger coefficient, so scaling every geom scales every contact."""

    kind = "scale_friction"
    stage = "model"
    Params = ScaleFrictionParams

    def check(self, info):
        return unknown_names(self.params.geoms, info.geoms, "geom", "geoms")

    def start(self, ctx: EpisodeContext):
        import mujoco

        scales = [draw(getattr(self.params, axis), ctx.rng) for axis in ("sliding", "torsional", "rolling")]
        ids = slice(None)
        if self.params.geoms is not None:  # names were checked at configure time
            ids = [mujoco.mj_name2id(ctx.model, mujoco.mjtObj.mjOBJ_GEOM, name) for name in self.params.geoms]
        ctx.model.geom_friction[ids] = ctx.model.geom_friction[ids] * scales
        return scales
