"""The reference engine: one MjData per episode, a plain loop. Every other engine must match it."""

from __future__ import annotations

import copy
import hashlib

import numpy as np

from simgate.engine.rollouts import DIVERGED, POLICY_ERROR, Episode, Rollouts
from simgate.perturbations.base import EpisodeContext
from simgate.seeds import episode_entropy, episode_rngs

#: a joint speed no robot reaches; beyond it the integration has blown up even without a warning
MAX_QVEL = 1e4


class ReferenceEngine:
    def __init__(self, env, policy, perturbations, action_size: int):
        import mujoco

        self.mujoco = mujoco
        self.env = env
        self.policy = policy
        self.perturbations = perturbations
        self.action_size = action_size
        self.nominal = env.build_model()
        self.frame_skip = env.frame_skip(self.nominal)
        self.control_dt = self.frame_skip * self.nominal.opt.timestep
        self.gear = np.abs(self.nominal.actuator_gear[:, 0]).copy()
        self.joint_names = env.actuator_names(self.nominal)
        self.state_spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self.bad_warnings = [mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL,
                             mujoco.mjtWarning.mjWARN_BADQPOS]

    def run(self, case, indices) -> Rollouts:
        n_steps = int(round(case.horizon / self.control_dt))
        episodes = [self.run_episode(case, i, n_steps) for i in indices]
        return Rollouts(episodes, self.joint_names, self.control_dt, n_steps)

    def run_episode(self, case, index: int, n_steps: int) -> Episode:
        mj = self.mujoco
        entropy = episode_entropy(case.seed, case.scenario, case.point, index)
        reset_rng, pert_rngs = episode_rngs(entropy, len(self.perturbations))
        model = copy.copy(self.nominal)
        data = mj.MjData(model)
        states = [None] * len(self.perturbations)
        order = sorted(range(len(self.perturbations)), key=lambda i: _STAGE_ORDER[self.perturbations[i].stage])
        for i in order:
            if self.perturbations[i].stage == "model":
                states[i] = self.perturbations[i].start(self._ctx(model, data, n_steps, pert_rngs[i]))
        self.env.reset(model, data, reset_rng)
        for i in order:
            if self.perturbations[i].stage != "model":
                states[i] = self.perturbations[i].start(self._ctx(model, data, n_steps, pert_rngs[i]))
        mj.mj_forward(model, data)

        observers = [(p, s) for p, s in zip(self.perturbations, states) if p.stage == "observation"]
        actors = [(p, s) for p, s in zip(self.perturbations, states) if p.stage == "action"]
        pushers = [(p, s) for p, s in zip(self.perturbations, states) if p.stage == "force"]
        torque_sum = np.zeros(model.nu)
        torque_peak = np.zeros(model.nu)
        buf = np.zeros(model.nu)
        hashes = np.zeros(n_steps, dtype=np.uint64)
        actions = np.zeros((n_steps, model.nu))
        state = np.zeros(mj.mj_stateSize(model, self.state_spec))
        ret, terminated, message, step = 0.0, None, None, 0
        for step in range(n_steps):
            obs = self.env.observe(model, data)
            for p, s in observers:
                obs = p.observation(obs, s, step)
            action, message = self._act(obs)
            if message is not None:
                terminated = POLICY_ERROR
                break
            for p, s in actors:
                action = p.action(action, s, step)
            self.env.apply_action(model, data, action)
            actions[step] = data.ctrl
            for _ in range(self.frame_skip):
                for p, s in pushers:
                    p.force(model, data, s, step)
                mj.mj_step(model, data)
                np.abs(data.actuator_force, out=buf)
                torque_sum += buf
                np.maximum(torque_peak, buf, out=torque_peak)
            mj.mj_getState(model, data, state, self.state_spec)
            hashes[step] = int.from_bytes(hashlib.blake2b(state.tobytes(), digest_size=8).digest(), "little")
            message = self._diverged(data)
            if message is not None:
                terminated = DIVERGED
                step += 1
                break
            ret += self.env.reward(model, data)
            terminated = self.env.terminated(model, data)
            if terminated is not None:
                step += 1
                break
        else:
            step = n_steps
        length = step
        success = terminated is None and self.env.succeeded(model, data)
        physics_steps = max(length * self.frame_skip, 1)
        return Episode(
            index=index, seed=entropy, success=bool(success), length=length, ret=float(ret),
            progress=float(self.env.progress(model, data)) if terminated != DIVERGED else float("nan"),
            terminated=terminated, message=message,
            mean_abs_torque=torque_sum / physics_steps * self.gear, peak_abs_torque=torque_peak * self.gear,
            step_hashes=hashes[:length], actions=actions[:length],
        )

    def _ctx(self, model, data, n_steps, rng) -> EpisodeContext:
        return EpisodeContext(self.env, model, self.nominal, data, n_steps, self.control_dt, rng)

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """The policy's action for one observation, or why there is none."""
        try:
            out = np.asarray(self.policy.act(obs[None, :]), dtype=np.float64)
        except Exception as exc:  # a policy bug ends this episode, not the run
            return None, f"policy raised {type(exc).__name__}: {exc}"
        if out.shape != (1, self.action_size):
            return None, f"policy returned shape {out.shape[1:] if out.ndim > 1 else out.shape}, expected ({self.action_size},)"
        if not np.all(np.isfinite(out)):
            return None, f"policy returned a non-finite action {out[0].tolist()}"
        return out[0], None

    def _diverged(self, data) -> str | None:
        for w in self.bad_warnings:
            if data.warning[w].number > 0:
                return f"MuJoCo warning {w.name} at t={data.time:.3f}s (simulation unstable)"
        if not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))):
            return f"non-finite state at t={data.time:.3f}s"
        if np.max(np.abs(data.qvel), initial=0.0) > MAX_QVEL:
            return f"joint velocity above {MAX_QVEL:g} at t={data.time:.3f}s"
        return None


_STAGE_ORDER = {"model": 0, "state": 1, "observation": 2, "action": 3, "force": 4}
