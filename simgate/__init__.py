"""simgate: a pytest gate for learned robot control policies in MuJoCo.

What a plugin author uses, importable from here::

    from simgate import hookimpl, MujocoEnv, PolicySpec, register_manifests, register_robots, Perturbation, SimgateError

``import simgate`` stays light (no numpy, MuJoCo or pydantic): each name is imported from its
module the first time it is used, so a plugin module can be imported at collection time cheaply.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name → the module that defines it
_EXPORTS = {
    "hookimpl": "simgate.plugin_manager",
    "MujocoEnv": "simgate.envs.base",
    "PolicySpec": "simgate.policies.spec",
    "register_manifests": "simgate.policies.manifest",
    "register_robots": "simgate.robots.load",
    "Perturbation": "simgate.perturbations.base",
    "Params": "simgate.perturbations.base",
    "EpisodeContext": "simgate.perturbations.base",
    "SimgateError": "simgate.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
