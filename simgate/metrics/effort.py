"""What the motion costs: mechanical power, cost of transport, and how jerky the commands are."""

from __future__ import annotations

import numpy as np

GRAVITY = 9.81


def mean_power(rollouts) -> np.ndarray:
    """W: the actuators' absolute mechanical work over the time the episode ran."""
    seconds = rollouts.column("length") * rollouts.control_dt
    return _ratio(rollouts.column("work"), seconds)


def cost_of_transport(rollouts) -> np.ndarray:
    """Dimensionless work / (m g d): the locomotion efficiency measure. NaN where progress is
    not a distance (a reaching task) or where the robot went nowhere."""
    if rollouts.progress_unit != "m":
        return np.full(rollouts.n, np.nan)
    distance = np.abs(rollouts.column("progress"))
    return _ratio(rollouts.column("work"), rollouts.column("mass") * GRAVITY * distance)


def action_rate(rollouts) -> np.ndarray:
    """Mean |a(t) − a(t−1)| per control step over the action channels: commands that jump from
    step to step wear gearboxes and excite what a simulator does not model."""
    out = np.full(rollouts.n, np.nan)
    for i, episode in enumerate(rollouts.episodes):
        if len(episode.actions) > 1:
            out[i] = float(np.mean(np.abs(np.diff(episode.actions, axis=0))))
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(len(num), np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out
