"""Gymnasium's MuJoCo tasks, usable by id through the adapter (gymnasium imported at run time)."""

import functools

from simgate.envs.gymnasium_adapter import GymnasiumEnv
from simgate.plugin_manager import hookimpl

GYMNASIUM_IDS = ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Humanoid-v5", "InvertedDoublePendulum-v5",
                 "InvertedPendulum-v5", "Pusher-v5", "Reacher-v5", "Swimmer-v5", "Walker2d-v5")


def _make(env_id):
    return GymnasiumEnv(env_id)


@hookimpl
def simgate_register_envs(registry):
    for env_id in GYMNASIUM_IDS:
        registry.add(env_id, functools.partial(_make, env_id))
