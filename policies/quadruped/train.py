"""Train the quadruped's walking policies with Augmented Random Search on simgate's own engine.

    cd /work/main && /work/venv/bin/python policies/quadruped/train.py robust --out /tmp/quad_train
    cd /work/main && /work/venv/bin/python policies/quadruped/train.py nominal --out /tmp/quad_train

ARS V2-t (Mania, Guy & Recht 2018): a linear policy on running-normalised features
(:mod:`linear`), ``directions`` Gaussian directions per iteration each tried as ``θ + νδ`` and
``θ − νδ``, the ``top`` directions by ``max(r+, r−)`` kept, and the step
``α / (top · σ_R) · Σ (r+ − r−) δ`` with ``σ_R`` the standard deviation of the kept returns.

Every rollout runs on :class:`simgate.engine.batched.BatchedEngine`: one case per iteration
with one episode per direction, run once with ``θ + νδ`` and once with ``θ − νδ``, so both
meet the same world (the same reset, command, friction, pushes and noise) and their
difference measures the direction, not the luck of the draw. Domain randomisation (``robust``)
is simgate's own perturbation kinds, drawn from training seeds (scenario names
``quadruped_train_*``, master seed ``TRAIN_SEED``) that no shipped scenario uses.

Writes, under ``--out/<variant>/``: ``iter_NNNN.npz`` checkpoints (weights, normaliser) every
``--checkpoint-every`` iterations and at the end, and ``log.csv`` (one line per iteration).
Deterministic: the same arguments give the same checkpoints, at any thread count.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policies.quadruped.linear import (  # noqa: E402
    ACTION_SIZE,
    FEATURE_SIZE,
    Normaliser,
    PerturbedPolicies,
)

# The search starts from an open-loop trot written as weights on the clock features (a gait
# prior, as in Iscen et al. 2018's policies modulating trajectory generators): diagonal legs in
# phase, the knee lifting the foot by up to KNEE_LIFT during the swing half (a half-wave:
# 1/π − cos/2 + 2·cos 2φ/(3π)), and a hip flexion swing of HIP_SWING + SPEED_GAIN·v that the
# legs on the inside of a turn shorten by TURN_GAIN·ω and those outside lengthen (through the
# v·sin and ω·sin features). In action units (× 0.5 rad). On its own it shuffles at roughly
# the commanded speed but drifts off its heading and over-turns; ARS learns the rest.
HIP_SWING = 0.1
SPEED_GAIN = 1.33  # per m/s
TURN_GAIN = 0.35  # per rad/s
KNEE_LIFT = 0.8
SIN, COS, COS2, V_SIN, W_SIN, BIAS = 32, 33, 35, 36, 38, 40

TRAIN_SEED = 7001  # master seed of the training episodes; the shipped scenarios use seeds below 100

#: the commands every variant trains on: the scenarios ask for 0.15-0.45 m/s and ±0.4 rad/s
COMMAND = {"kind": "command_velocity", "params": {"forward": [0.1, 0.5], "yaw_rate": [-0.5, 0.5]}}

#: domain randomisation of the robust policy, wider than what its scenarios test
RANDOMISATION = [
    {"kind": "scale_friction", "params": {"sliding": [0.3, 1.25]}},
    {"kind": "scale_body_mass", "params": {"scale": [0.85, 1.15]}},
    {"kind": "add_payload", "params": {"body": "trunk", "mass": [0.0, 0.8]}},
    {"kind": "scale_motor_strength", "params": {"scale": [0.8, 1.0], "mode": "force_limit"}},
    {"kind": "apply_pushes", "params": {"body": "trunk", "force": [0.5, 15.0], "duration": 0.2,
                                        "interval": [0.8, 1.6], "direction": "lateral"}},
    {"kind": "add_observation_noise", "params": {"std": {"imu": 0.02, "encoders": 0.01}}},
]

VARIANTS = {"robust": [COMMAND] + RANDOMISATION, "nominal": [COMMAND]}


def build_perturbations(entries):
    from simgate.plugin_manager import Host

    registry = Host(autoload=False).registries.perturbations
    out = []
    for entry in entries:
        cls = registry.get(entry["kind"])
        out.append(cls(cls.Params.model_validate(entry["params"])))
    return out


def training_case(variant: str, iteration: int, rollouts: int, horizon: float):
    from simgate.scenarios.case import Case

    return Case(id=f"quadruped_train_{variant}-{iteration}", scenario=f"quadruped_train_{variant}", source="train.py",
                env="quadruped", policy="ars", point={"iteration": iteration}, perturbations=(), episodes=rollouts,
                horizon=horizon, seed=TRAIN_SEED, alpha=0.05, determinism_episodes=1, thresholds={})


def gait_prior() -> np.ndarray:
    theta = np.zeros((ACTION_SIZE, FEATURE_SIZE))
    # FL, FR, HL, HR: diagonal pairs share a phase; side +1 is the left, inside a left (ω > 0) turn
    for leg, (phase, side) in enumerate(((1.0, 1.0), (-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0))):
        flexion, knee = 3 * leg + 1, 3 * leg + 2
        theta[flexion, SIN] = HIP_SWING * phase
        theta[flexion, V_SIN] = SPEED_GAIN * phase
        theta[flexion, W_SIN] = -TURN_GAIN * side * phase
        theta[knee, BIAS] = -KNEE_LIFT / np.pi
        theta[knee, COS] = KNEE_LIFT / 2.0 * phase
        theta[knee, COS2] = -KNEE_LIFT * 2.0 / (3.0 * np.pi)
    return theta


def _training_env_class():
    from envs.quadruped.env import Quadruped

    class TrainingQuadruped(Quadruped):
        """The shipped runs trained on the raw yaw-rate command (no heading hold), and the rollout
        policy tells the rows of a batch apart by the command they observe, which a heading
        hold would make move."""

        heading_gain = 0.0

    return TrainingQuadruped


class Trainer:
    def __init__(self, variant: str, args):
        from simgate.engine.batched import BatchedEngine

        TrainingQuadruped = _training_env_class()
        self.variant, self.args = variant, args
        self.rng = np.random.default_rng(args.seed)
        self.theta = gait_prior()
        self.norm = Normaliser()
        self.env = TrainingQuadruped()
        self.engine = BatchedEngine(self.env, None, build_perturbations(VARIANTS[variant]), ACTION_SIZE,
                                    nthread=args.nthread)

    def iteration(self, it: int) -> dict:
        a, n = self.args, self.args.directions
        delta = self.rng.standard_normal((n, ACTION_SIZE, FEATURE_SIZE))
        case = training_case(self.variant, it, n, a.horizon)
        commands = self.commands(case)
        runs = []
        for sign in (1.0, -1.0):  # θ + νδ then θ − νδ, on the same n worlds
            weights = {c: self.theta + sign * a.noise * d for c, d in zip(commands, delta)}
            policy = PerturbedPolicies(weights, self.norm.mean, self.norm.std)
            self.engine.policy = self.engine.ref.policy = policy
            runs.append((self.engine.run(case, range(n)), policy))
        plus, minus = runs[0][0].column("ret"), runs[1][0].column("ret")
        top = np.argsort(-np.maximum(plus, minus), kind="stable")[:a.top]
        sigma = np.concatenate([plus[top], minus[top]]).std()
        step = np.einsum("k,kij->ij", plus[top] - minus[top], delta[top]) / (a.top * max(sigma, 1e-8))
        self.theta = self.theta + a.step_size * step
        for _, policy in runs:
            self.norm.update(np.array(policy.seen))
        episodes = runs[0][0].episodes + runs[1][0].episodes
        returns = np.concatenate([plus, minus])
        return {
            "iteration": it, "mean_return": float(returns.mean()), "max_return": float(returns.max()),
            "fell": float(np.mean([e.terminated == "fell" for e in episodes])),
            "success": float(np.mean([e.success for e in episodes])),
            "mean_progress": float(np.nanmean([e.progress for e in episodes])),
            "env_steps": int(sum(e.length for e in episodes)),
        }

    def restore(self, checkpoint: Path) -> None:
        """Continue from a checkpoint: its weights, and a normaliser with its mean and spread."""
        saved = np.load(checkpoint)
        self.theta = saved["weights"].copy()
        self.norm.count = int(saved["count"])
        self.norm._mean = saved["mean"].copy()
        self.norm.m2 = saved["std"] ** 2 * self.norm.count

    def warm_up(self) -> None:
        """Normaliser statistics from the starting policy's own states, so that the first search
        directions perturb gains on normalised sensors rather than on raw rad/s."""
        case = training_case(self.variant, 0, self.args.directions, self.args.horizon)
        policy = PerturbedPolicies({c: self.theta for c in self.commands(case)}, self.norm.mean, self.norm.std)
        self.engine.policy = self.engine.ref.policy = policy
        self.engine.run(case, range(case.episodes))
        self.norm.update(np.array(policy.seen))

    def commands(self, case) -> list[tuple[float, float]]:
        """Each episode's (forward, yaw rate) command, drawn as the engine will draw it."""
        from envs.quadruped.env import FORWARD, YAW_RATE

        n_steps = round(case.horizon / self.engine.control_dt)
        out = []
        for i in range(case.episodes):
            data = self.engine.ref.start_episode(case, i, n_steps)[2]
            out.append((float(data.userdata[FORWARD]), float(data.userdata[YAW_RATE])))
        if len(set(out)) != len(out):
            raise ValueError("two training episodes drew the same command; the rollout policy could not tell them apart")
        return out

    def save(self, path: Path, it: int, env_steps: int, wall: float, final_return: float) -> None:
        a = self.args
        np.savez(path, weights=self.theta, mean=self.norm.mean, std=self.norm.std, count=self.norm.count,
                 variant=self.variant, seed=a.seed, train_seed=TRAIN_SEED, iteration=it, env_steps=env_steps,
                 wall_time=wall, final_return=final_return, directions=a.directions, top=a.top,
                 step_size=a.step_size, noise=a.noise, horizon=a.horizon,
                 init=str(getattr(a, "init", None) or "gait prior"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("/tmp/quad_train"))
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--directions", type=int, default=32)
    parser.add_argument("--top", type=int, default=16)
    parser.add_argument("--step-size", type=float, default=0.02)
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--horizon", type=float, default=4.0, help="seconds per training episode")
    parser.add_argument("--seed", type=int, default=1, help="seed of the search directions")
    parser.add_argument("--nthread", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this wall time")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this checkpoint (weights and normaliser) instead of the gait prior")
    args = parser.parse_args(argv)

    out = args.out / args.variant
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=1))
    trainer = Trainer(args.variant, args)
    if args.init is not None:
        trainer.restore(args.init)
    start, env_steps = time.perf_counter(), 0
    with open(out / "log.csv", "w", newline="") as log:
        writer = None
        if args.init is None:
            trainer.warm_up()
        trainer.save(out / "iter_0000.npz", 0, 0, 0.0, float("nan"))
        for it in range(1, args.iterations + 1):
            row = trainer.iteration(it)
            env_steps += row["env_steps"]
            row.update(total_env_steps=env_steps, wall_time=round(time.perf_counter() - start, 1))
            if writer is None:
                writer = csv.DictWriter(log, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            log.flush()
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
            done = it == args.iterations or (args.max_minutes and row["wall_time"] > 60 * args.max_minutes)
            if it % args.checkpoint_every == 0 or done:
                trainer.save(out / f"iter_{it:04d}.npz", it, env_steps, row["wall_time"], row["mean_return"])
            if done:
                break


if __name__ == "__main__":
    main()
