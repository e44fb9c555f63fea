"""simgate's built-in policies: ``hold``, the null baseline (:mod:`simgate.policies.hold`)."""

from simgate.plugin_manager import hookimpl


@hookimpl
def simgate_register_policies(registry):
    from simgate.policies import hold

    registry.add(hold.NAME, hold.spec())
