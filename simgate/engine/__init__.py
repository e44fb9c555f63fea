"""Engines advance the episodes of a case and return Rollouts; the reference engine is the oracle."""

from __future__ import annotations

import os

ENGINES = ("auto", "batched", "reference")


def threads_per_worker() -> int:
    """Batch threads for this process: the cores shared among xdist workers, at least one."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers)


def make_engine(env, policy, perturbations, action_size: int, choice: str = "auto"):
    """The batched engine where the env allows it (``auto``), else the reference engine.

    Both give bit-identical results; ``reference`` forces the plain loop, ``batched`` refuses an
    env that cannot be batched instead of falling back.
    """
    from simgate.engine.batched import BatchedEngine, NotBatchable
    from simgate.engine.reference import ReferenceEngine

    if choice == "reference":
        return ReferenceEngine(env, policy, perturbations, action_size)
    try:
        return BatchedEngine(env, policy, perturbations, action_size, nthread=threads_per_worker())
    except NotBatchable:
        if choice == "batched":
            raise
        return ReferenceEngine(env, policy, perturbations, action_size)
