"""The failure message of a case: requirement, observed k/n, bound, threshold, failure modes."""

from __future__ import annotations

from simgate.benign import describe
from simgate.commands import replay_command  # also importable from here
from simgate.verdict import HOLDS_INSIDE_ENVELOPE, REGRESSION_KINDS, SUCCESS_RATE


def case_message(result) -> str:
    case = result.case
    head = f"{case.id}: {result.outcome} (scenario {case.scenario!r} in {case.source}, policy {case.policy!r})"
    if result.error:
        return f"{head}\n  {result.error}"
    width = max((len(r.name) for r in result.requirements), default=0)
    lines = [head]
    for r in result.requirements:
        lines.append(f"  {r.name:<{width}}  {r.outcome:<12}  observed {r.observed}; required {r.threshold}; {r.bound}")
    if result.failure_modes:
        modes = ", ".join(f"{mode} {count}" for mode, count in result.failure_modes.items())
        lines.append(f"  failure modes ({sum(result.failure_modes.values())} of {result.episodes} episodes): {modes}")
        for mode, example in result.examples.items():
            lines.append(f"    {mode}: e.g. {example}")
    feasibility = getattr(result, "feasibility", None)
    if feasibility is not None:
        lines.append(f"  task feasibility: {feasibility:.1%} of this scenario's tasks can be achieved by any policy")
        required = case.thresholds.get("min_success_rate")
        if required is not None and feasibility <= required:
            lines.append(f"  INFEASIBLE: success > {required:g} cannot be reached here whatever the policy; "
                         "the scenario, not the policy, caps success at " f"{feasibility:.1%}")
    worst = getattr(result, "worst", None)
    if worst is not None and result.outcome != "PASS":
        lines.append(f"  replay the worst episode: {replay_command(case.id, worst)}")
    regression = [r for r in result.requirements if r.kind in REGRESSION_KINDS]
    if regression:
        family = getattr(case, "regression_family", 1)
        level = getattr(case, "family_alpha", None) or case.alpha
        lines.append(f"  against {case.baseline}: p-values reported, not a verdict here; the controller judges them with "
                     f"this candidate's regression family (Holm over {family} case(s) at {level:g}): see verdict.json")
    benign = getattr(result, "benign", None)
    if benign:
        lines.append(f"  benign arm (perturbations off): {describe(benign)}")
    if case.detect and case.detect.get("auto", True):
        lines.append(f"  episodes: auto chose {case.episodes} episodes to flag a drop of {case.detect['drop']:g} with power "
                     f"{case.detect['power']:g} at a baseline rate of {case.detect['baseline_rate']:g}")
    if result.outcome == "INCONCLUSIVE":
        lines.append("  INCONCLUSIVE: the episodes run cannot decide the requirement either way")
        lines.append(f"    {extension_advice(result)}")
    return "\n".join(lines)


def extension_advice(result) -> str:
    """Exactly what to do to add episodes without losing the level (docs/statistics.md)."""
    case = result.case
    success = next((r for r in result.requirements if r.kind == SUCCESS_RATE), None)
    seq = case.sequential
    if seq and seq.get("method") == "anytime":
        return (f"to add episodes, raise 'episodes' (now {case.episodes}) in {case.source} and change nothing else: "
                "the e-process's PASS stays valid however far the same episodes are continued")
    if seq and seq.get("method") == "group":
        return (f"the group-sequential design spent its level over its looks on these episodes: running them again longer "
                f"is a second look. Run a new scenario on another seed (fresh episodes, its own alpha), with more episodes "
                f"in {case.source} or design: fixed")
    if seq:
        return (f"an SPRT that stopped without PASS has spent its level on these episodes: re-running it longer is a "
                f"second look. For a valid continuation switch {case.source} to sequential.method: anytime (its PASS "
                "holds however far it is continued) before the next decision, or run a new fixed-size scenario")
    envelope = next((r for r in result.requirements if r.kind == HOLDS_INSIDE_ENVELOPE), None)
    if envelope is not None and envelope.outcome == "INCONCLUSIVE" and (success is None or success.outcome != "INCONCLUSIVE"):
        # the certificate's episodes come from the search's budget, not from 'episodes'
        return (f"to give the envelope's certification more episodes, raise search.budget (now "
                f"{(case.search or {}).get('budget')}) in {case.source}")
    if success is None or success.outcome != "INCONCLUSIVE":
        return ("the mean-torque bounds are valid however far the same episodes continue; other tests (p95, power) "
                f"judge again at full alpha if you raise 'episodes' in {case.source}: a second look")
    looks = list(getattr(case, "earlier_looks", ())) + [result.episodes]
    return (f"to add episodes and keep the level, set 'episodes: {2 * result.episodes}' and 'earlier_looks: {looks}' "
            f"in {case.source}: the same seeds are extended and the larger run is judged at what these looks left of "
            f"alpha {case.alpha:g} (raising 'episodes' alone is a second look at the same episodes)")
