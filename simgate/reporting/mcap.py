"""An episode as an MCAP file: what a robotics engineer opens in Foxglove.

Why MCAP rather than a Rerun recording: MCAP is an open container with a small pure-Python writer
(the ``mcap`` package), read by Foxglove, ROS 2 bags and ``mcap`` CLI tools alike, and a JSON
channel needs no message compiler. Rerun's SDK is a large native wheel whose recording format
changes between versions.

Channels, all JSON (``message_encoding: json``, a JSON schema each), one message per recorded
state, stamped with the simulated time:

* ``/tf`` (``foxglove.FrameTransforms``): every body's pose in the ``world`` frame, so the 3D
  panel shows the robot's frames move;
* ``/joint_states``: names, positions and velocities of the hinge and slide joints;
* ``/actions``: what the policy commanded for the control step that starts at this state;
* ``/torques``: each actuator's force at this state (N·m, N for slides).

A :class:`Trajectory` is filled by an engine observer (``run_episode(..., observer=t.record)``)
and written with :func:`write_mcap`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from simgate.errors import SimgateError

_TIME = {"type": "object", "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}}}
_VECTOR = {"type": "object", "properties": {k: {"type": "number"} for k in "xyz"}}
_QUATERNION = {"type": "object", "properties": {k: {"type": "number"} for k in "xyzw"}}
_TRANSFORM = {"type": "object", "properties": {
    "timestamp": _TIME, "parent_frame_id": {"type": "string"}, "child_frame_id": {"type": "string"},
    "translation": _VECTOR, "rotation": _QUATERNION}}


def _named(values: str) -> dict:
    return {"type": "object", "properties": {"timestamp": _TIME, "name": {"type": "array", "items": {"type": "string"}},
                                             values: {"type": "array", "items": {"type": "number"}}}}


#: topic -> (schema name, JSON schema)
SCHEMAS = {
    "/tf": ("foxglove.FrameTransforms", {"type": "object", "properties": {
        "transforms": {"type": "array", "items": _TRANSFORM}}}),
    "/joint_states": ("simgate.JointStates", {"type": "object", "properties": {
        **_named("position")["properties"], "velocity": {"type": "array", "items": {"type": "number"}}}}),
    "/actions": ("simgate.Actions", _named("value")),
    "/torques": ("simgate.Torques", _named("value")),
}


@dataclasses.dataclass
class Trajectory:
    """An episode's states over time. Arrays are per recorded state: ``(T, ...)``."""

    body_names: list[str] = dataclasses.field(default_factory=list)
    joint_names: list[str] = dataclasses.field(default_factory=list)
    actuator_names: list[str] = dataclasses.field(default_factory=list)
    time: list[float] = dataclasses.field(default_factory=list)
    body_pos: list[np.ndarray] = dataclasses.field(default_factory=list)  # (nbody, 3), world frame
    body_quat: list[np.ndarray] = dataclasses.field(default_factory=list)  # (nbody, 4), w x y z
    joint_pos: list[np.ndarray] = dataclasses.field(default_factory=list)
    joint_vel: list[np.ndarray] = dataclasses.field(default_factory=list)
    torques: list[np.ndarray] = dataclasses.field(default_factory=list)
    #: (length, action_size): the episode's commanded actions (``Episode.actions``); action k
    #: belongs to the state recorded before control step k
    actions: np.ndarray | None = None
    _qpos: np.ndarray | None = None
    _dof: np.ndarray | None = None

    def record(self, model, data, step: int = 0) -> None:
        """An engine observer: call with each state (the start, then after every control step)."""
        if self._qpos is None:
            self._names(model)
        self.time.append(float(data.time))
        self.body_pos.append(np.array(data.xpos))
        self.body_quat.append(np.array(data.xquat))
        self.joint_pos.append(np.array(data.qpos)[self._qpos])
        self.joint_vel.append(np.array(data.qvel)[self._dof])
        self.torques.append(np.array(data.actuator_force))

    def _names(self, model) -> None:
        import mujoco

        def name(kind, i, fallback):
            return mujoco.mj_id2name(model, kind, i) or f"{fallback}{i}"

        self.body_names = ["world"] + [name(mujoco.mjtObj.mjOBJ_BODY, i, "body") for i in range(1, model.nbody)]
        scalar = [j for j in range(model.njnt)
                  if int(model.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))]
        self.joint_names = [name(mujoco.mjtObj.mjOBJ_JOINT, j, "joint") for j in scalar]
        self._qpos = np.array([model.jnt_qposadr[j] for j in scalar], dtype=int)
        self._dof = np.array([model.jnt_dofadr[j] for j in scalar], dtype=int)
        self.actuator_names = [name(mujoco.mjtObj.mjOBJ_ACTUATOR, i, "actuator") for i in range(model.nu)]


def _stamp(t: float) -> dict:
    ns = int(round(t * 1e9))
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def write_mcap(path, trajectory: Trajectory) -> Path:
    """Write ``trajectory`` to ``path`` (``.mcap``): the channels of this module's docstring,
    zstd-compressed chunks, with the ``mcap`` package (one of simgate's dependencies)."""
    try:
        from mcap.writer import CompressionType, Writer
    except ImportError:
        raise SimgateError("writing MCAP needs the mcap package, a dependency of simgate: pip install mcap") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = trajectory
    with open(path, "wb") as stream:
        writer = Writer(stream, compression=CompressionType.ZSTD)
        writer.start(profile="", library="simgate")
        channels = {}
        for topic, (schema_name, schema) in SCHEMAS.items():
            sid = writer.register_schema(name=schema_name, encoding="jsonschema", data=json.dumps(schema).encode())
            channels[topic] = writer.register_channel(topic=topic, message_encoding="json", schema_id=sid)

        def put(topic, ns, message):
            writer.add_message(channel_id=channels[topic], log_time=ns, publish_time=ns, data=json.dumps(message).encode())

        for k, time in enumerate(t.time):
            ns, stamp = int(round(time * 1e9)), _stamp(time)
            transforms = [{"timestamp": stamp, "parent_frame_id": "world", "child_frame_id": body,
                           "translation": dict(zip("xyz", map(float, t.body_pos[k][b]))),
                           "rotation": dict(zip("wxyz", map(float, t.body_quat[k][b])))}
                          for b, body in enumerate(t.body_names) if b > 0]
            put("/tf", ns, {"transforms": transforms})
            put("/joint_states", ns, {"timestamp": stamp, "name": t.joint_names,
                                      "position": [float(v) for v in t.joint_pos[k]],
                                      "velocity": [float(v) for v in t.joint_vel[k]]})
            put("/torques", ns, {"timestamp": stamp, "name": t.actuator_names, "value": [float(v) for v in t.torques[k]]})
            if t.actions is not None and k < len(t.actions):
                put("/actions", ns, {"timestamp": stamp, "name": [f"action{i}" for i in range(t.actions.shape[1])],
                                     "value": [float(v) for v in t.actions[k]]})
        writer.finish()
    return path
