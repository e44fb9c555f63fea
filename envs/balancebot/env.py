"""balancebot: a planar two-wheeled balancing robot that must drive to ``target_x``.

Model (``balancebot.xml``): a 1.5 kg chassis (COM 0.197 m above the axle) on one lumped
wheel of radius 0.06 m that rolls on the floor through frictional contact; one torque motor
``wheel_motor`` between chassis and wheel, ctrl in [-1, 1] -> +-1.5 N·m.
Physics at 500 Hz, control at 50 Hz (frame_skip 10).

Observation (float64, 4), raw sensor channels only, as a real robot would have them:

====  ==============  =======  ===========================================================
idx   name            unit     source
====  ==============  =======  ===========================================================
0     pitch           rad      ``imu_quat`` (framequat of the IMU site), +pitch leans to +x
1     pitch_rate      rad/s    ``imu_gyro`` y component
2     wheel_angle     rad      ``wheel_pos`` encoder (wheel relative to chassis)
3     wheel_rate      rad/s    ``wheel_vel`` encoder
====  ==============  =======  ===========================================================

The robot has no position sensor: its odometry is ``x = R * (pitch + wheel_angle)``, valid
while the wheel does not slip. ``reset`` zeroes the encoder so that odometry starts at the true
x = 0, hence a slipping wheel shows up as odometry drift, exactly as on hardware.

Observation groups: ``imu`` = [0, 1], ``encoders`` = [2, 3].

Action (1): wheel torque command in [-1, 1] (clipped).

Task: start within +-0.1 rad of upright with small velocities, stay up, and be within 0.2 m
of ``target_x`` = 1.0 m at the horizon. Falling (|pitch| > 0.6 rad, well before the chassis
can touch the floor) ends the episode with ``"fell"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from simgate.envs.base import MujocoEnv

XML_PATH = Path(__file__).with_name("balancebot.xml")

# The contact sinks the resting wheel this far into the floor; starting there avoids a drop.
_SETTLED_Z = -3.0e-4


class BalanceBot(MujocoEnv):
    """Balance upright and drive to ``target_x`` on a wheel that can slip."""

    name: ClassVar[str] = "balancebot"
    xml_path: ClassVar[Path] = XML_PATH
    control_hz: ClassVar[float] = 50.0
    observation_size: ClassVar[int] = 4
    action_size: ClassVar[int] = 1
    progress_unit: ClassVar[str] = "m"
    #: how far from upright it rides (rad): a balancing-quality signal, averaged per episode
    signals: ClassVar[tuple[str, ...]] = ("abs_pitch",)

    target_x: ClassVar[float] = 1.0
    success_tolerance: ClassVar[float] = 0.2
    fall_pitch: ClassVar[float] = 0.6
    # initial-state ranges (uniform, symmetric)
    init_pitch: ClassVar[float] = 0.1
    init_pitch_rate: ClassVar[float] = 0.2
    init_speed: ClassVar[float] = 0.05

    def __init__(self) -> None:
        self._ids: dict | None = None

    # -- model -------------------------------------------------------------------------------
    def _index(self, model) -> dict:
        """Addresses by name, looked up once: perturbed copies share the nominal layout."""
        if self._ids is None:
            self._ids = {
                "x": model.joint("x").qposadr[0],
                "z": model.joint("z").qposadr[0],
                "pitch": model.joint("pitch").qposadr[0],
                "wheel": model.joint("wheel").qposadr[0],
                "x_v": model.joint("x").dofadr[0],
                "pitch_v": model.joint("pitch").dofadr[0],
                "wheel_v": model.joint("wheel").dofadr[0],
                "gyro": model.sensor("imu_gyro").adr[0],
                "quat": model.sensor("imu_quat").adr[0],
                "enc_pos": model.sensor("wheel_pos").adr[0],
                "enc_vel": model.sensor("wheel_vel").adr[0],
                "wheel_geom": model.geom("wheel").id,
            }
        return self._ids

    def wheel_radius(self, model) -> float:
        return float(model.geom_size[self._index(model)["wheel_geom"], 0])

    # -- episode -----------------------------------------------------------------------------
    def reset(self, model, data, rng: np.random.Generator) -> None:
        ids = self._index(model)
        pitch = rng.uniform(-self.init_pitch, self.init_pitch)
        pitch_rate = rng.uniform(-self.init_pitch_rate, self.init_pitch_rate)
        speed = rng.uniform(-self.init_speed, self.init_speed)
        radius = self.wheel_radius(model)
        data.qpos[ids["z"]] = _SETTLED_Z
        data.qpos[ids["pitch"]] = pitch
        # encoder zeroed with the absolute wheel angle at 0, so odometry starts at x = 0
        data.qpos[ids["wheel"]] = -pitch
        data.qvel[ids["x_v"]] = speed
        data.qvel[ids["pitch_v"]] = pitch_rate
        # start rolling, not skidding
        data.qvel[ids["wheel_v"]] = speed / radius - pitch_rate

    # -- rules: each written once, over rows (MujocoEnv derives the per-episode forms) -----------
    def observe_rows(self, model, data) -> np.ndarray:
        ids = self._index(model)
        s = data.sensordata
        qw, qy = s[:, ids["quat"]], s[:, ids["quat"] + 2]
        # planar body: the quaternion is a pure y rotation
        return np.stack([2.0 * np.arctan2(qy, qw), s[:, ids["gyro"] + 1], s[:, ids["enc_pos"]], s[:, ids["enc_vel"]]],
                        axis=1)

    def ctrl_rows(self, model, data, actions: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(actions, dtype=np.float64).reshape(len(actions), -1), -1.0, 1.0)

    def terminated_rows(self, model, data) -> list[str | None]:
        # past this tilt no torque brings it back, long before the chassis meets the floor (at
        # about 89°); a NaN pitch is left to the engine's divergence check, not called a fall
        fell = np.abs(data.qpos[:, self._index(model)["pitch"]]) > self.fall_pitch
        return ["fell" if f else None for f in fell]

    def reward_rows(self, model, data) -> np.ndarray:
        # minus the distance to the target integrated over time (m·s): the return ranks how fast
        # and how closely a policy got there
        return -np.abs(data.qpos[:, self._index(model)["x"]] - self.target_x) / self.control_hz

    def signal_rows(self, model, data) -> np.ndarray:
        return np.abs(data.qpos[:, self._index(model)["pitch"]])[:, None]

    # -- end of episode --------------------------------------------------------------------------
    def succeeded(self, model, data) -> bool:
        x = data.qpos[self._index(model)["x"]]
        return self.terminated(model, data) is None and abs(x - self.target_x) < self.success_tolerance

    def progress(self, model, data) -> float:
        # every episode starts at x = 0, so the position is the distance made toward the target
        return float(data.qpos[self._index(model)["x"]])

    # -- description -------------------------------------------------------------------------
    def observation_groups(self) -> dict[str, list[int]]:
        return {"imu": [0, 1], "encoders": [2, 3]}
