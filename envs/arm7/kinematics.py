"""Forward kinematics of a serial chain of hinge joints, for many configurations at once.

MuJoCo's ``mj_kinematics`` works on one MjData; the reachability check needs the fingertip of
thousands of configurations and the Jacobian at each, for dozens of IK iterations. This module
reads the chain's constants from the MjModel once and evaluates it with numpy over an ``(n, 7)``
array. It reproduces ``mj_kinematics`` / ``mj_jacSite`` to rounding (tests/test_arm7.py checks).
"""

from __future__ import annotations

import dataclasses

import numpy as np


def _quat_to_mat(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = quat / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _skew(axis: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])


def _times(mats: np.ndarray, const: np.ndarray) -> np.ndarray:
    """``mats @ const`` for ``(n, 3, 3)`` mats and one constant matrix or vector, as one GEMM
    (a stacked matmul of 3x3 blocks is ten times slower)."""
    n = mats.shape[0]
    return (mats.reshape(3 * n, 3) @ const).reshape((n, 3) + const.shape[1:])


@dataclasses.dataclass(frozen=True)
class HingeChain:
    """The constants of the chain from the world to one site, one hinge per body."""

    base_pos: np.ndarray  # world position of the first moving body's parent frame
    base_mat: np.ndarray
    body_pos: np.ndarray  # (7, 3) in the parent frame
    body_mat: np.ndarray  # (7, 3, 3)
    joint_pos: np.ndarray  # (7, 3) anchor in the body frame
    joint_axis: np.ndarray  # (7, 3) in the body frame
    site_pos: np.ndarray  # (3,) in the last body's frame
    lower: np.ndarray  # joint limits (7,)
    upper: np.ndarray

    @classmethod
    def from_model(cls, model, site: str) -> HingeChain:
        import mujoco

        site_id = model.site(site).id
        bodies = []
        body = int(model.site_bodyid[site_id])
        while model.body_jntnum[body] > 0:
            if model.body_jntnum[body] != 1 or model.jnt_type[model.body_jntadr[body]] != mujoco.mjtJoint.mjJNT_HINGE:
                raise ValueError(f"body {model.body(body).name!r}: a HingeChain needs exactly one hinge per body")
            bodies.append(body)
            body = int(model.body_parentid[body])
        bodies.reverse()
        # the fixed frames above the chain, composed from the world down
        base_pos, base_mat = np.zeros(3), np.eye(3)
        fixed = []
        while body != 0:
            fixed.append(body)
            body = int(model.body_parentid[body])
        for b in reversed(fixed):
            base_pos = base_pos + base_mat @ model.body_pos[b]
            base_mat = base_mat @ _quat_to_mat(model.body_quat[b])
        joints = [int(model.body_jntadr[b]) for b in bodies]
        return cls(
            base_pos=base_pos, base_mat=base_mat,
            body_pos=model.body_pos[bodies].copy(),
            body_mat=np.array([_quat_to_mat(model.body_quat[b]) for b in bodies]),
            joint_pos=model.jnt_pos[joints].copy(), joint_axis=model.jnt_axis[joints].copy(),
            site_pos=model.site_pos[site_id].copy(),
            lower=model.jnt_range[joints, 0].copy(), upper=model.jnt_range[joints, 1].copy(),
        )

    @property
    def dof(self) -> int:
        return len(self.body_pos)

    def site(self, q: np.ndarray, jacobian: bool = False):
        """The site's world position ``(n, 3)`` for configurations ``q`` ``(n, dof)``, and with
        ``jacobian`` its positional Jacobian ``(n, 3, dof)``."""
        n = q.shape[0]
        pos = np.broadcast_to(self.base_pos, (n, 3)).copy()
        mat = np.broadcast_to(self.base_mat, (n, 3, 3)).copy()
        anchors, axes = np.empty((n, self.dof, 3)), np.empty((n, self.dof, 3))
        for i in range(self.dof):
            pos = pos + _times(mat, self.body_pos[i])
            mat = _times(mat, self.body_mat[i])
            anchors[:, i] = pos + _times(mat, self.joint_pos[i])
            axes[:, i] = _times(mat, self.joint_axis[i])
            # Rodrigues: R(axis, q) = I + sin q K + (1 - cos q) K², K the axis' cross-product matrix
            k = _skew(self.joint_axis[i])
            s, c = np.sin(q[:, i])[:, None, None], np.cos(q[:, i])[:, None, None]
            mat = mat + s * _times(mat, k) + (1.0 - c) * _times(mat, k @ k)
            pos = anchors[:, i] - _times(mat, self.joint_pos[i])
        tip = pos + mat @ self.site_pos
        if not jacobian:
            return tip
        jac = np.cross(axes, tip[:, None, :] - anchors).transpose(0, 2, 1)
        return tip, jac
