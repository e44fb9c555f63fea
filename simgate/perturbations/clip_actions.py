"""ClipActions: a safety limit on commands, tighter than the env's own range."""

from __future__ import annotations

import numpy as np
from pydantic import model_validator

from simgate.perturbations.base import Params, Perturbation, per_action_length


class ClipActionsParams(Params):
    low: float | list[float]  # one bound for every action, or a list by action index
    high: float | list[float]

    @model_validator(mode="after")
    def _ordered(self):
        low, high = np.asarray(self.low, dtype=float), np.asarray(self.high, dtype=float)
        if low.ndim and high.ndim and len(low) != len(high):
            raise ValueError(f"low and high should have the same length, received {len(low)} and {len(high)}")
        if np.any(low > high):
            raise ValueError(f"low should be ≤ high, received low={self.low}, high={self.high}")
        return self


class ClipActions(Perturbation):
    kind = "clip_actions"
    stage = "action"
    Params = ClipActionsParams

    def check(self, info):
        return (per_action_length("low", self.params.low, info.action_size)
                + per_action_length("high", self.params.high, info.action_size))

    def start(self, ctx) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.params.low, dtype=np.float64), np.asarray(self.params.high, dtype=np.float64)

    def action(self, action: np.ndarray, state, step: int) -> np.ndarray:
        return np.clip(action, *state)

    def action_rows(self, actions: np.ndarray, states: list, step: int) -> np.ndarray:
        return np.clip(actions, *states[0]) if states else actions  # the limits are the case's, not drawn
