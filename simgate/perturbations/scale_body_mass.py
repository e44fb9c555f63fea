"""ScaleBodyMass: a heavier (or lighter) robot, per episode."""

from __future__ import annotations

from pydantic import field_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import EpisodeContext, Params, Perturbation, Sampled, check_range, draw


def check_positive(value: Sampled, name: str) -> Sampled:
    """Validate a Sampled factor that must stay > 0 (a zero mass or gear breaks the physics)."""
    bounds = value if isinstance(value, tuple) else (value,)
    if any(b <= 0 for b in bounds):
        shown = list(value) if isinstance(value, tuple) else value
        raise ValueError(f"{name} should be > 0, received {shown}")
    return check_range(value, 0.0, name)


def positive_validator(*fields: str):
    """A pydantic validator checking Sampled ``fields`` (bounds > 0, range ordered)."""
    return field_validator(*fields)(classmethod(lambda cls, v, info: check_positive(v, info.field_name)))


class ScaleBodyMassParams(Params):
    scale: Sampled
    bodies: list[str] | None = None  # None: every body but the world

    scale_ok = positive_validator("scale")


class ScaleBodyMass(Perturbation):
    """Multiplies the nominal mass and inertia of the bodies by one factor: each body becomes
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
        ctx.model.body_mass[ids] = ctx.nominal.body_mass[ids] * scale
        ctx.model.body_inertia[ids] = ctx.nominal.body_inertia[ids] * scale
        return scale
