"""ApplyPushes: shoves on one body at random times (a bump from a passer-by, a gust), or a single
shove at a chosen moment."""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Literal, Union

import numpy as np
from pydantic import field_validator, model_validator

from simgate.envs.info import unknown_names
from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    check_positive,
    check_range,
    draw,
    unit_direction,
)

NAMED = ("lateral", "any", "x", "y")
Direction = Union[Literal[NAMED], tuple[float, float, float]]


class ApplyPushesParams(Params):
    """Where, how hard, when and which way to push.

    * ``body``: the body pushed, or a list of bodies: one of them, drawn per episode (uniformly,
      from the episode's own random stream), takes all of that episode's pushes.
    * ``force`` (N) and ``duration`` (s) of each push.
    * when: pushes start at ``first`` (default: one ``interval`` drawn) and every ``interval``
      after it, while before the horizon and ``until``; ``count`` caps their number. Exactly one
      push at a chosen time is ``count: 1`` with ``first: <seconds>`` (``interval`` is then not
      needed); ``count: 1`` with ``first: [low, high]``, one push at a random time.
    * ``direction``: ``lateral`` (a random heading in the xy plane), ``any`` (uniform on the
      sphere), ``x`` or ``y`` (that world axis with a random sign), or a fixed world-frame
      ``[x, y, z]`` vector (normalised; its length does not matter, ``force`` sets the magnitude).
    """

    body: Union[str, tuple[str, ...]]
    force: Sampled  # N, the magnitude of each push
    interval: Sampled | None = None  # s between the starts of two pushes; needed unless count is 1
    duration: float = 0.1  # s
    first: Sampled | None = None  # s, start of the first push; None: one interval drawn
    until: float | None = None  # s, no push starts later (time to recover before the horizon)
    count: int | None = None  # at most this many pushes per episode; None: as many as fit
    direction: Direction = "lateral"

    @field_validator("body")
    @classmethod
    def _bodies(cls, value):
        if isinstance(value, tuple) and not value:
            raise ValueError("body should name a body, or list the bodies to draw one from per episode; received []")
        return value

    @field_validator("force", "interval", "duration")
    @classmethod
    def _positive(cls, value, info):
        if value is None:  # interval left out: _schedule says when that is allowed
            return value
        return check_positive(value, info.field_name, "N" if info.field_name == "force" else "s")

    @field_validator("count")
    @classmethod
    def _at_least_one(cls, value):
        if value is not None and value < 1:
            raise ValueError(f"count should be ≥ 1 (leave it out for pushes until the horizon), received {value}")
        return value

    @model_validator(mode="after")
    def _schedule(self):
        # without an interval only one push is defined, and only if its time is given
        if self.interval is None and not (self.count == 1 and self.first is not None):
            raise ValueError("interval (s between pushes) is required; for a single push write count: 1 and "
                             "first: <seconds> instead")
        return self

    @field_validator("first", "until")
    @classmethod
    def _not_before_start(cls, value, info):
        return value if value is None else check_range(value, 0.0, info.field_name)

    @field_validator("direction", mode="before")
    @classmethod
    def _known(cls, value):
        # one message instead of one per member of the union
        named = isinstance(value, str) and value in NAMED
        vector = isinstance(value, (list, tuple)) and len(value) == 3
        if not (named or vector):
            raise ValueError(f"direction should be one of {', '.join(map(repr, NAMED))} or an [x, y, z] vector, "
                             f"received {value!r}")
        # a tuple: the loader validates strictly, and strict validation refuses the list a YAML
        # vector arrives as once this validator has handed it on
        return tuple(value) if vector else value

    @field_validator("direction")
    @classmethod
    def _unit(cls, value):
        return unit_direction(value, "a non-zero [x, y, z] vector")


@dataclasses.dataclass(frozen=True)
class PushSchedule:
    """One episode's pushes, in physics steps from the episode start: push i acts during the
    steps ``start[i] <= k < stop[i]`` with the world-frame force ``force[i]``."""

    body: int
    start: np.ndarray
    stop: np.ndarray
    force: np.ndarray  # (pushes, 3) N


class ApplyPushes(Perturbation):
    """Pushes ``body`` at its centre of mass through ``xfrc_applied`` (so no torque about it).

    The whole schedule (body, times, directions, magnitudes) is drawn when the episode starts, so
    two policies meet the same pushes at the same moments. Times resolve to physics steps: a push
    starts at the step nearest its time and lasts ``duration`` rounded to whole steps (at least
    one). A planar robot ignores the out-of-plane part of a push, so on one, ``lateral`` and
    ``any`` pushes are weaker on average than ``force``; pick the robot's axis (``x``) instead.

    Two push perturbations on the same body do not add up: each owns the body's force entry and
    the one listed last wins while both are active.
    """

    kind = "apply_pushes"
    stage = "force"
    Params = ApplyPushesParams

    def check(self, info):
        bodies = self._bodies()
        if "world" in bodies:
            return [("body", "the world body is fixed and cannot be pushed; name a body of the robot")]
        return unknown_names(list(bodies), info.bodies, "body", "body")

    def _bodies(self) -> tuple[str, ...]:
        body = self.params.body
        return (body,) if isinstance(body, str) else body

    def start(self, ctx: EpisodeContext) -> PushSchedule:
        import mujoco

        dt = ctx.physics_dt
        name = self._body(ctx.rng)
        times = self._times(ctx.rng, ctx.n_steps * ctx.control_dt)
        forces = np.array([draw(self.params.force, ctx.rng) * self._direction(ctx.rng) for _ in times]).reshape(-1, 3)
        start = np.round(np.asarray(times) / dt).astype(np.int64)
        steps = max(1, round(self.params.duration / dt))
        body = mujoco.mj_name2id(ctx.model, mujoco.mjtObj.mjOBJ_BODY, name)
        return PushSchedule(body, start, start + steps, forces)

    def _body(self, rng: np.random.Generator) -> str:
        """This episode's body. One named body draws nothing: episodes written before lists of
        bodies existed keep every random draw, so their bits."""
        if isinstance(self.params.body, str):
            return self.params.body
        return self.params.body[int(rng.integers(len(self.params.body)))]

    def _times(self, rng: np.random.Generator, horizon: float) -> list[float]:
        """Push start times in seconds, up to the horizon (or ``until``), at most ``count``."""
        first = self.params.first if self.params.first is not None else self.params.interval
        last = horizon if self.params.until is None else min(horizon, self.params.until)
        most = self.params.count
        t, times = draw(first, rng), []
        while t < last:
            times.append(t)
            if len(times) == most:  # no interval drawn after the last push: none is needed
                break
            t += draw(self.params.interval, rng)
        return times

    def _direction(self, rng: np.random.Generator) -> np.ndarray:
        """A unit vector for one push."""
        direction = self.params.direction
        if direction == "lateral":
            heading = rng.uniform(0.0, 2.0 * math.pi)
            return np.array([math.cos(heading), math.sin(heading), 0.0])
        if direction == "any":
            v = rng.standard_normal(3)  # an isotropic Gaussian normalised is uniform on the sphere
            return v / np.linalg.norm(v)
        if direction in ("x", "y"):
            axis = np.zeros(3)
            axis["xy".index(direction)] = rng.choice((-1.0, 1.0))
            return axis
        return np.array(direction)

    def physics(self, model, data, state: PushSchedule, substep: int) -> None:
        i = int(np.searchsorted(state.start, substep, side="right")) - 1
        # xfrc_applied persists across steps, so every step outside a push writes the zero back
        data.xfrc_applied[state.body, :3] = state.force[i] if i >= 0 and substep < state.stop[i] else 0.0

    def physics_block(self, model, ctrl, xfrc, state: PushSchedule, first: int) -> None:
        # ``physics`` for the block's steps at once. It writes the body's force entry at every
        # step (zero outside a push), which is what makes the block form exact.
        n, start = len(xfrc), state.start
        i = bisect.bisect_right(start, first) - 1  # the push in force at the block's first step
        if i + 1 < len(start) and start[i + 1] < first + n:  # another starts inside: step by step
            steps = np.arange(first, first + n)
            i = np.searchsorted(start, steps, side="right") - 1
            on = (i >= 0) & (steps < state.stop[i])  # i = -1 reads the last stop, masked by i >= 0
            xfrc[:, state.body, :3] = np.where(on[:, None], state.force[i], 0.0)
            return
        # the common case, in a few scalar operations: the first `pushed` steps under push i
        pushed = 0 if i < 0 else min(max(int(state.stop[i]) - first, 0), n)
        rows = xfrc[:, state.body, :3]
        if pushed:
            rows[:pushed] = state.force[i]
        rows[pushed:] = 0.0
