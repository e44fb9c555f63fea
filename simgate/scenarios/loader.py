"""Read scenario files and check them against the schema and against what is registered."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

from pydantic import ValidationError

from simgate.errors import SimgateError, located
from simgate.names import did_you_mean
from simgate.scenarios.case import format_value
from simgate.scenarios.schema import PER_JOINT, REQUIREMENTS, ScenarioSpec
from simgate.search.certify import MAX_DESIGN_POINTS, design_points, episodes_to_pass
from simgate.search.run import MIN_COARSE, least_budget, quota
from simgate.search.space import SNAPPED, axis_problem, nominal_of
from simgate.yamlfile import errors
from simgate.yamlfile import lines as yaml_lines

SUFFIXES = (".yaml", ".yml")  # in any letter case: a .YAML file is a scenario too
#: cases a run may expand to (matrix points x policies, all scenarios) unless the user raises it
MAX_CASES = 10_000
MAX_CASES_OPTION = "--simgate-max-cases"


@dataclasses.dataclass(frozen=True)
class LoadedScenario:
    spec: ScenarioSpec
    source: str
    lines: dict

    def line(self, *path) -> int | None:
        return yaml_lines.line_of(self.lines, path)


def scenario_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise SimgateError(f"scenario directory {directory} does not exist; pass --scenarios DIR")
    # directories and unreadable files named *.yaml are kept: load_file says what is wrong with them;
    # pinned regression scenarios (python -m simgate pin) live in its regressions/ folder
    found = sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES)
    pinned = directory / REGRESSIONS
    if pinned.is_dir():
        found += sorted(p for p in pinned.iterdir() if p.suffix.lower() in SUFFIXES)
    return found


#: the scenarios folder's subfolder of pinned regression scenarios
REGRESSIONS = "regressions"


def load_file(path: Path, display: str, registries, env_info=None, max_cases: int = MAX_CASES) -> LoadedScenario:
    """Parse and fully validate one file; raise one SimgateError listing every problem.

    ``env_info(name) -> EnvInfo``, when given, lets perturbations check their params against the
    env's model (names, timestep, actuators); simgate passes it on the controller only.
    """
    data, lines = yaml_lines.read(path, display)
    spec = errors.validated(ScenarioSpec, data, display, lines,
                            "a scenario file must be a mapping with name, env, episodes, horizon, ...")
    loaded = LoadedScenario(spec, display, lines)
    problems = _check_requirements(loaded) + _check_names(loaded, registries)
    size = _check_matrix(loaded, max_cases)
    problems += size
    if not size:  # params are checked at every point: only for a matrix of a sane size
        problems += _check_params(loaded, registries, env_info)
    problems += _check_model_names(loaded, registries, env_info)
    if not problems:  # the search block names perturbations: checked once the list itself is sound
        problems += _check_search(loaded, registries, env_info)
    if problems:
        raise SimgateError("\n".join(problems))
    return loaded


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


def n_points(spec: ScenarioSpec) -> int:
    return math.prod(len(axis.values) for axis in spec.matrix.values())


def _check_requirements(sc: LoadedScenario) -> list[str]:
    if not sc.spec.gate or sc.spec.thresholds.requires_something():
        return []
    return [located(sc.source, sc.line("thresholds"),
                    "thresholds: a gating scenario must require something: add thresholds.min_success_rate "
                    f"(or {', '.join(k for k in REQUIREMENTS[1:] if k != 'deterministic')}, deterministic: true), "
                    "or set gate: false")]


def _check_matrix(sc: LoadedScenario, max_cases: int) -> list[str]:
    """A matrix too large to expand, and two values of an axis that would share a case id."""
    count = n_points(sc.spec)
    if count > max_cases:
        sizes = " x ".join(f"{name} {len(axis.values)}" for name, axis in sc.spec.matrix.items())
        return [located(sc.source, sc.line("matrix"),
                        f"matrix: {count:,} points ({sizes}) is more than the {max_cases:,} cases a run may have; "
                        f"sweep fewer values, or raise the cap with {MAX_CASES_OPTION}")]
    out = []
    for name, axis in sc.spec.matrix.items():
        seen: dict[str, object] = {}
        for index, value in enumerate(axis.values):
            shown = format_value(value)
            if shown in seen:
                out.append(located(sc.source, sc.line("matrix", name, "values", index),
                                   f"matrix.{name}.values: {seen[shown]!r} and {value!r} give the same case id "
                                   f"'{name}={shown}'; remove one of them"))
            else:
                seen[shown] = value
    return out


def _check_model_names(sc: LoadedScenario, registries, env_info) -> list[str]:
    """Names a scenario gives for parts of the env's model, against it: per-joint thresholds and
    per-joint hard limits name actuators (as the verdict and the engines match them), contact-force
    limits name bodies. A misspelt one stops the run here, located, rather than leaving every case
    of the scenario unjudged."""
    spec = sc.spec
    if env_info is None or spec.env not in registries.envs:
        return []
    limits = spec.hard_limits
    wanted = [("thresholds", key, name, "actuator") for key in PER_JOINT
              if isinstance(getattr(spec.thresholds, key), dict) for name in getattr(spec.thresholds, key)]
    if limits is not None:
        wanted += [("hard_limits", key, name, "actuator") for key in ("joint_torque", "joint_speed")
                   if isinstance(getattr(limits, key), dict) for name in getattr(limits, key)]
        wanted += [("hard_limits", "contact_force", body, "body") for body in limits.contact_force or {}]
    if not wanted:
        return []
    info = env_info(spec.env)
    known = {"actuator": list(info.actuator_labels), "body": [b for b in info.bodies if b]}
    return [located(sc.source, sc.line(section, key, name),
                    f"{section}.{key}.{name}: env {spec.env!r} has no {what} named {name!r}"
                    f"{did_you_mean(name, known[what])}")
            for section, key, name, what in wanted if name not in known[what]]


def _check_names(sc: LoadedScenario, registries) -> list[str]:
    spec, out = sc.spec, []
    if spec.env not in registries.envs:
        out.append(located(sc.source, sc.line("env"), f"env: unknown env {spec.env!r}{did_you_mean(spec.env, registries.envs.names())}"))
    for i, name in enumerate(spec.policies or []):
        if name not in registries.policies:
            out.append(located(sc.source, sc.line("policies", i),
                               f"policies[{i}]: unknown policy {name!r}{did_you_mean(name, registries.policies.names())}"))
        elif registries.policies.get(name).env != spec.env:
            out.append(located(sc.source, sc.line("policies", i),
                               f"policies[{i}]: policy {name!r} is for env {registries.policies.get(name).env!r}, "
                               f"this scenario is for {spec.env!r}"))
    for i, entry in enumerate(spec.perturbations):
        if entry.kind not in registries.perturbations:
            out.append(located(sc.source, sc.line("perturbations", i, "kind"),
                               f"perturbations[{i}].kind: unknown perturbation {entry.kind!r}"
                               f"{did_you_mean(entry.kind, registries.perturbations.names())}"))
    return out


def _check_params(sc: LoadedScenario, registries, env_info=None) -> list[str]:
    """Each perturbation's params against its kind's schema, and against the env's model when
    ``env_info`` is given, at every combination of the matrix axes that sweep it."""
    spec = sc.spec
    if any(e.kind not in registries.perturbations for e in spec.perturbations):
        return []  # already reported; params of an unknown kind cannot be checked
    try:
        targets = matrix_targets(sc)
    except SimgateError as exc:
        return [str(exc)]
    info = env_info(spec.env) if env_info is not None and spec.env in registries.envs else None
    out: list[str] = []
    for i, entry in enumerate(spec.perturbations):
        cls = registries.perturbations.get(entry.kind)
        axes = [name for name, (index, _) in targets.items() if index == i]
        for combo in itertools.product(*(spec.matrix[name].values for name in axes)):
            params = dict(entry.params)
            for name, value in zip(axes, combo):
                params[targets[name][1]] = value
            swept = {targets[name][1]: f" (matrix point {name}={value})" for name, value in zip(axes, combo)}
            out.extend(_check_entry(sc, i, cls, params, info, swept))
    return list(dict.fromkeys(out))


def _check_entry(sc: LoadedScenario, i: int, cls, params: dict, info, swept: dict[str, str]) -> list[str]:
    """``swept``: param → `` (matrix point x=v)``, said after a problem with a swept value."""
    kind = sc.spec.perturbations[i].kind
    where = located(sc.source, sc.line("perturbations", i, "params"), f"perturbations[{i}].params")
    at = "".join(swept.values())
    try:
        # strict, through JSON: "0.5" is not a number, and a YAML list still fills a (low, high) tuple
        parsed = cls.Params.model_validate_json(json.dumps(params, default=str), strict=True)
    except ValidationError as exc:
        described = errors.describe(exc, cls.Params, sc.source, sc.lines, ("perturbations", i, "params"),
                                    f" for perturbation {kind!r}")
        return [m + swept.get(err["loc"][0] if err["loc"] else None, "")
                for err, m in zip(exc.errors(include_url=False), described)]
    except Exception as exc:  # a plugin's validator that raised something pydantic does not wrap
        return [f"{where}: perturbation {kind!r} cannot check its params ({type(exc).__name__}: {exc}){at}; "
                f"fix the params or the plugin that registers {kind!r}"]
    if info is None:
        return []
    try:
        found = cls(parsed).check(info)
    except Exception as exc:
        return [f"{where}: perturbation {kind!r} failed checking its params against env {info.name!r} "
                f"({type(exc).__name__}: {exc}){at}; fix the params or the plugin that registers {kind!r}"]
    out = []
    for param, problem in found:
        path = ("perturbations", i, "params", param)
        out.append(located(sc.source, sc.line(*path), f"{yaml_lines.dotted(path)}: {problem}{swept.get(param, '')}"))
    return out


def _check_search(sc: LoadedScenario, registries, env_info=None) -> list[str]:
    """The ``search:`` block: each axis names one listed perturbation's numeric param whose
    per-episode value a search can vary, its range holds the nominal (the value under
    perturbations), the envelope is a sub-box of the space holding the nominal, and the params
    are valid at every bound."""

    spec = sc.spec
    search = spec.search
    if search is None:
        return []
    out: list[str] = []
    if spec.thresholds.min_success_rate is None:
        out.append(located(sc.source, sc.line("search"), "search: the search looks for where success falls below "
                           "thresholds.min_success_rate: set it (e.g. min_success_rate: 0.75)"))
    info = env_info(spec.env) if env_info is not None and spec.env in registries.envs else None
    swept = {axis.param for axis in spec.matrix.values()}
    for name, bounds in search.space.items():
        where = ("search", "space", name)
        problem = axis_problem(name, spec, registries)
        if problem is None and name in swept:
            problem = "the matrix sweeps this param too; search it or sweep it, not both"
        if problem is not None:
            out.append(located(sc.source, sc.line(*where), f"search.space.{name}: {problem}"))
            continue
        low, high = bounds
        nominal = nominal_of(name, spec, registries)
        if not low < high:
            out.append(located(sc.source, sc.line(*where), f"search.space.{name}: should be [low, high] with low < high, "
                               f"received {list(bounds)}"))
            continue
        if not low <= nominal <= high:
            out.append(located(sc.source, sc.line(*where), f"search.space.{name}: [{low:g}, {high:g}] should hold the "
                               f"nominal value {nominal:g} (its value under perturbations); widen the range or change it there"))
        values = [low, high]
        envelope = search.envelope.get(name)
        if envelope is not None:
            values += list(envelope)
        kind, param = name.split(".")
        index = next(i for i, e in enumerate(spec.perturbations) if e.kind == kind)
        cls = registries.perturbations.get(kind)
        for value in values:
            params = {**spec.perturbations[index].params, param: value}
            # a snapped param (a delay on the physics grid) is checked against the env once snapped
            checked = None if (kind, param) in SNAPPED else info
            out.extend(_check_entry(sc, index, cls, params, checked, {param: f" (search: {name}={value:g})"}))
    for name, bounds in search.envelope.items():
        where = ("search", "envelope", name)
        if name not in search.space:
            out.append(located(sc.source, sc.line(*where), f"search.envelope.{name}: not an axis of search.space"
                               f"{did_you_mean(name, list(search.space))}; the envelope is a sub-box of the space"))
            continue
        low, high = bounds
        space_low, space_high = search.space[name]
        if not low <= high:
            out.append(located(sc.source, sc.line(*where), f"search.envelope.{name}: should be [low, high] with low ≤ high, "
                               f"received {list(bounds)}"))
        elif not (space_low <= low and high <= space_high):
            out.append(located(sc.source, sc.line(*where), f"search.envelope.{name}: [{low:g}, {high:g}] should lie inside "
                               f"search.space.{name} [{space_low:g}, {space_high:g}]"))
        elif axis_problem(name, spec, registries) is None:
            nominal = nominal_of(name, spec, registries)
            if not low <= nominal <= high:
                out.append(located(sc.source, sc.line(*where), f"search.envelope.{name}: [{low:g}, {high:g}] should hold "
                                   f"the nominal value {nominal:g}: the envelope is where the policy is promised to hold, "
                                   "and it holds at nominal first"))
    if search.require and not search.envelope:
        out.append(located(sc.source, sc.line("search", "require"), "search.require: holds_inside_envelope needs "
                           "search.envelope (the box to certify)"))
    if not out:
        out += _check_search_size(sc)
    return list(dict.fromkeys(out))


def _check_search_size(sc: LoadedScenario) -> list[str]:
    """A covering design too large to build, and a budget whose stages cannot run: found before
    the search allocates its design or spends its episodes on a search that cannot conclude."""

    search = sc.spec.search
    widths = [high - low for low, high in search.envelope.values()]
    points = design_points(widths, search.levels)
    if points > MAX_DESIGN_POINTS:
        where = sc.line("search", "levels") or sc.line("search", "envelope")
        return [located(sc.source, where, f"search.levels: the envelope's covering design would have {points:,} points "
                                          f"({search.levels} levels on each of its {sum(w > 0 for w in widths)} axes), "
                                          f"more than the {MAX_DESIGN_POINTS:,} a search may certify; lower search.levels "
                                          "(2 covers the corners) or put fewer axes in search.envelope")]
    return _check_search_budget(sc, points)


def _check_search_budget(sc: LoadedScenario, points: int) -> list[str]:
    spec, search = sc.spec, sc.spec.search
    axes = len(search.space)
    reasons, needed = [], 0
    if quota("boundary", search.budget) < MIN_COARSE * axes:
        needed = least_budget("boundary", MIN_COARSE * axes)
        reasons.append(f"its boundary stage's share is {quota('boundary', search.budget)}, fewer than the "
                       f"{MIN_COARSE * axes} episodes its first pass needs ({MIN_COARSE} per search.space axis, {axes} axes)")
    per_point = episodes_to_pass(spec.thresholds.min_success_rate, spec.alpha)
    if search.envelope and per_point is not None and quota("certify", search.budget) < points * per_point:
        needed = max(needed, least_budget("certify", points * per_point))
        reasons.append(f"its certification's share is {quota('certify', search.budget)}, fewer than the "
                       f"{points * per_point:,} episodes that {points:,} covering-design points need ({per_point} each, all successes, to show success "
                       f"≥ {spec.thresholds.min_success_rate:g} at alpha {spec.alpha:g})")
    if not reasons:
        return []
    return [located(sc.source, sc.line("search", "budget"),
                    f"search.budget: {search.budget:,} episodes cannot cover this search: {'; '.join(reasons)}; "
                    f"raise search.budget to at least {needed:,}"
                    + (", or lower search.levels or put fewer axes in search.envelope" if search.envelope else ""))]
