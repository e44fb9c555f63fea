"""Throughput of simgate's engines against a plain gymnasium loop and raw MuJoCo, at T threads.

For a light model (Hopper-v5) and a heavy one (Humanoid-v5), every runner does the same work
(episodes x control steps, no early termination, the same random-weight obs->64->64->act ONNX MLP)
and reports control steps and episodes per wall second, best of a few repeats:

    simgate batched     BatchedEngine on mujoco.batch.Batch, T threads, one policy call per step
    simgate reference   ReferenceEngine: one MjData per episode, one thread by nature
    plain gymnasium     gym.make + env.step + one onnxruntime call per step, one process
    Batch.step, Batch.rollout, mujoco.rollout
                        raw C++ stepping at T threads, no policy: the batched engine's episodes
                        replayed open-loop from its start states and actions (bit-identical
                        trajectories, so the same physics work); the fastest is the physics limit

    python benchmarks/throughput.py [--threads 2] [--episodes 64] [--horizon-steps 200] [--no-suite] [--quick]
                                    [--contract-only]

A YAML robot driven through a policy's contract (the quadruped as ``envs/quadruped_mjcf`` with
``quadruped-robust-contract``: observation terms, action map and their per-episode state) is
measured the same way: the batched engine against Batch.rollout replaying its own controls
(``--contract-only``: just these two lines). Their ratio is the median of back-to-back pairs
(:func:`paired_ratios`), the steps/s the best of them. Issue 22's target is the YAML robot's
``contract_ratio_vs_physics_limit`` at 0.85 or more (:data:`CONTRACT_TARGET`).

Then, unless --quick or --no-suite, suite-level figures (benchmarks/suite_timing.py). The last
line is machine-readable, for the batched engine on the light model:
``ratio_vs_physics_limit=<x> ratio_vs_plain_loop=<y>``.
"""

from __future__ import annotations

import os

# numpy's and onnxruntime's own pools stay at one thread: only the runners' T threads may use cores.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

HIDDEN = 64
#: gym.make keyword arguments per model. No termination, so every episode runs the full horizon
#: whatever a random policy does; Humanoid without its contact-force observation, which Batch
#: cannot reproduce (gymnasium fills cfrc_ext with an extra mj_rnePostConstraint).
MODELS = {
    "Hopper-v5": {"terminate_when_unhealthy": False},
    "Humanoid-v5": {"include_cfrc_ext_in_observation": False, "terminate_when_unhealthy": False},
}
BATCHED, REFERENCE, PLAIN = "simgate batched", "simgate reference", "plain gymnasium"
#: issue 22: the batched engine runs the YAML quadruped's contract env at this share of the physics limit or more
CONTRACT_TARGET = 0.85
#: back-to-back (engine, limit) pairs the quadruped lines take their median ratio from
CONTRACT_PAIRS = 15


@dataclasses.dataclass(frozen=True)
class Work:
    env_id: str
    episodes: int
    steps: int  # control steps per episode
    threads: int

    @property
    def kwargs(self) -> dict:
        return MODELS[self.env_id]


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
    """Through simgate's own loader (onnxruntime, one intra-op thread), as a manifest entry is loaded."""
    from simgate.policies.loaders import OnnxPolicy
    from simgate.policies.spec import PolicySpec

    spec = PolicySpec(name="bench-mlp", env=env_id, format="onnx", observation_size=n_obs, action_size=n_act,
                      file=path, sha256=None)
    return OnnxPolicy(spec)


# -- runners: each is set up once, then called to do the whole workload, returning steps executed --

def simgate_engine(work: Work, policy, batched: bool):
    from simgate.engine.batched import BatchedEngine
    from simgate.engine.reference import ReferenceEngine
    from simgate.envs.gymnasium_adapter import GymnasiumEnv
    from simgate.scenarios.case import Case

    env = GymnasiumEnv(work.env_id, **work.kwargs)
    if batched:
        engine = BatchedEngine(env, policy, [], env.action_size, nthread=work.threads)
    else:
        engine = ReferenceEngine(env, policy, [], env.action_size)
    case = Case(id="bench", scenario="bench", source="<benchmark>", env=work.env_id, policy="bench-mlp", point={},
                perturbations=(), episodes=work.episodes, horizon=work.steps * engine.control_dt, seed=0,
                alpha=0.05, determinism_episodes=0, thresholds={})
    return engine, case


def engine_runner(work: Work, policy, batched: bool):
    engine, case = simgate_engine(work, policy, batched)

    def run() -> int:
        rollouts = engine.run(case, range(work.episodes))
        return int(sum(e.length for e in rollouts.episodes))  # steps actually executed, not assumed

    return run


def plain_gym_runner(work: Work, policy):
    import gymnasium as gym

    env = gym.make(work.env_id, **work.kwargs)
    session, name = policy.session, policy.input  # the very same onnxruntime session simgate uses

    def run() -> int:
        done = 0
        for i in range(work.episodes):
            obs, _ = env.reset(seed=i)
            for _ in range(work.steps):
                action = session.run(None, {name: obs[None, :].astype(np.float32)})[0][0]
                obs, *_ = env.step(action)
                done += 1
        return done

    return run


@dataclasses.dataclass(frozen=True)
class Replay:
    """The batched engine's own episodes, to replay open-loop without a policy: the very same
    trajectories, so the very same physics work. (Zero controls give other trajectories, hence
    other contact work: with them, the Humanoid's "limit" once ran slower than the engine itself.)"""

    model: object
    frame_skip: int
    starts: list  # each episode's MjData at its start
    actions: np.ndarray  # (episodes, steps, nu): the control vector is the action (MujocoEnv.apply_action)

    @classmethod
    def record(cls, work: Work, policy) -> Replay:
        engine, case = simgate_engine(work, policy, batched=True)
        rollouts = engine.run(case, range(work.episodes))
        actions = np.stack([e.actions for e in rollouts.episodes])  # no termination: all full length
        starts = [engine.ref.start_episode(case, i, work.steps)[2] for i in range(work.episodes)]
        return cls(engine.ref.nominal, engine.ref.frame_skip, starts, actions)

    def states(self, spec) -> np.ndarray:
        import mujoco

        out = np.zeros((len(self.starts), mujoco.mj_stateSize(self.model, spec)))
        for row, data in zip(out, self.starts):
            mujoco.mj_getState(self.model, data, row, spec)
        return out


def batch_runner(work: Work, replay: Replay, record: bool):
    """mujoco.batch.Batch, one call of frame_skip physics steps per control step, as the batched
    engine calls it: ``record`` does what the engine does (Batch.rollout with the controls in and
    actuator forces out); without it, the bare Batch.step after writing ctrl."""
    import mujoco
    from mujoco.batch import Batch

    starts = replay.states(mujoco.mjtState.mjSTATE_INTEGRATION)  # what the engine loads: warm start included
    batch = Batch(replay.model, nsim=work.episodes, nthread=work.threads)
    ctrl, spec, fs = batch.bind("ctrl"), int(mujoco.mjtState.mjSTATE_CTRL), replay.frame_skip
    # (steps, episodes, frame_skip, nu): each control step's block is contiguous
    control = np.ascontiguousarray(np.repeat(replay.actions.transpose(1, 0, 2)[:, :, None], fs, axis=2))

    def run() -> int:
        batch.state[:] = starts
        for step in range(work.steps):
            if record:
                batch.rollout(nstep=fs, control=control[step], control_spec=spec, record=("actuator_force",))
            else:
                ctrl[:] = control[step, :, 0]
                batch.step(nstep=fs)
        return work.episodes * work.steps

    return run


def rollout_runner(work: Work, replay: Replay):
    """mujoco.rollout: all episodes and all their steps in one C call on T MjData (T threads)."""
    import mujoco
    from mujoco import rollout

    data = [mujoco.MjData(replay.model) for _ in range(work.threads)]
    starts = replay.states(mujoco.mjtState.mjSTATE_FULLPHYSICS)
    warmstart = np.stack([d.qacc_warmstart for d in replay.starts])
    control = np.repeat(replay.actions, replay.frame_skip, axis=1)
    out = np.zeros((work.episodes, control.shape[1], starts.shape[1]))  # preallocated: allocation is not timed

    def run() -> int:
        # a persistent pool, as Batch keeps its threads: thread start-up is not physics
        rollout.rollout(replay.model, data, starts, control, initial_warmstart=warmstart, state=out,
                        persistent_pool=True)
        return work.episodes * work.steps

    return run


PHYSICS = {  # label -> runner; the fastest is the physics limit
    "Batch.step (no policy)": lambda w, r: batch_runner(w, r, record=False),
    "Batch.rollout (no policy)": lambda w, r: batch_runner(w, r, record=True),
    "mujoco.rollout (no policy)": rollout_runner,
}


def measure(runners: dict, repeats: int, warmup: bool) -> dict[str, float]:
    """Control steps per second of each runner: the best of ``repeats`` timed calls, after one
    warm-up call if ``warmup``. The repeats go round all the runners, so a slow spell of this
    shared machine is spread over them rather than landing on one."""
    for run in runners.values() if warmup else ():
        run()
    rates = dict.fromkeys(runners, 0.0)
    for _ in range(repeats):
        for label, run in runners.items():
            start = time.perf_counter()
            steps = run()
            rates[label] = max(rates[label], steps / (time.perf_counter() - start))
    return rates


def model_rates(work: Work, repeats: int, warmup: bool) -> dict[str, float]:
    """Control steps per second of every runner on one model."""
    import gymnasium as gym

    probe = gym.make(work.env_id, **work.kwargs)
    n_obs, n_act = probe.observation_space.shape[0], probe.action_space.shape[0]
    probe.close()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp.onnx"
        build_mlp(path, n_obs, n_act)
        policy = load_policy(path, work.env_id, n_obs, n_act)
        replay = Replay.record(work, policy)
        runners = {
            BATCHED: engine_runner(work, policy, batched=True),
            REFERENCE: engine_runner(work, policy, batched=False),
            PLAIN: plain_gym_runner(work, policy),
            **{label: make(work, replay) for label, make in PHYSICS.items()},
        }
        return measure(runners, repeats, warmup)


def physics_limit(rates: dict[str, float]) -> str:
    return max(PHYSICS, key=rates.get)


def print_table(work: Work, rates: dict[str, float], timing: str) -> None:
    limit_label = physics_limit(rates)
    limit, plain = rates[limit_label], rates[PLAIN]
    threads = {BATCHED: work.threads, REFERENCE: 1, PLAIN: 1}
    print(f"\n{work.env_id}: {work.episodes} episodes x {work.steps} control steps, T={work.threads}, {timing}")
    print(f"{'runner':<28}{'threads':>8}{'steps/s':>11}{'episodes/s':>12}{'vs physics':>12}{'vs plain':>10}")
    for label, rate in rates.items():
        print(f"{label:<28}{threads.get(label, work.threads):>8}{rate:>11,.0f}{rate / work.steps:>12.1f}"
              f"{rate / limit:>12.3f}{rate / plain:>10.2f}")
    print(f"physics limit = {limit_label} (the engine's episodes replayed open-loop, same trajectories)")


def contract_rates(episodes: int, steps: int, threads: int, repeats: int, python: bool = False) -> dict[str, float]:
    """Control steps per second of the batched engine on the YAML quadruped with its contract
    (``python``: the hand-written Python env with the same network), and of Batch.rollout
    replaying the very controls the engine wrote (the physics limit)."""
    import mujoco

    from simgate.engine.batched import BatchedEngine
    from simgate.envs.base import OneRow
    from simgate.plugin_manager import Host
    from simgate.robots.env import MjcfEnv
    from simgate.robots.schema import Terminate
    from simgate.runner import build_env
    from simgate.scenarios.case import Case

    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's envs/ and policies/
    host = Host(project_plugins=["envs", "policies"], autoload=False)
    spec = host.registries.policies.get("quadruped-robust-contract")
    bound = build_env(host.registries.envs.get("quadruped-mjcf"), spec)
    # no termination, so every episode runs the whole horizon in every runner
    robot = dataclasses.replace(bound.robot, robot=bound.robot.robot.model_copy(update={"terminate": Terminate()}))
    env = MjcfEnv(robot, spec.contract)
    if python:
        from envs.quadruped.env import Quadruped

        class Standing(Quadruped):  # no termination, as above
            def terminated_rows(self, model, data):
                return [None] * len(data.time)

        env = Standing()
    policy = spec.load()
    engine = BatchedEngine(env, policy, [], env.action_size, nthread=threads)
    case = Case(id="bench", scenario="bench", source="<benchmark>", env=env.name, policy=spec.name, point={},
                perturbations=(), episodes=episodes, horizon=steps * engine.control_dt, seed=0, alpha=0.05,
                determinism_episodes=0, thresholds={})
    rollouts = engine.run(case, range(episodes))
    model, starts, controls = engine.ref.nominal, [], []
    for i, episode in enumerate(rollouts.episodes):
        data = engine.ref.start_episode(case, i, steps)[2]
        starts.append(data)
        scratch = mujoco.MjData(model)  # the contract's ctrl depends on its own state, not on physics
        mujoco.mj_setState(model, scratch, _state(model, data), mujoco.mjtState.mjSTATE_INTEGRATION)
        controls.append([env.ctrl_rows(model, OneRow(scratch), a[None])[0] for a in episode.actions])
    replay = Replay(model, engine.ref.frame_skip, starts, np.array(controls))
    work = Work("Hopper-v5", episodes, steps, threads)  # only its sizes are read by batch_runner

    def run() -> int:
        return int(sum(e.length for e in engine.run(case, range(episodes)).episodes))

    return paired_ratios(run, batch_runner(work, replay, record=True), repeats)


LIMIT = "Batch.rollout (no policy)"


def paired_ratios(engine_run, limit_run, repeats: int) -> tuple[dict[str, float], list[float]]:
    """Best steps/s of each runner, and the ratio engine/limit of each repeat, the two timed
    back to back (after one warm-up call of each): on a shared machine a slow spell lands on
    both halves of a pair, so the pairs' median moves far less from run to run than a ratio
    of two separate bests."""
    rates = {BATCHED: 0.0, LIMIT: 0.0}
    for run in (engine_run, limit_run):
        run()
    ratios = []
    for _ in range(repeats):
        seconds = {}
        for label, run in ((BATCHED, engine_run), (LIMIT, limit_run)):
            start = time.perf_counter()
            steps = run()
            seconds[label] = time.perf_counter() - start
            rates[label] = max(rates[label], steps / seconds[label])
        ratios.append(seconds[LIMIT] / seconds[BATCHED])
    return rates, ratios


def _state(model, data) -> np.ndarray:
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    out = np.zeros(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, out, spec)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="T for every multi-threaded runner (2: the cores here)")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--horizon-steps", type=int, default=200, help="control steps per episode")
    parser.add_argument("--no-suite", action="store_true", help="skip the suite-level timings")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 16 episodes x 25 steps, no suite")
    parser.add_argument("--contract-only", action="store_true",
                        help="only the quadruped lines (Python env, YAML robot + contract): no gymnasium models, no suite")
    args = parser.parse_args()
    episodes, steps = (16, 25) if args.quick else (args.episodes, args.horizon_steps)
    # (repeats, warm-up) per model. The heavy model dominates the run time and its calls last
    # seconds: no warm-up (recording its episodes has warmed the policy session), two repeats.
    timing = {"Hopper-v5": (1, True) if args.quick else (5, True), "Humanoid-v5": (1, False) if args.quick else (2, False)}

    suite = []
    if not (args.quick or args.no_suite or args.contract_only):
        # benchmarks/ is sys.path[0] when this file is run
        from suite_timing import report

        suite = report()  # first, while this process is small: see suite_timing.peak_memory

    results = {}
    for env_id in () if args.contract_only else MODELS:
        work = Work(env_id, episodes, steps, args.threads)
        repeats, warmup = timing[env_id]
        results[env_id] = model_rates(work, repeats, warmup)
        print_table(work, results[env_id], f"best of {repeats}" + (" after a warm-up" if warmup else ", no warm-up"))

    print()
    for python, label, key in ((True, "quadruped (Python env)", "python_ratio"),
                               (False, "quadruped-mjcf (YAML robot + contract)", "contract_ratio")):
        rates, ratios = contract_rates(episodes, steps, args.threads, 1 if args.quick else CONTRACT_PAIRS, python)
        quartiles = np.percentile(ratios, [25, 50, 75])
        target = f" (issue 22's target: >= {CONTRACT_TARGET:.2f})" if key == "contract_ratio" else ""
        print(f"{label}, {episodes} episodes x {steps} control steps, T={args.threads}: batched "
              f"{rates[BATCHED]:,.0f} steps/s, Batch.rollout replaying its controls {rates[LIMIT]:,.0f} steps/s "
              f"(best of {len(ratios)}), {key}_vs_physics_limit={quartiles[1]:.2f}{target} "
              f"[median of {len(ratios)} back-to-back pairs, quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}]")

    if suite:
        print("\n" + "\n".join(suite))
    if args.contract_only:
        return

    light = results["Hopper-v5"]
    sim = light[BATCHED]
    print(f"ratio_vs_physics_limit={sim / light[physics_limit(light)]:.2f} ratio_vs_plain_loop={sim / light[PLAIN]:.2f}")


if __name__ == "__main__":
    main()
