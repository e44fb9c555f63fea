"""The arm7 reach controller: damped-least-squares IK with null-space posture control and
gravity compensation, as plain Python on the controller's own MuJoCo model.

Per observation row ``[q (7), dq (7), target in the base frame (3)]``:

1. kinematics of the controller's *own* nominal model at the measured ``q``, ``dq``
   (``mj_forward``; contacts off): fingertip position, its Jacobian ``J`` (``mj_jacSite``,
   3x7), the joint-space inertia ``M`` (applied with ``mj_mulM``), and ``qfrc_bias`` = gravity + Coriolis;
2. a Cartesian velocity command toward the target, ``v = Kx (target - tip)`` saturated at
   ``v_max``;
3. damped least squares ``J⁺ = Jᵀ (J Jᵀ + λ² I)⁻¹``: the joint velocity that best gives ``v``
   without unbounded speeds where ``J`` loses rank (the arm outstretched);
4. null-space posture ``(I - J⁺J) Kn (q_posture - q)``: the 4 joint-space directions that do not
   move the fingertip hold a comfortable posture (the ready pose, the base turned to face the
   target) instead of drifting toward the joint limits. The projector uses the undamped J⁺
   (see ``joint_velocity`` for why);
5. a joint velocity servo with the inertia as its gain, ``τ = M Kd (dq_des - dq) + qfrc_bias``
   (computed torque: every joint gets the same bandwidth ``Kd`` whatever its load), clipped to
   the motors' limits.

Stateless: each row's torque depends on that row only, computed one row at a time with the
same operations, so an episode's actions do not depend on how many episodes share the call.
The gains come from ``gains.json`` (written by ``tune_gains.py``, which explains them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

GAINS_PATH = Path(__file__).with_name("gains.json")


def load_gains() -> dict:
    return json.loads(GAINS_PATH.read_text())


class DlsReachController:
    """Damped-least-squares reach with gravity compensation on the controller's own model."""

    def __init__(self, model, gains: dict, posture) -> None:
        """``model`` becomes the controller's own (its contacts are switched off)."""
        import mujoco

        self.mujoco = mujoco
        self.model = model
        # the controller predicts its own arm, not the world: no floor contacts to resolve
        self.model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
        self.data = mujoco.MjData(model)
        self.nv = model.nv
        self.site = model.site("fingertip").id
        self.base = model.body_pos[model.body("base").id].copy()  # the pedestal is unrotated
        self.low, self.high = model.actuator_ctrlrange[:, 0].copy(), model.actuator_ctrlrange[:, 1].copy()
        self.posture = np.asarray(posture, dtype=np.float64)
        self.kx, self.v_max = gains["kx"], gains["v_max"]
        self.damping = gains["dls_damping"]
        self.kn, self.kd = gains["kn"], gains["kd"]
        self.dq_max = gains["dq_max"]
        self._jac = np.zeros((3, self.nv))
        self._damped, self._exact = self.damping**2 * np.eye(3), 1e-9 * np.eye(3)

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64).reshape(-1, 2 * self.nv + 3)
        return np.stack([self.torque(row) for row in obs])

    def torque(self, row: np.ndarray) -> np.ndarray:
        q, dq = row[:self.nv], row[self.nv:2 * self.nv]
        self._model_at(q, dq)
        tip = self.data.site_xpos[self.site]
        dq_des = self.joint_velocity(q, self._jac, self.base + row[2 * self.nv:] - tip, self._posture_for(row))
        servo = np.zeros(self.nv)
        self.mujoco.mj_mulM(self.model, self.data, servo, self.kd * (dq_des - dq))
        return np.clip(servo + self.data.qfrc_bias, self.low, self.high)

    def _model_at(self, q: np.ndarray, dq: np.ndarray) -> None:
        mj, m, d = self.mujoco, self.model, self.data
        d.qpos[:], d.qvel[:] = q, dq
        mj.mj_forward(m, d)
        mj.mj_jacSite(m, d, self._jac, None, self.site)

    def _posture_for(self, row: np.ndarray) -> np.ndarray:
        # face the target with the base joint; the rest of the posture is the ready pose
        posture = self.posture.copy()
        target = row[2 * self.nv:]
        posture[0] = np.arctan2(target[1], target[0])
        return posture

    def joint_velocity(self, q: np.ndarray, jac: np.ndarray, error: np.ndarray, posture: np.ndarray) -> np.ndarray:
        """The joint velocity command for a fingertip ``error`` (m, world frame):
        ``J⁺ v + (I - J⁺J) Kn (q_posture - q)``, written with two 3x3 solves."""
        v = self.kx * error
        speed = math.sqrt(v @ v)
        if speed > self.v_max:
            v *= self.v_max / speed
        p = self.kn * (posture - q)
        # The task term uses the damped J⁺ = Jᵀ (J Jᵀ + λ² I)⁻¹. The null-space projector does not:
        # the damped J⁺J is no projector (eigenvalues σ²/(σ²+λ²) < 1), and with it the posture term
        # leaks into fingertip motion and holds the fingertip ~5 mm off the target; the exact
        # Jᵀ (J Jᵀ)⁻¹ J leaks nothing (ε = 1e-9 m² only keeps it defined at an exact singularity).
        gram = jac @ jac.T
        task = self._solve(gram + self._damped, v)
        leak = self._solve(gram + self._exact, jac @ p)
        return (p + jac.T @ (task - leak)).clip(-self.dq_max, self.dq_max)

    def _solve(self, spd: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``spd⁻¹ rhs`` for a 3x3 symmetric positive definite matrix, by MuJoCo's Cholesky
        (numpy's general solver costs 30 µs of call overhead for a 3x3, this 2 µs)."""
        self.mujoco.mju_cholFactor(spd, 0.0)
        out = np.empty(3)
        self.mujoco.mju_cholSolve(out, spd, rhs)
        return out


def make_policy() -> DlsReachController:
    from envs.arm7.env import READY, Arm7Reach

    return DlsReachController(Arm7Reach().build_model(), load_gains(), READY)
