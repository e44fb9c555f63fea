"""Sobol sensitivity indices from a Saltelli design, with bootstrap intervals.

Design (Saltelli 2010): two independent n x d matrices A and B (one scrambled Sobol set of
dimension 2d, split in halves, so the pair is space-filling) and, for each axis i, AB_i = A with
column i taken from B. That is n (d + 2) evaluations.

Estimators, with V the variance of f over the n A- and n B-rows together:
  first order  S_i  = mean( f(B) * (f(AB_i) - f(A)) ) / V          (Saltelli et al. 2010, eq. b)
  total order  ST_i = mean( (f(A) - f(AB_i))^2 ) / (2 V)            (Jansen 1999)
For a binary f (success) the same formulas apply: V = p(1 - p), and the indices split the
variance of the success indicator among the axes. Intervals: percentile bootstrap over the n
rows (A, B and every AB_i resampled together, which keeps their pairing), with a caller-given
Generator, so the same Generator gives the same intervals.
"""

from __future__ import annotations

import numpy as np

from simgate.search.design import space_filling


def saltelli_design(n: int, d: int, rng: np.random.Generator):
    """(A, B, AB): A and B (n, d); AB (d, n, d) with AB[i] = A but column i from B."""
    base = space_filling(n, 2 * d, rng)
    A, B = base[:, :d].copy(), base[:, d:].copy()
    AB = np.repeat(A[None, :, :], d, axis=0)
    for i in range(d):
        AB[i, :, i] = B[:, i]
    return A, B, AB


def _estimates(fA, fB, fAB):
    """First- and total-order estimates for every bootstrap row set at once.

    fA, fB: (..., n); fAB: (..., d, n). Returns (first, total, variance) with shapes (..., d).
    """
    both = np.concatenate([fA, fB], axis=-1)
    V = both.var(axis=-1)
    diff = fAB - fA[..., None, :]
    first = np.mean(fB[..., None, :] * diff, axis=-1)
    total = 0.5 * np.mean(diff * diff, axis=-1)
    safe = np.where(V > 0, V, 1.0)[..., None]
    zero = (V <= 0)[..., None]
    return np.where(zero, 0.0, first / safe), np.where(zero, 0.0, total / safe), V


def estimates(fA, fB, fAB) -> tuple[np.ndarray, np.ndarray]:
    """First- and total-order estimates per axis, without an interval (fA, fB: (n,); fAB: (d, n))."""
    first, total, _ = _estimates(np.asarray(fA, dtype=float), np.asarray(fB, dtype=float), np.asarray(fAB, dtype=float))
    return first, total


def indices(fA, fB, fAB, rng: np.random.Generator, confidence: float = 0.95,
            resamples: int = 500) -> dict:
    """{"first": {i: [est, lo, hi]}, "total": {i: [...]}, "variance": V, "n": n}.

    fA, fB: (n,); fAB: (d, n), the outcome (success as 0/1, or torque) on A, B and AB_i.
    When the outcome does not vary at all (V = 0: every episode succeeded, say) every index is
    0 with a 0-width interval: there is no variance for any axis to explain.
    """
    fA = np.asarray(fA, dtype=float)
    fB = np.asarray(fB, dtype=float)
    fAB = np.asarray(fAB, dtype=float)
    d, n = fAB.shape
    first, total, V = _estimates(fA, fB, fAB)
    rows = rng.integers(0, n, size=(resamples, n))
    bf, bt, _ = _estimates(fA[rows], fB[rows], np.transpose(fAB[:, rows], (1, 0, 2)))
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    f_lo, f_hi = np.percentile(bf, q, axis=0)
    t_lo, t_hi = np.percentile(bt, q, axis=0)
    return {
        "first": {i: [float(first[i]), float(f_lo[i]), float(f_hi[i])] for i in range(d)},
        "total": {i: [float(total[i]), float(t_lo[i]), float(t_hi[i])] for i in range(d)},
        "variance": float(V), "n": int(n), "confidence": confidence,
    }
