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

Whose error: the rig is where simgate calls into a case's own code. Building, it names the env's
factory, a perturbation's constructor or the policy's loading when they raise
(:class:`simgate.errors.PluginCodeError`, :class:`simgate.policies.loaders.PolicyLoadError`);
building the engine and running it, an exception that passed through the env's, a perturbation's
or the policy's code leaves as that party's CodeError (:attr:`CaseRig.parties`,
:func:`simgate.errors.blaming`). Anything else is simgate's and propagates. A damaged cache
entry is a counted miss, and an unwritable cache folder stops caching; both are said in
``cache_note``.

Layering: the rig never imports the pytest plugin, the CLI, reporting or Ray (the remote
callable is handed in); the runner imports it, never the other way round.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections import Counter
from pathlib import Path

from simgate import cache
from simgate.benign import benign_case
from simgate.engine import make_engine
from simgate.engine.reference import row_overrides
from simgate.engine.rollouts import Rollouts
from simgate.envs.factory import check_sizes, env_for, env_label, load_policy, registered_env
from simgate.errors import Party, PluginCodeError, PolicyCodeError, blaming
from simgate.search.space import written_row
from simgate.watchdog import GuardedPolicy


def perturbations_for(case, regs) -> list:
    """The case's perturbation instances, built by their registered kinds. A kind's schema or
    constructor that raises is named (PluginCodeError)."""
    out = []
    for i, entry in enumerate(case.perturbations):
        cls = regs.perturbations.get(entry["kind"])
        try:
            out.append(cls(cls.Params.model_validate(entry["params"])))
        except Exception as exc:  # noqa: BLE001 - the perturbation plugin's schema and constructor
            raise PluginCodeError(perturbation_label(regs, entry["kind"], i), exc) from exc
    return out


def perturbation_label(regs, kind: str, position: int) -> str:
    """How a message names one of a case's perturbations: its kind, place and plugin."""
    owner = f", plugin {regs.perturbations.owner(kind)}" if regs is not None and kind in regs.perturbations else ""
    return f"perturbation {kind!r} (perturbations[{position}]{owner})"


def parties_of(case, registries, env, perturbations, policy_name: str | None, policy) -> list[Party]:
    """Whose code runs in an engine of this case besides simgate's: the env, each perturbation
    and the policy (:func:`simgate.errors.blaming`). ``registries`` (None: labels without the
    plugins) names the plugins."""
    label = (env_label(registries.envs, case.env) if registries is not None and case.env in registries.envs
             else f"env {getattr(env, 'name', case.env)!r}")
    parties = [Party(label, env)]
    kinds = [entry["kind"] for entry in case.perturbations]
    for i, p in enumerate(perturbations or ()):
        kind = kinds[i] if i < len(kinds) else getattr(p, "kind", type(p).__name__)
        parties.append(Party(perturbation_label(registries, kind, i), p))
    if policy is not None:
        parties.append(Party(f"policy {policy_name!r}", policy, error=PolicyCodeError))
    return parties


def engine_name(engine) -> str:
    """``batched`` / ``reference``: the name an episode's engine is recorded by."""
    name = getattr(engine, "name", None)
    return name if isinstance(name, str) else type(engine).__name__.removesuffix("Engine").lower()


def episode_cache(cache_dir, case, env, engine, spec, policy):
    """The case's episode cache under ``cache_dir`` (None: no caching). When an input the episodes
    depend on cannot be hashed, a falsy ``cache.Refused`` saying why: everything is computed."""
    if cache_dir is None:
        return None

    perturbations = getattr(engine, "perturbations", None)
    if perturbations is None:
        return cache.Refused(f"{type(engine).__name__} does not say which perturbations it applies")
    try:
        context = cache.context(case, env, engine.nominal, spec, policy, perturbations)
    except (cache.Undigestable, OSError) as exc:
        return cache.Refused(f"episode cache off for case {case.id!r}: {exc}")
    return cache.EpisodeCache(Path(cache_dir), context)


@dataclasses.dataclass
class Counts:
    """Episodes handed out: ``computed`` (here or remotely), ``cached`` (from the episode cache),
    ``engines`` (by the engine that computed them; a cached one keeps the engine that first did),
    ``damaged`` (cache entries found but not used: damaged, tampered, of another layout; their
    episodes are among ``computed``)."""

    computed: int = 0
    cached: int = 0
    engines: Counter = dataclasses.field(default_factory=Counter)
    damaged: int = 0


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
        self._cache_off: str | None = getattr(cache, "reason", None)  # why nothing is (or is any longer) cached
        self.unit = env.progress_unit
        self.counts = counts if counts is not None else Counts()
        self.engine_name = engine_name(engine)
        #: whose code besides simgate's the engine runs: what an exception out of it is charged to
        if policy is None:  # the policy the engine calls, without simgate's watchdog around it
            policy = getattr(engine, "policy", None)
            policy = getattr(policy, "inner", policy)
        self.parties = parties_of(case, registries, env, self.perturbations, policy_name, policy)

    # -- the parts, as the runner's callers name them ------------------------------------------------
    @property
    def runner(self):
        """The engine, under the name the runner's callers used before the rig (prefer ``engine``)."""
        return self.engine

    @property
    def cache_note(self) -> str | None:
        """What a person should know about the episode cache for this case: why it was not used
        (an input that cannot be hashed, a folder that cannot be written), and how many entries
        were found damaged and computed again."""
        notes = [self._cache_off] if self._cache_off else []
        if self.counts.damaged:
            notes.append(f"{self.counts.damaged} cached episode(s) of case {self.case.id!r} were damaged, tampered "
                         "with or of another layout: computed again and stored anew")
        return "; ".join(notes) or None

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

    def benign(self) -> CaseRig:
        """This case's benign arm: the same policy in the same env binding, on the same seeds (so the
        same starts: :mod:`simgate.benign`), with every perturbation switched off; its own cache
        entries (keyed without the perturbations), its episodes counted with this rig's."""
        return _build(benign_case(self.case), self.policy_name, self.registries, self.choice, self.cache_dir, self.watchdog,
                      self.remote, base_env=self.env, perturbations=[], counts=self.counts)

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
            damaged = self.cache.damaged
            for p, i in enumerate(indices):
                found[p] = self.cache.load(i, row_of(p))
            self.counts.damaged += self.cache.damaged - damaged
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
        with self.watchdog.computing(self.policy_name) if self.watchdog is not None else contextlib.nullcontext():
            return self._computed(indices, rows)

    def _computed(self, indices: list, rows: list | None) -> tuple[str, list]:
        written = None if rows is None else [self.row_params(row) for row in rows]
        remote = self.remote_rows()
        got = remote(indices, written) if remote is not None else None
        if got is not None:
            return got
        overrides = None
        if written is not None:  # a row the kind's schema refuses raises its ValidationError as it is

            overrides = row_overrides(self.engine, written)
        with blaming(*self.parties):
            return self.engine_name, self.engine.run(self.case, indices, overrides).episodes

    def row_params(self, row: dict) -> dict[int, dict]:
        """A search row ``{axis: value}`` as the engine takes it: perturbation index -> that
        perturbation's params with the row's values written in."""

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
        except OSError as exc:  # read-only, full, a file where the folder should be: run uncached

            self.cache, self._cache_off = None, (f"episode cache disabled for case {self.case.id!r}: cannot write "
                                                 f"{getattr(exc, 'filename', None) or exc} ({type(exc).__name__}: {exc}); "
                                                 "the remaining episodes are computed and not stored")
            try:
                warnings.warn(self._cache_off, RuntimeWarning, stacklevel=3)
            except Warning:  # -W error must not turn a cache problem into a failed case
                pass

    def rollouts(self, episodes: list):
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
    spec = registries.policies.get(policy_name)
    if base_env is None:
        # a baseline runs in the candidate's env (the built-in hold sends its neutral action)
        candidate = spec if policy_name == case.policy else registries.policies.get(case.policy)
        base_env = registered_env(registries.envs, case.env, candidate)
    with blaming(Party(env_label(registries.envs, case.env), base_env)):
        env = env_for(base_env, spec)
    check_sizes(spec, env)
    if perturbations is None:
        perturbations = perturbations_for(case, registries)
    policy = load_policy(spec, env)
    acting = policy
    if watchdog is not None:
        acting = GuardedPolicy(policy, watchdog)
    keyed = case if policy_name == case.policy else dataclasses.replace(case, policy=policy_name)
    with blaming(*parties_of(case, registries, env, perturbations, policy_name, policy)):
        engine = make_engine(env, acting, perturbations, env.action_size, choice, policy_name,
                             hard_limits=getattr(case, "hard_limits", None))
        cache = episode_cache(cache_dir, keyed, env, engine, spec, policy)
    return CaseRig(case, policy_name, env, engine, cache, spec=spec, policy=policy, perturbations=perturbations,
                   remote=remote, watchdog=watchdog, keyed=keyed, registries=registries, choice=choice,
                   cache_dir=cache_dir, counts=counts)
