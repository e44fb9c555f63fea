"""The robots this repository ships, registered with simgate (factories load MuJoCo lazily)."""

from pathlib import Path

from simgate.plugin_manager import hookimpl
from simgate.robots.load import register_robots

_HERE = Path(__file__).resolve().parent


@hookimpl
def simgate_register_envs(registry):
    registry.add("balancebot", "envs.balancebot.env:BalanceBot")
    registry.add("arm7-reach", "envs.arm7.env:Arm7Reach")
    registry.add("arm7-reach-far", "envs.arm7.env:Arm7ReachFar")
    registry.add("quadruped", "envs.quadruped.env:Quadruped")
    register_robots(registry, _HERE, rootdir=_HERE.parent)  # envs/*/robot.yaml: robots without Python
