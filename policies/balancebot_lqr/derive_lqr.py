"""Derive the balancebot LQR from the MuJoCo model and export it.

    cd /work/main && /work/venv/bin/python policies/balancebot_lqr/derive_lqr.py

Method: linearise one physics step about the upright resting state with
``mujoco.mjd_transitionFD``, lift it to the 50 Hz system the policy controls (ctrl held for
``frame_skip`` steps: A^n, sum A^k B), project onto the observed states
[pitch, pitch_rate, wheel_angle, wheel_rate] assuming rolling without slip, and solve the
discrete Riccati equation. The target position is folded into a bias so the policy is a plain
affine function of the observation: ``action = clip(-K obs + b, -1, 1)``.

Writes gains.json, lqr.onnx, lqr.pt, lqr_degraded.onnx, lqr_sluggish.onnx and manifest.yaml
next to this file.
Re-running gives byte-identical files: no randomness, no timestamps, gains rounded.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Bryson-style weights on physical coordinates [x, pitch, x_dot, pitch_rate]: 1 / max^2.
# Position and effort are weighted softly: the 1 m start error then asks for < 0.6 N·m, below
# what the wheel can transmit before it skids even at a third of the nominal friction.
Q_MAX = (0.9, 0.15, 1.0, 1.5)
Q_PHYS = tuple(1.0 / v**2 for v in Q_MAX)
R_U = 1.0 / 0.3**2
# The degraded gain is derived from a model with the wheel diameter (0.12 m) entered as its
# radius: still a stabilising gain, so the robot balances, but its odometry scale is off 2x
# and it parks at ~0.5 m instead of 1 m. A quiet, plausible regression.
DEGRADED_WHEEL_RADIUS = 0.12
# The sluggish gain weighs effort 10x more (an engineer "smoothing" the controller): the same
# robot balances and drives as well on flat ground, but recovers from a 10 N push too slowly
# (pushes success 0.89 -> 0.66 on the shipped scenario). The regression that only paired,
# seed-for-seed comparison against the promoted policy catches cheaply.
SLUGGISH_R_SCALE = 10.0
SIG_DIGITS = 10
ONNX_OPSET = 17
FD_EPS = 1e-6


# -- model ------------------------------------------------------------------------------------
def load_env():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from envs.balancebot.env import XML_PATH, BalanceBot

    return BalanceBot(), XML_PATH


def model_with_wheel_radius(xml_path: Path, radius: float):
    """The nominal robot on another wheel (axle raised to match): the degraded gain's model."""
    import mujoco

    spec = mujoco.MjSpec.from_file(str(xml_path))
    spec.geom("wheel").size[0] = radius
    spec.body("chassis").pos[2] = radius
    return spec.compile()


def upright_rest(model, env):
    """MjData resting upright on the floor: pitch pinned while the contact settles."""
    import mujoco

    data = mujoco.MjData(model)
    ids = env._index(model)
    env.reset(model, data, _ZeroRng())
    for _ in range(1000):
        data.qpos[ids["pitch"]] = 0.0
        data.qvel[:] = 0.0
        mujoco.mj_step(model, data)
    data.qpos[ids["pitch"]] = 0.0
    data.qvel[:] = 0.0
    mujoco.mj_forward(model, data)
    return data


class _ZeroRng:
    """Stands in for the reset rng so the linearisation point is exactly upright and still."""

    def uniform(self, low, high):
        return 0.0


# -- linearisation ----------------------------------------------------------------------------
def step_jacobians(model, data):
    """Physics-step transition matrices in MuJoCo's tangent space [dq, dv]."""
    import mujoco

    n = 2 * model.nv + model.na
    A = np.zeros((n, n))
    B = np.zeros((n, model.nu))
    mujoco.mjd_transitionFD(model, data, FD_EPS, True, A, B, None, None)
    return A, B


def lift(A, B, steps: int):
    """The zero-order-hold map over ``steps`` physics steps: x' = A^n x + (sum A^k) B u."""
    Ad = np.eye(A.shape[0])
    Bd = np.zeros_like(B)
    for _ in range(steps):
        Bd = A @ Bd + B
        Ad = A @ Ad
    return Ad, Bd


def rolling_projection(model, env):
    """T embeds the observed states into the full tangent state assuming no slip (x = R*(pitch
    + wheel)); C reads them back. The contact keeps the wheel on that manifold."""
    ids = env._index(model)
    nv = model.nv
    radius = env.wheel_radius(model)
    T = np.zeros((2 * nv, 4))
    C = np.zeros((4, 2 * nv))
    # tangent-space rows: dq at the dof address, dv at nv + dof address
    for red, full in enumerate(
        (ids["pitch_v"], nv + ids["pitch_v"], ids["wheel_v"], nv + ids["wheel_v"])
    ):
        T[full, red] = 1.0
        C[red, full] = 1.0
    T[ids["x_v"], [0, 2]] = radius
    T[nv + ids["x_v"], [1, 3]] = radius
    return T, C


def physical_map(radius: float):
    """Observed states -> [x, pitch, x_dot, pitch_rate]."""
    return np.array(
        [
            [radius, 0.0, radius, 0.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, radius, 0.0, radius],
            [0.0, 1.0, 0.0, 0.0],
        ]
    )


def reduced_system(model, env):
    data = upright_rest(model, env)
    A, B = step_jacobians(model, data)
    Ad, Bd = lift(A, B, env.frame_skip(model))
    T, C = rolling_projection(model, env)
    residual = np.linalg.norm((np.eye(T.shape[0]) - T @ C) @ Ad @ T) / np.linalg.norm(Ad @ T)
    return C @ Ad @ T, C @ Bd, float(residual)


# -- control ----------------------------------------------------------------------------------
def dlqr(Ar, Br, Q, R):
    from scipy.linalg import solve_discrete_are

    P = solve_discrete_are(Ar, Br, Q, R)
    return np.linalg.solve(R + Br.T @ P @ Br, Br.T @ P @ Ar)


def round_sig(values: np.ndarray) -> np.ndarray:
    """Round to SIG_DIGITS so last-bit BLAS differences never change the exported bytes."""
    return np.array([float(f"{v:.{SIG_DIGITS}g}") for v in np.ravel(values)]).reshape(np.shape(values))


def derive(model, env, r_u: float = R_U) -> dict:
    """Gain, bias and diagnostics for one model."""
    Ar, Br, residual = reduced_system(model, env)
    M = physical_map(env.wheel_radius(model))
    Q = M.T @ np.diag(Q_PHYS) @ M
    R = np.array([[r_u]])
    K = round_sig(dlqr(Ar, Br, Q, R))
    obs_ref = np.array([0.0, 0.0, env.target_x / env.wheel_radius(model), 0.0])
    b = round_sig(K @ obs_ref)
    poles = np.linalg.eigvals(Ar - Br @ K)
    return {
        "K": K.tolist(),
        "b": b.tolist(),
        "obs_ref": round_sig(obs_ref).tolist(),
        "K_physical": round_sig(K @ np.linalg.inv(M)).tolist(),
        "closed_loop_pole_abs": round_sig(np.sort(np.abs(poles))[::-1]).tolist(),
        "open_loop_pole_abs": round_sig(np.sort(np.abs(np.linalg.eigvals(Ar)))[::-1]).tolist(),
        "projection_residual": float(f"{residual:.3g}"),
        "Q": round_sig(Q).tolist(),
        "A": round_sig(Ar).tolist(),
        "B": round_sig(Br).tolist(),
    }


# -- export -----------------------------------------------------------------------------------
def affine_weights(entry: dict):
    """(W, b) with action = obs @ W + b, as float32."""
    K = np.asarray(entry["K"], dtype=np.float64)
    return (-K.T).astype(np.float32), np.asarray(entry["b"], dtype=np.float32)


def export_onnx(entry: dict, path: Path, graph_name: str) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    W, b = affine_weights(entry)
    n_obs = W.shape[0]
    inits = [
        numpy_helper.from_array(W, "W"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.array(-1.0, dtype=np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("MatMul", ["obs", "W"], ["u_lin"]),
        helper.make_node("Add", ["u_lin", "b"], ["u_raw"]),
        helper.make_node("Clip", ["u_raw", "lo", "hi"], ["action"]),
    ]
    graph = helper.make_graph(
        nodes,
        graph_name,
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", n_obs])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 1])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        producer_name="simgate derive_lqr.py",
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        ir_version=8,  # readable by every onnxruntime since 1.10
    )
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString(deterministic=True))


def export_torchscript(entry: dict, path: Path) -> None:
    import torch

    W, b = affine_weights(entry)
    module = torch.jit.script(_affine_clip_class()(torch.from_numpy(W), torch.from_numpy(b)))
    torch.jit.save(module, str(path))
    _make_reproducible(path)


def _make_reproducible(path: Path) -> None:
    """Make the archive reproducible: torch.jit.save stamps a fresh id (rewritten as a
    constant) and debug tables holding this script's absolute path (dropped; optional for
    torch.jit.load, they only serve error messages)."""
    import zipfile

    with zipfile.ZipFile(path) as src:
        items = [(i, src.read(i.filename)) for i in src.infolist() if not i.filename.endswith(".debug_pkl")]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info, payload in items:
            if info.filename.endswith(".data/serialization_id"):
                payload = b"0" * len(payload)
            info.date_time = (1980, 1, 1, 0, 0, 0)
            dst.writestr(info, payload)


def _affine_clip_class():
    import torch

    class AffineClip(torch.nn.Module):
        """action = clamp(obs @ W + b, -1, 1), the same math as the ONNX graph."""

        def __init__(self, W: torch.Tensor, b: torch.Tensor):
            super().__init__()
            self.register_buffer("W", W)
            self.register_buffer("b", b)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.clamp(obs.to(self.W.dtype) @ self.W + self.b, -1.0, 1.0)

    return AffineClip


def compact_json(obj) -> str:
    """Indented JSON with each innermost number list on one line, so matrices read as rows."""
    import re

    text = json.dumps(obj, indent=2, sort_keys=True)
    flat = re.sub(r"\[\s*([-+0-9.eE,\s]+?)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    return flat + "\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(method: str) -> None:
    q = "[" + ", ".join(f"{v:.6g}" for v in Q_PHYS) + "]"
    prov = f'{{script: derive_lqr.py, method: "{method}", Q: {q}, R: {R_U:.6g}}}'
    prov_bad = (
        f'{{script: derive_lqr.py, method: "{method}; DELIBERATELY WRONG model: wheel radius '
        f'{DEGRADED_WHEEL_RADIUS} m (the diameter) instead of 0.06 m", Q: {q}, R: {R_U:.6g}}}'
    )
    prov_slow = (f'{{script: derive_lqr.py, method: "{method}; effort weight R x{SLUGGISH_R_SCALE:g}", '
                 f'Q: {q}, R: {R_U * SLUGGISH_R_SCALE:.6g}}}')
    head = "    env: balancebot\n"
    size = "    observation_size: 4\n    action_size: 1\n"
    text = (
        "# provenance: policies/balancebot_lqr/derive_lqr.py\n"
        "policies:\n"
        "  - name: balancebot-lqr\n" + head + "    format: scripted\n"
        "    entry: policies.balancebot_lqr.controller:make_policy\n" + size +
        "  - name: balancebot-lqr-onnx\n" + head + "    format: onnx\n    file: lqr.onnx\n"
        f"    sha256: {sha256(HERE / 'lqr.onnx')}\n" + size + f"    provenance: {prov}\n"
        "  - name: balancebot-lqr-torchscript\n" + head + "    format: torchscript\n    file: lqr.pt\n"
        f"    sha256: {sha256(HERE / 'lqr.pt')}\n" + size + f"    provenance: {prov}\n"
        "  - name: balancebot-lqr-degraded\n" + head + "    format: onnx\n    file: lqr_degraded.onnx\n"
        f"    sha256: {sha256(HERE / 'lqr_degraded.onnx')}\n" + size + f"    provenance: {prov_bad}\n"
        "  - name: balancebot-lqr-sluggish\n" + head + "    format: onnx\n    file: lqr_sluggish.onnx\n"
        f"    sha256: {sha256(HERE / 'lqr_sluggish.onnx')}\n" + size + f"    provenance: {prov_slow}\n"
    )
    (HERE / "manifest.yaml").write_text(text)


def main() -> None:
    env, xml_path = load_env()
    nominal = env.build_model()
    method = (
        "dlqr on mjd_transitionFD physics-step linearisation lifted to 50 Hz ZOH, "
        "projected on rolling-without-slip states"
    )
    gains = {
        "observation": ["pitch", "pitch_rate", "wheel_angle", "wheel_rate"],
        "action": "clip(-K @ obs + b, -1, 1)",
        "method": method,
        "Q_physical_diag": list(Q_PHYS),
        "Q_physical_states": ["x", "pitch", "x_dot", "pitch_rate"],
        "R": R_U,
        "dt": 1.0 / env.control_hz,
        "frame_skip": env.frame_skip(nominal),
        "target_x": env.target_x,
        "nominal": derive(nominal, env),
        "degraded": {
            "why": (
                f"deliberately wrong: derived from a model with wheel radius {DEGRADED_WHEEL_RADIUS} m "
                "(the diameter); balances but parks at ~0.5 m"
            ),
            **derive(model_with_wheel_radius(xml_path, DEGRADED_WHEEL_RADIUS), env),
        },
        "sluggish": {
            "why": f"effort weight R x{SLUGGISH_R_SCALE:g}: balances and drives, recovers from pushes too slowly",
            **derive(nominal, env, R_U * SLUGGISH_R_SCALE),
        },
    }
    (HERE / "gains.json").write_text(compact_json(gains))
    export_onnx(gains["nominal"], HERE / "lqr.onnx", "balancebot_lqr")
    export_onnx(gains["degraded"], HERE / "lqr_degraded.onnx", "balancebot_lqr_degraded")
    export_onnx(gains["sluggish"], HERE / "lqr_sluggish.onnx", "balancebot_lqr_sluggish")
    export_torchscript(gains["nominal"], HERE / "lqr.pt")
    write_manifest(method)
    for key in ("nominal", "degraded", "sluggish"):
        print(key, "K =", gains[key]["K"], "b =", gains[key]["b"])
        print("   closed-loop |poles| =", gains[key]["closed_loop_pole_abs"])


if __name__ == "__main__":
    main()
