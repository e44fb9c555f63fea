"""Export the trained quadruped policies to ONNX (and TorchScript) and write the manifest.

    cd /work/main && /work/venv/bin/python policies/quadruped/export.py

Reads the checkpoints in ``weights/`` (``robust.npz``, ``nominal.npz``, ``early.npz``: copies of
``train.py`` checkpoints, see TRAINING.md) and writes next to this file ``robust.onnx``,
``robust.pt``, ``nominal.onnx``, ``early.onnx`` and ``manifest.yaml`` (sha256 and provenance).

The graph takes the plain 34-channel observation: it builds the features of
:mod:`policies.quadruped.linear` (clock harmonic, command × clock) itself, and the normaliser is
folded into one affine map, ``action = features · A + b``. float32, like the runtimes feed it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policies.quadruped.linear import (  # noqa: E402
    ACTION_SIZE,
    FEATURE_SIZE,
    OBSERVATION_SIZE,
    LinearPolicy,
)

ONNX_OPSET = 17
#: (manifest name, checkpoint, formats, description, where the run started and its log)
POLICIES = (
    ("quadruped-robust", "robust", ("onnx", "torchscript"),
     ("ARS linear gait policy fine-tuned with domain randomisation (friction, mass, payload, motor limit, pushes, "
      "sensor noise) from the nominal run's iteration 80"),
     {"init": "nominal run, iteration 80", "log": "logs/robust.csv"}),
    ("quadruped-nominal", "nominal", ("onnx",), "the same trainer on the nominal robot and floor only (commands randomised)",
     {"init": "gait prior", "log": "logs/nominal.csv"}),
    ("quadruped-early", "early", ("onnx",),
     "regressed example: iteration 20 of a robust run started from the gait prior (stopped at 47); stands, does not walk",
     {"init": "gait prior", "log": "logs/robust_from_prior.csv"}),
)


def affine(policy: LinearPolicy) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` over the 40 computed features; the constant feature goes into ``b``."""
    a, b = policy.folded()
    return a[:-1].astype(np.float32), (b + a[-1]).astype(np.float32)


def write_onnx(policy: LinearPolicy, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    a, b = affine(policy)

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    inits = [const("A", a), const("b", b), const("two", np.float32(2.0)), const("axis1", np.array([1], np.int64))]
    nodes = []
    for name, column in (("v", 30), ("w", 31), ("s", 32), ("c", 33)):  # command and clock columns
        inits += [const(f"{name}_lo", np.array([column], np.int64)), const(f"{name}_hi", np.array([column + 1], np.int64))]
        nodes.append(helper.make_node("Slice", ["obs", f"{name}_lo", f"{name}_hi", "axis1"], [name]))
    for out, op, x, y in (("sc", "Mul", "s", "c"), ("s2", "Mul", "sc", "two"), ("cc", "Mul", "c", "c"),
                          ("ss", "Mul", "s", "s"), ("c2", "Sub", "cc", "ss"), ("vs", "Mul", "v", "s"),
                          ("vc", "Mul", "v", "c"), ("ws", "Mul", "w", "s"), ("wc", "Mul", "w", "c")):
        nodes.append(helper.make_node(op, [x, y], [out]))
    nodes.append(helper.make_node("Concat", ["obs", "s2", "c2", "vs", "vc", "ws", "wc"], ["features"], axis=1))
    nodes.append(helper.make_node("Gemm", ["features", "A", "b"], ["action"]))
    graph = helper.make_graph(
        nodes, "quadruped_linear", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", OBSERVATION_SIZE])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", ACTION_SIZE])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="simgate")
    model.ir_version = 8  # old enough for any recent onnxruntime
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_torchscript(policy: LinearPolicy, path: Path) -> None:
    import torch

    a, b = affine(policy)

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("a", torch.from_numpy(a))
            self.register_buffer("b", torch.from_numpy(b))

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            v, w, s, c = obs[:, 30:31], obs[:, 31:32], obs[:, 32:33], obs[:, 33:34]
            f = torch.cat([obs, s * c * 2.0, c * c - s * s, v * s, v * c, w * s, w * c], dim=1)
            return f @ self.a + self.b

    torch.jit.script(Linear().eval()).save(str(path))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(checkpoint: Path) -> dict:
    saved = np.load(checkpoint, allow_pickle=False)
    return {key: saved[key].item() for key in ("variant", "seed", "train_seed", "iteration", "env_steps", "wall_time",
                                               "final_return", "directions", "top", "step_size", "noise", "horizon")}


def manifest_entry(name: str, fmt: str, file: Path, prov: dict, description: str) -> str:
    fields = ", ".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: \"{v}\"" if " " in str(v) else f"{k}: {v}"
                       for k, v in prov.items())
    return (f"  - name: {name}\n    env: quadruped\n    format: {fmt}\n    file: {file.name}\n"
            f"    sha256: {sha256(file)}\n    observation_size: {OBSERVATION_SIZE}\n    action_size: {ACTION_SIZE}\n"
            f"    description: \"{description}\"\n    provenance: {{script: train.py, {fields}}}\n")


def main() -> None:
    lines = [("# provenance: policies/quadruped/train.py (ARS on simgate's batched engine), exported by export.py;\n"
              "# seeds, steps, wall time and returns: TRAINING.md\n"), "policies:\n"]
    for name, checkpoint, formats, description, origin in POLICIES:
        source = HERE / "weights" / f"{checkpoint}.npz"
        policy = LinearPolicy.load(source)
        assert policy.weights.shape == (ACTION_SIZE, FEATURE_SIZE), policy.weights.shape
        prov = {**provenance(source), **origin}
        for fmt in formats:
            file = HERE / f"{checkpoint}.{'onnx' if fmt == 'onnx' else 'pt'}"
            (write_onnx if fmt == "onnx" else write_torchscript)(policy, file)
            entry_name = name if fmt == "onnx" else f"{name}-torchscript"
            lines.append(manifest_entry(entry_name, fmt, file, prov, description))
    (HERE / "manifest.yaml").write_text("".join(lines))


if __name__ == "__main__":
    main()
