"""What an environment is to simgate: a MuJoCo model plus the rules of one task.

An env module subclasses :class:`MujocoEnv` and registers a factory through
``simgate_register_envs``. The engine owns the loop; the env only answers questions about a
``(model, data)`` pair it is handed, so one env object serves every episode of a case and the
same rules work for the reference and the batched engine.

Each per-step rule has one implementation, over rows (``observe_rows``, ``ctrl_rows``,
``terminated_rows``, ``reward_rows``, ``signal_rows``); its per-episode form (``observe``, ...)
is that rule on a one-row view of the episode's MjData (:class:`OneRow`). The reference engine
asks the per-episode form, the batched engine the row rule for all its live episodes at once:
the same code on the same numbers, so the two engines cannot drift apart by a last bit, whatever
kernels numpy or BLAS pick on a CPU. An env defining a rule both ways is refused when its class
is defined.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from simgate.errors import InputError

if TYPE_CHECKING:  # mujoco is imported at run time only, never at collection
    import mujoco

#: each per-step rule's per-episode form and the row rule it is derived from
ROW_RULES = {
    "observe": "observe_rows",
    "apply_action": "ctrl_rows",
    "terminated": "terminated_rows",
    "reward": "reward_rows",
    "signal_values": "signal_rows",
}


class OneRow:
    """One MjData seen as a batch of one: each field as a ``(1, ...)`` array.

    Array fields are views of the MjData, so writing into one (``rows.userdata[0, 2] = t``)
    writes the simulation's state; assigning a field (``rows.userdata = u``, how a row rule
    that keeps state writes it back) writes row 0 into the MjData. Scalars (``time``) become
    ``(1,)`` copies, read-only in effect. Works on anything with MjData's attribute names (the
    batched engine's per-row views, a recorder).
    """

    __slots__ = ("_data",)

    def __init__(self, data):
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str):
        return np.asarray(getattr(self._data, name))[None]

    def __setattr__(self, name: str, value) -> None:
        getattr(self._data, name)[...] = np.asarray(value)[0]


def _defined_by(cls: type, name: str) -> str:
    """The class of ``cls``'s MRO whose ``name`` it uses."""
    return next(base.__qualname__ for base in cls.__mro__ if name in vars(base))


class MujocoEnv:
    """A task on a MuJoCo model.

    What an env writes:

    * *required*: ``reset``, ``observe_rows`` (or, in an older plugin, ``observe``), and the
      model (``xml_path`` or ``build_model``);
    * the per-step rules it needs, each once, over rows: ``ctrl_rows`` (action -> ctrl; default:
      the action is the control vector), ``terminated_rows`` (default: never), ``reward_rows``
      (default 0), ``signal_rows`` (for ``signals``). The per-episode forms ``observe``,
      ``apply_action``, ``terminated``, ``reward`` and ``signal_values`` are derived here and not
      overridden. An env whose rule cannot be written over rows (it calls a MuJoCo function on
      the MjData, reads contacts) writes the per-episode form instead, and only it: the batched
      engine then asks that rule row by row (or, for fields a batch row lacks, the reference
      engine runs the case). Defining both forms of one rule is a TypeError at class definition;
      a subclass that replaces an inherited row rule by a per-episode one sets the row rule back
      to ``MujocoEnv``'s (``terminated_rows = MujocoEnv.terminated_rows``);
    * the end-of-episode rules ``succeeded`` and ``progress``, per episode: both engines call them
      once per episode, on that episode's model and data;
    * optional descriptions: ``observation_groups``, ``task_feasibility``, ``signals``,
      ``neutral_action`` (the action of the default pose, when it is not zeros),
      ``joint_limit_exclude``, ...

    When each is called, with which model: ``reset`` once per episode on its MjData (model-stage
    perturbations already applied, ``mj_forward`` follows). After each control step, in this
    order: ``reward``, ``signal_values`` (when ``signals``), ``terminated``; ``observe`` and
    ``apply_action`` around the policy call. The reference engine calls the per-episode forms
    with the episode's own (possibly perturbed) model. The batched engine calls the row rules
    once for all its live episodes with the *nominal* model, not each episode's perturbed copy
    (every copy has the nominal's layout, so addresses and names agree): a row rule may read from
    ``model`` only what no perturbation edits (addresses, sizes, ``actuator_ctrlrange``), never
    masses, gear, friction or the like. Rules that write state (a success latch) write it to
    ``data`` (``userdata``), never to the env object: one env serves every episode and every lane
    thread at once.

    A row rule's ``data`` gives MjData's fields as ``(n, ...)`` arrays, one row per simulation.
    Everything a rule computes for a row must depend on that row alone and be computed the same
    way for one row as for many: elementwise numpy arithmetic and reductions over the last axis
    (``np.sqrt(np.sum(v * v, axis=-1))``), never a BLAS-dispatched call whose kernel and summation
    order depend on the shape it is given (``np.linalg.norm`` without ``axis``, ``@``, ``np.dot``,
    ``np.matmul``, ``np.einsum``).
    """

    #: registry name, e.g. ``"balancebot"``
    name: ClassVar[str] = ""
    #: policy calls per simulated second
    control_hz: ClassVar[float] = 50.0
    observation_size: ClassVar[int] = 0
    action_size: ClassVar[int] = 0
    #: what ``progress`` counts; "m" (distance travelled) makes cost of transport meaningful
    progress_unit: ClassVar[str] = ""
    #: names of per-step signals the env measures (e.g. ``velocity_error``); the engines average
    #: each over the control steps an episode runs and report it as metric ``signal[name]``
    signals: ClassVar[tuple[str, ...]] = ()
    #: the MJCF file, if the model is one: then build_model and build_spec need no code
    xml_path: ClassVar[Path | None] = None
    #: joints the joint-limit failure mode ignores: joints that rest on a stop in the robot's
    #: home pose (a wrist folded against its limit) would otherwise label every failure
    #: ``joint_limit``. Both engines leave them out of the at-stops share; a name that is not a
    #: joint of the model stops the case with the closest joint name.
    joint_limit_exclude: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for episode, rows in ROW_RULES.items():
            if getattr(cls, episode) is not getattr(MujocoEnv, episode) and \
                    getattr(cls, rows) is not getattr(MujocoEnv, rows):
                raise TypeError(
                    f"env class {cls.__module__}.{cls.__qualname__} has two implementations of one rule: "
                    f"{episode} (defined in {_defined_by(cls, episode)}) and {rows} (defined in "
                    f"{_defined_by(cls, rows)}); the reference engine would ask one and the batched engine the "
                    f"other, and they can disagree in the last bit. Define only {rows} (its per-episode form is "
                    f"derived from it); if the rule cannot be computed over rows, define only {episode} and set "
                    f"{rows} = MujocoEnv.{rows} in the class")

    # -- model -------------------------------------------------------------------------------
    def build_model(self) -> mujoco.MjModel:
        """*Required* unless ``xml_path`` is set. The nominal model; perturbations edit
        per-episode copies of it."""
        if self.xml_path is None:
            raise NotImplementedError(f"env {self.name!r}: set xml_path or override build_model")
        import mujoco

        return mujoco.MjModel.from_xml_path(str(self.xml_path))

    def build_spec(self) -> mujoco.MjSpec | None:
        """The editable model, for perturbations that change its structure (terrain): the MJCF
        at ``xml_path``. None (no xml_path) makes such perturbations unavailable for this env."""
        if self.xml_path is None:
            return None
        import mujoco

        return mujoco.MjSpec.from_file(str(self.xml_path))

    def frame_skip(self, model: mujoco.MjModel) -> int:
        """Physics steps per control step."""
        return frame_skip_for(self.control_hz, model.opt.timestep, self.name)

    # -- episode -----------------------------------------------------------------------------
    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        """*Required.* Write the initial state into ``data`` drawing only from ``rng``.

        ``data`` is fresh (``mj_resetData`` already applied); the engine calls ``mj_forward``
        afterwards.
        """
        raise NotImplementedError

    def succeeded(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        """Whether the task counts as achieved at the end of the horizon."""
        return True

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Task progress in task units (metres travelled, fraction reached, ...)."""
        return 0.0

    def task_feasibility(self, model: mujoco.MjModel, rng: np.random.Generator) -> float | None:
        """The share of this env's tasks (as its reset draws them) that any policy could achieve on
        ``model``, e.g. targets within reach: an upper bound on the success rate, so an impossible
        scenario is named as such instead of blamed on the policy. None (the default): unknown.
        Computed once per case, drawing only from ``rng``."""
        return None

    # -- per-step rules, over rows --------------------------------------------------------------
    # ``data``: MjData's fields as ``(n, ...)`` arrays, one row per simulation (see the class
    # docstring for what a rule may read and how it computes).
    def observe_rows(self, model: mujoco.MjModel, data) -> np.ndarray:
        """*Required* (or, in an older plugin, ``observe``). The observations, float64
        ``(n, observation_size)``."""
        raise NotImplementedError(f"env {self.name!r}: define observe_rows")

    def ctrl_rows(self, model: mujoco.MjModel, data, actions: np.ndarray) -> np.ndarray:
        """The ``ctrl`` of every row for policy actions ``(n, action_size)``: ``(n, nu)``.
        Default: the action is the control vector."""
        return actions

    def terminated_rows(self, model: mujoco.MjModel, data) -> list[str | None]:
        """The failure that ends each row's episode now (e.g. ``"fell"``), or None to go on.
        Default: never. A NaN state is the engine's divergence check's to call, not a failure."""
        return [None] * len(data.time)

    def reward_rows(self, model: mujoco.MjModel, data) -> np.ndarray:
        """Reward of every row after a control step, ``(n,)``; summed into the episode return.
        Default 0."""
        return np.zeros(len(data.time))

    def signal_rows(self, model: mujoco.MjModel, data) -> np.ndarray:
        """The ``signals`` of every row after a control step, in their order: ``(n, len(signals))``."""
        return np.zeros((len(data.time), len(self.signals)))

    # -- the command at rest ---------------------------------------------------------------------
    def neutral_action(self, model: mujoco.MjModel) -> np.ndarray:
        """The action that holds the robot's default pose: what a driver sends before any
        command arrives (an actuation delay's command until the first one is due). Default:
        zeros, right for an action that is an offset from the default pose; an env whose action
        is normalised to the joint range (where zero means mid-range) returns the action of its
        default pose."""
        return np.zeros(self.action_size)

    def idle_ctrl(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """The ``ctrl`` the env's mapping gives for ``neutral_action``, leaving the episode as it
        was: ``data.ctrl`` and ``data.userdata`` are restored, since a mapping may keep
        per-episode state in ``userdata`` (an action filter) that this probe must not advance."""
        ctrl, userdata = data.ctrl.copy(), data.userdata.copy()
        try:
            self.apply_action(model, data, self.neutral_action(model))
            return data.ctrl.copy()
        finally:
            data.ctrl[:] = ctrl
            data.userdata[:] = userdata

    # -- the same rules per episode: derived, not overridden ----------------------------------
    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """``observe_rows`` of this one simulation."""
        return self.observe_rows(model, OneRow(data))[0]

    def apply_action(self, model: mujoco.MjModel, data: mujoco.MjData, action: np.ndarray) -> None:
        """Write ``ctrl_rows`` of this action into ``data.ctrl``."""
        actions = np.asarray(action, dtype=np.float64).reshape(1, -1)
        data.ctrl[:] = np.asarray(self.ctrl_rows(model, OneRow(data), actions))[0]

    def terminated(self, model: mujoco.MjModel, data: mujoco.MjData) -> str | None:
        """``terminated_rows`` of this one simulation."""
        return self.terminated_rows(model, OneRow(data))[0]

    def reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """``reward_rows`` of this one simulation."""
        return float(self.reward_rows(model, OneRow(data))[0])

    def signal_values(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """``signal_rows`` of this one simulation."""
        return np.asarray(self.signal_rows(model, OneRow(data)), dtype=np.float64)[0]

    # -- description -------------------------------------------------------------------------
    def observation_groups(self) -> dict[str, list[int]]:
        """Named channel groups of the observation (e.g. ``imu``, ``encoders``) for
        observation perturbations. Default: one group ``all``."""
        return {"all": list(range(self.observation_size))}

    def actuator_names(self, model: mujoco.MjModel) -> list[str]:
        """Labels for per-actuator torque metrics: the driven joint's name where there is one."""
        import mujoco

        names = []
        for i in range(model.nu):
            label = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i)
            if model.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT:
                joint = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, model.actuator_trnid[i, 0])
                label = joint or label
            names.append(label or f"actuator{i}")
        return names


def frame_skip_for(control_hz: float, timestep: float, who: str) -> int:
    """Physics steps per control step; the control period must be a whole number of them."""
    steps = round(1.0 / (control_hz * timestep))
    if steps < 1 or abs(steps * timestep * control_hz - 1.0) > 1e-9:
        raise InputError(f"{who}: a control rate of {control_hz:g} Hz is not a whole number of physics "
                         f"steps of {timestep:g} s; choose a rate that divides {1 / timestep:g} Hz")
    return steps


def row_rule(env: MujocoEnv, rule: str):
    """The env's implementation of a per-step rule over rows (a bound ``*_rows`` method), or
    None when the env writes that rule per episode: then the batched engine asks it row by row."""
    if getattr(type(env), rule) is not getattr(MujocoEnv, rule):
        return None
    return getattr(env, ROW_RULES[rule])
