"""Episode seeds: a pure function of what the episode is, never of where or when it runs."""

from __future__ import annotations

import hashlib
import json

import numpy as np


def episode_entropy(master_seed: int, scenario: str, point: dict, episode: int) -> int:
    """128 bits from sha256 of the episode's identity (policy deliberately excluded)."""
    key = json.dumps([master_seed, scenario, point, episode], sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little")


def episode_rngs(entropy: int, n_perturbations: int) -> tuple[np.random.Generator, list[np.random.Generator]]:
    """The reset generator and one generator per perturbation (by its position in the scenario)."""
    root = np.random.SeedSequence(entropy)
    reset_seq, pert_seq = root.spawn(2)
    return np.random.default_rng(reset_seq), [np.random.default_rng(s) for s in pert_seq.spawn(n_perturbations)]


def case_rng(master_seed: int, scenario: str, point: dict, purpose: str) -> np.random.Generator:
    """A generator for case-level work (a feasibility estimate), apart from every episode's."""
    key = json.dumps([master_seed, scenario, point, purpose], sort_keys=True, separators=(",", ":"))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little"))
