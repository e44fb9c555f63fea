"""The balancebot LQR as a plain-numpy scripted policy (same gain as lqr.onnx / lqr.pt).

``action = clip(-K @ obs + b, -1, 1)`` with K and b read from ``gains.json`` (written by
``derive_lqr.py``); obs = [pitch, pitch_rate, wheel_angle, wheel_rate], see
``envs/balancebot/env.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GAINS_PATH = Path(__file__).with_name("gains.json")


class LqrPolicy:
    """Stateless affine feedback; batched over the first axis."""

    def __init__(self, K: np.ndarray, b: np.ndarray):
        self.K = np.asarray(K, dtype=np.float64).reshape(1, -1)
        self.b = np.asarray(b, dtype=np.float64).reshape(1)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64).reshape(-1, self.K.shape[1])
        # a row-wise sum rather than a matrix product: BLAS picks its kernel by batch size, and
        # an episode's action must not depend on how many episodes share the call
        return np.clip((obs * -self.K).sum(axis=1, keepdims=True) + self.b, -1.0, 1.0)


def load_gains(variant: str = "nominal") -> dict:
    return json.loads(GAINS_PATH.read_text())[variant]


def make_policy(variant: str = "nominal") -> LqrPolicy:
    """``variant``: ``"nominal"`` (the real LQR) or ``"degraded"`` (the regressed example)."""
    gains = load_gains(variant)
    return LqrPolicy(gains["K"], gains["b"])
