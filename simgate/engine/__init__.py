"""Engines advance the episodes of a case and return Rollouts; the reference engine is the oracle."""

from __future__ import annotations

import os

ENGINES = ("auto", "batched", "reference")


#: environment variable fixing the batched engine's threads per process (a shared machine, a benchmark)
THREADS_VAR = "SIMGATE_ENGINE_THREADS"


def threads_per_worker() -> int:
    """Engine threads for this process: ``SIMGATE_ENGINE_THREADS`` if set, else the cores shared
    among xdist workers, at least one. Results never depend on it, only the wall time does."""
    fixed = os.environ.get(THREADS_VAR, "").strip()
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ValueError(f"{THREADS_VAR} should be a whole number ≥ 1, received {fixed!r}")
        return int(fixed)
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
