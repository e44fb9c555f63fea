"""Read scenario files and check them against the schema and against what is registered."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pydantic import ValidationError

from simgate.errors import SimgateError, located
from simgate.registry import did_you_mean
from simgate.scenarios import errors, yaml_lines
from simgate.scenarios.schema import ScenarioSpec

SUFFIXES = (".yaml", ".yml")


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
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())


def load_file(path: Path, display: str, registries, env_info=None) -> LoadedScenario:
    """Parse and fully validate one file; raise one SimgateError listing every problem.

    ``env_info(name) -> EnvInfo``, when given, lets perturbations check their params against the
    env's model (names, timestep); simgate passes it on the controller only.
    """
    data, lines = yaml_lines.load(path.read_text(encoding="utf-8"), display)
    if not isinstance(data, dict):
        raise SimgateError(located(display, 1, "a scenario file must be a mapping with name, env, episodes, horizon, ..."))
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise SimgateError("\n".join(errors.describe(exc, ScenarioSpec, display, lines))) from None
    loaded = LoadedScenario(spec, display, lines)
    problems = _check_names(loaded, registries) + _check_params(loaded, registries, env_info)
    if problems:
        raise SimgateError("\n".join(problems))
    return loaded


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
    ``env_info`` is given, at every matrix point."""
    from simgate.scenarios.expand import matrix_targets, points, resolve_perturbations

    spec = sc.spec
    if any(e.kind not in registries.perturbations for e in spec.perturbations):
        return []  # already reported; params of an unknown kind cannot be checked
    try:
        matrix_targets(sc)
    except SimgateError as exc:
        return [str(exc)]
    info = env_info(spec.env) if env_info is not None and spec.env in registries.envs else None
    out: list[str] = []
    for point in points(spec):
        for i, entry in enumerate(resolve_perturbations(sc, point)):
            cls = registries.perturbations.get(entry["kind"])
            try:
                params = cls.Params.model_validate(entry["params"])
            except ValidationError as exc:
                what = f" for perturbation {entry['kind']!r}"
                out.extend(errors.describe(exc, cls.Params, sc.source, sc.lines, ("perturbations", i, "params"), what))
                continue
            for param, problem in cls(params).check(info) if info is not None else []:
                path = ("perturbations", i, "params", param)
                out.append(located(sc.source, sc.line(*path), f"{yaml_lines.dotted(path)}: {problem}"
                                   + _at(point, sc, i, param)))
    return list(dict.fromkeys(out))


def _at(point: dict, sc: LoadedScenario, index: int, param: str) -> str:
    """`` (matrix point friction=0.3)`` when the value came from a sweep."""
    swept = [name for name, axis in sc.spec.matrix.items() if axis.param == f"{sc.spec.perturbations[index].kind}.{param}"]
    return f" (matrix point {', '.join(f'{n}={point[n]}' for n in swept)})" if swept else ""
