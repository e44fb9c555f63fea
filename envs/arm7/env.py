"""arm7: a 7-DOF torque-controlled arm that must bring its fingertip to a target.

Model (``arm7.xml``): a ~1 m collaborative arm on a fixed pedestal, seven revolute joints with
limits, damping and armature, seven torque motors (N·m, gear 1: 80/80/40/40/12/12/12), joint
encoders and torque sensors. Physics at 500 Hz, control at 100 Hz (frame_skip 5).

Observation (float64, 17), what the arm's controller would be given:

=======  ==========  ======  =========================================================
idx      name        unit    source
=======  ==========  ======  =========================================================
0-6      q1..q7      rad     ``jointpos`` encoders
7-13     dq1..dq7    rad/s   ``jointvel`` encoders
14-16    target      m       target position in the base frame (the task's input)
=======  ==========  ======  =========================================================

Observation groups: ``joint_pos`` = [0..6], ``joint_vel`` = [7..13], ``target`` = [14..16].

Action (7): joint torques in N·m, clipped to each motor's ctrlrange.

Task: the arm starts near a folded ready pose (each joint within ±0.1 rad), at rest; the target
is drawn uniformly in a box in front of the robot. Success: the fingertip was within 2 cm of
the target, nearly still (below 5 cm/s), at some control step before the horizon ended.

How "before the horizon" is kept: the engines ask ``succeeded`` once, at the end, and count any
``terminated`` reason as a failure, so an early stop cannot mean success. Instead a latch in
``MjData.userdata`` records the first control step at which the fingertip was there.
``userdata`` is part of MuJoCo's integration state: it is hashed with the state every step and
carried by the batched engine's rows like ``qpos``. The latch is set by the termination rule
(``terminated_rows``; the reference engine asks it on a one-row view), which both engines
evaluate after every control step (the fingertip and its velocity are those the step's last
physics step saw, as for every derived quantity); it writes the latch back by assigning
``data.userdata``, which the row views write into each simulation's state. The rule itself never
ends the episode: the arm has no failure to stop for (self-collision is ignored).

Lengths are ``sqrt(sum(v * v))`` over the last axis, never ``np.linalg.norm`` of one vector,
which BLAS computes with a kernel chosen per CPU (see :class:`simgate.envs.base.MujocoEnv`).

``progress``: the fraction of the initial fingertip-target distance closed at the end
(1 = at the target, negative = further away than at the start).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from simgate.envs.base import MujocoEnv, OneRow

XML_PATH = Path(__file__).with_name("arm7.xml")

#: the userdata slots of the task's bookkeeping (``<size nuserdata="3"/>`` in the MJCF)
REACHED, INITIAL_DISTANCE, REACHED_AT = 0, 1, 2

#: the ready pose the arm starts near: upper arm tilted back, forearm forward, tool pointing
#: forward and down; its fingertip is at (0.31, 0, 0.51) m, 9 cm short of the target zone
READY = (0.0, -0.4, 0.0, 2.0, 0.0, 1.2, 0.0)


class Arm7Reach(MujocoEnv):
    """Reach a target drawn in a box in front of the robot."""

    name: ClassVar[str] = "arm7-reach"
    xml_path: ClassVar[Path] = XML_PATH
    control_hz: ClassVar[float] = 100.0
    observation_size: ClassVar[int] = 17
    action_size: ClassVar[int] = 7

    #: target zone in the base frame (m): 0.40-0.70 m in front, ±0.35 m aside, 0.15-0.65 m up;
    #: every point is 0.4-0.8 m from the shoulder, inside its 1.0 m reach
    zone_low: ClassVar[tuple] = (0.40, -0.35, 0.15)
    zone_high: ClassVar[tuple] = (0.70, 0.35, 0.65)
    success_tolerance: ClassVar[float] = 0.02
    #: "nearly still": a tenth of the reference controller's 0.5 m/s cruise speed
    still_speed: ClassVar[float] = 0.05
    init_joint_spread: ClassVar[float] = 0.1  # rad, uniform, per joint

    def __init__(self) -> None:
        self._ids: dict | None = None

    # -- model -------------------------------------------------------------------------------
    def _index(self, model) -> dict:
        """Addresses by name, looked up once: perturbed copies share the nominal layout."""
        if self._ids is None:
            self._ids = {
                "q": model.sensor("q1").adr[0],
                "dq": model.sensor("dq1").adr[0],
                "tip_vel": model.sensor("fingertip_vel").adr[0],
                "tip": model.site("fingertip").id,
                "mocap": int(model.body_mocapid[model.body("target").id]),
                "base": model.body("base").id,
            }
        return self._ids

    def base_position(self, model) -> np.ndarray:
        # the pedestal hangs off the world unrotated, so the base frame is a translation
        return model.body_pos[self._index(model)["base"]].copy()

    def draw_target(self, model, rng: np.random.Generator) -> np.ndarray:
        """A target in the world frame, uniform in the zone."""
        return self.base_position(model) + rng.uniform(self.zone_low, self.zone_high)

    # -- episode -----------------------------------------------------------------------------
    def reset(self, model, data, rng: np.random.Generator) -> None:
        import mujoco

        ids = self._index(model)
        spread = self.init_joint_spread
        data.qpos[:] = np.asarray(READY) + rng.uniform(-spread, spread, model.nq)
        data.mocap_pos[ids["mocap"]] = self.draw_target(model, rng)
        mujoco.mj_kinematics(model, data)
        data.userdata[INITIAL_DISTANCE] = self._distance(model, data)

    def _distance_rows(self, model, data) -> np.ndarray:
        """Fingertip-target distance of every row, ``(n,)``."""
        ids = self._index(model)
        return _lengths(data.site_xpos[:, ids["tip"]] - data.mocap_pos[:, ids["mocap"]])

    def _distance(self, model, data) -> float:
        """The same for one MjData: the row rule on a one-row view, so no second formula."""
        return float(self._distance_rows(model, OneRow(data))[0])

    # -- rules: each written once, over rows (MujocoEnv derives the per-episode forms) -----------
    def observe_rows(self, model, data) -> np.ndarray:
        ids = self._index(model)
        s = data.sensordata
        return np.concatenate([s[:, ids["q"]:ids["q"] + 7], s[:, ids["dq"]:ids["dq"] + 7],
                               data.mocap_pos[:, ids["mocap"]] - self.base_position(model)], axis=1)

    def ctrl_rows(self, model, data, actions: np.ndarray) -> np.ndarray:
        # no perturbation edits ctrlrange (motor weakness caps forcerange), so the nominal's holds
        return np.clip(np.asarray(actions, dtype=np.float64).reshape(len(actions), -1), model.actuator_ctrlrange[:, 0],
                       model.actuator_ctrlrange[:, 1])

    def terminated_rows(self, model, data) -> list[str | None]:
        # the success latch (see the module docstring); the arm itself never fails early
        ids = self._index(model)
        userdata = data.userdata
        speed = _lengths(data.sensordata[:, ids["tip_vel"]:ids["tip_vel"] + 3])
        there = (self._distance_rows(model, data) < self.success_tolerance) & (speed < self.still_speed)
        first = there & (userdata[:, REACHED] == 0.0)
        if first.any():
            userdata = np.array(userdata)
            userdata[first, REACHED] = 1.0
            userdata[first, REACHED_AT] = np.asarray(data.time, dtype=np.float64).reshape(-1)[first]
            data.userdata = userdata  # written back into each row's state
        return [None] * len(userdata)

    def reward_rows(self, model, data) -> np.ndarray:
        # minus the distance integrated over time (m·s): ranks how fast and how closely it got there
        return -self._distance_rows(model, data) / self.control_hz

    # -- end of episode --------------------------------------------------------------------------
    def succeeded(self, model, data) -> bool:
        return bool(data.userdata[REACHED] > 0.0)

    def progress(self, model, data) -> float:
        initial = data.userdata[INITIAL_DISTANCE]
        return 1.0 - self._distance(model, data) / initial if initial > 0 else 0.0

    # -- can the task be done at all ---------------------------------------------------------
    def reachability(self, model, rng: np.random.Generator, samples: int = 2000) -> float:
        """The share of targets, drawn from the zone as at reset, that some configuration within
        the joint limits reaches within the success tolerance: an upper bound on any policy's
        success rate, 0 for an impossible zone (see :mod:`envs.arm7.reachability`)."""
        targets = self.base_position(model) + rng.uniform(self.zone_low, self.zone_high, (samples, 3))
        return float(np.mean(self.reachable(model, targets, rng)))

    def task_feasibility(self, model, rng: np.random.Generator) -> float:
        return self.reachability(model, rng)

    def reachable(self, model, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Whether each of ``targets`` ``(n, 3)`` (world frame, e.g. an episode's
        ``data.mocap_pos``) can be reached within the success tolerance: ``(n,)`` bool."""
        from envs.arm7.kinematics import HingeChain
        from envs.arm7.reachability import reachable

        return reachable(HingeChain.from_model(model, "fingertip"), np.asarray(targets, dtype=np.float64).reshape(-1, 3),
                         self.success_tolerance, rng)

    def configuration_share(self, model, rng: np.random.Generator, samples: int = 2000) -> float:
        """The share of uniformly random joint configurations whose fingertip lies in the zone."""
        from envs.arm7.kinematics import HingeChain
        from envs.arm7.reachability import configuration_share

        base = self.base_position(model)
        return configuration_share(HingeChain.from_model(model, "fingertip"), base + np.asarray(self.zone_low),
                                   base + np.asarray(self.zone_high), samples, rng)

    # -- description -------------------------------------------------------------------------
    def observation_groups(self) -> dict[str, list[int]]:
        return {"joint_pos": list(range(0, 7)), "joint_vel": list(range(7, 14)), "target": [14, 15, 16]}


class Arm7ReachFar(Arm7Reach):
    """The same arm with a zone that runs 0.7-1.3 m in front: its far part lies beyond the
    arm's 1.0 m reach from the shoulder, so only some targets can be reached by any policy."""

    name: ClassVar[str] = "arm7-reach-far"
    zone_low: ClassVar[tuple] = (0.70, -0.35, 0.15)
    zone_high: ClassVar[tuple] = (1.30, 0.35, 0.65)


def _lengths(vectors: np.ndarray) -> np.ndarray:
    """Euclidean length along the last axis, elementwise: ``np.linalg.norm`` of one vector goes
    through BLAS, whose kernel (and so the last bit) depends on the CPU and on the shape given."""
    return np.sqrt(np.sum(vectors * vectors, axis=-1))
