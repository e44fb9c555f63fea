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
