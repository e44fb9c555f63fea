"""The one pluggy host: built-ins, then the ``simgate`` entry-point group, then project modules.

Built-in plugins are registered exactly like third-party ones, so the core uses its own public
hooks. ``SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1`` skips the entry-point group (as tox and pytest
allow), for a run that must not pick up whatever happens to be installed.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from simgate import hookspecs
from simgate.errors import SimgateError
from simgate.policies.manifest import register_manifests
from simgate.registry import Registry
from simgate.robots.load import register_robots

hookimpl = pluggy.HookimplMarker("simgate")

#: a project-plugin entry ``folder:<path>`` is no module: the YAML robots (``envs/*/robot.yaml``)
#: and policy manifests (``policies/*/manifest.yaml``) of that folder, so a project of YAML files
#: alone, with no Python, is gated (the pytest plugin gives it for a project with no plugin modules)
FOLDER = "folder:"

#: the modules that ship with simgate, registered first (so their classifiers run last)
BUILTIN_PLUGINS = (
    "simgate.builtin.envs",
    "simgate.builtin.perturbations",
    "simgate.builtin.metrics",
    "simgate.builtin.classifiers",
    "simgate.builtin.policies",
)


@dataclass
class Registries:
    """Everything the plugins registered, filled once per process."""

    envs: Registry = field(default_factory=lambda: Registry("env"))
    policies: Registry = field(default_factory=lambda: Registry("policy"))
    perturbations: Registry = field(default_factory=lambda: Registry("perturbation"))
    metrics: Registry = field(default_factory=lambda: Registry("metric"))


class Host:
    """A plugin manager plus the registries its registration hooks filled."""

    def __init__(self, project_plugins: list[str] = (), autoload: bool | None = None):
        self.pm = pluggy.PluginManager("simgate")
        self.pm.add_hookspecs(hookspecs)
        #: plugin name -> (where it comes from, how to get rid of it): a message about a plugin
        #: names its distribution and the way out, not only the name it registered under
        self.origins: dict[str, tuple[str, str]] = {}
        for name in BUILTIN_PLUGINS:
            self.pm.register(importlib.import_module(name), name=name)
            self.origins[name] = ("built into simgate", "")
        if autoload is None:
            autoload = not os.environ.get("SIMGATE_DISABLE_PLUGIN_AUTOLOAD")
        if autoload:
            self._load_entry_points()
        folders = [n[len(FOLDER):] for n in project_plugins if n.startswith(FOLDER)]
        for name in project_plugins:
            if not name.startswith(FOLDER):
                self.register_module(name)
        self._check()
        self.registries = self._collect()
        for folder in folders:
            self._discover(folder)

    def _discover(self, folder: str) -> None:
        root = Path(folder)
        for registry, sub, register in ((self.registries.envs, "envs", register_robots),
                                        (self.registries.policies, "policies", register_manifests)):
            if (root / sub).is_dir():
                registry.current_plugin = f"the project folder {root}"
                try:
                    register(registry, root / sub, rootdir=root)
                except SimgateError as exc:  # a clash with a plugin's name: say where that plugin comes from
                    raise SimgateError(self._explained(str(exc))) from None

    def _load_entry_points(self) -> None:
        """The ``simgate`` entry-point group, one at a time, so a broken one is named (pluggy's
        own loader would let the first exception out as a traceback)."""

        for ep in entry_points(group="simgate"):
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            dist = getattr(getattr(ep, "dist", None), "name", None)
            fix = "uninstall it or set SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1"
            self.origins[ep.name] = (f"the entry point '{ep.name} = {ep.value}' of the installed distribution "
                                     f"{dist or '(unknown)'}", fix)
            what = f"simgate plugin {ep.name!r} (entry point {ep.value!r} of {dist or 'an installed distribution'})"
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # noqa: BLE001 (any import-time failure is the plugin's)
                raise SimgateError(f"{what} cannot be imported: {_failure(exc)}; {fix}") from None
            self._register(plugin, ep.name, what, fix)

    def register_module(self, dotted: str) -> None:
        if self.pm.has_plugin(dotted):
            return
        what = f"simgate plugin module {dotted!r} (listed in simgate_plugins of a conftest.py)"
        fix = "fix the module or remove it from simgate_plugins"
        self.origins[dotted] = (f"the module {dotted!r} listed in simgate_plugins of a conftest.py",
                                "remove it from simgate_plugins")
        try:
            module = importlib.import_module(dotted)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 (not only ImportError: the module's own code may raise)
            raise SimgateError(f"{what} cannot be imported: {_failure(exc)}; {fix}") from None
        self._register(module, dotted, what, fix)

    def _register(self, plugin, name: str, what: str, fix: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:  # a hookimpl whose arguments no hook offers
            raise SimgateError(f"{what}: {exc}; hooks are listed in simgate/hookspecs.py; {fix}") from None
        except ValueError as exc:  # registered twice under another name
            raise SimgateError(f"{what}: {exc}; {fix}") from None

    def _check(self) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise SimgateError(f"simgate plugin {exc.plugin!r}: {exc}; hooks are listed in simgate/hookspecs.py") from None

    def _collect(self) -> Registries:
        regs = Registries()
        hooks = {
            "simgate_register_envs": regs.envs,
            "simgate_register_policies": regs.policies,
            "simgate_register_perturbations": regs.perturbations,
            "simgate_register_metrics": regs.metrics,
        }
        for hook_name, registry in hooks.items():
            caller = getattr(self.pm.hook, hook_name)
            # one plugin at a time, so a clash or a bad name is blamed on the right plugin
            for impl in caller.get_hookimpls():  # registration order: built-ins first
                registry.current_plugin = impl.plugin_name
                try:
                    impl.function(**({"registry": registry} if "registry" in impl.argnames else {}))
                except SimgateError as exc:  # names the plugins or the file; say where each plugin comes from
                    raise SimgateError(self._explained(str(exc))) from None
                except (Exception, SystemExit) as exc:  # noqa: BLE001 (a plugin's bug, not simgate's)
                    origin, fix = self.origins.get(impl.plugin_name, ("", "uninstall it / remove it from simgate_plugins"))
                    raise SimgateError(f"simgate plugin {impl.plugin_name}{f' ({origin})' if origin else ''}: {hook_name} "
                                       f"{_failure(exc, 'raised ')}; fix the plugin, or {fix or 'report it'}") from None
        return regs

    def _explained(self, message: str) -> str:
        """``message`` with where each plugin it names comes from (an entry point's distribution,
        a project module, simgate itself) and how to drop a third-party one: a name clash names
        both owners, not only the names they registered under."""

        named = [name for name in self.origins if re.search(rf"plugin {re.escape(name)}(?![\w.-])", message)]
        if not named:
            return message
        notes = []
        for name in sorted(named, key=message.index):
            origin, fix = self.origins[name]
            third_party = "entry point" in origin  # the one a clash is fixed by dropping, not renaming
            notes.append(f"plugin {name} is {origin}" + (f": {fix}" if third_party else ""))
        return f"{message} ({'; '.join(notes)})"

    def plugin_names(self) -> list[str]:
        return sorted(name for name, _ in self.pm.list_name_plugin())

    def classify(self, case, episode) -> str | None:
        return self.pm.hook.simgate_classify_failure(case=case, episode=episode)


def project_plugins(rootdir: Path) -> list[str]:
    """The project's plugin modules, as its conftest.py lists them in ``simgate_plugins``; none:
    the project folder (its YAML robots and manifests), as the gate registers them."""

    folder = [FOLDER + str(rootdir.resolve())]
    conftest = rootdir / "conftest.py"
    if not conftest.is_file():
        return folder
    for node in ast.walk(ast.parse(conftest.read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "simgate_plugins" for t in node.targets):
            return list(ast.literal_eval(node.value)) or folder
    return folder


def _failure(exc: BaseException, verb: str = "") -> str:
    """What a plugin did, for a person: ``sys.exit()`` is no exception type they would recognise."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({'' if exc.code is None else repr(exc.code)})"
    return f"{verb}{type(exc).__name__}: {exc}"
