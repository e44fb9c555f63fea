"""``--simgate-ray ADDRESS``: the episodes of every selected case computed on a Ray cluster, ahead
of the test items, straight into the driver's episode cache.

The controller (this pytest process; xdist is not used with Ray) plans, once collection is done,
every selected fixed-size case's episodes, the candidate's and its baseline's (the same indices),
into chunks and submits each chunk as a Ray task. A task builds the env, the policy and the
perturbations through the same plugin host as a local run (the project's root travels as the
task's ``working_dir``, so the registered modules and the policy files travel by content), runs the
engine on exactly its indices, and returns the Episode objects. The driver ``put``s them into the
episode cache (:func:`simgate.runner.episode_cache`) as chunks finish. Each test item then runs
:func:`simgate.runner.run_case` as in a ``-n 0`` run: it finds its episodes in the cache, so the
verdicts come from the same code path.

Same bits. A chunk of the batched engine is exactly one of the lanes the local run would use
(``lane_size`` of the case's episodes, the same indices per lane): the policy sees the same batch
rows, so even a policy whose outputs depend on the batch (torch) gives the same episodes. A task
runs a few whole lanes (:func:`tasks_for`), which the engine splits into the same lanes again. A
task also recomputes the case's cache context on the worker (simgate's source, runtime versions,
the env's model, the policy's file bytes or code, the perturbations' code) and refuses to run when
it differs from the driver's: an episode is never stored under a key its inputs do not match. A
worker builds each case once and reuses it for its later chunks.

Faults. Ray retries a task whose worker or node died (``max_retries``). A chunk that fails for
any other reason (a policy that raises out of the engine, a worker whose inputs differ) is left
out of the cache and its case computes those episodes locally, as without Ray, where the error is
reported the usual way. Time limits: a worker runs each chunk under :mod:`simgate.watchdog` with
the case's limits (``case_timeout`` for the chunk, ``policy_timeout`` for each policy call); a
chunk stopped there is not retried, the other chunks of that case and policy are cancelled, and
the item runs the case locally, where the same watchdog ends it as ``policy_error (timeout)`` with
the message a ``-n 0`` run gives. The driver plans a case (loading its policy) under the same
limits, and a wait in which no chunk finishes for ``case_timeout`` + GRACE seconds gives up on
that case's chunks. Sequential cases (their batches depend on earlier outcomes), search cases
(their next levels depend on earlier ones) and cases without a cache run locally, as today.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import defaultdict
from pathlib import Path

#: how often Ray resubmits a chunk whose worker or node died
MAX_RETRIES = 4
#: episodes per chunk of the reference engine (the batched engine's chunk is one of its lanes)
REFERENCE_CHUNK = 32
#: a task runs whole chunks (lanes): at most this many, and a case gets at least TASKS_PER_CPU
#: tasks per CPU of the cluster; fewer, longer tasks cost the driver less per episode
MAX_LANES = 8
TASKS_PER_CPU = 4
#: seconds the progress line reuses the cluster's node and CPU counts (asking the GCS costs)
RESOURCES_EVERY = 5.0
#: seconds a wait for a case's chunks may see no chunk finish beyond the case's own case_timeout
#: (each chunk is stopped by the worker's watchdog at case_timeout; this is only a backstop for
#: a worker that cannot be interrupted)
GRACE = 60.0
#: never shipped to the workers with the project's root
EXCLUDES = [".venv", "venv", ".git", "reports", "**/__pycache__", "*.pyc", ".pytest_cache", ".hypothesis",
            "build", "dist", "*.egg-info"]


class RayError(Exception):
    """A Ray run that cannot start (no ray installed, no cluster at the address)."""


# -- the worker side ----------------------------------------------------------------------------
_HOSTS: dict = {}
#: (plugins, case, policy, engine) → (runner, cache context, watchdog): a worker builds a case once,
#: not once per chunk (building and hashing the inputs cost about a tenth of a lane's run)
_BUILT: dict = {}


def _host(plugins: tuple):
    from simgate.plugin_manager import Host

    if plugins not in _HOSTS:
        _HOSTS[plugins] = Host(project_plugins=list(plugins))
    return _HOSTS[plugins]


def build_for(case, policy_name: str, host, engine: str, watchdog=None):
    """The engine, env, policy spec, loaded policy and cache-keyed case of ``case`` run by
    ``policy_name``: the same calls as :func:`simgate.runner.run_case` (on the driver to plan, on a
    worker to run). With ``watchdog`` the engine calls the policy through
    :class:`simgate.watchdog.GuardedPolicy`, as a local run does."""
    from simgate.engine import make_engine
    from simgate.runner import build_env, check_sizes, perturbations_for

    regs = host.registries
    env = build_env(regs.envs.get(case.env))
    spec = regs.policies.get(policy_name)
    check_sizes(spec, env)
    policy = spec.load()
    acting = policy
    if watchdog is not None:
        from simgate.watchdog import GuardedPolicy

        acting = GuardedPolicy(policy, watchdog)
    runner = make_engine(env, acting, perturbations_for(case, regs), spec.action_size, engine)
    keyed = dataclasses.replace(case, policy=policy_name)  # how runner.py keys a baseline's episodes
    return runner, env, spec, policy, keyed


def context_of(case, policy_name: str, host, engine: str, cache_dir) -> tuple:
    """(runner, EpisodeCache or None): None when the case's inputs cannot be hashed."""
    from simgate.runner import episode_cache

    runner, env, spec, policy, keyed = build_for(case, policy_name, host, engine)
    cache = episode_cache(Path(cache_dir), keyed, env, runner, spec, policy)
    return runner, (cache if cache else None)


def _built(plugins: tuple, case, policy_name: str, engine: str):
    """(runner, the worker's cache context, its watchdog), built once per worker and case."""
    import pickle

    from simgate.runner import episode_cache
    from simgate.watchdog import Watchdog

    key = (plugins, pickle.dumps(case), policy_name, engine)
    if key not in _BUILT:
        dog = Watchdog(case.case_timeout, case.policy_timeout)
        with dog:  # loading a policy can hang too
            runner, env, spec, policy, keyed = build_for(case, policy_name, _host(plugins), engine, dog)
            cache = episode_cache(Path("/nonexistent-simgate-cache"), keyed, env, runner, spec, policy)
        _BUILT[key] = (runner, cache.context if cache else None, dog)
    return _BUILT[key]


def run_chunk(plugins: tuple, case, policy_name: str, engine: str, indices: list, context: str) -> tuple:
    """On a worker: the episodes ``indices`` of ``case`` run by ``policy_name``, as
    ``("ok", engine name, episodes)``; ``("timeout", message)`` when the case's time limits
    stopped it (``case_timeout`` for the chunk, ``policy_timeout`` for each policy call), as
    :mod:`simgate.watchdog` stops a local case. Refuses when the worker's inputs (code, versions,
    model, policy bytes) do not give the driver's cache context."""
    from simgate.watchdog import TimeLimit

    try:
        runner, worker_context, dog = _built(tuple(plugins), case, policy_name, engine)
        if worker_context != context:
            raise RuntimeError(f"case {case.id!r}, policy {policy_name!r}: the worker's inputs differ from the "
                               "driver's (simgate source, Python/MuJoCo/numpy versions, model, policy file or "
                               "code); not run here")
        with dog:  # a Ray task runs in its worker's main thread, where SIGALRM is delivered
            episodes = runner.run(case, indices).episodes
    except TimeLimit as exc:  # a BaseException: Ray would take it for a dead worker and retry
        return ("timeout", str(exc))
    name = type(runner).__name__.removesuffix("Engine").lower()
    return ("ok", name, episodes)


# -- the driver side ----------------------------------------------------------------------------
def chunks_for(case, runner) -> list[list[int]]:
    """The case's episodes as the local run splits them: the batched engine's lanes (the policy's
    batch is the lane), else runs of REFERENCE_CHUNK episodes (the reference engine runs each
    episode on its own)."""
    from simgate.engine.batched import BatchedEngine, lane_size

    size = lane_size(case.episodes, runner.chunk) if isinstance(runner, BatchedEngine) else REFERENCE_CHUNK
    return [list(range(first, min(first + size, case.episodes))) for first in range(0, case.episodes, size)]


def tasks_for(lanes: list[list[int]], cpus: int) -> list[list[int]]:
    """Whole lanes grouped into tasks: at least TASKS_PER_CPU tasks per CPU of the cluster (so the
    last ones finish together), at most MAX_LANES lanes each (so a lost node loses little). A task
    of several lanes gives the same bits: the engine splits its indices into the same lanes (only
    a case's last lane can be short, and it stays last in its task)."""
    per = max(1, min(MAX_LANES, len(lanes) // max(1, TASKS_PER_CPU * cpus)))
    return [[i for lane in lanes[k:k + per] for i in lane] for k in range(0, len(lanes), per)]


def project_root(config) -> Path:
    return Path(config.rootpath)


class RayScheduler:
    """A pytest plugin: submits the selected cases' episodes at collection end, and before each
    simgate item waits for its case's chunks (storing every chunk that finished meanwhile)."""

    def __init__(self, config, address: str):
        self.config, self.address = config, address
        self.ray = None
        self.started_here = False
        self.pending: dict = {}  # ObjectRef → (cache, case id, n episodes)
        self.by_case: dict = defaultdict(set)  # case id → its pending refs
        self.waiters: dict = {}  # ref → the case ids that wait for it
        self.siblings: dict = {}  # ref → every ref of its case and policy
        self._cluster = None  # (when asked, alive nodes, CPUs)
        self.failed: list[str] = []
        self.episodes_total = self.episodes_done = self.steps_done = 0
        self.cases_planned = 0
        self.t0 = None

    # -- start ----------------------------------------------------------------------------------
    def connect(self) -> None:
        try:
            import ray
        except ImportError:
            raise RayError("--simgate-ray needs Ray: pip install -e \".[ray]\"") from None
        self.ray = ray
        from simgate.pytest_plugin import _cache_dir, _reports_dir

        root = project_root(self.config)
        excludes = list(EXCLUDES)
        for folder in (_cache_dir(self.config), _reports_dir(self.config)):  # never upload results
            try:
                excludes.append("/" + Path(folder).resolve().relative_to(root.resolve()).as_posix())
            except ValueError:
                pass  # outside the project: not uploaded anyway
        runtime_env = {"working_dir": str(root), "excludes": excludes,
                       "env_vars": {"SIMGATE_ENGINE_THREADS": "1"}}
        for var in ("SIMGATE_DISABLE_PLUGIN_AUTOLOAD",):
            if os.environ.get(var):
                runtime_env["env_vars"][var] = os.environ[var]
        kwargs = dict(runtime_env=runtime_env, log_to_driver=False, logging_level="ERROR")
        if self.address == "local":
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file written into HOME
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs.update(address="local", include_dashboard=False)
            cpus = os.environ.get("SIMGATE_RAY_CPUS")
            if cpus:
                kwargs["num_cpus"] = int(cpus)
        else:
            kwargs["address"] = self.address
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 (ConnectionError, ValueError, ...: said as one message)
            raise RayError(f"--simgate-ray {self.address}: cannot start or join Ray: {type(exc).__name__}: {exc}") from None
        self.started_here = True

    # -- plan and submit ------------------------------------------------------------------------
    def _cluster_cpus(self) -> int:
        try:
            return max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        except Exception:  # noqa: BLE001 (only sizes the tasks)
            return 1

    def _plan(self, case, policy_name: str, host, engine: str, cache_dir):
        """(runner, cache) of one case and policy, or (None, None) when it runs locally. Loading
        a policy can hang: the case's own limits apply, as in a local run (whose item then
        reports the timeout)."""
        from simgate.watchdog import TimeLimit, Watchdog

        try:
            with Watchdog(case.case_timeout, case.policy_timeout):
                return context_of(case, policy_name, host, engine, cache_dir)
        except TimeLimit as exc:
            self.failed.append(f"{case.id}: {exc}")
        except Exception:  # noqa: BLE001 (a setup error: run_case reports it the usual way)
            pass
        return None, None

    def submit(self, cases: list) -> None:
        from simgate.pytest_plugin import HOST, _cache_dir, _project_plugins

        cache_dir = _cache_dir(self.config)
        host = self.config.stash[HOST]
        plugins = tuple(_project_plugins(self.config))
        engine = self.config.getoption("simgate_engine")
        task = self.ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(run_chunk)
        cpus = self._cluster_cpus()
        planned: dict = {}  # cache context → its refs (a baseline shared by several candidates: planned once)
        self.t0 = time.monotonic()
        for case in cases:
            if case.sequential or getattr(case, "search", None):
                continue  # its batches depend on earlier outcomes: run on the driver (runner.collect)
            roles = [case.policy] + ([case.baseline] if case.baseline else [])
            for policy_name in roles:
                runner, cache = self._plan(case, policy_name, host, engine, cache_dir)
                if cache is None:
                    continue
                if cache.context in planned:  # this case waits for them too
                    self.by_case[case.id].update(planned[cache.context])
                    for ref in planned[cache.context]:
                        self.waiters[ref].append(case.id)
                    continue
                refs = planned[cache.context] = set()
                self.cases_planned += 1
                # only lanes with no entry at all (an existence test: reading and checking every
                # entry costs as much as writing it); a part-cached lane is computed locally, as
                # the local run would split it, and so is one whose entry turns out damaged
                lanes = [lane for lane in chunks_for(case, runner)
                         if not any(cache.path(i).exists() for i in lane)]
                for indices in tasks_for(lanes, cpus):
                    ref = task.remote(plugins, case, policy_name, engine, indices, cache.context)
                    self.pending[ref] = (cache, case.id, len(indices))
                    self.by_case[case.id].add(ref)
                    self.waiters[ref] = [case.id]
                    self.siblings[ref] = refs
                    refs.add(ref)
                    self.episodes_total += len(indices)

    # -- collect ----------------------------------------------------------------------------------
    def drain(self, until: set | None = None, idle: float | None = None) -> None:
        """Store finished chunks; return once every ref of ``until`` is done (all if None). When
        no chunk at all finished for ``idle`` seconds while some of ``until`` are left, those are
        cancelled (their episodes are then computed locally)."""
        ray = self.ray
        last = time.monotonic()
        while self.pending:
            wanted = list(self.pending) if until is None else [r for r in until if r in self.pending]
            if not wanted:
                return
            left = None if idle is None else max(0.0, last + idle - time.monotonic())
            # one call for everything finished: a ready ref's object is fetched here as it completes
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=1.0 if left is None else min(1.0, left))
            if ready:
                ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)
                self._store(ready)
                last = time.monotonic()
            elif left is not None and left <= 0:
                for ref in [r for r in wanted if r in self.pending]:
                    cache, cid, n = self.pending[ref]
                    self.failed.append(f"{cid}: no chunk finished for {idle:g} s; cancelled")
                    self._cancel(ref)
                return

    def _cancel(self, ref) -> None:
        try:
            self.ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 (already finished or gone)
            pass
        self._forget(ref)

    def _forget(self, ref) -> None:
        self.pending.pop(ref, None)
        self.siblings.pop(ref, None)
        for cid in self.waiters.pop(ref, ()):  # no ref kept: Ray frees the chunk's result
            self.by_case[cid].discard(ref)

    def _store(self, refs: list) -> None:
        try:
            results = self.ray.get(refs)
        except Exception:  # noqa: BLE001 (one of them failed: taken one by one)
            results = None
        for k, ref in enumerate(refs):
            if ref not in self.pending:
                continue  # cancelled with a sibling that timed out
            cache, cid, n = self.pending[ref]
            try:
                result = results[k] if results is not None else self.ray.get(ref)
            except Exception as exc:  # noqa: BLE001 (the case computes these episodes locally)
                self.failed.append(f"{cid}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}")
                self._forget(ref)
                continue
            if result[0] == "timeout":
                # the other chunks of this case and policy would hang the same way: the item runs
                # the case locally, where its watchdog reports the timeout as in a -n 0 run
                self.failed.append(f"{cid}: {result[1]}")
                for sibling in list(self.siblings.get(ref, ())):
                    if sibling is not ref and sibling in self.pending:
                        self._cancel(sibling)
                self._forget(ref)
                continue
            _, engine, episodes = result
            for episode in episodes:
                try:
                    cache.put(episode, engine)
                except OSError:
                    break  # run_case finds the cache unwritable and says so
            self.episodes_done += n
            self.steps_done += sum(int(e.length) for e in episodes)
            self._forget(ref)

    def _resources(self) -> tuple[int, float]:
        """(alive nodes, CPUs) of the cluster, asked at most every RESOURCES_EVERY seconds."""
        now = time.monotonic()
        if self._cluster is None or now - self._cluster[0] >= RESOURCES_EVERY:
            try:
                cpus = float(self.ray.cluster_resources().get("CPU", 0))
                nodes = len([n for n in self.ray.nodes() if n.get("Alive")])
            except Exception:  # noqa: BLE001 (a line of progress is not worth failing for)
                cpus, nodes = 0.0, 0
            self._cluster = (now, nodes, cpus)
        return self._cluster[1], self._cluster[2]

    def progress_line(self) -> str:
        elapsed = time.monotonic() - (self.t0 or time.monotonic())
        rate = self.episodes_done / elapsed if elapsed > 0 else 0.0
        nodes, cpus = self._resources() if self.ray is not None and self.ray.is_initialized() else (0, 0.0)
        line = (f"simgate ray: chunks left {len(self.pending)}, episodes {self.episodes_done}/{self.episodes_total}, "
                f"{rate:.0f} episodes/s, {self.steps_done / max(elapsed, 1e-9):.0f} control steps/s, "
                f"{nodes} node(s), {cpus:g} CPU")
        if rate > 0:
            eta = round((self.episodes_total - self.episodes_done) / rate)
            line += f", ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
        return line

    # -- pytest hooks -----------------------------------------------------------------------------
    def pytest_collection_finish(self, session) -> None:
        from simgate.controller import _case_of

        if self.config.option.collectonly:
            return
        cases, ids = [], set()
        for item in session.items:
            case = _case_of(item)
            if case is not None and case.id not in ids:
                ids.add(case.id)
                cases.append(case)
        if not cases:
            return
        import pytest

        try:
            self.connect()
        except RayError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.submit(cases)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"simgate ray: {self.episodes_total} episodes of {self.cases_planned} case/policy "
                                f"pair(s) submitted as {len(self.pending)} chunks")

    def pytest_runtest_setup(self, item) -> None:
        from simgate.controller import _case_of

        case = _case_of(item)
        if case is None or self.ray is None:
            return
        self.drain(until=set(self.by_case.get(case.id, ())), idle=case.case_timeout + GRACE)

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        if self.ray is None or not self.episodes_total or not self.config.pluginmanager.get_plugin(
                "simgate-controller")._wants_progress():
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(self.progress_line())

    def pytest_sessionfinish(self, session) -> None:
        self.close()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.ray is None and not self.failed:
            return
        terminalreporter.write_line(f"simgate ray: {self.episodes_done} episodes computed on Ray")
        for line in self.failed:
            terminalreporter.write_line(f"simgate ray: chunk not computed on Ray (run locally): {line}")

    def close(self) -> None:
        ray = self.ray
        if ray is None or not ray.is_initialized():
            return
        for ref in list(self.pending):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001
                pass
        self.pending.clear()
        self.siblings.clear()
        self.by_case.clear()
        self.waiters.clear()
        if self.started_here:
            ray.shutdown()


def configure(config) -> None:
    """Called by simgate's pytest plugin when ``--simgate-ray`` is given."""
    from simgate.errors import SimgateError
    from simgate.pytest_plugin import _cache_dir

    address = config.getoption("simgate_ray")
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "dist", "no") != "no":
        raise SimgateError("--simgate-ray and xdist (-n, --dist) do not go together: Ray schedules the episodes; "
                           "run without -n (or with -n 0)")
    if _cache_dir(config) is None:
        raise SimgateError("--simgate-ray streams episodes into the episode cache: it cannot run with --simgate-cache none")
    config.pluginmanager.register(RayScheduler(config, address), "simgate-ray")
