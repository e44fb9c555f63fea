"""Run one case in this process: build its parts, roll out, measure, classify, decide."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from simgate import verdict
from simgate.envs.factory import build_env, check_sizes, env_for, load_policy  # noqa: F401 (used by callers too)
from simgate.engine.rollouts import POLICY_ERROR, Rollouts
from simgate.scenarios.case import Case
from simgate.sequential import sequential_design  # also importable from here, its former home

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

    def to_dict(self) -> dict[str, Any]:
        """The record the controller receives (:mod:`simgate.contract`), checked on this side too."""
        from simgate import contract

        record = contract.CaseRecord(
            contract=contract.VERSION, case=self.case.to_dict(), status="error" if self.outcome == ERROR else "ran",
            outcome=self.outcome, episodes=self.episodes, requirements=[r.to_dict() for r in self.requirements],
            failure_modes=self.failure_modes, metrics=self.metrics, error=self.error, examples=self.examples,
            engine=self.engine, episodes_run=self.episodes_run, episodes_cached=self.episodes_cached,
            feasibility=self.feasibility, policy_sha256=self.policy_sha256, worst_episode=self.worst,
            cache_note=self.cache_note, search=self.search)
        return contract.dump(record)


def run_case(case: Case, host, engine: str = "auto", cache_dir: Path | None = None, remote=None) -> CaseResult:
    """Run a case's episodes (sequentially stopped if its scenario says so), and its baseline's
    on the same episodes if it has one; episodes already in ``cache_dir`` are not recomputed.
    ``remote`` (:meth:`simgate.scaleout.RayScheduler.compute`) computes the episodes the case
    still needs elsewhere, in the same lanes; where it declines, they are computed here."""
    from simgate.watchdog import TimeLimit, Watchdog

    dog = Watchdog(case.case_timeout, case.policy_timeout)
    try:
        return dog.run(_run, case, host, engine, cache_dir, dog, remote)
    except TimeLimit as exc:
        return _error(case, exc, POLICY_ERROR, "timeout")


def _run(case: Case, host, engine: str, cache_dir: Path | None, dog, remote=None) -> CaseResult:
    from simgate.watchdog import GuardedPolicy

    regs = host.registries
    try:
        spec = regs.policies.get(case.policy)
        env = build_env(regs.envs.get(case.env), spec)
        check_sizes(spec, env)
        base_spec = regs.policies.get(case.baseline) if case.baseline else None
        if base_spec is not None:
            check_sizes(base_spec, env_for(env, base_spec))
        perturbations = perturbations_for(case, regs)
    except Exception as exc:
        return _error(case, exc, SETUP_ERROR)
    from simgate.policies.loaders import PolicyLoadError

    try:
        policy = spec.load()
    except PolicyLoadError as exc:
        return _error(case, exc, POLICY_ERROR)
    from simgate.engine import make_engine

    try:
        runner = make_engine(env, GuardedPolicy(policy, dog), perturbations, spec.action_size, engine)
        source = EpisodeSource(runner, case, env, episode_cache(cache_dir, case, env, runner, spec, policy),
                               remote=remote, dog=dog)
        rollouts, decision = collect(case, source)
        repeats = None
        if case.thresholds.get("deterministic"):
            repeats = source.recompute(range(min(case.determinism_episodes, case.episodes)))
        latency = _latency(case, regs, env, spec, policy) if "max_inference_ms" in case.thresholds else None
        requirements = verdict.evaluate(case, rollouts, repeats, decision, torque_ranges(runner), latency)
        if case.frequency_response:
            from simgate import frequency

            response = frequency.inspect(case, env, policy, perturbations_for(case, regs), spec.action_size)
            requirements.append(verdict.frequency_requirement(response))
        _mark_nondeterministic(rollouts, repeats or [])
        _mark_overspeed(case, rollouts)
        search = None
        if case.search:  # a search scenario is a normal scenario plus the search: block
            search, evaluator = run_search_case(case, host, runner, spec, policy, perturbations, source.cache,
                                                source.remote_rows())
            if case.search.get("require"):
                requirements.append(verdict.envelope_requirement(search))
            source.computed += evaluator.computed
            source.cached += evaluator.cached
            source.engines.update(evaluator.engines)
        if base_spec is not None:
            paired, base_source = _against_baseline(case, regs, env, base_spec, engine, cache_dir, rollouts, dog, decision,
                                                    remote)
            requirements += paired
            source.computed += base_source.computed
            source.cached += base_source.cached
            source.engines.update(base_source.engines)
    except PolicyLoadError as exc:  # the baseline's file
        return _error(case, exc, POLICY_ERROR)
    except Exception as exc:  # a perturbation or env rule that cannot apply to this model
        return _error(case, exc, SETUP_ERROR)
    try:
        feasibility = _feasibility(case, env, runner)
    except Exception as exc:
        return _error(case, exc, SETUP_ERROR)
    modes, examples = _classify(case, rollouts, host)
    host.pm.hook.simgate_episode_batch_done(case=case, rollouts=rollouts)
    table = _table(rollouts, regs.metrics)
    return CaseResult(case, verdict.overall(requirements), requirements, modes, _means(table), rollouts.n,
                      engine=source.engines, examples=examples, table=table,
                      episodes_run=source.computed, episodes_cached=source.cached, feasibility=feasibility,
                      policy_sha256=_policy_sha256(spec, policy), worst=_worst(rollouts),
                      cache_note=source.cache_note, search=search)


def run_search_case(case: Case, host, runner, spec, policy, perturbations, cache=None, remote=None):
    """The case's search (:mod:`simgate.search`) on its engine, its rows cached per episode
    beside the case's own (``remote``: see :meth:`EpisodeSource.remote_rows`). Returns the search
    dict and the Evaluator (its episode counts)."""
    import hashlib
    import json

    from simgate.commands import row_command
    from simgate.search import space as spaces
    from simgate.search.evaluate import Evaluator
    from simgate.search.run import run_search

    ref = getattr(runner, "ref", runner)
    space = spaces.from_case(case, perturbations, ref.nominal.opt.timestep, runner.control_dt)
    evaluator = Evaluator(case, runner, space, cache, classify=host.classify, budget=space.budget, remote=remote)
    identity = json.dumps([case.seed, case.scenario, case.point, "search"], sort_keys=True)
    seed = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "little")  # the policy's not in it
    found = run_search(space, evaluator, seed, replay=lambda params, index: row_command(case.id, index, params))
    return found, evaluator


class EpisodeSource:
    """Episodes of one (case, policy) by index: from the cache where present, else from the engine
    (and then into the cache, a batch at a time, so an interrupted run keeps what it finished).

    ``engines`` counts the episodes handed out by the engine that computed them ("batched",
    "reference"; a cached one keeps the engine that first computed it). A cache that cannot be
    used (an input that cannot be hashed, a folder that cannot be written) never fails the case:
    caching stops and ``cache_note`` says why."""

    def __init__(self, runner, case: Case, env, cache=None, remote=None, dog=None, policy: str | None = None):
        self.runner, self.case = runner, case
        self.remote, self.dog = remote, dog
        self.policy = policy or case.policy
        self.cache = cache if cache else None  # a Refused cache is falsy: nothing is cached
        self.cache_note: str | None = getattr(cache, "reason", None)
        self.unit = env.progress_unit
        self.computed = self.cached = 0
        self.engines: Counter = Counter()
        self.engine = type(runner).__name__.removesuffix("Engine").lower()

    def get(self, indices) -> list:
        indices = list(indices)
        found = {i: self.cache.load(i) for i in indices} if self.cache else {}
        found = {i: hit for i, hit in found.items() if hit is not None}
        missing = [i for i in indices if i not in found]
        if missing:
            engine, episodes = self._compute(missing)
            for episode in episodes:
                found[episode.index] = (episode, engine)
                self._store(episode, engine)
        self.computed += len(missing)
        self.cached += len(indices) - len(missing)
        self.engines.update(found[i][1] for i in indices)
        return [found[i][0] for i in indices]

    def _compute(self, indices: list) -> tuple[str, list]:
        """(engine name, episodes) of ``indices``: on the cluster where ``remote`` takes them (it
        needs the cache context to check its workers against), else here."""
        rows = self.remote_rows()
        got = rows(indices, None) if rows is not None else None
        return got if got is not None else (self.engine, self.runner.run(self.case, indices).episodes)

    def recompute(self, indices) -> list:
        """The episodes computed again, never from the cache (the determinism repeats)."""
        return self._compute(list(indices))[1]

    def remote_rows(self):
        """``(indices, rows) -> (engine name, episodes) or None`` computing episodes on the
        cluster (``rows``: a search's row params, one per index, or None); None without one.
        Where it returns None the caller computes them itself."""
        if self.remote is None or not self.cache:
            return None
        return lambda indices, rows: self.remote(self.case, self.policy, self.runner, self.cache, list(indices), rows,
                                                 self.dog)

    def _store(self, episode, engine: str) -> None:
        if not self.cache:
            return
        try:
            self.cache.put(episode, engine)
        except Exception as exc:  # read-only, full, a file where the folder should be: run uncached
            import warnings

            self.cache, self.cache_note = None, (f"episode cache disabled for case {self.case.id!r}: cannot write "
                                                 f"{getattr(exc, 'filename', None) or exc} ({type(exc).__name__}: {exc}); "
                                                 "the remaining episodes are computed and not stored")
            try:
                warnings.warn(self.cache_note, RuntimeWarning, stacklevel=2)
            except Warning:  # -W error must not turn a cache problem into a failed case
                pass

    def rollouts(self, episodes: list) -> Rollouts:
        n_steps = int(round(self.case.horizon / self.runner.control_dt))
        return Rollouts(episodes, self.runner.joint_names, self.runner.control_dt, n_steps, self.unit)


def collect(case: Case, source: EpisodeSource):
    """The case's rollouts and, for a sequential case, the decision: batches of episodes in index
    order until the success requirement is decided or the cap is reached. A sequential case runs
    at least its pre-declared ``min_episodes`` (default: one batch), the episodes every other
    requirement is judged on (``decision.judged``), whatever the success test's stopping time."""
    if not case.sequential:
        return source.rollouts(source.get(range(case.episodes))), None
    from simgate.sequential import decide

    design = sequential_design(case)
    judged = judged_episodes(case)
    episodes: list = []
    while True:
        stop = min(case.episodes, len(episodes) + case.sequential["batch"])
        episodes += source.get(range(len(episodes), stop))
        decision = decide(design, [e.success for e in episodes])
        if (decision.outcome != "CONTINUE" and len(episodes) >= judged) or stop >= case.episodes:
            decision = dataclasses.replace(decision, judged=judged)
            return source.rollouts(episodes[: max(decision.n, judged)]), decision


def judged_episodes(case: Case) -> int:
    """A sequential case's pre-declared episodes for its other requirements."""
    seq = case.sequential or {}
    wanted = seq.get("min_episodes") or seq.get("batch", case.episodes)
    return min(int(wanted), case.episodes)


def torque_ranges(runner) -> np.ndarray | None:
    """Per actuator, the largest |torque| at its joint on the nominal model (force limit × |gear|):
    the range that makes the mean-torque bounds valid without normality; inf where nothing limits."""
    from simgate.engine.limits import actuator_limits

    model = getattr(runner, "nominal", None)
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
    from simgate.cache import LinkOutside, Undigestable, policy_sha256

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


def _feasibility(case: Case, env, runner) -> float | None:
    from simgate.seeds import case_rng

    value = env.task_feasibility(runner.nominal, case_rng(case.seed, case.scenario, case.point, "feasibility"))
    return None if value is None else float(value)


def _latency(case: Case, regs, env, spec, policy):
    """The policy's inference time on observations of the case's first episodes. Measured on the
    loaded policy itself (no watchdog around it), every run: timing is not seeded, so it is never
    taken from the episode cache."""
    from simgate import latency

    observations = latency.case_observations(case, env, policy, perturbations_for(case, regs), spec.action_size)
    return latency.measure(policy, observations)


def perturbations_for(case: Case, regs) -> list:
    return [_build_perturbation(regs.perturbations.get(p["kind"]), p["params"]) for p in case.perturbations]


def _against_baseline(case, regs, env, base_spec, engine, cache_dir, rollouts, dog, decision=None, remote=None) -> list:
    """The baseline on exactly the candidate's episodes (same seeds, same worlds), then the paired
    tests; a sequential case compares on its pre-declared episodes (``decision.judged``)."""
    from simgate.engine import make_engine
    from simgate.watchdog import GuardedPolicy

    if decision is not None:
        rollouts = verdict.judged_prefix(rollouts, decision)
    env = env_for(env, base_spec)
    base_policy = load_policy(base_spec, env)
    runner = make_engine(env, GuardedPolicy(base_policy, dog), perturbations_for(case, regs), env.action_size, engine)
    cache = episode_cache(cache_dir, dataclasses.replace(case, policy=base_spec.name), env, runner, base_spec, base_policy)
    source = EpisodeSource(runner, case, env, cache, remote=remote, dog=dog, policy=base_spec.name)
    baseline = source.rollouts(source.get([e.index for e in rollouts.episodes]))
    from simgate.policies import hold

    return verdict.paired(case, base_spec.name, baseline, rollouts, torque_ranges(runner),
                          torque=not hold.is_hold(base_spec)), source


def episode_cache(cache_dir, case: Case, env, runner, spec, policy):
    """The case's episode cache under ``cache_dir`` (None: no caching). When an input the episodes
    depend on cannot be hashed, a falsy ``cache.Refused`` saying why: everything is computed."""
    if cache_dir is None:
        return None
    from simgate import cache

    ref = getattr(runner, "ref", runner)  # the batched engine keeps its perturbations on its reference engine
    perturbations = getattr(ref, "perturbations", None)
    if perturbations is None:
        return cache.Refused(f"{type(runner).__name__} does not say which perturbations it applies")
    try:
        context = cache.context(case, env, runner.nominal, spec, policy, perturbations)
    except (cache.Undigestable, OSError) as exc:
        return cache.Refused(f"episode cache off for case {case.id!r}: {exc}")
    return cache.EpisodeCache(Path(cache_dir), context)


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


def _error(case: Case, exc: BaseException, mode: str, why: str = "") -> CaseResult:
    message = str(exc) if mode != SETUP_ERROR or isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    label = f"{mode} ({why})" if why else mode
    return CaseResult(case, ERROR, [], {mode: case.episodes}, {}, 0, error=f"{label}: {message}")
