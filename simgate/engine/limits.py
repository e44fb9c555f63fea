"""Where a robot runs out of actuator or joint range: what the saturation and joint-limit failure
modes are measured against. Both engines count, per episode, the physics steps with an actuator
at its force limit and the control steps with a joint at its stop."""

from __future__ import annotations

import numpy as np

#: an actuator at this share of its largest force counts as saturated
SATURATION = 0.99
#: a joint within this share of its range from a stop counts as at the stop
STOP_MARGIN = 0.01


def actuator_limits(model) -> np.ndarray:
    """``(nu,)`` the largest |actuator_force| each actuator can produce on this model (its force
    range, or a motor's gain times its largest control); inf where nothing bounds it."""
    import mujoco

    limits = np.full(model.nu, np.inf)
    forced = model.actuator_forcelimited.astype(bool)
    limits[forced] = np.max(np.abs(model.actuator_forcerange[forced]), axis=1)
    motor = ((model.actuator_gaintype == int(mujoco.mjtGain.mjGAIN_FIXED))
             & (model.actuator_biastype == int(mujoco.mjtBias.mjBIAS_NONE)) & model.actuator_ctrllimited.astype(bool))
    motor_max = np.abs(model.actuator_gainprm[:, 0]) * np.max(np.abs(model.actuator_ctrlrange), axis=1)
    limits[motor] = np.minimum(limits[motor], motor_max[motor])
    return limits


def saturated_steps(forces: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Physics steps of ``(..., frame_skip, nu)`` forces with any actuator at its limit: ``(...)``."""
    return (np.abs(forces) >= SATURATION * limits[..., None, :]).any(axis=-1).sum(axis=-1)


def joint_stops(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(qpos addresses, low, high) of the limited hinge and slide joints, the margins applied."""
    import mujoco

    types = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    ids = [j for j in range(model.njnt) if model.jnt_limited[j] and int(model.jnt_type[j]) in types]
    low, high = model.jnt_range[ids, 0], model.jnt_range[ids, 1]
    margin = STOP_MARGIN * (high - low)
    return model.jnt_qposadr[ids].astype(int), low + margin, high - margin


def at_stops(qpos: np.ndarray, stops) -> np.ndarray:
    """``(n,)`` whether any limited joint of each ``(n, nq)`` row is at a stop."""
    address, low, high = stops
    if address.size == 0:
        return np.zeros(qpos.shape[0], dtype=bool)
    q = qpos[:, address]
    return ((q <= low) | (q >= high)).any(axis=1)
