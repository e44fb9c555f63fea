"""A user with an MJCF, an ONNX file and a YAML contract gates the policy from a folder holding
nothing else (no Python, no pytest configuration): ``pytest scenarios/ -n 2``, for real, in a
subprocess. A contract that does not fit its network stops the run at configure time as INVALID
(exit 3), a misspelt name in it as a usage error (exit 4), before any episode, naming the file
and line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

ROBOT = """\
kind: mjcf
name: walker
scene: walker.xml
base: trunk
control_hz: 50
reset:
  keyframe: stand
  yaw: [-3.141592653589793, 3.141592653589793]
  joint_pos: {uniform: 0.05}
  ctrl: start_pose
feet: [FL_foot, FR_foot, HL_foot, HR_foot]
terminate: {base_height_below: 0.10, tilt_above_deg: 50}
"""

SCENARIO = """\
name: flat
env: walker
policies: [walker-policy]
episodes: 12
horizon: 2.0
seed: 3
thresholds:
  min_success_rate: 0.5
  deterministic: true
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "envs" / "walker").mkdir(parents=True)
    shutil.copy(REPO / "envs" / "quadruped" / "quadruped.xml", tmp_path / "envs" / "walker" / "walker.xml")
    (tmp_path / "envs" / "walker" / "robot.yaml").write_text(ROBOT)
    policy = tmp_path / "policies" / "walker"
    policy.mkdir(parents=True)
    shutil.copy(REPO / "policies" / "quadruped" / "robust.onnx", policy / "policy.onnx")
    shutil.copy(REPO / "policies" / "quadruped" / "contract.yaml", policy / "contract.yaml")
    digest = hashlib.sha256((policy / "policy.onnx").read_bytes()).hexdigest()
    (policy / "manifest.yaml").write_text(textwrap.dedent(f"""\
        policies:
          - name: walker-policy
            env: walker
            format: onnx
            file: policy.onnx
            sha256: {digest}
            observation_size: 34
            action_size: 12
            contract: contract.yaml
        """))
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "flat.yaml").write_text(SCENARIO)
    return tmp_path


def gate(folder: Path, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SIMGATE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "-p", "no:cacheprovider", *args], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=600)


def gate_after_an_edit(folder: Path, rel: str, old: str, new: str) -> subprocess.CompletedProcess:
    """The gate (``-n 2``) once ``old`` is replaced by ``new`` in the file ``rel``, over an earlier
    run's PASS in reports/verdict.json (which a refused run must not leave behind)."""
    path = folder / rel
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    (folder / "reports").mkdir()
    (folder / "reports" / "verdict.json").write_text('{"promote": true, "decision": "PASS"}')
    return gate(folder, "-n", "2")


def test_a_folder_of_yaml_files_is_gated_with_no_python(folder):
    done = gate(folder, "-n", "2", "--baseline", "hold")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    verdict = json.loads((folder / "reports" / "verdict.json").read_text())
    assert verdict["promote"] and verdict["candidates"]["walker-policy"]["promote"]
    summary = json.loads((folder / "reports" / "summary.json").read_text())
    (case,) = summary["cases"].values()
    assert case["outcome"] == "PASS" and case["case"]["env"] == "walker" and case["case"]["baseline"] == "hold"


def test_a_contract_that_does_not_fit_the_network_stops_the_run_before_any_episode(folder):
    done = gate_after_an_edit(folder, "policies/walker/contract.yaml", "  - {term: gait_phase, hz: 2.0, group: clock}\n", "")
    # not a usage error: the run would judge the network under a contract it was not trained with
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert "simgate: INVALID (exit 3)" in out and "observation_size is 34 in the manifest" in out
    assert "(policies/walker/manifest.yaml:7: observation_size) but its contract gives 32" in out
    assert "policies/walker/manifest.yaml" in out or "contract.yaml" in out
    assert "Traceback" not in out and not (folder / "reports" / "summary.json").exists()
    assert json.loads((folder / "reports" / "verdict.json").read_text())["decision"] == "INVALID"


def test_a_misspelt_joint_names_the_line_and_the_closest_joint(folder):
    contract = folder / "policies" / "walker" / "contract.yaml"
    contract.write_text(contract.read_text().replace("joints: [FL_abduction,", "joints: [FL_abduktion,"))
    done = gate(folder, "-n", "2")
    assert done.returncode == 4, done.stdout[-3000:]
    assert "no joint named 'FL_abduktion'" in done.stderr and "did you mean 'FL_abduction'" in done.stderr
    assert "contract.yaml:" in done.stderr and "Traceback" not in done.stderr


def test_observation_groups_are_the_contract_s(folder):
    """A YAML robot's observation groups are its policy's contract's: a scenario naming them
    runs, a misspelt one is refused at configure time with the contract's groups."""
    scenario = folder / "scenarios" / "flat.yaml"
    noisy = SCENARIO.replace("thresholds:", "perturbations:\n  - kind: add_observation_noise\n"
                                            "    params: {std: {imu: 0.01, encoders: 0.005}}\nthresholds:")
    scenario.write_text(noisy)
    done = gate(folder, "-n", "0")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    scenario.write_text(noisy.replace("imu: 0.01", "imuu: 0.01"))
    done = gate(folder, "-n", "0")
    assert done.returncode == 4, done.stdout[-3000:]
    assert "no observation group named 'imuu'" in done.stderr and "did you mean 'imu'" in done.stderr
    assert "walker-policy" in done.stderr and "Traceback" not in done.stderr


def test_a_policy_without_a_contract_on_a_yaml_robot_is_refused_naming_the_fix(folder):
    """A manifest entry that forgot ``contract:`` cannot drive a YAML robot: exit 4 with what to
    add, no traceback, and an earlier run's PASS does not stay behind."""
    done = gate_after_an_edit(folder, "policies/walker/manifest.yaml", "    contract: contract.yaml\n", "")
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    assert "has no contract" in done.stderr and "add 'contract:'" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "INTERNALERROR" not in done.stdout + done.stderr
    assert json.loads((folder / "reports" / "verdict.json").read_text())["decision"] == "ERROR"


@pytest.mark.parametrize("start", ["parent", "scenarios"])
def test_pytest_started_outside_the_project_folder_says_where_to_start(folder, start):
    """With no pytest configuration the project folder is the one pytest starts in: started one
    folder above, or inside scenarios/, the run says so instead of collecting nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SIMGATE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    cwd, arg = (folder.parent, str(folder / "scenarios")) if start == "parent" else (folder / "scenarios", ".")
    done = subprocess.run([sys.executable, "-m", "pytest", arg, "-p", "no:cacheprovider"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    assert "holds YAML files" in done.stderr and f"cd {folder}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (cwd / "reports").exists()


def test_a_project_without_scenarios_runs_its_own_tests_beside_yaml_files(tmp_path):
    """simgate is a pytest plugin wherever it is installed: a project with no scenarios folder,
    whose tests folder holds YAML fixtures, runs its tests as if simgate were not there."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "fixture.yaml").write_text("name: not a scenario\n")
    (tmp_path / "tests" / "test_it.py").write_text("def test_it():\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
