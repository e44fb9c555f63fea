"""oscillating: chatter, most of the commands' power in the upper half of the frequency band.

The per-channel power spectrum of the (de-meaned) actions over the episode; a policy that
alternates its command from step to step puts nearly all of it above half the Nyquist rate,
a smooth one almost none. Small commands never count (``chatter_min_rate``).
"""

import numpy as np

DEFAULT_SHARE, DEFAULT_RATE, MIN_STEPS = 0.6, 0.05, 16


def high_band_share(actions: np.ndarray) -> float:
    """Share of the de-meaned actions' power above half the Nyquist frequency (0 for short episodes)."""
    if len(actions) < MIN_STEPS:
        return 0.0
    x = np.asarray(actions, dtype=float) - np.mean(actions, axis=0)
    power = np.abs(np.fft.rfft(x, axis=0)) ** 2
    total = float(power[1:].sum())
    return float(power[len(power) // 2:].sum()) / total if total > 0 else 0.0


def classify(case, episode):
    limits = case.classify or {}
    actions = episode.actions
    if len(actions) < MIN_STEPS or float(np.mean(np.abs(np.diff(actions, axis=0)))) < limits.get("chatter_min_rate", DEFAULT_RATE):
        return None
    return "oscillating" if high_band_share(actions) >= limits.get("chatter_share", DEFAULT_SHARE) else None
