"""Suite-level timings: a multi-case suite at -n 0 and -n 2, collecting 1,000 generated cases, and
the peak memory of 512 episodes batched together. Each runs in a subprocess, as CI would run it.

    python benchmarks/suite_timing.py    # alone; benchmarks/throughput.py prints it too
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simgate.engine import THREADS_VAR  # noqa: E402  (light: no mujoco at import)

REPO = Path(__file__).resolve().parents[1]
POLICY = "balancebot-lqr-onnx"
#: one small scenario file per friction; the xdist timing runs the first 8 (the issue's smallest
#: suite) and all 16: each worker's fixed start-up (imports, collection) weighs less in the larger
FRICTIONS = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0, 1.1, 1.2, 1.25]
MEMORY_EPISODES = 512


def write_scenario(folder: Path, name: str, perturbations: list[dict], matrix: dict | None = None,
                   episodes: int = 64, horizon: float = 6.0) -> None:
    spec = {"name": name, "env": "balancebot", "episodes": episodes, "horizon": horizon,
            "perturbations": perturbations, "matrix": matrix or {}, "thresholds": {"min_success_rate": 0.5}}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def cpu_seconds() -> float:
    """User + system time of this process's finished children (xdist workers included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pytest(scenarios: Path, *args: str, threads: int | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds and stdout of one pytest run of suites/ on ``scenarios``;
    ``threads`` pins the engine threads per process (SIMGATE_ENGINE_THREADS)."""
    env = dict(os.environ)
    if threads is not None:
        env[THREADS_VAR] = str(threads)
    with tempfile.TemporaryDirectory() as reports:
        # no hypothesis plugin: the main command's install (.[torch]) has none, and it costs 1.4 s per process
        cmd = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
               "--scenarios", str(scenarios),
               "--simgate-reports", reports, "--policy", POLICY, "--baseline", "none", "--simgate-cache", "none", *args]
        start, cpu = time.perf_counter(), cpu_seconds()
        run = subprocess.run(cmd, cwd=REPO, check=False, capture_output=True, text=True, env=env)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if run.returncode not in (0, 1):  # 1: a case failed its gate; the run still counts
        raise RuntimeError(f"{' '.join(cmd)} exited {run.returncode}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return seconds, cpu, run.stdout


def suite_speedup(folder: Path) -> list[str]:
    """xdist's scaling at one engine thread per process (-n 0 vs -n 2) on 8 and on 16 cases, and
    the default -n 0, whose engine already runs a lane per core: xdist then adds start-up, not speed."""
    lines = []
    for size in (8, 16):
        for i, sliding in enumerate(FRICTIONS[:size]):
            write_scenario(folder, f"friction_{i:02d}", [{"kind": "scale_friction", "params": {"sliding": sliding}}])
        serial, serial_cpu, _ = pytest(folder, "-n", "0", threads=1)
        parallel, parallel_cpu, _ = pytest(folder, "-n", "2", threads=1)
        lines.append(f"suite, {size} cases x 64 episodes x 6 s (balancebot, {POLICY}), one engine thread per process: "
                     f"-n 0 {serial:.1f} s (cpu {serial_cpu:.1f} s), -n 2 {parallel:.1f} s (cpu {parallel_cpu:.1f} s), "
                     f"xdist speed-up {serial / parallel:.2f}x")
        if size == 8:
            default, default_cpu, _ = pytest(folder, "-n", "0")
            eight = f"suite, 8 cases, default -n 0 (engine threads = cores): {default:.1f} s (cpu {default_cpu:.1f} s)"
    return lines + [eight]


def collection_time(folder: Path) -> str:
    matrix = {"noise": {"param": "add_observation_noise.scale", "values": np.linspace(0.5, 3.0, 25).round(4).tolist()},
              "friction": {"param": "scale_friction.sliding", "values": np.linspace(0.3, 1.3, 40).round(4).tolist()}}
    noise = {"kind": "add_observation_noise", "params": {"std": {"imu": 0.01, "encoders": 0.005}}}
    write_scenario(folder, "grid", [noise, {"kind": "scale_friction", "params": {"sliding": 1.0}}], matrix)
    wall, _, out = pytest(folder, "--collect-only")
    found = re.search(r"(\d+) tests? collected in ([\d.]+)s", out)
    if found is None:
        raise RuntimeError(f"no collection line in pytest's output:\n{out[-2000:]}")
    return (f"collection, {found[1]} generated cases (25 x 40 matrix): wall {wall:.1f} s "
            f"(process start and imports included), pytest reports {float(found[2]):.2f} s")


def peak_memory() -> str:
    """Spawn this from a small process: Linux carries the spawning process's peak RSS into the
    child's ru_maxrss across exec, which would hide a smaller peak of the child's own."""
    run = subprocess.run([sys.executable, __file__, "--memory-child"], cwd=REPO, check=False, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    return run.stdout.strip()


def memory_child() -> None:
    """512 balancebot episodes (2 s) as one chunk: the peak RSS the run adds to the set-up process."""
    sys.path.insert(0, str(REPO))  # the repository's envs/ and policies/ packages
    from simgate.engine.batched import BatchedEngine
    from simgate.plugin_manager import Host
    from simgate.runner import build_env
    from simgate.scenarios.case import Case

    host = Host(project_plugins=["envs", "policies"], autoload=False)
    env = build_env(host.registries.envs.get("balancebot"))
    spec = host.registries.policies.get(POLICY)
    engine = BatchedEngine(env, spec.load(), [], spec.action_size, nthread=2, chunk=MEMORY_EPISODES)
    case = Case(id="mem", scenario="mem", source="<benchmark>", env="balancebot", policy=POLICY, point={},
                perturbations=(), episodes=MEMORY_EPISODES, horizon=2.0, seed=0, alpha=0.05,
                determinism_episodes=0, thresholds={})
    baseline = peak_mib()
    start = time.perf_counter()
    rollouts = engine.run(case, range(MEMORY_EPISODES))
    seconds = time.perf_counter() - start
    print(f"peak memory, {len(rollouts.episodes)} episodes in one batch (balancebot, 2 s, {seconds:.1f} s): "
          f"+{peak_mib() - baseline:.1f} MiB over the set-up process ({baseline:.0f} MiB)")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def report() -> list[str]:
    with tempfile.TemporaryDirectory() as suite, tempfile.TemporaryDirectory() as grid:
        return [*suite_speedup(Path(suite)), collection_time(Path(grid)), peak_memory()]


if __name__ == "__main__":
    if "--memory-child" in sys.argv:
        memory_child()
    else:
        print("\n".join(report()))
