"""Replay one episode of a case exactly: the trajectory file, the check that it is the suite's
episode bit for bit, and a video where MuJoCo can render (OSMesa or EGL on a CPU machine).

The library behind ``python -m simgate replay`` (:mod:`simgate.cli.replay`, the command) and the
report's worst-episode videos (:mod:`simgate.reporting.allure`). The case is found by its test id
in the scenario files, the episode by its index; its seed follows from both (simgate.seeds), so
nothing else is needed to reproduce it.
"""

from __future__ import annotations

import hashlib
import json
import os
from ctypes.util import find_library
from pathlib import Path

import numpy as np

from simgate.engine.reference import row_perturbations
from simgate.errors import SimgateError
from simgate.limits import HARD_LIMIT
from simgate.names import did_you_mean
from simgate.reporting.mcap import Trajectory, write_mcap
from simgate.reporting.video import View, mark_end
from simgate.reporting.video import still as end_still
from simgate.rig import build_rig
from simgate.scenarios.expand import load_cases
from simgate.search.space import written_row


def find_case(case_id: str, scenarios: Path, rootdir: Path, host):
    policy = next((p for p in sorted(host.registries.policies.names(), key=len, reverse=True)
                   if case_id.endswith("-" + p)), None)
    if policy is None:
        raise SimgateError(f"case id {case_id!r} does not end with a registered policy name")
    cases = {c.id: c for c in load_cases(scenarios, rootdir, host.registries, [policy], [], None)}
    if case_id not in cases:
        raise SimgateError(f"no case {case_id!r} in {scenarios}{did_you_mean(case_id, list(cases))}")
    return cases[case_id]


def row_starts(case, perturbations: list, params: dict) -> list:
    """The perturbation instances that draw a search row's world (``params``: {axis: value},
    an axis being ``kind.param`` of one of the case's perturbations)."""

    try:
        return row_perturbations(perturbations, written_row(case, params))
    except ValueError as exc:
        raise SimgateError(f"--params: {exc}") from None


def replay(case, index: int, host, out: Path, video: bool = False, fps: int = 25, cache_dir: Path | None = None,
           failure_mode: str | None = None, params: dict | None = None) -> dict:
    """Run episode ``index`` of ``case`` on the reference engine, recording every control step;
    with ``cache_dir``, also say whether the suite's cached run of it had the same trajectory
    (``matches_suite_run``: None when it is not cached). ``failure_mode``: the episode's primary
    mode, written on the video's last frame. ``params``: a search row's values ({axis: value}),
    which draw the episode's world instead of the case's own."""

    rig = build_rig(case, case.policy, host.registries, engine="reference", cache_dir=cache_dir)
    env, engine = rig.env, rig.engine
    starts = row_starts(case, engine.perturbations, params) if params else None
    n_steps = int(round(case.horizon / engine.control_dt))
    frames, qpos, qvel, times = [], [], [], []
    view = None
    if video:
        view = View.open(env, engine.nominal, engine.perturbations)
    every = max(1, int(round(1.0 / (fps * engine.control_dt))))

    trajectory = Trajectory()

    def record(model, data, step):
        trajectory.record(model, data, step)
        qpos.append(np.array(data.qpos))
        qvel.append(np.array(data.qvel))
        times.append(float(data.time))
        if view is not None and (step + 1) % every == 0:
            frames.append(view.frame(model, data, (step + 1) * engine.control_dt))

    try:
        episode = engine.run_episode(case, index, n_steps, observer=record, perturbations=starts)
    finally:
        if view is not None:
            view.close()
    pushed = view.pushed if view is not None else []
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{case.id}-episode{index}"
    if params:  # a search row: its params in the name, so two rows never overwrite each other

        tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
        stem = out / f"{case.id}-row{tag}-episode{index}"
    np.savez_compressed(stem.with_suffix(".npz"), time=np.array(times), qpos=np.array(qpos), qvel=np.array(qvel),
                        actions=episode.actions, step_hashes=episode.step_hashes)
    trajectory.actions = episode.actions
    written = {"trajectory": str(stem.with_suffix(".npz")), "mcap": str(write_mcap(stem.with_suffix(".mcap"), trajectory)),
               "state_hash": episode.state_hash, "success": episode.success, "terminated": episode.terminated,
               "length": episode.length, "params": params}
    if frames:
        import imageio.v2 as imageio

        ended = episode.length * engine.control_dt
        detail = episode.message if episode.terminated == HARD_LIMIT else None
        frames = mark_end(frames, ended, episode.success, episode.terminated, failure_mode, fps, detail=detail)
        path = stem.with_suffix(".mp4")
        imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
        written["video"] = str(path)
        still = stem.parent / f"{stem.name}-end.png"  # the marked end, seen without playing the video
        imageio.imwrite(still, end_still(frames, pushed))
        written["still"] = str(still)
    elif video:
        written["video"] = None
        written["video_error"] = _RENDER_HELP
    if cache_dir is not None:
        row = {k: float(v) for k, v in params.items()} if params else None
        cached = rig.cache.get(index, row) if rig.cache else None
        written["matches_suite_run"] = None if cached is None else cached.state_hash == episode.state_hash
    return written


_RENDER_HELP = ("MuJoCo could not render here: install a software OpenGL (Debian: apt-get install -y libosmesa6, "
                "then MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa; or libegl1 libgl1-mesa-dri with MUJOCO_GL=egl)")


def choose_gl() -> None:
    """Software OpenGL for the renderer where the machine has it. MuJoCo reads MUJOCO_GL when it
    is first imported, so this runs before that (the CLI, or the pytest plugin with Allure on)."""

    if "MUJOCO_GL" in os.environ:
        return
    for backend, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if find_library(library):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return


def parse_params(text: str | None) -> dict | None:
    """A search row's values (``--params`` of replay and pin), or None without any."""
    if not text:
        return None
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SimgateError(f"--params should be a JSON object such as '{{\"apply_pushes.force\": 9.5}}', "
                           f"received {text!r} ({exc})") from None
    if not isinstance(params, dict) or not params:
        raise SimgateError(f"--params should be a non-empty JSON object of axis: value, received {text!r}")
    return params
