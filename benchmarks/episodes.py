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
``power_10pt`` is, over the gating cases compared with another policy, the smallest exact power
of their McNemar test against a 10-point drop at the episodes they judged and the level their
regression family plans at, under independent failures (the least favourable case:
:func:`simgate.paired.mcnemar_power`); a simulation of synthetic drops through the gate is not
part of this benchmark yet.
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

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simgate import paired  # noqa: E402

REGRESSED = ("balancebot-lqr-degraded", "balancebot-lqr-sluggish", "quadruped-nominal", "quadruped-early")
DECIDED = ("PASS", "FAIL")


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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-regressed", action="store_true", help="skip the regressed examples")
    args = ap.parse_args(argv)
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
        powers = []
        for cid, c in new.items():
            req = next((r for r in c["requirements"] if r["kind"] == "not_worse"), None)
            if req is None or not c["case"].get("gate", True) or req["numbers"].get("baseline") == c["case"]["policy"]:
                continue
            n = req["numbers"]
            powers.append(paired.mcnemar_power(int(n["n"]), float(n["baseline_rate"]), 0.10, float(n["detect_level"])))
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
