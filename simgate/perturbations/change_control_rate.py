"""ChangeControlRate: the policy runs at another rate than the env's nominal one.

It applies to the whole case (the engine sets the physics steps per control step from it) and
has no per-step effect. The policy keeps seeing the same observation layout; velocities come
from sensors, not from differencing successive observations, so they stay consistent in time at
any rate. An env whose reward assumes its nominal rate (a per-step sum scaled by
``1 / control_hz``) scales its return by the rate ratio.
"""

from __future__ import annotations

import math

from pydantic import field_validator

from simgate.envs.base import frame_skip_for
from simgate.perturbations.base import Params, Perturbation


class ChangeControlRateParams(Params):
    hz: float  # control steps per simulated second

    @field_validator("hz")
    @classmethod
    def _positive(cls, value):
        if value <= 0:
            raise ValueError(f"hz should be > 0, received {value}")
        return value


def nearby_rates(hz: float, timestep: float) -> list[float]:
    """Valid rates around ``hz``: the nearest round ones below and above (divisors of the physics
    rate), else the two nearest of the form physics_rate / n."""
    steps = 1.0 / (hz * timestep)
    near = [1.0 / (n * timestep) for n in {max(1, math.floor(steps)), max(1, math.ceil(steps))}]
    physics_hz = 1.0 / timestep
    round_rates = [r for n in range(1, max(2, 4 * math.ceil(steps)) + 1)
                   if abs((r := physics_hz / n) - round(r)) < 1e-9 * physics_hz]
    below = [r for r in round_rates if r < hz]
    above = [r for r in round_rates if r > hz]
    chosen = ([max(below)] if below else []) + ([min(above)] if above else [])
    return sorted({round(r, 6) for r in (chosen or near)})


class ChangeControlRate(Perturbation):
    kind = "change_control_rate"
    stage = "action"
    Params = ChangeControlRateParams

    def check(self, info):
        try:
            frame_skip_for(self.params.hz, info.timestep, info.name)  # the engine's own criterion
        except ValueError:
            steps = 1.0 / (self.params.hz * info.timestep)
            rates = ", ".join(f"{r:g}" for r in nearby_rates(self.params.hz, info.timestep))
            return [("hz", f"hz should make the control period a whole number of physics steps of "
                           f"{info.timestep:g} s (physics at {1 / info.timestep:g} Hz), received {self.params.hz:g} "
                           f"({steps:.4g} steps); rates that work nearby: {rates} Hz")]
        return []

    def control_hz(self, nominal_hz: float) -> float:
        return self.params.hz
