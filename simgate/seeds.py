"""Seeds: a pure function of what is seeded, never of where or when it runs.

One derivation (:func:`derived_seed`) gives every seed simgate uses: an episode's, a case's
feasibility estimate, a search's, each stage of a search and each counterexample's shrink. Every
random draw takes a :class:`numpy.random.Generator` made from one (:func:`derived_rng`); an int
seed is handed out only where an outside library wants one (hypothesis' shrinker).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np


def derived_seed(*identity) -> int:
    """128 bits from sha256 of ``identity`` (JSON-encodable parts: numbers, strings, dicts, in
    order; a dict's keys sorted). Equal identities give equal seeds in every process."""
    key = json.dumps(list(identity), sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little")


def derived_rng(*identity) -> np.random.Generator:
    """A Generator seeded by :func:`derived_seed` of ``identity``."""
    return np.random.default_rng(derived_seed(*identity))


def seed_identity(case) -> tuple[int, str, dict]:
    """(seed, scenario, point) an episode of ``case`` is seeded by: its own, or, for a pinned
    regression case (``case.replay``), the seeds of the case it pins, so its episodes are those."""
    pinned = getattr(case, "replay", None)
    if pinned:
        return case.seed, pinned["scenario"], pinned["point"]
    return case.seed, case.scenario, case.point


def episode_indices(case) -> list[int]:
    """The episodes a case runs: 0 .. episodes-1, or a pinned case's own list."""
    pinned = getattr(case, "replay", None)
    return list(pinned["episodes"]) if pinned else list(range(case.episodes))


def episode_entropy(master_seed: int, scenario: str, point: dict, episode: int) -> int:
    """128 bits from the episode's identity (policy deliberately excluded)."""
    return derived_seed(master_seed, scenario, point, episode)


def episode_rngs(entropy: int, n_perturbations: int) -> tuple[np.random.Generator, list[np.random.Generator]]:
    """The reset generator and one generator per perturbation (by its position in the scenario)."""
    root = np.random.SeedSequence(entropy)
    reset_seq, pert_seq = root.spawn(2)
    return np.random.default_rng(reset_seq), [np.random.default_rng(s) for s in pert_seq.spawn(n_perturbations)]


def case_rng(master_seed: int, scenario: str, point: dict, purpose: str) -> np.random.Generator:
    """A generator for case-level work (a feasibility estimate), apart from every episode's."""
    return derived_rng(master_seed, scenario, point, purpose)
