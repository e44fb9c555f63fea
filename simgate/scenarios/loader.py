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


def load_file(path: Path, display: str, registries) -> LoadedScenario:
    """Parse and fully validate one file; raise one SimgateError listing every problem."""
    data, lines = yaml_lines.load(path.read_text(encoding="utf-8"), display)
    if not isinstance(data, dict):
        raise SimgateError(located(display, 1, "a scenario file must be a mapping with name, env, episodes, horizon, ..."))
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        raise SimgateError("\n".join(errors.describe(exc, ScenarioSpec, display, lines))) from None
    loaded = LoadedScenario(spec, display, lines)
    problems = _check_names(loaded, registries) + _check_params(loaded, registries)
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


def _check_params(sc: LoadedScenario, registries) -> list[str]:
    """Each perturbation's params against its kind's schema, at every matrix point."""
    from simgate.scenarios.expand import matrix_targets, points, resolve_perturbations

    spec = sc.spec
    if any(e.kind not in registries.perturbations for e in spec.perturbations):
        return []  # already reported; params of an unknown kind cannot be checked
    try:
        matrix_targets(sc)
    except SimgateError as exc:
        return [str(exc)]
    out: list[str] = []
    for point in points(spec):
        for i, entry in enumerate(resolve_perturbations(sc, point)):
            cls = registries.perturbations.get(entry["kind"])
            try:
                cls.Params.model_validate(entry["params"])
            except ValidationError as exc:
                what = f" for perturbation {entry['kind']!r}"
                for msg in errors.describe(exc, cls.Params, sc.source, sc.lines, ("perturbations", i, "params"), what):
                    if msg not in out:
                        out.append(msg)
    return out
