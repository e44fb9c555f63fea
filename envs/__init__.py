"""The robots this repository ships, registered with simgate (factories load MuJoCo lazily)."""

from simgate.plugin_manager import hookimpl


@hookimpl
def simgate_register_envs(registry):
    registry.add("balancebot", "envs.balancebot.env:BalanceBot")
    registry.add("arm7-reach", "envs.arm7.env:Arm7Reach")
    registry.add("arm7-reach-far", "envs.arm7.env:Arm7ReachFar")
    registry.add("quadruped", "envs.quadruped.env:Quadruped")
