"""The benign arm of a perturbed case: the same policy on the same seeds with the perturbation
switched off, and what the perturbation costs.

Each episode's reset draws come from a generator of its own, apart from the perturbations'
(:func:`simgate.seeds.episode_rngs`), so episode i of the benign arm starts where episode i of
the perturbed case starts: the pairs are common random numbers, and the cost is a paired
difference of two success rates. Its interval is Newcombe's hybrid score interval for a paired
difference (Newcombe 1998, "Improved confidence intervals for the difference between binomial
proportions based on paired data", method 10): Wilson intervals of the two rates, combined with
the pairs' correlation. It is a description, never a requirement: it blocks nothing.
"""

from __future__ import annotations

import dataclasses
import math

#: two-sided 95 %
Z95 = 1.959963984540054


def has_arm(case) -> bool:
    """Whether ``case`` runs a benign arm: it perturbs something, and its scenario did not switch it off."""
    return bool(case.perturbations) and getattr(case, "benign", True)


def benign_case(case):
    """The case of ``case``'s benign arm: the same seeds (scenario, point, seed, horizon) with no
    perturbation; its own id, so nothing keyed by case id mixes the two."""
    return dataclasses.replace(case, id=f"{case.id}~benign", perturbations=(), search=None)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(both: int, first_only: int, second_only: int, neither: int,
                      z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high) of rate1 − rate2 from n pairs: ``both`` succeed in both arms,
    ``first_only`` in the first only, ``second_only`` in the second only, ``neither``."""
    n = both + first_only + second_only + neither
    if n == 0:
        return 0.0, -1.0, 1.0
    k1, k2 = both + first_only, both + second_only
    p1, p2 = k1 / n, k2 / n
    l1, u1 = wilson(k1, n, z)
    l2, u2 = wilson(k2, n, z)
    product = k1 * (n - k1) * k2 * (n - k2)
    # the pairs' correlation as Newcombe corrects it (and Altman's "Statistics with confidence"
    # works it): a positive cross-product less n/2, none if that is negative; a negative one as it is
    cross = both * neither - first_only * second_only
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = corrected / math.sqrt(product) if product > 0 else 0.0
    diff = p1 - p2
    low = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = diff + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return diff, max(-1.0, low), min(1.0, high)


def cost(benign_success, perturbed_success) -> dict:
    """What the perturbation costs one policy, from its episodes with and without it (paired by
    index, both in the same order)."""
    pairs = list(zip((bool(s) for s in benign_success), (bool(s) for s in perturbed_success)))
    both = sum(b and p for b, p in pairs)
    lost = sum(b and not p for b, p in pairs)  # succeeded without the perturbation only
    gained = sum(p and not b for b, p in pairs)
    neither = len(pairs) - both - lost - gained
    drop, low, high = paired_difference(both, lost, gained, neither)
    return {"n": len(pairs), "benign_successes": both + lost, "perturbed_successes": both + gained,
            "both": both, "lost": lost, "gained": gained, "neither": neither,
            "drop": drop, "low": low, "high": high, "level": 0.95,
            "method": "paired difference, Newcombe's hybrid score interval (method 10)"}


def describe(arm: dict) -> str:
    """``"the perturbation costs 31.0 points (95% interval 22.0 to 40.0): 138/150 without it, 92/150 with it"``."""
    return (f"the perturbation costs {100 * arm['drop']:.1f} points (95% interval {100 * arm['low']:.1f} to "
            f"{100 * arm['high']:.1f}): {arm['benign_successes']}/{arm['n']} without it, "
            f"{arm['perturbed_successes']}/{arm['n']} with it, same seeds")
