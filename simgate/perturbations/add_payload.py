"""AddPayload: an extra mass carried by one body (a parcel, a bigger battery), per episode."""

from __future__ import annotations

from pydantic import field_validator, model_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    check_range,
    draw,
)


class AddPayloadParams(Params):
    body: str
    mass: Sampled | None = None  # kg
    fraction: Sampled | None = None  # of the robot's total mass (every body but the world)

    @field_validator("mass", "fraction")
    @classmethod
    def _non_negative(cls, value, info):
        return value if value is None else check_range(value, 0.0, info.field_name)

    @model_validator(mode="after")
    def _one_amount(self):
        if (self.mass is None) == (self.fraction is None):
            given = "both" if self.mass is not None else "neither"
            raise ValueError("add_payload should give exactly one of mass (kg) or fraction (of the robot's "
                             f"total mass), received {given}")
        return self


class AddPayload(Perturbation):
    """Adds mass at the body's centre of mass. The body's inertia grows by the same ratio as its
    mass, as if the body were uniformly denser: a payload spread like the body itself, rather than
    a point mass, which would leave the inertia unchanged only at the exact centre."""

    kind = "add_payload"
    stage = "model"
    Params = AddPayloadParams

    def check(self, info):
        if self.params.body == "world":
            return [("body", "the world body is fixed and cannot carry a payload; name a body of the robot")]
        return unknown_names([self.params.body], info.bodies, "body", "body")

    def start(self, ctx: EpisodeContext) -> float:
        import mujoco

        body = mujoco.mj_name2id(ctx.model, mujoco.mjtObj.mjOBJ_BODY, self.params.body)
        mass = float(ctx.model.body_mass[body])
        if mass <= 0:
            # a massless body has no inertia to scale, and a point payload would give it none
            raise ValueError(f"add_payload: body {self.params.body!r} has no mass; "
                             "put the payload on a body that has some")
        payload = self._payload(ctx)
        ctx.model.body_mass[body] = mass + payload
        ctx.model.body_inertia[body] = ctx.model.body_inertia[body] * ((mass + payload) / mass)
        return payload

    def _payload(self, ctx: EpisodeContext) -> float:
        """This episode's payload in kg."""
        if self.params.mass is not None:
            return draw(self.params.mass, ctx.rng)
        robot_mass = float(ctx.model.body_mass[1:].sum())  # body 0 is the world
        return draw(self.params.fraction, ctx.rng) * robot_mass
