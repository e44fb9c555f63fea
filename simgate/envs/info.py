"""What configure-time checks may know about an env: names and rates from its nominal model.

Built once per env on the controller (not in xdist workers), so a perturbation naming a body
that does not exist stops the run before any worker starts.
"""

from __future__ import annotations

import dataclasses

from simgate.envs.factory import env_label, registered_env
from simgate.errors import CodeError, Party, SimgateError, blaming
from simgate.names import did_you_mean


@dataclasses.dataclass(frozen=True)
class EnvInfo:
    name: str
    timestep: float
    control_hz: float
    frame_skip: int
    bodies: tuple[str, ...]
    geoms: tuple[str, ...]
    joints: tuple[str, ...]
    actuators: tuple[str, ...]
    observation_size: int
    action_size: int
    observation_groups: dict | None  # None: a YAML robot's, known once a policy's contract binds it
    #: per-actuator labels as torque thresholds name them (``env.actuator_names``, what the
    #: verdict matches a per-joint limit against)
    actuator_labels: tuple[str, ...] = ()

    @property
    def control_dt(self) -> float:
        return self.frame_skip * self.timestep


def describe(env) -> EnvInfo:
    import mujoco

    model = env.build_model()

    def names(kind, count):
        return tuple(mujoco.mj_id2name(model, kind, i) or "" for i in range(count))

    return EnvInfo(
        name=env.name, timestep=float(model.opt.timestep), control_hz=float(env.control_hz),
        frame_skip=env.frame_skip(model), bodies=names(mujoco.mjtObj.mjOBJ_BODY, model.nbody),
        geoms=names(mujoco.mjtObj.mjOBJ_GEOM, model.ngeom), joints=names(mujoco.mjtObj.mjOBJ_JOINT, model.njnt),
        actuators=names(mujoco.mjtObj.mjOBJ_ACTUATOR, model.nu), observation_size=env.observation_size,
        action_size=env.action_size, observation_groups=_groups(env),
        actuator_labels=tuple(env.actuator_names(model)),
    )


def _groups(env) -> dict | None:
    """The env's observation groups; None for a YAML robot not bound to a policy's contract (its
    groups are the contract's: checked per policy, simgate.robots.configure)."""
    if getattr(env, "for_policy", None) is not None and getattr(env, "contract", None) is None:
        return None
    return env.observation_groups()


def unknown_names(wanted, available, what: str, param: str) -> list[tuple[str, str]]:
    """``(param, message)`` for each name in ``wanted`` missing from ``available`` (None:
    not known here, checked where it is)."""

    if available is None:
        return []
    valid = [n for n in available if n]
    return [(param, f"no {what} named {name!r} in this model{did_you_mean(name, valid)}")
            for name in (wanted or []) if name not in valid]


class EnvInfoCache:
    """``cache(name) -> EnvInfo``, each env built once; a broken env is named with its plugin."""

    def __init__(self, envs):
        self.envs = envs
        self.known: dict[str, EnvInfo] = {}

    def __call__(self, name: str) -> EnvInfo:
        """Raises SimgateError when the env's own code (its factory, its model, its methods)
        cannot build or describe it; a fault in :func:`describe` itself propagates."""
        if name not in self.known:
            try:
                env = registered_env(self.envs, name)
                with blaming(Party(env_label(self.envs, name), env)):
                    self.known[name] = describe(env)
            except CodeError as exc:
                raise SimgateError(f"env {name!r} (registered by plugin {self.envs.owner(name)}) cannot be built: "
                                   f"{type(exc.error).__name__}: {exc.error}") from None
        return self.known[name]
