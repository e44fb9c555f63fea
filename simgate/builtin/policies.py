"""simgate's built-in policies: ``hold``, the null baseline (:mod:`simgate.policies.hold`)."""

from simgate.plugin_manager import hookimpl
from simgate.policies import hold


@hookimpl
def simgate_register_policies(registry):
    registry.add(hold.NAME, hold.spec())
