"""Read ``policies/<dir>/manifest.yaml`` files into PolicySpecs (cheap: no weights loaded)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simgate.errors import SimgateError, located
from simgate.policies.spec import PolicySpec
from simgate.scenarios import errors, yaml_lines


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    env: str
    format: str = Field(pattern=r"^(onnx|torchscript|scripted)$")
    file: str | None = None
    entry: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    observation_size: int = Field(gt=0)
    action_size: int = Field(gt=0)
    description: str = ""
    provenance: dict = Field(default_factory=dict)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policies: list[ManifestEntry] = Field(min_length=1)


def read_manifest(path: Path, display: str | None = None) -> list[PolicySpec]:
    display = display or str(path)
    data, lines = yaml_lines.load(path.read_text(encoding="utf-8"), display)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise SimgateError("\n".join(errors.describe(exc, Manifest, display, lines))) from None
    specs = []
    for i, entry in enumerate(manifest.policies):
        needs = "entry" if entry.format == "scripted" else "file"
        if getattr(entry, needs) is None:
            raise SimgateError(located(display, yaml_lines.line_of(lines, ("policies", i)),
                                       f"policies[{i}]: format {entry.format!r} needs '{needs}:'"))
        specs.append(PolicySpec(
            name=entry.name, env=entry.env, format=entry.format, observation_size=entry.observation_size,
            action_size=entry.action_size, file=path.parent / entry.file if entry.file else None,
            entry=entry.entry, sha256=entry.sha256, provenance=entry.provenance, manifest=display,
            line=yaml_lines.line_of(lines, ("policies", i, "file")) or yaml_lines.line_of(lines, ("policies", i)),
        ))
    return specs


def register_manifests(registry, directory: Path, rootdir: Path | None = None) -> None:
    """Register every ``*/manifest.yaml`` under ``directory`` (sorted, so order is stable)."""
    for path in sorted(directory.glob("*/manifest.yaml")):
        display = str(path.relative_to(rootdir)) if rootdir else str(path)
        for spec in read_manifest(path, display):
            registry.add(spec.name, spec)
