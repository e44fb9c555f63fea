"""The robots this repository ships, registered with simgate (factories load MuJoCo lazily)."""

from simgate.plugin_manager import hookimpl


@hookimpl
def simgate_register_envs(registry):
    registry.add("balancebot", "envs.balancebot.env:BalanceBot")
    registry.add("quadruped", "envs.quadruped.env:Quadruped")
