"""Hard per-step limits: a scenario's ``hard_limits`` end an episode at the first control step one
is exceeded, as a failure (``hard_limit``) with the step and the value, apart from the statistical
thresholds on means and bounds.

Checked after each control step's physics, on what both engines hold for it: each actuator's
|force| and |velocity| at every physics step of the control step (the torque and joint-speed
limits: the largest over those physics steps), the net contact force on each named body at every
physics step (read from a MuJoCo contact sensor the engine adds to the model for it:
:func:`add_contact_sensors`; sensors change no physics), and the floating base's pose at the
step's end (its first free joint: the tilt of its z axis from the world's, and its position
against a workspace box). One implementation over rows (:meth:`HardLimits.rows`): the reference engine asks
it for one row, the batched engine for all live episodes at once, so both end the same episode
at the same step with the same words.
"""

from __future__ import annotations

import math

import numpy as np

from simgate.errors import InputError
from simgate.names import did_you_mean

#: the episode-ending reason, and the failure mode it is filed under
HARD_LIMIT = "hard_limit"
#: the name of the contact sensor added for a body's contact-force limit: the prefix, then the body
CONTACT_SENSOR = "simgate_hard_limit_contact:"


def contact_bodies(spec: dict | None) -> list[str]:
    """The bodies whose contact force ``spec`` (a scenario's ``hard_limits``) limits, in its order."""
    return list((spec or {}).get("contact_force") or {})


def add_contact_sensors(mjspec, bodies: list[str]) -> None:
    """A contact sensor per body on ``mjspec``: the number of its contacts with anything, then the
    net contact force on it (world frame, N), summed over those contacts. An unknown body is the
    scenario's mistake, named with the closest body."""
    import mujoco

    known = [b.name for b in mjspec.bodies if b.name]
    for body in bodies:
        if body not in known:
            raise InputError(f"hard_limits.contact_force names {body!r}, which is no body of the model"
                             f"{did_you_mean(body, known)}")
        sensor = mjspec.add_sensor(name=CONTACT_SENSOR + body, type=mujoco.mjtSensor.mjSENS_CONTACT,
                                   objtype=mujoco.mjtObj.mjOBJ_BODY, objname=body)
        sensor.intprm[0] = 1 | 2  # data: found (how many contacts), force (their net force)
        sensor.intprm[1] = 3  # reduce: netforce, one vector for all of the body's contacts
        sensor.intprm[2] = 1


class HardLimits:
    def __init__(self, spec: dict, model, names: list[str]):
        """``spec``: the scenario's ``hard_limits`` (joint_torque, joint_speed: a number or
        {actuator: number}; contact_force: {body: N}; base_tilt_deg; workspace: {x|y|z: [low,
        high]}); ``names``: the actuators in ctrl order. ``model`` must carry the contact sensors
        of :func:`add_contact_sensors` for a contact-force limit (the engines add them when they
        are built with the limits)."""
        self.names = list(names)
        self.torque = _per_actuator(spec.get("joint_torque"), self.names, "joint_torque")
        self.speed = _per_actuator(spec.get("joint_speed"), self.names, "joint_speed")
        tilt = spec.get("base_tilt_deg")
        self.tilt = tilt
        self.tilt_cos = math.cos(math.radians(tilt)) if tilt is not None else None
        bodies = contact_bodies(spec)
        self.contact_names = bodies
        self.contact_limit = np.array([float(spec["contact_force"][b]) for b in bodies])
        self.contact_force = None  # (k, 3) sensordata columns of each body's net force
        if bodies:
            try:
                adrs = [int(model.sensor(CONTACT_SENSOR + b).adr[0]) for b in bodies]
            except KeyError:
                raise ValueError("hard_limits.contact_force: the model has no contact sensors for "
                                 f"{', '.join(bodies)}; build the engine with the case's hard_limits") from None
            self.contact_force = np.array(adrs)[:, None] + np.arange(1, 4)
        box = spec.get("workspace") or {}
        self.box = [(axis, float(lo), float(hi)) for axis, (lo, hi) in sorted(box.items())]
        self.base = None
        if self.tilt is not None or self.box:
            import mujoco

            free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
            if not free:
                raise InputError("hard_limits: base_tilt_deg and workspace read the floating base (the model's first "
                                 "free joint), and this model has none; drop them")
            self.base = int(model.jnt_qposadr[free[0]])

    @property
    def reads_sensors(self) -> bool:
        """Whether :meth:`rows` needs each physics step's sensordata (a contact-force limit)."""
        return self.contact_force is not None

    def rows(self, forces: np.ndarray, velocities: np.ndarray, qpos: np.ndarray, gear: np.ndarray,
             sensordata: np.ndarray | None = None) -> list[str | None]:
        """For each row, what it exceeded first ("FL_knee |torque| 41.2 > 40"), or None.
        ``forces``, ``velocities``: (n, physics steps, nu) actuator forces and velocities of this
        control step; ``qpos``: (n, nq); ``gear``: (n, nu) each episode's |gear| (a motor-strength
        perturbation edits it), which makes them joint torques and joint speeds, as the
        thresholds and the report have them; ``sensordata``: (n, physics steps, nsensordata),
        needed only with a contact-force limit (:attr:`reads_sensors`)."""
        n = len(qpos)
        out: list[str | None] = [None] * n
        checks = []
        if self.torque is not None:
            checks.append(("|torque|", np.abs(forces).max(axis=1) * gear, self.torque))
        if self.speed is not None:
            speed = np.abs(velocities).max(axis=1)
            checks.append(("|speed|", np.divide(speed, gear, out=speed.copy(), where=gear > 0), self.speed))
        for label, peak, limit in checks:  # (n, nu) against (nu,)
            over = peak > limit
            for row in np.flatnonzero(over.any(axis=1)):
                if out[row] is None:
                    j = int(np.argmax(over[row]))
                    out[row] = f"{self.names[j]} {label} {peak[row, j]:.4g} > {limit[j]:g}"
        if self.contact_force is not None:
            # (n, physics steps, k, 3) -> each body's largest net contact force over the physics steps
            peak = np.linalg.norm(sensordata[:, :, self.contact_force], axis=-1).max(axis=1)
            over = peak > self.contact_limit
            for row in np.flatnonzero(over.any(axis=1)):
                if out[row] is None:
                    j = int(np.argmax(over[row]))
                    out[row] = (f"{self.contact_names[j]} contact force {peak[row, j]:.4g} N > "
                                f"{self.contact_limit[j]:g} N")
        if self.base is not None:
            a = self.base
            if self.tilt_cos is not None:
                up_z = 1.0 - 2.0 * (qpos[:, a + 4] ** 2 + qpos[:, a + 5] ** 2)  # the base's z axis, world z
                for row in np.flatnonzero(up_z < self.tilt_cos):
                    if out[row] is None:
                        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(up_z[row])))))
                        out[row] = f"base tilt {angle:.3g}° > {self.tilt:g}°"
            for axis, lo, hi in self.box:
                value = qpos[:, a + "xyz".index(axis)]
                for row in np.flatnonzero((value < lo) | (value > hi)):
                    if out[row] is None:
                        out[row] = f"base {axis} {value[row]:.4g} m outside [{lo:g}, {hi:g}]"
        return out


def message(what: str, step: int, control_dt: float) -> str:
    """The episode's message: what was exceeded, at which control step and time."""
    return f"hard limit: {what} at control step {step} (t={step * control_dt:.2f} s)"


def _per_actuator(limit, names: list[str], key: str) -> np.ndarray | None:
    if limit is None:
        return None
    if not isinstance(limit, dict):
        return np.full(len(names), float(limit))
    out = np.full(len(names), np.inf)
    for name, value in limit.items():
        if name not in names:
            raise InputError(f"hard_limits.{key} names {name!r}, which has no actuator{did_you_mean(name, names)}")
        out[names.index(name)] = float(value)
    return out
