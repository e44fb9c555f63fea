"""Inference latency of a policy: a measurement on this machine, not a statistic of episodes.

What a robot's control loop pays per policy call: batch 1, warm (the first calls, which allocate
and page in, are discarded), one CPU thread (the ONNX and TorchScript loaders already run one
intra-op thread), on observations the policy really sees in the case. The timing is not seeded
and depends on the machine and its load: two runs give close, not equal, numbers (each
observation slot is timed several times and its fastest time kept, so a neighbour's load does
not count as the policy's; see :data:`REPEATS`). It is
therefore never cached with the episodes and its comparison with a limit is a plain PASS / FAIL
on the measured quantiles, with no confidence bound.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from simgate.engine.reference import ReferenceEngine
from simgate.errors import InputError

#: calls timed (after the warm-up), in REPEATS passes over CALLS // REPEATS observation slots
CALLS = 3000
#: passes: each slot's time is the fastest of its passes. On a shared machine (xdist workers, CI
#: neighbours) the scheduler preempts some calls for milliseconds, which is the machine's
#: load, not the policy's cost; a slot preempted in every pass is rare, while a policy that is
#: slow (or sleeps) on an observation is slow in every pass
REPEATS = 3
#: calls discarded first: allocation, page faults, lazy initialisation of the runtime
WARMUP = 200
#: episodes whose observations are replayed to the policy
EPISODES = 2


@dataclasses.dataclass(frozen=True)
class Latency:
    p50_ms: float  # over the observation slots, each the fastest of its passes
    p99_ms: float
    max_ms: float
    calls: int
    warmup: int
    observations: int  # distinct observation rows the calls cycled through
    repeats: int = 1
    raw_p99_ms: float = float("nan")  # p99 over every call, the machine's interruptions included

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def measure(policy, observations: np.ndarray, calls: int | None = None, warmup: int | None = None,
            repeats: int | None = None) -> Latency:
    """Time ``policy.act`` on single rows of ``observations`` (cycled in order), batch 1, wall
    clock (so time the policy spends waiting counts): ``calls // repeats`` slots, timed in
    ``repeats`` passes, each slot's time the fastest of its passes (defaults: :data:`CALLS`,
    :data:`REPEATS`, after :data:`WARMUP` calls discarded)."""
    calls = CALLS if calls is None else calls
    warmup = WARMUP if warmup is None else warmup
    repeats = REPEATS if repeats is None else repeats
    obs = np.asarray(observations, dtype=np.float64)
    if obs.ndim != 2 or len(obs) == 0:
        raise ValueError(f"latency needs observation rows (n, size), received shape {obs.shape}")
    rows = [obs[i:i + 1].copy() for i in range(len(obs))]
    clock = time.perf_counter_ns
    for i in range(warmup):
        policy.act(rows[i % len(rows)])
    slots = max(1, calls // repeats)
    times = np.empty((repeats, slots))
    for r in range(repeats):
        for i in range(slots):
            row = rows[i % len(rows)]
            start = clock()
            policy.act(row)
            times[r, i] = clock() - start
    ms = times / 1e6
    best = ms.min(axis=0)
    return Latency(float(np.quantile(best, 0.5)), float(np.quantile(best, 0.99)), float(best.max()), slots * repeats,
                   warmup, min(len(rows), slots), repeats, float(np.quantile(ms, 0.99)))


def case_observations(rig, episodes: int | None = None) -> np.ndarray:
    """The observations the rig's policy (:class:`simgate.rig.CaseRig`) receives in the first
    ``episodes`` episodes of its case (after the case's observation perturbations), recorded on
    the reference engine with the rig's env and perturbations."""

    case, policy = rig.case, rig.policy
    episodes = EPISODES if episodes is None else episodes
    seen: list[np.ndarray] = []

    class Recording:
        def act(self, obs):
            seen.append(np.array(obs, dtype=np.float64))
            return policy.act(obs)

    engine = ReferenceEngine(rig.env, Recording(), rig.perturbations, rig.action_size,
                             hard_limits=getattr(case, "hard_limits", None))
    engine.run(case, range(min(episodes, case.episodes)))
    if not seen:
        raise InputError(f"case {case.id}: no policy call in its first episodes, so no observation to time the policy on")
    return np.concatenate(seen, axis=0)
