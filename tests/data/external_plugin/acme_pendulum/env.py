"""Hold a pendulum upright with one torque motor (±5 N·m) from a tilted start.

Observation (2): hinge angle (rad, 0 upright) and rate (rad/s), from the model's sensors.
Action (1): motor command in [-1, 1]. Falling past 0.8 rad ends the episode as ``fell``;
success is being within 0.05 rad of upright at the horizon.
"""

from pathlib import Path

import numpy as np

from simgate import MujocoEnv


class Pendulum(MujocoEnv):
    name = "acme-pendulum"
    xml_path = Path(__file__).with_name("pendulum.xml")  # build_model and build_spec follow
    control_hz = 50.0
    observation_size = 2
    action_size = 1

    def reset(self, model, data, rng):
        # only from rng: the episode's seed fixes its start
        data.qpos[0] = rng.uniform(-0.2, 0.2)
        data.qvel[0] = rng.uniform(-0.2, 0.2)

    # row rules: data fields are (n, ...) arrays, one row per episode (both engines use them)
    def observe_rows(self, model, data):
        return np.asarray(data.sensordata[:, :2], dtype=np.float64)

    def ctrl_rows(self, model, data, actions):
        return np.clip(actions, -1.0, 1.0)

    def terminated_rows(self, model, data):
        return ["fell" if abs(a) > 0.8 else None for a in data.qpos[:, 0]]

    # end-of-episode rules: once per episode, on its own model and data
    def succeeded(self, model, data):
        return bool(abs(data.qpos[0]) < 0.05)
