"""Episode results stored by content, so a re-run recomputes nothing it already has.

An episode's key is the sha256 of everything its result depends on: simgate's own source and
engine version, the Python, MuJoCo and numpy it runs on, the env (its compiled model's bytes and
every file of the package that defines it), the policy (its file's bytes and format, or every
file of a scripted policy's package and the files its manifest names), each perturbation's code
and parameters, the horizon and the episode's seed inputs (master seed, scenario, matrix point,
index). Change any of them and the key changes, so stale results are never reused; nothing else
is ever invalidated. An input whose content cannot be read (a class defined in ``__main__``, a
builtin) makes the case uncacheable rather than keyed on less.

An entry carries its schema version, the key it was stored under and a sha256 of its content;
an entry that fails any check (damaged, tampered, another schema, another key) reads as missing,
is counted (:attr:`EpisodeCache.damaged`, said in the case's cache note), recomputed and
overwritten. Only what a damaged file can make the reader raise is taken as damage; any other
exception is a fault in simgate and propagates. Entries are written to a uniquely named
temporary file and renamed into place, so a worker killed mid-write leaves the whole entry or
none, and two runs writing the same entry both leave a valid one. simgate's own source is hashed
once per process (:func:`simgate_digest`).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import platform
import sys
import tempfile
import threading
import zipfile
import zlib
from collections import Counter
from importlib import metadata
from pathlib import Path

import numpy as np

import simgate
from simgate.engine.rollouts import Episode
from simgate.envs.gymnasium_adapter import GymnasiumEnv
from simgate.errors import SimgateError
from simgate.seeds import seed_identity

#: bump when an engine change alters any episode's result
ENGINE_VERSION = "4"
#: bump when the stored entry's layout changes; entries of another schema read as missing
SCHEMA = 3
#: array fields: (dtype, ndim) a valid entry has
_ARRAYS = {"mean_abs_torque": ("<f8", 1), "peak_abs_torque": ("<f8", 1), "step_hashes": ("<u8", 1),
           "actions": ("<f8", 2), "peak_joint_speed": ("<f8", 1)}
_SCALARS = ("index", "success", "length", "ret", "progress", "terminated", "message", "work", "mass", "signals",
            "saturation", "at_stops", "signal_peaks")
_NUMBERS = ("ret", "progress", "work", "mass", "saturation", "at_stops")
_FIELDS = {"meta", "schema", "key", "digest", *_ARRAYS}
#: third-party packages whose classes are keyed by version, not by hashing their installed files
_VERSIONED = ("mujoco", "numpy", "gymnasium", "onnxruntime", "torch")


class Undigestable(Exception):
    """An input of the episode whose content cannot be hashed: the case is not cached."""


class LinkOutside(SimgateError):
    """A hashed folder holds a link that leaves it: refused, not followed (a link to /usr/share
    would make every case hash tens of thousands of files that are no part of the policy)."""


# ---------------------------------------------------------------------------------------------
# digests of files, directories and code


_memo: dict[tuple, str] = {}
_memo_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """The file's bytes, memoised per process on (path, inode, size, mtime, ctime): a file that
    changes during a run (a test editing a copy of a policy) is hashed again."""
    path = os.path.realpath(path)
    st = os.stat(path)
    stamp = (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _memo_lock:
        known = _memo.get(stamp)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _memo_lock:
        _memo[stamp] = value
    return value


def _skipped(name: str) -> bool:
    """Files that cannot change behaviour: caches, compiled bytecode, hidden editor/VCS files."""
    return name.startswith(".") or name == "__pycache__" or name.endswith((".pyc", ".pyo"))


def source_digest(path) -> str:
    """sha256 over the sorted (relative path, file sha256) of every regular file under ``path``
    (hidden files and dirs, ``__pycache__`` and bytecode skipped; symlinks inside it followed
    once, a symlink out of it refused: :class:`LinkOutside`), or of the file itself. Walked in
    sorted order, so the digest never depends on directory order."""
    root = os.path.realpath(path)
    if os.path.isfile(root):
        return hashlib.sha256(f"file\0{file_sha256(root)}".encode()).hexdigest()
    if not os.path.isdir(root):
        raise Undigestable(f"{path} is neither a file nor a directory")
    entries = []
    seen = {root}
    for folder, dirs, files in os.walk(root, followlinks=True):
        keep = []
        for name in sorted(dirs):
            real = _confined_link(path, root, os.path.join(folder, name)) if not _skipped(name) else None
            if real is not None and real not in seen:  # a symlink loop is walked once
                seen.add(real)
                keep.append(name)
        dirs[:] = keep
        for name in sorted(files):
            full = os.path.join(folder, name)
            if _skipped(name) or not os.path.isfile(full):  # sockets, fifos, dangling links
                continue
            _confined_link(path, root, full)
            entries.append((Path(os.path.relpath(full, root)).as_posix(), file_sha256(full)))
    digest = hashlib.sha256(b"tree\0")
    for rel, sha in sorted(entries):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def _confined_link(path, root: str, entry: str) -> str:
    """``entry``'s real path, which must lie under ``root`` (the hashed folder's real path)."""
    real = os.path.realpath(entry)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        shown = os.path.join(str(path), os.path.relpath(entry, root))
        raise LinkOutside(f"{shown} is a link to {real}, outside {path}: simgate hashes (and a Ray run ships) every "
                          "file of a policy's or plugin's folder, never what lies outside it; copy what is needed into "
                          "the folder, or remove the link")
    return real


def module_location(module) -> tuple[str, Path]:
    """What to hash for a module, with a name for it that does not depend on where the checkout
    lives: its package's directory (``envs.arm7``, ``envs/arm7/``, data files included, for
    ``envs.arm7.env``), or the file itself for a top-level module outside any package."""
    if isinstance(module, str):
        module = sys.modules.get(module) or importlib.import_module(module)
    name = getattr(module, "__name__", "?")
    file = getattr(module, "__file__", None)
    if name == "__main__" or not file:
        raise Undigestable(f"module {name!r} has no source file to hash (defined in __main__ or built in)")
    # the folder's real place, but not the file's own link: a module file linked in from elsewhere
    # is its package's problem (source_digest refuses it), not a licence to hash the link's folder
    path = Path(os.path.realpath(os.path.dirname(os.path.abspath(file)))) / os.path.basename(file)
    if path.stem == "__init__":
        return name, path.parent
    if "." in name:
        return name.rpartition(".")[0], path.parent
    return name, path


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(package)
        return str(getattr(module, "__version__", "unknown"))


def class_digests(cls) -> dict[str, str]:
    """What the behaviour of ``cls`` depends on: for each class of its MRO, the digest of the
    package that defines it; the standard library by the Python version in the context, simgate
    by its own digest there, the versioned third-party packages (numpy, mujoco, ...) by version."""
    if not isinstance(cls, type):
        cls = type(cls)
    if cls.__module__ in ("__main__", "builtins"):
        raise Undigestable(f"{cls.__module__}.{cls.__qualname__} is defined in {cls.__module__}: its code cannot "
                           "be hashed; define it in a module file")
    out: dict[str, str] = {}
    for base in cls.__mro__:
        top = base.__module__.partition(".")[0]
        if top in ("builtins", "simgate") or top in sys.stdlib_module_names:
            continue
        if top in _VERSIONED:
            out[f"{top}=="] = _version(top)
            continue
        package, location = module_location(sys.modules.get(base.__module__) or base.__module__)
        out[package] = source_digest(location)
    return out


_simgate_digest: list[str] = []


def simgate_digest() -> str:
    """The digest of simgate's own source tree, computed once per process: the code this
    process runs was imported once, and walking the tree for every case cost more than the
    case's other inputs together."""
    if not _simgate_digest:
        digest = source_digest(Path(simgate.__file__).resolve().parent)
        with _memo_lock:
            if not _simgate_digest:
                _simgate_digest.append(digest)
    return _simgate_digest[0]


def model_sha256(model) -> str:
    """The compiled model's bytes: every parameter the physics uses."""
    import mujoco

    buffer = np.zeros(mujoco.mj_sizeModel(model), dtype=np.uint8)
    mujoco.mj_saveModel(model, None, buffer)
    return hashlib.sha256(buffer.tobytes()).hexdigest()


def _declared_files(spec, with_file: bool = True) -> dict[str, Path]:
    """The policy's ``file:`` and any ``files:`` list (relative ones taken from the manifest's
    folder), labelled by position and name so the key does not depend on the checkout's place."""
    named = ([spec.file] if with_file and getattr(spec, "file", None) else []) + list(getattr(spec, "files", None) or ())
    manifest = Path(str(getattr(spec, "manifest", "")))
    base = manifest.resolve().parent if manifest.is_file() else Path.cwd()
    paths = [Path(item) if Path(item).is_absolute() else base / item for item in named]
    return {f"{i}:{path.name}": path for i, path in enumerate(paths)}


def policy_inputs(spec, policy) -> dict:
    """What a policy's actions depend on. A weights file: its bytes (never only the manifest's
    claim), format, sizes and runtime version. A scripted policy: every file of its entry
    module's package, the code of the object it returned, and the files its manifest names."""
    sizes = [spec.observation_size, spec.action_size]
    if spec.format == "hold":  # the null policy: its action is all it is
        return {"format": "hold", "action": np.asarray(policy.action, dtype=np.float64).tolist()}
    if spec.format != "scripted":
        runtime = {"onnx": "onnxruntime", "torchscript": "torch"}.get(spec.format, spec.format)
        return {"format": spec.format, "file": file_sha256(Path(spec.file)), "sizes": sizes,
                "runtime": f"{runtime}=={_version(runtime)}",
                "files": {label: source_digest(p) for label, p in _declared_files(spec, with_file=False).items()}}
    return {"format": "scripted", "sizes": sizes, **scripted_sources(spec), "class": class_digests(policy)}


def scripted_sources(spec) -> dict:
    """What a scripted policy's code is, known without loading it: its entry, every file of its
    entry module's package, and the files its manifest names."""
    module = (spec.entry or "").partition(":")[0]
    if not module:
        raise Undigestable(f"policy {spec.name!r} has no entry module to hash")
    package, location = module_location(module)
    return {"entry": spec.entry, "package": {package: source_digest(location)},
            "files": {label: source_digest(p) for label, p in _declared_files(spec).items()}}


def policy_sha256(spec, policy) -> str:
    """For the summary: the policy file's sha256 (of its bytes), or one digest of a scripted
    policy's code and files."""
    if spec.format != "scripted" and getattr(spec, "file", None):
        return file_sha256(Path(spec.file))
    return hashlib.sha256(json.dumps(policy_inputs(spec, policy), sort_keys=True).encode()).hexdigest()


def env_inputs(env) -> dict:
    """The env's rules: its class's packages (and, for a YAML robot, its files' digests); for the gymnasium adapter, gymnasium's version and
    the wrapped task's class too (the adapter itself is simgate's, keyed by simgate's digest)."""
    out = {"code": class_digests(env)}
    described = getattr(env, "inputs", None)
    if callable(described):  # a YAML robot: its robot file and the policy's contract, beside the model
        out["described"] = described()

    if isinstance(env, GymnasiumEnv):
        out["gymnasium"] = _version("gymnasium")
        out["task"] = class_digests(env.gym)
    return out


def context(case, env, model, spec, policy, perturbations) -> dict:
    """Everything an episode of ``case`` depends on but its index. Raises Undigestable (or
    OSError) when some input cannot be hashed: such a case is not cached."""
    import mujoco

    return {
        "engine": ENGINE_VERSION,
        "simgate": {"version": simgate.__version__, "source": simgate_digest()},
        "runtime": {"python": sys.version, "implementation": platform.python_implementation(),
                    "machine": platform.machine(), "mujoco": mujoco.__version__, "numpy": np.__version__},
        "env": {"name": case.env, "model": model_sha256(model), **env_inputs(env)},
        "policy": {"name": case.policy, **policy_inputs(spec, policy)},
        "perturbations": {"params": list(case.perturbations), "code": [class_digests(p) for p in perturbations]},
        "horizon": case.horizon,
        "seed": dict(zip(("seed", "scenario", "point"), seed_identity(case))),  # a pinned case: its source's
        # limits end episodes early; absent, the key is the one a case without them always had
        **({"hard_limits": case.hard_limits} if getattr(case, "hard_limits", None) else {}),
    }


# ---------------------------------------------------------------------------------------------
# entries


class Refused:
    """No cache for this case (an input could not be hashed): every episode is computed."""

    def __init__(self, reason: str):
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def get(self, index: int, row: dict | None = None):
        return None

    def load(self, index: int, row: dict | None = None):
        return None

    def put(self, episode, engine: str = "unknown", row: dict | None = None) -> None:
        return None


def _content_digest(key: str, meta: str, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(f"simgate-episode\0{SCHEMA}\0{key}\0{meta}\0".encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _entry_problem(fields: dict, arrays: dict, key: str) -> str | None:
    """Why a stored entry's scalars and arrays are not a valid entry of ``key`` in this schema
    (checked before anything is converted), or None."""
    kinds = {"schema": "iu", "key": "U", "meta": "U", "digest": "U"}
    if any(fields[name].ndim != 0 or fields[name].dtype.kind not in kinds[name] for name in kinds):
        return "another layout"
    if int(fields["schema"]) != SCHEMA:
        return "another schema"
    if str(fields["key"]) != key:
        return "another key"
    for name, (dtype, ndim) in _ARRAYS.items():
        if arrays[name].dtype.str != dtype or arrays[name].ndim != ndim:
            return "another layout"
    if str(fields["digest"]) != _content_digest(key, str(fields["meta"]), arrays):
        return "content does not match its digest"
    return None


def _checked_meta(meta, index: int) -> dict:
    """The stored scalars if they have the shape an entry of this schema has; else ValueError."""
    expected = {*_SCALARS, "seed", "engine"}
    if not isinstance(meta, dict) or set(meta) != expected:
        raise ValueError("unexpected fields")
    ok = (type(meta["index"]) is int and meta["index"] == index and type(meta["success"]) is bool
          and type(meta["length"]) is int and meta["length"] >= 0 and isinstance(meta["seed"], str)
          and meta["seed"].isdigit() and isinstance(meta["engine"], str)
          and all(type(meta[n]) in (int, float) for n in _NUMBERS)
          and all(meta[n] is None or isinstance(meta[n], str) for n in ("terminated", "message"))
          and isinstance(meta["signals"], dict)
          and all(isinstance(meta[n], dict) and all(isinstance(k, str) and type(v) in (int, float) for k, v in meta[n].items())
                  for n in ("signals", "signal_peaks")))
    if not ok:
        raise ValueError("unexpected values")
    return meta


#: what reading a damaged, truncated or foreign file can raise (numpy's npz reader: zipfile,
#: zlib, the npy header parser; the meta's JSON): such an entry is a counted miss
_DAMAGE = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


class EpisodeCache:
    """Episodes of one (case, policy) under ``root``, keyed by content. ``damaged`` counts the
    entries found but not used (``damage``: how many for each reason)."""

    def __init__(self, root: Path, context: dict):
        self.root = Path(root)
        self.context = json.dumps(context, sort_keys=True, default=str)
        self.damage: Counter = Counter()

    @property
    def damaged(self) -> int:
        return sum(self.damage.values())

    def key(self, index: int, row: dict | None = None) -> str:
        """``row``: a search row's parameters ({axis: value}), which replace the case's params
        for that episode; the key covers them, so a row is never served another row's result."""
        text = f"{self.context}|episode={index}"
        if row is not None:
            text += "|row=" + json.dumps({k: repr(float(v)) for k, v in row.items()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, index: int, row: dict | None = None) -> Path:
        key = self.key(index, row)
        return self.root / key[:2] / f"{key}.npz"

    def get(self, index: int, row: dict | None = None) -> Episode | None:
        found = self.load(index, row)
        return None if found is None else found[0]

    def load(self, index: int, row: dict | None = None) -> tuple[Episode, str] | None:
        """The stored episode and the engine that computed it, or None: absent, or in any doubt
        (an entry that is damaged, tampered with, of another schema or key is counted in
        ``damage`` and recomputed; ``put`` overwrites it). A fault of this code propagates."""
        key = self.key(index, row)
        try:
            with np.load(self.path(index, row), allow_pickle=False) as stored:
                if set(stored.files) != _FIELDS:
                    return self._miss("another layout")
                fields = {name: stored[name] for name in ("schema", "key", "meta", "digest")}
                arrays = {name: stored[name] for name in _ARRAYS}
        except (FileNotFoundError, NotADirectoryError):
            return None  # not stored (yet)
        except _DAMAGE as exc:
            return self._miss(f"unreadable ({type(exc).__name__})")
        why = _entry_problem(fields, arrays, key)
        if why:
            return self._miss(why)
        try:
            meta = _checked_meta(json.loads(str(fields["meta"])), index)
        except ValueError:  # the JSON, or its fields and values
            return self._miss("unexpected meta")
        if (len(arrays["step_hashes"]) != meta["length"] or len(arrays["actions"]) != meta["length"]
                or arrays["mean_abs_torque"].shape != arrays["peak_abs_torque"].shape):
            return self._miss("inconsistent lengths")
        engine = meta.pop("engine")
        return Episode(seed=int(meta.pop("seed")), **meta, **arrays), engine

    def _miss(self, why: str) -> None:
        self.damage[why] += 1
        return None

    def put(self, episode: Episode, engine: str = "unknown", row: dict | None = None) -> None:
        """Store atomically. Raises OSError when the folder cannot be written (the caller stops caching)."""
        key = self.key(episode.index, row)
        path = self.path(episode.index, row)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {name: getattr(episode, name) for name in _SCALARS}
        meta["seed"] = str(episode.seed)  # 128 bits: JSON numbers would round it
        meta["engine"] = engine
        text = json.dumps(meta, allow_nan=True, sort_keys=True)
        arrays = {name: np.ascontiguousarray(getattr(episode, name)) for name in _ARRAYS}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(text), schema=np.array(SCHEMA), key=np.array(key),
                 digest=np.array(_content_digest(key, text, arrays)), **arrays)
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
