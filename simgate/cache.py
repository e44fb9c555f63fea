"""Episode results stored by content, so a re-run recomputes nothing it already has.

An episode's key is the sha256 of everything its result depends on: the simgate engine version,
MuJoCo's version, the env (its compiled model's bytes and the source of its rules), the policy
(its file's sha256, or its code's for a scripted one), the perturbation parameters, the horizon
and the episode's seed inputs (master seed, scenario, matrix point, index). Change any of them
and the key changes, so stale results are never reused; nothing else is ever invalidated.

Entries are written to a temporary file and renamed into place, so a worker killed mid-write
leaves either the whole entry or none. An unreadable entry counts as missing and is recomputed.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from simgate.engine.rollouts import Episode

#: bump when an engine change alters any episode's result
ENGINE_VERSION = "4"
_ARRAYS = ("mean_abs_torque", "peak_abs_torque", "step_hashes", "actions")
_SCALARS = ("index", "success", "length", "ret", "progress", "terminated", "message", "work", "mass", "signals",
            "saturation", "at_stops")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_sha256(model) -> str:
    """The compiled model's bytes: every parameter the physics uses."""
    import mujoco

    buffer = np.zeros(mujoco.mj_sizeModel(model), dtype=np.uint8)
    mujoco.mj_saveModel(model, None, buffer)
    return hashlib.sha256(buffer.tobytes()).hexdigest()


def code_sha256(obj) -> str:
    """The source file that defines ``obj``'s class (an env's rules, a scripted policy)."""
    cls = obj if isinstance(obj, type) else type(obj)
    try:
        return file_sha256(Path(inspect.getfile(cls)))
    except (TypeError, OSError):
        return "unknown:" + cls.__module__ + "." + cls.__qualname__


def policy_sha256(spec, policy) -> str:
    if getattr(spec, "file", None):
        return spec.sha256 or file_sha256(Path(spec.file))
    return code_sha256(policy)


class EpisodeCache:
    """Episodes of one (case, policy) under ``root``, keyed by content."""

    def __init__(self, root: Path, context: dict):
        self.root = Path(root)
        self.context = json.dumps(context, sort_keys=True, default=str)

    def key(self, index: int) -> str:
        return hashlib.sha256(f"{self.context}|episode={index}".encode()).hexdigest()

    def path(self, index: int) -> Path:
        key = self.key(index)
        return self.root / key[:2] / f"{key}.npz"

    def get(self, index: int) -> Episode | None:
        path = self.path(index)
        try:
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(str(stored["meta"]))
                arrays = {name: stored[name] for name in _ARRAYS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # absent or damaged: compute again
            return None
        return Episode(seed=int(meta.pop("seed")), **meta, **arrays)

    def put(self, episode: Episode) -> None:
        path = self.path(episode.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {name: getattr(episode, name) for name in _SCALARS}
        meta["seed"] = str(episode.seed)  # 128 bits: JSON numbers would round it
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta, allow_nan=True)),
                 **{name: getattr(episode, name) for name in _ARRAYS})
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", suffix=".npz", delete=False)
        try:
            with handle:
                handle.write(buffer.getvalue())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, path)  # atomic: readers see all of it or nothing
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
