"""Turn a PolicySpec into something that acts. Heavy runtimes are imported here, at run time."""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the spec imports this module to load itself
    from simgate.policies.spec import PolicySpec


class PolicyLoadError(Exception):
    """The policy cannot be run; the message says which policy and what to fix."""


def load(spec: PolicySpec):
    if spec.file is not None and spec.sha256 and spec.file_digest() != spec.sha256:
        raise PolicyLoadError(
            f"policy {spec.name!r}: {spec.file} does not match the sha256 in {spec.manifest} "
            f"(file {spec.file_digest()[:12]}…, manifest {spec.sha256[:12]}…); re-run its training "
            "script or update the manifest")
    loader = {"onnx": OnnxPolicy, "torchscript": TorchScriptPolicy, "scripted": scripted}[spec.format]
    try:
        return loader(spec)
    except PolicyLoadError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the policy's loading: any complaint, named
        raise PolicyLoadError(f"policy {spec.name!r} ({spec.format}, {spec.file or spec.entry}) cannot be loaded: "
                              f"{type(exc).__name__}: {exc}") from None


class OnnxPolicy:
    """onnxruntime with one intra-op thread: outputs independent of batch size and core count.

    A graph exported with a fixed batch dimension of 1 (input shape ``[1, n]``, common for
    on-robot exports) cannot take the engines' batches: it is found here, once, and such a
    policy is called row by row, one observation per run, stated by ``row_by_row`` and ``note``.
    Its actions are the same bits either way; only the batched engine's speed-up is lost.
    """

    #: whether ``act`` runs the graph once per observation (its batch dimension is fixed at 1)
    row_by_row: bool = False
    #: what a report says about this policy, or None
    note: str | None = None

    def __init__(self, spec: PolicySpec):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(spec.file), options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise PolicyLoadError(f"policy {spec.name!r}: the ONNX graph has {len(inputs)} inputs; simgate feeds one observation tensor")
        self.input = inputs[0].name
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != spec.observation_size:
            raise PolicyLoadError(f"policy {spec.name!r}: the ONNX input {self.input!r} takes {width} observations "
                                  f"but the manifest says {spec.observation_size}")
        self.dtype = np.float64 if "double" in inputs[0].type else np.float32
        batch = inputs[0].shape[0] if len(inputs[0].shape or ()) > 1 else None  # an int only if fixed
        if batch == 1:
            self.row_by_row = True
            self.note = (f"policy {spec.name!r}: the ONNX input {self.input!r} has a fixed batch dimension of 1, "
                         "so simgate runs it once per observation; export it with a dynamic batch dimension "
                         "to run the episodes of a case in one call")

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.row_by_row:
            return np.concatenate([self._run(obs[i:i + 1]) for i in range(len(obs))])
        return self._run(obs)

    def _run(self, obs: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input: obs.astype(self.dtype)})[0]
        return np.asarray(out, dtype=np.float64)


#: buffers in which rsl_rl's recurrent exports (and similar) carry a memory from call to call
RECURRENT_BUFFERS = ("hidden_state", "cell_state")


class TorchScriptPolicy:
    """``torch.jit.load`` only: a TorchScript archive runs no pickled Python code."""

    def __init__(self, spec: PolicySpec):
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        with warnings.catch_warnings():  # torch 2.13 deprecates jit.load; it is still the safe loader
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(str(spec.file), map_location="cpu").eval()
        memory = [name for name, _ in self.module.named_buffers() if name.split(".")[-1] in RECURRENT_BUFFERS]
        if memory or hasattr(self.module, "reset_memory"):
            # rsl_rl's recurrent export keeps its LSTM/GRU state in buffers of batch size 1 that only
            # reset_memory() clears: episodes would share a memory, and a batch cannot be run at all
            raise PolicyLoadError(
                f"policy {spec.name!r}: {spec.file} is a recurrent policy (it keeps a memory between calls: "
                f"{', '.join(memory) or 'reset_memory()'}), and simgate runs feed-forward policies only: one "
                "action from one observation, the same for every episode and batch; it cannot gate this one")

    def act(self, obs: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.module(self.torch.from_numpy(obs.astype(np.float32)))
        return out.double().numpy()


def scripted(spec: PolicySpec):
    """A plain-Python controller: ``entry`` is ``"module:callable"`` returning an object with ``act``."""
    module_name, _, attr = (spec.entry or "").partition(":")
    if not module_name or not attr:
        raise PolicyLoadError(f"policy {spec.name!r}: entry must look like 'package.module:make_policy', got {spec.entry!r}")
    factory = getattr(importlib.import_module(module_name), attr)
    policy = factory()
    if not callable(getattr(policy, "act", None)):
        raise PolicyLoadError(f"policy {spec.name!r}: {spec.entry} returned {type(policy).__name__}, which has no act(obs) method")
    return policy
