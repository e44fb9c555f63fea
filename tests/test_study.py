"""The pinned study (issue 25.2): `python -m simgate plan` prints what the gate will run and pins
it; `pytest ... --simgate-study FILE` refuses, as INVALID and before any episode, a run whose
scenarios, policies, baseline or design differ, naming what changed; every verdict records the
study it was decided under."""

import json
import subprocess
import sys

from tests.test_end_to_end import REPO, gate

SCENARIO = """\
name: steady
env: balancebot
episodes: 30
horizon: 6.0
seed: 5
thresholds:
  min_success_rate: 0.8
"""
SELECTION = ("--policy", "balancebot-lqr-onnx", "--baseline", "balancebot-lqr")


def plan(*args):
    return subprocess.run([sys.executable, "-m", "simgate", "plan", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def scenarios(tmp_path, text=SCENARIO):
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    (folder / "steady.yaml").write_text(text)
    return folder


def test_the_plan_says_what_will_run_and_a_pinned_run_records_its_study(tmp_path):
    # one look: the fixed-size McNemar test, whose detectable drop follows the baseline rate
    folder, pinned = scenarios(tmp_path, SCENARIO + "design: fixed\n"), tmp_path / "study.json"
    planned = plan("--write", str(pinned), "suites/", "--scenarios", str(folder), *SELECTION)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    [line] = [x for x in planned.stdout.splitlines() if x.strip().startswith("steady-balancebot-lqr-onnx")]
    study = json.loads(pinned.read_text())
    entry = study["cases"]["steady-balancebot-lqr-onnx"]
    assert entry["planned"]["episodes"] == 30 and " 30 " in line
    drop = entry["planned"]["detectable_drop_90"]
    assert 0 < drop < 0.5 and f"{drop:.1%} at baseline rate 0.9 (assumed)" in line
    assert entry["baseline"] == "balancebot-lqr" and entry["policy_digest"] and entry["scenario_sha256"]
    run = gate("-n", "2", "--scenarios", str(folder), "--simgate-reports", str(tmp_path / "reports"),
               "--simgate-study", str(pinned), *SELECTION)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    verdict = json.loads((tmp_path / "reports" / "verdict.json").read_text())
    assert verdict["study"] == {"hash": study["hash"], "pinned": str(pinned)}
    # the run compares on the same episodes the plan counted, and reports a drop it can detect
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    [paired] = [r for r in summary["cases"]["steady-balancebot-lqr-onnx"]["requirements"] if r["kind"] == "not_worse"]
    assert paired["numbers"]["n"] == 30
    # planned again after the run: at the baseline rate the run measured, the plan's drop is the
    # run's, and the study it pins is the same (the planned figures are shown, not pinned)
    again = plan("--check", str(pinned), "suites/", "--scenarios", str(folder), "--simgate-reports",
                 str(tmp_path / "reports"), *SELECTION)
    assert again.returncode == 0, again.stdout + again.stderr
    numbers = paired["numbers"]
    assert (f"{numbers['detectable_drop_90']:.1%} at baseline rate {numbers['baseline_rate']:.3g} (measured in the last run)"
            in again.stdout), again.stdout


def test_the_plan_of_a_sequential_comparison_counts_its_cap_and_the_run_stops_when_the_drop_is_ruled_out(tmp_path):
    folder, pinned = scenarios(tmp_path), tmp_path / "study.json"
    planned = plan("--write", str(pinned), "suites/", "--scenarios", str(folder), *SELECTION)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    [line] = [x for x in planned.stdout.splitlines() if x.strip().startswith("steady-balancebot-lqr-onnx")]
    entry = json.loads(pinned.read_text())["cases"]["steady-balancebot-lqr-onnx"]
    block = entry["design"]["paired"]
    assert block["looks"][:4] == [10, 15, 23, 30] and block["drop"] == 0.10  # the project's [tool.simgate.detect]
    assert entry["planned"]["episodes"] == block["cap"] > 30 and f"{block['cap']:,}" in line
    assert "group + paired seq." in line and "10.0% at baseline rate 0.8 (sequential paired test, power 0.9 planned)" in line
    run = gate("-n", "2", "--scenarios", str(folder), "--simgate-reports", str(tmp_path / "reports"),
               "--simgate-study", str(pinned), *SELECTION)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    case = json.loads((tmp_path / "reports" / "summary.json").read_text())["cases"]["steady-balancebot-lqr-onnx"]
    [paired] = [r for r in case["requirements"] if r["kind"] == "not_worse"]
    sequential = paired["numbers"]["sequential"]
    # the ONNX export of the LQR matches it episode for episode: the drop is ruled out well before the cap
    assert sequential["state"] == "ruled_out" and sequential["n"] == paired["numbers"]["n"] < block["cap"]
    assert case["episodes"] <= sequential["n"]  # its own requirements: judged at the look they were decided
    assert paired["numbers"]["n10"] == paired["numbers"]["n01"] == 0 and paired["numbers"]["p_value"] == 1.0
    assert "a drop of 0.1 ruled out" in paired["observed"]


def test_a_run_that_differs_from_the_pinned_study_is_invalid_names_the_change_and_runs_nothing(tmp_path):
    folder, pinned = scenarios(tmp_path), tmp_path / "study.json"
    assert plan("--write", str(pinned), "suites/", "--scenarios", str(folder), *SELECTION).returncode == 0
    scenarios(tmp_path, SCENARIO.replace("min_success_rate: 0.8", "min_success_rate: 0.7"))  # edited after pinning
    reports = tmp_path / "reports"
    reports.mkdir()
    run = gate("-n", "2", "--scenarios", str(folder), "--simgate-reports", str(reports), "--simgate-study", str(pinned),
               *SELECTION)
    out = run.stdout + run.stderr
    assert run.returncode == 3, out[-3000:]
    assert "steady-balancebot-lqr-onnx: scenario file" in out and "steady.yaml changed" in out
    assert "requirements changed from {'min_success_rate': 0.8} to {'min_success_rate': 0.7}" in out
    assert "Traceback" not in out and " passed" not in out and not (reports / "summary.json").exists()
    assert json.loads((reports / "verdict.json").read_text())["decision"] == "INVALID"
    # another baseline is another study, and python -m simgate plan --check says so too
    checked = plan("--check", str(pinned), "suites/", "--scenarios", str(folder), "--policy", "balancebot-lqr-onnx",
                   "--baseline", "none")
    assert checked.returncode == 3 and "baseline changed from balancebot-lqr to None" in checked.stderr


def test_a_study_file_that_is_not_one_is_invalid_and_nothing_runs(tmp_path):
    folder, bad = scenarios(tmp_path), tmp_path / "study.json"
    bad.write_text('{"cases": {}, "hash": "0", "format": 1, "simgate_major": "0"}')  # edited: its hash does not match
    run = gate("-n", "0", "--scenarios", str(folder), "--simgate-reports", str(tmp_path / "reports"),
               "--simgate-study", str(bad), *SELECTION)
    assert run.returncode == 3 and "does not match its own hash" in run.stderr and "Traceback" not in run.stderr
    bad.write_text("not json")
    run = gate("-n", "0", "--scenarios", str(folder), "--simgate-reports", str(tmp_path / "reports"),
               "--simgate-study", str(bad), *SELECTION)
    assert run.returncode == 3 and "not a study file" in run.stderr
