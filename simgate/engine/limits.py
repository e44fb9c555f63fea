"""Where a robot runs out of actuator or joint range: what the saturation and joint-limit failure
modes are measured against. Both engines count, per episode, the physics steps with an actuator
at its force limit and the control steps with a joint at its stop (but for the joints the env
lists in ``joint_limit_exclude``: those resting on a stop in the robot's home pose)."""

from __future__ import annotations

import numpy as np

from simgate.errors import InputError
from simgate.names import did_you_mean

#: an actuator at this share of its largest force counts as saturated
SATURATION = 0.99
#: a joint within this share of its range from a stop counts as at the stop
STOP_MARGIN = 0.01


def actuator_gear(model) -> np.ndarray:
    """Each actuator's |gear| on this model (a motor-strength perturbation edits it per episode):
    actuator force times it is the joint's torque, actuator velocity over it the joint's speed."""
    return np.abs(model.actuator_gear[:, 0])


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


def joint_stops(model, env=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(qpos addresses, low, high) of the limited hinge and slide joints, the margins applied;
    without the joints ``env.joint_limit_exclude`` names, when an env is given."""
    import mujoco

    types = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    excluded = excluded_joints(model, env) if env is not None else set()
    ids = [j for j in range(model.njnt)
           if model.jnt_limited[j] and int(model.jnt_type[j]) in types and j not in excluded]
    low, high = model.jnt_range[ids, 0], model.jnt_range[ids, 1]
    margin = STOP_MARGIN * (high - low)
    return model.jnt_qposadr[ids].astype(int), low + margin, high - margin


def excluded_joints(model, env) -> set[int]:
    """The ids of the joints ``env.joint_limit_exclude`` names. A name that is no joint of the
    model is an error naming the closest one: a typo would otherwise exclude nothing, silently."""
    import mujoco

    names = getattr(env, "joint_limit_exclude", ()) or ()
    # ("wrist") instead of ("wrist",) is one name, not five one-letter ones
    names = (names,) if isinstance(names, str) else tuple(names)
    ids = {name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) for name in names}
    unknown = [name for name, j in ids.items() if j < 0]
    if unknown:
        joints = [n for j in range(model.njnt) if (n := mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j))]
        cls = type(env)
        raise InputError(f"env {env.name!r} ({cls.__module__}.{cls.__qualname__}): joint_limit_exclude lists "
                         f"{unknown[0]!r}, which is no joint of its model{did_you_mean(unknown[0], joints)}")
    return set(ids.values())


def at_stops(qpos: np.ndarray, stops) -> np.ndarray:
    """``(n,)`` whether any limited joint of each ``(n, nq)`` row is at a stop."""
    address, low, high = stops
    if address.size == 0:
        return np.zeros(qpos.shape[0], dtype=bool)
    q = qpos[:, address]
    return ((q <= low) | (q >= high)).any(axis=1)
