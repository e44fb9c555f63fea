"""Actuator effort per joint, from MuJoCo's actuator forces times the gear (N·m at a hinge)."""

from __future__ import annotations

import numpy as np


def mean_abs_torque(rollouts) -> dict[str, np.ndarray]:
    return _per_joint(rollouts, "mean_abs_torque")


def peak_abs_torque(rollouts) -> dict[str, np.ndarray]:
    return _per_joint(rollouts, "peak_abs_torque")


def _per_joint(rollouts, attribute: str) -> dict[str, np.ndarray]:
    values = np.array([getattr(e, attribute) for e in rollouts.episodes]).reshape(rollouts.n, -1)
    return {name: values[:, j] for j, name in enumerate(rollouts.joint_names)}
