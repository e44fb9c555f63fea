"""SetGravity: another planet, a tilted floor seen from the robot, per episode."""

from __future__ import annotations

from pydantic import model_validator

from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    positive_validator,
)


class SetGravityParams(Params):
    scale: Sampled = 1.0  # times the nominal gravity vector: 1.62 / 9.81 for the Moon
    vector: tuple[float, float, float] | None = None  # m/s², replaces the nominal vector

    scale_ok = positive_validator("scale")

    @model_validator(mode="after")
    def _scale_or_vector(self):
        if self.vector is not None and "scale" in self.model_fields_set:
            raise ValueError(f"set_gravity should give scale or vector, not both; received scale {self.scale} "
                             f"and vector {list(self.vector)}")
        return self


class SetGravity(Perturbation):
    kind = "set_gravity"
    stage = "model"
    Params = SetGravityParams

    def start(self, ctx: EpisodeContext) -> list[float]:
        if self.params.vector is not None:
            ctx.model.opt.gravity[:] = self.params.vector
        else:
            ctx.model.opt.gravity[:] = ctx.model.opt.gravity * draw(self.params.scale, ctx.rng)
        return ctx.model.opt.gravity.tolist()
