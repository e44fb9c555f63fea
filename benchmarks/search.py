"""The search (simgate.search) against a dense reference grid on the quadruped's 4-D space.

Both run on the same case, engine and policy (scenarios/quadruped_search.yaml: pushes x actuation
latency x floor grip x payload), each through its own Evaluator so their episodes are counted
apart and never shared (the dense rows use their own block of episode indices):

  dense   (i) a full grid over the 4-D box, `--grid` levels per axis, `--grid-episodes` each:
              the held-out set for the search's risk model (AUC of its predicted success
              against these outcomes; the model never saw them)
          (ii) per axis, the others at nominal: `--line-levels` evenly spaced levels with
              `--line-episodes` each, and the crossing of the target with its 95 % interval
              (simgate.search.boundary.estimate on these counts)
  search  simgate.search.run.run_search, exactly as a search case runs it, on `--budget` episodes

Printed: episodes of each; the search's AUC on the dense grid (and on its own held-out sample);
per axis the search's boundary against the dense interval. The last line is

    auc=<x> share=<search episodes / dense episodes> boundary_error=<worst axis>

where boundary_error is, over the axes, the distance of the search's estimate outside the dense
95 % interval as a fraction of the axis' range (0 when inside; 1 when one says the boundary
crosses inside the range and the other does not). Targets: auc >= 0.9, share <= 0.10,
boundary_error = 0.

Levels of the delay axis are whole physics steps (the Space snaps them; the grid is built on
that step), and the horizon is checked to be a whole number of physics steps.

    python benchmarks/search.py [--policy quadruped-robust|quadruped-nominal] [--quick] [--search-only]

``--search-only`` runs the search alone and prints its own figures (episodes by stage, its own
held-out AUC, certificate, per-axis boundaries): the dense reference does not depend on the
search's seed, so a change of the search alone is measured in minutes.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCENARIO = "scenarios/quadruped_search.yaml"
DENSE_INDEX = 900_000_000  # the dense rows' episode indices: apart from every search stage's
CHUNK = 512  # rows per engine call for the dense grid (one batch each)


def build(policy: str):
    """(case, runner, space) of the quadruped search scenario run by ``policy``."""
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    from simgate import scaleout
    from simgate.plugin_manager import Host
    from simgate.runner import perturbations_for
    from simgate.scenarios.expand import expand
    from simgate.scenarios.loader import load_file
    from simgate.search import space as spaces

    host = Host(project_plugins=["envs", "policies"], autoload=False)
    scenario = load_file(REPO / SCENARIO, SCENARIO, host.registries)
    case = expand(scenario, [policy])[0]
    runner, _env, _spec, _policy, _keyed = scaleout.build_for(case, policy, host, "auto")
    ref = getattr(runner, "ref", runner)
    dt = float(ref.nominal.opt.timestep)
    steps = case.horizon / dt
    if abs(steps - round(steps)) > 1e-9:
        raise SystemExit(f"{SCENARIO}: horizon {case.horizon} s is not a whole number of {dt} s physics steps")
    space = spaces.from_case(case, perturbations_for(case, host.registries), dt, runner.control_dt)
    return case, runner, space, dt


def axis_levels(axis, count: int) -> np.ndarray:
    """``count`` evenly spaced levels over the axis; on its clock grid when it has one."""
    levels = np.linspace(axis.low, axis.high, count)
    if axis.step:
        grid = np.arange(np.ceil(axis.low / axis.step - 1e-9), np.floor(axis.high / axis.step + 1e-9) + 1) * axis.step
        levels = grid[np.unique(np.round(np.linspace(0, len(grid) - 1, count)).astype(int))]
    return np.unique(levels)


def run_rows(evaluate, X: np.ndarray, indices: np.ndarray, label: str):
    """Outcomes of many rows, CHUNK at a time, with a progress line."""
    success, start = [], time.perf_counter()
    for first in range(0, len(X), CHUNK):
        out = evaluate(X[first:first + CHUNK], indices[first:first + CHUNK])
        success.append(out.success)
        done = min(first + CHUNK, len(X))
        rate = done / max(time.perf_counter() - start, 1e-9)
        print(f"  {label}: {done}/{len(X)} episodes, {rate:.1f}/s", file=sys.stderr, flush=True)
    return np.concatenate(success) if success else np.zeros(0, bool)


def dense_reference(space, evaluate, grid: int, grid_episodes: int, line_levels: int, line_episodes: int):
    from simgate.search import boundary

    d = space.d
    per_axis = [axis_levels(a, grid) for a in space.axes]
    points = np.array(list(itertools.product(*per_axis)), dtype=float)
    X = np.repeat(points, grid_episodes, axis=0)
    index = DENSE_INDEX + np.arange(len(X))
    y = run_rows(evaluate, X, index, "dense grid")
    lines, next_index = {}, DENSE_INDEX + len(X)
    for j, axis in enumerate(space.axes):
        levels = axis_levels(axis, line_levels)
        L = np.repeat(space.nominal[None], len(levels) * line_episodes, axis=0)
        L[:, j] = np.repeat(levels, line_episodes)
        idx = next_index + np.arange(len(L))  # every row its own seed, as plan_levels does
        next_index += len(L)
        ok = run_rows(evaluate, L, idx, f"dense line {axis.name}")
        k = ok.reshape(len(levels), line_episodes).sum(axis=1)
        n = np.full(len(levels), line_episodes)
        lines[axis.name] = {"boundary": boundary.estimate(levels, k, n, space.target, low=axis.low, high=axis.high,
                                                        step=axis.step),
                            "levels": levels, "successes": k, "trials": n}
    return X, y, lines, len(X) + sum(int(v["trials"].sum()) for v in lines.values())


def boundary_error(search: dict, dense, axis) -> float:
    """Distance of the search's estimate outside the dense interval, as a share of the axis range."""
    span = axis.high - axis.low
    if search["status"] != "crosses" or dense.status != "crosses":
        return 0.0 if search["status"] == dense.status else 1.0
    x = search["estimate"]
    if dense.low <= x <= dense.high:
        return 0.0
    return float(min(abs(x - dense.low), abs(x - dense.high)) / span)


def fmt(value, unit=""):
    return "-" if value is None else f"{value:.3g}{unit}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="quadruped-robust", choices=["quadruped-robust", "quadruped-nominal"])
    parser.add_argument("--budget", type=int, default=1500, help="the search's episodes (default 1500)")
    parser.add_argument("--grid", type=int, default=5, help="dense grid levels per axis")
    parser.add_argument("--grid-episodes", type=int, default=16)
    parser.add_argument("--line-levels", type=int, default=11)
    parser.add_argument("--line-episodes", type=int, default=120)
    parser.add_argument("--no-counterexamples", action="store_true", help="skip the search's shrink stage")
    parser.add_argument("--quick", action="store_true", help="a small run (minutes): budget 300, grid 4^4 x 2, lines 8 x 40")
    parser.add_argument("--search-only", action="store_true",
                        help="the search alone, no dense reference: its own figures (the dense reference's rows have "
                             "their own episode indices, so it does not depend on the search's seed)")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.grid, args.grid_episodes, args.line_levels, args.line_episodes = 300, 4, 2, 8, 40

    case, runner, space, dt = build(args.policy)
    from simgate.search import risk
    from simgate.search.case import search_seed
    from simgate.search.evaluate import Evaluator
    from simgate.search.run import run_search

    space = dataclasses.replace(space, budget=args.budget)
    print(f"{SCENARIO} with {args.policy}: physics step {dt * 1000:g} ms, horizon {case.horizon} s "
          f"({round(case.horizon / dt)} steps), target {space.target}, search budget {space.budget}")
    for a in space.axes:
        print(f"  axis {a.name}: [{a.low:g}, {a.high:g}] nominal {a.nominal:g}"
              + (f", step {a.step:g}" if a.step else ""))

    start = time.perf_counter()
    searcher = Evaluator(case, runner, space, None)
    # the seed a search case's run derives (simgate.search.case.run_search_case)
    found = run_search(space, searcher, search_seed(case), shrink=not args.no_counterexamples)
    search_s = time.perf_counter() - start
    search_episodes = int(found["episodes"]["total"])
    print(f"search: {search_episodes} episodes in {search_s:.0f} s ({len(searcher.memo)} rows run by the Evaluator); "
          f"by stage {json.dumps({k: v for k, v in found['episodes'].items() if k != 'total'})}")
    if args.search_only:
        print(f"the search's own held-out AUC ({found['auc_points']} episodes): {fmt(found['auc'])}; certificate "
              f"{(found['certificate'] or {}).get('status')}; {len(found['counterexamples'])} counterexample(s)")
        for axis in space.axes:
            s = found["boundary"]["per_axis"][axis.name]
            c = s.get("confirmation") or {}
            sides = "; ".join(f"{side} {c[side]['successes']}/{c[side]['trials']} at {fmt(c[side]['x'])}"
                              for side in ("safe", "failing") if side in c)
            print(f"{axis.name:28s} {fmt(s['estimate'])} [{fmt(s['low'])}, {fmt(s['high'])}] {s['status']} "
                  f"({sum(s['trials'])} ep); fresh seeds: {c.get('status', '-')}" + (f" ({sides})" if sides else ""))
        return 0

    start = time.perf_counter()
    reference = Evaluator(case, runner, space, None)
    X, y, lines, dense_episodes = dense_reference(space, reference, args.grid, args.grid_episodes,
                                                  args.line_levels, args.line_episodes)
    dense_s = time.perf_counter() - start
    print(f"dense: {dense_episodes} episodes in {dense_s:.0f} s ({len(X)} on a {args.grid}^{space.d} grid x "
          f"{args.grid_episodes}, {dense_episodes - len(X)} on {space.d} axis lines of {args.line_levels} levels x "
          f"{args.line_episodes}); success on the grid {y.mean():.3f}")

    model_dict = found["boundary"]["joint"]["model"]
    auc = None
    if model_dict is not None:
        model = risk.RiskModel.from_dict(model_dict)
        auc = risk.auc(y, model.predict(space.to_unit(X)))
    print(f"risk model AUC on the dense grid (held out, {len(X)} episodes): {fmt(auc)}; "
          f"on the search's own held-out sample ({found['auc_points']}): {fmt(found['auc'])}")

    worst = 0.0
    print(f"{'axis':28s} {'search: estimate [95 % interval] status':52s} {'dense: estimate [95 % interval] status':52s} error")
    for axis in space.axes:
        s = found["boundary"]["per_axis"][axis.name]
        dense = lines[axis.name]["boundary"]
        err = boundary_error(s, dense, axis)
        worst = max(worst, err)
        left = f"{fmt(s['estimate'])} [{fmt(s['low'])}, {fmt(s['high'])}] {s['status']} ({sum(s['trials'])} ep)"
        right = (f"{fmt(dense.estimate)} [{fmt(dense.low)}, {fmt(dense.high)}] {dense.status} "
                 f"({int(lines[axis.name]['trials'].sum())} ep)")
        print(f"{axis.name:28s} {left:52s} {right:52s} {err:.3f}")
        rates = lines[axis.name]["successes"] / lines[axis.name]["trials"]
        print(f"{'':28s} dense line: " + " ".join(f"{v:g}:{r:.2f}" for v, r in zip(lines[axis.name]["levels"], rates)))
    share = search_episodes / dense_episodes
    print(f"auc={fmt(auc) if auc is None else f'{auc:.3f}'} share={share:.3f} boundary_error={worst:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
