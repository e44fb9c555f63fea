"""Every ``policies/*/manifest.yaml`` becomes a registered policy (no weights are read here)."""

from pathlib import Path

from simgate.plugin_manager import hookimpl
from simgate.policies.manifest import register_manifests

_HERE = Path(__file__).resolve().parent


@hookimpl
def simgate_register_policies(registry):
    register_manifests(registry, _HERE, rootdir=_HERE.parent)
