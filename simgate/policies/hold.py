"""``hold``: the null policy that holds the robot's default pose (the env's neutral action: what
its actuators get before any command). As a baseline (``--baseline hold``) it answers the first
question about any policy: does it do better than doing nothing? A standing humanoid that holds
its home pose stands on flat ground: "stands for 10 s" alone says nothing about a policy.

It has no file and no sizes of its own: it takes the candidate's env as it is (a YAML robot bound
to the candidate's contract, whose neutral action it sends).
"""

from __future__ import annotations

import numpy as np

from simgate.policies.spec import PolicySpec

NAME = "hold"
FORMAT = "hold"


def spec() -> PolicySpec:
    return PolicySpec(name=NAME, env="*", format=FORMAT, observation_size=0, action_size=0,
                      manifest="<simgate: built-in null policy>")


def is_hold(spec) -> bool:
    return getattr(spec, "format", None) == FORMAT


class HoldPolicy:
    """Every row gets the same action, whatever it observes."""

    def __init__(self, action: np.ndarray):
        self.action = np.asarray(action, dtype=np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.tile(self.action, (len(obs), 1))


def for_env(env) -> HoldPolicy:
    return HoldPolicy(env.neutral_action(env.build_model()))
