"""Rows (a point in axis units, an episode index) -> outcomes, on the case's engine.

Every row of one call runs in one ``engine.run``: on the batched engine, rows of one
``mujoco.batch`` Batch, each with its own model (``set_models``) and its own perturbation
instances for ``start`` (the row's params). The episode index picks the seed exactly as for a
fixed-point episode of the case, so a row is reproducible and replayable by (case, params, index).

Rows are cached per episode like every other episode, under a key that covers the row's params.
The Evaluator does not count the search's budget: the search's log (``simgate.search.run``) is
its one count, of every row new to the search whether the cache held it or not, so the count
(and every decision made on it) never depends on what the cache held. The Evaluator only
remembers each row's outcome (a repeated row is never run again) and says how many of its rows
were computed and how many read from the cache.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Callable

import numpy as np

from simgate.rig import CaseRig


@dataclasses.dataclass
class Outcome:
    success: np.ndarray  # bool (n,)
    torque: np.ndarray  # float (n,): mean |torque| over joints and physics steps
    mode: list[str]  # primary failure mode, or "success"


Evaluate = Callable[[np.ndarray, np.ndarray], Outcome]


class Evaluator:
    """An :data:`Evaluate` over a case's engine. ``classify(case, episode) -> mode``: the failure
    mode of a failed episode (the host's classifiers). The search's log counts its budget."""

    def __init__(self, case, engine, space, cache=None, classify=None, rig=None):
        self.case, self.engine, self.space = case, engine, space
        if rig is None:  # the engine and cache alone (a benchmark, a test): the rig they make

            rig = CaseRig(case, case.policy, engine.env, engine, cache)
        #: a :class:`simgate.rig.CaseRig` of this case: its ``episodes`` (cache, remote, engine,
        #: store; counted on the rig, mirrored here for this search) are the rows' episodes
        self.rig = rig
        self.classify = classify
        self.computed = 0  # rows new to this Evaluator that were simulated
        self.cached = 0  # rows new to this Evaluator that were read from the episode cache
        self.engines: Counter = Counter()
        self.memo: dict[tuple, tuple[bool, float, str]] = {}
        self.cache_note: str | None = rig.cache_note

    def key(self, x, index: int) -> tuple:
        return tuple(float(v) for v in x) + (int(index),)

    def __call__(self, X, indices) -> Outcome:
        X = self.space.snap(np.asarray(X, dtype=float).reshape(-1, self.space.d))
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) != len(X):
            raise ValueError(f"{len(X)} points but {len(indices)} episode indices")
        keys = [self.key(x, i) for x, i in zip(X, indices)]
        new = list(dict.fromkeys(k for k in keys if k not in self.memo))
        self._through_rig(new)
        rows = [self.memo[k] for k in keys]
        return Outcome(np.array([r[0] for r in rows], dtype=bool), np.array([r[1] for r in rows], dtype=float),
                       [r[2] for r in rows])

    def _through_rig(self, new: list) -> None:
        """The new rows' episodes from the rig (its counts updated there; mirrored here)."""
        if not new:
            return
        rig = self.rig
        before = (rig.computed, rig.cached, Counter(rig.engines))
        episodes = rig.episodes([key[-1] for key in new], [self.space.params(key[:-1]) for key in new])
        self.computed += rig.computed - before[0]
        self.cached += rig.cached - before[1]
        self.engines.update(rig.engines - before[2])
        self.cache_note = rig.cache_note
        for key, episode in zip(new, episodes):
            self._note(key, episode)

    def _note(self, key: tuple, episode) -> None:
        mode = "success"
        if not episode.success:
            mode = (self.classify(self.case, episode) if self.classify else None) or episode.terminated or "failed"
        self.memo[key] = (bool(episode.success), float(np.mean(episode.mean_abs_torque)), str(mode))
