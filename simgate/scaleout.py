"""``--simgate-ray ADDRESS``: the episodes of every selected case computed on a Ray cluster, ahead
of the test items, straight into the driver's episode cache.

The controller (this pytest process; xdist is not used with Ray) plans, once collection is done,
every selected fixed-size case's episodes, the candidate's and its baseline's (the same indices),
into tasks, and keeps the cluster fed with them in the items' order (a window of
WINDOW_PER_CPU tasks per CPU in flight). A task builds the env, the policy and the perturbations
through the same plugin host as a local run (the project's root travels as the task's
``working_dir``, so the registered modules and the policy files travel by content), runs the
engine on exactly its indices, and returns the Episode objects. A collector thread ``put``s them
into the episode cache (:func:`simgate.rig.episode_cache`) as tasks finish. Each test item
then runs :func:`simgate.runner.run_case` as in a ``-n 0`` run: it finds its episodes in the
cache, so the verdicts come from the same code path. What an item asks for while it runs (a
sequential case's batches, a search's rows, the determinism repeats, a lane not in the cache)
goes through :meth:`RayScheduler.compute` to the cluster too; with only the window ahead of it in
the queue, it starts at once while the planned tasks keep the other CPUs busy.

The words (episode, lane, rows, task) are those of :mod:`simgate.engine`'s docstring: a task is
one Ray remote call, computing whole lanes of one case and policy.

Same bits. A task runs whole lanes of the local run (:func:`lanes_for`: for the batched engine
``lane_size`` of the case's episodes, the same indices per lane; for the reference engine runs of
REFERENCE_LANE episodes): the policy sees the same batch rows, so even a policy whose outputs
depend on the batch (torch) gives the same episodes. A task of several lanes (:func:`tasks_for`)
is split by the engine into the same lanes again. A task also recomputes the case's cache context
on the worker (simgate's source, runtime versions, the env's model, the policy's file bytes or
code, the perturbations' code) and refuses to run when it differs from the driver's: an episode is
never stored under a key its inputs do not match. A worker builds each case once and reuses it for
its later tasks.

Faults. Ray retries a task whose worker or node died (``max_retries``). A task that fails for any
other reason (a policy that raises out of the engine, a worker whose inputs differ: Ray raises it
on the driver as a RayError) is left out of the cache and its case computes those episodes
locally, as without Ray, where the error is reported the usual way (a fault in simgate as a
fault). Only what Ray raises is taken as a Ray problem (:func:`ray_faults`): a case whose setup
fails while it is planned is left to its item, which reports it; any other exception while
planning or collecting is a fault in simgate and is raised (at collection: INTERNALERROR; in the
collector thread: in every item that waits for it). Time limits: a worker runs each task under
:mod:`simgate.watchdog` with the case's limits (``case_timeout`` for the task, ``policy_timeout``
for each policy call); a task stopped there is not retried, the other tasks of that case and
policy are cancelled, and the item runs the case locally, where the same watchdog ends it as
``policy_error (timeout)`` with the message a ``-n 0`` run gives. The driver plans a case (loading
its policy) under the same limits, and a wait in which no task finishes for ``case_timeout`` +
GRACE seconds gives up on that case's tasks. Cases without a cache context run locally, as today.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import socket
import threading
import time
from collections import Counter, defaultdict, deque
from pathlib import Path

from simgate.benign import benign_case, has_arm
from simgate.engine.batched import BatchedEngine, lane_size
from simgate.engine.reference import row_overrides
from simgate.errors import CodeError, SimgateError
from simgate.items import case_of
from simgate.plugin_manager import Host
from simgate.policies.loaders import PolicyLoadError
from simgate.rig import build_rig, engine_name
from simgate.seeds import episode_indices
from simgate.watchdog import TimeLimit, Watchdog

#: how often Ray resubmits a task whose worker or node died
MAX_RETRIES = 4
#: episodes per lane of the reference engine, for scheduling (the batched engine's lanes are its own)
REFERENCE_LANE = 32
#: a task runs whole lanes: at most this many, and a case gets at least TASKS_PER_CPU tasks per
#: CPU of the cluster; fewer, longer tasks cost the driver less per episode
MAX_LANES = 8
TASKS_PER_CPU = 4
#: planned tasks in flight per CPU of the cluster (one running, one queued): enough to keep every
#: CPU busy, few enough that what an item asks for mid-case (compute) starts almost at once
WINDOW_PER_CPU = 2
#: seconds the progress line reuses the cluster's node and CPU counts (asking the GCS costs)
RESOURCES_EVERY = 5.0
#: seconds a wait for a case's tasks may see no task finish beyond the case's own case_timeout
#: (each task is stopped by the worker's watchdog at case_timeout; this is only a backstop for
#: a worker that cannot be interrupted)
GRACE = 60.0
#: seconds a TCP connection to a cluster's address may take at configure time; past it the address
#: is refused (ray.init itself retries an unreachable address forever, deaf to Ctrl-C)
CONNECT_TIMEOUT = 10.0
#: never shipped to the workers with the project's root
EXCLUDES = [".venv", "venv", ".git", "reports", "**/__pycache__", "*.pyc", ".pytest_cache", ".hypothesis",
            "build", "dist", "*.egg-info"]


class RayError(Exception):
    """A Ray run that cannot start (no ray installed, no cluster at the address)."""


def ray_faults(ray) -> tuple[type[BaseException], ...]:
    """What Ray raises when the cluster, a node, a worker or the connection fails, or when a task
    raised on its worker (``RayTaskError``, a ``RayError`` too): the exceptions this module takes
    as Ray's problem and names. Anything else is a fault in simgate."""
    return (ray.exceptions.RayError, ConnectionError, TimeoutError)


# -- the worker side ----------------------------------------------------------------------------
_HOSTS: dict = {}
#: (plugins, case, policy, engine) → (engine, cache context, watchdog): a worker builds a case once,
#: not once per task (building and hashing the inputs cost about a tenth of a lane's run)
_BUILT: dict = {}


def _host(plugins: tuple):
    if plugins not in _HOSTS:
        _HOSTS[plugins] = Host(project_plugins=list(plugins))
    return _HOSTS[plugins]


def build_for(case, policy_name: str, host, choice: str, watchdog=None):
    """The engine, env, policy spec, loaded policy and cache-keyed case of ``case`` run by
    ``policy_name``: its rig (:func:`simgate.rig.build_rig`, as :func:`simgate.runner.run_case`
    builds it; on the driver to plan, on a worker to run); ``choice``: auto / batched / reference.
    With ``watchdog`` the engine calls the policy through :class:`simgate.watchdog.GuardedPolicy`,
    as a local run does."""

    rig = build_rig(case, policy_name, host.registries, choice, watchdog=watchdog)
    return rig.engine, rig.env, rig.spec, rig.policy, rig.keyed


def context_of(case, policy_name: str, host, choice: str, cache_dir) -> tuple:
    """(engine, EpisodeCache or None): None when the case's inputs cannot be hashed."""

    rig = build_rig(case, policy_name, host.registries, choice, cache_dir=Path(cache_dir))
    return rig.engine, rig.cache


def _built(plugins: tuple, case, policy_name: str, choice: str):
    """(engine, the worker's cache context, its watchdog), built once per worker and case."""

    key = (plugins, pickle.dumps(case), policy_name, choice)
    if key not in _BUILT:
        dog = Watchdog(case.case_timeout, case.policy_timeout)
        # loading a policy can hang too
        rig = dog.run(build_rig, case, policy_name, _host(plugins).registries, choice,
                      Path("/nonexistent-simgate-cache"), dog)
        _BUILT[key] = (rig.engine, rig.cache.context if rig.cache else None, dog)
    return _BUILT[key]


def run_task(plugins: tuple, case, policy_name: str, choice: str, indices: list, context: str,
              rows: list | None = None) -> tuple:
    """On a worker: the episodes ``indices`` of ``case`` run by ``policy_name``, as
    ``("ok", engine name, episodes, {"engine": seconds, "physics": ..., "policy": ...})`` (where
    the engine's time went: MuJoCo's stepping and the policy's calls, batched engine only); ``("timeout", message)`` when the case's time limits
    stopped it (``case_timeout`` for the task, ``policy_timeout`` for each policy call), as
    :mod:`simgate.watchdog` stops a local case. ``rows`` (one params dict per episode, a search's
    rows) draws each episode's world from its row, as :class:`simgate.search.evaluate.Evaluator`
    does locally. Refuses when the worker's inputs (code, versions, model, policy bytes) do not
    give the driver's cache context."""

    try:
        engine, worker_context, dog = _built(tuple(plugins), case, policy_name, choice)
        if worker_context != context:
            raise RuntimeError(f"case {case.id!r}, policy {policy_name!r}: the worker's inputs differ from the "
                               "driver's (simgate source, Python/MuJoCo/numpy versions, model, policy file or "
                               "code); not run here")

        overrides = None if rows is None else row_overrides(engine, rows)
        timing = getattr(engine, "timing", {})
        before = dict(timing)
        start = time.perf_counter()
        episodes = dog.run(engine.run, case, indices, overrides).episodes
        seconds = {"engine": time.perf_counter() - start, **{k: timing[k] - before[k] for k in timing}}
    except TimeLimit as exc:  # a BaseException: Ray would take it for a dead worker and retry
        return ("timeout", str(exc))

    return ("ok", engine_name(engine), episodes, seconds)


run_chunk = run_task  # its former name (a benchmark submits it itself)


# -- the driver side ----------------------------------------------------------------------------
def lanes_for(case, engine) -> list[list[int]]:
    """The case's episodes as the local run splits them: the batched engine's lanes (the policy's
    batch is the lane), else runs of REFERENCE_LANE episodes (the reference engine runs each
    episode on its own)."""
    indices = episode_indices(case)  # a pinned case's own episodes; 0..n-1 for every other
    return [[indices[p] for p in lane] for lane in lanes_of(case.episodes, case, engine)]


chunks_for = lanes_for  # its former name


def lanes_of(n: int, case, engine) -> list[list[int]]:
    """Positions 0..n-1 of one ``engine.run`` call's indices, split as the engine splits them:
    consecutive lanes of the case's lane size (fixed by the case, never by n), the last one short."""

    size = lane_size(case.episodes, engine.lane_max) if isinstance(engine, BatchedEngine) else REFERENCE_LANE
    return [list(range(first, min(first + size, n))) for first in range(0, n, size)]


def tasks_for(lanes: list[list[int]], cpus: int) -> list[list[int]]:
    """Whole lanes grouped into tasks: at least TASKS_PER_CPU tasks per CPU of the cluster (so the
    last ones finish together), at most MAX_LANES lanes each (so a lost node loses little). A task
    of several lanes gives the same bits: the engine splits its indices into the same lanes (only
    a case's last lane can be short, and it stays last in its task)."""
    per = max(1, min(MAX_LANES, len(lanes) // max(1, TASKS_PER_CPU * cpus)))
    return [[i for lane in lanes[k:k + per] for i in lane] for k in range(0, len(lanes), per)]


@dataclasses.dataclass(eq=False)
class _Task:
    """One task's worth of a planned case: submitted when the window has room."""

    args: tuple  # run_task's
    cache: object
    case_id: str
    policy: str
    env: str
    control_dt: float
    waiters: list  # the case ids that wait for it (a shared baseline: several)
    siblings: set  # every task of its case and policy
    ref: object = None  # its ObjectRef, once submitted


class RayScheduler:
    """A pytest plugin: plans the selected cases' episodes at collection end and keeps the cluster
    fed with them (WINDOW_PER_CPU tasks per CPU in flight, in the items' order); a collector thread
    stores every task in the episode cache as it finishes (so a driver killed mid-run leaves what
    finished, and a re-run submits only the rest); before each simgate item, waits for its case's
    tasks. :meth:`compute` runs the episodes an item asks for during the case (a sequential
    case's batches, a search's rows, the determinism repeats, anything not in the cache) on the
    cluster too; having few tasks queued ahead of them, those start at once, and the planned
    tasks keep the other CPUs busy while the item thinks.

    What it needs of the run, simgate's pytest plugin gives it (this module imports neither the
    plugin nor its controller): the project's folder ``root`` (shipped to the workers), the
    episode cache and reports folders, the project's plugin modules (``plugins``, each worker
    builds its host from them) and the driver's plugin ``host``."""

    def __init__(self, config, address: str, *, root: Path, cache_dir: Path, reports_dir: Path, plugins, host):
        self.config, self.address = config, address
        self.root, self.cache_dir, self.reports_dir = Path(root), Path(cache_dir), Path(reports_dir)
        self.project_plugins, self.host = tuple(plugins), host
        self.ray = None
        self.started_here = False
        #: guards everything below it; notified whenever a task finishes or is given up
        self.lock = threading.Condition()
        self.backlog: deque = deque()  # planned tasks not submitted yet, in the items' order
        self.inflight: dict = {}  # ObjectRef → its _Task
        self.open: set = set()  # every task not finished (backlog and in flight)
        self.by_case: dict = defaultdict(set)  # case id → its open tasks
        #: (case id, policy) whose tasks hit a time limit or were given up: computed locally from then on
        self.gave_up: set = set()
        self._cluster = None  # (when asked, alive nodes, CPUs)
        self.failed: list[str] = []
        self.episodes_total = self.episodes_done = self.steps_done = 0
        self.simulated: dict[str, float] = defaultdict(float)  # env → simulated seconds computed on Ray
        self.worker_seconds: dict[str, float] = defaultdict(float)  # engine / physics / policy, over tasks
        self.tasks_planned = 0
        self.cases_planned = 0
        self.t0 = None
        self.last_done = time.monotonic()
        self.remote_task = self.plugins = self.choice = None
        #: a fault of simgate's own code in the collector thread, raised in the items that wait for it
        self.crashed: BaseException | None = None
        self.cpus = 1
        self._stop = threading.Event()
        self._collector: threading.Thread | None = None

    # -- start ----------------------------------------------------------------------------------
    def connect(self) -> None:
        try:
            import ray
        except ImportError:
            raise RayError("--simgate-ray needs Ray: pip install -e \".[ray]\"") from None
        self.ray = ray
        root = self.root
        excludes = list(EXCLUDES)
        for folder in (self.cache_dir, self.reports_dir):  # never upload results
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
        except Exception as exc:  # noqa: BLE001 - Ray's start-up code (ConnectionError, ValueError, ...): said as one message
            raise RayError(f"--simgate-ray {self.address}: cannot start or join Ray: {type(exc).__name__}: {exc}") from None
        self.started_here = True

    # -- plan and submit ------------------------------------------------------------------------
    def _cluster_cpus(self) -> int:
        try:
            return max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        except ray_faults(self.ray) as exc:  # only sizes the tasks: one CPU assumed, and said
            self.failed.append(f"the cluster's CPUs could not be asked ({type(exc).__name__}: {exc}); tasks sized "
                               "for one CPU")
            return 1

    def _plan(self, case, policy_name: str, host, choice: str, cache_dir):
        """(engine, cache) of one case and policy, or (None, None) when it runs locally. Loading
        a policy can hang: the case's own limits apply, as in a local run (whose item then
        reports the timeout). A case that cannot be set up (the user's input, a policy's or a
        plugin's code) runs locally, where its item reports it; a fault in simgate propagates."""

        try:
            return Watchdog(case.case_timeout, case.policy_timeout).run(context_of, case, policy_name, host, choice,
                                                                        cache_dir)
        except TimeLimit as exc:
            self.failed.append(f"{case.id}: {exc}")
        except (SimgateError, CodeError, PolicyLoadError) as exc:  # its item reports it (setup or policy error)
            self.failed.append(f"{case.id}: not planned: {exc}")
        return None, None

    def submit(self, cases: list) -> None:
        cache_dir = self.cache_dir
        host = self.host
        self.plugins = self.project_plugins
        self.choice = self.config.getoption("simgate_engine")
        self.remote_task = self.ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(run_task)
        self.cpus = self._cluster_cpus()
        planned: dict = {}  # cache context → its tasks (a baseline shared by several candidates: planned once)
        self.t0 = self.last_done = time.monotonic()
        self._collector = threading.Thread(target=self._collect, name="simgate-ray-collector", daemon=True)
        self._collector.start()
        for case in cases:
            if case.sequential or getattr(case, "search", None):
                continue  # its batches depend on earlier outcomes: the item asks for them (compute)
            # the candidate, its baseline on the same episodes, and its benign arm (perturbations off)
            roles = [(case, case.policy)] + ([(case, case.baseline)] if case.baseline else [])
            if has_arm(case):
                roles.append((benign_case(case), case.policy))
            for planned_case, policy_name in roles:
                engine, cache = self._plan(planned_case, policy_name, host, self.choice, cache_dir)
                if cache is None:
                    continue
                with self.lock:
                    if cache.context in planned:  # this case waits for them too
                        for task in planned[cache.context] & self.open:
                            task.waiters.append(case.id)
                            self.by_case[case.id].add(task)
                        continue
                siblings = planned[cache.context] = set()
                self.cases_planned += 1
                # only lanes with no entry at all (an existence test: reading and checking every
                # entry costs as much as writing it); a part-cached lane is computed when the
                # item asks for it, as the local run would split it, and so is a damaged one
                lanes = [lane for lane in lanes_for(planned_case, engine)
                         if not any(cache.path(i).exists() for i in lane)]
                with self.lock:
                    for indices in tasks_for(lanes, self.cpus):
                        task = _Task((self.plugins, planned_case, policy_name, self.choice, indices, cache.context), cache,
                                     case.id, policy_name, case.env, engine.control_dt, [case.id], siblings)
                        siblings.add(task)
                        self.open.add(task)
                        self.by_case[case.id].add(task)
                        self.backlog.append(task)
                        self.episodes_total += len(indices)
                        self.tasks_planned += 1
                    self._feed()  # the cluster starts on the first cases while the others are planned

    def _feed(self) -> None:
        """(lock held) Submit backlog tasks until WINDOW_PER_CPU per CPU are in flight."""
        while self.backlog and len(self.inflight) < WINDOW_PER_CPU * self.cpus:
            task = self.backlog.popleft()
            task.ref = self.remote_task.remote(*task.args)
            self.inflight[task.ref] = task
        self.lock.notify_all()

    # -- collect ----------------------------------------------------------------------------------
    def _collect(self) -> None:
        """The collector thread: stores every task as it finishes, whatever the items do, and
        keeps the window full. A fault of simgate's here is kept in ``crashed`` and raised in
        every item that waits for its tasks (:meth:`wait_for`)."""
        try:
            self._collect_until_stopped()
        except BaseException as exc:  # noqa: BLE001 - handed to the items, raised there (wait_for)
            with self.lock:
                self.crashed = exc
                self.lock.notify_all()

    def _collect_until_stopped(self) -> None:
        ray = self.ray
        while not self._stop.is_set():
            with self.lock:
                refs = list(self.inflight)
                if not refs:
                    self.lock.wait(0.5)
                    continue
            try:
                ready, _ = ray.wait(refs, num_returns=1, timeout=0.5)
                if ready:  # everything finished by now, in one call
                    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            except ray_faults(ray):  # Ray shutting down under us (close() is on its way) or a lost connection
                if self._stop.wait(0.5):
                    return
                continue
            if ready:
                self._store(ready)
                with self.lock:
                    self._feed()

    def wait_for(self, case_id: str, idle: float) -> None:
        """Return once no task of ``case_id`` is open; its tasks still in the backlog go first.
        When no task at all finished for ``idle`` seconds while some of the case's are left,
        those are cancelled (their episodes are then computed when the item asks for them)."""
        with self.lock:
            mine = [c for c in self.backlog if c in self.by_case.get(case_id, ())]
            if mine:  # the item needs them now (their turn had not come: a re-ordered selection)
                for task in mine:
                    self.backlog.remove(task)
                self.backlog.extendleft(reversed(mine))
                self._feed()
            while True:
                if self.crashed is not None:
                    raise RuntimeError(f"simgate's Ray collector thread failed ({type(self.crashed).__name__}: "
                                       f"{self.crashed}); case {case_id!r} is not run") from self.crashed
                left = list(self.by_case.get(case_id, ()))
                if not left:
                    return
                if self._collector is None or not self._collector.is_alive():
                    for task in left:  # nobody stores them any more
                        self._cancel(task)
                    return
                if time.monotonic() - self.last_done > idle:
                    for task in left:
                        self.failed.append(f"{task.case_id}: no task finished for {idle:g} s; cancelled")
                        self.gave_up.add((task.case_id, task.policy))
                        self._cancel(task)
                    return
                self.lock.wait(1.0)

    def _cancel(self, task) -> None:
        """(lock held)"""
        if task.ref is not None:
            self._cancel_ref(task.ref)
        self._forget(task)

    def _cancel_ref(self, ref) -> None:
        try:
            self.ray.cancel(ref, force=True)
        except ray_faults(self.ray):  # its worker or Ray itself already gone
            pass

    def _forget(self, task) -> None:
        """(lock held)"""
        if task not in self.open:
            return
        self.open.discard(task)
        if task.ref is None:
            self.backlog.remove(task)
        self.inflight.pop(task.ref, None)  # no ref kept: Ray frees the task's result
        for cid in task.waiters:
            self.by_case[cid].discard(task)
        self.lock.notify_all()

    def _store(self, refs: list) -> None:
        """(collector thread) Fetch finished tasks and put their episodes into the cache; the
        lock is not held while fetching or writing, so an item is never held up by another
        case's task."""
        try:
            results = self.ray.get(refs)
        except ray_faults(self.ray):  # one of them failed: taken one by one
            results = None
        for k, ref in enumerate(refs):
            with self.lock:
                task = self.inflight.get(ref)
            if task is None:
                continue  # cancelled with a sibling that timed out
            try:
                result = results[k] if results is not None else self.ray.get(ref)
            except ray_faults(self.ray) as exc:  # the case computes these episodes when its item runs
                with self.lock:
                    self.failed.append(f"{task.case_id}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}")
                    self._forget(task)
                continue
            if result[0] == "timeout":
                # the other tasks of this case and policy would hang the same way: the item runs
                # the case locally, where its watchdog reports the timeout as in a -n 0 run
                with self.lock:
                    self.failed.append(f"{task.case_id}: {result[1]}")
                    self.gave_up.add((task.case_id, task.policy))
                    for sibling in list(task.siblings & self.open):
                        if sibling is not task:
                            self._cancel(sibling)
                    self._forget(task)
                continue
            _, computed_by, episodes, seconds = result
            for stored, episode in enumerate(episodes):
                try:
                    task.cache.put(episode, computed_by)
                except OSError as exc:  # the item computes the rest, finds the cache unwritable and says so
                    with self.lock:
                        self.failed.append(f"{task.case_id}: {len(episodes) - stored} episode(s) computed on Ray not "
                                           f"stored ({type(exc).__name__}: {exc})")
                    break
            with self.lock:
                self._count(task.env, task.control_dt, episodes, seconds)
                self.last_done = time.monotonic()
                self._forget(task)

    def _count(self, env: str, control_dt: float, episodes: list, seconds: dict) -> None:
        """(lock held)"""
        for part, value in seconds.items():
            self.worker_seconds[part] += value
        steps = sum(int(e.length) for e in episodes)
        self.episodes_done += len(episodes)
        self.steps_done += steps
        self.simulated[env] += steps * control_dt

    # -- episodes an item asks for ----------------------------------------------------------------
    def compute(self, case, policy_name: str, engine, cache, indices, rows=None, dog=None):
        """``(engine name, episodes)`` of ``indices`` run by ``policy_name``, computed on the
        cluster in the lanes ``engine.run(case, indices)`` would use (``rows``: a search's row
        params, one per index); None when they are to be computed locally instead: no cache
        context to check the workers against, a task that failed or hit its time limit (the
        local run reports it the usual way), or no task finishing for the case's
        ``case_timeout`` + GRACE. The wait does not count towards the case's own time limit
        (``dog``): the cluster may first be finishing other cases' tasks."""
        indices = [int(i) for i in indices]
        if self.remote_task is None or not cache or not indices or (case.id, policy_name) in self.gave_up:
            return None
        tasks = tasks_for(lanes_of(len(indices), case, engine), self.cpus)
        refs = [self.remote_task.remote(self.plugins, case, policy_name, self.choice, [indices[p] for p in t], cache.context,
                                 None if rows is None else [rows[p] for p in t]) for t in tasks]
        with self.lock:
            self.episodes_total += len(indices)
        try:
            with (dog.paused() if dog is not None else contextlib.nullcontext()):
                ready = self._await(refs, case.case_timeout + GRACE)
        except BaseException:
            for ref in refs:
                self._cancel_ref(ref)
            raise
        if not ready:
            with self.lock:
                self.gave_up.add((case.id, policy_name))
                self.failed.append(f"{case.id}: no task finished for {case.case_timeout + GRACE:g} s; computed locally")
            for ref in refs:
                self._cancel_ref(ref)
            return None
        try:
            results = self.ray.get(refs)
        except ray_faults(self.ray) as exc:  # a task raised: the local run reports the error
            with self.lock:
                self.gave_up.add((case.id, policy_name))
                self.failed.append(f"{case.id}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}")
            return None
        if any(r[0] != "ok" for r in results):
            with self.lock:
                self.gave_up.add((case.id, policy_name))
                self.failed.extend(f"{case.id}: {r[1]}" for r in results if r[0] != "ok")
            return None
        episodes = [e for r in results for e in r[2]]
        seconds: Counter = Counter()
        for r in results:
            seconds.update(r[3])
        with self.lock:
            self._count(case.env, engine.control_dt, episodes, seconds)
        return results[0][1], episodes

    def _await(self, refs: list, idle: float) -> bool:
        """Wait in short slices (the watchdog's signal and Ctrl-C get through between them) until
        every ref is done; False when none finished for ``idle`` seconds."""
        done, last = 0, time.monotonic()
        while True:
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=1.0)
            if len(ready) == len(refs):
                return True
            if len(ready) > done:
                done, last = len(ready), time.monotonic()
            elif time.monotonic() - last > idle:
                return False

    def _resources(self) -> tuple[int, float]:
        """(alive nodes, CPUs) of the cluster, asked at most every RESOURCES_EVERY seconds."""
        now = time.monotonic()
        if self._cluster is None or now - self._cluster[0] >= RESOURCES_EVERY:
            try:
                cpus = float(self.ray.cluster_resources().get("CPU", 0))
                nodes = len([n for n in self.ray.nodes() if n.get("Alive")])
            except ray_faults(self.ray):  # a line of progress is not worth failing for
                cpus, nodes = 0.0, 0
            self._cluster = (now, nodes, cpus)
        return self._cluster[1], self._cluster[2]

    def progress_line(self) -> str:
        elapsed = time.monotonic() - (self.t0 or time.monotonic())
        with self.lock:
            done, total, steps, left = self.episodes_done, self.episodes_total, self.steps_done, len(self.open)
        rate = done / elapsed if elapsed > 0 else 0.0
        nodes, cpus = self._resources() if self.ray is not None and self.ray.is_initialized() else (0, 0.0)
        line = (f"simgate ray: tasks left {left}, episodes {done}/{total}, "
                f"{rate:.0f} episodes/s, {steps / max(elapsed, 1e-9):.0f} control steps/s, "
                f"{nodes} node(s), {cpus:g} CPU")
        if rate > 0:
            eta = round(max(0, total - done) / rate)
            line += f", ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
        return line

    def stats(self) -> dict:
        """What the cluster computed in this run (``ray.json`` beside the run's summary)."""
        with self.lock:
            return {"episodes": self.episodes_done, "control_steps": self.steps_done,
                    "simulated_s": {env: round(s, 6) for env, s in sorted(self.simulated.items())},
                    # seconds on the workers: the engine's, and of it MuJoCo's stepping and the policy's calls
                    "worker_s": {part: round(s, 3) for part, s in sorted(self.worker_seconds.items())},
                    "not_on_ray": list(self.failed)}

    # -- pytest hooks -----------------------------------------------------------------------------
    def pytest_collection_finish(self, session) -> None:
        if self.config.option.collectonly:
            return
        cases, ids = [], set()
        for item in session.items:
            case = case_of(item)
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
                                f"pair(s) planned as {self.tasks_planned} tasks")

    def pytest_runtest_setup(self, item) -> None:
        case = case_of(item)
        if case is None or self.ray is None:
            return
        self.wait_for(case.id, idle=case.case_timeout + GRACE)

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        if self.ray is None or not self.episodes_total or not self.config.pluginmanager.get_plugin(
                "simgate-controller")._wants_progress():
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(self.progress_line())

    def pytest_sessionfinish(self, session) -> None:
        self.close()
        if self.t0 is None:
            return
        try:
            folder = self.reports_dir
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "ray.json").write_text(json.dumps(self.stats(), indent=1) + "\n")
        except OSError:
            pass  # the reports folder's own checks say what is wrong with it

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.ray is None and not self.failed:
            return
        terminalreporter.write_line(f"simgate ray: {self.episodes_done} episodes computed on Ray")
        for line in self.failed:
            terminalreporter.write_line(f"simgate ray: task not computed on Ray (run locally): {line}")

    def close(self) -> None:
        self._stop.set()
        ray = self.ray
        if ray is None or not ray.is_initialized():
            return
        with self.lock:
            for ref in list(self.inflight):
                self._cancel_ref(ref)
            self.inflight.clear()
            self.backlog.clear()
            self.open.clear()
            self.by_case.clear()
            self.lock.notify_all()
        if self._collector is not None:
            self._collector.join(timeout=5.0)
        if self.started_here:
            ray.shutdown()


def configure(config, *, root: Path, cache_dir: Path | None, reports_dir: Path, plugins, host) -> None:
    """Called by simgate's pytest plugin when ``--simgate-ray`` is given, with what the scheduler
    needs of the run (see :class:`RayScheduler`); ``cache_dir`` None: ``--simgate-cache none``."""

    address = config.getoption("simgate_ray")
    if getattr(config.option, "numprocesses", None) or getattr(config.option, "dist", "no") != "no":
        raise SimgateError("--simgate-ray and xdist (-n, --dist) do not go together: Ray schedules the episodes; "
                           "run without -n (or with -n 0)")
    if cache_dir is None:
        raise SimgateError("--simgate-ray streams episodes into the episode cache: it cannot run with --simgate-cache none")
    problem = unreachable(address)
    if problem:
        raise SimgateError(problem)
    scheduler = RayScheduler(config, address, root=root, cache_dir=cache_dir, reports_dir=reports_dir,
                             plugins=plugins, host=host)
    config.pluginmanager.register(scheduler, "simgate-ray")


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port``, ``ray://host:port`` or ``[v6]:port``; None for the
    addresses Ray resolves itself (``local``, ``auto``) or any other form (Ray judges those)."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def unreachable(address: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """Why nothing answers at ``address``, or None. A TCP connection first, with a time limit:
    ray.init on an address where nothing listens retries forever and ignores Ctrl-C."""

    target = host_port(address)
    if target is None:
        return None
    try:
        with socket.create_connection(target, timeout=timeout):
            return None
    except OSError as exc:
        why = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return (f"--simgate-ray {address}: cannot reach the Ray cluster at {target[0]}:{target[1]} ({why}); start it (ray start --head --port {target[1]}), fix the address "
                "(the head node's GCS port, 6379 by default, or ray://host:10001 for Ray Client), "
                "or pass --simgate-ray local")
