"""One case rig: the parts of one (case, policy) built once, and its episodes from one place.

:func:`build_rig` builds, per case and policy, what every consumer of a case used to build by its
own recipe (the runner, its baseline, the Ray planner and workers, replay, the latency and
frequency inspections, the search): the env (a baseline runs in the candidate's env binding),
the policy spec and the loaded policy, the perturbation instances, the engine (calling the
policy through :class:`simgate.watchdog.GuardedPolicy` when a watchdog is given) and the episode
cache, keyed as it always was (a baseline's under the case with ``policy`` set to its name).

:meth:`CaseRig.episodes` is the one way to episodes: cache, then the remote callable (a Ray
cluster), then the engine, then into the cache; it counts what was computed, what was cached and
which engine computed each episode, once (:class:`Counts`, shared by a case's baseline rig).

Layering: the rig never imports the pytest plugin, the CLI, reporting or Ray (the remote
callable is handed in); the runner imports it, never the other way round.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from simgate.envs.factory import build_env, check_sizes, env_for, load_policy


def perturbations_for(case, regs) -> list:
    """The case's perturbation instances, built by their registered kinds."""
    return [_build_perturbation(regs.perturbations.get(p["kind"]), p["params"]) for p in case.perturbations]


def _build_perturbation(cls, params: dict):
    return cls(cls.Params.model_validate(params))


def engine_name(engine) -> str:
    """``batched`` / ``reference``: the name an episode's engine is recorded by."""
    name = getattr(engine, "name", None)
    return name if isinstance(name, str) else type(engine).__name__.removesuffix("Engine").lower()


def episode_cache(cache_dir, case, env, runner, spec, policy):
    """The case's episode cache under ``cache_dir`` (None: no caching). When an input the episodes
    depend on cannot be hashed, a falsy ``cache.Refused`` saying why: everything is computed."""
    if cache_dir is None:
        return None
    from simgate import cache

    perturbations = getattr(runner, "perturbations", None)
    if perturbations is None:
        return cache.Refused(f"{type(runner).__name__} does not say which perturbations it applies")
    try:
        context = cache.context(case, env, runner.nominal, spec, policy, perturbations)
    except (cache.Undigestable, OSError) as exc:
        return cache.Refused(f"episode cache off for case {case.id!r}: {exc}")
    return cache.EpisodeCache(Path(cache_dir), context)


@dataclasses.dataclass
class Counts:
    """Episodes handed out: ``computed`` (here or remotely), ``cached`` (from the episode cache),
    ``engines`` (by the engine that computed them; a cached one keeps the engine that first did)."""

    computed: int = 0
    cached: int = 0
    engines: Counter = dataclasses.field(default_factory=Counter)


class CaseRig:
    """One (case, policy): its parts and its episodes. Built by :func:`build_rig` (or from parts
    already built, as :class:`simgate.runner.EpisodeSource` does)."""

    def __init__(self, case, policy_name: str, env, engine, cache=None, *, spec=None, policy=None,
                 perturbations=None, remote=None, watchdog=None, keyed=None, registries=None,
                 choice: str = "auto", cache_dir=None, counts: Counts | None = None):
        self.case, self.policy_name = case, policy_name
        self.env, self.spec, self.policy, self.engine = env, spec, policy, engine
        self.perturbations = perturbations if perturbations is not None else getattr(engine, "perturbations", None)
        self.keyed = keyed if keyed is not None else case  # the case the cache is keyed by
        self.remote, self.watchdog = remote, watchdog
        self.registries, self.choice, self.cache_dir = registries, choice, cache_dir
        self.cache = cache if cache else None  # a Refused cache is falsy: nothing is cached
        self.cache_note: str | None = getattr(cache, "reason", None)
        self.unit = env.progress_unit
        self.counts = counts if counts is not None else Counts()
        self.engine_name = engine_name(engine)

    # -- the parts, as the runner's callers name them ------------------------------------------------
    @property
    def runner(self):
        return self.engine

    @property
    def action_size(self) -> int:
        return self.env.action_size

    @property
    def computed(self) -> int:
        return self.counts.computed

    @computed.setter
    def computed(self, value: int) -> None:
        self.counts.computed = value

    @property
    def cached(self) -> int:
        return self.counts.cached

    @cached.setter
    def cached(self, value: int) -> None:
        self.counts.cached = value

    @property
    def engines(self) -> Counter:
        return self.counts.engines

    def for_policy(self, policy_name: str) -> CaseRig:
        """The rig of this case run by another policy (its baseline): in this rig's env binding,
        on the same perturbation instances, with the same engine choice, cache folder, watchdog
        and remote, its episodes counted with this rig's."""
        return _build(self.case, policy_name, self.registries, self.choice, self.cache_dir, self.watchdog,
                      self.remote, base_env=self.env, perturbations=self.perturbations, counts=self.counts)

    # -- episodes --------------------------------------------------------------------------------
    def episodes(self, indices, rows=None) -> list:
        """Episodes ``indices`` (in that order): from the cache where present, else from the
        remote callable where it takes them, else from the engine, and then into the cache.
        ``rows``: a search's rows, one ``{axis: value}`` dict per index (``kind.param`` of one of
        the case's perturbations), which draw each episode's world and key it in the cache."""
        indices = [int(i) for i in indices]
        rows = list(rows) if rows is not None else None
        if rows is not None and len(rows) != len(indices):
            raise ValueError(f"{len(indices)} episode indices but {len(rows)} rows")
        row_of = (lambda p: rows[p]) if rows is not None else (lambda p: None)
        found: list = [None] * len(indices)
        if self.cache:
            for p, i in enumerate(indices):
                found[p] = self.cache.load(i, row_of(p))
        missing = [p for p in range(len(indices)) if found[p] is None]
        if missing:
            engine, computed = self._compute([indices[p] for p in missing],
                                             None if rows is None else [rows[p] for p in missing])
            for p, episode in zip(missing, computed):
                found[p] = (episode, engine)
                self._store(episode, engine, row_of(p))
        self.counts.computed += len(missing)
        self.counts.cached += len(indices) - len(missing)
        self.counts.engines.update(hit[1] for hit in found)
        return [hit[0] for hit in found]

    get = episodes  # EpisodeSource's name

    def recompute(self, indices) -> list:
        """The episodes computed again, never from the cache (the determinism repeats)."""
        return self._compute(list(indices), None)[1]

    def _compute(self, indices: list, rows: list | None) -> tuple[str, list]:
        """(engine name, episodes) of ``indices``: on the cluster where ``remote`` takes them (it
        needs the cache context to check its workers against), else here."""
        written = None if rows is None else [self.row_params(row) for row in rows]
        remote = self.remote_rows()
        got = remote(indices, written) if remote is not None else None
        if got is not None:
            return got
        overrides = None
        if written is not None:
            from simgate.engine.reference import row_overrides

            overrides = row_overrides(self.engine, written)
        return self.engine_name, self.engine.run(self.case, indices, overrides).episodes

    def row_params(self, row: dict) -> dict[int, dict]:
        """A search row ``{axis: value}`` as the engine takes it: perturbation index -> that
        perturbation's params with the row's values written in."""
        from simgate.search.space import written_row

        return written_row(self.case, row)

    def remote_rows(self):
        """``(indices, rows) -> (engine name, episodes) or None`` computing episodes on the
        cluster (``rows``: a search's row params as the engine takes them, one per index, or
        None); None without one. Where it returns None the caller computes them itself."""
        if self.remote is None or not self.cache:
            return None
        return lambda indices, rows: self.remote(self.case, self.policy_name, self.engine, self.cache, list(indices),
                                                 rows, self.watchdog)

    def _store(self, episode, engine: str, row: dict | None = None) -> None:
        if not self.cache:
            return
        try:
            if row is None:
                self.cache.put(episode, engine)
            else:
                self.cache.put(episode, engine, row)
        except Exception as exc:  # read-only, full, a file where the folder should be: run uncached
            import warnings

            self.cache, self.cache_note = None, (f"episode cache disabled for case {self.case.id!r}: cannot write "
                                                 f"{getattr(exc, 'filename', None) or exc} ({type(exc).__name__}: {exc}); "
                                                 "the remaining episodes are computed and not stored")
            try:
                warnings.warn(self.cache_note, RuntimeWarning, stacklevel=3)
            except Warning:  # -W error must not turn a cache problem into a failed case
                pass

    def rollouts(self, episodes: list):
        from simgate.engine.rollouts import Rollouts

        n_steps = int(round(self.case.horizon / self.engine.control_dt))
        return Rollouts(episodes, self.engine.joint_names, self.engine.control_dt, n_steps, self.unit)


def build_rig(case, policy_name: str, registries, engine: str = "auto", cache_dir=None, watchdog=None, remote=None,
              base_env=None) -> CaseRig:
    """The rig of ``case`` run by ``policy_name``, built once: its env (the candidate's binding:
    ``base_env`` when the caller has it, else built from the case's env and candidate policy),
    spec, loaded policy, perturbations, engine (``engine``: auto / batched / reference; the
    policy called through GuardedPolicy when ``watchdog`` is given) and episode cache under
    ``cache_dir`` (None: none). Raises what the steps raise, in this order: the env and sizes,
    the perturbations, the policy's loading (PolicyLoadError), the engine."""
    return _build(case, policy_name, registries, engine, cache_dir, watchdog, remote, base_env)


def _build(case, policy_name, registries, choice="auto", cache_dir=None, watchdog=None, remote=None, base_env=None,
           perturbations=None, counts=None) -> CaseRig:
    from simgate.engine import make_engine

    spec = registries.policies.get(policy_name)
    if base_env is None:
        # a baseline runs in the candidate's env (the built-in hold sends its neutral action)
        candidate = spec if policy_name == case.policy else registries.policies.get(case.policy)
        base_env = build_env(registries.envs.get(case.env), candidate)
    env = env_for(base_env, spec)
    check_sizes(spec, env)
    if perturbations is None:
        perturbations = perturbations_for(case, registries)
    policy = load_policy(spec, env)
    acting = policy
    if watchdog is not None:
        from simgate.watchdog import GuardedPolicy

        acting = GuardedPolicy(policy, watchdog)
    runner = make_engine(env, acting, perturbations, env.action_size, choice)
    keyed = case if policy_name == case.policy else dataclasses.replace(case, policy=policy_name)
    cache = episode_cache(cache_dir, keyed, env, runner, spec, policy)
    return CaseRig(case, policy_name, env, runner, cache, spec=spec, policy=policy, perturbations=perturbations,
                   remote=remote, watchdog=watchdog, keyed=keyed, registries=registries, choice=choice,
                   cache_dir=cache_dir, counts=counts)
