"""The simgate plugin: one env and every policy manifest shipped in this package."""

from pathlib import Path

from simgate import hookimpl, register_manifests, register_robots

HERE = Path(__file__).resolve().parent


@hookimpl
def simgate_register_envs(registry):
    # a "module:callable" string: MuJoCo is imported only when a case runs
    registry.add("acme-pendulum", "acme_pendulum.env:Pendulum")
    # and every robots/*/robot.yaml: a robot from its MJCF and a YAML file, no Python
    register_robots(registry, HERE / "robots")


@hookimpl
def simgate_register_policies(registry):
    # every policies/*/manifest.yaml: name, env, format, file and its sha256
    register_manifests(registry, HERE / "policies")
