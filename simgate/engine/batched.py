"""The batched engine: the episodes of a case advanced together on ``mujoco.batch.Batch``.

Each episode's world is drawn exactly as the reference engine draws it (``start_episode``: a
model copy with its model-stage perturbations, the env's reset, state perturbations), then its
full integration state, solver warmstart included, becomes a row of the batch, and each episode
keeps its own model through ``set_models``. Every control step is one batched policy call and
one ``Batch.rollout`` of ``frame_skip`` physics steps whose per-step controls and applied forces
were planned like the reference engine plans them (:mod:`simgate.engine.substeps`). The result
is bit-identical to the reference engine, at any thread count.

The words (episode, lane, rows, block, task) are those of :mod:`simgate.engine`'s docstring.
The episodes are split into lanes (:func:`lane_size`), each a one-thread ``Batch`` with its own
closed loop, and ``nthread`` lanes run at once in Python threads: MuJoCo releases the GIL while
it steps, so one lane's bookkeeping and policy call overlap the other lanes' physics instead of
leaving the physics threads idle. Policy calls are serialised by a lock (a scripted controller
need not be thread-safe); the env's rules must be (a MujocoEnv keeps no state of its own). The
lane threads are daemons and stop at their next control step once the caller's wait ends (an
error in another lane, or a watchdog giving up on the case: :mod:`simgate.watchdog`): a policy
call that never returns cannot keep the process from exiting.

The env's per-step rules are its row rules (``observe_rows``, ...), asked once for all live
episodes; the reference engine asks the same rules on one row at a time (MujocoEnv derives the
per-episode forms from them), so the two compute each rule with one implementation. An env that
writes a rule per episode only is asked it row by row.

Finished episodes are masked out of the physics; the policy is always called on the same
number of rows (fixed by the case, never by timing or threads), so a policy whose outputs depend
on the batch size (torch) still gives the same result on every run. A policy written for one
robot (it answers a batch with one action, reading ``obs[0]``) is found at its first call and
from then on asked one row at a time, as the reference engine asks it
(:attr:`BatchedEngine.row_by_row`); an ONNX export whose batch dimension is fixed at 1 is found
when it is loaded (:class:`simgate.policies.loaders.OnnxPolicy`).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from simgate.engine.limits import SATURATION, actuator_gear, actuator_limits, at_stops, joint_stops
from simgate.engine.reference import MAX_QVEL, ReferenceEngine, _per_episode, divergence, finish_episode
from simgate.engine.rollouts import DIVERGED, POLICY_ERROR, Episode, Rollouts
from simgate.engine.state_hash import state_hashes
from simgate.engine.substeps import physics_hooks, plan_rows
from simgate.envs.base import MujocoEnv, row_rule
from simgate.errors import SimgateError
from simgate.limits import HARD_LIMIT
from simgate.limits import message as limit_message

#: most episodes in one lane (one Batch, one closed loop): 32 keep a core at the physics limit
LANE = 32
#: control steps recorded before the per-step bookkeeping (effort, saturation, joint stops, state
#: fingerprints) is done for all of them at once: a few numpy calls per block, not per step
BLOCK = 50
#: always bound: what the engine itself reads and writes
ENGINE_FIELDS = ("qpos", "qvel", "ctrl", "xfrc_applied", "time")


class NotBatchable(SimgateError):
    """The env reads something of MjData that a batch row cannot give (contacts, ...): ``auto``
    runs it on the reference engine; ``--simgate-engine batched`` is refused for it."""


class RowData:
    """One simulation of a Batch through MjData's attribute names (bound fields only).

    Array fields are this row's views, made once: reading one is a plain attribute lookup, and
    writing into it (``data.ctrl[:] = u``) writes the simulation's state. Scalars (``time``)
    are read from the batch at each access.
    """

    def __init__(self, fields: dict, row: int):
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_row", row)
        for name, array in fields.items():
            if array.ndim > 1:
                object.__setattr__(self, name, array[row])

    def __getattr__(self, name: str):  # only for what __init__ did not set
        try:
            return self._fields[name][self._row]
        except KeyError:
            raise AttributeError(f"MjData field {name!r} is not bound in the batched engine") from None

    def __setattr__(self, name: str, value) -> None:  # ``data.qpos = q`` writes, as on MjData
        self._fields[name][self._row][...] = value


class _Rows:
    """Some simulations of a Batch through MjData's attribute names, as ``(n, ...)`` arrays:
    views of the batch for a slice, copies for an index array. Assigning a field
    (``rows.userdata = u``, how a row rule writes state) writes it into those simulations."""

    def __init__(self, fields: dict, ids):
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_ids", ids)

    def __getattr__(self, name: str):
        try:
            return self._fields[name][self._ids]
        except KeyError:
            raise AttributeError(f"MjData field {name!r} is not bound in the batched engine") from None

    def __setattr__(self, name: str, value) -> None:
        try:
            field = self._fields[name]
        except KeyError:
            raise AttributeError(f"MjData field {name!r} is not bound in the batched engine") from None
        field[self._ids] = value


class _AllRows:
    """Every simulation of a Batch through MjData's attribute names: the bound arrays themselves,
    as plain attributes (reading one is an attribute lookup, not an indexing call, which the
    engine's per-step rules do dozens of times). Assigning a field writes it into the simulations,
    as on :class:`_Rows`."""

    def __init__(self, fields: dict):
        for name, array in fields.items():
            object.__setattr__(self, name, array)

    def __getattr__(self, name: str):  # only for what __init__ did not set
        raise AttributeError(f"MjData field {name!r} is not bound in the batched engine")

    def __setattr__(self, name: str, value) -> None:
        try:
            field = self.__dict__[name]
        except KeyError:
            raise AttributeError(f"MjData field {name!r} is not bound in the batched engine") from None
        if value is not field:  # a rule handing back the very array it read has nothing to write
            field[...] = value


class _Recorder:
    """An MjData that notes which fields are read, to bind exactly those."""

    def __init__(self, data):
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "names", set())

    def __getattr__(self, name: str):
        self.names.add(name)
        return getattr(self._data, name)

    def __setattr__(self, name: str, value) -> None:
        self.names.add(name)
        setattr(self._data, name, value)


def fields_read(env, model) -> set[str]:
    """The MjData fields the env's rules touch, found by running them once on a scratch state
    (the per-episode forms: for an env with row rules they run those on a one-row view)."""
    import mujoco

    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    recorder = _Recorder(data)
    rules = [env.observe, env.reward, env.terminated, env.succeeded, env.progress]
    if env.signals:
        rules.append(env.signal_values)
    try:
        for rule in rules:
            rule(model, recorder)
        env.apply_action(model, recorder, np.zeros(env.action_size))
    except TypeError as exc:  # a MuJoCo function was handed the recorder: it needs a real MjData
        raise NotBatchable(f"env {env.name!r} passes MjData to MuJoCo functions: {exc}") from None
    return recorder.names


class BatchedEngine:
    #: the name its episodes are recorded by (the cache, a case's ``engine`` counts)
    name = "batched"

    def __init__(self, env, policy, perturbations, action_size: int, nthread: int = 1, lane_max: int = LANE,
                 policy_name: str | None = None, *, chunk: int | None = None, hard_limits: dict | None = None):
        """``lane_max``: most episodes in a lane (``chunk``: its former name, still taken);
        ``hard_limits``: as for :class:`ReferenceEngine`."""
        from mujoco.batch import DATA_FIELDS

        lane_max = chunk if chunk is not None else lane_max

        self.ref = ReferenceEngine(env, policy, perturbations, action_size, policy_name, hard_limits=hard_limits)
        self.env, self.policy, self.action_size = env, policy, action_size
        self.who = self.ref.who
        self.nthread, self.lane_max = nthread, lane_max
        self.policy_lock = threading.Lock()
        #: how the policy answers a batch, found at its first call with more than one row: None
        #: until then, True when it answered with one action (a controller written for one robot,
        #: reading ``obs[0]``: from then on it is asked one row at a time, as the reference engine
        #: asks it), False when it answered every row
        self.row_by_row: bool | None = None
        #: thread-seconds spent in MuJoCo's stepping and in the policy's calls, summed over lanes:
        #: where a run's time goes (a Ray worker reports them; nothing depends on them)
        self.timing = {"physics": 0.0, "policy": 0.0}
        read = fields_read(env, self.ref.nominal)
        unknown = sorted(read - set(DATA_FIELDS))
        if unknown:
            raise NotBatchable(f"env {env.name!r} reads {', '.join(unknown)}, which a batch row does not hold")
        self.fields = sorted(read | set(ENGINE_FIELDS))
        self.nominal = self.ref.nominal
        self.joint_names = self.ref.joint_names
        self.control_dt = self.ref.control_dt

    @property
    def perturbations(self) -> list:
        """The case's perturbation instances (the same list as ``ref.perturbations``: the
        reference engine it keeps applies them)."""
        return self.ref.perturbations

    def run(self, case, indices, overrides=None) -> Rollouts:
        """As :meth:`ReferenceEngine.run`; ``overrides`` (per episode) draw a search row's world,
        each row with its own model in the batch (``set_models``)."""
        indices = list(indices)
        overrides = _per_episode(overrides, len(indices))
        n_steps = int(round(case.horizon / self.control_dt))
        rows = lane_size(case.episodes, self.lane_max)  # the policy's batch size: fixed by the case
        lanes = [(indices[first:first + rows], overrides[first:first + rows]) for first in range(0, len(indices), rows)]
        if self.nthread == 1 or len(lanes) == 1:
            done = [self._run_lane(case, lane, n_steps, rows, overrides=starts) for lane, starts in lanes]
        else:
            done = self._run_lanes(lambda lane, cancel: self._run_lane(case, lane[0], n_steps, rows, cancel, lane[1]),
                                   lanes)
        return Rollouts([e for lane in done for e in lane], self.joint_names, self.control_dt, n_steps,
                        self.env.progress_unit)

    def _run_lanes(self, work, lanes: list) -> list:
        """``work(lane, cancel)`` for every lane on ``nthread`` daemon threads, each taking the
        next lane when it is done with one; the results in lane order.

        Not a ThreadPoolExecutor, and no ``Thread.join``: Python joins its pool threads at exit,
        so a lane stuck in a policy call would hang the process after a time limit gave up on it;
        and an exception raised in a waiting ``join`` marks a lane that still runs as stopped
        (CPython 3.11, gh-90882). The caller waits on an event that the last lane sets; whatever
        ends the wait (an error in a lane, an exception in the caller), ``cancel`` is set and
        the lanes return at their next control step. A lane's exception is raised here once
        every lane has run, the first in lane order, as ThreadPoolExecutor.map raised it: which
        one does not depend on timing."""
        cancel = threading.Event()
        results: list = [None] * len(lanes)
        errors: dict[int, BaseException] = {}
        claim = threading.Lock()
        queue = iter(range(len(lanes)))
        n_threads = min(self.nthread, len(lanes))
        running = [n_threads]
        finished = threading.Event()

        def lane_thread() -> None:
            try:
                while not cancel.is_set():
                    with claim:
                        i = next(queue, None)
                    if i is None:
                        return
                    try:
                        results[i] = work(lanes[i], cancel)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller of run
                        errors[i] = exc
            finally:
                with claim:
                    running[0] -= 1
                    if not running[0]:
                        finished.set()

        threads = [threading.Thread(target=lane_thread, name=f"simgate-lane-{k}", daemon=True)
                   for k in range(n_threads)]
        try:
            for thread in threads:
                thread.start()
            while not finished.wait(0.2):
                pass
        finally:
            cancel.set()
        if errors:
            raise errors[min(errors)]
        return results

    def _run_lane(self, case, indices: list[int], n_steps: int, rows: int,
                  cancel: threading.Event | None = None, overrides=None) -> list[Episode] | None:
        """One lane: its episodes on a one-thread Batch, stepped in one closed loop. Returns None,
        unfinished, once ``cancel`` is set (checked once per control step)."""
        import mujoco
        from mujoco.batch import Batch

        n = len(indices)
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        scratch = mujoco.MjData(self.ref.nominal)  # one MjData reset per episode: allocating is the costly part
        states = np.zeros((n, mujoco.mj_stateSize(self.ref.nominal, spec)))
        starts = []
        overrides = overrides or [None] * n
        for j, i in enumerate(indices):
            seed, model, data, pert_states = self.ref.start_episode(case, i, n_steps, data=scratch,
                                                                    perturbations=overrides[j])
            mujoco.mj_getState(model, data, states[j], spec)
            # the batch row holds the state from here on; an unstable start ends the episode at once
            starts.append((seed, model, None, pert_states, self.ref.unstable(data)))
        models = [s[1] for s in starts]
        batch = Batch(self.ref.nominal, nsim=n, nthread=1)
        if any(model is not self.ref.nominal for model in models):
            batch.set_models(models)
        fields = {name: batch.bind(name) for name in self.fields + ["actuator_force"]}
        batch.state[:] = states
        batch.forward()
        run = _LaneRun(self, case, starts, batch, fields, n_steps, rows)
        for step in range(n_steps):
            if cancel is not None and cancel.is_set():
                return None
            if not run.live.any():
                break
            run.control_step(step)
            if run.recorded == len(run.stepped):
                run.flush()
        run.flush()
        with self.policy_lock:
            self.timing["physics"] += run.physics_s
            self.timing["policy"] += run.policy_s
        return run.episodes(indices)


class _LaneRun:
    """The bookkeeping of one lane of episodes while it runs.

    Everything is done for all live episodes at once where the env and the perturbations say
    how (their ``*_rows`` methods), and row by row otherwise; both give the same bits.
    """

    def __init__(self, engine: BatchedEngine, case, starts, batch, fields, n_steps: int, rows: int):
        import mujoco

        self.engine, self.env, self.batch, self.fields = engine, engine.env, batch, fields
        self.nominal = engine.ref.nominal  # every episode's model has its layout
        self.physics_s = self.policy_s = 0.0
        self.mujoco = mujoco
        n, nu = len(starts), engine.ref.nominal.nu
        self.n, self.rows, self.fs, self.nu = n, rows, engine.ref.frame_skip, nu
        self.seeds = [s[0] for s in starts]
        self.models = [s[1] for s in starts]
        self.data = [RowData(fields, j) for j in range(n)]
        perturbations, order, states = engine.ref.perturbations, engine.ref.order, [s[3] for s in starts]
        # perturbation-major: each perturbation with its n episode states, in the engine's order
        staged = [(perturbations[i], [st[i] for st in states]) for i in order]
        self.observers = [(p, st) for p, st in staged if p.stage == "observation"]
        self.actors = [(p, st) for p, st in staged if p.stage == "action"]
        self.hooks = [physics_hooks([(p, st[j]) for p, st in staged]) for j in range(n)]
        pushes = any(p.stage == "force" for p, _ in staged)
        self.spec = mujoco.mjtState.mjSTATE_CTRL | (mujoco.mjtState.mjSTATE_XFRC_APPLIED if pushes else 0)
        self.control = np.zeros((n, self.fs, mujoco.mj_stateSize(engine.ref.nominal, self.spec)))
        #: the controls are held for the whole control step (no physics-rate perturbation plans
        #: them substep by substep): written into the batch's ctrl once, and the rollout takes no
        #: control array (MuJoCo never writes ctrl, so the same bits as repeating it per substep)
        self.held = not self.hooks[0] and self.spec == mujoco.mjtState.mjSTATE_CTRL
        #: each episode's applied forces at each physics step, as the physics-rate hooks plan them
        self.planned_xfrc = np.zeros((n, self.fs, engine.ref.nominal.nbody, 6)) if self.hooks[0] else None
        env_type = type(self.env)
        self.rewarded = _overrides(env_type, "reward", "reward_rows")
        self.terminates = _overrides(env_type, "terminated", "terminated_rows")
        # each rule's one implementation over rows, or None: the env writes it per episode
        self.rules = {rule: row_rule(self.env, rule) for rule in ("observe", "apply_action", "terminated",
                                                                 "reward", "signal_values")}
        self.live = np.ones(n, dtype=bool)
        self.length = np.full(n, n_steps)
        self.terminated: list[str | None] = [None] * n
        self.message: list[str | None] = [None] * n
        self.ret = np.zeros(n)
        self.hashes = np.zeros((n, n_steps), dtype=np.uint64)
        self.actions = np.zeros((n, n_steps, engine.action_size))
        self.torque_sum = np.zeros((n, nu))
        self.torque_peak = np.zeros((n, nu))
        self.work = np.zeros(n)
        self.signals = np.zeros((n, len(self.env.signals)))
        self.signal_steps = np.zeros(n, dtype=np.int64)
        self.signal_peak = np.full((n, len(self.env.signals)), -np.inf)
        self.speed_peak = np.zeros((n, nu))
        limits = np.array([actuator_limits(m) for m in self.models]).reshape(n, nu)  # per episode: weakened motors
        self.stops = joint_stops(self.nominal, self.env)  # joint ranges: no perturbation edits them
        self.saturated = np.zeros(n, dtype=np.int64)
        self.stop_steps = np.zeros(n, dtype=np.int64)
        self.obs = np.zeros((rows, self.env.observation_size))
        self.all_rows = slice(0, n)  # every episode of the lane; the policy's batch may be padded past them
        self.every = _AllRows(fields)  # what the rules are handed while every episode is live
        for j, start in enumerate(starts):
            if start[4] is not None:
                self._end(j, DIVERGED, 0, start[4])
        self.bad_warnings = [int(w) for w in engine.ref.bad_warnings]
        self.warnings = batch.warning  # a view of the batch's warning counters
        # the block of recorded control steps (see BLOCK): what the physics gave, and which rows
        # each step's effort, fingerprint and joint-stop count apply to
        block, width = min(BLOCK, n_steps), batch.state.shape[1]
        self.first, self.recorded = 0, 0  # the block's first control step, and its steps so far
        self.forces = np.zeros((block, n, self.fs, nu))
        self.velocities = np.zeros((block, n, self.fs, nu))
        self.states = np.zeros((block, n, width))
        self.stepped = np.zeros((block, n), dtype=bool)  # effort and saturation count
        self.hashed = np.zeros((block, n), dtype=bool)  # a fingerprint (0 where not)
        self.standing = np.zeros((block, n), dtype=bool)  # joint stops count
        # where an integration state holds qpos and qvel: MuJoCo lays the components out in the
        # order of their mjtState bits, time first
        size = lambda bits: mujoco.mj_stateSize(self.nominal, bits)  # noqa: E731
        time_end = size(mujoco.mjtState.mjSTATE_TIME)
        qpos_end = time_end + size(mujoco.mjtState.mjSTATE_QPOS)
        self.qpos, self.qvel = slice(time_end, qpos_end), slice(qpos_end, qpos_end + size(mujoco.mjtState.mjSTATE_QVEL))
        self.threshold = SATURATION * limits  # (n, nu), as saturated_steps compares
        self.hard_limits = engine.ref.hard_limits(case)  # ends an episode at the control step exceeded
        self.gear = (np.array([actuator_gear(m) for m in self.models]).reshape(n, nu)  # per episode
                     if self.hard_limits is not None else None)
        # each physics step's sensors, recorded only for a contact-force limit (the common case records none)
        self.sensed = (np.zeros((block, n, self.fs, self.nominal.nsensordata))
                       if self.hard_limits is not None and self.hard_limits.reads_sensors else None)
        self.record = ("actuator_force", "actuator_velocity") + (() if self.sensed is None else ("sensordata",))
        self.control_dt = engine.ref.control_dt

    def control_step(self, step: int) -> None:
        live = np.flatnonzero(self.live)
        every = live.size == self.n  # the common case: slices, not index arrays
        obs = self._observe(live)
        for p, states in self.observers:
            obs = p.observation_rows(obs, _pick(states, live), step)
        self.obs[self.all_rows if every else live] = obs
        actions, errors = self._act(live)
        for j, message in errors.items():
            self._end(j, POLICY_ERROR, step, message)
        if errors:
            live = np.flatnonzero(self.live)
            every = False
            if not live.size:
                return
        actions = actions[self.all_rows] if every else actions[live]
        for p, states in self.actors:
            actions = p.action_rows(actions, _pick(states, live), step)
        self.actions[self.all_rows if every else live, step] = actions
        self._command(live, actions, step)
        self._physics(live, step)

    def _view(self, ids: np.ndarray) -> _Rows | _AllRows:
        """These simulations' fields; all of them as the batch's own arrays when every one is live."""
        return self.every if ids.size == self.n else _Rows(self.fields, ids)

    def _observe(self, live: np.ndarray) -> np.ndarray:
        rule = self.rules["observe"]
        if rule is not None:
            return np.asarray(rule(self.nominal, self._view(live)), dtype=np.float64)
        return np.array([self.env.observe(self.models[j], self.data[j]) for j in live])

    def _act(self, live) -> tuple[np.ndarray, dict]:
        """One policy call on the case's fixed number of rows. Returns the actions and, for the
        live episodes that got none, why.

        Whether the policy takes a batch is found once, at its first call with more than one row
        (:attr:`BatchedEngine.row_by_row`): a policy that answers such a call with one action (a
        controller written for one robot, reading ``obs[0]``) is asked row by row from then on,
        as the reference engine asks it, and that first answer is not used. Nothing else is
        retried: a call that raises or returns any other wrong shape has no action for any row,
        and every live episode of the lane ends as a policy_error with the reference engine's
        message."""
        engine, size = self.engine, self.engine.action_size
        if engine.row_by_row:
            return self._act_row_by_row(live)
        with engine.policy_lock:
            began = time.perf_counter()
            try:
                out = np.asarray(engine.policy.act(self.obs), dtype=np.float64)
            except Exception as exc:  # noqa: BLE001 - the policy's code: its bug ends these episodes, named
                return np.zeros((self.rows, size)), self._failed(live, f"{engine.who} raised {type(exc).__name__}: {exc}")
            finally:
                self.policy_s += time.perf_counter() - began
            if engine.row_by_row is None and self.rows > 1 and out.ndim == 2 and out.shape[1] == size:
                engine.row_by_row = out.shape[0] == 1 != self.rows  # found once, for every later call
        if engine.row_by_row:
            return self._act_row_by_row(live)
        if out.ndim != 2 or out.shape[1] != size:  # as the reference engine words it for one row
            shown = out.shape[1:] if out.ndim > 1 else out.shape
            return np.zeros((self.rows, size)), self._failed(live, f"{engine.who} returned shape {shown}, expected ({size},)")
        if out.shape[0] != self.rows:
            return np.zeros((self.rows, size)), self._failed(
                live, f"{engine.who} returned {out.shape[0]} actions for a batch of {self.rows} observations; act(obs) "
                      "must return one action per row of obs")
        if np.isfinite(out).all():
            return out, {}
        bad = live[~np.isfinite(out[live]).all(axis=1)]
        return out, {int(j): f"{engine.who} returned a non-finite action {out[j].tolist()}" for j in bad}

    def _act_row_by_row(self, live) -> tuple[np.ndarray, dict]:
        """``_act`` for a policy that takes one observation at a time: one call per live row."""
        out, errors = np.zeros((self.rows, self.engine.action_size)), {}
        for j in live:
            with self.engine.policy_lock:
                began = time.perf_counter()
                try:
                    action, message = self.engine.ref.act_one(self.obs[j])
                finally:
                    self.policy_s += time.perf_counter() - began
            if action is None:
                errors[int(j)] = message
            else:
                out[j] = action
        return out, errors

    @staticmethod
    def _failed(live: np.ndarray, message: str) -> dict[int, str]:
        """The same reason for every live episode."""
        return {int(j): message for j in live}

    def _command(self, live: np.ndarray, actions: np.ndarray, step: int) -> None:
        """Each live episode's controls (and applied forces) for the physics steps ahead: the
        command at every physics step, for all live episodes at once, then the physics-rate
        perturbations' plan over it (:func:`simgate.engine.substeps.plan_rows`, the reference
        engine's :func:`~simgate.engine.substeps.plan` for each episode, in place)."""
        nu = self.nu
        rule = self.rules["apply_action"]
        if rule is not None:
            ctrl = np.asarray(rule(self.nominal, self._view(live), actions), dtype=np.float64)
        else:
            ctrl = np.empty((len(live), nu))
            for row, j in enumerate(live):
                self.env.apply_action(self.models[j], self.data[j], actions[row])
                ctrl[row] = self.data[j].ctrl
        rows = slice(None) if live.size == self.n else live
        if self.held:
            self.fields["ctrl"][rows] = ctrl
            return
        self.control[rows, :, :nu] = ctrl[:, None, :]
        if not self.hooks[0]:  # the same perturbations in every episode: no physics-rate work at all
            return
        planned = self.planned_xfrc
        planned[rows] = self.fields["xfrc_applied"][rows][:, None]  # xfrc_applied persists, as in MjData
        plan_rows([(self.hooks[j], self.models[j], self.control[j, :, :nu], planned[j]) for j in live],
                  step * self.fs)
        if self.control.shape[2] > nu:
            self.control[rows, :, nu:] = planned[rows].reshape(len(live), self.fs, -1)

    def _physics(self, live: np.ndarray, step: int) -> None:
        from mujoco.batch import SimulationError

        failed: dict[int, str] = {}
        every = live.size == self.n  # the common case: no copies, everything in place
        b = self.recorded
        began = time.perf_counter()
        try:
            record = self.record
            if every:  # straight into the block's buffers
                into = {"actuator_force": self.forces[b], "actuator_velocity": self.velocities[b]}
                if self.sensed is not None:
                    into["sensordata"] = self.sensed[b]
                self.batch.rollout(nstep=self.fs, control=None if self.held else self.control,
                                   control_spec=int(self.spec), record=record, out=into)
            else:
                out = self.batch.rollout(nstep=self.fs, control=None if self.held else self.control[live],
                                         control_spec=int(self.spec), record=record, ids=live)
                self.forces[b, live], self.velocities[b, live] = out["actuator_force"], out["actuator_velocity"]
                if self.sensed is not None:
                    self.sensed[b, live] = out["sensordata"]
            self.stepped[b, self.all_rows if every else live] = True
        except SimulationError as exc:  # MuJoCo raised in some simulations: they diverged
            failed = {int(i): self.batch.error(int(i)) for i in exc.ids}
        self.physics_s += time.perf_counter() - began
        rows = self.all_rows if every else live
        self.states[b, rows] = self.batch.state[rows]
        self.hashed[b, rows] = True
        for j in failed:
            self.hashed[b, j] = False  # no state worth fingerprinting
            self._end(j, DIVERGED, step + 1, f"MuJoCo error: {failed[j]}")
        self.recorded += 1
        for j, message in self._unstable(live).items():
            if j not in failed:
                self._end(j, DIVERGED, step + 1, message)
        if every and not failed and self.live.all():  # the common case: every episode still stands
            self._rules(live, step, self.all_rows)
            return
        stable = live[self.live[live]]
        if stable.size:
            self._rules(stable, step, stable)

    def _rules(self, ids: np.ndarray, step: int, rows) -> None:
        """Reward and termination of the episodes still standing after this control step
        (``rows``: the same episodes as ``ids``, as a slice when they are all of them: numpy's
        in-place updates through a slice are views, through an index array read-modify-write copies)."""
        view = self._view(ids)
        if self.rewarded:
            self.ret[rows] += self._ask("reward", view, ids)
        self.standing[self.recorded - 1, rows] = True
        if self.env.signals:
            values = self._ask("signal_values", view, ids)
            values = np.asarray(values, dtype=np.float64).reshape(len(ids), -1)
            self.signals[rows] += values
            self.signal_peak[rows] = np.maximum(self.signal_peak[rows], values)
            self.signal_steps[rows] += 1
        if self.terminates:
            reasons = self._ask("terminated", view, ids)
            for j, reason in zip(ids, reasons):
                if reason is not None:
                    self._end(j, reason, step + 1, None)
        if self.hard_limits is not None:  # after the env's own termination, as the reference engine asks
            b = self.recorded - 1
            standing = ids[self.live[ids]]
            exceeded = self.hard_limits.rows(self.forces[b][standing], self.velocities[b][standing],
                                             self.fields["qpos"][standing], self.gear[standing],
                                             None if self.sensed is None else self.sensed[b][standing])
            for j, what in zip(standing, exceeded):
                if what is not None:
                    self._end(int(j), HARD_LIMIT, step + 1, limit_message(what, step + 1, self.control_dt))

    def _ask(self, rule: str, view: _Rows, ids: np.ndarray):
        """A rule's values for these episodes: its row rule on all of them at once, or, for an
        env that writes it per episode, each episode's own answer."""
        rows = self.rules[rule]
        if rows is not None:
            return rows(self.nominal, view)
        return [getattr(self.env, rule)(self.models[j], self.data[j]) for j in ids]

    def _unstable(self, live: np.ndarray) -> dict[int, str]:
        """Why each unstable live episode diverged (the reference engine's rules, all rows at once)."""
        if live.size == self.n and self._all_stable():
            return {}
        warned = self.warnings[live][:, self.bad_warnings, 1] > 0
        qvel, qpos = self.fields["qvel"][live], self.fields["qpos"][live]
        speed = np.max(np.abs(qvel), axis=1, initial=0.0)
        qpos_sum = qpos.sum(axis=1)
        suspect = warned.any(axis=1) | ~np.isfinite(speed) | ~np.isfinite(qpos_sum) | (speed > MAX_QVEL)
        out = {}
        for row in np.flatnonzero(suspect):  # rare: the per-row rule only where something is off
            j = int(live[row])
            first = self.bad_warnings[int(np.argmax(warned[row]))]
            name = self.mujoco.mjtWarning(first).name if warned[row].any() else None
            out[j] = divergence(name, float(speed[row]), float(qpos_sum[row]), float(self.data[j].time))
        return out

    def flush(self) -> None:
        """The recorded block's bookkeeping, as the reference engine does it step by step: the
        |force| and work sums are running sums in physics-step order (``add.accumulate`` from the
        running total, along the physics steps, is that order exactly; rows that did not step add
        +0.0, which changes nothing), the peaks and counts do not depend on order. The physics
        steps are laid out first, so each accumulation runs over whole contiguous rows at once."""
        k, n = self.recorded, self.n
        if k == 0:
            return
        every = bool(self.stepped[:k].all())  # the common block: no masking at all
        # (k, n, fs, nu) -> (k, fs, n, nu) -> the physics steps in order, first: (k * fs, n, nu)
        forces = self.forces[:k].transpose(0, 2, 1, 3).reshape(k * self.fs, n, self.nu)
        velocities = self.velocities[:k].transpose(0, 2, 1, 3).reshape(k * self.fs, n, self.nu)
        steps = None if every else np.repeat(self.stepped[:k], self.fs, axis=0)[:, :, None]  # (k * fs, n, 1)
        magnitude = np.abs(forces)
        power = np.abs(forces * velocities).sum(axis=-1)  # (k * fs, n)
        speed = np.abs(velocities)
        if steps is not None:
            magnitude = np.where(steps, magnitude, 0.0)
            power = np.where(steps[..., 0], power, 0.0)
            speed = np.where(steps, speed, 0.0)
        self.torque_sum = np.add.accumulate(np.concatenate([self.torque_sum[None], magnitude]), axis=0)[-1]
        self.work = np.add.accumulate(np.concatenate([self.work[None], power]), axis=0)[-1]
        np.maximum(self.torque_peak, magnitude.max(axis=0), out=self.torque_peak)
        np.maximum(self.speed_peak, speed.max(axis=0), out=self.speed_peak)
        saturated = (magnitude >= self.threshold).any(axis=-1)  # (k * fs, n)
        if steps is not None:
            saturated &= steps[..., 0]
        self.saturated += saturated.sum(axis=0)
        states = self.states[:k]
        hashes = state_hashes(states.reshape(k * n, -1)).reshape(k, n)
        self.hashes[:, self.first:self.first + k] = np.where(self.hashed[:k], hashes, np.uint64(0)).T
        stops = at_stops(states[:, :, self.qpos].reshape(k * n, -1), self.stops).reshape(k, n)
        self.stop_steps += (stops & self.standing[:k]).sum(axis=0)
        self.first += k
        self.recorded = 0
        for mask in (self.stepped, self.hashed, self.standing):  # the buffers are masked by these, never cleared
            mask[:k] = False

    def _all_stable(self) -> bool:
        """Every row certainly stable, in a few numpy calls: no warning at all, and every
        position and speed finite and within the speed limit (a position beyond it is legal, but
        rare enough to leave to the rule). Anything else goes to the row-by-row rule, which decides."""
        if self.warnings[..., 1].any():
            return False
        state = self.states[self.recorded - 1]  # this step's states, just copied: contiguous rows
        # NaN fails the comparison, so a non-finite value anywhere goes to the rule too
        return bool(np.abs(state[:, self.qpos.start:self.qvel.stop]).max(initial=0.0) <= MAX_QVEL)

    def _end(self, j: int, reason: str, length: int, message: str | None) -> None:
        self.live[j] = False
        self.terminated[j], self.length[j], self.message[j] = reason, length, message

    def episodes(self, indices: list[int]) -> list[Episode]:
        return [finish_episode(
            self.env, self.models[j], self.data[j], index=index, seed=self.seeds[j], terminated=self.terminated[j],
            message=self.message[j], length=int(self.length[j]), frame_skip=self.fs, ret=self.ret[j],
            torque_sum=self.torque_sum[j], torque_peak=self.torque_peak[j], work=self.work[j], hashes=self.hashes[j],
            actions=self.actions[j], signal_sums=self.signals[j], signal_peak=self.signal_peak[j],
            signal_steps=self.signal_steps[j], speed_peak=self.speed_peak[j], saturated=self.saturated[j],
            stop_steps=self.stop_steps[j]) for j, index in enumerate(indices)]


def lane_size(episodes: int, most: int = LANE) -> int:
    """Episodes per lane: a case's episodes are split into at least two lanes, so that two
    threads always have work, and at most ``most`` each. A function of the case only, never of
    the thread count: it is also the policy's batch size."""
    return max(1, min(most, -(-episodes // 2)))


def _pick(states: list, live: np.ndarray) -> list:
    """The live episodes' states, in row order."""
    return states if len(live) == len(states) else [states[j] for j in live]


def _overrides(env_type: type, *methods: str) -> bool:
    """Whether an env class defines any of these rules itself (the defaults are constant)."""
    return any(getattr(env_type, m) is not getattr(MujocoEnv, m) for m in methods)
