"""Can the arm reach its targets at all? Per target, and as shares of the zone (0: impossible).

``reachable``: for each target, whether some joint configuration within the joint limits puts
the fingertip within the success tolerance, found by damped least-squares IK from several
random starts. Over targets drawn as the env draws them at reset, its mean (the env's
``reachability``) bounds the success rate any policy can reach on the zone; per episode it says
which failures no policy could have avoided. IK that finds a configuration proves the target
reachable; a target no start converges to is counted unreachable, so the share is a lower bound
(tests/test_arm7.py compares it with the reach sphere: within 0.03).

``configuration_share``: the share of uniformly random joint configurations whose fingertip
lies inside the zone (the issue's wording). 0 means no sampled configuration touches the zone;
it is small even for a good zone (the zone is a small part of the workspace), so it tells
"impossible" from "possible" but says nothing about how much of the zone is reachable.

Neither looks at collisions with the floor or torque limits: the zones lie above the floor and
the arm holds itself outstretched with a third of its shoulder torque to spare.
"""

from __future__ import annotations

import numpy as np

from envs.arm7.kinematics import HingeChain

#: IK from up to this many random starts per target: one start ends stuck on a joint limit for
#: ~11 % of the nominal zone's targets (all reachable), independently per start, so eight leave
#: ~1e-8 of them unfound (measured: 4 starts missed 4 of 20,000)
RESTARTS = 8
ITERATIONS = 60
#: damping of the IK's least squares (m): bounds the step near singular configurations
IK_DAMPING = 0.05
#: an iteration that closes less than this (m) has converged to the closest point it can reach
STALLED = 1e-6
#: largest joint step per IK iteration (rad): keeps the linearisation honest
MAX_STEP = 0.5


def solve_ik(chain: HingeChain, targets: np.ndarray, starts: np.ndarray, tolerance: float) -> np.ndarray:
    """Which of ``targets`` ``(n, 3)`` clamped DLS IK from ``starts`` ``(n, dof)`` brings the
    fingertip within ``tolerance`` of: ``(n,)`` bool. A row stops once it is there."""
    q, reached = starts.copy(), np.zeros(len(targets), dtype=bool)
    active, previous = np.arange(len(targets)), np.full(len(targets), np.inf)
    eye = np.eye(3) * IK_DAMPING**2
    for _ in range(ITERATIONS + 1):
        tip, jac = chain.site(q, jacobian=True)
        error = targets[active] - tip
        distance = np.linalg.norm(error, axis=1)
        there = distance <= tolerance
        reached[active[there]] = True
        # a row that no longer gets closer sits at the nearest point it can reach from here
        keep = ~there & (distance < previous - STALLED)
        active, q, jac, error, previous = active[keep], q[keep], jac[keep], error[keep], distance[keep]
        if not active.size:
            break
        step = np.einsum("nji,nj->ni", jac, np.linalg.solve(jac @ jac.transpose(0, 2, 1) + eye, error[..., None])[..., 0])
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(norm, 1e-12))
        q = np.clip(q + step, chain.lower, chain.upper)
    return reached


def reachable(chain: HingeChain, targets: np.ndarray, tolerance: float, rng: np.random.Generator) -> np.ndarray:
    """Which of ``targets`` ``(n, 3)`` (world frame) IK brings within ``tolerance``: ``(n,)``
    bool. Targets not reached from one random start get another, up to ``RESTARTS``."""
    found = np.zeros(len(targets), dtype=bool)
    open_ = np.arange(len(targets))
    for _ in range(RESTARTS):
        starts = rng.uniform(chain.lower, chain.upper, (len(open_), chain.dof))
        hit = solve_ik(chain, targets[open_], starts, tolerance)
        found[open_[hit]] = True
        open_ = open_[~hit]
        if not open_.size:
            break
    return found


def configuration_share(chain: HingeChain, low: np.ndarray, high: np.ndarray, samples: int,
                        rng: np.random.Generator) -> float:
    """The share of uniform configurations whose fingertip lies in the world box [low, high]."""
    tip = chain.site(rng.uniform(chain.lower, chain.upper, (samples, chain.dof)))
    return float(np.mean(np.all((tip >= low) & (tip <= high), axis=1)))
