"""The search: block runs inside the gate: per-row params reach the episode on both engines, rows
are cached under keys that cover their params, the budget holds, counterexamples shrink toward
nominal and replay, the envelope requirement reaches the records, and the whole search dict is
the same under -n 0 and -n 2."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simgate.search.evaluate import Evaluator, Outcome
from simgate.search.space import Axis, Space
from tests.test_engine import make_case

REPO = Path(__file__).resolve().parents[1]
PUSH = {"body": "chassis", "force": 5.0, "duration": 0.1, "interval": [0.4, 0.8], "direction": "x"}
PERTURBATIONS = ({"kind": "apply_pushes", "params": PUSH}, {"kind": "delay_actions", "params": {"delay_ms": 0}},
                 {"kind": "scale_friction", "params": {"sliding": 1.0}})
SEARCH = {"space": {"apply_pushes.force": [1, 40], "delay_actions.delay_ms": [0, 60]},
          "envelope": {"apply_pushes.force": [1, 10]}, "budget": 60, "require": "holds_inside_envelope", "levels": 2}


def bot_case(**kw):
    base = dict(perturbations=PERTURBATIONS, horizon=2.0, episodes=8, search=SEARCH,
                thresholds={"min_success_rate": 0.75}, scenario="s", id="s-balancebot-lqr")
    base.update(kw)
    return make_case(**base)


def engine_for(host, case, choice="batched"):
    from simgate.engine import make_engine
    from simgate.runner import build_env, perturbations_for

    env = build_env(host.registries.envs.get(case.env))
    spec = host.registries.policies.get(case.policy)
    perturbations = perturbations_for(case, host.registries)
    return env, spec, make_engine(env, spec.load(), perturbations, spec.action_size, choice), perturbations


def evaluator(host, case, choice="batched", cache=None):
    from simgate.search import space as spaces

    env, spec, runner, perturbations = engine_for(host, case, choice)
    ref = getattr(runner, "ref", runner)
    space = spaces.from_case(case, perturbations, ref.nominal.opt.timestep, runner.control_dt)
    return Evaluator(case, runner, space, cache, classify=host.classify), runner


def hashes(runner, case, rows):
    """The episodes of (params, index) rows through the evaluator's own path, by state hash."""
    from simgate.engine.reference import row_perturbations
    from simgate.search import space as spaces

    starts = getattr(runner, "ref", runner).perturbations
    space = spaces.from_case(case, starts)
    overrides = [row_perturbations(starts, space.row_params(case, x)) for x, _ in rows]
    return [e.state_hash for e in runner.run(case, [i for _, i in rows], overrides).episodes]


# -- per-row parameters in the engines --------------------------------------------------------


def test_a_rows_params_reach_its_episode_and_batched_equals_reference(host):
    case = bot_case()
    rows = [((5.0, 0.0), 2), ((30.0, 0.0), 2), ((5.0, 40.0), 2), ((30.0, 0.0), 2), ((5.0, 0.0), 3)]
    _, _, batched, _ = engine_for(host, case, "batched")
    _, _, reference, _ = engine_for(host, case, "reference")
    b = hashes(batched, case, rows)
    assert b == hashes(reference, case, rows)  # bit for bit, row by row
    assert b[1] == b[3]  # the same row twice in one batch
    assert len({b[0], b[1], b[2], b[4]}) == 4  # a push force, a latency, a seed: each changes the episode
    # the nominal row is the case's own episode: nothing about a row's machinery changes it
    assert b[0] == batched.run(case, [2]).episodes[0].state_hash
    # a row's result does not depend on its batch-mates or its place in the batch
    assert hashes(batched, case, [rows[1]]) == [b[1]]


def test_a_row_is_validated_by_its_kinds_schema(host):
    from pydantic import ValidationError

    ev, _ = evaluator(host, bot_case())
    with pytest.raises(ValidationError):
        ev(np.array([[-3.0, 0.0]]), np.array([0]))  # a negative push force


def test_delays_snap_to_whole_physics_steps(host):
    ev, _ = evaluator(host, bot_case())
    step = ev.space.axes[1].step
    assert step == pytest.approx(2.0)  # the balancebot's 2 ms physics step
    snapped = ev.space.to_units(np.array([[0.0, 0.0173]]))[0]  # 1.038 ms -> 2 ms... on the grid
    assert snapped[1] % step == pytest.approx(0.0) and snapped[1] in (0.0, 2.0)


@pytest.mark.parametrize("kind,params,axis,why", [
    ("mask_observations", {"groups": ["imu"], "probability": 0.5}, "mask_observations.probability", "every control step"),
    ("add_terrain", {"amplitude": 0.01, "size": [3, 0.5]}, "add_terrain.amplitude", "structure or the control rate"),
    ("change_control_rate", {"hz": 50}, "change_control_rate.hz", "structure or the control rate"),
    ("apply_pushes", {**PUSH, "force": [1, 5]}, "apply_pushes.force", "a single number there"),
    ("apply_pushes", PUSH, "apply_pushes.direction", "a single number there"),
])
def test_axes_a_search_cannot_vary_per_episode_are_refused(host, tmp_path, kind, params, axis, why):
    from simgate.errors import SimgateError
    from simgate.scenarios.loader import load_file

    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "env": "balancebot", "episodes": 4, "horizon": 1.0,
                                "perturbations": [{"kind": kind, "params": params}],
                                "thresholds": {"min_success_rate": 0.5},
                                "search": {"space": {axis: [0.1, 0.9]}, "budget": 10}}))
    with pytest.raises(SimgateError, match=why) as info:
        load_file(path, "s.yaml", host.registries)
    assert f"search.space.{axis}" in str(info.value)


def test_a_search_needs_a_success_target(host, tmp_path):
    from simgate.errors import SimgateError
    from simgate.scenarios.loader import load_file

    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "env": "balancebot", "episodes": 4, "horizon": 1.0, "gate": False,
                                "perturbations": [{"kind": "scale_friction", "params": {"sliding": 1.0}}],
                                "search": {"space": {"scale_friction.sliding": [0.2, 1.0]}, "budget": 10}}))
    with pytest.raises(SimgateError, match="min_success_rate"):
        load_file(path, "s.yaml", host.registries)


# -- cache ------------------------------------------------------------------------------------


def test_the_cache_key_covers_a_rows_params(host, tmp_path):
    from simgate.cache import EpisodeCache

    cache = EpisodeCache(tmp_path, {"x": 1})
    keys = {cache.key(3), cache.key(3, {"a.b": 1.0}), cache.key(3, {"a.b": 1.0000000001}), cache.key(4, {"a.b": 1.0})}
    assert len(keys) == 4
    assert cache.key(3, {"a.b": 1}) == cache.key(3, {"a.b": 1.0})

    from simgate.runner import episode_cache

    case = bot_case()
    env, spec, runner, _ = engine_for(host, case)
    stored = episode_cache(tmp_path / "c", case, env, runner, spec, spec.load())
    first, _ = evaluator(host, case, cache=stored)
    a = first(np.array([[30.0, 0.0]]), np.array([1]))
    assert first.computed == 1 and first.cached == 0
    again, _ = evaluator(host, case, cache=episode_cache(tmp_path / "c", case, env, runner, spec, spec.load()))
    b = again(np.array([[30.0, 0.0], [5.0, 0.0]]), np.array([1, 1]))
    assert again.cached == 1 and again.computed == 1  # the other row's params are never served from it
    # each row answered once, from the cache or not; what the search spends is its log's count
    # (simgate.search.run._Log), which never sees the cache
    assert again.cached + again.computed == len(again.memo) == 2
    assert b.success[0] == a.success[0] and b.torque[0] == a.torque[0]


# -- the orchestration, on a synthetic policy -------------------------------------------------


def synthetic_space(budget: int, require: bool = True) -> Space:
    axes = (Axis("apply_pushes.force", "apply_pushes", "force", 0, 1.0, 30.0, 1.0, (1.0, 10.0), "N"),
            Axis("delay_actions.delay_ms", "delay_actions", "delay_ms", 1, 0.0, 60.0, 0.0, (0.0, 20.0), "ms", 2.0),
            Axis("scale_friction.sliding", "scale_friction", "sliding", 2, 0.2, 1.0, 1.0, None, "×"))
    return Space(axes, budget, 0.75, require, 0.05, 2)


def synthetic(threshold: float, calls: list | None = None):
    """Success falls with force and latency; a row's noise is a hash of the row (deterministic)."""

    def evaluate(X, indices):
        X = np.asarray(X)
        if calls is not None:
            calls.append(len(X))
        u = np.array([int.from_bytes(hashlib.sha256(repr((int(i), tuple(map(float, x)))).encode()).digest()[:8],
                                     "little") / 2 ** 64 for x, i in zip(X, indices)])
        risk = X[:, 0] / threshold + X[:, 1] / 50 + (1 - X[:, 2]) * 0.5
        ok = u < 1 / (1 + np.exp(10 * (risk - 1.0)))
        return Outcome(ok, X[:, 0] * 0.1 + u, ["success" if s else "fell" for s in ok])

    return evaluate


@pytest.mark.parametrize("budget", [7, 40, 333, 1500])
def test_the_budget_is_never_exceeded(budget):
    from simgate.search.run import run_search

    calls: list = []
    found = run_search(synthetic_space(budget), synthetic(12.0, calls), seed=3)
    assert found["episodes"]["total"] <= budget and sum(calls) >= found["episodes"]["total"]
    assert found["episodes"]["total"] == sum(v for k, v in found["episodes"].items() if k != "total")
    json.dumps(found, allow_nan=False)  # plain JSON, no NaN


def test_the_search_finds_the_boundary_certifies_and_is_deterministic():
    from simgate.search.run import run_search

    robust = run_search(synthetic_space(2500), synthetic(40.0), seed=1)
    fragile = run_search(synthetic_space(2500), synthetic(8.0), seed=1)
    assert robust == run_search(synthetic_space(2500), synthetic(40.0), seed=1)
    assert robust["certificate"]["status"] == "PASS" and fragile["certificate"]["status"] == "FAIL"
    assert fragile["boundary"]["per_axis"]["apply_pushes.force"]["status"] == "crosses"
    assert 4.0 < fragile["boundary"]["per_axis"]["apply_pushes.force"]["estimate"] < 10.0
    assert fragile["auc"] > 0.8
    assert fragile["counterexamples"] and all(c["mode"] == "fell" for c in fragile["counterexamples"])
    total = fragile["sensitivity"]["success"]["total"]
    assert total["apply_pushes.force"][0] > total["scale_friction.sliding"][0]


def test_a_small_budget_still_finds_each_axis_boundary():
    """A budget of 300 over 3 axes (the balancebot's scale): every axis gets its coarse pass and
    the crossing axes their refinement, rather than an axis left unexplored."""
    from simgate.search.run import run_search

    found = run_search(synthetic_space(300), synthetic(8.0), seed=2)
    per_axis = found["boundary"]["per_axis"]
    assert all(b["status"] != "not_run" and sum(b["trials"]) >= 16 for b in per_axis.values()), per_axis
    assert per_axis["apply_pushes.force"]["status"] == "crosses"
    assert sum(per_axis["apply_pushes.force"]["trials"]) > sum(per_axis["scale_friction.sliding"]["trials"])


def test_a_counterexample_shrinks_toward_nominal():
    """A failure that needs force > 6 N with latency irrelevant: found at the envelope's edge,
    shrunk to just above 6 N and to no latency."""
    from simgate.search.counterexamples import shrink
    from simgate.search.run import _Log

    space = synthetic_space(400)

    def evaluate(X, indices):
        X = np.asarray(X)
        ok = X[:, 0] <= 6.0
        return Outcome(ok, X[:, 0], ["success" if s else "fell" for s in ok])

    log = _Log(space, evaluate, space.budget)
    x0 = np.array([10.0, 20.0, 1.0])
    x, index, mode = shrink(space, log, x0, 40, 200, seed=5)
    assert mode == "fell" and 6.0 < x[0] < 6.5 and x[1] == 0.0 and x[2] == 1.0 and index == 0
    assert log.total <= 200
    again = shrink(space, _Log(space, evaluate, space.budget), x0, 40, 200, seed=5)
    assert np.array_equal(again[0], x) and again[1] == index


# -- the requirement -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["PASS", "FAIL", "INCONCLUSIVE"])
def test_the_envelope_requirement_carries_the_certificate(status):
    from simgate import contract, verdict

    point = {"params": {"apply_pushes.force": 10.0}, "successes": 20, "trials": 30, "lower": 0.5, "upper": 0.7}
    search = {"target": 0.75, "budget": 100, "episodes": {"total": 90},
              "certificate": {"status": status, "alpha": 0.05, "level": 0.01, "points": [point]},
              "counterexamples": [{"params": {"apply_pushes.force": 7.5}, "index": 3, "mode": "fell"}]}
    req = verdict.envelope_requirement(search)
    assert req.kind == verdict.HOLDS_INSIDE_ENVELOPE and req.outcome == status
    contract.RequirementRecord.model_validate(req.to_dict())
    assert verdict.overall([req]) == status
    if status == "FAIL":
        assert "apply_pushes.force=7.5 episode 3 (fell)" in req.bound


# -- through the gate: records, replay, -n 0 == -n 2 ------------------------------------------

SCENARIO = """\
name: tiny_search
env: balancebot
episodes: 4
horizon: 1.5
seed: 7
perturbations:
  - kind: apply_pushes
    params: {body: chassis, force: 1, duration: 0.1, interval: [0.3, 0.6], direction: x}
  - kind: delay_actions
    params: {delay_ms: 0}
thresholds:
  min_success_rate: 0.5
search:
  space:
    apply_pushes.force: [1, 80]
    delay_actions.delay_ms: [0, 80]
  envelope:
    apply_pushes.force: [1, 60]
  budget: 90
  require: holds_inside_envelope
  levels: 2
"""


def gate(tmp_path: Path, workers: str) -> dict:
    (tmp_path / "scenarios").mkdir(parents=True, exist_ok=True)
    (tmp_path / "scenarios" / "tiny_search.yaml").write_text(SCENARIO)
    env = {**os.environ, "SIMGATE_ENGINE_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider", "-n", workers,
                    "--scenarios", str(tmp_path / "scenarios"), "--simgate-reports", str(tmp_path / "reports"),
                    "--simgate-cache", str(tmp_path / "cache"), "--policy", "balancebot-lqr",
                    "--policy", "balancebot-lqr-onnx", "--baseline", "balancebot-lqr"],
                   cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return json.loads((tmp_path / "reports" / "summary.json").read_text())


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    return root, gate(root / "n0", "0"), gate(root / "n2", "2")


def test_the_search_dict_is_the_same_under_n0_and_n2(gated):
    _, serial, parallel = gated
    assert set(serial["cases"]) == set(parallel["cases"]) == {"tiny_search-balancebot-lqr", "tiny_search-balancebot-lqr-onnx"}
    for cid in serial["cases"]:
        a, b = serial["cases"][cid]["search"], parallel["cases"][cid]["search"]
        assert a is not None and a == b
        assert a["episodes"]["total"] <= 90
        assert set(a) >= {"boundary", "counterexamples", "sensitivity", "auc", "episodes", "certificate"}
        kinds = {r["kind"]: r for r in serial["cases"][cid]["requirements"]}
        assert {"success_rate", "holds_inside_envelope"} <= set(kinds)  # the fixed point is judged too
        assert kinds["holds_inside_envelope"]["outcome"] == a["certificate"]["status"]


def test_a_counterexample_replays_to_the_same_failure(gated, host):
    from simgate.replay import replay
    from simgate.scenarios.expand import load_cases

    root, serial, _ = gated
    record = serial["cases"]["tiny_search-balancebot-lqr"]
    shown = record["search"]["counterexamples"]
    assert shown, record["search"]["certificate"]
    c = shown[0]
    assert "--params" in c["replay"] and str(c["index"]) in c["replay"]
    # shrunk toward nominal: never farther from it than where it was found, on every axis
    nominal = {a["name"]: a["nominal"] for a in record["search"]["axes"]}
    for axis, value in c["params"].items():
        assert abs(value - nominal[axis]) <= abs(c["shrunk_from"]["params"][axis] - nominal[axis]) + 1e-9
    cases = load_cases(root / "n0" / "scenarios", root / "n0", host.registries, ["balancebot-lqr"], [], None)
    written = replay(cases[0], c["index"], host, root / "replays", params=c["params"], cache_dir=root / "n0" / "cache")
    assert written["success"] is False and written["matches_suite_run"] is True


# -- the confirmation on fresh seeds ---------------------------------------------------------


def logged_search(monkeypatch, space, evaluate, seed, **kw):
    """run_search's dict and its _Log (every row it ran, by stage)."""
    from simgate.search import run

    logs = []

    class Kept(run._Log):
        def __init__(self, *args):
            super().__init__(*args)
            logs.append(self)

    monkeypatch.setattr(run, "_Log", Kept)
    return run.run_search(space, evaluate, seed=seed, **kw), logs[0]


@pytest.mark.parametrize("threshold", [8.0, 40.0])
def test_the_confirmation_runs_on_seeds_no_other_stage_used(monkeypatch, threshold):
    from simgate.search.run import STAGE_INDEX

    found, log = logged_search(monkeypatch, synthetic_space(1500), synthetic(threshold), seed=4)
    stage, index = np.array(log.stage), np.array(log.index)
    mine = index[stage == "confirm"]
    assert mine.size == found["episodes"]["confirm"] > 0
    assert len(np.unique(mine)) == mine.size  # every confirmation episode its own seed
    assert not set(mine.tolist()) & set(index[stage != "confirm"].tolist())
    assert mine.min() >= STAGE_INDEX["confirm"] and index[stage != "confirm"].max() < STAGE_INDEX["confirm"]
    # each row: the other axes at nominal, the tested axis at a level its record names
    space = synthetic_space(1500)
    X = np.array(log.X)[stage == "confirm"]
    records = {a.name: found["boundary"]["per_axis"][a.name]["confirmation"] for a in space.axes}
    tested = [(j, records[a.name][side]["x"]) for j, a in enumerate(space.axes)
              if records[a.name]["status"] != "not applicable" for side in ("safe", "failing")]
    for x in X:
        assert any(x[j] == level and np.array_equal(np.delete(x, j), np.delete(space.nominal, j)) for j, level in tested)
    for axis in space.axes:
        entry, record = found["boundary"]["per_axis"][axis.name], records[axis.name]
        if entry["status"] != "crosses":
            assert record == {"status": "not applicable"}
            continue
        assert record["episodes"] == record["safe"]["trials"] + record["failing"]["trials"]
        assert record["status"] in ("confirmed", "contradicted", "unconfirmed")
        assert "disjoint" in record["seeds"] and record["level"] == pytest.approx(0.05 / (3 * record["family"]))


def test_the_fragile_policys_force_boundary_is_confirmed_on_fresh_seeds():
    from simgate.search.run import run_search

    fragile = run_search(synthetic_space(1500), synthetic(8.0), seed=1)
    force = fragile["boundary"]["per_axis"]["apply_pushes.force"]
    record = force["confirmation"]
    assert record["status"] == "confirmed", record
    # below the interval it holds, above it it fails, each on fresh episodes and shown by an exact bound
    assert record["safe"]["x"] < force["low"] < force["high"] < record["failing"]["x"]
    assert record["safe"]["lower"] >= 0.75 > record["failing"]["upper"]
    assert fragile == run_search(synthetic_space(1500), synthetic(8.0), seed=1)


@pytest.mark.parametrize("budget", [40, 333, 1500])
def test_the_budget_holds_with_the_confirmation_and_without_counterexamples(budget):
    import math

    from simgate.search.run import SHARES, run_search

    assert math.fsum(SHARES.values()) <= 1 and list(SHARES)[-1] == "confirm"
    found = run_search(synthetic_space(budget), synthetic(8.0), seed=5, shrink=False)
    assert found["episodes"]["total"] <= budget and found["episodes"]["counterexamples"] == 0
    assert found["episodes"]["total"] == sum(v for k, v in found["episodes"].items() if k != "total")
