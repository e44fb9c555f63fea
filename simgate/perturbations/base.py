"""The contract every perturbation, built-in or third-party, follows."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

#: a parameter given as a fixed value or as ``[low, high]``, sampled uniformly per episode
Sampled = Union[float, tuple[float, float]]


class Params(BaseModel):
    """Base for perturbation parameter schemas: unknown keys are errors, and so is a NaN or an
    infinity (a NaN scale or bound compares false with everything and silently changes nothing).
    Scenario files are validated strictly ("0.5" is not a number) by simgate's loader."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
    model: Any  # this episode's MjModel (a copy of the nominal one): edit it in the model stage
    nominal: Any  # the nominal MjModel: read-only reference values
    data: Any
    n_steps: int  # control steps in the horizon
    control_dt: float
    frame_skip: int  # physics steps per control step
    rng: np.random.Generator  # this perturbation's own stream for this episode

    @property
    def physics_dt(self) -> float:
        return self.control_dt / self.frame_skip


class Perturbation:
    """One kind of change to the world.

    Subclasses set ``kind`` (the YAML name), ``stage`` (where it acts: ``spec``, ``model``,
    ``state``, ``observation``, ``action`` or ``force``; see :mod:`simgate.perturbations` for the
    order) and ``Params`` (a pydantic schema), then override the methods of their stage. Every
    random draw comes from ``ctx.rng`` in ``start``, so an episode's world is fixed when it begins.
    """

    kind: ClassVar[str] = ""
    stage: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    #: true for a kind whose per-step methods read ``self.params`` (not only the episode state
    #: ``start`` returned): a search cannot vary its params per episode (simgate.search.space)
    per_step_params: ClassVar[bool] = False

    def __init__(self, params: Params):
        self.params = params

    # -- configure time ----------------------------------------------------------------------
    def check(self, info) -> list[tuple[str, str]]:
        """Problems with these params on this env (:class:`simgate.envs.info.EnvInfo`), as
        ``(param, message)`` pairs; found before any episode runs. Default: none."""
        return []

    # -- once per case -----------------------------------------------------------------------
    def edit_spec(self, spec) -> None:
        """``spec`` stage: change the model's structure (``mujoco.MjSpec``) before it compiles."""

    def control_hz(self, nominal_hz: float) -> float | None:
        """The control rate this perturbation imposes, or None to keep the env's."""
        return None

    # -- once per episode --------------------------------------------------------------------
    def start(self, ctx: EpisodeContext) -> Any:
        """Draw this episode's values and schedule from ``ctx.rng``; edit ``ctx.model`` if this
        is a model perturbation. Returns the episode state handed to the per-step methods."""
        return None

    # -- every control step ------------------------------------------------------------------
    def observation(self, obs: np.ndarray, state: Any, step: int) -> np.ndarray:
        """``observation`` stage: what the policy sees at control step ``step``."""
        return obs

    def action(self, action: np.ndarray, state: Any, step: int) -> np.ndarray:
        """``action`` stage: what is commanded at control step ``step``."""
        return action

    # The batched engine calls these with every live episode of a case at once: ``obs`` or
    # ``actions`` is ``(n, size)``, ``states`` the n episodes' states in the same order. They
    # must equal the per-episode methods row by row, bit for bit; the defaults ask row by row,
    # a kind overrides them when a few numpy operations do the same.
    def observation_rows(self, obs: np.ndarray, states: list, step: int) -> np.ndarray:
        return np.stack([self.observation(o, s, step) for o, s in zip(obs, states)]) if len(states) else obs

    def action_rows(self, actions: np.ndarray, states: list, step: int) -> np.ndarray:
        return np.stack([self.action(a, s, step) for a, s in zip(actions, states)]) if len(states) else actions

    # -- every physics step ------------------------------------------------------------------
    #: true for a physics-rate hook that replaces the whole command (latency): it runs before
    #: hooks that edit part of it (a dead motor), whatever the order in the file
    replaces_ctrl: ClassVar[bool] = False

    def physics(self, model, data, state: Any, substep: int) -> None:
        """``force`` and ``action`` stages: plan physics step ``substep`` (counted from the
        episode start). ``data`` holds only ``ctrl`` (reset to the command at every physics
        step) and ``xfrc_applied`` (as the previous physics step left it): write them from the
        episode state. Hooks are schedules: they cannot read the evolving physics, which is
        what lets every engine plan a control step's physics steps before running them
        (see :mod:`simgate.engine.substeps`)."""

    #: Optional, a faster form of ``physics`` for a whole control step:
    #: ``physics_block(self, model, ctrl, xfrc, state, first) -> None``, with ``ctrl`` of shape
    #: ``(frame_skip, nu)`` and ``xfrc`` of shape ``(frame_skip, nbody, 6)``; row ``k`` is physics
    #: step ``first + k``. It writes in place what ``physics`` would write at each of those steps.
    #: The engines use it only when every physics-rate hook of the episode has one (and only from
    #: the class that also defines the ``physics`` in use: a subclass overriding ``physics`` alone
    #: keeps the per-step path); ``physics`` stays the reference, and must be kept.
    #:
    #: In a block every row of ``ctrl`` starts as the command and every row of ``xfrc`` as the
    #: forces the previous control step left, whereas per step ``xfrc`` carries over from the step
    #: before and each hook runs at step k before the next hook does. Both give the same bits only
    #: if the hook (1) writes the same ``xfrc`` entries at every physics step, whatever the step
    #: (zero outside its schedule rather than leaving the entry alone: it never relies on a value
    #: it wrote at an earlier step persisting, since in a block every step starts from the control
    #: step's starting forces; ``ctrl`` is the command again at every step in both forms, so an
    #: edit of ``ctrl`` may be limited to some steps), and (2) reads no entry another hook writes,
    #: except the command in ``ctrl`` for a ``replaces_ctrl`` hook (which runs first). Like
    #: ``physics``, it writes from the episode state alone.
    physics_block: ClassVar[Any] = None


def range_validator(*fields: str, low: float = 0.0):
    """A pydantic validator checking Sampled ``fields`` (bounds ≥ low, ordered)."""
    return field_validator(*fields)(classmethod(lambda cls, v, info: check_range(v, low, info.field_name)))


def check_positive(value: Sampled, name: str, unit: str = "") -> Sampled:
    """Validate a Sampled quantity that must stay > 0 (a zero mass, gear or force is meaningless)."""
    bounds = value if isinstance(value, tuple) else (value,)
    if any(b <= 0 for b in bounds):
        shown = list(value) if isinstance(value, tuple) else value
        raise ValueError(f"{name} should be > 0{' ' + unit if unit else ''}, received {shown}")
    return check_range(value, 0.0, name)


def positive_validator(*fields: str):
    """A pydantic validator checking Sampled ``fields`` (bounds > 0, range ordered)."""
    return field_validator(*fields)(classmethod(lambda cls, v, info: check_positive(v, info.field_name)))


def per_action_length(param: str, value, size: int) -> list[tuple[str, str]]:
    """A per-action list must have one entry per action of the env."""
    if isinstance(value, list) and len(value) != size:
        return [(param, f"{param} should have one value per action ({size}), received {len(value)}: {value}")]
    return []


def non_negative_validator(*fields: str):
    """A pydantic validator: each of ``fields`` (plain numbers) must be ≥ 0."""

    def check(cls, value, info):
        if value < 0:
            raise ValueError(f"{info.field_name} should be ≥ 0, received {value}")
        return value

    return field_validator(*fields)(classmethod(check))


def unit_direction(value, expected: str):
    """A named direction as it is, or a vector scaled to unit length; a zero vector is refused
    with ``expected`` ("a non-zero [x, y, z] vector") in the message."""
    if isinstance(value, str):
        return value
    norm = math.sqrt(sum(c * c for c in value))
    if not norm > 0:
        raise ValueError(f"direction should be {expected}, received {list(value)}")
    return tuple(c / norm for c in value)
