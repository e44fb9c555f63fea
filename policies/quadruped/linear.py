"""The quadruped's policy class: linear in a fixed feature map of the observation.

A linear map of the raw observation can only add a constant to the joint targets when the
command changes, so it cannot lengthen its stride to walk faster or shorten one side's to
turn. The feature map therefore appends, to the 34 observations, the gait clock's second
harmonic (a foot lift is a half-wave, not a sine), the command times the clock (``v·sin``,
``v·cos``, ``ω·sin``, ``ω·cos``) and a constant: a linear policy on these features can shape,
scale and skew a periodic gait with the command. Features are computed from the observation
alone, so the exported graph takes the plain observation.

``action = W · (features(obs) − mean) / std``: ARS's running normaliser on the sensor and
command channels, folded into ``W`` and a bias when exported (``export.py``). The clock
features and the constant are already of unit scale and are not normalised, so weights on them
mean the same joint motion throughout training (the gait prior in ``train.py`` relies on it).
"""

from __future__ import annotations

import numpy as np

OBSERVATION_SIZE = 34
ACTION_SIZE = 12
COMMAND = slice(30, 32)  # forward speed, yaw rate
CLOCK = slice(32, 34)  # sin, cos of the gait phase
FEATURE_SIZE = OBSERVATION_SIZE + 2 + 4 + 1
#: features the normaliser scales: the sensors and the command; the clock terms and the constant are left as they are
NORMALISED = slice(0, 32)
STD_FLOOR = 0.05  # a feature that barely moves is scaled as if it moved this much


def features(obs: np.ndarray) -> np.ndarray:
    """``(n, 34)`` observations → ``(n, 41)`` features: the observation, sin 2φ, cos 2φ, v·sin φ,
    v·cos φ, ω·sin φ, ω·cos φ, 1."""
    obs = np.asarray(obs, dtype=np.float64)
    s, c = obs[:, 32:33], obs[:, 33:34]
    v, w = obs[:, 30:31], obs[:, 31:32]
    return np.concatenate([obs, 2.0 * s * c, c * c - s * s, v * s, v * c, w * s, w * c, np.ones_like(s)], axis=1)


class Normaliser:
    """Running mean and variance of the ``NORMALISED`` features over every state visited (ARS V2)."""

    def __init__(self, size: int = FEATURE_SIZE):
        self.count = 0
        self._mean = np.zeros(size)
        self.m2 = np.zeros(size)

    def update(self, x: np.ndarray) -> None:
        """Merge a batch of feature rows (Chan et al.'s parallel variance update)."""
        if len(x) == 0:
            return
        n, mean = len(x), x.mean(axis=0)
        m2 = ((x - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self._mean
        self._mean = self._mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta ** 2 * (self.count * n / total)
        self.count = total

    @property
    def mean(self) -> np.ndarray:
        out = np.zeros_like(self._mean)
        out[NORMALISED] = self._mean[NORMALISED]
        return out

    @property
    def std(self) -> np.ndarray:
        out = np.ones_like(self._mean)
        if self.count >= 2:
            out[NORMALISED] = np.maximum(np.sqrt(self.m2[NORMALISED] / self.count), STD_FLOOR)
        return out


class LinearPolicy:
    """The trained policy in numpy (float64): what ``export.py`` turns into ONNX and TorchScript."""

    def __init__(self, weights: np.ndarray, mean: np.ndarray, std: np.ndarray):
        self.weights, self.mean, self.std = weights, mean, std

    @classmethod
    def load(cls, path) -> LinearPolicy:
        saved = np.load(path)
        return cls(saved["weights"], saved["mean"], saved["std"])

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` with ``action = features · A + b``: the normaliser folded into the weights."""
        a = (self.weights / self.std).T
        return a, -self.mean @ a

    def act(self, obs: np.ndarray) -> np.ndarray:
        return ((features(obs) - self.mean) / self.std) @ self.weights.T


class PerturbedPolicies:
    """ARS's rollout policy: each episode acts with its own weights, found by its command.

    The engine calls the policy on fixed-size batches whose row order depends on how it splits
    a case into lanes, so rows are matched to episodes by what they carry: every training
    episode draws its command from continuous ranges, so the (forward, yaw rate) pair in the
    observation names its episode. Rows whose command is not known (padding) get zeros.

    It also collects, for the normaliser, the features of each live episode's states: the
    engine keeps showing a finished episode's last observation, and the gait clock makes a
    live episode's observation change at every step, so an unchanged row has finished.
    """

    def __init__(self, weights: dict[tuple[float, float], np.ndarray], mean: np.ndarray, std: np.ndarray):
        self.keys = {key: i for i, key in enumerate(weights)}
        self.weights = np.stack(list(weights.values()))  # (episodes, 12, 41)
        self.mean, self.std = mean, std
        self.seen: list[np.ndarray] = []
        self._last: dict[int, np.ndarray] = {}

    def act(self, obs: np.ndarray) -> np.ndarray:
        f = features(obs)
        rows = [self.keys.get((float(o[30]), float(o[31])), -1) for o in obs]
        out = np.zeros((len(obs), ACTION_SIZE))
        for r, k in enumerate(rows):
            if k < 0:
                continue
            out[r] = self.weights[k] @ ((f[r] - self.mean) / self.std)
            last = self._last.get(k)
            if last is None or (obs[r] != last).any():
                self.seen.append(f[r])
                self._last[k] = obs[r].copy()
        return out
