"""Scale benchmark: N balancebot episodes (2 s each, no perturbation) through

    batched  the local batched engine in this process, one thread per core (the reference figure)
    xdist    the engine in one process per core, one thread each, each taking every k-th lane:
             what `pytest -n <cores>` does with the episodes of one case split into cases (each
             worker runs its cases' lanes on threads_per_worker() = 1 thread); no pytest around it
    ray      Ray on this machine (`--simgate-ray local`'s path: whole lanes as Ray tasks, each
             checked against the driver's cache context, streamed into an episode cache)
    ray2     the same on a two-node Ray cluster on this machine (a head and a second node, one CPU
             each, started and stopped by tests/ray_cluster.py as the fault test does)
    floor    the physics floor: raw mujoco.batch stepping (Batch.step, one call per control step,
             one thread per core, zero control from the nominal start) of the simulated seconds
             the batched engine's episodes lasted

each in its own process, measured in the same run. Prints episodes/s, control steps/s, the
driver's peak RSS (high-water mark of the process that plans and collects) and each mode's
throughput over the batched engine's.

    python benchmarks/scale.py                        # 10,000 episodes, every mode
    python benchmarks/scale.py --modes batched,ray --repeat 3   # interleaved, best of 3
    python benchmarks/scale.py --episodes 100000 --modes ray
    python benchmarks/scale.py --gate                 # the main gate: Ray local, -n 0, -n auto

``--gate`` runs ``pytest suites/`` three times (``--simgate-ray local``, ``-n 0``, ``-n auto``;
``--gate-modes`` picks, ``ray2`` adds a two-node cluster), each into a fresh reports folder,
prints their wall times, the case entries that differ from ``-n 0`` (ignoring episodes_run /
episodes_cached, which say who computed an episode, not what it is), and the physics floor of
the gate: the simulated seconds of every episode the Ray run computed (its ``ray.json``:
candidates, baselines, search rows, sequential batches, determinism repeats), per env, stepped
raw on that env's nominal model with zero control. It also splits the Ray run's wall time with
``ray.json``'s worker_s (per CPU): the engine's time on the workers against the wall (the rest
is scheduling and the driver's own work), and of the engine's time MuJoCo's stepping of the
gate's own trajectories (timed inside Batch.rollout: the same physics work, perturbed models and
terrain included) and the policies' calls.
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
PLUGINS = ("envs", "policies")


def _case(episodes: int):
    from simgate.scenarios.case import Case

    return Case(id="scale", scenario="scale", source="<benchmark>", env="balancebot", policy=POLICY, point={},
                perturbations=(), episodes=episodes, horizon=2.0, seed=0, alpha=0.05,
                determinism_episodes=0, thresholds={})


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup():
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    from simgate.plugin_manager import Host

    return Host(project_plugins=list(PLUGINS), autoload=False)


# -- the modes, each in a child process ----------------------------------------------------------
def run_batched(episodes: int, threads: int, part: tuple[int, int] = (0, 1)) -> tuple[int, float]:
    """(control steps, seconds) of the batched engine on every ``part[1]``-th lane from ``part[0]``."""
    from simgate import scaleout

    os.environ["SIMGATE_ENGINE_THREADS"] = str(threads)
    host = _setup()
    case = _case(episodes)
    with tempfile.TemporaryDirectory() as cache_dir:
        runner, _ = scaleout.context_of(case, POLICY, host, "auto", cache_dir)
    lanes = scaleout.chunks_for(case, runner)[part[0]::part[1]]
    per_block = max(1, BLOCK // len(lanes[0]))
    steps = 0
    start = time.perf_counter()
    for k in range(0, len(lanes), per_block):
        rollouts = runner.run(case, [i for lane in lanes[k:k + per_block] for i in lane])
        steps += sum(e.length for e in rollouts.episodes)
        del rollouts
    return steps, time.perf_counter() - start


def run_xdist(episodes: int) -> tuple[int, float]:
    n = os.cpu_count() or 1
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--child", f"slice:{k}:{n}", "--episodes", str(episodes)],
                              stdout=subprocess.PIPE, text=True) for k in range(n)]
    outs = [p.communicate(timeout=3600)[0] for p in procs]
    seconds = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise SystemExit("an xdist-like worker failed")
    return sum(json.loads(o.strip().splitlines()[-1])["steps"] for o in outs), seconds


def run_ray(episodes: int, address: str) -> tuple[int, float]:
    """The driver loop of simgate.scaleout.RayScheduler (submit, then wait / get / put)."""
    import ray

    from simgate import scaleout

    host = _setup()
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    os.environ.pop("RAY_ADDRESS", None)
    kwargs = dict(log_to_driver=False, logging_level="ERROR",
                  runtime_env={"working_dir": str(REPO), "excludes": scaleout.EXCLUDES,
                               "env_vars": {"SIMGATE_ENGINE_THREADS": "1"}})
    if address == "local":
        kwargs.update(address="local", include_dashboard=False)
    else:
        kwargs.update(address=address)
    ray.init(**kwargs)
    case = _case(episodes)
    steps = 0
    try:
        with tempfile.TemporaryDirectory() as cache_dir:
            runner, cache = scaleout.context_of(case, POLICY, host, "auto", cache_dir)
            task = ray.remote(num_cpus=1, max_retries=scaleout.MAX_RETRIES)(scaleout.run_chunk)
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            start = time.perf_counter()
            pending = [task.remote(PLUGINS, case, POLICY, "auto", indices, cache.context)
                       for indices in scaleout.tasks_for(scaleout.chunks_for(case, runner), cpus)]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                if pending:
                    more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                    ready += more
                for status, engine, done, _seconds in ray.get(ready):
                    for episode in done:
                        cache.put(episode, engine)
                    steps += sum(e.length for e in done)
                del ready, done
            seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    return steps, seconds


def physics_floor(env_name: str, sim_seconds: float, threads: int, rows: int = 64, host=None) -> float:
    """Wall seconds of raw mujoco.batch stepping for ``sim_seconds`` simulated seconds in total on
    ``env_name``'s nominal model: ``rows`` simulations at once on ``threads`` threads, one
    Batch.step call of frame_skip physics steps per control step (as the engine calls it), zero
    control, from the nominal start."""
    import mujoco
    from mujoco.batch import Batch

    from simgate.engine.reference import ReferenceEngine
    from simgate.runner import build_env

    host = host or _setup()
    env = build_env(host.registries.envs.get(env_name))
    ref = ReferenceEngine(env, None, [], env.action_size)
    model, fs = ref.nominal, ref.frame_skip
    control_steps = max(1, round(sim_seconds / ref.control_dt / rows))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = mujoco.mj_stateSize(model, spec)
    start_state = __import__("numpy").zeros(state)
    mujoco.mj_getState(model, data, start_state, spec)
    batch = Batch(model, nsim=rows, nthread=threads)
    horizon_steps = 1000  # back to the start now and then, so the robots do not lie still forever
    start = time.perf_counter()
    for step in range(control_steps):
        if step % horizon_steps == 0:
            batch.state[:] = start_state
            batch.forward()
        batch.step(nstep=fs)
    return time.perf_counter() - start


def child(mode: str, episodes: int, sim_seconds: float) -> dict:
    cpus = os.cpu_count() or 1
    if mode == "batched":
        steps, seconds = run_batched(episodes, cpus)
    elif mode.startswith("slice:"):
        _, k, n = mode.split(":")
        steps, seconds = run_batched(episodes, 1, (int(k), int(n)))
    elif mode == "xdist":
        steps, seconds = run_xdist(episodes)
    elif mode == "ray":
        steps, seconds = run_ray(episodes, "local")
    elif mode.startswith("ray2:"):
        steps, seconds = run_ray(episodes, mode.split(":", 1)[1])
    elif mode == "floor":
        host = _setup()
        from simgate import scaleout

        with tempfile.TemporaryDirectory() as cache_dir:
            runner, _ = scaleout.context_of(_case(episodes), POLICY, host, "auto", cache_dir)
        steps = round(sim_seconds) or episodes * round(2.0 / runner.control_dt)  # the batched run's, else full length
        seconds = physics_floor("balancebot", steps * runner.control_dt, cpus, host=host)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return {"mode": mode.split(":")[0], "episodes": episodes, "seconds": seconds, "steps": steps,
            "episodes_per_s": episodes / seconds, "steps_per_s": steps / seconds, "driver_peak_mib": _peak_mib()}


def _run_child(mode: str, episodes: int, sim_seconds: float = 0.0, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--episodes", str(episodes),
                          "--sim-seconds", str(sim_seconds)], capture_output=True, text=True, timeout=7200,
                         env=env or {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    if out.returncode:
        raise SystemExit(f"{mode}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale(episodes: int, modes: list[str], repeat: int = 1) -> None:
    """Each mode ``repeat`` times, the modes interleaved (on a shared machine the load changes
    from minute to minute); each mode's fastest run is kept."""
    results: dict = {}
    for _ in range(repeat):
        for mode in modes:
            if mode == "ray2":
                sys.path.insert(0, str(REPO))
                from tests import ray_cluster

                with ray_cluster.two_nodes(cpus=1) as cluster:
                    r = _run_child(f"ray2:{cluster['address']}", episodes, env=cluster["env"])
            elif mode == "floor":
                base = results.get("batched")  # the same control steps as the batched engine's episodes
                r = _run_child("floor", episodes, base["steps"] if base else 0)
            else:
                r = _run_child(mode, episodes)
            print(f"  {mode}: {r['seconds']:.1f} s", file=sys.stderr, flush=True)
            if mode not in results or r["seconds"] < results[mode]["seconds"]:
                r["driver_peak_mib"] = max(r["driver_peak_mib"], results.get(mode, r)["driver_peak_mib"])
                results[mode] = r
    base = results.get("batched")
    print(f"{episodes} balancebot episodes of 2 s, {os.cpu_count()} cores, best of {repeat}")
    for mode, r in results.items():
        ratio = f", {r['episodes_per_s'] / base['episodes_per_s']:.2f}x batched" if base else ""
        print(f"  {mode:8s} {r['seconds']:7.1f} s: {r['episodes_per_s']:6.0f} episodes/s, "
              f"{r['steps_per_s']:7.0f} control steps/s, driver peak RSS {r['driver_peak_mib']:4.0f} MiB{ratio}")
    print(json.dumps(results))


# -- the main gate ------------------------------------------------------------------------------
#: requirements measured on the wall clock: their outcome must agree, their figures cannot
TIMED = ("inference_latency",)


def entries_differ(a: dict, b: dict) -> list[str]:
    """Case ids whose summary.json entries differ, ignoring who computed the episodes
    (episodes_run, episodes_cached), the run's own block and the wall-clock figures of a timed
    requirement (the inference latency: its outcome still counts)."""
    def clean(document: dict) -> dict:
        cases = json.loads(json.dumps(document["cases"]))
        for entry in cases.values():
            entry.pop("episodes_run", None)
            entry.pop("episodes_cached", None)
            for requirement in entry.get("requirements") or []:
                if requirement.get("kind") in TIMED:
                    for field in ("observed", "numbers", "bound"):
                        requirement.pop(field, None)
        return cases

    ca, cb = clean(a), clean(b)
    return sorted(cid for cid in set(ca) | set(cb) if ca.get(cid) != cb.get(cid))


def simulated_per_env(document: dict, ray_stats: dict | None = None) -> tuple[dict[str, float], str]:
    """Simulated seconds per env of a gate run, and where the figure comes from. A Ray run's
    ``ray.json`` counts every episode the cluster computed (candidates, baselines, search rows,
    sequential batches, determinism repeats): exact. Without it, each case's episodes x its mean
    episode length: an undercount (no baselines, search rows or repeats)."""
    if ray_stats and ray_stats.get("simulated_s") and not ray_stats.get("not_on_ray"):
        return dict(ray_stats["simulated_s"]), "every episode computed, from the Ray run's ray.json"
    per_env: dict[str, float] = {}
    for entry in document["cases"].values():
        length = (entry.get("metrics") or {}).get("length_s")
        if length is None or not entry.get("episodes"):
            continue
        per_env[entry["case"]["env"]] = per_env.get(entry["case"]["env"], 0.0) + entry["episodes"] * length
    return per_env, "cases' own episodes only (no baselines, search rows or repeats): an undercount"


def gate_floor(per_env: dict[str, float], threads: int) -> float:
    """Wall seconds of raw stepping of ``per_env`` simulated seconds, each env on its nominal model."""
    host = _setup()
    return sum(physics_floor(env, sim, threads, host=host) for env, sim in per_env.items())


def gate(modes: list[str]) -> None:
    args = {"ray": ["--simgate-ray", "local"], "serial": ["-n", "0"], "auto": ["-n", "auto"]}
    runs: dict = {}
    for mode in modes:
        reports = Path(tempfile.mkdtemp(prefix=f"gate-{mode}."))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RAY_ADDRESS"))}
        env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
        cluster = None
        if mode == "ray2":
            sys.path.insert(0, str(REPO))
            from tests import ray_cluster

            cluster = ray_cluster.two_nodes(cpus=1)
            info = cluster.__enter__()
            env, extra = info["env"], ["--simgate-ray", info["address"]]
        else:
            extra = args[mode]
        start = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider", "-q",
                                  "--simgate-reports", str(reports), *extra], cwd=REPO, env=env,
                                 capture_output=True, text=True, timeout=7200)
        finally:
            if cluster is not None:
                cluster.__exit__(None, None, None)
        seconds = time.perf_counter() - start
        (reports / "pytest.out").write_text(out.stdout + out.stderr)
        tail = [line for line in out.stdout.splitlines() if line.startswith("simgate ray:") or " passed" in line
                or " failed" in line][-4:]
        runs[mode] = {"seconds": seconds, "reports": str(reports), "rc": out.returncode, "tail": tail,
                      "summary": json.loads((reports / "summary.json").read_text())}
        print(f"  {mode}: {seconds:.1f} s, exit {out.returncode}, {reports}", file=sys.stderr, flush=True)
    some = next(iter(runs.values()))["summary"]
    stats = None
    for mode in ("ray", "ray2"):
        path = Path(runs[mode]["reports"]) / "ray.json" if mode in runs else None
        if path is not None and path.exists():
            stats = json.loads(path.read_text())
            break
    per_env, source = simulated_per_env(some, stats)
    floor = gate_floor(per_env, os.cpu_count() or 1)
    print(f"main gate: {len(some['cases'])} cases, {sum(per_env.values()):.0f} simulated seconds ({source}); "
          f"physics floor (raw mujoco.batch, {os.cpu_count()} threads) {floor:.1f} s")
    for mode, r in runs.items():
        print(f"  {mode:7s} {r['seconds']:7.1f} s (exit {r['rc']}): floor / wall = {floor / r['seconds']:.2f}x")
        for line in r["tail"]:
            print(f"           {line}")
    if stats and (stats.get("worker_s") or {}).get("engine"):
        cpus = os.cpu_count() or 1  # a local runtime (ray2: one CPU on each of two nodes, the same count)
        worker = {part: s / cpus for part, s in stats["worker_s"].items()}
        wall = runs.get("ray", runs.get("ray2"))["seconds"]
        print(f"  Ray run, per CPU of {cpus}: the engine {worker['engine']:.1f} s (engine / wall "
              f"{worker['engine'] / wall:.2f}x: the rest is scheduling and the driver's own work), of which "
              f"MuJoCo's stepping {worker.get('physics', 0):.1f} s and the policies' calls {worker.get('policy', 0):.1f} s")
        print(f"  the gate's own physics (its trajectories, its perturbed models, timed inside the engine's "
              f"Batch.rollout in the same run) / wall = {worker.get('physics', 0) / wall:.2f}x; "
              f"raw floor / the engine's stepping = {floor / max(worker.get('physics', 0), 1e-9):.2f}x")
    if "serial" in runs:
        for mode, r in runs.items():
            if mode != "serial":
                diff = entries_differ(r["summary"], runs["serial"]["summary"])
                print(f"  {mode} vs -n 0: {len(r['summary']['cases'])} case entries, "
                      f"{'identical' if not diff else f'{len(diff)} differ: ' + ', '.join(diff[:10])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000, help="10,000 by default; 100000 for the large run")
    parser.add_argument("--modes", default="batched,floor,xdist,ray,ray2")
    parser.add_argument("--repeat", type=int, default=1, help="run the modes this many times, interleaved; "
                        "the fastest of each is kept")
    parser.add_argument("--gate", action="store_true", help="the main gate instead (slow: minutes per mode)")
    parser.add_argument("--gate-modes", default="ray,serial,auto")
    parser.add_argument("--compare", nargs=2, metavar=("REPORTS_A", "REPORTS_B"),
                        help="compare two finished runs' summary.json case entries")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sim-seconds", type=float, default=0.0, help=argparse.SUPPRESS)  # floor: control steps
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.episodes, args.sim_seconds)))
    elif args.compare:
        a, b = (json.loads((Path(d) / "summary.json").read_text()) for d in args.compare)
        diff = entries_differ(a, b)
        print(f"{len(a['cases'])} / {len(b['cases'])} case entries: "
              f"{'identical' if not diff else f'{len(diff)} differ: ' + ', '.join(diff)}")
        raise SystemExit(1 if diff else 0)
    elif args.gate:
        gate(args.gate_modes.split(","))
    else:
        scale(args.episodes, args.modes.split(","), args.repeat)


if __name__ == "__main__":
    main()
