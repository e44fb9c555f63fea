"""Standalone sanity check of the balancebot LQR family, with its own plain rollout loop.

    cd /work/main && /work/venv/bin/python policies/balancebot_lqr/check_rollouts.py [--episodes N]

Per episode: fresh MjData, env.reset(rng), mj_forward, then at 50 Hz observe -> (noise) ->
policy -> apply_action -> frame_skip x mj_step -> terminated?; success judged at 6 s.
Prints success rates per policy and condition, MuJoCo warnings, scripted-vs-ONNX outcome
agreement and CPU time per episode.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HORIZON_S = 6.0
# 1x observation noise per channel: IMU attitude estimate / gyro after vibration, and a
# ~1000 CPR encoder with its rate differenced at 50 Hz
NOISE_STD = np.array([0.005, 0.02, 0.003, 0.05])
CONDITIONS = {
    "nominal": {},
    "friction x0.5": {"friction": 0.5},
    "friction x0.3": {"friction": 0.3},
    "friction x0.1": {"friction": 0.1},
    "friction x0.05": {"friction": 0.05},
    "obs noise 1x": {"noise": 1.0},
    "obs noise 3x": {"noise": 3.0},
}


# -- policies ---------------------------------------------------------------------------------
def scripted(variant="nominal"):
    from policies.balancebot_lqr.controller import make_policy

    return make_policy(variant).act


def onnx_policy(filename):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(HERE / filename), opts, providers=["CPUExecutionProvider"])
    return lambda obs: session.run(["action"], {"obs": obs.astype(np.float32)})[0].astype(np.float64)


def torchscript_policy(filename):
    import torch

    torch.set_num_threads(1)
    module = torch.jit.load(str(HERE / filename))

    def act(obs):
        with torch.no_grad():
            return module(torch.from_numpy(obs.astype(np.float32))).numpy().astype(np.float64)

    return act


POLICIES = {
    "scripted": lambda: scripted(),
    "onnx": lambda: onnx_policy("lqr.onnx"),
    "torchscript": lambda: torchscript_policy("lqr.pt"),
    "degraded-onnx": lambda: onnx_policy("lqr_degraded.onnx"),
}


# -- rollouts ---------------------------------------------------------------------------------
def perturbed_model(env, friction=1.0):
    model = env.build_model()
    model.geom_friction[:] *= friction
    return model


def episode(env, model, act, seed, noise=0.0):
    """One episode; returns (succeeded, failure or None, n_warnings, cpu seconds)."""
    import mujoco

    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng(10_000 + seed)
    data = mujoco.MjData(model)
    t0 = time.process_time()
    env.reset(model, data, rng)
    mujoco.mj_forward(model, data)
    skip = env.frame_skip(model)
    failure = None
    for _ in range(round(HORIZON_S * env.control_hz)):
        obs = env.observe(model, data)
        if noise:
            obs = obs + noise * NOISE_STD * noise_rng.standard_normal(obs.shape)
        action = act(obs[None, :])[0]
        env.apply_action(model, data, action)
        for _ in range(skip):
            mujoco.mj_step(model, data)
        failure = env.terminated(model, data)
        if failure:
            break
    ok = failure is None and env.succeeded(model, data)
    return ok, failure, int(data.warning.number.sum()), time.process_time() - t0


def run(env, act, condition, episodes):
    model = perturbed_model(env, condition.get("friction", 1.0))
    results = [episode(env, model, act, seed, condition.get("noise", 0.0)) for seed in range(episodes)]
    return {
        "success": np.array([r[0] for r in results]),
        "fell": sum(r[1] == "fell" for r in results),
        "warnings": sum(r[2] for r in results),
        "cpu": np.array([r[3] for r in results]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args()

    from envs.balancebot.env import BalanceBot

    env = BalanceBot()
    table = {}
    print(f"{'policy':15s} {'condition':15s} {'success':>8s} {'fell':>5s} {'warn':>5s} {'cpu ms/ep':>10s}")
    for pname, factory in POLICIES.items():
        act = factory()
        for cname, condition in CONDITIONS.items():
            r = run(env, act, condition, args.episodes)
            table[pname, cname] = r
            print(
                f"{pname:15s} {cname:15s} {r['success'].mean():8.0%} {r['fell']:5d} "
                f"{r['warnings']:5d} {1e3 * np.median(r['cpu']):10.1f}"
            )
    for cname in CONDITIONS:
        same = np.array_equal(table["scripted", cname]["success"], table["onnx", cname]["success"])
        same_ts = np.array_equal(table["scripted", cname]["success"], table["torchscript", cname]["success"])
        print(f"outcomes identical on {cname:15s}: onnx {same}, torchscript {same_ts}")


if __name__ == "__main__":
    main()
