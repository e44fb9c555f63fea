"""`pytest suites/` for real, in a subprocess, with and without xdist."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "tests" / "data" / "scenarios"
ALL_FORMATS = ("--policy", "balancebot-lqr", "--policy", "balancebot-lqr-onnx", "--policy", "balancebot-lqr-torchscript")


def gate(*args, cwd=REPO):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def only(directory: Path, *files: str, source: Path = SMALL) -> Path:
    """A scenarios folder holding just ``files`` of ``source``: a complete run of a few scenarios
    (``-k`` would leave the run incomplete, and an incomplete run is never promoted)."""
    import shutil

    directory.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy(source / name, directory / name)
    return directory


def summary(directory: Path) -> dict:
    return json.loads((directory / "summary.json").read_text())


def results_only(document: dict) -> dict:
    """A summary without the run/cache counts: which worker computed a shared baseline episode
    first depends on timing, the results do not."""
    out = json.loads(json.dumps(document))
    out.pop("run", None)  # its id and counts name this run
    for case in out["cases"].values():
        case.pop("episodes_run", None)
        case.pop("episodes_cached", None)
    return out


@pytest.fixture(scope="module")
def serial_and_parallel(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for label, n in (("serial", "0"), ("parallel", "2")):
        runs[label] = gate("-n", n, "--scenarios", str(SMALL), "--simgate-reports", str(out / label), *ALL_FORMATS)
        runs[label + "_summary"] = out / label
    return runs


def test_shipped_policies_pass_the_gate(serial_and_parallel):
    run = serial_and_parallel["parallel"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "9 passed" in run.stdout
    assert "flat-balancebot-lqr-onnx" in run.stdout and "PASS" in run.stdout  # the terminal table


def test_serial_and_xdist_runs_give_identical_case_metrics(serial_and_parallel):
    a = summary(serial_and_parallel["serial_summary"])
    b = summary(serial_and_parallel["parallel_summary"])
    assert serial_and_parallel["serial"].returncode == 0
    assert sorted(a["cases"]) == sorted(b["cases"]) and len(a["cases"]) == 9
    assert results_only(a) == results_only(b)  # every number, bit for bit
    flat = a["cases"]["flat-balancebot-lqr"]
    assert [r["name"] for r in flat["requirements"]] == [
        "success rate", "mean |torque| [wheel]", "peak |torque| [wheel]", "determinism",
        "not worse than balancebot-lqr", "mean |torque| vs balancebot-lqr"]
    assert flat["episodes"] == 30 and flat["metrics"]["success"] == 1.0


def test_regressed_policy_fails_and_says_why(tmp_path):
    run = gate("-n", "2", "--scenarios", str(SMALL), "--simgate-reports", str(tmp_path),
               "--policy", "balancebot-lqr-degraded", "-k", "flat")
    assert run.returncode == 3, run.stdout[-3000:]  # -k: a partial selection is INVALID, whatever it found
    out = run.stdout
    assert "flat-balancebot-lqr-degraded: FAIL" in out
    assert "success rate" in out and "/30 (" in out and "upper bound" in out
    assert "failure modes (30 of 30 episodes)" in out
    assert "Traceback" not in out
    result = summary(tmp_path)["cases"]["flat-balancebot-lqr-degraded"]
    assert result["outcome"] == "FAIL" and result["failure_modes"]


def test_a_broken_scenario_stops_the_run_with_one_clear_error(tmp_path):
    (tmp_path / "slippery.yaml").write_text(
        "name: slippery\nenv: balancebot\nepisodes: 10\nhorizon: 1.0\nperturbations:\n"
        "  - kind: scale_friction\n    params: {fricton: 0.5}\n")
    run = gate("-n", "2", "--scenarios", str(tmp_path))
    assert run.returncode == 4
    err = run.stderr + run.stdout
    assert "ERROR: " in err and "slippery.yaml:7: perturbations[0].params.fricton: unknown key 'fricton'" in err
    assert "valid: 'geoms', 'rolling', 'sliding', 'torsional'" in err  # nothing is close to 'fricton'
    assert "Traceback" not in err and "INTERNALERROR" not in err


def test_model_aware_parameter_errors_stop_the_run_before_any_episode(tmp_path):
    (tmp_path / "pushes.yaml").write_text(
        "name: pushes\nenv: balancebot\nepisodes: 10\nhorizon: 1.0\nperturbations:\n"
        "  - kind: apply_pushes\n    params:\n      body: chasis\n      force: 10\n      interval: 1.0\n"
        "  - kind: delay_actions\n    params: {delay_ms: 3}\n")
    run = gate("-n", "2", "--scenarios", str(tmp_path))
    assert run.returncode == 4
    err = run.stderr + run.stdout
    assert "pushes.yaml:8: perturbations[0].params.body: no body named 'chasis' in this model; did you mean 'chassis'?" in err
    assert "pushes.yaml:12: perturbations[1].params.delay_ms: delay_ms should be a whole number of physics steps of 2 ms, received 3" in err
    assert "Traceback" not in err


def test_an_informational_scenario_reports_but_never_blocks(tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "slope.yaml").write_text(
        "name: slope\nenv: balancebot\nepisodes: 10\nhorizon: 6.0\ngate: false\nperturbations:\n"
        "  - kind: tilt_ground\n    params: {angle: 1.0, direction: x}\nthresholds:\n  min_success_rate: 0.9\n")
    run = gate("-n", "0", "--scenarios", str(scenarios), "--simgate-reports", str(tmp_path), "--policy", "balancebot-lqr")
    assert run.returncode == 0, run.stdout[-2000:]
    assert "1 xfailed" in run.stdout and "FAIL (info)" in run.stdout
    case = summary(tmp_path)["cases"]["slope-balancebot-lqr"]
    assert case["outcome"] == "FAIL" and case["case"]["gate"] is False and case["failure_modes"] == {"timeout": 10}


def test_allure_results_carry_failure_mode_categories_and_the_environment(tmp_path):
    import re

    results = tmp_path / "allure-results"
    run = gate("-n", "2", "--scenarios", str(SMALL), "--simgate-reports", str(tmp_path), "--alluredir", str(results),
               "--policy", "balancebot-lqr-degraded", "-k", "flat")
    assert run.returncode == 3  # -k: INVALID
    categories = json.loads((results / "categories.json").read_text())
    environment = (results / "environment.properties").read_text()
    assert "mujoco=" in environment and "onnxruntime=" in environment
    written = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    [case] = [r for r in written if not r["name"].startswith("promotion: ")]
    assert len(written) == 2  # the case and its candidate's promotion decision, nothing else
    message = case["statusDetails"]["message"]
    assert case["status"] == "failed"
    assert message.startswith("BLOCKS promotion · requirement not met · timeout · success rate")  # one line: Categories groups by it
    assert "failure modes (30 of 30 episodes): timeout 30" in case["statusDetails"]["trace"]  # the whole verdict
    matched = [c["name"] for c in categories if case["status"] in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], message)]
    assert matched == ["Blocks promotion: requirement not met · timeout"]  # exactly one category: why it blocks, how
    labels = {(label["name"], label["value"]) for label in case["labels"]}
    assert ("failure_mode", "timeout") in labels and ("policy", "balancebot-lqr-degraded") in labels
    names = {a["name"] for a in case["attachments"]}
    assert {"metrics.json", "episodes.csv", "failure modes", "replay"} <= names
    assert any(n.startswith("torque per joint") for n in names)
    assert not any(p["name"] == "simgate_case" and p.get("mode") != "hidden" for p in case["parameters"])
    assert any(n.startswith("trajectory episode ") for n in names)  # the worst episode, replayed
    [replay] = [a for a in case["attachments"] if a["name"] == "replay"]
    assert "python -m simgate replay flat-balancebot-lqr-degraded " in (results / replay["source"]).read_text()
    assert ("severity", "blocker") in labels and ("tag", "requirement") in labels
    png = [a for a in case["attachments"] if a.get("type") == "image/png"]
    assert all((results / a["source"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for a in png)
    properties = dict(line.split("=", 1) for line in environment.splitlines())
    assert properties["policy.balancebot-lqr-degraded.sha256"] == "919ccb4442d91c5780fe1253697e977153c69b6220c1d670f8d36e5b1c89ceef"
    assert len(properties["git_commit"]) == 40


def test_allure_gets_robustness_curves_inside_one_promotion_overview(tmp_path):
    """A swept scenario's curve is a chart of the candidate's promotion result, not a (green) result
    of its own: the report counts cases, plus one promotion decision per candidate."""
    results = tmp_path / "allure-results"
    run = gate("-n", "2", "--scenarios", str(only(tmp_path / "scenarios", "rough.yaml")), "--simgate-reports",
               str(tmp_path), "--alluredir", str(results), "--policy", "balancebot-lqr", "--baseline", "none")
    assert run.returncode == 0, run.stdout[-2000:]
    written = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert not any(r["name"].startswith("robustness curve") for r in written)
    [overview] = [r for r in written if r["name"].startswith("promotion: ")]
    assert overview["name"] == "promotion: balancebot-lqr: PASS" and overview["status"] == "passed"
    assert "balancebot-lqr" in overview["descriptionHtml"] and "PASS" in overview["descriptionHtml"]
    [curve] = [a for a in overview["attachments"] if a["name"] == "robustness curve: rough over noise"]
    assert (results / curve["source"]).read_bytes()[:4] == b"\x89PNG"


def test_without_allure_or_matplotlib_the_summary_is_the_same(tmp_path):
    """allure and matplotlib made unimportable (a module of that name that raises ImportError
    comes first on the path), allure-pytest's plugin off: same failure-mode counts, serial and xdist."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for name in ("allure", "matplotlib"):
        (blocked / f"{name}.py").write_text("raise ImportError('blocked for this test')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(blocked)
    args = ["--scenarios", str(SMALL), "--policy", "balancebot-lqr-degraded", "--baseline", "none"]
    plain = gate("-n", "2", "--simgate-reports", str(tmp_path / "with"), "--alluredir", str(tmp_path / "results"), *args)
    runs = {}
    for label, n in (("serial", "0"), ("parallel", "2")):
        runs[label] = subprocess.run([sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider", "-p",
                                      "no:allure_pytest", "-n", n, "--simgate-reports", str(tmp_path / label), *args],
                                     cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert runs[label].returncode == 1, runs[label].stdout[-2000:] + runs[label].stderr[-2000:]
    modes = {label: {cid: c["failure_modes"] for cid, c in summary(tmp_path / label)["cases"].items()}
             for label in ("serial", "parallel", "with")}
    assert plain.returncode == 1 and modes["serial"] == modes["parallel"] == modes["with"]
    # flat's 30 failed episodes (one look: its peak-torque limit counts every episode) and rough's two
    # cases, which FAIL at the first look of their group-sequential design, 10 episodes each
    assert sum(sum(m.values()) for m in modes["serial"].values()) == 30 + 10 + 10
