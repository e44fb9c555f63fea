"""Choose the arm7 reach controller's gains and write gains.json and manifest.yaml.

    cd /work/main && /work/venv/bin/python policies/arm7_ik/tune_gains.py   # ~3 min on 2 cores

Two gains set the trade-off; the rest follow from the robot and are fixed here with the reason:

* ``kd`` (1/s), the bandwidth of the joint velocity servo ``τ = M kd (dq_des - dq) + bias``.
  Stiffer holds an unknown payload closer to the target (the controller's gravity model does
  not know it); but a loop delayed by ``T`` stays stable only while ``kd·T`` is below ~1, so
  stiffer is less tolerant of latency.
* ``kx`` (1/s), the Cartesian position gain ``v = kx · error``. The fingertip stiffness is
  about Λ·kd·kx (Λ the 2-5 kg operational-space inertia); for a well-damped response the
  position loop must be slower than the velocity loop: kx ≈ kd/4 is critically damped.

The grid below is run through the batched engine on the nominal zone and on two stresses
beyond the gated scenarios: a 3 kg payload on the last link (the rated payload of this class
of arm, unknown to the controller) and 30 ms of actuation latency (three control periods).
Among the gains that reach ≥ 0.95 of nominal targets, the chosen one has the best worst-case
success over the stresses (then the smaller kd: less torque noise). Every grid point reaches all
nominal targets; the stresses pull apart (measured, 32 episodes each):

    kd = 60 or 40 with kx ≥ 20 hold 3 kg but fall apart at 30 ms (0/32);
    kd = 20 tolerates 30 ms but lets 3 kg sag out of tolerance (≤ 8/32);
    kx = 20, kd = 30 (ζ ≈ 0.6): 3 kg 23/32, 30 ms 28/32, the chosen gains.

Fixed:

* ``v_max`` = 0.5 m/s: a collaborative arm's usual Cartesian speed limit near people.
* ``dls_damping`` λ = 0.08 m: J's smallest singular value over the zone is 0.27 m (median),
  0.11 m at the 1st percentile; there λ costs 8 % and 35 % of the task gain, which the closed
  loop makes up. At a singularity (σ → 0) it caps the task's joint speed at v_max/(2λ) =
  3.1 rad/s, above which ``dq_max`` clips anyway.
* ``kn`` = 2 /s: the posture returns in ~0.5 s, slower than the task (kx = 10-25 /s) so it
  never competes with it (it acts only in the null space anyway).
* ``dq_max`` = 2 rad/s: the joint speed limit of this class of arm.

Re-running gives byte-identical files: fixed seeds, no timestamps.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

FIXED = {"v_max": 0.5, "dls_damping": 0.08, "kn": 2.0, "dq_max": 2.0}
GRID_KX = (5.0, 10.0, 15.0, 20.0, 25.0)
GRID_KD = (20.0, 30.0, 40.0, 60.0)
EPISODES, HORIZON, SEED = 32, 3.0, 11
STRESSES = {
    "payload_3kg": ("add_payload", {"body": "link7", "mass": 3.0}),
    "latency_30ms": ("delay_actions", {"delay_ms": 30}),
}


def success_rate(host, gains: dict, perturbation) -> float:
    from envs.arm7.env import READY, Arm7Reach
    from policies.arm7_ik.controller import DlsReachController
    from simgate.engine.batched import BatchedEngine
    from simgate.scenarios.case import Case

    env = Arm7Reach()
    policy = DlsReachController(env.build_model(), gains, READY)
    perturbations = []
    if perturbation is not None:
        cls = host.registries.perturbations.get(perturbation[0])
        perturbations = [cls(cls.Params.model_validate(perturbation[1]))]
    case = Case(id="tune", scenario="tune", source="tune_gains.py", env=env.name, policy="arm7-ik", point={},
                perturbations=(), episodes=EPISODES, horizon=HORIZON, seed=SEED, alpha=0.05,
                determinism_episodes=1, thresholds={})
    rollouts = BatchedEngine(env, policy, perturbations, env.action_size).run(case, range(EPISODES))
    return float(rollouts.column("success").mean())


def manifest(gains_sha: str, gains: dict) -> str:
    method = ("damped least squares J⁺ = Jᵀ(JJᵀ + λ²I)⁻¹ on a saturated Cartesian velocity command, exact "
              "null-space posture term, computed-torque joint velocity servo M·kd·(dq_des - dq) + qfrc_bias "
              "from the controller's own nominal model; kx, kd chosen by tune_gains.py")
    provenance = json.dumps({"script": "tune_gains.py", "method": method, **gains}, ensure_ascii=False)
    entries = []
    for name, env in (("arm7-ik", "arm7-reach"), ("arm7-ik-far", "arm7-reach-far")):
        entries.append(f"""  - name: {name}
    env: {env}
    format: scripted
    entry: policies.arm7_ik.controller:make_policy
    file: gains.json
    sha256: {gains_sha}
    observation_size: 17
    action_size: 7
    provenance: {provenance}""")
    return ("# provenance: policies/arm7_ik/tune_gains.py (writes this file)\n"
            "# one controller, registered for both arm7 envs (a policy names the env it is evaluated on)\n"
            "policies:\n" + "\n".join(entries) + "\n")


def main() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from simgate.plugin_manager import Host

    host = Host(project_plugins=["envs", "policies"], autoload=False)
    rows = []
    print(f"{'kx':>5} {'kd':>5} {'nominal':>8} " + " ".join(f"{s:>13}" for s in STRESSES))
    for kx in GRID_KX:
        for kd in GRID_KD:
            gains = {"kx": kx, "kd": kd, **FIXED}
            nominal = success_rate(host, gains, None)
            stressed = [success_rate(host, gains, p) for p in STRESSES.values()] if nominal >= 0.95 else []
            rows.append((kx, kd, nominal, stressed))
            print(f"{kx:5g} {kd:5g} {nominal:8.3f} " + " ".join(f"{s:13.3f}" for s in stressed), flush=True)
    admissible = [r for r in rows if r[2] >= 0.95]
    kx, kd, _, stressed = max(admissible, key=lambda r: (min(r[3]), -r[1]))
    print(f"chosen: kx={kx:g} kd={kd:g} (worst stressed success {min(stressed):.3f})")
    gains = {"kx": kx, "kd": kd, **FIXED}
    text = json.dumps(gains, indent=2, sort_keys=True) + "\n"
    (HERE / "gains.json").write_text(text)
    (HERE / "manifest.yaml").write_text(manifest(hashlib.sha256(text.encode()).hexdigest(), gains))


if __name__ == "__main__":
    main()
