"""The failure message of a case: requirement, observed k/n, bound, threshold, failure modes."""

from __future__ import annotations


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
        lines.append(f"  replay the worst episode: python -m simgate replay '{case.id}' {worst} --video")
    if result.outcome == "INCONCLUSIVE":
        lines.append("  INCONCLUSIVE: the episodes run cannot decide the requirement either way; "
                     "raise 'episodes' in the scenario")
    return "\n".join(lines)
