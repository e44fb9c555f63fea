"""What an environment is to simgate: a MuJoCo model plus the rules of one task.

An env module subclasses :class:`MujocoEnv` and registers a factory through
``simgate_register_envs``. The engine owns the loop; the env only answers questions about a
``(model, data)`` pair it is handed, so one env object serves every episode of a case and the
same rules work for the reference and the batched engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:  # mujoco is imported at run time only, never at collection
    import mujoco


class MujocoEnv:
    """A task on a MuJoCo model. Subclasses override the methods marked *required*."""

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

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """*Required.* The observation vector (float64, ``observation_size``)."""
        raise NotImplementedError

    def apply_action(self, model: mujoco.MjModel, data: mujoco.MjData, action: np.ndarray) -> None:
        """Map a policy action onto ``data.ctrl``. Default: the action is the control vector."""
        data.ctrl[:] = action

    def terminated(self, model: mujoco.MjModel, data: mujoco.MjData) -> str | None:
        """The failure that ends the episode now (e.g. ``"fell"``), or None to go on."""
        return None

    def succeeded(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        """Whether the task counts as achieved at the end of the horizon."""
        return True

    def reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Reward after a control step; summed into the episode return. Default 0."""
        return 0.0

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Task progress in task units (metres travelled, fraction reached, ...)."""
        return 0.0

    def signal_values(self, model: mujoco.MjModel, data: mujoco.MjData):
        """The ``signals`` after a control step, in their order (float each)."""
        return ()

    def task_feasibility(self, model: mujoco.MjModel, rng: np.random.Generator) -> float | None:
        """The share of this env's tasks (as its reset draws them) that any policy could achieve on
        ``model``, e.g. targets within reach: an upper bound on the success rate, so an impossible
        scenario is named as such instead of blamed on the policy. None (the default): unknown.
        Computed once per case, drawing only from ``rng``."""
        return None

    # -- many simulations at once (optional) ---------------------------------------------------
    # The batched engine asks these first. ``data`` gives MjData's fields as ``(n, ...)`` arrays,
    # one row per simulation, all with ``model``'s layout. Each must equal its per-simulation
    # method row by row, bit for bit (tests/test_batched_engine.py compares the engines); None
    # (the default) makes the engine ask row by row.
    def observe_rows(self, model: mujoco.MjModel, data) -> np.ndarray | None:
        """``observe`` of every row: ``(n, observation_size)``."""
        return None

    def ctrl_rows(self, model: mujoco.MjModel, data, actions: np.ndarray) -> np.ndarray | None:
        """The ``ctrl`` that ``apply_action`` writes for every row: ``(n, nu)``. The default
        knows its own ``apply_action`` (the action is the control vector); an env that overrides
        ``apply_action`` gives this too, or is asked row by row."""
        return actions if type(self).apply_action is MujocoEnv.apply_action else None

    def terminated_rows(self, model: mujoco.MjModel, data) -> list[str | None] | None:
        """``terminated`` of every row."""
        return None

    def reward_rows(self, model: mujoco.MjModel, data) -> np.ndarray | None:
        """``reward`` of every row: ``(n,)``."""
        return None

    def signal_rows(self, model: mujoco.MjModel, data) -> np.ndarray | None:
        """``signal_values`` of every row: ``(n, len(signals))``."""
        return None

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
        raise ValueError(f"{who}: a control rate of {control_hz:g} Hz is not a whole number of physics "
                         f"steps of {timestep:g} s; choose a rate that divides {1 / timestep:g} Hz")
    return steps
