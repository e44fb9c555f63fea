"""The basic record of every episode: did it succeed, how long, how far, what return."""

from __future__ import annotations

import numpy as np


def success(rollouts) -> np.ndarray:
    return rollouts.column("success").astype(float)


def episode_return(rollouts) -> np.ndarray:
    return rollouts.column("ret")


def length_seconds(rollouts) -> np.ndarray:
    return rollouts.column("length") * rollouts.control_dt


def progress(rollouts) -> np.ndarray:
    return rollouts.column("progress")


def time_to_fall(rollouts) -> np.ndarray:
    """Seconds until the episode ended in a fall; NaN for episodes that did not fall."""
    fell = rollouts.column("terminated") == "fell"
    return np.where(fell, rollouts.column("length") * rollouts.control_dt, np.nan)


def signals(rollouts) -> dict[str, np.ndarray]:
    """The env's own per-step signals (``MujocoEnv.signals``), each averaged over the episode."""
    names = sorted({name for e in rollouts.episodes for name in e.signals})
    return {name: np.array([e.signals.get(name, np.nan) for e in rollouts.episodes]) for name in names}
