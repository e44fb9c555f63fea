"""Run one case in this process: build its parts, roll out, measure, classify, decide."""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections import Counter
from typing import Any

import numpy as np

from simgate import verdict
from simgate.engine.rollouts import POLICY_ERROR
from simgate.scenarios.case import Case

ERROR = "ERROR"  # the case could not be evaluated at all (bad policy file, bad parameter, ...)
SETUP_ERROR = "setup_error"


@dataclasses.dataclass
class CaseResult:
    case: Case
    outcome: str  # PASS / FAIL / INCONCLUSIVE / ERROR
    requirements: list[verdict.Requirement]
    failure_modes: dict[str, int]
    metrics: dict[str, float]  # per-episode metrics over the case: means, maxima for peaks
    episodes: int
    error: str | None = None
    engine: str | None = None  # which engine ran it ("batched" or "reference")
    examples: dict[str, str] = dataclasses.field(default_factory=dict)  # mode → one episode, for a person
    table: dict[str, list] = dataclasses.field(default_factory=dict)  # per-episode metrics

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case.to_dict(), "outcome": self.outcome, "episodes": self.episodes,
            "requirements": [r.to_dict() for r in self.requirements], "failure_modes": self.failure_modes,
            "metrics": self.metrics, "error": self.error, "examples": self.examples, "engine": self.engine,
        }


def run_case(case: Case, host, engine: str = "auto") -> CaseResult:
    regs = host.registries
    try:
        env = build_env(regs.envs.get(case.env))
        spec = regs.policies.get(case.policy)
        _check_sizes(spec, env)
        perturbations = [_build_perturbation(regs.perturbations.get(p["kind"]), p["params"]) for p in case.perturbations]
    except Exception as exc:
        return _error(case, exc, SETUP_ERROR)
    from simgate.policies.loaders import PolicyLoadError

    try:
        policy = spec.load()
    except PolicyLoadError as exc:
        return _error(case, exc, POLICY_ERROR)
    from simgate.engine import make_engine

    try:
        runner = make_engine(env, policy, perturbations, spec.action_size, engine)
        rollouts = runner.run(case, range(case.episodes))
        repeats = None
        if case.thresholds.get("deterministic"):
            repeats = runner.run(case, range(min(case.determinism_episodes, case.episodes))).episodes
        requirements = verdict.evaluate(case, rollouts, repeats)
    except Exception as exc:  # a perturbation or env rule that cannot apply to this model
        return _error(case, exc, SETUP_ERROR)
    modes, examples = _classify(case, rollouts, host)
    host.pm.hook.simgate_episode_batch_done(case=case, rollouts=rollouts)
    table = _table(rollouts, regs.metrics)
    return CaseResult(case, verdict.overall(requirements), requirements, modes, _means(table), rollouts.n,
                      engine=type(runner).__name__.removesuffix("Engine").lower(), examples=examples, table=table)


def build_env(factory):
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory()


def _check_sizes(spec, env) -> None:
    for what, theirs, ours in (("observation", spec.observation_size, env.observation_size),
                               ("action", spec.action_size, env.action_size)):
        if theirs != ours:
            raise ValueError(f"policy {spec.name!r} has {what} size {theirs} ({spec.manifest}) but env "
                             f"{env.name!r} has {ours}; this policy was built for another robot or observation layout")


def _build_perturbation(cls, params: dict):
    return cls(cls.Params.model_validate(params))


def _classify(case, rollouts, host) -> tuple[dict[str, int], dict[str, str]]:
    counts: Counter = Counter()
    examples: dict[str, str] = {}
    for episode in rollouts.episodes:
        if episode.success:
            continue
        mode = host.classify(case, episode) or "unclassified"
        episode.failure_mode = mode
        counts[mode] += 1
        if mode not in examples:
            where = f"t={episode.length * rollouts.control_dt:.2f}s, progress {episode.progress:.3g}"
            examples[mode] = f"episode {episode.index} ({where})" + (f": {episode.message}" if episode.message else "")
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), examples


def _table(rollouts, metrics) -> dict[str, list]:
    table: dict[str, list] = {"episode": [e.index for e in rollouts.episodes],
                              "failure_mode": [e.failure_mode for e in rollouts.episodes]}
    for name in metrics:
        values = metrics.get(name)(rollouts)
        columns = values if isinstance(values, dict) else {None: values}
        for label, column in columns.items():
            table[name if label is None else f"{name}[{label}]"] = [float(v) for v in np.asarray(column)]
    return table


def _means(table: dict[str, list]) -> dict[str, float]:
    out = {}
    for name, column in table.items():
        if name in ("episode", "failure_mode"):
            continue
        finite = [v for v in column if math.isfinite(v)]
        aggregate = np.max if name.startswith("peak_") else np.mean  # a peak's case value is the worst one
        out[name] = float(aggregate(finite)) if finite else None
    return out


def _error(case: Case, exc: Exception, mode: str) -> CaseResult:
    message = str(exc) if mode != SETUP_ERROR or isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    return CaseResult(case, ERROR, [], {mode: case.episodes}, {}, 0, error=f"{mode}: {message}")
