"""Read ``policies/<dir>/manifest.yaml`` files into PolicySpecs (cheap: no weights loaded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simgate.errors import SimgateError, located
from simgate.policies.spec import PolicySpec
from simgate.robots.load import contract_file, read_contract
from simgate.yamlfile import errors
from simgate.yamlfile import lines as yaml_lines


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    env: str
    format: Literal["onnx", "torchscript", "scripted"]
    file: str | None = None
    #: other files the policy reads, next to the manifest like ``file``
    files: list[str] = Field(default_factory=list)
    #: each ``files:`` entry's sha256 (``{gains.json: <hex>}``): a scripted controller's weights
    #: and tables are checked like an ONNX file's bytes, before any episode runs
    files_sha256: dict[str, str] = Field(default_factory=dict)
    entry: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    observation_size: int = Field(gt=0)
    action_size: int = Field(gt=0)
    description: str = ""
    provenance: dict = Field(default_factory=dict)
    #: the policy's observation/action contract (for a YAML robot): a mapping, or a YAML file
    #: next to the manifest that holds one
    contract: dict | str | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    policies: list[ManifestEntry] = Field(min_length=1)


def read_manifest(path: Path, display: str | None = None) -> list[PolicySpec]:
    display = display or str(path)
    data, lines = yaml_lines.read(path, display, what="policy manifest")
    if not isinstance(data, dict):
        raise SimgateError(located(display, 1, "a manifest must be a mapping with a 'policies:' list of "
                                               "{name, env, format, file or entry, ...}"))
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise SimgateError("\n".join(errors.describe(exc, Manifest, display, lines))) from None
    folder = path.parent
    specs, problems, names = [], [], {}
    for i, entry in enumerate(manifest.policies):
        at = {key: yaml_lines.line_of(lines, ("policies", i, key)) for key in ManifestEntry.model_fields}
        needs = "entry" if entry.format == "scripted" else "file"
        if getattr(entry, needs) is None:
            problems.append(located(display, yaml_lines.line_of(lines, ("policies", i)),
                                    f"policies[{i}]: format {entry.format!r} needs '{needs}:'"))
        if entry.name in names:
            problems.append(located(display, at["name"], f"policies[{i}].name: policy {entry.name!r} is already "
                                                         f"listed at line {names[entry.name]}; names must be unique"))
        names.setdefault(entry.name, at["name"])
        file = _confined(entry.file, folder, display, at["file"], f"policies[{i}].file", problems) if entry.file else None
        files = tuple(_confined(f, folder, display, yaml_lines.line_of(lines, ("policies", i, "files", j)),
                                f"policies[{i}].files[{j}]", problems) for j, f in enumerate(entry.files))
        contract = _contract(entry.contract, folder, display, lines, i, at["contract"], problems)
        specs.append(PolicySpec(
            name=entry.name, env=entry.env, format=entry.format, observation_size=entry.observation_size,
            action_size=entry.action_size, file=file, files=files, files_sha256=dict(entry.files_sha256),
            entry=entry.entry, sha256=entry.sha256, provenance=entry.provenance, manifest=display,
            line=at["file"] or yaml_lines.line_of(lines, ("policies", i)),
            lines={key: line for key, line in at.items() if line is not None}, contract=contract,
        ))
    named = {folder / e.file for e in manifest.policies if e.file} | {folder / f for e in manifest.policies
                                                                       for f in e.files}
    _folder_links(folder, display, lines, named, problems)
    if problems:
        raise SimgateError("\n".join(dict.fromkeys(problems)))
    return specs


def _contract(value, folder: Path, display: str, lines: dict, i: int, line, problems: list):
    """The entry's contract: inline, or read from a file beside the manifest."""
    if value is None:
        return None

    try:
        if isinstance(value, str):
            path = _confined(value, folder, display, line, f"policies[{i}].contract", problems)
            if not path.is_file():
                problems.append(located(display, line, f"policies[{i}].contract: {value!r} does not exist next to the "
                                                       "manifest; give the contract file's name, or write it inline"))
                return None
            return contract_file(path, f"{display.rsplit('/', 1)[0]}/{value}" if "/" in display else value)
        return read_contract(value, display, lines, ("policies", i, "contract"), folder)
    except SimgateError as exc:
        problems.append(str(exc))
        return None


def _confined(name: str, folder: Path, display: str, line: int | None, key: str, problems: list) -> Path:
    """``folder/name``, which must stay inside ``folder`` once ``..`` and symlinks are resolved:
    a manifest describes its own folder, not the machine it runs on. A folder named there must
    hold no link out of it either (the cache would hash, and a Ray run ship, what it points at)."""
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        problems.append(located(display, line, f"{key}: {name!r} is outside the policy's folder {folder.resolve()}; "
                                               "put the file next to the manifest"))
    elif path.is_dir():
        for link, target in links_out(path, folder.resolve()):
            problems.append(located(display, line, f"{key}: {name!r} holds {link.relative_to(folder)}, a link to "
                                                   f"{target}, outside the policy's folder {folder.resolve()}; copy what "
                                                   "the policy needs into the folder, or remove the link"))
    return path


def links_out(top: Path, folder: Path, most: int = 5) -> list[tuple[Path, Path]]:
    """(link, its target) for the first ``most`` symlinks under ``top`` whose target lies outside
    ``folder`` (a resolved path). Hidden entries and ``__pycache__`` are skipped, as the cache
    skips them; links are not followed, so a link to /usr/share costs one check, not a walk."""
    found = []
    for current, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in dirs + sorted(f for f in files if not f.startswith(".")):
            entry = Path(current) / name
            if entry.is_symlink() and not entry.resolve().is_relative_to(folder):
                found.append((entry, entry.resolve()))
                if len(found) == most:
                    return found
    return found


def _folder_links(folder: Path, display: str, lines: dict, named: set, problems: list) -> None:
    """Links anywhere in the policy's folder that leave it (not only in what ``files:`` names): a
    scripted policy's package is this folder, hashed whole for the episode cache."""
    for link, target in links_out(folder, folder.resolve()):
        if any(link.is_relative_to(path) for path in named):  # its own entry already says so, with the key
            continue
        problems.append(located(display, yaml_lines.line_of(lines, ("policies",)),
                                f"{link.relative_to(folder)} in the policy's folder is a link to {target}, outside "
                                f"it ({folder.resolve()}); copy what the policy needs into the folder, or remove the link"))


def register_manifests(registry, directory: Path, rootdir: Path | None = None) -> None:
    """Register every ``*/manifest.yaml`` under ``directory`` (sorted, so order is stable)."""
    for path in sorted(directory.glob("*/manifest.yaml")):
        if str(path.resolve()) in registry.sources:
            continue
        registry.sources.add(str(path.resolve()))
        display = str(path.relative_to(rootdir)) if rootdir else str(path)
        for spec in read_manifest(path, display):
            if spec.name in registry:
                first = registry.get(spec.name)
                where = located(getattr(first, "manifest", registry.owner(spec.name)), getattr(first, "line", None), "")
                raise SimgateError(located(display, spec.lines.get("name", spec.line),
                                           f"name: policy {spec.name!r} is already registered ({where.rstrip(': ')}); "
                                           "names must be unique: rename one"))
            registry.add(spec.name, spec)
