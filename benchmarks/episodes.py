"""Episodes the main gate spends, with each case's shipped design against one look on all its episodes.

    python benchmarks/episodes.py            # the main gate both ways, then the regressed examples
    python benchmarks/episodes.py --no-regressed

Runs ``pytest suites/ -n auto`` for real, twice, each with an empty episode cache of its own: once
on ``scenarios/`` as shipped (the default design: a gating case that can be judged at looks runs
the group-sequential design, simgate.groupseq), once on a copy where every scenario without a
design of its own says ``design: fixed`` (today's fixed counts). It compares, case by case, the
decisions and the episodes judged and computed, then runs the regressed examples
(``balancebot-lqr-degraded``, ``balancebot-lqr-sluggish``, ``quadruped-nominal``,
``quadruped-early``) with the shipped designs and checks each is still blocked.

The last line reads ``episodes_ratio=<new/old episodes computed> agree=<share of the cases the
fixed design decided (PASS/FAIL) that the new design decides the same way> power_10pt=<...>``.
``power_10pt`` is, over the gating cases compared with another policy, the smallest power against
a synthetic 10-point drop, simulated through the sequential paired test's own decision code
(:func:`simgate.pairedseq.evidence`, what the runner judges each look with) under the correlation
the run measured: paired outcomes are drawn from the case's measured pairs (both succeed,
baseline only, candidate only, neither), and the candidate then fails an extra share of the
episodes it succeeded in (the same episodes whatever the look, as a wrapper failing episodes by
seed would), chosen so its success rate falls 10 points. A case judged at one look is simulated
through the exact McNemar test at its episodes and level instead. ``--power-only REPORTS`` prints
the powers for a run already made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simgate import paired, pairedseq  # noqa: E402

REGRESSED = ("balancebot-lqr-degraded", "balancebot-lqr-sluggish", "quadruped-nominal", "quadruped-early")
DECIDED = ("PASS", "FAIL")
DROP = 0.10  # the synthetic drop power_10pt is measured against
PATHS = 1000  # simulated runs per case


def gate(reports: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-n", "auto", "-p", "no:cacheprovider",
                          "--simgate-reports", str(reports), "--simgate-cache", str(reports / "cache"), *args],
                         cwd=REPO, env=env, capture_output=True, text=True)
    return run, time.perf_counter() - start


def fixed_copy(target: Path) -> Path:
    """scenarios/ with ``design: fixed`` added to every file that declares no design of its own."""
    shutil.copytree(REPO / "scenarios", target)
    for path in sorted(target.rglob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        if isinstance(spec, dict) and "design" not in spec and "sequential" not in spec and "replay" not in spec:
            path.write_text(path.read_text() + "\ndesign: fixed\n")
    return target


def cases(reports: Path) -> dict:
    return json.loads((reports / "summary.json").read_text())["cases"]


def simulated_power(numbers: dict, drop: float = DROP, paths: int = PATHS, seed: int = 0) -> float | None:
    """The power of one case's comparison against a synthetic drop (see the module's docstring);
    None when the candidate succeeds too rarely to lose ``drop`` more."""
    n = int(numbers["n"])
    n10, n01 = int(numbers["n10"]), int(numbers["n01"])
    base_successes = round(float(numbers["baseline_rate"]) * n)
    n11 = base_successes - n10
    counts = np.array([n11, n10, n01, n - n11 - n10 - n01], dtype=float)
    cand_rate = (n11 + n01) / n if n else 0.0
    if n == 0 or cand_rate <= drop:
        return None
    seq = numbers.get("sequential")
    size = int(seq["cap"]) if seq else n
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, size=(paths, size), p=counts / n)  # 0: both, 1: baseline only, 2: candidate only, 3: neither
    b = (kind == 0) | (kind == 1)
    c = (kind == 0) | (kind == 2)
    c &= rng.random((paths, size)) >= drop / cand_rate  # the wrapper's extra failures
    if seq is None:  # one look: the exact McNemar test at the case's level
        p = np.array([paired.mcnemar_worse(int(x), int(y)) for x, y in zip((b & ~c).sum(1), (~b & c).sum(1))])
        return float(np.mean(p <= float(numbers["detect_level"])))
    design = pairedseq.PairedDesign(**{k: seq[k] for k in ("drop", "power", "level", "baseline_rate", "simulated_power")},
                                    looks=tuple(seq["looks"]))
    log_e, log_w = pairedseq.evidence(b, c, design.looks, design.drop, design.rule_out_level)
    _, what = pairedseq.first_decisions(log_e, log_w, design.level, design.rule_out_level)
    return float(np.mean(what == pairedseq.WORSE))


def simulated_powers(cases: dict, drop: float = DROP) -> dict[str, float]:
    """Per gating case compared with another policy: :func:`simulated_power`."""
    out = {}
    for cid, c in sorted(cases.items()):
        req = next((r for r in c["requirements"] if r["kind"] == "not_worse"), None)
        if req is None or not c["case"].get("gate", True) or req["numbers"].get("baseline") == c["case"]["policy"]:
            continue
        power = simulated_power(req["numbers"], drop)
        if power is not None:
            out[cid] = power
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-regressed", action="store_true", help="skip the regressed examples")
    ap.add_argument("--power-only", type=Path, metavar="REPORTS", help="only the simulated powers of a run already made")
    args = ap.parse_args(argv)
    if args.power_only:
        powers = simulated_powers(cases(args.power_only))
        for cid, power in powers.items():
            print(f"  {cid}: power {power:.3f} against a {DROP:.0%} drop")
        print(f"power_10pt={min(powers.values()) if powers else float('nan'):.4f}")
        return
    with tempfile.TemporaryDirectory(prefix="simgate-episodes-") as tmp:
        tmp = Path(tmp)
        new_run, new_s = gate(tmp / "new")
        old_run, old_s = gate(tmp / "old", "--scenarios", str(fixed_copy(tmp / "fixed")))
        for label, run in (("shipped designs", new_run), ("one look", old_run)):
            print(f"{label}: exit {run.returncode}: {run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ''}")
        new, old = cases(tmp / "new"), cases(tmp / "old")
        judged = {k: sum(c["episodes"] for c in d.values()) for k, d in (("new", new), ("old", old))}
        computed = {k: sum(c["episodes_run"] for c in d.values()) for k, d in (("new", new), ("old", old))}
        decided = [cid for cid in old if cid in new and old[cid]["outcome"] in DECIDED and old[cid]["case"].get("gate", True)]
        same = [cid for cid in decided if new[cid]["outcome"] == old[cid]["outcome"]]
        print(f"episodes judged: {judged['new']:,} (shipped designs) vs {judged['old']:,} (one look); computed, "
              f"baselines, benign arms and searches included: {computed['new']:,} vs {computed['old']:,}; wall "
              f"{new_s:.0f} s vs {old_s:.0f} s")
        for cid in sorted(new):
            if cid in old and (new[cid]["episodes"] != old[cid]["episodes"] or new[cid]["outcome"] != old[cid]["outcome"]):
                print(f"  {cid}: {old[cid]['outcome']} on {old[cid]['episodes']} -> {new[cid]['outcome']} on "
                      f"{new[cid]['episodes']}")
        differ = sorted(set(decided) - set(same))
        if differ:
            print("decisions that differ: " + ", ".join(differ))
        powers = list(simulated_powers(new).values())
        if not args.no_regressed:
            for policy in REGRESSED:
                run, seconds = gate(tmp / policy, "--policy", policy)
                last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
                verdict = "blocked" if run.returncode != 0 else "LET THROUGH"
                print(f"regressed example {policy}: exit {run.returncode} ({verdict}, {seconds:.0f} s): {last}")
        ratio = computed["new"] / computed["old"] if computed["old"] else float("nan")
        agree = len(same) / len(decided) if decided else float("nan")
        print(f"episodes_ratio={ratio:.4f} agree={agree:.4f} power_10pt={min(powers) if powers else float('nan'):.4f}")


if __name__ == "__main__":
    main()
