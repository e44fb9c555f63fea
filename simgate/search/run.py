"""The search of one case: the budget split over its stages, and the dict it reports.

Stages, in order, each with a fixed share of ``budget`` episodes (what a stage leaves unspent
goes to the next ones; the total never exceeds the budget):

1. boundary    per axis, the others at nominal: adaptive levels (boundary.plan_levels)
2. joint       space-filling (scrambled Sobol) over the whole box, then proposals where the
               risk model fitted on everything so far is unsure (design.focused)
3. heldout     a uniform sample the risk model never saw: its AUC
4. sensitivity a Saltelli design: Sobol first- and total-order indices of success and torque
5. certify     the envelope's covering design, judged family-wise (certify.sequential)
6. counterexamples  failing rows inside the envelope (others at nominal), shrunk toward
               nominal with hypothesis (simgate.search.counterexamples)
7. confirm     each crossing boundary of stage 1 checked on fresh seeds, the others at nominal:
               an exact sequential test (simgate.search.confirm); last, so it also gets what
               the counterexamples left and no later stage can run on its seeds

Every random choice comes from a Generator seeded from ``seed`` and the stage's name, and every
stage runs its rows as whole batches, so the same case gives the same dict bit for bit whatever
the process, the worker count or the cache held. Each stage uses its own block of episode
indices (``STAGE_INDEX``), so no two stages share a seed.
"""

from __future__ import annotations

import math

import numpy as np

from simgate.search import boundary, certify, confirm, design, risk, sensitivity
from simgate.search.counterexamples import find_and_shrink
from simgate.search.design import stage_rng

#: shares of the budget, in stage order; whatever a stage leaves goes on to the later ones
SHARES = {"boundary": 0.45, "joint": 0.13, "heldout": 0.06, "sensitivity": 0.05, "certify": 0.20,
          "counterexamples": 0.03, "confirm": 0.08}
#: of the boundary stage, the coarse pass on every axis; the rest refines the axes that cross
COARSE = 0.3
#: episodes of an axis' coarse pass below which it is not run (two per level of eight)
MIN_COARSE = 16
#: first episode index of each stage's rows (a row's seed follows from its index)
STAGE_INDEX = {"boundary": 0, "joint": 10_000_000, "heldout": 20_000_000, "sensitivity": 30_000_000,
               "certify": 40_000_000, "counterexamples": 50_000_000, "confirm": 60_000_000}
#: in the confirm stage, each axis' block of indices (as the boundary stage's), and within it
#: where its failing side's episodes start (its safe side's at 0)
AXIS_BLOCK, FAILING_SIDE = 1_000_000, 500_000


def quota(stage: str, budget: int) -> int:
    """Episodes ``stage`` is sure of (its share; what earlier stages leave may add to it)."""
    return int(math.floor(SHARES[stage] * budget))


def least_budget(stage: str, episodes: int) -> int:
    """The smallest budget whose ``stage`` quota holds ``episodes``."""
    budget = max(1, math.ceil(episodes / SHARES[stage]))
    while quota(stage, budget) < episodes:  # float rounding either way: settle on the exact one
        budget += 1
    while budget > 1 and quota(stage, budget - 1) >= episodes:
        budget -= 1
    return budget


class _Log:
    """Every row the search ran, by stage (for counterexamples and the report), and the episodes
    each stage used: the search's one count of its budget (a row new to the search is one
    episode, whether the cache held it or not; a repeated row costs nothing). The evaluator
    behind it counts nothing of the budget."""

    def __init__(self, space, evaluate, budget: int):
        self.space, self.evaluate, self.budget = space, evaluate, budget
        self.X: list[np.ndarray] = []
        self.index: list[int] = []
        self.success: list[bool] = []
        self.mode: list[str] = []
        self.stage: list[str] = []
        self.used: dict[str, int] = {}  # rows new to the search, per stage (a repeat costs nothing)
        self.seen: set[tuple] = set()

    @property
    def total(self) -> int:
        return sum(self.used.values())

    def left(self) -> int:
        return self.budget - self.total

    def costs(self, x, index: int) -> int:
        """Episodes a row would use: 0 once the search has run it."""
        return 0 if tuple(float(v) for v in x) + (int(index),) in self.seen else 1

    def __call__(self, stage: str, X, indices):
        X = self.space.snap(np.asarray(X, dtype=float).reshape(-1, self.space.d))
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        keys = [tuple(float(v) for v in x) + (int(i),) for x, i in zip(X, indices)]
        new = [k for k in dict.fromkeys(keys) if k not in self.seen]
        if len(new) > self.left():
            raise RuntimeError(f"search stage {stage} asked for {len(new)} episodes with {self.left()} left")
        out = self.evaluate(X, indices)
        self.seen.update(new)
        self.used[stage] = self.used.get(stage, 0) + len(new)
        self.X.extend(X)
        self.index.extend(int(i) for i in indices)
        self.success.extend(bool(s) for s in out.success)
        self.mode.extend(out.mode)
        self.stage.extend([stage] * len(X))
        return out


def run_search(space, evaluate, seed: int, replay=None, shrink: bool = True) -> dict:
    """The search dict (the ``search`` field of a case's record). ``evaluate``: an
    :data:`simgate.search.evaluate.Evaluate`; ``replay(params, index) -> str``: the command
    that replays a row (for the counterexamples)."""

    log = _Log(space, evaluate, space.budget)
    budget, d = space.budget, space.d
    carried = 0

    def allowance(stage: str) -> int:
        return min(quota(stage, budget) + carried, log.left())

    # 1. per-axis boundaries, the other axes at nominal: a coarse pass on every axis, then the
    #    rest on the axes whose crossing is in the range (one that holds or fails everywhere on
    #    the coarse pass is settled, and its share goes where the boundary is)
    share = allowance("boundary")
    # at least two episodes per coarse level where the stage can afford it (a small budget)
    each = max(int(COARSE * share) // d, min(MIN_COARSE, share // d))
    coarse = {j: _axis_boundary(space, log, j, each, STAGE_INDEX["boundary"] + j * 1_000_000, rounds=1)
              for j in range(d)}
    open_axes = [j for j, plan in coarse.items() if plan is not None and plan.boundary.status == "crosses"]
    plans = dict(coarse)
    for k, j in enumerate(open_axes):
        left = share - log.used.get("boundary", 0)
        plans[j] = _axis_boundary(space, log, j, left // (len(open_axes) - k), 0, prior=coarse[j])
    per_axis = {space.axes[j].name: _plan_dict(plans[j]) for j in range(d)}
    carried = share - log.used.get("boundary", 0)

    # 2. joint: space-filling, then focused where the model is unsure
    share = allowance("joint")
    first = share // 2
    rng = stage_rng(seed, "joint")

    U = design.space_filling(first, d, rng)
    log("joint", space.to_units(U), STAGE_INDEX["joint"] + np.arange(len(U)))
    model = _fit(space, log, risk)
    if model is not None and share - first > 0:
        V = design.focused(model, share - first, d, rng, space.target)
        log("joint", space.to_units(V), STAGE_INDEX["joint"] + len(U) + np.arange(len(V)))
    carried = share - log.used.get("joint", 0)
    model = _fit(space, log, risk)

    # 3. held-out uniform sample: the risk model's AUC on points it never saw
    share = allowance("heldout")
    H = stage_rng(seed, "heldout").random((share, d))
    held = log("heldout", space.to_units(H), STAGE_INDEX["heldout"] + np.arange(share)) if share else None
    auc = None
    if model is not None and held is not None and share:
        auc = risk.auc(held.success, model.predict(space.to_unit(space.to_units(H))))
    carried = share - log.used.get("heldout", 0)

    # 4. sensitivity (Saltelli): success and torque on episodes; success also on the risk model
    share = allowance("sensitivity")
    sensitivity = _sensitivity(space, log, share, seed)
    carried = share - log.used.get("sensitivity", 0)
    if model is not None:
        sensitivity = {**(sensitivity or {}), "success_episodes": (sensitivity or {}).get("success"),
                       "success": _model_sensitivity(space, log, model, seed)}

    # 5. certification of the envelope (the later stages' shares are kept for them)
    share = max(0, min(allowance("certify"), log.left() - quota("counterexamples", budget) - quota("confirm", budget)))
    certificate = _certify(space, log, share)
    carried = share - log.used.get("certify", 0)

    # 6. counterexamples inside the envelope, shrunk toward nominal (the confirmation's share kept)
    counterexamples = []
    if shrink:
        counterexamples = find_and_shrink(space, log, max(0, log.left() - quota("confirm", budget)), seed, replay,
                                          STAGE_INDEX["counterexamples"])

    # 7. each crossing boundary on fresh seeds: everything left
    for name, record in _confirm(space, log, per_axis, log.left()).items():
        per_axis[name]["confirmation"] = record
    joint = [i for i, s in enumerate(log.stage) if s == "joint"]
    out = {**space.header(),
           "boundary": {"per_axis": per_axis,
                        "joint": {"model": model.to_dict() if model is not None else None,
                                  "points": [[float(v) for v in log.X[i]] for i in joint],
                                  "success": [log.success[i] for i in joint]}},
           "auc": auc, "auc_points": int(log.used.get("heldout", 0)),
           "sensitivity": sensitivity, "counterexamples": counterexamples, "certificate": certificate,
           "episodes": {**{stage: int(log.used.get(stage, 0)) for stage in SHARES}, "total": int(log.total)},
           "budget": budget}
    return plain(out)


def _axis_boundary(space, log, j: int, budget: int, index_start: int, rounds: int = 3, prior=None):
    """The axis' AxisPlan (boundary.plan_levels), or None when ``budget`` cannot fit anything."""

    axis = space.axes[j]
    if prior is None and budget < MIN_COARSE:  # fewer than two episodes per level of the first pass
        return None

    def evaluate_axis(levels, indices):
        X = np.repeat(space.nominal[None], len(levels), axis=0)
        X[:, j] = levels
        return log("boundary", X, indices).success

    return boundary.plan_levels(evaluate_axis, axis.low, axis.high, budget, space.target, rounds=rounds,
                                step=axis.step, index_start=index_start, prior=prior)


def _confirm(space, log, per_axis: dict, share: int) -> dict[str, dict]:
    """Each axis' confirmation record (simgate.search.confirm): its claim tested on episodes of
    the confirm stage's own indices, the other axes at nominal as in the boundary stage."""
    claims = {j: confirm.bracket(per_axis[axis.name], axis.low, axis.high, axis.step) for j, axis in enumerate(space.axes)}
    axes = np.array([j for j, pair in claims.items() if pair is not None], dtype=int)
    out = {axis.name: {"status": confirm.NOT_APPLICABLE} for axis in space.axes}
    if not axes.size:
        return out
    X = np.repeat(space.nominal[None], 2 * len(axes), axis=0)
    X[np.arange(2 * len(axes)), np.repeat(axes, 2)] = [x for j in axes for x in claims[j]]
    x = space.snap(X)[np.arange(2 * len(axes)), np.repeat(axes, 2)].reshape(-1, 2)  # the levels that run
    starts = STAGE_INDEX["confirm"] + axes[:, None] * AXIS_BLOCK + np.array([0, FAILING_SIDE])[None, :]

    def evaluate(claim, side, nth):
        rows = np.repeat(space.nominal[None], len(claim), axis=0)
        rows[np.arange(len(claim)), axes[claim]] = x[claim, side]
        return log("confirm", rows, starts[claim, side] + nth).success

    # at most FAILING_SIDE episodes in all, so a side's indices never reach the next side's block
    # (a search's whole budget is at most 1,000,000: the cap never binds in practice)
    k, n, lower, upper, sides, status, _ = confirm.sequential(evaluate, len(axes), min(share, FAILING_SIDE),
                                                              space.target, space.alpha)
    level, against = confirm.levels(space.alpha, len(axes))
    for c, j in enumerate(axes):
        out[space.axes[j].name] = {
            "status": str(status[c]), "episodes": int(n[c].sum()),
            **{name: {"x": float(x[c, s]), "successes": int(k[c, s]), "trials": int(n[c, s]),
                      "lower": float(lower[c, s]), "upper": float(upper[c, s]), "status": str(sides[c, s])}
               for s, name in enumerate(confirm.SIDES)},
            "level": level, "level_contradict": against, "alpha": space.alpha, "family": int(len(axes)),
            "looks": confirm.LOOKS, "margin": confirm.MARGIN,
            "seeds": f"disjoint: episode indices from {int(starts[c, 0]):,} (safe) and {int(starts[c, 1]):,} (failing), "
                     "no other stage's"}
    return out


def _plan_dict(plan) -> dict:
    if plan is None:
        return {"estimate": None, "low": None, "high": None, "status": "not_run", "levels": [], "successes": [],
                "trials": []}
    return plan.to_dict()


def _fit(space, log, risk):
    """The risk model on every boundary and joint row so far, or None with one class only."""
    rows = [i for i, s in enumerate(log.stage) if s in ("boundary", "joint")]
    if not rows:
        return None
    y = np.array([log.success[i] for i in rows], dtype=float)
    if y.min() == y.max():
        return None
    U = space.to_unit(np.array([log.X[i] for i in rows]))
    return risk.RiskModel.fit(U, y, names=space.names)


def _sensitivity(space, log, share: int, seed: int) -> dict | None:
    d = space.d
    n = share // (d + 2)
    if n < 8:
        return None
    A, B, AB = sensitivity.saltelli_design(n, d, stage_rng(seed, "sensitivity"))
    U = np.concatenate([A, B, AB.reshape(-1, d)])
    # row k of A, B and every AB_i shares an episode index: the same seed, so the difference
    # between f(A) and f(AB_i) is the axis' effect, not the seeds'
    indices = STAGE_INDEX["sensitivity"] + np.tile(np.arange(n), d + 2)
    out = log("sensitivity", space.to_units(U), indices)
    result = {}
    for name, values in (("success", out.success.astype(float)), ("torque", out.torque)):
        fA, fB, fAB = values[:n], values[n:2 * n], values[2 * n:].reshape(d, n)
        found = sensitivity.indices(fA, fB, fAB, stage_rng(seed, f"sensitivity-{name}"))
        result[name] = {"first": {space.axes[i].name: v for i, v in found["first"].items()},
                        "total": {space.axes[i].name: v for i, v in found["total"].items()},
                        "variance": found.get("variance"), "n": n, "method": "episodes"}
    return result


#: Saltelli base rows on the risk model (it costs no episode) and refits for its interval
MODEL_ROWS, REFITS = 4096, 40


def _model_sensitivity(space, log, model, seed: int) -> dict:
    """Sobol indices of the fitted success probability p(u) (the model whose AUC is reported).

    A binary outcome's indices from a few hundred episodes are mostly seed noise (a Saltelli
    design of n rows costs n (d + 2) episodes, and first-order estimates of a 0/1 outcome need
    thousands), while the model, fitted on every boundary and joint row, is cheap to evaluate:
    the same estimators on MODEL_ROWS rows of it, the interval from REFITS refits on rows
    resampled with replacement (the model's own uncertainty, not the estimator's)."""

    d = space.d
    A, B, AB = sensitivity.saltelli_design(MODEL_ROWS, d, stage_rng(seed, "sensitivity-model"))

    def indices_of(m) -> tuple[np.ndarray, np.ndarray]:
        return sensitivity.estimates(m.predict(A), m.predict(B), m.predict(AB.reshape(-1, d)).reshape(d, MODEL_ROWS))

    first, total = indices_of(model)
    rows = [i for i, s in enumerate(log.stage) if s in ("boundary", "joint")]
    U = space.to_unit(np.array([log.X[i] for i in rows]))
    y = np.array([log.success[i] for i in rows], dtype=float)
    rng = stage_rng(seed, "sensitivity-refits")
    firsts, totals = [], []
    for _ in range(REFITS):
        pick = rng.integers(0, len(rows), len(rows))
        if y[pick].min() == y[pick].max():
            continue
        f, t = indices_of(risk.RiskModel.fit(U[pick], y[pick], l2=model.l2, names=space.names))
        firsts.append(f)
        totals.append(t)
    q = [2.5, 97.5]
    f_lo, f_hi = np.percentile(firsts, q, axis=0) if firsts else (first, first)
    t_lo, t_hi = np.percentile(totals, q, axis=0) if totals else (total, total)
    name = [axis.name for axis in space.axes]
    return {"first": {name[i]: [float(first[i]), float(f_lo[i]), float(f_hi[i])] for i in range(d)},
            "total": {name[i]: [float(total[i]), float(t_lo[i]), float(t_hi[i])] for i in range(d)},
            "n": MODEL_ROWS, "method": "risk model",
            "refits": len(firsts)}


def _certify(space, log, share: int) -> dict:
    U = certify.covering_design(space.envelope_unit, space.levels)
    X = space.to_units(U)
    U = np.unique(space.to_unit(X), axis=0)  # snapping can merge two design points
    X = space.to_units(U)
    m = len(X)

    def evaluate_points(points, indices):
        return log("certify", X[points], STAGE_INDEX["certify"] + np.asarray(indices)).success

    cert, k, n, _ = certify.sequential(evaluate_points, m, share, space.target, space.alpha)
    lower, upper = np.asarray(cert.lower, dtype=float), np.asarray(cert.upper, dtype=float)
    return {"status": cert.status, "alpha": space.alpha, "level": cert.level,
            "level_pass": getattr(cert, "level_pass", None),
            "points": [{"params": space.params(X[i]), "successes": int(k[i]), "trials": int(n[i]),
                        "lower": float(lower[i]), "upper": float(upper[i])} for i in range(m)]}


def plain(value):
    """Plain JSON: numpy scalars to Python, NaN and infinities to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
