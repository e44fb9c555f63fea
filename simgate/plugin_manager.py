"""The one pluggy host: built-ins, then the ``simgate`` entry-point group, then project modules.

Built-in plugins are registered exactly like third-party ones, so the core uses its own public
hooks. ``SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1`` skips the entry-point group (as tox and pytest
allow), for a run that must not pick up whatever happens to be installed.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

import pluggy

from simgate import hookspecs
from simgate.errors import SimgateError
from simgate.registry import Registry

hookimpl = pluggy.HookimplMarker("simgate")

#: the modules that ship with simgate, registered first (so their classifiers run last)
BUILTIN_PLUGINS = (
    "simgate.builtin.envs",
    "simgate.builtin.perturbations",
    "simgate.builtin.metrics",
    "simgate.builtin.classifiers",
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
        for name in BUILTIN_PLUGINS:
            self.pm.register(importlib.import_module(name), name=name)
        if autoload is None:
            autoload = not os.environ.get("SIMGATE_DISABLE_PLUGIN_AUTOLOAD")
        if autoload:
            self.pm.load_setuptools_entrypoints("simgate")
        for name in project_plugins:
            self.register_module(name)
        self._check()
        self.registries = self._collect()

    def register_module(self, dotted: str) -> None:
        if self.pm.has_plugin(dotted):
            return
        try:
            module = importlib.import_module(dotted)
        except ImportError as exc:
            raise SimgateError(
                f"simgate plugin module {dotted!r} (listed in simgate_plugins of a conftest.py) "
                f"cannot be imported: {exc}"
            ) from None
        self.pm.register(module, name=dotted)

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
                impl.function(**({"registry": registry} if "registry" in impl.argnames else {}))
        return regs

    def plugin_names(self) -> list[str]:
        return sorted(name for name, _ in self.pm.list_name_plugin())

    def classify(self, case, episode) -> str | None:
        return self.pm.hook.simgate_classify_failure(case=case, episode=episode)
