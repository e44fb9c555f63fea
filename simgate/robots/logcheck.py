"""Check a policy's contract against a log recorded in its training env.

``python -m simgate contract check <policy> <log.npz>`` (and :func:`check_manifest_log`, which the
gate runs at configure time for a contract's ``log:``) replays the log through the policy's
contract on the YAML robot and reports, per observation term, the largest absolute difference
between the observation simgate builds and the one the network saw in training, and per
actuator the largest difference between the ``ctrl`` simgate would send and the one the
training env wrote, and (given the policy) the largest difference between the network's output
on the logged observations and the logged action: the right contract with the wrong network
file shows up there. A contract that misstates the quaternion order, the joint order, the filter
or the first previous action shows up here as a named term (or ``ctrl``) and a step, before any
episode runs.

The log (``.npz``, as ``numpy.savez`` writes it; one row per control step, ``T`` rows)
--------------------------------------------------------------------------------------

=============  ===========================  ==========================================================
key            shape                        what
=============  ===========================  ==========================================================
``obs``        (T, observation_size)        the observation the network was given at step t, as the
                                            env built it (float64 when the env computed in float64:
                                            a float32 copy compares only to float32 rounding,
                                            ~1e-7 relative; set the tolerance accordingly)
``action``     (T, action_size)             the network's raw output at step t (the exported,
                                            deterministic network's: not an action sampled
                                            around it); compared with the policy's own output
``ctrl``       (T, nu)                      ``MjData.ctrl`` as the training env wrote it after that
                                            action (compared on the contract's actuators only)
``qpos``       (T, nq)                      the state the observation of step t was built from
``qvel``       (T, nv)                      (``MjData.qpos``/``qvel`` when ``observe`` was called)
``sensordata`` (T, k), optional             ``MjData.sensordata`` the observation was built from;
                                            ``k`` is the training model's ``nsensordata`` (the
                                            scene's sensors; simgate's model may append contact
                                            sensors after them). Needed when a term reads a
                                            sensor: MuJoCo's sensordata after ``mj_step`` is
                                            computed before the integration, so it lags ``qpos``
                                            by one physics step and cannot be recomputed from it
``time``       (T,), optional               ``MjData.time`` at step t (default: t × control period)
``command``    (3,) or (T, 3), optional     the velocity command (vx m/s, vy m/s, yaw_rate rad/s)
                                            for a contract with a ``velocity_commands`` term
                                            (default: the term's ``value``; required when it
                                            samples ``ranges``)
``start_yaw``  scalar, optional             the heading-hold reference (rad; default: the yaw of
                                            the first step's base quaternion in ``qpos``)
=============  ===========================  ==========================================================

No other key is accepted (a misspelt ``sensordata`` would otherwise be ignored in silence), every
array is real-valued and finite, and every per-step array has the same ``T ≥ 1`` rows.

The replay
----------
One ``MjData`` of the bound env's model; ``env.reset`` (as a new episode starts: the contract's
previous action, filter, delay line and history at their initial values), then for each step t:
``qpos``, ``qvel`` and ``time`` are written, ``mj_forward`` computes the rest (contact sensors),
the first ``k`` sensor readings are overwritten with the logged ones, the command and start
heading are written to the contract's userdata slots; the observation is built
(``observe_rows``) and compared with ``obs[t]`` term by term (each term's ``size × history``
columns, in the contract's order), then ``ctrl_rows`` maps ``action[t]``, advancing the contract's
per-episode state exactly as an episode does, and its ctrl is compared with ``ctrl[t]``.

:func:`record_log` writes such a log from one episode of a Python env (``MujocoEnv``).
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from pathlib import Path

import numpy as np

from simgate.envs.base import OneRow
from simgate.envs.factory import env_for
from simgate.errors import SimgateError
from simgate.names import did_you_mean
from simgate.robots import quat
from simgate.robots.env import CONTACT_PREFIX

DEFAULT_TOLERANCE = 1e-4
REQUIRED = ("obs", "action", "ctrl", "qpos", "qvel")
OPTIONAL = ("sensordata", "time", "command", "start_yaw")
FORMAT_HELP = ("a log is an .npz file (numpy.savez) with obs (T, observation_size), action (T, action_size), "
               "ctrl (T, nu), qpos (T, nq), qvel (T, nv) and optionally sensordata (T, k), time (T,), "
               "command (3,) or (T, 3), start_yaw (scalar); see simgate/robots/logcheck.py")


@dataclasses.dataclass
class Difference:
    """The comparison of one term (or of ctrl) over the log."""

    name: str
    columns: tuple[int, int]  # [start, stop) of obs (of the contract's actuators for ctrl)
    max_diff: float
    at_step: int  # where the max is
    at_column: int  # absolute column (actuator id for ctrl) of the max
    first_bad: int | None = None  # first step over the tolerance
    logged: np.ndarray | None = None  # at first_bad
    built: np.ndarray | None = None
    label: str = ""  # ctrl: the actuator of the max


@dataclasses.dataclass
class CheckResult:
    path: Path
    steps: int
    tolerance: float
    terms: list[Difference]
    ctrl: Difference
    #: the network's output on the logged observations against the logged action, when the policy
    #: was given (a wrong or re-exported network under the right contract shows here)
    network: Difference | None = None

    @property
    def compared(self) -> list[Difference]:
        return self.terms + [self.ctrl] + ([self.network] if self.network is not None else [])

    @property
    def failing(self) -> list[Difference]:
        return [d for d in self.compared if not d.max_diff <= self.tolerance]

    @property
    def ok(self) -> bool:
        return not self.failing

    def summary(self) -> str:
        """``name max |diff| x (first over the tolerance at step t)`` for each failing part."""
        return "; ".join(f"{d.name} max |diff| {_num(d.max_diff)} (first over {self.tolerance:g} at step {d.first_bad})"
                         for d in self.failing)

    def _row(self, d, head: str, where: str) -> list[str]:
        """One compared quantity's line (and its first failing values when past the tolerance)."""
        verdict = "ok" if d.max_diff <= self.tolerance else "FAIL"
        line = f"{head}  max |diff| {_num(d.max_diff)}" + (where if d.max_diff > 0 else "")
        return [f"{line}  {verdict}"] + (_detail(d) if verdict == "FAIL" else [])

    def table(self) -> str:
        width = max(len(d.name) for d in self.compared)
        lines = [f"{self.path}: {self.steps} control steps, tolerance {self.tolerance:g}"]
        for d in self.terms:
            cols = f"cols {d.columns[0]}-{d.columns[1] - 1}"
            lines += self._row(d, f"  {d.name:<{width}}  {cols:<11}", f" (col {d.at_column}, step {d.at_step})")
        d = self.ctrl
        lines += self._row(d, f"  {d.name:<{width}}", f" at actuator {d.label} step {d.at_step}")
        if self.network is not None:
            d = self.network
            lines += self._row(d, f"  {d.name:<{width}}", f" (output {d.at_column}, step {d.at_step})")
        if self.ok:
            network = ", the network's actions" if self.network is not None else ""
            lines.append(f"PASS: the contract reproduces the log: all {len(self.terms)} observation terms, ctrl{network} "
                         f"within {self.tolerance:g}")
        else:
            names = ", ".join(d.name for d in self.failing)
            lines.append(f"FAIL: the contract does not reproduce the log: {names} over the tolerance {self.tolerance:g}")
        return "\n".join(lines)


def _num(x: float) -> str:
    return "0" if x == 0 else f"{x:.3g}"


def _vector(v: np.ndarray, limit: int = 16) -> str:
    shown = ", ".join(f"{x:.6g}" for x in v[:limit])
    return f"[{shown}{', ...' if len(v) > limit else ''}]"


def _detail(d: Difference) -> list[str]:
    what = "actuators" if d.name == "ctrl" else f"cols {d.columns[0]}-{d.columns[1] - 1}"
    return [f"      first over the tolerance at step {d.first_bad} ({what}):",
            f"        logged {_vector(d.logged)}",
            f"        built  {_vector(d.built)}"]


# -- reading a log ---------------------------------------------------------------------------------

def read_log(path: Path, env, model) -> dict[str, np.ndarray]:
    """The log's arrays, checked against ``env`` (bound to a contract) and its ``model``: one
    SimgateError naming the file, the key and the fix for anything that does not fit."""
    path = Path(path)
    if not path.is_file():
        raise SimgateError(f"log {path} does not exist{' (it is a directory)' if path.is_dir() else ''}; "
                           f"give the path of the .npz log recorded in the training env ({FORMAT_HELP})")
    if not zipfile.is_zipfile(path):
        raise SimgateError(f"log {path} is not an .npz file (a zip archive of named arrays); write it with "
                           f"numpy.savez ({FORMAT_HELP})")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # a zip that is no npz, a truncated file
        raise SimgateError(f"log {path} cannot be read as an .npz file ({type(exc).__name__}: {exc}); write it "
                           f"with numpy.savez ({FORMAT_HELP})") from None
    with archive:
        keys = list(archive.files)

        for key in keys:
            if key not in REQUIRED + OPTIONAL:
                raise SimgateError(f"log {path}: unknown key {key!r}{did_you_mean(key, REQUIRED + OPTIONAL)}; "
                                   f"rename or remove it ({FORMAT_HELP})")
        missing = [k for k in REQUIRED if k not in keys]
        if missing:
            raise SimgateError(f"log {path}: key {missing[0]!r} is missing (the log has {', '.join(keys) or 'no keys'}); "
                               f"record it in the training env ({FORMAT_HELP})")
        log = {}
        for key in keys:
            try:
                value = archive[key]
            except Exception as exc:  # object arrays (pickled) are refused
                raise SimgateError(f"log {path}: key {key!r} cannot be read without unpickling ({exc}); save it "
                                   "as a numeric array") from None
            if value.dtype.kind not in "biuf":
                raise SimgateError(f"log {path}: key {key!r} has dtype {value.dtype}; save it as a real-valued "
                                   "numeric array (float64)")
            log[key] = value.astype(np.float64)
    _check_shapes(path, log, env, model)
    return log


def _check_shapes(path: Path, log: dict, env, model) -> None:
    T = log["obs"].shape[0] if log["obs"].ndim >= 1 else 0
    widths = {"obs": (env.observation_size, "the contract's observation_size"),
              "action": (env.action_size, "the contract's action_size (its actuators)"),
              "ctrl": (model.nu, "the model's nu (actuators)"),
              "qpos": (model.nq, "the model's nq"), "qvel": (model.nv, "the model's nv")}
    scene_sensors = _scene_nsensordata(env, model)
    for key in REQUIRED + ("sensordata",):
        if key not in log:
            continue
        value = log[key]
        if value.ndim != 2:
            raise SimgateError(f"log {path}: key {key!r} has shape {value.shape}; it is one row per control step, "
                               f"(T, columns)")
        if value.shape[0] != T:
            raise SimgateError(f"log {path}: key {key!r} has {value.shape[0]} rows but 'obs' has {T}; every "
                               "per-step array has one row per control step: record them at the same steps")
        if key == "sensordata":
            if value.shape[1] > scene_sensors:
                raise SimgateError(f"log {path}: key 'sensordata' has {value.shape[1]} columns but the scene's sensors "
                                   f"give {scene_sensors} values (nsensordata); record the training model's "
                                   "sensordata of this scene")
            continue
        want, what = widths[key]
        if value.shape[1] != want:
            raise SimgateError(f"log {path}: key {key!r} has {value.shape[1]} columns but {what} is {want}; record "
                               f"{key} of the same robot and contract (or fix the contract)")
    if T == 0:
        raise SimgateError(f"log {path}: key 'obs' has no rows; record at least one control step")
    if "time" in log and log["time"].shape != (T,):
        raise SimgateError(f"log {path}: key 'time' has shape {log['time'].shape}, expected ({T},): one time per "
                           "control step")
    if "command" in log and log["command"].shape not in ((3,), (T, 3)):
        raise SimgateError(f"log {path}: key 'command' has shape {log['command'].shape}, expected (3,) or ({T}, 3): "
                           "(vx, vy, yaw_rate) for the episode or per step")
    if "start_yaw" in log and log["start_yaw"].size != 1:
        raise SimgateError(f"log {path}: key 'start_yaw' has shape {log['start_yaw'].shape}; it is one number (rad)")
    for key, value in log.items():
        bad = ~np.isfinite(value)
        if bad.any():
            where = np.argwhere(bad)[0]
            raise SimgateError(f"log {path}: key {key!r} has a non-finite value ({value[tuple(where)]}) at index "
                               f"{tuple(int(i) for i in where)}; a log of a diverged episode cannot check a contract: "
                               "record a shorter or healthy episode")


def _scene_nsensordata(env, model) -> int:
    """The sensor values of the scene itself: simgate's contact sensors come after them."""

    import mujoco

    for i in range(model.nsensor):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SENSOR, i) or ""
        if name.startswith(CONTACT_PREFIX):
            return int(model.sensor_adr[i])
    return int(model.nsensordata)


# -- the check -------------------------------------------------------------------------------------

def default_tolerance(contract) -> float:
    log = contract.contract.log if contract is not None else None
    return float(log.tolerance) if log is not None else DEFAULT_TOLERANCE


def term_names(env) -> list[str]:
    """Each term's name: its kind, numbered from the second of a kind on (``padding#2``)."""
    seen: dict[str, int] = {}
    names = []
    for term in env.terms:
        seen[term.kind] = seen.get(term.kind, 0) + 1
        names.append(term.kind if seen[term.kind] == 1 else f"{term.kind}#{seen[term.kind]}")
    return names


def check_log(env, path: Path, tolerance: float | None = None, model=None, policy=None) -> CheckResult:
    """Replay the log at ``path`` through ``env`` (a YAML robot bound to a contract); with
    ``policy`` (its ``act``), also run the network on the logged observations and compare its
    output with the logged action."""
    import mujoco

    if getattr(env, "contract", None) is None or getattr(env, "actions", None) is None:
        raise SimgateError(f"env {getattr(env, 'name', env)!r} is not bound to a contract: a log is checked against a "
                           "policy's contract on a YAML robot")
    tolerance = default_tolerance(env.contract) if tolerance is None else float(tolerance)
    if not tolerance > 0 or not math.isfinite(tolerance):
        raise SimgateError(f"tolerance {tolerance!r}: give a positive finite number (e.g. 1e-4)")
    model = env.build_model() if model is None else model
    path = Path(path)
    log = read_log(path, env, model)
    T = log["obs"].shape[0]
    period = 1.0 / env.control_hz
    times = log["time"] if "time" in log else np.arange(T) * period
    k = log["sensordata"].shape[1] if "sensordata" in log else 0

    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(0))
    lay, a = env.layout, env.index(model)["qpos"]
    qpos, qvel = log["qpos"], log["qvel"]
    if "start_yaw" in log:
        start_yaw = float(log["start_yaw"].reshape(-1)[0])
    else:

        w, x, y, z = qpos[0, a + 3:a + 7]
        start_yaw = float(quat.yaw_of(w, x, y, z))
    data.userdata[lay["start"]] = (qpos[0, a], qpos[0, a + 1], start_yaw)
    command = None
    if "command" in log:
        command = np.broadcast_to(log["command"], (T, 3))
    elif env.command is not None and env.command.cfg.ranges is not None:
        raise SimgateError(f"log {path}: key 'command' is missing, and the contract's velocity_commands term "
                           f"({env.contract.where('observation')}) samples its command from ranges; record the "
                           "episode's command as command (3,) or (T, 3): vx, vy, yaw_rate")

    built_obs = np.empty_like(log["obs"])
    built_ctrl = np.empty((T, env.actions.size))
    ids = env.actions.ids
    for t in range(T):
        data.qpos[:] = qpos[t]
        data.qvel[:] = qvel[t]
        data.time = float(times[t])
        mujoco.mj_forward(model, data)
        if k:
            data.sensordata[:k] = log["sensordata"][t]
        if command is not None:
            data.userdata[lay["command"]] = command[t]
        rows = OneRow(data)
        built_obs[t] = env.observe_rows(model, rows)[0]
        built_ctrl[t] = np.asarray(env.ctrl_rows(model, rows, log["action"][t][None]))[0][ids]

    terms, at = [], 0
    for name, term in zip(term_names(env), env.terms):
        width = term.size * term.history
        terms.append(_compare(name, (at, at + width), log["obs"][:, at:at + width], built_obs[:, at:at + width],
                              tolerance))
        at += width
    ctrl = _compare("ctrl", (0, len(ids)), log["ctrl"][:, ids], built_ctrl, tolerance)
    ctrl.at_column = int(ids[ctrl.at_column])
    ctrl.label = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, ctrl.at_column) or f"actuator{ctrl.at_column}"
    network = None
    if policy is not None:
        try:
            acted = np.asarray(policy.act(np.asarray(log["obs"], dtype=np.float64)), dtype=np.float64).reshape(T, -1)
        except Exception as exc:  # noqa: BLE001 - the policy's code: named, not a traceback
            raise SimgateError(f"log {path}: the network could not be run on the logged observations: "
                               f"{type(exc).__name__}: {exc}") from None
        if acted.shape != log["action"].shape:
            raise SimgateError(f"log {path}: the network gives {acted.shape[1]} actions a step, the log's action "
                               f"{log['action'].shape[1]}: the policy's file is not the network that acted in the log")
        network = _compare("action (network)", (0, acted.shape[1]), log["action"], acted, tolerance)
    return CheckResult(path, T, tolerance, terms, ctrl, network)


def _compare(name: str, columns: tuple[int, int], logged: np.ndarray, built: np.ndarray, tolerance: float) -> Difference:
    diff = np.abs(built - logged)
    diff = np.where(np.isnan(diff), np.inf, diff)  # a NaN built is a mismatch, never a pass
    flat = int(np.argmax(diff))
    step, col = divmod(flat, diff.shape[1])
    out = Difference(name, columns, float(diff[step, col]), step, columns[0] + col)
    over = np.nonzero((diff > tolerance).any(axis=1))[0]
    if len(over):
        first = int(over[0])
        out.first_bad, out.logged, out.built = first, logged[first].copy(), built[first].copy()
    return out


class Mismatch(str):
    """A problem message that is a disagreement between a contract and what it must describe (its
    network's sizes, its training log), not a mistake in a file: the evidence would be another
    policy's (INVALID), which a usage error is not."""


def check_manifest_log(spec, env) -> str | None:
    """The gate's configure-time check of a contract's ``log:`` (file relative to the manifest's
    folder, tolerance): a problem message naming the manifest line, the failing term(s) and their
    largest difference, or None when the log is reproduced within the tolerance (or there is no
    ``log:``). A log that cannot be read is a problem message too."""
    contract = getattr(spec, "contract", None)
    if contract is None or contract.contract.log is None:
        return None
    cfg = contract.contract.log
    where_file = contract.where("log", "file")
    folder = Path(contract.folder).resolve()
    path = (folder / cfg.file).resolve()
    if not path.is_relative_to(folder):
        return (f"{where_file}: log.file: {cfg.file!r} is outside the manifest's folder {folder}; put the log next "
                "to the manifest")
    if getattr(env, "contract", None) is not contract:
        env = env_for(env, spec)
    try:
        policy = spec.load()
    except Exception:  # noqa: BLE001 - a policy that cannot load is its cases' policy_error, said there
        policy = None
    try:
        result = check_log(env, path, cfg.tolerance, policy=policy)
    except SimgateError as exc:
        return f"{where_file}: log.file: {exc}"
    if result.ok:
        return None
    names = ", ".join(d.name for d in result.failing)
    return Mismatch(f"{contract.where('log')}: log: the contract of policy {spec.name!r} does not reproduce its training log "
            f"{cfg.file} ({names} over the tolerance {result.tolerance:g}): {result.summary()}; see the table of "
            f"'python -m simgate contract check {spec.name} {path}' and fix the contract (quaternion order, joint "
            "order, scales, filter, initial previous action), the network file (action (network): it is not the "
            "network that acted in the log) or the log")


# -- recording a log -------------------------------------------------------------------------------

def record_log(env, policy, model, rng_seed: int, steps: int, path, command=None, start_yaw=None) -> Path:
    """Run one episode of ``steps`` control steps of a Python env (``MujocoEnv``) with ``policy``
    and write its log (the format above) to ``path``.

    ``command(model, data) -> (vx, vy, yaw_rate)``, called at each step, and ``start_yaw(model,
    data) -> rad``, called once after the reset, record what a contract's ``velocity_commands``
    term needs (an env keeps them in its own userdata slots). ``obs`` is recorded as the env
    built it (float64), before the cast to float32 for the network."""
    import mujoco

    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(rng_seed))
    mujoco.mj_forward(model, data)
    yaw0 = None if start_yaw is None else float(start_yaw(model, data))
    out = {k: [] for k in ("obs", "action", "ctrl", "qpos", "qvel", "sensordata", "time")}
    if command is not None:
        out["command"] = []
    frame_skip = env.frame_skip(model)
    for _ in range(steps):
        obs = np.asarray(env.observe(model, data), dtype=np.float64)
        out["qpos"].append(data.qpos.copy())
        out["qvel"].append(data.qvel.copy())
        out["sensordata"].append(data.sensordata.copy())
        out["time"].append(float(data.time))
        if command is not None:
            out["command"].append(np.asarray(command(model, data), dtype=np.float64).reshape(3))
        action = policy.act(obs[None].astype(np.float32))[0]
        env.apply_action(model, data, action)
        out["obs"].append(obs)
        out["action"].append(np.asarray(action, dtype=np.float64))
        out["ctrl"].append(data.ctrl.copy())
        mujoco.mj_step(model, data, nstep=frame_skip)
    arrays = {k: np.array(v, dtype=np.float64) for k, v in out.items()}
    if yaw0 is not None:
        arrays["start_yaw"] = np.float64(yaw0)
    path = Path(path)
    np.savez(path, **arrays)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
