"""The observation term library: each term reads one thing of a row's state, as its contract
states it (source, frame, quaternion order, normalisation), then ``scale * clip(raw - offset)``.

Names follow Isaac Lab's observation terms where they coincide. Every name a term uses (sensor,
joint, body, geom) is resolved against the MJCF when the env is bound, and a missing one is a
``ContractError`` naming the manifest line and the closest name.
"""

from __future__ import annotations

import numpy as np

from simgate.errors import SimgateError
from simgate.names import did_you_mean
from simgate.robots import quat

# mjtSensor values read here (stable across MuJoCo 3-4; checked against the enum at first use)
_SENSOR_KINDS = {"framequat": "mjSENS_FRAMEQUAT", "gyro": "mjSENS_GYRO", "velocimeter": "mjSENS_VELOCIMETER",
                 "jointpos": "mjSENS_JOINTPOS", "jointvel": "mjSENS_JOINTVEL"}


class ContractError(SimgateError):
    """A contract that does not fit its robot's MJCF or its policy's file."""


class Term:
    """One bound term: ``value(env, model, rows) -> (n, size)``."""

    def __init__(self, cfg, raw, size: int, where: str, parts=()):
        self.kind, self.cfg, self._raw, self.size = cfg.term, cfg, raw, size
        self.history, self.noise, self.group = cfg.history, cfg.noise, cfg.group or cfg.term
        self.history_order = cfg.history_order
        self.parts = list(parts)
        self.history_slice = slice(0, 0)
        if cfg.size is not None and cfg.size != size:
            raise ContractError(f"{where}: size: {cfg.size} stated, but term {cfg.term!r} gives {size} values here")
        self.offset = _per_value(cfg.offset, size, "offset", where)
        self.scale = _per_value(cfg.scale, size, "scale", where)
        if self.offset is None and self.scale is None and cfg.clip is None and cfg.clip_scaled is None:
            self.value = raw  # a plain term is its reader's bits: called directly, once per step and term

    def value(self, env, model, data) -> np.ndarray:
        v = self._raw(env, model, data)
        if self.offset is not None:
            v = v - self.offset
        if self.cfg.clip is not None:
            v = np.clip(v, self.cfg.clip[0], self.cfg.clip[1])
        if self.scale is not None:
            v = v * self.scale
        if self.cfg.clip_scaled is not None:
            v = np.clip(v, self.cfg.clip_scaled[0], self.cfg.clip_scaled[1])
        return v

    # a velocity_commands term also draws the episode's command
    def draw(self, rng: np.random.Generator) -> np.ndarray:
        command = np.zeros(3)
        slots = [c for c in self.cfg.components if c != "heading_hold"]
        if self.cfg.ranges is not None:
            for slot, (low, high) in zip(slots, self.cfg.ranges):
                command[_SLOT[slot]] = rng.uniform(low, high)
        else:
            for slot, v in zip(slots, self.cfg.value):
                command[_SLOT[slot]] = v
        return command


_SLOT = {"vx": 0, "vy": 1, "yaw_rate": 2}


def _per_value(value, size: int, key: str, where: str):
    """None for the identity (1 for scale, 0 for offset): skipped, so a plain term is the raw bits."""
    if isinstance(value, list):
        if len(value) != size:
            raise ContractError(f"{where}: {key}: {len(value)} numbers for a term of {size} values")
        return np.asarray(value, dtype=np.float64)
    identity = 1.0 if key == "scale" else 0.0
    return None if float(value) == identity else float(value)


def build_terms(contract, robot, model, actions) -> list[Term]:
    return [_build(contract, robot, model, actions, i, cfg) for i, cfg in enumerate(contract.contract.observation)]


def _build(contract, robot, model, actions, i: int, cfg) -> Term:
    where = contract.where("observation", i)
    at = lambda key: contract.where("observation", i, key)  # noqa: E731
    kind = cfg.term
    if kind in ("projected_gravity", "base_quat", "base_euler"):
        read = _quat(model, cfg.source, at("source"))
        order = cfg.quat_order or "wxyz"
        if kind == "base_euler":
            return Term(cfg, lambda env, m, d: quat.euler_xyz(*quat.split(read(env, m, d), order)), 3, where)
        if kind == "projected_gravity":
            if order == "xyzw":
                raise ContractError(f"{at('quat_order')}: quat_order: MuJoCo's quaternions are wxyz; say wxyz, or "
                                    "wxyz_read_as_xyzw for a training env that read them into an xyzw slot")
            return Term(cfg, lambda env, m, d: quat.gravity_in_body(*quat.split(read(env, m, d), order)), 3, where)
        columns = {"wxyz": [0, 1, 2, 3], "xyzw": [1, 2, 3, 0], "wxyz_read_as_xyzw": [0, 1, 2, 3]}[order]
        return Term(cfg, lambda env, m, d: read(env, m, d)[:, columns], 4, where)
    if kind in ("base_ang_vel", "base_lin_vel"):
        return Term(cfg, _velocity(model, cfg, kind, at, robot.robot.base), 3, where)
    if kind.startswith("joint_"):
        return _joint_term(contract, robot, model, actions, cfg, where, at)
    if kind in ("contact", "contact_forces"):
        parts = cfg.bodies or list(robot.robot.feet)
        if not parts:
            raise ContractError(f"{where}: term {kind!r} needs 'bodies' (geoms or bodies), or the robot's 'feet'")
        names = _names(model)
        for part in parts:
            if part not in names["geom"] and part not in names["body"]:
                raise ContractError(f"{at('bodies')}: no geom or body named {part!r} in {robot.robot.scene}"
                                    f"{did_you_mean(part, names['geom'] + names['body'])}")
        reduce = _contact_force(cfg.force or "norm")
        threshold = cfg.threshold
        # every part at once, through its contact sensors' address array (the sensors exist in
        # the built model only: looked up at the first step)
        if kind == "contact":
            def raw(env, m, d):
                adr = env.contact_adrs(m, parts)
                if threshold == 0:
                    return (d.sensordata[:, adr] > 0).astype(np.float64)
                return (reduce(d.sensordata, adr) > threshold).astype(np.float64)
        else:
            def raw(env, m, d):
                return reduce(d.sensordata, env.contact_adrs(m, parts))
        return Term(cfg, raw, len(parts), where, parts)
    if kind == "last_action":
        slot = cfg.which
        return Term(cfg, lambda env, m, d: d.userdata[:, env.layout[slot]], actions.size, where)
    if kind == "velocity_commands":
        return _command_term(model, cfg, where, at)
    if kind == "gait_phase":
        return _clock(cfg, where)
    if kind == "sensor":
        adrs = [np.arange(a, a + n) for a, n in (_any_sensor(model, name, at("sensors")) for name in cfg.sensors)]
        flat = np.concatenate(adrs)
        columns = _columns(flat)  # a slice for one sensor, or several in sensordata's order
        return Term(cfg, lambda env, m, d: d.sensordata[:, columns], len(flat), where)
    if kind == "constant":
        value = np.asarray(cfg.value, dtype=np.float64)
        return Term(cfg, lambda env, m, d: np.tile(value, (len(d.time), 1)), len(value), where)
    size = cfg.size  # padding
    return Term(cfg, lambda env, m, d: np.zeros((len(d.time), size)), size, where)


#: a velocity command (m/s, m/s, rad/s) whose norm is at most this says "stand" (Playground's 0.01)
STILL_COMMAND = 0.01


def _clock(cfg, where: str) -> Term:
    """sin and cos of 2π·hz·t + offset, one phase per offset (a foot each, say); hz fixed, or
    drawn per episode; t trails the episode's time by ``lag_steps`` control steps (0 before)."""
    offsets = cfg.offsets or [0.0]
    cos_first = cfg.order == "cos_sin"
    drawn = isinstance(cfg.hz, list)  # per episode: the value the reset drew, in userdata
    # 2π·hz, multiplied out left to right as ``2.0 * np.pi * hz * time`` is (the hand-written
    # envs' expression): the same bits, once instead of at every step
    two_pi = 2.0 * np.pi
    omega = None if drawn else two_pi * cfg.hz
    shifts = np.asarray(offsets, dtype=np.float64)[None]
    lag = cfg.lag_steps or 0
    still = cfg.still_phase

    def clock(env, m, d):
        time = np.asarray(d.time, dtype=np.float64).reshape(-1)
        if lag:  # the clock of ``lag`` control steps ago, 0 before the episode had them
            time = np.maximum(time - lag / env.control_hz, 0.0)
        rate = two_pi * d.userdata[:, env.layout["gait"].start] if drawn else omega
        if offsets == [0.0] and still is None:  # written as the hand-written envs write it: the same bits
            phase = rate * time
            out = np.empty((len(time), 2))
            cos, sin = (out[:, 0], out[:, 1]) if cos_first else (out[:, 1], out[:, 0])
            # computed into arrays of their own, then copied in: given a strided output, numpy
            # could take another of its sin/cos loops, and these must be the hand-written envs' bits
            cos[:] = np.cos(phase)
            sin[:] = np.sin(phase)
            return out
        phase = (rate * time)[:, None] + shifts
        if still is not None:  # every foot at ``still`` while the command says stand
            command = d.userdata[:, env.layout["command"]]
            phase = np.where((np.sqrt((command * command).sum(axis=1)) > STILL_COMMAND)[:, None], phase, still)
        pair = [np.cos(phase), np.sin(phase)] if cos_first else [np.sin(phase), np.cos(phase)]
        return np.concatenate(pair, axis=1)
    return Term(cfg, clock, 2 * len(offsets), where)


def _columns(adrs) -> slice | np.ndarray:
    """Addresses in a field (sensordata, qpos, qvel) as the index that reads them: a slice when
    they are a run ``a, a+1, ...`` (a view, where an index array gathers a copy: several times
    slower on a lane's rows), else the array."""
    adrs = np.asarray(adrs, dtype=int)
    if len(adrs) and np.array_equal(adrs, np.arange(adrs[0], adrs[0] + len(adrs))):
        return slice(int(adrs[0]), int(adrs[0]) + len(adrs))
    return adrs


def _any_sensor(model, name: str, where: str) -> tuple[int, int]:
    """(address, dimension) of sensor ``name`` in sensordata."""
    names = [n for n in _names(model)["sensor"] if n]
    if name not in names:
        raise ContractError(f"{where}: no sensor named {name!r} in the MJCF{did_you_mean(name, names)}")
    sensor = model.sensor(name)
    return int(sensor.adr[0]), int(sensor.dim[0])


def _names(model) -> dict[str, list[str]]:
    import mujoco

    kinds = {"body": mujoco.mjtObj.mjOBJ_BODY, "geom": mujoco.mjtObj.mjOBJ_GEOM, "joint": mujoco.mjtObj.mjOBJ_JOINT,
             "sensor": mujoco.mjtObj.mjOBJ_SENSOR, "actuator": mujoco.mjtObj.mjOBJ_ACTUATOR}
    counts = {"body": model.nbody, "geom": model.ngeom, "joint": model.njnt, "sensor": model.nsensor,
              "actuator": model.nu}
    return {k: [mujoco.mj_id2name(model, kinds[k], i) or "" for i in range(counts[k])] for k in kinds}


def _sensor(model, name: str, kinds: tuple[str, ...], where: str) -> int:
    """The address of sensor ``name`` in sensordata, which must be of one of ``kinds``."""
    import mujoco

    names = [n for n in _names(model)["sensor"] if n]
    if name not in names:
        raise ContractError(f"{where}: no sensor named {name!r} in the MJCF{did_you_mean(name, names)}")
    sensor = model.sensor(name)
    wanted = [getattr(mujoco.mjtSensor, _SENSOR_KINDS[k]) for k in kinds]
    if int(model.sensor_type[sensor.id]) not in [int(w) for w in wanted]:
        raise ContractError(f"{where}: sensor {name!r} is a {mujoco.mjtSensor(int(model.sensor_type[sensor.id])).name}, "
                            f"not a {' or '.join(kinds)} sensor")
    return int(sensor.adr[0])


def _quat(model, source: str, where: str):
    """The orientation a term reads: the base's free joint, a framequat sensor, or any body's
    ``xquat`` (``body:NAME``, e.g. a torso that carries the IMU)."""
    if source in (None, "freejoint"):
        return lambda env, m, d: env.base_quat(m, d)
    if source.startswith("body:"):
        body = source[len("body:"):]
        bodies = [n for n in _names(model)["body"] if n]
        if body not in bodies:
            raise ContractError(f"{where}: no body named {body!r} in the MJCF{did_you_mean(body, bodies)}")
        i = model.body(body).id
        return lambda env, m, d: d.xquat[:, i]
    adr = _sensor(model, source, ("framequat",), where)
    return lambda env, m, d: d.sensordata[:, adr:adr + 4]


def _velocity(model, cfg, kind: str, at, base: str | None = None):
    """Angular velocity (a gyro, or the free joint's: body frame) or linear velocity (a
    velocimeter: body frame; the free joint's: world frame, of the base's origin or, with
    ``point: com``, of its centre of mass), expressed in ``frame``."""
    source = cfg.source or "freejoint"
    frame = cfg.frame or "body"
    order = cfg.quat_order or "wxyz"
    rotation = _quat(model, cfg.quat_source, at("quat_source"))
    angular = kind == "base_ang_vel"
    if cfg.point == "com":
        if source != "freejoint":
            raise ContractError(f"{at('point')}: point: com is read from the free joint (source: freejoint); a "
                                "velocimeter measures at its own site: put the site at the body's centre of mass instead")
        if base is None:
            raise ContractError(f"{at('point')}: point: com needs the robot's floating base ('base:' in its YAML)")
        native = "world"
        com = model.body_ipos[model.body(base).id].copy()[None]  # the MJCF's: the same for every episode

        def read(env, m, d):  # v + R(q)·(ω × c): c the base's centre of mass in its frame (the MJCF's)
            ids = env.index(m)
            a, b = ids["qpos"], ids["qvel"]
            q = d.qpos[:, a + 3:a + 7]
            lever = np.cross(d.qvel[:, b + 3:b + 6], com)
            return d.qvel[:, b:b + 3] + quat.to_world(q[:, 0], q[:, 1], q[:, 2], q[:, 3], lever)
    elif source == "freejoint":
        native = "body" if angular else "world"

        def read(env, m, d):
            b = env.index(m)["qvel"] + (3 if angular else 0)
            return d.qvel[:, b:b + 3]
    else:
        native = "body"
        adr = _sensor(model, source, ("gyro",) if angular else ("velocimeter",), at("source"))

        def read(env, m, d):
            return d.sensordata[:, adr:adr + 3]
    if frame == native:
        return read

    def expressed(env, m, d):
        v = read(env, m, d)
        w, x, y, z = quat.split(rotation(env, m, d), order)
        if frame == "body":  # native world
            return quat.to_body(w, x, y, z, v)
        world = v if native == "world" else quat.to_world(w, x, y, z, v)
        return world if frame == "world" else quat.to_heading(quat.yaw_of(w, x, y, z), world)
    return expressed


def _joint_term(contract, robot, model, actions, cfg, where: str, at) -> Term:
    import mujoco

    joints = cfg.joints or contract.contract.joints or actions.joints
    names = [n for n in _names(model)["joint"] if n]
    for name in joints:
        if name not in names:
            raise ContractError(f"{at('joints') if cfg.joints else where}: no joint named {name!r} in "
                                f"{robot.robot.scene}{did_you_mean(name, names)}")
    ids = [model.joint(n).id for n in joints]
    velocity = cfg.term.startswith("joint_vel")
    source = cfg.source or ("qvel" if velocity else "qpos")
    if source == "sensors":
        kind = mujoco.mjtSensor.mjSENS_JOINTVEL if velocity else mujoco.mjtSensor.mjSENS_JOINTPOS
        adrs = []
        for name, j in zip(joints, ids):
            found = [s for s in range(model.nsensor) if model.sensor_type[s] == kind and model.sensor_objid[s] == j]
            if not found:
                raise ContractError(f"{at('source')}: source: sensors, but joint {name!r} has no "
                                    f"{'jointvel' if velocity else 'jointpos'} sensor in the MJCF; add one or read "
                                    f"{'qvel' if velocity else 'qpos'}")
            adrs.append(int(model.sensor_adr[found[0]]))
        adr = _columns(adrs)
        read = lambda env, m, d: d.sensordata[:, adr]  # noqa: E731
    elif source in ("qpos", "qvel") and source == ("qvel" if velocity else "qpos"):
        adr = _columns([model.jnt_dofadr[j] if velocity else model.jnt_qposadr[j] for j in ids])
        read = (lambda env, m, d: d.qvel[:, adr]) if velocity else (lambda env, m, d: d.qpos[:, adr])
    else:
        raise ContractError(f"{at('source')}: source: {source!r}; a {cfg.term} term reads "
                            f"{'qvel' if velocity else 'qpos'} or sensors")
    n = len(joints)
    if cfg.term == "joint_pos_rel":
        default = default_pose(contract, robot, model, joints)
        return Term(cfg, lambda env, m, d: read(env, m, d) - default, n, where)
    if cfg.term == "joint_pos_norm":
        low, high = _ranges(model, joints, ids, at("joints"))
        return Term(cfg, lambda env, m, d: 2.0 * (read(env, m, d) - low) / (high - low) - 1.0, n, where)
    if cfg.term == "joint_vel_norm":
        limit = np.broadcast_to(np.asarray(cfg.max_velocity, dtype=np.float64), (n,)).copy() \
            if not isinstance(cfg.max_velocity, list) or len(cfg.max_velocity) == n else None
        if limit is None:
            raise ContractError(f"{at('max_velocity')}: {len(cfg.max_velocity)} values for {n} joints")
        return Term(cfg, lambda env, m, d: read(env, m, d) / limit, n, where)
    return Term(cfg, read, n, where)  # joint_pos, joint_vel, joint_vel_rel (the default velocity is 0)


def default_pose(contract, robot, model, joints: list[str]) -> np.ndarray:
    """The contract's default pose for ``joints``: its ``default_pose`` where stated, else the
    reset keyframe's."""
    key = model.key(robot.robot.reset.keyframe).id
    stated = contract.contract.default_pose or {}
    return np.array([float(stated[j]) if j in stated else float(model.key_qpos[key][model.jnt_qposadr[model.joint(j).id]])
                     for j in joints])


def _ranges(model, joints, ids, where: str):
    unlimited = [n for n, j in zip(joints, ids) if not model.jnt_limited[j]]
    if unlimited:
        raise ContractError(f"{where}: joint(s) {', '.join(unlimited)} have no range in the MJCF, so a value "
                            "normalised to the range is undefined")
    return model.jnt_range[ids, 0].copy(), model.jnt_range[ids, 1].copy()


def _contact_force(how: str):
    """The net contact force of parts (their sensors' addresses ``adr``), ``(n, parts)``."""
    if how == "z":
        return lambda s, adr: np.abs(s[:, adr + 3])

    def norm(s, adr):
        f = s[:, adr[:, None] + _XYZ]  # (n, parts, xyz)
        return np.sqrt(np.sum(f * f, axis=-1))
    return norm


_XYZ = np.arange(1, 4)  # a contact sensor's force after its contact count


def _command_term(model, cfg, where: str, at) -> Term:
    """The episode's velocity command (heading frame), and a heading hold's yaw-rate command:
    the commanded rate plus ``heading_gain`` × the heading error, clipped to ±``max_yaw_rate``."""
    components = list(cfg.components)
    n_values = len([c for c in components if c != "heading_hold"])
    given = cfg.ranges if cfg.ranges is not None else cfg.value
    if len(given) != n_values:
        raise ContractError(f"{at('ranges' if cfg.ranges is not None else 'value')}: {len(given)} entries for the "
                            f"{n_values} commanded component(s) {', '.join(c for c in components if c != 'heading_hold')}")
    if "heading_hold" in components and (cfg.heading_gain is None or cfg.max_yaw_rate is None):
        raise ContractError(f"{where}: heading_hold needs 'heading_gain' (1/s) and 'max_yaw_rate' (rad/s)")
    rotation = _quat(model, cfg.quat_source, at("quat_source"))
    order = cfg.quat_order or "wxyz"
    gain, limit = cfg.heading_gain, cfg.max_yaw_rate

    def raw(env, m, d):
        u = d.userdata
        command = env.layout["command"].start
        out = np.empty((len(u), len(components)))
        for k, name in enumerate(components):
            if name != "heading_hold":
                out[:, k] = u[:, command + _SLOT[name]]
                continue
            w, x, y, z = quat.split(rotation(env, m, d), order)
            time = np.asarray(d.time, dtype=np.float64).reshape(-1)
            rate, start = u[:, command + 2], u[:, env.layout["start"].start + 2]
            error = quat.wrap(start + rate * time - quat.yaw_of(w, x, y, z))
            if gain != 1.0:  # (x · 1.0 is x, bit for bit: the multiplication is skipped)
                error = gain * error
            out[:, k] = (rate + error).clip(-limit, limit)
        return out
    return Term(cfg, raw, len(components), where)
