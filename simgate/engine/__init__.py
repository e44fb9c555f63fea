"""Engines advance the episodes of a case and return Rollouts; the reference engine is the oracle.

Words, used alike here, in :mod:`simgate.rig` and in :mod:`simgate.scaleout`:

- *engine*: what runs episodes (:class:`~simgate.engine.reference.ReferenceEngine`,
  :class:`~simgate.engine.batched.BatchedEngine`); a variable holding one is called ``engine``.
  The *runner* is :mod:`simgate.runner`, which evaluates a case; nothing else is called so.
- *episode*: one rollout of a case, by index; its world is drawn from the case's seed and index.
- *lane*: consecutive episodes of a case that the batched engine steps together, in one
  ``mujoco.batch.Batch`` and one closed loop; :func:`~simgate.engine.batched.lane_size` of the
  case's episodes, at most :data:`~simgate.engine.batched.LANE` (fixed by the case, never by
  threads or machines). The reference engine's lanes, for scheduling only, are
  ``simgate.scaleout.REFERENCE_LANE`` episodes.
- *rows*: the observations of one policy call, a lane's ``lane_size`` (a short last lane is
  padded): the policy's batch, fixed by the case, so a batch-dependent policy gives the same
  bits however the lanes are spread.
- *block*: control steps the batched engine records before its bookkeeping
  (:data:`~simgate.engine.batched.BLOCK`).
- *task*: one Ray remote call of :mod:`simgate.scaleout`, computing whole lanes of one case
  and policy.
- *step*: a control step (one policy call); *physics step* (or substep): one ``mj_step``,
  ``frame_skip`` of them per control step.

Whose error: an engine calls the policy once per control step and ends only the episodes a
failing call touches (``policy_error``, the message naming the policy); whatever else the env's
rules or the perturbations raise leaves ``run`` as it is, and the caller that knows the case
(:class:`simgate.rig.CaseRig`) names whose code it was (:func:`simgate.errors.blaming`).
"""

from __future__ import annotations

import os

from simgate.engine.batched import BatchedEngine, NotBatchable
from simgate.engine.reference import ReferenceEngine
from simgate.errors import InputError

ENGINES = ("auto", "batched", "reference")


#: environment variable fixing the batched engine's threads per process (a shared machine, a benchmark)
THREADS_VAR = "SIMGATE_ENGINE_THREADS"


def threads_per_worker() -> int:
    """Engine threads for this process: ``SIMGATE_ENGINE_THREADS`` if set, else the cores shared
    among xdist workers, at least one. Results never depend on it, only the wall time does."""
    fixed = os.environ.get(THREADS_VAR, "").strip()
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise InputError(f"{THREADS_VAR} should be a whole number ≥ 1, received {fixed!r}")
        return int(fixed)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers)


def make_engine(env, policy, perturbations, action_size: int, choice: str = "auto", policy_name: str | None = None,
                hard_limits: dict | None = None):
    """The batched engine where the env allows it (``auto``), else the reference engine.

    Both give bit-identical results; ``reference`` forces the plain loop, ``batched`` refuses an
    env that cannot be batched instead of falling back. ``policy_name`` names the policy in the
    message of an episode its call ended; ``hard_limits``: the case's (a contact-force limit
    adds its sensors to the model).
    """

    if choice == "reference":
        return ReferenceEngine(env, policy, perturbations, action_size, policy_name, hard_limits=hard_limits)
    try:
        return BatchedEngine(env, policy, perturbations, action_size, nthread=threads_per_worker(),
                             policy_name=policy_name, hard_limits=hard_limits)
    except NotBatchable:
        if choice == "batched":
            raise
        return ReferenceEngine(env, policy, perturbations, action_size, policy_name, hard_limits=hard_limits)
