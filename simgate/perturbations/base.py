"""The contract every perturbation, built-in or third-party, follows."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

#: a parameter given as a fixed value or as ``[low, high]``, sampled uniformly per episode
Sampled = Union[float, tuple[float, float]]


class Params(BaseModel):
    """Base for perturbation parameter schemas: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_range(value: Sampled, low: float = 0.0, name: str = "value") -> Sampled:
    """Validate a Sampled parameter (each bound ≥ low, range ordered)."""
    bounds = value if isinstance(value, tuple) else (value,)
    if any(b < low for b in bounds):
        raise ValueError(f"{name} should be ≥ {low}, received {value}")
    if isinstance(value, tuple) and value[0] > value[1]:
        raise ValueError(f"a range should be [low, high] with low ≤ high, received {list(value)}")
    return value


def draw(value: Sampled, rng: np.random.Generator) -> float:
    """The episode's value of a Sampled parameter."""
    if isinstance(value, tuple):
        return float(rng.uniform(value[0], value[1]))
    return float(value)


@dataclasses.dataclass
class EpisodeContext:
    """What a perturbation sees when an episode starts."""

    env: Any
    model: Any  # this episode's MjModel (a copy of the nominal one)
    nominal: Any  # the nominal MjModel: read-only reference
    data: Any
    n_steps: int  # control steps in the horizon
    control_dt: float
    rng: np.random.Generator  # this perturbation's own stream for this episode


class Perturbation:
    """One kind of change to the world. Subclasses set ``kind``, ``stage`` and ``Params``,
    implement ``start`` and the per-step method of their stage."""

    kind: ClassVar[str] = ""
    stage: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params):
        self.params = params

    def start(self, ctx: EpisodeContext) -> Any:
        """Draw this episode's values and schedule from ``ctx.rng``; edit the model if this is a
        model perturbation. Returns the episode state handed to the per-step method."""
        return None

    def observation(self, obs: np.ndarray, state: Any, step: int) -> np.ndarray:
        return obs

    def action(self, action: np.ndarray, state: Any, step: int) -> np.ndarray:
        return action

    def force(self, model, data, state: Any, step: int) -> None:
        return None


def range_validator(*fields: str, low: float = 0.0):
    """A pydantic validator checking Sampled ``fields`` (bounds ≥ low, ordered)."""
    return field_validator(*fields)(classmethod(lambda cls, v, info: check_range(v, low, info.field_name)))
