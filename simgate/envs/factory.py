"""Envs as a case uses them: built by their registry's factory, bound to the policy that drives
them (a YAML robot takes each policy's own contract), and the policy that runs in them."""

from __future__ import annotations

import importlib

from simgate.errors import CodeError, InputError, Party, PluginCodeError, SimgateError, blaming
from simgate.policies import hold


def build_env(factory, spec=None):
    """The env a registry's factory makes; bound to ``spec``'s contract when the env is a YAML
    robot (each policy brings its own observation/action contract)."""
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    env = factory()
    return env_for(env, spec) if spec is not None else env


def env_label(envs, name: str) -> str:
    """How a message names a registered env: ``env 'x' (plugin p)``."""
    return f"env {name!r} (plugin {envs.owner(name)})"


def registered_env(envs, name: str, spec=None):
    """The env registered as ``name`` in the ``envs`` registry, built by its factory and bound to
    ``spec`` as :func:`build_env` does. The factory is the plugin's code (its module imported,
    then called): whatever it raises leaves as PluginCodeError naming the env and its plugin (a
    SimgateError as it is); binding a YAML robot to the policy's contract is named the same way
    when the robot's code raises."""
    factory = envs.get(name)
    label = env_label(envs, name)
    try:
        env = build_env(factory)
    except (SimgateError, CodeError):
        raise
    except Exception as exc:  # noqa: BLE001 - the env plugin's factory: its import and its call
        raise PluginCodeError(label, exc) from exc
    if spec is None:
        return env
    with blaming(Party(label, env)):
        return env_for(env, spec)


def load_policy(spec, env):
    """``spec``'s runnable policy; the built-in ``hold`` takes its action from ``env``."""
    return hold.for_env(env) if hold.is_hold(spec) else spec.load()


def env_for(env, spec):
    """``env`` as ``spec`` drives it: a YAML robot bound to the policy's contract; any other env
    as is (a contract on a Python env is refused: the env's code fixes its own layout)."""
    if hold.is_hold(spec):
        return env  # the null policy sends the neutral action through the env as it is bound
    bind = getattr(env, "for_policy", None)
    if bind is not None:
        # a policy without a contract is refused by ``bind``; one with the contract the env already
        # carries needs no new binding
        contract = getattr(spec, "contract", None)
        return env if contract is not None and getattr(env, "contract", None) is contract else bind(spec)
    if getattr(spec, "contract", None) is not None:
        raise InputError(f"policy {spec.name!r} ({spec.manifest}) carries a contract, but env {env.name!r} is a Python "
                         "env whose code fixes the observation and action layout; a contract needs a YAML robot "
                         "(envs/<name>/robot.yaml, kind: mjcf)")
    return env


def check_sizes(spec, env) -> None:
    if hold.is_hold(spec):
        return  # sized by the env it holds
    for what, theirs, ours in (("observation", spec.observation_size, env.observation_size),
                               ("action", spec.action_size, env.action_size)):
        if theirs != ours:
            raise InputError(f"policy {spec.name!r} has {what} size {theirs} ({spec.manifest}) but env "
                             f"{env.name!r} has {ours}; this policy was built for another robot or observation layout")
