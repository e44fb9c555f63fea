"""The reference engine: one MjData per episode, a plain loop. Every other engine must match it.

It asks the env's per-episode rules (``observe``, ``apply_action``, ``reward``,
``signal_values``, ``terminated``) with each episode's own model; for an env that writes its rules
over rows, MujocoEnv derives these from the same row rules the batched engine asks, on a one-row
view, so both engines compute every rule with one implementation."""

from __future__ import annotations

import copy
import math

import numpy as np

from simgate.engine.limits import (
    actuator_gear,
    actuator_limits,
    at_stops,
    joint_stops,
    saturated_steps,
)
from simgate.engine.rollouts import DIVERGED, POLICY_ERROR, Episode, Rollouts
from simgate.engine.state_hash import state_hashes
from simgate.engine.substeps import physics_hooks, plan
from simgate.envs.base import frame_skip_for
from simgate.errors import InputError, PluginCodeError
from simgate.limits import HARD_LIMIT, HardLimits, add_contact_sensors, contact_bodies
from simgate.limits import message as limit_message
from simgate.perturbations import STAGES
from simgate.perturbations.base import EpisodeContext
from simgate.seeds import episode_entropy, episode_rngs, seed_identity

#: a joint speed no robot reaches; beyond it the integration has blown up even without a warning
MAX_QVEL = 1e4
_ORDER = {stage: i for i, stage in enumerate(STAGES)}


def divergence(warning: str | None, speed: float, qpos_sum: float, time: float) -> str | None:
    """Why a simulation counts as diverged after a control step, or None: a MuJoCo instability
    warning (MuJoCo resets the state, so only the warning tells), a non-finite state, or a joint
    speed no robot reaches. Both engines decide with this one rule."""
    if warning is not None:
        return f"MuJoCo warning {warning} at t={time:.3f}s (simulation unstable)"
    if not math.isfinite(speed) or not math.isfinite(qpos_sum):
        return f"non-finite state at t={time:.3f}s"
    if speed > MAX_QVEL:
        return f"joint velocity above {MAX_QVEL:g} at t={time:.3f}s"
    return None


def accumulate_effort(total: np.ndarray, peak: np.ndarray, work: np.ndarray, forces: np.ndarray,
                      velocities: np.ndarray) -> None:
    """Add one control step's ``(..., frame_skip, nu)`` actuator forces and velocities to the
    running |force| sum and max per actuator, and to the absolute work (sum over actuators of
    |force x velocity|, per physics step, to be multiplied by the physics step). The physics
    steps are added one at a time, in order, so one episode or a batch of them gives the same
    bits (numpy's pairwise summation over steps would not)."""
    magnitude = np.abs(forces)
    power = np.abs(forces * velocities).sum(axis=-1)  # per physics step: a row at a time, same bits
    for k in range(magnitude.shape[-2]):
        total += magnitude[..., k, :]
        np.maximum(peak, magnitude[..., k, :], out=peak)
        work += power[..., k]


def total_mass(model) -> float:
    """Everything the model simulates, payloads included (the world body weighs nothing)."""
    return float(np.sum(model.body_mass))


class ReferenceEngine:
    """``policy_name``: how an episode's message names the policy when its call fails
    ("policy 'x' raised ValueError: ..."); without it, "policy"."""

    #: the name its episodes are recorded by (the cache, a case's ``engine`` counts)
    name = "reference"

    def __init__(self, env, policy, perturbations, action_size: int, policy_name: str | None = None, *,
                 hard_limits: dict | None = None):
        """``hard_limits``: the case's, when it has a contact-force limit: the model is built with
        the contact sensors it reads (:func:`simgate.limits.add_contact_sensors`)."""
        import mujoco

        self.mujoco = mujoco
        self.env = env
        self.policy = policy
        self.who = f"policy {policy_name!r}" if policy_name else "policy"
        self._limits = (None, None)  # (the spec's key, its HardLimits): built once per case
        self.perturbations = list(perturbations)
        self.action_size = action_size
        self.contact_bodies = contact_bodies(hard_limits)  # bodies given a contact sensor for a hard limit
        self.nominal = self._nominal_model()
        self.frame_skip = self._frame_skip()
        self.control_dt = self.frame_skip * self.nominal.opt.timestep
        self.joint_names = env.actuator_names(self.nominal)
        self.state_spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self.bad_warnings = [mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL,
                             mujoco.mjtWarning.mjWARN_BADQPOS]
        # stage order is fixed whatever the order in the file; within a stage, file order
        self.order = sorted(range(len(self.perturbations)), key=lambda i: _ORDER[self.perturbations[i].stage])

    def _nominal_model(self):
        editors = [p for p in self.perturbations if p.stage == "spec"]
        if not editors and not self.contact_bodies:
            return self.env.build_model()
        spec = self.env.build_spec()
        kinds = ", ".join([p.kind for p in editors] + (["hard_limits.contact_force"] if self.contact_bodies else []))
        if spec is None:
            raise InputError(f"env {self.env.name!r} does not expose an MjSpec (build_spec), so {kinds} cannot "
                             "change its structure")
        for p in editors:
            p.edit_spec(spec)
        add_contact_sensors(spec, self.contact_bodies)  # after the edits: a terrain adds bodies, never renames one
        try:
            return spec.compile()
        except Exception as exc:  # noqa: BLE001 - MuJoCo's compiler on the user's model as the scenario edited it
            raise PluginCodeError(f"MuJoCo, compiling env {self.env.name!r}'s model as {kinds} edited it,", exc) from exc

    def _frame_skip(self) -> int:
        rates = [hz for p in self.perturbations if (hz := p.control_hz(self.env.control_hz)) is not None]
        if not rates:
            return self.env.frame_skip(self.nominal)
        try:
            return frame_skip_for(rates[-1], self.nominal.opt.timestep, f"env {self.env.name!r}")
        except ValueError as exc:  # the scenario's control rate against the model's timestep
            raise InputError(str(exc)) from None

    def run(self, case, indices, overrides=None) -> Rollouts:
        """Episodes ``indices`` of ``case``. ``overrides``: per episode, None or a list of
        perturbation instances (the case's kinds, in its order) whose ``start`` draws that
        episode's world instead of the case's own: a search row's parameters
        (:func:`row_perturbations`)."""
        indices = list(indices)
        n_steps = int(round(case.horizon / self.control_dt))
        overrides = _per_episode(overrides, len(indices))
        episodes = [self.run_episode(case, i, n_steps, perturbations=o) for i, o in zip(indices, overrides)]
        return Rollouts(episodes, self.joint_names, self.control_dt, n_steps, self.env.progress_unit)

    def start_episode(self, case, index: int, n_steps: int, data=None, perturbations=None):
        """Model copy, data and per-perturbation episode states, drawn from the episode's seed.
        ``data``: an MjData of the nominal layout to reset and reuse (allocating one costs more
        than the rest of an episode's start); a fresh one otherwise. ``perturbations``: this
        episode's instances for ``start`` (a search row's parameters); the per-step methods
        stay the case's, which read only the episode state ``start`` returns."""
        starters = self.perturbations if perturbations is None else perturbations
        mj = self.mujoco
        entropy = episode_entropy(*seed_identity(case), index)
        reset_rng, pert_rngs = episode_rngs(entropy, len(self.perturbations))
        model_stage = [i for i in self.order if self.perturbations[i].stage in ("spec", "model")]
        # only model-stage perturbations edit the model; every other episode shares the nominal one
        model = copy.copy(self.nominal) if model_stage else self.nominal
        if data is None:
            data = mj.MjData(model)
        else:
            mj.mj_resetData(model, data)  # what MjData's constructor does: the same start, bit for bit
        states = [None] * len(self.perturbations)

        def start(i):
            ctx = EpisodeContext(self.env, model, self.nominal, data, n_steps, self.control_dt, self.frame_skip, pert_rngs[i])
            states[i] = starters[i].start(ctx)

        for i in model_stage:
            start(i)
        if model_stage:
            mj.mj_setConst(model, data)  # derived constants (subtree masses, ...) after mass edits
        self.env.reset(model, data, reset_rng)
        for i in self.order:
            if i not in model_stage:
                start(i)
        mj.mj_forward(model, data)
        return entropy, model, data, states

    def run_episode(self, case, index: int, n_steps: int, observer=None, perturbations=None) -> Episode:
        """One episode. ``observer(model, data, step)``, if given, sees the start (step -1) and
        the state after every control step (a replay records or renders through it).
        ``perturbations``: as for :meth:`start_episode`."""
        hard = self.hard_limits(case)
        mj = self.mujoco
        entropy, model, data, states = self.start_episode(case, index, n_steps, perturbations=perturbations)
        hard_gear = actuator_gear(model)[None] if hard is not None else None  # this episode's, once
        if observer is not None:
            observer(model, data, -1)
        # a start state that is already unstable (a perturbation or reset wrote a NaN) is the
        # world's failure, not the policy's: it never reaches the policy
        unstable = self.unstable(data)
        staged = [(self.perturbations[i], states[i]) for i in self.order]
        observers = [(p, s) for p, s in staged if p.stage == "observation"]
        actors = [(p, s) for p, s in staged if p.stage == "action"]
        hooks = physics_hooks(staged)
        torque_sum, torque_peak = np.zeros(model.nu), np.zeros(model.nu)
        forces = np.zeros((self.frame_skip, model.nu))  # one row per physics step of a control step
        velocities = np.zeros((self.frame_skip, model.nu))
        sensed = np.zeros((self.frame_skip, model.nsensordata)) if hard is not None and hard.reads_sensors else None
        work = np.zeros(())
        signals = np.zeros(len(self.env.signals))
        signal_peak = np.full(len(self.env.signals), -np.inf)
        speed_peak = np.zeros(model.nu)
        signal_steps = 0
        limits, stops = actuator_limits(model), joint_stops(model, self.env)
        saturated = stop_steps = 0
        hashes = np.zeros(n_steps, dtype=np.uint64)
        actions = np.zeros((n_steps, self.action_size))
        state = np.zeros(mj.mj_stateSize(model, self.state_spec))
        ret, terminated, message, length, substep = 0.0, None, None, n_steps, 0
        if unstable is not None:
            terminated, message, length = DIVERGED, unstable, 0
        for step in range(n_steps if unstable is None else 0):
            obs = self.env.observe(model, data)
            for p, s in observers:
                obs = p.observation(obs, s, step)
            action, message = self.act_one(obs)
            if message is not None:
                terminated, length = POLICY_ERROR, step
                break
            for p, s in actors:
                action = p.action(action, s, step)
            actions[step] = action
            self.env.apply_action(model, data, action)
            if hooks:
                ctrl, xfrc = plan(hooks, model, data.ctrl.copy(), data.xfrc_applied.copy(), self.frame_skip, substep)
            for k in range(self.frame_skip):
                if hooks:
                    data.ctrl[:] = ctrl[k]
                    data.xfrc_applied[:] = xfrc[k]
                mj.mj_step(model, data)
                substep += 1
                forces[k] = data.actuator_force
                velocities[k] = data.actuator_velocity
                if sensed is not None:
                    sensed[k] = data.sensordata
            accumulate_effort(torque_sum, torque_peak, work, forces, velocities)
            np.maximum(speed_peak, np.abs(velocities).max(axis=0), out=speed_peak)
            saturated += int(saturated_steps(forces, limits))
            mj.mj_getState(model, data, state, self.state_spec)
            hashes[step] = state_hashes(state[None])[0]
            if observer is not None:
                observer(model, data, step)
            message = self.unstable(data)
            if message is not None:
                terminated, length = DIVERGED, step + 1
                break
            ret += self.env.reward(model, data)
            stop_steps += int(at_stops(data.qpos[None], stops)[0])
            if self.env.signals:
                values = np.asarray(self.env.signal_values(model, data), dtype=np.float64)
                signals += values
                np.maximum(signal_peak, values, out=signal_peak)
                signal_steps += 1
            terminated = self.env.terminated(model, data)
            if terminated is not None:
                length = step + 1
                break
            if hard is not None:
                exceeded = hard.rows(forces[None], velocities[None], data.qpos[None], hard_gear,
                                     None if sensed is None else sensed[None])[0]
                if exceeded is not None:
                    terminated, message, length = HARD_LIMIT, limit_message(exceeded, step + 1, self.control_dt), step + 1
                    break
        return finish_episode(
            self.env, model, data, index=index, seed=entropy, terminated=terminated, message=message, length=length,
            frame_skip=self.frame_skip, ret=ret, torque_sum=torque_sum, torque_peak=torque_peak, work=work,
            hashes=hashes, actions=actions, signal_sums=signals, signal_peak=signal_peak, signal_steps=signal_steps,
            speed_peak=speed_peak, saturated=saturated, stop_steps=stop_steps)

    def hard_limits(self, case):
        """The case's hard limits (:mod:`simgate.limits`), built once per case, or None."""
        spec = getattr(case, "hard_limits", None)
        if not spec:
            return None
        key = repr(sorted(spec.items()))
        if self._limits[0] != key:
            self._limits = (key, HardLimits(spec, self.nominal, self.joint_names))
        return self._limits[1]

    def act_one(self, obs: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """The policy's action for one observation, or why there is none (naming the policy)."""
        try:
            out = np.asarray(self.policy.act(obs[None, :]), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - the policy's code: its bug ends this episode, named, not the run
            return None, f"{self.who} raised {type(exc).__name__}: {exc}"
        if out.shape != (1, self.action_size):
            shown = out.shape[1:] if out.ndim > 1 else out.shape
            return None, f"{self.who} returned shape {shown}, expected ({self.action_size},)"
        if not np.all(np.isfinite(out)):
            return None, f"{self.who} returned a non-finite action {out[0].tolist()}"
        return out[0], None

    def unstable(self, data) -> str | None:
        """Why this state counts as diverged (:func:`divergence`), or None."""
        warned = next((w.name for w in self.bad_warnings if data.warning[w].number > 0), None)
        speed = float(np.max(np.abs(data.qvel), initial=0.0))  # NaN propagates through max
        return divergence(warned, speed, float(np.sum(data.qpos)), float(data.time))


def _per_episode(overrides, n: int) -> list:
    if overrides is None:
        return [None] * n
    overrides = list(overrides)
    if len(overrides) != n:
        raise ValueError(f"{len(overrides)} perturbation overrides for {n} episodes")
    return overrides


def row_perturbations(perturbations: list, params: dict[int, dict]) -> list:
    """The case's perturbation instances with those at the positions in ``params`` rebuilt from
    these params (validated by the kind's schema: a row it refuses raises its ValidationError):
    one episode's ``start`` instances for a search row. The others are the case's own objects."""
    out = list(perturbations)
    for i, values in params.items():
        cls = type(perturbations[i])
        out[i] = cls(cls.Params.model_validate(values))
    return out


def row_overrides(engine, rows: list) -> list:
    """Per episode, ``engine``'s start perturbations with each search row's params written in
    (:func:`row_perturbations`): the ``overrides`` argument of either engine's ``run``."""
    starts = list(engine.perturbations)
    return [row_perturbations(starts, row) for row in rows]


def finish_episode(env, model, data, *, index: int, seed: int, terminated: str | None, message: str | None,
                   length: int, frame_skip: int, ret, torque_sum, torque_peak, work, hashes, actions, signal_sums,
                   signal_peak, signal_steps, speed_peak, saturated, stop_steps) -> Episode:
    """The one place an Episode record is made, by both engines, from one episode's running
    totals once it has ended: the end-of-episode rules (``succeeded`` when it ended on its own,
    ``progress`` unless it diverged) asked on its model and data, the physics-step sums divided
    by the ``length * frame_skip`` physics steps it ran, the actuator-side totals taken to the
    joints through this episode's gear. ``hashes`` and ``actions`` are per control step of the
    horizon; the first ``length`` are kept (copied)."""
    substeps = max(length * frame_skip, 1)
    gear = actuator_gear(model)  # this episode's: motor-strength edits change it
    success = terminated is None and env.succeeded(model, data)
    return Episode(
        index=index, seed=seed, success=bool(success), length=length, ret=float(ret),
        progress=float(env.progress(model, data)) if terminated != DIVERGED else float("nan"),
        terminated=terminated, message=message,
        mean_abs_torque=torque_sum / substeps * gear, peak_abs_torque=torque_peak * gear,
        step_hashes=np.array(hashes[:length]), actions=np.array(actions[:length]),
        work=float(work) * model.opt.timestep, mass=total_mass(model),
        signals=signal_means(env.signals, signal_sums, int(signal_steps)),
        saturation=float(saturated) / substeps, at_stops=float(stop_steps) / max(length, 1),
        signal_peaks=signal_maxima(env.signals, signal_peak, int(signal_steps)),
        peak_joint_speed=joint_speeds(np.array(speed_peak), gear),
    )


def signal_maxima(names, peaks: np.ndarray, steps: int) -> dict[str, float]:
    """The env's per-step signals' largest values over the control steps an episode ran."""
    return {name: float(peak) if steps else float("nan") for name, peak in zip(names, peaks)}


def joint_speeds(actuator_speed: np.ndarray, gear: np.ndarray) -> np.ndarray:
    """Peak |actuator velocity| over |gear|: the driven joint's speed (the actuator's own where
    the gear is 0)."""
    gear = np.abs(gear)
    return np.divide(actuator_speed, gear, out=actuator_speed.copy(), where=gear > 0)


def signal_means(names, sums: np.ndarray, steps: int) -> dict[str, float]:
    """The env's per-step signals averaged over the control steps an episode ran."""
    return {name: float(total / steps) if steps else float("nan") for name, total in zip(names, sums)}
