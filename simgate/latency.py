"""Inference latency of a policy: a measurement on this machine, not a statistic of episodes.

What a robot's control loop pays per policy call: batch 1, warm (the first calls, which allocate
and page in, are discarded), one CPU thread (the ONNX and TorchScript loaders already run one
intra-op thread), on observations the policy really sees in the case. The timing is not seeded
and depends on the machine and its load: two runs give close, not equal, numbers. It is
therefore never cached with the episodes and its comparison with a limit is a plain PASS / FAIL
on the measured quantiles, with no confidence bound.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

#: calls timed (after the warm-up); p99 of 3000 calls rests on its 30 slowest
CALLS = 3000
#: calls discarded first: allocation, page faults, lazy initialisation of the runtime
WARMUP = 200
#: episodes whose observations are replayed to the policy
EPISODES = 2


@dataclasses.dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    max_ms: float
    calls: int
    warmup: int
    observations: int  # distinct observation rows the calls cycled through

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def measure(policy, observations: np.ndarray, calls: int | None = None, warmup: int | None = None) -> Latency:
    """Time ``policy.act`` on single rows of ``observations`` (cycled in order), batch 1
    (default: :data:`CALLS` timed after :data:`WARMUP` discarded)."""
    calls = CALLS if calls is None else calls
    warmup = WARMUP if warmup is None else warmup
    obs = np.asarray(observations, dtype=np.float64)
    if obs.ndim != 2 or len(obs) == 0:
        raise ValueError(f"latency needs observation rows (n, size), received shape {obs.shape}")
    rows = [obs[i:i + 1].copy() for i in range(len(obs))]
    clock = time.perf_counter_ns
    for i in range(warmup):
        policy.act(rows[i % len(rows)])
    times = np.empty(calls)
    for i in range(calls):
        row = rows[i % len(rows)]
        start = clock()
        policy.act(row)
        times[i] = clock() - start
    ms = times / 1e6
    return Latency(float(np.quantile(ms, 0.5)), float(np.quantile(ms, 0.99)), float(ms.max()), calls, warmup, len(rows))


def case_observations(case, env, policy, perturbations, action_size: int, episodes: int | None = None) -> np.ndarray:
    """The observations ``policy`` receives in the first ``episodes`` episodes of ``case`` (after
    the case's observation perturbations), recorded on the reference engine."""
    from simgate.engine.reference import ReferenceEngine

    episodes = EPISODES if episodes is None else episodes
    seen: list[np.ndarray] = []

    class Recording:
        def act(self, obs):
            seen.append(np.array(obs, dtype=np.float64))
            return policy.act(obs)

    engine = ReferenceEngine(env, Recording(), perturbations, action_size)
    engine.run(case, range(min(episodes, case.episodes)))
    if not seen:
        raise ValueError(f"case {case.id}: no policy call in its first episodes, so no observation to time the policy on")
    return np.concatenate(seen, axis=0)
