"""Read robot YAML files and policy contracts into checked definitions, with the line of every key.

``register_robots(registry, folder)`` registers every ``*/robot.yaml`` under ``folder`` as an env
(what ``register_manifests`` is for policies): a robot needs no Python.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from simgate.errors import SimgateError, located
from simgate.robots.env import MjcfEnv
from simgate.robots.schema import Contract, Robot
from simgate.yamlfile import errors
from simgate.yamlfile import lines as yaml_lines


@dataclasses.dataclass(frozen=True)
class RobotDef:
    robot: Robot
    path: Path  # the robot YAML
    display: str  # how messages name it
    lines: dict = dataclasses.field(compare=False, repr=False)
    digest: str = ""  # of the YAML's bytes: part of every cache key of this robot

    @property
    def scene(self) -> Path:
        return (self.path.parent / self.robot.scene).resolve()

    def line(self, *keys) -> int | None:
        return yaml_lines.line_of(self.lines, tuple(keys)) or yaml_lines.line_of(self.lines, tuple(keys[:1]))

    def where(self, *keys) -> str:
        return located(self.display, self.line(*keys), "").rstrip(": ")


@dataclasses.dataclass(frozen=True)
class ContractDef:
    contract: Contract
    display: str  # the manifest (or contract file) that states it
    lines: dict = dataclasses.field(compare=False, repr=False)
    prefix: tuple = ()  # where the contract sits in that file
    folder: Path = Path(".")  # the manifest's folder: a log file is relative to it
    digest: str = ""  # of the contract's canonical JSON: part of every cache key

    def line(self, *keys) -> int | None:
        for n in range(len(keys), -1, -1):
            line = yaml_lines.line_of(self.lines, self.prefix + tuple(keys[:n]))
            if line:
                return line
        return None

    def where(self, *keys) -> str:
        return located(self.display, self.line(*keys), "").rstrip(": ")


def read_robot(path: Path, display: str | None = None) -> RobotDef:
    display = display or str(path)
    data, lines = yaml_lines.read(path, display, what="robot")
    robot = errors.validated(Robot, data, display, lines, "a robot file is a mapping: kind: mjcf, name, scene, base, reset, ...")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = RobotDef(robot, path.resolve(), display, lines, digest)
    if not out.scene.is_file():
        raise SimgateError(located(display, out.line("scene"), f"scene: {robot.scene!r} does not exist (looked for "
                                                               f"{out.scene}); give the MJCF path relative to this file"))
    return out


def read_contract(data, display: str, lines: dict, prefix: tuple, folder: Path) -> ContractDef:
    """A contract from its parsed YAML (``data`` found at ``prefix`` of the file ``display``)."""
    contract = errors.validated(Contract, data, display, lines,
                                "contract: expected a mapping with observation: [...] and action: {...}", prefix)
    digest = hashlib.sha256(json.dumps(contract.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return ContractDef(contract, display, lines, prefix, folder, digest)


def contract_file(path: Path, display: str) -> ContractDef:
    """A contract kept in a file of its own (a manifest's ``contract: name.yaml``)."""
    data, lines = yaml_lines.read(path, display, what="contract")
    return read_contract(data, display, lines, (), path.parent)


def make_env(path: str, display: str):
    """The env factory a registry holds: picklable (Ray workers rebuild it), builds at run time."""
    return MjcfEnv(_robot(path, display))


@functools.lru_cache(maxsize=None)
def _robot(path: str, display: str) -> RobotDef:
    return read_robot(Path(path), display)


def register_robots(registry, directory: Path, rootdir: Path | None = None) -> None:
    """Register every ``*/robot.yaml`` under ``directory`` (sorted) as an env named by its ``name:``."""
    for path in sorted(Path(directory).glob("*/robot.yaml")):
        if str(path.resolve()) in registry.sources:
            continue
        registry.sources.add(str(path.resolve()))
        display = str(path.relative_to(rootdir)) if rootdir else str(path)
        robot = _robot(str(path.resolve()), display)
        if robot.robot.name in registry:
            raise SimgateError(located(display, robot.line("name"), f"name: env {robot.robot.name!r} is already "
                                                                    f"registered (by plugin {registry.owner(robot.robot.name)}); "
                                                                    "rename the robot"))
        registry.add(robot.robot.name, functools.partial(make_env, str(path.resolve()), display))
