"""A case: one (scenario, matrix point, policy), everything a worker needs to run it."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    scenario: str
    source: str
    env: str
    policy: str
    point: dict[str, Any]
    perturbations: tuple[dict[str, Any], ...]
    episodes: int
    horizon: float
    seed: int
    alpha: float
    determinism_episodes: int
    thresholds: dict[str, Any]
    gate: bool = True  # false: informational, never blocks promotion
    sequential: dict[str, Any] | None = None  # {method, p1, beta, batch, min_episodes, looks}: stop when decided
    design: str = "auto"  # auto: group-sequential where the case can be judged at looks; fixed: one look
    baseline: str | None = None  # the promoted policy this candidate is compared with, episode for episode
    classify: dict[str, Any] = dataclasses.field(default_factory=dict)  # failure-mode thresholds
    severity: str | None = None  # Allure severity; None: normal, minor when gate is false
    case_timeout: float = 3600.0  # seconds for the whole case (simgate.watchdog)
    policy_timeout: float = 60.0  # seconds for one policy call
    #: gating cases with a baseline of this case's policy in the run: the size of its regression family
    regression_family: int = 1
    #: the level Holm runs this candidate's family at: min(0.05, every member case's alpha)
    family_alpha: float | None = None
    #: the sequential paired test against another policy, as planned at expansion
    #: (simgate.pairedseq.PairedDesign.to_dict): its looks go past ``episodes`` while it is undecided
    paired: dict[str, Any] | None = None
    #: ``episodes: auto``: {drop, power, baseline_rate, level, episodes} as planned at expansion
    detect: dict[str, Any] | None = None
    #: episode counts of earlier INCONCLUSIVE runs on these seeds (the success test spends what they left)
    earlier_looks: tuple[int, ...] = ()
    #: a policy inspection: {channel, action, amplitude, frequencies, cycles, settle} (simgate.frequency)
    frequency_response: dict[str, Any] | None = None
    #: a search over perturbation params: {space, envelope, budget, require, levels} (simgate.search)
    search: dict[str, Any] | None = None
    #: a pinned regression case: {scenario, point, episodes, pinned_from, failing_policy, fixed_by}:
    #: it runs exactly those episodes of the pinned case's seeds (simgate.seeds.seed_identity)
    replay: dict[str, Any] | None = None
    #: limits that end an episode at the first control step exceeded (simgate.limits)
    hard_limits: dict[str, Any] | None = None
    #: a perturbed case also runs its benign arm: the same seeds with the perturbations off (simgate.benign)
    benign: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what reports and summaries carry)."""
        out = dataclasses.asdict(self)
        out["perturbations"] = list(out["perturbations"])
        return out


def format_value(value: Any) -> str:
    """A matrix value as it appears in a test id: short, stable, no spaces or brackets."""
    if isinstance(value, (list, tuple)):
        return "..".join(format_value(v) for v in value)  # a sampled range: 0.4..1.25
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return "".join(ch if ch.isalnum() or ch in "._+" else "_" for ch in str(value))


def case_id(scenario: str, point: dict[str, Any], policy: str) -> str:
    parts = [scenario] + [f"{name}={format_value(value)}" for name, value in point.items()] + [policy]
    return "-".join(parts)
