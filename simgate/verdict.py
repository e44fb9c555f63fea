"""A case's requirements, each decided PASS / FAIL / INCONCLUSIVE with the numbers behind it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from simgate import stats
from simgate.registry import did_you_mean


#: what each requirement tests, for machines: reports and the promotion verdict select by kind,
#: never by the display name
SUCCESS_RATE, MEAN_TORQUE, PEAK_TORQUE, P95_TORQUE = "success_rate", "mean_torque", "peak_torque", "p95_torque"
MEAN_POWER, COST_OF_TRANSPORT, DETERMINISM, POLICY_ERRORS = "mean_power", "cost_of_transport", "determinism", "policy_errors"
NOT_WORSE, TORQUE_VS_BASELINE = "not_worse", "torque_vs_baseline"
#: findings against the promoted policy: one family, corrected together on the controller
REGRESSION_KINDS = (NOT_WORSE, TORQUE_VS_BASELINE)
KINDS = (SUCCESS_RATE, MEAN_TORQUE, PEAK_TORQUE, P95_TORQUE, MEAN_POWER, COST_OF_TRANSPORT, DETERMINISM,
         POLICY_ERRORS) + REGRESSION_KINDS


@dataclasses.dataclass(frozen=True)
class Requirement:
    kind: str  # one of KINDS
    name: str  # "success rate", "mean torque [wheel]", ... (for a person)
    outcome: str
    observed: str  # what was measured, for a person
    bound: str  # the confidence bound the decision rests on
    threshold: str  # what was required
    numbers: dict[str, Any]  # the same, for machines

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def evaluate(case, rollouts, repeats=None, decision=None) -> list[Requirement]:
    """Every requirement the case's thresholds ask for. ``repeats`` are re-runs of the first
    episodes, compared hash for hash when the scenario asks for determinism; ``decision`` is
    the sequential test's, for a sequential case."""
    th, alpha = case.thresholds, case.alpha
    out = []
    if decision is not None:
        out.append(sequential_requirement(case, decision))
    elif "min_success_rate" in th:
        out.append(success_requirement(rollouts, th["min_success_rate"], alpha))
    for key, label, test in (("max_mean_torque", "mean |torque|", _mean_torque), ("max_peak_torque", "peak |torque|", _peak_torque),
                             ("max_p95_torque", "p95 of mean |torque|", _p95_torque)):
        if key in th:
            for joint, limit in _per_joint(th[key], rollouts.joint_names):
                out.append(test(rollouts, joint, limit, alpha, label))
    for key, label, metric in (("max_mean_power", "mean power (W)", MEAN_POWER),
                               ("max_cost_of_transport", "cost of transport", COST_OF_TRANSPORT)):
        if key in th:
            out.append(_mean_metric(rollouts, metric, label, th[key], alpha))
    if th.get("deterministic"):
        out.append(determinism_requirement(rollouts, repeats or []))
    errors = policy_error_requirement(rollouts)
    if errors is not None:
        out.append(errors)
    return out


def policy_error_requirement(rollouts) -> Requirement | None:
    """An episode the policy could not finish (it raised, returned NaN or a wrong shape) measures
    nothing: its torque over the steps before the error is no evidence of anything. Such an episode
    fails the case outright, whatever the other requirements say about the episodes that ran."""
    from simgate.engine.rollouts import POLICY_ERROR

    failed = [e for e in rollouts.episodes if e.terminated == POLICY_ERROR]
    if not failed:
        return None
    first = failed[0]
    return Requirement(POLICY_ERRORS, "policy ran without error", stats.FAIL,
                       f"{len(failed)} of {rollouts.n} episodes ended in a policy error",
                       f"e.g. episode {first.index} at step {first.length}: {first.message}", "0 episodes",
                       {"episodes": len(failed), "n": rollouts.n, "first": first.index})


def overall(requirements: list[Requirement]) -> str:
    outcomes = {r.outcome for r in requirements}
    if stats.FAIL in outcomes:
        return stats.FAIL
    if stats.INCONCLUSIVE in outcomes:
        return stats.INCONCLUSIVE
    return stats.PASS


def success_requirement(rollouts, p0: float, alpha: float) -> Requirement:
    k, n = int(rollouts.column("success").sum()), rollouts.n
    r = stats.success_rate(k, n, p0, alpha)
    conf = f"{1 - alpha:.0%}"
    if r.outcome == stats.FAIL:
        bound = f"{conf} upper bound {r.upper:.3f} < {p0:g}"
    elif r.outcome == stats.PASS:
        bound = f"{conf} lower bound {r.lower:.3f} > {p0:g}"
    else:
        bound = f"{conf} interval [{r.lower:.3f}, {r.upper:.3f}] contains {p0:g}: needs more episodes"
    return Requirement(SUCCESS_RATE, "success rate", r.outcome, f"{k}/{n} ({k / n:.1%})" if n else "0/0", bound,
                       f"> {p0:g}", dataclasses.asdict(r))


def _mean_torque(rollouts, joint: int, limit: float, alpha: float, label: str) -> Requirement:
    x = np.array([e.mean_abs_torque[joint] for e in rollouts.episodes])
    r = stats.mean_below(x, limit, alpha)
    name = rollouts.joint_names[joint]
    return Requirement(MEAN_TORQUE, f"{label} [{name}]", r.outcome, f"{r.mean:.3f}", f"{1 - alpha:.0%} bounds [{r.lower:.3f}, {r.upper:.3f}]",
                       f"< {limit:g}", dataclasses.asdict(r))


def _p95_torque(rollouts, joint: int, limit: float, alpha: float, label: str) -> Requirement:
    """Order-statistic test of 'the 95th percentile is below the limit' (exact, distribution-free)."""
    from scipy.stats import quantile_test

    x = np.array([e.mean_abs_torque[joint] for e in rollouts.episodes])
    name = rollouts.joint_names[joint]
    if len(x) == 0:
        return Requirement(P95_TORQUE, f"{label} [{name}]", stats.INCONCLUSIVE, "no episodes", "-", f"< {limit:g}", {"n": 0})
    below = quantile_test(x, q=limit, p=0.95, alternative="less").pvalue
    above = quantile_test(x, q=limit, p=0.95, alternative="greater").pvalue
    outcome = stats.PASS if below <= alpha else stats.FAIL if above <= alpha else stats.INCONCLUSIVE
    note = " (fewer than 59 episodes cannot show it)" if len(x) < 59 and outcome == stats.INCONCLUSIVE else ""
    return Requirement(P95_TORQUE, f"{label} [{name}]", outcome, f"{np.quantile(x, 0.95):.4g} (sample p95 of {len(x)})",
                       f"order-statistic test p={below:.3g}{note}", f"< {limit:g}",
                       {"p_below": float(below), "p_above": float(above), "n": len(x), "limit": limit})


def _mean_metric(rollouts, metric: str, label: str, limit: float, alpha: float) -> Requirement:
    from simgate.metrics import effort

    x = getattr(effort, metric)(rollouts)
    x = x[np.isfinite(x)]
    r = stats.mean_below(x, limit, alpha)
    return Requirement(metric, label, r.outcome, f"{r.mean:.4g} over {r.n} episodes",
                       f"{1 - alpha:.0%} bounds [{r.lower:.4g}, {r.upper:.4g}]", f"< {limit:g}", dataclasses.asdict(r))


def _peak_torque(rollouts, joint: int, limit: float, alpha: float, label: str) -> Requirement:
    """A hard limit: one exceedance anywhere fails, no statistics needed."""
    peaks = np.array([e.peak_abs_torque[joint] for e in rollouts.episodes])
    worst = float(peaks.max()) if len(peaks) else 0.0
    over = int((peaks > limit).sum())
    outcome = stats.FAIL if over else stats.PASS
    name = rollouts.joint_names[joint]
    return Requirement(PEAK_TORQUE, f"{label} [{name}]", outcome, f"{worst:.3f} (max over {len(peaks)} episodes)",
                       f"{over} episode(s) above the limit", f"≤ {limit:g}",
                       {"max": worst, "limit": limit, "episodes_over": over})


def determinism_requirement(rollouts, repeats) -> Requirement:
    first = {e.index: e for e in rollouts.episodes}
    diffs = []
    for again in repeats:
        ref = first[again.index]
        if not ref.reproduced_by(again):
            n = min(ref.length, again.length)
            bad = np.nonzero(ref.step_hashes[:n] != again.step_hashes[:n])[0]
            diffs.append({"episode": again.index, "first_different_step": int(bad[0]) if len(bad) else n})
    outcome = stats.FAIL if diffs or not repeats else stats.PASS
    observed = f"{len(repeats) - len(diffs)}/{len(repeats)} re-run episodes identical"
    detail = "; ".join(f"episode {d['episode']} differs from step {d['first_different_step']}" for d in diffs)
    return Requirement(DETERMINISM, "determinism", outcome, observed, detail or "per-step state hashes equal",
                       "bit-identical", {"rerun": len(repeats), "different": diffs})


def _per_joint(limit, joint_names: list[str]):
    if not isinstance(limit, dict):
        return [(j, float(limit)) for j in range(len(joint_names))]
    out = []
    for name, value in limit.items():
        if name not in joint_names:
            raise ValueError(f"threshold names joint {name!r}, which has no actuator{did_you_mean(name, joint_names)}")
        out.append((joint_names.index(name), float(value)))
    return out


def sequential_requirement(case, decision) -> Requirement:
    """The sequential decision with the design's exact guarantee (dynamic programming)."""
    from simgate.runner import sequential_design
    from simgate.sequential import fixed_n, operating_characteristic

    design = sequential_design(case)
    at_p0, at_p1 = operating_characteristic(design, design.p0), operating_characteristic(design, design.p1)
    fixed = fixed_n(design.p0, design.p1, design.alpha, design.beta)
    outcome = decision.outcome if decision.outcome in (stats.PASS, stats.FAIL) else stats.INCONCLUSIVE
    guarantee = (f"{design.method}: exact false PASS {at_p0.pass_probability:.3f} at p={design.p0:g}, "
                 f"PASS {at_p1.pass_probability:.3f} at p={design.p1:g}, expected episodes {at_p1.expected_n:.0f} "
                 f"at p={design.p1:g} (fixed-size design: {fixed})")
    k, n = decision.successes, decision.n
    observed = f"{k}/{n} ({k / n:.1%}) after {n} episodes" if n else "0/0"
    if outcome == stats.INCONCLUSIVE:
        observed += f", undecided at the cap of {design.max_n}"
    numbers = {"method": design.method, "n": n, "successes": k, "statistic": decision.statistic,
               "p0": design.p0, "p1": design.p1, "alpha": design.alpha, "beta": design.beta, "max_n": design.max_n,
               "false_pass_at_p0": at_p0.pass_probability, "pass_at_p1": at_p1.pass_probability,
               "expected_n_at_p0": at_p0.expected_n, "expected_n_at_p1": at_p1.expected_n, "fixed_n": fixed}
    return Requirement(SUCCESS_RATE, "success rate", outcome, observed, f"{decision.threshold}; {guarantee}",
                       f"> {design.p0:g}", numbers)


def paired(case, baseline: str, base, cand) -> list[Requirement]:
    """Candidate against baseline on the same episodes. A requirement FAILs only on evidence of a
    regression beyond its margin (success rate down by more than ``regression_margin``, a joint's
    mean |torque| up by more than ``torque_regression_margin``); without that evidence it PASSes
    and says whether non-inferiority is shown or would need more episodes. The exact McNemar
    p-value of 'worse at all' goes to the cross-scenario alarms (Holm blocks, BH warns)."""
    from simgate import paired as tests
    from simgate.distributions import norm_isf

    th, alpha = case.thresholds, case.alpha
    b, c = base.column("success").astype(bool), cand.column("success").astype(bool)
    margin = th.get("regression_margin", 0.05)
    r = tests.compare_rates(b, c, margin)
    worse_by_margin = r.z_noninferior <= -norm_isf(alpha)
    shown = "non-inferiority shown" if r.p_noninferior <= alpha else "non-inferiority not shown (needs more episodes)"
    flag_paired = tests.episodes_to_flag(b, c, alpha, lambda x, y: tests.mcnemar_worse(int((x & ~y).sum()), int((~x & y).sum())))
    flag_unpaired = tests.episodes_to_flag(b, c, alpha, tests.unpaired_worse)
    out = [Requirement(
        NOT_WORSE, f"not worse than {baseline}", stats.FAIL if worse_by_margin else stats.PASS,
        f"{c.mean():.1%} vs {b.mean():.1%} on the same {r.n} episodes (baseline-only successes {r.n10}, candidate-only {r.n01})",
        f"{shown}: z={r.z_noninferior:.2f}, p={r.p_noninferior:.3g}; McNemar 'worse' p={r.p_worse:.3g}",
        f"difference > -{margin:g}",
        {**dataclasses.asdict(r), "baseline": baseline, "alpha": alpha, "noninferiority_shown": r.p_noninferior <= alpha,
         "episodes_to_flag_paired": flag_paired, "episodes_to_flag_unpaired": flag_unpaired})]
    share = th.get("torque_regression_margin", 0.10)
    joints = {}
    for j, name in enumerate(cand.joint_names):
        cb = np.array([e.mean_abs_torque[j] for e in base.episodes])
        cc = np.array([e.mean_abs_torque[j] for e in cand.episodes])
        limit = share * float(np.mean(cb)) if len(cb) else 0.0
        verdict, diff, p = tests.paired_mean_not_higher(cc, cb, limit, alpha)
        joints[name] = {"test": verdict, "mean_difference": diff, "margin": limit, "p_value": p, "n": len(cc),
                        "relative": diff / (limit / share) if limit > 0 else 0.0}
    if joints:  # one requirement for all joints: the worst one speaks for them
        worst = max(joints, key=lambda k: (joints[k]["test"] == stats.FAIL, joints[k]["relative"]))
        w = joints[worst]
        failed = sorted(k for k, v in joints.items() if v["test"] == stats.FAIL)
        out.append(Requirement(
            TORQUE_VS_BASELINE, f"mean |torque| vs {baseline}", stats.FAIL if failed else stats.PASS,
            f"largest change {w['relative']:+.1%} at {worst} ({w['mean_difference']:+.4g})",
            f"paired t-tests per joint; shown above the margin: {', '.join(failed) or 'none'}",
            f"each joint's increase < {share:.0%} of the baseline's", {"joints": joints}))
    return out
