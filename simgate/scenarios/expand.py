"""Matrix sweeps × policies → cases, in a fixed order with stable ids."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from pathlib import Path
from typing import Any

from simgate.errors import SimgateError, located
from simgate.registry import did_you_mean
from simgate.scenarios.case import Case, case_id
from simgate.scenarios.loader import LoadedScenario, load_file, scenario_files


def points(spec) -> list[dict[str, Any]]:
    """The cross product of the matrix axes, in the order the file declares them."""
    names = list(spec.matrix)
    values = [spec.matrix[n].values for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def matrix_targets(sc: LoadedScenario) -> dict[str, tuple[int, str]]:
    """``axis → (perturbation index, param name)``; each axis must name exactly one perturbation."""
    out = {}
    for name, axis in sc.spec.matrix.items():
        kind, param = axis.param.split(".")
        found = [i for i, e in enumerate(sc.spec.perturbations) if e.kind == kind]
        if len(found) != 1:
            why = (f"no perturbation of kind {kind!r} is listed under perturbations; add one"
                   if not found else f"{len(found)} perturbations have kind {kind!r}; a sweep must target one")
            raise SimgateError(located(sc.source, sc.line("matrix", name, "param"), f"matrix.{name}.param: {why}"))
        out[name] = (found[0], param)
    return out


def resolve_perturbations(sc: LoadedScenario, point: dict[str, Any]) -> list[dict[str, Any]]:
    """The perturbation list with the matrix point's values written into their params."""
    entries = [{"kind": e.kind, "params": copy.deepcopy(e.params)} for e in sc.spec.perturbations]
    for name, (index, param) in matrix_targets(sc).items():
        entries[index]["params"][param] = point[name]
    return entries


def policies_for(sc: LoadedScenario, registries, selected: list[str], candidates: list[str]) -> list[str]:
    """``--policy`` wins; else the scenario's own list; else the configured candidates (same env)."""
    if selected:
        chosen = selected
    elif sc.spec.policies is not None:
        return list(sc.spec.policies)
    else:
        chosen = candidates
    return [p for p in chosen if registries.policies.get(p).env == sc.spec.env]


def check_policy_names(names: list[str], registries, origin: str) -> None:
    for name in names:
        if name not in registries.policies:
            raise SimgateError(f"{origin}: unknown policy {name!r}{did_you_mean(name, registries.policies.names())}")


def expand(sc: LoadedScenario, policies: list[str]) -> list[Case]:
    spec = sc.spec
    cases = []
    for point in points(spec):
        perturbations = tuple(resolve_perturbations(sc, point))
        for policy in policies:
            cases.append(Case(
                id=case_id(spec.name, point, policy), scenario=spec.name, source=sc.source, env=spec.env,
                policy=policy, point=point, perturbations=perturbations, episodes=spec.episodes,
                horizon=spec.horizon, seed=spec.seed, alpha=spec.alpha,
                determinism_episodes=spec.determinism_episodes,
                thresholds=spec.thresholds.model_dump(exclude_none=True), gate=spec.gate,
                sequential=spec.sequential.model_dump() if spec.sequential else None,
                classify=spec.classify.model_dump(), severity=spec.severity,
            ))
    return cases


def load_cases(directory: Path, rootdir: Path, registries, selected: list[str], candidates: list[str],
               env_info=None, baselines: list[str] = ()) -> list[Case]:
    """Every case of every scenario file; one SimgateError naming every broken file.

    ``env_info(name) -> EnvInfo`` enables model-aware parameter checks (see loader.load_file).
    ``baselines``: the promoted policies; a case is compared with the one for its env.
    """
    check_policy_names(selected, registries, "--policy")
    check_policy_names(candidates, registries, "simgate_candidates (pytest configuration)")
    check_policy_names(list(baselines), registries, "--baseline / simgate_baselines")
    baseline_for: dict[str, str] = {}
    for name in baselines:
        baseline_for.setdefault(registries.policies.get(name).env, name)
    problems, cases, names = [], [], {}
    for path in scenario_files(directory):
        display = _display(path, rootdir)
        try:
            sc = load_file(path, display, registries, env_info)
        except SimgateError as exc:
            problems.append(str(exc))
            continue
        if sc.spec.name in names:
            problems.append(located(display, sc.line("name"), f"name: scenario {sc.spec.name!r} is already defined in {names[sc.spec.name]}; names must be unique"))
            continue
        names[sc.spec.name] = display
        chosen = policies_for(sc, registries, selected, candidates)
        for name in chosen:
            problem = registries.policies.get(name).problem()
            if problem:
                problems.append(problem)
        cases.extend(dataclasses.replace(c, baseline=baseline_for.get(c.env)) for c in expand(sc, chosen))
    if problems:
        raise SimgateError("\n".join(dict.fromkeys(problems)))
    return cases


def _display(path: Path, rootdir: Path) -> str:
    try:
        return str(path.resolve().relative_to(rootdir.resolve()))
    except ValueError:
        return str(path)
