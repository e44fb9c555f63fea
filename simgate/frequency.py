"""Frequency response of a policy: how its action follows a sinusoid on one observation channel.

A policy inspection, not a requirement: the policy alone (no physics), fed the case's first
observation (episode 0 after its reset) with one channel replaced by ``base + A·sin(2π f t)`` at
the control rate, everything else held. Per frequency, the action's first harmonic against the
input's (a single-bin DFT over whole periods, after ``settle`` periods discarded) gives the gain
(action units per observation unit) and the phase (degrees; negative: the action lags). A
memoryless policy has a flat gain and zero phase (180° when it pushes against the input); a policy
with memory or filtering shows its bandwidth. Deterministic: no randomness beyond the case's
first episode's reset.
"""

from __future__ import annotations

import numpy as np

from simgate.engine.reference import ReferenceEngine
from simgate.errors import InputError


def response(policy, base: np.ndarray, channel: int, action: int, amplitude: float, frequencies, control_hz: float,
             cycles: int = 5, settle: int = 2) -> dict:
    """Gain and phase of ``action`` for a sinusoid on observation ``channel`` around ``base``."""
    base = np.asarray(base, dtype=np.float64)
    if not 0 <= channel < len(base):
        raise InputError(f"frequency_response.channel {channel} is outside the observation (size {len(base)})")
    gains, phases, coherence = [], [], []
    for f in frequencies:
        if not 0 < f < control_hz / 2:
            raise InputError(f"frequency_response.frequencies: {f:g} Hz is not below the Nyquist rate of the "
                             f"{control_hz:g} Hz control loop ({control_hz / 2:g} Hz); choose lower frequencies")
        per_period = control_hz / f
        skip, steps = int(np.ceil(settle * per_period)), int(round(cycles * per_period))
        t = np.arange(skip + steps) / control_hz
        u = amplitude * np.sin(2.0 * np.pi * f * t)
        y = np.empty(len(t))
        for k in range(len(t)):
            obs = base.copy()
            obs[channel] += u[k]
            y[k] = np.asarray(policy.act(obs[None, :]), dtype=np.float64)[0, action]
        t, u, y = t[skip:], u[skip:], y[skip:] - y[skip:].mean()
        phasor = np.exp(-2j * np.pi * f * t)
        U, Y = np.sum(u * phasor), np.sum(y * phasor)
        H = Y / U
        gains.append(float(abs(H)))
        phases.append(float(np.degrees(np.angle(H))))
        # the share of the action's variance the first harmonic explains: 1 for a linear policy
        power = float(np.sum(y * y))
        coherence.append(float(2 * abs(Y) ** 2 / len(y) / power) if power > 0 else 1.0)
    return {"frequencies": [float(f) for f in frequencies], "gain": gains, "phase_deg": phases,
            "harmonic_share": coherence, "channel": channel, "action": action, "amplitude": amplitude,
            "cycles": cycles, "settle": settle}


def inspect(rig) -> dict:
    """The case's frequency response (its ``frequency_response`` settings) of the rig's policy
    (:class:`simgate.rig.CaseRig`, the loaded policy, no watchdog), around the first observation
    of its episode 0 (the rig's env and perturbations, on the reference engine)."""

    case, env, policy = rig.case, rig.env, rig.policy
    settings = dict(case.frequency_response)
    engine = ReferenceEngine(env, policy, rig.perturbations, rig.action_size, hard_limits=getattr(case, "hard_limits", None))
    n_steps = int(round(case.horizon / engine.control_dt))
    _, model, data, _ = engine.start_episode(case, 0, n_steps)
    base = np.asarray(env.observe(model, data), dtype=np.float64)
    channel = settings.pop("channel")
    if isinstance(channel, str):
        group, _, position = channel.partition(":")
        groups = env.observation_groups()
        if group not in groups:
            raise InputError(f"frequency_response.channel {channel!r}: env {env.name!r} has observation groups {sorted(groups)}")
        channel = groups[group][int(position or 0)]
    out = response(policy, base, channel, control_hz=1.0 / engine.control_dt, **settings)
    out["base"] = float(base[channel])
    return out
