"""What reaches the physics at each physics step of a control step, planned before it runs.

Physics-rate perturbations (latency, motor dropout, pushes) are schedules: they write ``ctrl``
and ``xfrc_applied`` from what was commanded and from their episode state, never from the
evolving physics. So a control step's inputs can be planned up front, and every engine applies
the same plan: the reference engine one ``mj_step`` at a time, the batched engine in one
``Batch.rollout`` call.
"""

from __future__ import annotations

import numpy as np


class SubstepInputs:
    """The part of MjData a physics-rate hook may write for one physics step."""

    __slots__ = ("ctrl", "xfrc_applied")

    def __init__(self, ctrl: np.ndarray, xfrc_applied: np.ndarray):
        self.ctrl = ctrl
        self.xfrc_applied = xfrc_applied


def physics_hooks(staged) -> list:
    """The ``(perturbation, state)`` pairs with physics-rate work, in the order they run:
    action stage before force stage; within the action stage, hooks that replace the whole
    command (latency) before hooks that edit part of it (a dead motor)."""
    hooks = [(p, s) for p, s in staged if p.stage in ("action", "force")]
    return sorted(hooks, key=lambda ps: (ps[0].stage != "action", not getattr(ps[0], "replaces_ctrl", False)))


def plan(hooks, model, command: np.ndarray, xfrc: np.ndarray, frame_skip: int, first: int):
    """``(ctrl, xfrc)`` for each of the ``frame_skip`` physics steps from physics step ``first``:
    arrays ``(frame_skip, nu)`` and ``(frame_skip, nbody, 6)``. Every step starts from the
    command (so a hook's edit lasts one step) and from the previous step's applied forces
    (``xfrc_applied`` persists, as in MjData).

    When every hook has ``physics_block`` the control step is planned one call per hook instead
    of one per hook and physics step: the same arrays, bit for bit, under the rule stated at
    :meth:`simgate.perturbations.base.Perturbation.physics_block`."""
    ctrl = np.empty((frame_skip, command.shape[0]))
    forces = np.empty((frame_skip,) + xfrc.shape)
    ctrl[:] = command
    forces[:] = xfrc
    plan_rows([(hooks, model, ctrl, forces)], first)
    return ctrl, forces


def plan_rows(rows, first: int) -> None:
    """:func:`plan` for several episodes, in place: ``rows`` holds, per episode, ``(hooks,
    model, ctrl, forces)`` with ``ctrl`` ``(frame_skip, nu)`` and ``forces`` ``(frame_skip,
    nbody, 6)`` already holding its command and its applied forces at every physics step (the
    batched engine writes those for all its episodes at once); each episode's hooks then write
    their plan into them. The hooks' API is per episode (each has its own state and model), so
    they are called per episode; the arrays they write are the engine's own, never copies."""
    for hooks, model, ctrl, forces in rows:
        if all(has_block(p) for p, _ in hooks):
            for p, s in hooks:
                p.physics_block(model, ctrl, forces, s, first)
        else:
            _per_step(hooks, model, ctrl, forces, first)


_BLOCK: dict[type, bool] = {}


def has_block(hook) -> bool:
    """Whether ``hook``'s class plans whole blocks: its most derived definition of the physics
    hooks includes ``physics_block``. A plugin subclassing a shipped kind to change ``physics``
    alone must not inherit a block form that no longer matches it."""
    cls = type(hook)
    known = _BLOCK.get(cls)
    if known is None:
        known = False
        for c in cls.__mro__:
            if "physics_block" in c.__dict__:
                known = c.__dict__["physics_block"] is not None
                break
            if "physics" in c.__dict__:
                break
        _BLOCK[cls] = known
    return known


def plan_per_step(hooks, model, command: np.ndarray, xfrc: np.ndarray, frame_skip: int, first: int):
    """:func:`plan` one physics step at a time whatever the hooks define: the reference
    semantics a block hook is held to (tests compare the two)."""
    ctrl = np.empty((frame_skip, command.shape[0]))
    forces = np.empty((frame_skip,) + xfrc.shape)
    ctrl[:] = command
    forces[:] = xfrc
    _per_step(hooks, model, ctrl, forces, first)
    return ctrl, forces


def _per_step(hooks, model, ctrl: np.ndarray, forces: np.ndarray, first: int) -> None:
    """Each physics step from the command (already in ``ctrl``) and the previous step's applied
    forces, then each hook's ``physics`` on it."""
    for k in range(ctrl.shape[0]):
        if k:
            forces[k] = forces[k - 1]
        view = SubstepInputs(ctrl[k], forces[k])
        for p, s in hooks:
            p.physics(model, view, s, first + k)
