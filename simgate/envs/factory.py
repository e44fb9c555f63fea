"""Envs as a case uses them: built by their registry's factory, bound to the policy that drives
them (a YAML robot takes each policy's own contract), and the policy that runs in them."""

from __future__ import annotations

import importlib

from simgate.policies import hold


def build_env(factory, spec=None):
    """The env a registry's factory makes; bound to ``spec``'s contract when the env is a YAML
    robot (each policy brings its own observation/action contract)."""
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    env = factory()
    return env_for(env, spec) if spec is not None else env


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
        return bind(spec) if getattr(env, "contract", None) is not getattr(spec, "contract", None) else env
    if getattr(spec, "contract", None) is not None:
        raise ValueError(f"policy {spec.name!r} ({spec.manifest}) carries a contract, but env {env.name!r} is a Python "
                         "env whose code fixes the observation and action layout; a contract needs a YAML robot "
                         "(envs/<name>/robot.yaml, kind: mjcf)")
    return env


def check_sizes(spec, env) -> None:
    if hold.is_hold(spec):
        return  # sized by the env it holds
    for what, theirs, ours in (("observation", spec.observation_size, env.observation_size),
                               ("action", spec.action_size, env.action_size)):
        if theirs != ours:
            raise ValueError(f"policy {spec.name!r} has {what} size {theirs} ({spec.manifest}) but env "
                             f"{env.name!r} has {ours}; this policy was built for another robot or observation layout")
