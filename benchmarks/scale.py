"""Scale benchmark: N balancebot episodes (2 s each, no perturbation) through the local batched
engine and through Ray on this machine (``--simgate-ray local``'s path: lane-sized chunks as Ray
tasks, each checked against the driver's cache context, streamed into an episode cache). Prints
episodes/s, control steps/s, the driver's peak RSS and Ray's throughput over the batched
engine's, measured in the same run; each mode runs in its own process.

    python benchmarks/scale.py                   # 10,000 episodes
    python benchmarks/scale.py --episodes 2000   # a quicker look
    python benchmarks/scale.py --large           # 100,000 episodes

Not measured yet: xdist and a two-node cluster (tests/test_ray.py starts one for the fault test).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICY = "balancebot-lqr"
BLOCK = 32 * 64  # the batched mode runs this many episodes at a time (whole lanes: the same lanes)


def _case(episodes: int):
    from simgate.scenarios.case import Case

    return Case(id="scale", scenario="scale", source="<benchmark>", env="balancebot", policy=POLICY, point={},
                perturbations=(), episodes=episodes, horizon=2.0, seed=0, alpha=0.05,
                determinism_episodes=0, thresholds={})


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, episodes: int) -> dict:
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    from simgate import scaleout
    from simgate.plugin_manager import Host

    host = Host(project_plugins=["envs", "policies"], autoload=False)
    case = _case(episodes)
    steps = 0
    with tempfile.TemporaryDirectory() as cache_dir:
        if mode == "batched":
            os.environ["SIMGATE_ENGINE_THREADS"] = str(os.cpu_count() or 1)
            runner, _ = scaleout.context_of(case, POLICY, host, "auto", cache_dir)
            start = time.perf_counter()
            for first in range(0, episodes, BLOCK):
                rollouts = runner.run(case, range(first, min(first + BLOCK, episodes)))
                steps += sum(e.length for e in rollouts.episodes)
                del rollouts
        else:
            import ray

            os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
            ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     runtime_env={"working_dir": str(REPO), "excludes": scaleout.EXCLUDES,
                                  "env_vars": {"SIMGATE_ENGINE_THREADS": "1"}})
            runner, cache = scaleout.context_of(case, POLICY, host, "auto", cache_dir)
            task = ray.remote(num_cpus=1, max_retries=scaleout.MAX_RETRIES)(scaleout.run_chunk)
            start = time.perf_counter()
            pending = [task.remote(("envs", "policies"), case, POLICY, "auto", chunk, cache.context)
                       for chunk in scaleout.chunks_for(case, runner)]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                engine, done = ray.get(ready[0])
                for episode in done:
                    cache.put(episode, engine)
                steps += sum(e.length for e in done)
                del done
            ray.shutdown()
        seconds = time.perf_counter() - start
    return {"mode": mode, "episodes": episodes, "seconds": seconds, "episodes_per_s": episodes / seconds,
            "steps_per_s": steps / seconds, "driver_peak_mib": _peak_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--large", action="store_true", help="100,000 episodes")
    parser.add_argument("--modes", default="batched,ray")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    episodes = 100_000 if args.large else args.episodes
    if args.child:
        print(json.dumps(child(args.child, episodes)))
        return
    results = {}
    for mode in args.modes.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--episodes", str(episodes)],
                             capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results.get("batched")
    for mode, r in results.items():
        ratio = f", {r['episodes_per_s'] / base['episodes_per_s']:.2f}x batched" if base else ""
        print(f"{mode:8s} {r['episodes']} episodes in {r['seconds']:.1f} s: {r['episodes_per_s']:.0f} episodes/s, "
              f"{r['steps_per_s']:.0f} control steps/s, driver peak RSS {r['driver_peak_mib']:.0f} MiB{ratio}")


if __name__ == "__main__":
    main()
