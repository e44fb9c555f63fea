"""Throughput of simgate's reference engine against a plain gymnasium loop and raw MuJoCo.

Every runner does the same work (same env, episodes x control steps, same MLP policy) on one
thread and reports control steps executed per wall second, best of a few repeats after a warm-up:

    python benchmarks/throughput.py [--episodes 32] [--horizon-steps 200] [--env Hopper-v5] [--quick]

The last line is machine-readable: ``ratio_vs_physics_limit=<x> ratio_vs_plain_loop=<y>``.
"""

from __future__ import annotations

import os

# One thread everywhere: these must be set before numpy / onnxruntime load their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

HIDDEN = 64
REPEATS = 3


def build_mlp(path: Path, n_obs: int, n_act: int, seed: int = 0) -> None:
    """A random-weight obs->64->64->act tanh MLP as ONNX; the weights only need to be plausible."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [n_obs, HIDDEN, HIDDEN, n_act]
    inits, nodes, x = [], [], "obs"
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(fan_out, dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        y = "action" if i == len(sizes) - 2 else f"h{i}"
        # tanh on the output too: actions stay inside Hopper's [-1, 1] control range
        nodes += [helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [f"z{i}"]), helper.make_node("Tanh", [f"z{i}"], [y])]
        x = y
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", n_obs])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", n_act])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for any recent onnxruntime
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def load_policy(path: Path, env_id: str, n_obs: int, n_act: int):
    """Through simgate's own loader, exactly as a manifest entry would be loaded."""
    from simgate.policies.loaders import OnnxPolicy
    from simgate.policies.spec import PolicySpec

    spec = PolicySpec(name="bench-mlp", env=env_id, format="onnx", observation_size=n_obs, action_size=n_act,
                      file=path, sha256=None)
    return OnnxPolicy(spec)


# -- runners: each is set up once, then called to do the whole workload, returning steps executed --

def simgate_runner(env_id: str, policy, episodes: int, steps: int):
    from simgate.engine.reference import ReferenceEngine
    from simgate.envs.gymnasium_adapter import GymnasiumEnv
    from simgate.scenarios.case import Case

    # No termination: a random policy makes Hopper fall, and the engine would stop those episodes early.
    env = GymnasiumEnv(env_id, terminate_when_unhealthy=False)
    engine = ReferenceEngine(env, policy, [], env.action_size)
    case = Case(id="bench", scenario="bench", source="<benchmark>", env=env_id, policy="bench-mlp", point={},
                perturbations=(), episodes=episodes, horizon=steps * engine.control_dt, seed=0, alpha=0.05,
                determinism_episodes=0, thresholds={})

    def run() -> int:
        rollouts = engine.run(case, range(episodes))
        return int(sum(e.length for e in rollouts.episodes))  # steps actually executed, not assumed

    return run


def plain_gym_runner(env_id: str, policy, episodes: int, steps: int):
    import gymnasium as gym

    env = gym.make(env_id, terminate_when_unhealthy=False)  # same dynamics, no early stop
    session, name = policy.session, policy.input  # the very same onnxruntime session simgate uses

    def run() -> int:
        done = 0
        for i in range(episodes):
            obs, _ = env.reset(seed=i)
            for _ in range(steps):
                action = session.run(None, {name: obs[None, :].astype(np.float32)})[0][0]
                obs, *_ = env.step(action)
                done += 1
        return done

    return run


def initial_states(env_id: str, episodes: int):
    """Model, frame skip and one full-physics start state per episode, from gymnasium's own reset."""
    import gymnasium as gym
    import mujoco

    env = gym.make(env_id).unwrapped
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = np.zeros((episodes, mujoco.mj_stateSize(env.model, spec)))
    for i in range(episodes):
        env.reset(seed=i)
        mujoco.mj_getState(env.model, env.data, states[i], spec)
    return env.model, int(env.frame_skip), states


def mj_step_runner(env_id: str, episodes: int, steps: int):
    import mujoco

    model, frame_skip, states = initial_states(env_id, episodes)
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS

    def run() -> int:
        for i in range(episodes):
            mujoco.mj_resetData(model, data)  # zero controls, fresh warm-start, like a new MjData
            mujoco.mj_setState(model, data, states[i], spec)
            for _ in range(steps):  # one Python call per control step, as the policy loops make
                mujoco.mj_step(model, data, nstep=frame_skip)
        return episodes * steps

    return run


def rollout_runner(env_id: str, episodes: int, steps: int):
    """All episodes in one C call (no Python per step); None when this mujoco has no rollout."""
    import mujoco

    try:
        from mujoco import rollout
    except ImportError:
        return None
    model, frame_skip, states = initial_states(env_id, episodes)
    data = mujoco.MjData(model)  # one MjData -> rollout runs on the calling thread only
    nstep = steps * frame_skip
    control = np.zeros((episodes, nstep, model.nu))
    out = np.zeros((episodes, nstep, states.shape[1]))  # preallocated so allocation is not timed

    def run() -> int:
        rollout.rollout(model, data, states, control, nstep=nstep, state=out)
        return episodes * steps

    return run


def measure(run) -> tuple[float, int]:
    """Best wall time of REPEATS calls after one warm-up, and the steps one call executes."""
    run()
    best, steps = float("inf"), 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        steps = run()
        best = min(best, time.perf_counter() - start)
    return best, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--horizon-steps", type=int, default=200, help="control steps per episode")
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--quick", action="store_true", help="4 episodes x 50 steps, a smoke test")
    args = parser.parse_args()
    episodes, steps = (4, 50) if args.quick else (args.episodes, args.horizon_steps)

    import gymnasium as gym

    probe = gym.make(args.env)
    n_obs, n_act = probe.observation_space.shape[0], probe.action_space.shape[0]
    probe.close()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp.onnx"
        build_mlp(path, n_obs, n_act)
        policy = load_policy(path, args.env, n_obs, n_act)
        runners = {
            "simgate reference": simgate_runner(args.env, policy, episodes, steps),
            "plain gymnasium": plain_gym_runner(args.env, policy, episodes, steps),
            "mj_step (no policy)": mj_step_runner(args.env, episodes, steps),
            "mujoco.rollout (no policy)": rollout_runner(args.env, episodes, steps),
        }
        rates = {}
        for label, run in runners.items():
            if run is not None:
                seconds, done = measure(run)
                rates[label] = done / seconds

    physics = [k for k in ("mj_step (no policy)", "mujoco.rollout (no policy)") if k in rates]
    limit_label = max(physics, key=rates.get)  # the faster of the two is the physics limit
    limit, plain = rates[limit_label], rates["plain gymnasium"]

    print(f"{args.env}: {episodes} episodes x {steps} control steps, 1 thread, best of {REPEATS}")
    print(f"{'runner':<28}{'steps/s':>11}{'episodes/s':>12}{'vs physics':>12}{'vs plain':>10}")
    for label, rate in rates.items():
        print(f"{label:<28}{rate:>11,.0f}{rate / steps:>12.1f}{rate / limit:>12.3f}{rate / plain:>10.2f}")
    print(f"physics limit = {limit_label}")
    sim = rates["simgate reference"]
    print(f"ratio_vs_physics_limit={sim / limit:.2f} ratio_vs_plain_loop={sim / plain:.2f}")


if __name__ == "__main__":
    main()
