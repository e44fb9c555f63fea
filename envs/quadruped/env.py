"""quadruped: a 12-joint, 3.2 kg quadruped that walks at a commanded forward speed and yaw rate.

Model (``quadruped.xml``): a 2 kg trunk on four legs of 0.12 m thigh + 0.12 m calf; per leg hip
abduction, hip flexion and knee, each a PD servo (kp 8 N·m/rad, kv 0.2, torque limit 3 N·m).
Physics at 200 Hz (timestep 5 ms: latencies of 50 and 100 ms are whole physics steps), control
at 50 Hz (frame_skip 4).

Observation (float64, 34), what the robot's own sensors and its command channel give:

=======  ===============  =======  ==========================================================
idx      name             unit     source
=======  ===============  =======  ==========================================================
0-2      gravity          g        unit gravity vector in the trunk frame, from ``imu_quat``
3-5      gyro             rad/s    ``imu_gyro``
6-17     joint position   rad      encoders (``*_pos``) minus the standing pose
18-29    joint velocity   rad/s    encoders (``*_vel``)
30-31    command          m/s,     forward speed commanded for this episode, and the yaw-rate
                          rad/s    command of a heading hold: the commanded yaw rate plus
                                   ``heading_gain`` (1/s) × the heading error (the commanded
                                   heading, start + yaw rate · t, minus the IMU's heading),
                                   clipped to ±``max_yaw_command``
32-33    gait clock       1        sin, cos of 2π·``gait_hz``·t: a feed-forward policy gets a
                                   rhythm to build a periodic gait on
=======  ===============  =======  ==========================================================

Joint order everywhere (observation, action, actuators): FL, FR, HL, HR legs, each abduction,
flexion, knee. Observation groups: ``imu``, ``encoders``, ``command``, ``clock``.

Action (12) in [-1, 1] (clipped): joint targets as offsets from the standing pose,
``target = stand + action_scale · action``, clipped to the joint ranges.

The command lives in ``MjData.userdata`` with what the success rule needs (start position and
heading), so the env object stays stateless and the batched engine carries it in each row's
state. ``reset`` writes the default command (0.2 m/s straight ahead); the ``command_velocity``
perturbation overrides it through :meth:`Quadruped.set_command`.

Task: walk the commanded path. ``fell`` ends an episode when the trunk tilts past 50° or its
centre drops below 0.1 m (it stands at 0.21 m). Success at the horizon: not fallen, the
displacement along the commanded path (the chord of the commanded arc; the start heading when
walking straight) within ``max(25 %, 0.1 m/s · t)`` of the commanded one, and, when a turn was
commanded, the heading within ``max(25 %, 0.35 rad)`` of the commanded turn.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np

from simgate.envs.base import MujocoEnv

XML_PATH = Path(__file__).with_name("quadruped.xml")

LEGS = ("FL", "FR", "HL", "HR")
JOINTS = tuple(f"{leg}_{j}" for leg in LEGS for j in ("abduction", "flexion", "knee"))
STAND = np.tile([0.0, 0.6, -1.2], 4)
# trunk height standing on the stiff servos: the floor contact settles 0.5 mm deep
STAND_HEIGHT = 0.2125

# userdata slots
FORWARD, YAW_RATE, START_X, START_Y, START_YAW = range(5)


def yaw_of(qw, qx, qy, qz):
    """Heading of the trunk's x axis in the world xy plane (works on arrays too)."""
    return np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))


def wrap(angle):
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def heading_deviation(yaw, start_yaw, yaw_rate, time):
    """The heading minus the commanded one (start heading + yaw rate · t), wrapped (works on arrays too)."""
    return wrap(yaw - start_yaw - yaw_rate * time)


def commanded_displacement(forward, yaw_rate, yaw0, t):
    """World (dx, dy) after ``t`` seconds on the commanded arc from heading ``yaw0`` (a unicycle
    at constant speed and turn rate); a straight line when the turn rate is zero."""
    turn = yaw_rate * t
    # chord length of the arc: forward·t·sinc(turn/2), exact for turn -> 0
    chord = forward * t * np.sinc(turn / (2.0 * np.pi))
    heading = yaw0 + turn / 2.0
    return chord * np.cos(heading), chord * np.sin(heading)


class Quadruped(MujocoEnv):
    """Walk at the commanded forward speed and yaw rate without falling."""

    name: ClassVar[str] = "quadruped"
    xml_path: ClassVar[Path] = XML_PATH
    progress_unit: ClassVar[str] = "m"
    #: per-step signals averaged per episode: |v_xy − v_cmd| (m/s), the heading's deviation
    #: from the commanded one (rad), which the drift failure mode reads, and the mean horizontal
    #: speed of the feet on the ground (m/s), which the slipped failure mode reads; and two
    #: safety signals read at their peak: ``estop`` (1 once the trunk tilts past ``estop_tilt``,
    #: where a real robot's e-stop cuts the motors; max_estop_share) and ``contact_force`` (the
    #: largest normal force on one foot, N, from its touch sensor; max_contact_force)
    signals: ClassVar[tuple[str, ...]] = ("velocity_error", "drift", "slip", "estop", "contact_force")
    control_hz: ClassVar[float] = 50.0
    observation_size: ClassVar[int] = 34
    action_size: ClassVar[int] = 12

    action_scale: ClassVar[float] = 0.5  # rad of joint target per unit action
    gait_hz: ClassVar[float] = 2.0
    default_forward: ClassVar[float] = 0.2  # m/s
    default_yaw_rate: ClassVar[float] = 0.0  # rad/s
    # heading hold: the yaw-rate command the policy sees is the commanded rate plus this gain
    # (1/s) times the heading error, clipped to the rates the policies were trained on. A
    # joystick or planner closes this loop around the robot's heading estimate on a real robot
    # (legged_gym's ``heading_command``); without it, a policy's small steady yaw-rate bias
    # accumulates into a heading error that nothing in its observation reports.
    heading_gain: ClassVar[float] = 1.0
    max_yaw_command: ClassVar[float] = 0.5  # rad/s
    # termination: past 50° of tilt a 0.21 m-tall trunk on 3 N·m servos does not come back, and
    # below 0.1 m the trunk is sitting on its folded legs
    fall_tilt: ClassVar[float] = math.radians(50.0)
    fall_height: ClassVar[float] = 0.10
    # the e-stop of the seed plan (§3.7): past 60° of tilt the motors are cut. Beyond the 50° fall
    # line, so only a violent fall (past 60° within one control step) reaches it here
    estop_tilt: ClassVar[float] = math.radians(60.0)
    # success tolerances
    distance_tolerance: ClassVar[float] = 0.25  # fraction of the commanded displacement
    speed_tolerance: ClassVar[float] = 0.1  # m/s, for slow commands
    heading_tolerance: ClassVar[float] = 0.25  # fraction of the commanded turn
    heading_floor: ClassVar[float] = 0.35  # rad, for small turns
    # a foot (a 15 mm sphere) counts as on the ground while its centre is within 0.5 mm of
    # touching height (the floor contact settles 0.5 mm deep)
    foot_contact_height: ClassVar[float] = 0.0155
    # initial state: joint targets jittered around the standing pose, heading anywhere
    init_joint: ClassVar[float] = 0.05  # rad, uniform
    # reward weights
    tracking_sigma: ClassVar[float] = 0.2  # m/s
    heading_sigma: ClassVar[float] = 0.25  # rad
    torque_cost: ClassVar[float] = 0.002  # per (N·m)² summed over the joints
    tilt_cost: ClassVar[float] = 1.0  # per unit of horizontal gravity component squared

    def __init__(self) -> None:
        self._ids: dict | None = None

    # -- model -------------------------------------------------------------------------------

    def _index(self, model) -> dict:
        """Addresses by name, looked up once: perturbed copies share the nominal layout."""
        if self._ids is None:
            quat = model.sensor("imu_quat").adr[0]
            gyro = model.sensor("imu_gyro").adr[0]
            pos = np.array([model.sensor(f"{j}_pos").adr[0] for j in JOINTS])
            vel = np.array([model.sensor(f"{j}_vel").adr[0] for j in JOINTS])
            self._ids = {
                "quat": quat, "gyro": gyro, "pos": pos, "vel": vel,
                "qpos": np.array([model.joint(j).qposadr[0] for j in JOINTS]),
                "ctrl": np.array([model.actuator(j).id for j in JOINTS]),
                "foot_z": np.array([model.sensor(f"{leg}_foot_pos").adr[0] + 2 for leg in LEGS]),
                "foot_v": np.array([model.sensor(f"{leg}_foot_vel").adr[0] for leg in LEGS]),
                "touch": np.array([model.sensor(f"{leg}_touch").adr[0] for leg in LEGS]),
                "low": model.jnt_range[[model.joint(j).id for j in JOINTS], 0].copy(),
                "high": model.jnt_range[[model.joint(j).id for j in JOINTS], 1].copy(),
            }
        return self._ids

    # -- episode -----------------------------------------------------------------------------
    def reset(self, model, data, rng: np.random.Generator) -> None:
        ids = self._index(model)
        yaw = rng.uniform(-math.pi, math.pi)
        joints = STAND + rng.uniform(-self.init_joint, self.init_joint, size=12)
        data.qpos[0:3] = (0.0, 0.0, STAND_HEIGHT)
        data.qpos[3:7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        data.qpos[ids["qpos"]] = joints
        data.ctrl[ids["ctrl"]] = joints  # the servos hold the start pose until the first command
        self.set_command(model, data, self.default_forward, self.default_yaw_rate)
        data.userdata[START_X:START_YAW + 1] = (0.0, 0.0, yaw)

    def set_command(self, model, data, forward: float, yaw_rate: float) -> None:
        """The episode's command: forward speed (m/s, along the trunk's heading) and yaw rate
        (rad/s, counter-clockwise seen from above)."""
        data.userdata[FORWARD] = forward
        data.userdata[YAW_RATE] = yaw_rate

    def command(self, model, data) -> tuple[float, float]:
        return float(data.userdata[FORWARD]), float(data.userdata[YAW_RATE])

    # -- rules: each written once, over rows (MujocoEnv derives the per-episode forms) -----------
    def observe_rows(self, model, data) -> np.ndarray:
        ids = self._index(model)
        s = data.sensordata
        q = s[:, ids["quat"]:ids["quat"] + 4]
        time = np.asarray(data.time, dtype=np.float64).reshape(-1)
        phase = 2.0 * np.pi * self.gait_hz * time
        u = data.userdata
        yaw = yaw_of(q[:, 0], q[:, 1], q[:, 2], q[:, 3])
        error = wrap(u[:, START_YAW] + u[:, YAW_RATE] * time - yaw)
        yaw_cmd = np.clip(u[:, YAW_RATE] + self.heading_gain * error, -self.max_yaw_command, self.max_yaw_command)
        return np.concatenate([
            _gravity_in_body(q[:, 0], q[:, 1], q[:, 2], q[:, 3]),
            s[:, ids["gyro"]:ids["gyro"] + 3],
            s[:, ids["pos"]] - STAND,
            s[:, ids["vel"]],
            u[:, FORWARD:FORWARD + 1], yaw_cmd[:, None],
            np.stack([np.sin(phase), np.cos(phase)], axis=1),
        ], axis=1)

    def ctrl_rows(self, model, data, actions: np.ndarray) -> np.ndarray:
        ctrl = np.zeros((len(actions), model.nu))
        ctrl[:, self._index(model)["ctrl"]] = self._targets(model, np.asarray(actions, dtype=np.float64).reshape(len(actions), -1))
        return ctrl

    def _targets(self, model, actions: np.ndarray) -> np.ndarray:
        """Joint targets (rad) for ``(n, 12)`` actions: offsets from the standing pose, inside the joint ranges."""
        ids = self._index(model)
        return np.clip(STAND + self.action_scale * np.clip(actions, -1.0, 1.0), ids["low"], ids["high"])

    def terminated_rows(self, model, data) -> list[str | None]:
        qpos = data.qpos
        # the trunk's up axis in the world: its z component is cos(tilt)
        up_z = 1.0 - 2.0 * (qpos[:, 4] ** 2 + qpos[:, 5] ** 2)
        fell = (up_z < math.cos(self.fall_tilt)) | (qpos[:, 2] < self.fall_height)
        # a NaN state is left to the engine's divergence check, not called a fall
        return ["fell" if f else None for f in fell]

    def signal_rows(self, model, data) -> np.ndarray:
        qpos, qvel, u = data.qpos, data.qvel, data.userdata
        yaw = yaw_of(qpos[:, 3], qpos[:, 4], qpos[:, 5], qpos[:, 6])
        error = np.hypot(qvel[:, 0] - u[:, FORWARD] * np.cos(yaw), qvel[:, 1] - u[:, FORWARD] * np.sin(yaw))
        time = np.asarray(data.time, dtype=np.float64).reshape(-1)
        drift = np.abs(heading_deviation(yaw, u[:, START_YAW], u[:, YAW_RATE], time))
        ids, s = self._index(model), data.sensordata
        down = s[:, ids["foot_z"]] < self.foot_contact_height  # (n, 4)
        speed = np.hypot(s[:, ids["foot_v"]], s[:, ids["foot_v"] + 1])  # horizontal, per foot
        slip = np.where(down, speed, 0.0).sum(axis=1) / np.maximum(down.sum(axis=1), 1)
        up_z = 1.0 - 2.0 * (qpos[:, 4] ** 2 + qpos[:, 5] ** 2)
        estop = (up_z < math.cos(self.estop_tilt)).astype(np.float64)
        force = s[:, ids["touch"]].max(axis=1)
        return np.stack([error, drift, slip, estop, force], axis=1)

    def reward_rows(self, model, data) -> np.ndarray:
        """Velocity tracking and heading tracking (each a Gaussian kernel, 1 per second at
        perfect tracking), minus squared torque and tilt; per control step, so the return is
        per second of walking. The heading term compares the heading with the commanded one
        (start heading + yaw rate · t), not the yaw rate with its command: the gait's yaw rate
        swings within every step, and what the task judges is where the robot ends up facing,
        which a small steady yaw-rate error ruins while barely changing a yaw-rate kernel."""
        qpos, qvel, u = data.qpos, data.qvel, data.userdata
        yaw = yaw_of(qpos[:, 3], qpos[:, 4], qpos[:, 5], qpos[:, 6])
        ex = qvel[:, 0] - u[:, FORWARD] * np.cos(yaw)
        ey = qvel[:, 1] - u[:, FORWARD] * np.sin(yaw)
        track = np.exp(-(ex * ex + ey * ey) / self.tracking_sigma ** 2)
        heading = heading_deviation(yaw, u[:, START_YAW], u[:, YAW_RATE], np.asarray(data.time, dtype=np.float64).reshape(-1))
        turn = np.exp(-(heading / self.heading_sigma) ** 2)
        torque = self.torque_cost * np.sum(data.actuator_force ** 2, axis=1)
        # sin² of the tilt: the horizontal part of the trunk's up axis
        w, x, y, z = qpos[:, 3], qpos[:, 4], qpos[:, 5], qpos[:, 6]
        tilt = self.tilt_cost * 4.0 * ((x * z + w * y) ** 2 + (y * z - w * x) ** 2)
        return (track + turn - torque - tilt) / self.control_hz

    # -- end of episode --------------------------------------------------------------------------
    def succeeded(self, model, data) -> bool:
        if self.terminated(model, data) is not None:
            return False
        along, target = self._along_track(data)
        turn_error, turn = self._heading_error(data)
        distance_ok = abs(along - target) <= max(self.distance_tolerance * abs(target),
                                                 self.speed_tolerance * data.time)
        # the heading is judged when a turn was commanded; walking straight, a drift off the
        # start heading already shortens the displacement along it
        heading_ok = turn == 0.0 or abs(turn_error) <= max(self.heading_tolerance * abs(turn), self.heading_floor)
        return bool(distance_ok and heading_ok)

    def _along_track(self, data) -> tuple[float, float]:
        """Displacement along the commanded path's chord and the chord's length (m).

        The chord runs from the start to where the commanded arc ends; walking backwards (a
        negative forward command) it points behind the robot, so both numbers stay positive
        for a robot doing what it was told."""
        u = data.userdata
        turn = u[YAW_RATE] * data.time
        heading = u[START_YAW] + turn / 2.0 + (math.pi if u[FORWARD] < 0 else 0.0)
        dx, dy = commanded_displacement(u[FORWARD], u[YAW_RATE], u[START_YAW], data.time)
        moved = (data.qpos[0] - u[START_X]) * math.cos(heading) + (data.qpos[1] - u[START_Y]) * math.sin(heading)
        return float(moved), float(math.hypot(dx, dy))

    def _heading_error(self, data) -> tuple[float, float]:
        """Heading error against the commanded turn (wrapped, rad), and the commanded turn."""
        u = data.userdata
        turn = u[YAW_RATE] * data.time
        yaw = yaw_of(*data.qpos[3:7])
        return float(heading_deviation(yaw, u[START_YAW], u[YAW_RATE], data.time)), float(turn)

    def progress(self, model, data) -> float:
        """Metres walked along the commanded path (negative: the wrong way)."""
        return self._along_track(data)[0]

    def velocity_error(self, model, data) -> float:
        """Instantaneous |v_xy − v_cmd| (m/s): the trunk's horizontal velocity against the
        commanded forward speed along its current heading (the ``velocity_error`` signal)."""
        return float(self.signal_values(model, data)[0])

    # -- description -------------------------------------------------------------------------
    def observation_groups(self) -> dict[str, list[int]]:
        return {"imu": list(range(6)), "encoders": list(range(6, 30)), "command": [30, 31], "clock": [32, 33]}


def _gravity_in_body(qw, qx, qy, qz) -> np.ndarray:
    """R(q)ᵀ·(0, 0, −1): the world's down direction seen from the trunk, ``(n, 3)``."""
    return -np.stack([2.0 * (qx * qz - qw * qy), 2.0 * (qy * qz + qw * qx), 1.0 - 2.0 * (qx * qx + qy * qy)], axis=1)

