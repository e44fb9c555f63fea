"""Where to run episodes: a space-filling start, then proposals where the risk model is unsure.

Everything is in the unit cube [0, 1]^d; `Space.to_units` maps to axis units. Every random
choice comes from the Generator passed in, so the same Generator state gives the same design;
:func:`stage_rng` gives each stage of a search its own, from the case's seed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from simgate.seeds import derived_rng


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """The Generator of one stage of a search (simgate.search.run), from the search's seed
    (:func:`simgate.seeds.derived_rng`, the one seed derivation)."""
    return derived_rng("simgate-search", seed, stage)


def _sobol(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """The first n points of a scrambled Sobol sequence (drawn as 2^m >= n, so scipy keeps quiet)."""
    from scipy.stats import qmc

    if n <= 0:
        return np.zeros((0, d))
    m = max(0, math.ceil(math.log2(n)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = qmc.Sobol(d, scramble=True, seed=rng).random_base2(m)
    return points[:n]


def space_filling(n: int, d: int, rng: np.random.Generator, method: str = "sobol") -> np.ndarray:
    """(n, d) points in [0, 1]^d: scrambled Sobol (default) or a Latin hypercube."""
    if method == "lhs":
        from scipy.stats import qmc

        return qmc.LatinHypercube(d, seed=rng).random(n) if n > 0 else np.zeros((0, d))
    if method != "sobol":
        raise ValueError(f"space_filling: method {method!r} is not 'sobol' or 'lhs'")
    return _sobol(n, d, rng)


def effective_band(target: float, band=(0.3, 0.7), half_width: float = 0.2) -> tuple[float, float]:
    """The band of predicted success where proposals go: `band`, widened to hold target ± half_width.

    ROBOGATE samples the 30-70 % band; our boundary is where success crosses the target (often
    0.75-0.9), so the band is stretched to contain it, or most proposals would miss the boundary.
    """
    lo = min(band[0], target - half_width)
    hi = max(band[1], target + half_width)
    return max(lo, 0.01), min(hi, 0.99)


def focused(model, n: int, d: int, rng: np.random.Generator, target: float, band=(0.3, 0.7),
            oversample: int = 16) -> np.ndarray:
    """(n, d) proposals where the fitted risk model is uncertain or near the target.

    Candidates are a scrambled Sobol set of about oversample * n points. Those whose predicted
    success lies in `effective_band(target, band)` are kept, and n of them drawn without
    replacement (uniform over the band region, so proposals stay spread along the boundary
    instead of piling on one spot). If fewer than n fall in the band, all are taken and the rest
    are the candidates closest to the target on the logit scale.
    """
    if n <= 0:
        return np.zeros((0, d))
    candidates = _sobol(max(oversample * n, 64), d, rng)
    p = np.clip(np.asarray(model.predict(candidates), dtype=float), 1e-9, 1 - 1e-9)
    lo, hi = effective_band(target, band)
    inside = np.flatnonzero((p >= lo) & (p <= hi))
    if inside.size >= n:
        chosen = np.sort(rng.choice(inside, size=n, replace=False))
        return candidates[chosen]
    t = min(max(target, 1e-6), 1 - 1e-6)
    distance = np.abs(np.log(p / (1 - p)) - math.log(t / (1 - t)))
    distance[inside] = -1.0  # the in-band ones first
    order = np.argsort(distance, kind="stable")[:n]
    return candidates[np.sort(order)]
