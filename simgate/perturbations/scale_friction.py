"""ScaleFriction: a slippery (or grippier) world, per episode."""

from __future__ import annotations

from simgate.perturbations.base import EpisodeContext, Params, Perturbation, Sampled, draw, range_validator


class ScaleFrictionParams(Params):
    sliding: Sampled = 1.0
    torsional: Sampled = 1.0
    rolling: Sampled = 1.0
    geoms: list[str] | None = None  # None: every geom

    ranges_ok = range_validator("sliding", "torsional", "rolling")


class ScaleFriction(Perturbation):
    """Multiplies the nominal ``geom_friction`` columns. MuJoCo combines a contact's two geoms by
    taking the larger coefficient, so scaling every geom scales every contact."""

    kind = "scale_friction"
    stage = "model"
    Params = ScaleFrictionParams

    def start(self, ctx: EpisodeContext):
        import mujoco

        scales = [draw(getattr(self.params, axis), ctx.rng) for axis in ("sliding", "torsional", "rolling")]
        ids = slice(None)
        if self.params.geoms is not None:
            ids = [_geom_id(ctx.model, name, mujoco) for name in self.params.geoms]
        ctx.model.geom_friction[ids] = ctx.nominal.geom_friction[ids] * scales
        return scales


def _geom_id(model, name: str, mujoco) -> int:
    gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
    if gid < 0:
        from simgate.registry import did_you_mean

        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i) for i in range(model.ngeom)]
        raise ValueError(f"scale_friction: no geom named {name!r} in the model{did_you_mean(name, [n for n in names if n])}")
    return gid
