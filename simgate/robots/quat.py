"""Quaternion arithmetic over rows, elementwise (no BLAS call: one row and many give the same
bits). Quaternions are MuJoCo's ``(w, x, y, z)`` unless a name says otherwise."""

from __future__ import annotations

import math

import numpy as np


def split(q: np.ndarray, order: str = "wxyz"):
    """``(w, x, y, z)`` columns of ``(n, 4)`` quaternions stored in MuJoCo's order, read as
    ``order`` says: ``wxyz`` (correctly), or ``wxyz_read_as_xyzw`` (a training env that handed
    MuJoCo's array to code expecting ``(x, y, z, w)``: its w is MuJoCo's z, and so on)."""
    if order == "wxyz_read_as_xyzw":
        return q[:, 3], q[:, 0], q[:, 1], q[:, 2]
    return q[:, 0], q[:, 1], q[:, 2], q[:, 3]


def gravity_in_body(qw, qx, qy, qz) -> np.ndarray:
    """R(q)ᵀ·(0, 0, −1): the world's down direction seen from the body, ``(n, 3)``:
    −(2(xz − wy), 2(yz + wx), 1 − 2(x² + y²))."""
    # the operations of that expression in its order, written into one array instead of
    # stacking three (np.stack costs more than the arithmetic on a lane's rows); +, −, × are
    # exact IEEE operations, so writing them into strided columns changes no bit
    g = np.empty((len(qw), 3))
    np.subtract(qx * qz, qw * qy, out=g[:, 0])
    np.add(qy * qz, qw * qx, out=g[:, 1])
    np.add(qx * qx, qy * qy, out=g[:, 2])
    g *= 2.0
    np.subtract(1.0, g[:, 2], out=g[:, 2])
    return np.negative(g, out=g)


def to_world(qw, qx, qy, qz, v: np.ndarray) -> np.ndarray:
    """R(q)·v for body-frame vectors ``v`` ``(n, 3)``."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    return np.stack([
        (1.0 - 2.0 * (qy * qy + qz * qz)) * x + 2.0 * (qx * qy - qw * qz) * y + 2.0 * (qx * qz + qw * qy) * z,
        2.0 * (qx * qy + qw * qz) * x + (1.0 - 2.0 * (qx * qx + qz * qz)) * y + 2.0 * (qy * qz - qw * qx) * z,
        2.0 * (qx * qz - qw * qy) * x + 2.0 * (qy * qz + qw * qx) * y + (1.0 - 2.0 * (qx * qx + qy * qy)) * z,
    ], axis=1)


def to_body(qw, qx, qy, qz, v: np.ndarray) -> np.ndarray:
    """R(q)ᵀ·v for world-frame vectors ``v`` ``(n, 3)``."""
    return to_world(qw, -qx, -qy, -qz, v)


def yaw_of(qw, qx, qy, qz):
    """Heading of the body's x axis in the world xy plane (works on arrays too)."""
    return np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))


def euler_xyz(qw, qx, qy, qz) -> np.ndarray:
    """Roll, pitch, yaw (rad, each in [-π, π]; pitch in [-π/2, π/2]), ``(n, 3)``: the x-y-z
    angles isaacgym's ``get_euler_xyz`` gives, wrapped as humanoid-gym wraps them."""
    roll = np.arctan2(2.0 * (qw * qx + qy * qz), 1.0 - 2.0 * (qx * qx + qy * qy))
    pitch = np.arcsin(np.clip(2.0 * (qw * qy - qz * qx), -1.0, 1.0))
    yaw = np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    return np.stack([roll, pitch, yaw], axis=1)


def to_heading(yaw, v: np.ndarray) -> np.ndarray:
    """World vectors seen from the yaw-only (heading) frame: Rz(−yaw)·v."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1], v[:, 2]], axis=1)


def wrap(angle):
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def yaw_times(yaw: float, q: np.ndarray) -> np.ndarray:
    """The rotation by ``yaw`` about world z, then ``q`` (MuJoCo order, one quaternion)."""
    c, s = math.cos(yaw / 2), math.sin(yaw / 2)  # libm, as a hand-written reset computes it
    if np.array_equal(q, [1.0, 0.0, 0.0, 0.0]):
        return np.array([c, 0.0, 0.0, s])
    w, x, y, z = q
    return np.array([c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w])
