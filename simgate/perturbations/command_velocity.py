"""CommandVelocity: the speed and turn rate a walking robot is told to follow, per episode."""

from __future__ import annotations

import math

from simgate.perturbations.base import (
    EpisodeContext,
    Params,
    Perturbation,
    Sampled,
    draw,
    range_validator,
)


class CommandVelocityParams(Params):
    forward: Sampled  # m/s along the robot's heading; negative walks backwards
    yaw_rate: Sampled = 0.0  # rad/s, counter-clockwise seen from above

    # a command may be negative: only the order of a range is checked
    ranges_ok = range_validator("forward", "yaw_rate", low=-math.inf)


class CommandVelocity(Perturbation):
    """Draws the episode's command from the given values or ``[low, high]`` ranges and hands
    it to the env through ``env.set_command(model, data, forward, yaw_rate)``, after the env's
    own reset (which writes its default command). The command is part of the task, so the
    env's success rule judges the episode against the drawn one."""

    kind = "command_velocity"
    stage = "state"
    Params = CommandVelocityParams

    def start(self, ctx: EpisodeContext) -> tuple[float, float]:
        set_command = getattr(ctx.env, "set_command", None)
        if not callable(set_command):
            raise ValueError(f"command_velocity: env {ctx.env.name!r} takes no velocity command (it has no "
                             "set_command(model, data, forward, yaw_rate) method); remove command_velocity "
                             "from this scenario or give the env a command")
        forward, yaw_rate = draw(self.params.forward, ctx.rng), draw(self.params.yaw_rate, ctx.rng)
        set_command(ctx.model, ctx.data, forward, yaw_rate)
        return forward, yaw_rate
