"""TiltGround: the robot stands on a slope, per episode."""

from __future__ import annotations

import math
from typing import Literal, Union

import numpy as np
from pydantic import field_validator

from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    unit_direction,
)

MAX_ANGLE = 45.0  # degrees; steeper is a wall to climb, not a slope to stand on


class TiltGroundParams(Params):
    angle: Sampled  # degrees; positive: the ground rises towards +direction
    direction: Union[Literal["x", "y"], tuple[float, float]] = "x"  # in the ground plane

    @field_validator("angle")
    @classmethod
    def _not_a_wall(cls, value):
        bounds = value if isinstance(value, tuple) else (value,)
        shown = list(value) if isinstance(value, tuple) else value
        if any(not abs(b) < MAX_ANGLE for b in bounds):
            raise ValueError(f"angle should be between -{MAX_ANGLE:g} and {MAX_ANGLE:g} degrees (exclusive), "
                             f"received {shown}")
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError(f"angle should be [min, max] with min ≤ max, received {shown}")
        return value

    @field_validator("direction", mode="before")
    @classmethod
    def _known(cls, value):
        # one message instead of one per member of the union
        if not (value in ("x", "y") or isinstance(value, (list, tuple)) and len(value) == 2):
            raise ValueError(f"direction should be 'x', 'y' or an [x, y] vector in the ground plane, "
                             f"received {value!r}")
        return value

    @field_validator("direction")
    @classmethod
    def _unit(cls, value):
        return unit_direction(value, "'x', 'y' or a non-zero [x, y] vector")


class TiltGround(Perturbation):
    """A slope of ``angle`` degrees rising along ``direction``, made by rotating gravity.

    For a rigid robot on an infinite flat plane this is the same physics as tilting the plane:
    in the plane's frame gravity has a component ``g·sin θ`` down the slope and ``g·cos θ``
    into it, which is exactly the rotated gravity vector here. Limits of the equivalence:

    * the world frame is the slope's frame, so anything the model reads in world coordinates
      is relative to the slope, not to true vertical: a ``framequat`` orientation sensor reports
      the tilt relative to the ground (a real IMU fusing its accelerometer would not), and
      ``z`` is height above the slope;
    * the floor stays flat in the world frame and only gravity turns, so terrain features,
      stairs or objects placed in the world turn with the "ground" rather than staying level;
    * anything else that depends on gravity's direction (buoyancy, a hanging cable) tilts too.

    It rotates gravity as the earlier model perturbations of the episode left it: a
    ``set_gravity`` listed before it gives a slope on the Moon; one listed after replaces the tilt.
    """

    kind = "tilt_ground"
    stage = "model"
    Params = TiltGroundParams

    def start(self, ctx: EpisodeContext) -> float:
        angle = draw(self.params.angle, ctx.rng)
        # this episode's gravity, not the nominal one, so a set_gravity listed earlier composes
        ctx.model.opt.gravity[:] = tilted(np.array(ctx.model.opt.gravity, dtype=float), self._uphill(), angle)
        return angle

    def _uphill(self) -> np.ndarray:
        """The unit vector, in the ground plane, along which the ground rises."""
        d = self.params.direction
        if isinstance(d, str):
            return np.array([1.0, 0.0, 0.0]) if d == "x" else np.array([0.0, 1.0, 0.0])
        return np.array([d[0], d[1], 0.0])


def tilted(gravity: np.ndarray, uphill: np.ndarray, degrees: float) -> np.ndarray:
    """``gravity`` as felt on ground tilted by ``degrees`` rising along ``uphill``: rotated about
    the horizontal axis ``z × uphill`` so that, for gravity along -z, a positive angle adds a
    down-slope component along -uphill."""
    theta = math.radians(degrees)
    axis = np.cross([0.0, 0.0, 1.0], uphill)
    # Rodrigues; the axis is perpendicular to a vertical gravity, but not to an arbitrary one
    return (gravity * math.cos(theta) + np.cross(axis, gravity) * math.sin(theta)
            + axis * axis.dot(gravity) * (1.0 - math.cos(theta)))
