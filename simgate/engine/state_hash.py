"""A 64-bit fingerprint of each simulation's integration state, for the determinism checks.

Both engines fingerprint every control step of every episode, so the function is vectorised
over rows: the batched engine hashes all live episodes of a step in a few numpy operations
instead of one ``hashlib`` call per episode. Every bit of every float counts (the state is read
as its raw 64-bit words), and a word's position counts too (each position has its own odd
multiplier), so swapping two values changes the fingerprint. Not cryptographic: it detects
accidental differences, which is all a determinism check needs.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_MULTIPLIERS: dict[int, np.ndarray] = {}


def _multipliers(size: int) -> np.ndarray:
    """Fixed odd multipliers, one per state position (a constant stream, never a seeded RNG)."""
    if size not in _MULTIPLIERS:
        index = np.arange(1, size + 1, dtype=np.uint64)
        _MULTIPLIERS[size] = _mix(index * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    return _MULTIPLIERS[size]


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: every input bit reaches every output bit (uint64, wrapping)."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def state_hashes(states: np.ndarray) -> np.ndarray:
    """``(n,)`` uint64 fingerprints of ``(n, k)`` float64 state rows.

    Each word is folded (its high half into its low half, so a change anywhere in it, the sign
    bit included, reaches its low bits), then the rows are summed with one odd multiplier per
    position in a single integer dot product (wrapping mod 2**64), and the sum is mixed."""
    words = np.ascontiguousarray(states, dtype=np.float64).view(np.uint64)
    folded = words ^ (words >> _S32)  # a fresh array: the state is not touched
    total = folded @ _multipliers(words.shape[1])
    total ^= np.uint64(words.shape[1])
    return _mix(total)
