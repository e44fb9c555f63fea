"""``python -m simgate pin``: a failure becomes a regression case every later candidate must pass.

    python -m simgate pin <case id> <episode> [<episode> ...] [--params kind.param=value,...]
                          [--fixed-by POLICY] [--name NAME]

Writes ``scenarios/regressions/<name>.yaml``: exactly those episodes of the case's seeds (and, with
``--params``, a search counterexample's perturbation values, as its replay command prints them),
for every later candidate of the robot, with the requirement that at least as many of them
succeed as with the policy that fixed them (``--fixed-by``; default: the case's baseline in the
last run's summary.json). Refused when the case's own policy does not fail one of them (nothing
to pin) or the fixing policy succeeds on none (nothing to require).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import yaml

from simgate.errors import SimgateError
from simgate.plugin_manager import Host, project_plugins
from simgate.replay import find_case, parse_params
from simgate.rig import build_rig
from simgate.scenarios.loader import REGRESSIONS
from simgate.search.space import written_row
from simgate.seeds import episode_indices
from simgate.study import policy_digest


def add_arguments(parser) -> None:
    parser.add_argument("case_id", help="the case the episodes failed in, e.g. 'pushes-push_n=10-quadruped-nominal'")
    parser.add_argument("episodes", type=int, nargs="+", help="the episode indices to pin")
    parser.add_argument("--params", default=None,
                        help="a search row's values, 'kind.param=value,...' (a counterexample's replay command)")
    parser.add_argument("--fixed-by", default=None, help="the policy that succeeds on them (default: the case's baseline)")
    parser.add_argument("--name", default=None, help="the regression scenario's name (default: from the case and episodes)")
    parser.add_argument("--scenarios", default="scenarios")
    parser.add_argument("--reports", default="reports", help="where the last run's summary.json is (the case's baseline)")


def main(args) -> int:
    rootdir = Path(args.rootdir).resolve()
    sys.path.insert(0, str(rootdir))  # the project's envs/ and policies/ packages
    host = Host(project_plugins=project_plugins(rootdir))
    source = find_case(args.case_id, rootdir / args.scenarios, rootdir, host)
    episodes = sorted(set(args.episodes))
    if any(i < 0 for i in episodes) or (not args.params and any(i >= source.episodes for i in episodes)):
        raise SimgateError(f"episodes should be between 0 and {source.episodes - 1} for {source.id}, received {episodes}")
    params = parse_params(args.params)
    fixed_by = args.fixed_by or _baseline_of(rootdir / args.reports, source.id)
    if fixed_by is None:
        raise SimgateError(f"which policy fixed these episodes? pass --fixed-by POLICY (the last run's summary.json in "
                           f"{rootdir / args.reports} names no baseline for {source.id})")
    host.registries.policies.get(fixed_by)  # a clear error for an unknown name
    name = args.name or _name(source.scenario, source.point, source.policy, episodes)
    pinned = _pinned_case(source, name, episodes, params, fixed_by, policy_digest(host.registries.policies.get(source.policy)))
    failing = _successes(pinned, source.policy, host)
    if all(failing):
        raise SimgateError(f"{source.policy} succeeds on episode(s) {episodes} of {source.id}"
                           f"{' with ' + args.params if args.params else ''}: nothing to pin")
    fixed = _successes(pinned, fixed_by, host)
    k = sum(fixed)
    if k == 0:
        raise SimgateError(f"{fixed_by} fails episode(s) {episodes} of {source.id} too: a regression case would "
                           "require nothing; pass --fixed-by the policy that succeeds on them")
    out = rootdir / args.scenarios / REGRESSIONS / f"{name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_yaml(pinned, k, source), encoding="utf-8")
    print(f"wrote {out}: {len(episodes)} episode(s) of {source.id}; {source.policy} succeeds on {sum(failing)}, "
          f"{fixed_by} on {k}: every later candidate of env {source.env!r} must succeed on at least {k}")
    return 0


def _baseline_of(reports: Path, case_id: str) -> str | None:
    try:
        summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ((summary.get("cases") or {}).get(case_id) or {}).get("case", {}).get("baseline")


def _name(scenario: str, point: dict, policy: str, episodes: list[int]) -> str:
    point_part = "_".join(f"{k}_{v}" for k, v in point.items())
    raw = "_".join(p for p in ("regress", scenario, point_part, f"e{'_'.join(map(str, episodes[:4]))}") if p)
    return re.sub(r"[^a-z0-9_.]", "_", raw.lower()).strip("_")[:80]


def _pinned_case(source, name: str, episodes: list[int], params: dict | None, fixed_by: str, digest: str | None):
    perturbations = [dict(p) for p in source.perturbations]
    if params:
        for index, written in written_row(source, params).items():
            perturbations[index] = {**perturbations[index], "params": written}
    replay = {"scenario": source.scenario, "point": dict(source.point), "episodes": episodes, "pinned_from": source.id,
              "failing_policy": source.policy, "failing_digest": digest, "fixed_by": fixed_by,
              "params": dict(params) if params else None}
    return dataclasses.replace(source, id=f"{name}-{source.policy}", scenario=name, point={},
                               perturbations=tuple(perturbations), episodes=len(episodes), replay=replay, search=None,
                               sequential=None, baseline=None, benign=False, detect=None, earlier_looks=(),
                               frequency_response=None, thresholds={"min_successes": 1})


def _successes(case, policy: str, host) -> list[bool]:
    rig = build_rig(dataclasses.replace(case, policy=policy), policy, host.registries, engine="reference")
    return [bool(e.success) for e in rig.episodes(episode_indices(case))]


def _yaml(case, k: int, source) -> str:
    replay = {key: value for key, value in case.replay.items() if value is not None}
    document = {
        "name": case.scenario,
        "description": (f"pinned from {source.id}: episode(s) {replay['episodes']} that {replay['failing_policy']} "
                        f"failed and {replay['fixed_by']} succeeded on {k} of (python -m simgate pin)"),
        "env": case.env, "episodes": case.episodes, "horizon": case.horizon, "seed": case.seed,
        "case_timeout": case.case_timeout, "policy_timeout": case.policy_timeout,
        "perturbations": [{"kind": p["kind"], "params": p.get("params", {})} for p in case.perturbations],
        "thresholds": {"min_successes": k},
        "replay": replay,
    }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None)
