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
    if result.outcome == "INCONCLUSIVE":
        lines.append("  INCONCLUSIVE: the episodes run cannot decide the requirement either way; "
                     "raise 'episodes' in the scenario")
    return "\n".join(lines)
