"""Writes lqr.onnx (u = -K x, clipped to the motor's range) and prints its sha256 for the
manifest. Gains: LQR on the upright linearisation, rounded; run with onnx installed."""

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

K = np.array([[-4.0], [-0.8]], dtype=np.float32)  # [angle, rate] -> command
HERE = Path(__file__).resolve().parent

graph = helper.make_graph(
    [helper.make_node("MatMul", ["obs", "K"], ["u"]), helper.make_node("Clip", ["u", "lo", "hi"], ["action"])],
    "acme_pendulum_lqr",
    [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 2])],
    [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 1])],
    initializer=[numpy_helper.from_array(K, "K"), numpy_helper.from_array(np.array(-1.0, np.float32), "lo"),
                 numpy_helper.from_array(np.array(1.0, np.float32), "hi")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model)
(HERE / "lqr.onnx").write_bytes(model.SerializeToString(deterministic=True))
print(hashlib.sha256((HERE / "lqr.onnx").read_bytes()).hexdigest())
