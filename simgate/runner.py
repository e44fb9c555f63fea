"""Run one case in this process: build its parts, roll out, measure, classify, decide.

Whose error (:mod:`simgate.errors`): a case whose policy cannot be loaded or whose policy code
raises outside an episode (the latency and frequency probes) ends as ``policy_error``; a case
whose env, perturbations, metrics or classifiers raise, or whose inputs do not fit its model
(a SimgateError), ends as ``setup_error``, the message naming whose code or input it was. A
policy call that fails inside an episode ends only that episode (the engines). Anything else is
a fault in simgate: it propagates out of :func:`run_case` with its traceback (the test item
errors, and the controller counts the case as crashed: never a promotion), and is never charged
to the policy as a case failure.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from simgate import contract, frequency, latency, verdict
from simgate.benign import cost, has_arm
from simgate.cache import LinkOutside, Undigestable, policy_sha256
from simgate.engine.limits import actuator_limits
from simgate.engine.rollouts import POLICY_ERROR, Rollouts  # noqa: F401 (importable from here)
from simgate.envs.factory import build_env, check_sizes, env_for, load_policy  # noqa: F401 (used by callers too)
from simgate.errors import Party, PluginCodeError, PolicyCodeError, SimgateError, blaming
from simgate.pairedseq import design_of
from simgate.policies import hold
from simgate.policies.loaders import PolicyLoadError
from simgate.rig import CaseRig, build_rig, episode_cache, perturbations_for  # noqa: F401 (importable from here)
from simgate.scenarios.case import Case
from simgate.search.case import run_search_case  # noqa: F401 (importable from here)
from simgate.seeds import case_rng, episode_indices, seed_identity
from simgate.sequential import INCONCLUSIVE, Decision, decide, group_design, sequential_design  # sequential_design: also importable from here, its former home
from simgate.study import policy_digest
from simgate.watchdog import TimeLimit, Watchdog

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
    engine: dict[str, int] = dataclasses.field(default_factory=dict)  # episodes by the engine that computed them
    examples: dict[str, str] = dataclasses.field(default_factory=dict)  # mode → one episode, for a person
    table: dict[str, list] = dataclasses.field(default_factory=dict)  # per-episode metrics
    episodes_run: int = 0  # computed by this run (the baseline's included)
    episodes_cached: int = 0  # taken from the result cache
    feasibility: float | None = None  # share of the scenario's tasks any policy could achieve
    policy_sha256: str | None = None  # of the policy file (of its code, for a scripted one)
    worst: int | None = None  # the failed episode a person should watch first
    cache_note: str | None = None  # why the cache was not used, if it was not
    search: dict[str, Any] | None = None  # a search case's findings (simgate.search.run)
    benign: dict[str, Any] | None = None  # a perturbed case's benign arm (simgate.benign.cost)

    def to_dict(self) -> dict[str, Any]:
        """The record the controller receives (:mod:`simgate.contract`), checked on this side too."""

        record = contract.CaseRecord(
            contract=contract.VERSION, case=self.case.to_dict(), status="error" if self.outcome == ERROR else "ran",
            outcome=self.outcome, episodes=self.episodes, requirements=[r.to_dict() for r in self.requirements],
            failure_modes=self.failure_modes, metrics=self.metrics, error=self.error, examples=self.examples,
            engine=self.engine, episodes_run=self.episodes_run, episodes_cached=self.episodes_cached,
            feasibility=self.feasibility, policy_sha256=self.policy_sha256, worst_episode=self.worst,
            cache_note=self.cache_note, search=self.search, benign=self.benign)
        return contract.dump(record)


def run_case(case: Case, host, engine: str = "auto", cache_dir: Path | None = None, remote=None) -> CaseResult:
    """Run a case's episodes (sequentially stopped if its scenario says so), and its baseline's
    on the same episodes if it has one; episodes already in ``cache_dir`` are not recomputed.
    ``remote`` (:meth:`simgate.scaleout.RayScheduler.compute`) computes the episodes the case
    still needs elsewhere, in the same lanes; where it declines, they are computed here."""

    dog = Watchdog(case.case_timeout, case.policy_timeout)
    try:
        return dog.run(_run, case, host, engine, cache_dir, dog, remote)
    except TimeLimit as exc:
        if dog.stopped is not None and dog.stopped != case.policy:
            # the baseline hung: that is no evidence against the candidate, and no evidence at all
            return _error(case, TimeLimit(f"{exc} (while computing the episodes of the baseline {dog.stopped!r}; the "
                                          "candidate is not judged)"), SETUP_ERROR, "timeout")
        return _error(case, exc, POLICY_ERROR, "timeout")


def _run(case: Case, host, engine: str, cache_dir: Path | None, dog, remote=None) -> CaseResult:
    try:
        return _evaluate(case, host, engine, cache_dir, dog, remote)
    except (PolicyLoadError, PolicyCodeError) as exc:  # the policy's file or code (a baseline's too)
        return _error(case, exc, POLICY_ERROR)
    except (PluginCodeError, SimgateError) as exc:  # an env, a perturbation, a metric or the user's input
        return _error(case, exc, SETUP_ERROR)


def _evaluate(case: Case, host, engine: str, cache_dir: Path | None, dog, remote=None) -> CaseResult:
    regs = host.registries
    rig = build_rig(case, case.policy, regs, engine, cache_dir, dog, remote)
    base_spec = regs.policies.get(case.baseline) if case.baseline else None
    if base_spec is not None:
        with blaming(*rig.parties):
            base_env = env_for(rig.env, base_spec)
        check_sizes(base_spec, base_env)
    with blaming(*rig.parties, *plugin_parties(host)):
        # a case judged at looks against another policy runs the baseline look by look with it
        base = rig.for_policy(base_spec.name) if base_spec is not None and design_of(case) is not None else None
        rollouts, decision, both = collect(case, rig, base)
        repeats = None
        if case.thresholds.get("deterministic"):
            # the first judged episodes: a case stopped at a look before determinism_episodes has no more
            judged = verdict.judged_prefix(rollouts, decision) if decision is not None else rollouts
            repeats = rig.recompute([e.index for e in judged.episodes[:case.determinism_episodes]])
        latency = _latency(rig) if "max_inference_ms" in case.thresholds else None
        requirements = verdict.evaluate(case, rollouts, repeats, decision, torque_ranges(rig.engine), latency)
        if case.replay:
            requirements = [_with_pinned_policy(r, case, regs) for r in requirements]
        if case.frequency_response:
            requirements.append(verdict.frequency_requirement(frequency.inspect(rig)))
        _mark_nondeterministic(rollouts, repeats or [])
        _mark_overspeed(case, rollouts)
        search = None
        if case.search:  # a search scenario is a normal scenario plus the search: block
            search, _ = run_search_case(case, host, rig)
            if case.search.get("require"):
                requirements.append(verdict.envelope_requirement(search))
        if base_spec is not None:
            paired, _ = _against_baseline(rig, base_spec.name, rollouts, decision, both, base)
            requirements += paired
        benign = _benign_arm(rig, rollouts, decision) if has_arm(case) else None
        feasibility = _feasibility(case, rig.env, rig.engine)
        modes, examples = _classify(case, rollouts, host)
        host.pm.hook.simgate_episode_batch_done(case=case, rollouts=rollouts)
        table = _table(rollouts, regs.metrics)
    return CaseResult(case, verdict.overall(requirements), requirements, modes, _means(table), rollouts.n,
                      engine=rig.engines, examples=examples, table=table,
                      episodes_run=rig.computed, episodes_cached=rig.cached, feasibility=feasibility,
                      policy_sha256=_policy_sha256(rig.spec, rig.policy), worst=_worst(rollouts),
                      cache_note=rig.cache_note, search=search, benign=benign)


def _with_pinned_policy(requirement, case: Case, regs):
    """A pinned case's requirement, saying whether the policy that failed its episodes is still the
    one pinned: registered with the pinned digest, changed since, or not registered in this run.
    The episodes replay all the same; the note says what can no longer be re-checked."""
    if requirement.kind != verdict.PINNED_SUCCESSES:
        return requirement
    pinned = case.replay or {}
    name, digest = pinned.get("failing_policy"), pinned.get("failing_digest")
    if name not in regs.policies:
        status = "unregistered"
        note = (f"; {name!r}, which failed them when pinned (digest {str(digest)[:12]}), is not registered in this run: "
                "the episodes replay as pinned, and whether that policy still fails them is not re-checked")
    else:
        now = policy_digest(regs.policies.get(name))
        status = "same" if digest is None or now == digest else "changed"
        note = "" if status == "same" else (
            f"; {name!r} has changed since it was pinned (digest {str(digest)[:12]} then, {str(now)[:12]} now): the "
            "episodes replay as pinned, but they were found failing with the earlier policy")
    return dataclasses.replace(requirement, bound=requirement.bound + note,
                               numbers={**requirement.numbers, "failing_policy_status": status})


def plugin_parties(host) -> list[Party]:
    """Plugin code the runner calls besides the rig's: the registered metrics and the
    implementations of the failure-classifier and batch-done hooks."""
    regs = host.registries
    parties = [Party(f"metric {name!r} (plugin {regs.metrics.owner(name)})", regs.metrics.get(name))
               for name in regs.metrics]
    for hook, what in ((host.pm.hook.simgate_classify_failure, "failure classifier"),
                       (host.pm.hook.simgate_episode_batch_done, "simgate_episode_batch_done hook")):
        parties += [Party(f"{what} {impl.function.__qualname__} (plugin {impl.plugin_name})", impl.function)
                    for impl in hook.get_hookimpls()]
    return parties


class EpisodeSource(CaseRig):
    """Episodes of one (case, policy) by index, from parts already built: a
    :class:`simgate.rig.CaseRig` (cache, then ``remote``, then the engine, then into the cache),
    under the constructor the runner had before the rig. ``engines`` counts the episodes handed
    out by the engine that computed them ("batched", "reference"; a cached one keeps the engine
    that first computed it). A cache that cannot be used never fails the case: caching stops and
    ``cache_note`` says why."""

    def __init__(self, engine, case: Case, env, cache=None, remote=None, dog=None, policy: str | None = None):
        super().__init__(case, policy or case.policy, env, engine, cache, remote=remote, watchdog=dog)


def collect(case: Case, source: CaseRig, base: CaseRig | None = None):
    """The case's rollouts (the episodes its requirements are judged on), for a sequential case
    the decision, and for a case with a sequential paired test (``base``: the baseline's rig) the
    candidate's and the baseline's rollouts on every episode the comparison ran (else None).
    Sequential cases run batches of episodes in index order until the success requirement is
    decided or the cap is reached; an sprt/anytime case runs at least its pre-declared
    ``min_episodes`` (default: one batch), the episodes every other requirement is judged on
    (``decision.judged``), whatever the success test's stopping time."""
    paired = design_of(case) if base is not None else None
    if paired is not None or (case.sequential or {}).get("method") == "group":
        return _collect_at_looks(case, source, base if paired is not None else None)
    if not case.sequential:
        return source.rollouts(source.episodes(episode_indices(case))), None, None

    design = sequential_design(case)
    judged = judged_episodes(case)
    episodes: list = []
    while True:
        stop = min(case.episodes, len(episodes) + case.sequential["batch"])
        episodes += source.episodes(range(len(episodes), stop))
        decision = decide(design, [e.success for e in episodes])
        if (decision.outcome != "CONTINUE" and len(episodes) >= judged) or stop >= case.episodes:
            decision = dataclasses.replace(decision, judged=judged)
            return source.rollouts(episodes[: max(decision.n, judged)]), decision, None


def _collect_at_looks(case: Case, source: CaseRig, base: CaseRig | None = None):
    """Episodes in index order up to each look. A group-sequential case's own requirements are
    decided at the first of its looks where the design's exact counts decide the success rate and
    the betting test (valid at every look) every torque bound, or at its last look; a case of one
    look decides them on its ``episodes``. Either is judged on the episodes up to there. With
    ``base``, the baseline runs the same episodes look by look and the sequential paired test
    (:mod:`simgate.pairedseq`) is asked at each of its looks: the comparison goes on past the
    case's own looks while it is undecided, up to its cap, and stops at once when the success
    rate FAILs."""
    design = group_design(case) if case.sequential else None
    paired = design_of(case) if base is not None else None
    own = design.looks if design is not None else (case.episodes,)
    limits = torque_ranges(source.engine)
    sizes = sorted(set(own) | set(paired.looks if paired is not None else ()))
    episodes: list = []
    compared: list = []
    judged = decision = comparison = None
    for size in sizes:
        new = range(len(episodes), size)
        episodes += source.episodes(new)
        if paired is not None:
            compared += base.episodes(new)
        if judged is None and size in own:
            if design is None:
                judged = size
            else:
                look = own.index(size)
                k = int(sum(e.success for e in episodes))
                state = design.state(look, k)
                if look == len(own) - 1 or (state is not None and verdict.decided_at_look(case, source.rollouts(episodes), limits)):
                    judged = size
                    decision = Decision(state or INCONCLUSIVE, size, k, float(k), f"look {look + 1} of {len(own)}", judged=size)
        if paired is not None and comparison is None and size in paired.looks:
            comparison, _ = paired.state([e.success for e in compared], [e.success for e in episodes])
        failed = decision is not None and decision.outcome == "FAIL"
        if judged is not None and (paired is None or comparison is not None or failed):
            both = (source.rollouts(episodes), base.rollouts(compared)) if paired is not None else None
            return source.rollouts(episodes[:judged]), decision, both
    raise AssertionError("unreachable: the last look always decides")


def judged_episodes(case: Case) -> int:
    """A sequential case's pre-declared episodes for its other requirements."""
    seq = case.sequential or {}
    wanted = seq.get("min_episodes") or seq.get("batch", case.episodes)
    return min(int(wanted), case.episodes)


def torque_ranges(engine) -> np.ndarray | None:
    """Per actuator, the largest |torque| at its joint on the nominal model (force limit × |gear|):
    the range that makes the mean-torque bounds valid without normality; inf where nothing limits."""

    model = getattr(engine, "nominal", None)
    if model is None:
        return None
    return actuator_limits(model) * np.abs(model.actuator_gear[:, 0])


def _worst(rollouts) -> int | None:
    """The failed episode that went wrong soonest (then the one that got least far)."""
    failed = [e for e in rollouts.episodes if not e.success]
    if not failed:
        return None
    return min(failed, key=lambda e: (e.length, e.progress if math.isfinite(e.progress) else -math.inf, e.index)).index


def _policy_sha256(spec, policy) -> str | None:
    try:
        return policy_sha256(spec, policy)
    except (OSError, Undigestable, LinkOutside):  # only the summary's digest: the cache refuses such a link
        return None


def _mark_overspeed(case, rollouts) -> None:
    """The ``overspeed`` failure mode asks the episode, which knows no joint names: the rule is the
    verdict's, applied here where the rollouts know them."""
    limit = case.thresholds.get("max_joint_speed")
    if limit is None or not rollouts.n or not len(rollouts.episodes[0].peak_joint_speed):
        return
    for episode, over in zip(rollouts.episodes, verdict.over_joint_speed(rollouts, limit)):
        episode.overspeed = bool(over)


def _mark_nondeterministic(rollouts, repeats) -> None:
    first = {e.index: e for e in rollouts.episodes}
    for again in repeats:
        ref = first.get(again.index)
        if ref is not None and not ref.reproduced_by(again):
            ref.nondeterministic = True


def _feasibility(case: Case, env, engine) -> float | None:
    value = env.task_feasibility(engine.nominal, case_rng(*seed_identity(case), "feasibility"))
    return None if value is None else float(value)


def _latency(rig):
    """The policy's inference time on observations of the case's first episodes. Measured on the
    loaded policy itself (no watchdog around it), every run: timing is not seeded, so it is never
    taken from the episode cache."""

    return latency.measure(rig.policy, latency.case_observations(rig))


def _against_baseline(rig, baseline: str, rollouts, decision=None, both=None, base=None) -> tuple:
    """The baseline on exactly the candidate's episodes (same seeds, same worlds), then the paired
    tests; a sequential case compares on its pre-declared episodes (``decision.judged``), a case
    with a sequential paired test on every episode both ran look by look (``both``: the
    candidate's and the baseline's rollouts). The baseline's rig runs in the candidate rig's env
    binding and counts its episodes with it; ``base``, the rig that ran ``both``, is reused.
    Returns the requirements and the baseline's rig."""

    base = base or rig.for_policy(baseline)
    design = design_of(rig.case) if both is not None else None
    if both is not None:
        rollouts, compared = both
    else:
        if decision is not None:
            rollouts = verdict.judged_prefix(rollouts, decision)
        compared = base.rollouts(base.episodes([e.index for e in rollouts.episodes]))
    return verdict.paired(rig.case, baseline, compared, rollouts, torque_ranges(base.engine),
                          torque=not hold.is_hold(base.spec), design=design), base


def _benign_arm(rig, rollouts, decision=None) -> dict:
    """The case's judged episodes again with its perturbations off, same seeds, and what the
    perturbation costs (:mod:`simgate.benign`)."""
    if decision is not None:
        rollouts = verdict.judged_prefix(rollouts, decision)
    arm = rig.benign()
    episodes = arm.episodes([e.index for e in rollouts.episodes])
    return cost([e.success for e in episodes], [e.success for e in rollouts.episodes])


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


def _error(case: Case, exc: BaseException, mode: str, why: str = "") -> CaseResult:
    """The case's record when it could not be evaluated: ``exc`` is a SimgateError (the user's
    input), a CodeError or PolicyLoadError (whose code it was is in its message) or a TimeLimit."""
    message = str(exc)
    label = f"{mode} ({why})" if why else mode
    return CaseResult(case, ERROR, [], {mode: case.episodes}, {}, 0, error=f"{label}: {message}")
