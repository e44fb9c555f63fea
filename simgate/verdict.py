"""A case's requirements, each decided PASS / FAIL / INCONCLUSIVE with the numbers behind it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from simgate import paired as tests
from simgate import pairedseq, stats
from simgate.errors import InputError
from simgate.groupseq import characteristic
from simgate.metrics import effort
from simgate.names import did_you_mean
from simgate.outcomes import POLICY_ERROR
from simgate.sequential import fixed_n, group_design, operating_characteristic, sequential_design

#: what each requirement tests, for machines: reports and the promotion verdict select by kind,
#: never by the display name
SUCCESS_RATE, MEAN_TORQUE, PEAK_TORQUE, P95_TORQUE = "success_rate", "mean_torque", "peak_torque", "p95_torque"
MEAN_POWER, COST_OF_TRANSPORT, DETERMINISM, POLICY_ERRORS = "mean_power", "cost_of_transport", "determinism", "policy_errors"
NOT_WORSE, TORQUE_VS_BASELINE = "not_worse", "torque_vs_baseline"
#: deployment checks: a timing measurement and the safety limits
INFERENCE_LATENCY = "inference_latency"
ESTOP_SHARE, JOINT_SPEED, CONTACT_FORCE = "estop_share", "joint_speed", "contact_force"
#: a policy inspection, reported with its numbers; it never fails a case
FREQUENCY_RESPONSE = "frequency_response"
#: a search's certified operating envelope (simgate.search; ``search.require``)
HOLDS_INSIDE_ENVELOPE = "holds_inside_envelope"
#: a pinned regression scenario: its fixed episodes, counted exactly (simgate pin)
PINNED_SUCCESSES = "pinned_successes"
#: findings against the promoted policy: one family, corrected together on the controller
REGRESSION_KINDS = (NOT_WORSE, TORQUE_VS_BASELINE)
KINDS = (SUCCESS_RATE, MEAN_TORQUE, PEAK_TORQUE, P95_TORQUE, MEAN_POWER, COST_OF_TRANSPORT, DETERMINISM,
         POLICY_ERRORS, INFERENCE_LATENCY, ESTOP_SHARE, JOINT_SPEED, CONTACT_FORCE,
         FREQUENCY_RESPONSE, HOLDS_INSIDE_ENVELOPE, PINNED_SUCCESSES) + REGRESSION_KINDS


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


def evaluate(case, rollouts, repeats=None, decision=None, ranges=None, latency=None) -> list[Requirement]:
    """Every requirement the case's thresholds ask for. ``repeats`` are re-runs of the first
    episodes, compared hash for hash when the scenario asks for determinism; ``decision`` is
    the sequential test's, for a sequential case: every other requirement is then judged on the
    pre-declared first ``decision.judged`` episodes, never on the prefix the success test stopped
    at. ``ranges``: per actuator, the largest |torque| it can produce (the nominal model's force
    limit times its gear), which makes the mean-torque bounds valid without normality.
    ``latency``: the policy's measured inference time (:class:`simgate.latency.Latency`), when
    the case asks for ``max_inference_ms``."""
    th, alpha = case.thresholds, case.alpha
    out = []
    if decision is not None:
        out.append(sequential_requirement(case, decision))
        rollouts = judged_prefix(rollouts, decision)
    if "min_successes" in th:
        out.append(pinned_requirement(case, rollouts, th["min_successes"]))
    elif "min_success_rate" in th and decision is None:
        out.append(success_requirement(rollouts, th["min_success_rate"], alpha, getattr(case, "earlier_looks", ())))
    for key, label, test in (("max_mean_torque", "mean |torque|", _mean_torque), ("max_peak_torque", "peak |torque|", _peak_torque),
                             ("max_p95_torque", "p95 of mean |torque|", _p95_torque)):
        if key in th:
            for joint, limit in _per_joint(th[key], rollouts.joint_names):
                if test is _mean_torque:
                    out.append(test(rollouts, joint, limit, alpha, label, _range(ranges, joint)))
                else:
                    out.append(test(rollouts, joint, limit, alpha, label))
    for key, label, metric in (("max_mean_power", "mean power (W)", MEAN_POWER),
                               ("max_cost_of_transport", "cost of transport", COST_OF_TRANSPORT)):
        if key in th:
            out.append(_mean_metric(rollouts, metric, label, th[key], alpha))
    if th.get("deterministic"):
        out.append(determinism_requirement(rollouts, repeats or []))
    if "max_estop_share" in th:
        out.append(estop_requirement(rollouts, th["max_estop_share"], alpha))
    if "max_joint_speed" in th:
        for joint, limit in _per_joint(th["max_joint_speed"], rollouts.joint_names):
            out.append(joint_speed_requirement(rollouts, joint, limit))
    if "max_contact_force" in th:
        out.append(contact_force_requirement(rollouts, th["max_contact_force"]))
    if "max_inference_ms" in th and latency is not None:
        out.append(latency_requirement(latency, th["max_inference_ms"], case.policy))
    errors = policy_error_requirement(rollouts)
    if errors is not None:
        out.append(errors)
    return out


def pinned_requirement(case, rollouts, k: int) -> Requirement:
    """A pinned regression case: fixed episodes that once failed, replayed exactly; at least ``k``
    of them (as many as the policy that fixed them) must succeed. Exact: there is nothing to estimate."""
    success = rollouts.column("success").astype(bool)
    failed = [e.index for e, ok in zip(rollouts.episodes, success) if not ok]
    pinned = case.replay or {}
    outcome = "PASS" if int(success.sum()) >= k else "FAIL"
    return Requirement(PINNED_SUCCESSES, "pinned episodes succeed", outcome,
                       f"{int(success.sum())}/{len(success)}" + (f" (failed again: episode(s) {failed})" if failed else ""),
                       f"the episodes {pinned.get('failing_policy')} failed in {pinned.get('pinned_from')}, replayed exactly",
                       f">= {k} (as many as {pinned.get('fixed_by')})",
                       {"successes": int(success.sum()), "n": len(success), "required": k, "failed": failed})


def judged_prefix(rollouts, decision):
    """The episodes a sequential case's other requirements are judged on: the first
    ``decision.judged`` (fixed before the run), whatever the success test's stopping time."""
    judged = getattr(decision, "judged", None)
    if judged is None or judged >= rollouts.n:
        return rollouts
    return dataclasses.replace(rollouts, episodes=rollouts.episodes[:judged])


def _range(ranges, joint: int) -> float | None:
    if ranges is None or joint >= len(ranges):
        return None
    value = float(ranges[joint])
    return value if math.isfinite(value) and value > 0 else None


def policy_error_requirement(rollouts) -> Requirement | None:
    """An episode the policy could not finish (it raised, returned NaN or a wrong shape) measures
    nothing: its torque over the steps before the error is no evidence of anything. Such an episode
    fails the case outright, whatever the other requirements say about the episodes that ran."""
    failed = [e for e in rollouts.episodes if e.terminated == POLICY_ERROR]
    if not failed:
        return None
    first = failed[0]
    return Requirement(POLICY_ERRORS, "policy ran without error", stats.FAIL,
                       f"{len(failed)} of {rollouts.n} episodes ended in a policy error",
                       f"e.g. episode {first.index} at step {first.length}: {first.message}", "0 episodes",
                       {"episodes": len(failed), "n": rollouts.n, "first": first.index})


def latency_requirement(latency, limits: dict, policy: str) -> Requirement:
    """The measured quantiles against their limits: a deterministic comparison of one measurement
    (timing is not seeded; a re-run measures again), no statistics."""
    over = [q for q in ("p50", "p99") if q in limits and getattr(latency, f"{q}_ms") > limits[q]]
    observed = (f"p50 {latency.p50_ms:.3f} ms, p99 {latency.p99_ms:.3f} ms, max {latency.max_ms:.3f} ms over "
                f"{latency.calls} calls of {policy}")
    bound = (f"measured at batch 1, one thread, after {latency.warmup} warm-up calls, on {latency.observations} "
             f"observations of the case, each slot the fastest of {latency.repeats} passes (p99 of every call: "
             f"{latency.raw_p99_ms:.3f} ms); a timing on this machine, not seeded, not a confidence bound")
    if over:
        bound = f"{' and '.join(over)} above the limit; " + bound
    threshold = ", ".join(f"{q} ≤ {limits[q]:g} ms" for q in ("p50", "p99") if q in limits)
    return Requirement(INFERENCE_LATENCY, "inference latency", stats.FAIL if over else stats.PASS, observed, bound,
                       threshold, {**latency.to_dict(), "policy": policy, "limits": dict(limits), "over": over})


def _peak_signal(rollouts, name: str, key: str) -> np.ndarray:
    """Each episode's largest value of the env signal ``name``; a ValueError naming the fix when
    the env does not measure it."""
    if rollouts.episodes and name not in rollouts.episodes[0].signal_peaks:
        raise InputError(f"thresholds.{key} needs the env to measure the per-step signal {name!r} (add it to the env's "
                         f"`signals` and `signal_rows`); this env measures {sorted(rollouts.episodes[0].signal_peaks)}")
    return np.array([e.signal_peaks[name] for e in rollouts.episodes], dtype=np.float64)


def estop_requirement(rollouts, limit: float, alpha: float) -> Requirement:
    """The share of episodes reaching the env's e-stop condition (its ``estop`` signal above 0 at
    some control step), by the exact binomial test: PASS when the upper confidence bound of the
    share is below the limit. Episodes without an e-stop are the 'successes' of that test."""
    peaks = _peak_signal(rollouts, "estop", "max_estop_share")
    hit = np.nan_to_num(peaks, nan=0.0) > 0
    n, k = len(hit), int(hit.sum())
    r = stats.success_rate(n - k, n, 1.0 - limit, alpha, alpha)
    share_upper, share_lower = 1.0 - r.lower, 1.0 - r.upper
    if r.outcome == stats.PASS:
        bound = f"{1 - alpha:.0%} upper bound {share_upper:.3f} < {limit:g}"
    elif r.outcome == stats.FAIL:
        bound = f"{1 - alpha:.0%} lower bound {share_lower:.3f} > {limit:g}"
    else:
        bound = f"{1 - alpha:.0%} interval [{share_lower:.3f}, {share_upper:.3f}] contains {limit:g}: needs more episodes"
    first = int(rollouts.episodes[int(np.argmax(hit))].index) if k else None
    return Requirement(ESTOP_SHARE, "e-stop share", r.outcome, f"{k}/{n} episodes reached the e-stop" +
                       (f" (first: episode {first})" if k else ""), bound, f"< {limit:g}",
                       {"episodes": k, "n": n, "limit": limit, "upper": share_upper, "lower": share_lower,
                        "alpha": alpha, "first": first})


def over_joint_speed(rollouts, limit) -> np.ndarray:
    """Per episode, whether any joint exceeded its ``max_joint_speed`` (one number, or per joint by
    name): the rule both the requirement and the ``overspeed`` failure mode use. A NaN peak (a
    diverged episode) counts as over."""
    over = np.zeros(rollouts.n, dtype=bool)
    for joint, value in _per_joint(limit, rollouts.joint_names):
        over |= _over_speed(rollouts, joint, value)
    return over


def _over_speed(rollouts, joint: int, limit: float) -> np.ndarray:
    peaks = np.array([e.peak_joint_speed[joint] for e in rollouts.episodes], dtype=np.float64)
    return ~(peaks <= limit)


def joint_speed_requirement(rollouts, joint: int, limit: float) -> Requirement:
    """A hard limit like peak torque: one physics step above it anywhere fails."""
    peaks = np.array([e.peak_joint_speed[joint] for e in rollouts.episodes], dtype=np.float64)
    worst = float(peaks.max()) if len(peaks) else 0.0
    over = int(_over_speed(rollouts, joint, limit).sum())
    name = rollouts.joint_names[joint]
    return Requirement(JOINT_SPEED, f"peak joint speed [{name}]", stats.FAIL if over else stats.PASS,
                       f"{worst:.3f} (max over {len(peaks)} episodes)", f"{over} episode(s) above the limit",
                       f"≤ {limit:g}", {"max": worst, "limit": limit, "episodes_over": over})


def contact_force_requirement(rollouts, limit: float) -> Requirement:
    """The largest normal contact force the env's ``contact_force`` signal saw (sampled at control
    steps), against a hard limit: one impact above it fails."""
    peaks = _peak_signal(rollouts, "contact_force", "max_contact_force")
    worst = float(np.nanmax(peaks)) if len(peaks) and not np.all(np.isnan(peaks)) else 0.0
    over = int((peaks > limit).sum())
    return Requirement(CONTACT_FORCE, "peak contact force", stats.FAIL if over else stats.PASS,
                       f"{worst:.1f} N (max over {len(peaks)} episodes, at control steps)",
                       f"{over} episode(s) above the limit", f"≤ {limit:g} N",
                       {"max": worst, "limit": limit, "episodes_over": over})


def frequency_requirement(numbers: dict) -> Requirement:
    """The frequency response as a report entry: informational, always PASS."""
    f, g, p = numbers["frequencies"], numbers["gain"], numbers["phase_deg"]
    observed = "; ".join(f"{fi:g} Hz: gain {gi:.3g}, phase {pi:+.0f}°" for fi, gi, pi in zip(f, g, p))
    half = [fi for fi, gi in zip(f, g) if gi < g[0] / 2]
    bound = (f"gain below half its {f[0]:g} Hz value from {half[0]:g} Hz" if half else
             f"gain within half of its {f[0]:g} Hz value up to {f[-1]:g} Hz")
    return Requirement(FREQUENCY_RESPONSE, f"frequency response (observation {numbers['channel']} -> action "
                       f"{numbers['action']})", stats.PASS, observed, bound, "inspection (no limit)", numbers)


def envelope_requirement(search: dict) -> Requirement:
    """The search's certificate as a requirement: PASS when success ≥ target is shown at every
    point of the envelope's covering design, FAIL when some point is shown below it (with the
    shrunk counterexamples), INCONCLUSIVE when the budget ran out first."""
    cert, target = search["certificate"], search["target"]
    points = cert["points"]
    k, n = sum(p["successes"] for p in points), sum(p["trials"] for p in points)
    worst = min(points, key=lambda p: (p["lower"], p["upper"])) if points else None
    where = lambda p: ", ".join(f"{a}={v:g}" for a, v in p["params"].items())  # noqa: E731
    observed = f"{k}/{n} episodes over {len(points)} design points of the envelope"
    if cert["status"] == stats.FAIL:
        below = min(points, key=lambda p: p["upper"])
        bound = f"at {where(below)}: upper bound {below['upper']:.3f} < {target:g} (level {cert['level']:.3g} per point)"
        shown = search.get("counterexamples") or []
        if shown:
            c = shown[0]
            bound += f"; smallest counterexample: {where(c)} episode {c['index']} ({c['mode']})"
    elif cert["status"] == stats.PASS:
        bound = f"every point's lower bound ≥ {target:g} (lowest {worst['lower']:.3f} at {where(worst)})"
    else:
        bound = (f"undecided at the budget ({search['episodes']['total']} of {search.get('budget')} episodes): "
                 f"lowest lower bound {worst['lower']:.3f} at {where(worst)}" if worst else "no design point was run")
    numbers = {"status": cert["status"], "alpha": cert["alpha"], "level": cert["level"], "target": target,
               "points": points, "counterexamples": search.get("counterexamples") or [],
               "episodes": search["episodes"]["total"]}
    return Requirement(HOLDS_INSIDE_ENVELOPE, "holds inside envelope", cert["status"], observed, bound,
                       f"success ≥ {target:g} everywhere in the envelope", numbers)


def overall(requirements: list[Requirement]) -> str:
    """The case's outcome. Findings against the baseline (REGRESSION_KINDS) do not count here: one
    case's uncorrected p-value is not a regression; the controller judges them as one family."""
    outcomes = {r.outcome for r in requirements if r.kind not in REGRESSION_KINDS}
    if stats.FAIL in outcomes:
        return stats.FAIL
    if stats.INCONCLUSIVE in outcomes:
        return stats.INCONCLUSIVE
    return stats.PASS


def success_requirement(rollouts, p0: float, alpha: float, earlier_looks=()) -> Requirement:
    """The exact binomial test. ``earlier_looks``: the episode counts of earlier runs of this case
    (same seeds) whose test was INCONCLUSIVE; each spent its exact size at p0, and this run is
    judged at what is left of alpha (:func:`simgate.stats.extension_levels`), so the chance of a
    false PASS over all the looks together stays ≤ alpha."""
    k, n = int(rollouts.column("success").sum()), rollouts.n
    pass_level, fail_level, spent = alpha, alpha, 0.0
    if earlier_looks:
        pass_level, fail_level, spent = stats.extension_levels(tuple(earlier_looks), n, p0, alpha)
    r = stats.success_rate(k, n, p0, pass_level, fail_level)
    conf = f"{1 - pass_level:.1%}" if earlier_looks else f"{1 - alpha:.0%}"
    if r.outcome == stats.FAIL:
        bound = f"{1 - fail_level:.1%} upper bound {r.upper:.3f} < {p0:g}" if earlier_looks else f"{conf} upper bound {r.upper:.3f} < {p0:g}"
    elif r.outcome == stats.PASS:
        bound = f"{conf} lower bound {r.lower:.3f} > {p0:g}"
    else:
        bound = f"{conf} interval [{r.lower:.3f}, {r.upper:.3f}] contains {p0:g}: needs more episodes"
    if earlier_looks:
        bound += (f"; earlier looks at {', '.join(map(str, earlier_looks))} episodes spent {spent:.4f} of alpha {alpha:g}: "
                  f"judged at {pass_level:.4f}")
    numbers = dataclasses.asdict(r)
    numbers.update({"alpha": alpha, "earlier_looks": list(earlier_looks), "alpha_spent": spent,
                    "level": pass_level, "fail_level": fail_level})
    return Requirement(SUCCESS_RATE, "success rate", r.outcome, f"{k}/{n} ({k / n:.1%})" if n else "0/0", bound,
                       f"> {p0:g}", numbers)


def _mean_torque(rollouts, joint: int, limit: float, alpha: float, label: str, value_range: float | None = None) -> Requirement:
    """Per-episode mean |torque| lies in [0, the actuator's force limit]: the betting test on that
    range is valid on skewed or heavy-tailed episodes (a few saturated ones), where a t bound is
    not. Without a known range (an actuator nothing limits), the t bound, said so."""
    x = np.array([e.mean_abs_torque[joint] for e in rollouts.episodes])
    name = rollouts.joint_names[joint]
    if value_range is None:
        r = stats.mean_below(x, limit, alpha)
        return Requirement(MEAN_TORQUE, f"{label} [{name}]", r.outcome, f"{r.mean:.3f}",
                           f"{1 - alpha:.0%} t bounds [{r.lower:.3f}, {r.upper:.3f}] (no force limit known: assumes "
                           "near-normal episode means)", f"< {limit:g}", {**dataclasses.asdict(r), "method": "t"})
    note = ""
    if len(x) and x.max() > value_range:  # a perturbation made the motor stronger than the nominal model's
        value_range, note = float(x.max()), " (range widened to the largest episode: a motor above its nominal limit)"
    r = stats.bounded_mean_below(x, limit, alpha, value_range)
    return Requirement(MEAN_TORQUE, f"{label} [{name}]", r.outcome, f"{r.mean:.3f}",
                       f"{1 - alpha:.0%} bounds [{r.lower:.3f}, {r.upper:.3f}] (betting test on [0, {value_range:.4g}]{note})",
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
    x = getattr(effort, metric)(rollouts)
    x = x[np.isfinite(x)]
    r = stats.mean_below(x, limit, alpha)
    # no range bounds power (|force × velocity| has no known ceiling): the t bound, said so
    return Requirement(metric, label, r.outcome, f"{r.mean:.4g} over {r.n} episodes",
                       f"{1 - alpha:.0%} t bounds [{r.lower:.4g}, {r.upper:.4g}] (assumes near-normal episode values)",
                       f"< {limit:g}", {**dataclasses.asdict(r), "method": "t"})


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
            raise InputError(f"threshold names joint {name!r}, which has no actuator{did_you_mean(name, joint_names)}")
        out.append((joint_names.index(name), float(value)))
    return out


def sequential_requirement(case, decision) -> Requirement:
    """The sequential decision with the design's exact guarantee (dynamic programming). A stop at
    the futility line is reported as what it is, "stopped: p1 not reached": the evidence favours
    p0 over p1, which is not evidence that p < p0 (a policy at p = 0.93 against 0.9 stops there
    often), so it is INCONCLUSIVE, never FAIL; it still blocks, as every INCONCLUSIVE does."""

    if case.sequential.get("method") == "group":
        return group_requirement(case, decision)
    design = sequential_design(case)
    at_p0, at_p1 = operating_characteristic(design, design.p0), operating_characteristic(design, design.p1)
    # compare with the fixed-size design of the same power the capped sequential design reaches at p1
    power = at_p1.pass_probability
    fixed = fixed_n(design.p0, design.p1, design.alpha, max(1 - power, 1e-6))
    futile = decision.outcome == stats.FAIL
    outcome = stats.PASS if decision.outcome == stats.PASS else stats.INCONCLUSIVE
    guarantee = (f"{design.method}: exact false PASS {at_p0.pass_probability:.3f} at p={design.p0:g}, "
                 f"PASS {power:.3f} at p={design.p1:g}, expected episodes {at_p1.expected_n:.0f} "
                 f"at p={design.p1:g} (fixed-size design of the same power: {fixed})")
    k, n = decision.successes, decision.n
    observed = f"{k}/{n} ({k / n:.1%}) after {n} episodes" if n else "0/0"
    if futile:
        observed += ", stopped: p1 not reached (not evidence that the rate is below the requirement)"
    elif outcome == stats.INCONCLUSIVE:
        observed += f", undecided at the cap of {design.max_n}"
    numbers = {"method": design.method, "n": n, "successes": k, "statistic": decision.statistic,
               "p0": design.p0, "p1": design.p1, "alpha": design.alpha, "beta": design.beta, "max_n": design.max_n,
               "stop": "pass" if outcome == stats.PASS else "futility" if futile else "cap",
               "judged_episodes": getattr(decision, "judged", None),
               "false_pass_at_p0": at_p0.pass_probability, "pass_at_p1": power,
               "expected_n_at_p0": at_p0.expected_n, "expected_n_at_p1": at_p1.expected_n, "fixed_n": fixed}
    return Requirement(SUCCESS_RATE, "success rate", outcome, observed, f"{decision.threshold}; {guarantee}",
                       f"> {design.p0:g}", numbers)


def group_requirement(case, decision) -> Requirement:
    """The group-sequential decision (:mod:`simgate.groupseq`) with the design's exact error
    over all its looks, and, at an undecided last look, what a fixed-size run would need."""
    design = group_design(case)
    at_p0 = characteristic(design, design.p0)
    k, n = decision.successes, decision.n
    look = design.looks.index(n) if n in design.looks else len(design.looks) - 1
    up, down = design.pass_counts[look], design.fail_counts[look]
    outcome = decision.outcome if decision.outcome in (stats.PASS, stats.FAIL) else stats.INCONCLUSIVE
    observed = f"{k}/{n} ({k / n:.1%}) at look {look + 1} of {len(design.looks)}" if n else "0/0"
    rule = (f"PASS at ≥ {up} successes, FAIL at ≤ {down} (look {look + 1}: {n} episodes; looks at "
            f"{', '.join(map(str, design.looks))})")
    guarantee = (f"group-sequential, error spent alpha·t^{design.rho:g} over the looks: exact false PASS "
                 f"{at_p0.pass_probability:.4f} and false FAIL {at_p0.fail_probability:.4f} at p={design.p0:g}, all looks together")
    more = None
    if outcome == stats.INCONCLUSIVE:
        rate = k / n if n else 0.0
        if rate > design.p0:
            more = fixed_n(design.p0, rate, design.alpha, 0.10)
            observed += (f", undecided at the cap of {design.cap}: at the observed rate a fresh fixed-size run needs about "
                         f"{more} episodes for 90% power")
        else:
            observed += f", undecided at the cap of {design.cap}"
    numbers = {"method": "group", "n": n, "k": k, "successes": k, "look": look + 1, "looks": list(design.looks),
               "pass_counts": list(design.pass_counts), "fail_counts": list(design.fail_counts), "p0": design.p0,
               "alpha": design.alpha, "rho": design.rho, "max_n": design.cap,
               "stop": "pass" if outcome == stats.PASS else "fail" if outcome == stats.FAIL else "cap",
               "judged_episodes": n, "false_pass_at_p0": at_p0.pass_probability,
               "false_fail_at_p0": at_p0.fail_probability, "episodes_for_90_power": more,
               "default": bool(case.sequential.get("default"))}
    return Requirement(SUCCESS_RATE, "success rate", outcome, observed, f"{rule}; {guarantee}", f"> {design.p0:g}", numbers)


def decided_at_look(case, rollouts, ranges) -> bool:
    """Whether every requirement of a group-sequential case other than its success rate is
    decided on these episodes by a test valid at every look: the mean torque's betting test on the
    actuator's force range. A t bound (no range known) is valid only at the planned last look."""
    th = case.thresholds
    if "max_mean_torque" not in th:
        return True
    for joint, limit in _per_joint(th["max_mean_torque"], rollouts.joint_names):
        value_range = _range(ranges, joint)
        if value_range is None:
            return False
        if _mean_torque(rollouts, joint, limit, case.alpha, "", value_range).outcome == stats.INCONCLUSIVE:
            return False
    return True


#: the share of a case's regression budget given to its success-rate test; the rest is split
#: evenly over its joints' torque tests (weighted Bonferroni inside the case)
SUCCESS_SHARE = 0.5
#: the level of a candidate's regression family when every member's alpha is larger: Holm runs at
#: min(FAMILY_LEVEL, every member case's alpha) (:mod:`simgate.reporting.promotion`)
FAMILY_LEVEL = 0.05


def regression_level(case) -> float:
    """The level the success-rate test of one case gets in the worst case of its family: Holm's
    first step, the family's level (min(FAMILY_LEVEL, every member's alpha): what the controller
    runs Holm at, not this case's own alpha) over the family's cases, times the success test's
    share inside the case. What the detectable drop and ``episodes: auto`` are computed at."""
    level = getattr(case, "family_alpha", None)
    if level is None:
        level = min(FAMILY_LEVEL, case.alpha)
    return level * SUCCESS_SHARE / max(getattr(case, "regression_family", 1), 1)


def paired(case, baseline: str, base, cand, ranges=None, torque: bool = True, design=None) -> list[Requirement]:
    """Candidate against baseline on the same episodes. These are findings, not verdicts: one
    case's uncorrected p-value would block an unchanged policy somewhere in a large suite, so the
    requirements here never fail the case (their outcome is PASS) and carry their p-values; the
    controller judges every case of the candidate as one family (Holm at alpha,
    :mod:`simgate.reporting.promotion`) and blocks on the confirmed ones. Per case: the exact
    McNemar p-value of 'worse at all' and, per joint, the betting test's p-value of 'mean |torque|
    above (1 + torque_regression_margin) × the baseline's'. Also reported: whether
    non-inferiority within ``regression_margin`` is shown (exact score test), and the smallest
    drop this case could detect with 90 % power at its n. ``torque=False`` (against the null
    policy ``hold``, which barely loads its motors) compares the success rates only. ``design``
    (a :class:`simgate.pairedseq.PairedDesign`): the episodes were run look by look until that
    test decided, so the member p-value is its anytime-valid one (a fixed-size McNemar p-value is
    not valid at a stopping time the data chose), and the drop it detects is the design's."""

    th, alpha = case.thresholds, case.alpha
    b, c = base.column("success").astype(bool), cand.column("success").astype(bool)
    margin = th.get("regression_margin", 0.05)
    r = tests.compare_rates(b, c, margin)
    level = regression_level(case)
    rate = float(b.mean()) if len(b) else 0.0
    drop = tests.detectable_drop(r.n, rate, level) if r.n else None
    shown = ("non-inferiority within the margin shown" if r.p_noninferior <= alpha
             else "non-inferiority not shown (needs more episodes)")
    flag_paired = tests.episodes_to_flag(b, c, alpha, lambda x, y: tests.mcnemar_worse(int((x & ~y).sum()), int((~x & y).sum())))
    flag_unpaired = tests.episodes_to_flag(b, c, alpha, tests.unpaired_worse)
    sees = (f"can detect a drop of {drop:.1%} with 90% power" if drop is not None else "cannot detect even a drop to 0 with 90% power")
    p_value, test, sequential = r.p_worse, f"McNemar 'worse' p={r.p_worse:.3g} (uncorrected)", None
    if design is not None:
        state, figures = design.state(b, c)
        p_value = figures["p_worse_anytime"]
        ended = {pairedseq.WORSE: f"stopped: worse at the family's level {level:.3g}",
                 pairedseq.RULED_OUT: f"stopped: a drop of {design.drop:g} ruled out (p={figures['p_drop_at_least']:.3g} "
                                      f"≤ {design.rule_out_level:g})",
                 pairedseq.UNDECIDED: f"undecided at the cap of {design.cap}",
                 # the case stopped before the comparison decided: its own success rate FAILed
                 None: f"undecided when the case stopped at {len(c)} of its {design.cap} episodes"}[state]
        state = state or pairedseq.UNDECIDED
        test = f"sequential paired test, anytime p={p_value:.3g} (uncorrected); {ended}"
        sees = (f"was planned to flag a drop of {design.drop:.1%} with power {design.power:g} (simulated "
                f"{design.simulated_power:.3f}, independent outcomes at a baseline rate of {design.baseline_rate:g}, the least "
                f"favourable case) by looks every {design.looks[0]} up to {design.cap} episodes")
        drop = design.drop
        sequential = {**design.to_dict(), **figures, "state": state}
    out = [Requirement(
        NOT_WORSE, f"not worse than {baseline}", stats.PASS,
        f"{c.mean():.1%} vs {b.mean():.1%} on the same {r.n} episodes (baseline-only successes {r.n10}, candidate-only "
        f"{r.n01}); {test}",
        f"judged on the controller with the run's regression family (Holm over this candidate's cases); {shown} "
        f"(exact score test, p={r.p_noninferior:.3g}); at n={r.n} this case {sees} at level {level:.3g}",
        f"no Holm-confirmed drop; difference > -{margin:g} reported",
        {**dataclasses.asdict(r), "baseline": baseline, "alpha": alpha, "noninferiority_shown": r.p_noninferior <= alpha,
         "family": "regression", "p_value": p_value, "uncorrected_outcome": stats.FAIL if p_value <= alpha else stats.PASS,
         "detectable_drop_90": drop, "detect_level": level, "baseline_rate": rate, "sequential": sequential,
         "episodes_to_flag_paired": flag_paired, "episodes_to_flag_unpaired": flag_unpaired})]
    share = th.get("torque_regression_margin", 0.10)
    joints = {}
    for j, name in enumerate(cand.joint_names):
        cb = np.array([e.mean_abs_torque[j] for e in base.episodes])
        cc = np.array([e.mean_abs_torque[j] for e in cand.episodes])
        value_range = _range(ranges, j)
        if value_range is None:  # nothing bounds this actuator: no valid test without a range
            continue
        value_range = max(value_range, float(cb.max(initial=0.0)), float(cc.max(initial=0.0)))
        t = tests.ratio_regression(cc, cb, share, value_range, alpha)
        t["relative"] = (t["candidate_mean"] / t["baseline_mean"] - 1) if t["baseline_mean"] > 0 else 0.0
        joints[name] = t
    if joints and torque:  # one requirement for all joints: the smallest p-value speaks for them
        worst = min(joints, key=lambda k: (joints[k]["p_regression"], -joints[k]["relative"]))
        w = joints[worst]
        out.append(Requirement(
            TORQUE_VS_BASELINE, f"mean |torque| vs {baseline}", stats.PASS,
            f"largest change {max(v['relative'] for v in joints.values()):+.1%}; smallest p of 'up by more than "
            f"{share:.0%}': {w['p_regression']:.3g} at {worst} (uncorrected)",
            f"betting test on c − {1 + share:g}·b per joint (range from the force limits); judged on the controller with "
            "the run's regression family", f"each joint's increase < {share:.0%} of the baseline's",
            {"joints": joints, "family": "regression", "p_value": w["p_regression"], "share": share}))
    return out
